//! metrics-server's memory for 200 pods: the heap its state holds once the collector has fed it (the
//! last two usage samples of 200 containers and the node, a tick a second for a minute), counted by an
//! allocator that tracks live bytes; and, for custom metrics, the last two scrapes of 200 pods exposing 20
//! series each, as the collector keeps them. Plus the peak while a `PodMetricsList` of all 200 is built.
//! metrics-server's documented figure is the peer: "2 MB of memory for each node" (its README), and its
//! manifest requests 200 MiB for 100 nodes of 70 pods.
//!
//! `cargo bench -p metrics-server --bench memory`

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

const PODS: usize = 200;
const SERIES: usize = 20;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn snapshot(tick: i64) -> collector::Snapshot {
    let time = jiff::Timestamp::from_second(1_800_000_000 + tick).unwrap();
    let usage = |i: usize| collector::Usage {
        cpu_seconds: tick as f64 * 0.01 * (i + 1) as f64,
        memory_usage_bytes: 30 << 20,
        memory_working_set_bytes: 20 << 20,
        memory_rss_bytes: 15 << 20,
        processes: 3,
    };
    collector::Snapshot {
        time: Some(time),
        node: Some(usage(PODS)),
        containers: (0..PODS)
            .map(|i| collector::ContainerSample {
                target: collector::ContainerTarget {
                    namespace: "default".into(),
                    pod: format!("web-7d9f8b6c5-{i:05}"),
                    container: "web".into(),
                    image: "python:3".into(),
                    id: format!("{i:064x}"),
                    cgroups: vec![format!("/sys/fs/cgroup/cpu/glasshouse/pod{i}/{i:064x}").into()],
                    pid: None,
                    started_at: jiff::Timestamp::from_second(1_799_999_000).unwrap(),
                },
                usage: usage(i),
            })
            .collect(),
    }
}

/// The 200 pods, as the API would list them.
struct Pods;

impl metrics_server::Directory for Pods {
    fn pods<'a>(
        &'a self,
        _: Option<&'a str>,
        _: Option<&'a str>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Vec<metrics_server::PodMeta>, metrics_server::api::Failure>,
                > + Send
                + 'a,
        >,
    > {
        Box::pin(async {
            Ok((0..PODS)
                .map(|i| metrics_server::PodMeta {
                    namespace: "default".into(),
                    name: format!("web-7d9f8b6c5-{i:05}"),
                    labels: [("app".to_string(), "web".to_string())].into(),
                })
                .collect())
        })
    }

    fn nodes<'a>(
        &'a self,
        _: Option<&'a str>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Vec<metrics_server::PodMeta>, metrics_server::api::Failure>,
                > + Send
                + 'a,
        >,
    > {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn parse_selector(
        &self,
        _: &str,
    ) -> Result<Vec<metrics_server::LabelRequirement>, metrics_server::api::Failure> {
        Ok(Vec::new())
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = metrics_server::Store::new("node-1");
    let router = metrics_server::api::router(store.clone(), std::sync::Arc::new(Pods));
    let baseline = rss_kib();
    for tick in 0..60 {
        store.push(&snapshot(tick));
    }
    let fed = rss_kib();
    // `GET /apis/metrics.k8s.io/v1beta1/pods`, all 200, through the real router, ten times.
    for _ in 0..10 {
        let body = runtime.block_on(async {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let request = axum::http::Request::get("/v1beta1/pods")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        });
        let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(list["items"].as_array().map(Vec::len), Some(PODS));
    }
    let served = rss_kib();
    let body: String = (0..SERIES)
        .map(|s| {
            format!(
                "http_requests_total{{code=\"200\",path=\"/api/v{s}\"}} {}\n",
                s * 1000
            )
        })
        .collect();
    let scrapes: Vec<_> = (0..PODS * 2)
        .map(|_| {
            collector::exposition::parse(&format!("# TYPE http_requests_total counter\n{body}"), false)
                .unwrap()
        })
        .collect();
    assert_eq!(scrapes.len(), PODS * 2);
    let total = rss_kib();
    println!(
        "  {PODS} pods: process RSS {:.1} MiB (baseline {:.1} MiB; + usage windows {:.2} MiB; + serving \
         PodMetricsList ×10 {:.2} MiB; + two scrapes of {SERIES} series per pod {:.2} MiB) \
         (peer, metrics-server's documented cost: ~2 MB per node; its manifest requests 200 MiB for 100 nodes)",
        mib(total),
        mib(baseline),
        mib(fed - baseline),
        mib(served - fed),
        mib(total - served)
    );
}
