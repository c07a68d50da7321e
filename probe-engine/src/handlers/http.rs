//! `httpGet` as the kubelet does it (K `pkg/probe/http/http.go`, `request.go`; `spec/probes.md` §2.3):
//! a `GET` with `User-Agent: kube-probe/<version>` and `Accept: */*` unless the user set them, no
//! keep-alive, no compression, TLS without verification; redirects followed only to the same host name
//! (at most 10); 2xx is success, 3xx (not followed) a warning, anything else a failure with its status
//! code; at most 10 KiB of body is read. The timeout covers the whole exchange.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use super::tcp::dial_error;
use super::{Attempted, MAX_OUTPUT, Outcome, USER_AGENT, connect, join_host_port};
use crate::spec::Scheme;

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    /// Path and query.
    path: String,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(
            f,
            "{scheme}://{}{}",
            join_host_port(&self.host, self.port),
            self.path
        )
    }
}

impl Url {
    /// A `Location` header taken relative to this URL (absolute, scheme-relative, absolute path, or
    /// relative path).
    fn join(&self, location: &str) -> Option<Url> {
        let absolute = |scheme: Scheme, rest: &str| {
            let (authority, path) = match rest.find('/') {
                Some(at) => (&rest[..at], &rest[at..]),
                None => (rest, "/"),
            };
            let default_port = if scheme == Scheme::Https { 443 } else { 80 };
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                    (h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)
                }
                _ => (authority.trim_matches(['[', ']']).to_string(), default_port),
            };
            Some(Url {
                scheme,
                host,
                port,
                path: path.to_string(),
            })
        };
        if let Some(rest) = location.strip_prefix("http://") {
            absolute(Scheme::Http, rest)
        } else if let Some(rest) = location.strip_prefix("https://") {
            absolute(Scheme::Https, rest)
        } else if let Some(rest) = location.strip_prefix("//") {
            absolute(self.scheme, rest)
        } else if location.starts_with('/') {
            Some(Url {
                path: location.to_string(),
                ..self.clone()
            })
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            Some(Url {
                path: format!("{}{location}", if dir.is_empty() { "/" } else { dir }),
                ..self.clone()
            })
        }
    }
}

/// One probe: the exchange, redirects included, within `timeout`.
pub async fn probe(
    scheme: Scheme,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Attempted {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = Url {
        scheme,
        host: host.to_string(),
        port,
        path,
    };
    match tokio::time::timeout(timeout, follow(url.clone(), headers)).await {
        Ok(result) => result,
        Err(_) => Ok((
            Outcome::Failure,
            format!(
                "Get {:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                url.to_string()
            ),
        )),
    }
}

/// A response as far as the probe cares.
struct Response {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn follow(first: Url, headers: &[(String, String)]) -> Attempted {
    let mut url = first.clone();
    for hop in 0.. {
        let response = match exchange(&url, headers).await {
            Ok(response) => response,
            Err(Failed::Transport(text)) => {
                return Ok((Outcome::Failure, format!("Get {:?}: {text}", url.to_string())));
            }
            Err(Failed::Body(text)) => return Err(text),
        };
        let followed = matches!(response.status, 301 | 302 | 303 | 307 | 308);
        if let (true, Some(next)) = (followed, response.location.as_deref().and_then(|l| url.join(l)))
            && next.host == first.host
        {
            if hop == 10 {
                return Ok((
                    Outcome::Failure,
                    format!("Get {:?}: stopped after 10 redirects", next.to_string()),
                ));
            }
            url = next;
            continue;
        }
        return Ok(classify(response));
    }
    unreachable!("the loop returns")
}

fn classify(response: Response) -> (Outcome, String) {
    match response.status {
        200..=299 => (Outcome::Success, response.body),
        300..=399 => (
            Outcome::Warning,
            format!("Probe terminated redirects, Response body: {}", response.body),
        ),
        code => (
            Outcome::Failure,
            format!("HTTP probe failed with statuscode: {code}"),
        ),
    }
}

enum Failed {
    /// Connecting, the TLS handshake, or the request and its headers: a failure with this text.
    Transport(String),
    /// Reading the body: an error (retried, then discarded), as upstream treats it.
    Body(String),
}

async fn exchange(url: &Url, headers: &[(String, String)]) -> Result<Response, Failed> {
    let addr = join_host_port(&url.host, url.port);
    let stream = connect(&url.host, url.port)
        .await
        .map_err(|e| Failed::Transport(format!("dial tcp {addr}: {}", dial_error(&e))))?;
    match url.scheme {
        Scheme::Http => send(stream, url, headers).await,
        Scheme::Https => {
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| Failed::Transport(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(insecure_tls())
                .connect(name, stream)
                .await
                .map_err(|e| Failed::Transport(format!("remote error: tls: {e}")))?;
            send(tls, url, headers).await
        }
    }
}

async fn send<S>(io: S, url: &Url, headers: &[(String, String)]) -> Result<Response, Failed>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failed::Transport(e.to_string()))?;
    // The connection is driven beside the request; dropped with the probe (the socket resets).
    let driver = tokio::spawn(connection);
    let _abort = AbortOnDrop(driver);
    let mut request = http::Request::get(url.path.as_str());
    let set = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !set("host") {
        request = request.header(http::header::HOST, join_host_port(&url.host, url.port));
    }
    if !set("user-agent") {
        request = request.header(http::header::USER_AGENT, USER_AGENT);
    }
    if !set("accept") {
        request = request.header(http::header::ACCEPT, "*/*");
    }
    request = request.header(http::header::CONNECTION, "close");
    for (name, value) in headers {
        // A user header set empty removes the default (upstream: an empty User-Agent or Accept).
        if value.is_empty() && ["user-agent", "accept"].contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failed::Transport(format!("net/http: invalid header: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Failed::Transport(transport_error(&e)))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // At most 10 KiB of the body: an endless one is cut there (not an error), the connection dropped.
    let mut body = response.into_body();
    let mut read: Vec<u8> = Vec::new();
    while read.len() < MAX_OUTPUT {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_OUTPUT - read.len();
                    read.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => return Err(Failed::Body(format!("reading the body: {e}"))),
        }
    }
    Ok(Response {
        status,
        location,
        body: String::from_utf8_lossy(&read).into_owned(),
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A transport error in Go's words where they are well known.
fn transport_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() || e.is_closed() {
        "EOF".into()
    } else {
        let text = e.to_string();
        if text.contains("reset") {
            "read: connection reset by peer".into()
        } else {
            text
        }
    }
}

/// TLS that accepts any certificate (upstream's `InsecureSkipVerify`: probes check liveness, not
/// identity), made once.
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
