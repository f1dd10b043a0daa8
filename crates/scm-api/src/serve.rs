//! The accept loop: HTTP/1.1 connections with a header read timeout (a client that opens a
//! connection and sends nothing, sends headers byte by byte, or keeps an idle keep-alive
//! connection open, is dropped), a cap on open connections (past it a new connection is answered
//! 503 and closed at once, so a flood of idle sockets cannot stall everyone), and a graceful stop:
//! on the shutdown signal the listener closes, requests in flight finish (up to a grace period),
//! idle keep-alive connections close. With a TLS acceptor ([`serve_with`]) each connection is
//! a TLS handshake first (bounded by the header timeout), then the same HTTP/1.1.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time a client has to send a request's line and headers, and the longest an idle
    /// keep-alive connection is kept waiting for its next request.
    pub header_read_timeout: Duration,
    /// Time requests in flight get to finish after the shutdown signal.
    pub grace: Duration,
    /// Connections open at once; past it new ones are refused (503) at once.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(30),
            max_connections: 1024,
        }
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
    serve_with(listener, app, shutdown, limits, None).await
}

/// [`serve`], over TLS when `tls` is given. A connection past the cap is closed without a
/// handshake (a 503 in clear would mean nothing to a TLS client).
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
) -> bool {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
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
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    if tls.is_none() {
                        refuse(stream);
                    } else {
                        tracing::debug!("connection refused: too many open connections");
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(with_peer(app.clone(), peer));
                let http = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
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
                    drop(slot);
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

/// Answers a connection past the cap with a 503 (if its socket takes it without waiting) and
/// closes it, without reading anything.
fn refuse(stream: tokio::net::TcpStream) {
    // Not `try_write`: a socket just registered with the reactor has no readiness yet, so that
    // answers WouldBlock until the reactor turns (seen under load: the 503 was never sent). A
    // plain write on the non-blocking socket goes into its empty send buffer at once.
    match stream.into_std() {
        Ok(mut stream) => {
            if let Err(e) = std::io::Write::write(&mut stream, &OVER_CAPACITY) {
                tracing::debug!(error = %e, "the over-capacity answer was not sent");
            }
        }
        Err(e) => tracing::debug!(error = %e, "a refused connection could not be answered"),
    }
    tracing::debug!("connection refused: too many open connections");
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
        let app = Router::new().route("/slow", get(slow));
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
