//! The OCI runtime spec of a Berth container (built with `oci-spec`): the
//! image's entrypoint, cmd, environment, working directory and user under
//! the placement's command, args, environment and working directory; its
//! own PID, IPC, UTS and mount namespaces, and the host's network (there is
//! no CNI yet, and a service's allocated `$PORT` is a host port); a cgroup
//! (`/berth/<id>`) with CPU, memory (no swap) and pids limits; no new
//! privileges; Docker's default capabilities less `CAP_NET_RAW`. The
//! placement's `securityContext` sets the user (over the image's) and a
//! read-only root; its `mounts` are bind mounts, `nosuid` and `nodev`.

use std::path::Path;

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
    get_default_maskedpaths, get_default_mounts, get_default_readonly_paths,
};

use super::image::ImageConfig;
use crate::runtime::{ContainerSpec, RuntimeError};

/// The CFS period CPU quotas are expressed against.
const CPU_PERIOD: u64 = 100_000;
/// Processes one container may have.
const PIDS_LIMIT: i64 = 1024;
/// `PATH` when the image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set, without `CAP_NET_RAW`.
const CAPABILITIES: [Capability; 13] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The container's cgroup, relative to each controller's root.
pub(super) fn cgroup_path(id: &str) -> String {
    format!("/berth/{id}")
}

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
        out.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    for (k, v) in &spec.env {
        match out.iter_mut().find(|(name, _)| name == k) {
            Some(entry) => entry.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `uid[:gid]` from the image's `User`. Only numbers (and `root`) are
/// understood: names would need the image's `/etc/passwd`, and running a
/// named user as root instead would be a silent escalation.
fn user(image: &ImageConfig) -> Result<(u32, u32), RuntimeError> {
    let text = image.config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
    let (u, g) = text.split_once(':').unwrap_or((&text, ""));
    let id = |s: &str| match s {
        "" | "root" => Some(0),
        n => n.parse().ok(),
    };
    let uid =
        id(u).ok_or_else(|| RuntimeError::Other(format!("image user {text:?}: only numeric users are supported")))?;
    let gid = if g.is_empty() {
        uid
    } else {
        id(g).ok_or_else(|| RuntimeError::Other(format!("image group {g:?}: only numeric groups are supported")))?
    };
    Ok((uid, gid))
}

/// The uid and gid the process runs as: the placement's `runAsUser` /
/// `runAsGroup` over the image's `User` (a `runAsUser` without a group runs
/// with the group of the same number, never root's by accident). Root is
/// refused when the spec asks for a non-root user.
fn identity(spec: &ContainerSpec, image: &ImageConfig) -> Result<(u32, u32), RuntimeError> {
    let (uid, gid) = match spec.run_as_user {
        Some(uid) => (uid, uid),
        None => user(image)?,
    };
    let gid = spec.run_as_group.unwrap_or(gid);
    if spec.run_as_non_root && uid == 0 {
        let why = match spec.run_as_user {
            Some(_) => "0 is root".to_string(),
            None => format!("unset, and image {} runs as root", spec.image),
        };
        return Err(RuntimeError::Policy(format!(
            "spec.securityContext.runAsUser: {why}; this agent runs no container as root (--forbid-root)"
        )));
    }
    Ok((uid, gid))
}

/// The complete runtime spec.
pub(super) fn runtime_spec(spec: &ContainerSpec, image: &ImageConfig) -> Result<Spec, RuntimeError> {
    let (uid, gid) = identity(spec, image)?;
    let cwd = spec
        .working_dir
        .clone()
        .or_else(|| image.config.as_ref().and_then(|c| c.working_dir.clone()))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".into());
    build(spec, image, uid, gid, cwd).map_err(|e| RuntimeError::Other(format!("runtime spec of {}: {e}", spec.id)))
}

fn build(spec: &ContainerSpec, image: &ImageConfig, uid: u32, gid: u32, cwd: String) -> Result<Spec, OciSpecError> {
    let caps: Capabilities = CAPABILITIES.into_iter().collect();
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(uid).gid(gid).build()?)
        .args(args(spec, image))
        .env(env(spec, image))
        .cwd(cwd)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()?,
        )
        .rlimits(vec![
            PosixRlimitBuilder::default().typ(PosixRlimitType::RlimitNofile).hard(1024u64).soft(1024u64).build()?,
        ])
        .no_new_privileges(true)
        .build()?;

    let mut resources = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?])
        .pids(LinuxPidsBuilder::default().limit(PIDS_LIMIT).build()?);
    if spec.memory_bytes > 0 {
        let limit = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
        // memory+swap equal to memory: no swap.
        resources = resources.memory(LinuxMemoryBuilder::default().limit(limit).swap(limit).build()?);
    }
    if spec.cpu_millis > 0 {
        let quota = (spec.cpu_millis.saturating_mul(CPU_PERIOD) / 1000).max(1000);
        let shares = (spec.cpu_millis.saturating_mul(1024) / 1000).max(2);
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .quota(i64::try_from(quota).unwrap_or(i64::MAX))
                .period(CPU_PERIOD)
                .shares(shares)
                .build()?,
        );
    }
    let namespaces =
        [LinuxNamespaceType::Pid, LinuxNamespaceType::Ipc, LinuxNamespaceType::Uts, LinuxNamespaceType::Mount]
            .into_iter()
            .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
            .collect::<Result<Vec<_>, _>>()?;
    let linux = LinuxBuilder::default()
        .resources(resources.build()?)
        .cgroups_path(cgroup_path(&spec.id))
        .namespaces(namespaces)
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .build()?;

    SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path("rootfs").readonly(spec.read_only_root).build()?)
        .hostname(spec.id.chars().take(63).collect::<String>())
        .mounts(mounts(spec)?)
        .process(process)
        .linux(linux)
        .build()
}

/// /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys (ro), the cgroup
/// hierarchy (ro); as the network is the host's, its name resolution; then
/// the placement's host directories.
fn mounts(spec: &ContainerSpec) -> Result<Vec<Mount>, OciSpecError> {
    let mut mounts = get_default_mounts();
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        if Path::new(file).is_file() {
            mounts.push(bind(Path::new(file), file, true)?);
        }
    }
    for m in &spec.mounts {
        mounts.push(bind(&m.source, &m.destination, m.read_only)?);
    }
    Ok(mounts)
}

/// A recursive bind mount of `source` at `destination`, without setuid
/// binaries or device files taking effect.
fn bind(source: &Path, destination: &str, read_only: bool) -> Result<Mount, OciSpecError> {
    let mut options = vec!["rbind".to_string(), "nosuid".to_string(), "nodev".to_string()];
    if read_only {
        options.insert(1, "ro".to_string());
    }
    MountBuilder::default().destination(destination).typ("bind").source(source).options(options).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::image::ExecConfig;
    use crate::runtime::BindMount;

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
        let s = ContainerSpec { id: "x".into(), cpu_millis: 500, memory_bytes: 64 << 20, ..Default::default() };
        let spec = serde_json::to_value(runtime_spec(&s, &image()).expect("spec")).expect("json");
        let r = &spec["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64u64 << 20);
        assert_eq!(r["memory"]["swap"], 64u64 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 1024);
        assert_eq!(spec["linux"]["cgroupsPath"], "/berth/x");
        assert_eq!(spec["process"]["noNewPrivileges"], true);
        let caps = spec["process"]["capabilities"]["bounding"].as_array().expect("caps");
        assert_eq!(caps.len(), 13);
        assert!(caps.iter().any(|c| c == "CAP_CHOWN") && !caps.iter().any(|c| c == "CAP_NET_RAW"));
        let namespaces: Vec<&str> =
            spec["linux"]["namespaces"].as_array().expect("ns").iter().filter_map(|n| n["type"].as_str()).collect();
        assert_eq!(namespaces, ["pid", "ipc", "uts", "mount"]);
    }

    #[test]
    fn no_limits_means_no_cpu_or_memory_section() {
        let spec =
            serde_json::to_value(runtime_spec(&ContainerSpec::default(), &image()).expect("spec")).expect("json");
        assert!(spec["linux"]["resources"]["memory"].is_null() && spec["linux"]["resources"]["cpu"].is_null());
    }

    #[test]
    fn the_security_context_sets_the_user_over_the_image() {
        let named = ImageConfig {
            config: Some(ExecConfig { user: Some("app:staff".into()), ..Default::default() }),
            ..Default::default()
        };
        let s = ContainerSpec { run_as_user: Some(1000), ..Default::default() };
        assert_eq!(identity(&s, &named).ok(), Some((1000, 1000)), "a number replaces a named image user");
        let s = ContainerSpec { run_as_user: Some(1000), run_as_group: Some(50), ..Default::default() };
        let spec = serde_json::to_value(runtime_spec(&s, &image()).expect("spec")).expect("json");
        assert_eq!(spec["process"]["user"]["uid"], 1000);
        assert_eq!(spec["process"]["user"]["gid"], 50);
    }

    #[test]
    fn a_non_root_container_refuses_root_naming_the_field() {
        let s = ContainerSpec { image: "img".into(), run_as_non_root: true, ..Default::default() };
        let err = identity(&s, &image()).unwrap_err();
        assert!(matches!(err, RuntimeError::Policy(_)), "{err:?}");
        assert!(err.to_string().starts_with("spec.securityContext.runAsUser: unset, and image img runs as root"));
        let s = ContainerSpec { run_as_user: Some(0), run_as_non_root: true, ..Default::default() };
        assert!(identity(&s, &image()).unwrap_err().to_string().contains("0 is root"));
        let s = ContainerSpec { run_as_user: Some(1), run_as_non_root: true, ..Default::default() };
        assert_eq!(identity(&s, &image()).ok(), Some((1, 1)));
    }

    #[test]
    fn read_only_root_and_host_mounts_reach_the_spec() {
        let s = ContainerSpec {
            read_only_root: true,
            mounts: vec![
                BindMount { source: "/srv/in".into(), destination: "/in".into(), read_only: true },
                BindMount { source: "/srv/out".into(), destination: "/out".into(), read_only: false },
            ],
            ..Default::default()
        };
        let spec = serde_json::to_value(runtime_spec(&s, &image()).expect("spec")).expect("json");
        assert_eq!(spec["root"]["readonly"], true);
        let mounts = spec["mounts"].as_array().expect("mounts");
        let find = |dest: &str| mounts.iter().find(|m| m["destination"] == dest).expect(dest).clone();
        assert_eq!(find("/in")["source"], "/srv/in");
        assert_eq!(find("/in")["type"], "bind");
        assert_eq!(find("/in")["options"], serde_json::json!(["rbind", "ro", "nosuid", "nodev"]));
        assert_eq!(find("/out")["options"], serde_json::json!(["rbind", "nosuid", "nodev"]));
        let default = serde_json::to_value(runtime_spec(&ContainerSpec::default(), &image()).expect("spec"));
        assert_eq!(default.expect("json")["root"]["readonly"], false);
    }

    #[test]
    fn numeric_users_are_used_and_names_refused() {
        let with_user = |u: &str| ImageConfig {
            config: Some(ExecConfig { user: Some(u.into()), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(user(&with_user("")).ok(), Some((0, 0)));
        assert_eq!(user(&with_user("1000")).ok(), Some((1000, 1000)));
        assert_eq!(user(&with_user("1000:50")).ok(), Some((1000, 50)));
        assert!(user(&with_user("nobody")).is_err());
    }
}
