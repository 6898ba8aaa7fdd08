//! Target syntax: what an analyst can hand to `wachter scan`.
//!
//! One line (or command-line argument) is one of:
//!
//! | spelling                         | meaning                                            |
//! |----------------------------------|----------------------------------------------------|
//! | `192.0.2.0/24`, `2001:db8::/120` | a network, crossed with `--ports`                  |
//! | `192.0.2.10-192.0.2.20`          | a range, crossed with `--ports`                    |
//! | `192.0.2.7`, `2001:db8::7`       | one address, crossed with `--ports`                |
//! | `192.0.2.7:8443`, `[2001:db8::7]:443` | one service                                   |
//! | `vpn.example.nl`, `vpn.example.nl:8443` | a hostname; every A/AAAA becomes a target that keeps the name for SNI and `Host` |
//! | `192.0.2.7,vpn.example.nl[,tag[,port]]` | zgrab2-style: connect to the address, use the name; no DNS |
//!
//! `#` starts a comment; blank lines are skipped. Files may instead hold the output of
//! masscan (`-oL`, `-oJ`, `-oD`), zmap (CSV with a header row) or nmap/masscan XML (`-oX`):
//! [`TargetReader`] recognises the format from the first bytes and yields the open TCP
//! services they list.
//!
//! Parsing never panics and never guesses: a line that fits none of these is an error that
//! names its source and line number.

use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use quick_xml::events::Event;

use crate::addr::IpRange;
use crate::capped::Capped;

/// One parsed target line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetItem {
    /// A network or range: part of the address space that is ordered by [`crate::order`].
    Network(IpRange),
    /// One address, with the name to present (SNI, `Host`) and a fixed port if given.
    Address {
        ip: IpAddr,
        hostname: Option<String>,
        port: Option<u16>,
    },
    /// A name still to be resolved.
    Host { name: String, port: Option<u16> },
}

/// A target line that could not be understood, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {why}: {text:?}")]
pub struct TargetError {
    pub origin: String,
    pub line: u64,
    pub text: String,
    pub why: String,
}

/// The longest line or XML event we accept; anything longer is hostile or not a target list.
pub const MAX_LINE: usize = 64 * 1024;

/// Parses one line in the generic target syntax. `Ok(None)` for blank and comment lines.
pub fn parse_line(line: &str) -> Result<Option<TargetItem>, String> {
    let line = match line.find('#') {
        Some(at) => &line[..at],
        None => line,
    }
    .trim();
    if line.is_empty() {
        return Ok(None);
    }
    if line.contains(',') {
        return parse_zgrab_line(line).map(Some);
    }
    if let Ok(ip) = IpAddr::from_str(line) {
        return Ok(Some(TargetItem::Address {
            ip,
            hostname: None,
            port: None,
        }));
    }
    if line.contains('/')
        || (line.contains('-') && line.split('-').all(|p| IpAddr::from_str(p.trim()).is_ok()))
    {
        return IpRange::from_str(line)
            .map(|r| Some(TargetItem::Network(r)))
            .map_err(|e| e.to_string());
    }
    if let Ok(sa) = SocketAddr::from_str(line) {
        return Ok(Some(TargetItem::Address {
            ip: sa.ip(),
            hostname: None,
            port: Some(nonzero_port(sa.port())?),
        }));
    }
    let (name, port) = match line.rsplit_once(':') {
        Some((name, port)) => (name, Some(parse_port(port)?)),
        None => (line, None),
    };
    let name = normalise_hostname(name)?;
    Ok(Some(TargetItem::Host { name, port }))
}

/// `ip,hostname[,tag[,port]]`, as zgrab2 reads it. An empty address means "resolve the name".
fn parse_zgrab_line(line: &str) -> Result<TargetItem, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if fields.len() > 4 {
        return Err("expected ip,hostname[,tag[,port]]".into());
    }
    let hostname = match fields.get(1).copied().filter(|h| !h.is_empty()) {
        Some(h) => Some(normalise_hostname(h)?),
        None => None,
    };
    let port = match fields.get(3).copied().filter(|p| !p.is_empty()) {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    match fields[0] {
        "" => match hostname {
            Some(name) => Ok(TargetItem::Host { name, port }),
            None => Err("neither an address nor a hostname".into()),
        },
        ip => {
            let ip = IpAddr::from_str(ip).map_err(|_| format!("{ip:?} is not an IP address"))?;
            Ok(TargetItem::Address { ip, hostname, port })
        }
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    let port: u16 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a port"))?;
    nonzero_port(port)
}

fn nonzero_port(port: u16) -> Result<u16, String> {
    if port == 0 {
        Err("port 0 cannot be scanned".into())
    } else {
        Ok(port)
    }
}

/// Lower-cases and checks a DNS name (LDH labels, underscores tolerated, optional trailing dot).
pub fn normalise_hostname(name: &str) -> Result<String, String> {
    let trimmed = name.trim().trim_end_matches('.');
    let bad = || format!("{name:?} is not an address, network, range or hostname");
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(bad());
    }
    let labels: Vec<&str> = trimmed.split('.').collect();
    for label in &labels {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty()
            || label.len() > 63
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(bad());
        }
    }
    // A name whose last label is numeric is a mistyped address, not a host.
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// The file formats [`TargetReader`] recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Lines,
    MasscanList,
    MasscanJson,
    ZmapCsv,
    NmapXml,
}

/// Reads targets from any supported format, one item at a time, in file order.
pub struct TargetReader<R> {
    origin: String,
    inner: Inner<R>,
}

enum Inner<R> {
    Lines {
        reader: R,
        line_no: u64,
        format: Format,
        zmap: Option<ZmapColumns>,
    },
    Xml {
        reader: quick_xml::Reader<Capped<R>>,
        buf: Vec<u8>,
        host: XmlHost,
        done: bool,
        pending: Vec<TargetItem>,
    },
}

#[derive(Clone, Debug)]
struct ZmapColumns {
    saddr: usize,
    sport: Option<usize>,
    success: Option<usize>,
    classification: Option<usize>,
}

#[derive(Default)]
struct XmlHost {
    ip: Option<IpAddr>,
    hostname: Option<String>,
    ports: Vec<u16>,
    port: Option<(u16, bool)>,
}

impl<R: BufRead> TargetReader<R> {
    /// Sniffs the format from the buffered prefix of `reader`.
    pub fn new(origin: impl Into<String>, mut reader: R) -> Result<Self, TargetError> {
        let origin = origin.into();
        let format = {
            let head = reader.fill_buf().map_err(|e| TargetError {
                origin: origin.clone(),
                line: 0,
                text: String::new(),
                why: format!("cannot read: {e}"),
            })?;
            sniff(head)
        };
        let inner = match format {
            Format::NmapXml => {
                // A tag is read whole: cap the bytes between two `>`.
                let mut xml = quick_xml::Reader::from_reader(Capped::new(reader, b'>', MAX_LINE));
                xml.config_mut().trim_text(true);
                Inner::Xml {
                    reader: xml,
                    buf: Vec::new(),
                    host: XmlHost::default(),
                    done: false,
                    pending: Vec::new(),
                }
            }
            format => Inner::Lines {
                reader,
                line_no: 0,
                format,
                zmap: None,
            },
        };
        Ok(TargetReader { origin, inner })
    }

    pub fn format(&self) -> Format {
        match &self.inner {
            Inner::Lines { format, .. } => *format,
            Inner::Xml { .. } => Format::NmapXml,
        }
    }

    fn error(&self, line: u64, text: &str, why: impl Into<String>) -> TargetError {
        let mut text = text.to_string();
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        TargetError {
            origin: self.origin.clone(),
            line,
            text,
            why: why.into(),
        }
    }

    /// The next target, with the line it came from (or the byte offset, for XML).
    pub fn next_item(&mut self) -> Option<Result<(u64, TargetItem), TargetError>> {
        match &mut self.inner {
            Inner::Lines { .. } => self.next_line_item(),
            Inner::Xml { .. } => self.next_xml_item(),
        }
    }

    fn next_line_item(&mut self) -> Option<Result<(u64, TargetItem), TargetError>> {
        loop {
            let Inner::Lines {
                reader,
                line_no,
                format,
                zmap,
            } = &mut self.inner
            else {
                return None;
            };
            let mut raw = Vec::new();
            let read =
                std::io::Read::take(&mut *reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut raw);
            *line_no += 1;
            let (line_no, format) = (*line_no, *format);
            match read {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(self.error(line_no, "", format!("cannot read: {e}")))),
            }
            if raw.len() > MAX_LINE {
                return Some(Err(self.error(
                    line_no,
                    "",
                    format!("line longer than {MAX_LINE} bytes"),
                )));
            }
            let Ok(text) = std::str::from_utf8(&raw) else {
                return Some(Err(self.error(
                    line_no,
                    &String::from_utf8_lossy(&raw),
                    "not UTF-8 text",
                )));
            };
            let text = text.trim_end_matches(['\r', '\n']);
            let parsed = match format {
                Format::Lines => parse_line(text),
                Format::MasscanList => parse_masscan_list(text),
                Format::MasscanJson => parse_masscan_json(text),
                Format::ZmapCsv => match zmap {
                    Some(cols) => parse_zmap_row(cols, text),
                    None => zmap_header(text).map(|cols| {
                        *zmap = Some(cols);
                        None
                    }),
                },
                Format::NmapXml => Ok(None),
            };
            match parsed {
                Ok(Some(item)) => return Some(Ok((line_no, item))),
                Ok(None) => continue,
                Err(why) => return Some(Err(self.error(line_no, text, why))),
            }
        }
    }

    fn next_xml_item(&mut self) -> Option<Result<(u64, TargetItem), TargetError>> {
        loop {
            let Inner::Xml {
                reader,
                buf,
                host,
                done,
                pending,
            } = &mut self.inner
            else {
                return None;
            };
            if let Some(item) = pending.pop() {
                let at = reader.buffer_position();
                return Some(Ok((at, item)));
            }
            if *done {
                return None;
            }
            buf.clear();
            let at = reader.buffer_position();
            let event = match reader.read_event_into(buf) {
                Ok(event) => event,
                Err(e) => {
                    *done = true;
                    return Some(Err(self.error(
                        at,
                        "",
                        format!("broken XML at byte {at}: {e}"),
                    )));
                }
            };
            match event {
                Event::Eof => *done = true,
                Event::Start(e) | Event::Empty(e) => {
                    let attr = |name: &[u8]| -> Option<String> {
                        e.attributes()
                            .flatten()
                            .find(|a| a.key.as_ref() == name)
                            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                    };
                    match e.name().as_ref() {
                        b"host" => *host = XmlHost::default(),
                        b"address" => {
                            let kind = attr(b"addrtype").unwrap_or_default();
                            if kind == "ipv4" || kind == "ipv6" {
                                let text = attr(b"addr").unwrap_or_default();
                                match IpAddr::from_str(&text) {
                                    Ok(ip) => host.ip = Some(ip),
                                    Err(_) => {
                                        *done = true;
                                        return Some(Err(self.error(
                                            at,
                                            &text,
                                            "not an IP address",
                                        )));
                                    }
                                }
                            }
                        }
                        // Only names the user gave; PTR names are not proof of ownership.
                        b"hostname" if attr(b"type").as_deref() == Some("user") => {
                            host.hostname = attr(b"name").and_then(|n| normalise_hostname(&n).ok());
                        }
                        b"port" => {
                            let tcp = attr(b"protocol").as_deref() == Some("tcp");
                            host.port = match attr(b"portid").map(|p| parse_port(&p)) {
                                Some(Ok(p)) if tcp => Some((p, false)),
                                Some(Err(why)) => {
                                    *done = true;
                                    return Some(Err(self.error(at, "", why)));
                                }
                                _ => None,
                            };
                        }
                        b"state" => {
                            if let Some((_, open)) = host.port.as_mut() {
                                *open = attr(b"state").as_deref() == Some("open");
                            }
                        }
                        _ => {}
                    }
                }
                Event::End(e) => match e.name().as_ref() {
                    b"port" => {
                        if let Some((port, true)) = host.port.take() {
                            host.ports.push(port);
                        }
                    }
                    b"host" => {
                        let finished = std::mem::take(host);
                        if let Some(ip) = finished.ip {
                            for port in finished.ports.into_iter().rev() {
                                pending.push(TargetItem::Address {
                                    ip,
                                    hostname: finished.hostname.clone(),
                                    port: Some(port),
                                });
                            }
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
            let Inner::Xml { buf, done, .. } = &mut self.inner else {
                return None;
            };
            if buf.len() > MAX_LINE {
                *done = true;
                return Some(Err(self.error(at, "", "XML element too large")));
            }
        }
    }
}

impl<R: BufRead> Iterator for TargetReader<R> {
    type Item = Result<(u64, TargetItem), TargetError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item()
    }
}

fn sniff(head: &[u8]) -> Format {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if first.starts_with("<?xml")
        || first.starts_with("<nmaprun")
        || first.starts_with("<!DOCTYPE nmaprun")
    {
        Format::NmapXml
    } else if first.starts_with("#masscan")
        || (first.starts_with("open tcp ") && first.split_whitespace().count() == 5)
    {
        Format::MasscanList
    } else if first == "[" || first.starts_with("[{") || first.starts_with('{') {
        Format::MasscanJson
    } else if first.split(',').any(|c| c.trim() == "saddr") {
        Format::ZmapCsv
    } else {
        Format::Lines
    }
}

/// `open tcp 443 192.0.2.7 1390380064`; comments and non-open states are skipped.
fn parse_masscan_list(line: &str) -> Result<Option<TargetItem>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [state, proto, port, ip, ..] = fields[..] else {
        return Err("expected `<state> <proto> <port> <ip> <time>`".into());
    };
    if state != "open" || proto != "tcp" {
        return Ok(None);
    }
    let ip = IpAddr::from_str(ip).map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok(Some(TargetItem::Address {
        ip,
        hostname: None,
        port: Some(parse_port(port)?),
    }))
}

/// One object per line: masscan `-oJ` (an array with objects on their own lines) and `-oD`.
fn parse_masscan_json(line: &str) -> Result<Option<TargetItem>, String> {
    let line = line
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim()
        .trim_matches(',')
        .trim();
    if line.is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a masscan JSON record: {e}"))?;
    let ip = value
        .get("ip")
        .and_then(|v| v.as_str())
        .and_then(|s| IpAddr::from_str(s).ok())
        .ok_or("record without a valid \"ip\"")?;
    // -oD: {"ip":…,"port":N,"proto":"tcp","rec_type":"status","data":{"status":"open"}}
    if let Some(port) = value.get("port").and_then(|p| p.as_u64()) {
        let open = value
            .get("data")
            .and_then(|d| d.get("status"))
            .and_then(|s| s.as_str())
            == Some("open");
        let tcp = value
            .get("proto")
            .and_then(|p| p.as_str())
            .is_none_or(|p| p == "tcp");
        let status = value
            .get("rec_type")
            .and_then(|r| r.as_str())
            .is_none_or(|r| r == "status");
        if !(open && tcp && status) {
            return Ok(None);
        }
        let port = u16::try_from(port)
            .map_err(|_| "port out of range".to_string())
            .and_then(nonzero_port)?;
        return Ok(Some(TargetItem::Address {
            ip,
            hostname: None,
            port: Some(port),
        }));
    }
    // -oJ: {"ip":…,"ports":[{"port":N,"proto":"tcp","status":"open",…}]}; masscan writes one port
    // per record, so a record with several open ports keeps the first and the rest are rare.
    let ports = value
        .get("ports")
        .and_then(|p| p.as_array())
        .ok_or("record without \"ports\"")?;
    let open = ports.iter().find(|p| {
        p.get("status").and_then(|s| s.as_str()) == Some("open")
            && p.get("proto")
                .and_then(|s| s.as_str())
                .is_none_or(|s| s == "tcp")
    });
    match open.and_then(|p| p.get("port")).and_then(|p| p.as_u64()) {
        Some(port) => {
            let port = u16::try_from(port)
                .map_err(|_| "port out of range".to_string())
                .and_then(nonzero_port)?;
            Ok(Some(TargetItem::Address {
                ip,
                hostname: None,
                port: Some(port),
            }))
        }
        None => Ok(None),
    }
}

fn zmap_header(line: &str) -> Result<ZmapColumns, String> {
    let cols: Vec<&str> = line.split(',').map(str::trim).collect();
    let find = |name: &str| cols.iter().position(|c| *c == name);
    Ok(ZmapColumns {
        saddr: find("saddr").ok_or("zmap CSV header without a saddr column")?,
        sport: find("sport"),
        success: find("success"),
        classification: find("classification"),
    })
}

/// A zmap CSV row: `saddr` answered from `sport`; only successful (SYN-ACK) rows count.
fn parse_zmap_row(cols: &ZmapColumns, line: &str) -> Result<Option<TargetItem>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let field = |i: usize| fields.get(i).copied().ok_or("row shorter than the header");
    if let Some(i) = cols.success
        && field(i)? != "1"
    {
        return Ok(None);
    }
    if let Some(i) = cols.classification
        && field(i)? != "synack"
    {
        return Ok(None);
    }
    let ip = field(cols.saddr)?;
    let ip = IpAddr::from_str(ip).map_err(|_| format!("{ip:?} is not an IP address"))?;
    let port = match cols.sport {
        Some(i) => Some(parse_port(field(i)?)?),
        None => None,
    };
    Ok(Some(TargetItem::Address {
        ip,
        hostname: None,
        port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(line: &str) -> TargetItem {
        parse_line(line).unwrap().unwrap()
    }

    fn addr(ip: &str, hostname: Option<&str>, port: Option<u16>) -> TargetItem {
        TargetItem::Address {
            ip: ip.parse().unwrap(),
            hostname: hostname.map(String::from),
            port,
        }
    }

    #[test]
    fn generic_lines() {
        assert_eq!(item("192.0.2.7"), addr("192.0.2.7", None, None));
        assert_eq!(
            item("  192.0.2.7:8443 # gateway"),
            addr("192.0.2.7", None, Some(8443))
        );
        assert_eq!(
            item("[2001:db8::7]:443"),
            addr("2001:db8::7", None, Some(443))
        );
        assert_eq!(item("2001:db8::7"), addr("2001:db8::7", None, None));
        assert_eq!(
            item("192.0.2.0/30"),
            TargetItem::Network("192.0.2.0/30".parse().unwrap())
        );
        assert_eq!(
            item("192.0.2.1-192.0.2.9"),
            TargetItem::Network("192.0.2.1-192.0.2.9".parse().unwrap())
        );
        assert_eq!(
            item("VPN.Hospital.test."),
            TargetItem::Host {
                name: "vpn.hospital.test".into(),
                port: None
            }
        );
        assert_eq!(
            item("vpn.hospital.test:8443"),
            TargetItem::Host {
                name: "vpn.hospital.test".into(),
                port: Some(8443)
            }
        );
        assert_eq!(
            item("192.0.2.7,vpn.hospital.test"),
            addr("192.0.2.7", Some("vpn.hospital.test"), None)
        );
        assert_eq!(
            item("192.0.2.7, vpn.hospital.test, tag, 8443"),
            addr("192.0.2.7", Some("vpn.hospital.test"), Some(8443))
        );
        assert_eq!(
            item(",vpn.hospital.test"),
            TargetItem::Host {
                name: "vpn.hospital.test".into(),
                port: None
            }
        );
        assert_eq!(parse_line("   # only a comment"), Ok(None));
        assert_eq!(parse_line(""), Ok(None));
    }

    #[test]
    fn malformed_lines_are_refused() {
        for bad in [
            "192.0.2.300",
            "192.0.2.0/33",
            "vpn..hospital.test",
            "vpn.hospital.test:0",
            "vpn.hospital.test:99999",
            "-bad.test",
            "a b",
            "192.0.2.7,x,y,z,w",
            "<script>",
            "10.0.0.9-10.0.0.1",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn read_all(text: &str) -> Result<Vec<TargetItem>, TargetError> {
        TargetReader::new("t", text.as_bytes())?
            .map(|r| r.map(|(_, i)| i))
            .collect()
    }

    #[test]
    fn errors_name_the_origin_and_line() {
        let err = read_all("192.0.2.1\n\n# c\nnot a target!\n").unwrap_err();
        assert_eq!((err.origin.as_str(), err.line), ("t", 4));
        assert!(err.to_string().starts_with("t:4: "), "{err}");
    }

    #[test]
    fn an_endless_xml_tag_is_refused_not_buffered() {
        let mut xml = b"<?xml version=\"1.0\"?><nmaprun><host><address addr=\"".to_vec();
        xml.extend(std::iter::repeat_n(b'1', 4 * MAX_LINE));
        let reader = TargetReader::new("x", xml.as_slice()).unwrap();
        assert!(
            reader
                .map(|r| r.map(|_| ()))
                .collect::<Result<Vec<_>, _>>()
                .is_err()
        );
    }

    #[test]
    fn a_bracketed_ipv6_first_line_is_a_target_not_json() {
        assert_eq!(
            read_all("[2001:db8::7]:443\n192.0.2.1\n").unwrap(),
            vec![
                addr("2001:db8::7", None, Some(443)),
                addr("192.0.2.1", None, None)
            ]
        );
    }

    #[test]
    fn masscan_list() {
        let text = "#masscan\nopen tcp 443 192.0.2.7 1390380064\nclosed tcp 80 192.0.2.8 1390380064\nopen udp 53 192.0.2.9 1\n# end\n";
        assert_eq!(
            read_all(text).unwrap(),
            vec![addr("192.0.2.7", None, Some(443))]
        );
    }

    #[test]
    fn masscan_json_both_flavours() {
        let oj = "[\n{   \"ip\": \"192.0.2.7\",   \"timestamp\": \"1390380064\", \"ports\": [ {\"port\": 443, \"proto\": \"tcp\", \"status\": \"open\", \"reason\": \"syn-ack\", \"ttl\": 64} ] }\n,\n{   \"ip\": \"192.0.2.8\", \"ports\": [ {\"port\": 80, \"proto\": \"tcp\", \"status\": \"open\"} ] }\n]\n";
        assert_eq!(
            read_all(oj).unwrap(),
            vec![
                addr("192.0.2.7", None, Some(443)),
                addr("192.0.2.8", None, Some(80))
            ]
        );
        let od = "{\"ip\":\"192.0.2.7\",\"timestamp\":\"1\",\"port\":8443,\"proto\":\"tcp\",\"rec_type\":\"status\",\"data\":{\"status\":\"open\"}}\n{\"ip\":\"192.0.2.7\",\"port\":8443,\"proto\":\"tcp\",\"rec_type\":\"banner\",\"data\":{}}\n";
        assert_eq!(
            read_all(od).unwrap(),
            vec![addr("192.0.2.7", None, Some(8443))]
        );
        assert!(read_all("[\n{\"ip\": \"nope\", \"ports\": []}\n]").is_err());
    }

    #[test]
    fn zmap_csv() {
        let text = "saddr,daddr,sport,dport,seqnum,acknum,window,ttl,classification,success,repeat,cooldown,timestamp-str\n\
127.0.0.1,127.0.0.9,18080,43282,3861107620,252935218,65495,64,synack,1,0,1,2026-11-28T02:47:51.461+0000\n\
127.0.0.2,127.0.0.9,18080,43283,1,2,0,64,rst,0,0,1,2026-11-28T02:47:51.461+0000\n";
        assert_eq!(
            read_all(text).unwrap(),
            vec![addr("127.0.0.1", None, Some(18080))]
        );
    }

    #[test]
    fn nmap_xml() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<nmaprun scanner="nmap" args="nmap -sT">
<host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/>
<hostnames><hostname name="vpn.hospital.test" type="user"/><hostname name="x.ptr.test" type="PTR"/></hostnames>
<ports><port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/></port>
<port protocol="tcp" portid="80"><state state="closed" reason="conn-refused"/></port>
<port protocol="tcp" portid="8443"><state state="open"/><service name="https"/></port></ports></host>
<host><address addr="127.0.0.2" addrtype="ipv4"/><address addr="00:11:22:33:44:55" addrtype="mac"/>
<ports><port protocol="udp" portid="53"><state state="open"/></port></ports></host>
</nmaprun>"#;
        assert_eq!(
            read_all(text).unwrap(),
            vec![
                addr("127.0.0.1", Some("vpn.hospital.test"), Some(443)),
                addr("127.0.0.1", Some("vpn.hospital.test"), Some(8443))
            ]
        );
        assert!(read_all("<?xml version=\"1.0\"?><nmaprun><host><address addr=\"x\" addrtype=\"ipv4\"/></host></nmaprun>").is_err());
        assert!(read_all("<?xml version=\"1.0\"?><nmaprun><host></nmaprn>").is_err());
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        let mut junk: Vec<u8> = (0u8..=255).cycle().take(10_000).collect();
        junk.extend_from_slice(b"\n\xff\xfe\n");
        let r = TargetReader::new("junk", junk.as_slice()).unwrap();
        assert!(
            r.map(|x| x.map(|_| ()))
                .collect::<Result<Vec<_>, _>>()
                .is_err()
        );
        let long = "a".repeat(MAX_LINE + 10);
        assert!(read_all(&long).is_err());
    }
}
