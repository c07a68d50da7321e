//! Log pipeline throughput and freshness, with its peer in the same run.
//!
//! 1. Ingest: 1,000,000 CRI lines in a container log file, indexed by the whole pipeline (tail → parse →
//!    enrich → index, committing positions every second) against raw tantivy indexing of the same lines
//!    with the same schema (documents built up front, one writer, one commit). Target: ≥ 80 % of raw.
//! 2. Write-to-searchable: a writer appends 50,000 lines/s for 20 s; every 100 ms the newest searchable
//!    line's time is compared with the clock. Target p99 ≤ 2 s.
//!
//! `cargo bench -p logpipe --bench ingest`

use std::io::Write;
use std::time::{Duration, Instant};

use logpipe::checkpoint::Checkpoint;
use logpipe::index::search::SearchRequest;
use logpipe::index::{Indexer, LogIndex};
use logpipe::record::LogLine;
use logpipe::tailer::Batch;
use logpipe::telemetry::Telemetry;
use logpipe::{LogPipeConfig, LogPipeContext};

const LINES: usize = 1_000_000;

fn message(n: usize) -> String {
    let level = ["INFO", "WARN", "ERROR", "DEBUG"][n % 4];
    format!(
        "{level} request id={n} path=/api/v1/items/{} status=200 took={}ms",
        n % 977,
        n % 250
    )
}

fn cri_line(t: jiff::Timestamp, n: usize) -> String {
    format!(
        "{} stdout F {}\n",
        t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        message(n)
    )
}

fn total(index: &LogIndex) -> usize {
    index
        .search(&SearchRequest {
            limit: 1,
            ..Default::default()
        })
        .map(|r| r.total)
        .unwrap_or(0)
}

fn raw(dir: &std::path::Path, start: jiff::Timestamp) -> f64 {
    let index = LogIndex::open(dir).unwrap();
    let mut indexer = Indexer::new(
        index.clone(),
        Checkpoint::default(),
        Telemetry::default(),
        Duration::from_secs(3600),
    )
    .unwrap();
    let lines: Vec<LogLine> = (0..LINES)
        .map(|n| LogLine {
            timestamp: start + jiff::SignedDuration::from_micros(n as i64),
            message: message(n),
            stream: "stdout".into(),
            level: ["info", "warn", "error", "debug"][n % 4].into(),
            namespace: "default".into(),
            pod: "bench".into(),
            container: "c".into(),
            node: "n".into(),
            source: "/bench/0.log".into(),
            attributes: Default::default(),
            dedup_key: None,
        })
        .collect();
    let started = Instant::now();
    for chunk in lines.chunks(2000) {
        indexer
            .add(Batch {
                lines: chunk.to_vec(),
                ..Batch::default()
            })
            .unwrap();
    }
    indexer.commit().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(total(&index), LINES);
    LINES as f64 / elapsed
}

fn pipeline(dir: &std::path::Path, start: jiff::Timestamp) -> f64 {
    let pods = dir.join("pods");
    let file = pods.join("default_bench_uid/c/0.log");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for n in 0..LINES {
        out.write_all(cri_line(start + jiff::SignedDuration::from_micros(n as i64), n).as_bytes())
            .unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let mut registry = prometheus_client::registry::Registry::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let pipe = LogPipeConfig::new(dir.join("index"), pods, "n".into())
        .build(LogPipeContext {
            registry: &mut registry,
            shutdown: shutdown.clone(),
        })
        .unwrap();
    while total(&pipe.index) < LINES {
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    pipe.join();
    LINES as f64 / elapsed
}

fn freshness(dir: &std::path::Path) -> (f64, f64, usize) {
    let pods = dir.join("pods");
    let file = pods.join("default_fresh_uid/c/0.log");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "").unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let pipe = LogPipeConfig::new(dir.join("index"), pods, "n".into())
        .build(LogPipeContext {
            registry: &mut registry,
            shutdown: shutdown.clone(),
        })
        .unwrap();
    let writer = std::thread::spawn(move || {
        let mut out = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        let started = Instant::now();
        let mut written = 0usize;
        // 50,000 lines/s in 10 ms steps of 500 lines, for 20 s.
        while started.elapsed() < Duration::from_secs(20) {
            let due = (started.elapsed().as_secs_f64() * 50_000.0) as usize;
            let mut chunk = String::new();
            while written < due {
                chunk.push_str(&cri_line(jiff::Timestamp::now(), written));
                written += 1;
            }
            out.write_all(chunk.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        written
    });
    let mut lags = Vec::new();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(page) = pipe.index.search(&SearchRequest {
            limit: 1,
            ..Default::default()
        }) && let Some(newest) = page.hits.first()
        {
            lags.push(
                jiff::Timestamp::now()
                    .duration_since(newest.line.timestamp)
                    .as_secs_f64(),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let written = writer.join().unwrap();
    shutdown.cancel();
    pipe.join();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.99), written)
}

fn main() {
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    println!(
        "ingest of {LINES} CRI lines (about 100 bytes each), three rounds, raw and pipeline alternating:"
    );
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let raw_dir = tempfile::tempdir().unwrap();
        let raw_rate = raw(raw_dir.path(), start);
        drop(raw_dir);
        let pipe_dir = tempfile::tempdir().unwrap();
        let pipe_rate = pipeline(pipe_dir.path(), start);
        drop(pipe_dir);
        ratios.push(pipe_rate / raw_rate);
        println!(
            "  round {round}: raw tantivy (same schema, one commit) {raw_rate:.0} lines/s; whole pipeline (tail, parse, \
             enrich, index, positions committed each second) {pipe_rate:.0} lines/s; pipeline / raw {:.0} %",
            pipe_rate / raw_rate * 100.0
        );
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("  median pipeline / raw: {:.0} %", ratios[1] * 100.0);
    let fresh_dir = tempfile::tempdir().unwrap();
    let (p50, p99, written) = freshness(fresh_dir.path());
    println!(
        "write-to-searchable at 50,000 lines/s for 20 s ({written} lines): p50 {:.0} ms, p99 {:.0} ms",
        p50 * 1000.0,
        p99 * 1000.0
    );
}
