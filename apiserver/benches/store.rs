//! Store benchmark (`make bench`): durable writes per second of the
//! embedded backend and of a local etcd started for the run (one writer,
//! then 64 concurrent writers), and watch delivery latency (from the write
//! call to the event at a watcher, p50/p99), each with the embedded/etcd
//! ratio. Both stores keep their data in temporary directories on the same
//! disk, and both fsync before acknowledging. Prints figures; asserts
//! nothing about them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_apiserver::storage::{Embedded, Etcd, Storage};
use bytes::Bytes;
use futures::StreamExt;

const SEQUENTIAL_WRITES: usize = 300;
const CONCURRENT_WRITERS: usize = 64;
const WRITES_PER_WRITER: usize = 40;
const WATCHED_WRITES: usize = 300;

struct Figures {
    sequential: f64,
    concurrent: f64,
    p50: Duration,
    p99: Duration,
}

fn value() -> Bytes {
    Bytes::from(format!("{{\"spec\":{{\"pad\":\"{}\"}}}}", "x".repeat(400)))
}

async fn sequential<S: Storage>(s: &S) -> f64 {
    let start = Instant::now();
    for i in 0..SEQUENTIAL_WRITES {
        s.create(&format!("/bench/seq/{i:05}"), value()).await.expect("create");
    }
    SEQUENTIAL_WRITES as f64 / start.elapsed().as_secs_f64()
}

async fn concurrent<S: Storage + Clone>(s: &S) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT_WRITERS)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..WRITES_PER_WRITER {
                    s.create(&format!("/bench/par/{w:02}/{i:05}"), value()).await.expect("create");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    (CONCURRENT_WRITERS * WRITES_PER_WRITER) as f64 / start.elapsed().as_secs_f64()
}

/// Latency from the write call to its event at a watcher, sorted.
async fn watch_latency<S: Storage>(s: &S) -> Vec<Duration> {
    let from = s.current_revision().await.expect("revision");
    let mut events = s.watch("/bench/watch/", from).await.expect("watch");
    let sent: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let receiver = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(WATCHED_WRITES);
            while latencies.len() < WATCHED_WRITES {
                let ev = events.next().await.expect("watch open").expect("event");
                let at = Instant::now();
                let started = sent.lock().expect("lock").get(ev.key()).copied();
                latencies.push(started.map(|s| at.duration_since(s)).unwrap_or_default());
            }
            latencies
        })
    };
    for i in 0..WATCHED_WRITES {
        let key = format!("/bench/watch/{i:05}");
        sent.lock().expect("lock").insert(key.clone(), Instant::now());
        s.create(&key, value()).await.expect("create");
    }
    let mut latencies = tokio::time::timeout(Duration::from_secs(120), receiver).await.expect("events").expect("task");
    latencies.sort();
    latencies
}

async fn measure<S: Storage + Clone>(s: &S) -> Figures {
    let sequential = sequential(s).await;
    let concurrent = concurrent(s).await;
    let lat = watch_latency(s).await;
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Figures { sequential, concurrent, p50: pct(0.50), p99: pct(0.99) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let etcd = berth_e2e::Etcd::start();
    let dir = tempfile::Builder::new().prefix("berth-bench-").tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (embedded, commits, writes, remote) = rt.block_on(async {
        let store = Embedded::open(&dir.path().join("store.redb")).expect("open the embedded store");
        let embedded = measure(&store).await;
        let (commits, writes) = store.commit_stats();
        let etcd_store = Etcd::connect(&format!("etcd://{}/bench", etcd.endpoint())).await.expect("connect to etcd");
        let remote = measure(&etcd_store).await;
        (embedded, commits, writes, remote)
    });
    println!("store benchmark (durable writes; etcd: one local member started for this run)");
    println!("{:<34} {:>12} {:>12} {:>16}", "", "embedded", "etcd", "embedded/etcd");
    let row = |name: &str, e: f64, x: f64, unit: &str| {
        println!("{name:<34} {:>10.0}{unit} {:>10.0}{unit} {:>16.2}", e, x, e / x);
    };
    row("writes/s, 1 writer", embedded.sequential, remote.sequential, "  ");
    row(&format!("writes/s, {CONCURRENT_WRITERS} writers"), embedded.concurrent, remote.concurrent, "  ");
    let lat = |name: &str, e: Duration, x: Duration| {
        println!("{name:<34} {:>10.2}ms {:>10.2}ms {:>16.2}", ms(e), ms(x), ms(e) / ms(x).max(f64::EPSILON));
    };
    lat("watch delivery p50", embedded.p50, remote.p50);
    lat("watch delivery p99", embedded.p99, remote.p99);
    println!(
        "embedded group commit: {writes} writes in {commits} fsynced transactions ({:.1} per commit)",
        writes as f64 / commits.max(1) as f64
    );
}
