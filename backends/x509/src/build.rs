//! Building PKCS#10 requests (RFC 2986) and certificates (RFC 5280) signed through a
//! [`Signer`], so the private key may stay on a card.

use core::time::Duration;

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey};
use keystation_core::keygen::{SignInput, Signer};
use sha2::{Digest, Sha256, Sha384};
use x509_cert::attr::Attribute;
use x509_cert::der::asn1::{
    Any, BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString, SetOfVec, UtcTime,
    Utf8StringRef,
};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::Time;
use x509_cert::{TbsCertificate, Version};

use crate::verify::{OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_SHA256_WITH_RSA};
use crate::{Certificate, DistinguishedName, Error, Result};

const OID_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const OID_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

/// An extended key usage purpose (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExtendedKeyUsage {
    /// `id-kp-clientAuth`: TLS client (kubectl, mTLS).
    ClientAuth,
    /// `id-kp-serverAuth`: TLS server.
    ServerAuth,
}

/// A subject alternative name (RFC 5280 §4.2.1.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectAltName {
    /// `dNSName`.
    Dns(String),
    /// `rfc822Name`, an e-mail address.
    Email(String),
    /// `uniformResourceIdentifier`.
    Uri(String),
    /// `iPAddress`: 4 octets for IPv4, 16 for IPv6 (RFC 5280 §4.2.1.6).
    Ip(std::net::IpAddr),
    /// `otherName` `id-on-permanentIdentifier` (RFC 4043 §2) with its `identifierValue`
    /// only: a device's permanent identifier, such as the serial an ACME
    /// `device-attest-01` challenge proved (step-ca's attested leaf carries the same).
    PermanentIdentifier(String),
}

/// `id-on-permanentIdentifier` (RFC 4043 §2).
pub const OID_PERMANENT_IDENTIFIER: &str = "1.3.6.1.5.5.7.8.3";

/// The `otherName` of a permanent identifier: `type-id` [`OID_PERMANENT_IDENTIFIER`] and,
/// inside the `[0] EXPLICIT` value, `PermanentIdentifier ::= SEQUENCE { identifierValue
/// UTF8String }` (RFC 4043 §2; no `assigner`).
pub fn permanent_identifier_name(value: &str) -> Result<GeneralName> {
    let utf8 = Utf8StringRef::new(value)
        .map_err(|e| Error::InvalidInput(format!("permanent identifier {value:?}: {e}")))?;
    let mut inner = Vec::new();
    utf8.encode_to_vec(&mut inner)
        .map_err(|e| Error::InvalidInput(format!("permanent identifier {value:?}: {e}")))?;
    let mut sequence = vec![0x30];
    push_der_length(&mut sequence, inner.len());
    sequence.extend_from_slice(&inner);
    let value = Any::from_der(&sequence)
        .map_err(|e| Error::InvalidInput(format!("permanent identifier {value:?}: {e}")))?;
    let type_id = ObjectIdentifier::new(OID_PERMANENT_IDENTIFIER)
        .map_err(|e| Error::InvalidInput(format!("permanent identifier OID: {e}")))?;
    Ok(GeneralName::OtherName(x509_cert::ext::pkix::name::OtherName { type_id, value }))
}

/// Appends a DER length (X.690 §8.1.3).
fn push_der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// What to put in a request or certificate besides name and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateOptions {
    /// KeyUsage (critical): digitalSignature, plus keyEncipherment for RSA keys, plus
    /// keyCertSign and cRLSign when `ca` is set. Default `true`.
    pub key_usage: bool,
    /// ExtendedKeyUsage purposes; none gives no extension.
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Subject alternative names; none gives no extension.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// BasicConstraints `cA` (certificates only; the extension is always written,
    /// critical). Default `false`.
    pub ca: bool,
}

impl Default for CertificateOptions {
    fn default() -> Self {
        Self {
            key_usage: true,
            extended_key_usage: Vec::new(),
            subject_alt_names: Vec::new(),
            ca: false,
        }
    }
}

/// A validity period in Unix seconds, both ends inclusive (RFC 5280 §4.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Validity {
    /// First second of validity.
    pub not_before: u64,
    /// Last second of validity (253402300799 is `99991231235959Z`, no expiry).
    pub not_after: u64,
}

fn invalid(what: impl core::fmt::Display) -> Error {
    Error::InvalidInput(what.to_string())
}

fn oid(dotted: &str) -> Result<ObjectIdentifier> {
    ObjectIdentifier::new(dotted).map_err(invalid)
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
fn x509_time(unix: u64) -> Result<Time> {
    let since = Duration::from_secs(unix);
    if let Ok(utc) = UtcTime::from_unix_duration(since) {
        return Ok(Time::UtcTime(utc));
    }
    GeneralizedTime::from_unix_duration(since)
        .map(Time::GeneralTime)
        .map_err(|_| invalid(format!("time {unix} is outside 1970–9999")))
}

/// The signature algorithm for the signer's key, and how to feed the signer.
struct Scheme {
    algorithm: AlgorithmIdentifierOwned,
    kind: SchemeKind,
}

enum SchemeKind {
    Sha256,
    Sha384,
    Message,
}

fn scheme(key: &PublicKey) -> Result<Scheme> {
    let (dotted, null, kind) = match key.algorithm() {
        KeyAlgorithm::NistP256 => (OID_ECDSA_SHA256, false, SchemeKind::Sha256),
        KeyAlgorithm::NistP384 => (OID_ECDSA_SHA384, false, SchemeKind::Sha384),
        KeyAlgorithm::Rsa(_) => (OID_SHA256_WITH_RSA, true, SchemeKind::Sha256),
        KeyAlgorithm::Ed25519 => (crate::certificate::OID_ED25519, false, SchemeKind::Message),
        other => return Err(Error::UnsupportedKeyAlgorithm(format!("{other} cannot sign"))),
    };
    // RFC 4055 §5: NULL parameters for RSA; RFC 5758 §3.2, RFC 8410 §3: absent otherwise.
    let parameters = if null { Some(Any::null()) } else { None };
    Ok(Scheme { algorithm: AlgorithmIdentifierOwned { oid: oid(dotted)?, parameters }, kind })
}

fn sign(signer: &mut dyn Signer, scheme: &Scheme, body: &[u8]) -> Result<BitString> {
    let signature = match scheme.kind {
        SchemeKind::Sha256 => {
            let digest = Sha256::digest(body);
            signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })?
        }
        SchemeKind::Sha384 => {
            let digest = Sha384::digest(body);
            signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha384, digest: &digest })?
        }
        SchemeKind::Message => signer.sign(SignInput::Message(body))?,
    };
    BitString::from_bytes(&signature).map_err(invalid)
}

/// The DER `AlgorithmIdentifier` keystation signs with for `key` (RFC 5280 §4.1.1.2):
/// `sha256WithRSAEncryption` with NULL parameters for RSA (RFC 4055 §5),
/// `ecdsa-with-SHA256`/`-SHA384` for P-256/P-384 (RFC 5758 §3.2), `id-Ed25519` (RFC 8410
/// §3). For callers that build their own to-be-signed structure (a CRL, RFC 5280 §5.1) and
/// sign it with [`sign_tbs`]; X25519 keys cannot sign and are refused.
pub fn signature_algorithm_der(key: &PublicKey) -> Result<Vec<u8>> {
    scheme(key)?.algorithm.to_der().map_err(invalid)
}

/// Signs the DER of a to-be-signed structure through `signer`, with the scheme that
/// [`signature_algorithm_der`] names for the signer's key (the digest is made here, so a
/// card signs only the hash). Returns the signature as it goes into the BIT STRING: DER
/// `Ecdsa-Sig-Value` for ECDSA, the modulus-length block for RSA, 64 bytes for Ed25519.
pub fn sign_tbs(signer: &mut dyn Signer, tbs_der: &[u8]) -> Result<Vec<u8>> {
    let scheme = scheme(signer.public_key())?;
    let signature = sign(signer, &scheme, tbs_der)?;
    signature.as_bytes().map(<[u8]>::to_vec).ok_or_else(|| invalid("the signature has unused bits"))
}

fn spki(key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned> {
    SubjectPublicKeyInfoOwned::from_der(&key.to_spki_der()).map_err(invalid)
}

fn extension(dotted: &str, critical: bool, value: &impl Encode) -> Result<Extension> {
    let value = value.to_der().map_err(invalid)?;
    Ok(Extension {
        extn_id: oid(dotted)?,
        critical,
        extn_value: OctetString::new(value).map_err(invalid)?,
    })
}

/// The extensions `options` ask for. `basic` adds BasicConstraints (certificates only);
/// `ski` adds the subject key identifier (RFC 7093 §2 method 1: the leftmost 160 bits of
/// the SHA-256 of the key's BIT STRING contents).
fn extensions(
    options: &CertificateOptions,
    key: &PublicKey,
    certificate: bool,
) -> Result<Vec<Extension>> {
    let mut out = Vec::new();
    if certificate {
        let constraints = BasicConstraints { ca: options.ca, path_len_constraint: None };
        out.push(extension("2.5.29.19", true, &constraints)?);
    }
    if options.key_usage {
        let mut usage = KeyUsages::DigitalSignature.into();
        if matches!(key.algorithm(), KeyAlgorithm::Rsa(_)) {
            usage |= KeyUsages::KeyEncipherment;
        }
        if options.ca && certificate {
            usage |= KeyUsages::KeyCertSign | KeyUsages::CRLSign;
        }
        out.push(extension("2.5.29.15", true, &KeyUsage(usage))?);
    }
    if !options.extended_key_usage.is_empty() {
        let purposes = options
            .extended_key_usage
            .iter()
            .map(|p| {
                oid(match p {
                    ExtendedKeyUsage::ClientAuth => OID_CLIENT_AUTH,
                    ExtendedKeyUsage::ServerAuth => OID_SERVER_AUTH,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let eku = x509_cert::ext::pkix::ExtendedKeyUsage(purposes);
        out.push(extension("2.5.29.37", false, &eku)?);
    }
    if !options.subject_alt_names.is_empty() {
        let names = options
            .subject_alt_names
            .iter()
            .map(|n| {
                let ia5 =
                    |s: &str| Ia5String::new(s).map_err(|_| invalid(format!("{s:?} is not ASCII")));
                Ok(match n {
                    SubjectAltName::Dns(s) => GeneralName::DnsName(ia5(s)?),
                    SubjectAltName::Email(s) => GeneralName::Rfc822Name(ia5(s)?),
                    SubjectAltName::Uri(s) => GeneralName::UniformResourceIdentifier(ia5(s)?),
                    SubjectAltName::Ip(ip) => {
                        let octets = match ip {
                            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
                        };
                        GeneralName::IpAddress(OctetString::new(octets).map_err(invalid)?)
                    }
                    SubjectAltName::PermanentIdentifier(v) => permanent_identifier_name(v)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let san = x509_cert::ext::pkix::SubjectAltName(names);
        out.push(extension("2.5.29.17", false, &san)?);
    }
    if certificate {
        out.push(extension("2.5.29.14", false, &SubjectKeyIdentifier(key_id(key)?))?);
    }
    Ok(out)
}

fn key_id(key: &PublicKey) -> Result<OctetString> {
    let spki = spki(key)?;
    let bits = spki.subject_public_key.raw_bytes();
    OctetString::new(&Sha256::digest(bits)[..20]).map_err(invalid)
}

/// Builds and signs a PKCS#10 certification request (RFC 2986 §4) for the signer's key,
/// with the options' extensions in an extensionRequest attribute (RFC 2985 §5.4.2;
/// BasicConstraints is left to the CA). Returns the DER.
pub fn build_csr(
    signer: &mut dyn Signer,
    subject: &DistinguishedName,
    options: &CertificateOptions,
) -> Result<Vec<u8>> {
    let key = signer.public_key().clone();
    let scheme = scheme(&key)?;
    let mut attributes = SetOfVec::new();
    let requested = extensions(options, &key, false)?;
    if !requested.is_empty() {
        let attribute = Attribute::try_from(ExtensionReq(requested)).map_err(invalid)?;
        attributes.insert(attribute).map_err(invalid)?;
    }
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: subject.to_x509()?,
        public_key: spki(&key)?,
        attributes,
    };
    let body = info.to_der().map_err(invalid)?;
    let signature = sign(signer, &scheme, &body)?;
    CertReq { info, algorithm: scheme.algorithm, signature }.to_der().map_err(invalid)
}

/// The DER INTEGER contents for a positive serial: leading zeros dropped, one added back
/// when the top bit is set; 1 to 20 octets (RFC 5280 §4.1.2.2).
fn serial_number(serial: &[u8]) -> Result<SerialNumber> {
    let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    let digits = &serial[start..];
    if digits.is_empty() {
        return Err(invalid("the serial number must be positive"));
    }
    let mut bytes = Vec::with_capacity(digits.len() + 1);
    if digits[0] & 0x80 != 0 {
        bytes.push(0);
    }
    bytes.extend_from_slice(digits);
    if bytes.len() > 20 {
        return Err(invalid("the serial number is longer than 20 octets"));
    }
    SerialNumber::new(&bytes).map_err(invalid)
}

#[allow(clippy::too_many_arguments)]
fn certificate(
    signer: &mut dyn Signer,
    issuer: Name,
    subject: &DistinguishedName,
    subject_key: &PublicKey,
    serial: &[u8],
    validity: Validity,
    options: &CertificateOptions,
    extra: Vec<Extension>,
) -> Result<Vec<u8>> {
    if validity.not_after < validity.not_before {
        return Err(invalid("not_after is before not_before"));
    }
    let scheme = scheme(signer.public_key())?;
    let mut all = extensions(options, subject_key, true)?;
    all.extend(extra);
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial_number(serial)?,
        signature: scheme.algorithm.clone(),
        issuer,
        validity: x509_cert::time::Validity {
            not_before: x509_time(validity.not_before)?,
            not_after: x509_time(validity.not_after)?,
        },
        subject: subject.to_x509()?,
        subject_public_key_info: spki(subject_key)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(all),
    };
    let body = tbs.to_der().map_err(invalid)?;
    let signature = sign(signer, &scheme, &body)?;
    x509_cert::Certificate {
        tbs_certificate: tbs,
        signature_algorithm: scheme.algorithm,
        signature,
    }
    .to_der()
    .map_err(invalid)
}

/// Builds a self-signed certificate (issuer = subject) for the signer's key. Returns the
/// DER.
pub fn self_signed_certificate(
    signer: &mut dyn Signer,
    subject: &DistinguishedName,
    serial: &[u8],
    validity: Validity,
    options: &CertificateOptions,
) -> Result<Vec<u8>> {
    let key = signer.public_key().clone();
    certificate(signer, subject.to_x509()?, subject, &key, serial, validity, options, Vec::new())
}

/// Issues a certificate for `subject_key` signed by `issuer_signer`, whose certificate is
/// `issuer_der`: the issuer name is copied from it, and an authority key identifier
/// (RFC 5280 §4.2.1.1) from its subject key identifier when it has one. The signer's key
/// must be the issuer certificate's key.
pub fn issue_certificate(
    issuer_signer: &mut dyn Signer,
    issuer_der: &[u8],
    subject_key: &PublicKey,
    subject: &DistinguishedName,
    serial: &[u8],
    validity: Validity,
    options: &CertificateOptions,
) -> Result<Vec<u8>> {
    let issuer_cert = Certificate::from_der(issuer_der)?;
    if issuer_cert.spki_der() != issuer_signer.public_key().to_spki_der() {
        return Err(invalid("the signer's key is not the issuer certificate's key"));
    }
    let issuer = Name::from_der(issuer_cert.subject_der()).map_err(invalid)?;
    let mut extra = Vec::new();
    if let Some(ski) = issuer_cert.extension("2.5.29.14")
        && let Ok(id) = OctetString::from_der(ski)
    {
        let aki = x509_cert::ext::pkix::AuthorityKeyIdentifier {
            key_identifier: Some(id),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        extra.push(extension("2.5.29.35", false, &aki)?);
    }
    certificate(issuer_signer, issuer, subject, subject_key, serial, validity, options, extra)
}
