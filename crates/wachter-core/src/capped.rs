//! A reader that refuses a run of more than `max` bytes without a delimiter, so parsers that
//! buffer a whole line, field or XML tag cannot be made to buffer a whole hostile file.

use std::io::{self, BufRead, Read};

/// Wraps a `BufRead`; reading fails once `max` bytes pass without `delimiter`.
pub struct Capped<R> {
    inner: R,
    delimiter: u8,
    max: usize,
    run: usize,
}

impl<R: BufRead> Capped<R> {
    pub fn new(inner: R, delimiter: u8, max: usize) -> Self {
        Capped {
            inner,
            delimiter,
            max,
            run: 0,
        }
    }

    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "more than {} bytes without a {:?}",
                self.max, self.delimiter as char
            ),
        )
    }
}

impl<R: BufRead> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Capped<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.run > self.max {
            return Err(self.too_long());
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            let consumed = &buf[..amount.min(buf.len())];
            match consumed.iter().rposition(|b| *b == self.delimiter) {
                Some(at) => self.run = consumed.len() - at - 1,
                None => self.run += consumed.len(),
            }
        }
        self.inner.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_fail_and_short_ones_pass() {
        let mut ok = String::new();
        Capped::new(&b"ab\ncd\nef"[..], b'\n', 4)
            .read_to_string(&mut ok)
            .unwrap();
        assert_eq!(ok, "ab\ncd\nef");
        let long = vec![b'x'; 10_000];
        let mut sink = Vec::new();
        assert!(
            Capped::new(&long[..], b'\n', 100)
                .read_to_end(&mut sink)
                .is_err()
        );
    }
}
