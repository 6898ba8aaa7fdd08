//! The NetScaler check pack (Citrix ADC / NetScaler Gateway).
//!
//! Plan, per HTTP(S) service, over one kept-alive connection where the server allows:
//!
//! | step         | request                                   | for                                  |
//! |--------------|-------------------------------------------|--------------------------------------|
//! | `root`       | `GET /`                                   | redirect target, Last-Modified       |
//! | `vpn_index`  | `GET /vpn/index.html`                     | classic Gateway login, `?v=` hash    |
//! | `logonpoint` | `GET /logon/LogonPoint/index.html`        | RfWebUI login, `?v=` hash            |
//! | `rdx_en`     | `GET /vpn/js/rdx/core/lang/rdx_en.json.gz`| build stamp (GZIP MTIME)             |
//! | `control`    | `GET /<random>.html`                      | honeypots and catch-all servers      |
//! | `p2`         | `GET /vpn/../vpns/`                       | CVE-2019-19781: Apache 403 = exposed |
//! | `p1`         | `GET /vpn/../vpns/cfg/smb.conf`           | CVE-2019-19781: smb.conf = exposed   |
//!
//! P1 is skipped when P2 already met the mitigation's bare 403 (conclusive; the responder
//! closes the connection). Only read-only GETs; the safety deny-list in `wachter-core`
//! refuses every exploit and memory-read request whatever a check asks for.
//!
//! The assessment is a pure function of the record (research: netscaler.md §2.3–§3.6):
//! product from the signals, build from rdx_en stamp > `?v=` hash > Last-Modified, probe
//! state from P1/P2 with the control path ruling out honeypots, and a verdict per CVE that
//! says whether it rests on the probe, the version or both.

pub mod evidence;
pub mod rules;

use std::sync::Arc;

use wachter_core::assessment::{
    Assessment, Basis, BuildEstimate, BuildMethod, CveVerdict, Flags, ProbeResult, ProbeState,
    Product, Verdict,
};
use wachter_core::check::{Check, RequestSpec, TargetContext};
use wachter_core::order::splitmix64;
use wachter_core::record::{HttpExchange, HttpOutcome, ServiceRecord, Status};

use self::evidence::{
    RdxStamp, body, contains, cookie_names, exchange, header, rdx_stamp, response, title, vhash,
};
use self::rules::{Rules, Version};

/// The CVE the safe probes test.
pub const CVE_2019_19781: &str = "CVE-2019-19781";

const PLAN: &[(&str, &str)] = &[
    ("root", "/"),
    ("vpn_index", "/vpn/index.html"),
    ("logonpoint", "/logon/LogonPoint/index.html"),
    ("rdx_en", "/vpn/js/rdx/core/lang/rdx_en.json.gz"),
    ("control", ""),
    ("p2", "/vpn/../vpns/"),
    ("p1", "/vpn/../vpns/cfg/smb.conf"),
];

/// Titles of NetScaler login pages (netscaler.md §3.1).
const TITLES: &[&str] = &[
    "citrix gateway",
    "netscaler gateway",
    "netscaler aaa",
    "citrix login",
    "netscaler",
];

/// The Apache directory-index 403 page that P2 reaches on an exposed appliance. ASCII
/// apostrophe: the typographic one in some write-ups never matches.
const P2_VULNERABLE_TEXT: &[u8] = b"You don't have permission to access /vpns/";

#[derive(Debug)]
pub struct NetscalerCheck {
    rules: Arc<Rules>,
}

impl NetscalerCheck {
    pub fn builtin() -> Self {
        NetscalerCheck {
            rules: Arc::new(Rules::builtin()),
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }
}

/// A path no real application serves, different per target and per scan seed.
pub fn control_path(target: &TargetContext<'_>) -> String {
    let ip_bits = match target.ip {
        std::net::IpAddr::V4(v4) => u32::from(v4) as u64,
        std::net::IpAddr::V6(v6) => (u128::from(v6) as u64) ^ ((u128::from(v6) >> 64) as u64),
    };
    let a = splitmix64(target.seed ^ ip_bits.rotate_left(17) ^ u64::from(target.port));
    let b = splitmix64(a);
    format!("/{:012x}/{:010x}.html", a >> 16, b >> 24)
}

impl Check for NetscalerCheck {
    fn id(&self) -> &'static str {
        "netscaler"
    }

    fn next_request(
        &self,
        target: &TargetContext<'_>,
        done: &[HttpExchange],
    ) -> Option<RequestSpec> {
        let mut step = done.len();
        // P2 met the mitigation's bare 403: conclusive, and the connection is gone.
        if PLAN.get(step).is_some_and(|(name, _)| *name == "p1")
            && done.last().is_some_and(is_bare_403)
        {
            step += 1;
        }
        let (name, path) = PLAN.get(step)?;
        let mut spec = if *name == "control" {
            RequestSpec::get(name, &control_path(target))
        } else {
            RequestSpec::get(name, path)
        };
        if *name == "rdx_en" {
            // The raw bytes carry the stamp; ask for no transfer compression.
            spec.headers
                .push(("Accept-Encoding".into(), "identity".into()));
        }
        Some(spec)
    }

    fn assess(&self, record: &ServiceRecord) -> Option<Assessment> {
        if record.status != Status::Open {
            return None;
        }
        let has_http = record
            .http
            .iter()
            .any(|e| e.outcome == HttpOutcome::Response);
        let has_cert = record.tls.as_ref().is_some_and(|t| !t.chain.is_empty());
        if !has_http && !has_cert {
            return None;
        }
        Some(self.assess_service(record))
    }
}

/// The mitigation's answer: `HTTP/1.1 403 Forbidden\r\n\r\n`, no headers, no body.
fn is_bare_403(ex: &HttpExchange) -> bool {
    ex.outcome == HttpOutcome::Response
        && ex.status == Some(403)
        && ex
            .headers
            .as_ref()
            .is_none_or(|h| h.as_bytes().iter().all(u8::is_ascii_whitespace))
        && body(ex).is_empty()
}

fn p1_exposed(ex: &HttpExchange) -> bool {
    let b = body(ex);
    ex.status == Some(200)
        && contains(b, b"[global]")
        && (contains(b, b"encrypt passwords") || contains(b, b"name resolve order"))
}

fn p2_exposed(ex: &HttpExchange) -> bool {
    ex.status == Some(403) && contains(body(ex), P2_VULNERABLE_TEXT)
}

impl NetscalerCheck {
    fn assess_service(&self, record: &ServiceRecord) -> Assessment {
        let flags = flags(record);
        let (mut signals, strong, medium) = signals(record, &flags);
        let control_200 = response(record, "control").is_some_and(|e| e.status == Some(200));
        let p1 = response(record, "p1");
        let p1_vuln = p1.is_some_and(p1_exposed);
        let claims_netscaler = strong + medium > 0 || p1_vuln;
        let mut flags = flags;
        // A server that answers 200 to a path nobody serves cannot be believed on others.
        if control_200 && claims_netscaler {
            flags.honeypot_suspect = true;
            signals.push("control:200".into());
        } else if control_200 {
            flags.catch_all = true;
        }
        let product = if flags.honeypot_suspect {
            Product::Unknown
        } else if strong >= 1 || medium >= 2 {
            Product::Netscaler
        } else {
            Product::NotNetscaler
        };
        let build = if product == Product::NotNetscaler {
            None
        } else {
            self.estimate_build(record)
        };
        let probe = probe_state(record, &flags);
        let cves = self.verdicts(product, build.as_ref(), probe.as_ref());
        Assessment {
            check: "netscaler".into(),
            product,
            signals,
            build,
            probe,
            cves,
            flags,
        }
    }

    fn estimate_build(&self, record: &ServiceRecord) -> Option<BuildEstimate> {
        if let Some(ex) = response(record, "rdx_en").filter(|e| e.status == Some(200))
            && let RdxStamp::Stamp { mtime, unwrapped } = rdx_stamp(body(ex))
        {
            let note = if unwrapped {
                ", unwrapped from a transfer gzip"
            } else {
                ""
            };
            if mtime == 0 {
                let candidates: Vec<String> = self
                    .rules
                    .stamp_zero
                    .iter()
                    .map(Version::to_string)
                    .collect();
                return Some(BuildEstimate {
                    version: None,
                    detail: format!(
                        "rdx_en stamp 0: a 2026-or-later non-FIPS build, one of {}{note}",
                        candidates.join(", ")
                    ),
                    candidates,
                    method: BuildMethod::RdxStamp,
                });
            }
            let rows: Vec<_> = self.rules.rows_for_stamp(mtime).collect();
            let versions: Vec<Version> = rows.iter().filter_map(|r| r.version).collect();
            let date = rows
                .first()
                .map(|r| r.date.clone())
                .unwrap_or_else(|| format!("unix {mtime}"));
            if let [only] = versions[..] {
                return Some(BuildEstimate {
                    version: Some(only.to_string()),
                    candidates: Vec::new(),
                    method: BuildMethod::RdxStamp,
                    detail: format!("rdx_en stamp {mtime} ({date}){note}"),
                });
            }
            let newer_than = self
                .rules
                .nearest_older(mtime)
                .and_then(|r| r.version)
                .map(|v| format!("; newer than {v}"))
                .unwrap_or_default();
            return Some(BuildEstimate {
                version: None,
                candidates: versions.iter().map(Version::to_string).collect(),
                method: BuildMethod::RdxStamp,
                detail: format!(
                    "rdx_en stamp {mtime} ({date}) is not a single known build{newer_than}{note}"
                ),
            });
        }
        for page in ["vpn_index", "logonpoint", "root"] {
            if let Some(ex) = response(record, page)
                && let Some(hash) = vhash(body(ex))
                && let Some(row) = self.rules.row_for_vhash(&hash)
                && let Some(v) = row.version
            {
                return Some(BuildEstimate {
                    version: Some(v.to_string()),
                    candidates: Vec::new(),
                    method: BuildMethod::Vhash,
                    detail: format!("?v={hash} on {page}"),
                });
            }
        }
        for page in ["root", "vpn_index", "logonpoint"] {
            if let Some(value) = response(record, page).and_then(|ex| header(ex, "last-modified"))
                && let Some((_, v)) = self.rules.last_modified.iter().find(|(lm, _)| *lm == value)
            {
                return Some(BuildEstimate {
                    version: Some(v.to_string()),
                    candidates: Vec::new(),
                    method: BuildMethod::LastModified,
                    detail: format!("Last-Modified: {value} on {page}"),
                });
            }
        }
        None
    }

    fn verdicts(
        &self,
        product: Product,
        build: Option<&BuildEstimate>,
        probe: Option<&ProbeResult>,
    ) -> Vec<CveVerdict> {
        let versions: Vec<Version> = match build {
            Some(b) => match &b.version {
                Some(v) => v.parse().ok().into_iter().collect(),
                None => b.candidates.iter().filter_map(|c| c.parse().ok()).collect(),
            },
            None => Vec::new(),
        };
        self.rules
            .cves
            .iter()
            .map(|rule| {
                let (verdict, basis, detail) = match product {
                    Product::NotNetscaler => (
                        Verdict::NotApplicable,
                        Basis::None,
                        "not a NetScaler".to_string(),
                    ),
                    Product::Unknown => (
                        Verdict::Unknown,
                        Basis::None,
                        "product uncertain (see flags)".to_string(),
                    ),
                    Product::Netscaler => {
                        let by_version = version_verdict(rule, &versions);
                        if rule.remote_probe {
                            combine(probe, by_version, &versions)
                        } else {
                            match by_version {
                                Some((v, detail)) => (v, Basis::Version, detail),
                                None => {
                                    (Verdict::Unknown, Basis::None, "build unknown".to_string())
                                }
                            }
                        }
                    }
                };
                let detail = if verdict == Verdict::Vulnerable && !rule.precondition.is_empty() {
                    format!("{detail}; {}", rule.precondition)
                } else {
                    detail
                };
                CveVerdict {
                    cve: rule.id.clone(),
                    verdict,
                    basis,
                    detail,
                }
            })
            .collect()
    }
}

/// The verdict all candidate builds agree on, if any.
fn version_verdict(rule: &rules::CveRule, versions: &[Version]) -> Option<(Verdict, String)> {
    let judged: Vec<_> = versions.iter().map(|v| rule.judge(v)).collect();
    let first = judged.first()?;
    if judged.iter().all(|j| j.verdict == first.verdict) {
        let detail = if judged.len() == 1 {
            first.detail.clone()
        } else {
            format!("every candidate build: {}", first.verdict)
        };
        Some((first.verdict, detail))
    } else {
        Some((
            Verdict::Unknown,
            "the candidate builds disagree".to_string(),
        ))
    }
}

/// CVE-2019-19781: the probe decides exposure, the version decides patched.
fn combine(
    probe: Option<&ProbeResult>,
    by_version: Option<(Verdict, String)>,
    versions: &[Version],
) -> (Verdict, Basis, String) {
    let version = by_version.as_ref().map(|(v, _)| *v);
    let version_detail = by_version
        .as_ref()
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| "build unknown".into());
    let broken_mitigation = versions
        .iter()
        .any(|v| v.train() == (12, 1) && (v.build, v.patch) < (50, 31));
    let state = probe.map(|p| p.state);
    match (state, version) {
        (Some(ProbeState::Vulnerable), Some(Verdict::Vulnerable)) => {
            let note = if broken_mitigation {
                "; the mitigation does not work on this build (12.1 before 50.31): upgrade"
            } else {
                ""
            };
            (
                Verdict::Vulnerable,
                Basis::Both,
                format!("exposed to the safe probe; {version_detail}{note}"),
            )
        }
        (Some(ProbeState::Vulnerable), _) => (
            Verdict::Vulnerable,
            Basis::Probe,
            format!("exposed to the safe probe ({version_detail})"),
        ),
        (Some(ProbeState::Mitigated), Some(Verdict::Patched)) => (
            Verdict::Patched,
            Basis::Both,
            format!("responder mitigation in place; {version_detail}"),
        ),
        (Some(ProbeState::Mitigated), Some(Verdict::Vulnerable)) => (
            Verdict::Mitigated,
            Basis::Both,
            format!(
                "responder mitigation answers the probe; {version_detail}: patch, and check for compromise if mitigated late"
            ),
        ),
        (Some(ProbeState::Mitigated), _) => (
            Verdict::Mitigated,
            Basis::Probe,
            format!("responder mitigation answers the probe ({version_detail})"),
        ),
        (Some(ProbeState::NotVulnerable), Some(Verdict::Patched)) => {
            (Verdict::Patched, Basis::Both, version_detail)
        }
        (Some(ProbeState::NotVulnerable), Some(Verdict::Vulnerable)) => (
            Verdict::Unknown,
            Basis::Both,
            format!(
                "the probe found nothing but {version_detail}: another virtual server may be exposed"
            ),
        ),
        (Some(ProbeState::NotVulnerable), _) => (
            Verdict::Unknown,
            Basis::Probe,
            "the probe found nothing; build unknown".into(),
        ),
        (_, Some(v)) => (
            v,
            Basis::Version,
            format!("{version_detail} (probe inconclusive)"),
        ),
        (_, None) => (
            Verdict::Unknown,
            Basis::None,
            "probe inconclusive and build unknown".into(),
        ),
    }
}

/// The CVE-2019-19781 probe state from P1, P2 and the control path.
fn probe_state(record: &ServiceRecord, flags: &Flags) -> Option<ProbeResult> {
    let p1 = exchange(record, "p1");
    let p2 = exchange(record, "p2");
    if p1.is_none() && p2.is_none() {
        return None;
    }
    let say = |state, reason: String, evidence: &[&str]| {
        Some(ProbeResult {
            state,
            reason,
            evidence: evidence.iter().map(|s| s.to_string()).collect(),
        })
    };
    let (r1, r2) = (response(record, "p1"), response(record, "p2"));
    if flags.honeypot_suspect {
        return say(
            ProbeState::Inconclusive,
            "honeypot suspect: a random control path answered 200 as well".into(),
            &["control", "p1", "p2"],
        );
    }
    if r1.is_some_and(p1_exposed) {
        return say(
            ProbeState::Vulnerable,
            "P1 returned smb.conf (200, [global]) through /vpn/../vpns/".into(),
            &["p1"],
        );
    }
    if r2.is_some_and(p2_exposed) {
        return say(
            ProbeState::Vulnerable,
            "P2 reached the /vpns/ directory (Apache 403 listing /vpns/)".into(),
            &["p2"],
        );
    }
    if r2.is_some_and(is_bare_403) || r1.is_some_and(is_bare_403) {
        return say(
            ProbeState::Mitigated,
            "the responder's bare 'HTTP/1.1 403 Forbidden' without headers".into(),
            &["p2"],
        );
    }
    if let (Some(a), Some(b)) = (r1, r2) {
        return say(
            ProbeState::NotVulnerable,
            format!(
                "P1 answered {}, P2 answered {}",
                a.status.unwrap_or(0),
                b.status.unwrap_or(0)
            ),
            &["p1", "p2"],
        );
    }
    let failed = [("p2", p2), ("p1", p1)]
        .into_iter()
        .find_map(|(n, e)| {
            e.filter(|e| e.outcome != HttpOutcome::Response).map(|e| {
                format!(
                    "{n}: {:?}{}",
                    e.outcome,
                    e.detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )
            })
        })
        .unwrap_or_else(|| "a probe was not answered".into());
    say(
        ProbeState::Inconclusive,
        failed.to_lowercase(),
        &["p1", "p2"],
    )
}

fn flags(record: &ServiceRecord) -> Flags {
    let mut flags = Flags::default();
    let Some(tls) = &record.tls else { return flags };
    flags.legacy_tls_only =
        tls.established && matches!(tls.version.as_deref(), Some("TLSv1" | "TLSv1.1" | "SSLv3"));
    if let Some(leaf) = tls.chain.first() {
        let subject = leaf.subject.as_str();
        flags.default_certificate = subject.contains("O=Citrix ANG")
            && subject.contains("OU=NS Internal")
            && leaf
                .common_name
                .as_deref()
                .is_some_and(|cn| cn.starts_with("default "));
        let mut names: Vec<String> = leaf
            .sans
            .iter()
            .filter(|n| {
                n.contains('.') && !n.contains(':') && n.parse::<std::net::IpAddr>().is_err()
            })
            .cloned()
            .collect();
        if let Some(cn) = &leaf.common_name
            && cn.contains('.')
            && !names.contains(&cn.to_ascii_lowercase())
        {
            names.push(cn.to_ascii_lowercase());
        }
        flags.tls_names = names;
    }
    flags
}

/// Product signals, with counts of strong and medium ones.
fn signals(record: &ServiceRecord, flags: &Flags) -> (Vec<String>, usize, usize) {
    let mut strong = Vec::new();
    let mut medium = Vec::new();
    if flags.default_certificate {
        strong.push("cert:default".to_string());
    }
    for page in ["vpn_index", "logonpoint", "root"] {
        let Some(ex) = response(record, page).filter(|e| e.status == Some(200)) else {
            continue;
        };
        if let Some(t) = title(body(ex))
            && TITLES.iter().any(|known| t.to_ascii_lowercase() == *known)
        {
            strong.push(format!("title:{t}"));
        }
        if contains(body(ex), b"_ctxstxt_CitrixCopyright") {
            strong.push(format!("{page}:_ctxstxt_CitrixCopyright"));
        }
        if contains(body(ex), b"CTXS.") {
            medium.push(format!("{page}:CTXS"));
        }
    }
    if response(record, "rdx_en").is_some_and(|ex| {
        ex.status == Some(200) && matches!(rdx_stamp(body(ex)), RdxStamp::Stamp { .. })
    }) {
        strong.push("rdx_en".into());
    }
    if response(record, "p2").is_some_and(p2_exposed) {
        strong.push("p2:apache_vpns_403".into());
    }
    // smb.conf through the traversal is the appliance's own file: on its own it is proof.
    if response(record, "p1").is_some_and(p1_exposed) {
        strong.push("p1:smb.conf".into());
    }
    let mut cookies: Vec<String> = record
        .http
        .iter()
        .flat_map(cookie_names)
        .filter(|n| n.starts_with("NSC_") || n == "citrix_ns_id" || n == "ns_af")
        .collect();
    cookies.sort();
    cookies.dedup();
    if let Some(first) = cookies.first() {
        medium.push(format!("cookie:{first}"));
    }
    if let Some(root) =
        response(record, "root").filter(|e| matches!(e.status, Some(301 | 302 | 303 | 307 | 308)))
        && let Some(location) = header(root, "location")
    {
        let path = location
            .split("://")
            .nth(1)
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or(location.clone());
        if ["/vpn/", "/logon/", "/cgi/", "/menu/"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            medium.push(format!("redirect:{path}"));
        }
    }
    if record
        .http
        .iter()
        .any(|ex| header(ex, "cneonction").is_some() || header(ex, "nncoection").is_some())
    {
        medium.push("header:cneonction".into());
    }
    let (s, m) = (strong.len(), medium.len());
    strong.extend(medium);
    (strong, s, m)
}

#[cfg(test)]
mod tests;
