//! Check packs: what to ask a service, and what its answers mean.
//!
//! A check is a [`wachter_core::check::Check`]: a request plan that adapts to the answers,
//! and a pure assessment of the finished record. Nothing here does I/O; the rule tables
//! are data files compiled into the binary (`data/`), so a new bulletin is a data change.
//!
//! - [`netscaler`]: Citrix ADC / NetScaler Gateway: fingerprint, build estimate,
//!   CVE-2019-19781 safe probes, version rules for the later CVEs.

use std::sync::Arc;

use wachter_core::check::Check;

pub mod netscaler;

/// The check packs by name, for `--check`.
pub fn by_name(name: &str) -> Option<Arc<dyn Check>> {
    match name {
        "netscaler" => Some(Arc::new(netscaler::NetscalerCheck::builtin())),
        _ => None,
    }
}

/// Names accepted by [`by_name`].
pub const NAMES: &[&str] = &["netscaler"];
