//! The real kubectl against a server started by the test.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::support::{DEPLOYMENT, Server, eventually};

fn write_manifest(server: &Server, name: &str, text: &str) -> String {
    let path = server.data_dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn version_api_resources_and_namespaces() {
    let server = Server::start();
    let version = server.kubectl_ok(&["version"]);
    assert!(
        version.contains("Server Version: v1.32.0+glasshouse"),
        "{version}"
    );
    let resources = server.kubectl_ok(&["api-resources"]);
    for line in [
        "deployments",
        "deploy",
        "horizontalpodautoscalers",
        "hpa",
        "coordination.k8s.io/v1",
        "events.k8s.io/v1",
    ] {
        assert!(
            resources.contains(line),
            "api-resources lacks {line}:\n{resources}"
        );
    }
    let namespaces = server.kubectl_ok(&["get", "ns"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(namespaces.contains(ns), "{namespaces}");
    }
}

#[test]
fn apply_get_label_patch_scale_and_errors() {
    let server = Server::start();
    let manifest = write_manifest(&server, "deploy.yaml", DEPLOYMENT);

    // Client-side apply: create, unchanged, configured.
    assert!(
        server
            .kubectl_ok(&["apply", "-f", &manifest])
            .contains("deployment.apps/web created")
    );
    assert!(
        server
            .kubectl_ok(&["apply", "-f", &manifest])
            .contains("deployment.apps/web unchanged")
    );
    let scaled_manifest = write_manifest(
        &server,
        "deploy3.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicas: 3"),
    );
    assert!(
        server
            .kubectl_ok(&["apply", "-f", &scaled_manifest])
            .contains("configured")
    );
    assert_eq!(
        server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );

    // Server-side apply creates when absent and updates when present.
    let ssa = write_manifest(
        &server,
        "ssa.yaml",
        &DEPLOYMENT.replace("name: web\n  labels", "name: web-ssa\n  labels"),
    );
    assert!(
        server
            .kubectl_ok(&["apply", "--server-side", "-f", &ssa])
            .contains("serverside-applied")
    );
    assert!(
        server
            .kubectl_ok(&["apply", "--server-side", "-f", &ssa])
            .contains("serverside-applied")
    );

    // Printing.
    let table = server.kubectl_ok(&["get", "deploy"]);
    assert!(
        table.starts_with("NAME") && table.contains("READY") && table.contains("UP-TO-DATE"),
        "{table}"
    );
    assert!(
        !table.contains("CONTAINERS"),
        "wide columns only with -o wide: {table}"
    );
    let wide = server.kubectl_ok(&["get", "deploy", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("nginx:1.25") && wide.contains("app=web"),
        "{wide}"
    );
    let yaml = server.kubectl_ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("maxSurge: 25%") && yaml.contains("revisionHistoryLimit: 10"),
        "defaults: {yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&server.kubectl_ok(&["get", "deploy", "web", "-o", "json"])).unwrap();
    assert_eq!(json["metadata"]["generation"], 2);
    let all = server.kubectl_ok(&["get", "deploy", "-A"]);
    assert!(all.contains("NAMESPACE") && all.contains("default"), "{all}");

    // Labels, annotations, selectors.
    server.kubectl_ok(&["label", "deploy", "web", "tier=front"]);
    server.kubectl_ok(&["annotate", "deploy", "web", "note=hello"]);
    assert!(
        server
            .kubectl_ok(&["get", "deploy", "web", "--show-labels"])
            .contains("app=web,tier=front")
    );
    assert!(
        server
            .kubectl_ok(&["get", "deploy", "-l", "tier=front"])
            .contains("web")
    );
    assert!(
        !server
            .kubectl_ok(&["get", "deploy", "-l", "tier in (back)", "-o", "name"])
            .contains("web")
    );
    assert!(
        server
            .kubectl_ok(&["get", "deploy", "-l", "tier notin (back),app", "-o", "name"])
            .contains("deployment.apps/web")
    );
    let by_name = server.kubectl_ok(&[
        "get",
        "deploy",
        "--field-selector",
        "metadata.name=web-ssa",
        "-o",
        "name",
    ]);
    assert_eq!(by_name.trim(), "deployment.apps/web-ssa");
    assert_eq!(
        server.kubectl_ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hello"
    );

    // The three patch types, and scale.
    server.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ]);
    server.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/minReadySeconds","value":5}]"#,
    ]);
    server.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}"#,
    ]);
    let patched = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.replicas} {.spec.minReadySeconds} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].command[0]}",
    ]);
    assert_eq!(
        patched, "4 5 nginx:1.26 sleep",
        "strategic merge keeps the container's other fields"
    );
    assert!(
        server
            .kubectl_ok(&["scale", "deploy", "web", "--replicas=6"])
            .contains("deployment.apps/web scaled")
    );
    assert_eq!(
        server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "6"
    );

    // Upstream's error texts.
    let missing = server.kubectl_err(&["get", "deploy", "nope"], None);
    assert!(
        missing.contains(r#"Error from server (NotFound): deployments.apps "nope" not found"#),
        "{missing}"
    );
    let duplicate = server.kubectl_err(&["create", "-f", &manifest], None);
    assert!(
        duplicate.contains(r#"Error from server (AlreadyExists): error when creating"#)
            && duplicate.contains(r#"deployments.apps "web" already exists"#),
        "{duplicate}"
    );
    let invalid = server.kubectl_err(
        &["create", "-f", "-"],
        Some(&DEPLOYMENT.replace("name: web\n  labels", "name: Web\n  labels")),
    );
    assert!(
        invalid.contains(r#"The Deployment "Web" is invalid"#)
            && invalid.contains(r#"metadata.name: Invalid value: "Web""#),
        "{invalid}"
    );
    let unknown_field = server.kubectl_err(
        &["apply", "-f", "-"],
        Some(&DEPLOYMENT.replace("replicas: 2", "replicaz: 2")),
    );
    assert!(
        unknown_field.contains(r#"strict decoding error: unknown field "spec.replicaz""#),
        "{unknown_field}"
    );
    let bad_selector = server.kubectl_err(&["get", "pods", "--field-selector", "spec.bogus=1"], None);
    assert!(
        bad_selector.contains("field label not supported: spec.bogus"),
        "{bad_selector}"
    );
}

#[test]
fn typed_commands_send_protobuf_and_it_is_understood() {
    let server = Server::start();
    assert!(
        server
            .kubectl_ok(&["create", "deployment", "web", "--image=nginx", "--replicas=2"])
            .contains("created")
    );
    assert_eq!(
        server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "2"
    );
    assert!(
        server
            .kubectl_ok(&[
                "autoscale",
                "deployment",
                "web",
                "--min=2",
                "--max=5",
                "--cpu-percent=80"
            ])
            .contains("autoscaled")
    );
    let hpa = server.kubectl_ok(&["get", "hpa"]);
    assert!(
        hpa.contains("Deployment/web") && hpa.contains("cpu: <unknown>/80%"),
        "{hpa}"
    );
    // Stored as autoscaling/v2, served as v1 too.
    let v1 = server.kubectl_ok(&[
        "get",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "-o",
        "jsonpath={.spec.targetCPUUtilizationPercentage}",
    ]);
    assert_eq!(v1, "80");
    let v2 = server.kubectl_ok(&[
        "get",
        "hpa",
        "web",
        "-o",
        "jsonpath={.spec.metrics[0].resource.target.averageUtilization}",
    ]);
    assert_eq!(v2, "80");
    server.kubectl_ok(&["create", "configmap", "settings", "--from-literal=a=b"]);
    server.kubectl_ok(&["create", "secret", "generic", "token", "--from-literal=x=y"]);
    assert!(server.kubectl_ok(&["get", "secret", "token"]).contains("Opaque"));
    server.kubectl_ok(&["create", "namespace", "team-a"]);
    assert!(server.kubectl_ok(&["get", "ns", "team-a"]).contains("Active"));
}

#[test]
fn delete_cascades_to_dependents_by_policy() {
    let server = Server::start();
    let manifest = write_manifest(&server, "deploy.yaml", DEPLOYMENT);
    let child = |name: &str| {
        let uid = server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"]);
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: web\n    uid: {uid}\n    controller: true\n    blockOwnerDeletion: true\ndata: {{a: b}}\n"
        )
    };
    for (policy, name) in [
        ("background", "child-bg"),
        ("foreground", "child-fg"),
        ("orphan", "child-orphan"),
    ] {
        server.kubectl_ok(&["apply", "-f", &manifest]);
        server.kubectl_ok_input(&["apply", "-f", "-"], &child(name));
        let deleted = server.kubectl_ok(&["delete", "deploy", "web", &format!("--cascade={policy}")]);
        assert!(deleted.contains(r#"deployment.apps "web" deleted"#), "{deleted}");
        let present = || server.kubectl(&["get", "cm", name]).status.success();
        if policy == "orphan" {
            assert!(present(), "an orphaned dependent stays");
            let owners =
                server.kubectl_ok(&["get", "cm", name, "-o", "jsonpath={.metadata.ownerReferences}"]);
            assert_eq!(owners, "", "and loses its owner reference");
        } else {
            assert!(
                eventually(Duration::from_secs(10), || !present()),
                "{policy} deletion removes the dependent"
            );
        }
    }
}

#[test]
fn namespace_deletion_removes_its_content() {
    let server = Server::start();
    server.kubectl_ok(&["create", "namespace", "doomed"]);
    server.kubectl_ok(&["create", "configmap", "x", "-n", "doomed"]);
    assert!(
        server
            .kubectl_ok(&["delete", "namespace", "doomed"])
            .contains("deleted")
    );
    assert!(!server.kubectl_ok(&["get", "ns", "-o", "name"]).contains("doomed"));
    let refused = server.kubectl_err(&["create", "configmap", "y", "-n", "doomed"], None);
    assert!(refused.contains(r#"namespaces "doomed" not found"#), "{refused}");
}

#[test]
fn watch_sees_later_changes_and_describe_shows_events() {
    let server = Server::start();
    let mut watcher = server
        .kubectl_command(&["get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The watch starts after its initial list; a change made then must show up.
    std::thread::sleep(Duration::from_millis(1500));
    server.kubectl_ok(&["create", "configmap", "later", "--from-literal=a=b"]);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl get -w never printed the new configmap: {seen:?}"
        );
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.starts_with("later") => break,
            Ok(line) => seen.push(line),
            Err(_) => {}
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();

    // describe finds an object's events by uid.
    server.kubectl_ok(&["create", "deployment", "web", "--image=nginx"]);
    let uid = server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.1\ninvolvedObject:\n  apiVersion: apps/v1\n  kind: Deployment\n  name: web\n  namespace: default\n  uid: {uid}\nreason: ScalingReplicaSet\nmessage: Scaled up replica set web-abc to 1\ntype: Normal\ncount: 1\nsource:\n  component: deployment-controller\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\n"
    );
    server.kubectl_ok_input(&["create", "-f", "-"], &event);
    let described = server.kubectl_ok(&["describe", "deployment", "web"]);
    assert!(
        described.contains("ScalingReplicaSet") && described.contains("Scaled up replica set web-abc to 1"),
        "{described}"
    );
    let events = server.kubectl_ok(&["get", "events"]);
    assert!(
        events.contains("deployment/web") && events.contains("ScalingReplicaSet"),
        "{events}"
    );
    // The field selector filters: nothing happened to a Service; the scheduler placed the pods.
    let filtered = |kind: &str| {
        server.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.kind={kind}"),
            "-o",
            "name",
        ])
    };
    assert!(filtered("Service").trim().is_empty(), "{}", filtered("Service"));
    assert!(eventually(Duration::from_secs(20), || !filtered("Pod")
        .trim()
        .is_empty()));
}
