//! API latency under load, for both store backends in the same run, and idle memory.
//!
//! For each backend it starts `glasshouse up` (release build), then runs four phases (create, get, list,
//! update of ConfigMaps) with 50 concurrent HTTPS clients paced to 500 requests/s in all, and prints
//! p50/p99/max latency per phase as a Markdown table. Before the load it records the idle RSS of the
//! server, and of the etcd it is compared with. `scripts/bench.sh` runs it with an etcd on loopback
//! (`GLASSHOUSE_TEST_ETCD`, `GLASSHOUSE_TEST_ETCD_PID`); without one only redb is measured.
//! `GLASSHOUSE_BENCH_SECONDS` sets each phase's length (default 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

mod common;
use common::{Server, rss_kib, start};

const CLIENTS: usize = 50;
const RATE: f64 = 500.0;
const LIST_SIZE: usize = 100;

#[derive(Clone, Copy)]
enum Op {
    Create,
    Get,
    List,
    Update,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Get => "get",
            Op::List => "list (100 objects)",
            Op::Update => "update",
        }
    }
}

struct Phase {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

async fn run_phase(server: &Server, http: &reqwest::Client, op: Op, seconds: u64) -> Phase {
    let base = Arc::new(format!("{}/api/v1/namespaces", server.api));
    let auth = Arc::new(format!("Bearer {}", server.token));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let period = Duration::from_secs_f64(CLIENTS as f64 / RATE);
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (http, base, auth) = (http.clone(), base.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = 0usize;
            // Spread the clients over the period so the load is even.
            tokio::time::sleep(period.mul_f64(client as f64 / CLIENTS as f64)).await;
            while Instant::now() < deadline {
                ticker.tick().await;
                let name = format!("c{client}-{i}");
                let request = match op {
                    Op::Create => http
                        .post(format!("{base}/bench/configmaps"))
                        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "1"}})),
                    Op::Get => http.get(format!("{base}/bench/configmaps/c{client}-{}", i % 50)),
                    Op::List => http.get(format!("{base}/bench-list/configmaps")),
                    Op::Update => http.put(format!("{base}/bench/configmaps/c{client}-{}", i % 50)).json(
                        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{client}-{}", i % 50)}, "data": {"v": i.to_string()}}),
                    ),
                };
                let sent = Instant::now();
                match request.header("Authorization", auth.as_str()).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let mut phase = Phase {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (latencies, errors) = task.await.unwrap();
        phase.latencies.extend(latencies);
        phase.errors += errors;
    }
    phase.elapsed = started.elapsed();
    phase.latencies.sort();
    phase
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

async fn prepare(server: &Server, http: &reqwest::Client) {
    let auth = format!("Bearer {}", server.token);
    for ns in ["bench", "bench-list"] {
        http.post(format!("{}/api/v1/namespaces", server.api))
            .header("Authorization", &auth)
            .json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .send()
            .await
            .unwrap();
    }
    for i in 0..LIST_SIZE {
        http.post(format!("{}/api/v1/namespaces/bench-list/configmaps", server.api))
            .header("Authorization", &auth)
            .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("item-{i}")}, "data": {"v": "x".repeat(200)}}))
            .send()
            .await
            .unwrap();
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let seconds: u64 = std::env::var("GLASSHOUSE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut backends: Vec<(&str, Vec<String>)> = vec![("redb", vec![])];
    if let Ok(etcd) = std::env::var("GLASSHOUSE_TEST_ETCD") {
        backends.push(("etcd", vec!["--store".into(), format!("etcd://{etcd}")]));
    }
    println!("| backend | operation | requests | errors | achieved req/s | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut memory = Vec::new();
    for (backend, extra) in backends {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let server = start(&extra);
        tokio::time::sleep(Duration::from_secs(3)).await;
        memory.push((
            format!("glasshouse up ({backend} store), idle"),
            rss_kib(server.child.id()),
        ));
        let http = server.http(CLIENTS);
        prepare(&server, &http).await;
        for op in [Op::Create, Op::Get, Op::List, Op::Update] {
            let phase = run_phase(&server, &http, op, seconds).await;
            let n = phase.latencies.len();
            println!(
                "| {backend} | {} | {n} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
                op.name(),
                phase.errors,
                n as f64 / phase.elapsed.as_secs_f64(),
                percentile(&phase.latencies, 0.50),
                percentile(&phase.latencies, 0.99),
                phase
                    .latencies
                    .last()
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
            );
        }
        memory.push((
            format!("glasshouse up ({backend} store), after the load"),
            rss_kib(server.child.id()),
        ));
    }
    if let Some(pid) = std::env::var("GLASSHOUSE_TEST_ETCD_PID")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        memory.push((
            "etcd (the peer's store alone), after the load".into(),
            rss_kib(pid),
        ));
    }
    println!();
    println!("| process | RSS MiB |");
    println!("|---|---|");
    for (what, kib) in memory {
        match kib {
            Some(kib) => println!("| {what} | {:.1} |", kib as f64 / 1024.0),
            None => println!("| {what} | n/a |"),
        }
    }
}
