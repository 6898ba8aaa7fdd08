//! The users page (admins only): list, add, change a role, remove. An admin can neither
//! demote nor remove themselves (compared by user id), and the store refuses, under its
//! write lock, to demote or remove the last enabled admin (two admins demoting each other
//! at once): there is always someone left to manage users.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use wachter_store::StoreError;

use super::{Flash, Refusal, after_form, render_status};
use crate::AppState;
use crate::auth::{
    CsrfForm, CurrentUser, MIN_PASSWORD_CHARS, PageUser, Role, check_new_password, check_user_name,
    hash_password,
};
use crate::error::{PageError, WebError};

/// Where the forms of this page post from, and are sent back to.
const USERS_PAGE: &str = "/admin/users";

#[derive(Serialize)]
struct UserView {
    name: String,
    role: String,
    created_at: String,
    disabled: bool,
    is_self: bool,
}

#[derive(Serialize)]
struct AdminView {
    users: Vec<UserView>,
    roles: Vec<&'static str>,
    min_password: usize,
    #[serde(flatten)]
    flash: Flash,
}

#[derive(Serialize)]
struct AdminPage {
    admin: AdminView,
}

impl AdminPage {
    fn new(users: Vec<UserView>, flash: Flash) -> AdminPage {
        AdminPage {
            admin: AdminView {
                users,
                roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
                min_password: MIN_PASSWORD_CHARS,
                flash,
            },
        }
    }
}

async fn admin_page(
    state: &AppState,
    user: &CurrentUser,
    flash: Flash,
) -> Result<Response, PageError> {
    let users = state.pool.run(|store| store.users()).await?;
    let users = users
        .into_iter()
        .map(|u| UserView {
            is_self: u.id == user.id,
            name: u.name,
            role: u.role,
            created_at: u.created_at,
            disabled: u.disabled,
        })
        .collect();
    let status = flash.status;
    render_status(
        status,
        user,
        "admin",
        "admin_users.html",
        AdminPage::new(users, flash),
    )
}

pub(super) async fn page(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    flash: Flash,
) -> Result<Response, PageError> {
    user.require(Role::Admin, true)?;
    admin_page(&state, &user, flash).await
}

/// A user name the form accepts ([`check_user_name`], the rule `wachter user` applies).
fn checked_user_name(name: &str) -> Result<String, Refusal> {
    check_user_name(name)
        .map(|()| name.to_string())
        .map_err(|problem| Refusal::bad_request(format!("The user name {problem}.")))
}

/// A password the form accepts ([`check_new_password`], the rule `wachter user` applies).
fn checked_password(password: &str) -> Result<(), Refusal> {
    check_new_password(password)
        .map_err(|problem| Refusal::bad_request(format!("The password {problem}.")))
}

fn parse_role(role: &str) -> Result<Role, Refusal> {
    role.trim()
        .parse()
        .map_err(|e: WebError| Refusal::bad_request(e.to_string()))
}

/// What became of a change to another user (a role, a removal).
enum Change {
    Done,
    NoSuchUser,
    /// The form named the acting admin.
    Yourself,
    /// The store refused: the change would leave no enabled admin.
    LastAdmin(String),
}

/// Applies `change` to the user the form names, unless that is `admin` (by id: the same
/// user whatever the spelling of the name). Runs on one store handle.
async fn change_other_user(
    state: &AppState,
    admin: &CurrentUser,
    name: &str,
    change: impl FnOnce(&wachter_store::Store, &str) -> Result<bool, StoreError> + Send + 'static,
) -> Result<Change, WebError> {
    let name = name.trim().to_string();
    let admin_id = admin.id;
    let outcome = state
        .pool
        .run(move |store| {
            let wanted = wachter_store::same_name(&name);
            let target = store
                .users()?
                .into_iter()
                .find(|u| wachter_store::same_name(&u.name) == wanted);
            match target {
                None => Ok(Change::NoSuchUser),
                Some(user) if user.id == admin_id => Ok(Change::Yourself),
                Some(_) => match change(store, &name) {
                    Ok(true) => Ok(Change::Done),
                    Ok(false) => Ok(Change::NoSuchUser),
                    Err(StoreError::Conflict { detail, .. }) => Ok(Change::LastAdmin(detail)),
                    Err(e) => Err(e),
                },
            }
        })
        .await?;
    Ok(outcome)
}

/// The refusal for a change that did not happen (`yourself` says why for the admin's own
/// name); `Ok` when it did.
fn refusal(change: Change, name: &str, yourself: &str) -> Result<(), Refusal> {
    match change {
        Change::Done => Ok(()),
        Change::NoSuchUser => Err(no_such_user(name.trim())),
        Change::Yourself => Err(Refusal::bad_request(yourself)),
        Change::LastAdmin(detail) => Err(Refusal::new(StatusCode::CONFLICT, detail)),
    }
}

fn no_such_user(name: &str) -> Refusal {
    Refusal::new(
        StatusCode::NOT_FOUND,
        format!("There is no user named {name:?}."),
    )
}

#[derive(Deserialize)]
pub(super) struct NewUserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

pub(super) async fn add_user(
    State(state): State<AppState>,
    CsrfForm(PageUser(user), form): CsrfForm<NewUserForm>,
) -> Result<Response, PageError> {
    let outcome = adding_user(&state, &user, form).await;
    after_form(outcome, USERS_PAGE, |flash| {
        admin_page(&state, &user, flash)
    })
    .await
}

async fn adding_user(
    state: &AppState,
    admin: &CurrentUser,
    form: NewUserForm,
) -> Result<&'static str, Refusal> {
    admin.require(Role::Admin, true)?;
    let name = checked_user_name(&form.name)?;
    checked_password(&form.password)?;
    let role = parse_role(&form.role)?;
    let password = form.password;
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| WebError::Internal(format!("password hashing task: {e}")))??;
    let new_name = name.clone();
    let added = state
        .pool
        .run(
            move |store| match store.add_user(&new_name, &phc, role.as_str()) {
                Ok(_) => Ok(true),
                Err(StoreError::Conflict { .. }) => Ok(false),
                Err(e) => Err(e),
            },
        )
        .await?;
    if !added {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            format!("There is already a user named {name:?}."),
        ));
    }
    tracing::info!(admin = %admin.name, user = %name, role = %role, "user added");
    Ok("added")
}

#[derive(Deserialize)]
pub(super) struct RoleForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

pub(super) async fn set_role(
    State(state): State<AppState>,
    CsrfForm(PageUser(user), form): CsrfForm<RoleForm>,
) -> Result<Response, PageError> {
    let outcome = changing_role(&state, &user, form).await;
    after_form(outcome, USERS_PAGE, |flash| {
        admin_page(&state, &user, flash)
    })
    .await
}

async fn changing_role(
    state: &AppState,
    admin: &CurrentUser,
    form: RoleForm,
) -> Result<&'static str, Refusal> {
    admin.require(Role::Admin, true)?;
    let role = parse_role(&form.role)?;
    // An admin who demotes themselves may leave nobody to manage users.
    let change = change_other_user(state, admin, &form.name, move |store, name| {
        store.set_role(name, role.as_str())
    })
    .await?;
    refusal(
        change,
        &form.name,
        "You cannot change your own role; ask another admin.",
    )?;
    tracing::info!(admin = %admin.name, user = %form.name.trim(), role = %role, "role changed");
    Ok("role")
}

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    #[serde(default)]
    name: String,
}

pub(super) async fn remove_user(
    State(state): State<AppState>,
    CsrfForm(PageUser(user), form): CsrfForm<RemoveForm>,
) -> Result<Response, PageError> {
    let outcome = removing_user(&state, &user, form).await;
    after_form(outcome, USERS_PAGE, |flash| {
        admin_page(&state, &user, flash)
    })
    .await
}

async fn removing_user(
    state: &AppState,
    admin: &CurrentUser,
    form: RemoveForm,
) -> Result<&'static str, Refusal> {
    admin.require(Role::Admin, true)?;
    let change = change_other_user(state, admin, &form.name, |store, name| {
        store.remove_user(name)
    })
    .await?;
    refusal(change, &form.name, "You cannot remove yourself.")?;
    tracing::info!(admin = %admin.name, user = %form.name.trim(), "user removed");
    Ok("removed")
}

#[cfg(test)]
pub(super) fn examples() -> Vec<(&'static str, serde_json::Value)> {
    let users = vec![UserView {
        name: "ana".into(),
        role: "admin".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        disabled: false,
        is_self: true,
    }];
    let page = AdminPage::new(users, Flash::done("added"));
    vec![("admin_users.html", super::examples::context("admin", page))]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An admin whose own demotion raced this request: the store, not the page, keeps the
    /// last admin, and the page says why.
    #[tokio::test]
    async fn a_change_that_would_leave_no_admin_shows_the_stores_refusal() {
        let path = std::env::temp_dir()
            .join(format!("wachter-web-{}-last-admin.db", std::process::id()))
            .display()
            .to_string();
        let remove = |path: &str| {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        };
        remove(&path);
        let store = wachter_store::Store::open(&path).unwrap();
        let ada = store.add_user("ada", "$argon2id$x", "admin").unwrap();
        store.add_user("vic", "$argon2id$x", "viewer").unwrap();
        drop(store);
        let state = AppState::new(
            crate::StorePool::open(&path, 1).unwrap(),
            crate::ServeOptions::default(),
        );
        // Demoted meanwhile: the session still said admin when the request began.
        let acting = CurrentUser {
            id: ada + 1000,
            name: "ada".into(),
            role: Role::Admin,
            csrf: None,
            token_scope: None,
        };
        let ada_acting = CurrentUser {
            id: ada,
            ..acting.clone()
        };
        let role = |name: &str| RoleForm {
            name: name.into(),
            role: "viewer".into(),
        };
        let remove_form = |name: &str| RemoveForm { name: name.into() };
        let outcomes = [
            (
                "demote the last admin",
                changing_role(&state, &acting, role(" ADA ")).await,
            ),
            (
                "remove the last admin",
                removing_user(&state, &acting, remove_form("ada")).await,
            ),
            (
                "yourself, by id, whatever the spelling",
                changing_role(&state, &ada_acting, role("Ada")).await,
            ),
            (
                "nobody",
                removing_user(&state, &acting, remove_form("zed")).await,
            ),
            (
                "another user",
                removing_user(&state, &acting, remove_form("VIC")).await,
            ),
        ];
        // (done word) or (status, words in the problem shown)
        let expected: [Result<&str, (StatusCode, &str)>; 5] = [
            Err((StatusCode::CONFLICT, "only enabled admin")),
            Err((StatusCode::CONFLICT, "only enabled admin")),
            Err((StatusCode::BAD_REQUEST, "your own role")),
            Err((StatusCode::NOT_FOUND, "no user named")),
            Ok("removed"),
        ];
        for ((case, got), want) in outcomes.into_iter().zip(expected) {
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{case}"),
                (Err(Refusal::Problem(flash)), Err((status, words))) => {
                    assert_eq!(flash.status, status, "{case}");
                    let problem = flash.problem.unwrap_or_default();
                    assert!(problem.contains(words), "{case}: {problem}");
                }
                (Err(Refusal::Error(e)), _) => panic!("{case}: an error, not a problem: {e}"),
                (Ok(got), Err(want)) => panic!("{case}: done {got}, expected {want:?}"),
                (Err(Refusal::Problem(flash)), Ok(want)) => {
                    panic!("{case}: {:?}, expected {want}", flash.problem)
                }
            }
        }
        drop(state);
        remove(&path);
    }
}
