//! A kube-rs reflector against the binary: consistent with the store through creates, updates and
//! deletes, and relisting when its resume point has been compacted away.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use crate::support::Server;

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
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "apiVersion: glasshouse/v1alpha1\ncompactionIntervalSeconds: 1\n",
    )
    .unwrap();
    let server = Server::start_with(&["--config", config.path().to_str().unwrap()]);
    let client = server.kube_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let writer = Writer::<ConfigMap>::default();
    let store = writer.as_reader();
    // Short server-side watch timeouts make the watcher resume often, from revisions that compaction
    // keeps overtaking while other resources change.
    let stream = watcher(api.clone(), watcher::Config::default().timeout(1))
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
    let consistent = || {
        let mut names: Vec<String> = store
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        names.sort();
        let mut expected: Vec<String> = (10..20).map(|i| format!("cm-{i}")).collect();
        expected.sort();
        names == expected
            && store
                .state()
                .iter()
                .all(|c| c.data.as_ref().and_then(|d| d.get("v")).map(String::as_str) == Some("2"))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !consistent() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector never caught up with the store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Advance the revision elsewhere while the watcher idles on configmaps, across compactions: its next
    // resume point is too old, the server says 410 in the stream, and the watcher relists.
    while relists.try_recv().is_ok() {}
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher never relisted after compaction"
        );
        let secret = k8s_openapi::api::core::v1::Secret {
            metadata: ObjectMeta {
                name: Some(format!("s-{n}")),
                ..ObjectMeta::default()
            },
            ..Default::default()
        };
        secrets.create(&PostParams::default(), &secret).await.unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if relists.try_recv().is_ok() {
            break;
        }
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
    assert_eq!(store.state().len(), 11);
    driver.abort();
}
