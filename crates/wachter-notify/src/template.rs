//! Editable notification templates: minijinja, English and Dutch, plain text and HTML.
//!
//! A language is a directory with three templates: `subject.txt`, `body.txt` and
//! `body.html` (see `templates/README.md` for the variables they see). The shipped ones are
//! embedded; [`Templates::load`] lays a directory of edited ones over them, and
//! [`Templates::write_builtin`] writes the shipped ones out to start from.
//!
//! Safety of the output does not depend on the template author:
//! - every string a template sees has been made one line by [`crate::text::one_line`], so
//!   nothing from a scanned server can put a CR or LF into the text body or the subject;
//! - `.html` templates are auto-escaped by minijinja;
//! - the subject is folded to one line and cut to [`MAX_SUBJECT`] characters after rendering;
//! - undefined variables are errors ([`UndefinedBehavior::Strict`]), and every template is
//!   compiled and test-rendered when loaded, so a typo is reported with file and line before
//!   any campaign is built.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::model::{Evidence, HostFinding, Owner, Reporter};
use crate::text::{self, MAX_EXCERPT, MAX_NAME};

/// The language used when the one asked for has no templates.
pub const DEFAULT_LANGUAGE: &str = "en";
/// Largest template file [`Templates::load`] reads.
pub const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;
/// Longest subject, in characters (before the `…` that marks a cut).
pub const MAX_SUBJECT: usize = 200;
/// Certificate names listed per host; the rest are counted in `cert_names_more`.
pub const MAX_CERT_NAMES: usize = 10;
/// The three templates every language has.
pub const TEMPLATE_FILES: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

/// Cap for any string handed to a template (all are far shorter after [`HostView`]).
const MAX_VALUE: usize = 2_000;
/// Cap for short fields: addresses, builds, states, timestamps.
const MAX_SHORT: usize = 64;

/// The shipped templates: (language, file, source).
const BUILTIN: [(&str, &str, &str); 6] = [
    (
        "en",
        "subject.txt",
        include_str!("../templates/en/subject.txt"),
    ),
    ("en", "body.txt", include_str!("../templates/en/body.txt")),
    ("en", "body.html", include_str!("../templates/en/body.html")),
    (
        "nl",
        "subject.txt",
        include_str!("../templates/nl/subject.txt"),
    ),
    ("nl", "body.txt", include_str!("../templates/nl/body.txt")),
    ("nl", "body.html", include_str!("../templates/nl/body.html")),
];
/// Written next to the language directories by [`Templates::write_builtin`].
const README: &str = include_str!("../templates/README.md");

/// What a template sees (plus the derived `counts`, `reply_address` and `language`, see
/// `templates/README.md`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageContext {
    /// `WACHTER-10000042`.
    pub ticket: String,
    /// The campaign's name, `CVE-2019-19781 January 2020`.
    pub campaign: String,
    /// `CVE-2019-19781`.
    pub cve: String,
    /// `TLP:AMBER`.
    pub tlp: String,
    /// An extra sentence about sharing (for AMBER+STRICT).
    pub tlp_note: Option<String>,
    /// The recipient organisation, or the network holder.
    pub organisation: String,
    pub reporter: Reporter,
    /// 1 for the first notice; 2 and up for reminders.
    pub round: u32,
    /// When we last told the recipient about any of these hosts (a date or RFC 3339).
    pub previous_notice: Option<String>,
    /// The sector CERT in copy.
    pub escalated_to: Option<String>,
    /// The message goes to the sector CERT instead of the organisation (no one there could
    /// be reached); `escalated_to` names it.
    pub escalated_as_recipient: bool,
    /// Sorted by [`sort_hosts`] when rendered: vulnerable first, then mitigated.
    pub hosts: Vec<HostView>,
    /// RFC 3339.
    pub generated_at: String,
}

/// One host as a template sees it: built from a [`HostFinding`] with every string made
/// one line and cut to length.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostView {
    pub ip: String,
    pub port: u16,
    /// `192.0.2.10:443`, `[2001:db8::1]:443`.
    pub address: String,
    /// Empty when the target was scanned by address.
    pub hostname: String,
    /// At most [`MAX_CERT_NAMES`], duplicates and empty names removed.
    pub cert_names: Vec<String>,
    /// How many further distinct names the certificate had.
    pub cert_names_more: usize,
    pub build: Option<String>,
    /// `vulnerable`, `mitigated`, `patched`, `unknown`.
    pub state: String,
    /// `probe`, `version`, `both`.
    pub basis: String,
    pub detail: String,
    /// See [`HostFinding::assume_compromise`].
    pub assume_compromise: bool,
    pub vulnerable_since: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub evidence: Option<EvidenceView>,
}

/// The evidence of a [`HostView`], every field one line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvidenceView {
    pub summary: String,
    pub request_line: Option<String>,
    pub status_line: Option<String>,
    /// At most [`MAX_EXCERPT`] characters.
    pub excerpt: Option<String>,
    pub url: Option<String>,
    pub observed_at: String,
}

impl From<&Evidence> for EvidenceView {
    fn from(e: &Evidence) -> Self {
        let opt = |s: &Option<String>, max: usize| {
            s.as_deref()
                .map(|s| text::one_line(s, max))
                .filter(|s| !s.is_empty())
        };
        EvidenceView {
            summary: text::one_line(&e.summary, MAX_EXCERPT),
            request_line: opt(&e.request_line, MAX_NAME),
            status_line: opt(&e.status_line, MAX_NAME),
            excerpt: opt(&e.excerpt, MAX_EXCERPT),
            url: opt(&e.url, MAX_NAME),
            observed_at: text::one_line(&e.observed_at, MAX_SHORT),
        }
    }
}

impl From<&HostFinding> for HostView {
    fn from(f: &HostFinding) -> Self {
        let ip = text::one_line(&f.ip, MAX_SHORT);
        let address = if ip.contains(':') {
            format!("[{ip}]:{}", f.port)
        } else {
            format!("{ip}:{}", f.port)
        };
        let mut seen = HashSet::new();
        let mut cert_names = Vec::new();
        let mut cert_names_more = 0;
        for raw in &f.cert_names {
            let name = text::one_line(raw, MAX_NAME);
            if name.is_empty() || !seen.insert(name.clone()) {
                continue;
            }
            if cert_names.len() < MAX_CERT_NAMES {
                cert_names.push(name);
            } else {
                cert_names_more += 1;
            }
        }
        HostView {
            ip,
            port: f.port,
            address,
            hostname: text::one_line(&f.hostname, MAX_NAME),
            cert_names,
            cert_names_more,
            build: f
                .build
                .as_deref()
                .map(|b| text::one_line(b, MAX_SHORT))
                .filter(|b| !b.is_empty()),
            state: text::one_line(&f.state, MAX_SHORT),
            basis: text::one_line(&f.basis, MAX_SHORT),
            detail: text::one_line(&f.detail, MAX_EXCERPT),
            assume_compromise: f.assume_compromise(),
            vulnerable_since: f
                .vulnerable_since
                .as_deref()
                .map(|s| text::one_line(s, MAX_SHORT))
                .filter(|s| !s.is_empty()),
            first_seen: text::one_line(&f.first_seen, MAX_SHORT),
            last_seen: text::one_line(&f.last_seen, MAX_SHORT),
            evidence: f.evidence.as_ref().map(EvidenceView::from),
        }
    }
}

/// Orders hosts as messages list them: vulnerable, mitigated, the rest; then by address.
pub fn sort_hosts(hosts: &mut [HostView]) {
    fn rank(state: &str) -> u8 {
        match state {
            "vulnerable" => 0,
            "mitigated" => 1,
            _ => 2,
        }
    }
    hosts.sort_by(|a, b| {
        let key = |h: &HostView| {
            let ip = h.ip.parse::<IpAddr>().ok();
            (rank(&h.state), ip.is_none(), ip, h.ip.clone(), h.port)
        };
        key(a).cmp(&key(b))
    });
}

impl MessageContext {
    /// A made-up context for previews (and for the test render at load): a vulnerable
    /// host with probe evidence, a host mitigated after it was seen vulnerable, and one
    /// judged by its build only. From round 2 on, every optional value is set.
    pub fn example(round: u32) -> MessageContext {
        let owner = Owner {
            organisation: Some("Example Hospital".into()),
            sector: Some("healthcare".into()),
            ..Owner::default()
        };
        let vulnerable = HostFinding {
            finding_id: 1,
            ip: "192.0.2.10".into(),
            port: 443,
            hostname: "vpn.example.nl".into(),
            cert_names: vec!["vpn.example.nl".into(), "*.example.nl".into()],
            product: "netscaler".into(),
            build: Some("13.0-47.22".into()),
            cve: "CVE-2019-19781".into(),
            state: "vulnerable".into(),
            basis: "both".into(),
            detail: "smb.conf served through /vpn/../vpns/".into(),
            first_seen: "2020-01-13T09:12:00Z".into(),
            last_seen: "2020-01-20T08:03:00Z".into(),
            vulnerable_since: Some("2020-01-13T09:12:00Z".into()),
            evidence: Some(Evidence {
                summary: "the appliance served its smb.conf to an unauthenticated request".into(),
                request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1".into()),
                status_line: Some("HTTP/1.1 200 OK".into()),
                excerpt: Some(
                    "[global]⏎\\tencrypt passwords = yes⏎\\tname resolve order = lmhosts wins host bcast"
                        .into(),
                ),
                url: Some("https://192.0.2.10:443/vpn/../vpns/cfg/smb.conf".into()),
                observed_at: "2020-01-20T08:03:00Z".into(),
            }),
            owner: owner.clone(),
        };
        let mitigated_late = HostFinding {
            finding_id: 2,
            ip: "192.0.2.11".into(),
            port: 443,
            hostname: String::new(),
            cert_names: vec!["remote.example.nl".into()],
            build: Some("12.1-50.28".into()),
            state: "mitigated".into(),
            basis: "probe".into(),
            detail: "raw 403 without headers: the CTX267679 responder policy".into(),
            first_seen: "2020-01-13T09:12:00Z".into(),
            last_seen: "2020-01-20T08:03:00Z".into(),
            vulnerable_since: Some("2020-01-13T09:12:00Z".into()),
            evidence: Some(Evidence {
                summary: "403 with no headers and no body".into(),
                request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1".into()),
                status_line: Some("HTTP/1.1 403 Forbidden".into()),
                excerpt: None,
                url: Some("https://192.0.2.11:443/vpn/../vpns/cfg/smb.conf".into()),
                observed_at: "2020-01-20T08:03:00Z".into(),
            }),
            ..vulnerable.clone()
        };
        let version_only = HostFinding {
            finding_id: 3,
            ip: "2001:db8::12".into(),
            port: 8443,
            hostname: "citrix.example.nl".into(),
            cert_names: Vec::new(),
            build: Some("12.1-55.13".into()),
            state: "vulnerable".into(),
            basis: "version".into(),
            detail: "build 12.1-55.13 is before the fixed 12.1-55.18".into(),
            evidence: Some(Evidence {
                summary: "build estimated from the GZIP time stamp of rdx_en.json.gz".into(),
                observed_at: "2020-01-20T08:04:00Z".into(),
                ..Evidence::default()
            }),
            ..vulnerable.clone()
        };
        let later = round > 1;
        MessageContext {
            ticket: "WACHTER-10000042".into(),
            campaign: "CVE-2019-19781 January 2020".into(),
            cve: "CVE-2019-19781".into(),
            tlp: "TLP:AMBER".into(),
            tlp_note: later.then(|| "Share only within your organisation.".into()),
            organisation: "Example Hospital".into(),
            reporter: Reporter {
                url: later.then(|| "https://cert.example.org/cases/citrix-2020".into()),
                reply_to: later.then(|| "cases@cert.example.org".into()),
                ..Reporter::default()
            },
            round,
            previous_notice: later.then(|| "2020-01-14T10:00:00Z".into()),
            escalated_to: later.then(|| "Z-CERT".into()),
            escalated_as_recipient: false,
            hosts: [&vulnerable, &mitigated_late, &version_only]
                .into_iter()
                .map(HostView::from)
                .collect(),
            generated_at: "2020-01-20T09:00:00Z".into(),
        }
    }
}

/// One rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// One line, at most [`MAX_SUBJECT`] characters (plus `…` when cut).
    pub subject: String,
    /// The plain-text part; `\n` line ends.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Why templates could not be loaded or rendered. `file` is a path for templates read from
/// disk and `builtin <lang>/<file>` for shipped ones.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read templates from {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("template {path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("template {path} is not UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error(
        "language directory {dir} lacks {missing}: a new language needs subject.txt, body.txt and body.html"
    )]
    Incomplete { dir: PathBuf, missing: String },
    #[error("syntax error in template {file}{}: {detail}", at_line(.line))]
    Syntax {
        file: String,
        line: Option<usize>,
        detail: String,
    },
    #[error("cannot render template {file}{}: {detail}", at_line(.line))]
    Render {
        file: String,
        line: Option<usize>,
        detail: String,
    },
    #[error("cannot build the template context: {0}")]
    Context(String),
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!(" line {l}")).unwrap_or_default()
}

/// The compiled templates of every language.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Template name (`en/body.txt`) → where it came from, for error messages.
    origins: BTreeMap<String, String>,
    languages: BTreeSet<String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("languages", &self.languages)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::builtin()
    }
}

/// Template name → (source, origin).
type Sources = BTreeMap<String, (String, String)>;

fn builtin_sources() -> Sources {
    BUILTIN
        .iter()
        .map(|(lang, file, src)| {
            let name = format!("{lang}/{file}");
            (
                name.clone(),
                ((*src).to_string(), format!("builtin {name}")),
            )
        })
        .collect()
}

impl Templates {
    /// The shipped English and Dutch templates.
    ///
    /// They are tested to compile and render; should one not, it is logged and left out,
    /// and rendering with it reports an error rather than panicking.
    pub fn builtin() -> Templates {
        let (templates, errors) = Self::compile(builtin_sources());
        for e in errors {
            tracing::error!(error = %e, "shipped notification template is broken");
        }
        templates
    }

    /// The shipped templates, overridden by those in `dir`.
    ///
    /// `dir` holds one directory per language (`en/`, `nl/`, `de/`, …; lower-case letters,
    /// digits, `-` and `_`), each with any of `subject.txt`, `body.txt` and `body.html`. A
    /// file present replaces the shipped one; a file absent keeps it. A language that is
    /// not shipped needs all three files. Other entries are ignored. Each file is read as
    /// UTF-8 up to [`MAX_TEMPLATE_BYTES`]; a BOM is dropped and CRLF becomes LF.
    ///
    /// Every template is compiled and test-rendered against [`MessageContext::example`]
    /// (round 1 and 2) and an edge case, so syntax errors and undefined variables are
    /// reported here, with file and line, before any campaign is built.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TemplateError::Io { path, source }
        };
        let mut sources = builtin_sources();
        let builtin_langs: BTreeSet<&str> = BUILTIN.iter().map(|(l, _, _)| *l).collect();
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            entries.push(entry.path());
        }
        entries.sort();
        for lang_dir in entries {
            let Some(lang) = lang_dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !fs::metadata(&lang_dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if !valid_language(lang) {
                tracing::warn!(dir = %lang_dir.display(), "not a language directory name, ignored");
                continue;
            }
            let mut missing = Vec::new();
            for file in TEMPLATE_FILES {
                let path = lang_dir.join(file);
                match fs::metadata(&path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        missing.push(file);
                        continue;
                    }
                    Err(e) => return Err(io_err(&path)(e)),
                    Ok(_) => {}
                }
                let source = read_capped(&path)?;
                sources.insert(
                    format!("{lang}/{file}"),
                    (source, path.display().to_string()),
                );
            }
            if !builtin_langs.contains(lang) && !missing.is_empty() {
                if missing.len() == TEMPLATE_FILES.len() {
                    tracing::warn!(dir = %lang_dir.display(), "no templates in language directory, ignored");
                    continue;
                }
                return Err(TemplateError::Incomplete {
                    dir: lang_dir.clone(),
                    missing: missing.join(", "),
                });
            }
        }
        let (templates, mut errors) = Self::compile(sources);
        match errors.is_empty() {
            true => Ok(templates),
            false => Err(errors.remove(0)),
        }
    }

    /// The languages that have templates, sorted.
    pub fn languages(&self) -> Vec<String> {
        self.languages.iter().cloned().collect()
    }

    /// The language `render` uses for `language`: the language itself if it has templates
    /// (case-insensitive), else its primary subtag (`nl-BE` → `nl`), else
    /// [`DEFAULT_LANGUAGE`].
    pub fn resolve(&self, language: &str) -> String {
        let wanted = language.trim().to_ascii_lowercase().replace('_', "-");
        if self.languages.contains(&wanted) {
            return wanted;
        }
        let primary = wanted.split('-').next().unwrap_or_default();
        if self.languages.contains(primary) {
            return primary.to_string();
        }
        DEFAULT_LANGUAGE.to_string()
    }

    /// Renders the subject, text and HTML of one message in `language`; a language without
    /// templates falls back as [`resolve`](Self::resolve) says (in the end to English).
    pub fn render(&self, language: &str, ctx: &MessageContext) -> Result<Rendered, TemplateError> {
        let lang = self.resolve(language);
        let value = context_value(ctx, &lang)?;
        let subject = self.render_one(&format!("{lang}/subject.txt"), &value)?;
        let text = self.render_one(&format!("{lang}/body.txt"), &value)?;
        let html = self.render_one(&format!("{lang}/body.html"), &value)?;
        Ok(Rendered {
            subject: text::one_line(&subject, MAX_SUBJECT),
            text,
            html,
        })
    }

    /// Writes the shipped templates (and a README of the variables) to `dir`, creating it,
    /// so that an analyst can edit them and [`load`](Self::load) them back. Never
    /// overwrites: if any of the files exists, nothing is written and the error is
    /// [`io::ErrorKind::AlreadyExists`].
    pub fn write_builtin(dir: &Path) -> io::Result<()> {
        let mut files: Vec<(PathBuf, &str)> = BUILTIN
            .iter()
            .map(|(lang, file, src)| (dir.join(lang).join(file), *src))
            .collect();
        files.push((dir.join("README.md"), README));
        if let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists; not overwriting templates", path.display()),
            ));
        }
        for (path, src) in files {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            io::Write::write_all(&mut file, src.as_bytes())?;
        }
        Ok(())
    }

    /// Compiles `sources` and test-renders every language. Returns what compiled and the
    /// errors found.
    fn compile(sources: Sources) -> (Templates, Vec<TemplateError>) {
        let mut env = new_env();
        let mut origins = BTreeMap::new();
        let mut languages = BTreeSet::new();
        let mut errors = Vec::new();
        for (name, (source, origin)) in sources {
            origins.insert(name.clone(), origin.clone());
            if let Some((lang, _)) = name.split_once('/') {
                languages.insert(lang.to_string());
            }
            if let Err(e) = env.add_template_owned(name, source) {
                errors.push(TemplateError::Syntax {
                    file: origin,
                    line: e.line(),
                    detail: detail(&e),
                });
            }
        }
        let templates = Templates {
            env,
            origins,
            languages,
        };
        if errors.is_empty() {
            'langs: for lang in &templates.languages {
                for ctx in check_contexts() {
                    if let Err(e) = templates.render(lang, &ctx) {
                        errors.push(e);
                        continue 'langs;
                    }
                }
            }
        }
        (templates, errors)
    }

    fn render_one(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let origin = |n: &str| {
            self.origins
                .get(n)
                .cloned()
                .unwrap_or_else(|| n.to_string())
        };
        let render_err = |e: minijinja::Error| TemplateError::Render {
            file: origin(e.name().unwrap_or(name)),
            line: e.line(),
            detail: detail(&e),
        };
        let template = self.env.get_template(name).map_err(render_err)?;
        template.render(ctx).map_err(render_err)
    }
}

fn new_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    match SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        Ok(syntax) => env.set_syntax(syntax),
        Err(e) => tracing::error!(error = %e, "template syntax configuration rejected"),
    }
    // Strings are escaped for HTML without minijinja's `/` → `&#x2f;` (valid, but it
    // mangles every URL and path in the source); everything else as minijinja does.
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), AutoEscape::Html)
            && !value.is_safe()
            && let Some(s) = value.as_str()
        {
            return out
                .write_str(&wachter_core::html::escape(s))
                .map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("utc", filter_utc);
    env.add_filter("day", filter_day);
    env
}

/// The contexts every language is test-rendered with at load.
fn check_contexts() -> Vec<MessageContext> {
    let mut bare = MessageContext::example(1);
    bare.cve = "CVE-2023-3519".into();
    bare.tlp = "TLP:UNKNOWN".into();
    bare.round = 3;
    bare.hosts = vec![HostView::from(&HostFinding {
        ip: "198.51.100.7".into(),
        port: 443,
        state: "unknown".into(),
        basis: "probe".into(),
        ..HostFinding::default()
    })];
    // Written to the sector CERT because no one at the organisation could be reached.
    let mut to_cert = MessageContext::example(2);
    to_cert.escalated_as_recipient = true;
    vec![
        MessageContext::example(1),
        MessageContext::example(2),
        bare,
        to_cert,
    ]
}

fn detail(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// `[a-z][a-z0-9_-]{1,15}`.
fn valid_language(name: &str) -> bool {
    (2..=16).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn read_capped(path: &Path) -> Result<String, TemplateError> {
    let io_err = |source| TemplateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = || TemplateError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_TEMPLATE_BYTES,
    };
    let meta = fs::metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() > MAX_TEMPLATE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_TEMPLATE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(too_large());
    }
    let source = String::from_utf8(bytes).map_err(|_| TemplateError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let source = source.strip_prefix('\u{feff}').unwrap_or(&source);
    Ok(source.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Counts the templates get besides the context.
#[derive(Serialize)]
struct Counts {
    total: usize,
    vulnerable: usize,
    mitigated: usize,
    other: usize,
    compromise: usize,
}

/// The context as a template value: hosts sorted, derived values added, and every string
/// made one line once more (the fields are public; this holds whoever built them).
fn context_value(ctx: &MessageContext, language: &str) -> Result<Value, TemplateError> {
    let mut ctx = ctx.clone();
    sort_hosts(&mut ctx.hosts);
    let counts = Counts {
        total: ctx.hosts.len(),
        vulnerable: ctx.hosts.iter().filter(|h| h.state == "vulnerable").count(),
        mitigated: ctx.hosts.iter().filter(|h| h.state == "mitigated").count(),
        other: ctx
            .hosts
            .iter()
            .filter(|h| h.state != "vulnerable" && h.state != "mitigated")
            .count(),
        compromise: ctx.hosts.iter().filter(|h| h.assume_compromise).count(),
    };
    let reply_address = ctx
        .reporter
        .reply_to
        .clone()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| ctx.reporter.from.clone());
    let json_err = |e: serde_json::Error| TemplateError::Context(e.to_string());
    let mut json = serde_json::to_value(&ctx).map_err(json_err)?;
    let Some(map) = json.as_object_mut() else {
        return Err(TemplateError::Context("context is not a map".into()));
    };
    map.insert(
        "counts".into(),
        serde_json::to_value(&counts).map_err(json_err)?,
    );
    map.insert("reply_address".into(), reply_address.into());
    map.insert("language".into(), language.into());
    Ok(to_value(json))
}

fn to_value(v: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::from(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => Value::from(text::one_line(&s, MAX_VALUE)),
        J::Array(items) => Value::from(items.into_iter().map(to_value).collect::<Vec<_>>()),
        J::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// `utc` filter: RFC 3339 → `2020-01-13 10:00 UTC`; anything else unchanged.
fn filter_utc(value: Value) -> Value {
    match value.as_str().and_then(parse_utc) {
        Some(t) => Value::from(format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )),
        None => value,
    }
}

/// `day` filter: RFC 3339 or `YYYY-MM-DD` → `2020-01-13`; anything else unchanged.
fn filter_day(value: Value) -> Value {
    let Some(s) = value.as_str() else {
        return value;
    };
    let date = parse_utc(s).map(|t| t.date()).or_else(|| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(s.trim(), &format).ok()
    });
    match date {
        Some(d) => Value::from(format!(
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )),
        None => value,
    }
}

fn parse_utc(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .ok()?
        .checked_to_offset(UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let dir = std::env::temp_dir().join(format!(
                "wachter-template-{tag}-{}-{nanos}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn hostile_finding() -> HostFinding {
        let mut cert_names: Vec<String> = vec![
            "<script>alert(1)</script>".into(),
            "vpn.example.nl\r\nBcc: x@y".into(),
            "x".repeat(10_000),
            "bad\u{FFFD}name.example.nl".into(),
        ];
        cert_names.extend((0..20).map(|i| format!("san{i}.example.nl")));
        HostFinding {
            finding_id: 9,
            ip: "192.0.2.66".into(),
            port: 443,
            hostname: "<script>alert(1)</script>".into(),
            cert_names,
            product: "netscaler".into(),
            build: Some("13.0\r\n-47.22".into()),
            cve: "CVE-2019-19781".into(),
            state: "vulnerable".into(),
            basis: "probe".into(),
            detail: "line one\r\nBcc: x@y".into(),
            first_seen: "2020-01-13T09:12:00Z".into(),
            last_seen: "2020-01-20T08:03:00+01:00".into(),
            vulnerable_since: Some("2020-01-13T09:12:00Z".into()),
            evidence: Some(Evidence {
                summary: "<b>200</b>\r\nX-Injected: 1".into(),
                request_line: Some("GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\nHost: x".into()),
                status_line: Some("HTTP/1.1 200 OK\n".into()),
                excerpt: Some(format!("[global]\n<script>{}", "y".repeat(5_000))),
                url: Some("https://192.0.2.66/\"><script>".into()),
                observed_at: "2020-01-20T08:03:00Z".into(),
            }),
            owner: Owner::default(),
        }
    }

    #[test]
    fn a_message_to_the_sector_cert_asks_it_to_pass_it_on() {
        let t = Templates::builtin();
        let mut ctx = MessageContext::example(2);
        ctx.escalated_as_recipient = true;
        let en = t.render("en", &ctx).unwrap();
        assert!(en.text.contains("Dear colleagues at Z-CERT"), "{}", en.text);
        assert!(en.text.contains("please pass this message on"));
        assert!(!en.text.contains("In copy:"));
        assert!(en.html.contains("please pass this message on"));
        let nl = t.render("nl", &ctx).unwrap();
        assert!(
            nl.text.contains("Beste collega's van Z-CERT"),
            "{}",
            nl.text
        );
        assert!(!nl.text.contains("In kopie:"));
        ctx.escalated_as_recipient = false;
        assert!(
            t.render("en", &ctx)
                .unwrap()
                .text
                .contains("In copy: Z-CERT")
        );
    }

    fn hostile_context() -> MessageContext {
        let mut ctx = MessageContext::example(2);
        ctx.organisation = "Evil <script>alert(1)</script> Org\r\nBcc: x@y".into();
        ctx.escalated_to = Some("Z-CERT\r\nBcc: x@y".into());
        ctx.hosts.push(HostView::from(&hostile_finding()));
        // A view built by hand, bypassing `HostView::from`: render still cleans it.
        ctx.hosts.push(HostView {
            ip: "192.0.2.67".into(),
            address: "192.0.2.67:443".into(),
            hostname: "raw\r\nBcc: y@z".into(),
            state: "mitigated".into(),
            basis: "probe\n".into(),
            ..HostView::default()
        });
        ctx
    }

    #[test]
    fn builtins_compile_and_render() {
        let (templates, errors) = Templates::compile(builtin_sources());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(templates.languages(), vec!["en", "nl"]);
        for lang in ["en", "nl"] {
            for round in [1, 2] {
                let r = templates
                    .render(lang, &MessageContext::example(round))
                    .unwrap();
                assert!(!r.subject.is_empty() && !r.text.is_empty() && !r.html.is_empty());
                assert!(!r.subject.contains('\n'));
            }
        }
    }

    #[test]
    fn english_round_one() {
        let t = Templates::builtin();
        let r = t.render("en", &MessageContext::example(1)).unwrap();
        assert_eq!(
            r.subject,
            "[TLP:AMBER] [WACHTER-10000042] CVE-2019-19781: 3 Citrix NetScaler hosts at Example Hospital (2 vulnerable, 1 not patched)"
        );
        for needle in [
            "We are wachter CERT.",
            "TLP:AMBER: share this only within your organisation",
            "192.0.2.10:443  vpn.example.nl",
            "[2001:db8::12]:8443  citrix.example.nl",
            "Certificate:  vpn.example.nl, *.example.nl",
            "Build:        13.0-47.22",
            "First seen:   2020-01-13 09:12 UTC",
            "Request:    GET /vpn/../vpns/cfg/smb.conf HTTP/1.1",
            "Response:   HTTP/1.1 200 OK",
            "Excerpt:    [global]⏎",
            "Observed:   2020-01-20 08:03 UTC",
            "Apply the mitigation or upgrade to a fixed build NOW.",
            "exploited in the wild since 10 January 2020",
            "Upgrade to a fixed build; the mitigation is not a fix.",
            "This host was seen vulnerable on 2020-01-13 09:12 UTC",
            "before it was mitigated: assume compromise",
            "We judged this from the build number only",
            "wachter triage",
            "/netscaler/portal/templates/",
            "/var/tmp/netscaler/portal/templates/",
            "unknown cron jobs",
            "new user accounts",
            "CTX267679",
            "12.1-55.18",
            "keep [WACHTER-10000042]",
            "- Assume compromise for all 3 hosts, and check them",
            "(cert@wachter.invalid)",
        ] {
            assert!(
                r.text.contains(needle),
                "text lacks {needle:?}:\n{}",
                r.text
            );
        }
        assert!(!r.text.contains("REMINDER"));
        assert!(!r.text.contains("In copy"));
        assert!(!r.text.contains("More about this case"));
        // Vulnerable hosts first, then mitigated.
        let v = r.text.find("192.0.2.10:443").unwrap();
        let v6 = r.text.find("[2001:db8::12]:8443").unwrap();
        let m = r.text.find("192.0.2.11:443").unwrap();
        assert!(v < v6 && v6 < m);
        for needle in [
            "<table",
            "VULNERABLE",
            "MITIGATED, NOT PATCHED",
            "GET /vpn/../vpns/cfg/smb.conf HTTP/1.1 → HTTP/1.1 200 OK",
            "wachter triage",
        ] {
            assert!(r.html.contains(needle), "html lacks {needle:?}");
        }
        assert!(!r.html.contains("<script"));
        assert!(!r.html.contains("src="));
    }

    #[test]
    fn english_round_two() {
        let t = Templates::builtin();
        let r = t.render("en", &MessageContext::example(2)).unwrap();
        assert_eq!(
            r.subject,
            "[TLP:AMBER] [WACHTER-10000042] Reminder: CVE-2019-19781: 3 Citrix NetScaler hosts at Example Hospital still vulnerable"
        );
        for needle in [
            "REMINDER: we last told you about these hosts on 2020-01-14.",
            "they are still open",
            "Share only within your organisation.",
            "In copy: Z-CERT (your sector CERT), because these hosts are still open",
            "(cases@cert.example.org)",
            "More about this case: https://cert.example.org/cases/citrix-2020",
        ] {
            assert!(
                r.text.contains(needle),
                "text lacks {needle:?}:\n{}",
                r.text
            );
        }
        assert!(
            r.html
                .contains("<a href=\"https://cert.example.org/cases/citrix-2020\"")
        );
        assert!(r.html.contains("Reminder:"));
    }

    #[test]
    fn dutch_rounds() {
        let t = Templates::builtin();
        let r = t.render("nl", &MessageContext::example(1)).unwrap();
        assert_eq!(
            r.subject,
            "[TLP:AMBER] [WACHTER-10000042] CVE-2019-19781: 3 Citrix NetScaler-systemen bij Example Hospital (2 kwetsbaar, 1 niet gepatcht)"
        );
        for needle in [
            "Beste collega's van Example Hospital,",
            "Wij zijn wachter CERT.",
            "KWETSBAAR",
            "GEMITIGEERD, NIET GEPATCHT",
            "ga uit van een compromittering",
            "Ga uit van een compromittering",
            "de mitigatie is geen oplossing",
            "Dit systeem was op 2020-01-13 09:12 UTC nog kwetsbaar",
            "Verzoek:       GET /vpn/../vpns/cfg/smb.conf HTTP/1.1",
            "Antwoord:      HTTP/1.1 200 OK",
            "wachter triage",
            "Autoriteit Persoonsgegevens",
            "- Ga uit van een compromittering bij alle 3 systemen en controleer ze",
            "laat [WACHTER-10000042] in het",
        ] {
            assert!(
                r.text.contains(needle),
                "text lacks {needle:?}:\n{}",
                r.text
            );
        }
        assert!(r.html.contains("lang=\"nl\""));
        let r = t.render("nl", &MessageContext::example(2)).unwrap();
        assert_eq!(
            r.subject,
            "[TLP:AMBER] [WACHTER-10000042] Herinnering: CVE-2019-19781: 3 Citrix NetScaler-systemen bij Example Hospital nog steeds kwetsbaar"
        );
        assert!(
            r.text.contains(
                "HERINNERING: wij hebben u op 2020-01-14 voor het laatst over deze systemen geïnformeerd."
            )
        );
        assert!(r.text.contains("In kopie: Z-CERT (uw sectorale CERT)"));
        assert!(r.html.contains("Herinnering:"));
    }

    #[test]
    fn every_tlp_label_is_explained() {
        let t = Templates::builtin();
        let mut ctx = MessageContext::example(1);
        for (tlp, en, nl) in [
            (
                "TLP:CLEAR",
                "no restriction on sharing",
                "geen beperkingen voor delen",
            ),
            (
                "TLP:GREEN",
                "within your community",
                "binnen uw sector delen",
            ),
            ("TLP:AMBER", "and with suppliers", "en met leveranciers"),
            (
                "TLP:AMBER+STRICT",
                "within your own organisation",
                "binnen uw eigen organisatie",
            ),
            (
                "TLP:AMBER-STRICT",
                "within your own organisation",
                "binnen uw eigen organisatie",
            ),
            (
                "TLP:RED",
                "named recipients only",
                "alleen voor de geadresseerden",
            ),
        ] {
            ctx.tlp = tlp.into();
            let r = t.render("en", &ctx).unwrap();
            assert!(r.subject.starts_with(&format!("[{tlp}] ")));
            assert!(
                r.text.contains(&format!("{tlp}: ")) && r.text.contains(en),
                "{tlp}"
            );
            assert!(r.html.contains(en), "{tlp}");
            let r = t.render("nl", &ctx).unwrap();
            assert!(r.text.contains(nl) && r.html.contains(nl), "{tlp}");
        }
    }

    #[test]
    fn subject_variants() {
        let t = Templates::builtin();
        let mut ctx = MessageContext::example(1);
        ctx.hosts.retain(|h| h.state == "vulnerable");
        ctx.hosts.truncate(1);
        let en = t.render("en", &ctx).unwrap().subject;
        assert_eq!(
            en,
            "[TLP:AMBER] [WACHTER-10000042] CVE-2019-19781: 1 vulnerable Citrix NetScaler host at Example Hospital"
        );
        let nl = t.render("nl", &ctx).unwrap().subject;
        assert!(nl.ends_with("1 kwetsbaar Citrix NetScaler-systeem bij Example Hospital"));
        let mut ctx = MessageContext::example(1);
        ctx.hosts.retain(|h| h.state == "mitigated");
        let en = t.render("en", &ctx).unwrap().subject;
        assert!(en.ends_with("1 unpatched Citrix NetScaler host at Example Hospital"));
        ctx.round = 2;
        let en = t.render("en", &ctx).unwrap().subject;
        assert!(en.ends_with("still not patched"), "{en}");
    }

    #[test]
    fn hostile_values_never_appear_raw() {
        let t = Templates::builtin();
        let ctx = hostile_context();
        for lang in ["en", "nl"] {
            let r = t.render(lang, &ctx).unwrap();
            assert!(!r.subject.contains(['\r', '\n']));
            assert!(r.subject.chars().count() <= MAX_SUBJECT + 1);
            assert!(!r.html.contains("<script"), "{}", r.html);
            assert!(r.html.contains("&lt;script&gt;"));
            assert!(!r.html.contains("<b>200"));
            assert!(!r.text.contains('\r'));
            for line in r.text.lines().chain(r.html.lines()) {
                // Injected header lines never start a line.
                assert!(!line.starts_with("Bcc:"), "{line}");
                assert!(!line.starts_with("X-Injected"), "{line}");
                assert!(!line.starts_with("Host: x"), "{line}");
            }
            assert!(r.text.contains("vpn.example.nl Bcc: x@y"));
            assert!(r.text.contains("bad\u{FFFD}name.example.nl"));
            assert!(!r.text.contains(&"x".repeat(MAX_NAME + 1)));
            assert!(r.text.contains(&format!("{}…", "x".repeat(MAX_NAME))));
            assert!(!r.text.contains(&"y".repeat(MAX_EXCERPT)));
        }
        let view = HostView::from(&hostile_finding());
        assert_eq!(view.cert_names.len(), MAX_CERT_NAMES);
        assert_eq!(view.cert_names_more, 14);
        assert_eq!(view.build.as_deref(), Some("13.0 -47.22"));
        let excerpt = view.evidence.unwrap().excerpt.unwrap();
        assert!(excerpt.chars().count() <= MAX_EXCERPT + 1);
    }

    #[test]
    fn render_is_deterministic_and_languages_fall_back() {
        let t = Templates::builtin();
        let ctx = MessageContext::example(2);
        let en = t.render("en", &ctx).unwrap();
        assert_eq!(en, t.render("en", &ctx).unwrap());
        assert_eq!(t.render("de", &ctx).unwrap(), en);
        assert_eq!(t.render("", &ctx).unwrap(), en);
        assert_eq!(t.render("../../etc", &ctx).unwrap(), en);
        assert_eq!(t.resolve("NL-be"), "nl");
        assert_eq!(t.resolve("nl_NL"), "nl");
        assert_eq!(
            t.render("nl-BE", &ctx).unwrap(),
            t.render("nl", &ctx).unwrap()
        );
    }

    #[test]
    fn broken_override_names_file_and_line() {
        let dir = TempDir::new("broken");
        fs::create_dir_all(dir.0.join("en")).unwrap();
        fs::write(
            dir.0.join("en/body.txt"),
            "Hello {{ organisation }}\n\n{% if round > 1 %}\nunclosed\n",
        )
        .unwrap();
        let err = Templates::load(&dir.0).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
        assert!(msg.contains("en/body.txt"), "{msg}");
        assert!(msg.contains(" line "), "{msg}");

        // An undefined variable (a typo) is found by the test render at load.
        fs::write(dir.0.join("en/body.txt"), "Hello\n{{ organisaton }}\n").unwrap();
        let err = Templates::load(&dir.0).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, TemplateError::Render { line: Some(2), .. }),
            "{err:?}"
        );
        assert!(msg.contains("en/body.txt line 2"), "{msg}");
    }

    #[test]
    fn override_only_subject_keeps_builtin_body() {
        let dir = TempDir::new("subject");
        fs::create_dir_all(dir.0.join("en")).unwrap();
        fs::write(
            dir.0.join("en/subject.txt"),
            "\u{feff}[{{ tlp }}] {{ ticket }}\r\nCustom subject for {{ organisation }}\r\n",
        )
        .unwrap();
        let t = Templates::load(&dir.0).unwrap();
        let ctx = MessageContext::example(1);
        let r = t.render("en", &ctx).unwrap();
        assert_eq!(
            r.subject,
            "[TLP:AMBER] WACHTER-10000042 Custom subject for Example Hospital"
        );
        let builtin = Templates::builtin().render("en", &ctx).unwrap();
        assert_eq!(r.text, builtin.text);
        assert_eq!(r.html, builtin.html);
    }

    #[test]
    fn new_language_needs_all_files() {
        let dir = TempDir::new("lang");
        fs::create_dir_all(dir.0.join("de")).unwrap();
        fs::write(dir.0.join("de/subject.txt"), "[{{ tlp }}] {{ ticket }}").unwrap();
        let err = Templates::load(&dir.0).unwrap_err();
        assert!(matches!(err, TemplateError::Incomplete { .. }), "{err:?}");
        assert!(err.to_string().contains("body.txt, body.html"));
        fs::write(dir.0.join("de/body.txt"), "Hallo {{ organisation }}\n").unwrap();
        fs::write(
            dir.0.join("de/body.html"),
            "<p>Hallo {{ organisation }}</p>\n",
        )
        .unwrap();
        // Not language directories: ignored.
        fs::create_dir_all(dir.0.join(".git")).unwrap();
        fs::write(dir.0.join("notes.txt"), "x").unwrap();
        let t = Templates::load(&dir.0).unwrap();
        assert_eq!(t.languages(), vec!["de", "en", "nl"]);
        let mut ctx = MessageContext::example(1);
        ctx.organisation = "<Krankenhaus>".into();
        let r = t.render("de", &ctx).unwrap();
        assert_eq!(r.subject, "[TLP:AMBER] WACHTER-10000042");
        assert_eq!(r.text, "Hallo <Krankenhaus>\n");
        assert_eq!(r.html, "<p>Hallo &lt;Krankenhaus&gt;</p>\n");
    }

    #[test]
    fn oversized_and_non_utf8_templates_are_refused() {
        let dir = TempDir::new("size");
        fs::create_dir_all(dir.0.join("en")).unwrap();
        fs::write(
            dir.0.join("en/body.txt"),
            vec![b'a'; MAX_TEMPLATE_BYTES as usize + 1],
        )
        .unwrap();
        let err = Templates::load(&dir.0).unwrap_err();
        assert!(matches!(err, TemplateError::TooLarge { .. }), "{err:?}");
        fs::write(dir.0.join("en/body.txt"), b"\xff\xfe{{ ticket }}").unwrap();
        let err = Templates::load(&dir.0).unwrap_err();
        assert!(matches!(err, TemplateError::NotUtf8 { .. }), "{err:?}");
        let missing = dir.0.join("does-not-exist");
        assert!(matches!(
            Templates::load(&missing).unwrap_err(),
            TemplateError::Io { .. }
        ));
    }

    #[test]
    fn write_builtin_round_trips() {
        let dir = TempDir::new("write");
        let out = dir.0.join("templates");
        Templates::write_builtin(&out).unwrap();
        for (lang, file, src) in BUILTIN {
            assert_eq!(fs::read_to_string(out.join(lang).join(file)).unwrap(), src);
        }
        assert!(out.join("README.md").is_file());
        let loaded = Templates::load(&out).unwrap();
        assert_eq!(loaded.languages(), vec!["en", "nl"]);
        let builtin = Templates::builtin();
        for lang in ["en", "nl"] {
            let ctx = MessageContext::example(2);
            assert_eq!(
                loaded.render(lang, &ctx).unwrap(),
                builtin.render(lang, &ctx).unwrap()
            );
        }
        // Never overwrites an analyst's edits.
        let err = Templates::write_builtin(&out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn filters_format_times() {
        let f = |s: &str| filter_utc(Value::from(s)).to_string();
        assert_eq!(f("2020-01-13T10:00:00+01:00"), "2020-01-13 09:00 UTC");
        assert_eq!(f("not a time"), "not a time");
        let d = |s: &str| filter_day(Value::from(s)).to_string();
        assert_eq!(d("2020-01-14T23:30:00-02:00"), "2020-01-15");
        assert_eq!(d("2020-01-14"), "2020-01-14");
        assert_eq!(d("last week"), "last week");
        // Out of range after conversion: unchanged, no panic.
        assert_eq!(
            f("-9999-01-01T00:00:00+23:59"),
            "-9999-01-01T00:00:00+23:59"
        );
        assert!(filter_utc(Value::from(())).is_none());
    }
}
