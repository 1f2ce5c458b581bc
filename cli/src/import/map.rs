//! The mapping itself: one Marathon app in, one Berth service Job (and,
//! when asked, the `builtin-service` Framework that runs it) out. Pure: no
//! I/O; every field that cannot be carried over is reported by its JSON
//! path, all of them at once.

use std::collections::BTreeMap;

use berth_api::framework::Scheduler;
use berth_api::job::EnvVar;
use berth_api::quantity::Quantity;
use berth_api::retry::RetryPolicy;
use berth_api::{Container, Framework, FrameworkSpec, Job, JobSpec, Resources, TaskGroup};
use serde_json::Value;

use super::app::{App, defaults};
use super::error::{ImportError, Problem, Severity};
use super::{fields, health, names, ports, rollout};

/// Annotation on the Job: the Marathon app id it was imported from.
pub const ANNOTATION_MARATHON_ID: &str = "berth.dev/marathon-id";

/// What the user asked for besides the app.
#[derive(Clone, Debug)]
pub struct Options {
    /// The Job's name instead of the one made from the app's `id`.
    pub name: Option<String>,
    /// The namespace of the objects; unset leaves it to `kubectl apply -n`.
    pub namespace: Option<String>,
    /// The Framework the Job names in `spec.framework`.
    pub framework: String,
    /// Also emit that Framework (scheduler `builtin-service`).
    pub with_framework: bool,
    /// Drop unsupported fields with a warning instead of refusing the app.
    pub ignore_unsupported: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: None,
            namespace: None,
            framework: "services".into(),
            with_framework: false,
            ignore_unsupported: false,
        }
    }
}

/// The result of an import.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The Marathon app id, when it had one.
    pub marathon_id: Option<String>,
    pub framework: Option<Framework>,
    pub job: Job,
    /// `(key, comment)`: the YAML line of the first `key:` gets `# comment`.
    pub comments: Vec<(String, String)>,
    /// Notes, and unsupported fields dropped under `--ignore-unsupported`.
    pub warnings: Vec<Problem>,
}

/// Imports the Marathon app definition `json`.
pub fn import(json: &str, opts: &Options) -> Result<Imported, ImportError> {
    let raw: Value = serde_json::from_str(json)?;
    let Some(object) = raw.as_object() else {
        return Err(ImportError::Refused(vec![Problem::invalid("$", "an app definition is a JSON object")]));
    };
    let mut problems = fields::check(object);
    let app: App = match serde_json::from_value(raw.clone()) {
        Ok(app) => app,
        Err(e) => {
            problems.retain(|p| p.severity != Severity::Note);
            problems.extend(type_errors(object, e));
            return Err(ImportError::Refused(problems));
        }
    };
    let mut comments = Vec::new();
    let job = job(&app, opts, &mut problems, &mut comments);
    let (refused, warnings): (Vec<Problem>, Vec<Problem>) = problems.into_iter().partition(|p| match p.severity {
        Severity::Invalid => true,
        Severity::Unsupported => !opts.ignore_unsupported,
        Severity::Note => false,
    });
    if !refused.is_empty() {
        return Err(ImportError::Refused(refused));
    }
    let errors = berth_api::validate::job_spec(&job.spec);
    if !errors.is_empty() {
        return Err(ImportError::InvalidJob(errors.iter().map(ToString::to_string).collect()));
    }
    let framework = opts.with_framework.then(|| {
        let mut fw = Framework::new(
            &opts.framework,
            FrameworkSpec { scheduler: Scheduler::BuiltinService, ..Default::default() },
        );
        fw.metadata.namespace = opts.namespace.clone();
        fw
    });
    Ok(Imported { marathon_id: app.id.clone(), framework, job, comments, warnings })
}

/// Which top-level fields have the wrong type, each named; `whole` when
/// none alone does.
fn type_errors(object: &serde_json::Map<String, Value>, whole: serde_json::Error) -> Vec<Problem> {
    let mut out: Vec<Problem> = object
        .iter()
        .filter_map(|(key, value)| {
            let alone = Value::Object(serde_json::Map::from_iter([(key.clone(), value.clone())]));
            serde_json::from_value::<App>(alone).err().map(|e| Problem::invalid(key, e.to_string()))
        })
        .collect();
    if out.is_empty() {
        out.push(Problem::invalid("$", whole.to_string()));
    }
    out
}

fn job(app: &App, opts: &Options, out: &mut Vec<Problem>, comments: &mut Vec<(String, String)>) -> Job {
    let id = app.id.as_deref().filter(|s| !s.is_empty());
    let name = match (&opts.name, id) {
        (Some(n), _) => names::dns_name(n, names::MAX_JOB_NAME).map(|()| n.clone()).map_err(|e| ("--name", e)),
        (None, Some(id)) => names::job_name(id).map_err(|e| ("id", e)),
        (None, None) => Err(("id", "the app has no id: give one, or --name".to_string())),
    };
    let name = name.unwrap_or_else(|(field, why)| {
        out.push(Problem::invalid(field, why));
        "invalid".into()
    });
    let group = id.or(opts.name.as_deref()).map(names::group_name).unwrap_or(Ok("app".into()));
    let group = group.unwrap_or_else(|why| {
        if !out.iter().any(|p| p.path == "id") {
            let why = format!("the task group is named after the id's last segment: {why}");
            out.push(Problem::invalid("id", why));
        }
        "app".into()
    });
    if let Err(why) = names::dns_name(&opts.framework, names::MAX_JOB_NAME) {
        out.push(Problem::invalid("--framework", why));
    }
    if let Some(ns) = &opts.namespace
        && let Err(why) = names::dns_name(ns, names::MAX_JOB_NAME)
    {
        out.push(Problem::invalid("--namespace", why));
    }

    let instances = app.instances.unwrap_or(defaults::INSTANCES);
    if instances > 10_000 {
        out.push(Problem::invalid("instances", format!("{instances} is more than Berth's 10000")));
    }
    let container = container(app, out);
    let constraints = constraints(app, out);
    let update_strategy = rollout::upgrade_strategy(app, instances, out, comments);
    let mut retries = RetryPolicy {
        limit: None,
        backoff_seconds: Some(app.backoff_seconds.unwrap_or(defaults::BACKOFF_SECONDS)),
        max_backoff_seconds: Some(app.max_launch_delay_seconds.unwrap_or(defaults::MAX_LAUNCH_DELAY_SECONDS)),
    };
    for (field, v) in
        [("backoffSeconds", &mut retries.backoff_seconds), ("maxLaunchDelaySeconds", &mut retries.max_backoff_seconds)]
    {
        if v.is_some_and(|s| s > 86_400) {
            out.push(Problem::invalid(field, "Berth waits at most 86400 seconds between attempts"));
        }
    }

    let mut job = Job::new(
        &name,
        JobSpec {
            framework: Some(opts.framework.clone()),
            task_groups: vec![TaskGroup {
                name: group,
                instances: Some(instances),
                constraints,
                retries: Some(retries),
                update_strategy: Some(update_strategy),
                container,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    job.metadata.namespace = opts.namespace.clone();
    let labels = labels(app, out);
    job.metadata.labels = (!labels.is_empty()).then_some(labels);
    job.metadata.annotations = id.map(|id| BTreeMap::from([(ANNOTATION_MARATHON_ID.to_string(), id.to_string())]));
    job
}

fn container(app: &App, out: &mut Vec<Problem>) -> Container {
    let c = app.container.clone().unwrap_or_default();
    if let Some(kind) = c.kind.as_deref()
        && !matches!(kind, "DOCKER" | "MESOS")
    {
        out.push(Problem::invalid("container.type", format!("{kind:?} is not DOCKER or MESOS")));
    }
    let image = c.docker.and_then(|d| d.image).filter(|i| !i.is_empty()).unwrap_or_else(|| {
        out.push(Problem::invalid(
            "container.docker.image",
            "Berth runs every task from an OCI image, and this app names none",
        ));
        String::new()
    });
    let cmd = app.cmd.clone().filter(|c| !c.is_empty());
    let args = app.args.clone().unwrap_or_default();
    if cmd.is_some() && !args.is_empty() {
        out.push(Problem::invalid("args", "give cmd or args, not both (Marathon refuses both too)"));
    }
    let ports = ports::map(app, out);
    let checks = app.health_checks.clone().unwrap_or_default();
    if checks.len() > 8 {
        out.push(Problem::invalid("healthChecks", "Berth runs at most 8 health checks per task"));
    }
    let health_checks = checks.iter().enumerate().filter_map(|(i, hc)| health::map(i, hc, ports.len(), out)).collect();
    Container {
        image,
        command: cmd.map(|c| vec!["/bin/sh".into(), "-c".into(), c]).unwrap_or_default(),
        args,
        env: env(app, out),
        resources: resources(app, out),
        termination_grace_period_seconds: app.task_kill_grace_period_seconds,
        ports,
        health_checks,
        ..Default::default()
    }
}

fn resources(app: &App, out: &mut Vec<Problem>) -> Resources {
    let cpus = app.cpus.unwrap_or(defaults::CPUS);
    let mem = app.mem.unwrap_or(defaults::MEM_MIB);
    let mut ok = |field: &str, v: f64| {
        let fine = (0.0..1e9).contains(&v);
        if !fine {
            out.push(Problem::invalid(field, format!("{v} is not a positive amount")));
        }
        fine
    };
    let cpu =
        ok("cpus", cpus).then(|| Quantity::from_millis(((cpus * 1000.0).round() as u64).max(u64::from(cpus > 0.0))));
    // Marathon's mem is MiB, possibly fractional: rounded up to whole MiB.
    let memory = ok("mem", mem).then(|| Quantity::new(format!("{}Mi", mem.ceil() as u64)));
    Resources { cpu, memory }
}

fn env(app: &App, out: &mut Vec<Problem>) -> Vec<EnvVar> {
    let mut vars = Vec::new();
    for (name, value) in app.env.clone().unwrap_or_default() {
        let path = format!("env.{name}");
        match value {
            Value::String(value) => vars.push(EnvVar { name, value }),
            Value::Object(o) if o.contains_key("secret") => out.push(Problem::unsupported(
                path,
                "is a secret reference: Berth has no secrets for tasks' environment; give the value",
            )),
            _ => out.push(Problem::invalid(path, "must be a string")),
        }
    }
    vars
}

fn constraints(app: &App, out: &mut Vec<Problem>) -> Vec<Vec<String>> {
    let mut result = Vec::new();
    for (i, raw) in app.constraints.clone().unwrap_or_default().into_iter().enumerate() {
        // Marathon's IS is an exact match: a LIKE of the escaped value.
        let c = match raw.as_slice() {
            [a, op, v] if op == "IS" => vec![a.clone(), "LIKE".into(), regex::escape(v)],
            _ => raw,
        };
        match berth_api::constraint::Constraint::parse(&c) {
            Ok(_) => result.push(c),
            Err(e) => out.push(Problem::invalid(format!("constraints[{i}]"), e.to_string())),
        }
    }
    result
}

fn labels(app: &App, out: &mut Vec<Problem>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (key, value) in app.labels.clone().unwrap_or_default() {
        match names::label_key(&key).and_then(|()| names::label_value(&value)) {
            Ok(()) => {
                labels.insert(key, value);
            }
            Err(why) => out.push(Problem::unsupported(format!("labels.{key}"), why)),
        }
    }
    labels
}
