//! Periodic compaction: history older than the last `compact_keep`
//! revisions is dropped every `compact_interval` (after kine's compactor).

use std::sync::Arc;

use super::App;
use crate::storage::Storage;

pub async fn run<S: Storage>(app: Arc<App<S>>) {
    let period = app.opts.compact_interval;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        let current = match app.store.current_revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "compaction: reading the current revision");
                continue;
            }
        };
        let target = current.saturating_sub(app.opts.compact_keep);
        if target == 0 {
            continue;
        }
        match app.store.compact(target).await {
            Ok(()) => tracing::debug!(revision = target, "compacted"),
            Err(e) => tracing::warn!(error = %e, revision = target, "compaction failed"),
        }
    }
}
