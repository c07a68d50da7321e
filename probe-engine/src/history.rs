//! Probe history, beyond the kubelet: the last attempts of every probe of every container of a pod
//! (time, outcome, latency, result, output), kept across container restarts while the pod exists, so
//! that "why was this restarted at 03:12" has an answer. Served as the pod subresource `probes`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

use crate::handlers::Outcome;
use crate::worker::{AttemptRecord, ProbeResult};

/// Attempts kept per container and probe type.
pub const KEPT: usize = 50;
/// Output kept per attempt.
const OUTPUT: usize = 1024;

/// One attempt, as served.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub probe_type: &'static str,
    /// RFC 3339.
    pub time: String,
    pub duration_seconds: f64,
    /// `success`, `warning`, `failure`, `unknown` or `error`.
    pub outcome: &'static str,
    /// The probe's result after this attempt: `Success`, `Failure` or `Unknown`.
    pub result: &'static str,
    /// What the probe answered (the first KiB), or the error.
    pub output: String,
    /// Which run of the container (its restart count then).
    pub restart_count: i32,
}

/// A pod's history, newest attempts first per container.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodHistory {
    pub containers: BTreeMap<String, Vec<Entry>>,
}

/// A pod's attempts by container, then probe type.
type PodEntries = BTreeMap<String, BTreeMap<&'static str, VecDeque<Entry>>>;

#[derive(Debug, Default)]
pub struct History {
    /// By pod uid.
    pods: Mutex<HashMap<String, PodEntries>>,
}

impl History {
    pub fn record(&self, pod_uid: &str, container: &str, restart_count: i32, record: &AttemptRecord) {
        let (outcome, output) = match &record.outcome {
            Ok((Outcome::Success, o)) => ("success", o),
            Ok((Outcome::Warning, o)) => ("warning", o),
            Ok((Outcome::Failure, o)) => ("failure", o),
            Ok((Outcome::Unknown, o)) => ("unknown", o),
            Err(e) => ("error", e),
        };
        let mut cut = output.len().min(OUTPUT);
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        let entry = Entry {
            probe_type: record.probe_type.as_str(),
            time: jiff::Timestamp::try_from(record.time)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            duration_seconds: record.duration.as_secs_f64(),
            outcome,
            result: match record.result {
                ProbeResult::Success => "Success",
                ProbeResult::Failure => "Failure",
                ProbeResult::Unknown => "Unknown",
            },
            output: output[..cut].to_string(),
            restart_count,
        };
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let kept = pods
            .entry(pod_uid.to_string())
            .or_default()
            .entry(container.to_string())
            .or_default()
            .entry(record.probe_type.as_str())
            .or_default();
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(entry);
    }

    /// What is kept for a pod, newest first per container.
    pub fn pod(&self, pod_uid: &str) -> PodHistory {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let mut history = PodHistory::default();
        for (container, by_type) in pods.get(pod_uid).into_iter().flatten() {
            let mut entries: Vec<Entry> = by_type.values().flatten().cloned().collect();
            entries.sort_by(|a, b| b.time.cmp(&a.time));
            history.containers.insert(container.clone(), entries);
        }
        history
    }

    /// Forgets a pod that is gone.
    pub fn forget(&self, pod_uid: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pod_uid);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::spec::ProbeType;

    #[test]
    fn the_last_attempts_are_kept_newest_first_and_bounded() {
        let history = History::default();
        for n in 0..(KEPT + 10) {
            history.record(
                "uid",
                "app",
                0,
                &AttemptRecord {
                    probe_type: ProbeType::Liveness,
                    time: SystemTime::UNIX_EPOCH + Duration::from_secs(n as u64),
                    duration: Duration::from_millis(3),
                    outcome: Ok((Outcome::Failure, format!("attempt {n} {}", "é".repeat(1000)))),
                    result: ProbeResult::Failure,
                },
            );
        }
        let pod = history.pod("uid");
        let entries = &pod.containers["app"];
        assert_eq!(entries.len(), KEPT);
        assert!(entries[0].output.starts_with(&format!("attempt {}", KEPT + 9)));
        assert!(entries[0].output.len() <= OUTPUT);
        assert_eq!((entries[0].outcome, entries[0].result), ("failure", "Failure"));
        history.forget("uid");
        assert!(history.pod("uid").containers.is_empty());
    }
}
