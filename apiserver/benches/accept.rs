//! What admitting an accept costs (`make bench`): the latency of creating
//! Placements that name no offer, beside that of Placements accepting one
//! Offer (the server reads the offer and the namespace's placements naming
//! it), in a namespace already holding many placements. Prints figures;
//! asserts nothing.

use std::time::{Duration, Instant};

use berth_api::{Container, Offer, OfferSpec, Placement, PlacementSpec, Resources};
use kube::api::{Api, Patch, PatchParams, PostParams};

/// Placements in the namespace before the measured creates.
const BACKGROUND: usize = 5_000;
/// Creates measured of each sort.
const MEASURED: usize = 500;
const LOADERS: usize = 32;

fn res(cpu: &str, memory: &str) -> Resources {
    Resources { cpu: Some(cpu.into()), memory: Some(memory.into()) }
}

fn placement(name: &str, offer: Option<&str>) -> Placement {
    let spec = PlacementSpec {
        agent: "agent-1".into(),
        job: "bench".into(),
        task_group: "main".into(),
        offer: offer.map(str::to_string),
        container: Container {
            image: "registry.test/demo:1".into(),
            resources: res("1m", "1Mi"),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut p = Placement::new(name, spec);
    p.metadata.labels = Some([("berth.dev/framework".to_string(), "fa".to_string())].into());
    p
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Creates `MEASURED` placements named `{prefix}-{i}`, one at a time; the sorted latencies.
async fn timed(api: &Api<Placement>, prefix: &str, offer: Option<&str>) -> Vec<Duration> {
    let mut out = Vec::with_capacity(MEASURED);
    for i in 0..MEASURED {
        let p = placement(&format!("{prefix}-{i:04}"), offer);
        let started = Instant::now();
        api.create(&PostParams::default(), &p).await.expect("create");
        out.push(started.elapsed());
    }
    out.sort();
    out
}

fn main() {
    let dir = tempfile::Builder::new().prefix("berth-bench-accept-").tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = berth_apiserver::Embedded::open(&dir.path().join("store.redb")).expect("open the store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(berth_apiserver::serve(listener, store, berth_api::crds::all(), std::future::pending()));
        let client = kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client");
        let api: Api<Placement> = Api::namespaced(client.clone(), "default");
        while api.list_metadata(&Default::default()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let loaders: Vec<_> = (0..LOADERS)
            .map(|w| {
                let api = api.clone();
                tokio::spawn(async move {
                    for i in (w..BACKGROUND).step_by(LOADERS) {
                        let p = placement(&format!("bg-{i:06}"), None);
                        api.create(&PostParams::default(), &p).await.expect("background");
                    }
                })
            })
            .collect();
        for l in loaders {
            l.await.expect("loader");
        }
        let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
        let spec = OfferSpec {
            framework: "fa".into(),
            agent: "agent-1".into(),
            resources: res("1000", "1Ti"),
            ports: Vec::new(),
            expires_at: Some(berth_api::format_time(expires)),
            decline: None,
        };
        let offers: Api<Offer> = Api::namespaced(client.clone(), "default");
        offers.create(&PostParams::default(), &Offer::new("o1", spec)).await.expect("offer");
        let open = serde_json::json!({"status": {"state": "Outstanding"}});
        offers.patch_status("o1", &PatchParams::default(), &Patch::Merge(&open)).await.expect("offer status");

        let plain = timed(&api, "plain", None).await;
        let accepts = timed(&api, "accept", Some("o1")).await;

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("Admission of accepts (embedded store; {BACKGROUND} placements already in the namespace)");
        println!("{:<48} {:>10} {:>10}", "", "p50", "p99");
        for (name, lat) in [("create a placement naming no offer", &plain), ("create an accept of one offer", &accepts)]
        {
            println!("{name:<48} {:>8.2}ms {:>8.2}ms", ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)));
        }
        println!("({MEASURED} sequential creates each; the accepts share the offer, so up to {MEASURED} name it)");
    });
}
