//! The accept loop: HTTP/1.1 connections with a header read timeout (a client that opens a
//! connection and sends nothing, sends headers byte by byte, or keeps an idle keep-alive
//! connection open, is dropped), a cap on open connections (past it a new connection is answered
//! 503 and closed at once, so a flood of idle sockets cannot stall everyone), a cap per client
//! address (so that one client cannot take the whole cap: an IPv4 address, or an IPv6 /64, the
//! block one client usually has), a short deadline for a connection's first byte (a socket that
//! says nothing is closed long before the header timeout), and a graceful stop: on the shutdown
//! signal the listener closes, requests in flight finish (up to a grace period), idle keep-alive
//! connections close. With a TLS acceptor ([`serve_with`]) each connection is a TLS handshake
//! first (bounded by the header timeout), then the same HTTP/1.1.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::address::AddressKey;

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time a client has to send a request's line and headers, and the longest an idle
    /// keep-alive connection is kept waiting for its next request.
    pub header_read_timeout: Duration,
    /// Time a new connection has to send its first byte (of a request, or of a TLS handshake).
    pub first_byte_timeout: Duration,
    /// Time requests in flight get to finish after the shutdown signal.
    pub grace: Duration,
    /// Connections open at once; past it new ones are refused (503) at once.
    pub max_connections: usize,
    /// Connections open at once from one client address (an IPv4 address, an IPv6 /64); past it
    /// that address's new ones are refused (503) at once.
    pub max_connections_per_address: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(5),
            grace: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 256,
        }
    }
}

/// What the accept loop has seen, for `/metrics`: connections open now, and those refused by
/// either cap or closed for saying nothing. Cheap to clone (shared counters).
#[derive(Debug, Clone, Default)]
pub struct ConnectionStats(Arc<ConnectionCounters>);

#[derive(Debug, Default)]
struct ConnectionCounters {
    open: AtomicU64,
    refused_total_cap: AtomicU64,
    refused_address_cap: AtomicU64,
    silent: AtomicU64,
}

impl ConnectionStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.0.open.load(Ordering::Relaxed)
    }

    /// Connections refused because the server-wide cap was full.
    pub fn refused_total_cap(&self) -> u64 {
        self.0.refused_total_cap.load(Ordering::Relaxed)
    }

    /// Connections refused because their address had its share open.
    pub fn refused_address_cap(&self) -> u64 {
        self.0.refused_address_cap.load(Ordering::Relaxed)
    }

    /// Connections closed because no first byte came in time.
    pub fn silent(&self) -> u64 {
        self.0.silent.load(Ordering::Relaxed)
    }
}

/// Open connections per client address. Only addresses with a connection open have an entry,
/// so the table never holds more entries than the connection cap.
#[derive(Debug)]
struct PerAddress {
    cap: usize,
    open: Mutex<HashMap<AddressKey, usize>>,
}

/// One connection counted against its address; the count goes down when it is dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: AddressKey,
}

impl PerAddress {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when the address has its share open.
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = AddressKey::of(ip);
        // A poisoned table (a panic while it was held) is still a valid count.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Everything a connection holds while it is open: its place under both caps, and the gauge.
struct Held {
    _total: tokio::sync::OwnedSemaphorePermit,
    _address: AddressSlot,
    stats: ConnectionStats,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stats.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection past the cap is told before it is closed (no request is read).
static OVER_CAPACITY: std::sync::LazyLock<Vec<u8>> =
    std::sync::LazyLock::new(crate::error::over_capacity_response);

/// Serves `app` over plain HTTP on `listener` until `shutdown` completes, then drains. Returns
/// `true` when every connection finished within the grace period.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: ServeLimits,
) -> bool {
    serve_with(
        listener,
        app,
        shutdown,
        limits,
        None,
        ConnectionStats::default(),
    )
    .await
}

/// [`serve`], over TLS when `tls` is given, counting into `stats`. A connection past a cap is
/// closed without a handshake (a 503 in clear would mean nothing to a TLS client).
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    stats: ConnectionStats,
) -> bool {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = PerAddress::new(limits.max_connections_per_address);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // The address's share first: a client at its share must not take a slot of
                // the server-wide cap, even for a moment.
                let Some(address) = per_address.acquire(peer.ip()) else {
                    stats.0.refused_address_cap.fetch_add(1, Ordering::Relaxed);
                    refuse(stream, tls.is_none(), "this address has its share of connections open");
                    continue;
                };
                let Ok(total) = slots.clone().try_acquire_owned() else {
                    stats.0.refused_total_cap.fetch_add(1, Ordering::Relaxed);
                    refuse(stream, tls.is_none(), "too many open connections");
                    continue;
                };
                stats.0.open.fetch_add(1, Ordering::Relaxed);
                let held = Held { _total: total, _address: address, stats: stats.clone() };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(with_peer(app.clone(), peer));
                let http = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    // A socket that says nothing gives its slots back after the short first-byte
                    // deadline, not the header timeout.
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(limits.first_byte_timeout, stream.peek(&mut first)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(Ok(_) | Err(_)) => return,
                        Err(_) => {
                            held.stats.0.silent.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "connection closed: no first byte in time");
                            return;
                        }
                    }
                    let ended = match tls {
                        None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                        Some(acceptor) => {
                            // The handshake has the header timeout: a client that opens a
                            // connection and says nothing is dropped as in clear.
                            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                                    Ok(())
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    Ok(())
                                }
                            }
                        }
                    };
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(held);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(limits.grace) => false,
    }
}

/// The client's address, for whoever needs it (address allow-lists, the audit log): every
/// request gets it as [`Peer`] in its extensions.
fn with_peer(
    app: Router,
    peer: SocketAddr,
) -> tower::util::MapRequest<Router, impl FnMut(PeerRequest) -> PeerRequest + Clone> {
    tower::util::MapRequest::new(app, move |mut req: PeerRequest| {
        req.extensions_mut().insert(Peer(peer));
        req
    })
}

type PeerRequest = axum::http::Request<hyper::body::Incoming>;

/// The address of the client of a request (the TCP peer; a proxy in front is not looked through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Answers a connection past a cap with a 503 (in clear, and if its socket takes it without
/// waiting) and closes it, without reading anything.
fn refuse(stream: tokio::net::TcpStream, answer: bool, why: &'static str) {
    if answer {
        // Not `try_write`: a socket just registered with the reactor has no readiness yet, so
        // that answers WouldBlock until the reactor turns (seen under load: the 503 was never
        // sent). A plain write on the non-blocking socket goes into its empty send buffer at once.
        match stream.into_std() {
            Ok(mut stream) => {
                if let Err(e) = std::io::Write::write(&mut stream, &OVER_CAPACITY) {
                    tracing::debug!(error = %e, "the over-capacity answer was not sent");
                }
            }
            Err(e) => tracing::debug!(error = %e, "a refused connection could not be answered"),
        }
    }
    tracing::debug!("connection refused: {why}");
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "done"
    }

    async fn start(
        limits: ServeLimits,
    ) -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<bool>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/slow", get(slow))
            .route("/fast", get(|| async { "fast" }));
        let task = tokio::spawn(serve(
            listener,
            app,
            async move {
                let _ = rx.await;
            },
            limits,
        ));
        (addr, tx, task)
    }

    #[tokio::test]
    async fn silent_connections_are_dropped_after_the_header_timeout() {
        let limits = ServeLimits {
            header_read_timeout: Duration::from_millis(200),
            first_byte_timeout: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            ..ServeLimits::default()
        };
        let (addr, stop, task) = start(limits).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        silent.write_all(b"GET /slow HTTP/1.1\r\nHo").await.unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        // The server answers 408 or just closes; either way the read ends soon.
        tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        stop.send(()).unwrap();
        assert!(task.await.unwrap());
    }

    /// A connection from `source` (a loopback address) to `addr`.
    async fn connect_from(source: &str, addr: std::net::SocketAddr) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    }

    async fn get_fast(mut s: tokio::net::TcpStream) -> String {
        s.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    }

    #[tokio::test]
    async fn one_address_cannot_take_more_than_its_share() {
        let limits = ServeLimits {
            max_connections: 16,
            max_connections_per_address: 3,
            ..ServeLimits::default()
        };
        let (addr, stop, task) = start(limits).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect_from("127.0.0.2", addr).await);
        }
        // The fourth from the same address is refused at once...
        let answer = get_fast(connect_from("127.0.0.2", addr).await).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        // ...while another address is served.
        let answer = get_fast(connect_from("127.0.0.3", addr).await).await;
        assert!(answer.ends_with("fast"), "{answer}");
        // A connection given back frees its address's share.
        drop(held.pop());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let answer = get_fast(connect_from("127.0.0.2", addr).await).await;
            if answer.ends_with("fast") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the share was not given back: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(held);
        stop.send(()).unwrap();
        assert!(task.await.unwrap());
    }

    #[tokio::test]
    async fn a_connection_that_says_nothing_is_closed_at_the_first_byte_deadline() {
        let limits = ServeLimits {
            first_byte_timeout: Duration::from_millis(200),
            header_read_timeout: Duration::from_secs(30),
            ..ServeLimits::default()
        };
        let (addr, stop, task) = start(limits).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf.is_empty(), "{buf:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "closed after {:?}, not at the first-byte deadline",
            started.elapsed()
        );
        stop.send(()).unwrap();
        assert!(task.await.unwrap());
    }

    #[tokio::test]
    async fn a_request_in_flight_finishes_after_the_signal_and_new_ones_are_refused() {
        let (addr, stop, task) = start(ServeLimits::default()).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("done"),
            "{text}"
        );
        assert!(task.await.unwrap(), "drained within the grace period");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );
    }
}
