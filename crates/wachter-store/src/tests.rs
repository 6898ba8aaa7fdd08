use wachter_core::assessment::{Assessment, Basis, CveVerdict, Flags, Product, Verdict};
use wachter_core::record::{ServiceRecord, Status};

use super::*;

fn temp_db(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("wachter-store-{}-{name}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn record(ip: &str, verdict: Verdict) -> ServiceRecord {
    let mut r = ServiceRecord::new(
        ip.parse().unwrap(),
        443,
        None,
        "2026-01-01T00:00:00Z".into(),
    );
    r.status = Status::Open;
    r.checks.push(Assessment {
        check: "netscaler".into(),
        product: Product::Netscaler,
        signals: vec![],
        build: None,
        probe: None,
        cves: vec![
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
        ],
        flags: Flags::default(),
    });
    r
}

#[test]
fn findings_keep_their_history_across_scans() {
    let path = temp_db("history");
    let mut store = Store::open(&path).unwrap();
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
    assert!(Store::open(&path).is_ok());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn closed_addresses_are_remembered_only_once_seen_open() {
    let path = temp_db("closed");
    let mut store = Store::open(&path).unwrap();
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
    std::fs::remove_file(&path).unwrap();
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
    let path = temp_db("trend");
    let mut store = Store::open(&path).unwrap();
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
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_second_writer_waits_for_the_first() {
    let path = temp_db("two-writers");
    let first = Store::open(&path).unwrap();
    let scan = first.begin_scan(&ScanInfo::default()).unwrap();
    // The first writer holds the write lock for a while (an open immediate transaction).
    first.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let second_path = path.clone();
    let second = std::thread::spawn(move || {
        let mut store = Store::open(&second_path).unwrap();
        store.write_batch(scan, &[record("127.62.0.1", Verdict::Vulnerable)])
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !second.is_finished(),
        "the second writer must wait, not fail"
    );
    let reader = rusqlite::Connection::open(&path).unwrap();
    let written: i64 = reader
        .query_row("SELECT count(*) FROM observations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(written, 0, "nothing may be written past the lock");
    first.conn.execute_batch("COMMIT").unwrap();
    second.join().unwrap().unwrap();
    assert_eq!(first.observation_count(scan).unwrap(), 1);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn an_older_scan_written_late_does_not_overwrite_a_newer_state() {
    let path = temp_db("late");
    let mut store = Store::open(&path).unwrap();
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
    std::fs::remove_file(&path).unwrap();
}
