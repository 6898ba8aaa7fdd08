//! The scope-guarded connector: the one place in wachter where an outgoing socket is opened.
//!
//! [`Connector::connect`] asks the [`ScopePolicy`] first, then waits for the global and the
//! per-network rate limits, then connects with a deadline. A [`GuardedStream`] can only be
//! made here, and TLS and HTTP only run on top of one, so nothing can reach an address the
//! policy refuses, whether it was typed, read from a file or returned by DNS.
//!
//! Connect outcomes are values ([`ConnectOutcome`]): refused, timed out and unreachable are
//! facts about the target. Running out of local resources (EMFILE, ephemeral ports) is a
//! fact about us: it is retried with back-off and, if it persists, reported as an error,
//! never as a closed port.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, sleep, timeout_at};
use wachter_core::scope::{Refusal, ScopePolicy};

/// Connection rate limits, in new connections per second. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub global: Option<NonZeroU32>,
    /// Per IPv4 /24 or IPv6 /48: politeness towards one network.
    pub per_network: Option<NonZeroU32>,
}

/// How the connector behaves.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Deadline for one TCP handshake.
    pub connect_timeout: Duration,
    /// Extra attempts after a connect timeout (the target may have dropped one SYN).
    pub retries: u32,
    pub limits: RateLimits,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            retries: 1,
            limits: RateLimits {
                global: NonZeroU32::new(1000),
                per_network: NonZeroU32::new(20),
            },
        }
    }
}

/// What came of one attempt to connect.
#[derive(Debug)]
pub enum ConnectOutcome {
    Connected {
        stream: GuardedStream,
        elapsed: Duration,
        attempts: u32,
    },
    /// The scope guard refused; nothing was sent.
    Blocked(Refusal),
    /// Connection refused (RST).
    Closed { attempts: u32 },
    /// No answer within the deadline, on every attempt.
    Filtered { attempts: u32 },
    /// The network reported the host or network unreachable.
    Unreachable { detail: String, attempts: u32 },
    /// A local failure that persisted through the retries, or an unexpected socket error.
    Error {
        kind: &'static str,
        detail: String,
        attempts: u32,
    },
}

/// Local resource errors: wachter's problem, not the target's.
const LOCAL_RETRIES: u32 = 8;

/// Counters the engine reads for progress and the summary.
#[derive(Debug, Default)]
pub struct ConnectStats {
    pub attempts: AtomicU64,
    pub blocked: AtomicU64,
    pub local_errors: AtomicU64,
    pub self_connects: AtomicU64,
}

/// Opens TCP connections, and only to addresses the policy allows.
pub struct Connector {
    policy: Arc<ScopePolicy>,
    options: ConnectOptions,
    global: Option<DefaultDirectRateLimiter>,
    per_network: Option<DefaultKeyedRateLimiter<u128>>,
    stats: Arc<ConnectStats>,
}

impl Connector {
    pub fn new(policy: Arc<ScopePolicy>, options: ConnectOptions) -> Self {
        let global = options
            .limits
            .global
            .map(|rate| RateLimiter::direct(Quota::per_second(rate)));
        let per_network = options
            .limits
            .per_network
            .map(|rate| RateLimiter::keyed(Quota::per_second(rate)));
        Connector {
            policy,
            options,
            global,
            per_network,
            stats: Arc::default(),
        }
    }

    pub fn policy(&self) -> &ScopePolicy {
        &self.policy
    }

    pub fn stats(&self) -> &Arc<ConnectStats> {
        &self.stats
    }

    /// Connects to `addr` unless the policy refuses it, giving up at `deadline`.
    pub async fn connect(&self, addr: SocketAddr, deadline: Instant) -> ConnectOutcome {
        self.connect_inner(addr, deadline, false).await
    }

    /// Waits until the rate limits allow one more connection to `ip`. A caller that starts a
    /// target's clock only after this (see [`Connector::connect_admitted`]) keeps wachter's
    /// own queueing out of the target's deadline.
    pub async fn admit(&self, ip: IpAddr) {
        self.wait_for_rate(ip).await;
    }

    /// Like [`Connector::connect`], for a caller whose first attempt already went through
    /// [`Connector::admit`].
    pub async fn connect_admitted(&self, addr: SocketAddr, deadline: Instant) -> ConnectOutcome {
        self.connect_inner(addr, deadline, true).await
    }

    async fn connect_inner(
        &self,
        addr: SocketAddr,
        deadline: Instant,
        admitted: bool,
    ) -> ConnectOutcome {
        if let Err(refusal) = self.policy.check(addr.ip()) {
            self.stats.blocked.fetch_add(1, Ordering::Relaxed);
            return ConnectOutcome::Blocked(refusal);
        }
        let mut attempts = 0;
        let mut timeouts = 0;
        let mut local_failures = 0;
        let mut admitted = admitted;
        loop {
            if !std::mem::take(&mut admitted) {
                self.wait_for_rate(addr.ip()).await;
            }
            if Instant::now() >= deadline {
                // Our own rate-limit queue outlasted the deadline: nothing was tried, so this
                // says nothing about the target.
                return match timeouts {
                    0 => ConnectOutcome::Error {
                        kind: "deadline",
                        detail: "the deadline passed while waiting for the rate limit".into(),
                        attempts,
                    },
                    _ => ConnectOutcome::Filtered { attempts },
                };
            }
            attempts += 1;
            let n = self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            if n % 65_536 == 65_535
                && let Some(keyed) = &self.per_network
            {
                keyed.retain_recent();
            }
            let started = Instant::now();
            let attempt_deadline = deadline.min(started + self.options.connect_timeout);
            let result = timeout_at(attempt_deadline, open(addr)).await;
            match result {
                Ok(Ok(stream)) => {
                    // On loopback a connect to a port in the ephemeral range can meet itself
                    // (TCP simultaneous open). That is not a listener.
                    if stream.local_addr().ok() == Some(addr) {
                        self.stats.self_connects.fetch_add(1, Ordering::Relaxed);
                        return ConnectOutcome::Closed { attempts };
                    }
                    let _ = stream.set_nodelay(true);
                    return ConnectOutcome::Connected {
                        stream: GuardedStream(stream),
                        elapsed: started.elapsed(),
                        attempts,
                    };
                }
                Ok(Err(e)) => match classify(&e) {
                    ErrorClass::Refused => return ConnectOutcome::Closed { attempts },
                    ErrorClass::Unreachable => {
                        return ConnectOutcome::Unreachable {
                            detail: e.to_string(),
                            attempts,
                        };
                    }
                    ErrorClass::Local => {
                        self.stats.local_errors.fetch_add(1, Ordering::Relaxed);
                        local_failures += 1;
                        if local_failures > LOCAL_RETRIES {
                            return ConnectOutcome::Error {
                                kind: "local_resources",
                                detail: e.to_string(),
                                attempts,
                            };
                        }
                        // Back off: other connections will close and free descriptors/ports.
                        let pause = Duration::from_millis(10u64 << local_failures.min(7));
                        tracing::debug!(%addr, error = %e, ?pause, "local resource error; retrying");
                        sleep(pause).await;
                        attempts -= 1;
                        continue;
                    }
                    ErrorClass::Other => {
                        return ConnectOutcome::Error {
                            kind: "connect",
                            detail: e.to_string(),
                            attempts,
                        };
                    }
                },
                Err(_elapsed) => {
                    timeouts += 1;
                    if timeouts > self.options.retries || Instant::now() >= deadline {
                        return ConnectOutcome::Filtered { attempts };
                    }
                }
            }
        }
    }

    async fn wait_for_rate(&self, ip: IpAddr) {
        if let Some(global) = &self.global {
            global.until_ready().await;
        }
        if let Some(keyed) = &self.per_network {
            keyed.until_key_ready(&network_key(ip)).await;
        }
    }
}

/// The politeness key: the /24 of an IPv4 address, the /48 of an IPv6 one.
pub fn network_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => (u32::from(v4) >> 8) as u128,
        IpAddr::V6(v6) => (u128::from(v6) >> 80) | (1 << 127),
    }
}

async fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.connect(addr).await
}

enum ErrorClass {
    Refused,
    Unreachable,
    Local,
    Other,
}

fn classify(e: &io::Error) -> ErrorClass {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    const EADDRNOTAVAIL: i32 = 99;
    const EAGAIN: i32 = 11;
    const ENETUNREACH: i32 = 101;
    const EHOSTUNREACH: i32 = 113;
    const EHOSTDOWN: i32 = 112;
    if e.kind() == io::ErrorKind::ConnectionRefused {
        return ErrorClass::Refused;
    }
    match e.raw_os_error() {
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM | EADDRNOTAVAIL | EAGAIN) => ErrorClass::Local,
        Some(ENETUNREACH | EHOSTUNREACH | EHOSTDOWN) => ErrorClass::Unreachable,
        _ => ErrorClass::Other,
    }
}

/// A TCP stream that passed the scope guard. Only [`Connector`] makes these.
#[derive(Debug)]
pub struct GuardedStream(TcpStream);

impl GuardedStream {
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn loopback_connector(scope: &str, opt_out: &[&str]) -> Connector {
        let scope = [scope.parse().unwrap()];
        let opt_out: Vec<_> = opt_out.iter().map(|s| s.parse().unwrap()).collect();
        let policy = Arc::new(ScopePolicy::new(&scope, &opt_out));
        let options = ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            retries: 0,
            limits: RateLimits {
                global: None,
                per_network: None,
            },
        };
        Connector::new(policy, options)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn connects_inside_scope_and_counts_closed_ports() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let c = loopback_connector("127.0.0.0/8", &[]);
        assert!(matches!(
            c.connect(open, soon()).await,
            ConnectOutcome::Connected { .. }
        ));
        // Bind and drop to find a port with nothing behind it.
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(matches!(
            c.connect(closed, soon()).await,
            ConnectOutcome::Closed { .. }
        ));
    }

    #[tokio::test]
    async fn refuses_outside_scope_without_sending() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let c = loopback_connector("127.1.0.0/16", &["127.1.2.0/24"]);
        let out = c
            .connect(SocketAddr::new("127.0.0.1".parse().unwrap(), port), soon())
            .await;
        assert!(
            matches!(out, ConnectOutcome::Blocked(Refusal::OutOfScope)),
            "{out:?}"
        );
        let out = c.connect("127.1.2.3:443".parse().unwrap(), soon()).await;
        assert!(
            matches!(out, ConnectOutcome::Blocked(Refusal::OptOut)),
            "{out:?}"
        );
        // The listener saw nothing.
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a refused target must not be contacted");
        assert_eq!(c.stats().attempts.load(Ordering::Relaxed), 0);
        assert_eq!(c.stats().blocked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn local_exhaustion_is_not_a_target_fact() {
        for errno in [24, 23, 105, 99] {
            assert!(
                matches!(
                    classify(&io::Error::from_raw_os_error(errno)),
                    ErrorClass::Local
                ),
                "errno {errno}"
            );
        }
        assert!(matches!(
            classify(&io::Error::from(io::ErrorKind::ConnectionRefused)),
            ErrorClass::Refused
        ));
        assert!(matches!(
            classify(&io::Error::from_raw_os_error(113)),
            ErrorClass::Unreachable
        ));
    }

    #[test]
    fn politeness_keys_group_networks() {
        let key = |s: &str| network_key(s.parse().unwrap());
        assert_eq!(key("127.0.5.1"), key("127.0.5.254"));
        assert_ne!(key("127.0.5.1"), key("127.0.6.1"));
        assert_eq!(key("2001:db8:1::1"), key("2001:db8:1:ffff::1"));
        assert_ne!(key("2001:db8:1::1"), key("2001:db8:2::1"));
        assert_ne!(key("0.0.0.1"), key("::1"));
    }
}
