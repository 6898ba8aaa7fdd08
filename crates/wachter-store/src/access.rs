//! Who may read the case: users with their roles, browser sessions and API tokens.
//!
//! The store keeps only what cannot be turned back into a secret: Argon2id PHC strings for
//! passwords (hashed by the caller, `wachter-web`), and SHA-256 hex digests of session
//! tokens, their CSRF tokens and API tokens (high-entropy random values, for which a fast
//! hash is enough). Hashing is the caller's job so this crate needs no password code; it
//! compares digests only.
//!
//! Times (`now`, `expires_at`) are `wachter_core::stamp::utc` text, which sorts as it
//! reads on both engines; the store compares them as text. Names are matched like
//! organisation names ([`same_name`]): folded in Rust, so both engines agree on non-ASCII.

use serde::Serialize;

use crate::db::{Db, Row, vals};
use crate::notify::{returned_id, timestamp_now};
use crate::{Store, StoreError, same_name};

/// A user as stored (without the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    /// `viewer`, `analyst` or `admin`.
    pub role: String,
    pub created_at: String,
    pub disabled: bool,
}

/// A user with the PHC string to check a password against.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: UserRow,
    pub password_hash: String,
}

/// A live session and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub user: UserRow,
    /// The digest of the session's CSRF token (the web crate derives the token itself from
    /// the cookie value, and never stores it).
    pub csrf_digest: String,
    pub expires_at: String,
}

/// An API token as listed (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRow {
    pub id: i64,
    pub user: String,
    pub name: String,
    /// `read` (GET the API) or `write` (also the actions an analyst may take).
    pub scope: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token presented with a request, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub token: TokenRow,
    pub user: UserRow,
}

impl Store {
    /// Adds a user. A name already taken (case-insensitive) is a `Conflict`.
    pub fn add_user(&self, name: &str, password_hash: &str, role: &str) -> Result<i64, StoreError> {
        self.db.write(|db| {
            if user_id(db, name)?.is_some() {
                return Err(StoreError::Conflict {
                    location: db.location().to_string(),
                    detail: format!("a user called {name:?} already exists"),
                });
            }
            let row = db.query_one(
                "INSERT INTO users (name, password_hash, role, created_at, disabled) VALUES (?1, ?2, ?3, ?4, 0) RETURNING id",
                vals![name, password_hash, role, timestamp_now()],
            )?;
            returned_id(db, row)
        })
    }

    /// Replaces a user's password hash and ends their sessions. Whether the user exists.
    pub fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.db.write(|db| {
            let Some(id) = user_id(db, name)? else {
                return Ok(false);
            };
            db.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                vals![password_hash, id],
            )?;
            db.execute("DELETE FROM sessions WHERE user_id = ?1", vals![id])?;
            Ok(true)
        })
    }

    /// Changes a user's role. Whether the user exists. Demoting the last enabled admin is
    /// a `Conflict` (decided under the write lock, so two admins demoting each other at
    /// once cannot leave nobody to manage users).
    pub fn set_role(&self, name: &str, role: &str) -> Result<bool, StoreError> {
        self.db.write(|db| {
            let Some(id) = user_id(db, name)? else {
                return Ok(false);
            };
            if role != ADMIN {
                keep_an_admin(db, id, name, "demoted")?;
            }
            db.execute("UPDATE users SET role = ?1 WHERE id = ?2", vals![role, id])?;
            Ok(true)
        })
    }

    /// Disables or enables a user. Whether the user exists. Disabling ends the user's
    /// sessions (their API tokens stop working while disabled and work again once enabled);
    /// disabling the last enabled admin is a `Conflict` (see [`Store::set_role`]).
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        self.db.write(|db| {
            let Some(id) = user_id(db, name)? else {
                return Ok(false);
            };
            if disabled {
                keep_an_admin(db, id, name, "disabled")?;
                db.execute("DELETE FROM sessions WHERE user_id = ?1", vals![id])?;
            }
            db.execute(
                "UPDATE users SET disabled = ?1 WHERE id = ?2",
                vals![i64::from(disabled), id],
            )?;
            Ok(true)
        })
    }

    /// Removes a user with their sessions and tokens. Whether the user existed. Removing
    /// the last enabled admin is a `Conflict` (see [`Store::set_role`]).
    pub fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        self.db.write(|db| {
            let Some(id) = user_id(db, name)? else {
                return Ok(false);
            };
            keep_an_admin(db, id, name, "removed")?;
            // Explicitly, not by `ON DELETE CASCADE`: a SQLite connection opened without
            // `PRAGMA foreign_keys` (another tool, an old build) would not cascade.
            db.execute("DELETE FROM sessions WHERE user_id = ?1", vals![id])?;
            db.execute("DELETE FROM api_tokens WHERE user_id = ?1", vals![id])?;
            db.execute("DELETE FROM users WHERE id = ?1", vals![id])?;
            Ok(true)
        })
    }

    /// Users by name.
    pub fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let mut users = self
            .db
            .query(&format!("SELECT {USER_COLUMNS} FROM users u"), vals![])?
            .iter()
            .map(|row| user_row(&self.db, row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here: the engines' collations disagree on case and non-ASCII.
        users.sort_by(|a, b| {
            same_name(&a.name)
                .cmp(&same_name(&b.name))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(users)
    }

    /// A user and their password hash, by name (case-insensitive).
    pub fn user_credentials(&self, name: &str) -> Result<Option<UserCredentials>, StoreError> {
        let Some(id) = user_id(&self.db, name)? else {
            return Ok(None);
        };
        let row = self.db.query_one(
            &format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.id = ?1"),
            vals![id],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(UserCredentials {
            user: user_row(&self.db, &row, 0)?,
            password_hash: row.text(5).map_err(|e| self.db.column_error(e))?,
        }))
    }

    /// Records a session: the digest of its cookie value, the digest of its CSRF token,
    /// when it ends.
    pub fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_digest: &str,
        expires_at: &str,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            vals![token_hash, user_id, csrf_digest, timestamp_now(), expires_at],
        )?;
        Ok(())
    }

    /// The session with this digest, if it has not expired at `now` and its user is enabled.
    pub fn session(&self, token_hash: &str, now: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = self.db.query_one(
            &format!(
                "SELECT {USER_COLUMNS}, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0"
            ),
            vals![token_hash, now],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let col = |e| self.db.column_error(e);
        Ok(Some(SessionRow {
            user: user_row(&self.db, &row, 0)?,
            csrf_digest: row.text(5).map_err(col)?,
            expires_at: row.text(6).map_err(col)?,
        }))
    }

    /// Ends a session. Whether it existed.
    pub fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let deleted = self.db.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            vals![token_hash],
        )?;
        Ok(deleted > 0)
    }

    /// Removes sessions expired at `now`; how many.
    pub fn prune_sessions(&self, now: &str) -> Result<u64, StoreError> {
        self.db
            .execute("DELETE FROM sessions WHERE expires_at <= ?1", vals![now])
    }

    /// Records an API token for a user (by name); returns its id. `None` if no such user.
    pub fn add_token(
        &self,
        user: &str,
        name: &str,
        token_hash: &str,
        scope: &str,
        expires_at: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        self.db.write(|db| {
            let Some(user_id) = user_id(db, user)? else {
                return Ok(None);
            };
            let row = db.query_one(
                "INSERT INTO api_tokens (user_id, name, token_hash, scope, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                vals![user_id, name, token_hash, scope, timestamp_now(), expires_at],
            )?;
            returned_id(db, row).map(Some)
        })
    }

    /// Tokens, newest first (revoked ones too, marked).
    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.db
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC"
                ),
                vals![],
            )?
            .iter()
            .map(|row| token_row(&self.db, row))
            .collect()
    }

    /// Revokes a token at `now`. Whether a live token was revoked.
    pub fn revoke_token(&self, id: i64, now: &str) -> Result<bool, StoreError> {
        let revoked = self.db.execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            vals![id, now],
        )?;
        Ok(revoked > 0)
    }

    /// The live token with this digest (not revoked, not expired at `now`, user enabled),
    /// and notes its use.
    pub fn use_token(&self, token_hash: &str, now: &str) -> Result<Option<TokenGrant>, StoreError> {
        let row = self.db.query_one(
            &format!(
                "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = ?1 AND t.revoked_at IS NULL \
                 AND (t.expires_at IS NULL OR t.expires_at > ?2) AND u.disabled = 0"
            ),
            vals![token_hash, now],
        )?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut token = token_row(&self.db, &row)?;
        let user = user_row(&self.db, &row, TOKEN_COLUMN_COUNT)?;
        // At most one write a minute per token: a script polling the API should not queue
        // behind a scan's writer on every request for a timestamp.
        let minute = minute_floor(now);
        let noted = self.db.execute(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
            vals![token.id, now, minute],
        )?;
        if noted > 0 {
            token.last_used_at = Some(now.to_string());
        }
        Ok(Some(TokenGrant { token, user }))
    }
}

/// The role that manages users.
const ADMIN: &str = "admin";

/// `Conflict` if user `id` is an enabled admin and no other enabled admin exists: the
/// change (`demoted` or `removed`) would leave nobody able to manage users. Called inside
/// the change's write transaction.
fn keep_an_admin(db: &Db, id: i64, name: &str, change: &str) -> Result<(), StoreError> {
    let col = |e| db.column_error(e);
    let rows = db.query(
        "SELECT id FROM users WHERE role = ?1 AND disabled = 0",
        vals![ADMIN],
    )?;
    let mut admins = Vec::with_capacity(rows.len());
    for row in &rows {
        admins.push(row.int(0).map_err(col)?);
    }
    if admins == [id] {
        return Err(StoreError::Conflict {
            location: db.location().to_string(),
            detail: format!(
                "{name:?} is the only enabled admin and cannot be {change}; make another user admin first"
            ),
        });
    }
    Ok(())
}

/// The columns [`user_row`] reads, from `users u`.
const USER_COLUMNS: &str = "u.id, u.name, u.role, u.created_at, u.disabled";

/// The columns [`token_row`] reads, from `api_tokens t JOIN users u`.
const TOKEN_COLUMNS: &str =
    "t.id, u.name, t.name, t.scope, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";
const TOKEN_COLUMN_COUNT: usize = 8;

fn user_row(db: &Db, row: &Row, first: usize) -> Result<UserRow, StoreError> {
    let col = |e| db.column_error(e);
    Ok(UserRow {
        id: row.int(first).map_err(col)?,
        name: row.text(first + 1).map_err(col)?,
        role: row.text(first + 2).map_err(col)?,
        created_at: row.text(first + 3).map_err(col)?,
        disabled: row.int(first + 4).map_err(col)? != 0,
    })
}

fn token_row(db: &Db, row: &Row) -> Result<TokenRow, StoreError> {
    let col = |e| db.column_error(e);
    Ok(TokenRow {
        id: row.int(0).map_err(col)?,
        user: row.text(1).map_err(col)?,
        name: row.text(2).map_err(col)?,
        scope: row.text(3).map_err(col)?,
        created_at: row.text(4).map_err(col)?,
        expires_at: row.opt_text(5).map_err(col)?,
        last_used_at: row.opt_text(6).map_err(col)?,
        revoked_at: row.opt_text(7).map_err(col)?,
    })
}

/// The id of the user called `name` (case-insensitive). The users table is small (people,
/// not hosts), so it is read whole and compared in Rust, the same on both engines.
fn user_id(db: &Db, name: &str) -> Result<Option<i64>, StoreError> {
    let wanted = same_name(name);
    let col = |e| db.column_error(e);
    for row in db.query("SELECT id, name FROM users", vals![])? {
        if same_name(&row.text(1).map_err(col)?) == wanted {
            return Ok(Some(row.int(0).map_err(col)?));
        }
    }
    Ok(None)
}

/// `2026-01-01T10:05:33Z` → `2026-01-01T10:05:00Z` (anything shorter is kept as it is).
fn minute_floor(now: &str) -> String {
    match now.get(..16) {
        Some(minute) if now.len() >= 17 => format!("{minute}:00Z"),
        _ => now.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `case` on a fresh SQLite file, then on a fresh PostgreSQL database when the
    /// suite has a server.
    fn on_each_backend(name: &str, case: impl Fn(&str)) {
        crate::tests::on_each_backend_in("access", name, case);
    }

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    const MORNING: &str = "2026-03-01T08:00:00Z";
    const NOON: &str = "2026-03-01T12:00:00Z";
    const EVENING: &str = "2026-03-01T20:00:00Z";

    fn disable(store: &Store, name: &str) {
        store
            .db
            .execute("UPDATE users SET disabled = 1 WHERE name = ?1", vals![name])
            .unwrap();
    }

    /// A new store at `path` with the users alice and bob in these roles; their ids.
    fn alice_and_bob(path: &str, alice_role: &str, bob_role: &str) -> (Store, i64, i64) {
        let store = Store::open(path).unwrap();
        let alice = store.add_user("alice", HASH, alice_role).unwrap();
        let bob = store.add_user("bob", HASH, bob_role).unwrap();
        (store, alice, bob)
    }

    fn names(store: &Store) -> Vec<String> {
        store.users().unwrap().into_iter().map(|u| u.name).collect()
    }

    #[test]
    fn user_names_are_unique_whatever_their_case() {
        on_each_backend("unique_names", |path| {
            let store = Store::open(path).unwrap();
            let alice = store.add_user("alice", HASH, "admin").unwrap();
            store.add_user("Bob", "other", "viewer").unwrap();
            for taken in ["alice", "ALICE", " Alice "] {
                let refused = store.add_user(taken, HASH, "viewer");
                assert!(
                    matches!(refused, Err(StoreError::Conflict { .. })),
                    "{taken}: {refused:?}"
                );
            }
            assert_eq!(
                names(&store),
                ["alice", "Bob"],
                "by name, case-insensitively"
            );
            let users = store.users().unwrap();
            assert_eq!(users[0].id, alice);
            assert_eq!(users[0].role, "admin");
            assert!(!users[0].disabled);
            assert_eq!(users[0].created_at.len(), "2026-03-01T08:00:00Z".len());

            let credentials = store.user_credentials("ALICE").unwrap().unwrap();
            assert_eq!(credentials.user, users[0]);
            assert_eq!(credentials.password_hash, HASH);
            assert!(store.user_credentials("carol").unwrap().is_none());
        });
    }

    #[test]
    fn roles_and_passwords_change_and_a_new_password_ends_sessions() {
        on_each_backend("passwords", |path| {
            let (store, alice, bob) = alice_and_bob(path, "viewer", "viewer");
            store
                .create_session("a1", alice, "csrf-a", EVENING)
                .unwrap();
            store.create_session("b1", bob, "csrf-b", EVENING).unwrap();

            assert!(store.set_role("Alice", "analyst").unwrap());
            assert!(!store.set_role("carol", "admin").unwrap());
            assert!(store.set_password("ALICE", "new-hash").unwrap());
            assert!(!store.set_password("carol", "new-hash").unwrap());

            let credentials = store.user_credentials("alice").unwrap().unwrap();
            assert_eq!(credentials.password_hash, "new-hash");
            assert_eq!(credentials.user.role, "analyst");
            assert!(store.session("a1", NOON).unwrap().is_none(), "ended");
            assert!(store.session("b1", NOON).unwrap().is_some(), "others kept");
        });
    }

    #[test]
    fn a_removed_user_takes_their_sessions_and_tokens_along() {
        on_each_backend("remove_user", |path| {
            let (store, alice, bob) = alice_and_bob(path, "admin", "admin");
            store.create_session("a1", alice, "csrf", EVENING).unwrap();
            store.create_session("b1", bob, "csrf", EVENING).unwrap();
            store.add_token("alice", "ci", "ta", "read", None).unwrap();
            store.add_token("bob", "ci", "tb", "read", None).unwrap();

            assert!(store.remove_user("ALICE").unwrap());
            assert!(!store.remove_user("alice").unwrap(), "already gone");
            assert_eq!(names(&store), ["bob"]);
            assert!(store.session("a1", NOON).unwrap().is_none());
            assert!(store.use_token("ta", NOON).unwrap().is_none());
            let left: Vec<String> = store
                .tokens()
                .unwrap()
                .into_iter()
                .map(|t| t.user)
                .collect();
            assert_eq!(left, ["bob"]);
            let sessions = store
                .db
                .query("SELECT COUNT(*) FROM sessions", vals![])
                .unwrap();
            assert_eq!(sessions[0].int(0).unwrap(), 1);
            // The name is free again.
            store.add_user("Alice", HASH, "viewer").unwrap();
        });
    }

    #[test]
    fn the_last_enabled_admin_is_neither_demoted_nor_removed() {
        on_each_backend("last_admin", |path| {
            let (store, _, _) = alice_and_bob(path, "admin", "admin");
            store.add_user("carol", HASH, "viewer").unwrap();
            let role = |name: &str| {
                store
                    .user_credentials(name)
                    .unwrap()
                    .map(|c| c.user.role)
                    .unwrap_or_default()
            };
            let refused = |result: Result<bool, StoreError>, case: &str| match result {
                Err(StoreError::Conflict { detail, .. }) => {
                    assert!(detail.contains("only enabled admin"), "{case}: {detail}")
                }
                other => panic!("{case}: {other:?}"),
            };
            // Two admins: one may go; the other then stays, whatever the spelling.
            assert!(store.set_role("alice", "analyst").unwrap());
            refused(store.set_role("BOB", "viewer"), "demote the last");
            refused(store.remove_user(" bob "), "remove the last");
            assert!(store.set_role("bob", "admin").unwrap(), "admin stays admin");
            // Others change freely; a viewer is removed freely.
            assert!(store.set_role("carol", "analyst").unwrap());
            assert!(store.remove_user("carol").unwrap());
            // A disabled admin does not count as one left.
            assert!(store.set_role("alice", "admin").unwrap());
            disable(&store, "alice");
            refused(
                store.set_role("bob", "viewer"),
                "the other admin is disabled",
            );
            assert!(
                store.set_role("alice", "viewer").unwrap(),
                "disabled, not last"
            );
            assert_eq!(
                (role("alice"), role("bob")),
                ("viewer".into(), "admin".into())
            );
            // A store with no enabled admin at all (made by hand) still lets users change.
            disable(&store, "bob");
            assert!(store.set_role("bob", "viewer").unwrap());
            assert!(store.remove_user("alice").unwrap());
        });
    }

    #[test]
    fn disabling_a_user_ends_their_sessions_but_never_the_last_admin() {
        on_each_backend("disable", |path| {
            let (store, alice, bob) = alice_and_bob(path, "admin", "viewer");
            store.create_session("a1", alice, "csrf", EVENING).unwrap();
            store.create_session("b1", bob, "csrf", EVENING).unwrap();
            store.add_token("bob", "ci", "tb", "read", None).unwrap();
            let disabled = |name: &str| {
                store
                    .user_credentials(name)
                    .unwrap()
                    .map(|c| c.user.disabled)
            };

            assert!(store.set_disabled("BOB", true).unwrap());
            assert_eq!(disabled("bob"), Some(true));
            assert!(store.session("b1", NOON).unwrap().is_none(), "ended");
            assert!(store.use_token("tb", NOON).unwrap().is_none(), "refused");
            assert!(store.set_disabled("bob", true).unwrap(), "already disabled");
            assert!(!store.set_disabled("carol", true).unwrap(), "no such user");

            // Enabled again: the token works, the ended session stays ended.
            assert!(store.set_disabled("bob", false).unwrap());
            assert_eq!(disabled("bob"), Some(false));
            assert!(store.use_token("tb", NOON).unwrap().is_some());
            assert!(store.session("b1", NOON).unwrap().is_none());

            // The only enabled admin stays enabled, with their sessions.
            match store.set_disabled(" Alice ", true) {
                Err(StoreError::Conflict { detail, .. }) => {
                    assert!(detail.contains("cannot be disabled"), "{detail}")
                }
                other => panic!("the last admin: {other:?}"),
            }
            assert_eq!(disabled("alice"), Some(false));
            assert!(store.session("a1", NOON).unwrap().is_some());
            // With a second admin, either may be disabled (and enabling never conflicts).
            assert!(store.set_role("bob", "admin").unwrap());
            assert!(store.set_disabled("alice", true).unwrap());
            assert!(store.set_disabled("alice", false).unwrap());
        });
    }

    #[test]
    fn sessions_last_until_they_expire_and_only_for_enabled_users() {
        on_each_backend("sessions", |path| {
            let (store, alice, bob) = alice_and_bob(path, "analyst", "viewer");
            store
                .create_session("long", alice, "csrf-long", EVENING)
                .unwrap();
            store
                .create_session("short", alice, "csrf-short", NOON)
                .unwrap();
            store
                .create_session("bobs", bob, "csrf-bob", EVENING)
                .unwrap();

            let session = store.session("long", MORNING).unwrap().unwrap();
            assert_eq!(session.user.name, "alice");
            assert_eq!(session.user.role, "analyst");
            assert_eq!(session.csrf_digest, "csrf-long");
            assert_eq!(session.expires_at, EVENING);
            assert!(store.session("short", MORNING).unwrap().is_some());
            assert!(
                store.session("short", NOON).unwrap().is_none(),
                "expired at its end"
            );
            assert!(store.session("unknown", MORNING).unwrap().is_none());

            disable(&store, "bob");
            assert!(
                store.session("bobs", MORNING).unwrap().is_none(),
                "disabled user"
            );

            assert_eq!(store.prune_sessions(NOON).unwrap(), 1);
            assert_eq!(store.prune_sessions(NOON).unwrap(), 0);
            assert!(store.delete_session("long").unwrap());
            assert!(!store.delete_session("long").unwrap());
            assert!(store.session("long", MORNING).unwrap().is_none());
        });
    }

    #[test]
    fn tokens_are_listed_without_secrets_and_refused_once_dead() {
        on_each_backend("tokens", |path| {
            let (store, _, _) = alice_and_bob(path, "analyst", "viewer");
            assert_eq!(
                store.add_token("carol", "x", "tc", "read", None).unwrap(),
                None
            );
            let ci = store
                .add_token("ALICE", "ci", "digest-ci", "write", None)
                .unwrap()
                .unwrap();
            let brief = store
                .add_token("alice", "brief", "digest-brief", "read", Some(NOON))
                .unwrap()
                .unwrap();
            let bobs = store
                .add_token("bob", "", "digest-bob", "read", None)
                .unwrap()
                .unwrap();

            let listed = store.tokens().unwrap();
            let ids: Vec<i64> = listed.iter().map(|t| t.id).collect();
            assert_eq!(ids, [bobs, brief, ci], "newest first");
            let json = serde_json::to_string(&listed).unwrap();
            assert!(!json.contains("digest-"), "no digest in a listing: {json}");
            assert_eq!(listed[2].user, "alice", "the stored name");
            assert_eq!(listed[2].scope, "write");
            assert_eq!(listed[1].expires_at.as_deref(), Some(NOON));

            let grant = store.use_token("digest-ci", MORNING).unwrap().unwrap();
            assert_eq!(grant.token.id, ci);
            assert_eq!(grant.user.name, "alice");
            assert_eq!(grant.user.role, "analyst");
            assert_eq!(grant.token.last_used_at.as_deref(), Some(MORNING));
            let noted = |id| {
                store
                    .tokens()
                    .unwrap()
                    .into_iter()
                    .find(|t| t.id == id)
                    .unwrap()
                    .last_used_at
            };
            assert_eq!(noted(ci).as_deref(), Some(MORNING));
            // Within the same minute, no new write; a later minute is noted.
            store
                .use_token("digest-ci", "2026-03-01T08:00:40Z")
                .unwrap()
                .unwrap();
            assert_eq!(noted(ci).as_deref(), Some(MORNING));
            store.use_token("digest-ci", NOON).unwrap().unwrap();
            assert_eq!(noted(ci).as_deref(), Some(NOON));

            assert!(store.use_token("digest-brief", MORNING).unwrap().is_some());
            assert!(
                store.use_token("digest-brief", NOON).unwrap().is_none(),
                "expired"
            );
            assert!(store.use_token("nothing", MORNING).unwrap().is_none());

            assert!(store.revoke_token(ci, EVENING).unwrap());
            assert!(!store.revoke_token(ci, EVENING).unwrap(), "already revoked");
            assert!(!store.revoke_token(9_999, EVENING).unwrap());
            assert!(
                store.use_token("digest-ci", MORNING).unwrap().is_none(),
                "revoked"
            );
            let revoked = store
                .tokens()
                .unwrap()
                .into_iter()
                .find(|t| t.id == ci)
                .unwrap();
            assert_eq!(revoked.revoked_at.as_deref(), Some(EVENING));

            assert!(store.use_token("digest-bob", MORNING).unwrap().is_some());
            disable(&store, "bob");
            assert!(
                store.use_token("digest-bob", MORNING).unwrap().is_none(),
                "disabled"
            );
        });
    }

    #[test]
    fn minutes_are_floored_as_text() {
        assert_eq!(minute_floor("2026-03-01T08:05:33Z"), "2026-03-01T08:05:00Z");
        assert_eq!(minute_floor("short"), "short");
    }
}
