//! An etcd of a test's own (Debian's `etcd-server`): one member on free
//! loopback ports, its data in a temporary directory, stopped by PID on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll::poll;
use crate::process::terminate;

/// The binary started.
const ETCD: &str = "etcd";

/// A running single-member etcd, stopped when dropped.
pub struct Etcd {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`, where clients connect.
    client: String,
}

impl Etcd {
    /// Starts etcd and waits until `/health` answers healthy. A free port
    /// may be taken by another process before etcd binds it; then etcd
    /// exits at once and is started again on other ports (three tries).
    pub fn start() -> Etcd {
        crate::require(ETCD, "etcd-server");
        let mut last = String::new();
        for _ in 0..3 {
            match Etcd::try_start() {
                Ok(etcd) => return etcd,
                Err(e) => last = e,
            }
        }
        panic!("etcd did not start: {last}")
    }

    fn try_start() -> Result<Etcd, String> {
        let dir = tempfile::Builder::new().prefix("berth-etcd-").tempdir().expect("tempdir");
        let (client, peer) = (free_port(), free_port());
        let client = format!("127.0.0.1:{client}");
        let peer = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log file");
        let child = Command::new(ETCD)
            .args(["--name", "berth-test"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &format!("http://{client}")])
            .args(["--advertise-client-urls", &format!("http://{client}")])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("berth-test={peer}")])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting etcd");
        let mut etcd = Etcd { child, dir, client };
        let healthy = poll(Duration::from_secs(30), || {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                return Ok(Err(format!("etcd exited ({status})")));
            }
            health(&etcd.client).map(Ok)
        });
        match healthy {
            Ok(Ok(())) => Ok(etcd),
            Ok(Err(last)) => Err(format!("{last}\n--- etcd log ---\n{}", etcd.log())),
            Err(last) => panic!("etcd did not become healthy: {last}\n--- etcd log ---\n{}", etcd.log()),
        }
    }

    /// `127.0.0.1:PORT`, the client endpoint.
    pub fn endpoint(&self) -> &str {
        &self.client
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// `Ok` when `GET /health` says `"health":"true"`.
fn health(host: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET /health HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    if answer.contains("\"health\":\"true\"") { Ok(()) } else { Err(format!("GET /health: {answer}")) }
}
