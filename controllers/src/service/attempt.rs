//! One placement of a service instance as the planner sees it: which slot
//! and attempt, which template, whether it is live, ready, being stopped,
//! and whether it ended in a failure that counts toward restart backoff.

use berth_api::health::REASON_UNHEALTHY;
use berth_api::placement::REASON_EVICTED;
use berth_api::rollout::{LABEL_TEMPLATE_HASH, REASON_SCALED_DOWN, REASON_SUPERSEDED};
use berth_api::{Phase, Placement};
use jiff::Timestamp;
use kube::ResourceExt;

/// Annotation on a slot's oldest kept attempt: how many failures in a row
/// the slot had before it, so the count survives pruning older attempts.
pub const ANNOTATION_FAILURES_BEFORE: &str = "berth.dev/failures-before";

/// A failed attempt that ran at least this long starts the backoff afresh.
pub const BACKOFF_RESET_SECONDS: i64 = 600;

/// What the planner needs of one placement.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub name: String,
    pub slot: u32,
    pub attempt: u32,
    /// `LABEL_TEMPLATE_HASH` of the container it runs.
    pub hash: String,
    pub phase: Phase,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    /// Running and passing its health checks (or having none).
    pub healthy: bool,
    /// Asked to stop (`spec.kill`) but not ended yet.
    pub stopping: bool,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// [`ANNOTATION_FAILURES_BEFORE`], 0 when absent.
    pub failures_before: u32,
}

impl Attempt {
    pub fn of(p: &Placement) -> Attempt {
        let st = p.status.clone().unwrap_or_default();
        let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        let checks = !p.spec.container.health_checks.is_empty();
        let healthy = st.phase == Phase::Running && (!checks || st.health.as_ref().is_some_and(|h| h.healthy));
        Attempt {
            name: p.name_any(),
            slot: p.spec.instance,
            attempt: p.spec.attempt,
            hash: p.labels().get(LABEL_TEMPLATE_HASH).cloned().unwrap_or_default(),
            phase: st.phase,
            reason: st.reason.clone(),
            exit_code: st.exit_code,
            healthy,
            stopping: p.spec.kill.is_some() && !st.phase.is_terminal(),
            started_at: time(&st.started_at),
            finished_at: time(&st.finished_at),
            failures_before: p.annotations().get(ANNOTATION_FAILURES_BEFORE).and_then(|v| v.parse().ok()).unwrap_or(0),
        }
    }

    /// Not ended yet (it may be stopping).
    pub fn is_live(&self) -> bool {
        !self.phase.is_terminal()
    }

    /// Live and not asked to stop.
    pub fn is_kept(&self) -> bool {
        self.is_live() && !self.stopping
    }

    /// Running, healthy and not being stopped: it serves.
    pub fn is_available(&self) -> bool {
        self.is_kept() && self.healthy
    }

    /// Ended through its own fault: `Failed` (exit, unhealthy, …),
    /// `Succeeded` (a service's process is not meant to exit: restarting
    /// one that exits 0 at once would loop, as Kubernetes' `restartPolicy:
    /// Always` backs off too), or `Killed` for a reason other than the
    /// controller's own (superseded, scaled down) or a drain. `Lost` is not
    /// a failure.
    pub fn is_failure(&self) -> bool {
        match self.phase {
            Phase::Failed | Phase::Succeeded => true,
            Phase::Killed => !matches!(
                self.reason.as_deref(),
                Some(REASON_SUPERSEDED) | Some(REASON_SCALED_DOWN) | Some(REASON_EVICTED)
            ),
            _ => false,
        }
    }

    /// Why it ended, for people: `exit code 1 (Error)`, `Unhealthy`, …
    pub fn ended(&self) -> String {
        let reason = self.reason.clone().unwrap_or_else(|| format!("{:?}", self.phase));
        match (self.exit_code, reason.as_str()) {
            (_, REASON_UNHEALTHY) => "failing its health checks".into(),
            (Some(c), _) => format!("exit code {c} ({reason})"),
            (None, _) => reason,
        }
    }
}

/// Failures in a row of one slot as of its latest ended attempt: counted
/// back over the ended ones of `attempts` (one slot's, any order; one still
/// running beside them during a rollout breaks no chain) until one that
/// was not a failure, or that ran long enough to reset the backoff; past
/// the oldest kept attempt, its [`ANNOTATION_FAILURES_BEFORE`] goes on.
pub fn consecutive_failures(attempts: &[&Attempt]) -> u32 {
    let mut sorted: Vec<&&Attempt> = attempts.iter().filter(|a| !a.is_live()).collect();
    sorted.sort_by_key(|a| std::cmp::Reverse(a.attempt));
    let mut count = 0;
    for a in &sorted {
        if !a.is_failure() {
            return count;
        }
        count += 1;
        let ran = match (a.started_at, a.finished_at) {
            (Some(s), Some(f)) => f.as_second() - s.as_second(),
            _ => 0,
        };
        if ran >= BACKOFF_RESET_SECONDS {
            return count;
        }
    }
    count + sorted.last().map(|a| a.failures_before).unwrap_or(0)
}
