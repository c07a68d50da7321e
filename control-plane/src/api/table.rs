//! Server-side printing: `meta.k8s.io/v1` Tables with the columns kubectl users know, as k/k
//! `pkg/printers/internalversion/printers.go` prints them. Columns of priority 1 show with `-o wide` only.

use serde_json::{Value, json};

use super::conversion;
use super::resources::{self, ResourceType};

/// One column: name, type, priority.
type Column = (&'static str, &'static str, u8);

fn columns(kind: &str) -> &'static [Column] {
    match kind {
        "Pod" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        "Deployment" => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "ReplicaSet" => &[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "Service" => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        "Endpoints" => &[
            ("Name", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ],
        "EndpointSlice" => &[
            ("Name", "string", 0),
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ],
        "ConfigMap" => &[
            ("Name", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        "Secret" => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        "Namespace" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ],
        "Node" => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        "Event" => &[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        "HorizontalPodAutoscaler" => &[
            ("Name", "string", 0),
            ("Reference", "string", 0),
            ("Targets", "string", 0),
            ("MinPods", "string", 0),
            ("MaxPods", "integer", 0),
            ("Replicas", "integer", 0),
            ("Age", "string", 0),
        ],
        "Lease" => &[
            ("Name", "string", 0),
            ("Holder", "string", 0),
            ("Age", "string", 0),
        ],
        _ => &[("Name", "string", 0), ("Created At", "date", 0)],
    }
}

fn column_definitions(kind: &str) -> Value {
    Value::Array(
        columns(kind)
            .iter()
            .map(|(name, ty, priority)| {
                let format = if *name == "Name" { "name" } else { "" };
                json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
            })
            .collect(),
    )
}

/// A Table of `objects` (served versions of `rt`). `headers` is false for watch events after the first.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: Option<String>,
    continue_token: Option<String>,
    headers: bool,
) -> Value {
    let stored = resources::storage_type(rt);
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let canonical = if rt.is_view() {
                conversion::to_storage(rt, object.clone(), None)
            } else {
                object.clone()
            };
            json!({"cells": cells(stored.kind, &canonical, now), "object": partial_metadata(object)})
        })
        .collect();
    let mut metadata = json!({});
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = json!(rv);
    }
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    let definitions = if headers {
        column_definitions(stored.kind)
    } else {
        json!([])
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": definitions, "rows": rows})
}

/// The `PartialObjectMetadata` of an object (what Table rows carry, and what metadata-only clients ask for).
pub fn partial_metadata(object: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object.get("metadata").cloned().unwrap_or(json!({}))})
}

fn s<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn i(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// kubectl's `<unset>` for an empty EndpointSlice column.
fn or_unset(value: &str) -> String {
    if value.is_empty() {
        "<unset>".into()
    } else {
        value.into()
    }
}

fn or_none(value: &str) -> String {
    if value.is_empty() {
        "<none>".into()
    } else {
        value.into()
    }
}

fn age(object: &Value, pointer: &str, now: jiff::Timestamp) -> String {
    match object
        .pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    }
}

/// Upstream's `duration.HumanDuration`: short, with more precision for recent times.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn containers_and_images(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let names: Vec<&str> = containers.into_iter().flatten().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.into_iter().flatten().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn selector_text(selector: Option<&Value>) -> String {
    selector
        .and_then(|s| super::selectors::LabelSelector::from_label_selector(s).ok())
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into())
}

fn cells(kind: &str, o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = json!(s(o, "/metadata/name"));
    let created = age(o, "/metadata/creationTimestamp", now);
    match kind {
        "Pod" => pod_cells(o, now),
        "Deployment" => {
            let (containers, images) = containers_and_images(o.pointer("/spec/template/spec"));
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    i(o, "/status/readyReplicas"),
                    i(o, "/spec/replicas")
                )),
                json!(i(o, "/status/updatedReplicas")),
                json!(i(o, "/status/availableReplicas")),
                json!(created),
                json!(containers),
                json!(images),
                json!(selector_text(o.pointer("/spec/selector"))),
            ]
        }
        "ReplicaSet" => {
            let (containers, images) = containers_and_images(o.pointer("/spec/template/spec"));
            vec![
                name,
                json!(i(o, "/spec/replicas")),
                json!(i(o, "/status/replicas")),
                json!(i(o, "/status/readyReplicas")),
                json!(created),
                json!(containers),
                json!(images),
                json!(selector_text(o.pointer("/spec/selector"))),
            ]
        }
        "Service" => {
            let ports: Vec<String> = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let node_port = p
                        .get("nodePort")
                        .and_then(Value::as_i64)
                        .map(|n| format!(":{n}"))
                        .unwrap_or_default();
                    format!("{}{node_port}/{}", i(p, "/port"), s(p, "/protocol"))
                })
                .collect();
            let external: Vec<&str> = o
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let selector = o
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s(o, "/spec/type")),
                json!(or_none(s(o, "/spec/clusterIP"))),
                json!(or_none(&external.join(","))),
                json!(or_none(&ports.join(","))),
                json!(created),
                json!(or_none(&selector)),
            ]
        }
        "Endpoints" => {
            let mut endpoints = Vec::new();
            for subset in o.get("subsets").and_then(Value::as_array).into_iter().flatten() {
                for address in subset
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for port in subset
                        .get("ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        endpoints.push(format!("{}:{}", s(address, "/ip"), i(port, "/port")));
                    }
                }
            }
            let shown = if endpoints.len() > 3 {
                format!("{} + {} more...", endpoints[..3].join(","), endpoints.len() - 3)
            } else {
                endpoints.join(",")
            };
            vec![name, json!(or_none(&shown)), json!(created)]
        }
        "EndpointSlice" => {
            let ports: Vec<String> = o
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| i(p, "/port").to_string())
                .collect();
            let addresses: Vec<String> = o
                .get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|e| {
                    e.get("addresses")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            let shown = if addresses.len() > 3 {
                format!("{} + {} more...", addresses[..3].join(","), addresses.len() - 3)
            } else {
                addresses.join(",")
            };
            vec![
                name,
                json!(s(o, "/addressType")),
                json!(or_unset(&ports.join(","))),
                json!(or_unset(&shown)),
                json!(created),
            ]
        }
        "ConfigMap" => {
            let count = o.get("data").and_then(Value::as_object).map_or(0, |m| m.len())
                + o.get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(count), json!(created)]
        }
        "Secret" => {
            let count = o.get("data").and_then(Value::as_object).map_or(0, |m| m.len());
            vec![name, json!(s(o, "/type")), json!(count), json!(created)]
        }
        "Namespace" => vec![name, json!(s(o, "/status/phase")), json!(created)],
        "Node" => node_cells(o, created),
        "Event" => event_cells(o, now),
        "HorizontalPodAutoscaler" => vec![
            name,
            json!(format!(
                "{}/{}",
                s(o, "/spec/scaleTargetRef/kind"),
                s(o, "/spec/scaleTargetRef/name")
            )),
            json!(hpa_targets(o)),
            json!(
                o.pointer("/spec/minReplicas")
                    .and_then(Value::as_i64)
                    .map_or("<unset>".into(), |m| m.to_string())
            ),
            json!(i(o, "/spec/maxReplicas")),
            json!(i(o, "/status/currentReplicas")),
            json!(created),
        ],
        "Lease" => vec![name, json!(s(o, "/spec/holderIdentity")), json!(created)],
        _ => vec![name, json!(s(o, "/metadata/creationTimestamp"))],
    }
}

/// kubectl's pod row (`printers.go` `printPod`): init containers first (`Init:1/2`,
/// `Init:CrashLoopBackOff`), sidecars counted among the containers once started, then the app
/// containers' states.
fn pod_cells(o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let array =
        |pointer: &str| -> &[Value] { o.pointer(pointer).and_then(Value::as_array).map_or(&[], |v| v) };
    let statuses = array("/status/containerStatuses");
    let init_specs = array("/spec/initContainers");
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| s(c, "/name") == name && s(c, "/restartPolicy") == "Always")
    };
    let total = array("/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| s(c, "/restartPolicy") == "Always")
            .count();
    let mut reason = s(o, "/status/reason").to_string();
    if reason.is_empty() {
        reason = s(o, "/status/phase").to_string();
    }
    let terminated_reason = |t: &Value| {
        let r = s(t, "/reason");
        if !r.is_empty() {
            r.to_string()
        } else if i(t, "/signal") != 0 {
            format!("Signal:{}", i(t, "/signal"))
        } else {
            format!("ExitCode:{}", i(t, "/exitCode"))
        }
    };
    let finished = |status: &Value| {
        status
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    let later = |a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>| a.max(b);
    let mut ready = 0;
    let (mut restarts, mut last_restart) = (0, None);
    let (mut sidecar_restarts, mut sidecar_last_restart) = (0, None);
    let mut initializing = false;
    let init_statuses = array("/status/initContainerStatuses");
    for (index, status) in init_statuses.iter().enumerate() {
        restarts += i(status, "/restartCount");
        last_restart = later(last_restart, finished(status));
        let is_sidecar = sidecar(s(status, "/name"));
        if is_sidecar {
            sidecar_restarts += i(status, "/restartCount");
            sidecar_last_restart = later(sidecar_last_restart, finished(status));
        }
        let terminated = status.pointer("/state/terminated");
        let waiting = s(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| i(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && status.get("started").and_then(Value::as_bool) == Some(true) {
            if status.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = match terminated {
            Some(t) => format!("Init:{}", terminated_reason(t)),
            None if !waiting.is_empty() && waiting != "PodInitializing" => format!("Init:{waiting}"),
            None => format!("Init:{index}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }
    let initialized = array("/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "Initialized" && s(c, "/status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for status in statuses.iter().rev() {
            restarts += i(status, "/restartCount");
            last_restart = later(last_restart, finished(status));
            let waiting = s(status, "/state/waiting/reason");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = status.pointer("/state/terminated") {
                reason = terminated_reason(t);
            } else if status.get("ready").and_then(Value::as_bool) == Some(true)
                && status.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = array("/status/conditions")
                .iter()
                .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }
    let terminal = matches!(s(o, "/status/phase"), "Succeeded" | "Failed");
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        if s(o, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if !terminal {
            reason = "Terminating".into();
        }
    }
    let restarts_text = match last_restart {
        Some(at) if restarts > 0 => {
            format!(
                "{restarts} ({} ago)",
                human_duration(now.duration_since(at).as_secs())
            )
        }
        _ => restarts.to_string(),
    };
    let gates = o
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let gates_text = if gates == 0 {
        "<none>".to_string()
    } else {
        let conditions = o.pointer("/status/conditions").and_then(Value::as_array);
        let true_gates = o
            .pointer("/spec/readinessGates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|g| {
                conditions.into_iter().flatten().any(|c| {
                    c.get("type") == g.get("conditionType")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
            .count();
        format!("{true_gates}/{gates}")
    };
    vec![
        json!(s(o, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        json!(age(o, "/metadata/creationTimestamp", now)),
        json!(or_none(s(o, "/status/podIP"))),
        json!(or_none(s(o, "/spec/nodeName"))),
        json!(or_none(s(o, "/status/nominatedNodeName"))),
        json!(gates_text),
    ]
}

fn node_cells(o: &Value, created: String) -> Vec<Value> {
    let conditions = o.pointer("/status/conditions").and_then(Value::as_array);
    let ready = conditions
        .into_iter()
        .flatten()
        .find(|c| s(c, "/type") == "Ready")
        .map(|c| s(c, "/status"));
    let mut status = match ready {
        Some("True") => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/").map(str::to_string))
        .collect();
    roles.sort();
    let address = |kind: &str| {
        o.pointer("/status/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| s(a, "/type") == kind)
            .map(|a| s(a, "/address").to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    vec![
        json!(s(o, "/metadata/name")),
        json!(status),
        json!(or_none(&roles.join(","))),
        json!(created),
        json!(s(o, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(s(o, "/status/nodeInfo/osImage")),
        json!(s(o, "/status/nodeInfo/kernelVersion")),
        json!(s(o, "/status/nodeInfo/containerRuntimeVersion")),
    ]
}

fn event_cells(o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let first = ["/firstTimestamp", "/eventTime"]
        .iter()
        .find_map(|p| o.pointer(p).and_then(Value::as_str).filter(|t| !t.is_empty()));
    let last = ["/lastTimestamp", "/series/lastObservedTime", "/eventTime"]
        .iter()
        .find_map(|p| o.pointer(p).and_then(Value::as_str).filter(|t| !t.is_empty()));
    let since = |t: Option<&str>| match t.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    };
    let object = format!(
        "{}/{}",
        s(o, "/involvedObject/kind").to_lowercase(),
        s(o, "/involvedObject/name")
    );
    let component = [s(o, "/source/component"), s(o, "/reportingComponent")]
        .into_iter()
        .find(|c| !c.is_empty());
    let host = s(o, "/source/host");
    let source = match (component, host.is_empty()) {
        (Some(c), true) => c.to_string(),
        (Some(c), false) => format!("{c}, {host}"),
        (None, _) => String::new(),
    };
    let count = o
        .get("count")
        .and_then(Value::as_i64)
        .or_else(|| o.pointer("/series/count").and_then(Value::as_i64))
        .unwrap_or(1);
    vec![
        json!(since(last)),
        json!(s(o, "/type")),
        json!(s(o, "/reason")),
        json!(object),
        json!(s(o, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(o, "/message").trim()),
        json!(since(first)),
        json!(count.to_string()),
        json!(s(o, "/metadata/name")),
    ]
}

/// Upstream's `formatHPAMetrics` for autoscaling/v2.
fn hpa_targets(o: &Value) -> String {
    let specs: &[Value] = o
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .map_or(&[], |v| v);
    let current: &[Value] = o
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .map_or(&[], |v| v);
    if specs.is_empty() {
        return "<none>".into();
    }
    let unknown = "<unknown>".to_string();
    let mut list = Vec::new();
    for (n, spec) in specs.iter().enumerate() {
        let status = current.get(n);
        let text = match s(spec, "/type") {
            "Resource" | "ContainerResource" => {
                let source = if s(spec, "/type") == "Resource" {
                    "/resource"
                } else {
                    "/containerResource"
                };
                let name = s(spec, &format!("{source}/name"));
                let target = spec.pointer(&format!("{source}/target")).unwrap_or(&Value::Null);
                let cur = status.and_then(|st| st.pointer(&format!("{source}/current")));
                if let Some(util) = target.get("averageUtilization").and_then(Value::as_i64) {
                    let c = cur
                        .and_then(|c| c.get("averageUtilization"))
                        .and_then(Value::as_i64)
                        .map_or(unknown.clone(), |c| format!("{c}%"));
                    format!("{name}: {c}/{util}%")
                } else {
                    let t = s(target, "/averageValue");
                    let c = cur
                        .map(|c| s(c, "/averageValue"))
                        .filter(|c| !c.is_empty())
                        .map_or(unknown.clone(), str::to_string);
                    format!("{name}: {c}/{t}")
                }
            }
            "Pods" | "Object" | "External" => {
                let source = match s(spec, "/type") {
                    "Pods" => "/pods",
                    "Object" => "/object",
                    _ => "/external",
                };
                let target = spec.pointer(&format!("{source}/target")).unwrap_or(&Value::Null);
                let (field, suffix) = if target.get("averageValue").is_some() {
                    ("averageValue", " (avg)")
                } else {
                    ("value", "")
                };
                let t = s(target, &format!("/{field}"));
                let c = status
                    .and_then(|st| st.pointer(&format!("{source}/current/{field}")))
                    .and_then(Value::as_str)
                    .map_or(unknown.clone(), str::to_string);
                let suffix = if s(spec, "/type") == "Pods" { "" } else { suffix };
                format!("{c}/{t}{suffix}")
            }
            _ => unknown.clone(),
        };
        list.push(text);
    }
    if list.len() > 2 {
        let more = list.len() - 2;
        format!("{} + {more} more...", list[..2].join(", "))
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_upstream() {
        for (secs, text) in [
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (30 * 3600, "30h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
        ] {
            assert_eq!(human_duration(secs), text, "{secs}");
        }
    }

    #[test]
    fn pod_status_column_follows_container_states() {
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let cells = pod_cells(&pod, jiff::Timestamp::now());
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "2");
    }

    #[test]
    fn pod_row_shows_init_containers_and_counts_started_sidecars() {
        let now = jiff::Timestamp::now();
        let spec = json!({"initContainers": [{"name": "setup"}, {"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}]});
        let pod = |init: Value, app: Value, initialized: &str| {
            json!({"metadata": {"name": "p"}, "spec": spec,
                "status": {"phase": "Pending", "conditions": [{"type": "Initialized", "status": initialized}],
                    "initContainerStatuses": init, "containerStatuses": [app]}})
        };
        let app_waiting =
            json!({"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}});
        let running = pod(
            json!([{"name": "setup", "restartCount": 0, "state": {"running": {}}},
                   {"name": "proxy", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]),
            app_waiting.clone(),
            "False",
        );
        let cells = pod_cells(&running, now);
        assert_eq!((&cells[1], &cells[2]), (&json!("0/2"), &json!("Init:0/2")));
        let crashing = pod(
            json!([{"name": "setup", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
            app_waiting,
            "False",
        );
        let cells = pod_cells(&crashing, now);
        assert_eq!(
            (&cells[2], &cells[3]),
            (&json!("Init:CrashLoopBackOff"), &json!("3"))
        );
        let mut up = pod(
            json!([{"name": "setup", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                   {"name": "proxy", "restartCount": 1, "started": true, "ready": true, "state": {"running": {}}}]),
            json!({"name": "app", "restartCount": 0, "ready": false, "state": {"running": {}}}),
            "True",
        );
        up["status"]["phase"] = json!("Running");
        let cells = pod_cells(&up, now);
        assert_eq!(
            (&cells[1], &cells[2], &cells[3]),
            (&json!("1/2"), &json!("Running"), &json!("1"))
        );
    }

    #[test]
    fn hpa_targets_format() {
        let hpa = json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}});
        assert_eq!(hpa_targets(&hpa), "cpu: <unknown>/80%");
    }
}
