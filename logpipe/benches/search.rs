//! Search over 10,000,000 lines, and the pipeline's peak memory while it ingests them.
//!
//! A container log file of 10,000,000 CRI lines is ingested by the whole pipeline (as `glasshouse up`
//! runs it), the process's peak RSS (VmHWM) is read, then queries run 50 times each: a term query, a
//! phrase query, and a one-hour histogram, all newest-first with their totals. Targets: term query p99
//! ≤ 100 ms; peak RSS ≤ 300 MB. The peer, in the same run: the same term query as a bare tantivy
//! `TopDocs` by score with a `Count` (no time ordering).
//!
//! `cargo bench -p logpipe --bench search` (needs about 2 GB of disk in the temp dir).

use std::io::Write;
use std::time::{Duration, Instant};

use logpipe::index::search::SearchRequest;
use logpipe::{LogPipeConfig, LogPipeContext};

const LINES: usize = 10_000_000;
const RUNS: usize = 50;

fn message(n: usize) -> String {
    let level = ["INFO", "WARN", "ERROR", "DEBUG"][n % 4];
    format!(
        "{level} request id={n} user=u{} path=/api/v1/items/{} status=200 took={}ms",
        n % 5000,
        n % 977,
        n % 250
    )
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The largest anonymous and file-backed resident sizes seen while `until` is false, sampled every 50 ms.
fn sample_rss(until: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<(f64, f64)> {
    std::thread::spawn(move || {
        let (mut anon, mut file) = (0.0f64, 0.0f64);
        while !until.load(std::sync::atomic::Ordering::Relaxed) {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
                    / 1024.0
            };
            anon = anon.max(field("RssAnon:"));
            file = file.max(field("RssFile:"));
            std::thread::sleep(Duration::from_millis(50));
        }
        (anon, file)
    })
}

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] * 1000.0;
    (p(0.5), p(0.99))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let file = pods.join("default_bench_uid/c/0.log");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // One line every 360 µs: the 10 M lines span the hour before now.
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for n in 0..LINES {
            let t = start + jiff::SignedDuration::from_micros(n as i64 * 360);
            writeln!(
                out,
                "{} stdout F {}",
                t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                message(n)
            )
            .unwrap();
        }
    }
    let before = peak_rss_mib();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_rss(done.clone());
    let mut registry = prometheus_client::registry::Registry::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let pipe = LogPipeConfig::new(dir.path().join("index"), pods, "n".into())
        .build(LogPipeContext {
            registry: &mut registry,
            shutdown: shutdown.clone(),
        })
        .unwrap();
    let index = pipe.index.clone();
    loop {
        let total = index
            .search(&SearchRequest {
                limit: 1,
                ..Default::default()
            })
            .unwrap()
            .total;
        if total >= LINES {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ingest = started.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (anon, file) = sampler.join().unwrap();
    println!(
        "ingested {LINES} lines in {ingest:.1} s ({:.0} lines/s); peak RSS {peak:.0} MiB (before: {before:.0} MiB; \
         largest anonymous {anon:.0} MiB, largest file-backed, i.e. mapped index files, {file:.0} MiB)",
        LINES as f64 / ingest
    );

    let time = |f: &dyn Fn()| {
        let samples: Vec<f64> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect();
        percentiles(samples)
    };
    let term = SearchRequest {
        query: "u4242".into(),
        limit: 100,
        ..Default::default()
    };
    let hits = index.search(&term).unwrap().total;
    let (p50, p99) = time(&|| {
        index.search(&term).unwrap();
    });
    println!("term query (u4242, {hits} hits, newest 100 + total): p50 {p50:.1} ms, p99 {p99:.1} ms");
    let phrase = SearchRequest {
        query: "\"items 42 status\"".into(),
        limit: 100,
        ..Default::default()
    };
    let hits = index.search(&phrase).unwrap().total;
    let (p50, p99) = time(&|| {
        index.search(&phrase).unwrap();
    });
    println!("phrase query (\"items 42 status\", {hits} hits): p50 {p50:.1} ms, p99 {p99:.1} ms");
    let range = SearchRequest {
        query: "error".into(),
        start: Some(start),
        end: Some(start + jiff::SignedDuration::from_hours(1)),
        ..Default::default()
    };
    let (p50, p99) = time(&|| {
        index.histogram(&range, Duration::from_secs(60)).unwrap();
    });
    println!(
        "histogram (error, 1 h in 1 min buckets, {} hits): p50 {p50:.1} ms, p99 {p99:.1} ms",
        LINES / 4
    );

    // The peer: bare tantivy, the same term, by score, with a count.
    let query = index.query_parser().parse_query("u4242").unwrap();
    let partitions = index.partitions();
    let (p50, p99) = time(&|| {
        for partition in &partitions {
            partition
                .reader
                .searcher()
                .search(
                    &query,
                    &(
                        tantivy::collector::TopDocs::with_limit(100).order_by_score(),
                        tantivy::collector::Count,
                    ),
                )
                .unwrap();
        }
    });
    println!("peer: bare tantivy TopDocs(100) by score + Count, same term: p50 {p50:.1} ms, p99 {p99:.1} ms");
    shutdown.cancel();
    pipe.join();
}
