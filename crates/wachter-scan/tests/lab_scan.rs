//! End-to-end scans of lab hosts on loopback: every behaviour gives the right record,
//! requests go out byte for byte, the scope guard holds for hostnames, shards partition.
//!
//! Each test uses its own 127.x.y.0 block so tests can run in parallel.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wachter_core::addr::IpRange;
use wachter_core::check::StaticPlan;
use wachter_core::order::Shard;
use wachter_core::ports::PortList;
use wachter_core::record::{HttpOutcome, Protocol, ServiceRecord, Status};
use wachter_core::scope::{Refusal, ScopePolicy};
use wachter_lab::dns::LabDns;
use wachter_lab::{Behaviour, HostSpec, KeyKind, Lab, LabOptions};
use wachter_net::connect::{ConnectOptions, Connector, RateLimits};
use wachter_net::dns::{Dns, DnsConfig};
use wachter_net::http::{HttpLimits, RequestSpec};
use wachter_net::probe::{ProbeConfig, ProbeDepth, Prober};
use wachter_scan::output::Collect;
use wachter_scan::{ScanOptions, ScanSummary, Source, TargetInputs, run_scan};

const TARGET_TIMEOUT: Duration = Duration::from_secs(3);
/// No scan in these tests may take longer than this: a hang fails the test instead of CI.
const NO_HANG: Duration = Duration::from_secs(120);

struct Scan {
    limits: RateLimits,
    target_timeout: Duration,
    scope: Vec<&'static str>,
    ports: &'static str,
    requests: Vec<RequestSpec>,
    depth: ProbeDepth,
    shard: Shard,
    dns: Option<SocketAddr>,
    max_body: usize,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            limits: RateLimits {
                global: None,
                per_network: None,
            },
            target_timeout: TARGET_TIMEOUT,
            scope: vec!["127.0.0.0/8"],
            ports: "18443",
            requests: vec![RequestSpec::get("root", "/")],
            depth: ProbeDepth::Http,
            shard: Shard::WHOLE,
            dns: None,
            max_body: 4096,
        }
    }
}

impl Scan {
    async fn run(&self, targets: &[&str]) -> (Vec<ServiceRecord>, ScanSummary) {
        let scope: Vec<IpRange> = self.scope.iter().map(|s| s.parse().unwrap()).collect();
        let policy = Arc::new(ScopePolicy::new(&scope, &[]));
        let connect = ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            retries: 0,
            limits: self.limits,
        };
        let probe = ProbeConfig {
            depth: self.depth,
            check: Arc::new(StaticPlan::new(self.requests.clone())),
            seed: 42,
            http: HttpLimits {
                max_head: 16 * 1024,
                max_body: self.max_body,
                response_timeout: Duration::from_secs(2),
            },
            tls_timeout: Duration::from_secs(2),
            target_timeout: self.target_timeout,
            ..ProbeConfig::default()
        };
        let prober =
            Arc::new(Prober::new(Arc::new(Connector::new(policy, connect)), probe).unwrap());
        let dns = self
            .dns
            .map(|addr| Dns::new(&DnsConfig::Server(addr), Duration::from_secs(2), 16).unwrap());
        let sources: Vec<Source> = targets.iter().map(|t| Source::from_arg(t)).collect();
        let inputs = TargetInputs::prepare(&sources).unwrap();
        let options = ScanOptions {
            ports: self.ports.parse::<PortList>().unwrap(),
            seed: 42,
            shard: self.shard,
            concurrency: 64,
            shuffle_window: 16,
            progress: false,
            resume: None,
        };
        let collected = Arc::new(Mutex::new(Vec::new()));
        let sink = Box::new(Collect(collected.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let summary =
            tokio::time::timeout(NO_HANG, run_scan(inputs, &options, prober, dns, sink, stop))
                .await
                .expect("the scan hung")
                .unwrap();
        let records = collected.lock().unwrap().clone();
        (records, summary)
    }
}

/// The behaviours about transport and hostility (the NetScaler states have their own test).
fn transport_behaviours() -> Vec<Behaviour> {
    Behaviour::ALL
        .into_iter()
        .filter(|b| {
            b.appliance().is_none() && !matches!(b, Behaviour::Honeypot | Behaviour::CatchAll)
        })
        .collect()
}

fn hosts(block: &str, port: u16, behaviours: &[Behaviour]) -> Vec<HostSpec> {
    let range: IpRange = block.parse().unwrap();
    behaviours
        .iter()
        .enumerate()
        .map(|(i, b)| HostSpec {
            ip: range.nth(i as u128).unwrap(),
            port,
            behaviour: *b,
            hostname: None,
        })
        .collect()
}

fn options(log: bool) -> LabOptions {
    LabOptions {
        key: KeyKind::Ecdsa,
        drip_interval: Duration::from_millis(50),
        log_requests: log,
    }
}

fn by_ip(records: &[ServiceRecord]) -> HashMap<IpAddr, &ServiceRecord> {
    records.iter().map(|r| (r.ip, r)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_behaviour_gives_its_record() {
    let lab = Lab::start(
        hosts("127.31.0.0/28", 18443, &transport_behaviours()),
        &options(false),
    )
    .await
    .unwrap();
    let (records, summary) = Scan::default().run(&["127.31.0.0/28"]).await;
    assert_eq!(records.len(), 16, "one record per address of the /28");
    assert_eq!(summary.tally.services, 16);
    let found = by_ip(&records);
    for host in lab.manifest() {
        let r = found[&host.ip];
        assert_eq!(
            (r.status, r.protocol),
            host.behaviour.expected(),
            "{} ({})",
            host.ip,
            host.behaviour
        );
        let http = r.http.first();
        match host.behaviour {
            Behaviour::Https => {
                let tls = r.tls.as_ref().unwrap();
                assert!(tls.established);
                assert_eq!(tls.sni, None, "no SNI for a bare address");
                let leaf = &tls.chain[0];
                assert_eq!(leaf.sha256.len(), 64);
                assert_eq!(leaf.sans, vec!["lab.wachter.test".to_string()]);
                assert_eq!(leaf.key_type.as_deref(), Some("EC"));
                assert!(leaf.subject.contains("CN=lab.wachter.test"));
                assert!(!leaf.der.is_empty());
                assert_eq!(http.unwrap().status, Some(200));
            }
            Behaviour::LegacyTls => {
                let tls = r.tls.as_ref().unwrap();
                assert_eq!(tls.version.as_deref(), Some("TLSv1"));
                assert_eq!(tls.cipher.as_deref(), Some("AES128-SHA"));
                assert_eq!(tls.chain[0].key_type.as_deref(), Some("RSA"));
                assert_eq!(tls.chain[0].key_bits, Some(2048));
            }
            Behaviour::Http => {
                let ex = http.unwrap();
                assert_eq!(ex.status, Some(200));
                assert!(ex.body_complete);
                assert!(
                    String::from_utf8_lossy(ex.body.as_ref().unwrap().as_bytes())
                        .contains("<title>wachter lab: http</title>")
                );
                assert!(r.tls.is_none(), "a plain port keeps no failed-TLS noise");
            }
            Behaviour::Bare403 => {
                let ex = http.unwrap();
                assert_eq!(ex.status, Some(403));
                assert_eq!(
                    ex.status_line.as_ref().unwrap().as_bytes(),
                    b"HTTP/1.1 403 Forbidden"
                );
                assert_eq!(ex.headers.as_ref().unwrap().as_bytes(), b"");
                assert_eq!(ex.body, None);
            }
            Behaviour::EndlessBody => {
                let ex = http.unwrap();
                assert_eq!(ex.status, Some(200));
                assert!(!ex.body_complete);
                assert_eq!(
                    ex.body.as_ref().unwrap().as_bytes().len(),
                    4096,
                    "body capped at max_body"
                );
            }
            Behaviour::ResetMidResponse => {
                let ex = http.unwrap();
                assert_eq!(ex.status, Some(200));
                assert!(!ex.body_complete);
                assert!(ex.body_read < 100_000);
            }
            Behaviour::SlowDrip => {
                let ex = http.unwrap();
                assert_eq!(ex.outcome, HttpOutcome::Timeout);
                assert!(
                    ex.body
                        .as_ref()
                        .unwrap()
                        .as_bytes()
                        .starts_with(b"HTTP/1.1 200 OK")
                );
            }
            Behaviour::Tarpit => assert_eq!(r.error.as_ref().unwrap().kind, "timeout"),
            Behaviour::Garbage => assert_eq!(r.banner.as_ref().unwrap().as_bytes()[0], 0xA5),
            Behaviour::OtherProtocol => assert!(
                r.banner
                    .as_ref()
                    .unwrap()
                    .as_bytes()
                    .starts_with(b"SSH-2.0-")
            ),
            Behaviour::TlsAlert => {
                let failure = r.tls.as_ref().unwrap().failure.as_deref().unwrap();
                assert!(failure.contains("handshake failure"), "{failure}");
            }
            Behaviour::SilentClose => assert!(
                r.http
                    .iter()
                    .all(|ex| matches!(ex.outcome, HttpOutcome::Closed | HttpOutcome::Reset))
            ),
            Behaviour::Closed => assert!(r.http.is_empty() && r.tls.is_none()),
            other => unreachable!("{other} is not a transport behaviour"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_paths_go_out_byte_for_byte_and_share_a_connection() {
    let lab = Lab::start(
        hosts("127.32.0.0/30", 18443, &[Behaviour::Http, Behaviour::Https]),
        &options(true),
    )
    .await
    .unwrap();
    let scan = Scan {
        requests: vec![
            RequestSpec::get("root", "/"),
            RequestSpec::get("p1", "/vpn/../vpns/cfg/smb.conf"),
            RequestSpec::get("p2", "/vpn/%2e%2e/vpns/"),
        ],
        ..Scan::default()
    };
    let (records, _) = scan.run(&["127.32.0.0", "127.32.0.1"]).await;
    let heads: Vec<Vec<u8>> = lab.requests().into_iter().map(|r| r.head).collect();
    let exact = |line: &[u8]| heads.iter().filter(|h| h.starts_with(line)).count();
    assert_eq!(
        exact(b"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\n"),
        2,
        "once over plain HTTP, once over TLS"
    );
    assert_eq!(exact(b"GET /vpn/%2e%2e/vpns/ HTTP/1.1\r\n"), 2);
    assert_eq!(exact(b"GET /vpns/"), 0, "no normalised request ever");
    for r in &records {
        assert_eq!(r.http.len(), 3);
        assert!(
            r.http[1]
                .request
                .as_bytes()
                .starts_with(b"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\n")
        );
        assert_eq!(r.http[1].status, Some(404));
        // Kept alive: all three requests on one connection, one TLS handshake.
        assert!(
            r.http
                .iter()
                .all(|ex| ex.connection == r.http[0].connection),
            "{:?}",
            r.http.iter().map(|e| e.connection).collect::<Vec<_>>()
        );
        if let Some(tls) = &r.tls {
            assert_eq!(tls.handshakes, 1);
        }
        assert!(
            r.http[0]
                .request
                .as_bytes()
                .windows(17)
                .any(|w| w == b"User-Agent: wacht")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostnames_resolve_and_out_of_scope_answers_are_refused() {
    let _lab = Lab::start(
        vec![
            HostSpec {
                ip: "127.33.0.1".parse().unwrap(),
                port: 18443,
                behaviour: Behaviour::Https,
                hostname: Some("vpn.hospital.test".into()),
            },
            HostSpec {
                ip: "127.34.0.1".parse().unwrap(),
                port: 18443,
                behaviour: Behaviour::Http,
                hostname: None,
            },
        ],
        &options(true),
    )
    .await
    .unwrap();
    let names: HashMap<String, Vec<IpAddr>> = [
        ("vpn.hospital.test", vec!["127.33.0.1"]),
        ("outside.hospital.test", vec!["127.34.0.1"]),
        ("split.hospital.test", vec!["127.33.0.1", "127.34.0.1"]),
    ]
    .into_iter()
    .map(|(n, ips)| {
        (
            n.to_string(),
            ips.iter().map(|i| i.parse().unwrap()).collect(),
        )
    })
    .collect();
    let dns = LabDns::start("127.33.0.53:0".parse().unwrap(), names)
        .await
        .unwrap();
    let scan = Scan {
        scope: vec!["127.33.0.0/24"],
        dns: Some(dns.addr()),
        ..Scan::default()
    };
    let (records, summary) = scan
        .run(&[
            "vpn.hospital.test",
            "outside.hospital.test",
            "split.hospital.test",
            "missing.hospital.test",
        ])
        .await;

    let find = |name: &str, ip: &str| {
        records
            .iter()
            .find(|r| r.hostname.as_deref() == Some(name) && r.ip.to_string() == ip)
            .unwrap_or_else(|| panic!("no record for {name} {ip}"))
    };
    let inside = find("vpn.hospital.test", "127.33.0.1");
    assert_eq!(inside.protocol, Some(Protocol::Https));
    assert_eq!(
        inside.tls.as_ref().unwrap().sni.as_deref(),
        Some("vpn.hospital.test")
    );
    assert_eq!(
        inside.tls.as_ref().unwrap().chain[0].sans,
        vec!["vpn.hospital.test".to_string()]
    );
    assert!(
        inside.http[0]
            .request
            .as_bytes()
            .windows(29)
            .any(|w| w == b"Host: vpn.hospital.test:18443")
    );
    for (name, ip) in [
        ("outside.hospital.test", "127.34.0.1"),
        ("split.hospital.test", "127.34.0.1"),
    ] {
        let r = find(name, ip);
        assert_eq!(r.status, Status::Blocked);
        assert_eq!(r.blocked_by, Some(Refusal::OutOfScope));
        assert_eq!(r.connections, 0);
    }
    assert_eq!(
        find("split.hospital.test", "127.33.0.1").status,
        Status::Open
    );
    assert_eq!(summary.tally.blocked.get(&Refusal::OutOfScope), Some(&2));
    assert_eq!(summary.unresolved_count, 1);
    assert_eq!(summary.unresolved[0].hostname, "missing.hospital.test");
    // The out-of-scope host never saw a connection.
    assert!(
        _lab.requests()
            .iter()
            .all(|r| r.host.ip().to_string() != "127.34.0.1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_outside_scope_are_reported_not_scanned() {
    let (records, summary) = Scan {
        scope: vec!["127.35.0.0/25"],
        depth: ProbeDepth::Connect,
        ..Scan::default()
    }
    .run(&["127.35.0.0/24", "10.9.9.0/30"])
    .await;
    assert_eq!(records.len(), 128, "only the in-scope half was visited");
    assert!(
        records
            .iter()
            .all(|r| r.ip.to_string().starts_with("127.35.0.") && r.status == Status::Closed)
    );
    let refused: Vec<(Refusal, &str, u128)> = summary
        .refused_networks
        .iter()
        .map(|r| (r.reason, r.range.as_str(), r.addresses))
        .collect();
    assert!(
        refused.contains(&(Refusal::OutOfScope, "127.35.0.128/25", 128)),
        "{refused:?}"
    );
    assert!(
        refused.contains(&(Refusal::OutOfScope, "10.9.9.0/30", 4)),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_a_scan_without_overlap_or_gap() {
    let _lab = Lab::start(
        hosts("127.36.0.0/29", 18443, &[Behaviour::Http; 8]),
        &options(false),
    )
    .await
    .unwrap();
    let mut union = HashSet::new();
    let mut total = 0;
    let mut open = 0;
    for k in 0..3 {
        let scan = Scan {
            depth: ProbeDepth::Connect,
            ports: "18443,18444",
            shard: Shard::new(k, 3).unwrap(),
            ..Scan::default()
        };
        let (records, _) = scan
            .run(&["127.36.0.0/27", "127.36.1.1", "127.36.1.2:9"])
            .await;
        total += records.len();
        for r in records {
            assert!(
                union.insert((r.ip, r.port)),
                "{}:{} scanned by two shards",
                r.ip,
                r.port
            );
            if r.status == Status::Open {
                open += 1;
            }
        }
    }
    // 32 addresses x 2 ports, one address x 2 ports, one service.
    assert_eq!(total, 64 + 2 + 1);
    assert_eq!(union.len(), 67);
    assert_eq!(open, 8, "exactly the eight listeners answer, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_the_rate_limit_is_not_a_timeout() {
    // 40 listeners, 10 new connections per second (a burst of 10, then one every 100 ms), a
    // 500 ms budget per target and all 40 in flight at once: most targets wait longer for
    // their turn than their whole budget. That wait is wachter's own queue, so every host
    // must still come out open.
    let _lab = Lab::start(
        hosts("127.37.0.0/26", 18443, &[Behaviour::Http; 40]),
        &options(false),
    )
    .await
    .unwrap();
    let scan = Scan {
        limits: RateLimits {
            global: std::num::NonZeroU32::new(10),
            per_network: None,
        },
        target_timeout: Duration::from_millis(500),
        depth: ProbeDepth::Connect,
        ..Scan::default()
    };
    let (records, _) = scan.run(&["127.37.0.0-127.37.0.39"]).await;
    assert_eq!(records.len(), 40);
    let not_open: Vec<_> = records
        .iter()
        .filter(|r| r.status != Status::Open)
        .map(|r| (r.ip, r.status, r.error.clone()))
        .collect();
    assert!(not_open.is_empty(), "{not_open:?}");
}
