//! The service record: what one scan learned about one (address, port, hostname).
//!
//! This is wachter's output contract (JSON Lines, one record per service, `schema` =
//! [`SCHEMA`]) and the unit the store will persist; `docs/record-schema.md` documents every
//! field. Additions are backwards compatible; a renamed or re-typed field bumps the schema.
//!
//! Everything a server sent is kept as bytes ([`Blob`]): readable text stays a JSON string,
//! anything else becomes `{"base64": …}`, so evidence is never lost or mangled on the way.

use std::fmt;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::assessment::Assessment;
use crate::scope::Refusal;

/// The value of every record's `schema` field.
pub const SCHEMA: &str = "wachter.service/1";

/// One service as scanned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub schema: String,
    pub ip: IpAddr,
    pub port: u16,
    /// The name presented as SNI and `Host`, when the target came with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// When the first connection attempt started (RFC 3339, UTC).
    pub time: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<Refusal>,
    /// What was found to speak on the port, when it was open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpExchange>,
    /// First bytes of a service that did not answer HTTP (an SSH or SMTP banner, garbage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<Blob>,
    /// TCP connections opened for this service (retries and reconnects included).
    pub connections: u32,
    pub timings: Timings,
    /// What the check packs concluded (product, build, probe state, CVE verdicts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Assessment>,
}

/// Reachability of the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The TCP handshake completed.
    Open,
    /// The host answered with a reset.
    Closed,
    /// No answer before the connect deadline.
    Filtered,
    /// The network said the host or network is unreachable.
    Unreachable,
    /// The scope guard refused the address; nothing was sent.
    Blocked,
    /// wachter itself could not try (resources exhausted, unexpected socket error).
    Error,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Open,
        Status::Closed,
        Status::Filtered,
        Status::Unreachable,
        Status::Blocked,
        Status::Error,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Closed => "closed",
            Status::Filtered => "filtered",
            Status::Unreachable => "unreachable",
            Status::Blocked => "blocked",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What spoke on an open port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP over TLS.
    Https,
    /// HTTP in the clear.
    Http,
    /// A TLS handshake completed but no HTTP answer came.
    Tls,
    /// A TLS handshake was attempted and failed (alert, no shared cipher, broken records).
    TlsFailed,
    /// Bytes came back that are neither HTTP nor TLS.
    Other,
    /// The port accepted the connection and never said anything useful.
    Silent,
}

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::Https,
        Protocol::Http,
        Protocol::Tls,
        Protocol::TlsFailed,
        Protocol::Other,
        Protocol::Silent,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Https => "https",
            Protocol::Http => "http",
            Protocol::Tls => "tls",
            Protocol::TlsFailed => "tls_failed",
            Protocol::Other => "other",
            Protocol::Silent => "silent",
        }
    }
}

/// A failure of the attempt, as data: `kind` is a stable identifier, `detail` free text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The TLS session as negotiated, or how the handshake failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// Whether the handshake completed.
    pub established: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// The SNI sent; absent when connecting to a bare address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Why the handshake failed (OpenSSL's reason, or the alert the server sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The chain as the server sent it, leaf first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<Certificate>,
    /// TLS handshakes made for this service.
    pub handshakes: u32,
}

/// One certificate of the chain, parsed, with its DER kept for the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_bits: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial: String,
    /// Set when the DER could not be parsed; the hash and DER are still kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// The certificate as sent (base64 DER).
    pub der: String,
}

/// One HTTP request and what came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HttpExchange {
    /// Which request of the plan this was (`root`, or a check's probe name).
    pub name: String,
    /// The request exactly as written to the socket.
    pub request: Blob,
    pub outcome: HttpOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The status line as received, without its line ending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_line: Option<Blob>,
    /// The header block as received (after the status line, up to the blank line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Blob>,
    /// The first bytes of the body (after de-chunking; never decompressed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Blob>,
    /// Body bytes read; more may have been sent.
    pub body_read: u64,
    /// True when the whole body (as framed by the server) was read.
    pub body_complete: bool,
    /// 1 for the first connection of this service, 2 for the next, …; equal numbers mean
    /// the requests shared a kept-alive connection.
    pub connection: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<u64>,
    pub total_ms: u64,
}

/// How an HTTP exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpOutcome {
    /// A response head was parsed (the body may still be partial; see `body_complete`).
    Response,
    /// The deadline passed before a complete response head arrived.
    Timeout,
    /// The connection was reset.
    Reset,
    /// The server closed the connection without answering.
    Closed,
    /// Bytes came back that are not an HTTP response.
    NotHttp,
    /// The response head exceeded the size cap.
    HeadTooLarge,
    /// The request could not be written or another I/O error occurred.
    Error,
}

/// Connection timings in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<u64>,
    pub total_ms: u64,
}

impl ServiceRecord {
    /// A record with the identity filled in and nothing learned yet.
    pub fn new(ip: IpAddr, port: u16, hostname: Option<String>, time: String) -> Self {
        ServiceRecord {
            schema: SCHEMA.to_string(),
            ip,
            port,
            hostname,
            time,
            status: Status::Error,
            blocked_by: None,
            protocol: None,
            error: None,
            tls: None,
            http: Vec::new(),
            banner: None,
            connections: 0,
            timings: Timings::default(),
            checks: Vec::new(),
        }
    }
}

/// Bytes from the wire: a JSON string when they are UTF-8, `{"base64": "…"}` otherwise.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A lossy, printable rendering for humans (control bytes escaped).
    pub fn to_display(&self) -> String {
        String::from_utf8_lossy(&self.0)
            .chars()
            .flat_map(char::escape_debug)
            .collect()
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl From<&[u8]> for Blob {
    fn from(bytes: &[u8]) -> Self {
        Blob(bytes.to_vec())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob(bytes)
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("base64", &BASE64.encode(&self.0))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Encoded { base64: String },
        }
        match Repr::deserialize(deserializer)? {
            Repr::Text(text) => Ok(Blob(text.into_bytes())),
            Repr::Encoded { base64 } => BASE64.decode(base64).map(Blob).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_text_and_binary() {
        for bytes in [&b"HTTP/1.1 200 OK"[..], b"\xff\xfe\x00<script>", b""] {
            let json = serde_json::to_string(&Blob::from(bytes)).unwrap();
            let back: Blob = serde_json::from_str(&json).unwrap();
            assert_eq!(back.as_bytes(), bytes);
        }
        assert_eq!(
            serde_json::to_string(&Blob::from(&b"ok"[..])).unwrap(),
            "\"ok\""
        );
        assert_eq!(
            serde_json::to_string(&Blob::from(&b"\xff"[..])).unwrap(),
            "{\"base64\":\"/w==\"}"
        );
    }

    #[test]
    fn record_round_trips() {
        let mut r = ServiceRecord::new(
            "127.0.0.1".parse().unwrap(),
            443,
            Some("vpn.hospital.test".into()),
            "2026-01-01T00:00:00Z".into(),
        );
        r.status = Status::Blocked;
        r.blocked_by = Some(Refusal::OptOut);
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("\"schema\":\"wachter.service/1\""));
        assert!(line.contains("\"blocked_by\":\"opt_out\""));
        let back: ServiceRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }
}
