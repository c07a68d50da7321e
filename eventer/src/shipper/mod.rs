//! The event shipper (kube-eventer's job, done without its losses): watches events through the API and
//! ships them to sinks chosen by routes, at least once. The path of an event:
//!
//! `source` (watch, resumed from a durable checkpoint) → `route` (drop rules, routes) → `spool` (a
//! durable queue per sink, appended together with the checkpoint) → `delivery` (one loop per sink:
//! batches, retries with backoff, maximum retry age) → `sinks` (webhook, JSON-lines file, OTLP logs,
//! Prometheus counters, the log index).

pub mod config;
mod delivery;
pub mod record;
mod route;
pub mod sinks;
mod source;
mod spool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::ShipperConfig;

use crate::telemetry::ShipperMetrics;

#[derive(Debug, thiserror::Error)]
pub enum ShipperError {
    /// The spool (the on-disk queues and checkpoint) failed.
    #[error("event spool: {0}")]
    Spool(#[source] redb::Error),
    /// A sink could not be set up from its configuration.
    #[error("event sink {name:?}: {reason}")]
    Sink { name: String, reason: String },
    /// Reading events from the API failed.
    #[error("reading events: {0}")]
    Api(#[from] kube::Error),
    /// A blocking spool call did not run (the process is stopping).
    #[error("event spool call did not complete: {0}")]
    Stopped(String),
    /// A route's regular expression failed to compile (the configuration was not validated).
    #[error("event routes: {0}")]
    Route(#[from] regex::Error),
}

/// What the shipper takes from the process.
pub struct ShipperContext<'a> {
    pub client: kube::Client,
    /// The spool's file (created when missing).
    pub spool_path: PathBuf,
    pub registry: &'a mut Registry,
    pub shutdown: CancellationToken,
    /// The log pipeline's index, for `logIndex` sinks (none until the process has a log pipeline).
    pub event_index: Option<Arc<dyn sinks::index::EventIndex>>,
}

impl ShipperConfig {
    /// Sets up every sink and starts shipping; fails (before starting anything) when a sink cannot be
    /// set up. With no sinks configured it starts nothing.
    pub fn build(&self, ctx: ShipperContext<'_>) -> Result<(), ShipperError> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self.sinks.keys().cloned().collect();
        let router = route::Router::new(self, &names)?;
        let mut sinks = Vec::new();
        for (name, config) in &self.sinks {
            sinks.push(sinks::Sink::build(
                name,
                config,
                ctx.registry,
                ctx.event_index.as_ref(),
            )?);
        }
        if let Some(parent) = ctx.spool_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ShipperError::Spool(redb::Error::Io(e)))?;
        }
        let spool = Arc::new(spool::Spool::open(&ctx.spool_path, self.queue_capacity)?);
        let metrics = ShipperMetrics::register(ctx.registry);
        let queued: Vec<Arc<Notify>> = names.iter().map(|_| Arc::new(Notify::new())).collect();
        for ((name, sink), queued) in names.iter().zip(sinks).zip(&queued) {
            let delivery = delivery::Delivery {
                name: name.clone(),
                sink,
                spool: spool.clone(),
                queued: queued.clone(),
                metrics: metrics.clone(),
                max_retry_age: Duration::from_secs(self.max_retry_age_seconds),
            };
            tokio::spawn(delivery.run(ctx.shutdown.clone()));
        }
        let source = source::Source {
            client: ctx.client,
            spool,
            router,
            sinks: names,
            queued,
            metrics,
        };
        tokio::spawn(source.run(ctx.shutdown));
        Ok(())
    }
}
