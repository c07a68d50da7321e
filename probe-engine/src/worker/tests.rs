//! The worker's rules (`spec/probes.md` §3) with paused time: a scripted runner answers attempts and
//! notes when they came.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::handlers::Attempted;
use crate::spec::{Handler, Params};

/// Answers attempts from a script (the last answer repeats), noting the (paused) time of each.
struct Script {
    answers: Mutex<Vec<Attempted>>,
    calls: Mutex<Vec<Duration>>,
    start: Instant,
}

impl Script {
    fn new(answers: Vec<Attempted>) -> Arc<Script> {
        Arc::new(Script {
            answers: Mutex::new(answers),
            calls: Mutex::new(Vec::new()),
            start: Instant::now(),
        })
    }

    fn calls(&self) -> Vec<u64> {
        self.calls.lock().unwrap().iter().map(|d| d.as_secs()).collect()
    }
}

impl Runner for Script {
    fn run<'a>(
        &'a self,
        _: &'a Handler,
        _: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Attempted> + Send + 'a>> {
        self.calls.lock().unwrap().push(self.start.elapsed());
        let mut answers = self.answers.lock().unwrap();
        let answer = if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        };
        Box::pin(async move { answer })
    }
}

#[derive(Default)]
struct Seen {
    results: Mutex<Vec<ProbeResult>>,
    stopped: Mutex<bool>,
}

impl Observer for Seen {
    fn attempt(&self, record: &AttemptRecord) {
        self.results.lock().unwrap().push(record.result);
    }
    fn stopped(&self, _: ProbeType) {
        *self.stopped.lock().unwrap() = true;
    }
}

const OK: Attempted = Ok((Outcome::Success, String::new()));

fn fail() -> Attempted {
    Ok((Outcome::Failure, "HTTP probe failed with statuscode: 500".into()))
}

fn spec(probe_type: ProbeType, period: u64, delay: u64, success: u32, failure: u32) -> ProbeSpec {
    ProbeSpec {
        probe_type,
        params: Params {
            initial_delay: Duration::from_secs(delay),
            period: Duration::from_secs(period),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
            termination_grace_period: None,
        },
        handler: Handler::Tcp {
            host: "127.0.0.1".into(),
            port: 1,
        },
    }
}

fn started_run() -> Run {
    Run {
        started_at: Instant::now(),
        started: None,
        jitter: false,
        initial: None,
    }
}

/// Lets the paused clock run `secs` seconds.
async fn advance(secs: u64) {
    for _ in 0..secs * 10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn initial_values_then_results_flip_only_at_their_thresholds() {
    let script = Script::new(vec![OK, fail(), fail(), OK, fail(), fail(), fail(), OK]);
    let seen = Arc::new(Seen::default());
    let worker = Worker::spawn(
        spec(ProbeType::Readiness, 1, 0, 1, 3),
        started_run(),
        script.clone(),
        seen.clone(),
    );
    assert_eq!(
        *worker.result.borrow(),
        ProbeResult::Failure,
        "readiness starts failed"
    );
    advance(8).await;
    use ProbeResult::{Failure as F, Success as S};
    // S, F (1 of 3), F (2 of 3), S (run broken), F, F, F (3 of 3: now failed), S.
    assert_eq!(*seen.results.lock().unwrap(), [S, S, S, S, S, S, F, S]);
    assert_eq!(script.calls(), [0, 1, 2, 3, 4, 5, 6, 7]);

    let liveness = Worker::spawn(
        spec(ProbeType::Liveness, 1, 0, 1, 1),
        started_run(),
        Script::new(vec![OK]),
        seen.clone(),
    );
    assert_eq!(
        *liveness.result.borrow(),
        ProbeResult::Success,
        "liveness starts healthy"
    );
    let adopted = Run {
        initial: Some(ProbeResult::Success),
        ..started_run()
    };
    let kept = Worker::spawn(
        spec(ProbeType::Readiness, 1, 0, 1, 1),
        adopted,
        Script::new(vec![OK]),
        seen.clone(),
    );
    assert_eq!(
        *kept.result.borrow(),
        ProbeResult::Success,
        "an adopted container stays ready"
    );
    let startup = Worker::spawn(
        spec(ProbeType::Startup, 1, 0, 1, 1),
        started_run(),
        Script::new(vec![fail()]),
        seen.clone(),
    );
    assert_eq!(
        *startup.result.borrow(),
        ProbeResult::Unknown,
        "startup starts unknown"
    );
}

#[tokio::test(start_paused = true)]
async fn readiness_needs_its_success_threshold_in_a_row() {
    let script = Script::new(vec![OK, OK, fail(), OK, OK, OK]);
    let seen = Arc::new(Seen::default());
    let worker = Worker::spawn(
        spec(ProbeType::Readiness, 1, 0, 3, 1),
        started_run(),
        script,
        seen.clone(),
    );
    advance(6).await;
    use ProbeResult::{Failure as F, Success as S};
    assert_eq!(*seen.results.lock().unwrap(), [F, F, F, F, F, S]);
    assert_eq!(*worker.result.borrow(), S);
}

#[tokio::test(start_paused = true)]
async fn liveness_trips_at_its_failure_threshold_and_stops() {
    let seen = Arc::new(Seen::default());
    let script = Script::new(vec![OK, fail()]);
    let worker = Worker::spawn(
        spec(ProbeType::Liveness, 2, 0, 1, 3),
        started_run(),
        script.clone(),
        seen.clone(),
    );
    advance(20).await;
    assert_eq!(*worker.result.borrow(), ProbeResult::Failure);
    // 0: ok; 2, 4, 6: failures, the third trips it; then on hold.
    assert_eq!(script.calls(), [0, 2, 4, 6]);
    assert!(*seen.stopped.lock().unwrap());
    assert!(worker.is_finished());
}

#[tokio::test(start_paused = true)]
async fn the_initial_delay_counts_whole_seconds_from_the_start_and_waits_for_a_tick() {
    let script = Script::new(vec![OK]);
    let run = Run {
        started_at: Instant::now() - Duration::from_millis(500),
        ..started_run()
    };
    let _w = Worker::spawn(
        spec(ProbeType::Readiness, 1, 5, 1, 3),
        run,
        script.clone(),
        Arc::new(Seen::default()),
    );
    advance(7).await;
    // At 4.5 s since the start the truncated age is 4: skipped; at 5.5 s: probed.
    assert_eq!(script.calls().first(), Some(&5));
    // A period longer than the delay: the first probe comes at the first tick after it.
    let script = Script::new(vec![OK]);
    let _w = Worker::spawn(
        spec(ProbeType::Readiness, 10, 3, 1, 3),
        started_run(),
        script.clone(),
        Arc::new(Seen::default()),
    );
    advance(15).await;
    assert_eq!(script.calls(), [10]);
}

#[tokio::test(start_paused = true)]
async fn liveness_and_readiness_wait_for_startup_and_readiness_probes_when_it_passes() {
    let (started_tx, started) = watch::channel(false);
    let liveness = Script::new(vec![OK]);
    let readiness = Script::new(vec![OK]);
    let startup = Script::new(vec![fail(), fail(), OK]);
    let seen = Arc::new(Seen::default());
    let run = |started: Option<watch::Receiver<bool>>| Run {
        started_at: Instant::now(),
        started,
        jitter: false,
        initial: None,
    };
    let _l = Worker::spawn(
        spec(ProbeType::Liveness, 10, 0, 1, 3),
        run(Some(started.clone())),
        liveness.clone(),
        seen.clone(),
    );
    let r = Worker::spawn(
        spec(ProbeType::Readiness, 10, 0, 1, 3),
        run(Some(started.clone())),
        readiness.clone(),
        seen.clone(),
    );
    let s = Worker::spawn(
        spec(ProbeType::Startup, 3, 0, 1, 5),
        run(None),
        startup.clone(),
        seen.clone(),
    );
    advance(7).await;
    assert_eq!(startup.calls(), [0, 3, 6]);
    assert_eq!(*s.result.borrow(), ProbeResult::Success);
    assert!(s.is_finished(), "a startup probe that passed stops");
    assert!(
        liveness.calls().is_empty() && readiness.calls().is_empty(),
        "gated"
    );
    // The agent marks the container started: readiness probes at once, liveness at its next tick.
    advance(1).await;
    started_tx.send(true).unwrap();
    advance(1).await;
    assert_eq!(readiness.calls(), [8]);
    assert_eq!(*r.result.borrow(), ProbeResult::Success);
    advance(12).await;
    assert_eq!(liveness.calls(), [10, 20]);
    assert_eq!(readiness.calls(), [8, 18]);
}

#[tokio::test(start_paused = true)]
async fn a_startup_probe_that_keeps_failing_fails_once_and_stops() {
    let script = Script::new(vec![fail()]);
    let s = Worker::spawn(
        spec(ProbeType::Startup, 1, 0, 1, 4),
        started_run(),
        script.clone(),
        Arc::new(Seen::default()),
    );
    advance(10).await;
    assert_eq!(*s.result.borrow(), ProbeResult::Failure);
    assert_eq!(script.calls(), [0, 1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn errors_are_retried_then_discarded_without_breaking_a_run() {
    let error: Attempted = Err("couldn't find port".into());
    // Failure, then an attempt that errors three times (discarded), then failures.
    let script = Script::new(vec![fail(), error.clone(), error.clone(), error, fail(), fail()]);
    let seen = Arc::new(Seen::default());
    let worker = Worker::spawn(
        spec(ProbeType::Liveness, 1, 0, 1, 3),
        started_run(),
        script.clone(),
        seen.clone(),
    );
    advance(5).await;
    assert_eq!(script.calls(), [0, 1, 1, 1, 2, 3]);
    assert_eq!(
        *worker.result.borrow(),
        ProbeResult::Failure,
        "three failures, the errors between them not counted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_worker_probes_no_more_and_jitter_stays_within_a_period() {
    let script = Script::new(vec![OK]);
    let seen = Arc::new(Seen::default());
    let worker = Worker::spawn(
        spec(ProbeType::Readiness, 1, 0, 1, 3),
        started_run(),
        script.clone(),
        seen.clone(),
    );
    advance(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.stop();
    advance(5).await;
    assert_eq!(script.calls(), [0, 1, 2]);
    assert!(*seen.stopped.lock().unwrap());
    for _ in 0..5 {
        let script = Script::new(vec![OK]);
        let run = Run {
            jitter: true,
            ..started_run()
        };
        let _w = Worker::spawn(
            spec(ProbeType::Readiness, 10, 0, 1, 3),
            run,
            script.clone(),
            Arc::new(Seen::default()),
        );
        advance(11).await;
        let first = script.calls()[0];
        assert!(first < 10, "{first}");
    }
}
