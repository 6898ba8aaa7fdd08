//! Builds and bulletins as data: the rdx_en stamp table, the `?v=` hashes, the
//! Last-Modified table and the CVE thresholds, parsed from the files in `data/`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use wachter_core::assessment::Verdict;

/// A NetScaler build: `13.0-47.24` is train 13.0, build 47, patch 24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
    pub build: u32,
    pub patch: u32,
}

impl Version {
    pub fn train(&self) -> (u16, u16) {
        (self.major, self.minor)
    }

    fn build_key(&self) -> (u32, u32) {
        (self.build, self.patch)
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a NetScaler build (M.m-B.P)");
        let (train, build) = s.trim().split_once('-').ok_or_else(bad)?;
        let (major, minor) = train.split_once('.').ok_or_else(bad)?;
        let (b, p) = build.split_once('.').ok_or_else(bad)?;
        Ok(Version {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
            build: b.parse().map_err(|_| bad())?,
            patch: p.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}-{}.{}",
            self.major, self.minor, self.build, self.patch
        )
    }
}

fn parse_train(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('.')
        .ok_or_else(|| format!("bad train {s:?}"))?;
    Ok((
        a.parse().map_err(|_| format!("bad train {s:?}"))?,
        b.parse().map_err(|_| format!("bad train {s:?}"))?,
    ))
}

/// `"55.18"` → (55, 18).
fn parse_build(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once('.')
        .ok_or_else(|| format!("bad build {s:?}"))?;
    Ok((
        a.parse().map_err(|_| format!("bad build {s:?}"))?,
        b.parse().map_err(|_| format!("bad build {s:?}"))?,
    ))
}

/// One row of the rdx_en table.
#[derive(Clone, Debug)]
pub struct StampRow {
    pub date: String,
    pub stamp: u32,
    pub vhash: Option<String>,
    /// `None` where the table says `unknown`.
    pub version: Option<Version>,
}

/// The tables a NetScaler assessment consults.
#[derive(Debug)]
pub struct Rules {
    pub stamps: Vec<StampRow>,
    by_stamp: HashMap<u32, Vec<usize>>,
    by_vhash: HashMap<String, usize>,
    pub last_modified: Vec<(String, Version)>,
    pub stamp_zero: Vec<Version>,
    pub cves: Vec<CveRule>,
}

/// One bulletin's affected builds.
#[derive(Clone, Debug)]
pub struct CveRule {
    pub id: String,
    pub advisory: String,
    pub title: String,
    pub remote_probe: bool,
    pub precondition: String,
    fixed: BTreeMap<(u16, u16), (u32, u32)>,
    /// (train, build number) of a FIPS branch → first fixed (build, patch).
    fips: HashMap<((u16, u16), u32), (u32, u32)>,
    fips_not_affected: Vec<((u16, u16), u32)>,
    older_vulnerable: bool,
}

/// The version-only verdict of one rule for one build, with a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionVerdict {
    pub verdict: Verdict,
    pub detail: String,
}

impl CveRule {
    pub fn judge(&self, v: &Version) -> VersionVerdict {
        let branch = (v.train(), v.build);
        let say = |verdict, detail: String| VersionVerdict { verdict, detail };
        if self.fips_not_affected.contains(&branch) {
            return say(
                Verdict::Patched,
                format!(
                    "{v}: FIPS/NDcPP branch {}.{}-{} not affected",
                    v.major, v.minor, v.build
                ),
            );
        }
        let threshold = self
            .fips
            .get(&branch)
            .map(|f| (f, "FIPS/NDcPP build "))
            .or_else(|| self.fixed.get(&v.train()).map(|f| (f, "build ")));
        if let Some((&(build, patch), kind)) = threshold {
            let first_fixed = format!("{}.{}-{build}.{patch}", v.major, v.minor);
            return if v.build_key() < (build, patch) {
                say(
                    Verdict::Vulnerable,
                    format!("{v} is below the first fixed {kind}{first_fixed}"),
                )
            } else {
                say(
                    Verdict::Patched,
                    format!("{v} is at or above the first fixed {kind}{first_fixed}"),
                )
            };
        }
        let newest = self.fixed.keys().next_back().copied().unwrap_or((0, 0));
        match v.train().cmp(&newest) {
            Ordering::Greater => say(
                Verdict::Patched,
                format!("train {}.{} was released after the fix", v.major, v.minor),
            ),
            _ if self.older_vulnerable => say(
                Verdict::Vulnerable,
                format!(
                    "train {}.{} is end of life and never received the fix",
                    v.major, v.minor
                ),
            ),
            _ => say(
                Verdict::Unknown,
                format!(
                    "train {}.{} is not covered by {}",
                    v.major, v.minor, self.advisory
                ),
            ),
        }
    }
}

#[derive(Deserialize)]
struct CveFile {
    cve: Vec<CveEntry>,
    #[serde(default)]
    last_modified: Vec<LastModifiedEntry>,
    stamp_zero: StampZero,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CveEntry {
    id: String,
    advisory: String,
    title: String,
    #[allow(dead_code)]
    published: String,
    #[allow(dead_code)]
    exploited: bool,
    #[serde(default)]
    remote_probe: bool,
    #[serde(default)]
    precondition: String,
    fixed: BTreeMap<String, String>,
    #[serde(default)]
    fips: BTreeMap<String, String>,
    #[serde(default)]
    fips_not_affected: Vec<String>,
    older_trains: String,
}

#[derive(Deserialize)]
struct LastModifiedEntry {
    value: String,
    version: String,
}

#[derive(Deserialize)]
struct StampZero {
    candidates: Vec<String>,
}

/// The data files compiled into the binary.
pub const STAMPS_CSV: &str = include_str!("../../data/netscaler-rdx-stamps.csv");
pub const CVES_TOML: &str = include_str!("../../data/netscaler-cves.toml");

impl Rules {
    /// Parses the two data files. Errors name the file and row: the files ship with the
    /// binary, and a test parses them, so an error here is a packaging bug.
    pub fn parse(stamps_csv: &str, cves_toml: &str) -> Result<Rules, String> {
        let mut stamps = Vec::new();
        for (i, line) in stamps_csv.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("rdx_en_date") {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let [date, stamp, vhash, version] = fields[..] else {
                return Err(format!("stamps line {}: expected 4 fields", i + 1));
            };
            stamps.push(StampRow {
                date: date.to_string(),
                stamp: stamp
                    .parse()
                    .map_err(|_| format!("stamps line {}: bad stamp", i + 1))?,
                vhash: (!vhash.is_empty()).then(|| vhash.to_ascii_lowercase()),
                version: if version == "unknown" {
                    None
                } else {
                    Some(
                        version
                            .parse()
                            .map_err(|e| format!("stamps line {}: {e}", i + 1))?,
                    )
                },
            });
        }
        let mut by_stamp: HashMap<u32, Vec<usize>> = HashMap::new();
        let mut by_vhash = HashMap::new();
        for (i, row) in stamps.iter().enumerate() {
            by_stamp.entry(row.stamp).or_default().push(i);
            if let Some(h) = &row.vhash {
                by_vhash.entry(h.clone()).or_insert(i);
            }
        }
        let file: CveFile = toml::from_str(cves_toml).map_err(|e| format!("CVE rules: {e}"))?;
        let mut cves = Vec::new();
        for entry in file.cve {
            let mut fixed = BTreeMap::new();
            for (train, build) in &entry.fixed {
                fixed.insert(parse_train(train)?, parse_build(build)?);
            }
            let branch = |key: &str| -> Result<((u16, u16), u32), String> {
                let (train, build) = key
                    .split_once('-')
                    .ok_or_else(|| format!("{}: bad FIPS branch {key:?}", entry.id))?;
                Ok((
                    parse_train(train)?,
                    build
                        .parse()
                        .map_err(|_| format!("{}: bad FIPS branch {key:?}", entry.id))?,
                ))
            };
            let mut fips = HashMap::new();
            for (key, build) in &entry.fips {
                fips.insert(branch(key)?, parse_build(build)?);
            }
            let fips_not_affected = entry
                .fips_not_affected
                .iter()
                .map(|k| branch(k))
                .collect::<Result<_, _>>()?;
            let older_vulnerable = match entry.older_trains.as_str() {
                "vulnerable" => true,
                "unknown" => false,
                other => {
                    return Err(format!(
                        "{}: older_trains must be vulnerable or unknown, not {other:?}",
                        entry.id
                    ));
                }
            };
            cves.push(CveRule {
                id: entry.id,
                advisory: entry.advisory,
                title: entry.title,
                remote_probe: entry.remote_probe,
                precondition: entry.precondition,
                fixed,
                fips,
                fips_not_affected,
                older_vulnerable,
            });
        }
        let last_modified = file
            .last_modified
            .into_iter()
            .map(|e| Ok((e.value, e.version.parse::<Version>()?)))
            .collect::<Result<Vec<_>, String>>()?;
        let stamp_zero = file
            .stamp_zero
            .candidates
            .iter()
            .map(|c| c.parse())
            .collect::<Result<Vec<Version>, String>>()?;
        Ok(Rules {
            stamps,
            by_stamp,
            by_vhash,
            last_modified,
            stamp_zero,
            cves,
        })
    }

    /// The built-in tables.
    pub fn builtin() -> Rules {
        // The files are compiled in and parsed by a unit test; failing here is a build defect.
        Rules::parse(STAMPS_CSV, CVES_TOML)
            .unwrap_or_else(|e| panic!("built-in NetScaler data files are broken: {e}"))
    }

    pub fn rows_for_stamp(&self, stamp: u32) -> impl Iterator<Item = &StampRow> {
        self.by_stamp
            .get(&stamp)
            .into_iter()
            .flatten()
            .map(|i| &self.stamps[*i])
    }

    pub fn row_for_vhash(&self, vhash: &str) -> Option<&StampRow> {
        self.by_vhash
            .get(&vhash.to_ascii_lowercase())
            .map(|i| &self.stamps[*i])
    }

    /// The newest known build older than `stamp`, for "newer than X" statements.
    pub fn nearest_older(&self, stamp: u32) -> Option<&StampRow> {
        self.stamps
            .iter()
            .filter(|r| r.stamp < stamp && r.version.is_some())
            .max_by_key(|r| r.stamp)
    }

    pub fn cve(&self, id: &str) -> Option<&CveRule> {
        self.cves.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn builtin_tables_parse() {
        let r = Rules::builtin();
        assert!(r.stamps.len() >= 238, "{}", r.stamps.len());
        assert_eq!(r.cves.len(), 9);
        assert_eq!(
            r.rows_for_stamp(1579524387).next().unwrap().version,
            Some(v("12.1-55.18"))
        );
        assert_eq!(
            r.row_for_vhash("26DF0E65FBA681FAAEB333058A8B28BF")
                .unwrap()
                .version,
            Some(v("12.1-50.28"))
        );
        assert_eq!(r.stamp_zero.len(), 3);
        // Fox-IT's loader asserts the rows are sorted by stamp.
        assert!(r.stamps.windows(2).all(|w| w[0].stamp <= w[1].stamp));
    }

    #[test]
    fn cve_2019_19781_thresholds() {
        let r = Rules::builtin();
        let c = r.cve("CVE-2019-19781").unwrap();
        let verdict = |s: &str| c.judge(&v(s)).verdict;
        assert_eq!(verdict("13.0-47.22"), Verdict::Vulnerable);
        assert_eq!(verdict("13.0-47.24"), Verdict::Patched);
        assert_eq!(verdict("12.1-55.13"), Verdict::Vulnerable);
        assert_eq!(verdict("12.1-55.18"), Verdict::Patched);
        assert_eq!(verdict("12.1-50.28"), Verdict::Vulnerable);
        assert_eq!(verdict("11.1-63.15"), Verdict::Patched);
        assert_eq!(verdict("10.5-70.11"), Verdict::Vulnerable);
        assert_eq!(
            verdict("13.1-49.13"),
            Verdict::Patched,
            "13.1 came after the fix"
        );
        assert_eq!(
            verdict("10.1-1.1"),
            Verdict::Unknown,
            "older than 10.5 is not covered"
        );
    }

    #[test]
    fn fips_branches_and_end_of_life() {
        let r = Rules::builtin();
        let judge = |cve: &str, s: &str| r.cve(cve).unwrap().judge(&v(s)).verdict;
        assert_eq!(judge("CVE-2025-5777", "13.1-37.234"), Verdict::Vulnerable);
        assert_eq!(judge("CVE-2025-5777", "13.1-37.235"), Verdict::Patched);
        assert_eq!(judge("CVE-2025-5777", "12.1-55.327"), Verdict::Vulnerable);
        assert_eq!(judge("CVE-2025-5777", "12.1-55.328"), Verdict::Patched);
        assert_eq!(
            judge("CVE-2025-5777", "13.0-92.21"),
            Verdict::Vulnerable,
            "13.0 is end of life"
        );
        assert_eq!(judge("CVE-2025-5777", "14.1-43.50"), Verdict::Vulnerable);
        assert_eq!(judge("CVE-2025-5777", "14.1-43.56"), Verdict::Patched);
        assert_eq!(
            judge("CVE-2025-6543", "12.1-55.300"),
            Verdict::Patched,
            "12.1-FIPS not affected by 6543"
        );
        assert_eq!(judge("CVE-2025-6543", "13.1-37.235"), Verdict::Vulnerable);
        assert_eq!(
            judge("CVE-2023-3519", "12.1-65.25"),
            Verdict::Vulnerable,
            "12.1 EOL"
        );
        assert_eq!(
            judge("CVE-2023-3519", "14.1-4.42"),
            Verdict::Patched,
            "14.1 came after"
        );
        assert_eq!(judge("CVE-2026-3055", "14.1-60.58"), Verdict::Vulnerable);
        assert_eq!(judge("CVE-2026-3055", "14.1-66.59"), Verdict::Patched);
    }

    #[test]
    fn broken_data_is_refused_with_its_location() {
        assert!(
            Rules::parse("x,1,,12.1-50.28\nbad\n", CVES_TOML)
                .unwrap_err()
                .contains("line 2")
        );
        let bad_toml = CVES_TOML.replace("older_trains = \"unknown\"", "older_trains = \"maybe\"");
        assert!(
            Rules::parse(STAMPS_CSV, &bad_toml)
                .unwrap_err()
                .contains("CVE-2019-19781")
        );
        assert!(Rules::parse(STAMPS_CSV, "[[cve]]\nid = 1").is_err());
    }
}
