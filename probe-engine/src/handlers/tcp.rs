//! `tcpSocket`: healthy when a connection opens (closed at once); any dial error, the timeout included,
//! is a failure with Go's dial error text (K `pkg/probe/tcp/tcp.go`).

use std::time::Duration;

use super::{Dial, Outcome, connected, dial, join_host_port, resolve};

pub async fn probe(host: &str, port: u16, timeout: Duration) -> (Outcome, String) {
    let attempt = async {
        match dial(resolve(host, port).await?)? {
            // Dropped at once: closed with a reset.
            Dial::Open(_) => Ok(()),
            Dial::Connecting(socket) => connected(socket).await.map(drop),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => (Outcome::Success, String::new()),
        Ok(Err(e)) => (
            Outcome::Failure,
            format!("dial tcp {}: {}", join_host_port(host, port), dial_error(&e)),
        ),
        Err(_) => (
            Outcome::Failure,
            format!("dial tcp {}: i/o timeout", join_host_port(host, port)),
        ),
    }
}

/// The error as Go's `net` package words it.
pub fn dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "read: connection reset by peer".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => {
            // "Network is unreachable (os error 101)" → "connect: network is unreachable"
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            format!("connect: {}", text.to_lowercase())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_open_port_is_healthy_and_a_closed_one_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (outcome, _) = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(outcome, Outcome::Success);
        drop(listener);
        let (outcome, output) = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(outcome, Outcome::Failure);
        assert_eq!(
            output,
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn a_handshake_that_never_completes_times_out() {
        // A listener that never accepts, its queue full: further SYNs go unanswered.
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut queued = Vec::new();
        let output = loop {
            assert!(queued.len() < 8, "the accept queue never filled");
            match dial(addr).unwrap() {
                Dial::Open(socket) => queued.push(socket),
                Dial::Connecting(socket) => {
                    queued.push(socket);
                    let (outcome, output) = probe("127.0.0.1", addr.port(), Duration::from_millis(300)).await;
                    assert_eq!(outcome, Outcome::Failure);
                    break output;
                }
            }
        };
        assert_eq!(output, format!("dial tcp {addr}: i/o timeout"));
    }
}
