//! One sink's delivery loop: take the oldest events of its queue, hand them to the sink, and remove them
//! from the queue once the sink took them. A failure is retried, the same batch first (so events reach
//! the sink in the order they happened), after an exponential backoff with jitter; while the sink keeps
//! failing, events older than the maximum retry age are dropped and counted. A batch the receiver
//! refuses for good (a 4xx other than 408 and 429) is delivered one event at a time, so only the events
//! it refuses are dropped (and counted). A sink that fails or hangs holds up only its own queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::record::Record;
use super::sinks::{Sink, SinkError};
use super::spool::{self, Queued, Spool};
use crate::telemetry::{
    DeliveryFailed, EventsDelivered, EventsNotShipped, ShipDropReason, ShipperMetrics, SinkQueueDepth,
};

const BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// The longest pause between attempts, which bounds how long a recovered sink waits for its events.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Bytes of records per delivery, at most (a single larger record still goes alone).
const BATCH_BYTES: usize = 4 << 20;

pub struct Delivery {
    pub name: String,
    pub sink: Sink,
    pub spool: Arc<Spool>,
    /// Rung when events are added to this sink's queue.
    pub queued: Arc<Notify>,
    pub metrics: ShipperMetrics,
    pub max_retry_age: Duration,
}

/// How one delivery attempt ended.
enum Outcome {
    /// Everything in the batch was delivered or dropped; the queue moved on.
    Done,
    /// The sink failed; try again after a pause.
    Failed(SinkError),
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
            // Only a failing sink lets events age out: after a long stop, or behind a slow but working
            // sink, they are still delivered.
            if failures > 0 {
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
            }
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = self.deliver(&batch) => outcome,
            };
            match outcome {
                Outcome::Done => failures = 0,
                Outcome::Failed(error) => {
                    failures += 1;
                    let backoff = backoff(failures);
                    let events = batch.len() as u64;
                    DeliveryFailed {
                        sink: &self.name,
                        error: &error,
                        backoff,
                        failures,
                        events,
                    }
                    .emit(&self.metrics);
                    if pause(&shutdown, backoff).await {
                        return;
                    }
                }
            }
        }
    }

    /// Delivers `batch` (the head of the queue) and removes from the queue what it is done with.
    async fn deliver(&mut self, batch: &[Queued]) -> Outcome {
        let mut records = Vec::with_capacity(batch.len());
        for queued in batch {
            match serde_json::from_slice::<Record>(&queued.record) {
                Ok(record) => records.push(record),
                // Nothing writes the queue but this process, so this is a bug; it must not block the
                // queue. An unreadable record at the head goes, once; one further back waits its turn.
                Err(e) if records.is_empty() => {
                    tracing::error!(sink = %self.name, error = %e, "an unreadable record in the event queue");
                    self.ack(std::slice::from_ref(queued), Some(ShipDropReason::Corrupt))
                        .await;
                    return Outcome::Done;
                }
                Err(_) => break,
            }
        }
        let batch = &batch[..records.len()];
        match self.sink.deliver(&records).await {
            Ok(()) => {
                self.delivered(batch).await;
                Outcome::Done
            }
            Err(error) if !error.is_permanent() => Outcome::Failed(error),
            // Refused for good: find which events the receiver refuses, one at a time.
            Err(error) if records.len() == 1 => {
                tracing::warn!(sink = %self.name, error = %error, "the receiver refused an event for good; dropping it");
                self.ack(batch, Some(ShipDropReason::Rejected)).await;
                Outcome::Done
            }
            Err(_) => {
                for (queued, record) in batch.iter().zip(records) {
                    match self.sink.deliver(std::slice::from_ref(&record)).await {
                        Ok(()) => self.delivered(std::slice::from_ref(queued)).await,
                        Err(error) if error.is_permanent() => {
                            tracing::warn!(sink = %self.name, error = %error, "the receiver refused an event for good; dropping it");
                            self.ack(std::slice::from_ref(queued), Some(ShipDropReason::Rejected))
                                .await;
                        }
                        Err(error) => return Outcome::Failed(error),
                    }
                }
                Outcome::Done
            }
        }
    }

    /// Counts `done` as delivered and removes them from the queue.
    async fn delivered(&self, done: &[Queued]) {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let lags: Vec<f64> = done
            .iter()
            .map(|q| (now_ms - q.arrived_ms).max(0) as f64 / 1000.0)
            .collect();
        EventsDelivered {
            sink: &self.name,
            count: done.len() as u64,
            lags: &lags,
        }
        .emit(&self.metrics);
        self.ack(done, None).await;
    }

    async fn peek(&self) -> Result<Vec<Queued>, super::ShipperError> {
        let (name, max) = (self.name.clone(), self.sink.max_batch());
        let batch = spool::blocking(&self.spool, move |spool| spool.peek(&name, max, BATCH_BYTES)).await?;
        if batch.is_empty() {
            // The queue's depth is this loop's to report: it is the only one that empties it.
            SinkQueueDepth {
                sink: &self.name,
                depth: 0,
            }
            .emit(&self.metrics);
        }
        Ok(batch)
    }

    /// Removes `done` (a prefix of the queue) from the queue; `dropped` says why when they were not
    /// delivered.
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
    use k8s_openapi::api::core::v1::Event;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::Value;

    use super::*;
    use crate::shipper::config::WebhookConfig;
    use crate::shipper::sinks::webhook::WebhookSink;
    use crate::testing::http_receiver;

    fn record(name: &str) -> Vec<u8> {
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Event::default()
        };
        serde_json::to_vec(&Record::new(event)).unwrap()
    }

    /// A delivery loop to a webhook at `url`, over a spool holding `queued` (records and how many
    /// seconds ago each arrived).
    async fn deliver_to(
        url: &str,
        queued: &[(Vec<u8>, i64)],
    ) -> (ShipperMetrics, Arc<Spool>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(&dir.path().join("spool.redb"), 100).unwrap());
        let sinks = vec!["hook".to_string()];
        for (record, ago) in queued {
            let arrived = jiff::Timestamp::now().as_millisecond() - ago * 1000;
            spool
                .append(&sinks, &[(record.clone(), vec![0])], arrived, None)
                .unwrap();
        }
        let config: WebhookConfig =
            serde_yaml::from_str(&format!("{{url: \"{url}\", maxBatch: 10, timeoutSeconds: 2}}")).unwrap();
        let metrics = ShipperMetrics::register(&mut prometheus_client::registry::Registry::default());
        let delivery = Delivery {
            name: "hook".into(),
            sink: Sink::Webhook(WebhookSink::new(&config).unwrap()),
            spool: spool.clone(),
            queued: Arc::new(Notify::new()),
            metrics: metrics.clone(),
            max_retry_age: Duration::from_secs(600),
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(delivery.run(shutdown.clone()));
        (metrics, spool, dir)
    }

    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        for _ in 0..500 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting until {what}");
    }

    fn names(bodies: &[Value]) -> Vec<String> {
        bodies
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .map(|r| r["event"]["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn a_refused_batch_is_retried_one_event_at_a_time_and_only_the_refused_one_is_dropped() {
        let (url, taken) = http_receiver(|body| {
            if body.to_string().contains("\"bad\"") {
                422
            } else {
                200
            }
        })
        .await;
        let queued = [(record("a"), 0), (record("bad"), 0), (record("c"), 0)];
        let (metrics, spool, _dir) = deliver_to(&url, &queued).await;
        until("the queue is empty and counted", || {
            spool.depth("hook").unwrap() == 0
                && metrics.delivered("hook") == 2
                && metrics.dropped("hook", ShipDropReason::Rejected) == 1
        })
        .await;
        assert_eq!(names(&taken.lock().unwrap()), ["a", "c"]);
    }

    #[tokio::test]
    async fn old_events_are_delivered_to_a_working_sink_and_dropped_only_while_it_fails() {
        let (url, taken) = http_receiver(|_| 200).await;
        let (metrics, spool, _dir) = deliver_to(&url, &[(record("old"), 3600)]).await;
        until("the old event is delivered", || spool.depth("hook").unwrap() == 0).await;
        assert_eq!(names(&taken.lock().unwrap()), ["old"]);
        assert_eq!(metrics.dropped("hook", ShipDropReason::MaxRetryAge), 0);

        let (url, _) = http_receiver(|_| 503).await;
        let queued = [(record("old"), 3600), (record("new"), 0)];
        let (metrics, spool, _dir) = deliver_to(&url, &queued).await;
        // The spool forgets the record and the metric counts it in two steps: wait for both.
        until("the old event is dropped", || {
            spool.depth("hook").unwrap() == 1 && metrics.dropped("hook", ShipDropReason::MaxRetryAge) == 1
        })
        .await;
    }

    #[tokio::test]
    async fn an_unreadable_record_at_the_head_is_dropped_once() {
        let (url, taken) = http_receiver(|_| 200).await;
        let queued = [(record("a"), 0), (b"not a record".to_vec(), 0), (record("b"), 0)];
        let (metrics, spool, _dir) = deliver_to(&url, &queued).await;
        until("the queue is empty and counted", || {
            spool.depth("hook").unwrap() == 0 && metrics.dropped("hook", ShipDropReason::Corrupt) == 1
        })
        .await;
        assert_eq!(names(&taken.lock().unwrap()), ["a", "b"]);
    }

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
