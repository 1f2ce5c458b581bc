//! The SharedState schedulers' conflicts, counted from the controllers' own
//! log: every ledger write rejected with 409 and retried by the claim path
//! (`berth_controllers::scheduler::claim`) logs one debug event. Counted
//! by a tracing layer that sees only that target, so nothing else is
//! formatted or slowed down. With `CONTENTION_LOG` set, the controllers'
//! and agents' info logs are printed too (offers made, accepted, refused),
//! to see what a failed run did.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt};

const TARGET: &str = "berth_controllers::scheduler::claim";

struct Count(Arc<AtomicU64>);

impl<S: Subscriber> Layer<S> for Count {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().is_event() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Installs the counter for this test process; returns the count.
pub fn count() -> Arc<AtomicU64> {
    let n = Arc::new(AtomicU64::new(0));
    let only_claims = filter_fn(|m| m.target() == TARGET && *m.level() == tracing::Level::DEBUG);
    let log = std::env::var("CONTENTION_LOG").ok().map(|_| {
        tracing_subscriber::fmt::layer()
            .with_filter(filter_fn(|m| m.target().starts_with("berth") && *m.level() <= tracing::Level::INFO))
    });
    let subscriber = tracing_subscriber::registry().with(Count(n.clone()).with_filter(only_claims)).with(log);
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test process");
    n
}
