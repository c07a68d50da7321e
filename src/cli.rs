//! The command line: a contract that the README, the tests and other tools rely on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "glasshouse",
    version,
    about = "An observability-first, Kubernetes-compatible orchestrator in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole platform on this machine: API server, store, controllers and the node agent.
    Up(RunArgs),
    /// Run the control plane only (API server, store, controllers), for several nodes.
    Server(RunArgs),
    /// Print the version.
    Version,
    /// Stop every container started from a data dir (they outlive `glasshouse up` by design).
    StopContainers {
        /// The data dir [default: ~/.local/share/glasshouse]
        #[arg(long, env = "GLASSHOUSE_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run one container (started by the node agent, never by hand): `glasshouse shim DIR`.
    #[command(hide = true)]
    Shim { dir: PathBuf },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the store, the token and the kubeconfig live [default: ~/.local/share/glasshouse]
    #[arg(long, env = "GLASSHOUSE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address of the Kubernetes API (port 0 picks a free port) [default: 127.0.0.1:6443]
    #[arg(long, env = "GLASSHOUSE_API_ADDR")]
    pub api_addr: Option<SocketAddr>,

    /// Address of the Prometheus endpoint /metrics (port 0 picks a free port) [default: 127.0.0.1:9102]
    #[arg(long, env = "GLASSHOUSE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// The store: `redb` (a file in the data dir) or `etcd://HOST:PORT[,HOST:PORT…]` [default: redb]
    #[arg(long, env = "GLASSHOUSE_STORE")]
    pub store: Option<String>,

    /// How long events are kept after their last update, e.g. `1h`, `30m`, `90s` [default: 1h]
    #[arg(long, env = "GLASSHOUSE_EVENT_TTL", value_parser = crate::config::parse_duration)]
    pub event_ttl: Option<Duration>,

    /// The name of this machine's Node (`up` only) [default: the host name, lowercased]
    #[arg(long, env = "GLASSHOUSE_NODE_NAME")]
    pub node_name: Option<String>,

    /// How long a node may go without renewing its lease before it is marked NotReady and tainted
    /// (kube-controller-manager's `--node-monitor-grace-period`) [default: 40s]
    #[arg(long, env = "GLASSHOUSE_NODE_MONITOR_GRACE_PERIOD", value_parser = crate::config::parse_duration)]
    pub node_monitor_grace_period: Option<Duration>,

    /// How often the collector samples containers' usage and metrics.k8s.io's rates move on, at
    /// least 1s (metrics-server's `--metric-resolution`, 15s in its manifest) [default: 1s]
    #[arg(long, env = "GLASSHOUSE_METRIC_RESOLUTION", value_parser = crate::config::parse_duration)]
    pub metric_resolution: Option<Duration>,

    /// How often every HorizontalPodAutoscaler is reconciled, at least 1s
    /// (`--horizontal-pod-autoscaler-sync-period`, 15s upstream) [default: 1s]
    #[arg(long, env = "GLASSHOUSE_HPA_SYNC_PERIOD", value_parser = crate::config::parse_duration)]
    pub hpa_sync_period: Option<Duration>,

    /// The HPA's tolerance: no scaling while the metrics are this close to their targets
    /// (`--horizontal-pod-autoscaler-tolerance`) [default: 0.1]
    #[arg(long, env = "GLASSHOUSE_HPA_TOLERANCE")]
    pub hpa_tolerance: Option<f64>,

    /// How long the HPA keeps the highest recent recommendation before scaling down, for HPAs without
    /// their own window (`--horizontal-pod-autoscaler-downscale-stabilization`) [default: 5m]
    #[arg(long, env = "GLASSHOUSE_HPA_DOWNSCALE_STABILIZATION", value_parser = crate::config::parse_duration)]
    pub hpa_downscale_stabilization: Option<Duration>,

    /// How long after a pod starts its CPU samples are only trusted once it is ready
    /// (`--horizontal-pod-autoscaler-cpu-initialization-period`) [default: 5m]
    #[arg(long, env = "GLASSHOUSE_HPA_CPU_INITIALIZATION_PERIOD", value_parser = crate::config::parse_duration)]
    pub hpa_cpu_initialization_period: Option<Duration>,

    /// How long after start a pod that is not ready counts as never having been ready
    /// (`--horizontal-pod-autoscaler-initial-readiness-delay`) [default: 30s]
    #[arg(long, env = "GLASSHOUSE_HPA_INITIAL_READINESS_DELAY", value_parser = crate::config::parse_duration)]
    pub hpa_initial_readiness_delay: Option<Duration>,

    /// This node's pod addresses, a loopback range (`up` only) [default: 127.100.0.0/16]
    #[arg(long, env = "GLASSHOUSE_POD_CIDR")]
    pub pod_cidr: Option<String>,

    /// How many pods this node takes (the kubelet's `--max-pods`) (`up` only) [default: 110]
    #[arg(long, env = "GLASSHOUSE_MAX_PODS")]
    pub max_pods: Option<u32>,

    /// Where the cgroup hierarchies are mounted; containers run without limits when none is usable
    /// there (`up` only) [default: /sys/fs/cgroup]
    #[arg(long, env = "GLASSHOUSE_CGROUP_ROOT")]
    pub cgroup_root: Option<PathBuf>,

    /// A YAML configuration file; flags and environment variables override it.
    #[arg(long, env = "GLASSHOUSE_CONFIG")]
    pub config: Option<PathBuf>,

    /// How component logs are written to standard error.
    #[arg(long, value_enum, default_value = "text", env = "GLASSHOUSE_LOG_FORMAT")]
    pub log_format: LogFormat,
}
