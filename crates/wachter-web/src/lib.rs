//! `wachter serve`: the dashboard and the JSON API over the store.
//!
//! - [`pool`]: a few store handles, used from the blocking pool (the store is synchronous).
//! - [`auth`]: users (Argon2id), sessions (cookie + CSRF token), API tokens (hashed,
//!   scoped, revocable), roles `viewer` < `analyst` < `admin`, and the extractors that
//!   enforce them; [`throttle`]: the failed-login limiter.
//! - [`security`]: headers on every response (strict CSP, no sniffing, no framing) and
//!   `Server-Timing`, which the benchmark reads; [`guard`]: requests refused before any
//!   handler (a foreign `Host`, a cross-site POST, a doubled cookie).
//! - `connection`: the connection cap and the deadline for a request head.
//! - [`query`]: list filters (CVE, state, organisation, sector, network, time) parsed once
//!   for pages, the API and CSV downloads.
//! - [`api`]: `/api/v1/…`, JSON or CSV, with its OpenAPI document.
//! - [`outbox`]: retrying and cancelling a message, for the API and the campaign page.
//! - [`pages`], [`templates`], [`assets`]: the HTML dashboard; templates auto-escape,
//!   assets (uPlot, our CSS and JS) are embedded in the binary.
//!
//! Only this crate knows HTTP status codes; only the store knows SQL. The server speaks
//! plain HTTP/1.1: exposed beyond loopback, it belongs behind a TLS proxy that buffers
//! requests and adds `Strict-Transport-Security`.

pub mod api;
pub mod assets;
pub mod auth;
mod connection;
pub mod error;
pub mod guard;
pub mod outbox;
pub mod pages;
pub mod pool;
pub mod query;
pub mod security;
pub mod templates;
pub mod throttle;

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use auth::{Role, hash_password, new_token};
pub use error::WebError;
pub use guard::HostPolicy;
pub use pool::StorePool;
pub use throttle::LoginLimiter;

/// How `wachter serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The store to serve (a SQLite path or a `postgres://` URL).
    pub store: String,
    pub listen: SocketAddr,
    /// Store handles kept open (concurrent requests beyond this wait).
    pub pool_size: usize,
    /// How long a login lasts.
    pub session_hours: u64,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            store: "wachter.db".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8460)),
            pool_size: 4,
            session_hours: 12,
        }
    }
}

/// Who may reach the server and how much of it they may hold: the host names it answers
/// to besides its listen address, and its connection limits. The defaults suit a server on
/// loopback or reached by address; [`Server::bind_exposed`] takes them.
///
/// (Kept apart from [`ServeOptions`] so that adding it broke no caller's struct literal.)
#[derive(Clone, Debug)]
pub struct Exposure {
    /// Names a reverse proxy forwards requests under (`cert.example` for any port, or
    /// `cert.example:443`). Requests for any other name are answered `421` (DNS
    /// rebinding); the listen address, `localhost` and loopback addresses need no entry.
    pub public_hosts: Vec<String>,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// From accept, or from the end of the previous answer, to a complete request head.
    pub head_timeout: Duration,
}

impl Default for Exposure {
    fn default() -> Self {
        Exposure {
            public_hosts: Vec::new(),
            max_connections: MAX_CONNECTIONS,
            head_timeout: HEAD_TIMEOUT,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: StorePool,
    pub options: Arc<ServeOptions>,
    /// The `Host` values answered (from `options.listen` and the public hosts).
    pub hosts: Arc<HostPolicy>,
    /// Failed logins by address and by user name.
    pub login_limiter: Arc<LoginLimiter>,
}

impl AppState {
    /// The state of a server on `options.listen` with no public host names.
    pub fn new(pool: StorePool, options: ServeOptions) -> AppState {
        let hosts = HostPolicy::local(options.listen);
        AppState::with_hosts(pool, options, hosts)
    }

    /// The state of a server on `options.listen` answering to `hosts`.
    pub fn with_hosts(pool: StorePool, options: ServeOptions, hosts: HostPolicy) -> AppState {
        AppState {
            pool,
            options: Arc::new(options),
            hosts: Arc::new(hosts),
            login_limiter: Arc::new(LoginLimiter::default()),
        }
    }
}

/// The largest request body accepted anywhere (forms cap theirs lower).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How long a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `run` waits for requests in flight after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);
/// A connection that moves no byte either way for this long is closed: a client that
/// never reads its answer cannot hold a socket forever. Longer than [`REQUEST_TIMEOUT`],
/// so a slow handler is answered first.
pub const CONNECTION_IDLE: Duration = Duration::from_secs(120);
/// How long a client may take over a request head, from accept or from the end of the
/// previous answer, however slowly its bytes trickle in (see [`Exposure::head_timeout`]).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections served at once by default (see [`Exposure::max_connections`]).
pub const MAX_CONNECTIONS: usize = 512;

/// The whole application: pages, API, assets, with the security layers.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .merge(auth::routes())
        .merge(pages::routes())
        .merge(assets::routes())
        .nest(api::PREFIX, api::routes())
        .layer(axum::middleware::from_fn(auth::login_redirect))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(guard::same_origin_writes))
        .layer(axum::middleware::from_fn(guard::single_cookies))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::known_host,
        ))
        .layer(axum::middleware::from_fn(trace_request))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn(connection::track_requests))
        .with_state(state)
}

/// Middleware: one debug event per request (method, path without the query, status, ms).
async fn trace_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// A bound server, not yet serving: `local_addr` is known (port 0 picks a free one).
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
    exposure: Exposure,
}

impl Server {
    /// Opens the store pool (migrating the store) and binds the listener, with the
    /// default [`Exposure`] (no public host names).
    pub async fn bind(options: ServeOptions) -> Result<Server, WebError> {
        Server::bind_exposed(options, Exposure::default()).await
    }

    /// Opens the store pool (migrating the store) and binds the listener; the server
    /// answers to the names and keeps to the limits of `exposure`.
    pub async fn bind_exposed(
        mut options: ServeOptions,
        exposure: Exposure,
    ) -> Result<Server, WebError> {
        // Checked first: a typo in the configuration should not wait for the store.
        HostPolicy::new(options.listen, &exposure.public_hosts)?;
        let location = options.store.clone();
        let size = options.pool_size;
        let pool = tokio::task::spawn_blocking(move || StorePool::open(&location, size))
            .await
            .map_err(|e| WebError::Internal(format!("opening the store: {e}")))??;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => WebError::Internal(format!(
                    "cannot listen on {}: the port is taken (another wachter serve?); choose another with --listen",
                    options.listen
                )),
                _ => WebError::Internal(format!("cannot listen on {}: {e}", options.listen)),
            })?;
        // The port really listened on (port 0 picks one), which `Host` must name.
        options.listen = listener
            .local_addr()
            .map_err(|e| WebError::Internal(format!("listener address: {e}")))?;
        let hosts = HostPolicy::new(options.listen, &exposure.public_hosts)?;
        Ok(Server {
            listener,
            state: AppState::with_hosts(pool, options, hosts),
            exposure,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, WebError> {
        self.listener
            .local_addr()
            .map_err(|e| WebError::Internal(format!("listener address: {e}")))
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight (for at
    /// most `SHUTDOWN_GRACE`; each request is bounded by [`REQUEST_TIMEOUT`] anyway).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), WebError> {
        let address = self.local_addr()?;
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = signalled.send(());
        };
        let limits = connection::ConnectionLimits {
            idle: CONNECTION_IDLE,
            head: self.exposure.head_timeout,
        };
        let listener =
            connection::GuardedListener::new(self.listener, self.exposure.max_connections, limits);
        let app =
            router(self.state).into_make_service_with_connect_info::<connection::Connection>();
        let serving = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .into_future();
        tokio::pin!(serving);
        let grace = async move {
            match on_signal.await {
                Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            served = &mut serving => served
                .map_err(|e| WebError::Internal(format!("serving on {address}: {e}"))),
            () = grace => {
                tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after shutdown; stopping anyway");
                Ok(())
            }
        }
    }
}
