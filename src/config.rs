//! The configuration file: one versioned YAML document. Flags and environment variables override it;
//! what neither sets takes the documented default.
//!
//! ```yaml
//! apiVersion: glasshouse/v1alpha1
//! dataDir: /var/lib/glasshouse
//! apiAddr: 127.0.0.1:6443
//! metricsAddr: 127.0.0.1:9102
//! store: redb                      # or etcd://127.0.0.1:2379
//! compactionIntervalSeconds: 300
//! eventTTL: 1h
//! containerLogMaxSize: 10Mi        # container log rotation (the kubelet's defaults)
//! containerLogMaxFiles: 5
//! podCIDR: 127.100.0.0/16          # this node's pod addresses (loopback)
//! maxPods: 110
//! cgroupRoot: /sys/fs/cgroup
//! events: {sinks: {…}, routes: […], drop: […]}   # the event shipper, see eventer::shipper::config
//! logs: {sources: [{name, paths, exclude, startAt}]} # host files to index, see logpipe::config
//! metrics: {rules: […], external: […]}  # custom and external metrics, see metrics_server::config
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::cli::RunArgs;

pub const CONFIG_VERSION: &str = "glasshouse/v1alpha1";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigFile {
    /// Must be `glasshouse/v1alpha1`.
    pub api_version: Option<String>,
    /// Default: `~/.local/share/glasshouse`.
    pub data_dir: Option<PathBuf>,
    /// Default: `127.0.0.1:6443`.
    pub api_addr: Option<SocketAddr>,
    /// Default: `127.0.0.1:9102`.
    pub metrics_addr: Option<SocketAddr>,
    /// `redb` or `etcd://HOST:PORT[,…]`. Default: `redb`.
    pub store: Option<String>,
    /// How often the store's change log is compacted. Default: 300 (kube-apiserver's interval).
    pub compaction_interval_seconds: Option<u64>,
    /// How long events are kept after their last update (`1h`, `30m`, `90s`). Default: `1h`
    /// (kube-apiserver's `--event-ttl`).
    #[serde(rename = "eventTTL")]
    pub event_ttl: Option<String>,
    /// A container log file is rotated past this size (a quantity: `10Mi`, `512Ki`). Default: `10Mi`.
    pub container_log_max_size: Option<String>,
    /// Log files kept per container, the live one included (at least 2). Default: 5.
    pub container_log_max_files: Option<usize>,
    /// This node's pod addresses. Default: `127.100.0.0/16`.
    #[serde(rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    /// How many pods this node takes. Default: 110 (the kubelet's).
    pub max_pods: Option<u32>,
    /// Where the cgroup hierarchies are mounted. Default: `/sys/fs/cgroup`.
    pub cgroup_root: Option<PathBuf>,
    /// Shipping events to sinks (see the README); nothing is shipped without it.
    #[serde(default)]
    pub events: eventer::shipper::ShipperConfig,
    /// Host files the log pipeline follows besides the containers' logs.
    #[serde(default)]
    pub logs: logpipe::config::LogsConfig,
    /// Custom metrics rules and external metric sources (see the README).
    #[serde(default)]
    pub metrics: metrics_server::config::MetricsConfig,
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: ConfigFile =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let problems = config.validate();
        if !problems.is_empty() {
            anyhow::bail!(
                "{} is not valid:\n  - {}",
                path.display(),
                problems.join("\n  - ")
            );
        }
        Ok(config)
    }

    /// Every problem with the file, at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match self.api_version.as_deref() {
            Some(CONFIG_VERSION) => {}
            Some(other) => problems.push(format!(
                "apiVersion: {other:?} is not supported; use {CONFIG_VERSION:?}"
            )),
            None => problems.push(format!("apiVersion: required; use {CONFIG_VERSION:?}")),
        }
        if let Some(store) = &self.store
            && let Err(e) = StoreSpec::parse(store)
        {
            problems.push(format!("store: {e}"));
        }
        if self.compaction_interval_seconds == Some(0) {
            problems.push("compactionIntervalSeconds: must be at least 1".into());
        }
        if let Some(ttl) = &self.event_ttl
            && let Err(e) = parse_duration(ttl)
        {
            problems.push(format!("eventTTL: {e}"));
        }
        if let Some(size) = &self.container_log_max_size
            && let Err(e) = parse_size(size)
        {
            problems.push(format!("containerLogMaxSize: {e}"));
        }
        if self.container_log_max_files.is_some_and(|n| n < 2) {
            problems.push("containerLogMaxFiles: must be at least 2".into());
        }
        problems.extend(self.metrics.validate());
        if self.max_pods == Some(0) {
            problems.push("maxPods: must be at least 1".into());
        }
        if let Some(cidr) = &self.pod_cidr
            && let Err(e) = parse_cidr(cidr)
        {
            problems.push(format!("podCIDR: {e}"));
        }
        problems.extend(self.events.validate());
        problems.extend(self.logs.validate());
        if let Err(e) = log_retention(&self.logs) {
            problems.push(e);
        }
        problems
    }
}

/// A positive duration such as `1h`, `30m`, `90s` or `1h30m` (Go's `1h0m0s` too).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write it like 1h, 30m, 90s or 1h30m"))?;
    Duration::try_from(parsed)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?}: must be more than zero"))
}

/// The log index's partitioning and retention (`logs.partition`, `logs.retention`), defaults filled in.
pub fn log_retention(logs: &logpipe::config::LogsConfig) -> Result<logpipe::index::Retention, String> {
    let defaults = logpipe::index::Retention::default();
    let span = match &logs.partition {
        Some(text) => parse_duration(text)
            .and_then(|d| {
                (d >= Duration::from_secs(60))
                    .then_some(d)
                    .ok_or_else(|| format!("{text:?}: must be at least 1m"))
            })
            .map_err(|e| format!("logs.partition: {e}"))?,
        None => defaults.span,
    };
    let max_age = match logs.retention.max_age.as_deref() {
        Some("none") => None,
        Some(text) => Some(parse_duration(text).map_err(|e| format!("logs.retention.maxAge: {e}"))?),
        None => defaults.max_age,
    };
    let max_size = match logs.retention.max_size.as_deref() {
        Some("none") => None,
        Some(text) => Some(parse_size(text).map_err(|e| format!("logs.retention.maxSize: {e}"))?),
        None => defaults.max_size,
    };
    Ok(logpipe::index::Retention {
        span,
        max_age,
        max_size,
    })
}

/// A byte size written as a Kubernetes quantity (`10Mi`, `512Ki`, `1000000`), at least 1 KiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    control_plane::scheduler::fit::milli_value(text)
        .map(|m| m / 1000)
        .and_then(|bytes| u64::try_from(bytes).ok())
        .filter(|bytes| *bytes >= 1024)
        .ok_or_else(|| format!("{text:?} is not a size of at least 1Ki; write it like 10Mi"))
}

/// An IPv4 range in loopback, `127.X.Y.0/P` with P between 8 and 24.
pub fn parse_cidr(text: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let bad = || format!("{text:?} is not a loopback IPv4 range such as 127.100.0.0/16 (prefix 8 to 24)");
    let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if !ip.is_loopback() || !(8..=24).contains(&prefix) {
        return Err(bad());
    }
    Ok((ip, prefix))
}

/// Which store backend to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    Redb,
    Etcd(Vec<String>),
}

impl StoreSpec {
    pub fn parse(spec: &str) -> Result<Self, String> {
        if spec == "redb" {
            return Ok(StoreSpec::Redb);
        }
        let Some(endpoints) = spec.strip_prefix("etcd://") else {
            return Err(format!(
                "{spec:?} is neither \"redb\" nor \"etcd://HOST:PORT[,HOST:PORT…]\""
            ));
        };
        let endpoints: Vec<String> = endpoints
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() || endpoints.iter().any(|e| !e.contains(':')) {
            return Err(format!("{spec:?}: name at least one etcd endpoint as HOST:PORT"));
        }
        Ok(StoreSpec::Etcd(endpoints))
    }
}

/// The settings a run uses, after flags, environment, file and defaults.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub store: StoreSpec,
    pub compaction_interval: Duration,
    pub event_ttl: Duration,
    pub events: eventer::shipper::ShipperConfig,
    pub logs: logpipe::config::LogsConfig,
    pub log_retention: logpipe::index::Retention,
    pub node_name: String,
    pub node_monitor_grace_period: Duration,
    pub container_logs: control_plane::node::crilog::Rotation,
    pub pod_network: (std::net::Ipv4Addr, u8),
    pub cgroup_root: PathBuf,
    pub max_pods: u32,
    pub metric_resolution: Duration,
    pub hpa: control_plane::controllers::hpa::HpaConfig,
    pub metrics: metrics_server::config::MetricsConfig,
}

pub fn default_data_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    home.join(".local/share/glasshouse")
}

/// The host name, lowercased, as the kubelet names its node.
fn default_node_name() -> String {
    Some(control_plane::node::host::hostname().to_lowercase())
        .filter(|h| control_plane::api::validation::dns1123_subdomain_errors(h).is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn resolve(args: &RunArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let store = args.store.clone().or(file.store).unwrap_or_else(|| "redb".into());
    Ok(Settings {
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir),
        api_addr: args
            .api_addr
            .or(file.api_addr)
            .unwrap_or_else(|| "127.0.0.1:6443".parse().expect("literal")),
        metrics_addr: args
            .metrics_addr
            .or(file.metrics_addr)
            .unwrap_or_else(|| "127.0.0.1:9102".parse().expect("literal")),
        store: StoreSpec::parse(&store).map_err(|e| anyhow::anyhow!("--store: {e}"))?,
        compaction_interval: Duration::from_secs(file.compaction_interval_seconds.unwrap_or(300)),
        event_ttl: match (args.event_ttl, file.event_ttl) {
            (Some(ttl), _) => ttl,
            // Validated when the file was loaded.
            (None, Some(text)) => parse_duration(&text).map_err(|e| anyhow::anyhow!("eventTTL: {e}"))?,
            (None, None) => Duration::from_secs(3600),
        },
        events: file.events,
        metrics: file.metrics,
        // Validated when the file was loaded.
        log_retention: log_retention(&file.logs).map_err(|e| anyhow::anyhow!(e))?,
        logs: file.logs,
        node_name: match &args.node_name {
            Some(name) => {
                let problems = control_plane::api::validation::dns1123_subdomain_errors(name);
                if !problems.is_empty() {
                    anyhow::bail!("--node-name {name:?}: {}", problems.join("; "));
                }
                name.clone()
            }
            None => default_node_name(),
        },
        node_monitor_grace_period: args.node_monitor_grace_period.unwrap_or(Duration::from_secs(40)),
        container_logs: control_plane::node::crilog::Rotation {
            max_size: match &file.container_log_max_size {
                Some(size) => parse_size(size).map_err(|e| anyhow::anyhow!("containerLogMaxSize: {e}"))?,
                None => control_plane::node::crilog::Rotation::default().max_size,
            },
            max_files: file
                .container_log_max_files
                .unwrap_or(control_plane::node::crilog::Rotation::default().max_files),
        },
        pod_network: match args.pod_cidr.as_ref().or(file.pod_cidr.as_ref()) {
            Some(cidr) => parse_cidr(cidr).map_err(|e| anyhow::anyhow!("--pod-cidr: {e}"))?,
            None => control_plane::node::DEFAULT_POD_NETWORK,
        },
        max_pods: match args.max_pods.or(file.max_pods) {
            Some(0) => anyhow::bail!("--max-pods: must be at least 1"),
            Some(n) => n,
            None => control_plane::node::host::DEFAULT_MAX_PODS,
        },
        metric_resolution: match args.metric_resolution {
            Some(d) if d < Duration::from_secs(1) => {
                anyhow::bail!("--metric-resolution: must be at least 1s")
            }
            Some(d) => d,
            None => Duration::from_secs(1),
        },
        hpa: hpa_config(args)?,
        cgroup_root: args
            .cgroup_root
            .clone()
            .or(file.cgroup_root)
            .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup")),
    })
}

/// The HPA controller's flags over its defaults.
fn hpa_config(args: &RunArgs) -> anyhow::Result<control_plane::controllers::hpa::HpaConfig> {
    let defaults = control_plane::controllers::hpa::HpaConfig::default();
    if args.hpa_sync_period.is_some_and(|d| d < Duration::from_secs(1)) {
        anyhow::bail!("--hpa-sync-period: must be at least 1s");
    }
    if let Some(t) = args.hpa_tolerance
        && !(t.is_finite() && t >= 0.0)
    {
        anyhow::bail!("--hpa-tolerance: must be a number of at least 0, e.g. 0.1");
    }
    Ok(control_plane::controllers::hpa::HpaConfig {
        sync_period: args.hpa_sync_period.unwrap_or(defaults.sync_period),
        tolerance: args.hpa_tolerance.unwrap_or(defaults.tolerance),
        downscale_stabilization: args
            .hpa_downscale_stabilization
            .unwrap_or(defaults.downscale_stabilization),
        cpu_initialization_period: args
            .hpa_cpu_initialization_period
            .unwrap_or(defaults.cpu_initialization_period),
        initial_readiness_delay: args
            .hpa_initial_readiness_delay
            .unwrap_or(defaults.initial_readiness_delay),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let config: ConfigFile = serde_yaml::from_str(
            "apiVersion: v9\nstore: mysql://x\ncompactionIntervalSeconds: 0\neventTTL: x\n",
        )
        .unwrap();
        assert_eq!(config.validate().len(), 4);
        assert!(serde_yaml::from_str::<ConfigFile>("apiVersion: glasshouse/v1alpha1\nbogus: 1\n").is_err());
    }

    #[test]
    fn the_readme_shipping_example_is_valid() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("apiVersion: glasshouse/v1alpha1\nevents:")
            .expect("the README shows an events config");
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let config: ConfigFile = serde_yaml::from_str(example).unwrap();
        assert_eq!(config.validate(), Vec::<String>::new());
        assert_eq!(config.events.sinks.len(), 4);
    }

    #[test]
    fn the_readme_metrics_example_is_valid() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("apiVersion: glasshouse/v1alpha1\nmetrics:")
            .expect("the README shows a metrics config");
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let config: ConfigFile = serde_yaml::from_str(example).unwrap();
        assert_eq!(config.validate(), Vec::<String>::new());
        assert_eq!(
            (config.metrics.rules.len(), config.metrics.external.len()),
            (1, 2)
        );
        let bad: ConfigFile = serde_yaml::from_str(
            "apiVersion: glasshouse/v1alpha1\nmetrics:\n  rules: [{seriesQuery: 'x{'}]\n  external: [{name: q}]\n",
        )
        .unwrap();
        assert_eq!(bad.validate().len(), 2, "{:?}", bad.validate());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h0m0s"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn store_specs() {
        assert_eq!(StoreSpec::parse("redb"), Ok(StoreSpec::Redb));
        assert_eq!(
            StoreSpec::parse("etcd://127.0.0.1:2379,127.0.0.1:2380"),
            Ok(StoreSpec::Etcd(vec![
                "127.0.0.1:2379".into(),
                "127.0.0.1:2380".into()
            ]))
        );
        assert!(StoreSpec::parse("etcd://").is_err());
        assert!(StoreSpec::parse("sqlite").is_err());
    }
}
