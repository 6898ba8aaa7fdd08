//! Where records go, and the tally that becomes the summary.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};

use serde::Serialize;
use wachter_core::assessment::{Basis, ProbeState, Product, Verdict};
use wachter_core::record::{Protocol, ServiceRecord, Status};
use wachter_core::scope::Refusal;

/// A consumer of service records, run on the writer thread.
pub trait RecordSink: Send {
    /// One record; `position` is the target's place in the scan's order (several records
    /// share it when a hostname has several addresses).
    fn write(&mut self, position: u64, record: &ServiceRecord) -> io::Result<()>;
    /// Every target before `checkpoint.next`, and those in `checkpoint.done_above`, are
    /// complete: their records were all written before this call.
    fn checkpoint(&mut self, _checkpoint: &Checkpoint) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()>;
}

/// How far a scan has come, in positions of its order: what a resume may skip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Every position below this is complete.
    pub next: u64,
    /// Complete positions at or above `next` (targets finish out of order; at most about
    /// the concurrency of them).
    pub done_above: Vec<u64>,
}

impl Checkpoint {
    pub fn is_done(&self, position: u64) -> bool {
        position < self.next || self.done_above.binary_search(&position).is_ok()
    }
}

/// Follows completed positions and condenses them into a [`Checkpoint`].
#[derive(Debug, Default)]
pub struct ProgressTracker {
    next: u64,
    above: std::collections::BTreeSet<u64>,
}

impl ProgressTracker {
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Self {
        ProgressTracker {
            next: checkpoint.next,
            above: checkpoint.done_above.iter().copied().collect(),
        }
    }

    pub fn done(&mut self, position: u64) {
        if position < self.next {
            return;
        }
        self.above.insert(position);
        while self.above.remove(&self.next) {
            self.next += 1;
        }
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            next: self.next,
            done_above: self.above.iter().copied().collect(),
        }
    }
}

/// JSON Lines: one record per line, flushed at the end (and by the buffer as it fills).
pub struct JsonLines<W: Write + Send> {
    out: BufWriter<W>,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines {
            out: BufWriter::with_capacity(256 * 1024, out),
        }
    }
}

impl<W: Write + Send> RecordSink for JsonLines<W> {
    fn write(&mut self, _position: u64, record: &ServiceRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Sends every record to several sinks (the JSON Lines output and the store). A sink that
/// fails is dropped and its error reported once; the others carry on, so a closed pipe on
/// stdout does not cost the store its records.
pub struct Tee(pub Vec<Box<dyn RecordSink>>);

impl Tee {
    fn each(
        &mut self,
        mut f: impl FnMut(&mut Box<dyn RecordSink>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut first = None;
        self.0.retain_mut(|sink| match f(sink) {
            Ok(()) => true,
            Err(e) => {
                first.get_or_insert(e);
                false
            }
        });
        first.map_or(Ok(()), Err)
    }
}

impl RecordSink for Tee {
    fn write(&mut self, position: u64, record: &ServiceRecord) -> io::Result<()> {
        self.each(|sink| sink.write(position, record))
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        self.each(|sink| sink.checkpoint(checkpoint))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.each(|sink| sink.finish())
    }
}

/// Passes on only the records of open ports.
pub struct OpenOnly(pub Box<dyn RecordSink>);

impl RecordSink for OpenOnly {
    fn write(&mut self, position: u64, record: &ServiceRecord) -> io::Result<()> {
        if record.status == Status::Open {
            self.0.write(position, record)
        } else {
            Ok(())
        }
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        self.0.checkpoint(checkpoint)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

/// Collects records in memory: for tests and for callers that post-process a small scan.
#[derive(Default)]
pub struct Collect(pub std::sync::Arc<std::sync::Mutex<Vec<ServiceRecord>>>);

impl RecordSink for Collect {
    fn write(&mut self, _position: u64, record: &ServiceRecord) -> io::Result<()> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("collector poisoned"))?
            .push(record.clone());
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts per outcome, kept by the writer thread.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Per check pack: products, probe states, verdicts per CVE, flags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, CheckTally>,
    /// The hosts that need action first, most urgent first (bounded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub action_first: Vec<ActionItem>,
    pub services: u64,
    pub by_status: BTreeMap<Status, u64>,
    pub by_protocol: BTreeMap<Protocol, u64>,
    /// Targets refused one by one (hostnames that resolved outside the scope, listed addresses).
    pub blocked: BTreeMap<Refusal, u64>,
    /// The first refused targets, for the summary.
    pub blocked_examples: Vec<String>,
}

/// What one check pack concluded over the whole scan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckTally {
    pub products: BTreeMap<Product, u64>,
    pub probe_states: BTreeMap<ProbeState, u64>,
    /// CVE → verdict → services.
    pub cves: BTreeMap<String, BTreeMap<Verdict, u64>>,
    pub flags: BTreeMap<&'static str, u64>,
}

/// A service that needs action, with the reason.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ActionItem {
    /// Lower is more urgent.
    pub priority: u8,
    pub ip: std::net::IpAddr,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub cve: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    pub why: String,
}

impl Tally {
    pub const EXAMPLES: usize = 20;
    /// How many action items the summary keeps.
    pub const ACTIONS: usize = 25;

    fn add_checks(&mut self, record: &ServiceRecord) {
        for a in &record.checks {
            let t = self.checks.entry(a.check.clone()).or_default();
            *t.products.entry(a.product).or_default() += 1;
            if let Some(p) = &a.probe {
                *t.probe_states.entry(p.state).or_default() += 1;
            }
            for v in &a.cves {
                *t.cves
                    .entry(v.cve.clone())
                    .or_default()
                    .entry(v.verdict)
                    .or_default() += 1;
            }
            for (flag, set) in [
                ("honeypot_suspect", a.flags.honeypot_suspect),
                ("catch_all", a.flags.catch_all),
                ("legacy_tls_only", a.flags.legacy_tls_only),
                ("default_certificate", a.flags.default_certificate),
            ] {
                if set {
                    *t.flags.entry(flag).or_default() += 1;
                }
            }
            // The first CVE that needs action decides the host's place in the list: a live
            // remote probe hit first, then late mitigations, then vulnerable builds.
            let urgent = a.cves.iter().enumerate().filter_map(|(order, v)| {
                let priority = match (v.verdict, v.basis) {
                    (Verdict::Vulnerable, Basis::Probe | Basis::Both) => 0,
                    (Verdict::Mitigated, _) => 1,
                    (Verdict::Vulnerable, _) => 2,
                    _ => return None,
                };
                Some((priority, order, v))
            });
            if let Some((priority, _, v)) = urgent.min_by_key(|(p, order, _)| (*p, *order)) {
                let why = match priority {
                    0 => {
                        "exposed: the safe probe succeeded; mitigate or patch now, then check for compromise"
                    }
                    1 => {
                        "mitigated, not patched: patch, and check for compromise if mitigated late"
                    }
                    _ => "vulnerable build: patch",
                };
                self.action_first.push(ActionItem {
                    priority,
                    ip: record.ip,
                    port: record.port,
                    hostname: record.hostname.clone(),
                    cve: v.cve.clone(),
                    verdict: v.verdict,
                    build: a.build.as_ref().and_then(|b| b.version.clone()),
                    why: why.into(),
                });
                if self.action_first.len() >= 2 * Self::ACTIONS {
                    self.trim_actions();
                }
            }
        }
    }

    /// Keeps the most urgent [`Self::ACTIONS`] items, in a stable order.
    pub fn trim_actions(&mut self) {
        self.action_first
            .sort_by_key(|a| (a.priority, a.ip, a.port));
        self.action_first.truncate(Self::ACTIONS);
    }

    pub fn add(&mut self, record: &ServiceRecord) {
        self.add_checks(record);
        self.services += 1;
        *self.by_status.entry(record.status).or_default() += 1;
        if let Some(protocol) = record.protocol {
            *self.by_protocol.entry(protocol).or_default() += 1;
        }
        if let Some(refusal) = record.blocked_by {
            *self.blocked.entry(refusal).or_default() += 1;
            if self.blocked_examples.len() < Self::EXAMPLES {
                let name = record
                    .hostname
                    .as_deref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                self.blocked_examples
                    .push(format!("{}:{}{name}: {refusal}", record.ip, record.port));
            }
        }
    }

    pub fn count(&self, status: Status) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_advances_only_over_complete_positions() {
        let mut t = ProgressTracker::default();
        for p in [1, 3, 4] {
            t.done(p);
        }
        assert_eq!(
            t.checkpoint(),
            Checkpoint {
                next: 0,
                done_above: vec![1, 3, 4]
            }
        );
        t.done(0);
        assert_eq!(
            t.checkpoint(),
            Checkpoint {
                next: 2,
                done_above: vec![3, 4]
            }
        );
        t.done(2);
        assert_eq!(
            t.checkpoint(),
            Checkpoint {
                next: 5,
                done_above: vec![]
            }
        );
        let resumed = ProgressTracker::from_checkpoint(&Checkpoint {
            next: 5,
            done_above: vec![7],
        });
        let c = resumed.checkpoint();
        assert!(c.is_done(4) && c.is_done(7) && !c.is_done(5) && !c.is_done(6));
    }
}
