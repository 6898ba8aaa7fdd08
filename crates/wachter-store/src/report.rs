//! What changed between scans, and the open findings over time (the 546 → 70 curve).
//!
//! Pure functions over store rows. The rules an analyst relies on:
//! - a finding is *open* while it is `vulnerable` or `mitigated` (mitigated still needs the
//!   patch, and a compromise check);
//! - *fixed* means a re-scan saw the service answer and judged it `patched`;
//! - a service that stopped answering is *unreachable*, never fixed;
//! - a service the later scan did not look at is *not rescanned*, not fixed either.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::{FindingState, Store, StoreError};

/// How one finding moved between two scans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Open in the later scan, not open (or not known) in the earlier one.
    New,
    /// Open before; the later scan saw the service and judged it patched.
    Fixed,
    /// Open in both.
    StillOpen,
    /// Open before; in the later scan the service did not answer.
    Unreachable,
    /// Open before; the later scan did not look at this service.
    NotRescanned,
}

impl Change {
    pub fn as_str(&self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Fixed => "fixed",
            Change::StillOpen => "still_open",
            Change::Unreachable => "unreachable",
            Change::NotRescanned => "not_rescanned",
        }
    }
}

pub fn is_open(state: &str) -> bool {
    matches!(state, "vulnerable" | "mitigated")
}

/// The change of one finding, or `None` when there is nothing to report (never open, or
/// closed and staying closed).
pub fn classify(
    before: Option<&str>,
    after: Option<&str>,
    later_status: Option<&str>,
) -> Option<Change> {
    let was_open = before.is_some_and(is_open);
    match later_status {
        None => was_open.then_some(Change::NotRescanned),
        Some("open") => match (was_open, after.is_some_and(is_open)) {
            (true, true) => Some(Change::StillOpen),
            (false, true) => Some(Change::New),
            (true, false) if after == Some("patched") => Some(Change::Fixed),
            // Open before, now unknown or not applicable: not proven fixed.
            (true, false) => Some(Change::StillOpen),
            (false, false) => None,
        },
        Some(_) => was_open.then_some(Change::Unreachable),
    }
}

/// One finding in a diff.
#[derive(Clone, Debug, Serialize)]
pub struct DiffEntry {
    pub change: Change,
    pub ip: String,
    pub port: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    pub cve: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The difference between two scans.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    pub from_scan: i64,
    pub to_scan: i64,
    /// CVE → change → findings.
    pub counts: BTreeMap<String, BTreeMap<Change, u64>>,
    pub entries: Vec<DiffEntry>,
}

pub fn diff(store: &Store, from: i64, to: i64, cve: Option<&str>) -> Result<Diff, StoreError> {
    let key = |f: &FindingState| (f.service_id, f.cve.clone());
    let before: HashMap<_, FindingState> = store
        .finding_states(from)?
        .into_iter()
        .map(|f| (key(&f), f))
        .collect();
    let after: HashMap<_, FindingState> = store
        .finding_states(to)?
        .into_iter()
        .map(|f| (key(&f), f))
        .collect();
    let statuses = store.service_statuses(to)?;
    let mut keys: Vec<_> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut counts: BTreeMap<String, BTreeMap<Change, u64>> = BTreeMap::new();
    let mut entries = Vec::new();
    for k in keys {
        if cve.is_some_and(|c| c != k.1) {
            continue;
        }
        let b = before.get(&k);
        let a = after.get(&k);
        let Some(change) = classify(
            b.map(|f| f.state.as_str()),
            a.map(|f| f.state.as_str()),
            statuses.get(&k.0).map(String::as_str),
        ) else {
            continue;
        };
        let Some(f) = a.or(b) else { continue };
        *counts
            .entry(k.1.clone())
            .or_default()
            .entry(change)
            .or_default() += 1;
        entries.push(DiffEntry {
            change,
            ip: f.ip.clone(),
            port: f.port,
            hostname: f.hostname.clone(),
            cve: k.1.clone(),
            before: b.map(|f| f.state.clone()),
            after: a.map(|f| f.state.clone()),
        });
    }
    entries
        .sort_by(|x, y| (x.change, &x.cve, &x.ip, x.port).cmp(&(y.change, &y.cve, &y.ip, y.port)));
    Ok(Diff {
        from_scan: from,
        to_scan: to,
        counts,
        entries,
    })
}

/// One scan's standing for one CVE.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrendPoint {
    pub scan: i64,
    pub started_at: String,
    pub vulnerable: u64,
    pub mitigated: u64,
    pub patched: u64,
    pub unknown: u64,
    /// Open before, and the service did not answer this scan.
    pub unreachable: u64,
    /// Open before, and this scan did not look at the service: not fixed, not counted above.
    pub not_rescanned: u64,
}

impl TrendPoint {
    /// Findings that still need action: the curve that should go down.
    pub fn open(&self) -> u64 {
        self.vulnerable + self.mitigated
    }
}

/// Per CVE, one point per scan: the states of the findings the scan saw answer.
pub fn trend(store: &Store) -> Result<BTreeMap<String, Vec<TrendPoint>>, StoreError> {
    let mut out: BTreeMap<String, Vec<TrendPoint>> = BTreeMap::new();
    let mut previously_open: HashMap<(i64, String), bool> = HashMap::new();
    for scan in store.scans()? {
        let statuses = store.service_statuses(scan.id)?;
        let mut points: BTreeMap<String, TrendPoint> = BTreeMap::new();
        let states = store.finding_states(scan.id)?;
        for f in &states {
            let point = points.entry(f.cve.clone()).or_insert_with(|| TrendPoint {
                scan: scan.id,
                started_at: scan.started_at.clone(),
                ..TrendPoint::default()
            });
            let was_open = previously_open
                .get(&(f.service_id, f.cve.clone()))
                .copied()
                .unwrap_or(false);
            match statuses.get(&f.service_id).map(String::as_str) {
                Some("open") => match f.state.as_str() {
                    "vulnerable" => point.vulnerable += 1,
                    "mitigated" => point.mitigated += 1,
                    "patched" => point.patched += 1,
                    _ => point.unknown += 1,
                },
                Some(_) if was_open => point.unreachable += 1,
                None if was_open => point.not_rescanned += 1,
                _ => {}
            }
        }
        for f in states {
            // A service this scan did not see keeps its previous standing.
            if statuses.get(&f.service_id).map(String::as_str) == Some("open") {
                previously_open.insert((f.service_id, f.cve.clone()), is_open(&f.state));
            }
        }
        for (cve, point) in points {
            out.entry(cve).or_default().push(point);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_host_is_never_fixed() {
        assert_eq!(
            classify(Some("vulnerable"), Some("vulnerable"), Some("closed")),
            Some(Change::Unreachable)
        );
        assert_eq!(
            classify(Some("vulnerable"), Some("vulnerable"), Some("filtered")),
            Some(Change::Unreachable)
        );
        assert_eq!(
            classify(Some("vulnerable"), Some("vulnerable"), None),
            Some(Change::NotRescanned)
        );
        assert_eq!(
            classify(Some("vulnerable"), Some("patched"), Some("open")),
            Some(Change::Fixed)
        );
        assert_eq!(
            classify(Some("mitigated"), Some("unknown"), Some("open")),
            Some(Change::StillOpen),
            "unknown is not proof of a fix"
        );
        assert_eq!(
            classify(Some("vulnerable"), Some("mitigated"), Some("open")),
            Some(Change::StillOpen)
        );
        assert_eq!(
            classify(None, Some("vulnerable"), Some("open")),
            Some(Change::New)
        );
        assert_eq!(
            classify(Some("patched"), Some("vulnerable"), Some("open")),
            Some(Change::New),
            "a regression is news"
        );
        assert_eq!(
            classify(Some("patched"), Some("patched"), Some("open")),
            None
        );
        assert_eq!(classify(None, None, Some("closed")), None);
    }
}

/// How findings are grouped by owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Organisation,
    Sector,
    Asn,
}

/// Findings of one owner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OwnerGroup {
    pub owner: String,
    pub vulnerable: u64,
    pub mitigated: u64,
    pub patched: u64,
    pub unknown: u64,
    /// Vulnerable + mitigated.
    pub open: u64,
    /// Distinct services with any finding.
    pub services: u64,
    /// Findings whose address also lay in less specific networks of other organisations
    /// (the most specific one was chosen).
    pub overlapping: u64,
}

/// Findings per owner, and the open findings nobody claims (listed, never dropped).
#[derive(Clone, Debug, Serialize)]
pub struct OwnerReport {
    pub by: Owner,
    pub groups: Vec<OwnerGroup>,
    /// Open findings on services no organisation claims, with what is known of their
    /// network (registry abuse mailbox, AS, country) — or never attributed at all.
    pub unattributed: Vec<crate::OwnedFinding>,
}

/// The label of the group no organisation claims.
pub const UNATTRIBUTED: &str = "(unattributed)";

/// Groups findings (the current state of each) by owner. `cve` keeps one CVE.
pub fn by_owner(findings: &[crate::OwnedFinding], by: Owner, cve: Option<&str>) -> OwnerReport {
    let mut groups: BTreeMap<String, OwnerGroup> = BTreeMap::new();
    let mut services: BTreeMap<String, std::collections::BTreeSet<(String, u16)>> = BTreeMap::new();
    let mut unattributed = Vec::new();
    for f in findings.iter().filter(|f| cve.is_none_or(|c| c == f.cve)) {
        let owner = match (by, &f.organisation) {
            (Owner::Asn, _) => match f.asn {
                Some(asn) => match &f.holder {
                    Some(holder) => format!("AS{asn} {holder}"),
                    None => format!("AS{asn}"),
                },
                None => "(unknown AS)".to_string(),
            },
            (_, None) => UNATTRIBUTED.to_string(),
            (Owner::Organisation, Some(name)) => name.clone(),
            (Owner::Sector, Some(_)) => f.sector.clone().unwrap_or_else(|| "(no sector)".into()),
        };
        if f.organisation.is_none() && is_open(&f.state) {
            unattributed.push(f.clone());
        }
        let group = groups.entry(owner.clone()).or_insert_with(|| OwnerGroup {
            owner: owner.clone(),
            ..OwnerGroup::default()
        });
        match f.state.as_str() {
            "vulnerable" => group.vulnerable += 1,
            "mitigated" => group.mitigated += 1,
            "patched" => group.patched += 1,
            _ => group.unknown += 1,
        }
        if is_open(&f.state) {
            group.open += 1;
        }
        if f.overlaps > 0 {
            group.overlapping += 1;
        }
        services
            .entry(owner)
            .or_default()
            .insert((f.ip.clone(), f.port));
    }
    let mut groups: Vec<OwnerGroup> = groups
        .into_values()
        .map(|mut g| {
            g.services = services.get(&g.owner).map_or(0, |s| s.len() as u64);
            g
        })
        .collect();
    groups.sort_by(|a, b| b.open.cmp(&a.open).then_with(|| a.owner.cmp(&b.owner)));
    OwnerReport {
        by,
        groups,
        unattributed,
    }
}

#[cfg(test)]
mod owner_tests {
    use super::*;
    use crate::OwnedFinding;

    fn finding(ip: &str, state: &str, org: Option<&str>, asn: Option<i64>) -> OwnedFinding {
        OwnedFinding {
            ip: ip.into(),
            port: 443,
            hostname: String::new(),
            cve: "CVE-2019-19781".into(),
            state: state.into(),
            organisation: org.map(str::to_string),
            sector: org.map(|_| "healthcare".to_string()),
            method: org.map(|_| "network".to_string()),
            asn,
            holder: asn.map(|_| "Example Hosting".to_string()),
            country: None,
            abuse_mailboxes: vec![],
            overlaps: 0,
        }
    }

    #[test]
    fn owners_are_counted_and_the_unclaimed_listed() {
        let findings = vec![
            finding("192.0.2.1", "vulnerable", Some("Ziekenhuis A"), Some(64496)),
            finding("192.0.2.2", "mitigated", Some("Ziekenhuis A"), Some(64496)),
            finding("192.0.2.3", "patched", Some("Ziekenhuis B"), None),
            finding("198.51.100.1", "vulnerable", None, Some(64500)),
            finding("198.51.100.2", "patched", None, None),
        ];
        let report = by_owner(&findings, Owner::Organisation, None);
        let rows: Vec<(&str, u64, u64)> = report
            .groups
            .iter()
            .map(|g| (g.owner.as_str(), g.open, g.services))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("Ziekenhuis A", 2, 2),
                (UNATTRIBUTED, 1, 2),
                ("Ziekenhuis B", 0, 1)
            ]
        );
        assert_eq!(
            report
                .unattributed
                .iter()
                .map(|f| f.ip.as_str())
                .collect::<Vec<_>>(),
            vec!["198.51.100.1"],
            "only open findings are listed as needing an owner"
        );
        let by_asn = by_owner(&findings, Owner::Asn, None);
        assert_eq!(by_asn.groups[0].owner, "AS64496 Example Hosting");
        let by_sector = by_owner(&findings, Owner::Sector, Some("CVE-2019-19781"));
        assert_eq!(by_sector.groups[0].owner, "healthcare");
        assert!(
            by_owner(&findings, Owner::Sector, Some("CVE-2023-3519"))
                .groups
                .is_empty()
        );
    }
}
