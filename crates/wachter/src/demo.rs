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
    let (stop, watching) = stop_on_interrupt();
    let summary = execute(settings, inputs, sink, stop).await?;
    // From here until the dashboard serves, Ctrl-C quits (the scan's watcher would only
    // set a flag nobody reads any more).
    watching.abort();
    let quitting = tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(exit::INTERRUPTED.into());
        }
    });
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
    if args.no_serve {
        return Ok(exit::OK);
    }
    drop(lab);
    serve_dashboard(&args, full_config, quitting).await?;
    Ok(exit::OK)
}

/// The end of the demo: the dashboard over the demo's store, on a free loopback port, with
/// an admin `demo` whose password is new every run (see [`demo_login`]).
async fn serve_dashboard(
    args: &DemoArgs,
    config: &Config,
    quitting: tokio::task::JoinHandle<()>,
) -> Result<(), Failure> {
    let store = wachter_store::Store::open(&args.db).map_err(Failure::failed)?;
    let password = demo_login(&store, is_demos_own_store(&args.db))?;
    drop(store);
    let defaults = &config.serve;
    let server = wachter_web::Server::bind(wachter_web::ServeOptions {
        store: args.db.clone(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        pool_size: defaults.pool_size.clamp(1, 256),
        session_hours: defaults
            .session_hours
            .clamp(1, wachter_web::auth::MAX_SESSION_HOURS),
    })
    .await
    .context("starting the dashboard")
    .map_err(Failure::failed)?;
    let addr = server
        .local_addr()
        .context("the dashboard's address")
        .map_err(Failure::failed)?;
    quitting.abort();
    let login = match &password {
        Some(password) => format!("user {DEMO_USER}, password {password}"),
        None => format!(
            "log in as a user of this store: its user {DEMO_USER} was not made by this demo, \
             so its password was left alone"
        ),
    };
    let line = format!("Dashboard: http://{addr}/  ({login})  — Ctrl-C to stop\n");
    if args.json {
        // Standard output is the JSON documents'.
        eprint!("\n{line}");
    } else {
        crate::serve::print_now(&format!("\n{line}"))?;
    }
    crate::serve::run_until_stopped(server).await
}

/// The dashboard user the demo makes.
const DEMO_USER: &str = "demo";

/// The demo's own database file, the default of `--db`.
pub(crate) const DEMO_DB: &str = "wachter-demo.db";

/// Whether `db` is the demo's own file ([`DEMO_DB`] in this folder), as opposed to a store
/// someone pointed the demo at.
fn is_demos_own_store(db: &str) -> bool {
    if wachter_store::is_postgres_url(db) {
        return false;
    }
    let (given, own) = (std::path::Path::new(db), std::path::Path::new(DEMO_DB));
    match (std::fs::canonicalize(given), std::fs::canonicalize(own)) {
        (Ok(given), Ok(own)) => given == own,
        _ => given == own,
    }
}

/// The login the demo prints: a new admin `demo` with a fresh random password. A `demo`
/// that already exists is only given a new password (and made an enabled admin) in the
/// demo's own store, where an earlier demo made it; in any other store it may be a real
/// person's account, so it is left alone and `None` says there is no password to print.
fn demo_login(
    store: &wachter_store::Store,
    demos_own_store: bool,
) -> Result<Option<String>, Failure> {
    let exists = store
        .user_credentials(DEMO_USER)
        .map_err(Failure::failed)?
        .is_some();
    if exists && !demos_own_store {
        return Ok(None);
    }
    let (password, _) = wachter_web::new_token("")
        .context("making the demo password")
        .map_err(Failure::failed)?;
    let hash = wachter_web::hash_password(&password)
        .context("hashing the demo password")
        .map_err(Failure::failed)?;
    let role = wachter_web::Role::Admin.as_str();
    if exists {
        store
            .set_password(DEMO_USER, &hash)
            .map_err(Failure::failed)?;
        store.set_role(DEMO_USER, role).map_err(Failure::failed)?;
        store
            .set_disabled(DEMO_USER, false)
            .map_err(Failure::failed)?;
        return Ok(Some(password));
    }
    match store.add_user(DEMO_USER, &hash, role) {
        Ok(_) => Ok(Some(password)),
        // Made by someone else since the look-up: theirs, left alone.
        Err(wachter_store::StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(Failure::failed(e)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh SQLite store for one test.
    fn store(name: &str) -> (wachter_store::Store, String) {
        let path = std::env::temp_dir()
            .join(format!(
                "wachter-demo-unit-{}-{name}.db",
                std::process::id()
            ))
            .display()
            .to_string();
        remove(&path);
        (wachter_store::Store::open(&path).unwrap(), path)
    }

    fn remove(path: &str) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }

    /// [`demo_login`], its failure shown (a `Failure` has no `Debug`).
    fn login(store: &wachter_store::Store, demos_own_store: bool) -> Option<String> {
        demo_login(store, demos_own_store).unwrap_or_else(|f| panic!("{:#}", f.error))
    }

    fn demo_user(store: &wachter_store::Store) -> wachter_store::UserCredentials {
        store.user_credentials(DEMO_USER).unwrap().unwrap()
    }

    #[test]
    fn the_demo_makes_its_admin_in_a_store_without_one() {
        let (store, path) = store("new");
        let password = login(&store, false).expect("a new demo login");
        let made = demo_user(&store);
        assert_eq!(made.user.role, "admin");
        assert!(wachter_web::auth::verify_password(
            &password,
            &made.password_hash
        ));
        drop(store);
        remove(&path);
    }

    #[test]
    fn a_demo_user_in_someone_elses_store_is_left_alone() {
        let (store, path) = store("foreign");
        let hash = wachter_web::hash_password("a real person's password").unwrap();
        store.add_user("Demo", &hash, "viewer").unwrap();
        assert_eq!(login(&store, false), None);
        let kept = demo_user(&store);
        assert_eq!(kept.password_hash, hash, "the password was not touched");
        assert_eq!(kept.user.role, "viewer", "nor the role");
        drop(store);
        remove(&path);
    }

    #[test]
    fn the_demos_own_store_gets_a_new_password_every_run() {
        let (store, path) = store("own");
        let first = login(&store, true).unwrap();
        // Someone demoted it (the store keeps one admin, so another one exists).
        let hash = wachter_web::hash_password("another admin's password").unwrap();
        store.add_user("another admin", &hash, "admin").unwrap();
        store.set_role(DEMO_USER, "viewer").unwrap();
        store.set_disabled(DEMO_USER, true).unwrap();
        let second = login(&store, true).unwrap();
        assert_ne!(first, second);
        let demo = demo_user(&store);
        assert_eq!(demo.user.role, "admin");
        assert!(!demo.user.disabled, "the printed login works");
        assert!(wachter_web::auth::verify_password(
            &second,
            &demo.password_hash
        ));
        assert!(!wachter_web::auth::verify_password(
            &first,
            &demo.password_hash
        ));
        drop(store);
        remove(&path);
    }

    #[test]
    fn only_the_default_file_is_the_demos_own() {
        use clap::Parser;
        let parsed = crate::cli::Cli::try_parse_from(["wachter", "demo"]).unwrap();
        let crate::cli::Command::Demo(args) = parsed.command else {
            panic!("not the demo: {:?}", parsed.command);
        };
        assert_eq!(args.db, DEMO_DB, "the --db default");
        assert!(is_demos_own_store(DEMO_DB));
        for other in [
            "/srv/cert/case.db",
            "postgres://wachter@127.0.0.1/wachter-demo.db",
            "case/wachter-demo.db",
        ] {
            assert!(!is_demos_own_store(other), "{other}");
        }
    }
}
