//! Ingest benchmark: N synthetic observations through the same path a scan uses
//! (`StoreSink`: batches, services, certificates, observations, findings, checkpoints).
//!
//!     cargo run --release -p wachter-store --example ingest -- 1000000 /tmp/ingest.db
//!     cargo run --release -p wachter-store --example ingest -- 1000000 postgres://…/db
//!
//! Prints observations per second and peak RSS (from /proc) as one JSON line.

use std::time::Instant;

mod support;

use wachter_core::assessment::Verdict;
use wachter_core::record::{Blob, HttpExchange, HttpOutcome, ServiceRecord};
use wachter_scan::output::{Checkpoint, RecordSink};
use wachter_store::{ScanInfo, Store, StoreSink};

fn record(i: u64) -> ServiceRecord {
    let ip = std::net::Ipv4Addr::from(0x7f00_0000u32 + (i as u32 % 0x00ff_ffff));
    let mut r = support::tls_service(i, ip.into(), "2026-11-28T00:00:00Z");
    r.http.push(HttpExchange {
        name: "root".into(),
        request: Blob(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        outcome: HttpOutcome::Response,
        detail: None,
        status: Some(302),
        status_line: Some(Blob(b"HTTP/1.1 302 Found".to_vec())),
        headers: Some(Blob(b"Location: /vpn/index.html".to_vec())),
        body: None,
        body_read: 0,
        body_complete: true,
        connection: 1,
        first_byte_ms: Some(1),
        total_ms: 2,
    });
    // A tenth are NetScalers with a verdict, like a real constituency scan.
    if i.is_multiple_of(10) {
        r.checks.push(support::netscaler(Verdict::Vulnerable));
    }
    r
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = args
        .next()
        .unwrap_or_else(|| "/tmp/wachter-ingest.db".into());
    if !wachter_store::is_postgres_url(&path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let store = Store::open(&path)?;
    let scan = store.begin_scan(&ScanInfo::default())?;
    let mut sink = StoreSink::new(Store::open(&path)?, scan);
    let started = Instant::now();
    for i in 0..n {
        sink.write(i, &record(i))?;
        if i % 1000 == 999 {
            sink.checkpoint(&Checkpoint {
                next: i + 1,
                done_above: Vec::new(),
            })?;
        }
    }
    sink.finish()?;
    let secs = started.elapsed().as_secs_f64();
    let stored = store.observation_count(scan)?;
    let backend = match store.kind() {
        wachter_store::Kind::Sqlite => "sqlite",
        wachter_store::Kind::Postgres => "postgres",
    };
    println!(
        "{{\"backend\":\"{backend}\",\"observations\":{stored},\"seconds\":{secs:.2},\"per_second\":{:.0},\"peak_rss_mb\":{:.1}}}",
        stored as f64 / secs,
        peak_rss_kb() as f64 / 1024.0
    );
    Ok(())
}
