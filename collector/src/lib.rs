//! Collector: node and container resource samples (cgroups, procfs) and pod /metrics scraping. Not built yet; see the issue tracker.
