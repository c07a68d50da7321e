//! Every Prometheus endpoint of `glasshouse up` passes `promtool check metrics` (Debian's prometheus
//! package, installed by the test command) in the text format, and the registries' endpoints answer
//! OpenMetrics when the scraper asks for it.

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
        "apiVersion: v1\nkind: Pod\nmetadata: {name: probed}\nspec:\n  containers:\n  - name: sleep\n    image: busybox\n    command: [sleep, '3600']\n    readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}\n",
    );
    let base = server.metrics.clone();
    assert!(eventually(Duration::from_secs(30), || {
        fetch(&format!("{base}/probes"), None)
            .1
            .contains("prober_probe_total{")
            && fetch(&format!("{base}/resource"), None)
                .1
                .contains("pod=\"probed\"")
    }));
    for path in ["", "/probes", "/resource", "/cadvisor"] {
        let url = format!("{base}{path}");
        let (content_type, body) = fetch(&url, None);
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{url}: {content_type}"
        );
        assert_eq!(promtool(&body), "", "{url}");
    }
    for path in ["", "/probes"] {
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
