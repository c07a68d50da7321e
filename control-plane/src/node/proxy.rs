//! The service proxy (kube-proxy's role, in its old userspace shape): for every Service with a ClusterIP
//! it listens on `clusterIP:port` (the ClusterIPs are loopback addresses), and for NodePort Services on
//! the node's address at each `nodePort`; each accepted TCP connection goes to the next ready endpoint
//! (round robin over the Endpoints' `addresses`, never `notReadyAddresses`). Endpoints are read at every
//! connection, so a change counts at once; an endpoint that refuses is skipped for the next one, as the
//! userspace proxy did. Headless Services (`clusterIP: None`) get no listener.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::controllers::cache;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How soon a listener that could not bind is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// What a listener forwards to: a Service's port, by its name in the Endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Backend {
    namespace: String,
    service: String,
    port_name: String,
}

pub async fn run(client: kube::Client, node_address: IpAddr, shutdown: CancellationToken) {
    let changed = Arc::new(Notify::new());
    let notify = changed.clone();
    let services: Store<Service> = cache(
        &client,
        watcher::Config::default(),
        &shutdown,
        "service proxy",
        move |_| notify.notify_one(),
    );
    let endpoints: Store<Endpoints> = cache(
        &client,
        watcher::Config::default(),
        &shutdown,
        "service proxy",
        |_| {},
    );

    let mut listeners: HashMap<SocketAddr, (Backend, CancellationToken)> = HashMap::new();
    loop {
        let desired = desired(&services, node_address);
        listeners.retain(|addr, (backend, stop)| {
            let keep = desired.get(addr) == Some(backend);
            if !keep {
                tracing::info!(addr = %addr, "service proxy stops listening");
                stop.cancel();
            }
            keep
        });
        let mut failed = false;
        for (addr, backend) in desired {
            if listeners.contains_key(&addr) {
                continue;
            }
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    tracing::info!(addr = %addr, service = %backend.service, namespace = %backend.namespace, "service proxy listens");
                    let stop = shutdown.child_token();
                    tokio::spawn(serve(listener, backend.clone(), endpoints.clone(), stop.clone()));
                    listeners.insert(addr, (backend, stop));
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(addr = %addr, service = %backend.service, error = %e, "service proxy cannot listen");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RETRY), if failed => {}
        }
    }
}

/// The addresses to listen on and what each forwards to.
fn desired(services: &Store<Service>, node_address: IpAddr) -> HashMap<SocketAddr, Backend> {
    let mut out = HashMap::new();
    for service in services.state() {
        let Some(spec) = &service.spec else { continue };
        let cluster_ip: Option<IpAddr> = spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().unwrap_or("TCP") != "TCP" {
                continue;
            }
            let backend = Backend {
                namespace: service.metadata.namespace.clone().unwrap_or_default(),
                service: service.metadata.name.clone().unwrap_or_default(),
                port_name: port.name.clone().unwrap_or_default(),
            };
            let Ok(service_port) = u16::try_from(port.port) else {
                continue;
            };
            if let Some(ip) = cluster_ip {
                out.insert(SocketAddr::new(ip, service_port), backend.clone());
            }
            if let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) {
                out.insert(SocketAddr::new(node_address, node_port), backend);
            }
        }
    }
    out
}

async fn serve(
    listener: TcpListener,
    backend: Backend,
    endpoints: Store<Endpoints>,
    stop: CancellationToken,
) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (client, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(error = %e, "service proxy accept failed");
                    continue;
                }
            },
        };
        let targets = ready_targets(&endpoints, &backend);
        let next = next.clone();
        let service = backend.service.clone();
        tokio::spawn(async move {
            if targets.is_empty() {
                tracing::debug!(service = %service, "no ready endpoint; connection closed");
                return;
            }
            let start = next.fetch_add(1, Ordering::Relaxed);
            for n in 0..targets.len() {
                let target = targets[(start + n) % targets.len()];
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
                    Ok(Ok(upstream)) => {
                        let (mut client, mut upstream) = (client, upstream);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        return;
                    }
                    _ => {
                        tracing::debug!(service = %service, target = %target, "endpoint unreachable, trying the next")
                    }
                }
            }
        });
    }
}

/// The ready addresses of a Service's port right now.
fn ready_targets(endpoints: &Store<Endpoints>, backend: &Backend) -> Vec<SocketAddr> {
    let Some(found) = endpoints.get(&ObjectRef::new(&backend.service).within(&backend.namespace)) else {
        return Vec::new();
    };
    let mut targets = Vec::new();
    for subset in found.subsets.iter().flatten() {
        let Some(port) = subset
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.clone().unwrap_or_default() == backend.port_name)
        else {
            continue;
        };
        let Ok(port) = u16::try_from(port.port) else {
            continue;
        };
        for address in subset.addresses.iter().flatten() {
            if let Ok(ip) = address.ip.parse::<IpAddr>() {
                targets.push(SocketAddr::new(ip, port));
            }
        }
    }
    targets
}
