//! A local OCI registry (Debian's `docker-registry`) on a free loopback
//! port, storing in a temporary directory; and the demo image pushed to it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll::poll;
use crate::process::terminate;

pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    host: String,
}

impl Registry {
    /// Starts the registry and waits until `/v2/` answers.
    pub fn start() -> Registry {
        crate::require("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new().prefix("berth-registry-").tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("writing registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let r = Registry { child, dir, host };
        if let Err(last) = poll(Duration::from_secs(30), || get_v2(&r.host)) {
            let log = std::fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default();
            panic!("the registry did not start: {last}\n--- registry log ---\n{log}");
        }
        r
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.host.clone()
    }
}

/// `Ok` when `GET http://host/v2/` answers 200 (the distribution API's ping).
fn get_v2(host: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") { Ok(()) } else { Err(format!("GET /v2/: {status}")) }
}

impl Drop for Registry {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// Builds the busybox demo image with `scripts/build-demo-image.sh` and
/// pushes it as `host/name_tag` (e.g. `berth/demo:latest`).
pub fn build_demo_image(host: &str, name_tag: &str) {
    crate::require("umoci", "umoci");
    crate::require("skopeo", "skopeo");
    assert!(
        Path::new("/bin/busybox").is_file(),
        "/bin/busybox is missing: run `make deps` (apt-get install busybox-static)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-demo-image.sh");
    let out = Command::new("bash").arg(script).args([host, name_tag]).output().expect("running build-demo-image.sh");
    assert!(out.status.success(), "building the demo image failed: {}", crate::output_text(&out));
}
