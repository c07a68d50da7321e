//! The events.k8s.io/v1 recorder (client-go `tools/events`, `spec/events.md` §3): isomorphic events
//! (same type, action, reason, reporting controller and instance, regarding and related objects; the
//! note does not count) become one object with a `series`. The first occurrence is created, the second
//! turns it into a series with a PATCH, later ones only count in memory; the server hears of them when a
//! series has been quiet for 6 minutes (a final PATCH) or every 30 minutes (a heartbeat, which also keeps
//! the event's TTL alive). Writes are tried up to 12 times, 10–12.5 s apart, on transport errors.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::recorder::{EventType, enqueue, event_name};
use crate::telemetry::{
    DropReason, EventDropped, EventWriteRetried, EventWritten, EventerMetrics, WriteOperation,
};

/// A series quiet for this long is finished: written one last time and forgotten (`finishTime`).
const FINISH_AFTER: Duration = Duration::from_secs(6 * 60);
/// Every cached series is written this often (`refreshTime`).
const REFRESH_EVERY: Duration = Duration::from_secs(30 * 60);
const MAX_TRIES: u32 = 12;
const RETRY_SLEEP: Duration = Duration::from_secs(10);

/// Records events.k8s.io/v1 events for one controller. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct EventsRecorder {
    controller: String,
    instance: String,
    queue: mpsc::Sender<Event>,
    metrics: EventerMetrics,
    clock: Clock,
}

impl EventsRecorder {
    /// `tools/events.NewRecorder`: the reporting instance is `<controller>-<host>`.
    pub(crate) fn new(
        controller: &str,
        host: &str,
        queue: mpsc::Sender<Event>,
        metrics: EventerMetrics,
        clock: Clock,
    ) -> Self {
        EventsRecorder {
            controller: controller.to_string(),
            instance: format!("{controller}-{host}"),
            queue,
            metrics,
            clock,
        }
    }

    /// `Eventf(regarding, related, type, reason, action, note)`.
    pub fn eventf(
        &self,
        regarding: &ObjectReference,
        related: Option<&ObjectReference>,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        let now = self.clock.now();
        let namespace = regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".into());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name(regarding.name.as_deref().unwrap_or_default(), now)),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            series: None,
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            regarding: Some(regarding.clone()),
            related: related.cloned(),
            note: Some(note.into()),
            type_: Some(type_.as_str().to_string()),
            ..Event::default()
        };
        enqueue(
            &self.queue,
            event,
            regarding.name.as_deref().unwrap_or_default(),
            &self.metrics,
        );
    }
}

/// Everything that makes two events the same series (`getKey`); the note is not part of it.
type SeriesKey = String;

fn series_key(event: &Event) -> SeriesKey {
    json!([
        event.type_,
        event.action,
        event.reason,
        event.reporting_controller,
        event.reporting_instance,
        event.regarding,
        event.related,
    ])
    .to_string()
}

/// Whether a failed write may go through if tried again: transport trouble, or an AlreadyExists of a
/// series event whose create went through unseen (then the PATCH will find it).
fn is_transient(error: &kube::Error, event: &Event) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 409 && event.series.is_some(),
        kube::Error::BuildRequest(_) => false,
        _ => true,
    }
}

/// The writer task behind every `EventsRecorder` of a broadcaster.
pub(crate) struct SeriesWriter {
    pub client: kube::Client,
    pub metrics: EventerMetrics,
    pub clock: Clock,
    pub cache: HashMap<SeriesKey, Event>,
}

impl SeriesWriter {
    pub async fn run(mut self, mut incoming: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        let mut finish = tokio::time::interval(FINISH_AFTER);
        let mut refresh = tokio::time::interval(REFRESH_EVERY);
        finish.tick().await;
        refresh.tick().await;
        loop {
            let work = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = incoming.recv() => match event {
                    Some(event) => self.record(event),
                    None => return,
                },
                _ = finish.tick() => {
                    self.finish_series().await;
                    continue;
                }
                _ = refresh.tick() => {
                    // A heartbeat that fails is not retried: the next one, or the finish, writes the count.
                    let series: Vec<Event> = self.cache.values().filter(|e| e.series.is_some()).cloned().collect();
                    for event in series {
                        let _ = self.write_once(&event).await;
                    }
                    continue;
                }
            };
            for event in work {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    () = self.write(event) => {}
                }
            }
        }
    }

    /// `recordToSink`'s cache step: what, if anything, to write for a new occurrence.
    fn record(&mut self, event: Event) -> Vec<Event> {
        let now = self.clock.now();
        let key = series_key(&event);
        match self.cache.get_mut(&key) {
            Some(cached) => match cached.series.as_mut() {
                Some(series) => {
                    series.count += 1;
                    series.last_observed_time = MicroTime(now);
                    vec![]
                }
                None => {
                    cached.series = Some(EventSeries {
                        count: 2,
                        last_observed_time: MicroTime(now),
                    });
                    vec![cached.clone()]
                }
            },
            None => {
                self.cache.insert(key, event.clone());
                vec![event]
            }
        }
    }

    /// `finishSeries`: a series quiet for 6 minutes gets a final write, one attempt per check, and is
    /// forgotten once that write is done (or refused); an old singleton is just forgotten.
    async fn finish_series(&mut self) {
        let cutoff = self.clock.now() - SignedDuration::try_from(FINISH_AFTER).expect("a small duration");
        let observed = |e: &Event| -> Timestamp {
            e.series
                .as_ref()
                .map(|s| &s.last_observed_time)
                .or(e.event_time.as_ref())
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        };
        let finished: Vec<(SeriesKey, Event)> = self
            .cache
            .iter()
            .filter(|(_, e)| observed(e) < cutoff)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for (key, event) in finished {
            let done = event.series.is_none()
                || match self.write_once(&event).await {
                    Ok(()) => true,
                    Err(error) => !is_transient(&error, &event),
                };
            if done {
                self.cache.remove(&key);
            }
        }
    }

    /// `recordEvent` with its retries: a series is PATCHed (its `series` only), created when gone.
    async fn write(&mut self, event: Event) {
        for attempt in 1..=MAX_TRIES {
            let Err(error) = self.write_once(&event).await else {
                return;
            };
            let retry = is_transient(&error, &event);
            if !retry || attempt == MAX_TRIES {
                let reason = if retry {
                    DropReason::RetriesExhausted
                } else {
                    DropReason::Rejected
                };
                EventDropped {
                    reason,
                    event_reason: event.reason.as_deref().unwrap_or_default(),
                    object: event
                        .regarding
                        .as_ref()
                        .and_then(|r| r.name.as_deref())
                        .unwrap_or_default(),
                    error: Some(&error),
                }
                .emit(&self.metrics);
                return;
            }
            EventWriteRetried {
                attempt,
                error: &error,
            }
            .emit(&self.metrics);
            // `wait.Jitter(10s, 0.25)`.
            tokio::time::sleep(RETRY_SLEEP.mul_f64(1.0 + 0.25 * rand::random::<f64>())).await;
        }
    }

    async fn write_once(&self, event: &Event) -> Result<(), kube::Error> {
        let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let name = event.metadata.name.as_deref().unwrap_or_default();
        if let Some(series) = &event.series {
            let patch = Patch::Strategic(json!({"series": series}));
            match api.patch(name, &PatchParams::default(), &patch).await {
                Ok(written) => {
                    self.written(&written, WriteOperation::Patch, series.count);
                    return Ok(());
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let mut create = event.clone();
        create.metadata.resource_version = None;
        let written = api.create(&PostParams::default(), &create).await?;
        self.written(
            &written,
            WriteOperation::Create,
            event.series.as_ref().map_or(1, |s| s.count),
        );
        Ok(())
    }

    fn written(&self, event: &Event, operation: WriteOperation, count: i32) {
        EventWritten {
            operation,
            namespace: event.metadata.namespace.as_deref().unwrap_or_default(),
            name: event.metadata.name.as_deref().unwrap_or_default(),
            reason: event.reason.as_deref().unwrap_or_default(),
            count,
        }
        .emit(&self.metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ScriptedApi, broadcaster, pod, settle, status};

    fn recorder(api: &ScriptedApi) -> (EventsRecorder, EventerMetrics) {
        let (b, metrics) = broadcaster(api);
        (b.events_recorder("kubelet", "node-1"), metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn a_hot_loop_costs_three_writes_and_a_heartbeat_every_30_minutes() {
        let api = ScriptedApi::default();
        let (recorder, _) = recorder(&api);
        let backoff = || {
            recorder.eventf(
                &pod(),
                None,
                EventType::Warning,
                "BackOff",
                "Restarting",
                "back-off 10s",
            )
        };
        backoff();
        settle(&api, 1).await;
        let (method, path, body) = api.requests()[0].clone();
        assert_eq!(
            (method.as_str(), path.as_str()),
            ("POST", "/apis/events.k8s.io/v1/namespaces/web/events")
        );
        assert_eq!(body["reportingController"], "kubelet");
        assert_eq!(body["reportingInstance"], "kubelet-node-1");
        assert_eq!(body["action"], "Restarting");
        assert!(body.get("series").is_none() && body["eventTime"].is_string());
        // The second occurrence makes it a series; the note does not matter.
        tokio::time::advance(Duration::from_secs(1)).await;
        recorder.eventf(
            &pod(),
            None,
            EventType::Warning,
            "BackOff",
            "Restarting",
            "back-off 20s",
        );
        settle(&api, 2).await;
        let (method, path, body) = api.requests()[1].clone();
        assert_eq!(method, "PATCH");
        assert!(path.ends_with(body_name(&api.requests()[0].2)), "{path}");
        assert_eq!(body["series"]["count"], 2);
        // Every minute for 35 minutes: counted in memory; the server hears of it only from the heartbeat
        // at 30 minutes.
        for minute in 1..=35 {
            tokio::time::advance(Duration::from_secs(60)).await;
            backoff();
            settle(&api, 2).await;
            let expected = if minute < 30 { 2 } else { 3 };
            assert_eq!(api.requests().len(), expected, "minute {minute}");
        }
        let (method, _, body) = api.requests()[2].clone();
        assert_eq!(method, "PATCH");
        // 29 or 30 occurrences after the second: the one at minute 30 and the heartbeat are due together.
        let count = body["series"]["count"].as_i64().unwrap();
        assert!((31..=32).contains(&count), "{count}");
        // Quiet for 6 minutes (seen at the next 6-minute check): the series finishes with a final write of
        // its whole count, and is forgotten.
        tokio::time::advance(Duration::from_secs(12 * 60)).await;
        settle(&api, 4).await;
        let (method, _, body) = api.requests()[3].clone();
        assert_eq!(
            (method.as_str(), &body["series"]["count"]),
            ("PATCH", &serde_json::json!(37))
        );
        backoff();
        settle(&api, 5).await;
        assert_eq!(api.requests()[4].0, "POST", "a finished series starts over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_series_whose_object_is_gone_is_created_with_its_series() {
        let api = ScriptedApi::default();
        let (recorder, metrics) = recorder(&api);
        let record = || recorder.eventf(&pod(), None, EventType::Normal, "Pulled", "Pulling", "pulled");
        record();
        settle(&api, 1).await;
        api.answer(status(404, "NotFound"));
        record();
        settle(&api, 3).await;
        let (method, _, body) = api.requests()[2].clone();
        assert_eq!(
            (method.as_str(), &body["series"]["count"]),
            ("POST", &serde_json::json!(2))
        );
        assert_eq!(metrics.written(WriteOperation::Create), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn different_actions_or_related_objects_are_different_series() {
        let api = ScriptedApi::default();
        let (recorder, _) = recorder(&api);
        let node = ObjectReference {
            kind: Some("Node".into()),
            name: Some("node-1".into()),
            ..Default::default()
        };
        recorder.eventf(
            &pod(),
            None,
            EventType::Normal,
            "Scheduled",
            "Binding",
            "assigned",
        );
        recorder.eventf(
            &pod(),
            Some(&node),
            EventType::Normal,
            "Scheduled",
            "Binding",
            "assigned",
        );
        recorder.eventf(
            &pod(),
            None,
            EventType::Normal,
            "Scheduled",
            "Preempting",
            "assigned",
        );
        settle(&api, 3).await;
        assert_eq!(api.requests().len(), 3);
        assert!(api.requests().iter().all(|(method, _, _)| method == "POST"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_write_that_fails_is_tried_again_at_the_next_check() {
        let api = ScriptedApi::default();
        let (recorder, _) = recorder(&api);
        let record = || {
            recorder.eventf(
                &pod(),
                None,
                EventType::Warning,
                "BackOff",
                "Restarting",
                "back-off",
            )
        };
        for _ in 0..5 {
            record();
        }
        settle(&api, 2).await;
        assert_eq!(
            api.requests().len(),
            2,
            "a POST, then a PATCH making it a series; the rest in memory"
        );
        // The API is unreachable at the first check after the series went quiet.
        api.answer(None);
        tokio::time::advance(Duration::from_secs(6 * 60)).await;
        settle(&api, 3).await;
        assert_eq!(api.requests().len(), 3);
        tokio::time::advance(Duration::from_secs(6 * 60)).await;
        settle(&api, 4).await;
        let (method, _, body) = api.requests()[3].clone();
        assert_eq!(
            (method.as_str(), &body["series"]["count"]),
            ("PATCH", &serde_json::json!(5))
        );
        // Written: forgotten, so the next occurrence starts a new event.
        record();
        settle(&api, 5).await;
        assert_eq!(api.requests()[4].0, "POST");
    }

    fn body_name(body: &serde_json::Value) -> &str {
        body["metadata"]["name"].as_str().unwrap()
    }
}
