//! A `berth apiserver` process of a test's own, on a free loopback port,
//! with its data directory; for store tests that kill and restart it. It
//! serves plain HTTP (`--insecure-http`): these tests are about the store,
//! and their small HTTP client speaks no TLS (`e2e/tests/security.rs` covers
//! HTTPS and tokens).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::poll::poll;
use crate::process::terminate;

/// A running `berth apiserver`, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Apiserver {
    child: Child,
    log: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    pub kubeconfig: PathBuf,
}

impl Apiserver {
    /// Starts `berth apiserver --data-dir data_dir` with `extra` flags and
    /// waits until `/healthz` answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Apiserver {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let kubeconfig = data_dir.join("kubeconfig");
        // A kubeconfig from an earlier run names an old port.
        let _ = std::fs::remove_file(&kubeconfig);
        let log = next_log(data_dir);
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(crate::berth::binary())
            .args(["apiserver", "--listen", "127.0.0.1:0", "--insecure-http"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("BERTH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("starting berth apiserver");
        let mut server = Apiserver { child, log, addr: String::new(), kubeconfig };
        let ready = poll(Duration::from_secs(60), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Ok(Err(format!("berth apiserver exited ({status})")));
            }
            let text = std::fs::read_to_string(&server.kubeconfig).map_err(|e| format!("no kubeconfig yet: {e}"))?;
            let addr = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("server: http://"))
                .ok_or_else(|| format!("no server in the kubeconfig: {text}"))?
                .trim()
                .to_string();
            match crate::http::request(&addr, "GET", "/healthz", None) {
                Ok(a) if a.status == 200 => Ok(Ok(addr)),
                other => Err(format!("GET /healthz: {other:?}")),
            }
        });
        match ready {
            Ok(Ok(addr)) => server.addr = addr,
            Ok(Err(last)) | Err(last) => panic!("the API server did not start: {last}\n{}", server.log_text()),
        }
        server
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill9(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }

    /// What the server logged.
    pub fn log_text(&self) -> String {
        format!("--- {} ---\n{}", self.log.display(), std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl").arg("--kubeconfig").arg(&self.kubeconfig).args(args).output().expect("running kubectl")
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// `apiserver-N.log`, numbered by how many runs the directory has seen.
fn next_log(dir: &Path) -> PathBuf {
    (0..).map(|n| dir.join(format!("apiserver-{n}.log"))).find(|p| !p.exists()).expect("a free log name")
}

/// Runs `berth apiserver` on `data_dir` expecting it to refuse to start;
/// returns its output once it has exited (or panics if it keeps running).
pub fn refused_start(data_dir: &Path) -> Output {
    let mut child = Command::new(crate::berth::binary())
        .args(["apiserver", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting berth apiserver");
    let exited = poll(Duration::from_secs(60), || match child.try_wait() {
        Ok(Some(_)) => Ok(()),
        _ => Err("still running".to_string()),
    });
    if exited.is_err() {
        terminate(&mut child, Duration::from_secs(5));
        panic!("berth apiserver kept running on a damaged store in {}", data_dir.display());
    }
    child.wait_with_output().expect("output")
}
