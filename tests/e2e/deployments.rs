//! The Deployment controller: a ReplicaSet per template with revisions, rolling updates within the
//! surge, rollout history and undo through the real kubectl, and cascading deletion.

use std::time::Duration;

use crate::support::{Server, eventually};

#[test]
fn deployments_roll_out_replicasets_with_revisions_history_and_undo() {
    let server = Server::start_with(&["--node-name", "deploy-node"]);
    server.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
        "--",
        "sleep",
        "3600",
    ]);
    let sets = || {
        server.kubectl_ok(&[
            "get", "rs", "-l", "app=web", "-o",
            "jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision} {.spec.replicas} {.metadata.name}{\"\\n\"}{end}",
        ])
    };
    let revisions = || {
        let mut lines: Vec<String> = sets().lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert!(
        eventually(Duration::from_secs(30), || revisions()
            .first()
            .is_some_and(|l| l.starts_with("1 2 web-"))),
        "{:?}",
        revisions()
    );
    let first = revisions()[0].split_whitespace().nth(2).unwrap().to_string();
    let pods = || {
        server.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(30), || pods() == "deploy-node deploy-node"),
        "{}",
        pods()
    );
    let status = || {
        server.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.replicas} {.status.updatedReplicas} {.status.observedGeneration}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(20), || status() == "2 2 1"),
        "{}",
        status()
    );
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let conditions = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.status.conditions[*].reason}",
    ]);
    assert!(
        conditions.contains("MinimumReplicasAvailable") && conditions.contains("NewReplicaSetAvailable"),
        "{conditions}"
    );

    // A new template: a second ReplicaSet, revision 2, that replaces the first.
    server.kubectl_ok(&["set", "env", "deployment/web", "COLOR=blue"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(
        eventually(Duration::from_secs(30), || revisions().len() == 2
            && revisions()[0].starts_with("1 0 ")
            && revisions()[1].starts_with("2 2 web-")),
        "{:?}",
        revisions()
    );
    let history = server.kubectl_ok(&["rollout", "history", "deployment/web"]);
    let listed: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(listed, ["1", "2"], "{history}");
    let described = server.kubectl_ok(&["describe", "deployment", "web"]);
    assert!(
        described.contains(&format!("Scaled up replica set {first} to 2 from 0")),
        "{described}"
    );
    assert!(described.contains("ScalingReplicaSet"), "{described}");

    // Undo: the first template comes back as revision 3.
    server.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    let first_revision = || {
        server.kubectl_ok(&[
            "get",
            "rs",
            &first,
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(30), || first_revision() == "3"),
        "{}",
        first_revision()
    );
    let annotation = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    ]);
    assert!(
        eventually(Duration::from_secs(10), || server.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ]) == "3"),
        "{annotation}"
    );
    let env = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env}",
    ]);
    assert!(!env.contains("COLOR"), "{env}");

    // Deleting the deployment takes its ReplicaSets and pods with it.
    server.kubectl_ok(&["delete", "deployment", "web"]);
    assert!(
        eventually(Duration::from_secs(30), || sets().trim().is_empty()
            && pods().is_empty()),
        "{:?} {}",
        revisions(),
        pods()
    );
}
