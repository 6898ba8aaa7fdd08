//! RIPE Database split files (RPSL, RFC 2622) into networks and their abuse mailboxes.
//!
//! The split files (`ripe.db.inetnum.gz`, `ripe.db.inet6num.gz`, `ripe.db.role.gz`,
//! `ripe.db.organisation.gz`) are read in two layers:
//!
//! - [`ObjectReader`] (or [`objects`]) streams RPSL objects: blank lines separate objects,
//!   `name: value` lines make attributes, the first attribute names the class, `%`/`#` lines
//!   are comments, lines starting with whitespace or `+` continue the previous value, and a
//!   `#` outside double quotes starts an end-of-line comment. Lines that are not UTF-8 are
//!   read as latin-1 (what the dumps are in practice). Lines, attributes per object and
//!   object size are capped, so hostile input costs bounded memory; a malformed object is
//!   reported with its source and line and skipped, and reading goes on.
//! - [`RegistryImport`] takes objects of the four classes in any order (the files are
//!   separate, so roles usually come after the networks that name them), keeps only the
//!   fields it needs, and [`RegistryImport::finish`] resolves every network to its abuse
//!   mailboxes: the network's own `abuse-c`, else its `org:`'s `abuse-c`, then the role's
//!   `abuse-mailbox`. Whatever cannot be resolved (bad range, dangling handle, role without
//!   a usable mailbox) is reported with its place and left out; nothing half-imports.
//!   Collecting millions of networks costs memory (about 240 bytes each); when the role
//!   and organisation files are read first, [`RegistryImport::stream_networks`] resolves
//!   each network as it is read and hands it on, in flat memory.
//!
//! Which of several nested networks applies to an address (the most specific) is decided
//! at lookup time by the prefix table; this module only produces the networks.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use flate2::bufread::MultiGzDecoder;
use ipnet::{IpNet, Ipv6Net};
use wachter_core::addr::{Family, IpRange};

/// Where something is: the file (its name, as given) and the 1-based line.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Shared: millions of networks name the same file.
    pub source: Arc<str>,
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// Caps on what one object may cost. The defaults pass the largest real objects (aut-nums
/// with thousands of policy lines) and refuse a file that is one endless line or object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one line, without its line break.
    pub max_line: usize,
    /// Attributes in one object.
    pub max_attributes: usize,
    /// Bytes of names and values kept for one object.
    pub max_object_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_attributes: 100_000,
            max_object_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Why an object is not valid RPSL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("line without a colon")]
    NoColon,
    #[error("{0:?} is not an attribute name")]
    BadName(String),
    #[error("continuation line before any attribute")]
    LeadingContinuation,
    #[error("line longer than {max} bytes")]
    LineTooLong { max: usize },
    #[error("more than {max} attributes")]
    TooManyAttributes { max: usize },
    #[error("object larger than {max} bytes")]
    TooLarge { max: usize },
}

/// A failure to read RPSL, with its place in the message (the I/O error is not repeated
/// as a source). `Malformed` costs one object and reading goes on; the others end the file.
#[derive(Debug, thiserror::Error)]
pub enum RpslError {
    #[error("{path}: cannot open: {error}")]
    Open { path: String, error: io::Error },
    #[error("{location}: cannot read: {error}")]
    Io {
        location: Location,
        error: io::Error,
    },
    /// `location` is the offending line, `object_line` where the skipped object starts.
    #[error("{location}: {reason} (object from line {object_line} skipped)")]
    Malformed {
        location: Location,
        object_line: u64,
        /// `class key` of the skipped object when its first line was read.
        object: Option<String>,
        reason: Malformed,
    },
}

impl RpslError {
    /// True when reading cannot go on after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, RpslError::Malformed { .. })
    }
}

/// Opens a split file, gzip or plain text (told apart by the gzip magic, not the name).
/// Gzip members are read one after another, as `gzip` and RIPE's files concatenate them.
pub fn open(path: impl AsRef<Path>) -> Result<Box<dyn BufRead + Send>, RpslError> {
    let path = path.as_ref();
    let opened = |error| RpslError::Open {
        path: path.display().to_string(),
        error,
    };
    let file = File::open(path).map_err(opened)?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let gzip = reader
        .fill_buf()
        .map_err(opened)?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    })
}

/// The name a file's objects are reported under: its file name.
pub fn source_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[derive(Clone, Copy, Debug, Default)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
    line: u64,
}

/// One RPSL object: attribute names lowercased, values without comments, continuation
/// lines joined with one space, surrounding whitespace trimmed.
///
/// All text lives in one buffer, so an object costs two allocations, and
/// [`ObjectReader::read_object`] reuses them.
#[derive(Clone, Debug, Default)]
pub struct RpslObject {
    text: String,
    spans: Vec<Span>,
    location: Location,
}

/// One attribute of an [`RpslObject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub line: u64,
}

impl RpslObject {
    /// The class: the name of the first attribute (`inetnum`, `role`, …).
    pub fn class(&self) -> &str {
        self.spans.first().map_or("", |s| self.slice(s.name))
    }

    /// The value of the first attribute (`192.0.2.0 - 192.0.2.255`, `ORG-EX1-TEST`, …).
    pub fn key(&self) -> &str {
        self.spans.first().map_or("", |s| self.slice(s.value))
    }

    /// Where the object starts.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.spans.iter().map(|s| Attribute {
            name: self.slice(s.name),
            value: self.slice(s.value),
            line: s.line,
        })
    }

    /// Every attribute called `name` (lowercase).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Attribute<'a>> {
        self.attributes().filter(move |a| a.name == name)
    }

    /// The value of the first attribute called `name` (lowercase).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .find(|s| self.slice(s.name) == name)
            .map(|s| self.slice(s.value))
    }

    /// `class key`, shortened, for reports.
    pub fn describe(&self) -> String {
        describe(self.class(), self.key())
    }

    fn slice(&self, (start, end): (u32, u32)) -> &str {
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    fn clear(&mut self, source: &Arc<str>) {
        self.text.clear();
        self.spans.clear();
        if !Arc::ptr_eq(&self.location.source, source) {
            self.location.source = source.clone();
        }
        self.location.line = 0;
    }
}

fn describe(class: &str, key: &str) -> String {
    const MAX: usize = 120;
    let mut text = format!("{class} {key}");
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Streams the objects of one RPSL text. `source_name` is how places are reported.
pub fn objects<R: BufRead>(reader: R, source_name: &str) -> ObjectReader<R> {
    ObjectReader::new(reader, source_name)
}

/// A streaming RPSL object reader; see the module documentation for the syntax.
///
/// As an iterator it yields `Err` for each malformed object and goes on, and ends after a
/// fatal (I/O) error.
pub struct ObjectReader<R> {
    reader: R,
    source: Arc<str>,
    limits: Limits,
    /// Number of the last line read.
    line: u64,
    buf: Vec<u8>,
    latin1: String,
    pending: Option<RpslError>,
    done: bool,
}

enum Line {
    Eof,
    Text,
    TooLong,
}

enum Added {
    Blank,
    Comment,
    Attribute,
}

impl<R: BufRead> ObjectReader<R> {
    pub fn new(reader: R, source_name: &str) -> Self {
        ObjectReader {
            reader,
            source: Arc::from(source_name),
            limits: Limits::default(),
            line: 0,
            buf: Vec::new(),
            latin1: String::new(),
            pending: None,
            done: false,
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        // Offsets inside an object are u32.
        let max_object_bytes = limits.max_object_bytes.min(u32::MAX as usize);
        self.limits = Limits {
            max_object_bytes,
            ..limits
        };
        self
    }

    /// Reads the next object into `object`, reusing its buffers: `Ok(false)` at the end.
    pub fn read_object(&mut self, object: &mut RpslObject) -> Result<bool, RpslError> {
        object.clear(&self.source);
        if let Some(error) = self.pending.take() {
            self.done = true;
            return Err(error);
        }
        if self.done {
            return Ok(false);
        }
        loop {
            let line = match self.read_line() {
                Ok(line) => line,
                Err(error) => {
                    self.done = true;
                    return Err(RpslError::Io {
                        location: self.location(self.line + 1),
                        error,
                    });
                }
            };
            let added = match line {
                Line::Eof => {
                    self.done = true;
                    return Ok(!object.is_empty());
                }
                Line::TooLong => Err(Malformed::LineTooLong {
                    max: self.limits.max_line,
                }),
                Line::Text => {
                    add_line(object, &self.buf, self.line, &self.limits, &mut self.latin1)
                }
            };
            match added {
                Ok(Added::Blank) if !object.is_empty() => return Ok(true),
                Ok(_) => {}
                Err(reason) => return Err(self.skip_object(object, reason)),
            }
        }
    }

    fn location(&self, line: u64) -> Location {
        Location {
            source: self.source.clone(),
            line,
        }
    }

    /// Reads one line into `buf` (without its line break), never buffering more than
    /// `max_line + 1` bytes: the rest of an over-long line is consumed and dropped.
    fn read_line(&mut self) -> io::Result<Line> {
        self.buf.clear();
        let cap = self.limits.max_line as u64 + 1;
        let n = (&mut self.reader)
            .take(cap)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if n as u64 == cap {
            self.buf.clear();
            loop {
                let available = match self.reader.fill_buf() {
                    Ok(available) => available,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => return Err(error),
                };
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|b| *b == b'\n') {
                    Some(at) => {
                        self.reader.consume(at + 1);
                        break;
                    }
                    None => {
                        let len = available.len();
                        self.reader.consume(len);
                    }
                }
            }
            return Ok(Line::TooLong);
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Line::Text)
    }

    /// Drops the rest of a malformed object (up to the next blank line) and describes it.
    fn skip_object(&mut self, object: &mut RpslObject, reason: Malformed) -> RpslError {
        let at = self.line;
        let (object_line, described) = if object.is_empty() {
            (at, None)
        } else {
            (object.location.line, Some(object.describe()))
        };
        loop {
            match self.read_line() {
                Ok(Line::Eof) => {
                    self.done = true;
                    break;
                }
                Ok(Line::TooLong) => {}
                Ok(Line::Text) => {
                    if is_blank(&self.buf) {
                        break;
                    }
                }
                Err(error) => {
                    self.pending = Some(RpslError::Io {
                        location: self.location(self.line + 1),
                        error,
                    });
                    break;
                }
            }
        }
        object.clear(&self.source);
        RpslError::Malformed {
            location: self.location(at),
            object_line,
            object: described,
            reason,
        }
    }
}

impl<R: BufRead> Iterator for ObjectReader<R> {
    type Item = Result<RpslObject, RpslError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut object = RpslObject::default();
        match self.read_object(&mut object) {
            Ok(true) => Some(Ok(object)),
            Ok(false) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// UTF-8 when valid, otherwise latin-1 (every byte is the code point of the same number).
fn decode<'a>(bytes: &'a [u8], latin1: &'a mut String) -> &'a str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            latin1.clear();
            latin1.extend(bytes.iter().map(|b| char::from(*b)));
            latin1
        }
    }
}

/// Cuts an end-of-line `#` comment; a `#` inside a double-quoted string (a quoted local part
/// of a mail address) is kept.
fn strip_comment(text: &str) -> &str {
    match unquoted(text, b'#').next() {
        Some(hash) => &text[..hash],
        None => text,
    }
}

/// The positions of `wanted` outside double-quoted strings (a backslash escapes inside them).
fn unquoted(text: &str, wanted: u8) -> impl Iterator<Item = usize> + '_ {
    let mut quoted = false;
    let mut escaped = false;
    text.bytes().enumerate().filter_map(move |(at, byte)| {
        if escaped {
            escaped = false;
            return None;
        }
        match byte {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if byte == wanted && !quoted => return Some(at),
            _ => {}
        }
        None
    })
}

/// `str::trim`, with the common all-ASCII case first (a latin-1 NBSP is still trimmed).
fn trim(text: &str) -> &str {
    let trimmed = text.trim_ascii();
    match (trimmed.bytes().next(), trimmed.bytes().last()) {
        (Some(a), Some(b)) if a >= 0x80 || b >= 0x80 => trimmed.trim(),
        _ => trimmed,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn add_line(
    object: &mut RpslObject,
    bytes: &[u8],
    line: u64,
    limits: &Limits,
    latin1: &mut String,
) -> Result<Added, Malformed> {
    if is_blank(bytes) {
        return Ok(Added::Blank);
    }
    let text = decode(bytes, latin1);
    match bytes[0] {
        b'%' | b'#' => Ok(Added::Comment),
        b' ' | b'\t' | b'+' => {
            let Some(span) = object.spans.last_mut() else {
                return Err(Malformed::LeadingContinuation);
            };
            // The first byte is ASCII, so it is one character in `text` too.
            let more = trim(strip_comment(&text[1..]));
            if !more.is_empty() {
                if object.text.len() + more.len() + 1 > limits.max_object_bytes {
                    return Err(Malformed::TooLarge {
                        max: limits.max_object_bytes,
                    });
                }
                if span.value.1 > span.value.0 {
                    object.text.push(' ');
                }
                object.text.push_str(more);
                span.value.1 = object.text.len() as u32;
            }
            Ok(Added::Attribute)
        }
        _ => {
            let Some((name, value)) = text.split_once(':') else {
                return Err(Malformed::NoColon);
            };
            if !valid_name(name) {
                let mut shown: String = name.chars().take(40).collect();
                if shown.len() < name.len() {
                    shown.push('…');
                }
                return Err(Malformed::BadName(shown));
            }
            if object.spans.len() >= limits.max_attributes {
                return Err(Malformed::TooManyAttributes {
                    max: limits.max_attributes,
                });
            }
            let value = trim(strip_comment(value));
            if object.text.len() + name.len() + value.len() > limits.max_object_bytes {
                return Err(Malformed::TooLarge {
                    max: limits.max_object_bytes,
                });
            }
            let start = object.text.len() as u32;
            object.text.push_str(name);
            let name_end = object.text.len() as u32;
            object.text[start as usize..].make_ascii_lowercase();
            object.text.push_str(value);
            if object.spans.is_empty() {
                object.location.line = line;
            }
            object.spans.push(Span {
                name: (start, name_end),
                value: (name_end, object.text.len() as u32),
                line,
            });
            Ok(Added::Attribute)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mail addresses
// ---------------------------------------------------------------------------------------

/// The addresses found in one `abuse-mailbox` value, and the parts that looked like an
/// address but are not one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mailboxes {
    /// Normalised (domain lowercased, needless quotes dropped), deduplicated, in order.
    pub addresses: Vec<String>,
    pub rejected: Vec<String>,
}

/// Reads the real-world shapes of `abuse-mailbox`: several addresses separated by spaces,
/// commas or semicolons, trailing commas, `(comments)`, `Name <address>`, quoted local parts
/// (`"abuse team"@example.org`), `mailto:`. Words without `@` are display names and are ignored, unless
/// nothing in the value is an address: then the whole value is rejected.
pub fn parse_mailboxes(value: &str) -> Mailboxes {
    let mut out = Mailboxes::default();
    for mut token in mailbox_tokens(value) {
        if token
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"))
        {
            token.drain(..7);
        }
        if split_address(&token).is_none() {
            continue;
        }
        match normalise_address(&token) {
            Some(address) => push_unique(&mut out.addresses, address),
            None => out.rejected.push(token),
        }
    }
    if out.addresses.is_empty() && out.rejected.is_empty() && !value.trim().is_empty() {
        out.rejected.push(value.trim().to_string());
    }
    out
}

/// Adds `address` unless it is there already (ASCII case-insensitively: mail systems treat
/// `Abuse@` and `abuse@` alike, and one message is enough).
fn push_unique(list: &mut Vec<String>, address: String) {
    if !list.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
        list.push(address);
    }
}

/// Splits a value into candidate words: quoted strings stay inside their word, `(…)` is
/// dropped, `<…>` is a word of its own, whitespace, `,` and `;` separate.
fn mailbox_tokens(value: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    let flush = |current: &mut String, tokens: &mut Vec<String>| {
        if !current.is_empty() {
            tokens.push(std::mem::take(current));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                current.push('"');
                while let Some(c) = chars.next() {
                    current.push(c);
                    match c {
                        '\\' => {
                            if let Some(next) = chars.next() {
                                current.push(next);
                            }
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '(' => {
                flush(&mut current, &mut tokens);
                let mut depth = 1usize;
                for c in chars.by_ref() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            '<' => {
                flush(&mut current, &mut tokens);
                let inner: String = chars.by_ref().take_while(|c| *c != '>').collect();
                let inner = inner.trim();
                if !inner.is_empty() {
                    tokens.push(inner.to_string());
                }
            }
            '>' | ',' | ';' => flush(&mut current, &mut tokens),
            c if c.is_whitespace() => flush(&mut current, &mut tokens),
            c => current.push(c),
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

/// Splits at the last `@` outside double quotes.
fn split_address(text: &str) -> Option<(&str, &str)> {
    unquoted(text, b'@')
        .last()
        .map(|i| (&text[..i], &text[i + 1..]))
}

fn atext(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn dot_atom(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext))
}

/// `local@domain` with the domain lowercased and quotes dropped where they add nothing;
/// `None` when it is not a deliverable address (no domain, an address literal, bad labels).
fn normalise_address(text: &str) -> Option<String> {
    let (local, domain) = split_address(text)?;
    let local = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        let inner = &local[1..local.len() - 1];
        let mut escaped = false;
        for c in inner.chars() {
            if c.is_control() || (c == '"' && !escaped) {
                return None;
            }
            escaped = c == '\\' && !escaped;
        }
        if escaped {
            return None;
        }
        if dot_atom(inner) { inner } else { local }
    } else if dot_atom(local) {
        local
    } else {
        return None;
    };
    if local.len() > 64 {
        return None;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain).to_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let top_is_name = labels
        .last()
        .is_some_and(|top| top.chars().any(|c| !c.is_ascii_digit()));
    if domain.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) || !top_is_name {
        return None;
    }
    Some(format!("{local}@{domain}"))
}

/// `DE`, `de`, `DE # DE NL` (the comment is gone by now) or `DE NL` → `DE`: the first
/// word, when it is two ASCII letters.
pub fn normalise_country(value: &str) -> Option<String> {
    let first = value.split_whitespace().next()?;
    (first.len() == 2 && first.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| first.to_ascii_uppercase())
}

// ---------------------------------------------------------------------------------------
// Import and resolution
// ---------------------------------------------------------------------------------------

/// How a network's abuse mailboxes were found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AbuseSource {
    /// The network's own `abuse-c` (inetnum or inet6num).
    InetnumAbuseC { handle: Arc<str> },
    /// The network has no `abuse-c`; its `org:`'s `abuse-c` applies.
    OrganisationAbuseC { org: Arc<str>, handle: Arc<str> },
    /// Neither the network nor its organisation names an abuse contact. A lookup should
    /// fall through to a covering network for the mailbox (netname and country still apply).
    None,
}

impl fmt::Display for AbuseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbuseSource::InetnumAbuseC { handle } => write!(f, "inetnum abuse-c {handle}"),
            AbuseSource::OrganisationAbuseC { org, handle } => {
                write!(f, "organisation {org} abuse-c {handle}")
            }
            AbuseSource::None => f.write_str("none"),
        }
    }
}

/// One inetnum or inet6num with its abuse contact.
///
/// Handles, organisation names and mailbox lists are shared (`Arc`): millions of networks
/// name the same few hundred thousand roles and organisations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryNetwork {
    /// inetnum `a - b` ranges as given, inet6num CIDRs.
    pub range: IpRange,
    /// Empty when the object has none.
    pub netname: String,
    /// Two uppercase letters (`NL`, `EU`, `ZZ`).
    pub country: Option<Arc<str>>,
    /// The `org:` handle, uppercase.
    pub org: Option<Arc<str>>,
    pub org_name: Option<Arc<str>>,
    /// Normalised, deduplicated; empty only with [`AbuseSource::None`].
    pub abuse_mailboxes: Arc<[String]>,
    pub abuse_source: AbuseSource,
    /// Where the network's object starts.
    pub location: Location,
}

impl RegistryNetwork {
    /// The exact CIDR cover of the range (one network for inet6num and for aligned
    /// inetnums). Computed on demand: keeping a `Vec` for each of millions of networks
    /// would cost more than the rest of the record.
    pub fn networks(&self) -> Vec<IpNet> {
        self.range.to_cidrs()
    }

    /// `inetnum 192.0.2.0 - 192.0.2.255` or `inet6num 2001:db8::/32`, as in reports.
    pub fn describe(&self) -> String {
        match self.range.family() {
            Family::V4 => format!("inetnum {} - {}", self.range.first(), self.range.last()),
            Family::V6 => format!("inet6num {}", self.range),
        }
    }
}

/// Why an object (or one value of it) was left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProblemReason {
    #[error("line {line}: {reason}")]
    Malformed { line: u64, reason: Malformed },
    #[error("{0:?} is not a range")]
    BadRange(String),
    #[error("range {0:?} ends before it starts")]
    ReversedRange(String),
    #[error("{0:?} has host bits set")]
    HostBits(String),
    #[error("no {0}")]
    Missing(&'static str),
    #[error("duplicate {attribute} {key}; the first one is kept")]
    Duplicate {
        attribute: &'static str,
        key: String,
    },
    #[error("abuse-c {handle} names no role")]
    UnknownRole { handle: String },
    #[error("abuse-c {handle} names a role without a usable abuse-mailbox")]
    RoleWithoutMailbox { handle: String },
    #[error("no abuse-c, and org {org} names no organisation")]
    UnknownOrganisation { org: String },
    #[error("no abuse-c, and organisation {org}'s abuse-c {handle} names no role")]
    OrganisationUnknownRole { org: String, handle: String },
    #[error(
        "no abuse-c, and organisation {org}'s abuse-c {handle} names a role without a usable abuse-mailbox"
    )]
    OrganisationRoleWithoutMailbox { org: String, handle: String },
    #[error("abuse-mailbox {0:?} is not a usable address")]
    BadMailbox(String),
    #[error("country {0:?} is not a two-letter code")]
    BadCountry(String),
}

impl ProblemReason {
    /// True when the whole object was left out; false when only the value was.
    pub fn skips_object(&self) -> bool {
        !matches!(
            self,
            ProblemReason::BadMailbox(_) | ProblemReason::BadCountry(_)
        )
    }
}

/// Something the import left out, and where it is: the object's first line, or the
/// attribute's line for a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    /// `class key` of the object (`object` when its first line was unreadable).
    pub object: String,
    pub reason: ProblemReason,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let effect = if self.reason.skips_object() {
            "object skipped"
        } else {
            "value ignored"
        };
        write!(
            f,
            "{}: {}: {} ({effect})",
            self.location, self.object, self.reason
        )
    }
}

/// What was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Well-formed objects of any class.
    pub objects: u64,
    /// inetnum and inet6num objects.
    pub networks: u64,
    pub roles: u64,
    pub organisations: u64,
    /// Objects of other classes (aut-num, person, mntner, …).
    pub ignored: u64,
    /// Objects that were not valid RPSL.
    pub malformed: u64,
}

/// The result of an import.
#[derive(Clone, Debug, Default)]
pub struct RegistryData {
    /// In the order they were read.
    pub networks: Vec<RegistryNetwork>,
    /// Sorted by file and line; at most [`MAX_PROBLEMS`] (`problems_total` counts all).
    pub problems: Vec<Problem>,
    pub problems_total: u64,
    /// Objects left out as a whole (a subset of the problems).
    pub skipped_objects: u64,
    pub stats: ImportStats,
}

/// Problems kept with their detail; a file that is broken throughout still costs bounded
/// memory, and the counts stay exact.
pub const MAX_PROBLEMS: usize = 10_000;

#[derive(Default)]
struct ProblemLog {
    list: Vec<Problem>,
    total: u64,
    skipped_objects: u64,
}

impl ProblemLog {
    fn push(&mut self, location: Location, object: impl FnOnce() -> String, reason: ProblemReason) {
        self.total += 1;
        if reason.skips_object() {
            self.skipped_objects += 1;
        }
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(Problem {
                location,
                object: object(),
                reason,
            });
        }
    }
}

/// Hashes a pointer-sized key: interned handles are looked up by address, which is cheap
/// and, being ours rather than the file's, cannot be chosen to collide.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte) ^ self.0.rotate_left(8));
        }
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn write_u64(&mut self, value: u64) {
        let product = u128::from(value) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

/// Keyed by the address of an interned handle (see [`RegistryImport::intern_upper`]).
type ByAddress<V> = HashMap<usize, V, BuildHasherDefault<AddressHasher>>;

fn address(handle: &Arc<str>) -> usize {
    Arc::as_ptr(handle).cast::<u8>() as usize
}

#[derive(Default)]
struct OrgEntry {
    name: Option<Arc<str>>,
    abuse_c: Option<Arc<str>>,
}

/// Roles and organisations read so far: what a network's handles resolve against.
#[derive(Default)]
struct Directory {
    /// nic-hdl → abuse mailboxes (empty when the role has none).
    roles: ByAddress<Arc<[String]>>,
    organisations: ByAddress<OrgEntry>,
}

impl Directory {
    /// Ok: the role's mailboxes. Err(true): the role has none; Err(false): no such role.
    fn role(&self, handle: &Arc<str>) -> Result<Arc<[String]>, bool> {
        match self.roles.get(&address(handle)) {
            Some(found) if !found.is_empty() => Ok(found.clone()),
            Some(_) => Err(true),
            None => Err(false),
        }
    }

    /// Fills in the organisation's name and the abuse mailboxes: the network's own
    /// `abuse-c`, else its organisation's. A network naming neither keeps
    /// [`AbuseSource::None`]; a handle that leads nowhere is an error.
    fn resolve(&self, network: &mut RegistryNetwork) -> Result<(), ProblemReason> {
        let org = network
            .org
            .as_ref()
            .and_then(|id| self.organisations.get(&address(id)));
        network.org_name = org.and_then(|entry| entry.name.clone());
        let found = match (&network.abuse_source, &network.org) {
            (AbuseSource::InetnumAbuseC { handle }, _) => {
                self.role(handle).map_err(|has_role| {
                    let handle = handle.to_string();
                    if has_role {
                        ProblemReason::RoleWithoutMailbox { handle }
                    } else {
                        ProblemReason::UnknownRole { handle }
                    }
                })?
            }
            (_, None) => return Ok(()),
            (_, Some(id)) => {
                let entry = org.ok_or_else(|| ProblemReason::UnknownOrganisation {
                    org: id.to_string(),
                })?;
                let Some(handle) = &entry.abuse_c else {
                    return Ok(());
                };
                let found = self.role(handle).map_err(|has_role| {
                    let (org, handle) = (id.to_string(), handle.to_string());
                    if has_role {
                        ProblemReason::OrganisationRoleWithoutMailbox { org, handle }
                    } else {
                        ProblemReason::OrganisationUnknownRole { org, handle }
                    }
                })?;
                network.abuse_source = AbuseSource::OrganisationAbuseC {
                    org: id.clone(),
                    handle: handle.clone(),
                };
                found
            }
        };
        network.abuse_mailboxes = found;
        Ok(())
    }
}

/// Collects networks, roles and organisations from objects in any order; see
/// [`RegistryImport::finish`], and [`RegistryImport::stream_networks`] for flat memory.
#[derive(Default)]
pub struct RegistryImport {
    /// Handles and org ids, uppercase, each stored once: equal text, same address.
    interned: HashSet<Arc<str>>,
    /// Country codes by their two letters.
    countries: HashMap<[u8; 2], Arc<str>>,
    directory: Directory,
    /// Unresolved: `abuse_source` holds the network's own abuse-c, if any.
    networks: Vec<RegistryNetwork>,
    problems: ProblemLog,
    stats: ImportStats,
    no_mailboxes: Option<Arc<[String]>>,
}

impl RegistryImport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads every object of one file (from [`open`]) into the import. Malformed objects
    /// become problems; only a failure to read ends the file early.
    pub fn read<R: BufRead>(&mut self, reader: R, source_name: &str) -> Result<(), RpslError> {
        self.read_with_limits(reader, source_name, Limits::default())
    }

    pub fn read_with_limits<R: BufRead>(
        &mut self,
        reader: R,
        source_name: &str,
        limits: Limits,
    ) -> Result<(), RpslError> {
        let reader = ObjectReader::new(reader, source_name).with_limits(limits);
        self.each_object(reader, |import, object| import.add(object))
    }

    /// Opens `path` (gzip or plain) and reads it, reporting places under its file name.
    pub fn read_path(&mut self, path: impl AsRef<Path>) -> Result<(), RpslError> {
        let path = path.as_ref();
        self.read(open(path)?, &source_name(path))
    }

    /// Reads a network file and resolves each network at once against the roles and
    /// organisations read so far, handing it to `sink` instead of keeping it: memory stays
    /// flat in the number of networks. Read the role and organisation files first; a
    /// handle they do not hold is reported as dangling. Objects of other classes are added
    /// as by [`RegistryImport::add`].
    pub fn stream_networks<R: BufRead>(
        &mut self,
        reader: R,
        source_name: &str,
        mut sink: impl FnMut(RegistryNetwork),
    ) -> Result<(), RpslError> {
        let reader = ObjectReader::new(reader, source_name);
        self.each_object(reader, |import, object| {
            let family = match object.class() {
                "inetnum" => Family::V4,
                "inet6num" => Family::V6,
                _ => return import.add(object),
            };
            import.stats.objects += 1;
            let Some(mut network) = import.network(object, family) else {
                return;
            };
            match import.directory.resolve(&mut network) {
                Ok(()) => sink(network),
                Err(reason) => {
                    let location = network.location.clone();
                    import
                        .problems
                        .push(location, || network.describe(), reason);
                }
            }
        })
    }

    /// [`RegistryImport::stream_networks`] on a file (gzip or plain).
    pub fn stream_networks_path(
        &mut self,
        path: impl AsRef<Path>,
        sink: impl FnMut(RegistryNetwork),
    ) -> Result<(), RpslError> {
        let path = path.as_ref();
        self.stream_networks(open(path)?, &source_name(path), sink)
    }

    fn each_object<R: BufRead>(
        &mut self,
        mut reader: ObjectReader<R>,
        mut each: impl FnMut(&mut Self, &RpslObject),
    ) -> Result<(), RpslError> {
        let mut object = RpslObject::default();
        loop {
            match reader.read_object(&mut object) {
                Ok(true) => each(self, &object),
                Ok(false) => return Ok(()),
                Err(error) => self.add_error(error)?,
            }
        }
    }

    /// Records a malformed object as a problem; hands a fatal error back.
    pub fn add_error(&mut self, error: RpslError) -> Result<(), RpslError> {
        match error {
            RpslError::Malformed {
                location,
                object_line,
                object,
                reason,
            } => {
                self.stats.malformed += 1;
                self.problems.push(
                    Location {
                        source: location.source,
                        line: object_line,
                    },
                    || object.unwrap_or_else(|| "object".into()),
                    ProblemReason::Malformed {
                        line: location.line,
                        reason,
                    },
                );
                Ok(())
            }
            fatal => Err(fatal),
        }
    }

    /// Takes the fields this import needs from one object of any class.
    pub fn add(&mut self, object: &RpslObject) {
        self.stats.objects += 1;
        match object.class() {
            "inetnum" | "inet6num" => {
                let family = if object.class() == "inetnum" {
                    Family::V4
                } else {
                    Family::V6
                };
                if let Some(network) = self.network(object, family) {
                    self.networks.push(network);
                }
            }
            "role" => self.add_role(object),
            "organisation" => self.add_organisation(object),
            _ => self.stats.ignored += 1,
        }
    }

    fn object_problem(&mut self, object: &RpslObject, reason: ProblemReason) {
        self.problems
            .push(object.location.clone(), || object.describe(), reason);
    }

    fn value_problem(&mut self, object: &RpslObject, line: u64, reason: ProblemReason) {
        let location = Location {
            source: object.location.source.clone(),
            line,
        };
        self.problems.push(location, || object.describe(), reason);
    }

    /// Handles and org ids are case-insensitive in RPSL: kept uppercase, once.
    fn intern_upper(&mut self, text: &str) -> Arc<str> {
        let upper;
        let text = if text.bytes().any(|b| b.is_ascii_lowercase()) {
            upper = text.to_ascii_uppercase();
            upper.as_str()
        } else {
            text
        };
        if let Some(found) = self.interned.get(text) {
            return found.clone();
        }
        let new: Arc<str> = Arc::from(text);
        self.interned.insert(new.clone());
        new
    }

    fn handle(&mut self, value: &str) -> Option<Arc<str>> {
        (!value.is_empty()).then(|| self.intern_upper(value))
    }

    fn country(&mut self, value: &str) -> Option<Arc<str>> {
        let code = normalise_country(value)?;
        let key = [code.as_bytes()[0], code.as_bytes()[1]];
        Some(
            self.countries
                .entry(key)
                .or_insert_with(|| Arc::from(code))
                .clone(),
        )
    }

    fn no_mailboxes(&mut self) -> Arc<[String]> {
        self.no_mailboxes
            .get_or_insert_with(|| Arc::from(Vec::new()))
            .clone()
    }

    /// The network of an inetnum or inet6num, unresolved; `None` (and a problem) when its
    /// range is not one.
    fn network(&mut self, object: &RpslObject, family: Family) -> Option<RegistryNetwork> {
        self.stats.networks += 1;
        let range = match family {
            Family::V4 => parse_inetnum(object.key()),
            Family::V6 => parse_inet6num(object.key()),
        };
        let range = match range {
            Ok(range) => range,
            Err(reason) => {
                self.object_problem(object, reason);
                return None;
            }
        };
        let (mut netname, mut country, mut org, mut abuse_c) = (None, None, None, None);
        // One pass: the first of each attribute counts.
        for attribute in object.attributes().skip(1) {
            match attribute.name {
                "netname" if netname.is_none() => netname = Some(attribute.value),
                "country" if country.is_none() => country = Some(attribute),
                "org" if org.is_none() => org = Some(attribute.value),
                "abuse-c" if abuse_c.is_none() => abuse_c = Some(attribute.value),
                _ => {}
            }
        }
        let country = country.and_then(|attribute| {
            let code = self.country(attribute.value);
            if code.is_none() {
                let reason = ProblemReason::BadCountry(attribute.value.to_string());
                self.value_problem(object, attribute.line, reason);
            }
            code
        });
        let org = org.and_then(|value| self.handle(value));
        let abuse_source = match abuse_c.and_then(|value| self.handle(value)) {
            Some(handle) => AbuseSource::InetnumAbuseC { handle },
            None => AbuseSource::None,
        };
        Some(RegistryNetwork {
            range,
            netname: netname.unwrap_or("").to_string(),
            country,
            org,
            org_name: None,
            abuse_mailboxes: self.no_mailboxes(),
            abuse_source,
            location: object.location.clone(),
        })
    }

    fn add_role(&mut self, object: &RpslObject) {
        self.stats.roles += 1;
        let Some(handle) = object.first("nic-hdl").and_then(|v| self.handle(v)) else {
            return self.object_problem(object, ProblemReason::Missing("nic-hdl"));
        };
        if self.directory.roles.contains_key(&address(&handle)) {
            return self.object_problem(
                object,
                ProblemReason::Duplicate {
                    attribute: "nic-hdl",
                    key: handle.to_string(),
                },
            );
        }
        let mut addresses = Vec::new();
        for attribute in object.all("abuse-mailbox") {
            let found = parse_mailboxes(attribute.value);
            for address in found.addresses {
                push_unique(&mut addresses, address);
            }
            for rejected in found.rejected {
                let reason = ProblemReason::BadMailbox(rejected);
                self.value_problem(object, attribute.line, reason);
            }
        }
        let mailboxes = if addresses.is_empty() {
            self.no_mailboxes()
        } else {
            Arc::from(addresses)
        };
        self.directory.roles.insert(address(&handle), mailboxes);
    }

    fn add_organisation(&mut self, object: &RpslObject) {
        self.stats.organisations += 1;
        let Some(id) = self.handle(object.key()) else {
            return self.object_problem(object, ProblemReason::Missing("organisation id"));
        };
        if self.directory.organisations.contains_key(&address(&id)) {
            return self.object_problem(
                object,
                ProblemReason::Duplicate {
                    attribute: "organisation",
                    key: id.to_string(),
                },
            );
        }
        let entry = OrgEntry {
            name: object
                .first("org-name")
                .filter(|name| !name.is_empty())
                .map(Arc::from),
            abuse_c: object.first("abuse-c").and_then(|v| self.handle(v)),
        };
        self.directory.organisations.insert(address(&id), entry);
    }

    /// Resolves every kept network to its abuse mailboxes (own `abuse-c`, else the
    /// organisation's) and hands back those that resolved, with every problem.
    pub fn finish(self) -> RegistryData {
        let RegistryImport {
            // Keeps the handles alive, and so their addresses unique, until the end.
            interned: _interned,
            directory,
            mut networks,
            mut problems,
            stats,
            ..
        } = self;
        networks.retain_mut(|network| match directory.resolve(network) {
            Ok(()) => true,
            Err(reason) => {
                let location = network.location.clone();
                problems.push(location, || network.describe(), reason);
                false
            }
        });
        networks.shrink_to_fit();
        let mut list = problems.list;
        list.sort_by(|a, b| a.location.cmp(&b.location));
        RegistryData {
            networks,
            problems: list,
            problems_total: problems.total,
            skipped_objects: problems.skipped_objects,
            stats,
        }
    }
}

/// `192.0.2.0 - 192.0.2.255` (spaces optional), or a CIDR, which some dumps carry.
fn parse_inetnum(key: &str) -> Result<IpRange, ProblemReason> {
    let bad = || ProblemReason::BadRange(key.to_string());
    if let Some((first, last)) = key.split_once('-') {
        let first = Ipv4Addr::from_str(first.trim()).map_err(|_| bad())?;
        let last = Ipv4Addr::from_str(last.trim()).map_err(|_| bad())?;
        return IpRange::between(IpAddr::V4(first), IpAddr::V4(last))
            .ok_or_else(|| ProblemReason::ReversedRange(key.to_string()));
    }
    let net = ipnet::Ipv4Net::from_str(key).map_err(|_| bad())?;
    if net.trunc() != net {
        return Err(ProblemReason::HostBits(key.to_string()));
    }
    Ok(IpRange::from_net(IpNet::V4(net)))
}

/// `2001:db8::/32`; host bits set means the object is not what it claims.
fn parse_inet6num(key: &str) -> Result<IpRange, ProblemReason> {
    let net = Ipv6Net::from_str(key).map_err(|_| ProblemReason::BadRange(key.to_string()))?;
    if net.trunc() != net {
        return Err(ProblemReason::HostBits(key.to_string()));
    }
    Ok(IpRange::from_net(IpNet::V6(net)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    const FILES: [&str; 4] = [
        "ripe.db.inetnum",
        "ripe.db.inet6num",
        "ripe.db.role",
        "ripe.db.organisation",
    ];

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rpsl")
            .join(name)
    }

    /// One line per network, problem and the stats, in the shape of `expected.txt`.
    fn render(data: &RegistryData) -> String {
        let or_dash = |value: Option<&Arc<str>>| value.map_or("-".to_string(), |v| v.to_string());
        let mut out = String::new();
        for n in &data.networks {
            let cidrs: Vec<String> = n.networks().iter().map(IpNet::to_string).collect();
            let mailboxes = if n.abuse_mailboxes.is_empty() {
                "-".to_string()
            } else {
                n.abuse_mailboxes.join(", ")
            };
            out += &format!(
                "{} | {} | {} | {} | {} | {} | {} | {}\n",
                cidrs.join(" "),
                n.netname,
                or_dash(n.country.as_ref()),
                or_dash(n.org.as_ref()),
                or_dash(n.org_name.as_ref()),
                mailboxes,
                n.abuse_source,
                n.location
            );
        }
        for problem in &data.problems {
            out += &format!("{problem}\n");
        }
        let s = &data.stats;
        out += &format!(
            "objects {}, networks {}, roles {}, organisations {}, ignored {}, malformed {}, problems {}, skipped {}\n",
            s.objects,
            s.networks,
            s.roles,
            s.organisations,
            s.ignored,
            s.malformed,
            data.problems_total,
            data.skipped_objects
        );
        out
    }

    fn expected() -> String {
        std::fs::read_to_string(fixture("expected.txt"))
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    fn import_files(order: &[&str]) -> RegistryData {
        let mut import = RegistryImport::new();
        for name in order {
            import.read_path(fixture(name)).unwrap();
        }
        import.finish()
    }

    #[test]
    fn rpsl_fixtures_resolve_to_the_expected_networks_and_problems() {
        assert_eq!(render(&import_files(&FILES)), expected());
    }

    #[test]
    fn rpsl_import_order_does_not_matter() {
        let data = import_files(&[
            "ripe.db.organisation",
            "ripe.db.role",
            "ripe.db.inetnum",
            "ripe.db.inet6num",
        ]);
        assert_eq!(render(&data), expected());
    }

    #[test]
    fn rpsl_streamed_networks_match_the_buffered_import() {
        let mut import = RegistryImport::new();
        import.read_path(fixture("ripe.db.role")).unwrap();
        import.read_path(fixture("ripe.db.organisation")).unwrap();
        let mut streamed = Vec::new();
        for name in ["ripe.db.inetnum", "ripe.db.inet6num"] {
            import
                .stream_networks_path(fixture(name), |network| streamed.push(network))
                .unwrap();
        }
        let mut data = import.finish();
        assert!(data.networks.is_empty());
        data.networks = streamed;
        assert_eq!(render(&data), expected());

        // Streamed before its roles, a network's abuse-c is dangling: reported, not kept.
        let mut early = RegistryImport::new();
        let mut kept = 0;
        early
            .stream_networks_path(fixture("ripe.db.inet6num"), |_| kept += 1)
            .unwrap();
        let data = early.finish();
        assert_eq!(kept, 0);
        assert_eq!(
            data.problems[0].to_string(),
            "ripe.db.inet6num:3: inet6num 2001:db8::/32: abuse-c AR1-TEST names no role (object skipped)"
        );
    }

    #[test]
    fn rpsl_networks_carry_shared_values() {
        let data = import_files(&FILES);
        let first = &data.networks[0];
        assert_eq!(first.range.to_string(), "192.0.2.0/24");
        assert_eq!(
            first.abuse_source,
            AbuseSource::InetnumAbuseC {
                handle: Arc::from("AR1-TEST")
            }
        );
        // The v4 and v6 networks of ORG-EX1-TEST share one mailbox list and one handle.
        let v6 = data
            .networks
            .iter()
            .find(|n| n.netname == "EXAMPLE-V6")
            .unwrap();
        assert!(Arc::ptr_eq(&first.abuse_mailboxes, &v6.abuse_mailboxes));
        assert!(Arc::ptr_eq(
            first.org.as_ref().unwrap(),
            v6.org.as_ref().unwrap()
        ));
        assert_eq!(v6.describe(), "inet6num 2001:db8::/32");
    }

    fn gzip(members: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for member in members {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(member).unwrap();
            out.extend(encoder.finish().unwrap());
        }
        out
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wachter-rpsl-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn rpsl_gzip_files_read_like_plain_text() {
        let dir = temp_dir("gzip");
        let mut import = RegistryImport::new();
        for name in FILES {
            let text = std::fs::read(fixture(name)).unwrap();
            // Two gzip members, split in the middle of a line: both must be read.
            let (a, b) = text.split_at(text.len() / 2);
            let path = dir.join(format!("{name}.gz"));
            std::fs::write(&path, gzip(&[a, b])).unwrap();
            import.read(open(&path).unwrap(), name).unwrap();
        }
        assert_eq!(render(&import.finish()), expected());

        // Plain text goes through `open` unchanged, and is reported under its file name.
        let mut plain = RegistryImport::new();
        plain.read_path(fixture("ripe.db.role")).unwrap();
        let data = plain.finish();
        assert_eq!(
            data.problems[0].location.to_string(),
            "ripe.db.role:20",
            "{:?}",
            data.problems
        );

        // A cut-off gzip file is a read error with its place, not a short import.
        let whole = gzip(&[&std::fs::read(fixture("ripe.db.inetnum")).unwrap()]);
        let cut = dir.join("cut.gz");
        std::fs::write(&cut, &whole[..whole.len() - 20]).unwrap();
        let error = RegistryImport::new().read_path(&cut).unwrap_err();
        assert!(error.is_fatal());
        assert!(error.to_string().starts_with("cut.gz:"), "{error}");
        let missing = RegistryImport::new()
            .read_path(dir.join("missing.gz"))
            .unwrap_err();
        assert!(matches!(missing, RpslError::Open { .. }), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn summary(item: Result<RpslObject, RpslError>) -> String {
        match item {
            Ok(object) => {
                let attributes: Vec<String> = object
                    .attributes()
                    .map(|a| format!("{}:{}={}", a.line, a.name, a.value))
                    .collect();
                format!("{} {}", object.location(), attributes.join(" | "))
            }
            Err(error) => format!("error {error}"),
        }
    }

    #[test]
    fn rpsl_reader_joins_strips_and_decodes() {
        let text = b"%  header\r\n\
            \r\n\
            \r\n\
            Inetnum:  192.0.2.0 -\r\n\
            \t 192.0.2.63   # the end\r\n\
            descr:\r\n\
            +  second   line\r\n\
            +\r\n\
            # comment inside\r\n\
            descr: caf\xe9 # latin-1\r\n\
            remarks: \"keep # this\" # not this\r\n\
            \x20\x20\t\r\n\
            role: last\n\
            nic-hdl: X";
        let items: Vec<String> = objects(&text[..], "t").map(summary).collect();
        assert_eq!(
            items,
            [
                "t:4 4:inetnum=192.0.2.0 - 192.0.2.63 | 6:descr=second   line | 10:descr=café | 11:remarks=\"keep # this\"",
                "t:13 13:role=last | 14:nic-hdl=X",
            ]
        );
        let object = objects(&text[..], "t").next().unwrap().unwrap();
        assert_eq!(object.class(), "inetnum");
        assert_eq!(object.key(), "192.0.2.0 - 192.0.2.63");
        assert_eq!(object.first("descr"), Some("second   line"));
        assert_eq!(object.all("descr").count(), 2);
        assert_eq!(object.len(), 4);
        assert_eq!(objects(&b"\n\n% only comments\n"[..], "t").count(), 0);
    }

    #[test]
    fn rpsl_over_long_line_costs_its_object_only() {
        let mut text = b"inetnum: 192.0.2.0 - 192.0.2.255\nnetname: A\n\n".to_vec();
        text.extend(b"inetnum: 198.51.100.0 - 198.51.100.255\ndescr: ");
        text.extend(std::iter::repeat_n(b'x', 70_000));
        text.extend(b"\nnetname: B\n\ninetnum: 203.0.113.0 - 203.0.113.255\nnetname: C\n");
        // A line that never ends is refused the same way, at the end of the file.
        text.extend(b"\ninetnum: 203.0.113.0 - 203.0.113.255\n");
        text.extend(std::iter::repeat_n(b'y', 200_000));
        let items: Vec<String> = objects(&text[..], "long").map(summary).collect();
        assert_eq!(
            items,
            [
                "long:1 1:inetnum=192.0.2.0 - 192.0.2.255 | 2:netname=A",
                "error long:5: line longer than 65536 bytes (object from line 4 skipped)",
                "long:8 8:inetnum=203.0.113.0 - 203.0.113.255 | 9:netname=C",
                "error long:12: line longer than 65536 bytes (object from line 11 skipped)",
            ]
        );
        let mut reader = objects(&text[..], "long");
        let _ = reader.next();
        match reader.next() {
            Some(Err(RpslError::Malformed {
                location,
                object_line,
                object,
                reason,
            })) => {
                assert_eq!((location.line, object_line), (5, 4));
                assert_eq!(
                    object.as_deref(),
                    Some("inetnum 198.51.100.0 - 198.51.100.255")
                );
                assert_eq!(reason, Malformed::LineTooLong { max: 65_536 });
            }
            other => panic!("{other:?}"),
        }
        assert!(
            reader.buf.capacity() <= 2 * 65_537,
            "{}",
            reader.buf.capacity()
        );
    }

    #[test]
    fn rpsl_limits_cap_attributes_and_object_size() {
        let limits = Limits {
            max_line: 100,
            max_attributes: 3,
            max_object_bytes: 60,
        };
        let text = b"a: 1\nb: 2\nc: 3\nd: 4\n\n\
            a: 1\nb: 0123456789012345678901234567890123456789\n+ 0123456789012345678901234567890123456789\n\n\
            a: ok\n";
        let items: Vec<String> = objects(&text[..], "cap")
            .with_limits(limits)
            .map(summary)
            .collect();
        assert_eq!(
            items,
            [
                "error cap:4: more than 3 attributes (object from line 1 skipped)",
                "error cap:8: object larger than 60 bytes (object from line 6 skipped)",
                "cap:10 10:a=ok",
            ]
        );
    }

    /// Yields its bytes, then fails.
    struct Failing<'a>(&'a [u8]);

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn rpsl_read_errors_end_the_file_with_their_place() {
        let reader = BufReader::new(Failing(b"role: R\nnic-hdl: R1\n\nrole: S\n"));
        let items: Vec<String> = objects(reader, "broken").map(summary).collect();
        assert_eq!(
            items,
            [
                "broken:1 1:role=R | 2:nic-hdl=R1",
                "error broken:5: cannot read: disk on fire",
            ]
        );
        // During the skip of a malformed object, the read error follows the skip report.
        let reader = BufReader::new(Failing(b"role: R\nno colon\nmore\n"));
        let items: Vec<String> = objects(reader, "broken").map(summary).collect();
        assert_eq!(
            items,
            [
                "error broken:2: line without a colon (object from line 1 skipped)",
                "error broken:4: cannot read: disk on fire",
            ]
        );
        let mut import = RegistryImport::new();
        let error = import
            .read(BufReader::new(Failing(b"role: R\n")), "broken")
            .unwrap_err();
        assert_eq!(error.to_string(), "broken:2: cannot read: disk on fire");
    }

    #[test]
    fn rpsl_mailbox_values_in_real_world_shapes() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("abuse@example.com", &["abuse@example.com"], &[]),
            ("Abuse@EXAMPLE.com.", &["Abuse@example.com"], &[]),
            ("abuse@example.com,", &["abuse@example.com"], &[]),
            ("abuse@example.com (preferred)", &["abuse@example.com"], &[]),
            (
                "abuse@example.com <abuse@example.com>",
                &["abuse@example.com"],
                &[],
            ),
            (
                "\"Abuse, Team\" <abuse@example.com>",
                &["abuse@example.com"],
                &[],
            ),
            (
                "abuse@example.com abuse@example.net",
                &["abuse@example.com", "abuse@example.net"],
                &[],
            ),
            (
                "abuse@example.com, ABUSE@example.COM; abuse@example.net",
                &["abuse@example.com", "abuse@example.net"],
                &[],
            ),
            (
                "\"abuse contact\"@example.com abuse@example.com",
                &["\"abuse contact\"@example.com", "abuse@example.com"],
                &[],
            ),
            ("\"abuse\"@example.com", &["abuse@example.com"], &[]),
            (
                "kevino'connor@example.org",
                &["kevino'connor@example.org"],
                &[],
            ),
            ("n&i@example.org", &["n&i@example.org"], &[]),
            ("<MAILTO:abuse@example.org>", &["abuse@example.org"], &[]),
            ("abuse (at) example.com", &[], &["abuse (at) example.com"]),
            ("abuse@", &[], &["abuse@"]),
            ("@example.com", &[], &["@example.com"]),
            ("abuse@localhost", &[], &["abuse@localhost"]),
            ("abuse@192.0.2.1", &[], &["abuse@192.0.2.1"]),
            ("ab..use@example.com", &[], &["ab..use@example.com"]),
            ("abuse@-example.com", &[], &["abuse@-example.com"]),
            (
                "abuse@example.com, junk@@example",
                &["abuse@example.com"],
                &["junk@@example"],
            ),
            ("", &[], &[]),
        ];
        for (value, addresses, rejected) in cases {
            let found = parse_mailboxes(value);
            assert_eq!(found.addresses, *addresses, "{value:?}");
            assert_eq!(found.rejected, *rejected, "{value:?}");
        }
    }

    #[test]
    fn rpsl_country_values() {
        for (value, expected) in [
            ("DE", Some("DE")),
            ("de", Some("DE")),
            ("DE NL FR", Some("DE")),
            ("EU", Some("EU")),
            ("Germany", None),
            ("D", None),
            ("", None),
            ("1A", None),
        ] {
            assert_eq!(normalise_country(value).as_deref(), expected, "{value:?}");
        }
    }

    #[test]
    fn rpsl_ranges() {
        assert_eq!(
            parse_inetnum("192.0.2.0-192.0.2.95").unwrap().to_cidrs(),
            [
                "192.0.2.0/26".parse::<IpNet>().unwrap(),
                "192.0.2.64/27".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_inetnum("192.0.2.0/25").unwrap().to_string(),
            "192.0.2.0/25"
        );
        assert_eq!(
            parse_inetnum("192.0.2.1/25"),
            Err(ProblemReason::HostBits("192.0.2.1/25".into()))
        );
        assert_eq!(
            parse_inetnum("2001:db8:: - 2001:db8::ff"),
            Err(ProblemReason::BadRange("2001:db8:: - 2001:db8::ff".into()))
        );
        assert_eq!(
            parse_inet6num("192.0.2.0/24"),
            Err(ProblemReason::BadRange("192.0.2.0/24".into()))
        );
        assert_eq!(
            parse_inetnum("0.0.0.0 - 255.255.255.255")
                .unwrap()
                .to_string(),
            "0.0.0.0/0"
        );
    }

    #[test]
    fn rpsl_problem_detail_is_capped_and_counts_stay_exact() {
        let mut text = String::new();
        for i in 0..MAX_PROBLEMS + 5 {
            text += &format!("inetnum: 10.0.0.{} - 10.0.0.0\n\n", i % 200 + 1);
        }
        let mut import = RegistryImport::new();
        import.read(text.as_bytes(), "many").unwrap();
        let data = import.finish();
        assert_eq!(data.problems.len(), MAX_PROBLEMS);
        assert_eq!(data.problems_total, MAX_PROBLEMS as u64 + 5);
        assert_eq!(data.skipped_objects, MAX_PROBLEMS as u64 + 5);
        assert!(data.networks.is_empty());
    }
}
