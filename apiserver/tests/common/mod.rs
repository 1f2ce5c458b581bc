//! An in-process API server on 127.0.0.1 with a fresh embedded store, and
//! helpers to poll for outcomes with a deadline.

#![allow(dead_code)]

pub mod kubectl;

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use berth_apiserver::{Embedded, Options};
use tokio::sync::oneshot;

pub struct Server {
    pub url: String,
    pub store: Embedded,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), berth_apiserver::Error>>>,
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Server {
        Server::start_in(tempfile::tempdir().expect("tempdir"), opts).await
    }

    /// Starts a server on the store kept in `dir` (as a previous server left it).
    pub async fn start_in(dir: tempfile::TempDir, opts: Options) -> Server {
        let store = Embedded::open(&dir.path().join("store.redb")).expect("open store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let task =
            tokio::spawn(berth_apiserver::serve_with(listener, store.clone(), berth_api::crds::all(), opts, shutdown));
        Server { url, store, dir, stop: Some(tx), task: Some(task) }
    }

    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    /// Stops the server, waits for it to finish, and hands back its directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let done = tokio::time::timeout(Duration::from_secs(10), task).await;
            let result = done.expect("the server stops within 10s").expect("server task");
            result.expect("server ran without error");
        }
        let Server { dir, store, .. } = self;
        drop(store);
        dir
    }

    /// One raw HTTP/1.1 exchange: (status, headers, body).
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        conn.write_all(req.as_bytes()).await.expect("write");
        let mut resp = String::new();
        tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut resp))
            .await
            .expect("response in time")
            .expect("read");
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }
}

/// Polls `f` until it returns `Some`, or panics after `limit` showing the last observation.
pub async fn eventually<T, O: Debug, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, O>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(seen) => {
                if tokio::time::Instant::now() > deadline {
                    panic!("timed out after {limit:?} waiting for {what}; last saw: {seen:?}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn job(name: &str, memory: &str) -> berth_api::Job {
    let mut j = berth_api::Job::new(
        name,
        berth_api::JobSpec {
            task_groups: vec![berth_api::TaskGroup {
                name: "main".into(),
                container: berth_api::Container {
                    image: "localhost:5000/berth/demo:latest".into(),
                    command: vec!["/bin/sh".into(), "-c".into(), "echo hello".into()],
                    resources: berth_api::Resources {
                        cpu: Some(berth_api::Quantity::new("100m")),
                        memory: Some(berth_api::Quantity::new(memory)),
                    },
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    j.metadata.namespace = Some("default".into());
    j
}

/// The `Status` of a request the server refused; panics on any other error.
pub fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}
