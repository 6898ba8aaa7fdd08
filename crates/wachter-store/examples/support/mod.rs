//! What the store benchmarks' synthetic records have in common: an open HTTPS service
//! whose certificate is shared by 50 neighbours (appliances share wildcard certificates),
//! and a NetScaler assessment.

use std::net::IpAddr;

use wachter_core::assessment::{Assessment, Basis, CveVerdict, Flags, Product, Verdict};
use wachter_core::record::{Certificate, Protocol, ServiceRecord, Status, TlsInfo};

/// Service `i` at `ip`, open over TLS, seen at `time`.
pub fn tls_service(i: u64, ip: IpAddr, time: &str) -> ServiceRecord {
    let mut r = ServiceRecord::new(ip, 443, None, time.into());
    r.status = Status::Open;
    r.protocol = Some(Protocol::Https);
    r.connections = 1;
    let cert = i / 50;
    r.tls = Some(TlsInfo {
        established: true,
        version: Some("TLSv1.2".into()),
        cipher: Some("ECDHE-RSA-AES128-GCM-SHA256".into()),
        chain: vec![Certificate {
            sha256: format!("{cert:064x}"),
            subject: format!("CN=vpn{cert}.example.test"),
            issuer: "CN=Example CA".into(),
            sans: vec![format!("vpn{cert}.example.test")],
            der: "MIIB".into(),
            ..Certificate::default()
        }],
        handshakes: 1,
        ..TlsInfo::default()
    });
    r
}

/// The NetScaler check's assessment with one CVE-2019-19781 verdict from the probe.
pub fn netscaler(verdict: Verdict) -> Assessment {
    Assessment {
        check: "netscaler".into(),
        product: Product::Netscaler,
        signals: vec!["title:Citrix Gateway".into()],
        build: None,
        probe: None,
        cves: vec![CveVerdict {
            cve: "CVE-2019-19781".into(),
            verdict,
            basis: Basis::Probe,
            detail: String::new(),
        }],
        flags: Flags::default(),
    }
}
