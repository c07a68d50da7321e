//! Scrape cost of every endpoint of `glasshouse up` (release build) with 200 pods: each pod a sleeping
//! process with requests, limits and an exec readiness probe. For each endpoint and each format
//! (Prometheus text, and OpenMetrics as Prometheus asks for it): bytes, series, and the median of 20
//! scrapes as a client on loopback sees them (request sent to the last byte received, so encoding plus
//! HTTP), and the server's own mean encode time over those scrapes
//! (`glasshouse_metrics_encode_duration_seconds`), each scaled to 100,000 series. The peer, in the same
//! process and run: `prometheus-client` encoding 100,000 counter series with a typed label set, the
//! library's own cost with nothing around it.
//!
//! `cargo bench --bench scrape`

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::json;

const PODS: usize = 200;
const SCRAPES: usize = 20;
const ENDPOINTS: [&str; 5] = [
    "/metrics",
    "/metrics/probes",
    "/metrics/resource",
    "/metrics/cadvisor",
    "/metrics/state",
];
const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    resource: String,
    code: &'static str,
    namespace: String,
}

fn series(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

/// The server's encode-time histogram: (sum, count) by (endpoint, format).
async fn encode_times(client: &reqwest::Client, base: &str) -> HashMap<(String, String), (f64, f64)> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[start..start + line[start..].find('"').unwrap()].to_string()
    };
    let mut out: HashMap<(String, String), (f64, f64)> = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("glasshouse_metrics_encode_duration_seconds_") else {
            continue;
        };
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let entry = out
            .entry((label(line, "endpoint"), label(line, "format")))
            .or_default();
        if rest.starts_with("sum{") {
            entry.0 = value;
        } else if rest.starts_with("count{") {
            entry.1 = value;
        }
    }
    out
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The peer: prometheus-client's OpenMetrics encoding of 100,000 typed counter series, median of 20.
fn peer() -> Duration {
    let mut registry = Registry::default();
    let requests: Family<RequestLabels, Counter> = Family::default();
    for verb in ["GET", "LIST", "WATCH", "PATCH", "POST"] {
        for resource in 0..40 {
            for code in ["200", "201", "404", "409", "500"] {
                for namespace in 0..100 {
                    requests
                        .get_or_create(&RequestLabels {
                            verb,
                            resource: format!("resource{resource}"),
                            code,
                            namespace: format!("ns{namespace}"),
                        })
                        .inc();
                }
            }
        }
    }
    registry.register("apiserver_request", "Requests", requests);
    let times = (0..SCRAPES)
        .map(|_| {
            let started = Instant::now();
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            assert_eq!(series(&out), 100_000);
            started.elapsed()
        })
        .collect();
    median(times)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_in(dir.path(), &["--max-pods", "250"]);
    let http = server.http(4);
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scrape"},
        "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": "scrape"}},
            "template": {"metadata": {"labels": {"app": "scrape"}},
                "spec": {"containers": [{
                    "name": "sleep", "image": "busybox", "command": ["sleep", "100000"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                  "limits": {"cpu": "100m", "memory": "64Mi"}},
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 10}
                }]}}}
    });
    server
        .create(&http, "/apis/apps/v1/namespaces/default/deployments", &deployment)
        .await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pods = server
            .get_json(
                &http,
                "/api/v1/namespaces/default/pods?labelSelector=app%3Dscrape",
            )
            .await;
        let ready = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .count();
        if ready == PODS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ready} of {PODS} pods ready after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Every probe has run and the collector has samples of every container.
    tokio::time::sleep(Duration::from_secs(12)).await;

    let base = server.metrics.trim_end_matches("/metrics").to_string();
    let client = reqwest::Client::new();
    println!("scrape cost with {PODS} pods (median of {SCRAPES} scrapes, encoding plus HTTP on loopback):");
    // What a scrape costs before any encoding: the same request answered 404 with no body.
    let mut empty = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        let started = Instant::now();
        let response = client.get(format!("{base}/metrics/none")).send().await.unwrap();
        assert_eq!(response.status(), 404);
        response.bytes().await.unwrap();
        empty.push(started.elapsed());
    }
    let empty = median(empty);
    println!(
        "  an empty request (404, no body): {:.2} ms",
        empty.as_secs_f64() * 1000.0
    );
    let per_100k = |time: Duration, n: usize| time.as_secs_f64() * 1000.0 * 100_000.0 / n.max(1) as f64;
    let mut total_series = 0;
    let mut total_time = Duration::ZERO;
    let mut total_encode = Duration::ZERO;
    for endpoint in ENDPOINTS {
        for (format, accept) in [("text", "text/plain;version=0.0.4"), ("OpenMetrics", OPENMETRICS)] {
            let before = encode_times(&client, &base).await;
            let mut times = Vec::with_capacity(SCRAPES);
            let mut body = String::new();
            for _ in 0..SCRAPES {
                let started = Instant::now();
                body = client
                    .get(format!("{base}{endpoint}"))
                    .header("Accept", accept)
                    .send()
                    .await
                    .unwrap()
                    .error_for_status()
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                times.push(started.elapsed());
            }
            let time = median(times);
            let after = encode_times(&client, &base).await;
            let key = (
                endpoint.to_string(),
                if format == "text" { "text" } else { "openmetrics" }.to_string(),
            );
            let (sum, count) = after[&key];
            let (sum_before, count_before) = before.get(&key).copied().unwrap_or_default();
            let encode = Duration::from_secs_f64((sum - sum_before) / (count - count_before));
            let n = series(&body);
            if format == "OpenMetrics" {
                assert!(body.ends_with("# EOF\n"), "{endpoint} answered OpenMetrics");
                total_series += n;
                total_time += time;
                total_encode += encode;
            }
            println!(
                "  {endpoint} ({format}): {n} series, {:.1} KiB; scrape {:.2} ms: {:.1} ms per 100,000 series \
                 ({:.1} ms less the empty request); server encode {:.3} ms: {:.1} ms per 100,000 series",
                body.len() as f64 / 1024.0,
                time.as_secs_f64() * 1000.0,
                per_100k(time, n),
                per_100k(time.saturating_sub(empty), n),
                encode.as_secs_f64() * 1000.0,
                per_100k(encode, n),
            );
        }
    }
    println!(
        "  all five endpoints (OpenMetrics): {total_series} series; scrapes {:.2} ms: {:.1} ms per 100,000 series \
         ({:.1} ms less five empty requests); server encode {:.2} ms: {:.1} ms per 100,000 series",
        total_time.as_secs_f64() * 1000.0,
        per_100k(total_time, total_series),
        per_100k(total_time.saturating_sub(empty * 5), total_series),
        total_encode.as_secs_f64() * 1000.0,
        per_100k(total_encode, total_series),
    );
    println!(
        "peer: prometheus-client encoding 100,000 typed counter series in this process: {:.1} ms",
        peer().as_secs_f64() * 1000.0
    );

    drop(server);
    common::stop_containers(dir.path());
}
