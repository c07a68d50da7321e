//! Metrics server: sample windows and rates behind metrics.k8s.io, custom.metrics.k8s.io and external.metrics.k8s.io. Not built yet; see the issue tracker.
