//! The probes of the node's containers (`spec/probes.md` §4): a probe-engine worker per probe of each
//! container run, an observer that turns attempts into the kubelet's events (`Unhealthy`,
//! `ProbeWarning`), metrics (`/metrics/probes`) and the probe history, and an exec runner that runs probe
//! commands as the container's own process runs (its environment, working directory and cgroups).
//!
//! The pod worker reads the results: a container is started when its startup probe passed (or it has
//! none), ready when it is started and its readiness probe passes (or it has none); a liveness or
//! startup failure kills it for a restart.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use probe_engine::history::History;
use probe_engine::metrics::{ProbeMetrics, Target};
use probe_engine::{
    AttemptRecord, Attempted, ExecRunner, Handlers, Observer, Outcome, ProbeResult, ProbeSpec, ProbeType,
    Run, Worker,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::cgroups::ContainerCgroups;
use super::sys;

/// What every probe of the node shares.
pub struct ProbeContext {
    pub metrics: ProbeMetrics,
    pub history: Arc<History>,
    pub recorder: eventer::Recorder,
    /// When the agent started: containers it adopted within a period of that get a random first delay.
    pub agent_started: Instant,
}

/// How a container runs, for its exec probes.
#[derive(Clone, Debug, Default)]
pub struct ExecEnv {
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub cgroups: ContainerCgroups,
}

/// The probe workers of one container run.
pub struct RunProbes {
    liveness: Option<Worker>,
    readiness: Option<Worker>,
    startup: Option<Worker>,
    started: watch::Sender<bool>,
    liveness_grace: Option<Duration>,
    startup_grace: Option<Duration>,
}

/// Why a container is to be killed, and with which grace period.
pub struct Kill {
    pub message: String,
    pub grace: Option<Duration>,
}

impl RunProbes {
    /// Starts the probes `container` has for the run `run_id` (started at `started_at`); result changes
    /// are told on `wake` with the run's id. `kept`: the run was adopted after an agent restart, with
    /// the `(ready, started)` its status said (kept, as the kubelet keeps them since 1.35).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        ctx: &Arc<ProbeContext>,
        pod: &Pod,
        container: &Container,
        reference: ObjectReference,
        run_id: &str,
        restart_count: i32,
        started_at: Option<jiff::Timestamp>,
        pod_ip: &str,
        exec: ExecEnv,
        wake: mpsc::UnboundedSender<String>,
        kept: Option<(bool, bool)>,
    ) -> RunProbes {
        let (kept_ready, kept_started) = kept.unwrap_or((false, false));
        let startup_probe = container
            .startup_probe
            .as_ref()
            .filter(|_| !kept_started)
            .cloned();
        let (started_tx, started_rx) = watch::channel(startup_probe.is_none());
        let lookup = |name: &str| exec.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let expand = |arg: &str| super::env::expand(arg, lookup);
        let since_start = started_at
            .map(|t| {
                (jiff::Timestamp::now() - t)
                    .total(jiff::Unit::Second)
                    .unwrap_or(0.0)
                    .max(0.0)
            })
            .unwrap_or(0.0);
        let started_instant = Instant::now()
            .checked_sub(Duration::from_secs_f64(since_start))
            .unwrap_or_else(Instant::now);
        let runner = Arc::new(Handlers {
            exec: Arc::new(ContainerExec(exec.clone())),
        });
        let observer = Arc::new(RunObserver {
            ctx: ctx.clone(),
            target: Target {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                pod: pod.metadata.name.clone().unwrap_or_default(),
                pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
                container: container.name.clone(),
            },
            reference,
            restart_count,
            run_id: run_id.to_string(),
            wake,
            last: Mutex::new(HashMap::new()),
        });
        let spawn = |probe_type: ProbeType, probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            let probe = probe.as_ref()?;
            let spec = match ProbeSpec::resolve(probe_type, probe, container, pod_ip, &expand) {
                Ok(spec) => spec,
                Err(e) => {
                    // Every attempt would be an error: said once, and the probe does not run.
                    ctx.recorder.warning(
                        &observer.reference,
                        "Unhealthy",
                        format!("{probe_type} probe errored and resulted in unknown state: {e}"),
                    );
                    return None;
                }
            };
            // Adopted by an agent that just started: a random first delay, so probes do not burst.
            let jitter = ctx.agent_started.elapsed() < spec.params.period && since_start > 1.0;
            let gate = (probe_type != ProbeType::Startup).then(|| started_rx.clone());
            let initial = (probe_type == ProbeType::Readiness && kept_ready).then_some(ProbeResult::Success);
            Some(Worker::spawn(
                spec,
                Run {
                    started_at: started_instant,
                    started: gate,
                    jitter,
                    initial,
                },
                runner.clone(),
                observer.clone(),
            ))
        };
        let grace = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
            probe
                .as_ref()
                .and_then(|p| p.termination_grace_period_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64))
        };
        RunProbes {
            startup: spawn(ProbeType::Startup, &startup_probe),
            liveness: spawn(ProbeType::Liveness, &container.liveness_probe),
            readiness: spawn(ProbeType::Readiness, &container.readiness_probe),
            started: started_tx,
            liveness_grace: grace(&container.liveness_probe),
            startup_grace: grace(&container.startup_probe),
        }
    }

    /// Started: no startup probe, or it passed. Lets liveness and readiness begin.
    pub fn started(&self) -> bool {
        let started = self
            .startup
            .as_ref()
            .is_none_or(|w| *w.result.borrow() == ProbeResult::Success);
        if started && !*self.started.borrow() {
            let _ = self.started.send(true);
        }
        started
    }

    /// Ready: started, and no readiness probe or it passes.
    pub fn ready(&self) -> bool {
        self.started()
            && self
                .readiness
                .as_ref()
                .is_none_or(|w| *w.result.borrow() == ProbeResult::Success)
    }

    /// A liveness or startup failure: the container is to be killed (and restarted unless the pod's
    /// policy is `Never`).
    pub fn kill(&self, container: &str, restart: bool) -> Option<Kill> {
        let failed = |w: &Option<Worker>| {
            w.as_ref()
                .is_some_and(|w| *w.result.borrow() == ProbeResult::Failure)
        };
        let suffix = if restart { ", will be restarted" } else { "" };
        if failed(&self.liveness) {
            return Some(Kill {
                message: format!("Container {container} failed liveness probe{suffix}"),
                grace: self.liveness_grace,
            });
        }
        if failed(&self.startup) {
            return Some(Kill {
                message: format!("Container {container} failed startup probe{suffix}"),
                grace: self.startup_grace,
            });
        }
        None
    }

    /// Stops liveness and startup (a pod being deleted is not restarted for them).
    pub fn stop_liveness_and_startup(&self) {
        for worker in [&self.liveness, &self.startup].into_iter().flatten() {
            worker.stop();
        }
    }
}

/// Attempts into events, metrics and history; result changes wake the pod worker.
struct RunObserver {
    ctx: Arc<ProbeContext>,
    target: Target,
    reference: ObjectReference,
    restart_count: i32,
    run_id: String,
    wake: mpsc::UnboundedSender<String>,
    last: Mutex<HashMap<ProbeType, ProbeResult>>,
}

impl Observer for RunObserver {
    fn attempt(&self, record: &AttemptRecord) {
        let ctx = &self.ctx;
        ctx.metrics.record(&self.target, record);
        ctx.history.record(
            &self.target.pod_uid,
            &self.target.container,
            self.restart_count,
            record,
        );
        let kind = record.probe_type;
        match &record.outcome {
            Ok((Outcome::Warning, output)) => {
                ctx.recorder.warning(
                    &self.reference,
                    "ProbeWarning",
                    format!("{kind} probe warning: {output}"),
                );
            }
            Ok((Outcome::Failure, output)) => {
                ctx.recorder.warning(
                    &self.reference,
                    "Unhealthy",
                    format!("{kind} probe failed: {output}"),
                );
            }
            Err(e) => {
                ctx.recorder.warning(
                    &self.reference,
                    "Unhealthy",
                    format!("{kind} probe errored and resulted in unknown state: {e}"),
                );
            }
            Ok(_) => {}
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.insert(kind, record.result) != Some(record.result) {
            let _ = self.wake.send(self.run_id.clone());
        }
    }

    fn stopped(&self, probe_type: ProbeType) {
        self.ctx.metrics.remove(&self.target, probe_type);
    }
}

/// Runs exec probes as the container runs: its environment and working directory, inside its cgroups,
/// in a process group of its own (killed whole at the timeout).
struct ContainerExec(ExecEnv);

impl ExecRunner for ContainerExec {
    fn exec<'a>(
        &'a self,
        command: &'a [String],
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>> {
        Box::pin(async move {
            let Some((program, args)) = command.split_first() else {
                return Err("the exec probe has no command".into());
            };
            let mut child = tokio::process::Command::new(program);
            child
                .args(args)
                .env_clear()
                .envs(self.0.env.iter().cloned())
                .process_group(0);
            if let Some(dir) = &self.0.working_dir {
                child.current_dir(dir);
            }
            self.0.cgroups.join_before_exec(child.as_std_mut())?;
            let kill = |pid: u32| {
                let _ = sys::signal_group(pid, libc::SIGKILL);
            };
            probe_engine::handlers::exec::run(child, command, timeout, &kill).await
        })
    }
}
