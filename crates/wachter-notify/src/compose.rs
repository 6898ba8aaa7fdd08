//! One planned message made into the mail that is queued: the templates rendered for its
//! recipient, the recipient's hosts attached as Shadowserver-style CSV, the MIME message
//! built with its ticket and Message-ID.

use time::OffsetDateTime;
use wachter_constituency::org::Tlp;

use crate::campaign::PlannedMessage;
use crate::export::{self, Format};
use crate::mail::{self, Attachment, Built, Headers};
use crate::model::{ExportMeta, Reporter, tlp_restriction};
use crate::template::{HostView, MessageContext, Templates};

/// What every message of a campaign shares.
pub struct Composer<'a> {
    pub templates: &'a Templates,
    pub reporter: &'a Reporter,
    pub tlp: Tlp,
    /// The campaign's name.
    pub campaign: &'a str,
    pub cve: &'a str,
    /// The message date.
    pub now: OffsetDateTime,
}

/// A composed message: what is queued, and the rendered parts for review.
pub struct Composed {
    pub built: Built,
    /// One line, as in the message.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a message could not be composed (the campaign is not recorded then).
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
}

impl Composer<'_> {
    pub fn compose(
        &self,
        ticket: &str,
        message: &PlannedMessage,
    ) -> Result<Composed, ComposeError> {
        let generated_at = wachter_core::stamp::utc(self.now);
        let ctx = MessageContext {
            ticket: ticket.to_string(),
            campaign: self.campaign.to_string(),
            cve: self.cve.to_string(),
            tlp: self.tlp.to_string(),
            tlp_note: tlp_restriction(self.tlp).map(String::from),
            organisation: message.recipient_name.clone(),
            reporter: self.reporter.clone(),
            round: u32::try_from(message.round).unwrap_or(u32::MAX),
            previous_notice: message.previous_notice.clone(),
            escalated_to: message.escalated_to.clone(),
            escalated_as_recipient: message
                .escalated_to
                .as_ref()
                .is_some_and(|cert| message.to.contains(cert)),
            hosts: message.findings.iter().map(HostView::from).collect(),
            generated_at: generated_at.clone(),
        };
        let rendered = self.templates.render(&message.language, &ctx)?;
        let meta = ExportMeta {
            reporter: self.reporter.clone(),
            tlp: self.tlp,
            generated_at,
        };
        let mut csv = Vec::new();
        export::write(Format::Shadowserver, &message.findings, &meta, &mut csv)?;
        let headers = Headers {
            from: self.reporter.from.clone(),
            to: message.to.clone(),
            cc: message.cc.clone(),
            reply_to: self.reporter.reply_to.clone(),
            subject: rendered.subject.clone(),
            ticket: ticket.to_string(),
            message_id_domain: self.reporter.domain.clone(),
            tlp: self.tlp.to_string(),
            date: self.now,
        };
        let attachment = Attachment {
            filename: format!("{ticket}.csv"),
            content_type: "text/csv; charset=utf-8".into(),
            body: csv,
        };
        let built = mail::build(
            &headers,
            &rendered.text,
            Some(&rendered.html),
            &[attachment],
        )?;
        Ok(Composed {
            built,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        })
    }
}
