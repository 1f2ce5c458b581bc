//! `berth-controllers`: the reconcilers that turn `Job`s into `Placement`s
//! and keep agents' claim ledgers true. They talk to the store only
//! through the Kubernetes API, so they run unchanged on kube-apiserver.
//! Placements carry an `ownerReference` to their Job, so the API server's
//! garbage collector deletes them with it.
//!
//! Layout:
//! - `allocator`: the pure offer planner (weighted DRF, quotas, declines, rescinds) and its applier.
//! - `offers`: the allocation loop and the frameworks' answers (accept, decline), and `Framework.status`;
//!   `offers::builtin` / `builtin_answer`: `builtin-batch` in `Offers` mode (demand, usable agents, answers).
//! - `scheduler::plan`: the pure planner (agents and demand in, a plan out;
//!   `binpack`/`spread`/`random`, gangs all or nothing).
//! - `scheduler::constraints`: Marathon-style constraints: where the next instance may go, and why not.
//! - `scheduler::explain`: why a task fits nowhere, in numbers.
//! - `scheduler::claim`: one agent's ledger write with a resourceVersion precondition.
//! - `scheduler::apply`: the applier: a plan's claims, gangs released when not whole.
//! - `job`: the `builtin-batch` Job reconciler (places in shared-state mode; in `Offers` mode says why tasks wait).
//! - `placing`: shared-state placement of missing instances in rounds: plan, claim, create placements.
//! - `job_actions`: the batch rules' other writes: kill requests (suspend, deadline, failure) and retry Events.
//! - `service`: the `builtin-service` reconciler (restarts with backoff, rolling updates, pause, scale, revisions).
//! - `job_status`: a Job's status computed from its placements.
//! - `expect`: a Job's placements from the shared cache plus those created but not yet seen by its watch.
//! - `shared`: the one placement watch feeding the cache and the Job and ledger controllers' triggers.
//! - `ledger`: releases claims of finished or never-created placements.
//! - `node_lifecycle`: agents whose Lease stops moving are `NotReady`, their placements `Lost`.
//! - `attempts`: which attempt of each task instance is latest, and which instances need a new one.
//! - `batch`: the batch rules, pure: `dependsOn` (`dag`), parallelism, retries with backoff, deadline,
//!   suspend (`decide`), per-group status (`groups`); shared by both placement paths.
//! - `priority`: in shared-state mode, capacity higher-priority waiting Jobs would take is held back from lower ones.
//! - `events`: what is worth an Event, and writing it.

pub mod allocator;
pub mod attempts;
pub mod batch;
pub mod events;
pub mod expect;
pub mod job;
pub mod job_actions;
pub mod job_status;
pub mod ledger;
pub mod node_lifecycle;
pub mod offers;
pub mod placing;
pub mod priority;
pub mod scheduler;
pub mod service;
pub mod shared;

use std::sync::Arc;

use berth_api::resources::ResourceError;
use berth_api::{Agent, Cluster, Job, Placement};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("task resources: {0}")]
    Resources(#[from] ResourceError),
    #[error("agent {0}'s ledger kept changing; giving up this round")]
    Contended(String),
}

/// What every reconciler shares: the client and the caches.
pub struct Context {
    pub client: Client,
    pub agents: Store<Agent>,
    pub placements: Store<Placement>,
    /// The `Cluster`s: the first by name gives the agent selector.
    pub clusters: Store<Cluster>,
    /// The Jobs (the Job controller's cache): who else waits, and at what priority.
    pub jobs: Store<Job>,
    /// `namespace/name` of every placement the placement watch has reported
    /// (and whose claim was not released since), so a claim whose placement
    /// is gone is known to be deleted, not unborn.
    pub seen_placements: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Placements created here that the placement cache may not show yet.
    pub expected: Arc<expect::Expected>,
}

/// A cache of all objects of `K`, kept current by a watch in the background.
fn cache<K>(api: Api<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff().applied_objects();
    tokio::spawn(stream.for_each(|_| futures::future::ready(())));
    reader
}

/// How the controllers judge the cluster.
#[derive(Clone, Debug)]
pub struct Settings {
    /// An agent whose Lease has not moved for this long is lost.
    pub agent_ttl: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { agent_ttl: node_lifecycle::DEFAULT_AGENT_TTL }
    }
}

/// Runs every controller with the default [`Settings`] until `shutdown` resolves.
pub async fn run(client: Client, shutdown: impl Future<Output = ()> + Send + Sync + 'static) -> Result<(), Error> {
    run_with(client, Settings::default(), shutdown).await
}

/// Runs every controller until `shutdown` resolves.
pub async fn run_with(
    client: Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let agents = cache(Api::<Agent>::all(client.clone()));
    let expected = Arc::new(expect::Expected::default());
    let seen_placements = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let shared::Shared { store: placements, to_jobs, to_ledger } =
        shared::placements(Api::<Placement>::all(client.clone()), expected.clone(), seen_placements.clone());
    let clusters = cache(Api::<Cluster>::all(client.clone()));
    let leases = cache(Api::<Lease>::namespaced(client.clone(), node_lifecycle::LEASE_NAMESPACE));
    let jobs_controller =
        Controller::new(Api::<Job>::all(client.clone()), watcher::Config::default()).owns_stream(to_jobs.map(Ok));
    let waiting = jobs_controller.store();
    let _ = tokio::join!(agents.wait_until_ready(), placements.wait_until_ready(), clusters.wait_until_ready());
    let ctx = Arc::new(Context {
        client: client.clone(),
        agents,
        placements,
        clusters,
        jobs: waiting.clone(),
        seen_placements,
        expected,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // A change on any agent (capacity freed, agent ready) may let waiting Jobs place.
    let job_loop = jobs_controller
        .watches(Api::<Agent>::all(client.clone()), watcher::Config::default(), move |_agent| {
            waiting
                .state()
                .into_iter()
                .filter(|j| !job_status::is_finished(j))
                .map(|j| ObjectRef::from_obj(&*j))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(stopped())
        .run(job::reconcile, job::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));

    let ledger_loop = Controller::new(Api::<Agent>::all(client.clone()), watcher::Config::default())
        .watches_stream(to_ledger.map(Ok), |p: Placement| Some(ObjectRef::<Agent>::new(&p.spec.agent)))
        .graceful_shutdown_on(stopped())
        .run(ledger::reconcile, ledger::error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));

    let allocation = offers::allocation_loop(client.clone(), stopped());
    let node_lifecycle = node_lifecycle::run(
        client.clone(),
        ctx.agents.clone(),
        ctx.placements.clone(),
        leases,
        settings.agent_ttl,
        stopped(),
    );

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    tracing::info!("controllers running");
    tokio::join!(job_loop, ledger_loop, allocation, node_lifecycle);
    Ok(())
}
