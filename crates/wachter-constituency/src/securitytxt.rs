//! RFC 9116 security.txt: the fields of a fetched file and what is wrong with it.
//!
//! Pure: [`SecurityTxt::parse`] takes the bytes of a file, the URL it was fetched from and
//! the time to judge `Expires` against; fetching (HTTPS, `/.well-known/`, content type,
//! redirects) is the caller's business. Parsing never fails and never panics: whatever the
//! bytes, the result holds the fields that could be read and a list of [`Finding`]s.
//! Finding codes are those of the `sectxt` validator (the one behind internet.nl) where one
//! exists, so a finding reads the same in wachter and in the reports CERTs already know;
//! [`FindingCode`] marks the few that are wachter's own.
//!
//! An OpenPGP cleartext-signed file is unwrapped (armor stripped, `- ` dash-escapes undone)
//! and its signed text parsed. The signature is NOT verified: `signed` only means "has the
//! shape of a signed file", not "signed by the owner of the domain".
//!
//! Field values keep their order, since the order of `Contact` fields is the owner's order
//! of preference; [`SecurityTxt::best_contact`] picks the one wachter mails when nothing
//! better is known.

use std::borrow::Cow;
use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Larger files are refused unread: real ones are a few hundred bytes, and the cap bounds
/// the work a hostile server can cause.
pub const MAX_BYTES: usize = 32 * 1024;

/// More lines than this are refused unread (a file of blank lines is not a security.txt).
pub const MAX_LINES: usize = 1000;

const SIGNED_MESSAGE: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_BEGIN: &str = "-----BEGIN PGP SIGNATURE-----";
const SIGNATURE_END: &str = "-----END PGP SIGNATURE-----";

/// How much a finding matters, in `sectxt`'s three lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The file breaks RFC 9116.
    Error,
    /// Allowed, but advised against.
    Recommendation,
    /// For information (an unknown field).
    Notice,
}

/// What a finding is about. [`FindingCode::as_str`] gives the `sectxt` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingCode {
    /// Larger than [`MAX_BYTES`] (wachter's own).
    TooLarge,
    /// More lines than [`MAX_LINES`] (wachter's own).
    TooManyLines,
    /// Not UTF-8; parsed with replacement characters.
    Utf8,
    /// Starts with a byte order mark.
    BomInFile,
    /// A line not ended by LF or CRLF (the last line, or a bare CR).
    NoLineSeparators,
    /// A signed file that does not have the cleartext-signature shape.
    SignedFormatIssue,
    /// Something other than blank lines after the signature.
    DataAfterSig,
    /// A line that is neither blank, a comment nor `Name: value`.
    InvalidLine,
    /// `: value` without a field name.
    EmptyKey,
    /// `Name:` without a value (wachter's own).
    EmptyValue,
    /// Whitespace before the colon.
    PrecWs,
    /// No space after the colon.
    NoSpace,
    /// No `Contact` field.
    NoContact,
    /// A field that must be a URI is not one.
    NoUri,
    /// A web URI that is not `https://`.
    NoHttps,
    /// A `mailto:` URI without a usable address (wachter's own).
    InvalidMailto,
    /// No `Expires` field.
    NoExpire,
    /// More than one `Expires` field.
    MultiExpire,
    /// `Expires` is not an RFC 3339 date-time.
    InvalidExpiry,
    /// `Expires` is in the past.
    Expired,
    /// `Expires` is more than a year ahead.
    LongExpiry,
    /// More than one `Preferred-Languages` field.
    MultiLang,
    /// A `Preferred-Languages` value that is not a language tag.
    InvalidLang,
    /// `Canonical` fields exist and none is the URL the file was fetched from.
    NoCanonicalMatch,
    /// A `CSAF` field that does not point to a `provider-metadata.json`.
    NoCsafFile,
    /// A `mailto:` contact and no `Encryption` field.
    NoEncryption,
    /// Not signed.
    NotSigned,
    /// Signed but without `Canonical`, so the signature says nothing about where it applies.
    NoCanonical,
    /// A field RFC 9116 and the IANA registry do not define (kept in `unknown_fields`).
    UnknownField,
}

impl FindingCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            FindingCode::TooLarge => "too_large",
            FindingCode::TooManyLines => "too_many_lines",
            FindingCode::Utf8 => "utf8",
            FindingCode::BomInFile => "bom_in_file",
            FindingCode::NoLineSeparators => "no_line_separators",
            FindingCode::SignedFormatIssue => "signed_format_issue",
            FindingCode::DataAfterSig => "data_after_sig",
            FindingCode::InvalidLine => "invalid_line",
            FindingCode::EmptyKey => "empty_key",
            FindingCode::EmptyValue => "empty_value",
            FindingCode::PrecWs => "prec_ws",
            FindingCode::NoSpace => "no_space",
            FindingCode::NoContact => "no_contact",
            FindingCode::NoUri => "no_uri",
            FindingCode::NoHttps => "no_https",
            FindingCode::InvalidMailto => "invalid_mailto",
            FindingCode::NoExpire => "no_expire",
            FindingCode::MultiExpire => "multi_expire",
            FindingCode::InvalidExpiry => "invalid_expiry",
            FindingCode::Expired => "expired",
            FindingCode::LongExpiry => "long_expiry",
            FindingCode::MultiLang => "multi_lang",
            FindingCode::InvalidLang => "invalid_lang",
            FindingCode::NoCanonicalMatch => "no_canonical_match",
            FindingCode::NoCsafFile => "no_csaf_file",
            FindingCode::NoEncryption => "no_encryption",
            FindingCode::NotSigned => "not_signed",
            FindingCode::NoCanonical => "no_canonical",
            FindingCode::UnknownField => "unknown_field",
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            FindingCode::LongExpiry
            | FindingCode::NoEncryption
            | FindingCode::NotSigned
            | FindingCode::NoCanonical => Severity::Recommendation,
            FindingCode::UnknownField => Severity::Notice,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with (or worth knowing about) a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: FindingCode,
    /// 1-based line of the fetched file (of the whole file, armor included, for a signed
    /// one); `None` for what concerns the file as a whole.
    pub line: Option<usize>,
    pub detail: String,
}

impl Finding {
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.code, self.detail),
            None => write!(f, "{}: {}", self.code, self.detail),
        }
    }
}

/// A `Contact` value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Contact {
    /// A `mailto:` URI's address, normalised: query dropped, percent-escapes decoded, domain
    /// in lower case.
    Email(String),
    /// An `http(s)://` URI, as written (`http` ones also get a `no_https` finding).
    Web(String),
    /// A `tel:` URI, as written.
    Phone(String),
    /// Anything else, as written: other schemes, and values that are not URIs at all.
    Other(String),
}

impl Contact {
    fn is_https(&self) -> bool {
        matches!(self, Contact::Web(url) if has_scheme(url, "https"))
    }
}

impl fmt::Display for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Email(address) => write!(f, "mailto:{address}"),
            Contact::Web(text) | Contact::Phone(text) | Contact::Other(text) => f.write_str(text),
        }
    }
}

/// The fields of a security.txt, in file order, and its findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityTxt {
    /// In the owner's order of preference; values that are not URIs are kept as
    /// [`Contact::Other`] (with a `no_uri` finding).
    pub contacts: Vec<Contact>,
    /// The first `Expires` that is a valid date-time.
    pub expires: Option<OffsetDateTime>,
    pub encryption: Vec<String>,
    pub acknowledgments: Vec<String>,
    pub canonical: Vec<String>,
    pub policy: Vec<String>,
    pub hiring: Vec<String>,
    /// Language tags of every `Preferred-Languages` field, as written.
    pub preferred_languages: Vec<String>,
    pub csaf: Vec<String>,
    /// Fields RFC 9116 does not define: (name as written, value).
    pub unknown_fields: Vec<(String, String)>,
    /// Has the shape of an OpenPGP cleartext-signed message (the signature is not verified).
    pub signed: bool,
    /// In file order; findings about the whole file last.
    pub findings: Vec<Finding>,
}

/// One line of the file: its 1-based number and its text without the line ending.
#[derive(Clone, Copy)]
struct Line<'a> {
    number: usize,
    text: &'a str,
}

impl SecurityTxt {
    /// Parses the bytes of a file fetched from `fetched_from` (the URL whose `Canonical`
    /// match is checked; after redirects, pass the one that should match), judging
    /// `Expires` against `now`.
    pub fn parse(bytes: &[u8], fetched_from: &str, now: OffsetDateTime) -> SecurityTxt {
        let mut parser = Parser::default();
        parser.run(bytes, fetched_from, now);
        let mut file = parser.file;
        // File order; the whole-file findings (no line) after the rest.
        file.findings
            .sort_by_key(|finding| finding.line.unwrap_or(usize::MAX));
        file
    }

    /// The contact wachter uses when nothing better is known: the first `mailto:` address,
    /// else the first `https://` URL. Whether the file is valid (expired, unsigned…) is for
    /// the caller to weigh with [`Self::findings`].
    pub fn best_contact(&self) -> Option<Contact> {
        self.contacts
            .iter()
            .find(|contact| matches!(contact, Contact::Email(_)))
            .or_else(|| self.contacts.iter().find(|contact| contact.is_https()))
            .cloned()
    }

    /// No finding of severity [`Severity::Error`].
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|finding| finding.severity() == Severity::Error)
    }

    pub fn has(&self, code: FindingCode) -> bool {
        self.findings.iter().any(|finding| finding.code == code)
    }
}

#[derive(Default)]
struct Parser {
    file: SecurityTxt,
    /// Line and value of every `Expires` field.
    expires: Vec<(usize, String)>,
    /// Line of every `Preferred-Languages` field.
    language_fields: Vec<usize>,
}

impl Parser {
    fn finding(&mut self, code: FindingCode, line: Option<usize>, detail: impl Into<String>) {
        self.file.findings.push(Finding {
            code,
            line,
            detail: detail.into(),
        });
    }

    fn run(&mut self, bytes: &[u8], fetched_from: &str, now: OffsetDateTime) {
        if bytes.len() > MAX_BYTES {
            self.finding(
                FindingCode::TooLarge,
                None,
                format!("{} bytes, more than {MAX_BYTES}: not read", bytes.len()),
            );
            return;
        }
        let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => {
                self.finding(
                    FindingCode::BomInFile,
                    Some(1),
                    "the file starts with a byte order mark",
                );
                rest
            }
            None => bytes,
        };
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(e) => {
                let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
                let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
                self.finding(
                    FindingCode::Utf8,
                    Some(line),
                    "not UTF-8: invalid bytes read as U+FFFD",
                );
                String::from_utf8_lossy(bytes)
            }
        };
        let Some(lines) = self.split_lines(&text) else {
            return;
        };
        self.unwrap_and_parse(&lines);
        self.whole_file_checks(fetched_from, now);
    }

    /// Splits on LF, CRLF and bare CR (flagging the bare CR and an unended last line), or
    /// refuses a file of more than [`MAX_LINES`] lines.
    fn split_lines<'a>(&mut self, text: &'a str) -> Option<Vec<Line<'a>>> {
        let mut lines = Vec::new();
        let mut rest = text;
        let findings_before = self.file.findings.len();
        while !rest.is_empty() {
            let number = lines.len() + 1;
            if number > MAX_LINES {
                self.file.findings.truncate(findings_before);
                self.finding(
                    FindingCode::TooManyLines,
                    None,
                    format!("more than {MAX_LINES} lines: not read"),
                );
                return None;
            }
            let (line, after) = match rest.find(['\n', '\r']) {
                None => {
                    self.finding(
                        FindingCode::NoLineSeparators,
                        Some(number),
                        "the last line does not end with a line break",
                    );
                    (rest, "")
                }
                Some(at) => {
                    let (line, ending) = rest.split_at(at);
                    if let Some(after) = ending.strip_prefix("\r\n") {
                        (line, after)
                    } else if let Some(after) = ending.strip_prefix('\n') {
                        (line, after)
                    } else {
                        self.finding(
                            FindingCode::NoLineSeparators,
                            Some(number),
                            "a line ends with a bare CR instead of LF or CRLF",
                        );
                        (line, ending.get(1..).unwrap_or_default())
                    }
                }
            };
            lines.push(Line { number, text: line });
            rest = after;
        }
        Some(lines)
    }

    /// Finds an OpenPGP cleartext signature, if any, and parses the text it signs.
    fn unwrap_and_parse(&mut self, lines: &[Line<'_>]) {
        let Some(start) = lines
            .iter()
            .position(|line| line.text.trim_end() == SIGNED_MESSAGE)
        else {
            for line in lines {
                self.parse_line(*line);
            }
            return;
        };
        self.file.signed = true;
        if start > 0 {
            self.finding(
                FindingCode::SignedFormatIssue,
                Some(lines[start].number),
                format!("a signed file must start with {SIGNED_MESSAGE}"),
            );
            // Text before the armor is parsed too, but the signature does not cover it.
            for line in &lines[..start] {
                self.parse_line(*line);
            }
        }
        let mut rest = lines.get(start + 1..).unwrap_or_default().iter().peekable();
        // Armor headers ("Hash: SHA512"), then one blank line.
        while rest
            .peek()
            .is_some_and(|line| line.text.to_ascii_lowercase().starts_with("hash:"))
        {
            rest.next();
        }
        match rest.peek() {
            Some(line) if line.text.trim().is_empty() => {
                rest.next();
            }
            Some(line) => {
                let number = line.number;
                self.finding(
                    FindingCode::SignedFormatIssue,
                    Some(number),
                    "no blank line between the armor headers and the signed text",
                );
            }
            None => {}
        }
        // The signed text, up to the signature.
        let mut signature_line = None;
        for line in rest.by_ref() {
            if line.text.trim_end() == SIGNATURE_BEGIN {
                signature_line = Some(line.number);
                break;
            }
            let text = match line.text.strip_prefix("- ") {
                Some(unescaped) => unescaped,
                None => {
                    if line.text.starts_with('-') {
                        self.finding(
                            FindingCode::SignedFormatIssue,
                            Some(line.number),
                            "a signed line starting with '-' is not dash-escaped",
                        );
                    }
                    line.text
                }
            };
            self.parse_line(Line {
                number: line.number,
                text,
            });
        }
        if signature_line.is_none() {
            self.finding(
                FindingCode::SignedFormatIssue,
                None,
                format!("no signature: {SIGNATURE_BEGIN} is missing"),
            );
            return;
        }
        if !rest
            .by_ref()
            .any(|line| line.text.trim_end() == SIGNATURE_END)
        {
            self.finding(
                FindingCode::SignedFormatIssue,
                None,
                format!("the signature is not closed: {SIGNATURE_END} is missing"),
            );
            return;
        }
        if let Some(line) = rest.find(|line| !line.text.trim().is_empty()) {
            self.finding(
                FindingCode::DataAfterSig,
                Some(line.number),
                "data after the signature (not covered by it, not read)",
            );
        }
    }

    fn parse_line(&mut self, line: Line<'_>) {
        let number = Some(line.number);
        let text = line.text;
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            return;
        }
        let Some((name_part, value_part)) = text.split_once(':') else {
            self.finding(
                FindingCode::InvalidLine,
                number,
                "neither blank, a comment nor a \"Name: value\" field",
            );
            return;
        };
        let name = name_part.trim();
        if name.is_empty() {
            self.finding(
                FindingCode::EmptyKey,
                number,
                "a value without a field name",
            );
            return;
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            self.finding(
                FindingCode::InvalidLine,
                number,
                "a field name holds more than letters, digits and '-'",
            );
            return;
        }
        if name.len() != name_part.len() {
            self.finding(
                FindingCode::PrecWs,
                number,
                format!("whitespace around the field name {name:?}, before the colon"),
            );
        }
        let value = value_part.trim();
        if value.is_empty() {
            self.finding(
                FindingCode::EmptyValue,
                number,
                format!("the {name} field has no value"),
            );
            return;
        }
        if !value_part.starts_with(' ') {
            self.finding(
                FindingCode::NoSpace,
                number,
                "the colon must be followed by a space",
            );
        }
        self.field(line.number, name, value);
    }

    fn field(&mut self, line: usize, name: &str, value: &str) {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "contact" => {
                let contact = self.contact(line, value);
                self.file.contacts.push(contact);
            }
            "expires" => self.expires.push((line, value.to_string())),
            "encryption" | "acknowledgments" | "canonical" | "policy" | "hiring" | "csaf" => {
                self.check_uri(line, name, value);
                if lower == "csaf" && !value.ends_with("/provider-metadata.json") {
                    self.finding(
                        FindingCode::NoCsafFile,
                        Some(line),
                        "a CSAF field must point to a provider-metadata.json",
                    );
                }
                let list = match lower.as_str() {
                    "encryption" => &mut self.file.encryption,
                    "acknowledgments" => &mut self.file.acknowledgments,
                    "canonical" => &mut self.file.canonical,
                    "policy" => &mut self.file.policy,
                    "hiring" => &mut self.file.hiring,
                    _ => &mut self.file.csaf,
                };
                list.push(value.to_string());
            }
            "preferred-languages" => {
                self.language_fields.push(line);
                for tag in value.split(',').map(str::trim) {
                    if !is_language_tag(tag) {
                        self.finding(
                            FindingCode::InvalidLang,
                            Some(line),
                            format!("{tag:?} is not a language tag (RFC 5646)"),
                        );
                    }
                    if !tag.is_empty() {
                        self.file.preferred_languages.push(tag.to_string());
                    }
                }
            }
            _ => {
                self.finding(
                    FindingCode::UnknownField,
                    Some(line),
                    format!("{name} is not a security.txt field (custom, or a typo)"),
                );
                self.file
                    .unknown_fields
                    .push((name.to_string(), value.to_string()));
            }
        }
    }

    /// Flags a value that is not a URI, or a web URI that is not HTTPS; returns the scheme.
    fn check_uri(&mut self, line: usize, name: &str, value: &str) -> Option<String> {
        let scheme = uri_scheme(value);
        match scheme.as_deref() {
            None => self.finding(
                FindingCode::NoUri,
                Some(line),
                format!(
                    "the {name} value {value:?} is not a URI (no scheme such as mailto: or https:)"
                ),
            ),
            Some("http") => self.finding(
                FindingCode::NoHttps,
                Some(line),
                format!("the {name} web URI must begin with https://"),
            ),
            _ => {}
        }
        scheme
    }

    fn contact(&mut self, line: usize, value: &str) -> Contact {
        let other = Contact::Other(value.to_string());
        match self.check_uri(line, "Contact", value).as_deref() {
            Some("mailto") => {
                let address = value.get("mailto:".len()..).and_then(normalise_mailto);
                match address {
                    Some(address) => Contact::Email(address),
                    None => {
                        self.finding(
                            FindingCode::InvalidMailto,
                            Some(line),
                            format!("{value:?} holds no usable e-mail address"),
                        );
                        other
                    }
                }
            }
            Some("https" | "http") if has_host(value) => Contact::Web(value.to_string()),
            Some("https" | "http") => {
                self.finding(
                    FindingCode::NoUri,
                    Some(line),
                    format!("{value:?} is not a web URI: no host after the scheme"),
                );
                other
            }
            Some("tel") => Contact::Phone(value.to_string()),
            _ => other,
        }
    }

    fn whole_file_checks(&mut self, fetched_from: &str, now: OffsetDateTime) {
        if self.file.contacts.is_empty() {
            self.finding(
                FindingCode::NoContact,
                None,
                "no Contact field (at least one is required)",
            );
        }
        let expires = std::mem::take(&mut self.expires);
        if expires.is_empty() {
            self.finding(
                FindingCode::NoExpire,
                None,
                "no Expires field (exactly one is required)",
            );
        }
        for (index, (line, value)) in expires.iter().enumerate() {
            if index > 0 {
                self.finding(
                    FindingCode::MultiExpire,
                    Some(*line),
                    "a second Expires field (exactly one is allowed)",
                );
            }
            let Ok(when) = OffsetDateTime::parse(value, &Rfc3339) else {
                self.finding(
                    FindingCode::InvalidExpiry,
                    Some(*line),
                    format!("{value:?} is not an RFC 3339 date-time"),
                );
                continue;
            };
            if self.file.expires.is_some() {
                continue;
            }
            self.file.expires = Some(when);
            if when < now {
                self.finding(
                    FindingCode::Expired,
                    Some(*line),
                    format!("expired on {value}"),
                );
            } else if when - now > Duration::days(365) {
                self.finding(
                    FindingCode::LongExpiry,
                    Some(*line),
                    "Expires should be less than a year ahead",
                );
            }
        }
        if let Some(second) = self.language_fields.get(1).copied() {
            self.finding(
                FindingCode::MultiLang,
                Some(second),
                "a second Preferred-Languages field (at most one is allowed)",
            );
        }
        if !self.file.canonical.is_empty()
            && !self
                .file
                .canonical
                .iter()
                .any(|canonical| same_url(canonical, fetched_from))
        {
            self.finding(
                FindingCode::NoCanonicalMatch,
                None,
                format!("fetched from {fetched_from}, which no Canonical field lists"),
            );
        }
        let has_email = self
            .file
            .contacts
            .iter()
            .any(|contact| matches!(contact, Contact::Email(_)));
        if has_email && self.file.encryption.is_empty() {
            self.finding(
                FindingCode::NoEncryption,
                None,
                "an e-mail contact and no Encryption field",
            );
        }
        if self.file.signed {
            if self.file.canonical.is_empty() {
                self.finding(
                    FindingCode::NoCanonical,
                    None,
                    "a signed file should name where it applies with Canonical",
                );
            }
        } else {
            self.finding(
                FindingCode::NotSigned,
                None,
                "not signed (OpenPGP cleartext signature recommended)",
            );
        }
    }
}

/// The scheme of a URI, lower case (`scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn uri_scheme(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_is_letter = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let valid = first_is_letter
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !value.contains(char::is_whitespace);
    valid.then(|| scheme.to_ascii_lowercase())
}

/// `scheme://host…` with a non-empty host.
fn has_host(value: &str) -> bool {
    value.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|authority| !authority.is_empty())
    })
}

fn has_scheme(value: &str, scheme: &str) -> bool {
    uri_scheme(value).is_some_and(|s| s == scheme)
}

/// The address of a `mailto:` URI's body: first address, no query, percent-escapes
/// decoded, domain in lower case; `None` when it is not `local@domain.tld`.
fn normalise_mailto(body: &str) -> Option<String> {
    let addresses = body.split(['?', '#']).next()?;
    let decoded = percent_decode(addresses)?;
    let address = decoded.split(',').next()?.trim();
    let (local, domain) = address.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@'));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    (local_ok && domain_ok).then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// `%XX` escapes decoded; `None` on a broken escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A simplified RFC 5646 check: a 2-8 letter primary subtag (or `x`/`i` for private and
/// grandfathered tags), then subtags of 1-8 letters and digits.
fn is_language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    let primary_ok = subtags.next().is_some_and(|primary| {
        primary.bytes().all(|b| b.is_ascii_alphabetic())
            && ((2..=8).contains(&primary.len())
                || primary.eq_ignore_ascii_case("x")
                || primary.eq_ignore_ascii_case("i"))
    });
    primary_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// URLs equal up to the case of scheme and host, a default port and an empty path.
fn same_url(a: &str, b: &str) -> bool {
    normalise_url(a) == normalise_url(b)
}

fn normalise_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    if !default_port.is_empty()
        && let Some(host) = authority.strip_suffix(default_port)
    {
        authority = host.to_string();
    }
    let path = if path.is_empty() { "/" } else { path };
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::path::{Path, PathBuf};
    use wachter_core::order::SplitMix64;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/securitytxt")
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    /// `<name>.expect.toml` next to each `<name>.txt`. Every list is asserted exactly
    /// (absent means empty); findings are `code` or `code@line`, in the order returned.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Expected {
        url: String,
        now: String,
        signed: bool,
        findings: Vec<String>,
        contacts: Vec<String>,
        /// Empty for none.
        best_contact: String,
        /// RFC 3339, empty for none.
        expires: String,
        #[serde(default)]
        encryption: Vec<String>,
        #[serde(default)]
        acknowledgments: Vec<String>,
        #[serde(default)]
        canonical: Vec<String>,
        #[serde(default)]
        policy: Vec<String>,
        #[serde(default)]
        hiring: Vec<String>,
        #[serde(default)]
        preferred_languages: Vec<String>,
        #[serde(default)]
        csaf: Vec<String>,
        /// `Name: value`.
        #[serde(default)]
        unknown_fields: Vec<String>,
    }

    fn finding_labels(file: &SecurityTxt) -> Vec<String> {
        file.findings
            .iter()
            .map(|f| match f.line {
                Some(line) => format!("{}@{line}", f.code),
                None => f.code.to_string(),
            })
            .collect()
    }

    fn check_fixture(txt: &Path) {
        let name = txt.file_name().unwrap().to_string_lossy().to_string();
        let expect_path =
            txt.with_file_name(format!("{}.expect.toml", name.trim_end_matches(".txt")));
        let want: Expected = toml::from_str(
            &std::fs::read_to_string(&expect_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let bytes = std::fs::read(txt).unwrap();
        let file = SecurityTxt::parse(&bytes, &want.url, at(&want.now));

        assert_eq!(
            finding_labels(&file),
            want.findings,
            "{name}: findings {:#?}",
            file.findings
        );
        assert_eq!(file.signed, want.signed, "{name}: signed");
        let contacts: Vec<String> = file.contacts.iter().map(ToString::to_string).collect();
        assert_eq!(contacts, want.contacts, "{name}: contacts");
        let best = file
            .best_contact()
            .map(|c| c.to_string())
            .unwrap_or_default();
        assert_eq!(best, want.best_contact, "{name}: best contact");
        let expires = file
            .expires
            .map(|e| e.format(&Rfc3339).unwrap())
            .unwrap_or_default();
        assert_eq!(expires, want.expires, "{name}: expires");
        assert_eq!(file.encryption, want.encryption, "{name}: encryption");
        assert_eq!(
            file.acknowledgments, want.acknowledgments,
            "{name}: acknowledgments"
        );
        assert_eq!(file.canonical, want.canonical, "{name}: canonical");
        assert_eq!(file.policy, want.policy, "{name}: policy");
        assert_eq!(file.hiring, want.hiring, "{name}: hiring");
        assert_eq!(
            file.preferred_languages, want.preferred_languages,
            "{name}: preferred languages"
        );
        assert_eq!(file.csaf, want.csaf, "{name}: csaf");
        let unknown: Vec<String> = file
            .unknown_fields
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        assert_eq!(unknown, want.unknown_fields, "{name}: unknown fields");
        let only_advice = want.findings.iter().all(|f| {
            [
                "not_signed",
                "no_encryption",
                "no_canonical",
                "long_expiry",
                "unknown_field",
            ]
            .contains(&f.split('@').next().unwrap())
        });
        assert_eq!(file.is_valid(), only_advice, "{name}: is_valid");
    }

    #[test]
    fn securitytxt_fixtures_give_exactly_the_expected_outcomes() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        paths.sort();
        assert!(paths.len() >= 12, "only {} fixtures found", paths.len());
        for path in paths {
            check_fixture(&path);
        }
    }

    fn parse(text: &str) -> SecurityTxt {
        SecurityTxt::parse(
            text.as_bytes(),
            "https://example.com/.well-known/security.txt",
            at("2025-06-01T00:00:00Z"),
        )
    }

    #[test]
    fn securitytxt_best_contact_prefers_mail_then_https() {
        let file = parse(
            "Contact: tel:+31-20-555-0100\nContact: http://example.com/a\n\
             Contact: https://example.com/b\nContact: mailto:b@example.com\n\
             Contact: mailto:c@example.com\n",
        );
        assert_eq!(
            file.best_contact(),
            Some(Contact::Email("b@example.com".into()))
        );
        let file = parse(
            "Contact: tel:+31-20-555-0100\nContact: http://example.com/a\nContact: HTTPS://example.com/b\n",
        );
        assert_eq!(
            file.best_contact(),
            Some(Contact::Web("HTTPS://example.com/b".into()))
        );
        let file = parse("Contact: tel:+31-20-555-0100\nContact: http://example.com/a\n");
        assert_eq!(file.best_contact(), None);
        let file = parse("Contact: https:/example.com\nContact: https://\n");
        assert_eq!(file.best_contact(), None);
        assert_eq!(
            finding_labels(&file)[..2],
            ["no_uri@1".to_string(), "no_uri@2".to_string()]
        );
    }

    #[test]
    fn securitytxt_mailto_addresses_are_normalised() {
        let cases = [
            (
                "security%2Bcert@Example.COM?subject=x",
                Some("security+cert@example.com"),
            ),
            ("a@x.example,b@y.example", Some("a@x.example")),
            ("CSIRT@bücher.example", Some("CSIRT@bücher.example")),
            ("no-at-sign.example", None),
            ("a@localhost", None),
            ("a@-bad.example", None),
            ("@example.com", None),
            ("a b@example.com", None),
            ("a%4@example.com", None),
            ("a%FF@example.com", None),
        ];
        for (body, want) in cases {
            assert_eq!(normalise_mailto(body).as_deref(), want, "{body}");
        }
    }

    #[test]
    fn securitytxt_canonical_urls_compare_case_and_port_insensitively() {
        assert!(same_url(
            "https://Example.COM:443/.well-known/security.txt",
            "https://example.com/.well-known/security.txt"
        ));
        assert!(same_url("https://example.com", "https://example.com/"));
        assert!(!same_url(
            "https://example.com/.well-known/Security.txt",
            "https://example.com/.well-known/security.txt"
        ));
        assert!(!same_url(
            "http://example.com/.well-known/security.txt",
            "https://example.com/.well-known/security.txt"
        ));
    }

    #[test]
    fn securitytxt_language_tags() {
        for ok in [
            "en",
            "nl",
            "EN",
            "de-CH",
            "zh-Hant-TW",
            "x-klingon",
            "sgn-BE-FR",
        ] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in [
            "",
            "e",
            "english_UK",
            "en-",
            "toolongtag",
            "1e",
            "en-abcdefghi",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn securitytxt_expiry_bounds() {
        let long = parse("Contact: https://example.com/s\nExpires: 2026-06-02T00:00:00Z\n");
        assert_eq!(finding_labels(&long), ["long_expiry@2", "not_signed"]);
        assert!(long.is_valid());
        let edge = parse("Contact: https://example.com/s\nExpires: 2026-06-01T00:00:00Z\n");
        assert_eq!(finding_labels(&edge), ["not_signed"]);
        let offset = parse("Contact: https://example.com/s\nExpires: 2025-06-01T01:30:00+02:00\n");
        assert_eq!(finding_labels(&offset), ["expired@2", "not_signed"]);
    }

    #[test]
    fn securitytxt_bare_cr_and_bad_utf8_are_reported_and_read() {
        let file = parse("Contact: mailto:a@example.com\rExpires: 2025-12-31T23:00:00Z\r");
        assert_eq!(
            finding_labels(&file),
            [
                "no_line_separators@1",
                "no_line_separators@2",
                "no_encryption",
                "not_signed"
            ]
        );
        assert_eq!(file.contacts, [Contact::Email("a@example.com".into())]);

        let bytes = b"# \xff\xfe\nContact: mailto:a@example.com\nExpires: 2025-12-31T23:00:00Z\n";
        let file = SecurityTxt::parse(bytes, "https://example.com/", at("2025-06-01T00:00:00Z"));
        assert_eq!(
            finding_labels(&file),
            ["utf8@1", "no_encryption", "not_signed"]
        );
        assert!(file.expires.is_some());
    }

    #[test]
    fn securitytxt_empty_and_oversized_files() {
        let empty = parse("");
        assert_eq!(
            finding_labels(&empty),
            ["no_contact", "no_expire", "not_signed"]
        );
        let big = "# padding\n".repeat(MAX_BYTES / 10 + 1);
        let file = parse(&big);
        assert_eq!(finding_labels(&file), ["too_large"]);
        let many = "\n".repeat(MAX_LINES + 1);
        let file = parse(&many);
        assert_eq!(finding_labels(&file), ["too_many_lines"]);
        let enough = format!(
            "{}Contact: https://example.com/s\nExpires: 2025-12-31T23:00:00Z\n",
            "\n".repeat(MAX_LINES - 2)
        );
        assert_eq!(finding_labels(&parse(&enough)), ["not_signed"]);
    }

    #[test]
    fn securitytxt_field_names_are_case_insensitive() {
        let file = parse(
            "CONTACT: https://example.com/s\nexpires: 2025-12-31T23:00:00Z\npreferred-LANGUAGES: en\n",
        );
        assert_eq!(finding_labels(&file), ["not_signed"]);
        assert_eq!(file.preferred_languages, ["en"]);
    }

    #[test]
    fn securitytxt_signature_armor_not_at_the_top() {
        let file = parse(
            "\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\
             Contact: https://example.com/s\nExpires: 2025-12-31T23:00:00Z\n\
             Canonical: https://example.com/.well-known/security.txt\n\
             -----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
        );
        assert_eq!(finding_labels(&file), ["signed_format_issue@2"]);
        assert!(file.signed);
    }

    #[test]
    fn securitytxt_hostile_bytes_never_panic() {
        const PIECES: &[&[u8]] = &[
            b"Contact",
            b"Expires",
            b"Canonical",
            b"Preferred-Languages",
            b"CSAF",
            b":",
            b": ",
            b" ",
            b"\n",
            b"\r\n",
            b"\r",
            b"mailto:",
            b"https://",
            b"http://",
            b"@",
            b"%",
            b"%4",
            b"%c3%a9",
            b",",
            b"-",
            b"- ",
            b"#",
            b"\xef\xbb\xbf",
            b"\xff",
            b"\xc3",
            b"\xe2\x80\xa8",
            b"2025-12-31T23:00:00Z",
            b"9999-12-31T23:59:59Z",
            b"0000-01-01T00:00:00+23:59",
            b"-----BEGIN PGP SIGNED MESSAGE-----\n",
            b"Hash: SHA256\n",
            b"-----BEGIN PGP SIGNATURE-----\n",
            b"-----END PGP SIGNATURE-----\n",
            b"example.com",
            b"\xc3\xa9",
            b"\0",
        ];
        let mut rng = SplitMix64(0x05ec_7e47_f022);
        let now = at("2025-06-01T00:00:00Z");
        for round in 0..5000 {
            let mut bytes = Vec::new();
            let target = if round % 50 == 0 {
                4000
            } else {
                rng.below(120) as usize
            };
            for _ in 0..target {
                if rng.below(6) as usize == 0 {
                    bytes.push(rng.next_u64() as u8);
                } else {
                    bytes.extend_from_slice(PIECES[rng.below(PIECES.len() as u64) as usize]);
                }
            }
            let file =
                SecurityTxt::parse(&bytes, "https://example.com/.well-known/security.txt", now);
            let lines = bytes
                .iter()
                .filter(|b| **b == b'\n' || **b == b'\r')
                .count()
                + 1;
            for finding in &file.findings {
                assert!(finding.line.is_none_or(|l| l <= lines), "{finding}");
            }
            let _ = file.best_contact();
        }
    }
}
