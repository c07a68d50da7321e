//! Glasshouse's probe engine: liveness, readiness and startup probes with the kubelet's semantics
//! (`spec/probes.md`). `spec` turns an API `Probe` into a runnable one, `handlers` run attempts
//! (httpGet, tcpSocket, exec, grpc), `worker` applies the thresholds and the startup gating, and the
//! node agent acts on the results (restarts, readiness). `metrics` has the kubelet's probe metrics and
//! `history` the last attempts of every probe, served as a pod subresource.

pub mod handlers;
pub mod history;
pub mod metrics;
pub mod spec;
pub mod worker;

pub use handlers::{Attempted, ExecRunner, Handlers, Outcome, Runner};
pub use spec::{Handler, Params, ProbeSpec, ProbeType, Scheme, SpecError};
pub use worker::{AttemptRecord, Observer, ProbeResult, Run, Worker};
