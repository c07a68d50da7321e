//! The event shipper end to end, from the API to a sink, and its memory while a sink is down.
//!
//! - backlog: events already in the store when the shipper first starts (it lists them), shipped to a
//!   JSON-lines file and to a local webhook taking batches of 500; events/s from the server's start to
//!   the last event taken by the sink;
//! - live: events created by 16 concurrent clients while the shipper runs, to the file; creation rate,
//!   shipping rate, and how long after the last creation the last event was on disk;
//! - memory: peak RSS of `glasshouse up` during a burst of events with its only sink (a webhook) down,
//!   against the same burst with no shipper configured, in the same run.
//!
//! `GLASSHOUSE_BENCH_EVENTS` (default 20,000) and `GLASSHOUSE_BENCH_BURST` (default 100,000) set the sizes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::{Server, rss_kib, start_in};

const WRITERS: usize = 16;

fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates `count` events with `WRITERS` concurrent clients; returns how long it took.
async fn create_events(server: &Server, prefix: &str, count: usize) -> Duration {
    let http = server.http(WRITERS);
    let url = format!("{}/api/v1/namespaces/default/events", server.api);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (http, url, bearer, prefix) = (
            http.clone(),
            url.clone(),
            format!("Bearer {}", server.token),
            prefix.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            for i in (writer..count).step_by(WRITERS) {
                let body = json!({
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": format!("{prefix}-{i}")},
                    "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": format!("web-{}", i % 100), "namespace": "default"},
                    "type": "Normal", "reason": "Started", "message": format!("Started container web ({i})"),
                    "source": {"component": "bench"},
                });
                let response = http.post(&url).header("Authorization", &bearer).json(&body).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 201, "creating an event");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

async fn wait_for(count: usize, timeout: Duration, mut have: impl FnMut() -> usize) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if have() >= count {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} events arrived",
            have()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn write_config(dir: &Path, sink: &str) -> String {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: glasshouse/v1alpha1\nevents:\n  sinks: {{out: {sink}}}\n  routes: [{{sinks: [out]}}]\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// A webhook receiver counting the records it takes.
async fn receiver() -> (u16, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let counted = counted.clone();
            async move {
                let records = match serde_json::from_str::<Value>(&body) {
                    Ok(Value::Array(items)) => items.len(),
                    Ok(_) => 1,
                    Err(_) => 0,
                };
                counted.fetch_add(records, Ordering::Relaxed);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, count)
}

/// Fills a data dir's store with `count` events, with no shipper running.
async fn backlog(dir: &Path, count: usize) {
    let server = start_in(dir, &[]);
    create_events(&server, "backlog", count).await;
}

async fn run() {
    let events = env_size("GLASSHOUSE_BENCH_EVENTS", 20_000);
    let burst = env_size("GLASSHOUSE_BENCH_BURST", 100_000);
    println!("| scenario | events | seconds | events/s |");
    println!("|---|---|---|---|");

    // Backlog to a file.
    let dir = tempfile::tempdir().unwrap();
    backlog(dir.path(), events).await;
    let file = dir.path().join("shipped.jsonl");
    let config = write_config(dir.path(), &format!("{{file: {{path: \"{}\"}}}}", file.display()));
    let started = Instant::now();
    let _server = start_in(dir.path(), &["--config", &config]);
    let done = wait_for(events, Duration::from_secs(600), || lines(&file)).await;
    let seconds = (done - started).as_secs_f64();
    println!(
        "| backlog → file sink | {events} | {seconds:.2} | {:.0} |",
        events as f64 / seconds
    );
    drop(_server);

    // Backlog to a batching webhook.
    let dir = tempfile::tempdir().unwrap();
    backlog(dir.path(), events).await;
    let (port, received) = receiver().await;
    let config = write_config(
        dir.path(),
        &format!("{{webhook: {{url: \"http://127.0.0.1:{port}/hook\", maxBatch: 500}}}}"),
    );
    let started = Instant::now();
    let _server = start_in(dir.path(), &["--config", &config]);
    let done = wait_for(events, Duration::from_secs(600), || {
        received.load(Ordering::Relaxed)
    })
    .await;
    let seconds = (done - started).as_secs_f64();
    println!(
        "| backlog → webhook sink (batches of 500) | {events} | {seconds:.2} | {:.0} |",
        events as f64 / seconds
    );
    drop(_server);

    // Live: shipping while events are created.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shipped.jsonl");
    let config = write_config(dir.path(), &format!("{{file: {{path: \"{}\"}}}}", file.display()));
    let server = start_in(dir.path(), &["--config", &config]);
    let started = Instant::now();
    let created = create_events(&server, "live", events).await;
    let done = wait_for(events, Duration::from_secs(600), || lines(&file)).await;
    let seconds = (done - started).as_secs_f64();
    println!(
        "| live → file sink, while {WRITERS} clients create them ({:.0} created/s) | {events} | {seconds:.2} | {:.0} |",
        events as f64 / created.as_secs_f64(),
        events as f64 / seconds
    );
    println!();
    println!(
        "Live: the last event was on disk {:.0} ms after the last creation.",
        (done - started - created).as_secs_f64() * 1000.0
    );
    drop(server);

    // Memory during a burst with the only sink down, against the same burst without a shipper.
    println!();
    println!("| burst of {burst} events | peak RSS MiB | RSS after MiB |");
    println!("|---|---|---|");
    for (what, sink) in [
        ("no shipper", None),
        (
            "shipper, webhook sink down",
            Some(format!(
                "{{webhook: {{url: \"http://127.0.0.1:{}/hook\"}}}}",
                unused_port()
            )),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let extra: Vec<String> = match &sink {
            Some(sink) => vec!["--config".into(), write_config(dir.path(), sink)],
            None => vec![],
        };
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let server = start_in(dir.path(), &extra);
        let peak = Arc::new(AtomicU64::new(0));
        let pid = server.child.id();
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(kib) = rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        create_events(&server, "burst", burst).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        sampler.abort();
        let after = rss_kib(pid).unwrap_or(0);
        let peak = peak.load(Ordering::Relaxed).max(after);
        println!(
            "| {what} | {:.1} | {:.1} |",
            peak as f64 / 1024.0,
            after as f64 / 1024.0
        );
    }
}

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}
