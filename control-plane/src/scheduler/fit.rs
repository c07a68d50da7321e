//! The scheduler's filters and score, the parts of kube-scheduler's default plugins that apply here:
//! NodeUnschedulable, TaintToleration, NodeAffinity (nodeSelector and required node affinity),
//! NodeResourcesFit (cpu, memory, pod count), and a score that spreads a controller's replicas and then
//! prefers the least requested node. Pure functions over the objects, so every rule is testable alone.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Why a node cannot take a pod, in kube-scheduler's words.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reject {
    Unschedulable,
    Taint { key: String, value: String },
    Affinity,
    Insufficient(&'static str),
    TooManyPods,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Unschedulable => f.write_str("node(s) were unschedulable"),
            Reject::Taint { key, value } => write!(f, "node(s) had untolerated taint {{{key}: {value}}}"),
            Reject::Affinity => f.write_str("node(s) didn't match Pod's node affinity/selector"),
            Reject::Insufficient(resource) => write!(f, "Insufficient {resource}"),
            Reject::TooManyPods => f.write_str("Too many pods"),
        }
    }
}

/// What pods ask for: milli-cpu, bytes of memory, and one pod slot each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    pub milli_cpu: i128,
    pub memory: i128,
    pub pods: i128,
}

impl std::ops::AddAssign for Requests {
    fn add_assign(&mut self, other: Requests) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.pods += other.pods;
    }
}

/// A pod's requests as NodeResourcesFit counts them: the larger of its app containers' sum and its
/// largest init container, plus its overhead.
pub fn pod_requests(pod: &Pod) -> Requests {
    let Some(spec) = &pod.spec else {
        return Requests {
            pods: 1,
            ..Requests::default()
        };
    };
    let of = |requests: Option<&BTreeMap<String, Quantity>>, name: &str| {
        requests
            .and_then(|r| r.get(name))
            .and_then(|q| milli_value(&q.0))
            .unwrap_or(0)
    };
    // A resource with a limit and no request requests its limit (the API's defaulting).
    let container = |c: &k8s_openapi::api::core::v1::Container| {
        let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
        let request = |name: &str| {
            let requested = requests.and_then(|r| r.get(name));
            if requested.is_some() {
                of(requests, name)
            } else {
                of(limits, name)
            }
        };
        (request("cpu"), request("memory") / 1000)
    };
    let (mut cpu, mut memory) = spec
        .containers
        .iter()
        .map(container)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    // Sidecars run beside everything after them: they add to the app containers, and to each init
    // container that follows them (`resourcehelper.PodRequests`).
    let (mut sidecar_cpu, mut sidecar_memory) = (0, 0);
    let (mut init_cpu, mut init_memory) = (0, 0);
    for init in spec.init_containers.iter().flatten() {
        let (c, m) = container(init);
        let (c, m) = if init.restart_policy.as_deref() == Some("Always") {
            sidecar_cpu += c;
            sidecar_memory += m;
            (sidecar_cpu, sidecar_memory)
        } else {
            (c + sidecar_cpu, m + sidecar_memory)
        };
        init_cpu = init_cpu.max(c);
        init_memory = init_memory.max(m);
    }
    cpu = (cpu + sidecar_cpu).max(init_cpu);
    memory = (memory + sidecar_memory).max(init_memory);
    let overhead = spec.overhead.as_ref();
    Requests {
        milli_cpu: cpu + of(overhead, "cpu"),
        memory: memory + of(overhead, "memory") / 1000,
        pods: 1,
    }
}

/// What a node offers (its allocatable).
pub fn allocatable(node: &Node) -> Requests {
    let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let of = |name: &str| {
        allocatable
            .and_then(|a| a.get(name))
            .and_then(|q| milli_value(&q.0))
            .unwrap_or(0)
    };
    Requests {
        milli_cpu: of("cpu"),
        memory: of("memory") / 1000,
        pods: of("pods") / 1000,
    }
}

/// Every reason `node` (with `used` already requested on it) cannot take `pod`, in plugin order,
/// stopping at the first plugin that rejects (as kube-scheduler does).
pub fn rejects(pod: &Pod, node: &Node, used: Requests) -> Vec<Reject> {
    let spec = pod.spec.clone().unwrap_or_default();
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let node_spec = node.spec.clone().unwrap_or_default();
    if node_spec.unschedulable == Some(true) {
        let unschedulable = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if !tolerations.iter().any(|t| tolerates(t, &unschedulable)) {
            return vec![Reject::Unschedulable];
        }
    }
    let untolerated = node_spec
        .taints
        .iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)));
    if let Some(taint) = untolerated {
        return vec![Reject::Taint {
            key: taint.key.clone(),
            value: taint.value.clone().unwrap_or_default(),
        }];
    }
    if !matches_affinity(pod, node) {
        return vec![Reject::Affinity];
    }
    let want = pod_requests(pod);
    let have = allocatable(node);
    let mut short = Vec::new();
    if used.pods + want.pods > have.pods {
        short.push(Reject::TooManyPods);
    }
    if want.milli_cpu > 0 && used.milli_cpu + want.milli_cpu > have.milli_cpu {
        short.push(Reject::Insufficient("cpu"));
    }
    if want.memory > 0 && used.memory + want.memory > have.memory {
        short.push(Reject::Insufficient("memory"));
    }
    short
}

/// `v1helper.TolerationsTolerateTaint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref() {
        Some("Exists") => true,
        // "Equal" is the default; an empty key with Equal matches nothing but an empty-key taint.
        _ => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
    }
}

/// `nodeSelector` and `requiredDuringSchedulingIgnoredDuringExecution` (any term; all of a term's
/// expressions and fields).
fn matches_affinity(pod: &Pod, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|a| a.required_during_scheduling_ignored_during_execution);
    let affinity_ok = required.is_none_or(|r| {
        r.node_selector_terms
            .iter()
            .any(|term| term_matches(term, node, &labels))
    });
    selector_ok && affinity_ok
}

fn term_matches(term: &NodeSelectorTerm, node: &Node, labels: &BTreeMap<String, String>) -> bool {
    let expressions = term.match_expressions.iter().flatten();
    let fields = term.match_fields.iter().flatten();
    let name = node.metadata.name.clone().unwrap_or_default();
    let field_value = |key: &str| (key == "metadata.name").then(|| name.clone());
    // An empty term matches no node (upstream).
    (term.match_expressions.as_ref().is_some_and(|e| !e.is_empty())
        || term.match_fields.as_ref().is_some_and(|f| !f.is_empty()))
        && expressions
            .clone()
            .all(|r| requirement_matches(r, labels.get(&r.key).cloned()))
        && fields
            .clone()
            .all(|r| requirement_matches(r, field_value(&r.key)))
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<String>) -> bool {
    let values = requirement.values.clone().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.as_deref().and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.as_deref().and_then(number), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

/// kube-scheduler's message for a pod no node can take: `0/3 nodes are available: 1 Insufficient cpu,
/// 2 node(s) didn't match Pod's node affinity/selector.`
pub fn fit_error(nodes: usize, rejects: &[Vec<Reject>]) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for reason in rejects.iter().flatten() {
        *counts.entry(reason.to_string()).or_default() += 1;
    }
    let mut reasons: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    reasons.sort();
    format!("0/{nodes} nodes are available: {}.", reasons.join(", "))
}

/// A quantity in thousandths of its unit (`500m` → 500, `1` → 1000, `1Ki` → 1,024,000), as
/// `resource.Quantity.MilliValue` does; `None` for what is not a quantity.
pub fn milli_value(quantity: &str) -> Option<i128> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (number, exponent) = match suffix.strip_prefix(['e', 'E']) {
        Some(exp) => (number, exp.parse::<i32>().ok()?),
        None => (number, 0),
    };
    let suffix = if exponent != 0 { "" } else { suffix };
    let (binary, decimal): (i128, i32) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        _ => return None,
    };
    let negative = number.starts_with('-');
    let number = number.trim_start_matches(['+', '-']);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    // value = digits × 10^(decimal + exponent − len(fraction)) × binary, in thousandths (+3).
    let power = decimal + exponent - fraction.len() as i32 + 3;
    let scaled = if power >= 0 {
        digits
            .checked_mul(10i128.checked_pow(power as u32)?)?
            .checked_mul(binary)?
    } else {
        // Round up, as MilliValue does.
        let divisor = 10i128.checked_pow((-power) as u32)?;
        (digits.checked_mul(binary)? + divisor - 1) / divisor
    };
    Some(if negative { -scaled } else { scaled })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Affinity, Container, NodeAffinity, NodeSelector, NodeSpec, NodeStatus, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                allocatable: Some(BTreeMap::from([
                    ("cpu".into(), Quantity(cpu.into())),
                    ("memory".into(), Quantity(memory.into())),
                    ("pods".into(), Quantity("2".into())),
                ])),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    fn pod(cpu: &str, memory: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(BTreeMap::from([
                            ("cpu".into(), Quantity(cpu.into())),
                            ("memory".into(), Quantity(memory.into())),
                        ])),
                        ..ResourceRequirements::default()
                    }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(milli_value("500m"), Some(500));
        assert_eq!(milli_value("1"), Some(1000));
        assert_eq!(milli_value("0.5"), Some(500));
        assert_eq!(milli_value("2"), Some(2000));
        assert_eq!(milli_value("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(milli_value("1G"), Some(1_000_000_000_000));
        assert_eq!(milli_value("1e3"), Some(1_000_000));
        assert_eq!(milli_value("1500u"), Some(2), "rounded up");
        assert_eq!(milli_value("24576000Ki"), Some(24_576_000 * 1024 * 1000));
        assert_eq!(milli_value("x"), None);
        assert_eq!(milli_value("1Zi"), None);
    }

    #[test]
    fn resources_fit_and_the_message_counts_reasons() {
        let small = node("small", "1", "1Gi", &[]);
        assert!(rejects(&pod("500m", "100Mi"), &small, Requests::default()).is_empty());
        let used = Requests {
            milli_cpu: 600,
            memory: 0,
            pods: 1,
        };
        assert_eq!(
            rejects(&pod("500m", "100Mi"), &small, used),
            [Reject::Insufficient("cpu")]
        );
        let full = Requests {
            milli_cpu: 0,
            memory: 0,
            pods: 2,
        };
        assert_eq!(rejects(&pod("1m", "1"), &small, full), [Reject::TooManyPods]);
        let big = pod("2", "2Gi");
        let reasons = vec![rejects(&big, &small, Requests::default())];
        assert_eq!(
            fit_error(1, &reasons),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
        );
        assert_eq!(fit_error(0, &[]), "no nodes available to schedule pods");
    }

    #[test]
    fn sidecars_add_to_what_follows_them() {
        let container = |name: &str, cpu: &str, sidecar: bool| {
            let mut c = pod(cpu, "1Mi").spec.unwrap().containers.remove(0);
            c.name = name.into();
            c.restart_policy = sidecar.then(|| "Always".into());
            c
        };
        let mut with = pod("100m", "1Mi");
        let spec = with.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![
            container("setup", "120m", false),
            container("proxy", "50m", true),
            container("migrate", "400m", false),
        ]);
        // max(app 100m + sidecar 50m, setup 120m, migrate 400m + sidecar 50m)
        assert_eq!(pod_requests(&with).milli_cpu, 450);
        spec_of(&mut with).init_containers.as_mut().unwrap().pop();
        assert_eq!(pod_requests(&with).milli_cpu, 150, "app and sidecar over setup");
        spec_of(&mut with).init_containers.as_mut().unwrap().remove(0);
        assert_eq!(pod_requests(&with).milli_cpu, 150, "app and sidecar");
    }

    fn spec_of(pod: &mut Pod) -> &mut PodSpec {
        pod.spec.as_mut().unwrap()
    }

    #[test]
    fn taints_need_tolerations() {
        let mut tainted = node("n", "4", "4Gi", &[]);
        tainted.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "node.kubernetes.io/unreachable".into(),
                effect: "NoExecute".into(),
                ..Taint::default()
            }]),
            ..NodeSpec::default()
        });
        let mut p = pod("1m", "1");
        let message = fit_error(1, &[rejects(&p, &tainted, Requests::default())]);
        assert_eq!(
            message,
            "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
        );
        p.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("node.kubernetes.io/unreachable".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        }]);
        assert!(rejects(&p, &tainted, Requests::default()).is_empty());
        // A bare Exists tolerates everything.
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert!(tolerates(
            &all,
            &Taint {
                key: "any".into(),
                effect: "NoSchedule".into(),
                ..Taint::default()
            }
        ));
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let ssd = node("a", "4", "4Gi", &[("disk", "ssd"), ("zone", "1")]);
        let hdd = node("b", "4", "4Gi", &[("disk", "hdd")]);
        let mut p = pod("1m", "1");
        p.spec.as_mut().unwrap().node_selector = Some(BTreeMap::from([("disk".into(), "ssd".into())]));
        assert!(rejects(&p, &ssd, Requests::default()).is_empty());
        assert_eq!(rejects(&p, &hdd, Requests::default()), [Reject::Affinity]);
        p.spec.as_mut().unwrap().node_selector = None;
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "zone".into(),
                            operator: "Gt".into(),
                            values: Some(vec!["0".into()]),
                        }]),
                        ..NodeSelectorTerm::default()
                    }],
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        });
        assert!(rejects(&p, &ssd, Requests::default()).is_empty());
        assert_eq!(rejects(&p, &hdd, Requests::default()), [Reject::Affinity]);
    }
}
