//! The four handlers. Each attempt ends in an outcome with its output (upstream's `probe.Result` and the
//! text that goes into events), or in an error (the attempt is retried, then discarded: no threshold
//! progress, no metric; `spec/probes.md` §2.1).
//!
//! Socket hygiene: every probe socket closes with `SO_LINGER` 0 (a reset instead of a FIN), so probing
//! leaves no socket in TIME-WAIT on this side however fast it runs (the kubelet sets 1 s for the same
//! reason, K `pkg/probe/dialer_others.go`).

pub mod exec;
pub mod grpc;
pub mod http;
pub mod tcp;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

use crate::spec::Handler;

/// What the probed thing answered (K `pkg/probe/probe.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Logically a success, with something worth a `ProbeWarning` event (an HTTP redirect not followed).
    Warning,
    Failure,
    Unknown,
}

/// An attempt's outcome and output, or the error that makes it not count.
pub type Attempted = Result<(Outcome, String), String>;

/// The most a probe keeps of a body or of a command's output (upstream's 10 KiB).
pub const MAX_OUTPUT: usize = 10 * 1024;

/// The user agent of HTTP and gRPC probes: the kubelet's, with the Kubernetes version the API server
/// reports.
pub const USER_AGENT: &str = "kube-probe/1.32";

/// Runs exec probes in a container (the node agent knows how: environment, working directory, cgroup).
pub trait ExecRunner: Send + Sync {
    fn exec<'a>(
        &'a self,
        command: &'a [String],
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>>;
}

/// Runs attempts: the real handlers, or a stand-in in tests of the worker.
pub trait Runner: Send + Sync {
    fn run<'a>(
        &'a self,
        handler: &'a Handler,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>>;
}

/// The network handlers, and exec through the given runner.
pub struct Handlers {
    pub exec: Arc<dyn ExecRunner>,
}

impl Runner for Handlers {
    fn run<'a>(
        &'a self,
        handler: &'a Handler,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>> {
        Box::pin(async move {
            match handler {
                Handler::Http {
                    scheme,
                    host,
                    port,
                    path,
                    headers,
                } => http::probe(*scheme, host, *port, path, headers, timeout).await,
                Handler::Tcp { host, port } => Ok(tcp::probe(host, *port, timeout).await),
                Handler::Grpc { host, port, service } => Ok(grpc::probe(host, *port, service, timeout).await),
                Handler::Exec { command } => self.exec.exec(command, timeout).await,
            }
        })
    }
}

/// `host:port` as Go's `net.JoinHostPort` writes it.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects with `SO_LINGER` 0 (Nagle's delay is turned off by the handlers that write more than once:
/// TLS, HTTP/2). The host must be an IP address (pod IPs, or a `host` the user gave as one); a name is
/// looked up first.
pub async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    match dial(resolve(host, port).await?)? {
        Dial::Open(socket) => TcpStream::from_std(socket.into()),
        Dial::Connecting(socket) => connected(socket).await,
    }
}

/// The address to dial: the host as an IP address, or the first address its name resolves to.
pub async fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, port)),
        Err(_) => tokio::net::lookup_host((host, port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host")),
    }
}

/// A probe socket whose connect has been started.
pub enum Dial {
    /// The handshake is done: with a peer on this host it usually completes inside `connect(2)`.
    Open(Socket),
    /// The handshake is under way; [`connected`] waits for it.
    Connecting(Socket),
}

/// Starts a non-blocking connect on a socket that closes with `SO_LINGER` 0. A handshake that completes
/// at once needs no registration with the reactor and no wake-up, which is most of a local `tcpSocket`
/// probe's cost in user space and system calls.
pub fn dial(addr: SocketAddr) -> std::io::Result<Dial> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_linger(Some(Duration::ZERO))?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(Dial::Open(socket)),
        // getpeername(2) answers once the connection is established, and not while SYN-SENT.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => match socket.peer_addr() {
            Ok(_) => Ok(Dial::Open(socket)),
            Err(_) => Ok(Dial::Connecting(socket)),
        },
        Err(e) => Err(e),
    }
}

/// Waits for a started connect to complete, with its error if it failed.
pub async fn connected(socket: Socket) -> std::io::Result<TcpStream> {
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(stream),
    }
}

/// Go's rendering of a duration for whole and fractional seconds (`1s`, `1.5s`, `500ms`).
pub fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
