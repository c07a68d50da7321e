//! The shipped `dashboards/prometheus.yml` and `rules.yml` pass `promtool check config`, `check rules` and
//! `test rules`, and a real Prometheus (Debian's package) running them against `glasshouse up` scrapes
//! every endpoint (each job up, with samples) and gets series from every rule's expression and every
//! dashboard panel's query, with a workload that gives each alert its cause. The dashboards are checked
//! for what Grafana needs of them: unique uids and panel ids, a `${datasource}` variable, units.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{KillOnDrop, Server, eventually, free_port};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/prometheus.yml");
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/rules.yml");
const RULE_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/rules_test.yml");
const DASHBOARDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/grafana");
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

/// Every dashboard's panel queries and variable queries (`label_values(selector, label)` as its selector),
/// with the variables at "all" and `$__rate_interval` at a minute; and the checks Grafana needs.
fn dashboard_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut uids = std::collections::HashSet::new();
    let mut files: Vec<_> = std::fs::read_dir(DASHBOARDS)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let substitute = |expr: &str| {
        expr.replace("$__rate_interval", "1m")
            .replace("$namespace", ".*")
            .replace("$pod", ".*")
            .replace("$node", ".*")
            .replace("$hpa", ".*")
    };
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let uid = dashboard["uid"].as_str().unwrap_or_default().to_string();
        assert!(uid.starts_with("glasshouse-") && uids.insert(uid), "{name}: uid");
        assert!(
            dashboard["schemaVersion"].as_i64() >= Some(39),
            "{name}: schemaVersion"
        );
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables
                .iter()
                .any(|v| v["type"] == "datasource" && v["name"] == "datasource"),
            "{name}: no datasource variable"
        );
        for v in variables.iter().filter(|v| v["type"] == "query") {
            assert_eq!(
                v["datasource"]["uid"], "${datasource}",
                "{name}: variable {}",
                v["name"]
            );
            let query = v["query"]["query"].as_str().unwrap();
            let selector = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(selector, _)| selector.to_string())
                .unwrap();
            out.push((format!("{name} variable {}", v["name"]), substitute(&selector)));
        }
        let mut ids = std::collections::HashSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(
                ids.insert(panel["id"].as_i64().unwrap()),
                "{name}: panel id of {title}"
            );
            assert!(
                panel["fieldConfig"]["defaults"]["unit"].is_string(),
                "{name}: unit of {title}"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}: datasource of {title}"
            );
            for target in panel["targets"].as_array().unwrap() {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{name}: {title}");
                let expr = target["expr"].as_str().unwrap();
                out.push((format!("{name}: {title} ({})", target["refId"]), substitute(expr)));
            }
        }
    }
    out
}

#[test]
fn every_rule_and_panel_returns_series_on_a_live_platform() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // A sink nobody listens on, and an external metric nobody serves (5xx answers).
    std::fs::write(
        &config,
        "apiVersion: glasshouse/v1alpha1\nevents:\n  sinks:\n    down: {webhook: {url: 'http://127.0.0.1:1/hook', timeoutSeconds: 1}}\n    counts: {prometheus: {}}\n  routes:\n    - sinks: [down, counts]\nmetrics:\n  external:\n  - name: unreachable\n    timeoutSeconds: 1\n    http: {url: 'http://127.0.0.1:1/value'}\n",
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
    livenessProbe: {exec: {command: ["true"]}, periodSeconds: 1}
    resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {cpu: 500m, memory: 64Mi}}
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
    // Below its minimum: the HPA rescales once, then holds it at its maximum.
    server.kubectl_ok(&[
        "autoscale",
        "deployment",
        "web",
        "--cpu-percent=50",
        "--min=2",
        "--max=2",
    ]);
    let (_prometheus, port, _dir) = prometheus_for(&server);
    let unreachable = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/unreachable";
    let mut missing = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    for (name, expr) in rule_expressions().into_iter().chain(dashboard_expressions()) {
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
        "expressions without series: {missing:?}\n{}\n{}",
        server.kubectl_ok(&["get", "pods,nodes", "-o", "wide"]),
        query(port, "up")
    );
}

#[test]
fn the_dashboards_type_check_against_grafanas_schema() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dashboards");
    let out = Command::new("node")
        .arg(format!("{dir}/check.mjs"))
        .output()
        .expect("node runs (the test command installs it)");
    assert!(
        out.status.success(),
        "{}{}\n(the test command runs `npm install` in tests/dashboards)",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
