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

/// What a reverse lookup gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReverseResolution {
    /// PTR names, lower-case, without the trailing dot.
    Names(Vec<String>),
    /// No PTR record.
    NoName,
    /// The lookup failed (timeout, SERVFAIL, refused).
    Failed(String),
}

/// A shared resolver with a bound on concurrent queries.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    in_flight: Arc<Semaphore>,
    /// The nameservers reverse lookups ask directly (see [`Dns::reverse`]).
    servers: Vec<SocketAddr>,
    timeout: Duration,
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
        let servers = match config {
            DnsConfig::Server(addr) => vec![*addr],
            DnsConfig::System => hickory_resolver::system_conf::read_system_conf()
                .map(|(conf, _)| {
                    conf.name_servers()
                        .iter()
                        .map(|ns| {
                            let port = ns.connections.first().map_or(53, |c| c.port);
                            SocketAddr::new(ns.ip, port)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(Dns {
            resolver,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            servers,
            timeout,
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

    /// The PTR names of `ip` (attacker-controlled text: callers validate before use).
    ///
    /// Asked of the nameservers directly (UDP, one deadline per server), not through the
    /// caching resolver: it answers PTR queries for 127.0.0.0/8 itself with `localhost`
    /// (RFC 6761), and the names of a constituency's own loopback lab must be testable.
    pub async fn reverse(&self, ip: IpAddr) -> ReverseResolution {
        let Ok(_permit) = self.in_flight.acquire().await else {
            return ReverseResolution::Failed("resolver shut down".into());
        };
        if self.servers.is_empty() {
            return ReverseResolution::Failed("no nameserver configured".into());
        }
        let mut last = ReverseResolution::Failed("no answer".into());
        for server in &self.servers {
            match tokio::time::timeout(self.timeout, query_ptr(*server, ip)).await {
                Ok(Ok(answer)) => return answer,
                Ok(Err(e)) => last = ReverseResolution::Failed(format!("{server}: {e}")),
                Err(_) => last = ReverseResolution::Failed(format!("{server}: no answer in time")),
            }
        }
        last
    }
}

/// One PTR query over UDP; the answer must come from the server asked and carry our id.
async fn query_ptr(server: SocketAddr, ip: IpAddr) -> std::io::Result<ReverseResolution> {
    use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_resolver::proto::rr::{Name, RData, RecordType};
    let bind: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    let id = rand_id();
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from(ip), RecordType::PTR));
    let bytes = query.to_vec().map_err(std::io::Error::other)?;
    socket.send(&bytes).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).await?;
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        return Ok(match reply.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {
                let mut names: Vec<String> = reply
                    .answers
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::PTR(ptr) => {
                            Some(ptr.0.to_ascii().trim_end_matches('.').to_ascii_lowercase())
                        }
                        _ => None,
                    })
                    .collect();
                names.sort();
                names.dedup();
                if names.is_empty() {
                    ReverseResolution::NoName
                } else {
                    ReverseResolution::Names(names)
                }
            }
            code => ReverseResolution::Failed(format!("{code}")),
        });
    }
}

/// A query id that an off-path sender cannot guess from the clock alone.
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() as u16
}
