//! The failed-login limiter: token buckets keyed by the client's address and by the user
//! name typed, so that neither one address guessing many names nor many addresses
//! guessing one name gets more than a few tries and then one every few seconds.
//!
//! An attempt takes a token from both buckets *before* the password is checked (Argon2 is
//! the expensive part, and a burst of parallel attempts must not all pass the check before
//! any is counted); a login that succeeds, or that could not be checked, gives its tokens
//! back. Each bucket is kept as the time it will be full again (the "theoretical arrival
//! time" of GCRA): one `Instant` per key, no background task. The maps are capped; when
//! one is full, the keys whose buckets are full again go first, then the oldest.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many failures a key may have at once, and how fast it gets one back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketPolicy {
    pub burst: u32,
    pub refill: Duration,
}

/// Per user name: five tries, then one every ten seconds.
pub const PER_NAME: BucketPolicy = BucketPolicy {
    burst: 5,
    refill: Duration::from_secs(10),
};
/// Per address (or IPv6 /64): a little more room, for a team behind one NAT or proxy.
pub const PER_PEER: BucketPolicy = BucketPolicy {
    burst: 10,
    refill: Duration::from_secs(10),
};
/// Keys remembered per map (about 2 MB at most for names of 200 characters).
pub const MAX_KEYS: usize = 10_000;

/// The limiter of one server (see the module doc).
#[derive(Debug)]
pub struct LoginLimiter {
    state: Mutex<Limits>,
}

#[derive(Debug)]
struct Limits {
    peers: Buckets<IpAddr>,
    names: Buckets<String>,
}

/// The tokens one attempt took, to give back with [`LoginLimiter::give_back`].
#[derive(Debug)]
pub struct Attempt {
    peer: IpAddr,
    name: String,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(PER_PEER, PER_NAME, MAX_KEYS)
    }
}

impl LoginLimiter {
    pub fn new(per_peer: BucketPolicy, per_name: BucketPolicy, max_keys: usize) -> LoginLimiter {
        LoginLimiter {
            state: Mutex::new(Limits {
                peers: Buckets::new(per_peer, max_keys),
                names: Buckets::new(per_name, max_keys),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a token for an attempt from `peer` at user `name` (already folded), or tells
    /// how long to wait until both buckets have one.
    pub fn attempt(&self, peer: IpAddr, name: &str) -> Result<Attempt, Duration> {
        self.attempt_at(peer, name, Instant::now())
    }

    pub fn attempt_at(&self, peer: IpAddr, name: &str, now: Instant) -> Result<Attempt, Duration> {
        let peer = peer_key(peer);
        let mut limits = self.state();
        let wait = limits
            .peers
            .wait(&peer, now)
            .max(limits.names.wait(name, now));
        if !wait.is_zero() {
            return Err(wait);
        }
        limits.peers.take(peer, now);
        limits.names.take(name.to_string(), now);
        Ok(Attempt {
            peer,
            name: name.to_string(),
        })
    }

    /// Returns an attempt's tokens: the login succeeded, or the password was not checked.
    pub fn give_back(&self, attempt: Attempt) {
        let mut limits = self.state();
        limits.peers.give_back(&attempt.peer);
        limits.names.give_back(&attempt.name);
    }

    /// Keys remembered (peers, names).
    pub fn remembered(&self) -> (usize, usize) {
        let limits = self.state();
        (limits.peers.full_at.len(), limits.names.full_at.len())
    }
}

/// The key of a client address: IPv4 as it is, IPv6 by its /64 (one host usually has a
/// whole /64 to pick addresses from), IPv4-mapped IPv6 as IPv4.
fn peer_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// Token buckets by key, each kept as the moment it is full again.
#[derive(Debug)]
struct Buckets<K> {
    policy: BucketPolicy,
    max_keys: usize,
    full_at: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(policy: BucketPolicy, max_keys: usize) -> Self {
        Buckets {
            policy,
            max_keys: max_keys.max(1),
            full_at: HashMap::new(),
        }
    }

    /// How much of the refill an empty bucket holds: `burst` tokens' worth.
    fn depth(&self) -> Duration {
        self.policy.refill * self.policy.burst.max(1)
    }

    /// How long until `key`'s bucket has a token (zero: it has one now).
    fn wait<Q>(&self, key: &Q, now: Instant) -> Duration
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.full_at.get(key) {
            // Taking one more token would put `full_at` beyond `now + depth`.
            Some(&full_at) => {
                (full_at + self.policy.refill).saturating_duration_since(now + self.depth())
            }
            None => Duration::ZERO,
        }
    }

    fn take(&mut self, key: K, now: Instant) {
        if !self.full_at.contains_key(&key) && self.full_at.len() >= self.max_keys {
            self.make_room(now);
        }
        let full_at = self.full_at.entry(key).or_insert(now);
        *full_at = (*full_at).max(now) + self.policy.refill;
    }

    fn give_back<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(full_at) = self.full_at.get_mut(key) {
            *full_at = full_at.checked_sub(self.policy.refill).unwrap_or(*full_at);
        }
    }

    /// Forgets the buckets that are full again (as good as unknown), then, if that was not
    /// enough, the one that was touched longest ago.
    fn make_room(&mut self, now: Instant) {
        self.full_at.retain(|_, full_at| *full_at > now);
        if self.full_at.len() >= self.max_keys {
            let oldest = self
                .full_at
                .iter()
                .min_by_key(|(_, full_at)| **full_at)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.full_at.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn policy(burst: u32) -> BucketPolicy {
        BucketPolicy {
            burst,
            refill: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_name_gets_its_burst_then_one_try_per_refill() {
        let limiter = LoginLimiter::new(policy(100), policy(5), 100);
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        // (seconds after the start, allowed, or the wait in seconds)
        let steps: &[(u64, Result<(), u64>)] = &[
            (0, Ok(())),
            (0, Ok(())),
            (0, Ok(())),
            (0, Ok(())),
            (0, Ok(())),
            (0, Err(10)),
            (4, Err(6)),
            (10, Ok(())),
            (10, Err(10)),
            (25, Ok(())),
            (25, Err(5)),
            (100, Ok(())),
        ];
        for (step, (seconds, expected)) in steps.iter().enumerate() {
            let got = limiter
                .attempt_at(A, "anna", at(*seconds))
                .map(|_| ())
                .map_err(|wait| wait.as_secs());
            assert_eq!(got, *expected, "step {step} at {seconds} s");
        }
        // Other names are not touched.
        assert!(limiter.attempt_at(A, "vera", at(25)).is_ok());
    }

    #[test]
    fn an_address_is_limited_across_names_and_ipv6_by_its_64() {
        let limiter = LoginLimiter::new(policy(3), policy(100), 100);
        let now = Instant::now();
        let v6 =
            |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
        let cases: &[(IpAddr, &str, bool)] = &[
            (A, "a", true),
            (A, "b", true),
            (A, "c", true),
            (A, "d", false),
            (B, "d", true),
            (v6(1), "a", true),
            (v6(2), "b", true),
            (v6(3), "c", true),
            (v6(4), "d", false),
            ("::ffff:192.0.2.2".parse().unwrap(), "e", true),
            ("::ffff:192.0.2.2".parse().unwrap(), "f", true),
            (B, "g", false),
        ];
        for (peer, name, allowed) in cases {
            assert_eq!(
                limiter.attempt_at(*peer, name, now).is_ok(),
                *allowed,
                "{peer} {name}"
            );
        }
    }

    #[test]
    fn a_successful_login_gives_its_token_back() {
        let limiter = LoginLimiter::new(policy(2), policy(2), 100);
        let now = Instant::now();
        for _ in 0..10 {
            let attempt = limiter.attempt_at(A, "anna", now).expect("room");
            limiter.give_back(attempt);
        }
        limiter.attempt_at(A, "anna", now).unwrap();
        limiter.attempt_at(A, "anna", now).unwrap();
        assert!(limiter.attempt_at(A, "anna", now).is_err());
    }

    #[test]
    fn memory_is_bounded_by_forgetting_full_then_oldest_buckets() {
        let limiter = LoginLimiter::new(policy(5), policy(5), 3);
        let start = Instant::now();
        for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let peer = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, i as u8));
            limiter
                .attempt_at(peer, name, start + Duration::from_secs(i as u64))
                .unwrap();
            let (peers, names) = limiter.remembered();
            assert!(peers <= 3 && names <= 3, "{peers} {names}");
        }
        // "a" and "b" (the oldest) were forgotten, "e" is remembered.
        let limits = limiter.state();
        let mut names: Vec<&String> = limits.names.full_at.keys().collect();
        names.sort();
        assert_eq!(names, ["c", "d", "e"]);
        drop(limits);
        // Once every bucket is full again, making room forgets them all.
        let later = start + Duration::from_secs(3600);
        limiter.attempt_at(B, "z", later).unwrap();
        limiter.attempt_at(A, "y", later).unwrap();
        assert_eq!(limiter.remembered(), (2, 2));
    }
}
