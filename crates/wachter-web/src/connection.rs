//! Connections: how many are served at once, and how long a client may take over a
//! request head.
//!
//! `axum::serve` gives hyper no timer, so hyper's own `header_read_timeout` is off and a
//! client could trickle a request head one byte at a time for as long as it likes. The
//! listener here ([`GuardedListener`]) hands out streams ([`GuardedStream`]) that:
//! - hold a permit of the connection cap until the connection ends: `accept` waits for a
//!   permit first, so clients beyond the cap wait in the kernel's backlog instead of each
//!   costing a task and a file descriptor;
//! - fail with `TimedOut` once no byte has moved either way for the idle limit;
//! - fail with `TimedOut` once a request head has not been completed within the head
//!   limit, counted from accept and again from the end of each answer, whatever trickles
//!   in meanwhile.
//!
//! The stream cannot see where a head ends (that would mean parsing HTTP twice), but hyper
//! hands a request to the router exactly when its head is complete. The outermost
//! middleware, [`track_requests`], marks the connection's [`HeadClock`] busy while the
//! router answers; the stream and the middleware share that clock through the connection
//! info ([`Connection`]). While the answer is written, each write restarts the clock, so a
//! long download is not cut (the bodies here are built before they are sent).

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The limits a connection is held to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionLimits {
    /// No byte either way for this long closes the connection.
    pub idle: Duration,
    /// From accept, or from the end of the previous answer, to a complete request head.
    pub head: Duration,
}

/// The TCP listener of `wachter serve`: at most `permits` connections at once, each a
/// [`GuardedStream`].
pub(crate) struct GuardedListener {
    listener: tokio::net::TcpListener,
    permits: Arc<Semaphore>,
    limits: ConnectionLimits,
}

impl GuardedListener {
    pub fn new(
        listener: tokio::net::TcpListener,
        max_connections: usize,
        limits: ConnectionLimits,
    ) -> GuardedListener {
        GuardedListener {
            listener,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            limits,
        }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!("connection limit reached; new connections wait until one closes");
                match self.permits.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    // The semaphore is never closed; should it be, accept nothing more.
                    Err(_) => std::future::pending().await,
                }
            }
        };
        let (stream, address) = axum::serve::Listener::accept(&mut self.listener).await;
        let stream = GuardedStream::new(stream, self.limits).holding(permit);
        (stream, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// What the router learns about a request's connection (axum's `ConnectInfo`).
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    pub peer: SocketAddr,
    head: Arc<HeadClock>,
}

impl Connected<IncomingStream<'_, GuardedListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        Connection {
            peer: *stream.remote_addr(),
            head: stream.io().head.clone(),
        }
    }
}

/// Middleware (the outermost): marks the connection busy while the router answers, and
/// gives handlers the peer address as `ConnectInfo<SocketAddr>`. Without connection info
/// (a router driven in-process by tests) it does nothing.
pub(crate) async fn track_requests(mut request: Request, next: Next) -> Response {
    let Some(ConnectInfo(connection)) = request.extensions().get::<ConnectInfo<Connection>>()
    else {
        return next.run(request).await;
    };
    let busy = connection.head.request_started();
    let peer = connection.peer;
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = next.run(request).await;
    drop(busy);
    response
}

/// When a connection last started waiting for a request head, shared by its stream and
/// the requests it carries.
#[derive(Debug)]
pub(crate) struct HeadClock {
    limit: Duration,
    state: Mutex<HeadState>,
}

#[derive(Debug)]
struct HeadState {
    /// Requests the router is answering; while there are any, no head is awaited.
    in_flight: usize,
    /// Since when a head is awaited: accept, the end of an answer, or the last write.
    since: Instant,
}

impl HeadClock {
    fn new(limit: Duration) -> Arc<HeadClock> {
        Arc::new(HeadClock {
            limit,
            state: Mutex::new(HeadState {
                in_flight: 0,
                since: Instant::now(),
            }),
        })
    }

    /// The state, also after a panic elsewhere (it holds only counters and a time).
    fn state(&self) -> MutexGuard<'_, HeadState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A head was complete; until the guard is dropped, none is awaited.
    fn request_started(self: &Arc<Self>) -> Busy {
        self.state().in_flight += 1;
        Busy(self.clone())
    }

    /// The answer moved: the next head is awaited from now.
    fn restart(&self) {
        self.state().since = Instant::now();
    }

    /// When the awaited head must be complete; `None` while a request is answered.
    fn deadline(&self) -> Option<Instant> {
        let state = self.state();
        (state.in_flight == 0).then(|| state.since + self.limit)
    }
}

/// A request being answered on a connection (see [`HeadClock::request_started`]).
#[derive(Debug)]
struct Busy(Arc<HeadClock>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.since = Instant::now();
    }
}

/// A stream that fails with `TimedOut` when idle too long or when a request head takes
/// too long (see the module doc), and holds its connection permit until dropped.
pub(crate) struct GuardedStream<S> {
    inner: S,
    idle: Duration,
    idle_deadline: Pin<Box<Sleep>>,
    head: Arc<HeadClock>,
    head_deadline: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S, limits: ConnectionLimits) -> Self {
        let head = HeadClock::new(limits.head);
        let first_head = Instant::now() + limits.head;
        GuardedStream {
            inner,
            idle: limits.idle,
            idle_deadline: Box::pin(tokio::time::sleep(limits.idle)),
            head,
            head_deadline: Box::pin(tokio::time::sleep_until(first_head)),
            _permit: None,
        }
    }

    fn holding(mut self, permit: OwnedSemaphorePermit) -> Self {
        self._permit = Some(permit);
        self
    }

    fn progressed(&mut self) {
        let next = Instant::now() + self.idle;
        self.idle_deadline.as_mut().reset(next);
    }

    /// Whether the idle deadline has passed (else the task is woken when it does).
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.idle_deadline.as_mut().poll(cx).is_ready()
    }

    /// Whether an awaited head is overdue (else the task is woken when it would be).
    fn head_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.head.deadline() else {
            return false;
        };
        if self.head_deadline.deadline() != deadline {
            self.head_deadline.as_mut().reset(deadline);
        }
        self.head_deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out<T>(why: &'static str) -> Poll<std::io::Result<T>> {
    Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why)))
}

const IDLE: &str = "connection idle for too long";
const SLOW_HEAD: &str = "request head not complete in time";

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            // Checked only while waiting: bytes already here are never refused.
            Poll::Pending if this.head_expired(cx) => timed_out(SLOW_HEAD),
            Poll::Pending if this.idle_expired(cx) => timed_out(IDLE),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> GuardedStream<S> {
    /// What a write said: progress restarts both clocks; while it is pending, the idle
    /// deadline's error once it has passed.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match poll {
            Poll::Ready(result) => {
                self.progressed();
                if matches!(result, Ok(written) if written > 0) {
                    self.head.restart();
                }
                Poll::Ready(result)
            }
            Poll::Pending if self.idle_expired(cx) => timed_out(IDLE),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn an_idle_connection_times_out_and_a_busy_one_does_not() {
        let (mut client, server) = tokio::io::duplex(64);
        let limits = ConnectionLimits {
            idle: Duration::from_millis(300),
            head: LONG,
        };
        let mut server = GuardedStream::new(server, limits);
        let mut byte = [0u8; 1];
        // Progress every 150 ms keeps it open past the 300 ms idle deadline.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            client.write_all(b"x").await.unwrap();
            server.read_exact(&mut byte).await.unwrap();
        }
        let idle = server.read(&mut byte).await.unwrap_err();
        assert_eq!(idle.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(idle.to_string(), IDLE);
    }

    /// Reads like hyper does (always waiting for more) until the stream fails.
    fn read_until_refused(
        mut server: GuardedStream<tokio::io::DuplexStream>,
    ) -> tokio::task::JoinHandle<std::io::Error> {
        tokio::spawn(async move {
            let mut buffer = [0u8; 16];
            loop {
                match server.read(&mut buffer).await {
                    Ok(0) => return std::io::Error::other("end of stream"),
                    Ok(_) => {}
                    Err(e) => return e,
                }
            }
        })
    }

    /// Sends a byte every 50 ms (at most 200) until the other side is gone.
    async fn trickle(client: &mut tokio::io::DuplexStream) {
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if client.write_all(b"h").await.is_err() {
                return;
            }
        }
    }

    #[tokio::test]
    async fn a_trickled_head_times_out_although_bytes_keep_coming() {
        let (mut client, server) = tokio::io::duplex(64);
        let limits = ConnectionLimits {
            idle: LONG,
            head: Duration::from_millis(300),
        };
        let reader = read_until_refused(GuardedStream::new(server, limits));
        trickle(&mut client).await;
        let refused = reader.await.unwrap();
        assert_eq!(refused.kind(), std::io::ErrorKind::TimedOut, "{refused}");
        assert_eq!(refused.to_string(), SLOW_HEAD);
    }

    #[tokio::test]
    async fn no_head_is_awaited_while_a_request_is_answered() {
        let (mut client, server) = tokio::io::duplex(64);
        let limits = ConnectionLimits {
            idle: LONG,
            head: Duration::from_millis(200),
        };
        let mut server = GuardedStream::new(server, limits);
        let clock = server.head.clone();
        let busy = clock.request_started();
        // Longer than the head limit, with the reader waiting all along.
        let mut byte = [0u8; 1];
        let late_byte = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            client.write_all(b"b").await.unwrap();
        };
        let (read, ()) = tokio::join!(server.read_exact(&mut byte), late_byte);
        read.unwrap();
        assert_eq!(clock.deadline(), None);
        drop(busy);
        assert!(clock.deadline().is_some(), "awaited again after the answer");
        let reader = read_until_refused(server);
        trickle(&mut client).await;
        assert_eq!(reader.await.unwrap().to_string(), SLOW_HEAD);
    }
}
