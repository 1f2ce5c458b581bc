//! An etcd of a test's own (Debian's `etcd-server`): one member (or a
//! cluster of several) on free loopback ports, data in a temporary
//! directory, stopped by PID on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
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
        let child = spawn_member(dir.path(), "berth-test", &client, &peer, &format!("berth-test={peer}"));
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

    /// The etcd process's PID (for its memory, in benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT`, the client endpoint.
    pub fn endpoint(&self) -> &str {
        &self.client
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berth-test.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

/// Starts one member named `name` keeping its data and `<name>.log` in `dir`.
fn spawn_member(dir: &Path, name: &str, client: &str, peer: &str, initial_cluster: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    Command::new(ETCD)
        .args(["--name", name])
        .arg("--data-dir")
        .arg(dir.join(format!("{name}.data")))
        .args(["--listen-client-urls", &format!("http://{client}")])
        .args(["--advertise-client-urls", &format!("http://{client}")])
        .args(["--listen-peer-urls", peer])
        .args(["--initial-advertise-peer-urls", peer])
        .args(["--initial-cluster", initial_cluster])
        .args(["--initial-cluster-token", "berth-test"])
        .args(["--logger", "zap", "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("starting etcd")
}

/// A cluster of several etcd members on loopback, for tests that kill a
/// minority of them. Members still running are stopped by PID on drop.
pub struct EtcdCluster {
    members: Vec<(Option<Child>, String)>,
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `n` members and waits until each answers healthy.
    pub fn start(n: usize) -> EtcdCluster {
        crate::require(ETCD, "etcd-server");
        let dir = tempfile::Builder::new().prefix("berth-etcd-cluster-").tempdir().expect("tempdir");
        let ports: Vec<(String, String)> = (0..n)
            .map(|_| (format!("127.0.0.1:{}", free_port()), format!("http://127.0.0.1:{}", free_port())))
            .collect();
        let initial: Vec<String> = ports.iter().enumerate().map(|(i, (_, peer))| format!("m{i}={peer}")).collect();
        let initial = initial.join(",");
        let members = ports
            .into_iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                (Some(spawn_member(dir.path(), &format!("m{i}"), &client, &peer, &initial)), client)
            })
            .collect();
        let cluster = EtcdCluster { members, dir };
        let healthy = poll(Duration::from_secs(60), || {
            cluster.members.iter().try_for_each(|(_, client)| health(client).map_err(|e| format!("{client}: {e}")))
        });
        if let Err(last) = healthy {
            panic!("the etcd cluster did not become healthy: {last}\n{}", cluster.logs());
        }
        cluster
    }

    /// The client endpoints, `127.0.0.1:PORT` each.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|(_, c)| c.clone()).collect()
    }

    /// Kills member `i` with SIGKILL and reaps it.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every member's log.
    pub fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| {
                let log = self.dir.path().join(format!("m{i}.log"));
                format!("--- m{i} ---\n{}", std::fs::read_to_string(log).unwrap_or_default())
            })
            .collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.members {
            if let Some(child) = child.as_mut() {
                terminate(child, Duration::from_secs(10));
            }
        }
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
