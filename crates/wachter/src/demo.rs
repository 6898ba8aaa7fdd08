//! `wachter lab` and `wachter demo`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use wachter_core::addr::{IpRange, RangeSet};
use wachter_core::order::Shard;
use wachter_core::ports::PortList;
use wachter_core::record::ServiceRecord;
use wachter_lab::{Behaviour, HostSpec, KeyKind, Lab, LabOptions, LabPlan, Mix, truth};
use wachter_net::connect::{ConnectOptions, RateLimits};
use wachter_net::dns::DnsConfig;
use wachter_net::http::HttpLimits;
use wachter_net::probe::{ProbeConfig, ProbeDepth};
use wachter_scan::ScanOptions;
use wachter_scan::inputs::Source;
use wachter_scan::output::{Collect, Tee};

use wachter_constituency::org::{Contact, ContactRole, ContactSource, Organisation};

use crate::cli::{
    AttributeArgs, CampaignAction, CampaignArgs, CampaignNewArgs, DemoArgs, Failure, LabArgs,
    VerifyArgs,
};
use crate::config::Config;
use crate::exit;
use crate::scan::{Recording, Settings, execute, prepare_inputs, stop_on_interrupt};

pub async fn run_lab(args: LabArgs) -> Result<u8, Failure> {
    let hosts: IpRange = args
        .hosts
        .parse()
        .map_err(|e| Failure::usage(anyhow!("--hosts: {e}")))?;
    let mix = match &args.mix {
        Some(text) => text.parse::<Mix>().map_err(Failure::usage)?,
        None => Mix::all(),
    };
    if !(0.0..=1.0).contains(&args.density) {
        return Err(Failure::usage(anyhow!("--density must be between 0 and 1")));
    }
    let key = match args.key.as_str() {
        "rsa" => KeyKind::Rsa,
        "ecdsa" => KeyKind::Ecdsa,
        other => {
            return Err(Failure::usage(anyhow!(
                "--key: {other:?} is neither rsa nor ecdsa"
            )));
        }
    };
    let plan = LabPlan {
        hosts: RangeSet::from_ranges([hosts]),
        port: args.port,
        mix,
        density: args.density,
        seed: args.seed,
    };
    let specs = wachter_lab::plan(&plan).map_err(Failure::usage)?;
    // One descriptor per listener plus the connections it serves.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let options = LabOptions {
        key,
        drip_interval: Duration::from_millis(args.drip_ms),
        log_requests: false,
    };
    let lab = Lab::start(specs, &options).await.map_err(Failure::failed)?;
    if let Some(path) = &args.manifest {
        std::fs::write(path, wachter_lab::manifest_jsonl(lab.manifest()))
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::failed)?;
    }
    let serving = lab
        .manifest()
        .iter()
        .filter(|h| h.behaviour != Behaviour::Closed)
        .count();
    eprintln!(
        "wachter lab: {serving} hosts listening in {} on port {} (Ctrl-C to stop)",
        args.hosts, args.port
    );
    match args.duration {
        Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    Ok(exit::OK)
}

/// Every behaviour in turn over the block, so a small demo shows all of them.
fn demo_hosts(block: &IpRange, port: u16) -> Vec<HostSpec> {
    let mut hosts = Vec::new();
    let mut offset = 0u128;
    while let Some(ip) = block.nth(offset) {
        let behaviour = Behaviour::ALL[(offset % Behaviour::ALL.len() as u128) as usize];
        hosts.push(HostSpec {
            ip,
            port,
            behaviour,
            hostname: behaviour.vhost().map(String::from),
        });
        offset += 1;
    }
    hosts
}

pub async fn run_demo(args: DemoArgs, full_config: &Config) -> Result<u8, Failure> {
    let config = &full_config.scan;
    let block: IpRange = args
        .hosts
        .parse()
        .map_err(|e| Failure::usage(anyhow!("--hosts: {e}")))?;
    if block.len() > 4096 {
        return Err(Failure::usage(anyhow!(
            "--hosts: the demo takes at most 4096 addresses"
        )));
    }
    let specs = demo_hosts(&block, args.port);
    let options = LabOptions {
        key: KeyKind::Ecdsa,
        drip_interval: Duration::from_millis(200),
        log_requests: false,
    };
    eprintln!(
        "wachter demo: starting a lab of {} simulated hosts in {} (port {}) …",
        specs.len(),
        args.hosts,
        args.port
    );
    let lab = Lab::start(specs, &options).await.map_err(Failure::failed)?;

    let settings = Settings {
        scope: vec![block],
        opt_out: Vec::new(),
        connect: ConnectOptions {
            connect_timeout: Duration::from_secs(1),
            retries: 0,
            limits: RateLimits {
                global: None,
                per_network: None,
            },
        },
        probe: ProbeConfig {
            depth: ProbeDepth::Http,
            check: Arc::new(wachter_checks::netscaler::NetscalerCheck::builtin()),
            seed: 1,
            http: HttpLimits {
                max_head: 64 * 1024,
                max_body: config.max_body,
                response_timeout: Duration::from_secs(2),
            },
            tls_timeout: Duration::from_secs(2),
            target_timeout: Duration::from_secs(5),
            user_agent: config.user_agent.clone(),
            ..ProbeConfig::default()
        },
        options: ScanOptions {
            ports: PortList::single(args.port),
            seed: 1,
            shard: Shard::WHOLE,
            concurrency: 256,
            shuffle_window: 4096,
            progress: false,
            resume: None,
        },
        dns: DnsConfig::System,
    };
    eprintln!(
        "wachter demo: scanning with the NetScaler check (scope {}, deadline 5 s per host) …",
        args.hosts
    );
    let sources: Vec<Source> = lab
        .manifest()
        .iter()
        .map(|h| Source::Argument(truth::target_line(h)))
        .collect();
    let inputs = prepare_inputs(&sources)?;
    let collected = Arc::new(Mutex::new(Vec::new()));
    let (recording, store_sink) = Recording::start(&args.db, &settings, "netscaler", None)?;
    let sink = Box::new(Tee(vec![Box::new(Collect(collected.clone())), store_sink]));
    let summary = execute(settings, inputs, sink, stop_on_interrupt()).await?;
    let stored = recording.finish(&summary)?;
    let records: Vec<ServiceRecord> = collected.lock().map(|r| r.clone()).unwrap_or_default();

    let mut out = std::io::stdout().lock();
    let mismatches =
        compare(&mut out, lab.manifest(), &records, args.json).map_err(Failure::failed)?;
    crate::scan::print_summary(&mut out, &summary, args.json, Some(&stored))
        .map_err(Failure::failed)?;
    if mismatches > 0 {
        return Err(Failure::failed(anyhow!(
            "{mismatches} hosts differ from the lab's ground truth"
        )));
    }
    if !args.json {
        writeln!(out, "\nEvery host matches the lab's ground truth.").map_err(Failure::failed)?;
    }
    drop(out);
    notify_preview(&args, &block, full_config).await?;
    Ok(exit::OK)
}

/// The rest of the pipeline on the demo's findings: a demo constituency owns the lab's two
/// halves, attribution decides who owns each host, and the CVE-2019-19781 campaign is
/// rendered for review (a dry run; nothing is queued or sent).
async fn notify_preview(args: &DemoArgs, block: &IpRange, config: &Config) -> Result<(), Failure> {
    let cidrs = block.to_cidrs();
    let halves: Vec<ipnet::IpNet> = match cidrs.as_slice() {
        [single] => single
            .subnets(
                single
                    .prefix_len()
                    .saturating_add(1)
                    .min(single.max_prefix_len()),
            )
            .map(|s| s.collect())
            .unwrap_or_else(|_| vec![*single]),
        many => many.to_vec(),
    };
    let (first, second) = halves.split_at(halves.len().div_ceil(2));
    let organisation =
        |name: &str, sector: &str, networks: &[ipnet::IpNet], email: &str, language: &str| {
            Organisation {
                name: name.into(),
                sector: Some(sector.into()),
                networks: networks.to_vec(),
                contacts: vec![Contact {
                    email: email.into(),
                    role: ContactRole::Security,
                    language: Some(language.into()),
                    name: None,
                    source: ContactSource::Manual,
                }],
                ..Organisation::default()
            }
        };
    let organisations = vec![
        organisation(
            "Ziekenhuis Demo",
            "healthcare",
            first,
            "security@ziekenhuis-demo.test",
            "nl",
        ),
        organisation(
            "Gemeente Demo",
            "government",
            second,
            "csirt@gemeente-demo.test",
            "en",
        ),
    ];
    let store = wachter_store::Store::open(&args.db).map_err(Failure::failed)?;
    store
        .upsert_organisations(&organisations)
        .map_err(Failure::failed)?;
    drop(store);
    let attribution = AttributeArgs {
        db: Some(args.db.clone()),
        mmdb: Vec::new(),
        reverse_dns: false,
        resolver: None,
        security_txt: false,
        scope: Vec::new(),
        json: false,
    };
    crate::constituency::attribute_services(&attribution, config).await?;
    let _ = std::fs::remove_dir_all(&args.mail_dir);
    if !args.json {
        println!(
            "\nTelling owners (demo constituency: {} owns {}, {} owns {}):",
            organisations[0].name,
            list(first),
            organisations[1].name,
            list(second)
        );
    }
    crate::notify::campaign(
        CampaignArgs {
            db: Some(args.db.clone()),
            action: CampaignAction::New(CampaignNewArgs {
                cve: "CVE-2019-19781".into(),
                name: Some("demo".into()),
                language: None,
                tlp: None,
                repeat_after: None,
                templates: None,
                dry_run: Some(args.mail_dir.clone()),
                json: args.json,
            }),
        },
        config,
    )?;
    if !args.json {
        println!(
            "Read them in {}/. With your CERT's sender and relay in wachter.toml ([notify] from, \
             [notify.smtp]), `wachter campaign new --cve CVE-2019-19781 --db {}` queues them; \
             `wachter export --format intelmq --db {}` hands the findings to IntelMQ.",
            args.mail_dir.display(),
            args.db,
            args.db
        );
    }
    Ok(())
}

fn list(networks: &[ipnet::IpNet]) -> String {
    networks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints found versus expected per host; returns the number of mismatches.
fn compare(
    out: &mut dyn Write,
    manifest: &[HostSpec],
    records: &[ServiceRecord],
    json: bool,
) -> std::io::Result<usize> {
    let rows: Vec<(&HostSpec, Option<&ServiceRecord>, Vec<String>)> = manifest
        .iter()
        .map(|host| {
            let record = records
                .iter()
                .find(|r| r.ip == host.ip && r.port == host.port);
            (host, record, truth::differences(host, record))
        })
        .collect();
    let mismatches = rows.iter().filter(|(_, _, d)| !d.is_empty()).count();
    if json {
        let value: Vec<_> = rows
            .iter()
            .map(|(h, r, diffs)| {
                serde_json::json!({
                    "ip": h.ip, "port": h.port, "hostname": h.hostname, "behaviour": h.behaviour,
                    "found": r.map(|r| serde_json::json!({"status": r.status, "protocol": r.protocol, "checks": r.checks})),
                    "match": diffs.is_empty(),
                    "differences": diffs,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &value).map_err(std::io::Error::other)?;
        writeln!(out)?;
        return Ok(mismatches);
    }
    writeln!(
        out,
        "\n  {:<13} {:<21} {:<15} {:<15} {:<14} {:<12} finding",
        "host", "lab behaviour", "found", "product", "CVE-2019-19781", "build"
    )?;
    for (host, record, diffs) in rows {
        let found = record.map(|r| match r.protocol {
            Some(p) => format!("{}/{}", r.status, p.as_str()),
            None => r.status.to_string(),
        });
        let assessment = record.and_then(|r| r.checks.first());
        let product = assessment
            .map(|a| crate::summary::serde_plain(&a.product))
            .unwrap_or_default();
        let verdict = assessment
            .and_then(|a| a.cves.iter().find(|v| v.cve == "CVE-2019-19781"))
            .map(|v| v.verdict.as_str().to_string())
            .unwrap_or_default();
        let build = assessment
            .and_then(|a| a.build.as_ref())
            .map(|b| b.version.clone().unwrap_or_else(|| "range".into()))
            .unwrap_or_default();
        let finding = match (diffs.is_empty(), record) {
            (false, _) => format!("✗ {}", diffs.join("; ")),
            (true, Some(r)) => evidence(r),
            (true, None) => String::new(),
        };
        writeln!(
            out,
            "  {:<13} {:<21} {:<15} {:<15} {:<14} {:<12} {finding}",
            host.ip.to_string(),
            host.behaviour.name(),
            found.unwrap_or_default(),
            product,
            verdict,
            build
        )?;
    }
    Ok(mismatches)
}

/// A one-line account of the evidence, escaped for the terminal.
fn evidence(r: &ServiceRecord) -> String {
    let clip = |s: String| {
        if s.chars().count() > 60 {
            format!("{}…", s.chars().take(60).collect::<String>())
        } else {
            s
        }
    };
    if let Some(a) = r.checks.first() {
        let mut parts = Vec::new();
        if let Some(p) = &a.probe {
            parts.push(format!("{}: {}", p.state.as_str(), p.reason));
        }
        if a.flags.honeypot_suspect {
            parts.push("honeypot".into());
        }
        if a.flags.catch_all {
            parts.push("catch-all".into());
        }
        if !parts.is_empty() {
            return clip(parts.join("; "));
        }
    }
    if let Some(ex) = r.http.first() {
        let status = ex
            .status_line
            .as_ref()
            .map(|b| b.to_display())
            .unwrap_or_else(|| format!("{:?}", ex.outcome).to_lowercase());
        return clip(status);
    }
    if let Some(banner) = &r.banner {
        return clip(banner.to_display());
    }
    if let Some(tls) = r.tls.as_ref().and_then(|t| t.failure.clone()) {
        return clip(format!("TLS: {tls}"));
    }
    r.error
        .as_ref()
        .map(|e| clip(format!("{}: {}", e.kind, e.detail)))
        .unwrap_or_default()
}

/// `wachter verify`: how exactly a scan of a lab matched the lab's ground truth.
pub fn run_verify(args: VerifyArgs) -> Result<u8, Failure> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(Failure::usage)
    };
    let mut hosts = Vec::new();
    for (i, line) in read(&args.manifest)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let host: HostSpec = serde_json::from_str(line)
            .map_err(|e| Failure::usage(anyhow!("{}:{}: {e}", args.manifest.display(), i + 1)))?;
        hosts.push(host);
    }
    let mut records: std::collections::HashMap<(std::net::IpAddr, u16), ServiceRecord> =
        std::collections::HashMap::new();
    for (i, line) in read(&args.records)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: ServiceRecord = serde_json::from_str(line)
            .map_err(|e| Failure::usage(anyhow!("{}:{}: {e}", args.records.display(), i + 1)))?;
        records.insert((record.ip, record.port), record);
    }
    let mut mismatches = Vec::new();
    for host in &hosts {
        let diffs = truth::differences(host, records.get(&(host.ip, host.port)));
        if !diffs.is_empty() {
            mismatches.push(serde_json::json!({"ip": host.ip, "port": host.port, "behaviour": host.behaviour, "differences": diffs}));
        }
    }
    let mut out = std::io::stdout().lock();
    let result = if args.json {
        let value = serde_json::json!({"hosts": hosts.len(), "records": records.len(), "exact": hosts.len() - mismatches.len(), "mismatches": mismatches});
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        )
    } else {
        let mut text = format!(
            "{} hosts, {} classified exactly, {} mismatches\n",
            hosts.len(),
            hosts.len() - mismatches.len(),
            mismatches.len()
        );
        for m in &mismatches {
            text.push_str(&format!("  {m}\n"));
        }
        write!(out, "{text}")
    };
    result.map_err(Failure::failed)?;
    Ok(if mismatches.is_empty() { exit::OK } else { 1 })
}
