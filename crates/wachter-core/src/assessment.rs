//! What a check concluded about a service: the product, its build, the probe state and a
//! verdict per CVE, each with the basis it rests on. Part of the record schema
//! (`checks[]` in `wachter.service/1`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One check's conclusions about one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// The check that made it (`netscaler`).
    pub check: String,
    pub product: Product,
    /// The signals that decided the product, strongest first (`title:Citrix Gateway`,
    /// `cert:default`, `rdx_en`, `cookie:NSC_TEMP`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildEstimate>,
    /// The state of the safe remote probe, for checks that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<CveVerdict>,
    pub flags: Flags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    Netscaler,
    NotNetscaler,
    /// Contradictory or missing evidence (a honeypot imitating one, a service with no HTTP).
    Unknown,
}

/// Which build runs, and how that was worked out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildEstimate {
    /// `13.0-47.24`; absent when only a date or a range is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Builds it can be when the evidence allows several (a zeroed rdx_en stamp).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    pub method: BuildMethod,
    /// The evidence: the stamp and its date, the hash, the header value.
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildMethod {
    /// GZIP MTIME of `rdx_en.json.gz`.
    RdxStamp,
    /// The `?v=` cache-buster hash of the login page.
    Vhash,
    /// `Last-Modified` of the login page.
    LastModified,
}

/// The state of a safe remote probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub state: ProbeState,
    /// Why, in words: which exchange showed what.
    pub reason: String,
    /// Names of the exchanges the state rests on (`p1`, `p2`, `control`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    Vulnerable,
    Mitigated,
    NotVulnerable,
    Inconclusive,
}

impl ProbeState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeState::Vulnerable => "vulnerable",
            ProbeState::Mitigated => "mitigated",
            ProbeState::NotVulnerable => "not_vulnerable",
            ProbeState::Inconclusive => "inconclusive",
        }
    }
}

/// The verdict for one CVE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CveVerdict {
    pub cve: String,
    pub verdict: Verdict,
    pub basis: Basis,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Vulnerable,
    Mitigated,
    Patched,
    NotApplicable,
    Unknown,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Vulnerable,
        Verdict::Mitigated,
        Verdict::Patched,
        Verdict::NotApplicable,
        Verdict::Unknown,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Vulnerable => "vulnerable",
            Verdict::Mitigated => "mitigated",
            Verdict::Patched => "patched",
            Verdict::NotApplicable => "not_applicable",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a verdict rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Probe,
    Version,
    Both,
    /// Neither: the product is not affected or nothing is known.
    None,
}

/// Facts worth a flag of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// Answers 200 to a random control path *and* to the probes: never counted vulnerable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub honeypot_suspect: bool,
    /// Answers 200 to any path (a catch-all web application).
    #[serde(default, skip_serializing_if = "is_false")]
    pub catch_all: bool,
    /// Negotiated TLS 1.0 or 1.1 although TLS 1.3 was offered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub legacy_tls_only: bool,
    /// The appliance's self-generated certificate (`O=Citrix ANG, OU=NS Internal, CN=default …`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub default_certificate: bool,
    /// DNS names from the certificate (SANs and CN): who this host belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_names: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}
