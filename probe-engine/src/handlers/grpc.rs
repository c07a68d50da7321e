//! `grpc`: one call of the standard health checking protocol (`grpc.health.v1.Health/Check`) over
//! HTTP/2 without TLS; `SERVING` is healthy, every other answer or error a failure with upstream's
//! texts (K `pkg/probe/grpc/grpc.go`: "err is always nil").
//!
//! The call is written by hand: a request is a 5-byte frame header and one protobuf string field,
//! an answer one varint field; a gRPC stack would be far heavier than that.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::tcp::dial_error;
use super::{MAX_OUTPUT, Outcome, USER_AGENT, connect, go_duration, join_host_port};

/// `HealthCheckResponse.ServingStatus` names.
fn status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        other => other.to_string(),
    }
}

/// gRPC status codes as grpc-go names them.
fn code_name(code: u32) -> &'static str {
    [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ]
    .get(code as usize)
    .copied()
    .unwrap_or("Unknown")
}

pub async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> (Outcome, String) {
    let addr = join_host_port(host, port);
    let stream = match tokio::time::timeout(timeout, connect(host, port)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            stream
        }
        Ok(Err(e)) => {
            return (
                Outcome::Failure,
                format!(
                    "error: failed to connect service at {addr:?}: dial tcp {addr}: {}",
                    dial_error(&e)
                ),
            );
        }
        Err(_) => {
            return (
                Outcome::Failure,
                format!(
                    "timeout: failed to connect service {addr:?} within {}: context deadline exceeded",
                    go_duration(timeout)
                ),
            );
        }
    };
    match tokio::time::timeout(timeout, check(stream, &addr, service)).await {
        Ok(Ok(1)) => (Outcome::Success, "service healthy".into()),
        Ok(Ok(status)) => (
            Outcome::Failure,
            format!("service unhealthy (responded with {:?})", status_name(status)),
        ),
        Ok(Err(Rpc { code: 12, message })) => (
            Outcome::Failure,
            format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {message}"
            ),
        ),
        Ok(Err(Rpc { code: 4, .. })) | Err(_) => (
            Outcome::Failure,
            format!(
                "timeout: health rpc did not complete within {}",
                go_duration(timeout)
            ),
        ),
        Ok(Err(Rpc { code, message })) => (
            Outcome::Failure,
            format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {message}",
                code_name(code)
            ),
        ),
    }
}

/// A call that did not answer a status.
struct Rpc {
    code: u32,
    message: String,
}

impl Rpc {
    fn unavailable(message: impl std::fmt::Display) -> Rpc {
        Rpc {
            code: 14,
            message: message.to_string(),
        }
    }
}

async fn check(stream: tokio::net::TcpStream, authority: &str, service: &str) -> Result<u64, Rpc> {
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(Rpc::unavailable)?;
    let driver = tokio::spawn(connection);
    let result = call(&mut sender, authority, service).await;
    driver.abort();
    result
}

async fn call(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    authority: &str,
    service: &str,
) -> Result<u64, Rpc> {
    // HealthCheckRequest { string service = 1; }, in one length-prefixed message.
    let mut message = BytesMut::new();
    if !service.is_empty() {
        message.put_u8(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    let request = http::Request::post(format!("http://{authority}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Full::new(frame.freeze()))
        .map_err(Rpc::unavailable)?;
    let response = sender.send_request(request).await.map_err(Rpc::unavailable)?;
    if response.status() != http::StatusCode::OK {
        return Err(Rpc {
            code: 2,
            message: format!(
                "unexpected HTTP status code received from server: {}",
                response.status()
            ),
        });
    }
    let head_status = grpc_status(response.headers());
    let mut body = response.into_body();
    let mut data = BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Rpc::unavailable)?;
        match frame.into_data() {
            Ok(bytes) => {
                if data.len() + bytes.len() > MAX_OUTPUT {
                    return Err(Rpc {
                        code: 8,
                        message: "the health answer is too large".into(),
                    });
                }
                data.put_slice(&bytes);
            }
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    let (code, message) = trailers
        .as_ref()
        .and_then(grpc_status)
        .or(head_status)
        .unwrap_or((2, "server closed the stream without sending trailers".into()));
    if code != 0 {
        return Err(Rpc { code, message });
    }
    // One message: flag, length, HealthCheckResponse { ServingStatus status = 1; }.
    let mut data = data.freeze();
    if data.len() < 5 {
        return Err(Rpc {
            code: 13,
            message: "no health answer in the response".into(),
        });
    }
    data.advance(5);
    let mut status = 0;
    while data.has_remaining() {
        let key = get_varint(&mut data).ok_or_else(|| Rpc::unavailable("malformed health answer"))?;
        match key & 7 {
            0 => {
                let value =
                    get_varint(&mut data).ok_or_else(|| Rpc::unavailable("malformed health answer"))?;
                if key >> 3 == 1 {
                    status = value;
                }
            }
            2 => {
                let len = get_varint(&mut data).ok_or_else(|| Rpc::unavailable("malformed health answer"))?;
                data.advance((len as usize).min(data.remaining()));
            }
            _ => return Err(Rpc::unavailable("malformed health answer")),
        }
    }
    Ok(status)
}

fn grpc_status(headers: &http::HeaderMap) -> Option<(u32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some((code, message))
}

/// `grpc-message` is percent-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn put_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

fn get_varint(buf: &mut Bytes) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let byte = buf.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A health server: `""` and `"app"` answer their status, others NOT_FOUND (as grpc-go's health
    /// server does), `"slow"` never answers.
    async fn health_server(status: u64) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let asked = String::from_utf8_lossy(body.get(7..).unwrap_or_default()).into_owned();
                        if asked == "slow" {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        let mut response =
                            http::Response::builder().header("content-type", "application/grpc");
                        let body = if asked.is_empty() || asked == "app" {
                            let mut frame = BytesMut::new();
                            frame.put_u8(0);
                            frame.put_u32(2);
                            frame.put_slice(&[0x08, status as u8]);
                            frame.freeze()
                        } else {
                            response = response
                                .header("grpc-status", "5")
                                .header("grpc-message", "unknown%20service");
                            Bytes::new()
                        };
                        let mut frames = Vec::new();
                        if !body.is_empty() {
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            frames = vec![
                                hyper::body::Frame::data(body),
                                hyper::body::Frame::trailers(trailers),
                            ];
                        }
                        Ok::<_, Infallible>(response.body(Answer(frames)).unwrap())
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service),
                );
            }
        });
        port
    }

    /// A body of the given frames.
    struct Answer(Vec<hyper::body::Frame<Bytes>>);

    impl hyper::body::Body for Answer {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
            let next = (!self.0.is_empty()).then(|| Ok(self.0.remove(0)));
            std::task::Poll::Ready(next)
        }
    }

    #[tokio::test]
    async fn serving_not_serving_and_unknown_services_answer_as_upstream() {
        let serving = health_server(1).await;
        let t = Duration::from_secs(1);
        assert_eq!(
            probe("127.0.0.1", serving, "", t).await,
            (Outcome::Success, "service healthy".into())
        );
        assert_eq!(probe("127.0.0.1", serving, "app", t).await.0, Outcome::Success);
        assert_eq!(
            probe("127.0.0.1", serving, "other", t).await,
            (
                Outcome::Failure,
                "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service".into()
            )
        );
        let not_serving = health_server(2).await;
        assert_eq!(
            probe("127.0.0.1", not_serving, "", t).await,
            (
                Outcome::Failure,
                "service unhealthy (responded with \"NOT_SERVING\")".into()
            )
        );
        assert_eq!(
            probe("127.0.0.1", serving, "slow", Duration::from_millis(200)).await,
            (
                Outcome::Failure,
                "timeout: health rpc did not complete within 200ms".into()
            )
        );
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (outcome, output) = probe("127.0.0.1", closed, "", t).await;
        assert_eq!(outcome, Outcome::Failure);
        assert!(
            output.starts_with("error: failed to connect service at"),
            "{output}"
        );
    }
}
