//! The network layer of wachter, and the only crate that opens outgoing sockets.
//!
//! - [`connect`]: the scope-guarded [`connect::Connector`], rate limits, connect outcomes.
//! - [`tls`]: OpenSSL configured for old appliances, certificate capture.
//! - [`http`]: byte-exact HTTP/1.1 requests and a lenient, capped response reader.
//! - [`probe`]: one service end to end (connect, TLS or plain, the request plan) into a
//!   [`wachter_core::record::ServiceRecord`].
//! - [`dns`]: bounded asynchronous resolution of target hostnames.
//!
//! Architecture invariant: a socket to a target is opened only in `connect::open`, after
//! the scope policy said yes. TLS and HTTP run only on a [`connect::GuardedStream`].

pub mod connect;
pub mod dns;
pub mod http;
pub mod probe;
pub mod tls;

/// The default User-Agent: names the tool and says where to read about the scan and opt out.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "wachter/",
    env!("CARGO_PKG_VERSION"),
    " (CERT vulnerability notification scan; +https://wachter.invalid/about-this-scan)"
);
