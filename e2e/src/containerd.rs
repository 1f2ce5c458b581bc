//! A containerd of a test's own: temporary root, state and socket, the CRI
//! plugin off. On drop its containers, their shims and containerd itself are
//! stopped by PID, what they left mounted under its root is unmounted, and
//! the cgroups of its containers are removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll::poll;
use crate::process::terminate;

/// The binary started (Debian's `containerd` package).
const CONTAINERD: &str = "/usr/bin/containerd";
/// Where containerd's runc shim keeps runc's state, per namespace.
const RUNC_ROOT: &str = "/run/containerd/runc";

/// A running containerd, stopped when dropped.
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Containerd {
    /// Starts containerd and waits until it answers on its socket.
    pub fn start() -> Containerd {
        crate::require("containerd", "containerd");
        crate::require("ctr", "containerd");
        crate::require("runc", "runc");
        let dir = tempfile::Builder::new().prefix("berth-containerd-").tempdir().expect("tempdir");
        let d = dir.path();
        let (root, state, socket) = (d.join("root"), d.join("state"), d.join("containerd.sock"));
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
            root = root.display(),
            state = state.display(),
            sock = socket.display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("writing containerd config");
        let log = std::fs::File::create(d.join("containerd.log")).expect("log file");
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(d.join("config.toml"))
            .arg("--root")
            .arg(&root)
            .arg("--state")
            .arg(&state)
            .arg("--address")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CONTAINERD}: {e}"));
        let mut c = Containerd { child, dir, socket };
        let ready = poll(Duration::from_secs(30), || {
            if let Ok(Some(status)) = c.child.try_wait() {
                return Ok(Err(format!("containerd exited: {status}")));
            }
            let out = Command::new("ctr").arg("--address").arg(&c.socket).arg("version").output();
            match out {
                Ok(o) if o.status.success() => Ok(Ok(())),
                Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        if let Err(last) | Ok(Err(last)) = ready {
            panic!("containerd did not start: {last}\n--- containerd log ---\n{}", c.log());
        }
        c
    }

    /// containerd's PID (for resource figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The unix socket its gRPC API listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Its root directory (content store, snapshots, metadata).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// What containerd logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// The ids of the containers in containerd namespace `namespace`.
    pub fn containers(&self, namespace: &str) -> Vec<String> {
        self.ctr(&["-n", namespace, "containers", "ls", "-q"])
    }

    /// Pulls `image` from a plain-HTTP registry into `namespace` with `ctr`
    /// (for an agent that cannot reach the registry itself); panics on failure.
    pub fn pull(&self, namespace: &str, image: &str) {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--timeout", "60s", "-n", namespace, "images", "pull", "--plain-http", image])
            .output()
            .expect("running ctr");
        assert!(out.status.success(), "ctr images pull {image}: {}", crate::output_text(&out));
    }

    /// The ids of the tasks (container processes) running in `namespace`.
    pub fn running_tasks(&self, namespace: &str) -> Vec<String> {
        let lines = self.ctr(&["-n", namespace, "tasks", "ls"]);
        lines
            .iter()
            .skip(1)
            .filter(|l| l.contains("RUNNING"))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect()
    }

    /// Runs `ctr` against this containerd (with a time limit); its output's
    /// lines, or none if it failed.
    fn ctr(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("ctr").arg("--address").arg(&self.socket).args(["--timeout", "20s"]).args(args).output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }

    /// PIDs of the runc shims this containerd started (their command line
    /// names its socket).
    fn shims(&self) -> Vec<u32> {
        let socket = self.socket.display().to_string();
        processes()
            .into_iter()
            .filter(|p| p.cmdline.contains("containerd-shim") && p.cmdline.contains(&socket))
            .map(|p| p.pid)
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // First the orderly way: containerd kills and deletes each task, and
        // runc removes its state and cgroups.
        let namespaces = self.ctr(&["namespaces", "ls", "-q"]);
        for ns in &namespaces {
            for task in self.ctr(&["-n", ns, "tasks", "ls", "-q"]) {
                self.ctr(&["-n", ns, "tasks", "rm", "-f", &task]);
            }
        }
        // Then by PID, for whatever did not go: each container's init is a
        // child of its shim; killing it (PID 1 of
        // the container's PID namespace) ends the whole container.
        let shims = self.shims();
        let inits: Vec<Process> = processes().into_iter().filter(|p| shims.contains(&p.ppid)).collect();
        let cgroups: Vec<PathBuf> = inits.iter().flat_map(|p| cgroup_dirs(p.pid)).collect();
        for p in &inits {
            signal_kill(p.pid);
        }
        for pid in &shims {
            signal_kill(*pid);
        }
        terminate(&mut self.child, Duration::from_secs(10));
        let root = self.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut ours: Vec<&str> =
            mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|m| m.starts_with(&root)).collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        // A cgroup can be removed once its processes are gone; give them a moment to be reaped.
        let _ = poll(Duration::from_secs(5), || {
            let left: Vec<_> = cgroups.iter().filter(|d| d.exists() && std::fs::remove_dir(d).is_err()).collect();
            if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
        });
        // runc keeps its state outside containerd's root, per namespace; drop the (now empty) directories.
        for ns in &namespaces {
            let _ = std::fs::remove_dir(Path::new(RUNC_ROOT).join(ns));
        }
    }
}

/// One process as `/proc` describes it.
struct Process {
    pid: u32,
    ppid: u32,
    cmdline: String,
}

fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after the last ')'.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some(Process { pid, ppid, cmdline })
        })
        .collect()
}

/// The cgroup v1 directories of a container's process that lie under
/// `/berth` (where Berth puts its containers), in every hierarchy.
fn cgroup_dirs(pid: u32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let controller = controllers.split(',').next().filter(|c| !c.is_empty())?;
            let controller = controller.strip_prefix("name=").unwrap_or(controller);
            path.starts_with("/berth/").then(|| PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}")))
        })
        .collect()
}

fn signal_kill(pid: u32) {
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
}
