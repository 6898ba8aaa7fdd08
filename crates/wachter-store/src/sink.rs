//! [`StoreSink`]: the scan engine's writer thread hands records to the store here.

use std::sync::mpsc;

use wachter_core::record::{ServiceRecord, Status};
use wachter_scan::output::{Checkpoint, RecordSink};

use crate::{BATCH, Kind, Prepared, Store, StoreError};

/// The longest a record waits in memory before it is committed.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Feeds records into the store from the engine's writer thread.
///
/// Records are made ready ([`Prepared`]) on the caller's thread and handed, a batch at a
/// time ([`BATCH`] records or [`FLUSH_EVERY`], with the latest checkpoint), to a database
/// thread over a channel that holds one batch: the scan never waits on the disk row by row,
/// and at most two batches (one queued, one being committed) are uncommitted at any time.
/// A batch and its checkpoint commit together, so after a crash the checkpoint never
/// claims a record that is not stored.
pub struct StoreSink {
    scan_id: i64,
    pending: Vec<Prepared>,
    checkpoint: Option<Checkpoint>,
    last_flush: std::time::Instant,
    /// Whether the store held any service when the scan started.
    knows_services: bool,
    batches: Option<mpsc::SyncSender<Batch>>,
    writer: Option<std::thread::JoinHandle<Result<(), StoreError>>>,
}

struct Batch {
    records: Vec<Prepared>,
    checkpoint: Option<Checkpoint>,
}

/// Copies SQLite's write-ahead log into the database file from a thread of its own, so the
/// writer never stalls on it (SQLite would otherwise checkpoint inside a commit).
struct WalCheckpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WalCheckpointer {
    fn start(path: &str) -> Option<WalCheckpointer> {
        let conn = rusqlite::Connection::open(path).ok()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wachter-wal".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    // PASSIVE: copy what it can without waiting for the writer.
                    let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
                }
            })
            .ok()?;
        Some(WalCheckpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl StoreSink {
    pub fn new(store: Store, scan_id: i64) -> Self {
        // A store with no services yet cannot know any address this scan finds closed: skip
        // them here (a discovery sweep is mostly closed ports).
        let knows_services = store.has_services().unwrap_or(true);
        let (batches, inbox) = mpsc::sync_channel::<Batch>(1);
        let writer = std::thread::Builder::new()
            .name("wachter-store".into())
            .spawn(move || write_batches(store, scan_id, inbox));
        let (batches, writer) = match writer {
            Ok(writer) => (Some(batches), Some(writer)),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the database writer thread");
                (None, None)
            }
        };
        StoreSink {
            scan_id,
            pending: Vec::with_capacity(BATCH),
            checkpoint: None,
            last_flush: std::time::Instant::now(),
            knows_services,
            batches,
            writer,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.last_flush = std::time::Instant::now();
        if self.pending.is_empty() && self.checkpoint.is_none() {
            return Ok(());
        }
        let batch = Batch {
            records: std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH)),
            checkpoint: self.checkpoint.take(),
        };
        let sent = match &self.batches {
            Some(batches) => batches.send(batch).is_ok(),
            None => false,
        };
        if sent { Ok(()) } else { self.stop_writer() }
    }

    /// Closes the channel and waits for the database thread; its error, if it failed.
    fn stop_writer(&mut self) -> std::io::Result<()> {
        self.batches = None;
        let outcome = match self.writer.take() {
            Some(writer) => writer.join().unwrap_or_else(|_| Err(self.panicked())),
            None => Err(self.panicked()),
        };
        outcome.map_err(std::io::Error::other)
    }

    fn panicked(&self) -> StoreError {
        StoreError::Operation {
            location: format!("scan {}", self.scan_id),
            detail: "the database writer thread stopped".into(),
        }
    }

    fn due(&self) -> bool {
        self.pending.len() >= BATCH || self.last_flush.elapsed() >= FLUSH_EVERY
    }
}

/// The database thread: commits batches in order until the channel closes.
fn write_batches(
    mut store: Store,
    scan_id: i64,
    inbox: mpsc::Receiver<Batch>,
) -> Result<(), StoreError> {
    let checkpointer = match store.db.sqlite() {
        Some(conn) => {
            let checkpointer = WalCheckpointer::start(store.db.connection_string());
            if checkpointer.is_some() {
                let _ = conn.execute_batch("PRAGMA wal_autocheckpoint=0");
            }
            checkpointer
        }
        None => None,
    };
    for batch in inbox {
        store.write_prepared(scan_id, batch.records, batch.checkpoint.as_ref())?;
    }
    drop(checkpointer);
    if store.kind() == Kind::Sqlite {
        // Fold the log into the file now that the writing is over.
        let _ = store.db.batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    Ok(())
}

impl RecordSink for StoreSink {
    fn write(&mut self, position: u64, record: &ServiceRecord) -> std::io::Result<()> {
        // Never stored (see `Store::write_positioned`): blocked targets, and closed ones the
        // store cannot know.
        let storable = match record.status {
            Status::Open => true,
            Status::Blocked => false,
            _ => self.knows_services,
        };
        if storable {
            self.pending.extend(Prepared::new(Some(position), record));
        }
        if self.due() { self.flush() } else { Ok(()) }
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> std::io::Result<()> {
        self.checkpoint = Some(checkpoint.clone());
        if self.due() { self.flush() } else { Ok(()) }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.stop_writer()
    }
}

impl Drop for StoreSink {
    /// A sink dropped without `finish` (an error elsewhere) still commits what it was given.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.flush();
            let _ = self.stop_writer();
        }
    }
}
