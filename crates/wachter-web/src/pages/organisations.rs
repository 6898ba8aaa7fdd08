//! The organisations, those the case still waits for first, and one organisation's hosts,
//! history, messages and triage reports.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use wachter_store::Store;
use wachter_store::view::{
    ContactView, MessageView, OrganisationDetail, OrganisationSummary, TriageReportSummary,
};

use super::{HistoryView, HostRowView, PageQuery, csv_href, host_rows, load, render};
use crate::AppState;
use crate::auth::PageUser;
use crate::error::PageError;
use crate::query::{SectorQuery, percent_encode};

#[derive(Serialize)]
struct OrganisationsPage {
    sector: String,
    organisations: Vec<OrganisationSummary>,
    csv_href: String,
}

/// Those with the most open findings first: whom the case still waits for.
fn by_open_findings(organisations: &mut [OrganisationSummary]) {
    organisations.sort_by(|a, b| {
        (b.vulnerable + b.mitigated)
            .cmp(&(a.vulnerable + a.mitigated))
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.id.cmp(&b.id))
    });
}

pub(super) async fn list(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    PageQuery(query): PageQuery<SectorQuery>,
) -> Result<Response, PageError> {
    let sector = query.sector()?;
    let filters = sector
        .as_deref()
        .map_or(String::new(), |s| format!("sector={}", percent_encode(s)));
    let wanted = sector.clone();
    let mut organisations = state
        .pool
        .run(move |store| store.organisation_summaries(wanted.as_deref()))
        .await?;
    by_open_findings(&mut organisations);
    render(
        &user,
        "organisations",
        "organisations.html",
        OrganisationsPage {
            sector: sector.unwrap_or_default(),
            organisations,
            csv_href: csv_href("organisations", &filters),
        },
    )
}

#[derive(Serialize)]
struct NetworkView {
    network: String,
    href: String,
}

#[derive(Serialize)]
struct OrganisationView {
    summary: OrganisationSummary,
    networks: Vec<NetworkView>,
    domains: Vec<String>,
    contacts: Vec<ContactView>,
    notes: Option<String>,
    /// The first findings (at most the store's page cap), how many there are, and the
    /// host list of them all.
    hosts: Vec<HostRowView>,
    hosts_total: u64,
    hosts_href: String,
    history: Vec<HistoryView>,
    history_total: u64,
    messages: Vec<MessageView>,
    messages_total: u64,
    triage_reports: Vec<TriageReportSummary>,
}

impl From<OrganisationDetail> for OrganisationView {
    fn from(detail: OrganisationDetail) -> Self {
        OrganisationView {
            networks: detail
                .networks
                .into_iter()
                .map(|network| NetworkView {
                    href: format!("/hosts?network={}", percent_encode(&network)),
                    network,
                })
                .collect(),
            domains: detail.domains,
            contacts: detail.contacts,
            notes: detail.notes,
            hosts: host_rows(detail.hosts),
            hosts_total: detail.hosts_total,
            hosts_href: format!("/hosts?organisation={}", detail.summary.id),
            history: detail.history.into_iter().map(HistoryView::from).collect(),
            history_total: detail.history_total,
            messages: detail.messages,
            messages_total: detail.messages_total,
            triage_reports: detail.triage_reports,
            summary: detail.summary,
        }
    }
}

#[derive(Serialize)]
struct OrganisationPage {
    org: OrganisationView,
    csv_href: String,
}

impl From<OrganisationDetail> for OrganisationPage {
    fn from(detail: OrganisationDetail) -> Self {
        OrganisationPage {
            csv_href: csv_href("hosts", &format!("organisation={}", detail.summary.id)),
            org: detail.into(),
        }
    }
}

pub(super) async fn one(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let detail = load(&state, &id, Store::organisation_detail).await?;
    render(
        &user,
        "organisations",
        "organisation.html",
        OrganisationPage::from(detail),
    )
}

#[cfg(test)]
pub(super) fn examples() -> Vec<(&'static str, serde_json::Value)> {
    use super::examples::{context, history, message, org_summary, row, triage_summary};
    let list = OrganisationsPage {
        sector: "health".into(),
        organisations: vec![org_summary()],
        csv_href: "/api/v1/organisations?format=csv&sector=health".into(),
    };
    let detail = OrganisationDetail {
        summary: org_summary(),
        networks: vec!["192.0.2.0/24".into()],
        domains: vec!["hospital.test".into()],
        contacts: vec![ContactView {
            email: "cert@hospital.test".into(),
            role: "security".into(),
            language: None,
            name: Some("CERT".into()),
        }],
        notes: Some("call first".into()),
        hosts: vec![row()],
        hosts_total: 1500,
        history: vec![history()],
        history_total: 2000,
        messages: vec![message("sent")],
        messages_total: 1,
        triage_reports: vec![triage_summary()],
    };
    vec![
        ("organisations.html", context("organisations", list)),
        (
            "organisation.html",
            context("organisations", OrganisationPage::from(detail)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_list_says_how_much_is_left_out_and_where_it_all_is() {
        let (_, context) = examples()
            .into_iter()
            .find(|(name, _)| *name == "organisation.html")
            .unwrap();
        let html = crate::templates::render("organisation.html", &context)
            .unwrap()
            .0;
        let id = context["org"]["summary"]["id"].as_i64().unwrap();
        assert!(
            html.contains(&format!(
                "Showing the first 1 of 1500; <a href=\"/hosts?organisation={id}\">the whole list</a>."
            )),
            "{html}"
        );
        assert!(html.contains("Showing the first 1 of 2000."), "history");
        assert!(!html.contains("of 1."), "the messages are all there");
    }

    #[test]
    fn organisations_with_open_findings_come_first() {
        let org = |id, name: &str, vulnerable, mitigated| OrganisationSummary {
            id,
            name: name.into(),
            sector: None,
            tlp: None,
            services: 0,
            vulnerable,
            mitigated,
            patched: 0,
            other: 0,
            messages_sent: 0,
            messages_waiting: 0,
            messages_failed: 0,
            last_told: None,
        };
        let mut list = vec![
            org(1, "a", 0, 0),
            org(2, "b", 1, 1),
            org(3, "C", 3, 0),
            org(4, "c", 0, 0),
        ];
        by_open_findings(&mut list);
        let ids: Vec<i64> = list.iter().map(|o| o.id).collect();
        assert_eq!(ids, vec![3, 2, 1, 4]);
    }
}
