//! Users, sessions, API tokens and roles.
//!
//! - Passwords: Argon2id (the `argon2` crate's defaults, a fresh salt each), PHC strings in
//!   the store. A global limit on concurrent verifications keeps a login flood from eating
//!   every core; a login that cannot get a turn within two seconds is answered `503` at
//!   once rather than queued. Failed logins are limited per address and per user name
//!   ([`crate::throttle`]), counted before Argon2 runs: `429` with `Retry-After`.
//! - Sessions: a random 32-byte cookie value (`wachter_session`; `Secure`, `HttpOnly`,
//!   `SameSite=Strict`, `Path=/`); the store keeps its SHA-256. Every form (hidden `_csrf`
//!   field) and every cookie-authenticated API write (`X-CSRF-Token` header) carries the
//!   session's CSRF token, derived from the cookie value ([`csrf_token`]) and never
//!   stored: the store keeps only its digest.
//! - API tokens: `wachter_` + 32 random bytes (base64url), shown once, stored as SHA-256,
//!   scoped `read` or `write`, revocable, optionally expiring. `Authorization: Bearer …`.
//! - Roles: `viewer` reads; `analyst` also acts on the outbox; `admin` also manages users
//!   and everyone's tokens. A token never grants more than its user's role.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::{ApiError, LoginRequired, PageError, WebError};

/// What a user may do. Ordered: each role may do everything the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = WebError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                WebError::BadRequest(format!("unknown role {s:?} (viewer, analyst or admin)"))
            })
    }
}

/// The Argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, WebError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| WebError::Internal(format!("random salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| WebError::Internal(format!("encoding the salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| WebError::Internal(format!("hashing the password: {e}")))
}

/// Whether `password` matches a PHC string (a malformed string matches nothing).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new random secret with `prefix` (`wachter_` for API tokens, `""` for session cookies)
/// and the SHA-256 hex digest the store keeps of it.
pub fn new_token(prefix: &str) -> Result<(String, String), WebError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| WebError::Internal(format!("random token: {e}")))?;
    let secret = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let digest = token_digest(&secret);
    Ok((secret, digest))
}

/// The SHA-256 hex digest of a presented secret, as the store keeps it.
pub fn token_digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A name for a new user (the same rule for `wachter user` and the users page): not
/// empty, at most [`MAX_USER_NAME_CHARS`] characters, no leading or trailing blank, no
/// control character. Inner spaces are fine ("Jan de Vries"). `Err` says what is wrong,
/// as a phrase that completes "the user name …".
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("is empty".into())
    } else if name.chars().count() > MAX_USER_NAME_CHARS {
        Err(format!("is longer than {MAX_USER_NAME_CHARS} characters"))
    } else if name.trim() != name {
        Err("starts or ends with a space".into())
    } else if name.chars().any(char::is_control) {
        Err("holds a control character".into())
    } else {
        Ok(())
    }
}

/// A new password (the same rule for `wachter user` and the users page): at least
/// [`MIN_PASSWORD_CHARS`] characters and at most [`MAX_PASSWORD_BYTES`] bytes. `Err` says
/// what is wrong, as a phrase that completes "the password …".
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(format!("needs at least {MIN_PASSWORD_CHARS} characters"))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err(format!("is longer than {MAX_PASSWORD_BYTES} bytes"))
    } else {
        Ok(())
    }
}

/// The CSRF token of the session whose cookie value is `session_secret`: the SHA-256 hex
/// of `csrf:` and the secret. Derived when needed rather than stored, so the store holds
/// no secret; it cannot be turned back into the cookie value, nor into the digest the
/// store keeps of the cookie (another input).
pub fn csrf_token(session_secret: &str) -> String {
    token_digest(&format!("csrf:{session_secret}"))
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is asking, and how they proved it.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The session's CSRF token; `None` for API-token requests (which need none).
    pub csrf: Option<String>,
    /// The token's scope when authenticated by API token (`read` or `write`).
    pub token_scope: Option<String>,
}

impl CurrentUser {
    /// Whether this request may do what `role` may (a `read` token may only read).
    pub fn may(&self, role: Role, write: bool) -> bool {
        let scope_allows = !write || self.token_scope.as_deref().is_none_or(|s| s == "write");
        self.role >= role && scope_allows
    }

    /// `Ok` if [`CurrentUser::may`], else `Forbidden`.
    pub fn require(&self, role: Role, write: bool) -> Result<(), WebError> {
        if self.may(role, write) {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "wachter_session";
/// The pre-login CSRF cookie (double submit: its value must equal the form's `_csrf`).
pub const LOGIN_COOKIE: &str = "wachter_login";
/// The header a cookie-authenticated API write carries the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest form body a page accepts.
pub const FORM_LIMIT: usize = 64 * 1024;
/// How long the login form stays valid.
const LOGIN_FORM_SECONDS: u64 = 600;
/// What a failed login says, whichever half was wrong.
const WRONG_CREDENTIALS: &str = "Wrong user name or password.";
const EXPIRED_FORM: &str =
    "The login form expired or did not come from this site; please try again.";
/// Longest user name looked at by a login; a longer one fails without a lookup.
const MAX_NAME_CHARS: usize = 200;
/// The longest a session may last, in hours (90 days): the CLI refuses more, the server
/// clamps to it.
pub const MAX_SESSION_HOURS: u64 = 24 * 90;
/// The shortest new password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password, in bytes: a new one is refused beyond it, a login fails without
/// running Argon2.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest new user name, in characters.
pub const MAX_USER_NAME_CHARS: usize = 64;
/// Argon2 verifications running at once (each takes ~19 MiB and a core for a while).
static VERIFICATIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// How long a login waits for a verification turn before it is answered `503`.
const VERIFICATION_WAIT: Duration = Duration::from_secs(2);
const BUSY: &str = "The server is busy checking other logins; please try again in a moment.";
/// The client address of a request served without connection info (the router driven
/// in-process): all such requests share one failed-login bucket.
const UNKNOWN_PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// The store's text for now (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn now_stamp() -> String {
    wachter_store::timestamp(time::OffsetDateTime::now_utc())
}

/// A user signed in with a session cookie (for pages). Without one, pages redirect to
/// the login page.
#[derive(Clone, Debug)]
pub struct PageUser(pub CurrentUser);

/// A user of the API: `Authorization: Bearer wachter_…`, or a session cookie. A
/// cookie-authenticated write (anything but GET, HEAD, OPTIONS) must carry the session's
/// CSRF token in `X-CSRF-Token`.
#[derive(Clone, Debug)]
pub struct ApiUser(pub CurrentUser);

/// A form posted by a signed-in user: the urlencoded body (at most [`FORM_LIMIT`]) whose
/// `_csrf` field matched the session's token.
pub struct CsrfForm<T>(pub PageUser, pub T);

/// The session user once resolved, so a second extractor does not ask the store again.
#[derive(Clone)]
struct ResolvedSession(CurrentUser);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        match session_user(parts, state).await? {
            Some(user) => Ok(PageUser(user)),
            None => Err(PageError(WebError::Unauthorized)),
        }
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(authorization) = parts.headers.get(header::AUTHORIZATION) {
            return token_user(authorization, state)
                .await
                .map(ApiUser)
                .map_err(ApiError);
        }
        let user = session_user(parts, state)
            .await?
            .ok_or(ApiError(WebError::Unauthorized))?;
        if !is_read_method(&parts.method) {
            let presented = parts
                .headers
                .get(CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            check_csrf(presented, user.csrf.as_deref())?;
        }
        Ok(ApiUser(user))
    }
}

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let PageUser(user) = PageUser::from_request_parts(&mut parts, state).await?;
        let bytes = read_form_body(&parts.headers, body).await?;
        let token: CsrfField = parse_form(&bytes).await?;
        check_csrf(token.csrf.as_bytes(), user.csrf.as_deref())?;
        let value: T = parse_form(&bytes).await?;
        Ok(CsrfForm(PageUser(user), value))
    }
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// Whether a request only reads (GET, HEAD, OPTIONS): it needs no CSRF token and may come
/// from anywhere; every other method is a write.
pub fn is_read_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `Csrf` unless `presented` equals the session's token (compared in constant time).
fn check_csrf(presented: &[u8], expected: Option<&str>) -> Result<(), WebError> {
    match expected {
        Some(expected)
            if !expected.is_empty() && constant_time_eq(presented, expected.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(WebError::Csrf),
    }
}

/// Every cookie of the request's `Cookie` headers as (name, value), in order: names and
/// values trimmed, a value's quotes removed, bytes that are not UTF-8 replaced. The one
/// reading of cookies, so the value used and the doubled-cookie check
/// ([`crate::guard::single_cookies`]) agree on what a cookie is.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (String, String)> + '_ {
    headers.get_all(header::COOKIE).iter().flat_map(|header| {
        String::from_utf8_lossy(header.as_bytes())
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .map(|(name, value)| {
                (
                    name.trim().to_string(),
                    value.trim().trim_matches('"').to_string(),
                )
            })
            .collect::<Vec<_>>()
    })
}

/// The value of cookie `name` in the request, if sent (the first, if sent twice: the
/// guard refuses that before any handler runs).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value with the attributes every cookie of ours has.
fn cookie(name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("wachter_invalid=; Max-Age=0"))
}

async fn session_user(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<CurrentUser>, WebError> {
    if let Some(ResolvedSession(user)) = parts.extensions.get::<ResolvedSession>() {
        return Ok(Some(user.clone()));
    }
    let Some(secret) = cookie_value(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if secret.is_empty() || secret.len() > 256 {
        return Ok(None);
    }
    let digest = token_digest(&secret);
    let now = now_stamp();
    let Some(session) = state
        .pool
        .run(move |store| store.session(&digest, &now))
        .await?
    else {
        return Ok(None);
    };
    if session.user.disabled {
        return Ok(None);
    }
    let user = CurrentUser {
        id: session.user.id,
        role: stored_role(&session.user)?,
        name: session.user.name,
        csrf: Some(csrf_token(&secret)),
        token_scope: None,
    };
    parts.extensions.insert(ResolvedSession(user.clone()));
    Ok(Some(user))
}

async fn token_user(
    authorization: &HeaderValue,
    state: &AppState,
) -> Result<CurrentUser, WebError> {
    let value = authorization.to_str().map_err(|_| WebError::Unauthorized)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(WebError::Unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || !token.starts_with("wachter_") || token.len() > 256
    {
        return Err(WebError::Unauthorized);
    }
    let digest = token_digest(token);
    let now = now_stamp();
    let grant = state
        .pool
        .run(move |store| store.use_token(&digest, &now))
        .await?
        .ok_or(WebError::Unauthorized)?;
    if grant.user.disabled {
        return Err(WebError::Unauthorized);
    }
    Ok(CurrentUser {
        id: grant.user.id,
        role: stored_role(&grant.user)?,
        name: grant.user.name,
        csrf: None,
        token_scope: Some(grant.token.scope),
    })
}

fn stored_role(user: &wachter_store::UserRow) -> Result<Role, WebError> {
    user.role.parse().map_err(|_| {
        WebError::Internal(format!(
            "user {:?} has an unknown role {:?} in the store",
            user.name, user.role
        ))
    })
}

/// The body of a urlencoded form, at most [`FORM_LIMIT`] bytes.
async fn read_form_body(headers: &HeaderMap, body: Body) -> Result<Bytes, WebError> {
    let urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !urlencoded {
        return Err(WebError::BadRequest(
            "expected a form (application/x-www-form-urlencoded)".into(),
        ));
    }
    axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|e| WebError::BadRequest(format!("reading the form (at most 64 KiB): {e}")))
}

/// Deserialises a urlencoded body (axum's own form parser, fed the bytes already read).
async fn parse_form<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, WebError> {
    let request = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes.clone()))
        .map_err(|e| WebError::Internal(format!("re-reading the form: {e}")))?;
    axum::Form::<T>::from_request(request, &())
        .await
        .map(|axum::Form(value)| value)
        .map_err(|e| WebError::BadRequest(format!("form: {}", e.body_text())))
}

/// `next` if it is a path on this site (one leading `/`, no backslash, printable ASCII),
/// else `/`: a login never redirects elsewhere.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2048
        && next.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if local { next } else { "/" }
}

/// Middleware: fills in `next` on the login redirect of a page that needed a session
/// (see [`crate::error::LoginRequired`]). Only for GET and HEAD: after logging in, the
/// browser GETs `next`, and a form's POST route (log out, revoke, retry) answers a GET
/// with 405; such a form's user lands on the overview instead.
pub async fn login_redirect(request: Request, next: Next) -> Response {
    let target = matches!(*request.method(), Method::GET | Method::HEAD)
        .then(|| {
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
        })
        .flatten()
        .unwrap_or_else(|| "/".into());
    let mut response = next.run(request).await;
    if response.extensions().get::<LoginRequired>().is_some() && safe_next(&target) != "/" {
        let location = format!("/login?next={}", crate::query::percent_encode(&target));
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    response
}

/// `/login` and `/logout`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
}

#[derive(Default, serde::Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Default, serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// A form with no fields besides `_csrf` (a button), for [`CsrfForm`].
#[derive(serde::Deserialize)]
pub struct NoFields {}

async fn login_form(query: Result<Query<NextQuery>, QueryRejection>) -> Response {
    let next = query.map(|Query(q)| q.next).unwrap_or_default();
    login_page(StatusCode::OK, safe_next(&next), "", None)
}

/// The login form with a fresh pre-login CSRF token in the form and in its cookie (and
/// the name typed before, after a failed attempt).
fn login_page(status: StatusCode, next: &str, username: &str, error: Option<&str>) -> Response {
    let username: String = username.trim().chars().take(MAX_NAME_CHARS).collect();
    let csrf = match new_token("") {
        Ok((secret, _)) => secret,
        Err(e) => return PageError(e).into_response(),
    };
    let context =
        serde_json::json!({ "csrf": csrf, "next": next, "username": username, "error": error });
    match crate::templates::render("login.html", context) {
        Ok(page) => {
            let mut response = (status, page).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie(LOGIN_COOKIE, &csrf, "/login", LOGIN_FORM_SECONDS),
            );
            response
        }
        Err(e) => PageError(e).into_response(),
    }
}

async fn login(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(UNKNOWN_PEER, |ConnectInfo(address)| address.ip());
    let form: LoginForm = match read_form_body(&parts.headers, body).await {
        Ok(bytes) => match parse_form(&bytes).await {
            Ok(form) => form,
            Err(e) => return PageError(e).into_response(),
        },
        Err(e) => return PageError(e).into_response(),
    };
    let next = safe_next(&form.next).to_string();
    let expected = cookie_value(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    if check_csrf(form.csrf.as_bytes(), Some(&expected)).is_err() {
        return login_page(
            StatusCode::FORBIDDEN,
            &next,
            &form.username,
            Some(EXPIRED_FORM),
        );
    }
    let username = form.username.clone();
    let shown: String = username.chars().take(MAX_NAME_CHARS).collect();
    let attempt = match state
        .login_limiter
        .attempt(peer, &limiter_key(&form.username))
    {
        Ok(attempt) => attempt,
        Err(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::warn!(%peer, username = ?shown, retry_after = seconds, "login refused: too many failed logins");
            let message = format!(
                "Too many failed logins; please wait {seconds} seconds before trying again."
            );
            return with_retry_after(
                login_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    &next,
                    &username,
                    Some(&message),
                ),
                seconds,
            );
        }
    };
    match authenticate(&state, form.username, form.password).await {
        Ok(Checked::Accepted(user)) => {
            state.login_limiter.give_back(attempt);
            match start_session(&state, user.id, &next).await {
                Ok(response) => {
                    tracing::info!(user = ?user.name, %peer, "logged in");
                    response
                }
                Err(e) => PageError(e).into_response(),
            }
        }
        Ok(Checked::Refused) => {
            tracing::warn!(username = ?shown, %peer, "failed login");
            login_page(
                StatusCode::UNAUTHORIZED,
                &next,
                &username,
                Some(WRONG_CREDENTIALS),
            )
        }
        Ok(Checked::Busy) => {
            state.login_limiter.give_back(attempt);
            tracing::warn!(username = ?shown, %peer, "login refused: password checks busy");
            let seconds = VERIFICATION_WAIT.as_secs().max(1);
            with_retry_after(
                login_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &next,
                    &username,
                    Some(BUSY),
                ),
                seconds,
            )
        }
        Err(e) => {
            state.login_limiter.give_back(attempt);
            PageError(e).into_response()
        }
    }
}

/// The failed-login limiter's key for a typed user name: folded like the store folds
/// names, and cut to the longest name looked at.
fn limiter_key(username: &str) -> String {
    wachter_store::same_name(username)
        .chars()
        .take(MAX_NAME_CHARS)
        .collect()
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// What checking a login's password came to.
enum Checked {
    Accepted(wachter_store::UserRow),
    /// Wrong name or password, or a disabled user.
    Refused,
    /// No verification turn came up in time; the password was not checked.
    Busy,
}

/// Whose password this is, if the user is enabled. An unknown name costs the same Argon2
/// verification as a known one, so timing does not tell which half was wrong.
async fn authenticate(
    state: &AppState,
    username: String,
    password: String,
) -> Result<Checked, WebError> {
    let username = username.trim().to_string();
    if username.is_empty()
        || username.chars().count() > MAX_NAME_CHARS
        || password.len() > MAX_PASSWORD_BYTES
    {
        return Ok(Checked::Refused);
    }
    let credentials = state
        .pool
        .run(move |store| store.user_credentials(&username))
        .await?;
    let Some(permit) = verification_turn(&VERIFICATIONS, VERIFICATION_WAIT).await? else {
        return Ok(Checked::Busy);
    };
    let phc = credentials.as_ref().map(|c| c.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        match phc {
            Some(phc) => verify_password(&password, &phc),
            None => {
                let _ = verify_password(&password, dummy_phc());
                false
            }
        }
    })
    .await
    .map_err(|e| WebError::Internal(format!("password verification task: {e}")))?;
    Ok(match accepted(credentials, matches) {
        Some(user) => Checked::Accepted(user),
        None => Checked::Refused,
    })
}

/// A permit of `limit` if one comes free within `wait`; `None` when none did.
async fn verification_turn(
    limit: &'static tokio::sync::Semaphore,
    wait: Duration,
) -> Result<Option<tokio::sync::SemaphorePermit<'static>>, WebError> {
    match tokio::time::timeout(wait, limit.acquire()).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        Ok(Err(e)) => Err(WebError::Internal(format!(
            "password verification limit: {e}"
        ))),
        Err(_elapsed) => Ok(None),
    }
}

/// The user a login lets in: known, the password matched, and not disabled.
fn accepted(
    credentials: Option<wachter_store::UserCredentials>,
    password_matches: bool,
) -> Option<wachter_store::UserRow> {
    credentials
        .filter(|c| password_matches && !c.user.disabled)
        .map(|c| c.user)
}

/// A PHC string no password matches in practice, verified against for unknown names.
fn dummy_phc() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("wachter: there is no such user").unwrap_or_default())
}

/// Records a new session and answers with its cookie and the redirect to `next`.
async fn start_session(state: &AppState, user_id: i64, next: &str) -> Result<Response, WebError> {
    let (secret, digest) = new_token("")?;
    let csrf_digest = token_digest(&csrf_token(&secret));
    let hours = state.options.session_hours.clamp(1, MAX_SESSION_HOURS);
    let now = time::OffsetDateTime::now_utc();
    let expires = wachter_store::timestamp(now + time::Duration::hours(hours as i64));
    let now = wachter_store::timestamp(now);
    state
        .pool
        .run(move |store| {
            store.prune_sessions(&now)?;
            store.create_session(&digest, user_id, &csrf_digest, &expires)
        })
        .await?;
    let location = HeaderValue::from_str(next).unwrap_or(HeaderValue::from_static("/"));
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie(SESSION_COOKIE, &secret, "/", hours * 3600),
    );
    headers.append(header::SET_COOKIE, cookie(LOGIN_COOKIE, "", "/login", 0));
    Ok(response)
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(_user, NoFields {}): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    if let Some(secret) = cookie_value(&headers, SESSION_COOKIE) {
        let digest = token_digest(&secret);
        state
            .pool
            .run(move |store| store.delete_session(&digest))
            .await?;
    }
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/login"))],
    )
        .into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", "/", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_hash_is_argon2id_and_verifies_only_its_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct hors", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(phc, hash_password("correct horse").unwrap(), "salted");
    }

    fn user(role: Role, scope: Option<&str>) -> CurrentUser {
        CurrentUser {
            id: 1,
            name: "u".into(),
            role,
            csrf: None,
            token_scope: scope.map(str::to_string),
        }
    }

    #[test]
    fn a_role_may_what_the_roles_below_it_may_and_a_read_token_only_reads() {
        // (role, token scope, needed role, write, allowed)
        let cases = [
            (Role::Viewer, None, Role::Viewer, false, true),
            (Role::Viewer, None, Role::Analyst, false, false),
            (Role::Viewer, None, Role::Viewer, true, true),
            (Role::Analyst, None, Role::Analyst, true, true),
            (Role::Analyst, Some("read"), Role::Analyst, false, true),
            (Role::Analyst, Some("read"), Role::Analyst, true, false),
            (Role::Analyst, Some("write"), Role::Analyst, true, true),
            (Role::Analyst, Some("write"), Role::Admin, true, false),
            (Role::Admin, Some("write"), Role::Admin, true, true),
            (Role::Admin, Some("read"), Role::Viewer, true, false),
            (Role::Admin, Some("other"), Role::Viewer, true, false),
        ];
        for (role, scope, needed, write, allowed) in cases {
            assert_eq!(
                user(role, scope).may(needed, write),
                allowed,
                "{role} {scope:?} wants {needed} write={write}"
            );
        }
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        let cases = [
            ("/", "/"),
            ("/hosts?cve=CVE-2019-19781", "/hosts?cve=CVE-2019-19781"),
            ("/hosts/12#evidence", "/hosts/12#evidence"),
            ("", "/"),
            ("//evil.example", "/"),
            ("///evil.example", "/"),
            ("/\\evil.example", "/"),
            ("\\\\evil.example", "/"),
            ("https://evil.example/", "/"),
            ("javascript:alert(1)", "/"),
            ("/a b", "/"),
            ("/\t/evil.example", "/"),
            ("/x\r\nSet-Cookie: a=b", "/"),
            ("/é", "/"),
        ];
        for (next, expected) in cases {
            assert_eq!(safe_next(next), expected, "{next:?}");
        }
    }

    #[test]
    fn user_names_and_new_passwords_follow_one_rule() {
        // (name, accepted)
        let names = [
            ("anna", true),
            ("Jan de Vries", true),
            ("émile.o'brien@cert", true),
            (&"x".repeat(MAX_USER_NAME_CHARS) as &str, true),
            (&"é".repeat(MAX_USER_NAME_CHARS), true),
            (&"x".repeat(MAX_USER_NAME_CHARS + 1), false),
            ("", false),
            (" anna", false),
            ("anna ", false),
            ("anna\t", false),
            ("an\nna", false),
            ("an\u{7f}na", false),
        ];
        for (name, accepted) in names {
            assert_eq!(check_user_name(name).is_ok(), accepted, "{name:?}");
        }
        let passwords = [
            ("correct hors", true),
            ("correct hor", false),
            ("ééééééééééé", false),
            ("éééééééééééé", true),
            (&"x".repeat(MAX_PASSWORD_BYTES) as &str, true),
            (&"x".repeat(MAX_PASSWORD_BYTES + 1), false),
        ];
        for (password, accepted) in passwords {
            assert_eq!(
                check_new_password(password).is_ok(),
                accepted,
                "{} chars",
                password.chars().count()
            );
        }
        assert_eq!(
            check_user_name(" anna").unwrap_err(),
            "starts or ends with a space"
        );
        assert_eq!(
            check_new_password("short").unwrap_err(),
            "needs at least 12 characters"
        );
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("x_wachter_session=no; wachter_login=L"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("wachter_session=S1"),
        );
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("S1")
        );
        assert_eq!(cookie_value(&headers, LOGIN_COOKIE).as_deref(), Some("L"));
        assert_eq!(cookie_value(&headers, "absent"), None);
    }

    #[test]
    fn cookies_are_read_one_way() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static(" a = 1 ;b=\"two\";;novalue; c=x=y"),
        );
        headers.append(header::COOKIE, HeaderValue::from_bytes(b"d=\xff").unwrap());
        let all: Vec<(String, String)> = cookies(&headers).collect();
        let expected = [("a", "1"), ("b", "two"), ("c", "x=y"), ("d", "\u{fffd}")];
        assert_eq!(all, expected.map(|(n, v)| (n.to_string(), v.to_string())),);
        assert_eq!(cookie_value(&headers, "a").as_deref(), Some("1"));
    }

    #[test]
    fn reads_are_get_head_and_options() {
        for (method, reads) in [
            (Method::GET, true),
            (Method::HEAD, true),
            (Method::OPTIONS, true),
            (Method::POST, false),
            (Method::PUT, false),
            (Method::DELETE, false),
            (Method::PATCH, false),
        ] {
            assert_eq!(is_read_method(&method), reads, "{method}");
        }
    }

    #[test]
    fn a_disabled_user_is_not_let_in_even_with_the_right_password() {
        let credentials = |disabled| wachter_store::UserCredentials {
            user: wachter_store::UserRow {
                id: 1,
                name: "dora".into(),
                role: "admin".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                disabled,
            },
            password_hash: String::new(),
        };
        assert!(accepted(Some(credentials(false)), true).is_some());
        assert!(accepted(Some(credentials(true)), true).is_none());
        assert!(accepted(Some(credentials(false)), false).is_none());
        assert!(accepted(None, true).is_none());
    }

    #[test]
    fn csrf_tokens_must_be_present_and_equal() {
        assert!(check_csrf(b"abc", Some("abc")).is_ok());
        assert!(check_csrf(b"abd", Some("abc")).is_err());
        assert!(
            check_csrf(b"", Some("")).is_err(),
            "an empty token never matches"
        );
        assert!(check_csrf(b"abc", None).is_err());
    }

    #[tokio::test]
    async fn a_login_that_gets_no_verification_turn_is_not_queued() {
        static LIMIT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
        let wait = Duration::from_millis(20);
        let first = verification_turn(&LIMIT, wait).await.unwrap();
        assert!(first.is_some(), "a free permit is taken");
        assert!(
            verification_turn(&LIMIT, wait).await.unwrap().is_none(),
            "busy: no permit within the wait"
        );
        drop(first);
        assert!(verification_turn(&LIMIT, wait).await.unwrap().is_some());
    }

    #[test]
    fn failed_logins_are_counted_under_the_folded_name() {
        for typed in ["anna", "Anna", " ANNA ", "anna\t"] {
            assert_eq!(limiter_key(typed), "anna", "{typed:?}");
        }
        assert_eq!(limiter_key(&"x".repeat(500)).len(), MAX_NAME_CHARS);
    }

    #[test]
    fn a_sessions_csrf_token_is_derived_from_its_secret_and_reveals_neither_digest() {
        let (secret, digest) = new_token("").unwrap();
        let (other, _) = new_token("").unwrap();
        let csrf = csrf_token(&secret);
        assert_eq!(csrf, csrf_token(&secret), "the same every time");
        assert_ne!(csrf, csrf_token(&other));
        assert_eq!(csrf.len(), 64);
        assert!(csrf.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(csrf, digest, "not the digest the store keeps of the cookie");
        assert!(!csrf.contains(&secret));
        // A known vector: SHA-256("csrf:abc").
        assert_eq!(csrf_token("abc"), token_digest("csrf:abc"),);
    }

    #[test]
    fn tokens_are_random_and_kept_as_their_digest() {
        let (a, da) = new_token("wachter_").unwrap();
        let (b, _) = new_token("wachter_").unwrap();
        assert!(a.starts_with("wachter_") && a.len() == 8 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(da, token_digest(&a));
        assert_eq!(da.len(), 64);
    }
}
