//! `custom.metrics.k8s.io/v1beta2` from the series the collector scrapes off pods, named and associated
//! by prometheus-adapter-style rules (`spec/hpa.md` §5): a series selector picks series, filters and
//! `name.matches`/`as` name the metric, and the series belongs to its pod, its namespace, and the
//! objects its override labels name. A pod's or object's value is the sum of its series; counters are
//! per-second rates over the pod's last two scrapes.
//!
//! Routes (under `/apis/custom.metrics.k8s.io`): `/{version}` lists the metrics as
//! `pods/<metric>`, `namespaces/<metric>` and `<resource>.<group>/<metric>`;
//! `/{version}/namespaces/{ns}/pods/{name|*}/{metric}`, `/{version}/namespaces/{ns}/{resource}/{name}/{metric}`
//! and `/{version}/namespaces/{ns}/metrics/{metric}` answer `MetricValueList`s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use collector::exposition::{MetricType, Sample};
use collector::scrape::{Scraper, Scrapes};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Directory, LabelRequirement, failed, quantity, requirements, status};
use crate::config::{GroupResource, Rule};

const GROUP: &str = "custom.metrics.k8s.io";
const VERSION: &str = "v1beta2";

#[derive(Clone, Debug, PartialEq, Eq)]
enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Clone, Debug)]
struct Matcher {
    label: String,
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
}

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

/// A PromQL series selector: `name{label="v", label!="v", label=~"re", label!~"re"}` (regexes anchored,
/// as in PromQL; the name may also be given as `__name__`).
#[derive(Clone, Debug)]
pub struct SeriesSelector {
    matchers: Vec<Matcher>,
}

impl SeriesSelector {
    pub fn parse(text: &str) -> Result<SeriesSelector, String> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(i) => (text[..i].trim(), Some(&text[i + 1..])),
            None => (text, None),
        };
        let mut matchers = Vec::new();
        if !name.is_empty() {
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            {
                return Err(format!("{name:?} is not a metric name"));
            }
            matchers.push(Matcher {
                label: "__name__".into(),
                op: MatchOp::Equal,
                value: name.into(),
                regex: None,
            });
        }
        if let Some(rest) = rest {
            let body = rest
                .trim_end()
                .strip_suffix('}')
                .ok_or("expected '}' at the end of the selector")?;
            let mut chars = body.chars().peekable();
            loop {
                while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    break;
                }
                let mut label = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_') {
                    label.push(c);
                    chars.next();
                }
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let op = match (chars.next(), chars.peek().copied()) {
                    (Some('='), Some('~')) => MatchOp::Regex,
                    (Some('!'), Some('=')) => MatchOp::NotEqual,
                    (Some('!'), Some('~')) => MatchOp::NotRegex,
                    (Some('='), _) => MatchOp::Equal,
                    _ => return Err(format!("expected a matcher operator after {label:?}")),
                };
                if op != MatchOp::Equal {
                    chars.next();
                }
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let quote = chars
                    .next()
                    .filter(|q| matches!(q, '"' | '\''))
                    .ok_or_else(|| format!("expected a quoted value for {label:?}"))?;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated value for {label:?}")),
                        Some(c) if c == quote => break,
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => return Err(format!("unterminated value for {label:?}")),
                        },
                        Some(c) => value.push(c),
                    }
                }
                if label.is_empty() {
                    return Err("expected a label name".into());
                }
                let regex = match op {
                    MatchOp::Regex | MatchOp::NotRegex => Some(
                        Regex::new(&format!("^(?:{value})$")).map_err(|e| format!("label {label:?}: {e}"))?,
                    ),
                    _ => None,
                };
                matchers.push(Matcher {
                    label,
                    op,
                    value,
                    regex,
                });
            }
        }
        if !matchers.iter().any(|m| m.label == "__name__") {
            return Err("the selector must name the metric (a name, or a __name__ matcher)".into());
        }
        Ok(SeriesSelector { matchers })
    }

    fn matches(&self, sample: &Sample) -> bool {
        self.matchers.iter().all(|m| {
            let value = if m.label == "__name__" {
                sample.name.as_str()
            } else {
                sample.label(&m.label).unwrap_or("")
            };
            m.matches(value)
        })
    }
}

/// A rule, ready to apply.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    selector: SeriesSelector,
    filters: Vec<(Regex, bool)>,
    overrides: BTreeMap<String, GroupResource>,
    matches: Regex,
    rename: String,
}

impl CompiledRule {
    pub fn new(rule: &Rule) -> Result<CompiledRule, String> {
        let selector = SeriesSelector::parse(&rule.series_query).map_err(|e| format!("seriesQuery: {e}"))?;
        let mut filters = Vec::new();
        for (i, f) in rule.series_filters.iter().enumerate() {
            let (re, is) = match (&f.is, &f.is_not) {
                (Some(re), None) => (re, true),
                (None, Some(re)) => (re, false),
                _ => return Err(format!("seriesFilters[{i}]: set one of is and isNot")),
            };
            filters.push((
                Regex::new(re).map_err(|e| format!("seriesFilters[{i}]: {e}"))?,
                is,
            ));
        }
        let matches = Regex::new(rule.name.matches.as_deref().unwrap_or(".*"))
            .map_err(|e| format!("name.matches: {e}"))?;
        let rename = rule
            .name
            .as_
            .clone()
            .unwrap_or_else(|| if matches.captures_len() > 1 { "$1" } else { "$0" }.to_string());
        for (label, resource) in &rule.resources.overrides {
            if resource.resource.is_empty() {
                return Err(format!("resources.overrides.{label}.resource: required"));
            }
        }
        Ok(CompiledRule {
            selector,
            filters,
            overrides: rule.resources.overrides.clone(),
            matches,
            rename,
        })
    }

    /// The metric a sample is part of, if this rule takes it.
    fn metric_name(&self, sample: &Sample) -> Option<String> {
        if !self.selector.matches(sample)
            || !self
                .filters
                .iter()
                .all(|(re, is)| re.is_match(&sample.name) == *is)
        {
            return None;
        }
        let captures = self.matches.captures(&sample.name)?;
        let mut name = String::new();
        captures.expand(&self.rename, &mut name);
        (!name.is_empty()).then_some(name)
    }
}

/// One series of a custom metric, as served.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub metric: String,
    pub namespace: String,
    pub pod: String,
    /// The series' own labels.
    pub labels: BTreeMap<String, String>,
    /// The objects its override labels name.
    pub objects: Vec<(GroupResource, String)>,
    pub value: f64,
    pub time: jiff::Timestamp,
    /// The rate's window, for counters.
    pub window: Option<Duration>,
}

fn series_key(sample: &Sample) -> (String, Vec<(String, String)>) {
    let mut labels = sample.labels.clone();
    labels.sort();
    (sample.name.clone(), labels)
}

fn is_counter(sample: &Sample) -> bool {
    sample.kind == MetricType::Counter
        || (sample.kind == MetricType::Unknown && sample.name.ends_with("_total"))
}

/// Every series the rules make of the pods' scrapes. A counter needs two scrapes; one that went back
/// (the pod restarted) counts from zero.
pub fn series(rules: &[CompiledRule], scrapes: &[Scrapes]) -> Vec<Series> {
    let mut out = Vec::new();
    for pod in scrapes {
        let prev: HashMap<_, f64> = pod
            .prev
            .iter()
            .flat_map(|p| p.samples.iter())
            .map(|s| (series_key(s), s.value))
            .collect();
        let elapsed = pod
            .prev
            .as_ref()
            .map(|p| pod.last.time.duration_since(p.time).as_secs_f64());
        for sample in pod.last.samples.iter() {
            for rule in rules {
                let Some(metric) = rule.metric_name(sample) else {
                    continue;
                };
                let (value, window) = if is_counter(sample) {
                    let (Some(before), Some(seconds)) = (prev.get(&series_key(sample)), elapsed) else {
                        continue;
                    };
                    if seconds <= 0.0 {
                        continue;
                    }
                    let increase = if sample.value >= *before {
                        sample.value - before
                    } else {
                        sample.value
                    };
                    (increase / seconds, Some(Duration::from_secs_f64(seconds)))
                } else {
                    (sample.value, None)
                };
                if !value.is_finite() {
                    continue;
                }
                let objects = rule
                    .overrides
                    .iter()
                    .filter_map(|(label, resource)| {
                        Some((resource.clone(), sample.label(label)?.to_string()))
                    })
                    .collect();
                out.push(Series {
                    metric,
                    namespace: pod.last.target.namespace.clone(),
                    pod: pod.last.target.pod.clone(),
                    labels: sample.labels.iter().cloned().collect(),
                    objects,
                    value,
                    time: pod.last.time,
                    window,
                });
            }
        }
    }
    out
}

/// Whether `labels` satisfy every requirement.
pub fn selected(requirements: &[LabelRequirement], labels: &BTreeMap<String, String>) -> bool {
    requirements.iter().all(|r| match r {
        LabelRequirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
        LabelRequirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
        LabelRequirement::Exists(k) => labels.contains_key(k),
        LabelRequirement::DoesNotExist(k) => !labels.contains_key(k),
    })
}

/// The requirements as a `metav1.LabelSelector` (null when there are none).
fn as_label_selector(requirements: &[LabelRequirement]) -> Value {
    if requirements.is_empty() {
        return Value::Null;
    }
    let expressions: Vec<Value> = requirements
        .iter()
        .map(|r| match r {
            LabelRequirement::In(k, v) => json!({"key": k, "operator": "In", "values": v}),
            LabelRequirement::NotIn(k, v) => json!({"key": k, "operator": "NotIn", "values": v}),
            LabelRequirement::Exists(k) => json!({"key": k, "operator": "Exists"}),
            LabelRequirement::DoesNotExist(k) => json!({"key": k, "operator": "DoesNotExist"}),
        })
        .collect();
    json!({"matchExpressions": expressions})
}

#[derive(Clone)]
struct Served {
    rules: Arc<Vec<CompiledRule>>,
    scraper: Scraper,
    directory: Arc<dyn Directory>,
}

/// The router to nest at `/apis/custom.metrics.k8s.io`.
pub fn router(rules: Vec<CompiledRule>, scraper: Scraper, directory: Arc<dyn Directory>) -> Router {
    Router::new()
        .route("/", get(api_group))
        .route("/{version}", get(resources))
        .route(
            "/{version}/namespaces/{namespace}/metrics/{metric}",
            get(namespace_metric),
        )
        .route(
            "/{version}/namespaces/{namespace}/{resource}/{name}/{metric}",
            get(object_metric),
        )
        .with_state(Served {
            rules: Arc::new(rules),
            scraper,
            directory,
        })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    label_selector: Option<String>,
    metric_label_selector: Option<String>,
}

async fn api_group() -> Response {
    crate::api::api_group(GROUP, VERSION)
}

/// The plural form used in URLs (`deployments.apps`, `services`).
fn url_resource(resource: &GroupResource) -> String {
    if resource.group.is_empty() {
        resource.resource.clone()
    } else {
        format!("{}.{}", resource.resource, resource.group)
    }
}

/// A kind for a resource (`deployments` → `Deployment`, `ingresses` → `Ingress`).
fn kind_of(resource: &str) -> String {
    let singular = if let Some(s) = resource.strip_suffix("sses") {
        format!("{s}ss")
    } else {
        resource.strip_suffix('s').unwrap_or(resource).to_string()
    };
    let mut chars = singular.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

async fn resources(State(served): State<Served>, Path(version): Path<String>) -> Response {
    if let Some(response) = crate::api::unknown_version(&version, VERSION) {
        return response;
    }
    let mut names = BTreeSet::new();
    for s in series(&served.rules, &served.scraper.scrapes()) {
        names.insert(format!("pods/{}", s.metric));
        names.insert(format!("namespaces/{}", s.metric));
        for (resource, _) in &s.objects {
            names.insert(format!("{}/{}", url_resource(resource), s.metric));
        }
    }
    let resources: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let namespaced = !name.starts_with("namespaces/");
            json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": "MetricValueList", "verbs": ["get"]})
        })
        .collect();
    axum::Json(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": resources,
    }))
    .into_response()
}

/// One `MetricValue`: the sum of `series`, at the newest series' time.
fn value_item(object: Value, metric: &str, selector: &Value, series: &[&Series]) -> Value {
    let total: f64 = series.iter().map(|s| s.value).sum();
    let time = series
        .iter()
        .map(|s| s.time)
        .max()
        .unwrap_or_else(jiff::Timestamp::now);
    let window = series.iter().filter_map(|s| s.window).max();
    let mut item = json!({
        "describedObject": object,
        "metric": {"name": metric, "selector": selector},
        "timestamp": time.round(jiff::Unit::Second).unwrap_or(time).to_string(),
        "value": quantity(total),
    });
    if let Some(window) = window {
        item["windowSeconds"] = json!(window.as_secs().max(1));
    }
    item
}

fn list(items: Vec<Value>) -> Response {
    axum::Json(json!({
        "kind": "MetricValueList", "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items,
    }))
    .into_response()
}

impl Served {
    fn metric_series(&self, metric: &str, namespace: &str, selector: &[LabelRequirement]) -> Vec<Series> {
        series(&self.rules, &self.scraper.scrapes())
            .into_iter()
            .filter(|s| s.metric == metric && s.namespace == namespace && selected(selector, &s.labels))
            .collect()
    }
}

fn no_metric(metric: &str, resource: &str, name: &str) -> Response {
    status(
        404,
        "NotFound",
        format!("the server could not find the metric {metric} for {resource} {name}"),
    )
}

async fn object_metric(
    State(served): State<Served>,
    Path((version, namespace, resource, name, metric)): Path<(String, String, String, String, String)>,
    Query(params): Query<Params>,
) -> Response {
    if let Some(response) = crate::api::unknown_version(&version, VERSION) {
        return response;
    }
    let metric_selector =
        match requirements(served.directory.as_ref(), params.metric_label_selector.as_deref()) {
            Ok(r) => r,
            Err(failure) => return failed(failure),
        };
    let selector_json = as_label_selector(&metric_selector);
    let all = served.metric_series(&metric, &namespace, &metric_selector);
    if resource == "pods" {
        let pods: Vec<String> = if name == "*" {
            match served
                .directory
                .pods(Some(&namespace), params.label_selector.as_deref())
                .await
            {
                Ok(pods) => pods.into_iter().map(|p| p.name).collect(),
                Err(failure) => return failed(failure),
            }
        } else {
            vec![name.clone()]
        };
        let items: Vec<Value> = pods
            .iter()
            .filter_map(|pod| {
                let of_pod: Vec<&Series> = all.iter().filter(|s| &s.pod == pod).collect();
                (!of_pod.is_empty()).then(|| {
                    let object =
                        json!({"kind": "Pod", "namespace": namespace, "name": pod, "apiVersion": "v1"});
                    value_item(object, &metric, &selector_json, &of_pod)
                })
            })
            .collect();
        if name != "*" && items.is_empty() {
            return no_metric(&metric, "pods", &name);
        }
        return list(items);
    }
    let (plural, group) = resource.split_once('.').unwrap_or((&resource, ""));
    let of_object: Vec<&Series> = all
        .iter()
        .filter(|s| {
            s.objects
                .iter()
                .any(|(r, n)| r.resource == plural && r.group == group && *n == name)
        })
        .collect();
    if of_object.is_empty() {
        return no_metric(&metric, &resource, &name);
    }
    let api_version = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    let object =
        json!({"kind": kind_of(plural), "namespace": namespace, "name": name, "apiVersion": api_version});
    list(vec![value_item(object, &metric, &selector_json, &of_object)])
}

async fn namespace_metric(
    State(served): State<Served>,
    Path((version, namespace, metric)): Path<(String, String, String)>,
    Query(params): Query<Params>,
) -> Response {
    if let Some(response) = crate::api::unknown_version(&version, VERSION) {
        return response;
    }
    let metric_selector =
        match requirements(served.directory.as_ref(), params.metric_label_selector.as_deref()) {
            Ok(r) => r,
            Err(failure) => return failed(failure),
        };
    let all = served.metric_series(&metric, &namespace, &metric_selector);
    if all.is_empty() {
        return no_metric(&metric, "namespaces", &namespace);
    }
    let object = json!({"kind": "Namespace", "name": namespace, "apiVersion": "v1"});
    let refs: Vec<&Series> = all.iter().collect();
    list(vec![value_item(
        object,
        &metric,
        &as_label_selector(&metric_selector),
        &refs,
    )])
}

#[cfg(test)]
mod tests {
    use collector::scrape::{PodScrape, ScrapeTarget};

    use super::*;
    use crate::config::{NameRule, Resources};

    fn rule(query: &str, matches: Option<&str>, rename: Option<&str>) -> CompiledRule {
        CompiledRule::new(&Rule {
            series_query: query.into(),
            series_filters: vec![],
            resources: Resources {
                overrides: BTreeMap::from([(
                    "deployment".to_string(),
                    GroupResource {
                        group: "apps".into(),
                        resource: "deployments".into(),
                    },
                )]),
            },
            name: NameRule {
                matches: matches.map(Into::into),
                as_: rename.map(Into::into),
            },
        })
        .unwrap()
    }

    fn scrape(pod: &str, seconds: i64, body: &str) -> PodScrape {
        PodScrape {
            target: ScrapeTarget {
                namespace: "default".into(),
                pod: pod.into(),
                url: String::new(),
            },
            time: jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap(),
            samples: Arc::new(collector::exposition::parse(body, false).unwrap()),
        }
    }

    #[test]
    fn selectors_parse_and_match() {
        let s = SeriesSelector::parse(
            r#"http_requests_total{code=~"2..", path!="/healthz", method!~'HEAD|OPTIONS'}"#,
        )
        .unwrap();
        let sample = |labels: &str| {
            collector::exposition::parse(&format!("http_requests_total{{{labels}}} 1\n"), false)
                .unwrap()
                .remove(0)
        };
        assert!(s.matches(&sample(r#"code="200",path="/",method="GET""#)));
        assert!(!s.matches(&sample(r#"code="500",path="/",method="GET""#)));
        assert!(!s.matches(&sample(r#"code="200",path="/healthz""#)));
        assert!(!s.matches(&sample(r#"code="200",method="HEAD""#)));
        assert!(SeriesSelector::parse(r#"{__name__=~"http_.*"}"#).is_ok());
        for bad in [
            "",
            "{code=\"1\"}",
            "x{code}",
            "x{code=1}",
            "x{code=\"1\"",
            "x{a=~\"(\"}",
            "bad name",
        ] {
            assert!(SeriesSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counters_become_rates_and_rules_name_the_metric() {
        let rules = vec![
            rule(
                r#"{__name__=~"^http_requests_total$|^queue_length$"}"#,
                Some("^(.*)_total$"),
                Some("${1}_per_second"),
            ),
            rule("queue_length", None, None),
        ];
        let body = |n: u32| {
            format!(
                "# TYPE http_requests counter\nhttp_requests_total{{deployment=\"web\"}} {n}\nqueue_length 7\n"
            )
        };
        let scrapes = vec![Scrapes {
            prev: Some(scrape("web-0", 0, &body(100))),
            last: scrape("web-0", 2, &body(130)),
        }];
        let out = series(&rules, &scrapes);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].metric, "http_requests_per_second");
        assert_eq!(
            (out[0].value, out[0].window),
            (15.0, Some(Duration::from_secs(2)))
        );
        assert_eq!(out[0].objects[0].1, "web");
        // The first rule's `matches` does not take queue_length; the second (default name) does.
        assert_eq!((out[1].metric.as_str(), out[1].value), ("queue_length", 7.0));
        // One scrape only: no rate yet; a counter that went back counts from zero.
        let first = vec![Scrapes {
            prev: None,
            last: scrape("web-0", 2, &body(130)),
        }];
        assert_eq!(series(&rules, &first).len(), 1);
        let reset = vec![Scrapes {
            prev: Some(scrape("web-0", 0, &body(100))),
            last: scrape("web-0", 2, &body(10)),
        }];
        assert_eq!(series(&rules, &reset)[0].value, 5.0);
    }

    #[test]
    fn kinds_of_resources() {
        assert_eq!(kind_of("deployments"), "Deployment");
        assert_eq!(kind_of("ingresses"), "Ingress");
        assert_eq!(kind_of("services"), "Service");
    }
}
