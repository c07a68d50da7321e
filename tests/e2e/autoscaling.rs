//! HorizontalPodAutoscalers: `kubectl autoscale` on CPU utilization scales a Deployment of CPU-bound HTTP
//! servers up under a load generator and back down once the load stops and the stabilization window
//! has passed; `kubectl get hpa` and `kubectl describe hpa` show the targets, conditions and events;
//! the `decisions` subresource explains each rescale; metrics that cannot be had give upstream's
//! conditions and events.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Server, eventually};

/// Each request burns 20 ms of CPU; 100m requested per pod.
const APP: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: busy}
spec:
  replicas: 1
  selector: {matchLabels: {app: busy}}
  template:
    metadata: {labels: {app: busy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: python:3
        command:
        - python3
        - -c
        - |
          import http.server, os, time
          class Handler(http.server.BaseHTTPRequestHandler):
              def do_GET(self):
                  end = time.process_time() + 0.02
                  while time.process_time() < end:
                      pass
                  self.send_response(200)
                  self.send_header("Content-Length", "2")
                  self.end_headers()
                  self.wfile.write(b"ok")
              def log_message(self, *args):
                  pass
          http.server.HTTPServer((os.environ["POD_IP"], 8080), Handler).serve_forever()
        ports: [{name: http, containerPort: 8080}]
        resources: {requests: {cpu: 100m}}
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: busy}
spec:
  selector: {app: busy}
  ports: [{port: 80, targetPort: http}]
"#;

fn request(addr: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = Vec::new();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
        && stream.read_to_end(&mut reply).is_ok()
        && reply.starts_with(b"HTTP/1.0 200")
}

#[test]
fn cpu_utilization_scales_a_deployment_up_under_load_and_back_down() {
    let server = Server::start();
    server.kubectl_ok_input(&["apply", "-f", "-"], APP);
    server.kubectl_ok(&["rollout", "status", "deployment/busy", "--timeout=60s"]);
    let out = server.kubectl_ok(&[
        "autoscale",
        "deployment",
        "busy",
        "--cpu-percent=50",
        "--min=1",
        "--max=3",
    ]);
    assert!(out.contains("autoscaled"), "{out}");
    // A short scale-down window, so the test sees it pass.
    server.kubectl_ok(&[
        "patch",
        "hpa",
        "busy",
        "--type=merge",
        "-p",
        r#"{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":5}}}}"#,
    ]);
    let hpa = || server.kubectl_ok(&["get", "hpa", "busy", "--no-headers"]);
    // Idle: the utilization is known and below target.
    assert!(
        eventually(Duration::from_secs(30), || hpa().contains("%/50%")),
        "{}",
        hpa()
    );
    assert_eq!(replicas_of(&server, "busy"), 1);

    // Load through the Service: two clients, for at most two minutes.
    let ip = server.kubectl_ok(&["get", "svc", "busy", "-o", "jsonpath={.spec.clusterIP}"]);
    let addr = format!("{ip}:80");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, served, addr) = (stop.clone(), served.clone(), addr.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                    if request(&addr) {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let up = eventually(Duration::from_secs(60), || replicas_of(&server, "busy") >= 2);
    let describe = server.kubectl_ok(&["describe", "hpa", "busy"]);
    assert!(up, "{describe}\nserved {}", served.load(Ordering::Relaxed));
    assert!(
        describe.contains("SuccessfulRescale")
            && describe.contains("reason: cpu resource utilization (percentage of request) above target"),
        "{describe}"
    );
    assert!(describe.contains("ValidMetricFound"), "{describe}");
    let decisions = server.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/busy/decisions",
    ]);
    let decisions: serde_json::Value = serde_json::from_str(&decisions).unwrap();
    let rescale = decisions["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rescaled"] == true)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        rescale["metrics"][0]["metric"], "cpu resource utilization (percentage of request)",
        "{decisions}"
    );
    assert!(rescale["desiredReplicas"].as_i64() >= Some(2), "{decisions}");
    assert!(
        rescale["normalization"]["limit"]["reason"].is_string(),
        "{decisions}"
    );

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    // Idle again: back to one replica once the 5 s window and the policies allow.
    let down = eventually(Duration::from_secs(90), || replicas_of(&server, "busy") == 1);
    let describe = server.kubectl_ok(&["describe", "hpa", "busy"]);
    assert!(down, "{describe}");
    assert!(describe.contains("All metrics below target"), "{describe}");
}

#[test]
fn metrics_that_cannot_be_had_show_upstreams_conditions_and_events() {
    let server = Server::start();
    // No CPU request: utilization cannot be computed.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: plain}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: plain}}\n  template:\n    metadata: {labels: {app: plain}}\n    spec:\n      containers:\n      - {name: sleep, image: busybox, command: [sleep, '3600']}\n",
    );
    server.kubectl_ok(&["autoscale", "deployment", "plain", "--cpu-percent=50", "--max=3"]);
    // A Pods metric nobody serves, and a target that does not exist.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: custom}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: plain}\n  maxReplicas: 3\n  metrics:\n  - type: Pods\n    pods: {metric: {name: http_requests}, target: {type: AverageValue, averageValue: '10'}}\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: ghost}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: ghost}\n  maxReplicas: 3\n",
    );
    let describe = |name: &str| server.kubectl_ok(&["describe", "hpa", name]);
    assert!(
        eventually(Duration::from_secs(30), || describe("plain")
            .contains("missing request for cpu in container sleep")),
        "{}",
        describe("plain")
    );
    let plain = describe("plain");
    assert!(
        plain.contains("FailedGetResourceMetric") && plain.contains("FailedComputeMetricsReplicas"),
        "{plain}"
    );
    assert!(
        eventually(Duration::from_secs(30), || describe("custom")
            .contains("FailedGetPodsMetric")),
        "{}",
        describe("custom")
    );
    assert!(
        eventually(Duration::from_secs(30), || describe("ghost")
            .contains("FailedGetScale")),
        "{}",
        describe("ghost")
    );
    let conditions = server.kubectl_ok(&[
        "get",
        "hpa",
        "ghost",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"AbleToScale\")].reason}",
    ]);
    assert_eq!(conditions, "FailedGetScale");
    assert_eq!(
        replicas_of(&server, "plain"),
        1,
        "nothing scaled on failed metrics"
    );
    // Bad specs are refused with the field at fault.
    let err = server.kubectl_err(
        &["apply", "-f", "-"],
        Some("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: bad}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: plain}\n  maxReplicas: 3\n  behavior: {scaleUp: {policies: [{type: Pods, value: 0, periodSeconds: 4000}]}}\n"),
    );
    assert!(
        err.contains("spec.behavior.scaleUp.policies[0].value") && err.contains("periodSeconds"),
        "{err}"
    );
}

fn replicas_of(server: &Server, name: &str) -> i64 {
    server
        .kubectl_ok(&["get", "deployment", name, "-o", "jsonpath={.spec.replicas}"])
        .parse()
        .unwrap_or(-1)
}
