//! `wachter campaign`, `wachter outbox` and `wachter export`: telling owners.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wachter_constituency::org::Tlp;
use wachter_core::addr::IpRange;
use wachter_notify::campaign::{self, Candidate, Outcome, Plan, PlannedMessage, Policy, Recipient};
use wachter_notify::compose::{Composed, Composer};
use wachter_notify::export::{self, Format};
use wachter_notify::mail;
use wachter_notify::smtp::Mailer;
use wachter_notify::template::Templates;
use wachter_notify::{ExportMeta, HostFinding, Owner, Reporter, evidence};
use wachter_store::{MailContent, NewCampaign, NewMessage, NoticeCandidate, Store, timestamp};

use crate::cases::{emit, json, open};
use crate::cli::{
    CampaignAction, CampaignArgs, CampaignNewArgs, ExportArgs, Failure, OutboxAction, OutboxArgs,
    OutboxSendArgs,
};
use crate::config::{Config, NotifyConfig};
use crate::exit;

/// Exit code of `outbox send` when messages are left queued for a retry or held.
pub const NOT_ALL_SENT: u8 = 1;

pub fn campaign(args: CampaignArgs, config: &Config) -> Result<u8, Failure> {
    match args.action {
        CampaignAction::New(new) => campaign_new(new, &args.db, config),
        CampaignAction::List { json: as_json } => {
            let store = open(&args.db, config, true)?;
            let campaigns = store.campaigns().map_err(Failure::failed)?;
            if as_json {
                return json(&campaigns);
            }
            let mut out = String::new();
            for c in &campaigns {
                let counts: BTreeMap<_, _> = c.messages.iter().collect();
                let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                out += &format!(
                    "#{:<4} {}  {}  {}  {}  messages: {}\n",
                    c.id,
                    c.created_at,
                    c.cve,
                    c.tlp,
                    c.name,
                    if counts.is_empty() {
                        "none".into()
                    } else {
                        counts.join(" · ")
                    }
                );
            }
            if campaigns.is_empty() {
                out = "no campaigns yet: wachter campaign new --cve CVE-…\n".into();
            }
            emit(out)
        }
        CampaignAction::Show { id, json: as_json } => {
            let store = open(&args.db, config, true)?;
            let Some(c) = store
                .campaigns()
                .map_err(Failure::failed)?
                .into_iter()
                .find(|c| c.id == id)
            else {
                return Err(Failure::usage(anyhow!("no campaign #{id}")));
            };
            let messages = store.outbox(Some(id)).map_err(Failure::failed)?;
            if as_json {
                return json(&serde_json::json!({ "campaign": c, "messages": messages }));
            }
            let mut out = format!("campaign #{} {} ({}, {})\n", c.id, c.name, c.cve, c.tlp);
            out += &outbox_table(&messages);
            // The decisions as recorded with the campaign (a summary that does not read
            // as decisions, from a foreign writer, just lists none).
            let decisions: Vec<campaign::Decision> = c
                .summary
                .get("decisions")
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default();
            out += &not_told(&decisions);
            emit(out)
        }
        CampaignAction::Templates { out } => {
            Templates::write_builtin(&out)
                .with_context(|| format!("cannot write templates to {}", out.display()))
                .map_err(Failure::failed)?;
            emit(format!(
                "templates written to {}: edit them, then set [notify] templates = {:?} or pass --templates\n",
                out.display(),
                out.display().to_string()
            ))
        }
    }
}

/// Who reports, and under which TLP: from the config and the flags, checked.
fn reporter(notify: &NotifyConfig, tlp: Option<&str>) -> Result<(Reporter, Tlp), Failure> {
    let from = mail::parse_mailbox(&notify.from)
        .map_err(|e| Failure::usage(anyhow!("[notify] from: {e}")))?;
    if let Some(reply_to) = &notify.reply_to {
        mail::parse_mailbox(reply_to)
            .map_err(|e| Failure::usage(anyhow!("[notify] reply_to: {e}")))?;
    }
    // The domain names every Message-ID: it must be a plain (ASCII) DNS name.
    let domain = from.email.domain().to_ascii_lowercase();
    if !domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(Failure::usage(anyhow!(
            "[notify] from: the domain {domain:?} must be written in ASCII (xn--… for an IDN)"
        )));
    }
    let prefix = &notify.ticket_prefix;
    if prefix.is_empty()
        || prefix.len() > 32
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Failure::usage(anyhow!(
            "[notify] ticket_prefix {prefix:?}: letters, digits, - and _ only, at most 32"
        )));
    }
    let tlp: Tlp = tlp
        .unwrap_or(&notify.tlp)
        .parse()
        .map_err(|e: String| Failure::usage(anyhow!("TLP: {e}")))?;
    let reporter = Reporter {
        org: notify.reporter.clone(),
        from: notify.from.clone(),
        reply_to: notify.reply_to.clone(),
        domain,
        url: notify.url.clone(),
        ticket_prefix: prefix.clone(),
    };
    Ok((reporter, tlp))
}

/// Everything a campaign is made with, from the config and the flags.
struct Setup {
    reporter: Reporter,
    tlp: Tlp,
    language: String,
    repeat_after: time::Duration,
    templates: Templates,
}

fn setup(
    notify: &NotifyConfig,
    tlp: Option<&str>,
    language: Option<&str>,
    repeat_after: Option<&str>,
    templates: Option<&Path>,
) -> Result<Setup, Failure> {
    let (reporter, tlp) = reporter(notify, tlp)?;
    for (sector, cert) in &notify.escalation {
        mail::parse_mailbox(cert)
            .map_err(|e| Failure::usage(anyhow!("[notify.escalation] {sector}: {e}")))?;
    }
    let repeat_after = parse_duration(repeat_after.unwrap_or(&notify.repeat_after))
        .map_err(|e| Failure::usage(anyhow!("repeat interval: {e}")))?;
    let templates = match templates.or(notify.templates.as_deref()) {
        Some(dir) => Templates::load(dir).map_err(Failure::usage)?,
        None => Templates::builtin(),
    };
    Ok(Setup {
        reporter,
        tlp,
        language: language.unwrap_or(&notify.language).to_string(),
        repeat_after,
        templates,
    })
}

fn campaign_new(
    args: CampaignNewArgs,
    db: &Option<String>,
    config: &Config,
) -> Result<u8, Failure> {
    let notify = &config.notify;
    let setup = setup(
        notify,
        args.tlp.as_deref(),
        args.language.as_deref(),
        args.repeat_after.as_deref(),
        args.templates.as_deref(),
    )?;
    if args.dry_run.is_none() && setup.reporter.domain.ends_with(".invalid") {
        return Err(Failure::usage(anyhow!(
            "[notify] from is the built-in {:?}: set your CERT's address before queuing mail (or use --dry-run DIR)",
            notify.from
        )));
    }
    let mut suppress: Vec<IpRange> = Vec::new();
    for entry in &notify.suppress {
        suppress.push(
            entry
                .parse()
                .map_err(|e| Failure::usage(anyhow!("[notify] suppress {entry:?}: {e}")))?,
        );
    }
    if let Some(file) = &config.scan.opt_out_file {
        suppress.extend(
            wachter_scan::inputs::read_network_list(file)
                .map_err(|e| Failure::usage(anyhow!("opt-out file: {e}")))?,
        );
    }
    let cve = args.cve.trim().to_ascii_uppercase();
    let store = open(db, config, true)?;
    // Each record is read for its evidence and dropped: memory follows the findings, not
    // the observations behind them.
    let mut candidates: Vec<Candidate> = Vec::new();
    store
        .each_notice_candidate(Some(&cve), |row| candidates.push(candidate(&row)))
        .map_err(Failure::failed)?;
    let organisations: HashMap<i64, Recipient> = store
        .organisations()
        .map_err(Failure::failed)?
        .into_iter()
        .map(|o| {
            (
                o.id,
                Recipient {
                    name: o.organisation.name.clone(),
                    sector: o.organisation.sector.clone(),
                    contacts: o.organisation.contacts.clone(),
                },
            )
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    let policy = Policy {
        now,
        repeat_after: setup.repeat_after,
        do_not_contact: notify.do_not_contact.clone(),
        suppress,
        escalation: notify.escalation.clone(),
        escalate_from_round: notify.escalate_from_round,
        default_language: setup.language.clone(),
    };
    let plan = campaign::plan(&candidates, &organisations, &policy);
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{cve} {}", &timestamp(now)[..10]));

    let composer = Composer {
        templates: &setup.templates,
        reporter: &setup.reporter,
        tlp: setup.tlp,
        campaign: &name,
        cve: &cve,
        now,
    };
    let render = |ticket: &str, message: &PlannedMessage| -> Result<Composed, String> {
        composer.compose(ticket, message).map_err(|e| e.to_string())
    };

    let summary = CampaignSummary::new(&plan);
    if let Some(dir) = &args.dry_run {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .map_err(Failure::failed)?;
        let mut tickets = Vec::new();
        for (i, message) in plan.messages.iter().enumerate() {
            let ticket = format!("{}-DRYRUN-{}", setup.reporter.ticket_prefix, i + 1);
            let composed = render(&ticket, message).map_err(|e| {
                Failure::failed(anyhow!("message to {}: {e}", message.recipient_name))
            })?;
            for (ext, bytes) in [
                ("eml", composed.built.bytes),
                ("txt", composed.text.into_bytes()),
                ("html", composed.html.into_bytes()),
            ] {
                let path = dir.join(format!("{ticket}.{ext}"));
                std::fs::write(&path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))
                    .map_err(Failure::failed)?;
            }
            tickets.push(ticket);
        }
        let plan_path = dir.join("plan.json");
        let plan_json =
            serde_json::to_vec_pretty(&serde_json::json!({ "plan": &plan, "summary": &summary }))
                .map_err(Failure::failed)?;
        std::fs::write(&plan_path, plan_json)
            .with_context(|| format!("cannot write {}", plan_path.display()))
            .map_err(Failure::failed)?;
        return report_campaign(&plan, &summary, None, &tickets, Some(dir), args.json);
    }

    // Ticket numbers first (a short transaction), then every message rendered without
    // holding the store's write lock, then the campaign queued in one transaction.
    let tickets = store
        .reserve_tickets(&setup.reporter.ticket_prefix, plan.messages.len())
        .map_err(Failure::failed)?;
    let mut messages: Vec<NewMessage> = Vec::with_capacity(plan.messages.len());
    for (message, ticket) in plan.messages.iter().zip(&tickets) {
        let composed = render(ticket, message).map_err(|e| {
            Failure::failed(anyhow!(
                "message to {}: {e}; nothing was queued",
                wachter_notify::text::one_line(&message.recipient_name, 200)
            ))
        })?;
        messages.push(NewMessage {
            ticket: ticket.clone(),
            content: MailContent {
                mail_from: composed.built.from,
                recipients: composed.built.recipients,
                subject: composed.subject,
                message_id: composed.built.message_id,
                bytes: composed.built.bytes,
            },
            organisation_id: message.organisation_id,
            recipient_name: message.recipient_name.clone(),
            language: message.language.clone(),
            round: message.round,
            findings: message
                .findings
                .iter()
                .map(|f| (f.finding_id, f.state.clone()))
                .collect(),
        });
    }
    let earliest_allowed = timestamp(now - setup.repeat_after);
    let new = NewCampaign {
        name: name.clone(),
        cve: cve.clone(),
        tlp: setup.tlp.as_str().to_string(),
        language: setup.language.clone(),
        params: serde_json::json!({
            "reporter": setup.reporter,
            "repeat_after": args.repeat_after.as_deref().unwrap_or(&notify.repeat_after),
            "do_not_contact": notify.do_not_contact,
            "suppress": notify.suppress,
            "escalation": notify.escalation,
            "escalate_from_round": notify.escalate_from_round,
            "templates": args.templates.as_ref().or(notify.templates.as_ref()),
        }),
        summary: serde_json::to_value(&summary).map_err(Failure::failed)?,
        not_notified_since: earliest_allowed,
    };
    let created = store
        .create_campaign(&new, &messages)
        .map_err(|e| match e {
            wachter_store::StoreError::Conflict { .. } => Failure::usage(e),
            e => Failure::failed(e),
        })?;
    report_campaign(
        &plan,
        &summary,
        Some(created.campaign_id),
        &created.tickets,
        None,
        args.json,
    )
}

/// What a campaign decided, kept with it.
#[derive(Serialize)]
struct CampaignSummary {
    counts: BTreeMap<&'static str, usize>,
    decisions: Vec<campaign::Decision>,
    unusable_contacts: Vec<String>,
}

impl CampaignSummary {
    fn new(plan: &Plan) -> Self {
        CampaignSummary {
            counts: plan
                .counts()
                .into_iter()
                .map(|(o, n)| (o.as_str(), n))
                .collect(),
            decisions: plan.decisions.clone(),
            unusable_contacts: plan.unusable_contacts.clone(),
        }
    }
}

fn report_campaign(
    plan: &Plan,
    summary: &CampaignSummary,
    campaign_id: Option<i64>,
    tickets: &[String],
    dry_run: Option<&Path>,
    as_json: bool,
) -> Result<u8, Failure> {
    if as_json {
        let messages: Vec<_> = plan
            .messages
            .iter()
            .zip(tickets)
            .map(|(m, t)| {
                serde_json::json!({
                    "ticket": t, "recipient": m.recipient_name, "to": m.to, "cc": m.cc,
                    "language": m.language, "round": m.round, "hosts": m.findings.len(),
                })
            })
            .collect();
        return json(&serde_json::json!({
            "campaign_id": campaign_id,
            "dry_run": dry_run,
            "messages": messages,
            "counts": summary.counts,
            "decisions": summary.decisions,
            "unusable_contacts": summary.unusable_contacts,
        }));
    }
    let mut out = String::new();
    match (campaign_id, dry_run) {
        (Some(id), _) => out += &format!("campaign #{id}: {} messages queued\n", tickets.len()),
        (None, Some(dir)) => {
            out += &format!(
                "dry run: {} messages rendered to {} (nothing queued)\n",
                tickets.len(),
                dir.display()
            )
        }
        _ => {}
    }
    for (m, ticket) in plan.messages.iter().zip(tickets) {
        out += &format!(
            "  {ticket}  {} ({} hosts, round {}, {}) to {}{}\n",
            m.recipient_name,
            m.findings.len(),
            m.round,
            m.language,
            m.to.join(", "),
            if m.cc.is_empty() {
                String::new()
            } else {
                format!(" cc {}", m.cc.join(", "))
            }
        );
    }
    let counts: Vec<String> = summary
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    out += &format!(
        "findings: {}\n",
        if counts.is_empty() {
            "none open".into()
        } else {
            counts.join(" · ")
        }
    );
    out += &not_told(&plan.decisions);
    for problem in &plan.unusable_contacts {
        out += &format!("unusable contact: {problem}\n");
    }
    if campaign_id.is_some() && !tickets.is_empty() {
        out += "send with: wachter outbox send\n";
    }
    emit(out)
}

/// The findings a campaign did not tell and that need an analyst (told recently is fine).
fn not_told(decisions: &[campaign::Decision]) -> String {
    let mut out = String::new();
    for d in decisions
        .iter()
        .filter(|d| d.outcome != Outcome::Told && d.outcome != Outcome::RecentlyTold)
    {
        if out.is_empty() {
            out += "not told (act on these):\n";
        }
        out += &format!(
            "  {}:{} {} {}: {}\n",
            d.ip,
            d.port,
            d.cve,
            d.outcome.as_str(),
            d.reason
        );
    }
    out
}

/// A store row as the campaign planner sees it.
fn candidate(row: &NoticeCandidate) -> Candidate {
    Candidate {
        finding: host_finding(row),
        organisation_id: row.organisation_id,
        notified_count: row.notified_count,
        last_notified: row.last_notified.clone(),
        pending: row.pending,
    }
}

fn host_finding(row: &NoticeCandidate) -> HostFinding {
    let facts = row
        .record
        .as_deref()
        .map(|r| evidence::from_record(r, &row.cve))
        .unwrap_or_default();
    HostFinding {
        finding_id: row.finding_id,
        ip: row.ip.clone(),
        port: row.port,
        hostname: row.hostname.clone(),
        cert_names: facts.cert_names,
        product: if facts.product.is_empty() {
            "netscaler".into()
        } else {
            facts.product
        },
        build: facts.build,
        cve: row.cve.clone(),
        state: row.state.clone(),
        basis: row.basis.clone(),
        detail: row.detail.clone(),
        first_seen: row.first_seen.clone(),
        last_seen: row.last_seen.clone(),
        vulnerable_since: row.vulnerable_since.clone(),
        evidence: facts.evidence,
        owner: Owner {
            organisation: row.organisation.clone(),
            sector: row.sector.clone(),
            asn: row.asn.and_then(|a| u32::try_from(a).ok()),
            holder: row.holder.clone().or_else(|| row.registry_name.clone()),
            country: row.country.clone(),
            network: row.registry_network.clone(),
            abuse_contacts: row.abuse_mailboxes.clone(),
        },
    }
}

pub fn outbox(args: OutboxArgs, config: &Config) -> Result<u8, Failure> {
    match args.action {
        OutboxAction::Send(send_args) => {
            let store = open(&args.db, config, true)?;
            send(&store, &send_args, &config.notify)
        }
        OutboxAction::List {
            campaign,
            json: as_json,
        } => {
            let store = open(&args.db, config, true)?;
            let rows = store.outbox(campaign).map_err(Failure::failed)?;
            if as_json {
                return json(&rows);
            }
            emit(outbox_table(&rows))
        }
        OutboxAction::Show { ticket } => {
            let store = open(&args.db, config, true)?;
            let Some((_, bytes)) = store.message(&ticket).map_err(Failure::failed)? else {
                return Err(Failure::usage(anyhow!("no message with ticket {ticket}")));
            };
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::failed(e)),
                _ => Ok(exit::OK),
            }
        }
        OutboxAction::Retry { tickets, all } => {
            if tickets.is_empty() != all {
                return Err(Failure::usage(anyhow!(
                    "name the tickets to retry, or --all (every held message)"
                )));
            }
            let store = open(&args.db, config, true)?;
            let n = store
                .requeue_messages((!all).then_some(tickets.as_slice()))
                .map_err(Failure::failed)?;
            emit(format!("{n} held messages queued again\n"))
        }
        OutboxAction::Cancel { tickets } => {
            let store = open(&args.db, config, true)?;
            let n = store.cancel_messages(&tickets).map_err(Failure::failed)?;
            emit(format!(
                "{n} messages cancelled (their findings count as not told)\n"
            ))
        }
    }
}

fn outbox_table(rows: &[wachter_store::OutboxRow]) -> String {
    if rows.is_empty() {
        return "the outbox is empty\n".into();
    }
    let mut out = String::new();
    for r in rows {
        out += &format!(
            "{:<18} {:<9} {:>2} tries  {} ({} hosts) to {}{}\n",
            r.ticket,
            r.state,
            r.attempts,
            r.recipient_name,
            r.findings,
            r.recipients.join(", "),
            match (&r.state[..], &r.last_error, &r.sent_at) {
                ("sent", _, Some(at)) => format!("  sent {at}"),
                (_, Some(error), _) => format!("  last error: {error}"),
                _ => String::new(),
            }
        );
    }
    out
}

/// What a send run did, and what it left in the outbox.
#[derive(Default, Serialize)]
struct SendReport {
    sent: Vec<String>,
    retry_later: Vec<(String, String)>,
    held: Vec<(String, String)>,
    /// Why the run stopped early: the relay itself failed.
    relay_failure: Option<String>,
    /// Still in the outbox after the run (from this run or earlier ones).
    waiting: usize,
    waiting_held: usize,
}

fn send(store: &Store, args: &OutboxSendArgs, notify: &NotifyConfig) -> Result<u8, Failure> {
    let send = &notify.send;
    let mailer =
        Mailer::new(&notify.smtp).map_err(|e| Failure::usage(anyhow!("[notify.smtp]: {e}")))?;
    let seconds = |secs: u64| time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2));
    let stale = seconds(send.stale_after_secs);
    let gap = seconds(send.recipient_gap_secs);
    let spacing = match send.rate_per_minute {
        0 => Duration::ZERO,
        n => Duration::from_secs_f64(60.0 / f64::from(n)),
    };
    let mut last_sent: HashMap<String, OffsetDateTime> = store
        .last_sent_to(&timestamp(OffsetDateTime::now_utc() - gap))
        .map_err(Failure::failed)?
        .into_iter()
        .filter_map(|(address, at)| Some((address, OffsetDateTime::parse(&at, &Rfc3339).ok()?)))
        .collect();
    let mut report = SendReport::default();
    let mut previous_send: Option<std::time::Instant> = None;
    'run: loop {
        let now = OffsetDateTime::now_utc();
        let due = store
            .due_messages(&timestamp(now), &timestamp(now - stale), 200)
            .map_err(Failure::failed)?;
        let mut waiting_for_gap: Option<OffsetDateTime> = None;
        let mut progressed = false;
        for row in due {
            // The per-recipient rate: a message waits while any of its addresses was
            // written to less than the gap ago.
            let free_at = row
                .recipients
                .iter()
                .filter_map(|a| last_sent.get(&a.to_ascii_lowercase()))
                .map(|at| *at + gap)
                .max();
            if let Some(free_at) = free_at
                && free_at > OffsetDateTime::now_utc()
            {
                waiting_for_gap = Some(waiting_for_gap.map_or(free_at, |w| w.min(free_at)));
                continue;
            }
            if let Some(previous) = previous_send {
                let since = previous.elapsed();
                if since < spacing {
                    std::thread::sleep(spacing - since);
                }
            }
            let now = OffsetDateTime::now_utc();
            let Some(message) = store
                .claim_message(row.id, &timestamp(now), &timestamp(now - stale))
                .map_err(Failure::failed)?
            else {
                continue; // another sender took it
            };
            previous_send = Some(std::time::Instant::now());
            progressed = true;
            tracing::info!(ticket = %message.ticket, attempt = message.attempts, "sending");
            let result = mailer.send(&message.mail_from, &message.recipients, &message.bytes);
            let at = OffsetDateTime::now_utc();
            // A rejection, or the last attempt, holds the message for an analyst.
            let held = result
                .as_ref()
                .err()
                .is_some_and(|e| e.permanent || message.attempts >= send.max_attempts);
            let recorded = match &result {
                Ok(delivered) => store.message_sent(&message, &delivered.response, &timestamp(at)),
                Err(error) => {
                    let retry_at = (!held).then(|| timestamp(at + backoff(send, message.attempts)));
                    store.message_failed(&message, &error.to_string(), retry_at.as_deref())
                }
            }
            .map_err(Failure::failed)?;
            if !recorded {
                // Our claim went stale and another sender took the message over; its
                // outcome stands.
                tracing::warn!(ticket = %message.ticket, "taken over by another sender");
                continue;
            }
            match result {
                Ok(_) => {
                    for address in &message.recipients {
                        last_sent.insert(address.to_ascii_lowercase(), at);
                    }
                    report.sent.push(message.ticket);
                }
                Err(error) => {
                    tracing::warn!(ticket = %message.ticket, %error, "not delivered");
                    if held {
                        report.held.push((message.ticket, error.to_string()));
                    } else {
                        report.retry_later.push((message.ticket, error.to_string()));
                    }
                    if error.relay {
                        // Every other message would fail the same way.
                        report.relay_failure = Some(error.to_string());
                        break 'run;
                    }
                }
            }
        }
        if progressed {
            continue;
        }
        // Nothing could be sent now: wait for the per-recipient gap, or (with --wait) for
        // the next retry; otherwise stop.
        let now = OffsetDateTime::now_utc();
        let next_retry = if args.wait {
            store
                .next_due_after(&timestamp(now))
                .map_err(Failure::failed)?
                .and_then(|at| OffsetDateTime::parse(&at, &Rfc3339).ok())
        } else {
            None
        };
        let Some(until) = [waiting_for_gap, next_retry].into_iter().flatten().min() else {
            break;
        };
        let pause = (until - now).clamp(time::Duration::ZERO, time::Duration::seconds(60));
        std::thread::sleep(
            Duration::try_from(pause).unwrap_or(Duration::from_secs(1)) + Duration::from_millis(50),
        );
    }
    // A message retried in this run and then sent or held is reported once, as that.
    report.retry_later.retain(|(ticket, _)| {
        !report.sent.contains(ticket) && !report.held.iter().any(|(t, _)| t == ticket)
    });
    let (waiting, held) = store.outbox_waiting().map_err(Failure::failed)?;
    report.waiting = usize::try_from(waiting).unwrap_or(0);
    report.waiting_held = usize::try_from(held).unwrap_or(0);
    let code = if report.waiting == 0 && report.waiting_held == 0 && report.relay_failure.is_none()
    {
        exit::OK
    } else {
        NOT_ALL_SENT
    };
    if args.json {
        json(&report)?;
        return Ok(code);
    }
    let mut out = format!(
        "sent {} · queued for a retry {} · held {}\n",
        report.sent.len(),
        report.retry_later.len(),
        report.held.len()
    );
    for (ticket, error) in &report.retry_later {
        out += &format!("  retry later {ticket}: {error}\n");
    }
    for (ticket, error) in &report.held {
        out += &format!("  held {ticket}: {error} (wachter outbox retry {ticket} once fixed)\n");
    }
    if let Some(error) = &report.relay_failure {
        out += &format!(
            "stopped: the relay failed ({error}); fix [notify.smtp] or the relay, then send again\n"
        );
    }
    if report.waiting + report.waiting_held > 0 {
        out += &format!(
            "still in the outbox: {} queued, {} held (wachter outbox list)\n",
            report.waiting, report.waiting_held
        );
    }
    emit(out)?;
    Ok(code)
}

/// Wait before the next attempt: the base, doubled per attempt made, capped.
fn backoff(send: &crate::config::SendConfig, attempts: i64) -> time::Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let secs = send
        .retry_base_secs
        .saturating_mul(1u64 << exponent)
        .min(send.retry_max_secs);
    time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2))
}

pub fn export(args: ExportArgs, config: &Config) -> Result<u8, Failure> {
    let format: Format = args
        .format
        .parse()
        .map_err(|e| Failure::usage(anyhow!("--format: {e}")))?;
    let notify = &config.notify;
    let (reporter, tlp) = reporter(notify, args.tlp.as_deref())?;
    let store = open(&args.db, config, true)?;
    let mut findings: Vec<HostFinding> = Vec::new();
    store
        .each_notice_candidate(args.cve.as_deref(), |row| findings.push(host_finding(&row)))
        .map_err(Failure::failed)?;
    findings.sort_by(|a, b| {
        (&a.ip, a.port, &a.hostname, &a.cve).cmp(&(&b.ip, b.port, &b.hostname, &b.cve))
    });
    let meta = ExportMeta {
        reporter,
        tlp,
        generated_at: timestamp(OffsetDateTime::now_utc()),
    };
    let mut bytes = Vec::new();
    export::write(format, &findings, &meta, &mut bytes).map_err(Failure::failed)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))
                .map_err(Failure::failed)?;
            eprintln!(
                "{} open findings exported as {} to {}",
                findings.len(),
                format.as_str(),
                path.display()
            );
            Ok(exit::OK)
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::failed(e)),
                _ => Ok(exit::OK),
            }
        }
    }
}

/// `7d`, `36h`, `90m`, `45s`; a bare number is days.
fn parse_duration(text: &str) -> Result<time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "d"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 7d, 36h or 90m"))?;
    match unit.trim() {
        "d" => Ok(time::Duration::days(n)),
        "h" => Ok(time::Duration::hours(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "s" => Ok(time::Duration::seconds(n)),
        _ => Err(format!("{text:?} is not a duration like 7d, 36h or 90m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(time::Duration::days(7)));
        assert_eq!(parse_duration("36h"), Ok(time::Duration::hours(36)));
        assert_eq!(parse_duration("3"), Ok(time::Duration::days(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("7w").is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let send = crate::config::SendConfig::default();
        assert_eq!(backoff(&send, 1), time::Duration::seconds(300));
        assert_eq!(backoff(&send, 2), time::Duration::seconds(600));
        assert_eq!(backoff(&send, 40), time::Duration::seconds(6 * 3600));
    }
}
