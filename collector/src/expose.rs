//! The snapshot in the Prometheus text format, with each sample's timestamp (in milliseconds, as the
//! kubelet writes them): `/metrics/resource` with the kubelet's names and labels, `/metrics/cadvisor`
//! with cAdvisor's.

use std::fmt::Write;

use crate::Snapshot;

/// Label values escaped as the text format wants them.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The kubelet's `/metrics/resource`.
pub fn resource(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let Some(time) = snapshot.time else {
        return out;
    };
    let ms = time.as_millisecond();
    if let Some(node) = &snapshot.node {
        family(
            &mut out,
            "node_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the node in core-seconds",
        );
        let _ = writeln!(out, "node_cpu_usage_seconds_total {} {ms}", node.cpu_seconds);
        family(
            &mut out,
            "node_memory_working_set_bytes",
            "gauge",
            "Current working set of the node in bytes",
        );
        let _ = writeln!(
            out,
            "node_memory_working_set_bytes {} {ms}",
            node.memory_working_set_bytes
        );
    }
    let labels = |c: &crate::ContainerSample| {
        format!(
            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
            escape(&c.target.container),
            escape(&c.target.namespace),
            escape(&c.target.pod)
        )
    };
    family(
        &mut out,
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
    );
    for c in &snapshot.containers {
        let _ = writeln!(
            out,
            "container_cpu_usage_seconds_total{{{}}} {} {ms}",
            labels(c),
            c.usage.cpu_seconds
        );
    }
    family(
        &mut out,
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set of the container in bytes",
    );
    for c in &snapshot.containers {
        let _ = writeln!(
            out,
            "container_memory_working_set_bytes{{{}}} {} {ms}",
            labels(c),
            c.usage.memory_working_set_bytes
        );
    }
    family(
        &mut out,
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds",
    );
    for c in &snapshot.containers {
        let start = c.target.started_at.as_millisecond() as f64 / 1000.0;
        let _ = writeln!(out, "container_start_time_seconds{{{}}} {start} {ms}", labels(c));
    }
    // Pods: the sums of their containers.
    let mut pods: std::collections::BTreeMap<(&str, &str), (f64, u64)> = std::collections::BTreeMap::new();
    for c in &snapshot.containers {
        let pod = pods.entry((&c.target.namespace, &c.target.pod)).or_default();
        pod.0 += c.usage.cpu_seconds;
        pod.1 += c.usage.memory_working_set_bytes;
    }
    family(
        &mut out,
        "pod_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the pod in core-seconds",
    );
    for ((namespace, pod), (cpu, _)) in &pods {
        let _ = writeln!(
            out,
            "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {cpu} {ms}",
            escape(namespace),
            escape(pod)
        );
    }
    family(
        &mut out,
        "pod_memory_working_set_bytes",
        "gauge",
        "Current working set of the pod in bytes",
    );
    for ((namespace, pod), (_, memory)) in &pods {
        let _ = writeln!(
            out,
            "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {memory} {ms}",
            escape(namespace),
            escape(pod)
        );
    }
    family(
        &mut out,
        "scrape_error",
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
    );
    let _ = writeln!(out, "scrape_error {}", u8::from(snapshot.node.is_none()));
    out
}

/// A cAdvisor series: name, type, help, and its value for a container.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::ContainerSample) -> f64,
);

/// cAdvisor's `/metrics/cadvisor` (the series dashboards use most).
pub fn cadvisor(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let Some(time) = snapshot.time else {
        return out;
    };
    let ms = time.as_millisecond();
    let labels = |c: &crate::ContainerSample| {
        format!(
            "container=\"{}\",id=\"/glasshouse/{}\",image=\"{}\",name=\"{}\",namespace=\"{}\",pod=\"{}\"",
            escape(&c.target.container),
            escape(&c.target.id),
            escape(&c.target.image),
            escape(&c.target.id),
            escape(&c.target.namespace),
            escape(&c.target.pod)
        )
    };
    let series: [Series; 6] = [
        (
            "container_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed in seconds",
            |c| c.usage.cpu_seconds,
        ),
        (
            "container_memory_usage_bytes",
            "gauge",
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
            |c| c.usage.memory_usage_bytes as f64,
        ),
        (
            "container_memory_working_set_bytes",
            "gauge",
            "Current working set in bytes",
            |c| c.usage.memory_working_set_bytes as f64,
        ),
        ("container_memory_rss", "gauge", "Size of RSS in bytes", |c| {
            c.usage.memory_rss_bytes as f64
        }),
        (
            "container_processes",
            "gauge",
            "Number of processes running inside the container",
            |c| c.usage.processes as f64,
        ),
        (
            "container_start_time_seconds",
            "gauge",
            "Start time of the container since unix epoch in seconds",
            |c| c.target.started_at.as_millisecond() as f64 / 1000.0,
        ),
    ];
    for (name, kind, help, value) in series {
        family(&mut out, name, kind, help);
        for c in &snapshot.containers {
            let _ = writeln!(out, "{name}{{{}}} {} {ms}", labels(c), value(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContainerSample, ContainerTarget, Usage};

    #[test]
    fn series_carry_the_kubelets_names_labels_and_timestamps() {
        let time: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let snapshot = Snapshot {
            time: Some(time),
            node: Some(Usage {
                cpu_seconds: 100.5,
                memory_working_set_bytes: 2048,
                ..Usage::default()
            }),
            containers: vec![ContainerSample {
                target: ContainerTarget {
                    namespace: "default".into(),
                    pod: "web-\"1\"".into(),
                    container: "app".into(),
                    image: "nginx".into(),
                    id: "abc".into(),
                    cgroups: vec![],
                    pid: Some(1),
                    started_at: "2026-11-30T11:00:00Z".parse().unwrap(),
                },
                usage: Usage {
                    cpu_seconds: 1.25,
                    memory_working_set_bytes: 4096,
                    memory_rss_bytes: 1024,
                    ..Usage::default()
                },
            }],
        };
        let ms = time.as_millisecond();
        let text = resource(&snapshot);
        for line in [
            format!("node_cpu_usage_seconds_total 100.5 {ms}"),
            format!(
                "container_cpu_usage_seconds_total{{container=\"app\",namespace=\"default\",pod=\"web-\\\"1\\\"\"}} 1.25 {ms}"
            ),
            format!(
                "container_start_time_seconds{{container=\"app\",namespace=\"default\",pod=\"web-\\\"1\\\"\"}} 1796036400 {ms}"
            ),
            format!("pod_memory_working_set_bytes{{namespace=\"default\",pod=\"web-\\\"1\\\"\"}} 4096 {ms}"),
            "scrape_error 0".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert!(text.contains("# TYPE container_cpu_usage_seconds_total counter"));
        let text = cadvisor(&snapshot);
        assert!(
            text.contains("container_memory_rss{container=\"app\",id=\"/glasshouse/abc\",image=\"nginx\""),
            "{text}"
        );
        assert_eq!(resource(&Snapshot::default()), "");
    }
}
