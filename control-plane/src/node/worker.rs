//! One pod on this node, from its first sight to its removal (the kubelet's pod worker and
//! `SyncPod`): init containers in order, then the app containers; restarts by `restartPolicy` with the
//! kubelet's CrashLoopBackOff; the status the kubelet writes; graceful termination with `preStop` hooks,
//! SIGTERM to each container's process group, the grace period, SIGKILL; and the final delete.
//!
//! A worker starts by reading back what runs for its pod (`runtime::Attempt`), so a restarted agent adopts
//! its containers instead of starting them twice. When the agent stops, workers stop too and leave the
//! containers running.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::cgroups::Limits;
use super::env::{self, EnvContext};
use super::probes::{ExecEnv, RunProbes};
use super::runtime::{self, Attempt, Connection, ExitRecord, ShimSpec, Signal, Signaller};
use super::status;
use super::{PodRecord, Shared};
use crate::controllers::api_code;
use crate::scheduler::fit::milli_value;

/// How often a pod is looked at again when nothing happens (a ConfigMap that appears, say).
const RESYNC: Duration = Duration::from_secs(10);
/// How long SIGKILLed containers get to be reported gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Grace for the containers of a pod that vanished from the API without a graceful delete.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// One run of a container.
pub(super) struct Run {
    pub id: String,
    pub dir: PathBuf,
    pub restart_count: i32,
    pub log_path: PathBuf,
    pub started_at: Option<jiff::Timestamp>,
    pub exit: Option<ExitRecord>,
    signaller: Option<Signaller>,
    /// How the container runs, for its exec probes.
    exec: ExecEnv,
    /// Its probes, while it runs.
    pub probes: Option<RunProbes>,
    /// Killed by a failed liveness or startup probe: SIGKILL at this time if it still runs.
    kill_at: Option<Instant>,
    /// Found running when the agent started (not started by this agent).
    adopted: bool,
}

impl Run {
    /// Ready and started as the kubelet tells them: running, and its probes (if any) passed.
    pub fn ready(&self, container: &Container) -> bool {
        self.exit.is_none()
            && self.kill_at.is_none()
            && match &self.probes {
                Some(probes) => probes.ready(),
                None => container.readiness_probe.is_none() && container.startup_probe.is_none(),
            }
    }

    pub fn started(&self, container: &Container) -> bool {
        self.exit.is_none()
            && match &self.probes {
                Some(probes) => probes.started(),
                None => container.startup_probe.is_none(),
            }
    }
}

/// What the worker knows of one container of its pod.
#[derive(Default)]
pub(super) struct Track {
    pub current: Option<Run>,
    pub previous: Option<Run>,
    /// Why the container is not running and not simply terminated: `CrashLoopBackOff`,
    /// `CreateContainerConfigError`, `CreateContainerError`.
    pub waiting: Option<(String, String)>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl Track {
    pub fn running(&self) -> bool {
        self.current.as_ref().is_some_and(|r| r.exit.is_none())
    }
}

pub(super) struct Worker {
    shared: Arc<Shared>,
    pub uid: String,
    pub pod: Option<Arc<Pod>>,
    record: PodRecord,
    pub tracks: HashMap<String, Track>,
    exits_tx: mpsc::UnboundedSender<String>,
    exits: mpsc::UnboundedReceiver<String>,
    /// Runs whose probe results changed.
    probed_tx: mpsc::UnboundedSender<String>,
    probed: mpsc::UnboundedReceiver<String>,
    last_status: Option<serde_json::Value>,
    /// When the pod first ran all its containers (for the start-latency metric, once).
    started_reported: bool,
    /// The pod's run is over and what still ran of it was stopped.
    stopped: bool,
}

impl Worker {
    /// A worker for the pod with `record`, adopting whatever of it the disk says runs.
    pub fn adopt(shared: Arc<Shared>, record: PodRecord) -> Worker {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let (probed_tx, probed) = mpsc::unbounded_channel();
        let mut worker = Worker {
            shared,
            uid: record.uid.clone(),
            pod: None,
            record,
            tracks: HashMap::new(),
            exits_tx,
            exits,
            probed_tx,
            probed,
            last_status: None,
            started_reported: false,
            stopped: false,
        };
        let pod_dir = worker.shared.run_dir.join(&worker.uid);
        for attempt in Attempt::read_pod(&pod_dir) {
            let name = attempt.spec.name.clone();
            let mut run = Run {
                id: attempt.spec.id.clone(),
                dir: attempt.dir.clone(),
                restart_count: attempt.spec.restart_count,
                log_path: attempt.spec.log_path.clone(),
                started_at: attempt.start.as_ref().map(|s| s.started_at),
                exit: attempt.exit.clone(),
                signaller: None,
                exec: ExecEnv {
                    env: attempt.spec.env.clone(),
                    working_dir: attempt.spec.working_dir.clone(),
                    cgroups: attempt.spec.cgroups.clone(),
                },
                probes: None,
                kill_at: None,
                adopted: true,
            };
            if run.exit.is_none() {
                match Connection::open(&run.id) {
                    Ok(connection) => {
                        tracing::info!(pod = %worker.record.key(), container = %name, "adopted a running container");
                        worker.watch(&mut run, connection);
                    }
                    Err(_) => run.exit = Some(runtime::exit_after_shim(&run.dir)),
                }
            }
            let track = worker.tracks.entry(name).or_default();
            track.previous = track.current.take();
            track.current = Some(run);
        }
        worker
    }

    fn watch(&self, run: &mut Run, connection: Connection) {
        let (ended, signaller) = connection.split();
        run.signaller = Some(signaller);
        let tx = self.exits_tx.clone();
        let id = run.id.clone();
        tokio::spawn(async move {
            ended.ended().await;
            let _ = tx.send(id);
        });
    }

    /// Runs the pod until it is gone (or the agent stops), following the pod updates on `updates`.
    pub async fn run(mut self, mut updates: watch::Receiver<Option<Arc<Pod>>>, shutdown: CancellationToken) {
        self.pod = updates.borrow_and_update().clone();
        loop {
            let removed = self.pod.is_none();
            let deleting = self
                .pod
                .as_ref()
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
            if removed || deleting {
                self.terminate(&shutdown).await;
                return;
            }
            let wake = self.sync().await;
            // A pod whose run is over stops what still runs of it (its sidecars), then says so.
            let finished = self
                .pod
                .as_ref()
                .and_then(|p| p.spec.as_ref())
                .is_some_and(|spec| self.finished(spec));
            // Once: a container that outlives its SIGKILL (a hung shim) is not stopped over and over.
            if finished && !self.stopped && self.tracks.values().any(Track::running) {
                let pod = self.pod.clone();
                let grace = pod.as_deref().map_or(ORPHAN_GRACE, pod_grace);
                if !self.stop_containers(pod.as_deref(), grace, &shutdown).await {
                    return;
                }
                self.stopped = true;
                continue;
            }
            let sleep = tokio::time::sleep_until(wake.unwrap_or_else(|| Instant::now() + RESYNC));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = updates.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.pod = updates.borrow_and_update().clone();
                }
                Some(id) = self.exits.recv() => self.exited(&id),
                // A probe result changed: the next pass acts on it.
                Some(_) = self.probed.recv() => {}
                _ = sleep => {}
            }
        }
    }

    /// Records the end of the run `id`, as its shim wrote it.
    fn exited(&mut self, id: &str) {
        for (name, track) in &mut self.tracks {
            let Some(run) = track.current.as_mut().filter(|r| r.id == id) else {
                continue;
            };
            if run.exit.is_some() {
                return;
            }
            let exit = runtime::exit_after_shim(&run.dir);
            tracing::info!(pod = %self.record.key(), container = %name, exit_code = exit.exit_code, reason = %exit.reason, "container ended");
            if exit.reason == "StartError"
                && let Some(pod) = &self.pod
            {
                let message = exit.message.clone().unwrap_or_default();
                self.shared.recorder.warning(
                    &container_ref(pod, name),
                    "Failed",
                    format!("Error: {message}"),
                );
            }
            run.exit = Some(exit);
            run.signaller = None;
            run.probes = None;
            self.shared.running.remove(&run.id);
            return;
        }
    }

    /// One pass of `SyncPod`: starts what should run and writes the status. Returns when to look again.
    ///
    /// Init containers run one after the other. A sidecar (an init container with `restartPolicy:
    /// Always`) lets the next one start once it has started (its startup probe passed, or it runs and has
    /// none), and then runs as long as the pod: restarted whenever it ends, probed like an app container,
    /// and stopped once every app container has ended for good (`computePodActions`).
    async fn sync(&mut self) -> Option<Instant> {
        let pod = self.pod.clone()?;
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
        let mut wake: Option<Instant> = None;
        let mut earliest = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));

        let was_initialized = self.initialized_before(&spec);
        let finished = self.finished(&spec);

        let mut initialized = true;
        let mut failed = false;
        for container in spec.init_containers.iter().flatten() {
            if is_sidecar(container) {
                // The pod's run is over: `run` stops its sidecars, nothing starts again.
                if finished {
                    continue;
                }
                let running = self.tracks.entry(container.name.clone()).or_default().running();
                if !running && let Some(at) = self.start_or_back_off(&pod, container, true).await {
                    earliest(at);
                }
                if let Some(at) = self.probe(&pod, container, true).await {
                    earliest(at);
                }
                let started = self
                    .tracks
                    .get(&container.name)
                    .and_then(|t| t.current.as_ref())
                    .is_some_and(|r| r.started(container));
                if !started && !was_initialized {
                    initialized = false;
                    break;
                }
                continue;
            }
            let track = self.tracks.entry(container.name.clone()).or_default();
            match track
                .current
                .as_ref()
                .map(|r| r.exit.as_ref().map(|e| e.exit_code))
            {
                Some(Some(0)) => continue,
                Some(None) => {
                    initialized = false;
                    break;
                }
                Some(Some(_)) if policy == "Never" => {
                    initialized = false;
                    failed = true;
                    break;
                }
                Some(Some(_)) | None => {
                    initialized = false;
                    if let Some(at) = self.start_or_back_off(&pod, container, true).await {
                        earliest(at);
                    }
                    break;
                }
            }
        }
        if (initialized || was_initialized) && !failed {
            for container in &spec.containers {
                let track = self.tracks.entry(container.name.clone()).or_default();
                let restart = track.current.as_ref().is_none_or(|r| restarts(&policy, r));
                if restart && let Some(at) = self.start_or_back_off(&pod, container, false).await {
                    earliest(at);
                }
                if let Some(at) = self.probe(&pod, container, policy != "Never").await {
                    earliest(at);
                }
            }
        }
        self.write_status(&pod).await;
        wake
    }

    /// Whether the pod's run is over while its sidecars may still run (`computePodActions`' `KillPod`):
    /// every app container ended and none will start again, or an init container failed for good.
    fn finished(&self, spec: &PodSpec) -> bool {
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        let done = !spec.containers.is_empty()
            && spec
                .containers
                .iter()
                .all(|c| self.ended(&c.name).is_some_and(|(_, run)| !restarts(policy, run)));
        self.init_failed(spec) || done
    }

    /// Whether an init container (not a sidecar) failed for good: it exited non-zero under
    /// `restartPolicy: Never`.
    pub(super) fn init_failed(&self, spec: &PodSpec) -> bool {
        spec.restart_policy.as_deref() == Some("Never")
            && spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| !is_sidecar(c))
                .any(|c| self.ended(&c.name).is_some_and(|(code, _)| code != 0))
    }

    /// The exit code of the container's current run, and the run, if it ended.
    fn ended(&self, name: &str) -> Option<(i32, &Run)> {
        let run = self.tracks.get(name)?.current.as_ref()?;
        Some((run.exit.as_ref()?.exit_code, run))
    }

    /// Whether app containers of the pod ran already: it was initialized (before an agent restart, say),
    /// and a sidecar that ends does not hold them back.
    pub(super) fn initialized_before(&self, spec: &PodSpec) -> bool {
        spec.containers
            .iter()
            .any(|c| self.tracks.get(&c.name).is_some_and(|t| t.current.is_some()))
    }

    /// Starts the probes of a running container that has none yet, and acts on their results: a liveness
    /// or startup failure kills the container (SIGTERM, then SIGKILL after the probe's or the pod's grace
    /// period). Returns when to look again (the SIGKILL).
    async fn probe(&mut self, pod: &Pod, container: &Container, restart: bool) -> Option<Instant> {
        let ip = self.record.ip.to_string();
        let pod_ip = self.record.ip;
        let shared = self.shared.clone();
        let probed = self.probed_tx.clone();
        let run = self.tracks.get_mut(&container.name)?.current.as_mut()?;
        if run.exit.is_some() {
            return None;
        }
        shared.running.add(&run.id, &run.dir, || {
            let target = collector::ContainerTarget {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                pod: pod.metadata.name.clone().unwrap_or_default(),
                container: container.name.clone(),
                image: container.image.clone().unwrap_or_default(),
                id: run.id.clone(),
                cgroups: run.exec.cgroups.dirs.clone(),
                pid: None,
                started_at: run.started_at.unwrap_or_else(jiff::Timestamp::now),
            };
            let scrape = super::pods::scrape_target(pod, pod_ip);
            (pod.metadata.uid.clone().unwrap_or_default(), target, scrape)
        });
        if let Some(at) = run.kill_at {
            if at <= Instant::now()
                && let Some(signaller) = &mut run.signaller
            {
                signaller.send(Signal::Kill).await;
                return None;
            }
            return Some(at);
        }
        // A container that ran for more than 10 s before this agent started keeps its readiness and
        // start from the pod's status (upstream's `kubeletRestartGracePeriod`).
        let before_agent = shared.probes.agent_started.elapsed() + Duration::from_secs(10);
        let kept = run
            .started_at
            .filter(|t| {
                run.adopted
                    && (jiff::Timestamp::now() - *t)
                        .total(jiff::Unit::Second)
                        .unwrap_or(0.0)
                        > before_agent.as_secs_f64()
            })
            .and_then(|_| {
                let status = pod.status.as_ref()?;
                let status = status
                    .container_statuses
                    .iter()
                    .chain(&status.init_container_statuses)
                    .flatten()
                    .find(|s| s.name == container.name)?;
                Some((status.ready, status.started.unwrap_or(false)))
            });
        let probes = run.probes.get_or_insert_with(|| {
            RunProbes::start(
                &shared.probes,
                pod,
                container,
                container_ref(pod, &container.name),
                &run.id,
                run.restart_count,
                run.started_at,
                &ip,
                run.exec.clone(),
                probed,
                kept,
            )
        });
        let kill = probes.kill(&container.name, restart)?;
        shared.recorder.normal(
            &container_ref(pod, &container.name),
            "Killing",
            kill.message.clone(),
        );
        tracing::info!(pod = %self.record.key(), container = %container.name, reason = %kill.message, "killing a container");
        let grace = kill.grace.unwrap_or_else(|| pod_grace(pod));
        run.probes = None;
        let at = Instant::now() + grace;
        run.kill_at = Some(at);
        if let Some(signaller) = &mut run.signaller {
            signaller.send(Signal::Term).await;
        }
        Some(at)
    }

    /// Starts `container` unless it is in back-off (then it waits in `CrashLoopBackOff` until the returned
    /// time) or cannot be configured (then it waits with the reason, and is tried again after `RESYNC`).
    async fn start_or_back_off(&mut self, pod: &Pod, container: &Container, init: bool) -> Option<Instant> {
        let key = self.record.key();
        let track = self.tracks.get_mut(&container.name)?;
        if let Some(at) = track.retry_at
            && at > Instant::now()
        {
            return Some(at);
        }
        if let Some(exit) = track.current.as_ref().and_then(|r| r.exit.as_ref()) {
            let finished = exit.finished_at;
            if let Some(remaining) = track.backoff.remaining(finished) {
                let message = format!(
                    "back-off {} restarting failed container={} pod={}",
                    format_backoff(track.backoff.delay()),
                    container.name,
                    pod_label(pod)
                );
                let first = track
                    .waiting
                    .as_ref()
                    .is_none_or(|(r, _)| r != "CrashLoopBackOff");
                track.waiting = Some(("CrashLoopBackOff".into(), message));
                if first {
                    self.shared.recorder.warning(
                        &container_ref(pod, &container.name),
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {}",
                            container.name,
                            pod_label(pod)
                        ),
                    );
                }
                return Some(Instant::now() + remaining);
            }
        }
        // The back-off moves only with a restart that happens (not with a retry that cannot start).
        let ended = track
            .current
            .as_ref()
            .and_then(|r| r.exit.as_ref())
            .map(|e| e.finished_at);
        match self.start(pod, container, init).await {
            Ok(()) => {
                if let Some(track) = self.tracks.get_mut(&container.name) {
                    if let Some(finished) = ended {
                        track.backoff.next(finished);
                    }
                    track.waiting = None;
                    track.retry_at = None;
                }
                None
            }
            Err((reason, message)) => {
                tracing::warn!(pod = %key, container = %container.name, reason, message = %message, "container cannot start");
                self.shared.recorder.warning(
                    &container_ref(pod, &container.name),
                    "Failed",
                    format!("Error: {message}"),
                );
                let at = Instant::now() + RESYNC;
                if let Some(track) = self.tracks.get_mut(&container.name) {
                    track.waiting = Some((reason.into(), message));
                    track.retry_at = Some(at);
                }
                Some(at)
            }
        }
    }

    /// Starts a new run of `container`: environment, cgroups, the shim.
    async fn start(
        &mut self,
        pod: &Pod,
        container: &Container,
        init: bool,
    ) -> Result<(), (&'static str, String)> {
        let shared = self.shared.clone();
        let ip = self.record.ip.to_string();
        let ctx = EnvContext {
            client: &shared.client,
            pod_ip: &ip,
            host_ip: &shared.host_ip,
            allocatable: &shared.allocatable,
        };
        let env = env::resolve(&ctx, pod, container)
            .await
            .map_err(|e| ("CreateContainerConfigError", e))?;
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let argv: Vec<String> = container
            .command
            .iter()
            .flatten()
            .chain(container.args.iter().flatten())
            .map(|a| env::expand(a, lookup))
            .collect();
        if container.command.as_ref().is_none_or(Vec::is_empty) {
            return Err((
                "CreateContainerError",
                format!(
                    "container {:?} has no command: containers run as host processes here, and the entrypoint of image {:?} is not known",
                    container.name,
                    container.image.as_deref().unwrap_or_default()
                ),
            ));
        }
        let track = self.tracks.entry(container.name.clone()).or_default();
        let restart_count = track.current.as_ref().map_or(0, |r| r.restart_count + 1);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = shared.run_dir.join(&self.uid).join(&id);
        let cgroups = shared
            .cgroups
            .create(&self.uid, &id, &limits(container))
            .map_err(|e| {
                (
                    "CreateContainerError",
                    format!("creating the container's cgroups: {e}"),
                )
            })?;
        let spec = ShimSpec {
            id: id.clone(),
            name: container.name.clone(),
            init,
            restart_count,
            argv,
            env,
            working_dir: container.working_dir.as_ref().map(PathBuf::from),
            log_path: shared
                .log_dir
                .join(self.record.log_dir_name())
                .join(&container.name)
                .join(format!("{restart_count}.log")),
            rotation: shared.rotation,
            cgroups,
        };
        let connection = runtime::start(&shared.shim, &dir, &spec).await.map_err(|e| {
            (
                "CreateContainerError",
                format!("starting the container's shim: {e}"),
            )
        })?;
        let reference = container_ref(pod, &container.name);
        shared.recorder.normal(
            &reference,
            "Created",
            format!("Created container: {}", container.name),
        );
        let mut run = Run {
            id,
            dir,
            restart_count,
            log_path: spec.log_path.clone(),
            started_at: Some(jiff::Timestamp::now()),
            exit: None,
            signaller: None,
            exec: ExecEnv {
                env: spec.env.clone(),
                working_dir: spec.working_dir.clone(),
                cgroups: spec.cgroups.clone(),
            },
            probes: None,
            kill_at: None,
            adopted: false,
        };
        self.watch(&mut run, connection);
        shared.recorder.normal(
            &reference,
            "Started",
            format!("Started container {}", container.name),
        );
        let track = self.tracks.entry(container.name.clone()).or_default();
        if let Some(old) = track.previous.take() {
            self.shared.forget_run(&self.uid, &old);
        }
        track.previous = track.current.take();
        track.current = Some(run);
        Ok(())
    }

    /// Writes the pod's status when it changed.
    async fn write_status(&mut self, pod: &Pod) {
        let status = status::build(pod, self, &self.shared.host_ip, self.record.ip);
        if !self.started_reported && status.phase.as_deref() == Some("Running") && status::all_running(self) {
            self.started_reported = true;
            if let Some(created) = &pod.metadata.creation_timestamp {
                let seconds = (jiff::Timestamp::now() - created.0)
                    .total(jiff::Unit::Second)
                    .unwrap_or(0.0);
                self.shared.metrics.pod_started(seconds.max(0.0));
            }
        }
        let Ok(value) = serde_json::to_value(&status) else {
            return;
        };
        if self.last_status.as_ref() == Some(&value) {
            return;
        }
        let api: kube::Api<Pod> = kube::Api::namespaced(self.shared.client.clone(), &self.record.namespace);
        let patch = serde_json::json!({"status": value});
        match api
            .patch_status(
                &self.record.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => self.last_status = Some(value),
            Err(e) if api_code(&e) == Some(404) => {}
            Err(e) => tracing::warn!(pod = %self.record.key(), error = %e, "writing the pod status failed"),
        }
    }

    /// Stops every container of the pod, then, when the pod is still in the API, writes its final status
    /// and deletes it; then forgets it.
    async fn terminate(&mut self, shutdown: &CancellationToken) {
        let pod = self.pod.clone();
        let grace = match pod.as_deref() {
            Some(pod) => Duration::from_secs(
                pod.metadata
                    .deletion_grace_period_seconds
                    .or(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
                    .unwrap_or(30)
                    .max(0) as u64,
            ),
            None => ORPHAN_GRACE,
        };
        if !self.stop_containers(pod.as_deref(), grace, shutdown).await {
            return;
        }
        if let Some(pod) = pod.as_deref() {
            self.write_status(pod).await;
            let api: kube::Api<Pod> =
                kube::Api::namespaced(self.shared.client.clone(), &self.record.namespace);
            let params = kube::api::DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(kube::api::Preconditions {
                    uid: Some(self.uid.clone()),
                    resource_version: None,
                }),
                ..kube::api::DeleteParams::default()
            };
            // The final delete, retried until the API takes it (the pod's processes are gone already).
            loop {
                match api.delete(&self.record.name, &params).await {
                    Err(e) if !matches!(api_code(&e), Some(404 | 409)) => {
                        tracing::warn!(pod = %self.record.key(), error = %e, "finishing the pod's deletion failed, retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    _ => break,
                }
            }
        }
        self.shared.forget_pod(&self.record);
    }

    /// Stops the pod's running containers (`killPodWithSyncResult`): each gets its `Killing` event and
    /// starts its `preStop` hook at once; SIGTERM follows the hook, and for a sidecar waits too until the
    /// app containers and the sidecars after it have ended (`terminationOrdering`); SIGKILL at the end of
    /// `grace`. Returns false when the agent stopped meanwhile.
    async fn stop_containers(
        &mut self,
        pod: Option<&Pod>,
        grace: Duration,
        shutdown: &CancellationToken,
    ) -> bool {
        let deadline = Instant::now() + grace;
        // Containers being stopped are not probed: not restarted for liveness, and not ready.
        for track in self.tracks.values_mut() {
            if let Some(run) = &mut track.current {
                run.probes = None;
            }
        }
        let spec = pod.and_then(|p| p.spec.as_ref());
        let sidecars: Vec<String> = spec
            .map(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .filter(|c| is_sidecar(c))
                    .map(|c| c.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let apps: Vec<String> = spec
            .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        // Running, not yet sent SIGTERM.
        let mut waiting: Vec<String> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.running())
            .map(|(n, _)| n.clone())
            .collect();
        // A container a probe is killing already has its event and its SIGTERM.
        waiting.retain(|name| {
            self.tracks
                .get(name)
                .and_then(|t| t.current.as_ref())
                .is_none_or(|r| r.kill_at.is_none())
        });
        let mut hooks = tokio::task::JoinSet::new();
        let mut hooked: Vec<String> = Vec::new();
        if let Some(pod) = pod {
            for name in &waiting {
                self.shared.recorder.normal(
                    &container_ref(pod, name),
                    "Killing",
                    format!("Stopping container {name}"),
                );
                // No time, no hook (as upstream).
                if let Some(argv) = pre_stop(pod, name).filter(|_| !grace.is_zero()) {
                    let env = self.hook_env(Some(pod), name).await;
                    let name = name.clone();
                    hooked.push(name.clone());
                    hooks.spawn(async move {
                        let outcome = run_hook(&argv, env, deadline).await;
                        (name, outcome)
                    });
                }
            }
        }
        let mut killed = false;
        loop {
            let running = |name: &String| self.tracks.get(name).is_some_and(Track::running);
            let turn: Vec<String> = waiting
                .iter()
                .filter(|name| !hooked.contains(name))
                .filter(|name| match sidecars.iter().position(|s| s == *name) {
                    None => true,
                    Some(i) => !apps.iter().chain(&sidecars[i + 1..]).any(running),
                })
                .cloned()
                .collect();
            waiting.retain(|n| !turn.contains(n) && running(n));
            self.signal(&turn, Signal::Term).await;
            if self.tracks.values().all(|t| !t.running()) && hooks.is_empty() {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                Some(id) = self.exits.recv() => self.exited(&id),
                Some(joined) = hooks.join_next(), if !hooks.is_empty() => {
                    // An aborted hook (at the deadline) is simply gone.
                    if let Ok((name, outcome)) = joined {
                        if let (Err(message), Some(pod)) = (outcome, pod) {
                            self.shared.recorder.warning(
                                &container_ref(pod, &name),
                                "FailedPreStopHook",
                                format!("PreStopHook failed: {message}"),
                            );
                        }
                        hooked.retain(|n| *n != name);
                    }
                }
                _ = tokio::time::sleep_until(deadline), if !killed => {
                    killed = true;
                    hooks.abort_all();
                    hooked.clear();
                    let all: Vec<String> = self.tracks.keys().cloned().collect();
                    self.signal(&all, Signal::Kill).await;
                }
                _ = tokio::time::sleep_until(deadline + KILL_WAIT), if killed => {
                    tracing::warn!(pod = %self.record.key(), "containers did not report their end after SIGKILL");
                    break;
                }
            }
        }
        true
    }

    async fn signal(&mut self, names: &[String], signal: Signal) {
        for name in names {
            if let Some(run) = self.tracks.get_mut(name).and_then(|t| t.current.as_mut())
                && run.exit.is_none()
                && let Some(signaller) = &mut run.signaller
            {
                signaller.send(signal).await;
            }
        }
    }

    async fn hook_env(&self, pod: Option<&Pod>, name: &str) -> Vec<(String, String)> {
        let Some(pod) = pod else { return Vec::new() };
        let Some(container) = find_container(pod, name) else {
            return Vec::new();
        };
        let ip = self.record.ip.to_string();
        let ctx = EnvContext {
            client: &self.shared.client,
            pod_ip: &ip,
            host_ip: &self.shared.host_ip,
            allocatable: &self.shared.allocatable,
        };
        env::resolve(&ctx, pod, container).await.unwrap_or_default()
    }
}

/// A container's `preStop` exec command.
fn pre_stop(pod: &Pod, name: &str) -> Option<Vec<String>> {
    let command = find_container(pod, name)?
        .lifecycle
        .as_ref()?
        .pre_stop
        .as_ref()?
        .exec
        .as_ref()?
        .command
        .clone()?;
    (!command.is_empty()).then_some(command)
}

/// The app or init container `name` of `pod`.
fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// Runs a hook command to its end or the deadline; the error is the kubelet's event text.
async fn run_hook(argv: &[String], env: Vec<(String, String)>, deadline: Instant) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout_at(deadline, child).await {
        Err(_) => Err(format!("command {argv:?} did not finish within the grace period")),
        Ok(Err(e)) => Err(format!("command {argv:?} could not run: {e}")),
        Ok(Ok(out)) if !out.status.success() => Err(format!(
            "command {argv:?} exited with {}: {}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim()
        )),
        Ok(Ok(_)) => Ok(()),
    }
}

/// The kubelet's reference to a container in events: the pod, with `spec.containers{name}`.
pub(super) fn container_ref(pod: &Pod, name: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    use kube::Resource;
    let init = pod
        .spec
        .as_ref()
        .is_some_and(|s| s.init_containers.iter().flatten().any(|c| c.name == name));
    let mut reference = pod.object_ref(&());
    reference.field_path = Some(if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    });
    reference
}

/// Whether `container` (an init container) is a sidecar: it runs beside the app containers.
pub(super) fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// Whether the ended `run` of an app container starts again under the pod's restart policy. A
/// container a probe killed restarts unless the policy is Never, whatever its exit code.
fn restarts(policy: &str, run: &Run) -> bool {
    match &run.exit {
        None => false,
        Some(_) if run.kill_at.is_some() => policy != "Never",
        Some(exit) => policy == "Always" || (policy == "OnFailure" && exit.exit_code != 0),
    }
}

/// The pod's `terminationGracePeriodSeconds` (30 s when unset).
fn pod_grace(pod: &Pod) -> Duration {
    Duration::from_secs(
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64,
    )
}

/// `format.Pod`: `name_namespace(uid)`.
fn pod_label(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Go's `time.Duration` text for whole seconds and minutes: `10s`, `2m40s`, `5m0s`.
fn format_backoff(delay: Duration) -> String {
    let secs = delay.as_secs();
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// The cgroup limits of a container.
fn limits(container: &Container) -> Limits {
    let resources = container.resources.clone().unwrap_or_default();
    let get = |map: &Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               name: &str| {
        map.as_ref()
            .and_then(|m| m.get(name))
            .and_then(|q| milli_value(&q.0))
    };
    Limits {
        memory_bytes: get(&resources.limits, "memory").map(|m| m / 1000),
        cpu_millis: get(&resources.limits, "cpu"),
        cpu_request_millis: get(&resources.requests, "cpu").or_else(|| get(&resources.limits, "cpu")),
        pids: Some(super::PIDS_LIMIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_text_is_go_duration() {
        assert_eq!(format_backoff(Duration::from_secs(10)), "10s");
        assert_eq!(format_backoff(Duration::from_secs(160)), "2m40s");
        assert_eq!(format_backoff(Duration::from_secs(300)), "5m0s");
    }
}
