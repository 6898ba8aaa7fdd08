//! Accuracy: a lab holding every state is scanned with the NetScaler check and every host
//! must be classified exactly as its manifest says: no false positive, no false negative,
//! honeypot and catch-all never vulnerable, inconclusive only where a host misbehaves.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wachter_checks::netscaler::NetscalerCheck;
use wachter_core::addr::IpRange;
use wachter_core::assessment::{ProbeState, Verdict};
use wachter_core::check::{Check, RequestSpec, StaticPlan};
use wachter_core::order::Shard;
use wachter_core::record::{ServiceRecord, Status};
use wachter_core::scope::ScopePolicy;
use wachter_lab::{Behaviour, HostSpec, KeyKind, Lab, LabOptions, truth};
use wachter_net::connect::{ConnectOptions, Connector, RateLimits};
use wachter_net::http::HttpLimits;
use wachter_net::probe::{ProbeConfig, ProbeDepth, Prober};
use wachter_scan::output::Collect;
use wachter_scan::{ScanOptions, Source, TargetInputs, run_scan};

async fn scan(scope: &str, check: Arc<dyn Check>, targets: Vec<String>) -> Vec<ServiceRecord> {
    let policy = Arc::new(ScopePolicy::new(&[scope.parse::<IpRange>().unwrap()], &[]));
    let connect = ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        retries: 0,
        limits: RateLimits {
            global: None,
            per_network: None,
        },
    };
    let probe = ProbeConfig {
        depth: ProbeDepth::Http,
        check,
        seed: 5,
        http: HttpLimits {
            max_head: 64 * 1024,
            max_body: 64 * 1024,
            response_timeout: Duration::from_secs(2),
        },
        tls_timeout: Duration::from_secs(2),
        target_timeout: Duration::from_secs(5),
        ..ProbeConfig::default()
    };
    let prober = Arc::new(Prober::new(Arc::new(Connector::new(policy, connect)), probe).unwrap());
    let sources: Vec<Source> = targets.into_iter().map(Source::Argument).collect();
    let inputs = TargetInputs::prepare(&sources).unwrap();
    let options = ScanOptions {
        ports: "18443".parse().unwrap(),
        seed: 5,
        shard: Shard::WHOLE,
        concurrency: 64,
        shuffle_window: 64,
        progress: false,
        resume: None,
    };
    let collected = Arc::new(Mutex::new(Vec::new()));
    let run = run_scan(
        inputs,
        &options,
        prober,
        None,
        Box::new(Collect(collected.clone())),
        Arc::new(AtomicBool::new(false)),
    );
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the scan hung")
        .unwrap();
    collected.lock().unwrap().clone()
}

fn lab_hosts(first: &str) -> Vec<HostSpec> {
    let base: std::net::Ipv4Addr = first.parse().unwrap();
    Behaviour::ALL
        .iter()
        .enumerate()
        .map(|(i, b)| HostSpec {
            ip: IpAddr::from(std::net::Ipv4Addr::from(u32::from(base) + i as u32)),
            port: 18443,
            behaviour: *b,
            hostname: b.vhost().map(String::from),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lab_state_is_classified_exactly() {
    let lab = Lab::start(
        lab_hosts("127.50.0.1"),
        &LabOptions {
            key: KeyKind::Rsa,
            drip_interval: Duration::from_millis(50),
            log_requests: true,
        },
    )
    .await
    .unwrap();
    let mut targets: Vec<String> = lab.manifest().iter().map(truth::target_line).collect();
    // The SNI-only appliance once more by bare address: its default virtual server.
    let sni_host = lab
        .manifest()
        .iter()
        .find(|h| h.behaviour == Behaviour::NsSniVhost)
        .unwrap()
        .clone();
    targets.push(sni_host.ip.to_string());
    let records = scan(
        "127.50.0.0/24",
        Arc::new(NetscalerCheck::builtin()),
        targets,
    )
    .await;
    assert_eq!(records.len(), Behaviour::ALL.len() + 1);

    let mut failures = Vec::new();
    for host in lab.manifest() {
        let record = records
            .iter()
            .find(|r| r.ip == host.ip && r.hostname == host.hostname);
        let diffs = truth::differences(host, record);
        if !diffs.is_empty() {
            failures.push(format!(
                "{} {}: {}",
                host.ip,
                host.behaviour,
                diffs.join("; ")
            ));
        }
    }
    let bare = records
        .iter()
        .find(|r| r.ip == sni_host.ip && r.hostname.is_none())
        .unwrap();
    let diffs = truth::differences(
        &HostSpec {
            hostname: None,
            ..sni_host.clone()
        },
        Some(bare),
    );
    if !diffs.is_empty() {
        failures.push(format!("{} without SNI: {}", sni_host.ip, diffs.join("; ")));
    }
    assert!(
        failures.is_empty(),
        "misclassified:\n{}",
        failures.join("\n")
    );

    // No false positive anywhere: only the vulnerable appliances are vulnerable.
    let vulnerable: Vec<Behaviour> = records
        .iter()
        .filter(|r| {
            r.checks.iter().any(|a| {
                a.cves
                    .iter()
                    .any(|v| v.cve == "CVE-2019-19781" && v.verdict == Verdict::Vulnerable)
            })
        })
        .map(|r| {
            lab.manifest()
                .iter()
                .find(|h| h.ip == r.ip)
                .unwrap()
                .behaviour
        })
        .collect();
    for b in &vulnerable {
        assert!(
            matches!(
                b,
                Behaviour::NsVulnerable
                    | Behaviour::NsBrokenMitigation
                    | Behaviour::NsLegacyTls
                    | Behaviour::NsPlainHttp
                    | Behaviour::NsSniVhost
            ),
            "{b} counted vulnerable"
        );
    }
    assert_eq!(vulnerable.len(), 5);
    // Inconclusive only for the honeypot.
    for r in &records {
        if r.checks.iter().any(|a| {
            a.probe
                .as_ref()
                .is_some_and(|p| p.state == ProbeState::Inconclusive)
        }) {
            assert_eq!(
                lab.manifest()
                    .iter()
                    .find(|h| h.ip == r.ip)
                    .unwrap()
                    .behaviour,
                Behaviour::Honeypot
            );
        }
    }

    // What went on the wire: the raw traversal, never a normalised or forbidden request.
    let heads: Vec<String> = lab
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.head).into_owned())
        .collect();
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\n"))
    );
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("GET /vpn/../vpns/ HTTP/1.1\r\n"))
    );
    for h in &heads {
        let line = h.lines().next().unwrap_or_default();
        assert!(line.starts_with("GET "), "{line}");
        assert!(
            !line.contains("newbm")
                && !line.contains("/portal/")
                && !line.starts_with("GET /vpns/"),
            "{line}"
        );
    }

    // One handshake per appliance on average at most 1.5 (keep-alive carries the plan).
    let handshakes: Vec<u32> = records
        .iter()
        .filter(|r| {
            r.checks
                .iter()
                .any(|a| a.product == wachter_core::assessment::Product::Netscaler)
        })
        .filter_map(|r| r.tls.as_ref().map(|t| t.handshakes))
        .collect();
    let mean = handshakes.iter().sum::<u32>() as f64 / handshakes.len() as f64;
    assert!(
        mean <= 1.5,
        "{mean} handshakes per NetScaler host: {handshakes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_cannot_send_an_exploit_request() {
    let lab = Lab::start(
        vec![HostSpec {
            ip: "127.51.0.1".parse().unwrap(),
            port: 18443,
            behaviour: Behaviour::NsVulnerable,
            hostname: None,
        }],
        &LabOptions {
            log_requests: true,
            ..LabOptions::default()
        },
    )
    .await
    .unwrap();
    let evil = Arc::new(StaticPlan::new(vec![
        RequestSpec::get("root", "/"),
        RequestSpec {
            name: "stage1".into(),
            method: "POST".into(),
            target: b"/vpn/../vpns/portal/scripts/newbm.pl".to_vec(),
            headers: vec![(
                "NSC_USER".into(),
                "../../../netscaler/portal/templates/x".into(),
            )],
        },
        RequestSpec::get("bleed", "/oauth/idp/.well-known/openid-configuration"),
    ]));
    let records = scan("127.51.0.0/24", evil, vec!["127.51.0.1".into()]).await;
    let r = &records[0];
    assert_eq!(r.status, Status::Open);
    assert_eq!(
        r.http.len(),
        1,
        "only the root request went out: {:?}",
        r.http
            .iter()
            .map(|e| (&e.name, e.request.to_display()))
            .collect::<Vec<_>>()
    );
    assert_eq!(r.error.as_ref().unwrap().kind, "request_refused");
    assert!(r.error.as_ref().unwrap().detail.contains("stage1"));
    let heads = lab.requests();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].head.starts_with(b"GET / HTTP/1.1\r\n"));
}
