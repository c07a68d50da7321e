//! The embedded store: one redb file in the data dir.
//!
//! Layout: `objects` maps a key to its revisions and value, `log` maps every revision since the last
//! compaction to the change made at it, `meta` holds the current and the compacted revision. A key's
//! object row and its log row are written in the same transaction, so the log is exactly the history.
//!
//! Writes go through one writer thread that commits in groups: requests that queue up while a commit is
//! in flight share the next transaction and its fsync. Each write still gets its own revision and its own
//! outcome, and none is acknowledged before its transaction is durable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::{
    EventKind, KeyValue, ListPage, PROGRESS_INTERVAL, Revision, Store, StoreError, WatchEvent, WatchStream,
};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// The most writes one transaction takes; bounds the latency a large group adds to its first member.
const MAX_GROUP: usize = 256;
/// How many log rows a catching-up watch reads per read transaction.
const LOG_CHUNK: usize = 1024;
/// Live events buffered per subscriber before it has to catch up from the log.
const BROADCAST_CAPACITY: usize = 4096;

enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

enum Applied {
    Written(Revision),
    Deleted(Revision, KeyValue),
    Compacted,
}

struct WriteRequest {
    op: Op,
    reply: oneshot::Sender<Result<Applied, StoreError>>,
}

/// The redb-backed [`Store`].
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    writes: mpsc::Sender<WriteRequest>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    revision: Arc<AtomicU64>,
}

impl RedbStore {
    /// Opens (creating if needed) the store file at `path` and starts its writer thread. The thread ends
    /// when the last handle is dropped.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(StoreError::backend)?;
        let txn = db.begin_write().map_err(StoreError::backend)?;
        let revision = {
            txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            txn.open_table(LOG).map_err(StoreError::backend)?;
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            meta.get(META_REVISION)
                .map_err(StoreError::backend)?
                .map(|v| v.value())
                .unwrap_or(0)
        };
        txn.commit().map_err(StoreError::backend)?;

        let db = Arc::new(db);
        let (writes, rx) = mpsc::channel(1024);
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let revision = Arc::new(AtomicU64::new(revision));
        let writer = Writer {
            db: db.clone(),
            events: events.clone(),
            revision: revision.clone(),
        };
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(StoreError::backend)?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
            writes,
            events,
            revision,
        })
    }

    async fn write(&self, op: Op) -> Result<Applied, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.writes
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read transaction on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            f(&txn)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        self.read(move |txn| {
            let objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            let row = objects.get(key.as_str()).map_err(StoreError::backend)?;
            row.map(|row| decode_object(&key, row.value())).transpose()
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        self.read(move |txn| {
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            let revision = meta
                .get(META_REVISION)
                .map_err(StoreError::backend)?
                .map(|v| v.value());
            let objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            let start = match &start_after {
                Some(after) if after.as_str() >= prefix.as_str() => after.as_str(),
                _ => prefix.as_str(),
            };
            let mut page = ListPage {
                revision: revision.unwrap_or(0),
                ..ListPage::default()
            };
            for row in objects.range(start..).map_err(StoreError::backend)? {
                let (key, value) = row.map_err(StoreError::backend)?;
                let key = key.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                if start_after.as_deref() == Some(key) {
                    continue;
                }
                if limit > 0 && page.items.len() == limit {
                    page.more = true;
                    break;
                }
                page.items.push(decode_object(key, value.value())?);
            }
            Ok(page)
        })
        .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError> {
        match self
            .write(Op::Create {
                key: key.to_string(),
                value,
            })
            .await?
        {
            Applied::Written(rev) => Ok(rev),
            _ => unreachable!("a create is answered with its revision"),
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision, StoreError> {
        match self
            .write(Op::Update {
                key: key.to_string(),
                value,
                expected,
            })
            .await?
        {
            Applied::Written(rev) => Ok(rev),
            _ => unreachable!("an update is answered with its revision"),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        match self
            .write(Op::Delete {
                key: key.to_string(),
                expected,
            })
            .await?
        {
            Applied::Deleted(rev, kv) => Ok((rev, kv)),
            _ => unreachable!("a delete is answered with the deleted value"),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        // Subscribe before reading the log: every change is then in the log read, in the live feed, or
        // both, and the revision filter drops the overlap.
        let live = self.events.subscribe();
        let compacted = self
            .read(|txn| {
                let meta = txn.open_table(META).map_err(StoreError::backend)?;
                Ok(meta
                    .get(META_COMPACTED)
                    .map_err(StoreError::backend)?
                    .map(|v| v.value())
                    .unwrap_or(0))
            })
            .await?;
        if after + 1 < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let (tx, rx) = mpsc::channel(256);
        let feed = WatchFeed {
            db: self.db.clone(),
            prefix: prefix.to_string(),
            last: after,
            reported: after,
            tx,
        };
        tokio::spawn(feed.run(live));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.write(Op::Compact { revision }).await.map(|_| ())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.revision.load(Ordering::Acquire))
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        Ok(std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0))
    }
}

/// The single writer: owns revision assignment and commits groups of writes.
struct Writer {
    db: Arc<Database>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    revision: Arc<AtomicU64>,
}

impl Writer {
    fn run(self, mut rx: mpsc::Receiver<WriteRequest>) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&self, group: Vec<WriteRequest>) {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut events = Vec::new();
        let committed = self.apply_group(&group, &mut outcomes, &mut events);
        match committed {
            Ok(revision) => {
                self.revision.store(revision, Ordering::Release);
                for event in events {
                    // No receivers is normal: nobody watches.
                    let _ = self.events.send(Arc::new(event));
                }
                for (request, outcome) in group.into_iter().zip(outcomes) {
                    let _ = request.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = group.len(), "store commit failed");
                for request in group {
                    let _ = request.reply.send(Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }

    /// Applies every request of the group in one transaction, in order; returns the revision after it.
    fn apply_group(
        &self,
        group: &[WriteRequest],
        outcomes: &mut Vec<Result<Applied, StoreError>>,
        events: &mut Vec<WatchEvent>,
    ) -> Result<Revision, StoreError> {
        let txn = self.db.begin_write().map_err(StoreError::backend)?;
        let mut revision;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(StoreError::backend)?;
            let mut log = txn.open_table(LOG).map_err(StoreError::backend)?;
            let mut meta = txn.open_table(META).map_err(StoreError::backend)?;
            revision = meta
                .get(META_REVISION)
                .map_err(StoreError::backend)?
                .map(|v| v.value())
                .unwrap_or(0);
            for request in group {
                let outcome = apply_one(&request.op, revision + 1, &mut objects, &mut log, &mut meta);
                if let Ok((_, Some(event))) = &outcome {
                    revision = event.revision;
                    events.push(event.clone());
                }
                outcomes.push(outcome.map(|(applied, _)| applied));
            }
            meta.insert(META_REVISION, revision)
                .map_err(StoreError::backend)?;
        }
        txn.commit().map_err(StoreError::backend)?;
        Ok(revision)
    }
}

type Objects<'t> = redb::Table<'t, &'static str, &'static [u8]>;
type Log<'t> = redb::Table<'t, u64, &'static [u8]>;
type Meta<'t> = redb::Table<'t, &'static str, u64>;

/// Applies one write at revision `next` (if it writes at all).
fn apply_one(
    op: &Op,
    next: Revision,
    objects: &mut Objects<'_>,
    log: &mut Log<'_>,
    meta: &mut Meta<'_>,
) -> Result<(Applied, Option<WatchEvent>), StoreError> {
    let current = |objects: &Objects<'_>, key: &str| -> Result<Option<KeyValue>, StoreError> {
        let row = objects.get(key).map_err(StoreError::backend)?;
        row.map(|row| decode_object(key, row.value())).transpose()
    };
    let (kind, key, value, prev, create_revision) = match op {
        Op::Create { key, value } => {
            if current(objects, key)?.is_some() {
                return Err(StoreError::AlreadyExists(key.clone()));
            }
            (EventKind::Created, key, value.clone(), None, next)
        }
        Op::Update { key, value, expected } => {
            let existing = current(objects, key)?.ok_or_else(|| StoreError::NotFound(key.clone()))?;
            if existing.mod_revision != *expected {
                return Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: existing.mod_revision,
                });
            }
            (
                EventKind::Updated,
                key,
                value.clone(),
                Some(existing.value),
                existing.create_revision,
            )
        }
        Op::Delete { key, expected } => {
            let existing = current(objects, key)?.ok_or_else(|| StoreError::NotFound(key.clone()))?;
            if let Some(expected) = expected
                && existing.mod_revision != *expected
            {
                return Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: existing.mod_revision,
                });
            }
            objects.remove(key.as_str()).map_err(StoreError::backend)?;
            let event = WatchEvent {
                kind: EventKind::Deleted,
                key: key.clone(),
                value: existing.value.clone(),
                prev: None,
                revision: next,
            };
            log.insert(next, encode_log(&event).as_slice())
                .map_err(StoreError::backend)?;
            return Ok((Applied::Deleted(next, existing), Some(event)));
        }
        Op::Compact { revision } => {
            compact(*revision, log, meta)?;
            return Ok((Applied::Compacted, None));
        }
    };
    let row = encode_object(create_revision, next, &value);
    objects
        .insert(key.as_str(), row.as_slice())
        .map_err(StoreError::backend)?;
    let event = WatchEvent {
        kind,
        key: key.clone(),
        value,
        prev,
        revision: next,
    };
    log.insert(next, encode_log(&event).as_slice())
        .map_err(StoreError::backend)?;
    Ok((Applied::Written(next), Some(event)))
}

fn compact(revision: Revision, log: &mut Log<'_>, meta: &mut Meta<'_>) -> Result<(), StoreError> {
    let compacted = meta
        .get(META_COMPACTED)
        .map_err(StoreError::backend)?
        .map(|v| v.value())
        .unwrap_or(0);
    if revision <= compacted {
        return Ok(());
    }
    log.retain_in(..revision, |_, _| false)
        .map_err(StoreError::backend)?;
    meta.insert(META_COMPACTED, revision)
        .map_err(StoreError::backend)?;
    Ok(())
}

/// Feeds one watcher: the log from its resume point, then live events, catching up from the log again
/// whenever it falls behind the live feed.
struct WatchFeed {
    db: Arc<Database>,
    prefix: String,
    /// The newest revision seen, under the prefix or not.
    last: Revision,
    /// The newest revision the watcher has been told about (by an event or a progress report).
    reported: Revision,
    tx: mpsc::Sender<Result<WatchEvent, StoreError>>,
}

impl WatchFeed {
    async fn run(mut self, mut live: broadcast::Receiver<Arc<WatchEvent>>) {
        if !self.catch_up().await {
            return;
        }
        let mut progress =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.tx.closed() => return,
                _ = progress.tick() => {
                    if self.last > self.reported {
                        self.reported = self.last;
                        if self.tx.send(Ok(WatchEvent::progress(self.last))).await.is_err() {
                            return;
                        }
                    }
                }
                received = live.recv() => match received {
                    Ok(event) => {
                        if event.revision <= self.last {
                            continue;
                        }
                        self.last = event.revision;
                        if event.key.starts_with(&self.prefix) {
                            self.reported = event.revision;
                            if self.tx.send(Ok((*event).clone())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !self.catch_up().await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Sends log entries after `last` until the log is exhausted; false when the watch is over.
    async fn catch_up(&mut self) -> bool {
        loop {
            let db = self.db.clone();
            let after = self.last;
            let chunk = tokio::task::spawn_blocking(move || read_log(&db, after)).await;
            let chunk = match chunk {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) => {
                    let _ = self.tx.send(Err(e)).await;
                    return false;
                }
                Err(e) => {
                    let _ = self.tx.send(Err(StoreError::backend(e))).await;
                    return false;
                }
            };
            let full = chunk.len() == LOG_CHUNK;
            for event in chunk {
                self.last = event.revision;
                if event.key.starts_with(&self.prefix) {
                    self.reported = event.revision;
                    if self.tx.send(Ok(event)).await.is_err() {
                        return false;
                    }
                }
            }
            if !full {
                return true;
            }
        }
    }
}

fn read_log(db: &Database, after: Revision) -> Result<Vec<WatchEvent>, StoreError> {
    let txn = db.begin_read().map_err(StoreError::backend)?;
    let meta = txn.open_table(META).map_err(StoreError::backend)?;
    let compacted = meta
        .get(META_COMPACTED)
        .map_err(StoreError::backend)?
        .map(|v| v.value())
        .unwrap_or(0);
    if after + 1 < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let log = txn.open_table(LOG).map_err(StoreError::backend)?;
    let mut events = Vec::new();
    for row in log
        .range(after + 1..)
        .map_err(StoreError::backend)?
        .take(LOG_CHUNK)
    {
        let (revision, entry) = row.map_err(StoreError::backend)?;
        events.push(decode_log(revision.value(), entry.value())?);
    }
    Ok(events)
}

fn encode_object(create_revision: Revision, mod_revision: Revision, value: &[u8]) -> Vec<u8> {
    let mut row = Vec::with_capacity(16 + value.len());
    row.extend_from_slice(&create_revision.to_le_bytes());
    row.extend_from_slice(&mod_revision.to_le_bytes());
    row.extend_from_slice(value);
    row
}

fn decode_object(key: &str, row: &[u8]) -> Result<KeyValue, StoreError> {
    let corrupt = || StoreError::Backend(format!("corrupt object row for {key}"));
    let create = row
        .get(0..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    let modified = row
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(corrupt)?;
    Ok(KeyValue {
        key: key.to_string(),
        value: Bytes::copy_from_slice(&row[16..]),
        create_revision: u64::from_le_bytes(create),
        mod_revision: u64::from_le_bytes(modified),
    })
}

/// A log row: kind, then key, value and (for updates) the previous value, each length-prefixed.
fn encode_log(event: &WatchEvent) -> Vec<u8> {
    let kind = match event.kind {
        EventKind::Created => 0u8,
        EventKind::Updated => 1,
        EventKind::Deleted => 2,
        EventKind::Progress => unreachable!("progress reports are not changes and are never logged"),
    };
    let prev = event.prev.as_deref().unwrap_or_default();
    let mut entry = Vec::with_capacity(13 + event.key.len() + event.value.len() + prev.len());
    entry.push(kind);
    for field in [event.key.as_bytes(), &event.value, prev] {
        entry.extend_from_slice(&(field.len() as u32).to_le_bytes());
        entry.extend_from_slice(field);
    }
    entry
}

fn decode_log(revision: Revision, entry: &[u8]) -> Result<WatchEvent, StoreError> {
    let corrupt = || StoreError::Backend(format!("corrupt log entry at revision {revision}"));
    let kind = match entry.first() {
        Some(0) => EventKind::Created,
        Some(1) => EventKind::Updated,
        Some(2) => EventKind::Deleted,
        _ => return Err(corrupt()),
    };
    let mut rest = &entry[1..];
    let mut field = || -> Result<&[u8], StoreError> {
        let len = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(corrupt)?;
        let data = rest.get(4..4 + len as usize).ok_or_else(corrupt)?;
        rest = &rest[4 + len as usize..];
        Ok(data)
    };
    let key = std::str::from_utf8(field()?).map_err(|_| corrupt())?.to_string();
    let value = Bytes::copy_from_slice(field()?);
    let prev = field()?;
    let prev = (kind == EventKind::Updated).then(|| Bytes::copy_from_slice(prev));
    Ok(WatchEvent {
        kind,
        key,
        value,
        prev,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    fn open() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("store.redb")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn conformance_suite() {
        let (_dir, store) = open();
        conformance::run_all(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn revision_and_log_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let rev = {
            let store = RedbStore::open(&path).unwrap();
            store.create("/a", Bytes::from_static(b"1")).await.unwrap();
            store.create("/b", Bytes::from_static(b"2")).await.unwrap()
        };
        // The writer thread holds the database until its channel closes; wait for the file lock to go.
        let mut reopened = None;
        for _ in 0..500 {
            match RedbStore::open(&path) {
                Ok(store) => {
                    reopened = Some(store);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
        let store = reopened.expect("the store reopens once its writer has stopped");
        assert_eq!(store.current_revision().await.unwrap(), rev);
        assert_eq!(store.get("/b").await.unwrap().unwrap().mod_revision, rev);
        let mut watch = store.watch("/", 0).await.unwrap();
        use futures::StreamExt;
        assert_eq!(watch.next().await.unwrap().unwrap().key, "/a");
        assert_eq!(store.create("/c", Bytes::new()).await.unwrap(), rev + 1);
    }

    #[tokio::test]
    async fn concurrent_writes_get_distinct_revisions() {
        let (_dir, store) = open();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .create(&format!("/k/{i:03}"), Bytes::from(vec![b'x'; 10]))
                    .await
                    .unwrap()
            }));
        }
        let mut revisions = Vec::new();
        for task in tasks {
            revisions.push(task.await.unwrap());
        }
        revisions.sort_unstable();
        revisions.dedup();
        assert_eq!(revisions.len(), 200);
        assert_eq!(
            *revisions.last().unwrap(),
            store.current_revision().await.unwrap()
        );
    }
}
