//! `wachter triage`: the verdict on an appliance's evidence.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context, anyhow};
use serde::Deserialize as _;
use wachter_store::view::{FindingFilter, HostRow, MAX_PAGE, Page};
use wachter_triage::engine::{Report, triage};
use wachter_triage::input::{EvidenceKind, Limits};
use wachter_triage::rules::{self, RulePack, Severity};
use wachter_triage::verdict::Verdict;

use crate::cases::{emit, json};
use crate::cli::{Failure, TriageArgs};
use crate::config::Config;

/// Exit codes of `wachter triage`, by verdict.
pub fn exit_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::NoSignOfCompromise => 0,
        Verdict::Compromised => 1,
        Verdict::ExploitationAttempted => 4,
        Verdict::NotEnoughData => 5,
    }
}

pub fn run(args: TriageArgs, config: &Config) -> Result<u8, Failure> {
    if let Some(file) = &args.import {
        return import(file, &args, config);
    }
    let Some(path) = &args.path else {
        return Err(Failure::usage(anyhow!(
            "nothing to triage: give a PATH (or --import REPORT.json)"
        )));
    };
    // Where the report goes is settled before the evidence is read: a mistyped
    // organisation must not cost a long run over a large bundle.
    let saving = if args.save {
        Some(prepare_save(&args, config)?)
    } else {
        None
    };
    let mut packs: Vec<RulePack> = rules::builtin();
    for file in &args.rules {
        let text = crate::constituency::read_capped(file, 4 << 20)?;
        let pack = rules::parse_pack(&text, &file.display().to_string()).map_err(Failure::usage)?;
        packs.push(pack);
    }
    rules::check_unique(&packs).map_err(Failure::usage)?;
    if !args.pack.is_empty() {
        let known: Vec<String> = packs.iter().map(|p| p.name.clone()).collect();
        for name in &args.pack {
            if !known.contains(name) {
                return Err(Failure::usage(anyhow!(
                    "--pack {name}: no such pack (there are: {})",
                    known.join(", ")
                )));
            }
        }
        packs.retain(|p| args.pack.contains(&p.name));
    }
    let limits = Limits {
        max_file: args.max_file,
        ..Limits::default()
    };
    let report = triage(path, &packs, &limits)
        .with_context(|| format!("cannot triage {}", path.display()))
        .map_err(Failure::usage)?;
    let code = exit_code(report.verdict);
    if args.json {
        json(&report)?;
    } else {
        emit(render(&report, packs.len()))?;
    }
    if let Some(saving) = saving {
        let value = serde_json::to_value(&report)
            .context("the report as JSON")
            .map_err(Failure::failed)?;
        let verdict =
            json_name(report.verdict).unwrap_or_else(|| report.verdict.as_str().to_string());
        let hits = count_hits(report.hits.len(), report.more_hits.values().copied());
        let label = args
            .label
            .clone()
            .unwrap_or_else(|| path.display().to_string());
        let id = keep(&saving, label, verdict, hits, value)?;
        let line = format!(
            "saved as triage report {id} in {}",
            wachter_store::redact(saving.store.location())
        );
        if args.json {
            eprintln!("{line}");
        } else {
            emit(format!("\n{line}\n"))?;
        }
    }
    Ok(code)
}

/// The store a report is saved in, and what it is about.
struct Saving {
    store: wachter_store::Store,
    organisation_id: Option<i64>,
    /// The scanned appliance (`--host`).
    service: Option<StoredService>,
}

/// A service of the store, as `--host` found it.
struct StoredService {
    id: i64,
    ip: String,
    port: u16,
    organisation_id: Option<i64>,
}

/// Opens the store and finds what `--org` and `--host` name there; either naming nothing
/// is a usage error.
fn prepare_save(args: &TriageArgs, config: &Config) -> Result<Saving, Failure> {
    let store = crate::cases::open(&args.db, config, false)?;
    let service = match &args.host {
        Some(host) => Some(find_service(&store, host)?),
        None => None,
    };
    let organisation_id = match &args.org {
        Some(name) => Some(
            store
                .organisation(name)
                .map_err(Failure::failed)?
                .ok_or_else(|| {
                    Failure::usage(anyhow!(
                        "--org {name:?}: no such organisation in {} (`wachter org list` shows them)",
                        wachter_store::redact(store.location())
                    ))
                })?
                .id,
        ),
        // The appliance's owner, as attribution decided it.
        None => service.as_ref().and_then(|s| s.organisation_id),
    };
    Ok(Saving {
        store,
        organisation_id,
        service,
    })
}

/// The service `--host` names: a service id (as in the dashboard's `/hosts/ID`), or an
/// address with or without its port that exactly one stored service with findings has.
fn find_service(store: &wachter_store::Store, host: &str) -> Result<StoredService, Failure> {
    let shown = wachter_store::redact(store.location());
    if let Ok(id) = host.parse::<i64>() {
        let detail = store.host(id).map_err(Failure::failed)?.ok_or_else(|| {
            Failure::usage(anyhow!(
                "--host {id}: no service {id} in {shown} (the dashboard's hosts list links \
                     each service as /hosts/ID)"
            ))
        })?;
        return Ok(StoredService {
            id: detail.service_id,
            ip: detail.ip,
            port: detail.port,
            organisation_id: detail.organisation_id,
        });
    }
    let (ip, port) = match (
        host.parse::<std::net::SocketAddr>(),
        host.parse::<std::net::IpAddr>(),
    ) {
        (Ok(addr), _) => (addr.ip(), Some(addr.port())),
        (_, Ok(ip)) => (ip, None),
        _ => {
            return Err(Failure::usage(anyhow!(
                "--host {host:?}: neither an address (192.0.2.10, 192.0.2.10:443, \
                 [2001:db8::1]:443) nor a service id"
            )));
        }
    };
    let filter = FindingFilter {
        network: Some(ipnet::IpNet::from(ip)),
        ..FindingFilter::default()
    };
    let rows = store
        .hosts(
            &filter,
            Page {
                offset: 0,
                limit: MAX_PAGE,
            },
        )
        .map_err(Failure::failed)?;
    let mut services: BTreeMap<i64, HostRow> = BTreeMap::new();
    for row in rows.items {
        if port.is_none_or(|port| port == row.port) {
            services.entry(row.service_id).or_insert(row);
        }
    }
    let mut found = services.into_values();
    match (found.next(), found.next()) {
        (Some(only), None) => Ok(StoredService {
            id: only.service_id,
            ip: only.ip,
            port: only.port,
            organisation_id: only.organisation_id,
        }),
        (None, _) => Err(Failure::usage(anyhow!(
            "--host {host}: no scanned service with findings at that address in {shown} \
             (`wachter report` lists them)"
        ))),
        (Some(first), Some(second)) => {
            let listed: Vec<String> = [first, second]
                .into_iter()
                .chain(found)
                .map(|s| {
                    let name = if s.hostname.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", s.hostname.escape_debug())
                    };
                    format!("{} = {}:{}{name}", s.service_id, s.ip, s.port)
                })
                .collect();
            Err(Failure::usage(anyhow!(
                "--host {host}: several services at that address; name one by its id: {}",
                listed.join(", ")
            )))
        }
    }
}

/// Every hit of a report: those listed and those only counted per rule.
fn count_hits(listed: usize, more: impl Iterator<Item = u64>) -> u64 {
    more.fold(listed as u64, u64::saturating_add)
}

/// Keeps a report (the JSON `--json` prints) with its verdict and number of hits.
fn keep(
    saving: &Saving,
    label: String,
    verdict: String,
    hits: u64,
    report: serde_json::Value,
) -> Result<i64, Failure> {
    saving
        .store
        .add_triage_report(&wachter_store::view::NewTriageReport {
            label,
            organisation_id: saving.organisation_id,
            service_id: saving.service.as_ref().map(|s| s.id),
            verdict,
            hits,
            report,
        })
        .context("saving the report")
        .map_err(Failure::failed)
}

/// The largest report `--import` reads. A real one is far smaller (hits and problems are
/// capped per rule and kind); a larger file is not one.
const MAX_IMPORT_BYTES: u64 = 64 << 20;

/// `--import REPORT.json`: an owner's own `wachter triage --json` report, checked and kept.
/// The file is hostile until checked, so it is read and checked before the store is
/// even opened: a refused file leaves nothing behind.
fn import(file: &Path, args: &TriageArgs, config: &Config) -> Result<u8, Failure> {
    let refuse = |why: String| {
        Failure::usage(anyhow!(
            "--import {}: {why}; nothing was saved",
            file.display()
        ))
    };
    let value = read_json_capped(file, MAX_IMPORT_BYTES).map_err(refuse)?;
    let checked = check_report(&value)
        .map_err(|why| refuse(format!("not a `wachter triage --json` report: {why}")))?;
    let saving = prepare_save(args, config)?;
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| file.display().to_string());
    let id = keep(&saving, label, checked.verdict.clone(), checked.hits, value)?;
    let service = saving.service.as_ref();
    if args.json {
        return json(&serde_json::json!({
            "id": id,
            "verdict": checked.verdict,
            "hits": checked.hits,
            "organisation_id": saving.organisation_id,
            "service_id": service.map(|s| s.id),
        }));
    }
    let about = match service {
        Some(s) => format!(" about {} ({}:{})", s.id, s.ip, s.port),
        None => String::new(),
    };
    emit(format!(
        "imported as triage report {id} in {}{about}: {}, {} hits\n",
        wachter_store::redact(saving.store.location()),
        checked.verdict.replace('_', " "),
        checked.hits
    ))?;
    Ok(crate::exit::OK)
}

/// The JSON in `file`, read whole if it is at most `cap` bytes; `Err` says why not.
fn read_json_capped(file: &Path, cap: u64) -> Result<serde_json::Value, String> {
    let too_large = || format!("larger than {} MiB, which no triage report is", cap >> 20);
    let opened = std::fs::File::open(file).map_err(|e| format!("cannot open it ({e})"))?;
    // A file that says it is too large is refused unread.
    if let Ok(meta) = opened.metadata()
        && meta.is_file()
        && meta.len() > cap
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    opened
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it ({e})"))?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON ({e})"))
}

/// What is kept with an imported report besides the report itself.
#[derive(Debug, PartialEq, Eq)]
struct CheckedReport {
    /// As `--json` writes it (`compromised`, `no_sign_of_compromise`, …).
    verdict: String,
    hits: u64,
}

/// The fields of a `wachter triage --json` report that the store and the dashboard read,
/// with their types. Fields it does not know are allowed (a newer wachter may add some).
/// Most fields are only read to check their types: the dashboard shows them from the
/// stored JSON.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReportShape {
    evidence: String,
    kind: String,
    verdict: String,
    reason: String,
    hits: Vec<HitShape>,
    more_hits: BTreeMap<String, u64>,
    coverage: Vec<CoverageShape>,
    problems: Vec<ProblemShape>,
    more_problems: BTreeMap<String, u64>,
    summary: SummaryShape,
    rules: u64,
    areas: Vec<String>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct HitShape {
    rule: String,
    severity: Severity,
    cves: Vec<String>,
    source: String,
    description: String,
    #[serde(default)]
    fixes: Option<String>,
    path: String,
    #[serde(default)]
    line: Option<u64>,
    excerpt: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct CoverageShape {
    path: String,
    kind: Option<String>,
    compressed: bool,
    lines: u64,
    first: Option<String>,
    last: Option<String>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ProblemShape {
    path: String,
    kind: String,
    detail: String,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct SummaryShape {
    entries: u64,
    files: u64,
    bytes_read: u64,
}

/// The verdicts, as `--json` names them.
const VERDICTS: [Verdict; 4] = [
    Verdict::Compromised,
    Verdict::ExploitationAttempted,
    Verdict::NoSignOfCompromise,
    Verdict::NotEnoughData,
];

/// The evidence kinds, as `--json` names them.
const EVIDENCE_KINDS: [EvidenceKind; 3] = [
    EvidenceKind::Directory,
    EvidenceKind::Tar,
    EvidenceKind::TarGz,
];

/// How `--json` writes a value that serialises as a plain string.
fn json_name(value: impl serde::Serialize) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
}

/// Whether `value` is a `wachter triage --json` report: every field the store and the
/// dashboard read is there with its type, the verdict and the evidence kind are ones
/// triage gives, and the verdict is the one its hits lead to (a report that lists a
/// webshell but says "no sign of compromise" was edited). `Err` says what is wrong.
fn check_report(value: &serde_json::Value) -> Result<CheckedReport, String> {
    let report = ReportShape::deserialize(value).map_err(|e| e.to_string())?;
    let Some(verdict) = VERDICTS
        .into_iter()
        .find(|v| json_name(v).as_deref() == Some(report.verdict.as_str()))
    else {
        return Err(format!("no such verdict {:?}", report.verdict));
    };
    if !EVIDENCE_KINDS
        .into_iter()
        .any(|k| json_name(k).as_deref() == Some(report.kind.as_str()))
    {
        return Err(format!("no such kind of evidence {:?}", report.kind));
    }
    let has =
        |severities: &[Severity]| report.hits.iter().any(|h| severities.contains(&h.severity));
    let implied = if has(&[Severity::Compromise, Severity::PostExploitation]) {
        Some(Verdict::Compromised)
    } else if has(&[Severity::SuccessfulScanning, Severity::FailedExploitation]) {
        Some(Verdict::ExploitationAttempted)
    } else {
        // No sign of compromise or not enough data: the hits alone do not say which.
        None
    };
    let agrees = match implied {
        Some(implied) => verdict == implied,
        None => matches!(
            verdict,
            Verdict::NoSignOfCompromise | Verdict::NotEnoughData
        ),
    };
    if !agrees {
        return Err(format!(
            "its verdict {:?} is not what its {} listed hits lead to",
            report.verdict,
            report.hits.len()
        ));
    }
    Ok(CheckedReport {
        verdict: report.verdict,
        hits: count_hits(report.hits.len(), report.more_hits.values().copied()),
    })
}

/// The report for a person: verdict first, then every hit by severity, then coverage and
/// problems with the evidence.
fn render(report: &Report, packs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wachter triage: {} ({:?}; {} entries, {} files)",
        report.evidence, report.kind, report.summary.entries, report.summary.files
    );
    let _ = writeln!(
        out,
        "verdict: {} — {}",
        report.verdict.as_str().to_uppercase(),
        report.reason
    );
    for severity in [
        Severity::Compromise,
        Severity::PostExploitation,
        Severity::SuccessfulScanning,
        Severity::FailedExploitation,
        Severity::Suspicious,
    ] {
        let hits: Vec<_> = report
            .hits
            .iter()
            .filter(|h| h.severity == severity)
            .collect();
        if hits.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{} ({})", label(severity), hits.len());
        for hit in hits {
            let at = match hit.line {
                Some(line) => format!("{}:{line}", hit.path),
                None => hit.path.clone(),
            };
            let cves = if hit.cves.is_empty() {
                String::new()
            } else {
                format!(" [{}]", hit.cves.join(", "))
            };
            let _ = writeln!(out, "  {at}  {}{cves}", hit.rule);
            let _ = writeln!(out, "      {}", hit.excerpt);
            let _ = writeln!(out, "      {} — {}", hit.description, hit.source);
            if let Some(fixes) = &hit.fixes {
                let _ = writeln!(out, "      (fixed against the original: {fixes})");
            }
        }
    }
    for (rule, more) in &report.more_hits {
        let _ = writeln!(out, "  … and {more} more hits of {rule}");
    }
    let _ = writeln!(out, "\nlog coverage");
    if report.coverage.is_empty() {
        let _ = writeln!(out, "  no logs in the evidence");
    }
    for c in &report.coverage {
        let span = match (&c.first, &c.last) {
            (Some(first), Some(last)) => format!("{first} → {last}"),
            _ => "no timestamps".into(),
        };
        let _ = writeln!(out, "  {:<44} {:>9} lines  {span}", c.path, c.lines);
    }
    if !report.problems.is_empty() {
        let _ = writeln!(out, "\nproblems with the evidence itself");
        for p in &report.problems {
            let _ = writeln!(out, "  {}: {:?}: {}", p.path, p.kind, p.detail);
        }
        for (kind, more) in &report.more_problems {
            let _ = writeln!(out, "  … and {more} more {kind:?} problems");
        }
    }
    let _ = writeln!(
        out,
        "\n{} rules from {packs} packs; appliance areas present: {}",
        report.rules,
        if report.areas.is_empty() {
            "none".to_string()
        } else {
            report.areas.join(", ")
        }
    );
    out
}

fn label(severity: Severity) -> &'static str {
    match severity {
        Severity::Compromise => "COMPROMISE",
        Severity::PostExploitation => "POST-EXPLOITATION",
        Severity::SuccessfulScanning => "SUCCESSFUL SCANNING",
        Severity::FailedExploitation => "FAILED EXPLOITATION",
        Severity::Suspicious => "SUSPICIOUS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of `--json`'s shape with this verdict and one hit per severity.
    fn report(verdict: &str, severities: &[&str]) -> serde_json::Value {
        let hits: Vec<serde_json::Value> = severities
            .iter()
            .map(|severity| {
                serde_json::json!({
                    "rule": "r", "severity": severity, "cves": [], "source": "s",
                    "description": "d", "path": "/var/log/httpaccess.log", "line": 1,
                    "excerpt": "e"
                })
            })
            .collect();
        serde_json::json!({
            "evidence": "bundle.tar.gz", "kind": "tar_gz", "verdict": verdict, "reason": "r",
            "hits": hits, "more_hits": {"r": 3}, "coverage": [], "problems": [],
            "more_problems": {}, "summary": {"entries": 1, "files": 1, "bytes_read": 1},
            "rules": 1, "areas": ["/var/log"]
        })
    }

    #[test]
    fn an_imported_verdict_must_follow_from_its_hits() {
        for (verdict, severities, accepted) in [
            ("compromised", &["compromise"][..], true),
            ("compromised", &["suspicious", "post_exploitation"], true),
            ("exploitation_attempted", &["failed_exploitation"], true),
            (
                "exploitation_attempted",
                &["successful_scanning", "suspicious"],
                true,
            ),
            ("no_sign_of_compromise", &["suspicious"], true),
            ("not_enough_data", &[], true),
            ("no_sign_of_compromise", &["compromise"], false),
            ("not_enough_data", &["failed_exploitation"], false),
            (
                "exploitation_attempted",
                &["failed_exploitation", "compromise"],
                false,
            ),
            ("compromised", &[], false),
            // The text form, not the JSON name.
            ("exploitation attempted", &["failed_exploitation"], false),
            ("clean", &[], false),
        ] {
            let checked = check_report(&report(verdict, severities));
            assert_eq!(
                checked.is_ok(),
                accepted,
                "{verdict} {severities:?}: {checked:?}"
            );
            if let Ok(checked) = checked {
                assert_eq!(checked.verdict, verdict);
                assert_eq!(
                    checked.hits,
                    severities.len() as u64 + 3,
                    "listed and counted"
                );
            }
        }
        let mut unknown_severity = report("compromised", &["compromise"]);
        unknown_severity["hits"][0]["severity"] = "catastrophic".into();
        let mut unknown_kind = report("not_enough_data", &[]);
        unknown_kind["kind"] = "zip".into();
        let mut negative_count = report("not_enough_data", &[]);
        negative_count["more_hits"]["r"] = (-1).into();
        let mut no_summary = report("not_enough_data", &[]);
        no_summary.as_object_mut().unwrap().remove("summary");
        for refused in [
            unknown_severity,
            unknown_kind,
            negative_count,
            no_summary,
            serde_json::json!({}),
            serde_json::json!("compromised"),
        ] {
            assert!(check_report(&refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn what_triage_writes_is_what_the_import_takes() {
        let root = std::env::temp_dir().join(format!("wachter-triage-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("var/log")).unwrap();
        std::fs::write(
            root.join("var/log/httpaccess.log"),
            "193.187.174.104 - - [12/Jan/2020:11:26:02 +0000] \"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\" 200 83 \"-\"\n",
        )
        .unwrap();
        let report = triage(&root, &rules::builtin(), &Limits::default()).unwrap();
        let value = serde_json::to_value(&report).unwrap();
        let checked = check_report(&value).unwrap();
        assert_eq!(Some(checked.verdict), json_name(report.verdict));
        assert_eq!(checked.hits, report.hits.len() as u64);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn every_verdict_and_kind_has_a_json_name_and_counts_do_not_overflow() {
        for verdict in VERDICTS {
            assert!(
                json_name(verdict).is_some_and(|n| !n.contains(' ')),
                "{verdict:?}"
            );
        }
        for kind in EVIDENCE_KINDS {
            assert!(json_name(kind).is_some(), "{kind:?}");
        }
        assert_eq!(count_hits(2, [u64::MAX, 5].into_iter()), u64::MAX);
    }

    #[test]
    fn an_import_reads_at_most_its_cap() {
        let dir = std::env::temp_dir().join(format!("wachter-import-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("r.json");
        std::fs::write(&file, "{\"a\": 1}").unwrap();
        assert!(read_json_capped(&file, 8).is_ok());
        let refused = read_json_capped(&file, 7).unwrap_err();
        assert!(refused.contains("larger than"), "{refused}");
        // A pipe says no size: the read itself stops at the cap.
        let fifo = dir.join("pipe");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || {
                    use std::io::Write;
                    if let Ok(mut pipe) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                        let _ = pipe.write_all(&[b' '; 4096]);
                    }
                })
            };
            let refused = read_json_capped(&fifo, 1024).unwrap_err();
            assert!(refused.contains("larger than"), "{refused}");
            let _ = writer.join();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
