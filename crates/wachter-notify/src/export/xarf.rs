//! X-ARF v4 reports (category `vulnerability`, type `cve`) as JSON Lines.
//!
//! Only fields of the xarf schema are written: receivers validating strictly turn
//! unknown fields into errors. `confidence` is left out: xarf 1.0.0's schema wants a
//! number in 0..=1 and its model an integer percentage, so only 0 and 1 pass both and
//! neither says what we mean; the `basis:` tag tells how the state was decided. The `report_id` must be a UUIDv4; it is made from a hash
//! of the finding so that an unchanged re-export has the same id.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    ExportError, cve_upper, finding_key, generated_at, mail_address, parse_ip, parse_time,
    rfc3339_z, severity, state_sentence, tlp2, transcript,
};
use crate::model::{ExportMeta, HostFinding};
use crate::text::one_line;

/// The XARF specification version the reports follow (that of xarf 1.0.0's schemas).
pub const XARF_VERSION: &str = "4.2.0";

/// Writes one report per finding, one per line.
pub fn write(
    findings: &[HostFinding],
    meta: &ExportMeta,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let generated = generated_at(meta)?;
    for f in findings {
        let mut r = report(f, meta);
        if !r.contains_key("timestamp") {
            r.insert("timestamp".into(), json!(rfc3339_z(generated)));
        }
        super::write_json_line(out, &Value::Object(r))?;
    }
    Ok(())
}

/// The report of one finding.
pub fn report(f: &HostFinding, meta: &ExportMeta) -> Map<String, Value> {
    let contact = json!({
        "org": one_line(&meta.reporter.org, 200),
        "contact": mail_address(&meta.reporter.from),
        "domain": one_line(&meta.reporter.domain, 253),
    });
    let cve = cve_upper(&f.cve);
    let source = parse_ip(&f.ip).map_or_else(|| one_line(&f.ip, 64), |ip| ip.to_string());
    let payload = transcript(f);

    let mut r = Map::new();
    r.insert("xarf_version".into(), json!(XARF_VERSION));
    r.insert("report_id".into(), json!(report_id(f).to_string()));
    if let Some(t) = parse_time(&f.last_seen) {
        r.insert("timestamp".into(), json!(rfc3339_z(t)));
    }
    r.insert("reporter".into(), contact.clone());
    r.insert("sender".into(), contact);
    r.insert("source_identifier".into(), json!(source));
    r.insert("category".into(), json!("vulnerability"));
    r.insert("type".into(), json!("cve"));
    if f.port > 0 {
        r.insert("source_port".into(), json!(f.port));
        r.insert("service_port".into(), json!(f.port));
    }
    r.insert("service".into(), json!("https"));
    if let Some(build) = &f.build {
        r.insert(
            "service_version".into(),
            json!(format!(
                "{} {}",
                one_line(&f.product, 32),
                one_line(build, 64)
            )),
        );
    }
    if let Some(cve) = &cve {
        r.insert("cve_id".into(), json!(cve));
    }
    r.insert("evidence_source".into(), json!("vulnerability_scan"));
    r.insert(
        "evidence".into(),
        json!([{
            "content_type": "text/plain",
            "description": evidence_description(f),
            "payload": STANDARD.encode(payload.as_bytes()),
            "hash": format!("sha256:{:x}", Sha256::digest(payload.as_bytes())),
            "size": payload.len(),
        }]),
    );
    r.insert(
        "description".into(),
        json!(one_line(&state_sentence(f), 900)),
    );
    let sev = severity(&f.state);
    match sev {
        "info" => {
            r.insert("severity".into(), json!("informational"));
        }
        "undefined" => {}
        _ => {
            r.insert("severity".into(), json!(sev));
        }
    }
    r.insert("tags".into(), json!(tags(f, meta, cve.as_deref())));
    r
}

/// A UUIDv4-shaped id from a hash of the finding: stable, yet what the schema wants.
fn report_id(f: &HostFinding) -> Uuid {
    let digest = Sha256::digest(format!("xarf|{}", finding_key(f)).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn evidence_description(f: &HostFinding) -> String {
    let what = match f.evidence.as_ref().and_then(|e| e.request_line.as_ref()) {
        Some(_) => "Probe request and response of the scan",
        None => "Scan observation (firmware build estimate)",
    };
    one_line(&format!("{what}: {}", f.state), 500)
}

/// `namespace:value` tags; values reduced to the schema's `[a-z0-9_+-]`.
fn tags(f: &HostFinding, meta: &ExportMeta, cve: Option<&str>) -> Vec<String> {
    let mut tags = vec![
        format!("tlp:{}", tlp2(meta.tlp)),
        "vendor:citrix".to_string(),
    ];
    let mut push = |ns: &str, value: &str| {
        if let Some(value) = tag_value(value) {
            tags.push(format!("{ns}:{value}"));
        }
    };
    push("product", &f.product);
    push("state", &f.state);
    push("basis", &f.basis);
    if let Some(cve) = cve {
        push("cve", cve);
    }
    if f.assume_compromise() {
        push("compromise", "assume");
    }
    tags
}

fn tag_value(value: &str) -> Option<String> {
    let v: String = value
        .trim()
        .to_lowercase()
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '+' | '-' => c,
            _ => '-',
        })
        .collect();
    let v = v.trim_start_matches(['_', '+', '-']).to_string();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Reporter;
    use wachter_constituency::org::Tlp;

    fn meta() -> ExportMeta {
        ExportMeta {
            reporter: Reporter {
                from: "Example CERT <cert@example.org>".into(),
                ..Reporter::default()
            },
            tlp: Tlp::AmberStrict,
            generated_at: "2026-01-01T12:00:00Z".into(),
        }
    }

    fn finding() -> HostFinding {
        HostFinding {
            finding_id: 1,
            ip: "192.0.2.10".into(),
            port: 443,
            product: "netscaler".into(),
            cve: "cve-2019-19781".into(),
            state: "mitigated".into(),
            basis: "probe".into(),
            vulnerable_since: Some("2025-12-01T00:00:00Z".into()),
            last_seen: "2026-01-01T10:00:00Z".into(),
            ..HostFinding::default()
        }
    }

    #[test]
    fn required_fields_and_tags() {
        let r = report(&finding(), &meta());
        assert_eq!(r["cve_id"], "CVE-2019-19781");
        assert_eq!(r["reporter"]["contact"], "cert@example.org");
        assert_eq!(r["timestamp"], "2026-01-01T10:00:00Z");
        assert_eq!(r["severity"], "high");
        let tags: Vec<&str> = r["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(tags.contains(&"tlp:amber+strict"));
        assert!(tags.contains(&"cve:cve-2019-19781"));
        assert!(tags.contains(&"compromise:assume"));
    }

    #[test]
    fn report_id_is_a_stable_v4() {
        let a = report_id(&finding());
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a, report_id(&finding()));
        let mut later = finding();
        later.last_seen = "2026-01-02T10:00:00Z".into();
        assert_ne!(a, report_id(&later));
    }

    #[test]
    fn evidence_hash_matches_payload() {
        let r = report(&finding(), &meta());
        let item = &r["evidence"][0];
        let payload = STANDARD.decode(item["payload"].as_str().unwrap()).unwrap();
        assert_eq!(item["size"], payload.len());
        assert_eq!(
            item["hash"],
            format!("sha256:{:x}", Sha256::digest(&payload))
        );
    }

    #[test]
    fn tag_values_are_reduced() {
        assert_eq!(
            tag_value("Net Scaler<script>").as_deref(),
            Some("net-scaler-script-")
        );
        assert_eq!(tag_value("--"), None);
    }
}
