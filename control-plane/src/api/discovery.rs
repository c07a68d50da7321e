//! Discovery: `/api`, `/apis` (aggregated v2 when asked for, legacy otherwise), the per-group-version
//! resource lists, and `/version`. Short names, categories and subresources come only from here, so kubectl
//! `get po`, `get all` and `autoscale` depend on it.

use serde_json::{Value, json};

use super::resources::{self, ResourceType};

/// The Kubernetes version the API reports: kubectl warns beyond one minor version of skew.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0+glasshouse.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Which discovery document shape the client accepts, most preferred first as upstream lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    AggregatedV2,
    AggregatedV2Beta1,
    Legacy,
}

impl Format {
    pub fn from_accept(accept: &str) -> Self {
        for media in accept.split(',') {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            let has = |p: &str| params.contains(&p);
            if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
                if has("v=v2") {
                    return Format::AggregatedV2;
                }
                if has("v=v2beta1") {
                    return Format::AggregatedV2Beta1;
                }
            }
        }
        Format::Legacy
    }

    /// The response `Content-Type`: the client picks the decoder by it.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::AggregatedV2 => "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            Format::AggregatedV2Beta1 => {
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            }
            Format::Legacy => "application/json",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Format::AggregatedV2Beta1 => "apidiscovery.k8s.io/v2beta1",
            _ => "apidiscovery.k8s.io/v2",
        }
    }
}

/// A group another component serves through the API server (metrics.k8s.io): it is listed in
/// discovery; its own documents and requests are that component's.
#[derive(Clone, Debug)]
pub struct ExternalGroup {
    pub name: &'static str,
    pub version: &'static str,
    /// Plural, kind, namespaced.
    pub resources: Vec<(&'static str, &'static str, bool)>,
    pub verbs: &'static [&'static str],
}

/// `/api` (core group) or `/apis` (every other group, those served by others too).
pub fn root(core: bool, format: Format, external: &[ExternalGroup]) -> Value {
    let mut value = served_root(core, format);
    if core {
        return value;
    }
    for group in external {
        match format {
            Format::Legacy => {
                if let Some(groups) = value["groups"].as_array_mut() {
                    groups.push(api_group(group.name, &[group.version]));
                }
            }
            _ => {
                if let Some(items) = value["items"].as_array_mut() {
                    items.push(json!({
                        "metadata": {"name": group.name},
                        "versions": [{
                            "version": group.version,
                            "resources": group.resources.iter().map(|(plural, kind, namespaced)| json!({
                                "resource": plural,
                                "responseKind": {"group": group.name, "version": group.version, "kind": kind},
                                "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": "",
                                "verbs": group.verbs,
                            })).collect::<Vec<_>>(),
                            "freshness": "Current",
                        }],
                    }));
                }
            }
        }
    }
    value
}

fn served_root(core: bool, format: Format) -> Value {
    let groups: Vec<(&str, Vec<&str>)> = resources::groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .collect();
    match format {
        Format::Legacy if core => json!({
            "kind": "APIVersions",
            "versions": groups.iter().flat_map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            "serverAddressByClientCIDRs": [],
        }),
        Format::Legacy => json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups.iter().map(|(g, versions)| api_group(g, versions)).collect::<Vec<_>>(),
        }),
        aggregated => json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": aggregated.api_version(),
            "metadata": {},
            "items": groups.iter().map(|(group, versions)| json!({
                "metadata": {"name": group},
                "versions": versions.iter().map(|version| json!({
                    "version": version,
                    "resources": resources::in_group_version(group, version).map(aggregated_resource).collect::<Vec<_>>(),
                    "freshness": "Current",
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

/// `/apis/{group}`, when served.
pub fn group(name: &str) -> Option<Value> {
    resources::groups()
        .into_iter()
        .find(|(g, _)| *g == name && !g.is_empty())
        .map(|(g, versions)| {
            let mut group = api_group(g, &versions);
            group["kind"] = json!("APIGroup");
            group["apiVersion"] = json!("v1");
            group
        })
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

/// `/api/v1` or `/apis/{group}/{version}`: an `APIResourceList`, subresources as `<resource>/<sub>`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = resources::in_group_version(group, version).collect();
    if served.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in served {
        list.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for (sub, kind_group, kind_version, kind, verbs) in subresources(r) {
            let mut entry = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if kind_group != r.group || kind_version != r.version {
                entry["group"] = json!(kind_group);
                entry["version"] = json!(kind_version);
            }
            list.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}),
    )
}

/// A resource's subresources: name, the group, version and kind they answer with, and their verbs.
fn subresources(
    r: &ResourceType,
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
)> {
    const RW: &[&str] = &["get", "patch", "update"];
    let mut out = Vec::new();
    if r.status {
        out.push(("status", r.group, r.version, r.kind, RW));
    }
    if r.scale {
        out.push(("scale", "autoscaling", "v1", "Scale", RW));
    }
    if r.kind == "Namespace" {
        out.push(("finalize", r.group, r.version, r.kind, &["update"][..]));
    }
    if r.kind == "Pod" {
        out.push(("binding", r.group, r.version, "Binding", &["create"][..]));
        out.push(("log", r.group, r.version, "Pod", &["get"][..]));
        out.push(("probes", r.group, r.version, "PodProbeHistory", &["get"][..]));
    }
    if r.kind == "HorizontalPodAutoscaler" {
        out.push((
            "decisions",
            r.group,
            r.version,
            "HorizontalPodAutoscalerDecisions",
            &["get"][..],
        ));
    }
    out
}

fn aggregated_resource(r: &ResourceType) -> Value {
    json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
        "shortNames": r.short_names,
        "categories": r.categories,
        "subresources": subresources(r).into_iter().map(|(sub, g, v, kind, verbs)| json!({
            "subresource": sub,
            "responseKind": {"group": g, "version": v, "kind": kind},
            "verbs": verbs,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_picks_the_format() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(Format::from_accept(kubectl), Format::AggregatedV2);
        assert_eq!(Format::from_accept("application/json, */*"), Format::Legacy);
    }

    #[test]
    fn scale_subresource_is_advertised_both_ways() {
        let apps = resource_list("apps", "v1").unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        let metrics = ExternalGroup {
            name: "metrics.k8s.io",
            version: "v1beta1",
            resources: vec![("pods", "PodMetrics", true)],
            verbs: &["get", "list"],
        };
        let agg = root(false, Format::AggregatedV2, std::slice::from_ref(&metrics));
        assert!(
            agg["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["metadata"]["name"] == "metrics.k8s.io"
                    && g["versions"][0]["resources"][0]["responseKind"]["kind"] == "PodMetrics")
        );
        let legacy = root(false, Format::Legacy, &[metrics]);
        assert!(
            legacy["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["preferredVersion"]["groupVersion"] == "metrics.k8s.io/v1beta1")
        );
        let apps = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deployments = &apps["versions"][0]["resources"][0];
        assert_eq!(deployments["resource"], "deployments");
        assert!(
            deployments["subresources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["subresource"] == "scale")
        );
    }

    #[test]
    fn preferred_autoscaling_version_is_v2() {
        let g = group("autoscaling").unwrap();
        assert_eq!(g["preferredVersion"]["version"], "v2");
    }
}
