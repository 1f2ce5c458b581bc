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
