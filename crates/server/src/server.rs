//! The HTTP server: latchkey's own accept loop on hyper's HTTP/1.1
//! connection, so that no client can hold a connection, a descriptor or the
//! shutdown for longer than the operator allows.
//!
//! What bounds what:
//!
//! - **Header timeout**: from accept (or from the first byte of a
//!   keep-alive connection's next request) to the end of the request's
//!   headers. Slowloris clients are closed.
//! - **Body timeout**: once a handler waits for body bytes, the whole body
//!   must be in within this time; a stalled body gets 408
//!   `{"message":"408 Request Timeout"}` and the connection is closed.
//! - **Idle timeout**: a keep-alive connection with no request in progress
//!   is closed after this long.
//! - **Write timeout**: a response whose client reads nothing for this long
//!   (the socket refuses every write) has its connection closed.
//! - **Connection cap**: at most this many connections are served at once;
//!   beyond it new connections wait in the listen backlog until one closes.
//! - **Shutdown timeout**: on SIGTERM/SIGINT the listener closes, idle
//!   connections close, requests in flight get this long to finish, then
//!   whatever is left is dropped.
//!
//! The read and write timers live in [`TimedIo`], a wrapper around the
//! socket; a keep-alive request costs one timer reset. Which phase a
//! connection is in (waiting for headers, idle, or busy with a request) is
//! told to it by the per-request service through [`ConnState`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use bytes::Bytes;
use futures::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The connection limits `serve` enforces (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub max_connections: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serve `app` on `listener` until `shutdown` resolves, then drain for at
/// most `limits.shutdown_timeout`.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    tokio::pin!(shutdown);
    let mut at_cap = false;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => {
                at_cap = false;
                p
            }
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "the connection cap is reached; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // EMFILE and friends: wait for descriptors to free up
                    // rather than spin.
                    tracing::error!(error = %e, "accept error");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_millis(250)) => continue,
                    }
                }
            },
        };
        // Responses are written whole; Nagle's algorithm would only hold
        // back the last segment of a large one waiting for the client's ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let conn = Arc::new(ConnState::default());
        let io = TokioIo::new(TimedIo::new(stream, conn.clone(), limits));
        let service = ConnService {
            app: app.clone(),
            conn,
            remote,
            body_timeout: limits.body_timeout,
        };
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %remote, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let open = graceful.count();
    if open > 0 {
        tracing::info!(connections = open, "waiting for open connections to finish");
    }
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            shutdown_timeout_seconds = limits.shutdown_timeout.as_secs(),
            connections = limits
                .max_connections
                .saturating_sub(permits.available_permits()),
            "connections still open after the shutdown timeout are closed"
        );
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Raise the soft open-files limit to the hard one (each connection is a
/// descriptor), and return the limit now in force, if it can be read.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open files limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

/// Descriptors kept back from connections: database connections, the
/// listener, log and lock files, SQLite's WAL and shared memory files.
const RESERVED_DESCRIPTORS: u64 = 128;

/// The default connection cap for an open-files limit (`None`: unknown):
/// what the descriptors allow after the database pool and a reserve.
pub fn default_max_connections(open_files: Option<u64>, pool_size: u32) -> usize {
    let Some(limit) = open_files else {
        return 1024;
    };
    let reserved = RESERVED_DESCRIPTORS + 2 * u64::from(pool_size);
    let n = limit.saturating_sub(reserved).clamp(16, 1 << 20);
    usize::try_from(n).unwrap_or(1 << 20)
}

/// What a connection's service tells its socket wrapper: how many requests
/// have started (headers complete) and finished (response body done or
/// dropped), and whether the current request's body timed out.
#[derive(Debug, Default)]
pub struct ConnState {
    started: AtomicU64,
    finished: AtomicU64,
    body_timed_out: AtomicBool,
    /// Woken when a request finishes, if a read had to wait during it: the
    /// connection then needs a read to arm its idle timer.
    idle: AtomicWaker,
}

/// The per-connection service: the router with the peer address, a timed
/// request body and a response body that marks the request finished.
#[derive(Clone)]
struct ConnService {
    app: Router,
    conn: Arc<ConnState>,
    remote: SocketAddr,
    body_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let conn = self.conn.clone();
        conn.started.fetch_add(1, Ordering::Relaxed);
        conn.body_timed_out.store(false, Ordering::Relaxed);
        let finished = Finished(conn.clone());
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.remote));
        let body = TimedBody {
            inner: body,
            conn: conn.clone(),
            timeout: self.body_timeout,
            sleep: None,
        };
        let response = self
            .app
            .clone()
            .oneshot(Request::from_parts(parts, Body::new(body)));
        Box::pin(async move {
            let response = match response.await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let response = if conn.body_timed_out.load(Ordering::Relaxed) {
                request_timeout()
            } else {
                response
            };
            Ok(response.map(|inner| TrackedBody {
                inner,
                _finished: finished,
            }))
        })
    }
}

/// 408 in GitLab's dialect; the rest of the body is never read, so the
/// connection closes after it.
fn request_timeout() -> Response<Body> {
    let mut res = Response::new(Body::from(r#"{"message":"408 Request Timeout"}"#));
    *res.status_mut() = StatusCode::REQUEST_TIMEOUT;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Marks the request finished when the response body is done or dropped.
struct Finished(Arc<ConnState>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
        self.0.idle.wake();
    }
}

/// The response body, unchanged, carrying [`Finished`].
pub struct TrackedBody {
    inner: Body,
    _finished: Finished,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body was not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// The request body with a deadline. The clock starts the first time the
/// handler waits for bytes (a body that came with its headers never starts
/// it); when it runs out the handler's read fails and the response is
/// replaced by 408.
struct TimedBody {
    inner: Incoming,
    conn: Arc<ConnState>,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(BoxError::from))),
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.conn.body_timed_out.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket with read and write deadlines.
///
/// Reads: while no request is in progress, a read that has to wait arms a
/// deadline: the header timeout once any byte of the next request (or, on
/// a new connection, nothing yet) has arrived, else the idle timeout. It is
/// armed once per phase, so trickling bytes do not extend it. While a
/// request is in progress reads are not timed here (the body has its own
/// timeout, and a handler may take its time).
///
/// Writes: a write that has to wait arms the write timeout; any progress
/// disarms it.
pub struct TimedIo {
    inner: TcpStream,
    conn: Arc<ConnState>,
    limits: Limits,
    /// `conn.started` as last seen: a change means headers completed.
    seen_started: u64,
    /// Bytes of the next request's headers have arrived (or the connection
    /// is new), so the header timeout applies rather than the idle one.
    in_headers: bool,
    read_deadline: Option<Instant>,
    read_sleep: Pin<Box<Sleep>>,
    write_deadline: Option<Instant>,
    write_sleep: Pin<Box<Sleep>>,
}

impl TimedIo {
    pub fn new(inner: TcpStream, conn: Arc<ConnState>, limits: Limits) -> Self {
        let deadline = Instant::now() + limits.header_timeout;
        Self {
            inner,
            conn,
            limits,
            seen_started: 0,
            in_headers: true,
            read_deadline: Some(deadline),
            read_sleep: Box::pin(tokio::time::sleep_until(deadline)),
            write_deadline: None,
            write_sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    fn read_waits(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.read_deadline.is_none() {
            let limit = if self.in_headers {
                self.limits.header_timeout
            } else {
                self.limits.idle_timeout
            };
            let deadline = Instant::now() + limit;
            self.read_deadline = Some(deadline);
            // The timer is only ever moved earlier here (a reset takes the
            // timer driver's lock, and a keep-alive connection re-arms on
            // every request); a later deadline is looked at when the timer
            // fires early, below.
            if deadline < self.read_sleep.deadline() {
                self.read_sleep.as_mut().reset(deadline);
            }
        }
        while self.read_sleep.as_mut().poll(cx).is_ready() {
            let deadline = self.read_deadline.unwrap_or_else(Instant::now);
            if Instant::now() < deadline {
                // Fired for an earlier deadline: wait for the current one.
                self.read_sleep.as_mut().reset(deadline);
                continue;
            }
            let what = if self.in_headers {
                "request headers not received within the header timeout"
            } else {
                "keep-alive connection idle for the idle timeout"
            };
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
        }
        Poll::Pending
    }

    fn write_waits<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.write_deadline.is_none() {
            let deadline = Instant::now() + self.limits.write_timeout;
            self.write_deadline = Some(deadline);
            self.write_sleep.as_mut().reset(deadline);
        }
        if self.write_sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the write timeout",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let started = this.conn.started.load(Ordering::Relaxed);
        if started != this.seen_started {
            // A request's headers completed since the last read.
            this.seen_started = started;
            this.in_headers = false;
            this.read_deadline = None;
        }
        let busy = started != this.conn.finished.load(Ordering::Relaxed);
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if !busy && !this.in_headers && buf.filled().len() > before {
                    // The first bytes of the next request: the header
                    // timeout starts at the next wait.
                    this.in_headers = true;
                    this.read_deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if busy => {
                // hyper will not read again by itself once the response is
                // done; have `Finished` wake it to arm the idle timer.
                this.conn.idle.register(cx.waker());
                Poll::Pending
            }
            Poll::Pending => this.read_waits(cx),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.write_waits(cx),
            done => {
                this.write_deadline = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.write_waits(cx),
            done => {
                this.write_deadline = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cap_follows_the_descriptor_limit() {
        assert_eq!(default_max_connections(Some(1024), 4), 1024 - 128 - 8);
        assert_eq!(default_max_connections(Some(100), 4), 16);
        assert_eq!(default_max_connections(None, 4), 1024);
        assert_eq!(default_max_connections(Some(u64::MAX), 4), 1 << 20);
    }
}
