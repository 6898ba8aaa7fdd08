//! The assessment on recorded answers: one case per state of the lab and of the field.

use std::io::Write;

use wachter_core::assessment::{BuildMethod, ProbeState, Product, Verdict};
use wachter_core::check::{Check, TargetContext};
use wachter_core::record::{
    Blob, Certificate, HttpExchange, HttpOutcome, ServiceRecord, Status, TlsInfo,
};

use super::*;

const SMB_CONF: &str =
    "[global]\n\tencrypt passwords = yes\n\tname resolve order = lmhosts wins host bcast\n";
const APACHE_403: &str = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>403 Forbidden</title>\n</head><body>\n<h1>Forbidden</h1>\n<p>You don't have permission to access /vpns/\non this server.</p>\n</body></html>\n";
const GATEWAY: &str = "<html><head><title>Citrix Gateway</title><script src=\"/vpn/js/gateway_login_view.js?v=fedb4ba86b5edcbc86081f2893dc9fdf\"></script></head></html>";

fn ex(name: &str, status: u16, headers: &str, body: &[u8]) -> HttpExchange {
    HttpExchange {
        name: name.into(),
        request: Blob::default(),
        outcome: HttpOutcome::Response,
        detail: None,
        status: Some(status),
        status_line: Some(Blob(format!("HTTP/1.1 {status} X").into_bytes())),
        headers: Some(Blob(headers.as_bytes().to_vec())),
        body: (!body.is_empty()).then(|| Blob(body.to_vec())),
        body_read: body.len() as u64,
        body_complete: true,
        connection: 1,
        first_byte_ms: Some(0),
        total_ms: 0,
    }
}

fn gzip_named(mtime: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = flate2::GzBuilder::new()
        .filename("rdx_en.json")
        .mtime(mtime)
        .write(&mut out, flate2::Compression::default());
    enc.write_all(b"{\"x\":1}").unwrap();
    enc.finish().unwrap();
    out
}

fn record(http: Vec<HttpExchange>) -> ServiceRecord {
    let mut r = ServiceRecord::new("127.0.0.1".parse().unwrap(), 443, None, String::new());
    r.status = Status::Open;
    r.http = http;
    r
}

fn gateway(p2: HttpExchange, p1: Option<HttpExchange>, stamp: Option<u32>) -> ServiceRecord {
    let mut http = vec![
        ex(
            "root",
            302,
            "Location: /vpn/index.html\r\nSet-Cookie: NSC_TEMP=xyz; Path=/",
            b"",
        ),
        ex(
            "vpn_index",
            200,
            "Content-Type: text/html",
            GATEWAY.as_bytes(),
        ),
        ex("logonpoint", 404, "", b"not found"),
        match stamp {
            Some(s) => ex(
                "rdx_en",
                200,
                "Content-Type: application/x-gzip",
                &gzip_named(s),
            ),
            None => ex("rdx_en", 404, "", b"not found"),
        },
        ex(
            "control",
            404,
            "Content-Type: text/html",
            b"<h1>Not Found</h1>",
        ),
        p2,
    ];
    http.extend(p1);
    record(http)
}

fn assess(r: &ServiceRecord) -> Assessment {
    NetscalerCheck::builtin().assess(r).expect("an assessment")
}

fn verdict(a: &Assessment, cve: &str) -> (Verdict, Basis) {
    let v = a.cves.iter().find(|v| v.cve == cve).unwrap();
    (v.verdict, v.basis)
}

#[test]
fn vulnerable_gateway() {
    let r = gateway(
        ex("p2", 403, "Server: Apache", APACHE_403.as_bytes()),
        Some(ex(
            "p1",
            200,
            "Content-Type: text/plain",
            SMB_CONF.as_bytes(),
        )),
        Some(1574967982),
    );
    let a = assess(&r);
    assert_eq!(a.product, Product::Netscaler);
    assert!(
        a.signals.iter().any(|s| s == "title:Citrix Gateway"),
        "{:?}",
        a.signals
    );
    assert!(a.signals.iter().any(|s| s == "cookie:NSC_TEMP"));
    assert!(a.signals.iter().any(|s| s == "redirect:/vpn/index.html"));
    let build = a.build.as_ref().unwrap();
    assert_eq!(
        (build.version.as_deref(), build.method),
        (Some("13.0-47.22"), BuildMethod::RdxStamp)
    );
    assert_eq!(a.probe.as_ref().unwrap().state, ProbeState::Vulnerable);
    assert_eq!(
        verdict(&a, CVE_2019_19781),
        (Verdict::Vulnerable, Basis::Both)
    );
    assert_eq!(
        verdict(&a, "CVE-2023-3519").0,
        Verdict::Vulnerable,
        "13.0-47.22 is below 91.13"
    );
}

#[test]
fn mitigated_gateway_answers_with_a_bare_403() {
    let r = gateway(ex("p2", 403, "", b""), None, Some(1572931127));
    let a = assess(&r);
    assert_eq!(a.probe.as_ref().unwrap().state, ProbeState::Mitigated);
    assert_eq!(
        verdict(&a, CVE_2019_19781),
        (Verdict::Mitigated, Basis::Both)
    );
    // A 403 with headers is an ordinary 403, not the responder's.
    let ordinary = gateway(
        ex(
            "p2",
            403,
            "Server: Apache\r\nContent-Length: 9",
            b"Forbidden",
        ),
        Some(ex("p1", 403, "Server: Apache", b"Forbidden")),
        Some(1572931127),
    );
    assert_eq!(
        assess(&ordinary).probe.unwrap().state,
        ProbeState::NotVulnerable
    );
}

#[test]
fn patched_gateway() {
    let r = gateway(
        ex("p2", 302, "Location: /vpn/index.html", b""),
        Some(ex("p1", 302, "Location: /vpn/index.html", b"")),
        Some(1579525745),
    );
    let a = assess(&r);
    assert_eq!(a.probe.as_ref().unwrap().state, ProbeState::NotVulnerable);
    assert_eq!(verdict(&a, CVE_2019_19781), (Verdict::Patched, Basis::Both));
}

#[test]
fn broken_mitigation_build_says_so() {
    let r = gateway(
        ex("p2", 403, "", APACHE_403.as_bytes()),
        Some(ex("p1", 200, "", SMB_CONF.as_bytes())),
        Some(1543395386),
    );
    let a = assess(&r);
    let v = a.cves.iter().find(|v| v.cve == CVE_2019_19781).unwrap();
    assert_eq!(v.verdict, Verdict::Vulnerable);
    assert!(
        v.detail.contains("mitigation does not work"),
        "{}",
        v.detail
    );
}

#[test]
fn honeypot_is_never_vulnerable() {
    let mut r = gateway(
        ex("p2", 200, "Server: Apache", APACHE_403.as_bytes()),
        Some(ex("p1", 200, "Server: Apache", SMB_CONF.as_bytes())),
        None,
    );
    r.http[4] = ex("control", 200, "Server: Apache", b"<html>anything</html>");
    let a = assess(&r);
    assert!(a.flags.honeypot_suspect);
    assert_eq!(a.product, Product::Unknown);
    assert_eq!(a.probe.as_ref().unwrap().state, ProbeState::Inconclusive);
    assert!(a.cves.iter().all(|v| v.verdict != Verdict::Vulnerable));
}

#[test]
fn catch_all_and_ordinary_servers_are_not_netscalers() {
    let page = b"<html><head><title>ShopCMS</title></head></html>";
    let all_200 = record(
        [
            "root",
            "vpn_index",
            "logonpoint",
            "rdx_en",
            "control",
            "p2",
            "p1",
        ]
        .iter()
        .map(|n| ex(n, 200, "Content-Type: text/html", page))
        .collect(),
    );
    let a = assess(&all_200);
    assert!(a.flags.catch_all && !a.flags.honeypot_suspect);
    assert_eq!(a.product, Product::NotNetscaler);
    assert_eq!(verdict(&a, CVE_2019_19781).0, Verdict::NotApplicable);
    let nginx = record(
        [
            "root",
            "vpn_index",
            "logonpoint",
            "rdx_en",
            "control",
            "p2",
            "p1",
        ]
        .iter()
        .map(|n| {
            ex(
                n,
                if *n == "root" { 200 } else { 404 },
                "Server: nginx",
                b"<title>Welcome to nginx!</title>",
            )
        })
        .collect(),
    );
    let a = assess(&nginx);
    assert_eq!(a.product, Product::NotNetscaler);
    assert_eq!(a.probe.unwrap().state, ProbeState::NotVulnerable);
    assert!(!a.flags.catch_all);
}

#[test]
fn zeroed_stamp_gives_candidates() {
    let r = gateway(
        ex("p2", 302, "", b""),
        Some(ex("p1", 302, "", b"")),
        Some(0),
    );
    let a = assess(&r);
    let build = a.build.as_ref().unwrap();
    assert_eq!(build.version, None);
    assert_eq!(build.candidates, ["13.1-62.23", "14.1-60.58", "14.1-66.59"]);
    assert_eq!(
        verdict(&a, "CVE-2025-5777"),
        (Verdict::Patched, Basis::Version)
    );
    assert_eq!(
        verdict(&a, "CVE-2026-3055").0,
        Verdict::Unknown,
        "14.1-60.58 is vulnerable, the others are not"
    );
}

#[test]
fn vhash_and_last_modified_are_fallbacks() {
    let r = gateway(ex("p2", 302, "", b""), Some(ex("p1", 302, "", b"")), None);
    let build = assess(&r).build.unwrap();
    assert_eq!(
        (build.version.as_deref(), build.method),
        (Some("13.0-47.22"), BuildMethod::Vhash)
    );
    let mut lm = gateway(ex("p2", 302, "", b""), Some(ex("p1", 302, "", b"")), None);
    lm.http[1] = ex(
        "vpn_index",
        200,
        "Last-Modified: Fri, 07 Jul 2023 15:39:40 GMT",
        b"<title>Citrix Gateway</title>",
    );
    let build = assess(&lm).build.unwrap();
    assert_eq!(
        (build.version.as_deref(), build.method),
        (Some("13.0-91.13"), BuildMethod::LastModified)
    );
}

#[test]
fn unanswered_probes_are_inconclusive_with_a_reason() {
    let mut timeout = ex("p2", 0, "", b"");
    timeout.outcome = HttpOutcome::Timeout;
    timeout.status = None;
    let r = gateway(timeout, None, Some(1574967982));
    let a = assess(&r);
    let probe = a.probe.as_ref().unwrap();
    assert_eq!(probe.state, ProbeState::Inconclusive);
    assert!(probe.reason.contains("timeout"), "{}", probe.reason);
    assert_eq!(
        verdict(&a, CVE_2019_19781),
        (Verdict::Vulnerable, Basis::Version)
    );
}

#[test]
fn default_certificate_alone_identifies_an_appliance() {
    let mut r = record(vec![ex("root", 404, "", b"")]);
    r.tls = Some(TlsInfo {
        established: true,
        version: Some("TLSv1".into()),
        chain: vec![Certificate {
            subject:
                "C=US, ST=California, L=San Jose, O=Citrix ANG, OU=NS Internal, CN=default QWERTZ"
                    .into(),
            common_name: Some("default QWERTZ".into()),
            ..Certificate::default()
        }],
        handshakes: 1,
        ..TlsInfo::default()
    });
    let a = assess(&r);
    assert_eq!(a.product, Product::Netscaler);
    assert!(a.flags.default_certificate && a.flags.legacy_tls_only);
    assert!(
        a.flags.tls_names.is_empty(),
        "'default QWERTZ' is not a DNS name"
    );
}

#[test]
fn plan_skips_p1_after_the_mitigation_answer_and_varies_the_control_path() {
    let check = NetscalerCheck::builtin();
    let ctx = |ip: &str| TargetContext {
        ip: ip.parse().unwrap(),
        port: 443,
        hostname: None,
        tls: true,
        seed: 9,
    };
    let a = ctx("127.0.0.1");
    let mut done = Vec::new();
    let mut names = Vec::new();
    while let Some(spec) = check.next_request(&a, &done) {
        names.push(spec.name.clone());
        if spec.name == "control" {
            assert!(String::from_utf8_lossy(&spec.target).ends_with(".html"));
        }
        done.push(if spec.name == "p2" {
            ex("p2", 403, "", b"")
        } else {
            ex(&spec.name, 404, "", b"")
        });
    }
    assert_eq!(
        names,
        ["root", "vpn_index", "logonpoint", "rdx_en", "control", "p2"]
    );
    assert_ne!(
        control_path(&ctx("127.0.0.1")),
        control_path(&ctx("127.0.0.2"))
    );
    let full: Vec<String> = std::iter::successors(Some(Vec::<HttpExchange>::new()), |d| {
        check.next_request(&a, d).map(|s| {
            let mut d = d.clone();
            d.push(ex(&s.name, 404, "x: y", b"z"));
            d
        })
    })
    .last()
    .unwrap()
    .iter()
    .map(|e| e.name.clone())
    .collect();
    assert_eq!(full.last().map(String::as_str), Some("p1"));
}

#[test]
fn a_leaked_smb_conf_alone_is_a_vulnerable_netscaler() {
    // No login page, no stamp, no cookie: only P1 answered with the appliance's smb.conf.
    let r = record(vec![
        ex("root", 404, "", b""),
        ex("vpn_index", 404, "", b""),
        ex("logonpoint", 404, "", b""),
        ex("rdx_en", 404, "", b""),
        ex("control", 404, "", b""),
        ex("p2", 404, "", b""),
        ex("p1", 200, "Content-Type: text/plain", SMB_CONF.as_bytes()),
    ]);
    let a = assess(&r);
    assert_eq!(a.product, Product::Netscaler, "{:?}", a.signals);
    assert_eq!(
        verdict(&a, CVE_2019_19781),
        (Verdict::Vulnerable, Basis::Probe)
    );
}
