//! Services: a ClusterIP from the loopback range and a NodePort, both forwarding to the ready replicas
//! round robin; the Endpoints list them; a rolling update with `maxUnavailable: 0` fails no request of a
//! client looping over the Service; history, undo and scaling work through kubectl.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{Server, eventually};

const APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: python:3
        command: [python3, -m, http.server, '8080', --bind, $(POD_IP)]
        ports: [{name: http, containerPort: 8080}]
        env: [{name: COLOR, value: red}]
        # The usual zero-downtime guard: keep serving while the endpoint removal spreads.
        lifecycle: {preStop: {exec: {command: [sleep, '1']}}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: web, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080}]
";

fn get(addr: &str) -> Result<String, std::io::Error> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /?probe HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    if reply.starts_with("HTTP/1.0 200") {
        Ok(reply)
    } else {
        Err(std::io::Error::other(format!("unexpected reply: {reply:.40}")))
    }
}

#[test]
fn services_reach_ready_replicas_and_a_rollout_fails_no_request() {
    let server = Server::start();
    server.kubectl_ok_input(&["apply", "-f", "-"], APP);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let cluster_ip = server.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(cluster_ip.starts_with("127.101."), "{cluster_ip}");
    let node_port = server.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    let node_port: u16 = node_port.parse().unwrap();
    assert!((30000..=32767).contains(&node_port));
    let headless = server.kubectl_ok(&["get", "svc", "web-headless", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(headless, "None");

    // The Endpoints list the three pods, ready, at the named target port.
    let endpoints = || {
        server.kubectl_ok(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip} {.subsets[*].ports[*].port}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(20), || endpoints().split_whitespace().count()
            == 4),
        "{}",
        endpoints()
    );
    assert!(endpoints().ends_with(" 8080"), "{}", endpoints());
    let headless_endpoints = server.kubectl_ok(&[
        "get",
        "endpoints",
        "web-headless",
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}",
    ]);
    assert_eq!(
        headless_endpoints.split_whitespace().count(),
        3,
        "{headless_endpoints}"
    );

    // So do the EndpointSlices, with their conditions, owned by the Service.
    let slices = || {
        server.kubectl_ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(20), || slices().matches("=true").count() == 3),
        "{}",
        slices()
    );
    let table = server.kubectl_ok(&["get", "endpointslices"]);
    assert!(
        table.contains("ADDRESSTYPE") && table.contains("IPv4") && table.contains("8080"),
        "{table}"
    );

    // ClusterIP and NodePort reach every replica, round robin.
    let service = format!("{cluster_ip}:80");
    let node = format!("127.0.0.1:{node_port}");
    assert!(eventually(Duration::from_secs(10), || get(&service).is_ok()));
    for _ in 0..6 {
        get(&service).unwrap();
        get(&node).unwrap();
    }
    let pods = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    for pod in pods.split_whitespace() {
        let logs = server.kubectl_ok(&["logs", pod]);
        assert!(
            logs.matches("GET /?probe").count() >= 2,
            "{pod} got its share: {logs}"
        );
    }

    // A rolling update under load: no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, ok, failed, service) = (stop.clone(), ok.clone(), failed.clone(), service.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match get(&service) {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        errors.push(e.to_string());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                std::thread::sleep(Duration::from_millis(20));
            }
            errors
        })
    };
    server.kubectl_ok(&["set", "env", "deployment/web", "COLOR=blue"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let errors = client.join().unwrap();
    assert!(ok.load(Ordering::Relaxed) > 20, "the client ran");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{errors:?}");

    let history = server.kubectl_ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    server.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let color = server.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env[0].value}",
    ]);
    assert_eq!(color, "red");

    // Scale 3 → 10 → 1, the Endpoints following.
    let ready = || server.kubectl_ok(&["get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"]);
    server.kubectl_ok(&["scale", "deployment/web", "--replicas=10"]);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    assert!(
        eventually(Duration::from_secs(30), || ready() == "10"),
        "{}",
        ready()
    );
    assert!(
        eventually(Duration::from_secs(10), || endpoints().split_whitespace().count()
            == 11),
        "{}",
        endpoints()
    );
    server.kubectl_ok(&["scale", "deployment/web", "--replicas=1"]);
    assert!(
        eventually(Duration::from_secs(60), || endpoints().split_whitespace().count()
            == 2),
        "{}",
        endpoints()
    );
    assert!(eventually(Duration::from_secs(60), || server
        .kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "name"])
        .lines()
        .count()
        == 1));
    get(&service).unwrap();
    assert!(
        eventually(Duration::from_secs(20), || slices().matches("=true").count() == 1),
        "{}",
        slices()
    );

    // Deleting the Service takes its Endpoints and slices, and its addresses stop answering.
    server.kubectl_ok(&["delete", "service", "web"]);
    assert!(eventually(Duration::from_secs(20), || slices().is_empty()
        && server.kubectl(&["get", "endpoints", "web"]).status.code()
            != Some(0)));
    assert!(eventually(Duration::from_secs(10), || get(&service).is_err()));
}

#[test]
fn service_addresses_are_checked() {
    let server = Server::start();
    let taken = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n";
    server.kubectl_ok_input(&["apply", "-f", "-"], taken);
    // A replace that leaves the allocated addresses out keeps them.
    let ip = server.kubectl_ok(&["get", "svc", "a", "-o", "jsonpath={.spec.clusterIP}"]);
    server.kubectl_ok_input(
        &["replace", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: NodePort\n  ports: [{port: 80}]\n",
    );
    let kept = server.kubectl_ok(&[
        "get",
        "svc",
        "a",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}",
    ]);
    assert_eq!(kept, format!("{ip} 30080"));
    let again = taken.replace("name: a", "name: b");
    let err = server.kubectl_err(&["apply", "-f", "-"], Some(&again));
    assert!(
        err.contains("spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"),
        "{err}"
    );
    let out_of_range = taken.replace("name: a", "name: c").replace("30080", "80");
    let err = server.kubectl_err(&["apply", "-f", "-"], Some(&out_of_range));
    assert!(
        err.contains("provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{err}"
    );
    let foreign = "apiVersion: v1\nkind: Service\nmetadata: {name: d}\nspec:\n  clusterIP: 10.0.0.1\n  ports: [{port: 80}]\n";
    let err = server.kubectl_err(&["apply", "-f", "-"], Some(foreign));
    assert!(
        err.contains("is not in the valid range. The range of valid IPs is 127.101.0.0/16"),
        "{err}"
    );
}
