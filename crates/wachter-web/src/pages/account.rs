//! The account page: one's own API tokens (everyone's for an admin), created with the
//! secret shown once, and revoked.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use wachter_store::TokenRow;

use super::{Flash, path_id, redirect_done, render_status};
use crate::AppState;
use crate::auth::{CsrfForm, CurrentUser, NoFields, PageUser, Role, new_token, now_stamp};
use crate::error::{PageError, WebError};

const MAX_TOKEN_NAME_CHARS: usize = 100;
const MAX_TOKEN_DAYS: i64 = 3650;

#[derive(Serialize)]
struct NewTokenView {
    name: String,
    secret: String,
    scope: String,
    expires_at: Option<String>,
}

/// The tokens, and a new one's secret right after it was made. Whether all users' tokens
/// are listed and write tokens may be made follows the role (`user.admin`,
/// `user.analyst`).
#[derive(Serialize)]
struct AccountView {
    tokens: Vec<TokenRow>,
    new_token: Option<NewTokenView>,
    #[serde(flatten)]
    flash: Flash,
}

#[derive(Serialize)]
struct AccountPage {
    account: AccountView,
}

/// The tokens this user may see: their own, or everyone's for an admin.
async fn visible_tokens(state: &AppState, user: &CurrentUser) -> Result<Vec<TokenRow>, PageError> {
    let mut tokens = state.pool.run(|store| store.tokens()).await?;
    if user.role < Role::Admin {
        tokens.retain(|t| t.user == user.name);
    }
    Ok(tokens)
}

async fn account_page(
    state: &AppState,
    user: &CurrentUser,
    flash: Flash,
    new_token: Option<NewTokenView>,
) -> Result<Response, PageError> {
    let tokens = visible_tokens(state, user).await?;
    render_status(
        flash.status,
        user,
        "account",
        "account.html",
        AccountPage {
            account: AccountView {
                tokens,
                new_token,
                flash,
            },
        },
    )
}

pub(super) async fn page(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    flash: Flash,
) -> Result<Response, PageError> {
    account_page(&state, &user, flash, None).await
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_days: String,
}

/// The token form checked: name, scope, expiry (days from now) — or what is wrong.
fn check_token_form(form: &TokenForm, role: Role) -> Result<(String, String, Option<i64>), String> {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(format!(
            "Give the token a name of 1 to {MAX_TOKEN_NAME_CHARS} characters."
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("The token name may not contain control characters.".into());
    }
    let scope = match form.scope.trim() {
        "" | "read" => "read",
        "write" if role >= Role::Analyst => "write",
        "write" => return Err("Only analysts and admins may create write tokens.".into()),
        _ => return Err("The scope is read or write.".into()),
    };
    let days = match form.expires_days.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => Some(days),
            _ => {
                return Err(format!(
                    "The expiry is a number of days from 1 to {MAX_TOKEN_DAYS}, or empty for never."
                ));
            }
        },
    };
    Ok((name.to_string(), scope.to_string(), days))
}

pub(super) async fn create_token(
    State(state): State<AppState>,
    CsrfForm(PageUser(user), form): CsrfForm<TokenForm>,
) -> Result<Response, PageError> {
    let (name, scope, days) = match check_token_form(&form, user.role) {
        Ok(checked) => checked,
        Err(problem) => {
            let flash = Flash::problem(StatusCode::BAD_REQUEST, problem);
            return account_page(&state, &user, flash, None).await;
        }
    };
    let expires_at = days.map(|days| {
        wachter_store::timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(days))
    });
    let (secret, digest) = new_token("wachter_")?;
    let owner = user.name.clone();
    let (token_name, token_scope, token_expiry) = (name.clone(), scope.clone(), expires_at.clone());
    let added = state
        .pool
        .run(move |store| {
            store.add_token(
                &owner,
                &token_name,
                &digest,
                &token_scope,
                token_expiry.as_deref(),
            )
        })
        .await?;
    if added.is_none() {
        // The user was removed while logged in.
        return Err(PageError(WebError::Unauthorized));
    }
    tracing::info!(user = %user.name, scope = %scope, "API token created");
    let new_token = NewTokenView {
        name,
        secret,
        scope,
        expires_at,
    };
    // The secret is on this page only; like every page it is sent `Cache-Control:
    // no-store` (`security::headers`), so no cache keeps it.
    account_page(&state, &user, Flash::default(), Some(new_token)).await
}

pub(super) async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm(PageUser(user), NoFields {}): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let id = path_id(&id)?;
    // Only a token this user may see can be revoked (their own; any for an admin).
    let visible = visible_tokens(&state, &user).await?;
    if !visible.iter().any(|t| t.id == id) {
        return Err(PageError(WebError::NotFound));
    }
    let now = now_stamp();
    let revoked = state
        .pool
        .run(move |store| store.revoke_token(id, &now))
        .await?;
    tracing::info!(user = %user.name, token = id, revoked, "API token revoked");
    Ok(redirect_done("/account", "revoked"))
}

#[cfg(test)]
pub(super) fn examples() -> Vec<(&'static str, serde_json::Value)> {
    use super::examples::context;
    let token = TokenRow {
        id: 1,
        user: "ana".into(),
        name: "ci".into(),
        scope: "read".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    };
    let account = AccountPage {
        account: AccountView {
            tokens: vec![
                token.clone(),
                TokenRow {
                    id: 2,
                    revoked_at: Some("2026-01-02T00:00:00Z".into()),
                    ..token
                },
            ],
            new_token: Some(NewTokenView {
                name: "ci".into(),
                secret: "wachter_secret".into(),
                scope: "write".into(),
                expires_at: Some("2026-04-01T00:00:00Z".into()),
            }),
            flash: Flash::problem(StatusCode::BAD_REQUEST, "bad"),
        },
    };
    vec![("account.html", context("account", account))]
}
