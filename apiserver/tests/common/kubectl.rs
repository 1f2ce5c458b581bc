//! The real `kubectl` (1.32) against an in-process server: a kubeconfig
//! and cache in the server's directory, each run bounded by [`LIMIT`].

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::Server;

pub const KUBECTL: &str = "/usr/bin/kubectl";
pub const LIMIT: Duration = Duration::from_secs(20);

pub struct Kubectl {
    dir: PathBuf,
}

#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    /// The exit code (`kubectl diff` exits 1 when there are differences).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(server: &Server) -> Kubectl {
        let dir = server.dir.path().to_path_buf();
        std::fs::write(dir.join("kubeconfig"), berth_apiserver::kubeconfig(&server.url)).expect("kubeconfig");
        Kubectl { dir }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KUBECTL);
        c.arg("--kubeconfig").arg(self.dir.join("kubeconfig")).arg("--cache-dir").arg(self.dir.join("cache"));
        c.args(args).env("HOME", &self.dir).stdin(Stdio::null()).kill_on_drop(true);
        c
    }

    pub async fn run(&self, args: &[&str]) -> Out {
        let out = tokio::time::timeout(LIMIT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {LIMIT:?}"))
            .expect("kubectl runs");
        Out {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Runs kubectl and expects success.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.ok, "kubectl {args:?} failed: {out:?}");
        out.stdout
    }

    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write manifest");
        p.display().to_string()
    }
}
