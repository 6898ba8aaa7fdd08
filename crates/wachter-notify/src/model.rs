//! The values every notification stage shares.
//!
//! Strings that came from a scanned server (hostnames, certificate names, evidence) are
//! hostile: they may hold CR/LF, HTML, megabytes or replacement characters for bytes that
//! were not UTF-8. They are kept as they were; every renderer makes them safe for its own
//! medium (a header, a text line, HTML, JSON).

use serde::{Deserialize, Serialize};
use wachter_constituency::org::Tlp;

/// One finding as its owner is told about it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFinding {
    /// The store's id of the finding (links a message to what it told).
    pub finding_id: i64,
    pub ip: String,
    pub port: u16,
    /// The name the target was scanned under; empty when scanned by address.
    #[serde(default)]
    pub hostname: String,
    /// Subject common name and SANs of the certificate the service presented.
    #[serde(default)]
    pub cert_names: Vec<String>,
    /// `netscaler`.
    pub product: String,
    /// The estimated firmware build (`13.0-47.22`), when known.
    pub build: Option<String>,
    /// `CVE-2019-19781`.
    pub cve: String,
    /// `vulnerable` or `mitigated` (open), `patched` (fixed), `unknown`.
    pub state: String,
    /// What decided the state: `probe`, `version` or `both`.
    pub basis: String,
    /// The check's one-line explanation of the state.
    pub detail: String,
    /// RFC 3339 UTC.
    pub first_seen: String,
    pub last_seen: String,
    /// When the finding was first seen `vulnerable`, if ever: a host mitigated after that
    /// was exposed, and its owner must assume compromise.
    pub vulnerable_since: Option<String>,
    pub evidence: Option<Evidence>,
    pub owner: Owner,
}

impl HostFinding {
    /// Must the owner assume the appliance was compromised? Yes while it is vulnerable,
    /// and when it was seen vulnerable before it was mitigated (mitigated late).
    pub fn assume_compromise(&self) -> bool {
        self.state == "vulnerable" || (self.state == "mitigated" && self.vulnerable_since.is_some())
    }
}

/// What proved the state: the probe exchange, or the build estimate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Why, in one line: the probe's reason, or how the build was estimated.
    pub summary: String,
    /// `GET /vpn/../vpns/cfg/smb.conf HTTP/1.1`, when a probe decided.
    pub request_line: Option<String>,
    /// `HTTP/1.1 200 OK`.
    pub status_line: Option<String>,
    /// The first bytes of the response body that matched, printable (see [`crate::text`]).
    pub excerpt: Option<String>,
    /// `https://192.0.2.10:443/vpn/../vpns/cfg/smb.conf`.
    pub url: Option<String>,
    /// RFC 3339 UTC time of the observation the evidence comes from.
    pub observed_at: String,
}

/// Who owns the service, as attribution found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    /// The constituency organisation, when the service was attributed to one.
    pub organisation: Option<String>,
    pub sector: Option<String>,
    pub asn: Option<u32>,
    /// The AS or network holder's name.
    pub holder: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    /// The registry network (CIDR) holding the address.
    pub network: Option<String>,
    /// Abuse mailboxes from the registry.
    #[serde(default)]
    pub abuse_contacts: Vec<String>,
}

/// The CERT that reports: sender of the mails and `reporter` of the exports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reporter {
    /// `Example CERT`.
    pub org: String,
    /// The address mails come from (`cert@example.org`).
    pub from: String,
    /// Where replies go; the `from` address when unset.
    pub reply_to: Option<String>,
    /// `example.org`.
    pub domain: String,
    /// A page about the case or about this scan, linked from every message.
    pub url: Option<String>,
    /// Tickets read `<prefix>-<number>` (`WACHTER-10000042`).
    pub ticket_prefix: String,
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter {
            org: "wachter CERT".into(),
            from: "cert@wachter.invalid".into(),
            reply_to: None,
            domain: "wachter.invalid".into(),
            url: None,
            ticket_prefix: "WACHTER".into(),
        }
    }
}

/// What every export states besides the findings.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportMeta {
    pub reporter: Reporter,
    pub tlp: Tlp,
    /// RFC 3339 UTC time of the export.
    pub generated_at: String,
}

/// The TLP 1.0 label for formats that know no other (IntelMQ 3.5, STIX 2.1's predefined
/// markings, CSAF 2.0): CLEAR is WHITE; AMBER+STRICT has no equivalent and becomes AMBER,
/// which is why exports state the restriction in words too (see [`tlp_restriction`]).
pub fn tlp1(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "WHITE",
        Tlp::Green => "GREEN",
        Tlp::Amber | Tlp::AmberStrict => "AMBER",
        Tlp::Red => "RED",
    }
}

/// The sentence an export adds where TLP 1.0 cannot say what TLP 2.0 does.
pub fn tlp_restriction(tlp: Tlp) -> Option<&'static str> {
    match tlp {
        Tlp::AmberStrict => Some("TLP:AMBER+STRICT: share only within the recipient organisation"),
        _ => None,
    }
}
