//! The event recorder every component uses, and the broadcaster behind it that writes events through the
//! API the way client-go's `tools/record` does (`spec/events.md` §2.7): a queue of 1000 events that drops
//! when full, the correlator, then a POST for a first occurrence or a strategic merge PATCH for a repeat
//! (falling back to a POST when the object is gone), up to 12 attempts 10 s apart on transport errors,
//! and no retry of a write the server refused.
//!
//! A process has one broadcaster (one writer task, one correlator); each component asks it for a
//! `Recorder` carrying the component's event source. Recording never blocks and never fails: an event
//! that cannot be written is counted in the telemetry instead.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::correlator::{Correlated, CorrelatorOptions, EventCorrelator, repeat_patch};
use crate::series::{EventsRecorder, SeriesWriter};
use crate::telemetry::{
    DropReason, EventDropped, EventWriteRetried, EventWritten, EventerMetrics, QueueDepth, WriteOperation,
};

/// `Normal` or `Warning`: the only types upstream's recorder writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The broadcaster's settings; the defaults are client-go's.
#[derive(Clone, Debug)]
pub struct BroadcasterConfig {
    pub correlator: CorrelatorOptions,
    /// Events waiting to be written; more are dropped. Default 1000 (`maxQueuedEvents`).
    pub queue: usize,
    /// Write attempts per event. Default 12 (`maxTriesPerEvent`).
    pub max_tries: u32,
    /// Pause between attempts; the first pause is a random fraction of it. Default 10 s.
    pub retry_sleep: Duration,
}

impl Default for BroadcasterConfig {
    fn default() -> Self {
        BroadcasterConfig {
            correlator: CorrelatorOptions::default(),
            queue: 1000,
            max_tries: 12,
            retry_sleep: Duration::from_secs(10),
        }
    }
}

/// What the broadcaster takes from the process.
pub struct BroadcasterContext<'a> {
    /// The API the events are written to.
    pub client: kube::Client,
    pub registry: &'a mut Registry,
    pub shutdown: CancellationToken,
}

/// The process's event writer; cheap to clone.
#[derive(Clone)]
pub struct Broadcaster {
    queue: mpsc::Sender<Event>,
    series_queue: mpsc::Sender<k8s_openapi::api::events::v1::Event>,
    metrics: EventerMetrics,
    clock: Clock,
}

impl BroadcasterConfig {
    /// Starts the writer task; it stops with the context's shutdown token.
    pub fn build(self, ctx: BroadcasterContext<'_>) -> Broadcaster {
        let metrics = EventerMetrics::register(ctx.registry);
        self.start(ctx.client, metrics, ctx.shutdown)
    }

    /// As `build`, with metrics registered elsewhere (tests, and processes with several clients).
    pub fn start(
        self,
        client: kube::Client,
        metrics: EventerMetrics,
        shutdown: CancellationToken,
    ) -> Broadcaster {
        let (queue, incoming) = mpsc::channel(self.queue.max(1));
        let (series_queue, series_incoming) = mpsc::channel(self.queue.max(1));
        let clock = Clock::new();
        let series = SeriesWriter {
            client: client.clone(),
            metrics: metrics.clone(),
            clock,
            cache: Default::default(),
        };
        tokio::spawn(series.run(series_incoming, shutdown.clone()));
        let writer = Writer {
            client,
            correlator: EventCorrelator::new(self.correlator.clone()),
            config: self,
            metrics: metrics.clone(),
            clock,
        };
        tokio::spawn(writer.run(incoming, shutdown));
        Broadcaster {
            queue,
            series_queue,
            metrics,
            clock,
        }
    }
}

impl Broadcaster {
    /// A recorder for `component` (upstream's `EventSource.Component`, e.g. `deployment-controller`);
    /// `host` is the node for node components, none for controllers.
    pub fn recorder(&self, component: &str, host: Option<&str>) -> Recorder {
        Recorder {
            source: EventSource {
                component: Some(component.to_string()),
                host: host.map(str::to_string),
            },
            broadcaster: self.clone(),
        }
    }

    /// An events.k8s.io/v1 recorder (with series) for `controller` on `host`.
    pub fn events_recorder(&self, controller: &str, host: &str) -> EventsRecorder {
        EventsRecorder::new(
            controller,
            host,
            self.series_queue.clone(),
            self.metrics.clone(),
            self.clock,
        )
    }

    /// The recorder's and the TTL's metrics.
    pub fn metrics(&self) -> EventerMetrics {
        self.metrics.clone()
    }

    fn enqueue(&self, event: Event) {
        let object = event.involved_object.name.clone().unwrap_or_default();
        if enqueue(&self.queue, event, &object, &self.metrics) {
            QueueDepth(self.depth()).emit(&self.metrics);
        }
    }

    fn depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Hands an event of either flavour to its writer without waiting; a full queue (or one closed at
/// shutdown) drops it, counted. Says whether it was queued.
pub(crate) fn enqueue<E: EventReason>(
    queue: &mpsc::Sender<E>,
    event: E,
    object: &str,
    metrics: &EventerMetrics,
) -> bool {
    let Err(mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event)) =
        queue.try_send(event)
    else {
        return true;
    };
    let reason = if queue.is_closed() {
        DropReason::Shutdown
    } else {
        DropReason::QueueFull
    };
    EventDropped {
        reason,
        event_reason: event.reason(),
        object,
        error: None,
    }
    .emit(metrics);
    false
}

/// The reason of an event of either flavour, for the telemetry of one that is dropped.
pub(crate) trait EventReason {
    fn reason(&self) -> &str;
}

impl EventReason for Event {
    fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or_default()
    }
}

impl EventReason for k8s_openapi::api::events::v1::Event {
    fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or_default()
    }
}

/// Records events for one component. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct Recorder {
    source: EventSource,
    broadcaster: Broadcaster,
}

impl Recorder {
    pub fn normal(&self, regarding: &ObjectReference, reason: &str, message: impl Into<String>) {
        self.event(regarding, EventType::Normal, reason, message);
    }

    pub fn warning(&self, regarding: &ObjectReference, reason: &str, message: impl Into<String>) {
        self.event(regarding, EventType::Warning, reason, message);
    }

    /// Records that `reason` happened to `regarding` (get one from a typed object with
    /// `kube::Resource::object_ref`; set `field_path` to point at a container).
    pub fn event(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        let now = self.broadcaster.clock.now();
        self.broadcaster.enqueue(make_event(
            &self.source,
            regarding,
            type_,
            reason,
            message.into(),
            now,
        ));
    }
}

/// client-go's `makeEvent`: named after the object and the time, in the object's namespace (`default` for
/// cluster-scoped objects), a first occurrence.
fn make_event(
    source: &EventSource,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    message: String,
    now: Timestamp,
) -> Event {
    let namespace = regarding
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".into());
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(regarding.name.as_deref().unwrap_or_default(), now)),
            namespace: Some(namespace),
            ..ObjectMeta::default()
        },
        involved_object: regarding.clone(),
        reason: Some(reason.to_string()),
        message: Some(message),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        type_: Some(type_.as_str().to_string()),
        source: Some(source.clone()),
        reporting_component: source.component.clone(),
        reporting_instance: source.host.clone(),
        ..Event::default()
    }
}

/// `util.GenerateEventName`: `<object>.<hex nanoseconds>`, or a random UUID where that is not a valid
/// object name.
pub(crate) fn event_name(object: &str, now: Timestamp) -> String {
    let name = format!("{object}.{:x}", now.as_nanosecond());
    if is_dns_subdomain(&name) {
        name
    } else {
        uuid::Uuid::new_v4().to_string()
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    let alphanumeric = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && alphanumeric(bytes[0])
                && alphanumeric(bytes[bytes.len() - 1])
                && bytes.iter().all(|&c| alphanumeric(c) || c == b'-')
        })
}

/// Whether a failed write is worth another attempt (client-go `recordEvent`).
enum Failure {
    /// The server answered with a status, or the request could not be built: give up.
    Final(kube::Error),
    /// Transport trouble, or an answer that could not be read: try again.
    Transient(kube::Error),
}

struct Writer {
    client: kube::Client,
    correlator: EventCorrelator,
    config: BroadcasterConfig,
    metrics: EventerMetrics,
    clock: Clock,
}

impl Writer {
    async fn run(mut self, mut incoming: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                event = incoming.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
            };
            QueueDepth(incoming.len()).emit(&self.metrics);
            let correlated = self.correlator.correlate(event, self.clock.now());
            if correlated.skip {
                self.dropped(&correlated.event, DropReason::SpamFilter, None);
                continue;
            }
            let written = tokio::select! {
                _ = shutdown.cancelled() => false,
                () = self.write(&correlated) => true,
            };
            if !written {
                self.dropped(&correlated.event, DropReason::Shutdown, None);
                break;
            }
        }
        incoming.close();
        while let Ok(event) = incoming.try_recv() {
            self.dropped(&event, DropReason::Shutdown, None);
        }
        QueueDepth(0).emit(&self.metrics);
    }

    /// `recordToSink`: up to `max_tries` attempts, pausing between them.
    async fn write(&mut self, correlated: &Correlated) {
        for attempt in 1..=self.config.max_tries {
            let error = match self.write_once(correlated).await {
                Ok(written) => {
                    self.correlator.update_state(&written);
                    return;
                }
                Err(Failure::Final(error)) => {
                    self.dropped(&correlated.event, DropReason::Rejected, Some(&error));
                    return;
                }
                Err(Failure::Transient(error)) => error,
            };
            if attempt == self.config.max_tries {
                self.dropped(&correlated.event, DropReason::RetriesExhausted, Some(&error));
                return;
            }
            EventWriteRetried {
                attempt,
                error: &error,
            }
            .emit(&self.metrics);
            let pause = if attempt == 1 {
                self.config.retry_sleep.mul_f64(rand::random::<f64>())
            } else {
                self.config.retry_sleep
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// `recordEvent`: PATCH a repeat (a count above one), POST a first occurrence or a repeat whose object
    /// is gone.
    async fn write_once(&self, correlated: &Correlated) -> Result<Event, Failure> {
        let event = &correlated.event;
        let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
        let name = event.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        if event.count.unwrap_or(0) > 1 {
            let patch = correlated.patch.clone().unwrap_or_else(|| repeat_patch(event));
            match api
                .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(written) => return Ok(self.written(written, WriteOperation::Patch)),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(classify(error)),
            }
        }
        let mut create = event.clone();
        create.metadata.resource_version = None;
        match api.create(&PostParams::default(), &create).await {
            Ok(written) => Ok(self.written(written, WriteOperation::Create)),
            Err(error) => Err(classify(error)),
        }
    }

    fn written(&self, event: Event, operation: WriteOperation) -> Event {
        EventWritten {
            operation,
            namespace: event.metadata.namespace.as_deref().unwrap_or_default(),
            name: event.metadata.name.as_deref().unwrap_or_default(),
            reason: event.reason.as_deref().unwrap_or_default(),
            count: event.count.unwrap_or(1),
        }
        .emit(&self.metrics);
        event
    }

    fn dropped(&self, event: &Event, reason: DropReason, error: Option<&kube::Error>) {
        EventDropped {
            reason,
            event_reason: event.reason.as_deref().unwrap_or_default(),
            object: event.involved_object.name.as_deref().unwrap_or_default(),
            error: error.map(|e| e as &dyn std::fmt::Display),
        }
        .emit(&self.metrics);
    }
}

fn classify(error: kube::Error) -> Failure {
    match error {
        kube::Error::Api(_) | kube::Error::BuildRequest(_) => Failure::Final(error),
        other => Failure::Transient(other),
    }
}

#[cfg(test)]
mod tests {
    //! The write protocol against a scripted API: the answers it needs (a 404 to a PATCH, a broken
    //! connection) cannot be provoked from a healthy server. The real server's side is covered end to end.

    use serde_json::json;

    use super::*;
    use crate::testing::{ScriptedApi, accept, broadcaster, pod, settle, status};

    #[tokio::test(start_paused = true)]
    async fn a_first_occurrence_is_posted_as_client_go_makes_it() {
        let api = ScriptedApi::default();
        let (b, _) = broadcaster(&api);
        b.recorder("kubelet", Some("node-1")).warning(
            &pod(),
            "BackOff",
            "Back-off restarting failed container",
        );
        settle(&api, 1).await;
        let requests = api.requests();
        assert_eq!(requests.len(), 1);
        let (method, path, body) = &requests[0];
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("POST", "/api/v1/namespaces/web/events")
        );
        assert!(body["metadata"]["name"].as_str().unwrap().starts_with("web-1."));
        assert_eq!(body["involvedObject"]["uid"], "uid-1");
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["count"], 1);
        assert_eq!(body["source"], json!({"component": "kubelet", "host": "node-1"}));
        assert_eq!(body["reportingComponent"], "kubelet");
        assert_eq!(body["reportingInstance"], "node-1");
        assert_eq!(body["firstTimestamp"], body["lastTimestamp"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_is_a_strategic_patch_of_the_first_object() {
        let api = ScriptedApi::default();
        let (b, metrics) = broadcaster(&api);
        let recorder = b.recorder("kubelet", None);
        recorder.normal(&pod(), "Pulled", "Container image already present");
        settle(&api, 1).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        recorder.normal(&pod(), "Pulled", "Container image already present");
        settle(&api, 2).await;
        let requests = api.requests();
        let first_name = requests[0].2["metadata"]["name"].as_str().unwrap().to_string();
        let (method, path, body) = &requests[1];
        assert_eq!(method, "PATCH");
        assert_eq!(path, &format!("/api/v1/namespaces/web/events/{first_name}"));
        assert_eq!(body["count"], 2);
        assert_eq!(body["message"], "Container image already present");
        assert!(body.get("lastTimestamp").is_some());
        assert_eq!(metrics.written(WriteOperation::Patch), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_whose_object_is_gone_is_created_again_with_its_count() {
        let api = ScriptedApi::default();
        let (b, _) = broadcaster(&api);
        let recorder = b.recorder("kubelet", None);
        recorder.normal(&pod(), "Started", "Started container web");
        settle(&api, 1).await;
        api.answer(status(404, "NotFound"));
        recorder.normal(&pod(), "Started", "Started container web");
        settle(&api, 3).await;
        let requests = api.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[1].0, "PATCH");
        let (method, _, body) = &requests[2];
        assert_eq!(method, "POST");
        assert_eq!(body["count"], 2, "the recreated object keeps the count");
        assert_eq!(body["metadata"]["name"], requests[0].2["metadata"]["name"]);
        assert!(body["metadata"].get("resourceVersion").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn transport_errors_are_retried_twelve_times_then_dropped() {
        let api = ScriptedApi::default();
        for _ in 0..12 {
            api.answer(None);
        }
        let (b, metrics) = broadcaster(&api);
        let started = tokio::time::Instant::now();
        b.recorder("kubelet", None)
            .normal(&pod(), "Started", "Started container web");
        settle(&api, 12).await;
        assert_eq!(api.requests().len(), 12);
        // Eleven pauses: the first a random fraction of 10 s, the rest 10 s each.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_secs(100) && elapsed <= Duration::from_secs(111),
            "{elapsed:?}"
        );
        assert_eq!(metrics.retries(), 11);
        assert_eq!(metrics.dropped(DropReason::RetriesExhausted), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_write_is_not_retried() {
        let api = ScriptedApi::default();
        api.answer(status(422, "Invalid"));
        let (b, metrics) = broadcaster(&api);
        b.recorder("kubelet", None)
            .normal(&pod(), "Started", "Started container web");
        settle(&api, 1).await;
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(api.requests().len(), 1);
        assert_eq!(metrics.dropped(DropReason::Rejected), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_rather_than_blocks() {
        let api = ScriptedApi::default();
        // The first write hangs on retries, so the queue behind it fills.
        for _ in 0..12 {
            api.answer(None);
        }
        let metrics = EventerMetrics::default();
        let config = BroadcasterConfig {
            queue: 5,
            ..BroadcasterConfig::default()
        };
        let b = config.start(api.client(), metrics.clone(), CancellationToken::new());
        let recorder = b.recorder("kubelet", None);
        recorder.normal(&pod(), "R0", "m");
        settle(&api, 1).await;
        for i in 1..=8 {
            let mut other = pod();
            other.name = Some(format!("web-{i}"));
            recorder.normal(&other, "R", "m");
        }
        assert_eq!(metrics.dropped(DropReason::QueueFull), 3);
        assert_eq!(metrics.queue_depth(), 5);
    }

    #[test]
    fn names_fall_back_to_a_uuid_when_the_object_name_is_not_a_subdomain() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(
            event_name("web-1", now),
            format!("web-1.{:x}", 1_700_000_000_000_000_000i64)
        );
        let odd = event_name("Web_1", now);
        assert!(uuid::Uuid::parse_str(&odd).is_ok(), "{odd}");
        assert!(is_dns_subdomain("a.b-c.1") && !is_dns_subdomain("a..b") && !is_dns_subdomain("-a"));
    }

    #[test]
    fn cluster_scoped_objects_get_events_in_default() {
        let node = ObjectReference {
            kind: Some("Node".into()),
            name: Some("n1".into()),
            ..Default::default()
        };
        let source = EventSource {
            component: Some("kubelet".into()),
            host: Some("n1".into()),
        };
        let event = make_event(
            &source,
            &node,
            EventType::Normal,
            "NodeReady",
            "ready".into(),
            Timestamp::now(),
        );
        assert_eq!(event.metadata.namespace.as_deref(), Some("default"));
    }
    // Ports of client-go's `event_test.go` write-path cases.

    fn reference(uid: &str, field_path: Option<&str>) -> ObjectReference {
        ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some("baz".into()),
            name: Some("foo".into()),
            uid: Some(uid.into()),
            api_version: Some("v1".into()),
            field_path: field_path.map(str::to_string),
            ..ObjectReference::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_eventf_table_creates_and_patches_in_order() {
        let api = ScriptedApi::default();
        let (b, _) = broadcaster(&api);
        let recorder = b.recorder("eventTest", None);
        let test_ref = reference("bar", Some("spec.containers[2]"));
        let test_pod = reference("bar", None);
        let test_ref2 = reference("differentUid", Some("spec.containers[3]"));
        let rows = [
            (&test_ref, "Started", "POST", 1),
            (&test_pod, "Killed", "POST", 1),
            (&test_ref, "Started", "PATCH", 2),
            (&test_ref2, "Started", "POST", 1),
            (&test_ref, "Started", "PATCH", 3),
            (&test_ref2, "Stopped", "POST", 1),
            (&test_ref2, "Stopped", "PATCH", 2),
        ];
        for (i, (object, reason, method, count)) in rows.into_iter().enumerate() {
            tokio::time::advance(Duration::from_secs(1)).await;
            let message = if reason == "Killed" {
                "some other verbose message: 1"
            } else {
                "some verbose message: 1"
            };
            recorder.normal(object, reason, message);
            settle(&api, i + 1).await;
            let (m, path, body) = api.requests()[i].clone();
            assert_eq!(
                (m.as_str(), body["count"].as_i64()),
                (method, Some(count)),
                "row {i}: {path} {body}"
            );
            assert!(path.starts_with("/api/v1/namespaces/baz/events"), "{path}");
            if method == "POST" {
                assert_eq!(body["involvedObject"]["uid"], object.uid.clone().unwrap());
                assert_eq!(body["source"], json!({"component": "eventTest"}));
                assert!(body["metadata"]["name"].as_str().unwrap().starts_with("foo."));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_write_error_succeeds_on_the_attempt_after_the_errors() {
        let api = ScriptedApi::default();
        api.answer(None);
        let (b, metrics) = broadcaster(&api);
        b.recorder("eventTest", None).normal(&pod(), "Started", "m");
        settle(&api, 2).await;
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(api.requests().len(), 2);
        assert_eq!(
            (metrics.retries(), metrics.written(WriteOperation::Create)),
            (1, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_update_expired_event_patches_then_creates_without_a_version() {
        let api = ScriptedApi::default();
        api.answer(status(404, "NotFound"));
        let metrics = EventerMetrics::default();
        let mut writer = Writer {
            client: api.client(),
            correlator: EventCorrelator::new(CorrelatorOptions::default()),
            config: BroadcasterConfig::default(),
            metrics,
            clock: Clock::new(),
        };
        // A count of two with nothing cached: upstream still tries the PATCH first.
        let mut event = make_event(
            &EventSource::default(),
            &pod(),
            EventType::Normal,
            "Started",
            "m".into(),
            Timestamp::now(),
        );
        event.count = Some(2);
        event.metadata.resource_version = Some("updated-resource-version".into());
        writer
            .write(&Correlated {
                event,
                patch: None,
                skip: false,
            })
            .await;
        let requests = api.requests();
        assert_eq!(
            requests.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            ["PATCH", "POST"]
        );
        assert!(requests[1].2["metadata"].get("resourceVersion").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_lots_of_events_each_failing_four_times_all_arrive() {
        let api = ScriptedApi::default();
        for _ in 0..1000 {
            for _ in 0..4 {
                api.answer(None);
            }
            api.answer(accept());
        }
        let config = BroadcasterConfig {
            retry_sleep: Duration::ZERO,
            ..BroadcasterConfig::default()
        };
        let metrics = EventerMetrics::default();
        let b = config.start(api.client(), metrics.clone(), CancellationToken::new());
        let recorder = b.recorder("eventTest", None);
        for i in 0..1000 {
            let mut object = pod();
            object.name = Some(format!("foo-{i}"));
            recorder.normal(&object, &format!("Reason-{i}"), i.to_string());
        }
        settle(&api, 5000).await;
        assert_eq!(api.requests().len(), 5000);
        assert_eq!(metrics.written(WriteOperation::Create), 1000);
        assert_eq!(metrics.dropped(DropReason::QueueFull), 0);
    }
}
