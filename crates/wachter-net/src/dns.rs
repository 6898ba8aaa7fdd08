//! Hostname resolution for targets, asynchronous and bounded.
//!
//! hickory-resolver instead of `getaddrinfo`: the system call runs on tokio's blocking pool
//! and cannot be bounded per query. Names are resolved once; every A and AAAA becomes a
//! target that keeps the name for SNI and `Host`. The addresses are *not* trusted: the
//! connector checks each one against the scope like any other.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use tokio::sync::Semaphore;

/// How names are resolved.
#[derive(Clone, Debug, Default)]
pub enum DnsConfig {
    /// `/etc/resolv.conf` and `/etc/hosts`.
    #[default]
    System,
    /// One specific nameserver (the lab's, in tests and the demo).
    Server(SocketAddr),
}

/// What a lookup gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Addresses(Vec<IpAddr>),
    /// The name does not exist or has no A/AAAA records.
    NoAddress,
    /// The lookup failed (timeout, SERVFAIL, refused).
    Failed(String),
}

/// A shared resolver with a bound on concurrent queries.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    in_flight: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up DNS resolution: {0}")]
pub struct DnsSetupError(String);

impl Dns {
    pub fn new(
        config: &DnsConfig,
        timeout: Duration,
        max_in_flight: usize,
    ) -> Result<Self, DnsSetupError> {
        let mut builder = match config {
            DnsConfig::System => {
                Resolver::builder_tokio().map_err(|e| DnsSetupError(e.to_string()))?
            }
            DnsConfig::Server(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = timeout;
        options.attempts = 2;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let resolver = builder.build().map_err(|e| DnsSetupError(e.to_string()))?;
        Ok(Dns {
            resolver,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
        })
    }

    /// Resolves `name` to its addresses, de-duplicated, IPv4 first.
    pub async fn resolve(&self, name: &str) -> Resolution {
        let Ok(_permit) = self.in_flight.acquire().await else {
            return Resolution::Failed("resolver shut down".into());
        };
        // A trailing dot stops search-domain expansion: we resolve exactly the given name.
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut addrs: Vec<IpAddr> = lookup.iter().collect();
                addrs.sort_by_key(|ip| (ip.is_ipv6(), *ip));
                addrs.dedup();
                if addrs.is_empty() {
                    Resolution::NoAddress
                } else {
                    Resolution::Addresses(addrs)
                }
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Resolution::NoAddress,
            Err(e) => Resolution::Failed(e.to_string()),
        }
    }
}
