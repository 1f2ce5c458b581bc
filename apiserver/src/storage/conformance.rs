//! The one conformance suite every [`Storage`] backend passes.
//!
//! Each check takes a fresh, empty store. A backend's test module calls
//! [`run_all`] with a function that opens one, and [`survives_reopen`] with
//! a function that opens the *same* store again each time it is called.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::{Event, Result, Storage, StorageError};

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// Runs every check, each on a store from `fresh()`.
pub async fn run_all<S: Storage, F: Future<Output = S>>(fresh: impl Fn() -> F) {
    create_then_already_exists(&fresh().await).await;
    update_is_compare_and_swap(&fresh().await).await;
    delete_honours_expected_revision(&fresh().await).await;
    range_by_prefix_limit_and_start_after(&fresh().await).await;
    range_at_an_older_revision(&fresh().await).await;
    revisions_are_monotonic(&fresh().await).await;
    watch_replays_then_goes_live(&fresh().await).await;
    watch_from_a_compacted_revision_fails(&fresh().await).await;
    concurrent_writers_all_land(&fresh().await).await;
    concurrent_cas_on_one_key_has_one_winner(&fresh().await).await;
    concurrent_creates_of_one_key_have_one_winner(&fresh().await).await;
    concurrent_writes_take_gap_free_revisions(&fresh().await).await;
}

pub async fn create_then_already_exists<S: Storage>(s: &S) {
    let kv = s.create("/a/1", b("one")).await.expect("create");
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(kv.value, b("one"));
    let again = s.create("/a/1", b("two")).await;
    assert!(matches!(again, Err(StorageError::AlreadyExists(_))), "{again:?}");
    assert_eq!(s.get("/a/1").await.expect("get").expect("present").value, b("one"));
    assert_eq!(s.get("/a/2").await.expect("get"), None);
}

pub async fn update_is_compare_and_swap<S: Storage>(s: &S) {
    let first = s.create("/a/1", b("one")).await.expect("create");
    let second = s.update("/a/1", b("two"), first.mod_revision).await.expect("update");
    assert!(second.mod_revision > first.mod_revision);
    assert_eq!(second.create_revision, first.create_revision);
    let stale = s.update("/a/1", b("three"), first.mod_revision).await;
    match stale {
        Err(StorageError::Conflict { current, .. }) => assert_eq!(current, second.mod_revision),
        other => panic!("a stale update must conflict, got {other:?}"),
    }
    assert_eq!(s.get("/a/1").await.expect("get").expect("present").value, b("two"));
    let missing = s.update("/a/none", b("x"), 1).await;
    assert!(matches!(missing, Err(StorageError::NotFound(_))), "{missing:?}");
}

pub async fn delete_honours_expected_revision<S: Storage>(s: &S) {
    let kv = s.create("/a/1", b("one")).await.expect("create");
    let stale = s.delete("/a/1", Some(kv.mod_revision + 100)).await;
    assert!(matches!(stale, Err(StorageError::Conflict { .. })), "{stale:?}");
    let (last, rev) = s.delete("/a/1", Some(kv.mod_revision)).await.expect("delete");
    assert_eq!(last.value, b("one"));
    assert!(rev > kv.mod_revision);
    assert_eq!(s.get("/a/1").await.expect("get"), None);
    assert!(matches!(s.delete("/a/1", None).await, Err(StorageError::NotFound(_))));
    s.create("/a/2", b("two")).await.expect("create");
    s.delete("/a/2", None).await.expect("unconditional delete");
}

pub async fn range_by_prefix_limit_and_start_after<S: Storage>(s: &S) {
    for k in ["/a/1", "/a/2", "/a/3", "/ab/1", "/b/1"] {
        s.create(k, b(k)).await.expect("create");
    }
    let keys = |r: &super::Range| r.kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();
    let all = s.range("/a/", None, 0, 0).await.expect("range");
    assert_eq!(keys(&all), ["/a/1", "/a/2", "/a/3"]);
    assert!(!all.more);
    assert_eq!(all.revision, s.current_revision().await.expect("rev"));
    let page = s.range("/a/", None, 0, 2).await.expect("range");
    assert_eq!(keys(&page), ["/a/1", "/a/2"]);
    assert!(page.more);
    let rest = s.range("/a/", Some("/a/2"), 0, 2).await.expect("range");
    assert_eq!(keys(&rest), ["/a/3"]);
    assert!(!rest.more);
    let exact = s.range("/a/", None, 0, 3).await.expect("range");
    assert!(!exact.more, "a full page with nothing after it is not `more`");
}

pub async fn range_at_an_older_revision<S: Storage>(s: &S) {
    let one = s.create("/a/1", b("one")).await.expect("create");
    let two = s.create("/a/2", b("two")).await.expect("create");
    let at = two.mod_revision;
    s.update("/a/1", b("uno"), one.mod_revision).await.expect("update");
    s.delete("/a/2", None).await.expect("delete");
    s.create("/a/3", b("three")).await.expect("create");
    let old = match s.range("/a/", None, at, 0).await {
        Ok(r) => r,
        Err(StorageError::Compacted { .. }) => return, // a backend may keep no history
        Err(e) => panic!("range at {at}: {e}"),
    };
    let got: Vec<_> = old.kvs.iter().map(|kv| (kv.key.as_str(), kv.value.clone())).collect();
    assert_eq!(got, [("/a/1", b("one")), ("/a/2", b("two"))]);
    assert_eq!(old.revision, at);
    let future = s.range("/a/", None, s.current_revision().await.expect("rev") + 10, 0).await;
    assert!(matches!(future, Err(StorageError::FutureRevision(_))), "{future:?}");
}

pub async fn revisions_are_monotonic<S: Storage>(s: &S) {
    let mut last = s.current_revision().await.expect("rev");
    let a = s.create("/a/1", b("1")).await.expect("create");
    assert!(a.mod_revision > last);
    last = a.mod_revision;
    let c = s.create("/b/1", b("1")).await.expect("create");
    assert!(c.mod_revision > last);
    let u = s.update("/a/1", b("2"), a.mod_revision).await.expect("update");
    assert!(u.mod_revision > c.mod_revision);
    let (_, d) = s.delete("/b/1", None).await.expect("delete");
    assert!(d > u.mod_revision);
    assert_eq!(s.current_revision().await.expect("rev"), d);
    // A failed write takes no revision.
    let _ = s.create("/a/1", b("x")).await;
    assert_eq!(s.current_revision().await.expect("rev"), d);
}

async fn next_event(w: &mut BoxStream<'static, Result<Event>>, seen: &[Event]) -> Event {
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        other => panic!("expected an event after {seen:?}, got {other:?}"),
    }
}

pub async fn watch_replays_then_goes_live<S: Storage>(s: &S) {
    let start = s.current_revision().await.expect("rev");
    let one = s.create("/a/1", b("one")).await.expect("create");
    s.create("/b/1", b("other prefix")).await.expect("create");
    s.update("/a/1", b("uno"), one.mod_revision).await.expect("update");
    let mut w = s.watch("/a/", start).await.expect("watch");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let ev = next_event(&mut w, &seen).await;
        seen.push(ev);
    }
    assert!(matches!(&seen[0], Event::Put { kv, prev: None } if kv.value == b("one")), "{seen:?}");
    assert!(matches!(&seen[1], Event::Put { kv, prev: Some(p) } if kv.value == b("uno") && p.value == b("one")));
    // Live: writes from several tasks while the watch runs; each arrives once, in order.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let key = format!("/a/live-{i:02}");
        tasks.push(async move { s.create(&key, b("x")).await.expect("create") });
    }
    futures::future::join_all(tasks).await;
    s.delete("/a/1", None).await.expect("delete");
    let mut live = Vec::new();
    for _ in 0..21 {
        let ev = next_event(&mut w, &live).await;
        live.push(ev);
    }
    let revs: Vec<u64> = live.iter().map(Event::revision).collect();
    assert!(revs.windows(2).all(|p| p[0] < p[1]), "events out of order or duplicated: {revs:?}");
    assert!(matches!(live.last(), Some(Event::Delete { prev, .. }) if prev.key == "/a/1"), "{live:?}");
    assert!(live.iter().all(|e| e.key().starts_with("/a/")));
    // A second watcher from the middle of history sees the same tail.
    let mid = revs[10];
    let mut w2 = s.watch("/a/", mid).await.expect("watch");
    let first = next_event(&mut w2, &[]).await;
    assert_eq!(first.revision(), revs[11]);
}

pub async fn watch_from_a_compacted_revision_fails<S: Storage>(s: &S) {
    let one = s.create("/a/1", b("one")).await.expect("create");
    let two = s.update("/a/1", b("two"), one.mod_revision).await.expect("update");
    s.update("/a/1", b("three"), two.mod_revision).await.expect("update");
    s.compact(two.mod_revision).await.expect("compact");
    let old = s.watch("/a/", one.mod_revision).await;
    assert!(matches!(old, Err(StorageError::Compacted { .. })), "watch from before the compaction must fail");
    let mut w = s.watch("/a/", two.mod_revision).await.expect("watch from the compacted revision");
    let ev = next_event(&mut w, &[]).await;
    assert!(matches!(ev, Event::Put { ref kv, .. } if kv.value == b("three")), "{ev:?}");
    let at = s.range("/a/", None, one.mod_revision, 0).await;
    assert!(matches!(at, Err(StorageError::Compacted { .. })), "{at:?}");
    assert_eq!(s.get("/a/1").await.expect("get").expect("present").value, b("three"));
}

pub async fn concurrent_writers_all_land<S: Storage>(s: &S) {
    let kv = s.create("/c/counter", b("0")).await.expect("create");
    let _ = kv;
    // Many tasks race to CAS the same key: each attempt either wins or conflicts.
    let attempt = |n: usize| async move {
        loop {
            let cur = s.get("/c/counter").await.expect("get").expect("present");
            let v: usize = std::str::from_utf8(&cur.value).expect("utf8").parse().expect("number");
            match s.update("/c/counter", b(&(v + 1).to_string()), cur.mod_revision).await {
                Ok(_) => return n,
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    };
    futures::future::join_all((0..16).map(attempt)).await;
    let end = s.get("/c/counter").await.expect("get").expect("present");
    assert_eq!(end.value, b("16"), "every successful CAS must count exactly once");
}

/// Many updates with the same expected revision, all in flight at once
/// (a backend that batches them gets them in one batch): exactly one wins
/// each round, the rest conflict and name the winner's revision.
pub async fn concurrent_cas_on_one_key_has_one_winner<S: Storage>(s: &S) {
    let mut cur = s.create("/c/k", b("start")).await.expect("create");
    for round in 0..5 {
        let attempts = (0..32).map(|i| s.update("/c/k", b(&format!("{round}-{i}")), cur.mod_revision));
        let results = futures::future::join_all(attempts).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one CAS must win, got {results:?}");
        let won = winners[0].clone();
        assert_eq!(won.mod_revision, cur.mod_revision + 1, "round {round}: the winner takes the next revision");
        for r in &results {
            match r {
                Ok(_) => {}
                Err(StorageError::Conflict { current, .. }) => assert_eq!(*current, won.mod_revision, "{results:?}"),
                Err(e) => panic!("round {round}: a losing CAS must conflict, got {e}"),
            }
        }
        let stored = s.get("/c/k").await.expect("get").expect("present");
        assert_eq!(stored, won, "round {round}: the store holds the winner's value");
        cur = won;
    }
    assert_eq!(s.current_revision().await.expect("rev"), cur.mod_revision, "losers take no revision");
}

/// Many creates of one key at once: one succeeds, the others are told it exists.
pub async fn concurrent_creates_of_one_key_have_one_winner<S: Storage>(s: &S) {
    let results = futures::future::join_all((0..32).map(|i| s.create("/c/once", b(&i.to_string())))).await;
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "exactly one create must succeed: {results:?}");
    assert!(
        results.iter().all(|r| r.is_ok() || matches!(r, Err(StorageError::AlreadyExists(_)))),
        "the others must be AlreadyExists: {results:?}"
    );
    assert_eq!(s.get("/c/once").await.expect("get").as_ref(), Some(won[0]));
}

/// Writes in flight together, some of them refused: the accepted ones take
/// consecutive revisions with no gaps, and a watch sees each once, in order.
pub async fn concurrent_writes_take_gap_free_revisions<S: Storage>(s: &S) {
    s.create("/g/taken", b("x")).await.expect("create");
    let start = s.current_revision().await.expect("rev");
    let mut w = s.watch("/g/", start).await.expect("watch");
    let writes = (0..64).map(|i| async move {
        if i % 4 == 0 { s.create("/g/taken", b("again")).await } else { s.create(&format!("/g/{i:02}"), b("v")).await }
    });
    let results = futures::future::join_all(writes).await;
    let mut revs: Vec<u64> = results.iter().filter_map(|r| r.as_ref().ok()).map(|kv| kv.mod_revision).collect();
    revs.sort_unstable();
    let expected: Vec<u64> = (start + 1..=start + 48).collect();
    assert_eq!(revs, expected, "48 accepted writes must take revisions {}..={} exactly", start + 1, start + 48);
    assert_eq!(results.iter().filter(|r| matches!(r, Err(StorageError::AlreadyExists(_)))).count(), 16);
    let mut seen = Vec::new();
    while seen.len() < 48 {
        let ev = next_event(&mut w, &seen).await;
        seen.push(ev);
    }
    let watched: Vec<u64> = seen.iter().map(Event::revision).collect();
    assert_eq!(watched, expected, "the watch delivers each accepted write once, in revision order");
}

/// `open()` must return the same store each time (e.g. the same file).
pub async fn survives_reopen<S: Storage>(open: impl Fn() -> S) {
    let rev = {
        let s = open();
        let kv = s.create("/a/1", b("one")).await.expect("create");
        s.update("/a/1", b("two"), kv.mod_revision).await.expect("update").mod_revision
    };
    let s = open();
    let kv = s.get("/a/1").await.expect("get").expect("data must survive a reopen");
    assert_eq!(kv.value, b("two"));
    assert_eq!(kv.mod_revision, rev);
    assert_eq!(s.current_revision().await.expect("rev"), rev);
    let next = s.create("/a/2", b("x")).await.expect("create");
    assert!(next.mod_revision > rev, "revisions continue after a reopen");
}
