//! The JSON API under `/api/v1`, described by an OpenAPI 3.1 document at
//! `/api/v1/openapi.json`. Every list answers CSV with `?format=csv`.
//!
//! Every route is in [`ROUTES`], the one table the router is built from and the OpenAPI
//! document is checked against. Handlers share their bodies (`detail`, `list`) and their
//! documented error responses (`documented`). CSV cells are neutralised for spreadsheets
//! (`wachter_core::csv_cell`, the rule of every CSV wachter writes): the people who open
//! these files open them in Excel.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi as _;
use wachter_core::csv_cell::csv_cell;
use wachter_store::view::{
    CampaignDetail, CampaignSummary, FindingFilter, HostDetail, HostRow, MessageView,
    OrganisationDetail, OrganisationSummary, Overview, Paged, ScanDetail, ScanSummary,
    TriageReportDetail, TriageReportSummary,
};
use wachter_store::{Store, StoreError};

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, ErrorBody, WebError};
use crate::outbox::OutboxAction;
use crate::query::{FormatQuery, ListQuery, SectorQuery, positive_id, wants_csv};

/// Where [`routes`] is mounted.
pub const PREFIX: &str = "/api/v1";

/// How one route's method router is made.
pub type MakeRoute = fn() -> MethodRouter<AppState>;

/// Every route of the API: method, path (below [`PREFIX`]) and handler. The router is
/// built from this table, and a test checks the OpenAPI document against it.
pub const ROUTES: &[(&str, &str, MakeRoute)] = &[
    ("get", "/overview", || get(overview)),
    ("get", "/hosts", || get(hosts)),
    ("get", "/hosts/{id}", || get(host)),
    ("get", "/organisations", || get(organisations)),
    ("get", "/organisations/{id}", || get(organisation)),
    ("get", "/scans", || get(scans)),
    ("get", "/scans/{id}", || get(scan)),
    ("get", "/campaigns", || get(campaigns)),
    ("get", "/campaigns/{id}", || get(campaign)),
    ("get", "/campaigns/{id}/messages", || get(campaign_messages)),
    ("get", "/triage", || get(triage_reports)),
    ("get", "/triage/{id}", || get(triage_report)),
    ("get", "/me", || get(me)),
    ("post", "/messages/{ticket}/retry", || post(retry_message)),
    ("post", "/messages/{ticket}/cancel", || post(cancel_message)),
    ("get", "/openapi.json", || get(openapi_json)),
];

/// The API's routes (mounted at `/api/v1`).
pub fn routes() -> axum::Router<AppState> {
    ROUTES
        .iter()
        .fold(axum::Router::new(), |router, (_, path, make)| {
            router.route(path, make())
        })
}

/// The OpenAPI document of [`routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "wachter",
        description = "The case over the API: findings, hosts, organisations, scans, campaigns and triage reports. Every list answers CSV with `format=csv`. Authenticate with `Authorization: Bearer wachter_…` (a token from the account page) or the dashboard's session cookie; cookie-authenticated writes carry the session's CSRF token in `X-CSRF-Token`."
    ),
    paths(
        overview,
        hosts,
        host,
        organisations,
        organisation,
        scans,
        scan,
        campaigns,
        campaign,
        campaign_messages,
        triage_reports,
        triage_report,
        me,
        retry_message,
        cancel_message,
        openapi_json
    ),
    components(schemas(ErrorBody, Me, MessageAction)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("cookie" = []))
)]
struct ApiDoc;

/// The two ways to authenticate, as OpenAPI security schemes.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("wachter_ token")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// The error responses the handlers document, each an [`ErrorBody`]. They only describe
/// responses (the errors themselves are [`ApiError`]s), so nothing reads their field.
#[allow(dead_code)]
mod documented {
    use crate::error::ErrorBody;

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 400,
        description = "a parameter is malformed (the message names it)"
    )]
    pub struct BadParameter(ErrorBody);

    #[derive(utoipa::IntoResponses)]
    #[response(status = 401, description = "no valid session or token")]
    pub struct Unauthenticated(ErrorBody);

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 403,
        description = "role or token scope too small, or CSRF token missing"
    )]
    pub struct NotAllowed(ErrorBody);

    #[derive(utoipa::IntoResponses)]
    #[response(status = 404, description = "no such id")]
    pub struct NoSuchId(ErrorBody);
}
use documented::{BadParameter, NoSuchId, NotAllowed, Unauthenticated};

/// Query parameters read into `T`; a malformed query string is a JSON 400.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(ApiQuery(crate::query::parse(&parts.uri)?))
    }
}

/// Who is asking.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub id: i64,
    pub name: String,
    /// `viewer`, `analyst` or `admin`.
    pub role: String,
    /// The token's scope (`read` or `write`) when authenticated by API token.
    pub token_scope: Option<String>,
    /// The session's CSRF token (for `X-CSRF-Token`) when authenticated by cookie.
    pub csrf: Option<String>,
}

/// What an outbox action changed.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageAction {
    pub ticket: String,
    /// `retry` or `cancel`.
    pub action: String,
    /// 1 if the message changed state, 0 if it was not in a state the action applies to
    /// (retry: held; cancel: queued or held).
    pub changed: u64,
}

/// A positive integer id from the path.
fn parse_id(raw: &str) -> Result<i64, WebError> {
    positive_id(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(60).collect();
        WebError::BadRequest(format!("id: expected a number, not {shown:?}"))
    })
}

/// A detail handler's body: what `read` finds for the id in the path, or 404.
async fn detail<T: Send + 'static>(
    state: &AppState,
    raw_id: &str,
    read: fn(&Store, i64) -> Result<Option<T>, StoreError>,
) -> Result<Json<T>, ApiError> {
    let id = parse_id(raw_id)?;
    Ok(Json(state.pool.find(move |store| read(store, id)).await?))
}

/// A list handler's body: the rows `read` returns, as JSON or, with `format=csv`, as the
/// download `wachter-<name>.csv`.
async fn list<R, F>(
    state: &AppState,
    name: &str,
    format: &str,
    read: F,
) -> Result<Response, ApiError>
where
    R: CsvRow + Serialize + Send + 'static,
    F: FnOnce(&Store) -> Result<Vec<R>, StoreError> + Send + 'static,
{
    let csv = wants_csv(format)?;
    let rows = state.pool.run(read).await?;
    list_response(name, rows, csv)
}

#[utoipa::path(
    get,
    path = "/api/v1/overview",
    description = "Totals, findings per CVE and state, the trend of open findings over scans, and the newest findings.",
    responses((status = 200, description = "OK", body = Overview), Unauthenticated)
)]
async fn overview(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
) -> Result<Json<Overview>, ApiError> {
    Ok(Json(state.pool.run(|store| store.overview()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/hosts",
    description = "Findings per service matching the filters, paged; with `format=csv` every matching row, unpaged.",
    params(ListQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`", content(
            (Paged<HostRow> = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "a filter is malformed (the message names it)", body = ErrorBody),
        Unauthenticated,
    )
)]
async fn hosts(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    let page = query.page()?;
    if query.csv()? {
        let body = state
            .pool
            .run(move |store| hosts_csv(store, &filter))
            .await?;
        return Ok(csv_response("hosts", body));
    }
    let paged = state
        .pool
        .run(move |store| store.hosts(&filter, page))
        .await?;
    Ok(Json(paged).into_response())
}

/// Every matching finding as CSV, visited one row at a time.
fn hosts_csv(store: &Store, filter: &FindingFilter) -> Result<Vec<u8>, StoreError> {
    let as_store_error = |e: String| StoreError::Operation {
        location: store.location().to_string(),
        detail: format!("writing the hosts CSV: {e}"),
    };
    let mut csv = CsvWriter::new(HostRow::HEADER).map_err(as_store_error)?;
    store.each_host(filter, |row| csv.row(row.cells()).map_err(as_store_error))?;
    csv.finish().map_err(as_store_error)
}

#[utoipa::path(
    get,
    path = "/api/v1/hosts/{id}",
    description = "One service: findings with their history, certificate, observations with the raw evidence (hostile text: escape it), messages.",
    params(("id" = i64, Path, description = "The service id")),
    responses((status = 200, description = "OK", body = HostDetail), BadParameter, Unauthenticated, NoSuchId)
)]
async fn host(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<HostDetail>, ApiError> {
    detail(&state, &id, Store::host).await
}

#[utoipa::path(
    get,
    path = "/api/v1/organisations",
    description = "Every organisation with its findings and messages counted.",
    params(SectorQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`", content(
            (Vec<OrganisationSummary> = "application/json"),
            (String = "text/csv")
        )),
        BadParameter,
        Unauthenticated,
    )
)]
async fn organisations(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    ApiQuery(query): ApiQuery<SectorQuery>,
) -> Result<Response, ApiError> {
    let sector = query.sector()?;
    list(&state, "organisations", &query.format, move |store| {
        store.organisation_summaries(sector.as_deref())
    })
    .await
}

#[utoipa::path(
    get,
    path = "/api/v1/organisations/{id}",
    description = "One organisation: networks, contacts, hosts, history, messages and their delivery, triage reports. `hosts`, `history` and `messages` hold at most 1000 each, of `hosts_total`, `history_total` and `messages_total`; `/api/v1/hosts?organisation={id}` lists every finding.",
    params(("id" = i64, Path, description = "The organisation id")),
    responses((status = 200, description = "OK", body = OrganisationDetail), BadParameter, Unauthenticated, NoSuchId)
)]
async fn organisation(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<OrganisationDetail>, ApiError> {
    detail(&state, &id, Store::organisation_detail).await
}

#[utoipa::path(
    get,
    path = "/api/v1/scans",
    description = "Scans, newest first.",
    params(FormatQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`", content(
            (Vec<ScanSummary> = "application/json"),
            (String = "text/csv")
        )),
        BadParameter,
        Unauthenticated,
    )
)]
async fn scans(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    ApiQuery(query): ApiQuery<FormatQuery>,
) -> Result<Response, ApiError> {
    list(&state, "scans", &query.format, Store::scan_summaries).await
}

#[utoipa::path(
    get,
    path = "/api/v1/scans/{id}",
    description = "One scan: parameters, progress while it runs, observations per status, and once it has ended the diff with the previous scan (`diff` is null while it runs; `diff_entries` counts the whole diff, of which `diff.entries` holds at most 1000).",
    params(("id" = i64, Path, description = "The scan id")),
    responses((status = 200, description = "OK", body = ScanDetail), BadParameter, Unauthenticated, NoSuchId)
)]
async fn scan(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<ScanDetail>, ApiError> {
    detail(&state, &id, Store::scan_detail).await
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns",
    description = "Campaigns, newest first, with their messages per state and the findings still open.",
    params(FormatQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`", content(
            (Vec<CampaignSummary> = "application/json"),
            (String = "text/csv")
        )),
        BadParameter,
        Unauthenticated,
    )
)]
async fn campaigns(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    ApiQuery(query): ApiQuery<FormatQuery>,
) -> Result<Response, ApiError> {
    list(
        &state,
        "campaigns",
        &query.format,
        Store::campaign_summaries,
    )
    .await
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}",
    description = "One campaign: its decisions, who was told when, who is still open (`still_open` holds at most 1000 of `still_open_total`; `/api/v1/hosts?campaign={id}&state=open` lists them all).",
    params(("id" = i64, Path, description = "The campaign id")),
    responses((status = 200, description = "OK", body = CampaignDetail), BadParameter, Unauthenticated, NoSuchId)
)]
async fn campaign(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<CampaignDetail>, ApiError> {
    detail(&state, &id, Store::campaign_detail).await
}

#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/messages",
    description = "The messages of one campaign with their delivery state.",
    params(
        ("id" = i64, Path, description = "The campaign id"),
        FormatQuery
    ),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`", content(
            (Vec<MessageView> = "application/json"),
            (String = "text/csv")
        )),
        BadParameter,
        Unauthenticated,
        NoSuchId,
    )
)]
async fn campaign_messages(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<FormatQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let csv = wants_csv(&query.format)?;
    let messages = state
        .pool
        .find(move |store| store.campaign_messages(id))
        .await?;
    list_response(&format!("campaign-{id}-messages"), messages, csv)
}

#[utoipa::path(
    get,
    path = "/api/v1/triage",
    description = "Imported triage reports, newest first.",
    params(FormatQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`", content(
            (Vec<TriageReportSummary> = "application/json"),
            (String = "text/csv")
        )),
        BadParameter,
        Unauthenticated,
    )
)]
async fn triage_reports(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    ApiQuery(query): ApiQuery<FormatQuery>,
) -> Result<Response, ApiError> {
    list(&state, "triage", &query.format, Store::triage_reports).await
}

#[utoipa::path(
    get,
    path = "/api/v1/triage/{id}",
    description = "One triage report with its whole JSON.",
    params(("id" = i64, Path, description = "The triage report id")),
    responses((status = 200, description = "OK", body = TriageReportDetail), BadParameter, Unauthenticated, NoSuchId)
)]
async fn triage_report(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<TriageReportDetail>, ApiError> {
    detail(&state, &id, Store::triage_report).await
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    description = "Who is asking, with what role and scope (and, for a session, its CSRF token).",
    responses((status = 200, description = "OK", body = Me), Unauthenticated)
)]
async fn me(ApiUser(user): ApiUser) -> Json<Me> {
    Json(Me {
        id: user.id,
        name: user.name,
        role: user.role.to_string(),
        token_scope: user.token_scope,
        csrf: user.csrf,
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/messages/{ticket}/retry",
    description = "Queues a held message again. Needs the analyst role and a `write` token (or a session with `X-CSRF-Token`).",
    params(("ticket" = String, Path, description = "The message's ticket")),
    responses((status = 200, description = "OK", body = MessageAction), Unauthenticated, NotAllowed, NoSuchId)
)]
async fn retry_message(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(ticket): Path<String>,
) -> Result<Json<MessageAction>, ApiError> {
    message_action(state, user, ticket, OutboxAction::Retry).await
}

#[utoipa::path(
    post,
    path = "/api/v1/messages/{ticket}/cancel",
    description = "Cancels a message not sent yet: its findings count as not told. Needs the analyst role and a `write` token (or a session with `X-CSRF-Token`).",
    params(("ticket" = String, Path, description = "The message's ticket")),
    responses((status = 200, description = "OK", body = MessageAction), Unauthenticated, NotAllowed, NoSuchId)
)]
async fn cancel_message(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(ticket): Path<String>,
) -> Result<Json<MessageAction>, ApiError> {
    message_action(state, user, ticket, OutboxAction::Cancel).await
}

/// Any message of the outbox, by its ticket.
async fn message_action(
    state: AppState,
    user: crate::auth::CurrentUser,
    ticket: String,
    action: OutboxAction,
) -> Result<Json<MessageAction>, ApiError> {
    let changed = action
        .apply(&state.pool, &user, ticket.clone(), |store, ticket| {
            Ok(store.message_campaign(ticket)?.is_some())
        })
        .await?;
    Ok(Json(MessageAction {
        ticket,
        action: action.as_str().into(),
        changed,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    description = "This document (no authentication needed).",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        openapi()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"the OpenAPI document: {e}\"}}"))
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.as_str(),
    )
        .into_response()
}

/// A list as JSON, or as a CSV download named `wachter-<name>.csv`.
fn list_response<R: CsvRow + Serialize>(
    name: &str,
    rows: Vec<R>,
    csv: bool,
) -> Result<Response, ApiError> {
    if !csv {
        return Ok(Json(rows).into_response());
    }
    let mut writer = CsvWriter::new(R::HEADER).map_err(WebError::Internal)?;
    for row in &rows {
        writer.row(row.cells()).map_err(WebError::Internal)?;
    }
    Ok(csv_response(
        name,
        writer.finish().map_err(WebError::Internal)?,
    ))
}

fn csv_response(name: &str, body: Vec<u8>) -> Response {
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"wachter-{name}.csv\""))
            .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// A CSV body: the header, then rows of neutralised cells.
struct CsvWriter(csv::Writer<Vec<u8>>);

impl CsvWriter {
    fn new(header: &[&str]) -> Result<CsvWriter, String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(header).map_err(|e| e.to_string())?;
        Ok(CsvWriter(writer))
    }

    fn row(&mut self, cells: Vec<String>) -> Result<(), String> {
        self.0
            .write_record(cells.iter().map(|c| csv_cell(c)))
            .map_err(|e| e.to_string())
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        self.0.into_inner().map_err(|e| e.to_string())
    }
}

/// A list row as CSV cells (raw; [`CsvWriter`] neutralises them).
trait CsvRow {
    const HEADER: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl CsvRow for HostRow {
    const HEADER: &'static [&'static str] = &[
        "finding_id",
        "service_id",
        "ip",
        "port",
        "hostname",
        "cve",
        "state",
        "basis",
        "first_seen",
        "last_seen",
        "organisation_id",
        "organisation",
        "sector",
        "last_notified",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.finding_id.to_string(),
            self.service_id.to_string(),
            self.ip.clone(),
            self.port.to_string(),
            self.hostname.clone(),
            self.cve.clone(),
            self.state.clone(),
            self.basis.clone(),
            self.first_seen.clone(),
            self.last_seen.clone(),
            opt(&self.organisation_id),
            opt(&self.organisation),
            opt(&self.sector),
            opt(&self.last_notified),
        ]
    }
}

impl CsvRow for OrganisationSummary {
    const HEADER: &'static [&'static str] = &[
        "id",
        "name",
        "sector",
        "tlp",
        "services",
        "vulnerable",
        "mitigated",
        "patched",
        "other",
        "messages_sent",
        "messages_waiting",
        "messages_failed",
        "last_told",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.name.clone(),
            opt(&self.sector),
            opt(&self.tlp),
            self.services.to_string(),
            self.vulnerable.to_string(),
            self.mitigated.to_string(),
            self.patched.to_string(),
            self.other.to_string(),
            self.messages_sent.to_string(),
            self.messages_waiting.to_string(),
            self.messages_failed.to_string(),
            opt(&self.last_told),
        ]
    }
}

impl CsvRow for ScanSummary {
    const HEADER: &'static [&'static str] = &[
        "id",
        "started_at",
        "finished_at",
        "state",
        "observations",
        "ports",
        "check",
        "shard",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.started_at.clone(),
            opt(&self.finished_at),
            self.state.clone(),
            self.observations.to_string(),
            self.ports.clone(),
            self.check.clone(),
            self.shard.clone(),
        ]
    }
}

impl CsvRow for CampaignSummary {
    const HEADER: &'static [&'static str] = &[
        "id",
        "name",
        "cve",
        "created_at",
        "tlp",
        "language",
        "messages",
        "findings_told",
        "still_open",
    ];

    fn cells(&self) -> Vec<String> {
        let messages: Vec<String> = self
            .messages
            .iter()
            .map(|(state, count)| format!("{state}:{count}"))
            .collect();
        vec![
            self.id.to_string(),
            self.name.clone(),
            self.cve.clone(),
            self.created_at.clone(),
            self.tlp.clone(),
            self.language.clone(),
            messages.join(" "),
            self.findings_told.to_string(),
            self.still_open.to_string(),
        ]
    }
}

impl CsvRow for MessageView {
    const HEADER: &'static [&'static str] = &[
        "ticket",
        "campaign_id",
        "organisation_id",
        "recipient_name",
        "recipients",
        "subject",
        "state",
        "attempts",
        "created_at",
        "sent_at",
        "last_error",
        "smtp_response",
        "findings",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.ticket.clone(),
            self.campaign_id.to_string(),
            opt(&self.organisation_id),
            self.recipient_name.clone(),
            self.recipients.join("; "),
            self.subject.clone(),
            self.state.clone(),
            self.attempts.to_string(),
            self.created_at.clone(),
            opt(&self.sent_at),
            opt(&self.last_error),
            opt(&self.smtp_response),
            self.findings.to_string(),
        ]
    }
}

impl CsvRow for TriageReportSummary {
    const HEADER: &'static [&'static str] = &[
        "id",
        "imported_at",
        "label",
        "organisation_id",
        "organisation",
        "service_id",
        "verdict",
        "hits",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.imported_at.clone(),
            self.label.clone(),
            opt(&self.organisation_id),
            opt(&self.organisation),
            opt(&self.service_id),
            self.verdict.clone(),
            self.hits.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document_and_nothing_else() {
        let document = serde_json::to_value(openapi()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                    .map(|method| (method.clone(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut routed: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(method, path, _)| (method.to_string(), format!("{PREFIX}{path}")))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(routed, documented);
        let schemes = &document["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["cookie"]["in"], "cookie");
        assert_eq!(schemes["cookie"]["name"], "wachter_session");
        assert_eq!(
            paths["/api/v1/openapi.json"]["get"]["security"],
            serde_json::json!([{}])
        );
    }

    #[test]
    fn every_route_with_an_id_documents_a_malformed_and_a_missing_one() {
        let document = serde_json::to_value(openapi()).unwrap();
        let mut checked = 0;
        for (method, path, _) in ROUTES {
            if !path.contains("{id}") {
                continue;
            }
            let responses = &document["paths"][format!("{PREFIX}{path}")][method]["responses"];
            for status in ["400", "401", "404"] {
                assert!(
                    responses[status]["description"].is_string(),
                    "{method} {path}: {status}"
                );
            }
            checked += 1;
        }
        assert_eq!(
            checked, 6,
            "hosts, organisations, scans, campaigns (and messages), triage"
        );
    }

    #[test]
    fn ids_are_positive_numbers() {
        assert_eq!(parse_id("7").unwrap(), 7);
        for bad in ["0", "-3", "x", "1.5", ""] {
            assert!(
                matches!(parse_id(bad), Err(WebError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
