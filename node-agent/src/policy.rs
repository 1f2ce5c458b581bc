//! The agent's own checks of a placement before it pulls anything — defence
//! in depth behind the schedulers and the claim ledger. A placement is
//! refused (`Failed`, with a message naming the field) when its image is
//! outside `--allowed-images`, when it asks for root and the agent has
//! `--forbid-root`, when a mount's `hostPath` is not under
//! `--allowed-host-paths` or a mount would cover `/proc`, `/sys` or `/dev`
//! (reason `PolicyViolation`), or when it would overcommit the agent: the
//! resources of the agent's placements it has taken on (past `Pending`, not
//! yet ended) plus its own exceed the allocatable (reason `Overcommitted`).
//! An image whose `User` is root is refused under `--forbid-root` once the
//! image is known, when the container is created.

use std::path::{Component, Path, PathBuf};

use berth_api::{Container, Phase, Placement, ResourceVec};
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::runtime::Runtime;
use crate::{AgentContext, Error};

/// `status.reason` of a placement that breaks the agent's policy.
pub const REASON_POLICY_VIOLATION: &str = "PolicyViolation";
/// `status.reason` of a placement that would overcommit the agent.
pub const REASON_OVERCOMMITTED: &str = "Overcommitted";

/// What an agent runs, beyond what fits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Image references must start with one of these (at a `/`, `:` or `@`
    /// boundary: `registry.local/team` allows `registry.local/team/app` but
    /// not `registry.local/team-b/app`). Empty: any image.
    pub allowed_images: Vec<String>,
    /// Refuse containers that would run as root.
    pub forbid_root: bool,
    /// A mount's `hostPath` (symlinks resolved) must lie under one of these.
    /// Empty: no host path may be mounted.
    pub allowed_host_paths: Vec<PathBuf>,
}

/// Why a placement is not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Policy {
    /// The first rule `c` breaks, as a message naming the field.
    pub fn check(&self, c: &Container) -> Result<(), String> {
        if !self.allowed_images.is_empty() && !self.allowed_images.iter().any(|p| image_allowed(&c.image, p)) {
            return Err(format!(
                "spec.image: {:?} is not from an allowed registry or repository ({})",
                c.image,
                self.allowed_images.join(", ")
            ));
        }
        if self.forbid_root && c.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
            return Err("spec.securityContext.runAsUser: 0 is root; this agent runs no container as root".into());
        }
        for (i, m) in c.mounts.iter().enumerate() {
            if normal(Path::new(&m.path)).is_none_or(|p| covers_system(&p)) {
                return Err(format!("spec.mounts[{i}].path: {:?} may not cover /, /proc, /sys or /dev", m.path));
            }
            let refused = |what: &str| {
                let allowed = match self.allowed_host_paths.is_empty() {
                    true => "this agent allows no host paths".to_string(),
                    false => format!("allowed: {}", join(&self.allowed_host_paths)),
                };
                Err(format!("spec.mounts[{i}].hostPath: {:?} {what} ({allowed})", m.host_path))
            };
            let Some(host) = normal(Path::new(&m.host_path)) else {
                return refused("must be an absolute path without `..`");
            };
            let Ok(resolved) = std::fs::canonicalize(&host) else {
                return refused("does not exist on this agent");
            };
            let under = |a: &PathBuf| std::fs::canonicalize(a).is_ok_and(|a| resolved.starts_with(a));
            if !self.allowed_host_paths.iter().any(under) {
                return refused("is not allowed");
            }
        }
        Ok(())
    }
}

/// True for `/` and for what lies under `/proc`, `/sys` or `/dev`.
fn covers_system(path: &Path) -> bool {
    path == Path::new("/") || ["/proc", "/sys", "/dev"].iter().any(|d| path.starts_with(d))
}

fn join(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// True when `image` is `prefix` or continues it at a reference boundary.
fn image_allowed(image: &str, prefix: &str) -> bool {
    match image.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with(['/', ':', '@']) || rest.starts_with(['/', ':', '@']),
        None => false,
    }
}

/// `path` if it is absolute and has no `..`: what it names does not depend
/// on where it is resolved from.
fn normal(path: &Path) -> Option<PathBuf> {
    let ok = path.is_absolute() && path.components().all(|c| !matches!(c, Component::ParentDir));
    ok.then(|| path.components().collect())
}

/// `Err` naming what is short when `others` (what the agent runs) plus
/// `this` exceed `allocatable`.
pub fn fits(allocatable: ResourceVec, others: ResourceVec, this: ResourceVec) -> Result<(), String> {
    let short = (others + this).shortfalls(&allocatable);
    if short.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = short.iter().map(|(name, need, have)| format!("{name} {need} of {have}")).collect();
    Err(format!(
        "running it would overcommit the agent: its placements and this one need {} allocatable \
         (this one: {this}); the ledger should never have allowed it",
        what.join(" and ")
    ))
}

/// Whether this agent runs `p`: `Some` refusal when it breaks the policy
/// or would overcommit the agent.
pub async fn refuse<R: Runtime>(p: &Placement, ctx: &AgentContext<R>) -> Result<Option<Refusal>, Error> {
    if let Err(message) = ctx.config.policy.check(&p.spec.container) {
        return Ok(Some(Refusal { reason: REASON_POLICY_VIOLATION, message }));
    }
    let this = match p.spec.container.resources.to_vec() {
        Ok(r) => r,
        Err(e) => return Ok(Some(Refusal { reason: REASON_POLICY_VIOLATION, message: format!("spec.resources.{e}") })),
    };
    let allocatable =
        ctx.config.capacity().map_err(Error::Config)?.to_vec().map_err(|e| Error::Config(e.to_string()))?;
    let api: Api<Placement> = Api::all(ctx.client.clone());
    let mine = api.list(&ListParams::default().fields(&format!("spec.agent={}", ctx.config.name))).await?;
    let uid = p.uid();
    let others: ResourceVec = mine
        .items
        .iter()
        .filter(|o| o.uid() != uid)
        .filter(|o| o.status.as_ref().is_some_and(|s| s.phase != Phase::Pending && !s.phase.is_terminal()))
        .filter_map(|o| o.spec.container.resources.to_vec().ok())
        .sum();
    Ok(fits(allocatable, others, this).err().map(|message| Refusal { reason: REASON_OVERCOMMITTED, message }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{HostMount, SecurityContext};

    fn container(image: &str) -> Container {
        Container { image: image.into(), ..Default::default() }
    }

    fn with_mount(host: &Path, path: &str, read_only: bool) -> Container {
        let mount = HostMount { host_path: host.display().to_string(), path: path.into(), read_only };
        Container { mounts: vec![mount], ..container("img") }
    }

    #[test]
    fn images_outside_the_allowed_prefixes_are_refused_at_a_boundary() {
        let open = Policy::default();
        assert_eq!(open.check(&container("anything.example/x:1")), Ok(()), "no list allows any image");
        let p = Policy { allowed_images: vec!["registry.local/team".into(), "127.0.0.1:5000/".into()], ..open };
        for ok in ["registry.local/team", "registry.local/team/app:1", "registry.local/team:2", "127.0.0.1:5000/x"] {
            assert_eq!(p.check(&container(ok)), Ok(()), "{ok}");
        }
        for bad in ["registry.local/team-b/app", "registry.local/te", "docker.io/library/busybox", "busybox"] {
            let err = p.check(&container(bad)).unwrap_err();
            assert!(err.starts_with(&format!("spec.image: {bad:?} is not from an allowed")), "{err}");
        }
    }

    #[test]
    fn root_is_refused_only_when_forbidden() {
        let root = Container {
            security_context: Some(SecurityContext { run_as_user: Some(0), ..Default::default() }),
            ..container("img")
        };
        assert_eq!(Policy::default().check(&root), Ok(()));
        let p = Policy { forbid_root: true, ..Default::default() };
        assert!(p.check(&root).unwrap_err().starts_with("spec.securityContext.runAsUser: 0 is root"));
        let user = Container {
            security_context: Some(SecurityContext { run_as_user: Some(1000), ..Default::default() }),
            ..container("img")
        };
        assert_eq!(p.check(&user), Ok(()));
        // Without runAsUser the image decides; the runtime refuses a root image (see containerd::spec).
        assert_eq!(p.check(&container("img")), Ok(()));
    }

    #[test]
    fn host_paths_must_lie_under_an_allowed_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let allowed = dir.path().join("allowed");
        let other = dir.path().join("allowed-not");
        std::fs::create_dir_all(allowed.join("data")).expect("mkdir");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::os::unix::fs::symlink(&other, allowed.join("escape")).expect("symlink");

        let none = Policy::default();
        let err = none.check(&with_mount(&allowed, "/data", true)).unwrap_err();
        assert!(err.starts_with("spec.mounts[0].hostPath:") && err.contains("allows no host paths"), "{err}");

        let p = Policy { allowed_host_paths: vec![allowed.clone()], ..Default::default() };
        assert_eq!(p.check(&with_mount(&allowed, "/data", false)), Ok(()));
        assert_eq!(p.check(&with_mount(&allowed.join("data"), "/data", true)), Ok(()));
        for bad in [other.clone(), allowed.join("escape"), allowed.join("data/../../allowed-not"), "/etc".into()] {
            let err = p.check(&with_mount(&bad, "/data", true)).unwrap_err();
            assert!(err.starts_with("spec.mounts[0].hostPath:"), "{}: {err}", bad.display());
        }
        let missing = p.check(&with_mount(&allowed.join("missing"), "/data", true)).unwrap_err();
        assert!(missing.contains("does not exist on this agent"), "{missing}");
        let dotted = p.check(&with_mount(&allowed.join("data/.."), "/data", true)).unwrap_err();
        assert!(dotted.contains("must be an absolute path without `..`"), "{dotted}");
    }

    #[test]
    fn mounts_may_not_cover_the_root_or_the_kernel_filesystems() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Policy { allowed_host_paths: vec![dir.path().into()], ..Default::default() };
        for bad in ["/", "/proc", "/proc/sys", "/sys", "/dev/shm", "relative", "/data/../proc"] {
            let err = p.check(&with_mount(dir.path(), bad, true)).unwrap_err();
            assert!(err.starts_with("spec.mounts[0].path:"), "{bad}: {err}");
        }
        assert_eq!(p.check(&with_mount(dir.path(), "/devices", true)), Ok(()), "only whole components count");
    }

    #[test]
    fn overcommit_names_what_is_short() {
        let allocatable = ResourceVec::new(1000, 1 << 30);
        assert_eq!(fits(allocatable, ResourceVec::new(500, 512 << 20), ResourceVec::new(500, 512 << 20)), Ok(()));
        let err = fits(allocatable, ResourceVec::new(800, 0), ResourceVec::new(500, 64 << 20)).unwrap_err();
        assert!(err.contains("cpu 1300m of 1") && !err.contains("memory 5"), "{err}");
    }
}
