//! The event shipper's OTLP sink against collectors written for the test: one speaking gRPC (the OTLP
//! logs service), one speaking HTTP/JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as ProtoValue;
use serde_json::{Value, json};

use crate::support::{Server, eventually};

/// What a collector received: per log record, its body, severity text and string attributes.
type Logs = Arc<Mutex<Vec<(String, String, HashMap<String, String>)>>>;

#[derive(Clone, Default)]
struct GrpcCollector {
    logs: Logs,
}

#[tonic::async_trait]
impl LogsService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let text = |value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>| match value
            .and_then(|v| v.value.as_ref())
        {
            Some(ProtoValue::StringValue(s)) => s.clone(),
            Some(ProtoValue::IntValue(i)) => i.to_string(),
            _ => String::new(),
        };
        let tenant = request
            .metadata()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut logs = self.logs.lock().unwrap();
        for resource in request.into_inner().resource_logs {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name");
            assert_eq!(
                service.map(|a| text(a.value.as_ref())).as_deref(),
                Some("glasshouse")
            );
            for record in resource.scope_logs.into_iter().flat_map(|s| s.log_records) {
                let mut attributes: HashMap<String, String> = record
                    .attributes
                    .iter()
                    .map(|a| (a.key.clone(), text(a.value.as_ref())))
                    .collect();
                // The configured header travels as gRPC metadata.
                attributes.insert("metadata x-tenant".into(), tenant.clone());
                logs.push((text(record.body.as_ref()), record.severity_text, attributes));
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

async fn grpc_collector() -> (u16, Logs) {
    let collector = GrpcCollector::default();
    let logs = collector.logs.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LogsServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (port, logs)
}

async fn http_json_collector() -> (u16, Logs) {
    let logs: Logs = Arc::default();
    let kept = logs.clone();
    let router = axum::Router::new().route(
        "/v1/logs",
        axum::routing::post(move |body: String| {
            let kept = kept.clone();
            async move {
                let request: Value = serde_json::from_str(&body).expect("OTLP/JSON");
                let text = |v: &Value| {
                    v.get("stringValue")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| {
                            v.get("intValue")
                                .map(|i| i.as_str().map_or(i.to_string(), str::to_string))
                        })
                        .unwrap_or_default()
                };
                let mut logs = kept.lock().unwrap();
                for resource in request["resourceLogs"].as_array().into_iter().flatten() {
                    for scope in resource["scopeLogs"].as_array().into_iter().flatten() {
                        for record in scope["logRecords"].as_array().into_iter().flatten() {
                            let attributes = record["attributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|a| (a["key"].as_str().unwrap().to_string(), text(&a["value"])))
                                .collect();
                            let severity = record["severityText"].as_str().unwrap_or_default().to_string();
                            logs.push((text(&record["body"]), severity, attributes));
                        }
                    }
                }
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_otlp_collectors_over_grpc_and_http_json() {
    let (grpc, grpc_logs) = grpc_collector().await;
    let (http, http_logs) = http_json_collector().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: glasshouse/v1alpha1\nevents:\n  sinks:\n    grpc: {{otlp: {{endpoint: \"http://127.0.0.1:{grpc}\", headers: {{x-tenant: team-a}}}}}}\n    json: {{otlp: {{endpoint: \"http://127.0.0.1:{http}\", protocol: http/json}}}}\n  routes: [{{sinks: [grpc, json]}}]\n  drop: [{{kind: Node}}]\n"
        ),
    )
    .unwrap();
    let server = Server::start_in(dir.path(), &["--config", config.to_str().unwrap()]);
    let event = |name: &str, type_: &str, reason: &str, message: &str| {
        format!(
            "apiVersion: v1\nkind: Event\nmetadata: {{name: {name}}}\ninvolvedObject: {{apiVersion: v1, kind: Pod, name: web-1, namespace: default, uid: u-1}}\ntype: {type_}\nreason: {reason}\nmessage: {message}\nsource: {{component: kubelet}}\n"
        )
    };
    let manifest = [
        event("started", "Normal", "Started", "Started container web"),
        event("unhealthy", "Warning", "Unhealthy", "Liveness probe failed"),
    ]
    .join("---\n");
    server.kubectl_ok_input(&["create", "-f", "-"], &manifest);

    for (protocol, logs) in [("grpc", &grpc_logs), ("http/json", &http_logs)] {
        assert!(
            eventually(Duration::from_secs(30), || logs.lock().unwrap().len() >= 2),
            "{protocol}: {:?}",
            logs.lock().unwrap()
        );
        let logs = logs.lock().unwrap();
        let by_name: HashMap<&str, &(String, String, HashMap<String, String>)> =
            logs.iter().map(|l| (l.2["k8s.event.name"].as_str(), l)).collect();
        let (body, severity, attributes) = by_name["unhealthy"];
        assert_eq!(
            (body.as_str(), severity.as_str()),
            ("Liveness probe failed", "Warning"),
            "{protocol}"
        );
        assert_eq!(attributes["k8s.event.reason"], "Unhealthy", "{protocol}");
        assert_eq!(attributes["k8s.object.kind"], "Pod", "{protocol}");
        assert_eq!(attributes["k8s.object.name"], "web-1", "{protocol}");
        assert_eq!(attributes["k8s.namespace.name"], "default", "{protocol}");
        assert_eq!(attributes["k8s.event.count"], "1", "{protocol}");
        assert!(
            attributes["glasshouse.delivery_id"].ends_with("-1"),
            "{protocol}: {attributes:?}"
        );
        assert_eq!(by_name["started"].1, "Normal", "{protocol}");
    }
    assert_eq!(grpc_logs.lock().unwrap()[0].2["metadata x-tenant"], "team-a");
}
