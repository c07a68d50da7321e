//! The shipper's configuration: the `events:` section of Glasshouse's config file.
//!
//! ```yaml
//! events:
//!   sinks:
//!     ops:
//!       webhook: {url: "http://127.0.0.1:9000/hook", bearerToken: s3cret, maxBatch: 100}
//!     audit:
//!       file: {path: /var/log/glasshouse/events.jsonl, maxSizeMiB: 100, maxFiles: 5}
//!     counts:
//!       prometheus: {}
//!   routes:
//!     - match: {type: Warning, reason: "^(BackOff|Unhealthy)$"}
//!       sinks: [ops]
//!     - sinks: [audit, counts]          # no match: every event
//!   drop:
//!     - {namespace: kube-system}
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The `events:` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShipperConfig {
    /// Where events go, by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Which events go where: an event goes to the sinks of every route it matches.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Events matching any of these go nowhere.
    #[serde(default)]
    pub drop: Vec<MatchConfig>,
    /// Events a sink has not taken within this many seconds of their arrival are dropped (and counted).
    /// Default: 86400 (a day).
    #[serde(default = "default_max_retry_age_seconds")]
    pub max_retry_age_seconds: u64,
    /// Events waiting on disk per sink; more are dropped (and counted). Default: 1,000,000.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: u64,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        ShipperConfig {
            sinks: BTreeMap::new(),
            routes: Vec::new(),
            drop: Vec::new(),
            max_retry_age_seconds: default_max_retry_age_seconds(),
            queue_capacity: default_queue_capacity(),
        }
    }
}

fn default_max_retry_age_seconds() -> u64 {
    86_400
}

fn default_queue_capacity() -> u64 {
    1_000_000
}

/// One sink: exactly one of the kinds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SinkConfig {
    pub webhook: Option<WebhookConfig>,
    pub file: Option<FileConfig>,
    pub otlp: Option<OtlpConfig>,
    pub prometheus: Option<PrometheusConfig>,
    pub log_index: Option<LogIndexConfig>,
}

/// The kind of a sink, with its settings.
#[derive(Clone, Copy, Debug)]
pub enum SinkKind<'a> {
    Webhook(&'a WebhookConfig),
    File(&'a FileConfig),
    Otlp(&'a OtlpConfig),
    Prometheus(&'a PrometheusConfig),
    LogIndex(&'a LogIndexConfig),
}

impl SinkConfig {
    /// The one kind this sink is.
    pub fn kind(&self) -> Result<SinkKind<'_>, String> {
        let kinds: Vec<SinkKind> = [
            self.webhook.as_ref().map(SinkKind::Webhook),
            self.file.as_ref().map(SinkKind::File),
            self.otlp.as_ref().map(SinkKind::Otlp),
            self.prometheus.as_ref().map(SinkKind::Prometheus),
            self.log_index.as_ref().map(SinkKind::LogIndex),
        ]
        .into_iter()
        .flatten()
        .collect();
        match kinds.as_slice() {
            [kind] => Ok(*kind),
            [] => Err("name the sink's kind: webhook, file, otlp, prometheus or logIndex".into()),
            _ => Err("a sink is one kind: webhook, file, otlp, prometheus or logIndex".into()),
        }
    }
}

/// POSTs batches of events as JSON.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookConfig {
    /// `http://` or `https://` (trusting the system's roots, or `caFile`).
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// Sent as HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// A PEM file of CAs to trust for `https://`.
    pub ca_file: Option<PathBuf>,
    /// Renders each event instead of the default record: `{{path}}` is replaced by the JSON value at that
    /// dotted path of the record (`deliveryId`, `event.reason`, `event.involvedObject.name`, …). The result
    /// must be JSON.
    pub body_template: Option<String>,
    /// Events per request at most. Default: 100.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// How long a request may take. Default: 10.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

fn default_max_batch() -> usize {
    100
}

fn default_timeout_seconds() -> u64 {
    10
}

/// Appends events as JSON lines, rotating by size.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileConfig {
    pub path: PathBuf,
    /// The file is rotated (to `PATH.1`, `PATH.2`, …) when it would grow past this. Default: 100.
    #[serde(default = "default_max_size_mib")]
    #[serde(rename = "maxSizeMiB")]
    pub max_size_mib: u64,
    /// Rotated files kept besides the current one. Default: 5.
    #[serde(default = "default_max_files")]
    pub max_files: u32,
}

fn default_max_size_mib() -> u64 {
    100
}

fn default_max_files() -> u32 {
    5
}

/// Indexes events in the log pipeline's index, beside the logs (where the process has one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogIndexConfig {}

/// Exports events as OpenTelemetry log records.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OtlpConfig {
    /// The collector: `http://HOST:4317` for gRPC, `http://HOST:4318` (`/v1/logs` is added when the URL
    /// has no path) for HTTP.
    pub endpoint: String,
    /// Default: `grpc`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Extra request headers (gRPC metadata).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long an export may take. Default: 10.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum OtlpProtocol {
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "http/json")]
    HttpJson,
}

/// Counts events in `glasshouse_events_total{type,reason,kind,namespace}` on the metrics endpoint.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusConfig {
    /// Distinct values kept per label; further values are counted as `other`. Default: 100.
    #[serde(default = "default_max_label_values")]
    pub max_label_values: usize,
}

fn default_max_label_values() -> usize {
    100
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteConfig {
    /// What the event must be; an empty match takes every event.
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    /// The sinks the matching events go to.
    pub sinks: Vec<String>,
}

/// Conditions on an event, all of which must hold. `reason` and `message` are regular expressions
/// (unanchored); the others are exact.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchConfig {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The event's namespace.
    pub namespace: Option<String>,
    /// The involved object's kind.
    pub kind: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl ShipperConfig {
    /// Every problem with the section, at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, sink) in &self.sinks {
            if let Err(e) = crate::shipper::sinks::check_name(name) {
                problems.push(format!("events.sinks.{name}: {e}"));
            }
            match sink.kind() {
                Err(e) => problems.push(format!("events.sinks.{name}: {e}")),
                Ok(SinkKind::Webhook(webhook)) => problems.extend(
                    webhook
                        .validate()
                        .into_iter()
                        .map(|p| format!("events.sinks.{name}.webhook.{p}")),
                ),
                Ok(SinkKind::Otlp(otlp)) => problems.extend(
                    otlp.validate()
                        .into_iter()
                        .map(|p| format!("events.sinks.{name}.otlp.{p}")),
                ),
                Ok(SinkKind::File(file)) => {
                    if file.path.as_os_str().is_empty() {
                        problems.push(format!("events.sinks.{name}.file.path: required"));
                    }
                    if file.max_size_mib == 0 {
                        problems.push(format!("events.sinks.{name}.file.maxSizeMiB: must be at least 1"));
                    }
                }
                Ok(SinkKind::LogIndex(_)) => {}
                Ok(SinkKind::Prometheus(p)) => {
                    if p.max_label_values == 0 {
                        problems.push(format!(
                            "events.sinks.{name}.prometheus.maxLabelValues: must be at least 1"
                        ));
                    }
                }
            }
        }
        let prometheus = self.sinks.values().filter(|s| s.prometheus.is_some()).count();
        if prometheus > 1 {
            problems.push("events.sinks: at most one prometheus sink (they would share one metric)".into());
        }
        for (i, route) in self.routes.iter().enumerate() {
            problems.extend(
                route
                    .matches
                    .validate()
                    .into_iter()
                    .map(|p| format!("events.routes[{i}].match.{p}")),
            );
            if route.sinks.is_empty() {
                problems.push(format!("events.routes[{i}].sinks: name at least one sink"));
            }
            for sink in &route.sinks {
                if !self.sinks.contains_key(sink) {
                    problems.push(format!("events.routes[{i}].sinks: no sink is named {sink:?}"));
                }
            }
        }
        for (i, rule) in self.drop.iter().enumerate() {
            problems.extend(
                rule.validate()
                    .into_iter()
                    .map(|p| format!("events.drop[{i}].{p}")),
            );
        }
        if self.max_retry_age_seconds == 0 {
            problems.push("events.maxRetryAgeSeconds: must be at least 1".into());
        }
        if self.queue_capacity == 0 {
            problems.push("events.queueCapacity: must be at least 1".into());
        }
        problems
    }
}

impl MatchConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(t) = &self.type_
            && t != "Normal"
            && t != "Warning"
        {
            problems.push(format!("type: {t:?} is neither \"Normal\" nor \"Warning\""));
        }
        for (field, pattern) in [("reason", &self.reason), ("message", &self.message)] {
            if let Some(pattern) = pattern
                && let Err(e) = regex::Regex::new(pattern)
            {
                problems.push(format!(
                    "{field}: {pattern:?} is not a valid regular expression: {e}"
                ));
            }
        }
        problems
    }
}

/// Problems with a URL a sink sends to, whose scheme must be one of `schemes`.
fn url_problems(field: &str, url: &str, schemes: &[&str]) -> Vec<String> {
    let wanted = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    match reqwest::Url::parse(url) {
        Ok(parsed) if !schemes.contains(&parsed.scheme()) => {
            vec![format!("{field}: {url:?} must be {wanted}")]
        }
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
            vec![format!("{field}: {url:?} names no host")]
        }
        Ok(_) => vec![],
        Err(e) => vec![format!("{field}: {url:?} is not a URL: {e}")],
    }
}

/// Problems with header names and values.
fn header_problems(headers: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, value) in headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(format!("headers: {name:?} is not a header name"));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            problems.push(format!("headers.{name}: not a valid header value"));
        }
    }
    problems
}

impl OtlpConfig {
    fn validate(&self) -> Vec<String> {
        // The exporters here speak plain HTTP/2 and HTTP/1.1: collectors on this host or network.
        let mut problems = url_problems("endpoint", &self.endpoint, &["http"]);
        problems.extend(header_problems(&self.headers));
        if self.timeout_seconds == 0 {
            problems.push("timeoutSeconds: must be at least 1".into());
        }
        problems
    }
}

impl WebhookConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = url_problems("url", &self.url, &["http", "https"]);
        if self.bearer_token.is_some() && self.basic_auth.is_some() {
            problems.push("bearerToken and basicAuth: choose one".into());
        }
        problems.extend(header_problems(&self.headers));
        if let Some(template) = &self.body_template
            && let Err(e) = crate::shipper::sinks::webhook::Template::parse(template)
        {
            problems.push(format!("bodyTemplate: {e}"));
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            problems.push(format!("caFile: {} is not a readable file", ca.display()));
        }
        if self.max_batch == 0 {
            problems.push("maxBatch: must be at least 1".into());
        }
        if self.timeout_seconds == 0 {
            problems.push("timeoutSeconds: must be at least 1".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> ShipperConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_good_config_has_no_problems() {
        let config = parse(
            r#"
sinks:
  ops: {webhook: {url: "http://127.0.0.1:9000/hook", bearerToken: t, headers: {X-Team: ops}}}
  audit: {file: {path: /tmp/events.jsonl}}
  counts: {prometheus: {}}
routes:
  - match: {type: Warning, reason: "^(BackOff|Unhealthy)$", kind: Pod}
    sinks: [ops]
  - sinks: [audit, counts]
drop:
  - {namespace: kube-system}
"#,
        );
        assert_eq!(config.validate(), Vec::<String>::new());
        assert_eq!(config.max_retry_age_seconds, 86_400);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = parse(
            r#"
sinks:
  hook: {webhook: {url: "ftp://x/y", bearerToken: a, basicAuth: {username: u, password: p}, maxBatch: 0}}
  nohost: {webhook: {url: "http://"}}
  garbage: {webhook: {url: "not a url"}}
  both: {file: {path: /x}, prometheus: {}}
  none: {}
  collector: {otlp: {endpoint: "https://c:4317", protocol: http/json, timeoutSeconds: 0}}
routes:
  - match: {type: Critical, reason: "(unclosed", message: "[z-a]"}
    sinks: [hook, missing]
  - sinks: []
drop:
  - {reason: "*"}
maxRetryAgeSeconds: 0
"#,
        );
        let problems = config.validate();
        for expected in [
            "events.sinks.hook.webhook.url: \"ftp://x/y\" must be http:// or https://",
            "events.sinks.hook.webhook.bearerToken and basicAuth: choose one",
            "events.sinks.hook.webhook.maxBatch: must be at least 1",
            "events.sinks.nohost.webhook.url",
            "events.sinks.garbage.webhook.url: \"not a url\" is not a URL",
            "events.routes[0].match.type: \"Critical\" is neither",
            "events.routes[0].match.reason: \"(unclosed\" is not a valid regular expression",
            "events.routes[0].match.message: \"[z-a]\" is not a valid regular expression",
            "events.routes[0].sinks: no sink is named \"missing\"",
            "events.routes[1].sinks: name at least one sink",
            "events.drop[0].reason: \"*\" is not a valid regular expression",
            "events.maxRetryAgeSeconds: must be at least 1",
            "events.sinks.both: a sink is one kind",
            "events.sinks.none: name the sink's kind",
            "events.sinks.collector.otlp.endpoint: \"https://c:4317\" must be http://",
            "events.sinks.collector.otlp.timeoutSeconds: must be at least 1",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected}\n{problems:#?}"
            );
        }
        assert_eq!(problems.len(), 16, "{problems:#?}");
    }

    #[test]
    fn the_default_is_valid_and_ships_nothing() {
        let config = ShipperConfig::default();
        assert!(config.validate().is_empty() && config.sinks.is_empty());
        assert_eq!(config.queue_capacity, parse("{}").queue_capacity);
    }

    #[test]
    fn an_unknown_sink_kind_is_refused_with_the_known_ones() {
        let error = serde_yaml::from_str::<ShipperConfig>("sinks: {k: {kafka: {brokers: [a]}}}").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("unknown field `kafka`") && message.contains("webhook"),
            "{message}"
        );
    }
}
