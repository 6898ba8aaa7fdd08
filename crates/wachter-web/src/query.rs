//! List filters and other query parameters, parsed the same way for pages, the API and
//! CSV downloads. Empty fields mean "any", so a filter form can submit every field.

use std::net::IpAddr;

use axum::extract::Query;
use axum::http::Uri;
use ipnet::IpNet;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wachter_store::view::{FindingFilter, MAX_PAGE, Page};

use crate::error::WebError;

/// The finding states a filter may name (`open` is vulnerable and mitigated together).
pub const STATES: [&str; 6] = [
    "open",
    "vulnerable",
    "mitigated",
    "patched",
    "not_applicable",
    "unknown",
];

/// The longest sector a filter may name.
const MAX_SECTOR_CHARS: usize = 100;

/// `?cve=&state=&organisation=&sector=&network=&since=&until=&campaign=&offset=&limit=&format=`
#[derive(
    Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A CVE (`CVE-2023-3519`).
    #[serde(default)]
    pub cve: String,
    /// A finding state, or `open` (vulnerable and mitigated).
    #[serde(default)]
    pub state: String,
    /// An organisation id.
    #[serde(default)]
    pub organisation: String,
    /// A sector (compared case-insensitively).
    #[serde(default)]
    pub sector: String,
    /// A CIDR network or a single address.
    #[serde(default)]
    pub network: String,
    /// `YYYY-MM-DD` or an RFC 3339 time: last seen at or after.
    #[serde(default)]
    pub since: String,
    /// `YYYY-MM-DD` or an RFC 3339 time: last seen before (a fraction of a second counts
    /// as the whole second).
    #[serde(default)]
    pub until: String,
    /// A campaign id: findings its messages told (cancelled messages told nobody).
    #[serde(default)]
    pub campaign: String,
    /// Rows to skip (default 0).
    #[serde(default)]
    pub offset: String,
    /// Rows per page, 1 to 1000 (default 100).
    #[serde(default)]
    pub limit: String,
    /// `json` (default for the API) or `csv`.
    #[serde(default)]
    pub format: String,
}

impl ListQuery {
    /// The store filter, or a 400 naming the field that is wrong.
    pub fn filter(&self) -> Result<FindingFilter, WebError> {
        Ok(FindingFilter {
            cve: non_empty(&self.cve).map(parse_cve).transpose()?,
            state: non_empty(&self.state).map(parse_state).transpose()?,
            organisation: non_empty(&self.organisation)
                .map(|v| {
                    positive_id(v)
                        .ok_or_else(|| bad("organisation", v, "an organisation id (a number)"))
                })
                .transpose()?,
            sector: parse_sector(&self.sector)?,
            network: non_empty(&self.network).map(parse_network).transpose()?,
            seen_since: non_empty(&self.since)
                .map(|v| parse_time("since", v, Rounding::Down))
                .transpose()?,
            seen_until: non_empty(&self.until)
                .map(|v| parse_time("until", v, Rounding::Up))
                .transpose()?,
            campaign: non_empty(&self.campaign)
                .map(|v| {
                    positive_id(v).ok_or_else(|| bad("campaign", v, "a campaign id (a number)"))
                })
                .transpose()?,
        })
    }

    pub fn page(&self) -> Result<Page, WebError> {
        let default = Page::default();
        let offset = match non_empty(&self.offset) {
            None => default.offset,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|o| *o <= i64::MAX as u64)
                .ok_or_else(|| bad("offset", v, "a number of rows, 0 or more"))?,
        };
        let limit = match non_empty(&self.limit) {
            None => default.limit,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| bad("limit", v, "a number from 1 to 1000"))?,
        };
        Ok(Page { offset, limit })
    }

    /// Whether CSV was asked for.
    pub fn csv(&self) -> Result<bool, WebError> {
        wants_csv(&self.format)
    }

    /// The same filters as a query string (for paging links and the CSV link), without
    /// offset, limit and format; values percent-encoded. Empty fields are left out; the
    /// result has no leading `?` and is empty when nothing is filtered.
    pub fn to_query_string(&self) -> String {
        [
            ("cve", &self.cve),
            ("state", &self.state),
            ("organisation", &self.organisation),
            ("sector", &self.sector),
            ("network", &self.network),
            ("since", &self.since),
            ("until", &self.until),
            ("campaign", &self.campaign),
        ]
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| format!("{name}={}", percent_encode(value.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// `?format=` for lists without filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: String,
}

/// `?sector=&format=` for the organisations (the page ignores `format`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SectorQuery {
    /// Only organisations of this sector (case-insensitive).
    #[serde(default)]
    pub sector: String,
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: String,
}

impl SectorQuery {
    /// The sector asked for, trimmed; `None` for any.
    pub fn sector(&self) -> Result<Option<String>, WebError> {
        parse_sector(&self.sector)
    }
}

/// Whether `?format=` asks for CSV (`csv`) rather than JSON (empty or `json`).
pub fn wants_csv(format: &str) -> Result<bool, WebError> {
    match format.trim() {
        "" | "json" => Ok(false),
        "csv" => Ok(true),
        other => Err(bad("format", other, "json or csv")),
    }
}

/// Query parameters read into `T`; a malformed query string is a 400 that says why.
pub fn parse<T: DeserializeOwned>(uri: &Uri) -> Result<T, WebError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(value)| value)
        .map_err(|e| WebError::BadRequest(format!("query: {}", e.body_text())))
}

/// A database id as text: a positive number, or `None`.
pub fn positive_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// `value` with every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`: safe
/// in a query value and in a path segment.
pub fn percent_encode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

fn non_empty(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty()).then_some(value)
}

/// A 400 that names the field, shows (a bounded part of) the value and says what fits.
fn bad(field: &str, value: &str, expected: &str) -> WebError {
    let shown: String = value.chars().take(60).collect();
    let cut = if shown.len() < value.len() { "…" } else { "" };
    WebError::BadRequest(format!("{field}: expected {expected}, not {shown:?}{cut}"))
}

/// A sector (trimmed, at most 100 characters), or `None` when empty.
fn parse_sector(value: &str) -> Result<Option<String>, WebError> {
    non_empty(value)
        .map(|v| {
            if v.chars().count() <= MAX_SECTOR_CHARS {
                Ok(v.to_string())
            } else {
                Err(bad("sector", v, "at most 100 characters"))
            }
        })
        .transpose()
}

/// `CVE-YYYY-NNNN…` (any case in, upper case out).
fn parse_cve(value: &str) -> Result<String, WebError> {
    let upper = value.to_ascii_uppercase();
    let valid = upper.strip_prefix("CVE-").is_some_and(|rest| {
        rest.split_once('-').is_some_and(|(year, number)| {
            year.len() == 4
                && year.bytes().all(|b| b.is_ascii_digit())
                && (4..=19).contains(&number.len())
                && number.bytes().all(|b| b.is_ascii_digit())
        })
    });
    if valid {
        Ok(upper)
    } else {
        Err(bad("cve", value, "a CVE id like CVE-2023-3519"))
    }
}

fn parse_state(value: &str) -> Result<String, WebError> {
    let lower = value.to_ascii_lowercase();
    if STATES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(bad(
            "state",
            value,
            &format!("one of {}", STATES.join(", ")),
        ))
    }
}

/// A CIDR network (host bits cleared) or a single address (as a /32 or /128).
fn parse_network(value: &str) -> Result<IpNet, WebError> {
    if let Ok(net) = value.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    value.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        bad(
            "network",
            value,
            "a network (192.0.2.0/24, 2001:db8::/32) or an address",
        )
    })
}

/// Which whole second a time with a fraction becomes (the store's bounds are whole
/// seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rounding {
    /// The second it lies in: "at or after" keeps every time from then on.
    Down,
    /// The next second: "before" keeps every time up to it, the rest of its second too.
    Up,
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339, as the store's UTC text (whole seconds,
/// rounded as `rounding` says).
fn parse_time(field: &str, value: &str, rounding: Rounding) -> Result<String, WebError> {
    let expected = "a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z)";
    if value.len() == 10 {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        return time::Date::parse(value, format)
            .map(|date| wachter_store::timestamp(date.midnight().assume_utc()))
            .map_err(|_| bad(field, value, expected));
    }
    let time = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| bad(field, value, expected))?;
    let time = match rounding {
        Rounding::Up if time.nanosecond() > 0 => {
            time.checked_add(time::Duration::seconds(1)).unwrap_or(time)
        }
        _ => time,
    };
    Ok(wachter_store::timestamp(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let mut q = ListQuery::default();
        for (name, value) in pairs {
            let value = value.to_string();
            match *name {
                "cve" => q.cve = value,
                "state" => q.state = value,
                "organisation" => q.organisation = value,
                "sector" => q.sector = value,
                "network" => q.network = value,
                "since" => q.since = value,
                "until" => q.until = value,
                "campaign" => q.campaign = value,
                "offset" => q.offset = value,
                "limit" => q.limit = value,
                "format" => q.format = value,
                other => panic!("no field {other}"),
            }
        }
        q
    }

    #[test]
    fn valid_filters_are_normalised() {
        let cases: &[(&str, &str, FindingFilter)] = &[
            (
                "cve",
                "cve-2023-3519",
                FindingFilter {
                    cve: Some("CVE-2023-3519".into()),
                    ..Default::default()
                },
            ),
            (
                "cve",
                " CVE-2019-19781 ",
                FindingFilter {
                    cve: Some("CVE-2019-19781".into()),
                    ..Default::default()
                },
            ),
            (
                "state",
                "open",
                FindingFilter {
                    state: Some("open".into()),
                    ..Default::default()
                },
            ),
            (
                "state",
                "Not_Applicable",
                FindingFilter {
                    state: Some("not_applicable".into()),
                    ..Default::default()
                },
            ),
            (
                "organisation",
                "42",
                FindingFilter {
                    organisation: Some(42),
                    ..Default::default()
                },
            ),
            (
                "sector",
                "Local government",
                FindingFilter {
                    sector: Some("Local government".into()),
                    ..Default::default()
                },
            ),
            (
                "network",
                "192.0.2.77/24",
                FindingFilter {
                    network: Some("192.0.2.0/24".parse().unwrap()),
                    ..Default::default()
                },
            ),
            (
                "network",
                "192.0.2.77",
                FindingFilter {
                    network: Some("192.0.2.77/32".parse().unwrap()),
                    ..Default::default()
                },
            ),
            (
                "network",
                "2001:db8::1/32",
                FindingFilter {
                    network: Some("2001:db8::/32".parse().unwrap()),
                    ..Default::default()
                },
            ),
            (
                "network",
                "2001:db8::1",
                FindingFilter {
                    network: Some("2001:db8::1/128".parse().unwrap()),
                    ..Default::default()
                },
            ),
            (
                "since",
                "2026-01-31",
                FindingFilter {
                    seen_since: Some("2026-01-31T00:00:00Z".into()),
                    ..Default::default()
                },
            ),
            (
                "since",
                "2026-01-31T12:30:05+02:00",
                FindingFilter {
                    seen_since: Some("2026-01-31T10:30:05Z".into()),
                    ..Default::default()
                },
            ),
            // A fraction: `since` keeps the second it lies in, `until` the whole of it.
            (
                "until",
                "2026-01-31T23:59:59.75Z",
                FindingFilter {
                    seen_until: Some("2026-02-01T00:00:00Z".into()),
                    ..Default::default()
                },
            ),
            (
                "until",
                "2026-01-31T12:00:05.000000001+01:00",
                FindingFilter {
                    seen_until: Some("2026-01-31T11:00:06Z".into()),
                    ..Default::default()
                },
            ),
            (
                "until",
                "2026-01-31T12:00:05.000Z",
                FindingFilter {
                    seen_until: Some("2026-01-31T12:00:05Z".into()),
                    ..Default::default()
                },
            ),
            (
                "since",
                "2026-01-31T23:59:59.75Z",
                FindingFilter {
                    seen_since: Some("2026-01-31T23:59:59Z".into()),
                    ..Default::default()
                },
            ),
            (
                "campaign",
                " 7 ",
                FindingFilter {
                    campaign: Some(7),
                    ..Default::default()
                },
            ),
            ("sector", "   ", FindingFilter::default()),
        ];
        for (field, value, expected) in cases {
            assert_eq!(
                &query(&[(field, value)]).filter().unwrap(),
                expected,
                "{field}={value}"
            );
        }
    }

    #[test]
    fn invalid_filters_name_their_field() {
        let long_sector = "x".repeat(101);
        let cases: &[(&str, &str)] = &[
            ("cve", "CVE-23-3519"),
            ("cve", "CVE-2023-351"),
            ("cve", "2023-3519"),
            ("cve", "CVE-2023-3519'--"),
            ("state", "pwned"),
            ("organisation", "acme"),
            ("organisation", "-1"),
            ("sector", &long_sector),
            ("network", "192.0.2.0/33"),
            ("network", "example.org"),
            ("since", "2026-13-01"),
            ("since", "yesterday"),
            ("until", "2026-01-31 12:00"),
            ("campaign", "x"),
            ("campaign", "0"),
        ];
        for (field, value) in cases {
            match query(&[(field, value)]).filter() {
                Err(WebError::BadRequest(message)) => {
                    assert!(
                        message.starts_with(&format!("{field}: ")),
                        "{field}={value}: {message}"
                    )
                }
                other => panic!("{field}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn times_whose_utc_leaves_the_years_0000_to_9999_are_bounds_not_panics() {
        // (field, value, the bound it becomes); 400 would do too, a panic would not.
        let cases = [
            ("since", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59Z"),
            ("until", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59Z"),
            ("since", "0000-01-01T00:00:00+23:59", "0000-01-01T00:00:00Z"),
            ("until", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
            ("until", "9999-12-31T23:59:59.5Z", "9999-12-31T23:59:59Z"),
        ];
        for (field, value, bound) in cases {
            let filter = query(&[(field, value)]).filter();
            match filter {
                Ok(filter) => {
                    let got = if field == "since" {
                        filter.seen_since
                    } else {
                        filter.seen_until
                    };
                    assert_eq!(got.as_deref(), Some(bound), "{field}={value}");
                }
                Err(WebError::BadRequest(_)) => {}
                Err(other) => panic!("{field}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn paging_defaults_and_bounds() {
        // (offset, limit) → (offset, limit), or the field named in the error.
        type Expected = Result<(u64, u64), &'static str>;
        let cases: &[(&str, &str, Expected)] = &[
            ("", "", Ok((0, 100))),
            ("20", "50", Ok((20, 50))),
            ("0", "1000", Ok((0, 1000))),
            ("0", "1", Ok((0, 1))),
            ("-1", "", Err("offset")),
            ("x", "", Err("offset")),
            ("", "0", Err("limit")),
            ("", "1001", Err("limit")),
            ("", "ten", Err("limit")),
        ];
        for (offset, limit, expected) in cases {
            let got = query(&[("offset", offset), ("limit", limit)]).page();
            match (got, expected) {
                (Ok(page), Ok((o, l))) => assert_eq!((page.offset, page.limit), (*o, *l)),
                (Err(WebError::BadRequest(m)), Err(field)) => {
                    assert!(m.starts_with(&format!("{field}: ")), "{m}")
                }
                (got, expected) => panic!("{offset}/{limit}: {got:?} vs {expected:?}"),
            }
        }
    }

    #[test]
    fn format_is_json_or_csv() {
        for (format, expected) in [
            ("", Some(false)),
            ("json", Some(false)),
            ("csv", Some(true)),
            ("xml", None),
        ] {
            match (query(&[("format", format)]).csv(), expected) {
                (Ok(csv), Some(want)) => assert_eq!(csv, want, "{format}"),
                (Err(WebError::BadRequest(m)), None) => assert!(m.starts_with("format: "), "{m}"),
                (got, _) => panic!("{format}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_query_string_keeps_filters_encoded_and_drops_paging() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], ""),
            (&[("offset", "100"), ("limit", "10"), ("format", "csv")], ""),
            (
                &[("cve", "CVE-2023-3519"), ("state", "open")],
                "cve=CVE-2023-3519&state=open",
            ),
            (
                &[("sector", "Water & power"), ("network", "192.0.2.0/24")],
                "sector=Water%20%26%20power&network=192.0.2.0%2F24",
            ),
            (
                &[("since", "2026-01-31T12:00:00+01:00")],
                "since=2026-01-31T12%3A00%3A00%2B01%3A00",
            ),
            (
                &[("campaign", "3"), ("state", "open"), ("limit", "5")],
                "state=open&campaign=3",
            ),
            (
                &[("sector", "Gemeente \"Zuid\"<x>é")],
                "sector=Gemeente%20%22Zuid%22%3Cx%3E%C3%A9",
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(query(pairs).to_query_string(), *expected, "{pairs:?}");
        }
    }
}
