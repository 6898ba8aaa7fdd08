//! Certificates for lab hosts, made at start-up with OpenSSL (nothing is shipped or fetched).
//!
//! One key pair serves every host of a kind (key generation is the slow part); each host gets
//! its own certificate so subjects and SANs can differ per host.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};

/// The key algorithm of lab certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// RSA 2048: what appliances ship, and what static-RSA legacy suites need.
    #[default]
    Rsa,
    /// ECDSA P-256: cheaper handshakes when the lab must not be the bottleneck.
    Ecdsa,
}

/// Generates a private key of the given kind.
pub fn generate_key(kind: KeyKind) -> Result<PKey<Private>, ErrorStack> {
    match kind {
        KeyKind::Rsa => PKey::from_rsa(Rsa::generate(2048)?),
        KeyKind::Ecdsa => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)
        }
    }
}

/// What a certificate says about its host.
#[derive(Clone, Debug, Default)]
pub struct CertSpec {
    /// Subject entries in order, for example `[("O", "Citrix ANG"), ("CN", "default ABCDEF")]`.
    pub subject: Vec<(String, String)>,
    pub dns_sans: Vec<String>,
    pub not_before_days_ago: u32,
    pub valid_days: u32,
}

impl CertSpec {
    /// The certificate a NetScaler makes for itself at first boot (`create_default_certificate`).
    pub fn netscaler_default(code: &str) -> Self {
        CertSpec {
            subject: [
                ("C", "US"),
                ("ST", "California"),
                ("L", "San Jose"),
                ("O", "Citrix ANG"),
                ("OU", "NS Internal"),
                ("CN", &format!("default {code}")),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            dns_sans: Vec::new(),
            not_before_days_ago: 2000,
            valid_days: 5475,
        }
    }

    /// A certificate for `name` with the name as CN and SAN.
    pub fn for_name(name: &str) -> Self {
        CertSpec {
            subject: vec![
                ("O".into(), "wachter lab".into()),
                ("CN".into(), name.into()),
            ],
            dns_sans: vec![name.into()],
            not_before_days_ago: 30,
            valid_days: 365,
        }
    }
}

/// A self-signed certificate for `spec`, signed with `key`.
pub fn self_signed(spec: &CertSpec, key: &PKey<Private>) -> Result<X509, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    for (field, value) in &spec.subject {
        name.append_entry_by_text(field, value)?;
    }
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let day = 86_400;
    let not_before = Asn1Time::from_unix(now - i64::from(spec.not_before_days_ago) * day)?;
    let not_after = Asn1Time::from_unix(now + i64::from(spec.valid_days) * day)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    if !spec.dns_sans.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for dns in &spec.dns_sans {
            san.dns(dns);
        }
        let ext = san.build(&builder.x509v3_context(None, None))?;
        builder.append_extension(ext)?;
    }
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}
