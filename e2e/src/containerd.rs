//! A containerd of a test's own: temporary root, state and socket, the CRI
//! plugin off. Stopped by PID on drop, with what its shims left unmounted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll::poll;
use crate::process::terminate;

pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Containerd {
    /// Starts containerd and waits until it answers on its socket.
    pub fn start() -> Containerd {
        crate::require("containerd", "containerd");
        crate::require("runc", "runc");
        let dir = tempfile::Builder::new().prefix("berth-containerd-").tempdir().expect("tempdir");
        let d = dir.path();
        let socket = d.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = socket.display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("writing containerd config");
        let log = std::fs::File::create(d.join("containerd.log")).expect("log file");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let c = Containerd { child, dir, socket };
        let ready = poll(Duration::from_secs(30), || {
            let out = Command::new("ctr").arg("--address").arg(&c.socket).arg("version").output();
            match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(String::from_utf8_lossy(&o.stderr).to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        if let Err(last) = ready {
            panic!(
                "containerd did not start: {last}\n{}",
                std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
            );
        }
        c
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
        // Shims outlive containerd: end those of this instance, by PID, and unmount.
        let root = self.dir.path().display().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                if cmdline.contains("containerd-shim") && cmdline.contains(&root) {
                    let _ = Command::new("kill").arg("-KILL").arg(p.file_name()).status();
                }
            }
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut ours: Vec<&str> =
            mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&root)).collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
    }
}
