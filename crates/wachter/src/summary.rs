//! The human summary table (and its JSON twin) printed at the end of a scan.

use std::io::{self, Write};

use wachter_core::record::{Protocol, Status};
use wachter_scan::ScanSummary;

pub fn print(out: &mut dyn Write, s: &ScanSummary, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, s).map_err(io::Error::other)?;
        return writeln!(out);
    }
    let secs = s.elapsed_ms as f64 / 1000.0;
    let rate = if secs > 0.0 {
        s.tally.services as f64 / secs
    } else {
        0.0
    };
    writeln!(out)?;
    writeln!(
        out,
        "{} services in {secs:.1} s ({rate:.0}/s) · seed {} · shard {} · ports {}{}",
        s.tally.services,
        s.seed,
        s.shard,
        s.ports,
        if s.interrupted { " · INTERRUPTED" } else { "" }
    )?;
    writeln!(out)?;
    writeln!(out, "  {:<14} {:>10}", "status", "services")?;
    for status in Status::ALL {
        let n = s.tally.count(status);
        if n > 0 || matches!(status, Status::Open | Status::Closed) {
            writeln!(out, "  {:<14} {:>10}", status.as_str(), n)?;
        }
    }
    if !s.tally.by_protocol.is_empty() {
        writeln!(out)?;
        writeln!(out, "  {:<14} {:>10}", "open port", "services")?;
        for protocol in Protocol::ALL {
            if let Some(n) = s.tally.by_protocol.get(&protocol) {
                writeln!(out, "  {:<14} {:>10}", protocol.as_str(), n)?;
            }
        }
    }
    if !s.refused_networks.is_empty() {
        writeln!(out)?;
        writeln!(out, "  not scanned (scope guard):")?;
        for r in s.refused_networks.iter().take(20) {
            writeln!(
                out,
                "    {:<36} {:>16} addresses  {}",
                r.range, r.addresses, r.reason
            )?;
        }
        if s.refused_networks.len() > 20 {
            writeln!(
                out,
                "    … and {} more ranges",
                s.refused_networks.len() - 20
            )?;
        }
    }
    if !s.tally.blocked.is_empty() {
        writeln!(out)?;
        writeln!(out, "  refused targets (scope guard):")?;
        for example in &s.tally.blocked_examples {
            writeln!(out, "    {example}")?;
        }
        let total: u64 = s.tally.blocked.values().sum();
        if total as usize > s.tally.blocked_examples.len() {
            writeln!(out, "    … {total} in all")?;
        }
    }
    if s.unresolved_count > 0 {
        writeln!(out)?;
        writeln!(
            out,
            "  hostnames without an address: {}",
            s.unresolved_count
        )?;
        for u in &s.unresolved {
            writeln!(out, "    {}: {}", u.hostname, u.why)?;
        }
    }
    if s.local_errors > 0 {
        writeln!(out)?;
        writeln!(out, "  local resource errors (retried): {}", s.local_errors)?;
    }
    Ok(())
}
