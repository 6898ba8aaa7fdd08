//! Every entry of the evidence against every rule that applies to it.
//!
//! One pass over the evidence, in its own order (an archive is read once, front to back):
//! rules on the entry itself (exists, name, mode, owner, setuid, times) are decided from its
//! metadata; files that a content, log or cron rule applies to are read once, line by line
//! (gzip-aware, capped), and every such rule sees every record. Files no rule applies to are
//! never opened, so an image with a large firmware tree costs its directory walk only.

use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read};
use std::path::Path;

use crate::input::{EntryKind, EntryMeta, EvidenceKind, InputProblem, InputSummary, Limits};
use crate::logs::{self, Coverage, LogKind, Record};
use crate::rules::{Check, Rule, RulePack, Severity};
use crate::verdict::{Verdict, verdict};

/// One rule that fired.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Hit {
    pub rule: String,
    pub severity: Severity,
    pub cves: Vec<String>,
    pub source: String,
    pub description: String,
    /// How the rule differs from its buggy original, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes: Option<String>,
    /// The appliance path of the file (or directory) that matched.
    pub path: String,
    /// 1-based line (record) number, for content and log rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The matching line (or what was found), one line, escaped and cut.
    pub excerpt: String,
}

/// What triage found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub evidence: String,
    pub kind: EvidenceKind,
    pub verdict: Verdict,
    /// Why the verdict is what it is, in one sentence.
    pub reason: String,
    pub hits: Vec<Hit>,
    /// Hits not listed because a rule fired more than [`MAX_HITS_PER_FILE`] times in one
    /// file: rule id → how many more.
    pub more_hits: BTreeMap<String, u64>,
    /// How far back each log reaches.
    pub coverage: Vec<Coverage>,
    /// What was wrong with the evidence itself.
    pub problems: Vec<InputProblem>,
    /// Problems not listed, per kind, beyond [`MAX_HITS_PER_RULE`] of one kind.
    pub more_problems: BTreeMap<crate::input::ProblemKind, u64>,
    pub summary: InputSummary,
    /// Rules run (all packs).
    pub rules: usize,
    /// Appliance areas the evidence holds (`/var/log`, `/netscaler/portal`, …).
    pub areas: Vec<String>,
}

/// Hits listed per rule and file; the rest are counted.
pub const MAX_HITS_PER_FILE: u64 = 20;

/// Hits listed per rule over the whole evidence, and problems per kind: a bundle of a
/// million planted files must not make a report of a million lines.
pub const MAX_HITS_PER_RULE: u64 = 200;

/// Longest excerpt shown, in characters.
const MAX_EXCERPT: usize = 300;

/// Bytes looked at to tell text from binary (a NUL means binary, as `grep -I`).
const SNIFF: usize = 8192;

/// The appliance areas whose presence makes a "no sign of compromise" meaningful.
pub const AREAS: &[&str] = &[
    "/var/log",
    "/netscaler/portal",
    "/var/tmp/netscaler",
    "/var/vpn",
    "/var/netscaler",
    "/nsconfig",
    "/flash/nsconfig",
    "/var/cron",
    "/etc",
];

/// Runs `packs` over the evidence at `path`.
pub fn triage(
    path: &Path,
    packs: &[RulePack],
    limits: &Limits,
) -> Result<Report, crate::input::InputError> {
    let kind = crate::input::evidence_kind(path)?;
    let rules: Vec<&Rule> = packs.iter().flat_map(|p| p.rules.iter()).collect();
    let mut engine = Engine::new(&rules, limits);
    let summary = crate::input::walk(path, limits, &mut engine)?;
    let Engine {
        hits,
        more_hits,
        coverage,
        problems,
        more_problems,
        areas,
        ..
    } = engine;
    let mut hits = hits;
    hits.sort_by(|a, b| {
        (a.severity, &a.path, a.line, &a.rule).cmp(&(b.severity, &b.path, b.line, &b.rule))
    });
    let mut areas: Vec<String> = areas.into_iter().collect();
    areas.sort();
    let (verdict, reason) = verdict(&hits, &coverage, &areas);
    Ok(Report {
        evidence: path.display().to_string(),
        kind,
        verdict,
        reason,
        hits,
        more_hits,
        coverage,
        problems,
        more_problems,
        summary,
        rules: rules.len(),
        areas,
    })
}

/// The patterns of the rules that read one kind of file, as one `RegexSet`.
#[derive(Clone)]
struct PatternSet {
    set: Option<std::sync::Arc<regex::bytes::RegexSet>>,
    /// Set index → the rule's slot in the file's rule list.
    slots: Vec<usize>,
    /// Slots checked on every record (cron rules; all of them if the set could not be built).
    always: Vec<usize>,
}

impl PatternSet {
    fn new(rules: &[(usize, &Rule)]) -> Self {
        let mut exprs = Vec::new();
        let mut slots = Vec::new();
        let mut always = Vec::new();
        for (slot, (_, rule)) in rules.iter().enumerate() {
            match &rule.check {
                Check::Content { pattern, .. } | Check::Log { pattern, .. } => {
                    let flags = if pattern.case_insensitive { "i" } else { "" };
                    exprs.push(format!("(?{flags}:{})", pattern.regex.as_str()));
                    slots.push(slot);
                }
                _ => always.push(slot),
            }
        }
        let set = regex::bytes::RegexSetBuilder::new(&exprs)
            .unicode(false)
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build();
        match set {
            Ok(set) => PatternSet {
                set: Some(std::sync::Arc::new(set)),
                slots,
                always,
            },
            Err(e) => {
                tracing::warn!(error = %e, "rules checked one by one");
                PatternSet {
                    set: None,
                    slots: Vec::new(),
                    always: (0..rules.len()).collect(),
                }
            }
        }
    }

    /// The slots of the rules that may match `bytes` (set members that match, and those
    /// always checked).
    fn candidates(&self, bytes: &[u8], out: &mut Vec<usize>) {
        if let Some(set) = &self.set
            && set.is_match(bytes)
        {
            out.extend(set.matches(bytes).into_iter().map(|k| self.slots[k]));
        }
        out.extend_from_slice(&self.always);
    }
}

/// The visitor that applies the rules.
struct Engine<'r> {
    rules: Vec<&'r Rule>,
    limits: Limits,
    /// `PathExists` rules by path.
    exists: HashMap<&'r str, Vec<usize>>,
    /// Rules decided by an entry's metadata, and rules that read a file's content: each
    /// entry meets only its own kind (the rules are sorted once, not per entry).
    by_metadata: Vec<usize>,
    by_content: Vec<usize>,
    hits: Vec<Hit>,
    more_hits: BTreeMap<String, u64>,
    coverage: Vec<Coverage>,
    problems: Vec<InputProblem>,
    areas: std::collections::BTreeSet<String>,
    /// Pattern sets by the rule list they serve.
    sets: HashMap<Vec<usize>, PatternSet>,
    /// Hits listed per rule.
    listed: HashMap<usize, u64>,
    /// Problems listed, and beyond the cap, per kind.
    problems_listed: HashMap<crate::input::ProblemKind, u64>,
    more_problems: BTreeMap<crate::input::ProblemKind, u64>,
    /// Now, for telling an extraction's ctime from a timestomp.
    now: i64,
}

impl<'r> Engine<'r> {
    fn note_problem(&mut self, problem: InputProblem) {
        let listed = self.problems_listed.entry(problem.kind).or_default();
        *listed += 1;
        if *listed > MAX_HITS_PER_RULE {
            *self.more_problems.entry(problem.kind).or_default() += 1;
        } else {
            self.problems.push(problem);
        }
    }

    fn new(rules: &[&'r Rule], limits: &Limits) -> Self {
        let mut exists: HashMap<&'r str, Vec<usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            if let Check::PathExists { paths } = &rule.check {
                for p in paths {
                    exists.entry(p.trim_end_matches('/')).or_default().push(i);
                }
            }
        }
        let (by_content, by_metadata): (Vec<usize>, Vec<usize>) =
            (0..rules.len()).partition(|&i| {
                matches!(
                    rules[i].check,
                    Check::Content { .. } | Check::Log { .. } | Check::Cron { .. }
                )
            });
        // A user's own crontab existing is a metadata decision too.
        let by_metadata = by_metadata
            .into_iter()
            .chain(by_content.iter().copied().filter(|&i| {
                matches!(
                    rules[i].check,
                    Check::Cron {
                        user: Some(_),
                        command: None
                    }
                )
            }))
            .collect();
        Engine {
            rules: rules.to_vec(),
            limits: limits.clone(),
            exists,
            by_metadata,
            by_content,
            hits: Vec::new(),
            more_hits: BTreeMap::new(),
            coverage: Vec::new(),
            problems: Vec::new(),
            areas: Default::default(),
            sets: HashMap::new(),
            listed: HashMap::new(),
            problems_listed: HashMap::new(),
            more_problems: BTreeMap::new(),
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }

    fn hit(&mut self, rule: usize, path: &str, line: Option<u64>, excerpt: &str) {
        let listed = self.listed.entry(rule).or_default();
        *listed += 1;
        if *listed > MAX_HITS_PER_RULE {
            *self
                .more_hits
                .entry(self.rules[rule].id.clone())
                .or_default() += 1;
            return;
        }
        let rule = self.rules[rule];
        self.hits.push(Hit {
            rule: rule.id.clone(),
            severity: rule.severity,
            cves: rule.cves.clone(),
            source: rule.source.clone(),
            description: rule.description.clone(),
            fixes: rule.fixes.clone(),
            path: path.to_string(),
            line,
            excerpt: one_line(excerpt),
        });
    }

    /// Rules decided by the entry's metadata alone.
    fn metadata_rules(&mut self, meta: &EntryMeta) {
        let path = meta.path.as_str();
        let (dir, name) = split(path);
        // A hard link in an archive is the file itself under a second name.
        let is_file = matches!(meta.kind, EntryKind::File | EntryKind::Hardlink(_));
        if let Some(rules) = self.exists.get(path).cloned() {
            for rule in rules {
                self.hit(rule, path, None, &format!("{} exists", describe(meta)));
            }
        }
        for slot in 0..self.by_metadata.len() {
            let i = self.by_metadata[slot];
            let mode = meta.mode & 0o7777;
            let found: Option<String> = match &self.rules[i].check {
                Check::DirListing {
                    dirs,
                    name: pattern,
                } if dirs.iter().any(|d| dir_is(dir, d))
                    && pattern.find(name.as_bytes()).is_some() =>
                {
                    Some(format!("{} in the listing of {dir}", describe(meta)))
                }
                Check::Mode {
                    under,
                    mode: wanted,
                    except,
                } if is_file
                    && mode == *wanted
                    && is_under(path, under)
                    && except
                        .as_ref()
                        .is_none_or(|e| e.find(name.as_bytes()).is_none()) =>
                {
                    Some(format!("mode {mode:04o}"))
                }
                Check::ModeNot {
                    under,
                    name: pattern,
                    mode: wanted,
                } if is_file
                    && meta.mode & 0o777 != *wanted
                    && is_under(path, under)
                    && pattern.find(name.as_bytes()).is_some() =>
                {
                    Some(format!("mode {mode:04o}, expected {wanted:04o}"))
                }
                Check::Owner {
                    under,
                    user,
                    uid,
                    gid,
                } if is_file && is_under(path, under) => {
                    let owner = match (&meta.user, meta.uid) {
                        (Some(name), _) if !name.is_empty() => name == user,
                        (_, Some(found)) => found == *uid,
                        _ => false,
                    };
                    (owner && gid.is_none_or(|g| meta.gid == Some(g))).then(|| {
                        format!(
                            "owned by {} (uid {:?}, gid {:?})",
                            meta.user.as_deref().unwrap_or(user),
                            meta.uid,
                            meta.gid
                        )
                    })
                }
                Check::Setuid { allow }
                    if is_file
                        && meta.mode & 0o4000 != 0
                        && meta.uid.is_none_or(|u| u == 0)
                        && !allow.iter().any(|a| a == path) =>
                {
                    Some(format!("setuid root, mode {mode:04o}"))
                }
                Check::Timestomp {
                    under,
                    max_gap_secs,
                } if is_file && is_under(path, under) => match (meta.ctime, meta.mtime) {
                    // A recent ctime is the extraction or copy of the evidence, not a
                    // change on the appliance (`Limits::extraction_window_secs`).
                    (Some(c), Some(m))
                        if c - m > *max_gap_secs
                            && c <= self.now - self.limits.extraction_window_secs =>
                    {
                        Some(format!(
                            "changed {} days after its modification time",
                            (c - m) / 86_400
                        ))
                    }
                    _ => None,
                },
                // The crontab of that user exists.
                Check::Cron {
                    user: Some(user),
                    command: None,
                } if dir == "/var/cron/tabs" && name == user => {
                    Some(format!("crontab of {user} exists"))
                }
                _ => None,
            };
            if let Some(excerpt) = found {
                self.hit(i, path, None, &excerpt);
            }
        }
    }

    /// The content, log and cron rules that apply to the file at `path`.
    fn readers(&self, path: &str, meta: &EntryMeta, log: Option<LogKind>) -> Vec<usize> {
        let (dir, _) = split(path);
        let crontab = path == "/etc/crontab" || dir == "/var/cron/tabs";
        self.by_content
            .iter()
            .copied()
            .filter(|&i| match &self.rules[i].check {
                Check::Content {
                    under,
                    exclude,
                    max_size,
                    skip_names,
                    ..
                } => {
                    // Logs are read by log rules: a blocked attack quoted in a log is not
                    // a file dropped on the appliance (`grep -I` skipped rotated .gz too).
                    log.is_none()
                        && is_under(path, under)
                        && !is_under(path, exclude)
                        && max_size.is_none_or(|m| meta.size <= m)
                        && skip_names
                            .as_ref()
                            .is_none_or(|p| p.find(split(path).1.as_bytes()).is_none())
                }
                Check::Log { logs, .. } => log.is_some_and(|k| logs.contains(&k)),
                // A user's own crontab existing is decided from the metadata; its lines
                // matter only to rules with a command pattern.
                Check::Cron { command, .. } => {
                    crontab && (command.is_some() || path == "/etc/crontab")
                }
                _ => false,
            })
            .collect()
    }

    fn read(
        &mut self,
        meta: &EntryMeta,
        content: &mut dyn Read,
        applicable: &[usize],
        log: Option<LogKind>,
    ) {
        let path = meta.path.as_str();
        // Text or binary, as `grep -I` decides: a NUL in the first bytes.
        let mut head = Vec::with_capacity(SNIFF);
        if let Err(e) = content.take(SNIFF as u64).read_to_end(&mut head) {
            self.note_problem(InputProblem {
                path: path.to_string(),
                kind: crate::input::ProblemKind::Unreadable,
                detail: e.to_string(),
            });
            return;
        }
        let binary = log.is_none() && head.contains(&0);
        let mut stream = Cursor::new(head).chain(content);
        let rules: Vec<(usize, &Rule)> = applicable
            .iter()
            .map(|&i| (i, self.rules[i]))
            .filter(|(_, r)| {
                !(binary
                    && matches!(
                        r.check,
                        Check::Content {
                            text_only: true,
                            ..
                        }
                    ))
            })
            .collect();
        if rules.is_empty() && log.is_none() {
            return;
        }
        let crontab_user = crontab_user(path);
        let mut found: Vec<(usize, u64, String)> = Vec::new();
        let mut counts: HashMap<usize, u64> = HashMap::new();
        // Content rules report the first match in a file; log and cron rules every one (up
        // to the cap).
        let mut done: Vec<bool> = vec![false; rules.len()];
        // The content and log patterns as one set: one pass over a line tells which of them
        // match, instead of one pass per rule (a web access log meets ~100 rules).
        let key: Vec<usize> = rules.iter().map(|(i, _)| *i).collect();
        let set = self
            .sets
            .entry(key)
            .or_insert_with(|| PatternSet::new(&rules))
            .clone();
        let mut candidates: Vec<usize> = Vec::with_capacity(rules.len());
        let mut each = |record: &Record| {
            let bytes = record.bytes;
            candidates.clear();
            set.candidates(bytes, &mut candidates);
            for &slot in &candidates {
                let (i, rule) = &rules[slot];
                if done[slot] {
                    continue;
                }
                let matched = match &rule.check {
                    Check::Content { pattern, .. } => pattern.find(bytes).is_some(),
                    Check::Log {
                        pattern, exclude, ..
                    } => {
                        pattern.find(bytes).is_some()
                            && !exclude.iter().any(|x| x.find(bytes).is_some())
                    }
                    Check::Cron { user, command } => {
                        cron_entry(record.text, crontab_user.as_deref()).is_some_and(
                            |(who, cmd)| {
                                user.as_ref().is_none_or(|u| u == who)
                                    && command
                                        .as_ref()
                                        .is_none_or(|c| c.find(cmd.as_bytes()).is_some())
                            },
                        )
                    }
                    _ => false,
                };
                if !matched {
                    continue;
                }
                let count = counts.entry(*i).or_default();
                *count += 1;
                if *count <= MAX_HITS_PER_FILE {
                    found.push((*i, record.line, record.text.to_string()));
                }
                if matches!(rule.check, Check::Content { .. }) {
                    done[slot] = true;
                }
            }
        };
        let (coverage, problems) =
            logs::read_log(path, log, &mut stream, meta.mtime, &self.limits, &mut each);
        for (i, line, text) in found {
            self.hit(i, path, Some(line), &text);
        }
        for (i, count) in counts {
            if count > MAX_HITS_PER_FILE {
                *self.more_hits.entry(self.rules[i].id.clone()).or_default() +=
                    count - MAX_HITS_PER_FILE;
            }
        }
        if log.is_some() {
            self.coverage.push(coverage);
        }
        for problem in problems {
            self.note_problem(problem);
        }
    }
}

impl crate::input::Visitor for Engine<'_> {
    fn entry(&mut self, meta: &EntryMeta, content: Option<&mut dyn Read>) -> std::io::Result<()> {
        // An area counts when it holds files: an empty folder is no evidence.
        for area in AREAS {
            if matches!(meta.kind, EntryKind::File | EntryKind::Hardlink(_))
                && meta
                    .path
                    .strip_prefix(area)
                    .is_some_and(|rest| rest.starts_with('/'))
            {
                self.areas.insert((*area).to_string());
            }
        }
        self.metadata_rules(meta);
        let Some(content) = content else {
            return Ok(());
        };
        let log = logs::kind_of(&meta.path);
        let applicable = self.readers(&meta.path, meta, log);
        if applicable.is_empty() && log.is_none() {
            return Ok(());
        }
        self.read(meta, content, &applicable, log);
        Ok(())
    }

    fn problem(&mut self, problem: InputProblem) {
        self.note_problem(problem);
    }
}

/// `(directory, name)` of an appliance path.
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Is `dir` the rule directory `pattern` (a `*` component matches one level)?
fn dir_is(dir: &str, pattern: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    let mut a = dir.split('/');
    let mut b = pattern.split('/');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if y == "*" || x == y => continue,
            _ => return false,
        }
    }
}

/// Is `path` one of `dirs` or inside one (a `*` component matches one level; `/` is
/// everything)? Entries may name a single file (`/etc/httpd.conf`): a path is under an entry
/// when it equals it or continues it after a `/`, never by a plain prefix (`/etc/rc` does
/// not hold `/etc/rc.conf`).
fn is_under(path: &str, dirs: &[String]) -> bool {
    dirs.iter().any(|d| {
        let d = d.trim_end_matches('/');
        if d.is_empty() {
            return true;
        }
        let depth = d.split('/').count();
        let prefix: Vec<&str> = path.split('/').take(depth).collect();
        prefix.len() == depth && dir_is(&prefix.join("/"), d)
    })
}

/// The user whose crontab `path` is (`/var/cron/tabs/nobody`), `None` for `/etc/crontab`
/// (whose lines name the user).
fn crontab_user(path: &str) -> Option<String> {
    let (dir, name) = split(path);
    (dir == "/var/cron/tabs").then(|| name.to_string())
}

/// `(user, command)` of a crontab line; `None` for comments, variables and blank lines.
fn cron_entry<'a>(line: &'a str, file_user: Option<&'a str>) -> Option<(&'a str, &'a str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let first = fields.next()?;
    if first.contains('=') {
        return None;
    }
    // `@reboot cmd` has one time field; otherwise five.
    let time_fields = if first.starts_with('@') { 0 } else { 4 };
    let mut rest = line[first.len()..].trim_start();
    for _ in 0..time_fields {
        let field = rest.split_whitespace().next()?;
        rest = rest[field.len()..].trim_start();
    }
    match file_user {
        Some(user) => Some((user, rest)),
        None => {
            let who = rest.split_whitespace().next()?;
            Some((who, rest[who.len()..].trim_start()))
        }
    }
}

fn describe(meta: &EntryMeta) -> String {
    match &meta.kind {
        EntryKind::File => format!("file ({} bytes)", meta.size),
        EntryKind::Dir => "directory".into(),
        EntryKind::Symlink(t) => format!("symlink to {t}"),
        EntryKind::Hardlink(t) => format!("hard link to {t}"),
        EntryKind::Device => "device file".into(),
        EntryKind::Fifo => "FIFO".into(),
        EntryKind::Other => "special file".into(),
    }
}

/// One line, control characters escaped, cut to [`MAX_EXCERPT`] characters.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_EXCERPT {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push('⏎'),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_globs() {
        assert!(dir_is("/var/vpn/themes", "/var/vpn/themes/"));
        assert!(dir_is(
            "/var/netscaler/logon/LogonPoint/uiareas/linux",
            "/var/netscaler/logon/LogonPoint/uiareas/*/"
        ));
        assert!(!dir_is("/var/vpn/themes/x", "/var/vpn/themes"));
        assert!(is_under(
            "/netscaler/portal/templates/a.xml",
            &["/netscaler/portal/templates/".into()]
        ));
        assert!(is_under(
            "/var/vpn/themes/a/b.php",
            &["/var/vpn/themes".into()]
        ));
        assert!(is_under("/etc/httpd.conf", &["/etc/httpd.conf".into()]));
        assert!(!is_under("/etc/rc.conf", &["/etc/rc".into()]));
        assert!(!is_under("/var/vpnx/a", &["/var/vpn".into()]));
        assert!(is_under("/anything", &["/".into()]));
        assert_eq!(split("/var/log/cron"), ("/var/log", "cron"));
        assert_eq!(split("/crontab"), ("/", "crontab"));
    }

    #[test]
    fn crontab_lines() {
        assert_eq!(
            cron_entry("*\t*\t*\t*\t*\tnobody\t/var/nstmp/.nscache/httpd", None),
            Some(("nobody", "/var/nstmp/.nscache/httpd"))
        );
        assert_eq!(
            cron_entry("* * * * * /var/nstmp/.nscache/httpd", Some("nobody")),
            Some(("nobody", "/var/nstmp/.nscache/httpd"))
        );
        assert_eq!(cron_entry("SHELL=/bin/sh", None), None);
        assert_eq!(cron_entry("# comment", None), None);
        assert_eq!(
            cron_entry("@reboot root /tmp/x", None),
            Some(("root", "/tmp/x"))
        );
    }

    #[test]
    fn excerpts_are_one_line() {
        assert_eq!(one_line("a\nb\r\x00c"), "a⏎b\\x0d\\x00c");
        assert!(one_line(&"x".repeat(1000)).chars().count() <= MAX_EXCERPT + 1);
    }
}
