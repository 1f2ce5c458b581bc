//! API server benchmark (`make bench`), the part clients feel: watch
//! delivery to 1,000 concurrent watchers through the API server (served by
//! its watch cache), and a list of 100,000 objects (time, and the memory
//! the server holds for them) — each beside the same on a local etcd
//! started for the run (1,000 etcd watchers; a range read of 100,000 keys;
//! etcd's own memory), with the ratio. Prints figures; asserts nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_apiserver::storage::{Embedded, Etcd, Storage};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};

const WATCHERS: usize = 1000;
const WATCHED_WRITES: usize = 50;
const LISTED: usize = 100_000;
const LOADERS: usize = 64;

fn lease(name: &str) -> Lease {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "default", "labels": {"bench": "berth"}},
        "spec": {"holderIdentity": format!("holder-of-{name}"), "leaseDurationSeconds": 40},
    }))
    .expect("lease")
}

/// Resident memory of process `pid` ("self" for this one), in MiB.
fn rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Samples (write call → event at a watcher) for every watcher and write.
type Samples = Arc<Mutex<Vec<Duration>>>;

/// Writes `WATCHED_WRITES` objects, paced, noting when each write was
/// called; waits until `expected` samples have arrived.
async fn paced_writes<F: Future<Output = ()>>(
    sent: &Arc<Mutex<Vec<Instant>>>,
    samples: &Samples,
    expected: usize,
    write: impl Fn(usize) -> F,
) -> Vec<Duration> {
    for i in 0..WATCHED_WRITES {
        sent.lock().expect("lock").push(Instant::now());
        write(i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while samples.lock().expect("lock").len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut all = samples.lock().expect("lock").clone();
    all.sort();
    all
}

/// 1,000 watches on the API server; latency of each event at each watcher.
async fn api_watchers(client: &kube::Client) -> Vec<Duration> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "default");
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let samples: Samples = Arc::default();
    let rv = api.list_metadata(&Default::default()).await.expect("list").metadata.resource_version.unwrap_or_default();
    let mut ready = Vec::new();
    for _ in 0..WATCHERS {
        let stream = api.watch(&WatchParams::default().timeout(290), &rv).await.expect("watch");
        let (sent, samples) = (sent.clone(), samples.clone());
        ready.push(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                if let Ok(WatchEvent::Added(l)) = ev {
                    let at = Instant::now();
                    let i: usize = l.metadata.name.unwrap_or_default().trim_start_matches("w-").parse().unwrap_or(0);
                    let started = sent.lock().expect("lock").get(i).copied();
                    if let Some(s) = started {
                        samples.lock().expect("lock").push(at.duration_since(s));
                    }
                }
            }
        }));
    }
    let out = paced_writes(&sent, &samples, WATCHERS * WATCHED_WRITES, |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &lease(&format!("w-{i}"))).await.expect("create");
        }
    })
    .await;
    ready.into_iter().for_each(|t| t.abort());
    out
}

/// 1,000 watches on etcd itself; the same measurement.
async fn etcd_watchers(store: &Etcd) -> Vec<Duration> {
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let samples: Samples = Arc::default();
    let from = store.current_revision().await.expect("revision");
    let mut tasks = Vec::new();
    for _ in 0..WATCHERS {
        let mut events = store.watch("/watch/", from).await.expect("watch");
        let (sent, samples) = (sent.clone(), samples.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(ev)) = events.next().await {
                let at = Instant::now();
                let i: usize = ev.key().trim_start_matches("/watch/w-").parse().unwrap_or(0);
                let started = sent.lock().expect("lock").get(i).copied();
                if let Some(s) = started {
                    samples.lock().expect("lock").push(at.duration_since(s));
                }
            }
        }));
    }
    let value = bytes::Bytes::from(serde_json::to_vec(&lease("w")).expect("json"));
    let out = paced_writes(&sent, &samples, WATCHERS * WATCHED_WRITES, |i| {
        let (store, value) = (store.clone(), value.clone());
        async move {
            store.create(&format!("/watch/w-{i}"), value).await.expect("create");
        }
    })
    .await;
    tasks.into_iter().for_each(|t| t.abort());
    out
}

/// Runs `LOADERS` tasks that together call `write(i)` for every `i < LISTED`.
async fn load<F: Future<Output = ()> + Send + 'static>(write: impl Fn(usize) -> F + Send + Sync + 'static) {
    let write = Arc::new(write);
    let tasks: Vec<_> = (0..LOADERS)
        .map(|w| {
            let write = write.clone();
            tokio::spawn(async move {
                for i in (w..LISTED).step_by(LOADERS) {
                    write(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("loader");
    }
}

fn main() {
    let etcd = berth_e2e::Etcd::start();
    let dir = tempfile::Builder::new().prefix("berth-bench-api-").tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let rss_start = rss_mib("self");
        let store = Embedded::open(&dir.path().join("store.redb")).expect("open the embedded store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(berth_apiserver::serve(listener, store, vec![], std::future::pending()));
        let client = kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client");
        let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
        while leases.list_metadata(&Default::default()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let etcd_store = Etcd::connect(&format!("etcd://{}/bench-api", etcd.endpoint())).await.expect("etcd");

        let api_lat = api_watchers(&client).await;
        let etcd_lat = etcd_watchers(&etcd_store).await;

        let rss_before = rss_mib("self");
        let started = Instant::now();
        load(move |i| {
            let leases = leases.clone();
            async move {
                leases.create(&PostParams::default(), &lease(&format!("l-{i:06}"))).await.expect("create");
            }
        })
        .await;
        let api_load = started.elapsed();
        let rss_loaded = rss_mib("self");
        // The list as bytes on the wire, as etcd's range below: no client-side decoding is timed.
        let request = http::Request::get("/apis/coordination.k8s.io/v1/namespaces/default/leases")
            .body(Vec::new())
            .expect("request");
        let started = Instant::now();
        let body = client.request_text(request).await.expect("list");
        let api_list = started.elapsed();
        let listed = body.matches("\"holderIdentity\"").count();
        assert!(listed >= LISTED, "listed {listed}");
        drop(body);

        let etcd_pid = etcd.pid().to_string();
        let etcd_before = rss_mib(&etcd_pid);
        let value = bytes::Bytes::from(serde_json::to_vec(&lease("l-000000")).expect("json"));
        let started = Instant::now();
        let (s, v) = (etcd_store.clone(), value.clone());
        load(move |i| {
            let (s, v) = (s.clone(), v.clone());
            async move {
                s.create(&format!("/list/l-{i:06}"), v).await.expect("create");
            }
        })
        .await;
        let etcd_load = started.elapsed();
        let etcd_loaded = rss_mib(&etcd_pid);
        let started = Instant::now();
        let ranged = etcd_store.range("/list/", None, 0, 0).await.expect("range").kvs.len();
        let etcd_list = started.elapsed();
        assert_eq!(ranged, LISTED);

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("API server benchmark (Berth on its embedded store; etcd: one local member started for this run)");
        println!("{:<44} {:>12} {:>12} {:>14}", "", "berth", "etcd", "berth/etcd");
        let row = |name: &str, b: f64, e: f64, unit: &str| {
            println!("{name:<44} {b:>10.1}{unit} {e:>10.1}{unit} {:>14.2}", b / e.max(f64::EPSILON));
        };
        let (a50, a99) = (percentile(&api_lat, 0.5), percentile(&api_lat, 0.99));
        let (e50, e99) = (percentile(&etcd_lat, 0.5), percentile(&etcd_lat, 0.99));
        row(&format!("watch delivery p50, {WATCHERS} watchers"), ms(a50), ms(e50), "ms");
        row(&format!("watch delivery p99, {WATCHERS} watchers"), ms(a99), ms(e99), "ms");
        println!(
            "{:<44} {:>12} {:>12}",
            "  (samples: write call → event at watcher)",
            api_lat.len(),
            etcd_lat.len()
        );
        row(&format!("load {LISTED} objects, {LOADERS} writers"), api_load.as_secs_f64(), etcd_load.as_secs_f64(), "s ");
        row(&format!("list {LISTED} objects"), ms(api_list), ms(etcd_list), "ms");
        row(
            &format!("memory held for {LISTED} objects"),
            rss_loaded - rss_before,
            etcd_loaded - etcd_before,
            "Mi",
        );
        println!(
            "(berth: growth of the benchmark process, which runs the API server and its watch cache, {rss_start:.0} Mi at start; etcd: growth of its process)"
        );
    });
}
