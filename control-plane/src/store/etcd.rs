//! The etcd store, for those who outgrow one machine: every operation is one etcd request (compare-and-swap
//! as a transaction), revisions are etcd's own, and watches are etcd watches from `after + 1` with the
//! previous values attached. All keys live under a prefix, so several installations can share an etcd.

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{
    EventKind, KeyValue, ListPage, PROGRESS_INTERVAL, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// The etcd-backed [`Store`].
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    prefix: String,
}

/// The smallest key after every key starting with `prefix` (etcd's prefix range end).
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map(|h| h.revision().max(0) as Revision).unwrap_or(0)
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints`, keeping every key under `prefix`.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self, StoreError> {
        let client = Client::connect(endpoints, None)
            .await
            .map_err(StoreError::backend)?;
        let store = EtcdStore {
            client,
            prefix: prefix.trim_end_matches('/').to_string(),
        };
        // Fail at start, not at the first request, when etcd is not there.
        store.current_revision().await?;
        Ok(store)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        let key = std::str::from_utf8(kv.key()).map_err(StoreError::backend)?;
        Ok(KeyValue {
            key: key.strip_prefix(&self.prefix).unwrap_or(key).to_string(),
            value: Bytes::copy_from_slice(kv.value()),
            create_revision: kv.create_revision() as Revision,
            mod_revision: kv.mod_revision() as Revision,
        })
    }

    /// Explains why a guarded transaction did not apply, from the key's current state read in its else-branch.
    fn failed_guard(&self, key: &str, expected: Option<Revision>, responses: &[TxnOpResponse]) -> StoreError {
        let current = responses.iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision() as Revision),
            _ => None,
        });
        match (current, expected) {
            (None, _) => StoreError::NotFound(key.to_string()),
            (Some(actual), Some(expected)) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                actual,
            },
            (Some(_), None) => StoreError::Backend(format!("the guard on {key} failed with the key present")),
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self
            .client
            .clone()
            .get(self.full(key), None)
            .await
            .map_err(StoreError::backend)?;
        response.kvs().first().map(|kv| self.kv(kv)).transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let full_prefix = self.full(prefix);
        let start = match start_after {
            // The first key after `start_after`.
            Some(after) => {
                let mut key = self.full(after).into_bytes();
                key.push(0);
                key
            }
            None => full_prefix.clone().into_bytes(),
        };
        let mut options = GetOptions::new().with_range(range_end(full_prefix.as_bytes()));
        if limit > 0 {
            options = options.with_limit(limit as i64);
        }
        let response = self
            .client
            .clone()
            .get(start, Some(options))
            .await
            .map_err(StoreError::backend)?;
        Ok(ListPage {
            items: response
                .kvs()
                .iter()
                .map(|kv| self.kv(kv))
                .collect::<Result<_, _>>()?,
            revision: revision_of(response.header()),
            more: response.more(),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value.to_vec(), None)]);
        let response = self.client.clone().txn(txn).await.map_err(StoreError::backend)?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        Ok(revision_of(response.header()))
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision, StoreError> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected as i64,
            )])
            .and_then([TxnOp::put(full.clone(), value.to_vec(), None)])
            .or_else([TxnOp::get(full, None)]);
        let response = self.client.clone().txn(txn).await.map_err(StoreError::backend)?;
        if !response.succeeded() {
            return Err(self.failed_guard(key, Some(expected), response.op_responses().as_slice()));
        }
        Ok(revision_of(response.header()))
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        let full = self.full(key);
        let guard = match expected {
            Some(expected) => Compare::mod_revision(full.clone(), CompareOp::Equal, expected as i64),
            None => Compare::create_revision(full.clone(), CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([guard])
            .and_then([TxnOp::delete(
                full.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let response = self.client.clone().txn(txn).await.map_err(StoreError::backend)?;
        let revision = revision_of(response.header());
        let responses = response.op_responses();
        if !response.succeeded() {
            return Err(self.failed_guard(key, expected, responses.as_slice()));
        }
        let deleted = responses.iter().find_map(|r| match r {
            TxnOpResponse::Delete(delete) => delete.prev_kvs().first().cloned(),
            _ => None,
        });
        match deleted {
            Some(kv) => Ok((revision, self.kv(&kv)?)),
            None => Err(StoreError::NotFound(key.to_string())),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let full_prefix = self.full(prefix);
        let options = WatchOptions::new()
            .with_range(range_end(full_prefix.as_bytes()))
            .with_start_revision(after as i64 + 1)
            .with_prev_key()
            .with_progress_notify();
        let mut stream = self
            .client
            .clone()
            .watch(full_prefix, Some(options))
            .await
            .map_err(StoreError::backend)?;
        let (tx, rx) = mpsc::channel(256);
        let store = self.clone();
        tokio::spawn(async move {
            let mut progress =
                tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_INTERVAL, PROGRESS_INTERVAL);
            progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let message = tokio::select! {
                    _ = tx.closed() => return,
                    _ = progress.tick() => {
                        // etcd answers with an empty response at its current revision.
                        if let Err(e) = stream.request_progress().await {
                            tracing::debug!(error = %e, "etcd progress request failed");
                        }
                        continue;
                    }
                    message = stream.message() => message,
                };
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(StoreError::backend(e))).await;
                        return;
                    }
                };
                if response.compact_revision() > 0 {
                    let compacted = response.compact_revision() as Revision;
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: after,
                            compacted,
                        }))
                        .await;
                    return;
                }
                if response.events().is_empty() && !response.created() && !response.canceled() {
                    let revision = revision_of(response.header());
                    if revision > 0 && tx.send(Ok(WatchEvent::progress(revision))).await.is_err() {
                        return;
                    }
                    continue;
                }
                for event in response.events() {
                    let Some(kv) = event.kv() else { continue };
                    let converted = match event.event_type() {
                        EventType::Put => store.kv(kv).map(|current| WatchEvent {
                            kind: if kv.create_revision() == kv.mod_revision() {
                                EventKind::Created
                            } else {
                                EventKind::Updated
                            },
                            key: current.key,
                            value: current.value,
                            prev: event.prev_kv().map(|prev| Bytes::copy_from_slice(prev.value())),
                            revision: kv.mod_revision() as Revision,
                        }),
                        EventType::Delete => store.kv(kv).map(|current| WatchEvent {
                            kind: EventKind::Deleted,
                            key: current.key,
                            value: event
                                .prev_kv()
                                .map(|prev| Bytes::copy_from_slice(prev.value()))
                                .unwrap_or_default(),
                            prev: None,
                            revision: kv.mod_revision() as Revision,
                        }),
                    };
                    if tx.send(converted).await.is_err() {
                        return;
                    }
                }
                if response.canceled() {
                    let reason = response.cancel_reason().to_string();
                    let _ = tx
                        .send(Err(StoreError::Backend(format!(
                            "etcd cancelled the watch: {reason}"
                        ))))
                        .await;
                    return;
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.client.clone().compact(revision as i64, None).await {
            Ok(_) => Ok(()),
            // Compacting to a revision already compacted away is what was asked for.
            Err(e) if e.to_string().contains("required revision has been compacted") => Ok(()),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let options = GetOptions::new().with_count_only();
        let response = self
            .client
            .clone()
            .get(self.prefix.clone(), Some(options))
            .await
            .map_err(StoreError::backend)?;
        Ok(revision_of(response.header()))
    }

    async fn size_bytes(&self) -> Result<u64, StoreError> {
        let status = self.client.clone().status().await.map_err(StoreError::backend)?;
        Ok(status.db_size().max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    //! These run against a real etcd: `GLASSHOUSE_TEST_ETCD=HOST:PORT` names it (the test command starts
    //! one). Without it they fail rather than pass silently, unless `GLASSHOUSE_SKIP_ETCD=1` says to skip.
    use std::sync::Arc;

    use super::*;

    async fn connect() -> Option<EtcdStore> {
        if std::env::var("GLASSHOUSE_SKIP_ETCD").as_deref() == Ok("1") {
            return None;
        }
        let endpoint = std::env::var("GLASSHOUSE_TEST_ETCD").expect(
            "GLASSHOUSE_TEST_ETCD=HOST:PORT must name a running etcd (or set GLASSHOUSE_SKIP_ETCD=1)",
        );
        let prefix = format!("/test-{}", uuid::Uuid::new_v4());
        Some(
            EtcdStore::connect(&[endpoint], &prefix)
                .await
                .expect("etcd reachable"),
        )
    }

    #[tokio::test]
    async fn conformance_suite() {
        if let Some(store) = connect().await {
            crate::store::conformance::run_all(Arc::new(store)).await;
        }
    }

    #[test]
    fn range_end_is_the_next_prefix() {
        assert_eq!(range_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(range_end(b"a\xff"), b"b".to_vec());
    }
}
