//! The overview, the filtered hosts list and the host page with its evidence.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use wachter_store::Store;
use wachter_store::view::{HostRow, Paged, Totals};

use super::{HostRowView, PageQuery, csv_href, evidence, host_rows, load, render, with_query};
use crate::AppState;
use crate::auth::PageUser;
use crate::error::PageError;
use crate::query::{ListQuery, STATES, percent_encode};

#[derive(Serialize)]
struct CountView {
    cve: String,
    state: String,
    count: u64,
    href: String,
}

#[derive(Serialize)]
struct OverviewPage {
    totals: Totals,
    counts: Vec<CountView>,
    newest: Vec<HostRowView>,
}

pub(super) async fn overview(
    State(state): State<AppState>,
    PageUser(user): PageUser,
) -> Result<Response, PageError> {
    let overview = state.pool.run(|store| store.overview()).await?;
    let counts = overview
        .counts
        .into_iter()
        .map(|c| CountView {
            href: format!(
                "/hosts?cve={}&state={}",
                percent_encode(&c.cve),
                percent_encode(&c.state)
            ),
            cve: c.cve,
            state: c.state,
            count: c.count,
        })
        .collect();
    render(
        &user,
        "overview",
        "overview.html",
        OverviewPage {
            totals: overview.totals,
            counts,
            newest: host_rows(overview.newest),
        },
    )
}

#[derive(Serialize)]
struct StateOption {
    value: &'static str,
    label: &'static str,
}

fn state_options() -> Vec<StateOption> {
    std::iter::once(StateOption {
        value: "",
        label: "any",
    })
    .chain(STATES.iter().map(|s| StateOption {
        value: s,
        label: match *s {
            "open" => "open (vulnerable or mitigated)",
            "not_applicable" => "not applicable",
            other => other,
        },
    }))
    .collect()
}

#[derive(Serialize)]
struct HostsPageRows {
    total: u64,
    offset: u64,
    limit: u64,
    /// 1-based numbers of the first and last row shown.
    first: u64,
    last: u64,
    items: Vec<HostRowView>,
}

#[derive(Serialize)]
struct HostsPage {
    query: ListQuery,
    states: Vec<StateOption>,
    page: HostsPageRows,
    csv_href: String,
    prev_href: Option<String>,
    next_href: Option<String>,
}

impl HostsPage {
    fn new(query: ListQuery, rows: Paged<HostRow>) -> HostsPage {
        let (csv_href, prev_href, next_href) =
            hosts_links(&query, rows.total, rows.offset, rows.limit);
        let shown = rows.items.len() as u64;
        HostsPage {
            query,
            states: state_options(),
            page: HostsPageRows {
                total: rows.total,
                offset: rows.offset,
                limit: rows.limit,
                first: if shown == 0 { 0 } else { rows.offset + 1 },
                last: rows.offset + shown,
                items: host_rows(rows.items),
            },
            csv_href,
            prev_href,
            next_href,
        }
    }
}

/// The hosts list's links: the CSV of the same filters, and the slices before and after.
fn hosts_links(
    query: &ListQuery,
    total: u64,
    offset: u64,
    limit: u64,
) -> (String, Option<String>, Option<String>) {
    let filters = query.to_query_string();
    let slice = |offset: u64| {
        let mut parts = Vec::new();
        if !filters.is_empty() {
            parts.push(filters.clone());
        }
        if offset > 0 {
            parts.push(format!("offset={offset}"));
        }
        if !query.limit.trim().is_empty() {
            parts.push(format!("limit={limit}"));
        }
        with_query("/hosts", &parts.join("&"))
    };
    let prev = (offset > 0).then(|| slice(offset.saturating_sub(limit)));
    let next = (offset.saturating_add(limit) < total).then(|| slice(offset + limit));
    (csv_href("hosts", &filters), prev, next)
}

pub(super) async fn hosts(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    PageQuery(query): PageQuery<ListQuery>,
) -> Result<Response, PageError> {
    let filter = query.filter()?;
    let page = query.page()?;
    let rows = state
        .pool
        .run(move |store| store.hosts(&filter, page))
        .await?;
    render(&user, "hosts", "hosts.html", HostsPage::new(query, rows))
}

#[derive(Serialize)]
struct HostPage {
    host: evidence::HostView,
}

pub(super) async fn host(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let detail = load(&state, &id, Store::host).await?;
    render(
        &user,
        "hosts",
        "host.html",
        HostPage {
            host: evidence::HostView::from_detail(detail),
        },
    )
}

#[cfg(test)]
pub(super) fn examples() -> Vec<(&'static str, serde_json::Value)> {
    use super::examples::{context, host_detail, row};
    let overview = OverviewPage {
        totals: Totals::default(),
        counts: vec![CountView {
            cve: "CVE-2023-3519".into(),
            state: "vulnerable".into(),
            count: 3,
            href: "/hosts?cve=CVE-2023-3519&state=vulnerable".into(),
        }],
        newest: host_rows(vec![row()]),
    };
    let query = ListQuery {
        state: "open".into(),
        ..ListQuery::default()
    };
    let rows = Paged {
        total: 300,
        offset: 100,
        limit: 100,
        items: vec![row()],
    };
    let host = HostPage {
        host: evidence::HostView::from_detail(host_detail()),
    };
    vec![
        ("overview.html", context("overview", overview)),
        ("hosts.html", context("hosts", HostsPage::new(query, rows))),
        ("host.html", context("hosts", host)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_links_keep_the_filters() {
        let query = ListQuery {
            state: "open".into(),
            network: "10.0.0.0/8".into(),
            ..ListQuery::default()
        };
        let (csv, prev, next) = hosts_links(&query, 250, 100, 100);
        assert_eq!(
            csv,
            "/api/v1/hosts?format=csv&state=open&network=10.0.0.0%2F8"
        );
        assert_eq!(
            prev.as_deref(),
            Some("/hosts?state=open&network=10.0.0.0%2F8")
        );
        assert_eq!(
            next.as_deref(),
            Some("/hosts?state=open&network=10.0.0.0%2F8&offset=200")
        );
        let (csv, prev, next) = hosts_links(&ListQuery::default(), 5, 0, 100);
        assert_eq!(
            (csv.as_str(), prev, next),
            ("/api/v1/hosts?format=csv", None, None)
        );
    }
}
