//! The command line as a user runs it: exit codes, error messages, input formats, output.

use std::process::{Command, Stdio};
use std::time::Duration;

use wachter_lab::{Behaviour, HostSpec, KeyKind, Lab, LabOptions};

mod common;
use common::*;

#[test]
fn a_malformed_target_line_stops_the_scan_before_it_starts() {
    let file = temp(
        "targets.txt",
        "127.40.0.1\n# comment\nvpn..bad\n127.40.0.2\n",
    );
    let out = wachter(&[
        "scan",
        "--scope",
        "127.40.0.0/24",
        &format!("@{}", file.display()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("targets.txt:3:"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing may be scanned");
}

#[test]
fn usage_errors_exit_2() {
    // Refused before anything is written: no output file, no database.
    let db = work_dir().join("too-large.db");
    let output = work_dir().join("too-large.jsonl");
    let too_large = wachter(&[
        "scan",
        "--scope",
        "2001:db8::/32",
        "--db",
        db.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "2001:db8::/64",
    ]);
    assert_eq!(too_large.status.code(), Some(2));
    assert!(!db.exists() && !output.exists());
    let no_scope = wachter(&["scan", "--no-db", "127.0.0.1"]);
    assert_eq!(no_scope.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_scope.stderr).contains("no scope"));
    assert_eq!(
        wachter(&["scan", "--shard", "2/4", "127.0.0.1"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        wachter(&["scan", "--ports", "0", "127.0.0.1"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        wachter(&["scan", "--scope", "nonsense", "127.0.0.1"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(wachter(&["scan"]).status.code(), Some(2));
    assert_eq!(
        wachter(&["lab", "--hosts", "145.1.2.0/30", "--duration", "1"])
            .status
            .code(),
        Some(2)
    );
    let help = wachter(&["scan", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("masscan"));
}

#[test]
fn loopback_is_refused_unless_the_scope_names_it() {
    // A scope that covers everything but does not name loopback.
    let out = wachter(&[
        "scan",
        "--scope",
        "0.0.0.0/0,::/0",
        "--no-db",
        "--ports",
        "18443",
        "127.41.0.1",
        "127.41.0.2:9",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let recs = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r["status"], "blocked");
        assert_eq!(r["blocked_by"], "special_purpose");
        assert_eq!(r["connections"], 0);
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("special_purpose"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_to_the_output_file_and_the_summary_to_stdout() {
    let _lab = lab("127.42.0.1", &[Behaviour::Https, Behaviour::Http]).await;
    let output = std::env::temp_dir().join(format!("wachter-cli-{}-out.jsonl", std::process::id()));
    let out_path = output.display().to_string();
    let summary = wachter_json(&[
        "scan",
        "--scope",
        "127.42.0.0/24",
        "--ports",
        "18443",
        "--seed",
        "3",
        "--json",
        "-o",
        &out_path,
        "127.42.0.0/29",
    ])
    .await;
    assert_eq!(summary["services"], 8);
    assert_eq!(summary["seed"], 3);
    assert_eq!(summary["by_status"]["open"], 2);
    assert_eq!(summary["by_status"]["closed"], 6);
    let recs = records(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(recs.len(), 8);
    assert!(recs.iter().all(|r| r["schema"] == "wachter.service/1"));
    let https = recs.iter().find(|r| r["ip"] == "127.42.0.1").unwrap();
    assert_eq!(https["protocol"], "https");
    assert_eq!(https["http"][0]["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_scanner_output_and_opt_out() {
    let _lab = lab("127.43.0.1", &[Behaviour::Http, Behaviour::Http]).await;
    let masscan = temp(
        "masscan.txt",
        "#masscan\nopen tcp 18443 127.43.0.1 1390380064\nopen tcp 18443 127.43.0.2 1390380064\n# end\n",
    );
    let opt_out = temp(
        "opt-out.txt",
        "# hospital asked not to be scanned\n127.43.0.2\n",
    );
    let args = vec![
        "scan".to_string(),
        "--scope".into(),
        "127.43.0.0/24".into(),
        "--opt-out".into(),
        opt_out.display().to_string(),
        "--ports".into(),
        "18443".into(),
        "-".into(),
        format!("@{}", masscan.display()),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wachter_with_stdin(&args, Some("127.43.0.1,vpn.lab.test\n"))
    })
    .await
    .unwrap();
    assert_exit(&out, 0);
    let recs = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(recs.len(), 3);
    let named = recs
        .iter()
        .find(|r| r["hostname"] == "vpn.lab.test")
        .unwrap();
    assert_eq!(named["status"], "open");
    assert!(
        named["http"][0]["request"]
            .as_str()
            .unwrap()
            .contains("Host: vpn.lab.test:18443\r\n")
    );
    let opted_out = recs.iter().find(|r| r["ip"] == "127.43.0.2").unwrap();
    assert_eq!(opted_out["status"], "blocked");
    assert_eq!(opted_out["blocked_by"], "opt_out");
}

#[test]
fn demo_runs_end_to_end() {
    let db = work_dir().join("demo.db");
    let mail = work_dir().join("demo-mail");
    let out = wachter(&[
        "demo",
        "--no-serve",
        "--hosts",
        "127.78.0.0/27",
        "--port",
        "18443",
        "--json",
        "--db",
        db.to_str().unwrap(),
        "--mail-dir",
        mail.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    // The comparison (an array) comes first, then the scan summary.
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let hosts = values.next().unwrap().unwrap();
    let hosts = hosts.as_array().unwrap();
    assert_eq!(hosts.len(), 32);
    assert!(hosts.iter().all(|h| h["match"] == true));
    let summary = values.next().unwrap().unwrap();
    assert_eq!(summary["services"], 32);
    // Then the notifications: the demo constituency's two organisations, each told about
    // its vulnerable and mitigated hosts in its own language, rendered and not queued.
    let campaign = values.next().unwrap().unwrap();
    let messages = campaign["messages"].as_array().unwrap();
    let languages: Vec<&str> = messages
        .iter()
        .map(|m| m["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, vec!["nl", "en"], "{campaign:#}");
    assert_eq!(campaign["counts"]["told"], 6, "{campaign:#}");
    assert_eq!(campaign["campaign_id"], serde_json::Value::Null);
    let dutch = std::fs::read_to_string(mail.join("WACHTER-DRYRUN-1.txt")).unwrap();
    assert!(
        dutch.contains("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1"),
        "{dutch}"
    );
    assert!(dutch.contains("kwetsbaar"), "{dutch}");
    assert_eq!(
        summary["checks"]["netscaler"]["cves"]["CVE-2019-19781"]["vulnerable"],
        5
    );
    // The demo's scan is in its database (the two closed lab addresses were never open, so
    // they are not remembered).
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (state, services): (String, i64) = conn
        .query_row(
            "SELECT state, services FROM scans ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), services), ("finished", 30));
    let vulnerable: i64 = conn
        .query_row(
            "SELECT count(*) FROM findings WHERE cve = 'CVE-2019-19781' AND state = 'vulnerable'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(vulnerable, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_is_never_a_closed_port() {
    // 24 descriptors for the whole process and 64 probes wanted: connects hit EMFILE, which
    // must be retried after a pause, never recorded as closed.
    let _lab = lab("127.44.0.1", &[Behaviour::Http; 40]).await;
    let out = tokio::task::spawn_blocking(|| {
        let script = format!(
            "ulimit -n 24 && exec {} scan --scope 127.44.0.0/24 --ports 18443 --discover --rate 0 --per-network-rate 0 -c 64 --no-db --json 127.44.0.1-127.44.0.40",
            env!("CARGO_BIN_EXE_wachter")
        );
        Command::new("sh").arg("-c").arg(script).env_remove("WACHTER_CONFIG").output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let recs = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(recs.len(), 40);
    assert!(recs.iter().all(|r| r["status"] == "open"), "{stderr}");
}

#[test]
fn a_foreign_database_stops_the_scan_before_it_starts() {
    let db = work_dir().join("foreign.db");
    let _ = std::fs::remove_file(&db);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE patients (name TEXT)")
        .unwrap();
    let out = wachter(&[
        "scan",
        "--scope",
        "127.46.0.0/24",
        "--db",
        db.to_str().unwrap(),
        "127.46.0.1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a wachter database"));
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_is_scanned_like_ipv4() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let _lab = Lab::start(
        vec![HostSpec {
            ip: "::1".parse().unwrap(),
            port: 18449,
            behaviour: Behaviour::NsMitigated,
            hostname: None,
        }],
        &LabOptions {
            key: KeyKind::Ecdsa,
            drip_interval: Duration::from_millis(50),
            log_requests: false,
        },
    )
    .await
    .unwrap();
    let out = wachter_async(&["scan", "--scope", "::1/128", "--no-db", "[::1]:18449"]).await;
    assert_exit(&out, 0);
    let recs = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["ip"], "::1");
    assert_eq!(recs[0]["protocol"], "https");
    assert!(
        recs[0]["http"][0]["request"]
            .as_str()
            .unwrap()
            .contains("Host: [::1]:18449\r\n")
    );
    assert_eq!(recs[0]["checks"][0]["probe"]["state"], "mitigated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescans_tell_fixed_from_unreachable() {
    for db in databases("case") {
        rescans_tell_fixed_from_unreachable_in(db).await;
    }
}

async fn rescans_tell_fixed_from_unreachable_in(db_arg: String) {
    let scan = |db: String| {
        tokio::task::spawn_blocking(move || {
            wachter(&[
                "scan",
                "--scope",
                "127.47.0.0/24",
                "--ports",
                "18443",
                "--db",
                &db,
                "-o",
                "/dev/null",
                "127.47.0.1-127.47.0.3",
            ])
        })
    };
    let at = |i: u8, behaviour| HostSpec {
        ip: std::net::Ipv4Addr::new(127, 47, 0, i).into(),
        port: 18443,
        behaviour,
        hostname: None,
    };
    let options = LabOptions {
        key: KeyKind::Ecdsa,
        drip_interval: Duration::from_millis(50),
        log_requests: false,
    };

    // Monday: three exposed gateways.
    let monday = Lab::start(
        vec![
            at(1, Behaviour::NsVulnerable),
            at(2, Behaviour::NsVulnerable),
            at(3, Behaviour::NsVulnerable),
        ],
        &options,
    )
    .await
    .unwrap();
    assert_eq!(scan(db_arg.clone()).await.unwrap().status.code(), Some(0));
    monday.stop().await;
    // Tuesday: one patched, one mitigated, one gone dark.
    let tuesday = Lab::start(
        vec![at(1, Behaviour::NsPatched), at(2, Behaviour::NsMitigated)],
        &options,
    )
    .await
    .unwrap();
    assert_eq!(scan(db_arg.clone()).await.unwrap().status.code(), Some(0));
    tuesday.stop().await;

    let db2 = db_arg.clone();
    let diff = wachter_json(&[
        "diff",
        "1",
        "2",
        "--db",
        &db2,
        "--cve",
        "CVE-2019-19781",
        "--json",
    ])
    .await;
    let change = |ip: &str| {
        diff["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["ip"] == ip)
            .map(|e| e["change"].clone())
    };
    assert_eq!(change("127.47.0.1"), Some("fixed".into()));
    assert_eq!(change("127.47.0.2"), Some("still_open".into()));
    assert_eq!(
        change("127.47.0.3"),
        Some("unreachable".into()),
        "a host that stopped answering is not fixed"
    );

    let db3 = db_arg.clone();
    let report = wachter_json(&["report", "--db", &db3, "--cve", "CVE-2019-19781", "--json"]).await;
    let points = report["CVE-2019-19781"].as_array().unwrap();
    assert_eq!(
        (
            points[0]["vulnerable"].as_u64(),
            points[0]["unreachable"].as_u64()
        ),
        (Some(3), Some(0))
    );
    assert_eq!(
        (
            points[1]["vulnerable"].as_u64(),
            points[1]["mitigated"].as_u64(),
            points[1]["patched"].as_u64(),
            points[1]["unreachable"].as_u64()
        ),
        (Some(0), Some(1), Some(1), Some(1))
    );

    // A consistent copy: a SQLite store that opens as one, or a pg_dump archive.
    let copy = work_dir().join(format!(
        "backup-{}",
        if wachter_store::is_postgres_url(&db_arg) {
            "pg.dump"
        } else {
            "case.db"
        }
    ));
    let _ = std::fs::remove_file(&copy);
    let out = wachter_async(&["db", "backup", copy.to_str().unwrap(), "--db", &db_arg]).await;
    assert_exit(&out, 0);
    if wachter_store::is_postgres_url(&db_arg) {
        let bytes = std::fs::read(&copy).unwrap();
        assert!(bytes.starts_with(b"PGDMP"), "a pg_dump custom archive");
    } else {
        assert_eq!(
            query_ints(copy.to_str().unwrap(), "SELECT count(*) FROM scans"),
            Some(vec![2])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_killed_mid_way_resumes_with_nothing_lost_or_doubled() {
    let _lab = lab("127.49.0.1", &[Behaviour::Http; 200]).await;
    for db in databases("resume") {
        killed_scan_resumes(&db).await;
    }
}

async fn killed_scan_resumes(db: &str) {
    let count = |db: &str| -> (i64, i64) {
        match query_ints(
            db,
            "SELECT count(*), count(DISTINCT service_id) FROM observations WHERE scan_id = 1",
        )
        .as_deref()
        {
            Some(&[records, services]) => (records, services),
            _ => (0, 0),
        }
    };

    // 200 listeners in a /24 at 80 new connections a second (two per plain-HTTP host: TLS is
    // tried first): about six seconds of work.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wachter"))
        .args([
            "scan",
            "--scope",
            "127.49.0.0/24",
            "--ports",
            "18443",
            "--check",
            "none",
            "--rate",
            "80",
            "--per-network-rate",
            "0",
            "--db",
            db,
            "-o",
            "/dev/null",
            "127.49.0.0/24",
        ])
        .current_dir(work_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = 0;
    for _ in 0..300 {
        seen = count(db).0;
        if seen >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen >= 40,
        "{db}: the scan never got going ({seen} records)"
    );
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    let _ = child.wait();
    let (before, _) = count(db);
    assert!(
        before < 200,
        "{db}: killed too late to test anything ({before} records)"
    );

    let out = wachter_async(&["scan", "--resume", "1", "--db", db, "-o", "/dev/null"]).await;
    assert_exit(&out, 0);
    assert_eq!(count(db), (200, 200), "{db}: every listener exactly once");
    assert_eq!(
        query_ints(
            db,
            "SELECT count(*), count(CASE WHEN state = 'finished' THEN 1 END) FROM scans"
        ),
        Some(vec![1, 1]),
        "{db}: a resume finishes the scan; it does not start another"
    );
    // A finished scan cannot be resumed again.
    let again = wachter_async(&["scan", "--resume", "1", "--db", db]).await;
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn imports_join_the_history_and_broken_rows_are_named() {
    let db = work_dir().join("import.db");
    let _ = std::fs::remove_file(&db);
    let db_arg = db.to_str().unwrap();
    let shadowserver = temp(
        "2020-01-20-scan_http_vulnerable-example.csv",
        "timestamp,severity,ip,protocol,port,hostname,tag,http_code,detail\n\
\"2020-01-20 03:12:44\",critical,192.0.2.10,tcp,443,gw.example.test,\"citrix;cve-2019-19781\",200,smb.conf\n\
\"2020-01-20 03:12:45\",critical,not-an-address,tcp,443,,\"citrix;cve-2019-19781\",200,\n\
\"2020-01-20 03:12:46\",critical,192.0.2.11,tcp,8443,,\"citrix;cve-2019-19781\",200,\n",
    );
    let file = shadowserver.to_str().unwrap();
    let refused = wachter(&["import", "--db", db_arg, file]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(":line 3:"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!db.exists(), "nothing half-imports");

    let out = wachter(&["import", "--db", db_arg, "--keep-going", "--json", file]);
    assert_exit(&out, 0);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["format"].as_str(), summary["imported"].as_u64()),
        (Some("shadowserver"), Some(2))
    );
    assert_eq!(summary["broken"][0]["line"], 3);

    let nuclei = temp(
        "nuclei.jsonl",
        r#"{"template-id":"CVE-2019-19781","info":{"classification":{"cve-id":["cve-2019-19781"]}},"host":"https://192.0.2.12","port":"443","ip":"192.0.2.12","timestamp":"2026-01-01T00:00:00Z","matcher-status":true}
"#,
    );
    let out = wachter(&["import", "--db", db_arg, nuclei.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(nuclei)"));

    // wachter's own records, from another machine's scan.
    let own = temp(
        "records.jsonl",
        r#"{"schema":"wachter.service/1","ip":"192.0.2.13","port":443,"time":"2026-01-02T00:00:00Z","status":"open","protocol":"https","connections":1,"timings":{"total_ms":5},"checks":[{"check":"netscaler","product":"netscaler","cves":[{"cve":"CVE-2019-19781","verdict":"mitigated","basis":"probe"}],"flags":{}}]}
"#,
    );
    let out = wachter(&["import", "--db", db_arg, own.to_str().unwrap()]);
    assert_exit(&out, 0);

    let report = wachter(&[
        "report",
        "--db",
        db_arg,
        "--cve",
        "CVE-2019-19781",
        "--json",
    ]);
    let points: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let states: Vec<(u64, u64)> = points["CVE-2019-19781"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["vulnerable"].as_u64().unwrap(),
                p["mitigated"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![(2, 0), (1, 0), (0, 1)],
        "each import is a scan of what it covered"
    );
}

#[test]
fn the_configured_opt_out_list_survives_an_extra_one() {
    let from_config = temp("optout-config.txt", "127.45.0.1\n");
    let from_flag = temp("optout-flag.txt", "127.45.0.2\n");
    let config = temp(
        "optout.toml",
        &format!(
            "[scan]\nopt_out_file = {:?}\n",
            from_config.display().to_string()
        ),
    );
    let out = wachter(&[
        "scan",
        "--config",
        config.to_str().unwrap(),
        "--opt-out",
        from_flag.to_str().unwrap(),
        "--scope",
        "127.45.0.0/24",
        "--no-db",
        "--ports",
        "18443",
        "127.45.0.1",
        "127.45.0.2",
    ]);
    assert_exit(&out, 0);
    let recs = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(recs.len(), 2);
    assert!(
        recs.iter().all(|r| r["blocked_by"] == "opt_out"),
        "{recs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_with_changed_targets_is_refused() {
    let _lab = lab("127.52.0.1", &[Behaviour::Http; 20]).await;
    let db = work_dir().join("changed.db");
    let _ = std::fs::remove_file(&db);
    let targets = temp("changed-targets.txt", "127.52.0.0/27\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wachter"))
        .args([
            "scan",
            "--scope",
            "127.52.0.0/24",
            "--ports",
            "18443",
            "--check",
            "none",
            "--rate",
            "4",
            "--per-network-rate",
            "0",
            "--db",
        ])
        .arg(&db)
        .args(["-o", "/dev/null"])
        .arg(format!("@{}", targets.display()))
        .current_dir(work_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the scan is registered (and running), then kill it.
    let registered = |db: &std::path::Path| {
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM scans", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0)
    };
    for _ in 0..400 {
        if registered(&db) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(registered(&db), 1, "the scan never started");
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    let _ = child.wait();
    std::fs::write(&targets, "127.52.0.0/26\n").unwrap();
    let db_arg = db.to_str().unwrap().to_string();
    let out = wachter_async(&["scan", "--resume", "1", "--db", &db_arg, "-o", "/dev/null"]).await;
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("changed since scan 1 started"));
}

/// The constituency from end to end: organisations from a file, RIPE split files, an mmdb
/// the test builds, reverse DNS from the lab's server; every service attributed with how,
/// reports by organisation, sector and AS, the unclaimed listed with their abuse contact,
/// and target lists back out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_attributed_and_reported_by_owner() {
    use wachter_constituency::mmdb::testing::{self, IpVersion};
    let at = |ip: &str, behaviour, hostname: Option<&str>| HostSpec {
        ip: ip.parse().unwrap(),
        port: 18443,
        behaviour,
        hostname: hostname.map(str::to_string),
    };
    let _lab = Lab::start(
        vec![
            at("127.54.0.1", Behaviour::NsVulnerable, None),
            at("127.54.0.2", Behaviour::NsMitigated, None),
            at("127.54.1.1", Behaviour::NsVulnerable, None),
            at("127.54.2.1", Behaviour::Https, Some("vpn.ziekenhuis-b.nl")),
            // Scanned by address only: its certificate names it.
            at("127.54.2.2", Behaviour::Https, Some("mail.ziekenhuis-b.nl")),
            at("127.54.3.1", Behaviour::NsVulnerable, None),
        ],
        &LabOptions {
            key: KeyKind::Ecdsa,
            drip_interval: Duration::from_millis(50),
            log_requests: false,
        },
    )
    .await
    .unwrap();
    let dns = wachter_lab::dns::LabDns::start_with_ptr(
        "127.54.255.53:0".parse().unwrap(),
        std::collections::HashMap::new(),
        [(
            "127.54.3.1".parse().unwrap(),
            "gw.ziekenhuis-c.nl".to_string(),
        )]
        .into(),
    )
    .await
    .unwrap();
    let db = work_dir().join("constituency.db").display().to_string();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
    let targets = temp(
        "constituency-targets.txt",
        "127.54.0.1\n127.54.0.2\n127.54.1.1\n127.54.2.1,vpn.ziekenhuis-b.nl\n127.54.2.2\n127.54.3.1\n",
    );
    let out = wachter_async(&[
        "scan",
        "--scope",
        "127.54.0.0/16",
        "--ports",
        "18443",
        "--db",
        &db,
        "-o",
        "/dev/null",
        &format!("@{}", targets.display()),
    ])
    .await;
    assert_exit(&out, 0);

    // A broken organisation file is refused whole, every problem with its line.
    let broken = temp(
        "orgs-broken.csv",
        "name,networks,domains\nZiekenhuis A,127.54.0.1/25,\nProvider,127.54.0.0/16,nl\n",
    );
    let out = wachter_async(&["org", "import", broken.to_str().unwrap(), "--db", &db]).await;
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("orgs-broken.csv:2: Ziekenhuis A: 127.54.0.1/25 has host bits set"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("orgs-broken.csv:3: Provider: organisation domain \"nl\" is a public suffix"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");

    let orgs = temp(
        "orgs.toml",
        r#"
[[organisation]]
name = "Ziekenhuis A"
sector = "healthcare"
networks = ["127.54.0.0/25"]
[[organisation.contacts]]
email = "security@ziekenhuis-a.nl"

[[organisation]]
name = "Provider"
sector = "telecom"
networks = ["127.54.0.0/16"]

[[organisation]]
name = "Ziekenhuis B"
sector = "healthcare"
domains = ["ziekenhuis-b.nl"]

[[organisation]]
name = "Ziekenhuis C"
sector = "healthcare"
domains = ["ziekenhuis-c.nl"]
"#,
    );
    let imported = wachter_json(&[
        "org",
        "import",
        orgs.to_str().unwrap(),
        "--db",
        &db,
        "--json",
    ])
    .await;
    assert_eq!(imported["added"], 4);

    // RIPE split files: the provider network's more specific inetnum has an abuse-c.
    let role = temp(
        "ripe.db.role",
        "role:           Abuse Role\nnic-hdl:        AR1-TEST\nabuse-mailbox:  abuse@provider.example\nsource:         RIPE\n",
    );
    let inetnum = temp(
        "ripe.db.inetnum",
        "inetnum:        127.54.1.0 - 127.54.1.255\nnetname:        PROVIDER-NET\ncountry:        NL\nabuse-c:        AR1-TEST\nsource:         RIPE\n\n\
         inetnum:        127.54.9.9 - 127.54.9.1\nnetname:        BROKEN\nsource:         RIPE\n",
    );
    let registry = wachter_json(&[
        "registry",
        "import",
        inetnum.to_str().unwrap(),
        role.to_str().unwrap(),
        "--db",
        &db,
        "--json",
    ])
    .await;
    assert_eq!(registry["networks"], 1, "{registry}");
    assert_eq!(
        registry["problems_total"], 1,
        "the reversed range is named: {registry}"
    );
    // Roles alone would replace the networks with none: refused, the import kept.
    let out = wachter_async(&["registry", "import", role.to_str().unwrap(), "--db", &db]).await;
    assert_exit(&out, 2);
    assert_eq!(
        query_ints(&db, "SELECT count(*) FROM registry_networks"),
        Some(vec![1])
    );

    let mmdb = work_dir().join("asn.mmdb");
    std::fs::write(
        &mmdb,
        testing::build(
            "GeoLite2-ASN",
            IpVersion::V4,
            [(
                testing::net("127.54.0.0/16"),
                testing::asn_record(64496, "Example Provider B.V."),
            )],
        )
        .unwrap(),
    )
    .unwrap();
    let resolver = dns.addr().to_string();
    // `wachter attribute` with the test's mmdb and DNS server, plus `extra`; its JSON summary.
    let attribute = async |extra: &[&str]| {
        let mut args = vec![
            "attribute",
            "--db",
            &db,
            "--mmdb",
            mmdb.to_str().unwrap(),
            "--reverse-dns",
            "--resolver",
            &resolver,
            "--json",
        ];
        args.extend_from_slice(extra);
        wachter_json(&args).await
    };
    let summary = attribute(&[]).await;
    assert_eq!(summary["services"], 6, "{summary}");
    assert_eq!(
        summary["by_method"]["network"], 6,
        "the provider's /16 holds them all: {summary}"
    );
    assert_eq!(
        summary["contested"], 2,
        "A's /25 inside the provider's /16: {summary}"
    );

    // A network beats a name, so B and C went to the provider. Take the provider's claim
    // away and the names decide.
    let out = wachter_async(&["org", "remove", "Provider", "--db", &db]).await;
    assert_exit(&out, 0);
    let summary = attribute(&[]).await;
    assert_eq!(
        (
            &summary["by_method"]["network"],
            &summary["by_method"]["hostname"],
            &summary["by_method"]["certificate"],
            &summary["by_method"]["reverse_dns"],
            &summary["by_method"]["registry"],
        ),
        (&2.into(), &1.into(), &1.into(), &1.into(), &1.into()),
        "{summary}"
    );

    // Ziekenhuis B lists no contact: its service's security.txt names one.
    let summary = attribute(&["--security-txt", "--scope", "127.54.0.0/16"]).await;
    assert_eq!(summary["security_txt_contacts"], 2, "{summary}");
    let b = query_ints(
        &db,
        "SELECT count(*) FROM attributions WHERE abuse_mailboxes = '[\"security@vpn.ziekenhuis-b.nl\"]'",
    );
    assert_eq!(b, Some(vec![1]));

    let cve = "CVE-2019-19781";
    let report =
        wachter_json(&["report", "--by", "org", "--cve", cve, "--db", &db, "--json"]).await;
    let open_of = |owner: &str| {
        report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["owner"] == owner)
            .map(|g| g["open"].as_u64().unwrap())
    };
    assert_eq!(open_of("Ziekenhuis A"), Some(2), "{report}");
    assert_eq!(open_of("Ziekenhuis C"), Some(1), "{report}");
    let unclaimed = report["unattributed"].as_array().unwrap();
    assert_eq!(unclaimed.len(), 1, "{report}");
    assert_eq!(unclaimed[0]["ip"], "127.54.1.1");
    assert_eq!(unclaimed[0]["abuse_mailboxes"][0], "abuse@provider.example");
    assert_eq!(unclaimed[0]["asn"], 64496);

    let by_sector = wachter_json(&[
        "report", "--by", "sector", "--cve", cve, "--db", &db, "--json",
    ])
    .await;
    assert_eq!(by_sector["groups"][0]["owner"], "healthcare");
    assert_eq!(by_sector["groups"][0]["open"], 3);
    let out = wachter_async(&["report", "--by", "asn", "--db", &db]).await;
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("AS64496 Example Provider B.V."));

    // Target lists for a re-scan of part of the constituency.
    let out = wachter_async(&["targets", "--org", "ziekenhuis a", "--db", &db]).await;
    assert_exit(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "127.54.0.0/25\n");
    let delegated = temp(
        "delegated-test-extended",
        "2|ripencc|20260101|3|19830705|20260101|+0100\n\
         ripencc|*|ipv4|*|2|summary\n\
         ripencc|NL|ipv4|127.54.4.0|768|20200101|allocated|a\n\
         ripencc|DE|ipv4|127.54.8.0|256|20200101|assigned|b\n\
         ripencc|NL|ipv6|2001:db8::|32|20200101|allocated|a\n",
    );
    let out = wachter_async(&[
        "targets",
        "--country",
        "nl",
        "--delegated",
        delegated.to_str().unwrap(),
        "--ipv4",
        "--db",
        &db,
    ])
    .await;
    assert_exit(&out, 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "127.54.4.0/23\n127.54.6.0/24\n"
    );

    // Export and import back: the same organisations.
    let out = wachter_async(&["org", "export", "--format", "csv", "--db", &db]).await;
    assert_exit(&out, 0);
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(csv.starts_with("name,sector,tlp,networks"), "{csv}");
    assert!(
        csv.contains("Ziekenhuis A,healthcare,,127.54.0.0/25,,,security@ziekenhuis-a.nl"),
        "{csv}"
    );
    let again = temp("orgs-again.csv", &csv);
    let imported = wachter_json(&[
        "org",
        "import",
        again.to_str().unwrap(),
        "--db",
        &db,
        "--json",
    ])
    .await;
    assert_eq!(
        (&imported["added"], &imported["updated"]),
        (&0.into(), &3.into())
    );
}
