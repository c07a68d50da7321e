//! `metrics.k8s.io/v1beta1`, served under `/apis/metrics.k8s.io` behind the API server's token:
//! its discovery documents, `nodes` and `pods` (get and list, label selectors), in metrics-server's
//! JSON shapes (`spec/hpa.md` §4.1).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::{Store, Usage};

const GROUP: &str = "metrics.k8s.io";
const VERSION: &str = "v1beta1";

/// A pod or node as the API has it (for names and labels).
#[derive(Clone, Debug, Default)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A failed lookup: the status code and message to answer with.
pub type Failure = (u16, String);

/// One requirement of a parsed label selector (`k=v` is `In(k, [v])`, `k!=v` is `NotIn(k, [v])`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRequirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

type Lookup<'a, T> = Pin<Box<dyn Future<Output = Result<Vec<T>, Failure>> + Send + 'a>>;

/// Where pods and nodes are listed (the API, through a client).
pub trait Directory: Send + Sync {
    /// Pods of `namespace` (all when `None`) matching `selector`.
    fn pods<'a>(&'a self, namespace: Option<&'a str>, selector: Option<&'a str>) -> Lookup<'a, PodMeta>;
    /// Nodes matching `selector` (their `namespace` empty).
    fn nodes<'a>(&'a self, selector: Option<&'a str>) -> Lookup<'a, PodMeta>;
    /// A label selector's requirements, parsed as the API server parses them (400 when it is not one).
    fn parse_selector(&self, selector: &str) -> Result<Vec<LabelRequirement>, Failure>;
}

#[derive(Clone)]
struct Served {
    store: Store,
    directory: Arc<dyn Directory>,
}

/// The router to nest at `/apis/metrics.k8s.io`.
pub fn router(store: Store, directory: Arc<dyn Directory>) -> Router {
    Router::new()
        .route("/", get(|| async { api_group(GROUP, VERSION) }))
        .route("/{version}", get(resources))
        .route("/{version}/nodes", get(list_nodes))
        .route("/{version}/nodes/{name}", get(get_node))
        .route("/{version}/pods", get(list_all_pods))
        .route("/{version}/namespaces/{namespace}/pods", get(list_pods))
        .route("/{version}/namespaces/{namespace}/pods/{name}", get(get_pod))
        .with_state(Served { store, directory })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    label_selector: Option<String>,
}

pub(crate) fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

/// A selector's requirements (none when it is absent or empty).
pub(crate) fn requirements(
    directory: &dyn Directory,
    selector: Option<&str>,
) -> Result<Vec<LabelRequirement>, Failure> {
    match selector.filter(|s| !s.is_empty()) {
        Some(text) => directory.parse_selector(text),
        None => Ok(Vec::new()),
    }
}

pub(crate) fn failed((code, message): Failure) -> Response {
    let reason = match code {
        400 => "BadRequest",
        404 => "NotFound",
        _ => "InternalError",
    };
    status(code, reason, message)
}

fn not_found(kind: &str, name: &str) -> Response {
    status(404, "NotFound", format!("{kind}.{GROUP} \"{name}\" not found"))
}

/// A group's `APIGroup` document, with its one version.
pub(crate) fn api_group(group: &str, version: &str) -> Response {
    let version = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    axum::Json(json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": group,
        "versions": [version.clone()], "preferredVersion": version,
    }))
    .into_response()
}

/// A value as a quantity to the thousandth (`1500m`, `42`), as custom and external metrics serve them.
pub(crate) fn quantity(value: f64) -> String {
    let milli = (value * 1000.0).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64;
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

async fn resources(Path(version): Path<String>) -> Response {
    if let Some(response) = unknown_version(&version, VERSION) {
        return response;
    }
    axum::Json(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    }))
    .into_response()
}

/// A 404 for a version other than the one served.
pub(crate) fn unknown_version(version: &str, served: &str) -> Option<Response> {
    (version != served).then(|| {
        status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        )
    })
}

/// Bytes as a BinarySI quantity (`732212Ki`), CPU in nanocores (`487558164n`).
fn memory_quantity(bytes: u64) -> String {
    for (suffix, unit) in [
        ("Ei", 1u64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// A window as Go's `time.Duration` prints it (`1s`, `1.5s`, `900ms`).
fn go_duration(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < std::time::Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        let ms = d.as_millis();
        let fraction = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, fraction.trim_end_matches('0'))
    }
}

fn usage(u: &Usage) -> Value {
    json!({"cpu": format!("{}n", u.nanocores), "memory": memory_quantity(u.memory_bytes)})
}

fn metadata(name: &str, namespace: Option<&str>, labels: &BTreeMap<String, String>) -> Value {
    let mut meta = json!({"name": name, "creationTimestamp": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_default().to_string()});
    if let Some(namespace) = namespace {
        meta["namespace"] = json!(namespace);
    }
    if !labels.is_empty() {
        meta["labels"] = json!(labels);
    }
    meta
}

fn node_metrics(store: &Store, node: &PodMeta) -> Option<Value> {
    if node.name != store.node_name() {
        return None;
    }
    let u = store.node()?;
    Some(json!({
        "kind": "NodeMetrics", "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(&node.name, None, &node.labels),
        "timestamp": u.timestamp.round(jiff::Unit::Second).unwrap_or_default().to_string(),
        "window": go_duration(u.window),
        "usage": usage(&u),
    }))
}

fn pod_metrics(store: &Store, pod: &PodMeta) -> Option<Value> {
    let containers = store.pod(&pod.namespace, &pod.name)?;
    let earliest = containers.iter().map(|(_, u)| u).min_by_key(|u| u.timestamp)?;
    Some(json!({
        "kind": "PodMetrics", "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(&pod.name, Some(&pod.namespace), &pod.labels),
        "timestamp": earliest.timestamp.round(jiff::Unit::Second).unwrap_or_default().to_string(),
        "window": go_duration(earliest.window),
        "containers": containers.iter().map(|(name, u)| json!({"name": name, "usage": usage(u)})).collect::<Vec<_>>(),
    }))
}

fn list(kind: &str, items: Vec<Value>) -> Response {
    axum::Json(json!({
        "kind": kind, "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items,
    }))
    .into_response()
}

async fn list_nodes(
    State(s): State<Served>,
    Path(version): Path<String>,
    Query(q): Query<ListParams>,
) -> Response {
    if let Some(response) = unknown_version(&version, VERSION) {
        return response;
    }
    match s.directory.nodes(q.label_selector.as_deref()).await {
        Ok(nodes) => list(
            "NodeMetricsList",
            nodes.iter().filter_map(|n| node_metrics(&s.store, n)).collect(),
        ),
        Err(e) => failed(e),
    }
}

async fn get_node(State(s): State<Served>, Path((version, name)): Path<(String, String)>) -> Response {
    if let Some(response) = unknown_version(&version, VERSION) {
        return response;
    }
    let nodes = match s.directory.nodes(None).await {
        Ok(nodes) => nodes,
        Err(e) => return failed(e),
    };
    match nodes
        .iter()
        .find(|n| n.name == name)
        .and_then(|n| node_metrics(&s.store, n))
    {
        Some(metrics) => axum::Json(metrics).into_response(),
        None => not_found("nodemetrics", &name),
    }
}

async fn pods_of(s: &Served, namespace: Option<&str>, selector: Option<&str>) -> Response {
    match s.directory.pods(namespace, selector).await {
        Ok(mut pods) => {
            pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            list(
                "PodMetricsList",
                pods.iter().filter_map(|p| pod_metrics(&s.store, p)).collect(),
            )
        }
        Err(e) => failed(e),
    }
}

async fn list_all_pods(
    State(s): State<Served>,
    Path(version): Path<String>,
    Query(q): Query<ListParams>,
) -> Response {
    if let Some(response) = unknown_version(&version, VERSION) {
        return response;
    }
    pods_of(&s, None, q.label_selector.as_deref()).await
}

async fn list_pods(
    State(s): State<Served>,
    Path((version, namespace)): Path<(String, String)>,
    Query(q): Query<ListParams>,
) -> Response {
    if let Some(response) = unknown_version(&version, VERSION) {
        return response;
    }
    pods_of(&s, Some(&namespace), q.label_selector.as_deref()).await
}

async fn get_pod(
    State(s): State<Served>,
    Path((version, namespace, name)): Path<(String, String, String)>,
) -> Response {
    if let Some(response) = unknown_version(&version, VERSION) {
        return response;
    }
    let pods = match s.directory.pods(Some(&namespace), None).await {
        Ok(pods) => pods,
        Err(e) => return failed(e),
    };
    match pods
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| pod_metrics(&s.store, p))
    {
        Some(metrics) => axum::Json(metrics).into_response(),
        None => not_found("podmetrics", &name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_windows_as_upstream_prints_them() {
        assert_eq!(memory_quantity(732212 * 1024), "732212Ki");
        assert_eq!(memory_quantity(1 << 30), "1Gi");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(go_duration(std::time::Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(std::time::Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(std::time::Duration::from_millis(900)), "900ms");
    }
}
