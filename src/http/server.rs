//! The connection loop `serve` runs the router in: HTTP/1.1 with a timeout
//! for request headers, an idle timeout on every connection (no byte read
//! or written for `IDLE_TIMEOUT` closes it, so a client that stops reading
//! cannot hold a response for ever), a cap on open connections, and
//! graceful shutdown with a deadline.
//!
//! Past the cap, `HEALTH_RESERVE` more connections are taken but answer
//! only `/health` (anything else is 503 with `Retry-After`), so a flood of
//! idle or half-sent requests never blinds the health check; past that a
//! connection is closed as soon as it is accepted, before it holds a file
//! descriptor for long.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// The whole request head must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that moves no byte either way for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After a shutdown signal, open connections get this long to finish.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);
/// Connections past the cap that may still ask `/health`.
pub const HEALTH_RESERVE: usize = 16;

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting,
/// let open connections finish their requests, and return once they have
/// or `deadline` has passed.
pub async fn run(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    deadline: Duration,
    max_connections: usize,
) {
    let open = Arc::new(Semaphore::new(max_connections.max(1)));
    let reserve = Arc::new(Semaphore::new(HEALTH_RESERVE));
    let health_only = app.clone().layer(axum::middleware::from_fn(only_health));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (slot, app) = match open.clone().try_acquire_owned() {
            Ok(slot) => (slot, app.clone()),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(slot) => (slot, health_only.clone()),
                Err(_) => {
                    tracing::debug!(%peer, "connection refused: at the connection cap");
                    drop(stream);
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Idle::new(stream, IDLE_TIMEOUT));
        // Every request on the connection knows who is at the other end.
        let app = tower::ServiceExt::map_request(app, move |mut req: axum::http::Request<_>| {
            req.extensions_mut().insert(crate::http::client::Peer(peer.ip()));
            req
        });
        let conn = http.serve_connection(io, TowerToHyperService::new(app));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(deadline) => {
            tracing::warn!(deadline_s = deadline.as_secs(), "shutdown deadline passed; closing the connections still open");
        }
    }
}

/// On a connection past the cap: `/health` as usual, anything else 503.
async fn only_health(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    let mut res = axum::response::IntoResponse::into_response(crate::http::problem::ApiError::busy(
        "the server is at its connection limit; retry shortly",
    ));
    res.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    res
}

/// Raise this process's open-file limit to its hard limit, where the soft
/// one is lower, and return the limit in force (`None` where it cannot be
/// read). Each connection holds a descriptor; `serve` keeps its connection
/// cap below this.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `lim` is a valid out pointer for getrlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            // SAFETY: `raised` is a valid rlimit; raising the soft limit up to
            // the hard one needs no privilege.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim = raised;
            }
        }
        // rlim_t is u64 here, but not on every Unix.
        #[allow(clippy::unnecessary_cast)]
        Some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// A stream that fails with `TimedOut` when it has been waited on without
/// moving a byte for `timeout`.
pub struct Idle<S> {
    inner: S,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<S> Idle<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        Idle { inner, timeout, timer: Box::pin(tokio::time::sleep(timeout)) }
    }

    fn progressed(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.timeout);
    }

    /// Called when the inner stream is not ready: ready with an error once
    /// the idle time is up (the timer is polled, so the task wakes then).
    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle"))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A write's outcome: bytes written reset the timer; not ready waits on it.
    fn wrote(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.expired(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.expired(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => self.expired(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
