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

    #[tokio::test]
    async fn a_reflector_over_the_in_process_client_follows_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("store.redb")).unwrap());
        let metrics = ApiMetrics::register(&mut prometheus_client::registry::Registry::default());
        let state = ApiState::new(store, metrics, "secret");
        state.objects.ensure_system_namespaces().await.unwrap();
        let client = super::in_process(router(state), "secret");
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
}
