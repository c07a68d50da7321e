//! Starting the binary on a temporary data dir with free ports, and talking to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `glasshouse up`, stopped (SIGKILL, then `glasshouse stop-containers`) when dropped.
pub struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub api: String,
    pub metrics: String,
    pub kubeconfig: PathBuf,
    pub token: String,
    pub ca_pem: String,
    cache_dir: tempfile::TempDir,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a fresh data dir.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts a server on a fresh data dir with extra arguments.
    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("a temporary data dir");
        let mut server = Self::start_in(dir.path(), extra);
        server._dir = Some(dir);
        server
    }

    /// Starts a server on a fresh data dir with extra arguments and environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("a temporary data dir");
        let mut server = Self::start_in_env(dir.path(), extra, env);
        server._dir = Some(dir);
        server
    }

    /// Starts a server on an existing data dir (which the caller keeps). `extra` may name an
    /// `--api-addr`; the default is a free port.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_in_env(data_dir, extra, &[])
    }

    fn start_in_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let api_addr: &[&str] = if extra.contains(&"--api-addr") {
            &[]
        } else {
            &["--api-addr", "127.0.0.1:0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_glasshouse"))
            .args(["up", "--data-dir"])
            .arg(data_dir)
            .args(api_addr)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("GLASSHOUSE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the glasshouse binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let (mut api, mut metrics, mut kubeconfig) = (None, None, None);
        while api.is_none() || metrics.is_none() || kubeconfig.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("glasshouse prints its addresses within 60s");
            if let Some(v) = line.strip_prefix("api: ") {
                api = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("metrics: ") {
                metrics = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("kubeconfig: ") {
                kubeconfig = Some(PathBuf::from(v));
            }
        }
        let token = std::fs::read_to_string(data_dir.join("token"))
            .expect("token")
            .trim()
            .to_string();
        let ca_pem = std::fs::read_to_string(data_dir.join("pki/ca.crt")).expect("CA certificate");
        Server {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            api: api.expect("api line"),
            metrics: metrics.expect("metrics line"),
            kubeconfig: kubeconfig.expect("kubeconfig line"),
            token,
            ca_pem,
            cache_dir: tempfile::tempdir().expect("a kubectl cache dir"),
            _dir: None,
        }
    }

    /// Runs kubectl against this server with its own discovery cache; fails the test after 60s.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut child = self
            .kubectl_command(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs (is it installed?)");
        if let Some(input) = input {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(input.as_bytes())
                .expect("kubectl stdin");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// A kubectl command for this server (for callers that stream its output).
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("timeout");
        command
            .arg("60")
            .arg("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.cache_dir.path());
        command
    }

    /// Runs kubectl and returns its stdout, failing the test on a non-zero exit.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl with `input` on stdin, failing the test on a non-zero exit.
    pub fn kubectl_ok_input(&self, args: &[&str], input: &str) -> String {
        let output = self.kubectl_with_input(args, Some(input));
        assert!(
            output.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl expecting failure, and returns its stderr.
    pub fn kubectl_err(&self, args: &[&str], input: Option<&str>) -> String {
        let output = self.kubectl_with_input(args, input);
        assert!(
            !output.status.success(),
            "kubectl {} should have failed",
            args.join(" ")
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// An HTTPS client that trusts the server's CA (no token: tests add it where they want it).
    pub fn http(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA PEM");
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client")
    }

    /// The Prometheus exposition of the metrics address.
    pub fn scrape(&self) -> String {
        let output = Command::new("curl")
            .args(["-fsS", "--max-time", "30", &self.metrics])
            .output()
            .expect("curl runs");
        assert!(output.status.success(), "scraping {} failed", self.metrics);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A kube-rs client from the generated kubeconfig.
    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig parses");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig is usable");
        kube::Client::try_from(config).expect("a kube client")
    }

    /// Kills the server with SIGKILL and waits for it to go.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGTERM and returns how it exited.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("glasshouse did not stop within 10s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        // Containers outlive the agent by design; a test leaves none behind. (Refused, quietly, when a
        // later server of the test runs on the same data dir: that one's drop stops them.)
        let _ = Command::new(env!("CARGO_BIN_EXE_glasshouse"))
            .args(["stop-containers", "--data-dir"])
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `glasshouse up` on a fresh data dir with `extra` arguments, expecting it to refuse to start;
/// returns what it said on stderr.
pub fn refused_start(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("a temporary data dir");
    let output = Command::new(env!("CARGO_BIN_EXE_glasshouse"))
        .args(["up", "--data-dir"])
        .arg(dir.path())
        .args(["--api-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .args(extra)
        .output()
        .expect("the glasshouse binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "glasshouse started with {extra:?}: {stderr}"
    );
    stderr
}

/// A loopback port that was free a moment ago, for a server that must come back on the same address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

pub const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        command: [sleep, \"3600\"]
";

/// A helper process (a Prometheus, say) killed and reaped when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
