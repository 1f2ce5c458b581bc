//! What the batch end-to-end tests share: one containerd, registry and
//! `berth up` while any of them runs (the last test to finish with it stops
//! it, by PID, as every harness handle does), and reading Jobs and their
//! placements through the API as a user would with kubectl.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_api::condition::find;
use berth_api::{Job, Phase, Placement};
use berth_e2e::berth::Berth;
use berth_e2e::poll::poll;
use berth_e2e::{Containerd, Registry, build_demo_image, output_text};

pub const WAIT: Duration = Duration::from_secs(120);
/// The image the examples name; tests replace it with their registry's.
const EXAMPLE_IMAGE: &str = "127.0.0.1:5000/berth/demo:latest";

/// Dropped in field order: berth first, then what it used.
pub struct Env {
    pub berth: Berth,
    pub registry: Registry,
    pub containerd: Containerd,
}

static SHARED: Mutex<Weak<Env>> = Mutex::new(Weak::new());

impl Env {
    /// The environment the running tests share, started if none runs.
    pub fn shared() -> Arc<Env> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(env) = shared.upgrade() {
            return env;
        }
        let containerd = Containerd::start();
        let registry = Registry::start();
        build_demo_image(&registry.host(), "berth/demo:latest");
        let berth = Berth::up(containerd.socket(), "2", "2Gi");
        let env = Arc::new(Env { berth, registry, containerd });
        *shared = Arc::downgrade(&env);
        env
    }

    pub fn image(&self) -> String {
        format!("{}/berth/demo:latest", self.registry.host())
    }

    /// `manifests/examples/<file>` with its image on this test's registry.
    pub fn example(&self, file: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples").join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(text.contains(EXAMPLE_IMAGE), "{file} no longer runs {EXAMPLE_IMAGE}");
        text.replace(EXAMPLE_IMAGE, &self.image())
    }

    /// Polls `check` until `Ok` or [`WAIT`]; on timeout panics with the last
    /// observation, `job`'s objects and the end of Berth's logs.
    pub fn wait<T>(&self, job: &str, what: &str, check: impl FnMut() -> Result<T, String>) -> T {
        self.wait_for(job, what, WAIT, check)
    }

    pub fn wait_for<T>(&self, job: &str, what: &str, limit: Duration, check: impl FnMut() -> Result<T, String>) -> T {
        match poll(limit, check) {
            Ok(v) => v,
            Err(last) => panic!("timed out waiting for {what}; last seen: {last}\n{}", self.describe(job)),
        }
    }

    /// The Job and its placements as YAML, and the end of Berth's logs: what a timeout shows.
    pub fn describe(&self, job: &str) -> String {
        let selector = format!("spec.job={job}");
        let placements =
            self.berth.kubectl(&["get", "placements.berth.dev", "--field-selector", &selector, "-o", "yaml"]);
        let job = self.berth.kubectl(&["get", &format!("jobs.berth.dev/{job}"), "-o", "yaml"]);
        format!(
            "--- job ---\n{}\n--- placements ---\n{}\n{}",
            output_text(&job),
            output_text(&placements),
            self.berth.log_tail()
        )
    }

    /// The Job, or why it could not be read (`NotFound` once it is gone).
    pub fn job(&self, name: &str) -> Result<Job, String> {
        serde_json::from_value(self.job_json(name)?).map_err(|e| e.to_string())
    }

    /// The Job as the API returns it.
    pub fn job_json(&self, name: &str) -> Result<serde_json::Value, String> {
        let out = self.berth.kubectl(&["get", &format!("jobs.berth.dev/{name}"), "-o", "json"]);
        if !out.status.success() {
            return Err(output_text(&out));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", output_text(&out)))
    }

    /// The Job's placements (by the `spec.job` field selector), by name.
    pub fn placements(&self, job: &str) -> Result<Vec<Placement>, String> {
        #[derive(serde::Deserialize)]
        struct List {
            items: Vec<Placement>,
        }
        let selector = format!("spec.job={job}");
        let out = self.berth.kubectl(&["get", "placements.berth.dev", "--field-selector", &selector, "-o", "json"]);
        if !out.status.success() {
            return Err(output_text(&out));
        }
        let mut items = serde_json::from_slice::<List>(&out.stdout).map_err(|e| e.to_string())?.items;
        items.sort_by_key(|p| p.metadata.name.clone());
        Ok(items)
    }

    /// Waits until Job `name` has condition `Complete` or `Failed` true, and
    /// returns it; panics unless it is `cond`.
    pub fn finished(&self, name: &str, cond: &str) -> Job {
        let job = self.wait(name, &format!("job {name} to finish"), || {
            let job = self.job(name)?;
            let conditions = job.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
            let done = ["Complete", "Failed"].iter().any(|c| find(conditions, c).is_some_and(|c| c.is_true()));
            if done { Ok(job) } else { Err(format!("{:?}", job.status)) }
        });
        let conditions = job.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
        if !find(conditions, cond).is_some_and(|c| c.is_true()) {
            panic!("job {name} did not end {cond}: {conditions:?}\n{}", self.describe(name));
        }
        job
    }

    /// Applies `yaml` with kubectl.
    pub fn apply(&self, yaml: &str) {
        self.berth.apply(yaml);
    }

    /// `kubectl patch --type merge` of Job `name`'s spec.
    pub fn patch_spec(&self, name: &str, spec: &str) {
        let patch = format!("{{\"spec\":{spec}}}");
        let out = self.berth.kubectl(&["patch", &format!("jobs.berth.dev/{name}"), "--type", "merge", "-p", &patch]);
        assert!(out.status.success(), "kubectl patch {name} {patch}: {}", output_text(&out));
    }
}

pub fn placement<'a>(ps: &'a [Placement], name: &str) -> Option<&'a Placement> {
    ps.iter().find(|p| p.metadata.name.as_deref() == Some(name))
}

pub fn phase(p: &Placement) -> Phase {
    p.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// `name@agent=Phase(exit, reason)` for each placement, for messages.
pub fn summary(ps: &[Placement]) -> String {
    ps.iter()
        .map(|p| {
            let s = p.status.clone().unwrap_or_default();
            let name = p.metadata.name.as_deref().unwrap_or("?");
            format!("{name}@{}={:?}({:?}, {:?})", p.spec.agent, s.phase, s.exit_code, s.reason)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A status timestamp in seconds since the epoch.
pub fn secs(t: Option<&String>) -> i64 {
    let t = t.expect("a timestamp");
    t.parse::<jiff::Timestamp>().map(|t| t.as_second()).unwrap_or_else(|e| panic!("{t:?}: {e}"))
}

pub fn started(p: &Placement) -> i64 {
    secs(p.status.as_ref().and_then(|s| s.started_at.as_ref()))
}

pub fn finished_at(p: &Placement) -> i64 {
    secs(p.status.as_ref().and_then(|s| s.finished_at.as_ref()))
}

/// The condition `type_` of `job`, as (status, reason, message).
pub fn condition(job: &Job, type_: &str) -> Option<(String, String, String)> {
    let conditions = job.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    find(conditions, type_).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}
