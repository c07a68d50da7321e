//! Events recorded by the platform's own components, read back the way users read them (kubectl get,
//! field selectors, describe), and the event TTL.

use std::time::{Duration, Instant};

use crate::support::{Server, eventually, refused_start};

fn configmap(name: &str, namespace: &str, owners: &[(&str, &str)]) -> String {
    let mut manifest =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\n");
    if !owners.is_empty() {
        manifest.push_str("  ownerReferences:\n");
        for (owner, uid) in owners {
            manifest.push_str(&format!(
                "  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\n"
            ));
        }
    }
    manifest
}

#[test]
fn a_controllers_events_are_listed_filtered_and_described() {
    let server = Server::start();
    for ns in ["team-a", "team-b"] {
        server.kubectl_ok(&["create", "namespace", ns]);
    }
    server.kubectl_ok(&["create", "configmap", "owner", "-n", "team-a"]);
    server.kubectl_ok(&["create", "configmap", "local-owner", "-n", "team-b"]);
    let uid = |name: &str, ns: &str| {
        server.kubectl_ok(&["get", "cm", name, "-n", ns, "-o", "jsonpath={.metadata.uid}"])
    };
    let (foreign, local) = (uid("owner", "team-a"), uid("local-owner", "team-b"));
    // An owner reference may not cross namespaces: the garbage collector says so on the dependent, drops
    // the reference where another owner holds the object, and deletes it where none does.
    let held = configmap("held", "team-b", &[("owner", &foreign), ("local-owner", &local)]);
    let orphan = configmap("orphan", "team-b", &[("owner", &foreign)]);
    server.kubectl_ok_input(&["apply", "-f", "-"], &format!("{held}---\n{orphan}"));

    let listed = || server.kubectl_ok(&["get", "events", "-n", "team-b"]);
    assert!(
        eventually(Duration::from_secs(20), || listed()
            .matches("OwnerRefInvalidNamespace")
            .count()
            == 2),
        "{}",
        listed()
    );
    let table = listed();
    let header = table.lines().next().unwrap();
    for column in ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"] {
        assert!(header.contains(column), "{header}");
    }
    let row = table
        .lines()
        .find(|l| l.contains("configmap/held"))
        .expect("a row for the dependent");
    assert!(row.contains("Warning"), "{row}");
    assert!(
        row.contains(&format!(
            "ownerRef [v1/ConfigMap, namespace: team-b, name: owner, uid: {foreign}] does not exist in namespace \"team-b\""
        )),
        "{row}"
    );

    let selected = server.kubectl_ok(&[
        "get", "events", "-n", "team-b", "--field-selector", "involvedObject.name=held", "-o",
        "jsonpath={range .items[*]}{.involvedObject.name} {.source.component} {.reportingComponent} {.count}{\"\\n\"}{end}",
    ]);
    assert_eq!(
        selected.trim(),
        "held garbage-collector-controller garbage-collector-controller 1"
    );
    let none = server.kubectl_ok(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        "involvedObject.name=nothing",
        "-o",
        "name",
    ]);
    assert!(none.trim().is_empty(), "{none}");

    assert!(eventually(Duration::from_secs(20), || {
        server.kubectl_ok(&[
            "get",
            "cm",
            "held",
            "-n",
            "team-b",
            "-o",
            "jsonpath={.metadata.ownerReferences[*].name}",
        ]) == "local-owner"
    }));
    assert!(eventually(Duration::from_secs(20), || {
        !server
            .kubectl(&["get", "cm", "orphan", "-n", "team-b"])
            .status
            .success()
    }));
    let described = server.kubectl_ok(&["describe", "configmap", "held", "-n", "team-b"]);
    assert!(
        described.contains("Events:") && described.contains("OwnerRefInvalidNamespace"),
        "{described}"
    );
    assert!(described.contains("garbage-collector-controller"), "{described}");

    // A cluster-scoped object cannot have a namespaced owner: it is reported (in `default`, where events
    // of cluster-scoped objects go) and otherwise left alone, never deleted.
    let namespace = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: owned\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {foreign}\n"
    );
    server.kubectl_ok_input(&["apply", "-f", "-"], &namespace);
    let reported = || {
        server.kubectl_ok(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            "involvedObject.name=owned",
        ])
    };
    assert!(
        eventually(Duration::from_secs(20), || reported()
            .contains("OwnerRefInvalidNamespace")),
        "{}",
        reported()
    );
    assert!(
        reported().contains("does not exist in namespace \"\""),
        "{}",
        reported()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        server.kubectl(&["get", "namespace", "owned"]).status.success(),
        "the namespace stays"
    );

    // The recorder counts what it wrote: these three, and the node agent's and node controller's own.
    let metrics = server.scrape();
    let created = metrics
        .lines()
        .find_map(|l| l.strip_prefix("glasshouse_event_recorder_writes_total{operation=\"create\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(created.is_some_and(|n| n >= 3.0), "{metrics}");
}

#[test]
fn events_expire_one_ttl_after_their_last_write() {
    let server = Server::start_with(&["--event-ttl", "10s"]);
    let event = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Event\nmetadata:\n  name: {name}\ninvolvedObject:\n  kind: Pod\n  name: web\n  namespace: default\nreason: Started\nmessage: Started container web\ntype: Normal\n"
        )
    };
    server.kubectl_ok_input(
        &["create", "-f", "-"],
        &format!("{}---\n{}", event("kept"), event("idle")),
    );
    let created = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    // A write re-arms the whole TTL: "kept" now lives until 15 s or later, "idle" goes at 10–11 s.
    server.kubectl_ok(&["patch", "event", "kept", "--type=merge", "-p", r#"{"count": 2}"#]);
    let present = |name: &str| server.kubectl(&["get", "event", name]).status.success();
    assert!(
        eventually(Duration::from_secs(10), || !present("idle")),
        "the idle event expires"
    );
    assert!(created.elapsed() >= Duration::from_secs(4), "not before its TTL");
    assert!(present("kept"), "the event written since lives on");
    assert!(
        eventually(Duration::from_secs(10), || !present("kept")),
        "and expires in its turn"
    );
    // These two, and whatever else expired meanwhile (the node agent's own events).
    let metrics = server.scrape();
    let expired = metrics
        .lines()
        .find_map(|l| l.strip_prefix("glasshouse_events_expired_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(expired.is_some_and(|n| n >= 2.0), "{metrics}");
}

#[test]
fn a_bad_event_ttl_is_refused_at_start() {
    let stderr = refused_start(&["--event-ttl", "soon"]);
    assert!(stderr.contains("\"soon\" is not a duration"), "{stderr}");
}
