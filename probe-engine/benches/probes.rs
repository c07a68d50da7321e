//! The probe engine at scale, on ONE core: 10,000 `httpGet` probes, then 10,000 `tcpSocket` probes, at
//! `periodSeconds: 1` against nginx on the other core; spurious failures, lateness of probe starts
//! against their schedule, CPU-seconds per 1,000 probes, and the sockets left in TIME-WAIT. The peer,
//! in the same run: prometheus-blackbox-exporter pinned to the same core, driven by wrk as fast as it
//! answers, with its CPU time read the same way; both give probes per CPU-second.
//!
//! Needs nginx, prometheus-blackbox-exporter and wrk (Debian packages; `scripts/bench.sh` installs
//! them). Run: `cargo bench -p probe-engine --bench probes`.

use std::future::Future;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use probe_engine::handlers::{Attempted, ExecRunner, Handlers};
use probe_engine::spec::{Handler, Params, ProbeSpec, ProbeType};
use probe_engine::{AttemptRecord, Observer, Outcome, Run, Worker};

const PROBES: usize = 10_000;
const WARMUP: Duration = Duration::from_secs(3);
const MEASURE: Duration = Duration::from_secs(20);
const ENGINE_CORE: &str = "0";
const TARGET_CORE: &str = "1";

fn main() {
    // The whole engine on one core: this process runs again under taskset.
    if std::env::var_os("PROBE_BENCH_PINNED").is_none() {
        let status = Command::new("taskset")
            .args(["-c", ENGINE_CORE])
            .arg(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .env("PROBE_BENCH_PINNED", "1")
            .status()
            .expect("taskset runs");
        std::process::exit(status.code().unwrap_or(1));
    }
    let dir = tempfile::tempdir().unwrap();
    let nginx_port = free_port();
    let _nginx = Kill(nginx(dir.path(), nginx_port));
    wait_for_port(nginx_port);
    println!(
        "{PROBES} probes at periodSeconds 1 on one core (taskset -c {ENGINE_CORE}); target: nginx on core {TARGET_CORE}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = Handler::Http {
        scheme: probe_engine::Scheme::Http,
        host: "127.0.0.1".into(),
        port: nginx_port,
        path: "/healthz".into(),
        headers: vec![],
    };
    let tcp = Handler::Tcp {
        host: "127.0.0.1".into(),
        port: nginx_port,
    };
    let mut engine = Vec::new();
    for (name, handler) in [("httpGet", http), ("tcpSocket", tcp)] {
        let figures = runtime.block_on(engine_round(handler));
        println!(
            "engine {name}: {:.0} probes/s, {} failed; lateness of probe starts p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             {:.3} CPU-s per 1,000 probes ({:.0} probes per CPU-second, {:.0} % in user space); sockets in TIME-WAIT at the end: {}",
            figures.rate,
            figures.failed,
            figures.lateness_ms.0,
            figures.lateness_ms.1,
            figures.lateness_ms.2,
            1000.0 / figures.per_cpu_second,
            figures.per_cpu_second,
            figures.user_share * 100.0,
            time_wait(nginx_port)
        );
        engine.push((name, figures.per_cpu_second));
        std::thread::sleep(Duration::from_secs(2));
    }
    let blackbox_port = free_port();
    let config = dir.path().join("blackbox.yml");
    std::fs::write(
        &config,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 1s\n    http:\n      preferred_ip_protocol: ip4\n  tcp_connect:\n    prober: tcp\n    timeout: 1s\n    tcp:\n      preferred_ip_protocol: ip4\n",
    )
    .unwrap();
    let blackbox = Kill(
        Command::new("taskset")
            .args(["-c", ENGINE_CORE, "prometheus-blackbox-exporter"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{blackbox_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-blackbox-exporter runs"),
    );
    wait_for_port(blackbox_port);
    for ((name, engine_rate), (module, target)) in engine.iter().zip([
        ("http_2xx", format!("http://127.0.0.1:{nginx_port}/healthz")),
        ("tcp_connect", format!("127.0.0.1:{nginx_port}")),
    ]) {
        let url = format!("http://127.0.0.1:{blackbox_port}/probe?module={module}&target={target}");
        let cpu_before = cpu_seconds(blackbox.0.id());
        let output = Command::new("taskset")
            .args(["-c", TARGET_CORE, "wrk", "-t1", "-c32", "-d20s", &url])
            .output()
            .expect("wrk runs");
        let cpu = cpu_seconds(blackbox.0.id()) - cpu_before;
        let text = String::from_utf8_lossy(&output.stdout);
        let requests: f64 = text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let per_cpu = requests / cpu.max(0.01);
        println!(
            "blackbox_exporter {module} (pinned to core {ENGINE_CORE}, wrk -c32 for 20 s): {:.0} probes/s, {per_cpu:.0} probes per CPU-second; engine {name} / blackbox: {:.1}x",
            requests / 20.0,
            engine_rate / per_cpu
        );
    }
}

struct Figures {
    rate: f64,
    failed: u64,
    /// p50, p99, max.
    lateness_ms: (f64, f64, f64),
    per_cpu_second: f64,
    /// Of the CPU time, the part in user space (the rest is the kernel's: sockets, TCP on loopback).
    user_share: f64,
}

/// Counts attempts and failures, and how late each attempt began against its worker's schedule (its
/// first attempt, then one period apart).
struct Count {
    attempts: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    lateness: Arc<Mutex<Vec<f64>>>,
    measuring: Arc<std::sync::atomic::AtomicBool>,
    schedule: Mutex<Option<(SystemTime, u32)>>,
}

impl Observer for Count {
    fn attempt(&self, record: &AttemptRecord) {
        let mut schedule = self.schedule.lock().unwrap();
        let (first, n) = schedule.get_or_insert((record.time, 0));
        let due = *first + Duration::from_secs(u64::from(*n));
        *n += 1;
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if !matches!(record.outcome, Ok((Outcome::Success, _))) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let late = record.time.duration_since(due).unwrap_or_default();
        self.lateness.lock().unwrap().push(late.as_secs_f64() * 1000.0);
    }
}

struct NoExec;

impl ExecRunner for NoExec {
    fn exec<'a>(
        &'a self,
        _: &'a [String],
        _: Duration,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>> {
        Box::pin(async { Err("no exec in this benchmark".into()) })
    }
}

async fn engine_round(handler: Handler) -> Figures {
    let attempts = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let lateness = Arc::new(Mutex::new(Vec::new()));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runner = Arc::new(Handlers {
        exec: Arc::new(NoExec),
    });
    let spec = ProbeSpec {
        probe_type: ProbeType::Readiness,
        params: Params {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
            termination_grace_period: None,
        },
        handler,
    };
    // Spread over the first period (as containers that started at different times are).
    let workers: Vec<Worker> = (0..PROBES)
        .map(|_| {
            Worker::spawn(
                spec.clone(),
                Run {
                    started_at: tokio::time::Instant::now(),
                    started: None,
                    jitter: true,
                    initial: None,
                },
                runner.clone(),
                Arc::new(Count {
                    attempts: attempts.clone(),
                    failed: failed.clone(),
                    lateness: lateness.clone(),
                    measuring: measuring.clone(),
                    schedule: Mutex::new(None),
                }),
            )
        })
        .collect();
    tokio::time::sleep(WARMUP).await;
    let cpu_before = cpu_split(std::process::id());
    let started = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(MEASURE).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_split(std::process::id());
    let (user, system) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let cpu = user + system;
    drop(workers);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let attempts = attempts.load(Ordering::Relaxed) as f64;
    let mut late = std::mem::take(&mut *lateness.lock().unwrap());
    late.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        late.get(((late.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Figures {
        rate: attempts / elapsed,
        failed: failed.load(Ordering::Relaxed),
        lateness_ms: (at(0.5), at(0.99), late.last().copied().unwrap_or(0.0)),
        per_cpu_second: attempts / cpu.max(0.01),
        user_share: user / cpu.max(0.01),
    }
}

/// User + system CPU time of a process, from `/proc/<pid>/stat` (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    let (user, system) = cpu_split(pid);
    user + system
}

/// User and system CPU time of a process.
fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command: state is field 0, utime field 11, stime field 12.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// Sockets in TIME-WAIT to or from `port`.
fn time_wait(port: u16) -> usize {
    let out = Command::new("ss")
        .args(["-tan", "state", "time-wait"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines().filter(|l| l.contains(&format!(":{port} "))).count()
}

fn nginx(dir: &std::path::Path, port: u16) -> Child {
    let config = dir.join("nginx.conf");
    std::fs::write(
        &config,
        format!(
            "worker_processes 1;\nworker_rlimit_nofile 65536;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{ worker_connections 16384; }}\n\
             http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; \
             uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
             server {{ listen 127.0.0.1:{port} backlog=16384; location / {{ return 200 \"ok\"; }} }} }}\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    Command::new("taskset")
        .args(["-c", TARGET_CORE, "nginx", "-c"])
        .arg(&config)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs")
}

/// A process stopped when dropped: SIGTERM (nginx's master then stops its workers), waited for.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}
