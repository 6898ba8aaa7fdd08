//! Delivery to the CERT's relay: one connection per message, TLS through OpenSSL
//! (native-tls), every network wait bounded by the configured timeout.
//!
//! Errors say whether retrying can help: a 5xx reply is final for this message (the
//! relay refused it), everything else (4xx, refused connections, timeouts, TLS
//! failures) may pass later. The password never appears in errors or `Debug` output.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

/// How the connection to the relay is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain text, credentials included. **Only for a relay on the same host or in tests**:
    /// the messages carry TLP:AMBER findings, and anyone on the path can read them.
    None,
    /// STARTTLS, required: a relay that does not offer it (or a man in the middle who
    /// strips it) fails the delivery instead of getting the message in plain text.
    #[default]
    Starttls,
    /// TLS from the first byte (submissions, port 465).
    Tls,
}

/// The relay messages are handed to. Every field has a default (port 587, STARTTLS,
/// 30 s), as the rest of the configuration does; set port 465 for `tls`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// Never serialized, so a dumped configuration cannot carry it.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// An extra trusted root (PEM, may hold several certificates), for a relay with a
    /// private CA; the system roots stay trusted.
    pub ca_file: Option<PathBuf>,
    /// Bound of every network wait (connect, each reply); 0 counts as 1.
    pub timeout_secs: u64,
    /// The EHLO name; the host's name when unset.
    pub hello_name: Option<String>,
}

fn default_timeout() -> u64 {
    30
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 587,
            security: Security::Starttls,
            username: None,
            password: None,
            ca_file: None,
            timeout_secs: default_timeout(),
            hello_name: None,
        }
    }
}

/// Configs get logged; the password must not be.
impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("hello_name", &self.hello_name)
            .finish()
    }
}

/// What the relay said when it took the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// `250 2.0.0 Ok: queued as 4F1C2`, the relay's reply to the end of DATA.
    pub response: String,
}

/// A delivery (or setting up the mailer) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    /// The relay refused for good (5xx) or the message's envelope is unusable: do not
    /// retry automatically. False for everything that may pass later, and for
    /// configuration errors (a fixed config should send the message after all).
    pub permanent: bool,
    /// The relay itself failed (cannot connect, TLS, a timeout, authentication refused,
    /// 421), not this message: the next message would fail the same way, so a sender
    /// stops instead of burning through the outbox.
    pub relay: bool,
    pub message: String,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.permanent {
            "permanent"
        } else {
            "temporary"
        };
        write!(f, "{kind} delivery failure: {}", self.message)
    }
}

impl std::error::Error for SendError {}

impl SendError {
    fn temporary(message: String) -> Self {
        SendError {
            permanent: false,
            relay: true,
            message,
        }
    }
}

/// A configured connection to the relay; cheap to keep, connects per message.
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    /// `host:port`, for messages.
    relay: String,
    /// To scrub from error messages, should a server ever echo it.
    password: Option<String>,
    timeout_secs: u64,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .finish()
    }
}

impl Mailer {
    /// Checks the config and prepares TLS; nothing is sent yet.
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer, SendError> {
        let host = cfg.host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(SendError::temporary(format!(
                "smtp config: unusable host {:?}",
                crate::text::one_line(&cfg.host, 100)
            )));
        }
        let relay = format!("{host}:{}", cfg.port);
        let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(cfg.port)
            .timeout(Some(timeout));

        builder = match cfg.security {
            Security::None => builder.tls(Tls::None),
            Security::Starttls => builder.tls(Tls::Required(tls_parameters(host, cfg)?)),
            Security::Tls => builder.tls(Tls::Wrapper(tls_parameters(host, cfg)?)),
        };

        if let Some(name) = &cfg.hello_name {
            // The name goes into the EHLO line: no spaces, no line breaks.
            let ok = !name.is_empty()
                && name.len() <= 255
                && name.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
                });
            if !ok {
                return Err(SendError::temporary(format!(
                    "smtp config: unusable hello_name {:?}",
                    crate::text::one_line(name, 100)
                )));
            }
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }

        match (&cfg.username, &cfg.password) {
            (Some(user), Some(pass)) => {
                builder = builder
                    .credentials(Credentials::new(user.clone(), pass.clone()))
                    .authentication(vec![Mechanism::Plain, Mechanism::Login]);
            }
            (None, None) => {}
            _ => {
                return Err(SendError::temporary(
                    "smtp config: username and password go together".into(),
                ));
            }
        }

        Ok(Mailer {
            transport: builder.build(),
            relay,
            password: cfg.password.clone().filter(|p| !p.is_empty()),
            timeout_secs: timeout.as_secs(),
        })
    }

    /// Hands `bytes` (a formatted message, see [`crate::mail::Built`]) to the relay for
    /// `recipients`. Blocks for at most a few timeouts.
    pub fn send(
        &self,
        from: &str,
        recipients: &[String],
        bytes: &[u8],
    ) -> Result<Delivered, SendError> {
        let permanent = |message: String| SendError {
            permanent: true,
            relay: false,
            message,
        };
        let from = Address::from_str(from.trim())
            .map_err(|e| permanent(format!("unusable sender {:?}: {e}", clip(from))))?;
        let to = recipients
            .iter()
            .map(|r| {
                Address::from_str(r.trim())
                    .map_err(|e| permanent(format!("unusable recipient {:?}: {e}", clip(r))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to)
            .map_err(|e| permanent(format!("unusable envelope: {e}")))?;

        // lettre ends DATA with CRLF.CRLF whatever the message ends with; a message that
        // ends with CRLF already would gain an empty line, and the relay would not get
        // exactly the bytes the outbox holds.
        let bytes = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        match self.transport.send_raw(&envelope, bytes) {
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                let reply = format!("{} {}", response.code(), text.join(" "));
                Ok(Delivered {
                    response: crate::text::one_line(&reply, 500),
                })
            }
            Err(e) => Err(self.classify(&e)),
        }
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> SendError {
        let mut detail = full_chain(e);
        let what = if e.is_permanent() {
            "relay refused the message"
        } else if e.is_transient() {
            "relay deferred the message"
        } else if e.is_timeout() || is_io_timeout(e) {
            detail = format!("no reply within {}s ({detail})", self.timeout_secs);
            "timed out talking to the relay"
        } else if e.is_tls() || detail.contains("SSL routines") || detail.contains("certificate") {
            // A failed handshake reaches us as a connection error; OpenSSL's text says why.
            "TLS with the relay failed"
        } else {
            "cannot deliver to the relay"
        };
        if let Some(password) = &self.password {
            detail = detail.replace(password.as_str(), "[redacted]");
        }
        let code = e.status().map(|c| c.to_string());
        // 530/534/535/538: authentication or TLS required or refused; 421/454: the service
        // or TLS is not available. The relay's problem (or the config's), not the message's.
        let relay_code = matches!(
            code.as_deref(),
            Some("421" | "454" | "530" | "534" | "535" | "538")
        );
        // A relay without SMTPUTF8 will never take an internationalised address.
        let utf8 = detail.contains("SMTPUTF8");
        let message_level = (e.is_permanent() || e.is_transient()) && !relay_code;
        SendError {
            permanent: (e.is_permanent() && !relay_code) || utf8,
            relay: !message_level && !utf8,
            message: format!("{what} {}: {detail}", self.relay),
        }
    }
}

/// A read or write timeout: Linux reports an expired `SO_RCVTIMEO` as `WouldBlock`,
/// which lettre's `is_timeout` does not count.
fn is_io_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The error and its sources in one line (lettre's Display omits the deeper causes,
/// which is where "certificate verify failed" lives).
fn full_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    crate::text::one_line(&out, 1000)
}

fn clip(s: &str) -> String {
    crate::text::one_line(s, 200)
}

/// System roots plus the configured private CA; hostnames are always verified.
fn tls_parameters(host: &str, cfg: &SmtpConfig) -> Result<TlsParameters, SendError> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            SendError::temporary(format!(
                "smtp config: cannot read ca_file {}: {e}",
                path.display()
            ))
        })?;
        let certs = pem_certificates(&pem);
        if certs.is_empty() {
            return Err(SendError::temporary(format!(
                "smtp config: ca_file {} holds no PEM certificate",
                path.display()
            )));
        }
        for cert in certs {
            let cert = Certificate::from_pem(&cert).map_err(|e| {
                SendError::temporary(format!(
                    "smtp config: ca_file {}: unusable certificate: {e}",
                    path.display()
                ))
            })?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build_native().map_err(|e| {
        SendError::temporary(format!(
            "smtp config: cannot set up TLS: {}",
            full_chain(&e)
        ))
    })
}

/// Each `CERTIFICATE` block of a PEM bundle (native-tls reads one per call).
fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        out.push(format!("{}\n", &rest[start..end]).into_bytes());
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password() {
        let cfg = SmtpConfig {
            username: Some("cert".into()),
            password: Some("hunter2-secret".into()),
            ..SmtpConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn config_defaults_and_names() {
        let cfg: SmtpConfig =
            serde_json::from_str(r#"{"host":"relay.example.org","port":465,"security":"tls"}"#)
                .unwrap();
        assert_eq!(cfg.security, Security::Tls);
        assert_eq!(cfg.timeout_secs, 30);
        let cfg: SmtpConfig =
            serde_json::from_str(r#"{"host":"relay.example.org","port":587}"#).unwrap();
        assert_eq!(cfg.security, Security::Starttls);
        assert!(
            serde_json::from_str::<SmtpConfig>(r#"{"host":"h","port":1,"pasword":"x"}"#).is_err()
        );
        let cfg: SmtpConfig = serde_json::from_str(r#"{"host":"h","password":"pw"}"#).unwrap();
        assert_eq!(cfg.port, 587);
        assert_eq!(cfg.password.as_deref(), Some("pw"));
        let dumped = serde_json::to_string(&cfg).unwrap();
        assert!(!dumped.contains("password"), "{dumped}");
    }

    #[test]
    fn bad_config_is_an_error() {
        let cfg = SmtpConfig {
            hello_name: Some("x\r\nRCPT TO:<evil@example.org>".into()),
            security: Security::None,
            ..SmtpConfig::default()
        };
        assert!(Mailer::new(&cfg).is_err());
        let cfg = SmtpConfig {
            username: Some("u".into()),
            ..SmtpConfig::default()
        };
        assert!(Mailer::new(&cfg).is_err());
        let cfg = SmtpConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..SmtpConfig::default()
        };
        let err = Mailer::new(&cfg).unwrap_err();
        assert!(err.message.contains("ca_file"), "{err}");
    }

    #[test]
    fn bad_envelope_is_permanent() {
        let mailer = Mailer::new(&SmtpConfig {
            security: Security::None,
            ..SmtpConfig::default()
        })
        .unwrap();
        let err = mailer
            .send(
                "cert@example.org",
                &["x\r\nRCPT TO:<evil@example.org>".into()],
                b"x",
            )
            .unwrap_err();
        assert!(err.permanent, "{err}");
        let err = mailer.send("cert@example.org", &[], b"x").unwrap_err();
        assert!(err.permanent, "{err}");
    }

    #[test]
    fn pem_bundle_is_split() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let certs = pem_certificates(pem);
        assert_eq!(certs.len(), 2);
        assert!(String::from_utf8_lossy(&certs[1]).contains("BBB"));
    }
}
