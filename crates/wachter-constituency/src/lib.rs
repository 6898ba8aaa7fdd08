//! The constituency: who owns a host, and who to tell.
//!
//! Pure code: everything here takes readers or values and returns values, so every rule
//! is tested on fixtures. The store keeps what is imported; the CLI wires files to it.
//!
//! - [`prefix`]: longest-prefix match over millions of networks.
//! - [`rpsl`]: RIPE database split files (inetnum, inet6num, role, organisation) into
//!   networks with their abuse mailboxes.
//! - [`delegated`]: RIR delegated-extended statistics into exact CIDRs per country.
//! - [`domains`]: certificate and DNS names matched to organisation domains (public suffix
//!   list aware).
//! - [`securitytxt`]: RFC 9116 security.txt parsing.
//! - [`mmdb`]: ASN, holder and country from a MaxMind-format database.
//! - [`org`]: organisations (sector, networks, domains, contacts, TLP) in CSV and TOML.
//! - [`attribute`]: the rules that pick a service's organisation from all of the above.

pub mod attribute;
pub mod delegated;
pub mod domains;
pub mod mmdb;
pub mod org;
pub mod prefix;
pub mod rpsl;
pub mod securitytxt;
