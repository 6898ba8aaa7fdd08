//! The human summary table (and its JSON twin) printed at the end of a scan.

use std::io::{self, Write};

use wachter_core::assessment::Verdict;
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
    for (check, t) in &s.tally.checks {
        writeln!(out)?;
        let products: Vec<String> = t
            .products
            .iter()
            .map(|(p, n)| format!("{} {n}", serde_plain(p)))
            .collect();
        writeln!(out, "  {check}: {}", products.join(" · "))?;
        if !t.probe_states.is_empty() {
            let states: Vec<String> = t
                .probe_states
                .iter()
                .map(|(p, n)| format!("{} {n}", p.as_str()))
                .collect();
            writeln!(out, "  CVE-2019-19781 probe: {}", states.join(" · "))?;
        }
        if !t.flags.is_empty() {
            let flags: Vec<String> = t.flags.iter().map(|(f, n)| format!("{f} {n}")).collect();
            writeln!(out, "  flags: {}", flags.join(" · "))?;
        }
        writeln!(out)?;
        write!(out, "  {:<16}", "CVE")?;
        for v in Verdict::ALL {
            write!(out, " {:>14}", v.as_str())?;
        }
        writeln!(out)?;
        for (cve, counts) in &t.cves {
            write!(out, "  {cve:<16}")?;
            for v in Verdict::ALL {
                write!(out, " {:>14}", counts.get(&v).copied().unwrap_or(0))?;
            }
            writeln!(out)?;
        }
    }
    if !s.tally.action_first.is_empty() {
        writeln!(out)?;
        writeln!(out, "  needs action first:")?;
        for a in &s.tally.action_first {
            let name = a
                .hostname
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            let build = a
                .build
                .as_deref()
                .map(|b| format!(" {b}"))
                .unwrap_or_default();
            writeln!(
                out,
                "    {}:{}{name}{build}  {} {}: {}",
                a.ip, a.port, a.cve, a.verdict, a.why
            )?;
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

/// The serde name of a unit enum variant (`not_netscaler`).
pub fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
