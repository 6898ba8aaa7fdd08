//! Comparing scan records with the lab's ground truth: the accuracy test, the demo and the
//! benchmarks all use this one definition of "classified exactly".

use wachter_core::record::ServiceRecord;

use crate::HostSpec;

/// The differences between what a record says and what the host is; empty when exact.
pub fn differences(host: &HostSpec, record: Option<&ServiceRecord>) -> Vec<String> {
    let Some(r) = record else {
        return vec!["no record".into()];
    };
    let mut diffs = Vec::new();
    let (status, protocol) = host.behaviour.expected();
    if (r.status, r.protocol) != (status, protocol) {
        diffs.push(format!(
            "status/protocol {:?}/{:?}, expected {status:?}/{protocol:?}",
            r.status, r.protocol
        ));
    }
    let expected = host.behaviour.expected_netscaler(r.hostname.is_some());
    let found = r.checks.iter().find(|a| a.check == "netscaler");
    match (expected, found) {
        (None, None) => {}
        (None, Some(a)) => diffs.push(format!("unexpected assessment: {:?}", a.product)),
        (Some(_), None) => diffs.push("no NetScaler assessment".into()),
        (Some(e), Some(a)) => {
            let mut check = |what: &str, found: String, want: String| {
                if found != want {
                    diffs.push(format!("{what} {found}, expected {want}"));
                }
            };
            check(
                "product",
                format!("{:?}", a.product),
                format!("{:?}", e.product),
            );
            check(
                "probe",
                format!("{:?}", a.probe.as_ref().map(|p| p.state)),
                format!("{:?}", e.probe),
            );
            check(
                "build",
                format!("{:?}", a.build.as_ref().and_then(|b| b.version.as_deref())),
                format!("{:?}", e.version),
            );
            let verdict = a
                .cves
                .iter()
                .find(|v| v.cve == "CVE-2019-19781")
                .map(|v| v.verdict);
            check(
                "CVE-2019-19781",
                format!("{verdict:?}"),
                format!("{:?}", Some(e.cve_2019_19781)),
            );
            check(
                "honeypot_suspect",
                a.flags.honeypot_suspect.to_string(),
                e.honeypot.to_string(),
            );
            check(
                "catch_all",
                a.flags.catch_all.to_string(),
                e.catch_all.to_string(),
            );
            check(
                "default_certificate",
                a.flags.default_certificate.to_string(),
                e.default_certificate.to_string(),
            );
            check(
                "legacy_tls_only",
                a.flags.legacy_tls_only.to_string(),
                e.legacy_tls.to_string(),
            );
        }
    }
    diffs
}

/// The target line that reaches a lab host as intended (with its SNI name if it has one).
pub fn target_line(host: &HostSpec) -> String {
    match &host.hostname {
        Some(name) => format!("{},{name}", host.ip),
        None => host.ip.to_string(),
    }
}
