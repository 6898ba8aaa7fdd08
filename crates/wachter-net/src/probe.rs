//! Probing one service: connect, find out whether it speaks TLS or plain HTTP, run the
//! request plan, and record everything in a [`ServiceRecord`].
//!
//! The transport is detected per port, not assumed: TLS is tried first (appliances live on
//! 443) except on the usual plain-HTTP ports, and the other transport is tried when the
//! first attempt's answer shows it was wrong (an HTTP response to a ClientHello, a TLS
//! record or a silent close in answer to a plain request). Requests of a plan share one
//! kept-alive connection where the server allows it, so a TLS appliance usually costs one
//! handshake however many probes it gets.
//!
//! Every step runs against one deadline per target; whatever a hostile server does, the
//! record is finished by then.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use wachter_core::record::{Blob, ErrorInfo, HttpOutcome, Protocol, ServiceRecord, Status};

use crate::connect::{ConnectOutcome, Connector, GuardedStream};
use wachter_core::check::{Check, StaticPlan, TargetContext};

use crate::http::{HttpLimits, RequestError, RequestSpec, exchange, host_header, render_request};
use crate::tls::{Handshake, TlsClient, TlsFailure, TlsStream};

/// One service to probe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    pub hostname: Option<String>,
}

/// How deep a probe goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeDepth {
    /// TCP connect only: port discovery.
    Connect,
    /// Connect, detect TLS or plain, run the HTTP request plan.
    Http,
}

/// The most requests one service gets, whatever a check plans.
const MAX_REQUESTS_PER_SERVICE: usize = 32;

/// Everything a probe needs to know, fixed for a scan.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub depth: ProbeDepth,
    /// The check pack that plans the requests and assesses the record.
    pub check: Arc<dyn Check>,
    /// Mixed into anything random a check sends (control paths).
    pub seed: u64,
    pub http: HttpLimits,
    pub tls_timeout: Duration,
    /// The total deadline for one target, all connections and requests included.
    pub target_timeout: Duration,
    pub user_agent: String,
    /// Ports where plain HTTP is tried before TLS.
    pub plain_first_ports: Vec<u16>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            depth: ProbeDepth::Http,
            check: Arc::new(StaticPlan::new(vec![RequestSpec::get("root", "/")])),
            seed: 0,
            http: HttpLimits::default(),
            tls_timeout: Duration::from_secs(10),
            target_timeout: Duration::from_secs(30),
            user_agent: crate::DEFAULT_USER_AGENT.to_string(),
            plain_first_ports: vec![80, 8000, 8008, 8080, 8081, 8888],
        }
    }
}

/// Probes services; cheap to share across tasks.
pub struct Prober {
    connector: Arc<Connector>,
    tls: TlsClient,
    config: ProbeConfig,
}

/// A connection carrying HTTP, in the clear or over TLS.
enum Conn {
    Plain(GuardedStream),
    Tls(Box<TlsStream>),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Plain,
    Tls,
}

/// How a first attempt on one transport went.
enum Attempt {
    /// The service spoke HTTP (or at least TLS) on this transport; the record is filled.
    Done,
    /// Try the other transport.
    SwitchTransport,
    /// Nothing more to learn.
    Stop,
}

impl Prober {
    pub fn new(
        connector: Arc<Connector>,
        config: ProbeConfig,
    ) -> Result<Self, openssl::error::ErrorStack> {
        Ok(Prober {
            connector,
            tls: TlsClient::new()?,
            config,
        })
    }

    pub fn connector(&self) -> &Arc<Connector> {
        &self.connector
    }

    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Probes one target. Never fails: every outcome is recorded.
    pub async fn probe(&self, target: &Target) -> ServiceRecord {
        let addr = SocketAddr::new(target.ip, target.port);
        // Refused targets cost no rate-limit token; the connector checks again at the socket.
        if let Err(refusal) = self.connector.policy().check(target.ip) {
            let mut record = ServiceRecord::new(
                target.ip,
                target.port,
                target.hostname.clone(),
                now_rfc3339(),
            );
            record.status = Status::Blocked;
            record.blocked_by = Some(refusal);
            self.connector
                .stats()
                .blocked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return record;
        }
        // The target's clock starts when the rate limits let its first connection go:
        // waiting in wachter's own queue is not the target being slow.
        self.connector.admit(target.ip).await;
        let started = Instant::now();
        let deadline = started + self.config.target_timeout;
        let mut record = ServiceRecord::new(
            target.ip,
            target.port,
            target.hostname.clone(),
            now_rfc3339(),
        );
        let outcome = self.connector.connect_admitted(addr, deadline).await;
        let first = self.record_connect(outcome, &mut record);
        if let Some(stream) = first {
            record.status = Status::Open;
            if self.config.depth == ProbeDepth::Http {
                self.probe_http(target, stream, deadline, &mut record).await;
            }
        }
        record.timings.total_ms = started.elapsed().as_millis() as u64;
        if let Some(assessment) = self.config.check.assess(&record) {
            record.checks.push(assessment);
        }
        record
    }

    fn context<'a>(&self, target: &'a Target, transport: Transport) -> TargetContext<'a> {
        TargetContext {
            ip: target.ip,
            port: target.port,
            hostname: target.hostname.as_deref(),
            tls: transport == Transport::Tls,
            seed: self.config.seed,
        }
    }

    /// Connects, recording the outcome; `None` when there is no connection.
    async fn connect(
        &self,
        addr: SocketAddr,
        deadline: Instant,
        record: &mut ServiceRecord,
    ) -> Option<GuardedStream> {
        let outcome = self.connector.connect(addr, deadline).await;
        self.record_connect(outcome, record)
    }

    fn record_connect(
        &self,
        outcome: ConnectOutcome,
        record: &mut ServiceRecord,
    ) -> Option<GuardedStream> {
        match outcome {
            ConnectOutcome::Connected {
                stream,
                elapsed,
                attempts,
            } => {
                record.connections += attempts;
                record
                    .timings
                    .connect_ms
                    .get_or_insert(elapsed.as_millis() as u64);
                Some(stream)
            }
            ConnectOutcome::Blocked(refusal) => {
                // A reconnect refused later would contradict the first check; keep the first.
                if record.connections == 0 {
                    record.status = Status::Blocked;
                    record.blocked_by = Some(refusal);
                }
                None
            }
            other => {
                let (status, attempts, error) = match other {
                    ConnectOutcome::Closed { attempts } => (Status::Closed, attempts, None),
                    ConnectOutcome::Filtered { attempts } => (Status::Filtered, attempts, None),
                    ConnectOutcome::Unreachable { detail, attempts } => (
                        Status::Unreachable,
                        attempts,
                        Some(ErrorInfo {
                            kind: "unreachable".into(),
                            detail,
                        }),
                    ),
                    ConnectOutcome::Error {
                        kind,
                        detail,
                        attempts,
                    } => (
                        Status::Error,
                        attempts,
                        Some(ErrorInfo {
                            kind: kind.into(),
                            detail,
                        }),
                    ),
                    ConnectOutcome::Connected { .. } | ConnectOutcome::Blocked(_) => return None,
                };
                record.connections += attempts;
                if record.connections == attempts {
                    // The first connection: this is the service's reachability.
                    record.status = status;
                    record.error = error;
                } else if record.error.is_none() {
                    // A later reconnect failed: the service was open; say why we stopped.
                    record.error = Some(error.unwrap_or(ErrorInfo {
                        kind: "reconnect".into(),
                        detail: format!("reconnect: {status}"),
                    }));
                }
                None
            }
        }
    }

    async fn probe_http(
        &self,
        target: &Target,
        first: GuardedStream,
        deadline: Instant,
        record: &mut ServiceRecord,
    ) {
        let plain_first = self.config.plain_first_ports.contains(&target.port);
        let order = if plain_first {
            [Transport::Plain, Transport::Tls]
        } else {
            [Transport::Tls, Transport::Plain]
        };
        let mut stream = Some(first);
        for (i, transport) in order.into_iter().enumerate() {
            let stream = match stream.take() {
                Some(s) => s,
                None => match self
                    .connect(SocketAddr::new(target.ip, target.port), deadline, record)
                    .await
                {
                    Some(s) => s,
                    None => return,
                },
            };
            let attempt = match transport {
                Transport::Tls => self.over_tls(target, stream, deadline, record).await,
                Transport::Plain => {
                    self.over_plain(target, stream, deadline, record, i == 0)
                        .await
                }
            };
            match attempt {
                Attempt::Done | Attempt::Stop => return,
                Attempt::SwitchTransport if Instant::now() < deadline => continue,
                Attempt::SwitchTransport => return,
            }
        }
    }

    async fn over_tls(
        &self,
        target: &Target,
        stream: GuardedStream,
        deadline: Instant,
        record: &mut ServiceRecord,
    ) -> Attempt {
        let tls_deadline = deadline.min(Instant::now() + self.config.tls_timeout);
        let tls_started = Instant::now();
        match self
            .tls
            .handshake(stream, target.hostname.as_deref(), tls_deadline)
            .await
        {
            Handshake::Established { stream, info } => {
                record.timings.tls_ms = Some(tls_started.elapsed().as_millis() as u64);
                record.tls = Some(info);
                record.protocol = Some(Protocol::Tls);
                self.run_plan(target, Conn::Tls(stream), Transport::Tls, deadline, record)
                    .await;
                Attempt::Done
            }
            Handshake::Failed {
                info,
                failure,
                received,
            } => match failure {
                TlsFailure::PlainHttp => Attempt::SwitchTransport,
                TlsFailure::Closed | TlsFailure::Reset => {
                    // Could be a plain server closing on binary input; keep what we saw in
                    // case the plain attempt does not do better.
                    record.protocol = Some(Protocol::Silent);
                    record.tls = Some(info);
                    Attempt::SwitchTransport
                }
                TlsFailure::OtherProtocol => {
                    record.protocol = Some(Protocol::Other);
                    record.banner = Some(Blob(received));
                    Attempt::Stop
                }
                TlsFailure::Handshake => {
                    record.protocol = Some(Protocol::TlsFailed);
                    record.tls = Some(info);
                    Attempt::Stop
                }
                TlsFailure::Timeout => {
                    record.protocol = Some(Protocol::Silent);
                    record.error = Some(ErrorInfo {
                        kind: "timeout".into(),
                        detail: "no answer to the TLS ClientHello".into(),
                    });
                    if !received.is_empty() {
                        record.banner = Some(Blob(received));
                    }
                    Attempt::Stop
                }
            },
        }
    }

    async fn over_plain(
        &self,
        target: &Target,
        stream: GuardedStream,
        deadline: Instant,
        record: &mut ServiceRecord,
        first_try: bool,
    ) -> Attempt {
        let Some(spec) = self
            .config
            .check
            .next_request(&self.context(target, Transport::Plain), &[])
        else {
            return Attempt::Stop;
        };
        let mut conn = Conn::Plain(stream);
        let ex = match self
            .send(
                target,
                &mut conn,
                &spec,
                Transport::Plain,
                record.connections,
                deadline,
            )
            .await
        {
            Ok(ex) => ex,
            Err(e) => {
                refused(record, &spec, &e);
                return Attempt::Stop;
            }
        };
        let outcome = ex.exchange.outcome;
        let received = ex.exchange.body.clone().unwrap_or_default();
        let looks_tls = matches!(received.as_bytes().first(), Some(0x14..=0x17));
        match outcome {
            HttpOutcome::Response => {
                record.protocol = Some(Protocol::Http);
                // A failed TLS attempt before this one only showed the port is plain HTTP.
                if record.tls.as_ref().is_some_and(|t| !t.established) {
                    record.tls = None;
                }
                let reusable = ex.reusable;
                record.http.push(ex.exchange);
                let next = if reusable { Some(conn) } else { None };
                self.continue_plan(target, next, Transport::Plain, deadline, record)
                    .await;
                Attempt::Done
            }
            HttpOutcome::NotHttp if looks_tls => {
                if first_try {
                    Attempt::SwitchTransport
                } else {
                    self.not_http(record, received)
                }
            }
            HttpOutcome::NotHttp => self.not_http(record, received),
            HttpOutcome::Closed | HttpOutcome::Reset if first_try => Attempt::SwitchTransport,
            HttpOutcome::Timeout => {
                if record.protocol.is_none() {
                    record.protocol = Some(Protocol::Silent);
                }
                record.http.push(ex.exchange);
                Attempt::Stop
            }
            _ => {
                if record.protocol.is_none() {
                    record.protocol = Some(Protocol::Silent);
                }
                record.http.push(ex.exchange);
                Attempt::Stop
            }
        }
    }

    fn not_http(&self, record: &mut ServiceRecord, received: Blob) -> Attempt {
        record.protocol = Some(Protocol::Other);
        record.banner = Some(received);
        Attempt::Stop
    }

    /// Runs the whole plan on an established TLS connection.
    async fn run_plan(
        &self,
        target: &Target,
        conn: Conn,
        transport: Transport,
        deadline: Instant,
        record: &mut ServiceRecord,
    ) {
        self.continue_plan(target, Some(conn), transport, deadline, record)
            .await;
    }

    /// Runs the check's plan from where the record stands, reconnecting when the server
    /// closed a connection.
    async fn continue_plan(
        &self,
        target: &Target,
        mut conn: Option<Conn>,
        transport: Transport,
        deadline: Instant,
        record: &mut ServiceRecord,
    ) {
        let context = self.context(target, transport);
        while record.http.len() < MAX_REQUESTS_PER_SERVICE {
            let Some(spec) = self.config.check.next_request(&context, &record.http) else {
                return;
            };
            if Instant::now() >= deadline {
                record.error.get_or_insert(ErrorInfo {
                    kind: "deadline".into(),
                    detail: "target deadline reached before the plan finished".into(),
                });
                return;
            }
            let mut current = match conn.take() {
                Some(c) => c,
                None => match self.reopen(target, transport, deadline, record).await {
                    Some(c) => c,
                    None => return,
                },
            };
            let ex = match self
                .send(
                    target,
                    &mut current,
                    &spec,
                    transport,
                    record.connections,
                    deadline,
                )
                .await
            {
                Ok(ex) => ex,
                Err(e) => return refused(record, &spec, &e),
            };
            let first = record.http.is_empty();
            let spoke_http = ex.exchange.outcome == HttpOutcome::Response;
            let reusable = ex.reusable;
            record.http.push(ex.exchange);
            if spoke_http && transport == Transport::Tls {
                record.protocol = Some(Protocol::Https);
            }
            if first && !spoke_http {
                // The service does not answer HTTP; more requests will not change that.
                return;
            }
            if reusable {
                conn = Some(current);
            }
        }
    }

    async fn reopen(
        &self,
        target: &Target,
        transport: Transport,
        deadline: Instant,
        record: &mut ServiceRecord,
    ) -> Option<Conn> {
        let stream = self
            .connect(SocketAddr::new(target.ip, target.port), deadline, record)
            .await?;
        match transport {
            Transport::Plain => Some(Conn::Plain(stream)),
            Transport::Tls => {
                let tls_deadline = deadline.min(Instant::now() + self.config.tls_timeout);
                match self
                    .tls
                    .handshake(stream, target.hostname.as_deref(), tls_deadline)
                    .await
                {
                    Handshake::Established { stream, .. } => {
                        if let Some(tls) = record.tls.as_mut() {
                            tls.handshakes += 1;
                        }
                        Some(Conn::Tls(stream))
                    }
                    Handshake::Failed { info, .. } => {
                        if let Some(tls) = record.tls.as_mut() {
                            tls.handshakes += 1;
                        }
                        record.error.get_or_insert(ErrorInfo {
                            kind: "tls_reconnect".into(),
                            detail: info.failure.unwrap_or_else(|| "handshake failed".into()),
                        });
                        None
                    }
                }
            }
        }
    }

    /// Renders and sends one request; `None` if the request cannot be rendered safely.
    async fn send(
        &self,
        target: &Target,
        conn: &mut Conn,
        spec: &RequestSpec,
        transport: Transport,
        connection: u32,
        deadline: Instant,
    ) -> Result<crate::http::Exchanged, RequestError> {
        let host = host_header(
            target.hostname.as_deref(),
            target.ip,
            target.port,
            transport == Transport::Tls,
        );
        let bytes = match render_request(spec, &host, &self.config.user_agent) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(request = %spec.name, error = %e, "request not sent");
                return Err(e);
            }
        };
        Ok(exchange(
            conn,
            &spec.name,
            bytes,
            connection,
            &self.config.http,
            deadline,
        )
        .await)
    }
}

/// Records that a check asked for a request wachter does not send.
fn refused(record: &mut ServiceRecord, spec: &RequestSpec, error: &RequestError) {
    record.error.get_or_insert(ErrorInfo {
        kind: "request_refused".into(),
        detail: format!("{}: {error}", spec.name),
    });
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
