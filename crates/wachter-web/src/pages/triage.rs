//! The imported triage reports, and one report (its view model is in [`super::evidence`]:
//! a report quotes files an attacker may have written).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use wachter_store::Store;
use wachter_store::view::TriageReportSummary;

use super::{evidence, load, render};
use crate::AppState;
use crate::auth::PageUser;
use crate::error::PageError;

#[derive(Serialize)]
struct TriageListPage {
    reports: Vec<TriageReportSummary>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    PageUser(user): PageUser,
) -> Result<Response, PageError> {
    let reports = state.pool.run(|store| store.triage_reports()).await?;
    render(
        &user,
        "triage",
        "triage_list.html",
        TriageListPage { reports },
    )
}

#[derive(Serialize)]
struct TriagePage {
    report: evidence::TriageView,
}

pub(super) async fn one(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let detail = load(&state, &id, Store::triage_report).await?;
    render(
        &user,
        "triage",
        "triage.html",
        TriagePage {
            report: evidence::TriageView::from_detail(detail),
        },
    )
}

#[cfg(test)]
pub(super) fn examples() -> Vec<(&'static str, serde_json::Value)> {
    use wachter_store::view::TriageReportDetail;

    use super::examples::{context, triage_summary};
    let report = serde_json::json!({
        "evidence": "image.tar.gz", "kind": "tar_gz", "verdict": "compromised",
        "reason": "A webshell.", "rules": 40, "areas": ["/var/vpn"],
        "hits": [{"rule": "webshell", "severity": "compromise", "cves": ["CVE-2023-3519"],
                  "source": "mandiant", "description": "PHP", "path": "/var/vpn/x.php",
                  "line": 1, "excerpt": "<?php eval($_POST[1]);"}],
        "more_hits": {"webshell": 3},
        "coverage": [{"path": "/var/log/httpaccess.log", "kind": "http_access",
                      "compressed": false, "lines": 10, "first": "a", "last": "b"}],
        "problems": [{"path": "../x", "kind": "path_traversal", "detail": "skipped"}],
        "more_problems": {}, "summary": {"entries": 3, "files": 2, "bytes_read": 9}
    });
    let one = TriagePage {
        report: evidence::TriageView::from_detail(TriageReportDetail {
            summary: triage_summary(),
            report,
        }),
    };
    let list = TriageListPage {
        reports: vec![triage_summary()],
    };
    vec![
        ("triage_list.html", context("triage", list)),
        ("triage.html", context("triage", one)),
    ]
}
