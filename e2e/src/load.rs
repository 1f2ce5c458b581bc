//! A write load against an API server for durability tests: writers that
//! create `Lease`s and update each a few times over HTTP, recording every
//! write acknowledged with a 2xx; and the check that each is still there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::http::request;

pub const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// The newest acknowledged state of one object.
#[derive(Clone, Copy, Debug)]
pub struct Acked {
    pub transitions: u64,
    pub revision: u64,
}

/// What the writers saw.
#[derive(Default)]
pub struct Record {
    pub acked: BTreeMap<String, Acked>,
    /// Writes answered 5xx (not acknowledged; they may or may not have
    /// landed): what was written and the answer.
    pub failed: Vec<String>,
    /// Answers that are neither success, nor 5xx, nor the server going away.
    pub unexpected: Vec<String>,
}

pub fn revision(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// Creates leases named `{tag}-w{w}-{i}` and updates each three times,
/// recording every 2xx, until `stop` is set or the server stops answering
/// (a refused connection). A 5xx abandons that object for the next one.
pub fn writer(addr: String, tag: String, w: usize, record: Arc<Mutex<Record>>, stop: Arc<AtomicBool>) {
    let note = |name: &str, obj: &Value| {
        let acked = Acked {
            transitions: obj.pointer("/spec/leaseTransitions").and_then(Value::as_u64).unwrap_or(0),
            revision: revision(obj),
        };
        record.lock().expect("lock").acked.insert(name.to_string(), acked);
    };
    let failed = |what: String| record.lock().expect("lock").failed.push(what);
    let unexpected = |what: String| record.lock().expect("lock").unexpected.push(what);
    'objects: for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let name = format!("{tag}-w{w:02}-{i:04}");
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"holderIdentity": format!("writer-{w}"), "leaseTransitions": 0},
        });
        let mut obj = match request(&addr, "POST", LEASES, Some(&lease)) {
            Ok(a) if a.status == 201 => a.json(),
            Ok(a) if a.status >= 500 => {
                failed(format!("create {name}: {} {}", a.status, a.body));
                continue;
            }
            Ok(a) => return unexpected(format!("create {name}: {} {}", a.status, a.body)),
            Err(_) => return, // the server is gone
        };
        note(&name, &obj);
        for t in 1..=3u64 {
            obj["spec"]["leaseTransitions"] = json!(t);
            obj = match request(&addr, "PUT", &format!("{LEASES}/{name}"), Some(&obj)) {
                Ok(a) if a.status == 200 => a.json(),
                Ok(a) if a.status >= 500 => {
                    failed(format!("update {name} to {t}: {} {}", a.status, a.body));
                    continue 'objects;
                }
                Ok(a) => return unexpected(format!("update {name} to {t}: {} {}", a.status, a.body)),
                Err(_) => return,
            };
            note(&name, &obj);
        }
    }
}

/// Every acknowledged write is there, at least at the acknowledged
/// version; returns what is missing or older.
pub fn check(addr: &str, acked: &BTreeMap<String, Acked>) -> Vec<String> {
    let mut lost = Vec::new();
    for (name, want) in acked {
        match request(addr, "GET", &format!("{LEASES}/{name}"), None) {
            Ok(a) if a.status == 200 => {
                let got = a.json();
                let transitions = got.pointer("/spec/leaseTransitions").and_then(Value::as_u64).unwrap_or(0);
                if transitions < want.transitions || revision(&got) < want.revision {
                    lost.push(format!(
                        "{name}: acknowledged transitions={} rv={}, stored transitions={transitions} rv={}",
                        want.transitions,
                        want.revision,
                        revision(&got)
                    ));
                }
            }
            other => lost.push(format!("{name}: acknowledged {want:?}, now {other:?}")),
        }
    }
    lost
}
