//! Times as wachter writes them where text is compared: UTC to the second with a fixed
//! width (`2020-01-13T09:12:00Z`). RFC 3339 with optional fractions does not sort as text
//! (`…:00Z` sorts after `…:00.5Z`); this form does, on SQLite and PostgreSQL alike.

use time::{OffsetDateTime, UtcOffset};

/// `t` in UTC, to the second. A time whose UTC date leaves the years 0000–9999 (possible
/// for a user-supplied `9999-12-31T23:59:59-23:59`) is clamped to the first or last
/// second of that range, which compares the same way against any stored time.
pub fn utc(t: OffsetDateTime) -> String {
    let t = match t.checked_to_offset(UtcOffset::UTC) {
        Some(t) if (0..=9999).contains(&t.year()) => t,
        _ if t.year() > 0 => return "9999-12-31T23:59:59Z".into(),
        _ => return "0000-01-01T00:00:00Z".into(),
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_578_906_720).unwrap();
        let plus_two = t.to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(utc(plus_two), "2020-01-13T09:12:00Z");
    }

    #[test]
    fn times_beyond_the_range_clamp_instead_of_panicking() {
        let late = time::macros::datetime!(9999-12-31 23:59:59 -23:59);
        assert_eq!(utc(late), "9999-12-31T23:59:59Z");
        let early = time::macros::datetime!(0000-01-01 00:00:00 +23:59);
        assert_eq!(utc(early), "0000-01-01T00:00:00Z");
    }
}
