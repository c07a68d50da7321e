//! Glasshouse's metrics-server: keeps the last two usage samples of the node and of every container
//! (from the collector), turns CPU time into a rate over their window, and serves the
//! `metrics.k8s.io/v1beta1` API (`NodeMetrics`, `PodMetrics`) through the API server, so that
//! `kubectl top` works and the HPA can read resource metrics (`spec/hpa.md` §4).
//!
//! As upstream: CPU in nanocores over `[timestamp − window, timestamp]`, memory the working set; a pod
//! is served once every container has two samples; lists sorted by namespace and name; label
//! selectors honoured (the pods' labels come from the API, through `Directory`).

pub mod api;
pub mod config;
pub mod custom;
pub mod external;
pub mod store;

pub use api::{Directory, LabelRequirement, PodMeta};
pub use store::Store;
