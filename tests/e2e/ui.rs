//! The log search page in headless Chromium (Debian's `chromium`, driven by `playwright-core` from npm;
//! `scripts/test.sh` installs both): search, filter by clicking a field value, zoom the histogram, live
//! tail. Screenshots are kept in `target/ui-screenshots/`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{Server, eventually};

#[test]
fn the_search_page_searches_filters_zooms_and_tails_in_chromium() {
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
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let run = Command::new("node")
        .arg(ui.join("search.mjs"))
        .arg(format!("{}/ui/", server.api))
        .arg(&server.token)
        .arg(&out)
        .env("KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("node runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    for step in ["opened", "searched", "filtered", "zoomed", "tailed"] {
        assert!(said.contains(&format!("ok {step}")), "{step}: {said}");
    }
    assert!(out.join("5-tail.png").exists());
}
