//! Compromise triage: did someone get into this NetScaler?
//!
//! - [`input`]: an appliance image root, a collected bundle (`.tar`, `.tar.gz`) or a folder
//!   of logs, walked as one stream of entries (path, kind, mode, owner, times, content)
//!   without following links out of the root, writing nothing, with size caps; whatever is
//!   hostile about the input itself is reported as a problem.
//! - [`logs`]: gzip-aware, capped line reading; log kinds by file name; multi-line shell
//!   history records; the time coverage of every log.
//! - [`rules`]: the rule packs (data files under `rules/`), compiled; the originals' bugs
//!   fixed to their evident intent.
//! - [`engine`]: every entry against every rule that applies to it; hits with file, line,
//!   excerpt, rule and source.
//! - [`verdict`]: compromised, exploitation attempted, no sign of compromise within the log
//!   coverage, or not enough data.

pub mod engine;
pub mod input;
pub mod logs;
pub mod rules;
pub mod verdict;
