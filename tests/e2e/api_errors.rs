//! Bad input gets a Status error (or a timeout), never a panic or a hang; auth, health and metrics.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::Server;

async fn status_of(response: reqwest::Response) -> (u16, Value) {
    let code = response.status().as_u16();
    let body: Value = response.json().await.expect("an error body is a JSON Status");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["code"], code, "{body}");
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_status_errors() {
    let server = Server::start();
    let http = server.http();
    let cms = format!("{}/api/v1/namespaces/default/configmaps", server.api);
    let auth = server.bearer();
    let post = |url: String, content_type: &'static str, body: Vec<u8>| {
        http.post(url)
            .header("Authorization", &auth)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };

    // Health answers without a token; the API does not.
    let health = http.get(format!("{}/readyz", server.api)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let (code, body) = status_of(http.get(&cms).send().await.unwrap()).await;
    assert_eq!((code, body["reason"].as_str()), (401, Some("Unauthorized")));
    let (code, _) = status_of(
        http.get(&cms)
            .header("Authorization", "Bearer wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 401);

    // Malformed bodies in every accepted encoding.
    let (code, body) = status_of(
        post(cms.clone(), "application/json", b"{not json".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _) = status_of(
        post(cms.clone(), "application/yaml", b"a: [unclosed".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = status_of(
        post(
            cms.clone(),
            "application/vnd.kubernetes.protobuf",
            b"k8s\0\x0a\xff\xff".to_vec(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = status_of(post(cms.clone(), "text/csv", b"a,b".to_vec()).await.unwrap()).await;
    assert_eq!(code, 415);
    let (code, _) = status_of(
        post(cms.clone(), "application/json", b"[1,2]".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);

    // Unknown kinds and paths.
    let (code, _) = status_of(
        post(
            format!("{}/api/v1/namespaces/default/widgets", server.api),
            "application/json",
            b"{}".to_vec(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(code, 404);
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    let (code, body) = status_of(
        post(
            cms.clone(),
            "application/json",
            wrong_kind.to_string().into_bytes(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(code, 400, "{body}");

    // Invalid names and labels: 422 with causes.
    for bad in [
        json!({"metadata": {"name": "Bad_Name"}}),
        json!({"metadata": {"name": "ok", "labels": {"bad key!": "x"}}}),
        json!({"metadata": {"name": "ok2", "labels": {"k": "-bad-value"}}}),
    ] {
        let (code, body) = status_of(
            post(cms.clone(), "application/json", bad.to_string().into_bytes())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")), "{body}");
        assert!(
            !body["details"]["causes"].as_array().unwrap().is_empty(),
            "{body}"
        );
    }

    // A stale resourceVersion conflicts.
    let created: Value = post(
        cms.clone(),
        "application/json",
        json!({"metadata": {"name": "cm"}}).to_string().into_bytes(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut update = created.clone();
    update["data"] = json!({"a": "1"});
    let put = |body: Value| {
        http.put(format!("{cms}/cm"))
            .header("Authorization", &auth)
            .json(&body)
            .send()
    };
    assert_eq!(put(update.clone()).await.unwrap().status(), 200);
    update["metadata"]["resourceVersion"] = json!(rv);
    let (code, body) = status_of(put(update).await.unwrap()).await;
    assert_eq!((code, body["reason"].as_str()), (409, Some("Conflict")));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified"),
        "{body}"
    );

    // Bad query parameters.
    let (code, _) = status_of(
        http.get(format!("{cms}?labelSelector=a%20in%20("))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = status_of(
        http.get(format!("{cms}?watch=true&resourceVersion=abc"))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 400);

    // Over 3 MiB.
    let huge = json!({"metadata": {"name": "huge"}, "data": {"a": "x".repeat(3 * 1024 * 1024 + 10)}});
    let (code, body) = status_of(
        post(cms.clone(), "application/json", huge.to_string().into_bytes())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );

    // A watch from a compacted-away or future revision still answers (in-stream errors or events).
    let response = http
        .get(format!("{cms}?watch=true&resourceVersion=1&timeoutSeconds=1"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.text().await.unwrap();

    // The server is still fine after all that, and counted it.
    assert_eq!(
        http.get(&cms)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = http
        .get(&server.metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("apiserver_request_total{"), "{metrics}");
    assert!(
        metrics.contains(r#"code="422""#) && metrics.contains(r#"code="401""#),
        "{metrics}"
    );
    assert!(
        metrics.contains("apiserver_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("glasshouse_store_revision"), "{metrics}");
}

#[test]
fn a_client_trickling_its_body_times_out() {
    let server = Server::start();
    let address = server.api.trim_start_matches("https://").to_string();
    // TLS is in the way of a raw socket test, so trickle below TLS: the handshake is never completed.
    // The server must drop the connection by itself (handshake timeout) rather than hold it forever.
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(&[0x16, 0x03]).unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let read = stream.read(&mut buf);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the server closes a stalled connection: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "closed by the server's timeout, not ours"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_after_headers_times_out_with_a_status() {
    let server = Server::start();
    let http = server.http();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    // Send the first byte of the body, then nothing: the server must answer with a timeout Status.
    tx.send(Ok(bytes::Bytes::from_static(b"{"))).await.unwrap();
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let started = std::time::Instant::now();
    let response = http
        .post(format!("{}/api/v1/namespaces/default/configmaps", server.api))
        .header("Authorization", server.bearer())
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (code, body) = status_of(response).await;
    assert_eq!((code, body["reason"].as_str()), (504, Some("Timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(45));
    drop(tx);
}
