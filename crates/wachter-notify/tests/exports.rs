//! Every export, read back by the code of the project that owns its format: IntelMQ's
//! JSON parser bot, the `xarf` validator, OASIS `stix2`, PyMISP, and IntelMQ's
//! Shadowserver helpers (`tests/interop/validate_*.py`). The scripts print what the
//! owner's code understood; the tests assert on that, not just on a zero exit.
//!
//! Needs `CI_INTEROP_PYTHON` (see `.ci/interop-python`); skipped without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use wachter_constituency::org::Tlp;
use wachter_notify::export::{self, Format};
use wachter_notify::testing::{interop_python, interop_scripts};
use wachter_notify::{Evidence, ExportMeta, HostFinding, Owner, Reporter};

const HOSTILE_PREFIX: &str = "evil.example\r\nBcc: victim@example.org<script>alert(1)</script>";

fn meta(tlp: Tlp) -> ExportMeta {
    ExportMeta {
        reporter: Reporter {
            org: "Example CERT".into(),
            from: "Example CERT <cert@example.org>".into(),
            reply_to: None,
            domain: "example.org".into(),
            url: Some("https://cert.example.org/netscaler".into()),
            ticket_prefix: "WACHTER".into(),
        },
        tlp,
        generated_at: "2026-01-02T08:00:00Z".into(),
    }
}

fn owner() -> Owner {
    Owner {
        organisation: Some("Gemeente Voorbeeld".into()),
        sector: Some("government".into()),
        asn: Some(64496),
        holder: Some("EXAMPLE-AS Example Networks B.V.".into()),
        country: Some("NL".into()),
        network: Some("192.0.2.0/24".into()),
        abuse_contacts: vec!["abuse@example.nl".into()],
    }
}

/// A vulnerable host with probe evidence, one mitigated late, a version-only IPv6 host,
/// a second CVE on the first host, and a host whose every string is hostile.
fn findings() -> Vec<HostFinding> {
    let vulnerable = HostFinding {
        finding_id: 101,
        ip: "192.0.2.10".into(),
        port: 443,
        hostname: "vpn.example.nl".into(),
        cert_names: vec!["vpn.example.nl".into(), "*.example.nl".into()],
        product: "netscaler".into(),
        build: Some("13.0-47.22".into()),
        cve: "CVE-2019-19781".into(),
        state: "vulnerable".into(),
        basis: "probe".into(),
        detail: "the path traversal returned smb.conf".into(),
        first_seen: "2026-01-01T09:00:00Z".into(),
        last_seen: "2026-01-02T07:30:00Z".into(),
        vulnerable_since: Some("2026-01-01T09:00:00Z".into()),
        evidence: Some(Evidence {
            summary: "smb.conf served through /vpn/../vpns/".into(),
            request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1".into()),
            status_line: Some("HTTP/1.1 200 OK".into()),
            excerpt: Some("[global]⏎\\tencrypt passwords = yes".into()),
            url: Some("https://192.0.2.10:443/vpn/../vpns/cfg/smb.conf".into()),
            observed_at: "2026-01-02T07:30:00Z".into(),
        }),
        owner: owner(),
    };
    let mitigated_late = HostFinding {
        finding_id: 102,
        ip: "198.51.100.7".into(),
        port: 443,
        hostname: "gateway.example.org".into(),
        cert_names: vec!["gateway.example.org".into()],
        product: "netscaler".into(),
        build: Some("13.0-47.22".into()),
        cve: "CVE-2019-19781".into(),
        state: "mitigated".into(),
        basis: "probe".into(),
        detail: "the responder policy answers 403".into(),
        first_seen: "2025-12-20T10:00:00Z".into(),
        last_seen: "2026-01-02T07:31:00Z".into(),
        vulnerable_since: Some("2025-12-20T10:00:00Z".into()),
        evidence: Some(Evidence {
            summary: "403 from the responder policy".into(),
            request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1".into()),
            status_line: Some("HTTP/1.1 403 Forbidden".into()),
            excerpt: None,
            url: Some("https://198.51.100.7:443/vpn/../vpns/cfg/smb.conf".into()),
            observed_at: "2026-01-02T07:31:00Z".into(),
        }),
        owner: Owner {
            network: Some("198.51.100.0/24".into()),
            ..owner()
        },
    };
    let version_only = HostFinding {
        finding_id: 103,
        ip: "2001:db8::10".into(),
        port: 443,
        product: "netscaler".into(),
        build: Some("12.1-50.28".into()),
        cve: "CVE-2019-19781".into(),
        state: "vulnerable".into(),
        basis: "version".into(),
        detail: "build 12.1-50.28 is before the fix".into(),
        first_seen: "2026-01-02T07:32:00Z".into(),
        last_seen: "2026-01-02T07:32:00Z".into(),
        evidence: Some(Evidence {
            summary: "build estimated from the login page's resource hash".into(),
            observed_at: "2026-01-02T07:32:00Z".into(),
            ..Evidence::default()
        }),
        owner: Owner {
            network: Some("2001:db8::/32".into()),
            ..owner()
        },
        ..HostFinding::default()
    };
    let second_cve = HostFinding {
        finding_id: 104,
        cve: "CVE-2023-3519".into(),
        basis: "version".into(),
        detail: "build 13.0-47.22 is before the fix".into(),
        evidence: None,
        vulnerable_since: None,
        ..vulnerable.clone()
    };
    let hostile = HostFinding {
        finding_id: 105,
        ip: "203.0.113.5".into(),
        port: 8443,
        hostname: format!("{HOSTILE_PREFIX}{}", "x".repeat(10_000)),
        cert_names: vec![
            "<script>alert('x')</script>".into(),
            "name\u{fffd}\u{fffd}.example".into(),
            "=cmd|' /C calc'!A0".into(),
            "line\u{2028}break\u{85}here.example".into(),
        ],
        product: "netscaler".into(),
        build: None,
        cve: "CVE-2019-19781".into(),
        state: "vulnerable".into(),
        basis: "probe".into(),
        detail: "quote \" and CR\r\nLF, <b>bold</b>, @SUM(1+1)".into(),
        first_seen: "2026-01-02T07:33:00Z".into(),
        last_seen: "2026-01-02T07:33:00Z".into(),
        vulnerable_since: Some("2026-01-02T07:33:00Z".into()),
        evidence: Some(Evidence {
            summary: "-2+3".into(),
            request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1".into()),
            status_line: Some("HTTP/1.1 200 \"OK\"\r\nSet-Cookie: x".into()),
            excerpt: Some("\\x00\\xff</textarea>\u{2029}\u{fffd}".into()),
            url: Some("https://203.0.113.5:8443/vpn/../vpns/cfg/smb.conf".into()),
            observed_at: "2026-01-02T07:33:00Z".into(),
        }),
        owner: Owner {
            organisation: Some("Org\r\nInjected: yes".into()),
            sector: Some("=1+1".into()),
            asn: Some(64511),
            holder: Some("AS\r\nHOLDER <x>".into()),
            country: Some("nl".into()),
            network: Some("203.0.113.0 - 203.0.113.255".into()),
            abuse_contacts: vec!["ABUSE@Example.COM".into(), "evil,@x\r\n".into()],
        },
    };
    vec![
        vulnerable,
        mitigated_late,
        version_only,
        second_cve,
        hostile,
    ]
}

fn render(format: Format, tlp: Tlp) -> Vec<u8> {
    let mut out = Vec::new();
    export::write(format, &findings(), &meta(tlp), &mut out).unwrap();
    out
}

/// A fresh folder for this test's files.
fn scratch(name: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "wachter-exports-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tests/interop/<script>` on `file`; asserts it succeeded and returns its summary.
fn validate(python: &Path, script: &str, file: &Path) -> Value {
    let output = Command::new(python)
        .arg(interop_scripts().join(script))
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script} printed {stdout:?}: {e}"))
}

/// Exports `format` at `tlp` into a scratch file and runs `script` on it.
fn check(format: Format, tlp: Tlp, script: &str) -> Option<Value> {
    let python = interop_python()?;
    let dir = scratch(format.as_str());
    let file = dir.join(format!("export.{}", format.extension()));
    std::fs::write(&file, render(format, tlp)).unwrap();
    let summary = validate(&python, script, &file);
    assert_eq!(summary["ok"], true, "{summary:#}");
    std::fs::remove_dir_all(&dir).unwrap();
    Some(summary)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn intelmq_json_parser_accepts_every_event() {
    let Some(s) = check(Format::Intelmq, Tlp::Amber, "validate_intelmq.py") else {
        return;
    };
    assert_eq!(s["events"], 5);
    assert_eq!(s["errors"], 0);
    let events = s["shown"].as_array().unwrap();
    let first = &events[0];
    assert_eq!(first["source.ip"], "192.0.2.10");
    assert_eq!(first["source.port"], 443);
    assert_eq!(first["source.fqdn"], "vpn.example.nl");
    assert_eq!(first["source.network"], "192.0.2.0/24");
    assert_eq!(first["tlp"], "AMBER");
    assert_eq!(first["classification.type"], "vulnerable-system");
    assert_eq!(first["classification.identifier"], "cve-2019-19781");
    assert_eq!(first["product.vulnerabilities"], "cve-2019-19781");
    assert_eq!(first["product.version"], "13.0-47.22");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["time.source"], "2026-01-02T07:30:00+00:00");
    assert_eq!(first["feed.provider"], "Example CERT");
    assert_eq!(events[1]["severity"], "high");
    assert_eq!(events[2]["source.ip"], "2001:db8::10");
    assert_eq!(events[3]["product.vulnerabilities"], "cve-2023-3519");
    let hostile = &events[4];
    assert!(hostile.get("source.fqdn").is_none());
    assert!(hostile.get("source.network").is_none());
    assert_eq!(hostile["source.abuse_contact"], "abuse@example.com");
    let kept = hostile["extra.hostname"].as_str().unwrap();
    assert!(kept.starts_with("evil.example Bcc: victim@example.org<script>"));
    assert!(kept.chars().count() <= 256);
}

#[test]
fn intelmq_takes_tlp_clear_as_white_and_amber_strict_as_amber() {
    for (tlp, label, tlp2) in [
        (Tlp::Clear, "WHITE", "clear"),
        (Tlp::AmberStrict, "AMBER", "amber+strict"),
    ] {
        let Some(s) = check(Format::Intelmq, tlp, "validate_intelmq.py") else {
            return;
        };
        assert_eq!(s["events"], 5);
        assert_eq!(s["shown"][0]["tlp"], label);
        assert_eq!(s["shown"][0]["extra.tlp_2_0"], tlp2);
    }
}

#[test]
fn shadowserver_csv_reads_as_scan_http_vulnerable() {
    let Some(s) = check(Format::Shadowserver, Tlp::Amber, "validate_shadowserver.py") else {
        return;
    };
    assert_eq!(s["rows"], 5);
    let events = s["events"].as_array().unwrap();
    let first = &events[0];
    assert_eq!(first["time.source"], "2026-01-02T07:30:00+00:00");
    assert_eq!(first["source.ip"], "192.0.2.10");
    assert_eq!(first["source.reverse_dns"], "vpn.example.nl");
    assert_eq!(first["product.vulnerabilities"], "cve-2019-19781");
    assert_eq!(first["extra.tag"], "citrix;netscaler;cve-2019-19781");
    assert_eq!(first["extra.http_code"], "200");
    assert_eq!(first["extra.build_branch"], "13.0");
    assert_eq!(first["source.geolocation.cc"], "NL");
    assert_eq!(events[1]["extra.http_code"], "403");
    assert_eq!(events[2]["source.ip"], "2001:db8::10");
    assert_eq!(events[3]["product.vulnerabilities"], "cve-2023-3519");
    let hostile = &events[4];
    assert!(hostile.get("source.reverse_dns").is_none());
    assert_eq!(hostile["extra.sector"], "'=1+1");
    assert_eq!(hostile["extra.http_code"], "200");
    assert_eq!(hostile["extra.http_reason"], "\"OK\" Set-Cookie: x");
    assert!(
        hostile["extra.hostname"]
            .as_str()
            .unwrap()
            .starts_with("evil.example Bcc:")
    );
}

#[test]
fn xarf_validator_accepts_every_report() {
    let Some(s) = check(Format::Xarf, Tlp::Amber, "validate_xarf.py") else {
        return;
    };
    assert_eq!(s["reports"], 5);
    let reports = s["parsed"].as_array().unwrap();
    let first = &reports[0];
    assert_eq!(first["category"], "vulnerability");
    assert_eq!(first["type"], "cve");
    assert_eq!(first["source_identifier"], "192.0.2.10");
    assert_eq!(first["cve_id"], "CVE-2019-19781");
    assert_eq!(first["service_port"], 443);
    assert_eq!(first["evidence"], 1);
    let tags = strings(&first["tags"]);
    for tag in [
        "tlp:amber",
        "product:netscaler",
        "state:vulnerable",
        "cve:cve-2019-19781",
    ] {
        assert!(tags.contains(&tag.to_string()), "{tags:?}");
    }
    let transcript = first["transcript"].as_str().unwrap();
    assert!(transcript.contains("> GET /vpn/../vpns/cfg/smb.conf HTTP/1.1"));
    assert!(transcript.contains("< HTTP/1.1 200 OK"));
    assert!(transcript.contains("[global]⏎\\tencrypt passwords = yes"));
    assert!(strings(&reports[1]["tags"]).contains(&"compromise:assume".to_string()));
    assert_eq!(reports[2]["source_identifier"], "2001:db8::10");
    assert_eq!(reports[3]["cve_id"], "CVE-2023-3519");
    assert_eq!(reports[4]["service_port"], 8443);
}

#[test]
fn stix2_parses_the_bundle() {
    let Some(s) = check(Format::Stix, Tlp::Amber, "validate_stix.py") else {
        return;
    };
    let counts = &s["counts"];
    assert_eq!(counts["marking-definition"], 1);
    assert_eq!(counts["identity"], 1);
    assert_eq!(counts["vulnerability"], 2);
    assert_eq!(counts["sighting"], 5);
    assert_eq!(counts["observed-data"], 5);
    assert_eq!(
        counts["ipv4-addr"], 3,
        "the address of two findings is one object"
    );
    assert_eq!(counts["ipv6-addr"], 1);
    assert_eq!(
        counts["domain-name"], 2,
        "the hostile name is no domain-name"
    );
    assert_eq!(counts["network-traffic"], 4);
    assert_eq!(
        s["markings"][0]["id"],
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    );
    assert_eq!(s["markings"][0]["tlp_2_0"], "amber");
    assert_eq!(
        strings(&s["vulnerabilities"]),
        ["CVE-2019-19781", "CVE-2023-3519"]
    );
    assert_eq!(
        strings(&s["domains"]),
        ["vpn.example.nl", "gateway.example.org"]
    );
    let sighting = &s["sightings"][0];
    assert_eq!(sighting["count"], 1);
    assert!(
        sighting["state"]
            .as_str()
            .unwrap()
            .starts_with("CVE-2019-19781 vulnerable on 192.0.2.10:443")
    );
}

#[test]
fn stix2_takes_the_amber_strict_marking() {
    let Some(s) = check(Format::Stix, Tlp::AmberStrict, "validate_stix.py") else {
        return;
    };
    assert_eq!(
        s["markings"][0]["id"],
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    );
    assert_eq!(s["markings"][0]["tlp_2_0"], "amber+strict");
}

#[test]
fn pymisp_loads_and_round_trips_the_event() {
    let Some(s) = check(Format::Misp, Tlp::AmberStrict, "validate_misp.py") else {
        return;
    };
    assert_eq!(
        s["info"],
        "wachter: CVE-2019-19781, CVE-2023-3519 – 5 hosts"
    );
    assert_eq!(s["distribution"], 0);
    assert_eq!(s["threat_level_id"], 1);
    assert_eq!(strings(&s["tags"]), ["tlp:amber+strict"]);
    let attributes = s["attributes"].as_array().unwrap();
    assert_eq!(attributes.len(), 2);
    assert_eq!(attributes[0]["type"], "vulnerability");
    assert_eq!(attributes[0]["value"], "CVE-2019-19781");
    assert_eq!(s["objects"], 5);
    assert_eq!(strings(&s["object_names"]), ["ip-port"]);
    assert_eq!(
        strings(&s["ips"]),
        [
            "192.0.2.10",
            "198.51.100.7",
            "2001:db8::10",
            "192.0.2.10",
            "203.0.113.5"
        ]
    );
    assert_eq!(
        strings(&s["hostnames"]),
        ["vpn.example.nl", "gateway.example.org", "vpn.example.nl"]
    );
    assert!(strings(&s["references"]).iter().all(|r| r == "affected-by"));
}

#[test]
fn exports_are_deterministic_and_hostile_strings_stay_contained() {
    for format in Format::ALL {
        let a = render(format, Tlp::Amber);
        assert_eq!(a, render(format, Tlp::Amber), "{format}");
        let text = String::from_utf8(a).unwrap();
        assert!(
            !text.contains('\u{2028}') && !text.contains('\u{85}'),
            "{format}"
        );
        assert!(
            !text.contains(&"x".repeat(300)),
            "{format}: long name not cut"
        );
        match format {
            Format::Intelmq | Format::Xarf => {
                assert_eq!(text.lines().count(), 5, "{format}");
                for line in text.lines() {
                    serde_json::from_str::<Value>(line).unwrap();
                }
            }
            Format::Misp | Format::Stix => {
                serde_json::from_str::<Value>(&text).unwrap();
            }
            Format::Shadowserver => {
                assert_eq!(text.lines().count(), 6, "a cell spans lines");
                assert!(!text.contains('\r'));
            }
        }
    }
}
