//! Serving a `prometheus-client` registry in the format the scraper asks for: OpenMetrics when its
//! `Accept` names it (Prometheus does), else the Prometheus text format 0.0.4 (curl, `promtool check
//! metrics`, older scrapers). `prometheus-client` encodes OpenMetrics only; the text format is derived
//! from it: counters are named by their `_total` series, `_created` series and exemplars are dropped,
//! `info` and `stateset` families become gauges, `unknown` becomes `untyped`, and there is no `# EOF`.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// The registry, encoded as asked.
pub fn response(registry: &Registry, accept: Option<&str>) -> Response {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, registry) {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    if wants_openmetrics(accept) {
        encoded(body, true)
    } else {
        encoded(to_text_format(&body), false)
    }
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
    for line in openmetrics.split_terminator('\n') {
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
