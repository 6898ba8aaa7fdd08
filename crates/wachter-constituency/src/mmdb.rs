//! ASN, holder and country of an address from MaxMind-format databases.
//!
//! The files are the free ones a CERT can get: DB-IP Lite ASN/Country (CC BY 4.0,
//! attribution required), GeoLite2-ASN/Country (account and EULA), IPinfo Lite. A
//! [`GeoDb`] holds one or more of them, each read fully into memory once, and answers a
//! [`Geo`] per address: the first database (in the order given) that holds a field
//! supplies it, so an ASN file and a country file combine into one answer.
//!
//! Every answer names the database builds it came from ([`DbInfo::attribution`]): a
//! notification must say which data said "AS64496" and how old that data was.
//!
//! Fields read: `autonomous_system_number` and `autonomous_system_organization` (GeoLite2,
//! DB-IP), `country.iso_code` with `registered_country.iso_code` as the fallback (GeoIP2
//! Country and City layouts), and IPinfo Lite's `asn` (`"AS64496"`), `as_name` and
//! `country_code`. A number may be stored as any unsigned type.
//!
//! A file that is not a MaxMind DB (truncated, random bytes, no metadata marker) is refused
//! when opened, naming the file. A record that cannot be decoded is an error of that
//! database for that address only; [`GeoDb::lookup`] keeps answering from the others and
//! reports it in [`Geo::errors`].
//!
//! [`testing`] writes MaxMind DB files, so that tests and benchmarks build their own
//! databases: the project never downloads data.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};
use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The largest database file read (GeoLite2-City is about 70 MB, the ASN and country files
/// under 10 MB): a cap, like every other read of wachter.
pub const MAX_DB_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum MmdbError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {len} bytes, more than the {MAX_DB_BYTES} bytes a database may have")]
    TooLarge { file: String, len: u64 },
    #[error("{file}: not a valid MaxMind DB file: {source}")]
    Invalid {
        file: String,
        source: MaxMindDbError,
    },
    #[error("{file}: the record for {ip} cannot be read: {source}")]
    Record {
        file: String,
        ip: IpAddr,
        source: MaxMindDbError,
    },
}

/// Which database build answered: what an attribution has to name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbInfo {
    /// The file, or the name given with the bytes.
    pub file: String,
    /// `GeoLite2-ASN`, `DBIP-ASN-Lite (compat=GeoLite2-ASN)`, …
    pub database_type: String,
    /// When the database was built, seconds since the Unix epoch.
    pub build_epoch: u64,
    /// The English description, else any.
    pub description: Option<String>,
    pub ip_version: u16,
    pub node_count: u32,
    pub record_size: u16,
}

impl DbInfo {
    pub fn built(&self) -> Option<OffsetDateTime> {
        let epoch = i64::try_from(self.build_epoch).ok()?;
        OffsetDateTime::from_unix_timestamp(epoch).ok()
    }

    /// `GeoLite2-ASN built 2024-05-14T00:00:00Z (GeoLite2-ASN.mmdb)`.
    pub fn attribution(&self) -> String {
        let built = self
            .built()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("at epoch {}", self.build_epoch));
        format!("{} built {built} ({})", self.database_type, self.file)
    }
}

impl fmt::Display for DbInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.attribution())
    }
}

/// What the databases say about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Geo {
    pub asn: Option<u32>,
    /// The AS organisation (`autonomous_system_organization`).
    pub holder: Option<String>,
    /// ISO 3166-1 alpha-2, uppercase: where the address is, else where it is registered.
    pub country: Option<String>,
    /// The most specific network among the databases that supplied a field: the range
    /// over which their records hold (an ASN file's /24 inside a country file's /16).
    pub network: Option<IpNet>,
    /// The databases that supplied a field, in order.
    pub sources: Vec<Arc<DbInfo>>,
    /// Records that could not be read, each naming its file.
    pub errors: Vec<String>,
}

impl Geo {
    /// No field known (errors aside).
    pub fn is_empty(&self) -> bool {
        self.asn.is_none() && self.holder.is_none() && self.country.is_none()
    }

    /// Takes the fields `other` has and `self` lacks; `other`'s database becomes a source
    /// if it supplied any.
    fn fill_from(&mut self, other: Geo) {
        let mut supplied = false;
        if self.asn.is_none() && other.asn.is_some() {
            self.asn = other.asn;
            supplied = true;
        }
        if self.holder.is_none() && other.holder.is_some() {
            self.holder = other.holder;
            supplied = true;
        }
        if self.country.is_none() && other.country.is_some() {
            self.country = other.country;
            supplied = true;
        }
        if supplied {
            self.network = match (self.network, other.network) {
                (Some(mine), Some(theirs)) if theirs.prefix_len() > mine.prefix_len() => {
                    Some(theirs)
                }
                (None, theirs) => theirs,
                (mine, _) => mine,
            };
            self.sources.extend(other.sources);
        }
        self.errors.extend(other.errors);
    }
}

/// One MaxMind DB file, in memory.
#[derive(Debug)]
pub struct Database {
    info: Arc<DbInfo>,
    reader: Reader<Vec<u8>>,
}

impl Database {
    /// Reads the whole file (at most [`MAX_DB_BYTES`]) and checks its metadata and layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Database, MmdbError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let read_err = |source| MmdbError::Read {
            file: file.clone(),
            source,
        };
        let handle = File::open(path).map_err(read_err)?;
        let len = handle.metadata().map_err(read_err)?.len();
        if len > MAX_DB_BYTES {
            return Err(MmdbError::TooLarge { file, len });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        handle
            .take(MAX_DB_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_DB_BYTES {
            let len = bytes.len() as u64;
            return Err(MmdbError::TooLarge { file, len });
        }
        Database::from_bytes(file, bytes)
    }

    /// A database from bytes; `file` names it in errors and attributions.
    pub fn from_bytes(file: impl Into<String>, bytes: Vec<u8>) -> Result<Database, MmdbError> {
        let file = file.into();
        let reader = Reader::from_source(bytes).map_err(|source| MmdbError::Invalid {
            file: file.clone(),
            source,
        })?;
        let meta = reader.metadata();
        let description = meta
            .description
            .get("en")
            .or_else(|| meta.description.values().next())
            .cloned();
        let info = DbInfo {
            file,
            database_type: meta.database_type.clone(),
            build_epoch: meta.build_epoch,
            description,
            ip_version: meta.ip_version,
            node_count: meta.node_count,
            record_size: meta.record_size,
        };
        Ok(Database {
            info: Arc::new(info),
            reader,
        })
    }

    pub fn info(&self) -> &DbInfo {
        &self.info
    }

    /// Walks the whole tree and data section (`maxminddb`'s verifier): opening only checks
    /// the metadata and layout, this finds a corrupt record before a lookup does. Seconds
    /// on a City database, so it is the caller's choice (an import, not every scan).
    pub fn verify(&self) -> Result<(), MmdbError> {
        self.reader.verify().map_err(|source| MmdbError::Invalid {
            file: self.info.file.clone(),
            source,
        })
    }

    /// This database's answer for `ip`. An IPv4-mapped IPv6 address is looked up as IPv4;
    /// an IPv6 address in an IPv4-only database is simply not there.
    pub fn lookup(&self, ip: IpAddr) -> Result<Geo, MmdbError> {
        let ip = ip.to_canonical();
        if ip.is_ipv6() && self.info.ip_version == 4 {
            return Ok(Geo::default());
        }
        let record_err = |source| MmdbError::Record {
            file: self.info.file.clone(),
            ip,
            source,
        };
        let result = self.reader.lookup(ip).map_err(record_err)?;
        let Some(raw) = result.decode::<RawRecord>().map_err(record_err)? else {
            return Ok(Geo::default());
        };
        let mut geo = Geo {
            asn: raw.autonomous_system_number.0.or(raw.asn.0),
            holder: clean_text(raw.autonomous_system_organization.or(raw.as_name)),
            country: [raw.country.0, raw.registered_country.0, raw.country_code]
                .into_iter()
                .flatten()
                .find_map(|c| iso_code(&c)),
            ..Geo::default()
        };
        if !geo.is_empty() {
            geo.network = result
                .network()
                .ok()
                .and_then(|n| to_ipnet(n.network(), n.prefix(), ip));
            geo.sources.push(Arc::clone(&self.info));
        }
        Ok(geo)
    }
}

/// Several databases answering together (an ASN file and a country file, as a rule).
#[derive(Debug, Default)]
pub struct GeoDb {
    databases: Vec<Database>,
}

impl GeoDb {
    /// Databases in order of precedence: the first that holds a field supplies it.
    pub fn new(databases: Vec<Database>) -> GeoDb {
        GeoDb { databases }
    }

    /// Opens every file; the first that cannot be used refuses the whole set.
    pub fn open<I, P>(paths: I) -> Result<GeoDb, MmdbError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let databases = paths
            .into_iter()
            .map(Database::open)
            .collect::<Result<_, _>>()?;
        Ok(GeoDb { databases })
    }

    pub fn databases(&self) -> &[Database] {
        &self.databases
    }

    /// Everything the databases know about `ip`. Never fails as a whole: a database whose
    /// record cannot be read supplies nothing and its error is in [`Geo::errors`].
    pub fn lookup(&self, ip: IpAddr) -> Geo {
        let mut geo = Geo::default();
        for db in &self.databases {
            match db.lookup(ip) {
                Ok(found) => geo.fill_from(found),
                Err(err) => geo.errors.push(err.to_string()),
            }
        }
        geo
    }
}

/// The network a lookup landed in, in the family of the address looked up. An IPv4 address
/// in an IPv6 database whose `::/96` subtree is a single record gets all of IPv4.
fn to_ipnet(net: IpAddr, prefix: u8, looked_up: IpAddr) -> Option<IpNet> {
    match (net, looked_up) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => {
            let net = match prefix.checked_sub(96) {
                Some(len) => {
                    let low = u32::try_from(u128::from(v6) & u128::from(u32::MAX)).ok()?;
                    Ipv4Net::new(Ipv4Addr::from(low), len).ok()?
                }
                None => Ipv4Net::default(),
            };
            Some(IpNet::V4(net.trunc()))
        }
        _ => IpNet::new(net, prefix).ok().map(|n| n.trunc()),
    }
}

/// Trimmed, and `None` when empty.
fn clean_text(text: Option<String>) -> Option<String> {
    let text = text?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == text.len() {
        Some(text)
    } else {
        Some(trimmed.to_string())
    }
}

/// Two ASCII letters, uppercased; anything else is not a country code.
fn iso_code(code: &str) -> Option<String> {
    let code = code.trim();
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase())
}

/// The fields read from a record; all others are skipped unread.
#[derive(Default, Deserialize)]
#[serde(default)]
struct RawRecord {
    autonomous_system_number: AsnField,
    autonomous_system_organization: Option<String>,
    country: CountryField,
    registered_country: CountryField,
    /// IPinfo Lite: `"AS64496"`.
    asn: AsnField,
    /// IPinfo Lite.
    as_name: Option<String>,
    /// IPinfo Lite.
    country_code: Option<String>,
}

/// An AS number stored as any unsigned integer, or as `"AS64496"` / `"64496"` text.
#[derive(Default)]
struct AsnField(Option<u32>);

impl<'de> Deserialize<'de> for AsnField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AsnVisitor;
        impl Visitor<'_> for AsnVisitor {
            type Value = AsnField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an AS number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsnField, E> {
                u32::try_from(v)
                    .map(|n| AsnField(Some(n)))
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<AsnField, E> {
                u32::try_from(v)
                    .map(|n| AsnField(Some(n)))
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsnField, E> {
                u32::try_from(v)
                    .map(|n| AsnField(Some(n)))
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AsnField, E> {
                let t = v.trim();
                let digits = t
                    .strip_prefix("AS")
                    .or_else(|| t.strip_prefix("as"))
                    .unwrap_or(t);
                if digits.is_empty() {
                    return Ok(AsnField(None));
                }
                digits
                    .parse()
                    .map(|n| AsnField(Some(n)))
                    .map_err(|_| E::custom(format!("{v:?} is not an AS number")))
            }
        }
        deserializer.deserialize_any(AsnVisitor)
    }
}

/// `country` is a map with `iso_code` in GeoIP2 layouts and a country *name* in IPinfo
/// Lite (whose code is `country_code`): the name is skipped.
#[derive(Default)]
struct CountryField(Option<String>);

impl<'de> Deserialize<'de> for CountryField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountryVisitor;
        impl<'de> Visitor<'de> for CountryVisitor {
            type Value = CountryField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a country map or name")
            }
            fn visit_str<E: de::Error>(self, _name: &str) -> Result<CountryField, E> {
                Ok(CountryField(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CountryField, A::Error> {
                let mut code = None;
                while let Some(key) = map.next_key::<&'de str>()? {
                    if key == "iso_code" {
                        code = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(CountryField(code))
            }
        }
        deserializer.deserialize_any(CountryVisitor)
    }
}

/// A minimal MaxMind DB writer (MaxMind DB File Format Specification 2.0), for tests and
/// benchmarks: the project never downloads data, so it builds its own databases. Not
/// meant for production files: no pointers, no aliases of `::ffff:0:0/96` or `2002::/16`
/// to the IPv4 subtree (wachter looks up IPv4-mapped addresses as IPv4 anyway).
pub mod testing {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use ipnet::IpNet;

    /// A value of the data section.
    #[derive(Clone, Debug, PartialEq)]
    pub enum Value {
        String(String),
        Double(f64),
        U16(u16),
        U32(u32),
        U64(u64),
        Bool(bool),
        Map(Vec<(String, Value)>),
        Array(Vec<Value>),
        /// Bytes written as they are: a corrupt record, for tests of the reader.
        Raw(Vec<u8>),
    }

    impl Value {
        pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
            Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
        }

        pub fn str(text: impl Into<String>) -> Value {
            Value::String(text.into())
        }
    }

    /// A GeoLite2-ASN / DB-IP ASN Lite record.
    pub fn asn_record(asn: u32, organisation: &str) -> Value {
        Value::map([
            ("autonomous_system_number", Value::U32(asn)),
            ("autonomous_system_organization", Value::str(organisation)),
        ])
    }

    /// A GeoLite2-Country record, with the fields a reader has to skip.
    pub fn country_record(iso_code: &str) -> Value {
        let country = Value::map([
            ("geoname_id", Value::U32(2_750_405)),
            ("is_in_european_union", Value::Bool(true)),
            ("iso_code", Value::str(iso_code)),
            ("names", Value::map([("en", Value::str("Netherlands"))])),
        ]);
        Value::map([
            (
                "continent",
                Value::map([
                    ("code", Value::str("EU")),
                    ("geoname_id", Value::U32(6_255_148)),
                ]),
            ),
            ("country", country.clone()),
            ("registered_country", country),
        ])
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum IpVersion {
        /// A 32-bit tree, IPv4 only.
        V4,
        /// A 128-bit tree; IPv4 networks sit in `::/96`.
        V6,
    }

    #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
    pub enum WriteError {
        #[error("{0} is an IPv6 network: an ip_version 4 database holds IPv4 only")]
        V6InV4(IpNet),
        #[error("record size {0}: the format has 24, 28 and 32 bits")]
        RecordSize(u16),
        #[error("{needed} records and data bytes do not fit {bits}-bit records")]
        TooLarge { bits: u16, needed: u64 },
        #[error("a value of size {0} is larger than the format allows")]
        ValueTooLarge(usize),
    }

    /// Networks and their records, written as one database.
    #[derive(Clone, Debug)]
    pub struct Writer {
        ip_version: IpVersion,
        record_size: Option<u16>,
        database_type: String,
        description: String,
        build_epoch: u64,
        networks: Vec<(IpNet, Value)>,
    }

    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        /// An offset in the data section.
        Data(usize),
    }

    const SEPARATOR: usize = 16;
    const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

    impl Writer {
        pub fn new(database_type: &str, ip_version: IpVersion) -> Writer {
            Writer {
                ip_version,
                record_size: None,
                database_type: database_type.to_string(),
                description: format!("{database_type} written by wachter's test writer"),
                build_epoch: 1_715_644_800, // 2024-05-14T00:00:00Z
                networks: Vec::new(),
            }
        }

        /// 24, 28 or 32 bits; by default the smallest that fits.
        pub fn record_size(mut self, bits: u16) -> Writer {
            self.record_size = Some(bits);
            self
        }

        pub fn build_epoch(mut self, epoch: u64) -> Writer {
            self.build_epoch = epoch;
            self
        }

        pub fn description(mut self, text: &str) -> Writer {
            self.description = text.to_string();
            self
        }

        /// Adds a network. A more specific network wins inside a less specific one,
        /// whatever the order of insertion; of two equal networks the last wins.
        pub fn insert(&mut self, net: IpNet, value: Value) -> Result<(), WriteError> {
            if self.ip_version == IpVersion::V4 && matches!(net, IpNet::V6(_)) {
                return Err(WriteError::V6InV4(net));
            }
            self.networks.push((net.trunc(), value));
            Ok(())
        }

        /// The address bits of `net`, left-aligned in a u128, and its depth in the tree.
        fn key(&self, net: IpNet) -> (u128, u8) {
            match (net, self.ip_version) {
                (IpNet::V4(n), IpVersion::V4) => {
                    (u128::from(u32::from(n.addr())) << 96, n.prefix_len())
                }
                (IpNet::V4(n), IpVersion::V6) => {
                    (u128::from(u32::from(n.addr())), 96 + n.prefix_len())
                }
                (IpNet::V6(n), _) => (u128::from(n.addr()), n.prefix_len()),
            }
        }

        /// The file.
        pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
            // The data section: each distinct record once.
            let mut data = Vec::new();
            let mut offsets: HashMap<Vec<u8>, usize> = HashMap::new();
            let mut records = Vec::with_capacity(self.networks.len());
            for (net, value) in &self.networks {
                let mut bytes = Vec::new();
                encode(value, &mut bytes)?;
                let offset = *offsets.entry(bytes).or_insert_with_key(|bytes| {
                    let at = data.len();
                    data.extend_from_slice(bytes);
                    at
                });
                let (bits, depth) = self.key(*net);
                records.push((bits, depth, offset));
            }
            // Less specific first, so that a more specific network splits its parent's
            // leaf; a stable sort keeps the last of two equal networks last.
            records.sort_by_key(|&(_, depth, _)| depth);
            let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty; 2]];
            for (bits, depth, offset) in records {
                if depth == 0 {
                    nodes = vec![[Rec::Data(offset); 2]];
                    continue;
                }
                let mut node = 0;
                for i in 0..depth {
                    let side = usize::from((bits >> (127 - u32::from(i))) & 1 == 1);
                    if i + 1 == depth {
                        nodes[node][side] = Rec::Data(offset);
                        break;
                    }
                    node = match nodes[node][side] {
                        Rec::Node(child) => child,
                        leaf => {
                            let child = nodes.len();
                            nodes.push([leaf, leaf]);
                            nodes[node][side] = Rec::Node(child);
                            child
                        }
                    };
                }
            }

            let node_count = nodes.len();
            let needed = (node_count + SEPARATOR + data.len()) as u64;
            let bits = match self.record_size {
                Some(bits @ (24 | 28 | 32)) => bits,
                Some(other) => return Err(WriteError::RecordSize(other)),
                None => [24, 28, 32]
                    .into_iter()
                    .find(|&b| needed <= 1 << b)
                    .unwrap_or(32),
            };
            if needed > 1 << bits {
                return Err(WriteError::TooLarge { bits, needed });
            }
            let value = |rec: Rec| -> u32 {
                let v = match rec {
                    Rec::Empty => node_count,
                    Rec::Node(n) => n,
                    Rec::Data(offset) => node_count + SEPARATOR + offset,
                };
                // Fits: checked against `needed` above.
                v as u32
            };

            let mut out = Vec::with_capacity(node_count * usize::from(bits) / 4 + data.len());
            for [left, right] in &nodes {
                let (l, r) = (value(*left), value(*right));
                match bits {
                    24 => {
                        out.extend_from_slice(&l.to_be_bytes()[1..]);
                        out.extend_from_slice(&r.to_be_bytes()[1..]);
                    }
                    28 => {
                        out.extend_from_slice(&l.to_be_bytes()[1..]);
                        out.push((((l >> 24) & 0x0f) << 4) as u8 | ((r >> 24) & 0x0f) as u8);
                        out.extend_from_slice(&r.to_be_bytes()[1..]);
                    }
                    _ => {
                        out.extend_from_slice(&l.to_be_bytes());
                        out.extend_from_slice(&r.to_be_bytes());
                    }
                }
            }
            out.extend_from_slice(&[0; SEPARATOR]);
            out.extend_from_slice(&data);
            out.extend_from_slice(METADATA_MARKER);
            let metadata = Value::map([
                ("node_count", Value::U32(node_count as u32)),
                ("record_size", Value::U16(bits)),
                (
                    "ip_version",
                    Value::U16(match self.ip_version {
                        IpVersion::V4 => 4,
                        IpVersion::V6 => 6,
                    }),
                ),
                ("database_type", Value::str(&self.database_type)),
                ("languages", Value::Array(vec![Value::str("en")])),
                ("binary_format_major_version", Value::U16(2)),
                ("binary_format_minor_version", Value::U16(0)),
                ("build_epoch", Value::U64(self.build_epoch)),
                (
                    "description",
                    Value::map([("en", Value::str(&self.description))]),
                ),
            ]);
            encode(&metadata, &mut out)?;
            Ok(out)
        }
    }

    /// Builds a database from (network, record) pairs.
    pub fn build(
        database_type: &str,
        ip_version: IpVersion,
        networks: impl IntoIterator<Item = (IpNet, Value)>,
    ) -> Result<Vec<u8>, WriteError> {
        let mut writer = Writer::new(database_type, ip_version);
        for (net, value) in networks {
            writer.insert(net, value)?;
        }
        writer.to_bytes()
    }

    /// A convenience for tests: `"192.0.2.0/24"` as an [`IpNet`]; panics on a typo.
    pub fn net(text: &str) -> IpNet {
        match text.parse() {
            Ok(net) => net,
            Err(_) => panic!("{text:?} is not a network"),
        }
    }

    /// A convenience for tests: `"192.0.2.1"` as an [`IpAddr`]; panics on a typo.
    pub fn ip(text: &str) -> IpAddr {
        match text.parse() {
            Ok(ip) => ip,
            Err(_) => panic!("{text:?} is not an address"),
        }
    }

    const POINTER: u8 = 1;
    const STRING: u8 = 2;
    const DOUBLE: u8 = 3;
    const UINT16: u8 = 5;
    const UINT32: u8 = 6;
    const MAP: u8 = 7;
    const UINT64: u8 = 9;
    const ARRAY: u8 = 11;
    const BOOLEAN: u8 = 14;

    /// The control byte: type in the top three bits (or 0 and an extended type byte after
    /// it), then the size in five bits with 1 to 3 size bytes for sizes from 29 on.
    fn control(out: &mut Vec<u8>, type_num: u8, size: usize) -> Result<(), WriteError> {
        debug_assert!(type_num != POINTER, "pointers are not written");
        let high = if type_num <= 7 { type_num << 5 } else { 0 };
        let (five, extra): (u8, Vec<u8>) = match size {
            0..29 => (size as u8, vec![]),
            29..285 => (29, vec![(size - 29) as u8]),
            285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
            65_821..16_843_037 => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
            _ => return Err(WriteError::ValueTooLarge(size)),
        };
        out.push(high | five);
        if type_num > 7 {
            out.push(type_num - 7);
        }
        out.extend_from_slice(&extra);
        Ok(())
    }

    /// An unsigned integer in as few bytes as it needs (none for zero).
    fn uint(out: &mut Vec<u8>, type_num: u8, value: u64) -> Result<(), WriteError> {
        let bytes = value.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        control(out, type_num, 8 - skip)?;
        out.extend_from_slice(&bytes[skip..]);
        Ok(())
    }

    fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), WriteError> {
        match value {
            Value::String(s) => {
                control(out, STRING, s.len())?;
                out.extend_from_slice(s.as_bytes());
            }
            Value::Double(d) => {
                control(out, DOUBLE, 8)?;
                out.extend_from_slice(&d.to_be_bytes());
            }
            Value::U16(v) => uint(out, UINT16, u64::from(*v))?,
            Value::U32(v) => uint(out, UINT32, u64::from(*v))?,
            Value::U64(v) => uint(out, UINT64, *v)?,
            Value::Bool(b) => control(out, BOOLEAN, usize::from(*b))?,
            Value::Map(pairs) => {
                control(out, MAP, pairs.len())?;
                for (key, value) in pairs {
                    control(out, STRING, key.len())?;
                    out.extend_from_slice(key.as_bytes());
                    encode(value, out)?;
                }
            }
            Value::Array(items) => {
                control(out, ARRAY, items.len())?;
                for item in items {
                    encode(item, out)?;
                }
            }
            Value::Raw(bytes) => out.extend_from_slice(bytes),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{IpVersion, Value, Writer, asn_record, build, country_record, ip, net};
    use super::*;

    fn asn_db() -> Vec<u8> {
        let mut w = Writer::new("GeoLite2-ASN", IpVersion::V6);
        for (n, asn, org) in [
            ("192.0.2.0/24", 64496, "Example Hosting B.V."),
            ("198.51.100.0/25", 64500, "Example Transit"),
            ("2001:db8::/32", 64511, "Example IPv6 Net"),
        ] {
            w.insert(net(n), asn_record(asn, org)).unwrap();
        }
        w.to_bytes().unwrap()
    }

    fn country_db() -> Vec<u8> {
        build(
            "GeoLite2-Country",
            IpVersion::V6,
            [
                (net("192.0.0.0/16"), country_record("NL")),
                (net("198.51.100.0/24"), country_record("DE")),
                (net("2001:db8::/29"), country_record("nl")),
            ],
        )
        .unwrap()
    }

    fn geo_db() -> GeoDb {
        GeoDb::new(vec![
            Database::from_bytes("asn.mmdb", asn_db()).unwrap(),
            Database::from_bytes("country.mmdb", country_db()).unwrap(),
        ])
    }

    /// The interop check: the real reader accepts what the writer wrote, in every record
    /// size and both tree shapes, and reads the standard GeoIP2 structures from it.
    #[test]
    fn maxminddb_reads_and_verifies_what_the_writer_writes() {
        for version in [IpVersion::V4, IpVersion::V6] {
            for bits in [24, 28, 32] {
                let mut w = Writer::new("GeoLite2-ASN", version)
                    .record_size(bits)
                    .build_epoch(1_700_000_000)
                    .description("test ASN database");
                w.insert(
                    net("192.0.2.0/24"),
                    asn_record(64496, "Example Hosting B.V."),
                )
                .unwrap();
                w.insert(net("198.51.100.0/25"), asn_record(64500, "Example Transit"))
                    .unwrap();
                w.insert(net("203.0.113.0/24"), country_record("NL"))
                    .unwrap();
                if version == IpVersion::V6 {
                    w.insert(net("2001:db8::/32"), asn_record(64511, "Example IPv6 Net"))
                        .unwrap();
                }
                let bytes = w.to_bytes().unwrap();
                let at = format!("{version:?} {bits}");
                let reader = maxminddb::Reader::from_source(bytes).unwrap();
                reader.verify().unwrap_or_else(|e| panic!("{at}: {e}"));
                let meta = reader.metadata();
                assert_eq!(meta.record_size, bits, "{at}");
                assert_eq!(
                    meta.ip_version,
                    if version == IpVersion::V4 { 4 } else { 6 }
                );
                assert_eq!(meta.database_type, "GeoLite2-ASN");
                assert_eq!(meta.build_epoch, 1_700_000_000);
                assert_eq!(meta.binary_format_major_version, 2);
                assert_eq!(meta.binary_format_minor_version, 0);
                assert_eq!(meta.languages, ["en"]);
                assert_eq!(meta.description["en"], "test ASN database");

                let found = reader.lookup(ip("192.0.2.77")).unwrap();
                let asn: maxminddb::geoip2::Asn = found.decode().unwrap().unwrap();
                assert_eq!(asn.autonomous_system_number, Some(64496), "{at}");
                assert_eq!(
                    asn.autonomous_system_organization,
                    Some("Example Hosting B.V.")
                );
                assert_eq!(found.network().unwrap().to_string(), "192.0.2.0/24", "{at}");
                let found = reader.lookup(ip("203.0.113.9")).unwrap();
                let country: maxminddb::geoip2::Country = found.decode().unwrap().unwrap();
                assert_eq!(country.country.iso_code, Some("NL"));
                assert_eq!(country.registered_country.iso_code, Some("NL"));
                assert!(!reader.lookup(ip("198.51.100.128")).unwrap().has_data());
                if version == IpVersion::V6 {
                    let found = reader.lookup(ip("2001:db8:1::1")).unwrap();
                    let asn: maxminddb::geoip2::Asn = found.decode().unwrap().unwrap();
                    assert_eq!(asn.autonomous_system_number, Some(64511));
                    assert_eq!(found.network().unwrap().to_string(), "2001:db8::/32");
                }
                let networks: Vec<String> = reader
                    .networks(Default::default())
                    .unwrap()
                    .map(|r| r.unwrap().network().unwrap().to_string())
                    .collect();
                let mut want = vec!["192.0.2.0/24", "198.51.100.0/25", "203.0.113.0/24"];
                if version == IpVersion::V6 {
                    want.push("2001:db8::/32");
                }
                assert_eq!(networks, want, "{at}");
            }
        }
    }

    #[test]
    fn lookups_inside_and_outside_the_networks() {
        let db = geo_db();
        let asn = Arc::new(db.databases()[0].info().clone());
        let country = Arc::new(db.databases()[1].info().clone());
        // address | asn | holder | country | network | number of sources; - for none
        let cases = "
            192.0.2.77       | 64496 | Example Hosting B.V. | NL | 192.0.2.0/24    | 2
            192.0.2.0        | 64496 | Example Hosting B.V. | NL | 192.0.2.0/24    | 2
            192.0.2.255      | 64496 | Example Hosting B.V. | NL | 192.0.2.0/24    | 2
            ::ffff:192.0.2.1 | 64496 | Example Hosting B.V. | NL | 192.0.2.0/24    | 2
            192.0.3.1        | -     | -                    | NL | 192.0.0.0/16    | 1
            198.51.100.1     | 64500 | Example Transit      | DE | 198.51.100.0/25 | 2
            198.51.100.128   | -     | -                    | DE | 198.51.100.0/24 | 1
            2001:db8::1      | 64511 | Example IPv6 Net     | NL | 2001:db8::/32   | 2
            2001:db9::1      | -     | -                    | NL | 2001:db8::/29   | 1
            203.0.113.1      | -     | -                    | -  | -               | 0
            2001:db8::1:1    | 64511 | Example IPv6 Net     | NL | 2001:db8::/32   | 2";
        let opt = |cell: &str| (cell != "-").then(|| cell.to_string());
        for row in cases.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = row.split('|').map(str::trim).collect();
            let addr = f[0];
            let geo = db.lookup(ip(addr));
            assert_eq!(geo.asn, opt(f[1]).map(|a| a.parse().unwrap()), "{addr}");
            assert_eq!(geo.holder, opt(f[2]), "{addr}");
            assert_eq!(geo.country, opt(f[3]), "{addr}");
            assert_eq!(geo.network, opt(f[4]).map(|n| net(&n)), "{addr}");
            assert_eq!(geo.sources.len(), f[5].parse::<usize>().unwrap(), "{addr}");
            assert!(geo.errors.is_empty(), "{addr}: {:?}", geo.errors);
        }
        let geo = db.lookup(ip("192.0.2.77"));
        assert_eq!(geo.sources, [asn, country]);
        assert!(db.lookup(ip("203.0.113.1")).is_empty());
        assert!(db.lookup(ip("::1")).is_empty());
    }

    #[test]
    fn attribution_names_the_database_build() {
        let db = Database::from_bytes("GeoLite2-ASN.mmdb", asn_db()).unwrap();
        let info = db.info();
        assert_eq!(info.database_type, "GeoLite2-ASN");
        assert_eq!(info.build_epoch, 1_715_644_800);
        assert_eq!(info.ip_version, 6);
        assert_eq!(
            info.description.as_deref(),
            Some("GeoLite2-ASN written by wachter's test writer")
        );
        assert_eq!(
            info.attribution(),
            "GeoLite2-ASN built 2024-05-14T00:00:00Z (GeoLite2-ASN.mmdb)"
        );
        let geo = db.lookup(ip("192.0.2.1")).unwrap();
        assert_eq!(geo.sources[0].attribution(), info.attribution());
        assert!(db.verify().is_ok());
    }

    #[test]
    fn nested_networks_the_more_specific_wins_in_any_order() {
        let parent = (
            net("192.0.2.0/24"),
            asn_record(64496, "Example Hosting B.V."),
        );
        let child = (net("192.0.2.128/26"), asn_record(64497, "Example Customer"));
        let host = (net("192.0.2.130/32"), asn_record(64498, "Example Host"));
        for version in [IpVersion::V4, IpVersion::V6] {
            for order in [
                vec![parent.clone(), child.clone(), host.clone()],
                vec![host.clone(), child.clone(), parent.clone()],
            ] {
                let bytes = build("GeoLite2-ASN", version, order).unwrap();
                let db = Database::from_bytes("nested.mmdb", bytes).unwrap();
                db.verify().unwrap();
                for (addr, asn, network) in [
                    ("192.0.2.1", 64496, "192.0.2.0/25"),
                    ("192.0.2.127", 64496, "192.0.2.0/25"),
                    ("192.0.2.128", 64497, "192.0.2.128/31"),
                    ("192.0.2.131", 64497, "192.0.2.131/32"),
                    ("192.0.2.160", 64497, "192.0.2.160/27"),
                    ("192.0.2.130", 64498, "192.0.2.130/32"),
                    ("192.0.2.200", 64496, "192.0.2.192/26"),
                ] {
                    let geo = db.lookup(ip(addr)).unwrap();
                    assert_eq!(geo.asn, Some(asn), "{version:?} {addr}");
                    assert_eq!(geo.network, Some(net(network)), "{version:?} {addr}");
                }
            }
        }
        // The same network twice: the last one wins.
        let bytes = build(
            "GeoLite2-ASN",
            IpVersion::V4,
            [
                (net("192.0.2.0/24"), asn_record(1, "first")),
                (net("192.0.2.0/24"), asn_record(2, "second")),
            ],
        )
        .unwrap();
        let db = Database::from_bytes("dup.mmdb", bytes).unwrap();
        assert_eq!(db.lookup(ip("192.0.2.9")).unwrap().asn, Some(2));
    }

    #[test]
    fn whole_space_and_ipv4_only_databases() {
        // 0.0.0.0/0 in an IPv4 tree; IPv6 addresses are simply not in it.
        let bytes = build(
            "DBIP-Country-Lite",
            IpVersion::V4,
            [
                (net("0.0.0.0/0"), country_record("ZZ")),
                (net("192.0.2.0/24"), country_record("NL")),
            ],
        )
        .unwrap();
        let db = Database::from_bytes("v4.mmdb", bytes).unwrap();
        db.verify().unwrap();
        let geo = db.lookup(ip("10.1.2.3")).unwrap();
        assert_eq!(geo.country.as_deref(), Some("ZZ"));
        assert_eq!(geo.network, Some(net("0.0.0.0/1")));
        assert_eq!(
            db.lookup(ip("192.0.2.1")).unwrap().country.as_deref(),
            Some("NL")
        );
        assert_eq!(db.lookup(ip("2001:db8::1")).unwrap(), Geo::default());
        assert_eq!(
            db.lookup(ip("::ffff:192.0.2.1"))
                .unwrap()
                .country
                .as_deref(),
            Some("NL")
        );
        assert!(matches!(
            Writer::new("x", IpVersion::V4).insert(net("2001:db8::/32"), Value::U16(1)),
            Err(testing::WriteError::V6InV4(_))
        ));

        // An IPv6 tree without IPv4 data: an IPv4 address lands in a leaf above ::/96.
        let bytes = build(
            "GeoLite2-ASN",
            IpVersion::V6,
            [(net("2001:db8::/32"), asn_record(64511, "v6"))],
        )
        .unwrap();
        let db = Database::from_bytes("v6.mmdb", bytes).unwrap();
        assert_eq!(db.lookup(ip("192.0.2.1")).unwrap(), Geo::default());
        let only_v4_space = build(
            "GeoLite2-ASN",
            IpVersion::V6,
            [(net("::/1"), asn_record(64512, "low half"))],
        )
        .unwrap();
        let db = Database::from_bytes("low.mmdb", only_v4_space).unwrap();
        let geo = db.lookup(ip("192.0.2.1")).unwrap();
        assert_eq!(
            (geo.asn, geo.network),
            (Some(64512), Some(net("0.0.0.0/0")))
        );
    }

    #[test]
    fn field_variants_of_other_databases() {
        let record = |pairs: Vec<(&str, Value)>| Value::map(pairs);
        let bytes = build(
            "mixed",
            IpVersion::V6,
            [
                // Registered country only (satellite, anonymous proxies).
                (
                    net("192.0.2.0/26"),
                    record(vec![(
                        "registered_country",
                        Value::map([("iso_code", Value::str("be"))]),
                    )]),
                ),
                // IPinfo Lite.
                (
                    net("192.0.2.64/26"),
                    record(vec![
                        ("asn", Value::str("AS64496")),
                        ("as_name", Value::str("Example Hosting B.V.")),
                        ("as_domain", Value::str("example.nl")),
                        ("country", Value::str("Netherlands")),
                        ("country_code", Value::str("NL")),
                        ("continent", Value::str("Europe")),
                    ]),
                ),
                // Numbers in other widths, junk country code, blank holder.
                (
                    net("192.0.2.128/26"),
                    record(vec![
                        ("autonomous_system_number", Value::U64(4_200_000_000)),
                        ("autonomous_system_organization", Value::str("  ")),
                        (
                            "country",
                            Value::map([("iso_code", Value::str("Nederland"))]),
                        ),
                    ]),
                ),
                (
                    net("192.0.2.192/26"),
                    record(vec![
                        ("autonomous_system_number", Value::U16(64501)),
                        (
                            "autonomous_system_organization",
                            Value::str(" Padded B.V. "),
                        ),
                    ]),
                ),
                // A record that is not a map at all.
                (net("198.51.100.0/24"), Value::str("just a string")),
                // An AS number that does not fit 32 bits.
                (
                    net("203.0.113.0/24"),
                    record(vec![("autonomous_system_number", Value::U64(1 << 40))]),
                ),
            ],
        )
        .unwrap();
        let db = Database::from_bytes("mixed.mmdb", bytes).unwrap();
        db.verify().unwrap();
        let geo = db.lookup(ip("192.0.2.1")).unwrap();
        assert_eq!((geo.asn, geo.country.as_deref()), (None, Some("BE")));
        let geo = db.lookup(ip("192.0.2.65")).unwrap();
        assert_eq!(
            (geo.asn, geo.holder.as_deref(), geo.country.as_deref()),
            (Some(64496), Some("Example Hosting B.V."), Some("NL"))
        );
        let geo = db.lookup(ip("192.0.2.129")).unwrap();
        assert_eq!(
            (geo.asn, geo.holder, geo.country),
            (Some(4_200_000_000), None, None)
        );
        let geo = db.lookup(ip("192.0.2.193")).unwrap();
        assert_eq!(
            (geo.asn, geo.holder.as_deref()),
            (Some(64501), Some("Padded B.V."))
        );
        for addr in ["198.51.100.1", "203.0.113.1"] {
            let err = db.lookup(ip(addr)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("mixed.mmdb: the record for {addr} cannot be read")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_corrupt_record_is_reported_and_the_other_databases_still_answer() {
        let bytes = build(
            "GeoLite2-Country",
            IpVersion::V6,
            [
                // A map of three pairs with nothing after it.
                (net("192.0.2.0/24"), Value::Raw(vec![0xe3])),
                // A string claiming 20 bytes where 3 follow.
                (
                    net("198.51.100.0/24"),
                    Value::Raw(vec![0x54, b'a', b'b', b'c']),
                ),
                // A pointer to far beyond the data section.
                (
                    net("203.0.113.0/24"),
                    Value::Raw(vec![0x2f, 0xff, 0xff, 0xff]),
                ),
            ],
        )
        .unwrap();
        let broken = Database::from_bytes("broken-country.mmdb", bytes).unwrap();
        assert!(broken.verify().is_err());
        let db = GeoDb::new(vec![
            broken,
            Database::from_bytes("asn.mmdb", asn_db()).unwrap(),
        ]);
        for addr in ["192.0.2.1", "198.51.100.1", "203.0.113.1"] {
            let geo = db.lookup(ip(addr));
            assert_eq!(geo.errors.len(), 1, "{addr}: {:?}", geo.errors);
            assert!(
                geo.errors[0].starts_with(&format!("broken-country.mmdb: the record for {addr}")),
                "{}",
                geo.errors[0]
            );
            assert_eq!(geo.country, None);
        }
        assert_eq!(db.lookup(ip("192.0.2.1")).asn, Some(64496));
    }

    fn expect_invalid(name: &str, bytes: Vec<u8>) -> String {
        match Database::from_bytes(name, bytes) {
            Ok(_) => panic!("{name} was accepted"),
            Err(err @ MmdbError::Invalid { .. }) => {
                let text = err.to_string();
                assert!(
                    text.starts_with(&format!("{name}: not a valid MaxMind DB file: ")),
                    "{text}"
                );
                text
            }
            Err(other) => panic!("{name}: {other}"),
        }
    }

    #[test]
    fn corrupt_files_are_refused_naming_the_file() {
        let good = asn_db();
        // Every truncation, down to nothing.
        for cut in 0..good.len() {
            expect_invalid("truncated.mmdb", good[..cut].to_vec());
        }
        // Random bytes (xorshift, fixed seed).
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let text = expect_invalid("random.mmdb", random);
        assert!(
            text.contains("could not find MaxMind DB metadata"),
            "{text}"
        );
        // The metadata marker spelled differently.
        let mut wrong_marker = good.clone();
        let at = wrong_marker
            .windows(11)
            .rposition(|w| w == b"MaxMind.com")
            .unwrap();
        wrong_marker[at + 8..at + 11].copy_from_slice(b"org");
        let text = expect_invalid("marker.mmdb", wrong_marker);
        assert!(
            text.contains("could not find MaxMind DB metadata"),
            "{text}"
        );
        // A format version this reader does not know.
        let mut v3 = good.clone();
        let key = b"binary_format_major_version";
        let at = v3.windows(key.len()).rposition(|w| w == key).unwrap() + key.len();
        assert_eq!(v3[at..at + 2], [0xa1, 2]);
        v3[at + 1] = 3;
        let text = expect_invalid("v3.mmdb", v3);
        assert!(text.contains("binary_format_major_version"), "{text}");
        // A metadata marker and nothing else; an empty file.
        expect_invalid("marker-only.mmdb", b"\xab\xcd\xefMaxMind.com".to_vec());
        expect_invalid("empty.mmdb", Vec::new());
    }

    /// Every single-byte corruption of a small database: refused when opened, or answering
    /// (possibly with errors) without a panic.
    #[test]
    fn flipped_bytes_never_panic() {
        let good = asn_db();
        let probes = [
            "192.0.2.1",
            "198.51.100.1",
            "2001:db8::1",
            "203.0.113.1",
            "::1",
        ];
        for at in 0..good.len() {
            for flip in [0xff_u8, 0x01, 0x80] {
                let mut bytes = good.clone();
                bytes[at] ^= flip;
                let Ok(db) = Database::from_bytes("flipped.mmdb", bytes) else {
                    continue;
                };
                let geo = GeoDb::new(vec![db]);
                for addr in probes {
                    let _ = geo.lookup(ip(addr));
                }
            }
        }
    }

    #[test]
    fn files_are_opened_from_disk_and_errors_name_them() {
        let dir = std::env::temp_dir().join(format!("wachter-mmdb-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let asn = dir.join("asn.mmdb");
        let country = dir.join("country.mmdb");
        let garbage = dir.join("garbage.mmdb");
        std::fs::write(&asn, asn_db()).unwrap();
        std::fs::write(&country, country_db()).unwrap();
        std::fs::write(&garbage, b"<html>not found</html>").unwrap();

        let db = GeoDb::open([&asn, &country]).unwrap();
        let geo = db.lookup(ip("192.0.2.1"));
        assert_eq!((geo.asn, geo.country.as_deref()), (Some(64496), Some("NL")));
        assert_eq!(geo.sources[0].file, asn.display().to_string());

        let err = GeoDb::open([&asn, &garbage]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not a valid MaxMind DB file",
                garbage.display()
            )),
            "{err}"
        );
        let missing = dir.join("missing.mmdb");
        let err = GeoDb::open([&missing]).unwrap_err();
        assert!(matches!(err, MmdbError::Read { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read", missing.display()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_writer_encodes_sizes_and_refuses_what_does_not_fit() {
        // Strings across the size-encoding boundaries read back intact.
        let lengths = [0, 28, 29, 284, 285, 65_820, 65_821, 70_000];
        let mut w = Writer::new("sizes", IpVersion::V4);
        for (i, len) in lengths.iter().enumerate() {
            let addr = std::net::Ipv4Addr::new(10, 0, i as u8, 0);
            let record = asn_record(64_496 + i as u32, &"x".repeat(*len));
            w.insert(IpNet::V4(Ipv4Net::new(addr, 24).unwrap()), record)
                .unwrap();
        }
        let db = Database::from_bytes("sizes.mmdb", w.to_bytes().unwrap()).unwrap();
        db.verify().unwrap();
        for (i, len) in lengths.iter().enumerate() {
            let geo = db
                .lookup(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, i as u8, 1)))
                .unwrap();
            assert_eq!(geo.asn, Some(64_496 + i as u32));
            assert_eq!(geo.holder.map_or(0, |h| h.len()), *len);
        }
        // Identical records are stored once.
        let one = build(
            "dedup",
            IpVersion::V4,
            [(net("192.0.2.0/24"), asn_record(1, "same"))],
        );
        let two = build(
            "dedup",
            IpVersion::V4,
            [
                (net("192.0.2.0/24"), asn_record(1, "same")),
                (net("198.51.100.0/24"), asn_record(1, "same")),
            ],
        );
        let data_len = |bytes: Vec<u8>| {
            let meta = bytes
                .windows(14)
                .rposition(|w| w == b"\xab\xcd\xefMaxMind.com")
                .unwrap();
            let reader = maxminddb::Reader::from_source(bytes).unwrap();
            let tree = reader.metadata().node_count as usize * 6 + 16;
            meta - tree
        };
        assert_eq!(data_len(one.unwrap()), data_len(two.unwrap()));

        assert_eq!(
            Writer::new("x", IpVersion::V4).record_size(20).to_bytes(),
            Err(testing::WriteError::RecordSize(20))
        );
        let mut big = Writer::new("x", IpVersion::V4).record_size(24);
        big.insert(net("192.0.2.0/24"), Value::str("y".repeat(1 << 24)))
            .unwrap();
        assert!(matches!(
            big.to_bytes(),
            Err(testing::WriteError::TooLarge { bits: 24, .. })
        ));
    }
}
