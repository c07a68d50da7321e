//! How the HPA reads metrics: through the API, from the three metrics APIs, as upstream's REST metrics
//! client does (k/k `pkg/controller/podautoscaler/metrics/client.go`; `spec/hpa.md` §1.10, §5.1).
//! Errors carry upstream's texts, which end up in conditions and events.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use serde::Deserialize;

use super::replicas::PodMetric;
use crate::scheduler::fit::milli_value;

/// A metric's window when the API does not say (`metricServerDefaultMetricWindow`).
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Where the HPA's metrics come from.
#[async_trait]
pub trait MetricsClient: Send + Sync {
    /// Per pod, the usage of `resource` (summed over containers, or of the one `container`), from
    /// metrics.k8s.io.
    async fn resource(
        &self,
        namespace: &str,
        selector: &str,
        resource: &str,
        container: Option<&str>,
    ) -> Result<BTreeMap<String, PodMetric>, String>;

    /// Per pod, a custom metric from custom.metrics.k8s.io.
    async fn pods(
        &self,
        namespace: &str,
        selector: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<BTreeMap<String, PodMetric>, String>;

    /// One object's custom metric.
    async fn object(
        &self,
        namespace: &str,
        object: &CrossVersionObjectReference,
        metric: &str,
        metric_selector: &str,
    ) -> Result<i64, String>;

    /// Every series of an external metric, from external.metrics.k8s.io.
    async fn external(
        &self,
        namespace: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<i64>, String>;
}

/// The metrics APIs as served by the API server (and whatever serves them behind it).
pub struct ApiMetrics {
    pub client: kube::Client,
}

#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct PodMetrics {
    metadata: Meta,
    timestamp: String,
    #[serde(default)]
    window: String,
    #[serde(default)]
    containers: Vec<ContainerMetrics>,
}

#[derive(Deserialize)]
struct ContainerMetrics {
    name: String,
    #[serde(default)]
    usage: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribedObject {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricValue {
    described_object: DescribedObject,
    timestamp: String,
    window_seconds: Option<i64>,
    value: String,
}

#[derive(Deserialize)]
struct ExternalMetricValue {
    value: String,
}

/// A duration as Go prints it (`1m30s`, `1.5s`, `900ms`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(split);
        let number: f64 = number.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        total += number
            * match unit {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" | "µs" => 1e-6,
                "ns" => 1e-9,
                _ => return None,
            };
        rest = tail;
    }
    Duration::try_from_secs_f64(total).ok()
}

fn quantity(text: &str) -> Result<i64, String> {
    milli_value(text)
        .map(|v| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
        .ok_or_else(|| format!("{text:?} is not a quantity"))
}

fn timestamp(text: &str) -> jiff::Timestamp {
    text.parse().unwrap_or_else(|_| jiff::Timestamp::now())
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `?labelSelector=…&metricLabelSelector=…`, empty selectors left out.
fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

impl ApiMetrics {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: String) -> Result<T, String> {
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        self.client
            .request::<T>(request)
            .await
            .map_err(super::api_message)
    }
}

#[async_trait]
impl MetricsClient for ApiMetrics {
    async fn resource(
        &self,
        namespace: &str,
        selector: &str,
        resource: &str,
        container: Option<&str>,
    ) -> Result<BTreeMap<String, PodMetric>, String> {
        let list: List<PodMetrics> = self
            .get(format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods{}",
                query(&[("labelSelector", selector)])
            ))
            .await
            .map_err(|e| format!("unable to fetch metrics from resource metrics API: {e}"))?;
        if list.items.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        let mut out = BTreeMap::new();
        for pod in list.items {
            let value = match container {
                // `getContainerMetrics`: the container must be there.
                Some(name) => {
                    let found = pod.containers.iter().find(|c| c.name == name).ok_or_else(|| {
                        format!(
                            "container {name} not present in metrics for pod {namespace}/{}",
                            pod.metadata.name
                        )
                    })?;
                    found.usage.get(resource).map(|q| quantity(q)).transpose()?
                }
                // `getPodMetrics`: a pod without containers, or with one lacking the resource, is missing.
                None if pod.containers.is_empty() => None,
                None => {
                    let mut sum = Some(0i64);
                    for c in &pod.containers {
                        sum = match (sum, c.usage.get(resource)) {
                            (Some(s), Some(q)) => Some(s.saturating_add(quantity(q)?)),
                            _ => None,
                        };
                    }
                    sum
                }
            };
            if let Some(value_milli) = value {
                out.insert(
                    pod.metadata.name,
                    PodMetric {
                        value_milli,
                        timestamp: timestamp(&pod.timestamp),
                        window: go_duration(&pod.window).unwrap_or(DEFAULT_WINDOW),
                    },
                );
            }
        }
        Ok(out)
    }

    async fn pods(
        &self,
        namespace: &str,
        selector: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<BTreeMap<String, PodMetric>, String> {
        let list: List<MetricValue> = self
            .get(format!(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/pods/*/{metric}{}",
                query(&[
                    ("labelSelector", selector),
                    ("metricLabelSelector", metric_selector)
                ])
            ))
            .await
            .map_err(|e| format!("unable to fetch metrics from custom metrics API: {e}"))?;
        if list.items.is_empty() {
            return Err("no metrics returned from custom metrics API".into());
        }
        list.items
            .into_iter()
            .map(|item| {
                Ok((
                    item.described_object.name,
                    PodMetric {
                        value_milli: quantity(&item.value)?,
                        timestamp: timestamp(&item.timestamp),
                        window: item
                            .window_seconds
                            .map_or(DEFAULT_WINDOW, |s| Duration::from_secs(s.max(0) as u64)),
                    },
                ))
            })
            .collect()
    }

    async fn object(
        &self,
        namespace: &str,
        object: &CrossVersionObjectReference,
        metric: &str,
        metric_selector: &str,
    ) -> Result<i64, String> {
        let group = object
            .api_version
            .as_deref()
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(g, _)| g);
        let path = if object.kind == "Namespace" && group.is_empty() {
            format!("/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/metrics/{metric}")
        } else {
            let rt = super::resource_of(group, None, &object.kind, false)
                .ok_or_else(|| format!("no matches for kind {:?} in group {group:?}", object.kind))?;
            let resource = if group.is_empty() {
                rt.plural.to_string()
            } else {
                format!("{}.{group}", rt.plural)
            };
            format!(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/{resource}/{}/{metric}",
                object.name
            )
        };
        let list: List<MetricValue> = self
            .get(format!(
                "{path}{}",
                query(&[("metricLabelSelector", metric_selector)])
            ))
            .await
            .map_err(|e| format!("unable to fetch metrics from custom metrics API: {e}"))?;
        match list.items.as_slice() {
            [one] => quantity(&one.value),
            items => Err(format!(
                "unable to fetch metrics from custom metrics API: returned {} results when we asked for exactly one",
                items.len()
            )),
        }
    }

    async fn external(
        &self,
        namespace: &str,
        metric: &str,
        metric_selector: &str,
    ) -> Result<Vec<i64>, String> {
        let list: List<ExternalMetricValue> = self
            .get(format!(
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}{}",
                query(&[("labelSelector", metric_selector)])
            ))
            .await
            .map_err(|e| format!("unable to fetch metrics from external metrics API: {e}"))?;
        if list.items.is_empty() {
            return Err("no metrics returned from external metrics API".into());
        }
        list.items.iter().map(|i| quantity(&i.value)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_queries() {
        assert_eq!(go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("900ms"), Some(Duration::from_millis(900)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration("soon"), None);
        assert_eq!(
            query(&[("labelSelector", "app=web"), ("metricLabelSelector", "")]),
            "?labelSelector=app%3Dweb"
        );
        assert_eq!(query(&[("labelSelector", "")]), "");
    }
}
