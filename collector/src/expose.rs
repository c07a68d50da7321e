//! The snapshot as the kubelet serves it: `/metrics/resource` with the kubelet's names and labels,
//! `/metrics/cadvisor` with cAdvisor's, each sample with the snapshot's timestamp. Written straight in
//! either format: the Prometheus text format (timestamps in milliseconds, counters named by their
//! `_total` series) or OpenMetrics (timestamps in seconds, counter families named without `_total`,
//! `# EOF` at the end).

use std::borrow::Cow;
use std::fmt::Write;

use crate::Snapshot;

/// Label values escaped as both formats want them.
fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

/// An exposition being written, in one format or the other.
struct Out {
    text: String,
    openmetrics: bool,
    /// The snapshot's time as the format writes it, with its leading space.
    timestamp: String,
}

impl Out {
    fn new(time: jiff::Timestamp, openmetrics: bool, capacity: usize) -> Out {
        let ms = time.as_millisecond();
        let timestamp = if openmetrics {
            format!(" {}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
        } else {
            format!(" {ms}")
        };
        Out {
            text: String::with_capacity(capacity),
            openmetrics,
            timestamp,
        }
    }

    /// Starts a family; `name` is the sample name (`…_total` for counters).
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let name = match (self.openmetrics, kind) {
            (true, "counter") => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let _ = write!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    /// A sample with the snapshot's timestamp; `labels` are written already (`k="v",…`), or empty.
    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            self.text.push_str(labels);
            self.text.push('}');
        }
        let _ = write!(self.text, " {value}");
        self.text.push_str(&self.timestamp);
        self.text.push('\n');
    }

    fn finish(mut self) -> String {
        if self.openmetrics {
            self.text.push_str("# EOF\n");
        }
        self.text
    }
}

/// The kubelet's `/metrics/resource`.
pub fn resource(snapshot: &Snapshot, openmetrics: bool) -> String {
    let Some(time) = snapshot.time else {
        return if openmetrics {
            "# EOF\n".into()
        } else {
            String::new()
        };
    };
    let mut out = Out::new(time, openmetrics, 512 * (snapshot.containers.len() + 2));
    if let Some(node) = &snapshot.node {
        out.family(
            "node_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the node in core-seconds",
        );
        out.sample("node_cpu_usage_seconds_total", "", node.cpu_seconds);
        out.family(
            "node_memory_working_set_bytes",
            "gauge",
            "Current working set of the node in bytes",
        );
        out.sample("node_memory_working_set_bytes", "", node.memory_working_set_bytes);
    }
    let labels: Vec<String> = snapshot
        .containers
        .iter()
        .map(|c| {
            format!(
                "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
                escape(&c.target.container),
                escape(&c.target.namespace),
                escape(&c.target.pod)
            )
        })
        .collect();
    out.family(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
    );
    for (c, labels) in snapshot.containers.iter().zip(&labels) {
        out.sample("container_cpu_usage_seconds_total", labels, c.usage.cpu_seconds);
    }
    out.family(
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set of the container in bytes",
    );
    for (c, labels) in snapshot.containers.iter().zip(&labels) {
        out.sample(
            "container_memory_working_set_bytes",
            labels,
            c.usage.memory_working_set_bytes,
        );
    }
    out.family(
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds",
    );
    for (c, labels) in snapshot.containers.iter().zip(&labels) {
        let start = c.target.started_at.as_millisecond() as f64 / 1000.0;
        out.sample("container_start_time_seconds", labels, start);
    }
    // Pods: the sums of their containers.
    let mut pods: std::collections::BTreeMap<(&str, &str), (f64, u64)> = std::collections::BTreeMap::new();
    for c in &snapshot.containers {
        let pod = pods.entry((&c.target.namespace, &c.target.pod)).or_default();
        pod.0 += c.usage.cpu_seconds;
        pod.1 += c.usage.memory_working_set_bytes;
    }
    let pod_labels: Vec<String> = pods
        .keys()
        .map(|(namespace, pod)| format!("namespace=\"{}\",pod=\"{}\"", escape(namespace), escape(pod)))
        .collect();
    out.family(
        "pod_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the pod in core-seconds",
    );
    for ((cpu, _), labels) in pods.values().zip(&pod_labels) {
        out.sample("pod_cpu_usage_seconds_total", labels, cpu);
    }
    out.family(
        "pod_memory_working_set_bytes",
        "gauge",
        "Current working set of the pod in bytes",
    );
    for ((_, memory), labels) in pods.values().zip(&pod_labels) {
        out.sample("pod_memory_working_set_bytes", labels, memory);
    }
    out.family(
        "scrape_error",
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
    );
    // The kubelet writes this one without a timestamp.
    let _ = writeln!(out.text, "scrape_error {}", u8::from(snapshot.node.is_none()));
    out.finish()
}

/// A cAdvisor series: name, type, help, and its value for a container.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::ContainerSample) -> f64,
);

/// cAdvisor's `/metrics/cadvisor` (the series dashboards use most).
pub fn cadvisor(snapshot: &Snapshot, openmetrics: bool) -> String {
    let Some(time) = snapshot.time else {
        return if openmetrics {
            "# EOF\n".into()
        } else {
            String::new()
        };
    };
    let mut out = Out::new(time, openmetrics, 1024 * (snapshot.containers.len() + 1));
    let labels: Vec<String> = snapshot
        .containers
        .iter()
        .map(|c| {
            format!(
                "container=\"{}\",id=\"/glasshouse/{}\",image=\"{}\",name=\"{}\",namespace=\"{}\",pod=\"{}\"",
                escape(&c.target.container),
                escape(&c.target.id),
                escape(&c.target.image),
                escape(&c.target.id),
                escape(&c.target.namespace),
                escape(&c.target.pod)
            )
        })
        .collect();
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
        out.family(name, kind, help);
        for (c, labels) in snapshot.containers.iter().zip(&labels) {
            out.sample(name, labels, value(c));
        }
    }
    out.finish()
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
        let text = resource(&snapshot, false);
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
        let text = cadvisor(&snapshot, false);
        assert!(
            text.contains("container_memory_rss{container=\"app\",id=\"/glasshouse/abc\",image=\"nginx\""),
            "{text}"
        );
        assert_eq!(resource(&Snapshot::default(), false), "");

        // OpenMetrics: counter families without `_total`, timestamps in seconds, `# EOF`; the
        // collector's own parser takes it, types and timestamps included.
        for om in [resource(&snapshot, true), cadvisor(&snapshot, true)] {
            assert!(
                om.contains("# TYPE container_cpu_usage_seconds counter\n"),
                "{om}"
            );
            assert!(om.ends_with("# EOF\n"), "{om}");
            let samples = crate::exposition::parse(&om, true).unwrap();
            let cpu = samples
                .iter()
                .find(|s| s.name == "container_cpu_usage_seconds_total")
                .unwrap();
            assert_eq!(cpu.kind, crate::exposition::MetricType::Counter);
            assert_eq!(cpu.timestamp_ms, Some(ms));
        }
        assert!(resource(&snapshot, true).contains(&format!(" 1.25 {}.000\n", ms / 1000)));
    }
}
