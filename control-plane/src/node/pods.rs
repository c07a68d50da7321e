//! The pods of this node: a reflector over the pods bound to it (`spec.nodeName`), one worker per pod,
//! pod IPs, and what the runtime leaves on disk. After the first full list, pods found on disk that the
//! API no longer has are stopped and forgotten, so nothing keeps running that nobody asked for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::cgroups::Cgroups;
use super::crilog::Rotation;
use super::runtime::write_json_atomic;
use super::worker::{Run, Worker};
use crate::addresses::Ipv4Range;
use crate::controllers::cache;
use crate::telemetry::NodeMetrics;

/// What every pod worker shares.
pub struct Shared {
    pub client: kube::Client,
    pub recorder: eventer::Recorder,
    pub host_ip: String,
    pub allocatable: BTreeMap<String, Quantity>,
    /// The glasshouse binary, started as `glasshouse shim`.
    pub shim: PathBuf,
    /// `DIR/run/pods`: one directory per pod uid, one per container run inside.
    pub run_dir: PathBuf,
    /// `DIR/pods`: the container logs, `<namespace>_<pod>_<uid>/<container>/<restartCount>.log`.
    pub log_dir: PathBuf,
    pub rotation: Rotation,
    pub cgroups: Cgroups,
    pub metrics: NodeMetrics,
    pub probes: Arc<super::probes::ProbeContext>,
    /// The containers running now, for the collector.
    pub running: Arc<Running>,
    ips: Mutex<IpPool>,
}

/// The containers running on the node, as the collector samples them.
#[derive(Default)]
pub struct Running(Mutex<HashMap<String, RunningContainer>>);

struct RunningContainer {
    pod_uid: String,
    dir: PathBuf,
    target: collector::ContainerTarget,
    /// The pod's metrics endpoint, when it asks to be scraped.
    scrape: Option<collector::scrape::ScrapeTarget>,
}

impl Running {
    /// Notes the running container `id`, made by `target` the first time (again: no change, and
    /// nothing made).
    pub(super) fn add(
        &self,
        id: &str,
        dir: &Path,
        target: impl FnOnce() -> (
            String,
            collector::ContainerTarget,
            Option<collector::scrape::ScrapeTarget>,
        ),
    ) {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !running.contains_key(id) {
            let (pod_uid, target, scrape) = target();
            running.insert(
                id.to_string(),
                RunningContainer {
                    pod_uid,
                    dir: dir.to_path_buf(),
                    target,
                    scrape,
                },
            );
        }
    }

    pub(super) fn remove(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    fn remove_pod(&self, pod_uid: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, c| c.pod_uid != pod_uid);
    }
}

/// The metrics endpoint of a pod annotated `prometheus.io/scrape: "true"` (the common Prometheus
/// convention): `prometheus.io/port` (else the first declared container port), `prometheus.io/path`
/// (`/metrics`), `prometheus.io/scheme` (`http`).
pub fn scrape_target(
    pod: &k8s_openapi::api::core::v1::Pod,
    ip: Ipv4Addr,
) -> Option<collector::scrape::ScrapeTarget> {
    let annotations = pod.metadata.annotations.as_ref()?;
    if annotations.get("prometheus.io/scrape").map(String::as_str) != Some("true") {
        return None;
    }
    let port = match annotations.get("prometheus.io/port") {
        Some(port) => port.parse::<u16>().ok()?,
        None => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .next()
            .and_then(|p| u16::try_from(p.container_port).ok())?,
    };
    let path = annotations
        .get("prometheus.io/path")
        .map_or("/metrics", String::as_str);
    let scheme = match annotations.get("prometheus.io/scheme").map(String::as_str) {
        Some("https") => "https",
        _ => "http",
    };
    let slash = if path.starts_with('/') { "" } else { "/" };
    Some(collector::scrape::ScrapeTarget {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        url: format!("{scheme}://{ip}:{port}{slash}{path}"),
    })
}

impl collector::Targets for Running {
    fn scrape_targets(&self) -> Vec<collector::scrape::ScrapeTarget> {
        let running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut targets: Vec<_> = running.values().filter_map(|c| c.scrape.clone()).collect();
        targets.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
        targets.dedup();
        targets
    }

    fn containers(&self) -> Vec<collector::ContainerTarget> {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running
            .values_mut()
            .map(|c| {
                // Without cgroups the collector follows the main process: the shim records it once it runs.
                if c.target.cgroups.is_empty() && c.target.pid.is_none() {
                    c.target.pid = super::runtime::Attempt::read(&c.dir)
                        .and_then(|a| a.start)
                        .map(|s| s.pid);
                }
                c.target.clone()
            })
            .collect()
    }
}

/// A pod as the runtime records it (`DIR/run/pods/<uid>/pod.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub ip: Ipv4Addr,
}

impl PodRecord {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn log_dir_name(&self) -> String {
        format!("{}_{}_{}", self.namespace, self.name, self.uid)
    }
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        recorder: eventer::Recorder,
        host_ip: String,
        allocatable: BTreeMap<String, Quantity>,
        shim: PathBuf,
        data_dir: &Path,
        rotation: Rotation,
        cgroups: Cgroups,
        metrics: NodeMetrics,
        network: (Ipv4Addr, u8),
        probes: Arc<super::probes::ProbeContext>,
        running: Arc<Running>,
    ) -> Shared {
        Shared {
            client,
            recorder,
            host_ip,
            allocatable,
            shim,
            run_dir: data_dir.join("run/pods"),
            log_dir: data_dir.join("pods"),
            rotation,
            cgroups,
            metrics,
            probes,
            running,
            ips: Mutex::new(IpPool::new(network.0, network.1)),
        }
    }

    /// The pods recorded on disk.
    fn recorded(&self) -> Vec<PodRecord> {
        std::fs::read_dir(&self.run_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("pod.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// The record of `pod`: read back, or made now with a fresh IP.
    fn record(&self, pod: &Pod) -> std::io::Result<PodRecord> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let path = self.run_dir.join(&uid).join("pod.json");
        if let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<PodRecord>(&b).ok())
        {
            return Ok(record);
        }
        let ip = self
            .ips
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .allocate()
            .ok_or_else(|| std::io::Error::other("the node's pod address range is exhausted"))?;
        let record = PodRecord {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid,
            ip,
        };
        std::fs::create_dir_all(path.parent().unwrap_or(&self.run_dir))?;
        write_json_atomic(&path, &record)?;
        Ok(record)
    }

    /// Removes one finished run: its records, its log files and its cgroups.
    pub(super) fn forget_run(&self, pod_uid: &str, run: &Run) {
        let _ = std::fs::remove_dir_all(&run.dir);
        if let Ok(files) = super::crilog::rotated_files(&run.log_path) {
            for file in files {
                let _ = std::fs::remove_file(file);
            }
        }
        let _ = std::fs::remove_file(&run.log_path);
        self.cgroups.remove_container(pod_uid, &run.id);
    }

    /// Removes everything of a pod that is gone.
    pub(super) fn forget_pod(&self, record: &PodRecord) {
        let _ = std::fs::remove_dir_all(self.run_dir.join(&record.uid));
        let _ = std::fs::remove_dir_all(self.log_dir.join(record.log_dir_name()));
        self.cgroups.remove_pod(&record.uid);
        self.probes.history.forget(&record.uid);
        self.running.remove_pod(&record.uid);
        self.ips
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(record.ip);
        tracing::info!(pod = %record.key(), uid = %record.uid, "pod forgotten");
    }
}

/// Pod addresses of the node's range, handed out at random (several agents on one host, as in tests, then
/// rarely meet) and taken back when a pod goes.
struct IpPool {
    range: Ipv4Range,
    used: HashSet<Ipv4Addr>,
}

impl IpPool {
    fn new(base: Ipv4Addr, prefix: u8) -> IpPool {
        IpPool {
            range: Ipv4Range::new(base, prefix),
            used: HashSet::new(),
        }
    }

    fn allocate(&mut self) -> Option<Ipv4Addr> {
        let ip = self.range.allocate(|ip| !self.used.contains(&ip))?;
        self.used.insert(ip);
        Some(ip)
    }

    fn reserve(&mut self, ip: Ipv4Addr) {
        self.used.insert(ip);
    }

    fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&ip);
    }
}

/// Runs the node's pods until `shutdown`; containers keep running after it.
pub async fn run(shared: Arc<Shared>, node: String, shutdown: CancellationToken) {
    let records = shared.recorded();
    {
        let mut ips = shared.ips.lock().unwrap_or_else(|p| p.into_inner());
        for record in &records {
            ips.reserve(record.ip);
        }
    }
    let changed = Arc::new(Notify::new());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let notify = changed.clone();
    let reader: Store<Pod> = cache(&shared.client, config, &shutdown, "node agent", move |_| {
        notify.notify_one()
    });
    tokio::select! {
        _ = shutdown.cancelled() => return,
        ready = reader.wait_until_ready() => if ready.is_err() { return },
    }

    let (done_tx, mut done) = mpsc::unbounded_channel::<String>();
    let mut workers: HashMap<String, watch::Sender<Option<Arc<Pod>>>> = HashMap::new();
    // Pods on disk that the API no longer has: stop what runs of them.
    let listed: HashSet<String> = reader
        .state()
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    for record in records.into_iter().filter(|r| !listed.contains(&r.uid)) {
        tracing::info!(pod = %record.key(), uid = %record.uid, "stopping the containers of a pod that is gone");
        let uid = record.uid.clone();
        let (tx, rx) = watch::channel(None);
        spawn_worker(&shared, record, rx, &done_tx, &shutdown);
        workers.insert(uid, tx);
    }
    let mut finished: HashSet<String> = HashSet::new();
    let mut counts = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        dispatch(&shared, &reader, &mut workers, &mut finished, &done_tx, &shutdown);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = changed.notified() => {}
            Some(uid) = done.recv() => {
                // Its pod is stopped and forgotten: a worker must not start again for it while the cache
                // still shows it (a finalizer holds it, or its deletion is on its way).
                workers.remove(&uid);
                finished.insert(uid);
            }
            _ = counts.tick() => count(&shared),
        }
    }
}

/// Hands every pod of the cache to its worker (starting one for a new pod) and tells the workers of pods
/// that left the cache.
fn dispatch(
    shared: &Arc<Shared>,
    reader: &Store<Pod>,
    workers: &mut HashMap<String, watch::Sender<Option<Arc<Pod>>>>,
    finished: &mut HashSet<String>,
    done: &mpsc::UnboundedSender<String>,
    shutdown: &CancellationToken,
) {
    let pods = reader.state();
    let mut present = HashSet::new();
    for pod in pods {
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        present.insert(uid.clone());
        if finished.contains(&uid) {
            continue;
        }
        if let Some(tx) = workers.get(&uid) {
            tx.send_if_modified(|current| {
                let same = current
                    .as_ref()
                    .is_some_and(|c| c.metadata.resource_version == pod.metadata.resource_version);
                if !same {
                    *current = Some(pod.clone());
                }
                !same
            });
            continue;
        }
        let record = match shared.record(&pod) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(pod = ?pod.metadata.name, error = %e, "cannot set up the pod");
                continue;
            }
        };
        let (tx, rx) = watch::channel(Some(pod.clone()));
        spawn_worker(shared, record, rx, done, shutdown);
        workers.insert(uid, tx);
    }
    for (uid, tx) in workers.iter() {
        if !present.contains(uid) && tx.borrow().is_some() {
            let _ = tx.send(None);
        }
    }
    finished.retain(|uid| present.contains(uid));
}

fn spawn_worker(
    shared: &Arc<Shared>,
    record: PodRecord,
    updates: watch::Receiver<Option<Arc<Pod>>>,
    done: &mpsc::UnboundedSender<String>,
    shutdown: &CancellationToken,
) {
    let uid = record.uid.clone();
    let worker = Worker::adopt(shared.clone(), record);
    let done = done.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        worker.run(updates, shutdown).await;
        let _ = done.send(uid);
    });
}

/// Counts running pods and containers from the records on disk.
fn count(shared: &Shared) {
    let (mut pods, mut running, mut exited) = (0, 0, 0);
    for entry in std::fs::read_dir(&shared.run_dir).into_iter().flatten().flatten() {
        let attempts = super::runtime::Attempt::read_pod(&entry.path());
        let live = attempts.iter().filter(|a| a.exit.is_none()).count() as i64;
        running += live;
        exited += attempts.len() as i64 - live;
        pods += i64::from(live > 0);
    }
    shared.metrics.set_counts(pods, running, exited);
}
