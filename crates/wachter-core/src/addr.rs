//! Address ranges and sets of them.
//!
//! Both families are kept as inclusive `u128` intervals with a family tag, so one piece of
//! interval arithmetic serves IPv4 and IPv6. A [`RangeSet`] is sorted and merged, which makes
//! membership a binary search and set algebra a linear merge: enough for a country's
//! prefixes, a scope, and an opt-out list.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// The address family of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

/// An inclusive interval of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    family: Family,
    first: u128,
    last: u128,
}

/// Why a piece of text is not an address, network or range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("{0:?} is not an IP address, CIDR network or a-b range")]
    Syntax(String),
    #[error("range {0:?} mixes IPv4 and IPv6")]
    MixedFamilies(String),
    #[error("range {0:?} ends before it starts")]
    Reversed(String),
}

impl IpRange {
    /// The range holding exactly one address.
    pub fn single(ip: IpAddr) -> Self {
        let (family, value) = to_u128(ip);
        IpRange {
            family,
            first: value,
            last: value,
        }
    }

    /// The range covered by a CIDR network (host bits are ignored, as `ipnet` truncates).
    pub fn from_net(net: IpNet) -> Self {
        let net = net.trunc();
        let (family, first) = to_u128(net.network());
        let (_, last) = to_u128(net.broadcast());
        IpRange {
            family,
            first,
            last,
        }
    }

    /// A range from two addresses of the same family, `first <= last`.
    pub fn between(first: IpAddr, last: IpAddr) -> Option<Self> {
        let (fa, a) = to_u128(first);
        let (fb, b) = to_u128(last);
        (fa == fb && a <= b).then_some(IpRange {
            family: fa,
            first: a,
            last: b,
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn first(&self) -> IpAddr {
        from_u128(self.family, self.first)
    }

    pub fn last(&self) -> IpAddr {
        from_u128(self.family, self.last)
    }

    /// Number of addresses, saturating at `u128::MAX` for `::/0`.
    pub fn len(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }

    /// Always false: a range holds at least one address. Present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (family, value) = to_u128(ip);
        family == self.family && self.first <= value && value <= self.last
    }

    /// True when every address of `self` is in `other`.
    pub fn is_within(&self, other: &IpRange) -> bool {
        self.family == other.family && other.first <= self.first && self.last <= other.last
    }

    /// The `offset`-th address of the range (`offset < len`).
    pub fn nth(&self, offset: u128) -> Option<IpAddr> {
        let value = self.first.checked_add(offset)?;
        (value <= self.last).then(|| from_u128(self.family, value))
    }

    /// The smallest list of CIDR networks covering exactly this range.
    pub fn to_cidrs(&self) -> Vec<IpNet> {
        let width: u32 = match self.family {
            Family::V4 => 32,
            Family::V6 => 128,
        };
        let mut out = Vec::new();
        let mut start = self.first;
        loop {
            // Largest block aligned at `start` that does not pass `last`.
            let mut host_bits = if start == 0 {
                width
            } else {
                start.trailing_zeros().min(width)
            };
            while host_bits > 0 {
                let span_minus_one = if host_bits >= 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                if start
                    .checked_add(span_minus_one)
                    .is_some_and(|end| end <= self.last)
                {
                    break;
                }
                host_bits -= 1;
            }
            let prefix = (width - host_bits) as u8;
            if let Ok(net) = IpNet::new(from_u128(self.family, start), prefix) {
                out.push(net);
            }
            let span_minus_one = if host_bits >= 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            match start.checked_add(span_minus_one) {
                Some(end) if end < self.last => start = end + 1,
                _ => break,
            }
        }
        out
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cidrs = self.to_cidrs();
        if cidrs.len() == 1 {
            if self.first == self.last {
                write!(f, "{}", self.first())
            } else {
                write!(f, "{}", cidrs[0])
            }
        } else {
            write!(f, "{}-{}", self.first(), self.last())
        }
    }
}

impl FromStr for IpRange {
    type Err = AddrError;

    /// Parses `192.0.2.7`, `192.0.2.0/24`, `2001:db8::/32` and `192.0.2.10-192.0.2.20`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(ip) = IpAddr::from_str(text) {
            return Ok(IpRange::single(ip));
        }
        if text.contains('/') {
            return IpNet::from_str(text)
                .map(IpRange::from_net)
                .map_err(|_| AddrError::Syntax(text.to_string()));
        }
        if let Some((a, b)) = text.split_once('-') {
            let a = IpAddr::from_str(a.trim()).map_err(|_| AddrError::Syntax(text.to_string()))?;
            let b = IpAddr::from_str(b.trim()).map_err(|_| AddrError::Syntax(text.to_string()))?;
            if a.is_ipv4() != b.is_ipv4() {
                return Err(AddrError::MixedFamilies(text.to_string()));
            }
            return IpRange::between(a, b).ok_or_else(|| AddrError::Reversed(text.to_string()));
        }
        Err(AddrError::Syntax(text.to_string()))
    }
}

/// A set of addresses as sorted, merged, disjoint ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<IpRange>,
}

impl RangeSet {
    pub fn new() -> Self {
        RangeSet::default()
    }

    /// Builds a set from ranges in any order, overlapping or not.
    pub fn from_ranges(ranges: impl IntoIterator<Item = IpRange>) -> Self {
        let mut ranges: Vec<IpRange> = ranges.into_iter().collect();
        ranges.sort();
        let mut merged: Vec<IpRange> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(prev)
                    if prev.family == range.family
                        && prev
                            .last
                            .checked_add(1)
                            .is_none_or(|next| next >= range.first) =>
                {
                    prev.last = prev.last.max(range.last);
                }
                _ => merged.push(range),
            }
        }
        RangeSet { ranges: merged }
    }

    pub fn ranges(&self) -> &[IpRange] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of addresses in the set, saturating.
    pub fn address_count(&self) -> u128 {
        self.ranges
            .iter()
            .fold(0u128, |sum, r| sum.saturating_add(r.len()))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (family, value) = to_u128(ip);
        let probe = IpRange {
            family,
            first: value,
            last: u128::MAX,
        };
        // The candidate is the last range starting at or before `value`.
        let idx = self.ranges.partition_point(|r| *r <= probe);
        idx > 0 && self.ranges[idx - 1].contains(ip)
    }

    pub fn union(&self, other: &RangeSet) -> RangeSet {
        RangeSet::from_ranges(self.ranges.iter().chain(other.ranges.iter()).copied())
    }

    /// Addresses in `self` but not in `other`.
    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        for range in &self.ranges {
            let mut pieces = vec![*range];
            for cut in other.ranges.iter().filter(|c| c.family == range.family) {
                if cut.first > range.last {
                    break;
                }
                if cut.last < range.first {
                    continue;
                }
                pieces = pieces
                    .into_iter()
                    .flat_map(|piece| subtract(piece, cut))
                    .collect();
            }
            out.extend(pieces);
        }
        RangeSet { ranges: out }
    }

    /// Addresses in both sets.
    pub fn intersection(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        for a in &self.ranges {
            for b in other.ranges.iter().filter(|b| b.family == a.family) {
                let first = a.first.max(b.first);
                let last = a.last.min(b.last);
                if first <= last {
                    out.push(IpRange {
                        family: a.family,
                        first,
                        last,
                    });
                }
            }
        }
        RangeSet::from_ranges(out)
    }
}

fn subtract(piece: IpRange, cut: &IpRange) -> Vec<IpRange> {
    if cut.last < piece.first || cut.first > piece.last {
        return vec![piece];
    }
    let mut out = Vec::with_capacity(2);
    if cut.first > piece.first {
        out.push(IpRange {
            last: cut.first - 1,
            ..piece
        });
    }
    if cut.last < piece.last {
        out.push(IpRange {
            first: cut.last + 1,
            ..piece
        });
    }
    out
}

fn to_u128(ip: IpAddr) -> (Family, u128) {
    match ip {
        IpAddr::V4(v4) => (Family::V4, u32::from(v4) as u128),
        IpAddr::V6(v6) => (Family::V6, u128::from(v6)),
    }
}

fn from_u128(family: Family, value: u128) -> IpAddr {
    match family {
        // Values of a V4 range never exceed u32::MAX: they are built from IPv4 addresses.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> RangeSet {
        RangeSet::from_ranges(items.iter().map(|s| s.parse::<IpRange>().unwrap()))
    }

    #[test]
    fn parses_every_spelling() {
        assert_eq!("192.0.2.7".parse::<IpRange>().unwrap().len(), 1);
        assert_eq!("192.0.2.0/24".parse::<IpRange>().unwrap().len(), 256);
        assert_eq!(
            "192.0.2.10 - 192.0.2.20".parse::<IpRange>().unwrap().len(),
            11
        );
        assert_eq!("2001:db8::/120".parse::<IpRange>().unwrap().len(), 256);
        assert!(matches!(
            "192.0.2.9-192.0.2.1".parse::<IpRange>(),
            Err(AddrError::Reversed(_))
        ));
        assert!(matches!(
            "192.0.2.1-::1".parse::<IpRange>(),
            Err(AddrError::MixedFamilies(_))
        ));
        assert!("192.0.2.0/33".parse::<IpRange>().is_err());
        assert!("hospital".parse::<IpRange>().is_err());
    }

    #[test]
    fn sets_merge_and_subtract() {
        let s = set(&["10.0.0.0/25", "10.0.0.128/25", "10.0.0.5"]);
        assert_eq!(s.ranges().len(), 1);
        assert_eq!(s.address_count(), 256);
        let d = s.difference(&set(&["10.0.0.64/26"]));
        assert_eq!(d.address_count(), 192);
        assert!(d.contains("10.0.0.63".parse().unwrap()));
        assert!(!d.contains("10.0.0.64".parse().unwrap()));
        assert!(d.contains("10.0.0.128".parse().unwrap()));
        let i = s.intersection(&set(&["10.0.0.250-10.0.1.5", "::/0"]));
        assert_eq!(i.address_count(), 6);
        assert!(!s.contains("::1".parse().unwrap()));
    }

    #[test]
    fn cidr_cover_is_exact() {
        let r: IpRange = "10.0.0.3-10.0.0.17".parse().unwrap();
        let cidrs: Vec<String> = r.to_cidrs().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cidrs,
            ["10.0.0.3/32", "10.0.0.4/30", "10.0.0.8/29", "10.0.0.16/31"]
        );
        let all: IpRange = "::/0".parse().unwrap();
        assert_eq!(all.to_cidrs().len(), 1);
        assert_eq!(all.len(), u128::MAX);
        assert_eq!("0.0.0.0/0".parse::<IpRange>().unwrap().to_cidrs().len(), 1);
    }
}
