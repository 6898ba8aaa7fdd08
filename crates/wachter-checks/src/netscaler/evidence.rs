//! Reading evidence out of recorded exchanges: headers, titles, cookies, the rdx_en stamp.
//! Everything here takes bytes a hostile server sent and never panics on them.

use std::io::Read;

use wachter_core::record::{HttpExchange, HttpOutcome, ServiceRecord};

/// The exchange of a plan step, if it was made.
pub fn exchange<'a>(record: &'a ServiceRecord, name: &str) -> Option<&'a HttpExchange> {
    record.http.iter().find(|e| e.name == name)
}

/// The exchange, if it produced a response.
pub fn response<'a>(record: &'a ServiceRecord, name: &str) -> Option<&'a HttpExchange> {
    exchange(record, name).filter(|e| e.outcome == HttpOutcome::Response)
}

pub fn body(ex: &HttpExchange) -> &[u8] {
    ex.body.as_ref().map(|b| b.as_bytes()).unwrap_or_default()
}

/// Header lines of a response as (lower-case name, value) pairs.
pub fn headers(ex: &HttpExchange) -> Vec<(String, String)> {
    let Some(block) = &ex.headers else {
        return Vec::new();
    };
    String::from_utf8_lossy(block.as_bytes())
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect()
}

pub fn header(ex: &HttpExchange, name: &str) -> Option<String> {
    headers(ex)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The text of the first `<title …>…</title>` element, trimmed.
pub fn title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).into_owned();
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let t = text.get(start..end)?.trim();
    (!t.is_empty()).then(|| t.chars().take(200).collect())
}

/// Names of the cookies a response sets.
pub fn cookie_names(ex: &HttpExchange) -> Vec<String> {
    headers(ex)
        .into_iter()
        .filter(|(n, _)| n == "set-cookie")
        .filter_map(|(_, v)| v.split('=').next().map(|n| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// The `?v=<32 hex>` cache-buster hash of a login page.
pub fn vhash(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(256 * 1024)]).into_owned();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("v=") {
        let candidate = &rest[at + 2..];
        let hex: String = candidate
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        let preceded_ok = at == 0 || matches!(rest.as_bytes()[at - 1], b'?' | b'&');
        if preceded_ok && hex.len() == 32 {
            return Some(hex.to_ascii_lowercase());
        }
        rest = candidate;
    }
    None
}

/// What the rdx_en.json.gz answer says about the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RdxStamp {
    /// A gzip member named `rdx_en.json` with this MTIME.
    Stamp { mtime: u32, unwrapped: bool },
    /// Not the file (an HTML error page, a honeypot's text, a truncated body).
    NotRdx,
}

/// Reads the GZIP MTIME from the raw body, never decompressing the file itself. A body
/// wrapped in one more gzip layer (transfer compression without FNAME) is unwrapped once.
pub fn rdx_stamp(raw: &[u8]) -> RdxStamp {
    if let Some(mtime) = rdx_header(raw) {
        return RdxStamp::Stamp {
            mtime,
            unwrapped: false,
        };
    }
    if raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        // Decode the outer layer only as far as the inner header needs (bounded).
        let mut inner = Vec::with_capacity(256);
        let decoder = flate2::read::GzDecoder::new(raw);
        let _ = decoder.take(256).read_to_end(&mut inner);
        if let Some(mtime) = rdx_header(&inner) {
            return RdxStamp::Stamp {
                mtime,
                unwrapped: true,
            };
        }
    }
    RdxStamp::NotRdx
}

/// `1f 8b 08 08` (gzip, deflate, FNAME) with the original name `rdx_en.json`.
fn rdx_header(bytes: &[u8]) -> Option<u32> {
    if bytes.len() < 10 || bytes[..4] != [0x1f, 0x8b, 0x08, 0x08] {
        return None;
    }
    let head = &bytes[..bytes.len().min(100)];
    if !contains(head, b"rdx_en.json") {
        return None;
    }
    Some(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub fn gzip_named(name: &str, mtime: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = flate2::GzBuilder::new()
            .filename(name)
            .mtime(mtime)
            .write(&mut out, flate2::Compression::default());
        enc.write_all(payload).unwrap();
        enc.finish().unwrap();
        out
    }

    #[test]
    fn stamps_are_read_raw_and_unwrapped_once() {
        let file = gzip_named("rdx_en.json", 1579524387, b"{\"a\":1}");
        assert_eq!(
            rdx_stamp(&file),
            RdxStamp::Stamp {
                mtime: 1579524387,
                unwrapped: false
            }
        );
        let mut outer = Vec::new();
        let mut enc = flate2::write::GzEncoder::new(&mut outer, flate2::Compression::default());
        enc.write_all(&file).unwrap();
        enc.finish().unwrap();
        assert_eq!(
            rdx_stamp(&outer),
            RdxStamp::Stamp {
                mtime: 1579524387,
                unwrapped: true
            }
        );
        assert_eq!(
            rdx_stamp(&gzip_named("rdx_en.json", 0, b"{}")),
            RdxStamp::Stamp {
                mtime: 0,
                unwrapped: false
            }
        );
        assert_eq!(
            rdx_stamp(&gzip_named("other.json", 5, b"{}")),
            RdxStamp::NotRdx
        );
        assert_eq!(rdx_stamp(b"<html>404</html>"), RdxStamp::NotRdx);
        assert_eq!(rdx_stamp(&[0x1f, 0x8b, 0x08, 0x00, 0xff]), RdxStamp::NotRdx);
    }

    #[test]
    fn titles_hashes_and_cookies() {
        assert_eq!(
            title(b"<html><head><TITLE class=\"_ctxstxt_NetscalerGateway\">Citrix Gateway</TITLE>"),
            Some("Citrix Gateway".into())
        );
        assert_eq!(title(b"<title></title>"), None);
        assert_eq!(title(b"no title"), None);
        assert_eq!(
            vhash(b"<script src=\"/vpn/js/x.js?v=26DF0E65FBA681FAAEB333058A8B28BF\">"),
            Some("26df0e65fba681faaeb333058a8b28bf".into())
        );
        assert_eq!(vhash(b"?v=123"), None);
        assert_eq!(vhash(b"nav=26df0e65fba681faaeb333058a8b28bf"), None);
    }
}
