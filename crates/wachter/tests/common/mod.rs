//! Helpers shared by the command-line tests: running the binary, temporary files, the
//! databases a store test runs on, and a small lab.

#![allow(dead_code)] // each test crate uses its own subset

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use wachter_lab::{Behaviour, HostSpec, KeyKind, Lab, LabOptions};

pub fn wachter(args: &[&str]) -> Output {
    wachter_with_stdin(args, None)
}

/// Runs wachter (off the runtime), asserts it succeeded, and parses its JSON output.
pub async fn wachter_json(args: &[&str]) -> serde_json::Value {
    let out = wachter_async(args).await;
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs wachter off the async runtime, so the lab hosts this test serves keep answering.
pub async fn wachter_async(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        wachter(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The wachter binary with `args`, as every test runs it: no configuration file from the
/// environment, in this test process's own folder.
pub fn wachter_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wachter"));
    command
        .args(args)
        .env_remove("WACHTER_CONFIG")
        // Scans record in ./wachter.db by default: give each test process its own folder.
        .current_dir(work_dir());
    command
}

pub fn wachter_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = wachter_command(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

pub fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wachter-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn temp(name: &str, content: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("wachter-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, content).unwrap();
    path
}

pub fn records(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `wachter user add` with `password` on standard input; asserts it succeeded.
pub fn add_user(db: &str, name: &str, role: &str, password: &str) {
    let out = wachter_with_stdin(
        &[
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--db",
            db,
        ],
        Some(&format!("{password}\n")),
    );
    assert_exit(&out, 0);
}

pub use wachter_store::testing::remove_sqlite;

/// The path of a fresh SQLite file called `name` in the work folder.
pub fn fresh_sqlite(name: &str) -> String {
    let file = work_dir().join(format!("{name}.db")).display().to_string();
    remove_sqlite(&file);
    file
}

/// The databases a store test runs on: a fresh SQLite file, and a fresh PostgreSQL
/// database when the suite has a server (`.ci/run` always does).
pub fn databases(name: &str) -> Vec<String> {
    let mut all = vec![fresh_sqlite(name)];
    all.extend(wachter_store::testing::postgres_database(&format!(
        "cli_{name}_{}",
        std::process::id()
    )));
    all
}

/// The integers one row of `sql` holds, read straight from either backend (`None` while
/// the database or its tables do not exist yet).
pub fn query_ints(db: &str, sql: &str) -> Option<Vec<i64>> {
    query_row(db, sql)
}

/// The texts one row of `sql` holds, read straight from either backend (`None` while the
/// database or its tables do not exist yet).
pub fn query_texts(db: &str, sql: &str) -> Option<Vec<String>> {
    query_row(db, sql)
}

/// The columns of one row of `sql`, all of one type, read straight from either backend
/// (`None` while the database or its tables do not exist yet, or a column is not a `T`).
fn query_row<T>(db: &str, sql: &str) -> Option<Vec<T>>
where
    T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> + Send + 'static,
{
    let (db, sql) = (db.to_string(), sql.to_string());
    // The synchronous PostgreSQL client must not run on an async runtime's thread.
    std::thread::spawn(move || {
        if wachter_store::is_postgres_url(&db) {
            let mut client = postgres::Client::connect(&db, postgres::NoTls).ok()?;
            let row = client.query_one(&sql, &[]).ok()?;
            Some((0..row.len()).map(|i| row.get::<_, T>(i)).collect())
        } else {
            let conn = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .ok()?;
            conn.query_row(&sql, [], |r| {
                (0..r.as_ref().column_count())
                    .map(|i| r.get::<_, T>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .ok()
        }
    })
    .join()
    .ok()
    .flatten()
}

/// A lab of `behaviours` on consecutive addresses from `block_start`, port 18443.
pub async fn lab(block_start: &str, behaviours: &[Behaviour]) -> Lab {
    let first: std::net::Ipv4Addr = block_start.parse().unwrap();
    let hosts: Vec<(std::net::IpAddr, Behaviour)> = behaviours
        .iter()
        .enumerate()
        .map(|(i, b)| {
            (
                std::net::Ipv4Addr::from(u32::from(first) + i as u32).into(),
                *b,
            )
        })
        .collect();
    lab_hosts(&hosts).await
}

/// A lab of these hosts (addresses as text), each on port 18443.
pub async fn lab_at(hosts: &[(&str, Behaviour)]) -> Lab {
    let hosts: Vec<(std::net::IpAddr, Behaviour)> = hosts
        .iter()
        .map(|(ip, b)| (ip.parse().expect("lab address"), *b))
        .collect();
    lab_hosts(&hosts).await
}

/// A lab of these hosts, each on port 18443.
pub async fn lab_hosts(hosts: &[(std::net::IpAddr, Behaviour)]) -> Lab {
    Lab::start(
        hosts
            .iter()
            .map(|(ip, behaviour)| HostSpec {
                ip: *ip,
                port: 18443,
                behaviour: *behaviour,
                hostname: None,
            })
            .collect(),
        &LabOptions {
            key: KeyKind::Ecdsa,
            drip_interval: Duration::from_millis(50),
            log_requests: false,
        },
    )
    .await
    .unwrap()
}
