//! A `kube::Client` that talks to the API router in the same process, without a socket: controllers use
//! it exactly as they would a real cluster's API.

use axum::Router;
use axum::http::{HeaderValue, Request, header};

/// A client for `router`, authenticating with `token`.
pub fn in_process(router: Router, token: &str) -> kube::Client {
    let auth =
        HeaderValue::from_str(&format!("Bearer {token}")).expect("a generated token is a valid header value");
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut request: Request<kube::client::Body>| {
            request.headers_mut().insert(header::AUTHORIZATION, auth.clone());
            request.map(axum::body::Body::new)
        })
        .service(router);
    kube::Client::new(service, "default")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::{WatchStreamExt, watcher};

    use crate::api::{ApiState, router};
    use crate::store::redb::RedbStore;
    use crate::telemetry::ApiMetrics;

    /// A client over a real API router on a store in `dir`.
    async fn served(dir: &std::path::Path) -> kube::Client {
        let store = Arc::new(RedbStore::open(&dir.join("store.redb")).unwrap());
        let metrics = ApiMetrics::register(&mut prometheus_client::registry::Registry::default());
        let state = ApiState::new(store, metrics, "secret");
        state.objects.ensure_system_namespaces().await.unwrap();
        super::in_process(router(state), "secret")
    }

    #[tokio::test]
    async fn a_reflector_over_the_in_process_client_follows_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let client = served(dir.path()).await;
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

        let writer = Writer::<ConfigMap>::default();
        let reader = writer.as_reader();
        let stream = watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let driver = tokio::spawn(stream.for_each(|_| async {}));
        reader.wait_until_ready().await.unwrap();

        let cm = |name: &str| ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("k".to_string(), "1".to_string())])),
            ..ConfigMap::default()
        };
        for name in ["a", "b", "c"] {
            api.create(&PostParams::default(), &cm(name)).await.unwrap();
        }
        let patch = Patch::Merge(serde_json::json!({"data": {"k": "2"}}));
        api.patch("b", &PatchParams::default(), &patch).await.unwrap();
        api.delete("c", &DeleteParams::default()).await.unwrap();

        let expected = |reader: &kube::runtime::reflector::Store<ConfigMap>| {
            let mut state: Vec<(String, String)> = reader
                .state()
                .iter()
                .map(|c| {
                    (
                        c.metadata.name.clone().unwrap(),
                        c.data.as_ref().unwrap()["k"].clone(),
                    )
                })
                .collect();
            state.sort();
            state
                == [
                    ("a".to_string(), "1".to_string()),
                    ("b".to_string(), "2".to_string()),
                ]
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !expected(&reader) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the reflector did not follow the writes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Without the token the in-process path is refused like any other.
        let anonymous = super::in_process(
            router(ApiState::new(
                Arc::new(RedbStore::open(&dir.path().join("other.redb")).unwrap()),
                ApiMetrics::register(&mut prometheus_client::registry::Registry::default()),
                "another",
            )),
            "secret",
        );
        let refused = Api::<ConfigMap>::namespaced(anonymous, "default")
            .list(&Default::default())
            .await;
        assert!(matches!(refused, Err(kube::Error::Api(status)) if status.code == 401));
        driver.abort();
    }

    #[tokio::test]
    async fn both_event_recorders_write_through_the_real_api() {
        use k8s_openapi::api::core::v1::{Event, ObjectReference};
        use kube::api::ListParams;

        let dir = tempfile::tempdir().unwrap();
        let client = served(dir.path()).await;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let broadcaster = eventer::BroadcasterConfig::default().start(
            client.clone(),
            eventer::telemetry::EventerMetrics::default(),
            shutdown.clone(),
        );
        let pod = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some("default".into()),
            name: Some("web-1".into()),
            uid: Some("4f1c".into()),
            ..ObjectReference::default()
        };
        let legacy = broadcaster.recorder("kubelet", Some("node-1"));
        let series = broadcaster.events_recorder("kubelet", "node-1");
        for _ in 0..3 {
            legacy.warning(&pod, "BackOff", "Back-off restarting failed container web");
            series.eventf(
                &pod,
                None,
                eventer::EventType::Warning,
                "Unhealthy",
                "Probing",
                "Liveness probe failed",
            );
        }
        let api: Api<Event> = Api::namespaced(client, "default");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (back_off, unhealthy) = loop {
            let events = api.list(&ListParams::default()).await.unwrap().items;
            let find = |reason: &str| {
                events
                    .iter()
                    .find(|e| e.reason.as_deref() == Some(reason))
                    .cloned()
            };
            if let (Some(b), Some(u)) = (find("BackOff"), find("Unhealthy"))
                && b.count == Some(3)
                && u.series.as_ref().is_some_and(|s| s.count == Some(2))
            {
                assert_eq!(events.len(), 2, "repeats land on one object each");
                break (b, u);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the events did not arrive: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            back_off.first_timestamp.is_some(),
            back_off.last_timestamp.is_some()
        );
        assert_eq!(back_off.source.unwrap().component.as_deref(), Some("kubelet"));
        assert_eq!(unhealthy.reporting_component.as_deref(), Some("kubelet"));
        assert_eq!(unhealthy.reporting_instance.as_deref(), Some("kubelet-node-1"));
        assert_eq!(unhealthy.action.as_deref(), Some("Probing"));
        shutdown.cancel();
    }
}
