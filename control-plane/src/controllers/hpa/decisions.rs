//! The HPA's explained decisions (a Glasshouse extension): for every rescale and every refusal, what
//! each metric recommended and why (the pods it counted as missing, unready or ignored), the
//! stabilization window's contents and the limit that applied. The API serves the last ones, newest
//! first, as the `decisions` subresource of a HorizontalPodAutoscaler.
//!
//! A decision that repeats the previous one (the same counts and reasons: a scale-down held by the
//! stabilization window, every sync period for five minutes) is counted on it, as events are.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

use super::behavior::Normalized;
use super::replicas::PodGroups;

/// Decisions kept per HPA.
const KEPT: usize = 50;

/// What one metric proposed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricDecision {
    /// Upstream's description of the metric ("cpu resource utilization (percentage of request)").
    pub metric: String,
    /// The replicas it asked for, or why it could not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The current value against the target, as `kubectl get hpa` shows them ("73%/50%").
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodGroups>,
}

/// One reconcile that asked for a change, or failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub first_time: String,
    pub last_time: String,
    pub count: u32,
    pub current_replicas: i32,
    /// What was written (or would have been, when `error` says why not).
    pub desired_replicas: i32,
    pub rescaled: bool,
    /// The rescale reason ("cpu resource utilization (percentage of request) above target").
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub metrics: Vec<MetricDecision>,
    /// Stabilization and limits (absent when the metrics or min/max decided alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalized>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Decision {
    /// Whether `other` tells the same story: the same counts, proposals and reasons (the metrics'
    /// current values and the window's contents may have moved).
    fn same_as(&self, other: &Decision) -> bool {
        let outcome = |d: &Decision| {
            (
                d.current_replicas,
                d.desired_replicas,
                d.rescaled,
                d.reason.clone(),
                d.metrics
                    .iter()
                    .map(|m| (m.metric.clone(), m.replicas, m.error.clone()))
                    .collect::<Vec<_>>(),
                d.error.clone(),
                d.normalization.as_ref().map(|n| {
                    (
                        n.recommended,
                        n.stabilized,
                        n.replicas,
                        n.stabilization.clone(),
                        n.limit.clone(),
                    )
                }),
            )
        };
        !self.rescaled && outcome(self) == outcome(other)
    }

    /// A one-line summary for the rescale event.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .metrics
            .iter()
            .map(|m| {
                let mut part = format!("{} {}", m.metric, m.value);
                match (&m.replicas, &m.error) {
                    (Some(r), _) => part.push_str(&format!(" asks {r}")),
                    (None, Some(e)) => part.push_str(&format!(" failed: {e}")),
                    _ => {}
                }
                if let Some(pods) = &m.pods {
                    let others = [
                        ("missing", pods.missing.len()),
                        ("unready", pods.unready.len()),
                        ("ignored", pods.ignored.len()),
                    ];
                    let others: Vec<String> = others
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(what, n)| format!("{n} {what}"))
                        .collect();
                    if !others.is_empty() {
                        part.push_str(&format!(" ({} ready, {})", pods.ready, others.join(", ")));
                    }
                }
                part
            })
            .collect();
        if let Some(n) = &self.normalization {
            if n.stabilized != n.recommended {
                parts.push(format!("stabilized {} → {}", n.recommended, n.stabilized));
            }
            if n.limited {
                parts.push(format!("limited to {} by {}", n.replicas, n.limit.reason));
            }
        }
        parts.join(", ")
    }
}

/// The last decisions of every HPA, by uid.
#[derive(Debug, Default)]
pub struct Decisions {
    by_hpa: Mutex<HashMap<String, VecDeque<Decision>>>,
}

impl Decisions {
    pub fn record(&self, uid: &str, decision: Decision) {
        let mut by_hpa = self.by_hpa.lock().unwrap_or_else(|e| e.into_inner());
        let kept = by_hpa.entry(uid.to_string()).or_default();
        if let Some(newest) = kept.front_mut()
            && newest.same_as(&decision)
        {
            newest.count += 1;
            newest.last_time = decision.last_time;
            newest.metrics = decision.metrics;
            newest.normalization = decision.normalization;
            return;
        }
        kept.push_front(decision);
        kept.truncate(KEPT);
    }

    /// Newest first.
    pub fn of(&self, uid: &str) -> Vec<Decision> {
        let by_hpa = self.by_hpa.lock().unwrap_or_else(|e| e.into_inner());
        by_hpa
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets the HPAs not in `live`.
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        let mut by_hpa = self.by_hpa.lock().unwrap_or_else(|e| e.into_inner());
        by_hpa.retain(|uid, _| live.contains(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(time: &str, desired: i32, rescaled: bool) -> Decision {
        Decision {
            first_time: time.into(),
            last_time: time.into(),
            count: 1,
            current_replicas: 4,
            desired_replicas: desired,
            rescaled,
            reason: String::new(),
            metrics: vec![],
            normalization: None,
            error: None,
        }
    }

    #[test]
    fn repeats_are_counted_and_rescales_kept_apart() {
        let d = Decisions::default();
        d.record("u", decision("t1", 4, false));
        d.record("u", decision("t2", 4, false));
        d.record("u", decision("t3", 2, true));
        d.record("u", decision("t4", 2, true));
        let kept = d.of("u");
        assert_eq!(kept.len(), 3);
        assert_eq!((kept[2].count, kept[2].last_time.as_str()), (2, "t2"));
        assert_eq!(kept[0].first_time, "t4", "newest first");
        for i in 0..100 {
            d.record("u", decision(&format!("x{i}"), i, true));
        }
        assert_eq!(d.of("u").len(), KEPT);
        d.retain(&Default::default());
        assert!(d.of("u").is_empty());
    }
}
