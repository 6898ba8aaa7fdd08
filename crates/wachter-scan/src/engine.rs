//! The scan engine: targets in, one record per service out, at a bounded pace.
//!
//! Mental model: a producer walks the ordered address space, then the streamed targets;
//! for each target it first takes a concurrency permit, then spawns a probe task (so the
//! number of tasks, sockets and buffers is bounded by the permit count, not by the
//! target list). Probe tasks send finished records into a bounded channel; one writer
//! thread serialises them and keeps the tally. Rate limits live in the connector, where
//! connections are made.
//!
//! Memory is flat in the number of targets: the address space is a list of ranges, the
//! streamed targets pass through a fixed-size shuffle window, and nothing per target is
//! kept after its record is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use wachter_core::addr::RangeSet;
use wachter_core::order::{AddressSpace, Order, OrderError, Shard, WindowShuffle};
use wachter_core::ports::PortList;
use wachter_core::record::{ServiceRecord, Status};
use wachter_core::scope::{Refusal, ScopePolicy};
use wachter_core::targets::TargetItem;
use wachter_net::dns::{Dns, Resolution};
use wachter_net::probe::{Prober, Target};

use crate::inputs::TargetInputs;
use crate::output::{Checkpoint, ProgressTracker, RecordSink, Tally};

/// Knobs of one scan run.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub ports: PortList,
    pub seed: u64,
    pub shard: Shard,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Size of the shuffle window for streamed targets.
    pub shuffle_window: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Continue an interrupted scan: positions the checkpoint marks done are skipped.
    pub resume: Option<Checkpoint>,
}

/// What the scan did, for the summary table and `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct ScanSummary {
    pub seed: u64,
    pub shard: String,
    pub ports: String,
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub tally: Tally,
    /// Parts of the given networks that were not scanned, by reason.
    pub refused_networks: Vec<RefusedNetwork>,
    /// Hostnames that gave no address.
    pub unresolved: Vec<Unresolved>,
    pub unresolved_count: u64,
    pub connect_attempts: u64,
    pub local_errors: u64,
    pub self_connects: u64,
    /// True when the scan was stopped before every target was probed.
    pub interrupted: bool,
    /// Why the scan stopped early, if it did for a reason other than an interrupt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RefusedNetwork {
    pub reason: Refusal,
    pub range: String,
    pub addresses: u128,
}

#[derive(Clone, Debug, Serialize)]
pub struct Unresolved {
    pub hostname: String,
    pub why: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("cannot write results: {0}")]
    Output(std::io::Error),
}

/// Shared state of a running scan.
struct Shared {
    prober: Arc<Prober>,
    dns: Option<Dns>,
    ports: PortList,
    records: mpsc::Sender<Msg>,
    unresolved: std::sync::Mutex<(u64, Vec<Unresolved>)>,
    stop: Arc<AtomicBool>,
}

/// What probe tasks tell the writer thread.
enum Msg {
    /// A record of a position; `true` when it is the position's last (saves a `Done`).
    Record(u64, Box<ServiceRecord>, bool),
    /// Every record of this position has been sent.
    Done(u64),
}

/// The shape of a scan's order: what a resume must find unchanged, or its positions would
/// name other targets. Also checks that the space can be ordered at all.
pub fn order_fingerprint(
    inputs: &TargetInputs,
    options: &ScanOptions,
    policy: &ScopePolicy,
) -> Result<String, OrderError> {
    let (allowed, _) = policy.partition(&inputs.networks);
    let order = Order::new(AddressSpace::new(&allowed), &options.ports, options.seed)?;
    let ranges: Vec<String> = allowed.ranges().iter().map(ToString::to_string).collect();
    // FNV-1a over the allowed ranges: short, stable, dependency-free.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ranges.join(",").bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!(
        "{}:{}:{}:{hash:016x}",
        order.len(),
        inputs.streamed_items,
        options.shard
    ))
}

/// Runs a scan to the end (or until `stop` is set), writing every record to `sink`.
pub async fn run_scan(
    inputs: TargetInputs,
    options: &ScanOptions,
    prober: Arc<Prober>,
    dns: Option<Dns>,
    sink: Box<dyn RecordSink>,
    stop: Arc<AtomicBool>,
) -> Result<ScanSummary, ScanError> {
    let started = Instant::now();
    let policy = prober.connector().policy();
    let (allowed, refused) = policy.partition(&inputs.networks);
    let refused_networks = describe_refused(&refused);
    let order = Order::new(AddressSpace::new(&allowed), &options.ports, options.seed)?;

    let expected = options.shard.share_of(order.len())
        + options.shard.share_of(inputs.streamed_items) * options.ports.len() as u64;
    let progress = progress_bar(options.progress, expected);

    let (records_tx, records_rx) = mpsc::channel::<Msg>(4096);
    let writer_stop = stop.clone();
    let writer_progress = progress.clone();
    let tracker = options
        .resume
        .as_ref()
        .map(ProgressTracker::from_checkpoint)
        .unwrap_or_default();
    let writer = std::thread::spawn(move || {
        write_records(records_rx, sink, tracker, writer_progress, writer_stop)
    });
    let resume = options.resume.clone().unwrap_or_default();
    // Positions: the space walk first, then the streamed targets after it.
    let space_share = options.shard.share_of(order.len());

    let shared = Arc::new(Shared {
        prober: prober.clone(),
        dns,
        ports: options.ports.clone(),
        records: records_tx,
        unresolved: std::sync::Mutex::new((0, Vec::new())),
        stop: stop.clone(),
    });
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut stopped_by = None;

    // 1. The ordered address space.
    for (position, ip, port) in order.walk(options.shard, resume.next.min(space_share)) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if resume.is_done(position) {
            continue;
        }
        let shared = shared.clone();
        let probe = async move {
            let record = shared
                .prober
                .probe(&Target {
                    ip,
                    port,
                    hostname: None,
                })
                .await;
            // One record per position on the space walk: it completes the position.
            let _ = shared
                .records
                .send(Msg::Record(position, Box::new(record), true))
                .await;
        };
        if !spawn_bounded(&permits, &mut tasks, probe).await {
            break;
        }
    }

    // 2. The streamed targets, read on a thread (file I/O) through the shuffle window.
    let (items_tx, mut items_rx) = mpsc::channel(1024);
    let shard = options.shard;
    let window = options.shuffle_window;
    let seed = options.seed;
    let reader_stop = stop.clone();
    let resume_streamed = resume.clone();
    let reader = std::thread::spawn(move || {
        let owned = inputs
            .streamed()
            .enumerate()
            .filter(|(n, _)| shard.owns(*n as u64))
            .map(|(_, item)| item);
        for (emitted, item) in WindowShuffle::new(owned, window, seed).enumerate() {
            let position = space_share + emitted as u64;
            if resume_streamed.is_done(position) {
                continue;
            }
            if reader_stop.load(Ordering::Relaxed)
                || items_tx.blocking_send((position, item)).is_err()
            {
                break;
            }
        }
    });
    while let Some((position, item)) = items_rx.recv().await {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                stopped_by = Some(format!("target input: {e}"));
                break;
            }
        };
        let shared = shared.clone();
        let work = async move {
            if probe_item(&shared, position, item).await {
                let _ = shared.records.send(Msg::Done(position)).await;
            }
        };
        if !spawn_bounded(&permits, &mut tasks, work).await {
            break;
        }
    }
    drop(items_rx);
    let _ = reader.join();

    while tasks.join_next().await.is_some() {}
    let unresolved = shared
        .unresolved
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    drop(shared);

    let (tally, output_error) = writer.join().unwrap_or_else(|_| {
        (
            Tally::default(),
            Some(std::io::Error::other("writer thread panicked")),
        )
    });
    progress.finish_and_clear();
    if let Some(e) = output_error
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(ScanError::Output(e));
    }
    let stats = prober.connector().stats();
    Ok(ScanSummary {
        seed: options.seed,
        shard: options.shard.to_string(),
        ports: options.ports.to_string(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        tally,
        refused_networks,
        unresolved: unresolved.1,
        unresolved_count: unresolved.0,
        connect_attempts: stats.attempts.load(Ordering::Relaxed),
        local_errors: stats.local_errors.load(Ordering::Relaxed),
        self_connects: stats.self_connects.load(Ordering::Relaxed),
        interrupted: stop.load(Ordering::Relaxed),
        stopped_by,
    })
}

/// Takes a concurrency permit, then spawns `work` holding it, and reaps finished tasks so
/// the set stays bounded. Permit before spawn: the number of tasks never exceeds the permits.
/// `false` when the semaphore is closed.
async fn spawn_bounded(
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    work: impl Future<Output = ()> + Send + 'static,
) -> bool {
    let Ok(permit) = permits.clone().acquire_owned().await else {
        return false;
    };
    tasks.spawn(async move {
        let _permit = permit;
        work.await;
    });
    while tasks.try_join_next().is_some() {}
    true
}

/// Probes one streamed item: an address (with its own port or every scan port) or a
/// hostname, resolved first, each of its addresses probed under the name.
/// `true` when every record of the item was handed to the writer (the position is complete).
async fn probe_item(shared: &Shared, position: u64, item: TargetItem) -> bool {
    let (ips, hostname, port) = match item {
        TargetItem::Network(_) => return true,
        TargetItem::Address { ip, hostname, port } => (vec![ip], hostname, port),
        TargetItem::Host { name, port } => {
            let resolution = match &shared.dns {
                Some(dns) => dns.resolve(&name).await,
                None => Resolution::Failed("no resolver configured".into()),
            };
            match resolution {
                Resolution::Addresses(ips) => (ips, Some(name), port),
                Resolution::NoAddress => {
                    shared.unresolved(name, "no A or AAAA record".into());
                    return true;
                }
                Resolution::Failed(why) => {
                    shared.unresolved(name, why);
                    return true;
                }
            }
        }
    };
    let ports: Vec<u16> = match port {
        Some(p) => vec![p],
        None => shared.ports.as_slice().to_vec(),
    };
    for ip in ips {
        for &port in &ports {
            if shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            let record = shared
                .prober
                .probe(&Target {
                    ip,
                    port,
                    hostname: hostname.clone(),
                })
                .await;
            if shared
                .records
                .send(Msg::Record(position, Box::new(record), false))
                .await
                .is_err()
            {
                return false;
            }
        }
    }
    true
}

impl Shared {
    fn unresolved(&self, hostname: String, why: String) {
        tracing::info!(%hostname, %why, "hostname not resolved");
        if let Ok(mut u) = self.unresolved.lock() {
            u.0 += 1;
            if u.1.len() < Tally::EXAMPLES {
                u.1.push(Unresolved { hostname, why });
            }
        }
    }
}

fn write_records(
    mut rx: mpsc::Receiver<Msg>,
    mut sink: Box<dyn RecordSink>,
    mut tracker: ProgressTracker,
    progress: ProgressBar,
    stop: Arc<AtomicBool>,
) -> (Tally, Option<std::io::Error>) {
    let mut tally = Tally::default();
    let mut error = None;
    let mut last_message = 0u64;
    let mut batch = Vec::with_capacity(1024);
    loop {
        // Drain what is there, then nap: polling keeps senders from waking this thread
        // once per record (a futex round trip each), which costs more than the write.
        match rx.try_recv() {
            Ok(msg) => batch.push(msg),
            Err(mpsc::error::TryRecvError::Empty) => {
                if batch.is_empty() {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => {
                if batch.is_empty() {
                    break;
                }
            }
        }
        if batch.len() < 1024 && !rx.is_empty() {
            continue;
        }
        for msg in batch.drain(..) {
            match msg {
                Msg::Record(position, record, completes) => {
                    tally.add(&record);
                    if completes {
                        tracker.done(position);
                    }
                    // After a failure (a broken pipe from `| head`) the scan stops, but the
                    // records in flight still go to the sinks that work (the store).
                    if let Err(e) = sink.write(position, &record) {
                        stop.store(true, Ordering::Relaxed);
                        error.get_or_insert(e);
                    }
                }
                Msg::Done(position) => tracker.done(position),
            }
        }
        if let Err(e) = sink.checkpoint(&tracker.checkpoint()) {
            stop.store(true, Ordering::Relaxed);
            error.get_or_insert(e);
        }
        let n = tally.services;
        progress.set_position(n);
        if n - last_message >= 64 {
            last_message = n;
            progress.set_message(progress_message(&tally));
        }
    }
    if let Err(e) = sink.finish() {
        error.get_or_insert(e);
    }
    tally.trim_actions();
    (tally, error)
}

fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {rate} ETA {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        },
    );
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn progress_message(tally: &Tally) -> String {
    Status::ALL
        .iter()
        .filter_map(|s| {
            let n = tally.count(*s);
            (n > 0).then(|| format!("{s} {n}"))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn describe_refused(refused: &[(Refusal, RangeSet)]) -> Vec<RefusedNetwork> {
    let mut out = Vec::new();
    for (reason, set) in refused {
        for range in set.ranges() {
            out.push(RefusedNetwork {
                reason: *reason,
                range: range.to_string(),
                addresses: range.len(),
            });
        }
    }
    out
}
