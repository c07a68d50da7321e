//! Conversions between a served version and the version objects are stored in, for the resources served
//! in two shapes: HorizontalPodAutoscalers (stored as autoscaling/v2, also served as autoscaling/v1) and
//! Events (stored as core/v1, also served as events.k8s.io/v1). Sources: k/k
//! `pkg/apis/autoscaling/v1/conversion.go` and `pkg/apis/events/v1/conversion.go`.

use serde_json::{Map, Value, json};

use super::resources::ResourceType;

/// Converts a stored object to the version `target` serves.
pub fn from_storage(target: &ResourceType, stored: Value) -> Value {
    match (target.group, target.version, target.kind) {
        ("autoscaling", "v1", _) => hpa_v2_to_v1(stored),
        ("events.k8s.io", _, _) => event_core_to_events(stored),
        _ => stored,
    }
}

/// Converts an object written to `source`'s endpoint to the stored version. `existing` is the stored object
/// on update: fields the served version cannot express are carried over from it.
pub fn to_storage(source: &ResourceType, object: Value, existing: Option<&Value>) -> Value {
    match (source.group, source.version, source.kind) {
        ("autoscaling", "v1", _) => hpa_v1_to_v2(object, existing),
        ("events.k8s.io", _, _) => event_events_to_core(object),
        _ => object,
    }
}

fn take(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    map.remove(key).filter(|v| !v.is_null())
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

fn hpa_v2_to_v1(mut object: Value) -> Value {
    object["apiVersion"] = json!("autoscaling/v1");
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        let metrics = take(spec, "metrics");
        spec.remove("behavior");
        let cpu = metrics
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|m| m.iter().find(|m| is_cpu_utilization(m)))
            .and_then(|m| m.pointer("/resource/target/averageUtilization").cloned());
        if let Some(cpu) = cpu {
            spec.insert("targetCPUUtilizationPercentage".into(), cpu);
        }
    }
    if let Some(status) = object.get_mut("status").and_then(Value::as_object_mut) {
        let current = take(status, "currentMetrics");
        status.remove("conditions");
        let cpu = current
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|m| {
                m.iter().find(|m| {
                    m.get("type").and_then(Value::as_str) == Some("Resource")
                        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
                })
            })
            .and_then(|m| m.pointer("/resource/current/averageUtilization").cloned());
        if let Some(cpu) = cpu {
            status.insert("currentCPUUtilizationPercentage".into(), cpu);
        }
        status.entry("currentReplicas").or_insert(json!(0));
        status.entry("desiredReplicas").or_insert(json!(0));
    }
    object
}

fn hpa_v1_to_v2(mut object: Value, existing: Option<&Value>) -> Value {
    object["apiVersion"] = json!("autoscaling/v2");
    let existing_spec = existing.and_then(|e| e.get("spec"));
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        let cpu = take(spec, "targetCPUUtilizationPercentage");
        // Metrics other than CPU utilization, and the behavior, cannot be said in v1: keep the stored ones.
        let mut metrics: Vec<Value> = existing_spec
            .and_then(|s| s.get("metrics"))
            .and_then(Value::as_array)
            .map(|m| m.iter().filter(|m| !is_cpu_utilization(m)).cloned().collect())
            .unwrap_or_default();
        if let Some(cpu) = cpu {
            metrics.insert(
                0,
                json!({"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": cpu}}}),
            );
        }
        if !metrics.is_empty() {
            spec.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(behavior) = existing_spec.and_then(|s| s.get("behavior")) {
            spec.insert("behavior".into(), behavior.clone());
        }
    }
    if let Some(status) = object.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(cpu) = take(status, "currentCPUUtilizationPercentage") {
            status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}]),
            );
        }
        if let Some(conditions) = existing.and_then(|e| e.pointer("/status/conditions")) {
            status.insert("conditions".into(), conditions.clone());
        }
    }
    object
}

/// core/v1 field ↔ events.k8s.io/v1 field.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn rename(object: &mut Value, from_to: impl Iterator<Item = (&'static str, &'static str)>) {
    if let Some(map) = object.as_object_mut() {
        for (from, to) in from_to {
            if let Some(value) = map.remove(from) {
                map.insert(to.to_string(), value);
            }
        }
    }
}

fn event_core_to_events(mut object: Value) -> Value {
    rename(&mut object, EVENT_FIELDS.iter().copied());
    object["apiVersion"] = json!("events.k8s.io/v1");
    object
}

fn event_events_to_core(mut object: Value) -> Value {
    rename(
        &mut object,
        EVENT_FIELDS.iter().map(|(core, events)| (*events, *core)),
    );
    object["apiVersion"] = json!("v1");
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources::find;

    #[test]
    fn hpa_round_trip_keeps_what_v1_cannot_say() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let stored = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "spec": {"minReplicas": 1, "maxReplicas": 5, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}});
        let mut served = from_storage(v1, stored.clone());
        assert_eq!(served["spec"]["targetCPUUtilizationPercentage"], 80);
        assert!(served["spec"].get("metrics").is_none());
        served["spec"]["targetCPUUtilizationPercentage"] = json!(50);
        let back = to_storage(v1, served, Some(&stored));
        assert_eq!(
            back["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        assert_eq!(back["spec"]["metrics"][1]["type"], "Pods");
        assert_eq!(back["spec"]["behavior"], stored["spec"]["behavior"]);
    }

    #[test]
    fn events_rename_fields_both_ways() {
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        let core =
            json!({"apiVersion": "v1", "kind": "Event", "message": "hi", "involvedObject": {"name": "p"}});
        let served = from_storage(ev, core.clone());
        assert_eq!(served["note"], "hi");
        assert_eq!(served["regarding"]["name"], "p");
        assert_eq!(to_storage(ev, served, None), core);
    }
}
