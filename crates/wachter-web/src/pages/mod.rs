//! The HTML dashboard: overview, hosts, organisations, scans, campaigns, triage reports,
//! account and user pages. Handlers read the store through the pool and render a
//! template; forms carry the session's CSRF token (checked by [`CsrfForm`]).
//!
//! This module has the routes and what the pages share: the layout's context, rendering,
//! ids and queries from the request, the confirmation after a redirect and the problem
//! shown with a refused form, and the row views several tables use. The pages themselves:
//! `findings` (overview, hosts, host), `organisations`, `scans`, `campaigns` (with the
//! outbox actions), `triage`, `account` (API tokens) and `admin` (users).
//!
//! Scanned content is hostile. The host page turns each stored record
//! (`wachter.service/1` JSON) into plain strings ([`evidence`]): wire bytes decoded,
//! non-printable bytes shown as `\xNN`, every block capped. Templates then only print
//! those strings through auto-escape; no template marks anything from the store safe.
//!
//! [`CsrfForm`]: crate::auth::CsrfForm

mod account;
mod admin;
mod campaigns;
pub mod evidence;
#[cfg(test)]
pub(crate) mod examples;
mod findings;
mod organisations;
mod scans;
mod triage;

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use wachter_store::view::{HistoryEntry, HostRow};
use wachter_store::{Store, StoreError};

use crate::AppState;
use crate::auth::{CurrentUser, Role};
use crate::error::{PageError, WebError};
use crate::templates;

/// The most bytes of stored JSON (parameters, decisions) shown.
const JSON_CAP: usize = 64 * 1024;

/// The dashboard's routes (mounted at `/`). Every one needs a session ([`PageUser`]).
///
/// [`PageUser`]: crate::auth::PageUser
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(findings::overview))
        .route("/hosts", get(findings::hosts))
        .route("/hosts/{id}", get(findings::host))
        .route("/organisations", get(organisations::list))
        .route("/organisations/{id}", get(organisations::one))
        .route("/scans", get(scans::list))
        .route("/scans/{id}", get(scans::one))
        .route("/campaigns", get(campaigns::list))
        .route("/campaigns/{id}", get(campaigns::one))
        .route(
            "/campaigns/{id}/messages/{ticket}/retry",
            post(campaigns::retry_message),
        )
        .route(
            "/campaigns/{id}/messages/{ticket}/cancel",
            post(campaigns::cancel_message),
        )
        .route("/triage", get(triage::list))
        .route("/triage/{id}", get(triage::one))
        .route("/account", get(account::page))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/admin/users", get(admin::page).post(admin::add_user))
        .route("/admin/users/role", post(admin::set_role))
        .route("/admin/users/remove", post(admin::remove_user))
}

// ---------------------------------------------------------------------------------------
// Layout and rendering

/// Who is logged in, as the layout shows it (`user.admin` and `user.analyst` are also
/// what the pages show or hide their admin and analyst parts by).
#[derive(Clone, Debug, Serialize)]
struct Chrome {
    name: String,
    role: &'static str,
    csrf: String,
    admin: bool,
    analyst: bool,
}

impl Chrome {
    fn of(user: &CurrentUser) -> Chrome {
        Chrome {
            name: user.name.clone(),
            role: user.role.as_str(),
            csrf: user.csrf.clone().unwrap_or_default(),
            admin: user.role >= Role::Admin,
            analyst: user.role >= Role::Analyst,
        }
    }
}

/// What every page template gets: the layout's values and the page's own.
#[derive(Serialize)]
struct PageContext<T: Serialize> {
    user: Chrome,
    nav: &'static str,
    #[serde(flatten)]
    page: T,
}

/// Page `template` of section `nav` for `user`, answered 200.
fn render<T: Serialize>(
    user: &CurrentUser,
    nav: &'static str,
    template: &str,
    page: T,
) -> Result<Response, PageError> {
    render_status(StatusCode::OK, user, nav, template, page)
}

fn render_status<T: Serialize>(
    status: StatusCode,
    user: &CurrentUser,
    nav: &'static str,
    template: &str,
    page: T,
) -> Result<Response, PageError> {
    let html = templates::render(
        template,
        PageContext {
            user: Chrome::of(user),
            nav,
            page,
        },
    )?;
    Ok((status, html).into_response())
}

// ---------------------------------------------------------------------------------------
// From the request

/// The record `read` finds for the id in the path. Anything that is not an id, and an id
/// of nothing, is a page that does not exist.
async fn load<T: Send + 'static>(
    state: &AppState,
    raw_id: &str,
    read: fn(&Store, i64) -> Result<Option<T>, StoreError>,
) -> Result<T, PageError> {
    let id = path_id(raw_id)?;
    Ok(state.pool.find(move |store| read(store, id)).await?)
}

/// An id from the path; anything that is not one is a page that does not exist.
fn path_id(raw: &str) -> Result<i64, PageError> {
    crate::query::positive_id(raw).ok_or(PageError(WebError::NotFound))
}

/// Query parameters read into `T`; a malformed query string is a 400 page.
struct PageQuery<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, PageError> {
        Ok(PageQuery(crate::query::parse(&parts.uri)?))
    }
}

// ---------------------------------------------------------------------------------------
// After a form: redirect with a confirmation, or the page again with the problem

/// What a page says above its content: the fixed confirmation after a redirect
/// (`?done=…`, never text from the request), or the problem with the form just posted.
/// Read from the query string, it is the confirmation, if any.
#[derive(Clone, Debug, Default, Serialize)]
struct Flash {
    /// The status the page is answered with.
    #[serde(skip)]
    status: StatusCode,
    notice: Option<&'static str>,
    problem: Option<String>,
}

impl Flash {
    /// The page again after a refused form, answered with `status`.
    fn problem(status: StatusCode, problem: impl Into<String>) -> Flash {
        Flash {
            status,
            notice: None,
            problem: Some(problem.into()),
        }
    }

    /// The confirmation for `?done=<word>`, if the word is one of ours.
    fn done(word: &str) -> Flash {
        let notice = match word {
            "retried" => Some("The message is queued again."),
            "cancelled" => Some("The message is cancelled; its findings count as not told."),
            "unchanged" => Some("Nothing changed: the message had moved on meanwhile."),
            "revoked" => Some("The token is revoked."),
            "added" => Some("The user is added."),
            "role" => Some("The role is changed."),
            "removed" => Some("The user is removed, with their sessions and tokens."),
            _ => None,
        };
        Flash {
            status: StatusCode::OK,
            notice,
            problem: None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Flash {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        #[derive(Deserialize)]
        struct Done {
            #[serde(default)]
            done: String,
        }
        let done = Query::<Done>::try_from_uri(&parts.uri).map_or(String::new(), |q| q.0.done);
        Ok(Flash::done(&done))
    }
}

/// Why a form did not go through: a problem to show with the form again, or an error page.
enum Refusal {
    Problem(Flash),
    Error(WebError),
}

impl Refusal {
    fn new(status: StatusCode, problem: impl Into<String>) -> Refusal {
        Refusal::Problem(Flash::problem(status, problem))
    }

    fn bad_request(problem: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, problem)
    }
}

impl From<WebError> for Refusal {
    fn from(e: WebError) -> Self {
        Refusal::Error(e)
    }
}

/// The answer to a form posted from `page`: on success a 303 back to it with the
/// confirmation `done` (see [`Flash::done`]); after a problem, `show` renders the page
/// again with it.
async fn after_form<F>(
    outcome: Result<&'static str, Refusal>,
    page: &str,
    show: impl FnOnce(Flash) -> F,
) -> Result<Response, PageError>
where
    F: Future<Output = Result<Response, PageError>>,
{
    match outcome {
        Ok(done) => Ok(redirect_done(page, done)),
        Err(Refusal::Problem(flash)) => show(flash).await,
        Err(Refusal::Error(e)) => Err(PageError(e)),
    }
}

/// A 303 back to the local `page` with the confirmation `done` (see [`Flash::done`]); both
/// are built from ids and fixed words, never from input.
fn redirect_done(page: &str, done: &'static str) -> Response {
    let location = HeaderValue::from_str(&format!("{page}?done={done}"))
        .unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

// ---------------------------------------------------------------------------------------
// Links

/// `path?query` or `path` when the query is empty.
fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// The CSV download of the API's list `list` with `filters` (a query string, maybe empty).
fn csv_href(list: &str, filters: &str) -> String {
    let all = format!("{}/{list}?format=csv", crate::api::PREFIX);
    if filters.is_empty() {
        all
    } else {
        format!("{all}&{filters}")
    }
}

// ---------------------------------------------------------------------------------------
// Shared row views

/// `ip:port`, with brackets around an IPv6 address.
pub fn address(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A finding as the list tables show it.
#[derive(Clone, Debug, Serialize)]
struct HostRowView {
    service_id: i64,
    address: String,
    hostname: String,
    cve: String,
    state: String,
    basis: String,
    organisation_id: Option<i64>,
    organisation: Option<String>,
    sector: Option<String>,
    first_seen: String,
    last_seen: String,
    last_notified: Option<String>,
}

impl From<HostRow> for HostRowView {
    fn from(row: HostRow) -> Self {
        HostRowView {
            service_id: row.service_id,
            address: address(&row.ip, row.port),
            hostname: evidence::line(&row.hostname),
            cve: row.cve,
            state: row.state,
            basis: row.basis,
            organisation_id: row.organisation_id,
            organisation: row.organisation,
            sector: row.sector,
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            last_notified: row.last_notified,
        }
    }
}

fn host_rows(rows: Vec<HostRow>) -> Vec<HostRowView> {
    rows.into_iter().map(HostRowView::from).collect()
}

/// One state change as the history tables show it.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryView {
    pub at: String,
    pub scan_id: i64,
    pub address: String,
    pub cve: String,
    pub from_state: Option<String>,
    pub to_state: String,
}

impl From<HistoryEntry> for HistoryView {
    fn from(h: HistoryEntry) -> Self {
        HistoryView {
            at: h.at,
            scan_id: h.scan_id,
            address: address(&h.ip, h.port),
            cve: h.cve,
            from_state: h.from_state,
            to_state: h.to_state,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
struct StateCountView {
    state: String,
    count: u64,
}

fn state_counts(map: BTreeMap<String, u64>) -> Vec<StateCountView> {
    map.into_iter()
        .map(|(state, count)| StateCountView { state, count })
        .collect()
}

/// JSON as indented text, capped (stored parameters and decisions can be long).
fn pretty_json(value: &Json) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    evidence::cap_text(&text, JSON_CAP)
}
