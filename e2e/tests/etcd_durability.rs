//! Durability on etcd (DESIGN.md invariant 4): with `berth apiserver` on a
//! three-member etcd, `kill -9` of one member in the middle of a
//! concurrent load loses no write that was acknowledged with a 2xx, and
//! the API keeps accepting writes on the remaining majority.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_e2e::EtcdCluster;
use berth_e2e::apiserver::Apiserver;
use berth_e2e::load::{Record, check, writer};
use berth_e2e::poll::poll;

const WRITERS: usize = 16;

fn acked(record: &Mutex<Record>) -> usize {
    record.lock().expect("lock").acked.len()
}

#[test]
fn acknowledged_writes_survive_kill_9_of_an_etcd_minority() {
    let mut cluster = EtcdCluster::start(3);
    let store = format!("etcd://{}/durability", cluster.endpoints().join(","));
    let dir = tempfile::Builder::new().prefix("berth-etcd-durability-").tempdir().expect("tempdir");
    let server = Apiserver::start(dir.path(), &["--store", &store]);

    let record = Arc::new(Mutex::new(Record::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (addr, record, stop) = (server.addr.clone(), record.clone(), stop.clone());
            std::thread::spawn(move || writer(addr, "etcd".into(), w, record, stop))
        })
        .collect();
    let wait_for = |n: usize, what: &str| {
        poll(Duration::from_secs(120), || {
            let seen = acked(&record);
            if seen >= n { Ok(seen) } else { Err(format!("{seen} of {n} objects acknowledged {what}")) }
        })
    };
    let before = wait_for(150, "before the kill");
    // Member 0 is the first endpoint the API server was given.
    cluster.kill9(0);
    let killed_at = acked(&record);
    let after = before.as_ref().map_err(Clone::clone).and_then(|_| wait_for(killed_at + 150, "after the kill"));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("writer thread");
    }
    let record = std::mem::take(&mut *record.lock().expect("lock"));
    if let Err(last) = before.and(after) {
        panic!("the load did not go on: {last}\n{}\n{}", server.log_text(), cluster.logs());
    }
    assert!(record.unexpected.is_empty(), "unexpected answers: {:#?}\n{}", record.unexpected, server.log_text());
    let lost = check(&server.addr, &record.acked);
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes were lost after kill -9 of one etcd member:\n{}\n{}",
        lost.len(),
        record.acked.len(),
        lost.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
        server.log_text()
    );
    eprintln!(
        "{} objects acknowledged; {} writes answered 5xx around the kill, e.g. {:#?}",
        record.acked.len(),
        record.failed.len(),
        record.failed.iter().take(3).collect::<Vec<_>>()
    );
}
