//! `tcpSocket`: healthy when a connection opens (closed at once); any dial error, the timeout included,
//! is a failure with Go's dial error text (K `pkg/probe/tcp/tcp.go`).

use std::time::Duration;

use super::{Outcome, connect, join_host_port};

pub async fn probe(host: &str, port: u16, timeout: Duration) -> (Outcome, String) {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, connect(host, port)).await {
        Ok(Ok(stream)) => {
            drop(stream);
            (Outcome::Success, String::new())
        }
        Ok(Err(e)) => (Outcome::Failure, format!("dial tcp {addr}: {}", dial_error(&e))),
        Err(_) => (Outcome::Failure, format!("dial tcp {addr}: i/o timeout")),
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
}
