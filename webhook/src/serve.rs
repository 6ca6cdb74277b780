//! Serving the router over TLS (HTTP/1.1 and HTTP/2 by ALPN): one task per connection on the
//! ordinary runtime, at most `max_connections` at once, each closed when it stays idle, sends its
//! headers too slowly or does not finish its handshake; a graceful drain on shutdown.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::limits::Limits;
use crate::server::{AppState, router};

/// Bytes a connection reads ahead of its handler (HTTP/1.1 buffer, HTTP/2 window).
const READ_AHEAD: usize = 64 * 1024;
/// HTTP/2 streams open at once on one connection; the API server opens another connection past it.
const MAX_STREAMS: u32 = 32;

/// Serves `state`'s router over TLS on `listener` until `shutdown` completes; then stops
/// accepting, lets open connections finish their requests for up to `drain_timeout`, and
/// returns. Each connection keeps the certificate it was handshaken with, so a reload never drops
/// one.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(state.clone());
    // A slot per connection, taken before accepting: past the limit, connections wait in the
    // kernel's backlog and cost no file descriptor.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (drain, draining) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = take_slot(&slots, &state) => slot,
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            acceptor: acceptor.clone(),
            app: app.clone(),
            state: state.clone(),
            draining: draining.clone(),
            _slot: slot,
        };
        tokio::spawn(connection.serve(tcp, peer));
    }
    drop(listener);
    let _ = drain.send(true);
    // Every connection gives its slot back as it ends: all slots back, all connections closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain_timeout, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = state.metrics.connections(),
            "connections still open after the drain timeout; closing them"
        );
    }
    Ok(())
}

async fn take_slot(slots: &Arc<Semaphore>, state: &AppState) -> OwnedSemaphorePermit {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return slot;
    }
    state.metrics.limit_reached();
    tracing::warn!(
        max_connections = state.limits.max_connections,
        "connection limit reached; new connections wait until one closes"
    );
    match slots.clone().acquire_owned().await {
        Ok(slot) => slot,
        // The semaphore is never closed.
        Err(_) => std::future::pending().await,
    }
}

struct Connection {
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    state: Arc<AppState>,
    draining: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// The TLS handshake, then HTTP until the client closes, the connection times out or the
    /// server drains.
    async fn serve(mut self, tcp: tokio::net::TcpStream, peer: std::net::SocketAddr) {
        let metrics = &self.state.metrics;
        let _open = metrics.open_connection();
        let limits = &self.state.limits;
        let handshake = tokio::time::timeout(limits.handshake_timeout, self.acceptor.accept(tcp));
        let tls = tokio::select! {
            // A handshake that can finish does, even when the drain has begun: the client may
            // have sent its request already.
            biased;
            result = handshake => match result {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    metrics.connection_closed("handshake_timeout");
                    return;
                }
            },
            // A client still handshaking has asked nothing yet: it can go elsewhere.
            _ = self.draining.wait_for(|draining| *draining) => return,
        };
        let http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: tls,
            activity: activity.clone(),
        });
        let app = self.app.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |request| {
            let in_flight = requests.begin();
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(in_flight);
                response
            }
        });
        let mut builder = Builder::new(TokioExecutor::new());
        // What a connection may have read ahead of the handler, which counts body bytes against
        // `max_buffered_bytes` only as it takes them: hyper's defaults (a 408 KiB HTTP/1.1 read
        // buffer, a 1 MiB HTTP/2 window) times 128 connections would be more than the budget.
        builder.http1().max_buf_size(READ_AHEAD);
        builder
            .http2()
            .initial_connection_window_size(READ_AHEAD as u32)
            .initial_stream_window_size(READ_AHEAD as u32)
            .max_concurrent_streams(MAX_STREAMS);
        let mut conn = pin!(builder.serve_connection(io, service));
        let reason = tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            reason = activity.expired(limits, http2) => reason,
            _ = self.draining.wait_for(|draining| *draining) => "drained",
        };
        tracing::debug!(%peer, reason, "closing the connection");
        metrics.connection_closed(reason);
        let grace = match reason {
            // HTTP/2 gets GOAWAY, HTTP/1.1 is closed after the response in progress, if any.
            "drained" => limits.drain_timeout,
            // No request in progress: HTTP/2 is told with GOAWAY, HTTP/1.1 (possibly half a
            // request head) is just closed.
            _ if http2 => limits.header_timeout,
            _ => return,
        };
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(grace, conn).await;
    }
}

/// What a connection is doing, for its timeouts: requests in progress, since when it has had
/// none, and when the first byte of the next request arrived.
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    idle_since: Instant,
    first_byte: Option<Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                first_byte: None,
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut ActivityState)) {
        change(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        // One waiter, the connection's watchdog; a stored permit means no change is missed.
        self.changed.notify_one();
    }

    /// A request has arrived; it is in progress until the guard is dropped.
    fn begin(self: &Arc<Self>) -> impl Drop + Send + use<> {
        struct InFlight(Arc<Activity>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                self.0.update(|s| {
                    s.in_flight -= 1;
                    if s.in_flight == 0 {
                        s.idle_since = Instant::now();
                        s.first_byte = None;
                    }
                });
            }
        }
        self.update(|s| {
            s.in_flight += 1;
            s.first_byte = None;
        });
        InFlight(self.clone())
    }

    /// Bytes arrived from the client.
    fn read(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.in_flight == 0 && state.first_byte.is_none() {
            state.first_byte = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// The deadline the connection is under now, and what passing it means.
    fn deadline(&self, limits: &Limits, http2: bool) -> Option<(Instant, &'static str)> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.in_flight > 0 {
            // The request's body has its own timeout; the handler answers in microseconds.
            return None;
        }
        match state.first_byte {
            // HTTP/2 sends pings and settings between requests: only streams count there.
            Some(first) if !http2 => Some((first + limits.header_timeout, "header_timeout")),
            _ => Some((state.idle_since + limits.idle_timeout, "idle_timeout")),
        }
    }

    /// Completes when the connection has been idle, or sent a request's headers, for too long.
    async fn expired(&self, limits: &Limits, http2: bool) -> &'static str {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits, http2) {
                Some((at, reason)) if Instant::now() >= at => return reason,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// The connection's stream, telling [`Activity`] when bytes arrive.
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
