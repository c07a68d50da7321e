//! A probe worker: one per probe of a container run, as the kubelet's (`spec/probes.md` §3;
//! K `pkg/kubelet/prober/worker.go`). It probes every `periodSeconds` from its start, skips attempts
//! before `initialDelaySeconds` (whole seconds since the container started) and, for liveness and
//! readiness, until the container has started (startup probe passed); counts consecutive results and
//! changes its result only at `failureThreshold` failures or `successThreshold` successes. A liveness
//! failure or a startup result (either) puts it on hold: it stops, and the node agent acts.
//!
//! Results start at upstream's initial values: readiness `Failure`, liveness `Success`, startup
//! `Unknown`. A worker lives as long as its container run: a restarted container gets new workers (so
//! every run has its full thresholds). When the container has started, a readiness worker probes at
//! once and restarts its ticker (upstream's manual trigger after startup).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::handlers::{Outcome, Runner};
use crate::spec::{ProbeSpec, ProbeType};

/// A worker's result, as the node agent reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
    /// A startup probe before its first verdict.
    Unknown,
}

impl ProbeResult {
    pub fn initial(probe_type: ProbeType) -> ProbeResult {
        match probe_type {
            ProbeType::Readiness => ProbeResult::Failure,
            ProbeType::Liveness => ProbeResult::Success,
            ProbeType::Startup => ProbeResult::Unknown,
        }
    }
}

/// One attempt that ran, as reported to the observer.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub probe_type: ProbeType,
    pub time: SystemTime,
    pub duration: Duration,
    /// The handler's outcome and output, or the error that made the attempt not count.
    pub outcome: Result<(Outcome, String), String>,
    /// The worker's result after this attempt (it changes only at a threshold).
    pub result: ProbeResult,
}

/// Told about every attempt (events, metrics, history) and every change of result.
pub trait Observer: Send + Sync {
    fn attempt(&self, record: &AttemptRecord);
    /// The worker ends (its metric series go).
    fn stopped(&self, _probe_type: ProbeType) {}
}

/// How many times an attempt that errored is run again before it is discarded (upstream's
/// `maxProbeRetries`).
const MAX_RETRIES: usize = 3;

/// What a worker needs from its container run.
pub struct Run {
    /// When the container started (initial delays count from it).
    pub started_at: Instant,
    /// Whether the container has started (its startup probe passed, or it has none); liveness and
    /// readiness wait for it. `None` for the startup worker.
    pub started: Option<watch::Receiver<bool>>,
    /// The agent restarted recently: the first attempt waits a random part of a period, so that
    /// probes of adopted containers do not all fire at once.
    pub jitter: bool,
    /// The result to start from instead of the type's initial value (a container adopted after an
    /// agent restart keeps what its status said, as the kubelet does since 1.35).
    pub initial: Option<ProbeResult>,
}

/// A running worker.
pub struct Worker {
    pub result: watch::Receiver<ProbeResult>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    pub fn spawn(spec: ProbeSpec, run: Run, runner: Arc<dyn Runner>, observer: Arc<dyn Observer>) -> Worker {
        let initial = run.initial.unwrap_or(ProbeResult::initial(spec.probe_type));
        let (tx, result) = watch::channel(initial);
        let stop = CancellationToken::new();
        let task = tokio::spawn(work(spec, run, runner, observer, tx, stop.clone()));
        Worker { result, stop, task }
    }

    /// Stops probing (the container stopped, or the pod is terminating).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn work(
    spec: ProbeSpec,
    mut run: Run,
    runner: Arc<dyn Runner>,
    observer: Arc<dyn Observer>,
    result: watch::Sender<ProbeResult>,
    stop: CancellationToken,
) {
    let probe_type = spec.probe_type;
    let params = spec.params;
    if run.jitter {
        let wait = params.period.mul_f64(rand::random::<f64>());
        tokio::select! {
            _ = stop.cancelled() => return observer.stopped(probe_type),
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let mut ticker = tokio::time::interval(params.period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last: Option<ProbeResult> = None;
    let mut run_length = 0u32;
    loop {
        let started = async {
            match run.started.as_mut() {
                Some(started) if probe_type == ProbeType::Readiness && !*started.borrow() => {
                    let _ = started.wait_for(|s| *s).await;
                }
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
            _ = started => ticker.reset(),
        }
        // Initial delay, in whole seconds since the container started.
        if run.started_at.elapsed().as_secs() < params.initial_delay.as_secs() {
            continue;
        }
        if run.started.as_ref().is_some_and(|s| !*s.borrow()) {
            continue;
        }
        let begun = Instant::now();
        let time = SystemTime::now();
        let mut attempted = Err(String::new());
        for _ in 0..MAX_RETRIES {
            attempted = tokio::select! {
                _ = stop.cancelled() => return observer.stopped(probe_type),
                a = tracing::Instrument::instrument(
                    runner.run(&spec.handler, params.timeout),
                    tracing::info_span!("probe", probe_type = ?probe_type),
                ) => a,
            };
            if attempted.is_ok() {
                break;
            }
        }
        let duration = begun.elapsed();
        let observed = match &attempted {
            Ok((Outcome::Success | Outcome::Warning, _)) => Some(ProbeResult::Success),
            Ok((Outcome::Failure | Outcome::Unknown, _)) => Some(ProbeResult::Failure),
            // An error: no threshold progress.
            Err(_) => None,
        };
        let mut trip = false;
        if let Some(observed) = observed {
            if last == Some(observed) {
                run_length += 1;
            } else {
                last = Some(observed);
                run_length = 1;
            }
            let threshold = match observed {
                ProbeResult::Failure => params.failure_threshold,
                _ => params.success_threshold,
            };
            if run_length >= threshold {
                result.send_if_modified(|r| std::mem::replace(r, observed) != observed);
                trip = (probe_type == ProbeType::Liveness && observed == ProbeResult::Failure)
                    || probe_type == ProbeType::Startup;
            }
        }
        observer.attempt(&AttemptRecord {
            probe_type,
            time,
            duration,
            outcome: attempted,
            result: *result.borrow(),
        });
        if trip {
            // On hold: this run is not probed again (the agent restarts the container, or it started).
            break;
        }
    }
    observer.stopped(probe_type);
}

#[cfg(test)]
mod tests;
