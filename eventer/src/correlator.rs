//! client-go's event correlator (`tools/record/events_cache.go`): aggregation of similar events, dedup of
//! identical ones into a count, and a per-source-and-object spam filter — in that order, with upstream's
//! keys, limits and timing (`spec/events.md` §2).
//!
//! Not here: writing events (see `recorder.rs`). Keys are tuples of fields rather than upstream's
//! separator-less concatenation, so two different events can never share a key by accident.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use lru::LruCache;
use serde_json::{Value, json};

/// Upstream's defaults; any may be overridden.
#[derive(Clone, Debug)]
pub struct CorrelatorOptions {
    /// Entries in each of the three caches (aggregation, dedup, spam). Default 4096.
    pub lru_cache_size: usize,
    /// Distinct messages of similar events that trigger aggregation. Default 10.
    pub max_events: usize,
    /// Window for similar events, measured from the last one. Default 600 s.
    pub max_interval: Duration,
    /// Token bucket size per source and object. Default 25.
    pub burst: u32,
    /// Token refill rate per source and object. Default one per 300 s.
    pub qps: f64,
    /// Which events share a token bucket. Default: same source, object and type (`getSpamKey`).
    pub spam_key: fn(&Event) -> Key,
}

impl Default for CorrelatorOptions {
    fn default() -> Self {
        CorrelatorOptions {
            lru_cache_size: 4096,
            max_events: 10,
            max_interval: Duration::from_secs(600),
            burst: 25,
            qps: 1.0 / 300.0,
            spam_key,
        }
    }
}

/// What to do with an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlated {
    /// The event to write (possibly an aggregate, possibly carrying a cached name and count).
    pub event: Event,
    /// For a repeat: the strategic merge patch (count, lastTimestamp, message) onto the existing object.
    pub patch: Option<Value>,
    /// The spam filter refused it: write nothing.
    pub skip: bool,
}

/// A cache key: the fields that make events the same, each prefixed with its length so that no two
/// different field lists make the same key (upstream concatenates them without a separator).
pub type Key = Vec<u8>;

/// Builds a key from fields, in one allocation.
pub fn key<'a>(fields: impl IntoIterator<Item = &'a Option<String>> + Clone) -> Key {
    let size: usize = fields
        .clone()
        .into_iter()
        .map(|f| 4 + f.as_deref().map_or(0, str::len))
        .sum();
    let mut key = Vec::with_capacity(size);
    for field in fields {
        let field = field.as_deref().unwrap_or_default().as_bytes();
        key.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_le_bytes());
        key.extend_from_slice(field);
    }
    key
}

const NONE: Option<String> = None;

fn source(e: &Event) -> [&Option<String>; 2] {
    match &e.source {
        Some(source) => [&source.component, &source.host],
        None => [&NONE, &NONE],
    }
}

fn object(o: &ObjectReference) -> [&Option<String>; 5] {
    [&o.kind, &o.namespace, &o.name, &o.uid, &o.api_version]
}

/// `getEventKey`: everything that makes two events the same occurrence.
pub fn event_key(e: &Event) -> Key {
    let o = &e.involved_object;
    let [component, host] = source(e);
    key([
        component,
        host,
        &o.kind,
        &o.namespace,
        &o.name,
        &o.field_path,
        &o.uid,
        &o.api_version,
        &e.type_,
        &e.reason,
        &e.message,
    ])
}

/// `EventAggregatorByReasonFunc`: similar events (same but for the message).
fn aggregate_key(e: &Event) -> Key {
    let fields = source(e).into_iter().chain(object(&e.involved_object));
    key(fields.chain([&e.type_, &e.reason, &e.reporting_component, &e.reporting_instance]))
}

/// `getSpamKey`: one bucket per source, object and type.
pub fn spam_key(e: &Event) -> Key {
    key(source(e)
        .into_iter()
        .chain(object(&e.involved_object))
        .chain([&e.type_]))
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn cache<K: std::hash::Hash + Eq, V>(size: usize) -> LruCache<K, V> {
    LruCache::new(NonZeroUsize::new(size).unwrap_or(NonZeroUsize::MIN))
}

struct AggregateRecord {
    messages: HashSet<String>,
    last: Timestamp,
}

struct EventLog {
    count: i32,
    first_timestamp: Option<Time>,
    name: Option<String>,
    resource_version: Option<String>,
}

struct TokenBucket {
    tokens: f64,
    last: Timestamp,
}

/// The correlator: one per event sink, not shared between threads.
pub struct EventCorrelator {
    options: CorrelatorOptions,
    aggregates: LruCache<Key, AggregateRecord>,
    logs: LruCache<Key, EventLog>,
    buckets: LruCache<Key, TokenBucket>,
}

impl EventCorrelator {
    pub fn new(options: CorrelatorOptions) -> Self {
        let size = options.lru_cache_size;
        EventCorrelator {
            options,
            aggregates: cache(size),
            logs: cache(size),
            buckets: cache(size),
        }
    }

    /// Runs aggregation, dedup and the spam filter on `event`, observed at `now`.
    pub fn correlate(&mut self, event: Event, now: Timestamp) -> Correlated {
        let (event, key) = self.aggregate(event, now);
        let (event, repeat) = self.observe(event, key);
        let skip = !self.accept(&event, now);
        // The patch is only worth making for a repeat that will be written.
        let patch = (repeat && !skip).then(|| repeat_patch(&event));
        Correlated { event, patch, skip }
    }

    /// `EventAggregator.EventAggregate`.
    fn aggregate(&mut self, event: Event, now: Timestamp) -> (Event, Key) {
        let key = aggregate_key(&event);
        let window =
            jiff::SignedDuration::try_from(self.options.max_interval).unwrap_or(jiff::SignedDuration::MAX);
        if !self.aggregates.contains(&key) {
            let fresh = AggregateRecord {
                messages: HashSet::new(),
                last: Timestamp::UNIX_EPOCH,
            };
            self.aggregates.put(key.clone(), fresh);
        }
        let record = self.aggregates.get_mut(&key).expect("just made sure it is there");
        if now.duration_since(record.last) > window {
            record.messages.clear();
        }
        let message = event.message.as_deref().unwrap_or_default();
        if !record.messages.contains(message) {
            record.messages.insert(message.to_string());
        }
        record.last = now;
        if record.messages.len() < self.options.max_events {
            let key = event_key(&event);
            return (event, key);
        }
        // Upstream pops an arbitrary member so the set stays one below the threshold.
        if let Some(any) = record.messages.iter().next().cloned() {
            record.messages.remove(&any);
        }
        let name = event.involved_object.name.as_deref().unwrap_or_default();
        let aggregated = Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: event.metadata.namespace.clone(),
                ..Default::default()
            },
            count: Some(1),
            first_timestamp: Some(time(now)),
            last_timestamp: Some(time(now)),
            message: Some(format!("(combined from similar events): {message}")),
            involved_object: event.involved_object,
            type_: event.type_,
            reason: event.reason,
            source: event.source,
            ..Default::default()
        };
        (aggregated, key)
    }

    /// `eventLogger.eventObserve`: a repeat takes the cached name and first timestamp and one more count.
    /// Says whether it was a repeat.
    fn observe(&mut self, mut event: Event, key: Key) -> (Event, bool) {
        if let Some(last) = self.logs.get_mut(&key)
            && last.count > 0
        {
            event.metadata.name = last.name.clone();
            event.metadata.resource_version = last.resource_version.clone();
            event.first_timestamp = last.first_timestamp.clone();
            last.count += 1;
            event.count = Some(last.count);
            return (event, true);
        }
        self.remember(key, &event);
        (event, false)
    }

    fn remember(&mut self, key: Key, event: &Event) {
        self.logs.put(
            key,
            EventLog {
                count: event.count.unwrap_or(0),
                first_timestamp: event.first_timestamp.clone(),
                name: event.metadata.name.clone(),
                resource_version: event.metadata.resource_version.clone(),
            },
        );
    }

    /// `EventSourceObjectSpamFilter.Filter`: a full bucket at first sight, one token per event.
    fn accept(&mut self, event: &Event, now: Timestamp) -> bool {
        let burst = f64::from(self.options.burst);
        let key = (self.options.spam_key)(event);
        if !self.buckets.contains(&key) {
            self.buckets.put(
                key.clone(),
                TokenBucket {
                    tokens: burst,
                    last: now,
                },
            );
        }
        let bucket = self.buckets.get_mut(&key).expect("just made sure it is there");
        let elapsed = now.duration_since(bucket.last).as_secs_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * self.options.qps).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// `UpdateState`: after a successful write, remember the server's view (name, count, resourceVersion).
    pub fn update_state(&mut self, written: &Event) {
        self.remember(event_key(written), written);
    }
}

/// The strategic merge patch that turns the first occurrence into `event`, a repeat of it: client-go's
/// two-way merge patch from the event with count, lastTimestamp and message cleared.
pub fn repeat_patch(event: &Event) -> Value {
    let mut body = json!({"count": event.count, "lastTimestamp": event.last_timestamp});
    if let Some(message) = event.message.as_ref().filter(|m| !m.is_empty()) {
        body["message"] = json!(message);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EventSource;

    fn event(reason: &str, message: &str, now: Timestamp) -> Event {
        Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("pod.{:x}", now.as_nanosecond())),
                namespace: Some("default".into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                name: Some("pod".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                api_version: Some("v1".into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Normal".into()),
            count: Some(1),
            first_timestamp: Some(time(now)),
            last_timestamp: Some(time(now)),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some("node1".into()),
            }),
            ..Default::default()
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn identical_events_are_counted_on_one_object() {
        let mut c = EventCorrelator::new(CorrelatorOptions::default());
        let first = c.correlate(event("Started", "started container", at(0)), at(0));
        assert!(first.patch.is_none() && !first.skip);
        let name = first.event.metadata.name.clone();
        for n in 2..=5 {
            let repeat = c.correlate(event("Started", "started container", at(n)), at(n));
            assert_eq!(
                repeat.event.metadata.name, name,
                "repeats keep the first event's name"
            );
            assert_eq!(repeat.event.count, Some(n as i32));
            assert_eq!(repeat.event.first_timestamp, Some(time(at(0))));
            let patch = repeat.patch.unwrap();
            assert_eq!(patch["count"], n);
            assert_eq!(patch["message"], "started container");
            assert!(patch.get("lastTimestamp").is_some());
        }
    }

    #[test]
    fn ten_distinct_messages_in_the_window_aggregate() {
        let mut c = EventCorrelator::new(CorrelatorOptions::default());
        for i in 0..9 {
            let r = c.correlate(event("BackOff", &format!("message {i}"), at(i)), at(i));
            assert!(
                r.event.message.unwrap().starts_with("message"),
                "below the threshold nothing aggregates"
            );
        }
        let tenth = c.correlate(event("BackOff", "message 9", at(9)), at(9));
        assert_eq!(
            tenth.event.message.as_deref(),
            Some("(combined from similar events): message 9")
        );
        assert_eq!(tenth.event.count, Some(1));
        assert!(tenth.patch.is_none());
        // The next new message dedups onto the aggregate: one object, counting up.
        let eleventh = c.correlate(event("BackOff", "message 10", at(10)), at(10));
        assert_eq!(eleventh.event.metadata.name, tenth.event.metadata.name);
        assert_eq!(eleventh.event.count, Some(2));
        assert_eq!(
            eleventh.event.message.as_deref(),
            Some("(combined from similar events): message 10")
        );
    }

    #[test]
    fn the_aggregation_window_restarts_after_600s_of_quiet() {
        let mut c = EventCorrelator::new(CorrelatorOptions::default());
        for i in 0..9 {
            c.correlate(event("BackOff", &format!("m{i}"), at(i)), at(i));
        }
        // 601 s after the last similar event the set starts over: no aggregation.
        let later = c.correlate(event("BackOff", "m9", at(8 + 601)), at(8 + 601));
        assert_eq!(later.event.message.as_deref(), Some("m9"));
        // Exactly 600 s is still inside the window (upstream compares with a strict >).
        let mut c = EventCorrelator::new(CorrelatorOptions::default());
        for i in 0..9 {
            c.correlate(event("BackOff", &format!("m{i}"), at(i)), at(i));
        }
        let edge = c.correlate(event("BackOff", "m9", at(8 + 600)), at(8 + 600));
        assert!(edge.event.message.unwrap().starts_with("(combined"));
    }

    #[test]
    fn spam_filter_allows_a_burst_of_25_then_one_per_5_minutes() {
        let mut c = EventCorrelator::new(CorrelatorOptions::default());
        let mut accepted = 0;
        for i in 0..30 {
            // Different reasons, same source and object: one bucket.
            if !c.correlate(event(&format!("R{i}"), "m", at(0)), at(0)).skip {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 25);
        assert!(
            c.correlate(event("R", "m", at(299)), at(299)).skip,
            "no token before 300 s"
        );
        assert!(
            !c.correlate(event("R", "m", at(300)), at(300)).skip,
            "one token after 300 s"
        );
        assert!(c.correlate(event("R", "m", at(301)), at(301)).skip);
        // Another type is another bucket (client-go 1.32 added type to the spam key).
        let mut warning = event("R", "m", at(301));
        warning.type_ = Some("Warning".into());
        assert!(!c.correlate(warning, at(301)).skip);
    }

    #[test]
    fn skipped_repeats_are_still_counted() {
        let mut c = EventCorrelator::new(CorrelatorOptions {
            burst: 1,
            ..Default::default()
        });
        assert!(!c.correlate(event("R", "m", at(0)), at(0)).skip);
        assert!(c.correlate(event("R", "m", at(1)), at(1)).skip);
        assert!(c.correlate(event("R", "m", at(2)), at(2)).skip);
        let accepted = c.correlate(event("R", "m", at(300)), at(300));
        assert!(!accepted.skip);
        assert_eq!(
            accepted.event.count,
            Some(4),
            "the next accepted repeat carries the full count"
        );
    }

    #[test]
    fn update_state_takes_the_server_view() {
        let mut c = EventCorrelator::new(CorrelatorOptions::default());
        let first = c.correlate(event("R", "m", at(0)), at(0));
        let mut written = first.event.clone();
        written.metadata.resource_version = Some("42".into());
        written.count = Some(7);
        c.update_state(&written);
        let repeat = c.correlate(event("R", "m", at(1)), at(1));
        assert_eq!(repeat.event.count, Some(8));
        assert_eq!(repeat.event.metadata.resource_version.as_deref(), Some("42"));
    }

    #[test]
    fn caches_are_bounded() {
        let mut c = EventCorrelator::new(CorrelatorOptions {
            lru_cache_size: 2,
            ..Default::default()
        });
        for i in 0..10 {
            let mut e = event("R", "m", at(i));
            e.involved_object.name = Some(format!("pod-{i}"));
            c.correlate(e, at(i));
        }
        assert!(c.logs.len() <= 2 && c.aggregates.len() <= 2 && c.buckets.len() <= 2);
    }
    // Ports of client-go's `events_cache_test.go` (`spec/events.md` §2). Upstream's SimpleIntervalClock
    // steps on every reading: the test's timestamp, the aggregator's and the spam filter's, so three steps
    // per event. Here one reading serves both the aggregator and the filter; the spacing between events,
    // which is what the outcomes depend on, is the same three steps.

    struct IntervalClock {
        now: Timestamp,
        step: jiff::SignedDuration,
    }

    impl IntervalClock {
        fn new(step_seconds: i64) -> Self {
            IntervalClock {
                now: at(0),
                step: jiff::SignedDuration::from_secs(step_seconds),
            }
        }

        fn now(&mut self) -> Timestamp {
            self.now = self.now.checked_add(self.step).unwrap();
            self.now
        }
    }

    /// upstream's `makeObjectReference` and `makeEvent`.
    fn upstream_event(reason: &str, message: &str, kind: &str, name: &str, namespace: &str) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                uid: Some("C934D34AFB20242".into()),
                api_version: Some("version".into()),
                field_path: Some("spec.containers{mycontainer}".into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some("kublet.node1".into()),
            }),
            count: Some(1),
            type_: Some("Normal".into()),
            ..Default::default()
        }
    }

    fn pod_event(reason: &str, message: &str) -> Event {
        upstream_event(reason, message, "Pod", "my-pod", "my-ns")
    }

    fn similar(n: usize, template: &Event) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut e = template.clone();
                let message = template.message.clone().unwrap();
                e.message = Some(format!("{message}-{i}-{message}"));
                e
            })
            .collect()
    }

    fn with_container(mut e: Event, container: &str) -> Event {
        e.involved_object.field_path = Some(format!("spec.containers{{{container}}}"));
        e
    }

    /// One `TestEventCorrelator` row: the previous events, then the new one; `None` when it is skipped.
    fn correlate_after(previous: Vec<Event>, new: Event, interval: i64) -> Option<Correlated> {
        let mut clock = IntervalClock::new(interval);
        let mut c = EventCorrelator::new(CorrelatorOptions::default());
        let mut step = |c: &mut EventCorrelator, mut e: Event| {
            let stamp = clock.now();
            e.first_timestamp = Some(time(stamp));
            e.last_timestamp = Some(time(stamp));
            let now = clock.now();
            clock.now();
            c.correlate(e, now)
        };
        for e in previous {
            let result = step(&mut c, e);
            if !result.skip {
                c.update_state(&result.event);
            }
        }
        let result = step(&mut c, new);
        (!result.skip).then_some(result)
    }

    fn count_and_message(result: Option<Correlated>) -> (i32, String) {
        let event = result.expect("not skipped").event;
        (event.count.unwrap(), event.message.unwrap())
    }

    #[test]
    fn upstream_event_correlator_table() {
        let first = pod_event("first", "i am first");
        let duplicate = pod_event("duplicate", "me again");
        let unique = pod_event("unique", "snowflake");
        let similar_event = with_container(pod_event("similar", "similar message"), "container1");
        let other_container = with_container(similar_event.clone(), "container2");
        let combined = "(combined from similar events): similar message".to_string();

        // create-a-single-event
        assert_eq!(
            count_and_message(correlate_after(vec![], first, 5)),
            (1, "i am first".into())
        );
        // the-same-event-should-just-count
        let r = correlate_after(vec![duplicate.clone()], duplicate.clone(), 5).unwrap();
        assert_eq!(r.event.count, Some(2));
        assert_ne!(r.event.first_timestamp, r.event.last_timestamp);
        // the-same-event-should-just-count-even-if-more-than-aggregate
        let r = correlate_after(vec![duplicate.clone(); 10], duplicate.clone(), 30);
        assert_eq!(count_and_message(r), (11, "me again".into()));
        // the-same-event-is-spam-if-happens-too-frequently
        assert!(correlate_after(vec![duplicate.clone(); 26], duplicate.clone(), 1).is_none());
        // create-many-unique-events
        let uniques = (0..30)
            .map(|i| {
                upstream_event(
                    &format!("reason-{i}"),
                    &format!("message-{i}"),
                    "Pod",
                    &format!("pod-{i}"),
                    &format!("ns-{i}"),
                )
            })
            .collect();
        assert_eq!(
            count_and_message(correlate_after(uniques, unique, 5)),
            (1, "snowflake".into())
        );
        // similar-events-should-aggregate-event
        let r = correlate_after(similar(9, &similar_event), similar_event.clone(), 5).unwrap();
        assert_eq!(
            (r.event.count, r.event.message.clone()),
            (Some(1), Some(combined.clone()))
        );
        assert_eq!(r.event.involved_object, similar_event.involved_object);
        assert_eq!(
            (r.event.reason.as_deref(), r.event.type_.as_deref()),
            (Some("similar"), Some("Normal"))
        );
        assert_eq!(r.event.source, similar_event.source);
        assert!(r.event.metadata.name.unwrap().starts_with("my-pod."));
        // similar-events-many-times-should-count-the-aggregate
        let r = correlate_after(similar(10, &similar_event), similar_event.clone(), 5);
        assert_eq!(count_and_message(r), (2, combined));
        // events-from-different-containers-do-not-aggregate
        let r = correlate_after(vec![other_container], similar_event.clone(), 5);
        assert_eq!(count_and_message(r), (1, "similar message".into()));
        // similar-events-whose-interval-is-greater-than-aggregate-interval-do-not-aggregate
        let r = correlate_after(similar(9, &similar_event), similar_event, 600);
        assert_eq!(count_and_message(r), (1, "similar message".into()));
    }

    #[test]
    fn upstream_aggregator_keys_and_message() {
        let fun = upstream_event("end-of-world", "it was fun", "Pod", "pod1", "other");
        let awful = upstream_event("end-of-world", "it was awful", "Pod", "pod1", "other");
        let bug = upstream_event("nevermind", "it was a bug", "Pod", "pod1", "other");
        assert_eq!(aggregate_key(&fun), aggregate_key(&awful));
        assert_ne!(fun.message, awful.message);
        assert_ne!(aggregate_key(&fun), aggregate_key(&bug));
    }

    #[test]
    fn upstream_spam_filter_cases() {
        fn by_object_and_reason(e: &Event) -> Key {
            let mut key = spam_key(e);
            key.extend(super::key([&e.reason]));
            key
        }
        let run = |key: fn(&Event) -> Key, new: Event| {
            let mut clock = IntervalClock::new(1);
            let options = CorrelatorOptions {
                burst: 1,
                spam_key: key,
                ..Default::default()
            };
            let mut c = EventCorrelator::new(options);
            clock.now();
            let original = c.correlate(pod_event("original", "i am first"), clock.now());
            if !original.skip {
                c.update_state(&original.event);
            }
            clock.now();
            c.correlate(new, clock.now())
        };
        let different_reason = pod_event("duplicate", "me again");
        let same_reason_other_message = pod_event("original", "me again");
        assert!(
            run(spam_key, different_reason.clone()).skip,
            "the default key is the object"
        );
        let r = run(by_object_and_reason, different_reason);
        assert!(
            !r.skip && r.event.count == Some(1),
            "a key with the reason separates reasons"
        );
        assert!(
            run(by_object_and_reason, same_reason_other_message).skip,
            "but not messages"
        );
    }
}
