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
