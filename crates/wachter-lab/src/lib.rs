//! The lab: simulated hosts on loopback addresses, each in a known state, with a manifest
//! that says what a correct scan must report.
//!
//! One process serves many hosts: one listener per (address, port), never on `0.0.0.0`,
//! each host with one [`Behaviour`] picked from a weighted mix by a seed. The demo, the
//! end-to-end tests and the benchmarks all scan a lab, so its ground truth is the
//! reference for wachter's accuracy.
//!
//! The lab only ever binds addresses in 127.0.0.0/8; [`plan`] refuses anything else.

pub mod certs;
pub mod dns;
pub mod serve;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslMethod, SslOptions, SslVersion};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use wachter_core::addr::RangeSet;
use wachter_core::record::{Protocol, Status};

pub use certs::KeyKind;
pub use serve::{LoggedRequest, RequestLog};

/// What a lab host does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// A web server in plain HTTP.
    Http,
    /// A web server over modern TLS.
    Https,
    /// A web server that only speaks TLS 1.0 with static-RSA AES128-SHA.
    LegacyTls,
    /// Nothing listens: the port answers with a reset.
    Closed,
    /// Accepts and closes at once.
    SilentClose,
    /// Accepts and never answers.
    Tarpit,
    /// Sends an endless response head, one byte at a time.
    SlowDrip,
    /// Sends a response whose body never ends.
    EndlessBody,
    /// Sends random bytes on connect.
    Garbage,
    /// Answers the ClientHello with a fatal TLS alert.
    TlsAlert,
    /// Starts a response and resets the connection half way.
    ResetMidResponse,
    /// Speaks another protocol (an SSH banner).
    OtherProtocol,
    /// A NetScaler-responder-style bare `HTTP/1.1 403 Forbidden\r\n\r\n`, then close.
    Bare403,
}

impl Behaviour {
    pub const ALL: [Behaviour; 13] = [
        Behaviour::Http,
        Behaviour::Https,
        Behaviour::LegacyTls,
        Behaviour::Closed,
        Behaviour::SilentClose,
        Behaviour::Tarpit,
        Behaviour::SlowDrip,
        Behaviour::EndlessBody,
        Behaviour::Garbage,
        Behaviour::TlsAlert,
        Behaviour::ResetMidResponse,
        Behaviour::OtherProtocol,
        Behaviour::Bare403,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Http => "http",
            Behaviour::Https => "https",
            Behaviour::LegacyTls => "legacy_tls",
            Behaviour::Closed => "closed",
            Behaviour::SilentClose => "silent_close",
            Behaviour::Tarpit => "tarpit",
            Behaviour::SlowDrip => "slow_drip",
            Behaviour::EndlessBody => "endless_body",
            Behaviour::Garbage => "garbage",
            Behaviour::TlsAlert => "tls_alert",
            Behaviour::ResetMidResponse => "reset_mid_response",
            Behaviour::OtherProtocol => "other_protocol",
            Behaviour::Bare403 => "bare_403",
        }
    }

    /// What a correct scan reports for a host with this behaviour: reachability and the
    /// protocol found on the port.
    pub fn expected(&self) -> (Status, Option<Protocol>) {
        match self {
            Behaviour::Closed => (Status::Closed, None),
            Behaviour::Http
            | Behaviour::EndlessBody
            | Behaviour::ResetMidResponse
            | Behaviour::Bare403 => (Status::Open, Some(Protocol::Http)),
            Behaviour::Https | Behaviour::LegacyTls => (Status::Open, Some(Protocol::Https)),
            Behaviour::SilentClose | Behaviour::Tarpit | Behaviour::SlowDrip => {
                (Status::Open, Some(Protocol::Silent))
            }
            Behaviour::Garbage | Behaviour::OtherProtocol => (Status::Open, Some(Protocol::Other)),
            Behaviour::TlsAlert => (Status::Open, Some(Protocol::TlsFailed)),
        }
    }

    fn needs_tls(&self) -> bool {
        matches!(self, Behaviour::Https | Behaviour::LegacyTls)
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Behaviour {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.name() == s.trim())
            .ok_or_else(|| {
                LabError::Config(format!(
                    "unknown behaviour {s:?}; known: {}",
                    Behaviour::ALL.map(|b| b.name()).join(", ")
                ))
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot make lab TLS material: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
}

/// Weighted behaviours: `http=5,https=3,tarpit=1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix(Vec<(Behaviour, u32)>);

impl Mix {
    /// Every behaviour once.
    pub fn all() -> Self {
        Mix(Behaviour::ALL.iter().map(|b| (*b, 1)).collect())
    }

    fn pick(&self, roll: u64) -> Behaviour {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut point = roll % total.max(1);
        for (behaviour, weight) in &self.0 {
            if point < u64::from(*weight) {
                return *behaviour;
            }
            point -= u64::from(*weight);
        }
        Behaviour::Closed
    }
}

impl FromStr for Mix {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| LabError::Config(format!("bad weight in {part:?}")))?;
            if weight > 0 {
                parts.push((name.parse()?, weight));
            }
        }
        if parts.is_empty() {
            return Err(LabError::Config("the mix names no behaviour".into()));
        }
        Ok(Mix(parts))
    }
}

/// One simulated host, as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    pub ip: IpAddr,
    pub port: u16,
    pub behaviour: Behaviour,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// How to lay out a lab.
#[derive(Clone, Debug)]
pub struct LabPlan {
    pub hosts: RangeSet,
    pub port: u16,
    pub mix: Mix,
    /// Fraction of addresses that get a host at all; the rest are `closed`.
    pub density: f64,
    pub seed: u64,
}

/// Assigns a behaviour to every address of the plan. Refuses non-loopback addresses.
pub fn plan(p: &LabPlan) -> Result<Vec<HostSpec>, LabError> {
    let loopback = RangeSet::from_ranges(["127.0.0.0/8"
        .parse()
        .map_err(|_| LabError::Config("loopback".into()))?]);
    if !p.hosts.difference(&loopback).is_empty() {
        return Err(LabError::Config(
            "the lab only binds addresses in 127.0.0.0/8".into(),
        ));
    }
    if p.hosts.address_count() > 1 << 20 {
        return Err(LabError::Config(
            "a lab holds at most 2^20 addresses".into(),
        ));
    }
    let mut hosts = Vec::new();
    let mut index: u64 = 0;
    for range in p.hosts.ranges() {
        let mut offset = 0u128;
        while let Some(ip) = range.nth(offset) {
            let roll = splitmix(p.seed ^ splitmix(index));
            let present = (splitmix(roll) as f64 / u64::MAX as f64) < p.density;
            let behaviour = if present {
                p.mix.pick(roll)
            } else {
                Behaviour::Closed
            };
            hosts.push(HostSpec {
                ip,
                port: p.port,
                behaviour,
                hostname: None,
            });
            offset += 1;
            index += 1;
        }
    }
    Ok(hosts)
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Options for serving a planned lab.
#[derive(Clone, Debug)]
pub struct LabOptions {
    pub key: KeyKind,
    pub drip_interval: Duration,
    pub log_requests: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            key: KeyKind::Rsa,
            drip_interval: Duration::from_millis(500),
            log_requests: false,
        }
    }
}

/// A running lab. Dropping it stops every host.
pub struct Lab {
    manifest: Vec<HostSpec>,
    log: RequestLog,
    tasks: JoinSet<()>,
}

impl Lab {
    /// Binds every host of `hosts` (except the `closed` ones) and starts serving.
    pub async fn start(hosts: Vec<HostSpec>, options: &LabOptions) -> Result<Lab, LabError> {
        for host in &hosts {
            if !matches!(host.ip, IpAddr::V4(v4) if v4.is_loopback())
                && host.ip != IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
            {
                return Err(LabError::Config(format!(
                    "{} is not a loopback address",
                    host.ip
                )));
            }
        }
        let log = RequestLog::new(options.log_requests);
        let mut acceptors: HashMap<(Behaviour, Option<String>), Arc<SslAcceptor>> = HashMap::new();
        let key = if hosts.iter().any(|h| h.behaviour == Behaviour::Https) {
            Some(certs::generate_key(options.key)?)
        } else {
            None
        };
        // Static-RSA suites need an RSA key whatever the lab's default.
        let legacy_key = if hosts.iter().any(|h| h.behaviour == Behaviour::LegacyTls) {
            Some(certs::generate_key(KeyKind::Rsa)?)
        } else {
            None
        };
        let mut tasks = JoinSet::new();
        for host in &hosts {
            if host.behaviour == Behaviour::Closed {
                continue;
            }
            let addr = SocketAddr::new(host.ip, host.port);
            let tls = if host.behaviour.needs_tls() {
                let cache_key = (host.behaviour, host.hostname.clone());
                let acceptor = match acceptors.get(&cache_key) {
                    Some(a) => a.clone(),
                    None => {
                        let name = host
                            .hostname
                            .clone()
                            .unwrap_or_else(|| "lab.wachter.test".to_string());
                        let legacy = host.behaviour == Behaviour::LegacyTls;
                        let pkey = if legacy {
                            legacy_key.as_ref()
                        } else {
                            key.as_ref()
                        };
                        let Some(pkey) = pkey else { continue };
                        let a =
                            Arc::new(acceptor(pkey, &certs::CertSpec::for_name(&name), legacy)?);
                        acceptors.insert(cache_key, a.clone());
                        a
                    }
                };
                Some(acceptor)
            } else {
                None
            };
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| LabError::Bind { addr, source })?;
            let ctx = serve::HostContext {
                behaviour: host.behaviour,
                local: addr,
                tls,
                log: log.clone(),
                drip_interval: options.drip_interval,
            };
            tasks.spawn(accept_loop(listener, ctx));
        }
        Ok(Lab {
            manifest: hosts,
            log,
            tasks,
        })
    }

    pub fn manifest(&self) -> &[HostSpec] {
        &self.manifest
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.snapshot()
    }

    /// Stops serving (also done on drop).
    pub fn shutdown(&mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

fn acceptor(
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    spec: &certs::CertSpec,
    legacy: bool,
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let cert = certs::self_signed(spec, key)?;
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    if legacy {
        // The Mozilla profile switches old protocols off with options that
        // set_min_proto_version does not undo.
        builder.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
        builder.set_security_level(0);
        builder.set_min_proto_version(Some(SslVersion::TLS1))?;
        builder.set_max_proto_version(Some(SslVersion::TLS1))?;
        builder.set_cipher_list("AES128-SHA:@SECLEVEL=0")?;
    }
    builder.set_private_key(key)?;
    builder.set_certificate(&cert)?;
    builder.check_private_key()?;
    Ok(builder.build())
}

async fn accept_loop(listener: TcpListener, ctx: serve::HostContext) {
    let mut connections = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(serve::handle(stream, ctx.clone()));
                while connections.try_join_next().is_some() {}
            }
            Err(e) => {
                // EMFILE and friends: wait instead of spinning (tokio#3529).
                tracing::debug!(error = %e, addr = %ctx.local, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The manifest as JSON Lines, one host per line.
pub fn manifest_jsonl(hosts: &[HostSpec]) -> String {
    let mut out = String::new();
    for host in hosts {
        let (status, protocol) = host.behaviour.expected();
        let line = serde_json::json!({
            "ip": host.ip,
            "port": host.port,
            "hostname": host.hostname,
            "behaviour": host.behaviour,
            "expect": { "status": status, "protocol": protocol },
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_seeded_and_loopback_only() {
        let p = LabPlan {
            hosts: RangeSet::from_ranges(["127.9.0.0/24".parse().unwrap()]),
            port: 18080,
            mix: "http=1,tarpit=1".parse().unwrap(),
            density: 0.5,
            seed: 7,
        };
        let a = plan(&p).unwrap();
        assert_eq!(a, plan(&p).unwrap());
        assert_eq!(a.len(), 256);
        let open = a
            .iter()
            .filter(|h| h.behaviour != Behaviour::Closed)
            .count();
        assert!((80..180).contains(&open), "density 0.5 gave {open} of 256");
        let public = LabPlan {
            hosts: RangeSet::from_ranges(["145.1.2.0/30".parse().unwrap()]),
            ..p
        };
        assert!(plan(&public).is_err());
    }

    #[test]
    fn mix_syntax() {
        assert!("http=2, tarpit".parse::<Mix>().is_ok());
        assert!("nonsense=1".parse::<Mix>().is_err());
        assert!("http=x".parse::<Mix>().is_err());
        assert!("http=0".parse::<Mix>().is_err());
    }
}
