//! `external.metrics.k8s.io/v1beta1` from configured sources (`spec/hpa.md` §5): a PromQL query to a
//! Prometheus server's HTTP API, or an HTTP endpoint answering JSON. The HPA's metric selector is passed
//! through: as PromQL matchers in place of `<<.LabelMatchers>>` (with the namespace, unless the source is
//! not `namespaced`), or as a `labelSelector` parameter to HTTP sources and applied to what they answer.
//!
//! Routes (under `/apis/external.metrics.k8s.io`): `/{version}` lists the configured metrics;
//! `/{version}/namespaces/{ns}/{metric}?labelSelector=…` answers an `ExternalMetricValueList`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Directory, LabelRequirement, failed, quantity, requirements, status};
use crate::config::ExternalSource;
use crate::custom::selected;

const GROUP: &str = "external.metrics.k8s.io";
const VERSION: &str = "v1beta1";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// One value of an external metric.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalValue {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub time: jiff::Timestamp,
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn regex_escape(value: &str) -> String {
    regex::escape(value).replace('\\', "\\\\").replace('"', "\\\"")
}

/// The selector (and the namespace) as PromQL label matchers.
pub fn label_matchers(requirements: &[LabelRequirement], namespace: Option<&str>) -> String {
    let mut matchers: Vec<String> = namespace
        .map(|ns| format!("namespace=\"{}\"", escape(ns)))
        .into_iter()
        .collect();
    for r in requirements {
        matchers.push(match r {
            LabelRequirement::In(k, v) if v.len() == 1 => format!("{k}=\"{}\"", escape(&v[0])),
            LabelRequirement::NotIn(k, v) if v.len() == 1 => format!("{k}!=\"{}\"", escape(&v[0])),
            LabelRequirement::In(k, v) => {
                let alternatives: Vec<String> = v.iter().map(|v| regex_escape(v)).collect();
                format!("{k}=~\"{}\"", alternatives.join("|"))
            }
            LabelRequirement::NotIn(k, v) => {
                let alternatives: Vec<String> = v.iter().map(|v| regex_escape(v)).collect();
                format!("{k}!~\"{}\"", alternatives.join("|"))
            }
            LabelRequirement::Exists(k) => format!("{k}!=\"\""),
            LabelRequirement::DoesNotExist(k) => format!("{k}=\"\""),
        });
    }
    matchers.join(",")
}

#[derive(Deserialize)]
struct PromResponse {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<PromData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromData {
    result_type: String,
    result: Value,
}

/// `[unix seconds, "value"]`.
fn prom_point(point: &Value) -> Option<(jiff::Timestamp, f64)> {
    let seconds = point.get(0)?.as_f64()?;
    let value: f64 = point.get(1)?.as_str()?.parse().ok()?;
    Some((
        jiff::Timestamp::from_millisecond((seconds * 1000.0) as i64).ok()?,
        value,
    ))
}

/// A Prometheus `/api/v1/query` answer as values.
fn prometheus_values(body: PromResponse) -> Result<Vec<ExternalValue>, String> {
    if body.status != "success" {
        return Err(format!("prometheus: {}", body.error.unwrap_or(body.status)));
    }
    let data = body.data.ok_or("prometheus answered no data")?;
    match data.result_type.as_str() {
        "vector" => data
            .result
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let (time, value) =
                    prom_point(&r["value"]).ok_or("prometheus answered a malformed sample")?;
                let labels = r["metric"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| k.as_str() != "__name__")
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                Ok(ExternalValue { labels, value, time })
            })
            .collect(),
        "scalar" => {
            let (time, value) = prom_point(&data.result).ok_or("prometheus answered a malformed scalar")?;
            Ok(vec![ExternalValue {
                labels: BTreeMap::new(),
                value,
                time,
            }])
        }
        other => Err(format!(
            "the query gives a {other}, not an instant vector or a scalar"
        )),
    }
}

/// What an HTTP source answers: a number, `{"value": n}` or `{"items": [{"labels", "value"}]}`.
fn http_values(body: &Value) -> Result<Vec<ExternalValue>, String> {
    let now = jiff::Timestamp::now();
    let number = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    if let Some(value) = number(body).or_else(|| body.get("value").and_then(number)) {
        return Ok(vec![ExternalValue {
            labels: BTreeMap::new(),
            value,
            time: now,
        }]);
    }
    let items = body
        .get("items")
        .and_then(Value::as_array)
        .ok_or("the endpoint answered neither a number, {\"value\"} nor {\"items\"}")?;
    items
        .iter()
        .map(|item| {
            let value = item
                .get("value")
                .and_then(number)
                .ok_or("an item has no numeric \"value\"")?;
            let labels = item
                .get("labels")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect();
            Ok(ExternalValue {
                labels,
                value,
                time: now,
            })
        })
        .collect()
}

#[derive(Clone)]
struct Served {
    sources: Arc<Vec<ExternalSource>>,
    client: reqwest::Client,
    directory: Arc<dyn Directory>,
}

impl Served {
    /// Asks `source` for its values in `namespace`, selected by `requirements` (`selector` as given).
    async fn values(
        &self,
        source: &ExternalSource,
        namespace: &str,
        selector: &str,
        requirements: &[LabelRequirement],
    ) -> Result<Vec<ExternalValue>, String> {
        let timeout = source
            .timeout_seconds
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        let values = if let Some(prom) = &source.prometheus {
            let matchers = label_matchers(requirements, source.namespaced.then_some(namespace));
            let query = prom.query.replace("<<.LabelMatchers>>", &matchers);
            let url = format!("{}/api/v1/query", prom.url.trim_end_matches('/'));
            let response = self
                .client
                .get(&url)
                .query(&[("query", query.as_str())])
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| format!("querying {url}: {e}"))?;
            let body: PromResponse = response
                .json()
                .await
                .map_err(|e| format!("reading the answer of {url}: {e}"))?;
            prometheus_values(body)?
        } else if let Some(http) = &source.http {
            let response = self
                .client
                .get(&http.url)
                .query(&[("namespace", namespace), ("labelSelector", selector)])
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| format!("querying {}: {e}", http.url))?;
            if !response.status().is_success() {
                return Err(format!("{} answered {}", http.url, response.status()));
            }
            let body: Value = response
                .json()
                .await
                .map_err(|e| format!("reading the answer of {}: {e}", http.url))?;
            // The endpoint may have ignored the selector: apply it (a PromQL query has it as matchers,
            // and its aggregations drop the labels it would be applied to).
            http_values(&body)?
                .into_iter()
                .filter(|v| selected(requirements, &v.labels))
                .collect()
        } else {
            Vec::new()
        };
        Ok(values.into_iter().filter(|v| v.value.is_finite()).collect())
    }
}

/// The router to nest at `/apis/external.metrics.k8s.io`.
pub fn router(sources: Vec<ExternalSource>, directory: Arc<dyn Directory>) -> Router {
    Router::new()
        .route("/", get(|| async { crate::api::api_group(GROUP, VERSION) }))
        .route("/{version}", get(resources))
        .route("/{version}/namespaces/{namespace}/{metric}", get(metric))
        .with_state(Served {
            sources: Arc::new(sources),
            client: reqwest::Client::new(),
            directory,
        })
}

async fn resources(State(served): State<Served>, Path(version): Path<String>) -> Response {
    if let Some(response) = crate::api::unknown_version(&version, VERSION) {
        return response;
    }
    let resources: Vec<Value> = served
        .sources
        .iter()
        .map(|s| json!({"name": s.name, "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": ["get"]}))
        .collect();
    axum::Json(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": resources,
    }))
    .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    label_selector: Option<String>,
}

async fn metric(
    State(served): State<Served>,
    Path((version, namespace, metric)): Path<(String, String, String)>,
    Query(params): Query<Params>,
) -> Response {
    if let Some(response) = crate::api::unknown_version(&version, VERSION) {
        return response;
    }
    let Some(source) = served.sources.iter().find(|s| s.name == metric) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find the external metric {metric}: no source is configured for it"),
        );
    };
    let selector = params.label_selector.unwrap_or_default();
    let requirements = match requirements(served.directory.as_ref(), Some(&selector)) {
        Ok(r) => r,
        Err(failure) => return failed(failure),
    };
    match served.values(source, &namespace, &selector, &requirements).await {
        Ok(values) => {
            let items: Vec<Value> = values
                .into_iter()
                .map(|v| {
                    json!({
                        "metricName": metric,
                        "metricLabels": v.labels,
                        "timestamp": v.time.round(jiff::Unit::Second).unwrap_or(v.time).to_string(),
                        "value": quantity(v.value),
                    })
                })
                .collect();
            axum::Json(json!({
                "kind": "ExternalMetricValueList", "apiVersion": format!("{GROUP}/{VERSION}"),
                "metadata": {}, "items": items,
            }))
            .into_response()
        }
        Err(message) => status(503, "ServiceUnavailable", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_promql_matchers() {
        let requirements = vec![
            LabelRequirement::In("queue".into(), vec!["a".into()]),
            LabelRequirement::In("tier".into(), vec!["x.y".into(), "z".into()]),
            LabelRequirement::NotIn("env".into(), vec!["dev".into()]),
            LabelRequirement::Exists("owner".into()),
            LabelRequirement::DoesNotExist("canary".into()),
        ];
        assert_eq!(
            label_matchers(&requirements, Some("default")),
            r#"namespace="default",queue="a",tier=~"x\\.y|z",env!="dev",owner!="",canary="""#
        );
        assert_eq!(label_matchers(&[], None), "");
    }

    #[test]
    fn prometheus_and_http_answers() {
        let body: PromResponse =
            serde_json::from_value(json!({"status": "success", "data": {"resultType": "vector",
            "result": [{"metric": {"__name__": "q", "queue": "a"}, "value": [1800000000.5, "42.5"]}]}}))
            .unwrap();
        let values = prometheus_values(body).unwrap();
        assert_eq!(values[0].value, 42.5);
        assert_eq!(
            values[0].labels,
            BTreeMap::from([("queue".to_string(), "a".to_string())])
        );
        let error: PromResponse = serde_json::from_value(
            json!({"status": "error", "errorType": "bad_data", "error": "parse error"}),
        )
        .unwrap();
        assert_eq!(prometheus_values(error).unwrap_err(), "prometheus: parse error");
        let matrix: PromResponse = serde_json::from_value(
            json!({"status": "success", "data": {"resultType": "matrix", "result": []}}),
        )
        .unwrap();
        assert!(prometheus_values(matrix).is_err());
        assert_eq!(http_values(&json!(7)).unwrap()[0].value, 7.0);
        assert_eq!(http_values(&json!({"value": "3.5"})).unwrap()[0].value, 3.5);
        let items = http_values(
            &json!({"items": [{"labels": {"q": "a"}, "value": 1}, {"labels": {"q": "b"}, "value": 2}]}),
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert!(http_values(&json!({"nothing": 1})).is_err());
        assert_eq!(quantity(1.5), "1500m");
        assert_eq!(quantity(42.0), "42");
    }
}
