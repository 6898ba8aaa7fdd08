//! The constituency in the store: organisations (with networks, domains, contacts),
//! registry networks imported from RIPE split files, and how each service was attributed.

use std::collections::HashMap;

use wachter_constituency::org::{Contact, ContactRole, ContactSource, Organisation, Tlp};

use crate::db::{Db, Kind, Row, Value, chunk_sizes, multi_row, vals};
use crate::{Store, StoreError, now};

/// An organisation as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredOrganisation {
    pub id: i64,
    #[serde(flatten)]
    pub organisation: Organisation,
}

/// What an import of organisations changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrganisationChanges {
    pub added: usize,
    pub updated: usize,
}

/// One network of a registry import (a RIPE inetnum's CIDR, with its abuse contact).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistryRow {
    pub network: String,
    pub netname: String,
    pub country: Option<String>,
    pub org_handle: Option<String>,
    pub org_name: Option<String>,
    pub abuse_mailboxes: Vec<String>,
    /// How the mailbox was found (`inetnum abuse-c AR1-RIPE`, `organisation …`, `none`).
    pub abuse_source: String,
}

/// What attribution needs to know about a service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceFacts {
    pub service_id: i64,
    pub ip: String,
    pub port: u16,
    /// The name the target came with (`''` when none).
    pub hostname: String,
    /// Subject and SANs of the newest certificate seen on the service.
    pub cert_subject: Option<String>,
    pub cert_sans: Vec<String>,
}

/// How one service was attributed, and what is known about its network.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct AttributionRow {
    pub service_id: i64,
    pub organisation_id: Option<i64>,
    /// `network`, `asn`, `certificate`, `hostname`, `reverse_dns`, `registry` or `none`.
    pub method: String,
    /// What matched: the network, the domain, the AS.
    pub matched: Option<String>,
    /// Less specific organisation networks that also contain the address.
    pub also_matched: i64,
    pub asn: Option<i64>,
    pub holder: Option<String>,
    pub country: Option<String>,
    /// The registry network (RIPE inetnum CIDR) holding the address.
    pub registry_network: Option<String>,
    pub abuse_mailboxes: Vec<String>,
    /// Everything else worth keeping (database builds, candidate names, overlaps).
    pub detail: serde_json::Value,
}

/// Rows read per query when walking a large table.
const PAGE: i64 = 50_000;

impl Store {
    /// Adds organisations, or updates those with the same name (case-insensitive):
    /// their networks, domains and contacts are replaced by the new ones. One transaction.
    pub fn upsert_organisations(
        &self,
        orgs: &[Organisation],
    ) -> Result<OrganisationChanges, StoreError> {
        self.db.write(|db| {
            let mut changes = OrganisationChanges::default();
            // Names compare case-insensitively in Rust, the same on both engines (SQLite's
            // lower() folds ASCII only).
            let mut by_name: HashMap<String, i64> = HashMap::new();
            for row in db.query("SELECT id, name FROM organisations", vals![])? {
                let col = |e| db.column_error(e);
                by_name.insert(same_name(&row.text(1).map_err(col)?), row.int(0).map_err(col)?);
            }
            for org in orgs {
                let asns = serde_json::to_string(&org.asns).unwrap_or_else(|_| "[]".into());
                let id = match by_name.get(&same_name(&org.name)).copied() {
                    Some(id) => {
                        db.execute(
                            "UPDATE organisations SET name = ?1, sector = ?2, tlp = ?3, notes = ?4, asns = ?5 WHERE id = ?6",
                            vals![&org.name, org.sector.as_ref(), org.tlp.map(|t| t.as_str()), org.notes.as_ref(), asns, id],
                        )?;
                        for table in ["org_networks", "org_domains", "contacts"] {
                            db.execute(
                                &format!("DELETE FROM {table} WHERE organisation_id = ?1"),
                                vals![id],
                            )?;
                        }
                        changes.updated += 1;
                        id
                    }
                    None => {
                        let row = db.query_one(
                            "INSERT INTO organisations (name, sector, tlp, notes, asns) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                            vals![&org.name, org.sector.as_ref(), org.tlp.map(|t| t.as_str()), org.notes.as_ref(), asns],
                        )?;
                        changes.added += 1;
                        let id = single_int(db, row)?;
                        by_name.insert(same_name(&org.name), id);
                        id
                    }
                };
                for network in &org.networks {
                    db.execute(
                        "INSERT INTO org_networks (organisation_id, network) VALUES (?1, ?2)",
                        vals![id, network.to_string()],
                    )?;
                }
                for domain in &org.domains {
                    db.execute(
                        "INSERT INTO org_domains (organisation_id, domain) VALUES (?1, ?2)",
                        vals![id, domain],
                    )?;
                }
                for c in &org.contacts {
                    db.execute(
                        "INSERT INTO contacts (organisation_id, email, role, language, name, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        vals![id, &c.email, c.role.as_str(), c.language.as_ref(), c.name.as_ref(), c.source.as_str()],
                    )?;
                }
            }
            Ok(changes)
        })
    }

    /// Every organisation, by name.
    pub fn organisations(&self) -> Result<Vec<StoredOrganisation>, StoreError> {
        let col = |e| self.db.column_error(e);
        let mut orgs: Vec<StoredOrganisation> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        for row in self.db.query(
            "SELECT id, name, sector, tlp, notes, asns FROM organisations ORDER BY name",
            vals![],
        )? {
            let id = row.int(0).map_err(col)?;
            index.insert(id, orgs.len());
            orgs.push(StoredOrganisation {
                id,
                organisation: Organisation {
                    name: row.text(1).map_err(col)?,
                    sector: row.opt_text(2).map_err(col)?,
                    tlp: row
                        .opt_text(3)
                        .map_err(col)?
                        .and_then(|t| t.parse::<Tlp>().ok()),
                    notes: row.opt_text(4).map_err(col)?,
                    asns: serde_json::from_str(&row.text(5).map_err(col)?).unwrap_or_default(),
                    ..Organisation::default()
                },
            });
        }
        // The position in `orgs` of a row's organisation (rows of a removed one: none).
        let slot = |row: &Row| -> Result<Option<usize>, StoreError> {
            Ok(index.get(&row.int(0).map_err(col)?).copied())
        };
        for row in self.db.query(
            "SELECT organisation_id, network FROM org_networks ORDER BY organisation_id, network",
            vals![],
        )? {
            let text = row.text(1).map_err(col)?;
            if let (Some(i), Ok(net)) = (slot(&row)?, text.parse()) {
                orgs[i].organisation.networks.push(net);
            }
        }
        for row in self.db.query(
            "SELECT organisation_id, domain FROM org_domains ORDER BY organisation_id, domain",
            vals![],
        )? {
            let domain = row.text(1).map_err(col)?;
            if let Some(i) = slot(&row)? {
                orgs[i].organisation.domains.push(domain);
            }
        }
        for row in self.db.query(
            "SELECT organisation_id, email, role, language, name, source FROM contacts ORDER BY organisation_id, id",
            vals![],
        )? {
            let contact = Contact {
                email: row.text(1).map_err(col)?,
                role: row
                    .text(2)
                    .map_err(col)?
                    .parse()
                    .unwrap_or(ContactRole::Security),
                language: row.opt_text(3).map_err(col)?,
                name: row.opt_text(4).map_err(col)?,
                source: row
                    .text(5)
                    .map_err(col)?
                    .parse()
                    .unwrap_or(ContactSource::Manual),
            };
            if let Some(i) = slot(&row)? {
                orgs[i].organisation.contacts.push(contact);
            }
        }
        for org in &mut orgs {
            org.organisation.networks.sort();
        }
        orgs.sort_by_cached_key(|o| same_name(&o.organisation.name));
        Ok(orgs)
    }

    /// One organisation by name (case-insensitive).
    pub fn organisation(&self, name: &str) -> Result<Option<StoredOrganisation>, StoreError> {
        Ok(self
            .organisations()?
            .into_iter()
            .find(|o| same_name(&o.organisation.name) == same_name(name)))
    }

    /// Removes an organisation (its services become unattributed until the next
    /// attribution). Whether it existed.
    pub fn remove_organisation(&self, name: &str) -> Result<bool, StoreError> {
        self.db.write(|db| {
            let mut found = None;
            for row in db.query("SELECT id, name FROM organisations", vals![])? {
                let col = |e| db.column_error(e);
                if same_name(&row.text(1).map_err(col)?) == same_name(name) {
                    found = Some(row.int(0).map_err(col)?);
                }
            }
            let Some(id) = found else {
                return Ok(false);
            };
            // What stays known is the network's registry data, if any.
            db.execute(
                "UPDATE attributions SET organisation_id = NULL, matched = NULL, also_matched = 0, \
                 method = CASE WHEN registry_network IS NULL THEN 'none' ELSE 'registry' END \
                 WHERE organisation_id = ?1",
                vals![id],
            )?;
            for table in ["org_networks", "org_domains", "contacts"] {
                db.execute(
                    &format!("DELETE FROM {table} WHERE organisation_id = ?1"),
                    vals![id],
                )?;
            }
            db.execute("DELETE FROM organisations WHERE id = ?1", vals![id])?;
            Ok(true)
        })
    }

    /// Starts an import of registry data; its networks count only once it is finished.
    pub fn begin_registry_import(&self, registry: &str, files: &str) -> Result<i64, StoreError> {
        let row = self.db.query_one(
            "INSERT INTO registry_imports (registry, files, imported_at, state) VALUES (?1, ?2, ?3, 'running') RETURNING id",
            vals![registry, files, now()],
        )?;
        single_int(&self.db, row)
    }

    /// Adds networks to a running import (one transaction; call with batches).
    pub fn write_registry_networks(
        &self,
        import_id: i64,
        rows: &[RegistryRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.db.write(|db| {
            let values: Vec<Vec<Value>> = rows
                .iter()
                .map(|r| {
                    vals![
                        import_id,
                        &r.network,
                        &r.netname,
                        r.country.as_ref(),
                        r.org_handle.as_ref(),
                        r.org_name.as_ref(),
                        serde_json::to_string(&r.abuse_mailboxes)
                            .unwrap_or_else(|_| "[]".into()),
                        &r.abuse_source
                    ]
                })
                .collect();
            if db.kind() == Kind::Postgres {
                use crate::db::ColumnType::{Int, Text};
                db.copy_in(
                    "COPY registry_networks (import_id, network, netname, country, org_handle, org_name, abuse_mailboxes, abuse_source) FROM STDIN BINARY",
                    &[Int, Text, Text, Text, Text, Text, Text, Text],
                    values.into_iter().flatten().collect(),
                )?;
                return Ok(());
            }
            let total = values.len();
            let mut values = values.into_iter();
            for size in chunk_sizes(total) {
                let sql = multi_row(
                    "INSERT INTO registry_networks (import_id, network, netname, country, org_handle, org_name, abuse_mailboxes, abuse_source) VALUES {values}",
                    size,
                    &[None; 8],
                );
                db.execute(&sql, values.by_ref().take(size).flatten().collect())?;
            }
            Ok(())
        })
    }

    /// Drops an import that failed or was refused, with its networks.
    pub fn abort_registry_import(&self, import_id: i64) -> Result<(), StoreError> {
        self.db.write(|db| {
            db.execute(
                "DELETE FROM registry_networks WHERE import_id = ?1",
                vals![import_id],
            )?;
            db.execute(
                "DELETE FROM registry_imports WHERE id = ?1",
                vals![import_id],
            )?;
            Ok(())
        })
    }

    /// Completes an import: it replaces earlier imports of the same registry.
    pub fn finish_registry_import(
        &self,
        import_id: i64,
        networks: usize,
        skipped: usize,
    ) -> Result<(), StoreError> {
        self.db.write(|db| {
            let Some(registry) = db
                .query_one(
                    "SELECT registry FROM registry_imports WHERE id = ?1 AND state = 'running'",
                    vals![import_id],
                )?
                .map(|r| r.text(0))
                .transpose()
                .map_err(|e| db.column_error(e))?
            else {
                return Err(StoreError::Operation {
                    location: db.location().to_string(),
                    detail: format!("registry import {import_id} is gone (another import replaced it?); nothing was kept"),
                });
            };
            // Earlier complete imports are replaced; one still being written elsewhere is left to
            // its writer.
            let older = db.query(
                "SELECT id FROM registry_imports WHERE registry = ?1 AND id <> ?2 AND state = 'complete'",
                vals![&registry, import_id],
            )?;
            for row in older {
                let id = row.int(0).map_err(|e| db.column_error(e))?;
                db.execute(
                    "DELETE FROM registry_networks WHERE import_id = ?1",
                    vals![id],
                )?;
                db.execute("DELETE FROM registry_imports WHERE id = ?1", vals![id])?;
            }
            db.execute(
                "UPDATE registry_imports SET state = 'complete', networks = ?1, skipped = ?2 WHERE id = ?3",
                vals![networks as i64, skipped as i64, import_id],
            )?;
            Ok(())
        })
    }

    /// Visits (row id, network) of every complete registry import, a page at a time
    /// (millions of rows never sit in memory at once).
    pub fn registry_networks(&self, mut visit: impl FnMut(i64, &str)) -> Result<usize, StoreError> {
        let col = |e| self.db.column_error(e);
        let mut after = 0i64;
        let mut count = 0;
        loop {
            let rows = self.db.query(
                "SELECT n.id, n.network FROM registry_networks n JOIN registry_imports i ON i.id = n.import_id \
                 WHERE i.state = 'complete' AND n.id > ?1 ORDER BY n.id LIMIT ?2",
                vals![after, PAGE],
            )?;
            let Some(last) = rows.last() else {
                return Ok(count);
            };
            after = last.int(0).map_err(col)?;
            for row in &rows {
                visit(row.int(0).map_err(col)?, &row.text(1).map_err(col)?);
                count += 1;
            }
        }
    }

    /// The registry rows with these ids.
    pub fn registry_rows(&self, ids: &[i64]) -> Result<HashMap<i64, RegistryRow>, StoreError> {
        let col = |e| self.db.column_error(e);
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in crate::db::chunks(ids) {
            let sql = multi_row(
                "SELECT n.id, n.network, n.netname, n.country, n.org_handle, n.org_name, n.abuse_mailboxes, n.abuse_source \
                 FROM (VALUES {values}) AS k CROSS JOIN registry_networks n WHERE n.id = k.column1",
                chunk.len(),
                &[Some("BIGINT")],
            );
            let params = chunk.iter().map(|id| Value::Int(*id)).collect();
            for row in self.db.query(&sql, params)? {
                out.insert(
                    row.int(0).map_err(col)?,
                    RegistryRow {
                        network: row.text(1).map_err(col)?,
                        netname: row.text(2).map_err(col)?,
                        country: row.opt_text(3).map_err(col)?,
                        org_handle: row.opt_text(4).map_err(col)?,
                        org_name: row.opt_text(5).map_err(col)?,
                        abuse_mailboxes: serde_json::from_str(&row.text(6).map_err(col)?)
                            .unwrap_or_default(),
                        abuse_source: row.text(7).map_err(col)?,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Every service with the names its newest certificate carries, a page at a time.
    pub fn services_to_attribute(
        &self,
        mut visit: impl FnMut(ServiceFacts),
    ) -> Result<usize, StoreError> {
        let mut after = 0i64;
        let mut count = 0;
        loop {
            let page = self.services_page(after, PAGE)?;
            let Some(last) = page.last() else {
                return Ok(count);
            };
            after = last.service_id;
            count += page.len();
            page.into_iter().for_each(&mut visit);
        }
    }

    /// Up to `limit` services with ids above `after`, in id order, with the names their
    /// newest certificate carries.
    pub fn services_page(&self, after: i64, limit: i64) -> Result<Vec<ServiceFacts>, StoreError> {
        let col = |e| self.db.column_error(e);
        let rows = self.db.query(
            "SELECT s.id, s.ip, s.port, s.hostname, c.subject, c.sans FROM services s \
             LEFT JOIN certificates c ON c.sha256 = (SELECT o.cert_sha256 FROM observations o \
               WHERE o.service_id = s.id AND o.cert_sha256 IS NOT NULL ORDER BY o.id DESC LIMIT 1) \
             WHERE s.id > ?1 ORDER BY s.id LIMIT ?2",
            vals![after, limit],
        )?;
        rows.iter()
            .map(|row| {
                Ok(ServiceFacts {
                    service_id: row.int(0)?,
                    ip: row.text(1)?,
                    port: u16::try_from(row.int(2)?).unwrap_or(0),
                    hostname: row.text(3)?,
                    cert_subject: row.opt_text(4)?,
                    cert_sans: row
                        .opt_text(5)?
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<_, _>>()
            .map_err(col)
    }

    /// Stores attributions, replacing each service's previous one (one transaction).
    pub fn write_attributions(&self, rows: &[AttributionRow]) -> Result<(), StoreError> {
        let at = now();
        self.db.write(|db| {
            let values: Vec<Vec<Value>> = rows
                .iter()
                .map(|a| {
                    vals![
                        a.service_id,
                        a.organisation_id,
                        &a.method,
                        a.matched.as_ref(),
                        a.also_matched,
                        a.asn,
                        a.holder.as_ref(),
                        a.country.as_ref(),
                        a.registry_network.as_ref(),
                        serde_json::to_string(&a.abuse_mailboxes).unwrap_or_else(|_| "[]".into()),
                        a.detail.to_string(),
                        &at
                    ]
                })
                .collect();
            let total = values.len();
            let mut values = values.into_iter();
            for size in chunk_sizes(total) {
                let sql = multi_row(
                    "INSERT INTO attributions (service_id, organisation_id, method, matched, also_matched, asn, holder, country, registry_network, abuse_mailboxes, detail, attributed_at) \
                     VALUES {values} ON CONFLICT (service_id) DO UPDATE SET organisation_id = excluded.organisation_id, method = excluded.method, \
                     matched = excluded.matched, also_matched = excluded.also_matched, asn = excluded.asn, holder = excluded.holder, \
                     country = excluded.country, registry_network = excluded.registry_network, abuse_mailboxes = excluded.abuse_mailboxes, \
                     detail = excluded.detail, attributed_at = excluded.attributed_at",
                    size,
                    &[None; 12],
                );
                db.execute(&sql, values.by_ref().take(size).flatten().collect())?;
            }
            Ok(())
        })
    }

    /// Open and closed findings with their service's attribution, for reports by owner.
    pub fn findings_with_owners(&self) -> Result<Vec<OwnedFinding>, StoreError> {
        let col = |e| self.db.column_error(e);
        let rows = self.db.query(
            "SELECT s.ip, s.port, s.hostname, f.cve, f.state, o.name, o.sector, a.method, a.asn, a.holder, a.country, a.abuse_mailboxes, a.also_matched \
             FROM findings f JOIN services s ON s.id = f.service_id \
             LEFT JOIN attributions a ON a.service_id = f.service_id \
             LEFT JOIN organisations o ON o.id = a.organisation_id \
             ORDER BY s.ip, s.port, f.cve",
            vals![],
        )?;
        rows.iter()
            .map(|r| {
                Ok(OwnedFinding {
                    ip: r.text(0)?,
                    port: u16::try_from(r.int(1)?).unwrap_or(0),
                    hostname: r.text(2)?,
                    cve: r.text(3)?,
                    state: r.text(4)?,
                    organisation: r.opt_text(5)?,
                    sector: r.opt_text(6)?,
                    method: r.opt_text(7)?,
                    asn: r.opt_int(8)?,
                    holder: r.opt_text(9)?,
                    country: r.opt_text(10)?,
                    abuse_mailboxes: r
                        .opt_text(11)?
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or_default(),
                    overlaps: r.opt_int(12)?.unwrap_or(0),
                })
            })
            .collect::<Result<_, _>>()
            .map_err(col)
    }
}

/// A finding with who owns its service (as last attributed).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OwnedFinding {
    pub ip: String,
    pub port: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    pub cve: String,
    pub state: String,
    pub organisation: Option<String>,
    pub sector: Option<String>,
    /// How the owner was found; `None` when the service was never attributed.
    pub method: Option<String>,
    pub asn: Option<i64>,
    pub holder: Option<String>,
    pub country: Option<String>,
    pub abuse_mailboxes: Vec<String>,
    /// Less specific organisation networks that also held the address.
    pub overlaps: i64,
}

/// An organisation name as compared: Unicode lower case (`ÄRZTE` is `ärzte`).
pub fn same_name(name: &str) -> String {
    name.trim().to_lowercase()
}

fn single_int(db: &Db, row: Option<Row>) -> Result<i64, StoreError> {
    match row {
        Some(row) => row.int(0).map_err(|e| db.column_error(e)),
        None => Err(db.column_error(crate::db::ColumnError("no row returned".into()))),
    }
}
