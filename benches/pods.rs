//! Pod start-up at scale: one Deployment of 200 small sleeping processes on `glasshouse up` (release
//! build). Measures, from a watch of the pods: the time until all run, pods/s, and each pod's latency from
//! its creation (first seen on the watch) to Running and Ready; then, with the 200 pods asleep, the
//! platform's resident memory (the agent shares the process with the control plane, so this bounds the
//! agent's) and its CPU over 30 s, and the shims' memory. The peer, in the same run: the same 200
//! processes started straight from a shell, the floor no orchestrator goes under.
//!
//! `cargo bench --bench pods`

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

const PODS: usize = 200;
const IDLE_WINDOW: Duration = Duration::from_secs(30);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn cpu_ticks(pid: u32) -> u64 {
    cpu_ticks_of(&format!("/proc/{pid}/stat"))
}

/// CPU ticks of a process's threads named `name` (the collector's and the log tailer's threads).
fn thread_ticks(pid: u32, name: &str) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| t.file_name().to_str()?.parse::<u32>().ok())
        .map(|tid| cpu_ticks_of(&format!("/proc/{pid}/task/{tid}/stat")))
        .sum()
}

fn cpu_ticks_of(path: &str) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// A process's proportional share of the memory it maps (shared pages divided among their users): what
/// many processes of one binary really cost together.
fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

fn pids_of(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

fn peer() -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("for i in $(seq {PODS}); do sleep 1000.7 & done"))
        .status()
        .unwrap();
    assert!(status.success());
    let elapsed = started.elapsed();
    let _ = std::process::Command::new("pkill")
        .args(["-f", "sleep 1000.7"])
        .status();
    elapsed
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_in(dir.path(), &["--max-pods", "250"]);
    let http = server.http(4);
    let bearer = format!("Bearer {}", server.token);
    let pods_url = format!("{}/api/v1/namespaces/default/pods", server.api);
    // The node must be there before the clock starts.
    loop {
        let nodes = server.get_json(&http, "/api/v1/nodes").await;
        if nodes["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let watch = http
        .get(format!("{pods_url}?watch=true&labelSelector=app%3Dbench"))
        .header("Authorization", &bearer)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
        "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": "bench"}},
            "template": {"metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "sleep", "image": "busybox", "command": ["sleep", "100000"]}]}}}
    });
    let started = Instant::now();
    server
        .create(&http, "/apis/apps/v1/namespaces/default/deployments", &deployment)
        .await;
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    let mut latencies: Vec<f64> = Vec::new();
    let mut done: std::collections::HashSet<String> = Default::default();
    let mut stream = watch.bytes_stream();
    let mut buffer = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while done.len() < PODS && Instant::now() < deadline {
        let Some(Ok(chunk)) = stream.next().await else {
            break;
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let pod = &event["object"];
            let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let seen = *first_seen.entry(name.clone()).or_insert_with(Instant::now);
            let ready = pod["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            if pod["status"]["phase"] == "Running" && ready && done.insert(name) {
                latencies.push(seen.elapsed().as_secs_f64());
            }
        }
    }
    let all_running = started.elapsed();
    assert_eq!(done.len(), PODS, "all pods ran within 300 s");
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("pods: {PODS} from one Deployment");
    println!(
        "  all Running and Ready after {:.2} s ({:.1} pods/s)",
        all_running.as_secs_f64(),
        PODS as f64 / all_running.as_secs_f64()
    );
    println!(
        "  start-up latency (created → Running+Ready): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 0.5) * 1000.0,
        percentile(&latencies, 0.99) * 1000.0,
        latencies.last().unwrap() * 1000.0
    );

    // Idle: let the status writes settle, then measure.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pid = server.child.id();
    let ticks = |pid| cpu_ticks(pid);
    let shims = pids_of(&format!("glasshouse shim {}", dir.path().display()));
    let (before, shims_before): (u64, u64) = (ticks(pid), shims.iter().map(|p| ticks(*p)).sum());
    let (collector_before, tailer_before) = (thread_ticks(pid, "collector"), thread_ticks(pid, "log-tailer"));
    tokio::time::sleep(IDLE_WINDOW).await;
    let (after, shims_after): (u64, u64) = (ticks(pid), shims.iter().map(|p| ticks(*p)).sum());
    let (collector_after, tailer_after) = (thread_ticks(pid, "collector"), thread_ticks(pid, "log-tailer"));
    let hz = 100.0;
    let share = |ticks: u64| ticks as f64 / hz / IDLE_WINDOW.as_secs_f64() * 100.0;
    let cpu = (after - before) as f64 / hz / IDLE_WINDOW.as_secs_f64() * 100.0;
    let shim_cpu = (shims_after - shims_before) as f64 / hz / IDLE_WINDOW.as_secs_f64() * 100.0;
    let rss = common::rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
    let shim_rss: u64 = shims.iter().filter_map(|p| common::rss_kib(*p)).sum();
    let shim_pss: u64 = shims.iter().filter_map(|p| pss_kib(*p)).sum();
    println!(
        "  with {PODS} pods asleep: glasshouse up RSS {rss:.1} MiB, CPU {cpu:.2}% of one core over {} s \
         (of which the collector sampling {PODS} containers every second {:.2}%, the log tailer {:.2}%)",
        IDLE_WINDOW.as_secs(),
        share(collector_after - collector_before),
        share(tailer_after - tailer_before)
    );
    println!(
        "  {} shims: {:.1} MiB PSS in all ({:.0} KiB each; RSS {:.0} KiB each, mostly the shared binary), CPU {shim_cpu:.2}% of one core",
        shims.len(),
        shim_pss as f64 / 1024.0,
        shim_pss as f64 / shims.len().max(1) as f64,
        shim_rss as f64 / shims.len().max(1) as f64
    );
    let peer = peer();
    println!(
        "peer: the same {PODS} processes started from bash: {:.3} s",
        peer.as_secs_f64()
    );

    drop(server);
    common::stop_containers(dir.path());
}
