//! Where targets come from, checked in full before anything is scanned.
//!
//! [`TargetInputs::prepare`] reads every source once: a malformed line anywhere stops the
//! scan before the first packet, with the file and line in the error. Networks and ranges
//! are kept (as merged ranges) to form the ordered address space; everything else is only
//! counted here and streamed again during the scan, so a list of ten million targets costs
//! no memory. Standard input, which cannot be read twice, is spooled to a private
//! temporary file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use wachter_core::addr::{IpRange, RangeSet};
use wachter_core::targets::{TargetError, TargetItem, TargetReader, parse_line};

/// One place targets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line argument in the generic syntax.
    Argument(String),
    /// A file in any supported format (`@path` on the command line).
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Source {
    /// Reads a command-line word: `@file`, `-`, or a target.
    pub fn from_arg(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else if let Some(path) = arg.strip_prefix('@') {
            Source::File(PathBuf::from(path))
        } else {
            Source::Argument(arg.to_string())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// The validated inputs of a scan.
#[derive(Debug)]
pub struct TargetInputs {
    /// Networks and ranges, merged.
    pub networks: RangeSet,
    /// Sources to stream again for the one-by-one targets, in order.
    streamed: Vec<Source>,
    /// How many one-by-one items the sources hold (before sharding).
    pub streamed_items: u64,
    /// The spooled copy of stdin: held so the file lives as long as the inputs, removed on drop.
    _spool: Option<Spool>,
}

#[derive(Debug)]
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl TargetInputs {
    /// Reads and checks every source.
    pub fn prepare(sources: &[Source]) -> Result<Self, InputError> {
        let mut networks: Vec<IpRange> = Vec::new();
        let mut streamed = Vec::new();
        let mut streamed_items = 0u64;
        let mut spool = None;
        let mut merge_at = 1usize << 20;
        for source in sources {
            let source = match source {
                Source::Stdin => {
                    if spool.is_some() {
                        continue; // stdin named twice: it can only be read once
                    }
                    let path = spool_stdin()?;
                    spool = Some(Spool(path.clone()));
                    Source::File(path)
                }
                other => other.clone(),
            };
            let mut count = 0u64;
            for_each_item(&source, |item| {
                match item {
                    TargetItem::Network(range) => networks.push(range),
                    _ => count += 1,
                }
                // Keep the range list compact when a file holds many networks: merge when it
                // has doubled since the last merge (amortised linear, not once per line).
                if networks.len() >= merge_at {
                    let merged = RangeSet::from_ranges(networks.drain(..));
                    networks.extend(merged.ranges().iter().copied());
                    merge_at = (networks.len() * 2).max(1 << 20);
                }
            })?;
            if count > 0 {
                streamed_items += count;
                streamed.push(source);
            }
        }
        Ok(TargetInputs {
            networks: RangeSet::from_ranges(networks),
            streamed,
            streamed_items,
            _spool: spool,
        })
    }

    /// The one-by-one items again, in input order. Sources were validated by
    /// [`prepare`](Self::prepare); an error now means a file changed under us, and is
    /// yielded, not ignored.
    pub fn streamed(&self) -> impl Iterator<Item = Result<TargetItem, InputError>> + '_ {
        self.streamed
            .iter()
            .flat_map(items_of)
            .filter(|item| !matches!(item, Ok(TargetItem::Network(_))))
    }
}

/// The items of one source as an iterator.
fn items_of(source: &Source) -> Box<dyn Iterator<Item = Result<TargetItem, InputError>> + '_> {
    match source {
        Source::Argument(text) => {
            Box::new(std::iter::once(argument_item(text)).filter_map(Result::transpose))
        }
        Source::File(path) => {
            let file = match File::open(path) {
                Ok(file) => file,
                Err(source) => {
                    return Box::new(std::iter::once(Err(InputError::Io {
                        path: path.display().to_string(),
                        source,
                    })));
                }
            };
            match TargetReader::new(
                path.display().to_string(),
                BufReader::with_capacity(64 * 1024, file),
            ) {
                Ok(reader) => {
                    Box::new(reader.map(|r| r.map(|(_, item)| item).map_err(InputError::from)))
                }
                Err(e) => Box::new(std::iter::once(Err(e.into()))),
            }
        }
        // Stdin is spooled to a file by `prepare`; nothing reads it directly here.
        Source::Stdin => Box::new(std::iter::empty()),
    }
}

fn argument_item(text: &str) -> Result<Option<TargetItem>, InputError> {
    parse_line(text).map_err(|why| {
        TargetError {
            origin: "argument".into(),
            line: 1,
            text: text.to_string(),
            why,
        }
        .into()
    })
}

fn for_each_item(source: &Source, mut f: impl FnMut(TargetItem)) -> Result<(), InputError> {
    for item in items_of(source) {
        f(item?);
    }
    Ok(())
}

fn spool_stdin() -> Result<PathBuf, InputError> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "wachter-stdin-{}-{}.txt",
        std::process::id(),
        unique()
    ));
    let io_err = |source| InputError::Io {
        path: "stdin".into(),
        source,
    };
    // Target lists are confidential: readable by this user only.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    let stdin = io::stdin();
    let mut lock = stdin.lock();
    loop {
        let chunk = lock.fill_buf().map_err(io_err)?;
        if chunk.is_empty() {
            break;
        }
        out.write_all(chunk).map_err(io_err)?;
        let n = chunk.len();
        lock.consume(n);
    }
    Ok(path)
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Reads a list of networks (scope or opt-out file): one address, CIDR or range per line,
/// `#` comments. Errors name the file and line.
pub fn read_network_list(path: &Path) -> Result<Vec<IpRange>, InputError> {
    let file = File::open(path).map_err(|source| InputError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    let capped = wachter_core::capped::Capped::new(
        BufReader::new(file),
        b'\n',
        wachter_core::targets::MAX_LINE,
    );
    for (i, line) in capped.lines().enumerate() {
        let line = line.map_err(|source| InputError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let range = text.parse::<IpRange>().map_err(|e| TargetError {
            origin: path.display().to_string(),
            line: i as u64 + 1,
            text: text.to_string(),
            why: e.to_string(),
        })?;
        out.push(range);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("wachter-test-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn networks_are_kept_and_the_rest_streamed() {
        let file = temp_file(
            "mixed.txt",
            "# list\n127.0.0.0/30\n127.0.1.5\n127.0.1.6,vpn.lab.test\n",
        );
        let inputs = TargetInputs::prepare(&[
            Source::File(file.clone()),
            Source::Argument("127.0.2.0-127.0.2.3".into()),
        ])
        .unwrap();
        assert_eq!(inputs.networks.address_count(), 8);
        assert_eq!(inputs.streamed_items, 2);
        let seen: Vec<TargetItem> = inputs.streamed().collect::<Result<_, _>>().unwrap();
        assert_eq!(seen.len(), 2);
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn one_bad_line_stops_everything() {
        let file = temp_file("bad.txt", "127.0.0.1\n127.0.0.2\nnot/a/target\n");
        let err = TargetInputs::prepare(&[Source::File(file.clone())]).unwrap_err();
        assert!(err.to_string().contains("bad.txt:3:"), "{err}");
        std::fs::remove_file(file).unwrap();
        let err = TargetInputs::prepare(&[Source::Argument("127.0.0.300".into())]).unwrap_err();
        assert!(err.to_string().starts_with("argument:1:"), "{err}");
        let missing =
            TargetInputs::prepare(&[Source::File("/nonexistent/targets.txt".into())]).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/targets.txt"));
    }

    #[test]
    fn network_lists_name_bad_lines() {
        let file = temp_file("scope.txt", "127.0.0.0/8 # lab\n\nfoo\n");
        let err = read_network_list(&file).unwrap_err();
        assert!(err.to_string().contains("scope.txt:3:"), "{err}");
        std::fs::remove_file(file).unwrap();
    }
}
