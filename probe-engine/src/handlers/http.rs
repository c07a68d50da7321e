//! `httpGet` as the kubelet does it (K `pkg/probe/http/http.go`, `request.go`; `spec/probes.md` §2.3):
//! a `GET` with `User-Agent: kube-probe/<version>` and `Accept: */*` unless the user set them, no
//! keep-alive, no compression, TLS without verification; redirects followed only to the same host name
//! (at most 10); 2xx is success, 3xx (not followed) a warning, anything else a failure with its status
//! code; at most 10 KiB of body is read. The timeout covers the whole exchange. HTTP/1.1 is written and
//! read here (with `httparse`): the probe decides when the connection ends, and it resets it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
            let _ = stream.set_nodelay(true);
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

/// The exchange on an open connection, HTTP/1.1 written and read here: the request, the response's
/// head, and at most 10 KiB of its body (plain, sized or chunked). The connection is then dropped
/// (reset): this side never closes first, so it keeps nothing in TIME-WAIT.
async fn send<S>(mut io: S, url: &Url, headers: &[(String, String)]) -> Result<Response, Failed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let set = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut request = format!("GET {} HTTP/1.1\r\n", url.path);
    if !set("host") {
        request.push_str(&format!("Host: {}\r\n", join_host_port(&url.host, url.port)));
    }
    if !set("user-agent") {
        request.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
    }
    if !set("accept") {
        request.push_str("Accept: */*\r\n");
    }
    request.push_str("Connection: close\r\n");
    for (name, value) in headers {
        // A user header set empty removes the default (upstream: an empty User-Agent or Accept).
        if value.is_empty() && ["user-agent", "accept"].contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err(Failed::Transport(format!(
                "net/http: invalid header field {name:?}"
            )));
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes())
        .await
        .map_err(|e| Failed::Transport(io_error(&e)))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    // The head, skipping informational (1xx) answers as Go's client does.
    let (status, location, framing, head_len) = loop {
        let parsed = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut slots);
            match response.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let header = |name: &str| {
                        response
                            .headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                    };
                    let framing = if header("transfer-encoding")
                        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
                    {
                        Framing::Chunked
                    } else if let Some(length) = header("content-length") {
                        Framing::Length(
                            length
                                .parse()
                                .map_err(|_| Failed::Transport("malformed HTTP response".into()))?,
                        )
                    } else {
                        Framing::UntilClose
                    };
                    break (response.code.unwrap_or(0), header("location"), framing, len);
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(Failed::Transport(
                        "net/http: server response headers exceeded the limit".into(),
                    ));
                }
                Err(e) => return Err(Failed::Transport(format!("malformed HTTP response: {e}"))),
            }
            if read_more(&mut io, &mut buf)
                .await
                .map_err(|e| Failed::Transport(io_error(&e)))?
                == 0
            {
                return Err(Failed::Transport("EOF".into()));
            }
        };
        if (100..200).contains(&parsed.0) && parsed.0 != 101 {
            buf.drain(..parsed.3);
            continue;
        }
        break parsed;
    };
    buf.drain(..head_len);
    let framing = if matches!(status, 204 | 304) {
        Framing::Length(0)
    } else {
        framing
    };
    let body = read_body(&mut io, buf, framing).await.map_err(Failed::Body)?;
    Ok(Response {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The most a response head may take.
const MAX_HEAD: usize = 64 * 1024;

/// How a body ends.
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

async fn read_more<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = io.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// At most 10 KiB of the body (what follows is not read: an endless body is cut, not an error).
async fn read_body<S: AsyncRead + Unpin>(
    io: &mut S,
    mut buf: Vec<u8>,
    framing: Framing,
) -> Result<Vec<u8>, String> {
    let eof = || "unexpected EOF reading the body".to_string();
    match framing {
        Framing::Length(length) => {
            let want = (length as usize).min(MAX_OUTPUT);
            while buf.len() < want {
                if read_more(io, &mut buf).await.map_err(|e| io_error(&e))? == 0 {
                    return Err(eof());
                }
            }
            buf.truncate(want);
            Ok(buf)
        }
        Framing::UntilClose => {
            while buf.len() < MAX_OUTPUT {
                if read_more(io, &mut buf).await.map_err(|e| io_error(&e))? == 0 {
                    break;
                }
            }
            buf.truncate(MAX_OUTPUT);
            Ok(buf)
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            loop {
                // A chunk: its size in hex (extensions after ';'), CRLF, the data, CRLF.
                let line_end = loop {
                    if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
                        break at;
                    }
                    if buf.len() > MAX_HEAD || read_more(io, &mut buf).await.map_err(|e| io_error(&e))? == 0 {
                        return Err(eof());
                    }
                };
                let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| "malformed chunked encoding".to_string())?;
                buf.drain(..line_end + 2);
                if size == 0 {
                    return Ok(body);
                }
                let take = size.min(MAX_OUTPUT - body.len());
                while buf.len() < take {
                    if read_more(io, &mut buf).await.map_err(|e| io_error(&e))? == 0 {
                        return Err(eof());
                    }
                }
                body.extend_from_slice(&buf[..take]);
                if body.len() >= MAX_OUTPUT {
                    return Ok(body);
                }
                while buf.len() < size + 2 {
                    if read_more(io, &mut buf).await.map_err(|e| io_error(&e))? == 0 {
                        return Err(eof());
                    }
                }
                buf.drain(..size + 2);
            }
        }
    }
}

/// An I/O error in Go's words where they are well known.
fn io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => "read: connection reset by peer".into(),
        std::io::ErrorKind::BrokenPipe => "write: broken pipe".into(),
        std::io::ErrorKind::UnexpectedEof => "EOF".into(),
        _ => e.to_string(),
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
