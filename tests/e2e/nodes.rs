//! The node agent registers this machine as a Node and keeps its lease; the node lifecycle controller
//! marks a node that stops renewing as unreachable.

use std::time::Duration;

use crate::support::{Server, eventually};

#[test]
fn the_machine_registers_as_a_ready_node_with_its_lease() {
    let server = Server::start_with(&["--node-name", "e2e-node"]);
    let ready = || server.kubectl_ok(&["get", "nodes"]);
    assert!(
        eventually(Duration::from_secs(20), || ready()
            .lines()
            .any(|l| l.starts_with("e2e-node") && l.contains(" Ready"))),
        "{}",
        ready()
    );
    let wide = server.kubectl_ok(&["get", "node", "e2e-node", "-o", "wide"]);
    assert!(
        wide.contains("127.0.0.1") && wide.contains("v1.32.0") && wide.contains("glasshouse://"),
        "{wide}"
    );
    let capacity = server.kubectl_ok(&[
        "get",
        "node",
        "e2e-node",
        "-o",
        "jsonpath={.status.capacity.pods} {.status.capacity.cpu}",
    ]);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(capacity, format!("110 {cpus}"));
    let labels = server.kubectl_ok(&["get", "node", "e2e-node", "--show-labels"]);
    assert!(
        labels.contains("kubernetes.io/hostname=e2e-node") && labels.contains("kubernetes.io/os=linux"),
        "{labels}"
    );

    let lease = || {
        server.kubectl_ok(&[
            "get", "lease", "e2e-node", "-n", "kube-node-lease", "-o",
            "jsonpath={.spec.holderIdentity} {.spec.leaseDurationSeconds} {.metadata.ownerReferences[0].kind}",
        ])
    };
    assert!(eventually(Duration::from_secs(20), || server
        .kubectl(&["get", "lease", "e2e-node", "-n", "kube-node-lease"])
        .status
        .success()));
    assert_eq!(lease(), "e2e-node 40 Node");

    let described = || server.kubectl_ok(&["describe", "node", "e2e-node"]);
    assert!(
        eventually(Duration::from_secs(20), || described().contains("RegisteredNode")),
        "{}",
        described()
    );
    let text = described();
    for expected in [
        "KubeletReady",
        "kubelet is posting ready status",
        "Starting kubelet.",
        "Node e2e-node status is now: NodeReady",
        "Registered Node e2e-node in Controller",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
}

#[test]
fn a_node_that_stops_renewing_its_lease_is_marked_unreachable_and_tainted() {
    // The agent renews every 10 s, so a grace period of 15 s keeps this machine's node Ready.
    let server = Server::start_with(&["--node-name", "alive", "--node-monitor-grace-period", "15s"]);
    // A node whose kubelet never reports.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: ghost\n",
    );
    let taints = || server.kubectl_ok(&["get", "node", "ghost", "-o", "jsonpath={.spec.taints[*].key}"]);
    assert!(
        eventually(Duration::from_secs(40), || taints()
            .contains("node.kubernetes.io/unreachable")),
        "{}",
        taints()
    );
    let effects = server.kubectl_ok(&["get", "node", "ghost", "-o", "jsonpath={.spec.taints[*].effect}"]);
    assert_eq!(effects, "NoSchedule NoExecute");
    let nodes = server.kubectl_ok(&["get", "nodes"]);
    let row = |name: &str| {
        nodes
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("ghost").contains("NotReady"), "{nodes}");
    assert!(row("alive").contains(" Ready"), "{nodes}");
    let reason = server.kubectl_ok(&[
        "get",
        "node",
        "ghost",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
    ]);
    assert_eq!(reason, "NodeStatusUnknown");
    let events = server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=ghost"]);
    assert!(
        events.contains("Node ghost status is now: NodeNotReady"),
        "{events}"
    );
}
