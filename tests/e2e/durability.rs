//! Acknowledged writes survive `kill -9`, and SIGTERM stops the server cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let http = server.http();
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.api);
    let bearer = server.bearer();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (http, url, bearer, stop) = (http.clone(), url.clone(), bearer.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("w{writer}-{i}");
                let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": i.to_string()}});
                match http.post(&url).header("Authorization", &bearer).json(&body).send().await {
                    Ok(response) if response.status().as_u16() == 201 => acknowledged.push(name),
                    // The kill lands mid-request: no acknowledgement, no promise.
                    _ => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 20,
        "the loop should have written something: {}",
        acknowledged.len()
    );

    let server = Server::start_in(dir.path(), &[]);
    let http = server.http();
    let list: serde_json::Value = http
        .get(format!("{}/api/v1/namespaces/default/configmaps", server.api))
        .header("Authorization", server.bearer())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: std::collections::HashSet<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !stored.contains(n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes were lost: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn sigterm_stops_the_server_and_the_token_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let token = server.token.clone();
    server.kubectl_ok(&["create", "configmap", "kept"]);
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let server = Server::start_in(dir.path(), &[]);
    assert_eq!(server.token, token, "the token is generated once per data dir");
    assert!(
        server
            .kubectl_ok(&["get", "configmap", "kept", "-o", "name"])
            .contains("configmap/kept")
    );
}
