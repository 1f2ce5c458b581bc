//! Durability of the embedded store (DESIGN.md invariant 4): every write
//! the real `berth apiserver` acknowledged with a 2xx survives `kill -9` in
//! the middle of a concurrent load; and a damaged data file is refused at
//! start, never served.
//!
//! `BERTH_DURABILITY_ROUNDS` sets how many kill/restart rounds run (2 by
//! default; `make reliability` runs 20).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_e2e::apiserver::{Apiserver, refused_start};
use berth_e2e::http::request;
use berth_e2e::load::{Acked, LEASES, Record, check, revision, writer};
use berth_e2e::poll::poll;
use serde_json::json;

const WRITERS: usize = 16;

fn rounds() -> usize {
    std::env::var("BERTH_DURABILITY_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

#[test]
fn acknowledged_writes_survive_kill_9_under_load() {
    let dir = tempfile::Builder::new().prefix("berth-durability-").tempdir().expect("tempdir");
    let data = dir.path().join("apiserver");
    let mut all: BTreeMap<String, Acked> = BTreeMap::new();
    let mut server = Apiserver::start(&data, &[]);
    for round in 0..rounds() {
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (addr, record, stop) = (server.addr.clone(), record.clone(), stop.clone());
                std::thread::spawn(move || writer(addr, format!("r{round}"), w, record, stop))
            })
            .collect();
        // Kill while all writers are busy, after a number of writes that differs per round.
        let target = 120 + (round * 53) % 150;
        let loaded = poll(Duration::from_secs(120), || {
            let n = record.lock().expect("lock").acked.len();
            if n >= target { Ok(n) } else { Err(format!("{n} of {target} objects acknowledged")) }
        });
        let log = server.kill9();
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().expect("writer thread");
        }
        let record = std::mem::take(&mut *record.lock().expect("lock"));
        if let Err(last) = loaded {
            panic!("round {round}: the load did not get going: {last}\n{log}");
        }
        assert!(record.unexpected.is_empty(), "round {round}: unexpected answers: {:#?}\n{log}", record.unexpected);
        all.extend(record.acked);

        server = Apiserver::start(&data, &[]);
        let lost = check(&server.addr, &all);
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged writes were lost after kill -9:\n{}\n{log}\n{}",
            lost.len(),
            all.len(),
            lost.join("\n"),
            server.log_text()
        );
        let newest = all.values().map(|a| a.revision).max().unwrap_or(0);
        let probe = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": format!("after-round-{round}"), "namespace": "default"}, "spec": {}});
        let created = request(&server.addr, "POST", LEASES, Some(&probe)).expect("create after restart");
        assert_eq!(created.status, 201, "{}", created.body);
        assert!(revision(&created.json()) > newest, "revisions continue past every acknowledged one");
    }
}

fn store_file(data: &Path) -> std::path::PathBuf {
    data.join("store.redb")
}

#[test]
fn a_file_that_is_not_a_store_is_refused_at_start() {
    let dir = tempfile::Builder::new().prefix("berth-damage-").tempdir().expect("tempdir");
    std::fs::write(store_file(dir.path()), "this is not a Berth store\n".repeat(100)).expect("write");
    let out = refused_start(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&store_file(dir.path()).display().to_string()), "the error names the file: {stderr}");
    assert!(stderr.contains("not a Berth store"), "{stderr}");
}

#[test]
fn a_truncated_store_is_refused_at_start() {
    let dir = tempfile::Builder::new().prefix("berth-damage-").tempdir().expect("tempdir");
    {
        let server = Apiserver::start(dir.path(), &[]);
        for i in 0..20 {
            let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": format!("l{i}"), "namespace": "default"}, "spec": {}});
            let a = request(&server.addr, "POST", LEASES, Some(&lease)).expect("create");
            assert_eq!(a.status, 201, "{}", a.body);
        }
    } // stopped with SIGTERM
    let path = store_file(dir.path());
    let len = std::fs::metadata(&path).expect("stat").len();
    std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(len / 2)).expect("truncate");
    let out = refused_start(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "the error names the file: {stderr}");
    assert!(stderr.contains("corrupt") || stderr.contains("truncated"), "{stderr}");
}
