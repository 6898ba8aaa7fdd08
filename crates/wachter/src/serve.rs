//! `wachter serve`, `wachter user` and `wachter token`: the dashboard, and who may use it.
//!
//! The web crate does the serving and the hashing; this module reads flags and passwords,
//! checks what a person may have mistyped, and prints. Secrets are never taken from the
//! command line (other users see it in the process list) and an API token's secret is
//! printed once, when it is made.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;

use anyhow::{Context, anyhow};
use wachter_store::{Store, StoreError, TokenRow, UserRow};
use wachter_web::auth::{
    MAX_PASSWORD_BYTES, MAX_SESSION_HOURS, check_new_password, check_user_name,
};
use wachter_web::{Role, ServeOptions, Server};

use crate::cases::{database_exists, emit, json};
use crate::cli::{Failure, ServeArgs, TokenAction, TokenArgs, UserAction, UserArgs};
use crate::config::Config;
use crate::exit;

pub async fn serve(args: ServeArgs, config: &Config) -> Result<u8, Failure> {
    let listen = match args.listen {
        Some(listen) => listen,
        None => config.serve.listen.parse::<SocketAddr>().map_err(|e| {
            Failure::usage(anyhow!(
                "[serve] listen {:?}: {e} (an address and a port, like 127.0.0.1:8460)",
                config.serve.listen
            ))
        })?,
    };
    let pool_size = args.pool_size.unwrap_or(config.serve.pool_size);
    if !(1..=256).contains(&pool_size) {
        return Err(Failure::usage(anyhow!(
            "the pool size must be between 1 and 256 (got {pool_size})"
        )));
    }
    let session_hours = args.session_hours.unwrap_or(config.serve.session_hours);
    if !(1..=MAX_SESSION_HOURS).contains(&session_hours) {
        return Err(Failure::usage(anyhow!(
            "a session lasts between 1 and {MAX_SESSION_HOURS} hours (got {session_hours})"
        )));
    }
    let db = args.db.clone().unwrap_or_else(|| config.store.db.clone());
    let shown = wachter_store::redact(&db);
    if !database_exists(&db) {
        return Err(Failure::usage(anyhow!(
            "{shown} does not exist; a scan creates it, or `wachter user add NAME --role admin --db {shown}`"
        )));
    }
    let has_users = {
        let store = Store::open(&db).map_err(Failure::usage)?;
        !store.users().map_err(Failure::failed)?.is_empty()
    };
    let options = ServeOptions {
        store: db.clone(),
        listen,
        pool_size,
        session_hours,
    };
    if config.serve.max_connections == 0 {
        return Err(Failure::usage(anyhow!(
            "[serve] max_connections must be at least 1"
        )));
    }
    let exposure = wachter_web::Exposure {
        public_hosts: config.serve.public_hosts.clone(),
        max_connections: config.serve.max_connections,
        ..wachter_web::Exposure::default()
    };
    let server = Server::bind_exposed(options, exposure)
        .await
        .with_context(|| format!("cannot serve {shown} on {listen}"))
        .map_err(Failure::failed)?;
    let addr = server
        .local_addr()
        .context("the listening address")
        .map_err(Failure::failed)?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "wachter serve: warning: listening on {addr}, beyond this machine, with plain HTTP: \
             put a TLS-terminating reverse proxy in front (passwords and session cookies \
             would otherwise cross the network readable)"
        );
    }
    let mut announce = format!("wachter dashboard: http://{addr}/\n");
    if !has_users {
        announce.push_str(&format!(
            "No one can log in yet: `wachter user add NAME --role admin --db {shown}` adds a user.\n"
        ));
    }
    print_now(&announce)?;
    run_until_stopped(server).await?;
    eprintln!("wachter serve: stopped");
    Ok(exit::OK)
}

/// Prints and flushes at once: whoever reads the URL (a person, a script waiting for the
/// port) must not wait for a buffer to fill.
pub(crate) fn print_now(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::failed(e)),
        _ => Ok(()),
    }
}

/// Serves until Ctrl-C or SIGTERM, then lets the requests in flight finish (`Server::run`
/// bounds that wait); a second Ctrl-C quits at once.
pub(crate) async fn run_until_stopped(server: Server) -> Result<(), Failure> {
    let shutdown = async {
        stop_signal().await;
        eprintln!(
            "wachter serve: stopping; finishing the requests in flight (Ctrl-C again to quit now)"
        );
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(exit::INTERRUPTED.into());
            }
        });
    };
    server
        .run(shutdown)
        .await
        .context("serving")
        .map_err(Failure::failed)
}

/// Ctrl-C, or SIGTERM (a service manager stopping us). A signal that cannot be watched
/// never fires, rather than stopping the server at once.
async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

pub fn user(args: UserArgs, config: &Config) -> Result<u8, Failure> {
    match args.action {
        UserAction::Add {
            name,
            role,
            password_stdin,
        } => {
            check_name("user name", &name)?;
            let role = parse_role(&role)?;
            let store = crate::cases::open(&args.db, config, false)?;
            // Said before the password is asked for (and checked again when adding).
            if user_exists(&store, &name)? {
                return Err(name_taken(&name));
            }
            let hash = new_password_hash(&name, password_stdin)?;
            match store.add_user(&name, &hash, role.as_str()) {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) => return Err(name_taken(&name)),
                Err(e) => return Err(Failure::failed(e)),
            }
            eprintln!("user {name} added (role {role})");
            Ok(exit::OK)
        }
        UserAction::List { json: as_json } => {
            let store = crate::cases::open(&args.db, config, true)?;
            let users = store.users().map_err(Failure::failed)?;
            if as_json {
                return json(&users);
            }
            emit(render_users(&users))
        }
        UserAction::Remove { name } => {
            let store = crate::cases::open(&args.db, config, true)?;
            if !keeping_an_admin(store.remove_user(&name), &name, "removed")? {
                return Err(no_such_user(&name));
            }
            eprintln!("user {name} removed, with their sessions and API tokens");
            Ok(exit::OK)
        }
        UserAction::Disable { name } => {
            let store = crate::cases::open(&args.db, config, true)?;
            let Some(user) = store.user_credentials(&name).map_err(Failure::failed)? else {
                return Err(no_such_user(&name));
            };
            if user.user.disabled {
                eprintln!("{} was already disabled", user.user.name);
                return Ok(exit::OK);
            }
            if !keeping_an_admin(store.set_disabled(&name, true), &name, "disabled")? {
                return Err(no_such_user(&name));
            }
            eprintln!(
                "{} disabled: their sessions have ended and their API tokens are refused \
                 (`wachter user enable {}` lets them back in)",
                user.user.name, user.user.name
            );
            Ok(exit::OK)
        }
        UserAction::Enable { name } => {
            let store = crate::cases::open(&args.db, config, true)?;
            let Some(user) = store.user_credentials(&name).map_err(Failure::failed)? else {
                return Err(no_such_user(&name));
            };
            if !user.user.disabled {
                eprintln!("{} was not disabled", user.user.name);
                return Ok(exit::OK);
            }
            if !store.set_disabled(&name, false).map_err(Failure::failed)? {
                return Err(no_such_user(&name));
            }
            eprintln!(
                "{} enabled: they can log in again, and their live API tokens work again",
                user.user.name
            );
            Ok(exit::OK)
        }
        UserAction::Passwd {
            name,
            password_stdin,
            revoke_tokens,
        } => {
            let store = crate::cases::open(&args.db, config, true)?;
            // Said before the password is asked for (and checked again when changing).
            let Some(owner) = store.user_credentials(&name).map_err(Failure::failed)? else {
                return Err(no_such_user(&name));
            };
            let hash = new_password_hash(&name, password_stdin)?;
            if !store.set_password(&name, &hash).map_err(Failure::failed)? {
                return Err(no_such_user(&name));
            }
            if !revoke_tokens {
                eprintln!(
                    "password of {name} changed; their sessions have ended (their API tokens \
                     still work: --revoke-tokens ends them too)"
                );
                return Ok(exit::OK);
            }
            let revoked = revoke_tokens_of(&store, &owner.user.name)?;
            eprintln!(
                "password of {name} changed; their sessions have ended and {revoked} live API \
                 token{} revoked",
                if revoked == 1 { " was" } else { "s were" }
            );
            Ok(exit::OK)
        }
        UserAction::Role { name, role } => {
            let role = parse_role(&role)?;
            let store = crate::cases::open(&args.db, config, true)?;
            if !keeping_an_admin(store.set_role(&name, role.as_str()), &name, "demoted")? {
                return Err(no_such_user(&name));
            }
            eprintln!("{name} is now {role}");
            Ok(exit::OK)
        }
    }
}

pub fn token(args: TokenArgs, config: &Config) -> Result<u8, Failure> {
    match args.action {
        TokenAction::Add {
            user,
            name,
            scope,
            expires_days,
            json: as_json,
        } => {
            if !name.is_empty() {
                check_name("token name", &name)?;
            }
            let store = crate::cases::open(&args.db, config, true)?;
            let Some(owner) = store.user_credentials(&user).map_err(Failure::failed)? else {
                return Err(no_such_user(&user));
            };
            let role = parse_role(&owner.user.role)?;
            if owner.user.disabled {
                eprintln!(
                    "note: {} is disabled: the token is refused until `wachter user enable {}`",
                    owner.user.name, owner.user.name
                );
            }
            if scope == "write" && role == Role::Viewer {
                return Err(Failure::usage(anyhow!(
                    "{} is a viewer: a write token would allow nothing more than a read one \
                     (`wachter user role {} analyst` first, if they should act)",
                    owner.user.name,
                    owner.user.name
                )));
            }
            let now = time::OffsetDateTime::now_utc();
            let expires_at = expires_days
                .map(|days| wachter_core::stamp::utc(now + time::Duration::days(days.into())));
            let (secret, digest) = wachter_web::new_token("wachter_")
                .context("making a token")
                .map_err(Failure::failed)?;
            let id = store
                .add_token(&user, &name, &digest, &scope, expires_at.as_deref())
                .map_err(Failure::failed)?
                .ok_or_else(|| no_such_user(&user))?;
            if as_json {
                return json(&serde_json::json!({
                    "id": id,
                    "user": owner.user.name,
                    "name": name,
                    "scope": scope,
                    "expires_at": expires_at,
                    "token": secret,
                }));
            }
            emit(format!(
                "token {id} for {} (scope {scope}, {}):\n\n    {secret}\n\n\
                 Copy it now: it cannot be shown again (the store keeps only its SHA-256).\n\
                 Send it as `Authorization: Bearer {secret_hint}`.\n",
                owner.user.name,
                match &expires_at {
                    Some(at) => format!("expires {at}"),
                    None => "valid until revoked".into(),
                },
                secret_hint = "wachter_…",
            ))
        }
        TokenAction::List { json: as_json } => {
            let store = crate::cases::open(&args.db, config, true)?;
            let tokens = store.tokens().map_err(Failure::failed)?;
            if as_json {
                return json(&tokens);
            }
            emit(render_tokens(&tokens, &stamp_now()))
        }
        TokenAction::Revoke { id } => {
            let store = crate::cases::open(&args.db, config, true)?;
            if store
                .revoke_token(id, &stamp_now())
                .map_err(Failure::failed)?
            {
                eprintln!("token {id} revoked");
                return Ok(exit::OK);
            }
            let tokens = store.tokens().map_err(Failure::failed)?;
            match tokens.iter().find(|t| t.id == id) {
                Some(TokenRow {
                    revoked_at: Some(at),
                    ..
                }) => {
                    eprintln!("token {id} was already revoked ({at})");
                    Ok(exit::OK)
                }
                _ => Err(Failure::usage(anyhow!(
                    "no token {id} (`wachter token list` shows them)"
                ))),
            }
        }
    }
}

/// Revokes every live API token of the user called `owner` (as the store spells it);
/// returns how many. A token made while this runs is not seen: revoke it by its id.
fn revoke_tokens_of(store: &Store, owner: &str) -> Result<usize, Failure> {
    let now = stamp_now();
    let mut revoked = 0;
    for token in store.tokens().map_err(Failure::failed)? {
        if token.user != owner || token.revoked_at.is_some() {
            continue;
        }
        if store
            .revoke_token(token.id, &now)
            .with_context(|| {
                format!(
                    "revoking token {} of {owner} ({revoked} revoked before it)",
                    token.id
                )
            })
            .map_err(Failure::failed)?
        {
            revoked += 1;
        }
    }
    Ok(revoked)
}

fn stamp_now() -> String {
    wachter_core::stamp::utc(time::OffsetDateTime::now_utc())
}

fn parse_role(role: &str) -> Result<Role, Failure> {
    role.parse::<Role>().map_err(Failure::usage)
}

fn user_exists(store: &Store, name: &str) -> Result<bool, Failure> {
    Ok(store
        .user_credentials(name)
        .map_err(Failure::failed)?
        .is_some())
}

/// A new password read (see [`read_new_password`]) and hashed for the store.
fn new_password_hash(name: &str, from_stdin: bool) -> Result<String, Failure> {
    let password = read_new_password(name, from_stdin)?;
    wachter_web::hash_password(&password)
        .context("hashing the password")
        .map_err(Failure::failed)
}

fn name_taken(name: &str) -> Failure {
    Failure::usage(anyhow!(
        "a user called {name:?} already exists (names are case-insensitive); \
         `wachter user passwd {name}` sets a new password"
    ))
}

fn no_such_user(name: &str) -> Failure {
    Failure::usage(anyhow!("no user {name:?} (`wachter user list` shows them)"))
}

/// The outcome of a change the store refuses when it would leave no enabled admin (a
/// `Conflict`): a usage error with the way out, since nobody could manage users in the
/// dashboard any more.
fn keeping_an_admin(
    changed: Result<bool, StoreError>,
    name: &str,
    change: &str,
) -> Result<bool, Failure> {
    match changed {
        Err(StoreError::Conflict { .. }) => Err(Failure::usage(anyhow!(
            "{name:?} is the only enabled admin and cannot be {change}: make another user admin \
             first (`wachter user role NAME admin`), so someone can still manage users"
        ))),
        other => other.map_err(Failure::failed),
    }
}

/// A name a person chose (a user or a token): the dashboard's rule for user names
/// ([`check_user_name`]: printable, not padded, not too long).
fn check_name(what: &str, name: &str) -> Result<(), Failure> {
    check_user_name(name)
        .map_err(|problem| Failure::usage(anyhow!("the {what} {name:?} {problem}")))
}

/// A new password: the first line of standard input with `--password-stdin`, otherwise
/// asked twice on the terminal with echo off. Refused unless [`check_new_password`]
/// accepts it.
fn read_new_password(name: &str, from_stdin: bool) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let password = if from_stdin {
        if stdin.is_terminal() {
            eprintln!(
                "warning: --password-stdin reads from the terminal with echo on: the password \
                 shows as it is typed. Pipe it in instead, or leave out --password-stdin to be \
                 asked with echo off."
            );
        }
        read_password_line(&mut stdin.lock())
            .context("reading the password from standard input")
            .map_err(Failure::usage)?
    } else {
        if !stdin.is_terminal() {
            return Err(Failure::usage(anyhow!(
                "no terminal to ask for the password on: pass it on standard input with \
                 --password-stdin ({STDIN_EXAMPLE})"
            )));
        }
        let terminal = EchoOff::new()?;
        let first = terminal.ask(&format!("New password for {name}: "))?;
        check_password(&first)?;
        let again = terminal.ask("The same again: ")?;
        if first != again {
            return Err(Failure::usage(anyhow!("the two passwords differ")));
        }
        first
    };
    check_password(&password)?;
    Ok(password)
}

/// How a password is passed without a terminal prompt (never on the command line).
const STDIN_EXAMPLE: &str = "printf '%s\\n' \"$PASSWORD\" | wachter user … --password-stdin";

/// The dashboard's rule for new passwords ([`check_new_password`]).
fn check_password(password: &str) -> Result<(), Failure> {
    check_new_password(password)
        .map_err(|problem| Failure::usage(anyhow!("the password {problem}")))
}

/// One line of at most [`MAX_PASSWORD_BYTES`], without its line ending. An empty input, a
/// line too long or one that is not UTF-8 is an error (never silently cut).
fn read_password_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = Vec::new();
    input
        .take(MAX_PASSWORD_BYTES as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        anyhow::bail!("nothing to read (end of input)");
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > MAX_PASSWORD_BYTES {
        anyhow::bail!("the password is longer than {MAX_PASSWORD_BYTES} bytes");
    }
    String::from_utf8(line).map_err(|_| anyhow!("the password is not UTF-8"))
}

/// The terminal with its echo off while this lives, so a typed password is not shown.
///
/// Echo that cannot be turned off (no `stty`, or it fails) is a refusal, not a prompt in
/// plain view. Ctrl-C would end the process without running `Drop`, so a SIGINT handler,
/// installed before echo goes off, turns it back on and exits with 130; it stays for the
/// rest of the command (a tokio handler cannot be removed, and Ctrl-C must still quit).
struct EchoOff {
    /// Whether echo is off now: what the SIGINT handler has to undo.
    echo_off: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EchoOff {
    fn new() -> Result<EchoOff, Failure> {
        let echo_off = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        restore_echo_on_interrupt(echo_off.clone()).map_err(|e| echo_refusal(&format!("{e:#}")))?;
        // Marked before the change: an interrupt in between turns echo on, which is harmless.
        echo_off.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Err(problem) = terminal_setting("stty", "-echo") {
            echo_off.store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(echo_refusal(&problem));
        }
        Ok(EchoOff { echo_off })
    }

    /// Asks `question` (on stderr, once echo is off) and reads one line from the terminal.
    fn ask(&self, question: &str) -> Result<String, Failure> {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let line = read_password_line(&mut std::io::stdin().lock());
        // The Enter typed was not echoed either.
        eprintln!();
        line.context("reading the password").map_err(Failure::usage)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self
            .echo_off
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let _ = terminal_setting("stty", "echo");
        }
    }
}

/// Why no password is asked for when echo cannot be turned off, and the way out.
fn echo_refusal(problem: &str) -> Failure {
    Failure::usage(anyhow!(
        "cannot turn off the terminal's echo ({problem}), so the password would show as it is \
         typed; not asking. Pass it on standard input with --password-stdin instead \
         ({STDIN_EXAMPLE})"
    ))
}

/// Runs `program setting` (`stty -echo`, `stty echo`) on the terminal that is our stdin.
fn terminal_setting(program: &str, setting: &str) -> Result<(), String> {
    match std::process::Command::new(program)
        .arg(setting)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{program} {setting}` failed: {status}")),
        Err(e) => Err(format!("cannot run `{program}`: {e}")),
    }
}

/// On Ctrl-C: echo back on if `echo_off` says it is off, a line break after the prompt,
/// and exit 130. The handler is registered before this returns.
#[cfg(unix)]
fn restore_echo_on_interrupt(
    echo_off: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Handle::try_current().context("no async runtime to watch for Ctrl-C on")?;
    let mut interrupts = {
        let _entered = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("cannot watch for Ctrl-C")?
    };
    // The main thread blocks reading the terminal; the runtime's workers run this.
    runtime.spawn(async move {
        if interrupts.recv().await.is_some() {
            if echo_off.swap(false, std::sync::atomic::Ordering::SeqCst) {
                let _ = terminal_setting("stty", "echo");
            }
            eprintln!();
            std::process::exit(exit::INTERRUPTED.into());
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn restore_echo_on_interrupt(
    _echo_off: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    Ok(())
}

fn render_users(users: &[UserRow]) -> String {
    if users.is_empty() {
        return "no users; `wachter user add NAME --role admin` adds one\n".into();
    }
    let width = users
        .iter()
        .map(|u| u.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:<8} {:<21} state\n",
        "name", "role", "created"
    );
    for u in users {
        out.push_str(&format!(
            "{:<width$}  {:<8} {:<21} {}\n",
            u.name,
            u.role,
            u.created_at,
            if u.disabled { "disabled" } else { "active" }
        ));
    }
    out
}

fn render_tokens(tokens: &[TokenRow], now: &str) -> String {
    if tokens.is_empty() {
        return "no API tokens; `wachter token add --user NAME` makes one\n".into();
    }
    let mut out = format!(
        "{:>4}  {:<16} {:<20} {:<6} {:<21} {:<21} {:<21} state\n",
        "id", "user", "name", "scope", "created", "expires", "last used"
    );
    for t in tokens {
        let state = match (&t.revoked_at, &t.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at.as_str() <= now => "expired",
            _ => "live",
        };
        out.push_str(&format!(
            "{:>4}  {:<16} {:<20} {:<6} {:<21} {:<21} {:<21} {state}\n",
            t.id,
            t.user,
            if t.name.is_empty() { "-" } else { &t.name },
            t.scope,
            t.created_at,
            t.expires_at.as_deref().unwrap_or("never"),
            t.last_used_at.as_deref().unwrap_or("never"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_one_line_read_whole_or_refused() {
        let read = |bytes: &[u8]| read_password_line(&mut std::io::Cursor::new(bytes.to_vec()));
        assert_eq!(
            read(b"correct horse battery\nrest").unwrap(),
            "correct horse battery"
        );
        assert_eq!(read(b"crlf ending pw\r\n").unwrap(), "crlf ending pw");
        assert_eq!(read(b"no newline at all").unwrap(), "no newline at all");
        assert_eq!(read(b"  spaces kept  \n").unwrap(), "  spaces kept  ");
        assert!(read(b"").is_err());
        assert!(read(&[b'x'; MAX_PASSWORD_BYTES + 1]).is_err(), "too long");
        assert!(read(&[b'x'; MAX_PASSWORD_BYTES]).is_ok());
        assert!(read(b"\xff\xfe not utf-8\n").is_err());
    }

    #[test]
    fn echo_that_cannot_be_turned_off_is_a_refusal_with_the_way_out() {
        let missing = terminal_setting("wachter-test-no-such-stty", "-echo").unwrap_err();
        assert!(missing.contains("cannot run"), "{missing}");
        let failing = terminal_setting("false", "-echo").unwrap_err();
        assert!(failing.contains("failed"), "{failing}");
        let refusal = format!("{:#}", echo_refusal(&missing).error);
        assert!(
            refusal.contains("--password-stdin") && refusal.contains(&missing),
            "{refusal}"
        );
    }

    #[test]
    fn passwords_need_twelve_characters_not_bytes() {
        assert!(check_password("elevenchars").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password("ääääääääääää").is_ok());
        assert!(check_password("äääääääääää").is_err());
    }

    #[test]
    fn names_are_printable_and_not_padded() {
        for bad in ["", " alice", "alice ", "al\u{7}ice", "line\nbreak"] {
            assert!(check_name("user name", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("user name", &"x".repeat(65)).is_err());
        for good in ["alice", "Jan de Vries", "ci-reader", "zoë"] {
            assert!(check_name("user name", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn token_lists_say_which_are_alive() {
        let token = |id, revoked: Option<&str>, expires: Option<&str>| TokenRow {
            id,
            user: "alice".into(),
            name: String::new(),
            scope: "read".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            expires_at: expires.map(String::from),
            last_used_at: None,
            revoked_at: revoked.map(String::from),
        };
        let text = render_tokens(
            &[
                token(3, None, None),
                token(2, Some("2026-02-01T00:00:00Z"), None),
                token(1, None, Some("2026-02-01T00:00:00Z")),
            ],
            "2026-03-01T00:00:00Z",
        );
        let states: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().last().unwrap())
            .collect();
        assert_eq!(states, ["live", "revoked", "expired"], "{text}");
    }
}
