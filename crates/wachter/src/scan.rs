//! `wachter scan`: resolve the settings, build the pipeline, run it, print the summary.

use std::io::{IsTerminal, Write};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use wachter_core::addr::IpRange;
use wachter_core::check::{Check, StaticPlan};
use wachter_core::order::Shard;
use wachter_core::ports::PortList;
use wachter_core::scope::ScopePolicy;
use wachter_net::connect::{ConnectOptions, Connector, RateLimits};
use wachter_net::dns::{Dns, DnsConfig};
use wachter_net::http::{HttpLimits, RequestSpec};
use wachter_net::probe::{ProbeConfig, ProbeDepth, Prober};
use wachter_scan::inputs::{Source, TargetInputs, read_network_list};
use wachter_scan::output::{Checkpoint, JsonLines, OpenOnly, RecordSink, Tee};
use wachter_scan::{ScanOptions, ScanSummary, run_scan};
use wachter_store::{ScanInfo, Store, StoreSink};

use crate::cli::{Failure, ScanArgs};
use crate::config::{Config, ScanConfig};
use crate::exit;

/// A scan's settings after config, environment and flags are merged and checked.
pub struct Settings {
    pub scope: Vec<IpRange>,
    pub opt_out: Vec<IpRange>,
    pub connect: ConnectOptions,
    pub probe: ProbeConfig,
    pub options: ScanOptions,
    pub dns: DnsConfig,
}

impl Settings {
    pub fn resolve(args: &ScanArgs, config: &ScanConfig) -> Result<Settings, Failure> {
        let ports: PortList = args
            .ports
            .as_deref()
            .unwrap_or(&config.ports)
            .parse()
            .map_err(Failure::usage)?;
        let mut scope = Vec::new();
        let scope_words: Vec<&str> = if args.scope.is_empty() {
            config.scope.iter().map(String::as_str).collect()
        } else {
            args.scope.iter().map(String::as_str).collect()
        };
        for word in scope_words {
            for part in word.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.strip_prefix('@') {
                    Some(file) => {
                        scope.extend(read_network_list(Path::new(file)).map_err(Failure::usage)?)
                    }
                    None => scope.push(
                        part.parse::<IpRange>()
                            .map_err(|e| Failure::usage(anyhow!("--scope: {e}")))?,
                    ),
                }
            }
        }
        if args.scope.is_empty()
            && let Some(file) = &config.scope_file
        {
            scope.extend(read_network_list(file).map_err(Failure::usage)?);
        }
        // The configured opt-out list always applies; --opt-out adds to it, never replaces it.
        let mut opt_out = Vec::new();
        for file in config.opt_out_file.iter().chain(args.opt_out.iter()) {
            opt_out.extend(read_network_list(file).map_err(Failure::usage)?);
        }
        if scope.is_empty() {
            return Err(Failure::usage(anyhow!(
                "no scope: name the networks you may scan with --scope (or [scan] scope in the config); \
                 --scope 0.0.0.0/0,::/0 means the public Internet"
            )));
        }
        let shard: Shard = match &args.shard {
            Some(text) => text.parse().map_err(Failure::usage)?,
            None => Shard::WHOLE,
        };
        if shard.count() > 1 && args.seed.is_none() {
            return Err(Failure::usage(anyhow!(
                "--shard needs --seed: every shard of a scan must use the same seed"
            )));
        }
        let seed = args.seed.unwrap_or_else(random_seed);
        let ms = |flag: Option<u64>, configured: u64| {
            Duration::from_millis(flag.unwrap_or(configured).max(1))
        };
        let connect = ConnectOptions {
            connect_timeout: ms(args.connect_timeout, config.connect_timeout_ms),
            retries: args.retries.unwrap_or(config.retries),
            limits: RateLimits {
                global: NonZeroU32::new(args.rate.unwrap_or(config.rate)),
                per_network: NonZeroU32::new(
                    args.per_network_rate.unwrap_or(config.per_network_rate),
                ),
            },
        };
        let check: Arc<dyn Check> = match args.check.as_str() {
            "none" => {
                let mut requests = vec![RequestSpec::get("root", "/")];
                for (i, path) in args.paths.iter().enumerate() {
                    requests.push(RequestSpec::get(&format!("path{}", i + 1), path));
                }
                Arc::new(StaticPlan::new(requests))
            }
            name => {
                if !args.paths.is_empty() {
                    return Err(Failure::usage(anyhow!(
                        "--path goes with --check none; the {name} check plans its own requests"
                    )));
                }
                wachter_checks::by_name(name).ok_or_else(|| {
                    Failure::usage(anyhow!(
                        "--check: unknown check {name:?}; known: none, {}",
                        wachter_checks::NAMES.join(", ")
                    ))
                })?
            }
        };
        let probe = ProbeConfig {
            depth: if args.discover {
                ProbeDepth::Connect
            } else {
                ProbeDepth::Http
            },
            check,
            seed,
            http: HttpLimits {
                max_head: 64 * 1024,
                max_body: config.max_body,
                response_timeout: ms(args.response_timeout, config.response_timeout_ms),
            },
            tls_timeout: ms(args.tls_timeout, config.tls_timeout_ms),
            target_timeout: ms(args.target_timeout, config.target_timeout_ms),
            user_agent: config.user_agent.clone(),
            ..ProbeConfig::default()
        };
        let dns = match args.resolver {
            Some(addr) => DnsConfig::Server(addr),
            None => match &config.resolver {
                Some(text) => DnsConfig::Server(text.parse().map_err(|_| {
                    Failure::usage(anyhow!("[scan] resolver: {text:?} is not ip:port"))
                })?),
                None => DnsConfig::System,
            },
        };
        let options = ScanOptions {
            ports,
            seed,
            shard,
            concurrency: args.concurrency.unwrap_or(config.concurrency).max(1),
            shuffle_window: 4096,
            progress: !args.no_progress && std::io::stderr().is_terminal(),
            resume: None,
        };
        Ok(Settings {
            scope,
            opt_out,
            connect,
            probe,
            options,
            dns,
        })
    }
}

fn random_seed() -> u64 {
    // Not cryptographic: the seed only spreads the order, and it is printed for reuse.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ ((std::process::id() as u64) << 32)
}

/// Raises the open-file limit and returns how many probes may be in flight.
pub fn fit_concurrency(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    // Keep descriptors for the output, the resolver, the lab in the same process, …
    let room = limit.saturating_sub(256).max(16) as usize;
    if wanted > room {
        tracing::warn!(
            wanted,
            room,
            "concurrency lowered to fit the open-file limit"
        );
    }
    wanted.min(room)
}

/// Reads and checks every target source (nothing is scanned or stored on error).
pub fn prepare_inputs(sources: &[Source]) -> Result<TargetInputs, Failure> {
    TargetInputs::prepare(sources).map_err(Failure::usage)
}

/// Builds the pipeline from settings and runs it.
pub async fn execute(
    settings: Settings,
    inputs: TargetInputs,
    sink: Box<dyn RecordSink>,
    stop: Arc<AtomicBool>,
) -> Result<ScanSummary, Failure> {
    let policy = Arc::new(ScopePolicy::new(&settings.scope, &settings.opt_out));
    let connector = Arc::new(Connector::new(policy, settings.connect.clone()));
    let prober = Arc::new(
        Prober::new(connector, settings.probe.clone())
            .map_err(|e| Failure::failed(anyhow!("cannot set up OpenSSL: {e}")))?,
    );
    let dns = if inputs.streamed_items > 0 {
        Some(
            Dns::new(
                &settings.dns,
                settings.probe.tls_timeout.min(Duration::from_secs(5)),
                256,
            )
            .map_err(Failure::failed)?,
        )
    } else {
        None
    };
    let mut options = settings.options.clone();
    options.concurrency = fit_concurrency(options.concurrency);
    run_scan(inputs, &options, prober, dns, sink, stop)
        .await
        .map_err(|e| match e {
            wachter_scan::engine::ScanError::Order(e) => Failure::usage(e),
            other => Failure::failed(other),
        })
}

/// A scan being recorded in the store.
pub struct Recording {
    store: Store,
    scan_id: i64,
}

impl Recording {
    /// Opens the database and registers the scan; returns the sink that fills it. `resume`
    /// is what `--resume` needs to run the scan again (`None`: not resumable).
    pub fn start(
        db: &str,
        settings: &Settings,
        check: &str,
        resume: Option<String>,
    ) -> Result<(Recording, Box<dyn RecordSink>), Failure> {
        let store = Store::open(db).map_err(Failure::usage)?;
        let scope: Vec<String> = settings.scope.iter().map(ToString::to_string).collect();
        let info = ScanInfo {
            seed: settings.options.seed,
            shard: settings.options.shard.to_string(),
            ports: settings.options.ports.to_string(),
            check: check.to_string(),
            scope: scope.join(","),
            params: serde_json::json!({
                "connect_timeout_ms": settings.connect.connect_timeout.as_millis() as u64,
                "target_timeout_ms": settings.probe.target_timeout.as_millis() as u64,
                "retries": settings.connect.retries,
                "rate": settings.connect.limits.global.map(|r| r.get()),
                "per_network_rate": settings.connect.limits.per_network.map(|r| r.get()),
                "opt_out": settings.opt_out.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "user_agent": settings.probe.user_agent,
            })
            .to_string(),
            resume,
        };
        let scan_id = store.begin_scan(&info).map_err(Failure::failed)?;
        let writer = Store::open(db).map_err(Failure::failed)?;
        Ok((
            Recording { store, scan_id },
            Box::new(StoreSink::new(writer, scan_id)),
        ))
    }

    /// Picks up an interrupted scan: drops the records of targets it had not finished and
    /// returns the checkpoint to continue from.
    pub fn resume(
        db: &str,
        scan_id: i64,
        checkpoint: &Checkpoint,
    ) -> Result<(Recording, Box<dyn RecordSink>), Failure> {
        let mut store = Store::open(db).map_err(Failure::usage)?;
        let removed = store
            .reopen_scan(scan_id, checkpoint)
            .map_err(Failure::failed)?;
        tracing::info!(scan_id, removed, next = checkpoint.next, "resuming");
        let writer = Store::open(db).map_err(Failure::failed)?;
        Ok((
            Recording { store, scan_id },
            Box::new(StoreSink::new(writer, scan_id)),
        ))
    }

    pub fn finish(self, summary: &ScanSummary) -> Result<(i64, String), Failure> {
        let json = serde_json::to_string(summary).unwrap_or_default();
        self.store
            // Stopped early for any reason: not finished, so it can be resumed.
            .finish_scan(
                self.scan_id,
                summary.interrupted || summary.stopped_by.is_some(),
                &json,
            )
            .map_err(Failure::failed)?;
        Ok((self.scan_id, self.store.location().to_string()))
    }
}

/// Sets the returned flag on the first Ctrl-C; exits at once on the second. The handle
/// stops the watching once the scan is over (the demo then lets Ctrl-C stop its dashboard).
pub fn stop_on_interrupt() -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let watching = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
            eprintln!(
                "wachter: stopping; finishing the probes in flight (Ctrl-C again to quit now)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(exit::INTERRUPTED as i32);
            }
        }
    });
    (stop, watching)
}

/// What `--resume` stores: the arguments and the effective `[scan]` configuration.
#[derive(serde::Serialize, serde::Deserialize)]
struct ResumeSpec {
    args: ScanArgs,
    scan: ScanConfig,
    /// The order's shape when the scan started (see `order_fingerprint`).
    #[serde(default)]
    fingerprint: String,
}

pub async fn run(args: ScanArgs, config: &Config) -> Result<u8, Failure> {
    let db = args.db.clone().unwrap_or_else(|| config.store.db.clone());
    let (args, scan_config, resume) = match args.resume {
        None => (args, config.scan.clone(), None),
        Some(scan_id) => {
            if !crate::cases::database_exists(&db) {
                return Err(Failure::usage(anyhow!(
                    "{db} does not exist: nothing to resume"
                )));
            }
            let store = Store::open(&db).map_err(Failure::usage)?;
            let info = store
                .resume_info(scan_id)
                .map_err(Failure::failed)?
                .ok_or_else(|| {
                    Failure::usage(anyhow!("no scan {scan_id} in {}", store.location()))
                })?;
            if info.state == "finished" {
                return Err(Failure::usage(anyhow!(
                    "scan {scan_id} is finished; nothing to resume"
                )));
            }
            let spec: ResumeSpec = info
                .resume
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .ok_or_else(|| Failure::usage(anyhow!("scan {scan_id} cannot be resumed (it read standard input, or was recorded by an older wachter)")))?;
            let mut args = spec.args;
            args.db = Some(db.clone());
            (
                args,
                spec.scan,
                Some((scan_id, info.checkpoint, spec.fingerprint)),
            )
        }
    };
    let mut settings = Settings::resolve(&args, &scan_config)?;
    let sources: Vec<Source> = args.targets.iter().map(|t| Source::from_arg(t)).collect();
    let inputs = prepare_inputs(&sources)?;
    // Everything that can refuse the scan is checked before the output file or the store
    // is touched.
    let policy = ScopePolicy::new(&settings.scope, &settings.opt_out);
    let fingerprint = wachter_scan::engine::order_fingerprint(&inputs, &settings.options, &policy)
        .map_err(Failure::usage)?;
    if let Some((scan_id, _, started_with)) = &resume
        && *started_with != fingerprint
    {
        return Err(Failure::usage(anyhow!(
            "the targets, scope or opt-out list changed since scan {scan_id} started, so its positions no longer name the same targets; start a new scan"
        )));
    }
    let output: Box<dyn RecordSink> = match &args.output {
        Some(path) => {
            // A resumed scan adds to the records it already wrote.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(resume.is_some())
                .truncate(resume.is_none())
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))
                .map_err(Failure::failed)?;
            Box::new(JsonLines::new(file))
        }
        None => Box::new(JsonLines::new(std::io::stdout())),
    };
    let output: Box<dyn RecordSink> = if args.open_only {
        Box::new(OpenOnly(output))
    } else {
        output
    };
    let (recording, sink): (Option<Recording>, Box<dyn RecordSink>) = if args.no_db {
        (None, output)
    } else {
        let (recording, store_sink) = match &resume {
            Some((scan_id, checkpoint, _)) => {
                settings.options.resume = Some(checkpoint.clone());
                Recording::resume(&db, *scan_id, checkpoint)?
            }
            None => {
                // Resumable unless it reads standard input (which cannot be read again).
                let resumable = !args.targets.iter().any(|t| t == "-");
                // The seed is pinned: a resumed scan must walk the same order.
                let pinned = ScanArgs {
                    seed: Some(settings.options.seed),
                    ..args.clone()
                };
                let spec = resumable.then(|| {
                    serde_json::to_string(&ResumeSpec {
                        args: pinned,
                        scan: scan_config.clone(),
                        fingerprint: fingerprint.clone(),
                    })
                    .unwrap_or_default()
                });
                Recording::start(&db, &settings, &args.check, spec)?
            }
        };
        (Some(recording), Box::new(Tee(vec![output, store_sink])))
    };
    let (stop, _watching) = stop_on_interrupt();
    let summary = execute(settings, inputs, sink, stop).await?;
    let stored = recording.map(|r| r.finish(&summary)).transpose()?;
    // Records own stdout unless they went to a file.
    let printed = if args.output.is_some() {
        print_summary(
            &mut std::io::stdout().lock(),
            &summary,
            args.json,
            stored.as_ref(),
        )
    } else {
        print_summary(
            &mut std::io::stderr().lock(),
            &summary,
            args.json,
            stored.as_ref(),
        )
    };
    if let Err(e) = printed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(Failure::failed(e));
    }
    let _ = std::io::stdout().flush();
    if let Some(reason) = &summary.stopped_by {
        return Err(Failure::failed(anyhow!("scan stopped early: {reason}")));
    }
    Ok(if summary.interrupted {
        exit::INTERRUPTED
    } else {
        exit::OK
    })
}

/// The summary, and where the scan was stored.
pub fn print_summary(
    out: &mut dyn Write,
    summary: &ScanSummary,
    json: bool,
    stored: Option<&(i64, String)>,
) -> std::io::Result<()> {
    crate::summary::print(out, summary, json)?;
    if let (Some((scan_id, path)), false) = (stored, json) {
        writeln!(out, "\n  stored as scan #{scan_id} in {path}")?;
    }
    Ok(())
}
