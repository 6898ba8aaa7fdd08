//! Findings in the formats CERTs exchange.
//!
//! Each module writes one format and is checked by the owning project's own code
//! (`tests/exports.rs` runs IntelMQ, xarf, stix2 and pymisp on the output):
//!
//! - [`intelmq`]: IntelMQ events, JSON Lines (harmonised flat keys, TLP 1.0).
//! - [`shadowserver`]: a `scan_http_vulnerable`-style CSV.
//! - [`xarf`]: X-ARF v4 reports, JSON Lines.
//! - [`misp`]: one MISP event.
//! - [`stix`]: one STIX 2.1 bundle.
//!
//! Output is deterministic for the same input: ids are UUIDv5 over stable finding data,
//! so a re-export does not create new objects in the receiver's database.

pub mod intelmq;
pub mod misp;
pub mod shadowserver;
pub mod stix;
pub mod xarf;

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use wachter_constituency::org::Tlp;

use crate::model::{ExportMeta, HostFinding};
use crate::text::{MAX_EXCERPT, MAX_NAME, one_line};

/// The formats [`write`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Intelmq,
    Shadowserver,
    Xarf,
    Misp,
    Stix,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Intelmq,
        Format::Shadowserver,
        Format::Xarf,
        Format::Misp,
        Format::Stix,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Intelmq => "intelmq",
            Format::Shadowserver => "shadowserver",
            Format::Xarf => "xarf",
            Format::Misp => "misp",
            Format::Stix => "stix",
        }
    }

    /// The file extension of an export in this format.
    pub fn extension(&self) -> &str {
        match self {
            Format::Intelmq | Format::Xarf => "jsonl",
            Format::Shadowserver => "csv",
            Format::Misp | Format::Stix => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "intelmq" => Ok(Format::Intelmq),
            "shadowserver" | "csv" => Ok(Format::Shadowserver),
            "xarf" => Ok(Format::Xarf),
            "misp" => Ok(Format::Misp),
            "stix" => Ok(Format::Stix),
            other => Err(format!(
                "unknown export format {other:?} (intelmq, shadowserver, xarf, misp, stix)"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("export time {0:?} is not RFC 3339")]
    Time(String),
}

/// Writes `findings` in `format` to `out`.
pub fn write(
    format: Format,
    findings: &[HostFinding],
    meta: &ExportMeta,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    match format {
        Format::Intelmq => intelmq::write(findings, meta, out),
        Format::Shadowserver => shadowserver::write(findings, meta, out),
        Format::Xarf => xarf::write(findings, meta, out),
        Format::Misp => misp::write(findings, meta, out),
        Format::Stix => stix::write(findings, meta, out),
    }
}

// ---- helpers the formats share ----------------------------------------------------------

/// Namespace of wachter's UUIDv5 ids (itself UUIDv5 of a URL we own by convention).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:wachter:export")
}

/// A stable id for `kind` of thing named by `parts`.
pub(crate) fn stable_uuid(kind: &str, parts: &[&str]) -> Uuid {
    let mut name = String::from(kind);
    for part in parts {
        name.push('\u{1f}');
        name.push_str(part);
    }
    Uuid::new_v5(&namespace(), name.as_bytes())
}

/// What identifies one observation of a finding: the same finding seen again later is
/// a new record for the receiver, an unchanged re-export is not.
pub(crate) fn finding_key(f: &HostFinding) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        f.finding_id, f.ip, f.port, f.cve, f.last_seen
    )
}

/// The TLP 2.0 label in lowercase (`amber+strict`), as MISP and XARF tags spell it.
pub(crate) fn tlp2(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "clear",
        Tlp::Green => "green",
        Tlp::Amber => "amber",
        Tlp::AmberStrict => "amber+strict",
        Tlp::Red => "red",
    }
}

/// Shadowserver's and IntelMQ's severity scale for a state.
pub(crate) fn severity(state: &str) -> &'static str {
    match state {
        "vulnerable" => "critical",
        "mitigated" => "high",
        "patched" => "info",
        _ => "undefined",
    }
}

/// `CVE-2019-19781` if `cve` is a CVE id (any case), else `None`.
pub(crate) fn cve_upper(cve: &str) -> Option<String> {
    let upper = cve.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix("CVE-")?;
    let (year, number) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (year.len() == 4 && digits(year) && digits(number)).then_some(upper)
}

/// The distinct CVEs of `findings`, in first-seen order.
pub(crate) fn distinct_cves(findings: &[HostFinding]) -> Vec<String> {
    let mut cves: Vec<String> = Vec::new();
    for f in findings {
        let cve = cve_upper(&f.cve).unwrap_or_else(|| one_line(&f.cve, 64));
        if !cves.contains(&cve) {
            cves.push(cve);
        }
    }
    cves
}

/// `name` as a lowercase DNS name if it is a plausible one (LDH labels, a dot, not an
/// address), else `None`: scanned names are hostile and receivers reject bad domains.
pub(crate) fn valid_fqdn(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return None;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let tld = labels.last()?;
    let tld_ok = tld.bytes().any(|b| b.is_ascii_alphabetic());
    (labels.iter().all(|l| label_ok(l)) && tld_ok).then_some(name)
}

/// The address in canonical form, if `ip` is one.
pub(crate) fn parse_ip(ip: &str) -> Option<IpAddr> {
    ip.trim().parse().ok()
}

/// The address part of `Name <addr>` or of a bare address.
pub(crate) fn mail_address(from: &str) -> String {
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(start), Some(end)) if start < end => &from[start + 1..end],
        _ => from,
    };
    one_line(addr, MAX_NAME)
}

pub(crate) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC))
}

/// The export time; the one timestamp an export cannot do without.
pub(crate) fn generated_at(meta: &ExportMeta) -> Result<OffsetDateTime, ExportError> {
    parse_time(&meta.generated_at).ok_or_else(|| ExportError::Time(meta.generated_at.clone()))
}

/// `2026-01-01T12:00:00+00:00`: whole seconds, the form IntelMQ's DateTime keeps as is.
pub(crate) fn rfc3339_utc(t: OffsetDateTime) -> String {
    let mut s = wachter_core::stamp::utc(t);
    s.pop();
    s + "+00:00"
}

/// `2026-01-01T12:00:00Z`.
pub(crate) fn rfc3339_z(t: OffsetDateTime) -> String {
    wachter_core::stamp::utc(t)
}

/// A short text transcript of what proved the state: what a receiver shows an owner.
pub(crate) fn transcript(f: &HostFinding) -> String {
    let mut lines = vec![format!(
        "{} {}:{} {} {} (basis: {})",
        one_line(&f.product, 64),
        one_line(&f.ip, 64),
        f.port,
        one_line(&f.cve, 64),
        one_line(&f.state, 64),
        one_line(&f.basis, 64)
    )];
    if !f.detail.is_empty() {
        lines.push(format!("detail: {}", one_line(&f.detail, MAX_EXCERPT)));
    }
    if let Some(build) = &f.build {
        lines.push(format!("build: {}", one_line(build, 64)));
    }
    if let Some(e) = &f.evidence {
        if let Some(url) = &e.url {
            lines.push(format!("url: {}", one_line(url, MAX_EXCERPT)));
        }
        if let Some(request) = &e.request_line {
            lines.push(format!("> {}", one_line(request, MAX_EXCERPT)));
        }
        if let Some(status) = &e.status_line {
            lines.push(format!("< {}", one_line(status, MAX_EXCERPT)));
        }
        if let Some(excerpt) = &e.excerpt {
            lines.push(format!("< {}", one_line(excerpt, MAX_EXCERPT)));
        }
        if !e.summary.is_empty() {
            lines.push(format!("summary: {}", one_line(&e.summary, MAX_EXCERPT)));
        }
        if !e.observed_at.is_empty() {
            lines.push(format!("observed: {}", one_line(&e.observed_at, 64)));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// One line saying what the state means for the owner.
pub(crate) fn state_sentence(f: &HostFinding) -> String {
    let mut s = format!(
        "{} {} on {}:{}",
        one_line(&f.cve, 64),
        one_line(&f.state, 64),
        one_line(&f.ip, 64),
        f.port
    );
    if !f.detail.is_empty() {
        s.push_str(": ");
        s.push_str(&one_line(&f.detail, MAX_EXCERPT));
    }
    if f.state == "mitigated" && f.vulnerable_since.is_some() {
        s.push_str(" (mitigated after it was seen vulnerable: assume compromise)");
    }
    s
}

/// serde_json leaves U+2028, U+2029 and U+0085 unescaped, but line readers (Python's
/// `str.splitlines`, which IntelMQ's JSON parser uses) break lines there: one hostile
/// hostname would split an event in two.
pub(crate) fn write_json_line(
    out: &mut dyn Write,
    value: &serde_json::Value,
) -> Result<(), ExportError> {
    let text = serde_json::to_string(value)?;
    let mut line = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '\u{2028}' => line.push_str("\\u2028"),
            '\u{2029}' => line.push_str("\\u2029"),
            '\u{85}' => line.push_str("\\u0085"),
            c => line.push(c),
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    Ok(())
}

/// The export metadata the format tests share.
#[cfg(test)]
pub(crate) fn test_meta(tlp: wachter_constituency::org::Tlp) -> ExportMeta {
    ExportMeta {
        reporter: crate::model::Reporter::default(),
        tlp,
        generated_at: "2026-01-01T12:00:00Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        }
        assert_eq!("CSV".parse::<Format>().unwrap(), Format::Shadowserver);
        assert_eq!(Format::Misp.extension(), "json");
        assert!("yaml".parse::<Format>().is_err());
    }

    #[test]
    fn fqdn_check_rejects_hostile_names() {
        assert_eq!(
            valid_fqdn("VPN.Example.NL.").as_deref(),
            Some("vpn.example.nl")
        );
        for bad in [
            "",
            "localhost",
            "192.0.2.10",
            "vpn.example.nl\r\nBcc: x",
            "<script>.example",
            "a..b",
            "-a.example",
            "vpn.example.nl:443",
            "\u{fffd}.example",
            &"a".repeat(10_000),
        ] {
            assert_eq!(valid_fqdn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cve_ids_are_checked() {
        assert_eq!(
            cve_upper("cve-2019-19781").as_deref(),
            Some("CVE-2019-19781")
        );
        assert_eq!(cve_upper("CVE-19-1"), None);
        assert_eq!(cve_upper("CVE-2019-"), None);
    }

    #[test]
    fn line_separators_are_escaped_in_json_lines() {
        let mut out = Vec::new();
        write_json_line(&mut out, &serde_json::json!({"a": "x\u{2028}y\u{85}z\r\n"})).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert_eq!(text, "{\"a\":\"x\\u2028y\\u0085z\\r\\n\"}\n");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["a"], "x\u{2028}y\u{85}z\r\n");
    }

    #[test]
    fn mail_address_drops_the_display_name() {
        assert_eq!(
            mail_address("Example CERT <cert@example.org>"),
            "cert@example.org"
        );
        assert_eq!(mail_address("cert@example.org"), "cert@example.org");
    }

    #[test]
    fn times_are_utc() {
        let t = parse_time("2026-01-02T03:04:05.678+01:00").unwrap();
        assert_eq!(rfc3339_utc(t), "2026-01-02T02:04:05+00:00");
        assert_eq!(rfc3339_z(t), "2026-01-02T02:04:05Z");
        assert!(parse_time("yesterday").is_none());
    }
}
