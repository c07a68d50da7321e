//! The node agent (the kubelet's role). This part registers the node and keeps it alive: it creates (or
//! updates) its Node with the machine's capacity, addresses, system info and conditions, renews its
//! Lease in `kube-node-lease` every 10 s, and reports its status again every 5 minutes, as the kubelet
//! does (`nodeLeaseDurationSeconds` 40, `nodeStatusReportFrequency` 5m). The pods bound to the node run
//! as host processes (`pods`, `worker`), each container owned by a shim (`shim`, `runtime`); `proxy`
//! forwards Service addresses to ready endpoints.

mod backoff;
pub mod cgroups;
pub mod crilog;
mod env;
pub mod host;
pub mod logs;
mod pods;
pub mod probes;
mod proxy;
pub mod runtime;
pub mod shim;
mod status;
mod sys;
mod worker;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use eventer::Recorder;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeStatus, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::cgroups::Cgroups;
use self::crilog::Rotation;
use self::host::Host;
use self::pods::{PodRecord, Shared};
use crate::controllers::api_code;
use crate::telemetry::NodeMetrics;

/// The kubelet's event source component.
pub const COMPONENT: &str = "kubelet";
/// How long a lease holds without renewal (`nodeLeaseDurationSeconds`).
pub const LEASE_DURATION: Duration = Duration::from_secs(40);
/// How often the lease is renewed: a quarter of its duration, as the kubelet does.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often the status is written even when nothing changed (`nodeStatusReportFrequency`).
const REPORT_EVERY: Duration = Duration::from_secs(300);
/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The most processes (threads included) one container may have.
pub const PIDS_LIMIT: i64 = 4096;
/// The node's pod addresses when none are configured.
pub const DEFAULT_POD_NETWORK: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 100, 0, 0), 16);

/// The node agent's settings.
#[derive(Clone, Debug)]
pub struct NodeAgentConfig {
    /// The Node's name (default: the host name, lowercased).
    pub name: String,
    /// The node's address (`InternalIP`), where its NodePorts listen.
    pub address: String,
    /// Where pods' records (`run/pods`) and container logs (`pods`) live.
    pub data_dir: PathBuf,
    /// The glasshouse binary that runs as each container's shim (default: this program).
    pub shim: Option<PathBuf>,
    /// Container log rotation.
    pub rotation: Rotation,
    /// Where the cgroup hierarchies are mounted (`/sys/fs/cgroup`); containers run without limits when
    /// nothing usable is there.
    pub cgroup_root: PathBuf,
    /// The node's pod address range (base, prefix length).
    pub pod_network: (Ipv4Addr, u8),
    /// How many pods the node takes (the kubelet's `maxPods`).
    pub max_pods: u32,
}

/// What the node agent takes from the process.
pub struct NodeAgentContext<'a> {
    pub client: kube::Client,
    pub events: eventer::Broadcaster,
    pub registry: &'a mut Registry,
    pub shutdown: CancellationToken,
    /// Where probe attempts are counted (`/metrics/probes`) and kept (the `pods/probes` subresource).
    pub probe_metrics: probe_engine::metrics::ProbeMetrics,
    pub probe_history: std::sync::Arc<probe_engine::history::History>,
    /// Samples the node's and the containers' resource usage (served by the process).
    pub collector: collector::Collector,
    /// How often it samples.
    pub resolution: std::time::Duration,
}

impl NodeAgentConfig {
    /// Registers the node, keeps it alive and runs its pods; stops with the shutdown token (the
    /// containers keep running).
    pub fn build(self, ctx: NodeAgentContext<'_>) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let shim = match &self.shim {
            Some(path) => path.clone(),
            None => std::env::current_exe()?,
        };
        let host = Host::read();
        let recorder = ctx.events.recorder(COMPONENT, Some(&self.name));
        let cgroups = Cgroups::detect(&self.cgroup_root);
        match &cgroups {
            Cgroups::Unavailable { reason } => {
                tracing::warn!(reason = %reason, "cgroups unavailable: containers run without resource limits")
            }
            found => tracing::info!(cgroups = ?found, "container cgroups"),
        }
        let running = Arc::new(pods::Running::default());
        let shared = Arc::new(Shared::new(
            ctx.client.clone(),
            recorder.clone(),
            self.address.clone(),
            host.capacity(self.max_pods),
            shim,
            &self.data_dir,
            self.rotation,
            cgroups,
            NodeMetrics::register(ctx.registry),
            self.pod_network,
            Arc::new(probes::ProbeContext {
                metrics: ctx.probe_metrics,
                history: ctx.probe_history,
                recorder: recorder.clone(),
                agent_started: tokio::time::Instant::now(),
            }),
            running.clone(),
        ));
        ctx.collector.run(running, ctx.resolution, ctx.shutdown.clone());
        let agent = Agent {
            recorder,
            host,
            config: self,
            client: ctx.client,
            shared,
        };
        Ok(tokio::spawn(agent.run(ctx.shutdown)))
    }
}

struct Agent {
    config: NodeAgentConfig,
    client: kube::Client,
    recorder: Recorder,
    host: Host,
    shared: Arc<Shared>,
}

impl Agent {
    async fn run(self, shutdown: CancellationToken) {
        // Registration is retried until it works: nothing else of the agent makes sense before it.
        let node = loop {
            match self.register().await {
                Ok(node) => break node,
                Err(e) => {
                    tracing::warn!(node = %self.config.name, error = %e, "registering the node failed, retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        tracing::info!(node = %self.config.name, "node registered");
        if let Cgroups::Unavailable { reason } = &self.shared.cgroups {
            self.recorder.warning(
                &self.reference(),
                "CgroupsUnavailable",
                format!("Containers run without resource limits: {reason}"),
            );
        }
        tokio::spawn(pods::run(
            self.shared.clone(),
            self.config.name.clone(),
            shutdown.clone(),
        ));
        match self.config.address.parse() {
            Ok(address) => {
                tokio::spawn(proxy::run(self.client.clone(), address, shutdown.clone()));
            }
            Err(e) => {
                tracing::error!(address = %self.config.address, error = %e, "no service proxy: the node address is not an IP")
            }
        }
        let mut renew = tokio::time::interval(RENEW_EVERY);
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = renew.tick() => {
                    if let Err(e) = self.renew_lease(&node).await {
                        tracing::warn!(node = %self.config.name, error = %e, "renewing the node lease failed");
                    }
                }
                _ = report.tick() => {
                    if let Err(e) = self.report_status().await {
                        tracing::warn!(node = %self.config.name, error = %e, "reporting the node status failed");
                    }
                }
            }
        }
    }

    /// The kubelet's `registerWithAPIServer` and first status update, with its start-up events.
    async fn register(&self) -> Result<Node, kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let name = &self.config.name;
        let labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), name.clone()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), host::go_arch().to_string()),
            ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
            ("beta.kubernetes.io/arch".to_string(), host::go_arch().to_string()),
        ]);
        let fresh = Node {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels.clone()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        let existed = match nodes.create(&PostParams::default(), &fresh).await {
            Ok(_) => false,
            Err(e) if api_code(&e) == Some(409) => {
                // Registered before (a restart): keep its spec, refresh the labels the agent owns.
                let patch = json!({"metadata": {"labels": labels}});
                nodes
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                true
            }
            Err(e) => return Err(e),
        };
        let reference = self.reference();
        self.recorder.normal(&reference, "Starting", "Starting kubelet.");
        let node = self.report_status().await?;
        if !existed {
            for reason in [
                "NodeHasSufficientMemory",
                "NodeHasNoDiskPressure",
                "NodeHasSufficientPID",
                "NodeReady",
            ] {
                self.recorder
                    .normal(&reference, reason, format!("Node {name} status is now: {reason}"));
            }
        }
        Ok(node)
    }

    /// Writes the node's status: capacity, addresses, system info, and the conditions as the kubelet
    /// sets them on a healthy node.
    async fn report_status(&self) -> Result<Node, kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let now = Time(jiff::Timestamp::now());
        let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now.clone()),
        };
        let mut conditions = vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ];
        conditions.push(match &self.shared.cgroups {
            Cgroups::Unavailable { reason } => condition(
                "ResourceLimits",
                "False",
                "CgroupsUnavailable",
                &format!("containers run without resource limits: {reason}"),
            ),
            Cgroups::V1 { .. } => condition(
                "ResourceLimits",
                "True",
                "CgroupsV1",
                "container limits enforced by cgroup v1",
            ),
            Cgroups::V2 { .. } => condition(
                "ResourceLimits",
                "True",
                "CgroupsV2",
                "container limits enforced by cgroup v2",
            ),
        });
        // A transition time changes only with the status.
        if let Some(current) = nodes
            .get_opt(&self.config.name)
            .await?
            .and_then(|n| n.status?.conditions)
        {
            for condition in &mut conditions {
                if let Some(old) = current
                    .iter()
                    .find(|c| c.type_ == condition.type_ && c.status == condition.status)
                {
                    condition.last_transition_time = old.last_transition_time.clone();
                }
            }
        }
        let status = NodeStatus {
            capacity: Some(self.host.capacity(self.config.max_pods)),
            allocatable: Some(self.host.capacity(self.config.max_pods)),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: self.config.address.clone(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: self.host.hostname.clone(),
                },
            ]),
            conditions: Some(conditions),
            node_info: Some(self.host.info.clone()),
            ..NodeStatus::default()
        };
        let patch = json!({"status": status});
        nodes
            .patch_status(&self.config.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
    }

    /// Renews (or creates) the node's lease in `kube-node-lease`, owned by the Node so it goes with it.
    async fn renew_lease(&self, node: &Node) -> Result<(), kube::Error> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let name = &self.config.name;
        let spec = LeaseSpec {
            holder_identity: Some(name.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        };
        let patch = json!({"spec": {"renewTime": spec.renew_time, "holderIdentity": name, "leaseDurationSeconds": spec.lease_duration_seconds}});
        match leases
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Err(e) if api_code(&e) == Some(404) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(LEASE_NAMESPACE.into()),
                        owner_references: Some(vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Node".into(),
                            name: name.clone(),
                            uid: node.metadata.uid.clone().unwrap_or_default(),
                            ..OwnerReference::default()
                        }]),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                leases.create(&PostParams::default(), &lease).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// The kubelet's reference to its node in events: the uid is the node's name.
    fn reference(&self) -> ObjectReference {
        ObjectReference {
            kind: Some("Node".into()),
            name: Some(self.config.name.clone()),
            uid: Some(self.config.name.clone()),
            ..ObjectReference::default()
        }
    }
}
