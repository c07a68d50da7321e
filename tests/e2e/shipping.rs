//! The event shipper end to end: routes and drop rules, a webhook receiver that is down during a burst,
//! sinks that fail, hang or answer garbage beside working ones, `kill -9` while shipping, and bad
//! configuration.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{Server, refused_start};

/// How a test receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Accept,
    Fail,
    Hang,
}

#[derive(Clone)]
struct Received {
    answer: Answer,
    /// While false the receiver is down: it answers 503 to everything.
    up: Arc<AtomicBool>,
    bodies: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

/// A webhook receiver on a loopback port of its own, stopped (its port closed) when dropped.
struct Receiver {
    port: u16,
    received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(answer: Answer, up: bool) -> Receiver {
        let received = Received {
            answer,
            up: Arc::new(AtomicBool::new(up)),
            bodies: Arc::default(),
        };
        let router = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { port, received, task }
    }

    fn come_up(&self) {
        self.received.up.store(true, Ordering::SeqCst);
    }

    /// Every record received so far (batches flattened).
    fn records(&self) -> Vec<Value> {
        let bodies = self.received.bodies.lock().unwrap();
        bodies
            .iter()
            .flat_map(|(_, body)| match body {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            })
            .collect()
    }

    fn requests(&self) -> usize {
        self.received.bodies.lock().unwrap().len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A "receiver" that answers every connection with bytes that are not HTTP, then hangs up; returns its
/// port.
async fn garbage_receiver() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"\x00\x17garbage, not HTTP\r\n\r\n").await;
            let _ = stream.shutdown().await;
        }
    });
    (port, task)
}

async fn receive(State(received): State<Received>, headers: HeaderMap, body: String) -> StatusCode {
    if !received.up.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match received.answer {
        Answer::Accept => {
            let body: Value = serde_json::from_str(&body).expect("the shipper sends JSON");
            received.bodies.lock().unwrap().push((headers, body));
            StatusCode::OK
        }
        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Hang => std::future::pending().await,
    }
}

/// Where tests create events: the API's events URL, with the token, over a client trusting its CA.
#[derive(Clone)]
struct EventsApi {
    url: String,
    bearer: String,
    http: reqwest::Client,
}

impl EventsApi {
    fn of(server: &Server) -> Self {
        let url = format!("{}/api/v1/namespaces/default/events", server.api);
        EventsApi {
            url,
            bearer: server.bearer(),
            http: server.http(),
        }
    }

    /// Creates one event; true when the API acknowledged it.
    async fn create(&self, body: &Value) -> bool {
        let response = self
            .http
            .post(&self.url)
            .header("Authorization", &self.bearer)
            .json(body)
            .send()
            .await;
        matches!(response, Ok(r) if r.status().as_u16() == 201)
    }
}

/// Creates events named `{prefix}-{i}` with `writers` concurrent clients until `count` are created or a
/// write fails (the server went away); returns the names the API acknowledged.
async fn create_events(api: EventsApi, prefix: &'static str, count: usize, writers: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut created = Vec::new();
            for i in (writer..count).step_by(writers) {
                let name = format!("{prefix}-{i}");
                if !api
                    .create(&event(&name, "Normal", "Burst", &format!("burst event {i}")))
                    .await
                {
                    break;
                }
                created.push(name);
            }
            created
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        created.extend(task.await.unwrap());
    }
    created
}

fn event(name: &str, type_: &str, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": "default"},
        "type": type_, "reason": reason, "message": message,
        "source": {"component": "e2e"},
    })
}

/// The event names in a JSON-lines file (and its rotated siblings), with their delivery ids.
fn shipped_to_file(path: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    // A line still being written (no newline yet) is not there yet.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("each line is a JSON record");
            let name = record["event"]["metadata"]["name"].as_str().unwrap().to_string();
            (name, record["deliveryId"].as_str().unwrap().to_string())
        })
        .collect()
}

async fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn metric(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_down_during_a_burst_gets_every_event_and_no_sink_blocks_another() {
    const BURST: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    // The good receiver is down (503) for the first 60 s, while the burst happens.
    let receiver = Receiver::start(Answer::Accept, false).await;
    let broken = Receiver::start(Answer::Fail, true).await;
    let hanging = Receiver::start(Answer::Hang, true).await;
    let (garbage, garbage_task) = garbage_receiver().await;
    let (good, broken_port, hanging_port) = (receiver.port, broken.port, hanging.port);
    let audit = dir.path().join("audit/events.jsonl");
    let warnings = dir.path().join("warnings.jsonl");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"apiVersion: glasshouse/v1alpha1
events:
  sinks:
    good: {{webhook: {{url: "http://127.0.0.1:{good}/hook", maxBatch: 500, bearerToken: s3cret}}}}
    broken: {{webhook: {{url: "http://127.0.0.1:{broken_port}/hook"}}}}
    hanging: {{webhook: {{url: "http://127.0.0.1:{hanging_port}/hook", timeoutSeconds: 1}}}}
    garbage: {{webhook: {{url: "http://127.0.0.1:{garbage}/hook"}}}}
    audit: {{file: {{path: "{audit}"}}}}
    warnings: {{file: {{path: "{warnings}"}}}}
  routes:
    - sinks: [good, broken, hanging, garbage, audit]
    - match: {{type: Warning, reason: "^Back"}}
      sinks: [warnings]
  drop:
    - {{reason: "^Ignored$"}}
    - {{kind: Node}}          # this machine's node agent has its say too; not this test's business
"#,
            audit = audit.display(),
            warnings = warnings.display()
        ),
    )
    .unwrap();
    let server = Server::start_in(dir.path(), &["--config", config.to_str().unwrap()]);

    let down_since = Instant::now();
    let api = EventsApi::of(&server);
    let mut expected: HashSet<String> = create_events(api.clone(), "burst", BURST, 8)
        .await
        .into_iter()
        .collect();
    assert_eq!(expected.len(), BURST);
    for body in [
        event(
            "backoff",
            "Warning",
            "BackOff",
            "Back-off restarting failed container",
        ),
        event("ignored", "Normal", "Ignored", "dropped by a rule"),
    ] {
        assert!(api.create(&body).await);
    }
    expected.insert("backoff".into());

    // Meanwhile the file sink gets everything (the failing and hanging webhooks hold up only themselves),
    // and the route for warnings only the warning.
    wait_until(Duration::from_secs(60), "the audit file has every event", || {
        let names: HashSet<String> = shipped_to_file(&audit).into_iter().map(|(n, _)| n).collect();
        names == expected
    })
    .await;
    let warned: Vec<String> = shipped_to_file(&warnings).into_iter().map(|(n, _)| n).collect();
    assert_eq!(warned, ["backoff"]);

    tokio::time::sleep(Duration::from_secs(60).saturating_sub(down_since.elapsed())).await;
    receiver.come_up();
    wait_until(Duration::from_secs(60), "the receiver has every event", || {
        let names: HashSet<String> = receiver
            .records()
            .iter()
            .map(|r| r["event"]["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        names == expected
    })
    .await;
    // Duplicates (at-least-once) carry the delivery id of the same event state.
    let mut ids: HashMap<String, String> = HashMap::new();
    for record in receiver.records() {
        let name = record["event"]["metadata"]["name"].as_str().unwrap().to_string();
        let id = record["deliveryId"].as_str().unwrap().to_string();
        assert!(id.ends_with("-1"), "{id}");
        if let Some(previous) = ids.insert(name.clone(), id.clone()) {
            assert_eq!(previous, id, "a duplicate of {name} has another delivery id");
        }
    }
    assert!(
        receiver.requests() <= BURST / 100,
        "batches: {} requests",
        receiver.requests()
    );
    let headers = &receiver.received.bodies.lock().unwrap()[0].0;
    assert_eq!(headers["authorization"], "Bearer s3cret");

    let scrape = server.scrape();
    assert!(
        metric(&scrape, r#"glasshouse_event_sink_delivered_total{sink="good"}"#).unwrap()
            >= expected.len() as f64
    );
    assert!(
        metric(&scrape, r#"glasshouse_event_sink_failed_total{sink="broken"}"#).unwrap() > 0.0,
        "{scrape}"
    );
    assert!(
        metric(&scrape, r#"glasshouse_event_sink_failed_total{sink="hanging"}"#).unwrap() > 0.0,
        "{scrape}"
    );
    assert!(
        metric(&scrape, r#"glasshouse_event_sink_failed_total{sink="garbage"}"#).unwrap() > 0.0,
        "{scrape}"
    );
    garbage_task.abort();
    assert!(
        metric(
            &scrape,
            r#"glasshouse_event_shipper_unrouted_total{reason="drop_rule"}"#
        )
        .unwrap()
            >= 1.0,
        "{scrape}"
    );
    assert_eq!(
        metric(&scrape, r#"glasshouse_event_sink_queue_depth{sink="good"}"#),
        Some(0.0),
        "{scrape}"
    );
    assert!(
        metric(&scrape, r#"glasshouse_event_sink_queue_depth{sink="broken"}"#).unwrap() > 0.0,
        "{scrape}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_shipping_loses_no_acknowledged_event_and_a_resume_point_gone_is_relisted() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = dir.path().join("shipped.jsonl");
    // Compaction every second, so that the shipper's resume point can be compacted away while it is off.
    let base = "apiVersion: glasshouse/v1alpha1\ncompactionIntervalSeconds: 1\n";
    let with_shipper = dir.path().join("shipping.yaml");
    let without = dir.path().join("plain.yaml");
    std::fs::write(
        &with_shipper,
        format!(
            "{base}events:\n  sinks: {{out: {{file: {{path: \"{}\"}}}}}}\n  routes: [{{sinks: [out]}}]\n  drop: [{{kind: Node}}]\n",
            shipped.display()
        ),
    )
    .unwrap();
    std::fs::write(&without, base).unwrap();
    let shipping = ["--config", with_shipper.to_str().unwrap()];
    let names = || -> HashSet<String> { shipped_to_file(&shipped).into_iter().map(|(n, _)| n).collect() };

    let mut server = Server::start_in(dir.path(), &shipping);
    let creating = tokio::spawn(create_events(EventsApi::of(&server), "k", 1_000_000, 1));
    // Kill while events are being created and shipped.
    wait_until(Duration::from_secs(30), "some events are shipped", || {
        names().iter().filter(|n| n.starts_with("k-")).count() > 200
    })
    .await;
    server.kill9();
    let mut acknowledged = creating.await.unwrap();
    // One writer, one request in flight: all but at most one shipped event were acknowledged.
    assert!(acknowledged.len() >= 200, "{}", acknowledged.len());

    // Meanwhile, with the shipper off, more events come and the history they are in is compacted.
    let mut server = Server::start_in(dir.path(), &["--config", without.to_str().unwrap()]);
    acknowledged.extend(create_events(EventsApi::of(&server), "while-off", 100, 4).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.terminate();

    let server = Server::start_in(dir.path(), &shipping);
    wait_until(
        Duration::from_secs(60),
        "every acknowledged event is shipped",
        || {
            let names = names();
            acknowledged.iter().all(|name| names.contains(name))
        },
    )
    .await;
    let scrape = server.scrape();
    assert_eq!(
        metric(&scrape, "glasshouse_event_shipper_relists_total"),
        Some(1.0),
        "{scrape}"
    );
}

#[test]
fn bad_shipping_config_is_refused_at_start_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let start = |config: &str| {
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).unwrap();
        refused_start(&["--config", path.to_str().unwrap()])
    };
    let stderr = start(
        r#"apiVersion: glasshouse/v1alpha1
events:
  sinks:
    hook: {webhook: {url: "htp//nowhere"}}
  routes:
    - match: {reason: "(unclosed"}
      sinks: [hook, missing]
"#,
    );
    for problem in [
        r#"events.sinks.hook.webhook.url: "htp//nowhere" is not a URL"#,
        r#"events.routes[0].match.reason: "(unclosed" is not a valid regular expression"#,
        r#"events.routes[0].sinks: no sink is named "missing""#,
    ] {
        assert!(stderr.contains(problem), "{problem}\n{stderr}");
    }
    let stderr = start("apiVersion: glasshouse/v1alpha1\nevents:\n  sinks: {q: {kafka: {brokers: [x]}}}\n");
    assert!(
        stderr.contains(
            "unknown field `kafka`, expected one of `webhook`, `file`, `otlp`, `prometheus`, `logIndex`"
        ),
        "{stderr}"
    );
    // The log index sink needs a log pipeline in the process: `server` mode has none.
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "apiVersion: glasshouse/v1alpha1\nevents:\n  sinks: {idx: {logIndex: {}}}\n  routes: [{sinks: [idx]}]\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_glasshouse"))
        .args([
            "server",
            "--api-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data.path())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("event sink \"idx\": this process has no log index to write to"),
        "{stderr}"
    );
}
