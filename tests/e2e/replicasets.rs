//! The ReplicaSet controller keeps the replicas of a template, scheduled onto the node, and says so in
//! events; the node agent finishes the deletion of pods it is asked to stop.

use std::time::Duration;

use crate::support::{Server, eventually};

const REPLICASET: &str = "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: rs-web}
  template:
    metadata:
      labels: {app: rs-web}
    spec:
      containers:
      - name: web
        image: busybox
        command: [sleep, \"3600\"]
";

#[test]
fn a_replicaset_keeps_its_replicas_and_says_so() {
    let server = Server::start_with(&["--node-name", "rs-node"]);
    server.kubectl_ok_input(&["apply", "-f", "-"], REPLICASET);
    let pods = |extra: &str| {
        server.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=rs-web",
            "-o",
            &format!("jsonpath={{range .items[*]}}{extra}{{\"\\n\"}}{{end}}"),
        ])
    };
    let bound = || pods("{.metadata.name} {.spec.nodeName} {.metadata.ownerReferences[0].kind}");
    assert!(
        eventually(Duration::from_secs(30), || {
            let lines = bound();
            lines.lines().count() == 3
                && lines
                    .lines()
                    .all(|l| l.starts_with("web-") && l.ends_with(" rs-node ReplicaSet"))
        }),
        "{}",
        bound()
    );
    let table = || server.kubectl_ok(&["get", "rs", "web"]);
    assert!(
        eventually(Duration::from_secs(20), || table()
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().take(3).eq(["web", "3", "3"]))),
        "{}",
        table()
    );

    server.kubectl_ok(&["scale", "rs", "web", "--replicas=1"]);
    // Scheduled pods are deleted gracefully; the node agent confirms, and they are gone.
    assert!(
        eventually(Duration::from_secs(30), || pods("{.metadata.name}")
            .lines()
            .count()
            == 1),
        "{}",
        bound()
    );
    let described = server.kubectl_ok(&["describe", "rs", "web"]);
    assert_eq!(described.matches("SuccessfulCreate").count(), 3, "{described}");
    assert_eq!(described.matches("SuccessfulDelete").count(), 2, "{described}");
    assert!(described.contains("Created pod: web-"), "{described}");

    // A replica deleted by hand comes back.
    let survivor = pods("{.metadata.name}").trim().to_string();
    server.kubectl_ok(&["delete", "pod", &survivor]);
    assert!(
        eventually(Duration::from_secs(30), || {
            let names = pods("{.metadata.name}");
            names.lines().count() == 1 && !names.contains(&survivor)
        }),
        "{}",
        bound()
    );
    // The controllers' own telemetry, in controller-runtime's names.
    let metrics = server.scrape();
    for expected in [
        r#"controller_runtime_reconcile_total{controller="replicaset",result="success"}"#,
        r#"controller_runtime_reconcile_time_seconds_count{controller="replicaset"}"#,
        r#"controller_runtime_reconcile_total{controller="garbagecollector",result="success"}"#,
        r#"controller_runtime_reconcile_total{controller="nodelifecycle",result="success"}"#,
    ] {
        assert!(metrics.contains(expected), "{expected}\n{metrics}");
    }
    // Deleting the set takes its pods with it.
    server.kubectl_ok(&["delete", "rs", "web"]);
    assert!(
        eventually(Duration::from_secs(30), || pods("{.metadata.name}")
            .trim()
            .is_empty()),
        "{}",
        bound()
    );
}
