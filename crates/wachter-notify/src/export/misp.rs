//! One MISP event for the whole export: a `vulnerability` attribute per CVE and an
//! `ip-port` object per finding, referencing the CVE it is `affected-by`.
//!
//! Distribution is "your organisation only" (0): what an analyst imports is shared
//! further by decision, not by default. TLP goes in as a tag of MISP's `tlp` taxonomy,
//! which knows TLP 2.0.

use std::io::Write;

use serde_json::{Value, json};

use super::{
    ExportError, cve_upper, distinct_cves, finding_key, generated_at, parse_ip, parse_time,
    rfc3339_utc, stable_uuid, state_sentence, tlp2, transcript, valid_fqdn,
};
use crate::model::{ExportMeta, HostFinding};
use crate::text::{MAX_NAME, one_line};

/// pymisp's `ip-port` object template (uuid and version of the shipped definition).
const IP_PORT_TEMPLATE: (&str, &str) = ("9f8cea74-16fe-4968-a2b4-026676949ac6", "10");

/// Writes the event as `{"Event": {...}}`.
pub fn write(
    findings: &[HostFinding],
    meta: &ExportMeta,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let event = event(findings, meta)?;
    serde_json::to_writer_pretty(&mut *out, &event)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The event of all `findings`.
pub fn event(findings: &[HostFinding], meta: &ExportMeta) -> Result<Value, ExportError> {
    let generated = generated_at(meta)?;
    let cves = distinct_cves(findings);
    let keys: Vec<String> = findings.iter().map(finding_key).collect();
    let mut id_parts: Vec<&str> = vec![&meta.generated_at];
    id_parts.extend(keys.iter().map(String::as_str));
    let event_uuid = stable_uuid("misp-event", &id_parts);

    let vuln_uuid = |cve: &str| stable_uuid("misp-vulnerability", &[&event_uuid.to_string(), cve]);
    let attributes: Vec<Value> = cves
        .iter()
        .map(|cve| {
            json!({
                "uuid": vuln_uuid(cve).to_string(),
                "type": "vulnerability",
                "category": "External analysis",
                "value": cve,
                "to_ids": false,
                "distribution": "5",
                "comment": "Found by wachter's scan",
            })
        })
        .collect();

    let objects: Vec<Value> = findings
        .iter()
        .map(|f| {
            let cve = cve_upper(&f.cve).unwrap_or_else(|| one_line(&f.cve, 64));
            object(f, &event_uuid.to_string(), &vuln_uuid(&cve).to_string())
        })
        .collect();

    let hosts = findings.len();
    let info = format!(
        "wachter: {} – {hosts} host{}",
        if cves.is_empty() {
            "no findings".to_string()
        } else {
            cves.join(", ")
        },
        if hosts == 1 { "" } else { "s" }
    );
    let compromise = findings.iter().any(HostFinding::assume_compromise);
    let tags = vec![json!({"name": format!("tlp:{}", tlp2(meta.tlp))})];
    let date = format!(
        "{:04}-{:02}-{:02}",
        generated.year(),
        u8::from(generated.month()),
        generated.day()
    );
    Ok(json!({"Event": {
        "uuid": event_uuid.to_string(),
        "info": info,
        "date": date,
        "timestamp": generated.unix_timestamp().to_string(),
        "published": false,
        // 1 high: someone must assume compromise; 2 medium otherwise.
        "threat_level_id": if compromise { "1" } else { "2" },
        // 2 completed: the scan's analysis is done.
        "analysis": "2",
        "distribution": "0",
        "Orgc": {
            "name": one_line(&meta.reporter.org, MAX_NAME),
            "uuid": stable_uuid("misp-org", &[&meta.reporter.domain]).to_string(),
        },
        "Tag": tags,
        "Attribute": attributes,
        "Object": objects,
    }}))
}

/// The `ip-port` object of one finding.
fn object(f: &HostFinding, event_uuid: &str, vuln_uuid: &str) -> Value {
    let key = finding_key(f);
    let object_uuid = stable_uuid("misp-object", &[event_uuid, &key]);
    let mut attrs = Vec::new();
    let mut add = |relation: &str, kind: &str, category: &str, value: String| {
        if value.is_empty() {
            return;
        }
        let uuid = stable_uuid(
            "misp-object-attribute",
            &[&object_uuid.to_string(), relation],
        );
        attrs.push(json!({
            "uuid": uuid.to_string(),
            "object_relation": relation,
            "type": kind,
            "category": category,
            "value": value,
            "to_ids": false,
            "disable_correlation": false,
        }));
    };
    let ip = parse_ip(&f.ip).map(|ip| ip.to_string()).unwrap_or_default();
    add("ip", "ip-dst", "Network activity", ip);
    if f.port > 0 {
        add("dst-port", "port", "Network activity", f.port.to_string());
    }
    add("protocol", "text", "Network activity", "tcp".into());
    if let Some(host) = valid_fqdn(&f.hostname) {
        add("hostname", "hostname", "Network activity", host);
    }
    if let Some(t) = parse_time(&f.first_seen) {
        add("first-seen", "datetime", "Other", rfc3339_utc(t));
    }
    if let Some(t) = parse_time(&f.last_seen) {
        add("last-seen", "datetime", "Other", rfc3339_utc(t));
    }
    if let Some(asn) = f.owner.asn.filter(|&a| a > 0) {
        add("AS", "AS", "Network activity", asn.to_string());
    }
    if let Some(cc) = &f.owner.country {
        let cc = cc.trim().to_ascii_uppercase();
        if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_alphabetic()) {
            add("country-code", "text", "Network activity", cc);
        }
    }
    add("text", "text", "Other", text(f));

    json!({
        "uuid": object_uuid.to_string(),
        "name": "ip-port",
        "meta-category": "network",
        "description": "An IP address (or domain or hostname) and a port seen as a tuple (or as a triple) in a specific time frame.",
        "template_uuid": IP_PORT_TEMPLATE.0,
        "template_version": IP_PORT_TEMPLATE.1,
        "distribution": "5",
        "comment": one_line(&state_sentence(f), 1000),
        "Attribute": attrs,
        "ObjectReference": [{
            "uuid": stable_uuid("misp-reference", &[&object_uuid.to_string(), vuln_uuid]).to_string(),
            "object_uuid": object_uuid.to_string(),
            "referenced_uuid": vuln_uuid,
            "relationship_type": "affected-by",
        }],
    })
}

/// State, names and evidence as text; the names a scanned server chose are quoted here,
/// one line each, rather than as `hostname` attributes MISP would correlate on.
fn text(f: &HostFinding) -> String {
    let mut t = transcript(f);
    if !f.hostname.is_empty() && valid_fqdn(&f.hostname).is_none() {
        t.push_str(&format!(
            "scanned name: {}\n",
            one_line(&f.hostname, MAX_NAME)
        ));
    }
    for name in &f.cert_names {
        t.push_str(&format!("certificate name: {}\n", one_line(name, MAX_NAME)));
    }
    if let Some(org) = &f.owner.organisation {
        t.push_str(&format!("organisation: {}\n", one_line(org, MAX_NAME)));
    }
    if let Some(since) = &f.vulnerable_since {
        t.push_str(&format!("vulnerable since: {}\n", one_line(since, 64)));
    }
    if f.assume_compromise() {
        t.push_str("assume compromise: yes\n");
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use wachter_constituency::org::Tlp;

    fn meta(tlp: Tlp) -> ExportMeta {
        crate::export::test_meta(tlp)
    }

    fn finding(ip: &str, cve: &str, hostname: &str) -> HostFinding {
        HostFinding {
            ip: ip.into(),
            port: 443,
            hostname: hostname.into(),
            cve: cve.into(),
            state: "vulnerable".into(),
            last_seen: "2026-01-01T10:00:00Z".into(),
            ..HostFinding::default()
        }
    }

    #[test]
    fn one_attribute_per_cve_one_object_per_finding() {
        let findings = [
            finding("192.0.2.10", "CVE-2019-19781", "vpn.example.nl"),
            finding("192.0.2.11", "CVE-2019-19781", "bad\r\nname"),
            finding("2001:db8::1", "CVE-2023-3519", ""),
        ];
        let e = event(&findings, &meta(Tlp::AmberStrict)).unwrap();
        let e = &e["Event"];
        assert_eq!(e["Attribute"].as_array().unwrap().len(), 2);
        assert_eq!(e["Object"].as_array().unwrap().len(), 3);
        assert_eq!(e["Tag"][0]["name"], "tlp:amber+strict");
        assert_eq!(
            e["info"],
            "wachter: CVE-2019-19781, CVE-2023-3519 – 3 hosts"
        );
        let relations = |i: usize| -> Vec<String> {
            e["Object"][i]["Attribute"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["object_relation"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(relations(0).contains(&"hostname".to_string()));
        assert!(!relations(1).contains(&"hostname".to_string()));
        assert_eq!(
            e["Object"][2]["ObjectReference"][0]["referenced_uuid"],
            e["Attribute"][1]["uuid"]
        );
    }

    #[test]
    fn deterministic() {
        let findings = [finding("192.0.2.10", "CVE-2019-19781", "")];
        assert_eq!(
            event(&findings, &meta(Tlp::Clear)).unwrap(),
            event(&findings, &meta(Tlp::Clear)).unwrap()
        );
    }
}
