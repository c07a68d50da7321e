//! Running the API server: the listener loop (HTTP/1.1 and HTTP/2, header read timeout, graceful
//! shutdown), the store compactor, and the bootstrap objects every cluster has.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::store::{Compactor, Store};
use crate::telemetry::ApiMetrics;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish at shutdown; watches never finish by themselves.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The API server's settings.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// Where the API listens (port 0 picks a free port).
    pub addr: SocketAddr,
    /// How often the store's change log is compacted; watchers can resume within one interval.
    pub compaction_interval: Duration,
    /// Serve HTTPS with this configuration (plain HTTP without).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long events live after their last write (kube-apiserver's `--event-ttl`).
    pub event_ttl: Duration,
    pub controllers: crate::controllers::ControllersConfig,
    /// A data dir whose node agent runs in this process: `pods/log` reads its container logs.
    pub node_data_dir: Option<std::path::PathBuf>,
    /// Other APIs served behind the API's token, by path prefix (the log search API at `/logs`).
    pub extra_routes: Vec<(&'static str, axum::Router)>,
    /// Groups served by other components through `extra_routes` (metrics.k8s.io), for discovery.
    pub external_groups: Vec<crate::api::discovery::ExternalGroup>,
    /// The node agent's probe history (`up` mode), served as `pods/probes`.
    pub probe_history: Option<std::sync::Arc<probe_engine::history::History>>,
    /// Pages served without the token, by path prefix (the log search page at `/ui`).
    pub public_routes: Vec<(&'static str, axum::Router)>,
}

/// What the API server takes from the process.
pub struct ApiServerContext<'a> {
    pub store: Arc<dyn Store>,
    pub registry: &'a mut Registry,
    pub token: String,
    pub shutdown: CancellationToken,
}

/// A running API server.
pub struct ApiServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its router, for in-process clients.
    pub router: Router,
    /// A client over that router, authenticated with the server's token.
    pub client: kube::Client,
    /// The process's event writer, for every component in it.
    pub events: eventer::Broadcaster,
    pub state: ApiState,
    pub task: JoinHandle<()>,
}

impl ApiServerConfig {
    pub async fn build(self, ctx: ApiServerContext<'_>) -> std::io::Result<ApiServer> {
        let metrics = ApiMetrics::register(ctx.registry);
        let mut state = ApiState::new(ctx.store.clone(), metrics, &ctx.token);
        state.logs = self
            .node_data_dir
            .as_deref()
            .map(crate::node::logs::LogFiles::new);
        state.probes = self.probe_history;
        let hpa_decisions = state.hpa_decisions.clone();
        state.external_groups = self.external_groups;
        state.extra_routes = self.extra_routes;
        state.public_routes = self.public_routes;
        state
            .objects
            .ensure_system_namespaces()
            .await
            .map_err(std::io::Error::other)?;
        let router = api::router(state.clone());
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let compactor = Compactor {
            interval: self.compaction_interval,
        };
        tokio::spawn(compactor.run(ctx.store, ctx.shutdown.clone()));
        let client = crate::client::in_process(router.clone(), &ctx.token);
        let events = eventer::BroadcasterConfig::default().build(eventer::BroadcasterContext {
            client: client.clone(),
            registry: ctx.registry,
            shutdown: ctx.shutdown.clone(),
        });
        let ttl = eventer::ttl::EventTtlConfig { ttl: self.event_ttl };
        tokio::spawn(ttl.run(client.clone(), events.metrics(), ctx.shutdown.clone()));
        let controller_metrics = crate::telemetry::ControllerMetrics::register(ctx.registry);
        crate::controllers::start(
            self.controllers,
            client.clone(),
            &events,
            controller_metrics,
            hpa_decisions,
            ctx.shutdown.clone(),
        );
        let task = tokio::spawn(serve(listener, router.clone(), self.tls, ctx.shutdown));
        Ok(ApiServer {
            addr,
            router,
            client,
            events,
            state,
            task,
        })
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown`, then lets in-flight
/// requests finish for a moment.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        match &acceptor {
            None => {
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task so a slow client holds up no one else.
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::debug!("connections still open at shutdown were dropped"),
    }
}

/// Sets the store gauges from the store, just before a scrape reads them.
pub async fn refresh_store_gauges(state: &ApiState) {
    let store = state.objects.store();
    if let Ok(revision) = store.current_revision().await {
        state.metrics.store_revision.set(revision as i64);
    }
    if let Ok(size) = store.size_bytes().await {
        state.metrics.store_size_bytes.set(size as i64);
    }
}
