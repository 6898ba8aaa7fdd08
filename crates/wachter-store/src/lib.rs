//! The store: everything wachter remembers about a case, in an embedded SQLite file or a
//! PostgreSQL database shared by a team.
//!
//! - `scans`: one row per run, with its parameters, state, checkpoint and summary.
//! - `services`: (address, port, hostname), the unit everything else hangs on.
//! - `observations`: append-only; one per service per scan, with the whole record (JSON)
//!   so no evidence is ever lost to a schema that did not foresee it.
//! - `certificates`: by SHA-256, DER kept.
//! - `findings`: the current state per (service, CVE), and `finding_history` with every
//!   change, so "546 → 70" is a query, not a spreadsheet.
//! - `organisations`: who owns a service (filled by attribution).
//! - `campaigns`, `messages` (the outbox, each body apart in `message_bodies`),
//!   `notifications` (which message told which finding) and `ticket_numbers`: who was
//!   told what, when.
//!
//! Only this crate knows SQL, and it writes each statement once for both engines (see
//! [`db`]). Writes arrive through [`StoreSink`], which the scan engine's writer thread
//! feeds; it commits in batches (one transaction per [`BATCH`] records), so a kill loses at
//! most the batch in flight and never corrupts the database (SQLite in WAL mode).

use std::collections::HashSet;

mod access;
mod constituency;
mod db;
mod ingest;
mod notify;
pub mod report;
mod schema;
mod sink;
pub mod view;

pub use access::{SessionRow, TokenGrant, TokenRow, UserCredentials, UserRow};
pub use constituency::{
    AttributionRow, OrganisationChanges, OwnedFinding, RegistryRow, ServiceFacts,
    StoredOrganisation, same_name,
};
pub use db::{Kind, is_postgres_url, redact};
pub use ingest::Prepared;
pub use notify::{
    CampaignCreated, CampaignRow, MailContent, NewCampaign, NewMessage, NoticeCandidate, OutboxRow,
    OutgoingMessage, ticket, timestamp,
};
pub use schema::SCHEMA_VERSION;
pub use sink::{FLUSH_EVERY, StoreSink};

use db::{Db, Row, vals};
use wachter_core::record::ServiceRecord;
use wachter_scan::output::Checkpoint;

/// Records per transaction.
pub const BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{location} is not a wachter database (it holds other data); nothing was written")]
    Foreign { location: String },
    #[error(
        "{location} was written by a newer wachter (schema {found}, this build knows {SCHEMA_VERSION})"
    )]
    TooNew { location: String, found: i64 },
    #[error("database {location}: {source}")]
    Sqlite {
        location: String,
        source: rusqlite::Error,
    },
    #[error("database {location}: {message}")]
    Postgres { location: String, message: String },
    #[error("database {location}: unexpected contents: {detail}")]
    Column { location: String, detail: String },
    #[error("database {location}: {detail}")]
    Operation { location: String, detail: String },
    /// Another writer changed what this operation was decided on; nothing was written.
    #[error("database {location}: {detail}")]
    Conflict { location: String, detail: String },
}

/// An open store.
pub struct Store {
    db: Db,
    /// Certificates this handle has written, to skip re-inserting them.
    known_certs: KnownCerts,
    /// Lookup or insert first for the next batch's services (see `ingest::ServiceOrder`).
    service_order: ingest::ServiceOrder,
}

/// Certificate hashes a store handle has written (bounded: forgotten wholesale when full;
/// the insert is idempotent, so forgetting costs a redundant write, never a wrong one).
#[derive(Default)]
pub(crate) struct KnownCerts(HashSet<String>);

/// How many certificate hashes a store handle remembers.
const KNOWN_CERTS: usize = 100_000;

impl KnownCerts {
    /// Whether `sha256` is new to this handle (and now remembered).
    pub(crate) fn insert(&mut self, sha256: &str) -> bool {
        if self.0.contains(sha256) {
            return false;
        }
        if self.0.len() >= KNOWN_CERTS {
            self.0.clear();
        }
        self.0.insert(sha256.to_string())
    }
}

/// A scan as listed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScanRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub state: String,
    pub services: i64,
    pub seed: u64,
    pub shard: String,
    pub ports: String,
}

/// One finding's state at some scan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FindingState {
    pub ip: String,
    pub port: u16,
    pub hostname: String,
    pub cve: String,
    pub state: String,
    #[serde(skip)]
    pub service_id: i64,
}

/// What a scan is, as remembered.
#[derive(Clone, Debug, Default)]
pub struct ScanInfo {
    pub seed: u64,
    pub shard: String,
    pub ports: String,
    pub check: String,
    pub scope: String,
    /// The full parameters as JSON, for reproducing the scan.
    pub params: String,
    /// What `--resume` needs to run the scan again (the caller's own format), if resumable.
    pub resume: Option<String>,
}

/// A scan that can be resumed.
#[derive(Clone, Debug)]
pub struct ResumeInfo {
    pub state: String,
    pub checkpoint: Checkpoint,
    pub resume: Option<String>,
}

impl Store {
    /// Opens and migrates the store at `location`: a SQLite file (created on first use) or a
    /// `postgres://` URL (the database must exist; its tables are created on first use). A
    /// database holding anything else is refused before anything is written.
    pub fn open(location: &str) -> Result<Store, StoreError> {
        let db = Db::open(location)?;
        match db.kind() {
            Kind::Sqlite => open_sqlite(&db)?,
            Kind::Postgres => migrate_postgres(&db)?,
        }
        Ok(Store {
            db,
            known_certs: KnownCerts::default(),
            service_order: ingest::ServiceOrder::default(),
        })
    }

    /// Where the store is (a file path, or a URL without its password).
    pub fn location(&self) -> &str {
        self.db.location()
    }

    pub fn kind(&self) -> Kind {
        self.db.kind()
    }

    fn column(&self) -> impl Fn(db::ColumnError) -> StoreError + '_ {
        |e| self.db.column_error(e)
    }

    /// Records the start of a scan; returns its id.
    pub fn begin_scan(&self, info: &ScanInfo) -> Result<i64, StoreError> {
        let row = self.db.query_one(
            "INSERT INTO scans (started_at, seed, shard, ports, check_name, scope, params, state, resume) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8) RETURNING id",
            vals![now(), info.seed as i64, &info.shard, &info.ports, &info.check, &info.scope, &info.params, info.resume.as_ref()],
        )?;
        self.single_int(row)
    }

    fn single_int(&self, row: Option<Row>) -> Result<i64, StoreError> {
        match row {
            Some(row) => row.int(0).map_err(self.column()),
            None => Err(self
                .db
                .column_error(db::ColumnError("no row returned".into()))),
        }
    }

    /// Marks a scan finished (or interrupted) and keeps its summary.
    pub fn finish_scan(
        &self,
        scan_id: i64,
        interrupted: bool,
        summary_json: &str,
    ) -> Result<(), StoreError> {
        let state = if interrupted {
            "interrupted"
        } else {
            "finished"
        };
        self.db.execute(
            "UPDATE scans SET finished_at = ?1, state = ?2, summary = ?3, services = (SELECT count(*) FROM observations WHERE scan_id = ?4) WHERE id = ?4",
            vals![now(), state, summary_json, scan_id],
        )?;
        // The scan's standing per CVE, kept for the overview's trend. Derived data: if it
        // cannot be kept now, the overview computes it the first time it misses it, so
        // the scan itself does not fail over it.
        if !interrupted && let Err(e) = self.record_trend(scan_id) {
            tracing::warn!(scan_id, error = %e, "the scan's trend point was not kept; the overview will compute it");
        }
        Ok(())
    }

    /// Writes records of one scan in a single transaction.
    pub fn write_batch(
        &mut self,
        scan_id: i64,
        records: &[ServiceRecord],
    ) -> Result<(), StoreError> {
        let positioned: Vec<(Option<u64>, &ServiceRecord)> =
            records.iter().map(|r| (None, r)).collect();
        self.write_positioned(scan_id, &positioned, None)
    }

    /// Writes records with their positions, and the checkpoint they complete, in one
    /// transaction: after a crash the checkpoint never claims more than was committed.
    /// Blocked records, and closed ones of services never seen open, are not stored.
    pub fn write_positioned(
        &mut self,
        scan_id: i64,
        records: &[(Option<u64>, &ServiceRecord)],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        let prepared: Vec<Prepared> = records
            .iter()
            .filter_map(|(position, record)| Prepared::new(*position, record))
            .collect();
        self.write_prepared(scan_id, prepared, checkpoint)
    }

    /// [`Store::write_positioned`] for records already made ready (see [`Prepared`]).
    pub fn write_prepared(
        &mut self,
        scan_id: i64,
        records: Vec<Prepared>,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        ingest::write(
            &self.db,
            &mut self.known_certs,
            &mut self.service_order,
            scan_id,
            records,
            checkpoint,
        )
    }

    /// Whether the store knows any service yet.
    pub fn has_services(&self) -> Result<bool, StoreError> {
        let row = self.db.query_one(
            "SELECT count(*) FROM (SELECT 1 FROM services LIMIT 1) AS one",
            vals![],
        )?;
        Ok(self.single_int(row)? > 0)
    }

    /// Open findings per CVE and state, for summaries and tests.
    pub fn finding_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = self.db.query(
            "SELECT cve, state, count(*) FROM findings GROUP BY cve, state ORDER BY cve, state",
            vals![],
        )?;
        rows.iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
            .collect::<Result<_, _>>()
            .map_err(self.column())
    }

    /// How many observations a scan holds.
    pub fn observation_count(&self, scan_id: i64) -> Result<i64, StoreError> {
        let row = self.db.query_one(
            "SELECT count(*) FROM observations WHERE scan_id = ?1",
            vals![scan_id],
        )?;
        self.single_int(row)
    }

    /// State changes of one finding, oldest first: (scan id, from, to).
    pub fn history(
        &self,
        ip: &str,
        port: u16,
        cve: &str,
    ) -> Result<Vec<(i64, Option<String>, String)>, StoreError> {
        let rows = self.db.query(
            "SELECT h.scan_id, h.from_state, h.to_state FROM finding_history h JOIN findings f ON f.id = h.finding_id \
             JOIN services s ON s.id = f.service_id WHERE s.ip = ?1 AND s.port = ?2 AND f.cve = ?3 ORDER BY h.id",
            vals![ip, port, cve],
        )?;
        rows.iter()
            .map(|r| Ok((r.int(0)?, r.opt_text(1)?, r.text(2)?)))
            .collect::<Result<_, _>>()
            .map_err(self.column())
    }

    /// Where an interrupted scan stands, and how to run it again.
    pub fn resume_info(&self, scan_id: i64) -> Result<Option<ResumeInfo>, StoreError> {
        let Some(row) = self.db.query_one(
            "SELECT state, checkpoint, resume FROM scans WHERE id = ?1",
            vals![scan_id],
        )?
        else {
            return Ok(None);
        };
        let (state, checkpoint, resume) =
            (|| Ok((row.text(0)?, row.opt_text(1)?, row.opt_text(2)?)))().map_err(self.column())?;
        Ok(Some(ResumeInfo {
            state,
            checkpoint: checkpoint
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default(),
            resume,
        }))
    }

    /// Makes a scan ready to continue: observations of targets the checkpoint does not mark
    /// complete (a target cut short by the crash) are removed, so none is counted twice.
    /// Returns how many were removed.
    pub fn reopen_scan(
        &mut self,
        scan_id: i64,
        checkpoint: &Checkpoint,
    ) -> Result<usize, StoreError> {
        self.db.write(|db| {
            let rows = db.query(
                "SELECT DISTINCT position FROM observations WHERE scan_id = ?1 AND position >= ?2",
                vals![scan_id, checkpoint.next as i64],
            )?;
            let mut removed = 0;
            for row in rows {
                let position = row.int(0).map_err(|e| db.column_error(e))?;
                if checkpoint.is_done(position as u64) {
                    continue;
                }
                removed += db.execute(
                    "DELETE FROM observations WHERE scan_id = ?1 AND position = ?2",
                    vals![scan_id, position],
                )?;
            }
            db.execute(
                "UPDATE scans SET state = 'running', finished_at = NULL WHERE id = ?1",
                vals![scan_id],
            )?;
            // Its trend is computed live again while it runs, and kept when it finishes.
            db.execute(
                "DELETE FROM trend_points WHERE scan_id = ?1",
                vals![scan_id],
            )?;
            Ok(removed as usize)
        })
    }

    /// Every scan, oldest first.
    pub fn scans(&self) -> Result<Vec<ScanRow>, StoreError> {
        let rows = self.db.query(
            "SELECT id, started_at, finished_at, state, services, seed, shard, ports FROM scans ORDER BY id",
            vals![],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ScanRow {
                    id: r.int(0)?,
                    started_at: r.text(1)?,
                    finished_at: r.opt_text(2)?,
                    state: r.text(3)?,
                    services: r.int(4)?,
                    seed: r.int(5)? as u64,
                    shard: r.text(6)?,
                    ports: r.text(7)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(self.column())
    }

    /// Every finding's state as it stood after `scan_id` (findings first seen later are absent).
    pub fn finding_states(&self, scan_id: i64) -> Result<Vec<FindingState>, StoreError> {
        let rows = self.db.query(
            "SELECT s.ip, s.port, s.hostname, f.cve, h.to_state, f.service_id FROM finding_history h \
             JOIN findings f ON f.id = h.finding_id JOIN services s ON s.id = f.service_id \
             WHERE h.id = (SELECT h2.id FROM finding_history h2 WHERE h2.finding_id = h.finding_id AND h2.scan_id <= ?1 ORDER BY h2.scan_id DESC, h2.id DESC LIMIT 1) \
             ORDER BY s.ip, s.port, s.hostname, f.cve",
            vals![scan_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(FindingState {
                    ip: r.text(0)?,
                    port: u16::try_from(r.int(1)?).unwrap_or(0),
                    hostname: r.text(2)?,
                    cve: r.text(3)?,
                    state: r.text(4)?,
                    service_id: r.int(5)?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(self.column())
    }

    /// How each service answered in a scan (`open`, `closed`, `filtered`, …), by service id.
    pub fn service_statuses(
        &self,
        scan_id: i64,
    ) -> Result<std::collections::HashMap<i64, String>, StoreError> {
        let rows = self.db.query(
            "SELECT service_id, status FROM observations WHERE scan_id = ?1",
            vals![scan_id],
        )?;
        rows.iter()
            .map(|r| Ok((r.int(0)?, r.text(1)?)))
            .collect::<Result<_, _>>()
            .map_err(self.column())
    }

    /// Copies the database, consistently, to the file `target`: SQLite's `VACUUM INTO` (a
    /// ready-to-open store), or `pg_dump --format=custom` for PostgreSQL (restore with
    /// `pg_restore`).
    pub fn backup(&self, target: &std::path::Path) -> Result<(), StoreError> {
        match self.db.kind() {
            Kind::Sqlite => self
                .db
                .execute("VACUUM INTO ?1", vals![target.display().to_string()])
                .map(|_| ()),
            Kind::Postgres => {
                let failed = |detail: String| StoreError::Operation {
                    location: self.location().to_string(),
                    detail,
                };
                let output = std::process::Command::new("pg_dump")
                    .arg("--format=custom")
                    .arg("--file")
                    .arg(target)
                    .arg("--dbname")
                    .arg(self.db.connection_string())
                    .output()
                    .map_err(|e| {
                        failed(format!(
                            "cannot run pg_dump (is the PostgreSQL client installed?): {e}"
                        ))
                    })?;
                if output.status.success() {
                    Ok(())
                } else {
                    Err(failed(format!(
                        "pg_dump failed: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    )))
                }
            }
        }
    }

    /// Reclaims space and refreshes the planner's statistics.
    pub fn vacuum(&self) -> Result<(), StoreError> {
        match self.db.kind() {
            Kind::Sqlite => self.db.batch("VACUUM; ANALYZE"),
            Kind::Postgres => self.db.batch("VACUUM (ANALYZE)"),
        }
    }

    /// The schema version in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match self.db.kind() {
            Kind::Sqlite => sqlite_version(&self.db),
            Kind::Postgres => postgres_version(&self.db).map(|v| v.unwrap_or(0)),
        }
    }
}

/// Checks that a SQLite file is wachter's (or empty), sets it up and migrates it. Nothing
/// is written to a foreign or newer file.
fn open_sqlite(db: &Db) -> Result<(), StoreError> {
    let location = || db.location().to_string();
    let app_id = sqlite_int(db, "PRAGMA application_id")?;
    let tables = sqlite_int(db, "SELECT count(*) FROM sqlite_master")?;
    if app_id != schema::APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(StoreError::Foreign {
            location: location(),
        });
    }
    let version = sqlite_version(db)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            location: location(),
            found: version,
        });
    }
    if tables == 0 {
        // Observations are ~1 KB of JSON each: 16 KiB pages mean fewer page splits and
        // fewer index levels (measured: ~15% faster ingest than 4 KiB). Only settable
        // before the first table exists.
        db.batch("PRAGMA page_size = 16384")?;
    }
    db.batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=4096;",
    )?;
    if version < SCHEMA_VERSION {
        db.write(|db| {
            // Read again under the lock: another process may have migrated meanwhile.
            let version = sqlite_version(db)?;
            for m in schema::SQLITE.iter().filter(|m| m.version > version) {
                db.batch(m.sql)?;
            }
            db.batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        })?;
    }
    Ok(())
}

fn sqlite_int(db: &Db, sql: &str) -> Result<i64, StoreError> {
    match db.query_one(sql, vals![])? {
        Some(row) => row.int(0).map_err(|e| db.column_error(e)),
        None => Ok(0),
    }
}

fn sqlite_version(db: &Db) -> Result<i64, StoreError> {
    sqlite_int(db, "PRAGMA user_version")
}

/// The schema version recorded in a PostgreSQL database; `None` if it is not wachter's.
fn postgres_version(db: &Db) -> Result<Option<i64>, StoreError> {
    let meta = db.query_one(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'wachter_meta'",
        vals![],
    )?;
    let has_meta = match meta {
        Some(row) => row.int(0).map_err(|e| db.column_error(e))? > 0,
        None => false,
    };
    if !has_meta {
        return Ok(None);
    }
    let version = db.query_one(
        "SELECT value FROM wachter_meta WHERE key = 'schema_version'",
        vals![],
    )?;
    Ok(Some(match version {
        Some(row) => row
            .text(0)
            .map_err(|e| db.column_error(e))?
            .parse()
            .unwrap_or(0),
        None => 0,
    }))
}

/// Creates or migrates wachter's tables in a PostgreSQL database, under the write lock and
/// in one transaction (PostgreSQL's DDL is transactional): a database holding other tables
/// is refused, and a failed migration leaves nothing behind.
fn migrate_postgres(db: &Db) -> Result<(), StoreError> {
    // Up to date: nothing to lock (a reader must not queue behind a running scan).
    if postgres_version(db)? == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    db.write(|db| {
        let version = match postgres_version(db)? {
            Some(v) => v,
            None => {
                let tables = db.query_one(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
                    vals![],
                )?;
                let tables = match tables {
                    Some(row) => row.int(0).map_err(|e| db.column_error(e))?,
                    None => 0,
                };
                if tables > 0 {
                    return Err(StoreError::Foreign {
                        location: db.location().to_string(),
                    });
                }
                0
            }
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                location: db.location().to_string(),
                found: version,
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        for m in schema::POSTGRES.iter().filter(|m| m.version > version) {
            db.batch(m.sql)?;
        }
        db.execute(
            "INSERT INTO wachter_meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vals![SCHEMA_VERSION.to_string()],
        )?;
        Ok(())
    })
}

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Test support: a fresh PostgreSQL database per test, when the suite has a server.
#[doc(hidden)]
pub mod testing {
    /// The server the tests may use: a URL without a database (`postgres://user@host:port`).
    pub const SERVER_VAR: &str = "CI_POSTGRES_URL";
    /// Set (by `.ci/run`) when the PostgreSQL half of the suite must run, not be skipped.
    pub const REQUIRED_VAR: &str = "CI_POSTGRES_REQUIRED";

    /// Removes a SQLite file with its journal files, if there.
    pub fn remove_sqlite(path: &str) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }

    /// A path for a fresh SQLite file in the temporary folder, named by the tests' `area`,
    /// this process and `name`, with nothing left there from an earlier run.
    pub fn temp_sqlite(area: &str, name: &str) -> String {
        let path = std::env::temp_dir()
            .join(format!("wachter-{area}-{}-{name}.db", std::process::id()))
            .display()
            .to_string();
        remove_sqlite(&path);
        path
    }

    /// A URL to a new, empty database called `name` on the test server (dropped first if
    /// it exists), or `None` when no server is configured and none is required.
    pub fn postgres_database(name: &str) -> Option<String> {
        let Ok(server) = std::env::var(SERVER_VAR) else {
            assert!(
                std::env::var_os(REQUIRED_VAR).is_none(),
                "{REQUIRED_VAR} is set but {SERVER_VAR} is not: the PostgreSQL tests cannot run"
            );
            eprintln!("{SERVER_VAR} not set: PostgreSQL half of this test skipped");
            return None;
        };
        let server = server.trim_end_matches('/').to_string();
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let admin = format!("{server}/postgres");
        let statement =
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name}");
        // The synchronous client must not run on a thread that drives an async runtime.
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)
                .unwrap_or_else(|e| panic!("cannot reach the test server {admin}: {e}"));
            for sql in statement.split("; ") {
                client
                    .batch_execute(sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            }
        })
        .join()
        .expect("creating the test database");
        Some(format!("{server}/{name}"))
    }
}

#[cfg(test)]
mod tests;
