//! A small authoritative DNS server for lab hostnames, on a loopback UDP port.
//!
//! It lets tests and the demo exercise wachter's real resolver path (hickory, A and AAAA
//! queries, NXDOMAIN) without any traffic leaving the machine, including names that
//! resolve *outside* the scan scope so the guard's refusal can be shown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A running lab DNS server; stops when dropped.
pub struct LabDns {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LabDns {
    /// Serves `records` (lower-case names without trailing dot) on `bind`.
    pub async fn start(
        bind: SocketAddr,
        records: HashMap<String, Vec<IpAddr>>,
    ) -> std::io::Result<LabDns> {
        LabDns::start_with_ptr(bind, records, HashMap::new()).await
    }

    /// Serves `records` and the reverse names in `ptr` (address → name) on `bind`.
    pub async fn start_with_ptr(
        bind: SocketAddr,
        records: HashMap<String, Vec<IpAddr>>,
        ptr: HashMap<IpAddr, String>,
    ) -> std::io::Result<LabDns> {
        let ptr: HashMap<String, String> = ptr
            .into_iter()
            .map(|(ip, name)| (reverse_name(ip), name))
            .collect();
        if !bind.ip().is_loopback() {
            return Err(std::io::Error::other(
                "the lab DNS server only binds loopback addresses",
            ));
        }
        let socket = UdpSocket::bind(bind).await?;
        let addr = socket.local_addr()?;
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                if let Some(reply) = answer(&buf[..n], &records, &ptr) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Ok(LabDns { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LabDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `1.0.0.127.in-addr.arpa` for 127.0.0.1; nibbles under `ip6.arpa` for IPv6.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = v6
                .octets()
                .iter()
                .flat_map(|byte| [byte >> 4, byte & 0xf])
                .map(|nibble| format!("{nibble:x}"))
                .collect();
            labels.reverse();
            format!("{}.ip6.arpa", labels.join("."))
        }
    }
}

fn answer(
    query: &[u8],
    records: &HashMap<String, Vec<IpAddr>>,
    ptr: &HashMap<String, String>,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    let mut known = false;
    for q in &request.queries {
        reply.add_query(q.clone());
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if q.query_type() == RecordType::PTR {
            if let Some(target) = ptr.get(&name) {
                known = true;
                let owner = Name::from_ascii(&name).ok()?;
                let target = Name::from_ascii(format!("{target}.")).ok()?;
                reply.add_answer(Record::from_rdata(owner, 60, RData::PTR(PTR(target))));
            }
            continue;
        }
        let Some(addrs) = records.get(&name) else {
            continue;
        };
        known = true;
        for ip in addrs {
            let rdata = match (q.query_type(), ip) {
                (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            let owner = Name::from_ascii(&name).ok()?;
            reply.add_answer(Record::from_rdata(owner, 60, rdata));
        }
    }
    if !known {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply.to_vec().ok()
}
