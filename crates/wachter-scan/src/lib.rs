//! The scan stage of the pipeline: from validated target inputs to one
//! [`wachter_core::record::ServiceRecord`] per service.
//!
//! - [`inputs`]: read and check every target source before the first connection.
//! - [`engine`]: order, shard, bounded concurrency, the writer thread, the summary.
//! - [`output`]: record sinks (JSON Lines) and the tally.

pub mod engine;
pub mod inputs;
pub mod output;

pub use engine::{ScanOptions, ScanSummary, run_scan};
pub use inputs::{Source, TargetInputs};
