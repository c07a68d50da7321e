//! Eventer: records Kubernetes events the way client-go does, for every component of Glasshouse (the
//! correlator's aggregation, dedup and spam filter, and both write paths: core/v1 counts and
//! events.k8s.io/v1 series), expires them after their TTL as the API server does, and ships them to
//! sinks at least once (`shipper`).

mod clock;
pub mod correlator;
pub mod recorder;
pub mod series;
pub mod shipper;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod ttl;

pub use recorder::{Broadcaster, BroadcasterConfig, BroadcasterContext, EventType, Recorder};
pub use series::EventsRecorder;
