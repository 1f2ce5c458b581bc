//! Self-fencing, opt-in (`--fence-after-seconds`), as Nomad's
//! `stop_after_client_disconnect`: an agent that has not renewed its Lease
//! for that long stops every container it runs (SIGKILL) and reports each
//! placement `Lost`/`AgentDisconnected` once it can reach the API again.
//!
//! Without it a partitioned agent's containers keep running until the
//! partition heals, beside the replacements the cluster started elsewhere
//! once the agent's TTL passed — as in Kubernetes and Mesos. With it, set
//! below the controllers' `--agent-ttl-seconds` (less the time a container
//! takes to die), a task never runs twice at once, at the price of stopping
//! work whenever the agent loses the API server for that long (an API server
//! restart included).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::AgentContext;
use crate::runtime::Runtime;

/// `status.reason` of a placement its own agent stopped after losing the API.
pub const REASON_AGENT_DISCONNECTED: &str = "AgentDisconnected";

/// When the Lease was last renewed, and whether the agent has fenced itself.
pub struct Fence {
    /// When the last successful renewal was sent.
    renewed: Mutex<Instant>,
    fenced: watch::Sender<bool>,
}

impl Default for Fence {
    fn default() -> Self {
        Fence { renewed: Mutex::new(Instant::now()), fenced: watch::Sender::new(false) }
    }
}

impl Fence {
    /// A renewal sent at `sent` succeeded: the agent reaches the API.
    pub fn renewed(&self, sent: Instant) {
        let mut last = self.renewed.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last).max(sent);
        if self.fenced.send_replace(false) {
            tracing::info!("the agent renews its Lease again; it runs new placements again");
        }
    }

    /// Turns true while the agent is fenced.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.fenced.subscribe()
    }

    /// True once no renewal has succeeded for `after` (as of `now`); fences the agent then.
    pub fn check(&self, after: Duration, now: Instant) -> bool {
        let last = *self.renewed.lock().unwrap_or_else(|e| e.into_inner());
        let cut_off = now.saturating_duration_since(last) > after;
        if cut_off && !self.fenced.send_replace(true) {
            tracing::warn!(
                seconds = after.as_secs_f64(),
                "no Lease renewal succeeded for --fence-after-seconds: stopping every container of this agent"
            );
        }
        cut_off
    }
}

/// Checks the fence a few times per `fence_after` until `stop` resolves;
/// returns at once when fencing is off.
pub async fn watchdog<R: Runtime>(ctx: std::sync::Arc<AgentContext<R>>, stop: impl Future<Output = ()>) {
    let Some(after) = ctx.config.fence_after else { return };
    let mut tick = tokio::time::interval((after / 4).clamp(Duration::from_millis(50), Duration::from_millis(500)));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => { ctx.fence.check(after, Instant::now()); }
        }
    }
}

/// What one supervisor watches of the fence.
pub struct Watch {
    rx: Option<watch::Receiver<bool>>,
    after: Duration,
}

impl Watch {
    /// The fence of `ctx`'s agent; one that never closes when fencing is off.
    pub fn of<R>(ctx: &AgentContext<R>) -> Watch {
        let after = ctx.config.fence_after.unwrap_or_default();
        Watch { rx: ctx.config.fence_after.map(|_| ctx.fence.subscribe()), after }
    }

    /// True while the agent is fenced.
    pub fn is_fenced(&self) -> bool {
        self.rx.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves, with the configured silence, once the agent is fenced.
    pub async fn fenced(&mut self) -> Duration {
        if let Some(rx) = &mut self.rx
            && rx.wait_for(|f| *f).await.is_ok()
        {
            return self.after;
        }
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fence_closes_after_the_silence_and_opens_on_a_renewal() {
        let fence = Fence::default();
        let mut rx = fence.subscribe();
        let start = Instant::now();
        let after = Duration::from_secs(3);
        assert!(!fence.check(after, start + Duration::from_secs(2)), "within the time");
        assert!(!*rx.borrow_and_update());
        assert!(fence.check(after, start + Duration::from_secs(4)), "past it");
        assert!(*rx.borrow_and_update());
        fence.renewed(start + Duration::from_secs(5));
        assert!(!*rx.borrow_and_update(), "a renewal opens it");
        assert!(!fence.check(after, start + Duration::from_secs(7)), "counted from the last renewal");
        // A renewal sent before a later one that already succeeded does not move the time back.
        fence.renewed(start + Duration::from_secs(1));
        assert!(!fence.check(after, start + Duration::from_secs(8)));
    }
}
