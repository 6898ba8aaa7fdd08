//! What a check is: a request plan driven by the answers so far, and a pure assessment of
//! the finished record.
//!
//! The prober asks [`Check::next_request`] after every exchange, so a check can stop early
//! when the evidence is conclusive (a mitigated NetScaler answers its first `/vpns/` probe
//! with a bare 403 and closes; there is no point in a second connection). Every request a
//! check produces passes [`crate::safety::refusal`] before it is written, whatever check
//! made it.

use std::fmt;
use std::net::IpAddr;

use crate::assessment::Assessment;
use crate::record::{HttpExchange, ServiceRecord};

/// One HTTP request of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSpec {
    /// A short stable name that tells the exchanges of a record apart (`root`, `p1`, …).
    pub name: String,
    pub method: String,
    /// The request target exactly as it goes on the wire: `/vpn/../vpns/cfg/smb.conf`.
    pub target: Vec<u8>,
    /// Extra headers after `Host`, `User-Agent`, `Accept` and `Connection`.
    pub headers: Vec<(String, String)>,
}

impl RequestSpec {
    pub fn get(name: &str, target: &str) -> Self {
        RequestSpec {
            name: name.to_string(),
            method: "GET".into(),
            target: target.as_bytes().to_vec(),
            headers: Vec::new(),
        }
    }
}

/// What a check knows about the service it plans for.
#[derive(Clone, Copy, Debug)]
pub struct TargetContext<'a> {
    pub ip: IpAddr,
    pub port: u16,
    pub hostname: Option<&'a str>,
    pub tls: bool,
    /// A per-scan secret mixed into anything random a check sends (control paths), so a
    /// honeypot cannot learn it from another scan.
    pub seed: u64,
}

/// A check pack.
pub trait Check: Send + Sync + fmt::Debug {
    /// Stable identifier, recorded in every assessment (`netscaler`).
    fn id(&self) -> &'static str;

    /// The next request given the exchanges so far on this service; `None` when done.
    fn next_request(
        &self,
        target: &TargetContext<'_>,
        done: &[HttpExchange],
    ) -> Option<RequestSpec>;

    /// Conclusions from the finished record; `None` when the check has nothing to say.
    fn assess(&self, record: &ServiceRecord) -> Option<Assessment>;
}

/// A fixed list of requests and no assessment: `wachter scan --check none`.
#[derive(Clone, Debug)]
pub struct StaticPlan {
    requests: Vec<RequestSpec>,
}

impl StaticPlan {
    pub fn new(requests: Vec<RequestSpec>) -> Self {
        StaticPlan { requests }
    }
}

impl Check for StaticPlan {
    fn id(&self) -> &'static str {
        "basic"
    }

    fn next_request(&self, _: &TargetContext<'_>, done: &[HttpExchange]) -> Option<RequestSpec> {
        self.requests.get(done.len()).cloned()
    }

    fn assess(&self, _: &ServiceRecord) -> Option<Assessment> {
        None
    }
}
