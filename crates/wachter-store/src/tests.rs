use wachter_core::assessment::{Assessment, Basis, CveVerdict, Flags, Product, Verdict};
use wachter_core::record::{ServiceRecord, Status};

use super::*;

fn temp_db(name: &str) -> String {
    temp_db_in("store", name)
}

pub(crate) use crate::testing::remove_sqlite;
use crate::testing::temp_sqlite as temp_db_in;

/// Runs `case` on a fresh SQLite file, then on a fresh PostgreSQL database when the suite
/// has a server (`.ci/run` always does).
fn on_each_backend(name: &str, case: impl Fn(&str)) {
    on_each_backend_in("store", name, case);
}

/// [`on_each_backend`] for the tests of `area`: its own files and databases, so `name`
/// need only be unique within the area.
pub(crate) fn on_each_backend_in(area: &str, name: &str, case: impl Fn(&str)) {
    let path = temp_db_in(area, name);
    case(&path);
    remove_sqlite(&path);
    if let Some(url) = testing::postgres_database(&format!("{area}_{name}")) {
        case(&url);
    }
}

/// A NetScaler check's assessment with these verdicts.
pub(crate) fn netscaler_assessment(cves: Vec<CveVerdict>) -> Assessment {
    Assessment {
        check: "netscaler".into(),
        product: Product::Netscaler,
        signals: vec![],
        build: None,
        probe: None,
        cves,
        flags: Flags::default(),
    }
}

fn record(ip: &str, verdict: Verdict) -> ServiceRecord {
    let mut r = ServiceRecord::new(
        ip.parse().unwrap(),
        443,
        None,
        "2026-01-01T00:00:00Z".into(),
    );
    r.status = Status::Open;
    r.checks.push(netscaler_assessment(vec![
        CveVerdict {
            cve: "CVE-2019-19781".into(),
            verdict,
            basis: Basis::Probe,
            detail: String::new(),
        },
        CveVerdict {
            cve: "CVE-2023-3519".into(),
            verdict: Verdict::NotApplicable,
            basis: Basis::None,
            detail: String::new(),
        },
    ]));
    r
}

#[test]
fn findings_keep_their_history_across_scans() {
    on_each_backend("history", findings_keep_their_history);
}

fn findings_keep_their_history(path: &str) {
    let mut store = Store::open(path).unwrap();
    for (i, verdict) in [
        Verdict::Vulnerable,
        Verdict::Vulnerable,
        Verdict::Mitigated,
        Verdict::Patched,
    ]
    .into_iter()
    .enumerate()
    {
        let scan = store
            .begin_scan(&ScanInfo {
                seed: i as u64,
                ..ScanInfo::default()
            })
            .unwrap();
        store
            .write_batch(
                scan,
                &[
                    record("127.60.0.1", verdict),
                    record("127.60.0.2", Verdict::Vulnerable),
                ],
            )
            .unwrap();
        store.finish_scan(scan, false, "{}").unwrap();
        assert_eq!(store.observation_count(scan).unwrap(), 2);
    }
    let history = store.history("127.60.0.1", 443, "CVE-2019-19781").unwrap();
    let states: Vec<(Option<String>, String)> = history
        .into_iter()
        .map(|(_, from, to)| (from, to))
        .collect();
    assert_eq!(
        states,
        vec![
            (None, "vulnerable".into()),
            (Some("vulnerable".into()), "mitigated".into()),
            (Some("mitigated".into()), "patched".into())
        ]
    );
    let counts = store.finding_counts().unwrap();
    assert_eq!(
        counts,
        vec![
            ("CVE-2019-19781".into(), "patched".into(), 1),
            ("CVE-2019-19781".into(), "vulnerable".into(), 1)
        ]
    );
    drop(store);
    // Reopening an existing wachter database works and does not migrate twice.
    let again = Store::open(path).unwrap();
    assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(again.scans().unwrap().len(), 4);
}

#[test]
fn closed_addresses_are_remembered_only_once_seen_open() {
    on_each_backend("closed", closed_addresses_are_remembered_only_once_seen);
}

fn closed_addresses_are_remembered_only_once_seen(path: &str) {
    let mut store = Store::open(path).unwrap();
    let scan = store.begin_scan(&ScanInfo::default()).unwrap();
    let mut closed = record("127.60.1.1", Verdict::Vulnerable);
    closed.status = Status::Closed;
    closed.checks.clear();
    let mut blocked = closed.clone();
    blocked.status = Status::Blocked;
    store
        .write_batch(scan, &[closed.clone(), blocked.clone()])
        .unwrap();
    assert_eq!(
        store.observation_count(scan).unwrap(),
        0,
        "never-open addresses are not stored"
    );
    let later = store.begin_scan(&ScanInfo::default()).unwrap();
    store
        .write_batch(later, &[record("127.60.1.1", Verdict::Vulnerable)])
        .unwrap();
    let last = store.begin_scan(&ScanInfo::default()).unwrap();
    store.write_batch(last, &[closed, blocked]).unwrap();
    assert_eq!(
        store.observation_count(last).unwrap(),
        1,
        "a known service that closed is recorded"
    );
}

#[test]
fn a_foreign_database_is_refused_untouched() {
    let path = temp_db("foreign");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE patients (name TEXT); INSERT INTO patients VALUES ('x');")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Foreign { .. })
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "nothing may be written to a foreign file"
    );
    std::fs::remove_file(&path).unwrap();
    let junk = temp_db("junk");
    std::fs::write(
        &junk,
        b"this is not a database at all, just text that is long enough to matter",
    )
    .unwrap();
    assert!(Store::open(&junk).is_err());
    std::fs::remove_file(&junk).unwrap();
}

#[test]
fn diffs_and_the_trend_follow_the_case() {
    on_each_backend("trend", diffs_and_the_trend_follow);
}

fn diffs_and_the_trend_follow(path: &str) {
    let mut store = Store::open(path).unwrap();
    let closed = |ip: &str| {
        let mut r = record(ip, Verdict::Vulnerable);
        r.status = Status::Closed;
        r.checks.clear();
        r
    };
    let scans: Vec<Vec<ServiceRecord>> = vec![
        vec![
            record("127.61.0.1", Verdict::Vulnerable),
            record("127.61.0.2", Verdict::Vulnerable),
            record("127.61.0.3", Verdict::Vulnerable),
        ],
        vec![
            record("127.61.0.1", Verdict::Vulnerable),
            record("127.61.0.2", Verdict::Mitigated),
            closed("127.61.0.3"),
        ],
        vec![
            record("127.61.0.1", Verdict::Patched),
            record("127.61.0.2", Verdict::Mitigated),
            record("127.61.0.4", Verdict::Vulnerable),
        ],
    ];
    let mut ids = Vec::new();
    for batch in &scans {
        let id = store.begin_scan(&ScanInfo::default()).unwrap();
        store.write_batch(id, batch).unwrap();
        store.finish_scan(id, false, "{}").unwrap();
        ids.push(id);
    }
    use report::Change::*;
    let d = report::diff(&store, ids[0], ids[1], Some("CVE-2019-19781")).unwrap();
    let changes: Vec<(report::Change, &str)> = d
        .entries
        .iter()
        .map(|e| (e.change, e.ip.as_str()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (StillOpen, "127.61.0.1"),
            (StillOpen, "127.61.0.2"),
            (Unreachable, "127.61.0.3")
        ]
    );
    let d = report::diff(&store, ids[1], ids[2], Some("CVE-2019-19781")).unwrap();
    let changes: Vec<(report::Change, &str)> = d
        .entries
        .iter()
        .map(|e| (e.change, e.ip.as_str()))
        .collect();
    // .3 stopped answering in the second scan and the third did not look at it: still not fixed.
    assert_eq!(
        changes,
        vec![
            (New, "127.61.0.4"),
            (Fixed, "127.61.0.1"),
            (StillOpen, "127.61.0.2"),
            (NotRescanned, "127.61.0.3")
        ]
    );
    assert_eq!(d.counts["CVE-2019-19781"][&Fixed], 1);

    let trend = report::trend(&store).unwrap();
    let curve: Vec<(u64, u64, u64, u64)> = trend["CVE-2019-19781"]
        .iter()
        .map(|p| (p.vulnerable, p.mitigated, p.patched, p.unreachable))
        .collect();
    assert_eq!(curve, vec![(3, 0, 0, 0), (1, 1, 0, 1), (1, 1, 1, 0)]);
    // .3 went dark in scan 2 and scan 3 did not look at it.
    assert_eq!(
        trend["CVE-2019-19781"]
            .iter()
            .map(|p| p.not_rescanned)
            .collect::<Vec<_>>(),
        vec![0, 0, 1]
    );
    assert_eq!(
        trend["CVE-2019-19781"]
            .iter()
            .map(|p| p.open())
            .collect::<Vec<_>>(),
        vec![3, 2, 2]
    );
}

#[test]
fn a_second_writer_waits_for_the_first() {
    on_each_backend("two_writers", a_second_writer_waits);
}

fn a_second_writer_waits(path: &str) {
    let first = Store::open(path).unwrap();
    let scan = first.begin_scan(&ScanInfo::default()).unwrap();
    // The first writer holds the write lock for a while (an open write transaction).
    first.db.begin_write().unwrap();
    let second_path = path.to_string();
    let second = std::thread::spawn(move || {
        let mut store = Store::open(&second_path).unwrap();
        store.write_batch(scan, &[record("127.62.0.1", Verdict::Vulnerable)])
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !second.is_finished(),
        "the second writer must wait, not fail"
    );
    let reader = Store::open(path).unwrap();
    assert_eq!(
        reader.observation_count(scan).unwrap(),
        0,
        "nothing may be written past the lock"
    );
    first.db.batch("COMMIT").unwrap();
    second.join().unwrap().unwrap();
    assert_eq!(first.observation_count(scan).unwrap(), 1);
}

#[test]
fn an_older_scan_written_late_does_not_overwrite_a_newer_state() {
    on_each_backend("late", an_older_scan_written_late);
}

fn an_older_scan_written_late(path: &str) {
    let mut store = Store::open(path).unwrap();
    let old = store.begin_scan(&ScanInfo::default()).unwrap();
    let new = store.begin_scan(&ScanInfo::default()).unwrap();
    store
        .write_batch(new, &[record("127.63.0.1", Verdict::Patched)])
        .unwrap();
    // The older scan (a resume, an old import) is written afterwards.
    store
        .write_batch(old, &[record("127.63.0.1", Verdict::Vulnerable)])
        .unwrap();
    assert_eq!(
        store.finding_counts().unwrap(),
        vec![("CVE-2019-19781".into(), "patched".into(), 1)]
    );
    let at = |scan| {
        store
            .finding_states(scan)
            .unwrap()
            .into_iter()
            .map(|f| f.state)
            .collect::<Vec<_>>()
    };
    assert_eq!(at(old), vec!["vulnerable"]);
    assert_eq!(at(new), vec!["patched"]);
}

#[test]
fn a_foreign_or_newer_postgres_database_is_refused_untouched() {
    let Some(url) = testing::postgres_database("store_foreign") else {
        return;
    };
    let tables = |url: &str| {
        let url = url.to_string();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client
                .query(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<String>>()
        })
        .join()
        .unwrap()
    };
    let run = |url: &str, sql: &str| {
        let (url, sql) = (url.to_string(), sql.to_string());
        std::thread::spawn(move || {
            postgres::Client::connect(&url, postgres::NoTls)
                .unwrap()
                .batch_execute(&sql)
                .unwrap()
        })
        .join()
        .unwrap()
    };
    run(
        &url,
        "CREATE TABLE patients (name TEXT); INSERT INTO patients VALUES ('x')",
    );
    assert!(matches!(Store::open(&url), Err(StoreError::Foreign { .. })));
    assert_eq!(tables(&url), vec!["patients"], "nothing may be created");

    let Some(newer) = testing::postgres_database("store_newer") else {
        return;
    };
    drop(Store::open(&newer).unwrap());
    run(
        &newer,
        "UPDATE wachter_meta SET value = '99' WHERE key = 'schema_version'",
    );
    assert!(matches!(
        Store::open(&newer),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn an_unreachable_postgres_server_is_a_clear_error() {
    // A port on loopback where nothing listens (the lab's range is elsewhere).
    let error = Store::open("postgres://wachter:s3cret@127.0.0.1:9/case")
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("127.0.0.1:9"), "{error}");
    assert!(
        !error.contains("s3cret"),
        "the password is never shown: {error}"
    );
}

#[test]
fn large_batches_with_repeats_fold_like_single_records() {
    on_each_backend("large_batch", large_batches_with_repeats);
}

/// 1,300 records in one batch (several chunks of every statement), a service seen twice
/// and a finding changing state inside the batch: the result equals writing them one by one.
fn large_batches_with_repeats(path: &str) {
    let records: Vec<ServiceRecord> = (0..1300u32)
        .map(|i| {
            let ip = std::net::Ipv4Addr::from(0x7f40_0000 + i % 1200).to_string();
            let verdict = match i {
                0..1200 => Verdict::Vulnerable,
                _ => Verdict::Patched,
            };
            record(&ip, verdict)
        })
        .collect();
    let mut batched = Store::open(path).unwrap();
    let scan = batched.begin_scan(&ScanInfo::default()).unwrap();
    batched.write_batch(scan, &records).unwrap();
    assert_eq!(batched.observation_count(scan).unwrap(), 1300);
    assert_eq!(
        batched.finding_counts().unwrap(),
        vec![
            ("CVE-2019-19781".into(), "patched".into(), 100),
            ("CVE-2019-19781".into(), "vulnerable".into(), 1100)
        ]
    );
    assert_eq!(
        batched
            .history("127.64.0.5", 443, "CVE-2019-19781")
            .unwrap(),
        vec![
            (scan, None, "vulnerable".into()),
            (scan, Some("vulnerable".into()), "patched".into())
        ]
    );
    // The same records one at a time, in a second scan: every finding stays where it is.
    let again = batched.begin_scan(&ScanInfo::default()).unwrap();
    for r in &records {
        batched.write_batch(again, std::slice::from_ref(r)).unwrap();
    }
    let history = batched
        .history("127.64.0.5", 443, "CVE-2019-19781")
        .unwrap();
    assert_eq!(history.len(), 4, "{history:?}");
    assert_eq!(
        batched.finding_counts().unwrap(),
        vec![
            ("CVE-2019-19781".into(), "patched".into(), 100),
            ("CVE-2019-19781".into(), "vulnerable".into(), 1100)
        ]
    );
}

#[test]
fn a_version_2_file_is_migrated_in_place() {
    let path = temp_db("v2");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for m in schema::SQLITE.iter().filter(|m| m.version <= 2) {
            conn.execute_batch(m.sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 2; INSERT INTO scans (started_at, seed, shard, ports, check_name, scope, params, state) VALUES ('2026-01-01T00:00:00Z', 7, '1/1', '443', 'netscaler', '127.0.0.0/8', '{}', 'finished');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let scans = store.scans().unwrap();
    assert_eq!(
        (scans.len(), scans[0].seed),
        (1, 7),
        "the old scan survives"
    );
    assert!(
        store
            .db
            .query("SELECT id FROM organisations", vals![])
            .is_ok()
    );
    drop(store);
    remove_sqlite(&path);
}

#[test]
fn hostile_certificate_text_is_stored_on_both_backends() {
    on_each_backend("hostile_text", hostile_certificate_text_is_stored);
}

/// A certificate subject with NUL and invalid-looking bytes (the server chose them) is stored,
/// not a failed batch.
fn hostile_certificate_text_is_stored(path: &str) {
    use wachter_core::record::{Certificate, TlsInfo};
    let mut r = record("127.65.0.1", Verdict::Vulnerable);
    r.tls = Some(TlsInfo {
        chain: vec![Certificate {
            sha256: "ab".repeat(32),
            subject: "CN=evil\0.test\u{202e}'; DROP TABLE scans; --".into(),
            issuer: "CN=\0".into(),
            sans: vec!["\0.test".into()],
            der: "not base64 at all!".into(),
            ..Certificate::default()
        }],
        ..TlsInfo::default()
    });
    let mut store = Store::open(path).unwrap();
    let scan = store.begin_scan(&ScanInfo::default()).unwrap();
    store.write_batch(scan, &[r]).unwrap();
    assert_eq!(store.observation_count(scan).unwrap(), 1);
    let subject = store
        .db
        .query("SELECT subject FROM certificates", vals![])
        .unwrap()[0]
        .text(0)
        .unwrap();
    assert!(subject.starts_with("CN=evil"), "{subject}");
    assert!(subject.ends_with("DROP TABLE scans; --"), "{subject}");
    assert_eq!(store.scans().unwrap().len(), 1);
}

#[test]
fn organisations_registry_networks_and_attributions_are_kept() {
    on_each_backend("constituency", constituency_is_kept);
}

fn constituency_is_kept(path: &str) {
    use wachter_constituency::org::{self, OrgFormat};
    let mut store = Store::open(path).unwrap();
    let file = org::parse(
        r#"
[[organisation]]
name = "Ziekenhuis Voorbeeld"
sector = "healthcare"
tlp = "amber"
networks = ["127.66.0.0/24"]
domains = ["ziekenhuis-voorbeeld.nl"]
asns = [64496]
[[organisation.contacts]]
email = "security@ziekenhuis-voorbeeld.nl"
language = "nl"
"#,
        OrgFormat::Toml,
        "orgs.toml",
    );
    assert_eq!(file.problems, vec![]);
    assert_eq!(
        store.upsert_organisations(&file.organisations).unwrap(),
        OrganisationChanges {
            added: 1,
            updated: 0
        }
    );
    // The same name again (other case) updates, and replaces the lists.
    let mut changed = file.organisations[0].clone();
    changed.name = "ZIEKENHUIS VOORBEELD".into();
    changed.networks = vec!["127.66.1.0/24".parse().unwrap()];
    assert_eq!(
        store.upsert_organisations(&[changed]).unwrap(),
        OrganisationChanges {
            added: 0,
            updated: 1
        }
    );
    // Case folds beyond ASCII, the same on both engines.
    let umlaut = |name: &str| org::Organisation {
        name: name.into(),
        ..org::Organisation::default()
    };
    store
        .upsert_organisations(&[umlaut("ÄRZTE Verbund")])
        .unwrap();
    assert_eq!(
        store
            .upsert_organisations(&[umlaut("ärzte verbund")])
            .unwrap(),
        OrganisationChanges {
            added: 0,
            updated: 1
        }
    );
    assert!(store.remove_organisation("ÄRZTE VERBUND").unwrap());
    let orgs = store.organisations().unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(
        orgs[0].organisation.networks,
        vec!["127.66.1.0/24".parse().unwrap()]
    );
    assert_eq!(orgs[0].organisation.contacts.len(), 1);
    assert_eq!(orgs[0].organisation.asns, vec![64496]);
    let org_id = orgs[0].id;

    // Registry imports: a finished import replaces the previous one of the registry.
    let row = |net: &str| RegistryRow {
        network: net.into(),
        netname: "EXAMPLE-NET".into(),
        abuse_mailboxes: vec!["abuse@example.net".into()],
        abuse_source: "inetnum abuse-c AR1-RIPE".into(),
        ..RegistryRow::default()
    };
    let first = store.begin_registry_import("ripe", "a.gz").unwrap();
    store
        .write_registry_networks(first, &[row("127.66.0.0/16")])
        .unwrap();
    store.finish_registry_import(first, 1, 0).unwrap();
    let second = store.begin_registry_import("ripe", "b.gz").unwrap();
    store
        .write_registry_networks(second, &[row("127.66.0.0/17"), row("127.66.128.0/17")])
        .unwrap();
    let mut seen = Vec::new();
    store
        .registry_networks(|_, network| seen.push(network.to_string()))
        .unwrap();
    assert_eq!(
        seen,
        vec!["127.66.0.0/16"],
        "an unfinished import does not count"
    );
    store.finish_registry_import(second, 2, 0).unwrap();
    seen.clear();
    store
        .registry_networks(|_, network| seen.push(network.to_string()))
        .unwrap();
    assert_eq!(seen, vec!["127.66.0.0/17", "127.66.128.0/17"]);
    let mut ids = Vec::new();
    store.registry_networks(|id, _| ids.push(id)).unwrap();
    let rows = store.registry_rows(&ids).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[&ids[0]].abuse_mailboxes, vec!["abuse@example.net"]);

    // Attributions, upserted, and reports read them back with the finding.
    let scan = store.begin_scan(&ScanInfo::default()).unwrap();
    store
        .write_batch(
            scan,
            &[
                record("127.66.1.5", Verdict::Vulnerable),
                record("127.66.9.9", Verdict::Vulnerable),
            ],
        )
        .unwrap();
    let mut services = Vec::new();
    store.services_to_attribute(|s| services.push(s)).unwrap();
    assert_eq!(services.len(), 2);
    let attribution = |service: &ServiceFacts, org: Option<i64>| AttributionRow {
        service_id: service.service_id,
        organisation_id: org,
        method: if org.is_some() { "network" } else { "none" }.into(),
        matched: org.map(|_| "127.66.1.0/24".into()),
        asn: Some(64496),
        ..AttributionRow::default()
    };
    store
        .write_attributions(&[
            attribution(&services[0], None),
            attribution(&services[1], None),
        ])
        .unwrap();
    store
        .write_attributions(&[attribution(&services[0], Some(org_id))])
        .unwrap();
    let owned = store.findings_with_owners().unwrap();
    let owners: Vec<(&str, Option<&str>, Option<&str>)> = owned
        .iter()
        .map(|f| {
            (
                f.ip.as_str(),
                f.organisation.as_deref(),
                f.method.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        vec![
            ("127.66.1.5", Some("ZIEKENHUIS VOORBEELD"), Some("network")),
            ("127.66.9.9", None, Some("none"))
        ]
    );
    assert_eq!(owned[0].asn, Some(64496));
    assert!(store.remove_organisation("ziekenhuis voorbeeld").unwrap());
    assert!(!store.remove_organisation("ziekenhuis voorbeeld").unwrap());
    let after = &store.findings_with_owners().unwrap()[0];
    assert_eq!(
        (after.organisation.as_deref(), after.method.as_deref()),
        (None, Some("none")),
        "a removed organisation's services keep no claim"
    );
}

#[test]
fn the_outbox_tells_each_finding_once_and_never_sends_twice() {
    on_each_backend("outbox", outbox_rules);
}

fn outbox_rules(path: &str) {
    let mut store = Store::open(path).unwrap();
    let scan = store.begin_scan(&ScanInfo::default()).unwrap();
    store
        .write_batch(
            scan,
            &[
                record("127.60.9.1", Verdict::Vulnerable),
                record("127.60.9.2", Verdict::Mitigated),
                record("127.60.9.3", Verdict::Patched),
            ],
        )
        .unwrap();
    store.finish_scan(scan, false, "{}").unwrap();
    let open = store.notice_candidates(Some("cve-2019-19781")).unwrap();
    let ips: Vec<&str> = open.iter().map(|c| c.ip.as_str()).collect();
    assert_eq!(ips, vec!["127.60.9.1", "127.60.9.2"], "patched is not open");
    assert_eq!(
        open[0].vulnerable_since.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    assert!(
        open[0]
            .record
            .as_deref()
            .unwrap()
            .contains("wachter.service/1")
    );
    assert_eq!((open[0].notified_count, open[0].pending), (0, 0));

    let now = time::OffsetDateTime::now_utc();
    let t = |secs: i64| timestamp(now + time::Duration::seconds(secs));
    let campaign = |cutoff: String| NewCampaign {
        name: "test".into(),
        cve: "CVE-2019-19781".into(),
        tlp: "amber".into(),
        language: "en".into(),
        params: serde_json::json!({}),
        summary: serde_json::json!({}),
        not_notified_since: cutoff,
    };
    let message = |ticket: &str| NewMessage {
        ticket: ticket.to_string(),
        content: MailContent {
            mail_from: "cert@test.test".into(),
            recipients: vec!["soc@zh.test".into()],
            subject: format!("[{ticket}] test"),
            message_id: format!("<{ticket}@test.test>"),
            bytes: [
                format!("Subject: [{ticket}] test\r\n\r\nbody").as_bytes(),
                b"\xff",
            ]
            .concat(),
        },
        organisation_id: None,
        recipient_name: "Ziekenhuis".into(),
        language: "en".into(),
        round: 1,
        findings: open
            .iter()
            .map(|c| (c.finding_id, c.state.clone()))
            .collect(),
    };
    // Ticket numbers are unique and never handed out twice.
    let tickets = store.reserve_tickets("T", 2).unwrap();
    assert_eq!(tickets, vec!["T-10000001", "T-10000002"]);
    let ticket = &tickets[0];
    let created = store
        .create_campaign(
            &campaign(t(-7 * 86400)),
            std::slice::from_ref(&message(ticket)),
        )
        .unwrap();
    assert_eq!(&created.tickets, std::slice::from_ref(ticket));
    let told = store.notice_candidates(None).unwrap();
    assert_eq!(
        (told[0].notified_count, told[0].pending),
        (0, 1),
        "queued, not sent"
    );
    assert!(told[0].last_notified.is_some());
    // While a message waits in the outbox no other campaign may tell its findings, whatever
    // the interval: refused whole.
    let err = store
        .create_campaign(&campaign(t(1)), std::slice::from_ref(&message(&tickets[1])))
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.campaigns().unwrap().len(), 1);

    // Claiming is exclusive; a stale claim (a killed sender) is taken over, and the
    // first sender's late outcome is then ignored.
    let due = store.due_messages(&t(1), &t(-600), 10).unwrap();
    assert_eq!(due.len(), 1);
    let first = store
        .claim_message(due[0].id, &t(1), &t(-600))
        .unwrap()
        .unwrap();
    assert_eq!(first.attempts, 1);
    assert!(first.bytes.ends_with(b"body\xff"), "stored byte for byte");
    assert!(
        store
            .claim_message(due[0].id, &t(1), &t(-600))
            .unwrap()
            .is_none()
    );
    assert!(store.due_messages(&t(2), &t(-600), 10).unwrap().is_empty());
    let again = store
        .claim_message(due[0].id, &t(700), &t(100))
        .unwrap()
        .unwrap();
    assert_eq!(again.attempts, 2);
    assert!(
        !store.message_sent(&first, "250 late", &t(701)).unwrap(),
        "not its claim any more"
    );
    // A temporary failure queues it for later; a permanent one holds it.
    assert!(
        store
            .message_failed(&again, "451 later", Some(&t(3600)))
            .unwrap()
    );
    assert!(store.due_messages(&t(701), &t(100), 10).unwrap().is_empty());
    assert_eq!(store.next_due_after(&t(701)).unwrap(), Some(t(3600)));
    assert_eq!(store.next_due_after(&t(3600)).unwrap(), None);
    assert_eq!(store.outbox_waiting().unwrap(), (1, 0));
    let third = store
        .claim_message(again.id, &t(3601), &t(3000))
        .unwrap()
        .unwrap();
    assert!(
        store
            .message_failed(&third, "550 no such user", None)
            .unwrap()
    );
    assert!(
        store
            .due_messages(&t(9999), &t(9000), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.outbox_waiting().unwrap(), (0, 1));
    let row = &store.outbox(None).unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("held", 3));
    assert_eq!(row.last_error.as_deref(), Some("550 no such user"));
    assert_eq!(store.requeue_messages(None).unwrap(), 1, "--all");
    let fourth = store
        .claim_message(third.id, &t(9999), &t(9000))
        .unwrap()
        .unwrap();
    assert!(store.message_sent(&fourth, "250 OK", &t(10_000)).unwrap());
    assert_eq!(
        store.cancel_messages(std::slice::from_ref(ticket)).unwrap(),
        0,
        "sent stays sent"
    );
    let (row, bytes) = store.message(ticket).unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.findings), ("sent", 2));
    assert!(bytes.starts_with(format!("Subject: [{ticket}]").as_bytes()));
    assert_eq!(store.last_sent_to(&t(0)).unwrap()["soc@zh.test"], t(10_000));
    // The interval runs from when it was sent, not from when it was queued.
    let told = store.notice_candidates(None).unwrap();
    assert_eq!((told[0].notified_count, told[0].pending), (1, 0));
    assert_eq!(told[0].last_notified.as_deref(), Some(t(10_000).as_str()));
    assert!(
        store
            .create_campaign(
                &campaign(t(9_000)),
                std::slice::from_ref(&message(&tickets[1]))
            )
            .is_err(),
        "sent after the cutoff"
    );

    // Cancelling an unsent message frees its findings for the next campaign.
    let created = store
        .create_campaign(
            &campaign(t(10_001)),
            std::slice::from_ref(&message(&tickets[1])),
        )
        .unwrap();
    assert_eq!(store.cancel_messages(&created.tickets).unwrap(), 1);
    let counts = store.notice_candidates(None).unwrap();
    assert_eq!((counts[0].notified_count, counts[0].pending), (1, 0));
    let listed = store.campaigns().unwrap();
    assert_eq!(listed[0].messages["cancelled"], 1);
    assert_eq!(listed[1].messages["sent"], 1);
}
