//! Telling owners, and handing the same data to the tools CERTs already run.
//!
//! - [`model`]: the values every stage shares ([`HostFinding`], [`Reporter`]).
//! - [`text`]: how hostile strings from scanned servers are made safe for one line.
//! - [`campaign`]: open findings grouped into one message per recipient organisation,
//!   with the repeat interval, suppression and escalation decided per finding.
//! - [`compose`]: a planned message rendered, with its hosts as CSV, into a MIME message.
//! - [`template`]: minijinja templates (English and Dutch, text and HTML), editable.
//! - [`mail`]: the MIME message (headers that cannot be injected, attachments).
//! - [`smtp`]: delivery to a relay (STARTTLS or TLS through OpenSSL, AUTH, deadlines).
//! - [`export`]: IntelMQ events, Shadowserver-style CSV, X-ARF v4, MISP, STIX 2.1.
//!
//! No SQL here: the store keeps campaigns and the outbox, this crate builds what goes in.

pub mod campaign;
pub mod compose;
pub mod evidence;
pub mod export;
pub mod mail;
pub mod model;
pub mod smtp;
pub mod template;
pub mod testing;
pub mod text;

pub use model::{Evidence, ExportMeta, HostFinding, Owner, Reporter};
