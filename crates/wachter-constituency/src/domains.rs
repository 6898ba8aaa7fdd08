//! Names seen in a scan matched to organisation domains.
//!
//! A scan sees names: the subject CN and SANs of a TLS certificate, the PTR name of the
//! address, the hostname a target came with. Each may say whose host it is. This module
//! normalises such names (they come from certificates, so they are hostile input) and
//! finds the organisation whose domain they fall under.
//!
//! The rules, and why:
//!
//! - **Normalised, or refused.** Whitespace trimmed, lowercased, one trailing dot stripped;
//!   labels of letters, digits, `-` and `_` (PTR names carry underscores), at most 63
//!   characters, at most 253 for the name; a last label of digits only is an IP address,
//!   not a name. Anything else is refused with its reason rather than guessed at.
//! - **IDN in punycode only.** Names are compared as ASCII A-labels (`xn--…`), which is also
//!   what certificates (RFC 5280 dNSName is an IA5String) and DNS carry. A name with
//!   non-ASCII characters is refused: converting it would need UTS #46 mapping and
//!   normalisation tables, which no dependency here provides, and a half-right conversion
//!   would attribute a look-alike name to the wrong organisation.
//! - **Label boundaries.** `vpn.example.nl` falls under `example.nl`; `evilexample.nl` does
//!   not. Lookup walks up the labels of the name, so it costs one hash look-up per label
//!   whatever the number of organisations.
//! - **Most specific wins.** When both `example.nl` and `zorg.example.nl` are organisation
//!   domains, `host.zorg.example.nl` belongs to the second.
//! - **Wildcards count for the parent.** A certificate for `*.example.nl` is for the owner
//!   of `example.nl` (DIVD found wildcard certificates on more than 450 of about 700 Citrix
//!   systems); the match says it came through a wildcard.
//! - **No public suffix as an organisation domain.** An organisation listing `nl`, `co.uk`
//!   or `github.io` (the Public Suffix List, private section included) would claim every
//!   name under it; the index refuses such a domain when it is built.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// The longest name in text form, without the trailing dot (RFC 1035: 255 octets on the
/// wire).
pub const MAX_NAME_LEN: usize = 253;
/// The longest label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("empty name")]
    Empty,
    #[error("{len} characters, longer than the {MAX_NAME_LEN} a DNS name may have")]
    TooLong { len: usize },
    #[error("a label of {len} characters, longer than the {MAX_LABEL_LEN} a label may have")]
    LabelTooLong { len: usize },
    #[error("an empty label (a leading dot or `..`)")]
    EmptyLabel,
    #[error("non-ASCII characters: give internationalised names in punycode (xn--…)")]
    NonAscii,
    #[error("the character {0:?} is not allowed in a host name (letters, digits, `-`, `_`)")]
    InvalidChar(char),
    #[error("a label starts or ends with `-`")]
    Hyphen,
    #[error("`*` is only allowed as the whole leftmost label (`*.example.nl`)")]
    Wildcard,
    #[error("the last label is all digits (an IP address is not a name)")]
    NumericTld,
}

/// A name that was refused, shown escaped and shortened (it may be kilobytes of garbage).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct NameError {
    pub name: String,
    pub problem: NameProblem,
}

impl NameError {
    fn new(input: &str, problem: NameProblem) -> Self {
        NameError {
            name: shown(input),
            problem,
        }
    }
}

/// `input` quoted and escaped, cut after 64 characters.
fn shown(input: &str) -> String {
    const KEEP: usize = 64;
    match input.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &input[..cut], input.len()),
        None => format!("{input:?}"),
    }
}

/// What kind of public suffix an organisation domain turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuffixKind {
    /// The ICANN section of the Public Suffix List (`nl`, `co.uk`).
    Icann,
    /// The private section: domains whose owner hands out subdomains (`github.io`).
    Private,
    /// Not in the list at all: a single label or an unknown top-level domain, which the
    /// list's default rule treats as a suffix.
    Unlisted,
}

impl fmt::Display for SuffixKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SuffixKind::Icann => "ICANN section of the Public Suffix List",
            SuffixKind::Private => "private section of the Public Suffix List",
            SuffixKind::Unlisted => "a top-level name not in the Public Suffix List",
        })
    }
}

/// Why an organisation domain was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("organisation domain {0}")]
    Name(#[from] NameError),
    #[error(
        "organisation domain {domain:?} is a public suffix ({kind}): every name under it \
         would count as this organisation's"
    )]
    PublicSuffix { domain: String, kind: SuffixKind },
    #[error(
        "organisation domain \"*.{domain}\": give the domain itself ({domain:?}), its \
         subdomains are included"
    )]
    Wildcard { domain: String },
}

/// A normalised name: lowercase ASCII, no trailing dot, valid labels. A wildcard name keeps
/// its base (`example.nl` for `*.example.nl`) and remembers that it was one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    base: String,
    wildcard: bool,
}

impl Name {
    /// Normalises `input` or says why not.
    pub fn parse(input: &str) -> Result<Name, NameError> {
        let (base, wildcard) = normalise(input)?;
        Ok(Name {
            base: base.into_owned(),
            wildcard,
        })
    }

    /// The name without `*.`: the domain a wildcard stands for.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The registrable domain (`example.nl` for `vpn.example.nl` or `*.example.nl`), or
    /// `None` when the name is itself a public suffix.
    pub fn registrable(&self) -> Option<&str> {
        psl::domain_str(&self.base)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.base)
    }
}

/// The registrable domain of a scanned name (`example.co.uk` for `*.vpn.example.co.uk`):
/// `None` for a name that is refused or is itself a public suffix.
pub fn registrable(name: &str) -> Option<String> {
    let (base, _) = normalise(name).ok()?;
    psl::domain_str(&base).map(str::to_string)
}

/// Normalises an organisation domain: a valid name, no wildcard, not a public suffix.
pub fn normalise_org_domain(domain: &str) -> Result<String, DomainError> {
    let (base, wildcard) = normalise(domain)?;
    if wildcard {
        return Err(DomainError::Wildcard {
            domain: base.into_owned(),
        });
    }
    if let Some(suffix) = psl::suffix(base.as_bytes())
        && suffix.trim().as_bytes() == base.as_bytes()
    {
        let kind = match suffix.typ() {
            Some(psl::Type::Icann) => SuffixKind::Icann,
            Some(psl::Type::Private) => SuffixKind::Private,
            None => SuffixKind::Unlisted,
        };
        return Err(DomainError::PublicSuffix {
            domain: base.into_owned(),
            kind,
        });
    }
    Ok(base.into_owned())
}

/// Checks and normalises a name: the base (without `*.`), lowercase, borrowed when the input
/// already was, and whether it was a wildcard.
fn normalise(input: &str) -> Result<(Cow<'_, str>, bool), NameError> {
    let err = |problem| NameError::new(input, problem);
    let name = input.trim();
    if name.is_empty() {
        return Err(err(NameProblem::Empty));
    }
    // Refuse giant input before looking at every byte of it; "*." and a trailing dot extra.
    if name.len() > MAX_NAME_LEN + 3 {
        return Err(err(NameProblem::TooLong { len: name.len() }));
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let (base, wildcard) = match name.strip_prefix("*.") {
        Some(rest) => (rest, true),
        None => (name, false),
    };
    if base.is_empty() {
        return Err(err(if name.is_empty() {
            NameProblem::Empty
        } else {
            NameProblem::EmptyLabel
        }));
    }
    if base.len() > MAX_NAME_LEN {
        return Err(err(NameProblem::TooLong { len: base.len() }));
    }
    if !base.is_ascii() {
        return Err(err(NameProblem::NonAscii));
    }
    let mut upper = false;
    let mut last = "";
    for label in base.split('.') {
        if label.is_empty() {
            return Err(err(NameProblem::EmptyLabel));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(err(NameProblem::LabelTooLong { len: label.len() }));
        }
        for b in label.bytes() {
            match b {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
                b'A'..=b'Z' => upper = true,
                b'*' => return Err(err(NameProblem::Wildcard)),
                other => return Err(err(NameProblem::InvalidChar(char::from(other)))),
            }
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err(NameProblem::Hyphen));
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(NameProblem::NumericTld));
    }
    let base = if upper {
        Cow::Owned(base.to_ascii_lowercase())
    } else {
        Cow::Borrowed(base)
    };
    Ok((base, wildcard))
}

/// A name matched to an organisation domain.
#[derive(Debug, PartialEq, Eq)]
pub struct DomainMatch<'a, V> {
    /// The organisation domain that matched, as the index holds it.
    pub domain: &'a str,
    /// Everything indexed under that domain, in insertion order: one organisation as a rule,
    /// more when several list the same domain.
    pub values: &'a [V],
    /// The name was a wildcard (`*.example.nl`) and matched through its base.
    pub wildcard: bool,
}

impl<V> Clone for DomainMatch<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for DomainMatch<'_, V> {}

/// Organisation domains to values (organisation ids, as a rule), looked up by scanned name.
#[derive(Clone, Debug)]
pub struct DomainIndex<V> {
    by_domain: HashMap<Box<str>, Vec<V>>,
}

impl<V> Default for DomainIndex<V> {
    fn default() -> Self {
        DomainIndex {
            by_domain: HashMap::new(),
        }
    }
}

impl<V> DomainIndex<V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index from (domain, value) pairs, refusing the first domain that is not a
    /// name or is a public suffix. To report every bad domain, use [`DomainIndex::insert`].
    pub fn build<I, S>(pairs: I) -> Result<Self, DomainError>
    where
        I: IntoIterator<Item = (S, V)>,
        S: AsRef<str>,
    {
        let mut index = Self::new();
        for (domain, value) in pairs {
            index.insert(domain.as_ref(), value)?;
        }
        Ok(index)
    }

    /// Adds one organisation domain (a registrable domain or a subdomain of one).
    pub fn insert(&mut self, domain: &str, value: V) -> Result<(), DomainError> {
        let domain = normalise_org_domain(domain)?;
        self.by_domain
            .entry(domain.into_boxed_str())
            .or_default()
            .push(value);
        Ok(())
    }

    /// The most specific organisation domain `name` falls under, or `None` (also for a
    /// name that is refused: garbage attributes nothing).
    pub fn lookup(&self, name: &str) -> Option<DomainMatch<'_, V>> {
        let (base, wildcard) = normalise(name).ok()?;
        self.lookup_base(&base, wildcard)
    }

    /// [`DomainIndex::lookup`] for a name already parsed.
    pub fn lookup_name(&self, name: &Name) -> Option<DomainMatch<'_, V>> {
        self.lookup_base(&name.base, name.wildcard)
    }

    /// Walks up the labels, longest suffix first: one hash look-up per label.
    fn lookup_base(&self, base: &str, wildcard: bool) -> Option<DomainMatch<'_, V>> {
        let mut candidate = base;
        loop {
            if let Some((domain, values)) = self.by_domain.get_key_value(candidate) {
                return Some(DomainMatch {
                    domain,
                    values,
                    wildcard,
                });
            }
            let (_, parent) = candidate.split_once('.')?;
            candidate = parent;
        }
    }

    /// The number of distinct organisation domains.
    pub fn len(&self) -> usize {
        self.by_domain.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The organisation domains, in no particular order.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.by_domain.keys().map(|d| &**d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORGS: &str = include_str!("../tests/fixtures/domains/orgs.tsv");
    const NAMES: &str = include_str!("../tests/fixtures/domains/names.tsv");

    /// Lines of a fixture: tab-separated fields, `#` comments and blank lines skipped.
    fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|(i, l)| (i + 1, l.split('\t').map(str::trim).collect()))
    }

    fn fixture_index() -> DomainIndex<String> {
        DomainIndex::build(rows(ORGS).map(|(_, f)| (f[0].to_string(), f[1].to_string()))).unwrap()
    }

    #[test]
    fn fixture_names_match_the_expected_organisation() {
        let index = fixture_index();
        let mut checked = 0;
        for (line, f) in rows(NAMES) {
            let (name, want_domain, want_org, want_wildcard) = (f[0], f[1], f[2], f[3]);
            let got = index.lookup(name);
            let at = format!("names.tsv:{line}: {name:?}");
            if want_domain == "-" {
                assert_eq!(got, None, "{at}");
            } else {
                let got = got.unwrap_or_else(|| panic!("{at}: no match"));
                assert_eq!(got.domain, want_domain, "{at}");
                assert_eq!(got.values, [want_org.to_string()], "{at}");
                assert_eq!(got.wildcard, want_wildcard == "wildcard", "{at}");
            }
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} cases");
    }

    #[test]
    fn names_are_normalised() {
        for (input, base, wildcard) in [
            ("example.nl", "example.nl", false),
            ("  VPN.Example.NL.  ", "vpn.example.nl", false),
            ("*.Example.nl", "example.nl", true),
            ("*.example.nl.", "example.nl", true),
            ("xn--bcher-kva.example", "xn--bcher-kva.example", false),
            ("_dmarc.example.nl", "_dmarc.example.nl", false),
            ("host-1.a--b.example.nl", "host-1.a--b.example.nl", false),
            ("localhost", "localhost", false),
            ("1.2.3.example", "1.2.3.example", false),
        ] {
            let name = Name::parse(input).unwrap();
            assert_eq!(
                (name.base(), name.is_wildcard()),
                (base, wildcard),
                "{input:?}"
            );
        }
        assert_eq!(
            Name::parse("*.EXAMPLE.nl").unwrap().to_string(),
            "*.example.nl"
        );
    }

    #[test]
    fn hostile_names_are_refused_with_their_reason() {
        let long_label = format!("{}.example.nl", "a".repeat(300));
        let label_64 = format!("{}.example.nl", "a".repeat(64));
        let label_200 = format!("{}.example.nl", "a".repeat(200));
        let label_63 = format!("{}.example.nl", "a".repeat(63));
        let label = "a".repeat(62);
        let name_254 = format!("{label}.{label}.{label}.{label}.nl");
        let name_253 = format!("{label}.{label}.{label}.{}.nl", "a".repeat(61));
        let huge = "x".repeat(1 << 20);
        use NameProblem::*;
        for (input, problem) in [
            ("", Empty),
            ("   ", Empty),
            (".", Empty),
            ("*.", Wildcard),
            ("..", EmptyLabel),
            ("example..nl", EmptyLabel),
            (".example.nl", EmptyLabel),
            ("example.nl..", EmptyLabel),
            ("ex\0ample.nl", InvalidChar('\0')),
            ("example.nl\0", InvalidChar('\0')),
            ("exa mple.nl", InvalidChar(' ')),
            ("example.nl\r\nHost: evil", InvalidChar('\r')),
            ("example.nl/path", InvalidChar('/')),
            ("user@example.nl", InvalidChar('@')),
            ("[2001:db8::1]", InvalidChar('[')),
            ("2001:db8::1", InvalidChar(':')),
            ("example.nl:443", InvalidChar(':')),
            ("bücher.example", NonAscii),
            ("ехаmple.nl", NonAscii),
            ("example.n\u{200b}l", NonAscii),
            ("*", Wildcard),
            ("*.*.example.nl", Wildcard),
            ("f*o.example.nl", Wildcard),
            ("vpn.*.example.nl", Wildcard),
            ("-vpn.example.nl", Hyphen),
            ("vpn-.example.nl", Hyphen),
            ("192.0.2.1", NumericTld),
            ("10.0.0.1.", NumericTld),
            // The whole name is measured first: 300 + ".example.nl".
            (&long_label, TooLong { len: 311 }),
            (&label_200, LabelTooLong { len: 200 }),
            (&label_64, LabelTooLong { len: 64 }),
            (&name_254, TooLong { len: 254 }),
            (&huge, TooLong { len: 1 << 20 }),
        ] {
            let err = Name::parse(input).unwrap_err();
            assert_eq!(err.problem, problem, "{:?}", shown(input));
            assert!(err.name.len() < 120, "shown name is cut: {}", err.name);
        }
        assert!(Name::parse(&label_63).is_ok());
        assert!(Name::parse(&name_253).is_ok());
        let err = Name::parse("ex\0ample.nl").unwrap_err().to_string();
        assert_eq!(
            err,
            "\"ex\\0ample.nl\": the character '\\0' is not allowed in a host name (letters, \
             digits, `-`, `_`)"
        );
    }

    #[test]
    fn hostile_names_match_nothing() {
        let index = fixture_index();
        for name in [
            "ex\0ample.nl",
            "vpn.example.nl\0",
            "vpn example.nl",
            "vpn..example.nl",
            "*.*.example.nl",
            "vpn.exämple.nl",
        ] {
            assert_eq!(index.lookup(name), None, "{name:?}");
        }
        let long = format!("{}.example.nl", "a".repeat(300));
        assert_eq!(index.lookup(&long), None);
    }

    #[test]
    fn public_suffixes_are_refused_as_organisation_domains() {
        for (domain, kind) in [
            ("nl", SuffixKind::Icann),
            ("NL.", SuffixKind::Icann),
            ("co.uk", SuffixKind::Icann),
            ("xn--p1ai", SuffixKind::Icann),
            ("foo.ck", SuffixKind::Icann),
            ("github.io", SuffixKind::Private),
            ("blogspot.com", SuffixKind::Private),
            ("s3.amazonaws.com", SuffixKind::Private),
            ("intranet", SuffixKind::Unlisted),
            ("localhost", SuffixKind::Unlisted),
        ] {
            let err = DomainIndex::build([(domain, 1)]).unwrap_err();
            let DomainError::PublicSuffix { kind: got, .. } = &err else {
                panic!("{domain}: {err}");
            };
            assert_eq!(*got, kind, "{domain}");
        }
        assert_eq!(
            DomainIndex::build([("co.uk", 1)]).unwrap_err().to_string(),
            "organisation domain \"co.uk\" is a public suffix (ICANN section of the Public \
             Suffix List): every name under it would count as this organisation's"
        );
        for domain in [
            "example.nl",
            "zorg.example.co.uk",
            "divd-nl.github.io",
            "www.ck",
            "xn--e1afmkfd.xn--p1ai",
            "host.internal",
        ] {
            assert!(DomainIndex::build([(domain, 1)]).is_ok(), "{domain}");
        }
    }

    #[test]
    fn organisation_domains_that_are_no_names_are_refused() {
        let err = DomainIndex::build([("*.example.nl", 1)]).unwrap_err();
        assert_eq!(
            err,
            DomainError::Wildcard {
                domain: "example.nl".into()
            }
        );
        let err = DomainIndex::build([("example.nl", 1), ("exa mple.nl", 2)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "organisation domain \"exa mple.nl\": the character ' ' is not allowed in a host \
             name (letters, digits, `-`, `_`)"
        );
        assert!(matches!(
            DomainIndex::build([("bücher.de", 1)]),
            Err(DomainError::Name(NameError {
                problem: NameProblem::NonAscii,
                ..
            }))
        ));
    }

    #[test]
    fn most_specific_domain_wins_and_shared_domains_keep_every_value() {
        let index = DomainIndex::build([
            ("example.nl", "parent"),
            ("zorg.example.nl", "hospital"),
            ("zorg.example.nl", "hospital group"),
            ("a.b.c.example.nl", "deep"),
        ])
        .unwrap();
        assert_eq!(index.len(), 3);
        let m = index.lookup("x.zorg.example.nl").unwrap();
        assert_eq!(
            (m.domain, m.values),
            ("zorg.example.nl", &["hospital", "hospital group"][..])
        );
        assert_eq!(
            index.lookup("zorg.example.nl").unwrap().domain,
            "zorg.example.nl"
        );
        assert_eq!(index.lookup("b.c.example.nl").unwrap().domain, "example.nl");
        assert_eq!(
            index.lookup("x.a.b.c.example.nl").unwrap().domain,
            "a.b.c.example.nl"
        );
        // A wildcard for the parent is the parent's, not the subdomain owner's.
        let m = index.lookup("*.example.nl").unwrap();
        assert_eq!(
            (m.domain, m.values, m.wildcard),
            ("example.nl", &["parent"][..], true)
        );
        let m = index.lookup("*.zorg.example.nl").unwrap();
        assert_eq!((m.domain, m.wildcard), ("zorg.example.nl", true));
        // Order of insertion does not matter.
        let reversed = DomainIndex::build([("zorg.example.nl", 2), ("example.nl", 1)]).unwrap();
        assert_eq!(reversed.lookup("a.zorg.example.nl").unwrap().values, [2]);
        let name = Name::parse("*.VPN.zorg.example.nl").unwrap();
        assert_eq!(index.lookup_name(&name).unwrap().domain, "zorg.example.nl");
    }

    #[test]
    fn registrable_domains() {
        for (name, want) in [
            ("vpn.example.nl", Some("example.nl")),
            ("*.vpn.example.co.uk", Some("example.co.uk")),
            ("VPN.Example.NL.", Some("example.nl")),
            ("example.nl", Some("example.nl")),
            ("a.b.divd-nl.github.io", Some("divd-nl.github.io")),
            ("xn--e1afmkfd.xn--p1ai", Some("xn--e1afmkfd.xn--p1ai")),
            ("nl", None),
            ("co.uk", None),
            ("github.io", None),
            ("*.co.uk", None),
            ("localhost", None),
            ("192.0.2.1", None),
            ("ex\0ample.nl", None),
            ("", None),
        ] {
            assert_eq!(registrable(name).as_deref(), want, "{name:?}");
        }
        assert_eq!(
            Name::parse("*.vpn.example.nl").unwrap().registrable(),
            Some("example.nl")
        );
    }
}
