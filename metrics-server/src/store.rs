//! The last two samples per node and container, and the rates between them (metrics-server's
//! `pkg/storage`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// One point: when, CPU time so far, memory working set.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    time: jiff::Timestamp,
    cpu_seconds: f64,
    memory: u64,
}

/// The last two points of a series.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    prev: Option<Point>,
    last: Option<Point>,
}

impl Window {
    /// A newer point moves the last one back; an older or equal one is ignored; a counter that went
    /// back (a restarted container under the same name) starts the window again.
    fn push(&mut self, point: Point) {
        match self.last {
            Some(last) if point.time <= last.time => {}
            Some(last) if point.cpu_seconds < last.cpu_seconds => {
                self.prev = None;
                self.last = Some(point);
            }
            last => {
                self.prev = last;
                self.last = Some(point);
            }
        }
    }

    fn usage(&self) -> Option<Usage> {
        let (prev, last) = (self.prev?, self.last?);
        let window = last.time.duration_since(prev.time);
        let seconds = window.as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        Some(Usage {
            timestamp: last.time,
            window: Duration::try_from(window).ok()?,
            nanocores: ((last.cpu_seconds - prev.cpu_seconds).max(0.0) / seconds * 1e9) as u64,
            memory_bytes: last.memory,
        })
    }
}

/// A usage over a window, as served.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    pub timestamp: jiff::Timestamp,
    pub window: Duration,
    pub nanocores: u64,
    pub memory_bytes: u64,
}

#[derive(Default)]
struct Windows {
    node: Window,
    /// By (namespace, pod), then container.
    pods: HashMap<(String, String), BTreeMap<String, Window>>,
}

/// The windows of one node's samples.
#[derive(Clone)]
pub struct Store {
    node: String,
    windows: Arc<RwLock<Windows>>,
}

impl Store {
    pub fn new(node: &str) -> Store {
        Store {
            node: node.to_string(),
            windows: Arc::default(),
        }
    }

    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// Takes a collector snapshot in: containers not in it are gone.
    pub fn push(&self, snapshot: &collector::Snapshot) {
        let Some(time) = snapshot.time else { return };
        let mut windows = self.windows.write().unwrap_or_else(|e| e.into_inner());
        if let Some(node) = &snapshot.node {
            windows.node.push(Point {
                time,
                cpu_seconds: node.cpu_seconds,
                memory: node.memory_working_set_bytes,
            });
        }
        let mut seen: HashMap<(String, String), Vec<&str>> = HashMap::new();
        for c in &snapshot.containers {
            let pod = (c.target.namespace.clone(), c.target.pod.clone());
            seen.entry(pod.clone()).or_default().push(&c.target.container);
            windows
                .pods
                .entry(pod)
                .or_default()
                .entry(c.target.container.clone())
                .or_default()
                .push(Point {
                    time,
                    cpu_seconds: c.usage.cpu_seconds,
                    memory: c.usage.memory_working_set_bytes,
                });
        }
        windows.pods.retain(|pod, containers| {
            let Some(present) = seen.get(pod) else {
                return false;
            };
            containers.retain(|name, _| present.contains(&name.as_str()));
            true
        });
    }

    /// Follows the collector: a snapshot every `resolution`.
    pub fn run(self, collector: collector::Collector, resolution: Duration, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(resolution);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => self.push(&collector.snapshot()),
                }
            }
        });
    }

    pub fn node(&self) -> Option<Usage> {
        self.windows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .node
            .usage()
    }

    /// A pod's containers' usage, once every container has two samples; its time and window are the
    /// earliest container's.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Vec<(String, Usage)>> {
        let windows = self.windows.read().unwrap_or_else(|e| e.into_inner());
        let containers = windows.pods.get(&(namespace.to_string(), name.to_string()))?;
        containers
            .iter()
            .map(|(name, window)| Some((name.clone(), window.usage()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collector::{ContainerSample, ContainerTarget, Snapshot, Usage as Sample};

    fn snapshot(at: i64, cpu: f64, containers: &[&str]) -> Snapshot {
        Snapshot {
            time: Some(jiff::Timestamp::from_second(at).unwrap()),
            node: Some(Sample {
                cpu_seconds: cpu * 2.0,
                memory_working_set_bytes: 1 << 30,
                ..Sample::default()
            }),
            containers: containers
                .iter()
                .map(|name| ContainerSample {
                    target: ContainerTarget {
                        namespace: "default".into(),
                        pod: "web".into(),
                        container: name.to_string(),
                        image: String::new(),
                        id: name.to_string(),
                        cgroups: vec![],
                        pid: None,
                        started_at: jiff::Timestamp::from_second(0).unwrap(),
                    },
                    usage: Sample {
                        cpu_seconds: cpu,
                        memory_working_set_bytes: 1 << 20,
                        ..Sample::default()
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn rates_need_two_samples_and_follow_the_window() {
        let store = Store::new("n");
        store.push(&snapshot(100, 10.0, &["a", "b"]));
        assert_eq!(store.pod("default", "web"), None, "one sample is no rate");
        store.push(&snapshot(102, 11.0, &["a", "b"]));
        let pod = store.pod("default", "web").unwrap();
        assert_eq!(pod.len(), 2);
        assert_eq!(pod[0].1.nanocores, 500_000_000, "1 s of CPU in 2 s");
        assert_eq!(pod[0].1.window, Duration::from_secs(2));
        assert_eq!(store.node().unwrap().nanocores, 1_000_000_000);
        // An older sample is ignored; a counter that went back starts over.
        store.push(&snapshot(101, 99.0, &["a", "b"]));
        assert_eq!(store.pod("default", "web").unwrap()[0].1.nanocores, 500_000_000);
        store.push(&snapshot(103, 1.0, &["a", "b"]));
        assert_eq!(store.pod("default", "web"), None);
        // A container gone is forgotten; a pod gone too.
        store.push(&snapshot(104, 2.0, &["a"]));
        assert_eq!(store.pod("default", "web").unwrap().len(), 1);
        store.push(&snapshot(105, 3.0, &[]));
        assert_eq!(store.pod("default", "web"), None);
    }
}
