//! The eventer's `logIndex` sink on the log pipeline's index: each shipped event becomes a line (its
//! message, `warn` for Warning events, the involved object's namespace and, for pods, name), with the
//! rest under `attributes` (`kind: Event`, reason, type, object, count, component), so one search finds
//! logs and events together. Redeliveries of one event state replace each other (the delivery id).

use eventer::shipper::record::Record;
use eventer::shipper::sinks::index::EventIndex;
use futures::future::BoxFuture;
use logpipe::record::LogLine;
use serde_json::json;

pub struct LogIndexEvents(pub logpipe::EventLines);

impl EventIndex for LogIndexEvents {
    fn index<'a>(&'a self, records: &'a [Record]) -> BoxFuture<'a, Result<(), String>> {
        let lines = records.iter().map(line).collect();
        Box::pin(self.0.write(lines))
    }
}

fn line(record: &Record) -> LogLine {
    let event = &record.event;
    let object = &event.involved_object;
    let timestamp = event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or_else(jiff::Timestamp::now);
    let warning = event.type_.as_deref() == Some("Warning");
    let attributes = json!({
        "kind": "Event",
        "reason": event.reason,
        "type": event.type_,
        "object": {"kind": object.kind, "name": object.name, "namespace": object.namespace},
        "count": eventer::shipper::record::occurrences(event),
        "component": event.reporting_component.clone().or(event.source.as_ref().and_then(|s| s.component.clone())),
    });
    LogLine {
        timestamp,
        message: event.message.clone().unwrap_or_default(),
        stream: String::new(),
        level: if warning { "warn" } else { "info" }.into(),
        namespace: object.namespace.clone().unwrap_or_default(),
        pod: if object.kind.as_deref() == Some("Pod") {
            object.name.clone().unwrap_or_default()
        } else {
            String::new()
        },
        container: String::new(),
        node: event
            .source
            .as_ref()
            .and_then(|s| s.host.clone())
            .unwrap_or_default(),
        source: "events".into(),
        attributes: attributes.as_object().cloned().unwrap_or_default(),
        dedup_key: Some(record.delivery_id.clone()),
    }
}
