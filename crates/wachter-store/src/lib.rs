//! The store: everything wachter remembers about a case, in an embedded SQLite file.
//!
//! - `scans`: one row per run, with its parameters, state and summary.
//! - `services`: (address, port, hostname), the unit everything else hangs on.
//! - `observations`: append-only; one per service per scan, with the whole record (JSON)
//!   so no evidence is ever lost to a schema that did not foresee it.
//! - `certificates`: by SHA-256, DER kept.
//! - `findings`: the current state per (service, CVE), and `finding_history` with every
//!   change, so "546 → 70" is a query, not a spreadsheet.
//!
//! Only this crate knows SQL. Writes arrive through [`StoreSink`], which the scan engine's
//! writer thread feeds; it commits in batches (one transaction per [`BATCH`] records), so a
//! kill loses at most the batch in flight and never corrupts the file (WAL).

use std::path::Path;

pub mod report;

use rusqlite::{Connection, OptionalExtension, params};
use wachter_core::assessment::{Product, Verdict};
use wachter_core::record::{ServiceRecord, Status};
use wachter_scan::output::{Checkpoint, RecordSink};

/// `PRAGMA application_id`: marks a SQLite file as wachter's ("WACH").
const APPLICATION_ID: i64 = 0x5741_4348;
/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;
/// Records per transaction.
pub const BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not a wachter database (it holds other data); nothing was written")]
    Foreign { path: String },
    #[error(
        "{path} was written by a newer wachter (schema {found}, this build knows {SCHEMA_VERSION})"
    )]
    TooNew { path: String, found: i64 },
    #[error("database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
}

/// An open store.
pub struct Store {
    conn: Connection,
    path: String,
    /// Certificates this handle has written, to skip re-inserting them (bounded).
    known_certs: std::collections::HashSet<String>,
}

/// How many certificate hashes a store handle remembers.
const KNOWN_CERTS: usize = 100_000;

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
    /// Opens (creating on first use) and migrates the database at `path`. A file that is
    /// not a wachter database is refused before anything is written.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        let err = |source| StoreError::Sqlite {
            path: name.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(err)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(err)?;
        if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
            return Err(StoreError::Foreign { path: name });
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: name,
                found: version,
            });
        }
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=16384;",
        )
        .map_err(err)?;
        let store = Store {
            conn,
            path: name,
            known_certs: std::collections::HashSet::new(),
        };
        store.migrate(version)?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&self, from: i64) -> Result<(), StoreError> {
        if from < 1 {
            self.conn.execute_batch(MIGRATION_1).map_err(self.err())?;
        }
        if from < 2 {
            self.conn.execute_batch(MIGRATION_2).map_err(self.err())?;
        }
        Ok(())
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Records the start of a scan; returns its id.
    pub fn begin_scan(&self, info: &ScanInfo) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO scans (started_at, seed, shard, ports, check_name, scope, params, state, resume) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8)",
                params![now(), info.seed as i64, info.shard, info.ports, info.check, info.scope, info.params, info.resume],
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
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
        self.conn
            .execute(
                "UPDATE scans SET finished_at = ?1, state = ?2, summary = ?3, services = (SELECT count(*) FROM observations WHERE scan_id = ?4) WHERE id = ?4",
                params![now(), state, summary_json, scan_id],
            )
            .map_err(self.err())?;
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
    pub fn write_positioned(
        &mut self,
        scan_id: i64,
        records: &[(Option<u64>, &ServiceRecord)],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // IMMEDIATE: take the write lock now, so a second writer waits here (up to the busy
        // timeout) instead of failing half-way through a batch.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut service = tx
                .prepare_cached("INSERT INTO services (ip, port, hostname) VALUES (?1, ?2, ?3) ON CONFLICT (ip, port, hostname) DO UPDATE SET ip = excluded.ip RETURNING id")
                .map_err(err)?;
            let mut known = tx
                .prepare_cached(
                    "SELECT id FROM services WHERE ip = ?1 AND port = ?2 AND hostname = ?3",
                )
                .map_err(err)?;
            let mut cert = tx
                .prepare_cached("INSERT INTO certificates (sha256, der, subject, issuer, not_after, sans, first_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (sha256) DO NOTHING")
                .map_err(err)?;
            let mut observation = tx
                .prepare_cached("INSERT INTO observations (scan_id, service_id, observed_at, status, protocol, cert_sha256, record, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .map_err(err)?;
            let mut current = tx
                .prepare_cached("SELECT id, state, last_scan_id FROM findings WHERE service_id = ?1 AND cve = ?2")
                .map_err(err)?;
            let mut insert_finding = tx
                .prepare_cached("INSERT INTO findings (service_id, cve, state, basis, detail, first_seen, last_seen, last_scan_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) RETURNING id")
                .map_err(err)?;
            let mut update_finding = tx
                .prepare_cached("UPDATE findings SET state = ?1, basis = ?2, detail = ?3, last_seen = ?4, last_scan_id = ?5 WHERE id = ?6")
                .map_err(err)?;
            let mut history = tx
                .prepare_cached("INSERT INTO finding_history (finding_id, scan_id, at, from_state, to_state) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(err)?;
            for (position, record) in records {
                let position = position.map(|p| p as i64);
                let hostname = record.hostname.clone().unwrap_or_default();
                let key = params![record.ip.to_string(), record.port, hostname];
                // The empty Internet is not remembered: a closed or silent address becomes a
                // service only once it has been seen open. A known service that stops
                // answering is recorded, so it can show as unreachable rather than fixed.
                let service_id: i64 = match record.status {
                    Status::Open => service.query_row(key, |r| r.get(0)).map_err(err)?,
                    Status::Blocked => continue,
                    _ => match known.query_row(key, |r| r.get(0)).optional().map_err(err)? {
                        Some(id) => id,
                        None => continue,
                    },
                };
                let leaf = record.tls.as_ref().and_then(|t| t.chain.first());
                // Appliances share (wildcard) certificates: each is written once per store handle.
                if let Some(leaf) = leaf.filter(|l| !self.known_certs.contains(&l.sha256)) {
                    if self.known_certs.len() >= KNOWN_CERTS {
                        self.known_certs.clear();
                    }
                    self.known_certs.insert(leaf.sha256.clone());
                    let der = base64_decode(&leaf.der);
                    let sans = serde_json::to_string(&leaf.sans).unwrap_or_default();
                    cert.execute(params![
                        leaf.sha256,
                        der,
                        leaf.subject,
                        leaf.issuer,
                        leaf.not_after,
                        sans,
                        record.time
                    ])
                    .map_err(err)?;
                }
                let json = serde_json::to_string(record).unwrap_or_default();
                observation
                    .execute(params![
                        scan_id,
                        service_id,
                        record.time,
                        record.status.as_str(),
                        record.protocol.map(|p| p.as_str()),
                        leaf.map(|l| l.sha256.clone()),
                        json,
                        position
                    ])
                    .map_err(err)?;
                for assessment in record
                    .checks
                    .iter()
                    .filter(|a| a.product != Product::NotNetscaler)
                {
                    for v in assessment.cves.iter().filter(|v| {
                        // Nothing to track: not affected, or an uncertain product with an
                        // uncertain verdict (a honeypot). Imports name CVEs on an unknown
                        // product and are kept.
                        v.verdict != Verdict::NotApplicable
                            && !(assessment.product == Product::Unknown
                                && v.verdict == Verdict::Unknown)
                    }) {
                        let state = v.verdict.as_str();
                        let basis = serde_json::to_value(v.basis)
                            .ok()
                            .and_then(|b| b.as_str().map(str::to_string))
                            .unwrap_or_default();
                        let existing: Option<(i64, String, i64)> = current
                            .query_row(params![service_id, v.cve], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })
                            .optional()
                            .map_err(err)?;
                        match existing {
                            None => {
                                let id: i64 = insert_finding
                                    .query_row(
                                        params![
                                            service_id,
                                            v.cve,
                                            state,
                                            basis,
                                            v.detail,
                                            record.time,
                                            scan_id
                                        ],
                                        |r| r.get(0),
                                    )
                                    .map_err(err)?;
                                history
                                    .execute(params![
                                        id,
                                        scan_id,
                                        record.time,
                                        Option::<String>::None,
                                        state
                                    ])
                                    .map_err(err)?;
                            }
                            // An older scan arriving late (a resume, an old import) adds to
                            // the history at its own place but does not overwrite a newer state.
                            Some((id, _, last)) if scan_id < last => {
                                history
                                    .execute(params![
                                        id,
                                        scan_id,
                                        record.time,
                                        Option::<String>::None,
                                        state
                                    ])
                                    .map_err(err)?;
                            }
                            Some((id, old, _)) => {
                                update_finding
                                    .execute(params![
                                        state,
                                        basis,
                                        v.detail,
                                        record.time,
                                        scan_id,
                                        id
                                    ])
                                    .map_err(err)?;
                                if old != state {
                                    history
                                        .execute(params![id, scan_id, record.time, old, state])
                                        .map_err(err)?;
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(checkpoint) = checkpoint {
            let json = serde_json::to_string(checkpoint).unwrap_or_default();
            tx.execute(
                "UPDATE scans SET checkpoint = ?1 WHERE id = ?2",
                params![json, scan_id],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Open findings per CVE and state, for summaries and tests.
    pub fn finding_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT cve, state, count(*) FROM findings GROUP BY cve, state ORDER BY cve, state",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How many observations a scan holds.
    pub fn observation_count(&self, scan_id: i64) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM observations WHERE scan_id = ?1",
                [scan_id],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    /// State changes of one finding, oldest first: (scan id, from, to).
    pub fn history(
        &self,
        ip: &str,
        port: u16,
        cve: &str,
    ) -> Result<Vec<(i64, Option<String>, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT h.scan_id, h.from_state, h.to_state FROM finding_history h JOIN findings f ON f.id = h.finding_id \
                 JOIN services s ON s.id = f.service_id WHERE s.ip = ?1 AND s.port = ?2 AND f.cve = ?3 ORDER BY h.id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![ip, port, cve], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Where an interrupted scan stands, and how to run it again.
    pub fn resume_info(&self, scan_id: i64) -> Result<Option<ResumeInfo>, StoreError> {
        let row: Option<(String, Option<String>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT state, checkpoint, resume FROM scans WHERE id = ?1",
                [scan_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())?;
        Ok(row.map(|(state, checkpoint, resume)| ResumeInfo {
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
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let positions: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT DISTINCT position FROM observations WHERE scan_id = ?1 AND position >= ?2").map_err(err)?;
            let rows = stmt
                .query_map(params![scan_id, checkpoint.next as i64], |r| r.get(0))
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        let mut removed = 0;
        for position in positions
            .into_iter()
            .filter(|p| !checkpoint.is_done(*p as u64))
        {
            removed += tx
                .execute(
                    "DELETE FROM observations WHERE scan_id = ?1 AND position = ?2",
                    params![scan_id, position],
                )
                .map_err(err)?;
        }
        tx.execute(
            "UPDATE scans SET state = 'running', finished_at = NULL WHERE id = ?1",
            [scan_id],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(removed)
    }

    /// Every scan, oldest first.
    pub fn scans(&self) -> Result<Vec<ScanRow>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, started_at, finished_at, state, services, seed, shard, ports FROM scans ORDER BY id").map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ScanRow {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    state: r.get(3)?,
                    services: r.get(4)?,
                    seed: r.get::<_, i64>(5)? as u64,
                    shard: r.get(6)?,
                    ports: r.get(7)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Every finding's state as it stood after `scan_id` (findings first seen later are absent).
    pub fn finding_states(&self, scan_id: i64) -> Result<Vec<FindingState>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.ip, s.port, s.hostname, f.cve, h.to_state, f.service_id FROM finding_history h \
                 JOIN findings f ON f.id = h.finding_id JOIN services s ON s.id = f.service_id \
                 WHERE h.id = (SELECT h2.id FROM finding_history h2 WHERE h2.finding_id = h.finding_id AND h2.scan_id <= ?1 ORDER BY h2.scan_id DESC, h2.id DESC LIMIT 1) \
                 ORDER BY s.ip, s.port, s.hostname, f.cve",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([scan_id], |r| {
                Ok(FindingState {
                    ip: r.get(0)?,
                    port: r.get(1)?,
                    hostname: r.get(2)?,
                    cve: r.get(3)?,
                    state: r.get(4)?,
                    service_id: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How each service answered in a scan (`open`, `closed`, `filtered`, …), by service id.
    pub fn service_statuses(
        &self,
        scan_id: i64,
    ) -> Result<std::collections::HashMap<i64, String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT service_id, status FROM observations WHERE scan_id = ?1")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([scan_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Copies the database, consistently, to `target` (SQLite `VACUUM INTO`).
    pub fn backup(&self, target: &Path) -> Result<(), StoreError> {
        let target = target.display().to_string();
        self.conn
            .execute("VACUUM INTO ?1", [target])
            .map(|_| ())
            .map_err(self.err())
    }

    /// Rebuilds the file to reclaim space.
    pub fn vacuum(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("VACUUM").map_err(self.err())
    }

    /// The schema version in the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err())
    }
}

const MIGRATION_1: &str = "
BEGIN;
CREATE TABLE scans (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seed INTEGER NOT NULL,
    shard TEXT NOT NULL,
    ports TEXT NOT NULL,
    check_name TEXT NOT NULL,
    scope TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    services INTEGER NOT NULL DEFAULT 0,
    summary TEXT
);
CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    UNIQUE (ip, port, hostname)
);
CREATE TABLE certificates (
    sha256 TEXT PRIMARY KEY,
    der BLOB NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    not_after TEXT,
    sans TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE observations (
    id INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans (id),
    service_id INTEGER NOT NULL REFERENCES services (id),
    observed_at TEXT NOT NULL,
    status TEXT NOT NULL,
    protocol TEXT,
    cert_sha256 TEXT,
    record TEXT NOT NULL
);
CREATE INDEX observations_by_scan ON observations (scan_id);
CREATE INDEX observations_by_service ON observations (service_id);
CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL REFERENCES services (id),
    cve TEXT NOT NULL,
    state TEXT NOT NULL,
    basis TEXT NOT NULL,
    detail TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_scan_id INTEGER NOT NULL REFERENCES scans (id),
    UNIQUE (service_id, cve)
);
CREATE TABLE finding_history (
    id INTEGER PRIMARY KEY,
    finding_id INTEGER NOT NULL REFERENCES findings (id),
    scan_id INTEGER NOT NULL REFERENCES scans (id),
    at TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL
);
PRAGMA application_id = 1463894856;
PRAGMA user_version = 1;
COMMIT;
";

/// Resume support: where a scan stands, how to run it again, and which target position
/// each observation belongs to.
const MIGRATION_2: &str = "
BEGIN;
ALTER TABLE scans ADD COLUMN checkpoint TEXT;
ALTER TABLE scans ADD COLUMN resume TEXT;
ALTER TABLE observations ADD COLUMN position INTEGER;
PRAGMA user_version = 2;
COMMIT;
";

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The DER as bytes; it came from our own encoder, and a decoding failure keeps an empty
/// blob rather than losing the observation (whose JSON still holds the text).
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

/// Feeds records into the store from the engine's writer thread: one transaction per
/// [`BATCH`] records or per [`FLUSH_EVERY`], with the latest checkpoint in the same commit.
pub struct StoreSink {
    store: Store,
    scan_id: i64,
    pending: Vec<(u64, ServiceRecord)>,
    checkpoint: Option<Checkpoint>,
    last_flush: std::time::Instant,
    checkpointer: Option<WalCheckpointer>,
    /// Whether the store held any service when the scan started.
    knows_services: bool,
}

/// Copies the write-ahead log into the database file from a thread of its own, so the
/// writer never stalls on it (SQLite would otherwise checkpoint inside a commit).
struct WalCheckpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WalCheckpointer {
    fn start(path: &str) -> Option<WalCheckpointer> {
        let conn = Connection::open(path).ok()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                // PASSIVE: copy what it can without waiting for the writer.
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
            }
        });
        Some(WalCheckpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The longest a record waits in memory before it is committed.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl StoreSink {
    pub fn new(store: Store, scan_id: i64) -> Self {
        let checkpointer = WalCheckpointer::start(&store.path);
        if checkpointer.is_some() {
            let _ = store.conn.execute_batch("PRAGMA wal_autocheckpoint=0");
        }
        // A store with no services yet cannot know any address this scan finds closed: skip
        // looking them up one by one (a discovery sweep is mostly closed ports).
        let knows_services = store
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM services)", [], |r| {
                r.get::<_, bool>(0)
            })
            .unwrap_or(true);
        StoreSink {
            store,
            scan_id,
            pending: Vec::with_capacity(BATCH),
            checkpoint: None,
            last_flush: std::time::Instant::now(),
            checkpointer,
            knows_services,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.last_flush = std::time::Instant::now();
        if self.pending.is_empty() && self.checkpoint.is_none() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let positioned: Vec<(Option<u64>, &ServiceRecord)> =
            batch.iter().map(|(p, r)| (Some(*p), r)).collect();
        let checkpoint = self.checkpoint.take();
        self.store
            .write_positioned(self.scan_id, &positioned, checkpoint.as_ref())
            .map_err(std::io::Error::other)
    }

    fn due(&self) -> bool {
        self.pending.len() >= BATCH || self.last_flush.elapsed() >= FLUSH_EVERY
    }
}

impl RecordSink for StoreSink {
    fn write(&mut self, position: u64, record: &ServiceRecord) -> std::io::Result<()> {
        // Never stored (see `write_positioned`): blocked targets, and closed ones the store
        // cannot know.
        let storable = match record.status {
            Status::Open => true,
            Status::Blocked => false,
            _ => self.knows_services,
        };
        if storable {
            self.pending.push((position, record.clone()));
        }
        if self.due() { self.flush() } else { Ok(()) }
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> std::io::Result<()> {
        self.checkpoint = Some(checkpoint.clone());
        if self.due() { self.flush() } else { Ok(()) }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.checkpointer = None;
        // Fold the log into the file now that the writing is over.
        let _ = self
            .store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
