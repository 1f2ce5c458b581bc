//! The OCI runtime spec of a Berth container: the image's defaults under
//! the placement's command, environment and limits, with its own PID,
//! mount, IPC and UTS namespaces, a cgroup with CPU, memory and pids
//! limits, no new privileges, and Docker's default capabilities less
//! `CAP_NET_RAW`. The network is the host's (no CNI yet).

use serde_json::{Value, json};

use super::image::ImageConfig;
use crate::runtime::ContainerSpec;

/// The CFS period CPU quotas are expressed against.
const CPU_PERIOD: u64 = 100_000;
/// Processes one container may have.
const PIDS_LIMIT: i64 = 1024;

/// Docker's default capability set, without `CAP_NET_RAW`.
const CAPABILITIES: [&str; 13] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The process arguments: the placement's command replaces the image's
/// entrypoint (and then its args replace the image's cmd), as in Kubernetes.
pub(super) fn args(spec: &ContainerSpec, image: &ImageConfig) -> Vec<String> {
    let cfg = image.config.as_ref();
    let entrypoint = cfg.and_then(|c| c.entrypoint.clone()).unwrap_or_default();
    let cmd = cfg.and_then(|c| c.cmd.clone()).unwrap_or_default();
    match (spec.command.is_empty(), spec.args.is_empty()) {
        (false, _) => spec.command.iter().chain(&spec.args).cloned().collect(),
        (true, false) => entrypoint.into_iter().chain(spec.args.clone()).collect(),
        (true, true) => entrypoint.into_iter().chain(cmd).collect(),
    }
}

/// The image's environment with the placement's entries added or replacing.
pub(super) fn env(spec: &ContainerSpec, image: &ImageConfig) -> Vec<String> {
    let mut out: Vec<(String, String)> = image
        .config
        .as_ref()
        .and_then(|c| c.env.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e, String::new()),
        })
        .collect();
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push(("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()));
    }
    for (k, v) in &spec.env {
        match out.iter_mut().find(|(name, _)| name == k) {
            Some(entry) => entry.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `uid[:gid]` from the image's `User`; names are not resolved yet, so a
/// non-numeric user runs as root.
fn user(image: &ImageConfig) -> (u32, u32) {
    let u = image.config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
    let (uid, gid) = u.split_once(':').unwrap_or((&u, ""));
    let uid = uid.parse().unwrap_or(0);
    (uid, gid.parse().unwrap_or(uid))
}

/// The complete runtime spec, as JSON.
pub(super) fn runtime_spec(spec: &ContainerSpec, image: &ImageConfig, cgroup: &str) -> Value {
    let (uid, gid) = user(image);
    let cwd = spec
        .working_dir
        .clone()
        .or_else(|| image.config.as_ref().and_then(|c| c.working_dir.clone()))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut resources = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "pids": {"limit": PIDS_LIMIT},
    });
    if spec.memory_bytes > 0 {
        resources["memory"] = json!({"limit": spec.memory_bytes, "swap": spec.memory_bytes});
    }
    if spec.cpu_millis > 0 {
        let quota = (spec.cpu_millis * CPU_PERIOD / 1000).max(1000);
        resources["cpu"] =
            json!({"quota": quota, "period": CPU_PERIOD, "shares": (spec.cpu_millis * 1024 / 1000).max(2)});
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": args(spec, image),
            "env": env(spec, image),
            "cwd": cwd,
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024u64, "soft": 1024u64}],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": spec.id.chars().take(63).collect::<String>(),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["rbind", "ro"]},
        ],
        "linux": {
            "resources": resources,
            "cgroupsPath": cgroup,
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::image::ExecConfig;

    fn image() -> ImageConfig {
        ImageConfig {
            config: Some(ExecConfig {
                entrypoint: Some(vec!["/entry".into()]),
                cmd: Some(vec!["default".into()]),
                env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn command_replaces_entrypoint_and_args_replace_cmd() {
        let mut s = ContainerSpec::default();
        assert_eq!(args(&s, &image()), ["/entry", "default"]);
        s.args = vec!["x".into()];
        assert_eq!(args(&s, &image()), ["/entry", "x"]);
        s.command = vec!["/bin/sh".into(), "-c".into()];
        assert_eq!(args(&s, &image()), ["/bin/sh", "-c", "x"]);
    }

    #[test]
    fn placement_env_overrides_the_image() {
        let s = ContainerSpec { env: vec![("A".into(), "2".into()), ("B".into(), "3".into())], ..Default::default() };
        assert_eq!(env(&s, &image()), ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn limits_become_cgroup_settings() {
        let s = ContainerSpec { cpu_millis: 500, memory_bytes: 64 << 20, ..Default::default() };
        let spec = runtime_spec(&s, &image(), "/berth/x");
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64u64 << 20);
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(spec["process"]["noNewPrivileges"], true);
        let caps = spec["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(!caps.iter().any(|c| c == "CAP_NET_RAW"));
    }
}
