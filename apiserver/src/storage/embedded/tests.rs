use super::*;
use crate::storage::conformance;

fn fresh_store() -> (tempfile::TempDir, Embedded) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Embedded::open(&dir.path().join("berth.redb")).expect("open");
    (dir, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_passes_the_conformance_suite() {
    let dirs = Mutex::new(Vec::new());
    conformance::run_all(|| {
        let (dir, s) = fresh_store();
        dirs.lock().expect("lock").push(dir);
        async move { s }
    })
    .await;
}

#[tokio::test]
async fn embedded_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("berth.redb");
    conformance::survives_reopen(|| Embedded::open(&path).expect("open")).await;
}

#[tokio::test]
async fn a_lagging_watcher_loses_nothing() {
    let (_dir, s) = fresh_store();
    let mut w = s.watch("/a/", 0).await.expect("watch");
    // More writes than the broadcast holds, before the watcher reads any.
    let n = BROADCAST_CAPACITY + 50;
    let mut last = None;
    for i in 0..n {
        last = Some(s.create(&format!("/a/{i:05}"), Bytes::from_static(b"x")).await.expect("create"));
    }
    let mut revs = Vec::new();
    while revs.len() < n {
        use futures::StreamExt;
        match tokio::time::timeout(std::time::Duration::from_secs(10), w.next()).await {
            Ok(Some(Ok(ev))) => revs.push(ev.revision()),
            other => panic!("after {} events: {other:?}", revs.len()),
        }
    }
    assert!(revs.windows(2).all(|p| p[1] == p[0] + 1), "gap or duplicate in {revs:?}");
    assert_eq!(revs.last().copied(), last.map(|kv| kv.mod_revision));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_transactions() {
    let (_dir, s) = fresh_store();
    let (commits_before, writes_before) = s.commit_stats();
    let writes = (0..64).map(|i| {
        let s = s.clone();
        async move { s.create(&format!("/batch/{i:02}"), Bytes::from_static(b"v")).await }
    });
    for r in futures::future::join_all(writes).await {
        r.expect("create");
    }
    let (commits, writes) = s.commit_stats();
    let (commits, writes) = (commits - commits_before, writes - writes_before);
    assert_eq!(writes, 64);
    assert!(commits < 64, "64 writes in flight together must share fsyncs, took {commits} commits");
    // Each of them is durable: a reopen finds them all.
    let path = s.path().to_path_buf();
    drop(s);
    let s = Embedded::open(&path).expect("reopen");
    assert_eq!(s.range("/batch/", None, 0, 0).await.expect("range").kvs.len(), 64);
}
