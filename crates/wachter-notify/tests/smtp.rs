//! Delivery through a real SMTP server process (aiosmtpd, `tests/interop/smtp_server.py`)
//! on 127.0.0.1: what the server saved is parsed with Python's `email` package, so the
//! assertions are about what a receiving system sees, not about what we meant to send.
//!
//! Run with `CI_INTEROP_PYTHON=/tmp/wachter-interop-0/bin/python`; skipped without it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::Value;
use time::OffsetDateTime;
use wachter_notify::mail::{self, Attachment, Built, Headers};
use wachter_notify::smtp::{Mailer, Security, SendError, SmtpConfig};
use wachter_notify::testing::{interop_python, interop_scripts};

// ---------------------------------------------------------------------------------------
// Harness

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "wachter-smtp-{tag}-{}-{n}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The SMTP server child process; killed (and reaped) on drop.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    python: PathBuf,
    dir: TempDir,
}

impl Server {
    fn start(python: &Path, extra: &[&str]) -> Server {
        let dir = TempDir::new("server");
        let script = interop_scripts().join("smtp_server.py");
        let mut child = Command::new(python)
            .arg(&script)
            .arg("--dir")
            .arg(&dir.0)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // A deadline, not a timing assertion: a broken server must not hang the suite.
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("smtp_server.py did not report ready: {e}");
            }
        };
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from smtp_server.py: {line:?}"));
        Server {
            child,
            stdin,
            port,
            python: python.to_path_buf(),
            dir,
        }
    }

    /// The message files the server saved, in order.
    fn saved(&self) -> Vec<(PathBuf, Value)> {
        let mut jsons: Vec<PathBuf> = std::fs::read_dir(&self.dir.0)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        jsons.sort();
        jsons
            .into_iter()
            .map(|json| {
                let meta: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
                (json.with_extension("eml"), meta)
            })
            .collect()
    }

    /// The only message received, parsed.
    fn only_message(&self) -> (Received, Value) {
        let saved = self.saved();
        assert_eq!(saved.len(), 1, "expected exactly one message: {saved:?}");
        let (eml, meta) = saved.into_iter().next().unwrap();
        (Received::parse(&self.python, &eml), meta)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the server stops on its own
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as Python's `email` package (policy `default`) reads it.
const PARSE_EML: &str = r#"
import email, email.policy, json, sys
raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=email.policy.default)

def structure(m):
    if m.is_multipart():
        return m.get_content_type() + "(" + ",".join(structure(p) for p in m.iter_parts()) + ")"
    return m.get_content_type()

parts = []
for part in msg.walk():
    if part.is_multipart():
        continue
    payload = part.get_payload(decode=True) or b""
    parts.append({
        "content_type": part.get_content_type(),
        "charset": part.get_content_charset(),
        "filename": part.get_filename(),
        "disposition": part.get_content_disposition(),
        "text": payload.decode(part.get_content_charset() or "utf-8", "replace"),
    })
headers = {}
for k, v in msg.items():
    headers.setdefault(k.lower(), []).append(str(v))
addresses = {}
for k in ("from", "to", "cc", "reply-to"):
    if msg[k] is not None:
        addresses[k] = [{"name": a.display_name, "addr": a.addr_spec} for a in msg[k].addresses]
print(json.dumps({
    "headers": headers,
    "addresses": addresses,
    "structure": structure(msg),
    "parts": parts,
    "defects": [repr(d) for d in msg.defects],
}))
"#;

struct Received {
    raw: Vec<u8>,
    parsed: Value,
}

impl Received {
    fn parse(python: &Path, eml: &Path) -> Received {
        let out = Command::new(python)
            .args(["-c", PARSE_EML])
            .arg(eml)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "parsing {} failed: {}",
            eml.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Received {
            raw: std::fs::read(eml).unwrap(),
            parsed: serde_json::from_slice(&out.stdout).unwrap(),
        }
    }

    /// Every decoded value of a header (lower-case name).
    fn header(&self, name: &str) -> Vec<String> {
        self.parsed["headers"][name]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }

    fn one(&self, name: &str) -> String {
        let values = self.header(name);
        assert_eq!(values.len(), 1, "header {name}: {values:?}");
        values[0].clone()
    }

    /// (display name, address) of an address header.
    fn addresses(&self, name: &str) -> Vec<(String, String)> {
        self.parsed["addresses"][name]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| {
                        (
                            v["name"].as_str().unwrap().to_string(),
                            v["addr"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn structure(&self) -> &str {
        self.parsed["structure"].as_str().unwrap()
    }

    /// The decoded text of the first leaf part of that content type.
    fn part(&self, content_type: &str) -> &Value {
        self.parsed["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["content_type"] == content_type)
            .unwrap_or_else(|| panic!("no {content_type} part in {}", self.parsed))
    }

    fn text_of(&self, content_type: &str) -> String {
        self.part(content_type)["text"]
            .as_str()
            .unwrap()
            .replace("\r\n", "\n")
    }

    /// Names of the top-level header fields as they stand in the raw bytes.
    fn raw_header_names(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let block = text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_string();
        block
            .split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Certificates: a private CA and a server certificate for 127.0.0.1 / localhost.

struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("pki");
        let (ca, ca_key) = make_ca("wachter test CA");
        let (other_ca, _) = make_ca("some other CA");
        let (leaf, leaf_key) = make_leaf(&ca, &ca_key);
        std::fs::write(dir.0.join("ca.pem"), ca.to_pem().unwrap()).unwrap();
        std::fs::write(dir.0.join("other-ca.pem"), other_ca.to_pem().unwrap()).unwrap();
        std::fs::write(dir.0.join("server.pem"), leaf.to_pem().unwrap()).unwrap();
        std::fs::write(
            dir.0.join("server.key"),
            leaf_key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

fn validity(builder: &mut openssl::x509::X509Builder) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    builder
        .set_not_before(&Asn1Time::from_unix(now - 3600).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(now + 30 * 86400).unwrap())
        .unwrap();
}

fn make_ca(cn: &str) -> (X509, PKey<Private>) {
    let key = new_key();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    validity(&mut b);
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    let skid = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(skid).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn make_leaf(ca: &X509, ca_key: &PKey<Private>) -> (X509, PKey<Private>) {
    let key = new_key();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    validity(&mut b);
    b.append_extension(BasicConstraints::new().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(Some(ca), None))
        .unwrap();
    b.append_extension(san).unwrap();
    let skid = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(Some(ca), None))
        .unwrap();
    b.append_extension(skid).unwrap();
    let akid = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(ca), None))
        .unwrap();
    b.append_extension(akid).unwrap();
    b.sign(ca_key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

// ---------------------------------------------------------------------------------------
// Messages and configs

fn config(port: u16, security: Security) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        security,
        username: None,
        password: None,
        ca_file: None,
        timeout_secs: 20,
        hello_name: Some("wachter.test".into()),
    }
}

fn headers() -> Headers {
    Headers {
        from: "Example CERT <cert@example.org>".into(),
        to: vec![
            "Abuse Team <abuse@hospital.example>".into(),
            "soc@hospital.example".into(),
        ],
        cc: vec!["Sector CERT <sector@cert.example>".into()],
        reply_to: Some("Example CERT replies <cert-replies@example.org>".into()),
        subject: "[TLP:AMBER] Vulnerable Citrix NetScaler (CVE-2019-19781) at 192.0.2.10".into(),
        ticket: "WACHTER-10000042".into(),
        message_id_domain: "example.org".into(),
        tlp: "TLP:AMBER".into(),
        date: OffsetDateTime::now_utc(),
    }
}

const TEXT: &str = "Dear colleagues,\n\nthe NetScaler at 192.0.2.10 is vulnerable to CVE-2019-19781.\n\nRegards,\nExample CERT\n";
const HTML: &str = "<html><body><p>Dear colleagues,</p><p>the NetScaler at <b>192.0.2.10</b> is vulnerable.</p></body></html>";
const CSV: &str =
    "ip,port,hostname,cve,state\n192.0.2.10,443,vpn.hospital.example,CVE-2019-19781,vulnerable\n";

fn csv_attachment() -> Attachment {
    Attachment {
        filename: "findings.csv".into(),
        content_type: "text/csv; charset=utf-8".into(),
        body: CSV.as_bytes().to_vec(),
    }
}

fn send(cfg: &SmtpConfig, built: &Built) -> Result<String, SendError> {
    let mailer = Mailer::new(cfg)?;
    mailer
        .send(&built.from, &built.recipients, &built.bytes)
        .map(|d| d.response)
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. A complete message, plain SMTP

#[test]
fn plain_delivery_of_text_html_and_csv() {
    let Some(python) = interop_python() else {
        return;
    };
    let server = Server::start(&python, &[]);
    let built = mail::build(&headers(), TEXT, Some(HTML), &[csv_attachment()]).unwrap();
    let response = send(&config(server.port, Security::None), &built).unwrap();
    assert!(response.starts_with("250"), "{response}");
    assert!(response.contains("Message accepted"), "{response}");

    let (msg, meta) = server.only_message();
    // The outbox's bytes are exactly what the relay got.
    assert_eq!(msg.raw, built.bytes);

    assert_eq!(meta["mail_from"], "cert@example.org");
    assert_eq!(
        json_strings(&meta["rcpt_tos"]),
        vec![
            "abuse@hospital.example",
            "soc@hospital.example",
            "sector@cert.example"
        ]
    );
    assert_eq!(meta["tls"], false);
    assert_eq!(meta["auth_user"], Value::Null);

    assert_eq!(
        msg.addresses("from"),
        vec![("Example CERT".into(), "cert@example.org".into())]
    );
    assert_eq!(
        msg.addresses("to"),
        vec![
            ("Abuse Team".into(), "abuse@hospital.example".into()),
            (String::new(), "soc@hospital.example".into())
        ]
    );
    assert_eq!(
        msg.addresses("cc"),
        vec![("Sector CERT".into(), "sector@cert.example".into())]
    );
    assert_eq!(
        msg.addresses("reply-to"),
        vec![(
            "Example CERT replies".into(),
            "cert-replies@example.org".into()
        )]
    );
    assert_eq!(msg.one("subject"), headers().subject);
    assert!(msg.one("message-id").starts_with("<WACHTER-10000042."));
    assert_eq!(msg.one("message-id"), built.message_id);
    assert_eq!(msg.one("x-wachter-ticket"), "WACHTER-10000042");
    assert_eq!(msg.one("auto-submitted"), "auto-generated");
    assert_eq!(msg.one("x-tlp"), "TLP:AMBER");
    assert_eq!(msg.header("date").len(), 1);
    assert!(msg.header("bcc").is_empty());

    assert_eq!(
        msg.structure(),
        "multipart/mixed(multipart/alternative(text/plain,text/html),text/csv)"
    );
    assert_eq!(msg.part("text/plain")["charset"], "utf-8");
    assert_eq!(msg.part("text/html")["charset"], "utf-8");
    assert_eq!(msg.text_of("text/plain"), TEXT);
    assert_eq!(msg.text_of("text/html").trim_end(), HTML);
    let csv = msg.part("text/csv");
    assert_eq!(csv["filename"], "findings.csv");
    assert_eq!(csv["disposition"], "attachment");
    assert_eq!(msg.text_of("text/csv"), CSV);
    assert_eq!(msg.parsed["defects"], serde_json::json!([]));
}

// ---------------------------------------------------------------------------------------
// 2. STARTTLS with AUTH, against a private CA

fn tls_server(python: &Path, pki: &Pki, extra: &[&str]) -> Server {
    let cert = pki.path_str("server.pem");
    let key = pki.path_str("server.key");
    let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
    args.extend_from_slice(extra);
    Server::start(python, &args)
}

fn with_auth(mut cfg: SmtpConfig, ca: PathBuf, password: &str) -> SmtpConfig {
    cfg.ca_file = Some(ca);
    cfg.username = Some("cert".into());
    cfg.password = Some(password.into());
    cfg
}

#[test]
fn starttls_with_auth_and_private_ca() {
    let Some(python) = interop_python() else {
        return;
    };
    let pki = Pki::new();
    let server = tls_server(&python, &pki, &["--auth", "cert:s3cret pass"]);
    let cfg = with_auth(
        config(server.port, Security::Starttls),
        pki.path("ca.pem"),
        "s3cret pass",
    );
    let built = mail::build(&headers(), TEXT, None, &[]).unwrap();
    let response = send(&cfg, &built).unwrap();
    assert!(response.starts_with("250"), "{response}");

    let (msg, meta) = server.only_message();
    assert_eq!(meta["tls"], true);
    assert_eq!(meta["auth_user"], "cert");
    assert_eq!(msg.raw, built.bytes);
    assert_eq!(msg.structure(), "text/plain");
    assert_eq!(msg.one("x-wachter-ticket"), "WACHTER-10000042");
    assert_eq!(msg.text_of("text/plain"), TEXT);
}

#[test]
fn wrong_password_is_refused_without_showing_it() {
    let Some(python) = interop_python() else {
        return;
    };
    let pki = Pki::new();
    let server = tls_server(&python, &pki, &["--auth", "cert:right"]);
    let cfg = with_auth(
        config(server.port, Security::Starttls),
        pki.path("ca.pem"),
        "wrong-password-xyz",
    );
    let built = mail::build(&headers(), TEXT, None, &[]).unwrap();
    let err = send(&cfg, &built).unwrap_err();
    // A refused login is the relay's (or the config's) problem, not this message's: not
    // held, and the sender stops instead of failing every message the same way.
    assert!(!err.permanent && err.relay, "535 is a relay failure: {err}");
    assert!(err.message.contains("535"), "{err}");
    assert!(!err.to_string().contains("wrong-password-xyz"), "{err}");
    assert!(!format!("{cfg:?}").contains("wrong-password-xyz"));
    assert!(server.saved().is_empty());
}

#[test]
fn starttls_required_fails_against_a_server_without_tls() {
    let Some(python) = interop_python() else {
        return;
    };
    let server = Server::start(&python, &[]);
    let built = mail::build(&headers(), TEXT, None, &[]).unwrap();
    let err = send(&config(server.port, Security::Starttls), &built).unwrap_err();
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains("STARTTLS"), "{err}");
    assert!(
        server.saved().is_empty(),
        "nothing may be sent in plain text"
    );
}

#[test]
fn an_untrusted_certificate_fails_verification() {
    let Some(python) = interop_python() else {
        return;
    };
    let pki = Pki::new();
    let server = tls_server(&python, &pki, &[]);
    let built = mail::build(&headers(), TEXT, None, &[]).unwrap();

    let mut cfg = config(server.port, Security::Starttls);
    cfg.ca_file = Some(pki.path("other-ca.pem"));
    let err = send(&cfg, &built).unwrap_err();
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains("TLS"), "{err}");
    assert!(err.message.contains("certificate"), "{err}");

    // Without the private CA the system roots do not know the server either.
    let err = send(&config(server.port, Security::Starttls), &built).unwrap_err();
    assert!(err.message.contains("certificate"), "{err}");
    assert!(server.saved().is_empty());
}

// ---------------------------------------------------------------------------------------
// 3. Implicit TLS

#[test]
fn implicit_tls_with_auth() {
    let Some(python) = interop_python() else {
        return;
    };
    let pki = Pki::new();
    let server = tls_server(&python, &pki, &["--implicit-tls", "--auth", "cert:pw"]);
    let cfg = with_auth(config(server.port, Security::Tls), pki.path("ca.pem"), "pw");
    let built = mail::build(&headers(), TEXT, Some(HTML), &[csv_attachment()]).unwrap();
    let response = send(&cfg, &built).unwrap();
    assert!(response.starts_with("250"), "{response}");

    let (msg, meta) = server.only_message();
    assert_eq!(meta["tls"], true);
    assert_eq!(meta["auth_user"], "cert");
    assert_eq!(msg.text_of("text/csv"), CSV);

    // Plain SMTP against a TLS-only port fails instead of hanging.
    let mut cfg = config(server.port, Security::None);
    cfg.timeout_secs = 2;
    let err = send(&cfg, &built).unwrap_err();
    assert!(!err.permanent, "{err}");
    assert_eq!(server.saved().len(), 1);
}

// ---------------------------------------------------------------------------------------
// 4. Hostile strings

#[test]
fn hostile_subject_and_body_cannot_inject() {
    let Some(python) = interop_python() else {
        return;
    };
    let server = Server::start(&python, &[]);
    let mut h = headers();
    let hostile_host = "x\r\nBcc: evil@example.org";
    h.subject = format!("Vulnerable NetScaler at {hostile_host}\r\n\r\nfake body");
    h.tlp = "TLP:AMBER\r\nBcc: evil@example.org".into();
    // A lone "." ends DATA unless dot-stuffed (SMTP smuggling); the rest must still arrive.
    let text = "Host: x\r\nBcc: evil@example.org\n<script>alert(1)</script>\r\n.\r\nMAIL FROM:<evil@example.org>\r\n.\nend of text\n";
    let html = "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>";
    let built = mail::build(&h, text, Some(html), &[]).unwrap();
    send(&config(server.port, Security::None), &built).unwrap();

    let (msg, meta) = server.only_message();
    let rcpts = json_strings(&meta["rcpt_tos"]);
    assert!(!rcpts.iter().any(|r| r.contains("evil")), "{rcpts:?}");
    assert_eq!(rcpts, built.recipients);
    assert!(msg.header("bcc").is_empty());
    let names = msg.raw_header_names();
    assert!(!names.contains(&"bcc".to_string()), "{names:?}");
    assert_eq!(
        msg.one("subject"),
        "Vulnerable NetScaler at x Bcc: evil@example.org fake body"
    );
    assert_eq!(msg.one("x-tlp"), "TLP:AMBER Bcc: evil@example.org");
    assert_eq!(
        msg.structure(),
        "multipart/alternative(text/plain,text/html)"
    );
    let received = msg.text_of("text/plain");
    assert!(received.contains("<script>alert(1)</script>"), "{received}");
    assert!(received.ends_with("end of text\n"), "{received:?}");
    assert!(
        received.contains("\n.\nMAIL FROM:<evil@example.org>\n"),
        "{received:?}"
    );
    assert_eq!(msg.text_of("text/html").trim_end(), html);

    // A hostile address is refused before anything is sent.
    let mut h = headers();
    h.to = vec!["abuse@hospital.example\r\nBcc: evil@example.org".into()];
    let err = mail::build(&h, TEXT, None, &[]).unwrap_err();
    assert!(err.to_string().contains("no usable address"), "{err}");
}

// ---------------------------------------------------------------------------------------
// 5. Refusals, deferrals and an absent relay

fn to_only(addr: &str) -> Built {
    let mut h = headers();
    h.to = vec![addr.into()];
    h.cc.clear();
    mail::build(&h, TEXT, None, &[]).unwrap()
}

#[test]
fn refusal_is_permanent_and_deferral_is_not() {
    let Some(python) = interop_python() else {
        return;
    };
    let server = Server::start(&python, &[]);
    let cfg = config(server.port, Security::None);

    let err = send(&cfg, &to_only("reject@hospital.example")).unwrap_err();
    assert!(err.permanent && !err.relay, "{err}");
    assert!(err.message.contains("550"), "{err}");
    assert!(err.message.contains("mailbox unavailable"), "{err}");

    let err = send(&cfg, &to_only("tempfail@hospital.example")).unwrap_err();
    assert!(!err.permanent && !err.relay, "{err}");
    assert!(err.message.contains("451"), "{err}");

    assert!(server.saved().is_empty());
    // The server is still fine after both.
    send(&cfg, &to_only("abuse@hospital.example")).unwrap();
    assert_eq!(server.saved().len(), 1);
}

#[test]
fn a_deferred_message_goes_through_on_retry() {
    let Some(python) = interop_python() else {
        return;
    };
    let server = Server::start(&python, &["--fail-first", "1"]);
    let cfg = config(server.port, Security::None);
    let built = to_only("abuse@hospital.example");
    let err = send(&cfg, &built).unwrap_err();
    assert!(!err.permanent, "{err}");
    assert!(err.message.contains("451"), "{err}");
    assert!(server.saved().is_empty());

    // The same bytes again: same Message-ID, so the recipient sees one message.
    send(&cfg, &built).unwrap();
    let (msg, _) = server.only_message();
    assert_eq!(msg.one("message-id"), built.message_id);
}

#[test]
fn relay_down_is_temporary_with_a_clear_message() {
    // A port nothing listens on: bind one, then release it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(port, Security::None);
    cfg.timeout_secs = 5;
    let err = send(&cfg, &to_only("abuse@hospital.example")).unwrap_err();
    assert!(!err.permanent && err.relay, "{err}");
    assert!(err.message.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.message.to_lowercase().contains("refused"), "{err}");
    eprintln!("relay down: {err}");

    // Same for STARTTLS and TLS (the TLS setup must not hide the cause).
    for security in [Security::Starttls, Security::Tls] {
        let err = send(&config(port, security), &to_only("a@hospital.example")).unwrap_err();
        assert!(!err.permanent, "{err}");
        assert!(err.message.to_lowercase().contains("refused"), "{err}");
    }
}

#[test]
fn a_silent_relay_times_out() {
    // Accepts connections (the kernel completes the handshake) but never greets.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = config(port, Security::None);
    cfg.timeout_secs = 1;
    let err = send(&cfg, &to_only("abuse@hospital.example")).unwrap_err();
    assert!(!err.permanent && err.relay, "{err}");
    assert!(err.message.contains("timed out"), "{err}");
    eprintln!("silent relay: {err}");
    drop(listener);
}

// ---------------------------------------------------------------------------------------
// 6. Non-ASCII names and subjects

#[test]
fn non_ascii_names_and_subject_survive() {
    let Some(python) = interop_python() else {
        return;
    };
    let server = Server::start(&python, &[]);
    let mut h = headers();
    h.from = "CERT Übung – Example <cert@example.org>".into();
    h.to = vec![
        "Ziekenhuis Sint-Jan – Brugge <abuse@azsintjan.example>".into(),
        "\"Ärzte, Müller & Söhne\" <praxis@aerzte.example>".into(),
        "Vries, J. de <j.devries@gemeente.example>".into(),
    ];
    h.cc.clear();
    h.subject =
        "Kwetsbare NetScaler bij Ziekenhuis Sint-Jan – Brugge / Ärzte Müller: Größe ✓".into();
    let text = "Beste collega's, liebe Grüße aus Brügge – Ärzte.\n";
    let built = mail::build(&h, text, Some("<p>Grüße – Ärzte</p>"), &[]).unwrap();
    assert!(
        built.bytes.is_ascii(),
        "7-bit clean, whatever the relay supports"
    );
    send(&config(server.port, Security::None), &built).unwrap();

    let (msg, meta) = server.only_message();
    assert_eq!(msg.one("subject"), h.subject);
    assert_eq!(
        msg.addresses("from"),
        vec![("CERT Übung – Example".into(), "cert@example.org".into())]
    );
    assert_eq!(
        msg.addresses("to"),
        vec![
            (
                "Ziekenhuis Sint-Jan – Brugge".into(),
                "abuse@azsintjan.example".into()
            ),
            (
                "Ärzte, Müller & Söhne".into(),
                "praxis@aerzte.example".into()
            ),
            ("Vries, J. de".into(), "j.devries@gemeente.example".into()),
        ]
    );
    assert_eq!(
        json_strings(&meta["rcpt_tos"]),
        vec![
            "abuse@azsintjan.example",
            "praxis@aerzte.example",
            "j.devries@gemeente.example"
        ]
    );
    assert_eq!(msg.text_of("text/plain"), text);
    assert_eq!(msg.text_of("text/html").trim_end(), "<p>Grüße – Ärzte</p>");
}
