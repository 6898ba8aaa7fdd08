//! Longest-prefix match over millions of networks, IPv4 and IPv6.
//!
//! [`PrefixMap`] maps networks to values and answers "which networks hold this address,
//! most specific first". It is built for whole registry dumps (millions of inetnums and
//! routes), where a lookup costs the cache misses it takes one after the other. A binary
//! trie, even a path-compressed one, takes some twenty dependent steps per lookup on 4
//! million networks, and measured 4 to 7 times slower at lookups than the textbook hash
//! map per prefix length (whose probes do not depend on each other, so the processor
//! overlaps them).
//!
//! So each family is a multibit trie that consumes the address 6 bits (`STRIDE`) at a
//! time. A node at depth `d` records, as bitmaps, the networks of lengths `d+1..=d+6`
//! below it (126 possible) and which of the 64 next chunks lead to a child; a network's
//! value or a child is found by counting the set bits before its own (popcount), in a
//! block stored contiguously per node. A child may skip levels that no network or branch
//! needs (it carries its depth and key), so a sparse IPv6 path costs one node, not one per
//! level. A lookup in a table of millions touches a handful of nodes, only the last one or
//! two of them outside the cache, and then one value.
//!
//! Nodes and values live in flat `Vec` arenas addressed by `u32` (no `Box` per node). A
//! block that is full moves to the next size class and its old place goes to a free list
//! for blocks of that class; [`PrefixMap::shrink_to_fit`] packs the arenas afterwards.
//!
//! Addresses are keys as given: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is looked
//! up among the IPv6 networks, not the IPv4 ones. Whether a mapped address *is* the IPv4
//! host depends on where it came from (a dual-stack socket, or a registry that really
//! lists `::ffff:0:0/96`); a caller that knows calls [`IpAddr::to_canonical`] first.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Networks mapped to values, with longest-prefix match.
///
/// Host bits are cleared on insert (`192.0.2.7/24` is `192.0.2.0/24`); inserting the
/// same network again replaces its value. There is no removal: tables are built from
/// a registry dump and rebuilt when the dump changes. Values are stored in the table (as
/// `Option<V>`): for millions of networks, a `u32` row index keeps it small. Build a big
/// table with [`collect`](Iterator::collect) rather than one `insert` at a time: it is
/// faster and compacts the result.
///
/// ```
/// use wachter_constituency::prefix::PrefixMap;
/// let mut map = PrefixMap::new();
/// map.insert("192.0.2.0/24".parse().unwrap(), "customer");
/// map.insert("192.0.0.0/16".parse().unwrap(), "provider");
/// let ip = "192.0.2.10".parse().unwrap();
/// assert_eq!(map.longest_match(ip).map(|(_, v)| *v), Some("customer"));
/// assert_eq!(map.matches(ip).len(), 2);
/// ```
#[derive(Clone)]
pub struct PrefixMap<V> {
    v4: Trie<u32, V>,
    v6: Trie<u128, V>,
    len: usize,
}

impl<V> PrefixMap<V> {
    pub fn new() -> Self {
        PrefixMap {
            v4: Trie::new(),
            v6: Trie::new(),
            len: 0,
        }
    }

    /// Inserts the value for exactly this network (host bits cleared), returning the
    /// value it replaces.
    ///
    /// # Panics
    ///
    /// If a family's table would hold more than about four billion nodes or networks (it
    /// runs out of memory long before).
    pub fn insert(&mut self, network: IpNet, value: V) -> Option<V> {
        let replaced = match network {
            IpNet::V4(net) => {
                let (key, len) = v4_key(net);
                self.v4.insert(key, len, value)
            }
            IpNet::V6(net) => {
                let (key, len) = v6_key(net);
                self.v6.insert(key, len, value)
            }
        };
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    /// The value of exactly this network (host bits ignored), not of one containing it.
    pub fn get(&self, network: &IpNet) -> Option<&V> {
        match *network {
            IpNet::V4(net) => {
                let (key, len) = v4_key(net);
                self.v4.get(key, len)
            }
            IpNet::V6(net) => {
                let (key, len) = v6_key(net);
                self.v6.get(key, len)
            }
        }
    }

    /// Like [`get`](Self::get), mutable: adding an owner to a network already listed.
    pub fn get_mut(&mut self, network: &IpNet) -> Option<&mut V> {
        match *network {
            IpNet::V4(net) => {
                let (key, len) = v4_key(net);
                self.v4.get_mut(key, len)
            }
            IpNet::V6(net) => {
                let (key, len) = v6_key(net);
                self.v6.get_mut(key, len)
            }
        }
    }

    /// The most specific network containing `ip`, with its value.
    pub fn longest_match(&self, ip: IpAddr) -> Option<(IpNet, &V)> {
        match ip {
            IpAddr::V4(ip) => {
                let (key, len, value) = self.v4.longest(u32::from(ip))?;
                Some((v4_net(key, len), value))
            }
            IpAddr::V6(ip) => {
                let (key, len, value) = self.v6.longest(u128::from(ip))?;
                Some((v6_net(key, len), value))
            }
        }
    }

    /// Every network containing `ip`, most specific first: the first is the
    /// [`longest_match`](Self::longest_match), the rest are the less specific networks
    /// it overrides (at most 33 for IPv4, 129 for IPv6).
    pub fn matches(&self, ip: IpAddr) -> Vec<(IpNet, &V)> {
        let mut found = Vec::new();
        match ip {
            IpAddr::V4(ip) => self.v4.each_containing(u32::from(ip), |key, len, value| {
                found.push((v4_net(key, len), value));
            }),
            IpAddr::V6(ip) => self.v6.each_containing(u128::from(ip), |key, len, value| {
                found.push((v6_net(key, len), value));
            }),
        }
        found.reverse();
        found
    }

    /// The number of networks.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every network with its value, in [`IpNet`] order: IPv4 before IPv6, then by
    /// address, a shorter prefix before the longer ones it contains.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> {
        let v4 = self.v4.iter().map(|(key, len, v)| (v4_net(key, len), v));
        let v6 = self.v6.iter().map(|(key, len, v)| (v6_net(key, len), v));
        v4.chain(v6)
    }

    /// Gives back the memory the table holds in reserve: room for growth in the arenas,
    /// and the blocks left behind when a node's networks or children outgrew theirs (after
    /// millions of inserts in random order, about a quarter of the arenas). Compacts in
    /// place, so it needs no memory beyond a list of the blocks; worth calling once a table
    /// is complete ([`collect`](Iterator::collect) does). Inserting afterwards works as
    /// before.
    pub fn shrink_to_fit(&mut self) {
        self.v4.compact();
        self.v6.compact();
    }
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: fmt::Debug> fmt::Debug for PrefixMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// How many entries [`Extend`] sorts at a time: enough that consecutive inserts share
/// their nodes, few enough that the sorting buffer stays small beside the table.
const EXTEND_CHUNK: usize = 1 << 20;

/// Inserts in address order, a chunk of entries at a time, whatever the order given:
/// consecutive inserts then touch the nodes the previous one just did, which on 4 million
/// networks in random order built 1.7 times as fast as inserting them one by one (for a
/// sorting buffer of `EXTEND_CHUNK` entries). As with repeated
/// [`insert`](PrefixMap::insert), the last value given for a network wins.
impl<V> Extend<(IpNet, V)> for PrefixMap<V> {
    fn extend<I: IntoIterator<Item = (IpNet, V)>>(&mut self, entries: I) {
        let mut entries = entries.into_iter();
        let mut chunk: Vec<(IpNet, V)> = Vec::new();
        loop {
            chunk.extend(
                entries
                    .by_ref()
                    .take(EXTEND_CHUNK)
                    .map(|(net, value)| (net.trunc(), value)),
            );
            if chunk.is_empty() {
                return;
            }
            // Stable, so that of equal networks the last one given is inserted last.
            chunk.sort_by_key(|(net, _)| sort_key(net));
            for (net, value) in chunk.drain(..) {
                self.insert(net, value);
            }
        }
    }
}

/// Builds with [`Extend`] (sorted chunks), then [`shrink_to_fit`](PrefixMap::shrink_to_fit).
impl<V> FromIterator<(IpNet, V)> for PrefixMap<V> {
    fn from_iter<I: IntoIterator<Item = (IpNet, V)>>(entries: I) -> Self {
        let mut map = PrefixMap::new();
        map.extend(entries);
        map.shrink_to_fit();
        map
    }
}

/// An address as an unsigned integer, most significant bit first.
trait Key: Copy + Default + Eq + fmt::Debug {
    const WIDTH: u8;
    /// The [`STRIDE`] bits starting at bit `depth` (0 is the most significant), zeros
    /// past the end.
    fn chunk(self, depth: u8) -> usize;
    /// `chunk` placed at bit `depth`: the inverse of [`Key::chunk`].
    fn from_chunk(chunk: usize, depth: u8) -> Self;
    /// Only the first `len` bits kept.
    fn masked(self, len: u8) -> Self;
    /// How many leading bits the two share.
    fn common_len(self, other: Self) -> u8;
    fn or(self, other: Self) -> Self;
}

macro_rules! key_impl {
    ($t:ty) => {
        impl Key for $t {
            const WIDTH: u8 = <$t>::BITS as u8;
            #[inline]
            fn chunk(self, depth: u8) -> usize {
                ((self << depth) >> (Self::WIDTH - STRIDE)) as usize
            }
            #[inline]
            fn from_chunk(chunk: usize, depth: u8) -> Self {
                ((chunk as $t) << (Self::WIDTH - STRIDE)) >> depth
            }
            #[inline]
            fn masked(self, len: u8) -> Self {
                // `checked_shl` because a shift by the full width (len 0) overflows.
                self & (<$t>::MAX)
                    .checked_shl(u32::from(Self::WIDTH - len))
                    .unwrap_or(0)
            }
            #[inline]
            fn common_len(self, other: Self) -> u8 {
                (self ^ other).leading_zeros() as u8
            }
            #[inline]
            fn or(self, other: Self) -> Self {
                self | other
            }
        }
    };
}
key_impl!(u32);
key_impl!(u128);

/// Address bits per trie level. Each node spans `STRIDE` bits: 2^(STRIDE+1)-2 possible
/// networks and 2^STRIDE children. 6 measured best on `examples/attribution_bench.rs`
/// (4M networks), for memory and lookups alike: 5 adds a level (lookups 25% slower); 7
/// and 8 save levels, but their 64- and 112-byte nodes (80 and 128 for IPv6) cost two to
/// three times the memory where networks are sparse, and lookups were slower too.
const STRIDE: u8 = 6;
/// Words of the networks bitmap.
const NETWORK_WORDS: usize = ((2usize << STRIDE) - 2).div_ceil(64);
/// Words of the children bitmap.
const CHILD_WORDS: usize = (1usize << STRIDE).div_ceil(64);
/// Chunk values: the children a node can have.
const CHUNKS: usize = 1 << STRIDE;

/// The bit of a network `len` bits long (1..=STRIDE) below a node, whose bits after the
/// node's depth start with `chunk`: lengths in order, then bit patterns in order, so
/// that a higher position on a chunk's path is a longer network.
#[inline]
fn position(len: u8, chunk: usize) -> usize {
    (1 << len) - 2 + (chunk >> (STRIDE - len))
}

/// The inverse of [`position`]: (length, the network's bits as the top of a chunk).
#[inline]
fn length_and_chunk(position: usize) -> (u8, usize) {
    let len = (position + 2).ilog2() as u8;
    let bits = position + 2 - (1 << len);
    (len, bits << (STRIDE - len))
}

/// For each chunk, the positions of the networks on its path (lengths 1..=STRIDE).
static PATHS: [[u64; NETWORK_WORDS]; CHUNKS] = {
    let mut paths = [[0u64; NETWORK_WORDS]; CHUNKS];
    let mut chunk = 0;
    while chunk < CHUNKS {
        let mut len = 1;
        while len <= STRIDE {
            let position = (1 << len) - 2 + (chunk >> (STRIDE - len));
            paths[chunk][position / 64] |= 1 << (position % 64);
            len += 1;
        }
        chunk += 1;
    }
    paths
};

/// Whether bit `i` is set.
#[inline]
fn test<const N: usize>(bits: &[u64; N], i: usize) -> bool {
    bits[i / 64] >> (i % 64) & 1 == 1
}

#[inline]
fn set<const N: usize>(bits: &mut [u64; N], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

/// How many bits below `i` are set: the index of item `i` in its node's block.
#[inline]
fn rank<const N: usize>(bits: &[u64; N], i: usize) -> usize {
    let whole: u32 = bits[..i / 64].iter().map(|w| w.count_ones()).sum();
    let part = (bits[i / 64] & ((1u64 << (i % 64)) - 1)).count_ones();
    (whole + part) as usize
}

fn count<const N: usize>(bits: &[u64; N]) -> usize {
    bits.iter().map(|w| w.count_ones() as usize).sum()
}

/// The set bits, lowest first.
fn ones<const N: usize>(bits: [u64; N]) -> impl Iterator<Item = usize> {
    bits.into_iter().enumerate().flat_map(|(w, mut word)| {
        std::iter::from_fn(move || {
            let bit = word.trailing_zeros() as usize;
            word &= word.wrapping_sub(1);
            (bit < 64).then_some(w * 64 + bit)
        })
    })
}

/// The highest set bit of `a & b`, if any.
#[inline]
fn highest_common<const N: usize>(a: &[u64; N], b: &[u64; N]) -> Option<usize> {
    (0..N).rev().find_map(|w| {
        let both = a[w] & b[w];
        (both != 0).then(|| w * 64 + 63 - both.leading_zeros() as usize)
    })
}

/// One level of address space: the networks below `key/depth` down to length
/// `depth + STRIDE`, and where to go for longer ones.
#[derive(Clone, Copy, Default)]
struct Node<K> {
    /// The networks of lengths `depth+1..=depth+STRIDE` present, by [`position`].
    networks: [u64; NETWORK_WORDS],
    /// The next chunks with a child node (networks longer than `depth+STRIDE` there).
    children: [u64; CHILD_WORDS],
    /// Where this node's values are in `Trie::values`, in position order.
    values_at: u32,
    /// Where this node's children are in `Trie::nodes`, in chunk order.
    children_at: u32,
    /// The address bits above `depth` (the rest zero): a child may skip levels, so a walk
    /// checks that the address still agrees.
    key: K,
    /// A multiple of [`STRIDE`], below the family's width.
    depth: u8,
}

/// A flat arena of items kept in contiguous blocks, one block per node, so that a block
/// is found by one base index and an item in it by a rank. A full block moves to one of
/// the next size class; free blocks are reused by class.
#[derive(Clone)]
struct Blocks<T> {
    items: Vec<T>,
    /// Free blocks' first indexes, by size class.
    free: Vec<Vec<u32>>,
}

/// Block sizes, about 1.5 times apart: a block then wastes a sixth of its room on average
/// (powers of two waste a quarter), for more frequent moves of small blocks.
const CAPACITIES: [usize; 18] = [
    1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512,
];
const _: () = assert!(CAPACITIES[CAPACITIES.len() - 1] >= (2 << STRIDE) - 2);

/// The size class of a block holding `count` items (at least 1).
#[inline]
fn class_of(count: usize) -> usize {
    /// Classes by count, so that the insert path does not search.
    static CLASSES: [u8; 513] = {
        let mut classes = [0u8; 513];
        let mut count = 1;
        let mut class = 0;
        while count <= 512 {
            if CAPACITIES[class] < count {
                class += 1;
            }
            classes[count] = class as u8;
            count += 1;
        }
        classes
    };
    usize::from(CLASSES[count.min(512)])
}

/// The room of a block holding `count` items (at least 1).
#[inline]
fn capacity_of(count: usize) -> usize {
    CAPACITIES[class_of(count)]
}

impl<T: Default> Blocks<T> {
    fn new() -> Self {
        Blocks {
            items: Vec::new(),
            free: Vec::new(),
        }
    }

    fn allocate(&mut self, class: usize) -> usize {
        if let Some(start) = self.free.get_mut(class).and_then(Vec::pop) {
            return start as usize;
        }
        let start = self.items.len();
        let end = start + CAPACITIES[class];
        if u32::try_from(end).is_err() {
            panic!(
                "prefix table full: more than {} items in one arena",
                u32::MAX
            );
        }
        self.items.resize_with(end, T::default);
        start
    }

    fn release(&mut self, start: usize, class: usize) {
        if self.free.len() <= class {
            self.free.resize_with(class + 1, Vec::new);
        }
        // `allocate` checked that every index fits in a u32.
        self.free[class].push(start as u32);
    }

    /// Puts `item` at `rank` in the block at `start` holding `count` items; returns the
    /// block's start, which moves when the block was full.
    fn insert(&mut self, start: u32, count: usize, rank: usize, item: T) -> u32 {
        let start = start as usize;
        if count != 0 && count < capacity_of(count) {
            self.items[start + rank..=start + count].rotate_right(1);
            self.items[start + rank] = item;
            return start as u32;
        }
        let moved = self.allocate(class_of(count + 1));
        for i in 0..count {
            let target = moved + i + usize::from(i >= rank);
            self.items[target] = std::mem::take(&mut self.items[start + i]);
        }
        self.items[moved + rank] = item;
        if count != 0 {
            self.release(start, class_of(count));
        }
        moved as u32
    }

    /// Moves the block at `start` holding `count` items down to `target` (at most
    /// `start`; what lies between is free).
    fn slide(&mut self, start: usize, count: usize, target: usize) {
        if target != start {
            for i in 0..count {
                self.items[target + i] = std::mem::take(&mut self.items[start + i]);
            }
        }
    }

    /// Drops everything from `end` on, free lists included: after [`Blocks::slide`]
    /// packed every live block below it.
    fn cut(&mut self, end: usize) {
        self.items.truncate(end);
        self.items.shrink_to_fit();
        self.free = Vec::new();
    }
}

/// One family's networks. A network of length `L >= 1` sits in the node at depth
/// `STRIDE * ((L - 1) / STRIDE)` along its key (its home); `/0` has its own field. Node 0
/// is the root, at depth 0. Below the root, a node exists because it is some network's
/// home or because two subtrees branch in it: at most about two nodes per network where
/// networks are scattered, far fewer where they cluster (a /18's /24s share one node).
#[derive(Clone)]
struct Trie<K, V> {
    default_route: Option<V>,
    nodes: Blocks<Node<K>>,
    values: Blocks<Option<V>>,
}

/// The depth of the node a network of length `len` (>= 1) sits in.
fn home_depth(len: u8) -> u8 {
    STRIDE * ((len - 1) / STRIDE)
}

impl<K: Key, V> Trie<K, V> {
    fn new() -> Self {
        let mut nodes = Blocks::new();
        nodes.allocate(0);
        Trie {
            default_route: None,
            nodes,
            values: Blocks::new(),
        }
    }

    fn root(&self) -> &Node<K> {
        &self.nodes.items[0]
    }

    /// The child of `node` towards `key`, if there is one and `key` agrees with it.
    #[inline]
    fn child(&self, node: &Node<K>, key: K) -> Option<&Node<K>> {
        let chunk = key.chunk(node.depth);
        if !test(&node.children, chunk) {
            return None;
        }
        let child = self
            .nodes
            .items
            .get(node.children_at as usize + rank(&node.children, chunk))?;
        (key.masked(child.depth) == child.key).then_some(child)
    }

    /// The value of the network at `position` of `node`, if present.
    #[inline]
    fn value(&self, node: &Node<K>, position: usize) -> Option<&V> {
        if !test(&node.networks, position) {
            return None;
        }
        let slot = node.values_at as usize + rank(&node.networks, position);
        self.values.items.get(slot)?.as_ref()
    }

    fn insert(&mut self, key: K, len: u8, value: V) -> Option<V> {
        if len == 0 {
            return self.default_route.replace(value);
        }
        let home = home_depth(len);
        let mut index = 0usize;
        // Down to the home node, making it (and a branching node above it) if missing.
        while self.nodes.items[index].depth < home {
            let node = &self.nodes.items[index];
            let chunk = key.chunk(node.depth);
            let child_rank = rank(&node.children, chunk);
            let child_index = node.children_at as usize + child_rank;
            if !test(&node.children, chunk) {
                let leaf = Node {
                    key: key.masked(home),
                    depth: home,
                    ..Node::default()
                };
                let count = count(&node.children);
                let moved = self.nodes.insert(node.children_at, count, child_rank, leaf);
                let node = &mut self.nodes.items[index];
                node.children_at = moved;
                set(&mut node.children, chunk);
                index = moved as usize + child_rank;
                break;
            }
            let child = &self.nodes.items[child_index];
            let agreed = key.common_len(child.key) / STRIDE * STRIDE;
            let split = agreed.min(child.depth).min(home);
            if split < child.depth {
                // The child skips the level where our network belongs or branches off: a
                // node at that level takes the child's place, with the child below it.
                let below = self.nodes.allocate(0);
                let child = std::mem::take(&mut self.nodes.items[child_index]);
                let mut between = Node {
                    key: key.masked(split),
                    depth: split,
                    children_at: below as u32,
                    ..Node::default()
                };
                set(&mut between.children, child.key.chunk(split));
                self.nodes.items[below] = child;
                self.nodes.items[child_index] = between;
            }
            index = child_index;
        }
        let node = &self.nodes.items[index];
        let position = position(len - home, key.chunk(home));
        let value_rank = rank(&node.networks, position);
        if test(&node.networks, position) {
            let slot = &mut self.values.items[node.values_at as usize + value_rank];
            return slot.replace(value);
        }
        let count = count(&node.networks);
        let moved = self
            .values
            .insert(node.values_at, count, value_rank, Some(value));
        let node = &mut self.nodes.items[index];
        node.values_at = moved;
        set(&mut node.networks, position);
        None
    }

    /// The home node of networks of length `len` (>= 1) along `key`, if it exists.
    fn home(&self, key: K, len: u8) -> Option<&Node<K>> {
        let home = home_depth(len);
        let mut node = self.root();
        while node.depth < home {
            node = self.child(node, key)?;
        }
        (node.depth == home).then_some(node)
    }

    fn get(&self, key: K, len: u8) -> Option<&V> {
        if len == 0 {
            return self.default_route.as_ref();
        }
        let node = self.home(key, len)?;
        self.value(node, position(len - node.depth, key.chunk(node.depth)))
    }

    fn get_mut(&mut self, key: K, len: u8) -> Option<&mut V> {
        if len == 0 {
            return self.default_route.as_mut();
        }
        let node = self.home(key, len)?;
        let position = position(len - node.depth, key.chunk(node.depth));
        if !test(&node.networks, position) {
            return None;
        }
        let slot = node.values_at as usize + rank(&node.networks, position);
        self.values.items.get_mut(slot)?.as_mut()
    }

    /// The most specific network containing `ip`: its key, length and value.
    #[inline]
    fn longest(&self, ip: K) -> Option<(K, u8, &V)> {
        // Only the deepest node with a network on the path is remembered on the way down;
        // its value is read once at the end.
        let mut best: Option<(&Node<K>, usize)> = None;
        let mut node = self.root();
        loop {
            if let Some(position) = highest_common(&node.networks, &PATHS[ip.chunk(node.depth)]) {
                best = Some((node, position));
            }
            match self.child(node, ip) {
                Some(child) => node = child,
                None => break,
            }
        }
        match best {
            Some((node, position)) => {
                let len = node.depth + length_and_chunk(position).0;
                Some((ip.masked(len), len, self.value(node, position)?))
            }
            None => Some((K::default(), 0, self.default_route.as_ref()?)),
        }
    }

    /// Calls `visit` with every network containing `ip`, least specific first.
    fn each_containing<'a>(&'a self, ip: K, mut visit: impl FnMut(K, u8, &'a V)) {
        if let Some(value) = &self.default_route {
            visit(K::default(), 0, value);
        }
        let mut next = Some(self.root());
        while let Some(node) = next {
            let path = &PATHS[ip.chunk(node.depth)];
            let mut on_path = [0u64; NETWORK_WORDS];
            for (w, bits) in on_path.iter_mut().enumerate() {
                *bits = node.networks[w] & path[w];
            }
            for position in ones(on_path) {
                if let Some(value) = self.value(node, position) {
                    let len = node.depth + length_and_chunk(position).0;
                    visit(ip.masked(len), len, value);
                }
            }
            next = self.child(node, ip);
        }
    }

    /// Every network in address order, a shorter one before those inside it.
    fn iter(&self) -> impl Iterator<Item = (K, u8, &V)> {
        let default_route = self.default_route.as_ref().map(|v| (K::default(), 0, v));
        let mut stack = vec![Frame::new(self.root())];
        let rest = std::iter::from_fn(move || {
            loop {
                let frame = stack.last_mut()?;
                let Some(entry) = frame.entries.pop() else {
                    stack.pop();
                    continue;
                };
                let node = frame.node;
                match entry {
                    Entry::Network(position) => {
                        let (len, bits) = length_and_chunk(position);
                        let key = node.key.or(K::from_chunk(bits, node.depth));
                        if let Some(value) = self.value(node, position) {
                            return Some((key, node.depth + len, value));
                        }
                    }
                    Entry::Child(rank) => {
                        if let Some(child) = self.nodes.items.get(node.children_at as usize + rank)
                        {
                            stack.push(Frame::new(child));
                        }
                    }
                }
            }
        });
        default_route.into_iter().chain(rest)
    }

    /// Gives back the free blocks, in place: live blocks slide down over the free ones
    /// (in address order, so nothing is overwritten before it moved) and the arenas are
    /// cut after the last. Blocks keep their power-of-two capacity, so inserts still work.
    fn compact(&mut self) {
        // Every live node: the root, and the members of every children block.
        // (Indexes as u32, as in the nodes: these lists are the only extra memory.)
        let mut live = vec![0u32];
        let mut children_blocks: Vec<(u32, u32)> = Vec::new();
        let mut next = 0;
        while let Some(&index) = live.get(next) {
            next += 1;
            let node = &self.nodes.items[index as usize];
            let children = count(&node.children) as u32;
            if children > 0 {
                children_blocks.push((node.children_at, children));
                live.extend(node.children_at..node.children_at + children);
            }
        }

        let mut value_blocks: Vec<(u32, u32)> = live
            .iter()
            .map(|&index| (self.nodes.items[index as usize].values_at, index))
            .filter(|&(_, index)| self.nodes.items[index as usize].networks != [0; NETWORK_WORDS])
            .collect();
        value_blocks.sort_unstable();
        let mut end = 0;
        for (start, owner) in value_blocks {
            let node = &mut self.nodes.items[owner as usize];
            let count = count(&node.networks);
            node.values_at = end as u32;
            self.values.slide(start as usize, count, end);
            end += capacity_of(count);
        }
        self.values.cut(end);

        // Nodes move too, so first point every node at where its children will be.
        children_blocks.sort_unstable();
        let mut new_starts = Vec::with_capacity(children_blocks.len());
        let mut end = 1; // the root's block
        for &(_, count) in &children_blocks {
            new_starts.push(end as u32);
            end += capacity_of(count as usize);
        }
        for &index in &live {
            let node = &mut self.nodes.items[index as usize];
            if node.children != [0; CHILD_WORDS] {
                let old = node.children_at;
                if let Ok(i) = children_blocks.binary_search_by_key(&old, |(start, _)| *start) {
                    node.children_at = new_starts[i];
                }
            }
        }
        for (&(start, count), &new_start) in children_blocks.iter().zip(&new_starts) {
            self.nodes
                .slide(start as usize, count as usize, new_start as usize);
        }
        self.nodes.cut(end);
    }
}

/// Iteration state for one node: what is left of it, last first.
struct Frame<'a, K> {
    node: &'a Node<K>,
    entries: Vec<Entry>,
}

enum Entry {
    Network(usize),
    /// A child by its rank in the node's block.
    Child(usize),
}

impl<'a, K: Key> Frame<'a, K> {
    /// A node's networks and children in address order (reversed, to pop): a network
    /// comes before the child under its last chunk, since everything there is longer.
    fn new(node: &'a Node<K>) -> Self {
        let networks = ones(node.networks).map(|position| {
            let (len, chunk) = length_and_chunk(position);
            ((chunk, len), Entry::Network(position))
        });
        let children = ones(node.children)
            .enumerate()
            .map(|(rank, chunk)| ((chunk, STRIDE + 1), Entry::Child(rank)));
        let mut entries: Vec<((usize, u8), Entry)> = networks.chain(children).collect();
        entries.sort_unstable_by_key(|(order, _)| std::cmp::Reverse(*order));
        Frame {
            node,
            entries: entries.into_iter().map(|(_, entry)| entry).collect(),
        }
    }
}

/// [`IpNet`]'s order as integers, cheaper to compare than the enum.
fn sort_key(net: &IpNet) -> (bool, u128, u8) {
    match *net {
        IpNet::V4(net) => (
            false,
            u128::from(u32::from(net.network())),
            net.prefix_len(),
        ),
        IpNet::V6(net) => (true, u128::from(net.network()), net.prefix_len()),
    }
}

fn v4_key(net: Ipv4Net) -> (u32, u8) {
    (u32::from(net.trunc().network()), net.prefix_len())
}

fn v6_key(net: Ipv6Net) -> (u128, u8) {
    (u128::from(net.trunc().network()), net.prefix_len())
}

/// Tries only hold lengths up to the family's width, so `new_assert` cannot fire.
fn v4_net(key: u32, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(key), len))
}

fn v6_net(key: u128, len: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(key), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(networks: &[&str]) -> PrefixMap<String> {
        let mut map = PrefixMap::new();
        for n in networks {
            assert_eq!(
                map.insert(net(n), n.to_string()),
                None,
                "{n} inserted twice"
            );
        }
        map
    }

    /// Networks that overlap every way a table can: nested, siblings, default routes,
    /// hosts, and IPv6 beside IPv4.
    const NETWORKS: &[&str] = &[
        "0.0.0.0/0",
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.0/24",
        "10.1.2.128/25",
        "10.1.2.200/32",
        "10.1.3.0/24",
        "192.0.2.0/24",
        "192.0.2.255/32",
        "198.51.100.0/23",
        "2001:db8::/32",
        "2001:db8:1::/48",
        "2001:db8:1:2::/64",
        "2001:db8:1:2::1/128",
        "::ffff:0:0/96",
    ];

    #[test]
    fn longest_and_all_matches() {
        let map = table(NETWORKS);
        // (address, every containing network, most specific first)
        let cases: &[(&str, &[&str])] = &[
            (
                "10.1.2.200",
                &[
                    "10.1.2.200/32",
                    "10.1.2.128/25",
                    "10.1.2.0/24",
                    "10.1.0.0/16",
                    "10.0.0.0/8",
                    "0.0.0.0/0",
                ],
            ),
            (
                "10.1.2.201",
                &[
                    "10.1.2.128/25",
                    "10.1.2.0/24",
                    "10.1.0.0/16",
                    "10.0.0.0/8",
                    "0.0.0.0/0",
                ],
            ),
            (
                "10.1.2.127",
                &["10.1.2.0/24", "10.1.0.0/16", "10.0.0.0/8", "0.0.0.0/0"],
            ),
            (
                "10.1.3.9",
                &["10.1.3.0/24", "10.1.0.0/16", "10.0.0.0/8", "0.0.0.0/0"],
            ),
            ("10.1.4.9", &["10.1.0.0/16", "10.0.0.0/8", "0.0.0.0/0"]),
            ("10.200.0.1", &["10.0.0.0/8", "0.0.0.0/0"]),
            ("11.0.0.0", &["0.0.0.0/0"]),
            ("255.255.255.255", &["0.0.0.0/0"]),
            ("0.0.0.0", &["0.0.0.0/0"]),
            (
                "192.0.2.255",
                &["192.0.2.255/32", "192.0.2.0/24", "0.0.0.0/0"],
            ),
            ("192.0.2.254", &["192.0.2.0/24", "0.0.0.0/0"]),
            ("198.51.101.7", &["198.51.100.0/23", "0.0.0.0/0"]),
            ("198.51.102.7", &["0.0.0.0/0"]),
            (
                "2001:db8:1:2::1",
                &[
                    "2001:db8:1:2::1/128",
                    "2001:db8:1:2::/64",
                    "2001:db8:1::/48",
                    "2001:db8::/32",
                ],
            ),
            (
                "2001:db8:1:2::2",
                &["2001:db8:1:2::/64", "2001:db8:1::/48", "2001:db8::/32"],
            ),
            ("2001:db8:1:3::2", &["2001:db8:1::/48", "2001:db8::/32"]),
            ("2001:db8:ffff::", &["2001:db8::/32"]),
            // No IPv6 default route: the IPv4 one does not answer for IPv6.
            ("2001:db9::", &[]),
            ("::", &[]),
            // A mapped address is an IPv6 key: it finds ::ffff:0:0/96, not 192.0.2.0/24.
            ("::ffff:192.0.2.1", &["::ffff:0:0/96"]),
        ];
        for (address, expected) in cases {
            // Compared as networks: `::ffff:0:0/96` displays as `::ffff:0.0.0.0/96`.
            let found: Vec<IpNet> = map
                .matches(ip(address))
                .iter()
                .map(|(n, v)| {
                    assert_eq!(*n, net(v), "value belongs to the network");
                    *n
                })
                .collect();
            let expected: Vec<IpNet> = expected.iter().map(|n| net(n)).collect();
            assert_eq!(found, expected, "matches({address})");
            let longest = map.longest_match(ip(address)).map(|(n, v)| (n, net(v)));
            let first = expected.first().map(|n| (*n, *n));
            assert_eq!(longest, first, "longest_match({address})");
        }
    }

    #[test]
    fn exact_get_is_not_longest_match() {
        let map = table(NETWORKS);
        let cases: &[(&str, Option<&str>)] = &[
            ("10.1.0.0/16", Some("10.1.0.0/16")),
            // Host bits are ignored, as on insert.
            ("10.1.9.9/16", Some("10.1.0.0/16")),
            ("0.0.0.0/0", Some("0.0.0.0/0")),
            ("10.1.2.200/32", Some("10.1.2.200/32")),
            ("2001:db8:1:2::1/128", Some("2001:db8:1:2::1/128")),
            ("::ffff:0:0/96", Some("::ffff:0:0/96")),
            // Contained in stored networks, or containing them, but not stored.
            ("10.1.2.0/23", None),
            ("10.1.2.0/26", None),
            ("10.1.0.0/15", None),
            ("10.1.2.201/32", None),
            ("10.0.0.0/7", None),
            ("11.0.0.0/8", None),
            ("::/0", None),
            ("2001:db8::/33", None),
            ("2001:db8:1::/47", None),
            // Glue nodes exist in the trie (10.1.2.0/23 joins .2 and .3) but hold nothing.
            ("10.1.2.0/23", None),
        ];
        for (network, expected) in cases {
            assert_eq!(
                map.get(&net(network)).map(String::as_str),
                *expected,
                "get({network})"
            );
        }
    }

    #[test]
    fn mapped_addresses_are_ipv6_until_the_caller_says_otherwise() {
        let map = table(&["192.0.2.0/24"]);
        let mapped = ip("::ffff:192.0.2.1");
        assert_eq!(map.longest_match(mapped), None);
        assert!(map.matches(mapped).is_empty());
        // The documented way to treat it as the IPv4 host.
        let canonical = mapped.to_canonical();
        assert_eq!(canonical, ip("192.0.2.1"));
        assert_eq!(map.longest_match(canonical).unwrap().0, net("192.0.2.0/24"));
    }

    #[test]
    fn empty_table() {
        let map: PrefixMap<u8> = PrefixMap::new();
        assert!(map.is_empty());
        assert_eq!(map.len(), 0);
        assert_eq!(map.longest_match(ip("192.0.2.1")), None);
        assert!(map.matches(ip("2001:db8::1")).is_empty());
        assert_eq!(map.get(&net("0.0.0.0/0")), None);
        assert_eq!(map.iter().count(), 0);
    }

    #[test]
    fn default_routes_match_everything_of_their_family() {
        let map = table(&["0.0.0.0/0", "::/0"]);
        for address in ["0.0.0.0", "1.2.3.4", "255.255.255.255"] {
            assert_eq!(map.longest_match(ip(address)).unwrap().0, net("0.0.0.0/0"));
        }
        for address in [
            "::",
            "2001:db8::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(map.longest_match(ip(address)).unwrap().0, net("::/0"));
        }
    }

    #[test]
    fn hosts_match_only_themselves() {
        let map = table(&[
            "0.0.0.0/32",
            "255.255.255.255/32",
            "::/128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
            "192.0.2.1/32",
        ]);
        let cases: &[(&str, Option<&str>)] = &[
            ("0.0.0.0", Some("0.0.0.0/32")),
            ("0.0.0.1", None),
            ("255.255.255.255", Some("255.255.255.255/32")),
            ("255.255.255.254", None),
            ("192.0.2.1", Some("192.0.2.1/32")),
            ("192.0.2.0", None),
            ("192.0.2.2", None),
            ("::", Some("::/128")),
            ("::1", None),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"),
            ),
        ];
        for (address, expected) in cases {
            let found = map.longest_match(ip(address)).map(|(n, _)| n);
            assert_eq!(found, expected.map(net), "longest_match({address})");
        }
    }

    #[test]
    fn insert_clears_host_bits_and_replaces() {
        let mut map = PrefixMap::new();
        assert_eq!(map.insert(net("192.0.2.77/24"), 1), None);
        assert_eq!(map.insert(net("192.0.2.0/24"), 2), Some(1));
        assert_eq!(map.insert(net("192.0.2.255/24"), 3), Some(2));
        assert_eq!(map.insert(net("2001:db8::dead:beef/32"), 4), None);
        assert_eq!(map.insert(net("2001:db8::/32"), 5), Some(4));
        assert_eq!(map.len(), 2);
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            vec![(net("192.0.2.0/24"), &3), (net("2001:db8::/32"), &5)]
        );
        assert_eq!(
            map.longest_match(ip("192.0.2.9")),
            Some((net("192.0.2.0/24"), &3))
        );
        // Replacing a glue node's place: 10.0.0.0/23 exists as glue before it is inserted.
        map.insert(net("10.0.0.0/24"), 6);
        map.insert(net("10.0.1.0/24"), 7);
        assert_eq!(map.get(&net("10.0.0.0/23")), None);
        assert_eq!(map.insert(net("10.0.0.0/23"), 8), None);
        assert_eq!(map.len(), 5);
        assert_eq!(
            map.matches(ip("10.0.1.1")),
            vec![(net("10.0.1.0/24"), &7), (net("10.0.0.0/23"), &8)]
        );
        *map.get_mut(&net("10.0.0.0/23")).unwrap() += 10;
        assert_eq!(map.get(&net("10.0.0.0/23")), Some(&18));
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let forward = table(NETWORKS);
        let backward = table(&NETWORKS.iter().rev().copied().collect::<Vec<_>>());
        let collected: PrefixMap<String> =
            NETWORKS.iter().map(|n| (net(n), n.to_string())).collect();
        let sorted = {
            let mut sorted: Vec<IpNet> = NETWORKS.iter().map(|n| net(n)).collect();
            sorted.sort();
            sorted
        };
        for map in [&forward, &backward, &collected] {
            assert_eq!(map.len(), NETWORKS.len());
            let listed: Vec<IpNet> = map.iter().map(|(n, _)| n).collect();
            assert_eq!(listed, sorted, "iter() is in IpNet order");
        }
    }

    #[test]
    fn collect_keeps_the_last_value_of_a_network() {
        let map: PrefixMap<u32> = [
            ("192.0.2.0/24", 1),
            ("10.0.0.0/8", 2),
            ("192.0.2.9/24", 3),
            ("192.0.2.0/24", 4),
            ("10.0.0.0/8", 5),
        ]
        .into_iter()
        .map(|(n, v)| (net(n), v))
        .collect();
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&net("192.0.2.0/24")), Some(&4));
        assert_eq!(map.get(&net("10.0.0.0/8")), Some(&5));
    }

    /// A small deterministic generator (splitmix64), so the cross-check needs no crate
    /// and fails the same way every time.
    struct SplitMix(wachter_core::order::SplitMix64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }

        fn below(&mut self, n: u64) -> u64 {
            self.0.below(n)
        }

        /// An address near one of a few bases, so that random networks overlap a lot.
        fn address(&mut self, bases: &[u128], bits: u8) -> u128 {
            let base = bases[self.below(bases.len() as u64) as usize];
            let mut value = base;
            for _ in 0..self.below(4) {
                value ^= 1u128 << self.below(u64::from(bits));
            }
            if bits == 32 {
                value & u128::from(u32::MAX)
            } else {
                value
            }
        }

        fn ip(&mut self, bases: &[u128], bits: u8) -> IpAddr {
            let value = self.address(bases, bits);
            if bits == 32 {
                IpAddr::V4(Ipv4Addr::from(value as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(value))
            }
        }
    }

    /// The obvious implementation: every network, scanned.
    fn naive_matches(networks: &[(IpNet, u64)], address: IpAddr) -> Vec<(IpNet, u64)> {
        let mut found: Vec<(IpNet, u64)> = networks
            .iter()
            .filter(|(n, _)| n.contains(&address))
            .copied()
            .collect();
        found.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        found
    }

    /// Every answer of `map` against the naive table: `len`, `iter`, `get` of every
    /// network, and `matches`, `longest_match`, `get` around random addresses.
    fn assert_agrees(
        map: &PrefixMap<u64>,
        naive: &[(IpNet, u64)],
        rng: &mut SplitMix,
        bases: (&[u128], &[u128]),
        context: &str,
    ) {
        assert_eq!(map.len(), naive.len(), "{context}: len");
        let mut sorted = naive.to_vec();
        sorted.sort();
        let listed: Vec<(IpNet, u64)> = map.iter().map(|(n, v)| (n, *v)).collect();
        assert_eq!(listed, sorted, "{context}: iter");
        for (network, value) in naive {
            assert_eq!(map.get(network), Some(value), "{context}: get {network}");
        }
        for _ in 0..1000 {
            let bits = if rng.below(2) == 0 { 32 } else { 128 };
            let address = rng.ip(if bits == 32 { bases.0 } else { bases.1 }, bits);
            let expected = naive_matches(naive, address);
            let found: Vec<(IpNet, u64)> = map
                .matches(address)
                .into_iter()
                .map(|(n, v)| (n, *v))
                .collect();
            assert_eq!(found, expected, "{context}: matches({address})");
            let longest = map.longest_match(address).map(|(n, v)| (n, *v));
            assert_eq!(
                longest,
                expected.first().copied(),
                "{context}: longest_match({address})"
            );
            // A random network, stored or not: get is exact.
            let len = rng.below(u64::from(bits) + 1) as u8;
            let probe = IpNet::new(address, len).unwrap().trunc();
            let stored = naive.iter().find(|(n, _)| *n == probe).map(|(_, v)| v);
            assert_eq!(map.get(&probe), stored, "{context}: get {probe}");
        }
    }

    #[test]
    fn agrees_with_a_scan_of_every_network() {
        let mut rng = SplitMix(wachter_core::order::SplitMix64(0x5eed_0001));
        for round in 0..20 {
            let bases_v4: Vec<u128> = (0..3).map(|_| u128::from(rng.next() as u32)).collect();
            let bases_v6: Vec<u128> = (0..3)
                .map(|_| u128::from(rng.next()) << 64 | u128::from(rng.next()))
                .collect();
            let bases = (bases_v4.as_slice(), bases_v6.as_slice());
            let mut map = PrefixMap::new();
            // The naive table: one entry per distinct network, the last value wins.
            let mut naive: Vec<(IpNet, u64)> = Vec::new();
            for i in 0..600u64 {
                let (address, len) = if rng.below(3) == 0 {
                    (rng.ip(&bases_v6, 128), rng.below(129) as u8)
                } else {
                    (rng.ip(&bases_v4, 32), rng.below(33) as u8)
                };
                let network = IpNet::new(address, len).unwrap();
                let previous = naive.iter().position(|(n, _)| *n == network.trunc());
                let replaced = map.insert(network, i);
                let context = format!("round {round}: insert {network}");
                assert_eq!(replaced, previous.map(|p| naive[p].1), "{context}");
                match previous {
                    Some(p) => naive[p].1 = i,
                    None => naive.push((network.trunc(), i)),
                }
                // Half-way: compacting, then inserting into the compacted table.
                if i == 300 {
                    assert_agrees(&map, &naive, &mut rng, bases, &format!("round {round}"));
                    map.shrink_to_fit();
                    let context = format!("round {round}, compacted");
                    assert_agrees(&map, &naive, &mut rng, bases, &context);
                }
            }
            let context = format!("round {round}, grown after compacting");
            assert_agrees(&map, &naive, &mut rng, bases, &context);
            map.shrink_to_fit();
            let context = format!("round {round}, compacted again");
            assert_agrees(&map, &naive, &mut rng, bases, &context);
            // The same networks collected (sorted inserts) answer the same.
            let collected: PrefixMap<u64> = naive.iter().copied().collect();
            assert_agrees(
                &collected,
                &naive,
                &mut rng,
                bases,
                &format!("round {round}, collected"),
            );
        }
    }
}
