//! EndpointSlices (kube-controller-manager's `endpointslice-controller`), from the same selection as the
//! Endpoints: per Service with a selector, one IPv4 slice per set of resolved ports, labelled
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the Service (so
//! the garbage collector takes them with it). Each endpoint carries the `ready`, `serving` and
//! `terminating` conditions; terminating pods stay listed, not ready, as upstream lists them. Slices are
//! named `<service>-<hash of the ports>` (upstream generates names).
//!
//! Not done as upstream: slices are not split at 100 endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams};
use kube::runtime::reflector::Store;

use super::api_code;
use super::endpoints::{ResolvedPort, listed_ip, pod_reference, resolve_ports, selections};
use super::replicaset::is_ready;

pub const NAME: &str = "endpointslice-controller";
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

pub(super) async fn pass(
    client: &kube::Client,
    services: &Store<Service>,
    pods: &Store<Pod>,
    slices: &Store<EndpointSlice>,
) -> Result<(), kube::Error> {
    let mut failure = None;
    for (service, members) in selections(services, pods) {
        let (Some(namespace), Some(name)) =
            (service.metadata.namespace.clone(), service.metadata.name.clone())
        else {
            continue;
        };
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &namespace);
        let mut existing: Vec<Arc<EndpointSlice>> = slices
            .state()
            .into_iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .filter(|s| owned_by(s, &name))
            .collect();
        for desired in desired(&service, &members) {
            // The slice with the same ports is updated; a new port set gets a new slice.
            let matching = existing.iter().position(|s| s.ports == desired.ports);
            let current = matching.map(|i| existing.remove(i));
            let result = match current {
                Some(current) if current.endpoints == desired.endpoints => Ok(()),
                current => super::replace_or_create(&api, current.as_deref(), desired).await,
            };
            if let Err(e) = result {
                tracing::debug!(service = %name, namespace = %namespace, error = %e, "writing an endpoint slice failed");
                failure = Some(e);
            }
        }
        for stale in existing {
            let slice_name = stale.metadata.name.clone().unwrap_or_default();
            match api.delete(&slice_name, &DeleteParams::default()).await {
                Err(e) if api_code(&e) != Some(404) => failure = Some(e),
                _ => {}
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// FNV-1a of the resolved ports, for a slice's stable name.
fn ports_hash(ports: &[ResolvedPort]) -> u32 {
    let text = format!("{ports:?}");
    text.bytes()
        .fold(0x811c9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x01000193))
}

fn owned_by(slice: &EndpointSlice, service: &str) -> bool {
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    labels.get(SERVICE_NAME_LABEL).map(String::as_str) == Some(service)
        && labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
}

/// The slices a Service should have: one per set of resolved ports, endpoints sorted by address.
fn desired(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSlice> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_all = spec.publish_not_ready_addresses == Some(true);
    let name = service.metadata.name.clone().unwrap_or_default();
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<Endpoint>> = BTreeMap::new();
    for pod in pods {
        let Some(ip) = listed_ip(pod) else { continue };
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = publish_all || is_ready(pod);
        groups
            .entry(resolve_ports(&spec, pod))
            .or_default()
            .push(Endpoint {
                addresses: vec![ip],
                conditions: Some(EndpointConditions {
                    ready: Some((serving && !terminating) || publish_all),
                    serving: Some(serving),
                    terminating: Some(terminating),
                }),
                node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                target_ref: Some(pod_reference(pod)),
                ..Endpoint::default()
            });
    }
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    groups
        .into_iter()
        .map(|(ports, mut endpoints)| {
            endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
            EndpointSlice {
                metadata: ObjectMeta {
                    // Named by their ports, so a pass that does not see its own creation yet cannot make
                    // a second slice (the create answers 409).
                    name: Some(format!("{name}-{:08x}", ports_hash(&ports))),
                    namespace: service.metadata.namespace.clone(),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Service".into(),
                        name: name.clone(),
                        uid: service.metadata.uid.clone().unwrap_or_default(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]),
                    ..ObjectMeta::default()
                },
                address_type: "IPv4".into(),
                endpoints,
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: Some(name),
                            port: Some(port),
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}
