//! Other tools' results as service records, so they join the same history: wachter's own
//! JSON Lines, nuclei JSONL (`-jsonl`), and Shadowserver report CSVs (`scan_http_vulnerable`
//! and its siblings; columns are read from the header, since their order changes).
//!
//! Each row becomes a [`ServiceRecord`] with status `open` and, where the source names CVEs,
//! an assessment whose verdicts are `vulnerable` with basis `probe` (the source's own check).
//! A row that cannot be understood is an [`ImportError`] with its line, never a panic.

use std::io::BufRead;
use std::net::IpAddr;
use std::str::FromStr;

use crate::assessment::{Assessment, Basis, CveVerdict, Flags, Product, Verdict};
use crate::record::{Blob, HttpExchange, HttpOutcome, Protocol, SCHEMA, ServiceRecord, Status};
use crate::targets::MAX_LINE;

/// The formats `wachter import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Wachter,
    Nuclei,
    Shadowserver,
}

impl ImportFormat {
    pub fn name(&self) -> &'static str {
        match self {
            ImportFormat::Wachter => "wachter",
            ImportFormat::Nuclei => "nuclei",
            ImportFormat::Shadowserver => "shadowserver",
        }
    }

    /// Recognises a format from the first line of a file.
    pub fn sniff(first_line: &str) -> Option<ImportFormat> {
        let line = first_line.trim_start_matches('\u{feff}').trim();
        if line.starts_with('{') {
            if line.contains(&format!("\"schema\":\"{SCHEMA}\"")) {
                Some(ImportFormat::Wachter)
            } else if line.contains("\"template-id\"") {
                Some(ImportFormat::Nuclei)
            } else {
                None
            }
        } else if line.split(',').any(|c| c.trim().trim_matches('"') == "ip")
            && line.contains("timestamp")
        {
            Some(ImportFormat::Shadowserver)
        } else {
            None
        }
    }
}

impl FromStr for ImportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wachter" => Ok(ImportFormat::Wachter),
            "nuclei" => Ok(ImportFormat::Nuclei),
            "shadowserver" => Ok(ImportFormat::Shadowserver),
            other => Err(format!(
                "unknown import format {other:?}: wachter, nuclei or shadowserver"
            )),
        }
    }
}

/// A row that could not be imported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct ImportError {
    pub line: u64,
    pub why: String,
}

/// Reads rows of `format` from `reader`, calling `row` with each line number and result.
/// Stops early when `row` returns false.
pub fn read<R: BufRead>(
    format: ImportFormat,
    reader: R,
    mut row: impl FnMut(u64, Result<ServiceRecord, ImportError>) -> bool,
) -> Result<(), std::io::Error> {
    match format {
        ImportFormat::Wachter | ImportFormat::Nuclei => {
            let mut reader = reader;
            let mut line_no = 0u64;
            loop {
                let mut raw = Vec::new();
                let n = std::io::Read::take(&mut reader, MAX_LINE as u64 * 16 + 1)
                    .read_until(b'\n', &mut raw)?;
                if n == 0 {
                    return Ok(());
                }
                line_no += 1;
                let fail = |why: String| Err(ImportError { line: line_no, why });
                let parsed = if raw.len() > MAX_LINE * 16 {
                    fail("line too long".into())
                } else {
                    match std::str::from_utf8(&raw).map(str::trim) {
                        Err(_) => fail("not UTF-8".into()),
                        Ok("") => continue,
                        Ok(text) if format == ImportFormat::Wachter => {
                            serde_json::from_str::<ServiceRecord>(text)
                                .map_err(|e| ImportError {
                                    line: line_no,
                                    why: format!("not a wachter record: {e}"),
                                })
                                .and_then(|r| {
                                    if r.schema == SCHEMA {
                                        Ok(r)
                                    } else {
                                        fail(format!("schema {:?}, expected {SCHEMA}", r.schema))
                                    }
                                })
                        }
                        Ok(text) => nuclei(text).map_err(|why| ImportError { line: line_no, why }),
                    }
                };
                // A nuclei line that is not a match says nothing about the host.
                if format == ImportFormat::Nuclei
                    && let Ok(r) = &parsed
                    && r.status == Status::Error
                {
                    continue;
                }
                if !row(line_no, parsed) {
                    return Ok(());
                }
            }
        }
        ImportFormat::Shadowserver => {
            // A record is buffered whole: cap the bytes between two line ends.
            let mut csv = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(crate::capped::Capped::new(reader, b'\n', MAX_LINE));
            let header: Vec<String> = csv
                .headers()
                .map_err(std::io::Error::other)?
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect();
            let column = |name: &str| header.iter().position(|h| h == name);
            let (Some(ip_col), Some(time_col)) = (column("ip"), column("timestamp")) else {
                row(
                    1,
                    Err(ImportError {
                        line: 1,
                        why: "the header has no ip or timestamp column".into(),
                    }),
                );
                return Ok(());
            };
            let port_col = column("port");
            let tag_col = column("tag");
            let detail_cols: Vec<(String, usize)> = [
                "hostname",
                "http_code",
                "http_reason",
                "server",
                "detail",
                "version",
                "build_date",
                "severity",
            ]
            .iter()
            .filter_map(|n| column(n).map(|i| (n.to_string(), i)))
            .collect();
            for (i, result) in csv.records().enumerate() {
                let line_no = i as u64 + 2;
                let parsed = match result {
                    Err(e) => Err(ImportError {
                        line: line_no,
                        why: format!("broken CSV: {e}"),
                    }),
                    Ok(rec) => {
                        shadowserver(&rec, ip_col, time_col, port_col, tag_col, &detail_cols)
                            .map_err(|why| ImportError { line: line_no, why })
                    }
                };
                if !row(line_no, parsed) {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

/// CVE identifiers in free text (`cve-2019-19781`, `CVE-2023-3519`), upper-cased.
pub fn cves_in(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    for token in lower.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        let mut parts = token.splitn(3, '-');
        if let (Some("cve"), Some(year), Some(number)) = (parts.next(), parts.next(), parts.next())
            && year.len() == 4
            && year.bytes().all(|b| b.is_ascii_digit())
            && number.len() >= 4
            && number.bytes().all(|b| b.is_ascii_digit())
        {
            let id = format!("CVE-{year}-{number}");
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

fn imported(
    ip: IpAddr,
    port: u16,
    hostname: Option<String>,
    time: String,
    source: &str,
    cves: Vec<String>,
    detail: String,
) -> ServiceRecord {
    let mut record = ServiceRecord::new(ip, port, hostname, time);
    record.status = Status::Open;
    if !cves.is_empty() {
        record.checks.push(Assessment {
            check: format!("import:{source}"),
            product: Product::Unknown,
            signals: vec![format!("{source}:{detail}")],
            build: None,
            probe: None,
            cves: cves
                .into_iter()
                .map(|cve| CveVerdict {
                    cve,
                    verdict: Verdict::Vulnerable,
                    basis: Basis::Probe,
                    detail: detail.clone(),
                })
                .collect(),
            flags: Flags::default(),
        });
    }
    record
}

/// One nuclei JSONL result. Non-matches come back as records with status `error`, which
/// the reader skips.
fn nuclei(text: &str) -> Result<ServiceRecord, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let template = v
        .get("template-id")
        .and_then(|t| t.as_str())
        .ok_or("no template-id")?;
    let host = v.get("host").and_then(|h| h.as_str()).unwrap_or_default();
    let (scheme, authority) = host.split_once("://").unwrap_or(("", host));
    let authority = authority.split('/').next().unwrap_or_default();
    let (host_name, url_port) = match authority.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, None), // bare IPv6
        Some((h, p)) => (h.trim_matches(['[', ']']), p.parse::<u16>().ok()),
        None => (authority, None),
    };
    let ip = match v.get("ip").and_then(|i| i.as_str()) {
        Some(ip) => IpAddr::from_str(ip).map_err(|_| format!("{ip:?} is not an IP address"))?,
        None => IpAddr::from_str(host_name)
            .map_err(|_| "no \"ip\" and the host is not an address".to_string())?,
    };
    let port = match v.get("port") {
        Some(serde_json::Value::String(p)) => {
            p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?
        }
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or("bad port")?,
        _ => url_port.unwrap_or(if scheme == "http" { 80 } else { 443 }),
    };
    // Scanned names are hostile: only a valid DNS name is kept.
    let hostname = (IpAddr::from_str(host_name).is_err() && !host_name.is_empty())
        .then(|| {
            crate::targets::normalise_hostname(host_name)
                .map_err(|_| format!("{host_name:?} is not a hostname"))
        })
        .transpose()?;
    let time = v
        .get("timestamp")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_string();
    let mut cves: Vec<String> = v
        .pointer("/info/classification/cve-id")
        .and_then(|c| c.as_array())
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str())
                .flat_map(cves_in)
                .collect()
        })
        .unwrap_or_default();
    if cves.is_empty() {
        cves = cves_in(template);
    }
    let mut record = imported(
        ip,
        port,
        hostname,
        time,
        "nuclei",
        cves,
        template.to_string(),
    );
    if v.get("matcher-status").and_then(|m| m.as_bool()) == Some(false) {
        record.status = Status::Error;
        return Ok(record);
    }
    record.protocol = Some(if scheme == "http" {
        Protocol::Http
    } else {
        Protocol::Https
    });
    if let Some(request) = v.get("request").and_then(|r| r.as_str()) {
        let response = v
            .get("response")
            .and_then(|r| r.as_str())
            .unwrap_or_default();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
        let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok());
        record.http.push(HttpExchange {
            name: "nuclei".into(),
            request: Blob(request.as_bytes().to_vec()),
            outcome: HttpOutcome::Response,
            detail: v
                .get("matched-at")
                .and_then(|m| m.as_str())
                .map(|m| format!("matched at {m}")),
            status,
            status_line: (!status_line.is_empty()).then(|| Blob(status_line.as_bytes().to_vec())),
            headers: (!headers.is_empty()).then(|| Blob(headers.as_bytes().to_vec())),
            body: (!body.is_empty())
                .then(|| Blob(body.as_bytes()[..body.len().min(64 * 1024)].to_vec())),
            body_read: body.len() as u64,
            body_complete: true,
            connection: 0,
            first_byte_ms: None,
            total_ms: 0,
        });
    }
    Ok(record)
}

fn shadowserver(
    rec: &csv::StringRecord,
    ip_col: usize,
    time_col: usize,
    port_col: Option<usize>,
    tag_col: Option<usize>,
    detail_cols: &[(String, usize)],
) -> Result<ServiceRecord, String> {
    let field = |i: usize| rec.get(i).map(str::trim).unwrap_or_default();
    let ip = IpAddr::from_str(field(ip_col))
        .map_err(|_| format!("{:?} is not an IP address", field(ip_col)))?;
    let port = match port_col.map(field).filter(|p| !p.is_empty()) {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port"))?,
        None => 443,
    };
    let raw_time = field(time_col);
    let shape_ok = raw_time.len() >= 19
        && raw_time.bytes().enumerate().take(19).all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ' || b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!(
            "{raw_time:?} is not a timestamp (YYYY-MM-DD hh:mm:ss)"
        ));
    }
    // "2020-01-20 03:12:44" (UTC, per Shadowserver) → RFC 3339.
    let time = format!("{}Z", raw_time.replacen(' ', "T", 1).trim_end_matches('Z'));
    let tags = tag_col.map(field).unwrap_or_default();
    let detail: Vec<String> = std::iter::once(format!("tag={tags}"))
        .chain(
            detail_cols
                .iter()
                .filter(|(_, i)| !field(*i).is_empty())
                .map(|(n, i)| format!("{n}={}", field(*i))),
        )
        .collect();
    Ok(imported(
        ip,
        port,
        None,
        time,
        "shadowserver",
        cves_in(tags),
        detail.join("; "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(format: ImportFormat, text: &str) -> Vec<Result<ServiceRecord, ImportError>> {
        let mut out = Vec::new();
        read(format, text.as_bytes(), |_, r| {
            out.push(r);
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn shadowserver_by_header_whatever_the_order() {
        let new = "timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,sector,http,http_code,http_reason,content_type,connection,www_authenticate,set_cookie,server,content_length,transfer_encoding,http_date,version,build_date,detail,build_branch\n\
\"2020-01-20 03:12:44\",critical,192.0.2.10,tcp,443,gateway.example.nl,\"citrix;cve-2019-19781\",64496,NL,,,,rdns,,HTTP/1.1,200,OK,text/plain,,,,Apache,,,,,,\"GET /vpn/../vpns/cfg/smb.conf returned [global]\",\n";
        let rows = all(ImportFormat::Shadowserver, new);
        let r = rows[0].as_ref().unwrap();
        assert_eq!(
            (r.ip.to_string().as_str(), r.port, r.time.as_str()),
            ("192.0.2.10", 443, "2020-01-20T03:12:44Z")
        );
        assert_eq!(
            r.hostname, None,
            "Shadowserver's hostname is reverse DNS, not the name to present"
        );
        let a = &r.checks[0];
        assert_eq!(a.cves[0].cve, "CVE-2019-19781");
        assert_eq!(a.cves[0].verdict, Verdict::Vulnerable);
        assert!(a.cves[0].detail.contains("smb.conf"));
        // The older layout: other columns, other order, comma-separated tags.
        let old = "ip,timestamp,port,sic,tag,http_code\n192.0.2.11,2019-06-01 00:00:00,8443,0,\"basic-auth,http\",401\nnot-an-ip,2019-06-01 00:00:00,443,0,,\n192.0.2.12,2019-06-01 00:00:00,0,0,,\n";
        let rows = all(ImportFormat::Shadowserver, old);
        assert_eq!(rows[0].as_ref().unwrap().port, 8443);
        assert!(
            rows[0].as_ref().unwrap().checks.is_empty(),
            "no CVE tag, no finding"
        );
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert!(rows[2].is_err(), "port 0");
        let headless = all(ImportFormat::Shadowserver, "a,b\n1,2\n");
        assert!(headless[0].as_ref().unwrap_err().why.contains("no ip"));
    }

    #[test]
    fn nuclei_results_with_and_without_evidence() {
        let hit = r#"{"template-id":"CVE-2019-19781","info":{"name":"Citrix ADC - Directory Traversal","severity":"critical","classification":{"cve-id":["cve-2019-19781"]}},"type":"http","host":"https://vpn.hospital.test:8443","port":"8443","scheme":"https","matched-at":"https://vpn.hospital.test:8443/vpn/../vpns/cfg/smb.conf","request":"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\nHost: vpn.hospital.test:8443\r\n\r\n","response":"HTTP/1.1 200 OK\r\nServer: Apache\r\n\r\n[global]\n","ip":"192.0.2.7","timestamp":"2026-11-28T00:00:00Z","matcher-status":true}"#;
        let miss = r#"{"template-id":"CVE-2019-19781","host":"https://192.0.2.8","ip":"192.0.2.8","matcher-status":false}"#;
        let rows = all(
            ImportFormat::Nuclei,
            &format!("{hit}\n\n{miss}\n{{broken\n"),
        );
        assert_eq!(
            rows.len(),
            2,
            "the non-match is skipped, the broken line reported"
        );
        let r = rows[0].as_ref().unwrap();
        assert_eq!(
            (r.ip.to_string().as_str(), r.port, r.hostname.as_deref()),
            ("192.0.2.7", 8443, Some("vpn.hospital.test"))
        );
        assert_eq!(r.http[0].status, Some(200));
        assert!(
            r.http[0]
                .body
                .as_ref()
                .unwrap()
                .as_bytes()
                .starts_with(b"[global]")
        );
        assert_eq!(r.checks[0].cves[0].cve, "CVE-2019-19781");
        assert_eq!(rows[1].as_ref().unwrap_err().line, 4);
    }

    #[test]
    fn formats_are_recognised() {
        assert_eq!(
            ImportFormat::sniff(r#"{"schema":"wachter.service/1","ip":"127.0.0.1"}"#),
            Some(ImportFormat::Wachter)
        );
        assert_eq!(
            ImportFormat::sniff(r#"{"template-id":"x"}"#),
            Some(ImportFormat::Nuclei)
        );
        assert_eq!(
            ImportFormat::sniff("\"timestamp\",\"ip\",\"port\""),
            Some(ImportFormat::Shadowserver)
        );
        assert_eq!(ImportFormat::sniff("hello"), None);
        assert_eq!(
            cves_in("citrix;cve-2019-19781,CVE-2023-3519 cve-20-1"),
            vec!["CVE-2019-19781", "CVE-2023-3519"]
        );
    }
}
