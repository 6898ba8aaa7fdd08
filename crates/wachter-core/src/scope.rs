//! Which addresses wachter may connect to.
//!
//! A [`ScopePolicy`] is built once per scan from the configured scope (the allow-list), the
//! opt-out list and the IANA special-purpose registries. It is consulted by the connector
//! right before a socket is opened, so a hostname that resolves outside the scope is refused
//! just like an address typed by hand.
//!
//! The special-purpose ranges (loopback, private, documentation, multicast, …) are refused
//! unless the scope names them *explicitly*: a scope entry lying inside the special range
//! (`127.0.0.0/8`, `10.1.0.0/16`) makes that part scannable, while `0.0.0.0/0` does not.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::addr::{IpRange, RangeSet};

/// IANA IPv4 and IPv6 special-purpose address blocks, plus multicast and the IPv4 reserved
/// block, following zmap's default blocklist and the IANA registries.
pub const SPECIAL_PURPOSE: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Why the policy refuses an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Not inside any scope entry.
    OutOfScope,
    /// Listed in the opt-out (exclusion) list.
    OptOut,
    /// In an IANA special-purpose block that the scope does not name explicitly.
    SpecialPurpose,
}

impl Refusal {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::OutOfScope => "out_of_scope",
            Refusal::OptOut => "opt_out",
            Refusal::SpecialPurpose => "special_purpose",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The compiled allow/deny decision for one scan.
#[derive(Clone, Debug)]
pub struct ScopePolicy {
    /// Addresses in some scope entry, special-purpose blocks included.
    scope: RangeSet,
    /// Addresses a connection may go to: scope minus unnamed special blocks minus opt-outs.
    allowed: RangeSet,
    opt_out: RangeSet,
    special: RangeSet,
}

impl ScopePolicy {
    /// Compiles a policy. An empty `scope` means the whole address space (which, by the
    /// special-purpose rule, is the public unicast Internet).
    pub fn new(scope: &[IpRange], opt_out: &[IpRange]) -> Self {
        let special_blocks: Vec<IpRange> = SPECIAL_PURPOSE
            .iter()
            .filter_map(|s| s.parse::<IpRange>().ok())
            .collect();
        let special = RangeSet::from_ranges(special_blocks.iter().copied());
        let entries: Vec<IpRange> = if scope.is_empty() {
            vec![everything_v4(), everything_v6()]
        } else {
            scope.to_vec()
        };
        let scope_set = RangeSet::from_ranges(entries.iter().copied());
        // Entries that lie inside one special block name that block explicitly.
        let named_special = RangeSet::from_ranges(
            entries
                .iter()
                .filter(|e| special_blocks.iter().any(|block| e.is_within(block)))
                .copied(),
        );
        let opt_out = RangeSet::from_ranges(opt_out.iter().copied());
        let allowed = scope_set
            .difference(&special)
            .union(&named_special)
            .difference(&opt_out);
        ScopePolicy {
            scope: scope_set,
            allowed,
            opt_out,
            special,
        }
    }

    /// The one question asked before every connection.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allowed.contains(ip) {
            return Ok(());
        }
        Err(self.reason(ip))
    }

    /// The set of addresses a connection may go to.
    pub fn allowed(&self) -> &RangeSet {
        &self.allowed
    }

    fn reason(&self, ip: IpAddr) -> Refusal {
        if !self.scope.contains(ip) {
            Refusal::OutOfScope
        } else if self.opt_out.contains(ip) {
            Refusal::OptOut
        } else if self.special.contains(ip) {
            Refusal::SpecialPurpose
        } else {
            // Unreachable by construction (allowed = scope - special - opt_out); the most
            // conservative answer keeps the guard closed.
            Refusal::OutOfScope
        }
    }

    /// Splits `wanted` into the part the policy allows and the refused parts by reason.
    /// Used to shrink a target space before it is ordered, so refused networks are reported
    /// once as ranges rather than address by address.
    pub fn partition(&self, wanted: &RangeSet) -> (RangeSet, Vec<(Refusal, RangeSet)>) {
        let allowed = wanted.intersection(&self.allowed);
        let refused = wanted.difference(&self.allowed);
        let out_of_scope = refused.difference(&self.scope);
        let in_scope = refused.intersection(&self.scope);
        let opt_out = in_scope.intersection(&self.opt_out);
        let special = in_scope.difference(&self.opt_out);
        let parts = [
            (Refusal::OutOfScope, out_of_scope),
            (Refusal::OptOut, opt_out),
            (Refusal::SpecialPurpose, special),
        ]
        .into_iter()
        .filter(|(_, set)| !set.is_empty())
        .collect();
        (allowed, parts)
    }
}

fn everything_v4() -> IpRange {
    IpRange::from_net("0.0.0.0/0".parse().unwrap_or_default())
}

fn everything_v6() -> IpRange {
    IpRange::from_net("::/0".parse().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(items: &[&str]) -> Vec<IpRange> {
        items.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_special_block_parses() {
        for block in SPECIAL_PURPOSE {
            assert!(block.parse::<IpRange>().is_ok(), "{block}");
        }
    }

    #[test]
    fn default_scope_is_the_public_internet() {
        let p = ScopePolicy::new(&[], &[]);
        assert_eq!(p.check(ip("127.0.0.1")), Err(Refusal::SpecialPurpose));
        assert_eq!(p.check(ip("10.1.2.3")), Err(Refusal::SpecialPurpose));
        assert_eq!(p.check(ip("::1")), Err(Refusal::SpecialPurpose));
        assert_eq!(p.check(ip("2001:db8::1")), Err(Refusal::SpecialPurpose));
        assert!(p.check(ip("145.1.2.3")).is_ok());
    }

    #[test]
    fn loopback_needs_to_be_named() {
        let broad = ScopePolicy::new(&ranges(&["0.0.0.0/0"]), &[]);
        assert_eq!(broad.check(ip("127.0.0.1")), Err(Refusal::SpecialPurpose));
        let named = ScopePolicy::new(&ranges(&["127.0.0.0/8"]), &[]);
        assert!(named.check(ip("127.3.4.5")).is_ok());
        assert_eq!(named.check(ip("145.1.2.3")), Err(Refusal::OutOfScope));
        let narrow = ScopePolicy::new(&ranges(&["127.20.0.0/20"]), &[]);
        assert!(narrow.check(ip("127.20.15.255")).is_ok());
        assert_eq!(narrow.check(ip("127.20.16.0")), Err(Refusal::OutOfScope));
        // A scope straddling a special block does not name it.
        let straddle = ScopePolicy::new(&ranges(&["126.0.0.0/7"]), &[]);
        assert!(straddle.check(ip("126.1.1.1")).is_ok());
        assert_eq!(
            straddle.check(ip("127.1.1.1")),
            Err(Refusal::SpecialPurpose)
        );
    }

    #[test]
    fn opt_out_wins_over_scope() {
        let p = ScopePolicy::new(&ranges(&["127.0.0.0/8"]), &ranges(&["127.0.0.128/25"]));
        assert!(p.check(ip("127.0.0.127")).is_ok());
        assert_eq!(p.check(ip("127.0.0.200")), Err(Refusal::OptOut));
    }

    #[test]
    fn partition_reports_refused_parts_by_reason() {
        let p = ScopePolicy::new(
            &ranges(&["127.0.0.0/24", "0.0.0.0/0"]),
            &ranges(&["127.0.0.0/26"]),
        );
        let wanted = RangeSet::from_ranges(ranges(&["127.0.0.0/23", "145.1.2.0/30"]));
        let (allowed, refused) = p.partition(&wanted);
        assert_eq!(allowed.address_count(), 192 + 4);
        let by = |r: Refusal| {
            refused
                .iter()
                .find(|(x, _)| *x == r)
                .map(|(_, s)| s.address_count())
        };
        assert_eq!(by(Refusal::OptOut), Some(64));
        assert_eq!(by(Refusal::SpecialPurpose), Some(256));
        assert_eq!(by(Refusal::OutOfScope), None);
    }
}
