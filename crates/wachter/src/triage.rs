//! `wachter triage`: the verdict on an appliance's evidence.

use std::fmt::Write as _;

use anyhow::{Context, anyhow};
use wachter_triage::engine::{Report, triage};
use wachter_triage::input::Limits;
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
    let report = triage(&args.path, &packs, &limits)
        .with_context(|| format!("cannot triage {}", args.path.display()))
        .map_err(Failure::usage)?;
    let code = exit_code(report.verdict);
    if args.json {
        json(&report)?;
    } else {
        emit(render(&report, packs.len()))?;
    }
    if let Some(saving) = saving {
        let id = save(saving, &args, &report)?;
        let line = format!(
            "saved as triage report {id} in {}",
            wachter_store::redact(&saving_location(&args, config))
        );
        if args.json {
            eprintln!("{line}");
        } else {
            emit(format!("\n{line}\n"))?;
        }
    }
    Ok(code)
}

/// The store a report is saved in, and the organisation it belongs to.
struct Saving {
    store: wachter_store::Store,
    organisation_id: Option<i64>,
}

fn saving_location(args: &TriageArgs, config: &Config) -> String {
    args.db.clone().unwrap_or_else(|| config.store.db.clone())
}

fn prepare_save(args: &TriageArgs, config: &Config) -> Result<Saving, Failure> {
    let store = crate::cases::open(&args.db, config, false)?;
    let organisation_id = match &args.org {
        Some(name) => Some(
            store
                .organisation(name)
                .map_err(Failure::failed)?
                .ok_or_else(|| {
                    Failure::usage(anyhow!(
                        "--org {name:?}: no such organisation in {} (`wachter org list` shows them)",
                        store.location()
                    ))
                })?
                .id,
        ),
        None => None,
    };
    Ok(Saving {
        store,
        organisation_id,
    })
}

/// Keeps the report as `--json` prints it, with its verdict (as written there) and every
/// hit, listed or only counted.
fn save(saving: Saving, args: &TriageArgs, report: &Report) -> Result<i64, Failure> {
    let value = serde_json::to_value(report)
        .context("the report as JSON")
        .map_err(Failure::failed)?;
    let verdict = value
        .get("verdict")
        .and_then(|v| v.as_str())
        .unwrap_or(report.verdict.as_str())
        .to_string();
    let hits = report.hits.len() as u64 + report.more_hits.values().sum::<u64>();
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| args.path.display().to_string());
    saving
        .store
        .add_triage_report(&wachter_store::view::NewTriageReport {
            label,
            organisation_id: saving.organisation_id,
            service_id: None,
            verdict,
            hits,
            report: value,
        })
        .context("saving the report")
        .map_err(Failure::failed)
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
