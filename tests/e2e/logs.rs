//! The log pipeline end to end: what containers write is searchable through `/logs/v1/search` on the API
//! address (with the API's token), newest first, paged without repeats, and a `kill -9` of the platform
//! while a container writes loses and repeats no line.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Server, free_port};

async fn search(server: &Server, params: &[(&str, &str)]) -> (u16, Value) {
    let response = server
        .http()
        .get(format!("{}/logs/v1/search", server.api))
        .header("Authorization", server.bearer())
        .query(params)
        .send()
        .await
        .expect("the search API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A JSON answer of the log API at `path`.
async fn get_json(server: &Server, path: &str, params: &[(&str, &str)]) -> Value {
    server
        .http()
        .get(format!("{}/logs/v1/{path}", server.api))
        .header("Authorization", server.bearer())
        .query(params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every line of `query`, paging with `limit`.
async fn all_lines(server: &Server, query: &str, limit: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = search(server, &[("query", query), ("limit", limit), ("cursor", &cursor)]).await;
        assert_eq!(status, 200, "{body}");
        out.extend(
            body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["message"].as_str().unwrap().to_string()),
        );
        match body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_lines_are_searchable_and_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start_in(dir.path(), &["--api-addr", &api]);
    // 3000 numbered lines over about 6 s, then an error line, then quiet.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: counter, labels: {app: counter}}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo \"seq $i\"; [ $((i % 100)) -eq 0 ] && sleep 0.2; done; echo \"ERROR done counting\"; sleep 3600']
",
    );
    let count = |body: &Value| body["total"].as_u64().unwrap_or(0);
    let (status, body) = search(&server, &[("query", "pod:counter")]).await;
    assert_eq!(status, 200, "{body}");
    // Kill the platform twice while the container writes (it goes on writing: it belongs to its shim).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server = Server::start_in(dir.path(), &["--api-addr", &api]);
    }
    let mut total = 0;
    for _ in 0..300 {
        let (_, body) = search(&server, &[("query", "pod:counter"), ("limit", "1")]).await;
        total = count(&body);
        if total >= 3001 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(total, 3001, "every line once");
    let lines = all_lines(&server, "pod:counter AND seq", "1000").await;
    let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
    for line in &lines {
        *seen
            .entry(line.trim_start_matches("seq ").parse().unwrap())
            .or_default() += 1;
    }
    let lost: Vec<u32> = (1..=3000).filter(|n| !seen.contains_key(n)).collect();
    let repeated: Vec<u32> = seen.iter().filter(|(_, c)| **c > 1).map(|(n, _)| *n).collect();
    assert!(
        lost.is_empty() && repeated.is_empty(),
        "lost {lost:?}, repeated {repeated:?}"
    );
    // Newest first.
    let numbers: Vec<u32> = lines
        .iter()
        .map(|l| l.trim_start_matches("seq ").parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "newest first");

    // Fields and levels.
    let (_, errors) = search(&server, &[("query", "level:error AND namespace:default")]).await;
    assert_eq!(count(&errors), 1, "{errors}");
    let hit = &errors["hits"][0];
    assert_eq!(hit["message"], "ERROR done counting");
    assert_eq!(
        (
            hit["pod"].as_str(),
            hit["container"].as_str(),
            hit["stream"].as_str()
        ),
        (Some("counter"), Some("c"), Some("stdout"))
    );
    // The pod's labels came along.
    let (_, labelled) = search(&server, &[("query", "attributes.labels.app:counter AND seq")]).await;
    assert_eq!(count(&labelled), 3000, "every line has its labels: {labelled}");
    let (_, phrase) = search(&server, &[("query", "\"seq 1234\"")]).await;
    assert_eq!(count(&phrase), 1, "{phrase}");
    assert_eq!(
        phrase["hits"][0]["highlights"],
        serde_json::json!([[0, 3], [4, 8]]),
        "{phrase}"
    );

    // Counts: a histogram over the last minutes and the top pods.
    let histogram = get_json(
        &server,
        "histogram",
        &[("query", "pod:counter AND seq"), ("interval", "10s")],
    )
    .await;
    let buckets = histogram["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 360, "an hour of 10 s buckets");
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 3000);
    let fields = get_json(&server, "fields/pod", &[]).await;
    assert_eq!(fields["values"][0]["value"], "counter", "{fields}");
    assert_eq!(fields["values"][0]["count"], 3001, "{fields}");

    // Live tail: a line written after the stream opened arrives on it.
    let mut stream = server
        .http()
        .get(format!("{}/logs/v1/tail", server.api))
        .header("Authorization", server.bearer())
        .query(&[("query", "tailed")])
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo tailed line; echo "$LINE"; sleep 3600']
    env: [{name: LINE, value: '{"level":"warning","msg":"disk low","disk":"sda"}'}]
"#,
    );
    let mut received = String::new();
    let arrived = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            received.push_str(&String::from_utf8_lossy(&chunk));
            if received.contains("tailed line") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(arrived, Ok(true), "{received}");
    assert!(received.contains("event: line"), "{received}");
    // A JSON line gives its level, message and fields.
    let mut structured = Value::Null;
    for _ in 0..100 {
        (_, structured) = search(&server, &[("query", "level:warn AND attributes.disk:sda")]).await;
        if count(&structured) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(structured["hits"][0]["message"], "disk low", "{structured}");

    // Bad input: a 400 with the reason; no token: 401.
    for (params, says) in [
        (vec![("query", "pod:(")], "invalid query"),
        (vec![("limit", "100000")], "limit must be between 1 and 1000"),
        (vec![("start", "yesterday")], "is not an RFC 3339 time"),
        (vec![("path", "/etc/passwd")], "unknown field"),
        (
            vec![("start", "2026-01-02T00:00:00Z"), ("end", "2026-01-01T00:00:00Z")],
            "is after end",
        ),
    ] {
        let (status, body) = search(&server, &params).await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(says),
            "{params:?}: {body}"
        );
    }
    let anonymous = server
        .http()
        .get(format!("{}/logs/v1/search", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let metrics = server.scrape();
    assert!(
        metrics.contains("glasshouse_logs_indexed_lines_total"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_files_from_the_config_are_searchable() {
    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("glasshouse.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: glasshouse/v1alpha1\nlogs:\n  sources:\n  - name: app\n    paths: ['{0}/*.log']\n    exclude: ['{0}/noisy.log']\n    startAt: beginning\n  - name: traces\n    paths: ['{0}/traces/*.log']\n    startAt: beginning\n    multiline: {{start: '^\\d', timeout: 200ms}}\n  retention: {{maxAge: 24h}}\n",
            files.path().display()
        ),
    )
    .unwrap();
    // Three days of lines, one every 30 minutes, timed by their text: retention keeps the last day.
    let now = jiff::Timestamp::now();
    let history: String = (0..144)
        .map(|n| {
            let time = now - jiff::SignedDuration::from_mins(30 * (144 - n));
            format!("{{\"time\":\"{time}\",\"msg\":\"history {n}\"}}\n")
        })
        .collect();
    std::fs::write(files.path().join("history.log"), history).unwrap();
    std::fs::write(
        files.path().join("app.log"),
        "level=warn msg=\"cache cold\" shard=7\n",
    )
    .unwrap();
    std::fs::write(files.path().join("noisy.log"), "never indexed\n").unwrap();
    std::fs::create_dir(files.path().join("traces")).unwrap();
    std::fs::write(
        files.path().join("traces/app.log"),
        "1 request failed: boom\n  at handler (app.js:10)\n  at server (app.js:99)\n2 next request\n",
    )
    .unwrap();
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    let mut body = Value::Null;
    for _ in 0..100 {
        (_, body) = search(&server, &[("query", "attributes.logSource:app AND cache")]).await;
        if body["total"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body["total"], 1, "{body}");
    let hit = &body["hits"][0];
    assert_eq!(
        (hit["message"].as_str(), hit["level"].as_str()),
        (Some("cache cold"), Some("warn"))
    );
    assert_eq!(hit["attributes"]["shard"], "7");
    let (_, noisy) = search(&server, &[("query", "never")]).await;
    assert_eq!(noisy["total"], 0, "excluded: {noisy}");
    // A stack trace is one line with its frames; the last record goes out after the timeout.
    for _ in 0..100 {
        (_, body) = search(&server, &[("query", "attributes.logSource:traces")]).await;
        if body["total"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let traces: Vec<&str> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["message"].as_str())
        .collect();
    assert_eq!(
        traces,
        [
            "2 next request",
            "1 request failed: boom\n  at handler (app.js:10)\n  at server (app.js:99)"
        ],
        "{body}"
    );

    // Retention looks every 10 s and drops the hours whose newest line is older than a day: nothing
    // newer than 23 hours goes, nothing older than 25 hours stays, and the metrics say what went.
    let count = |body: &Value| body["total"].as_u64().unwrap_or(0);
    let recent = (now - jiff::SignedDuration::from_hours(23)).to_string();
    let old = (now - jiff::SignedDuration::from_hours(25)).to_string();
    for _ in 0..300 {
        (_, body) = search(&server, &[("query", "history"), ("end", &old)]).await;
        if body["total"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&body), 0, "older than 25 h: {body}");
    let (_, kept) = search(&server, &[("query", "history"), ("start", &recent)]).await;
    assert_eq!(count(&kept), 46, "the last 23 hours: {kept}");
    let metrics = server.scrape();
    assert!(
        metrics.contains("glasshouse_logs_retention_dropped_lines_total{reason=\"age\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("glasshouse_logs_partition_bytes{partition="),
        "{metrics}"
    );

    // A bad source is refused at start, every problem at once.
    std::fs::write(
        &config,
        "apiVersion: glasshouse/v1alpha1\nlogs:\n  sources:\n  - name: ''\n    paths: [relative/*.log]\n    startAt: middle\n  partition: 10s\n",
    )
    .unwrap();
    let said = crate::support::refused_start(&["--config", config.to_str().unwrap()]);
    for problem in [
        "name: required",
        "must be an absolute path",
        "neither beginning nor end",
        "logs.partition: \"10s\": must be at least 1m",
    ] {
        assert!(said.contains(problem), "{problem}: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_events_are_searchable_beside_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("glasshouse.yaml");
    std::fs::write(
        &config,
        "apiVersion: glasshouse/v1alpha1\nevents:\n  sinks: {idx: {logIndex: {}}}\n  routes: [{sinks: [idx]}]\n",
    )
    .unwrap();
    let server = Server::start_with(&["--config", config.to_str().unwrap()]);
    // A container without a command: a Warning event `Failed` on its pod.
    server.kubectl_ok_input(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: imageonly}\nspec:\n  containers:\n  - {name: c, image: nginx}\n",
    );
    let mut body = Value::Null;
    for _ in 0..300 {
        (_, body) = search(
            &server,
            &[(
                "query",
                "attributes.kind:Event AND level:warn AND pod:imageonly AND attributes.reason:Failed",
            )],
        )
        .await;
        if body["total"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hit = &body["hits"][0];
    assert_eq!(hit["attributes"]["reason"], "Failed", "{body}");
    assert!(
        hit["message"]
            .as_str()
            .unwrap_or_default()
            .contains("has no command"),
        "{body}"
    );
    assert_eq!(hit["source"], "events");
    // Normal events too (the scheduler's), and a redelivery would replace, not add.
    let (_, scheduled) = search(
        &server,
        &[("query", "attributes.reason:Scheduled AND pod:imageonly")],
    )
    .await;
    assert_eq!(scheduled["total"], 1, "{scheduled}");
}

/// spec/logs.md S2 + S6: a host file written for 8 s, renamed away every 20,000 lines (its rotated names
/// match the glob too), while the platform is killed with SIGKILL five times at odd moments. Every line
/// is in the index once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_burst_through_repeated_kill_9_is_indexed_exactly_once() {
    const LINES: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("burst");
    std::fs::create_dir(&logs).unwrap();
    let config = dir.path().join("glasshouse.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: glasshouse/v1alpha1\nlogs:\n  sources:\n  - name: burst\n    paths: ['{}/app.log*']\n    startAt: beginning\n",
            logs.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let api = format!("127.0.0.1:{}", free_port());
    let args = ["--api-addr", api.as_str(), "--config", config.to_str().unwrap()];
    let mut server = Server::start_in(&data, &args);
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let live = logs.join("app.log");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&live).unwrap());
        for n in 0..LINES {
            writeln!(file, "burst {n}").unwrap();
            if n % 1000 == 999 {
                file.flush().unwrap();
                std::thread::sleep(Duration::from_millis(80));
            }
            if n % 20_000 == 19_999 {
                file.flush().unwrap();
                std::fs::rename(&live, logs.join(format!("app.log.{}", n / 20_000))).unwrap();
                file = std::io::BufWriter::new(std::fs::File::create(&live).unwrap());
            }
        }
        file.flush().unwrap();
    });
    for pause in [700, 1900, 1100, 2600, 1500] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill9();
        server = Server::start_in(&data, &args);
    }
    writer.join().unwrap();
    let mut total = 0;
    for _ in 0..600 {
        let (_, body) = search(&server, &[("query", "burst"), ("limit", "1")]).await;
        total = body["total"].as_u64().unwrap_or(0) as usize;
        if total >= LINES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = all_lines(&server, "burst", "1000").await;
    let mut counts = vec![0u32; LINES];
    for line in &lines {
        counts[line.trim_start_matches("burst ").parse::<usize>().unwrap()] += 1;
    }
    let lost: Vec<usize> = (0..LINES).filter(|n| counts[*n] == 0).collect();
    let repeated: Vec<usize> = (0..LINES).filter(|n| counts[*n] > 1).collect();
    assert!(
        lost.is_empty() && repeated.is_empty(),
        "total {total}: {} lost (first {:?}), {} repeated (first {:?})",
        lost.len(),
        &lost[..lost.len().min(10)],
        repeated.len(),
        &repeated[..repeated.len().min(10)]
    );
}
