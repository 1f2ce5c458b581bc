//! The conformance suite against a real etcd (Debian's `etcd-server`),
//! started on free loopback ports and stopped by PID.

use std::sync::atomic::{AtomicUsize, Ordering};

use berth_e2e::Etcd as EtcdProcess;

use super::*;
use crate::storage::conformance;

async fn etcd() -> EtcdProcess {
    tokio::task::spawn_blocking(EtcdProcess::start).await.expect("starting etcd")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_passes_the_conformance_suite() {
    let process = etcd().await;
    let n = AtomicUsize::new(0);
    let endpoint = process.endpoint().to_string();
    // Each check gets its own key prefix on the one etcd; the checks run one at a time.
    conformance::run_all(|| {
        let url = format!("etcd://{endpoint}/check-{}", n.fetch_add(1, Ordering::SeqCst));
        async move { Etcd::connect(&url).await.expect("connect") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_survives_reconnect() {
    let process = etcd().await;
    let url = format!("etcd://{}/reconnect", process.endpoint());
    let first = Etcd::connect(&url).await.expect("connect");
    conformance::survives_reopen(|| first.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_stores_apart() {
    let process = etcd().await;
    let a = Etcd::connect(&format!("etcd://{}/a", process.endpoint())).await.expect("connect");
    let b = Etcd::connect(&format!("etcd://{}/b", process.endpoint())).await.expect("connect");
    a.create("/k", Bytes::from_static(b"in a")).await.expect("create");
    assert_eq!(b.get("/k").await.expect("get"), None);
    let listed = a.range("/", None, 0, 0).await.expect("range");
    assert_eq!(
        listed.kvs.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        ["/k"],
        "keys come back without the prefix"
    );
}

#[tokio::test]
async fn an_unreachable_etcd_is_an_error_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let url = format!("etcd://127.0.0.1:{port}");
    let err = Etcd::connect(&url).await.err().expect("nothing listens there");
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_larger_than_four_mebibytes_is_read_whole() {
    let process = etcd().await;
    let s = Etcd::connect(&format!("etcd://{}/big", process.endpoint())).await.expect("connect");
    let value = Bytes::from(vec![b'x'; 1 << 20]);
    for i in 0..6 {
        s.create(&format!("/big/{i}"), value.clone()).await.expect("create a 1 MiB value");
    }
    let all = s.range("/big/", None, 0, 0).await.expect("a 6 MiB range");
    assert_eq!(all.kvs.len(), 6);
    assert!(all.kvs.iter().all(|kv| kv.value.len() == 1 << 20));
}
