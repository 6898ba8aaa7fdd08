//! The scans, and one scan: its parameters, live progress while it runs, and the diff
//! with the previous scan.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value as Json;
use wachter_store::Store;
use wachter_store::report::{Change, Diff};
use wachter_store::view::{ScanDetail, ScanSummary};

use super::evidence::{BLOCK_CAP, LINE_CAP, cap_text, line};
use super::{address, load, pretty_json, render};
use crate::AppState;
use crate::auth::PageUser;
use crate::error::PageError;
use crate::query::percent_encode;

#[derive(Serialize)]
struct ScansPage {
    scans: Vec<ScanSummary>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    PageUser(user): PageUser,
) -> Result<Response, PageError> {
    let scans = state.pool.run(|store| store.scan_summaries()).await?;
    render(&user, "scans", "scans.html", ScansPage { scans })
}

#[derive(Serialize)]
struct StatusCount {
    status: String,
    count: u64,
}

#[derive(Serialize)]
struct DiffCountView {
    cve: String,
    new: u64,
    fixed: u64,
    still_open: u64,
    unreachable: u64,
    not_rescanned: u64,
}

#[derive(Serialize)]
struct DiffEntryView {
    change: &'static str,
    change_label: &'static str,
    address: String,
    hostname: String,
    cve: String,
    before: Option<String>,
    after: Option<String>,
    href: String,
}

#[derive(Serialize)]
struct DiffView {
    from_scan: i64,
    to_scan: i64,
    counts: Vec<DiffCountView>,
    entries: Vec<DiffEntryView>,
    /// How many changes the whole diff has (more than `entries` when capped).
    total_entries: u64,
    capped: bool,
}

#[derive(Serialize)]
struct ScanView {
    scan: ScanSummary,
    running: bool,
    seed: u64,
    scope: String,
    params: String,
    summary: Option<String>,
    statuses: Vec<StatusCount>,
    checkpoint: Option<String>,
    previous: Option<i64>,
    diff: Option<DiffView>,
}

#[derive(Serialize)]
struct ScanPage {
    scan: ScanView,
}

impl From<ScanDetail> for ScanView {
    fn from(detail: ScanDetail) -> Self {
        ScanView {
            running: detail.scan.state == "running",
            seed: detail.seed,
            scope: cap_text(&detail.scope, BLOCK_CAP),
            params: pretty_json(&detail.params),
            summary: detail.summary.as_ref().map(pretty_json),
            statuses: detail
                .statuses
                .into_iter()
                .map(|(status, count)| StatusCount { status, count })
                .collect(),
            checkpoint: detail.checkpoint.as_ref().map(checkpoint_text),
            previous: detail.previous,
            diff: detail
                .diff
                .map(|diff| DiffView::new(diff, detail.diff_entries)),
            scan: detail.scan,
        }
    }
}

/// The checkpoint in words: `done of total targets` when the store says both, else the
/// positions done, else the JSON itself.
pub fn checkpoint_text(checkpoint: &Json) -> String {
    let number = |key: &str| checkpoint.get(key).and_then(Json::as_u64);
    if let (Some(done), Some(total)) = (number("done"), number("total")) {
        return format!("{done} of {total} targets done");
    }
    if let Some(next) = number("next") {
        let above = checkpoint
            .get("done_above")
            .and_then(Json::as_array)
            .map_or(0, Vec::len) as u64;
        return format!("{} targets done", next.saturating_add(above));
    }
    cap_text(&checkpoint.to_string(), LINE_CAP)
}

fn change_label(change: Change) -> &'static str {
    match change {
        Change::New => "new",
        Change::Fixed => "fixed",
        Change::StillOpen => "still open",
        Change::Unreachable => "unreachable",
        Change::NotRescanned => "not rescanned",
    }
}

impl DiffView {
    /// The diff as the page lists it; `total_entries` is the whole diff's entry count.
    fn new(diff: Diff, total_entries: u64) -> Self {
        let counts = diff
            .counts
            .into_iter()
            .map(|(cve, changes)| {
                let n = |c: Change| changes.get(&c).copied().unwrap_or(0);
                DiffCountView {
                    new: n(Change::New),
                    fixed: n(Change::Fixed),
                    still_open: n(Change::StillOpen),
                    unreachable: n(Change::Unreachable),
                    not_rescanned: n(Change::NotRescanned),
                    cve,
                }
            })
            .collect();
        let capped = (diff.entries.len() as u64) < total_entries;
        let entries = diff
            .entries
            .into_iter()
            .map(|e| DiffEntryView {
                change: e.change.as_str(),
                change_label: change_label(e.change),
                address: address(&e.ip, e.port),
                hostname: line(&e.hostname),
                href: format!(
                    "/hosts?network={}&cve={}",
                    percent_encode(&e.ip),
                    percent_encode(&e.cve)
                ),
                cve: e.cve,
                before: e.before,
                after: e.after,
            })
            .collect();
        DiffView {
            from_scan: diff.from_scan,
            to_scan: diff.to_scan,
            counts,
            entries,
            total_entries,
            capped,
        }
    }
}

pub(super) async fn one(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let detail = load(&state, &id, Store::scan_detail).await?;
    let scan = detail.into();
    render(&user, "scans", "scan.html", ScanPage { scan })
}

#[cfg(test)]
pub(super) fn examples() -> Vec<(&'static str, serde_json::Value)> {
    use std::collections::BTreeMap;

    use serde_json::json;
    use wachter_store::report::DiffEntry;

    use super::examples::{context, scan_summary};
    let diff = Diff {
        from_scan: 1,
        to_scan: 2,
        counts: BTreeMap::from([(
            "CVE-2023-3519".to_string(),
            BTreeMap::from([(Change::Fixed, 2)]),
        )]),
        entries: vec![DiffEntry {
            change: Change::Fixed,
            ip: "192.0.2.1".into(),
            port: 443,
            hostname: String::new(),
            cve: "CVE-2023-3519".into(),
            before: Some("vulnerable".into()),
            after: Some("patched".into()),
        }],
    };
    let scan = |state: &str, diff: Option<Diff>, diff_entries: u64| {
        let detail = ScanDetail {
            scan: scan_summary(state),
            seed: u64::MAX,
            scope: "127.0.0.0/8".into(),
            params: json!({"ports": [443]}),
            summary: Some(json!({"open": 1})),
            statuses: BTreeMap::from([("open".to_string(), 1)]),
            checkpoint: Some(json!({"next": 3, "done_above": []})),
            previous: Some(1),
            diff,
            diff_entries,
        };
        context(
            "scans",
            ScanPage {
                scan: detail.into(),
            },
        )
    };
    let list = ScansPage {
        scans: vec![scan_summary("running"), scan_summary("finished")],
    };
    vec![
        ("scans.html", context("scans", list)),
        ("scan.html", scan("running", None, 0)),
        ("scan.html", scan("finished", Some(diff.clone()), 1)),
        ("scan.html", scan("finished", Some(diff), 1001)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_says_it_is_capped_only_when_it_is() {
        let pages: Vec<String> = examples()
            .into_iter()
            .filter(|(name, _)| *name == "scan.html")
            .map(|(name, context)| crate::templates::render(name, &context).unwrap().0)
            .collect();
        let [running, whole, capped] = &pages[..] else {
            panic!("three scan examples");
        };
        assert!(running.contains("The changes are shown once the scan has ended."));
        assert!(!whole.contains("Showing the first"), "one of one change");
        assert!(
            capped.contains("Showing the first 1 of 1001 changes"),
            "{capped}"
        );
    }

    #[test]
    fn checkpoints_read_as_words() {
        use serde_json::json;
        assert_eq!(
            checkpoint_text(&json!({"done": 5, "total": 9})),
            "5 of 9 targets done"
        );
        assert_eq!(
            checkpoint_text(&json!({"next": 5, "done_above": [7, 8]})),
            "7 targets done"
        );
        assert_eq!(checkpoint_text(&json!([1])), "[1]");
    }
}
