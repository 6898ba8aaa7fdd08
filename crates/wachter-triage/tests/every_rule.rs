//! Every built-in rule against its own fixture: the rule's `example` (or, for checks decided
//! by metadata, a file derived from the check) laid out as an appliance tree must make it
//! fire, and its `near_miss` (and the benign twin of a metadata fixture: the right mode, the
//! right owner, an allowed setuid file, a fresh file) must not. Then one clean appliance full
//! of legitimate look-alikes, run through all packs, must stay clean.
//!
//! Runs as root in CI (chown, setuid); the fixtures live under the system temp directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use wachter_triage::engine::{Hit, triage};
use wachter_triage::input::Limits;
use wachter_triage::logs::LogKind;
use wachter_triage::rules::{Check, Rule, RulePack, Severity, builtin};

/// Rules that cannot fire through the engine on any fixture, with the reason. Each must
/// still carry an example, and must NOT fire on it: when the engine learns to, this test
/// fails and the entry goes.
const CANNOT_FIRE: &[(&str, &str)] = &[];

/// A fixture tree under the temp directory, removed when dropped.
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(tag: &str) -> Tree {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let safe: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let root = std::env::temp_dir().join(format!(
            "wachter-every-rule-{}-{n}-{safe}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        // `var` keeps the walk from taking a lone top folder (`/vpn`) for a wrapper.
        fs::create_dir_all(root.join("var")).expect("fixture root");
        Tree { root }
    }

    fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Writes `data` at the appliance path `path`.
    fn put(&self, path: &str, data: &[u8]) -> PathBuf {
        let host = self.host(path);
        fs::create_dir_all(host.parent().expect("parent")).expect("mkdir");
        fs::write(&host, data).expect("write");
        host
    }

    fn put_mode(&self, path: &str, data: &[u8], mode: u32) -> PathBuf {
        let host = self.put(path, data);
        fs::set_permissions(&host, fs::Permissions::from_mode(mode)).expect("chmod");
        host
    }

    fn hits(&self, packs: &[RulePack]) -> Vec<Hit> {
        // The fixtures are written now, so every ctime is recent: trust them.
        let limits = Limits {
            extraction_window_secs: 0,
            ..Limits::default()
        };
        triage(&self.root, packs, &limits).expect("triage").hits
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The file name `logs::kind_of` reads as `kind`.
fn log_file(kind: LogKind) -> &'static str {
    match kind {
        LogKind::HttpAccess => "httpaccess.log",
        LogKind::HttpError => "httperror.log",
        LogKind::Bash => "bash.log",
        LogKind::Notice => "notice.log",
        LogKind::Sh => "sh.log",
        LogKind::Cron => "cron",
        LogKind::NsLog => "ns.log",
        LogKind::Messages => "messages",
    }
}

/// A directory entry of a rule as a concrete directory (`/` becomes `/var/tmp`, a `*`
/// component `x`).
fn concrete(dir: &str) -> String {
    if dir == "/" {
        return "/var/tmp".into();
    }
    dir.split('/')
        .map(|c| if c == "*" { "x" } else { c })
        .collect::<Vec<_>>()
        .join("/")
}

/// Does the kind of `check` need an `example` to build a fixture?
fn needs_example(check: &Check) -> bool {
    match check {
        Check::Content { .. } | Check::Log { .. } | Check::DirListing { .. } => true,
        Check::ModeNot { .. } => true,
        Check::Cron { command, .. } => command.is_some(),
        Check::PathExists { .. }
        | Check::Mode { .. }
        | Check::Owner { .. }
        | Check::Setuid { .. }
        | Check::Timestomp { .. } => false,
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "the example is not UTF-8 where a name is needed".into())
}

fn with_newline(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

/// Which fixture to build.
#[derive(Clone, Copy, PartialEq)]
enum Variant<'a> {
    /// The example: the rule must fire.
    Example,
    /// The near-miss text in the example's place: it must not.
    NearMiss(&'a str),
    /// The benign twin of a metadata fixture: it must not fire.
    Twin,
}

/// Lays out the fixture of `rule` in `tree`; returns the appliance path a hit must name,
/// `Ok(None)` when the variant does not apply to the rule.
fn build(rule: &Rule, tree: &Tree, variant: Variant) -> Result<Option<String>, String> {
    let example = rule.example.as_deref();
    let text: Option<&[u8]> = match variant {
        Variant::Example | Variant::Twin => example,
        Variant::NearMiss(text) => Some(text.as_bytes()),
    };
    let need = |what: &str| -> Result<&[u8], String> {
        text.ok_or_else(|| format!("a {what} rule needs an `example`"))
    };
    let placed = |default: String| rule.example_path.clone().unwrap_or(default);
    let twin = variant == Variant::Twin;
    let path = match &rule.check {
        Check::PathExists { paths } => {
            if variant != Variant::Example {
                return Ok(None);
            }
            tree.put(&paths[0], b"x\n");
            paths[0].clone()
        }
        Check::DirListing { dirs, .. } => {
            if twin {
                return Ok(None);
            }
            let name = utf8(need("dir_listing")?)?;
            let path = match (&rule.example_path, variant) {
                (Some(p), Variant::Example) => p.clone(),
                (Some(p), _) => format!("{}/{name}", p.rsplit_once('/').expect("abs").0),
                (None, _) => format!("{}/{name}", concrete(&dirs[0])),
            };
            tree.put(&path, b"x\n");
            path
        }
        Check::Content {
            under, skip_names, ..
        } => {
            if twin {
                return Ok(None);
            }
            let data = need("content")?;
            let path = placed({
                let name = ["x.txt", "x.php", "x.html", "x.js", "x.json", "x.xml"]
                    .into_iter()
                    .find(|n| {
                        skip_names
                            .as_ref()
                            .is_none_or(|s| s.find(n.as_bytes()).is_none())
                    })
                    .ok_or("every default name is skipped; give `example_path`")?;
                format!("{}/{name}", concrete(&under[0]))
            });
            tree.put(&path, data);
            path
        }
        Check::Mode { under, mode, .. } => {
            let name = match text {
                Some(t) => utf8(t)?,
                None => "x.xml",
            };
            let path = match variant {
                Variant::NearMiss(_) => format!("{}/{name}", concrete(&under[0])),
                _ => placed(format!("{}/{name}", concrete(&under[0]))),
            };
            let mode = if twin {
                if *mode == 0o600 { 0o640 } else { 0o600 }
            } else {
                *mode
            };
            tree.put_mode(&path, b"<xml/>\n", mode);
            path
        }
        Check::ModeNot { under, mode, .. } => {
            let name = utf8(need("mode_not")?)?;
            let path = match variant {
                Variant::NearMiss(_) => format!("{}/{name}", concrete(&under[0])),
                _ => placed(format!("{}/{name}", concrete(&under[0]))),
            };
            let wrong = if *mode == 0o644 { 0o600 } else { 0o644 };
            tree.put_mode(
                &path,
                b"<?php echo 1; ?>\n",
                if twin { *mode } else { wrong },
            );
            path
        }
        Check::Owner {
            under, uid, gid, ..
        } => {
            let name = match text {
                Some(t) => utf8(t)?,
                None => "x.sh",
            };
            let path = match variant {
                Variant::NearMiss(_) => format!("{}/{name}", concrete(&under[0])),
                _ => placed(format!("{}/{name}", concrete(&under[0]))),
            };
            let host = tree.put(&path, b"#!/bin/sh\necho hi\n");
            let (u, g) = if twin {
                (0, 0)
            } else {
                (*uid, gid.unwrap_or(0))
            };
            chown(&host, Some(u), Some(g)).map_err(|e| format!("chown: {e}"))?;
            path
        }
        Check::Setuid { allow } => {
            let path = match variant {
                Variant::Example => "/usr/local/bin/evil".to_string(),
                Variant::Twin => allow[0].clone(),
                Variant::NearMiss(_) => return Ok(None),
            };
            // chown clears the setuid bit: owner first, then the mode.
            let host = tree.put(&path, b"\x7fELF\0\0\0\0");
            chown(&host, Some(0), Some(0)).map_err(|e| format!("chown: {e}"))?;
            fs::set_permissions(&host, fs::Permissions::from_mode(0o4755))
                .map_err(|e| format!("chmod: {e}"))?;
            path
        }
        Check::Log { logs, .. } => {
            if twin {
                return Ok(None);
            }
            let data = need("log")?;
            let path = placed(format!("/var/log/{}", log_file(logs[0])));
            tree.put(&path, &with_newline(data));
            path
        }
        Check::Cron { user, command } => match command {
            None => {
                if let Variant::NearMiss(_) = variant {
                    return Ok(None);
                }
                let user = user
                    .as_deref()
                    .expect("a cron rule has a user or a command");
                let owner = if twin { "operator" } else { user };
                let path = format!("/var/cron/tabs/{owner}");
                let line = example.unwrap_or(b"*\t*\t*\t*\t*\t/var/nstmp/.nscache/httpd");
                tree.put(&path, &with_newline(line));
                path
            }
            Some(_) => {
                if twin {
                    return Ok(None);
                }
                let data = need("cron command")?;
                match &rule.example_path {
                    Some(path) => {
                        tree.put(path, &with_newline(data));
                        path.clone()
                    }
                    None => {
                        let who = user.as_deref().unwrap_or("root");
                        let mut line = format!("*\t*\t*\t*\t*\t{who}\t").into_bytes();
                        line.extend_from_slice(data);
                        tree.put("/etc/crontab", &with_newline(&line));
                        "/etc/crontab".to_string()
                    }
                }
            }
        },
        Check::Timestomp { under, .. } => {
            let name = match text {
                Some(t) => utf8(t)?,
                None => "x.php",
            };
            let path = match variant {
                Variant::NearMiss(_) => format!("{}/{name}", concrete(&under[0])),
                _ => placed(format!("{}/{name}", concrete(&under[0]))),
            };
            let host = tree.put(&path, b"<?php echo 1; ?>\n");
            if !twin {
                // mtime 60 days back; the change sets ctime to now.
                let old = SystemTime::now() - Duration::from_secs(60 * 86_400);
                fs::File::options()
                    .write(true)
                    .open(&host)
                    .and_then(|f| f.set_modified(old))
                    .map_err(|e| format!("set mtime: {e}"))?;
            }
            path
        }
    };
    Ok(Some(path))
}

fn only(pack: &RulePack, rule: &Rule) -> Vec<RulePack> {
    vec![RulePack {
        name: pack.name.clone(),
        source: pack.source.clone(),
        rules: vec![rule.clone()],
    }]
}

fn shown(hits: &[Hit], id: &str) -> String {
    let mine: Vec<String> = hits
        .iter()
        .filter(|h| h.rule == id)
        .map(|h| format!("{}:{} {:?}", h.path, h.line.unwrap_or(0), h.excerpt))
        .collect();
    if mine.is_empty() {
        "no hit".into()
    } else {
        mine.join("; ")
    }
}

#[test]
fn every_rule_fires_on_its_example_and_not_on_its_near_miss() {
    if !running_as_root() {
        // Owner and setuid fixtures need chown; CI runs as root, so it always runs there.
        eprintln!("skipped: needs root (chown); `bash .ci/run` runs as root");
        return;
    }
    let cannot: BTreeMap<&str, &str> = CANNOT_FIRE.iter().copied().collect();
    let mut failures = Vec::new();
    let (mut fired, mut misses) = (0, 0);
    for pack in builtin() {
        for rule in &pack.rules {
            let packs = only(&pack, rule);
            let id = rule.id.as_str();
            // The example.
            let tree = Tree::new(id);
            match build(rule, &tree, Variant::Example) {
                Err(e) => failures.push(format!("{id}: no fixture: {e}")),
                Ok(None) => unreachable!("every kind has an example fixture"),
                Ok(Some(path)) => {
                    let hits = tree.hits(&packs);
                    let hit = hits.iter().any(|h| h.rule == id && h.path == path);
                    match (hit, cannot.get(id)) {
                        (true, None) => fired += 1,
                        (false, Some(_)) => {}
                        (true, Some(_)) => failures.push(format!(
                            "{id}: listed in CANNOT_FIRE but fires on {path}: remove it from the list"
                        )),
                        (false, None) => failures.push(format!(
                            "{id}: did not fire on its example at {path} ({})",
                            shown(&hits, id)
                        )),
                    }
                }
            }
            drop(tree);
            // The near-miss, then the benign twin of a metadata fixture.
            let mut variants = vec![Variant::Twin];
            if let Some(text) = rule.near_miss.as_deref() {
                variants.insert(0, Variant::NearMiss(text));
            }
            for variant in variants {
                let label = match variant {
                    Variant::NearMiss(_) => "near_miss",
                    _ => "benign twin",
                };
                let tree = Tree::new(&format!("{id}-{label}"));
                match build(rule, &tree, variant) {
                    Err(e) => failures.push(format!("{id}: no {label} fixture: {e}")),
                    Ok(None) => {}
                    Ok(Some(path)) => {
                        let hits = tree.hits(&packs);
                        if hits.iter().any(|h| h.rule == id) {
                            failures.push(format!(
                                "{id}: fired on its {label} at {path} ({})",
                                shown(&hits, id)
                            ));
                        } else {
                            misses += 1;
                        }
                    }
                }
            }
        }
    }
    println!("{fired} rules fired on their examples; {misses} near-misses stayed silent");
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_has_a_fixture() {
    let ids: Vec<String> = builtin()
        .into_iter()
        .flat_map(|p| p.rules)
        .map(|r| r.id)
        .collect();
    for (id, _) in CANNOT_FIRE {
        assert!(
            ids.iter().any(|i| i == id),
            "CANNOT_FIRE names no rule {id}"
        );
    }
    let missing: Vec<String> = builtin()
        .into_iter()
        .flat_map(|p| p.rules)
        .filter(|r| needs_example(&r.check) && r.example.is_none())
        .map(|r| format!("{} ({})", r.id, r.check.kind()))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without an `example` (their kind needs one to build a fixture):\n{}",
        missing.join("\n")
    );
}

/// The default `/etc/crontab` of a clean box (netscaler.md §5.1).
const CLEAN_CRONTAB: &str = "SHELL=/bin/sh
PATH=/netscaler:/etc:/bin:/sbin:/usr/bin:/usr/sbin
HOME=/var/log
#minute hour    mday    month   wday    who     command
0       *       *       *       *       root    newsyslog
0       0       *       *       *       root    purge_tickets.sh
1,31    0-5     *       *       *       root    adjkerntz -a
*       *       *       *       *       root    nsfsyncd -p
49      0-23    *       *       *       root    nslog.sh dozip
";

/// The legitimate Perl scripts of `/netscaler/portal/scripts/` (13.0-47.22, §5.1).
const PORTAL_SCRIPTS: &[&str] = &[
    "tips.pl",
    "logout.pl",
    "navthemes.pl",
    "newbm.pl",
    "picktheme.pl",
    "rmbm.pl",
    "subscription.pl",
    "themes.pl",
    "PersonalBookmark.pl",
];

const CLEAN_ACCESS: &str = r#"203.0.113.7 - - [20/Jan/2020:08:59:58 +0000] "GET /vpn/index.html HTTP/1.1" 200 2301 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:72.0) Gecko/20100101 Firefox/72.0" "Time: 912 microsecs"
203.0.113.7 - - [20/Jan/2020:09:00:01 +0000] "GET /vpn/js/rdx/core/lang/rdx_en.json.gz HTTP/1.1" 200 1880 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:72.0) Gecko/20100101 Firefox/72.0" "Time: 512 microsecs"
203.0.113.7 - - [20/Jan/2020:09:00:02 +0000] "POST /cgi/login HTTP/1.1" 302 0 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:72.0) Gecko/20100101 Firefox/72.0" "Time: 2210 microsecs"
203.0.113.7 - - [20/Jan/2020:09:00:03 +0000] "GET /vpns/portal/tips.html HTTP/1.1" 200 5120 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:72.0) Gecko/20100101 Firefox/72.0" "Time: 1001 microsecs"
203.0.113.7 - - [20/Jan/2020:09:00:04 +0000] "GET /logon/LogonPoint/index.html HTTP/1.1" 200 4033 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:72.0) Gecko/20100101 Firefox/72.0" "Time: 700 microsecs"
203.0.113.7 - - [20/Jan/2020:17:30:00 +0000] "GET /vpns/portal/scripts/logout.pl HTTP/1.1" 200 135 "-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:72.0) Gecko/20100101 Firefox/72.0" "Time: 6809 microsecs"
"#;

const CLEAN_BASH: &str = r#"Jan 20 09:12:01 <local7.notice> ns bash[2201]: nsroot on /dev/pts/0 shell_command="show ns ip"
Jan 20 09:12:09 <local7.notice> ns bash[2201]: nsroot on /dev/pts/0 shell_command="ls -l /var/log"
Jan 20 09:12:15 <local7.notice> ns bash[2201]: nsroot on /dev/pts/0 shell_command="tail -n 50 /var/log/ns.log"
Jan 20 09:12:30 <local7.notice> ns bash[2201]: nsroot on /dev/pts/0 shell_command="ping -c 10 10.0.0.1"
Jan 20 09:13:02 <local7.notice> ns bash[2201]: nsroot on /dev/pts/0 shell_command="ls -l /var/tmp/shared"
Jan 20 09:13:40 <local7.notice> ns bash[2201]: nsroot on /dev/pts/0 shell_command="nsconmsg -d current -g ssl_tot"
"#;

const CLEAN_CRON_LOG: &str =
    "Jan 20 09:00:00 <cron.info> gw01 /usr/sbin/cron[14000]: (root) CMD (newsyslog)
Jan 20 09:00:00 <cron.info> gw01 /usr/sbin/cron[14001]: (root) CMD (   nsfsyncd -p)
Jan 20 09:49:00 <cron.info> gw01 /usr/sbin/cron[14002]: (root) CMD (nslog.sh dozip)
";

const CLEAN_NS_CONF: &str = r#"#NS13.0 Build 47.22
set ns config -IPAddress 10.0.0.1 -netmask 255.255.255.0
set ns hostName gw01
add vpn vserver vs_gw SSL 10.0.0.10 443
bind vpn vserver vs_gw -portaltheme Default
set vpn parameter -clientlessVpnMode OFF -forceCleanup none
add responder action ra_redirect redirect "\"/vpn/index.html\"" -responseStatusCode 302
add responder policy rp_redirect "HTTP.REQ.URL.EQ(\"/\")" ra_redirect
add rewrite action act_xfo insert_http_header X-Frame-Options "\"DENY\""
add lb vserver lb_web HTTP 10.0.0.20 80 -persistenceType NONE
"#;

const CLEAN_HTTPD_CONF: &str = "Listen 127.0.0.1:80
AddType application/x-httpd-php .php
<Directory \"/var/netscaler/logon\">
    Require all granted
    php_flag engine on
</Directory>
<Directory \"/var/tmp\">
    Require all denied
    php_flag engine off
</Directory>
";

const PERL_BODY: &str = "#!/usr/bin/perl
# Portal script (benign fixture body).
use strict;
use NetScaler::Portal;
my $q = NetScaler::Portal->new();
print $q->header();
print $q->render('page.tmpl');
";

const TEMPLATE_BODY: &str = "[% PROCESS 'header.tmpl' %]
<div class=\"tips\">[% loc('Welcome') %]</div>
[% INCLUDE 'footer.tmpl' %]
";

const FIRMWARE_PHP: &str = "<?php
require_once('common.php');
$lang = isset($_GET['lang']) ? basename($_GET['lang']) : 'en';
echo json_encode(array('lang' => $lang));
?>
";

/// One appliance full of legitimate look-alikes; no rule of any pack may say more than
/// "suspicious".
#[test]
fn clean_appliance_stays_clean() {
    if !running_as_root() {
        eprintln!("skipped: needs root (chown); `bash .ci/run` runs as root");
        return;
    }
    let tree = Tree::new("clean-appliance");
    // Bookmarks of the legitimate naming, written by the portal with mode 0644; their URLs
    // hold words the content rules look for.
    for user in ["dXNlckBleGFtcGxlLm9yZw==", "YWRtaW5AZXhhbXBsZS5vcmc="] {
        tree.put_mode(
            &format!("/var/vpn/bookmark/bm_prefix_{user}.xml"),
            br#"<user username="user@example.org"><bookmarks><bookmark UI_inuse="" descr="Wiki" title="Wiki: curl and wget at home" url="https://wiki.example.org/bash/curl-wget" /></bookmarks></user>
"#,
            0o644,
        );
    }
    for script in PORTAL_SCRIPTS {
        tree.put_mode(
            &format!("/netscaler/portal/scripts/{script}"),
            PERL_BODY.as_bytes(),
            0o444,
        );
    }
    for template in ["tips.tmpl", "navthemes.tmpl", "newbm.tmpl", "themes.tmpl"] {
        tree.put_mode(
            &format!("/netscaler/portal/templates/{template}"),
            TEMPLATE_BODY.as_bytes(),
            0o444,
        );
    }
    tree.put_mode(
        "/var/vpn/themes/Corp/css/theme.css",
        b"body { background: #fff; }\n",
        0o444,
    );
    for php in [
        "/var/netscaler/logon/LogonPoint/Resources/lang.php",
        "/var/netscaler/logon/themes/Default/lang.php",
        "/var/netscaler/gui/admin_ui/php/application/controllers/common/login.php",
    ] {
        tree.put_mode(php, FIRMWARE_PHP.as_bytes(), 0o444);
    }
    tree.put("/var/netscaler/logon/LogonPoint/index.html",
        b"<html><head><script type=\"text/javascript\" src=\"js/ctxs.core.min.js\"></script></head><body></body></html>\n");
    tree.put("/etc/crontab", CLEAN_CRONTAB.as_bytes());
    tree.put(
        "/var/cron/tabs/root",
        b"0\t3\t*\t*\t*\t/netscaler/nsbackup.sh\n",
    );
    tree.put("/var/log/httpaccess.log", CLEAN_ACCESS.as_bytes());
    tree.put(
        "/var/log/httperror.log",
        b"[Mon Jan 20 09:00:05 2020] [error] [client 203.0.113.7] File does not exist: /netscaler/ns_gui/vpn/favicon.ico\n",
    );
    tree.put("/var/log/bash.log", CLEAN_BASH.as_bytes());
    tree.put("/var/log/notice.log", CLEAN_BASH.as_bytes());
    tree.put("/var/log/cron", CLEAN_CRON_LOG.as_bytes());
    tree.put(
        "/var/log/ns.log",
        b"Jan 20 09:00:02 <local0.info> 10.0.0.1 01/20/2020:09:00:02 GMT gw01 0-PPE-0 : default SSLVPN LOGIN 1234 0 : Context user@example.org@203.0.113.7 - SessionId: 5 - User user@example.org - Client_ip 203.0.113.7 - Vserver 10.0.0.10:443\n",
    );
    tree.put("/nsconfig/ns.conf", CLEAN_NS_CONF.as_bytes());
    tree.put("/flash/nsconfig/ns.conf", CLEAN_NS_CONF.as_bytes());
    tree.put(
        "/flash/nsconfig/rc.netscaler",
        b"nscli -U :nsroot:nsroot \"set ns param -timezone GMT+01:00-CET-Europe/Amsterdam\"\n",
    );
    tree.put("/etc/httpd.conf", CLEAN_HTTPD_CONF.as_bytes());
    tree.put(
        "/etc/newsyslog.conf",
        b"/var/log/httpaccess.log 600 5 100 * ZB /var/run/httpd.pid 30\n/var/log/httperror.log 600 5 100 * ZB /var/run/httpd.pid 30\n/var/log/bash.log 644 25 100 * Z\n",
    );
    // Setuid root files on every pack's allow-list.
    for path in [
        "/usr/bin/passwd",
        "/usr/bin/su",
        "/usr/bin/login",
        "/sbin/shutdown",
        "/netscaler/ping",
    ] {
        let host = tree.put(path, b"\x7fELF\0\0\0\0");
        chown(&host, Some(0), Some(0)).expect("chown");
        fs::set_permissions(&host, fs::Permissions::from_mode(0o4555)).expect("chmod");
    }

    let report = triage(&tree.root, &builtin(), &Limits::default()).expect("triage");
    for hit in report
        .hits
        .iter()
        .filter(|h| h.severity == Severity::Suspicious)
    {
        println!(
            "suspicious (allowed): {} at {}: {}",
            hit.rule, hit.path, hit.excerpt
        );
    }
    let bad: Vec<String> = report
        .hits
        .iter()
        .filter(|h| h.severity != Severity::Suspicious)
        .map(|h| {
            format!(
                "{:?} {} at {}:{}: {}",
                h.severity,
                h.rule,
                h.path,
                h.line.unwrap_or(0),
                h.excerpt
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "legitimate content raised {} hit(s):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Root may chown; `id -u` says whether we are (the tests use no libc).
fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
