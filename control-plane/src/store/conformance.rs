//! One behaviour suite for every [`Store`] backend: each backend's tests call [`run_all`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::{EventKind, Store, StoreError, WatchStream};

/// Runs every check against `store`, which must be empty. Keys are namespaced per check.
pub async fn run_all(store: Arc<dyn Store>) {
    create_get_update_delete(&*store).await;
    revisions_are_global_and_monotonic(&*store).await;
    compare_and_swap(&*store).await;
    list_pages_in_key_order(&*store).await;
    watch_replays_then_follows(&*store).await;
    watch_filters_by_prefix(&*store).await;
    compaction_expires_old_resume_points(&*store).await;
    quiet_watches_report_progress(&*store).await;
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The next change (progress reports skipped).
async fn next(watch: &mut WatchStream) -> super::WatchEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("a watch event within 10s")
            .expect("the watch stream stays open")
            .expect("a watch event, not an error");
        if event.kind != EventKind::Progress {
            return event;
        }
    }
}

async fn quiet_watches_report_progress(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/quiet/", start).await.unwrap();
    let elsewhere = store.create("/noisy/a", b("")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, watch.next())
            .await
            .expect("a progress report within 10s")
            .expect("the watch stream stays open")
            .expect("a progress report, not an error");
        assert_eq!(
            event.kind,
            EventKind::Progress,
            "nothing changed under the prefix"
        );
        if event.revision >= elsewhere {
            break;
        }
    }
}

async fn create_get_update_delete(store: &dyn Store) {
    assert!(store.get("/crud/a").await.unwrap().is_none());
    let created = store.create("/crud/a", b("one")).await.unwrap();
    let kv = store.get("/crud/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (b("one"), created, created)
    );
    assert!(matches!(
        store.create("/crud/a", b("two")).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let updated = store.update("/crud/a", b("two"), created).await.unwrap();
    assert!(updated > created);
    let kv = store.get("/crud/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (b("two"), created, updated)
    );
    let (deleted_at, last) = store.delete("/crud/a", None).await.unwrap();
    assert!(deleted_at > updated);
    assert_eq!(last.value, b("two"));
    assert!(store.get("/crud/a").await.unwrap().is_none());
    assert!(matches!(
        store.delete("/crud/a", None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update("/crud/a", b("x"), updated).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn revisions_are_global_and_monotonic(store: &dyn Store) {
    let before = store.current_revision().await.unwrap();
    let r1 = store.create("/rev/a", b("")).await.unwrap();
    let r2 = store.create("/rev/b", b("")).await.unwrap();
    assert!(before < r1 && r1 < r2);
    assert_eq!(store.current_revision().await.unwrap(), r2);
    // A failed write does not move the revision.
    assert!(store.create("/rev/a", b("")).await.is_err());
    assert_eq!(store.current_revision().await.unwrap(), r2);
}

async fn compare_and_swap(store: &dyn Store) {
    let r1 = store.create("/cas/a", b("1")).await.unwrap();
    let r2 = store.update("/cas/a", b("2"), r1).await.unwrap();
    match store.update("/cas/a", b("3"), r1).await {
        Err(StoreError::Conflict { expected, actual, .. }) => assert_eq!((expected, actual), (r1, r2)),
        other => panic!("stale update should conflict, got {other:?}"),
    }
    assert!(matches!(
        store.delete("/cas/a", Some(r1)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get("/cas/a").await.unwrap().unwrap().value, b("2"));
    store.delete("/cas/a", Some(r2)).await.unwrap();
}

async fn list_pages_in_key_order(store: &dyn Store) {
    for name in ["c", "a", "e", "b", "d"] {
        store.create(&format!("/list/{name}"), b(name)).await.unwrap();
    }
    store.create("/listing-other", b("")).await.unwrap();
    let all = store.list("/list/", None, 0).await.unwrap();
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/list/a", "/list/b", "/list/c", "/list/d", "/list/e"]);
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision().await.unwrap());

    let first = store.list("/list/", None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.more);
    let second = store.list("/list/", Some(&first.items[1].key), 2).await.unwrap();
    assert_eq!(second.items[0].key, "/list/c");
    let last = store.list("/list/", Some(&second.items[1].key), 2).await.unwrap();
    assert_eq!(last.items.len(), 1);
    assert!(!last.more);
}

async fn watch_replays_then_follows(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let r1 = store.create("/watch/a", b("1")).await.unwrap();
    let mut watch = store.watch("/watch/", start).await.unwrap();
    let event = next(&mut watch).await;
    assert_eq!(
        (event.kind, event.key.as_str(), event.revision),
        (EventKind::Created, "/watch/a", r1)
    );
    let r2 = store.update("/watch/a", b("2"), r1).await.unwrap();
    let (r3, _) = store.delete("/watch/a", None).await.unwrap();
    let event = next(&mut watch).await;
    assert_eq!(
        (event.kind, event.revision, event.value),
        (EventKind::Updated, r2, b("2"))
    );
    let event = next(&mut watch).await;
    // A delete carries the last value at the delete's own revision.
    assert_eq!(
        (event.kind, event.revision, event.value),
        (EventKind::Deleted, r3, b("2"))
    );

    // Resuming from the middle replays only what came after.
    let mut resumed = store.watch("/watch/", r2).await.unwrap();
    assert_eq!(next(&mut resumed).await.revision, r3);
}

async fn watch_filters_by_prefix(store: &dyn Store) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/prefix/in/", start).await.unwrap();
    store.create("/prefix/out/a", b("")).await.unwrap();
    let wanted = store.create("/prefix/in/a", b("")).await.unwrap();
    assert_eq!(next(&mut watch).await.revision, wanted);
}

async fn compaction_expires_old_resume_points(store: &dyn Store) {
    let r1 = store.create("/compact/a", b("1")).await.unwrap();
    let r2 = store.update("/compact/a", b("2"), r1).await.unwrap();
    let r3 = store.update("/compact/a", b("3"), r2).await.unwrap();
    store.compact(r3).await.unwrap();
    match store.watch("/compact/", r1).await {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, r1),
        Ok(mut stream) => {
            // A backend may report compaction inside the stream instead.
            let mut item = None;
            while let Ok(next) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                if !matches!(&next, Some(Ok(e)) if e.kind == EventKind::Progress) {
                    item = next;
                    break;
                }
            }
            assert!(
                matches!(item, Some(Err(StoreError::Compacted { .. }))),
                "got {item:?}"
            );
        }
        Err(other) => panic!("expected Compacted, got {other:?}"),
    }
    // From just before the compaction point on, watching still works.
    let mut watch = store.watch("/compact/", r2).await.unwrap();
    assert_eq!(next(&mut watch).await.revision, r3);
    let r4 = store.update("/compact/a", b("4"), r3).await.unwrap();
    assert_eq!(next(&mut watch).await.revision, r4);
    // Objects themselves are untouched by compaction.
    assert_eq!(store.get("/compact/a").await.unwrap().unwrap().value, b("4"));
}
