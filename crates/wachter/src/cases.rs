//! `wachter report`, `wachter diff` and `wachter db`: the case over time.

use std::io::Write;

use anyhow::anyhow;
use wachter_store::Store;
use wachter_store::report::{self, Change};

use crate::cli::{DbAction, DbArgs, DiffArgs, Failure, ImportArgs, ReportArgs};
use crate::config::Config;
use crate::exit;

/// Whether a store is there to open: a SQLite file that exists, or any PostgreSQL URL
/// (whether the server has it is known only by connecting).
pub fn database_exists(location: &str) -> bool {
    wachter_store::is_postgres_url(location) || std::path::Path::new(location).exists()
}

pub(crate) fn open(
    db: &Option<String>,
    config: &Config,
    must_exist: bool,
) -> Result<Store, Failure> {
    let location = db.clone().unwrap_or_else(|| config.store.db.clone());
    if must_exist && !database_exists(&location) {
        return Err(Failure::usage(anyhow!(
            "{location} does not exist; scans create it (wachter scan --db {location})"
        )));
    }
    Store::open(&location).map_err(Failure::usage)
}

pub(crate) fn emit(text: String) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::failed(e)),
        _ => Ok(exit::OK),
    }
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> Result<u8, Failure> {
    emit(serde_json::to_string_pretty(value).map_err(Failure::failed)? + "\n")
}

pub fn report(args: ReportArgs, config: &Config) -> Result<u8, Failure> {
    if let Some(by) = args.by {
        return crate::constituency::report_by_owner(&args, by, config);
    }
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
            "  {:>5}  {:<20} {:>10} {:>10} {:>10} {:>8} {:>12} {:>14} {:>6}\n",
            "scan",
            "started",
            "vulnerable",
            "mitigated",
            "patched",
            "unknown",
            "unreachable",
            "not_rescanned",
            "open"
        ));
        let peak = points.iter().map(|p| p.open()).max().unwrap_or(0).max(1);
        for p in points {
            let bar = "█".repeat(((p.open() * 30).div_ceil(peak)) as usize);
            let started: String = p.started_at.chars().take(19).collect();
            text.push_str(&format!(
                "  {:>5}  {:<20} {:>10} {:>10} {:>10} {:>8} {:>12} {:>14} {:>6} {bar}\n",
                p.scan,
                started,
                p.vulnerable,
                p.mitigated,
                p.patched,
                p.unknown,
                p.unreachable,
                p.not_rescanned,
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
            return Err(Failure::usage(anyhow!(
                "no scan {id} in {}",
                store.location()
            )));
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
            emit(format!("{}: schema version {version}\n", store.location()))
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
                store.location(),
                target.display()
            ))
        }
        DbAction::Vacuum => {
            let store = open(&args.db, config, true)?;
            store.vacuum().map_err(Failure::failed)?;
            emit(format!("vacuumed {}\n", store.location()))
        }
    }
}

pub fn import(args: ImportArgs, config: &Config) -> Result<u8, Failure> {
    use std::io::BufRead;
    use wachter_core::import::{self, ImportFormat};
    use wachter_scan::output::RecordSink;

    let open_file = || -> Result<std::io::BufReader<std::fs::File>, Failure> {
        let file = std::fs::File::open(&args.file)
            .map_err(|e| Failure::usage(anyhow!("cannot read {}: {e}", args.file.display())))?;
        Ok(std::io::BufReader::with_capacity(256 * 1024, file))
    };
    let format = match &args.format {
        Some(name) => name
            .parse::<ImportFormat>()
            .map_err(|e| Failure::usage(anyhow!(e)))?,
        None => {
            let mut first = String::new();
            let _ = std::io::Read::take(open_file()?, 64 * 1024).read_line(&mut first);
            ImportFormat::sniff(&first).ok_or_else(|| {
                Failure::usage(anyhow!(
                    "{}: format not recognised; say --format wachter|nuclei|shadowserver",
                    args.file.display()
                ))
            })?
        }
    };
    // First pass: every row checked before anything is written.
    let mut errors = Vec::new();
    let mut good = 0u64;
    import::read(format, open_file()?, |_, row| {
        match row {
            Ok(_) => good += 1,
            Err(e) => errors.push(e),
        }
        true
    })
    .map_err(|e| Failure::usage(anyhow!("cannot read {}: {e}", args.file.display())))?;
    let report_errors = |text: &mut String| {
        for e in errors.iter().take(20) {
            text.push_str(&format!("  {}:{e}\n", args.file.display()));
        }
        if errors.len() > 20 {
            text.push_str(&format!("  … {} more\n", errors.len() - 20));
        }
    };
    if !errors.is_empty() && !args.keep_going {
        let mut text = format!(
            "{} broken rows; nothing imported (--keep-going imports the {good} good ones)\n",
            errors.len()
        );
        report_errors(&mut text);
        return Err(Failure::usage(anyhow!(text.trim_end().to_string())));
    }
    let db = args.db.clone().unwrap_or_else(|| config.store.db.clone());
    let store = Store::open(&db).map_err(Failure::usage)?;
    let info = wachter_store::ScanInfo {
        check: format!("import:{}", format.name()),
        params: serde_json::json!({ "imported_from": args.file.display().to_string(), "format": format.name() }).to_string(),
        ..wachter_store::ScanInfo::default()
    };
    let scan_id = store.begin_scan(&info).map_err(Failure::failed)?;
    let mut sink =
        wachter_store::StoreSink::new(Store::open(&db).map_err(Failure::failed)?, scan_id);
    let mut written = 0u64;
    let mut write_error = None;
    import::read(format, open_file()?, |line, row| {
        if let Ok(record) = row {
            if let Err(e) = sink.write(line, &record) {
                write_error = Some(e);
                return false;
            }
            written += 1;
        }
        true
    })
    .map_err(Failure::failed)?;
    if let Some(e) = write_error {
        return Err(Failure::failed(e));
    }
    sink.finish().map_err(Failure::failed)?;
    let summary = serde_json::json!({
        "scan": scan_id, "database": store.location(), "format": format.name(), "imported": written,
        "broken": errors.iter().map(|e| serde_json::json!({"line": e.line, "why": e.why})).collect::<Vec<_>>(),
    });
    store
        .finish_scan(scan_id, false, &summary.to_string())
        .map_err(Failure::failed)?;
    if args.json {
        return json(&summary);
    }
    let mut text = format!(
        "imported {written} records from {} ({}) as scan #{scan_id} in {}\n",
        args.file.display(),
        format.name(),
        store.location()
    );
    if !errors.is_empty() {
        text.push_str(&format!("skipped {} broken rows:\n", errors.len()));
        report_errors(&mut text);
    }
    emit(text)
}
