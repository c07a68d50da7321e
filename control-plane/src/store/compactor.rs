//! Periodic compaction of the change log, the way kube-apiserver compacts etcd: at every tick, compact to
//! the revision seen at the previous tick, so watchers always have at least one interval to resume in.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Revision, Store};

/// Compacts a store every `interval` until cancelled.
pub struct Compactor {
    pub interval: Duration,
}

impl Compactor {
    pub async fn run(self, store: Arc<dyn Store>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut previous: Option<Revision> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if let Some(revision) = previous
                && let Err(e) = store.compact(revision).await
            {
                tracing::warn!(error = %e, revision, "store compaction failed");
            }
            match store.current_revision().await {
                Ok(revision) => previous = Some(revision),
                Err(e) => tracing::warn!(error = %e, "reading the store revision failed"),
            }
        }
    }
}
