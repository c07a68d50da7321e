//! What the end-to-end benchmarks share: starting `glasshouse up` (the release build) on loopback,
//! stopping the containers it leaves, and reading a process's memory. Each benchmark compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `glasshouse up`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub api: String,
    /// The metrics address's `/metrics` URL.
    pub metrics: String,
    pub token: String,
    pub ca: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server on a fresh data dir.
pub fn start(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_in(dir.path(), extra);
    server._dir = Some(dir);
    server
}

/// Starts a server on `data_dir`, which the caller keeps.
pub fn start_in(data_dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_glasshouse"))
        .args(["up", "--data-dir"])
        .arg(data_dir)
        .args(["--api-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("glasshouse starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut metrics) = (None, None);
    for line in stdout.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("api: ") {
            api = Some(url.to_string());
        }
        if let Some(url) = line.strip_prefix("metrics: ") {
            metrics = Some(url.to_string());
        }
        if line.starts_with("kubeconfig: ") {
            break;
        }
    }
    // Keep reading: a line printed later must not meet a closed pipe.
    std::thread::spawn(move || stdout.for_each(drop));
    let token = std::fs::read_to_string(data_dir.join("token"))
        .unwrap()
        .trim()
        .to_string();
    let ca = std::fs::read_to_string(data_dir.join("pki/ca.crt")).unwrap();
    Server {
        child,
        api: api.expect("the api line"),
        metrics: metrics.expect("the metrics line"),
        token,
        ca,
        _dir: None,
    }
}

impl Server {
    /// An HTTPS client that trusts the server's CA and keeps `connections` open.
    pub fn http(&self, connections: usize) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca.as_bytes()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// GETs `path` from the API as JSON.
    pub async fn get_json(&self, http: &reqwest::Client, path: &str) -> serde_json::Value {
        http.get(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// POSTs `object` to `path` on the API, which must accept it.
    pub async fn create(&self, http: &reqwest::Client, path: &str, object: &serde_json::Value) {
        http.post(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .json(object)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

/// Stops the containers a stopped server left running on `data_dir` and says how many.
pub fn stop_containers(data_dir: &Path) {
    let stopped = Command::new(env!("CARGO_BIN_EXE_glasshouse"))
        .args(["stop-containers", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    println!("cleanup: {}", String::from_utf8_lossy(&stopped.stdout).trim());
}

/// The resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}
