//! How each lab host behaves on a connection.
//!
//! Plain-HTTP hosts answer anything that is not an HTTP request (a TLS ClientHello, say)
//! with `400 Bad Request`, as Apache and nginx do, so a scanner can tell the port's
//! transport from the answer. Hostile hosts misbehave in exactly one way each.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::SslAcceptor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

use crate::{Behaviour, netscaler};

/// Longest request head a lab host reads.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long a lab host waits for the next request on a kept-alive connection.
const IDLE: Duration = Duration::from_secs(15);
/// Requests served on one connection before the host closes it.
const MAX_REQUESTS_PER_CONNECTION: usize = 100;
/// How long a tarpit or an endless server keeps a connection at most.
const HOLD_AT_MOST: Duration = Duration::from_secs(300);

/// One request head as a lab host received it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub host: std::net::SocketAddr,
    pub head: Vec<u8>,
}

/// The requests the lab received, capped so a long-running lab stays bounded.
#[derive(Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<LoggedRequest>>>,
    enabled: bool,
}

impl RequestLog {
    pub const CAP: usize = 100_000;

    pub fn new(enabled: bool) -> Self {
        RequestLog {
            entries: Arc::default(),
            enabled,
        }
    }

    fn push(&self, host: std::net::SocketAddr, head: &[u8]) {
        if !self.enabled {
            return;
        }
        if let Ok(mut entries) = self.entries.lock()
            && entries.len() < Self::CAP
        {
            entries.push(LoggedRequest {
                host,
                head: head.to_vec(),
            });
        }
    }

    /// A copy of what was logged so far.
    pub fn snapshot(&self) -> Vec<LoggedRequest> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Everything a connection handler needs.
#[derive(Clone)]
pub struct HostContext {
    pub behaviour: Behaviour,
    pub local: std::net::SocketAddr,
    pub tls: Option<Arc<SslAcceptor>>,
    /// The name a virtual host answers to (SNI), for SNI-only hosts.
    pub vhost: Option<String>,
    pub log: RequestLog,
    pub drip_interval: Duration,
}

/// Serves one accepted connection according to the host's behaviour.
pub async fn handle(stream: TcpStream, ctx: HostContext) {
    let _ = stream.set_nodelay(true);
    match ctx.behaviour {
        Behaviour::Closed => {}
        Behaviour::SilentClose => drop(stream),
        Behaviour::Tarpit => tarpit(stream).await,
        Behaviour::OtherProtocol => other_protocol(stream).await,
        Behaviour::Garbage => garbage(stream).await,
        Behaviour::TlsAlert => tls_alert(stream).await,
        Behaviour::SlowDrip => slow_drip(stream, ctx.drip_interval).await,
        behaviour if behaviour.needs_tls() => {
            let Some(acceptor) = ctx.tls.clone() else {
                return;
            };
            let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else {
                return;
            };
            let Ok(mut tls) = tokio_openssl::SslStream::new(ssl, stream) else {
                return;
            };
            let accepted = timeout(IDLE, std::pin::Pin::new(&mut tls).accept()).await;
            if matches!(accepted, Ok(Ok(()))) {
                let sni = tls
                    .ssl()
                    .servername(openssl::ssl::NameType::HOST_NAME)
                    .map(str::to_ascii_lowercase);
                let on_vhost = ctx.vhost.is_none() || sni == ctx.vhost;
                serve_http(&mut tls, &ctx, on_vhost).await;
            }
        }
        _ => {
            let mut stream = stream;
            serve_http(&mut stream, &ctx, true).await;
            if ctx.behaviour == Behaviour::ResetMidResponse {
                // SO_LINGER 0: the close below sends RST instead of FIN.
                let _ = socket_linger_zero(&stream);
            }
        }
    }
}

#[allow(deprecated)]
fn socket_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_linger(Some(Duration::ZERO))
}

/// Reads one request head. `Err(bytes)` when what arrived is not an HTTP request.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Result<Vec<u8>, Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if !buf
            .iter()
            .take(8)
            .all(|b| b.is_ascii_graphic() || *b == b' ')
        {
            return Some(Err(buf));
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end + 4);
            return Some(Ok(buf));
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Some(Err(buf));
        }
    }
}

async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    ctx: &HostContext,
    on_vhost: bool,
) {
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let head = match read_request(stream).await {
            None => return,
            Some(Err(_junk)) => {
                let _ = stream
                    .write_all(&simple_response(
                        400,
                        "Bad Request",
                        "text/html",
                        b"<h1>Bad Request</h1>",
                        false,
                    ))
                    .await;
                return;
            }
            Some(Ok(head)) => head,
        };
        ctx.log.push(ctx.local, &head);
        let path = request_path(&head);
        if let Some(app) = ctx.behaviour.appliance() {
            let answer = if on_vhost {
                netscaler::appliance(&app, path)
            } else {
                netscaler::default_vserver()
            };
            if stream.write_all(&answer.bytes).await.is_err() || answer.close {
                return;
            }
            continue;
        }
        match ctx.behaviour {
            Behaviour::Honeypot => {
                if stream
                    .write_all(&netscaler::honeypot(path).bytes)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Behaviour::CatchAll => {
                if stream
                    .write_all(&netscaler::catch_all().bytes)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Behaviour::Bare403 => {
                let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                return;
            }
            Behaviour::EndlessBody => {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                    )
                    .await;
                let block = [b'A'; 16 * 1024];
                let _ = timeout(HOLD_AT_MOST, async {
                    while stream.write_all(&block).await.is_ok() {}
                })
                .await;
                return;
            }
            Behaviour::ResetMidResponse => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n<html><body>").await;
                let _ = stream.write_all(&[b'x'; 1000]).await;
                let _ = stream.flush().await;
                return;
            }
            _ => {}
        }
        let response = if path == b"/.well-known/security.txt" {
            // RFC 9116, for the name the client asked for (attribution's last resort).
            let host = header_value(&head, b"host").unwrap_or("lab.test");
            let host = host.split(':').next().unwrap_or(host);
            let body = format!(
                "# wachter lab\nContact: mailto:security@{host}\nExpires: 2099-12-31T23:59:59Z\n"
            );
            simple_response(
                200,
                "OK",
                "text/plain; charset=utf-8",
                body.as_bytes(),
                true,
            )
        } else if path == b"/" {
            let body = format!(
                "<!DOCTYPE html><html><head><title>wachter lab: {}</title></head><body><p>A simulated host.</p></body></html>",
                ctx.behaviour.name()
            );
            simple_response(200, "OK", "text/html; charset=utf-8", body.as_bytes(), true)
        } else {
            simple_response(404, "Not Found", "text/html", b"<h1>Not Found</h1>", true)
        };
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// The value of a request header (case-insensitive name), if it is text.
fn header_value<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a str> {
    head.split(|b| *b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|b| *b == b':')?;
        let (key, value) = line.split_at(colon);
        if !key.eq_ignore_ascii_case(name) {
            return None;
        }
        std::str::from_utf8(&value[1..]).ok().map(str::trim)
    })
}

fn request_path(head: &[u8]) -> &[u8] {
    let line_end = head.iter().position(|b| *b == b'\r').unwrap_or(head.len());
    let line = &head[..line_end];
    let mut parts = line.split(|b| *b == b' ');
    parts.next();
    parts.next().unwrap_or(b"")
}

/// A complete response with `Content-Length`.
pub fn simple_response(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: wachter-lab\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn tarpit(mut stream: TcpStream) {
    // Accept, read and discard, never answer; release when the client gives up.
    let mut sink = [0u8; 1024];
    let _ = timeout(HOLD_AT_MOST, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn other_protocol(mut stream: TcpStream) {
    let _ = stream
        .write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        .await;
    let mut sink = [0u8; 1024];
    let _ = timeout(Duration::from_secs(5), stream.read(&mut sink)).await;
    let _ = stream
        .write_all(b"Invalid SSH identification string.\r\n")
        .await;
}

async fn garbage(mut stream: TcpStream) {
    let mut state: u64 = 0x5EED;
    let mut bytes = Vec::with_capacity(4096);
    bytes.push(0xA5); // neither a TLS record type nor the start of "HTTP/"
    while bytes.len() < 4096 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        bytes.push((state >> 33) as u8);
    }
    let _ = stream.write_all(&bytes).await;
}

async fn tls_alert(mut stream: TcpStream) {
    let mut hello = [0u8; 4096];
    let _ = timeout(Duration::from_secs(5), stream.read(&mut hello)).await;
    // A fatal handshake_failure alert (TLS 1.0 record).
    let _ = stream
        .write_all(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28])
        .await;
}

async fn slow_drip(mut stream: TcpStream, interval: Duration) {
    let head = b"HTTP/1.1 200 OK\r\nX-Drip: ";
    let _ = timeout(HOLD_AT_MOST, async {
        for byte in head.iter().chain(std::iter::repeat(&b'z')) {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            sleep(interval).await;
        }
    })
    .await;
}
