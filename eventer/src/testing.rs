//! A scripted API for the write-path tests: the answers they need (a 404 to a PATCH, a broken
//! connection) cannot be provoked from a healthy server. The real server's side is covered end to end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::ObjectReference;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::telemetry::EventerMetrics;
use crate::{Broadcaster, BroadcasterConfig};

/// One scripted answer: a status and a body, or a failed connection.
pub type Answer = Option<(StatusCode, Value)>;

#[derive(Clone, Default)]
pub struct ScriptedApi {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    requests: Arc<Mutex<Vec<(String, String, Value)>>>,
}

impl ScriptedApi {
    pub fn answer(&self, answer: Answer) {
        self.answers.lock().unwrap().push_back(answer);
    }

    pub fn requests(&self) -> Vec<(String, String, Value)> {
        self.requests.lock().unwrap().clone()
    }

    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let api = api.clone();
            async move {
                let method = request.method().to_string();
                let path = request.uri().path().to_string();
                let body = http_body_util::BodyExt::collect(request.into_body())
                    .await?
                    .to_bytes();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                api.requests.lock().unwrap().push((method, path, body.clone()));
                // By default (and for a scripted `accept()`) the server takes the write and returns the
                // object with a version.
                let answer = match api.answers.lock().unwrap().pop_front().unwrap_or_else(accept) {
                    Some((status, Value::Null)) => {
                        let mut object = body.clone();
                        object["metadata"]["resourceVersion"] = json!("1");
                        Some((status, object))
                    }
                    other => other,
                };
                match answer {
                    Some((status, body)) => Ok(Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
                        .unwrap()),
                    None => Err::<_, Box<dyn std::error::Error + Send + Sync>>("connection reset".into()),
                }
            }
        });
        kube::Client::new(service, "default")
    }
}

pub fn accept() -> Answer {
    Some((StatusCode::CREATED, Value::Null))
}

pub fn status(code: u16, reason: &str) -> Answer {
    let status = StatusCode::from_u16(code).unwrap();
    Some((
        status,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason}),
    ))
}

pub async fn settle(api: &ScriptedApi, requests: usize) {
    for _ in 0..20_000 {
        if api.requests().len() >= requests {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Whatever else the writer would do now, let it.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The pod most tests record events about.
pub fn pod() -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some("web".into()),
        name: Some("web-1".into()),
        uid: Some("uid-1".into()),
        ..ObjectReference::default()
    }
}

/// A broadcaster with upstream's defaults writing to `api`, and its metrics.
pub fn broadcaster(api: &ScriptedApi) -> (Broadcaster, EventerMetrics) {
    let metrics = EventerMetrics::default();
    let broadcaster =
        BroadcasterConfig::default().start(api.client(), metrics.clone(), CancellationToken::new());
    (broadcaster, metrics)
}

/// A plain HTTP/1.1 receiver on loopback that answers each request with the status `answer` gives for
/// its JSON body, and keeps the bodies it answered 2xx. Returns its URL.
pub async fn http_receiver(
    answer: impl Fn(&Value) -> u16 + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let taken: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (answer, kept) = (Arc::new(answer), taken.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (answer, kept) = (answer.clone(), kept.clone());
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if stream.read_exact(&mut body).await.is_err() {
                    return;
                }
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let status = answer(&body);
                if (200..300).contains(&status) {
                    kept.lock().unwrap().push(body);
                }
                let response =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.get_mut().write_all(response.as_bytes()).await;
            });
        }
    });
    (url, taken)
}
