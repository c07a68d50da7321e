//! Resource usage as the kubelet serves it: a container that burns CPU shows it on `/metrics/resource`
//! (and `/metrics/cadvisor`), read from its cgroups, or from procfs when there are none.

use std::time::Duration;

use crate::support::{Server, eventually};

fn get(server: &Server, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-fsS", &format!("{}/{path}", server.metrics)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the first series of `name` whose labels contain `labels`.
fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .find_map(|l| l.rsplit_once('}')?.1.split_whitespace().next()?.parse().ok())
}

fn burn_and_measure(server: &Server) {
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: burner}\nspec:\n  containers:\n  - name: spin\n    image: busybox\n    command: [sh, -c, 'while :; do :; done']\n",
    );
    let labels = "container=\"spin\",namespace=\"default\",pod=\"burner\"";
    let cpu = || {
        value(
            &get(server, "resource"),
            "container_cpu_usage_seconds_total",
            labels,
        )
    };
    assert!(
        eventually(Duration::from_secs(30), || cpu().is_some_and(|c| c > 0.2)),
        "{}",
        get(server, "resource")
    );
    let before = cpu().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let after = cpu().unwrap();
    // A busy loop on a 2-core machine shared with other tests: most of a core.
    assert!(after - before > 2.0, "{before} → {after}");
    let resource = get(server, "resource");
    assert!(
        value(&resource, "container_memory_working_set_bytes", labels).is_some_and(|m| m > 0.0),
        "{resource}"
    );
    assert!(
        value(&resource, "pod_cpu_usage_seconds_total", "pod=\"burner\"").is_some(),
        "{resource}"
    );
    assert!(
        resource
            .lines()
            .any(|l| l.starts_with("node_cpu_usage_seconds_total ")),
        "{resource}"
    );
    assert!(
        resource
            .lines()
            .any(|l| l.starts_with("node_memory_working_set_bytes ")),
        "{resource}"
    );
    let cadvisor = get(server, "cadvisor");
    assert!(
        cadvisor.lines().any(|l| l.starts_with("container_memory_rss{")
            && l.contains("image=\"busybox\"")
            && l.contains("pod=\"burner\"")),
        "{cadvisor}"
    );
    // Gone with its pod.
    server.kubectl_ok(&["delete", "pod", "burner", "--grace-period=1"]);
    assert!(eventually(Duration::from_secs(30), || cpu().is_none()));
}

#[test]
fn a_busy_container_shows_its_cpu_and_memory_from_its_cgroups() {
    let server = Server::start();
    burn_and_measure(&server);
}

#[test]
fn without_cgroups_usage_comes_from_procfs() {
    let server = Server::start_with(&["--cgroup-root", "/nonexistent/cgroup"]);
    burn_and_measure(&server);
}

#[test]
fn kubectl_top_reports_a_half_core_pod_and_the_node() {
    let server = Server::start();
    // A busy loop held to half a core by its CPU limit (CFS quota).
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: half, labels: {app: burn}}\nspec:\n  containers:\n  - name: spin\n    image: busybox\n    command: [sh, -c, 'while :; do :; done']\n    resources: {limits: {cpu: 500m, memory: 64Mi}}\n",
    );
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: idle, labels: {app: idle}}\nspec:\n  containers:\n  - name: sleep\n    image: busybox\n    command: [sleep, '3600']\n",
    );
    let top = || server.kubectl(&["top", "pod", "--no-headers"]);
    assert!(
        eventually(Duration::from_secs(30), || {
            let out = top();
            let text = String::from_utf8_lossy(&out.stdout);
            out.status.success() && text.contains("half") && text.contains("idle")
        }),
        "{:?}",
        top()
    );
    // Let the window settle on the steady state, then read it a few times.
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..3 {
        let out = server.kubectl_ok(&["top", "pod", "half", "--no-headers"]);
        let millicores: u32 = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.strip_suffix('m'))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert!((450..=550).contains(&millicores), "{out}");
        std::thread::sleep(Duration::from_secs(1));
    }
    // Memory against the cgroup's own numbers (usage less inactive file pages).
    let uid = server.kubectl_ok(&["get", "pod", "half", "-o", "jsonpath={.metadata.uid}"]);
    let id = server.kubectl_ok(&[
        "get",
        "pod",
        "half",
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
    ]);
    let dir = format!(
        "/sys/fs/cgroup/memory/glasshouse/pod{uid}/{}",
        id.trim_start_matches("glasshouse://")
    );
    let usage: f64 = std::fs::read_to_string(format!("{dir}/memory.usage_in_bytes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let inactive: f64 = std::fs::read_to_string(format!("{dir}/memory.stat"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("total_inactive_file "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let truth_kib = (usage - inactive) / 1024.0;
    let raw = server.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/half",
    ]);
    let metrics: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(metrics["kind"], "PodMetrics", "{raw}");
    let memory = metrics["containers"][0]["usage"]["memory"]
        .as_str()
        .unwrap()
        .to_string();
    let reported_kib: f64 = if let Some(k) = memory.strip_suffix("Ki") {
        k.parse().unwrap()
    } else if let Some(m) = memory.strip_suffix("Mi") {
        m.parse::<f64>().unwrap() * 1024.0
    } else {
        memory.parse::<f64>().unwrap() / 1024.0
    };
    // `memory.usage_in_bytes` is itself approximate: each CPU caches up to 64 pages of charges
    // (`MEMCG_CHARGE_BATCH`), so two reads a moment apart may differ by 256 KiB a CPU whatever the
    // process does.
    // (Counted for two CPUs at most: the spinning shell runs on one, its agent's reads on another.)
    let fuzz_kib = 256.0 * std::thread::available_parallelism().map_or(2, |n| n.get().min(2)) as f64;
    assert!(
        (reported_kib - truth_kib).abs() <= truth_kib * 0.1 + fuzz_kib,
        "{memory} against {truth_kib} KiB"
    );

    let sorted = server.kubectl_ok(&["top", "pod", "--sort-by=cpu", "--no-headers"]);
    assert!(sorted.trim_start().starts_with("half"), "{sorted}");
    let selected = server.kubectl_ok(&["top", "pod", "-l", "app=idle", "--containers", "--no-headers"]);
    assert!(
        selected.contains("idle") && selected.contains("sleep") && !selected.contains("half"),
        "{selected}"
    );
    let node = server.kubectl_ok(&["top", "node", "--no-headers"]);
    assert!(
        node.split_whitespace().count() >= 5 && node.contains('%'),
        "{node}"
    );
    let missing = server.kubectl_err(&["top", "pod", "nonexistent"], None);
    assert!(missing.contains("not found"), "{missing}");
}
