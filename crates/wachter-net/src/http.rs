//! Byte-exact HTTP/1.1 for probes.
//!
//! General-purpose clients are the wrong tool here: reqwest and the `url` crate rewrite
//! `/vpn/../vpns/` to `/vpns/` (the false-negative trap of CVE-2019-19781 checks), hyper
//! hides the raw header block that evidence needs, and strict parsers reject the bare
//! `HTTP/1.1 403 Forbidden\r\n\r\n` that a NetScaler responder policy sends. So wachter
//! writes the request line itself, byte for byte, and reads the answer with a lenient
//! parser that keeps the bytes exactly as received.
//!
//! Every read is bounded twice: by size (head and body caps) and by time (one deadline
//! for the whole exchange, so a server dripping a byte a second cannot hold a probe
//! forever). Bodies are never decompressed and redirects are never followed: both are
//! recorded as they came.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};
use wachter_core::record::{Blob, HttpExchange, HttpOutcome};

pub use wachter_core::check::RequestSpec;

/// Size and time caps of one exchange.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub max_head: usize,
    pub max_body: usize,
    /// Time for one whole exchange, from writing the request to the last body byte.
    pub response_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head: 64 * 1024,
            max_body: 64 * 1024,
            response_timeout: Duration::from_secs(10),
        }
    }
}

/// A request that cannot be written safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request {0} contains CR, LF or NUL, which would split the request")]
    Injection(&'static str),
    #[error("request method {0:?} is not an HTTP token")]
    Method(String),
    #[error("request refused by the safety deny-list: {0}")]
    Forbidden(&'static str),
}

/// Renders the request bytes. The target is copied verbatim; requests on the safety
/// deny-list and bytes that would end the request line early (CR, LF, NUL) are refused.
pub fn render_request(
    spec: &RequestSpec,
    host: &str,
    user_agent: &str,
) -> Result<Vec<u8>, RequestError> {
    if let Some(why) = wachter_core::safety::refusal(spec) {
        return Err(RequestError::Forbidden(why));
    }
    if spec.method.is_empty()
        || !spec
            .method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
    {
        return Err(RequestError::Method(spec.method.clone()));
    }
    let unsafe_byte = |bytes: &[u8]| bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0));
    if unsafe_byte(&spec.target) {
        return Err(RequestError::Injection("target"));
    }
    if unsafe_byte(host.as_bytes()) || unsafe_byte(user_agent.as_bytes()) {
        return Err(RequestError::Injection("header"));
    }
    for (name, value) in &spec.headers {
        if unsafe_byte(name.as_bytes()) || unsafe_byte(value.as_bytes()) || name.contains(':') {
            return Err(RequestError::Injection("header"));
        }
    }
    let mut out = Vec::with_capacity(128 + spec.target.len());
    out.extend_from_slice(spec.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&spec.target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: ");
    out.extend_from_slice(user_agent.as_bytes());
    out.extend_from_slice(b"\r\nAccept: */*\r\nConnection: keep-alive\r\n");
    for (name, value) in &spec.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// The `Host` header value for a target: the hostname, or the address (bracketed for IPv6),
/// with the port unless it is the scheme's default.
pub fn host_header(hostname: Option<&str>, ip: std::net::IpAddr, port: u16, tls: bool) -> String {
    let host = match (hostname, ip) {
        (Some(name), _) => name.to_string(),
        (None, std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        (None, std::net::IpAddr::V4(v4)) => v4.to_string(),
    };
    let default_port = if tls { 443 } else { 80 };
    if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// A parsed response head, with the bytes as they came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// `HTTP/1.0` (or older) semantics: no keep-alive unless asked for.
    pub http10: bool,
    pub status_line: Vec<u8>,
    /// The raw header lines after the status line, without the terminating blank line.
    pub header_block: Vec<u8>,
    /// Header names lower-cased, values trimmed; invalid lines are skipped.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .any(|(_, v)| {
                String::from_utf8_lossy(v)
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
    }
}

/// Where the head ends in `buf` (index just past the blank line), if it is complete.
/// Tolerates bare `\n` line endings.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(pos) = buf[i..].iter().position(|b| *b == b'\n') {
        let nl = i + pos;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Whether `buf` could still become an HTTP response (used to give up early on garbage).
pub fn looks_like_http(buf: &[u8]) -> bool {
    let n = buf.len().min(5);
    buf[..n].eq_ignore_ascii_case(&b"HTTP/"[..n])
}

/// Parses a head leniently. `None` when the status line is not HTTP.
pub fn parse_head(head: &[u8]) -> Option<Head> {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let status_line = trim_cr(&head[..line_end]);
    if status_line.len() < 12 || !status_line[..5].eq_ignore_ascii_case(b"HTTP/") {
        return None;
    }
    let text = String::from_utf8_lossy(status_line);
    let mut parts = text.split_ascii_whitespace();
    let version = parts.next()?;
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = code.parse().ok()?;
    let http10 = matches!(&version[5..], "1.0" | "0.9");
    let rest = head.get(line_end + 1..).unwrap_or_default();
    // Drop the terminating blank line from the block.
    let mut block_end = rest.len();
    while block_end > 0 && matches!(rest[block_end - 1], b'\r' | b'\n') {
        block_end -= 1;
    }
    let header_block = rest[..block_end].to_vec();
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for raw_line in header_block.split(|b| *b == b'\n') {
        let line = trim_cr(raw_line);
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            // Obsolete line folding: continue the previous value.
            if let Some((_, value)) = headers.last_mut() {
                value.push(b' ');
                value.extend_from_slice(trim(line));
            }
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
            continue;
        }
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            trim(&line[colon + 1..]).to_vec(),
        ));
    }
    Some(Head {
        status,
        http10,
        status_line: status_line.to_vec(),
        header_block,
        headers,
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// One finished exchange and whether the connection may carry another request.
#[derive(Debug)]
pub struct Exchanged {
    pub exchange: HttpExchange,
    pub reusable: bool,
    /// The parsed head, for callers that classify responses.
    pub head: Option<Head>,
}

enum BodyFraming {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Writes `request` and reads one response from `stream`, within `limits` and `deadline`.
pub async fn exchange<S>(
    stream: &mut S,
    name: &str,
    request: Vec<u8>,
    connection: u32,
    limits: &HttpLimits,
    deadline: Instant,
) -> Exchanged
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let deadline = deadline.min(started + limits.response_timeout);
    let is_head = request.starts_with(b"HEAD ");
    let mut ex = HttpExchange {
        name: name.to_string(),
        request: Blob(request),
        outcome: HttpOutcome::Error,
        detail: None,
        status: None,
        status_line: None,
        headers: None,
        body: None,
        body_read: 0,
        body_complete: false,
        connection,
        first_byte_ms: None,
        total_ms: 0,
    };
    let finish = |mut ex: HttpExchange, reusable: bool, head: Option<Head>| {
        ex.total_ms = started.elapsed().as_millis() as u64;
        Exchanged {
            exchange: ex,
            reusable,
            head,
        }
    };

    match timeout_at(deadline, async {
        stream.write_all(ex.request.as_bytes()).await?;
        stream.flush().await
    })
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            ex.outcome = io_outcome(&e);
            ex.detail = Some(format!("writing the request: {e}"));
            return finish(ex, false, None);
        }
        Err(_) => {
            ex.outcome = HttpOutcome::Timeout;
            ex.detail = Some("writing the request timed out".into());
            return finish(ex, false, None);
        }
    }

    // Read the head (skipping interim 1xx responses).
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut interim = 0;
    let (head, mut rest) = loop {
        let head_end = loop {
            // A stray blank line before the status line is tolerated.
            let blank = buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            buf.drain(..blank);
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            if !looks_like_http(&buf) {
                ex.outcome = HttpOutcome::NotHttp;
                ex.detail = Some("the answer is not an HTTP response".into());
                ex.body = Some(Blob(buf));
                return finish(ex, false, None);
            }
            if buf.len() > limits.max_head {
                ex.outcome = HttpOutcome::HeadTooLarge;
                ex.detail = Some(format!(
                    "response head larger than {} bytes",
                    limits.max_head
                ));
                ex.body = Some(Blob(buf[..limits.max_head.min(4096)].to_vec()));
                return finish(ex, false, None);
            }
            match read_more(stream, &mut buf, 8192, deadline).await {
                Read::Data => {
                    if ex.first_byte_ms.is_none() {
                        ex.first_byte_ms = Some(started.elapsed().as_millis() as u64);
                    }
                }
                Read::Eof => {
                    if buf.is_empty() {
                        ex.outcome = HttpOutcome::Closed;
                        ex.detail = Some("connection closed without a response".into());
                        return finish(ex, false, None);
                    }
                    // A head cut short by the close: parse what there is.
                    buf.extend_from_slice(b"\r\n\r\n");
                    break buf.len();
                }
                Read::Timeout => {
                    ex.outcome = HttpOutcome::Timeout;
                    ex.detail = Some(format!(
                        "no complete response head before the deadline ({} bytes received)",
                        buf.len()
                    ));
                    if !buf.is_empty() {
                        ex.body = Some(Blob(buf));
                    }
                    return finish(ex, false, None);
                }
                Read::Failed(e) => {
                    ex.outcome = io_outcome(&e);
                    ex.detail = Some(format!("reading the response: {e}"));
                    if !buf.is_empty() {
                        ex.body = Some(Blob(buf));
                    }
                    return finish(ex, false, None);
                }
            }
        };
        let Some(head) = parse_head(&buf[..head_end]) else {
            ex.outcome = HttpOutcome::NotHttp;
            ex.detail = Some("malformed status line".into());
            ex.body = Some(Blob(buf[..head_end.min(buf.len())].to_vec()));
            return finish(ex, false, None);
        };
        let rest = buf.split_off(head_end.min(buf.len()));
        if (100..200).contains(&head.status) && head.status != 101 && interim < 4 {
            interim += 1;
            buf = rest;
            continue;
        }
        break (head, rest);
    };

    ex.outcome = HttpOutcome::Response;
    ex.status = Some(head.status);
    ex.status_line = Some(Blob(head.status_line.clone()));
    ex.headers = Some(Blob(head.header_block.clone()));

    let framing =
        if is_head || head.status == 204 || head.status == 304 || (100..200).contains(&head.status)
        {
            BodyFraming::None
        } else if head.has_token("transfer-encoding", "chunked") {
            BodyFraming::Chunked
        } else {
            let lengths: Vec<Option<u64>> = head
                .headers
                .iter()
                .filter(|(n, _)| n == "content-length")
                .map(|(_, v)| {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                })
                .collect();
            match lengths.first() {
                Some(Some(n)) if lengths.iter().all(|l| *l == Some(*n)) => BodyFraming::Length(*n),
                _ => BodyFraming::UntilClose,
            }
        };
    let wants_close = head.has_token("connection", "close")
        || (head.http10 && !head.has_token("connection", "keep-alive"));

    let mut body = Vec::new();
    let (complete, clean_end) = match framing {
        BodyFraming::None => (true, rest.is_empty()),
        BodyFraming::Length(n) => {
            let outcome = read_length(stream, &mut rest, n, limits.max_body, deadline).await;
            body = rest;
            outcome
        }
        BodyFraming::UntilClose => {
            let (complete, _) =
                read_until_close(stream, &mut rest, limits.max_body, deadline).await;
            ex.body_read = rest.len() as u64;
            body = rest;
            (complete, false)
        }
        BodyFraming::Chunked => {
            let mut decoder = Chunked::default();
            let result = read_chunked(stream, &mut decoder, rest, limits.max_body, deadline).await;
            if let Some(problem) = decoder.problem {
                ex.detail = Some(problem.to_string());
            }
            ex.body_read = decoder.decoded_total;
            body = decoder.body;
            result
        }
    };
    if ex.body_read == 0 {
        ex.body_read = body.len() as u64;
    }
    if body.len() > limits.max_body {
        body.truncate(limits.max_body);
    }
    if !complete && ex.detail.is_none() {
        ex.detail = Some("body not read to its end (cap, deadline or close)".into());
    }
    ex.body_complete = complete;
    if !body.is_empty() {
        ex.body = Some(Blob(body));
    }
    let reusable =
        complete && clean_end && !wants_close && !matches!(framing, BodyFraming::UntilClose);
    finish(ex, reusable, Some(head))
}

enum Read {
    Data,
    Eof,
    Timeout,
    Failed(io::Error),
}

async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    chunk: usize,
    deadline: Instant,
) -> Read {
    // `read_buf` appends into spare capacity: no zero-filling of a fresh chunk per read.
    buf.reserve(chunk);
    let mut limited = (&mut *stream).take(chunk as u64);
    match timeout_at(deadline, limited.read_buf(buf)).await {
        Ok(Ok(0)) => Read::Eof,
        Ok(Ok(_)) => Read::Data,
        Ok(Err(e)) => Read::Failed(e),
        Err(_) => Read::Timeout,
    }
}

fn io_outcome(e: &io::Error) -> HttpOutcome {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => HttpOutcome::Reset,
        io::ErrorKind::UnexpectedEof => HttpOutcome::Closed,
        _ => HttpOutcome::Error,
    }
}

/// Reads a `Content-Length` body into `buf`. Returns (complete, no extra bytes).
async fn read_length<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    length: u64,
    cap: usize,
    deadline: Instant,
) -> (bool, bool) {
    let wanted = length.min(cap as u64) as usize;
    while buf.len() < wanted {
        let room = (wanted - buf.len()).min(16 * 1024);
        match read_more(stream, buf, room, deadline).await {
            Read::Data => {}
            _ => return (false, false),
        }
    }
    let complete = (buf.len() as u64) >= length;
    let clean = buf.len() as u64 == length;
    if buf.len() as u64 > length {
        buf.truncate(length as usize);
    }
    (complete, clean)
}

/// Reads until the server closes, up to `cap` bytes. Returns (complete, _).
async fn read_until_close<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
) -> (bool, bool) {
    loop {
        // One byte past the cap tells "ends exactly at the cap" from "goes on".
        if buf.len() > cap {
            buf.truncate(cap);
            return (false, false);
        }
        let room = (cap + 1 - buf.len()).min(16 * 1024);
        // Without framing only a close ends the body; a server that neither closes nor sends
        // (a responder's bare 403 on a kept-open connection) is given an idle limit instead
        // of the whole deadline.
        let idle = deadline.min(Instant::now() + UNFRAMED_IDLE);
        match read_more(stream, buf, room, idle).await {
            Read::Data => {}
            Read::Eof => return (true, false),
            _ => return (false, false),
        }
    }
}

/// How long an unframed body may pause before wachter stops waiting for more.
const UNFRAMED_IDLE: Duration = Duration::from_millis(1500);

/// An incremental, size-capped chunked-transfer decoder.
#[derive(Default)]
struct Chunked {
    state: ChunkState,
    line: Vec<u8>,
    body: Vec<u8>,
    decoded_total: u64,
    problem: Option<&'static str>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

const MAX_CHUNK_LINE: usize = 4096;

impl Chunked {
    /// Feeds bytes; returns how many were consumed (all of them unless the body ended).
    fn feed(&mut self, input: &[u8], cap: usize) -> usize {
        let mut i = 0;
        while i < input.len() && self.state != ChunkState::Done && self.problem.is_none() {
            match self.state {
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailers => {
                    let byte = input[i];
                    i += 1;
                    if byte != b'\n' {
                        if self.line.len() >= MAX_CHUNK_LINE {
                            self.problem = Some("malformed chunked encoding: line too long");
                        }
                        self.line.push(byte);
                        continue;
                    }
                    let line = trim_cr(&self.line).to_vec();
                    self.line.clear();
                    self.state = match self.state {
                        ChunkState::Size => {
                            let size_text = String::from_utf8_lossy(&line);
                            let size_text = size_text.split(';').next().unwrap_or("").trim();
                            match u64::from_str_radix(size_text, 16) {
                                Ok(0) => ChunkState::Trailers,
                                Ok(n) => ChunkState::Data(n),
                                Err(_) => {
                                    self.problem =
                                        Some("malformed chunked encoding: bad chunk size");
                                    ChunkState::Size
                                }
                            }
                        }
                        ChunkState::DataEnd => {
                            if !line.is_empty() {
                                self.problem =
                                    Some("malformed chunked encoding: missing CRLF after chunk");
                            }
                            ChunkState::Size
                        }
                        _ if line.is_empty() => ChunkState::Done,
                        other => other,
                    };
                }
                ChunkState::Data(remaining) => {
                    let take = (remaining.min((input.len() - i) as u64)) as usize;
                    let keep = take.min(cap.saturating_sub(self.body.len()));
                    self.body.extend_from_slice(&input[i..i + keep]);
                    self.decoded_total += take as u64;
                    i += take;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::Done => {}
            }
        }
        i
    }
}

/// Returns (complete, no extra bytes after the body).
async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    decoder: &mut Chunked,
    initial: Vec<u8>,
    cap: usize,
    deadline: Instant,
) -> (bool, bool) {
    let mut pending = initial;
    loop {
        let used = decoder.feed(&pending, cap);
        let extra = used < pending.len();
        if decoder.problem.is_some() {
            return (false, false);
        }
        if decoder.state == ChunkState::Done {
            return (true, !extra);
        }
        // More body than is kept: stop. Exactly the cap is fine; the end may follow.
        if decoder.decoded_total > cap as u64 {
            return (false, false);
        }
        pending.clear();
        match read_more(stream, &mut pending, 16 * 1024, deadline).await {
            Read::Data => {}
            _ => return (false, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn request_line_is_verbatim() {
        let spec = RequestSpec::get("p1", "/vpn/../vpns/cfg/smb.conf");
        let bytes =
            render_request(&spec, "127.0.0.1", "wachter/0.1 (+https://wachter.invalid)").unwrap();
        assert!(
            bytes.starts_with(b"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        );
        assert!(bytes.ends_with(b"\r\n\r\n"));
        let odd = RequestSpec::get("odd", "/a b`<x>%2e%2e/");
        assert!(
            render_request(&odd, "h", "ua")
                .unwrap()
                .starts_with(b"GET /a b`<x>%2e%2e/ HTTP/1.1\r\n")
        );
    }

    #[test]
    fn request_injection_is_refused() {
        let bad = RequestSpec::get("x", "/a\r\nX-Injected: 1");
        assert_eq!(
            render_request(&bad, "h", "ua"),
            Err(RequestError::Injection("target"))
        );
        assert!(render_request(&RequestSpec::get("x", "/"), "h\r\nEvil: 1", "ua").is_err());
        let mut m = RequestSpec::get("x", "/");
        m.method = "GET /x".into();
        assert!(render_request(&m, "h", "ua").is_err());
        let exploit = RequestSpec::get("x", "/vpn/../vpns/portal/scripts/newbm.pl");
        assert!(matches!(
            render_request(&exploit, "h", "ua"),
            Err(RequestError::Forbidden(_))
        ));
        for exploit in [
            RequestSpec::get("x", "/vpn/../vpns/portal/scripts/newbm.pl"),
            RequestSpec::get("x", "/oauth/idp/.well-known/openid-configuration"),
            RequestSpec {
                name: "x".into(),
                method: "POST".into(),
                target: b"/".to_vec(),
                headers: Vec::new(),
            },
        ] {
            assert!(matches!(
                render_request(&exploit, "h", "ua"),
                Err(RequestError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn host_header_spellings() {
        assert_eq!(
            host_header(None, "127.0.0.1".parse().unwrap(), 443, true),
            "127.0.0.1"
        );
        assert_eq!(
            host_header(None, "127.0.0.1".parse().unwrap(), 8443, true),
            "127.0.0.1:8443"
        );
        assert_eq!(
            host_header(None, "::1".parse().unwrap(), 80, false),
            "[::1]"
        );
        assert_eq!(
            host_header(Some("vpn.hospital.test"), "::1".parse().unwrap(), 443, true),
            "vpn.hospital.test"
        );
    }

    #[test]
    fn bare_responder_403_parses() {
        let raw = b"HTTP/1.1 403 Forbidden\r\n\r\n";
        let end = find_head_end(raw).unwrap();
        assert_eq!(end, raw.len());
        let head = parse_head(&raw[..end]).unwrap();
        assert_eq!(head.status, 403);
        assert_eq!(head.status_line, b"HTTP/1.1 403 Forbidden");
        assert!(head.header_block.is_empty());
        assert!(head.headers.is_empty());
    }

    #[test]
    fn sloppy_heads_parse() {
        let raw = b"HTTP/1.0 200\nServer : NetScaler\nX-Bad\x01Line\nSet-Cookie: NSC_AAAC=xyz;\n folded\nContent-Length:  5 \n\n";
        let head = parse_head(&raw[..find_head_end(raw).unwrap()]).unwrap();
        assert_eq!(head.status, 200);
        assert!(head.http10);
        assert_eq!(head.header("server"), Some(&b"NetScaler"[..]));
        assert_eq!(
            head.header("set-cookie"),
            Some(&b"NSC_AAAC=xyz; folded"[..])
        );
        assert_eq!(head.header("content-length"), Some(&b"5"[..]));
        assert!(parse_head(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").is_none());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n").is_none());
        assert!(parse_head(b"HTTP/1.1\r\n\r\n").is_none());
        assert_eq!(
            parse_head(b"HTTP/1.1  200 OK\r\n\r\n").map(|h| h.status),
            Some(200),
            "double space"
        );
    }

    #[test]
    fn chunked_decoder_caps_and_detects_garbage() {
        let mut c = Chunked::default();
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
        assert_eq!(c.feed(input, 1024), input.len());
        assert!(c.state == ChunkState::Done);
        assert_eq!(c.body, b"hello world");
        let mut capped = Chunked::default();
        capped.feed(b"10\r\n0123456789abcdef\r\n", 4);
        assert_eq!(capped.body, b"0123");
        assert_eq!(capped.decoded_total, 16);
        let mut bad = Chunked::default();
        bad.feed(b"zz\r\n", 100);
        assert!(bad.problem.is_some());
    }

    /// Serves `response` on an in-memory pipe (then closes) and runs one exchange on it.
    async fn against(response: Vec<u8>) -> Exchanged {
        let (mut client, mut server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(&response).await;
        });
        let limits = HttpLimits {
            max_head: 8 * 1024,
            max_body: 1024,
            response_timeout: Duration::from_secs(5),
        };
        let request = render_request(&RequestSpec::get("t", "/"), "h", "ua").unwrap();
        exchange(
            &mut client,
            "t",
            request,
            1,
            &limits,
            Instant::now() + Duration::from_secs(5),
        )
        .await
    }

    #[tokio::test]
    async fn framing_decides_reuse() {
        let ok = against(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()).await;
        assert!(ok.reusable && ok.exchange.body_complete);
        let chunked = against(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
        )
        .await;
        assert!(chunked.reusable);
        assert_eq!(chunked.exchange.body.unwrap().as_bytes(), b"ok");
        let close = against(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        )
        .await;
        assert!(!close.reusable);
        let extra = against(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".to_vec()).await;
        assert!(
            !extra.reusable,
            "bytes beyond the framed body poison the connection"
        );
        let http10 = against(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()).await;
        assert!(!http10.reusable);
        let until_close = against(b"HTTP/1.1 200 OK\r\n\r\nbody until close".to_vec()).await;
        assert!(!until_close.reusable && until_close.exchange.body_complete);
        let conflicting = against(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk".to_vec(),
        )
        .await;
        assert!(!conflicting.reusable);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unframed_answer_on_an_open_connection_ends_at_the_idle_limit() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let _ = server.read(&mut request).await;
            let _ = server.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
            // Keep the connection open for far longer than the exchange deadline.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(server);
        });
        let limits = HttpLimits {
            max_head: 8 * 1024,
            max_body: 1024,
            response_timeout: Duration::from_secs(10),
        };
        let request = render_request(&RequestSpec::get("t", "/vpn/../vpns/"), "h", "ua").unwrap();
        let started = Instant::now();
        let ex = exchange(
            &mut client,
            "t",
            request,
            1,
            &limits,
            Instant::now() + Duration::from_secs(30),
        )
        .await;
        assert_eq!(ex.exchange.status, Some(403));
        assert_eq!(ex.exchange.body, None);
        assert!(!ex.reusable);
        // Paused clock: virtual time, so this asserts the limit used, not the machine's speed.
        assert_eq!(started.elapsed(), UNFRAMED_IDLE);
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_cap_is_complete() {
        // `against` keeps at most 1024 body bytes.
        let exact = [b'x'; 1024];
        let mut until_close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        until_close.extend_from_slice(&exact);
        let ex = against(until_close).await;
        assert!(ex.exchange.body_complete);
        assert_eq!(ex.exchange.body.as_ref().unwrap().as_bytes().len(), 1024);
        let mut longer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        longer.extend_from_slice(&[b'x'; 1025]);
        let ex = against(longer).await;
        assert!(!ex.exchange.body_complete);
        assert_eq!(ex.exchange.body.as_ref().unwrap().as_bytes().len(), 1024);
        let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n".to_vec();
        chunked.extend_from_slice(&exact);
        chunked.extend_from_slice(b"\r\n0\r\n\r\n");
        let ex = against(chunked).await;
        assert!(ex.exchange.body_complete && ex.reusable);
    }

    #[tokio::test]
    async fn bare_403_then_close_is_a_response() {
        let ex = against(b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec())
            .await
            .exchange;
        assert_eq!(ex.outcome, HttpOutcome::Response);
        assert_eq!(ex.status, Some(403));
        assert!(ex.body_complete);
        let cut = against(b"HTTP/1.1 302 Found\r\nLocation: /vpn/index.html".to_vec())
            .await
            .exchange;
        assert_eq!(
            cut.status,
            Some(302),
            "a head cut short by the close still parses"
        );
    }

    #[tokio::test]
    async fn hostile_answers_give_outcomes_not_panics() {
        assert_eq!(
            against(Vec::new()).await.exchange.outcome,
            HttpOutcome::Closed
        );
        assert_eq!(
            against(b"SSH-2.0-x\r\n".to_vec()).await.exchange.outcome,
            HttpOutcome::NotHttp
        );
        let mut huge_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        huge_head.extend(std::iter::repeat_n(b'a', 20_000));
        assert_eq!(
            against(huge_head).await.exchange.outcome,
            HttpOutcome::HeadTooLarge
        );
        let bad_chunks =
            against(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()).await;
        assert!(!bad_chunks.exchange.body_complete && !bad_chunks.reusable);
        // Random byte soup, some of it starting like HTTP: every answer yields a value.
        let mut state = 0x1234_5678_u64;
        for round in 0..300 {
            let mut bytes = if round % 2 == 0 {
                b"HTTP/1.1 200 OK\r\n".to_vec()
            } else {
                Vec::new()
            };
            let len = (state % 3000) as usize;
            for _ in 0..len {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let b = (state >> 56) as u8;
                bytes.push(if b.is_multiple_of(7) { b'\n' } else { b });
            }
            let ex = against(bytes).await;
            assert!(
                ex.exchange
                    .body
                    .as_ref()
                    .is_none_or(|b| b.as_bytes().len() <= 8 * 1024)
            );
        }
    }
}
