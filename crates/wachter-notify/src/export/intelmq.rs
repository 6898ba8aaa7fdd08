//! IntelMQ events as JSON Lines, for IntelMQ's JSON parser bot (`splitlines: true`).
//!
//! IntelMQ validates every harmonised key by type, and one invalid value rejects the
//! whole report. So a value goes to its harmonised key only when it is valid there
//! (a hostname that is no FQDN, a registry range that is no CIDR); otherwise it is kept
//! under `extra.*`, which takes any JSON.

use std::io::Write;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::{
    ExportError, cve_upper, generated_at, parse_ip, parse_time, rfc3339_utc, severity,
    state_sentence, tlp2, valid_fqdn, write_json_line,
};
use crate::model::{ExportMeta, HostFinding, tlp_restriction, tlp1};
use crate::text::{MAX_EXCERPT, MAX_NAME, one_line};

/// `feed.name` of every event.
pub const FEED_NAME: &str = "wachter";

/// Writes one IntelMQ event per finding, one per line.
pub fn write(
    findings: &[HostFinding],
    meta: &ExportMeta,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    generated_at(meta)?;
    for f in findings {
        write_json_line(out, &Value::Object(event(f, meta)))?;
    }
    Ok(())
}

/// The event of one finding, with flat harmonised keys.
pub fn event(f: &HostFinding, meta: &ExportMeta) -> Map<String, Value> {
    let mut e = Map::new();
    let mut put = |key: &str, value: Value| {
        let empty = match &value {
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Null => true,
            _ => false,
        };
        if !empty {
            e.insert(key.to_string(), value);
        }
    };
    let text = |s: &str, max: usize| Value::String(one_line(s, max));

    let cve = cve_upper(&f.cve).map(|c| c.to_ascii_lowercase());

    match parse_ip(&f.ip) {
        Some(ip) => put("source.ip", json!(ip.to_string())),
        None => put("extra.ip", text(&f.ip, MAX_NAME)),
    }
    if f.port > 0 {
        put("source.port", json!(f.port));
    }
    match valid_fqdn(&f.hostname) {
        Some(fqdn) => put("source.fqdn", json!(fqdn)),
        None => put("extra.hostname", text(&f.hostname, MAX_NAME)),
    }
    if let Some(asn) = f.owner.asn.filter(|&a| a > 0) {
        put("source.asn", json!(asn));
    }
    if let Some(holder) = &f.owner.holder {
        put("source.as_name", text(holder, MAX_NAME));
    }
    if let Some(network) = &f.owner.network {
        match cidr(network) {
            Some(cidr) => put("source.network", json!(cidr)),
            None => put("extra.network", text(network, MAX_NAME)),
        }
    }
    if let Some(cc) = &f.owner.country {
        let cc = cc.trim().to_ascii_uppercase();
        if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_alphanumeric()) {
            put("source.geolocation.cc", json!(cc));
        } else {
            put("extra.country", text(&cc, 64));
        }
    }
    put(
        "source.abuse_contact",
        json!(abuse_contacts(&f.owner.abuse_contacts)),
    );

    put("classification.taxonomy", json!("vulnerable"));
    put("classification.type", json!("vulnerable-system"));
    match &cve {
        Some(cve) => {
            put("classification.identifier", json!(cve));
            put("product.vulnerabilities", json!(cve));
        }
        None => {
            put("classification.identifier", json!("vulnerable-netscaler"));
            put("extra.vulnerability", text(&f.cve, 64));
        }
    }
    put("product.vendor", json!("citrix"));
    let product = one_line(&f.product, 64).to_lowercase();
    let product = if product.is_empty() {
        "netscaler"
    } else {
        product.as_str()
    };
    put("product.name", json!(product));
    if let Some(build) = &f.build {
        put("product.version", json!(one_line(build, 64).to_lowercase()));
    }
    put("severity", json!(severity(&f.state)));
    put("event_description.text", json!(state_sentence(f)));
    if let Some(t) = parse_time(&f.last_seen) {
        put("time.source", json!(rfc3339_utc(t)));
    }
    put("protocol.application", json!("https"));
    put("protocol.transport", json!("tcp"));
    put("tlp", json!(tlp1(meta.tlp)));
    put("feed.name", json!(FEED_NAME));
    put("feed.provider", text(&meta.reporter.org, MAX_NAME));
    if let Some(url) = &meta.reporter.url {
        put("feed.documentation", text(url, MAX_EXCERPT));
    }

    put("extra.finding_id", json!(f.finding_id));
    if let Some(org) = &f.owner.organisation {
        put("extra.organisation", text(org, MAX_NAME));
    }
    if let Some(sector) = &f.owner.sector {
        put("extra.sector", text(sector, MAX_NAME));
    }
    put("extra.state", text(&f.state, 64));
    put("extra.basis", text(&f.basis, 64));
    put("extra.detail", text(&f.detail, MAX_EXCERPT));
    put("extra.assume_compromise", json!(f.assume_compromise()));
    let names: Vec<Value> = f
        .cert_names
        .iter()
        .map(|n| one_line(n, MAX_NAME))
        .filter(|n| !n.is_empty())
        .map(Value::String)
        .collect();
    put("extra.certificate_names", Value::Array(names));
    if let Some(ev) = &f.evidence {
        put("extra.evidence_summary", text(&ev.summary, MAX_EXCERPT));
        let optional = [
            ("extra.evidence_request", &ev.request_line),
            ("extra.evidence_status", &ev.status_line),
            ("extra.evidence_excerpt", &ev.excerpt),
            ("extra.evidence_url", &ev.url),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                put(key, text(value, MAX_EXCERPT));
            }
        }
        if let Some(t) = parse_time(&ev.observed_at) {
            put("extra.evidence_observed_at", json!(rfc3339_utc(t)));
        }
    }
    if let Some(t) = parse_time(&f.first_seen) {
        put("extra.first_seen", json!(rfc3339_utc(t)));
    }
    if let Some(t) = f.vulnerable_since.as_deref().and_then(parse_time) {
        put("extra.vulnerable_since", json!(rfc3339_utc(t)));
    }
    put("extra.tlp_2_0", json!(tlp2(meta.tlp)));
    if let Some(restriction) = tlp_restriction(meta.tlp) {
        put("extra.tlp_restriction", json!(restriction));
    }
    e
}

/// `network` as IntelMQ's IPNetwork keeps it (host bits cleared), if it is a CIDR.
fn cidr(network: &str) -> Option<String> {
    let (addr, len) = network.trim().split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u32 = len.parse().ok()?;
    let base = match addr {
        IpAddr::V4(a) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(a) & mask))
        }
        _ => return None,
    };
    Some(format!("{base}/{len}"))
}

/// Comma-separated, lowercase; a hostile entry (with a comma or space) is dropped.
fn abuse_contacts(contacts: &[String]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for c in contacts {
        let c = c.trim().to_lowercase();
        let plausible = c.contains('@')
            && c.len() <= MAX_NAME
            && !c
                .chars()
                .any(|ch| ch == ',' || ch.is_whitespace() || ch.is_control());
        if plausible && !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, Owner};
    use wachter_constituency::org::Tlp;

    fn meta(tlp: Tlp) -> ExportMeta {
        crate::export::test_meta(tlp)
    }

    fn finding() -> HostFinding {
        HostFinding {
            finding_id: 7,
            ip: "192.0.2.10".into(),
            port: 443,
            hostname: "VPN.example.nl".into(),
            product: "netscaler".into(),
            build: Some("13.0-47.22".into()),
            cve: "CVE-2019-19781".into(),
            state: "vulnerable".into(),
            basis: "probe".into(),
            last_seen: "2026-01-01T10:00:00Z".into(),
            evidence: Some(Evidence {
                request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1".into()),
                ..Evidence::default()
            }),
            owner: Owner {
                network: Some("192.0.2.77/24".into()),
                abuse_contacts: vec!["Abuse@Example.NL".into(), "x, y@z".into()],
                ..Owner::default()
            },
            ..HostFinding::default()
        }
    }

    #[test]
    fn harmonised_keys() {
        let e = event(&finding(), &meta(Tlp::Amber));
        assert_eq!(e["source.ip"], "192.0.2.10");
        assert_eq!(e["source.fqdn"], "vpn.example.nl");
        assert_eq!(e["source.network"], "192.0.2.0/24");
        assert_eq!(e["source.abuse_contact"], "abuse@example.nl");
        assert_eq!(e["classification.identifier"], "cve-2019-19781");
        assert_eq!(e["product.version"], "13.0-47.22");
        assert_eq!(e["severity"], "critical");
        assert_eq!(e["time.source"], "2026-01-01T10:00:00+00:00");
        assert_eq!(e["tlp"], "AMBER");
        assert!(
            !e.contains_key("extra.first_seen"),
            "absent values are omitted"
        );
        assert!(!e.values().any(Value::is_null));
    }

    #[test]
    fn invalid_fqdn_goes_to_extra() {
        let mut f = finding();
        f.hostname = "vpn.example.nl\r\n<script>alert(1)</script>".into();
        let e = event(&f, &meta(Tlp::Amber));
        assert!(!e.contains_key("source.fqdn"));
        let kept = e["extra.hostname"].as_str().unwrap();
        assert!(!kept.contains('\n') && kept.contains("<script>"));
    }

    #[test]
    fn tlp_is_tlp_1_with_the_restriction_in_words() {
        let e = event(&finding(), &meta(Tlp::Clear));
        assert_eq!(e["tlp"], "WHITE");
        let e = event(&finding(), &meta(Tlp::AmberStrict));
        assert_eq!(e["tlp"], "AMBER");
        assert_eq!(e["extra.tlp_2_0"], "amber+strict");
        assert!(e.contains_key("extra.tlp_restriction"));
    }

    #[test]
    fn registry_ranges_are_not_networks() {
        assert_eq!(cidr("2001:db8::1/32").as_deref(), Some("2001:db8::/32"));
        assert_eq!(cidr("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(cidr("192.0.2.0 - 192.0.2.255"), None);
        assert_eq!(cidr("192.0.2.0/33"), None);
    }
}
