//! Every Prometheus endpoint of `glasshouse up` passes `promtool check metrics` (Debian's prometheus
//! package, installed by the test command) in the text format, and the registries' endpoints answer
//! OpenMetrics when the scraper asks for it; `/metrics/state` shows objects in kube-state-metrics' names.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Server, eventually};

fn fetch(url: &str, accept: Option<&str>) -> (String, String) {
    let mut args = vec!["-fsS".to_string(), "-D".into(), "-".into(), url.to_string()];
    if let Some(accept) = accept {
        args.extend(["-H".into(), format!("Accept: {accept}")]);
    }
    let out = Command::new("curl").args(&args).output().unwrap();
    assert!(out.status.success(), "{url}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (content_type, body.to_string())
}

fn promtool(body: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (the test command installs Debian's prometheus)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}{}",
        if out.status.success() { "" } else { "failed: " },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_endpoint_is_lint_clean_and_speaks_openmetrics_when_asked() {
    let server = Server::start();
    // A pod with a probe, so that every endpoint has series of its own.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: probed}\nspec:\n  containers:\n  - name: sleep\n    image: busybox\n    command: [sleep, '3600']\n    resources: {requests: {cpu: 250m, memory: 64Mi}}\n    readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}\n",
    );
    // Objects for the state metrics: a Deployment under an HPA, and a Service with endpoints.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: sleep, image: busybox, command: [sleep, '3600'], resources: {requests: {cpu: 100m}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    );
    server.kubectl_ok(&[
        "autoscale",
        "deployment",
        "web",
        "--cpu-percent=70",
        "--min=2",
        "--max=5",
    ]);
    let base = server.metrics.clone();
    assert!(eventually(Duration::from_secs(30), || {
        fetch(&format!("{base}/probes"), None)
            .1
            .contains("prober_probe_total{")
            && fetch(&format!("{base}/resource"), None)
                .1
                .contains("pod=\"probed\"")
            && fetch(&format!("{base}/state"), None)
                .1
                .contains("kube_endpoint_address{namespace=\"default\",endpoint=\"web\"")
    }));
    // State in kube-state-metrics' names.
    let state = fetch(&format!("{base}/state"), None).1;
    let value = |series: &str| {
        state
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    for (series, expected) in [
        (
            "kube_deployment_spec_replicas{namespace=\"default\",deployment=\"web\"}",
            "2",
        ),
        (
            "kube_horizontalpodautoscaler_spec_max_replicas{namespace=\"default\",horizontalpodautoscaler=\"web\"}",
            "5",
        ),
        (
            "kube_horizontalpodautoscaler_spec_target_metric{namespace=\"default\",horizontalpodautoscaler=\"web\",metric_name=\"cpu\",metric_target_type=\"utilization\"}",
            "70",
        ),
    ] {
        assert_eq!(value(series).as_deref(), Some(expected), "{series}\n{state}");
    }
    for needle in [
        "kube_pod_info{namespace=\"default\",pod=\"probed\"",
        "kube_node_info{node=",
        "kube_node_status_condition{node=",
        "kube_service_info{namespace=\"default\",service=\"web\"",
        "# TYPE kube_pod_container_status_restarts_total counter",
    ] {
        assert!(state.contains(needle), "{needle}\n{state}");
    }
    assert!(
        state.lines().any(|l| l
            .starts_with("kube_pod_container_resource_requests{namespace=\"default\",pod=\"probed\"")
            && l.contains("resource=\"cpu\",unit=\"core\"} 0.25")),
        "{state}"
    );
    assert!(
        state.lines().any(
            |l| l.starts_with("kube_pod_status_phase{namespace=\"default\",pod=\"probed\"")
                && l.contains("phase=\"Running\"} 1")
        ),
        "{state}"
    );
    for path in ["", "/probes", "/resource", "/cadvisor", "/state"] {
        let url = format!("{base}{path}");
        let (content_type, body) = fetch(&url, None);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{url}: {content_type}"
        );
        assert_eq!(promtool(&body), "", "{url}");
    }
    for path in ["", "/probes", "/resource", "/cadvisor", "/state"] {
        let url = format!("{base}{path}");
        let (content_type, body) = fetch(
            &url,
            Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
        );
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{url}: {content_type}"
        );
        assert!(body.ends_with("# EOF\n"), "{url}");
        assert!(!body.contains("..\n"), "{url}: a HELP text ends with two dots");
    }
}
