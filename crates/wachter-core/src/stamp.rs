//! Times as wachter writes them where text is compared: UTC to the second with a fixed
//! width (`2020-01-13T09:12:00Z`). RFC 3339 with optional fractions does not sort as text
//! (`…:00Z` sorts after `…:00.5Z`); this form does, on SQLite and PostgreSQL alike.

use time::{OffsetDateTime, UtcOffset};

/// `t` in UTC, to the second.
pub fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
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
}
