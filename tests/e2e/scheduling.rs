//! The scheduler binds pending pods to this machine's node, says why when it cannot, and tries again
//! when the cluster changes.

use std::time::Duration;

use serde_json::json;

use crate::support::{Server, eventually};

fn pod(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{extra}  containers:\n  - name: app\n    image: busybox\n    command: [sleep, \"3600\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_pods_are_bound_to_a_node_that_fits_or_told_why_not() {
    let server = Server::start_with(&["--node-name", "sched-node"]);
    let node_ready = || server.kubectl_ok(&["get", "nodes"]).contains(" Ready");
    assert!(eventually(Duration::from_secs(20), node_ready));

    server.kubectl_ok_input(&["apply", "-f", "-"], &pod("fits", ""));
    let node_of = |name: &str| server.kubectl_ok(&["get", "pod", name, "-o", "jsonpath={.spec.nodeName}"]);
    assert!(
        eventually(Duration::from_secs(20), || node_of("fits") == "sched-node"),
        "{}",
        node_of("fits")
    );
    let wide = server.kubectl_ok(&["get", "pod", "fits", "-o", "wide"]);
    assert!(wide.contains("sched-node"), "{wide}");
    let scheduled = server.kubectl_ok(&[
        "get",
        "pod",
        "fits",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}",
    ]);
    assert_eq!(scheduled, "True");
    let described = || server.kubectl_ok(&["describe", "pod", "fits"]);
    assert!(
        eventually(Duration::from_secs(20), || described()
            .contains("Successfully assigned default/fits to sched-node")),
        "{}",
        described()
    );

    // Too big for the machine, and a selector no node matches (yet).
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: huge\nspec:\n  containers:\n  - name: app\n    image: busybox\n    command: [sleep, \"3600\"]\n    resources:\n      requests: {cpu: \"1000\"}\n",
    );
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &pod("picky", "  nodeSelector: {disk: ssd}\n"),
    );
    let describe = |name: &str| server.kubectl_ok(&["describe", "pod", name]);
    assert!(
        eventually(Duration::from_secs(20), || describe("huge")
            .contains("0/1 nodes are available: 1 Insufficient cpu.")),
        "{}",
        describe("huge")
    );
    assert!(
        eventually(Duration::from_secs(20), || describe("picky").contains(
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        )),
        "{}",
        describe("picky")
    );
    let reason = server.kubectl_ok(&[
        "get",
        "pod",
        "huge",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}",
    ]);
    assert_eq!(reason, "Unschedulable");
    assert_eq!(node_of("huge"), "");
    // The node changes so that the picky pod fits: it is scheduled without waiting out its backoff.
    server.kubectl_ok(&["label", "node", "sched-node", "disk=ssd"]);
    assert!(
        eventually(Duration::from_secs(10), || node_of("picky") == "sched-node"),
        "{}",
        describe("picky")
    );
    assert_eq!(node_of("huge"), "");

    let metrics = server.scrape();
    for expected in [
        r#"scheduler_schedule_attempts_total{result="scheduled",profile="default-scheduler"}"#,
        r#"scheduler_schedule_attempts_total{result="unschedulable",profile="default-scheduler"}"#,
        r#"scheduler_scheduling_attempt_duration_seconds_count{result="scheduled",profile="default-scheduler"}"#,
    ] {
        assert!(metrics.contains(expected), "{expected}\n{metrics}");
    }

    // A pod is bound once: a second binding is a conflict with upstream's text.
    let response = server
        .http()
        .post(format!("{}/api/v1/namespaces/default/pods/fits/binding", server.api))
        .header("Authorization", server.bearer())
        .json(&json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "fits"}, "target": {"kind": "Node", "name": "other"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        status["message"],
        "Operation cannot be fulfilled on pods/binding \"fits\": pod fits is already assigned to node \"sched-node\""
    );
}
