//! Scrape cost: bytes, series and encode time per exposition, the median of 20 encodes on one thread.
//! - A registry of 100,000 counter series (`apiserver_request_total`-like labels), as served on
//!   `/metrics`: `prometheus-client`'s own OpenMetrics encoding (the peer, in the same run) and the
//!   Prometheus text format derived from it (what curl and promtool get); with dynamic labels
//!   (`Vec<(String, String)>`) and with a typed label set, as the platform's families use.
//! - `/metrics/state` for 200 pods and a node, and for 6,000 pods (about 100,000 series).
//!
//! `cargo bench -p control-plane --bench exposition`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use control_plane::exposition::to_text_format;
use control_plane::state_metrics::StateMetrics;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStatus, Node, NodeCondition, NodeStatus, Pod,
    PodCondition, PodSpec, PodStatus, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

const RUNS: usize = 20;

/// The labels as the platform's own families declare them: a typed set, not strings in a vector.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    resource: String,
    code: &'static str,
    namespace: String,
}

/// The median time of `RUNS` calls, and the size of what the last one made.
fn measure(mut encode: impl FnMut() -> String) -> (Duration, String) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = String::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        last = encode();
        times.push(started.elapsed());
    }
    times.sort();
    (times[RUNS / 2], last)
}

fn series(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

fn report(what: &str, (time, text): (Duration, String)) {
    println!(
        "  {what}: {} series, {:.1} MiB, {:.1} ms",
        series(&text),
        text.len() as f64 / (1 << 20) as f64,
        time.as_secs_f64() * 1000.0
    );
}

fn pod(i: usize) -> Pod {
    let quantities = |cpu: &str, memory: &str| {
        Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ]))
    };
    Pod {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("web-7d9f8b6c5-{i:05}")),
            namespace: Some(format!("team-{}", i % 20)),
            uid: Some(format!("00000000-0000-0000-0000-{i:012}")),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: "web".into(),
                resources: Some(ResourceRequirements {
                    requests: quantities("100m", "64Mi"),
                    limits: quantities("500m", "128Mi"),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(format!("127.100.{}.{}", i / 250, i % 250)),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            container_statuses: Some(vec![ContainerStatus {
                name: "web".into(),
                restart_count: (i % 3) as i32,
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning::default()),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn node() -> Node {
    Node {
        metadata: kube::api::ObjectMeta {
            name: Some("node-1".into()),
            ..Default::default()
        },
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn main() {
    let mut registry = Registry::default();
    let requests: Family<Vec<(String, String)>, Counter> = Family::default();
    for verb in ["GET", "LIST", "WATCH", "PATCH", "POST"] {
        for resource in 0..40 {
            for code in ["200", "201", "404", "409", "500"] {
                for namespace in 0..100 {
                    requests
                        .get_or_create(&vec![
                            ("verb".into(), verb.into()),
                            ("resource".into(), format!("resource{resource}")),
                            ("code".into(), code.into()),
                            ("namespace".into(), format!("ns{namespace}")),
                        ])
                        .inc();
                }
            }
        }
    }
    registry.register("apiserver_request", "Requests", requests);
    let openmetrics = || {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    };
    println!("  a registry of 100,000 counter series (/metrics):");
    report(
        "prometheus-client's OpenMetrics encoding (peer, same run)",
        measure(openmetrics),
    );
    report(
        "the Prometheus text format (encoding + conversion)",
        measure(|| to_text_format(&openmetrics())),
    );
    let mut typed_registry = Registry::default();
    let typed: Family<RequestLabels, Counter> = Family::default();
    for verb in ["GET", "LIST", "WATCH", "PATCH", "POST"] {
        for resource in 0..40 {
            for code in ["200", "201", "404", "409", "500"] {
                for namespace in 0..100 {
                    typed
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
    typed_registry.register("apiserver_request", "Requests", typed);
    let typed_openmetrics = || {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &typed_registry).unwrap();
        out
    };
    println!("  the same 100,000 series with typed labels (as the platform's families declare them):");
    report(
        "prometheus-client's OpenMetrics encoding",
        measure(typed_openmetrics),
    );
    report(
        "the Prometheus text format (encoding + conversion)",
        measure(|| to_text_format(&typed_openmetrics())),
    );
    for pods in [200, 6_000] {
        let state = StateMetrics::of((0..pods).map(pod).collect(), vec![node()]);
        println!("  /metrics/state with {pods} pods and a node:");
        report("text format", measure(|| state.encode(false)));
        report("OpenMetrics", measure(|| state.encode(true)));
    }
}
