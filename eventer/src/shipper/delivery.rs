//! One sink's delivery loop: take the oldest events of its queue, hand them to the sink, and remove them
//! from the queue once the sink took them. A failure is retried, the same batch first (so events reach
//! the sink in the order they happened), after an exponential backoff with jitter; events older than the
//! maximum retry age are dropped and counted. A sink that fails or hangs holds up only its own queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::record::Record;
use super::sinks::Sink;
use super::spool::{self, Queued, Spool};
use crate::telemetry::{
    DeliveryFailed, EventsDelivered, EventsNotShipped, ShipDropReason, ShipperMetrics, SinkQueueDepth,
};

const BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// The longest pause between attempts, which bounds how long a recovered sink waits for its events.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

pub struct Delivery {
    pub name: String,
    pub sink: Sink,
    pub spool: Arc<Spool>,
    /// Rung when events are added to this sink's queue.
    pub queued: Arc<Notify>,
    pub metrics: ShipperMetrics,
    pub max_retry_age: Duration,
}

impl Delivery {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let name = self.name.clone();
        match spool::blocking(&self.spool, move |spool| spool.depth(&name)).await {
            Ok(depth) => SinkQueueDepth {
                sink: &self.name,
                depth,
            }
            .emit(&self.metrics),
            Err(e) => tracing::error!(sink = %self.name, error = %e, "reading the event queue failed"),
        }
        let mut failures = 0u32;
        loop {
            let batch = match self.peek().await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(sink = %self.name, error = %e, "reading the event queue failed");
                    if pause(&shutdown, BACKOFF_MAX).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.queued.notified() => continue,
                }
            }
            let now_ms = jiff::Timestamp::now().as_millisecond();
            let max_age_ms = i64::try_from(self.max_retry_age.as_millis()).unwrap_or(i64::MAX);
            // The queue is in arrival order: whatever is too old is at its head.
            let expired = batch
                .iter()
                .take_while(|q| now_ms.saturating_sub(q.arrived_ms) > max_age_ms)
                .count();
            if expired > 0 {
                self.ack(&batch[..expired], Some(ShipDropReason::MaxRetryAge))
                    .await;
                continue;
            }
            let (records, corrupt): (Vec<_>, Vec<_>) = batch
                .iter()
                .map(|q| serde_json::from_slice::<Record>(&q.record))
                .partition(Result::is_ok);
            if !corrupt.is_empty() {
                // Nothing writes these but this process; a record that cannot be read back is a bug, kept
                // from blocking the queue.
                tracing::error!(sink = %self.name, count = corrupt.len(), "unreadable records in the event queue");
                let count = corrupt.len() as u64;
                EventsNotShipped {
                    sink: Some(&self.name),
                    reason: ShipDropReason::Corrupt,
                    count,
                }
                .emit(&self.metrics);
            }
            let records: Vec<Record> = records.into_iter().map(Result::unwrap).collect();
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = self.sink.deliver(&records) => result,
            };
            match result {
                Ok(()) => {
                    failures = 0;
                    let now_ms = jiff::Timestamp::now().as_millisecond();
                    let lags: Vec<f64> = batch
                        .iter()
                        .map(|q| (now_ms - q.arrived_ms).max(0) as f64 / 1000.0)
                        .collect();
                    let count = records.len() as u64;
                    EventsDelivered {
                        sink: &self.name,
                        count,
                        lags: &lags,
                    }
                    .emit(&self.metrics);
                    self.ack(&batch, None).await;
                }
                Err(error) => {
                    failures += 1;
                    let backoff = backoff(failures);
                    DeliveryFailed {
                        sink: &self.name,
                        error: &error,
                        backoff,
                        failures,
                    }
                    .emit(&self.metrics);
                    if pause(&shutdown, backoff).await {
                        return;
                    }
                }
            }
        }
    }

    async fn peek(&self) -> Result<Vec<Queued>, super::ShipperError> {
        let (name, max) = (self.name.clone(), self.sink.max_batch());
        spool::blocking(&self.spool, move |spool| spool.peek(&name, max)).await
    }

    /// Removes `done` from the queue; `dropped` says why when they were not delivered.
    async fn ack(&self, done: &[Queued], dropped: Option<ShipDropReason>) {
        let Some(last) = done.last() else { return };
        let (name, through) = (self.name.clone(), last.seq);
        match spool::blocking(&self.spool, move |spool| spool.ack(&name, through)).await {
            Ok(depth) => SinkQueueDepth {
                sink: &self.name,
                depth,
            }
            .emit(&self.metrics),
            Err(e) => {
                tracing::error!(sink = %self.name, error = %e, "removing delivered events from the queue failed")
            }
        }
        if let Some(reason) = dropped {
            let count = done.len() as u64;
            EventsNotShipped {
                sink: Some(&self.name),
                reason,
                count,
            }
            .emit(&self.metrics);
        }
    }
}

/// `BACKOFF_FIRST` doubling per failure up to `BACKOFF_MAX`, each pause between half and all of it.
fn backoff(failures: u32) -> Duration {
    let full = BACKOFF_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    full.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

/// Sleeps for `duration`; true when shut down meanwhile.
async fn pause(shutdown: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for failures in 1..40 {
            let b = backoff(failures);
            let full = BACKOFF_FIRST
                .saturating_mul(1 << (failures - 1).min(16))
                .min(BACKOFF_MAX);
            assert!(b >= full / 2 && b <= full, "{failures}: {b:?}");
        }
        assert!(backoff(30) >= BACKOFF_MAX / 2);
    }
}
