//! The kubelet's probe metrics (`spec/probes.md` §5), for `/metrics/probes`:
//! `prober_probe_total{probe_type,result,container,pod,namespace,pod_uid}`, counted for every attempt
//! that ran (not for errors), and `prober_probe_duration_seconds{probe_type,container,pod,namespace}`,
//! observed for successes only. A container's series go when its worker stops.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::handlers::Outcome;
use crate::spec::ProbeType;
use crate::worker::AttemptRecord;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TotalLabels {
    pub probe_type: &'static str,
    pub result: &'static str,
    pub container: String,
    pub pod: String,
    pub namespace: String,
    pub pod_uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub probe_type: &'static str,
    pub container: String,
    pub pod: String,
    pub namespace: String,
}

/// Which container a worker probes, as the metrics label it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
}

#[derive(Clone)]
pub struct ProbeMetrics {
    total: Family<TotalLabels, Counter>,
    duration: Family<DurationLabels, Histogram>,
}

impl Default for ProbeMetrics {
    fn default() -> Self {
        ProbeMetrics {
            total: Family::default(),
            duration: Family::new_with_constructor(|| {
                // The Prometheus client's default buckets, as upstream's histogram has no others.
                Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            }),
        }
    }
}

const RESULTS: [&str; 3] = ["successful", "failed", "unknown"];

impl ProbeMetrics {
    pub fn register(registry: &mut Registry) -> ProbeMetrics {
        let metrics = ProbeMetrics::default();
        registry.register(
            "prober_probe",
            "Cumulative number of a liveness, readiness or startup probe for a container by result",
            metrics.total.clone(),
        );
        registry.register(
            "prober_probe_duration_seconds",
            "Duration in seconds for a probe response",
            metrics.duration.clone(),
        );
        metrics
    }

    pub fn record(&self, target: &Target, record: &AttemptRecord) {
        let result = match &record.outcome {
            Ok((Outcome::Success | Outcome::Warning, _)) => "successful",
            Ok((Outcome::Failure, _)) => "failed",
            Ok((Outcome::Unknown, _)) => "unknown",
            Err(_) => return,
        };
        self.total
            .get_or_create(&self.total_labels(target, record.probe_type, result))
            .inc();
        if result == "successful" {
            self.duration
                .get_or_create(&duration_labels(target, record.probe_type))
                .observe(record.duration.as_secs_f64());
        }
    }

    /// The series of a worker that stopped.
    pub fn remove(&self, target: &Target, probe_type: ProbeType) {
        for result in RESULTS {
            self.total.remove(&self.total_labels(target, probe_type, result));
        }
        self.duration.remove(&duration_labels(target, probe_type));
    }

    fn total_labels(&self, target: &Target, probe_type: ProbeType, result: &'static str) -> TotalLabels {
        TotalLabels {
            probe_type: probe_type.as_str(),
            result,
            container: target.container.clone(),
            pod: target.pod.clone(),
            namespace: target.namespace.clone(),
            pod_uid: target.pod_uid.clone(),
        }
    }
}

fn duration_labels(target: &Target, probe_type: ProbeType) -> DurationLabels {
    DurationLabels {
        probe_type: probe_type.as_str(),
        container: target.container.clone(),
        pod: target.pod.clone(),
        namespace: target.namespace.clone(),
    }
}
