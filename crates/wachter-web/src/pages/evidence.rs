//! Scanned content made printable, and the view models of the host and triage pages:
//! stored JSON (`wachter.service/1` records, triage reports), read defensively, into
//! plain strings that templates print through auto-escape.
//!
//! Wire bytes are decoded where they are UTF-8; every other control byte and every
//! invisible or direction-changing character is spelled out (`\xNN`, `\u{…}`), and every
//! block is capped.

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value as Json;
use wachter_core::assessment::Assessment;
use wachter_store::view::{
    CertificateView, FindingView, HostDetail, MessageView, ObservationView, TriageReportDetail,
    TriageReportSummary,
};

use super::{HistoryView, address};
use crate::query::percent_encode;

/// The most bytes of one evidence block (request, response head, body, banner) shown.
pub const BLOCK_CAP: usize = 4096;
/// The most characters of one line of hostile text (certificate names, details) shown.
pub(crate) const LINE_CAP: usize = 1024;
/// The most HTTP exchanges shown per observation.
const MAX_EXCHANGES: usize = 32;
/// The most triage hits and problems listed (a report lists at most 200 per rule).
const MAX_TRIAGE_ROWS: usize = 2000;

// ---------------------------------------------------------------------------------------
// Hostile bytes made printable

/// `bytes` as text a person can read and a browser cannot act on (after HTML escaping):
/// valid UTF-8 stays, line feeds and tabs stay (a CR before LF is dropped), every other
/// control byte and every byte that is not UTF-8 becomes `\xNN`, and invisible or
/// direction-changing characters become `\u{…}` so a header cannot disguise itself.
pub fn printable(bytes: &[u8]) -> String {
    render_bytes(bytes, true)
}

/// [`printable`] on one line (line feeds and tabs escaped too), capped at `cap` characters.
pub fn printable_line(bytes: &[u8], cap: usize) -> String {
    let text = render_bytes(bytes, false);
    if text.chars().count() <= cap {
        return text;
    }
    let mut cut: String = text.chars().take(cap).collect();
    cut.push('…');
    cut
}

fn render_bytes(bytes: &[u8], multi_line: bool) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for chunk in bytes.utf8_chunks() {
        let mut chars = chunk.valid().chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\n' | '\t' if multi_line => out.push(c),
                '\r' if multi_line && chars.peek() == Some(&'\n') => {}
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if is_invisible(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// C1 controls, zero-width and direction-changing characters, and the BOM.
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2069 | 0xfeff)
}

/// `text` cut at `cap` bytes (on a character boundary), saying how much was left out.
pub(crate) fn cap_text(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n… ({} more bytes not shown)",
        &text[..end],
        text.len() - end
    )
}

/// One line of hostile text, printable and capped at [`LINE_CAP`] characters.
pub(crate) fn line(text: &str) -> String {
    printable_line(text.as_bytes(), LINE_CAP)
}

// ---------------------------------------------------------------------------------------
// View models

/// One block of wire bytes, made printable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Excerpt {
    pub text: String,
    /// Bytes stored.
    pub bytes: usize,
    /// Bytes shown (at most [`BLOCK_CAP`]).
    pub shown: usize,
    pub cut: bool,
}

impl Excerpt {
    pub fn of(bytes: &[u8]) -> Excerpt {
        let shown = bytes.len().min(BLOCK_CAP);
        Excerpt {
            text: printable(&bytes[..shown]),
            bytes: bytes.len(),
            shown,
            cut: shown < bytes.len(),
        }
    }
}

/// A stored `Blob`: a JSON string (the bytes were UTF-8) or `{"base64": "…"}`.
/// Anything else (or base64 that does not decode) is no bytes.
pub fn blob(value: Option<&Json>) -> Option<Vec<u8>> {
    match value? {
        Json::String(text) => Some(text.as_bytes().to_vec()),
        Json::Object(map) => {
            let encoded = map.get("base64")?.as_str()?;
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        }
        _ => None,
    }
}

fn text_field(value: &Json, key: &str) -> Option<String> {
    match value.get(key)? {
        Json::String(s) => Some(printable_line(s.as_bytes(), LINE_CAP)),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One HTTP request and what came back.
#[derive(Clone, Debug, Serialize)]
pub struct ExchangeView {
    pub name: String,
    pub outcome: String,
    pub status: Option<u64>,
    pub detail: Option<String>,
    pub request: Excerpt,
    /// The status line and the header block.
    pub head: Excerpt,
    pub body: Excerpt,
    /// How much of the body was read and whether that was all of it.
    pub body_note: String,
}

impl ExchangeView {
    pub fn from_json(x: &Json) -> ExchangeView {
        let request = blob(x.get("request")).unwrap_or_default();
        let mut head = blob(x.get("status_line")).unwrap_or_default();
        if let Some(headers) = blob(x.get("headers")) {
            if !head.is_empty() {
                head.extend_from_slice(b"\r\n");
            }
            head.extend_from_slice(&headers);
        }
        let body = blob(x.get("body")).unwrap_or_default();
        let body_read = x.get("body_read").and_then(Json::as_u64);
        let complete = x.get("body_complete").and_then(Json::as_bool);
        let nothing = body.is_empty() && body_read.unwrap_or(0) == 0;
        let body_note = match (body_read, complete) {
            _ if nothing => String::new(),
            (Some(read), Some(true)) => {
                format!(
                    "Body: {read} bytes read, the whole body; {} stored.",
                    body.len()
                )
            }
            (Some(read), _) => format!(
                "Body: {read} bytes read, the server may have sent more; {} stored.",
                body.len()
            ),
            (None, _) => format!("Body: {} bytes stored.", body.len()),
        };
        ExchangeView {
            name: text_field(x, "name").unwrap_or_else(|| "?".into()),
            outcome: text_field(x, "outcome").unwrap_or_else(|| "?".into()),
            status: x.get("status").and_then(Json::as_u64),
            detail: text_field(x, "detail"),
            request: Excerpt::of(&request),
            head: Excerpt::of(&head),
            body: Excerpt::of(&body),
            body_note,
        }
    }
}

/// One observation's evidence.
#[derive(Clone, Debug, Serialize)]
pub struct ObservationEvidence {
    pub id: i64,
    pub scan_id: i64,
    pub observed_at: String,
    pub status: String,
    pub protocol: Option<String>,
    pub error: Option<String>,
    pub tls: Option<String>,
    pub exchanges: Vec<ExchangeView>,
    pub banner: Option<Excerpt>,
    /// What could not be shown, if anything.
    pub note: Option<String>,
}

impl ObservationEvidence {
    pub fn from_view(o: &ObservationView) -> ObservationEvidence {
        let record = &o.record;
        let http = record.get("http").and_then(Json::as_array);
        let exchanges: Vec<ExchangeView> = http
            .map(|list| {
                list.iter()
                    .take(MAX_EXCHANGES)
                    .map(ExchangeView::from_json)
                    .collect()
            })
            .unwrap_or_default();
        let total = http.map_or(0, Vec::len);
        let note = (total > MAX_EXCHANGES)
            .then(|| format!("Only the first {MAX_EXCHANGES} of {total} requests are shown."));
        let error = record.get("error").map(|e| {
            let kind = text_field(e, "kind").unwrap_or_default();
            match text_field(e, "detail") {
                Some(detail) if !detail.is_empty() => format!("{kind}: {detail}"),
                _ => kind,
            }
        });
        let tls = record.get("tls").map(|t| {
            let mut parts = Vec::new();
            if t.get("established").and_then(Json::as_bool) == Some(true) {
                parts.push("established".to_string());
            } else {
                parts.push("not established".to_string());
            }
            for key in ["version", "cipher"] {
                if let Some(v) = text_field(t, key) {
                    parts.push(v);
                }
            }
            if let Some(sni) = text_field(t, "sni") {
                parts.push(format!("SNI {sni}"));
            }
            if let Some(failure) = text_field(t, "failure") {
                parts.push(format!("failure: {failure}"));
            }
            parts.join(", ")
        });
        ObservationEvidence {
            id: o.id,
            scan_id: o.scan_id,
            observed_at: o.observed_at.clone(),
            status: o.status.clone(),
            protocol: o.protocol.clone(),
            error,
            tls,
            exchanges,
            banner: blob(record.get("banner")).map(|b| Excerpt::of(&b)),
            note,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BuildView {
    pub version: Option<String>,
    pub candidates: Vec<String>,
    pub method: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProbeView {
    pub state: String,
    pub reason: String,
    pub evidence: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CveVerdictView {
    pub cve: String,
    pub verdict: String,
    pub basis: String,
    pub detail: String,
}

/// What a check concluded (product, build, probe state, verdicts), as text.
#[derive(Clone, Debug, Serialize)]
pub struct CheckView {
    pub check: String,
    pub product: String,
    pub signals: Vec<String>,
    pub build: Option<BuildView>,
    pub probe: Option<ProbeView>,
    pub cves: Vec<CveVerdictView>,
    pub flags: Vec<String>,
}

/// A serde enum's wire name (`not_vulnerable`).
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Json::String(s)) => s,
        _ => "?".into(),
    }
}

impl CheckView {
    pub fn from_assessment(a: &Assessment) -> CheckView {
        let mut flags = Vec::new();
        if a.flags.honeypot_suspect {
            flags.push("honeypot suspect".to_string());
        }
        if a.flags.catch_all {
            flags.push("answers any path".to_string());
        }
        if a.flags.legacy_tls_only {
            flags.push("legacy TLS only".to_string());
        }
        if a.flags.default_certificate {
            flags.push("default certificate".to_string());
        }
        if !a.flags.tls_names.is_empty() {
            let names: Vec<String> = a.flags.tls_names.iter().map(|n| line(n)).collect();
            flags.push(format!("certificate names: {}", names.join(", ")));
        }
        CheckView {
            check: line(&a.check),
            product: wire_name(&a.product),
            signals: a.signals.iter().map(|s| line(s)).collect(),
            build: a.build.as_ref().map(|b| BuildView {
                version: b.version.as_deref().map(line),
                candidates: b.candidates.iter().map(|c| line(c)).collect(),
                method: wire_name(&b.method),
                detail: line(&b.detail),
            }),
            probe: a.probe.as_ref().map(|p| ProbeView {
                state: p.state.as_str().to_string(),
                reason: line(&p.reason),
                evidence: p.evidence.iter().map(|e| line(e)).collect(),
            }),
            cves: a
                .cves
                .iter()
                .map(|v| CveVerdictView {
                    cve: line(&v.cve),
                    verdict: v.verdict.as_str().to_string(),
                    basis: wire_name(&v.basis),
                    detail: line(&v.detail),
                })
                .collect(),
            flags,
        }
    }
}

/// The checks of the newest observation that has any, when it was made, and a note
/// for assessments that could not be read.
fn newest_checks(observations: &[ObservationView]) -> (Vec<CheckView>, String, Option<String>) {
    for o in observations {
        let Some(list) = o.record.get("checks").and_then(Json::as_array) else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        let mut unreadable = 0;
        let checks: Vec<CheckView> = list
            .iter()
            .filter_map(|c| match serde_json::from_value::<Assessment>(c.clone()) {
                Ok(a) => Some(CheckView::from_assessment(&a)),
                Err(_) => {
                    unreadable += 1;
                    None
                }
            })
            .collect();
        let note = (unreadable > 0)
            .then(|| format!("{unreadable} assessment(s) of this observation could not be read."));
        return (checks, o.observed_at.clone(), note);
    }
    (
        Vec::new(),
        String::new(),
        Some("No check assessed this service.".into()),
    )
}

#[derive(Clone, Debug, Serialize)]
pub struct CertificateText {
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    pub not_after: Option<String>,
    pub sans: Vec<String>,
}

impl From<CertificateView> for CertificateText {
    fn from(c: CertificateView) -> Self {
        CertificateText {
            sha256: line(&c.sha256),
            subject: line(&c.subject),
            issuer: line(&c.issuer),
            not_after: c.not_after.as_deref().map(line),
            sans: c.sans.iter().take(500).map(|s| line(s)).collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FindingText {
    pub id: i64,
    pub cve: String,
    pub state: String,
    pub basis: String,
    /// The check's explanation, indented if it is JSON.
    pub detail: String,
    pub first_seen: String,
    pub last_seen: String,
    pub history: Vec<HistoryView>,
}

impl From<FindingView> for FindingText {
    fn from(f: FindingView) -> Self {
        let detail = match serde_json::from_str::<Json>(&f.detail) {
            Ok(Json::String(s)) => s,
            Ok(Json::Null) => String::new(),
            Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
            Err(_) => f.detail.clone(),
        };
        FindingText {
            id: f.id,
            cve: f.cve,
            state: f.state,
            basis: f.basis,
            detail: printable(cap_text(&detail, BLOCK_CAP).as_bytes()),
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            history: f.history.into_iter().map(HistoryView::from).collect(),
        }
    }
}

/// The host page.
#[derive(Clone, Debug, Serialize)]
pub struct HostView {
    pub service_id: i64,
    pub address: String,
    pub hostname: String,
    pub hosts_href: String,
    pub organisation_id: Option<i64>,
    pub organisation: Option<String>,
    pub sector: Option<String>,
    pub attribution: Option<String>,
    pub findings: Vec<FindingText>,
    pub checks: Vec<CheckView>,
    pub checks_observed_at: String,
    pub checks_note: Option<String>,
    pub certificate: Option<CertificateText>,
    pub observations: Vec<ObservationEvidence>,
    pub messages: Vec<MessageView>,
    pub block_cap: usize,
}

impl HostView {
    pub fn from_detail(d: HostDetail) -> HostView {
        let (checks, checks_observed_at, checks_note) = newest_checks(&d.observations);
        HostView {
            service_id: d.service_id,
            address: address(&d.ip, d.port),
            hostname: line(&d.hostname),
            hosts_href: format!("/hosts?network={}", percent_encode(&d.ip)),
            organisation_id: d.organisation_id,
            organisation: d.organisation,
            sector: d.sector,
            attribution: d.attribution,
            findings: d.findings.into_iter().map(FindingText::from).collect(),
            checks,
            checks_observed_at,
            checks_note,
            certificate: d.certificate.map(CertificateText::from),
            observations: d
                .observations
                .iter()
                .map(ObservationEvidence::from_view)
                .collect(),
            messages: d.messages,
            block_cap: BLOCK_CAP,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct HitView {
    pub rule: String,
    pub severity: String,
    pub cves: Vec<String>,
    pub source: String,
    pub description: String,
    pub fixes: Option<String>,
    pub path: String,
    pub line: Option<u64>,
    pub excerpt: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CoverageView {
    pub path: String,
    pub kind: Option<String>,
    pub compressed: bool,
    pub lines: u64,
    pub first: Option<String>,
    pub last: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProblemView {
    pub path: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct MoreHits {
    pub rule: String,
    pub count: u64,
}

/// A triage report (`wachter triage --json`), read field by field: a report from
/// another version shows what it has.
#[derive(Clone, Debug, Serialize)]
pub struct TriageView {
    pub summary: TriageReportSummary,
    pub verdict: String,
    pub verdict_class: String,
    pub reason: String,
    pub evidence: String,
    pub kind: String,
    pub hits: Vec<HitView>,
    pub more_hits: Vec<MoreHits>,
    pub coverage: Vec<CoverageView>,
    pub problems: Vec<ProblemView>,
    pub entries: u64,
    pub files: u64,
    pub bytes_read: u64,
    pub rules: u64,
    pub areas: Vec<String>,
    pub note: Option<String>,
}

fn strings(value: Option<&Json>) -> Vec<String> {
    value
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Json::as_str)
                .take(MAX_TRIAGE_ROWS)
                .map(line)
                .collect()
        })
        .unwrap_or_default()
}

impl TriageView {
    pub fn from_detail(d: TriageReportDetail) -> TriageView {
        let r = &d.report;
        let array = |key: &str| {
            r.get(key)
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let hits_json = array("hits");
        let hits = hits_json
            .iter()
            .take(MAX_TRIAGE_ROWS)
            .map(|h| HitView {
                rule: text_field(h, "rule").unwrap_or_default(),
                severity: text_field(h, "severity").unwrap_or_default(),
                cves: strings(h.get("cves")),
                source: text_field(h, "source").unwrap_or_default(),
                description: text_field(h, "description").unwrap_or_default(),
                fixes: text_field(h, "fixes"),
                path: text_field(h, "path").unwrap_or_default(),
                line: h.get("line").and_then(Json::as_u64),
                excerpt: h
                    .get("excerpt")
                    .and_then(Json::as_str)
                    .map(|e| printable_line(e.as_bytes(), BLOCK_CAP))
                    .unwrap_or_default(),
            })
            .collect();
        let more_hits = r
            .get("more_hits")
            .and_then(Json::as_object)
            .map(|map| {
                map.iter()
                    .take(MAX_TRIAGE_ROWS)
                    .map(|(rule, count)| MoreHits {
                        rule: line(rule),
                        count: count.as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let coverage = array("coverage")
            .iter()
            .take(MAX_TRIAGE_ROWS)
            .map(|c| CoverageView {
                path: text_field(c, "path").unwrap_or_default(),
                kind: text_field(c, "kind"),
                compressed: c.get("compressed").and_then(Json::as_bool).unwrap_or(false),
                lines: c.get("lines").and_then(Json::as_u64).unwrap_or(0),
                first: text_field(c, "first"),
                last: text_field(c, "last"),
            })
            .collect();
        let problems = array("problems")
            .iter()
            .take(MAX_TRIAGE_ROWS)
            .map(|p| ProblemView {
                path: text_field(p, "path").unwrap_or_default(),
                kind: text_field(p, "kind").unwrap_or_default(),
                detail: text_field(p, "detail").unwrap_or_default(),
            })
            .collect();
        let summary_number = |key: &str| {
            r.get("summary")
                .and_then(|s| s.get(key))
                .and_then(Json::as_u64)
                .unwrap_or(0)
        };
        let verdict = text_field(r, "verdict").unwrap_or_else(|| line(&d.summary.verdict));
        let verdict_class: String = verdict
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let note = (hits_json.len() > MAX_TRIAGE_ROWS)
            .then(|| format!("Only the first {MAX_TRIAGE_ROWS} hits are listed."));
        TriageView {
            verdict: verdict.replace('_', " "),
            verdict_class,
            reason: text_field(r, "reason").unwrap_or_default(),
            evidence: text_field(r, "evidence").unwrap_or_default(),
            kind: text_field(r, "kind").unwrap_or_default(),
            hits,
            more_hits,
            coverage,
            problems,
            entries: summary_number("entries"),
            files: summary_number("files"),
            bytes_read: summary_number("bytes_read"),
            rules: r.get("rules").and_then(Json::as_u64).unwrap_or(0),
            areas: strings(r.get("areas")),
            note,
            summary: d.summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_keeps_text_and_escapes_what_is_not() {
        assert_eq!(
            printable(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            "GET / HTTP/1.1\nHost: a\n"
        );
        assert_eq!(printable(b"a\rb\x00c\x1b[31m"), "a\\x0db\\x00c\\x1b[31m");
        assert_eq!(printable(b"\xff\xfe<script>"), "\\xff\\xfe<script>");
        assert_eq!(
            printable("caf\u{e9} \u{202e}txt".as_bytes()),
            "caf\u{e9} \\u{202e}txt"
        );
        assert_eq!(printable_line(b"a\nb\tc", 100), "a\\x0ab\\x09c");
        assert_eq!(printable_line(b"abcdef", 3), "abc…");
    }

    #[test]
    fn evidence_blocks_are_capped_and_say_so() {
        let long = vec![b'A'; BLOCK_CAP + 10];
        let e = Excerpt::of(&long);
        assert!(e.cut);
        assert_eq!(
            (e.bytes, e.shown, e.text.len()),
            (BLOCK_CAP + 10, BLOCK_CAP, BLOCK_CAP)
        );
        assert!(!Excerpt::of(b"short").cut);
    }

    #[test]
    fn blobs_are_text_or_base64() {
        use serde_json::json;
        assert_eq!(blob(Some(&json!("ok"))), Some(b"ok".to_vec()));
        assert_eq!(blob(Some(&json!({"base64": "/w=="}))), Some(vec![0xff]));
        assert_eq!(blob(Some(&json!({"base64": "%%%"}))), None);
        assert_eq!(blob(Some(&json!(3))), None);
        assert_eq!(blob(None), None);
    }

    #[test]
    fn an_exchange_shows_request_head_and_body_as_text() {
        let x = serde_json::json!({
            "name": "root",
            "request": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "outcome": "response",
            "status": 200,
            "status_line": "HTTP/1.1 200 OK",
            "headers": "Server: <b>\r\nX: y\r\n",
            "body": {"base64": "/09LPHNjcmlwdD4="},
            "body_read": 10,
            "body_complete": false,
            "connection": 1,
            "total_ms": 3
        });
        let v = ExchangeView::from_json(&x);
        assert_eq!(v.request.text, "GET / HTTP/1.1\nHost: x\n\n");
        assert_eq!(v.head.text, "HTTP/1.1 200 OK\nServer: <b>\nX: y\n");
        assert_eq!(v.body.text, "\\xffOK<script>");
        assert!(
            v.body_note.contains("may have sent more"),
            "{}",
            v.body_note
        );
        assert_eq!(v.status, Some(200));
    }
}
