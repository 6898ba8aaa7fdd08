//! The campaigns, and one campaign: who was told when, who is still open, and the forms
//! that retry or cancel its messages ([`OutboxAction`], the same as the API's).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use wachter_store::Store;
use wachter_store::view::{CampaignDetail, CampaignSummary, MessageView};

use super::{
    Flash, HostRowView, StateCountView, csv_href, host_rows, load, pretty_json, redirect_done,
    render, state_counts,
};
use crate::AppState;
use crate::auth::{CsrfForm, CurrentUser, NoFields, PageUser};
use crate::error::{PageError, WebError};
use crate::outbox::OutboxAction;
use crate::query::positive_id;

#[derive(Serialize)]
struct CampaignSummaryView {
    id: i64,
    name: String,
    cve: String,
    created_at: String,
    tlp: String,
    language: String,
    message_states: Vec<StateCountView>,
    findings_told: u64,
    still_open: u64,
}

impl From<CampaignSummary> for CampaignSummaryView {
    fn from(c: CampaignSummary) -> Self {
        CampaignSummaryView {
            id: c.id,
            name: c.name,
            cve: c.cve,
            created_at: c.created_at,
            tlp: c.tlp,
            language: c.language,
            message_states: state_counts(c.messages),
            findings_told: c.findings_told,
            still_open: c.still_open,
        }
    }
}

#[derive(Serialize)]
struct CampaignsPage {
    campaigns: Vec<CampaignSummaryView>,
}

impl From<Vec<CampaignSummary>> for CampaignsPage {
    fn from(campaigns: Vec<CampaignSummary>) -> Self {
        CampaignsPage {
            campaigns: campaigns.into_iter().map(Into::into).collect(),
        }
    }
}

pub(super) async fn list(
    State(state): State<AppState>,
    PageUser(user): PageUser,
) -> Result<Response, PageError> {
    let campaigns = state.pool.run(|store| store.campaign_summaries()).await?;
    render(
        &user,
        "campaigns",
        "campaigns.html",
        CampaignsPage::from(campaigns),
    )
}

/// One campaign; analysts (`user.analyst`) also get the retry and cancel buttons.
#[derive(Serialize)]
struct CampaignView {
    summary: CampaignSummaryView,
    decisions: String,
    messages: Vec<MessageView>,
    /// The first still open findings (at most the store's page cap) and how many there are.
    still_open: Vec<HostRowView>,
    still_open_total: u64,
    /// The whole still-open list: the host list filtered by this campaign, and its CSV.
    still_open_href: String,
    still_open_csv: String,
    #[serde(flatten)]
    flash: Flash,
}

#[derive(Serialize)]
struct CampaignPage {
    campaign: CampaignView,
}

impl CampaignPage {
    fn new(detail: CampaignDetail, flash: Flash) -> CampaignPage {
        let filters = still_open_filters(detail.summary.id);
        CampaignPage {
            campaign: CampaignView {
                summary: detail.summary.into(),
                decisions: pretty_json(&detail.decisions),
                messages: detail.messages,
                still_open: host_rows(detail.still_open),
                still_open_total: detail.still_open_total,
                still_open_href: format!("/hosts?{filters}"),
                still_open_csv: csv_href("hosts", &filters),
                flash,
            },
        }
    }
}

/// The host-list filters of a campaign's findings still open.
fn still_open_filters(campaign: i64) -> String {
    format!("campaign={campaign}&state=open")
}

pub(super) async fn one(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    flash: Flash,
) -> Result<Response, PageError> {
    let detail = load(&state, &id, Store::campaign_detail).await?;
    render(
        &user,
        "campaigns",
        "campaign.html",
        CampaignPage::new(detail, flash),
    )
}

pub(super) async fn retry_message(
    State(state): State<AppState>,
    Path((id, ticket)): Path<(String, String)>,
    CsrfForm(PageUser(user), NoFields {}): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    act_on_message(state, user, &id, ticket, OutboxAction::Retry).await
}

pub(super) async fn cancel_message(
    State(state): State<AppState>,
    Path((id, ticket)): Path<(String, String)>,
    CsrfForm(PageUser(user), NoFields {}): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    act_on_message(state, user, &id, ticket, OutboxAction::Cancel).await
}

/// Retries or cancels one message of a campaign, then back to the campaign.
async fn act_on_message(
    state: AppState,
    user: CurrentUser,
    id: &str,
    ticket: String,
    action: OutboxAction,
) -> Result<Response, PageError> {
    let id = positive_id(id);
    // The ticket must be one of this campaign's messages: a form for one campaign never
    // acts on another's.
    let belongs = move |store: &Store, ticket: &str| {
        let Some(id) = id else { return Ok(false) };
        Ok(store.message_campaign(ticket)? == Some(id))
    };
    let changed = action.apply(&state.pool, &user, ticket, belongs).await?;
    let done = match (changed, action) {
        (0, _) => "unchanged",
        (_, OutboxAction::Retry) => "retried",
        (_, OutboxAction::Cancel) => "cancelled",
    };
    let id = id.ok_or(WebError::NotFound)?;
    Ok(redirect_done(&format!("/campaigns/{id}"), done))
}

#[cfg(test)]
pub(super) fn examples() -> Vec<(&'static str, serde_json::Value)> {
    use super::examples::{campaign_summary, context, message, row};
    let detail = CampaignDetail {
        summary: campaign_summary(),
        decisions: serde_json::json!({"queued": 1}),
        messages: vec![message("held"), message("queued"), message("sent")],
        still_open: vec![row()],
        still_open_total: 1001,
    };
    vec![
        (
            "campaigns.html",
            context("campaigns", CampaignsPage::from(vec![campaign_summary()])),
        ),
        (
            "campaign.html",
            context(
                "campaigns",
                CampaignPage::new(detail, Flash::done("retried")),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_still_open_list_links_to_all_of_it_and_says_when_it_is_capped() {
        let (_, context) = super::examples()
            .into_iter()
            .find(|(name, _)| *name == "campaign.html")
            .unwrap();
        let html = crate::templates::render("campaign.html", &context)
            .unwrap()
            .0;
        let id = context["campaign"]["summary"]["id"].as_i64().unwrap();
        let all = format!("/hosts?campaign={id}&amp;state=open");
        assert!(
            html.contains(&format!("<a id=\"still-open-link\" href=\"{all}\">")),
            "{html}"
        );
        assert!(html.contains(&format!(
            "Showing the first 1 of 1001; <a href=\"{all}\">the whole list</a>."
        )));
        assert!(html.contains(&format!(
            "class=\"download-csv\" href=\"/api/v1/hosts?format=csv&amp;campaign={id}&amp;state=open\""
        )));
    }
}
