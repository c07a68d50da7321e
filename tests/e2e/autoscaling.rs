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

/// Clients looping over requests to a Service, each pausing `pause` between requests, for at most
/// two minutes.
struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(server: &Server, service: &str, clients: usize, pause: Duration) -> Load {
        let ip = server.kubectl_ok(&["get", "svc", service, "-o", "jsonpath={.spec.clusterIP}"]);
        let addr = format!("{ip}:80");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, served, addr) = (stop.clone(), served.clone(), addr.clone());
                std::thread::spawn(move || {
                    let started = Instant::now();
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                        if request(&addr) {
                            served.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(pause);
                        } else {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            served,
            clients,
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().unwrap();
        }
    }
}

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
    let load = Load::start(&server, "busy", 2, Duration::ZERO);
    let up = eventually(Duration::from_secs(60), || replicas_of(&server, "busy") >= 2);
    let describe = server.kubectl_ok(&["describe", "hpa", "busy"]);
    assert!(up, "{describe}\nserved {}", load.served());
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

    load.stop();
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
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: plain}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: plain}}\n  template:\n    metadata: {labels: {app: plain}}\n    spec:\n      containers:\n      - {name: sleep, image: busybox, command: [sleep, '3600']}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: other}}\n  template:\n    metadata: {labels: {app: other}}\n    spec:\n      containers:\n      - {name: sleep, image: busybox, command: [sleep, '3600']}\n",
    );
    server.kubectl_ok(&["autoscale", "deployment", "plain", "--cpu-percent=50", "--max=3"]);
    // A Pods metric nobody serves, and a target that does not exist.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: custom}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: other}\n  maxReplicas: 3\n  metrics:\n  - type: Pods\n    pods: {metric: {name: http_requests}, target: {type: AverageValue, averageValue: '10'}}\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: ghost}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: ghost}\n  maxReplicas: 3\n",
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
    // A second HPA on the same pods: neither may scale them.
    server.kubectl_ok(&[
        "autoscale",
        "deployment",
        "plain",
        "--name=twin",
        "--cpu-percent=60",
        "--max=4",
    ]);
    assert!(
        eventually(Duration::from_secs(30), || describe("twin").contains(
            "are controlled by multiple HPAs: [default/plain default/twin]"
        )),
        "{}",
        describe("twin")
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

/// Counts its requests on `/metrics` (a counter, as Prometheus clients write one).
const COUNTED: &str = r##"apiVersion: apps/v1
kind: Deployment
metadata: {name: counted}
spec:
  replicas: 1
  selector: {matchLabels: {app: counted}}
  template:
    metadata:
      labels: {app: counted}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "8080"}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: python:3
        command:
        - python3
        - -c
        - |
          import http.server, os
          served = 0
          class Handler(http.server.BaseHTTPRequestHandler):
              def do_GET(self):
                  global served
                  if self.path == "/metrics":
                      body = ("# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"
                              "http_requests_total{code=\"200\"} %d\n" % served).encode()
                  else:
                      served += 1
                      body = b"ok"
                  self.send_response(200)
                  self.send_header("Content-Length", str(len(body)))
                  self.end_headers()
                  self.wfile.write(body)
              def log_message(self, *args):
                  pass
          http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), Handler).serve_forever()
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: counted}
spec:
  selector: {app: counted}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: counted}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: counted}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Pods
    pods:
      metric: {name: http_requests_per_second}
      target: {type: AverageValue, averageValue: "5"}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 5}
---
apiVersion: v1
kind: Pod
metadata:
  name: garbage
  annotations: {prometheus.io/scrape: "true", prometheus.io/port: "8080"}
spec:
  containers:
  - name: web
    image: python:3
    command: [python3, -c, "import http.server, os\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(self):\n    self.send_response(200); self.end_headers(); self.wfile.write(b'{not: metrics}\\n')\n  def log_message(self, *a): pass\nhttp.server.HTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()\n"]
---
apiVersion: v1
kind: Pod
metadata:
  name: slow
  annotations: {prometheus.io/scrape: "true", prometheus.io/port: "8080"}
spec:
  containers:
  - name: web
    image: python:3
    command: [python3, -c, "import http.server, os, time\nclass H(http.server.BaseHTTPRequestHandler):\n  def do_GET(self):\n    time.sleep(30)\n  def log_message(self, *a): pass\nhttp.server.ThreadingHTTPServer((os.environ['POD_IP'], 8080), H).serve_forever()\n"]
"##;

const CUSTOM_RULES: &str = r##"apiVersion: glasshouse/v1alpha1
metrics:
  rules:
  - seriesQuery: 'http_requests_total{code=~"2.."}'
    name: {matches: "^(.*)_total$", as: "${1}_per_second"}
"##;

#[test]
fn a_custom_metric_from_the_apps_own_metrics_scales_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, CUSTOM_RULES).unwrap();
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    server.kubectl_ok_input(&["apply", "-f", "-"], COUNTED);
    server.kubectl_ok(&["rollout", "status", "deployment/counted", "--timeout=60s"]);
    let raw = |path: &str| server.kubectl(&["get", "--raw", path]);
    let per_pod = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/http_requests_per_second?labelSelector=app%3Dcounted";
    assert!(
        eventually(Duration::from_secs(30), || String::from_utf8_lossy(
            &raw(per_pod).stdout
        )
        .contains("\"describedObject\"")),
        "{:?}",
        raw(per_pod)
    );
    let discovery = server.kubectl_ok(&["get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2"]);
    assert!(discovery.contains("pods/http_requests_per_second"), "{discovery}");
    // About 40 requests a second against 5 per pod: up to the maximum.
    let load = Load::start(&server, "counted", 2, Duration::from_millis(50));
    let up = eventually(Duration::from_secs(60), || replicas_of(&server, "counted") == 3);
    let describe = server.kubectl_ok(&["describe", "hpa", "counted"]);
    assert!(up, "{describe}\nserved {}", load.served());
    assert!(
        describe.contains("pods metric http_requests_per_second above target"),
        "{describe}"
    );
    let list: serde_json::Value = serde_json::from_slice(&raw(per_pod).stdout).unwrap();
    assert_eq!(list["kind"], "MetricValueList", "{list}");
    assert!(list["items"][0]["windowSeconds"].as_i64().is_some(), "{list}");
    load.stop();
    assert!(
        eventually(Duration::from_secs(90), || replicas_of(&server, "counted") == 1),
        "{}",
        server.kubectl_ok(&["describe", "hpa", "counted"])
    );
    // The garbled and the slow endpoints failed on their own, counted per pod and reason.
    let metrics = server.scrape();
    for (pod, reason) in [("garbage", "parse"), ("slow", "timeout")] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("glasshouse_collector_scrape_errors_total{")
                    && l.contains(&format!("pod=\"{pod}\""))
                    && l.contains(&format!("reason=\"{reason}\""))),
            "{pod}: {metrics}"
        );
    }
    // A metric nobody serves is a 404, in Status form.
    let missing = server.kubectl_err(
        &[
            "get",
            "--raw",
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/garbage/http_requests_per_second",
        ],
        None,
    );
    assert!(
        missing.contains("NotFound") || missing.contains("not found"),
        "{missing}"
    );
}

/// A queue whose depth is a file the test writes, served as `queue_depth` for Prometheus.
fn queue(depth_file: &std::path::Path) -> String {
    format!(
        r##"apiVersion: v1
kind: Pod
metadata: {{name: queue}}
spec:
  containers:
  - name: queue
    image: python:3
    command:
    - python3
    - -c
    - |
      import http.server, os
      class Handler(http.server.BaseHTTPRequestHandler):
          def do_GET(self):
              depth = open("{file}").read().strip()
              body = ("# TYPE queue_depth gauge\nqueue_depth{{queue=\"jobs\"}} %s\n" % depth).encode()
              self.send_response(200)
              self.send_header("Content-Length", str(len(body)))
              self.end_headers()
              self.wfile.write(body)
          def log_message(self, *args):
              pass
      http.server.HTTPServer((os.environ["POD_IP"], 9100), Handler).serve_forever()
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: workers}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: workers}}}}
  template:
    metadata: {{labels: {{app: workers}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: work, image: busybox, command: [sleep, "3600"]}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: workers}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: workers}}
  maxReplicas: 4
  metrics:
  - type: External
    external:
      metric: {{name: queue_depth, selector: {{matchLabels: {{queue: jobs}}}}}}
      target: {{type: AverageValue, averageValue: "10"}}
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 5}}
"##,
        file = depth_file.display()
    )
}

#[test]
fn an_external_metric_from_prometheus_scales_a_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let depth = dir.path().join("depth");
    std::fs::write(&depth, "0").unwrap();
    let prometheus_port = crate::support::free_port();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: glasshouse/v1alpha1\nmetrics:\n  external:\n  - name: queue_depth\n    namespaced: false\n    prometheus: {{url: 'http://127.0.0.1:{prometheus_port}', query: 'sum(queue_depth{{<<.LabelMatchers>>}})'}}\n"
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    server.kubectl_ok_input(&["apply", "-f", "-"], &queue(&depth));
    server.kubectl_ok(&["wait", "--for=condition=Ready", "pod/queue", "--timeout=60s"]);
    let queue_ip = server.kubectl_ok(&["get", "pod", "queue", "-o", "jsonpath={.status.podIP}"]);
    // A real Prometheus scraping the platform's endpoint and the queue pod every second.
    let metrics_target = server
        .metrics
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let prometheus_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n- job_name: glasshouse\n  static_configs: [{{targets: ['{metrics_target}']}}]\n- job_name: queue\n  static_configs: [{{targets: ['{queue_ip}:9100']}}]\n"
        ),
    )
    .unwrap();
    let _prometheus = crate::support::KillOnDrop(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus runs (the test suite installs Debian's prometheus)"),
    );
    let external =
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth?labelSelector=queue%3Djobs";
    let value = || {
        let out = server.kubectl(&["get", "--raw", external]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()?["items"][0]["value"]
            .as_str()
            .map(str::to_string)
    };
    let targets = || {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                &format!("http://127.0.0.1:{prometheus_port}/api/v1/targets"),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        eventually(Duration::from_secs(60), || value().as_deref() == Some("0")),
        "{:?}\n{}\n{}\n{}",
        server.kubectl(&["get", "--raw", external]),
        targets(),
        std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default(),
        server.kubectl_ok(&["logs", "queue"])
    );
    // Prometheus sees the platform too.
    let up = || {
        let out = std::process::Command::new("curl")
            .args([
                "-fsS",
                &format!(
                    "http://127.0.0.1:{prometheus_port}/api/v1/query?query=up%7Bjob%3D%22glasshouse%22%7D"
                ),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        eventually(Duration::from_secs(30), || up().contains("\"1\"")),
        "{}",
        up()
    );

    // 35 jobs against 10 per worker: 4.
    std::fs::write(&depth, "35").unwrap();
    let scaled = eventually(Duration::from_secs(60), || replicas_of(&server, "workers") == 4);
    let describe = server.kubectl_ok(&["describe", "hpa", "workers"]);
    assert!(scaled, "{describe}\n{:?}", value());
    assert!(describe.contains("external metric queue_depth"), "{describe}");
    std::fs::write(&depth, "0").unwrap();
    assert!(
        eventually(Duration::from_secs(90), || replicas_of(&server, "workers") == 1),
        "{}",
        server.kubectl_ok(&["describe", "hpa", "workers"])
    );
    // A metric with no source is a 404.
    let missing = server.kubectl_err(
        &[
            "get",
            "--raw",
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/nothing",
        ],
        None,
    );
    assert!(
        missing.contains("NotFound") || missing.contains("not found"),
        "{missing}"
    );
}
