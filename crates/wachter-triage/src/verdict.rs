//! The verdict: what an owner is told about their appliance.
//!
//! "Clean" is never said without saying how far back the evidence reaches: a box whose
//! access logs rolled over after the attack looks clean in its logs. So the verdict names the
//! log coverage, and evidence without logs or appliance file-system areas is "not enough
//! data", never "no sign of compromise".

use crate::engine::Hit;
use crate::logs::{Coverage, LogKind};
use crate::rules::Severity;

/// The areas where exploitation leaves files (templates, webshells, themes).
pub const WEB_AREAS: &[&str] = &[
    "/netscaler/portal",
    "/var/vpn",
    "/var/netscaler",
    "/var/tmp/netscaler",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A rule of severity compromise or post-exploitation fired.
    Compromised,
    /// The vulnerability was probed successfully, or exploitation was tried.
    ExploitationAttempted,
    /// Nothing found, within the coverage of the logs and the file-system areas present.
    NoSignOfCompromise,
    /// Neither web access logs nor the appliance's web areas (with files) were in the
    /// evidence.
    NotEnoughData,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Compromised => "compromised",
            Verdict::ExploitationAttempted => "exploitation attempted",
            Verdict::NoSignOfCompromise => "no sign of compromise",
            Verdict::NotEnoughData => "not enough data",
        }
    }
}

/// The verdict and the one sentence that explains it.
pub fn verdict(hits: &[Hit], coverage: &[Coverage], areas: &[String]) -> (Verdict, String) {
    let count = |pred: &dyn Fn(Severity) -> bool| hits.iter().filter(|h| pred(h.severity)).count();
    let compromise = count(&|s| matches!(s, Severity::Compromise | Severity::PostExploitation));
    let attempts = count(&|s| {
        matches!(
            s,
            Severity::SuccessfulScanning | Severity::FailedExploitation
        )
    });
    let suspicious = count(&|s| s == Severity::Suspicious);
    let access: Vec<&Coverage> = coverage
        .iter()
        .filter(|c| c.kind == Some(LogKind::HttpAccess) && c.lines > 0)
        .collect();
    let reach = match (
        access.iter().filter_map(|c| c.first_utc).min(),
        access.iter().filter_map(|c| c.last_utc).max(),
    ) {
        (Some(first), Some(last)) => {
            format!("web access logs from {} to {}", day(first), day(last))
        }
        _ if !access.is_empty() => "web access logs without readable timestamps".into(),
        _ => "no web access logs".into(),
    };
    let file_areas: Vec<&String> = areas.iter().filter(|a| a.as_str() != "/var/log").collect();
    // Where the exploits leave files: without these or web access logs, "clean" means
    // nothing.
    let web = areas.iter().any(|a| WEB_AREAS.contains(&a.as_str()));
    if compromise > 0 {
        return (
            Verdict::Compromised,
            format!(
                "{compromise} indicators of compromise ({reach}): treat the appliance as compromised"
            ),
        );
    }
    if attempts > 0 {
        return (
            Verdict::ExploitationAttempted,
            format!(
                "{attempts} signs of successful scanning or failed exploitation and no indicator of compromise ({reach})"
            ),
        );
    }
    if access.is_empty() && !web {
        return (
            Verdict::NotEnoughData,
            "neither web access logs nor the appliance's web file system (/netscaler/portal, /var/vpn, /var/netscaler, /var/tmp/netscaler) are in the evidence".into(),
        );
    }
    let suspicious = if suspicious > 0 {
        format!("; {suspicious} suspicious items to review")
    } else {
        String::new()
    };
    let files = if file_areas.is_empty() {
        "no appliance file system".to_string()
    } else {
        format!(
            "file system: {}",
            file_areas
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    (
        Verdict::NoSignOfCompromise,
        format!("no sign of compromise within the evidence: {reach}; {files}{suspicious}"),
    )
}

fn day(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| t.to_string())
}
