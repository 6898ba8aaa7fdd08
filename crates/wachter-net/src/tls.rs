//! TLS for probes, through OpenSSL, tuned to talk to whatever an old appliance speaks.
//!
//! rustls refuses TLS 1.0/1.1, CBC and static-RSA suites by design, which is exactly what
//! old NetScaler firmware offers (research: rust-stack.md §2), so probes use OpenSSL at
//! security level 0 with every cipher, legacy renegotiation allowed, no verification (a
//! scanner records certificates, it does not judge them), SNI only for hostnames and no
//! ALPN (HTTP/1.1 only).
//!
//! A failed handshake is a result, not an error: [`Handshake::Failed`] says why and keeps
//! the first bytes the server sent, which tells a plain-HTTP port or another protocol from
//! a TLS server that refused us.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::ssl::{ErrorCode, SslConnector, SslMethod, SslOptions, SslVerifyMode, SslVersion};
use openssl::x509::{X509NameRef, X509Ref};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, timeout_at};
use tokio_openssl::SslStream;
use wachter_core::record::{Certificate, TlsInfo};

use crate::connect::GuardedStream;

/// `SSL_OP_LEGACY_SERVER_CONNECT`: talk to servers without RFC 5746 secure renegotiation,
/// which OpenSSL 3 otherwise refuses and which old appliances lack.
const LEGACY_SERVER_CONNECT: u64 = 0x4;

/// How many of the first received bytes are kept to explain a failed handshake.
const KEEP_FIRST: usize = 512;

/// How long to wait for the rest of a non-TLS banner after OpenSSL gave up on it.
const BANNER_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// The TLS stream type probes run HTTP over.
pub type TlsStream = SslStream<Recorder<GuardedStream>>;

/// A configured OpenSSL client context, built once per scan.
pub struct TlsClient {
    connector: SslConnector,
}

/// The result of one handshake.
pub enum Handshake {
    Established {
        stream: Box<TlsStream>,
        info: TlsInfo,
    },
    Failed {
        info: TlsInfo,
        failure: TlsFailure,
        received: Vec<u8>,
    },
}

/// Why a handshake did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server answered with an HTTP response: the port speaks plain HTTP.
    PlainHttp,
    /// The server answered with bytes that are neither TLS nor HTTP.
    OtherProtocol,
    /// The server sent TLS records but the handshake failed (alert, no shared cipher).
    Handshake,
    /// The server closed the connection without a byte.
    Closed,
    /// The connection was reset.
    Reset,
    /// The deadline passed.
    Timeout,
}

impl TlsClient {
    pub fn new() -> Result<Self, openssl::error::ErrorStack> {
        let mut builder = SslConnector::builder(SslMethod::tls_client())?;
        builder.set_security_level(0);
        builder.set_min_proto_version(Some(SslVersion::TLS1))?;
        builder.set_max_proto_version(Some(SslVersion::TLS1_3))?;
        builder.set_cipher_list("ALL:@SECLEVEL=0")?;
        // Every host is new: a client-side session cache would only cost memory and copies.
        builder.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
        builder.set_verify(SslVerifyMode::NONE);
        // Read whole socket buffers instead of a record header and then its body: half the
        // recv() calls per response.
        builder.set_read_ahead(true);
        // OpenSSL builds and checks the chain even when told not to verify; with the
        // system trust store that is a directory search per handshake. An empty store keeps
        // the (ignored) check cheap.
        builder.set_cert_store(openssl::x509::store::X509StoreBuilder::new()?.build());
        builder.set_options(
            SslOptions::ALLOW_UNSAFE_LEGACY_RENEGOTIATION
                | SslOptions::IGNORE_UNEXPECTED_EOF
                | SslOptions::NO_TICKET
                | SslOptions::from_bits_retain(LEGACY_SERVER_CONNECT),
        );
        Ok(TlsClient {
            connector: builder.build(),
        })
    }

    /// Runs a handshake over `stream`, presenting `sni` when the target has a hostname.
    pub async fn handshake(
        &self,
        stream: GuardedStream,
        sni: Option<&str>,
        deadline: Instant,
    ) -> Handshake {
        let mut info = TlsInfo {
            sni: sni.map(str::to_string),
            handshakes: 1,
            ..TlsInfo::default()
        };
        let setup = self
            .connector
            .configure()
            .and_then(|c| {
                c.use_server_name_indication(sni.is_some())
                    .verify_hostname(false)
                    .into_ssl(sni.unwrap_or(""))
            })
            .and_then(|ssl| SslStream::new(ssl, Recorder::new(stream)));
        let mut tls = match setup {
            Ok(tls) => tls,
            Err(e) => {
                info.failure = Some(format!("local TLS setup failed: {e}"));
                return Handshake::Failed {
                    info,
                    failure: TlsFailure::Handshake,
                    received: Vec::new(),
                };
            }
        };
        match timeout_at(deadline, Pin::new(&mut tls).connect()).await {
            Ok(Ok(())) => {
                let ssl = tls.ssl();
                info.established = true;
                info.version = Some(ssl.version_str().to_string());
                info.cipher = ssl.current_cipher().map(|c| c.name().to_string());
                if let Some(chain) = ssl.peer_cert_chain() {
                    info.chain = chain.iter().map(describe_certificate).collect();
                } else if let Some(leaf) = ssl.peer_certificate() {
                    info.chain = vec![describe_certificate(&leaf)];
                }
                Handshake::Established {
                    stream: Box::new(tls),
                    info,
                }
            }
            Ok(Err(e)) => {
                let mut received = tls.get_ref().first_bytes().to_vec();
                let failure = classify_failure(&e, &received);
                if failure == TlsFailure::OtherProtocol {
                    // OpenSSL stops after a record header's worth of bytes; read on a little
                    // so the banner (`SSH-2.0-…`) is kept whole.
                    let until = deadline.min(Instant::now() + BANNER_GRACE);
                    let mut more = vec![0u8; KEEP_FIRST.saturating_sub(received.len())];
                    if let Ok(Ok(n)) = timeout_at(until, tls.get_mut().inner.read(&mut more)).await
                    {
                        received.extend_from_slice(&more[..n]);
                    }
                }
                info.failure = Some(failure_reason(&e, failure, &received));
                Handshake::Failed {
                    info,
                    failure,
                    received,
                }
            }
            Err(_) => {
                let received = tls.get_ref().first_bytes().to_vec();
                info.failure = Some("handshake timed out".to_string());
                Handshake::Failed {
                    info,
                    failure: TlsFailure::Timeout,
                    received,
                }
            }
        }
    }
}

fn classify_failure(e: &openssl::ssl::Error, received: &[u8]) -> TlsFailure {
    if received.len() >= 5 && received[..5].eq_ignore_ascii_case(b"HTTP/") {
        return TlsFailure::PlainHttp;
    }
    match received.first() {
        // Handshake, alert or change-cipher-spec records: a TLS speaker that said no.
        Some(0x14..=0x17) => TlsFailure::Handshake,
        Some(_) => TlsFailure::OtherProtocol,
        None => match e.io_error().map(io::Error::kind) {
            Some(io::ErrorKind::ConnectionReset) => TlsFailure::Reset,
            _ if e.code() == ErrorCode::SYSCALL || e.code() == ErrorCode::ZERO_RETURN => {
                TlsFailure::Closed
            }
            _ => TlsFailure::Closed,
        },
    }
}

fn failure_reason(e: &openssl::ssl::Error, failure: TlsFailure, received: &[u8]) -> String {
    let openssl_reason = e
        .ssl_error()
        .and_then(|stack| stack.errors().first())
        .and_then(|first| first.reason())
        .map(str::to_string);
    match (failure, openssl_reason) {
        (TlsFailure::PlainHttp, _) => "server answered in plain HTTP".into(),
        (TlsFailure::OtherProtocol, _) => "server answered with a non-TLS protocol".into(),
        (TlsFailure::Reset, _) => "connection reset during handshake".into(),
        (TlsFailure::Closed, _) if received.is_empty() => {
            "connection closed during handshake".into()
        }
        (_, Some(reason)) => reason,
        (_, None) => e.to_string(),
    }
}

/// Describes one certificate; a certificate OpenSSL accepted but that we cannot fully
/// describe still yields its hash and DER.
pub fn describe_certificate(cert: &X509Ref) -> Certificate {
    let der = cert.to_der().unwrap_or_default();
    let sha256 = cert
        .digest(MessageDigest::sha256())
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_default();
    let (key_type, key_bits) = match cert.public_key() {
        Ok(key) => {
            let kind = match key.id() {
                Id::RSA => "RSA",
                Id::EC => "EC",
                Id::DSA => "DSA",
                Id::ED25519 => "Ed25519",
                Id::ED448 => "Ed448",
                Id::DH => "DH",
                _ => "other",
            };
            (Some(kind.to_string()), Some(key.bits()))
        }
        Err(_) => (None, None),
    };
    Certificate {
        sha256,
        subject: name_to_string(cert.subject_name()),
        issuer: name_to_string(cert.issuer_name()),
        common_name: cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .map(|e| entry_text(e.data().as_slice())),
        sans: subject_alt_names(cert),
        not_before: asn1_to_rfc3339(cert.not_before()),
        not_after: asn1_to_rfc3339(cert.not_after()),
        key_type,
        key_bits,
        signature_algorithm: Some(
            cert.signature_algorithm()
                .object()
                .nid()
                .long_name()
                .map(str::to_string)
                .unwrap_or_else(|_| cert.signature_algorithm().object().to_string()),
        ),
        serial: cert
            .serial_number()
            .to_bn()
            .ok()
            .and_then(|bn| bn.to_hex_str().ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
        parse_error: None,
        der: BASE64.encode(der),
    }
}

fn subject_alt_names(cert: &X509Ref) -> Vec<String> {
    let Some(names) = cert.subject_alt_names() else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| {
            if let Some(dns) = name.dnsname() {
                Some(dns.to_ascii_lowercase())
            } else if let Some(ip) = name.ipaddress() {
                match ip.len() {
                    4 => <[u8; 4]>::try_from(ip)
                        .ok()
                        .map(|b| IpAddr::from(b).to_string()),
                    16 => <[u8; 16]>::try_from(ip)
                        .ok()
                        .map(|b| IpAddr::from(b).to_string()),
                    _ => None,
                }
            } else if let Some(email) = name.email() {
                Some(format!("email:{email}"))
            } else {
                name.uri().map(|uri| format!("uri:{uri}"))
            }
        })
        .collect()
}

fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry
                .object()
                .nid()
                .short_name()
                .map(str::to_string)
                .unwrap_or_else(|_| entry.object().to_string());
            format!("{key}={}", entry_text(entry.data().as_slice()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn entry_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn asn1_to_rfc3339(t: &Asn1TimeRef) -> Option<String> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(t).ok()?;
    let seconds = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    let when = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    when.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Passes bytes through and keeps the first [`KEEP_FIRST`] the server sent.
#[derive(Debug)]
pub struct Recorder<S> {
    inner: S,
    first: Vec<u8>,
}

impl<S> Recorder<S> {
    pub fn new(inner: S) -> Self {
        Recorder {
            inner,
            first: Vec::new(),
        }
    }

    pub fn first_bytes(&self) -> &[u8] {
        &self.first
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll
            && this.first.len() < KEEP_FIRST
        {
            let fresh = &buf.filled()[before..];
            let take = fresh.len().min(KEEP_FIRST - this.first.len());
            this.first.extend_from_slice(&fresh[..take]);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
