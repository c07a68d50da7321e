//! Glasshouse's control plane: the store, the Kubernetes-compatible API server on it, and (as they land)
//! the controllers, scheduler and node runtime that drive workloads through that API.

pub mod addresses;
pub mod api;
pub mod client;
pub mod controllers;
pub mod exposition;
pub mod node;
pub mod scheduler;
pub mod server;
pub mod state_metrics;
pub mod store;
pub mod telemetry;
