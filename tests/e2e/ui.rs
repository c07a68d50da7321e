//! The web UI in headless Chromium (Debian's `chromium`, driven by `playwright-core` from npm;
//! `scripts/test.sh` installs both): on the log search page, search, filter by clicking a field value,
//! zoom the histogram, live tail; on the probe history page, a failing liveness probe and the restart
//! it caused. Screenshots are kept in `target/ui-screenshots/`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{Server, eventually};

/// Runs the page script `script` of `tests/ui` against the server's UI with `args` after the URL, the
/// token and the screenshot directory; asserts it passed every step of `steps`.
fn drive(server: &Server, script: &str, args: &[&str], steps: &[&str]) {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    if !ui.join("node_modules/playwright-core").exists() {
        let installed = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&ui)
            .status()
            .expect("npm runs");
        assert!(installed.success(), "npm install of playwright-core failed");
    }
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the UI test needs Debian's chromium (scripts/test.sh installs it)"
    );
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let run = Command::new("node")
        .arg(ui.join(script))
        .arg(format!("{}/ui/", server.api))
        .arg(&server.token)
        .arg(&out)
        .args(args)
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("node runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    for step in steps {
        assert!(said.contains(&format!("ok {step}")), "{step}: {said}");
    }
}

#[test]
fn the_search_page_searches_filters_zooms_and_tails_in_chromium() {
    let server = Server::start();
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo \"INFO line $i ok\"; echo \"ERROR line $i failed\"; sleep 0.05; done; sleep 3600']
",
    );
    let indexed = || {
        let out = Command::new("curl")
            .args(["-fsS", "--cacert"])
            .arg(server.data_dir.join("pki/ca.crt"))
            .args(["-H", &format!("Authorization: {}", server.bearer())])
            .arg(format!("{}/logs/v1/search?query=pod:writer&limit=1", server.api))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"total\":120")
    };
    assert!(
        eventually(Duration::from_secs(30), indexed),
        "the writer's lines are indexed"
    );
    drive(
        &server,
        "search.mjs",
        &[],
        &["opened", "searched", "filtered", "zoomed", "tailed"],
    );
}

#[test]
fn the_probes_page_shows_a_failing_probe_and_the_restart_it_caused() {
    let server = Server::start();
    // Healthy for 4 s, then 500: liveness fails twice and the container restarts.
    let server_code = "import http.server, os, time\nstart = time.time()\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200 if time.time() - start < 4 else 500)\n        self.end_headers()\n    def log_message(self, *args):\n        pass\nhttp.server.HTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()\n";
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: flaky}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: python
    command: [python3, -c, {server_code:?}]
    ports: [{{name: http, containerPort: 8080}}]
    livenessProbe:
      httpGet: {{path: /healthz, port: http}}
      periodSeconds: 1
      failureThreshold: 2
---
apiVersion: v1
kind: Pod
metadata: {{name: plain}}
spec:
  containers:
  - {{name: c, image: busybox, command: [sleep, '3600']}}
"
        ),
    );
    drive(
        &server,
        "probes.mjs",
        &["default/flaky"],
        &["listed", "picked", "restarted", "reloaded"],
    );
}
