//! The read models against a small case with a known history, on SQLite and on PostgreSQL:
//! filters (each field, combined, networks of odd prefix lengths in both families) checked
//! against a plain evaluation of every row, paging, the overview and its trend against
//! `report::trend`, and the detail pages.

use std::collections::BTreeMap;
use std::net::IpAddr;

use wachter_constituency::org::{Contact, ContactRole, ContactSource, Organisation};
use wachter_core::assessment::{Basis, CveVerdict, Verdict};
use wachter_core::record::{Certificate, ServiceRecord, Status, TlsInfo};
use wachter_scan::output::Checkpoint;

use super::*;
use crate::db::vals;
use crate::tests::{netscaler_assessment, on_each_backend_in, remove_sqlite};
use crate::{
    AttributionRow, MailContent, NewCampaign, NewMessage, ScanInfo, is_postgres_url, same_name,
    timestamp,
};

const CITRIX: &str = "CVE-2019-19781";
const GATEWAY: &str = "CVE-2023-3519";

/// Runs `case` on a fresh SQLite file, then on a fresh PostgreSQL database when the suite
/// has a server.
fn on_each_backend(name: &str, case: impl Fn(&str)) {
    on_each_backend_in("view", name, case);
}

/// One target as a scan saw it: open with verdicts, or not answering (`verdicts` empty and
/// `status` not open).
struct Seen {
    ip: String,
    port: u16,
    hostname: Option<&'static str>,
    status: Status,
    verdicts: Vec<(&'static str, Verdict)>,
    /// The leaf certificate's hash (hex digit repeated), if TLS.
    cert: Option<char>,
}

fn open(ip: &str, verdicts: &[(&'static str, Verdict)]) -> Seen {
    Seen {
        ip: ip.to_string(),
        port: 443,
        hostname: None,
        status: Status::Open,
        verdicts: verdicts.to_vec(),
        cert: None,
    }
}

/// The case's VPN service: Noord's named one on port 8443.
fn vpn(verdict: Verdict) -> Seen {
    let mut seen = open("127.70.1.5", &[(CITRIX, verdict)]);
    seen.port = 8443;
    seen.hostname = Some("vpn.noord.test");
    seen
}

fn silent(ip: &str, status: Status) -> Seen {
    Seen {
        ip: ip.to_string(),
        port: 443,
        hostname: None,
        status,
        verdicts: Vec::new(),
        cert: None,
    }
}

fn record(seen: &Seen, time: &str) -> ServiceRecord {
    let mut r = ServiceRecord::new(
        seen.ip.parse().unwrap(),
        seen.port,
        seen.hostname.map(str::to_string),
        time.to_string(),
    );
    r.status = seen.status;
    if let Some(c) = seen.cert {
        r.tls = Some(TlsInfo {
            chain: vec![Certificate {
                sha256: c.to_string().repeat(64),
                subject: format!("CN=<script>alert({c})</script>"),
                issuer: "CN=Example CA".into(),
                sans: vec![
                    format!("{c}.example.test"),
                    "<img src=x onerror=alert(1)>".into(),
                ],
                der: "MIIB".into(),
                not_after: Some("2027-01-01T00:00:00Z".into()),
                ..Certificate::default()
            }],
            ..TlsInfo::default()
        });
    }
    if !seen.verdicts.is_empty() {
        r.checks.push(netscaler_assessment(
            seen.verdicts
                .iter()
                .map(|(cve, verdict)| CveVerdict {
                    cve: cve.to_string(),
                    verdict: *verdict,
                    basis: Basis::Probe,
                    detail: "{\"why\":\"test\"}".into(),
                })
                .collect(),
        ));
    }
    r
}

/// Runs one scan over `seen` at `day` (January 2026) and ends it as `end` says.
fn scan(store: &mut Store, day: u32, seen: &[Seen], end: End) -> i64 {
    let id = store
        .begin_scan(&ScanInfo {
            seed: u64::from(day),
            shard: "1/1".into(),
            ports: "443,8443".into(),
            check: "netscaler".into(),
            scope: "127.0.0.0/8".into(),
            params: format!("{{\"day\":{day}}}"),
            resume: None,
        })
        .unwrap();
    let time = format!("2026-01-{day:02}T08:00:00Z");
    let records: Vec<ServiceRecord> = seen.iter().map(|s| record(s, &time)).collect();
    let positioned: Vec<(Option<u64>, &ServiceRecord)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (Some(i as u64), r))
        .collect();
    let checkpoint = Checkpoint {
        next: records.len() as u64,
        done_above: vec![],
    };
    store
        .write_positioned(id, &positioned, Some(&checkpoint))
        .unwrap();
    match end {
        End::Finished => store.finish_scan(id, false, "{\"summary\":true}").unwrap(),
        End::Interrupted => store.finish_scan(id, true, "{}").unwrap(),
        End::Running => {}
    }
    id
}

#[derive(Clone, Copy)]
enum End {
    Finished,
    Interrupted,
    Running,
}

use Verdict::{Mitigated, Patched, Unknown, Vulnerable};

/// What the case is made of, by name.
struct Case {
    scans: Vec<i64>,
    /// Organisation ids by name.
    orgs: BTreeMap<&'static str, i64>,
    /// Service ids by address.
    services: BTreeMap<String, i64>,
    campaign: i64,
    cancelled_campaign: i64,
}

const NOORD: &str = "Ziekenhuis Noord";
const ZUID: &str = "Gemeente Zuid";
const MINISTERIE: &str = "Ministerie";
const AERZTE: &str = "Ärzte Verbund";

/// A case with a history: an empty first scan, state changes, a service that stops
/// answering, services a scan did not look at, an interrupted scan, a running one,
/// owners in four organisations (two spellings of one sector, one sector beyond ASCII),
/// a service nobody owns, campaigns (one cancelled) and a non-JSON record.
fn build_case(path: &str) -> (Store, Case) {
    let mut store = Store::open(path).unwrap();
    let contact = |email: &str| Contact {
        email: email.into(),
        role: ContactRole::Security,
        language: Some("nl".into()),
        name: Some("SOC".into()),
        source: ContactSource::Manual,
    };
    let org = |name: &str, sector: &str, networks: &[&str]| Organisation {
        name: name.into(),
        sector: Some(sector.into()),
        networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
        ..Organisation::default()
    };
    let mut noord = org(NOORD, "Healthcare", &["127.70.0.0/16"]);
    noord.domains = vec!["noord.test".into()];
    noord.contacts = vec![contact("soc@noord.test"), contact("ciso@noord.test")];
    noord.notes = Some("call before 17:00".into());
    store
        .upsert_organisations(&[
            noord,
            org(ZUID, "healthcare", &["127.71.0.0/16"]),
            org(MINISTERIE, "Government", &["2001:db8::/32"]),
            org(AERZTE, "ÄRZTE", &["127.72.0.0/16"]),
        ])
        .unwrap();
    let orgs: BTreeMap<&'static str, i64> = store
        .organisations()
        .unwrap()
        .into_iter()
        .map(|o| {
            let name = [NOORD, ZUID, MINISTERIE, AERZTE]
                .into_iter()
                .find(|n| *n == o.organisation.name)
                .unwrap();
            (name, o.id)
        })
        .collect();

    let mut scans = Vec::new();
    // 0: nothing answered (nothing is stored, and no CVE is known yet).
    scans.push(scan(
        &mut store,
        1,
        &[silent("127.70.9.9", Status::Closed)],
        End::Finished,
    ));
    // 1: the first sweep.
    let mut a = open("127.70.0.1", &[(CITRIX, Vulnerable), (GATEWAY, Vulnerable)]);
    a.cert = Some('a');
    scans.push(scan(
        &mut store,
        2,
        &[
            a,
            open("127.70.0.2", &[(CITRIX, Vulnerable)]),
            vpn(Mitigated),
            open("127.71.0.9", &[(CITRIX, Vulnerable)]),
            open("2001:db8::1", &[(CITRIX, Vulnerable)]),
            open("2001:db8:0:1::5", &[(CITRIX, Patched)]),
            open("2001:db8:8000::7", &[(CITRIX, Unknown)]),
            open("127.72.3.4", &[(CITRIX, Vulnerable)]),
        ],
        End::Finished,
    ));
    // 2: A patched (with a new certificate), B stops answering, E mitigated, I new; F, G,
    // H not looked at.
    let mut a = open("127.70.0.1", &[(CITRIX, Patched), (GATEWAY, Vulnerable)]);
    a.cert = Some('b');
    scans.push(scan(
        &mut store,
        3,
        &[
            a,
            silent("127.70.0.2", Status::Closed),
            vpn(Mitigated),
            open("127.71.0.9", &[(CITRIX, Vulnerable)]),
            open("2001:db8::1", &[(CITRIX, Mitigated)]),
            open("127.70.0.3", &[(CITRIX, Vulnerable)]),
        ],
        End::Finished,
    ));
    // Owners: G belongs to nobody.
    let services: BTreeMap<String, i64> = {
        let mut all = Vec::new();
        store.services_to_attribute(|s| all.push(s)).unwrap();
        all.into_iter().map(|s| (s.ip, s.service_id)).collect()
    };
    let owner = |ip: &str| -> Option<i64> {
        match ip {
            "127.70.0.1" | "127.70.0.2" | "127.70.1.5" | "127.70.0.3" => Some(orgs[NOORD]),
            "127.71.0.9" => Some(orgs[ZUID]),
            "2001:db8::1" | "2001:db8:0:1::5" => Some(orgs[MINISTERIE]),
            "127.72.3.4" => Some(orgs[AERZTE]),
            _ => None,
        }
    };
    let attributions: Vec<AttributionRow> = services
        .iter()
        .map(|(ip, &service_id)| AttributionRow {
            service_id,
            organisation_id: owner(ip),
            method: if owner(ip).is_some() {
                "network"
            } else {
                "none"
            }
            .into(),
            ..AttributionRow::default()
        })
        .collect();
    store.write_attributions(&attributions).unwrap();

    // A campaign tells Noord's and Zuid's open findings; the message to Noord is sent.
    let findings = store
        .hosts(&FindingFilter::default(), Page::default())
        .unwrap()
        .items;
    let told = |org: &str| -> Vec<(i64, String)> {
        findings
            .iter()
            .filter(|f| f.organisation_id == Some(orgs[org]) && report::is_open(&f.state))
            .map(|f| (f.finding_id, f.state.clone()))
            .collect()
    };
    let message = |ticket: &str, org: &str| NewMessage {
        ticket: ticket.into(),
        content: MailContent {
            mail_from: "cert@cert.test".into(),
            recipients: vec![format!("soc@{}.test", org.len())],
            subject: format!("[{ticket}] NetScaler"),
            message_id: format!("<{ticket}@cert.test>"),
            bytes: b"Subject: test\r\n\r\nbody".to_vec(),
        },
        organisation_id: Some(orgs[org]),
        recipient_name: org.into(),
        language: "nl".into(),
        round: 1,
        findings: told(org),
    };
    let new_campaign = |name: &str| NewCampaign {
        name: name.into(),
        cve: CITRIX.into(),
        tlp: "amber".into(),
        language: "nl".into(),
        params: serde_json::json!({}),
        summary: serde_json::json!({
            "counts": {"queued": 2},
            "decisions": [{"finding_id": 1, "outcome": "queued"}],
            "unusable_contacts": [],
        }),
        not_notified_since: timestamp(time::OffsetDateTime::now_utc()),
    };
    let tickets = store.reserve_tickets("T", 3).unwrap();
    let campaign = store
        .create_campaign(
            &new_campaign("first round"),
            &[message(&tickets[0], NOORD), message(&tickets[1], ZUID)],
        )
        .unwrap()
        .campaign_id;
    let now = time::OffsetDateTime::now_utc();
    let t = |secs: i64| timestamp(now + time::Duration::seconds(secs));
    let due = store.due_messages(&t(1), &t(-600), 10).unwrap();
    let noord_message = due.iter().find(|m| m.ticket == tickets[0]).unwrap();
    let claimed = store
        .claim_message(noord_message.id, &t(1), &t(-600))
        .unwrap()
        .unwrap();
    assert!(store.message_sent(&claimed, "250 OK", &t(2)).unwrap());
    // A second campaign to the Ärzte, cancelled: its findings count as not told.
    let cancelled_campaign = store
        .create_campaign(&new_campaign("cancelled"), &[message(&tickets[2], AERZTE)])
        .unwrap()
        .campaign_id;
    assert_eq!(
        store
            .cancel_messages(std::slice::from_ref(&tickets[2]))
            .unwrap(),
        1
    );

    // 3: interrupted: A regresses, D is patched.
    scans.push(scan(
        &mut store,
        4,
        &[
            open("127.70.0.1", &[(CITRIX, Vulnerable), (GATEWAY, Patched)]),
            open("127.71.0.9", &[(CITRIX, Patched)]),
        ],
        End::Interrupted,
    ));

    // 4: B answers again, E regresses, H is patched, C is patched; F, G, I not looked at.
    scans.push(scan(
        &mut store,
        5,
        &[
            open("127.70.0.1", &[(CITRIX, Vulnerable), (GATEWAY, Vulnerable)]),
            open("127.70.0.2", &[(CITRIX, Vulnerable)]),
            vpn(Patched),
            silent("127.71.0.9", Status::Filtered),
            open("2001:db8::1", &[(CITRIX, Vulnerable)]),
            open("127.72.3.4", &[(CITRIX, Patched)]),
        ],
        End::Finished,
    ));
    // 5: running: B stops answering again, D answers vulnerable, I mitigated, and twenty
    // web servers that are no NetScaler answer (more observations than services with
    // findings: the trend reads the services' side).
    let mut running = vec![
        silent("127.70.0.2", Status::Filtered),
        open("127.71.0.9", &[(CITRIX, Vulnerable)]),
        open("127.70.0.3", &[(CITRIX, Mitigated)]),
    ];
    running.extend((1..=20).map(|i| open(&format!("127.73.0.{i}"), &[])));
    scans.push(scan(&mut store, 6, &running, End::Running));
    (
        store,
        Case {
            scans,
            orgs,
            services,
            campaign,
            cancelled_campaign,
        },
    )
}

/// Every finding, in list order.
fn everything(store: &Store) -> Vec<HostRow> {
    let all = store
        .hosts(
            &FindingFilter::default(),
            Page {
                offset: 0,
                limit: MAX_PAGE,
            },
        )
        .unwrap();
    assert_eq!(all.total as usize, all.items.len());
    all.items
}

/// The (campaign, finding) pairs of every message not cancelled, read plainly.
fn told_by_campaigns(store: &Store) -> std::collections::BTreeSet<(i64, i64)> {
    let mut told = std::collections::BTreeSet::new();
    for r in store
        .db
        .query(
            "SELECT m.campaign_id, m.state, n.finding_id FROM messages m JOIN notifications n ON n.message_id = m.id",
            vals![],
        )
        .unwrap()
    {
        if r.text(1).unwrap() != "cancelled" {
            told.insert((r.int(0).unwrap(), r.int(2).unwrap()));
        }
    }
    told
}

/// The filter evaluated plainly on one row: what the store's SQL must agree with.
/// `told`: which campaign told which finding ([`told_by_campaigns`]).
fn matches(
    filter: &FindingFilter,
    row: &HostRow,
    told: &std::collections::BTreeSet<(i64, i64)>,
) -> bool {
    let text = |t: &Option<String>| t.clone().filter(|t| !t.trim().is_empty());
    text(&filter.cve).is_none_or(|c| c.eq_ignore_ascii_case(&row.cve))
        && text(&filter.state).is_none_or(|s| match s.to_ascii_lowercase().as_str() {
            "open" => report::is_open(&row.state),
            s => s == row.state,
        })
        && filter
            .organisation
            .is_none_or(|o| row.organisation_id == Some(o))
        && text(&filter.sector).is_none_or(|s| {
            row.sector
                .as_deref()
                .is_some_and(|r| same_name(r) == same_name(&s))
        })
        && filter.network.is_none_or(|n| {
            row.ip
                .parse::<IpAddr>()
                .is_ok_and(|address| n.contains(&address))
        })
        && text(&filter.seen_since).is_none_or(|s| row.last_seen >= s)
        && text(&filter.seen_until).is_none_or(|u| row.last_seen < u)
        && filter
            .campaign
            .is_none_or(|c| told.contains(&(c, row.finding_id)))
}

#[test]
fn filters_agree_with_a_plain_evaluation_of_every_row() {
    on_each_backend("filters", filters_agree);
}

fn filters_agree(path: &str) {
    let (store, case) = build_case(path);
    let all = everything(&store);
    assert_eq!(all.len(), 10, "nine services, one with two CVEs");
    // The list order: address, port, name, CVE (byte order on both engines).
    let keys: Vec<_> = all
        .iter()
        .map(|r| (r.ip.clone(), r.port, r.hostname.clone(), r.cve.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let net = |n: &str| -> Option<ipnet::IpNet> { Some(n.parse().unwrap()) };
    let text = |t: &str| Some(t.to_string());
    let f = FindingFilter::default;
    let mut filters: Vec<(FindingFilter, Option<Vec<&str>>)> = vec![
        (f(), None),
        (
            FindingFilter {
                cve: text(GATEWAY),
                ..f()
            },
            Some(vec!["127.70.0.1"]),
        ),
        (
            FindingFilter {
                cve: text("cve-2019-19781"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                cve: text("  "),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                state: text("vulnerable"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                state: text("OPEN"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                state: text("patched"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                state: text("unknown"),
                ..f()
            },
            Some(vec!["2001:db8:8000::7"]),
        ),
        (
            FindingFilter {
                organisation: Some(case.orgs[ZUID]),
                ..f()
            },
            Some(vec!["127.71.0.9"]),
        ),
        (
            FindingFilter {
                organisation: Some(-5),
                ..f()
            },
            Some(vec![]),
        ),
        // Two spellings of one sector; a sector beyond ASCII; a sector nobody has.
        (
            FindingFilter {
                sector: text("HEALTHCARE"),
                ..f()
            },
            Some(vec![
                "127.70.0.1",
                "127.70.0.1",
                "127.70.0.2",
                "127.70.0.3",
                "127.70.1.5",
                "127.71.0.9",
            ]),
        ),
        (
            FindingFilter {
                sector: text("ärzte"),
                ..f()
            },
            Some(vec!["127.72.3.4"]),
        ),
        (
            FindingFilter {
                sector: text("energy"),
                ..f()
            },
            Some(vec![]),
        ),
    ];
    // Networks of every kind of prefix length, both families.
    let networks: Vec<(&str, Option<Vec<&str>>)> = vec![
        ("127.70.0.0/16", None),
        ("127.70.0.0/23", None),
        ("127.70.0.2/31", Some(vec!["127.70.0.2", "127.70.0.3"])),
        ("127.70.0.1/32", Some(vec!["127.70.0.1", "127.70.0.1"])),
        ("127.70.1.0/25", Some(vec!["127.70.1.5"])),
        ("127.64.0.0/10", None),
        ("127.71.0.0/17", Some(vec!["127.71.0.9"])),
        ("0.0.0.0/0", None),
        (
            "2001:db8::/33",
            Some(vec!["2001:db8:0:1::5", "2001:db8::1"]),
        ),
        ("2001:db8::/32", None),
        (
            "2001:db8:0:1::/63",
            Some(vec!["2001:db8:0:1::5", "2001:db8::1"]),
        ),
        ("2001:db8:0:1::/65", Some(vec!["2001:db8:0:1::5"])),
        ("2001:db8::1/128", Some(vec!["2001:db8::1"])),
        ("2001:db8:8000::/17", None),
        (
            "::/0",
            Some(vec!["2001:db8:0:1::5", "2001:db8:8000::7", "2001:db8::1"]),
        ),
        ("::ffff:127.70.0.0/112", Some(vec![])),
    ];
    filters.extend(networks.into_iter().map(|(network, ips)| {
        (
            FindingFilter {
                network: net(network),
                ..f()
            },
            ips,
        )
    }));
    filters.extend([
        (
            FindingFilter {
                seen_since: text("2026-01-05T08:00:00Z"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                seen_until: text("2026-01-03T08:00:00Z"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                seen_since: text("2026-01-03T00:00:00Z"),
                seen_until: text("2026-01-05T08:00:00Z"),
                ..f()
            },
            None,
        ),
        // Combinations.
        (
            FindingFilter {
                cve: text(CITRIX),
                state: text("open"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                organisation: Some(case.orgs[NOORD]),
                state: text("open"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                sector: text("healthcare"),
                network: net("127.70.0.0/24"),
                state: text("vulnerable"),
                ..f()
            },
            None,
        ),
        (
            FindingFilter {
                cve: text(CITRIX),
                state: text("open"),
                organisation: Some(case.orgs[MINISTERIE]),
                sector: text("government"),
                network: net("2001:db8::/48"),
                seen_since: text("2026-01-02T00:00:00Z"),
                seen_until: text("2027-01-01T00:00:00Z"),
                campaign: None,
            },
            Some(vec!["2001:db8::1"]),
        ),
        // Told by a campaign: Noord's and Zuid's findings open when it was made (A's
        // CVE-2019-19781 was patched by then); a cancelled message told nobody.
        (
            FindingFilter {
                campaign: Some(case.campaign),
                ..f()
            },
            Some(vec![
                "127.70.0.1",
                "127.70.0.2",
                "127.70.0.3",
                "127.70.1.5",
                "127.71.0.9",
            ]),
        ),
        (
            FindingFilter {
                campaign: Some(case.campaign),
                state: text("open"),
                ..f()
            },
            Some(vec!["127.70.0.1", "127.70.0.2", "127.70.0.3", "127.71.0.9"]),
        ),
        (
            FindingFilter {
                campaign: Some(case.campaign),
                organisation: Some(case.orgs[ZUID]),
                ..f()
            },
            Some(vec!["127.71.0.9"]),
        ),
        (
            FindingFilter {
                campaign: Some(case.cancelled_campaign),
                ..f()
            },
            Some(vec![]),
        ),
        (
            FindingFilter {
                campaign: Some(9_999),
                ..f()
            },
            Some(vec![]),
        ),
    ]);
    let told = told_by_campaigns(&store);
    for (filter, expected_ips) in &filters {
        let expected: Vec<i64> = all
            .iter()
            .filter(|r| matches(filter, r, &told))
            .map(|r| r.finding_id)
            .collect();
        let got = store
            .hosts(
                filter,
                Page {
                    offset: 0,
                    limit: MAX_PAGE,
                },
            )
            .unwrap();
        let got_ids: Vec<i64> = got.items.iter().map(|r| r.finding_id).collect();
        assert_eq!(got_ids, expected, "{filter:?}");
        assert_eq!(got.total, expected.len() as u64, "{filter:?}");
        if let Some(ips) = expected_ips {
            let got_ips: Vec<&str> = got.items.iter().map(|r| r.ip.as_str()).collect();
            assert_eq!(&got_ips, ips, "{filter:?}");
        }
        // The streamed list is the same list.
        let mut streamed = Vec::new();
        let visited = store
            .each_host(filter, |row| {
                streamed.push(row.finding_id);
                Ok(())
            })
            .unwrap();
        assert_eq!(
            (visited as usize, &streamed),
            (expected.len(), &expected),
            "{filter:?}"
        );
        // And a page of one, from the middle, counts them all.
        if expected.len() > 1 {
            let one = store
                .hosts(
                    filter,
                    Page {
                        offset: 1,
                        limit: 1,
                    },
                )
                .unwrap();
            assert_eq!(one.total, expected.len() as u64, "{filter:?}");
            assert_eq!(
                one.items.iter().map(|r| r.finding_id).collect::<Vec<_>>(),
                vec![expected[1]],
                "{filter:?}"
            );
        }
    }

    // Rows carry their owner and when they were last told.
    let a = all
        .iter()
        .find(|r| r.ip == "127.70.0.1" && r.cve == GATEWAY)
        .unwrap();
    assert_eq!(
        (a.organisation.as_deref(), a.sector.as_deref()),
        (Some(NOORD), Some("Healthcare"))
    );
    assert!(a.last_notified.is_some(), "the message to Noord was sent");
    let d = all.iter().find(|r| r.ip == "127.71.0.9").unwrap();
    assert_eq!(d.last_notified, None, "queued, not sent");
    let g = all.iter().find(|r| r.ip == "2001:db8:8000::7").unwrap();
    assert_eq!((g.organisation_id, g.state.as_str()), (None, "unknown"));
    let c = all.iter().find(|r| r.ip == "127.70.1.5").unwrap();
    assert_eq!(
        (c.port, c.hostname.as_str(), c.state.as_str()),
        (8443, "vpn.noord.test", "patched")
    );
}

#[test]
fn pages_count_everything_and_are_capped() {
    on_each_backend("pages", pages_count_everything);
}

fn pages_count_everything(path: &str) {
    let mut store = Store::open(path).unwrap();
    // 1,100 services in 127.90.0.0/16 and 40 in an IPv6 /64, a third of each patched.
    let v4: Vec<String> = (0..1100u32)
        .map(|i| std::net::Ipv4Addr::from(0x7f5a_0000 + i).to_string())
        .collect();
    let v6: Vec<String> = (0..40u16)
        .map(|i| std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, i + 1).to_string())
        .collect();
    let id = store.begin_scan(&ScanInfo::default()).unwrap();
    let records: Vec<ServiceRecord> = v4
        .iter()
        .chain(&v6)
        .enumerate()
        .map(|(i, ip)| {
            let verdict = if i % 3 == 0 { Patched } else { Vulnerable };
            record(&open(ip, &[(CITRIX, verdict)]), "2026-01-01T00:00:00Z")
        })
        .collect();
    store.write_batch(id, &records).unwrap();
    store.finish_scan(id, false, "{}").unwrap();

    let everything = FindingFilter::default();
    let page_of_all = |offset, limit| store.hosts(&everything, Page { offset, limit }).unwrap();
    let huge = page_of_all(0, 5000);
    assert_eq!(
        (huge.total, huge.limit, huge.items.len()),
        (1140, MAX_PAGE, 1000)
    );
    let rest = page_of_all(1000, 5000);
    assert_eq!((rest.total, rest.items.len()), (1140, 140));
    let beyond = page_of_all(5000, 10);
    assert_eq!((beyond.total, beyond.items.len()), (1140, 0));
    let none = page_of_all(0, 0);
    assert_eq!((none.total, none.items.len()), (1140, 0));

    // Pages of 100 put together are the streamed list, for SQL paging and network paging.
    for filter in [
        FindingFilter {
            state: Some("vulnerable".into()),
            ..FindingFilter::default()
        },
        FindingFilter {
            network: Some("127.90.0.0/21".parse().unwrap()),
            state: Some("open".into()),
            ..FindingFilter::default()
        },
        FindingFilter {
            network: Some("2001:db8:7::/63".parse().unwrap()),
            ..FindingFilter::default()
        },
    ] {
        let mut streamed = Vec::new();
        store
            .each_host(&filter, |row| {
                streamed.push(row.finding_id);
                Ok(())
            })
            .unwrap();
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let page = store.hosts(&filter, Page { offset, limit: 100 }).unwrap();
            assert_eq!(page.total as usize, streamed.len(), "{filter:?}");
            if page.items.is_empty() {
                break;
            }
            paged.extend(page.items.iter().map(|r| r.finding_id));
            offset += 100;
        }
        assert_eq!(paged, streamed, "{filter:?}");
    }
    let open_v4 = store
        .hosts(
            &FindingFilter {
                network: Some("127.90.0.0/21".parse().unwrap()),
                state: Some("open".into()),
                ..FindingFilter::default()
            },
            Page::default(),
        )
        .unwrap();
    assert_eq!(open_v4.total, 1100 - 367, "a third of 1,100 is patched");
    let v6_only = store
        .hosts(
            &FindingFilter {
                network: Some("2001:db8:7::/63".parse().unwrap()),
                ..FindingFilter::default()
            },
            Page::default(),
        )
        .unwrap();
    assert_eq!(v6_only.total, 40);

    // An organisation owning the 1,100 IPv4 services: its page holds the first 1,000 of
    // its findings and of their history, and says how many there are.
    store
        .upsert_organisations(&[Organisation {
            name: "Big ISP".into(),
            networks: vec!["127.90.0.0/16".parse().unwrap()],
            ..Organisation::default()
        }])
        .unwrap();
    let isp = store.organisations().unwrap()[0].id;
    let mut services = Vec::new();
    store.services_to_attribute(|s| services.push(s)).unwrap();
    let attributions: Vec<AttributionRow> = services
        .iter()
        .filter(|s| s.ip.starts_with("127.90."))
        .map(|s| AttributionRow {
            service_id: s.service_id,
            organisation_id: Some(isp),
            method: "network".into(),
            ..AttributionRow::default()
        })
        .collect();
    assert_eq!(attributions.len(), 1100);
    store.write_attributions(&attributions).unwrap();
    let page = store.organisation_detail(isp).unwrap().unwrap();
    assert_eq!((page.hosts.len(), page.hosts_total), (1000, 1100));
    assert_eq!(
        page.hosts,
        page_of_all(0, 1000).items,
        "the first by address"
    );
    assert_eq!((page.history.len(), page.history_total), (1000, 1100));
    assert_eq!((page.messages.len(), page.messages_total), (0, 0));

    // A visitor's error stops the walk and comes back.
    let mut seen = 0;
    let stopped = store.each_host(&everything, |_| {
        seen += 1;
        if seen == 3 {
            return Err(StoreError::Operation {
                location: "test".into(),
                detail: "enough".into(),
            });
        }
        Ok(())
    });
    assert!(stopped.is_err());
    assert_eq!(seen, 3);
}

/// A trend point as numbers (scan, started, vulnerable, mitigated, patched, unknown,
/// unreachable, not rescanned).
fn numbers(p: &TrendPoint) -> (i64, String, [u64; 6]) {
    (
        p.scan,
        p.started_at.clone(),
        [
            p.vulnerable,
            p.mitigated,
            p.patched,
            p.unknown,
            p.unreachable,
            p.not_rescanned,
        ],
    )
}

/// A trend as numbers per CVE.
type Curves = BTreeMap<String, Vec<(i64, String, [u64; 6])>>;

fn curves(trend: &BTreeMap<String, Vec<TrendPoint>>) -> Curves {
    trend
        .iter()
        .map(|(cve, points)| (cve.clone(), points.iter().map(numbers).collect()))
        .collect()
}

/// The curves of `trend` with only the points of the scans `shown` keeps.
fn curves_of(trend: &BTreeMap<String, Vec<TrendPoint>>, shown: impl Fn(i64) -> bool) -> Curves {
    curves(trend)
        .into_iter()
        .map(|(cve, points)| {
            let points = points
                .into_iter()
                .filter(|(scan, _, _)| shown(*scan))
                .collect();
            (cve, points)
        })
        .collect()
}

/// The numbers kept in `trend_points` for `scan`, by CVE (the "nothing" row included).
fn kept_numbers(store: &Store, scan: i64) -> BTreeMap<String, [u64; 6]> {
    store
        .db
        .query(
            "SELECT cve, vulnerable, mitigated, patched, unknown, unreachable, not_rescanned FROM trend_points WHERE scan_id = ?1",
            vals![scan],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let n = |i| r.int(i).unwrap() as u64;
            (r.text(0).unwrap(), [n(1), n(2), n(3), n(4), n(5), n(6)])
        })
        .collect()
}

/// The numbers of `scan` in `trend`, by CVE.
fn numbers_of_scan(
    trend: &BTreeMap<String, Vec<TrendPoint>>,
    scan: i64,
) -> BTreeMap<String, [u64; 6]> {
    trend
        .iter()
        .filter_map(|(cve, points)| {
            points
                .iter()
                .find(|p| p.scan == scan)
                .map(|p| (cve.clone(), numbers(p).2))
        })
        .collect()
}

#[test]
fn the_overview_counts_the_case_and_its_trend_equals_the_full_computation() {
    on_each_backend("overview", overview_and_trend);
}

fn overview_and_trend(path: &str) {
    let (mut store, case) = build_case(path);
    let overview = store.overview().unwrap();
    let all = everything(&store);
    let open = all.iter().filter(|r| report::is_open(&r.state)).count() as u64;
    assert_eq!(
        overview.totals,
        Totals {
            services: 29,
            findings: 10,
            open,
            organisations: 4,
            // Noord (A, B, I), Zuid (D), Ministerie (E); the Ärzte' one is patched.
            organisations_open: 3,
            scans: 6,
            messages_sent: 1,
            messages_waiting: 1,
            triage_reports: 0,
        }
    );
    assert_eq!(
        overview
            .counts
            .iter()
            .map(|c| (c.cve.as_str(), c.state.as_str(), c.count as i64))
            .collect::<Vec<_>>(),
        store
            .finding_counts()
            .unwrap()
            .iter()
            .map(|(c, s, n)| (c.as_str(), s.as_str(), *n))
            .collect::<Vec<_>>()
    );
    // Newest first by first seen: I (day 3) before everything of day 2.
    assert_eq!(overview.newest.len(), 10);
    assert_eq!(overview.newest[0].ip, "127.70.0.3");
    assert!(
        overview
            .newest
            .windows(2)
            .all(|w| w[0].first_seen >= w[1].first_seen)
    );

    // The trend: the full computation's points of the finished scans; the running scan
    // (the last) has none, nor has the interrupted one.
    let full = report::trend(&store).unwrap();
    let shown: Vec<i64> = [1, 2, 4].iter().map(|&i| case.scans[i]).collect();
    assert!(
        full[CITRIX].iter().any(|p| p.scan == case.scans[5]),
        "the full computation counts the running scan"
    );
    let expected = curves_of(&full, |scan| shown.contains(&scan));
    assert_eq!(curves(&overview.trend), expected);
    // The case's story, in numbers: open falls, B counts as unreachable, not fixed.
    let citrix: Vec<[u64; 6]> = overview.trend[CITRIX]
        .iter()
        .map(|p| numbers(p).2)
        .collect();
    assert_eq!(
        citrix,
        vec![[5, 1, 1, 1, 0, 0], [2, 2, 1, 0, 1, 1], [3, 0, 2, 0, 0, 1],]
    );
    // Every finished scan has its points kept (the first one a marker of "nothing"), the
    // interrupted and the running one none.
    let kept = |store: &Store, scan: i64| {
        store
            .db
            .query(
                "SELECT cve FROM trend_points WHERE scan_id = ?1 ORDER BY cve",
                vals![scan],
            )
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(kept(&store, case.scans[0]), vec![""]);
    assert_eq!(kept(&store, case.scans[1]), vec![CITRIX, GATEWAY]);
    assert!(kept(&store, case.scans[3]).is_empty());
    assert!(kept(&store, case.scans[5]).is_empty());
    // record_trend gives the full computation's numbers for any scan, the interrupted too.
    for &scan in &case.scans[1..] {
        store.record_trend(scan).unwrap();
        assert_eq!(
            kept_numbers(&store, scan),
            numbers_of_scan(&full, scan),
            "scan {scan}"
        );
    }
    assert!(store.record_trend(9999).is_err(), "no such scan");

    // A store made before the trend was kept: the overview fills it once, equal.
    store
        .db
        .execute("DELETE FROM trend_points", vals![])
        .unwrap();
    if is_postgres_url(path) {
        // A role that may only read: the overview computes what it cannot keep.
        store
            .db
            .batch(
                "DO $$ BEGIN CREATE ROLE wachter_view_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA public TO wachter_view_reader",
            )
            .unwrap();
        let reader_url =
            path.replacen("postgres://postgres@", "postgres://wachter_view_reader@", 1);
        assert_ne!(reader_url, path, "the test server's URL names its user");
        let reader = Store::open(&reader_url).unwrap();
        assert_eq!(curves(&reader.overview().unwrap().trend), expected);
        assert!(
            kept(&store, case.scans[2]).is_empty(),
            "nothing was written"
        );
        // Computed once: from now on the reader's overview reads no observation (it may
        // not any more), with a scan running too.
        store
            .db
            .batch("REVOKE SELECT ON observations FROM wachter_view_reader")
            .unwrap();
        assert_eq!(curves(&reader.overview().unwrap().trend), expected);
        assert!(
            reader.scan_detail(case.scans[2]).is_err(),
            "the reader may no longer read observations"
        );
    }
    assert_eq!(curves(&store.overview().unwrap().trend), expected);
    assert_eq!(kept(&store, case.scans[2]), vec![CITRIX, GATEWAY]);
    assert!(
        kept(&store, case.scans[3]).is_empty(),
        "only finished scans are kept"
    );

    // Resuming a finished scan forgets its points until it finishes again.
    store
        .reopen_scan(
            case.scans[4],
            &Checkpoint {
                next: 100,
                done_above: vec![],
            },
        )
        .unwrap();
    assert!(kept(&store, case.scans[4]).is_empty());
    let reopened = store.overview().unwrap();
    assert!(
        reopened.trend[CITRIX]
            .iter()
            .all(|p| p.scan != case.scans[4]),
        "a resumed scan is not the newest running one: not shown"
    );
    store.finish_scan(case.scans[4], false, "{}").unwrap();
    assert_eq!(kept(&store, case.scans[4]), vec![CITRIX, GATEWAY]);
    assert_eq!(curves(&store.overview().unwrap().trend), expected);
}

/// A finding's CVE, state and changes (from, to).
type Story<'a> = (&'a str, &'a str, Vec<(Option<&'a str>, &'a str)>);

#[test]
fn the_host_page_shows_evidence_certificate_history_and_messages() {
    on_each_backend("host", host_page);
}

fn host_page(path: &str) {
    let (store, case) = build_case(path);
    let a = case.services["127.70.0.1"];
    // The oldest observation's record is damaged: the page still shows it, as text.
    store
        .db
        .execute(
            "UPDATE observations SET record = ?1 WHERE id = (SELECT MIN(id) FROM observations WHERE service_id = ?2)",
            vals!["{not json <script>", a],
        )
        .unwrap();
    let host = store.host(a).unwrap().unwrap();
    assert_eq!(
        (host.ip.as_str(), host.port, host.hostname.as_str()),
        ("127.70.0.1", 443, "")
    );
    assert_eq!(
        (
            host.organisation.as_deref(),
            host.attribution.as_deref(),
            host.sector.as_deref()
        ),
        (Some(NOORD), Some("network"), Some("Healthcare"))
    );
    // Findings by CVE, each with its history oldest first.
    let findings: Vec<Story> = host
        .findings
        .iter()
        .map(|f| {
            (
                f.cve.as_str(),
                f.state.as_str(),
                f.history
                    .iter()
                    .map(|h| (h.from_state.as_deref(), h.to_state.as_str()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        vec![
            (
                CITRIX,
                "vulnerable",
                vec![
                    (None, "vulnerable"),
                    (Some("vulnerable"), "patched"),
                    (Some("patched"), "vulnerable")
                ]
            ),
            (
                GATEWAY,
                "vulnerable",
                vec![
                    (None, "vulnerable"),
                    (Some("vulnerable"), "patched"),
                    (Some("patched"), "vulnerable")
                ]
            ),
        ]
    );
    assert_eq!(host.findings[0].detail, "{\"why\":\"test\"}");
    assert!(
        host.findings[0]
            .history
            .iter()
            .all(|h| h.ip == "127.70.0.1" && h.cve == CITRIX)
    );
    // The newest certificate (the second scan's), with its hostile names kept as they are.
    let cert = host.certificate.unwrap();
    assert_eq!(cert.sha256, "b".repeat(64));
    assert_eq!(cert.subject, "CN=<script>alert(b)</script>");
    assert_eq!(
        cert.sans,
        vec!["b.example.test", "<img src=x onerror=alert(1)>"]
    );
    assert_eq!(cert.not_after.as_deref(), Some("2027-01-01T00:00:00Z"));
    // Observations newest first, the damaged one as a string.
    let scans: Vec<i64> = host.observations.iter().map(|o| o.scan_id).collect();
    assert_eq!(
        scans,
        vec![case.scans[4], case.scans[3], case.scans[2], case.scans[1]]
    );
    assert_eq!(host.observations[0].record["schema"], "wachter.service/1");
    assert_eq!(host.observations[0].status, "open");
    assert_eq!(
        host.observations[3].record,
        serde_json::Value::String("{not json <script>".into())
    );
    // The message that told it.
    assert_eq!(host.messages.len(), 1);
    assert_eq!(
        (
            host.messages[0].state.as_str(),
            host.messages[0].campaign_id
        ),
        ("sent", case.campaign)
    );
    // H's only message was cancelled, but it is still a message about it.
    let h = store.host(case.services["127.72.3.4"]).unwrap().unwrap();
    assert_eq!(
        h.messages
            .iter()
            .map(|m| m.state.as_str())
            .collect::<Vec<_>>(),
        vec!["cancelled"]
    );
    let g = store
        .host(case.services["2001:db8:8000::7"])
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            g.organisation_id,
            g.attribution.as_deref(),
            g.certificate.is_none()
        ),
        (None, Some("none"), true)
    );
    assert!(store.host(-1).unwrap().is_none());
}

#[test]
fn organisations_scans_campaigns_and_triage_reports_read_back() {
    on_each_backend("pages_detail", detail_pages);
}

fn detail_pages(path: &str) {
    let (store, case) = build_case(path);

    // Organisations by name, counted; the sector filter folds case beyond ASCII.
    let orgs = store.organisation_summaries(None).unwrap();
    let names: Vec<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
    // By name as compared (Unicode lower case, so `ä` after `z`).
    assert_eq!(names, vec![ZUID, MINISTERIE, NOORD, AERZTE]);
    let noord = orgs.iter().find(|o| o.name == NOORD).unwrap();
    assert_eq!(
        (
            noord.services,
            noord.vulnerable,
            noord.mitigated,
            noord.patched,
            noord.other
        ),
        (4, 3, 1, 1, 0)
    );
    assert_eq!(
        (
            noord.messages_sent,
            noord.messages_waiting,
            noord.messages_failed
        ),
        (1, 0, 0)
    );
    assert!(noord.last_told.is_some());
    let aerzte = orgs.iter().find(|o| o.name == AERZTE).unwrap();
    assert_eq!((aerzte.patched, aerzte.messages_failed), (1, 1));
    let zuid = orgs.iter().find(|o| o.name == ZUID).unwrap();
    assert_eq!((zuid.vulnerable, zuid.messages_waiting), (1, 1));
    let health: Vec<String> = store
        .organisation_summaries(Some("HEALTHCARE"))
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(health, vec![ZUID, NOORD]);
    assert_eq!(
        store.organisation_summaries(Some("ärzte")).unwrap().len(),
        1
    );

    // Triage reports: kept whole, listed newest first with their organisation.
    let report = serde_json::json!({"verdict": "compromised", "hits": [{"rule": "webshell", "path": "/var/vpn/<x>.php"}]});
    let first = store
        .add_triage_report(&NewTriageReport {
            label: "noord-vpn1.tar.gz".into(),
            organisation_id: Some(case.orgs[NOORD]),
            service_id: Some(case.services["127.70.0.1"]),
            verdict: "compromised".into(),
            hits: 1,
            report: report.clone(),
        })
        .unwrap();
    let second = store
        .add_triage_report(&NewTriageReport {
            label: "unknown.tar".into(),
            organisation_id: None,
            service_id: None,
            verdict: "clean".into(),
            hits: 0,
            report: serde_json::json!({}),
        })
        .unwrap();
    let listed = store.triage_reports().unwrap();
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![second, first]
    );
    assert_eq!(listed[1].organisation.as_deref(), Some(NOORD));
    assert_eq!(
        (listed[1].hits, listed[1].verdict.as_str()),
        (1, "compromised")
    );
    let detail = store.triage_report(first).unwrap().unwrap();
    assert_eq!(detail.report, report);
    assert_eq!(detail.summary, listed[1]);
    assert!(store.triage_report(-1).unwrap().is_none());
    assert_eq!(store.overview().unwrap().totals.triage_reports, 2);

    // The organisation page.
    let page = store
        .organisation_detail(case.orgs[NOORD])
        .unwrap()
        .unwrap();
    assert_eq!(page.summary, *noord);
    assert_eq!(page.networks, vec!["127.70.0.0/16"]);
    assert_eq!(page.domains, vec!["noord.test"]);
    assert_eq!(
        page.contacts
            .iter()
            .map(|c| c.email.as_str())
            .collect::<Vec<_>>(),
        vec!["soc@noord.test", "ciso@noord.test"]
    );
    assert_eq!(page.notes.as_deref(), Some("call before 17:00"));
    assert_eq!(
        page.hosts
            .iter()
            .map(|h| (h.ip.as_str(), h.cve.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("127.70.0.1", CITRIX),
            ("127.70.0.1", GATEWAY),
            ("127.70.0.2", CITRIX),
            ("127.70.0.3", CITRIX),
            ("127.70.1.5", CITRIX),
        ]
    );
    assert!(
        page.history
            .windows(2)
            .all(|w| w[0].scan_id >= w[1].scan_id),
        "newest first"
    );
    assert_eq!(page.history.len(), 11);
    assert_eq!(page.history[0].scan_id, case.scans[5]);
    assert_eq!(
        (page.hosts_total, page.history_total, page.messages_total),
        (5, 11, 1),
        "nothing capped: the totals are the lengths"
    );
    assert_eq!(page.messages.len(), 1);
    assert_eq!(page.messages[0].findings, 4);
    assert_eq!(page.messages[0].recipients.len(), 1);
    assert_eq!(
        page.triage_reports.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![first]
    );
    assert!(store.organisation_detail(-1).unwrap().is_none());

    // Scans newest first; the running one counts its observations live.
    let scans = store.scan_summaries().unwrap();
    assert_eq!(
        scans.iter().map(|s| s.id).rev().collect::<Vec<_>>(),
        case.scans
    );
    let states: Vec<(&str, u64)> = scans
        .iter()
        .map(|s| (s.state.as_str(), s.observations))
        .collect();
    assert_eq!(
        states,
        vec![
            ("running", 23),
            ("finished", 6),
            ("interrupted", 2),
            ("finished", 6),
            ("finished", 8),
            ("finished", 0)
        ]
    );
    assert_eq!(
        (scans[0].ports.as_str(), scans[0].check.as_str()),
        ("443,8443", "netscaler")
    );

    let second_sweep = store.scan_detail(case.scans[2]).unwrap().unwrap();
    assert_eq!(second_sweep.previous, Some(case.scans[1]));
    assert_eq!(second_sweep.seed, 3);
    assert_eq!(second_sweep.params["day"], 3);
    assert_eq!(
        second_sweep.summary,
        Some(serde_json::json!({"summary": true}))
    );
    assert_eq!(second_sweep.checkpoint.as_ref().unwrap()["next"], 6);
    assert_eq!(
        second_sweep.statuses,
        BTreeMap::from([("closed".to_string(), 1), ("open".to_string(), 5)])
    );
    let diff = second_sweep.diff.unwrap();
    let full = report::diff(&store, case.scans[1], case.scans[2], None).unwrap();
    assert_eq!(diff.counts, full.counts);
    assert_eq!(diff.entries.len(), full.entries.len());
    assert_eq!(second_sweep.diff_entries, full.entries.len() as u64);
    assert!(second_sweep.diff_entries > 0);
    assert_eq!(diff.counts[CITRIX][&report::Change::Unreachable], 1);
    let running = store.scan_detail(case.scans[5]).unwrap().unwrap();
    assert_eq!(
        (
            running.scan.state.as_str(),
            running.scan.observations,
            running.summary
        ),
        ("running", 23, None)
    );
    assert_eq!(
        running.statuses,
        BTreeMap::from([("filtered".to_string(), 1), ("open".to_string(), 22)])
    );
    // While it runs the page polls it: no diff (it has a previous scan all the same).
    assert_eq!(running.previous, Some(case.scans[4]));
    assert!(running.diff.is_none());
    assert_eq!(running.diff_entries, 0);
    let first_scan = store.scan_detail(case.scans[0]).unwrap().unwrap();
    assert!(first_scan.previous.is_none() && first_scan.diff.is_none());
    assert!(store.scan_detail(-1).unwrap().is_none());

    // Campaigns: who was told, who is still open (a cancelled message told nobody).
    let campaigns = store.campaign_summaries().unwrap();
    assert_eq!(
        campaigns.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![case.cancelled_campaign, case.campaign]
    );
    let first = &campaigns[1];
    assert_eq!(
        first.messages,
        BTreeMap::from([("queued".to_string(), 1), ("sent".to_string(), 1)])
    );
    // Told (open when the campaign was made): A's CVE-2023-3519, B, C and I of Noord, D
    // of Zuid. Since then C was patched; D was patched and regressed.
    assert_eq!(first.findings_told, 5);
    let still_open = vec![
        ("127.70.0.1", GATEWAY),
        ("127.70.0.2", CITRIX),
        ("127.70.0.3", CITRIX),
        ("127.71.0.9", CITRIX),
    ];
    assert_eq!(first.still_open, still_open.len() as u64);
    let cancelled = &campaigns[0];
    assert_eq!(
        (cancelled.findings_told, cancelled.still_open),
        (0, 0),
        "a cancelled message told nothing"
    );
    assert_eq!(
        cancelled.messages,
        BTreeMap::from([("cancelled".to_string(), 1)])
    );
    let detail = store.campaign_detail(case.campaign).unwrap().unwrap();
    assert_eq!(detail.summary, *first);
    assert_eq!(
        detail.decisions,
        serde_json::json!([{"finding_id": 1, "outcome": "queued"}])
    );
    assert_eq!(
        detail
            .messages
            .iter()
            .map(|m| m.recipient_name.as_str())
            .collect::<Vec<_>>(),
        vec![NOORD, ZUID]
    );
    assert_eq!(
        detail
            .still_open
            .iter()
            .map(|r| (r.ip.as_str(), r.cve.as_str()))
            .collect::<Vec<_>>(),
        still_open
    );
    assert_eq!(detail.still_open_total, still_open.len() as u64);
    assert!(store.campaign_detail(-1).unwrap().is_none());

    // The small lookups: a ticket's campaign, a campaign's messages.
    let messages = store.campaign_messages(case.campaign).unwrap().unwrap();
    assert_eq!(messages, detail.messages);
    assert_eq!(
        store
            .campaign_messages(case.cancelled_campaign)
            .unwrap()
            .unwrap()[0]
            .state,
        "cancelled"
    );
    assert!(store.campaign_messages(9_999).unwrap().is_none());
    for m in &messages {
        assert_eq!(
            store.message_campaign(&m.ticket).unwrap(),
            Some(case.campaign)
        );
    }
    assert_eq!(store.message_campaign("T-nothing").unwrap(), None);
}

#[test]
fn the_kept_trend_equals_the_full_computation_over_random_histories() {
    on_each_backend("random_trend", random_trends);
}

/// A small deterministic generator (xorshift), so the histories are the same every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// Histories of every kind (services not looked at, silent, open without a verdict, state
/// changes, a CVE found only later, interrupted scans, an older scan written after a newer
/// one, a running scan): `record_trend` agrees with `report::trend` on every scan (the
/// running one too), and the overview shows the finished scans' points only.
fn random_trends(path: &str) {
    let verdicts = [Vulnerable, Mitigated, Patched, Unknown];
    for seed in [7u64, 1234, 99_991] {
        let path = if is_postgres_url(path) {
            path.to_string()
        } else {
            format!("{path}-{seed}")
        };
        remove_sqlite(&path);
        let mut store = Store::open(&path).unwrap();
        if is_postgres_url(&path) {
            store
                .db
                .batch("TRUNCATE trend_points, finding_history, findings, observations, certificates, attributions, services, scans CASCADE")
                .unwrap();
        }
        let mut dice = Dice(seed);
        let addresses: Vec<String> = (0..40)
            .map(|i| format!("127.74.{}.{}", i / 7, i % 7 + 1))
            .collect();
        let sweep = |dice: &mut Dice| -> Vec<Seen> {
            let mut seen = Vec::new();
            for ip in &addresses {
                match dice.roll(20) {
                    0..5 => {}
                    5..8 => seen.push(silent(
                        ip,
                        [Status::Closed, Status::Filtered][dice.roll(2) as usize],
                    )),
                    8..10 => seen.push(open(ip, &[])),
                    _ => {
                        let mut found = vec![(CITRIX, verdicts[dice.roll(4) as usize])];
                        if dice.roll(3) == 0 {
                            found.push((GATEWAY, verdicts[dice.roll(4) as usize]));
                        }
                        seen.push(open(ip, &found));
                    }
                }
            }
            seen
        };
        let mut ids = Vec::new();
        for day in 1..=9u32 {
            let end = match day {
                9 => End::Running,
                _ if dice.roll(4) == 0 => End::Interrupted,
                _ => End::Finished,
            };
            let seen = sweep(&mut dice);
            if day == 5 {
                // Scans 5 and 6 begin together; 6 is written first, then 5.
                let later_seen = sweep(&mut dice);
                let info = ScanInfo::default();
                let earlier = store.begin_scan(&info).unwrap();
                let later = store.begin_scan(&info).unwrap();
                let records = |seen: &[Seen], day: u32| -> Vec<ServiceRecord> {
                    seen.iter()
                        .map(|s| record(s, &format!("2026-02-{day:02}T00:00:00Z")))
                        .collect()
                };
                store.write_batch(later, &records(&later_seen, 6)).unwrap();
                store.write_batch(earlier, &records(&seen, 5)).unwrap();
                store.finish_scan(later, false, "{}").unwrap();
                store.finish_scan(earlier, false, "{}").unwrap();
                ids.extend([earlier, later]);
                continue;
            }
            ids.push(scan(&mut store, day, &seen, end));
        }
        let full = report::trend(&store).unwrap();
        let running = *ids.last().unwrap();
        let finished: Vec<i64> = store
            .scans()
            .unwrap()
            .into_iter()
            .filter(|s| s.state == "finished")
            .map(|s| s.id)
            .collect();
        let shown = curves(&store.overview().unwrap().trend);
        let expected = curves_of(&full, |scan| finished.contains(&scan));
        assert!(
            !finished.contains(&running) && full.values().flatten().any(|p| p.scan == running),
            "seed {seed}: the running scan has points, and the overview leaves them out"
        );
        assert_eq!(shown, expected, "seed {seed}");
        for &scan in &ids {
            store.record_trend(scan).unwrap();
            let mut stored = kept_numbers(&store, scan);
            stored.remove(NO_CVE);
            assert_eq!(
                stored,
                numbers_of_scan(&full, scan),
                "seed {seed}, scan {scan}"
            );
        }
        let changes: u64 = full
            .values()
            .flatten()
            .map(|p| p.unreachable + p.not_rescanned)
            .sum();
        assert!(
            changes > 0,
            "seed {seed}: the history has services that went dark"
        );
        drop(store);
        if !is_postgres_url(&path) {
            remove_sqlite(&path);
        }
    }
}
