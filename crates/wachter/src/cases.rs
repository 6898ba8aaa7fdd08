//! `wachter report`, `wachter diff` and `wachter db`: the case over time.

use std::io::Write;
use std::path::PathBuf;

use anyhow::anyhow;
use wachter_store::Store;
use wachter_store::report::{self, Change};

use crate::cli::{DbAction, DbArgs, DiffArgs, Failure, ReportArgs};
use crate::config::Config;
use crate::exit;

fn open(db: &Option<PathBuf>, config: &Config, must_exist: bool) -> Result<Store, Failure> {
    let path = db.clone().unwrap_or_else(|| config.store.db.clone());
    if must_exist && !path.exists() {
        return Err(Failure::usage(anyhow!(
            "{} does not exist; scans create it (wachter scan --db {})",
            path.display(),
            path.display()
        )));
    }
    Store::open(&path).map_err(Failure::usage)
}

fn emit(text: String) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::failed(e)),
        _ => Ok(exit::OK),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<u8, Failure> {
    emit(serde_json::to_string_pretty(value).map_err(Failure::failed)? + "\n")
}

pub fn report(args: ReportArgs, config: &Config) -> Result<u8, Failure> {
    let store = open(&args.db, config, true)?;
    let mut trend = report::trend(&store).map_err(Failure::failed)?;
    if let Some(cve) = &args.cve {
        trend.retain(|c, _| c == cve);
    }
    if args.json {
        return json(&trend);
    }
    let mut text = String::new();
    if trend.is_empty() {
        text.push_str("no findings recorded yet\n");
    }
    for (cve, points) in &trend {
        text.push_str(&format!(
            "\n{cve}: open findings per scan (vulnerable + mitigated)\n\n"
        ));
        text.push_str(&format!(
            "  {:>5}  {:<20} {:>10} {:>10} {:>10} {:>8} {:>12} {:>6}\n",
            "scan",
            "started",
            "vulnerable",
            "mitigated",
            "patched",
            "unknown",
            "unreachable",
            "open"
        ));
        let peak = points.iter().map(|p| p.open()).max().unwrap_or(0).max(1);
        for p in points {
            let bar = "█".repeat(((p.open() * 30).div_ceil(peak)) as usize);
            let started: String = p.started_at.chars().take(19).collect();
            text.push_str(&format!(
                "  {:>5}  {:<20} {:>10} {:>10} {:>10} {:>8} {:>12} {:>6} {bar}\n",
                p.scan,
                started,
                p.vulnerable,
                p.mitigated,
                p.patched,
                p.unknown,
                p.unreachable,
                p.open()
            ));
        }
    }
    emit(text)
}

pub fn diff(args: DiffArgs, config: &Config) -> Result<u8, Failure> {
    let store = open(&args.db, config, true)?;
    let scans = store.scans().map_err(Failure::failed)?;
    for id in [args.from, args.to] {
        if !scans.iter().any(|s| s.id == id) {
            return Err(Failure::usage(anyhow!("no scan {id} in {}", store.path())));
        }
    }
    let d =
        report::diff(&store, args.from, args.to, args.cve.as_deref()).map_err(Failure::failed)?;
    if args.json {
        return json(&d);
    }
    let kinds = [
        Change::New,
        Change::Fixed,
        Change::StillOpen,
        Change::Unreachable,
        Change::NotRescanned,
    ];
    let mut text = format!(
        "scan {} → scan {}\n\n  {:<16}",
        d.from_scan, d.to_scan, "CVE"
    );
    for k in kinds {
        text.push_str(&format!(" {:>14}", k.as_str()));
    }
    text.push('\n');
    for (cve, counts) in &d.counts {
        text.push_str(&format!("  {cve:<16}"));
        for k in kinds {
            text.push_str(&format!(" {:>14}", counts.get(&k).copied().unwrap_or(0)));
        }
        text.push('\n');
    }
    for k in kinds {
        let entries: Vec<_> = d.entries.iter().filter(|e| e.change == k).collect();
        if entries.is_empty() || k == Change::StillOpen {
            continue;
        }
        text.push_str(&format!("\n  {}:\n", k.as_str()));
        for e in entries.iter().take(50) {
            let name = if e.hostname.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.hostname)
            };
            text.push_str(&format!(
                "    {}:{}{name} {} {} → {}\n",
                e.ip,
                e.port,
                e.cve,
                e.before.as_deref().unwrap_or("-"),
                e.after.as_deref().unwrap_or("-")
            ));
        }
        if entries.len() > 50 {
            text.push_str(&format!(
                "    … {} more (--json lists all)\n",
                entries.len() - 50
            ));
        }
    }
    emit(text)
}

pub fn db(args: DbArgs, config: &Config) -> Result<u8, Failure> {
    match args.action {
        DbAction::Migrate => {
            let store = open(&args.db, config, false)?;
            let version = store.schema_version().map_err(Failure::failed)?;
            emit(format!("{}: schema version {version}\n", store.path()))
        }
        DbAction::Scans { json: as_json } => {
            let store = open(&args.db, config, true)?;
            let scans = store.scans().map_err(Failure::failed)?;
            if as_json {
                return json(&scans);
            }
            let mut text = format!(
                "  {:>5}  {:<20} {:<12} {:>9}  {:<6} {:<8} seed\n",
                "scan", "started", "state", "services", "shard", "ports"
            );
            for s in scans {
                let started: String = s.started_at.chars().take(19).collect();
                text.push_str(&format!(
                    "  {:>5}  {:<20} {:<12} {:>9}  {:<6} {:<8} {}\n",
                    s.id, started, s.state, s.services, s.shard, s.ports, s.seed
                ));
            }
            emit(text)
        }
        DbAction::Backup { target } => {
            let store = open(&args.db, config, true)?;
            if target.exists() {
                return Err(Failure::usage(anyhow!(
                    "{} exists; choose a new file",
                    target.display()
                )));
            }
            store.backup(&target).map_err(Failure::failed)?;
            emit(format!(
                "backed up {} to {}\n",
                store.path(),
                target.display()
            ))
        }
        DbAction::Vacuum => {
            let store = open(&args.db, config, true)?;
            store.vacuum().map_err(Failure::failed)?;
            emit(format!("vacuumed {}\n", store.path()))
        }
    }
}
