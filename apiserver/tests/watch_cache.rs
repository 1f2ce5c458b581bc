//! The watch cache: many watchers share one storage watch, lists that may
//! be served from memory see what they ask for, and their pages continue
//! from storage as one snapshot.

mod common;

use std::time::{Duration, Instant};

use berth_api::Job;
use common::{Server, job};
use kube::api::{Api, ListParams, PostParams, VersionMatch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JOBS: &str = "/apis/berth.dev/v1alpha1/namespaces/default/jobs";
const LIMIT: Duration = Duration::from_secs(60);

/// Reads from `conn` into `buf` until it holds `needle`.
async fn read_until(conn: &mut TcpStream, buf: &mut Vec<u8>, needle: &str) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(buf).contains(needle) {
        let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("closed; got {}", String::from_utf8_lossy(buf)));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_watchers_each_get_the_event() {
    const WATCHERS: usize = 1000;
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let before = jobs.create(&PostParams::default(), &job("before", "1Mi")).await.expect("create");
    let rv = before.metadata.resource_version.clone().expect("rv");
    let addr = server.url.trim_start_matches("http://").to_string();
    let request = format!("GET {JOBS}?watch=true&resourceVersion={rv} HTTP/1.1\r\nHost: {addr}\r\n\r\n");

    // Open every watch and wait for its 200 before the write.
    let mut conns = Vec::with_capacity(WATCHERS);
    for _ in 0..WATCHERS {
        let mut conn = TcpStream::connect(&addr).await.expect("connect");
        conn.write_all(request.as_bytes()).await.expect("send");
        conns.push(conn);
    }
    let opened = futures::future::join_all(conns.into_iter().map(|mut conn| async move {
        let mut buf = Vec::new();
        let got = tokio::time::timeout(LIMIT, read_until(&mut conn, &mut buf, "\r\n\r\n")).await;
        got.map_err(|_| "no response head in time".to_string())??;
        let head = String::from_utf8_lossy(&buf).to_string();
        if !head.starts_with("HTTP/1.1 200") {
            return Err(head);
        }
        Ok((conn, buf))
    }))
    .await;
    let conns: Vec<(TcpStream, Vec<u8>)> =
        opened.into_iter().collect::<Result<_, String>>().unwrap_or_else(|e| panic!("a watch did not open: {e}"));

    let start = Instant::now();
    jobs.create(&PostParams::default(), &job("broadcast", "1Mi")).await.expect("create");
    let received = futures::future::join_all(conns.into_iter().map(|(mut conn, mut buf)| async move {
        let got = tokio::time::timeout(LIMIT, read_until(&mut conn, &mut buf, "\"name\":\"broadcast\"")).await;
        got.map_err(|_| format!("no event in time; got {}", String::from_utf8_lossy(&buf)))??;
        let text = String::from_utf8_lossy(&buf).to_string();
        if !text.contains("\"type\":\"ADDED\"") || text.contains("\"name\":\"before\"") {
            return Err(format!("not exactly the one ADDED event: {text}"));
        }
        Ok(start.elapsed())
    }))
    .await;
    let mut latencies: Vec<Duration> =
        received.into_iter().collect::<Result<_, String>>().unwrap_or_else(|e| panic!("a watcher missed it: {e}"));
    latencies.sort();
    // Reported, not asserted: timing targets belong in benchmarks.
    println!(
        "{WATCHERS} watchers: median {:?}, p99 {:?}, last {:?}",
        latencies[WATCHERS / 2],
        latencies[WATCHERS * 99 / 100],
        latencies[WATCHERS - 1]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_lists_see_what_they_ask_for_and_page_as_one_snapshot() {
    let server = Server::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client(), "default");
    let mut last = String::new();
    for n in ["a", "b", "c", "d"] {
        let j = jobs.create(&PostParams::default(), &job(n, "1Mi")).await.expect("create");
        last = j.metadata.resource_version.expect("rv");
    }
    // Not older than the last write: the cache waits until it has it.
    let fresh = jobs.list(&ListParams::default().at(&last).matching(VersionMatch::NotOlderThan)).await.expect("list");
    assert_eq!(fresh.items.len(), 4);
    assert!(fresh.metadata.resource_version.as_deref().and_then(|r| r.parse::<u64>().ok()) >= last.parse().ok());

    let first = jobs.list(&ListParams::default().match_any().limit(3)).await.expect("page 1");
    let names = |l: &kube::core::ObjectList<Job>| {
        l.items.iter().map(|j| j.metadata.name.clone().unwrap_or_default()).collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["a", "b", "c"]);
    let token = first.metadata.continue_.clone().expect("a continue token");
    jobs.create(&PostParams::default(), &job("e", "1Mi")).await.expect("create e");
    jobs.delete("d", &Default::default()).await.expect("delete d");
    let second = jobs.list(&ListParams::default().limit(3).continue_token(&token)).await.expect("page 2");
    assert_eq!(names(&second), ["d"], "the rest of the snapshot, without later writes");
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);

    let (code, _, body) = server.raw("GET", &format!("{JOBS}?resourceVersion=0&labelSelector=x%3Dy"), &[], "").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"items\":[]"), "selectors apply to cached lists: {body}");
    server.stop().await;
}
