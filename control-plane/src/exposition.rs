//! Serving a `prometheus-client` registry in the format the scraper asks for: OpenMetrics when its
//! `Accept` names it (Prometheus does), else the Prometheus text format 0.0.4 (curl, `promtool check
//! metrics`, older scrapers). `prometheus-client` encodes OpenMetrics only; the text format is derived
//! from it: counters are named by their `_total` series, `_created` series and exemplars are dropped,
//! `info` and `stateset` families become gauges, `unknown` becomes `untyped`, and there is no `# EOF`.

use std::collections::HashMap;

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

/// OpenMetrics text as the Prometheus text format 0.0.4.
pub fn to_text_format(openmetrics: &str) -> String {
    let types: HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        for keyword in ["# HELP ", "# TYPE "] {
            if let Some(rest) = line.strip_prefix(keyword) {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let (name, tail) = match (types.get(name).copied(), keyword) {
                    (Some("counter"), _) => (format!("{name}_total"), tail),
                    (Some("info"), "# TYPE ") => (format!("{name}_info"), "gauge"),
                    (Some("info"), _) => (format!("{name}_info"), tail),
                    (Some("stateset"), "# TYPE ") => (name.to_string(), "gauge"),
                    (Some("unknown"), "# TYPE ") => (name.to_string(), "untyped"),
                    (Some("gaugehistogram"), "# TYPE ") => (name.to_string(), "histogram"),
                    _ => (name.to_string(), tail),
                };
                out.push_str(keyword);
                out.push_str(&name);
                out.push(' ');
                out.push_str(tail);
                out.push('\n');
            }
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if let Some(family) = name.strip_suffix("_created")
            && types.get(family) == Some(&"counter")
        {
            continue;
        }
        out.push_str(line.split(" # ").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Prometheus text (0.0.4) as OpenMetrics: counter families named without `_total`, timestamps in
/// seconds, `# EOF` at the end (for the collector's hand-written endpoints).
pub fn to_openmetrics(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            let keyword = &line[..7];
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = match counters.contains(name) {
                true => name.strip_suffix("_total").unwrap_or(name),
                false => name,
            };
            let tail = if keyword == "# TYPE " && tail == "untyped" {
                "unknown"
            } else {
                tail
            };
            out.push_str(&format!("{keyword}{name} {tail}\n"));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        // `name{labels} value [timestamp in ms]`: value and timestamp follow the labels (or the name).
        let (head, rest) = match line.rfind('}') {
            Some(i) => line.split_at(i + 1),
            None => line.split_once(' ').unwrap_or((line, "")),
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        match fields.as_slice() {
            [value, ms] if ms.parse::<i64>().is_ok() => {
                let ms: i64 = ms.parse().unwrap_or_default();
                out.push_str(&format!(
                    "{head} {value} {}.{:03}\n",
                    ms.div_euclid(1000),
                    ms.rem_euclid(1000)
                ));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Hand-written Prometheus text, answered as asked.
pub fn text_response(text: String, accept: Option<&str>) -> Response {
    if wants_openmetrics(accept) {
        encoded(to_openmetrics(&text), true)
    } else {
        encoded(text, false)
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
    fn the_text_format_becomes_openmetrics() {
        let text = "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed by the container in core-seconds\n\
            # TYPE container_cpu_usage_seconds_total counter\n\
            container_cpu_usage_seconds_total{container=\"web\",pod=\"p\"} 1.5 1800000000123\n\
            # HELP node_memory_working_set_bytes Current working set of the node in bytes\n\
            # TYPE node_memory_working_set_bytes gauge\n\
            node_memory_working_set_bytes 4096 1800000000123\n\
            scrape_error 0\n";
        let om = to_openmetrics(text);
        assert!(
            om.contains("# TYPE container_cpu_usage_seconds counter\n"),
            "{om}"
        );
        assert!(om.contains("} 1.5 1800000000.123\n"), "{om}");
        assert!(
            om.contains("node_memory_working_set_bytes 4096 1800000000.123\n"),
            "{om}"
        );
        assert!(om.ends_with("scrape_error 0\n# EOF\n"), "{om}");
        // The collector's own OpenMetrics parser takes it, types and timestamps included.
        let samples = collector::exposition::parse(&om, true).unwrap();
        assert_eq!(samples[0].kind, collector::exposition::MetricType::Counter);
        assert_eq!(samples[0].timestamp_ms, Some(1800000000123));
    }
}
