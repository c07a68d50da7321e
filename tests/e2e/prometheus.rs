//! The shipped `dashboards/prometheus.yml` and `rules.yml` pass `promtool check config`, `check rules` and
//! `test rules`, and a real Prometheus (Debian's package) running them against `glasshouse up` scrapes
//! every endpoint (each job up, with samples) and gets series from every rule's expression, with a
//! workload that gives each alert its cause.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{KillOnDrop, Server, eventually, free_port};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/prometheus.yml");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/rules.yml");
const RULE_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/rules_test.yml");
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

/// A Prometheus running the shipped configuration and rules, pointed at `server`, scraping every second.
fn prometheus_for(server: &Server) -> (KillOnDrop, u16, tempfile::TempDir) {
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
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    std::fs::copy(RULES, dir.path().join("rules.yml")).unwrap();
    let port = free_port();
    let prometheus = KillOnDrop(
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
    (prometheus, port, dir)
}

#[test]
fn the_shipped_prometheus_config_scrapes_every_endpoint() {
    for args in [
        ["check", "config", CONFIG],
        ["check", "rules", RULES],
        ["test", "rules", RULE_TESTS],
    ] {
        let check = Command::new("promtool").args(args).output().unwrap();
        assert!(check.status.success(), "{args:?}: {check:?}");
    }

    let server = Server::start();
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: probed}\nspec:\n  containers:\n  - name: sleep\n    image: busybox\n    command: [sleep, '3600']\n    readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}\n",
    );
    let (_prometheus, port, _dir) = prometheus_for(&server);
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

/// Every `expr:` of the rules file (block scalars included).
fn rule_expressions() -> Vec<(String, String)> {
    let rules: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(RULES).unwrap()).unwrap();
    rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .map(|r| {
            let name = r["alert"].as_str().or(r["record"].as_str()).unwrap().to_string();
            (name, r["expr"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn every_rule_expression_returns_series_on_a_live_platform() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // A sink nobody listens on, and an external metric nobody serves (5xx answers).
    std::fs::write(
        &config,
        "apiVersion: glasshouse/v1alpha1\nevents:\n  sinks:\n    down: {webhook: {url: 'http://127.0.0.1:1/hook', timeoutSeconds: 1}}\n  routes:\n    - sinks: [down]\nmetrics:\n  external:\n  - name: unreachable\n    timeoutSeconds: 1\n    http: {url: 'http://127.0.0.1:1/value'}\n",
    )
    .unwrap();
    let server = Server::start_with(&[
        "--config",
        config.to_str().unwrap(),
        "--node-monitor-grace-period",
        "15s",
    ]);
    // A crash-looping container, a failing probe, over-long log lines, an HPA held at its maximum, and a
    // node that never reports.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers: [{name: c, image: busybox, command: [sh, -c, "exit 1"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: unready}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    readinessProbe: {exec: {command: ["false"]}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: longlines}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "while true; do head -c 1200000 /dev/zero | tr '\\0' x; echo; sleep 2; done"]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox, command: [sleep, "3600"], resources: {requests: {cpu: 100m}}}]
---
apiVersion: v1
kind: Node
metadata: {name: ghost}
spec: {unschedulable: true}
status:
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, message: ok, lastHeartbeatTime: "2026-01-01T00:00:00Z", lastTransitionTime: "2026-01-01T00:00:00Z"}
"#,
    );
    server.kubectl_ok(&[
        "autoscale",
        "deployment",
        "web",
        "--cpu-percent=50",
        "--min=1",
        "--max=1",
    ]);
    let (_prometheus, port, _dir) = prometheus_for(&server);
    let unreachable = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/unreachable";
    let mut missing = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    for (name, expr) in rule_expressions() {
        let returns_series = || {
            // Keep the server errors coming while the API error rule is looked at.
            let _ = server.kubectl(&["get", "--raw", unreachable]);
            let answer = query(port, &expr);
            assert_eq!(answer["status"], "success", "{name}: {answer}");
            answer["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if !eventually(left.max(Duration::from_secs(5)), returns_series) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "rules without series: {missing:?}\n{}\n{}",
        server.kubectl_ok(&["get", "pods,nodes", "-o", "wide"]),
        query(port, "up")
    );
}
