//! One STIX 2.1 bundle: "host X shows vulnerability Y" as a `sighting` of the
//! `vulnerability`, backed by `observed-data` of the address, name and connection.
//!
//! TLP is marked with the TLP 2.0 marking-definitions of the OASIS extension, and their
//! objects travel in the bundle: `stix2` predefines only TLP 1.0, and a receiver that
//! does not know the extension can still read the label. SCO ids follow the STIX 2.1
//! deterministic-id rule so the same address is the same object across exports.

use std::io::Write;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    ExportError, cve_upper, distinct_cves, finding_key, generated_at, mail_address, parse_ip,
    parse_time, stable_uuid, state_sentence, transcript, valid_fqdn,
};
use crate::model::{ExportMeta, HostFinding};
use crate::text::{MAX_NAME, one_line};
use wachter_constituency::org::Tlp;

/// The OASIS TLP 2.0 extension-definition.
const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// STIX 2.1's namespace for deterministic SCO ids.
const SCO_NAMESPACE: Uuid = uuid::uuid!("00abedb4-aa42-466c-9c01-fed23315a9b7");

/// The TLP 2.0 marking-definition id and `tlp_2_0` value of a label.
pub fn tlp_marking(tlp: Tlp) -> (&'static str, &'static str) {
    match tlp {
        Tlp::Clear => (
            "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            "clear",
        ),
        Tlp::Green => (
            "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            "green",
        ),
        Tlp::Amber => (
            "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            "amber",
        ),
        Tlp::AmberStrict => (
            "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            "amber+strict",
        ),
        Tlp::Red => (
            "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
            "red",
        ),
    }
}

/// Writes the bundle.
pub fn write(
    findings: &[HostFinding],
    meta: &ExportMeta,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let bundle = bundle(findings, meta)?;
    serde_json::to_writer_pretty(&mut *out, &bundle)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The bundle of all `findings`.
pub fn bundle(findings: &[HostFinding], meta: &ExportMeta) -> Result<Value, ExportError> {
    let generated = generated_at(meta)?;
    let now = stix_time(generated);
    let (marking_id, marking_value) = tlp_marking(meta.tlp);
    let markings = json!([marking_id]);

    let identity_id = format!(
        "identity--{}",
        stable_uuid("stix-identity", &[&meta.reporter.domain])
    );
    let identity = json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id,
        "created": now,
        "modified": now,
        "name": one_line(&meta.reporter.org, MAX_NAME),
        "identity_class": "organization",
        "contact_information": mail_address(&meta.reporter.from),
        "object_marking_refs": markings,
    });

    let mut objects = vec![
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": marking_id,
            "created": "2022-10-01T00:00:00.000Z",
            "name": format!("TLP:{}", marking_value.to_ascii_uppercase()),
            "extensions": {
                TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": marking_value}
            },
        }),
        identity,
    ];

    let vuln_id = |cve: &str| {
        format!(
            "vulnerability--{}",
            stable_uuid("stix-vulnerability", &[cve])
        )
    };
    for cve in distinct_cves(findings) {
        let mut v = json!({
            "type": "vulnerability",
            "spec_version": "2.1",
            "id": vuln_id(&cve),
            "created": now,
            "modified": now,
            "created_by_ref": identity_id,
            "name": cve,
            "object_marking_refs": markings,
        });
        if cve_upper(&cve).is_some() {
            v["external_references"] = json!([{"source_name": "cve", "external_id": cve}]);
        }
        objects.push(v);
    }

    let mut seen_scos: Vec<String> = Vec::new();
    for f in findings {
        let cve = cve_upper(&f.cve).unwrap_or_else(|| one_line(&f.cve, 64));
        let key = finding_key(f);
        let last = parse_time(&f.last_seen).unwrap_or(generated);
        let first = parse_time(&f.first_seen).unwrap_or(last).min(last);
        let (first, last) = (stix_time(first), stix_time(last));

        let mut refs = Vec::new();
        let mut scos = Vec::new();
        let ip_id = parse_ip(&f.ip).map(|ip| {
            let kind = if ip.is_ipv4() {
                "ipv4-addr"
            } else {
                "ipv6-addr"
            };
            let value = ip.to_string();
            let id = sco_id(kind, &json!({"value": value}));
            scos.push(json!({
                "type": kind, "spec_version": "2.1", "id": id, "value": value,
                "object_marking_refs": markings,
            }));
            refs.push(id.clone());
            id
        });
        if let Some(name) = valid_fqdn(&f.hostname) {
            let id = sco_id("domain-name", &json!({"value": name}));
            let mut d = json!({
                "type": "domain-name", "spec_version": "2.1", "id": id, "value": name,
                "object_marking_refs": markings,
            });
            if let Some(ip_id) = &ip_id {
                d["resolves_to_refs"] = json!([ip_id]);
            }
            scos.push(d);
            refs.push(id);
        }
        if let Some(ip_id) = &ip_id {
            // Keys in sorted order: the id hashes them canonically (RFC 8785).
            let mut contributing = Map::new();
            if f.port > 0 {
                contributing.insert("dst_port".into(), json!(f.port));
            }
            contributing.insert("dst_ref".into(), json!(ip_id));
            contributing.insert("protocols".into(), json!(["tcp", "tls", "http"]));
            let id = sco_id("network-traffic", &Value::Object(contributing.clone()));
            let mut nt = json!({"type": "network-traffic", "spec_version": "2.1", "id": id});
            if let Value::Object(nt) = &mut nt {
                nt.extend(contributing);
                nt.insert("object_marking_refs".into(), markings.clone());
            }
            scos.push(nt);
            refs.push(id);
        }
        for sco in scos {
            let id = sco["id"].as_str().unwrap_or_default().to_string();
            if !seen_scos.contains(&id) {
                seen_scos.push(id);
                objects.push(sco);
            }
        }

        let observed_id = format!(
            "observed-data--{}",
            stable_uuid("stix-observed-data", &[&key])
        );
        if !refs.is_empty() {
            objects.push(json!({
                "type": "observed-data",
                "spec_version": "2.1",
                "id": observed_id,
                "created": now,
                "modified": now,
                "created_by_ref": identity_id,
                "first_observed": first,
                "last_observed": last,
                "number_observed": 1,
                "object_refs": refs,
                "object_marking_refs": markings,
            }));
        }
        let mut sighting = json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": format!("sighting--{}", stable_uuid("stix-sighting", &[&key])),
            "created": now,
            "modified": now,
            "created_by_ref": identity_id,
            "first_seen": first,
            "last_seen": last,
            "count": 1,
            "sighting_of_ref": vuln_id(&cve),
            "where_sighted_refs": [identity_id],
            "description": format!("{}\n\n{}", state_sentence(f), transcript(f)),
            "confidence": if matches!(f.basis.as_str(), "probe" | "both") { 95 } else { 70 },
            "object_marking_refs": markings,
        });
        if !refs.is_empty() {
            sighting["observed_data_refs"] = json!([observed_id]);
        }
        objects.push(sighting);
    }

    let keys: Vec<String> = findings.iter().map(finding_key).collect();
    let mut id_parts: Vec<&str> = vec![&meta.generated_at];
    id_parts.extend(keys.iter().map(String::as_str));
    Ok(json!({
        "type": "bundle",
        "id": format!("bundle--{}", stable_uuid("stix-bundle", &id_parts)),
        "objects": objects,
    }))
}

/// `kind--UUIDv5(SCO namespace, canonical JSON of the id-contributing properties)`.
fn sco_id(kind: &str, contributing: &Value) -> String {
    // serde_json's compact form of sorted keys is RFC 8785 canonical for strings and
    // integers, the only values contributing here.
    let canonical = contributing.to_string();
    format!(
        "{kind}--{}",
        Uuid::new_v5(&SCO_NAMESPACE, canonical.as_bytes())
    )
}

fn stix_time(t: OffsetDateTime) -> String {
    let mut s = super::rfc3339_z(t);
    s.truncate(19);
    s.push_str(".000Z");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(tlp: Tlp) -> ExportMeta {
        crate::export::test_meta(tlp)
    }

    #[test]
    fn sco_ids_are_deterministic_per_stix() {
        // The value stix2 3.0.2 computes for IPv4Address(value="192.0.2.1").
        assert_eq!(
            sco_id("ipv4-addr", &json!({"value": "192.0.2.1"})),
            "ipv4-addr--8dded90c-40c0-545a-8027-5b212bb37e8e"
        );
    }

    #[test]
    fn tlp_2_markings() {
        let f = HostFinding {
            ip: "192.0.2.1".into(),
            port: 443,
            hostname: "<script>".into(),
            cve: "CVE-2019-19781".into(),
            last_seen: "2026-01-01T10:00:00Z".into(),
            ..HostFinding::default()
        };
        let b = bundle(&[f], &meta(Tlp::Amber)).unwrap();
        let objects = b["objects"].as_array().unwrap();
        assert_eq!(
            objects[0]["id"],
            "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
        );
        assert!(objects.iter().all(|o| o["type"] != "domain-name"));
        let sighting = objects.iter().find(|o| o["type"] == "sighting").unwrap();
        assert_eq!(
            sighting["object_marking_refs"][0],
            "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
        );
        assert_eq!(tlp_marking(Tlp::AmberStrict).1, "amber+strict");
    }
}
