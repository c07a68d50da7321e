//! Hostile targets never delay other probes and never grow memory without bound: workers probing
//! servers that never answer, drip their answer a byte at a time, send an endless body, reset, or never
//! accept (a full backlog) run beside workers probing a healthy server, on one thread; the healthy
//! probes keep their schedule and all pass, and the process's memory stays flat.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use probe_engine::handlers::{Attempted, ExecRunner, Handlers};
use probe_engine::spec::{Handler, Params, ProbeSpec, ProbeType, Scheme};
use probe_engine::{AttemptRecord, Observer, Outcome, Run, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Healthy,
    Silent,
    Drip,
    Endless,
    Reset,
}

async fn serve(kind: Kind) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                if kind != Kind::Silent {
                    let _ = socket.read(&mut buf).await;
                }
                match kind {
                    Kind::Healthy => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                            .await;
                    }
                    Kind::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
                    Kind::Drip => {
                        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                            .iter()
                            .cycle()
                        {
                            if socket.write_all(&[*byte]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Kind::Endless => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .await;
                        let chunk = format!("1000\r\n{}\r\n", "z".repeat(4096));
                        while socket.write_all(chunk.as_bytes()).await.is_ok() {}
                    }
                    Kind::Reset => {
                        let _ = socket.set_zero_linger();
                    }
                }
            });
        }
    });
    port
}

/// A port whose backlog is full and never drained: connections to it never complete.
async fn never_accepting() -> (u16, tokio::net::TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut held = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            held.push(stream);
        }
    }
    (port, listener, held)
}

struct NoExec;

impl ExecRunner for NoExec {
    fn exec<'a>(
        &'a self,
        _: &'a [String],
        _: Duration,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>> {
        Box::pin(async { Err("no exec here".into()) })
    }
}

/// The healthy workers' attempts: outcome and lateness against their schedule.
#[derive(Default)]
struct Healthy {
    schedule: Mutex<Option<(SystemTime, u32)>>,
    seen: Arc<Mutex<Vec<(bool, f64)>>>,
}

impl Observer for Healthy {
    fn attempt(&self, record: &AttemptRecord) {
        let mut schedule = self.schedule.lock().unwrap();
        let (first, n) = schedule.get_or_insert((record.time, 0));
        let due = *first + Duration::from_secs(u64::from(*n));
        *n += 1;
        let late = record.time.duration_since(due).unwrap_or_default().as_secs_f64() * 1000.0;
        let ok = matches!(record.outcome, Ok((Outcome::Success, _)));
        self.seen.lock().unwrap().push((ok, late));
    }
}

struct Ignore;

impl Observer for Ignore {
    fn attempt(&self, _: &AttemptRecord) {}
}

fn spec(port: u16, http: bool) -> ProbeSpec {
    ProbeSpec {
        probe_type: ProbeType::Liveness,
        params: Params {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 1_000_000,
            termination_grace_period: None,
        },
        handler: if http {
            Handler::Http {
                scheme: Scheme::Http,
                host: "127.0.0.1".into(),
                port,
                path: "/".into(),
                headers: vec![],
            }
        } else {
            Handler::Tcp {
                host: "127.0.0.1".into(),
                port,
            }
        },
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_targets_delay_no_other_probe_and_memory_stays_flat() {
    let runner = Arc::new(Handlers {
        exec: Arc::new(NoExec),
    });
    let run = || Run {
        started_at: tokio::time::Instant::now(),
        started: None,
        jitter: true,
        initial: None,
    };
    let mut workers = Vec::new();
    for kind in [Kind::Silent, Kind::Drip, Kind::Endless, Kind::Reset] {
        let port = serve(kind).await;
        for _ in 0..100 {
            workers.push(Worker::spawn(
                spec(port, true),
                run(),
                runner.clone(),
                Arc::new(Ignore),
            ));
        }
    }
    let (full, _listener, _held) = never_accepting().await;
    for http in [true, false] {
        for _ in 0..100 {
            workers.push(Worker::spawn(
                spec(full, http),
                run(),
                runner.clone(),
                Arc::new(Ignore),
            ));
        }
    }
    let healthy = serve(Kind::Healthy).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..50 {
        let observer = Arc::new(Healthy {
            seen: seen.clone(),
            ..Healthy::default()
        });
        workers.push(Worker::spawn(
            spec(healthy, true),
            run(),
            runner.clone(),
            observer,
        ));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let rss_before = rss_kib();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let rss_after = rss_kib();
    let seen = seen.lock().unwrap().clone();
    let failed = seen.iter().filter(|(ok, _)| !ok).count();
    let mut late: Vec<f64> = seen.iter().map(|(_, l)| *l).collect();
    late.sort_by(|a, b| a.total_cmp(b));
    let p99 = late[(late.len() - 1) * 99 / 100];
    eprintln!(
        "healthy probes: {} attempts, {failed} failed, p99 lateness {p99:.1} ms; RSS {rss_before} -> {rss_after} KiB",
        seen.len()
    );
    assert!(seen.len() > 50 * 10, "{} healthy attempts", seen.len());
    assert_eq!(failed, 0, "healthy probes failed beside hostile ones");
    // Generous for a debug build on a shared machine: the point is that hostile targets add no delay
    // of their own (each probe has its own timeout and nothing waits on another).
    assert!(p99 < 100.0, "healthy probes started {p99:.1} ms late (p99)");
    assert!(
        rss_after < rss_before + 20 * 1024,
        "memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    drop(workers);
}
