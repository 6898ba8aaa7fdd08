//! The order in which targets are visited, and how a scan is split into shards.
//!
//! Networks and ranges form an [`AddressSpace`]; together with the port list it is a space
//! of `addresses × ports` indices that [`Order`] walks through a keyed bijection (masscan's
//! Blackrock cipher, via `perfect_rand`): `x = shuffle(i)`, address `x / ports`, port
//! `x % ports`. Memory is one entry per range, whatever the number of addresses; the same
//! seed gives the same order on every machine; shard `k` of `n` takes the indices
//! `i ≡ k (mod n)`, so shards are disjoint and together cover the space exactly; and a
//! position in the walk is all a resume needs.
//!
//! Targets that come one by one (addresses, hostnames, scanner output) are streamed instead,
//! through a bounded keyed shuffle ([`WindowShuffle`]) so that a sorted input does not hit
//! one network with consecutive connections.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use perfect_rand::PerfectRng;

use crate::addr::{IpRange, RangeSet};
use crate::ports::PortList;

/// The largest space [`Order`] walks: 2^48 targets (a /16 of IPv4 on every port, or an
/// IPv6 /80 on one). Larger IPv6 networks cannot be scanned exhaustively anyway.
pub const MAX_SPACE: u128 = 1 << 48;

/// Blackrock rounds; masscan's default quality at a fraction of the cost.
const ROUNDS: usize = 4;

/// One shard of a scan split across workers: `index` of `count`, counted from 1 on the
/// command line (`--shard 2/4`) and from 0 inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("bad shard {0:?}: expected i/n with 1 <= i <= n, for example 1/4")]
    Shard(String),
    #[error(
        "target space too large: {addresses} addresses x {ports} ports exceeds 2^48; split the scan or use smaller IPv6 networks"
    )]
    TooLarge { addresses: u128, ports: usize },
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// A shard from its 0-based index.
    pub fn new(index: u64, count: u64) -> Option<Self> {
        (count >= 1 && index < count).then_some(Shard { index, count })
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the `n`-th streamed item belongs to this shard.
    pub fn owns(&self, n: u64) -> bool {
        n % self.count == self.index
    }

    /// How many of the indices `0..total` this shard owns.
    pub fn share_of(&self, total: u64) -> u64 {
        if total <= self.index {
            0
        } else {
            (total - self.index).div_ceil(self.count)
        }
    }
}

impl FromStr for Shard {
    type Err = OrderError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || OrderError::Shard(text.to_string());
        let (i, n) = text.split_once('/').ok_or_else(err)?;
        let i: u64 = i.trim().parse().map_err(|_| err())?;
        let n: u64 = n.trim().parse().map_err(|_| err())?;
        if i == 0 {
            return Err(err());
        }
        Shard::new(i - 1, n).ok_or_else(err)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

/// Addresses given as networks and ranges, indexable in O(log ranges).
#[derive(Clone, Debug, Default)]
pub struct AddressSpace {
    ranges: Vec<IpRange>,
    /// `starts[k]` is the index of the first address of `ranges[k]`.
    starts: Vec<u128>,
    len: u128,
}

impl AddressSpace {
    pub fn new(set: &RangeSet) -> Self {
        let mut starts = Vec::with_capacity(set.ranges().len());
        let mut len: u128 = 0;
        for range in set.ranges() {
            starts.push(len);
            len = len.saturating_add(range.len());
        }
        AddressSpace {
            ranges: set.ranges().to_vec(),
            starts,
            len,
        }
    }

    pub fn len(&self) -> u128 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `index`-th address in ascending order.
    pub fn nth(&self, index: u128) -> Option<IpAddr> {
        let k = self
            .starts
            .partition_point(|start| *start <= index)
            .checked_sub(1)?;
        self.ranges[k].nth(index - self.starts[k])
    }
}

/// A keyed pseudo-random walk over `addresses × ports`.
pub struct Order {
    space: AddressSpace,
    ports: Vec<u16>,
    total: u64,
    rng: Option<PerfectRng>,
}

impl Order {
    pub fn new(space: AddressSpace, ports: &PortList, seed: u64) -> Result<Self, OrderError> {
        let total = space
            .len()
            .checked_mul(ports.len() as u128)
            .filter(|t| *t <= MAX_SPACE);
        let total = match total {
            Some(total) => total as u64,
            None => {
                return Err(OrderError::TooLarge {
                    addresses: space.len(),
                    ports: ports.len(),
                });
            }
        };
        let rng = (total > 0).then(|| PerfectRng::new(total, seed, ROUNDS));
        Ok(Order {
            space,
            ports: ports.as_slice().to_vec(),
            total,
            rng,
        })
    }

    /// Number of (address, port) pairs in the whole space.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The target at walk index `i` (`i < len`).
    pub fn target(&self, i: u64) -> Option<(IpAddr, u16)> {
        let rng = self.rng.as_ref()?;
        if i >= self.total {
            return None;
        }
        let x = rng.shuffle(i);
        let nports = self.ports.len() as u64;
        let ip = self.space.nth((x / nports) as u128)?;
        Some((ip, self.ports[(x % nports) as usize]))
    }

    /// The shard's targets from its `start`-th position on, with each one's position.
    pub fn walk(&self, shard: Shard, start: u64) -> impl Iterator<Item = (u64, IpAddr, u16)> + '_ {
        (start..shard.share_of(self.total)).filter_map(move |position| {
            let i = shard.index + position * shard.count;
            self.target(i).map(|(ip, port)| (position, ip, port))
        })
    }
}

/// One step of splitmix64: a fast, well-mixed 64-bit hash of `x`, for seeded choices that
/// must be the same on every machine (shuffles, lab layouts, control paths).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded stream of [`splitmix64`] values: tests, fixtures and generators that must come
/// out the same on every machine, without a random-number crate.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        let value = splitmix64(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        value
    }

    /// A value in `0..n` (`0` when `n` is 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A deterministic, bounded shuffle of a stream: items enter a window of `capacity` and
/// leave it in a seeded random order. Memory is `capacity` items whatever the input size.
pub struct WindowShuffle<I: Iterator> {
    input: I,
    window: Vec<I::Item>,
    capacity: usize,
    state: u64,
}

impl<I: Iterator> WindowShuffle<I> {
    pub fn new(input: I, capacity: usize, seed: u64) -> Self {
        WindowShuffle {
            input,
            window: Vec::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// splitmix64: tiny, fast and good enough to spread consecutive lines.
    fn next_random(&mut self) -> u64 {
        let out = splitmix64(self.state);
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        out
    }
}

impl<I: Iterator> Iterator for WindowShuffle<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        while self.window.len() < self.capacity {
            match self.input.next() {
                Some(item) => self.window.push(item),
                None => break,
            }
        }
        if self.window.is_empty() {
            return None;
        }
        let pick = (self.next_random() % self.window.len() as u64) as usize;
        Some(self.window.swap_remove(pick))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn order(nets: &[&str], ports: &str, seed: u64) -> Order {
        let set = RangeSet::from_ranges(nets.iter().map(|n| n.parse::<IpRange>().unwrap()));
        Order::new(AddressSpace::new(&set), &ports.parse().unwrap(), seed).unwrap()
    }

    #[test]
    fn walk_is_a_permutation_of_the_space() {
        let o = order(&["127.0.0.0/22", "127.1.0.10-127.1.0.12"], "80,443,8443", 7);
        assert_eq!(o.len(), (1024 + 3) * 3);
        let seen: HashSet<(IpAddr, u16)> =
            o.walk(Shard::WHOLE, 0).map(|(_, ip, p)| (ip, p)).collect();
        assert_eq!(seen.len() as u64, o.len());
        assert!(seen.contains(&("127.1.0.12".parse().unwrap(), 8443)));
        assert!(!seen.contains(&("127.1.0.13".parse().unwrap(), 80)));
        // And it is shuffled: the first ten are not in ascending order.
        let first: Vec<_> = o
            .walk(Shard::WHOLE, 0)
            .take(10)
            .map(|(_, ip, _)| ip)
            .collect();
        let mut sorted = first.clone();
        sorted.sort();
        assert_ne!(first, sorted);
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        let a: Vec<_> = order(&["10.0.0.0/16"], "443", 1)
            .walk(Shard::WHOLE, 0)
            .take(100)
            .collect();
        let b: Vec<_> = order(&["10.0.0.0/16"], "443", 1)
            .walk(Shard::WHOLE, 0)
            .take(100)
            .collect();
        let c: Vec<_> = order(&["10.0.0.0/16"], "443", 2)
            .walk(Shard::WHOLE, 0)
            .take(100)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_space() {
        let o = order(&["127.0.0.0/23", "::1/128"], "1-3", 99);
        let mut union = HashSet::new();
        let mut sum = 0;
        for k in 0..5 {
            let shard = Shard::new(k, 5).unwrap();
            for (_, ip, port) in o.walk(shard, 0) {
                assert!(union.insert((ip, port)), "{ip}:{port} in two shards");
                sum += 1;
            }
        }
        assert_eq!(sum, o.len());
        assert_eq!(union.len() as u64, o.len());
    }

    #[test]
    fn resume_continues_where_it_stopped() {
        let o = order(&["127.0.0.0/24"], "443", 3);
        let shard: Shard = "2/3".parse().unwrap();
        let all: Vec<_> = o.walk(shard, 0).collect();
        let rest: Vec<_> = o.walk(shard, 40).collect();
        assert_eq!(&all[40..], &rest[..]);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("1/1".parse::<Shard>().unwrap(), Shard::WHOLE);
        assert_eq!("3/4".parse::<Shard>().unwrap().to_string(), "3/4");
        for bad in ["0/4", "5/4", "1/0", "x", "1-4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn oversized_and_empty_spaces() {
        let set = RangeSet::from_ranges(["2001:db8::/64".parse::<IpRange>().unwrap()]);
        assert!(matches!(
            Order::new(AddressSpace::new(&set), &PortList::single(443), 1),
            Err(OrderError::TooLarge { .. })
        ));
        let empty = Order::new(AddressSpace::default(), &PortList::single(443), 1).unwrap();
        assert_eq!(empty.walk(Shard::WHOLE, 0).count(), 0);
        let one = order(&["127.0.0.1"], "443", 5);
        assert_eq!(
            one.walk(Shard::WHOLE, 0).collect::<Vec<_>>(),
            vec![(0, "127.0.0.1".parse().unwrap(), 443)]
        );
    }

    #[test]
    fn window_shuffle_keeps_every_item_once() {
        let out: Vec<u32> = WindowShuffle::new(0..10_000u32, 64, 5).collect();
        assert_eq!(out.len(), 10_000);
        assert_eq!(out.iter().copied().collect::<HashSet<_>>().len(), 10_000);
        assert_ne!(out[..64], (0..64).collect::<Vec<_>>()[..]);
        let again: Vec<u32> = WindowShuffle::new(0..10_000u32, 64, 5).collect();
        assert_eq!(out, again);
    }
}
