//! Read models for the dashboard and the JSON API: what a page or an API response shows,
//! read in a few bounded queries. Every list is paged (or capped) so a store with a million
//! observations answers in milliseconds, and every filter is a bound parameter.

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use serde::Serialize;

use crate::db::{ColumnError, Row, Value, multi_row, vals};
use crate::notify::{self, MESSAGE_COLUMNS};
use crate::report::{self, TrendPoint};
use crate::{Store, StoreError};

/// The most rows one page of a list holds.
pub const MAX_PAGE: u64 = 1000;

/// Which findings a list shows. Every field narrows; `None` means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindingFilter {
    pub cve: Option<String>,
    /// A finding state (`vulnerable`, `mitigated`, `patched`, `unknown`, …), or `open`
    /// for vulnerable and mitigated together.
    pub state: Option<String>,
    /// An organisation id.
    pub organisation: Option<i64>,
    /// A sector, compared case-insensitively.
    pub sector: Option<String>,
    /// The service address lies in this network.
    pub network: Option<IpNet>,
    /// Last seen at or after this UTC timestamp (the store's `stamp::utc` text).
    pub seen_since: Option<String>,
    /// Last seen before this UTC timestamp.
    pub seen_until: Option<String>,
    /// Told by this campaign: a message of the campaign named the finding (cancelled
    /// messages told nobody).
    pub campaign: Option<i64>,
}

/// A slice of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    /// At most [`MAX_PAGE`]; larger values are clamped.
    pub limit: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: 100,
        }
    }
}

/// One page of a list and how many rows the whole list has.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Paged<T> {
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub items: Vec<T>,
}

/// How many findings of one CVE are in one state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateCount {
    pub cve: String,
    pub state: String,
    pub count: u64,
}

/// Store-wide totals for the overview's headline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    pub services: u64,
    pub findings: u64,
    /// Findings vulnerable or mitigated.
    pub open: u64,
    pub organisations: u64,
    /// Organisations owning at least one open finding.
    pub organisations_open: u64,
    pub scans: u64,
    pub messages_sent: u64,
    /// Messages queued, being sent or held.
    pub messages_waiting: u64,
    pub triage_reports: u64,
}

/// One finding on one service, as lists show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostRow {
    pub finding_id: i64,
    pub service_id: i64,
    pub ip: String,
    pub port: u16,
    /// `""` when the target had no name.
    pub hostname: String,
    pub cve: String,
    pub state: String,
    /// How the state was decided (`probe`, `version`, …).
    pub basis: String,
    pub first_seen: String,
    pub last_seen: String,
    pub organisation_id: Option<i64>,
    pub organisation: Option<String>,
    pub sector: Option<String>,
    /// When a message about this finding was last sent, if ever.
    pub last_notified: Option<String>,
}

/// What the overview page shows.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    pub totals: Totals,
    /// Findings per CVE and state, sorted by CVE then state.
    pub counts: Vec<StateCount>,
    /// Per CVE, one point per finished scan (oldest first). A running scan has none: its
    /// live progress is on the scans page, and the overview stays a read of kept rows.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub trend: BTreeMap<String, Vec<TrendPoint>>,
    /// The newest findings first (by first seen), at most 20.
    pub newest: Vec<HostRow>,
}

/// An organisation with its findings counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrganisationSummary {
    pub id: i64,
    pub name: String,
    pub sector: Option<String>,
    pub tlp: Option<String>,
    /// Services attributed to it.
    pub services: u64,
    pub vulnerable: u64,
    pub mitigated: u64,
    pub patched: u64,
    /// Findings in any other state.
    pub other: u64,
    pub messages_sent: u64,
    pub messages_waiting: u64,
    /// Messages held after a permanent failure or cancelled.
    pub messages_failed: u64,
    pub last_told: Option<String>,
}

/// A contact as the organisation page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactView {
    pub email: String,
    pub role: String,
    pub language: Option<String>,
    pub name: Option<String>,
}

/// One state change of a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    pub finding_id: i64,
    pub scan_id: i64,
    pub at: String,
    pub ip: String,
    pub port: u16,
    pub cve: String,
    pub from_state: Option<String>,
    pub to_state: String,
}

/// A message as lists show it (without its bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageView {
    pub ticket: String,
    pub campaign_id: i64,
    pub organisation_id: Option<i64>,
    pub recipient_name: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
    pub smtp_response: Option<String>,
    /// Findings the message told.
    pub findings: u64,
}

/// The organisation page.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrganisationDetail {
    pub summary: OrganisationSummary,
    pub networks: Vec<String>,
    pub domains: Vec<String>,
    pub contacts: Vec<ContactView>,
    pub notes: Option<String>,
    /// Its findings (every state), by address; at most [`MAX_PAGE`] (the host list
    /// filtered by organisation has them all).
    pub hosts: Vec<HostRow>,
    /// How many findings it has in all (more than `hosts` holds when capped).
    pub hosts_total: u64,
    /// State changes of its findings, newest first; at most [`MAX_PAGE`].
    pub history: Vec<HistoryEntry>,
    /// How many state changes its findings have in all.
    pub history_total: u64,
    /// Messages to it, newest first; at most [`MAX_PAGE`].
    pub messages: Vec<MessageView>,
    /// How many messages went to it in all.
    pub messages_total: u64,
    pub triage_reports: Vec<TriageReportSummary>,
}

/// A certificate as the host page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificateView {
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub not_after: Option<String>,
    pub sans: Vec<String>,
}

/// One observation of a service, with its evidence. Text taken from the scanned server is
/// hostile: whoever shows it escapes it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObservationView {
    pub id: i64,
    pub scan_id: i64,
    pub observed_at: String,
    pub status: String,
    pub protocol: Option<String>,
    /// The whole record as the scanner wrote it (`wachter.service/1`).
    pub record: serde_json::Value,
}

/// A finding of a service with its state history.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingView {
    pub id: i64,
    pub cve: String,
    pub state: String,
    pub basis: String,
    /// The check's explanation (JSON text as stored).
    pub detail: String,
    pub first_seen: String,
    pub last_seen: String,
    /// Oldest first.
    pub history: Vec<HistoryEntry>,
}

/// The host page: one service.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostDetail {
    pub service_id: i64,
    pub ip: String,
    pub port: u16,
    pub hostname: String,
    pub organisation_id: Option<i64>,
    pub organisation: Option<String>,
    pub sector: Option<String>,
    /// How the owner was found (`network`, `certificate`, …, `none`), if attributed.
    pub attribution: Option<String>,
    pub findings: Vec<FindingView>,
    /// The newest certificate seen on the service.
    pub certificate: Option<CertificateView>,
    /// Newest first; at most 20.
    pub observations: Vec<ObservationView>,
    /// Messages that told any of its findings, newest first.
    pub messages: Vec<MessageView>,
}

/// A scan as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanSummary {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `finished` or `interrupted`.
    pub state: String,
    /// Observations stored so far (live while the scan runs).
    pub observations: u64,
    pub ports: String,
    pub check: String,
    pub shard: String,
}

/// The scan page.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanDetail {
    pub scan: ScanSummary,
    pub seed: u64,
    pub scope: String,
    /// The parameters as recorded (JSON).
    pub params: serde_json::Value,
    /// The summary written when the scan ended (JSON), if it did.
    pub summary: Option<serde_json::Value>,
    /// Observations per status (`open`, `closed`, …) so far.
    pub statuses: BTreeMap<String, u64>,
    /// The checkpoint (targets done of total) while running or after an interruption.
    pub checkpoint: Option<serde_json::Value>,
    /// The previous scan, which the diff compares against.
    pub previous: Option<i64>,
    /// What changed since the previous scan (capped at [`MAX_PAGE`] entries; `counts` is
    /// whole). `None` while the scan runs: the page polls this every two seconds for the
    /// progress, and a diff against a half-done scan says little.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub diff: Option<crate::report::Diff>,
    /// How many entries the whole diff has (more than `diff.entries` holds when capped);
    /// 0 without a diff.
    pub diff_entries: u64,
}

/// A campaign as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignSummary {
    pub id: i64,
    pub name: String,
    pub cve: String,
    pub created_at: String,
    pub tlp: String,
    pub language: String,
    /// Messages per state.
    pub messages: BTreeMap<String, u64>,
    /// Findings its messages told.
    pub findings_told: u64,
    /// Of those, still vulnerable or mitigated now.
    pub still_open: u64,
}

/// The campaign page: who was told when, who is still open.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignDetail {
    pub summary: CampaignSummary,
    /// The plan's decisions as kept with the campaign (JSON).
    pub decisions: serde_json::Value,
    pub messages: Vec<MessageView>,
    /// Findings told by this campaign that are still open, by address; at most
    /// [`MAX_PAGE`] (the host list filtered by campaign and state `open` has them all).
    pub still_open: Vec<HostRow>,
    /// How many findings told by this campaign are still open in all.
    pub still_open_total: u64,
}

/// A triage report as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriageReportSummary {
    pub id: i64,
    pub imported_at: String,
    pub label: String,
    pub organisation_id: Option<i64>,
    pub organisation: Option<String>,
    pub service_id: Option<i64>,
    pub verdict: String,
    pub hits: u64,
}

/// A triage report with its whole JSON (`wachter triage --json`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriageReportDetail {
    pub summary: TriageReportSummary,
    pub report: serde_json::Value,
}

/// A triage report to keep.
#[derive(Clone, Debug)]
pub struct NewTriageReport {
    pub label: String,
    pub organisation_id: Option<i64>,
    pub service_id: Option<i64>,
    pub verdict: String,
    pub hits: u64,
    /// The report as `wachter triage --json` printed it.
    pub report: serde_json::Value,
}

/// Findings with their service, owner and when they were last told, for pages of host
/// rows: joined to a list of finding ids (`k.column1`), one chunk of ids at a time.
const HOST_ROWS: &str = "SELECT f.id, s.id, s.ip, s.port, s.hostname, f.cve, f.state, f.basis, f.first_seen, f.last_seen, \
     a.organisation_id, o.name, o.sector, \
     (SELECT MAX(m.sent_at) FROM notifications n JOIN messages m ON m.id = n.message_id WHERE n.finding_id = f.id AND m.state = 'sent') \
     FROM (VALUES {values}) AS k CROSS JOIN findings f JOIN services s ON s.id = f.service_id \
     LEFT JOIN attributions a ON a.service_id = f.service_id LEFT JOIN organisations o ON o.id = a.organisation_id \
     WHERE f.id = k.column1";

/// The order of every host list: by address, port, name, then CVE (a total order: a
/// service is unique by the first three, a finding by service and CVE).
const HOST_ORDER: &str = "ORDER BY s.ip, s.port, s.hostname, f.cve";

/// Finding states that still need action.
const OPEN_STATES: &str = "('vulnerable', 'mitigated')";

/// A triage report as listed; `t` is `triage_reports`.
const TRIAGE_COLUMNS: &str =
    "t.id, t.imported_at, t.label, t.organisation_id, o.name, t.service_id, t.verdict, t.hits";
const TRIAGE_FROM: &str =
    "FROM triage_reports t LEFT JOIN organisations o ON o.id = t.organisation_id";

/// A state change with its finding's address; `h`, `f`, `s` are history, finding, service.
const HISTORY_COLUMNS: &str =
    "h.finding_id, h.scan_id, h.at, s.ip, s.port, f.cve, h.from_state, h.to_state";

/// Observations the host page shows.
const HOST_OBSERVATIONS: i64 = 20;

/// Findings the overview lists as newest.
const NEWEST: i64 = 20;

/// The `trend_points` row kept for a finished scan as of which no finding existed yet: it
/// says "computed, nothing to show", so the overview does not compute it again.
const NO_CVE: &str = "";

/// What a [`FindingFilter`] becomes: WHERE fragments over `findings f` (and `services s`,
/// `attributions a` where a fragment reads them), each with its own numbered placeholders
/// and bound values. Fragments are fixed text; no value is ever part of the SQL.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<Value>,
    /// A fragment reads `services s`.
    services: bool,
    /// A fragment reads `attributions a`.
    attributions: bool,
    /// The exact network test, made in Rust on each row: addresses are text in the store,
    /// and no portable SQL compares them as numbers.
    network: Option<IpNet>,
    /// Nothing can match (a sector no organisation has).
    nothing: bool,
}

impl Conditions {
    /// The next placeholder, bound to `value`.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        format!("?{}", self.params.len())
    }

    /// `FROM … WHERE …` over `findings f` and what the fragments read (`services s` also
    /// when `services`). An owner filter starts from the owner's attributions (SQLite keeps
    /// the left side of a CROSS JOIN outside): an organisation's few services, not every
    /// open finding, whatever the planner would guess without statistics.
    fn tables_and_clauses(&self, services: bool) -> String {
        let mut sql = String::from(if self.attributions {
            " FROM attributions a CROSS JOIN findings f"
        } else {
            " FROM findings f"
        });
        if services || self.services {
            sql.push_str(" JOIN services s ON s.id = f.service_id");
        }
        let mut clauses: Vec<&str> = Vec::with_capacity(self.clauses.len() + 1);
        if self.attributions {
            clauses.push("f.service_id = a.service_id");
        }
        clauses.extend(self.clauses.iter().map(String::as_str));
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql
    }
}

/// `text` without surrounding blanks, `None` when nothing is left (an empty form field).
fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// A text every address of `net` starts with, as the store writes addresses (Rust's
/// canonical form): whole leading octets of IPv4 (`10.1.`), or leading non-zero hextets of
/// IPv6 (`2001:db8:`; a zero hextet may be folded into `::`). Empty when nothing is
/// common. It only narrows the rows read; the exact test is [`IpNet::contains`].
fn text_prefix(net: &IpNet) -> String {
    match net {
        IpNet::V4(net) => {
            let whole = usize::from(net.prefix_len() / 8).min(3);
            net.network().octets()[..whole]
                .iter()
                .map(|octet| format!("{octet}."))
                .collect()
        }
        IpNet::V6(net) => {
            let whole = usize::from(net.prefix_len() / 16).min(7);
            net.network().segments()[..whole]
                .iter()
                .take_while(|segment| **segment != 0)
                .map(|segment| format!("{segment:x}:"))
                .collect()
        }
    }
}

/// The `count` ids from `offset` on.
fn page_of(ids: &[i64], offset: u64, count: u64) -> Vec<i64> {
    ids.iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .copied()
        .collect()
}

/// A test of an id for one row (`= ?1`, bound to it) or for all (`IS NOT NULL`).
fn one_or_all(only: Option<i64>) -> (&'static str, Vec<Value>) {
    match only {
        Some(id) => ("= ?1", vals![id]),
        None => ("IS NOT NULL", vals![]),
    }
}

/// Whether the address text `ip` lies in `net` (text that is no address never does).
fn in_network(net: &IpNet, ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|addr| net.contains(&addr))
}

/// Stored JSON, or the text itself as a JSON string when it is not JSON (a foreign or
/// damaged row must not fail the page that shows it).
fn json_or_text(text: String) -> serde_json::Value {
    match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(_) => serde_json::Value::String(text),
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn port(value: i64) -> u16 {
    u16::try_from(value).unwrap_or(0)
}

/// A page bound as SQL wants it.
fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn host_row(r: &Row) -> Result<HostRow, ColumnError> {
    Ok(HostRow {
        finding_id: r.int(0)?,
        service_id: r.int(1)?,
        ip: r.text(2)?,
        port: port(r.int(3)?),
        hostname: r.text(4)?,
        cve: r.text(5)?,
        state: r.text(6)?,
        basis: r.text(7)?,
        first_seen: r.text(8)?,
        last_seen: r.text(9)?,
        organisation_id: r.opt_int(10)?,
        organisation: r.opt_text(11)?,
        sector: r.opt_text(12)?,
        last_notified: r.opt_text(13)?,
    })
}

fn history_entry(r: &Row) -> Result<HistoryEntry, ColumnError> {
    Ok(HistoryEntry {
        finding_id: r.int(0)?,
        scan_id: r.int(1)?,
        at: r.text(2)?,
        ip: r.text(3)?,
        port: port(r.int(4)?),
        cve: r.text(5)?,
        from_state: r.opt_text(6)?,
        to_state: r.text(7)?,
    })
}

/// A message as lists show it: read as the outbox reads it ([`notify::message_row`]).
fn message_view(r: &Row) -> Result<MessageView, ColumnError> {
    let (m, organisation_id) = notify::message_row(r)?;
    Ok(MessageView {
        ticket: m.ticket,
        campaign_id: m.campaign_id,
        organisation_id,
        recipient_name: m.recipient_name,
        recipients: m.recipients,
        subject: m.subject,
        state: m.state,
        attempts: m.attempts,
        created_at: m.created_at,
        sent_at: m.sent_at,
        last_error: m.last_error,
        smtp_response: m.smtp_response,
        findings: count(m.findings),
    })
}

fn triage_summary(r: &Row) -> Result<TriageReportSummary, ColumnError> {
    Ok(TriageReportSummary {
        id: r.int(0)?,
        imported_at: r.text(1)?,
        label: r.text(2)?,
        organisation_id: r.opt_int(3)?,
        organisation: r.opt_text(4)?,
        service_id: r.opt_int(5)?,
        verdict: r.text(6)?,
        hits: count(r.int(7)?),
    })
}

/// Trend points a handle computed but could not keep (a store it may only read), by
/// store location, scan and the scan's end (a scan resumed and finished again is another
/// key): held for the life of the process so each is computed once.
type UnkeptTrends = BTreeMap<(String, i64, String), BTreeMap<String, TrendPoint>>;

fn unkept_trends() -> std::sync::MutexGuard<'static, UnkeptTrends> {
    static UNKEPT: std::sync::Mutex<UnkeptTrends> = std::sync::Mutex::new(BTreeMap::new());
    // The map is only read and replaced whole per key: a panic elsewhere leaves it valid.
    UNKEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One scan's standing per CVE, as [`report::trend`] counts it.
struct ScanTrend {
    started_at: String,
    points: BTreeMap<String, TrendPoint>,
}

impl Store {
    /// Totals, counts per CVE and state, the trend of finished scans (from `trend_points`,
    /// filled once for any finished scan that lacks them; a running scan has no point),
    /// and the newest findings. Reads no observations except for that one-time fill.
    pub fn overview(&self) -> Result<Overview, StoreError> {
        let col = self.column();
        let counts: Vec<StateCount> = self
            .finding_counts()?
            .into_iter()
            .map(|(cve, state, n)| StateCount {
                cve,
                state,
                count: count(n),
            })
            .collect();
        let row = self.db.query_one(
            &format!(
                "SELECT (SELECT count(*) FROM services), (SELECT count(*) FROM organisations), \
                 (SELECT count(DISTINCT a.organisation_id) FROM findings f JOIN attributions a ON a.service_id = f.service_id \
                   WHERE f.state IN {OPEN_STATES}), \
                 (SELECT count(*) FROM scans), \
                 (SELECT count(*) FROM messages WHERE state = 'sent'), \
                 (SELECT count(*) FROM messages WHERE state IN ('queued', 'sending', 'held')), \
                 (SELECT count(*) FROM triage_reports)"
            ),
            vals![],
        )?;
        let mut totals = match row {
            Some(r) => Totals {
                services: count(r.int(0).map_err(&col)?),
                organisations: count(r.int(1).map_err(&col)?),
                organisations_open: count(r.int(2).map_err(&col)?),
                scans: count(r.int(3).map_err(&col)?),
                messages_sent: count(r.int(4).map_err(&col)?),
                messages_waiting: count(r.int(5).map_err(&col)?),
                triage_reports: count(r.int(6).map_err(&col)?),
                ..Totals::default()
            },
            None => Totals::default(),
        };
        totals.findings = counts.iter().map(|c| c.count).sum();
        totals.open = counts
            .iter()
            .filter(|c| report::is_open(&c.state))
            .map(|c| c.count)
            .sum();
        let newest_ids = self.read_rows(
            "SELECT f.id FROM findings f ORDER BY f.first_seen DESC, f.id DESC LIMIT ?1",
            vals![NEWEST],
            |r| r.int(0),
        )?;
        Ok(Overview {
            totals,
            counts,
            trend: self.trend_for_overview()?,
            newest: self.host_rows(&newest_ids)?,
        })
    }

    /// One page of findings matching `filter`, by address then port then CVE, and the
    /// count of all that match.
    pub fn hosts(&self, filter: &FindingFilter, page: Page) -> Result<Paged<HostRow>, StoreError> {
        let limit = page.limit.min(MAX_PAGE);
        let conditions = self.conditions(filter)?;
        let (total, ids) = if conditions.nothing {
            (0, Vec::new())
        } else if conditions.network.is_some() {
            // Every candidate's id and address, filtered here; only the page is read whole.
            let all = self.ordered_ids(&conditions, None)?;
            (all.len() as u64, page_of(&all, page.offset, limit))
        } else {
            let total = self.count_matching(&conditions)?;
            let ids = if limit == 0 || page.offset >= total {
                Vec::new()
            } else {
                self.ordered_ids(&conditions, Some((page.offset, limit)))?
            };
            (total, ids)
        };
        Ok(Paged {
            total,
            offset: page.offset,
            limit,
            items: self.host_rows(&ids)?,
        })
    }

    /// Every finding matching `filter`, in the order of [`Store::hosts`], one at a time
    /// (for CSV downloads of any size): only the ids are held, the rows are read a chunk
    /// at a time and handed to `visit`.
    pub fn each_host(
        &self,
        filter: &FindingFilter,
        mut visit: impl FnMut(HostRow) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let conditions = self.conditions(filter)?;
        if conditions.nothing {
            return Ok(0);
        }
        // Only the ids are held; rows are read a chunk at a time.
        let ids = self.ordered_ids(&conditions, None)?;
        let mut visited = 0;
        for chunk in ids.chunks(crate::db::CHUNK) {
            for row in self.host_rows(chunk)? {
                visit(row)?;
                visited += 1;
            }
        }
        Ok(visited)
    }

    /// One service with its findings, history, certificate, observations and messages.
    pub fn host(&self, service_id: i64) -> Result<Option<HostDetail>, StoreError> {
        let col = self.column();
        let Some(r) = self.db.query_one(
            "SELECT s.id, s.ip, s.port, s.hostname, a.organisation_id, o.name, o.sector, a.method FROM services s \
             LEFT JOIN attributions a ON a.service_id = s.id LEFT JOIN organisations o ON o.id = a.organisation_id \
             WHERE s.id = ?1",
            vals![service_id],
        )?
        else {
            return Ok(None);
        };
        let (ip, service_port, hostname) = (
            r.text(1).map_err(&col)?,
            port(r.int(2).map_err(&col)?),
            r.text(3).map_err(&col)?,
        );
        let mut detail = HostDetail {
            service_id,
            ip,
            port: service_port,
            hostname,
            organisation_id: r.opt_int(4).map_err(&col)?,
            organisation: r.opt_text(5).map_err(&col)?,
            sector: r.opt_text(6).map_err(&col)?,
            attribution: r.opt_text(7).map_err(&col)?,
            findings: Vec::new(),
            certificate: None,
            observations: Vec::new(),
            messages: Vec::new(),
        };

        let mut history: BTreeMap<i64, Vec<HistoryEntry>> = BTreeMap::new();
        for r in self.db.query(
            &format!(
                "SELECT {HISTORY_COLUMNS} FROM finding_history h JOIN findings f ON f.id = h.finding_id \
                 JOIN services s ON s.id = f.service_id WHERE f.service_id = ?1 ORDER BY h.scan_id, h.id"
            ),
            vals![service_id],
        )? {
            let entry = history_entry(&r).map_err(&col)?;
            history.entry(entry.finding_id).or_default().push(entry);
        }
        for r in self.db.query(
            "SELECT id, cve, state, basis, detail, first_seen, last_seen FROM findings WHERE service_id = ?1 ORDER BY cve",
            vals![service_id],
        )? {
            let id = r.int(0).map_err(&col)?;
            detail.findings.push(FindingView {
                id,
                cve: r.text(1).map_err(&col)?,
                state: r.text(2).map_err(&col)?,
                basis: r.text(3).map_err(&col)?,
                detail: r.text(4).map_err(&col)?,
                first_seen: r.text(5).map_err(&col)?,
                last_seen: r.text(6).map_err(&col)?,
                history: history.remove(&id).unwrap_or_default(),
            });
        }

        if let Some(r) = self.db.query_one(
            "SELECT c.sha256, c.subject, c.issuer, c.not_after, c.sans FROM certificates c \
             WHERE c.sha256 = (SELECT o.cert_sha256 FROM observations o WHERE o.service_id = ?1 AND o.cert_sha256 IS NOT NULL ORDER BY o.id DESC LIMIT 1)",
            vals![service_id],
        )? {
            detail.certificate = Some(CertificateView {
                sha256: r.text(0).map_err(&col)?,
                subject: r.text(1).map_err(&col)?,
                issuer: r.text(2).map_err(&col)?,
                not_after: r.opt_text(3).map_err(&col)?,
                sans: serde_json::from_str(&r.text(4).map_err(&col)?).unwrap_or_default(),
            });
        }

        for r in self.db.query(
            "SELECT id, scan_id, observed_at, status, protocol, record FROM observations WHERE service_id = ?1 ORDER BY id DESC LIMIT ?2",
            vals![service_id, HOST_OBSERVATIONS],
        )? {
            detail.observations.push(ObservationView {
                id: r.int(0).map_err(&col)?,
                scan_id: r.int(1).map_err(&col)?,
                observed_at: r.text(2).map_err(&col)?,
                status: r.text(3).map_err(&col)?,
                protocol: r.opt_text(4).map_err(&col)?,
                record: json_or_text(r.text(5).map_err(&col)?),
            });
        }

        detail.messages = self.messages_where(
            "m.id IN (SELECT n.message_id FROM notifications n JOIN findings f ON f.id = n.finding_id WHERE f.service_id = ?1) ORDER BY m.id DESC",
            vals![service_id],
        )?;
        Ok(Some(detail))
    }

    /// Every organisation with its findings counted, by name. `sector` (compared like
    /// names, case folded) narrows.
    pub fn organisation_summaries(
        &self,
        sector: Option<&str>,
    ) -> Result<Vec<OrganisationSummary>, StoreError> {
        let wanted = sector
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(crate::same_name);
        Ok(self
            .organisation_rows(None)?
            .into_iter()
            .map(|(summary, _)| summary)
            .filter(|o| match &wanted {
                Some(wanted) => o
                    .sector
                    .as_deref()
                    .is_some_and(|s| crate::same_name(s) == *wanted),
                None => true,
            })
            .collect())
    }

    pub fn organisation_detail(&self, id: i64) -> Result<Option<OrganisationDetail>, StoreError> {
        let Some((summary, notes)) = self.organisation_rows(Some(id))?.into_iter().next() else {
            return Ok(None);
        };
        let texts = |sql: &str| self.read_rows(sql, vals![id], |r| r.text(0));
        let networks =
            texts("SELECT network FROM org_networks WHERE organisation_id = ?1 ORDER BY network")?;
        let domains =
            texts("SELECT domain FROM org_domains WHERE organisation_id = ?1 ORDER BY domain")?;
        let contacts = self.read_rows(
            "SELECT email, role, language, name FROM contacts WHERE organisation_id = ?1 ORDER BY id",
            vals![id],
            |r| {
                Ok(ContactView {
                    email: r.text(0)?,
                    role: r.text(1)?,
                    language: r.opt_text(2)?,
                    name: r.opt_text(3)?,
                })
            },
        )?;
        let hosts = self.hosts(
            &FindingFilter {
                organisation: Some(id),
                ..FindingFilter::default()
            },
            Page {
                offset: 0,
                limit: MAX_PAGE,
            },
        )?;
        let totals = self.db.query_one(
            "SELECT (SELECT count(*) FROM finding_history h JOIN findings f ON f.id = h.finding_id \
               JOIN attributions a ON a.service_id = f.service_id WHERE a.organisation_id = ?1), \
             (SELECT count(*) FROM messages m WHERE m.organisation_id = ?1)",
            vals![id],
        )?;
        let (history_total, messages_total) = match totals {
            Some(r) => {
                let col = self.column();
                (
                    count(r.int(0).map_err(&col)?),
                    count(r.int(1).map_err(&col)?),
                )
            }
            None => (0, 0),
        };
        let history = self.read_rows(
            &format!(
                "SELECT {HISTORY_COLUMNS} FROM finding_history h JOIN findings f ON f.id = h.finding_id \
                 JOIN services s ON s.id = f.service_id JOIN attributions a ON a.service_id = f.service_id \
                 WHERE a.organisation_id = ?1 ORDER BY h.scan_id DESC, h.id DESC LIMIT ?2"
            ),
            vals![id, sql_int(MAX_PAGE)],
            history_entry,
        )?;
        let messages = self.messages_where(
            "m.organisation_id = ?1 ORDER BY m.id DESC LIMIT ?2",
            vals![id, sql_int(MAX_PAGE)],
        )?;
        let triage_reports = self.read_rows(
            &format!("SELECT {TRIAGE_COLUMNS} {TRIAGE_FROM} WHERE t.organisation_id = ?1 ORDER BY t.id DESC"),
            vals![id],
            triage_summary,
        )?;
        Ok(Some(OrganisationDetail {
            summary,
            networks,
            domains,
            contacts,
            notes,
            hosts_total: hosts.total,
            hosts: hosts.items,
            history,
            history_total,
            messages,
            messages_total,
            triage_reports,
        }))
    }

    /// Scans, newest first.
    pub fn scan_summaries(&self) -> Result<Vec<ScanSummary>, StoreError> {
        self.read_rows(
            "SELECT id, started_at, finished_at, state, \
             CASE WHEN state = 'running' THEN (SELECT count(*) FROM observations o WHERE o.scan_id = scans.id) ELSE services END, \
             ports, check_name, shard FROM scans ORDER BY id DESC",
            vals![],
            scan_summary,
        )
    }

    /// One scan with its parameters, observations per status and, once it has ended, the
    /// diff with the previous scan (left out while it runs: see [`ScanDetail::diff`]).
    pub fn scan_detail(&self, id: i64) -> Result<Option<ScanDetail>, StoreError> {
        let col = self.column();
        let Some(r) = self.db.query_one(
            "SELECT id, started_at, finished_at, state, services, ports, check_name, shard, seed, scope, params, summary, checkpoint \
             FROM scans WHERE id = ?1",
            vals![id],
        )?
        else {
            return Ok(None);
        };
        let mut scan = scan_summary(&r).map_err(&col)?;
        let seed = r.int(8).map_err(&col)? as u64;
        let scope = r.text(9).map_err(&col)?;
        let params = json_or_text(r.text(10).map_err(&col)?);
        let summary = r.opt_text(11).map_err(&col)?.map(json_or_text);
        let checkpoint = r.opt_text(12).map_err(&col)?.map(json_or_text);
        let mut statuses = BTreeMap::new();
        for r in self.db.query(
            "SELECT status, count(*) FROM observations WHERE scan_id = ?1 GROUP BY status",
            vals![id],
        )? {
            statuses.insert(r.text(0).map_err(&col)?, count(r.int(1).map_err(&col)?));
        }
        if scan.state == "running" {
            scan.observations = statuses.values().sum();
        }
        let previous = match self
            .db
            .query_one("SELECT MAX(id) FROM scans WHERE id < ?1", vals![id])?
        {
            Some(r) => r.opt_int(0).map_err(&col)?,
            None => None,
        };
        let (diff, diff_entries) = match previous {
            Some(previous) if scan.state != "running" => {
                let mut diff = report::diff(self, previous, id, None)?;
                let entries = diff.entries.len() as u64;
                diff.entries
                    .truncate(usize::try_from(MAX_PAGE).unwrap_or(usize::MAX));
                (Some(diff), entries)
            }
            _ => (None, 0),
        };
        Ok(Some(ScanDetail {
            scan,
            seed,
            scope,
            params,
            summary,
            statuses,
            checkpoint,
            previous,
            diff,
            diff_entries,
        }))
    }

    /// Campaigns, newest first.
    pub fn campaign_summaries(&self) -> Result<Vec<CampaignSummary>, StoreError> {
        Ok(self
            .campaign_rows(None, true)?
            .into_iter()
            .map(|(summary, _)| summary)
            .collect())
    }

    /// The campaign a message belongs to, by its ticket; `None` for an unknown ticket. A
    /// small lookup for checking a ticket against a campaign before acting on it.
    pub fn message_campaign(&self, ticket: &str) -> Result<Option<i64>, StoreError> {
        let col = self.column();
        match self.db.query_one(
            "SELECT campaign_id FROM messages WHERE ticket = ?1",
            vals![ticket],
        )? {
            Some(r) => Ok(Some(r.int(0).map_err(&col)?)),
            None => Ok(None),
        }
    }

    /// A campaign's messages in the order they were queued; `None` for an unknown campaign.
    pub fn campaign_messages(&self, id: i64) -> Result<Option<Vec<MessageView>>, StoreError> {
        if self
            .db
            .query_one("SELECT id FROM campaigns WHERE id = ?1", vals![id])?
            .is_none()
        {
            return Ok(None);
        }
        self.messages_where("m.campaign_id = ?1 ORDER BY m.id", vals![id])
            .map(Some)
    }

    pub fn campaign_detail(&self, id: i64) -> Result<Option<CampaignDetail>, StoreError> {
        let Some((summary, stored)) = self.campaign_rows(Some(id), true)?.into_iter().next() else {
            return Ok(None);
        };
        // The decisions as `campaign new` keeps them; a summary of another shape has none.
        let decisions = match json_or_text(stored) {
            serde_json::Value::Object(mut summary) => summary
                .remove("decisions")
                .unwrap_or_else(|| serde_json::Value::Array(Vec::new())),
            _ => serde_json::Value::Array(Vec::new()),
        };
        let messages = self.messages_where("m.campaign_id = ?1 ORDER BY m.id", vals![id])?;
        let still_open = self.hosts(
            &FindingFilter {
                campaign: Some(id),
                state: Some("open".into()),
                ..FindingFilter::default()
            },
            Page {
                offset: 0,
                limit: MAX_PAGE,
            },
        )?;
        Ok(Some(CampaignDetail {
            summary,
            decisions,
            messages,
            still_open: still_open.items,
            still_open_total: still_open.total,
        }))
    }

    /// Keeps a triage report; returns its id.
    pub fn add_triage_report(&self, report: &NewTriageReport) -> Result<i64, StoreError> {
        let row = self.db.query_one(
            "INSERT INTO triage_reports (imported_at, label, organisation_id, service_id, verdict, hits, report) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            vals![
                notify::timestamp_now(),
                &report.label,
                report.organisation_id,
                report.service_id,
                &report.verdict,
                sql_int(report.hits),
                report.report.to_string()
            ],
        )?;
        self.single_int(row)
    }

    /// Triage reports, newest first.
    pub fn triage_reports(&self) -> Result<Vec<TriageReportSummary>, StoreError> {
        self.read_rows(
            &format!("SELECT {TRIAGE_COLUMNS} {TRIAGE_FROM} ORDER BY t.id DESC"),
            vals![],
            triage_summary,
        )
    }

    pub fn triage_report(&self, id: i64) -> Result<Option<TriageReportDetail>, StoreError> {
        let col = self.column();
        let Some(r) = self.db.query_one(
            &format!("SELECT {TRIAGE_COLUMNS}, t.report {TRIAGE_FROM} WHERE t.id = ?1"),
            vals![id],
        )?
        else {
            return Ok(None);
        };
        Ok(Some(TriageReportDetail {
            summary: triage_summary(&r).map_err(&col)?,
            report: json_or_text(r.text(8).map_err(&col)?),
        }))
    }

    /// Computes and keeps the trend points of a finished scan (called by `finish_scan`, and
    /// for older scans the first time the overview needs them).
    ///
    /// Computed with reads only, then kept in one short write (the scan's points
    /// replaced), so a running scan's writer is not held up meanwhile. A scan as of which
    /// no finding existed keeps one row with CVE `''`, meaning "nothing", so it is not
    /// computed again.
    pub fn record_trend(&self, scan_id: i64) -> Result<(), StoreError> {
        let Some(trend) = self.scan_trend(scan_id)? else {
            return Err(StoreError::Operation {
                location: self.location().to_string(),
                detail: format!("no scan #{scan_id} to keep the trend of"),
            });
        };
        self.keep_trend(scan_id, &trend)
    }

    /// Replaces the kept trend points of a scan with `trend`, in one short write.
    fn keep_trend(&self, scan_id: i64, trend: &ScanTrend) -> Result<(), StoreError> {
        self.db.write(|db| {
            db.execute(
                "DELETE FROM trend_points WHERE scan_id = ?1",
                vals![scan_id],
            )?;
            let insert = "INSERT INTO trend_points (scan_id, cve, started_at, vulnerable, mitigated, patched, unknown, unreachable, not_rescanned) \
                          VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
            if trend.points.is_empty() {
                db.execute(
                    insert,
                    vals![scan_id, NO_CVE, &trend.started_at, 0i64, 0i64, 0i64, 0i64, 0i64, 0i64],
                )?;
            }
            for (cve, p) in &trend.points {
                db.execute(
                    insert,
                    vals![
                        scan_id,
                        cve,
                        &trend.started_at,
                        sql_int(p.vulnerable),
                        sql_int(p.mitigated),
                        sql_int(p.patched),
                        sql_int(p.unknown),
                        sql_int(p.unreachable),
                        sql_int(p.not_rescanned)
                    ],
                )?;
            }
            Ok(())
        })
    }
}

fn scan_summary(r: &Row) -> Result<ScanSummary, ColumnError> {
    Ok(ScanSummary {
        id: r.int(0)?,
        started_at: r.text(1)?,
        finished_at: r.opt_text(2)?,
        state: r.text(3)?,
        observations: count(r.int(4)?),
        ports: r.text(5)?,
        check: r.text(6)?,
        shard: r.text(7)?,
    })
}

impl Store {
    /// The filter as SQL fragments with bound values.
    fn conditions(&self, filter: &FindingFilter) -> Result<Conditions, StoreError> {
        let mut c = Conditions::default();
        if let Some(cve) = given(&filter.cve) {
            let placeholder = c.bind(cve.to_ascii_uppercase());
            c.clauses.push(format!("f.cve = {placeholder}"));
        }
        if let Some(state) = given(&filter.state) {
            let state = state.to_ascii_lowercase();
            if state == "open" {
                c.clauses.push(format!("f.state IN {OPEN_STATES}"));
            } else {
                let placeholder = c.bind(state);
                c.clauses.push(format!("f.state = {placeholder}"));
            }
        }
        if let Some(campaign) = filter.campaign {
            let placeholder = c.bind(campaign);
            c.clauses.push(format!(
                "f.id IN (SELECT n.finding_id FROM notifications n JOIN messages m ON m.id = n.message_id \
                 WHERE m.campaign_id = {placeholder} AND m.state <> 'cancelled')"
            ));
        }
        if let Some(organisation) = filter.organisation {
            let placeholder = c.bind(organisation);
            c.clauses.push(format!("a.organisation_id = {placeholder}"));
            c.attributions = true;
        }
        if let Some(sector) = given(&filter.sector) {
            // Case folds in Rust, beyond ASCII and the same on both engines: the spellings
            // of the sector the store holds, then compared exactly.
            let wanted = crate::same_name(sector);
            let col = self.column();
            let mut spellings = Vec::new();
            for r in self.db.query(
                "SELECT DISTINCT sector FROM organisations WHERE sector IS NOT NULL",
                vals![],
            )? {
                let spelling = r.text(0).map_err(&col)?;
                if crate::same_name(&spelling) == wanted {
                    spellings.push(spelling);
                }
            }
            if spellings.is_empty() {
                c.nothing = true;
            } else {
                let placeholders: Vec<String> = spellings.into_iter().map(|s| c.bind(s)).collect();
                c.clauses.push(format!(
                    "a.organisation_id IN (SELECT org.id FROM organisations org WHERE org.sector IN ({}))",
                    placeholders.join(", ")
                ));
                c.attributions = true;
            }
        }
        // Findings carry RFC 3339 times with or without fractions (`…:18Z`, `…:18.5Z`), and
        // `.` sorts before `Z`; a bound without its `Z` (`…:18`) sorts before both, so
        // "at or after" and "before" hold as text for either form.
        if let Some(since) = given(&filter.seen_since) {
            let placeholder = c.bind(since.trim_end_matches('Z').to_string());
            c.clauses.push(format!("f.last_seen >= {placeholder}"));
        }
        if let Some(until) = given(&filter.seen_until) {
            let placeholder = c.bind(until.trim_end_matches('Z').to_string());
            c.clauses.push(format!("f.last_seen < {placeholder}"));
        }
        if let Some(net) = filter.network {
            let prefix = text_prefix(&net);
            if !prefix.is_empty() {
                // Byte equality on a prefix: right under any collation, unlike a range.
                let length = c.bind(prefix.len() as i64);
                let text = c.bind(prefix);
                c.clauses
                    .push(format!("substr(s.ip, 1, {length}) = {text}"));
                c.services = true;
            }
            c.network = Some(net);
        }
        Ok(c)
    }

    /// How many findings match (without the network test, which needs the rows).
    fn count_matching(&self, c: &Conditions) -> Result<u64, StoreError> {
        let row = self.db.query_one(
            &format!("SELECT count(*){}", c.tables_and_clauses(false)),
            c.params.clone(),
        )?;
        Ok(count(self.single_int(row)?))
    }

    /// The ids of the matching findings in host order: one page (`offset`, `limit`), or all.
    /// With a network the rows are tested here and a page is not asked of SQL.
    fn ordered_ids(
        &self,
        c: &Conditions,
        page: Option<(u64, u64)>,
    ) -> Result<Vec<i64>, StoreError> {
        let col = self.column();
        let mut params = c.params.clone();
        let mut limit = String::new();
        if let (Some((offset, count)), None) = (page, c.network) {
            params.push(Value::Int(sql_int(count)));
            params.push(Value::Int(sql_int(offset)));
            limit = format!(" LIMIT ?{} OFFSET ?{}", params.len() - 1, params.len());
        }
        let rows = self.db.query(
            &format!(
                "SELECT f.id, s.ip{} {HOST_ORDER}{limit}",
                c.tables_and_clauses(true)
            ),
            params,
        )?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(net) = &c.network
                && !in_network(net, &r.text(1).map_err(&col)?)
            {
                continue;
            }
            ids.push(r.int(0).map_err(&col)?);
        }
        if let (Some((offset, count)), Some(_)) = (page, c.network) {
            ids = page_of(&ids, offset, count);
        }
        Ok(ids)
    }

    /// The host rows of these findings, in the order given.
    fn host_rows(&self, ids: &[i64]) -> Result<Vec<HostRow>, StoreError> {
        let col = self.column();
        let mut rows: HashMap<i64, HostRow> = HashMap::with_capacity(ids.len());
        for chunk in crate::db::chunks(ids) {
            let sql = multi_row(HOST_ROWS, chunk.len(), &[Some("BIGINT")]);
            let params = chunk.iter().map(|id| Value::Int(*id)).collect();
            for r in self.db.query(&sql, params)? {
                let row = host_row(&r).map_err(&col)?;
                rows.insert(row.finding_id, row);
            }
        }
        Ok(ids.iter().filter_map(|id| rows.remove(id)).collect())
    }

    /// Messages matching `condition` (a fixed fragment over `messages m`, with its order).
    fn messages_where(
        &self,
        condition: &str,
        params: Vec<Value>,
    ) -> Result<Vec<MessageView>, StoreError> {
        self.read_rows(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE {condition}"),
            params,
            message_view,
        )
    }

    /// Every row of `sql`, each read with `read`.
    fn read_rows<T>(
        &self,
        sql: &str,
        params: Vec<Value>,
        read: impl Fn(&Row) -> Result<T, ColumnError>,
    ) -> Result<Vec<T>, StoreError> {
        self.db
            .query(sql, params)?
            .iter()
            .map(read)
            .collect::<Result<_, _>>()
            .map_err(self.column())
    }

    /// Organisations (one, or all by name) with their counts, and their notes.
    fn organisation_rows(
        &self,
        only: Option<i64>,
    ) -> Result<Vec<(OrganisationSummary, Option<String>)>, StoreError> {
        let col = self.column();
        let (which, params) = one_or_all(only);
        let mut orgs: Vec<(OrganisationSummary, Option<String>)> = Vec::new();
        for r in self.db.query(
            &format!("SELECT id, name, sector, tlp, notes FROM organisations WHERE id {which}"),
            params.clone(),
        )? {
            orgs.push((
                OrganisationSummary {
                    id: r.int(0).map_err(&col)?,
                    name: r.text(1).map_err(&col)?,
                    sector: r.opt_text(2).map_err(&col)?,
                    tlp: r.opt_text(3).map_err(&col)?,
                    ..OrganisationSummary::default()
                },
                r.opt_text(4).map_err(&col)?,
            ));
        }
        orgs.sort_by_cached_key(|(o, _)| (crate::same_name(&o.name), o.id));
        let index: HashMap<i64, usize> = orgs
            .iter()
            .enumerate()
            .map(|(i, (o, _))| (o.id, i))
            .collect();
        let slot = |r: &Row| -> Result<Option<usize>, StoreError> {
            Ok(index.get(&r.int(0).map_err(&col)?).copied())
        };
        for r in self.db.query(
            &format!(
                "SELECT a.organisation_id, count(*) FROM attributions a WHERE a.organisation_id {which} GROUP BY a.organisation_id"
            ),
            params.clone(),
        )? {
            if let Some(i) = slot(&r)? {
                orgs[i].0.services = count(r.int(1).map_err(&col)?);
            }
        }
        for r in self.db.query(
            &format!(
                "SELECT a.organisation_id, f.state, count(*) FROM attributions a JOIN findings f ON f.service_id = a.service_id \
                 WHERE a.organisation_id {which} GROUP BY a.organisation_id, f.state"
            ),
            params.clone(),
        )? {
            if let Some(i) = slot(&r)? {
                let n = count(r.int(2).map_err(&col)?);
                let o = &mut orgs[i].0;
                match r.text(1).map_err(&col)?.as_str() {
                    "vulnerable" => o.vulnerable += n,
                    "mitigated" => o.mitigated += n,
                    "patched" => o.patched += n,
                    _ => o.other += n,
                }
            }
        }
        for r in self.db.query(
            &format!(
                "SELECT m.organisation_id, m.state, count(*), MAX(m.sent_at) FROM messages m \
                 WHERE m.organisation_id {which} GROUP BY m.organisation_id, m.state"
            ),
            params,
        )? {
            if let Some(i) = slot(&r)? {
                let n = count(r.int(2).map_err(&col)?);
                let o = &mut orgs[i].0;
                match r.text(1).map_err(&col)?.as_str() {
                    "sent" => {
                        o.messages_sent += n;
                        o.last_told = r.opt_text(3).map_err(&col)?;
                    }
                    "queued" | "sending" => o.messages_waiting += n,
                    "held" | "cancelled" => o.messages_failed += n,
                    _ => {}
                }
            }
        }
        Ok(orgs)
    }

    /// Campaigns (one, or all newest first) with their messages counted by state, and their
    /// stored summary. `count_told`: also the findings their messages told and how many of
    /// those are still open (a join over every notification of the campaigns).
    pub(crate) fn campaign_rows(
        &self,
        only: Option<i64>,
        count_told: bool,
    ) -> Result<Vec<(CampaignSummary, String)>, StoreError> {
        let col = self.column();
        let (which, params) = one_or_all(only);
        let mut campaigns = Vec::new();
        let mut index = HashMap::new();
        for r in self.db.query(
            &format!(
                "SELECT id, name, cve, created_at, tlp, language, summary FROM campaigns WHERE id {which} ORDER BY id DESC"
            ),
            params.clone(),
        )? {
            let id = r.int(0).map_err(&col)?;
            index.insert(id, campaigns.len());
            campaigns.push((
                CampaignSummary {
                    id,
                    name: r.text(1).map_err(&col)?,
                    cve: r.text(2).map_err(&col)?,
                    created_at: r.text(3).map_err(&col)?,
                    tlp: r.text(4).map_err(&col)?,
                    language: r.text(5).map_err(&col)?,
                    messages: BTreeMap::new(),
                    findings_told: 0,
                    still_open: 0,
                },
                r.text(6).map_err(&col)?,
            ));
        }
        for r in self.db.query(
            &format!(
                "SELECT campaign_id, state, count(*) FROM messages WHERE campaign_id {which} GROUP BY campaign_id, state"
            ),
            params.clone(),
        )? {
            if let Some(&i) = index.get(&r.int(0).map_err(&col)?) {
                campaigns[i]
                    .0
                    .messages
                    .insert(r.text(1).map_err(&col)?, count(r.int(2).map_err(&col)?));
            }
        }
        if !count_told {
            return Ok(campaigns);
        }
        // Told: by a message not cancelled (queued and held ones will tell, or did try).
        for r in self.db.query(
            &format!(
                "SELECT m.campaign_id, count(DISTINCT n.finding_id), \
                 count(DISTINCT CASE WHEN f.state IN {OPEN_STATES} THEN n.finding_id END) \
                 FROM messages m JOIN notifications n ON n.message_id = m.id JOIN findings f ON f.id = n.finding_id \
                 WHERE m.campaign_id {which} AND m.state <> 'cancelled' GROUP BY m.campaign_id"
            ),
            params,
        )? {
            if let Some(&i) = index.get(&r.int(0).map_err(&col)?) {
                campaigns[i].0.findings_told = count(r.int(1).map_err(&col)?);
                campaigns[i].0.still_open = count(r.int(2).map_err(&col)?);
            }
        }
        Ok(campaigns)
    }

    /// The trend as the overview shows it: the kept points of finished scans only. A
    /// running scan has no point (its progress is on the scans page), so the overview
    /// never reads observations, with one exception: a finished scan without kept points
    /// (a store older than the trend, or a scan resumed and finished again by an old
    /// build) is computed once and kept. A handle that cannot write (a role that may only
    /// read) keeps what it computed in this process's memory instead, so it too computes
    /// each such scan once.
    fn trend_for_overview(&self) -> Result<BTreeMap<String, Vec<TrendPoint>>, StoreError> {
        let col = self.column();
        let missing = self.read_rows(
            "SELECT s.id, s.finished_at FROM scans s WHERE s.state = 'finished' \
             AND NOT EXISTS (SELECT 1 FROM trend_points t WHERE t.scan_id = s.id) ORDER BY s.id",
            vals![],
            |r| Ok((r.int(0)?, r.opt_text(1)?.unwrap_or_default())),
        )?;
        let mut unkept: Vec<(i64, BTreeMap<String, TrendPoint>)> = Vec::new();
        for (scan_id, finished_at) in missing {
            let key = (self.location().to_string(), scan_id, finished_at);
            if let Some(points) = unkept_trends().get(&key) {
                unkept.push((scan_id, points.clone()));
                continue;
            }
            let Some(computed) = self.scan_trend(scan_id)? else {
                continue;
            };
            if let Err(e) = self.keep_trend(scan_id, &computed) {
                tracing::warn!(scan_id, error = %e, "the scan's trend points could not be kept in the store; kept in memory while this process runs");
                unkept_trends().insert(key, computed.points.clone());
                unkept.push((scan_id, computed.points));
            }
        }
        let mut trend: BTreeMap<String, Vec<TrendPoint>> = BTreeMap::new();
        for r in self.db.query(
            "SELECT t.scan_id, t.cve, t.started_at, t.vulnerable, t.mitigated, t.patched, t.unknown, t.unreachable, t.not_rescanned \
             FROM trend_points t JOIN scans s ON s.id = t.scan_id WHERE s.state = 'finished' AND t.cve <> ?1 ORDER BY t.scan_id, t.cve",
            vals![NO_CVE],
        )? {
            trend.entry(r.text(1).map_err(&col)?).or_default().push(TrendPoint {
                scan: r.int(0).map_err(&col)?,
                started_at: r.text(2).map_err(&col)?,
                vulnerable: count(r.int(3).map_err(&col)?),
                mitigated: count(r.int(4).map_err(&col)?),
                patched: count(r.int(5).map_err(&col)?),
                unknown: count(r.int(6).map_err(&col)?),
                unreachable: count(r.int(7).map_err(&col)?),
                not_rescanned: count(r.int(8).map_err(&col)?),
            });
        }
        if !unkept.is_empty() {
            for (_, points) in unkept {
                for (cve, point) in points {
                    trend.entry(cve).or_default().push(point);
                }
            }
            for points in trend.values_mut() {
                points.sort_by_key(|p| p.scan);
            }
        }
        Ok(trend)
    }

    /// One scan's standing per CVE, counted as [`report::trend`] counts it but read for
    /// this scan only: how the scan saw each service with findings, and each finding's
    /// state as of the scan and as of the scans before it (from its history).
    ///
    /// "Previously open" is, in `report::trend`, the state as of the newest earlier scan
    /// that saw the service answer. History is only written from records of services that
    /// answered (verdicts come from checks of open services), so no state changes between
    /// that scan and this one: it is the state as of the scans before this one, and no
    /// earlier observation needs reading. `None`: no such scan.
    fn scan_trend(&self, scan_id: i64) -> Result<Option<ScanTrend>, StoreError> {
        let col = self.column();
        let Some(started_at) = self
            .db
            .query_one("SELECT started_at FROM scans WHERE id = ?1", vals![scan_id])?
            .map(|r| r.text(0))
            .transpose()
            .map_err(&col)?
        else {
            return Ok(None);
        };
        let mut findings: HashMap<i64, (i64, String)> = HashMap::new();
        for r in self
            .db
            .query("SELECT id, service_id, cve FROM findings", vals![])?
        {
            findings.insert(
                r.int(0).map_err(&col)?,
                (r.int(1).map_err(&col)?, r.text(2).map_err(&col)?),
            );
        }
        let answered_open = self.answered_open(scan_id, &findings)?;
        // (finding, scan, id, state): one sequential read, ordered here.
        let mut history = self.read_rows(
            "SELECT finding_id, scan_id, id, to_state FROM finding_history WHERE scan_id <= ?1",
            vals![scan_id],
            |r| Ok((r.int(0)?, r.int(1)?, r.int(2)?, r.text(3)?)),
        )?;
        history.sort_unstable_by_key(|(finding, scan, id, _)| (*finding, *scan, *id));
        let mut points: BTreeMap<String, TrendPoint> = BTreeMap::new();
        for changes in history.chunk_by(|a, b| a.0 == b.0) {
            let Some((finding_id, _, _, state)) = changes.last() else {
                continue;
            };
            let Some((service_id, cve)) = findings.get(finding_id) else {
                continue;
            };
            let point = points.entry(cve.clone()).or_insert_with(|| TrendPoint {
                scan: scan_id,
                started_at: started_at.clone(),
                ..TrendPoint::default()
            });
            let was_open = || {
                changes
                    .iter()
                    .rev()
                    .find(|(_, scan, _, _)| *scan < scan_id)
                    .is_some_and(|(_, _, _, state)| report::is_open(state))
            };
            match answered_open.get(service_id) {
                Some(true) => match state.as_str() {
                    "vulnerable" => point.vulnerable += 1,
                    "mitigated" => point.mitigated += 1,
                    "patched" => point.patched += 1,
                    _ => point.unknown += 1,
                },
                Some(false) if was_open() => point.unreachable += 1,
                None if was_open() => point.not_rescanned += 1,
                _ => {}
            }
        }
        Ok(Some(ScanTrend { started_at, points }))
    }

    /// Per service with findings that the scan looked at, whether it answered open (its
    /// last observation in the scan, as `report::trend` reads them). Read from whichever
    /// side is smaller: the scan's observations, or each such service's newest ones (a
    /// sweep of a million addresses with a hundred thousand appliances, or a scan that has
    /// only begun).
    fn answered_open(
        &self,
        scan_id: i64,
        findings: &HashMap<i64, (i64, String)>,
    ) -> Result<HashMap<i64, bool>, StoreError> {
        let col = self.column();
        let services: std::collections::HashSet<i64> =
            findings.values().map(|(service, _)| *service).collect();
        let in_scan = self.db.query_one(
            "SELECT count(*) FROM observations WHERE scan_id = ?1",
            vals![scan_id],
        )?;
        let mut answered = HashMap::new();
        if count(self.single_int(in_scan)?) <= services.len() as u64 {
            for r in self.db.query(
                "SELECT service_id, status FROM observations WHERE scan_id = ?1 ORDER BY id",
                vals![scan_id],
            )? {
                let service = r.int(0).map_err(&col)?;
                if services.contains(&service) {
                    answered.insert(service, r.text(1).map_err(&col)? == "open");
                }
            }
        } else {
            for r in self.db.query(
                "SELECT fs.service_id, \
                 (SELECT o.status FROM observations o WHERE o.service_id = fs.service_id AND o.scan_id = ?1 ORDER BY o.id DESC LIMIT 1) \
                 FROM (SELECT DISTINCT service_id FROM findings) fs",
                vals![scan_id],
            )? {
                if let Some(status) = r.opt_text(1).map_err(&col)? {
                    answered.insert(r.int(0).map_err(&col)?, status == "open");
                }
            }
        }
        Ok(answered)
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
