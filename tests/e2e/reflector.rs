//! A kube-rs reflector against the binary: consistent with the store through creates, updates and
//! deletes, and relisting when its resume point has been compacted away.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use crate::support::{Server, free_port};

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), value.to_string())])),
        ..ConfigMap::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_stays_consistent_and_relists_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "apiVersion: glasshouse/v1alpha1\ncompactionIntervalSeconds: 1\n",
    )
    .unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--api-addr",
        address.as_str(),
    ];
    let mut server = Server::start_in(dir.path(), &args);
    let client = server.kube_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let writer = Writer::<ConfigMap>::default();
    let store = writer.as_reader();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let (relists_tx, mut relists) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Init) = event {
                let _ = relists_tx.send(());
            }
        }
    });
    store.wait_until_ready().await.unwrap();

    for i in 0..20 {
        api.create(&PostParams::default(), &config_map(&format!("cm-{i}"), "1"))
            .await
            .unwrap();
    }
    for i in 0..20 {
        let mut cm = api.get(&format!("cm-{i}")).await.unwrap();
        cm.data = Some(BTreeMap::from([("v".to_string(), "2".to_string())]));
        api.replace(&format!("cm-{i}"), &PostParams::default(), &cm)
            .await
            .unwrap();
    }
    for i in 0..10 {
        api.delete(&format!("cm-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    let names = |store: &reflector::Store<ConfigMap>| {
        let mut names: Vec<String> = store
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        names.sort();
        names
    };
    let mut expected: Vec<String> = (10..20).map(|i| format!("cm-{i}")).collect();
    expected.sort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while names(&store) != expected
        || !store
            .state()
            .iter()
            .all(|c| c.data.as_ref().and_then(|d| d.get("v")).map(String::as_str) == Some("2"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector never caught up with the store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while relists.try_recv().is_ok() {}

    // Take the server away. Meanwhile another instance on the same data dir changes a configmap and
    // writes enough elsewhere for compaction to pass the reflector's resume point.
    server.kill9();
    {
        let away = Server::start_in(dir.path(), &["--config", config.to_str().unwrap()]);
        away.kubectl_ok(&["delete", "configmap", "cm-10"]);
        for i in 0..30 {
            away.kubectl_ok(&["create", "secret", "generic", &format!("s-{i}")]);
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        away.kubectl_ok(&["create", "secret", "generic", "last"]);
    }

    // Back on the address the reflector knows: its resume point is gone, the server says 410 in the
    // stream, and the watcher relists, which brings in what changed while it was away.
    let _server = Server::start_in(dir.path(), &args);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while relists.try_recv().is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher never relisted after compaction"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    expected.retain(|n| n != "cm-10");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while names(&store) != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relist missed the change made while away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.create(&PostParams::default(), &config_map("after-relist", "3"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store
        .get(&reflector::ObjectRef::new("after-relist").within("default"))
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector stopped following after relisting"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_watches_get_bookmarks_at_the_store_revision() {
    let server = Server::start();
    let http = server.http();
    let base = format!("{}/api/v1/namespaces/default", server.api);
    let auth = server.bearer();
    // A streaming-list watch: initial events, then the initial-events-end bookmark.
    http.post(format!("{base}/configmaps"))
        .header("Authorization", &auth)
        .json(&serde_json::json!({"metadata": {"name": "existing"}}))
        .send()
        .await
        .unwrap();
    let watch = http
        .get(format!(
            "{base}/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=3"
        ))
        .header("Authorization", &auth)
        .send();
    let writer = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut last = 0u64;
        for i in 0..5 {
            let created: serde_json::Value = http
                .post(format!("{base}/secrets"))
                .header("Authorization", &auth)
                .json(&serde_json::json!({"metadata": {"name": format!("s{i}")}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            last = created["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
        }
        last
    };
    let (response, last_write) = tokio::join!(watch, writer);
    let body = response.unwrap().text().await.unwrap();
    let events: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events[0]["type"], "ADDED", "{body}");
    assert_eq!(events[1]["type"], "BOOKMARK", "{body}");
    assert_eq!(
        events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // The watch ends with a bookmark at the store's revision, past the writes to other resources.
    let last = events.last().unwrap();
    assert_eq!(last["type"], "BOOKMARK", "{body}");
    let rv: u64 = last["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rv >= last_write,
        "bookmark at {rv}, last write elsewhere at {last_write}: {body}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["type"] != "ADDED" || e["object"]["metadata"]["name"] == "existing")
    );
}
