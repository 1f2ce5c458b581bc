//! Every field of a Marathon app, sorted into what Berth maps, what it
//! ignores (Marathon's read-only status), what it carries over with a
//! difference (a note), and what it cannot do (unsupported unless the
//! field is empty or at Marathon's default). Unknown fields are
//! unsupported too: nothing is dropped without a word.

use serde_json::{Map, Value};

use super::error::Problem;

/// What Berth does with one field.
#[derive(Clone, Copy)]
enum Rule {
    /// Read by the mapping (`map.rs`), which checks its value.
    Mapped,
    /// Marathon's status of a running app (`GET /v2/apps` returns it): ignored.
    Status,
    /// An object whose fields follow these rules.
    Object(&'static [(&'static str, Rule)]),
    /// An array of objects whose fields follow these rules.
    Each(&'static [(&'static str, Rule)]),
    /// Carried over, with this note when present and not its default.
    Note(fn(&Value) -> bool, &'static str),
    /// Refused with this reason unless empty or at its default.
    Unless(fn(&Value) -> bool, &'static str),
}

use Rule::*;

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn any_role(v: &Value) -> bool {
    empty(v) || v == "*" || v.as_array().is_some_and(|a| a.iter().all(|r| r == "*"))
}

fn host_networks(v: &Value) -> bool {
    empty(v) || v.as_array().is_some_and(|a| a.iter().all(|n| n.get("mode").is_none_or(|m| m == "host")))
}

fn host_network(v: &Value) -> bool {
    empty(v) || v == "HOST"
}

fn ipv4(v: &Value) -> bool {
    empty(v) || v == "IPv4"
}

fn factor_two(v: &Value) -> bool {
    v.is_null() || v.as_f64() == Some(2.0)
}

fn youngest_first(v: &Value) -> bool {
    v.is_null() || v == "YOUNGEST_FIRST"
}

const DOCKER: &[(&str, Rule)] = &[
    ("image", Mapped),
    (
        "forcePullImage",
        Note(
            empty,
            "Berth pulls an image only when the agent does not have it: give a new tag or a digest to roll out",
        ),
    ),
    ("network", Unless(host_network, "Berth runs containers on the host network")),
    ("portMappings", Unless(empty, "Berth runs containers on the host network: use portDefinitions")),
    ("privileged", Unless(empty, "Berth never runs privileged containers")),
    ("parameters", Unless(empty, "Berth does not pass docker run parameters")),
    ("pullConfig", Unless(empty, "registry credentials come from the Job's imagePullSecret (a Secret)")),
    ("credential", Unless(empty, "registry credentials come from the Job's imagePullSecret (a Secret)")),
];

const CONTAINER: &[(&str, Rule)] = &[
    ("type", Mapped),
    ("docker", Object(DOCKER)),
    ("volumes", Unless(empty, "Berth has no volumes: a task's mounts are host paths the agent allows")),
    ("portMappings", Unless(empty, "Berth runs containers on the host network: use portDefinitions")),
    ("linuxInfo", Unless(empty, "Berth sets the container's Linux security itself")),
];

const HEALTH_CHECK: &[(&str, Rule)] = &[
    ("protocol", Mapped),
    ("path", Mapped),
    ("portIndex", Mapped),
    ("command", Mapped),
    ("gracePeriodSeconds", Mapped),
    ("intervalSeconds", Mapped),
    ("timeoutSeconds", Mapped),
    ("maxConsecutiveFailures", Mapped),
    ("port", Unless(empty, "Berth checks one of the task's assigned host ports: use portIndex")),
    ("ignoreHttp1xx", Unless(empty, "Berth counts only 200–399 as healthy")),
    ("ipProtocol", Unless(ipv4, "Berth checks over IPv4 (127.0.0.1)")),
    ("delaySeconds", Note(empty, "Berth checks from the container's start; gracePeriodSeconds covers the delay")),
];

const PORT_DEFINITION: &[(&str, Rule)] = &[
    ("port", Mapped),
    ("name", Mapped),
    ("protocol", Mapped),
    ("labels", Unless(empty, "Berth ports carry no labels")),
];

const UPGRADE_STRATEGY: &[(&str, Rule)] = &[("minimumHealthCapacity", Mapped), ("maximumOverCapacity", Mapped)];

const APP: &[(&str, Rule)] = &[
    ("id", Mapped),
    ("cmd", Mapped),
    ("args", Mapped),
    ("cpus", Mapped),
    ("mem", Mapped),
    ("instances", Mapped),
    ("env", Mapped),
    ("portDefinitions", Each(PORT_DEFINITION)),
    ("ports", Mapped),
    ("requirePorts", Mapped),
    ("constraints", Mapped),
    ("container", Object(CONTAINER)),
    ("healthChecks", Each(HEALTH_CHECK)),
    ("upgradeStrategy", Object(UPGRADE_STRATEGY)),
    ("backoffSeconds", Mapped),
    ("maxLaunchDelaySeconds", Mapped),
    ("labels", Mapped),
    ("taskKillGracePeriodSeconds", Mapped),
    ("backoffFactor", Note(factor_two, "Berth doubles the wait after each failure (a backoffFactor of 2)")),
    ("killSelection", Note(youngest_first, "Berth chooses which instances stop when scaling down")),
    (
        "unreachableStrategy",
        Note(Value::is_null, "Berth replaces an instance once its agent is judged lost (--agent-ttl-seconds)"),
    ),
    ("disk", Unless(empty, "Berth does not reserve disk")),
    ("gpus", Unless(empty, "Berth does not schedule GPUs")),
    ("resourceLimits", Unless(empty, "Berth's limits are the resources asked for (cpus, mem)")),
    ("user", Unless(empty, "set securityContext.runAsUser on the task group instead")),
    ("acceptedResourceRoles", Unless(any_role, "roles belong to the Framework (spec.role), not to a Job")),
    ("role", Unless(any_role, "roles belong to the Framework (spec.role), not to a Job")),
    ("networks", Unless(host_networks, "Berth runs containers on the host network")),
    ("ipAddress", Unless(empty, "Berth runs containers on the host network")),
    ("fetch", Unless(empty, "Berth does not fetch URIs into a sandbox: put the files in the image")),
    ("uris", Unless(empty, "Berth does not fetch URIs into a sandbox: put the files in the image")),
    ("storeUrls", Unless(empty, "Berth does not fetch URIs into a sandbox: put the files in the image")),
    ("dependencies", Unless(empty, "Berth services do not wait for other apps")),
    ("residency", Unless(empty, "Berth has no local persistent volumes")),
    ("secrets", Unless(empty, "Berth has no secret store for tasks: only image pull Secrets")),
    ("readinessChecks", Unless(empty, "Berth's health checks decide when an instance is ready")),
    ("check", Unless(empty, "Berth has no checks without a kill policy: use healthChecks")),
    ("executor", Unless(empty, "Berth runs containers, not Mesos executors")),
    ("executorResources", Unless(empty, "Berth runs containers, not Mesos executors")),
    ("tty", Unless(empty, "Berth does not give tasks a terminal")),
    ("version", Status),
    ("versionInfo", Status),
    ("tasksStaged", Status),
    ("tasksRunning", Status),
    ("tasksHealthy", Status),
    ("tasksUnhealthy", Status),
    ("deployments", Status),
    ("tasks", Status),
    ("lastTaskFailure", Status),
    ("taskStats", Status),
];

/// Problems with the app's fields outside what the mapping reads, in field order.
pub fn check(app: &Map<String, Value>) -> Vec<Problem> {
    let mut out = Vec::new();
    object(app, APP, "", &mut out);
    out
}

fn object(obj: &Map<String, Value>, rules: &[(&str, Rule)], prefix: &str, out: &mut Vec<Problem>) {
    for (key, value) in obj {
        let path = format!("{prefix}{key}");
        let Some((_, rule)) = rules.iter().find(|(k, _)| k == key) else {
            out.push(Problem::unsupported(path, "unknown field"));
            continue;
        };
        match *rule {
            Mapped | Status => {}
            Object(inner) => {
                if let Some(o) = value.as_object() {
                    object(o, inner, &format!("{path}."), out);
                }
            }
            Each(inner) => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    if let Some(o) = item.as_object() {
                        object(o, inner, &format!("{path}[{i}]."), out);
                    }
                }
            }
            Note(default, why) => {
                if !default(value) {
                    out.push(Problem::note(path, why));
                }
            }
            Unless(default, why) => {
                if !default(value) {
                    out.push(Problem::unsupported(path, why));
                }
            }
        }
    }
}
