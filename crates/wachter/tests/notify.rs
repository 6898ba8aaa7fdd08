//! Telling owners, end to end: a lab scanned twice, organisations and registry data
//! imported, campaigns planned and queued, the outbox delivered to a real SMTP server
//! process (aiosmtpd) on loopback, and what it received read back with Python's own
//! e-mail parser. On SQLite and on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wachter_lab::{Behaviour, Lab};

mod common;
use common::*;

/// `tests/interop/smtp_server.py` running on 127.0.0.1, killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpServer {
    fn start(python: &Path, name: &str) -> SmtpServer {
        let dir = work_dir().join(format!("smtp-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = wachter_notify::testing::interop_scripts().join("smtp_server.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--host", "127.0.0.1", "--port", "0", "--dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let port = line.trim().strip_prefix("ready ").unwrap().parse().unwrap();
        SmtpServer { child, port, dir }
    }

    /// Every message received so far, parsed, in arrival order: (envelope, message).
    fn received(&self, python: &Path) -> Vec<(serde_json::Value, serde_json::Value)> {
        let mut stems: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        stems.sort();
        stems
            .iter()
            .map(|meta| {
                let envelope: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
                let eml = meta.with_extension("eml");
                let out = Command::new(python)
                    .arg(wachter_notify::testing::interop_scripts().join("read_mail.py"))
                    .arg(&eml)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                (envelope, serde_json::from_slice(&out.stdout).unwrap())
            })
            .collect()
    }
}

impl SmtpServer {
    fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tests/interop/<script>` on `file` and returns the JSON summary it printed last.
fn validate(python: &Path, script: &str, file: &Path) -> serde_json::Value {
    let out = Command::new(python)
        .arg(wachter_notify::testing::interop_scripts().join(script))
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

fn header<'a>(message: &'a serde_json::Value, name: &str) -> &'a str {
    message["headers"][name][0].as_str().unwrap_or("")
}

fn part<'a>(message: &'a serde_json::Value, content_type: &str) -> &'a str {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .and_then(|p| p["text"].as_str())
        .unwrap_or("")
}

async fn lab_at(hosts: &[(&str, Behaviour)]) -> Lab {
    let hosts: Vec<(std::net::IpAddr, Behaviour)> = hosts
        .iter()
        .map(|(ip, b)| (ip.parse().unwrap(), *b))
        .collect();
    lab_hosts(&hosts).await
}

/// Scans `targets` (all in 127.`block`.0.0/16) into `db`.
async fn scan(db: &str, targets: &Path, block: u8) {
    let scope = format!("127.{block}.0.0/16");
    let out = wachter_async(&[
        "scan",
        "--scope",
        &scope,
        "--ports",
        "18443",
        "--db",
        db,
        "-o",
        "/dev/null",
        &format!("@{}", targets.display()),
    ])
    .await;
    assert_exit(&out, 0);
}

/// A fresh SQLite store named `name` holding a scan of `hosts` (all in 127.`block`/16)
/// and the organisations of `orgs_toml`, attributed.
async fn scanned_store(
    name: &str,
    block: u8,
    hosts: &[(&str, Behaviour)],
    orgs_toml: &Path,
) -> String {
    let db = work_dir().join(format!("{name}.db")).display().to_string();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
    let targets = temp(
        &format!("{name}-targets.txt"),
        &hosts
            .iter()
            .map(|(ip, _)| format!("{ip}\n"))
            .collect::<String>(),
    );
    let lab = lab_at(hosts).await;
    scan(&db, &targets, block).await;
    drop(lab);
    assert_exit(
        &wachter_async(&["org", "import", orgs_toml.to_str().unwrap(), "--db", &db]).await,
        0,
    );
    assert_exit(&wachter_async(&["attribute", "--db", &db]).await, 0);
    db
}

/// The constituency, in 127.`block`.0.0/16.
fn orgs(block: u8) -> PathBuf {
    temp(
        &format!("notify-orgs-{block}.toml"),
        &ORGS.replace("127.79.", &format!("127.{block}.")),
    )
}

const ORGS: &str = r#"
[[organisation]]
name = "Ziekenhuis Oost"
sector = "healthcare"
networks = ["127.79.0.0/24"]
[[organisation.contacts]]
email = "security@zho.test"
name = "SOC Ziekenhuis Oost"
role = "security"
[[organisation.contacts]]
email = "board@zho.test"
role = "management"

[[organisation]]
name = "Ziekenhuis West"
sector = "healthcare"
networks = ["127.79.1.0/24"]
[[organisation.contacts]]
email = "beveiliging@zhw.test"
language = "nl"

[[organisation]]
name = "Opted Out"
networks = ["127.79.4.0/24"]
[[organisation.contacts]]
email = "it@optedout.test"

[[organisation]]
name = "Rejecting"
networks = ["127.79.5.0/24"]
[[organisation.contacts]]
email = "reject@rejecting.test"

[[organisation]]
name = "Greylisting"
networks = ["127.79.6.0/24"]
[[organisation.contacts]]
email = "tempfail@greylisting.test"
"#;

fn config(name: &str, smtp: std::net::SocketAddr, block: u8, extra: &str) -> PathBuf {
    let (smtp_host, smtp_port) = (smtp.ip(), smtp.port());
    temp(
        &format!("{name}.toml"),
        &format!(
            r#"
[notify]
reporter = "Test CERT"
from = "Test CERT <cert@test-cert.test>"
reply_to = "tickets@test-cert.test"
url = "https://test-cert.test/case/citrix"
suppress = ["127.{block}.4.0/24"]
[notify.escalation]
healthcare = "Z-CERT <cert@zcert.test>"
[notify.smtp]
host = "{smtp_host}"
port = {smtp_port}
security = "none"
timeout_secs = 10
[notify.send]
recipient_gap_secs = 0
rate_per_minute = 0
retry_base_secs = 600
{extra}
"#
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_told_once_with_evidence_and_reminded_when_still_open() {
    let Some(python) = wachter_notify::testing::interop_python() else {
        return;
    };
    for db in databases("notify") {
        campaign_round_trip(&python, &db).await;
    }
}

async fn campaign_round_trip(python: &Path, db: &str) {
    let kind = if db.starts_with("postgres") {
        "pg"
    } else {
        "sqlite"
    };
    let hosts = [
        ("127.79.0.1", Behaviour::NsVulnerable),
        ("127.79.0.2", Behaviour::NsVulnerable),
        ("127.79.1.1", Behaviour::NsVulnerable),
        ("127.79.2.1", Behaviour::NsVulnerable),
        ("127.79.3.1", Behaviour::NsVulnerable),
        ("127.79.4.1", Behaviour::NsVulnerable),
        ("127.79.5.1", Behaviour::NsVulnerable),
        ("127.79.6.1", Behaviour::NsVulnerable),
        ("127.79.7.1", Behaviour::NsPatched),
    ];
    let targets = temp(
        "notify-targets.txt",
        &hosts
            .iter()
            .map(|(ip, _)| format!("{ip}\n"))
            .collect::<String>(),
    );
    let lab = lab_at(&hosts).await;
    scan(db, &targets, 79).await;
    drop(lab);

    let orgs = orgs(79);
    assert_exit(
        &wachter_async(&["org", "import", orgs.to_str().unwrap(), "--db", db]).await,
        0,
    );
    let role = temp(
        "notify-ripe.db.role",
        "role:           Hoster Abuse\nnic-hdl:        HA1-TEST\nabuse-mailbox:  abuse@hoster.test\nsource:         RIPE\n",
    );
    let inetnum = temp(
        "notify-ripe.db.inetnum",
        "inetnum:        127.79.2.0 - 127.79.2.255\nnetname:        HOSTER-NET\ncountry:        NL\nabuse-c:        HA1-TEST\nsource:         RIPE\n",
    );
    let out = wachter_async(&[
        "registry",
        "import",
        inetnum.to_str().unwrap(),
        role.to_str().unwrap(),
        "--db",
        db,
    ])
    .await;
    assert_exit(&out, 0);
    assert_exit(&wachter_async(&["attribute", "--db", db]).await, 0);

    // The same open findings for the tools CERTs run, each read back by its owner's code.
    for (format, script) in [
        ("intelmq", "validate_intelmq.py"),
        ("shadowserver", "validate_shadowserver.py"),
        ("xarf", "validate_xarf.py"),
        ("misp", "validate_misp.py"),
        ("stix", "validate_stix.py"),
    ] {
        let file = work_dir().join(format!("export-{kind}.{format}"));
        let out = wachter_async(&[
            "export",
            "--format",
            format,
            "--cve",
            "CVE-2019-19781",
            "--db",
            db,
            "-o",
            file.to_str().unwrap(),
        ])
        .await;
        assert_exit(&out, 0);
        let summary = validate(python, script, &file);
        assert_eq!(summary["ok"], true, "{format}: {summary:#}");
        // Every open finding of the CVE (the patched host is not one), as its owner reads it.
        let count = match format {
            "intelmq" => summary["events"].as_u64(),
            "shadowserver" => summary["events"].as_array().map(|e| e.len() as u64),
            "xarf" => summary["lines"].as_u64(),
            "misp" => summary["objects"].as_u64(),
            _ => summary["counts"]["sighting"].as_u64(),
        };
        assert_eq!(count, Some(8), "{format}: {summary:#}");
    }

    let smtp = SmtpServer::start(python, kind);
    let config = config(&format!("notify-{kind}"), smtp.addr(), 79, "");
    let config = config.to_str().unwrap();

    // A dry run renders every message for review and queues nothing.
    let review = work_dir().join(format!("review-{kind}"));
    let _ = std::fs::remove_dir_all(&review);
    let dry = wachter_json(&[
        "--config",
        config,
        "campaign",
        "new",
        "--cve",
        "cve-2019-19781",
        "--db",
        db,
        "--dry-run",
        review.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert_eq!(dry["messages"].as_array().unwrap().len(), 5, "{dry:#}");
    assert!(review.join("WACHTER-DRYRUN-1.eml").is_file());
    assert!(review.join("WACHTER-DRYRUN-1.html").is_file());
    assert!(review.join("plan.json").is_file());
    assert_eq!(
        query_ints(db, "SELECT COUNT(*) FROM messages"),
        Some(vec![0])
    );

    // The campaign: one message per recipient organisation; every finding decided.
    let queued = wachter_json(&[
        "--config",
        config,
        "campaign",
        "new",
        "--cve",
        "CVE-2019-19781",
        "--db",
        db,
        "--json",
    ])
    .await;
    let messages = queued["messages"].as_array().unwrap();
    let recipients: Vec<&str> = messages
        .iter()
        .map(|m| m["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(
        recipients,
        vec![
            "Ziekenhuis Oost",
            "Ziekenhuis West",
            "Rejecting",
            "Greylisting",
            "HOSTER-NET"
        ],
        "{queued:#}"
    );
    assert_eq!(messages[0]["hosts"], 2);
    assert_eq!(
        messages[0]["to"],
        serde_json::json!(["SOC Ziekenhuis Oost <security@zho.test>"])
    );
    assert_eq!(messages[1]["language"], "nl");
    assert_eq!(messages[4]["to"], serde_json::json!(["abuse@hoster.test"]));
    assert_eq!(queued["counts"]["told"], 6);
    assert_eq!(queued["counts"]["suppressed"], 1);
    assert_eq!(queued["counts"]["unroutable"], 1);
    let unroutable = queued["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["outcome"] == "unroutable")
        .unwrap();
    assert_eq!(unroutable["ip"], "127.79.3.1");
    // `campaign show` reads the decisions back from the store and lists what needs action.
    let id = queued["campaign_id"].as_i64().unwrap().to_string();
    let shown = wachter_async(&["campaign", "show", &id, "--db", db]).await;
    assert_exit(&shown, 0);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("127.79.3.1:18443 CVE-2019-19781 unroutable"),
        "{shown}"
    );
    assert!(
        shown.contains("127.79.4.1:18443 CVE-2019-19781 suppressed"),
        "{shown}"
    );
    assert!(
        !shown.contains("127.79.0.1:18443 CVE"),
        "told findings are not listed: {shown}"
    );
    let tickets: Vec<String> = messages
        .iter()
        .map(|m| m["ticket"].as_str().unwrap().to_string())
        .collect();

    // Sending: three delivered, one rejected (held), one greylisted (queued for a retry).
    let out = wachter_async(&["--config", config, "outbox", "send", "--db", db, "--json"]).await;
    assert_exit(&out, 1);
    let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sent["sent"].as_array().unwrap().len(), 3, "{sent:#}");
    assert_eq!(sent["held"][0][0], tickets[2].as_str());
    assert!(
        sent["held"][0][1].as_str().unwrap().contains("550"),
        "{sent:#}"
    );
    assert_eq!(sent["retry_later"][0][0], tickets[3].as_str());
    let outbox = wachter_json(&["outbox", "list", "--db", db, "--json"]).await;
    let states: Vec<&str> = outbox
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["sent", "sent", "held", "queued", "sent"]);
    assert!(outbox[3]["last_error"].as_str().unwrap().contains("451"));

    // What the server received, as a mail client reads it.
    let received = smtp.received(python);
    assert_eq!(received.len(), 3);
    let (envelope, oost) = &received[0];
    assert_eq!(envelope["mail_from"], "cert@test-cert.test");
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["security@zho.test"])
    );
    assert_eq!(header(oost, "x-wachter-ticket"), tickets[0]);
    let message_id = header(oost, "message-id");
    assert!(
        message_id.starts_with(&format!("<{}.", tickets[0]))
            && message_id.ends_with("@test-cert.test>"),
        "{message_id}"
    );
    assert_eq!(header(oost, "reply-to"), "tickets@test-cert.test");
    let subject = header(oost, "subject");
    assert!(
        subject.contains(&tickets[0]) && subject.contains("TLP:AMBER"),
        "{subject}"
    );
    assert!(subject.contains("CVE-2019-19781"), "{subject}");
    let text = part(oost, "text/plain");
    for expected in [
        "127.79.0.1:18443",
        "127.79.0.2:18443",
        "GET /vpn/../vpns/cfg/smb.conf HTTP/1.1",
        "HTTP/1.1 200 OK",
        "[global]",
        "wachter triage",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(part(oost, "text/html").contains("127.79.0.2"));
    let csv = oost["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["filename"] == format!("{}.csv", tickets[0]))
        .expect("the CSV attachment");
    let csv = csv["text"].as_str().unwrap();
    assert!(csv.starts_with("timestamp,severity,ip"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let (_, west) = &received[1];
    assert!(
        header(west, "subject").contains("kwetsba"),
        "{}",
        header(west, "subject")
    );
    let (envelope, hoster) = &received[2];
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["abuse@hoster.test"])
    );
    assert!(part(hoster, "text/plain").contains("127.79.2.1"));

    // What is stored is what was sent.
    let shown = wachter_async(&["outbox", "show", &tickets[0], "--db", db]).await;
    assert_exit(&shown, 0);
    let stored = String::from_utf8_lossy(&shown.stdout);
    let eml = std::fs::read_to_string(smtp.dir.join("0001.eml")).unwrap();
    assert_eq!(
        stored.replace("\r\n", "\n").trim(),
        eml.replace("\r\n", "\n").trim()
    );

    // The same campaign again: every finding was told inside the interval.
    let again = wachter_json(&[
        "--config",
        config,
        "campaign",
        "new",
        "--cve",
        "CVE-2019-19781",
        "--db",
        db,
        "--json",
    ])
    .await;
    assert_eq!(again["messages"], serde_json::json!([]), "{again:#}");
    assert_eq!(again["counts"]["recently_told"], 4, "{again:#}");
    assert_eq!(
        again["counts"]["pending"], 2,
        "the held and the greylisted message"
    );

    // A re-scan: one host patched, one mitigated (late: it was seen vulnerable).
    let hosts2: Vec<(&str, Behaviour)> = hosts
        .iter()
        .map(|(ip, b)| match *ip {
            "127.79.0.1" => (*ip, Behaviour::NsPatched),
            "127.79.0.2" => (*ip, Behaviour::NsMitigated),
            _ => (*ip, *b),
        })
        .collect();
    let lab = lab_at(&hosts2).await;
    scan(db, &targets, 79).await;
    drop(lab);
    let reminder = wachter_json(&[
        "--config",
        config,
        "campaign",
        "new",
        "--cve",
        "CVE-2019-19781",
        "--repeat-after",
        "0s",
        "--db",
        db,
        "--json",
    ])
    .await;
    let oost = &reminder["messages"][0];
    assert_eq!(oost["recipient"], "Ziekenhuis Oost", "{reminder:#}");
    assert_eq!(oost["hosts"], 1, "the patched host is not told again");
    assert_eq!(oost["round"], 2);
    assert_eq!(oost["cc"], serde_json::json!(["Z-CERT <cert@zcert.test>"]));
    assert_eq!(reminder["counts"]["pending"], 2, "{reminder:#}");
    let out = wachter_async(&["--config", config, "outbox", "send", "--db", db]).await;
    assert_exit(&out, 1); // the greylisted and rejected ones are still waiting
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("still in the outbox: 1 queued, 1 held"),
        "{stdout}"
    );
    let received = smtp.received(python);
    let (envelope, reminder_mail) = received
        .iter()
        .find(|(_, m)| header(m, "x-wachter-ticket") == oost["ticket"].as_str().unwrap())
        .expect("the reminder was sent");
    assert_eq!(
        envelope["rcpt_tos"],
        serde_json::json!(["security@zho.test", "cert@zcert.test"])
    );
    let text = part(reminder_mail, "text/plain");
    assert!(
        text.contains("127.79.0.2") && !text.contains("127.79.0.1:"),
        "{text}"
    );
    assert!(text.to_lowercase().contains("assume"), "{text}");
}

/// Kills `wachter outbox send` while the relay holds the message, then sends again: the
/// message is delivered, once, with the same Message-ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_mid_message_loses_nothing() {
    let Some(python) = wachter_notify::testing::interop_python() else {
        return;
    };
    let db = scanned_store(
        "notify-kill",
        80,
        &[("127.80.0.1", Behaviour::NsVulnerable)],
        &orgs(80),
    )
    .await;

    // A relay that accepts the connection and never answers.
    let silent = std::net::TcpListener::bind("127.80.255.25:0").unwrap();
    let hung = config(
        "notify-kill-hung",
        silent.local_addr().unwrap(),
        80,
        "stale_after_secs = 1",
    );
    let hung = hung.to_str().unwrap().to_string();
    let queued = wachter_json(&[
        "--config",
        &hung,
        "campaign",
        "new",
        "--cve",
        "CVE-2019-19781",
        "--db",
        &db,
        "--json",
    ])
    .await;
    let ticket = queued["messages"][0]["ticket"]
        .as_str()
        .unwrap()
        .to_string();

    let mut sender = Command::new(env!("CARGO_BIN_EXE_wachter"))
        .args(["--config", &hung, "outbox", "send", "--db", &db])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while query_ints(&db, "SELECT COUNT(*) FROM messages WHERE state = 'sending'") != Some(vec![1])
    {
        assert!(
            Instant::now() < deadline,
            "the sender never claimed the message"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sender.kill().unwrap();
    sender.wait().unwrap();
    drop(silent);

    // Another run, against a working relay, once the claim is stale.
    std::thread::sleep(Duration::from_millis(2200));
    let smtp = SmtpServer::start(&python, "kill");
    let working = config(
        "notify-kill-working",
        smtp.addr(),
        80,
        "stale_after_secs = 1",
    );
    let out = wachter_async(&[
        "--config",
        working.to_str().unwrap(),
        "outbox",
        "send",
        "--db",
        &db,
    ])
    .await;
    assert_exit(&out, 0);
    let received = smtp.received(&python);
    assert_eq!(received.len(), 1);
    assert_eq!(header(&received[0].1, "x-wachter-ticket"), ticket);
    assert_eq!(
        query_ints(&db, "SELECT attempts FROM messages WHERE state = 'sent'"),
        Some(vec![2])
    );
}

/// No relay listening: the message stays queued with the error, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_leaves_messages_queued_with_the_error() {
    let db = scanned_store(
        "notify-down",
        81,
        &[("127.81.0.1", Behaviour::NsVulnerable)],
        &orgs(81),
    )
    .await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.81.255.26:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let down = config("notify-down", address, 81, "");
    let down = down.to_str().unwrap();
    wachter_json(&[
        "--config",
        down,
        "campaign",
        "new",
        "--cve",
        "CVE-2019-19781",
        "--db",
        &db,
        "--json",
    ])
    .await;
    let out = wachter_async(&["--config", down, "outbox", "send", "--db", &db]).await;
    assert_exit(&out, 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("queued for a retry 1"), "{stdout}");
    assert!(stdout.contains("stopped: the relay failed"), "{stdout}");
    let outbox = wachter_json(&["outbox", "list", "--db", &db, "--json"]).await;
    assert_eq!(outbox[0]["state"], "queued");
    assert_eq!(outbox[0]["attempts"], 1);
    assert!(!outbox[0]["last_error"].as_str().unwrap().is_empty());
    // Not due yet: a second run sends nothing and changes nothing, and still says that a
    // message waits.
    let out = wachter_async(&["--config", down, "outbox", "send", "--db", &db]).await;
    assert_exit(&out, 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("still in the outbox: 1 queued, 0 held"),
        "{stdout}"
    );
    let outbox = wachter_json(&["outbox", "list", "--db", &db, "--json"]).await;
    assert_eq!(outbox[0]["attempts"], 1);
}

/// Two organisations with one IT provider as their contact: both messages are delivered,
/// the second no sooner than `recipient_gap_secs` after the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_one_message_per_gap() {
    let Some(python) = wachter_notify::testing::interop_python() else {
        return;
    };
    let orgs = temp(
        "notify-gap-orgs.toml",
        r#"
[[organisation]]
name = "Huisartsenpost Noord"
networks = ["127.82.0.0/24"]
[[organisation.contacts]]
email = "Servicedesk@IT-Provider.test"

[[organisation]]
name = "Huisartsenpost Zuid"
networks = ["127.82.1.0/24"]
[[organisation.contacts]]
email = "servicedesk@it-provider.test"
"#,
    );
    let db = scanned_store(
        "notify-gap",
        82,
        &[
            ("127.82.0.1", Behaviour::NsVulnerable),
            ("127.82.1.1", Behaviour::NsMitigated),
        ],
        &orgs,
    )
    .await;
    let smtp = SmtpServer::start(&python, "gap");
    let config = config("notify-gap", smtp.addr(), 82, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("recipient_gap_secs = 0", "recipient_gap_secs = 2");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let queued = wachter_json(&[
        "--config",
        config,
        "campaign",
        "new",
        "--cve",
        "CVE-2019-19781",
        "--db",
        &db,
        "--json",
    ])
    .await;
    assert_eq!(
        queued["messages"].as_array().unwrap().len(),
        2,
        "{queued:#}"
    );
    let out = wachter_async(&["--config", config, "outbox", "send", "--db", &db]).await;
    assert_exit(&out, 0);
    assert_eq!(smtp.received(&python).len(), 2);
    let outbox = wachter_json(&["outbox", "list", "--db", &db, "--json"]).await;
    let sent_at: Vec<time::OffsetDateTime> = outbox
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            time::OffsetDateTime::parse(
                m["sent_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .collect();
    assert!(
        sent_at[1] - sent_at[0] >= time::Duration::seconds(2),
        "{sent_at:?}"
    );
}
