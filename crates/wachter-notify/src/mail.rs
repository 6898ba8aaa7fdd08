//! The MIME message: what the outbox stores and the relay receives, byte for byte.
//!
//! Every header value that could carry a scanned server's string (the subject names hosts)
//! passes through [`one_line`] and is then RFC 2047 encoded by lettre, so a CR/LF can never
//! start a new header. Addresses come from organisation files and config: they are parsed
//! by lettre and refused with a clear error, never trusted as text.
//!
//! The Message-ID is derived from the ticket, not random: a message resent after a crash
//! between "sent" and "recorded" is recognisably the same message to the recipient.

use std::str::FromStr;
use std::time::SystemTime;

use lettre::Address;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::text::one_line;

/// Longest subject kept, in characters (lettre folds long lines; this bounds hostile input).
pub const MAX_SUBJECT: usize = 500;

/// Longest attachment file name kept, in characters.
const MAX_FILENAME: usize = 100;

/// Longest ticket accepted (it becomes the Message-ID's left part).
const MAX_TICKET: usize = 64;

/// A file attached after the text (CSV of the findings, JSON for tools).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Shown to the recipient; path separators and control characters are removed.
    pub filename: String,
    /// `text/csv; charset=utf-8`, `application/json`.
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What a message says about itself besides its body.
#[derive(Clone, Debug, PartialEq)]
pub struct Headers {
    /// `Example CERT <cert@example.org>`.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Where replies go; no `Reply-To` header when unset.
    pub reply_to: Option<String>,
    /// May hold hostile text (hostnames); made one line before use.
    pub subject: String,
    /// `WACHTER-10000042`: letters, digits, `.`, `_`, `-` only, since it is also the
    /// Message-ID's left part.
    pub ticket: String,
    /// The Message-ID's right part (`example.org`).
    pub message_id_domain: String,
    /// `TLP:AMBER`, as the `X-TLP` header; omitted when empty.
    pub tlp: String,
    pub date: OffsetDateTime,
}

/// The same as [`Headers`], by the name the outbox uses for it.
pub type Envelope = Headers;

/// A formatted message and the SMTP envelope it goes with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    /// `<WACHTER-10000042@example.org>`, with the angle brackets, as in the header.
    pub message_id: String,
    /// The bare sender address (the SMTP `MAIL FROM`).
    pub from: String,
    /// The bare addresses of To and Cc, each once, in order (the SMTP `RCPT TO`s).
    pub recipients: Vec<String>,
    /// The RFC 5322 message exactly as it will be sent (`Message::formatted()`).
    pub bytes: Vec<u8>,
}

/// Why a message could not be built. Every variant is about the input, so retrying the
/// same input cannot help.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "no usable address in {value:?}{}: {reason}",
        if field.is_empty() { String::new() } else { format!(" ({field})") }
    )]
    Address {
        /// The header the address was for (`To`), empty for [`parse_mailbox`].
        field: String,
        value: String,
        reason: String,
    },
    #[error("the message has no recipient (To and Cc are empty)")]
    NoRecipients,
    #[error("unusable ticket {0:?}: only letters, digits, '.', '_' and '-', at most 64")]
    Ticket(String),
    #[error("unusable Message-ID domain {0:?}")]
    MessageIdDomain(String),
    #[error("attachment {filename:?}: unusable content type {content_type:?}")]
    ContentType {
        filename: String,
        content_type: String,
    },
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// Parses one mailbox (`Name <user@example.org>` or `user@example.org`) from a config or
/// organisation file.
///
/// Besides what lettre accepts, an unquoted display name with a comma
/// (`Vries, J. de <j@example.nl>`) is taken as a name, since organisation files are
/// written by people. Line breaks and other control characters are refused outright.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, MailError> {
    parse_field("", s)
}

fn parse_field(field: &str, s: &str) -> Result<Mailbox, MailError> {
    let err = |reason: &str| MailError::Address {
        field: field.to_string(),
        value: one_line(s, 200),
        reason: reason.to_string(),
    };
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(err("empty"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(err("contains a line break or control character"));
    }
    if let Ok(mailbox) = Mailbox::from_str(trimmed) {
        return Ok(mailbox);
    }
    // `Name, with comma <addr>`: lettre's parser wants such a name quoted.
    if let (Some(open), true) = (trimmed.rfind('<'), trimmed.ends_with('>')) {
        let addr = &trimmed[open + 1..trimmed.len() - 1];
        let name = trimmed[..open].trim().trim_matches('"').trim();
        if addr.contains(['<', '>']) || name.contains(['<', '>']) {
            return Err(err("unbalanced angle brackets"));
        }
        let address = Address::from_str(addr.trim()).map_err(|e| err(&e.to_string()))?;
        let name = (!name.is_empty()).then(|| name.to_string());
        return Ok(Mailbox::new(name, address));
    }
    match Address::from_str(trimmed) {
        Ok(address) => Ok(Mailbox::new(None, address)),
        Err(e) => Err(err(&format!("not a mailbox: {e}"))),
    }
}

/// Builds the message: `multipart/mixed` holding the body (`multipart/alternative` of text
/// and HTML when HTML is given) and then the attachments; a plain text message when there
/// is neither HTML nor attachment.
pub fn build(
    headers: &Headers,
    text: &str,
    html: Option<&str>,
    attachments: &[Attachment],
) -> Result<Built, MailError> {
    let ticket = headers.ticket.trim();
    if ticket.is_empty()
        || ticket.len() > MAX_TICKET
        || !ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(MailError::Ticket(one_line(&headers.ticket, 100)));
    }
    let domain = headers.message_id_domain.trim().to_ascii_lowercase();
    if domain.is_empty()
        || domain.len() > 253
        || domain.starts_with(['.', '-'])
        || domain.ends_with(['.', '-'])
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
    {
        return Err(MailError::MessageIdDomain(one_line(
            &headers.message_id_domain,
            100,
        )));
    }
    // Ticket numbers restart in a new store (a new case database, a move to PostgreSQL);
    // a token from the date, sender and recipients keeps the Message-ID unique across
    // stores, while the same headers (a resend of the stored bytes) keep it stable.
    let mut hash = Sha256::new();
    for part in [
        headers.from.as_str(),
        &headers.date.unix_timestamp().to_string(),
    ]
    .into_iter()
    .chain(headers.to.iter().chain(&headers.cc).map(String::as_str))
    {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let token: String = hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let message_id = format!("<{ticket}.{token}@{domain}>");

    let from = parse_field("From", &headers.from)?;
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .subject(one_line(&headers.subject, MAX_SUBJECT))
        .date(SystemTime::from(headers.date))
        .message_id(Some(message_id.clone()));

    let mut recipients: Vec<String> = Vec::new();
    let mut add = |mailbox: &Mailbox| {
        let bare = mailbox.email.to_string();
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&bare)) {
            recipients.push(bare);
        }
    };
    for to in &headers.to {
        let mailbox = parse_field("To", to)?;
        add(&mailbox);
        builder = builder.to(mailbox);
    }
    for cc in &headers.cc {
        let mailbox = parse_field("Cc", cc)?;
        add(&mailbox);
        builder = builder.cc(mailbox);
    }
    if recipients.is_empty() {
        return Err(MailError::NoRecipients);
    }
    if let Some(reply_to) = headers.reply_to.as_deref().filter(|r| !r.trim().is_empty()) {
        builder = builder.reply_to(parse_field("Reply-To", reply_to)?);
    }

    builder = builder
        .raw_header(header("X-Wachter-Ticket", ticket))
        .raw_header(header("Auto-Submitted", "auto-generated"));
    let tlp = one_line(&headers.tlp, 64);
    if !tlp.is_empty() {
        builder = builder.raw_header(header("X-TLP", &tlp));
    }

    let text_part = SinglePart::plain(text.to_string());
    let alternative = |html: &str| {
        MultiPart::alternative()
            .singlepart(text_part.clone())
            .singlepart(SinglePart::html(html.to_string()))
    };
    let message = match (html, attachments) {
        // As the message body itself: a single part would get a trailing empty line.
        (None, []) => builder
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string()),
        (Some(html), []) => builder.multipart(alternative(html)),
        (html, attachments) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed().multipart(alternative(html)),
                None => MultiPart::mixed().singlepart(text_part.clone()),
            };
            for attachment in attachments {
                mixed = mixed.singlepart(attachment_part(attachment)?);
            }
            builder.multipart(mixed)
        }
    }
    .map_err(|e| MailError::Build(e.to_string()))?;

    Ok(Built {
        message_id,
        from: from.email.to_string(),
        recipients,
        bytes: message.formatted(),
    })
}

/// A header lettre encodes (RFC 2047) and folds; the value is one line already.
fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str(name),
        one_line(value, MAX_SUBJECT),
    )
}

fn attachment_part(attachment: &Attachment) -> Result<SinglePart, MailError> {
    let filename = one_line(&attachment.filename.replace(['/', '\\'], "_"), MAX_FILENAME);
    let filename = if filename.is_empty() {
        "attachment".to_string()
    } else {
        filename
    };
    let content_type =
        ContentType::parse(attachment.content_type.trim()).map_err(|_| MailError::ContentType {
            filename: filename.clone(),
            content_type: one_line(&attachment.content_type, 100),
        })?;
    Ok(lettre::message::Attachment::new(filename).body(attachment.body.clone(), content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Headers {
        Headers {
            from: "Example CERT <cert@example.org>".into(),
            to: vec!["Ziekenhuis Sint-Jan – Brugge <abuse@azsintjan.example>".into()],
            cc: vec!["soc@example.net".into()],
            reply_to: Some("cert-replies@example.org".into()),
            subject: "Vulnerable NetScaler vpn.example.nl".into(),
            ticket: "WACHTER-10000042".into(),
            message_id_domain: "example.org".into(),
            tlp: "TLP:AMBER".into(),
            date: OffsetDateTime::from_unix_timestamp(1_578_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    fn header_block(bytes: &[u8]) -> String {
        let s = String::from_utf8_lossy(bytes);
        s.split("\r\n\r\n").next().unwrap_or_default().to_string()
    }

    /// Header names at the start of a line, in the top-level header block.
    fn header_names(bytes: &[u8]) -> Vec<String> {
        header_block(bytes)
            .split("\r\n")
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect()
    }

    #[test]
    fn builds_headers_and_envelope() {
        let built = build(&headers(), "Hello", Some("<p>Hello</p>"), &[]).unwrap();
        assert!(
            built.message_id.starts_with("<WACHTER-10000042.")
                && built.message_id.ends_with("@example.org>"),
            "{}",
            built.message_id
        );
        assert_eq!(built.from, "cert@example.org");
        assert_eq!(
            built.recipients,
            vec!["abuse@azsintjan.example", "soc@example.net"]
        );
        let block = header_block(&built.bytes);
        assert!(
            block.contains(&format!("Message-ID: {}", built.message_id)),
            "{block}"
        );
        assert!(block.contains("X-Wachter-Ticket: WACHTER-10000042"));
        assert!(block.contains("Auto-Submitted: auto-generated"));
        assert!(block.contains("X-TLP: TLP:AMBER"));
        assert!(block.contains("Reply-To: cert-replies@example.org"));
        assert!(block.contains("Date: Thu, 02 Jan 2020"), "{block}");
        assert!(block.contains("multipart/alternative"));
        assert!(built.bytes.is_ascii());
    }

    #[test]
    fn a_ticket_reused_by_another_store_gets_another_message_id() {
        let a = build(&headers(), "Hello", None, &[]).unwrap();
        let mut later = headers();
        later.date += time::Duration::days(400);
        let b = build(&later, "Hello", None, &[]).unwrap();
        assert_ne!(a.message_id, b.message_id);
    }

    #[test]
    fn same_ticket_same_bytes_apart_from_boundaries() {
        let a = build(&headers(), "Hello", None, &[]).unwrap();
        let b = build(&headers(), "Hello", None, &[]).unwrap();
        assert_eq!(a.message_id, b.message_id);
        assert_eq!(a.bytes, b.bytes);
    }

    #[test]
    fn subject_and_custom_headers_cannot_inject() {
        let mut h = headers();
        h.subject = "x\r\nBcc: evil@example.org\nX-Evil: 1".into();
        h.tlp = "TLP:AMBER\r\nBcc: evil@example.org".into();
        let built = build(&h, "body", None, &[]).unwrap();
        let names = header_names(&built.bytes);
        assert!(
            !names.iter().any(|n| n == "bcc" || n == "x-evil"),
            "{names:?}"
        );
        assert!(!built.recipients.iter().any(|r| r.contains("evil")));
        let block = header_block(&built.bytes);
        assert!(
            block.contains("Subject: x Bcc: evil@example.org X-Evil: 1"),
            "{block}"
        );
    }

    #[test]
    fn hostile_ticket_and_domain_are_refused() {
        let mut h = headers();
        h.ticket = "T-1>\r\nBcc: evil@example.org".into();
        assert!(matches!(
            build(&h, "b", None, &[]),
            Err(MailError::Ticket(_))
        ));
        let mut h = headers();
        h.message_id_domain = "example.org>\r\nX: y".into();
        assert!(matches!(
            build(&h, "b", None, &[]),
            Err(MailError::MessageIdDomain(_))
        ));
    }

    #[test]
    fn non_ascii_subject_and_names_are_encoded() {
        let mut h = headers();
        h.subject = "Ärzte – Ziekenhuis Sint-Jan".into();
        let built = build(&h, "Grüße", None, &[]).unwrap();
        assert!(built.bytes.is_ascii());
        let block = header_block(&built.bytes);
        assert!(block.contains("=?utf-8?"), "{block}");
    }

    #[test]
    fn address_errors_are_clear() {
        for bad in [
            "",
            "   ",
            "not an address",
            "a@b.org\r\nBcc: evil@example.org",
            "Foo <a@b.org",
            "Foo <<a@b.org>>",
            "a@-b.org",
            "a@b.org, c@d.org",
        ] {
            let err = parse_mailbox(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("no usable address in \""),
                "{bad:?}: {err}"
            );
        }
        let err = parse_mailbox("x\r\ny").unwrap_err().to_string();
        assert!(err.contains("line break") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn people_written_mailboxes_parse() {
        let m = parse_mailbox("Vries, J. de <j@example.nl>").unwrap();
        assert_eq!(m.email.to_string(), "j@example.nl");
        assert_eq!(m.name.as_deref(), Some("Vries, J. de"));
        let m = parse_mailbox("  Ärzte Team <aerzte@example.de> ").unwrap();
        assert_eq!(m.name.as_deref(), Some("Ärzte Team"));
        assert_eq!(parse_mailbox("cert@example.org").unwrap().name, None);
    }

    #[test]
    fn bad_recipient_or_content_type_is_an_error() {
        let mut h = headers();
        h.to = vec!["nobody".into()];
        let err = build(&h, "b", None, &[]).unwrap_err();
        assert!(matches!(err, MailError::Address { ref field, .. } if field == "To"));
        assert!(err.to_string().contains("(To)"), "{err}");
        let mut h = headers();
        h.to.clear();
        h.cc.clear();
        assert!(matches!(
            build(&h, "b", None, &[]),
            Err(MailError::NoRecipients)
        ));
        let att = Attachment {
            filename: "x.csv".into(),
            content_type: "not a type\r\n".into(),
            body: b"a".to_vec(),
        };
        assert!(matches!(
            build(&headers(), "b", None, &[att]),
            Err(MailError::ContentType { .. })
        ));
    }

    #[test]
    fn attachment_names_lose_paths_and_breaks() {
        let att = Attachment {
            filename: "../../etc/passwd\r\nX-Evil: 1.csv".into(),
            content_type: "text/csv; charset=utf-8".into(),
            body: b"ip,port\n192.0.2.10,443\n".to_vec(),
        };
        let built = build(&headers(), "b", Some("<p>b</p>"), &[att]).unwrap();
        let s = String::from_utf8_lossy(&built.bytes);
        assert!(s.contains("multipart/mixed"));
        assert!(!s.contains("\r\nX-Evil"), "{s}");
        assert!(!s.contains("../"), "{s}");
    }
}
