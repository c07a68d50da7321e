//! The HTTP handler against a local server that answers by path: `/code/N` with status N, `/to/URL`
//! with a redirect, `/big` with 100 KiB, `/endless` forever, `/silent` never, `/reset` with a reset,
//! `/echo` with the request's headers.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

async fn server(addr: &str) -> u16 {
    let listener = TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let reply = |status: &str, extra: &str, body: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let response = if let Some(code) = path.strip_prefix("/code/") {
                    if code == "199" {
                        "HTTP/1.1 199 Early\r\n\r\n".to_string()
                    } else {
                        reply(&format!("{code} X"), "", &format!("body of {code}"))
                    }
                } else if let Some(target) = path.strip_prefix("/to/") {
                    reply("302 Found", &format!("Location: {target}\r\n"), "moved")
                } else if path == "/big" {
                    reply("200 OK", "", &"x".repeat(100 * 1024))
                } else if path == "/endless" {
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                        .await;
                    let chunk = format!("{:x}\r\n{}\r\n", 4096, "y".repeat(4096));
                    while socket.write_all(chunk.as_bytes()).await.is_ok() {}
                    return;
                } else if path == "/silent" {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                } else if path == "/reset" {
                    let _ = socket.set_zero_linger();
                    return;
                } else {
                    reply("200 OK", "", &head)
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

async fn get(port: u16, path: &str) -> Attempted {
    probe(Scheme::Http, "127.0.0.1", port, path, &[], Duration::from_secs(1)).await
}

#[tokio::test]
async fn status_codes_decide_as_upstream() {
    let port = server("127.0.0.1:0").await;
    for (code, outcome) in [
        (199, Outcome::Failure),
        (200, Outcome::Success),
        (299, Outcome::Success),
        (300, Outcome::Warning),
        (399, Outcome::Warning),
        (400, Outcome::Failure),
        (500, Outcome::Failure),
    ] {
        let (got, output) = get(port, &format!("/code/{code}")).await.unwrap();
        assert_eq!(got, outcome, "{code}: {output}");
        match code {
            200 | 299 => assert_eq!(output, format!("body of {code}")),
            300 | 399 => assert_eq!(
                output,
                format!("Probe terminated redirects, Response body: body of {code}")
            ),
            400 | 500 => assert_eq!(output, format!("HTTP probe failed with statuscode: {code}")),
            _ => {}
        }
    }
}

#[tokio::test]
async fn redirects_are_followed_to_the_same_host_only() {
    let port = server("127.0.0.1:0").await;
    let other = server("127.0.0.2:0").await;
    let (outcome, output) = get(port, "/to//code/203").await.unwrap();
    assert_eq!((outcome, output.as_str()), (Outcome::Success, "body of 203"));
    // The same host on another port is the same host name.
    let second = server("127.0.0.1:0").await;
    let (outcome, _) = get(port, &format!("/to/http://127.0.0.1:{second}/code/200"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Success);
    let (outcome, output) = get(port, &format!("/to/http://127.0.0.2:{other}/code/200"))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Warning);
    assert_eq!(output, "Probe terminated redirects, Response body: moved");
    // A loop stops after ten.
    let (outcome, output) = get(port, "/to//to//to//to//to//to//to//to//to//to//to//to//code/200")
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Failure);
    assert!(output.ends_with("stopped after 10 redirects"), "{output}");
}

#[tokio::test]
async fn bodies_are_read_up_to_10_kib_and_an_endless_one_is_cut() {
    let port = server("127.0.0.1:0").await;
    let (outcome, output) = get(port, "/big").await.unwrap();
    assert_eq!((outcome, output.len()), (Outcome::Success, MAX_OUTPUT));
    let started = Instant::now();
    let (outcome, output) = get(port, "/endless").await.unwrap();
    assert_eq!((outcome, output.len()), (Outcome::Success, MAX_OUTPUT));
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn silence_times_out_and_resets_and_closed_ports_fail() {
    let port = server("127.0.0.1:0").await;
    let started = Instant::now();
    let (outcome, output) = probe(
        Scheme::Http,
        "127.0.0.1",
        port,
        "/silent",
        &[],
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Failure);
    assert!(output.contains("Client.Timeout exceeded"), "{output}");
    assert!(started.elapsed() < Duration::from_millis(600));
    let (outcome, output) = get(port, "/reset").await.unwrap();
    assert_eq!(outcome, Outcome::Failure, "{output}");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (outcome, output) = get(closed, "/").await.unwrap();
    assert_eq!(outcome, Outcome::Failure);
    assert_eq!(
        output,
        format!(
            "Get \"http://127.0.0.1:{closed}/\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
        )
    );
}

#[tokio::test]
async fn requests_carry_the_kubelets_headers_unless_the_user_set_them() {
    let port = server("127.0.0.1:0").await;
    let (_, head) = get(port, "/echo?x=1").await.unwrap();
    assert!(head.starts_with("GET /echo?x=1 HTTP/1.1\r\n"), "{head}");
    let lower = head.to_lowercase();
    assert!(lower.contains("user-agent: kube-probe/1.32\r\n"), "{head}");
    assert!(lower.contains("accept: */*\r\n"), "{head}");
    assert!(lower.contains("connection: close\r\n"), "{head}");
    assert!(lower.contains(&format!("host: 127.0.0.1:{port}\r\n")), "{head}");
    let headers = [
        ("Host".to_string(), "example.test".to_string()),
        ("User-Agent".to_string(), "".to_string()),
        ("X-Probe".to_string(), "a".to_string()),
        ("X-Probe".to_string(), "b".to_string()),
    ];
    let (_, head) = probe(
        Scheme::Http,
        "127.0.0.1",
        port,
        "/echo",
        &headers,
        Duration::from_secs(1),
    )
    .await
    .unwrap()
    .clone();
    let lower = head.to_lowercase();
    assert!(lower.contains("host: example.test\r\n"), "{head}");
    assert!(!lower.contains("user-agent"), "{head}");
    assert!(
        lower.contains("x-probe: a\r\n") && lower.contains("x-probe: b\r\n"),
        "{head}"
    );
}

#[test]
fn locations_join_like_urls() {
    let base = Url {
        scheme: Scheme::Http,
        host: "10.0.0.1".into(),
        port: 8080,
        path: "/a/b?q".into(),
    };
    assert_eq!(base.join("/x").unwrap().to_string(), "http://10.0.0.1:8080/x");
    assert_eq!(base.join("c").unwrap().to_string(), "http://10.0.0.1:8080/a/c");
    assert_eq!(base.join("//h:1/p").unwrap().to_string(), "http://h:1/p");
    assert_eq!(base.join("https://h/p").unwrap().to_string(), "https://h:443/p");
    assert_eq!(base.join("http://[::1]:9/p").unwrap().host, "::1");
}
