//! The shipped `dashboards/prometheus.yml` passes `promtool check config`, and a real Prometheus (Debian's
//! package) running it against `glasshouse up` scrapes every endpoint: each job is up, with samples.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{KillOnDrop, Server, eventually, free_port};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/prometheus.yml");
const JOBS: [&str; 5] = [
    "glasshouse",
    "glasshouse-probes",
    "glasshouse-resource",
    "glasshouse-cadvisor",
    "glasshouse-state",
];

fn query(port: u16, expr: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args([
            "-fsS",
            "--get",
            "--data-urlencode",
            &format!("query={expr}"),
            &format!("http://127.0.0.1:{port}/api/v1/query"),
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The value of `expr`'s series whose `job` label is `job`.
fn value(port: u16, expr: &str, job: &str) -> Option<f64> {
    query(port, expr)["data"]["result"]
        .as_array()?
        .iter()
        .find(|r| r["metric"]["job"] == job)?["value"][1]
        .as_str()?
        .parse()
        .ok()
}

#[test]
fn the_shipped_prometheus_config_scrapes_every_endpoint() {
    let check = Command::new("promtool")
        .args(["check", "config", CONFIG])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    let server = Server::start();
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: probed}\nspec:\n  containers:\n  - name: sleep\n    image: busybox\n    command: [sleep, '3600']\n    readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}\n",
    );
    // The shipped configuration, pointed at this server and scraping every second.
    let address = server
        .metrics
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let config = std::fs::read_to_string(CONFIG)
        .unwrap()
        .replace("127.0.0.1:9102", &address)
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (the test command installs Debian's prometheus)"),
    );
    let all_up = || {
        JOBS.iter().all(|job| {
            value(port, "up", job) == Some(1.0)
                && value(port, "scrape_samples_scraped", job).is_some_and(|n| n > 0.0)
        })
    };
    assert!(
        eventually(Duration::from_secs(60), all_up),
        "{}",
        query(port, "up")
    );
    for job in JOBS {
        let seconds = value(port, "scrape_duration_seconds", job).unwrap();
        let samples = value(port, "scrape_samples_scraped", job).unwrap();
        println!("{job}: {samples} samples scraped in {:.1} ms", seconds * 1000.0);
        assert!(seconds < 1.0, "{job}: {seconds} s");
    }
    // Series from each job reached the TSDB under their standard names.
    for expr in [
        "apiserver_request_total",
        "prober_probe_total",
        "container_cpu_usage_seconds_total{job=\"glasshouse-resource\"}",
        "container_memory_working_set_bytes{job=\"glasshouse-cadvisor\",pod=\"probed\"}",
        "kube_pod_info{pod=\"probed\"}",
    ] {
        assert!(
            eventually(Duration::from_secs(30), || query(port, expr)["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())),
            "{expr}: {}",
            query(port, expr)
        );
    }
}
