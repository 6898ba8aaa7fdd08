//! Hostile names and evidence through the whole path: a campaign planned, every message
//! composed in English and Dutch, and the result read back by Python's own e-mail parser.
//! Scanned hostnames and certificate names hold CR/LF, HTML, megabytes and replacement
//! characters; none of it may add a header, break the markup or stop the campaign.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

use time::OffsetDateTime;
use wachter_constituency::org::{Contact, ContactRole, ContactSource, Tlp};
use wachter_notify::campaign::{self, Candidate, Policy, Recipient};
use wachter_notify::compose::Composer;
use wachter_notify::template::Templates;
use wachter_notify::testing::{interop_python, interop_scripts};
use wachter_notify::{Evidence, HostFinding, Owner, Reporter};

const INJECTION: &str =
    "vpn.example.nl\r\nBcc: victim@example.org\r\n\r\n<script>alert(1)</script>";

fn hostile(id: i64, ip: &str, state: &str) -> HostFinding {
    HostFinding {
        finding_id: id,
        ip: ip.into(),
        port: 443,
        hostname: INJECTION.into(),
        cert_names: vec![
            "<img src=x onerror=alert(1)>".into(),
            "x".repeat(10_000),
            "caf\u{fffd}\u{fffd}.example.nl\u{2028}Subject: spoofed".into(),
        ],
        product: "netscaler".into(),
        build: Some("13.0-47.22\r\nX-Evil: 1".into()),
        cve: "CVE-2019-19781".into(),
        state: state.into(),
        basis: "both".into(),
        detail: "exposed\r\n.\r\nMAIL FROM:<evil@example.org>".into(),
        first_seen: "2020-01-13T09:00:00Z".into(),
        last_seen: "2020-01-20T09:00:00Z".into(),
        vulnerable_since: Some("2020-01-13T09:00:00Z".into()),
        evidence: Some(Evidence {
            summary: "P1 returned smb.conf</td></tr></table><script>x</script>".into(),
            request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\nHost: evil".into()),
            status_line: Some("HTTP/1.1 200 <b>OK</b>".into()),
            excerpt: Some("[global]⏎\\x00\\xff".into()),
            url: Some("javascript:alert(1)".into()),
            observed_at: "2020-01-20T09:00:00Z".into(),
        }),
        owner: Owner::default(),
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wachter-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hostile_names_never_inject_a_header_break_markup_or_abort_a_campaign() {
    let organisations = HashMap::from([(
        1,
        Recipient {
            name: "Ziekenhuis \"Oost\" <b>&</b>\r\nBcc: x@y.test".into(),
            sector: Some("healthcare".into()),
            contacts: vec![
                Contact {
                    email: "soc@zho.test".into(),
                    role: ContactRole::Security,
                    language: None,
                    name: Some("SOC\r\nBcc: victim@example.org".into()),
                    source: ContactSource::Manual,
                },
                Contact {
                    email: "beveiliging@zho.test\r\nBcc: victim@example.org".into(),
                    role: ContactRole::Security,
                    language: Some("nl".into()),
                    name: None,
                    source: ContactSource::Manual,
                },
            ],
        },
    )]);
    let candidates: Vec<Candidate> = [
        (1, "192.0.2.10", "vulnerable"),
        (2, "192.0.2.11", "mitigated"),
    ]
    .into_iter()
    .map(|(id, ip, state)| Candidate {
        finding: hostile(id, ip, state),
        organisation_id: Some(1),
        ..Default::default()
    })
    .collect();
    let now = OffsetDateTime::now_utc();
    let policy = Policy {
        now,
        repeat_after: time::Duration::days(7),
        do_not_contact: Vec::new(),
        suppress: Vec::new(),
        escalation: BTreeMap::new(),
        escalate_from_round: 2,
        default_language: "en".into(),
    };
    let plan = campaign::plan(&candidates, &organisations, &policy);
    assert_eq!(plan.messages.len(), 1);
    assert_eq!(plan.messages[0].findings.len(), 2);
    // The address with a line break is reported, not used and not silently dropped.
    assert_eq!(
        plan.unusable_contacts.len(),
        1,
        "{:?}",
        plan.unusable_contacts
    );
    assert!(!plan.unusable_contacts[0].contains('\n'));

    let templates = Templates::builtin();
    let reporter = Reporter {
        org: "Test CERT".into(),
        from: "Test CERT <cert@test-cert.test>".into(),
        reply_to: None,
        domain: "test-cert.test".into(),
        url: Some("https://test-cert.test/case".into()),
        ticket_prefix: "WACHTER".into(),
    };
    let composer = Composer {
        templates: &templates,
        reporter: &reporter,
        tlp: Tlp::AmberStrict,
        campaign: "hostile",
        cve: "CVE-2019-19781",
        now,
    };
    let dir = scratch();
    for language in ["en", "nl"] {
        let mut message = plan.messages[0].clone();
        message.language = language.into();
        let composed = composer.compose("WACHTER-10000001", &message).unwrap();
        assert_eq!(composed.built.recipients, vec!["soc@zho.test"]);
        assert!(!composed.subject.contains(['\r', '\n']));
        assert!(
            !composed.html.contains("<script>"),
            "raw markup in the HTML part"
        );
        assert!(!composed.html.contains("<img src=x"));
        assert!(composed.html.contains("&lt;script&gt;"));
        assert!(!composed.html.contains("href=\"javascript:"));
        assert!(!composed.text.contains("\r\nBcc:") && !composed.text.contains("\nBcc:"));
        assert!(
            composed.text.contains(&"x".repeat(200)) && !composed.text.contains(&"x".repeat(300))
        );

        let Some(python) = interop_python() else {
            continue;
        };
        let eml = dir.join(format!("{language}.eml"));
        std::fs::write(&eml, &composed.built.bytes).unwrap();
        let out = Command::new(&python)
            .arg(interop_scripts().join("read_mail.py"))
            .arg(&eml)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let headers = parsed["headers"].as_object().unwrap();
        assert_eq!(parsed["defects"], serde_json::json!([]));
        for name in ["bcc", "x-evil"] {
            assert!(!headers.contains_key(name), "{name} injected: {headers:?}");
        }
        for name in ["subject", "to", "from", "message-id"] {
            assert_eq!(
                headers[name].as_array().unwrap().len(),
                1,
                "{name}: {headers:?}"
            );
        }
        assert_eq!(
            headers["to"][0],
            "\"SOC Bcc: victim@example.org\" <soc@zho.test>"
        );
        assert_eq!(headers["x-tlp"][0], "TLP:AMBER+STRICT");
        let parts = parsed["parts"].as_array().unwrap();
        let types: Vec<&str> = parts
            .iter()
            .map(|p| p["content_type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["text/plain", "text/html", "text/csv"]);
        let text = parts[0]["text"].as_str().unwrap();
        assert!(text.contains("192.0.2.10") && text.contains("192.0.2.11"));
        // The attachment is CSV a spreadsheet opens safely: one row per host, no formula.
        let csv = parts[2]["text"].as_str().unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
