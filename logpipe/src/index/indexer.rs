//! The indexer: takes the tailer's batches, files each line in the partition of its time, commits every
//! `commit_every` (partitions first, the positions last), and applies retention.
//!
//! At most `MAX_WRITERS` partitions are open for writing at once (each writer has its memory budget and
//! threads); a line for another partition first commits everything and closes the writer used least
//! recently. Lines are numbered (`seq`) across partitions; the positions committed say up to which number
//! lines belong to them, so a commit in the middle of a batch, or a crash between partition commits, is
//! undone exactly when the index opens again.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tantivy::query::RangeQuery;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::{LogIndex, Partition, PartitionKey};
use crate::checkpoint::Checkpoint;
use crate::record::LogLine;
use crate::tailer::Batch;
use crate::telemetry::Telemetry;

/// Segments larger than this are not merged further.
const MAX_MERGED_DOCS: usize = 500_000;
/// The indexing memory budget of a partition's writer (tantivy's minimum per thread is 15 MB; one thread).
const WRITER_BUDGET: usize = 32 * 1024 * 1024;
/// Partitions open for writing at once.
const MAX_WRITERS: usize = 3;
/// How often retention looks at the partitions.
const RETENTION_EVERY: Duration = Duration::from_secs(10);

/// How lines are partitioned and how long they are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// The window of line time a partition covers.
    pub span: Duration,
    /// Partitions whose newest line is older than this go.
    pub max_age: Option<Duration>,
    /// Beyond this many bytes in all, the oldest partitions go (a window's partition continues in a next
    /// one at an eighth of it, so that there is always something to drop).
    pub max_size: Option<u64>,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            span: Duration::from_secs(3600),
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_size: Some(10 * 1024 * 1024 * 1024),
        }
    }
}

impl Retention {
    fn partition_bytes(&self) -> u64 {
        self.max_size.map_or(u64::MAX, |size| (size / 8).max(1024 * 1024))
    }

    fn span_secs(&self) -> i64 {
        i64::try_from(self.span.as_secs()).unwrap_or(i64::MAX).max(1)
    }
}

/// A partition open for writing.
struct Open {
    partition: Arc<Partition>,
    writer: IndexWriter,
    dirty: bool,
    used: u64,
}

pub struct Indexer {
    index: LogIndex,
    writers: Vec<Open>,
    /// Commits the positions (a writer of the document-less checkpoint index).
    checkpoint_writer: IndexWriter,
    /// The positions as of the last whole batch, and the number its lines end at.
    checkpoint: Checkpoint,
    /// The number the next line gets (ahead of `checkpoint.next_seq` inside a batch).
    next_seq: u64,
    /// Told when the next commit is done.
    acks: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
    dirty: bool,
    /// Timestamps of the lines since the last commit, for the lag histogram (a sample when many).
    pending_times: Vec<jiff::Timestamp>,
    telemetry: Telemetry,
    commit_every: Duration,
    retention: Retention,
    uses: u64,
}

impl Indexer {
    /// Takes up the index at `checkpoint`: lines committed past it (a crash between the partitions'
    /// commits and the positions') are deleted first.
    pub fn new(
        index: LogIndex,
        checkpoint: Checkpoint,
        telemetry: Telemetry,
        commit_every: Duration,
    ) -> tantivy::Result<Indexer> {
        let checkpoint_writer = index.shared.checkpoint.writer(15_000_000)?;
        let mut indexer = Indexer {
            next_seq: checkpoint.next_seq,
            index,
            writers: Vec::new(),
            checkpoint_writer,
            checkpoint,
            acks: Vec::new(),
            dirty: false,
            pending_times: Vec::new(),
            telemetry,
            commit_every,
            retention: Retention::default(),
            uses: 0,
        };
        let fresh =
            indexer.checkpoint.version == 0 && indexer.index.partitions().iter().all(|p| p.stats().docs == 0);
        let undone = indexer.undo_past_checkpoint()?;
        if fresh || undone {
            // Positions from the start (so that a crash before the first commit of lines is undone like
            // any other), or the numbers the undone lines had (never given again).
            indexer.checkpoint.next_seq = indexer.next_seq;
            indexer.commit_checkpoint()?;
        }
        indexer.index.publish(indexer.checkpoint.next_seq);
        for partition in indexer.index.partitions() {
            indexer.telemetry.partition_bytes(&partition);
        }
        Ok(indexer)
    }

    pub fn with_retention(mut self, retention: Retention) -> Indexer {
        self.retention = retention;
        self
    }

    /// Deletes lines numbered from the checkpoint's `next_seq` on; says whether there were any.
    fn undo_past_checkpoint(&mut self) -> tantivy::Result<bool> {
        let from = self.checkpoint.next_seq;
        let beyond: Vec<Arc<Partition>> = self
            .index
            .partitions()
            .into_iter()
            .filter(|p| p.stats().docs > 0 && p.stats().max_seq >= from)
            .collect();
        // Numbers are never given twice, even those of lines deleted (the live tail goes by them).
        let highest = beyond.iter().map(|p| p.stats().max_seq + 1).max().unwrap_or(0);
        self.next_seq = self.next_seq.max(highest);
        if self.checkpoint.version == 0 && !beyond.is_empty() {
            // Lines without positions (the checkpoint was lost): kept, numbered on after them.
            tracing::warn!("the log index has lines but no committed positions: files are read again");
            return Ok(false);
        } else {
            for partition in &beyond {
                let mut writer: IndexWriter = partition.index.writer(15_000_000)?;
                writer.delete_query(Box::new(RangeQuery::new(
                    std::ops::Bound::Included(Term::from_field_u64(self.index.fields.seq, from)),
                    std::ops::Bound::Unbounded,
                )))?;
                writer.commit()?;
                drop(writer);
                partition.refresh()?;
                tracing::info!(partition = %partition.key.name(), from,
                    "undid lines committed after the last positions (a crash between commits)");
            }
        }
        Ok(!beyond.is_empty())
    }

    /// Indexes batches until `shutdown` (or until every sender is gone), committing every
    /// `commit_every`; commits once more at the end.
    pub fn run(mut self, batches: Receiver<Batch>, shutdown: tokio_util::sync::CancellationToken) {
        let mut last_commit = Instant::now();
        let mut last_retention = Instant::now();
        let mut result = self.enforce_retention();
        while result.is_ok() {
            if shutdown.is_cancelled() {
                // What the tailer still sent is indexed, then the last commit.
                while let Ok(batch) = batches.try_recv() {
                    result = result.and_then(|()| self.add(batch));
                }
                result = result.and_then(|()| self.commit());
                break;
            }
            let wait = self.commit_every.saturating_sub(last_commit.elapsed());
            match batches.recv_timeout(wait) {
                Ok(batch) => result = self.add(batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    result = self.commit();
                    break;
                }
            }
            if result.is_ok() && last_commit.elapsed() >= self.commit_every {
                result = self.commit();
                last_commit = Instant::now();
            }
            if result.is_ok() && last_retention.elapsed() >= RETENTION_EVERY {
                result = self.enforce_retention();
                last_retention = Instant::now();
            }
        }
        if let Err(e) = result {
            // After a failed add or commit the writers cannot be trusted with the positions: indexing
            // stops here, nothing is committed past the last good commit, the tailer waits (its queue
            // fills), and a restart resumes from the committed positions. Loud, never silent loss.
            tracing::error!(error = %e, "the log index failed; indexing stops until glasshouse restarts");
            self.fail_acks(&e.to_string());
            for batch in batches.try_iter() {
                if let Some(ack) = batch.ack {
                    let _ = ack.send(Err(format!("the log index failed: {e}")));
                }
            }
        }
    }

    fn fail_acks(&mut self, why: &str) {
        for ack in self.acks.drain(..) {
            let _ = ack.send(Err(format!("the log index failed: {why}")));
        }
    }

    pub fn add(&mut self, batch: Batch) -> tantivy::Result<()> {
        let f = self.index.fields;
        let now = jiff::Timestamp::now().as_nanosecond() as i64;
        // Window by window (in order within each): a batch that spans more windows than there are
        // writers opens each once, instead of a commit at every switch.
        let span = self.retention.span_secs();
        let window =
            |line: &LogLine| PartitionKey::window_of(line.timestamp.as_nanosecond() as i64, now, span);
        let mut order: Vec<&LogLine> = batch.lines.iter().collect();
        order.sort_by_key(|line| window(line));
        for line in order {
            let ts = line.timestamp.as_nanosecond() as i64;
            let at = self.writer_for(ts, now)?;
            let mut doc = TantivyDocument::default();
            if let Some(key) = &line.dedup_key {
                // A line delivered again replaces the earlier delivery, in every partition open.
                for open in &mut self.writers {
                    open.writer.delete_term(Term::from_field_text(f.dedup, key));
                    open.dirty = true;
                }
                doc.add_text(f.dedup, key);
            }
            let open = &mut self.writers[at];
            doc.add_i64(f.ts, ts);
            doc.add_u64(f.seq, self.next_seq);
            self.next_seq += 1;
            doc.add_text(f.message, &line.message);
            for (field, value) in [
                (f.namespace, &line.namespace),
                (f.pod, &line.pod),
                (f.container, &line.container),
                (f.node, &line.node),
                (f.stream, &line.stream),
                (f.level, &line.level),
                (f.source, &line.source),
            ] {
                doc.add_text(field, value);
            }
            if !line.attributes.is_empty() {
                doc.add_object(
                    f.attributes,
                    line.attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), tantivy::schema::OwnedValue::from(v.clone())))
                        .collect(),
                );
            }
            open.writer.add_document(doc)?;
            open.dirty = true;
            if self.pending_times.len() < 1024 {
                self.pending_times.push(line.timestamp);
            }
        }
        for (key, position) in batch.positions {
            self.checkpoint.files.insert(key, position);
        }
        // In batch order: a later batch may hold a new file with the same device and inode.
        for key in batch.released {
            self.checkpoint.files.remove(&key);
        }
        self.checkpoint.next_seq = self.next_seq;
        // Only now: a commit in the middle of the batch (to close a writer) must not tell it done.
        if let Some(ack) = batch.ack {
            self.acks.push(ack);
        }
        self.dirty = true;
        self.telemetry.lines_indexed.inc_by(batch.lines.len() as u64);
        Ok(())
    }

    /// The open writer of the partition where a line of time `ts` goes, opened if need be.
    fn writer_for(&mut self, ts: i64, now: i64) -> tantivy::Result<usize> {
        self.uses += 1;
        let window = PartitionKey::window_of(ts, now, self.retention.span_secs());
        if let Some(at) = self.writers.iter().position(|o| o.partition.key.window == window) {
            self.writers[at].used = self.uses;
            return Ok(at);
        }
        // The window's last partition, unless it is full: then the next one.
        let last = self
            .index
            .partitions()
            .into_iter()
            .filter(|p| p.key.window == window)
            .max_by_key(|p| p.key.n);
        let key = match last {
            Some(p) if p.stats().bytes >= self.retention.partition_bytes() => PartitionKey {
                window,
                n: p.key.n + 1,
            },
            Some(p) => p.key,
            None => PartitionKey { window, n: 0 },
        };
        if self.writers.len() >= MAX_WRITERS {
            // Everything written so far is committed (with the positions of the last whole batch), then
            // the writer used least recently closes.
            self.commit()?;
            if let Some(lru) = (0..self.writers.len()).min_by_key(|&i| self.writers[i].used) {
                self.writers.swap_remove(lru);
            }
        }
        let partition = self.index.open_partition(key)?;
        let options = tantivy::indexer::IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_BUDGET)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        // One indexing thread and one merge thread: memory stays bounded (a merge maps its segments).
        let writer: IndexWriter = partition.index.writer_with_options(options)?;
        // Segments stop growing by merges at half a million lines: a merge's memory grows with its segments
        // (fast fields are built in memory), and search speed no longer gains much past that.
        let mut policy = tantivy::merge_policy::LogMergePolicy::default();
        policy.set_max_docs_before_merge(MAX_MERGED_DOCS);
        writer.set_merge_policy(Box::new(policy));
        self.writers.push(Open {
            partition,
            writer,
            dirty: false,
            used: self.uses,
        });
        Ok(self.writers.len() - 1)
    }

    /// Commits what was added: the partitions, then the positions (the last batch's) with the number
    /// their lines end at; reloads the readers.
    pub fn commit(&mut self) -> tantivy::Result<()> {
        if !self.dirty && !self.writers.iter().any(|o| o.dirty) {
            return Ok(());
        }
        let started = Instant::now();
        let _span = tracing::info_span!("log_commit").entered();
        let committed = self.commit_all();
        for ack in self.acks.drain(..) {
            let _ = ack.send(committed.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
        committed?;
        self.dirty = false;
        self.telemetry
            .commit_duration
            .observe(started.elapsed().as_secs_f64());
        let now = jiff::Timestamp::now();
        for time in self.pending_times.drain(..) {
            let lag = now.duration_since(time).as_secs_f64();
            self.telemetry.lag.observe(lag.max(0.0));
        }
        // A partition grown past its size continues in the next one of its window.
        let full = self.retention.partition_bytes();
        self.writers.retain(|o| o.partition.stats().bytes < full);
        Ok(())
    }

    fn commit_all(&mut self) -> tantivy::Result<()> {
        for open in self.writers.iter_mut().filter(|o| o.dirty) {
            open.writer.commit()?;
            open.dirty = false;
            open.partition.refresh()?;
            self.telemetry.partition_bytes(&open.partition);
        }
        self.commit_checkpoint()?;
        // Lines up to the positions are final now: the live tail may show them.
        self.index.publish(self.checkpoint.next_seq);
        Ok(())
    }

    fn commit_checkpoint(&mut self) -> tantivy::Result<()> {
        self.checkpoint.version = 1;
        let mut prepared = self.checkpoint_writer.prepare_commit()?;
        prepared.set_payload(&self.checkpoint.to_payload());
        prepared.commit()?;
        Ok(())
    }

    /// Drops the partitions past `max_age` (by their newest line) and, while the index is larger than
    /// `max_size`, the oldest ones. A partition being written to is committed before it goes.
    pub fn enforce_retention(&mut self) -> tantivy::Result<()> {
        let partitions = self.index.partitions();
        let now = jiff::Timestamp::now().as_nanosecond() as i64;
        let mut drop: Vec<(Arc<Partition>, &'static str)> = Vec::new();
        if let Some(age) = self.retention.max_age {
            let cutoff = now.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
            for p in &partitions {
                let stats = p.stats();
                if stats.docs > 0 && stats.max_ts < cutoff {
                    drop.push((p.clone(), "age"));
                }
            }
        }
        if let Some(max) = self.retention.max_size {
            let mut total: u64 = partitions.iter().map(|p| p.stats().bytes).sum();
            total -= drop.iter().map(|(p, _)| p.stats().bytes).sum::<u64>();
            // Oldest window first; never the newest partition (where lines of now go).
            for p in partitions.iter().take(partitions.len().saturating_sub(1)) {
                if total <= max {
                    break;
                }
                if drop.iter().all(|(d, _)| d.key != p.key) {
                    total -= p.stats().bytes;
                    drop.push((p.clone(), "size"));
                }
            }
        }
        if drop.is_empty() {
            return Ok(());
        }
        if drop
            .iter()
            .any(|(p, _)| self.writers.iter().any(|o| o.partition.key == p.key))
        {
            self.commit()?;
            self.writers
                .retain(|o| drop.iter().all(|(p, _)| p.key != o.partition.key));
        }
        for (partition, reason) in drop {
            let stats = partition.stats();
            tracing::info!(partition = %partition.key.name(), reason, lines = stats.docs,
                bytes = stats.bytes, "log retention dropped a partition");
            self.telemetry.partition_dropped(&partition, reason);
            if let Err(e) = self.index.drop_partition(partition.key) {
                // Out of the index already; its files are removed at the next start.
                tracing::warn!(partition = %partition.key.name(), error = %e, "removing a dropped partition failed");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Position;
    use crate::index::search::SearchRequest;
    use crate::record::LogLine;

    const HOUR: i64 = 3600;

    /// Line `n` of `count`, spread evenly over the last `hours` hours, oldest first.
    fn spread(count: i64, hours: i64) -> Vec<LogLine> {
        let now = jiff::Timestamp::now().as_second();
        (0..count)
            .map(|n| LogLine {
                timestamp: jiff::Timestamp::from_second(now - hours * HOUR + n * hours * HOUR / count + 1)
                    .unwrap(),
                message: format!("line {n} of {count}"),
                pod: ["a", "b", "c"][(n % 3) as usize].into(),
                ..LogLine::default()
            })
            .collect()
    }

    fn position(offset: u64) -> Position {
        Position {
            path: "/f".into(),
            fingerprint: 1,
            fingerprint_len: 2,
            offset,
            emitted: offset,
            skipping: false,
            tail: None,
            size: 0,
            done: false,
        }
    }

    fn open(dir: &std::path::Path, retention: Retention) -> (LogIndex, Indexer, Telemetry) {
        let index = LogIndex::open(dir).unwrap();
        let telemetry = Telemetry::default();
        let indexer = Indexer::new(
            index.clone(),
            index.checkpoint().unwrap(),
            telemetry.clone(),
            Duration::from_secs(1),
        )
        .unwrap()
        .with_retention(retention);
        (index, indexer, telemetry)
    }

    fn total(index: &LogIndex, query: &str) -> usize {
        index
            .search(&SearchRequest {
                query: query.into(),
                limit: 1,
                ..SearchRequest::default()
            })
            .unwrap()
            .total
    }

    #[test]
    fn lines_go_to_the_partition_of_their_hour_and_are_searched_across_all() {
        let dir = tempfile::tempdir().unwrap();
        let (index, mut indexer, _) = open(dir.path(), Retention::default());
        // 72 hours in one batch: far more partitions than open writers.
        indexer
            .add(Batch {
                lines: spread(720, 72),
                positions: vec![("1:1".into(), position(10))],
                ..Batch::default()
            })
            .unwrap();
        assert!(indexer.writers.len() <= MAX_WRITERS);
        // Writers closed in the middle of the batch committed lines, but the tail sees none before the
        // positions that cover them are committed.
        assert!(index.partitions().iter().any(|p| p.stats().docs > 0));
        assert!(index.after("", None, 1000).unwrap().is_empty());
        assert_eq!(index.newest_seq(), None);
        indexer.commit().unwrap();
        let partitions = index.partitions();
        assert!((72..=73).contains(&partitions.len()), "{}", partitions.len());
        for p in &partitions {
            let stats = p.stats();
            assert_eq!(stats.min_ts / 1_000_000_000 / HOUR, p.key.window / HOUR);
            assert_eq!(stats.max_ts / 1_000_000_000 / HOUR, p.key.window / HOUR);
        }
        assert_eq!(total(&index, ""), 720);
        assert_eq!(total(&index, "pod:b"), 240);
        // Pages newest first across partitions, each line once.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = index
                .search(&SearchRequest {
                    limit: 100,
                    cursor: cursor.take(),
                    ..SearchRequest::default()
                })
                .unwrap();
            seen.extend(page.hits.into_iter().map(|h| h.line.message));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<String> = (0..720).rev().map(|n| format!("line {n} of 720")).collect();
        assert_eq!(seen, expected);
        let now = jiff::Timestamp::now();
        let range = SearchRequest {
            start: Some(now - jiff::SignedDuration::from_hours(73)),
            end: Some(now + jiff::SignedDuration::from_hours(1)),
            ..SearchRequest::default()
        };
        let buckets = index.histogram(&range, Duration::from_secs(3600)).unwrap();
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 720);
        let top = index.top_values(&range, "pod", 2).unwrap();
        assert_eq!(top.iter().map(|v| v.count).collect::<Vec<_>>(), [240, 240]);
        assert_eq!(index.newest_seq(), Some(719));
        let after = index.after("", Some(700), 5).unwrap();
        assert_eq!(
            after.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            [701, 702, 703, 704, 705]
        );
        assert_eq!(index.checkpoint().unwrap().files["1:1"], position(10));
    }

    #[test]
    fn retention_drops_whole_partitions_by_age_and_by_size_and_counts_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let by_age = Retention {
            max_age: Some(Duration::from_secs(24 * 3600)),
            max_size: None,
            ..Retention::default()
        };
        let (index, mut indexer, telemetry) = open(dir.path(), by_age);
        indexer
            .add(Batch {
                lines: spread(720, 72),
                ..Batch::default()
            })
            .unwrap();
        indexer.commit().unwrap();
        indexer.enforce_retention().unwrap();
        // Ten lines an hour: the last day's are kept, give or take the hour the cutoff falls in.
        let kept = total(&index, "");
        assert!((230..=250).contains(&kept), "{kept}");
        let dropped = telemetry
            .retention_dropped
            .get_or_create(&crate::telemetry::ReasonLabel { reason: "age" })
            .get();
        assert_eq!(dropped as usize + kept, 720);
        let cutoff = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(25)).as_nanosecond() as i64;
        assert!(index.partitions().iter().all(|p| p.stats().max_ts >= cutoff));
        assert_eq!(
            std::fs::read_dir(dir.path().join("partitions")).unwrap().count(),
            index.partitions().len()
        );
        // The newest line survives, and so does the newest partition however small the limit.
        assert_eq!(total(&index, "\"line 719 of 720\""), 1);
        indexer.retention = Retention {
            max_size: Some(40_000),
            ..by_age
        };
        let before: u64 = index.partitions().iter().map(|p| p.stats().bytes).sum();
        assert!(before > 80_000, "{before}");
        indexer.enforce_retention().unwrap();
        let after: u64 = index.partitions().iter().map(|p| p.stats().bytes).sum();
        assert!(after <= 40_000, "{after}");
        assert!(index.partitions().len() < 24);
        let dropped = telemetry
            .retention_dropped
            .get_or_create(&crate::telemetry::ReasonLabel { reason: "size" })
            .get();
        assert_eq!(dropped as usize + total(&index, ""), kept);
        assert_eq!(total(&index, "\"line 719 of 720\""), 1);
    }

    #[test]
    fn lines_committed_past_the_positions_are_undone_when_the_index_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_, mut indexer, _) = open(dir.path(), Retention::default());
            indexer
                .add(Batch {
                    lines: spread(30, 3),
                    positions: vec![("1:1".into(), position(30))],
                    ..Batch::default()
                })
                .unwrap();
            indexer.commit().unwrap();
            indexer
                .add(Batch {
                    lines: spread(20, 2),
                    positions: vec![("1:1".into(), position(50))],
                    ..Batch::default()
                })
                .unwrap();
            // A crash after the partitions' commits, before the positions'.
            for open in &mut indexer.writers {
                open.writer.commit().unwrap();
            }
        }
        let (index, indexer, _) = open(dir.path(), Retention::default());
        assert_eq!(index.checkpoint().unwrap().files["1:1"], position(30));
        assert_eq!(total(&index, ""), 30);
        assert_eq!(total(&index, "\"of 20\""), 0);
        // Numbers are not given again, even after another crash right away.
        assert_eq!(indexer.next_seq, 50);
        drop(indexer);
        let (_, indexer, _) = open(dir.path(), Retention::default());
        assert_eq!(indexer.next_seq, 50);

        // The same crash in the very first round of a new index.
        let dir = tempfile::tempdir().unwrap();
        {
            let (_, mut indexer, _) = open(dir.path(), Retention::default());
            indexer
                .add(Batch {
                    lines: spread(20, 2),
                    positions: vec![("1:1".into(), position(50))],
                    ..Batch::default()
                })
                .unwrap();
            for open in &mut indexer.writers {
                open.writer.commit().unwrap();
            }
        }
        let (index, _, _) = open(dir.path(), Retention::default());
        assert_eq!(total(&index, ""), 0);
        assert!(index.checkpoint().unwrap().files.is_empty());
    }

    #[test]
    fn a_partition_that_cannot_open_is_set_aside_and_an_interrupted_drop_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_, mut indexer, _) = open(dir.path(), Retention::default());
            indexer
                .add(Batch {
                    lines: spread(30, 3),
                    ..Batch::default()
                })
                .unwrap();
            indexer.commit().unwrap();
        }
        let partitions = dir.path().join("partitions");
        let broken = PartitionKey { window: 3600, n: 0 }.name();
        std::fs::create_dir(partitions.join(&broken)).unwrap();
        std::fs::write(partitions.join(&broken).join("meta.json"), "{not json").unwrap();
        std::fs::create_dir(partitions.join("20260101T000000Z-0.dropped")).unwrap();
        let (index, _, _) = open(dir.path(), Retention::default());
        assert_eq!(total(&index, ""), 30);
        assert!(partitions.join(format!("{broken}.broken")).exists());
        assert!(!partitions.join("20260101T000000Z-0.dropped").exists());
    }
}
