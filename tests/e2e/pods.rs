//! Pods run as real processes: a Deployment's replicas serve HTTP on their pod IPs, crashes restart with
//! the kubelet's back-off, limits are enforced, bad specs wait with upstream reasons, a killed platform
//! adopts what runs, and deleting leaves no process behind.

use std::path::Path;
use std::time::Duration;

use crate::support::{Server, eventually, free_port};

/// Pids of the processes whose command line contains `needle`.
fn processes(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && pid != std::process::id() {
            found.push(pid);
        }
    }
    found
}

/// The text of every CRI log file of `pod`'s container `container`.
fn container_logs(data_dir: &Path, pod: &str, container: &str) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(data_dir.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("default_{pod}_")) {
            continue;
        }
        for file in std::fs::read_dir(entry.path().join(container))
            .into_iter()
            .flatten()
            .flatten()
        {
            text.push_str(&std::fs::read_to_string(file.path()).unwrap_or_default());
        }
    }
    text
}

fn jsonpath(server: &Server, pod: &str, path: &str) -> String {
    server.kubectl_ok(&["get", "pod", pod, "-o", &format!("jsonpath={path}")])
}

#[test]
fn a_deployment_serves_http_from_its_pod_ips_and_leaves_no_process_behind() {
    let server = Server::start();
    let deployment = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: python:3
        command: [python3, -m, http.server, '8080', --bind, $(POD_IP)]
        resources: {limits: {memory: 200Mi, cpu: 200m}}
";
    server.kubectl_ok_input(&["apply", "-f", "-"], deployment);
    server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let wide = server.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert_eq!(wide.matches("Running").count(), 3, "{wide}");
    assert_eq!(wide.matches("1/1").count(), 3, "{wide}");
    let ips = server.kubectl_ok(&["get", "pods", "-o", "jsonpath={.items[*].status.podIP}"]);
    let ips: Vec<&str> = ips.split_whitespace().collect();
    assert_eq!(ips.len(), 3, "{ips:?}");
    let distinct: std::collections::HashSet<_> = ips.iter().collect();
    assert_eq!(distinct.len(), 3, "pod IPs are unique: {ips:?}");
    for ip in &ips {
        assert!(ip.starts_with("127.100."), "{ip}");
        let ok = eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect((*ip, 8080))
                .and_then(|mut s| {
                    use std::io::{Read, Write};
                    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                    let mut reply = String::new();
                    s.read_to_string(&mut reply)?;
                    Ok(reply.starts_with("HTTP/1.0 200"))
                })
                .unwrap_or(false)
        });
        assert!(ok, "{ip}:8080 serves");
    }
    // Every replica logged its request, in the CRI format, on stderr (http.server's access log).
    let pods = server.kubectl_ok(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]);
    for pod in pods.split_whitespace() {
        let logs = container_logs(&server.data_dir, pod, "web");
        assert!(
            logs.contains(" stderr F ") && logs.contains("\"GET / HTTP/1.0\" 200"),
            "{pod}: {logs}"
        );
    }
    // kubectl logs: a deployment (one of its pods), a selector with its default tail, timestamps, -c.
    let logs = server.kubectl_ok(&["logs", "deployment/web"]);
    assert!(logs.contains("\"GET / HTTP/1.0\" 200"), "{logs}");
    let tails = server.kubectl_ok(&["logs", "-l", "app=web", "--tail=1", "--timestamps"]);
    let tails: Vec<&str> = tails.lines().collect();
    assert_eq!(tails.len(), 3, "{tails:?}");
    for line in &tails {
        let (stamp, text) = line.split_once(' ').unwrap();
        assert!(
            stamp.parse::<jiff::Timestamp>().is_ok() && text.contains("GET /"),
            "{line}"
        );
    }
    let first = pods.split_whitespace().next().unwrap();
    let since = server.kubectl_ok(&["logs", first, "-c", "web", "--since=1h"]);
    assert!(since.contains("GET /"), "{since}");
    let wrong = server.kubectl_err(&["logs", first, "-c", "nope"], None);
    assert!(
        wrong.contains(&format!("container nope is not valid for pod {first}")),
        "{wrong}"
    );
    let running = processes("http.server 8080 --bind 127.100.");
    assert!(running.len() >= 3, "{running:?}");
    let described = server.kubectl_ok(&["describe", "pod", pods.split_whitespace().next().unwrap()]);
    assert!(
        described.contains("Created container: web") && described.contains("Started container web"),
        "{described}"
    );

    // The agent's telemetry: start latencies observed, running pods counted (every 5 s).
    let metrics = server.scrape();
    assert!(
        metrics.contains("kubelet_pod_start_duration_seconds_count 3"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("kubelet_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(eventually(Duration::from_secs(10), || server
        .scrape()
        .contains("kubelet_running_pods 3")));

    server.kubectl_ok(&["delete", "deployment", "web"]);
    let gone = eventually(Duration::from_secs(30), || {
        ips.iter().all(|ip| processes(&format!("--bind {ip}")).is_empty())
            && server.kubectl_ok(&["get", "pods", "-o", "name"]).is_empty()
    });
    assert!(
        gone,
        "processes left: {:?}",
        ips.iter().map(|ip| processes(ip)).collect::<Vec<_>>()
    );
    let left: Vec<_> = std::fs::read_dir(server.data_dir.join("run/pods"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "the runtime forgot the pods: {left:?}");
}

#[test]
fn crashing_containers_back_off_10_20_40_seconds_and_never_restarts_none() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let starts = dir.path().join("starts");
    let pods = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'date +%s.%N >> {}; echo dying; exit 1']
---
apiVersion: v1
kind: Pod
metadata: {{name: talker}}
spec:
  restartPolicy: Never
  initContainers:
  - name: setup
    image: busybox
    command: [sh, -c, 'echo init-done']
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'sleep 1; for i in 1 2 3; do echo tick $i; sleep 0.5; done']
---
apiVersion: v1
kind: Pod
metadata: {{name: once}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'exit 3']
",
        starts.display()
    );
    server.kubectl_ok_input(&["apply", "-f", "-"], &pods);
    // Followed logs go on until the container ends; --all-containers includes the init container.
    assert!(eventually(Duration::from_secs(20), || jsonpath(
        &server,
        "talker",
        "{.status.phase}"
    ) == "Running"));
    let followed = server.kubectl_ok(&["logs", "-f", "talker", "-c", "c"]);
    assert_eq!(followed, "tick 1\ntick 2\ntick 3\n");
    assert!(eventually(Duration::from_secs(10), || jsonpath(
        &server,
        "talker",
        "{.status.phase}"
    ) == "Succeeded"));
    let all = server.kubectl_ok(&["logs", "talker", "--all-containers"]);
    assert!(all.contains("init-done") && all.contains("tick 3"), "{all}");
    let initialized = jsonpath(
        &server,
        "talker",
        "{.status.initContainerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(initialized, "Completed");

    let times = || -> Vec<f64> {
        std::fs::read_to_string(&starts)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(120), || times().len() >= 5),
        "starts: {:?}",
        times()
    );
    let times = times();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // The first restart is immediate; then 10, 20, 40 s after each end (the runs take milliseconds).
    for (gap, expected) in gaps.iter().zip([0.0, 10.0, 20.0, 40.0]) {
        assert!((gap - expected).abs() <= 1.0, "gaps {gaps:?}");
    }
    let restarts: i32 = jsonpath(&server, "crash", "{.status.containerStatuses[0].restartCount}")
        .parse()
        .unwrap();
    assert!(restarts >= 4, "{restarts}");
    let waiting = jsonpath(
        &server,
        "crash",
        "{.status.containerStatuses[0].state.waiting.reason}",
    );
    let last = jsonpath(
        &server,
        "crash",
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    );
    assert!(waiting == "CrashLoopBackOff" || waiting.is_empty(), "{waiting}");
    assert_eq!(last, "1");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crash,reason=BackOff",
    ]);
    assert!(
        events.contains("Back-off restarting failed container c in pod crash_default("),
        "{events}"
    );

    let previous = server.kubectl_ok(&["logs", "crash", "--previous"]);
    assert_eq!(previous, "dying\n");

    assert_eq!(jsonpath(&server, "once", "{.status.phase}"), "Failed");
    assert_eq!(
        jsonpath(
            &server,
            "once",
            "{.status.containerStatuses[0].state.terminated.exitCode}"
        ),
        "3"
    );
    assert_eq!(
        jsonpath(
            &server,
            "once",
            "{.status.containerStatuses[0].state.terminated.reason}"
        ),
        "Error"
    );
    assert_eq!(
        jsonpath(&server, "once", "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
}

#[test]
fn limits_and_bad_specs_end_with_upstream_reasons_and_the_agent_goes_on() {
    let server = Server::start();
    let cgroups = eventually(Duration::from_secs(20), || {
        !server
            .kubectl_ok(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={.items[0].status.conditions[?(@.type==\"ResourceLimits\")].status}",
            ])
            .is_empty()
    });
    assert!(cgroups);
    let limited = server.kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.conditions[?(@.type==\"ResourceLimits\")].status}",
    ]) == "True";
    server.kubectl_ok(&["create", "configmap", "cm", "--from-literal=other=1"]);
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: python
    command: [python3, -c, 'x = bytearray(200 * 1024 * 1024); import time; time.sleep(30)']
    resources: {limits: {memory: 50Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: badkey}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo value=$X; sleep 3600']
    env: [{name: X, valueFrom: {configMapKeyRef: {name: cm, key: wanted}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: nosuch}
spec:
  containers:
  - name: c
    image: busybox
    command: [no-such-program-here]
---
apiVersion: v1
kind: Pod
metadata: {name: nocommand}
spec:
  containers:
  - name: c
    image: nginx
---
apiVersion: v1
kind: Pod
metadata: {name: fine}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, '3600']
",
    );
    let state = |pod: &str, field: &str| {
        jsonpath(
            &server,
            pod,
            &format!("{{.status.containerStatuses[0].state.{field}}}"),
        )
    };
    if limited {
        assert!(
            eventually(Duration::from_secs(30), || state("hog", "terminated.reason")
                == "OOMKilled"),
            "{}",
            state("hog", "terminated")
        );
        assert_eq!(state("hog", "terminated.exitCode"), "137");
    } else {
        eprintln!("cgroups unavailable on this host: the OOM case is not checked");
    }
    assert!(eventually(Duration::from_secs(20), || state(
        "badkey",
        "waiting.reason"
    ) == "CreateContainerConfigError"));
    assert_eq!(
        state("badkey", "waiting.message"),
        "couldn't find key wanted in ConfigMap default/cm"
    );
    // Generous: the whole suite runs beside this test.
    let start_error = eventually(Duration::from_secs(60), || {
        let last = jsonpath(
            &server,
            "nosuch",
            "{.status.containerStatuses[0].lastState.terminated.message}",
        );
        let now = state("nosuch", "terminated.message");
        format!("{last}{now}").contains("exec: \"no-such-program-here\": executable file not found in $PATH")
    });
    assert!(
        start_error,
        "{}\n{}",
        server.kubectl_ok(&[
            "get",
            "pod",
            "nosuch",
            "-o",
            "jsonpath={.spec.nodeName} {.status}"
        ]),
        server.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=nosuch"])
    );
    assert!(eventually(Duration::from_secs(20), || state(
        "nocommand",
        "waiting.reason"
    ) == "CreateContainerError"));
    assert!(state("nocommand", "waiting.message").contains("has no command"));
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nocommand",
    ]);
    assert!(
        events.contains("Warning") && events.contains("Failed"),
        "{events}"
    );

    // The agent went on: a healthy pod runs, and the missing key, once there, lets its pod start.
    assert!(eventually(Duration::from_secs(20), || jsonpath(
        &server,
        "fine",
        "{.status.phase}"
    ) == "Running"));
    server.kubectl_ok(&[
        "patch",
        "configmap",
        "cm",
        "-p",
        "{\"data\":{\"wanted\":\"yes\"}}",
    ]);
    assert!(
        eventually(Duration::from_secs(30), || jsonpath(
            &server,
            "badkey",
            "{.status.phase}"
        ) == "Running"),
        "{}",
        state("badkey", "waiting")
    );
    assert!(eventually(Duration::from_secs(10), || container_logs(
        &server.data_dir,
        "badkey",
        "c"
    )
    .contains("value=yes")));
}

#[test]
fn without_cgroups_containers_run_unlimited_and_the_node_says_so() {
    let server = Server::start_with(&["--cgroup-root", "/nonexistent/cgroup"]);
    let condition = || {
        server.kubectl_ok(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.conditions[?(@.type==\"ResourceLimits\")].reason}",
        ])
    };
    assert!(
        eventually(Duration::from_secs(20), || condition() == "CgroupsUnavailable"),
        "{}",
        condition()
    );
    let events = || server.kubectl_ok(&["get", "events", "--field-selector", "reason=CgroupsUnavailable"]);
    assert!(
        eventually(Duration::from_secs(20), || events()
            .contains("without resource limits")),
        "{}",
        events()
    );
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: limited}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, '3600']
    resources: {limits: {memory: 50Mi, cpu: 100m}}
",
    );
    assert!(eventually(Duration::from_secs(20), || jsonpath(
        &server,
        "limited",
        "{.status.phase}"
    ) == "Running"));
}

#[test]
fn environment_and_graceful_termination_follow_the_kubelet() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("prestop");
    let term = dir.path().join("term");
    server.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=level=3",
    ]);
    server.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ]);
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: envy, labels: {{tier: back}}}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: busybox
    workingDir: /tmp
    command: [sh, -c]
    args:
    - |
      env | sort; pwd
      trap 'echo term > {term}; exit 0' TERM
      while true; do sleep 0.1; done
    env:
    - {{name: MODE, valueFrom: {{configMapKeyRef: {{name: settings, key: mode}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    - {{name: TIER, valueFrom: {{fieldRef: {{fieldPath: \"metadata.labels['tier']\"}}}}}}
    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    - {{name: MEM_MI, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: GREETING, value: 'hello $(MODE) $$(MODE)'}}
    envFrom: [{{prefix: CFG_, configMapRef: {{name: settings}}}}]
    resources: {{limits: {{memory: 64Mi}}}}
    lifecycle: {{preStop: {{exec: {{command: [sh, -c, 'echo hook > {hook}']}}}}}}
",
            term = term.display(),
            hook = hook.display()
        ),
    );
    assert!(eventually(Duration::from_secs(20), || container_logs(
        &server.data_dir,
        "envy",
        "c"
    )
    .contains("/tmp")));
    let logs = container_logs(&server.data_dir, "envy", "c");
    let ip = jsonpath(&server, "envy", "{.status.podIP}");
    for expected in [
        "MODE=fast".to_string(),
        "PASSWORD=s3cret".into(),
        "TIER=back".into(),
        "MEM_MI=64".into(),
        "GREETING=hello fast $(MODE)".into(),
        "CFG_mode=fast".into(),
        "CFG_level=3".into(),
        format!("POD_IP={ip}"),
        "POD_NAME=envy".into(),
        "POD_NAMESPACE=default".into(),
    ] {
        assert!(logs.contains(&expected), "{expected} in {logs}");
    }
    let node = server.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    assert!(logs.contains(&format!("NODE={node}")), "{logs}");

    // Deleting runs the preStop hook, then SIGTERM; the shell's trap answers well within the grace.
    let started = std::time::Instant::now();
    server.kubectl_ok(&["delete", "pod", "envy", "--timeout=30s"]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read_to_string(&hook).unwrap_or_default().trim(), "hook");
    assert_eq!(std::fs::read_to_string(&term).unwrap_or_default().trim(), "term");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=envy,reason=Killing",
    ]);
    assert!(events.contains("Stopping container c"), "{events}");

    // A process that ignores SIGTERM is killed when the grace period ends.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'trap \"\" TERM; while true; do sleep 0.1; done']
",
    );
    assert!(eventually(Duration::from_secs(20), || jsonpath(
        &server,
        "stubborn",
        "{.status.phase}"
    ) == "Running"));
    let started = std::time::Instant::now();
    server.kubectl_ok(&["delete", "pod", "stubborn", "--timeout=30s"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[test]
fn a_killed_platform_adopts_its_running_containers_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let api = format!("127.0.0.1:{port}");
    let mut server = Server::start_in(dir.path(), &["--api-addr", &api]);
    let marker = format!("{}", 100_000 + std::process::id() % 800_000);
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata: {{name: sleepers}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: sleepers}}}}
  template:
    metadata: {{labels: {{app: sleepers}}}}
    spec:
      containers:
      - name: c
        image: busybox
        command: [sleep, '{marker}']
"
        ),
    );
    server.kubectl_ok(&["rollout", "status", "deployment/sleepers", "--timeout=60s"]);
    let needle = format!("sleep {marker}");
    assert!(eventually(Duration::from_secs(10), || processes(&needle).len() == 2));
    let before = processes(&needle);
    // Stopping the containers under a running platform is refused: its agent would restart them.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_glasshouse"))
        .args(["stop-containers", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop it first"));
    assert_eq!(processes(&needle), before);
    server.kill9();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(processes(&needle), before, "containers outlive the platform");

    let server = Server::start_in(dir.path(), &["--api-addr", &api]);
    server.kubectl_ok(&["rollout", "status", "deployment/sleepers", "--timeout=60s"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(processes(&needle), before, "adopted, not started again");
    let pods = server.kubectl_ok(&["get", "pods", "-o", "jsonpath={range .items[*]}{.status.phase} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}{\"\\n\"}{end}"]);
    assert_eq!(
        pods.trim().lines().collect::<Vec<_>>(),
        ["Running 0 true", "Running 0 true"],
        "{pods}"
    );

    // A container that ends while the platform is down is seen ended, and restarted, once.
    drop(server);
    assert!(eventually(Duration::from_secs(10), || processes(&needle).is_empty()));
    let server = Server::start_in(dir.path(), &["--api-addr", &api]);
    assert!(
        eventually(Duration::from_secs(30), || processes(&needle).len() == 2),
        "{:?}",
        processes(&needle)
    );
    let restarts = server.kubectl_ok(&[
        "get",
        "pods",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].restartCount}",
    ]);
    assert!(
        eventually(Duration::from_secs(20), || server.kubectl_ok(&[
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].status.containerStatuses[0].restartCount}"
        ]) == "1 1"),
        "{restarts}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(processes(&needle).len(), 2);
}
