use bytes::Bytes;
use serde_json::json;

use super::*;

fn kv(key: &str, rev: u64) -> KeyValue {
    let value = Bytes::from(json!({"metadata": {"name": key}}).to_string());
    KeyValue { key: key.into(), value, create_revision: rev, mod_revision: rev }
}

fn put(key: &str, rev: u64) -> Event {
    Event::Put { kv: kv(key, rev), prev: None }
}

async fn next_rev(sub: &mut Subscription) -> u64 {
    let c = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("in time");
    c.expect("open").expect("ok").revision()
}

#[tokio::test]
async fn watchers_replay_the_window_then_follow_live_changes_under_their_prefix() {
    let cache = Cache::new(10);
    cache.reset(&[kv("/registry/a/x", 1)], 1);
    cache.apply(&put("/registry/a/y", 2));
    cache.apply(&put("/registry/b/z", 3));
    let mut sub = cache.watch("/registry/a/", 1).expect("in the window");
    assert_eq!(next_rev(&mut sub).await, 2);
    cache.apply(&put("/registry/b/w", 4));
    cache.apply(&put("/registry/a/v", 5));
    assert_eq!(next_rev(&mut sub).await, 5, "other prefixes are skipped");
    assert_eq!(sub.revision(), 5);
    let listed = cache.list("/registry/a/", None, 2, &|_| true);
    let keys: Vec<&str> = listed.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        (keys, listed.revision, listed.more_after.as_deref()),
        (vec!["/registry/a/v", "/registry/a/x"], 5, Some("/registry/a/x"))
    );
}

#[tokio::test]
async fn revisions_before_the_window_are_expired_and_a_reset_ends_watchers() {
    let cache = Cache::new(2);
    cache.reset(&[], 10);
    for r in 11..=14 {
        cache.apply(&put(&format!("/registry/a/{r}"), r));
    }
    assert!(matches!(cache.watch("/registry/", 11), Err(Error::Expired(_))), "11 fell out of a window of 2");
    let mut sub = cache.watch("/registry/", 12).expect("12 is the window's start");
    assert_eq!(next_rev(&mut sub).await, 13);
    cache.reset(&[], 20);
    assert_eq!(next_rev(&mut sub).await, 14, "what was queued still arrives");
    assert!(sub.next().await.is_none(), "then the watch ends");
}

#[tokio::test]
async fn a_watcher_behind_the_live_channel_catches_up_or_expires() {
    let cache = Cache::new(BROADCAST * 3);
    cache.reset(&[], 0);
    let mut sub = cache.watch("/registry/", 0).expect("watch");
    let total = BROADCAST as u64 * 2;
    for r in 1..=total {
        cache.apply(&put(&format!("/registry/a/{r}"), r));
    }
    for want in 1..=total {
        assert_eq!(next_rev(&mut sub).await, want);
    }
    let small = Cache::new(4);
    small.reset(&[], 0);
    let mut slow = small.watch("/registry/", 0).expect("watch");
    for r in 1..=(BROADCAST as u64 + 10) {
        small.apply(&put(&format!("/registry/a/{r}"), r));
    }
    let got = tokio::time::timeout(Duration::from_secs(5), slow.next()).await.expect("in time").expect("open");
    assert!(matches!(got, Err(Error::Expired(_))), "{got:?}");
}
