//! Glasshouse's log pipeline: container log files are tailed (`tailer`), parsed (`cri`, `record`),
//! indexed in tantivy with their read positions committed in the same atomic write (`index`,
//! `checkpoint`), and searched through an HTTP API (`api`) that the API server serves behind its token.
//!
//! The index is partitioned by time, and retention drops whole partitions. The search page (`ui`) is
//! served with it. Not yet: inotify.

pub mod api;
pub mod checkpoint;
pub mod config;
pub mod cri;
pub mod index;
pub mod multiline;
pub mod parse;
pub mod record;
pub mod tailer;
pub mod telemetry;
pub mod ui;

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use index::{Indexer, LogIndex};
use tailer::{Tailer, TailerConfig};
use telemetry::Telemetry;

/// Batches in flight between the tailer and the indexer: beyond that the tailer waits.
const QUEUE: usize = 8;

#[derive(Clone, Debug)]
pub struct LogPipeConfig {
    /// Where the index lives (`DIR/logs/index`).
    pub index_dir: PathBuf,
    /// The node's container logs (`DIR/pods`).
    pub pods_dir: PathBuf,
    pub node: String,
    /// How often files are looked at (default 250 ms).
    pub poll: Duration,
    /// How often the index commits: lines become searchable then (default 1 s).
    pub commit_every: Duration,
    /// Longer lines are cut (default 1 MiB).
    pub max_line: usize,
    /// Log files held open at once (default 1024).
    pub max_open_files: usize,
    /// Host files to follow too.
    pub logs: config::LogsConfig,
    /// Index partitions and how long they are kept.
    pub retention: index::Retention,
    /// Where container lines get their pod's labels (set by the process once it can list pods).
    pub labels: tailer::PodLabels,
}

impl LogPipeConfig {
    pub fn new(index_dir: PathBuf, pods_dir: PathBuf, node: String) -> LogPipeConfig {
        LogPipeConfig {
            index_dir,
            pods_dir,
            node,
            poll: Duration::from_millis(250),
            commit_every: Duration::from_secs(1),
            max_line: 1024 * 1024,
            max_open_files: tailer::MAX_OPEN_FILES,
            logs: config::LogsConfig::default(),
            retention: index::Retention::default(),
            labels: tailer::PodLabels::default(),
        }
    }
}

pub struct LogPipeContext<'a> {
    pub registry: &'a mut Registry,
    pub shutdown: CancellationToken,
}

/// A running pipeline.
pub struct LogPipe {
    pub index: LogIndex,
    indexer: std::thread::JoinHandle<()>,
    writer: EventLines,
}

/// A way in for lines that do not come from files (the eventer's shipped events): they are indexed with
/// the next commit, and `write` returns once they are durable.
#[derive(Clone)]
pub struct EventLines {
    tx: std::sync::mpsc::SyncSender<tailer::Batch>,
}

impl EventLines {
    pub async fn write(&self, lines: Vec<record::LogLine>) -> Result<(), String> {
        let (ack, done) = tokio::sync::oneshot::channel();
        let batch = tailer::Batch {
            lines,
            ack: Some(ack),
            ..tailer::Batch::default()
        };
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(batch))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the log index is shut down".to_string())?;
        done.await.map_err(|_| "the log index is shut down".to_string())?
    }
}

/// What can stop the pipeline from starting.
#[derive(Debug, thiserror::Error)]
pub enum LogPipeError {
    /// The index cannot be opened (or created) in its directory.
    #[error("opening the log index in {dir}: {source}")]
    Index {
        dir: String,
        #[source]
        source: tantivy::TantivyError,
    },
}

impl LogPipeConfig {
    /// Opens the index, takes up the committed positions, and starts the tailer and the indexer (plain
    /// threads: both block on files and on tantivy).
    pub fn build(self, ctx: LogPipeContext<'_>) -> Result<LogPipe, LogPipeError> {
        let failed = |source| LogPipeError::Index {
            dir: self.index_dir.display().to_string(),
            source,
        };
        let index = LogIndex::open(&self.index_dir).map_err(failed)?;
        let checkpoint = index.checkpoint().map_err(failed)?;
        let telemetry = Telemetry::register(ctx.registry);
        let (tx, rx) = sync_channel(QUEUE);
        let writer = EventLines { tx: tx.clone() };
        let tailer = Tailer::new(
            TailerConfig {
                root: self.pods_dir.clone(),
                hosts: self.logs.host_sources(),
                containers: self.logs.container_rules(),
                labels: self.labels.clone(),
                node: self.node.clone(),
                poll: self.poll,
                max_line: self.max_line,
                max_open: self.max_open_files,
            },
            checkpoint.files.clone(),
            tx,
            telemetry.clone(),
        )
        .resumed(checkpoint.version != 0);
        let indexer = Indexer::new(index.clone(), checkpoint, telemetry, self.commit_every)
            .map_err(failed)?
            .with_retention(self.retention);
        let shutdown = ctx.shutdown;
        let tailer_shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name("log-tailer".into())
            .spawn(move || tailer.run(tailer_shutdown))
            .expect("spawning a thread");
        let indexer = std::thread::Builder::new()
            .name("log-indexer".into())
            .spawn(move || indexer.run(rx, shutdown))
            .expect("spawning a thread");
        Ok(LogPipe {
            index,
            indexer,
            writer,
        })
    }
}

impl LogPipe {
    /// The search API, to serve under `/logs`.
    pub fn router(&self) -> axum::Router {
        api::router(self.index.clone())
    }

    /// Where shipped events go into the index.
    pub fn event_lines(&self) -> EventLines {
        self.writer.clone()
    }

    /// Waits for the last commit after shutdown.
    pub fn join(self) {
        let _ = self.indexer.join();
    }
}
