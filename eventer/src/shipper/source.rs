//! Where the shipper's events come from: a watch of core/v1 events through the API, resumed from the
//! spool's checkpoint. Each batch of changes is routed and appended to the sinks' queues together with
//! the newest resourceVersion it contains, in one durable transaction.
//!
//! When there is no checkpoint yet, or the watch answers `410 Expired` (the resume point was compacted
//! away), it lists every event and takes those written after the checkpoint: resourceVersions are the
//! store's global revision here, so "written after" is a comparison. A list interrupted by a crash is
//! taken again from the old checkpoint, so events may be queued twice then (with the same delivery ids),
//! never lost. Deletions (TTL expiry) are not shipped.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ShipperError;
use super::record::Record;
use super::route::{Router, Unrouted};
use super::spool::{self, Spool};
use crate::telemetry::{
    EventsNotShipped, EventsReceived, EventsRelisted, ShipDropReason, ShipperMetrics, SinkQueueDepth,
};

/// Changes taken from the watch per transaction, at most.
const BATCH: usize = 2048;
/// How long a watch request lasts before it is renewed (kube-apiserver's default range is 5–10 min).
const WATCH_TIMEOUT_SECONDS: u32 = 290;
const LIST_PAGE: u32 = 500;
const RETRY: Duration = Duration::from_secs(1);

pub struct Source {
    pub client: kube::Client,
    pub spool: Arc<Spool>,
    pub router: Router,
    pub sinks: Vec<String>,
    pub queued: Vec<Arc<Notify>>,
    pub metrics: ShipperMetrics,
}

enum Next {
    Watch,
    List,
}

impl Source {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut checkpoint = match spool::blocking(&self.spool, |spool| spool.checkpoint()).await {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                return tracing::error!(error = %e, "reading the shipper's checkpoint failed; events are not shipped");
            }
        };
        let mut next = if checkpoint == 0 {
            EventsRelisted {
                from: 0,
                why: "first start",
            }
            .emit(&self.metrics);
            Next::List
        } else if self
            .store_revision()
            .await
            .is_ok_and(|revision| revision < checkpoint)
        {
            // A watch from a revision the store has not reached would wait for it in silence.
            EventsRelisted {
                from: checkpoint,
                why: "the store is behind the checkpoint",
            }
            .emit(&self.metrics);
            Next::List
        } else {
            Next::Watch
        };
        loop {
            let started = tokio::time::Instant::now();
            let result = match next {
                Next::List => self
                    .list(checkpoint, &shutdown)
                    .await
                    .map(|newest| (newest, Next::Watch)),
                Next::Watch => self.watch(checkpoint, &shutdown).await,
            };
            if shutdown.is_cancelled() {
                return;
            }
            let pause = match result {
                Ok((newest, Next::List)) => {
                    EventsRelisted {
                        from: newest,
                        why: "the resume point expired",
                    }
                    .emit(&self.metrics);
                    (checkpoint, next) = (newest, Next::List);
                    false
                }
                Ok((newest, then)) => {
                    // A watch that ends at once having brought nothing (an error line, a stream the
                    // server closes) is not retried in a busy loop.
                    let idle = newest == checkpoint && started.elapsed() < RETRY;
                    (checkpoint, next) = (newest, then);
                    idle
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shipping events: reading them from the API failed, retrying");
                    true
                }
            };
            if pause {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }

    /// The store's current revision, from the cheapest list.
    async fn store_revision(&self) -> Result<u64, ShipperError> {
        let api: Api<Event> = Api::all(self.client.clone());
        let page = api.list(&ListParams::default().limit(1)).await?;
        Ok(page
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Lists every event and queues those written after `checkpoint`; returns the list's revision.
    async fn list(&self, mut checkpoint: u64, shutdown: &CancellationToken) -> Result<u64, ShipperError> {
        let api: Api<Event> = Api::all(self.client.clone());
        let mut params = ListParams::default().limit(LIST_PAGE);
        let mut revision = None;
        loop {
            let page = tokio::select! {
                _ = shutdown.cancelled() => return Ok(checkpoint),
                page = api.list(&params) => page?,
            };
            let revision = *revision.get_or_insert_with(|| {
                page.metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            });
            if revision < checkpoint {
                // The store is behind the resume point (restored, or replaced): everything in it is
                // news to the sinks.
                tracing::warn!(
                    checkpoint,
                    revision,
                    "the store is behind the event shipper's checkpoint; shipping every event"
                );
                checkpoint = 0;
            }
            let changed = page
                .items
                .into_iter()
                .filter(|e| resource_version(e) > checkpoint)
                .collect();
            let last_page = page.metadata.continue_.as_deref().is_none_or(str::is_empty);
            // The checkpoint moves only with the last page: a list cut short starts over.
            let newest = last_page.then(|| revision.max(checkpoint));
            self.append(changed, newest).await?;
            if last_page {
                return Ok(newest.unwrap_or(checkpoint));
            }
            params.continue_token = page.metadata.continue_;
        }
    }

    /// Watches from `checkpoint` until the watch ends; returns the newest revision taken and what next.
    async fn watch(
        &self,
        mut checkpoint: u64,
        shutdown: &CancellationToken,
    ) -> Result<(u64, Next), ShipperError> {
        let api: Api<Event> = Api::all(self.client.clone());
        let params = WatchParams::default().timeout(WATCH_TIMEOUT_SECONDS);
        let stream = api.watch(&params, &checkpoint.to_string()).await?;
        let mut chunks = std::pin::pin!(stream.ready_chunks(BATCH));
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => return Ok((checkpoint, Next::Watch)),
                chunk = chunks.next() => match chunk {
                    Some(chunk) => chunk,
                    None => return Ok((checkpoint, Next::Watch)),
                },
            };
            let mut changed = Vec::new();
            let mut newest = checkpoint;
            let mut then = None;
            for item in chunk {
                match item {
                    Ok(WatchEvent::Added(event) | WatchEvent::Modified(event)) => {
                        let version = resource_version(&event);
                        if version > checkpoint {
                            changed.push(event);
                        }
                        newest = newest.max(version);
                    }
                    Ok(WatchEvent::Deleted(event)) => newest = newest.max(resource_version(&event)),
                    Ok(WatchEvent::Bookmark(bookmark)) => {
                        newest = newest.max(bookmark.metadata.resource_version.parse().unwrap_or(0))
                    }
                    Ok(WatchEvent::Error(status)) if status.code == 410 => {
                        then = Some(Next::List);
                        break;
                    }
                    Ok(WatchEvent::Error(status)) => {
                        tracing::warn!(code = status.code, message = %status.message, "event watch error");
                        then = Some(Next::Watch);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "event watch ended");
                        then = Some(Next::Watch);
                        break;
                    }
                }
            }
            if newest > checkpoint {
                self.append(changed, Some(newest)).await?;
                checkpoint = newest;
            }
            if let Some(then) = then {
                return Ok((checkpoint, then));
            }
        }
    }

    /// Routes `events` and appends them to their sinks' queues, moving the checkpoint to `newest`.
    async fn append(&self, events: Vec<Event>, newest: Option<u64>) -> Result<(), ShipperError> {
        EventsReceived(events.len()).emit(&self.metrics);
        let mut records = Vec::with_capacity(events.len());
        let (mut dropped, mut unrouted) = (0, 0);
        for event in events {
            match self.router.route(&event) {
                Ok(targets) => {
                    let record = serde_json::to_vec(&Record::new(event)).expect("a record serializes");
                    records.push((record, targets));
                }
                Err(Unrouted::Dropped) => dropped += 1,
                Err(Unrouted::NoRoute) => unrouted += 1,
            }
        }
        for (reason, count) in [
            (ShipDropReason::DropRule, dropped),
            (ShipDropReason::NoRoute, unrouted),
        ] {
            EventsNotShipped {
                sink: None,
                reason,
                count,
            }
            .emit(&self.metrics);
        }
        if records.is_empty() && newest.is_none() {
            return Ok(());
        }
        let sinks = self.sinks.clone();
        let arrived = jiff::Timestamp::now().as_millisecond();
        let appended = spool::blocking(&self.spool, move |spool| {
            spool.append(&sinks, &records, arrived, newest)
        })
        .await?;
        for (index, result) in appended.iter().enumerate() {
            let sink = &self.sinks[index];
            EventsNotShipped {
                sink: Some(sink),
                reason: ShipDropReason::QueueFull,
                count: result.dropped,
            }
            .emit(&self.metrics);
            SinkQueueDepth {
                sink,
                depth: result.depth,
            }
            .emit(&self.metrics);
            if result.queued > 0 {
                self.queued[index].notify_one();
            }
        }
        Ok(())
    }
}

fn resource_version(event: &Event) -> u64 {
    event
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
