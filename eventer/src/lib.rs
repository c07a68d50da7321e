//! Eventer: records Kubernetes events the way client-go does, for every component of Glasshouse (the
//! correlator's aggregation, dedup and spam filter, and its write path), and expires them after their
//! TTL as the API server does. Shipping events to sinks lands with the rest of its issue.

mod clock;
pub mod correlator;
pub mod recorder;
pub mod series;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod ttl;

pub use recorder::{Broadcaster, BroadcasterConfig, BroadcasterContext, EventType, Recorder};
pub use series::EventsRecorder;
