//! The contending frameworks. An Offers framework is played the way an
//! external scheduler would run: it watches its Offers and accepts each with
//! as many fixed-size tasks as fit, never suppressing (it always wants
//! more). A SharedState framework is a `builtin-batch` Framework to which
//! the test keeps submitting Jobs of many instances of one shape.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_api::framework::{FrameworkSpec, Mode, Scheduler};
use berth_api::{
    Container, Framework, Job, JobSpec, Offer, OfferState, Placement, PlacementSpec, ResourceVec, Resources, TaskGroup,
};
use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::server::Stopped;

pub const NS: &str = "default";
const IMAGE: &str = "registry.test/demo:1";

/// A framework's name, weight (Offers only) and task shape.
#[derive(Clone, Debug)]
pub struct Shape {
    pub name: &'static str,
    pub weight: f64,
    pub cpu: &'static str,
    pub memory: &'static str,
}

impl Shape {
    pub fn resources(&self) -> Resources {
        Resources { cpu: Some(self.cpu.into()), memory: Some(self.memory.into()) }
    }

    pub fn task(&self) -> ResourceVec {
        self.resources().to_vec().unwrap()
    }
}

/// Creates the Framework object: `Offers`/`external` offered in units of its
/// task, or `SharedState`/`builtin-batch`.
pub async fn register(client: &Client, s: &Shape, mode: Mode) {
    let spec = match mode {
        Mode::Offers => FrameworkSpec {
            weight: Some(s.weight),
            mode,
            scheduler: Scheduler::External,
            offer_unit: Some(s.resources()),
            ..Default::default()
        },
        Mode::SharedState => FrameworkSpec { mode, scheduler: Scheduler::BuiltinBatch, ..Default::default() },
    };
    let api: Api<Framework> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &Framework::new(s.name, spec)).await.unwrap();
}

/// How many `task`s fit in `r`.
fn fits(r: &ResourceVec, task: &ResourceVec) -> u64 {
    (r.cpu_millis / task.cpu_millis.max(1)).min(r.memory_bytes / task.memory_bytes.max(1))
}

/// Answers `s`'s offers until `stopped`: all tasks that fit, created
/// together; an offer too small for one task is declined for 1 s.
/// Counts the placements it creates in `placed`.
pub async fn offers_framework(client: Client, s: Shape, stopped: Stopped, placed: Arc<AtomicU64>) {
    let offers: Api<Offer> = Api::namespaced(client.clone(), NS);
    let placements: Api<Placement> = Api::namespaced(client.clone(), NS);
    let wc = watcher::Config::default().fields(&format!("spec.framework={}", s.name));
    let mut events = watcher(offers.clone(), wc).default_backoff().applied_objects().boxed();
    let mut answered = HashSet::new();
    let mut next_instance = 0u32;
    let stop = stopped.wait();
    tokio::pin!(stop);
    loop {
        let o = tokio::select! {
            _ = &mut stop => return,
            e = events.next() => match e { Some(Ok(o)) => o, Some(Err(_)) => continue, None => return },
        };
        let open = o.status.as_ref().and_then(|st| st.state).unwrap_or_default() == OfferState::Outstanding;
        if !open || o.spec.decline.is_some() || !answered.insert(o.name_any()) {
            continue;
        }
        let n = fits(&o.spec.resources.to_vec().unwrap(), &s.task());
        if n == 0 {
            let decline = json!({"spec": {"decline": {"refuseSeconds": 1}}});
            let _ = offers.patch(&o.name_any(), &PatchParams::default(), &Patch::Merge(&decline)).await;
            continue;
        }
        let first = next_instance;
        next_instance += n as u32;
        let creates = (0..n).map(|i| {
            let p = task(&s, &o, i, first + i as u32);
            let placements = placements.clone();
            async move { placements.create(&PostParams::default(), &p).await }
        });
        let made = futures::future::join_all(creates).await.into_iter().filter(Result::is_ok).count();
        placed.fetch_add(made as u64, Ordering::Relaxed);
    }
}

/// Task `i` accepting offer `o`: instance `instance` of the framework's tasks.
fn task(s: &Shape, o: &Offer, i: u64, instance: u32) -> Placement {
    let spec = PlacementSpec {
        agent: o.spec.agent.clone(),
        job: s.name.into(),
        task_group: "main".into(),
        instance,
        offer: Some(o.name_any()),
        container: Container { image: IMAGE.into(), resources: s.resources(), ..Default::default() },
        ..Default::default()
    };
    let mut p = Placement::new(&format!("{}-{i}", o.name_any()), spec);
    p.metadata.labels = Some([("berth.dev/framework".to_string(), s.name.to_string())].into());
    p
}

/// Keeps `in_flight` unfinished Jobs of `instances` tasks of `s`'s shape
/// (under `constraints`) submitted until `stopped`; counts the Jobs
/// submitted in `submitted`.
pub async fn shared_state_framework(
    client: Client,
    s: Shape,
    instances: u32,
    in_flight: usize,
    constraints: Vec<Vec<String>>,
    stopped: Stopped,
    submitted: Arc<AtomicU64>,
) {
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let stop = stopped.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let Ok(list) = jobs.list(&ListParams::default()).await else { continue };
        let mine = list.items.iter().filter(|j| j.spec.framework.as_deref() == Some(s.name));
        let open = mine.filter(|j| !berth_controllers::job_status::is_finished(j)).count();
        for _ in open..in_flight {
            let n = submitted.fetch_add(1, Ordering::Relaxed);
            let container = Container { image: IMAGE.into(), resources: s.resources(), ..Default::default() };
            let constraints = constraints.clone();
            let group = TaskGroup {
                name: "work".into(),
                instances: Some(instances),
                constraints,
                container,
                ..Default::default()
            };
            let spec = JobSpec { framework: Some(s.name.into()), task_groups: vec![group], ..Default::default() };
            let _ = jobs.create(&PostParams::default(), &Job::new(&format!("{}-{n}", s.name), spec)).await;
        }
    }
}
