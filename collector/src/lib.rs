//! Glasshouse's collector (it runs in every node agent): resource usage of the node and of every
//! container, sampled every resolution tick (1 s by default) from the containers' cgroups, or from
//! procfs where there are none (`sample`), and served in the kubelet's `/metrics/resource` and
//! cAdvisor's `/metrics/cadvisor` formats (`expose`), which metrics-server reads.
//!
//! It also scrapes the pods that ask for it (`scrape`, with a Prometheus text and OpenMetrics parser
//! in `exposition`), for custom metrics.
//!
//! The collector does not know pods: the node agent tells it what runs (`Targets`).

pub mod expose;
pub mod exposition;
pub mod sample;
pub mod scrape;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use sample::Usage;

/// A container the node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerTarget {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub image: String,
    /// The container run's id (cAdvisor's `id`).
    pub id: String,
    /// Its cgroup directories (none without cgroups).
    pub cgroups: Vec<PathBuf>,
    /// Its main process, leader of its process group (for procfs when there are no cgroups).
    pub pid: Option<u32>,
    pub started_at: jiff::Timestamp,
}

/// What runs on the node now (the node agent's view).
pub trait Targets: Send + Sync {
    fn containers(&self) -> Vec<ContainerTarget>;

    /// The pods whose metrics endpoints are to be scraped.
    fn scrape_targets(&self) -> Vec<scrape::ScrapeTarget> {
        Vec::new()
    }
}

/// One container's reading.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerSample {
    pub target: ContainerTarget,
    pub usage: Usage,
}

/// The last readings.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub time: Option<jiff::Timestamp>,
    pub node: Option<Usage>,
    pub containers: Vec<ContainerSample>,
}

/// The collector: samples in the background, serves the last snapshot.
#[derive(Clone)]
pub struct Collector {
    /// Replaced whole each tick; readers share it without copying.
    last: Arc<RwLock<Arc<Snapshot>>>,
    proc_root: PathBuf,
    /// Per container id: the slow-changing detail and the tick it was read at.
    details: Arc<std::sync::Mutex<std::collections::HashMap<String, (u64, sample::Detail)>>>,
    ticks: Arc<std::sync::atomic::AtomicU64>,
    scraper: scrape::Scraper,
    metrics: scrape::CollectorMetrics,
}

/// Ticks between readings of a container's `memory.stat` and `pids.current`.
const DETAIL_EVERY: u64 = 5;

impl Collector {
    pub fn new() -> Collector {
        Collector::with_metrics(scrape::CollectorMetrics::default())
    }

    /// A collector reporting on itself in `metrics`.
    pub fn with_metrics(metrics: scrape::CollectorMetrics) -> Collector {
        Collector {
            last: Arc::default(),
            proc_root: PathBuf::from("/proc"),
            details: Arc::default(),
            ticks: Arc::default(),
            scraper: scrape::Scraper::new(scrape::ScrapeLimits::default(), metrics.clone()),
            metrics,
        }
    }

    /// The pods' scrapes.
    pub fn scraper(&self) -> &scrape::Scraper {
        &self.scraper
    }

    /// The last snapshot taken.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.last.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Takes one snapshot now.
    pub fn sample(&self, targets: &dyn Targets) {
        let started = std::time::Instant::now();
        let containers = targets.containers();
        // procfs is read once per tick, and only when some container has no cgroups.
        let groups = if containers.iter().any(|c| c.cgroups.is_empty()) {
            sample::process_groups(&self.proc_root)
        } else {
            Default::default()
        };
        let tick = self.ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut details = self.details.lock().unwrap_or_else(|e| e.into_inner());
        let containers: Vec<ContainerSample> = containers
            .into_iter()
            .filter_map(|target| {
                let usage = if target.cgroups.is_empty() {
                    sample::from_processes(&groups, target.pid?)?
                } else {
                    let known = details
                        .get(&target.id)
                        .filter(|(at, _)| tick - at < DETAIL_EVERY)
                        .map(|(_, d)| *d);
                    let (usage, detail) = sample::from_cgroups(&target.cgroups, known)?;
                    if known.is_none() {
                        details.insert(target.id.clone(), (tick, detail));
                    }
                    usage
                };
                Some(ContainerSample { target, usage })
            })
            .collect();
        details.retain(|id, _| containers.iter().any(|c| &c.target.id == id));
        drop(details);
        let snapshot = Snapshot {
            time: Some(jiff::Timestamp::now()),
            node: sample::node(&self.proc_root),
            containers,
        };
        *self.last.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        if let Some(h) = &self.metrics.sample_duration {
            h.observe(started.elapsed().as_secs_f64());
        }
    }

    /// Samples every `resolution` until `shutdown` (on a blocking thread: it reads files), and scrapes
    /// the pods that ask for it as often (on the async runtime).
    pub fn run(self, targets: Arc<dyn Targets>, resolution: Duration, shutdown: CancellationToken) {
        self.scraper
            .clone()
            .run(targets.clone(), resolution, shutdown.clone());
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || {
                while !shutdown.is_cancelled() {
                    let started = std::time::Instant::now();
                    self.sample(targets.as_ref());
                    std::thread::sleep(resolution.saturating_sub(started.elapsed()));
                }
            })
            .expect("spawning a thread");
    }
}

impl Default for Collector {
    fn default() -> Self {
        Collector::new()
    }
}
