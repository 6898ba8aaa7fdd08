//! Where records go, and the tally that becomes the summary.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};

use serde::Serialize;
use wachter_core::record::{Protocol, ServiceRecord, Status};
use wachter_core::scope::Refusal;

/// A consumer of service records, run on the writer thread.
pub trait RecordSink: Send {
    fn write(&mut self, record: &ServiceRecord) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
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
    fn write(&mut self, record: &ServiceRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Passes on only the records of open ports.
pub struct OpenOnly(pub Box<dyn RecordSink>);

impl RecordSink for OpenOnly {
    fn write(&mut self, record: &ServiceRecord) -> io::Result<()> {
        if record.status == Status::Open {
            self.0.write(record)
        } else {
            Ok(())
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
}

/// Collects records in memory: for tests and for callers that post-process a small scan.
#[derive(Default)]
pub struct Collect(pub std::sync::Arc<std::sync::Mutex<Vec<ServiceRecord>>>);

impl RecordSink for Collect {
    fn write(&mut self, record: &ServiceRecord) -> io::Result<()> {
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
    pub services: u64,
    pub by_status: BTreeMap<Status, u64>,
    pub by_protocol: BTreeMap<Protocol, u64>,
    /// Targets refused one by one (hostnames that resolved outside the scope, listed addresses).
    pub blocked: BTreeMap<Refusal, u64>,
    /// The first refused targets, for the summary.
    pub blocked_examples: Vec<String>,
}

impl Tally {
    pub const EXAMPLES: usize = 20;

    pub fn add(&mut self, record: &ServiceRecord) {
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
