//! A representative context for every template, made by the same view builders as the
//! handlers (for the test that renders each template): the fixtures the pages share are
//! here, each page module adds its own contexts.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value as Json, json};
use wachter_store::view::*;

use super::{Chrome, PageContext};
use crate::auth::{CurrentUser, Role};

/// Every page template with a representative context (`base.html` and `macros.html`
/// render through the others).
pub fn contexts() -> Vec<(&'static str, Json)> {
    let mut contexts = vec![
        (
            "login.html",
            json!({"csrf": "x", "next": "/hosts", "error": "Wrong user name or password."}),
        ),
        (
            "login.html",
            json!({"csrf": "x", "next": "/", "error": null}),
        ),
        ("error.html", json!({"status": 404, "message": "not found"})),
        (
            "error.html",
            context("", json!({"status": 403, "message": "no"})),
        ),
    ];
    contexts.extend(super::findings::examples());
    contexts.extend(super::organisations::examples());
    contexts.extend(super::scans::examples());
    contexts.extend(super::campaigns::examples());
    contexts.extend(super::triage::examples());
    contexts.extend(super::account::examples());
    contexts.extend(super::admin::examples());
    contexts
}

pub(super) fn context<T: Serialize>(nav: &'static str, page: T) -> Json {
    let user = CurrentUser {
        id: 1,
        name: "ana".into(),
        role: Role::Admin,
        csrf: Some("csrf-token".into()),
        token_scope: None,
    };
    serde_json::to_value(PageContext {
        user: Chrome::of(&user),
        nav,
        page,
    })
    .unwrap()
}

pub(super) fn row() -> HostRow {
    HostRow {
        finding_id: 1,
        service_id: 7,
        ip: "2001:db8::1".into(),
        port: 443,
        hostname: "vpn.<b>.test".into(),
        cve: "CVE-2023-3519".into(),
        state: "vulnerable".into(),
        basis: "probe".into(),
        first_seen: "2026-01-01T00:00:00Z".into(),
        last_seen: "2026-01-02T00:00:00Z".into(),
        organisation_id: Some(3),
        organisation: Some("Hospital".into()),
        sector: Some("health".into()),
        last_notified: None,
    }
}

pub(super) fn history() -> HistoryEntry {
    HistoryEntry {
        finding_id: 1,
        scan_id: 2,
        at: "2026-01-01T00:00:00Z".into(),
        ip: "192.0.2.1".into(),
        port: 443,
        cve: "CVE-2023-3519".into(),
        from_state: None,
        to_state: "vulnerable".into(),
    }
}

pub(super) fn message(state: &str) -> MessageView {
    MessageView {
        ticket: format!("T-{state}"),
        campaign_id: 4,
        organisation_id: Some(3),
        recipient_name: "Hospital".into(),
        recipients: vec!["cert@hospital.test".into()],
        subject: "Vulnerable NetScaler".into(),
        state: state.into(),
        attempts: 1,
        created_at: "2026-01-01T00:00:00Z".into(),
        sent_at: None,
        last_error: Some("550 no".into()),
        smtp_response: None,
        findings: 1,
    }
}

pub(super) fn org_summary() -> OrganisationSummary {
    OrganisationSummary {
        id: 3,
        name: "Hospital".into(),
        sector: Some("health".into()),
        tlp: Some("amber".into()),
        services: 2,
        vulnerable: 1,
        mitigated: 0,
        patched: 1,
        other: 0,
        messages_sent: 1,
        messages_waiting: 1,
        messages_failed: 0,
        last_told: Some("2026-01-01T00:00:00Z".into()),
    }
}

pub(super) fn triage_summary() -> TriageReportSummary {
    TriageReportSummary {
        id: 5,
        imported_at: "2026-01-03T00:00:00Z".into(),
        label: "hospital image".into(),
        organisation_id: Some(3),
        organisation: Some("Hospital".into()),
        service_id: Some(7),
        verdict: "compromised".into(),
        hits: 1,
    }
}

pub(super) fn scan_summary(state: &str) -> ScanSummary {
    ScanSummary {
        id: 2,
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        state: state.into(),
        observations: 10,
        ports: "443".into(),
        check: "netscaler".into(),
        shard: "1/1".into(),
    }
}

pub(super) fn campaign_summary() -> CampaignSummary {
    CampaignSummary {
        id: 4,
        name: "first round".into(),
        cve: "CVE-2023-3519".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        tlp: "TLP:AMBER".into(),
        language: "en".into(),
        messages: BTreeMap::from([("held".into(), 1), ("sent".into(), 2)]),
        findings_told: 3,
        still_open: 1,
    }
}

pub(super) fn host_detail() -> HostDetail {
    let record = json!({
        "schema": "wachter.service/1", "ip": "192.0.2.1", "port": 443,
        "time": "2026-01-01T00:00:00Z", "status": "open", "protocol": "https",
        "tls": {"established": true, "version": "TLSv1.2", "handshakes": 1},
        "http": [{
            "name": "root", "request": "GET / HTTP/1.1\r\n\r\n", "outcome": "response",
            "status": 200, "status_line": "HTTP/1.1 200 OK", "headers": "Server: x\r\n",
            "body": {"base64": "/w=="}, "body_read": 1, "body_complete": true,
            "connection": 1, "total_ms": 1
        }, {"name": "p1", "request": "GET /x HTTP/1.1\r\n\r\n", "outcome": "timeout",
            "body_read": 0, "body_complete": false, "connection": 1, "total_ms": 1}],
        "banner": "SSH-2.0",
        "connections": 1, "timings": {"total_ms": 1},
        "checks": [{
            "check": "netscaler", "product": "netscaler", "signals": ["title:Citrix Gateway"],
            "build": {"version": "13.1-48.47", "method": "rdx_stamp", "detail": "stamp"},
            "probe": {"state": "vulnerable", "reason": "p1 answered", "evidence": ["p1"]},
            "cves": [{"cve": "CVE-2023-3519", "verdict": "vulnerable", "basis": "both"}],
            "flags": {"default_certificate": true, "tls_names": ["vpn.test"]}
        }]
    });
    HostDetail {
        service_id: 7,
        ip: "192.0.2.1".into(),
        port: 443,
        hostname: "vpn.test".into(),
        organisation_id: Some(3),
        organisation: Some("Hospital".into()),
        sector: None,
        attribution: Some("network".into()),
        findings: vec![FindingView {
            id: 1,
            cve: "CVE-2023-3519".into(),
            state: "vulnerable".into(),
            basis: "both".into(),
            detail: "{\"why\": \"p1\"}".into(),
            first_seen: "2026-01-01T00:00:00Z".into(),
            last_seen: "2026-01-01T00:00:00Z".into(),
            history: vec![history()],
        }],
        certificate: Some(CertificateView {
            sha256: "ab".repeat(32),
            subject: "CN=vpn.test".into(),
            issuer: "CN=ca".into(),
            not_after: Some("2027-01-01T00:00:00Z".into()),
            sans: vec!["vpn.test".into()],
        }),
        observations: vec![ObservationView {
            id: 9,
            scan_id: 2,
            observed_at: "2026-01-01T00:00:00Z".into(),
            status: "open".into(),
            protocol: Some("https".into()),
            record,
        }],
        messages: vec![message("sent")],
    }
}
