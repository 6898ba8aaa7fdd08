//! The evidence as one stream of entries, whatever form it came in.
//!
//! Nothing is ever extracted: archives are streamed entry by entry and folders are walked
//! without following links, so a hostile bundle cannot write anywhere or point us at the
//! analyst's own files. What is hostile about the evidence itself becomes an
//! [`InputProblem`].

use std::cell::{Cell, RefCell};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What an entry is. Links are never followed; their target is kept as text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "target")]
pub enum EntryKind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
    Device,
    Fifo,
    Other,
}

/// One entry of the appliance's file system, as found in the evidence.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EntryMeta {
    /// The path on the appliance: normalised, `/`-rooted (`/var/log/httpaccess.log`), never
    /// with `.` or `..` components. Bytes that are not UTF-8 are shown as `\xNN`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`0o4755`).
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Owner names when the evidence records them (tar headers); else `None`.
    pub user: Option<String>,
    pub group: Option<String>,
    /// Seconds since the epoch.
    pub mtime: Option<i64>,
    pub ctime: Option<i64>,
    /// The size the evidence declares (content reads are capped separately).
    pub size: u64,
}

/// Something about the evidence itself that a careful analyst wants to know: an archive
/// entry that tried to escape the root, a link pointing out of it, a device file, a file
/// too large to read whole, a compression bomb. Reported as findings of their own.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InputProblem {
    /// The entry's path as written in the evidence (escaped, one line).
    pub path: String,
    pub kind: ProblemKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A `..` component: the entry would land outside the root. Skipped.
    PathTraversal,
    /// An absolute path in an archive: read as relative to the root.
    AbsolutePath,
    /// A symbolic or hard link whose target resolves outside the root. Not followed.
    LinkOutOfRoot,
    /// A device file or FIFO: never opened.
    SpecialFile,
    /// Larger than the per-file cap: only the first part was read.
    Truncated,
    /// Decompressed far beyond its compressed size, or beyond the total cap: stopped.
    CompressionBomb,
    /// Could not be read (I/O error, a corrupt archive member).
    Unreadable,
    /// More entries than the cap: the rest was not looked at.
    TooManyEntries,
}

/// How much of the evidence is read.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bytes read from one file (after decompression for `.gz` logs).
    pub max_file: u64,
    /// Bytes decompressed from the whole evidence.
    pub max_total: u64,
    /// Decompressed / compressed beyond which a stream is a bomb (checked past 1 MiB).
    pub max_ratio: u64,
    /// Entries looked at.
    pub max_entries: u64,
    /// A ctime this recent (seconds before now) is the copy or extraction of the evidence,
    /// not a change on the appliance: timestomp rules ignore it. 0 trusts every ctime (a
    /// mounted image).
    pub extraction_window_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file: 4 << 30,
            max_total: 256 << 30,
            max_ratio: 250,
            max_entries: 5_000_000,
            extraction_window_secs: 2 * 86_400,
        }
    }
}

/// Receives the entries. `content` is given for regular files only, already capped at
/// `Limits::max_file` (reading past it ends the stream and reports `Truncated`).
pub trait Visitor {
    fn entry(&mut self, meta: &EntryMeta, content: Option<&mut dyn Read>) -> std::io::Result<()>;
    fn problem(&mut self, problem: InputProblem);
}

/// What kind of evidence a path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    Directory,
    Tar,
    TarGz,
}

/// What was walked.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputSummary {
    /// Entries handed to the visitor.
    pub entries: u64,
    /// Of which regular files.
    pub files: u64,
    /// Content bytes the visitor read, plus, in an archive, those read past to reach the
    /// next entry.
    pub bytes_read: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is neither a folder nor a .tar or .tar.gz bundle")]
    Unknown { path: String },
}

/// Top-level folders of a NetScaler file system: a bundle whose single top folder is one
/// of these is already rooted and must not lose it.
const APPLIANCE_TOP: &[&[u8]] = &[
    b"var",
    b"flash",
    b"netscaler",
    b"nsconfig",
    b"tmp",
    b"etc",
    b"usr",
    b"bin",
    b"sbin",
    b"root",
    b"home",
    b"proc",
    b"dev",
];

/// Extension headers (GNU long names, pax records) are read whole into memory by the tar
/// parser; legitimate ones are a few KiB, so more than this before one entry is hostile.
const HEADER_BUDGET: u64 = 8 << 20;

/// The compression ratio is only meaningful once some output exists.
const RATIO_FLOOR: u64 = 1 << 20;

/// What kind of evidence `path` holds, by its content (a bundle may have any name).
pub fn evidence_kind(path: &Path) -> Result<EvidenceKind, InputError> {
    let io_err = |source| InputError::Io {
        path: shown(path),
        source,
    };
    let md = fs::metadata(path).map_err(io_err)?;
    if md.is_dir() {
        return Ok(EvidenceKind::Directory);
    }
    if !md.is_file() {
        // A FIFO or device as PATH would block or never end.
        return Err(InputError::Unknown { path: shown(path) });
    }
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(io_err)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(EvidenceKind::TarGz)
    } else if head.get(257..262) == Some(b"ustar".as_slice()) {
        Ok(EvidenceKind::Tar)
    } else {
        Err(InputError::Unknown { path: shown(path) })
    }
}

/// Hands every entry of the evidence at `path` to `visitor`, problems included.
///
/// Only an unreadable or unrecognised `path` is an error: whatever goes wrong inside the
/// evidence is reported to the visitor and the walk ends with what was seen.
pub fn walk(
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<InputSummary, InputError> {
    match evidence_kind(path)? {
        EvidenceKind::Directory => walk_dir(path, limits, visitor),
        kind => walk_tar(path, kind == EvidenceKind::TarGz, limits, visitor),
    }
}

/// Shows bytes as one line of text: UTF-8 kept, other bytes as `\xNN`, control and
/// line-breaking or text-reversing characters escaped, `\` doubled so the result is
/// unambiguous. A file name is attacker-chosen and ends up in reports and terminals.
pub fn escape_bytes(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c) =>
                {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// An error message as one line of bounded length: parsers quote hostile names in them.
fn said(e: &dyn std::fmt::Display) -> String {
    let mut s = escape_bytes(e.to_string().as_bytes());
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn shown(path: &Path) -> String {
    escape_bytes(path.as_os_str().as_bytes())
}

/// Splits a path into its components without `.` and empty ones; `None` if any is `..`.
fn components(raw: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn rooted(comps: &[&[u8]]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&escape_bytes(c));
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

/// Resolves a link target lexically: absolute from the evidence root, else from `base`.
/// `None` when a `..` climbs above the root.
fn resolve<'a>(base: &[&'a [u8]], target: &'a [u8]) -> Option<Vec<&'a [u8]>> {
    let mut stack: Vec<&[u8]> = if target.starts_with(b"/") {
        Vec::new()
    } else {
        base.to_vec()
    };
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                stack.pop()?;
            }
            c => stack.push(c),
        }
    }
    Some(stack)
}

/// Finds the one folder that wraps a whole bundle (`collector_P_…/var/log/…`), so that
/// paths read as on the appliance. Fed the components of every entry.
#[derive(Default)]
struct Wrapper {
    first: Option<Vec<u8>>,
    mixed: bool,
    dir: bool,
    /// A top-level name is itself an appliance directory (`var/…`): no wrapper.
    appliance_at_top: bool,
    /// Top-level folders that hold an appliance directory (`collector/var/…`).
    holders: std::collections::BTreeSet<Vec<u8>>,
}

impl Wrapper {
    fn add(&mut self, comps: &[&[u8]], is_dir: bool) {
        let Some(c0) = comps.first() else { return };
        match &self.first {
            None => self.first = Some(c0.to_vec()),
            Some(f) if f.as_slice() != *c0 => self.mixed = true,
            Some(_) => {}
        }
        if comps.len() > 1 || is_dir {
            self.dir = true;
        }
        if APPLIANCE_TOP.contains(c0) && (comps.len() > 1 || is_dir) {
            self.appliance_at_top = true;
        }
        if let Some(c1) = comps.get(1)
            && APPLIANCE_TOP.contains(c1)
            && self.holders.len() < 2
        {
            self.holders.insert(c0.to_vec());
        }
    }

    /// The one top folder to strip: the only thing at the top, or (beside stray files such
    /// as a README) the only folder that holds the appliance's directories.
    fn found(self) -> Option<Vec<u8>> {
        if self.appliance_at_top {
            return None;
        }
        if self.holders.len() == 1 {
            return self.holders.into_iter().next();
        }
        let first = self.first?;
        (!self.mixed && self.dir && !APPLIANCE_TOP.contains(&first.as_slice())).then_some(first)
    }
}

fn strip<'a, 'b>(comps: &'b [&'a [u8]], wrapper: Option<&[u8]>) -> &'b [&'a [u8]] {
    match (wrapper, comps.first()) {
        (Some(w), Some(c0)) if *c0 == w => &comps[1..],
        _ => comps,
    }
}

/// Counts what the visitor read, and remembers whether the source failed (for an archive
/// that means the stream is broken, not just this entry).
struct Handed<'a> {
    inner: &'a mut dyn Read,
    n: u64,
    err: Option<String>,
}

impl Read for Handed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(k) => {
                self.n += k as u64;
                Ok(k)
            }
            Err(e) => {
                self.err.get_or_insert_with(|| said(&e));
                Err(e)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Folders

fn walk_dir(
    path: &Path,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<InputSummary, InputError> {
    let root = unwrap_dir(path)?;
    let mut summary = InputSummary::default();
    let mut seen = 0u64;
    let walker = walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for item in walker {
        let dent = match item {
            Ok(d) => d,
            Err(e) => {
                let at = e.path().map_or_else(|| shown(&root), shown);
                report(visitor, at, ProblemKind::Unreadable, said(&e));
                continue;
            }
        };
        seen += 1;
        let host = shown(dent.path());
        if seen > limits.max_entries {
            let detail = format!(
                "more than {} entries; the rest was not looked at",
                limits.max_entries
            );
            report(visitor, host, ProblemKind::TooManyEntries, detail);
            break;
        }
        let Ok(rel) = dent.path().strip_prefix(&root) else {
            continue;
        };
        let comps: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
        let md = match dent.metadata() {
            Ok(md) => md,
            Err(e) => {
                report(visitor, host, ProblemKind::Unreadable, said(&e));
                continue;
            }
        };
        let ft = md.file_type();
        let mut meta = EntryMeta {
            path: rooted(&comps),
            kind: EntryKind::Other,
            mode: md.mode() & 0o7777,
            uid: Some(md.uid()),
            gid: Some(md.gid()),
            user: None,
            group: None,
            mtime: Some(md.mtime()),
            ctime: Some(md.ctime()),
            size: md.len(),
        };
        if ft.is_dir() {
            meta.kind = EntryKind::Dir;
        } else if ft.is_symlink() {
            let target = match fs::read_link(dent.path()) {
                Ok(t) => t,
                Err(e) => {
                    report(visitor, host, ProblemKind::Unreadable, said(&e));
                    continue;
                }
            };
            let t = target.as_os_str().as_bytes();
            let shown_target = escape_bytes(t);
            if resolve(&comps[..comps.len().saturating_sub(1)], t).is_none() {
                let detail =
                    format!("symbolic link to {shown_target} leaves the root; not followed");
                report(visitor, host, ProblemKind::LinkOutOfRoot, detail);
            }
            meta.kind = EntryKind::Symlink(shown_target);
        } else if ft.is_file() {
            meta.kind = EntryKind::File;
            summary.entries += 1;
            summary.files += 1;
            summary.bytes_read += read_dir_file(dent.path(), &md, &meta, limits, visitor);
            continue;
        } else {
            let (kind, what) = if ft.is_block_device() || ft.is_char_device() {
                (EntryKind::Device, "device file")
            } else if ft.is_fifo() {
                (EntryKind::Fifo, "FIFO")
            } else if ft.is_socket() {
                (EntryKind::Other, "socket")
            } else {
                (EntryKind::Other, "special file")
            };
            meta.kind = kind;
            report(
                visitor,
                host,
                ProblemKind::SpecialFile,
                format!("{what}; not opened"),
            );
        }
        summary.entries += 1;
        if let Err(e) = visitor.entry(&meta, None) {
            report(
                visitor,
                shown(dent.path()),
                ProblemKind::Unreadable,
                said(&e),
            );
        }
    }
    Ok(summary)
}

/// A folder holding nothing but one folder (not itself an appliance top folder) is a
/// wrapper: walk from inside it.
fn unwrap_dir(path: &Path) -> Result<PathBuf, InputError> {
    let io_err = |source| InputError::Io {
        path: shown(path),
        source,
    };
    let mut wrapper = Wrapper::default();
    // Two levels of names decide it; a huge folder is not listed past a bound.
    for child in fs::read_dir(path).map_err(io_err)?.take(10_000) {
        let child = child.map_err(io_err)?;
        let name = child.file_name();
        let is_dir = child.file_type().map(|t| t.is_dir()).unwrap_or(false);
        wrapper.add(&[name.as_bytes()], is_dir);
        if is_dir && !APPLIANCE_TOP.contains(&name.as_bytes()) {
            let Ok(grandchildren) = fs::read_dir(child.path()) else {
                continue;
            };
            for grandchild in grandchildren.take(10_000).flatten() {
                let inner = grandchild.file_name();
                let inner_dir = grandchild.file_type().map(|t| t.is_dir()).unwrap_or(false);
                wrapper.add(&[name.as_bytes(), inner.as_bytes()], inner_dir);
            }
        }
    }
    match wrapper.found() {
        Some(name) => Ok(path.join(std::ffi::OsStr::from_bytes(&name))),
        None => Ok(path.to_path_buf()),
    }
}

/// Opens a regular file found by the walk and hands it to the visitor, capped; returns the
/// bytes read. A file that cannot be opened is still handed over, without content: its
/// metadata (a setuid bit, an owner) matters too.
fn read_dir_file(
    path: &Path,
    md: &fs::Metadata,
    meta: &EntryMeta,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> u64 {
    let opened = File::open(path).map_err(|e| said(&e)).and_then(|file| {
        // The walk saw a regular file; make sure the name still is that file and was
        // not swapped for a link or device in between.
        let now = file.metadata().map_err(|e| said(&e))?;
        if now.is_file() && now.dev() == md.dev() && now.ino() == md.ino() {
            Ok(file)
        } else {
            Err("changed while being walked; not read".into())
        }
    });
    let file = match opened {
        Ok(file) => file,
        Err(detail) => {
            report(visitor, shown(path), ProblemKind::Unreadable, detail);
            if let Err(e) = visitor.entry(meta, None) {
                report(visitor, shown(path), ProblemKind::Unreadable, said(&e));
            }
            return 0;
        }
    };
    if meta.size > limits.max_file {
        let detail = format!(
            "{} bytes; only the first {} read",
            meta.size, limits.max_file
        );
        report(visitor, shown(path), ProblemKind::Truncated, detail);
    }
    let mut capped = file.take(limits.max_file);
    let mut handed = Handed {
        inner: &mut capped,
        n: 0,
        err: None,
    };
    let result = visitor.entry(meta, Some(&mut handed));
    let n = handed.n;
    match (result, handed.err) {
        (_, Some(detail)) => report(visitor, shown(path), ProblemKind::Unreadable, detail),
        (Err(e), None) => report(visitor, shown(path), ProblemKind::Unreadable, said(&e)),
        (Ok(()), None) => {}
    }
    n
}

fn report(visitor: &mut dyn Visitor, path: String, kind: ProblemKind, detail: String) {
    visitor.problem(InputProblem { path, kind, detail });
}

// ---------------------------------------------------------------------------------------
// Archives

/// Bookkeeping shared by the readers stacked under the tar parser.
#[derive(Default)]
struct Meter {
    compressed: Cell<u64>,
    out: Cell<u64>,
    in_header: Cell<bool>,
    header_bytes: Cell<u64>,
    /// Bytes the parser will skip at the start of its next search, not extension headers.
    skip_allowance: Cell<u64>,
    tripped: RefCell<Option<(ProblemKind, String)>>,
}

impl Meter {
    fn trip(&self, kind: ProblemKind, detail: String) {
        self.tripped.borrow_mut().get_or_insert((kind, detail));
    }

    fn tripped(&self) -> Option<(ProblemKind, String)> {
        self.tripped.borrow().clone()
    }

    /// Brackets the parser's search for the next entry, where it reads extension headers.
    fn header_phase(&self, on: bool) {
        self.in_header.set(on);
        self.header_bytes.set(0);
        if !on {
            self.skip_allowance.set(0);
        }
    }
}

/// Counts the compressed bytes going into the gzip decoder.
struct CountIn<'m, R> {
    inner: R,
    meter: &'m Meter,
}

impl<R: Read> Read for CountIn<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let m = self.meter;
        m.compressed.set(m.compressed.get() + n as u64);
        Ok(n)
    }
}

/// Sits between the (decompressed) stream and the tar parser: enforces the total and
/// ratio caps and the extension-header budget, failing every read once tripped.
struct Guard<'m, R> {
    inner: R,
    meter: &'m Meter,
    limits: &'m Limits,
    gz: bool,
}

impl<R: Read> Read for Guard<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let m = self.meter;
        if let Some((_, detail)) = m.tripped() {
            return Err(io::Error::other(detail));
        }
        let n = self.inner.read(buf)?;
        let out = m.out.get() + n as u64;
        m.out.set(out);
        if m.in_header.get() {
            let skipped = m.skip_allowance.get().min(n as u64);
            m.skip_allowance.set(m.skip_allowance.get() - skipped);
            let h = m.header_bytes.get() + n as u64 - skipped;
            m.header_bytes.set(h);
            if h > HEADER_BUDGET {
                let detail = format!(
                    "more than {HEADER_BUDGET} bytes of extension headers before one entry; stopped"
                );
                m.trip(ProblemKind::Unreadable, detail);
            }
        }
        if self.gz {
            let compressed = m.compressed.get();
            if out > self.limits.max_total {
                let detail = format!(
                    "more than {} bytes decompressed (the total cap); stopped",
                    self.limits.max_total
                );
                m.trip(ProblemKind::CompressionBomb, detail);
            } else if out > RATIO_FLOOR && out / compressed.max(1) > self.limits.max_ratio {
                let detail = format!(
                    "{out} bytes decompressed from {compressed} compressed, more than {} times; stopped",
                    self.limits.max_ratio
                );
                m.trip(ProblemKind::CompressionBomb, detail);
            }
        }
        match m.tripped() {
            Some((_, detail)) => Err(io::Error::other(detail)),
            None => Ok(n),
        }
    }
}

impl<R: Seek> Seek for Guard<'_, R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn open_file(path: &Path) -> Result<File, InputError> {
    File::open(path).map_err(|source| InputError::Io {
        path: shown(path),
        source,
    })
}

fn gz_stream<'m>(file: File, meter: &'m Meter, limits: &'m Limits) -> impl Read + 'm {
    Guard {
        inner: flate2::read::MultiGzDecoder::new(CountIn { inner: file, meter }),
        meter,
        limits,
        gz: true,
    }
}

fn walk_tar(
    path: &Path,
    gz: bool,
    limits: &Limits,
    visitor: &mut dyn Visitor,
) -> Result<InputSummary, InputError> {
    // First pass: names only, to find a wrapper folder before anything is visited.
    let wrapper = {
        let meter = Meter::default();
        let file = open_file(path)?;
        if gz {
            let mut archive = tar::Archive::new(gz_stream(file, &meter, limits));
            find_wrapper(archive.entries(), &meter, limits, true)
        } else {
            let stream = Guard {
                inner: BufReader::new(file),
                meter: &meter,
                limits,
                gz: false,
            };
            let mut archive = tar::Archive::new(stream);
            find_wrapper(archive.entries_with_seek(), &meter, limits, false)
        }
    };
    let meter = Meter::default();
    let file = open_file(path)?;
    let stream: Box<dyn Read + '_> = if gz {
        Box::new(gz_stream(file, &meter, limits))
    } else {
        Box::new(Guard {
            inner: BufReader::new(file),
            meter: &meter,
            limits,
            gz: false,
        })
    };
    let mut archive = tar::Archive::new(stream);
    let run = TarRun {
        evidence: shown(path),
        wrapper: wrapper.as_deref(),
        meter: &meter,
        limits,
        visitor,
        summary: InputSummary::default(),
    };
    Ok(run.go(&mut archive))
}

/// Reads through the rest of an entry so that a cut or bombing stream shows at this entry;
/// returns the bytes read. The holes of a GNU sparse entry are zeros made up by the parser,
/// as many as its header claims (a 1 KiB entry can claim exabytes): for those only the
/// stored part is passed over, by the parser itself (`None`). `data_start` is the stream
/// position where the entry's stored data begins.
fn pass_over<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    meter: &Meter,
    data_start: u64,
) -> io::Result<Option<u64>> {
    if !entry.header().entry_type().is_gnu_sparse() {
        return io::copy(entry, &mut io::sink()).map(Some);
    }
    let stored = entry.header().entry_size()?;
    let end = data_start.saturating_add(stored.div_ceil(512).saturating_mul(512));
    meter
        .skip_allowance
        .set(end.saturating_sub(meter.out.get()));
    Ok(None)
}

fn find_wrapper<R: Read>(
    entries: io::Result<tar::Entries<'_, R>>,
    meter: &Meter,
    limits: &Limits,
    drain: bool,
) -> Option<Vec<u8>> {
    let mut entries = entries.ok()?;
    let mut wrapper = Wrapper::default();
    let mut seen = 0u64;
    loop {
        meter.header_phase(true);
        let next = entries.next();
        meter.header_phase(false);
        let Some(Ok(mut entry)) = next else { break };
        let data_start = meter.out.get();
        seen += 1;
        if seen > limits.max_entries {
            break;
        }
        let et = entry.header().entry_type();
        if !is_meta_entry(et) {
            let raw = entry.path_bytes();
            if let Some(comps) = components(&raw) {
                wrapper.add(&comps, et.is_dir());
            }
        }
        if drain && pass_over(&mut entry, meter, data_start).is_err() {
            break;
        }
    }
    wrapper.found()
}

/// Entries that only describe other entries (pax, GNU long names) when they surface on
/// their own (global pax headers do; malformed archives may).
fn is_meta_entry(et: tar::EntryType) -> bool {
    et.is_pax_global_extensions()
        || et.is_pax_local_extensions()
        || et.is_gnu_longname()
        || et.is_gnu_longlink()
}

struct TarRun<'r> {
    evidence: String,
    wrapper: Option<&'r [u8]>,
    meter: &'r Meter,
    limits: &'r Limits,
    visitor: &'r mut dyn Visitor,
    summary: InputSummary,
}

enum Next {
    Continue,
    Stop,
}

impl TarRun<'_> {
    fn go<R: Read>(mut self, archive: &mut tar::Archive<R>) -> InputSummary {
        let mut entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                let at = self.evidence.clone();
                self.problem(at, ProblemKind::Unreadable, said(&e));
                return self.summary;
            }
        };
        let mut seen = 0u64;
        loop {
            self.meter.header_phase(true);
            let next = entries.next();
            self.meter.header_phase(false);
            let data_start = self.meter.out.get();
            let mut entry = match next {
                None => break,
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    let at = self.evidence.clone();
                    self.stream_failed(at, said(&e));
                    break;
                }
            };
            seen += 1;
            let written = escape_bytes(&entry.path_bytes());
            if seen > self.limits.max_entries {
                let detail = format!(
                    "more than {} entries; the rest was not looked at",
                    self.limits.max_entries
                );
                self.problem(written, ProblemKind::TooManyEntries, detail);
                break;
            }
            if let Next::Stop = self.entry(&mut entry, &written, data_start) {
                break;
            }
        }
        self.summary
    }

    fn problem(&mut self, path: String, kind: ProblemKind, detail: String) {
        report(self.visitor, path, kind, detail);
    }

    /// The stream under the parser failed: a tripped cap, else a corrupt or cut archive.
    fn stream_failed(&mut self, at: String, detail: String) {
        match self.meter.tripped() {
            Some((kind, why)) => self.problem(at, kind, why),
            None => self.problem(at, ProblemKind::Unreadable, format!("{detail}; stopped")),
        }
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        written: &str,
        data_start: u64,
    ) -> Next {
        let at = || written.to_string();
        let raw = entry.path_bytes().into_owned();
        let et = entry.header().entry_type();
        let declared = entry.size();
        let mut handed_out = 0u64;
        let visit = !is_meta_entry(et);
        if visit {
            match components(&raw) {
                None => {
                    let detail = "a `..` component would place it outside the root; skipped";
                    self.problem(at(), ProblemKind::PathTraversal, detail.into());
                }
                Some(comps) => {
                    let comps = strip(&comps, self.wrapper).to_vec();
                    if !comps.is_empty() {
                        if raw.starts_with(b"/") {
                            let detail = format!("absolute path; read as {}", rooted(&comps));
                            self.problem(at(), ProblemKind::AbsolutePath, detail);
                        }
                        match self.visit(entry, &comps, written) {
                            Ok(n) => handed_out = n,
                            Err(stop) => return stop,
                        }
                    }
                }
            }
        }
        match pass_over(entry, self.meter, data_start) {
            Err(e) => {
                self.stream_failed(at(), said(&e));
                Next::Stop
            }
            Ok(None) => {
                self.summary.bytes_read += self.meter.skip_allowance.get();
                Next::Continue
            }
            Ok(Some(rest)) => {
                self.summary.bytes_read += rest;
                if handed_out + rest < declared {
                    let detail = format!(
                        "the archive ends inside this entry ({} of {declared} bytes); stopped",
                        handed_out + rest
                    );
                    self.problem(at(), ProblemKind::Unreadable, detail);
                    Next::Stop
                } else {
                    Next::Continue
                }
            }
        }
    }

    /// Builds the entry's metadata, reports what is wrong with it and hands it over.
    /// Returns the content bytes the visitor read.
    fn visit<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        comps: &[&[u8]],
        written: &str,
    ) -> Result<u64, Next> {
        let at = || written.to_string();
        let header = entry.header();
        let et = header.entry_type();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let link = link.unwrap_or_default();
        let mut meta = EntryMeta {
            path: rooted(comps),
            kind: EntryKind::Other,
            mode: header.mode().map_or(0, |m| m & 0o7777),
            uid: header.uid().ok().and_then(|u| u32::try_from(u).ok()),
            gid: header.gid().ok().and_then(|g| u32::try_from(g).ok()),
            user: header.username_bytes().map(escape_bytes),
            group: header.groupname_bytes().map(escape_bytes),
            mtime: header.mtime().ok().and_then(|t| i64::try_from(t).ok()),
            ctime: None,
            size: entry.size(),
        };
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                match ext.key_bytes() {
                    b"ctime" => meta.ctime = pax_time(ext.value_bytes()).or(meta.ctime),
                    b"mtime" => meta.mtime = pax_time(ext.value_bytes()).or(meta.mtime),
                    b"uname" => meta.user = Some(escape_bytes(ext.value_bytes())),
                    b"gname" => meta.group = Some(escape_bytes(ext.value_bytes())),
                    _ => {}
                }
            }
        }
        let special = |what: &str| format!("{what}; not opened");
        match et {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                meta.kind = EntryKind::File;
            }
            tar::EntryType::Directory => meta.kind = EntryKind::Dir,
            tar::EntryType::Symlink => {
                let base = &comps[..comps.len().saturating_sub(1)];
                if resolve(base, &link).is_none() {
                    let detail = format!(
                        "symbolic link to {} leaves the root; not followed",
                        escape_bytes(&link)
                    );
                    self.problem(at(), ProblemKind::LinkOutOfRoot, detail);
                }
                meta.kind = EntryKind::Symlink(escape_bytes(&link));
            }
            tar::EntryType::Link => {
                // A hard link names another member of the archive, from the archive root.
                meta.kind = match resolve(&[], &link) {
                    Some(target) => EntryKind::Hardlink(rooted(strip(&target, self.wrapper))),
                    None => {
                        let detail = format!(
                            "hard link to {} leaves the root; not followed",
                            escape_bytes(&link)
                        );
                        self.problem(at(), ProblemKind::LinkOutOfRoot, detail);
                        EntryKind::Hardlink(escape_bytes(&link))
                    }
                };
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                self.problem(at(), ProblemKind::SpecialFile, special("device file"));
                meta.kind = EntryKind::Device;
            }
            tar::EntryType::Fifo => {
                self.problem(at(), ProblemKind::SpecialFile, special("FIFO"));
                meta.kind = EntryKind::Fifo;
            }
            other => {
                let what = format!("entry of type {:?}", other.as_byte() as char);
                self.problem(at(), ProblemKind::SpecialFile, special(&what));
            }
        }
        self.summary.entries += 1;
        if meta.kind != EntryKind::File {
            if let Err(e) = self.visitor.entry(&meta, None) {
                self.problem(at(), ProblemKind::Unreadable, said(&e));
            }
            return Ok(0);
        }
        self.summary.files += 1;
        if meta.size > self.limits.max_file {
            let detail = format!(
                "{} bytes; only the first {} read",
                meta.size, self.limits.max_file
            );
            self.problem(at(), ProblemKind::Truncated, detail);
        }
        let mut capped = (&mut *entry).take(self.limits.max_file);
        let mut handed = Handed {
            inner: &mut capped,
            n: 0,
            err: None,
        };
        let result = self.visitor.entry(&meta, Some(&mut handed));
        let (n, err) = (handed.n, handed.err);
        self.summary.bytes_read += n;
        match (result, err) {
            (_, Some(e)) => {
                self.stream_failed(at(), e);
                Err(Next::Stop)
            }
            (Err(e), None) => {
                self.problem(at(), ProblemKind::Unreadable, said(&e));
                Ok(n)
            }
            (Ok(()), None) => Ok(n),
        }
    }
}

/// A pax time (`1579521600.123456789`, possibly negative) in whole seconds.
fn pax_time(value: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(value).ok()?;
    let whole = s.split('.').next()?;
    whole.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};
    use tar::EntryType as T;

    /// A private folder under the system temp dir, removed afterwards.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "wachter-input-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("temp dir");
            Tmp(dir)
        }

        fn join(&self, rel: &str) -> PathBuf {
            self.0.join(rel)
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Every path below `dir` with its size and mtime: to prove nothing was written.
    fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, i64)> {
        walkdir::WalkDir::new(dir)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.expect("walk");
                let md = e.metadata().expect("metadata");
                (e.path().to_path_buf(), md.len(), md.mtime())
            })
            .collect()
    }

    #[derive(Default)]
    struct Seen {
        entries: Vec<(EntryMeta, Option<Vec<u8>>)>,
        problems: Vec<InputProblem>,
        read_at_most: Option<u64>,
    }

    impl Visitor for Seen {
        fn entry(&mut self, meta: &EntryMeta, content: Option<&mut dyn Read>) -> io::Result<()> {
            let mut result = Ok(());
            let data = content.map(|r| {
                let mut v = Vec::new();
                let limit = self.read_at_most.unwrap_or(u64::MAX);
                result = r.take(limit).read_to_end(&mut v).map(|_| ());
                v
            });
            self.entries.push((meta.clone(), data));
            result
        }

        fn problem(&mut self, problem: InputProblem) {
            self.problems.push(problem);
        }
    }

    impl Seen {
        fn kinds(&self) -> Vec<(String, EntryKind)> {
            self.entries
                .iter()
                .map(|(m, _)| (m.path.clone(), m.kind.clone()))
                .collect()
        }

        fn problem_kinds(&self) -> Vec<(ProblemKind, String)> {
            self.problems
                .iter()
                .map(|p| (p.kind, p.path.clone()))
                .collect()
        }

        fn get(&self, path: &str) -> &(EntryMeta, Option<Vec<u8>>) {
            self.entries
                .iter()
                .find(|(m, _)| m.path == path)
                .unwrap_or_else(|| panic!("{path} not visited"))
        }

        fn content(&self, path: &str) -> &[u8] {
            self.get(path).1.as_deref().expect("content")
        }
    }

    fn run(path: &Path, limits: &Limits, seen: &mut Seen) -> InputSummary {
        walk(path, limits, seen).expect("walk")
    }

    fn owned(list: &[(&str, EntryKind)]) -> Vec<(String, EntryKind)> {
        list.iter()
            .map(|(p, k)| (p.to_string(), k.clone()))
            .collect()
    }

    fn owned_problems(list: &[(ProblemKind, &str)]) -> Vec<(ProblemKind, String)> {
        list.iter().map(|(k, p)| (*k, p.to_string())).collect()
    }

    fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(data).expect("gz");
        enc.finish().expect("gz")
    }

    /// A header with the name written byte for byte (the Builder refuses `..`).
    fn header(name: &[u8], et: T, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let slot = &mut h.as_old_mut().name;
        slot.fill(0);
        slot[..name.len()].copy_from_slice(name);
        h.set_entry_type(et);
        h.set_size(size);
        h.set_mode(if et == T::Directory { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_579_500_000);
        h.set_username("root").expect("user");
        h.set_groupname("wheel").expect("group");
        h.set_cksum();
        h
    }

    fn add(b: &mut tar::Builder<Vec<u8>>, name: &[u8], et: T, data: &[u8]) {
        let h = header(name, et, data.len() as u64);
        b.append(&h, data).expect("append");
    }

    fn add_link(b: &mut tar::Builder<Vec<u8>>, name: &[u8], et: T, target: &[u8]) {
        let mut h = header(name, et, 0);
        h.set_link_name_literal(target).expect("link");
        h.set_cksum();
        b.append(&h, io::empty()).expect("append");
    }

    const ACCESS: &[u8] = b"192.0.2.9 - - [10/Jan/2020:22:28:20 +0000] \"POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1\" 200 135 \"-\" \"curl\" \"Time: 6809 microsecs\"\n";

    fn hostile_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, b"./var/", T::Directory, b"");
        add(&mut b, b"./var/log/", T::Directory, b"");
        add(&mut b, b"../../etc/evil", T::Regular, b"pwned\n");
        add(&mut b, b"/var/log/httpaccess.log", T::Regular, ACCESS);
        add_link(&mut b, b"var/vpn/x", T::Symlink, b"../../../../etc");
        add_link(&mut b, b"var/vpn/ok", T::Symlink, b"/etc/passwd");
        add_link(&mut b, b"var/hl", T::Link, b"var/log/httpaccess.log");
        add_link(&mut b, b"var/hl2", T::Link, b"../outside");
        add(&mut b, b"dev/evil", T::Char, b"");
        add(&mut b, b"var/fifo", T::Fifo, b"");
        b.append_pax_extensions([
            ("ctime", b"1579000000.5".as_slice()),
            ("uname", b"nsroot".as_slice()),
        ])
        .expect("pax");
        let mut h = header(b"netscaler/suid", T::Regular, 10);
        h.set_mode(0o4755);
        h.set_uid(1001);
        h.set_gid(65534);
        h.set_cksum();
        b.append(&h, b"#!/bin/sh\n".as_slice()).expect("append");
        add(
            &mut b,
            b"var/big.bin",
            T::Regular,
            &pseudo_random(3 << 20, 7),
        );
        add(&mut b, b"var/after.txt", T::Regular, b"after\n");
        add(&mut b, b"var/tmp/new\nline\xff.xml", T::Regular, b"x");
        b.into_inner().expect("tar")
    }

    fn check_hostile(seen: &Seen) {
        assert_eq!(
            seen.kinds(),
            owned(&[
                ("/var", EntryKind::Dir),
                ("/var/log", EntryKind::Dir),
                ("/var/log/httpaccess.log", EntryKind::File),
                ("/var/vpn/x", EntryKind::Symlink("../../../../etc".into())),
                ("/var/vpn/ok", EntryKind::Symlink("/etc/passwd".into())),
                (
                    "/var/hl",
                    EntryKind::Hardlink("/var/log/httpaccess.log".into())
                ),
                ("/var/hl2", EntryKind::Hardlink("../outside".into())),
                ("/dev/evil", EntryKind::Device),
                ("/var/fifo", EntryKind::Fifo),
                ("/netscaler/suid", EntryKind::File),
                ("/var/big.bin", EntryKind::File),
                ("/var/after.txt", EntryKind::File),
                ("/var/tmp/new\\nline\\xff.xml", EntryKind::File),
            ])
        );
        assert_eq!(
            seen.problem_kinds(),
            owned_problems(&[
                (ProblemKind::PathTraversal, "../../etc/evil"),
                (ProblemKind::AbsolutePath, "/var/log/httpaccess.log"),
                (ProblemKind::LinkOutOfRoot, "var/vpn/x"),
                (ProblemKind::LinkOutOfRoot, "var/hl2"),
                (ProblemKind::SpecialFile, "dev/evil"),
                (ProblemKind::SpecialFile, "var/fifo"),
                (ProblemKind::Truncated, "var/big.bin"),
            ])
        );
        // Every reported path is one line.
        for (m, _) in &seen.entries {
            assert!(!m.path.contains('\n'));
        }
        let (access, data) = seen.get("/var/log/httpaccess.log");
        assert_eq!(data.as_deref(), Some(ACCESS));
        assert_eq!(
            (access.mode, access.uid, access.gid),
            (0o644, Some(0), Some(0))
        );
        assert_eq!(access.user.as_deref(), Some("root"));
        assert_eq!(access.group.as_deref(), Some("wheel"));
        assert_eq!(access.mtime, Some(1_579_500_000));
        assert_eq!(access.ctime, None);
        let (suid, _) = seen.get("/netscaler/suid");
        assert_eq!(
            (suid.mode, suid.uid, suid.gid),
            (0o4755, Some(1001), Some(65534))
        );
        assert_eq!(suid.user.as_deref(), Some("nsroot"));
        assert_eq!(suid.ctime, Some(1_579_000_000));
        assert_eq!(seen.get("/var/big.bin").0.size, 3 << 20);
        assert_eq!(seen.content("/var/after.txt"), b"after\n");
        for (m, data) in &seen.entries {
            assert_eq!(data.is_some(), m.kind == EntryKind::File, "{}", m.path);
        }
    }

    fn small_file_cap() -> Limits {
        Limits {
            max_file: 64 << 10,
            ..Limits::default()
        }
    }

    #[test]
    fn hostile_tar_is_streamed_never_written() {
        let tmp = Tmp::new("hostile");
        let bytes = hostile_tar();
        fs::write(tmp.join("bundle.tar"), &bytes).expect("write");
        fs::write(tmp.join("bundle.tar.gz"), gz(&bytes)).expect("write");
        let before = snapshot(&tmp.0);
        for name in ["bundle.tar", "bundle.tar.gz"] {
            let mut seen = Seen::default();
            let summary = run(&tmp.join(name), &small_file_cap(), &mut seen);
            check_hostile(&seen);
            assert_eq!(
                seen.content("/var/big.bin"),
                &pseudo_random(3 << 20, 7)[..64 << 10]
            );
            assert_eq!(summary.entries, 13);
            assert_eq!(summary.files, 5);
            // Contents handed out or read past, the traversal entry's included.
            assert_eq!(
                summary.bytes_read,
                (ACCESS.len() + 10 + (3 << 20) + 6 + 1 + 6) as u64
            );
        }
        assert_eq!(snapshot(&tmp.0), before);
    }

    #[test]
    fn partial_reads_leave_the_next_entry_intact() {
        let tmp = Tmp::new("partial");
        let bytes = hostile_tar();
        fs::write(tmp.join("b.tar.gz"), gz(&bytes)).expect("write");
        let mut seen = Seen {
            read_at_most: Some(3),
            ..Seen::default()
        };
        run(&tmp.join("b.tar.gz"), &Limits::default(), &mut seen);
        assert_eq!(seen.content("/var/big.bin"), &pseudo_random(3, 7)[..]);
        assert_eq!(seen.content("/var/after.txt"), b"aft");
        assert_eq!(seen.content("/var/tmp/new\\nline\\xff.xml"), b"x");
        assert!(
            !seen
                .problem_kinds()
                .iter()
                .any(|(k, _)| *k == ProblemKind::Truncated)
        );
    }

    #[test]
    fn wrapper_folder_is_stripped() {
        let tmp = Tmp::new("wrapper");
        let w = "collector_P_192.0.2.1_2020-01-20";
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, format!("./{w}/").as_bytes(), T::Directory, b"");
        add(&mut b, format!("./{w}/var/").as_bytes(), T::Directory, b"");
        add(
            &mut b,
            format!("{w}/var/log/httpaccess.log").as_bytes(),
            T::Regular,
            ACCESS,
        );
        add(
            &mut b,
            format!("{w}/../../evil").as_bytes(),
            T::Regular,
            b"x",
        );
        add_link(
            &mut b,
            format!("{w}/var/vpn/x").as_bytes(),
            T::Symlink,
            b"../../../../etc",
        );
        add(
            &mut b,
            format!("{w}/nsconfig/ns.conf").as_bytes(),
            T::Regular,
            b"set ns\n",
        );
        let target = format!("{w}/nsconfig/ns.conf");
        add_link(
            &mut b,
            format!("{w}/var/h").as_bytes(),
            T::Link,
            target.as_bytes(),
        );
        let bytes = b.into_inner().expect("tar");
        fs::write(tmp.join("w.tar"), &bytes).expect("write");
        fs::write(tmp.join("w.tar.gz"), gz(&bytes)).expect("write");
        for name in ["w.tar", "w.tar.gz"] {
            let mut seen = Seen::default();
            run(&tmp.join(name), &Limits::default(), &mut seen);
            assert_eq!(
                seen.kinds(),
                owned(&[
                    ("/var", EntryKind::Dir),
                    ("/var/log/httpaccess.log", EntryKind::File),
                    ("/var/vpn/x", EntryKind::Symlink("../../../../etc".into())),
                    ("/nsconfig/ns.conf", EntryKind::File),
                    ("/var/h", EntryKind::Hardlink("/nsconfig/ns.conf".into())),
                ])
            );
            assert_eq!(
                seen.problem_kinds(),
                owned_problems(&[
                    (ProblemKind::PathTraversal, &format!("{w}/../../evil")),
                    (ProblemKind::LinkOutOfRoot, &format!("{w}/var/vpn/x")),
                ])
            );
        }
    }

    #[test]
    fn appliance_top_folder_or_single_file_is_not_a_wrapper() {
        let tmp = Tmp::new("nowrap");
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, b"var/log/ns.log", T::Regular, b"x");
        add(&mut b, b"var/log/bash.log", T::Regular, b"y");
        fs::write(tmp.join("var.tar"), b.into_inner().expect("tar")).expect("write");
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, b"httpaccess.log", T::Regular, b"x");
        fs::write(tmp.join("one.tar"), b.into_inner().expect("tar")).expect("write");
        let mut seen = Seen::default();
        run(&tmp.join("var.tar"), &Limits::default(), &mut seen);
        assert_eq!(
            seen.kinds(),
            owned(&[
                ("/var/log/ns.log", EntryKind::File),
                ("/var/log/bash.log", EntryKind::File)
            ])
        );
        let mut seen = Seen::default();
        run(&tmp.join("one.tar"), &Limits::default(), &mut seen);
        assert_eq!(seen.kinds(), owned(&[("/httpaccess.log", EntryKind::File)]));
    }

    #[test]
    fn pax_path_traversal_is_caught() {
        let tmp = Tmp::new("paxpath");
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("path", b"../../etc/cron.d/evil".as_slice())])
            .expect("pax");
        add(&mut b, b"innocent", T::Regular, b"* * * * * root sh\n");
        add(&mut b, b"var/ok", T::Regular, b"ok");
        fs::write(tmp.join("p.tar"), b.into_inner().expect("tar")).expect("write");
        let mut seen = Seen::default();
        run(&tmp.join("p.tar"), &Limits::default(), &mut seen);
        assert_eq!(seen.kinds(), owned(&[("/var/ok", EntryKind::File)]));
        assert_eq!(
            seen.problem_kinds(),
            owned_problems(&[(ProblemKind::PathTraversal, "../../etc/cron.d/evil")])
        );
    }

    /// A 200 MiB run of zeros as concatenated gzip members, written without ever holding
    /// it in memory: about 200 KiB on disk.
    fn write_bomb(path: &Path) {
        let mut f = io::BufWriter::new(File::create(path).expect("create"));
        let h = header(b"var/log/zero.log", T::Regular, 200 << 20);
        f.write_all(&gz(h.as_bytes())).expect("write");
        let chunk = gz(&vec![0u8; 1 << 20]);
        for _ in 0..200 {
            f.write_all(&chunk).expect("write");
        }
        f.write_all(&gz(&[0u8; 1024])).expect("write");
        f.flush().expect("flush");
    }

    #[test]
    fn gzip_bomb_stops_early() {
        let tmp = Tmp::new("bomb");
        let bomb = tmp.join("bomb.tar.gz");
        write_bomb(&bomb);
        assert!(fs::metadata(&bomb).expect("md").len() < 1 << 20);
        let limits = Limits {
            max_ratio: 100,
            ..Limits::default()
        };
        // Whether the visitor reads the content or leaves it to be skipped.
        for read_at_most in [None, Some(0)] {
            let started = Instant::now();
            let mut seen = Seen {
                read_at_most,
                ..Seen::default()
            };
            let summary = run(&bomb, &limits, &mut seen);
            assert!(started.elapsed() < Duration::from_secs(30));
            assert_eq!(
                seen.kinds(),
                owned(&[("/var/log/zero.log", EntryKind::File)])
            );
            assert_eq!(seen.problems.len(), 1, "{:?}", seen.problems);
            assert_eq!(seen.problems[0].kind, ProblemKind::CompressionBomb);
            assert_eq!(seen.problems[0].path, "var/log/zero.log");
            assert!(seen.problems[0].detail.contains("more than 100 times"));
            assert!(summary.bytes_read < 16 << 20, "{summary:?}");
        }
        let limits = Limits {
            max_total: 2 << 20,
            max_ratio: u64::MAX,
            ..Limits::default()
        };
        let mut seen = Seen::default();
        run(&bomb, &limits, &mut seen);
        assert_eq!(seen.problems.len(), 1, "{:?}", seen.problems);
        assert_eq!(seen.problems[0].kind, ProblemKind::CompressionBomb);
        assert!(seen.problems[0].detail.contains("total cap"));
    }

    #[test]
    fn sparse_holes_are_not_read_through() {
        let tmp = Tmp::new("sparse");
        let hole = 1u64 << 50;
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(b"var/log/sparse.log", T::GNUSparse, 4);
        let gnu = h.as_gnu_mut().expect("gnu");
        gnu.sparse[0].set_offset(hole);
        gnu.sparse[0].set_length(4);
        gnu.set_real_size(hole + 4);
        h.set_cksum();
        b.append(&h, b"tail".as_slice()).expect("append");
        add(&mut b, b"var/after.txt", T::Regular, b"after\n");
        let bytes = b.into_inner().expect("tar");
        fs::write(tmp.join("s.tar"), &bytes).expect("write");
        fs::write(tmp.join("s.tar.gz"), gz(&bytes)).expect("write");
        let limits = Limits {
            max_file: 1024,
            ..Limits::default()
        };
        for name in ["s.tar", "s.tar.gz"] {
            for read_at_most in [None, Some(16)] {
                let started = Instant::now();
                let mut seen = Seen {
                    read_at_most,
                    ..Seen::default()
                };
                run(&tmp.join(name), &limits, &mut seen);
                assert!(started.elapsed() < Duration::from_secs(30));
                assert_eq!(seen.get("/var/log/sparse.log").0.size, hole + 4);
                assert_eq!(seen.content("/var/after.txt"), b"after\n", "{name}");
                assert_eq!(
                    seen.problem_kinds(),
                    owned_problems(&[(ProblemKind::Truncated, "var/log/sparse.log")])
                );
            }
        }
    }

    fn four_files() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, b"var/a.txt", T::Regular, b"alpha\n");
        add(&mut b, b"var/b.txt", T::Regular, b"bravo\n");
        add(
            &mut b,
            b"var/c.bin",
            T::Regular,
            &pseudo_random(256 << 10, 3),
        );
        add(&mut b, b"var/d.txt", T::Regular, b"delta\n");
        b.into_inner().expect("tar")
    }

    #[test]
    fn truncated_archives_keep_what_was_seen() {
        let tmp = Tmp::new("cut");
        let tar = four_files();
        let tgz = gz(&tar);
        fs::write(tmp.join("cut.tar.gz"), &tgz[..tgz.len() / 2]).expect("write");
        // Inside c.bin's content, and inside d.txt's header.
        fs::write(tmp.join("cut.tar"), &tar[..4 * 512 + 1000]).expect("write");
        let d_header = 5 * 512 + (256 << 10) + 100;
        fs::write(tmp.join("cut2.tar"), &tar[..d_header]).expect("write");
        for name in ["cut.tar.gz", "cut.tar", "cut2.tar"] {
            let mut seen = Seen::default();
            run(&tmp.join(name), &Limits::default(), &mut seen);
            assert_eq!(seen.content("/var/a.txt"), b"alpha\n", "{name}");
            assert_eq!(seen.content("/var/b.txt"), b"bravo\n", "{name}");
            assert!(seen.entries.iter().all(|(m, _)| m.path != "/var/d.txt"));
            assert_eq!(seen.problems.len(), 1, "{name}: {:?}", seen.problems);
            assert_eq!(seen.problems[0].kind, ProblemKind::Unreadable, "{name}");
        }
    }

    #[test]
    fn garbage_is_refused_or_reported() {
        let tmp = Tmp::new("garbage");
        fs::write(tmp.join("garbage.tar.gz"), pseudo_random(10_000, 11)).expect("write");
        assert!(matches!(
            walk(
                &tmp.join("garbage.tar.gz"),
                &Limits::default(),
                &mut Seen::default()
            ),
            Err(InputError::Unknown { .. })
        ));
        let mut fake_gz = vec![0x1f, 0x8b];
        fake_gz.extend(pseudo_random(10_000, 12));
        fs::write(tmp.join("fake.tar.gz"), fake_gz).expect("write");
        let mut fake_tar = pseudo_random(10_000, 13);
        fake_tar[257..262].copy_from_slice(b"ustar");
        fs::write(tmp.join("fake.tar"), fake_tar).expect("write");
        // A gzip stream that holds no tar.
        fs::write(tmp.join("log.gz"), gz(&pseudo_random(10_000, 14))).expect("write");
        for name in ["fake.tar.gz", "fake.tar", "log.gz"] {
            let mut seen = Seen::default();
            let summary = run(&tmp.join(name), &Limits::default(), &mut seen);
            assert!(seen.entries.is_empty(), "{name}");
            assert_eq!(summary.entries, 0);
            assert_eq!(seen.problem_kinds().len(), 1, "{name}: {:?}", seen.problems);
            assert_eq!(seen.problems[0].kind, ProblemKind::Unreadable, "{name}");
            // Parser messages quote the garbage; still one bounded line.
            let detail = &seen.problems[0].detail;
            assert!(!detail.contains('\n') && detail.len() < 400, "{detail}");
        }
    }

    #[test]
    fn entry_cap_stops_the_walk() {
        let tmp = Tmp::new("many");
        fs::write(tmp.join("m.tar"), four_files()).expect("write");
        let limits = Limits {
            max_entries: 2,
            ..Limits::default()
        };
        let mut seen = Seen::default();
        run(&tmp.join("m.tar"), &limits, &mut seen);
        assert_eq!(
            seen.kinds(),
            owned(&[
                ("/var/a.txt", EntryKind::File),
                ("/var/b.txt", EntryKind::File)
            ])
        );
        assert_eq!(
            seen.problem_kinds(),
            owned_problems(&[(ProblemKind::TooManyEntries, "var/c.bin")])
        );
        let dir = tmp.join("tree");
        for f in ["a", "b", "c"] {
            fs::create_dir_all(dir.join("var")).expect("mkdir");
            fs::write(dir.join("var").join(f), f).expect("write");
        }
        fs::create_dir_all(dir.join("flash")).expect("mkdir");
        let mut seen = Seen::default();
        run(&dir, &limits, &mut seen);
        assert_eq!(
            seen.kinds(),
            owned(&[("/flash", EntryKind::Dir), ("/var", EntryKind::Dir)])
        );
        assert_eq!(seen.problems[0].kind, ProblemKind::TooManyEntries);
    }

    #[test]
    fn oversized_extension_header_is_refused() {
        let tmp = Tmp::new("longname");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        let size = 9 << 20;
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(T::GNULongName);
        h.set_size(size);
        h.set_cksum();
        b.append(&h, io::repeat(b'a').take(size)).expect("append");
        add(&mut b, b"var/x", T::Regular, b"x");
        fs::write(tmp.join("l.tar"), b.into_inner().expect("tar")).expect("write");
        let mut seen = Seen::default();
        run(&tmp.join("l.tar"), &Limits::default(), &mut seen);
        assert!(seen.entries.is_empty());
        assert_eq!(seen.problems.len(), 1, "{:?}", seen.problems);
        assert_eq!(seen.problems[0].kind, ProblemKind::Unreadable);
        assert!(seen.problems[0].detail.contains("extension headers"));
    }

    fn image_tree(root: &Path) {
        let mk = |rel: &str| fs::create_dir_all(root.join(rel)).expect("mkdir");
        for d in [
            "etc",
            "netscaler",
            "tmp",
            "usr/bin",
            "var/log",
            "var/tmp",
            "var/vpn",
        ] {
            mk(d);
        }
        fs::write(root.join("etc/passwd"), "root:*:0:0::/root:/bin/sh\n").expect("write");
        fs::write(root.join("var/log/httpaccess.log"), ACCESS).expect("write");
        fs::write(root.join("netscaler/big.bin"), pseudo_random(100 << 10, 5)).expect("write");
        let suid = root.join("usr/bin/suid");
        fs::write(&suid, "#!/bin/sh\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).expect("chmod");
        std::os::unix::fs::symlink("/etc/passwd", root.join("var/vpn/ok")).expect("link");
        std::os::unix::fs::symlink("../../etc/passwd", root.join("var/vpn/up")).expect("link");
        std::os::unix::fs::symlink("../../outside", root.join("var/out")).expect("link");
        fs::write(root.join("var/tmp/bad\nname.xml"), "<x/>").expect("write");
        let latin1 = root
            .join("var/tmp")
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        fs::write(latin1, "x").expect("write");
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("tmp/fifo"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
    }

    #[test]
    fn image_folder_is_walked_without_following_or_opening_specials() {
        let tmp = Tmp::new("image");
        let root = tmp.join("image");
        image_tree(&root);
        let before = snapshot(&tmp.0);
        let limits = Limits {
            max_file: 1024,
            ..Limits::default()
        };
        // Opening the FIFO would block forever: run with a deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        let walked = root.clone();
        std::thread::spawn(move || {
            let mut seen = Seen::default();
            let summary = walk(&walked, &limits, &mut seen).map(|s| (s, seen));
            let _ = tx.send(summary);
        });
        let (summary, seen) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("walk hung (a FIFO was opened?)")
            .expect("walk");
        assert_eq!(
            seen.kinds(),
            owned(&[
                ("/etc", EntryKind::Dir),
                ("/etc/passwd", EntryKind::File),
                ("/netscaler", EntryKind::Dir),
                ("/netscaler/big.bin", EntryKind::File),
                ("/tmp", EntryKind::Dir),
                ("/tmp/fifo", EntryKind::Fifo),
                ("/usr", EntryKind::Dir),
                ("/usr/bin", EntryKind::Dir),
                ("/usr/bin/suid", EntryKind::File),
                ("/var", EntryKind::Dir),
                ("/var/log", EntryKind::Dir),
                ("/var/log/httpaccess.log", EntryKind::File),
                ("/var/out", EntryKind::Symlink("../../outside".into())),
                ("/var/tmp", EntryKind::Dir),
                ("/var/tmp/bad\\nname.xml", EntryKind::File),
                ("/var/tmp/caf\\xe9", EntryKind::File),
                ("/var/vpn", EntryKind::Dir),
                ("/var/vpn/ok", EntryKind::Symlink("/etc/passwd".into())),
                ("/var/vpn/up", EntryKind::Symlink("../../etc/passwd".into())),
            ])
        );
        let host = |rel: &str| shown(&root.join(rel));
        assert_eq!(
            seen.problem_kinds(),
            vec![
                (ProblemKind::Truncated, host("netscaler/big.bin")),
                (ProblemKind::SpecialFile, host("tmp/fifo")),
                (ProblemKind::LinkOutOfRoot, host("var/out")),
            ]
        );
        let me = fs::metadata(&root).expect("md");
        let (suid, data) = seen.get("/usr/bin/suid");
        assert_eq!(suid.mode, 0o4755);
        assert_eq!((suid.uid, suid.gid), (Some(me.uid()), Some(me.gid())));
        assert_eq!((suid.user.clone(), suid.group.clone()), (None, None));
        assert!(suid.mtime.is_some() && suid.ctime.is_some());
        assert_eq!(suid.size, 10);
        assert_eq!(data.as_deref(), Some(b"#!/bin/sh\n".as_slice()));
        assert_eq!(seen.content("/var/log/httpaccess.log"), ACCESS);
        assert_eq!(
            seen.content("/netscaler/big.bin"),
            &pseudo_random(100 << 10, 5)[..1024]
        );
        for (m, data) in &seen.entries {
            assert_eq!(data.is_some(), m.kind == EntryKind::File, "{}", m.path);
        }
        assert_eq!(summary.entries, 19);
        assert_eq!(summary.files, 6);
        assert_eq!(
            summary.bytes_read,
            (26 + 1024 + 10 + ACCESS.len() + 4 + 1) as u64
        );
        assert_eq!(snapshot(&tmp.0), before);
    }

    #[test]
    fn unreadable_file_is_still_visited() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = Tmp::new("unreadable");
        let root = tmp.join("img");
        fs::create_dir_all(root.join("nsconfig")).expect("mkdir");
        fs::create_dir_all(root.join("var")).expect("mkdir");
        let conf = root.join("nsconfig/ns.conf");
        fs::write(&conf, "set ns\n").expect("write");
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o000)).expect("chmod");
        if File::open(&conf).is_ok() {
            return; // running as root: permissions do not stop us
        }
        let mut seen = Seen::default();
        run(&root, &Limits::default(), &mut seen);
        let (meta, data) = seen.get("/nsconfig/ns.conf");
        assert_eq!(
            (meta.kind.clone(), meta.mode, data.clone()),
            (EntryKind::File, 0, None)
        );
        assert_eq!(
            seen.problem_kinds(),
            vec![(ProblemKind::Unreadable, shown(&conf))]
        );
    }

    #[test]
    fn folder_holding_one_folder_is_unwrapped() {
        let tmp = Tmp::new("dirwrap");
        let case = tmp.join("case-42");
        fs::create_dir_all(case.join("nsroot-image/var/log")).expect("mkdir");
        fs::write(case.join("nsroot-image/var/log/ns.log"), "x").expect("write");
        let mut seen = Seen::default();
        run(&case, &Limits::default(), &mut seen);
        assert_eq!(
            seen.kinds(),
            owned(&[
                ("/var", EntryKind::Dir),
                ("/var/log", EntryKind::Dir),
                ("/var/log/ns.log", EntryKind::File)
            ])
        );
        // A folder holding only `var` is already an appliance root.
        let mut seen = Seen::default();
        run(&case.join("nsroot-image"), &Limits::default(), &mut seen);
        assert_eq!(seen.entries[0].0.path, "/var");
    }

    #[test]
    fn kind_is_decided_by_content() {
        let tmp = Tmp::new("kind");
        let tar = four_files();
        fs::write(tmp.join("looks.tgz"), &tar).expect("write");
        fs::write(tmp.join("looks.tar"), gz(&tar)).expect("write");
        fs::write(tmp.join("empty.tar"), b"").expect("write");
        assert_eq!(evidence_kind(&tmp.0).expect("dir"), EvidenceKind::Directory);
        assert_eq!(
            evidence_kind(&tmp.join("looks.tgz")).expect("tar"),
            EvidenceKind::Tar
        );
        assert_eq!(
            evidence_kind(&tmp.join("looks.tar")).expect("gz"),
            EvidenceKind::TarGz
        );
        assert!(matches!(
            evidence_kind(&tmp.join("empty.tar")),
            Err(InputError::Unknown { .. })
        ));
        assert!(matches!(
            evidence_kind(&tmp.join("missing")),
            Err(InputError::Io { .. })
        ));
        // Trailing bytes after the archive (a `Done` from the CLI that streamed it) are
        // never reached.
        let mut trailing = gz(&tar);
        trailing.extend_from_slice(b"Done\n");
        fs::write(tmp.join("looks.tar"), trailing).expect("write");
        let mut seen = Seen::default();
        run(&tmp.join("looks.tar"), &Limits::default(), &mut seen);
        assert_eq!(seen.entries.len(), 4);
        assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    }

    #[test]
    fn names_are_escaped_to_one_line() {
        assert_eq!(escape_bytes(b"var/log/ns.log"), "var/log/ns.log");
        assert_eq!(escape_bytes(b"a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape_bytes(b"\x1b[31m\x7f"), "\\x1b[31m\\x7f");
        assert_eq!(escape_bytes(b"caf\xe9 \xff"), "caf\\xe9 \\xff");
        assert_eq!(escape_bytes(b"back\\slash"), "back\\\\slash");
        assert_eq!(escape_bytes("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(
            escape_bytes("x\u{85}y\u{2028}z\u{202e}lmx.xml".as_bytes()),
            "x\\u{85}y\\u{2028}z\\u{202e}lmx.xml"
        );
    }

    #[test]
    fn link_targets_resolve_lexically_inside_the_root() {
        let base: Vec<&[u8]> = vec![b"var", b"vpn"];
        assert!(resolve(&base, b"../../etc/passwd").is_some());
        assert!(resolve(&base, b"../../../etc").is_none());
        assert!(resolve(&base, b"/etc/passwd").is_some());
        assert!(resolve(&base, b"/../etc").is_none());
        assert!(resolve(&base, b"./x/../../y").is_some());
        assert!(components(b"./var//log/").is_some_and(|c| c == [b"var", b"log"]));
        assert!(components(b"var/../log").is_none());
    }
}
