//! A Shadowserver `scan_http_vulnerable`-style CSV: the columns CERTs already load.
//!
//! Cells are single lines, and a cell a spreadsheet would run as a formula (`=`, `+`,
//! `-`, `@`) gets a leading `'`: these files are opened in Excel by the people we warn.

use std::io::Write;

use wachter_core::csv_cell::defuse_formula;

use super::{ExportError, cve_upper, generated_at, parse_ip, parse_time, severity, valid_fqdn};
use crate::model::{ExportMeta, HostFinding};
use crate::text::{MAX_EXCERPT, MAX_NAME, one_line};

/// The columns of Shadowserver's `scan_http_vulnerable` report, in its order.
pub const COLUMNS: [&str; 29] = [
    "timestamp",
    "severity",
    "ip",
    "protocol",
    "port",
    "hostname",
    "tag",
    "asn",
    "geo",
    "region",
    "city",
    "naics",
    "hostname_source",
    "sector",
    "http",
    "http_code",
    "http_reason",
    "content_type",
    "connection",
    "www_authenticate",
    "set_cookie",
    "server",
    "content_length",
    "transfer_encoding",
    "http_date",
    "version",
    "build_date",
    "detail",
    "build_branch",
];

/// Writes the header and one row per finding.
pub fn write(
    findings: &[HostFinding],
    meta: &ExportMeta,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let generated = generated_at(meta)?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    for f in findings {
        let seen = parse_time(&f.last_seen).unwrap_or(generated);
        w.write_record(row(f, seen).iter().map(|c| cell(c)))?;
    }
    w.flush()?;
    Ok(())
}

fn row(f: &HostFinding, seen: time::OffsetDateTime) -> [String; 29] {
    let timestamp = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        seen.year(),
        u8::from(seen.month()),
        seen.day(),
        seen.hour(),
        seen.minute(),
        seen.second()
    );
    let ip = parse_ip(&f.ip).map_or_else(|| f.ip.clone(), |ip| ip.to_string());
    let hostname = valid_fqdn(&f.hostname).unwrap_or_else(|| one_line(&f.hostname, MAX_NAME));
    let (http, http_code, http_reason) = f
        .evidence
        .as_ref()
        .and_then(|e| e.status_line.as_deref())
        .map(status_parts)
        .unwrap_or_default();
    let build = f.build.clone().unwrap_or_default();
    let branch = build
        .split_once('-')
        .map(|(b, _)| b.to_string())
        .unwrap_or_default();
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    [
        timestamp,
        severity(&f.state).to_string(),
        ip,
        "tcp".into(),
        f.port.to_string(),
        hostname,
        tag(f),
        f.owner.asn.map(|a| a.to_string()).unwrap_or_default(),
        opt(&f.owner.country).to_ascii_uppercase(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        opt(&f.owner.sector),
        http,
        http_code,
        http_reason,
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        build,
        String::new(),
        detail(f),
        branch,
    ]
}

/// `citrix;netscaler;cve-2019-19781`: `;`-separated lowercase tokens, the form
/// IntelMQ's `extract_cve_from_tag` reads the CVE from.
fn tag(f: &HostFinding) -> String {
    let product = one_line(&f.product, 64)
        .to_lowercase()
        .replace([';', ','], " ");
    let product = if product.is_empty() {
        "netscaler".into()
    } else {
        product
    };
    let mut tokens = vec!["citrix".to_string(), product];
    if let Some(cve) = cve_upper(&f.cve) {
        tokens.push(cve.to_ascii_lowercase());
    }
    tokens.join(";")
}

/// State, detail and evidence summary as one line.
fn detail(f: &HostFinding) -> String {
    let mut parts = vec![f.state.clone()];
    if !f.detail.is_empty() {
        parts.push(f.detail.clone());
    }
    if let Some(e) = f.evidence.as_ref().filter(|e| !e.summary.is_empty()) {
        parts.push(e.summary.clone());
    }
    if f.state == "mitigated" && f.vulnerable_since.is_some() {
        parts.push("mitigated after it was seen vulnerable: assume compromise".into());
    }
    parts.join(": ")
}

/// `HTTP/1.1 200 OK` as (`HTTP/1.1`, `200`, `OK`).
fn status_parts(line: &str) -> (String, String, String) {
    let line = one_line(line, MAX_NAME);
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Default::default();
    }
    let reason = parts.next().unwrap_or_default().to_string();
    (version, code.to_string(), reason)
}

/// One line, capped, and never a formula (the rule of every CSV wachter writes).
fn cell(value: &str) -> String {
    defuse_formula(one_line(value, MAX_EXCERPT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, Owner, Reporter};
    use wachter_constituency::org::Tlp;

    fn export(findings: &[HostFinding]) -> String {
        let meta = ExportMeta {
            reporter: Reporter::default(),
            tlp: Tlp::Amber,
            generated_at: "2026-01-01T12:00:00Z".into(),
        };
        let mut out = Vec::new();
        write(findings, &meta, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formulas_are_neutralised_numbers_are_not() {
        assert_eq!(
            cell("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("+31 20 123"), "'+31 20 123");
        assert_eq!(cell("-cmd"), "'-cmd");
        assert_eq!(cell("-1"), "-1");
        assert_eq!(cell("+3.5"), "+3.5");
        assert_eq!(cell("\t=1+1"), "'=1+1");
        assert_eq!(cell("vpn.example.nl"), "vpn.example.nl");
    }

    #[test]
    fn row_has_the_report_columns() {
        let f = HostFinding {
            ip: "192.0.2.10".into(),
            port: 443,
            hostname: "=cmd|' /C calc'!A0\r\nx".into(),
            product: "netscaler".into(),
            build: Some("13.0-47.22".into()),
            cve: "CVE-2019-19781".into(),
            state: "vulnerable".into(),
            detail: "smb.conf served".into(),
            last_seen: "2026-01-01T10:00:00Z".into(),
            evidence: Some(Evidence {
                status_line: Some("HTTP/1.1 200 OK".into()),
                ..Evidence::default()
            }),
            owner: Owner {
                asn: Some(64496),
                country: Some("nl".into()),
                ..Owner::default()
            },
            ..HostFinding::default()
        };
        let text = export(&[f]);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        let get =
            |name: &str| rows[0][COLUMNS.iter().position(|c| *c == name).unwrap()].to_string();
        assert_eq!(get("timestamp"), "2026-01-01 10:00:00");
        assert_eq!(get("tag"), "citrix;netscaler;cve-2019-19781");
        assert_eq!(get("hostname"), "'=cmd|' /C calc'!A0 x");
        assert_eq!(get("http_code"), "200");
        assert_eq!(get("http_reason"), "OK");
        assert_eq!(get("geo"), "NL");
        assert_eq!(get("build_branch"), "13.0");
        assert_eq!(get("detail"), "vulnerable: smb.conf served");
    }

    #[test]
    fn status_lines_that_are_not_http_are_ignored() {
        assert_eq!(status_parts("garbage"), Default::default());
        assert_eq!(
            status_parts("HTTP/1.0 403 Forbidden by policy"),
            (
                "HTTP/1.0".into(),
                "403".into(),
                "Forbidden by policy".into()
            )
        );
    }
}
