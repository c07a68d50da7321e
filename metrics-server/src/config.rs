//! The `metrics` section of the config file: which scraped series become custom metrics (rules in
//! prometheus-adapter's shape, `spec/hpa.md` §5.3) and where external metrics come from.
//!
//! ```yaml
//! metrics:
//!   rules:
//!   - seriesQuery: 'http_requests_total{path!="/healthz"}'
//!     seriesFilters: [{isNot: "^go_.*"}]
//!     resources: {overrides: {deployment: {group: apps, resource: deployments}}}
//!     name: {matches: "^(.*)_total$", as: "${1}_per_second"}
//!   external:
//!   - name: queue_depth
//!     prometheus: {url: "http://127.0.0.1:9090", query: 'sum(queue_depth{<<.LabelMatchers>>})'}
//!   - name: backlog
//!     http: {url: "http://127.0.0.1:8000/backlog"}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsConfig {
    /// Custom metrics from the pods' scraped series.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// External metrics, by name.
    #[serde(default)]
    pub external: Vec<ExternalSource>,
}

/// One custom-metrics rule (prometheus-adapter's `rules[]`, without `metricsQuery`: values are summed,
/// counters turned into per-second rates over the last two scrapes).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    /// A series selector: `name{label="v", label=~"re", label!="v", label!~"re"}`.
    pub series_query: String,
    #[serde(default)]
    pub series_filters: Vec<SeriesFilter>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub name: NameRule,
}

/// `is` / `isNot`: a regex the series name must (not) match.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeriesFilter {
    pub is: Option<String>,
    pub is_not: Option<String>,
}

/// Which series labels name which Kubernetes objects (besides the scraped pod and its namespace).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    #[serde(default)]
    pub overrides: BTreeMap<String, GroupResource>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupResource {
    #[serde(default)]
    pub group: String,
    pub resource: String,
}

/// The metric's name: `matches` (a regex, default `.*`), renamed `as` (default `$1` when it has a group,
/// else `$0`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NameRule {
    pub matches: Option<String>,
    #[serde(rename = "as")]
    pub as_: Option<String>,
}

/// One external metric.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalSource {
    pub name: String,
    /// Whether the HPA's namespace becomes a `namespace` matcher of the query. Default: true.
    #[serde(default = "yes")]
    pub namespaced: bool,
    pub prometheus: Option<PrometheusSource>,
    pub http: Option<HttpSource>,
    /// How long a query may take, in seconds. Default: 5.
    pub timeout_seconds: Option<u64>,
}

fn yes() -> bool {
    true
}

/// A PromQL query against a Prometheus server's HTTP API. `<<.LabelMatchers>>` in the query becomes the
/// HPA's metric selector as matchers (and the namespace's, when `namespaced`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusSource {
    pub url: String,
    pub query: String,
}

/// An HTTP endpoint answering JSON: a number, `{"value": n}`, or `{"items": [{"labels": {…}, "value": n}]}`.
/// It is called with `?namespace=…&labelSelector=…`; items are also filtered by the selector here.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSource {
    pub url: String,
}

impl MetricsConfig {
    /// Every problem, at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if let Err(e) = crate::custom::CompiledRule::new(rule) {
                problems.push(format!("metrics.rules[{i}]: {e}"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, source) in self.external.iter().enumerate() {
            let at = format!("metrics.external[{i}]");
            if source.name.is_empty()
                || !source
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
            {
                problems.push(format!("{at}.name: {:?} is not a metric name", source.name));
            }
            if !names.insert(source.name.as_str()) {
                problems.push(format!("{at}.name: {:?} is named twice", source.name));
            }
            let url = match (&source.prometheus, &source.http) {
                (Some(p), None) => &p.url,
                (None, Some(h)) => &h.url,
                _ => {
                    problems.push(format!("{at}: set exactly one of prometheus and http"));
                    continue;
                }
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!("{at}: {url:?} is not an http(s) URL"));
            }
            if source.timeout_seconds == Some(0) {
                problems.push(format!("{at}.timeoutSeconds: must be at least 1"));
            }
        }
        problems
    }
}
