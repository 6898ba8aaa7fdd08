//! Port lists: `443`, `80,443`, `8000-8100`, mixed.

use std::fmt;
use std::str::FromStr;

/// A sorted, de-duplicated, non-empty list of TCP ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortList(Vec<u16>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad port list {text:?}: {why}")]
pub struct PortError {
    text: String,
    why: &'static str,
}

impl PortList {
    pub fn single(port: u16) -> Self {
        PortList(vec![port])
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for PortList {
    type Err = PortError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |why| PortError {
            text: text.to_string(),
            why,
        };
        let mut ports = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let lo: u16 = lo
                .parse()
                .map_err(|_| err("not a number from 1 to 65535"))?;
            let hi: u16 = hi
                .parse()
                .map_err(|_| err("not a number from 1 to 65535"))?;
            if lo == 0 || hi == 0 {
                return Err(err("port 0 cannot be scanned"));
            }
            if lo > hi {
                return Err(err("a range ends before it starts"));
            }
            ports.extend(lo..=hi);
        }
        if ports.is_empty() {
            return Err(err("no ports"));
        }
        ports.sort_unstable();
        ports.dedup();
        Ok(PortList(ports))
    }
}

impl fmt::Display for PortList {
    /// Compresses runs back into ranges: `80,443,8000-8010`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        let p: PortList = "443, 80,8000-8003,443".parse().unwrap();
        assert_eq!(p.as_slice(), &[80, 443, 8000, 8001, 8002, 8003]);
        assert_eq!(p.to_string(), "80,443,8000-8003");
        assert_eq!("1-65535".parse::<PortList>().unwrap().len(), 65535);
        assert!("0".parse::<PortList>().is_err());
        assert!("65536".parse::<PortList>().is_err());
        assert!("90-80".parse::<PortList>().is_err());
        assert!("".parse::<PortList>().is_err());
        assert!("http".parse::<PortList>().is_err());
    }
}
