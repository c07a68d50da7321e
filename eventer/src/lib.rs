//! Eventer: the event recorder with client-go's correlator, event TTL, and the shipper to sinks. Not built yet; see the issue tracker.
