//! End-to-end tests of the `glasshouse` binary, driven the way users drive it: the real kubectl, HTTP
//! clients, kube-rs. One test binary (each extra file in `tests/` is another link step); modules below.

#[path = "e2e/support.rs"]
mod support;

#[path = "e2e/api_errors.rs"]
mod api_errors;
#[path = "e2e/autoscaling.rs"]
mod autoscaling;
#[path = "e2e/collector.rs"]
mod collector;
#[path = "e2e/deployments.rs"]
mod deployments;
#[path = "e2e/durability.rs"]
mod durability;
#[path = "e2e/events.rs"]
mod events;
#[path = "e2e/exposition.rs"]
mod exposition;
#[path = "e2e/kubectl.rs"]
mod kubectl;
#[path = "e2e/logs.rs"]
mod logs;
#[path = "e2e/nodes.rs"]
mod nodes;
#[path = "e2e/otlp.rs"]
mod otlp;
#[path = "e2e/pods.rs"]
mod pods;
#[path = "e2e/probes.rs"]
mod probes;
#[path = "e2e/prometheus.rs"]
mod prometheus;
#[path = "e2e/reflector.rs"]
mod reflector;
#[path = "e2e/replicasets.rs"]
mod replicasets;
#[path = "e2e/scheduling.rs"]
mod scheduling;
#[path = "e2e/services.rs"]
mod services;
#[path = "e2e/shipping.rs"]
mod shipping;
#[path = "e2e/tracing.rs"]
mod tracing;
#[path = "e2e/ui.rs"]
mod ui;
