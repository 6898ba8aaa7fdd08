//! Notifications in the store: campaigns, the outbox, and which findings each message told.
//!
//! The rules the rest of wachter relies on:
//! - a message is stored exactly as it will be sent (the formatted RFC 5322 bytes), so what
//!   the owner received can always be shown again;
//! - while a message about a finding waits in the outbox (queued, being sent, held), no
//!   other message may tell it; once sent, the repeat interval runs from when it was sent.
//!   Both are checked again inside the transaction that queues a campaign, so two campaigns
//!   (or two analysts) cannot tell the same finding twice;
//! - ticket numbers are reserved first, in a short transaction of their own, so messages
//!   are rendered without holding the store's write lock;
//! - sending claims a message with one conditional update (`queued` → `sending`), so two
//!   senders never send the same message; a message left `sending` by a killed sender is
//!   claimed again once it is stale (at-least-once: the Message-ID stays the same); the
//!   outcome of a send is written only if the claim is still the sender's own.

use std::collections::HashMap;

use serde::Serialize;

use crate::db::{ColumnError, Db, Row, Value, vals};
use crate::{Store, StoreError};

/// An open finding with everything a notice about it needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NoticeCandidate {
    pub finding_id: i64,
    pub service_id: i64,
    pub ip: String,
    pub port: u16,
    pub hostname: String,
    pub cve: String,
    pub state: String,
    pub basis: String,
    pub detail: String,
    pub first_seen: String,
    pub last_seen: String,
    /// The earliest time the finding was recorded `vulnerable`.
    pub vulnerable_since: Option<String>,
    /// The newest observation of the service that found it open (the whole record, JSON).
    pub record: Option<String>,
    pub organisation_id: Option<i64>,
    pub organisation: Option<String>,
    pub sector: Option<String>,
    pub asn: Option<i64>,
    pub holder: Option<String>,
    pub country: Option<String>,
    pub registry_network: Option<String>,
    /// The registry's name for that network: its organisation's name, else its netname.
    pub registry_name: Option<String>,
    pub abuse_mailboxes: Vec<String>,
    /// Messages that told this finding (sent).
    pub notified_count: i64,
    /// When the newest message about it was sent (or queued, if it is still waiting).
    pub last_notified: Option<String>,
    /// Messages about it still in the outbox (queued, being sent, or held).
    pub pending: i64,
}

/// A campaign to record.
#[derive(Clone, Debug, Serialize)]
pub struct NewCampaign {
    pub name: String,
    pub cve: String,
    pub tlp: String,
    pub language: String,
    /// Everything the campaign was made with (reporter, interval, filters), JSON.
    pub params: serde_json::Value,
    /// What was decided per finding (queued, suppressed, unroutable…), JSON.
    pub summary: serde_json::Value,
    /// A finding told after this time (see [`timestamp`]; the start of the repeat
    /// interval), or with a message still in the outbox, may not be told by this campaign.
    pub not_notified_since: String,
}

/// One message of a campaign, rendered for the ticket reserved for it.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub ticket: String,
    pub content: MailContent,
    pub organisation_id: Option<i64>,
    pub recipient_name: String,
    pub language: String,
    pub round: i64,
    /// The findings it tells, with their state when told.
    pub findings: Vec<(i64, String)>,
}

/// A message rendered for its ticket.
#[derive(Clone, Debug)]
pub struct MailContent {
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub bytes: Vec<u8>,
}

/// What a campaign queued.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignCreated {
    pub campaign_id: i64,
    pub tickets: Vec<String>,
}

/// A message in the outbox, without its bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub campaign_id: i64,
    pub ticket: String,
    pub recipient_name: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub round: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub smtp_response: Option<String>,
    pub sent_at: Option<String>,
    pub created_at: String,
    pub findings: i64,
}

/// A message to send.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    pub id: i64,
    pub ticket: String,
    pub mail_from: String,
    pub recipients: Vec<String>,
    pub message_id: String,
    pub bytes: Vec<u8>,
    pub attempts: i64,
}

/// A campaign with its messages counted by state.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub cve: String,
    pub created_at: String,
    pub tlp: String,
    pub language: String,
    pub messages: HashMap<String, i64>,
    pub summary: serde_json::Value,
}

/// A message without its bytes, as [`message_row`] reads it; `m` is `messages`. The outbox
/// and the dashboard's lists read messages with these; a query may select more after them,
/// from column [`MESSAGE_WIDTH`] on.
pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.campaign_id, m.ticket, m.recipient_name, m.recipients, m.subject, m.round, m.state, m.attempts, m.next_attempt_at, \
     m.last_attempt_at, m.last_error, m.smtp_response, m.sent_at, m.created_at, \
     (SELECT COUNT(*) FROM notifications n WHERE n.message_id = m.id), m.organisation_id";

/// How many columns [`MESSAGE_COLUMNS`] names.
const MESSAGE_WIDTH: usize = 17;

/// Message states that count as "this finding was told" (or will be).
const TOLD: &str = "m.state <> 'cancelled'";

/// Message states still in the outbox.
const PENDING: &str = "m.state IN ('queued', 'sending', 'held')";

/// When a message told (or will tell) its findings.
const TOLD_AT: &str = "COALESCE(m.sent_at, m.created_at)";

impl Store {
    /// Open findings (`vulnerable`, `mitigated`) of one CVE (or of all) with their
    /// service, owner, newest open observation and notification history, by address.
    pub fn notice_candidates(&self, cve: Option<&str>) -> Result<Vec<NoticeCandidate>, StoreError> {
        let mut all = Vec::new();
        self.each_notice_candidate(cve, |c| all.push(c))?;
        all.sort_by(|a, b| {
            (&a.ip, a.port, &a.hostname, &a.cve).cmp(&(&b.ip, b.port, &b.hostname, &b.cve))
        });
        Ok(all)
    }

    /// [`Store::notice_candidates`], handed over one at a time in finding order and read a
    /// page at a time: a campaign over a country keeps only what it derives from each
    /// record, never every record at once.
    pub fn each_notice_candidate(
        &self,
        cve: Option<&str>,
        mut visit: impl FnMut(NoticeCandidate),
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT f.id, s.id, s.ip, s.port, s.hostname, f.cve, f.state, f.basis, f.detail, f.first_seen, f.last_seen, \
             (SELECT MIN(h.at) FROM finding_history h WHERE h.finding_id = f.id AND h.to_state = 'vulnerable'), \
             (SELECT o.record FROM observations o WHERE o.service_id = s.id AND o.status = 'open' ORDER BY o.id DESC LIMIT 1), \
             a.organisation_id, org.name, org.sector, a.asn, a.holder, a.country, a.registry_network, a.abuse_mailboxes, \
             (SELECT COUNT(*) FROM notifications n JOIN messages m ON m.id = n.message_id WHERE n.finding_id = f.id AND m.state = 'sent'), \
             (SELECT MAX({TOLD_AT}) FROM notifications n JOIN messages m ON m.id = n.message_id WHERE n.finding_id = f.id AND {TOLD}), \
             a.detail, \
             (SELECT COUNT(*) FROM notifications n JOIN messages m ON m.id = n.message_id WHERE n.finding_id = f.id AND {PENDING}) \
             FROM findings f JOIN services s ON s.id = f.service_id \
             LEFT JOIN attributions a ON a.service_id = s.id \
             LEFT JOIN organisations org ON org.id = a.organisation_id \
             WHERE (?1 = '' OR upper(f.cve) = upper(?1)) AND f.state IN ('vulnerable', 'mitigated') AND f.id > ?2 \
             ORDER BY f.id LIMIT ?3"
        );
        let col = |e| self.db.column_error(e);
        let mut after = 0;
        loop {
            let rows = self
                .db
                .query(&sql, vals![cve.unwrap_or(""), after, CANDIDATE_PAGE])?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.int(0).map_err(col)?;
            let page = rows.len();
            for r in rows {
                visit(candidate_row(&r).map_err(col)?);
            }
            if (page as i64) < CANDIDATE_PAGE {
                return Ok(());
            }
        }
    }

    /// Reserves `count` ticket numbers (`<prefix>-<number>`), unique in this store, in a
    /// short transaction: messages are then rendered without the write lock.
    pub fn reserve_tickets(&self, prefix: &str, count: usize) -> Result<Vec<String>, StoreError> {
        let now = timestamp_now();
        self.db.write(|db| {
            let mut tickets = Vec::with_capacity(count);
            for _ in 0..count {
                let row = db.query_one(
                    "INSERT INTO ticket_numbers (reserved_at) VALUES (?1) RETURNING id",
                    vals![&now],
                )?;
                tickets.push(ticket(prefix, returned_id(db, row)?));
            }
            Ok(tickets)
        })
    }

    /// Records a campaign and queues its messages, in one transaction. Fails with
    /// [`StoreError::Conflict`], recording nothing, when one of the findings was told
    /// after `campaign.not_notified_since` or has a message in the outbox (another
    /// campaign queued meanwhile).
    pub fn create_campaign(
        &self,
        campaign: &NewCampaign,
        messages: &[NewMessage],
    ) -> Result<CampaignCreated, StoreError> {
        let now = timestamp_now();
        self.db.write(|db| {
            let finding_ids: Vec<i64> = messages
                .iter()
                .flat_map(|m| m.findings.iter().map(|(id, _)| *id))
                .collect();
            recheck_interval(db, &finding_ids, &campaign.not_notified_since)?;
            let row = db.query_one(
                "INSERT INTO campaigns (name, cve, created_at, tlp, language, params, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                vals![
                    &campaign.name,
                    &campaign.cve,
                    &now,
                    &campaign.tlp,
                    &campaign.language,
                    campaign.params.to_string(),
                    campaign.summary.to_string()
                ],
            )?;
            let campaign_id = returned_id(db, row)?;
            let mut tickets = Vec::with_capacity(messages.len());
            for message in messages {
                let content = &message.content;
                let row = db.query_one(
                    "INSERT INTO messages (campaign_id, ticket, organisation_id, recipient_name, mail_from, recipients, subject, language, round, message_id, state, next_attempt_at, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', ?11, ?11) RETURNING id",
                    vec![
                        Value::Int(campaign_id),
                        (&message.ticket).into(),
                        message.organisation_id.into(),
                        (&message.recipient_name).into(),
                        (&content.mail_from).into(),
                        json_list(&content.recipients).into(),
                        (&content.subject).into(),
                        (&message.language).into(),
                        Value::Int(message.round),
                        (&content.message_id).into(),
                        (&now).into(),
                    ],
                )?;
                let id = returned_id(db, row)?;
                db.execute(
                    "INSERT INTO message_bodies (message_id, message) VALUES (?1, ?2)",
                    vec![Value::Int(id), Value::Blob(content.bytes.clone())],
                )?;
                for (finding_id, state) in &message.findings {
                    db.execute(
                        "INSERT INTO notifications (message_id, finding_id, finding_state) VALUES (?1, ?2, ?3)",
                        vals![id, *finding_id, state],
                    )?;
                }
                tickets.push(message.ticket.clone());
            }
            Ok(CampaignCreated {
                campaign_id,
                tickets,
            })
        })
    }

    /// Campaigns, newest first, with their messages counted by state (read as the
    /// dashboard reads them).
    pub fn campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        Ok(self
            .campaign_rows(None, false)?
            .into_iter()
            .map(|(campaign, summary)| CampaignRow {
                id: campaign.id,
                name: campaign.name,
                cve: campaign.cve,
                created_at: campaign.created_at,
                tlp: campaign.tlp,
                language: campaign.language,
                messages: campaign
                    .messages
                    .into_iter()
                    .map(|(state, n)| (state, i64::try_from(n).unwrap_or(i64::MAX)))
                    .collect(),
                summary: serde_json::from_str(&summary).unwrap_or_default(),
            })
            .collect())
    }

    /// The outbox, oldest first: every message of one campaign, or of all.
    pub fn outbox(&self, campaign_id: Option<i64>) -> Result<Vec<OutboxRow>, StoreError> {
        let (filter, params) = match campaign_id {
            Some(id) => ("WHERE m.campaign_id = ?1", vals![id]),
            None => ("", vals![]),
        };
        let rows = self.db.query(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages m {filter} ORDER BY m.id"),
            params,
        )?;
        self.outbox_rows(&rows)
    }

    /// Messages waiting to be sent: queued and due at `now`, or left `sending` by a sender
    /// that stopped before `stale_before`. Oldest first.
    pub fn due_messages(
        &self,
        now: &str,
        stale_before: &str,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = self.db.query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m \
                 WHERE (m.state = 'queued' AND m.next_attempt_at <= ?1) OR (m.state = 'sending' AND m.last_attempt_at < ?2) \
                 ORDER BY m.next_attempt_at, m.id LIMIT ?3"
            ),
            vals![now, stale_before, limit],
        )?;
        self.outbox_rows(&rows)
    }

    /// When the next queued message that is not due yet at `now` falls due.
    pub fn next_due_after(&self, now: &str) -> Result<Option<String>, StoreError> {
        let row = self.db.query_one(
            "SELECT MIN(next_attempt_at) FROM messages WHERE state = 'queued' AND next_attempt_at > ?1",
            vals![now],
        )?;
        match row {
            Some(r) => r.opt_text(0).map_err(|e| self.db.column_error(e)),
            None => Ok(None),
        }
    }

    /// Messages still waiting in the outbox: (queued or being sent, held).
    pub fn outbox_waiting(&self) -> Result<(i64, i64), StoreError> {
        let row = self.db.query_one(
            "SELECT COUNT(CASE WHEN state IN ('queued', 'sending') THEN 1 END), COUNT(CASE WHEN state = 'held' THEN 1 END) FROM messages",
            vals![],
        )?;
        let col = |e| self.db.column_error(e);
        match row {
            Some(r) => Ok((r.int(0).map_err(col)?, r.int(1).map_err(col)?)),
            None => Ok((0, 0)),
        }
    }

    /// Takes a due message for sending: `None` when another sender took it first.
    pub fn claim_message(
        &self,
        id: i64,
        now: &str,
        stale_before: &str,
    ) -> Result<Option<OutgoingMessage>, StoreError> {
        let claimed = self.db.execute(
            "UPDATE messages SET state = 'sending', attempts = attempts + 1, last_attempt_at = ?2 \
             WHERE id = ?1 AND (state = 'queued' OR (state = 'sending' AND last_attempt_at < ?3))",
            vals![id, now, stale_before],
        )?;
        if claimed == 0 {
            return Ok(None);
        }
        let row = self.db.query_one(
            "SELECT m.id, m.ticket, m.mail_from, m.recipients, m.message_id, b.message, m.attempts FROM messages m JOIN message_bodies b ON b.message_id = m.id WHERE m.id = ?1",
            vals![id],
        )?;
        let Some(r) = row else { return Ok(None) };
        let col = |e| self.db.column_error(e);
        Ok(Some(OutgoingMessage {
            id: r.int(0).map_err(col)?,
            ticket: r.text(1).map_err(col)?,
            mail_from: r.text(2).map_err(col)?,
            recipients: serde_json::from_str(&r.text(3).map_err(col)?).unwrap_or_default(),
            message_id: r.text(4).map_err(col)?,
            bytes: r.blob(5).map_err(col)?,
            attempts: r.int(6).map_err(col)?,
        }))
    }

    /// The relay accepted the message. `false` when the claim (`attempt`) is no longer
    /// this sender's: another sender took the message over as stale, and its outcome wins.
    pub fn message_sent(
        &self,
        message: &OutgoingMessage,
        response: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let changed = self.db.execute(
            "UPDATE messages SET state = 'sent', smtp_response = ?3, sent_at = ?4, last_error = NULL WHERE id = ?1 AND state = 'sending' AND attempts = ?2",
            vals![message.id, message.attempts, response, now],
        )?;
        Ok(changed == 1)
    }

    /// Delivery failed: the message is queued again for `retry_at`, or held (not retried
    /// until an analyst says so) when `retry_at` is `None`. The error is kept either way.
    /// `false` when the claim is no longer this sender's (see [`Store::message_sent`]).
    pub fn message_failed(
        &self,
        message: &OutgoingMessage,
        error: &str,
        retry_at: Option<&str>,
    ) -> Result<bool, StoreError> {
        let changed = match retry_at {
            Some(at) => self.db.execute(
                "UPDATE messages SET state = 'queued', last_error = ?3, next_attempt_at = ?4 WHERE id = ?1 AND state = 'sending' AND attempts = ?2",
                vals![message.id, message.attempts, error, at],
            )?,
            None => self.db.execute(
                "UPDATE messages SET state = 'held', last_error = ?3 WHERE id = ?1 AND state = 'sending' AND attempts = ?2",
                vals![message.id, message.attempts, error],
            )?,
        };
        Ok(changed == 1)
    }

    /// Queues held messages again, due now: those with these tickets, or every held one
    /// (`None`). Returns how many changed.
    pub fn requeue_messages(&self, tickets: Option<&[String]>) -> Result<u64, StoreError> {
        let now = timestamp_now();
        self.db.write(|db| match tickets {
            None => db.execute(
                "UPDATE messages SET state = 'queued', next_attempt_at = ?1 WHERE state = 'held'",
                vals![&now],
            ),
            Some(tickets) => {
                let mut changed = 0;
                for ticket in tickets {
                    changed += db.execute(
                        "UPDATE messages SET state = 'queued', next_attempt_at = ?2 WHERE ticket = ?1 AND state = 'held'",
                        vals![ticket, &now],
                    )?;
                }
                Ok(changed)
            }
        })
    }

    /// Cancels messages not sent yet: their findings count as not told. Returns how many
    /// changed (a message being sent or already sent cannot be cancelled).
    pub fn cancel_messages(&self, tickets: &[String]) -> Result<u64, StoreError> {
        self.db.write(|db| {
            let mut changed = 0;
            for ticket in tickets {
                changed += db.execute(
                    "UPDATE messages SET state = 'cancelled' WHERE ticket = ?1 AND state IN ('queued', 'held')",
                    vals![ticket],
                )?;
            }
            Ok(changed)
        })
    }

    /// One message as stored: its outbox row and its bytes (what was, or will be, sent).
    pub fn message(&self, ticket: &str) -> Result<Option<(OutboxRow, Vec<u8>)>, StoreError> {
        let rows = self.db.query(
            &format!(
                "SELECT {MESSAGE_COLUMNS}, b.message FROM messages m JOIN message_bodies b ON b.message_id = m.id WHERE m.ticket = ?1"
            ),
            vals![ticket],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let outbox = self.outbox_rows(std::slice::from_ref(r))?;
        let bytes = r.blob(MESSAGE_WIDTH).map_err(|e| self.db.column_error(e))?;
        Ok(outbox.into_iter().next().map(|row| (row, bytes)))
    }

    /// When each address was last sent a message, for the per-recipient rate.
    pub fn last_sent_to(&self, since: &str) -> Result<HashMap<String, String>, StoreError> {
        let rows = self.db.query(
            "SELECT recipients, sent_at FROM messages WHERE state = 'sent' AND sent_at >= ?1",
            vals![since],
        )?;
        let col = |e| self.db.column_error(e);
        let mut last: HashMap<String, String> = HashMap::new();
        for r in &rows {
            let sent_at = r.text(1).map_err(col)?;
            let recipients: Vec<String> =
                serde_json::from_str(&r.text(0).map_err(col)?).unwrap_or_default();
            for address in recipients {
                let entry = last.entry(address.to_ascii_lowercase()).or_default();
                if *entry < sent_at {
                    *entry = sent_at.clone();
                }
            }
        }
        Ok(last)
    }

    fn outbox_rows(&self, rows: &[Row]) -> Result<Vec<OutboxRow>, StoreError> {
        rows.iter()
            .map(|r| message_row(r).map(|(row, _)| row))
            .collect::<Result<_, _>>()
            .map_err(|e| self.db.column_error(e))
    }
}

/// A message read with [`MESSAGE_COLUMNS`]: its outbox row, and the organisation it was
/// addressed to (if any).
pub(crate) fn message_row(r: &Row) -> Result<(OutboxRow, Option<i64>), ColumnError> {
    let row = OutboxRow {
        id: r.int(0)?,
        campaign_id: r.int(1)?,
        ticket: r.text(2)?,
        recipient_name: r.text(3)?,
        recipients: serde_json::from_str(&r.text(4)?).unwrap_or_default(),
        subject: r.text(5)?,
        round: r.int(6)?,
        state: r.text(7)?,
        attempts: r.int(8)?,
        next_attempt_at: r.text(9)?,
        last_attempt_at: r.opt_text(10)?,
        last_error: r.opt_text(11)?,
        smtp_response: r.opt_text(12)?,
        sent_at: r.opt_text(13)?,
        created_at: r.text(14)?,
        findings: r.int(15)?,
    };
    Ok((row, r.opt_int(16)?))
}

/// Times in the outbox (see [`wachter_core::stamp`]): comparing the text compares the times.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    wachter_core::stamp::utc(t)
}

/// The time now, as [`timestamp`] writes it.
pub(crate) fn timestamp_now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// `<prefix>-<number>`: numbers start at 10000001 (as in IntelMQ mailgen) so every ticket
/// has the same width for years.
pub fn ticket(prefix: &str, message_id: i64) -> String {
    format!("{prefix}-{}", 10_000_000 + message_id)
}

/// Refuses the campaign when a finding was told after the cutoff, or has a message in the
/// outbox (see [`NewCampaign`]).
fn recheck_interval(db: &Db, finding_ids: &[i64], cutoff: &str) -> Result<(), StoreError> {
    for chunk in finding_ids.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
        let mut params = vals![cutoff];
        params.extend(chunk.iter().map(|id| Value::Int(*id)));
        let row = db.query_one(
            &format!(
                "SELECT COUNT(*) FROM notifications n JOIN messages m ON m.id = n.message_id \
                 WHERE ({PENDING} OR ({TOLD} AND {TOLD_AT} > ?1)) AND n.finding_id IN ({})",
                placeholders.join(", ")
            ),
            params,
        )?;
        let told = match row {
            Some(r) => r.int(0).map_err(|e| db.column_error(e))?,
            None => 0,
        };
        if told > 0 {
            return Err(StoreError::Conflict {
                location: db.location().to_string(),
                detail: format!(
                    "{told} of these findings were told since {cutoff} or wait in the outbox (another campaign was queued meanwhile); nothing was queued, run the campaign again"
                ),
            });
        }
    }
    Ok(())
}

/// Candidates read per query.
const CANDIDATE_PAGE: i64 = 2_000;

fn candidate_row(r: &Row) -> Result<NoticeCandidate, ColumnError> {
    Ok(NoticeCandidate {
        finding_id: r.int(0)?,
        service_id: r.int(1)?,
        ip: r.text(2)?,
        port: u16::try_from(r.int(3)?).unwrap_or(0),
        hostname: r.text(4)?,
        cve: r.text(5)?,
        state: r.text(6)?,
        basis: r.text(7)?,
        detail: r.text(8)?,
        first_seen: r.text(9)?,
        last_seen: r.text(10)?,
        vulnerable_since: r.opt_text(11)?,
        record: r.opt_text(12)?,
        organisation_id: r.opt_int(13)?,
        organisation: r.opt_text(14)?,
        sector: r.opt_text(15)?,
        asn: r.opt_int(16)?,
        holder: r.opt_text(17)?,
        country: r.opt_text(18)?,
        registry_network: r.opt_text(19)?,
        abuse_mailboxes: r
            .opt_text(20)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        notified_count: r.int(21)?,
        last_notified: r.opt_text(22)?,
        registry_name: r.opt_text(23)?.and_then(|detail| registry_name(&detail)),
        pending: r.int(24)?,
    })
}

/// `org_name`, else `netname`, of the registry network an attribution recorded.
fn registry_name(detail: &str) -> Option<String> {
    let detail: serde_json::Value = serde_json::from_str(detail).ok()?;
    let registry = detail.get("registry")?;
    ["org_name", "netname"]
        .iter()
        .find_map(|key| registry.get(*key).and_then(|v| v.as_str()))
        .filter(|name| !name.trim().is_empty())
        .map(String::from)
}

/// The id an `INSERT … RETURNING id` gave back.
pub(crate) fn returned_id(db: &Db, row: Option<Row>) -> Result<i64, StoreError> {
    match row {
        Some(r) => r.int(0).map_err(|e| db.column_error(e)),
        None => Err(db.column_error(ColumnError("no id returned".into()))),
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}
