//! Time partitions: the index is a set of tantivy indexes, one per window of line time (an hour by
//! default), so that retention drops whole directories instead of deleting documents (tantivy's deletes
//! only mark documents dead; space comes back with merges, if ever). A window whose partition grows past
//! the partition size limit continues in a next partition of the same window.
//!
//! On disk: `<index dir>/partitions/<window start, UTC>-<n>/`, e.g. `20261130T140000Z-0`.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use tantivy::schema::Schema;
use tantivy::{Index, IndexReader, ReloadPolicy};

/// Which partition: the window's start (Unix seconds) and its number within the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub window: i64,
    pub n: u32,
}

const NAME_FORMAT: &str = "%Y%m%dT%H%M%S";

impl PartitionKey {
    /// The window a line's time falls in (times ahead of `now` count as now: a clock far ahead must not
    /// make a partition that outlives every other).
    pub fn window_of(ts_nanos: i64, now_nanos: i64, span_secs: i64) -> i64 {
        let secs = ts_nanos.min(now_nanos).max(0) / 1_000_000_000;
        secs - secs.rem_euclid(span_secs)
    }

    pub fn name(&self) -> String {
        let start = jiff::Timestamp::from_second(self.window).unwrap_or_default();
        format!("{}Z-{}", start.strftime(NAME_FORMAT), self.n)
    }

    pub fn parse(name: &str) -> Option<PartitionKey> {
        let (start, n) = name.split_once("Z-")?;
        let start = jiff::civil::DateTime::strptime(NAME_FORMAT, start).ok()?;
        let window = start
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second();
        Some(PartitionKey {
            window,
            n: n.parse().ok()?,
        })
    }
}

/// What a partition holds, as of its last reload. Times and sequence numbers are bounds: they may count
/// lines deleted since (bounds are for skipping partitions, never for answers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live lines.
    pub docs: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub max_seq: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

impl Stats {
    /// Whether lines in `[start, end)` may be here.
    pub fn overlaps(&self, start: Option<i64>, end: Option<i64>) -> bool {
        self.docs > 0 && start.is_none_or(|s| self.max_ts >= s) && end.is_none_or(|e| self.min_ts < e)
    }
}

/// One partition: its index and a reader reloaded after each commit.
pub struct Partition {
    pub key: PartitionKey,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    stats: RwLock<Stats>,
}

impl Partition {
    /// Opens the partition in `dir` (created when missing).
    pub fn open(parent: &Path, key: PartitionKey, schema: Schema) -> tantivy::Result<Partition> {
        let dir = parent.join(key.name());
        std::fs::create_dir_all(&dir)?;
        let directory = tantivy::directory::MmapDirectory::open(&dir)?;
        let index = Index::open_or_create(directory, schema)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let partition = Partition {
            key,
            dir,
            index,
            reader,
            stats: RwLock::default(),
        };
        partition.refresh()?;
        Ok(partition)
    }

    pub fn stats(&self) -> Stats {
        *self.stats.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reloads the reader (after a commit) and takes the stats again.
    pub fn refresh(&self) -> tantivy::Result<()> {
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        let mut stats = Stats {
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            ..Stats::default()
        };
        for segment in searcher.segment_readers() {
            if segment.num_docs() == 0 {
                continue;
            }
            stats.docs += u64::from(segment.num_docs());
            let ts = segment.fast_fields().i64("ts")?;
            stats.min_ts = stats.min_ts.min(ts.min_value());
            stats.max_ts = stats.max_ts.max(ts.max_value());
            stats.max_seq = stats.max_seq.max(segment.fast_fields().u64("seq")?.max_value());
        }
        if stats.docs == 0 {
            stats.min_ts = 0;
            stats.max_ts = 0;
        }
        stats.bytes = std::fs::read_dir(&self.dir)?
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .filter(|meta| meta.is_file())
            .map(|meta| meta.len())
            .sum();
        *self.stats.write().unwrap_or_else(|e| e.into_inner()) = stats;
        Ok(())
    }
}

/// Removes a partition's directory: renamed out of the set first, so that a crash halfway leaves a
/// `.dropped` directory (removed at the next start) rather than a partition with files missing.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    let dropped = dir.with_extension("dropped");
    std::fs::rename(dir, &dropped)?;
    std::fs::remove_dir_all(&dropped)
}

/// Finishes removals a crash interrupted.
pub fn remove_dropped(parent: &Path) {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "dropped") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The partitions found under `parent`, in key order; directories that are not partitions are left alone.
pub fn list(parent: &Path) -> std::io::Result<Vec<PartitionKey>> {
    let mut keys: Vec<PartitionKey> = match std::fs::read_dir(parent) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| PartitionKey::parse(&e.file_name().to_string_lossy()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    keys.sort();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_windows_start_on_the_span() {
        let key = PartitionKey {
            window: 1_796_054_400,
            n: 12,
        };
        assert_eq!(key.name(), "20261130T160000Z-12");
        assert_eq!(PartitionKey::parse(&key.name()), Some(key));
        assert_eq!(PartitionKey::parse("legacy"), None);
        assert_eq!(PartitionKey::parse("20261130T000000Z-x"), None);
        let hour = 3600;
        let t = (1_796_054_400 + 2 * hour + 59) * 1_000_000_000;
        assert_eq!(
            PartitionKey::window_of(t, i64::MAX, hour),
            1_796_054_400 + 2 * hour
        );
        // Ahead of now: filed under now.
        assert_eq!(
            PartitionKey::window_of(t, 1_796_054_400 * 1_000_000_000, hour),
            1_796_054_400
        );
        assert_eq!(PartitionKey::window_of(-5, i64::MAX, hour), 0);
    }
}
