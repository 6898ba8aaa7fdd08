//! `wachter user`, `wachter token`, `wachter serve`, `wachter triage --save` and the end of
//! `wachter demo`, run as an operator would: the binary, its exit codes and output, the
//! store behind it, and the server spoken to over raw HTTP/1.1 on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;
use common::*;

const PASSWORD: &str = "correct horse battery staple";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert_exit(out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn users_are_added_listed_changed_and_removed() {
    for db in databases("serve_users") {
        let db = db.as_str();
        add_user(db, "alice", "admin", PASSWORD);

        // Taken, whatever the case; nothing asked, nothing changed.
        let taken = wachter_with_stdin(
            &["user", "add", "ALICE", "--password-stdin", "--db", db],
            Some(&format!("{PASSWORD}\n")),
        );
        assert_exit(&taken, 2);
        assert!(
            stderr(&taken).contains("already exists"),
            "{}",
            stderr(&taken)
        );

        // Too short: refused, and no user made.
        let short = wachter_with_stdin(
            &["user", "add", "bob", "--password-stdin", "--db", db],
            Some("elevenchars\n"),
        );
        assert_exit(&short, 2);
        assert!(stderr(&short).contains("at least 12"), "{}", stderr(&short));

        // No terminal to ask on, and no --password-stdin: refused with the way out.
        let no_tty = wachter(&["user", "add", "bob", "--db", db]);
        assert_exit(&no_tty, 2);
        assert!(
            stderr(&no_tty).contains("--password-stdin"),
            "{}",
            stderr(&no_tty)
        );

        // A role that does not exist, a name that is padded.
        assert_exit(
            &wachter_with_stdin(
                &[
                    "user",
                    "add",
                    "bob",
                    "--role",
                    "root",
                    "--password-stdin",
                    "--db",
                    db,
                ],
                Some(&format!("{PASSWORD}\n")),
            ),
            2,
        );
        assert_exit(
            &wachter_with_stdin(
                &["user", "add", " bob", "--password-stdin", "--db", db],
                Some(&format!("{PASSWORD}\n")),
            ),
            2,
        );

        add_user(db, "Bob", "analyst", PASSWORD);
        let users = json_of(&wachter(&["user", "list", "--json", "--db", db]));
        let listed: Vec<(&str, &str)> = users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            listed,
            [("alice", "admin"), ("Bob", "analyst")],
            "{users:#}"
        );
        let text = serde_json::to_string(&users).unwrap();
        assert!(!text.contains("argon2"), "no hash in a listing: {text}");
        // What the store keeps is an Argon2id hash, never the password.
        let hash = query_texts(db, "SELECT password_hash FROM users WHERE name = 'alice'")
            .unwrap()
            .remove(0);
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains(PASSWORD));

        let plain = wachter(&["user", "list", "--db", db]);
        assert_exit(&plain, 0);
        assert!(stdout(&plain).contains("Bob"), "{}", stdout(&plain));

        assert_exit(&wachter(&["user", "role", "bob", "viewer", "--db", db]), 0);
        assert_exit(&wachter(&["user", "role", "bob", "root", "--db", db]), 2);
        assert_exit(
            &wachter(&["user", "role", "carol", "viewer", "--db", db]),
            2,
        );
        let users = json_of(&wachter(&["user", "list", "--json", "--db", db]));
        assert_eq!(users[1]["role"], "viewer");

        let changed = wachter_with_stdin(
            &["user", "passwd", "bob", "--password-stdin", "--db", db],
            Some("another long password\n"),
        );
        assert_exit(&changed, 0);
        let new_hash = query_texts(db, "SELECT password_hash FROM users WHERE name = 'Bob'")
            .unwrap()
            .remove(0);
        assert!(new_hash.starts_with("$argon2id$"));
        assert_exit(
            &wachter_with_stdin(
                &["user", "passwd", "bob", "--password-stdin", "--db", db],
                Some("short\n"),
            ),
            2,
        );

        assert_exit(&wachter(&["user", "remove", "BOB", "--db", db]), 0);
        assert_exit(&wachter(&["user", "remove", "bob", "--db", db]), 2);
        let users = json_of(&wachter(&["user", "list", "--json", "--db", db]));
        assert_eq!(users.as_array().unwrap().len(), 1);
    }
}

/// `user list --json` as (name, role, disabled) triples.
fn listed_users(db: &str) -> Vec<(String, String, bool)> {
    let users = json_of(&wachter(&["user", "list", "--json", "--db", db]));
    users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_string(),
                u["role"].as_str().unwrap().to_string(),
                u["disabled"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn user_row(name: &str, role: &str, disabled: bool) -> (String, String, bool) {
    (name.to_string(), role.to_string(), disabled)
}

#[test]
fn the_last_admin_stays_and_users_are_disabled_and_enabled() {
    for db in databases("serve_last_admin") {
        let db = db.as_str();
        add_user(db, "alice", "admin", PASSWORD);
        add_user(db, "bob", "analyst", PASSWORD);

        // The only enabled admin: demoting, disabling or removing her is a usage error
        // with the way out, and changes nothing.
        for (command, change) in [
            (["user", "role", "alice", "viewer"].as_slice(), "demoted"),
            (["user", "disable", "ALICE"].as_slice(), "disabled"),
            (["user", "remove", "alice"].as_slice(), "removed"),
        ] {
            let mut args = command.to_vec();
            args.extend(["--db", db]);
            let refused = wachter(&args);
            assert_exit(&refused, 2);
            let said = stderr(&refused);
            assert!(
                said.contains("only enabled admin")
                    && said.contains(change)
                    && said.contains("make another user admin first"),
                "{command:?}: {said}"
            );
        }
        assert_eq!(
            listed_users(db),
            [
                user_row("alice", "admin", false),
                user_row("bob", "analyst", false)
            ]
        );

        // With a second admin the first may be disabled; the second is then the only
        // enabled one, and is kept.
        assert_exit(&wachter(&["user", "role", "bob", "admin", "--db", db]), 0);
        let disabled = wachter(&["user", "disable", "alice", "--db", db]);
        assert_exit(&disabled, 0);
        assert!(
            stderr(&disabled).contains("wachter user enable alice"),
            "{}",
            stderr(&disabled)
        );
        assert_exit(&wachter(&["user", "role", "bob", "viewer", "--db", db]), 2);
        assert_exit(&wachter(&["user", "remove", "bob", "--db", db]), 2);
        assert_eq!(
            listed_users(db),
            [
                user_row("alice", "admin", true),
                user_row("bob", "admin", false)
            ]
        );
        let plain = stdout(&wachter(&["user", "list", "--db", db]));
        let state_of = |name: &str| {
            plain
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().last())
                .map(String::from)
        };
        assert_eq!(state_of("alice").as_deref(), Some("disabled"), "{plain}");
        assert_eq!(state_of("bob").as_deref(), Some("active"), "{plain}");

        // Disabling twice, enabling twice: said, not an error; an unknown user is one.
        let again = wachter(&["user", "disable", "alice", "--db", db]);
        assert_exit(&again, 0);
        assert!(
            stderr(&again).contains("already disabled"),
            "{}",
            stderr(&again)
        );
        assert_exit(&wachter(&["user", "enable", "Alice", "--db", db]), 0);
        let again = wachter(&["user", "enable", "alice", "--db", db]);
        assert_exit(&again, 0);
        assert!(
            stderr(&again).contains("was not disabled"),
            "{}",
            stderr(&again)
        );
        assert_exit(&wachter(&["user", "disable", "carol", "--db", db]), 2);
        assert_exit(&wachter(&["user", "enable", "carol", "--db", db]), 2);
        assert_eq!(
            listed_users(db),
            [
                user_row("alice", "admin", false),
                user_row("bob", "admin", false)
            ]
        );
        // Now either admin may go.
        assert_exit(&wachter(&["user", "remove", "bob", "--db", db]), 0);
    }

    // A store that never had an admin: roles change without a word about admins.
    let db = fresh_sqlite("serve_no_admin");
    add_user(&db, "vera", "viewer", PASSWORD);
    let changed = wachter(&["user", "role", "vera", "analyst", "--db", &db]);
    assert_exit(&changed, 0);
    assert!(!stderr(&changed).contains("admin"), "{}", stderr(&changed));

    // The new commands explain themselves.
    let help = stdout(&wachter(&["user", "disable", "--help"]));
    assert!(
        help.contains("sessions end") && help.contains("wachter user enable"),
        "{help}"
    );
    let help = stdout(&wachter(&["user", "--help"]));
    for command in ["disable", "enable"] {
        assert!(help.contains(command), "{help}");
    }
}

/// The secret in `token add`'s text output.
fn secret_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("wachter_") && w.len() > 40)
        .unwrap_or_else(|| panic!("no secret in {text}"))
        .to_string()
}

#[test]
fn a_token_secret_is_shown_once_and_a_revoked_token_is_dead() {
    for db in databases("serve_tokens") {
        let db = db.as_str();
        add_user(db, "alice", "analyst", PASSWORD);
        add_user(db, "vic", "viewer", PASSWORD);

        let made = wachter(&[
            "token", "add", "--user", "alice", "--name", "grafana", "--db", db,
        ]);
        assert_exit(&made, 0);
        let secret = secret_in(&stdout(&made));
        assert!(
            stdout(&made).contains("cannot be shown again"),
            "{}",
            stdout(&made)
        );
        // The store keeps its digest, not the secret.
        let digest = wachter_web::auth::token_digest(&secret);
        assert_eq!(
            query_ints(
                db,
                &format!("SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{digest}'")
            ),
            Some(vec![1])
        );

        let scripted = json_of(&wachter(&[
            "token",
            "add",
            "--user",
            "ALICE",
            "--scope",
            "write",
            "--expires-days",
            "30",
            "--json",
            "--db",
            db,
        ]));
        let second = scripted["token"].as_str().unwrap().to_string();
        assert!(second.starts_with("wachter_") && second != secret);
        assert_eq!(scripted["scope"], "write");
        assert_eq!(scripted["user"], "alice");
        assert!(scripted["expires_at"].as_str().unwrap().ends_with('Z'));

        // A viewer gets no write token; nobody gets a token for nobody.
        let refused = wachter(&[
            "token", "add", "--user", "vic", "--scope", "write", "--db", db,
        ]);
        assert_exit(&refused, 2);
        assert!(stderr(&refused).contains("viewer"), "{}", stderr(&refused));
        assert_exit(
            &wachter(&["token", "add", "--user", "nobody", "--db", db]),
            2,
        );
        assert_exit(
            &wachter(&[
                "token",
                "add",
                "--user",
                "alice",
                "--expires-days",
                "0",
                "--db",
                db,
            ]),
            2,
        );

        let listed = wachter(&["token", "list", "--db", db]);
        assert_exit(&listed, 0);
        let listed_json = wachter(&["token", "list", "--json", "--db", db]);
        for out in [&listed, &listed_json] {
            for s in [&secret, &second] {
                assert!(
                    !stdout(out).contains(s.as_str()),
                    "a secret listed: {}",
                    stdout(out)
                );
            }
        }
        let tokens = json_of(&listed_json);
        let tokens = tokens.as_array().unwrap();
        assert_eq!(tokens.len(), 2);
        let first_id = tokens[1]["id"].as_i64().unwrap();
        assert_eq!(tokens[1]["name"], "grafana");
        assert!(tokens[1]["revoked_at"].is_null());

        assert_exit(
            &wachter(&["token", "revoke", &first_id.to_string(), "--db", db]),
            0,
        );
        let again = wachter(&["token", "revoke", &first_id.to_string(), "--db", db]);
        assert_exit(&again, 0);
        assert!(
            stderr(&again).contains("already revoked"),
            "{}",
            stderr(&again)
        );
        assert_exit(&wachter(&["token", "revoke", "9999", "--db", db]), 2);
        let tokens = json_of(&wachter(&["token", "list", "--json", "--db", db]));
        let revoked = tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == first_id)
            .unwrap();
        assert!(revoked["revoked_at"].is_string(), "{tokens:#}");
        let text = stdout(&wachter(&["token", "list", "--db", db]));
        assert!(text.contains("revoked") && text.contains("live"), "{text}");

        // Removing the user takes the tokens along.
        assert_exit(&wachter(&["user", "remove", "alice", "--db", db]), 0);
        let tokens = json_of(&wachter(&["token", "list", "--json", "--db", db]));
        assert_eq!(tokens, serde_json::json!([]));
    }
}

#[test]
fn a_new_password_can_also_revoke_the_users_tokens() {
    let help = wachter(&["user", "passwd", "--help"]);
    assert_exit(&help, 0);
    let help = stdout(&help);
    assert!(
        help.contains("--revoke-tokens") && help.contains("API tokens stay live"),
        "{help}"
    );
    for db in databases("serve_passwd_tokens") {
        let db = db.as_str();
        add_user(db, "alice", "analyst", PASSWORD);
        add_user(db, "bob", "analyst", PASSWORD);
        let token_of = |user: &str| {
            json_of(&wachter(&[
                "token", "add", "--user", user, "--json", "--db", db,
            ]))["id"]
                .as_i64()
                .unwrap()
        };
        let (old, live, other, bobs) = (
            token_of("alice"),
            token_of("alice"),
            token_of("alice"),
            token_of("bob"),
        );
        assert_exit(
            &wachter(&["token", "revoke", &old.to_string(), "--db", db]),
            0,
        );
        let revoked_at = || -> Vec<(i64, Option<String>)> {
            let tokens = json_of(&wachter(&["token", "list", "--json", "--db", db]));
            let mut all: Vec<(i64, Option<String>)> = tokens
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["id"].as_i64().unwrap(),
                        t["revoked_at"].as_str().map(String::from),
                    )
                })
                .collect();
            all.sort();
            all
        };
        let before = revoked_at();

        // Without the flag the tokens stay, and the output says so.
        let kept = wachter_with_stdin(
            &["user", "passwd", "alice", "--password-stdin", "--db", db],
            Some("another long password\n"),
        );
        assert_exit(&kept, 0);
        assert!(
            stderr(&kept).contains("--revoke-tokens"),
            "{}",
            stderr(&kept)
        );
        assert_eq!(revoked_at(), before);

        // With it, every live token of alice ends; the one revoked before keeps its time,
        // and bob's is not touched.
        let ended = wachter_with_stdin(
            &[
                "user",
                "passwd",
                "ALICE",
                "--revoke-tokens",
                "--password-stdin",
                "--db",
                db,
            ],
            Some("a third long password\n"),
        );
        assert_exit(&ended, 0);
        assert!(
            stderr(&ended).contains("2 live API tokens were revoked"),
            "{}",
            stderr(&ended)
        );
        let after = revoked_at();
        let state = |id: i64| after.iter().find(|(t, _)| *t == id).unwrap().1.clone();
        assert!(state(live).is_some() && state(other).is_some(), "{after:?}");
        assert_eq!(
            state(old),
            before.iter().find(|(t, _)| *t == old).unwrap().1
        );
        assert_eq!(state(bobs), None, "{after:?}");
    }
}

/// What `command_line` (run by `sh` on a pseudo-terminal of `script`) wrote there, the
/// terminal's echo included, after answering each `(prompt, keys)`: `keys` are typed once
/// `prompt` has been shown. `None` without util-linux `script`.
fn on_a_terminal(command_line: &str, answers: &[(&str, &str)]) -> Option<String> {
    let started = std::process::Command::new("script")
        .args(["-qec", command_line, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env_remove("WACHTER_CONFIG")
        .current_dir(work_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match started {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("script: {e}"),
    };
    let transcript = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut out = child.stdout.take().unwrap();
    let written = transcript.clone();
    let reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = out.read(&mut buffer) {
            written
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let seen = || transcript.lock().unwrap().clone();
    let mut keyboard = child.stdin.take().unwrap();
    for (asked, (prompt, keys)) in answers.iter().enumerate() {
        // Each prompt is waited for after the ones before it (a prompt shown again, such
        // as a second question with the same words, counts once more).
        let shown_before = answers[..asked].iter().filter(|(p, _)| p == prompt).count();
        loop {
            let text = seen();
            if text.match_indices(prompt).count() > shown_before {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {prompt:?} on the terminal: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        keyboard.write_all(keys.as_bytes()).unwrap();
        keyboard.flush().unwrap();
    }
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command_line} still running: {:?}", seen());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(keyboard);
    reader.join().unwrap();
    Some(seen())
}

/// `text` in single quotes for `sh`.
fn quoted(text: &str) -> String {
    assert!(!text.contains('\''), "{text}");
    format!("'{text}'")
}

/// Whether the terminal's echo is on in the output of `stty -a` within `transcript`.
fn echo_is_on(transcript: &str) -> bool {
    let words: Vec<&str> = transcript
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    assert!(
        words.contains(&"echo") || words.contains(&"-echo"),
        "no stty -a: {transcript:?}"
    );
    words.contains(&"echo")
}

#[test]
fn the_password_prompt_hides_what_is_typed_and_never_leaves_echo_off() {
    let db = fresh_sqlite("serve_prompt");
    let (bin, at) = (quoted(env!("CARGO_BIN_EXE_wachter")), quoted(&db));
    let user_exists = |name: &str| {
        query_ints(
            &db,
            &format!("SELECT count(*) FROM users WHERE name = '{name}'"),
        ) == Some(vec![1])
    };
    let typed = format!("{PASSWORD}\r");

    // Asked twice with echo off: the password never shows, and echo is back after.
    let Some(asked) = on_a_terminal(
        &format!("{bin} user add alice --role admin --db {at}; echo \"rc=$?\"; stty -a"),
        &[
            ("New password for alice: ", typed.as_str()),
            ("The same again: ", typed.as_str()),
        ],
    ) else {
        eprintln!("skipped: no util-linux `script` to make a terminal with");
        return;
    };
    assert!(asked.contains("rc=0"), "{asked:?}");
    assert!(!asked.contains(PASSWORD), "the password showed: {asked:?}");
    assert!(echo_is_on(&asked), "{asked:?}");
    let hash = query_texts(&db, "SELECT password_hash FROM users WHERE name = 'alice'")
        .unwrap()
        .remove(0);
    assert!(wachter_web::auth::verify_password(PASSWORD, &hash));

    // Ctrl-C at either prompt: echo is turned back on, exit 130, nobody added. (The
    // shell traps SIGINT so that it lives on to report; wachter gets the default.)
    for answers in [
        vec![("New password for bob: ", "\u{3}")],
        vec![
            ("New password for bob: ", typed.as_str()),
            ("The same again: ", "\u{3}"),
        ],
    ] {
        let interrupted = on_a_terminal(
            &format!(
                "trap 'echo interrupted' INT; {bin} user add bob --db {at}; echo \"rc=$?\"; stty -a"
            ),
            &answers,
        )
        .unwrap();
        assert!(interrupted.contains("rc=130"), "{interrupted:?}");
        assert!(echo_is_on(&interrupted), "echo left off: {interrupted:?}");
        assert!(!user_exists("bob"));
    }

    // No stty to turn echo off with: refused before asking, with the way out.
    let refused = on_a_terminal(
        &format!("env PATH=/nonexistent {bin} user add carol --db {at}; echo \"rc=$?\""),
        &[],
    )
    .unwrap();
    assert!(refused.contains("rc=2"), "{refused:?}");
    assert!(
        refused.contains("cannot turn off the terminal's echo")
            && refused.contains("--password-stdin"),
        "{refused:?}"
    );
    assert!(!refused.contains("New password"), "{refused:?}");
    assert!(!user_exists("carol"));

    // --password-stdin at a terminal works, with a warning that the password shows.
    let warned = on_a_terminal(
        &format!("{bin} user add dave --password-stdin --db {at}; echo \"rc=$?\""),
        &[("shows as it is typed", typed.as_str())],
    )
    .unwrap();
    assert!(warned.contains("rc=0"), "{warned:?}");
    assert!(
        warned.contains("warning: --password-stdin reads from the terminal"),
        "{warned:?}"
    );
    assert!(user_exists("dave"));
}

/// A `wachter` process that runs until the test drops it (then killed and reaped).
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    errors: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = wachter_command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let kept = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut all) = kept.lock() {
                    all.push_str(&line);
                    all.push('\n');
                }
            }
        });
        Running {
            child,
            lines,
            errors,
        }
    }

    /// The first stdout line starting with `prefix`, and the lines before it.
    fn wait_for(&mut self, prefix: &str, deadline: Duration) -> (String, Vec<String>) {
        let until = std::time::Instant::now() + deadline;
        let mut before = Vec::new();
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return (line, before),
                Ok(line) => before.push(line),
                Err(_) => panic!(
                    "no line {prefix:?} within {deadline:?}; stdout so far: {before:#?}; stderr: {}; exit: {:?}",
                    self.stderr(),
                    self.child.try_wait()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http://127.0.0.1:PORT/` somewhere in `line` → the address.
fn address_in(line: &str) -> SocketAddr {
    let start = line.find("http://").unwrap() + "http://".len();
    let rest = &line[start..];
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One GET over a fresh connection (`Connection: close`), every wait bounded, the answer
/// capped at 4 MiB.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.take(4 << 20).read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

#[test]
fn serve_answers_pages_and_the_api_on_loopback() {
    // Refused before anything is served: a database that is not there, a bad address.
    let missing = work_dir().join("serve-missing.db");
    let _ = std::fs::remove_file(&missing);
    let out = wachter(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        missing.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    assert!(!missing.exists(), "not created by serve");
    assert_exit(
        &wachter(&["serve", "--listen", "localhost", "--db", "x.db"]),
        2,
    );

    for db in databases("serve_http") {
        let db = db.as_str();
        // An empty store: served, with the hint to add a user.
        assert_exit(&wachter(&["db", "migrate", "--db", db]), 0);
        {
            let mut server = Running::start(&["serve", "--listen", "127.0.0.1:0", "--db", db]);
            let (line, _) = server.wait_for("wachter dashboard: ", Duration::from_secs(60));
            let addr = address_in(&line);
            assert_ne!(addr.port(), 0, "the real port is printed: {line}");
            let (hint, _) = server.wait_for("No one can log in yet", Duration::from_secs(10));
            assert!(
                hint.contains("wachter user add NAME --role admin"),
                "{hint}"
            );
            assert!(!server.stderr().contains("warning"), "loopback: no warning");
        }

        add_user(db, "alice", "admin", PASSWORD);
        let made = wachter(&["token", "add", "--user", "alice", "--db", db]);
        assert_exit(&made, 0);
        let secret = secret_in(&stdout(&made));
        let dead = wachter(&["token", "add", "--user", "alice", "--json", "--db", db]);
        let dead = json_of(&dead);
        assert_exit(
            &wachter(&["token", "revoke", &dead["id"].to_string(), "--db", db]),
            0,
        );
        let dead = dead["token"].as_str().unwrap().to_string();

        let mut server = Running::start(&["serve", "--listen", "127.0.0.1:0", "--db", db]);
        let (line, _) = server.wait_for("wachter dashboard: ", Duration::from_secs(60));
        let addr = address_in(&line);
        assert!(addr.ip().is_loopback());

        let login = get(addr, "/login", &[]);
        assert_eq!(login.status, 200, "{}", login.body);
        let csp = login.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src"), "CSP: {csp:?}");
        assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
        assert!(login.body.contains("id=\"login\""), "{}", login.body);

        let bearer = format!("Bearer {secret}");
        let me = get(addr, "/api/v1/me", &[("Authorization", &bearer)]);
        assert_eq!(me.status, 200, "{}", me.body);
        assert!(
            me.header("content-type")
                .unwrap_or_default()
                .starts_with("application/json"),
            "{:?}",
            me.headers
        );
        let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
        assert!(me.to_string().contains("\"alice\""), "{me:#}");

        let anonymous = get(addr, "/api/v1/me", &[]);
        assert_eq!(anonymous.status, 401, "{}", anonymous.body);
        assert!(anonymous.header("content-security-policy").is_some());
        let revoked = get(
            addr,
            "/api/v1/me",
            &[("Authorization", &format!("Bearer {dead}"))],
        );
        assert_eq!(revoked.status, 401, "a revoked token: {}", revoked.body);
        let wrong = get(
            addr,
            "/api/v1/me",
            &[("Authorization", "Bearer wachter_nonsense")],
        );
        assert_eq!(wrong.status, 401);

        // A disabled user's token is refused at once, and works again once enabled.
        add_user(db, "bob", "analyst", PASSWORD);
        let bobs = json_of(&wachter(&[
            "token", "add", "--user", "bob", "--json", "--db", db,
        ]));
        let bobs = format!("Bearer {}", bobs["token"].as_str().unwrap());
        let me_as_bob = || get(addr, "/api/v1/me", &[("Authorization", &bobs)]).status;
        assert_eq!(me_as_bob(), 200);
        assert_exit(&wachter(&["user", "disable", "bob", "--db", db]), 0);
        assert_eq!(me_as_bob(), 401, "the token of a disabled user");
        assert_exit(&wachter(&["user", "enable", "bob", "--db", db]), 0);
        assert_eq!(me_as_bob(), 200, "enabled again");

        // Ctrl-C stops it (after the requests in flight: none), with exit 0.
        let interrupt = std::process::Command::new("kill")
            .args(["-INT", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(interrupt.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(45);
        let status = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still serving after Ctrl-C: {}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(0), "{}", server.stderr());
        while !server.stderr().contains("wachter serve: stopped")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            server.stderr().contains("wachter serve: stopped"),
            "{}",
            server.stderr()
        );
        drop(server);
    }
}

/// `wachter demo` over a lab on `hosts` into `db`, once it prints its dashboard line: the
/// running demo, that line, and the lines before it.
fn demo_serving(db: &str, hosts: &str, mail: &str) -> (Running, String, Vec<String>) {
    let mail = work_dir().join(mail);
    let mut demo = Running::start(&[
        "demo",
        "--hosts",
        hosts,
        "--port",
        "18443",
        "--db",
        db,
        "--mail-dir",
        mail.to_str().unwrap(),
    ]);
    let (line, before) = demo.wait_for("Dashboard: http://", Duration::from_secs(300));
    (demo, line, before)
}

#[test]
fn demo_ends_by_serving_its_dashboard() {
    let db = fresh_sqlite("serve-demo");
    let (_demo, line, before) = demo_serving(&db, "127.147.0.0/27", "serve-demo-mail");
    assert!(
        before.iter().any(|l| l.contains("Every host matches")),
        "the report came first: {before:#?}"
    );
    let addr = address_in(&line);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{line}");
    let password = line
        .split("password ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_string();
    assert!(password.len() >= 32, "{line}");
    assert!(
        line.contains("user demo") && line.contains("Ctrl-C"),
        "{line}"
    );

    let login = get(addr, "/login", &[]);
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(get(addr, "/api/v1/me", &[]).status, 401);
    // The password printed is the demo admin's.
    let row = query_texts(
        &db,
        "SELECT password_hash, role FROM users WHERE name = 'demo'",
    )
    .unwrap();
    assert_eq!(row[1], "admin");
    assert!(wachter_web::auth::verify_password(&password, &row[0]));
}

#[test]
fn a_demo_over_another_store_leaves_its_demo_user_alone() {
    // A store that is not the demo's own, with someone called Demo in it.
    let db = fresh_sqlite("serve-demo-foreign");
    add_user(&db, "Demo", "viewer", PASSWORD);
    let before = query_texts(
        &db,
        "SELECT password_hash, role FROM users WHERE name = 'Demo'",
    )
    .unwrap();
    let (demo, line, _) = demo_serving(&db, "127.148.0.0/28", "serve-demo-foreign-mail");
    assert!(
        !line.contains("user demo, password") && line.contains("left alone"),
        "{line}"
    );
    let addr = address_in(&line);
    assert_eq!(get(addr, "/login", &[]).status, 200);
    drop(demo);
    let after = query_texts(
        &db,
        "SELECT password_hash, role FROM users WHERE name = 'Demo'",
    )
    .unwrap();
    assert_eq!(after, before, "the password and the role were not touched");
    assert_eq!(
        query_ints(&db, "SELECT count(*) FROM users"),
        Some(vec![1]),
        "no other admin was made"
    );
}

/// An access log with the January 2020 attack (netscaler.md C.12).
fn attacked_logs(name: &str) -> std::path::PathBuf {
    let root = work_dir().join(format!("serve-triage-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("var/log")).unwrap();
    std::fs::write(
        root.join("var/log/httpaccess.log"),
        "198.51.100.20 - - [10/Jan/2020:08:00:00 +0000] \"GET /vpn/index.html HTTP/1.1\" 200 2048 \"-\" \"Mozilla/5.0\"\n\
193.187.174.104 - - [12/Jan/2020:11:26:02 +0000] \"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\" 200 83 \"-\"\n\
193.187.174.104 - - [12/Jan/2020:11:26:03 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 15 \"-\"\n\
193.187.174.104 - - [12/Jan/2020:11:26:11 +0000] \"GET /vpn/../vpns/portal/AOUnCfwrjIJrpngpwLXHddqADAxTraBan.xml HTTP/1.1\" 200 - \"-\"\n",
    )
    .unwrap();
    root
}

fn exit_code_of(verdict: &str) -> i32 {
    match verdict {
        "no_sign_of_compromise" => 0,
        "compromised" => 1,
        "exploitation_attempted" => 4,
        "not_enough_data" => 5,
        other => panic!("verdict {other}"),
    }
}

/// Adds the organisation "Ziekenhuis Demo" owning 192.0.2.0/24 to `db`; returns its id.
fn add_hospital(db: &str) -> i64 {
    assert_exit(
        &wachter(&[
            "org",
            "add",
            "Ziekenhuis Demo",
            "--network",
            "192.0.2.0/24",
            "--db",
            db,
        ]),
        0,
    );
    query_ints(
        db,
        "SELECT id FROM organisations WHERE name = 'Ziekenhuis Demo'",
    )
    .and_then(|ids| ids.first().copied())
    .expect("the organisation just added")
}

#[test]
fn a_saved_triage_report_is_kept_with_its_organisation() {
    for db in databases("serve_triage") {
        let db = db.as_str();
        let evidence = attacked_logs("save");
        let evidence = evidence.to_str().unwrap();
        let org_id = add_hospital(db);

        // An unknown organisation: refused before the evidence is read, nothing saved.
        let unknown = wachter(&[
            "triage", evidence, "--json", "--save", "--org", "Nobody", "--db", db,
        ]);
        assert_exit(&unknown, 2);
        assert!(
            stdout(&unknown).is_empty(),
            "no report: {}",
            stdout(&unknown)
        );
        assert!(stderr(&unknown).contains("Nobody"), "{}", stderr(&unknown));
        assert_eq!(
            query_ints(db, "SELECT COUNT(*) FROM triage_reports"),
            Some(vec![0])
        );
        // --org means nothing without --save.
        assert_exit(
            &wachter(&["triage", evidence, "--org", "Ziekenhuis Demo"]),
            2,
        );

        let saved = wachter(&[
            "triage",
            evidence,
            "--json",
            "--save",
            "--org",
            "ziekenhuis demo",
            "--label",
            "vpn01, 2020-01-20",
            "--db",
            db,
        ]);
        let report: serde_json::Value = serde_json::from_slice(&saved.stdout).unwrap();
        let verdict = report["verdict"].as_str().unwrap();
        assert_exit(&saved, exit_code_of(verdict));
        let said = stderr(&saved);
        let id: i64 = said
            .split("saved as triage report ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no id in {said}"))
            .parse()
            .unwrap();
        let hits = report["hits"].as_array().unwrap().len() as i64;
        assert!(hits > 0, "{report:#}");
        assert_eq!(
            query_ints(
                db,
                &format!("SELECT hits, organisation_id FROM triage_reports WHERE id = {id}")
            ),
            Some(vec![hits, org_id])
        );
        let row = query_texts(
            db,
            &format!("SELECT verdict, label, report FROM triage_reports WHERE id = {id}"),
        )
        .unwrap();
        assert_eq!(row[0], verdict);
        assert_eq!(row[1], "vpn01, 2020-01-20");
        let kept: serde_json::Value = serde_json::from_str(&row[2]).unwrap();
        assert_eq!(kept, report, "the report as --json printed it");

        // In text mode the id follows the report; the label defaults to the path.
        let text = wachter(&["triage", evidence, "--save", "--db", db]);
        assert_exit(&text, exit_code_of(verdict));
        let out = stdout(&text);
        let line = out
            .lines()
            .find(|l| l.starts_with("saved as triage report "))
            .unwrap_or_else(|| panic!("{out}"));
        let second: i64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
        assert_ne!(second, id);
        let row = query_texts(
            db,
            &format!("SELECT label FROM triage_reports WHERE id = {second}"),
        )
        .unwrap();
        assert_eq!(row[0], evidence);
        assert_eq!(
            query_ints(
                db,
                &format!(
                    "SELECT COUNT(*) FROM triage_reports WHERE id = {second} AND organisation_id IS NULL"
                )
            ),
            Some(vec![1])
        );
    }
}

/// wachter records of two NetScalers on one address (ports 443 and 8443), as another
/// machine's scan wrote them.
const TWO_APPLIANCES: &str = r#"{"schema":"wachter.service/1","ip":"192.0.2.13","port":443,"time":"2026-01-02T00:00:00Z","status":"open","protocol":"https","connections":1,"timings":{"total_ms":5},"checks":[{"check":"netscaler","product":"netscaler","cves":[{"cve":"CVE-2019-19781","verdict":"vulnerable","basis":"probe"}],"flags":{}}]}
{"schema":"wachter.service/1","ip":"192.0.2.13","port":8443,"time":"2026-01-02T00:00:00Z","status":"open","protocol":"https","connections":1,"timings":{"total_ms":5},"checks":[{"check":"netscaler","product":"netscaler","cves":[{"cve":"CVE-2019-19781","verdict":"mitigated","basis":"probe"}],"flags":{}}]}
"#;

/// `wachter triage --import` of `file` into `db` with `more` arguments.
fn import(file: &std::path::Path, db: &str, more: &[&str]) -> std::process::Output {
    let mut args = vec!["triage", "--import", file.to_str().unwrap(), "--db", db];
    args.extend(more);
    wachter(&args)
}

fn saved_reports(db: &str) -> i64 {
    query_ints(db, "SELECT COUNT(*) FROM triage_reports")
        .map(|row| row[0])
        .unwrap_or(0)
}

#[test]
fn an_owners_own_report_is_imported_and_anything_else_refused() {
    // The owner ran triage on their appliance and sent the JSON.
    let evidence = attacked_logs("import");
    let owners_run = wachter(&["triage", evidence.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&owners_run.stdout).unwrap();
    let verdict = report["verdict"].as_str().unwrap().to_string();
    assert_exit(&owners_run, exit_code_of(&verdict));
    let hits = report["hits"].as_array().unwrap().len() as i64;
    assert!(hits > 0, "{report:#}");
    let sent = temp(
        "owner-report.json",
        &String::from_utf8_lossy(&owners_run.stdout),
    );

    // What is not such a report, each refused with exit 2 and nothing kept.
    let mut edited = report.clone();
    edited["verdict"] = "no_sign_of_compromise".into();
    let mut unknown_verdict = report.clone();
    unknown_verdict["verdict"] = "fine".into();
    let mut hit_without_rule = report.clone();
    hit_without_rule["hits"][0]
        .as_object_mut()
        .unwrap()
        .remove("rule");
    let json_file = |name: &str, value: &serde_json::Value| temp(name, &value.to_string());
    let oversized = work_dir().join("oversized-report.json");
    // Sparse: 64 MiB and one byte that take no room on disk.
    std::fs::File::create(&oversized)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let refused = [
        (
            json_file("not-a-report.json", &serde_json::json!({"hello": "world"})),
            "not a `wachter triage --json` report",
        ),
        (
            json_file("a-list.json", &serde_json::json!([report.clone()])),
            "not a `wachter triage --json` report",
        ),
        (json_file("edited.json", &edited), "is not what its"),
        (
            json_file("unknown-verdict.json", &unknown_verdict),
            "no such verdict",
        ),
        (
            json_file("hit-without-rule.json", &hit_without_rule),
            "rule",
        ),
        (
            temp("not-json.json", "<html>not a report</html>\n"),
            "not JSON",
        ),
        (oversized.clone(), "larger than 64 MiB"),
        (work_dir().join("no-such-report.json"), "cannot open"),
    ];

    // Refused before the store is touched: no database is made for a bad file.
    let untouched = fresh_sqlite("serve-import-untouched");
    for (file, why) in &refused {
        let out = import(file, &untouched, &[]);
        assert_exit(&out, 2);
        let said = stderr(&out);
        assert!(
            said.contains(why) && said.contains("nothing was saved"),
            "{}: {said}",
            file.display()
        );
    }
    assert!(!std::path::Path::new(&untouched).exists());

    for db in databases("serve_triage_import") {
        let db = db.as_str();
        let records = temp("two-appliances.jsonl", TWO_APPLIANCES);
        assert_exit(
            &wachter(&["import", "--db", db, records.to_str().unwrap()]),
            0,
        );
        let org_id = add_hospital(db);
        assert_exit(&wachter(&["attribute", "--db", db]), 0);
        let service_443 = query_ints(
            db,
            "SELECT id FROM services WHERE ip = '192.0.2.13' AND port = 443",
        )
        .unwrap()[0];

        for (file, _) in &refused {
            assert_exit(&import(file, db, &[]), 2);
        }
        // A host or an organisation that is not in the store.
        for (more, why) in [
            (["--host", "192.0.2.99"], "no scanned service"),
            (["--host", "192.0.2.13:9999"], "no scanned service"),
            (["--host", "999999"], "no service 999999"),
            (["--host", "gateway"], "neither an address"),
            (["--host", "192.0.2.13"], "several services"),
            (["--org", "Nobody"], "no such organisation"),
        ] {
            let out = import(&sent, db, &more);
            assert_exit(&out, 2);
            assert!(stderr(&out).contains(why), "{more:?}: {}", stderr(&out));
        }
        assert_eq!(saved_reports(db), 0, "nothing was saved");

        // The owner's report, about the appliance on port 443: its organisation comes
        // with it, and the report is kept exactly as sent.
        let out = import(
            &sent,
            db,
            &["--host", "192.0.2.13:443", "--label", "vpn01 (owner)"],
        );
        assert_exit(&out, 0);
        let said = stdout(&out);
        let id: i64 = said
            .strip_prefix("imported as triage report ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no id in {said}"))
            .parse()
            .unwrap();
        assert_eq!(
            query_ints(
                db,
                &format!(
                    "SELECT hits, organisation_id, service_id FROM triage_reports WHERE id = {id}"
                )
            ),
            Some(vec![hits, org_id, service_443])
        );
        let row = query_texts(
            db,
            &format!("SELECT verdict, label, report FROM triage_reports WHERE id = {id}"),
        )
        .unwrap();
        assert_eq!(
            (row[0].as_str(), row[1].as_str()),
            (verdict.as_str(), "vpn01 (owner)")
        );
        let kept: serde_json::Value = serde_json::from_str(&row[2]).unwrap();
        assert_eq!(kept, report, "the report as the owner's --json printed it");

        // By service id, with --json; the label defaults to the file's path.
        let out = import(&sent, db, &["--host", &service_443.to_string(), "--json"]);
        let summary = json_of(&out);
        assert_eq!(summary["service_id"], service_443);
        assert_eq!(summary["organisation_id"], org_id);
        assert_eq!(summary["verdict"], verdict.as_str());
        assert_eq!(summary["hits"], hits);
        let second = summary["id"].as_i64().unwrap();
        assert_eq!(
            query_texts(
                db,
                &format!("SELECT label FROM triage_reports WHERE id = {second}")
            ),
            Some(vec![sent.display().to_string()])
        );

        // A triage run here can name the appliance too (checked before the evidence).
        let out = wachter(&[
            "triage",
            evidence.to_str().unwrap(),
            "--save",
            "--host",
            "192.0.2.13:8443",
            "--db",
            db,
        ]);
        assert_exit(&out, exit_code_of(&verdict));
        assert_eq!(
            query_ints(
                db,
                "SELECT COUNT(*) FROM triage_reports r JOIN services s ON s.id = r.service_id \
                 WHERE s.port = 8443"
            ),
            Some(vec![1])
        );
        assert_eq!(saved_reports(db), 3);
    }
    let _ = std::fs::remove_file(&oversized);
}
