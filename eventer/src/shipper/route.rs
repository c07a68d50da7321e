//! Which sinks an event goes to: drop rules first (any match and it goes nowhere), then every route it
//! matches adds that route's sinks.

use k8s_openapi::api::core::v1::Event;
use regex::Regex;

use super::config::{MatchConfig, ShipperConfig};

/// A validated `match:`; every condition present must hold.
struct Matcher {
    type_: Option<String>,
    namespace: Option<String>,
    kind: Option<String>,
    reason: Option<Regex>,
    message: Option<Regex>,
}

impl Matcher {
    fn new(config: &MatchConfig) -> Result<Self, regex::Error> {
        let regex = |pattern: &Option<String>| pattern.as_deref().map(Regex::new).transpose();
        Ok(Matcher {
            type_: config.type_.clone(),
            namespace: config.namespace.clone(),
            kind: config.kind.clone(),
            reason: regex(&config.reason)?,
            message: regex(&config.message)?,
        })
    }

    fn matches(&self, event: &Event) -> bool {
        let exact = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        let pattern = |want: &Option<Regex>, have: &Option<String>| {
            want.as_ref()
                .is_none_or(|re| re.is_match(have.as_deref().unwrap_or_default()))
        };
        exact(&self.type_, &event.type_)
            && exact(&self.namespace, &event.metadata.namespace)
            && exact(&self.kind, &event.involved_object.kind)
            && pattern(&self.reason, &event.reason)
            && pattern(&self.message, &event.message)
    }
}

/// Where events go, by sink index (the position of the sink in the shipper's list).
pub struct Router {
    drop: Vec<Matcher>,
    routes: Vec<(Matcher, Vec<usize>)>,
}

/// Why an event goes nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unrouted {
    /// A drop rule matched it.
    Dropped,
    /// No route matched it.
    NoRoute,
}

impl Router {
    /// `sinks` names the sinks in index order. The config must have been validated.
    pub fn new(config: &ShipperConfig, sinks: &[String]) -> Result<Self, regex::Error> {
        let drop = config.drop.iter().map(Matcher::new).collect::<Result<_, _>>()?;
        let mut routes = Vec::new();
        for route in &config.routes {
            let targets = route
                .sinks
                .iter()
                .filter_map(|name| sinks.iter().position(|s| s == name))
                .collect();
            routes.push((Matcher::new(&route.matches)?, targets));
        }
        Ok(Router { drop, routes })
    }

    /// The sinks `event` goes to, in index order, each once.
    pub fn route(&self, event: &Event) -> Result<Vec<usize>, Unrouted> {
        if self.drop.iter().any(|rule| rule.matches(event)) {
            return Err(Unrouted::Dropped);
        }
        let mut targets: Vec<usize> = self
            .routes
            .iter()
            .filter(|(matcher, _)| matcher.matches(event))
            .flat_map(|(_, sinks)| sinks.iter().copied())
            .collect();
        targets.sort_unstable();
        targets.dedup();
        if targets.is_empty() {
            Err(Unrouted::NoRoute)
        } else {
            Ok(targets)
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn event(type_: &str, namespace: &str, kind: &str, reason: &str, message: &str) -> Event {
        Event {
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                ..ObjectReference::default()
            },
            type_: Some(type_.into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..Event::default()
        }
    }

    #[test]
    fn drop_rules_first_then_the_union_of_matching_routes() {
        let config: ShipperConfig = serde_yaml::from_str(
            r#"
sinks: {a: {prometheus: {}}, b: {file: {path: /x}}, c: {file: {path: /y}}}
routes:
  - {match: {type: Warning, reason: "Back[oO]ff"}, sinks: [c, a]}
  - {match: {kind: Pod, message: "OOM"}, sinks: [a]}
  - {sinks: [b]}
drop:
  - {namespace: kube-system}
  - {type: Normal, reason: "^Pulled$"}
"#,
        )
        .unwrap();
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let router = Router::new(&config, &names).unwrap();
        let route = |e: Event| router.route(&e);
        assert_eq!(
            route(event("Warning", "web", "Pod", "BackOff", "restarting")),
            Ok(vec![0, 1, 2])
        );
        assert_eq!(
            route(event("Warning", "web", "Pod", "Killing", "OOMKilled")),
            Ok(vec![0, 1])
        );
        assert_eq!(
            route(event("Normal", "web", "Deployment", "ScalingReplicaSet", "x")),
            Ok(vec![1])
        );
        assert_eq!(
            route(event("Warning", "kube-system", "Pod", "BackOff", "x")),
            Err(Unrouted::Dropped)
        );
        assert_eq!(
            route(event("Normal", "web", "Pod", "Pulled", "x")),
            Err(Unrouted::Dropped)
        );
        // Unanchored, as kube-eventer's: "Pulled" inside another reason is not "^Pulled$" but matches "Pulled".
        assert_eq!(
            route(event("Normal", "web", "Pod", "NotPulled", "x")),
            Ok(vec![1])
        );
    }

    #[test]
    fn without_routes_nothing_is_shipped() {
        let config: ShipperConfig = serde_yaml::from_str("sinks: {a: {prometheus: {}}}").unwrap();
        let router = Router::new(&config, &["a".into()]).unwrap();
        assert_eq!(
            router.route(&event("Normal", "x", "Pod", "R", "m")),
            Err(Unrouted::NoRoute)
        );
    }
}
