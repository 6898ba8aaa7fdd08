//! Writing a batch of records: services, certificates, observations, findings and their
//! history, and the scan's checkpoint, in one transaction.
//!
//! Set-oriented on purpose: every table is written with multi-row statements (at most
//! [`CHUNK`](crate::db::CHUNK) rows each) and read back with one join per chunk, so a
//! batch of a thousand records is a few dozen statements on either backend, not thousands
//! of round trips to a PostgreSQL server. The lookups are written `(VALUES …) AS k CROSS
//! JOIN table WHERE …`: SQLite keeps the left side of a CROSS JOIN as the outer loop, so
//! it probes the unique index once per key instead of scanning the table (which its
//! planner otherwise chose, making a batch cost grow with the store).

use std::collections::{HashMap, HashSet};

use wachter_core::assessment::{Product, Verdict};
use wachter_core::record::{ServiceRecord, Status};
use wachter_scan::output::Checkpoint;

use crate::db::{ColumnType, Db, Kind, Value, chunk_sizes, chunks, multi_row, vals};
use crate::{KnownCerts, StoreError};

type ServiceKey = (String, u16, String);

/// A record made ready for the store on the caller's thread (serialised, its verdicts
/// picked out), so the database thread only runs SQL and the record itself need not be
/// copied.
pub struct Prepared {
    position: Option<i64>,
    key: ServiceKey,
    open: bool,
    status: &'static str,
    protocol: Option<&'static str>,
    time: String,
    leaf: Option<CertificateRow>,
    json: String,
    verdicts: Vec<VerdictRow>,
}

struct CertificateRow {
    sha256: String,
    der: String,
    subject: String,
    issuer: String,
    not_after: Option<String>,
    sans: String,
}

struct VerdictRow {
    cve: String,
    state: &'static str,
    basis: String,
    detail: String,
}

impl Prepared {
    /// `None` for what is never stored: blocked targets (the scope refused them; there
    /// is nothing there).
    pub fn new(position: Option<u64>, record: &ServiceRecord) -> Option<Prepared> {
        if record.status == Status::Blocked {
            return None;
        }
        let leaf = record
            .tls
            .as_ref()
            .and_then(|t| t.chain.first())
            .map(|leaf| CertificateRow {
                sha256: leaf.sha256.clone(),
                der: leaf.der.clone(),
                subject: leaf.subject.clone(),
                issuer: leaf.issuer.clone(),
                not_after: leaf.not_after.clone(),
                sans: serde_json::to_string(&leaf.sans).unwrap_or_default(),
            });
        Some(Prepared {
            position: position.map(|p| p as i64),
            key: (
                record.ip.to_string(),
                record.port,
                record.hostname.clone().unwrap_or_default(),
            ),
            open: record.status == Status::Open,
            status: record.status.as_str(),
            protocol: record.protocol.map(|p| p.as_str()),
            time: record.time.clone(),
            leaf,
            json: serde_json::to_string(record).unwrap_or_default(),
            verdicts: verdicts(record),
        })
    }
}

/// One verdict of one record, to be folded into the findings.
struct Occurrence<'a> {
    service_id: i64,
    verdict: &'a VerdictRow,
    time: &'a str,
}

/// A finding as it stands while the batch is folded in.
struct Current {
    id: i64,
    state: String,
    last_scan: i64,
}

pub(crate) fn write(
    db: &Db,
    known_certs: &mut KnownCerts,
    service_order: &mut ServiceOrder,
    scan_id: i64,
    mut records: Vec<Prepared>,
    checkpoint: Option<&Checkpoint>,
) -> Result<(), StoreError> {
    db.write(|db| {
        let services = service_ids(db, &records, service_order)?;
        write_certificates(db, known_certs, &records)?;

        // The empty Internet is not remembered: a closed or silent address becomes a
        // service only once it has been seen open. A known service that stops answering is
        // recorded, so it can show as unreachable rather than fixed.
        let mut observations = Vec::with_capacity(records.len());
        for record in records.iter_mut() {
            let Some(&service_id) = services.get(&record.key) else {
                continue;
            };
            observations.push(vals![
                scan_id,
                service_id,
                &record.time,
                record.status,
                record.protocol,
                record.leaf.as_ref().map(|l| &l.sha256),
                std::mem::take(&mut record.json),
                record.position,
            ]);
        }
        insert_rows(db, INSERT_OBSERVATIONS, observations)?;
        let mut occurrences = Vec::new();
        for record in &records {
            if let Some(&service_id) = services.get(&record.key) {
                occurrences.extend(record.verdicts.iter().map(|verdict| Occurrence {
                    service_id,
                    verdict,
                    time: &record.time,
                }));
            }
        }
        fold_findings(db, scan_id, &occurrences)?;
        if let Some(checkpoint) = checkpoint {
            let json = serde_json::to_string(checkpoint).unwrap_or_default();
            db.execute(
                "UPDATE scans SET checkpoint = ?1 WHERE id = ?2",
                vals![json, scan_id],
            )?;
        }
        Ok(())
    })
}

/// Which comes first when resolving a batch's services. A discovery sweep mostly creates
/// services (insert, then look up the few that existed); a re-scan mostly finds them (look
/// up, then insert the few new ones). Either way each key costs one index probe in the
/// common case; each batch picks the order for the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ServiceOrder {
    #[default]
    LookupFirst,
    InsertFirst,
}

/// The id of every service the batch names that is (now) known: open ones are created,
/// others only looked up.
fn service_ids(
    db: &Db,
    records: &[Prepared],
    order: &mut ServiceOrder,
) -> Result<HashMap<ServiceKey, i64>, StoreError> {
    let mut wanted: Vec<ServiceKey> = Vec::new();
    let mut open: Vec<ServiceKey> = Vec::new();
    let mut seen: HashSet<&ServiceKey> = HashSet::new();
    for record in records {
        if seen.insert(&record.key) {
            wanted.push(record.key.clone());
            if record.open {
                open.push(record.key.clone());
            }
        }
    }
    let (ids, created) = match *order {
        ServiceOrder::LookupFirst => {
            let mut ids = lookup_services(db, &wanted)?;
            let missing: Vec<ServiceKey> =
                open.into_iter().filter(|k| !ids.contains_key(k)).collect();
            let created = insert_services(db, &missing)?;
            let created_count = created.len();
            ids.extend(created);
            // Created by someone else between the lookup and the insert (not by a wachter
            // writer: they hold the write lock).
            let raced: Vec<ServiceKey> = missing
                .into_iter()
                .filter(|k| !ids.contains_key(k))
                .collect();
            if !raced.is_empty() {
                ids.extend(lookup_services(db, &raced)?);
            }
            (ids, created_count)
        }
        ServiceOrder::InsertFirst => {
            let mut ids = insert_services(db, &open)?;
            let created = ids.len();
            let existing: Vec<ServiceKey> = wanted
                .into_iter()
                .filter(|k| !ids.contains_key(k))
                .collect();
            ids.extend(lookup_services(db, &existing)?);
            (ids, created)
        }
    };
    *order = if created * 2 > seen.len() {
        ServiceOrder::InsertFirst
    } else {
        ServiceOrder::LookupFirst
    };
    Ok(ids)
}

/// Creates the services that do not exist yet; returns the ids of those it created.
fn insert_services(db: &Db, keys: &[ServiceKey]) -> Result<HashMap<ServiceKey, i64>, StoreError> {
    service_ids_by(
        db,
        "INSERT INTO services (ip, port, hostname) VALUES {values} ON CONFLICT (ip, port, hostname) DO NOTHING RETURNING id, ip, port, hostname",
        &[None, None, None],
        keys,
    )
}

/// The ids of the services that exist.
fn lookup_services(db: &Db, keys: &[ServiceKey]) -> Result<HashMap<ServiceKey, i64>, StoreError> {
    service_ids_by(
        db,
        "SELECT s.id, s.ip, s.port, s.hostname FROM (VALUES {values}) AS k CROSS JOIN services s \
         WHERE s.ip = k.column1 AND s.port = k.column2 AND s.hostname = k.column3",
        &[Some("TEXT"), Some("BIGINT"), Some("TEXT")],
        keys,
    )
}

/// Runs `template` (rows of ip, port, hostname in, `id, ip, port, hostname` out) over
/// `keys` a chunk at a time.
fn service_ids_by(
    db: &Db,
    template: &'static str,
    casts: &'static [Option<&'static str>],
    keys: &[ServiceKey],
) -> Result<HashMap<ServiceKey, i64>, StoreError> {
    let mut ids = HashMap::with_capacity(keys.len());
    for chunk in chunks(keys) {
        let sql = multi_row(template, chunk.len(), casts);
        let params = chunk
            .iter()
            .flat_map(|(ip, port, host)| vals![ip, *port, host])
            .collect();
        for row in db.query(&sql, params)? {
            let (id, k) = service_row(db, &row)?;
            ids.insert(k, id);
        }
    }
    Ok(ids)
}

fn service_row(db: &Db, row: &crate::db::Row) -> Result<(i64, ServiceKey), StoreError> {
    let e = |e| db.column_error(e);
    let port = u16::try_from(row.int(2).map_err(e)?).unwrap_or(0);
    Ok((
        row.int(0).map_err(e)?,
        (row.text(1).map_err(e)?, port, row.text(3).map_err(e)?),
    ))
}

/// Leaf certificates, each written once per store handle: appliances share (wildcard)
/// certificates, and a re-scan sees the same ones again.
fn write_certificates(
    db: &Db,
    known: &mut KnownCerts,
    records: &[Prepared],
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    for record in records {
        let Some(leaf) = &record.leaf else {
            continue;
        };
        if !known.insert(&leaf.sha256) {
            continue;
        }
        rows.push(vals![
            &leaf.sha256,
            base64_decode(&leaf.der),
            &leaf.subject,
            &leaf.issuer,
            leaf.not_after.as_ref(),
            &leaf.sans,
            &record.time,
        ]);
    }
    insert_rows(db, INSERT_CERTIFICATES, rows)
}

/// A bulk insert: a multi-row INSERT template (with its casts), and for append-only
/// tables the COPY that loads the same columns faster on PostgreSQL.
struct Insert {
    template: &'static str,
    casts: &'static [Option<&'static str>],
    copy: Option<(&'static str, &'static [ColumnType])>,
}

use ColumnType::{Int, Text};

const INSERT_OBSERVATIONS: Insert = Insert {
    template: "INSERT INTO observations (scan_id, service_id, observed_at, status, protocol, cert_sha256, record, position) VALUES {values}",
    casts: &[None; 8],
    copy: Some((
        "COPY observations (scan_id, service_id, observed_at, status, protocol, cert_sha256, record, position) FROM STDIN BINARY",
        &[Int, Int, Text, Text, Text, Text, Text, Int],
    )),
};
const INSERT_CERTIFICATES: Insert = Insert {
    template: "INSERT INTO certificates (sha256, der, subject, issuer, not_after, sans, first_seen) VALUES {values} ON CONFLICT (sha256) DO NOTHING",
    casts: &[None; 7],
    copy: None,
};
const INSERT_HISTORY: Insert = Insert {
    template: "INSERT INTO finding_history (finding_id, scan_id, at, from_state, to_state) VALUES {values}",
    casts: &[None; 5],
    copy: Some((
        "COPY finding_history (finding_id, scan_id, at, from_state, to_state) FROM STDIN BINARY",
        &[Int, Int, Text, Text, Text],
    )),
};
const UPDATE_FINDINGS: Insert = Insert {
    template: "UPDATE findings SET state = v.column2, basis = v.column3, detail = v.column4, last_seen = v.column5, last_scan_id = v.column6 \
               FROM (VALUES {values}) AS v WHERE findings.id = v.column1",
    casts: &[
        Some("BIGINT"),
        Some("TEXT"),
        Some("TEXT"),
        Some("TEXT"),
        Some("TEXT"),
        Some("BIGINT"),
    ],
    copy: None,
};

/// Writes `rows`, moving their values into the statements: one COPY on PostgreSQL where
/// the table allows it, else multi-row statements of at most [`CHUNK`](crate::db::CHUNK)
/// rows.
fn insert_rows(db: &Db, insert: Insert, rows: Vec<Vec<Value>>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    if let (Kind::Postgres, Some((copy, types))) = (db.kind(), insert.copy) {
        db.copy_in(copy, types, rows.into_iter().flatten().collect())?;
        return Ok(());
    }
    let total = rows.len();
    let mut rows = rows.into_iter();
    for size in chunk_sizes(total) {
        let sql = multi_row(insert.template, size, insert.casts);
        db.execute(&sql, rows.by_ref().take(size).flatten().collect())?;
    }
    Ok(())
}

/// The verdicts of a record worth tracking as findings.
fn verdicts(record: &ServiceRecord) -> Vec<VerdictRow> {
    let mut out = Vec::new();
    for assessment in record
        .checks
        .iter()
        .filter(|a| a.product != Product::NotNetscaler)
    {
        for v in assessment.cves.iter().filter(|v| {
            // Nothing to track: not affected, or an uncertain product with an uncertain
            // verdict (a honeypot). Imports name CVEs on an unknown product and are kept.
            v.verdict != Verdict::NotApplicable
                && !(assessment.product == Product::Unknown && v.verdict == Verdict::Unknown)
        }) {
            out.push(VerdictRow {
                cve: v.cve.clone(),
                state: v.verdict.as_str(),
                basis: serde_json::to_value(v.basis)
                    .ok()
                    .and_then(|b| b.as_str().map(str::to_string))
                    .unwrap_or_default(),
                detail: v.detail.clone(),
            });
        }
    }
    out
}

/// Folds verdicts into `findings` and `finding_history`, in record order.
fn fold_findings(db: &Db, scan_id: i64, occurrences: &[Occurrence]) -> Result<(), StoreError> {
    if occurrences.is_empty() {
        return Ok(());
    }
    let e = |e| db.column_error(e);
    let mut keys: Vec<(i64, String)> = occurrences
        .iter()
        .map(|o| (o.service_id, o.verdict.cve.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut current: HashMap<(i64, String), Current> = HashMap::with_capacity(keys.len());
    for chunk in chunks(&keys) {
        let sql = multi_row(
            "SELECT f.id, f.service_id, f.cve, f.state, f.last_scan_id FROM (VALUES {values}) AS k CROSS JOIN findings f \
             WHERE f.service_id = k.column1 AND f.cve = k.column2",
            chunk.len(),
            &[Some("BIGINT"), Some("TEXT")],
        );
        let params = chunk.iter().flat_map(|(s, c)| vals![*s, c]).collect();
        for row in db.query(&sql, params)? {
            current.insert(
                (row.int(1).map_err(e)?, row.text(2).map_err(e)?),
                Current {
                    id: row.int(0).map_err(e)?,
                    state: row.text(3).map_err(e)?,
                    last_scan: row.int(4).map_err(e)?,
                },
            );
        }
    }

    // New findings: created from their first occurrence in the batch.
    let mut first_of_new: Vec<usize> = Vec::new();
    let mut planned: HashSet<(i64, &str)> = HashSet::new();
    for (i, o) in occurrences.iter().enumerate() {
        if !current.contains_key(&(o.service_id, o.verdict.cve.clone()))
            && planned.insert((o.service_id, &o.verdict.cve))
        {
            first_of_new.push(i);
        }
    }
    let mut history: Vec<Vec<Value>> = Vec::new();
    for chunk in chunks(&first_of_new) {
        let sql = multi_row(
            "INSERT INTO findings (service_id, cve, state, basis, detail, first_seen, last_seen, last_scan_id) VALUES {values} RETURNING id, service_id, cve",
            chunk.len(),
            &[None; 8],
        );
        let params = chunk
            .iter()
            .flat_map(|&i| {
                let o = &occurrences[i];
                let v = o.verdict;
                vals![
                    o.service_id,
                    &v.cve,
                    v.state,
                    &v.basis,
                    &v.detail,
                    o.time,
                    o.time,
                    scan_id
                ]
            })
            .collect();
        let mut ids = HashMap::new();
        for row in db.query(&sql, params)? {
            ids.insert(
                (row.int(1).map_err(e)?, row.text(2).map_err(e)?),
                row.int(0).map_err(e)?,
            );
        }
        for &i in chunk {
            let o = &occurrences[i];
            let k = (o.service_id, o.verdict.cve.clone());
            let Some(&id) = ids.get(&k) else {
                return Err(db.column_error(crate::db::ColumnError(format!(
                    "finding for service {} and {} was not created",
                    o.service_id, o.verdict.cve
                ))));
            };
            history.push(vals![
                id,
                scan_id,
                o.time,
                Option::<String>::None,
                o.verdict.state
            ]);
            current.insert(
                k,
                Current {
                    id,
                    state: o.verdict.state.to_string(),
                    last_scan: scan_id,
                },
            );
        }
    }

    // Every other occurrence moves a known finding on.
    let first: HashSet<usize> = first_of_new.into_iter().collect();
    let mut updates: Vec<Vec<Value>> = Vec::new();
    let mut update_slot: HashMap<i64, usize> = HashMap::new();
    for (i, o) in occurrences.iter().enumerate() {
        if first.contains(&i) {
            continue;
        }
        let v = o.verdict;
        let Some(c) = current.get_mut(&(o.service_id, v.cve.clone())) else {
            continue;
        };
        if scan_id < c.last_scan {
            // An older scan arriving late (a resume, an old import) adds to the history at
            // its own place but does not overwrite a newer state.
            history.push(vals![
                c.id,
                scan_id,
                o.time,
                Option::<String>::None,
                v.state
            ]);
            continue;
        }
        let row = vals![c.id, v.state, &v.basis, &v.detail, o.time, scan_id];
        match update_slot.get(&c.id) {
            Some(&slot) => updates[slot] = row,
            None => {
                update_slot.insert(c.id, updates.len());
                updates.push(row);
            }
        }
        if c.state != v.state {
            history.push(vals![c.id, scan_id, o.time, c.state.as_str(), v.state]);
            c.state = v.state.to_string();
        }
        c.last_scan = scan_id;
    }
    insert_rows(db, UPDATE_FINDINGS, updates)?;
    insert_rows(db, INSERT_HISTORY, history)
}

/// The DER as bytes; it came from our own encoder, and a decoding failure keeps an empty
/// blob rather than losing the observation (whose JSON still holds the text).
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}
