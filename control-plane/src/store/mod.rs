//! The object store: keys to opaque values, one global revision, and a change log to watch from.
//!
//! Every write gets the next revision of a single monotonically increasing counter; that revision is the
//! Kubernetes `resourceVersion` of the written object (the API layer injects it on read, as the real API
//! server does with etcd's `mod_revision`). The change log keeps every write from the last compaction on,
//! so a watch can resume from any revision still in it and gets [`StoreError::Compacted`] otherwise.
//!
//! Not here: anything Kubernetes-shaped. Values are bytes; keys are `/registry/...` paths chosen by the API
//! layer.

mod compactor;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod redb;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use compactor::Compactor;

/// A store revision; `resourceVersion` on the wire.
pub type Revision = u64;

/// A stored value with the revisions that created and last modified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// One page of a prefix listing, read at one revision.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub items: Vec<KeyValue>,
    /// The store revision the page was read at.
    pub revision: Revision,
    /// Whether keys after the last item remain.
    pub more: bool,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
    /// Not a change: every change under the watched prefix up to `revision` has been delivered (the
    /// key and value are empty). Lets a quiet watch report how far it has got, as watch bookmarks.
    Progress,
}

/// How often a watch reports progress when the store moved on without changes under its prefix.
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One entry of the change log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub key: String,
    /// The new value; for a delete, the last value the key had.
    pub value: Bytes,
    /// The value before an update (filtered watches need it to see objects enter and leave a selection).
    pub prev: Option<Bytes>,
    /// The revision of this change (for a delete, the revision of the delete itself).
    pub revision: Revision,
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist.
    #[error("key {0} not found")]
    NotFound(String),
    /// A create found the key already present.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// A compare-and-swap found another revision than the caller expected.
    #[error("key {key} is at revision {actual}, not {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// The requested revision is older than the oldest one the change log still holds.
    #[error("too old resource version: {requested} ({compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The backend failed (I/O, corruption, a lost connection).
    #[error("store backend: {0}")]
    Backend(String),
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
}

impl WatchEvent {
    pub fn progress(revision: Revision) -> Self {
        WatchEvent {
            kind: EventKind::Progress,
            key: String::new(),
            value: Bytes::new(),
            prev: None,
            revision,
        }
    }
}

impl StoreError {
    pub(crate) fn backend(e: impl std::fmt::Display) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A key-value store with revisions, compare-and-swap and a watchable change log.
///
/// Writes are linearizable and durable when they return `Ok`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys starting with `prefix`, in key order, strictly after `start_after` when given, at most `limit`
    /// of them when given (0 means no limit).
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError>;

    /// Creates `key`; fails with `AlreadyExists` if present. Returns the new revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError>;

    /// Replaces `key` if its mod revision is `expected`. Returns the new revision.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision, StoreError>;

    /// Deletes `key`, if its mod revision is `expected` when given. Returns the revision of the delete and
    /// the deleted value.
    async fn delete(&self, key: &str, expected: Option<Revision>)
    -> Result<(Revision, KeyValue), StoreError>;

    /// Changes to keys under `prefix` with a revision greater than `after`, first from the log, then live,
    /// with a `Progress` event about every [`PROGRESS_INTERVAL`] while the store moves on elsewhere.
    /// Fails with `Compacted` (now or later, in the stream) when the log no longer reaches back to `after`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// Drops the change log before `revision` (etcd's semantics): watches can still resume from
    /// `revision - 1` on, not from earlier.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// The latest revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Approximate bytes the backend holds, for telemetry.
    async fn size_bytes(&self) -> Result<u64, StoreError>;
}

#[cfg(test)]
pub(crate) mod conformance;
