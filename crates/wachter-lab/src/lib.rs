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
pub mod netscaler;
pub mod serve;
pub mod truth;

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
use wachter_core::order::splitmix64;
use wachter_core::record::{Protocol, Status};

pub use certs::KeyKind;
pub use netscaler::Appliance;

/// What the NetScaler check must report for a lab host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectedNetscaler {
    pub product: wachter_core::assessment::Product,
    pub probe: Option<wachter_core::assessment::ProbeState>,
    pub version: Option<&'static str>,
    pub cve_2019_19781: wachter_core::assessment::Verdict,
    pub honeypot: bool,
    pub catch_all: bool,
    pub default_certificate: bool,
    pub legacy_tls: bool,
}
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
    /// NetScaler Gateway 13.0-47.22, unpatched and unmitigated, default certificate.
    NsVulnerable,
    /// NetScaler 12.1-50.28: the responder mitigation is configured but does not work.
    NsBrokenMitigation,
    /// NetScaler 12.1-55.13 behind the CTX267679 responder policy.
    NsMitigated,
    /// NetScaler 13.0-47.24, the fixed build.
    NsPatched,
    /// NetScaler 14.1-43.50 with only the LogonPoint (RfWebUI) login.
    NsLogonPoint,
    /// A 2026 NetScaler build whose rdx_en.json.gz stamp is zeroed.
    NsStampZero,
    /// NetScaler 12.1-55.18 serving rdx_en.json.gz inside a transfer gzip.
    NsTransferGzip,
    /// NetScaler 12.1-50.31, vulnerable, speaking only TLS 1.0 with AES128-SHA.
    NsLegacyTls,
    /// NetScaler 13.0-41.20, vulnerable, on plain HTTP.
    NsPlainHttp,
    /// NetScaler 13.0-36.27, vulnerable, whose Gateway answers only for its SNI hostname.
    NsSniVhost,
    /// A honeypot imitating a vulnerable NetScaler: 200 for everything.
    Honeypot,
    /// A web application answering 200 for any path.
    CatchAll,
    /// `NsVulnerable` whose headers, pages and certificate names carry script and
    /// event-handler payloads ([`netscaler::hostile`]): for testing that whatever displays
    /// scanned content keeps it inert. Not in [`Behaviour::ALL`] (the demo's mix and its
    /// counts stay as they are); named in a mix as `ns_hostile`.
    NsHostile,
}

impl Behaviour {
    pub const ALL: [Behaviour; 25] = [
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
        Behaviour::NsVulnerable,
        Behaviour::NsBrokenMitigation,
        Behaviour::NsMitigated,
        Behaviour::NsPatched,
        Behaviour::NsLogonPoint,
        Behaviour::NsStampZero,
        Behaviour::NsTransferGzip,
        Behaviour::NsLegacyTls,
        Behaviour::NsPlainHttp,
        Behaviour::NsSniVhost,
        Behaviour::Honeypot,
        Behaviour::CatchAll,
    ];

    /// Behaviours a mix can name that [`Behaviour::ALL`] (every lab's default) leaves out.
    pub const EXTRA: [Behaviour; 1] = [Behaviour::NsHostile];

    /// Every behaviour a mix can name.
    pub fn named() -> impl Iterator<Item = Behaviour> {
        Behaviour::ALL.into_iter().chain(Behaviour::EXTRA)
    }

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
            Behaviour::NsVulnerable => "ns_vulnerable",
            Behaviour::NsBrokenMitigation => "ns_broken_mitigation",
            Behaviour::NsMitigated => "ns_mitigated",
            Behaviour::NsPatched => "ns_patched",
            Behaviour::NsLogonPoint => "ns_logonpoint",
            Behaviour::NsStampZero => "ns_stamp_zero",
            Behaviour::NsTransferGzip => "ns_transfer_gzip",
            Behaviour::NsLegacyTls => "ns_legacy_tls",
            Behaviour::NsPlainHttp => "ns_plain_http",
            Behaviour::NsSniVhost => "ns_sni_vhost",
            Behaviour::Honeypot => "honeypot",
            Behaviour::CatchAll => "catch_all",
            Behaviour::NsHostile => "ns_hostile",
        }
    }

    /// The simulated appliance behind a NetScaler behaviour.
    pub fn appliance(&self) -> Option<Appliance> {
        use netscaler::{Exposure::*, Login::*};
        let app = |version, stamp, vhash, login, exposure| Appliance {
            version: Some(version),
            stamp,
            vhash,
            login,
            exposure,
            transfer_gzip: false,
            hostile: false,
        };
        Some(match self {
            Behaviour::NsVulnerable => app(
                "13.0-47.22",
                1574967982,
                Some("fedb4ba86b5edcbc86081f2893dc9fdf"),
                Classic,
                Vulnerable,
            ),
            Behaviour::NsHostile => Appliance {
                hostile: true,
                ..Behaviour::NsVulnerable.appliance()?
            },
            Behaviour::NsBrokenMitigation => app(
                "12.1-50.28",
                1543395386,
                Some("26df0e65fba681faaeb333058a8b28bf"),
                Classic,
                Vulnerable,
            ),
            Behaviour::NsMitigated => app(
                "12.1-55.13",
                1572931127,
                Some("8c62b39f7068ea2f3d3f7d40860c0cd4"),
                Classic,
                Mitigated,
            ),
            Behaviour::NsPatched => app(
                "13.0-47.24",
                1579525745,
                Some("fd96bc8977256003de05ed84270b90bb"),
                Classic,
                Patched,
            ),
            Behaviour::NsLogonPoint => app("14.1-43.50", 1740156084, None, LogonPoint, Patched),
            Behaviour::NsStampZero => Appliance {
                version: None,
                stamp: 0,
                vhash: None,
                login: LogonPoint,
                exposure: Patched,
                transfer_gzip: false,
                hostile: false,
            },
            Behaviour::NsTransferGzip => Appliance {
                transfer_gzip: true,
                ..app(
                    "12.1-55.18",
                    1579524387,
                    Some("02d30141fd053d5c3448bf04fbedb8d6"),
                    Classic,
                    Patched,
                )
            },
            Behaviour::NsLegacyTls => app(
                "12.1-50.31",
                1547833294,
                Some("d3b5c691a4cfcc6769da8dc4e40f511d"),
                Classic,
                Vulnerable,
            ),
            Behaviour::NsPlainHttp => app(
                "13.0-41.20",
                1568102085,
                Some("43a8abf580ea09a5fa8aa1bd579280b9"),
                Classic,
                Vulnerable,
            ),
            Behaviour::NsSniVhost => app(
                "13.0-36.27",
                1557769307,
                Some("86b4b2567b05dff896aae46d6e0765bc"),
                Classic,
                Vulnerable,
            ),
            _ => return None,
        })
    }

    /// Whether the host speaks TLS.
    pub fn needs_tls(&self) -> bool {
        !matches!(
            self,
            Behaviour::Http
                | Behaviour::Closed
                | Behaviour::SilentClose
                | Behaviour::Tarpit
                | Behaviour::SlowDrip
                | Behaviour::EndlessBody
                | Behaviour::Garbage
                | Behaviour::TlsAlert
                | Behaviour::ResetMidResponse
                | Behaviour::OtherProtocol
                | Behaviour::Bare403
                | Behaviour::NsPlainHttp
        )
    }

    fn legacy_tls(&self) -> bool {
        matches!(self, Behaviour::LegacyTls | Behaviour::NsLegacyTls)
    }

    /// The hostname a host is reached under, for SNI-only virtual hosts.
    pub fn vhost(&self) -> Option<&'static str> {
        (*self == Behaviour::NsSniVhost).then_some("vpn.sni-only.test")
    }

    /// The certificate a TLS host presents (without SNI, for SNI-only hosts).
    fn certificate(&self) -> certs::CertSpec {
        let org = |cn: &str, sans: &[&str]| certs::CertSpec {
            subject: vec![
                ("C".into(), "NL".into()),
                ("O".into(), "wachter lab".into()),
                ("CN".into(), cn.into()),
            ],
            dns_sans: sans.iter().map(|s| s.to_string()).collect(),
            not_before_days_ago: 60,
            valid_days: 730,
        };
        match self {
            Behaviour::NsVulnerable
            | Behaviour::NsBrokenMitigation
            | Behaviour::NsTransferGzip
            | Behaviour::NsLegacyTls
            | Behaviour::NsSniVhost => certs::CertSpec::netscaler_default("QZKXWP"),
            Behaviour::NsMitigated => org(
                "vpn.ziekenhuis-a.test",
                &["vpn.ziekenhuis-a.test", "*.ziekenhuis-a.test"],
            ),
            Behaviour::NsPatched => org("gateway.gemeente-b.test", &["gateway.gemeente-b.test"]),
            Behaviour::NsLogonPoint => org(
                "remote.waterschap-c.test",
                &["remote.waterschap-c.test", "*.waterschap-c.test"],
            ),
            Behaviour::NsStampZero => org("vpn.provincie-d.test", &["vpn.provincie-d.test"]),
            Behaviour::NsHostile => {
                use netscaler::hostile;
                certs::CertSpec {
                    subject: vec![
                        ("C".into(), "NL".into()),
                        ("O".into(), hostile::CERT_O.into()),
                        ("OU".into(), hostile::CERT_OU.into()),
                        ("CN".into(), hostile::CERT_CN.into()),
                    ],
                    dns_sans: hostile::CERT_SANS.iter().map(|s| s.to_string()).collect(),
                    not_before_days_ago: 60,
                    valid_days: 730,
                }
            }
            _ => certs::CertSpec::for_name("lab.wachter.test"),
        }
    }

    /// What the NetScaler check must conclude for this host, reached with or without its
    /// SNI hostname. `None` for hosts that give the check nothing to assess.
    pub fn expected_netscaler(&self, with_hostname: bool) -> Option<ExpectedNetscaler> {
        use wachter_core::assessment::{ProbeState as P, Product::*, Verdict as V};
        let ns = |probe, version: Option<&'static str>, verdict| ExpectedNetscaler {
            product: Netscaler,
            probe: Some(probe),
            version,
            cve_2019_19781: verdict,
            honeypot: false,
            catch_all: false,
            default_certificate: matches!(self.certificate().subject.last(), Some((_, cn)) if cn.starts_with("default ")),
            legacy_tls: self.legacy_tls(),
        };
        let other = |probe, catch_all| ExpectedNetscaler {
            product: NotNetscaler,
            probe,
            version: None,
            cve_2019_19781: V::NotApplicable,
            honeypot: false,
            catch_all,
            default_certificate: false,
            legacy_tls: self.legacy_tls(),
        };
        let version = self.appliance().and_then(|a| a.version);
        Some(match self {
            Behaviour::NsVulnerable
            | Behaviour::NsBrokenMitigation
            | Behaviour::NsLegacyTls
            | Behaviour::NsPlainHttp
            | Behaviour::NsHostile => ns(P::Vulnerable, version, V::Vulnerable),
            Behaviour::NsMitigated => ns(P::Mitigated, version, V::Mitigated),
            Behaviour::NsPatched
            | Behaviour::NsLogonPoint
            | Behaviour::NsTransferGzip
            | Behaviour::NsStampZero => ns(P::NotVulnerable, version, V::Patched),
            Behaviour::NsSniVhost if with_hostname => ExpectedNetscaler {
                default_certificate: false,
                ..ns(P::Vulnerable, version, V::Vulnerable)
            },
            // Without SNI: the default virtual server, known only by its certificate.
            Behaviour::NsSniVhost => ns(P::NotVulnerable, None, V::Unknown),
            Behaviour::Honeypot => ExpectedNetscaler {
                product: Unknown,
                probe: Some(P::Inconclusive),
                cve_2019_19781: V::Unknown,
                honeypot: true,
                ..other(None, false)
            },
            // Every path answers 200 (whole, endless or cut short): catch-all servers.
            Behaviour::CatchAll | Behaviour::EndlessBody | Behaviour::ResetMidResponse => {
                other(Some(P::NotVulnerable), true)
            }
            // The responder's answer shape, on something that is no NetScaler.
            Behaviour::Bare403 => other(Some(P::Mitigated), false),
            Behaviour::Http | Behaviour::Https | Behaviour::LegacyTls => {
                other(Some(P::NotVulnerable), false)
            }
            _ => return None,
        })
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
            Behaviour::NsPlainHttp => (Status::Open, Some(Protocol::Http)),
            Behaviour::Https
            | Behaviour::LegacyTls
            | Behaviour::NsVulnerable
            | Behaviour::NsBrokenMitigation
            | Behaviour::NsMitigated
            | Behaviour::NsPatched
            | Behaviour::NsLogonPoint
            | Behaviour::NsStampZero
            | Behaviour::NsTransferGzip
            | Behaviour::NsLegacyTls
            | Behaviour::NsSniVhost
            | Behaviour::NsHostile
            | Behaviour::Honeypot
            | Behaviour::CatchAll => (Status::Open, Some(Protocol::Https)),
            Behaviour::SilentClose | Behaviour::Tarpit | Behaviour::SlowDrip => {
                (Status::Open, Some(Protocol::Silent))
            }
            Behaviour::Garbage | Behaviour::OtherProtocol => (Status::Open, Some(Protocol::Other)),
            Behaviour::TlsAlert => (Status::Open, Some(Protocol::TlsFailed)),
        }
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
        Behaviour::named()
            .find(|b| b.name() == s.trim())
            .ok_or_else(|| {
                LabError::Config(format!(
                    "unknown behaviour {s:?}; known: {}",
                    Behaviour::named()
                        .map(|b| b.name())
                        .collect::<Vec<_>>()
                        .join(", ")
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
            let roll = splitmix64(p.seed ^ splitmix64(index));
            let present = (splitmix64(roll) as f64 / u64::MAX as f64) < p.density;
            let behaviour = if present {
                p.mix.pick(roll)
            } else {
                Behaviour::Closed
            };
            hosts.push(HostSpec {
                ip,
                port: p.port,
                behaviour,
                hostname: behaviour.vhost().map(String::from),
            });
            offset += 1;
            index += 1;
        }
    }
    Ok(hosts)
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
        let tls_hosts = || hosts.iter().filter(|h| h.behaviour.needs_tls());
        let key = if tls_hosts().any(|h| !h.behaviour.legacy_tls()) {
            Some(certs::generate_key(options.key)?)
        } else {
            None
        };
        // Static-RSA suites need an RSA key whatever the lab's default.
        let legacy_key = if tls_hosts().any(|h| h.behaviour.legacy_tls()) {
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
                match acceptors.get(&cache_key) {
                    Some(a) => Some(a.clone()),
                    None => {
                        let legacy = host.behaviour.legacy_tls();
                        let Some(pkey) = (if legacy {
                            legacy_key.as_ref()
                        } else {
                            key.as_ref()
                        }) else {
                            continue;
                        };
                        let a = Arc::new(acceptor_for(host, pkey, legacy)?);
                        acceptors.insert(cache_key, a.clone());
                        Some(a)
                    }
                }
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
                vhost: host.behaviour.vhost().map(String::from),
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

    /// Stops serving and waits until every listener is closed, so the addresses can be bound
    /// again at once (dropping the lab stops it too, but without waiting).
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// The TLS acceptor of a host: its behaviour's certificate (or one for its hostname), and
/// for SNI-only hosts a second context chosen when the client names the virtual host.
fn acceptor_for(
    host: &HostSpec,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    legacy: bool,
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let spec = match (&host.hostname, host.behaviour) {
        (
            Some(name),
            Behaviour::Https | Behaviour::LegacyTls | Behaviour::Honeypot | Behaviour::CatchAll,
        ) => certs::CertSpec::for_name(name),
        _ => host.behaviour.certificate(),
    };
    let mut builder = acceptor_builder(key, &spec, legacy)?;
    if let Some(vhost) = host.behaviour.vhost() {
        let vhost_context = acceptor_builder(key, &certs::CertSpec::for_name(vhost), legacy)?
            .build()
            .into_context();
        builder.set_servername_callback(move |ssl, _alert| {
            if ssl
                .servername(openssl::ssl::NameType::HOST_NAME)
                .is_some_and(|n| n.eq_ignore_ascii_case(vhost))
            {
                ssl.set_ssl_context(&vhost_context)
                    .map_err(|_| openssl::ssl::SniError::ALERT_FATAL)?;
            }
            Ok(())
        });
    }
    Ok(builder.build())
}

fn acceptor_builder(
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    spec: &certs::CertSpec,
    legacy: bool,
) -> Result<openssl::ssl::SslAcceptorBuilder, openssl::error::ErrorStack> {
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
    builder.set_read_ahead(true);
    builder.set_private_key(key)?;
    builder.set_certificate(&cert)?;
    builder.check_private_key()?;
    Ok(builder)
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
    fn the_hostile_host_is_named_but_not_in_every_lab() {
        let mix: Mix = "ns_hostile=2,http".parse().unwrap();
        assert_eq!(mix.0[0], (Behaviour::NsHostile, 2));
        assert!(!Behaviour::ALL.contains(&Behaviour::NsHostile));
        assert!(!Mix::all().0.iter().any(|(b, _)| *b == Behaviour::NsHostile));
        // The same appliance and ground truth as the vulnerable one, bar the certificate.
        let hostile = Behaviour::NsHostile.expected_netscaler(false).unwrap();
        let plain = Behaviour::NsVulnerable.expected_netscaler(false).unwrap();
        assert_eq!(
            hostile,
            ExpectedNetscaler {
                default_certificate: false,
                ..plain
            }
        );
        assert_eq!(
            Behaviour::NsHostile.expected(),
            Behaviour::NsVulnerable.expected()
        );
    }

    #[test]
    fn openssl_keeps_the_hostile_certificate_names_verbatim() {
        let key = certs::generate_key(KeyKind::Ecdsa).unwrap();
        let cert = certs::self_signed(&Behaviour::NsHostile.certificate(), &key).unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let cn = cert
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .map(|e| text(e.data().as_slice()));
        assert_eq!(cn.as_deref(), Some(netscaler::hostile::CERT_CN));
        let sans: Vec<String> = cert
            .subject_alt_names()
            .unwrap()
            .iter()
            .filter_map(|n| n.dnsname().map(str::to_string))
            .collect();
        assert_eq!(sans, netscaler::hostile::CERT_SANS);
    }

    #[test]
    fn the_hostile_appliance_keeps_every_signal_and_adds_payloads() {
        let app = Behaviour::NsHostile.appliance().unwrap();
        let plain = Behaviour::NsVulnerable.appliance().unwrap();
        let text = |path: &[u8], app: &Appliance| {
            String::from_utf8_lossy(&netscaler::appliance(app, path).bytes).into_owned()
        };
        for path in [
            &b"/"[..],
            b"/vpn/index.html",
            b"/vpn/../vpns/",
            b"/vpn/../vpns/cfg/smb.conf",
            b"/0123/456.html",
        ] {
            let hostile = text(path, &app);
            let (head, body) = hostile.split_once("\r\n\r\n").unwrap();
            let status = |t: &str| t.lines().next().unwrap_or_default().to_string();
            assert_eq!(status(&hostile), status(&text(path, &plain)), "{hostile}");
            let server = format!("\r\nServer: {}\r\n", netscaler::hostile::SERVER);
            assert!(head.contains(&server), "{head}");
            assert_eq!(head.matches("Server:").count(), 1, "{head}");
            assert!(head.contains("X-Note: \"></pre><img"), "{head}");
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap();
            assert_eq!(length.parse::<usize>().unwrap(), body.len(), "{path:?}");
            if path != b"/" {
                assert!(body.contains("<script>window.__wachter_pwned=1"), "{body}");
            }
        }
        let page = text(b"/vpn/index.html", &app);
        assert!(page.contains("<title>Citrix Gateway</title>"));
        assert!(page.contains("?v=fedb4ba86b5edcbc86081f2893dc9fdf"));
        let conf = text(b"/vpn/../vpns/cfg/smb.conf", &app);
        assert!(conf.contains("[global]\n\tencrypt passwords = yes"));
        assert!(
            text(b"/vpn/../vpns/", &app).contains("You don't have permission to access /vpns/")
        );
    }

    #[test]
    fn mix_syntax() {
        assert!("http=2, tarpit".parse::<Mix>().is_ok());
        assert!("nonsense=1".parse::<Mix>().is_err());
        assert!("http=x".parse::<Mix>().is_err());
        assert!("http=0".parse::<Mix>().is_err());
    }
}
