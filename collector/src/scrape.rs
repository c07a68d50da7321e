//! Scraping the pods that ask for it (annotation `prometheus.io/scrape: "true"`, with `port`, `path`
//! and `scheme`), every resolution tick. Each pod is scraped in a task of its own, bounded in time
//! (`timeout`) and size (`max_bytes`, `max_samples`), and a pod still being scraped is skipped, so a
//! slow, huge or garbled endpoint costs only its own series: the others are collected on time.
//! The last two good scrapes of every pod are kept, for rates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::Targets;
use crate::exposition::{self, Sample};

/// A pod to scrape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScrapeTarget {
    pub namespace: String,
    pub pod: String,
    pub url: String,
}

/// A good scrape of a pod.
#[derive(Clone, Debug)]
pub struct PodScrape {
    pub target: ScrapeTarget,
    pub time: jiff::Timestamp,
    pub samples: Arc<Vec<Sample>>,
}

/// A pod's last two good scrapes.
#[derive(Clone, Debug)]
pub struct Scrapes {
    pub last: PodScrape,
    pub prev: Option<PodScrape>,
}

/// The limits of one scrape.
#[derive(Clone, Copy, Debug)]
pub struct ScrapeLimits {
    pub timeout: Duration,
    /// Bodies larger than this fail (Prometheus' `body_size_limit`).
    pub max_bytes: usize,
    /// Scrapes with more samples than this fail (Prometheus' `sample_limit`).
    pub max_samples: usize,
}

impl Default for ScrapeLimits {
    fn default() -> ScrapeLimits {
        ScrapeLimits {
            timeout: Duration::from_secs(1),
            max_bytes: 10 << 20,
            max_samples: 50_000,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodLabels {
    namespace: String,
    pod: String,
}

/// Why a scrape fails.
const REASONS: [&str; 5] = ["timeout", "http", "too_large", "too_many_samples", "parse"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    namespace: String,
    pod: String,
    reason: &'static str,
}

/// The collector's own metrics.
#[derive(Clone, Default)]
pub struct CollectorMetrics {
    pub(crate) sample_duration: Option<Histogram>,
    scrapes: Family<PodLabels, Counter>,
    scrape_errors: Family<ErrorLabels, Counter>,
    scrape_duration: Option<Histogram>,
}

impl CollectorMetrics {
    /// Drops a pod's series once it is no longer scraped.
    fn forget(&self, target: &ScrapeTarget) {
        let (namespace, pod) = (target.namespace.clone(), target.pod.clone());
        self.scrapes.remove(&PodLabels {
            namespace: namespace.clone(),
            pod: pod.clone(),
        });
        for reason in REASONS {
            self.scrape_errors.remove(&ErrorLabels {
                namespace: namespace.clone(),
                pod: pod.clone(),
                reason,
            });
        }
    }

    pub fn register(registry: &mut Registry) -> CollectorMetrics {
        let buckets = || Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]);
        let metrics = CollectorMetrics {
            sample_duration: Some(buckets()),
            scrapes: Family::default(),
            scrape_errors: Family::default(),
            scrape_duration: Some(buckets()),
        };
        registry.register(
            "glasshouse_collector_sample_duration_seconds",
            "How long one tick's reading of every container's usage took",
            metrics.sample_duration.clone().expect("set above"),
        );
        registry.register(
            "glasshouse_collector_scrapes",
            "Scrapes of pods' metrics endpoints, by pod",
            metrics.scrapes.clone(),
        );
        registry.register(
            "glasshouse_collector_scrape_errors",
            "Failed scrapes of pods' metrics endpoints, by pod and reason (timeout, http, too_large, too_many_samples, parse)",
            metrics.scrape_errors.clone(),
        );
        registry.register(
            "glasshouse_collector_scrape_duration_seconds",
            "How long scrapes of pods' metrics endpoints took",
            metrics.scrape_duration.clone().expect("set above"),
        );
        metrics
    }
}

#[derive(Default)]
struct TargetState {
    scrapes: Option<Scrapes>,
    in_flight: bool,
    last_error: Option<String>,
}

/// Scrapes the pods' metrics endpoints; cheap to clone.
#[derive(Clone)]
pub struct Scraper {
    client: reqwest::Client,
    limits: ScrapeLimits,
    state: Arc<Mutex<HashMap<ScrapeTarget, TargetState>>>,
    metrics: CollectorMetrics,
}

/// Why a scrape failed: the reason label and the message.
type Failure = (&'static str, String);

impl Scraper {
    pub fn new(limits: ScrapeLimits, metrics: CollectorMetrics) -> Scraper {
        let client = reqwest::Client::builder()
            .timeout(limits.timeout)
            .danger_accept_invalid_certs(true)
            .user_agent(concat!("glasshouse-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Scraper {
            client,
            limits,
            state: Arc::default(),
            metrics,
        }
    }

    /// Every pod's last scrapes.
    pub fn scrapes(&self) -> Vec<Scrapes> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.values().filter_map(|s| s.scrapes.clone()).collect()
    }

    /// The last error of a pod's scrape, if its last scrape failed.
    pub fn last_error(&self, namespace: &str, pod: &str) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .iter()
            .find(|(t, _)| t.namespace == namespace && t.pod == pod)
            .and_then(|(_, s)| s.last_error.clone())
    }

    /// Starts a scrape of every target not being scraped already, and forgets the targets gone (their
    /// series too).
    pub fn tick(&self, targets: Vec<ScrapeTarget>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.retain(|t, _| {
            let keep = targets.contains(t);
            if !keep {
                self.metrics.forget(t);
            }
            keep
        });
        for target in targets {
            let entry = state.entry(target.clone()).or_default();
            if entry.in_flight {
                continue;
            }
            entry.in_flight = true;
            let scraper = self.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let time = jiff::Timestamp::now();
                let result = tokio::time::timeout(scraper.limits.timeout, scraper.fetch(&target.url))
                    .await
                    .unwrap_or_else(|_| {
                        Err((
                            "timeout",
                            format!("no answer within {:?}", scraper.limits.timeout),
                        ))
                    });
                scraper.finish(target, time, started.elapsed(), result);
            });
        }
    }

    fn finish(
        &self,
        target: ScrapeTarget,
        time: jiff::Timestamp,
        took: Duration,
        result: Result<Vec<Sample>, Failure>,
    ) {
        let labels = PodLabels {
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
        };
        self.metrics.scrapes.get_or_create(&labels).inc();
        if let Some(h) = &self.metrics.scrape_duration {
            h.observe(took.as_secs_f64());
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = state.get_mut(&target) else {
            return;
        };
        entry.in_flight = false;
        match result {
            Ok(samples) => {
                entry.last_error = None;
                let last = PodScrape {
                    target,
                    time,
                    samples: Arc::new(samples),
                };
                entry.scrapes = Some(Scrapes {
                    prev: entry.scrapes.take().map(|s| s.last),
                    last,
                });
            }
            Err((reason, message)) => {
                tracing::debug!(namespace = %target.namespace, pod = %target.pod, %message, "scrape failed");
                self.metrics
                    .scrape_errors
                    .get_or_create(&ErrorLabels {
                        namespace: labels.namespace,
                        pod: labels.pod,
                        reason,
                    })
                    .inc();
                entry.last_error = Some(message);
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<Sample>, Failure> {
        let mut response = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
            )
            .send()
            .await
            .map_err(|e| match e.is_timeout() {
                true => ("timeout", format!("no answer within {:?}", self.limits.timeout)),
                false => ("http", e.to_string()),
            })?;
        if !response.status().is_success() {
            return Err(("http", format!("{url} answered {}", response.status())));
        }
        let openmetrics = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/openmetrics-text"));
        let too_large = || {
            (
                "too_large",
                format!("the body is over {} bytes", self.limits.max_bytes),
            )
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.limits.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| ("http", e.to_string()))? {
            if body.len() + chunk.len() > self.limits.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| ("parse", "the body is not UTF-8".to_string()))?;
        let samples = exposition::parse(&text, openmetrics).map_err(|e| ("parse", e.to_string()))?;
        if samples.len() > self.limits.max_samples {
            return Err((
                "too_many_samples",
                format!(
                    "{} samples, over the limit of {}",
                    samples.len(),
                    self.limits.max_samples
                ),
            ));
        }
        Ok(samples)
    }

    /// Scrapes the targets every `interval` until `shutdown`.
    pub fn run(self, targets: Arc<dyn Targets>, interval: Duration, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => self.tick(targets.scrape_targets()),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A one-route server answering every request with `reply(n)` (n counts requests), after `delay`.
    async fn serve(reply: fn(usize) -> Vec<u8>, delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                n += 1;
                let body = reply(n);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
                    let _ = stream.write_all(head).await;
                    let _ = stream.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}/metrics")
    }

    fn target(pod: &str, url: String) -> ScrapeTarget {
        ScrapeTarget {
            namespace: "default".into(),
            pod: pod.into(),
            url,
        }
    }

    #[tokio::test]
    async fn bad_endpoints_fail_alone_and_good_ones_keep_two_scrapes() {
        let good = serve(
            |n| format!("# TYPE requests counter\nrequests_total {n}\n").into_bytes(),
            Duration::ZERO,
        )
        .await;
        let garbage = serve(|_| b"this is { not metrics\n".to_vec(), Duration::ZERO).await;
        let huge = serve(|_| "x 1\n".repeat(100_000).into_bytes(), Duration::ZERO).await;
        let slow = serve(|_| b"x 1\n".to_vec(), Duration::from_secs(30)).await;
        let limits = ScrapeLimits {
            timeout: Duration::from_millis(300),
            max_bytes: 64 << 10,
            max_samples: 1000,
        };
        let scraper = Scraper::new(limits, CollectorMetrics::default());
        let targets = vec![
            target("good", good),
            target("garbage", garbage),
            target("huge", huge),
            target("slow", slow),
            target("closed", "http://127.0.0.1:1/metrics".into()),
        ];
        for _ in 0..2 {
            let started = Instant::now();
            scraper.tick(targets.clone());
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(started.elapsed() < Duration::from_secs(2));
        }
        let scrapes = scraper.scrapes();
        assert_eq!(scrapes.len(), 1, "{scrapes:?}");
        let good = &scrapes[0];
        assert_eq!(good.last.samples[0].value, 2.0);
        assert_eq!(good.prev.as_ref().map(|p| p.samples[0].value), Some(1.0));
        assert!(
            scraper
                .last_error("default", "garbage")
                .unwrap()
                .starts_with("line 1")
        );
        assert!(
            scraper
                .last_error("default", "huge")
                .unwrap()
                .contains("over 65536 bytes")
        );
        assert!(
            scraper
                .last_error("default", "slow")
                .unwrap()
                .contains("no answer")
        );
        assert!(scraper.last_error("default", "closed").is_some());
        // A target gone is forgotten.
        scraper.tick(vec![]);
        assert!(scraper.scrapes().is_empty());
    }
}
