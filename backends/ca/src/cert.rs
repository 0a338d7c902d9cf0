//! Assembling and signing X.509 v3 certificates (RFC 5280 §4.1) with the extensions a CA
//! writes, in the order Go's `crypto/x509` (and so step-ca) writes them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::Signer;
use keystation_x509::{ExtendedKeyUsage, SubjectAltName};
use sha1::{Digest as _, Sha1};
use x509_cert::der::asn1::{
    BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString, UtcTime,
};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::{Error, Serial};

pub(crate) const OID_SUBJECT_KEY_ID: &str = "2.5.29.14";
pub(crate) const OID_KEY_USAGE: &str = "2.5.29.15";
pub(crate) const OID_SUBJECT_ALT_NAME: &str = "2.5.29.17";
pub(crate) const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
pub(crate) const OID_AUTHORITY_KEY_ID: &str = "2.5.29.35";
pub(crate) const OID_EXT_KEY_USAGE: &str = "2.5.29.37";
const OID_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const OID_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// A key usage bit (RFC 5280 §4.2.1.3) a leaf certificate may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyUsage {
    /// `digitalSignature` (TLS handshakes, signatures).
    DigitalSignature,
    /// `contentCommitment` (formerly nonRepudiation).
    ContentCommitment,
    /// `keyEncipherment` (RSA key transport).
    KeyEncipherment,
    /// `dataEncipherment`.
    DataEncipherment,
    /// `keyAgreement` (ECDH).
    KeyAgreement,
}

impl KeyUsage {
    /// step-ca's default for a leaf with this subject key: `digitalSignature`, and
    /// `keyEncipherment` too for RSA keys (`x509util.DefaultLeafTemplate`).
    pub fn defaults_for(algorithm: KeyAlgorithm) -> Vec<Self> {
        match algorithm {
            KeyAlgorithm::Rsa(_) => vec![Self::KeyEncipherment, Self::DigitalSignature],
            _ => vec![Self::DigitalSignature],
        }
    }

    fn flag(self) -> KeyUsages {
        match self {
            Self::DigitalSignature => KeyUsages::DigitalSignature,
            Self::ContentCommitment => KeyUsages::NonRepudiation,
            Self::KeyEncipherment => KeyUsages::KeyEncipherment,
            Self::DataEncipherment => KeyUsages::DataEncipherment,
            Self::KeyAgreement => KeyUsages::KeyAgreement,
        }
    }
}

pub(crate) fn bad(e: impl core::fmt::Display) -> Error {
    Error::template(e)
}

pub(crate) fn oid(dotted: &str) -> Result<ObjectIdentifier, Error> {
    ObjectIdentifier::new(dotted).map_err(bad)
}

/// Unix seconds of `time` (before 1970 is an error).
pub(crate) fn unix(time: SystemTime) -> Result<u64, Error> {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).map_err(|_| bad("a time before 1970"))
}

/// The instant `secs` Unix seconds.
pub(crate) fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
pub(crate) fn x509_time(unix: u64) -> Result<Time, Error> {
    let since = Duration::from_secs(unix);
    if let Ok(utc) = UtcTime::from_unix_duration(since) {
        return Ok(Time::UtcTime(utc));
    }
    GeneralizedTime::from_unix_duration(since)
        .map(Time::GeneralTime)
        .map_err(|_| bad(format!("time {unix} is outside 1970–9999")))
}

pub(crate) fn extension(
    dotted: &str,
    critical: bool,
    value: &impl Encode,
) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: oid(dotted)?,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(bad)?).map_err(bad)?,
    })
}

/// The subject key identifier of a key (RFC 5280 §4.2.1.2 method 1, as step-ca and Go
/// compute it): SHA-1 of the subjectPublicKey BIT STRING's contents.
pub(crate) fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, Error> {
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| bad(format!("SubjectPublicKeyInfo: {e}")))?;
    Ok(Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec())
}

/// BasicConstraints (critical, RFC 5280 §4.2.1.9).
pub(crate) fn basic_constraints(ca: bool, path_len: Option<u8>) -> Result<Extension, Error> {
    extension(OID_BASIC_CONSTRAINTS, true, &BasicConstraints { ca, path_len_constraint: path_len })
}

/// KeyUsage `keyCertSign` and `cRLSign` (critical), what step-ca's CA templates set.
pub(crate) fn ca_key_usage() -> Result<Extension, Error> {
    let usage = KeyUsages::KeyCertSign | KeyUsages::CRLSign;
    extension(OID_KEY_USAGE, true, &x509_cert::ext::pkix::KeyUsage(usage))
}

/// KeyUsage of a leaf (critical).
pub(crate) fn leaf_key_usage(usages: &[KeyUsage]) -> Result<Option<Extension>, Error> {
    let Some((first, rest)) = usages.split_first() else { return Ok(None) };
    let mut flags: x509_cert::der::flagset::FlagSet<KeyUsages> = first.flag().into();
    for usage in rest {
        flags |= usage.flag();
    }
    extension(OID_KEY_USAGE, true, &x509_cert::ext::pkix::KeyUsage(flags)).map(Some)
}

/// ExtendedKeyUsage (not critical, RFC 5280 §4.2.1.12).
pub(crate) fn ext_key_usage(purposes: &[ExtendedKeyUsage]) -> Result<Option<Extension>, Error> {
    if purposes.is_empty() {
        return Ok(None);
    }
    let oids = purposes
        .iter()
        .map(|p| match p {
            ExtendedKeyUsage::ServerAuth => oid(OID_SERVER_AUTH),
            ExtendedKeyUsage::ClientAuth => oid(OID_CLIENT_AUTH),
            other => Err(bad(format!("extended key usage {other:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    extension(OID_EXT_KEY_USAGE, false, &x509_cert::ext::pkix::ExtendedKeyUsage(oids)).map(Some)
}

pub(crate) fn subject_key_id(key_id: &[u8]) -> Result<Extension, Error> {
    extension(
        OID_SUBJECT_KEY_ID,
        false,
        &SubjectKeyIdentifier(OctetString::new(key_id).map_err(bad)?),
    )
}

pub(crate) fn authority_key_id(key_id: &[u8]) -> Result<Extension, Error> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id).map_err(bad)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extension(OID_AUTHORITY_KEY_ID, false, &aki)
}

/// SubjectAltName; critical when the subject is empty (RFC 5280 §4.2.1.6, as step-ca's
/// `fixSubjectAltName`). The names go in Go's order: DNS names, e-mail addresses, IP
/// addresses, URIs; then permanent identifiers (RFC 4043), as step-ca's attested leaf.
pub(crate) fn subject_alt_name(
    sans: &[SubjectAltName],
    critical: bool,
) -> Result<Option<Extension>, Error> {
    if sans.is_empty() {
        return Ok(None);
    }
    let ia5 = |s: &str| Ia5String::new(s).map_err(|_| bad(format!("SAN {s:?} is not ASCII")));
    let mut names = Vec::with_capacity(sans.len());
    for rank in 0..5 {
        for san in sans {
            let name = match (rank, san) {
                (0, SubjectAltName::Dns(s)) => GeneralName::DnsName(ia5(s)?),
                (1, SubjectAltName::Email(s)) => GeneralName::Rfc822Name(ia5(s)?),
                (2, SubjectAltName::Ip(ip)) => {
                    let octets = match ip.to_canonical() {
                        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                    };
                    GeneralName::IpAddress(OctetString::new(octets).map_err(bad)?)
                }
                (3, SubjectAltName::Uri(s)) => GeneralName::UniformResourceIdentifier(ia5(s)?),
                (4, SubjectAltName::PermanentIdentifier(v)) => {
                    keystation_x509::permanent_identifier_name(v).map_err(bad)?
                }
                (_, SubjectAltName::Dns(_) | SubjectAltName::Email(_))
                | (_, SubjectAltName::Ip(_) | SubjectAltName::Uri(_))
                | (_, SubjectAltName::PermanentIdentifier(_)) => continue,
                (_, other) => return Err(bad(format!("SAN {other:?}"))),
            };
            names.push(name);
        }
    }
    let value = x509_cert::ext::pkix::SubjectAltName(names);
    extension(OID_SUBJECT_ALT_NAME, critical, &value).map(Some)
}

/// What a certificate says besides its signature.
pub(crate) struct TbsParts<'a> {
    pub(crate) issuer: Name,
    pub(crate) subject: Name,
    pub(crate) spki_der: &'a [u8],
    pub(crate) serial: &'a Serial,
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
    pub(crate) extensions: Vec<Extension>,
}

/// The AlgorithmIdentifier the signer's key signs with.
pub(crate) fn signature_algorithm(signer: &dyn Signer) -> Result<AlgorithmIdentifierOwned, Error> {
    let der = keystation_x509::signature_algorithm_der(signer.public_key())?;
    AlgorithmIdentifierOwned::from_der(&der).map_err(bad)
}

/// Builds the TBSCertificate, signs it through `signer` and returns the certificate's DER.
pub(crate) fn sign_certificate(
    signer: &mut dyn Signer,
    parts: TbsParts<'_>,
) -> Result<Vec<u8>, Error> {
    if parts.not_after < parts.not_before {
        return Err(bad("not_after is before not_before"));
    }
    let algorithm = signature_algorithm(signer)?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&parts.serial.to_der_contents()).map_err(bad)?,
        signature: algorithm.clone(),
        issuer: parts.issuer,
        validity: Validity {
            not_before: x509_time(parts.not_before)?,
            not_after: x509_time(parts.not_after)?,
        },
        subject: parts.subject,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(parts.spki_der)
            .map_err(|e| bad(format!("SubjectPublicKeyInfo: {e}")))?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: if parts.extensions.is_empty() { None } else { Some(parts.extensions) },
    };
    let body = tbs.to_der().map_err(bad)?;
    let signature = keystation_x509::sign_tbs(signer, &body)?;
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)
}

/// Parses a DER certificate into the x509-cert structure (for the CA's own use: renewals
/// copy fields from it).
pub(crate) fn parse(der: &[u8]) -> Result<Certificate, Error> {
    Certificate::from_der(der)
        .map_err(|e| Error::Certificate(format!("malformed certificate: {e}")))
}

/// A `Name` from its DER.
pub(crate) fn name(der: &[u8]) -> Result<Name, Error> {
    Name::from_der(der).map_err(|e| Error::Certificate(format!("malformed name: {e}")))
}
