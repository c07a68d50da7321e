//! Counts events in `glasshouse_events_total{type,reason,kind,namespace}`. A record adds the occurrences
//! it brings: its count less the count already seen for that event. Label values are bounded: past
//! `maxLabelValues` distinct values of a label, new ones count as `other`.

use std::collections::HashSet;
use std::num::NonZeroUsize;

use lru::LruCache;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::shipper::config::PrometheusConfig;
use crate::shipper::record::{Record, occurrences};

/// Events whose last count is remembered, to count only what a record adds.
const REMEMBERED: usize = 65_536;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    r#type: String,
    reason: String,
    kind: String,
    namespace: String,
}

pub struct PrometheusSink {
    events: Family<EventLabels, Counter>,
    counts: LruCache<String, i64>,
    seen: [HashSet<String>; 4],
    max_values: usize,
}

impl PrometheusSink {
    pub fn new(config: &PrometheusConfig, registry: &mut Registry) -> Self {
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "glasshouse_events",
            "Events that occurred, by type, reason, involved object kind and namespace",
            events.clone(),
        );
        PrometheusSink {
            events,
            counts: LruCache::new(NonZeroUsize::new(REMEMBERED).expect("non-zero")),
            seen: Default::default(),
            max_values: config.max_label_values,
        }
    }

    pub fn deliver(&mut self, records: &[Record]) {
        for record in records {
            let event = &record.event;
            let count = i64::from(occurrences(event));
            let uid = event.metadata.uid.clone().unwrap_or_default();
            let before = self.counts.put(uid, count).unwrap_or(0);
            let added = count - before;
            if added <= 0 {
                continue;
            }
            let values = [
                event.type_.as_deref(),
                event.reason.as_deref(),
                event.involved_object.kind.as_deref(),
                event.metadata.namespace.as_deref(),
            ];
            let [r#type, reason, kind, namespace] =
                std::array::from_fn(|i| self.bounded(i, values[i].unwrap_or_default()));
            let labels = EventLabels {
                r#type,
                reason,
                kind,
                namespace,
            };
            self.events.get_or_create(&labels).inc_by(added.unsigned_abs());
        }
    }

    fn bounded(&mut self, label: usize, value: &str) -> String {
        let seen = &mut self.seen[label];
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() < self.max_values {
            seen.insert(value.to_string());
            return value.to_string();
        }
        "other".to_string()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Event, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn record(uid: &str, reason: &str, count: i32) -> Record {
        Record::new(Event {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                namespace: Some("web".into()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                ..ObjectReference::default()
            },
            type_: Some("Warning".into()),
            reason: Some(reason.into()),
            count: Some(count),
            ..Event::default()
        })
    }

    fn scrape(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn counts_occurrences_once_and_bounds_label_values() {
        let mut registry = Registry::default();
        let mut sink = PrometheusSink::new(&PrometheusConfig { max_label_values: 2 }, &mut registry);
        // One event seen at counts 1, 3 and (redelivered) 3: three occurrences.
        sink.deliver(&[
            record("a", "BackOff", 1),
            record("a", "BackOff", 3),
            record("a", "BackOff", 3),
        ]);
        sink.deliver(&[record("b", "Unhealthy", 1), record("c", "Failed", 2)]);
        let text = scrape(&registry);
        let line = |reason: &str| {
            format!(
                "glasshouse_events_total{{type=\"Warning\",reason=\"{reason}\",kind=\"Pod\",namespace=\"web\"}}"
            )
        };
        assert!(text.contains(&format!("{} 3", line("BackOff"))), "{text}");
        assert!(text.contains(&format!("{} 1", line("Unhealthy"))), "{text}");
        assert!(
            text.contains(&format!("{} 2", line("other"))),
            "the third reason is past the bound: {text}"
        );
    }
}
