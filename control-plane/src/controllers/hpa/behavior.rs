//! Turning a metric recommendation into the replica count written to `/scale` (k/k `horizontal.go`
//! `normalizeDesiredReplicas`, `normalizeDesiredReplicasWithBehaviors`; `spec/hpa.md` §2):
//! stabilization over the recent recommendations, then the rate limits (`behavior` policies, or the
//! legacy `max(2 × current, 4)`) and the min/max clamp, each step explained by its condition reason.
//!
//! The recommendations and scale events live in the controller's memory, as upstream's do: a restart
//! forgets them.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// How policies combine (`selectPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// The policy allowing the largest change (the default).
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Pods,
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub value: i32,
    pub period: Duration,
}

/// One direction's rules, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub window: Duration,
    pub select: Select,
    pub policies: Vec<Policy>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    pub up: Rules,
    pub down: Rules,
}

const SCALE_UP_DEFAULT: [Policy; 2] = [
    Policy {
        kind: PolicyKind::Pods,
        value: 4,
        period: Duration::from_secs(15),
    },
    Policy {
        kind: PolicyKind::Percent,
        value: 100,
        period: Duration::from_secs(15),
    },
];
const SCALE_DOWN_DEFAULT: [Policy; 1] = [Policy {
    kind: PolicyKind::Percent,
    value: 100,
    period: Duration::from_secs(15),
}];

impl Behavior {
    /// A spec's behavior with upstream's defaults for what it leaves out (`GenerateHPAScaleUpRules`,
    /// `GenerateHPAScaleDownRules`); the scale-down window defaults to the controller's
    /// `downscale_window` (`maybeInitScaleDownStabilizationWindow`).
    pub fn from_spec(spec: &HorizontalPodAutoscalerBehavior, downscale_window: Duration) -> Behavior {
        let rules = |rules: Option<&HPAScalingRules>, window: Duration, defaults: &[Policy]| {
            let rules = rules.cloned().unwrap_or_default();
            Rules {
                window: rules
                    .stabilization_window_seconds
                    .map_or(window, |s| Duration::from_secs(s.max(0) as u64)),
                select: match rules.select_policy.as_deref() {
                    Some("Min") => Select::Min,
                    Some("Disabled") => Select::Disabled,
                    _ => Select::Max,
                },
                policies: match rules.policies {
                    Some(policies) if !policies.is_empty() => policies
                        .iter()
                        .map(|p| Policy {
                            kind: if p.type_ == "Pods" {
                                PolicyKind::Pods
                            } else {
                                PolicyKind::Percent
                            },
                            value: p.value,
                            period: Duration::from_secs(p.period_seconds.max(0) as u64),
                        })
                        .collect(),
                    _ => defaults.to_vec(),
                },
            }
        };
        Behavior {
            up: rules(spec.scale_up.as_ref(), Duration::ZERO, &SCALE_UP_DEFAULT),
            down: rules(spec.scale_down.as_ref(), downscale_window, &SCALE_DOWN_DEFAULT),
        }
    }
}

/// A condition this step sets: its reason and message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reason {
    pub reason: &'static str,
    pub message: &'static str,
}

const READY_FOR_NEW_SCALE: Reason = Reason {
    reason: "ReadyForNewScale",
    message: "recommended size matches current size",
};
const SCALE_UP_STABILIZED: Reason = Reason {
    reason: "ScaleUpStabilized",
    message: "recent recommendations were lower than current one, applying the lowest recent recommendation",
};
const SCALE_DOWN_STABILIZED: Reason = Reason {
    reason: "ScaleDownStabilized",
    message: "recent recommendations were higher than current one, applying the highest recent recommendation",
};
const WITHIN_RANGE: Reason = Reason {
    reason: "DesiredWithinRange",
    message: "the desired count is within the acceptable range",
};
const SCALE_UP_LIMIT: Reason = Reason {
    reason: "ScaleUpLimit",
    message: "the desired replica count is increasing faster than the maximum scale rate",
};
const SCALE_DOWN_LIMIT: Reason = Reason {
    reason: "ScaleDownLimit",
    message: "the desired replica count is decreasing faster than the maximum scale rate",
};
const TOO_MANY: Reason = Reason {
    reason: "TooManyReplicas",
    message: "the desired replica count is more than the maximum replica count",
};
const TOO_FEW: Reason = Reason {
    reason: "TooFewReplicas",
    message: "the desired replica count is less than the minimum replica count",
};

/// A count recommended within a stabilization window, and how long ago it was last.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recent {
    pub replicas: i32,
    pub seconds_ago: f64,
}

/// What normalization made of a recommendation, step by step.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Normalized {
    /// The recommendation from the metrics.
    pub recommended: i32,
    /// After stabilization.
    pub stabilized: i32,
    /// After the rate limits and the min/max clamp: what is written.
    pub replicas: i32,
    /// The AbleToScale reason of stabilization.
    pub stabilization: Reason,
    /// The recommendations inside the stabilization windows: each count once, with the age of its
    /// newest occurrence, highest count first.
    pub window: Vec<Recent>,
    /// The ScalingLimited reason, and whether the limit changed the count.
    pub limit: Reason,
    pub limited: bool,
}

#[derive(Clone, Copy, Debug)]
struct ScaleEvent {
    change: i32,
    at: Timestamp,
    outdated: bool,
}

/// One HPA's recent recommendations and scale events.
#[derive(Debug, Default)]
pub struct History {
    recommendations: Option<Vec<(i32, Timestamp)>>,
    up: Vec<ScaleEvent>,
    down: Vec<ScaleEvent>,
}

/// The start of a window ending now (the beginning of time for a window longer than all of it).
fn cutoff(now: Timestamp, window: Duration) -> Timestamp {
    now.checked_sub(window).unwrap_or(Timestamp::MIN)
}

fn before(at: Timestamp, now: Timestamp, window: Duration) -> bool {
    at < cutoff(now, window)
}

fn after(at: Timestamp, now: Timestamp, window: Duration) -> bool {
    at > cutoff(now, window)
}

impl History {
    /// `recordInitialRecommendation`: the first reconcile remembers the current count, so a new HPA
    /// does not scale down within its first stabilization window.
    pub fn record_initial(&mut self, current: i32, now: Timestamp) {
        self.recommendations.get_or_insert_with(|| vec![(current, now)]);
    }

    /// Starts from no recommendation at all, as upstream's tests do.
    #[cfg(test)]
    pub fn clear_recommendations(&mut self) {
        self.recommendations = Some(Vec::new());
    }

    fn recommendations(&mut self) -> &mut Vec<(i32, Timestamp)> {
        self.recommendations.get_or_insert_with(Vec::new)
    }

    /// Stores `desired` in the slot of a recommendation older than every window, or appends it.
    fn remember(&mut self, desired: i32, now: Timestamp, old: impl Fn(Timestamp) -> bool) {
        let recs = self.recommendations();
        match recs.iter().rposition(|(_, at)| old(*at)) {
            Some(i) => recs[i] = (desired, now),
            None => recs.push((desired, now)),
        }
    }

    fn window_contents(&mut self, now: Timestamp, inside: impl Fn(Timestamp) -> bool) -> Vec<Recent> {
        let mut newest: std::collections::BTreeMap<i32, Timestamp> = Default::default();
        for (r, at) in self.recommendations().iter().filter(|(_, at)| inside(*at)) {
            let seen = newest.entry(*r).or_insert(*at);
            *seen = (*seen).max(*at);
        }
        newest
            .into_iter()
            .rev()
            .map(|(replicas, at)| Recent {
                replicas,
                seconds_ago: now.duration_since(at).as_secs_f64(),
            })
            .collect()
    }

    /// The path without `spec.behavior` (§2.2): the highest recommendation of the downscale window,
    /// then at most `max(2 × current, 4)`, within min and max.
    pub fn normalize_legacy(
        &mut self,
        current: i32,
        desired: i32,
        min: i32,
        max: i32,
        downscale_window: Duration,
        now: Timestamp,
    ) -> Normalized {
        let window = self.window_contents(now, |at| !before(at, now, downscale_window));
        let stabilized = window.iter().map(|r| r.replicas).fold(desired, i32::max);
        self.remember(desired, now, |at| before(at, now, downscale_window));
        let stabilization = if stabilized != desired {
            SCALE_DOWN_STABILIZED
        } else {
            READY_FOR_NEW_SCALE
        };
        let scale_up_limit = (2.0 * f64::from(current)).max(4.0) as i32;
        let (upper, upper_reason) = if max > scale_up_limit {
            (scale_up_limit, SCALE_UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        let (replicas, limit) = if stabilized < min {
            (min, TOO_FEW)
        } else if stabilized > upper {
            (upper, upper_reason)
        } else {
            (stabilized, WITHIN_RANGE)
        };
        Normalized {
            recommended: desired,
            stabilized,
            replicas,
            stabilization,
            window,
            limit,
            limited: replicas != stabilized,
        }
    }

    /// The path with `spec.behavior` (§2.3, §2.4).
    pub fn normalize(
        &mut self,
        behavior: &Behavior,
        current: i32,
        desired: i32,
        min: i32,
        max: i32,
        now: Timestamp,
    ) -> Normalized {
        let (up_window, down_window) = (behavior.up.window, behavior.down.window);
        let (mut up_rec, mut down_rec) = (desired, desired);
        for (r, at) in self.recommendations().iter() {
            if after(*at, now, up_window) {
                up_rec = up_rec.min(*r);
            }
            if after(*at, now, down_window) {
                down_rec = down_rec.max(*r);
            }
        }
        let stabilized = current.max(up_rec).min(down_rec);
        let window = self.window_contents(now, |at| after(at, now, up_window) || after(at, now, down_window));
        self.remember(desired, now, |at| {
            before(at, now, up_window) && before(at, now, down_window)
        });
        let stabilization = if stabilized == desired {
            READY_FOR_NEW_SCALE
        } else if desired >= current {
            SCALE_UP_STABILIZED
        } else {
            SCALE_DOWN_STABILIZED
        };
        let (replicas, limit) = self.rate_limit(behavior, current, stabilized, min, max, now);
        Normalized {
            recommended: desired,
            stabilized,
            replicas,
            stabilization,
            window,
            limit,
            limited: replicas != stabilized,
        }
    }

    /// `convertDesiredReplicasWithBehaviorRate`.
    fn rate_limit(
        &self,
        behavior: &Behavior,
        current: i32,
        desired: i32,
        min: i32,
        max: i32,
        now: Timestamp,
    ) -> (i32, Reason) {
        if desired > current {
            let limit = self.scale_limit(&behavior.up, current, true, now).max(current);
            let (upper, reason) = if max > limit {
                (limit, SCALE_UP_LIMIT)
            } else {
                (max, TOO_MANY)
            };
            if desired > upper {
                return (upper, reason);
            }
        } else if desired < current {
            let limit = self.scale_limit(&behavior.down, current, false, now).min(current);
            let (lower, reason) = if min < limit {
                (limit, SCALE_DOWN_LIMIT)
            } else {
                (min, TOO_FEW)
            };
            if desired < lower {
                return (lower, reason);
            }
        }
        (desired, WITHIN_RANGE)
    }

    /// `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`: for each
    /// policy, the count at the start of its period (the changes made within it undone) moved by the
    /// policy's allowance; the policies combined by `selectPolicy`.
    fn scale_limit(&self, rules: &Rules, current: i32, up: bool, now: Timestamp) -> i32 {
        let changed = |events: &[ScaleEvent], period: Duration| -> i32 {
            events
                .iter()
                .filter(|e| after(e.at, now, period))
                .map(|e| e.change)
                .sum()
        };
        let proposals = rules.policies.iter().map(|policy| {
            let start = current - changed(&self.up, policy.period) + changed(&self.down, policy.period);
            let value = f64::from(policy.value);
            match (policy.kind, up) {
                (PolicyKind::Pods, true) => start.saturating_add(policy.value),
                (PolicyKind::Pods, false) => start - policy.value,
                (PolicyKind::Percent, true) => (f64::from(start) * (1.0 + value / 100.0)).ceil() as i32,
                (PolicyKind::Percent, false) => (f64::from(start) * (1.0 - value / 100.0)) as i32,
            }
        });
        // Up, the largest change is the largest count; down, the smallest.
        match (rules.select, up) {
            (Select::Disabled, _) => current,
            (Select::Max, true) | (Select::Min, false) => proposals.fold(i32::MIN, i32::max),
            (Select::Min, true) | (Select::Max, false) => proposals.fold(i32::MAX, i32::min),
        }
    }

    /// `storeScaleEvent`: with a behavior, remember the change for the rate limits, reusing an
    /// event older than the direction's longest policy period.
    pub fn store_scale_event(&mut self, behavior: Option<&Behavior>, from: i32, to: i32, now: Timestamp) {
        let Some(behavior) = behavior else { return };
        let (rules, events) = if to > from {
            (&behavior.up, &mut self.up)
        } else {
            (&behavior.down, &mut self.down)
        };
        let longest = rules.policies.iter().map(|p| p.period).max().unwrap_or_default();
        for event in events.iter_mut() {
            if before(event.at, now, longest) {
                event.outdated = true;
            }
        }
        let event = ScaleEvent {
            change: (to - from).abs(),
            at: now,
            outdated: false,
        };
        match events.iter_mut().find(|e| e.outdated) {
            Some(slot) => *slot = event,
            None => events.push(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        "2026-11-30T12:00:00Z".parse().unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        t0() + jiff::SignedDuration::from_secs(seconds)
    }

    fn defaults() -> Behavior {
        Behavior::from_spec(
            &HorizontalPodAutoscalerBehavior::default(),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn spec_defaults_are_upstreams() {
        let b = defaults();
        assert_eq!(b.up.window, Duration::ZERO);
        assert_eq!(b.up.policies, SCALE_UP_DEFAULT.to_vec());
        assert_eq!(b.down.window, Duration::from_secs(300), "the controller's flag");
        assert_eq!((b.down.select, b.down.policies.len()), (Select::Max, 1));
    }

    #[test]
    fn legacy_path_limits_scale_up_and_keeps_the_highest_recent_recommendation() {
        let mut h = History::default();
        h.record_initial(3, at(0));
        // max(2 × 3, 4) = 6 of the 10 asked.
        let n = h.normalize_legacy(3, 10, 1, 20, Duration::from_secs(300), at(10));
        assert_eq!((n.replicas, n.limit.reason, n.limited), (6, "ScaleUpLimit", true));
        // With maxReplicas under the limit, the clamp is TooManyReplicas.
        let n = h.normalize_legacy(3, 10, 1, 5, Duration::from_secs(300), at(11));
        assert_eq!((n.replicas, n.limit.reason), (5, "TooManyReplicas"));
        // Down to 2 within five minutes of recommending 10: 10 stays.
        let n = h.normalize_legacy(6, 2, 1, 20, Duration::from_secs(300), at(60));
        assert_eq!(
            (n.stabilized, n.stabilization.reason),
            (10, "ScaleDownStabilized")
        );
        // The initial recommendation (3) alone, after the others aged out: scale-down proceeds once
        // every recommendation of the window agrees.
        let n = h.normalize_legacy(6, 2, 1, 20, Duration::from_secs(300), at(400));
        assert_eq!((n.stabilized, n.replicas), (2, 2), "{n:?}");
        assert_eq!(n.stabilization, READY_FOR_NEW_SCALE);
        // Below minReplicas.
        let n = h.normalize_legacy(2, 1, 2, 20, Duration::from_secs(300), at(800));
        assert_eq!((n.replicas, n.limit.reason), (2, "TooFewReplicas"));
    }

    #[test]
    fn a_new_hpa_does_not_scale_down_within_its_first_window() {
        let mut h = History::default();
        h.record_initial(5, at(0));
        let n = h.normalize(&defaults(), 5, 1, 1, 10, at(1));
        assert_eq!((n.replicas, n.stabilization.reason), (5, "ScaleDownStabilized"));
        assert_eq!(
            n.window,
            vec![Recent {
                replicas: 5,
                seconds_ago: 1.0
            }]
        );
        // Once the window has passed, the later recommendations (1) rule.
        let n = h.normalize(&defaults(), 5, 1, 1, 10, at(302));
        assert_eq!(n.replicas, 1);
    }

    #[test]
    fn scale_up_policies_pods_and_percent_per_period() {
        let b = defaults();
        let mut h = History::default();
        h.record_initial(1, at(0));
        // Max(1 + 4, ceil(1 × 2)) = 5.
        let n = h.normalize(&b, 1, 10, 1, 20, at(0));
        assert_eq!((n.replicas, n.limit.reason, n.limited), (5, "ScaleUpLimit", true));
        h.store_scale_event(Some(&b), 1, 5, at(0));
        // Within the 15 s period the 4 added count: the period started at 1 → still 5.
        let n = h.normalize(&b, 5, 10, 1, 20, at(10));
        assert_eq!((n.replicas, n.limit.reason), (5, "ScaleUpLimit"));
        // After it: Max(5 + 4, 10) = 10.
        let n = h.normalize(&b, 5, 10, 1, 20, at(16));
        assert_eq!((n.replicas, n.limited), (10, false));
        // maxReplicas below the rate limit.
        let n = h.normalize(&b, 5, 30, 1, 8, at(40));
        assert_eq!((n.replicas, n.limit.reason), (8, "TooManyReplicas"));
    }

    #[test]
    fn scale_down_policies_the_websites_example() {
        // Pods 4 / 60 s and Percent 10 / 60 s, Max: from 80 to 10.
        let spec: HorizontalPodAutoscalerBehavior = serde_json::from_value(serde_json::json!({
            "scaleDown": {"stabilizationWindowSeconds": 0, "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 60},
                {"type": "Percent", "value": 10, "periodSeconds": 60}]}
        }))
        .unwrap();
        let b = Behavior::from_spec(&spec, Duration::from_secs(300));
        let mut h = History::default();
        let n = h.normalize(&b, 80, 10, 1, 100, at(0));
        assert_eq!((n.replicas, n.limit.reason), (72, "ScaleDownLimit"));
        h.store_scale_event(Some(&b), 80, 72, at(0));
        // The 8 removed count against the period: it started at 80, so 72 is the floor still.
        assert_eq!(h.normalize(&b, 72, 10, 1, 100, at(30)).replicas, 72);
        // Past the period: int(72 × 0.9) = 64.
        assert_eq!(h.normalize(&b, 72, 10, 1, 100, at(61)).replicas, 64);
        // selectPolicy Min takes the smaller change (4 pods).
        let mut min = b.clone();
        min.down.select = Select::Min;
        assert_eq!(
            History::default().normalize(&min, 80, 10, 1, 100, at(0)).replicas,
            76
        );
        // Disabled keeps the count.
        let mut off = b.clone();
        off.down.select = Select::Disabled;
        let n = History::default().normalize(&off, 80, 10, 1, 100, at(0));
        assert_eq!((n.replicas, n.limit.reason), (80, "ScaleDownLimit"));
    }

    #[test]
    fn stabilization_windows_in_both_directions() {
        let spec: HorizontalPodAutoscalerBehavior = serde_json::from_value(serde_json::json!({
            "scaleUp": {"stabilizationWindowSeconds": 60},
            "scaleDown": {"stabilizationWindowSeconds": 120}
        }))
        .unwrap();
        let b = Behavior::from_spec(&spec, Duration::from_secs(300));
        let mut h = History::default();
        assert_eq!(h.normalize(&b, 4, 4, 1, 20, at(0)).replicas, 4);
        // Up: the lowest recommendation of the last minute (4) holds it.
        let n = h.normalize(&b, 4, 8, 1, 20, at(10));
        assert_eq!((n.replicas, n.stabilization.reason), (4, "ScaleUpStabilized"));
        assert_eq!(
            n.window,
            vec![Recent {
                replicas: 4,
                seconds_ago: 10.0
            }]
        );
        // A minute later every recent one says 8 or more.
        let n = h.normalize(&b, 4, 9, 1, 20, at(71));
        assert_eq!(n.replicas, 8);
        // Down: the highest of the last two minutes (9).
        let n = h.normalize(&b, 8, 2, 1, 20, at(80));
        assert_eq!((n.replicas, n.stabilization.reason), (8, "ScaleDownStabilized"));
    }
}
