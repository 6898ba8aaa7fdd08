//! RIR delegated-extended statistics ("RIR Statistics Exchange Format") into a country's
//! address space and AS numbers.
//!
//! The five RIRs publish `delegated-<rir>-extended-latest`: a version line
//! `version|registry|serial|records|startdate|enddate|UTCoffset`, summary lines
//! `registry|*|type|*|count|summary`, then one record per delegation,
//! `registry|cc|type|start|value|date|status[|opaque-id[|extensions…]]`, and `#` comments.
//! The traps this module exists for:
//!
//! - for `ipv4`, `value` is a host count that need not be a power of two (768 is a /23 plus
//!   a /24), so a record is a range, split into exact CIDRs only when asked;
//! - for `ipv6`, `value` is a prefix length; for `asn`, a count of AS numbers;
//! - a truncated download still parses line by line, so the counts announced by the version
//!   and summary lines are checked against the records actually read.
//!
//! [`DelegatedReader`] streams entries and reports every malformed line with its file and
//! line; it never stops on a bad line, only on a read failure. [`country_networks`] folds a
//! file into one country's merged space and lets the caller choose, with [`OnMalformed`],
//! between refusing a file with any problem (the default) and skipping the bad lines while
//! keeping them as reported problems: nothing half-imports silently.

use std::fmt;
use std::io::{self, BufRead};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv6Net};
use time::{Date, Month};
use wachter_core::addr::{Family, IpRange, RangeSet};

/// The longest line read; real lines are under 100 bytes, extensions included.
pub const MAX_LINE: usize = 4096;

/// At most this many problems are kept per file; the rest are only counted, so a file of
/// garbage cannot fill memory with error messages.
pub const MAX_PROBLEMS: usize = 1000;

/// A two-letter country code as the RIRs write it (ISO 3166 alpha-2 plus `EU`, `AP`, and
/// `ZZ` for "no country"), kept in upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// `ZZ`: the code the RIRs put on available and reserved space.
    pub fn is_unknown(&self) -> bool {
        self.0 == *b"ZZ"
    }
}

impl FromStr for CountryCode {
    type Err = String;

    /// Two ASCII letters, any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Ok(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => Err(format!("{text:?} is not a two-letter country code")),
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `type` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Asn,
    Ipv4,
    Ipv6,
}

impl ResourceType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ResourceType::Asn => "asn",
            ResourceType::Ipv4 => "ipv4",
            ResourceType::Ipv6 => "ipv6",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "asn" => Some(ResourceType::Asn),
            "ipv4" => Some(ResourceType::Ipv4),
            "ipv6" => Some(ResourceType::Ipv6),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `status` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Allocated,
    Assigned,
    /// Free space in the RIR's pool (extended files only; country `ZZ` or empty).
    Available,
    /// Held back by the RIR (extended files only; country `ZZ` or empty).
    Reserved,
}

/// The statuses that mean "delegated to someone in that country": the default filter.
pub const DELEGATED: &[Status] = &[Status::Allocated, Status::Assigned];

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Allocated => "allocated",
            Status::Assigned => "assigned",
            Status::Available => "available",
            Status::Reserved => "reserved",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "allocated" => Some(Status::Allocated),
            "assigned" => Some(Status::Assigned),
            "available" => Some(Status::Available),
            "reserved" => Some(Status::Reserved),
            _ => None,
        }
    }
}

/// An inclusive range of AS numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsnRange {
    pub first: u32,
    pub last: u32,
}

impl AsnRange {
    /// How many AS numbers the range holds (at least one).
    pub fn len(&self) -> u64 {
        u64::from(self.last) - u64::from(self.first) + 1
    }

    /// Always false: a range holds at least one AS number. Present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.first <= asn && asn <= self.last
    }
}

impl fmt::Display for AsnRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "AS{}", self.first)
        } else {
            write!(f, "AS{}-AS{}", self.first, self.last)
        }
    }
}

/// What a record delegates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    Asn(AsnRange),
    /// A start address and a host count: any range, not necessarily one CIDR.
    Ipv4(IpRange),
    Ipv6(Ipv6Net),
}

impl Resource {
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Resource::Asn(_) => ResourceType::Asn,
            Resource::Ipv4(_) => ResourceType::Ipv4,
            Resource::Ipv6(_) => ResourceType::Ipv6,
        }
    }

    /// The addresses, for `ipv4` and `ipv6` records.
    pub fn address_range(&self) -> Option<IpRange> {
        match self {
            Resource::Asn(_) => None,
            Resource::Ipv4(range) => Some(*range),
            Resource::Ipv6(net) => Some(IpRange::from_net(IpNet::V6(*net))),
        }
    }

    /// The smallest exact list of CIDRs covering the addresses (empty for `asn`).
    pub fn cidrs(&self) -> Vec<IpNet> {
        self.address_range()
            .map(|range| range.to_cidrs())
            .unwrap_or_default()
    }
}

/// The version line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub line: u64,
    /// `2` or `2.3`.
    pub version: String,
    pub registry: String,
    /// A date or a counter, depending on the RIR: kept as written.
    pub serial: String,
    /// How many records the file says it holds (summary and version lines excluded).
    pub records: u64,
    /// `None` when empty or `00000000`, as several RIRs write it.
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    /// `+0100`, `-0400`, or AFRINIC's `00000`: kept as written.
    pub utc_offset: String,
}

/// A summary line: how many records of one type the file says it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub line: u64,
    pub registry: String,
    pub resource_type: ResourceType,
    pub count: u64,
}

/// One delegation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub registry: String,
    /// `None` when the column is empty (available and reserved space in some files).
    pub country: Option<CountryCode>,
    pub resource: Resource,
    /// `None` when empty or `00000000`.
    pub date: Option<Date>,
    pub status: Status,
    /// Links records of one holder (RIPE's changes daily); `None` when absent or empty.
    pub opaque_id: Option<String>,
    /// Any further columns, as written.
    pub extensions: Vec<String>,
}

/// One meaningful line of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Header(Header),
    Summary(Summary),
    Record(Record),
}

/// What is wrong with a line (or, for the count checks, with the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("cannot read: {0}")]
    Read(String),
    #[error("line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("no version line before the first record (is this a delegated statistics file?)")]
    MissingHeader,
    #[error("the file is empty: no version line, no records")]
    Empty,
    #[error("a second version line")]
    SecondHeader,
    #[error("a version line after the first record")]
    LateHeader,
    #[error("bad version line: {0}")]
    BadHeader(String),
    #[error("bad summary line: {0}")]
    BadSummary(String),
    #[error(
        "{0} |-separated fields, expected at least 7 (registry|cc|type|start|value|date|status)"
    )]
    FieldCount(usize),
    #[error("unknown type {0:?} (asn, ipv4 or ipv6)")]
    UnknownType(String),
    #[error("unknown status {0:?} (allocated, assigned, available or reserved)")]
    UnknownStatus(String),
    #[error("country {0:?} is not two letters")]
    BadCountry(String),
    #[error("start {text:?} is not {expected}")]
    BadStart {
        text: String,
        expected: &'static str,
    },
    #[error("count {0:?} is not a positive whole number")]
    BadCount(String),
    #[error("{0:?} is not an IPv6 prefix length (0 to 128)")]
    BadPrefixLength(String),
    #[error("{start} is not the first address of a /{prefix_len}")]
    MisalignedIpv6 { start: Ipv6Addr, prefix_len: u8 },
    #[error("{count} addresses from {start} run past 255.255.255.255")]
    Ipv4Overflow { start: Ipv4Addr, count: u64 },
    #[error("{count} AS numbers from AS{start} run past AS4294967295")]
    AsnOverflow { start: u32, count: u64 },
    #[error("date {0:?} is not YYYYMMDD")]
    BadDate(String),
    #[error(
        "the version line announces {announced} records but the file holds {found} (truncated or altered?)"
    )]
    RecordCount { announced: u64, found: u64 },
    #[error(
        "the {resource_type} summary announces {announced} records but the file holds {found} (truncated or altered?)"
    )]
    SummaryCount {
        resource_type: ResourceType,
        announced: u64,
        found: u64,
    },
}

/// A problem and where it is: `file:line`. Line 0 means the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {problem}")]
pub struct DelegatedError {
    pub origin: String,
    pub line: u64,
    pub problem: Problem,
}

impl DelegatedError {
    /// A read failure leaves the rest of the file unknown: it cannot be skipped.
    pub fn is_fatal(&self) -> bool {
        matches!(self.problem, Problem::Read(_))
    }
}

/// Streams the entries of a delegated statistics file, in file order.
///
/// Comments and blank lines are passed over. A malformed line yields an error and reading
/// goes on with the next line; a read failure yields one error and ends the stream. At the
/// end, the counts announced by the version and summary lines are compared with the record
/// lines seen (malformed ones included, since they were meant as records), and each
/// mismatch is one more error.
pub struct DelegatedReader<R> {
    origin: String,
    reader: R,
    line_no: u64,
    buf: Vec<u8>,
    /// Line and announced count of the version line.
    header: Option<(u64, u64)>,
    /// The first line that was neither blank nor a comment: the version line must be it.
    first_data_line: Option<u64>,
    summaries: Vec<(u64, ResourceType, u64)>,
    records_found: u64,
    records_by_type: [u64; 3],
    end_checks: Option<std::vec::IntoIter<DelegatedError>>,
    done: bool,
}

impl<R: BufRead> DelegatedReader<R> {
    /// `origin` names the file in errors.
    pub fn new(origin: impl Into<String>, reader: R) -> Self {
        DelegatedReader {
            origin: origin.into(),
            reader,
            line_no: 0,
            buf: Vec::new(),
            header: None,
            first_data_line: None,
            summaries: Vec::new(),
            records_found: 0,
            records_by_type: [0; 3],
            end_checks: None,
            done: false,
        }
    }

    fn error(&self, line: u64, problem: Problem) -> DelegatedError {
        DelegatedError {
            origin: self.origin.clone(),
            line,
            problem,
        }
    }

    /// The checks that need the whole file: a version line, and the announced counts.
    fn end_of_file_checks(&self) -> Vec<DelegatedError> {
        let mut errors = Vec::new();
        let Some((header_line, announced)) = self.header else {
            errors.push(match self.first_data_line {
                Some(line) => self.error(line, Problem::MissingHeader),
                None => self.error(0, Problem::Empty),
            });
            return errors;
        };
        if announced != self.records_found {
            errors.push(self.error(
                header_line,
                Problem::RecordCount {
                    announced,
                    found: self.records_found,
                },
            ));
        }
        for &(line, resource_type, announced) in &self.summaries {
            let found = self.records_by_type[resource_type.index()];
            if announced != found {
                errors.push(self.error(
                    line,
                    Problem::SummaryCount {
                        resource_type,
                        announced,
                        found,
                    },
                ));
            }
        }
        errors
    }

    /// Parses one data line (neither blank nor comment).
    fn data_line(&mut self, line_no: u64, text: &str) -> Result<Entry, Problem> {
        let fields: Vec<&str> = text.split('|').map(str::trim).collect();
        let first_data_line = *self.first_data_line.get_or_insert(line_no) == line_no;
        // A version line starts with its version number; a registry name never does.
        let looks_like_header = fields
            .first()
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        if looks_like_header {
            if self.header.is_some() {
                return Err(Problem::SecondHeader);
            }
            if !first_data_line {
                return Err(Problem::LateHeader);
            }
            let header = parse_header(line_no, &fields)?;
            self.header = Some((line_no, header.records));
            return Ok(Entry::Header(header));
        }
        if fields.get(1) == Some(&"*") {
            let summary = parse_summary(line_no, &fields)?;
            self.summaries
                .push((line_no, summary.resource_type, summary.count));
            return Ok(Entry::Summary(summary));
        }
        self.records_found += 1;
        if let Some(resource_type) = fields.get(2).and_then(|t| ResourceType::parse(t)) {
            self.records_by_type[resource_type.index()] += 1;
        }
        parse_record(line_no, &fields).map(Entry::Record)
    }
}

impl<R: BufRead> Iterator for DelegatedReader<R> {
    type Item = Result<Entry, DelegatedError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(checks) = &mut self.end_checks {
                return checks.next().map(Err);
            }
            if self.done {
                return None;
            }
            self.buf.clear();
            let read = read_capped_line(&mut self.reader, &mut self.buf, MAX_LINE);
            self.line_no += 1;
            let line_no = self.line_no;
            match read {
                Err(e) => {
                    self.done = true;
                    return Some(Err(self.error(line_no, Problem::Read(e.to_string()))));
                }
                Ok(LineRead::Eof) => {
                    self.done = true;
                    self.end_checks = Some(self.end_of_file_checks().into_iter());
                    continue;
                }
                Ok(LineRead::TooLong) => {
                    return Some(Err(self.error(line_no, Problem::LineTooLong)));
                }
                Ok(LineRead::Line) => {}
            }
            let buf = std::mem::take(&mut self.buf);
            let result = match std::str::from_utf8(&buf) {
                Err(_) => Some(Err(Problem::NotUtf8)),
                Ok(text) => {
                    let text = text.trim_end_matches(['\r', '\n']);
                    if text.trim().is_empty() || text.trim_start().starts_with('#') {
                        None
                    } else {
                        Some(self.data_line(line_no, text))
                    }
                }
            };
            self.buf = buf;
            if let Some(result) = result {
                return Some(result.map_err(|problem| self.error(line_no, problem)));
            }
        }
    }
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// Reads up to and including the next `\n` into `buf`, keeping at most `max` bytes; the rest
/// of an overlong line is read and dropped, so the next call starts on the next line.
fn read_capped_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let mut consumed_any = false;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        consumed_any = true;
        let (chunk, found_newline) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        if !too_long && buf.len() + chunk.len() <= max {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
        }
        let used = chunk.len();
        reader.consume(used);
        if found_newline {
            break;
        }
    }
    Ok(match (consumed_any, too_long) {
        (false, _) => LineRead::Eof,
        (true, true) => LineRead::TooLong,
        (true, false) => LineRead::Line,
    })
}

/// `YYYYMMDD`; empty and `00000000` mean "no date".
fn parse_date(text: &str) -> Result<Option<Date>, Problem> {
    if text.is_empty() || text == "00000000" {
        return Ok(None);
    }
    let bad = || Problem::BadDate(text.to_string());
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year: i32 = text[0..4].parse().map_err(|_| bad())?;
    let month: u8 = text[4..6].parse().map_err(|_| bad())?;
    let day: u8 = text[6..8].parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day)
        .map(Some)
        .map_err(|_| bad())
}

fn parse_header(line: u64, fields: &[&str]) -> Result<Header, Problem> {
    let [version, registry, serial, records, start, end, offset] = fields else {
        return Err(Problem::BadHeader(format!(
            "{} fields, expected 7 (version|registry|serial|records|startdate|enddate|UTCoffset)",
            fields.len()
        )));
    };
    let records = records
        .parse::<u64>()
        .map_err(|_| Problem::BadHeader(format!("record count {records:?} is not a number")))?;
    let date = |text: &str| {
        parse_date(text).map_err(|_| Problem::BadHeader(format!("date {text:?} is not YYYYMMDD")))
    };
    Ok(Header {
        line,
        version: version.to_string(),
        registry: registry.to_string(),
        serial: serial.to_string(),
        records,
        start_date: date(start)?,
        end_date: date(end)?,
        utc_offset: offset.to_string(),
    })
}

fn parse_summary(line: u64, fields: &[&str]) -> Result<Summary, Problem> {
    let [registry, "*", resource_type, "*", count, "summary"] = fields else {
        return Err(Problem::BadSummary(
            "expected registry|*|type|*|count|summary".into(),
        ));
    };
    let resource_type = ResourceType::parse(resource_type)
        .ok_or_else(|| Problem::BadSummary(format!("unknown type {resource_type:?}")))?;
    let count = count
        .parse::<u64>()
        .map_err(|_| Problem::BadSummary(format!("count {count:?} is not a number")))?;
    Ok(Summary {
        line,
        registry: registry.to_string(),
        resource_type,
        count,
    })
}

fn parse_count(text: &str) -> Result<u64, Problem> {
    match text.parse::<u64>() {
        Ok(count) if count > 0 && !text.starts_with('+') => Ok(count),
        _ => Err(Problem::BadCount(text.to_string())),
    }
}

fn parse_record(line: u64, fields: &[&str]) -> Result<Record, Problem> {
    let [registry, cc, kind, start, value, date, status, rest @ ..] = fields else {
        return Err(Problem::FieldCount(fields.len()));
    };
    let resource_type =
        ResourceType::parse(kind).ok_or_else(|| Problem::UnknownType(kind.to_string()))?;
    let status = Status::parse(status).ok_or_else(|| Problem::UnknownStatus(status.to_string()))?;
    let country = match *cc {
        "" => None,
        cc => Some(CountryCode::from_str(cc).map_err(|_| Problem::BadCountry(cc.to_string()))?),
    };
    let resource = match resource_type {
        ResourceType::Ipv4 => {
            let first = Ipv4Addr::from_str(start).map_err(|_| Problem::BadStart {
                text: start.to_string(),
                expected: "an IPv4 address",
            })?;
            let count = parse_count(value)?;
            let overflow = Problem::Ipv4Overflow {
                start: first,
                count,
            };
            let last = u64::from(u32::from(first))
                .checked_add(count - 1)
                .and_then(|last| u32::try_from(last).ok())
                .ok_or(overflow)?;
            let range = IpRange::between(IpAddr::V4(first), IpAddr::V4(Ipv4Addr::from(last)))
                .ok_or(Problem::BadCount(value.to_string()))?;
            Resource::Ipv4(range)
        }
        ResourceType::Ipv6 => {
            let first = Ipv6Addr::from_str(start).map_err(|_| Problem::BadStart {
                text: start.to_string(),
                expected: "an IPv6 address",
            })?;
            let prefix_len = value
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= 128 && !value.starts_with('+'))
                .ok_or_else(|| Problem::BadPrefixLength(value.to_string()))?;
            let net = Ipv6Net::new(first, prefix_len)
                .map_err(|_| Problem::BadPrefixLength(value.to_string()))?;
            if net.network() != first {
                return Err(Problem::MisalignedIpv6 {
                    start: first,
                    prefix_len,
                });
            }
            Resource::Ipv6(net)
        }
        ResourceType::Asn => {
            let first = start
                .parse::<u32>()
                .ok()
                .filter(|_| !start.starts_with('+'))
                .ok_or_else(|| Problem::BadStart {
                    text: start.to_string(),
                    expected: "an AS number",
                })?;
            let count = parse_count(value)?;
            let last = u64::from(first)
                .checked_add(count - 1)
                .and_then(|last| u32::try_from(last).ok())
                .ok_or(Problem::AsnOverflow {
                    start: first,
                    count,
                })?;
            Resource::Asn(AsnRange { first, last })
        }
    };
    let date = parse_date(date)?;
    let opaque_id = rest
        .first()
        .filter(|id| !id.is_empty())
        .map(|id| id.to_string());
    let extensions = rest.iter().skip(1).map(|e| e.to_string()).collect();
    Ok(Record {
        line,
        registry: registry.to_string(),
        country,
        resource,
        date,
        status,
        opaque_id,
        extensions,
    })
}

/// What to do with a file that has malformed lines or wrong counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnMalformed {
    /// Refuse the whole file, listing every problem (the safe default: a scan list built
    /// from a damaged file would silently miss part of the country).
    #[default]
    Refuse,
    /// Keep the sound records and return the problems with the result.
    Skip,
}

/// Counts of the records that matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub ipv4: u64,
    pub ipv6: u64,
    pub asn: u64,
}

/// One country's delegated space, merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountryNetworks {
    pub country: CountryCode,
    /// The version line, when the file had a sound one.
    pub header: Option<Header>,
    /// IPv4 and IPv6 space, sorted and merged (adjacent delegations become one range).
    pub addresses: RangeSet,
    /// AS numbers, sorted and merged.
    pub asns: Vec<AsnRange>,
    /// Records that matched the country and statuses, per type.
    pub records: RecordCounts,
    /// Problems of the skipped lines (only with [`OnMalformed::Skip`]), at most
    /// [`MAX_PROBLEMS`].
    pub problems: Vec<DelegatedError>,
    /// Problems beyond [`MAX_PROBLEMS`], counted only.
    pub problems_omitted: u64,
}

impl CountryNetworks {
    /// The smallest exact CIDR cover of [`Self::addresses`], IPv4 first.
    pub fn cidrs(&self) -> Vec<IpNet> {
        self.addresses
            .ranges()
            .iter()
            .flat_map(IpRange::to_cidrs)
            .collect()
    }

    pub fn ipv4_addresses(&self) -> u128 {
        self.address_count(Family::V4)
    }

    /// Saturating: only `::/0` does not fit.
    pub fn ipv6_addresses(&self) -> u128 {
        self.address_count(Family::V6)
    }

    pub fn asn_count(&self) -> u64 {
        self.asns.iter().map(AsnRange::len).sum()
    }

    fn address_count(&self, family: Family) -> u128 {
        self.addresses
            .ranges()
            .iter()
            .filter(|r| r.family() == family)
            .fold(0u128, |sum, r| sum.saturating_add(r.len()))
    }
}

/// Why [`country_networks`] gave no result.
#[derive(Debug, thiserror::Error)]
pub enum CountryNetworksError {
    #[error("{0:?} is not a country code (two letters, and not ZZ)")]
    Country(String),
    /// The file could not be read to its end: whatever was read is not the whole country.
    #[error("{0}")]
    Unreadable(DelegatedError),
    /// [`OnMalformed::Refuse`] and the file had problems.
    #[error("{origin}: refused: {}", describe_refusal(.problems, *.omitted))]
    Refused {
        origin: String,
        problems: Vec<DelegatedError>,
        omitted: u64,
    },
}

fn describe_refusal(problems: &[DelegatedError], omitted: u64) -> String {
    let count = problems.len() as u64 + omitted;
    match problems.first() {
        Some(first) => format!(
            "{count} problem(s), the first at line {}: {}",
            first.line, first.problem
        ),
        None => format!("{count} problem(s)"),
    }
}

/// Reads a delegated statistics file and returns the space and AS numbers delegated to
/// `country` (two letters, any case; `ZZ` is refused) with one of `statuses` (usually
/// [`DELEGATED`]). `origin` names the file in errors.
///
/// The whole file is read in both modes, so a refusal lists every problem at once.
pub fn country_networks<R: BufRead>(
    reader: R,
    origin: &str,
    country: &str,
    statuses: &[Status],
    on_malformed: OnMalformed,
) -> Result<CountryNetworks, CountryNetworksError> {
    let wanted = CountryCode::from_str(country.trim())
        .ok()
        .filter(|cc| !cc.is_unknown())
        .ok_or_else(|| CountryNetworksError::Country(country.to_string()))?;
    let mut header = None;
    let mut ranges = Vec::new();
    let mut asns = Vec::new();
    let mut records = RecordCounts::default();
    let mut problems = Vec::new();
    let mut omitted = 0u64;
    for entry in DelegatedReader::new(origin, reader) {
        let record = match entry {
            Ok(Entry::Record(record)) => record,
            Ok(Entry::Header(h)) => {
                header = Some(h);
                continue;
            }
            Ok(Entry::Summary(_)) => continue,
            Err(e) if e.is_fatal() => return Err(CountryNetworksError::Unreadable(e)),
            Err(e) => {
                if problems.len() < MAX_PROBLEMS {
                    problems.push(e);
                } else {
                    omitted += 1;
                }
                continue;
            }
        };
        if record.country != Some(wanted) || !statuses.contains(&record.status) {
            continue;
        }
        match record.resource {
            Resource::Asn(range) => {
                records.asn += 1;
                asns.push(range);
            }
            Resource::Ipv4(range) => {
                records.ipv4 += 1;
                ranges.push(range);
            }
            Resource::Ipv6(net) => {
                records.ipv6 += 1;
                ranges.push(IpRange::from_net(IpNet::V6(net)));
            }
        }
    }
    if on_malformed == OnMalformed::Refuse && !problems.is_empty() {
        return Err(CountryNetworksError::Refused {
            origin: origin.to_string(),
            problems,
            omitted,
        });
    }
    Ok(CountryNetworks {
        country: wanted,
        header,
        addresses: RangeSet::from_ranges(ranges),
        asns: merge_asns(asns),
        records,
        problems,
        problems_omitted: omitted,
    })
}

/// Sorts and merges overlapping or adjacent AS ranges.
pub fn merge_asns(mut ranges: Vec<AsnRange>) -> Vec<AsnRange> {
    ranges.sort();
    let mut merged: Vec<AsnRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(prev) if u64::from(prev.last) + 1 >= u64::from(range.first) => {
                prev.last = prev.last.max(range.last);
            }
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::path::{Path, PathBuf};
    use wachter_core::order::SplitMix64;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delegated")
    }

    /// `<name>.expect.toml` next to each `<name>.txt`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Expectations {
        header: Option<ExpectedHeader>,
        #[serde(default)]
        query: Vec<Query>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ExpectedHeader {
        version: String,
        registry: String,
        serial: String,
        records: u64,
        /// `YYYY-MM-DD`, or empty for none.
        start_date: String,
        end_date: String,
        utc_offset: String,
    }

    /// One call of `country_networks`: either `error` (with `refused` listing the problems
    /// of a refusal) or a result (`cidrs`, `asns`, `records`, `problems`).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Query {
        country: String,
        statuses: Option<Vec<String>>,
        #[serde(default)]
        skip: bool,
        error: Option<String>,
        refused: Option<Vec<String>>,
        cidrs: Option<Vec<String>>,
        #[serde(default)]
        asns: Vec<String>,
        records: Option<ExpectedCounts>,
        ipv4_addresses: Option<u64>,
        #[serde(default)]
        problems: Vec<String>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct ExpectedCounts {
        ipv4: u64,
        ipv6: u64,
        asn: u64,
    }

    fn date_text(date: Option<Date>) -> String {
        date.map(|d| d.to_string()).unwrap_or_default()
    }

    fn status(text: &str) -> Status {
        Status::parse(text).unwrap_or_else(|| panic!("unknown status {text} in expectations"))
    }

    fn check_fixture(txt: &Path) {
        let name = txt.file_name().unwrap().to_string_lossy().to_string();
        let stem = name.trim_end_matches(".txt");
        let expect_path = txt.with_file_name(format!("{stem}.expect.toml"));
        let expect: Expectations = toml::from_str(
            &std::fs::read_to_string(&expect_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let bytes = std::fs::read(txt).unwrap();

        if let Some(want) = &expect.header {
            let header = DelegatedReader::new(name.as_str(), &bytes[..])
                .find_map(|entry| match entry {
                    Ok(Entry::Header(header)) => Some(header),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{name}: no header"));
            assert_eq!(header.version, want.version, "{name}");
            assert_eq!(header.registry, want.registry, "{name}");
            assert_eq!(header.serial, want.serial, "{name}");
            assert_eq!(header.records, want.records, "{name}");
            assert_eq!(date_text(header.start_date), want.start_date, "{name}");
            assert_eq!(date_text(header.end_date), want.end_date, "{name}");
            assert_eq!(header.utc_offset, want.utc_offset, "{name}");
        }

        for (i, query) in expect.query.iter().enumerate() {
            let context = format!("{name} query {i} ({})", query.country);
            let statuses: Vec<Status> = match &query.statuses {
                Some(list) => list.iter().map(|s| status(s)).collect(),
                None => DELEGATED.to_vec(),
            };
            let mode = if query.skip {
                OnMalformed::Skip
            } else {
                OnMalformed::Refuse
            };
            let result = country_networks(&bytes[..], &name, &query.country, &statuses, mode);
            match (&query.error, result) {
                (Some(error), Err(e)) => {
                    assert_eq!(&e.to_string(), error, "{context}");
                    let listed: Vec<String> = match &e {
                        CountryNetworksError::Refused { problems, .. } => {
                            problems.iter().map(ToString::to_string).collect()
                        }
                        _ => Vec::new(),
                    };
                    assert_eq!(
                        listed,
                        query.refused.clone().unwrap_or_default(),
                        "{context}"
                    );
                }
                (Some(error), Ok(_)) => panic!("{context}: expected {error:?}, got a result"),
                (None, Err(e)) => panic!("{context}: unexpected error {e}"),
                (None, Ok(networks)) => {
                    let cidrs: Vec<String> =
                        networks.cidrs().iter().map(ToString::to_string).collect();
                    assert_eq!(Some(cidrs), query.cidrs, "{context}");
                    let asns: Vec<String> = networks.asns.iter().map(ToString::to_string).collect();
                    assert_eq!(asns, query.asns, "{context}");
                    let counts = ExpectedCounts {
                        ipv4: networks.records.ipv4,
                        ipv6: networks.records.ipv6,
                        asn: networks.records.asn,
                    };
                    assert_eq!(Some(counts), query.records, "{context}");
                    if let Some(addresses) = query.ipv4_addresses {
                        assert_eq!(
                            networks.ipv4_addresses(),
                            u128::from(addresses),
                            "{context}"
                        );
                    }
                    let problems: Vec<String> =
                        networks.problems.iter().map(ToString::to_string).collect();
                    assert_eq!(problems, query.problems, "{context}");
                    assert_eq!(networks.problems_omitted, 0, "{context}");
                    assert!(query.refused.is_none(), "{context}: refused without error");
                }
            }
        }
    }

    #[test]
    fn delegated_fixtures_give_exactly_the_expected_outcomes() {
        let mut checked = 0;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        paths.sort();
        for path in paths {
            check_fixture(&path);
            checked += 1;
        }
        assert!(checked >= 6, "only {checked} fixtures found");
    }

    fn records_of(text: &[u8]) -> Vec<Record> {
        DelegatedReader::new("test", text)
            .filter_map(|entry| match entry {
                Ok(Entry::Record(record)) => Some(record),
                _ => None,
            })
            .collect()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// The record of the fixture whose start column is `start`.
    fn record_starting(records: &[Record], start: &str) -> Record {
        records
            .iter()
            .find(|r| match r.resource {
                Resource::Asn(range) => range.first.to_string() == start,
                _ => r.resource.address_range().unwrap().first().to_string() == start,
            })
            .unwrap_or_else(|| panic!("no record starts at {start}"))
            .clone()
    }

    #[test]
    fn delegated_host_counts_split_into_exact_cidrs() {
        let bytes = std::fs::read(fixtures().join("ripencc-nl-de.txt")).unwrap();
        let records = records_of(&bytes);
        let cidrs = |start| record_starting(&records, start).resource.cidrs();
        // 198.18.0.0 + 768 on a /23 boundary: the /23 first.
        assert_eq!(
            cidrs("198.18.0.0"),
            nets(&["198.18.0.0/23", "198.18.2.0/24"])
        );
        // 198.18.9.0 + 768 on a /24 boundary only: the /24 first.
        assert_eq!(
            cidrs("198.18.9.0"),
            nets(&["198.18.9.0/24", "198.18.10.0/23"])
        );
        assert_eq!(cidrs("2001:db8::"), nets(&["2001:db8::/32"]));
        assert_eq!(cidrs("3fff:0:1::"), nets(&["3fff:0:1::/48"]));
        assert_eq!(
            record_starting(&records, "65536").resource,
            Resource::Asn(AsnRange {
                first: 65536,
                last: 65551
            })
        );
        assert!(cidrs("65536").is_empty());
    }

    #[test]
    fn delegated_record_fields_are_kept() {
        let bytes = std::fs::read(fixtures().join("ripencc-nl-de.txt")).unwrap();
        let records = records_of(&bytes);
        let de = record_starting(&records, "203.0.113.0");
        assert_eq!(de.line, 24);
        assert_eq!(de.registry, "ripencc");
        assert_eq!(de.country, Some("DE".parse().unwrap()));
        assert_eq!(de.status, Status::Assigned);
        assert_eq!(date_text(de.date), "2015-01-01");
        assert_eq!(de.opaque_id.as_deref(), Some("7a11c0de-0002"));
        assert_eq!(de.extensions, vec!["e-stats-extension".to_string()]);
        let lower = record_starting(&records, "198.18.6.0");
        assert_eq!(lower.country.map(|c| c.to_string()).as_deref(), Some("NL"));
        let available = record_starting(&records, "198.18.16.0");
        assert!(available.country.is_some_and(|c| c.is_unknown()));
        assert_eq!(
            (available.status, available.opaque_id.as_deref()),
            (Status::Available, None)
        );
        let reserved = record_starting(&records, "198.18.32.0");
        assert_eq!(
            (reserved.status, reserved.country, reserved.date),
            (Status::Reserved, None, None)
        );
    }

    #[test]
    fn delegated_country_codes_are_two_letters_any_case() {
        assert_eq!("nl".parse::<CountryCode>().unwrap().as_str(), "NL");
        assert_eq!("Eu".parse::<CountryCode>().unwrap().as_str(), "EU");
        for bad in ["", "N", "NLD", "N1", "ñl", "n l"] {
            assert!(bad.parse::<CountryCode>().is_err(), "{bad:?}");
        }
        let err = country_networks(&b""[..], "x", "zz", DELEGATED, OnMalformed::Skip).unwrap_err();
        assert!(matches!(err, CountryNetworksError::Country(_)));
    }

    #[test]
    fn delegated_edge_values_are_exact() {
        let text = b"2|test|1|4|20250101|20250101|+0000\n\
            test|NL|ipv4|255.255.255.0|256|20250101|allocated\n\
            test|NL|ipv4|0.0.0.0|1|20250101|allocated\n\
            test|NL|asn|4294967294|2|20250101|allocated\n\
            test|NL|ipv6|::|0|20250101|allocated\n";
        let networks =
            country_networks(&text[..], "t", "NL", DELEGATED, OnMalformed::Refuse).unwrap();
        assert_eq!(
            networks.cidrs(),
            nets(&["0.0.0.0/32", "255.255.255.0/24", "::/0"])
        );
        assert_eq!(networks.asn_count(), 2);
        assert_eq!(networks.ipv6_addresses(), u128::MAX);
    }

    #[test]
    fn delegated_problems_late_and_second_headers() {
        let text = b"2|test|1|1|20250101|20250101|+0000\n\
            2|test|1|1|20250101|20250101|+0000\n\
            test|NL|ipv4|192.0.2.0|256|20250101|allocated\n";
        let errors: Vec<String> = DelegatedReader::new("t", &text[..])
            .filter_map(Result::err)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors, vec!["t:2: a second version line"]);

        let text = b"test|NL|ipv4|192.0.2.0|256|20250101|allocated\n\
            2|test|1|1|20250101|20250101|+0000\n";
        let errors: Vec<String> = DelegatedReader::new("t", &text[..])
            .filter_map(Result::err)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            vec![
                "t:2: a version line after the first record",
                "t:1: no version line before the first record (is this a delegated statistics file?)",
            ]
        );

        let text = b"2|test|1|x|20250101|20250101|+0000\ntest|*|ipv4|*|1|totals\n";
        let errors: Vec<String> = DelegatedReader::new("t", &text[..])
            .filter_map(Result::err)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            vec![
                "t:1: bad version line: record count \"x\" is not a number",
                "t:2: bad summary line: expected registry|*|type|*|count|summary",
                "t:1: no version line before the first record (is this a delegated statistics file?)",
            ]
        );
    }

    #[test]
    fn delegated_overlong_and_non_utf8_lines_are_reported_and_passed() {
        let mut text = b"2|test|1|3|20250101|20250101|+0000\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
        text.extend(b"\ntest|NL|ipv4|192.0.2\xff.0|256|20250101|allocated\n");
        text.extend(b"test|NL|ipv4|198.51.100.0|256|20250101|allocated\r\n");
        let networks =
            country_networks(&text[..], "t", "nl", DELEGATED, OnMalformed::Skip).unwrap();
        assert_eq!(networks.cidrs(), nets(&["198.51.100.0/24"]));
        let problems: Vec<String> = networks.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            vec![
                "t:2: line longer than 4096 bytes".to_string(),
                "t:3: not UTF-8 text".to_string(),
                "t:1: the version line announces 3 records but the file holds 1 (truncated or altered?)"
                    .to_string(),
            ]
        );
    }

    /// A reader that fails after its first line, like a connection cut mid-download.
    struct FailingReader {
        sent: bool,
    }

    impl io::Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.sent {
                return Err(io::Error::other("connection reset"));
            }
            self.sent = true;
            let line = b"2|test|1|1|20250101|20250101|+0000\n";
            buf[..line.len()].copy_from_slice(line);
            Ok(line.len())
        }
    }

    #[test]
    fn delegated_read_failures_are_never_skipped() {
        let reader = io::BufReader::new(FailingReader { sent: false });
        let err = country_networks(reader, "t", "NL", DELEGATED, OnMalformed::Skip).unwrap_err();
        assert_eq!(err.to_string(), "t:2: cannot read: connection reset");
        assert!(matches!(err, CountryNetworksError::Unreadable(_)));
    }

    #[test]
    fn delegated_problems_are_capped() {
        let mut text = b"2|test|1|0|20250101|20250101|+0000\n".to_vec();
        for _ in 0..MAX_PROBLEMS + 10 {
            text.extend(b"garbage\n");
        }
        let networks =
            country_networks(&text[..], "t", "NL", DELEGATED, OnMalformed::Skip).unwrap();
        assert_eq!(networks.problems.len(), MAX_PROBLEMS);
        // Ten more lines and the record count check.
        assert_eq!(networks.problems_omitted, 11);
        let err =
            country_networks(&text[..], "t", "NL", DELEGATED, OnMalformed::Refuse).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t: refused: 1011 problem(s), the first at line 2: ")
        );
    }

    #[test]
    fn delegated_merge_asns_joins_overlaps_and_neighbours() {
        let r = |first, last| AsnRange { first, last };
        assert_eq!(
            merge_asns(vec![
                r(10, 12),
                r(1, 3),
                r(4, 4),
                r(11, 20),
                r(u32::MAX, u32::MAX)
            ]),
            vec![r(1, 4), r(10, 20), r(u32::MAX, u32::MAX)]
        );
    }

    #[test]
    fn delegated_hostile_bytes_never_panic() {
        const PIECES: &[&[u8]] = &[
            b"|",
            b"|",
            b"|",
            b"\n",
            b"*",
            b"summary",
            b"ripencc",
            b"NL",
            b"zz",
            b"ipv4",
            b"ipv6",
            b"asn",
            b"192.0.2.0",
            b"2001:db8::",
            b"255.255.255.255",
            b"4294967295",
            b"18446744073709551616",
            b"0",
            b"768",
            b"129",
            b"20250230",
            b"00000000",
            b"allocated",
            b"available",
            b"#",
            b"2",
            b"2.3",
            b"\r",
            b"\xff",
            b"\xc3",
            b"-1",
            b"",
        ];
        let mut rng = SplitMix64(0x5eed_0fde_1e9a_7e00);
        for _ in 0..3000 {
            let mut text = Vec::new();
            for _ in 0..rng.below(200) as usize {
                if rng.below(8) as usize == 0 {
                    text.push(rng.next_u64() as u8);
                } else {
                    text.extend_from_slice(PIECES[rng.below(PIECES.len() as u64) as usize]);
                }
            }
            for entry in DelegatedReader::new("fuzz", &text[..]) {
                if let Err(e) = entry {
                    assert!(e.line <= text.len() as u64 + 1);
                }
            }
            let _ = country_networks(&text[..], "fuzz", "NL", DELEGATED, OnMalformed::Skip);
        }
    }
}
