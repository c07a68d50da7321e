//! Search correctness: a generated corpus with known counts per term, phrase, field value and time
//! bucket, spread over several time partitions, asked through the search API. Every count must be exact,
//! and paging must neither repeat nor skip a line.

use std::collections::{BTreeMap, BTreeSet};

use http_body_util::BodyExt;
use logpipe::checkpoint::Checkpoint;
use logpipe::index::{Indexer, LogIndex};
use logpipe::record::LogLine;
use logpipe::tailer::Batch;
use logpipe::telemetry::Telemetry;
use serde_json::Value;
use tower::ServiceExt;

const LINES: usize = 30_000;
/// 3 hours of lines: four hourly partitions at most.
const STEP_MS: i64 = 360;
const PODS: [&str; 7] = ["web-0", "web-1", "web-2", "api-0", "api-1", "db-0", "cron-0"];
const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];

/// A small deterministic generator (numbers drawn the same way on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % below as u64) as usize
    }
}

struct Corpus {
    start: jiff::Timestamp,
    lines: Vec<LogLine>,
}

fn corpus() -> Corpus {
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(4);
    let mut rng = Lcg(42);
    let lines = (0..LINES)
        .map(|i| {
            // Words w00..w49, the low ones far more frequent.
            let words: Vec<String> = (0..3 + rng.next(3))
                .map(|_| {
                    let skew = 1 + rng.next(50);
                    format!("w{:02}", rng.next(skew))
                })
                .collect();
            LogLine {
                timestamp: start + jiff::SignedDuration::from_millis(i as i64 * STEP_MS),
                message: format!("{} n{i}", words.join(" ")),
                pod: PODS[rng.next(PODS.len())].into(),
                level: LEVELS[rng.next(LEVELS.len())].into(),
                namespace: "default".into(),
                stream: "stdout".into(),
                ..LogLine::default()
            }
        })
        .collect();
    Corpus { start, lines }
}

fn words(line: &LogLine) -> Vec<&str> {
    line.message.split(' ').collect()
}

async fn get(index: &LogIndex, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    let uri = format!("{path}?{}", query.join("&"));
    let response = logpipe::api::router(index.clone())
        .oneshot(
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_and_pages_neither_repeat_nor_skip() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let index = LogIndex::open(dir.path()).unwrap();
    let mut indexer = Indexer::new(
        index.clone(),
        Checkpoint::default(),
        Telemetry::default(),
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    for chunk in corpus.lines.chunks(2000) {
        indexer
            .add(Batch {
                lines: chunk.to_vec(),
                ..Batch::default()
            })
            .unwrap();
    }
    indexer.commit().unwrap();
    assert!(index.partitions().len() >= 3, "{}", index.partitions().len());
    let total = |body: &Value| body["total"].as_u64().unwrap() as usize;

    // Terms, one by one.
    for word in ["w00", "w01", "w07", "w23", "w49"] {
        let expected = corpus.lines.iter().filter(|l| words(l).contains(&word)).count();
        let (status, body) = get(&index, "/v1/search", &[("query", word), ("limit", "1")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(total(&body), expected, "{word}");
    }
    // A phrase (adjacent words), a boolean over a field, a negation.
    let phrase = corpus
        .lines
        .iter()
        .filter(|l| words(l).windows(2).any(|w| w == ["w01", "w02"]))
        .count();
    let (_, body) = get(&index, "/v1/search", &[("query", "\"w01 w02\""), ("limit", "1")]).await;
    assert_eq!(total(&body), phrase);
    let errors_w03 = corpus
        .lines
        .iter()
        .filter(|l| l.level == "error" && words(l).contains(&"w03"))
        .count();
    let (_, body) = get(
        &index,
        "/v1/search",
        &[("query", "w03 AND level:error"), ("limit", "1")],
    )
    .await;
    assert_eq!(total(&body), errors_w03);
    let not_web0 = corpus.lines.iter().filter(|l| l.pod != "web-0").count();
    let (_, body) = get(&index, "/v1/search", &[("query", "* -pod:web-0"), ("limit", "1")]).await;
    assert_eq!(total(&body), not_web0);

    // A time range across a partition boundary (start included, end excluded).
    let (from, to) = (5_000usize, 17_000usize);
    let start = corpus.lines[from].timestamp.to_string();
    let end = corpus.lines[to].timestamp.to_string();
    let (_, body) = get(
        &index,
        "/v1/search",
        &[("start", &start), ("end", &end), ("limit", "1")],
    )
    .await;
    assert_eq!(total(&body), to - from);

    // Top values of a field.
    let mut by_pod: BTreeMap<String, u64> = BTreeMap::new();
    for line in &corpus.lines {
        *by_pod.entry(line.pod.clone()).or_default() += 1;
    }
    let all_start = corpus.start.to_string();
    let all_end = (corpus.start + jiff::SignedDuration::from_hours(4)).to_string();
    let (status, body) = get(
        &index,
        "/v1/fields/pod",
        &[("start", &all_start), ("end", &all_end), ("limit", "10")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got: BTreeMap<String, u64> = body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, by_pod);

    // A histogram in 15-minute buckets of one term.
    let bucket_ms = 15 * 60 * 1000;
    let mut expected = vec![0u64; 16];
    for (i, line) in corpus.lines.iter().enumerate() {
        if words(line).contains(&"w02") {
            expected[(i as i64 * STEP_MS / bucket_ms) as usize] += 1;
        }
    }
    let (status, body) = get(
        &index,
        "/v1/histogram",
        &[
            ("query", "w02"),
            ("start", &all_start),
            ("end", &all_end),
            ("interval", "15m"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let buckets: Vec<u64> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(buckets, expected);

    // Paging through every line with w04: each once, newest first, none skipped.
    let expected: BTreeSet<&str> = corpus
        .lines
        .iter()
        .filter(|l| words(l).contains(&"w04"))
        .map(|l| l.message.as_str())
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut times: Vec<String> = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = get(
            &index,
            "/v1/search",
            &[("query", "w04"), ("limit", "97"), ("cursor", &cursor)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(total(&body), expected.len());
        for hit in body["hits"].as_array().unwrap() {
            seen.push(hit["message"].as_str().unwrap().to_string());
            times.push(hit["timestamp"].as_str().unwrap().to_string());
        }
        match body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let unique: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), seen.len(), "a line came twice");
    assert_eq!(unique, expected, "lines skipped or foreign");
    let parsed: Vec<jiff::Timestamp> = times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] >= w[1]), "newest first");
}
