//! Watch streams: newline-delimited `WatchEvent`s over a chunked 200 response.
//!
//! A watch without a resourceVersion (or with "0", or with `sendInitialEvents=true`) starts with synthetic
//! ADDED events for the current state, then follows the store's change log. A resume point that the log no
//! longer holds is answered in the stream, with an ERROR event carrying a 410 Expired Status, as the real
//! API server does (kube-rs relists only on that). Selector filtering follows upstream's watch cache: an
//! update that moves an object into the selection is ADDED, out of it DELETED.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::conversion;
use super::error::ApiError;
use super::objects::{ListOptions, decode_stored};
use super::resources::ResourceType;
use super::table;
use crate::store::{EventKind, KeyValue, Revision, Store, WatchEvent};
use crate::telemetry::WatchGuard;

/// How watch events are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendering {
    Object,
    Table,
    Metadata,
}

/// A watch request, parsed.
pub struct WatchRequest {
    pub resource: &'static ResourceType,
    pub namespace: Option<String>,
    pub selection: ListOptions,
    /// None or 0: start with the current state.
    pub resource_version: Option<Revision>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub rendering: Rendering,
}

/// How often a quiet watch gets a bookmark (upstream: about once a minute), besides the last one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// The default watch length when the client names none: upstream picks at random in
/// [minRequestTimeout, 2×minRequestTimeout] so that watches do not all end together.
pub fn default_timeout() -> Duration {
    use rand::Rng;
    Duration::from_secs(rand::rng().random_range(1800..3600))
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// Starts a watch and returns its byte stream. Errors before the stream starts (a bad resourceVersion)
/// are returned as API errors; a too-old resume point becomes an in-stream ERROR.
pub async fn watch(
    store: std::sync::Arc<dyn Store>,
    request: WatchRequest,
    guard: WatchGuard,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ApiError> {
    let rt = request.resource;
    let ns = request.namespace.clone();
    let prefix = rt.collection_prefix(ns.as_deref());
    let start_with_state = request.send_initial_events || request.resource_version.is_none_or(|rv| rv == 0);

    let mut initial = Vec::new();
    let from = if start_with_state {
        // One read, so the initial state is exactly the state at the revision the watch resumes from.
        let page = store
            .list(&prefix, None, 0)
            .await
            .map_err(|e| ApiError::from_store(e, rt.group_resource(), ""))?;
        initial = page.items;
        page.revision
    } else {
        request.resource_version.unwrap_or(0)
    };

    let bookmarks = request.bookmarks;
    let send_initial_events = request.send_initial_events;
    let timeout = request.timeout;
    let mut renderer = Renderer {
        request,
        headers_sent: false,
        progress: from,
    };
    let mut prelude: Vec<Bytes> = Vec::new();
    for kv in &initial {
        if let Some(chunk) = renderer.initial(kv)? {
            prelude.push(chunk);
        }
    }
    if send_initial_events && bookmarks {
        prelude.push(renderer.bookmark(true));
    }

    let changes = match store.watch(&prefix, from).await {
        Ok(changes) => Some(changes),
        Err(crate::store::StoreError::Compacted { requested, compacted }) => {
            prelude.push(expired(requested, compacted));
            None
        }
        Err(e) => return Err(ApiError::from_store(e, rt.group_resource(), "")),
    };

    // One task per watch feeds the response body; it ends at the deadline, when the client goes, or
    // when the store's stream does, and holds the watcher gauge until then.
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let _guard = guard;
        for chunk in prelude {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        let Some(mut changes) = changes else { return };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last_bookmark = tokio::time::Instant::now();
        loop {
            let chunk = tokio::select! {
                _ = tx.closed() => return,
                _ = &mut deadline => {
                    // A last bookmark lets the client resume from where the store is, not from its
                    // last event, which compaction may overtake while the watch is quiet.
                    if bookmarks {
                        let _ = tx.send(renderer.bookmark(false)).await;
                    }
                    return;
                }
                event = changes.next() => match event {
                    None => return,
                    Some(Ok(event)) if event.kind == EventKind::Progress => {
                        renderer.progress = renderer.progress.max(event.revision);
                        if !bookmarks || last_bookmark.elapsed() < BOOKMARK_INTERVAL {
                            continue;
                        }
                        last_bookmark = tokio::time::Instant::now();
                        renderer.bookmark(false)
                    }
                    Some(Ok(event)) => {
                        renderer.progress = renderer.progress.max(event.revision);
                        match renderer.change(&event) {
                            Some(chunk) => chunk,
                            None => continue,
                        }
                    }
                    Some(Err(crate::store::StoreError::Compacted { requested, compacted })) => {
                        let _ = tx.send(expired(requested, compacted)).await;
                        return;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watch stream failed");
                        let _ = tx.send(line("ERROR", ApiError::Internal(e.to_string()).status())).await;
                        return;
                    }
                },
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(rx).map(Ok))
}

/// The in-stream error for a resume point the store no longer holds.
fn expired(requested: Revision, compacted: Revision) -> Bytes {
    line(
        "ERROR",
        ApiError::Expired(format!("too old resource version: {requested} ({compacted})")).status(),
    )
}

struct Renderer {
    request: WatchRequest,
    headers_sent: bool,
    /// Every change up to this revision has been rendered (or filtered out).
    progress: Revision,
}

impl Renderer {
    fn decode(&self, kv: &KeyValue) -> Option<Value> {
        match decode_stored(kv) {
            Ok(object) => Some(conversion::from_storage(self.request.resource, object)),
            Err(e) => {
                tracing::error!(error = %e, key = %kv.key, "undecodable object in watch");
                None
            }
        }
    }

    fn selected(&self, object: &Value) -> bool {
        self.request.selection.labels.matches_object(object) && self.request.selection.fields.matches(object)
    }

    fn initial(&mut self, kv: &KeyValue) -> Result<Option<Bytes>, ApiError> {
        Ok(self
            .decode(kv)
            .filter(|o| self.selected(o))
            .map(|o| self.render("ADDED", o)))
    }

    fn change(&mut self, event: &WatchEvent) -> Option<Bytes> {
        let stamp = |value: &Bytes| KeyValue {
            key: event.key.clone(),
            value: value.clone(),
            create_revision: 0,
            mod_revision: event.revision,
        };
        let current = self.decode(&stamp(&event.value))?;
        let now_in = self.selected(&current);
        let kind = match event.kind {
            EventKind::Progress => None,
            EventKind::Created => now_in.then_some("ADDED"),
            EventKind::Deleted => now_in.then_some("DELETED"),
            EventKind::Updated => {
                let was_in = event
                    .prev
                    .as_ref()
                    .and_then(|prev| self.decode(&stamp(prev)))
                    .is_none_or(|prev| self.selected(&prev));
                match (was_in, now_in) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }?;
        Some(self.render(kind, current))
    }

    fn render(&mut self, kind: &str, object: Value) -> Bytes {
        let object = match self.request.rendering {
            Rendering::Object => object,
            Rendering::Metadata => table::partial_metadata(&object),
            Rendering::Table => {
                let headers = !self.headers_sent;
                self.headers_sent = true;
                let rv = object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                table::table(self.request.resource, &[object], rv, None, headers)
            }
        };
        line(kind, object)
    }

    fn bookmark(&self, initial_events_end: bool) -> Bytes {
        let rt = self.request.resource;
        let mut metadata = json!({"resourceVersion": self.progress.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}),
        )
    }
}
