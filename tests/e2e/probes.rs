//! Probes end to end with kubectl (`spec/probes.md` §4): a liveness probe that starts failing restarts
//! its container with the kubelet's events; a readiness probe that fails keeps a pod out of its
//! Service's endpoints and away from traffic; a startup probe holds liveness back; invalid probes are
//! refused; the history and the metrics show what the probes did. Sidecars (init containers with
//! `restartPolicy: Always`) are probed like app containers, with their own consequences.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::{Server, eventually};

/// A server on `$POD_IP:$PORT` (8080 unless set) answering `GET /` with the pod's name, and `/healthz` with 200 for its
/// first `HEALTHY` seconds, 500 after; `/ready` with `READY` (a status code).
const SERVER: &str = r#"
import http.server, os, time
start = time.time()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            code = 200 if time.time() - start < float(os.environ.get("HEALTHY", "1e9")) else 500
        elif self.path == "/ready":
            code = int(os.environ.get("READY", "200"))
        else:
            code = 200
        body = os.environ["POD_NAME"].encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
time.sleep(float(os.environ.get("DELAY", "0")))
http.server.HTTPServer((os.environ["POD_IP"], int(os.environ.get("PORT", "8080"))), H).serve_forever()
"#;

fn pod(name: &str, labels: &str, env: &[(&str, &str)], probes: &str) -> String {
    let env: String = env
        .iter()
        .map(|(k, v)| format!("    - {{name: {k}, value: \"{v}\"}}\n"))
        .collect();
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{{labels}}}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: python
    command: [python3, -c, {server:?}]
    ports: [{{name: http, containerPort: 8080}}]
    env:
{env}{probes}",
        server = SERVER
    )
}

fn get(addr: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply.rsplit("\r\n\r\n").next().map(str::to_string)
}

#[test]
fn a_failing_liveness_probe_restarts_the_container_with_the_kubelets_events() {
    let server = Server::start();
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &pod(
            "liveness",
            "app: liveness",
            &[("HEALTHY", "3")],
            "    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 1
      failureThreshold: 2
",
        ),
    );
    let restarts = || {
        server
            .kubectl_ok(&[
                "get",
                "pod",
                "liveness",
                "-o",
                "jsonpath={.status.containerStatuses[0].restartCount}",
            ])
            .parse::<u32>()
            .unwrap_or(0)
    };
    // Healthy 3 s, then two failures a second apart: killed, restarted at once; the next run fails
    // the same way and restarts after the 10 s back-off.
    assert!(
        eventually(Duration::from_secs(30), || restarts() >= 1),
        "restarted once"
    );
    assert!(
        eventually(Duration::from_secs(40), || restarts() >= 2),
        "and again"
    );
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=liveness",
    ]);
    assert!(
        events.contains("Liveness probe failed: HTTP probe failed with statuscode: 500"),
        "{events}"
    );
    assert!(
        events.contains("Container app failed liveness probe, will be restarted"),
        "{events}"
    );
    let described = server.kubectl_ok(&["describe", "pod", "liveness"]);
    assert!(
        described.contains("Liveness:") && described.contains("http-get http://:http/healthz"),
        "{described}"
    );
    assert!(
        described.contains("Unhealthy") && described.contains("Killing"),
        "{described}"
    );

    // Why was it restarted: the probe history says, run by run.
    let history = server.kubectl_ok(&["get", "--raw", "/api/v1/namespaces/default/pods/liveness/probes"]);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let attempts = history["containers"]["app"]
        .as_array()
        .expect("the app's attempts");
    assert!(
        attempts.iter().any(|a| a["outcome"] == "failure"
            && a["result"] == "Failure"
            && a["probeType"] == "Liveness"
            && a["output"] == "HTTP probe failed with statuscode: 500"),
        "{history}"
    );
    assert!(attempts.iter().any(|a| a["outcome"] == "success"), "{history}");
    let resources = server.kubectl_ok(&["get", "--raw", "/api/v1"]);
    assert!(resources.contains("pods/probes"), "advertised in discovery");

    // The kubelet's probe metrics, on their own endpoint (the current run's: a run's series go with it).
    let scrape = || {
        let out = std::process::Command::new("curl")
            .args(["-fsS", &format!("{}/probes", server.metrics)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let series = |probes: &str, result: &str| {
        probes.lines().any(|l| {
            l.starts_with("prober_probe_total{")
                && l.contains("probe_type=\"Liveness\"")
                && l.contains(&format!("result=\"{result}\""))
                && l.contains("pod=\"liveness\"")
        })
    };
    assert!(
        eventually(Duration::from_secs(30), || {
            let probes = scrape();
            series(&probes, "successful")
                && series(&probes, "failed")
                && probes.contains("prober_probe_duration_seconds_bucket")
        }),
        "{}",
        scrape()
    );
}

#[test]
fn a_failing_readiness_probe_keeps_a_pod_out_of_its_service() {
    let server = Server::start();
    let readiness = "    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 1
";
    // The good pod also has an exec liveness probe that passes only in its own environment (its env
    // var and working directory).
    let exec = format!(
        "{readiness}    livenessProbe:
      exec: {{command: [sh, -c, 'test \"$POD_NAME\" = good && test \"$(pwd)\" = /tmp']}}
      periodSeconds: 1
      failureThreshold: 1
    workingDir: /tmp
"
    );
    server.kubectl_ok_input(&["apply", "-f", "-"], &pod("good", "app: pair", &[], &exec));
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &pod("bad", "app: pair", &[("READY", "503")], readiness),
    );
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: pair}\nspec:\n  selector: {app: pair}\n  ports: [{port: 8080}]\n",
    );
    let ready = |name: &str| {
        server.kubectl_ok(&[
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}",
        ])
    };
    assert!(eventually(Duration::from_secs(30), || ready("good") == "true"));
    let wide = server.kubectl_ok(&["get", "pods", "bad"]);
    assert!(wide.contains("0/1") && wide.contains("Running"), "{wide}");
    assert_eq!(ready("bad"), "false");
    let good_ip = server.kubectl_ok(&["get", "pod", "good", "-o", "jsonpath={.status.podIP}"]);
    let endpoints = || {
        server.kubectl_ok(&[
            "get",
            "endpoints",
            "pair",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(20), || endpoints() == good_ip),
        "{}",
        endpoints()
    );
    let not_ready = server.kubectl_ok(&[
        "get",
        "endpoints",
        "pair",
        "-o",
        "jsonpath={.subsets[*].notReadyAddresses[*].ip}",
    ]);
    assert!(!not_ready.is_empty(), "the unready pod is listed as not ready");
    // Through the Service: every request reaches the ready pod.
    let cluster_ip = server.kubectl_ok(&["get", "svc", "pair", "-o", "jsonpath={.spec.clusterIP}"]);
    let service = format!("{cluster_ip}:8080");
    assert!(eventually(Duration::from_secs(10), || get(&service).is_some()));
    for _ in 0..30 {
        assert_eq!(get(&service).as_deref(), Some("good"));
    }
    // The exec probe ran as the container runs: it passed every time.
    let history = server.kubectl_ok(&["get", "--raw", "/api/v1/namespaces/default/pods/good/probes"]);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let liveness: Vec<&serde_json::Value> = history["containers"]["app"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["probeType"] == "Liveness")
        .collect();
    assert!(
        !liveness.is_empty() && liveness.iter().all(|a| a["outcome"] == "success"),
        "{history}"
    );
    let good_restarts = server.kubectl_ok(&[
        "get",
        "pod",
        "good",
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(good_restarts, "0");
    // No restart for readiness, and the pod's conditions say why.
    let status = server.kubectl_ok(&["get", "pod", "bad", "-o", "jsonpath={.status.containerStatuses[0].restartCount} {.status.conditions[?(@.type==\"Ready\")].message}"]);
    assert_eq!(status, "0 containers with unready status: [app]");
    let events = server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=bad"]);
    assert!(
        events.contains("Readiness probe failed: HTTP probe failed with statuscode: 503"),
        "{events}"
    );
}

#[test]
fn a_startup_probe_holds_liveness_back_until_the_app_is_up() {
    let server = Server::start();
    // The server listens only after 4 s; without the startup probe, liveness (1 failure) would kill it.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &pod(
            "slow",
            "app: slow",
            &[("DELAY", "4")],
            "    startupProbe:
      tcpSocket: {port: http}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 1
      failureThreshold: 1
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 30
",
        ),
    );
    let status = || {
        server.kubectl_ok(&[
            "get",
            "pod",
            "slow",
            "-o",
            "jsonpath={.status.containerStatuses[0].started} {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}",
        ])
    };
    // Running, not started while the startup probe has not passed (the server listens after 4 s).
    assert!(
        eventually(Duration::from_secs(20), || status() == "false false 0"),
        "{}",
        status()
    );
    // Ready right after startup (readiness probes at once then, not after its 30 s period).
    assert!(
        eventually(Duration::from_secs(20), || status() == "true true 0"),
        "{}",
        status()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(status(), "true true 0");
    let events = server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=slow"]);
    assert!(!events.contains("Liveness probe failed"), "{events}");
    assert!(events.contains("Startup probe failed: dial tcp"), "{events}");
}

#[test]
fn invalid_probes_are_refused_with_upstreams_messages() {
    let server = Server::start();
    let bad = "apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - name: app
    image: python
    command: [sleep, '60']
    ports: [{name: http, containerPort: 8080}]
    livenessProbe:
      httpGet: {path: /, port: admin}
      tcpSocket: {port: 8080}
      successThreshold: 2
    readinessProbe:
      periodSeconds: 3
";
    let said = server.kubectl_err(&["apply", "-f", "-"], Some(bad));
    for message in [
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
        "spec.containers[0].livenessProbe.httpGet.port: Invalid value: \"admin\"",
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
    ] {
        assert!(said.contains(message), "{message}: {said}");
    }
    assert!(said.contains("is invalid"), "a 422: {said}");
}

#[test]
fn a_ready_pod_stays_ready_and_in_its_service_when_glasshouse_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", crate::support::free_port());
    let mut server = Server::start_in(dir.path(), &["--api-addr", &api]);
    let readiness = "    readinessProbe:
      httpGet: {path: /ready, port: 8080}
      periodSeconds: 5
";
    // With a sidecar probed for readiness too: its readiness is kept as well.
    let steady = pod("steady", "app: steady", &[], readiness).replace(
        "  containers:\n",
        &format!(
            "  initContainers:
  - name: proxy
    image: python
    restartPolicy: Always
    command: [python3, -c, {SERVER:?}]
    env: [{{name: PORT, value: \"8081\"}}]
    readinessProbe:
      httpGet: {{path: /ready, port: 8081}}
      periodSeconds: 5
  containers:\n"
        ),
    );
    server.kubectl_ok_input(&["apply", "-f", "-"], &steady);
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: steady}\nspec:\n  selector: {app: steady}\n  ports: [{port: 8080}]\n",
    );
    let ip = || server_ip(&server);
    assert!(eventually(Duration::from_secs(30), || !ip().is_empty()));
    let endpoints = |server: &Server| {
        server.kubectl_ok(&[
            "get",
            "endpoints",
            "steady",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ])
    };
    assert!(eventually(Duration::from_secs(20), || endpoints(&server) == ip()));
    let address = ip();
    // Up for more than 10 s when the agent comes back: its readiness is kept, not probed anew from
    // "not ready" (which would take it out of the Service for up to a period).
    std::thread::sleep(Duration::from_secs(11));
    server.kill9();
    server = Server::start_in(dir.path(), &["--api-addr", &api]);
    let sidecar_ready = |server: &Server| {
        server.kubectl_ok(&[
            "get",
            "pod",
            "steady",
            "-o",
            "jsonpath={.status.initContainerStatuses[0].ready}",
        ])
    };
    for _ in 0..40 {
        assert_eq!(endpoints(&server), address, "the pod stayed in its Service");
        assert_eq!(sidecar_ready(&server), "true", "the sidecar stayed ready");
        std::thread::sleep(Duration::from_millis(150));
    }
    let ready = server.kubectl_ok(&[
        "get",
        "pod",
        "steady",
        "-o",
        "jsonpath={.status.containerStatuses[0].ready} {.status.initContainerStatuses[0].ready}",
    ]);
    assert_eq!(ready, "true true");
}

#[test]
fn a_sidecar_is_probed_gates_the_app_and_counts_for_readiness() {
    let server = Server::start();
    // The sidecar listens on 8081 after 4 s, is healthy for 10 s and never ready.
    let sidecar = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: meshed}}
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: proxy
    image: python
    restartPolicy: Always
    command: [python3, -c, {server:?}]
    env:
    - {{name: PORT, value: \"8081\"}}
    - {{name: DELAY, value: \"4\"}}
    - {{name: HEALTHY, value: \"10\"}}
    - {{name: READY, value: \"503\"}}
    startupProbe:
      tcpSocket: {{port: 8081}}
      periodSeconds: 1
      failureThreshold: 30
    livenessProbe:
      httpGet: {{path: /healthz, port: 8081}}
      periodSeconds: 1
      failureThreshold: 2
    readinessProbe:
      httpGet: {{path: /ready, port: 8081}}
      periodSeconds: 1
  containers:
  - name: app
    image: python
    command: [python3, -c, {server:?}]
",
        server = SERVER
    );
    server.kubectl_ok_input(&["apply", "-f", "-"], &sidecar);
    let status = || {
        server.kubectl_ok(&[
            "get",
            "pod",
            "meshed",
            "-o",
            "jsonpath={.status.phase} {.status.initContainerStatuses[0].started} {.status.containerStatuses[0].state.waiting.reason}",
        ])
    };
    // The sidecar runs but has not started: the app waits for it.
    assert!(
        eventually(Duration::from_secs(20), || status()
            == "Pending false PodInitializing"),
        "{}",
        status()
    );
    // Started: the app runs beside it; the pod is not ready while the sidecar is not.
    assert!(
        eventually(Duration::from_secs(20), || status() == "Running true "),
        "{}",
        status()
    );
    let listed = server.kubectl_ok(&["get", "pod", "meshed"]);
    assert!(listed.contains("1/2") && listed.contains("Running"), "{listed}");
    let ready = server.kubectl_ok(&[
        "get",
        "pod",
        "meshed",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
    ]);
    assert_eq!(ready, "containers with unready status: [proxy]");
    // Its liveness fails after 10 s: the sidecar restarts, the app runs on untouched.
    let restarts = || {
        server.kubectl_ok(&[
            "get",
            "pod",
            "meshed",
            "-o",
            "jsonpath={.status.initContainerStatuses[0].restartCount} {.status.containerStatuses[0].restartCount} {.status.conditions[?(@.type==\"Initialized\")].status}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(40), || restarts() == "1 0 True"),
        "{}",
        restarts()
    );
    let events = server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=meshed"]);
    for text in [
        "Startup probe failed: dial tcp",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "Liveness probe failed: HTTP probe failed with statuscode: 500",
        "Container proxy failed liveness probe, will be restarted",
    ] {
        assert!(events.contains(text), "{text}: {events}");
    }
    let history = server.kubectl_ok(&["get", "--raw", "/api/v1/namespaces/default/pods/meshed/probes"]);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    let attempts = history["containers"]["proxy"]
        .as_array()
        .expect("the sidecar's attempts");
    for probe_type in ["Startup", "Liveness", "Readiness"] {
        assert!(
            attempts.iter().any(|a| a["probeType"] == probe_type),
            "{probe_type}: {history}"
        );
    }
    let described = server.kubectl_ok(&["describe", "pod", "meshed"]);
    assert!(
        described.contains("Init Containers:") && described.contains("Readiness:"),
        "{described}"
    );
}

#[test]
fn sidecars_stop_when_the_app_is_done() {
    let server = Server::start();
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: batch}
spec:
  restartPolicy: Never
  initContainers:
  - {name: setup, image: busybox, command: [sh, -c, 'exit 0']}
  - name: logger
    image: busybox
    restartPolicy: Always
    command: [sleep, '1000']
  containers:
  - {name: job, image: busybox, command: [sh, -c, 'sleep 2; echo done']}
",
    );
    let status = || {
        server.kubectl_ok(&[
            "get",
            "pod",
            "batch",
            "-o",
            "jsonpath={.status.phase} {.status.initContainerStatuses[1].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}",
        ])
    };
    // The job ends, the sidecar gets SIGTERM, and only then is the pod done.
    assert!(
        eventually(Duration::from_secs(30), || status().starts_with("Succeeded ")),
        "{}",
        status()
    );
    assert_eq!(status(), "Succeeded Error 0");
    let events = server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=batch"]);
    assert!(events.contains("Stopping container logger"), "{events}");
    let listed = server.kubectl_ok(&["get", "pod", "batch"]);
    assert!(listed.contains("Completed"), "{listed}");

    // An init container that fails under `restartPolicy: Never` fails the pod, and stops the sidecar
    // started before it.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  initContainers:
  - {name: logger, image: busybox, restartPolicy: Always, command: [sleep, '1000']}
  - {name: setup, image: busybox, command: [sh, -c, 'exit 3']}
  containers:
  - {name: app, image: busybox, command: [sleep, '1000']}
",
    );
    let broken = || {
        server.kubectl_ok(&[
            "get",
            "pod",
            "broken",
            "-o",
            "jsonpath={.status.phase} {.status.initContainerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.waiting.reason}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(30), || broken()
            == "Failed Error PodInitializing"),
        "{}",
        broken()
    );
    let listed = server.kubectl_ok(&["get", "pod", "broken"]);
    assert!(listed.contains("Init:Error"), "{listed}");

    // A deleted pod stops its app containers first, its sidecars after them: the sidecar's SIGTERM
    // waits until the app's 2-second preStop hook and the app are done. Each writes when it got SIGTERM.
    let signals = tempfile::tempdir().unwrap();
    let at = |name: &str| signals.path().join(name).display().to_string();
    let trapping = |name: &str| {
        format!(
            "[sh, -c, 'trap \"date +%s.%N > {}; exit 0\" TERM; while true; do sleep 0.1; done']",
            at(name)
        )
    };
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: served}}
spec:
  terminationGracePeriodSeconds: 10
  initContainers:
  - {{name: logger, image: busybox, restartPolicy: Always, command: {logger}}}
  containers:
  - name: app
    image: busybox
    command: {app}
    lifecycle: {{preStop: {{exec: {{command: [sleep, '2']}}}}}}
",
            logger = trapping("logger"),
            app = trapping("app"),
        ),
    );
    let running = || {
        server.kubectl_ok(&[
            "get",
            "pod",
            "served",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.running}",
        ])
    };
    assert!(eventually(Duration::from_secs(20), || !running().is_empty()));
    server.kubectl_ok(&["delete", "pod", "served", "--wait=false"]);
    let signalled = |name: &str| {
        std::fs::read_to_string(at(name))
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
    };
    assert!(
        eventually(Duration::from_secs(20), || signalled("logger").is_some()),
        "the sidecar was stopped"
    );
    let (app, sidecar) = (signalled("app").unwrap(), signalled("logger").unwrap());
    assert!(
        sidecar >= app,
        "the app got SIGTERM at {app}, the sidecar at {sidecar}"
    );
    // Both got their `Killing` event.
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=served,reason=Killing",
    ]);
    assert!(
        events.contains("Stopping container app") && events.contains("Stopping container logger"),
        "{events}"
    );
}

fn server_ip(server: &Server) -> String {
    server.kubectl_ok(&["get", "pod", "steady", "-o", "jsonpath={.status.podIP}"])
}
