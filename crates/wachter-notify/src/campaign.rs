//! A campaign: open findings grouped into one message per recipient organisation, with a
//! decision recorded for every finding (told, suppressed, too recent, unroutable).
//!
//! Who is told, in order:
//! 1. the organisation the service was attributed to, at its security, abuse and
//!    technical contacts (management only when there is no one else);
//! 2. when the organisation has no usable address: the registry's abuse mailboxes for
//!    the network, and failing those the sector CERT;
//! 3. services owned by no organisation: the registry's abuse mailboxes, one message per
//!    set of mailboxes (a provider hears about all its customers' hosts at once).
//!
//! A finding told less than the repeat interval ago is left out; a reminder (round 2 and
//! later) copies the sector CERT when one is configured. Nothing here reads a clock or a
//! database: the caller passes `now` and the notification history.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use lettre::message::Mailbox;

use crate::mail::parse_mailbox;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wachter_constituency::org::{Contact, ContactRole};
use wachter_core::addr::IpRange;

use crate::model::HostFinding;

/// One finding offered to a campaign, with its history.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    pub finding: HostFinding,
    /// The organisation the service was attributed to.
    pub organisation_id: Option<i64>,
    /// Messages that told this finding (sent).
    pub notified_count: i64,
    /// When it was last told (sent, or queued if still waiting; RFC 3339).
    pub last_notified: Option<String>,
    /// Messages about it still in the outbox (queued, being sent, held).
    pub pending: i64,
}

/// An organisation as a campaign sees it.
#[derive(Clone, Debug, Default)]
pub struct Recipient {
    pub name: String,
    pub sector: Option<String>,
    pub contacts: Vec<Contact>,
}

/// How a campaign decides.
#[derive(Clone, Debug)]
pub struct Policy {
    pub now: OffsetDateTime,
    /// A finding told less than this long ago is not told again.
    pub repeat_after: time::Duration,
    /// Addresses (`a@b.nl`), domains (`@b.nl`) and organisations (`org:Name`) never
    /// written to.
    pub do_not_contact: Vec<String>,
    /// Networks whose findings are never told (the scan's opt-outs, and more).
    pub suppress: Vec<IpRange>,
    /// Sector → the sector CERT's mailbox (`healthcare` → `Z-CERT <cert@z-cert.nl>`).
    pub escalation: BTreeMap<String, String>,
    /// From which round on the sector CERT is copied.
    pub escalate_from_round: i64,
    pub default_language: String,
}

/// What happened to one finding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// In a message.
    Told,
    /// Told less than the repeat interval ago.
    RecentlyTold,
    /// A message about it is still in the outbox (queued, being sent, or held).
    Pending,
    /// Its network is suppressed (opt-out).
    Suppressed,
    /// Every address for it is on the do-not-contact list.
    DoNotContact,
    /// No usable address anywhere: an analyst must find one.
    Unroutable,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Told => "told",
            Outcome::RecentlyTold => "recently_told",
            Outcome::Pending => "pending",
            Outcome::Suppressed => "suppressed",
            Outcome::DoNotContact => "do_not_contact",
            Outcome::Unroutable => "unroutable",
        }
    }
}

/// The decision about one finding.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Decision {
    pub finding_id: i64,
    pub ip: String,
    pub port: u16,
    pub cve: String,
    pub state: String,
    pub outcome: Outcome,
    /// Who is told (the message's recipient name), when told.
    pub recipient: Option<String>,
    pub reason: String,
}

/// One message to write.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedMessage {
    pub organisation_id: Option<i64>,
    /// The organisation, or the network holder.
    pub recipient_name: String,
    pub sector: Option<String>,
    /// Mailboxes as configured (`Name <address>`), checked to parse.
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub language: String,
    /// 1 for a first notice; n for the n-th time any of these hosts is told.
    pub round: i64,
    /// When any of these findings was last told.
    pub previous_notice: Option<String>,
    /// The sector CERT copied or written to.
    pub escalated_to: Option<String>,
    /// Vulnerable first, then mitigated; by address within each.
    pub findings: Vec<HostFinding>,
}

/// A campaign's messages and every finding's decision.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub messages: Vec<PlannedMessage>,
    pub decisions: Vec<Decision>,
    /// Contacts that could not be used, per organisation (`name: address: why`).
    pub unusable_contacts: Vec<String>,
}

impl Plan {
    /// Findings per outcome.
    pub fn counts(&self) -> BTreeMap<Outcome, usize> {
        let mut counts = BTreeMap::new();
        for d in &self.decisions {
            *counts.entry(d.outcome).or_insert(0) += 1;
        }
        counts
    }
}

/// Where a group of findings goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Route {
    Organisation(i64),
    Mailboxes(Vec<String>),
}

/// Groups `candidates` into messages under `policy`.
pub fn plan(
    candidates: &[Candidate],
    organisations: &HashMap<i64, Recipient>,
    policy: &Policy,
) -> Plan {
    let blocked = DoNotContact::new(&policy.do_not_contact);
    let mut plan = Plan::default();
    let mut groups: BTreeMap<Route, Vec<&Candidate>> = BTreeMap::new();
    let mut org_addresses: HashMap<i64, (Vec<String>, Option<String>)> = HashMap::new();

    for org_id in candidates.iter().filter_map(|c| c.organisation_id) {
        if org_addresses.contains_key(&org_id) {
            continue;
        }
        let Some(org) = organisations.get(&org_id) else {
            continue;
        };
        let (addresses, language, unusable) = org_contacts(org, &blocked);
        plan.unusable_contacts.extend(unusable);
        org_addresses.insert(org_id, (addresses, language));
    }

    for candidate in candidates {
        let f = &candidate.finding;
        let decide = |outcome, reason: String| Decision {
            finding_id: f.finding_id,
            ip: f.ip.clone(),
            port: f.port,
            cve: f.cve.clone(),
            state: f.state.clone(),
            outcome,
            recipient: None,
            reason,
        };
        if let Some(net) = suppressed_by(&f.ip, &policy.suppress) {
            plan.decisions.push(decide(
                Outcome::Suppressed,
                format!("in suppressed network {net}"),
            ));
            continue;
        }
        if candidate.pending > 0 {
            plan.decisions.push(decide(
                Outcome::Pending,
                "a message about it is still in the outbox (wachter outbox list)".into(),
            ));
            continue;
        }
        if let Some(last) = recently_told(candidate, policy) {
            plan.decisions.push(decide(
                Outcome::RecentlyTold,
                format!("told on {last}, inside the repeat interval"),
            ));
            continue;
        }
        let org = candidate
            .organisation_id
            .and_then(|id| organisations.get(&id).map(|o| (id, o)));
        if let Some((_, org)) = org
            && blocked.organisation(&org.name)
        {
            plan.decisions.push(decide(
                Outcome::DoNotContact,
                format!(
                    "organisation {} is on the do-not-contact list",
                    crate::text::one_line(&org.name, 200)
                ),
            ));
            continue;
        }
        let registry: Vec<String> = usable_mailboxes(&f.owner.abuse_contacts, &blocked);
        let route = match org {
            Some((id, _)) => Some(Route::Organisation(id)),
            None if !registry.is_empty() => Some(Route::Mailboxes(registry.clone())),
            None => None,
        };
        match route {
            Some(route) => groups.entry(route).or_default().push(candidate),
            None => {
                // Blocked only if a mailbox that parses is on the list; unparsable ones
                // leave the finding without an address.
                let parsable = f
                    .owner
                    .abuse_contacts
                    .iter()
                    .any(|m| parse_mailbox(m).is_ok());
                let outcome = if parsable {
                    Outcome::DoNotContact
                } else {
                    Outcome::Unroutable
                };
                plan.decisions.push(decide(
                    outcome,
                    if outcome == Outcome::Unroutable {
                        "no organisation and no usable registry abuse mailbox: find a contact"
                            .into()
                    } else {
                        "every registry abuse mailbox is on the do-not-contact list".into()
                    },
                ));
            }
        }
    }

    for (route, members) in groups {
        let mut message = match &route {
            Route::Organisation(id) => {
                let org = &organisations[id];
                let (addresses, language) = org_addresses.get(id).cloned().unwrap_or_default();
                let mut message = empty_message(Some(*id), &org.name, org.sector.clone(), policy);
                if let Some(language) = language {
                    message.language = language;
                }
                if addresses.is_empty() {
                    // No one at the organisation: its networks' abuse desks, else the
                    // sector CERT.
                    let mut registry: Vec<String> = members
                        .iter()
                        .flat_map(|c| usable_mailboxes(&c.finding.owner.abuse_contacts, &blocked))
                        .collect();
                    registry.sort();
                    registry.dedup();
                    if registry.is_empty() {
                        match sector_cert(org.sector.as_deref(), policy, &blocked) {
                            Some(cert) => {
                                message.to = vec![cert.clone()];
                                message.escalated_to = Some(cert);
                            }
                            None => {
                                for c in &members {
                                    plan.decisions.push(Decision {
                                        finding_id: c.finding.finding_id,
                                        ip: c.finding.ip.clone(),
                                        port: c.finding.port,
                                        cve: c.finding.cve.clone(),
                                        state: c.finding.state.clone(),
                                        outcome: Outcome::Unroutable,
                                        recipient: None,
                                        reason: format!(
                                            "{} has no usable contact, its network no abuse mailbox, its sector no CERT",
                                            crate::text::one_line(&org.name, 200)
                                        ),
                                    });
                                }
                                continue;
                            }
                        }
                    } else {
                        message.to = registry;
                    }
                } else {
                    message.to = addresses;
                }
                message
            }
            Route::Mailboxes(mailboxes) => {
                let first = &members[0].finding.owner;
                let name = first
                    .holder
                    .clone()
                    .or_else(|| first.network.clone())
                    .unwrap_or_else(|| mailboxes.join(", "));
                let mut message = empty_message(None, &name, None, policy);
                message.to = mailboxes.clone();
                message
            }
        };
        message.round = 1 + members.iter().map(|c| c.notified_count).max().unwrap_or(0);
        message.previous_notice = members.iter().filter_map(|c| c.last_notified.clone()).max();
        if message.round >= policy.escalate_from_round
            && message.escalated_to.is_none()
            && let Some(cert) = sector_cert(message.sector.as_deref(), policy, &blocked)
            && !message.to.contains(&cert)
        {
            message.cc.push(cert.clone());
            message.escalated_to = Some(cert);
        }
        let mut findings: Vec<HostFinding> = members.iter().map(|c| c.finding.clone()).collect();
        findings.sort_by(|a, b| {
            (state_rank(&a.state), ip_key(&a.ip), a.port, &a.hostname).cmp(&(
                state_rank(&b.state),
                ip_key(&b.ip),
                b.port,
                &b.hostname,
            ))
        });
        for f in &findings {
            plan.decisions.push(Decision {
                finding_id: f.finding_id,
                ip: f.ip.clone(),
                port: f.port,
                cve: f.cve.clone(),
                state: f.state.clone(),
                outcome: Outcome::Told,
                recipient: Some(message.recipient_name.clone()),
                reason: format!("to {}", message.to.join(", ")),
            });
        }
        message.findings = findings;
        plan.messages.push(message);
    }
    plan.decisions.sort_by(|a, b| {
        (ip_key(&a.ip), a.port, a.finding_id).cmp(&(ip_key(&b.ip), b.port, b.finding_id))
    });
    plan
}

fn empty_message(
    organisation_id: Option<i64>,
    name: &str,
    sector: Option<String>,
    policy: &Policy,
) -> PlannedMessage {
    PlannedMessage {
        organisation_id,
        recipient_name: name.to_string(),
        sector,
        to: Vec::new(),
        cc: Vec::new(),
        language: policy.default_language.clone(),
        round: 1,
        previous_notice: None,
        escalated_to: None,
        findings: Vec::new(),
    }
}

/// An organisation's usable addresses (best roles first), the language of the first, and
/// the contacts that could not be used.
fn org_contacts(
    org: &Recipient,
    blocked: &DoNotContact,
) -> (Vec<String>, Option<String>, Vec<String>) {
    let org_name = crate::text::one_line(&org.name, 200);
    let mut unusable = Vec::new();
    let mut usable: Vec<(u8, &Contact, String)> = Vec::new();
    for contact in &org.contacts {
        match parse_mailbox(&contact.email) {
            Ok(mailbox) => {
                if blocked.address(mailbox.email.as_ref()) {
                    unusable.push(format!(
                        "{org_name}: {}: on the do-not-contact list",
                        mailbox.email
                    ));
                    continue;
                }
                let rank = match contact.role {
                    ContactRole::Security => 0,
                    ContactRole::Abuse => 1,
                    ContactRole::Technical => 2,
                    ContactRole::Management => 3,
                };
                let shown = match &contact.name {
                    // The name goes into a header: one line, however it was written.
                    Some(name) if mailbox.name.is_none() => {
                        let name = crate::text::one_line(name, 100);
                        Mailbox::new((!name.is_empty()).then_some(name), mailbox.email).to_string()
                    }
                    _ => mailbox.to_string(),
                };
                usable.push((rank, contact, shown));
            }
            Err(e) => unusable.push(format!(
                "{org_name}: {:?}: not a usable address ({e})",
                crate::text::one_line(&contact.email, 100)
            )),
        }
    }
    usable.sort_by_key(|(rank, _, _)| *rank);
    // Management only when no one else is there.
    if usable.iter().any(|(rank, _, _)| *rank < 3) {
        usable.retain(|(rank, _, _)| *rank < 3);
    }
    let language = usable.iter().find_map(|(_, c, _)| c.language.clone());
    let mut addresses: Vec<String> = Vec::new();
    for (_, _, shown) in usable {
        if !addresses.contains(&shown) {
            addresses.push(shown);
        }
    }
    (addresses, language, unusable)
}

/// Registry mailboxes that parse and are not blocked.
fn usable_mailboxes(mailboxes: &[String], blocked: &DoNotContact) -> Vec<String> {
    let mut out: Vec<String> = mailboxes
        .iter()
        .filter_map(|m| parse_mailbox(m).ok())
        .map(|m| m.email.to_string().to_ascii_lowercase())
        .filter(|address| !blocked.address(address))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn sector_cert(sector: Option<&str>, policy: &Policy, blocked: &DoNotContact) -> Option<String> {
    let sector = sector?.trim().to_lowercase();
    let cert = policy
        .escalation
        .iter()
        .find(|(name, _)| name.trim().to_lowercase() == sector)
        .map(|(_, cert)| cert)?;
    let mailbox = parse_mailbox(cert).ok()?;
    (!blocked.address(mailbox.email.as_ref())).then(|| mailbox.to_string())
}

fn recently_told(candidate: &Candidate, policy: &Policy) -> Option<String> {
    let last = candidate.last_notified.as_deref()?;
    // An unreadable time is treated as recent: better one reminder late than two at once.
    let recent = match OffsetDateTime::parse(last, &Rfc3339) {
        Ok(at) => policy.now - at < policy.repeat_after,
        Err(_) => true,
    };
    recent.then(|| last.to_string())
}

fn suppressed_by(ip: &str, networks: &[IpRange]) -> Option<IpRange> {
    let ip: IpAddr = ip.parse().ok()?;
    networks.iter().find(|n| n.contains(ip)).copied()
}

fn state_rank(state: &str) -> u8 {
    match state {
        "vulnerable" => 0,
        "mitigated" => 1,
        _ => 2,
    }
}

/// Addresses sort numerically (127.0.0.9 before 127.0.0.10), unparsable ones last.
fn ip_key(ip: &str) -> (u8, Option<IpAddr>, String) {
    match ip.parse::<IpAddr>() {
        Ok(addr) => (0, Some(addr), String::new()),
        Err(_) => (1, None, ip.to_string()),
    }
}

/// The do-not-contact list, compiled.
struct DoNotContact {
    addresses: Vec<String>,
    domains: Vec<String>,
    organisations: Vec<String>,
}

impl DoNotContact {
    fn new(entries: &[String]) -> Self {
        let mut list = DoNotContact {
            addresses: Vec::new(),
            domains: Vec::new(),
            organisations: Vec::new(),
        };
        for entry in entries {
            let entry = entry.trim();
            if let Some(org) = entry.strip_prefix("org:") {
                list.organisations.push(org.trim().to_lowercase());
            } else if let Some(domain) = entry.strip_prefix('@') {
                list.domains.push(domain.to_ascii_lowercase());
            } else if !entry.is_empty() {
                list.addresses.push(entry.to_ascii_lowercase());
            }
        }
        list
    }

    fn address(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        self.addresses.contains(&address)
            || self
                .domains
                .iter()
                .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
    }

    fn organisation(&self, name: &str) -> bool {
        self.organisations.contains(&name.trim().to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Owner;
    use wachter_constituency::org::ContactSource;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2020-01-20T12:00:00Z", &Rfc3339).unwrap()
    }

    fn policy() -> Policy {
        Policy {
            now: now(),
            repeat_after: time::Duration::days(7),
            do_not_contact: Vec::new(),
            suppress: Vec::new(),
            escalation: BTreeMap::from([(
                "healthcare".to_string(),
                "Z-CERT <cert@z-cert.test>".to_string(),
            )]),
            escalate_from_round: 2,
            default_language: "en".into(),
        }
    }

    fn finding(id: i64, ip: &str, state: &str) -> HostFinding {
        HostFinding {
            finding_id: id,
            ip: ip.into(),
            port: 443,
            cve: "CVE-2019-19781".into(),
            state: state.into(),
            ..Default::default()
        }
    }

    fn candidate(id: i64, ip: &str, state: &str, org: Option<i64>) -> Candidate {
        Candidate {
            finding: finding(id, ip, state),
            organisation_id: org,
            ..Default::default()
        }
    }

    fn contact(email: &str, role: ContactRole, language: Option<&str>) -> Contact {
        Contact {
            email: email.into(),
            role,
            language: language.map(Into::into),
            name: None,
            source: ContactSource::Manual,
        }
    }

    fn orgs() -> HashMap<i64, Recipient> {
        HashMap::from([
            (
                1,
                Recipient {
                    name: "Ziekenhuis Oost".into(),
                    sector: Some("healthcare".into()),
                    contacts: vec![
                        contact("board@zho.test", ContactRole::Management, None),
                        contact("soc@zho.test", ContactRole::Security, Some("nl")),
                        contact("not an address\r\nBcc: x@y.test", ContactRole::Abuse, None),
                    ],
                },
            ),
            (
                2,
                Recipient {
                    name: "Gemeente West".into(),
                    sector: Some("government".into()),
                    contacts: vec![contact("ciso@west.test", ContactRole::Management, None)],
                },
            ),
            (
                3,
                Recipient {
                    name: "Kliniek Zuid".into(),
                    sector: Some("healthcare".into()),
                    contacts: Vec::new(),
                },
            ),
        ])
    }

    #[test]
    fn one_message_per_organisation_best_contacts_vulnerable_first() {
        let candidates = vec![
            candidate(1, "127.0.0.10", "mitigated", Some(1)),
            candidate(2, "127.0.0.9", "vulnerable", Some(1)),
            candidate(3, "127.0.1.1", "vulnerable", Some(2)),
        ];
        let plan = plan(&candidates, &orgs(), &policy());
        assert_eq!(plan.messages.len(), 2);
        let oost = &plan.messages[0];
        assert_eq!(oost.recipient_name, "Ziekenhuis Oost");
        assert_eq!(oost.to, vec!["soc@zho.test"], "management left out");
        assert_eq!(oost.language, "nl");
        let order: Vec<&str> = oost.findings.iter().map(|f| f.ip.as_str()).collect();
        assert_eq!(order, vec!["127.0.0.9", "127.0.0.10"]);
        assert_eq!(
            plan.messages[1].to,
            vec!["ciso@west.test"],
            "management when alone"
        );
        assert_eq!(plan.unusable_contacts.len(), 1);
        assert!(plan.unusable_contacts[0].contains("not a usable address"));
        assert_eq!(plan.counts()[&Outcome::Told], 3);
    }

    #[test]
    fn recent_findings_wait_and_reminders_copy_the_sector_cert() {
        let mut recent = candidate(1, "127.0.0.1", "vulnerable", Some(1));
        recent.notified_count = 1;
        recent.last_notified = Some("2020-01-18T12:00:00Z".into());
        let mut due = candidate(2, "127.0.0.2", "vulnerable", Some(1));
        due.notified_count = 1;
        due.last_notified = Some("2020-01-10T12:00:00Z".into());
        let plan = plan(&[recent, due], &orgs(), &policy());
        assert_eq!(plan.counts()[&Outcome::RecentlyTold], 1);
        let message = &plan.messages[0];
        assert_eq!(message.findings.len(), 1);
        assert_eq!(message.round, 2);
        assert_eq!(
            message.previous_notice.as_deref(),
            Some("2020-01-10T12:00:00Z")
        );
        assert_eq!(message.cc, vec!["Z-CERT <cert@z-cert.test>"]);
        assert_eq!(
            message.escalated_to.as_deref(),
            Some("Z-CERT <cert@z-cert.test>")
        );
    }

    #[test]
    fn registry_mailboxes_then_sector_cert_then_unroutable() {
        let mut provider_a = candidate(1, "127.0.2.1", "vulnerable", None);
        provider_a.finding.owner = Owner {
            holder: Some("Hoster BV".into()),
            abuse_contacts: vec!["Abuse@Hoster.test".into()],
            ..Default::default()
        };
        let mut provider_b = provider_a.clone();
        provider_b.finding.finding_id = 2;
        provider_b.finding.ip = "127.0.2.2".into();
        let nobody = candidate(3, "127.0.3.1", "vulnerable", None);
        let clinic = candidate(4, "127.0.4.1", "mitigated", Some(3));
        let plan = plan(
            &[provider_a, provider_b, nobody, clinic],
            &orgs(),
            &policy(),
        );
        let names: Vec<&str> = plan
            .messages
            .iter()
            .map(|m| m.recipient_name.as_str())
            .collect();
        assert_eq!(names, vec!["Kliniek Zuid", "Hoster BV"]);
        assert_eq!(plan.messages[0].to, vec!["Z-CERT <cert@z-cert.test>"]);
        assert_eq!(plan.messages[1].to, vec!["abuse@hoster.test"]);
        assert_eq!(plan.messages[1].findings.len(), 2);
        let unroutable: Vec<i64> = plan
            .decisions
            .iter()
            .filter(|d| d.outcome == Outcome::Unroutable)
            .map(|d| d.finding_id)
            .collect();
        assert_eq!(unroutable, vec![3]);
    }

    #[test]
    fn a_finding_with_a_message_in_the_outbox_is_never_told_again() {
        let mut waiting = candidate(1, "127.0.0.1", "vulnerable", Some(1));
        waiting.pending = 1;
        waiting.last_notified = Some("2019-01-01T00:00:00Z".into());
        let mut policy = policy();
        policy.repeat_after = time::Duration::ZERO;
        let plan = plan(&[waiting], &orgs(), &policy);
        assert!(plan.messages.is_empty());
        assert_eq!(plan.decisions[0].outcome, Outcome::Pending);
    }

    #[test]
    fn unparsable_registry_mailboxes_leave_a_finding_unroutable() {
        let mut odd = candidate(1, "127.0.5.1", "vulnerable", None);
        odd.finding.owner.abuse_contacts = vec!["abuse at isp".into(), "".into()];
        let plan = plan(&[odd], &orgs(), &policy());
        assert_eq!(plan.decisions[0].outcome, Outcome::Unroutable);
    }

    #[test]
    fn suppression_and_do_not_contact() {
        let mut policy = policy();
        policy.suppress = vec![IpRange::from_net("127.0.0.0/24".parse().unwrap())];
        policy.do_not_contact = vec!["org:gemeente west".into(), "@hoster.test".into()];
        let mut hosted = candidate(3, "127.0.2.1", "vulnerable", None);
        hosted.finding.owner.abuse_contacts = vec!["abuse@noc.hoster.test".into()];
        let candidates = vec![
            candidate(1, "127.0.0.5", "vulnerable", Some(1)),
            candidate(2, "127.0.1.1", "vulnerable", Some(2)),
            hosted,
        ];
        let plan = plan(&candidates, &orgs(), &policy);
        assert!(plan.messages.is_empty());
        let outcomes: Vec<Outcome> = plan.decisions.iter().map(|d| d.outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Suppressed,
                Outcome::DoNotContact,
                Outcome::DoNotContact
            ]
        );
    }
}
