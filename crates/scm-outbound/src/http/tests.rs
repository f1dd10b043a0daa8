//! The outbound HTTP client against real sockets on 127.0.0.1: a minimal HTTP/1.1 responder
//! stands in for the peers, and reqwest is used exactly as in production. Only the public API is
//! used, as an adapter would.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::http::{EgressPolicy, Method, OutboundErrorKind, OutboundHttp, OutboundRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the responder does with one request.
enum Reply {
    /// Write these bytes and close.
    Raw(Vec<u8>),
    /// Keep the connection open and say nothing.
    Hang,
}

/// The request as the responder saw it.
struct Seen<'a> {
    method: &'a str,
    path: &'a str,
    head: &'a str,
    body: &'a [u8],
}

type Handler = dyn Fn(&Seen<'_>) -> Reply + Send + Sync;

/// A one-request-per-connection HTTP/1.1 responder on 127.0.0.1, port chosen by the kernel.
struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start(handler: impl Fn(&Seen<'_>) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move { serve_one(stream, &*handler, &counter).await });
            }
        });
        Self { addr, hits }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve_one(mut stream: TcpStream, handler: &Handler, hits: &AtomicUsize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let mut words = head.split(' ');
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let seen = Seen {
        method: &method,
        path: &path,
        head: &head,
        body: &buf[head_end..head_end + length],
    };
    match handler(&seen) {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => {
            // Long enough for any timeout under test; the test runtime ends first.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

fn response(status: &str, extra_headers: &str, body: &[u8]) -> Reply {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    Reply::Raw(out)
}

fn ok(body: &str) -> Reply {
    response("200 OK", "", body.as_bytes())
}

fn redirect(location: &str) -> Reply {
    response("302 Found", &format!("Location: {location}\r\n"), b"")
}

fn loopback() -> EgressPolicy {
    EgressPolicy {
        allow_loopback: true,
        ..EgressPolicy::default()
    }
}

fn client(policy: EgressPolicy) -> OutboundHttp {
    OutboundHttp::new(policy).unwrap()
}

fn get(url: impl Into<String>) -> OutboundRequest {
    OutboundRequest::new(Method::GET, url)
}

/// Resolves every name to fixed addresses, without DNS.
struct Fixed(Vec<IpAddr>);

#[async_trait::async_trait]
impl scm_core::resolve::DnsResolver for Fixed {
    async fn lookup_ip(&self, _host: &str) -> Result<Vec<IpAddr>, scm_core::resolve::LookupError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn loopback_literal_refused_by_default_and_allowed_with_the_flag() {
    let server = Server::start(|_| ok("hello")).await;
    let url = format!("http://127.0.0.1:{}/", server.port());

    let err = client(EgressPolicy::default())
        .send(get(&url))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Refused, "{err}");
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains("refused by egress policy"),
        "{err}"
    );
    assert!(err.to_string().contains("loopback"), "{err}");
    assert_eq!(server.hits(), 0, "a refused request must not connect");

    let response = client(loopback()).send(get(&url)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"hello");
    assert!(response.is_success());
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn other_spellings_of_loopback_are_refused_too() {
    let server = Server::start(|_| ok("hello")).await;
    let port = server.port();
    let http = client(EgressPolicy::default());
    for url in [
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
        // On Linux a connection to 0.0.0.0 reaches the local host.
        format!("http://0.0.0.0:{port}/"),
    ] {
        let err = http.send(get(&url)).await.unwrap_err();
        assert_eq!(err.kind(), OutboundErrorKind::Refused, "{url}: {err}");
    }
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn localhost_goes_through_the_guarded_resolver() {
    let server = Server::start(|_| ok("via name")).await;
    let url = format!("http://localhost:{}/", server.port());

    let err = client(EgressPolicy::default())
        .send(get(&url))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Refused, "{err}");
    assert_eq!(err.host(), Some("localhost"));
    let text = err.to_string();
    assert!(text.contains("localhost"), "{text}");
    assert!(text.contains("loopback"), "{text}");
    assert!(
        !text.contains("127.0.0.1") && !text.contains("::1"),
        "{text}"
    );
    assert_eq!(server.hits(), 0);

    let response = client(loopback()).send(get(&url)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"via name");
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_refused() {
    // Nothing listens there and nothing is sent: the refusal happens before any connect.
    let lookup = Arc::new(Fixed(vec!["10.0.0.1".parse().unwrap()]));
    let http = OutboundHttp::with_resolver(EgressPolicy::default(), lookup).unwrap();
    let err = http
        .send(get("http://internal.example/hook"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Refused, "{err}");
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains("internal.example"), "{text}");
    assert!(text.contains("private"), "{text}");
    assert!(!text.contains("10.0.0.1"), "{text}");
}

#[tokio::test]
async fn an_injected_answer_is_filtered_not_trusted() {
    // The name resolves to the metadata address and to loopback: with allow_loopback only the
    // loopback address is left, and that is where the request goes.
    let server = Server::start(|_| ok("filtered")).await;
    let lookup = Arc::new(Fixed(vec![
        "169.254.169.254".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
    ]));
    let http = OutboundHttp::with_resolver(loopback(), lookup).unwrap();
    let response = http
        .send(get(format!("http://mixed.example:{}/", server.port())))
        .await
        .unwrap();
    assert_eq!(&response.body[..], b"filtered");
}

#[tokio::test]
async fn same_origin_redirect_is_followed() {
    let server = Server::start(|seen| match seen.path {
        "/start" => redirect("/middle"),
        "/middle" => {
            let port = seen
                .head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("host: ")
                        .or_else(|| l.strip_prefix("Host: "))
                })
                .unwrap_or_default()
                .trim()
                .to_owned();
            redirect(&format!("http://{port}/end"))
        }
        "/end" => ok("arrived"),
        _ => response("404 Not Found", "", b""),
    })
    .await;
    let response = client(loopback())
        .send(get(format!("http://127.0.0.1:{}/start", server.port())))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"arrived");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn redirect_to_another_origin_is_returned_not_followed() {
    let other = Server::start(|_| ok("should not be reached")).await;
    let target = format!("http://127.0.0.1:{}/end", other.port());
    let server = Server::start(move |_| redirect(&target)).await;

    let response = client(loopback())
        .send(get(format!("http://127.0.0.1:{}/away", server.port())))
        .await
        .unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some(format!("http://127.0.0.1:{}/end", other.port()).as_str())
    );
    assert_eq!(other.hits(), 0, "the other port must not be contacted");

    // Same port, other host name: another origin as well.
    let port = server.port();
    let renamed = Server::start(move |_| redirect(&format!("http://localhost:{port}/x"))).await;
    let response = client(loopback())
        .send(get(format!("http://127.0.0.1:{}/", renamed.port())))
        .await
        .unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(renamed.hits(), 1);
}

#[tokio::test]
async fn redirects_stop_at_the_limit() {
    let server = Server::start(|_| redirect("/again")).await;
    let policy = EgressPolicy {
        max_redirects: 2,
        ..loopback()
    };
    let response = client(policy)
        .send(get(format!("http://127.0.0.1:{}/", server.port())))
        .await
        .unwrap();
    assert_eq!(response.status, 302);
    // The original request and two redirects.
    assert_eq!(server.hits(), 3);

    let none = EgressPolicy {
        max_redirects: 0,
        ..loopback()
    };
    let response = client(none)
        .send(get(format!("http://127.0.0.1:{}/", server.port())))
        .await
        .unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn a_silent_server_times_out_transiently() {
    let server = Server::start(|_| Reply::Hang).await;
    let policy = EgressPolicy {
        request_timeout_seconds: 1,
        ..loopback()
    };
    let started = Instant::now();
    let err = client(policy)
        .send(get(format!("http://127.0.0.1:{}/", server.port())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Timeout, "{err}");
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_closed_port_is_a_transient_connect_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = client(loopback())
        .send(get(format!(
            "http://127.0.0.1:{port}/secret-path?token=s3cr3t"
        )))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Connect, "{err}");
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(
        !text.contains("secret-path") && !text.contains("s3cr3t"),
        "{text}"
    );
}

#[tokio::test]
async fn a_body_over_the_cap_is_too_large() {
    let big = vec![b'x'; 2048];
    let declared = big.clone();
    let server = Server::start(move |seen| match seen.path {
        // Declared length over the cap: refused before reading.
        "/declared" => response("200 OK", "", &declared),
        // No declared length: the cap applies while streaming.
        "/streamed" => {
            let mut out =
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    .to_vec();
            for piece in big.chunks(256) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            Reply::Raw(out)
        }
        _ => ok(&"y".repeat(1024)),
    })
    .await;
    let policy = EgressPolicy {
        max_response_bytes: 1024,
        ..loopback()
    };
    let http = client(policy);
    for path in ["/declared", "/streamed"] {
        let err = http
            .send(get(format!("http://127.0.0.1:{}{path}", server.port())))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), OutboundErrorKind::TooLarge, "{path}: {err}");
        assert!(!err.is_transient());
        assert!(!err.to_string().contains("xxx"), "no body in the message");
    }
    // Exactly at the cap is fine.
    let response = http
        .send(get(format!("http://127.0.0.1:{}/exact", server.port())))
        .await
        .unwrap();
    assert_eq!(response.body.len(), 1024);
}

#[tokio::test]
async fn only_http_and_https() {
    let http = client(loopback());
    for url in [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "unix:/run/socket",
        "not a url",
        "/relative/path",
    ] {
        let err = http.send(get(url)).await.unwrap_err();
        assert_eq!(err.kind(), OutboundErrorKind::InvalidUrl, "{url}: {err}");
        assert!(!err.is_transient());
    }
}

#[tokio::test]
async fn post_json_sends_json() {
    let server = Server::start(|seen| {
        let content_type = seen
            .head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let signature = seen
            .head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("x-signature: abc"));
        if seen.method == "POST" && content_type.contains("application/json") && signature {
            response("201 Created", "X-Echo: yes\r\n", seen.body)
        } else {
            response("400 Bad Request", "", b"")
        }
    })
    .await;
    let response = client(loopback())
        .post_json(
            &format!("http://127.0.0.1:{}/hook", server.port()),
            vec![("X-Signature".into(), "abc".into())],
            &serde_json::json!({"certificate": "scs1", "event": "issued"}),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.header("x-echo"), Some("yes"));
    let echoed: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(echoed["certificate"], "scs1");
}

#[tokio::test]
async fn zero_timeouts_are_refused_at_setup() {
    let policy = EgressPolicy {
        connect_timeout_seconds: 0,
        ..EgressPolicy::default()
    };
    let err = OutboundHttp::new(policy).unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Other);
}

#[tokio::test]
async fn a_broken_connection_is_transient_and_bad_http_is_not() {
    let closes = Server::start(|_| Reply::Raw(Vec::new())).await;
    let truncates = Server::start(|_| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc".to_vec())
    })
    .await;
    let not_http = Server::start(|_| Reply::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec())).await;
    let http = client(loopback());
    for server in [&closes, &truncates] {
        let err = http
            .send(get(format!("http://127.0.0.1:{}/", server.port())))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), OutboundErrorKind::Connect, "{err}");
        assert!(err.is_transient());
    }
    let err = http
        .send(get(format!("http://127.0.0.1:{}/", not_http.port())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Protocol, "{err}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn the_connect_timeout_covers_the_tls_handshake() {
    // Accepts TCP, never answers the ClientHello.
    let server = Server::start(|_| Reply::Hang).await;
    let policy = EgressPolicy {
        connect_timeout_seconds: 1,
        ..loopback()
    };
    let started = Instant::now();
    let err = client(policy)
        .send(get(format!("https://127.0.0.1:{}/", server.port())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), OutboundErrorKind::Timeout, "{err}");
    assert!(err.is_transient());
    assert!(started.elapsed() < Duration::from_secs(5));
}
