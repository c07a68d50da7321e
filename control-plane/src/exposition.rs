//! Serving a `prometheus-client` registry in the format the scraper asks for: OpenMetrics when its
//! `Accept` names it (Prometheus does), else the Prometheus text format 0.0.4 (curl, `promtool check
//! metrics`, older scrapers). `prometheus-client` encodes OpenMetrics only; the text format is derived
//! from it: counters are named by their `_total` series, `_created` series and exemplars are dropped,
//! `info` and `stateset` families become gauges, `unknown` becomes `untyped`, and there is no `# EOF`.
//!
//! Every endpoint times its encoding (`glasshouse_metrics_encode_duration_seconds`), so the cost of an
//! exposition can be read apart from the HTTP around it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EncodeLabels {
    endpoint: &'static str,
    format: &'static str,
}

/// The encoding time of each endpoint and format.
#[derive(Clone)]
pub struct EncodeTimes(Family<EncodeLabels, Histogram, fn() -> Histogram>);

impl EncodeTimes {
    pub fn register(registry: &mut Registry) -> Self {
        // 50 µs to about 0.8 s.
        let times: Family<EncodeLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00005, 2.0, 15)));
        registry.register(
            "glasshouse_metrics_encode_duration_seconds",
            "Time to encode an exposition of the metrics address, by endpoint and format (openmetrics or text), without the HTTP around it",
            times.clone(),
        );
        EncodeTimes(times)
    }

    /// Serves what `encode` writes (in OpenMetrics when it is given true), in the format `accept` asks
    /// for, timing the encoding under `endpoint`.
    pub fn serve(
        &self,
        endpoint: &'static str,
        accept: Option<&str>,
        encode: impl FnOnce(bool) -> String,
    ) -> Response {
        let openmetrics = wants_openmetrics(accept);
        let started = Instant::now();
        let body = encode(openmetrics);
        self.observe(endpoint, openmetrics, started);
        encoded(body, openmetrics)
    }

    /// Serves a registry in the format `accept` asks for, timing the encoding under `endpoint`. `more`
    /// appends families kept outside the registry, in OpenMetrics.
    pub fn serve_registry(
        &self,
        endpoint: &'static str,
        registry: &Registry,
        accept: Option<&str>,
        more: impl FnOnce(&mut String),
    ) -> Response {
        let openmetrics = wants_openmetrics(accept);
        let started = Instant::now();
        let mut body = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut body, registry) {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
        if let Some(len) = body.strip_suffix("# EOF\n").map(str::len) {
            body.truncate(len);
        }
        more(&mut body);
        body.push_str("# EOF\n");
        if !openmetrics {
            body = to_text_format(&body);
        }
        self.observe(endpoint, openmetrics, started);
        encoded(body, openmetrics)
    }

    fn observe(&self, endpoint: &'static str, openmetrics: bool, started: Instant) {
        let format = if openmetrics { "openmetrics" } else { "text" };
        self.0
            .get_or_create(&EncodeLabels { endpoint, format })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A label set that writes itself as exposition text: `name="value",...` with values escaped.
pub trait LabelText: Clone + Eq + Hash {
    fn write(&self, out: &mut String);
}

/// Appends `name="value"` (after a comma unless `out` ends a `{`), the value escaped as the formats
/// require.
pub fn push_label(out: &mut String, name: &str, value: &str) {
    if !out.ends_with('{') && !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    push_label_value(out, value);
    out.push('"');
}

/// Appends a label value, escaped as the formats require.
pub fn push_label_value(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A histogram family written here rather than by prometheus-client, for the families with the most
/// series: each series renders its labels once, when it first appears, so that a bucket line costs a
/// copy of that text and an integer (prometheus-client encodes the label set and the bound again for
/// every bucket). The text is prometheus-client's, line for line: `_sum`, `_count`, then the buckets,
/// numbers formatted as it formats them.
pub struct HistogramFamily<L> {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    /// `{le="…"` for each bound and +Inf.
    le: Vec<String>,
    series: RwLock<HashMap<L, Arc<HistogramSeries>>>,
}

struct HistogramSeries {
    /// `,name="value",…` (empty without labels).
    labels: String,
    /// Observations per bucket (not cumulative), the last for +Inf.
    buckets: Vec<AtomicU64>,
    /// The sum's bits (an f64).
    sum: AtomicU64,
}

impl<L: LabelText> HistogramFamily<L> {
    pub fn new(name: &'static str, help: &'static str, bounds: &'static [f64]) -> Self {
        let le = bounds
            .iter()
            .map(|b| format!("{{le=\"{}\"", dtoa::Buffer::new().format(*b)))
            .chain(std::iter::once("{le=\"+Inf\"".to_string()))
            .collect();
        HistogramFamily {
            name,
            help,
            bounds,
            le,
            series: RwLock::default(),
        }
    }

    pub fn observe(&self, labels: &L, value: f64) {
        let series = self.series.read().ok().and_then(|m| m.get(labels).cloned());
        let series = match series {
            Some(series) => series,
            None => {
                let Ok(mut map) = self.series.write() else { return };
                map.entry(labels.clone())
                    .or_insert_with(|| {
                        let mut text = String::new();
                        labels.write(&mut text);
                        if !text.is_empty() {
                            text.insert(0, ',');
                        }
                        Arc::new(HistogramSeries {
                            labels: text,
                            buckets: (0..=self.bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                            sum: AtomicU64::new(0f64.to_bits()),
                        })
                    })
                    .clone()
            }
        };
        let bucket = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        series.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = series
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// Appends the family (OpenMetrics, which for a histogram is also the Prometheus text format).
    pub fn encode(&self, out: &mut String) {
        let Ok(map) = self.series.read() else { return };
        // prometheus-client ends every HELP with a period; so do these.
        for (keyword, tail, end) in [("# HELP ", self.help, ".\n"), ("# TYPE ", "histogram", "\n")] {
            out.push_str(keyword);
            out.push_str(self.name);
            out.push(' ');
            out.push_str(tail);
            out.push_str(end);
        }
        let mut number = itoa::Buffer::new();
        let mut float = dtoa::Buffer::new();
        for series in map.values() {
            let counts: Vec<u64> = series.buckets.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            let labels = series.labels.strip_prefix(',').unwrap_or_default();
            let sum = f64::from_bits(series.sum.load(Ordering::Relaxed));
            for (suffix, value) in [
                ("_sum", float.format(sum)),
                ("_count", number.format(counts.iter().sum::<u64>())),
            ] {
                out.push_str(self.name);
                out.push_str(suffix);
                if !labels.is_empty() {
                    out.push('{');
                    out.push_str(labels);
                    out.push('}');
                }
                out.push(' ');
                out.push_str(value);
                out.push('\n');
            }
            let mut cumulative = 0u64;
            for (count, le) in counts.iter().zip(&self.le) {
                cumulative += count;
                out.push_str(self.name);
                out.push_str("_bucket");
                out.push_str(le);
                out.push_str(&series.labels);
                out.push_str("} ");
                out.push_str(number.format(cumulative));
                out.push('\n');
            }
        }
    }
}

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// An encoded exposition with its content type.
pub fn encoded(body: String, openmetrics: bool) -> Response {
    let content_type = if openmetrics { OPENMETRICS } else { TEXT };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// OpenMetrics text as the Prometheus text format 0.0.4, in one pass: a family's metadata comes before
/// its samples, and `# HELP` before `# TYPE`, so the HELP line waits for the type that names it.
pub fn to_text_format(openmetrics: &str) -> String {
    // Counter families' HELP and TYPE lines grow by `_total`; everything else stays or shrinks.
    let mut out = String::with_capacity(openmetrics.len() + openmetrics.len() / 32);
    let mut help: Option<(&str, &str)> = None;
    let mut family = "";
    let mut kind = "";
    let mut rest = openmetrics;
    while !rest.is_empty() {
        // Samples of a family other than a counter (which may have `_created` series) are copied as they
        // are, up to the next line holding a `#`: metadata, an exemplar, or a label value with one.
        if kind != "counter" && help.is_none() && !rest.starts_with('#') {
            let end = match rest.find('#') {
                Some(at) => rest[..at].rfind('\n').map_or(0, |n| n + 1),
                None => rest.len(),
            };
            if end > 0 {
                out.push_str(&rest[..end]);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                rest = &rest[end..];
                continue;
            }
        }
        let line;
        (line, rest) = rest.split_once('\n').unwrap_or((rest, ""));
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, declared) = rest.split_once(' ').unwrap_or((rest, ""));
            (family, kind) = (name, declared);
            let (suffix, written) = match declared {
                "counter" => ("_total", "counter"),
                "info" => ("_info", "gauge"),
                "stateset" => ("", "gauge"),
                "unknown" => ("", "untyped"),
                "gaugehistogram" => ("", "histogram"),
                other => ("", other),
            };
            if let Some((help_name, text)) = help.take() {
                let suffix = if help_name == name { suffix } else { "" };
                push_metadata(&mut out, "# HELP ", help_name, suffix, text);
            }
            push_metadata(&mut out, "# TYPE ", name, suffix, written);
            continue;
        }
        if let Some((name, text)) = help.take() {
            push_metadata(&mut out, "# HELP ", name, "", text);
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if line.starts_with('#') {
            // `# UNIT`, `# EOF`: the text format has neither.
            continue;
        }
        if kind == "counter"
            && line
                .strip_prefix(family)
                .and_then(|rest| rest.strip_prefix("_created"))
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        {
            continue;
        }
        out.push_str(without_exemplar(line));
        out.push('\n');
    }
    if let Some((name, text)) = help {
        push_metadata(&mut out, "# HELP ", name, "", text);
    }
    out
}

fn push_metadata(out: &mut String, keyword: &str, name: &str, suffix: &str, tail: &str) {
    out.push_str(keyword);
    out.push_str(name);
    out.push_str(suffix);
    out.push(' ');
    out.push_str(tail);
    out.push('\n');
}

/// A sample line up to its exemplar (` # {labels} value`), which the text format does not have. Label
/// values may hold `#` too, so the search starts after the label set.
fn without_exemplar(line: &str) -> &str {
    if !line.contains('#') {
        return line;
    }
    let bytes = line.as_bytes();
    let mut at = line.find(['{', ' ']).unwrap_or(line.len());
    if bytes.get(at) == Some(&b'{') {
        let mut quoted = false;
        while at < bytes.len() {
            match bytes[at] {
                b'\\' if quoted => at += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => break,
                _ => {}
            }
            at += 1;
        }
    }
    match line[at.min(line.len())..].find(" # ") {
        Some(i) => &line[..at + i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::metrics::info::Info;

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
    struct Route {
        verb: &'static str,
        path: String,
    }

    impl LabelText for Route {
        fn write(&self, out: &mut String) {
            push_label(out, "verb", self.verb);
            push_label(out, "path", &self.path);
        }
    }

    #[test]
    fn a_histogram_family_writes_what_prometheus_client_writes() {
        const BOUNDS: [f64; 4] = [0.005, 0.1, 1.0, 60.0];
        let ours = HistogramFamily::new("request_seconds", "Request latency", &BOUNDS);
        let theirs: Family<Route, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(BOUNDS));
        let mut registry = Registry::default();
        registry.register("request_seconds", "Request latency", theirs.clone());
        let routes = [
            Route {
                verb: "GET",
                path: "/a".into(),
            },
            Route {
                verb: "PUT",
                path: "/with \"quotes\" and \\ and\nnewline".into(),
            },
            // Alone with a sum of 0.00002, which `{:?}` would write `2e-5`.
            Route {
                verb: "HEAD",
                path: "/tiny".into(),
            },
        ];
        for (i, value) in [0.005, 0.05, 0.5, 2.0, 100.0, 0.25].into_iter().enumerate() {
            let route = &routes[i % 2];
            ours.observe(route, value);
            theirs.get_or_create(route).observe(value);
        }
        ours.observe(&routes[2], 0.00002);
        theirs.get_or_create(&routes[2]).observe(0.00002);
        let mut expected = String::new();
        prometheus_client::encoding::text::encode(&mut expected, &registry).unwrap();
        assert!(expected.contains("} 0.00002\n"), "{expected}");
        let mut written = String::new();
        ours.encode(&mut written);
        written.push_str("# EOF\n");
        // Series come in hash order: compare each series' lines, in their order.
        let sorted = |text: &str| {
            let text = text.strip_suffix("# EOF\n").unwrap_or(text);
            let mut series: Vec<String> = text.split("request_seconds_sum").map(str::to_string).collect();
            series.sort();
            series
        };
        assert_eq!(sorted(&written), sorted(&expected), "{written}\n{expected}");
        assert!(written.contains("request_seconds_bucket{le=\"+Inf\",verb=\"GET\",path=\"/a\"} 3\n"));
        // No labels at all.
        #[derive(Clone, PartialEq, Eq, Hash)]
        struct NoLabels;
        impl LabelText for NoLabels {
            fn write(&self, _: &mut String) {}
        }
        let bare = HistogramFamily::new("bare_seconds", "Bare", &BOUNDS);
        bare.observe(&NoLabels, 0.5);
        let mut out = String::new();
        bare.encode(&mut out);
        assert!(
            out.contains("bare_seconds_bucket{le=\"1.0\"} 1\nbare_seconds_bucket{le=\"60.0\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("bare_seconds_sum 0.5\nbare_seconds_count 1\n"),
            "{out}"
        );
    }

    #[test]
    fn openmetrics_becomes_the_text_format() {
        let mut registry = Registry::default();
        let requests: Family<Vec<(String, String)>, Counter> = Family::default();
        requests
            .get_or_create(&vec![("code".into(), "200".into())])
            .inc_by(3);
        registry.register("http_requests", "Requests served", requests);
        let gauge: Gauge = Gauge::default();
        gauge.set(7);
        registry.register("queue_depth", "Jobs waiting", gauge);
        let histogram = Histogram::new([0.1, 1.0]);
        histogram.observe(0.5);
        registry.register("latency_seconds", "Latency", histogram);
        registry.register(
            "build",
            "Build facts",
            Info::new(vec![("version".to_string(), "1".to_string())]),
        );
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &registry).unwrap();
        assert!(
            om.contains("# TYPE http_requests counter") && om.ends_with("# EOF\n"),
            "{om}"
        );
        let text = to_text_format(&om);
        assert!(
            text.contains("# HELP http_requests_total Requests served.\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE http_requests_total counter\n"), "{text}");
        assert!(text.contains("http_requests_total{code=\"200\"} 3\n"), "{text}");
        assert!(
            text.contains("# TYPE queue_depth gauge\nqueue_depth 7\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE latency_seconds histogram\n"), "{text}");
        assert!(
            text.contains("# TYPE build_info gauge\nbuild_info{version=\"1\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF") && !text.contains("_created"), "{text}");
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }

    #[test]
    fn exemplars_and_created_series_are_dropped_but_label_values_kept() {
        let om = "# HELP jobs Jobs run.\n\
            # TYPE jobs counter\n\
            jobs_total{queue=\"a # b\",note=\"x\\\"}\"} 3 # {trace_id=\"1\"} 1.0\n\
            jobs_created{queue=\"a # b\"} 1700000000.0\n\
            jobs_created_by_hand_total 2\n\
            # HELP size Size.\n\
            # TYPE size gauge\n\
            # UNIT size bytes\n\
            size{path=\"/x # y\"} 1\n\
            # EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP jobs_total Jobs run.\n\
             # TYPE jobs_total counter\n\
             jobs_total{queue=\"a # b\",note=\"x\\\"}\"} 3\n\
             jobs_created_by_hand_total 2\n\
             # HELP size Size.\n\
             # TYPE size gauge\n\
             size{path=\"/x # y\"} 1\n"
        );
    }
}
