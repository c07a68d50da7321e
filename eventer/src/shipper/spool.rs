//! The shipper's durable state, one redb file: a bounded queue per sink and the checkpoint (the newest
//! resourceVersion taken from the API). Appending events to the queues and moving the checkpoint is one
//! transaction, durable before it returns: after a crash the watch resumes exactly where the queues end,
//! so nothing is lost and nothing is taken twice. A sink removes events from its queue only after they
//! were delivered, so a crash between the two delivers them again (with the same delivery ids).
//!
//! Every call blocks on disk; async callers go through `blocking`.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::ShipperError;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// redb's page cache for the spool. Its default (1 GiB) would let a long outage grow the process by the
/// size of the backlog; queues are read at their head and appended at their tail, so a small cache
/// serves them.
const CACHE_BYTES: usize = 16 << 20;
const CHECKPOINT: &str = "checkpoint";

fn queue(sink: &str) -> String {
    format!("queue/{sink}")
}

/// One queued event: when it arrived (Unix milliseconds) and its record as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    pub seq: u64,
    pub arrived_ms: i64,
    pub record: Vec<u8>,
}

pub struct Spool {
    db: Database,
    capacity: u64,
}

/// What an append did for one sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub queued: u64,
    /// Refused because the sink's queue was full.
    pub dropped: u64,
    /// The queue's length afterwards.
    pub depth: u64,
}

impl Spool {
    /// Opens (or creates) the spool at `path`; each sink's queue holds at most `capacity` events.
    pub fn open(path: &Path, capacity: u64) -> Result<Self, ShipperError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| ShipperError::Spool(e.into()))?;
        Ok(Spool { db, capacity })
    }

    /// The newest resourceVersion whose events are in the queues (0: none yet).
    pub fn checkpoint(&self) -> Result<u64, ShipperError> {
        let tx = self.db.begin_read().map_err(spool)?;
        let table = match tx.open_table(META) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(spool(e)),
        };
        Ok(table.get(CHECKPOINT).map_err(spool)?.map_or(0, |v| v.value()))
    }

    /// Appends each record to the queues of the sinks it names (indexes into `sinks`) and, when given,
    /// moves the checkpoint: all or nothing, durable on return.
    pub fn append(
        &self,
        sinks: &[String],
        records: &[(Vec<u8>, Vec<usize>)],
        arrived_ms: i64,
        checkpoint: Option<u64>,
    ) -> Result<Vec<Appended>, ShipperError> {
        let mut appended = vec![Appended::default(); sinks.len()];
        let tx = self.db.begin_write().map_err(spool)?;
        for (index, name) in sinks.iter().enumerate() {
            let table_name = queue(name);
            let mut table = tx
                .open_table(TableDefinition::<u64, &[u8]>::new(&table_name))
                .map_err(spool)?;
            let mut next = table.last().map_err(spool)?.map_or(0, |(k, _)| k.value() + 1);
            let mut depth = table.len().map_err(spool)?;
            let result = &mut appended[index];
            for (record, targets) in records {
                if !targets.contains(&index) {
                    continue;
                }
                if depth >= self.capacity {
                    result.dropped += 1;
                    continue;
                }
                let mut value = Vec::with_capacity(8 + record.len());
                value.extend_from_slice(&arrived_ms.to_le_bytes());
                value.extend_from_slice(record);
                table.insert(next, value.as_slice()).map_err(spool)?;
                next += 1;
                depth += 1;
                result.queued += 1;
            }
            result.depth = depth;
        }
        if let Some(checkpoint) = checkpoint {
            tx.open_table(META)
                .map_err(spool)?
                .insert(CHECKPOINT, checkpoint)
                .map_err(spool)?;
        }
        tx.commit().map_err(spool)?;
        Ok(appended)
    }

    /// The oldest events of `sink`'s queue: at most `max`, and no more than `max_bytes` of records
    /// unless the first alone is larger.
    pub fn peek(&self, sink: &str, max: usize, max_bytes: usize) -> Result<Vec<Queued>, ShipperError> {
        let tx = self.db.begin_read().map_err(spool)?;
        let table_name = queue(sink);
        let table = match tx.open_table(TableDefinition::<u64, &[u8]>::new(&table_name)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(spool(e)),
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in table.iter().map_err(spool)?.take(max) {
            let (key, value) = entry.map_err(spool)?;
            let value = value.value();
            bytes += value.len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            let Some((arrived, record)) = value.split_first_chunk::<8>() else {
                continue;
            };
            out.push(Queued {
                seq: key.value(),
                arrived_ms: i64::from_le_bytes(*arrived),
                record: record.to_vec(),
            });
        }
        Ok(out)
    }

    /// Removes every event up to and including `through` from `sink`'s queue; returns the queue's length.
    pub fn ack(&self, sink: &str, through: u64) -> Result<u64, ShipperError> {
        let tx = self.db.begin_write().map_err(spool)?;
        let depth = {
            let table_name = queue(sink);
            let mut table = tx
                .open_table(TableDefinition::<u64, &[u8]>::new(&table_name))
                .map_err(spool)?;
            table.retain_in(..=through, |_, _| false).map_err(spool)?;
            table.len().map_err(spool)?
        };
        tx.commit().map_err(spool)?;
        Ok(depth)
    }

    /// How many events wait in `sink`'s queue.
    pub fn depth(&self, sink: &str) -> Result<u64, ShipperError> {
        let tx = self.db.begin_read().map_err(spool)?;
        let table_name = queue(sink);
        match tx.open_table(TableDefinition::<u64, &[u8]>::new(&table_name)) {
            Ok(table) => table.len().map_err(spool),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(spool(e)),
        }
    }
}

/// Runs `f` on the spool away from the async threads.
pub async fn blocking<T: Send + 'static>(
    spool: &Arc<Spool>,
    f: impl FnOnce(&Spool) -> Result<T, ShipperError> + Send + 'static,
) -> Result<T, ShipperError> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || f(&spool))
        .await
        .expect("the spool does not panic")
}

fn spool(e: impl Into<redb::Error>) -> ShipperError {
    ShipperError::Spool(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn appends_peeks_and_acks_in_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.redb");
        let sinks = names(&["a", "b"]);
        {
            let spool = Spool::open(&path, 100).unwrap();
            assert_eq!(spool.checkpoint().unwrap(), 0);
            let records = vec![
                (b"one".to_vec(), vec![0, 1]),
                (b"two".to_vec(), vec![1]),
                (b"three".to_vec(), vec![0]),
            ];
            let appended = spool.append(&sinks, &records, 1_000, Some(42)).unwrap();
            assert_eq!(
                appended[0],
                Appended {
                    queued: 2,
                    dropped: 0,
                    depth: 2
                }
            );
            assert_eq!(
                appended[1],
                Appended {
                    queued: 2,
                    dropped: 0,
                    depth: 2
                }
            );
        }
        let spool = Spool::open(&path, 100).unwrap();
        assert_eq!(spool.checkpoint().unwrap(), 42);
        let a = spool.peek("a", 10, usize::MAX).unwrap();
        assert_eq!(
            a.iter().map(|q| q.record.as_slice()).collect::<Vec<_>>(),
            [b"one".as_slice(), b"three"]
        );
        assert_eq!(a[0].arrived_ms, 1_000);
        assert_eq!(spool.ack("a", a[0].seq).unwrap(), 1);
        assert_eq!(spool.peek("a", 10, usize::MAX).unwrap()[0].record, b"three");
        // Sequence numbers keep growing after acks, so order holds.
        spool
            .append(&sinks, &[(b"four".to_vec(), vec![0])], 2_000, None)
            .unwrap();
        let a = spool.peek("a", 10, usize::MAX).unwrap();
        assert_eq!(
            a.iter().map(|q| q.record.as_slice()).collect::<Vec<_>>(),
            [b"three".as_slice(), b"four"]
        );
        assert!(a[0].seq < a[1].seq);
        assert_eq!(
            spool.checkpoint().unwrap(),
            42,
            "an append without a checkpoint leaves it"
        );
        assert!(spool.peek("unknown", 10, usize::MAX).unwrap().is_empty());
        // A byte budget stops a batch early, but never before its first record.
        assert_eq!(spool.peek("a", 10, 10).unwrap().len(), 1);
        assert_eq!(spool.peek("a", 10, 1).unwrap().len(), 1);
    }

    #[test]
    fn a_full_queue_refuses_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("spool.redb"), 2).unwrap();
        let sinks = names(&["a", "b"]);
        let records: Vec<_> = (0..3).map(|i| (vec![i], vec![0, 1])).collect();
        let appended = spool.append(&sinks, &records[..1], 0, None).unwrap();
        assert_eq!(appended[0].depth, 1);
        let appended = spool.append(&sinks, &records, 0, None).unwrap();
        assert_eq!(
            appended[0],
            Appended {
                queued: 1,
                dropped: 2,
                depth: 2
            }
        );
        assert_eq!(spool.depth("b").unwrap(), 2);
    }
}
