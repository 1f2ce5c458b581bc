//! A local OCI registry (Debian's `docker-registry`) on a free loopback
//! port, storing in a temporary directory, open or behind htpasswd basic
//! auth; and the demo image pushed to it.

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
    /// `user:password` when the registry requires them.
    creds: Option<String>,
}

impl Registry {
    /// Starts the registry and waits until `/v2/` answers.
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// Starts a registry that requires `user` and `pass` (HTTP basic auth
    /// against an htpasswd file with a bcrypt hash) for every request.
    pub fn start_with_auth(user: &str, pass: &str) -> Registry {
        Registry::start_with(Some((user, pass)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> Registry {
        crate::require("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new().prefix("berth-registry-").tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = auth {
            crate::require("htpasswd", "apache2-utils");
            let out = Command::new("htpasswd").args(["-Bbn", user, pass]).output().expect("running htpasswd");
            assert!(out.status.success(), "htpasswd failed: {}", crate::output_text(&out));
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("writing the htpasswd file");
            config.push_str(&format!("auth:\n  htpasswd:\n    realm: berth-e2e\n    path: {}\n", file.display()));
        }
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
        let creds = auth.map(|(u, p)| format!("{u}:{p}"));
        let r = Registry { child, dir, host, creds };
        // Behind auth, /v2/ answers 401 once the registry is up.
        let ready = if r.creds.is_some() { "401" } else { "200" };
        if let Err(last) = poll(Duration::from_secs(30), || get_v2(&r.host, ready)) {
            let log = std::fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default();
            panic!("the registry did not start: {last}\n--- registry log ---\n{log}");
        }
        r
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Builds the demo image and pushes it here as `name_tag`, with this
    /// registry's credentials; with `marker`, the image holds
    /// `/etc/berth-marker` too, so it differs from every other demo image.
    pub fn push_demo_image(&self, name_tag: &str, marker: Option<&str>) {
        build_image(&self.host, name_tag, self.creds.as_deref(), marker);
    }
}

/// `Ok` when `GET http://host/v2/` (the distribution API's ping) answers `code`.
fn get_v2(host: &str, code: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some(code) { Ok(()) } else { Err(format!("GET /v2/: {status}")) }
}

impl Drop for Registry {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// Builds the busybox demo image with `scripts/build-demo-image.sh` and
/// pushes it as `host/name_tag` (e.g. `berth/demo:latest`).
pub fn build_demo_image(host: &str, name_tag: &str) {
    build_image(host, name_tag, None, None);
}

fn build_image(host: &str, name_tag: &str, creds: Option<&str>, marker: Option<&str>) {
    crate::require("umoci", "umoci");
    crate::require("skopeo", "skopeo");
    assert!(
        Path::new("/bin/busybox").is_file(),
        "/bin/busybox is missing: run `make deps` (apt-get install busybox-static)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-demo-image.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).args([host, name_tag]);
    if let Some(c) = creds {
        cmd.env("DEST_CREDS", c);
    }
    if let Some(m) = marker {
        cmd.env("MARKER", m);
    }
    let out = cmd.output().expect("running build-demo-image.sh");
    assert!(out.status.success(), "building the demo image failed: {}", crate::output_text(&out));
}
