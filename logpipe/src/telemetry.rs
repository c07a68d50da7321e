//! The log pipeline's telemetry: what it read, indexed, cut and lost, its files and its commits. Metric
//! names live here; each event logs and counts together.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: String,
}

#[derive(Clone)]
pub struct Telemetry {
    pub bytes_read: Counter,
    /// Lines made of what was read (CRI records and multiline records joined), before indexing.
    pub lines_read: Counter,
    pub lines_indexed: Counter,
    pub files_tracked: Gauge,
    /// Of those, held open now (bounded by the tailer's `max_open`).
    pub files_open: Gauge,
    /// 1 while inotify wakes the tailer, 0 when it polls alone.
    pub watching: Gauge,
    /// Lines changed or files re-read or lost, by reason (`truncated_line`, `file_truncated`,
    /// `file_replaced`, `file_gone`).
    pub anomalies: Family<ReasonLabel, Counter>,
    pub commit_duration: Histogram,
    /// From a line's time to its commit.
    pub lag: Histogram,
    /// Bytes on disk per partition (gone with the partition).
    pub partition_bytes: Family<PartitionLabel, Gauge>,
    /// Lines dropped by retention, by reason (`age`, `size`).
    pub retention_dropped: Family<ReasonLabel, Counter>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            bytes_read: Counter::default(),
            lines_read: Counter::default(),
            lines_indexed: Counter::default(),
            files_tracked: Gauge::default(),
            files_open: Gauge::default(),
            watching: Gauge::default(),
            anomalies: Family::default(),
            commit_duration: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            lag: Histogram::new([0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]),
            partition_bytes: Family::default(),
            retention_dropped: Family::default(),
        }
    }
}

impl Telemetry {
    pub fn register(registry: &mut Registry) -> Telemetry {
        let t = Telemetry::default();
        registry.register(
            "glasshouse_logs_read_bytes",
            "Bytes read from log files",
            t.bytes_read.clone(),
        );
        registry.register(
            "glasshouse_logs_read_lines",
            "Log lines read from files (partial and multiline records joined)",
            t.lines_read.clone(),
        );
        registry.register(
            "glasshouse_logs_indexed_lines",
            "Log lines committed to the index",
            t.lines_indexed.clone(),
        );
        registry.register(
            "glasshouse_logs_files_tracked",
            "Log files followed now",
            t.files_tracked.clone(),
        );
        registry.register(
            "glasshouse_logs_files_open",
            "Log files held open now",
            t.files_open.clone(),
        );
        registry.register(
            "glasshouse_logs_inotify",
            "1 while inotify wakes the log tailer, 0 when it polls alone",
            t.watching.clone(),
        );
        registry.register(
            "glasshouse_logs_anomalies",
            "Lines cut, files read again and files lost, by reason",
            t.anomalies.clone(),
        );
        registry.register(
            "glasshouse_logs_commit_duration_seconds",
            "How long an index commit took",
            t.commit_duration.clone(),
        );
        registry.register(
            "glasshouse_logs_searchable_lag_seconds",
            "From a line's timestamp to its commit (searchable)",
            t.lag.clone(),
        );
        registry.register(
            "glasshouse_logs_partition_bytes",
            "Bytes on disk per index partition (a window of line time)",
            t.partition_bytes.clone(),
        );
        registry.register(
            "glasshouse_logs_retention_dropped_lines",
            "Lines dropped with their partition by retention, by reason (age, size)",
            t.retention_dropped.clone(),
        );
        t
    }

    pub fn partition_bytes(&self, partition: &crate::index::Partition) {
        let label = PartitionLabel {
            partition: partition.key.name(),
        };
        let bytes = i64::try_from(partition.stats().bytes).unwrap_or(i64::MAX);
        self.partition_bytes.get_or_create(&label).set(bytes);
    }

    pub fn partition_dropped(&self, partition: &crate::index::Partition, reason: &'static str) {
        self.partition_bytes.remove(&PartitionLabel {
            partition: partition.key.name(),
        });
        self.retention_dropped
            .get_or_create(&ReasonLabel { reason })
            .inc_by(partition.stats().docs);
    }

    pub fn bytes_read(&self, n: u64) {
        self.bytes_read.inc_by(n);
    }

    fn anomaly(&self, reason: &'static str) {
        self.anomalies.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn line_truncated(&self) {
        self.anomaly("truncated_line");
    }

    pub fn file_truncated(&self) {
        tracing::info!("a log file shrank: reading it again from its start");
        self.anomaly("file_truncated");
    }

    /// A file is gone before it was seen read to its end (rotated away twice, or deleted, while the
    /// pipeline was down or had closed it): what it held past `offset` is lost (`known`: it was seen to
    /// hold more; else lines written after the last look at it, if any, are).
    pub fn file_gone(&self, path: &std::path::Path, offset: u64, known: bool) {
        if known {
            tracing::warn!(file = %path.display(), offset,
                "a log file is gone before it was read to its end: its lines past the offset are lost");
        } else {
            tracing::warn!(file = %path.display(), offset,
                "a log file went while the pipeline was down: lines written after it was last read are lost");
        }
        self.anomaly("file_gone");
    }

    pub fn file_replaced(&self) {
        tracing::info!("a log file's inode holds another file now: reading it from its start");
        self.anomaly("file_replaced");
    }
}
