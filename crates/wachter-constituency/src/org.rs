//! Organisations of the constituency: who they are, what they own, whom to tell.
//!
//! A CERT keeps this list in a spreadsheet or a file; wachter reads both shapes:
//!
//! - TOML, one `[[organisation]]` table each, contacts as `[[organisation.contacts]]`;
//! - CSV with a header (columns by name, any order): `name` (required), `sector`, `tlp`,
//!   `networks`, `domains`, `asns`, `contact_security`, `contact_abuse`,
//!   `contact_management`, `contact_technical`, `language`, `notes`. List cells split on
//!   `;`, `,` or whitespace.
//!
//! Every problem is reported with its place (file and line) and the file is refused as a
//! whole unless the caller asks to keep the good organisations.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An organisation in the constituency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub name: String,
    /// Healthcare, government, energy… (free text, lowercased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// How the organisation wants notifications marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<Tlp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Autonomous systems the organisation runs (a provider's whole AS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asns: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Someone to tell, and where that address came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub email: String,
    #[serde(default)]
    pub role: ContactRole,
    /// Preferred language of the mail (`nl`, `en`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the address came from: manual for what the CERT itself maintains.
    #[serde(default)]
    pub source: ContactSource,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    #[default]
    Security,
    Abuse,
    Management,
    Technical,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ContactSource {
    /// Maintained by the CERT (this file).
    #[default]
    Manual,
    /// A registry record the CERT imported (RIPE `abuse-c` → role `abuse-mailbox`).
    RipeAbuseC,
    /// The organisation's security.txt (RFC 9116).
    SecurityTxt,
    /// Another registry or directory.
    Registry,
}

/// Traffic Light Protocol 2.0 labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl ContactRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContactRole::Security => "security",
            ContactRole::Abuse => "abuse",
            ContactRole::Management => "management",
            ContactRole::Technical => "technical",
        }
    }
}

impl ContactSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContactSource::Manual => "manual",
            ContactSource::RipeAbuseC => "ripe_abuse_c",
            ContactSource::SecurityTxt => "security_txt",
            ContactSource::Registry => "registry",
        }
    }
}

impl FromStr for ContactRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "security" => Ok(ContactRole::Security),
            "abuse" => Ok(ContactRole::Abuse),
            "management" => Ok(ContactRole::Management),
            "technical" => Ok(ContactRole::Technical),
            other => Err(format!(
                "unknown contact role {other:?} (security, abuse, management, technical)"
            )),
        }
    }
}

impl FromStr for ContactSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "manual" => Ok(ContactSource::Manual),
            "ripe_abuse_c" => Ok(ContactSource::RipeAbuseC),
            "security_txt" => Ok(ContactSource::SecurityTxt),
            "registry" => Ok(ContactSource::Registry),
            other => Err(format!("unknown contact source {other:?}")),
        }
    }
}

impl Tlp {
    pub fn as_str(&self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber-strict",
            Tlp::Red => "red",
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // TLP 2.0 writes the label with a plus: TLP:AMBER+STRICT.
        write!(
            f,
            "TLP:{}",
            self.as_str().replace('-', "+").to_ascii_uppercase()
        )
    }
}

impl FromStr for Tlp {
    type Err = String;
    /// `amber`, `TLP:AMBER`, `amber+strict`; TLP 1.0's `white` is `clear`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bare = s.trim().to_ascii_lowercase();
        let bare = bare.strip_prefix("tlp:").unwrap_or(&bare);
        match bare {
            "clear" | "white" => Ok(Tlp::Clear),
            "green" => Ok(Tlp::Green),
            "amber" => Ok(Tlp::Amber),
            "amber+strict" | "amber-strict" => Ok(Tlp::AmberStrict),
            "red" => Ok(Tlp::Red),
            other => Err(format!(
                "unknown TLP {other:?} (clear, green, amber, amber+strict, red)"
            )),
        }
    }
}

/// A problem with one organisation of a file, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrgProblem {
    /// `file:line` (or `file` when the place is unknown).
    pub location: String,
    /// The organisation's name when it was readable.
    pub organisation: Option<String>,
    pub reason: String,
}

impl fmt::Display for OrgProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.organisation {
            Some(name) => write!(f, "{}: {name}: {}", self.location, self.reason),
            None => write!(f, "{}: {}", self.location, self.reason),
        }
    }
}

/// What a file held: the organisations that are sound, and every problem found.
#[derive(Clone, Debug, Default)]
pub struct OrgFile {
    pub organisations: Vec<Organisation>,
    pub problems: Vec<OrgProblem>,
}

/// The largest organisation file read (a constituency of thousands fits many times).
pub const MAX_FILE: usize = 64 * 1024 * 1024;

/// Which shape a file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgFormat {
    Toml,
    Csv,
}

impl OrgFormat {
    /// By extension; `None` when it says nothing.
    pub fn from_path(path: &std::path::Path) -> Option<OrgFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(OrgFormat::Toml),
            "csv" => Some(OrgFormat::Csv),
            _ => None,
        }
    }
}

/// Reads organisations from `text` (the file's contents; `source` names it in problems).
pub fn parse(text: &str, format: OrgFormat, source: &str) -> OrgFile {
    let mut file = match format {
        OrgFormat::Toml => parse_toml(text, source),
        OrgFormat::Csv => parse_csv(text, source),
    };
    // Names identify organisations: a second one with the same name is a problem, not a merge.
    let mut seen = BTreeSet::new();
    let mut kept = Vec::with_capacity(file.organisations.len());
    for org in file.organisations {
        if seen.insert(org.name.to_lowercase()) {
            kept.push(org);
        } else {
            file.problems.push(OrgProblem {
                location: source.to_string(),
                organisation: Some(org.name.clone()),
                reason: "a second organisation with this name".into(),
            });
        }
    }
    file.organisations = kept;
    file
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    organisation: Vec<toml::Spanned<toml::Value>>,
}

fn parse_toml(text: &str, source: &str) -> OrgFile {
    let mut out = OrgFile::default();
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let file: TomlFile = match toml::from_str(text) {
        Ok(file) => file,
        Err(e) => {
            let location = match e.span() {
                Some(span) => format!("{source}:{}", line_of(span.start)),
                None => source.to_string(),
            };
            out.problems.push(OrgProblem {
                location,
                organisation: None,
                reason: e.message().to_string(),
            });
            return out;
        }
    };
    for entry in file.organisation {
        let location = format!("{source}:{}", line_of(entry.span().start));
        let value = entry.into_inner();
        let name = value
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string);
        match value.try_into::<Organisation>() {
            Ok(org) => match validate(org) {
                Ok(org) => out.organisations.push(org),
                Err(reason) => out.problems.push(OrgProblem {
                    location,
                    organisation: name,
                    reason,
                }),
            },
            Err(e) => out.problems.push(OrgProblem {
                location,
                organisation: name,
                reason: e.message().to_string(),
            }),
        }
    }
    out
}

/// The CSV columns wachter reads and writes.
const CSV_COLUMNS: [&str; 12] = [
    "name",
    "sector",
    "tlp",
    "networks",
    "domains",
    "asns",
    "contact_security",
    "contact_abuse",
    "contact_management",
    "contact_technical",
    "language",
    "notes",
];

fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

fn parse_csv(text: &str, source: &str) -> OrgFile {
    let mut out = OrgFile::default();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_ascii_lowercase()).collect(),
        Err(e) => {
            out.problems.push(OrgProblem {
                location: format!("{source}:1"),
                organisation: None,
                reason: format!("unreadable header: {e}"),
            });
            return out;
        }
    };
    if let Some(unknown) = headers
        .iter()
        .find(|h| !h.is_empty() && !CSV_COLUMNS.contains(&h.as_str()))
    {
        out.problems.push(OrgProblem {
            location: format!("{source}:1"),
            organisation: None,
            reason: format!(
                "unknown column {unknown:?} (known: {})",
                CSV_COLUMNS.join(", ")
            ),
        });
        return out;
    }
    let Some(name_column) = headers.iter().position(|h| h == "name") else {
        out.problems.push(OrgProblem {
            location: format!("{source}:1"),
            organisation: None,
            reason: "no \"name\" column".into(),
        });
        return out;
    };
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                out.problems.push(OrgProblem {
                    location: format!("{source}:{line}"),
                    organisation: None,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let location = format!("{source}:{line}");
        let cell = |column: &str| -> &str {
            headers
                .iter()
                .position(|h| h == column)
                .and_then(|i| record.get(i))
                .unwrap_or("")
        };
        let name = record.get(name_column).unwrap_or("").to_string();
        match org_from_cells(&cell) {
            Ok(org) => match validate(org) {
                Ok(org) => out.organisations.push(org),
                Err(reason) => out.problems.push(OrgProblem {
                    location,
                    organisation: Some(name).filter(|n| !n.is_empty()),
                    reason,
                }),
            },
            Err(reason) => out.problems.push(OrgProblem {
                location,
                organisation: Some(name).filter(|n| !n.is_empty()),
                reason,
            }),
        }
    }
    out
}

fn org_from_cells<'a>(cell: &impl Fn(&str) -> &'a str) -> Result<Organisation, String> {
    let optional = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let networks = split_list(cell("networks"))
        .map(parse_network)
        .collect::<Result<Vec<_>, _>>()?;
    let asns = split_list(cell("asns"))
        .map(parse_asn)
        .collect::<Result<Vec<_>, _>>()?;
    let language = optional(cell("language"));
    let mut contacts = Vec::new();
    for (column, role) in [
        ("contact_security", ContactRole::Security),
        ("contact_abuse", ContactRole::Abuse),
        ("contact_management", ContactRole::Management),
        ("contact_technical", ContactRole::Technical),
    ] {
        for email in split_list(cell(column)) {
            contacts.push(Contact {
                email: email.to_string(),
                role,
                language: language.clone(),
                name: None,
                source: ContactSource::Manual,
            });
        }
    }
    Ok(Organisation {
        name: cell("name").to_string(),
        sector: optional(cell("sector")),
        tlp: match optional(cell("tlp")) {
            Some(t) => Some(t.parse()?),
            None => None,
        },
        networks,
        domains: split_list(cell("domains")).map(str::to_string).collect(),
        asns,
        contacts,
        notes: optional(cell("notes")),
    })
}

/// A network as written by a person: `192.0.2.0/24`, a bare address (`/32`, `/128`).
/// Host bits set is refused with the network that was probably meant.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let net: IpNet = match text.parse() {
        Ok(net) => net,
        Err(_) => match text.parse::<std::net::IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return Err(format!("{text:?} is not a network (192.0.2.0/24)")),
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "{text} has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

fn parse_asn(text: &str) -> Result<u32, String> {
    let digits = text
        .trim()
        .strip_prefix("AS")
        .or_else(|| text.trim().strip_prefix("as"))
        .unwrap_or(text.trim());
    digits
        .parse()
        .map_err(|_| format!("{text:?} is not an AS number (AS64496)"))
}

/// Normalises an organisation and refuses what would mis-attribute: no name, an e-mail
/// address that is not one, a domain that is a public suffix (`nl`, `co.uk`, `github.io`
/// would make everyone under it this organisation's).
pub fn validate(mut org: Organisation) -> Result<Organisation, String> {
    org.name = org.name.trim().to_string();
    if org.name.is_empty() {
        return Err("no name".into());
    }
    if org.name.len() > 200 || org.name.chars().any(char::is_control) {
        return Err("the name is longer than 200 characters or holds control characters".into());
    }
    org.sector = org
        .sector
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    for net in &org.networks {
        if net.trunc() != *net {
            return Err(format!(
                "{net} has host bits set (did you mean {}?)",
                net.trunc()
            ));
        }
    }
    let mut domains = Vec::with_capacity(org.domains.len());
    for domain in &org.domains {
        domains.push(normalise_domain(domain)?);
    }
    domains.sort();
    domains.dedup();
    org.domains = domains;
    for contact in &mut org.contacts {
        contact.email = normalise_email(&contact.email)?;
        contact.language = contact
            .language
            .take()
            .map(|l| l.trim().to_ascii_lowercase())
            .filter(|l| !l.is_empty());
    }
    org.networks.sort();
    org.networks.dedup();
    org.asns.sort_unstable();
    org.asns.dedup();
    Ok(org)
}

fn normalise_domain(domain: &str) -> Result<String, String> {
    crate::domains::normalise_org_domain(domain).map_err(|e| e.to_string())
}

fn normalise_email(email: &str) -> Result<String, String> {
    let e = email
        .trim()
        .trim_start_matches("mailto:")
        .trim_start_matches('<')
        .trim_end_matches('>');
    let Some((local, domain)) = e.rsplit_once('@') else {
        return Err(format!("{email:?} is not an e-mail address"));
    };
    if local.is_empty()
        || local.len() > 64
        || e.chars().any(|c| c.is_whitespace() || c.is_control())
        || !domain.contains('.')
        || crate::domains::Name::parse(domain).is_err()
    {
        return Err(format!("{email:?} is not an e-mail address"));
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// Writes organisations as TOML that [`parse`] reads back unchanged.
pub fn to_toml(orgs: &[Organisation]) -> Result<String, String> {
    #[derive(Serialize)]
    struct Out<'a> {
        organisation: &'a [Organisation],
    }
    toml::to_string(&Out { organisation: orgs }).map_err(|e| e.to_string())
}

/// Writes organisations as CSV with [`CSV_COLUMNS`]. Contacts keep their role; a
/// contact's own language is written only when all of the organisation's contacts share
/// it (CSV has one `language` column).
pub fn to_csv(orgs: &[Organisation]) -> Result<String, String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(CSV_COLUMNS)
        .map_err(|e| e.to_string())?;
    for org in orgs {
        let emails = |role: ContactRole| {
            org.contacts
                .iter()
                .filter(|c| c.role == role)
                .map(|c| c.email.as_str())
                .collect::<Vec<_>>()
                .join(";")
        };
        let languages: BTreeSet<&str> = org
            .contacts
            .iter()
            .filter_map(|c| c.language.as_deref())
            .collect();
        let language = if languages.len() == 1 {
            languages.into_iter().next().unwrap_or_default().to_string()
        } else {
            String::new()
        };
        writer
            .write_record([
                org.name.clone(),
                org.sector.clone().unwrap_or_default(),
                org.tlp.map(|t| t.as_str().to_string()).unwrap_or_default(),
                org.networks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(";"),
                org.domains.join(";"),
                org.asns
                    .iter()
                    .map(|a| format!("AS{a}"))
                    .collect::<Vec<_>>()
                    .join(";"),
                emails(ContactRole::Security),
                emails(ContactRole::Abuse),
                emails(ContactRole::Management),
                emails(ContactRole::Technical),
                language,
                org.notes.clone().unwrap_or_default(),
            ])
            .map_err(|e| e.to_string())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[organisation]]
name = "Ziekenhuis Voorbeeld"
sector = "Healthcare"
tlp = "amber"
networks = ["192.0.2.0/24", "2001:db8:10::/48"]
domains = ["Ziekenhuis-Voorbeeld.nl."]
asns = [64496]
notes = "Main hospital; call before 17:00."

[[organisation.contacts]]
email = "Security@Ziekenhuis-Voorbeeld.NL"
role = "security"
language = "nl"

[[organisation.contacts]]
email = "cio@ziekenhuis-voorbeeld.nl"
role = "management"

[[organisation]]
name = "Gemeente Voorbeeld"
sector = "government"
networks = ["198.51.100.0/25"]
"#;

    #[test]
    fn toml_reads_normalises_and_round_trips() {
        let file = parse(TOML, OrgFormat::Toml, "orgs.toml");
        assert_eq!(file.problems, vec![]);
        let hospital = &file.organisations[0];
        assert_eq!(hospital.sector.as_deref(), Some("healthcare"));
        assert_eq!(hospital.domains, vec!["ziekenhuis-voorbeeld.nl"]);
        assert_eq!(
            hospital.contacts[0].email,
            "Security@ziekenhuis-voorbeeld.nl"
        );
        assert_eq!(hospital.contacts[0].language.as_deref(), Some("nl"));
        assert_eq!(hospital.contacts[1].role, ContactRole::Management);
        assert_eq!(hospital.tlp, Some(Tlp::Amber));
        let again = parse(&to_toml(&file.organisations).unwrap(), OrgFormat::Toml, "x");
        assert_eq!(again.problems, vec![]);
        assert_eq!(again.organisations, file.organisations);
        let csv = parse(&to_csv(&file.organisations).unwrap(), OrgFormat::Csv, "x");
        assert_eq!(csv.problems, vec![]);
        assert_eq!(csv.organisations.len(), 2);
        assert_eq!(csv.organisations[0].networks, hospital.networks);
        assert_eq!(csv.organisations[0].contacts.len(), 2);
    }

    #[test]
    fn csv_columns_are_read_by_name_and_problems_carry_their_line() {
        let text = "notes,name,networks,contact_abuse,tlp\n\
                    ,Ziekenhuis A,192.0.2.0/24;198.51.100.0/24,abuse@a.example,TLP:GREEN\n\
                    ,Ziekenhuis B,192.0.2.7/24,,\n\
                    ,,203.0.113.0/24,,\n\
                    ,Ziekenhuis C,203.0.113.0/24,not-an-address,\n\
                    ,Ziekenhuis D,,,purple\n";
        let file = parse(text, OrgFormat::Csv, "orgs.csv");
        assert_eq!(file.organisations.len(), 1);
        assert_eq!(file.organisations[0].tlp, Some(Tlp::Green));
        assert_eq!(file.organisations[0].contacts[0].role, ContactRole::Abuse);
        let problems: Vec<String> = file.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            vec![
                "orgs.csv:3: Ziekenhuis B: 192.0.2.7/24 has host bits set (did you mean 192.0.2.0/24?)",
                "orgs.csv:4: no name",
                "orgs.csv:5: Ziekenhuis C: \"not-an-address\" is not an e-mail address",
                "orgs.csv:6: Ziekenhuis D: unknown TLP \"purple\" (clear, green, amber, amber+strict, red)",
            ]
        );
    }

    #[test]
    fn public_suffixes_and_junk_are_refused_as_domains() {
        for (domain, ok) in [
            ("example.nl", true),
            ("zorg.example.co.uk", true),
            ("nl", false),
            ("co.uk", false),
            ("github.io", false),
            ("exa mple.nl", false),
            ("ex\0ample.nl", false),
            ("-bad.nl", false),
        ] {
            let org = Organisation {
                name: "X".into(),
                domains: vec![domain.into()],
                ..Organisation::default()
            };
            assert_eq!(validate(org).is_ok(), ok, "{domain:?}");
        }
    }

    #[test]
    fn unknown_columns_fields_and_duplicates_are_named() {
        let csv = parse("name,netwerken\nA,192.0.2.0/24\n", OrgFormat::Csv, "o.csv");
        assert!(
            csv.problems[0]
                .reason
                .contains("unknown column \"netwerken\"")
        );
        let toml = parse(
            "[[organisation]]\nname = \"A\"\nnetwork = [\"192.0.2.0/24\"]\n",
            OrgFormat::Toml,
            "o.toml",
        );
        assert_eq!(toml.problems[0].location, "o.toml:1");
        assert!(toml.problems[0].reason.contains("unknown field `network`"));
        let twice = parse("name\nA\na\n", OrgFormat::Csv, "o.csv");
        assert_eq!(twice.organisations.len(), 1);
        assert_eq!(
            twice.problems[0].reason,
            "a second organisation with this name"
        );
        let broken = parse("[[organisation]\nname = 1", OrgFormat::Toml, "o.toml");
        assert_eq!(broken.problems[0].location, "o.toml:1");
    }
}
