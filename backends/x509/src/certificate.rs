//! Parsed certificates (RFC 5280 §4.1) and certification requests (RFC 2986 §4), reduced
//! to keystation's own types.

use keystation_core::key::{KeyAlgorithm, PublicKey};
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{Any, ObjectIdentifier};
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::SubjectAltName as X509SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::build::SubjectAltName;
use crate::{Error, Result, pem};

pub(crate) const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
pub(crate) const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub(crate) const OID_P256: &str = "1.2.840.10045.3.1.7";
pub(crate) const OID_P384: &str = "1.3.132.0.34";
pub(crate) const OID_ED25519: &str = "1.3.101.112";
pub(crate) const OID_X25519: &str = "1.3.101.110";
const OID_COMMON_NAME: &str = "2.5.4.3";
const OID_SUBJECT_ALT_NAME: &str = "2.5.29.17";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_EXTENSION_REQUEST: &str = "1.2.840.113549.1.9.14";

/// One extension as it appears in the certificate (RFC 5280 §4.1.2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawExtension {
    pub(crate) oid: String,
    pub(crate) critical: bool,
    pub(crate) value: Vec<u8>,
}

/// A parsed X.509 certificate. It keeps its DER, and the fields keystation reads, in
/// keystation's own types.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    subject: String,
    issuer: String,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
    subject_cn: Option<String>,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    spki_der: Vec<u8>,
    signature_algorithm: String,
    extensions: Vec<RawExtension>,
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial", &self.serial_hex())
            .finish_non_exhaustive()
    }
}

fn malformed_cert(e: impl core::fmt::Display) -> Error {
    Error::malformed("certificate", e)
}

impl Certificate {
    /// Parses a DER certificate. Total: any input gives a certificate or an error.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = x509_cert::Certificate::from_der(der).map_err(malformed_cert)?;
        let tbs = cert.tbs_certificate;
        let extensions = tbs
            .extensions
            .unwrap_or_default()
            .into_iter()
            .map(|e| RawExtension {
                oid: e.extn_id.to_string(),
                critical: e.critical,
                value: e.extn_value.into_bytes(),
            })
            .collect();
        let seconds = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).map_err(malformed_cert)
        };
        Ok(Self {
            der: der.to_vec(),
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            subject_der: tbs.subject.to_der().map_err(malformed_cert)?,
            issuer_der: tbs.issuer.to_der().map_err(malformed_cert)?,
            subject_cn: common_name(&tbs.subject),
            serial: tbs.serial_number.as_bytes().to_vec(),
            not_before: seconds(tbs.validity.not_before)?,
            not_after: seconds(tbs.validity.not_after)?,
            spki_der: tbs.subject_public_key_info.to_der().map_err(malformed_cert)?,
            signature_algorithm: cert.signature_algorithm.oid.to_string(),
            extensions,
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(text: &str) -> Result<Self> {
        Self::from_der(&pem::first_with_label(text, "CERTIFICATE")?)
    }

    /// Parses every `CERTIFICATE` block of a PEM text (a chain or bundle), in order.
    pub fn all_from_pem(text: &str) -> Result<Vec<Self>> {
        pem::decode_all(text)?
            .iter()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| Self::from_der(&b.der))
            .collect()
    }

    /// The subject as an RFC 4514 string, e.g. `CN=system:admin,O=system:masters`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The subject's DER `Name`, for exact comparison with another certificate's issuer.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The issuer's DER `Name`.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// The subject's (first) common name, if it has one in a string type.
    pub fn subject_common_name(&self) -> Option<&str> {
        self.subject_cn.as_deref()
    }

    /// The serial number's content octets (RFC 5280 §4.1.2.2), as encoded (a leading
    /// zero byte when the top bit is set).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number in lower-case hex, two digits per byte.
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }

    /// Start of the validity period, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of the validity period (inclusive), Unix seconds. `99991231235959Z` — "no
    /// well-defined expiration", RFC 5280 §4.1.2.5 — is 253402300799.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Whether `unix` lies within the validity period (both ends inclusive).
    pub fn is_valid_at(&self, unix: i64) -> bool {
        self.not_before <= unix && unix <= self.not_after
    }

    /// SHA-256 over the whole DER certificate, as `openssl x509 -fingerprint -sha256`
    /// shows it.
    pub fn fingerprint_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// The subject public key in keystation's type. Algorithms keystation does not
    /// handle (other curves, RSA sizes other than 2048/3072/4096, DSA …) are an error
    /// naming them; the certificate itself still parses.
    pub fn public_key(&self) -> Result<PublicKey> {
        public_key_from_spki(&self.spki_der)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The signature algorithm's OID, dotted (e.g. `1.2.840.10045.4.3.2`).
    pub fn signature_algorithm_oid(&self) -> &str {
        &self.signature_algorithm
    }

    /// The value (contents of `extnValue`) of the extension with this dotted OID.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.extensions.iter().find(|e| e.oid == oid).map(|e| e.value.as_slice())
    }

    /// The OIDs of the extensions marked critical.
    pub fn critical_extensions(&self) -> Vec<&str> {
        self.extensions.iter().filter(|e| e.critical).map(|e| e.oid.as_str()).collect()
    }

    /// Whether BasicConstraints says `cA TRUE` (RFC 5280 §4.2.1.9).
    pub fn is_ca(&self) -> bool {
        self.extension(OID_BASIC_CONSTRAINTS)
            .and_then(|v| x509_cert::ext::pkix::BasicConstraints::from_der(v).ok())
            .is_some_and(|b| b.ca)
    }

    /// The DNS names, e-mail addresses, URIs and IP addresses of the subject alternative
    /// name extension (RFC 5280 §4.2.1.6); other kinds (and IP addresses of neither 4 nor 16
    /// octets) are skipped.
    pub fn subject_alt_names(&self) -> Vec<SubjectAltName> {
        self.extension(OID_SUBJECT_ALT_NAME).map(alt_names).unwrap_or_default()
    }

    /// The certificate's DER.
    pub fn to_der(&self) -> Vec<u8> {
        self.der.clone()
    }

    /// The DER, borrowed.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as a PEM `CERTIFICATE` block.
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }
}

/// The `identifierValue` of a `PermanentIdentifier` (RFC 4043 §2), given the SEQUENCE's
/// contents: the UTF8String that comes first, when there is one.
fn permanent_identifier_value(contents: &[u8]) -> Option<String> {
    let (&inner_tag, rest) = contents.split_first()?;
    if inner_tag != 0x0c {
        return None;
    }
    let (len, value) = der_length(rest)?;
    String::from_utf8(value.get(..len)?.to_vec()).ok()
}

/// A DER length (X.690 §8.1.3) and what follows it.
fn der_length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first < 0x80 {
        return Some((usize::from(first), rest));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 || rest.len() < count {
        return None;
    }
    let len = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((len, &rest[count..]))
}

fn alt_names(value: &[u8]) -> Vec<SubjectAltName> {
    let Ok(names) = X509SubjectAltName::from_der(value) else { return Vec::new() };
    names
        .0
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(s) => Some(SubjectAltName::Dns(s.to_string())),
            GeneralName::Rfc822Name(s) => Some(SubjectAltName::Email(s.to_string())),
            GeneralName::UniformResourceIdentifier(s) => Some(SubjectAltName::Uri(s.to_string())),
            GeneralName::IpAddress(octets) => {
                let octets = octets.as_bytes();
                if let Ok(v4) = <[u8; 4]>::try_from(octets) {
                    Some(SubjectAltName::Ip(std::net::IpAddr::from(v4)))
                } else {
                    <[u8; 16]>::try_from(octets).ok().map(|v6| SubjectAltName::Ip(v6.into()))
                }
            }
            GeneralName::OtherName(other)
                if other.type_id.to_string() == crate::build::OID_PERMANENT_IDENTIFIER
                    && other.value.tag() == Tag::Sequence =>
            {
                permanent_identifier_value(other.value.value())
                    .map(SubjectAltName::PermanentIdentifier)
            }
            _ => None,
        })
        .collect()
}

/// A parsed PKCS#10 certification request (RFC 2986 §4).
#[derive(Clone)]
pub struct CertificateRequest {
    der: Vec<u8>,
    subject: String,
    subject_der: Vec<u8>,
    spki_der: Vec<u8>,
    extensions: Vec<RawExtension>,
}

impl core::fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CertificateRequest").field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl CertificateRequest {
    /// Parses a DER request (the signature is not checked here: see
    /// [`verify_csr`](crate::verify_csr)).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let bad = |e: x509_cert::der::Error| Error::malformed("certification request", e);
        let req = x509_cert::request::CertReq::from_der(der).map_err(bad)?;
        let info = req.info;
        let mut extensions = Vec::new();
        for attribute in info.attributes.iter() {
            if attribute.oid.to_string() != OID_EXTENSION_REQUEST {
                continue;
            }
            for value in attribute.values.iter() {
                let list: Vec<x509_cert::ext::Extension> = value.decode_as().map_err(bad)?;
                extensions.extend(list.into_iter().map(|e| RawExtension {
                    oid: e.extn_id.to_string(),
                    critical: e.critical,
                    value: e.extn_value.into_bytes(),
                }));
            }
        }
        Ok(Self {
            der: der.to_vec(),
            subject: info.subject.to_string(),
            subject_der: info.subject.to_der().map_err(bad)?,
            spki_der: info.public_key.to_der().map_err(bad)?,
            extensions,
        })
    }

    /// Parses the first `CERTIFICATE REQUEST` (or `NEW CERTIFICATE REQUEST`) PEM block.
    pub fn from_pem(text: &str) -> Result<Self> {
        let blocks = pem::decode_all(text)?;
        let block = blocks
            .iter()
            .find(|b| b.label == "CERTIFICATE REQUEST" || b.label == "NEW CERTIFICATE REQUEST")
            .ok_or_else(|| Error::Pem("no CERTIFICATE REQUEST block".to_owned()))?;
        Self::from_der(&block.der)
    }

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's DER `Name`.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The requested public key.
    pub fn public_key(&self) -> Result<PublicKey> {
        public_key_from_spki(&self.spki_der)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The subject alternative names requested in the extensionRequest attribute
    /// (PKCS#9, RFC 2985 §5.4.2).
    pub fn subject_alt_names(&self) -> Vec<SubjectAltName> {
        self.extensions
            .iter()
            .find(|e| e.oid == OID_SUBJECT_ALT_NAME)
            .map(|e| alt_names(&e.value))
            .unwrap_or_default()
    }

    /// The value of the requested extension with this dotted OID.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.extensions.iter().find(|e| e.oid == oid).map(|e| e.value.as_slice())
    }

    /// The request's DER.
    pub fn to_der(&self) -> Vec<u8> {
        self.der.clone()
    }

    /// The request as a PEM `CERTIFICATE REQUEST` block.
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE REQUEST", &self.der)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first common name of `name` whose value is a character string.
fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid.to_string() == OID_COMMON_NAME)
        .and_then(|atv| any_string(&atv.value))
}

fn any_string(value: &Any) -> Option<String> {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            String::from_utf8(value.value().to_vec()).ok()
        }
        Tag::BmpString => {
            let bytes = value.value();
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> =
                bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// Converts a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) into keystation's
/// [`PublicKey`]: RSA (RFC 3279 §2.3.1), EC on P-256/P-384 (RFC 5480 §2), Ed25519 and
/// X25519 (RFC 8410 §4).
pub fn public_key_from_spki(spki_der: &[u8]) -> Result<PublicKey> {
    let bad = |e: x509_cert::der::Error| Error::malformed("SubjectPublicKeyInfo", e);
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(bad)?;
    let key_bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::malformed("SubjectPublicKeyInfo", "key has unused bits"))?;
    let oid = spki.algorithm.oid.to_string();
    match oid.as_str() {
        OID_RSA_ENCRYPTION => {
            let key = pkcs1::RsaPublicKey::from_der(key_bits)
                .map_err(|e| Error::malformed("RSA public key", e))?;
            Ok(PublicKey::rsa(key.modulus.as_bytes(), key.public_exponent.as_bytes())?)
        }
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .map(|o| o.to_string())
                .ok_or_else(|| {
                    Error::UnsupportedKeyAlgorithm("EC key without a named curve".to_owned())
                })?;
            let algorithm = match curve.as_str() {
                OID_P256 => KeyAlgorithm::NistP256,
                OID_P384 => KeyAlgorithm::NistP384,
                other => return Err(Error::UnsupportedKeyAlgorithm(format!("EC curve {other}"))),
            };
            Ok(PublicKey::from_point(algorithm, key_bits)?)
        }
        OID_ED25519 => Ok(PublicKey::from_point(KeyAlgorithm::Ed25519, key_bits)?),
        OID_X25519 => Ok(PublicKey::from_point(KeyAlgorithm::X25519, key_bits)?),
        other => Err(Error::UnsupportedKeyAlgorithm(other.to_owned())),
    }
}
