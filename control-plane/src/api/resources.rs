//! The one list of resource types the API server serves. Adding a type is one entry in [`RESOURCES`]
//! (plus, where the type has them, its defaults, validation and printer columns, matched on `kind` in
//! `defaults.rs`, `validation.rs` and `table.rs`).

use super::error::GroupResource;

/// Which metadata changes bump `metadata.generation` (upstream: each type's strategy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// The type does not track generation.
    None,
    /// `spec` changes bump it.
    Spec,
    /// `spec` and annotation changes bump it (Deployments copy annotations to their ReplicaSets).
    SpecAndAnnotations,
}

/// A served resource in one group-version.
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// Serves `/status`, and the main endpoint ignores status changes.
    pub status: bool,
    /// Serves `/scale` (autoscaling/v1 Scale) over `spec.replicas` and `spec.selector`.
    pub scale: bool,
    pub generation: Generation,
    /// Whether this version is the one objects are stored in; other versions are converted views.
    pub storage_version: &'static str,
    /// The resource the objects are stored under, when this is a view of another group's type.
    pub storage: GroupResource,
}

impl ResourceType {
    pub fn group_resource(&self) -> GroupResource {
        GroupResource {
            group: self.group,
            resource: self.plural,
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether objects at this endpoint need converting to and from the stored version.
    pub fn is_view(&self) -> bool {
        self.version != self.storage_version || self.storage.group != self.group
    }

    /// The store key prefix of the resource: `/registry/<group>/<resource>/`.
    pub fn key_prefix(&self) -> String {
        let group = if self.storage.group.is_empty() {
            "core"
        } else {
            self.storage.group
        };
        format!("/registry/{group}/{}/", self.storage.resource)
    }

    /// The store key of an object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// The store prefix of a collection: one namespace, or all of them.
    pub fn collection_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

const fn stored(group: &'static str, resource: &'static str) -> GroupResource {
    GroupResource { group, resource }
}

const ALL: &[&str] = &["all"];

/// Every served resource, grouped by group-version in the order discovery lists them.
pub static RESOURCES: &[ResourceType] = &[
    ResourceType {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        short_names: &["ns"],
        categories: &[],
        namespaced: false,
        status: true,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "namespaces"),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        short_names: &["po"],
        categories: ALL,
        namespaced: true,
        status: true,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "pods"),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        short_names: &["svc"],
        categories: ALL,
        namespaced: true,
        status: true,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "services"),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        short_names: &["ep"],
        categories: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "endpoints"),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        short_names: &["cm"],
        categories: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "configmaps"),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        short_names: &[],
        categories: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "secrets"),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        categories: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "events"),
    },
    ResourceType {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        short_names: &["no"],
        categories: &[],
        namespaced: false,
        status: true,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "nodes"),
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        short_names: &["deploy"],
        categories: ALL,
        namespaced: true,
        status: true,
        scale: true,
        generation: Generation::SpecAndAnnotations,
        storage_version: "v1",
        storage: stored("apps", "deployments"),
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        short_names: &["rs"],
        categories: ALL,
        namespaced: true,
        status: true,
        scale: true,
        generation: Generation::Spec,
        storage_version: "v1",
        storage: stored("apps", "replicasets"),
    },
    ResourceType {
        group: "autoscaling",
        version: "v2",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        short_names: &["hpa"],
        categories: ALL,
        namespaced: true,
        status: true,
        scale: false,
        generation: Generation::Spec,
        storage_version: "v2",
        storage: stored("autoscaling", "horizontalpodautoscalers"),
    },
    ResourceType {
        group: "autoscaling",
        version: "v1",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        short_names: &["hpa"],
        categories: ALL,
        namespaced: true,
        status: true,
        scale: false,
        generation: Generation::Spec,
        storage_version: "v2",
        storage: stored("autoscaling", "horizontalpodautoscalers"),
    },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        short_names: &[],
        categories: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("coordination.k8s.io", "leases"),
    },
    ResourceType {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        short_names: &[],
        categories: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("discovery.k8s.io", "endpointslices"),
    },
    ResourceType {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        categories: &[],
        namespaced: true,
        status: false,
        scale: false,
        generation: Generation::None,
        storage_version: "v1",
        storage: stored("", "events"),
    },
];

/// Looks up a resource by its URL coordinates.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The stored (canonical) type of a resource, for its storage prefix and kind.
pub fn storage_type(resource: &ResourceType) -> &'static ResourceType {
    RESOURCES
        .iter()
        .find(|r| {
            r.group == resource.storage.group
                && r.plural == resource.storage.resource
                && r.version == r.storage_version
        })
        .expect("every view names a stored type")
}

/// The group-versions served, in discovery order, each with its preferred-ness.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// Groups in discovery order with their versions, the preferred one first.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (group, version) in group_versions() {
        match out.iter_mut().find(|(g, _)| *g == group) {
            Some((_, versions)) => versions.push(version),
            None => out.push((group, vec![version])),
        }
    }
    out
}

/// Resources of one group-version.
pub fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceType> {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_has_a_stored_type_and_keys_are_shared() {
        for r in RESOURCES {
            let stored = storage_type(r);
            assert_eq!(stored.key_prefix(), r.key_prefix(), "{}/{}", r.group, r.plural);
        }
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        assert!(v1.is_view());
        assert_eq!(
            v1.key(Some("default"), "web"),
            "/registry/autoscaling/horizontalpodautoscalers/default/web"
        );
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        assert!(ev.is_view());
        assert_eq!(ev.key_prefix(), "/registry/core/events/");
    }

    #[test]
    fn preferred_version_comes_first() {
        let autoscaling = groups().into_iter().find(|(g, _)| *g == "autoscaling").unwrap();
        assert_eq!(autoscaling.1, ["v2", "v1"]);
    }
}
