//! Evidence for a notice, read from a stored observation (a `wachter.service/1` record).
//!
//! The record is the scanner's full account; the owner needs three lines of it: what we
//! asked, what the appliance answered, and the bytes that decided. For a state decided by
//! the build estimate, the evidence is how the build was read. Records come from the
//! store, but their contents came from a hostile server: every field is read defensively
//! (anything missing or of the wrong type is skipped) and cut to size.

use base64::Engine;
use serde_json::Value;

use crate::model::Evidence;
use crate::text::{MAX_EXCERPT, MAX_NAME, excerpt, one_line};

/// What a record says about one service, for a notice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordFacts {
    /// `netscaler`, or empty when no check recognised the product.
    pub product: String,
    pub build: Option<String>,
    /// Certificate common name first, then the SANs (de-duplicated, at most 50).
    pub cert_names: Vec<String>,
    pub evidence: Option<Evidence>,
}

/// Most certificate names kept per service.
const MAX_CERT_NAMES: usize = 50;

/// Reads the facts for `cve` from `record` (JSON text). A record that does not parse gives
/// empty facts: the notice still goes out, without evidence.
pub fn from_record(record: &str, cve: &str) -> RecordFacts {
    let Ok(record) = serde_json::from_str::<Value>(record) else {
        return RecordFacts::default();
    };
    let mut facts = RecordFacts::default();
    let observed_at = str_at(&record, "time").unwrap_or_default();
    let check = record
        .get("checks")
        .and_then(Value::as_array)
        .and_then(|checks| checks.iter().find(|c| c.get("product").is_some()));

    if let Some(chain) = record.pointer("/tls/chain").and_then(Value::as_array)
        && let Some(leaf) = chain.first()
    {
        let mut names: Vec<String> = Vec::new();
        let cn = str_at(leaf, "common_name");
        let sans = leaf
            .get("sans")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_else(Vec::<String>::new);
        for name in cn.into_iter().chain(sans) {
            let name = one_line(&name, MAX_NAME);
            if !name.is_empty() && !names.contains(&name) && names.len() < MAX_CERT_NAMES {
                names.push(name);
            }
        }
        facts.cert_names = names;
    }

    let Some(check) = check else {
        return facts;
    };
    facts.product = str_at(check, "product")
        .map(|p| one_line(&p, 40))
        .unwrap_or_default();
    let build = check.get("build");
    facts.build = build
        .and_then(|b| str_at(b, "version"))
        .map(|v| one_line(&v, 40))
        .filter(|v| !v.is_empty());

    let verdict = check
        .get("cves")
        .and_then(Value::as_array)
        .and_then(|cves| {
            cves.iter()
                .find(|c| str_at(c, "cve").is_some_and(|id| id.eq_ignore_ascii_case(cve)))
        });
    let basis = verdict.and_then(|v| str_at(v, "basis")).unwrap_or_default();
    let probe = check.get("probe");
    let probe_decided = matches!(basis.as_str(), "probe" | "both")
        && probe
            .and_then(|p| str_at(p, "state"))
            .is_some_and(|s| s == "vulnerable" || s == "mitigated");

    if probe_decided && let Some(probe) = probe {
        let exchange_name = probe
            .get("evidence")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
            .and_then(Value::as_str)
            .unwrap_or_default();
        let exchange = record
            .get("http")
            .and_then(Value::as_array)
            .and_then(|http| {
                http.iter()
                    .find(|x| str_at(x, "name").as_deref() == Some(exchange_name))
            });
        let mut evidence = Evidence {
            summary: one_line(&str_at(probe, "reason").unwrap_or_default(), MAX_EXCERPT),
            observed_at: observed_at.clone(),
            ..Default::default()
        };
        if let Some(exchange) = exchange {
            let request = str_at(exchange, "request").unwrap_or_default();
            let request_line = request.split("\r\n").next().unwrap_or_default();
            evidence.request_line = Some(one_line(request_line, MAX_NAME * 4));
            evidence.status_line = str_at(exchange, "status_line").map(|s| one_line(&s, MAX_NAME));
            evidence.excerpt = body_bytes(exchange).map(|b| excerpt(&b, MAX_EXCERPT));
            evidence.url = target_url(&record, request_line);
        }
        facts.evidence = Some(evidence);
    } else if let Some(build) = build {
        let version = str_at(build, "version").unwrap_or_default();
        let method = str_at(build, "method").unwrap_or_default();
        let detail = str_at(build, "detail").unwrap_or_default();
        let verdict_detail = verdict
            .and_then(|v| str_at(v, "detail"))
            .unwrap_or_default();
        let summary =
            format!("build {version} estimated from {method} ({detail}); {verdict_detail}");
        facts.evidence = Some(Evidence {
            summary: one_line(&summary, MAX_EXCERPT),
            observed_at,
            ..Default::default()
        });
    }
    facts
}

fn str_at(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(String::from)
}

/// A body as stored: text, or `{"base64": …}` for bytes that were not UTF-8.
fn body_bytes(exchange: &Value) -> Option<Vec<u8>> {
    match exchange.get("body")? {
        Value::String(text) => Some(text.as_bytes().to_vec()),
        Value::Object(map) => map
            .get("base64")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()),
        _ => None,
    }
}

/// `https://ip:port/path` (IPv6 bracketed) from the record and the request line.
fn target_url(record: &Value, request_line: &str) -> Option<String> {
    let path = request_line.split(' ').nth(1)?;
    let ip = str_at(record, "ip")?;
    let port = record.get("port").and_then(Value::as_u64)?;
    let scheme = match str_at(record, "protocol").as_deref() {
        Some("http") => "http",
        _ => "https",
    };
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip
    };
    Some(one_line(
        &format!("{scheme}://{host}:{port}{path}"),
        MAX_NAME * 4,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBED: &str = r#"{"schema":"wachter.service/1","ip":"127.77.0.13","port":8443,"time":"2026-11-28T08:02:13Z","status":"open","protocol":"https",
      "tls":{"chain":[{"common_name":"vpn.example.nl","sans":["vpn.example.nl","evil\r\nBcc: x@y.test"]}]},
      "http":[{"name":"p1","request":"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\nHost: 127.77.0.13:8443\r\n\r\n","status_line":"HTTP/1.1 200 OK","body":"[global]\n\tencrypt passwords = yes\n"}],
      "checks":[{"check":"netscaler","product":"netscaler","build":{"version":"13.0-47.22","method":"rdx_stamp","detail":"stamp"},
        "probe":{"state":"vulnerable","reason":"P1 returned smb.conf (200, [global]) through /vpn/../vpns/","evidence":["p1"]},
        "cves":[{"cve":"CVE-2019-19781","verdict":"vulnerable","basis":"both","detail":"exposed"},{"cve":"CVE-2023-3519","verdict":"vulnerable","basis":"version","detail":"13.0-47.22 is below 13.0-91.13"}]}]}"#;

    #[test]
    fn probe_evidence_names_request_answer_and_bytes() {
        let facts = from_record(PROBED, "cve-2019-19781");
        assert_eq!(facts.product, "netscaler");
        assert_eq!(facts.build.as_deref(), Some("13.0-47.22"));
        assert_eq!(
            facts.cert_names,
            vec!["vpn.example.nl", "evil Bcc: x@y.test"]
        );
        let e = facts.evidence.unwrap();
        assert_eq!(
            e.request_line.as_deref(),
            Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1")
        );
        assert_eq!(e.status_line.as_deref(), Some("HTTP/1.1 200 OK"));
        assert_eq!(
            e.excerpt.as_deref(),
            Some("[global]⏎\\tencrypt passwords = yes⏎")
        );
        assert_eq!(
            e.url.as_deref(),
            Some("https://127.77.0.13:8443/vpn/../vpns/cfg/smb.conf")
        );
        assert_eq!(e.observed_at, "2026-11-28T08:02:13Z");
    }

    #[test]
    fn version_evidence_says_how_the_build_was_read() {
        let facts = from_record(PROBED, "CVE-2023-3519");
        let e = facts.evidence.unwrap();
        assert!(e.request_line.is_none());
        assert!(
            e.summary
                .contains("build 13.0-47.22 estimated from rdx_stamp")
        );
        assert!(e.summary.contains("below 13.0-91.13"));
    }

    #[test]
    fn damaged_records_give_empty_facts() {
        assert_eq!(
            from_record("not json", "CVE-2019-19781"),
            RecordFacts::default()
        );
        let odd = r#"{"checks":[{"product":7,"build":{"version":[]},"probe":"x","cves":{}}],"http":"x","tls":{"chain":[{"sans":[1,2]}]}}"#;
        let facts = from_record(odd, "CVE-2019-19781");
        assert!(facts.build.is_none() && facts.cert_names.is_empty());
    }
}
