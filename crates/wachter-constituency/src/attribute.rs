//! Attribution: which organisation a service belongs to, and how that was decided.
//!
//! The evidence, strongest first (the first that answers wins):
//!
//! 1. **network**: the most specific organisation network holding the address. Other
//!    organisations' networks that also hold it (less specific, or the same network listed
//!    twice) are counted, so the report can say the choice was contested.
//! 2. **hostname**: the name the service was scanned under (the CERT's own target list,
//!    so it outranks what the server presents).
//! 3. **certificate**: a name in the service's certificate (subject CN first, then DNS
//!    SANs; `*.example.nl` counts for `example.nl`) under an organisation's domain; other
//!    organisations named in the same certificate contest the claim.
//! 4. **reverse_dns**: a PTR name of the address.
//! 5. **asn**: the address's AS is one an organisation runs.
//!
//! Registry networks (RIPE) are looked up separately: they give an abuse contact for
//! services no organisation claims, and context for those one does.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::domains::DomainIndex;
use crate::org::Organisation;
use crate::prefix::PrefixMap;

/// How an organisation was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Network,
    Certificate,
    Hostname,
    ReverseDns,
    Asn,
}

impl Method {
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Network => "network",
            Method::Certificate => "certificate",
            Method::Hostname => "hostname",
            Method::ReverseDns => "reverse_dns",
            Method::Asn => "asn",
        }
    }
}

/// What is known about one service.
#[derive(Clone, Debug, Default)]
pub struct Facts<'a> {
    pub ip: Option<IpAddr>,
    /// The name the target came with (empty when none).
    pub hostname: &'a str,
    /// Subject CN and DNS SANs of the service's certificate.
    pub cert_names: &'a [String],
    pub ptr_names: &'a [String],
    pub asn: Option<u32>,
}

/// An organisation's claim on a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Index into the organisations the [`Attributor`] was built from.
    pub organisation: usize,
    pub method: Method,
    /// The network, domain or AS that matched.
    pub matched: String,
    /// The name that matched a domain (certificate, hostname or PTR name).
    pub name: Option<String>,
    /// Other organisations whose networks also hold the address.
    pub contested_by: Vec<usize>,
}

/// Everything needed to attribute services to a constituency's organisations.
pub struct Attributor {
    networks: PrefixMap<Vec<usize>>,
    domains: DomainIndex<usize>,
    asns: HashMap<u32, usize>,
}

impl Attributor {
    /// Indexes the organisations' networks, domains and ASes. Domains are validated when
    /// organisations are read; one the index refuses is returned as a problem, the rest
    /// still count.
    pub fn new(orgs: &[Organisation]) -> (Attributor, Vec<String>) {
        let mut networks: PrefixMap<Vec<usize>> = PrefixMap::new();
        let mut domain_pairs = Vec::new();
        let mut asns = HashMap::new();
        for (i, org) in orgs.iter().enumerate() {
            for net in &org.networks {
                let mut owners = networks.get(net).cloned().unwrap_or_default();
                owners.push(i);
                networks.insert(*net, owners);
            }
            for domain in &org.domains {
                domain_pairs.push((domain.clone(), i));
            }
            for asn in &org.asns {
                asns.entry(*asn).or_insert(i);
            }
        }
        let mut domains = DomainIndex::new();
        let mut problems = Vec::new();
        for (domain, i) in domain_pairs {
            if let Err(e) = domains.insert(&domain, i) {
                problems.push(format!("{}: {e}", orgs[i].name));
            }
        }
        (
            Attributor {
                networks,
                domains,
                asns,
            },
            problems,
        )
    }

    /// The organisation that claims a service, if any.
    pub fn claim(&self, facts: &Facts) -> Option<Claim> {
        if let Some(ip) = facts.ip {
            let matches = self.networks.matches(ip);
            if let Some((net, owners)) = matches.first() {
                let first = owners.first().copied()?;
                let mut contested_by: Vec<usize> = matches
                    .iter()
                    .flat_map(|(_, owners)| owners.iter().copied())
                    .filter(|o| *o != first)
                    .collect();
                contested_by.sort_unstable();
                contested_by.dedup();
                return Some(Claim {
                    organisation: first,
                    method: Method::Network,
                    matched: net.to_string(),
                    name: None,
                    contested_by,
                });
            }
        }
        // The name from the CERT's own target list before the names the server presents.
        self.by_name(
            std::iter::once(facts.hostname).filter(|h| !h.is_empty()),
            Method::Hostname,
        )
        .or_else(|| {
            self.by_name(
                facts.cert_names.iter().map(String::as_str),
                Method::Certificate,
            )
        })
        .or_else(|| {
            self.by_name(
                facts.ptr_names.iter().map(String::as_str),
                Method::ReverseDns,
            )
        })
        .or_else(|| {
            let asn = facts.asn?;
            Some(Claim {
                organisation: *self.asns.get(&asn)?,
                method: Method::Asn,
                matched: format!("AS{asn}"),
                name: None,
                contested_by: Vec::new(),
            })
        })
    }

    /// The first of `names` under an organisation's domain; organisations that other names
    /// match (a certificate shared by several customers) contest it.
    fn by_name<'n>(&self, names: impl Iterator<Item = &'n str>, method: Method) -> Option<Claim> {
        let mut claim: Option<Claim> = None;
        for name in names {
            let Some(m) = self.domains.lookup(name) else {
                continue;
            };
            match &mut claim {
                None => {
                    let Some((&first, others)) = m.values.split_first() else {
                        continue;
                    };
                    claim = Some(Claim {
                        organisation: first,
                        method,
                        matched: m.domain.to_string(),
                        name: Some(name.to_string()),
                        contested_by: others.to_vec(),
                    });
                }
                Some(c) => {
                    let own = c.organisation;
                    c.contested_by
                        .extend(m.values.iter().copied().filter(|o| *o != own));
                }
            }
        }
        if let Some(c) = &mut claim {
            c.contested_by.sort_unstable();
            c.contested_by.dedup();
        }
        claim
    }
}

/// The names a certificate carries: the subject's CN and the SANs that are DNS names.
pub fn certificate_names(subject: Option<&str>, sans: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(subject) = subject {
        for part in subject.split([',', '/']) {
            let part = part.trim();
            if let Some(cn) = part
                .strip_prefix("CN=")
                .or_else(|| part.strip_prefix("cn="))
            {
                names.push(cn.trim().to_string());
            }
        }
    }
    // wachter records DNS SANs bare, IP SANs as addresses, others as `email:`/`uri:`;
    // `DNS:`/`IP Address:` are OpenSSL's text form, accepted too.
    for san in sans {
        let san = san.trim();
        let name = san
            .strip_prefix("DNS:")
            .or_else(|| san.strip_prefix("dns:"))
            .unwrap_or(san);
        let other_kind = ["email:", "uri:", "IP Address:"]
            .iter()
            .any(|prefix| san.starts_with(prefix));
        if !other_kind && name.parse::<IpAddr>().is_err() {
            names.push(name.to_string());
        }
    }
    // The subject's CN first, then the SANs as given; each name once.
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Registry networks (RIPE inetnums) by address, each mapped to its row id in the store:
/// millions of networks cost a few bytes each here, and only the rows that match a
/// service are read back.
pub struct RegistryIndex {
    networks: PrefixMap<i64>,
}

impl RegistryIndex {
    /// Builds the index in one go (sorted bulk build: faster than inserting one by one).
    pub fn from_networks(networks: impl IntoIterator<Item = (IpNet, i64)>) -> Self {
        RegistryIndex {
            networks: networks.into_iter().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.networks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Every registry network holding `ip`, most specific first: a network without an
    /// abuse contact defers to the covering one that has it.
    pub fn matches(&self, ip: IpAddr) -> Vec<(IpNet, i64)> {
        self.networks
            .matches(ip)
            .into_iter()
            .map(|(net, id)| (net, *id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(name: &str, networks: &[&str], domains: &[&str], asns: &[u32]) -> Organisation {
        Organisation {
            name: name.into(),
            networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            asns: asns.to_vec(),
            ..Organisation::default()
        }
    }

    #[test]
    fn the_strongest_evidence_wins_and_contests_are_counted() {
        let orgs = vec![
            org("Provider", &["192.0.2.0/24"], &[], &[64496]),
            org("Ziekenhuis A", &["192.0.2.0/26"], &["ziekenhuis-a.nl"], &[]),
            org("Ziekenhuis B", &[], &["ziekenhuis-b.nl"], &[]),
        ];
        let (attributor, problems) = Attributor::new(&orgs);
        assert!(problems.is_empty(), "{problems:?}");
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let b_cert = names(&["*.ziekenhuis-b.nl"]);
        let shared = names(&["vpn.ziekenhuis-b.nl", "vpn.ziekenhuis-a.nl"]);
        // (organisation, method, what matched, contested by)
        type Expected<'a> = Option<(usize, Method, &'a str, Vec<usize>)>;
        let cases: Vec<(Facts, Expected)> = vec![
            // Most specific network; the provider's /24 contests it.
            (
                Facts {
                    ip: ip("192.0.2.10"),
                    cert_names: &b_cert,
                    ..Facts::default()
                },
                Some((1, Method::Network, "192.0.2.0/26", vec![0])),
            ),
            (
                Facts {
                    ip: ip("192.0.2.200"),
                    ..Facts::default()
                },
                Some((0, Method::Network, "192.0.2.0/24", vec![])),
            ),
            // Outside every network: the wildcard certificate names B.
            (
                Facts {
                    ip: ip("198.51.100.1"),
                    cert_names: &b_cert,
                    ..Facts::default()
                },
                Some((2, Method::Certificate, "ziekenhuis-b.nl", vec![])),
            ),
            (
                Facts {
                    ip: ip("198.51.100.1"),
                    hostname: "vpn.ziekenhuis-a.nl",
                    ..Facts::default()
                },
                Some((1, Method::Hostname, "ziekenhuis-a.nl", vec![])),
            ),
            (
                Facts {
                    ip: ip("198.51.100.1"),
                    asn: Some(64496),
                    ..Facts::default()
                },
                Some((0, Method::Asn, "AS64496", vec![])),
            ),
            (
                Facts {
                    ip: ip("198.51.100.1"),
                    hostname: "evilziekenhuis-a.nl",
                    ..Facts::default()
                },
                None,
            ),
            // A certificate shared by A and B: the first name decides, the other contests.
            (
                Facts {
                    ip: ip("198.51.100.1"),
                    cert_names: &shared,
                    ..Facts::default()
                },
                Some((2, Method::Certificate, "ziekenhuis-b.nl", vec![1])),
            ),
            // The scanned name outranks the server's certificate.
            (
                Facts {
                    ip: ip("198.51.100.1"),
                    hostname: "vpn.ziekenhuis-a.nl",
                    cert_names: &b_cert,
                    ..Facts::default()
                },
                Some((1, Method::Hostname, "ziekenhuis-a.nl", vec![])),
            ),
        ];
        for (facts, expected) in cases {
            let got = attributor
                .claim(&facts)
                .map(|c| (c.organisation, c.method, c.matched, c.contested_by));
            let expected =
                expected.map(|(o, m, matched, contested)| (o, m, matched.to_string(), contested));
            assert_eq!(got, expected, "{facts:?}");
        }
    }

    #[test]
    fn certificate_names_come_from_cn_and_dns_sans() {
        assert_eq!(
            certificate_names(
                Some("C=NL, O=Ziekenhuis, CN=vpn.ziekenhuis-a.nl"),
                &[
                    "DNS:*.ziekenhuis-a.nl".into(),
                    "IP Address:192.0.2.1".into(),
                    "mail.ziekenhuis-a.nl".into()
                ]
            ),
            vec![
                "vpn.ziekenhuis-a.nl",
                "*.ziekenhuis-a.nl",
                "mail.ziekenhuis-a.nl"
            ]
        );
    }
}
