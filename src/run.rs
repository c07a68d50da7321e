//! The `up` and `server` modes: open the store, start the log pipeline (up), the API server, the event
//! shipper, the node agent (up) and the Prometheus endpoint, write the kubeconfig, print the addresses,
//! and shut everything down on SIGINT or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use control_plane::api::ApiState;
use control_plane::exposition::EncodeTimes;
use control_plane::server::{ApiServerConfig, ApiServerContext};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::{config, kubeconfig, logging, pidfile, pki, store};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Everything on one machine: the control plane and this machine's node agent.
    Up,
    /// The control plane alone.
    Server,
}

pub fn main(args: RunArgs, mode: Mode) -> std::process::ExitCode {
    let _tracing = logging::init(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, mode)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "glasshouse stopped");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs, mode: Mode) -> anyhow::Result<()> {
    let settings = config::resolve(&args)?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data dir {}", settings.data_dir.display()))?;
    let token = kubeconfig::token(&settings.data_dir)?;
    let pki = pki::load_or_create(&settings.data_dir, settings.api_addr.ip())?;
    let store = store::open(&settings.store, &settings.data_dir).await?;
    // After the store: a second instance on the same data dir fails at its lock before it gets here.
    pidfile::write(&settings.data_dir).context("writing the pid file")?;
    let shutdown = CancellationToken::new();
    let mut registry = Registry::default();
    let encode_times = EncodeTimes::register(&mut registry);
    // Probe metrics have an endpoint of their own (`/metrics/probes`, as the kubelet's); the probe
    // history is served by the API as `pods/probes`.
    let mut probe_registry = Registry::default();
    let probe_metrics = probe_engine::metrics::ProbeMetrics::register(&mut probe_registry);
    let probe_history = Arc::new(probe_engine::history::History::default());
    // The node's and the containers' resource usage, sampled by the node agent, served as the kubelet's
    // /metrics/resource and cAdvisor's /metrics/cadvisor.
    let collector =
        collector::Collector::with_metrics(collector::scrape::CollectorMetrics::register(&mut registry));

    // The log pipeline of this node's containers (up mode), searched through the API under /logs. Pod
    // labels come from a cache of the pods once the API runs.
    let pod_labels = logpipe::tailer::PodLabels::expected();
    let logs = match mode {
        Mode::Up => Some(
            logpipe::LogPipeConfig {
                logs: settings.logs.clone(),
                retention: settings.log_retention,
                labels: pod_labels.clone(),
                ..logpipe::LogPipeConfig::new(
                    settings.data_dir.join("logs/index"),
                    settings.data_dir.join("pods"),
                    settings.node_name.clone(),
                )
            }
            .build(logpipe::LogPipeContext {
                registry: &mut registry,
                shutdown: shutdown.clone(),
            })
            .context("starting the log pipeline")?,
        ),
        Mode::Server => None,
    };
    // metrics.k8s.io (up mode): usage windows over the collector's samples, served through the API.
    let metrics_store = metrics_server::Store::new(&settings.node_name);
    let metrics_directory = crate::metrics_api::ApiDirectory::default();
    let mut extra_routes: Vec<(&'static str, axum::Router)> =
        logs.iter().map(|l| ("/logs", l.router())).collect();
    let mut external_groups = Vec::new();
    if mode == Mode::Up {
        extra_routes.push((
            "/apis/metrics.k8s.io",
            metrics_server::api::router(metrics_store.clone(), Arc::new(metrics_directory.clone())),
        ));
        external_groups.push(control_plane::api::discovery::ExternalGroup {
            name: "metrics.k8s.io",
            version: "v1beta1",
            resources: vec![("nodes", "NodeMetrics", false), ("pods", "PodMetrics", true)],
            verbs: &["get", "list"],
        });
        // custom.metrics.k8s.io from the pods' scraped series; its metrics come and go with them, so
        // discovery lists the group and `/apis/custom.metrics.k8s.io/v1beta2` the metrics of the moment.
        let rules = settings
            .metrics
            .rules
            .iter()
            .map(metrics_server::custom::CompiledRule::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("metrics.rules: {e}"))?;
        extra_routes.push((
            "/apis/custom.metrics.k8s.io",
            metrics_server::custom::router(
                rules,
                collector.scraper().clone(),
                Arc::new(metrics_directory.clone()),
            ),
        ));
        external_groups.push(control_plane::api::discovery::ExternalGroup {
            name: "custom.metrics.k8s.io",
            version: "v1beta2",
            resources: Vec::new(),
            verbs: &["get"],
        });
    }
    // external.metrics.k8s.io from the configured sources (any mode: it needs no node).
    extra_routes.push((
        "/apis/external.metrics.k8s.io",
        metrics_server::external::router(
            settings.metrics.external.clone(),
            Arc::new(metrics_directory.clone()),
        ),
    ));
    external_groups.push(control_plane::api::discovery::ExternalGroup {
        name: "external.metrics.k8s.io",
        version: "v1beta1",
        resources: Vec::new(),
        verbs: &["get"],
    });
    let public_routes = logs.iter().map(|_| ("/ui", logpipe::ui::router())).collect();

    let api = ApiServerConfig {
        addr: settings.api_addr,
        compaction_interval: settings.compaction_interval,
        tls: Some(pki.server.clone()),
        event_ttl: settings.event_ttl,
        controllers: control_plane::controllers::ControllersConfig {
            node_lifecycle: control_plane::controllers::node_lifecycle::NodeLifecycleConfig {
                grace_period: settings.node_monitor_grace_period,
            },
            hpa: settings.hpa.clone(),
        },
        node_data_dir: (mode == Mode::Up).then(|| settings.data_dir.clone()),
        extra_routes,
        public_routes,
        probe_history: (mode == Mode::Up).then(|| probe_history.clone()),
        external_groups,
    }
    .build(ApiServerContext {
        store: store.clone(),
        registry: &mut registry,
        token: token.clone(),
        shutdown: shutdown.clone(),
    })
    .await
    .with_context(|| format!("starting the API server on {}", settings.api_addr))?;

    let _ = metrics_directory.0.set(api.client.clone());
    if mode == Mode::Up {
        metrics_store
            .clone()
            .run(collector.clone(), settings.metric_resolution, shutdown.clone());
    }
    if logs.is_some() {
        supply_pod_labels(&api.client, &settings.node_name, pod_labels, &shutdown);
    }

    settings
        .events
        .build(eventer::shipper::ShipperContext {
            client: api.client.clone(),
            spool_path: settings.data_dir.join("events/shipper.redb"),
            registry: &mut registry,
            shutdown: shutdown.clone(),
            // In up mode, `logIndex` sinks write into the log pipeline's index.
            event_index: logs.as_ref().map(|l| {
                std::sync::Arc::new(crate::event_index::LogIndexEvents(l.event_lines()))
                    as std::sync::Arc<dyn eventer::shipper::sinks::index::EventIndex>
            }),
        })
        .context("starting the event shipper")?;

    if mode == Mode::Up {
        control_plane::node::NodeAgentConfig {
            name: settings.node_name.clone(),
            address: match settings.api_addr.ip() {
                ip if ip.is_unspecified() => "127.0.0.1".to_string(),
                ip => ip.to_string(),
            },
            data_dir: settings.data_dir.clone(),
            shim: None,
            rotation: settings.container_logs,
            cgroup_root: settings.cgroup_root.clone(),
            pod_network: settings.pod_network,
            max_pods: settings.max_pods,
        }
        .build(control_plane::node::NodeAgentContext {
            client: api.client.clone(),
            events: api.events.clone(),
            registry: &mut registry,
            shutdown: shutdown.clone(),
            probe_metrics: probe_metrics.clone(),
            probe_history: probe_history.clone(),
            collector: collector.clone(),
            resolution: settings.metric_resolution,
        })
        .context("starting the node agent")?;
    }

    let metrics_listener = tokio::net::TcpListener::bind(settings.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics address {}", settings.metrics_addr))?;
    let metrics_addr = metrics_listener.local_addr()?;
    // Object state in kube-state-metrics' names, from watch caches of the API.
    let state = control_plane::state_metrics::StateMetrics::start(&api.client, &shutdown);
    let metrics = metrics_router(
        Arc::new(registry),
        Arc::new(probe_registry),
        api.state.clone(),
        state,
        encode_times.clone(),
    )
    .merge(collector_router(collector.clone(), encode_times));
    let metrics_task = tokio::spawn(control_plane::server::serve(
        metrics_listener,
        metrics,
        None,
        shutdown.clone(),
    ));

    let url = format!("https://{}", api.addr);
    let kubeconfig = kubeconfig::write(&settings.data_dir, &url, &pki.ca_pem, &token)?;
    // One line each, for people and for scripts: the contract tests rely on.
    println!("api: {url}");
    println!("metrics: http://{metrics_addr}/metrics");
    println!("kubeconfig: {}", kubeconfig.display());
    if mode == Mode::Up {
        println!("ui: {url}/ui/");
    }
    tracing::info!(
        mode = ?mode,
        api = %url,
        metrics = %metrics_addr,
        data_dir = %settings.data_dir.display(),
        store = ?settings.store,
        "glasshouse is running"
    );

    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let _ = tokio::join!(api.task, metrics_task);
    if let Some(logs) = logs {
        // The indexer's last commit.
        let _ = tokio::task::spawn_blocking(move || logs.join()).await;
    }
    pidfile::remove(&settings.data_dir);
    tracing::info!("stopped");
    Ok(())
}

/// Gives the log pipeline its pods' labels from a cache of this node's pods, once the cache holds them
/// all (container lines wait until then).
fn supply_pod_labels(
    client: &kube::Client,
    node: &str,
    labels: logpipe::tailer::PodLabels,
    shutdown: &CancellationToken,
) {
    use k8s_openapi::api::core::v1::Pod;
    let config = kube::runtime::watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let pods = control_plane::controllers::cache::<Pod>(client, config, shutdown, "log pipeline", |_| {});
    tokio::spawn(async move {
        if pods.wait_until_ready().await.is_ok() {
            labels.set(move |namespace, name| {
                let pod = pods.get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))?;
                pod.metadata.labels.clone()
            });
        }
    });
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot listen for signals; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[derive(Clone)]
struct MetricsState {
    registry: Arc<Registry>,
    api: ApiState,
    times: EncodeTimes,
}

fn metrics_router(
    registry: Arc<Registry>,
    probes: Arc<Registry>,
    api: ApiState,
    state: control_plane::state_metrics::StateMetrics,
    times: EncodeTimes,
) -> Router {
    let (state_times, probe_times) = (times.clone(), times.clone());
    Router::new()
        .route("/metrics", get(scrape))
        .route(
            "/metrics/state",
            get(move |headers: HeaderMap| async move {
                state_times.serve("/metrics/state", accept(&headers), |openmetrics| {
                    state.encode(openmetrics)
                })
            }),
        )
        // The kubelet's own endpoint for probe metrics (`prober_probe_total`), apart from /metrics.
        .route(
            "/metrics/probes",
            get(move |headers: HeaderMap| async move {
                probe_times.serve_registry("/metrics/probes", &probes, accept(&headers), |_| {})
            }),
        )
        .with_state(MetricsState { registry, api, times })
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

async fn scrape(State(state): State<MetricsState>, headers: HeaderMap) -> axum::response::Response {
    control_plane::server::refresh_store_gauges(&state.api).await;
    state
        .times
        .serve_registry("/metrics", &state.registry, accept(&headers), |out| {
            state.api.metrics.durations.encode(out)
        })
}

/// `/metrics/resource` and `/metrics/cadvisor` (Prometheus text with sample timestamps, as the kubelet's;
/// OpenMetrics when asked).
fn collector_router(collector: collector::Collector, times: EncodeTimes) -> Router {
    let (resource, cadvisor) = (collector.clone(), collector);
    let resource_times = times.clone();
    Router::new()
        .route(
            "/metrics/resource",
            get(move |headers: HeaderMap| async move {
                resource_times.serve("/metrics/resource", accept(&headers), |openmetrics| {
                    collector::expose::resource(&resource.snapshot(), openmetrics)
                })
            }),
        )
        .route(
            "/metrics/cadvisor",
            get(move |headers: HeaderMap| async move {
                times.serve("/metrics/cadvisor", accept(&headers), |openmetrics| {
                    collector::expose::cadvisor(&cadvisor.snapshot(), openmetrics)
                })
            }),
        )
}
