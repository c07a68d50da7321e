//! The metrics-server's view of pods and nodes (their names and labels), read through the API like
//! upstream's metrics-server does. The client exists only once the API server runs, after the
//! metrics API's router was handed to it: until then, lookups answer 503.

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use metrics_server::api::{Directory, Failure, LabelRequirement, PodMeta};

#[derive(Clone, Default)]
pub struct ApiDirectory(pub Arc<OnceLock<kube::Client>>);

fn failure(e: kube::Error) -> Failure {
    match e {
        kube::Error::Api(status) => (status.code, status.message),
        other => (500, other.to_string()),
    }
}

fn meta(m: kube::api::ObjectMeta) -> PodMeta {
    PodMeta {
        namespace: m.namespace.unwrap_or_default(),
        name: m.name.unwrap_or_default(),
        labels: m.labels.unwrap_or_default(),
    }
}

impl ApiDirectory {
    fn client(&self) -> Result<kube::Client, Failure> {
        self.0
            .get()
            .cloned()
            .ok_or((503, "the metrics API is starting".to_string()))
    }
}

impl Directory for ApiDirectory {
    fn pods<'a>(
        &'a self,
        namespace: Option<&'a str>,
        selector: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<PodMeta>, Failure>> + Send + 'a>> {
        Box::pin(async move {
            let client = self.client()?;
            let api: Api<Pod> = match namespace {
                Some(ns) => Api::namespaced(client, ns),
                None => Api::all(client),
            };
            let mut params = ListParams::default();
            if let Some(selector) = selector.filter(|s| !s.is_empty()) {
                params = params.labels(selector);
            }
            let pods = api.list(&params).await.map_err(failure)?;
            Ok(pods.items.into_iter().map(|p| meta(p.metadata)).collect())
        })
    }

    fn nodes<'a>(
        &'a self,
        selector: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<PodMeta>, Failure>> + Send + 'a>> {
        Box::pin(async move {
            let api: Api<Node> = Api::all(self.client()?);
            let mut params = ListParams::default();
            if let Some(selector) = selector.filter(|s| !s.is_empty()) {
                params = params.labels(selector);
            }
            let nodes = api.list(&params).await.map_err(failure)?;
            Ok(nodes.items.into_iter().map(|n| meta(n.metadata)).collect())
        })
    }

    fn parse_selector(&self, selector: &str) -> Result<Vec<LabelRequirement>, Failure> {
        use control_plane::api::selectors::{LabelSelector, Requirement};
        let parsed = LabelSelector::parse(selector).map_err(|e| (400, e.to_string()))?;
        Ok(parsed
            .0
            .into_iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => LabelRequirement::In(k, vec![v]),
                Requirement::NotEquals(k, v) => LabelRequirement::NotIn(k, vec![v]),
                Requirement::In(k, v) => LabelRequirement::In(k, v),
                Requirement::NotIn(k, v) => LabelRequirement::NotIn(k, v),
                Requirement::Exists(k) => LabelRequirement::Exists(k),
                Requirement::DoesNotExist(k) => LabelRequirement::DoesNotExist(k),
            })
            .collect())
    }
}
