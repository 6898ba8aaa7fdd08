//! Requests wachter never sends, whichever check asks.
//!
//! Notification scanning is read-only: no exploit step, no memory-leak probe, no login.
//! This deny-list is enforced where requests are rendered for the wire, so a check pack
//! or a template cannot send these by mistake or by design. It covers the exploit chains
//! of CVE-2019-19781 (`newbm.pl`, `NSC_USER` traversal, template fetches), CitrixBleed
//! (CVE-2023-4966: oversized `Host`, OIDC configuration), CitrixBleed 2 (CVE-2025-5777:
//! `doAuthentication.do`), CVE-2026-3055 (`/saml/login`, `/wsfed/passive`), the
//! CVE-2023-3519 SAML probe, NITRO API calls and default-credential logins
//! (research: netscaler.md §2.2, §4).

use crate::check::RequestSpec;

/// The longest header value wachter sends; CitrixBleed needs ~24 KB of `Host`.
const MAX_HEADER_VALUE: usize = 1024;

/// Path fragments of exploit and memory-read requests (compared case-insensitively after
/// percent-decoding, so `%6eewbm.pl` does not slip through).
const FORBIDDEN_PATHS: &[(&str, &str)] = &[
    ("newbm.pl", "CVE-2019-19781 exploit step (bookmark write)"),
    (
        "/portal/templates/",
        "CVE-2019-19781 exploit step (template)",
    ),
    (
        "/vpns/portal/",
        "CVE-2019-19781 exploit step (portal template fetch)",
    ),
    ("[%", "Template Toolkit payload"),
    (
        "openid-configuration",
        "CitrixBleed (CVE-2023-4966) memory read",
    ),
    ("getusername", "session hijack with a leaked token"),
    (
        "doauthentication.do",
        "CitrixBleed 2 (CVE-2025-5777) memory read",
    ),
    (
        "/saml/login",
        "SAML probes drive the vulnerable parser (CVE-2023-3519, CVE-2026-3055)",
    ),
    ("/wsfed/passive", "CVE-2026-3055 memory read"),
    ("/nitro/", "NITRO API: authenticated management calls"),
    ("/vpn/themes/", "requesting a possible webshell may run it"),
];

/// Headers that authenticate or carry exploit input.
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "nsc_user",
    "nsc_nonce",
    "proxy-authorization",
];

/// Why `spec` must not be sent, or `None` if it may.
pub fn refusal(spec: &RequestSpec) -> Option<&'static str> {
    if !matches!(spec.method.as_str(), "GET" | "HEAD") {
        return Some("only GET and HEAD requests are sent");
    }
    let decoded = percent_decode_lower(&spec.target);
    // Servers treat `//`, `/./` and `/x/../` as the path they resolve to: check that too.
    let resolved = resolve_segments(&decoded);
    for (fragment, why) in FORBIDDEN_PATHS {
        if decoded.contains(fragment) || resolved.contains(fragment) {
            return Some(why);
        }
    }
    for (name, value) in &spec.headers {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Some("header names must be HTTP tokens");
        }
        let name = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&name.as_str()) {
            return Some("authentication and exploit headers are never sent");
        }
        if name == "host" {
            return Some("the Host header is set by wachter, never by a check");
        }
        if value.len() > MAX_HEADER_VALUE {
            return Some("oversized header values (CitrixBleed) are never sent");
        }
    }
    None
}

/// Decodes `%XX` escapes (repeatedly, so double encoding does not hide a path) and
/// lower-cases; invalid escapes stay as they are.
fn percent_decode_lower(target: &[u8]) -> String {
    let mut current = target.to_vec();
    for _ in 0..3 {
        let mut out = Vec::with_capacity(current.len());
        let mut i = 0;
        while i < current.len() {
            if current[i] == b'%'
                && i + 2 < current.len()
                && let (Some(h), Some(l)) = (hex(current[i + 1]), hex(current[i + 2]))
            {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
            out.push(current[i]);
            i += 1;
        }
        if out == current {
            break;
        }
        current = out;
    }
    String::from_utf8_lossy(&current).to_ascii_lowercase()
}

/// The path with empty and `.` segments dropped and `..` applied, as a server resolves it;
/// both `//` and `/./` and a traversal back out of a directory collapse.
fn resolve_segments(path: &str) -> String {
    let (path, query) = path.split_once('?').map_or((path, ""), |(p, q)| (p, q));
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut resolved = format!("/{}", out.join("/"));
    if path.ends_with('/') {
        resolved.push('/');
    }
    if !query.is_empty() {
        resolved.push('?');
        resolved.push_str(query);
    }
    resolved
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestSpec {
        RequestSpec {
            name: "t".into(),
            method: method.into(),
            target: target.as_bytes().to_vec(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn exploit_and_leak_requests_are_refused() {
        let forbidden = [
            spec(
                "POST",
                "/vpn/../vpns/portal/scripts/newbm.pl",
                &[
                    ("NSC_USER", "../../../netscaler/portal/templates/x"),
                    ("NSC_NONCE", "x"),
                ],
            ),
            spec("GET", "/vpn/../vpns/portal/scripts/newbm.pl", &[]),
            spec(
                "GET",
                "/vpn/../vpns/portal/abc.xml",
                &[("NSC_USER", "../../../x"), ("NSC_NONCE", "x")],
            ),
            spec("GET", "/vpn/../vpns/portal/abc.xml", &[]),
            spec(
                "PUT",
                "/vpn/../vpns/portal/lol[%25template.new({'BLOCK'%3d'print`id`'})%25].xml",
                &[],
            ),
            spec("GET", "/vpn/%2e%2e/vpns/portal/lol%5B%25template.xml", &[]),
            spec("GET", "/vpn/../vpns/%70ortal/scripts/%6eewbm.pl", &[]),
            spec("GET", "/vpn/../vpns/%2570ortal/x.xml", &[]),
            spec("GET", "/oauth/idp/.well-known/openid-configuration", &[]),
            spec("GET", "/", &[("X-Pad", &"a".repeat(24_812))]),
            spec(
                "POST",
                "/logon/LogonPoint/Authentication/GetUserName",
                &[("Cookie", "NSC_AAAC=x")],
            ),
            spec("POST", "/p/u/doAuthentication.do", &[]),
            spec("GET", "/P/U/DOAUTHENTICATION.DO", &[]),
            spec("POST", "/saml/login", &[]),
            spec("GET", "/wsfed/passive?wctx", &[]),
            spec(
                "GET",
                "/nitro/v1/config/nsversion",
                &[("Authorization", "Basic bnNyb290Om5zcm9vdA==")],
            ),
            spec("GET", "/vpn/themes/cmd.php", &[]),
            spec("GET", "/", &[("Host", "a.test")]),
            spec("DELETE", "/", &[]),
            // Spellings a server resolves to the same forbidden path.
            spec("GET", "/vpn/../vpns/./portal/x.xml", &[]),
            spec("GET", "/vpn/../vpns//portal/x.xml", &[]),
            spec("GET", "/saml//login", &[]),
            spec("GET", "/saml/./login", &[]),
            spec("GET", "/wsfed//passive", &[]),
            spec("GET", "/vpn//themes/cmd.php", &[]),
            spec("GET", "/x/../nitro/v1/config/nsversion", &[]),
            spec("GET", "/", &[("Cookie ", "NSC_AAAC=x")]),
            spec("GET", "/", &[("Cookie\t", "NSC_AAAC=x")]),
        ];
        for s in &forbidden {
            assert!(
                refusal(s).is_some(),
                "{} {} must be refused",
                s.method,
                String::from_utf8_lossy(&s.target)
            );
        }
    }

    #[test]
    fn the_safe_probes_pass() {
        for target in [
            "/",
            "/vpn/../vpns/",
            "/vpn/../vpns/cfg/smb.conf",
            "/vpn/index.html",
            "/logon/LogonPoint/index.html",
            "/vpn/js/rdx/core/lang/rdx_en.json.gz",
            "/vpn/js/%2e./.%2e/%76pns/cfg/smb.conf",
        ] {
            assert_eq!(refusal(&spec("GET", target, &[])), None, "{target}");
        }
        assert_eq!(
            refusal(&spec(
                "HEAD",
                "/vpn/../vpns/empty.html",
                &[("Accept-Encoding", "identity")]
            )),
            None
        );
    }
}
