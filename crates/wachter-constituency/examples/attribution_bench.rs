//! Attribution benchmark: build a prefix table from N generated networks, then look up M
//! addresses; `PrefixMap` side by side with a baseline of our own, the textbook table (one
//! hash map per prefix length, probed from the longest length present to the shortest),
//! on the same data.
//!
//!     cargo run --release -p wachter-constituency --example attribution_bench
//!     cargo run --release -p wachter-constituency --example attribution_bench -- \
//!         --approach baseline --prefixes 4000000 --lookups 1000000 --seed 1
//!
//! Approaches: `insert` (`PrefixMap::insert` one network at a time, in generated order,
//! as a registry import does), `collect` (`PrefixMap` from `collect()`: sorted chunks, then
//! compacted), `baseline`, or `all` (the default: the three in turn in this process).
//! Prints one JSON line per approach; with `all`, a last line with the ratios. Peak RSS is
//! the kernel's VmHWM, reset between approaches (`/proc/self/clear_refs`); for RSS that owes
//! nothing to an earlier approach run one per process, as `bench/attribution.sh` does.
//!
//! The data is a pure function of the seed and an index, generated while building and
//! looking up, so no input list inflates the RSS and every approach sees the same networks
//! and addresses. The networks are weighted like a registry table: nine in ten IPv4
//! (every length /8–/32: 45% /24, 29% /16–/23, 1.5% /8–/15, 25% /25–/32), one in ten IPv6
//! (/32–/64, half /48, inside 60,000 allocations). They are placed uniformly at random,
//! which is the trie's worst case for memory (real assignments cluster and share nodes)
//! and indifferent to the hash maps. Nine lookups in ten fall inside a generated network,
//! the rest anywhere. The `checksum` over all answers must be the same for every approach.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::time::Instant;

use ipnet::IpNet;
use serde_json::json;
use wachter_constituency::prefix::PrefixMap;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("attribution_bench: {message}");
            eprintln!(
                "usage: attribution_bench [--approach insert|collect|baseline|all] \
                 [--prefixes N] [--lookups M] [--seed S]"
            );
            return ExitCode::from(2);
        }
    };
    let approaches = match options.approach {
        Some(approach) => vec![approach],
        None => vec![Approach::Insert, Approach::Collect, Approach::Baseline],
    };
    let mut results = Vec::new();
    for approach in approaches {
        reset_peak_rss();
        let result = run(approach, &options);
        println!("{}", result.to_json(&options));
        results.push(result);
    }
    if let Some(baseline) = results.iter().find(|r| r.approach == Approach::Baseline) {
        let mut ratios = serde_json::Map::new();
        for result in results.iter().filter(|r| r.approach != Approach::Baseline) {
            if (result.matched, result.checksum) != (baseline.matched, baseline.checksum) {
                eprintln!(
                    "attribution_bench: {} and baseline disagree",
                    result.approach.name()
                );
                return ExitCode::FAILURE;
            }
            // Throughput ratio: how many times faster than the baseline (>1 is faster).
            ratios.insert(
                result.approach.name().into(),
                json!({
                    "build": baseline.build_seconds / result.build_seconds,
                    "lookup": baseline.lookup_seconds / result.lookup_seconds,
                    "total": baseline.total_seconds() / result.total_seconds(),
                }),
            );
        }
        if !ratios.is_empty() {
            println!("{}", json!({ "ratio_vs_baseline": ratios }));
        }
    }
    ExitCode::SUCCESS
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Approach {
    Insert,
    Collect,
    Baseline,
}

impl Approach {
    fn name(self) -> &'static str {
        match self {
            Approach::Insert => "insert",
            Approach::Collect => "collect",
            Approach::Baseline => "baseline",
        }
    }
}

struct Options {
    /// `None` runs all of them.
    approach: Option<Approach>,
    prefixes: u64,
    lookups: u64,
    seed: u64,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            approach: None,
            prefixes: 4_000_000,
            lookups: 1_000_000,
            seed: 1,
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}"))
            };
            match flag.as_str() {
                "--approach" => {
                    options.approach = match value.as_str() {
                        "insert" => Some(Approach::Insert),
                        "collect" => Some(Approach::Collect),
                        "baseline" => Some(Approach::Baseline),
                        "all" => None,
                        other => return Err(format!("unknown approach {other}")),
                    }
                }
                "--prefixes" => options.prefixes = number()?,
                "--lookups" => options.lookups = number()?,
                "--seed" => options.seed = number()?,
                other => return Err(format!("unknown flag {other}")),
            }
        }
        if options.prefixes == 0 {
            return Err("--prefixes must be at least 1".into());
        }
        Ok(options)
    }
}

struct RunResult {
    approach: Approach,
    networks: usize,
    build_seconds: f64,
    lookup_seconds: f64,
    matched: u64,
    checksum: u64,
    peak_rss_mb: Option<f64>,
}

impl RunResult {
    fn total_seconds(&self) -> f64 {
        self.build_seconds + self.lookup_seconds
    }

    fn to_json(&self, options: &Options) -> serde_json::Value {
        json!({
            "approach": self.approach.name(),
            "prefixes": options.prefixes,
            "networks": self.networks,
            "lookups": options.lookups,
            "build_seconds": self.build_seconds,
            "lookup_seconds": self.lookup_seconds,
            "total_seconds": self.total_seconds(),
            "matched": self.matched,
            "checksum": self.checksum,
            "peak_rss_mb": self.peak_rss_mb,
        })
    }
}

/// One approach, end to end: build, look up, measure.
fn run(approach: Approach, options: &Options) -> RunResult {
    let networks = (0..options.prefixes).map(|i| (network(options.seed, i), i as u32));
    let started = Instant::now();
    let table = match approach {
        Approach::Insert => {
            let mut map = PrefixMap::new();
            for (net, value) in networks {
                map.insert(net, value);
            }
            Table::PrefixMap(map)
        }
        Approach::Collect => Table::PrefixMap(networks.collect()),
        Approach::Baseline => {
            let mut table = PerLengthHashMaps::default();
            for (net, value) in networks {
                table.insert(net, value);
            }
            Table::Baseline(table)
        }
    };
    let build_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut matched = 0u64;
    let mut checksum = 0u64;
    for j in 0..options.lookups {
        let ip = lookup_address(options.seed, options.prefixes, j);
        if let Some((net, value)) = table.longest_match(ip) {
            matched += 1;
            // Order-sensitive, so that a different network for the same address shows.
            checksum = checksum.rotate_left(5)
                ^ u64::from(*value).wrapping_mul(131)
                ^ u64::from(net.prefix_len());
        }
    }
    let lookup_seconds = started.elapsed().as_secs_f64();
    RunResult {
        approach,
        networks: table.len(),
        build_seconds,
        lookup_seconds,
        matched,
        checksum,
        peak_rss_mb: peak_rss_mb(),
    }
}

enum Table {
    PrefixMap(PrefixMap<u32>),
    Baseline(PerLengthHashMaps<u32>),
}

impl Table {
    fn longest_match(&self, ip: IpAddr) -> Option<(IpNet, &u32)> {
        match self {
            Table::PrefixMap(map) => map.longest_match(ip),
            Table::Baseline(table) => table.longest_match(ip),
        }
    }

    fn len(&self) -> usize {
        match self {
            Table::PrefixMap(map) => map.len(),
            Table::Baseline(table) => table.len(),
        }
    }
}

/// The textbook longest-prefix match: one hash map per prefix length, keyed by the
/// network address; a lookup masks the address to each length present, longest first,
/// and stops at the first hit. `std` maps with a cheap integer hasher, so that the
/// baseline is not slowed by SipHash's flooding resistance.
#[derive(Default)]
struct PerLengthHashMaps<V> {
    v4: Vec<HashMap<u32, V, FastHash>>,
    v6: Vec<HashMap<u128, V, FastHash>>,
    /// Lengths with at least one network, longest first: the only ones probed.
    v4_lengths: Vec<u8>,
    v6_lengths: Vec<u8>,
    len: usize,
}

type FastHash = BuildHasherDefault<MixHasher>;

impl<V> PerLengthHashMaps<V> {
    fn insert(&mut self, net: IpNet, value: V) -> Option<V> {
        let replaced = match net.trunc() {
            IpNet::V4(net) => {
                let len = net.prefix_len();
                let map = map_for_length(&mut self.v4, &mut self.v4_lengths, len, 33);
                map.insert(u32::from(net.network()), value)
            }
            IpNet::V6(net) => {
                let len = net.prefix_len();
                let map = map_for_length(&mut self.v6, &mut self.v6_lengths, len, 129);
                map.insert(u128::from(net.network()), value)
            }
        };
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    fn longest_match(&self, ip: IpAddr) -> Option<(IpNet, &V)> {
        match ip {
            IpAddr::V4(ip) => {
                let bits = u32::from(ip);
                self.v4_lengths.iter().find_map(|&len| {
                    let key = bits & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                    let value = self.v4.get(usize::from(len))?.get(&key)?;
                    let net = ipnet::Ipv4Net::new(Ipv4Addr::from(key), len).ok()?;
                    Some((IpNet::V4(net), value))
                })
            }
            IpAddr::V6(ip) => {
                let bits = u128::from(ip);
                self.v6_lengths.iter().find_map(|&len| {
                    let key = bits & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                    let value = self.v6.get(usize::from(len))?.get(&key)?;
                    let net = ipnet::Ipv6Net::new(Ipv6Addr::from(key), len).ok()?;
                    Some((IpNet::V6(net), value))
                })
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// The map for `len`, creating the per-length maps on first use and keeping the list of
/// lengths present sorted longest first.
fn map_for_length<'a, K, V>(
    maps: &'a mut Vec<HashMap<K, V, FastHash>>,
    lengths: &mut Vec<u8>,
    len: u8,
    count: usize,
) -> &'a mut HashMap<K, V, FastHash> {
    if maps.is_empty() {
        maps.resize_with(count, HashMap::default);
    }
    if !lengths.contains(&len) {
        lengths.push(len);
        lengths.sort_unstable_by(|a, b| b.cmp(a));
    }
    &mut maps[usize::from(len)]
}

/// Folds the key's bytes into one word and finishes with splitmix64's mixer: cheap, and
/// every input bit reaches the low bits hashbrown indexes by (network addresses end in
/// zero bits, which a bare multiply would leave zero).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

/// splitmix64's finaliser: a bijection that spreads every bit over the word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64 over one stream per (seed, index), so that item `i` is the same whoever asks.
struct Stream(u64);

impl Stream {
    fn new(seed: u64, domain: u64, index: u64) -> Stream {
        Stream(mix(seed ^ mix(domain)).wrapping_add(mix(index)))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// IPv4 lengths per 1,000 IPv4 networks: a routing table's /16–/24 plus a registry's
/// assignments (inetnum ranges split into CIDRs give every length down to /32).
const V4_LENGTHS: &[(u8, u64)] = &[
    (8, 1),
    (9, 1),
    (10, 1),
    (11, 1),
    (12, 2),
    (13, 2),
    (14, 3),
    (15, 4),
    (16, 25),
    (17, 12),
    (18, 15),
    (19, 22),
    (20, 35),
    (21, 40),
    (22, 80),
    (23, 60),
    (24, 450),
    (25, 20),
    (26, 25),
    (27, 30),
    (28, 40),
    (29, 70),
    (30, 25),
    (31, 5),
    (32, 31),
];

/// IPv6 lengths per 1,000 IPv6 networks: allocations, then mostly /48 and /56
/// assignments.
const V6_LENGTHS: &[(u8, u64)] = &[
    (32, 60),
    (33, 5),
    (34, 5),
    (35, 5),
    (36, 25),
    (38, 5),
    (40, 60),
    (42, 10),
    (44, 80),
    (46, 15),
    (47, 10),
    (48, 500),
    (52, 20),
    (56, 100),
    (60, 20),
    (64, 80),
];

/// IPv6 allocations (/32s in 2000::/3) the IPv6 networks fall into.
const V6_ALLOCATIONS: u64 = 60_000;

fn weighted(stream: &mut Stream, table: &[(u8, u64)]) -> u8 {
    let total: u64 = table.iter().map(|(_, weight)| weight).sum();
    let mut pick = stream.below(total);
    for &(len, weight) in table {
        if pick < weight {
            return len;
        }
        pick -= weight;
    }
    table.last().map_or(0, |(len, _)| *len)
}

/// The `index`th generated network (host bits may be set; tables clear them).
fn network(seed: u64, index: u64) -> IpNet {
    let mut stream = Stream::new(seed, 1, index);
    if stream.below(10) < 9 {
        // Unicast 1.0.0.0–223.255.255.255.
        let address = (1 << 24) + (stream.next() % (223 << 24)) as u32;
        let len = weighted(&mut stream, V4_LENGTHS);
        IpNet::V4(ipnet::Ipv4Net::new_assert(Ipv4Addr::from(address), len))
    } else {
        let allocation = 0x2000_0000 | (mix(stream.below(V6_ALLOCATIONS)) as u32 & 0x1fff_ffff);
        let rest = u128::from(stream.next()) << 32 | u128::from(stream.next() as u32);
        let address = u128::from(allocation) << 96 | rest;
        let len = weighted(&mut stream, V6_LENGTHS);
        IpNet::V6(ipnet::Ipv6Net::new_assert(Ipv6Addr::from(address), len))
    }
}

/// The `index`th lookup: nine in ten inside a random generated network, the rest random.
fn lookup_address(seed: u64, prefixes: u64, index: u64) -> IpAddr {
    let mut stream = Stream::new(seed, 2, index);
    let noise = u128::from(stream.next()) << 64 | u128::from(stream.next());
    if stream.below(10) < 9 {
        match network(seed, stream.below(prefixes)) {
            IpNet::V4(net) => {
                let host = u32::from(net.hostmask()) & noise as u32;
                IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) | host))
            }
            IpNet::V6(net) => {
                let host = u128::from(net.hostmask()) & noise;
                IpAddr::V6(Ipv6Addr::from(u128::from(net.network()) | host))
            }
        }
    } else if stream.below(10) < 9 {
        IpAddr::V4(Ipv4Addr::from(noise as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(1 << 125 | noise >> 3))
    }
}

/// Peak resident set size so far (VmHWM), in MB; `None` off Linux.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so that each approach reports its own
/// peak; memory an earlier approach freed but the allocator kept still counts.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
