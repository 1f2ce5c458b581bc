//! `berth-e2e`: the harness of Berth's end-to-end tests. It starts real
//! processes in temporary directories — containerd with runc, a local OCI
//! registry with a demo image built from busybox-static, `berth up` — and
//! drives them with the real `kubectl`. Every server binds to loopback or a
//! unix socket; every process is stopped by PID when its handle drops.
//!
//! Layout:
//! - `containerd`: a containerd of the test's own.
//! - `registry`: a local registry, and the demo image pushed to it.
//! - `apiserver`: one `berth apiserver` process, to kill and restart.
//! - `bench`: `make bench`'s figures and baselines (simulated-agent scale
//!   runs, launch overhead against a bare `ctr run`).
//! - `job`: the Job manifests tests apply (a shell script in an image).
//! - `http`: a minimal blocking HTTP client, and watch streams.
//! - `load`: concurrent writers that record acknowledged writes, and their check.
//! - `berth`: a `berth up` process, or the API server, controllers and N
//!   agents as processes, with kubectl and `berth` CLI helpers.
//! - `kubectl`: the kubectl binaries of the verb matrix, run with a deadline.
//! - `netns`: a network namespace joined by a veth, to cut one part off and heal it.
//! - `etcd`: a single-member etcd of the test's own, for the etcd store.
//! - `poll`: waiting on a condition with a deadline, never a blind sleep.
//! - `process`: running, describing and stopping child processes.

pub mod apiserver;
pub mod bench;
pub mod berth;
pub mod containerd;
pub mod etcd;
pub mod http;
pub mod job;
pub mod kubectl;
pub mod load;
pub mod netns;
pub mod poll;
pub mod process;
pub mod registry;

pub use containerd::Containerd;
pub use etcd::{Etcd, EtcdCluster};
pub use job::ShellJob;
pub use process::{output_text, run_with_stdin, terminate};
pub use registry::{Registry, build_demo_image};

/// True when the program `tool` is on PATH (or is an existing absolute path).
pub fn tool_available(tool: &str) -> bool {
    let path = std::path::Path::new(tool);
    if path.is_absolute() {
        return path.is_file();
    }
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

/// Panics with the Debian package to install when `tool` is not on PATH.
pub fn require(tool: &str, package: &str) {
    assert!(tool_available(tool), "{tool} is not installed: run `make deps` (apt-get install {package})");
}
