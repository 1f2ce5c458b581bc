//! What a container may do on its machine, beyond its resources: the user
//! it runs as, whether its root filesystem is writable, and the host
//! directories mounted into it. Kubernetes' names (`securityContext`,
//! `runAsUser`, `readOnlyRootFilesystem`, `hostPath`, `readOnly`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who the container's process runs as, and what it may write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    /// The numeric user the process runs as; overrides the image's `User`.
    /// `0` is root (an agent started with `--forbid-root` refuses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<u32>,
    /// The numeric group the process runs as; without it, the image's group
    /// or, when `runAsUser` is set, the group with that user's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<u32>,
    /// The container's root filesystem is mounted read-only (including
    /// `/tmp`): only `mounts` that are not `readOnly` can be written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root_filesystem: bool,
}

/// A directory of the host bind-mounted into the container. The agent
/// refuses a placement whose `hostPath` is not under one of its
/// `--allowed-host-paths` (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostMount {
    /// The absolute path on the host.
    #[schemars(regex(pattern = r"^/"), length(max = 4096))]
    pub host_path: String,
    /// The absolute path inside the container.
    #[schemars(regex(pattern = r"^/"), length(max = 4096))]
    pub path: String,
    /// Mounted read-only: the container can read it, never change it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_are_used_on_the_wire() {
        let ctx = SecurityContext { run_as_user: Some(1000), run_as_group: None, read_only_root_filesystem: true };
        let json = serde_json::to_value(&ctx).expect("json");
        assert_eq!(json, serde_json::json!({"runAsUser": 1000, "readOnlyRootFilesystem": true}));
        let mount: HostMount =
            serde_json::from_value(serde_json::json!({"hostPath": "/srv/data", "path": "/data", "readOnly": true}))
                .expect("a mount");
        assert_eq!(mount, HostMount { host_path: "/srv/data".into(), path: "/data".into(), read_only: true });
    }
}
