//! Builds the dashboard benchmark's store: `SERVICES` NetScalers scanned `SCANS` times
//! through the path scans use (`StoreSink`), so `SERVICES × SCANS` observations and
//! `SERVICES` findings of CVE-2019-19781 whose states improve scan by scan (the curve goes
//! down), owned by organisations of 1,024 addresses each (attributed by network).
//!
//!     cargo run --release -p wachter-store --example dashboard_store -- /tmp/dash.db 100000 10
//!
//! Prints what it wrote as one JSON line.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

mod support;

use wachter_constituency::org::Organisation;
use wachter_core::assessment::Verdict;
use wachter_core::record::{Blob, HttpExchange, HttpOutcome, ServiceRecord};
use wachter_scan::output::RecordSink;
use wachter_store::{AttributionRow, ScanInfo, Store, StoreSink};

/// Addresses per organisation.
const ORG_SIZE: u32 = 1024;

fn address(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x7f00_0000u32 + i)
}

/// The service's standing at scan `k`: a tenth more are patched each scan, a few mitigate.
fn verdict(i: u32, k: u32) -> Verdict {
    let roll = (u64::from(i).wrapping_mul(2_654_435_761) % 100) as u32;
    if roll < k * 9 {
        Verdict::Patched
    } else if roll < k * 9 + 6 {
        Verdict::Mitigated
    } else {
        Verdict::Vulnerable
    }
}

fn record(i: u32, k: u32, time: &str) -> ServiceRecord {
    let mut r = support::tls_service(u64::from(i), IpAddr::V4(address(i)), time);
    r.http.push(HttpExchange {
        name: "smb_conf".into(),
        request: Blob(b"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        outcome: HttpOutcome::Response,
        detail: None,
        status: Some(200),
        status_line: Some(Blob(b"HTTP/1.1 200 OK".to_vec())),
        headers: Some(Blob(b"Server: Apache\r\nContent-Type: text/plain".to_vec())),
        body: Some(Blob(b"[global]\n\tencrypt passwords = yes\n\tname resolve order = lmhosts wins host bcast\n".to_vec())),
        body_read: 80,
        body_complete: true,
        connection: 1,
        first_byte_ms: Some(1),
        total_ms: 2,
    });
    r.checks.push(support::netscaler(verdict(i, k)));
    r
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/tmp/wachter-dashboard.db".into());
    let services: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let scans: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    if !wachter_store::is_postgres_url(&path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let started = Instant::now();
    let store = Store::open(&path)?;
    for k in 0..scans {
        let scan = store.begin_scan(&ScanInfo {
            ports: "443".into(),
            check: "netscaler".into(),
            scope: "127.0.0.0/8".into(),
            params: "{}".into(),
            ..ScanInfo::default()
        })?;
        let time = format!("2026-01-{:02}T08:00:00Z", k + 1);
        let mut sink = StoreSink::new(Store::open(&path)?, scan);
        for i in 0..services {
            sink.write(u64::from(i), &record(i, k, &time))?;
        }
        sink.finish()?;
        store.finish_scan(scan, false, "{}")?;
    }

    // Organisations, one per 1,024 addresses, and every service attributed by network.
    let orgs: Vec<Organisation> = (0..services.div_ceil(ORG_SIZE))
        .map(|o| Organisation {
            name: format!("Organisation {o:04}"),
            sector: Some(
                if o % 3 == 0 {
                    "healthcare"
                } else {
                    "government"
                }
                .into(),
            ),
            networks: vec![
                format!("{}/22", address(o * ORG_SIZE))
                    .parse()
                    .expect("a /22"),
            ],
            ..Organisation::default()
        })
        .collect();
    store.upsert_organisations(&orgs)?;
    let ids: std::collections::HashMap<String, i64> = store
        .organisations()?
        .into_iter()
        .map(|o| (o.organisation.name.clone(), o.id))
        .collect();
    let mut after = 0;
    loop {
        let page = store.services_page(after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.service_id;
        let rows: Vec<AttributionRow> = page
            .iter()
            .filter_map(|s| {
                let ip: Ipv4Addr = s.ip.parse().ok()?;
                let o = (u32::from(ip) - 0x7f00_0000) / ORG_SIZE;
                Some(AttributionRow {
                    service_id: s.service_id,
                    organisation_id: ids.get(&format!("Organisation {o:04}")).copied(),
                    method: "network".into(),
                    matched: Some(format!("{}/22", address(o * ORG_SIZE))),
                    ..AttributionRow::default()
                })
            })
            .collect();
        store.write_attributions(&rows)?;
    }
    let findings: i64 = store.finding_counts()?.iter().map(|(_, _, n)| n).sum();
    println!(
        "{{\"store\":\"{}\",\"services\":{services},\"scans\":{scans},\"observations\":{},\"findings\":{findings},\"organisations\":{},\"seconds\":{:.1}}}",
        store.location(),
        u64::from(services) * u64::from(scans),
        orgs.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
