//! Simulated NetScaler appliances, honeypots and catch-all servers.
//!
//! Pages are synthesised to carry exactly the signals documented in research/netscaler.md
//! §2–§3 (titles, cookies, `?v=` hashes, the rdx_en.json.gz stamp, the Apache 403 page, the
//! responder's bare 403); no vendor content is copied. Paths are matched on the raw request
//! target, as the appliance's Apache did: `/vpn/../vpns/` is not `/vpns/`.

use std::io::Write;

use crate::serve::simple_response;

/// What the appliance does with `/vpns/` requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Unpatched and unmitigated: the traversal reaches `/vpns/`.
    Vulnerable,
    /// The CTX267679 responder policy answers every `/vpns/` URL with a bare 403.
    Mitigated,
    /// A fixed build: the traversal is refused like any unauthenticated `/vpns/` request.
    Patched,
}

/// Which login page the appliance serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// `/vpn/index.html`, the classic Gateway page.
    Classic,
    /// `/logon/LogonPoint/index.html` only (RfWebUI).
    LogonPoint,
}

/// One simulated appliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appliance {
    pub version: Option<&'static str>,
    /// GZIP MTIME of rdx_en.json.gz (0 = the zeroed 2026 builds).
    pub stamp: u32,
    pub vhash: Option<&'static str>,
    pub login: Login,
    pub exposure: Exposure,
    /// Serve rdx_en.json.gz wrapped in one more gzip layer with `Content-Encoding: gzip`.
    pub transfer_gzip: bool,
    /// Carry [`hostile`] payloads in every response head and in the HTML and text bodies.
    pub hostile: bool,
}

/// Markup that runs if a page ever renders scanned text as HTML instead of as text: each
/// payload sets `window.__wachter_pwned` and, where it can, `document.title` to `PWNED`.
/// The dashboard's browser test scans a host that serves these and asserts nothing ran.
pub mod hostile {
    /// The global a payload sets when it runs.
    pub const MARKER: &str = "__wachter_pwned";
    /// The `Server` header (replaces `wachter-lab`).
    pub const SERVER: &str = "<script>window.__wachter_pwned=1;document.title='PWNED'</script>";
    /// An extra header that breaks out of an attribute and a `<pre>`.
    pub const NOTE: &str =
        "\"></pre><img src=x onerror=\"window.__wachter_pwned=1;document.title='PWNED'\">";
    /// A third header: SVG, an iframe and a `javascript:` link.
    pub const LINK: &str = "<svg onload=\"window.__wachter_pwned=1\"></svg><a href=\"javascript:window.__wachter_pwned=1\">javascript:</a>";
    /// What the HTML and text bodies carry (placed after the signals the check reads).
    pub const BODY: &str = "<script>window.__wachter_pwned=1;document.title='PWNED'</script>\
\"><img src=x onerror=\"window.__wachter_pwned=1;document.title='PWNED'\">\
<svg onload=\"window.__wachter_pwned=1\"></svg>\
<a id=\"pwn\" href=\"javascript:window.__wachter_pwned=1\">javascript:</a>\
</pre></textarea></td></tr></table><body onload=\"window.__wachter_pwned=1\">\
--></title></style></script><base href=\"http://hostile.test/\">\
<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__wachter_pwned=1\">";
    /// Certificate subject values (each at most 64 characters, the X.520 upper bound).
    pub const CERT_CN: &str = "<script>window.__wachter_pwned=1</script>";
    pub const CERT_O: &str = "<img src=x onerror=window.__wachter_pwned=1>";
    pub const CERT_OU: &str = "\"><svg onload=window.__wachter_pwned=1>";
    /// Certificate SAN DNS names (IA5 strings: OpenSSL takes any ASCII). The scanner stores
    /// SANs lowercased, so these payloads only use lowercase where it matters.
    pub const CERT_SANS: [&str; 4] = [
        "<script>window.__wachter_pwned=1</script>.hostile.test",
        "\"><img src=x onerror=window.__wachter_pwned=1>.hostile.test",
        "<svg onload=window.__wachter_pwned=1>",
        "javascript:window.__wachter_pwned=1//.hostile.test",
    ];

    /// The head with the hostile headers: `Server` replaced, `X-Note` and `Link` added
    /// right after the status line. Bodies are left alone, so lengths stay right.
    pub(crate) fn dress_head(response: Vec<u8>) -> Vec<u8> {
        let Some(line_end) = response.windows(2).position(|w| w == b"\r\n") else {
            return response;
        };
        let head_end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |p| p + 4);
        let mut out = Vec::with_capacity(response.len() + 512);
        out.extend_from_slice(&response[..line_end + 2]);
        out.extend_from_slice(
            format!("Server: {SERVER}\r\nX-Note: {NOTE}\r\nLink: {LINK}\r\n").as_bytes(),
        );
        for line in response[line_end + 2..head_end].split_inclusive(|b| *b == b'\n') {
            if !line.to_ascii_lowercase().starts_with(b"server:") {
                out.extend_from_slice(line);
            }
        }
        out.extend_from_slice(&response[head_end..]);
        out
    }
}

/// An answer and whether the connection closes after it.
pub struct Answer {
    pub bytes: Vec<u8>,
    pub close: bool,
}

impl Answer {
    fn keep(bytes: Vec<u8>) -> Self {
        Answer {
            bytes,
            close: false,
        }
    }
}

const SMB_CONF: &str =
    "[global]\n\tencrypt passwords = yes\n\tname resolve order = lmhosts wins host bcast\n";

const APACHE_403_VPNS: &str = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>403 Forbidden</title>\n</head><body>\n<h1>Forbidden</h1>\n<p>You don't have permission to access /vpns/\non this server.</p>\n</body></html>\n";

const APACHE_404: &str = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n</body></html>\n";

fn redirect(location: &str, cookie: bool) -> Vec<u8> {
    let cookie = if cookie {
        "Set-Cookie: NSC_TEMP=xyz;Path=/;expires=Wednesday, 09-Nov-1999 23:12:40 GMT;Secure\r\n"
    } else {
        ""
    };
    format!("HTTP/1.1 302 Object Moved\r\nLocation: {location}\r\n{cookie}Content-Length: 0\r\nConnection: keep-alive\r\n\r\n").into_bytes()
}

fn not_found() -> Vec<u8> {
    simple_response(
        404,
        "Not Found",
        "text/html; charset=iso-8859-1",
        APACHE_404.as_bytes(),
        true,
    )
}

/// `text` with the hostile payloads appended when the appliance is hostile.
fn with_payload(text: &str, app: &Appliance) -> String {
    if app.hostile {
        format!("{text}{}\n", hostile::BODY)
    } else {
        text.to_string()
    }
}

fn classic_page(vhash: Option<&str>) -> Vec<u8> {
    classic_page_with(vhash, "")
}

/// The classic login page; `extra` goes into the body after the form (the title and the
/// `?v=` hashes the check reads stay as they are).
fn classic_page_with(vhash: Option<&str>, extra: &str) -> Vec<u8> {
    let v = vhash.map(|h| format!("?v={h}")).unwrap_or_default();
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"UTF-8\">\n<title>Citrix Gateway</title>\n\
<link rel=\"stylesheet\" href=\"/vpn/images/ctxs.core.min.css{v}\">\n<script src=\"/vpn/js/gateway_login_view.js{v}\"></script>\n\
</head><body class=\"loginbody\"><form action=\"/cgi/login\" method=\"post\"></form>{extra}</body></html>\n"
    );
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\nSet-Cookie: NSC_TEMP=xyz;Path=/;expires=Wednesday, 09-Nov-1999 23:12:40 GMT;Secure\r\n\
Set-Cookie: NSC_PERS=xyz;Path=/;expires=Wednesday, 09-Nov-1999 23:12:40 GMT;Secure\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        body.len()
    );
    [head.into_bytes(), body.into_bytes()].concat()
}

fn logonpoint_page(vhash: Option<&str>) -> Vec<u8> {
    let v = vhash.map(|h| format!("?v={h}")).unwrap_or_default();
    let body = format!(
        "<!DOCTYPE html>\n<html><head>\n<title class=\"_ctxstxt_NetscalerGateway\">Citrix Gateway</title>\n\
<script src=\"receiver/js/ctxs.core.min.js{v}\"></script>\n</head><body><div class=\"_ctxstxt_CitrixCopyright\"></div>\n\
<script>CTXS.Extensions = [];</script></body></html>\n"
    );
    simple_response(200, "OK", "text/html; charset=UTF-8", body.as_bytes(), true)
}

/// `rdx_en.json.gz` with FNAME `rdx_en.json` and the build's MTIME.
pub fn rdx_file(stamp: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = flate2::GzBuilder::new()
        .filename("rdx_en.json")
        .mtime(stamp)
        .write(&mut out, flate2::Compression::default());
    let _ = encoder.write_all(
        b"{\"lang\":\"en\",\"strings\":{\"Logon\":\"Log On\",\"User name\":\"User name\"}}",
    );
    let _ = encoder.finish();
    out
}

fn rdx_response(app: &Appliance) -> Vec<u8> {
    let file = rdx_file(app.stamp);
    if !app.transfer_gzip {
        return simple_response(200, "OK", "application/x-gzip", &file, true);
    }
    let mut outer = Vec::new();
    let mut encoder = flate2::write::GzEncoder::new(&mut outer, flate2::Compression::default());
    let _ = encoder.write_all(&file);
    let _ = encoder.finish();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-gzip\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        outer.len()
    );
    [head.into_bytes(), outer].concat()
}

/// Whether the text-mode-decoded URL contains `/vpns/`, as the responder policy tests it.
fn decoded_contains_vpns(path: &[u8]) -> bool {
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%'
            && i + 2 < path.len()
            && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&path[i + 1..i + 3]), 16)
        {
            decoded.push(b);
            i += 3;
            continue;
        }
        decoded.push(path[i]);
        i += 1;
    }
    decoded
        .windows(6)
        .any(|w| w.eq_ignore_ascii_case(b"/vpns/"))
}

/// The appliance's answer to a raw request target.
pub fn appliance(app: &Appliance, path: &[u8]) -> Answer {
    let answer = appliance_answer(app, path);
    if app.hostile {
        Answer {
            bytes: hostile::dress_head(answer.bytes),
            close: answer.close,
        }
    } else {
        answer
    }
}

fn appliance_answer(app: &Appliance, path: &[u8]) -> Answer {
    if app.hostile {
        let html = |status, reason, page: &str| {
            simple_response(
                status,
                reason,
                "text/html; charset=iso-8859-1",
                with_payload(page, app).as_bytes(),
                true,
            )
        };
        // The same signals as the plain appliance, each page with the payloads too.
        match path {
            b"/vpn/index.html" if app.login == Login::Classic => {
                return Answer::keep(classic_page_with(app.vhash, hostile::BODY));
            }
            b"/vpn/../vpns/" if app.exposure == Exposure::Vulnerable => {
                return Answer::keep(html(403, "Forbidden", APACHE_403_VPNS));
            }
            b"/vpn/../vpns/cfg/smb.conf" if app.exposure == Exposure::Vulnerable => {
                let conf = format!("{SMB_CONF}\tcomment = {}\n", hostile::BODY);
                return Answer::keep(simple_response(
                    200,
                    "OK",
                    "text/plain",
                    conf.as_bytes(),
                    true,
                ));
            }
            p if !p.starts_with(b"/vpn") && !p.starts_with(b"/logon/") && p != b"/" => {
                return Answer::keep(html(404, "Not Found", APACHE_404));
            }
            _ => {}
        }
    }
    if app.exposure == Exposure::Mitigated && decoded_contains_vpns(path) {
        return Answer {
            bytes: b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec(),
            close: true,
        };
    }
    let login = match app.login {
        Login::Classic => "/vpn/index.html",
        Login::LogonPoint => "/logon/LogonPoint/index.html",
    };
    Answer::keep(match path {
        b"/" => redirect(login, true),
        b"/vpn/index.html" => match app.login {
            Login::Classic => classic_page(app.vhash),
            Login::LogonPoint => redirect("/logon/LogonPoint/index.html", false),
        },
        b"/logon/LogonPoint/index.html" if app.login == Login::LogonPoint => {
            logonpoint_page(app.vhash)
        }
        b"/vpn/js/rdx/core/lang/rdx_en.json.gz" => rdx_response(app),
        b"/vpn/../vpns/" if app.exposure == Exposure::Vulnerable => simple_response(
            403,
            "Forbidden",
            "text/html; charset=iso-8859-1",
            APACHE_403_VPNS.as_bytes(),
            true,
        ),
        b"/vpn/../vpns/cfg/smb.conf" if app.exposure == Exposure::Vulnerable => {
            simple_response(200, "OK", "text/plain", SMB_CONF.as_bytes(), true)
        }
        // Unauthenticated /vpns/ (and, once patched, the traversal): back to the login page.
        p if p.starts_with(b"/vpns/") || p.starts_with(b"/vpn/../vpns/") => redirect(login, false),
        _ => not_found(),
    })
}

/// MalwareTech-style honeypot: `200 OK`, `Server: Apache`, for everything, including the
/// emulated 403 page and a fake smb.conf.
pub fn honeypot(path: &[u8]) -> Answer {
    let (content_type, body): (&str, Vec<u8>) = if path.ends_with(b"smb.conf") {
        ("text/plain", SMB_CONF.as_bytes().to_vec())
    } else if path.ends_with(b"/vpns/") {
        ("text/html", APACHE_403_VPNS.as_bytes().to_vec())
    } else {
        let page = classic_page(None);
        let split = page
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |p| p + 4);
        ("text/html", page[split..].to_vec())
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nServer: Apache\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    Answer::keep([head.into_bytes(), body].concat())
}

/// A web application that answers 200 with its front page for any path.
pub fn catch_all() -> Answer {
    let body = b"<!DOCTYPE html><html><head><title>ShopCMS</title></head><body><h1>Welcome to our shop</h1></body></html>";
    Answer::keep(simple_response(
        200,
        "OK",
        "text/html; charset=utf-8",
        body,
        true,
    ))
}

/// The default virtual server of an appliance reached without the right SNI.
pub fn default_vserver() -> Answer {
    Answer::keep(not_found())
}
