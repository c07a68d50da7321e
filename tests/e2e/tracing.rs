//! Component traces: with the standard `OTEL_EXPORTER_OTLP_ENDPOINT` set, `glasshouse up` exports spans of
//! API requests, controller reconciles, scheduling, probe runs and log commits over OTLP/HTTP to a
//! receiver written for the test; without it, nothing is sent.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::support::{Server, eventually};

/// The names of the spans received, and the services they came from.
type Seen = Arc<Mutex<(BTreeSet<String>, BTreeSet<String>)>>;

/// A receiver of OTLP/HTTP protobuf trace exports.
fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let collected = seen.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/v1/traces",
                post(move |body: Bytes| {
                    let collected = collected.clone();
                    async move {
                        let request = ExportTraceServiceRequest::decode(body).unwrap_or_default();
                        let mut seen = collected.lock().unwrap();
                        for resource in request.resource_spans {
                            for attribute in resource.resource.iter().flat_map(|r| r.attributes.iter()) {
                                if attribute.key == "service.name" {
                                    seen.1.insert(format!("{:?}", attribute.value));
                                }
                            }
                            for scope in resource.scope_spans {
                                for span in scope.spans {
                                    seen.0.insert(span.name);
                                }
                            }
                        }
                        ""
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn spans_of_every_component_reach_an_otlp_receiver() {
    let (endpoint, seen) = receiver();
    let server = Server::start_with_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    );
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: traced}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: traced}}\n  template:\n    metadata: {labels: {app: traced}}\n    spec:\n      containers:\n      - name: c\n        image: busybox\n        command: [sh, -c, 'while true; do echo hello; sleep 1; done']\n        readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}\n",
    );
    let wanted = ["api_request", "reconcile", "schedule", "probe", "log_commit"];
    let names = || seen.lock().unwrap().0.clone();
    assert!(
        eventually(Duration::from_secs(60), || wanted
            .iter()
            .all(|w| names().contains(*w))),
        "{:?}",
        names()
    );
    assert!(
        seen.lock().unwrap().1.iter().any(|s| s.contains("glasshouse")),
        "{:?}",
        seen.lock().unwrap().1
    );
}

#[test]
fn an_otlp_protocol_other_than_http_protobuf_is_refused_with_a_warning() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let (endpoint, seen) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_glasshouse"))
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .args(["--api-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let warned = (0..600).find_map(|_| {
        rx.recv_timeout(Duration::from_millis(100))
            .ok()
            .filter(|l| l.contains("traces are not exported"))
    });
    // An exporter would have sent a batch of the start-up's spans by now.
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert_eq!(
        warned.as_deref(),
        Some(
            "warning: traces are not exported: OTLP protocol \"grpc\" is not supported, only \"http/protobuf\""
        )
    );
    assert!(seen.lock().unwrap().0.is_empty(), "nothing was sent");
}
