//! The tantivy index of log lines, in time partitions (`partition`). Schema: `ts` (nanoseconds, i64,
//! indexed + fast: ranges and newest-first order) and `seq` (the order lines were indexed in, global across
//! partitions, the tie-breaker); `message` tokenized with positions (phrases); `namespace`, `pod`,
//! `container`, `node`, `stream`, `level`, `source` as raw keywords (fast); `attributes` as JSON.
//!
//! The indexer (`indexer`) commits every second (or when told to stop): first the partitions it wrote,
//! then the tailer's positions as the commit payload of a document-less `checkpoint` index. Lines a crash
//! left committed past the positions are those numbered from the checkpoint's `next_seq` on, and they are
//! deleted when the index opens again: a crash neither loses nor repeats a line. Readers are reloaded
//! right after each commit.

pub mod aggregate;
pub mod indexer;
pub mod partition;
pub mod search;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tantivy::query::QueryParser;
use tantivy::schema::{
    FAST, Field, INDEXED, JsonObjectOptions, STORED, STRING, Schema, TEXT, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{Index, TantivyDocument};

use crate::checkpoint::Checkpoint;
use crate::record::LogLine;

pub use indexer::{Indexer, Retention};
pub use partition::{Partition, PartitionKey, Stats};

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

/// The index: its partitions (opened or created under a directory) and the checkpoint.
#[derive(Clone)]
pub struct LogIndex {
    pub fields: Fields,
    shared: Arc<Shared>,
}

struct Shared {
    schema: Schema,
    tokenizers: TokenizerManager,
    /// `<dir>/partitions`.
    partitions_dir: PathBuf,
    /// In key order (oldest window first).
    partitions: RwLock<Vec<Arc<Partition>>>,
    /// Lines numbered below this are committed with their positions: final (the live tail shows no
    /// other, so that it never passes a line still to come from a partition not yet reloaded).
    visible: std::sync::atomic::AtomicU64,
    /// Holds no lines: its commit payload is the tailer's positions.
    checkpoint: Index,
}

impl LogIndex {
    pub fn open(dir: &Path) -> tantivy::Result<LogIndex> {
        let (schema, fields) = schema();
        let partitions_dir = dir.join("partitions");
        let checkpoint_dir = dir.join("checkpoint");
        std::fs::create_dir_all(&partitions_dir)?;
        std::fs::create_dir_all(&checkpoint_dir)?;
        let checkpoint = Index::open_or_create(
            tantivy::directory::MmapDirectory::open(&checkpoint_dir)?,
            schema.clone(),
        )?;
        let mut partitions = Vec::new();
        for key in partition::list(&partitions_dir)? {
            match Partition::open(&partitions_dir, key, schema.clone()) {
                Ok(partition) => partitions.push(Arc::new(partition)),
                Err(e) => {
                    // Set aside, not opened: the rest of the index stays usable.
                    let name = key.name();
                    tracing::error!(partition = %name, error = %e,
                        "a log index partition cannot be opened; it is set aside as {name}.broken");
                    let dir = partitions_dir.join(&name);
                    std::fs::rename(&dir, partitions_dir.join(format!("{name}.broken")))?;
                }
            }
        }
        partition::remove_dropped(&partitions_dir);
        let index = LogIndex {
            fields,
            shared: Arc::new(Shared {
                schema,
                tokenizers: TokenizerManager::default(),
                partitions_dir,
                partitions: RwLock::new(partitions),
                visible: std::sync::atomic::AtomicU64::new(0),
                checkpoint,
            }),
        };
        index.take_up_unpartitioned(dir)?;
        Ok(index)
    }

    /// An index written before partitions (one tantivy index right in `dir`) becomes the oldest partition
    /// and its payload the checkpoint.
    fn take_up_unpartitioned(&self, dir: &Path) -> tantivy::Result<()> {
        if !dir.join("meta.json").exists() {
            return Ok(());
        }
        let payload = Index::open_in_dir(dir)?.load_metas()?.payload;
        let key = PartitionKey { window: 0, n: 0 };
        let target = self.shared.partitions_dir.join(key.name());
        std::fs::create_dir_all(&target)?;
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.path().is_file() && entry.file_name() != ".tantivy-writer.lock" {
                std::fs::rename(entry.path(), target.join(entry.file_name()))?;
            }
        }
        let partition = Partition::open(&self.shared.partitions_dir, key, self.shared.schema.clone())?;
        self.insert(Arc::new(partition));
        if let Some(payload) = payload
            && self.checkpoint()?.version == 0
        {
            let mut writer: tantivy::IndexWriter = self.shared.checkpoint.writer(15_000_000)?;
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
        }
        tracing::info!(partition = %key.name(), "the log index moved into its first partition");
        Ok(())
    }

    /// The positions of the last commit.
    pub fn checkpoint(&self) -> tantivy::Result<Checkpoint> {
        Ok(Checkpoint::parse(
            self.shared.checkpoint.load_metas()?.payload.as_deref(),
        ))
    }

    /// Lines numbered below `next_seq` are final.
    fn publish(&self, next_seq: u64) {
        self.shared
            .visible
            .store(next_seq, std::sync::atomic::Ordering::Release);
    }

    /// The number below which lines are final.
    fn visible(&self) -> u64 {
        self.shared.visible.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every partition, oldest window first.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.shared
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A query parser over `message` by default, terms joined by AND.
    pub fn query_parser(&self) -> QueryParser {
        let mut parser = QueryParser::new(
            self.shared.schema.clone(),
            vec![self.fields.message],
            self.shared.tokenizers.clone(),
        );
        parser.set_conjunction_by_default();
        parser
    }

    fn tokenizers(&self) -> TokenizerManager {
        self.shared.tokenizers.clone()
    }

    /// Searchers of the partitions that may hold lines in `[start, end)` (nanoseconds).
    fn searchers(&self, start: Option<i64>, end: Option<i64>) -> Vec<tantivy::Searcher> {
        self.partitions()
            .iter()
            .filter(|p| p.stats().overlaps(start, end))
            .map(|p| p.reader.searcher())
            .collect()
    }

    /// Opens (or creates) the partition `key` and adds it to the set.
    fn open_partition(&self, key: PartitionKey) -> tantivy::Result<Arc<Partition>> {
        if let Some(existing) = self.partitions().into_iter().find(|p| p.key == key) {
            return Ok(existing);
        }
        let partition = Arc::new(Partition::open(
            &self.shared.partitions_dir,
            key,
            self.shared.schema.clone(),
        )?);
        self.insert(partition.clone());
        Ok(partition)
    }

    fn insert(&self, partition: Arc<Partition>) {
        let mut partitions = self.shared.partitions.write().unwrap_or_else(|e| e.into_inner());
        partitions.retain(|p| p.key != partition.key);
        partitions.push(partition);
        partitions.sort_by_key(|p| p.key);
    }

    /// Takes a partition out of the set (searches stop using it; those under way finish on their mapped
    /// files) and removes its directory.
    fn drop_partition(&self, key: PartitionKey) -> std::io::Result<()> {
        let removed = {
            let mut partitions = self.shared.partitions.write().unwrap_or_else(|e| e.into_inner());
            let at = partitions.iter().position(|p| p.key == key);
            at.map(|at| partitions.remove(at))
        };
        match removed {
            // Renamed first (atomically), so that a crash during the removal leaves no half partition.
            Some(partition) => partition::remove(&partition.dir),
            None => Ok(()),
        }
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
