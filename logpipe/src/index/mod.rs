//! The tantivy index of log lines. Schema: `ts` (nanoseconds, i64, indexed + fast: ranges and newest-first
//! order) and `seq` (the order lines were indexed in, the tie-breaker); `message` tokenized with positions
//! (phrases); `namespace`, `pod`, `container`, `node`, `stream`, `level`, `source` as raw keywords (fast);
//! `attributes` as JSON.
//!
//! The indexer commits every second (or when told to stop), and every commit carries the tailer's
//! positions as its payload (`checkpoint`): the lines and the positions they reach become durable in one
//! atomic write, so a crash neither loses nor repeats a line. The reader is reloaded right after each
//! commit.

pub mod aggregate;
pub mod search;

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tantivy::schema::{
    FAST, Field, INDEXED, JsonObjectOptions, STORED, STRING, Schema, TEXT, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::checkpoint::Checkpoint;
use crate::record::LogLine;
use crate::tailer::Batch;
use crate::telemetry::Telemetry;

/// Segments larger than this are not merged further.
const MAX_MERGED_DOCS: usize = 500_000;
/// The indexing memory budget (tantivy's minimum per thread is 15 MB; one thread).
const WRITER_BUDGET: usize = 32 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct Fields {
    pub ts: Field,
    pub seq: Field,
    pub message: Field,
    pub namespace: Field,
    pub pod: Field,
    pub container: Field,
    pub node: Field,
    pub stream: Field,
    pub level: Field,
    pub source: Field,
    pub attributes: Field,
    /// Not stored: the key of lines that replace earlier deliveries of themselves.
    pub dedup: Field,
}

/// The keyword fields, by their names in queries and hits.
pub const KEYWORDS: [&str; 7] = [
    "namespace",
    "pod",
    "container",
    "node",
    "stream",
    "level",
    "source",
];

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let keyword = STRING | STORED | FAST;
    let message = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(tantivy::schema::IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        ts: builder.add_i64_field("ts", INDEXED | FAST | STORED),
        seq: builder.add_u64_field("seq", INDEXED | FAST | STORED),
        message: builder.add_text_field("message", message),
        namespace: builder.add_text_field("namespace", keyword.clone()),
        pod: builder.add_text_field("pod", keyword.clone()),
        container: builder.add_text_field("container", keyword.clone()),
        node: builder.add_text_field("node", keyword.clone()),
        stream: builder.add_text_field("stream", keyword.clone()),
        level: builder.add_text_field("level", keyword.clone()),
        source: builder.add_text_field("source", keyword),
        attributes: builder.add_json_field(
            "attributes",
            JsonObjectOptions::from(TEXT | STORED).set_expand_dots_enabled(),
        ),
        dedup: builder.add_text_field("dedup", STRING),
    };
    let _ = TEXT;
    (builder.build(), fields)
}

/// The index: opened or created in a directory, with a reader for searches.
#[derive(Clone)]
pub struct LogIndex {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
}

impl LogIndex {
    pub fn open(dir: &Path) -> tantivy::Result<LogIndex> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(LogIndex {
            index,
            reader,
            fields,
        })
    }

    /// The positions of the last commit.
    pub fn checkpoint(&self) -> tantivy::Result<Checkpoint> {
        Ok(Checkpoint::parse(self.index.load_metas()?.payload.as_deref()))
    }
}

/// Takes the tailer's batches, indexes them and commits with their positions.
pub struct Indexer {
    index: LogIndex,
    writer: IndexWriter,
    checkpoint: Checkpoint,
    /// Told when the next commit is done.
    acks: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
    dirty: bool,
    /// Timestamps of the lines since the last commit, for the lag histogram (a sample when many).
    pending_times: Vec<jiff::Timestamp>,
    telemetry: Telemetry,
    commit_every: Duration,
}

impl Indexer {
    pub fn new(
        index: LogIndex,
        checkpoint: Checkpoint,
        telemetry: Telemetry,
        commit_every: Duration,
    ) -> tantivy::Result<Indexer> {
        // One indexing thread and one merge thread: memory stays bounded (a merge maps its segments).
        let options = tantivy::indexer::IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_BUDGET)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let writer: IndexWriter = index.index.writer_with_options(options)?;
        // Segments stop growing by merges at half a million lines: a merge's memory grows with its segments
        // (fast fields are built in memory), and search speed no longer gains much past that.
        let mut policy = tantivy::merge_policy::LogMergePolicy::default();
        policy.set_max_docs_before_merge(MAX_MERGED_DOCS);
        writer.set_merge_policy(Box::new(policy));
        Ok(Indexer {
            index,
            writer,
            checkpoint,
            acks: Vec::new(),
            dirty: false,
            pending_times: Vec::new(),
            telemetry,
            commit_every,
        })
    }

    /// Indexes batches until `shutdown` (or until every sender is gone), committing every
    /// `commit_every`; commits once more at the end.
    pub fn run(mut self, batches: Receiver<Batch>, shutdown: tokio_util::sync::CancellationToken) {
        let mut last_commit = Instant::now();
        let result = loop {
            if shutdown.is_cancelled() {
                // What the tailer still sent is indexed, then the last commit.
                let mut added = Ok(());
                while let Ok(batch) = batches.try_recv() {
                    added = added.and_then(|()| self.add(batch));
                }
                break added.and_then(|()| self.commit());
            }
            let wait = self.commit_every.saturating_sub(last_commit.elapsed());
            match batches.recv_timeout(wait) {
                Ok(batch) => {
                    if let Err(e) = self.add(batch) {
                        break Err(e);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break self.commit(),
            }
            if last_commit.elapsed() >= self.commit_every {
                if let Err(e) = self.commit() {
                    break Err(e);
                }
                last_commit = Instant::now();
            }
        };
        if let Err(e) = result {
            // After a failed add or commit the writer cannot be trusted with the positions: indexing
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
        if let Some(ack) = batch.ack {
            self.acks.push(ack);
        }
        // An ack waits for the commit, which must then happen even for a batch without lines.
        self.dirty |= !self.acks.is_empty();
        for line in &batch.lines {
            let mut doc = TantivyDocument::default();
            if let Some(key) = &line.dedup_key {
                self.writer
                    .delete_term(tantivy::Term::from_field_text(f.dedup, key));
                doc.add_text(f.dedup, key);
            }
            doc.add_i64(f.ts, line.timestamp.as_nanosecond() as i64);
            doc.add_u64(f.seq, self.checkpoint.next_seq);
            self.checkpoint.next_seq += 1;
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
            self.writer.add_document(doc)?;
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
        self.dirty = true;
        self.telemetry.lines_indexed.inc_by(batch.lines.len() as u64);
        Ok(())
    }

    /// Commits what was added, with the positions it reaches, and reloads the reader.
    pub fn commit(&mut self) -> tantivy::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let started = Instant::now();
        self.checkpoint.version = 1;
        let committed = (|| {
            let mut prepared = self.writer.prepare_commit()?;
            prepared.set_payload(&self.checkpoint.to_payload());
            prepared.commit()?;
            self.index.reader.reload()
        })();
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
        Ok(())
    }
}

/// A line as stored, back out of the index.
pub fn line_of(fields: &Fields, doc: &TantivyDocument) -> (LogLine, i64, u64) {
    use tantivy::schema::Value;
    let text = |field: Field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let ts = doc.get_first(fields.ts).and_then(|v| v.as_i64()).unwrap_or(0);
    let seq = doc.get_first(fields.seq).and_then(|v| v.as_u64()).unwrap_or(0);
    let attributes = doc
        .get_first(fields.attributes)
        .map(|v| serde_json::to_value(tantivy::schema::OwnedValue::from(v)).unwrap_or_default())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let line = LogLine {
        timestamp: jiff::Timestamp::from_nanosecond(i128::from(ts)).unwrap_or_default(),
        message: text(fields.message),
        stream: text(fields.stream),
        level: text(fields.level),
        namespace: text(fields.namespace),
        pod: text(fields.pod),
        container: text(fields.container),
        node: text(fields.node),
        source: text(fields.source),
        attributes,
        dedup_key: None,
    };
    (line, ts, seq)
}
