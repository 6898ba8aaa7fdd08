//! What a request must look like before any handler sees it.
//!
//! - [`known_host`]: the `Host` names this server. A page on `evil.example` whose name is
//!   rebound to 127.0.0.1 is same-origin with `http://evil.example:8460` and could read a
//!   loopback-only dashboard's answers (DNS rebinding); its requests carry
//!   `Host: evil.example:8460` and are answered `421 Misdirected Request`. Accepted: the
//!   listen address, `localhost` with the listen port, loopback addresses when listening on
//!   loopback, any address when listening on all of them, and the names a reverse proxy
//!   forwards (`public_hosts`). An address is safe to accept: rebinding needs a name.
//! - [`same_origin_writes`]: a POST (any method but GET, HEAD, OPTIONS) from another site
//!   is refused `403`, the login form included (login CSRF). Browsers say where a request
//!   comes from in `Sec-Fetch-Site` and `Origin`; our own pages send `Origin: null`
//!   (their `Referrer-Policy: no-referrer` hides it) with `Sec-Fetch-Site: same-origin`.
//!   A request with neither header (curl, scripts, old browsers) passes; the CSRF token
//!   still applies to it.
//! - [`single_cookies`]: our cookies at most once each. A second `wachter_session` or
//!   `wachter_login` can only have been planted (by a sibling subdomain, or another
//!   service on the same host, since cookies are not isolated by port) to take precedence
//!   over ours: `400`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::{LOGIN_COOKIE, SESSION_COOKIE, cookies, is_read_method};
use crate::error::WebError;

/// The `Host` values this server answers to (see the module doc).
#[derive(Clone, Debug)]
pub struct HostPolicy {
    listen: SocketAddr,
    /// Lower-case names without a trailing dot, each with its port if one was given.
    public: Vec<(String, Option<u16>)>,
}

impl HostPolicy {
    /// The policy of a server listening on `listen` (its real port, not 0) behind
    /// `public_hosts` (`name` or `name:port`; a name alone matches any port).
    pub fn new(listen: SocketAddr, public_hosts: &[String]) -> Result<HostPolicy, WebError> {
        let public = public_hosts
            .iter()
            .map(|entry| {
                split_authority(entry.trim()).ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "public host {entry:?}: expected a host name or address, optionally with :port"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HostPolicy { listen, public })
    }

    /// The policy of a server listening on `listen` with no public names.
    pub fn local(listen: SocketAddr) -> HostPolicy {
        HostPolicy {
            listen,
            public: Vec::new(),
        }
    }

    /// Whether `authority` (a `Host` value: `name`, `name:port`, `[v6]:port`) names us.
    pub fn allows(&self, authority: &str) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        let our_port = port.unwrap_or(80) == self.listen.port();
        if let Some(address) = parse_address(&host) {
            let listen = self.listen.ip();
            let ours = address == listen
                || listen.is_unspecified()
                || (listen.is_loopback() && address.is_loopback());
            return our_port && ours;
        }
        if host == "localhost" && our_port {
            return true;
        }
        self.public
            .iter()
            .any(|(name, only)| *name == host && only.is_none_or(|only| Some(only) == port))
    }
}

/// `host[:port]` split into the lower-case host (brackets of IPv6 kept, one trailing dot
/// removed) and the port; `None` when it is not an authority we could have a name for.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.len() > 255 || authority.contains(['/', '@', ' ']) {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && (parse_address(&host).is_some()
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    valid.then_some((host, port))
}

/// An IPv4 address, or an IPv6 address in brackets.
fn parse_address(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// Middleware: `421` unless the request's `Host` (and the authority of an absolute
/// request target, if any) names this server; also without a `Host`.
pub async fn known_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST);
    let target = request.uri().authority().map(|a| a.as_str());
    let named = host.map(|h| h.to_str().unwrap_or(""));
    let allowed = match (named, target) {
        (None, None) => false,
        (named, target) => named
            .into_iter()
            .chain(target)
            .all(|authority| state.hosts.allows(authority)),
    };
    if allowed {
        return next.run(request).await;
    }
    let shown: String = named.or(target).unwrap_or("").chars().take(100).collect();
    tracing::warn!(
        host = ?shown,
        path = %request.uri().path(),
        "request for another host name refused (not the listen address, localhost or a public host)"
    );
    refuse(
        &request,
        StatusCode::MISDIRECTED_REQUEST,
        "This server does not answer to that host name. Behind a reverse proxy, list the name the proxy forwards under public_hosts.",
    )
}

/// Middleware: `403` for a write (any method but GET, HEAD, OPTIONS) that a browser says
/// comes from another site (see the module doc).
pub async fn same_origin_writes(request: Request, next: Next) -> Response {
    if is_read_method(request.method()) || from_same_origin(request.headers()) {
        return next.run(request).await;
    }
    let origin: String = header_text(request.headers(), header::ORIGIN)
        .chars()
        .take(100)
        .collect();
    let site: String = header_text(request.headers(), "sec-fetch-site")
        .chars()
        .take(30)
        .collect();
    tracing::warn!(
        origin = ?origin,
        sec_fetch_site = ?site,
        path = %request.uri().path(),
        "cross-site write refused"
    );
    refuse(
        &request,
        StatusCode::FORBIDDEN,
        "This form was sent from another site; open the dashboard itself and try again.",
    )
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> &str {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .unwrap_or("")
}

/// Whether the browser's own account of a write says it comes from our origin; a request
/// without either header (not from a browser, or a very old one) counts as ours.
fn from_same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    if let Some(site) = &fetch_site
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin = origin.to_str().unwrap_or("").trim();
    if origin == "null" {
        // Hidden by a referrer policy (ours) or sent from a sandbox: only a browser that
        // also said `same-origin` is believed.
        return fetch_site.is_some();
    }
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (authority, host) {
        (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host.trim()),
        _ => false,
    }
}

/// Middleware: `400` when one of our cookies comes twice (see the module doc).
pub async fn single_cookies(request: Request, next: Next) -> Response {
    let Some(name) = [SESSION_COOKIE, LOGIN_COOKIE]
        .into_iter()
        .find(|name| cookie_count(request.headers(), name) > 1)
    else {
        return next.run(request).await;
    };
    tracing::warn!(cookie = name, path = %request.uri().path(), "request with a doubled cookie refused");
    refuse(
        &request,
        StatusCode::BAD_REQUEST,
        &format!(
            "Your browser sent the cookie {name} more than once; another site on this domain may have set one. Clear this site's cookies and log in again."
        ),
    )
}

/// How often cookie `name` appears in the request's `Cookie` headers.
pub fn cookie_count(headers: &HeaderMap, name: &str) -> usize {
    cookies(headers).filter(|(key, _)| key == name).count()
}

/// A refusal before any handler ran: JSON under the API, else the error page.
fn refuse(request: &Request, status: StatusCode, message: &str) -> Response {
    if request.uri().path().starts_with(crate::api::PREFIX) {
        let body = crate::error::ErrorBody {
            error: message.to_string(),
        };
        return (status, axum::Json(body)).into_response();
    }
    let context = serde_json::json!({ "status": status.as_u16(), "message": message });
    match crate::templates::render("error.html", context) {
        Ok(page) => (status, page).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the error page");
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                format!("{message}\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str, public: &[&str]) -> HostPolicy {
        let public: Vec<String> = public.iter().map(|s| s.to_string()).collect();
        HostPolicy::new(listen.parse().unwrap(), &public).unwrap()
    }

    #[test]
    fn only_our_own_names_are_accepted_as_host() {
        let loopback = policy("127.0.0.1:8460", &[]);
        let everywhere = policy("0.0.0.0:8460", &["cert.example", "Proxy.Example.:8443"]);
        let v6 = policy("[::1]:8460", &[]);
        let cases: &[(&HostPolicy, &str, bool)] = &[
            (&loopback, "127.0.0.1:8460", true),
            (&loopback, "localhost:8460", true),
            (&loopback, "LOCALHOST:8460", true),
            (&loopback, "localhost.:8460", true),
            (&loopback, "127.0.0.2:8460", true),
            (&loopback, "[::1]:8460", true),
            (&loopback, "127.0.0.1:8461", false),
            (&loopback, "localhost:8461", false),
            (&loopback, "127.0.0.1", false),
            (&loopback, "localhost", false),
            (&loopback, "192.0.2.1:8460", false),
            (&loopback, "evil.example:8460", false),
            (&loopback, "localhost.evil.example:8460", false),
            (&loopback, "127.0.0.1.evil.example:8460", false),
            (&loopback, "", false),
            (&loopback, ":8460", false),
            (&loopback, "127.0.0.1:8460:1", false),
            (&loopback, "user@127.0.0.1:8460", false),
            (&loopback, "::1:8460", false),
            (&loopback, "[::1:8460", false),
            (&loopback, "127.1:8460", false),
            (&everywhere, "192.0.2.7:8460", true),
            (&everywhere, "[2001:db8::7]:8460", true),
            (&everywhere, "192.0.2.7:80", false),
            (&everywhere, "cert.example", true),
            (&everywhere, "CERT.example:443", true),
            (&everywhere, "cert.example.", true),
            (&everywhere, "proxy.example:8443", true),
            (&everywhere, "proxy.example", false),
            (&everywhere, "proxy.example:443", false),
            (&everywhere, "other.example", false),
            (&v6, "[::1]:8460", true),
            (&v6, "127.0.0.1:8460", true),
            (&v6, "[::2]:8460", false),
        ];
        for (policy, host, allowed) in cases {
            assert_eq!(
                policy.allows(host),
                *allowed,
                "{host} for {:?}",
                policy.listen
            );
        }
    }

    #[test]
    fn a_malformed_public_host_is_refused_up_front() {
        for bad in [
            "https://cert.example",
            "cert.example/x",
            "cert.example:http",
            "",
        ] {
            let result = HostPolicy::new("127.0.0.1:8460".parse().unwrap(), &[bad.to_string()]);
            assert!(result.is_err(), "{bad:?}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn writes_are_judged_by_sec_fetch_site_and_origin() {
        let host = ("host", "127.0.0.1:8460");
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[host], true),
            (&[host, ("sec-fetch-site", "same-origin")], true),
            (&[host, ("sec-fetch-site", "none")], true),
            (&[host, ("sec-fetch-site", "same-site")], false),
            (&[host, ("sec-fetch-site", "cross-site")], false),
            (&[host, ("origin", "http://127.0.0.1:8460")], true),
            (&[host, ("origin", "https://127.0.0.1:8460")], true),
            (&[host, ("origin", "http://127.0.0.1:8461")], false),
            (&[host, ("origin", "http://evil.example")], false),
            (&[host, ("origin", "null")], false),
            (&[host, ("origin", "file://")], false),
            (
                &[host, ("origin", "null"), ("sec-fetch-site", "same-origin")],
                true,
            ),
            (
                &[
                    host,
                    ("origin", "http://evil.example"),
                    ("sec-fetch-site", "same-origin"),
                ],
                false,
            ),
            (
                &[
                    host,
                    ("origin", "http://127.0.0.1:8460"),
                    ("sec-fetch-site", "cross-site"),
                ],
                false,
            ),
            (&[("origin", "http://127.0.0.1:8460")], false),
        ];
        for (pairs, allowed) in cases {
            assert_eq!(from_same_origin(&headers(pairs)), *allowed, "{pairs:?}");
        }
    }

    #[test]
    fn cookies_are_counted_across_headers() {
        let cases: &[(&[&str], usize)] = &[
            (&[], 0),
            (&["wachter_session=a"], 1),
            (&["x_wachter_session=a; wachter_login=b"], 0),
            (&["wachter_session=a; wachter_session=b"], 2),
            (&["wachter_session=a", "wachter_session=b"], 2),
            (&["other=1; wachter_session=", " wachter_session =x"], 2),
        ];
        for (values, count) in cases {
            let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("cookie", *v)).collect();
            assert_eq!(
                cookie_count(&headers(&pairs), SESSION_COOKIE),
                *count,
                "{values:?}"
            );
        }
    }
}
