//! Checking a PKCS #10 certification request (RFC 2986) before the CA certifies its key:
//! the self-signature (proof of possession, RFC 2986 §3) and the key, as step-ca's
//! `authority.Sign` and its default public-key validator do.

use keystation_core::key::PublicKey;
use keystation_x509::{CertificateRequest, SubjectAltName};
use x509_cert::der::asn1::{ObjectIdentifier, UintRef};
use x509_cert::der::{Decode, Reader as _, SliceReader};
use x509_cert::spki::SubjectPublicKeyInfoRef;

use crate::san::san_value;
use crate::{Error, cert};

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_X25519: &str = "1.3.101.110";
const OID_COMMON_NAME: &str = "2.5.4.3";

/// The smallest RSA modulus step-ca certifies.
pub const MIN_RSA_BITS: usize = 2048;

/// A certification request whose signature verified and whose key the CA certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCsr {
    /// The subject's common name (the last one, as Go reads names), if it has one.
    pub common_name: Option<String>,
    /// The requested subject alternative names as strings, in step-ca's order: DNS names,
    /// IP addresses, e-mail addresses, URIs.
    pub sans: Vec<String>,
    /// The same names, typed.
    pub typed_sans: Vec<SubjectAltName>,
    /// The key to certify.
    pub public_key: PublicKey,
    /// Its DER SubjectPublicKeyInfo, as the request carries it.
    pub spki_der: Vec<u8>,
    /// The request's DER.
    pub der: Vec<u8>,
}

/// Checks a certification request given as DER or PEM (`CERTIFICATE REQUEST` or
/// `NEW CERTIFICATE REQUEST`).
///
/// In order, each failure with its own error:
///
/// 1. it must parse — [`Error::MalformedCsr`];
/// 2. its key must be one keystation certifies: RSA of at least 2048 bits
///    ([`Error::RsaKeyTooSmall`] below that) and of 2048, 3072 or 4096 bits, ECDSA on P-256
///    or P-384, or Ed25519 — anything else is [`Error::UnsupportedKey`] naming it;
/// 3. its signature must verify with that key — [`Error::CsrSignature`].
pub fn check_csr(input: &[u8]) -> Result<CheckedCsr, Error> {
    let request = parse(input)?;
    let der = request.to_der();
    let spki_der = request.spki_der().to_vec();
    let public_key = check_key(&spki_der)?;
    keystation_x509::verify_csr(&der).map_err(|e| Error::CsrSignature(e.to_string()))?;
    let common_name = common_name(request.subject_der())?;
    let typed_sans = requested_sans(&request)?;
    let sans = typed_sans.iter().map(san_value).collect();
    Ok(CheckedCsr { common_name, sans, typed_sans, public_key, spki_der, der })
}

fn parse(input: &[u8]) -> Result<CertificateRequest, Error> {
    let malformed = |e: keystation_x509::Error| Error::MalformedCsr(e.to_string());
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let text = core::str::from_utf8(trimmed)
            .map_err(|_| Error::MalformedCsr("PEM that is not UTF-8".into()))?;
        CertificateRequest::from_pem(text).map_err(malformed)
    } else {
        CertificateRequest::from_der(input).map_err(malformed)
    }
}

/// The key of `spki_der` if the CA certifies it, else the precise reason it does not.
pub(crate) fn check_key(spki_der: &[u8]) -> Result<PublicKey, Error> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| Error::MalformedCsr(format!("SubjectPublicKeyInfo: {e}")))?;
    let algorithm = spki.algorithm.oid.to_string();
    match algorithm.as_str() {
        OID_RSA_ENCRYPTION => {
            let bits = rsa_modulus_bits(spki.subject_public_key.raw_bytes())?;
            if bits < MIN_RSA_BITS {
                return Err(Error::RsaKeyTooSmall { bits });
            }
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(Error::UnsupportedKey(format!(
                    "RSA key of {bits} bits: keystation certifies 2048, 3072 and 4096-bit RSA keys"
                )));
            }
        }
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .map(|o| o.to_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7" | "1.3.132.0.34") => {}
                Some("1.3.132.0.35") => {
                    return Err(Error::UnsupportedKey("ECDSA on P-521".into()));
                }
                Some(other) => {
                    return Err(Error::UnsupportedKey(format!("EC key on curve {other}")));
                }
                None => return Err(Error::UnsupportedKey("EC key without a named curve".into())),
            }
        }
        OID_ED25519 => {}
        OID_X25519 => {
            return Err(Error::UnsupportedKey("X25519 (a key-agreement key cannot sign)".into()));
        }
        other => return Err(Error::UnsupportedKey(format!("key algorithm {other}"))),
    }
    keystation_x509::public_key_from_spki(spki_der).map_err(|e| match e {
        keystation_x509::Error::Malformed { .. } | keystation_x509::Error::Core(_) => {
            Error::MalformedCsr(e.to_string())
        }
        other => Error::UnsupportedKey(other.to_string()),
    })
}

/// The bit length of an RSAPublicKey's modulus (RFC 8017 A.1.1).
fn rsa_modulus_bits(key_bits: &[u8]) -> Result<usize, Error> {
    let malformed = |e: x509_cert::der::Error| Error::MalformedCsr(format!("RSA public key: {e}"));
    let mut reader = SliceReader::new(key_bits).map_err(malformed)?;
    let modulus = reader
        .sequence(|seq| {
            let n = UintRef::decode(seq)?;
            let _e = UintRef::decode(seq)?;
            Ok(n)
        })
        .map_err(malformed)?;
    reader.finish(()).map_err(malformed)?;
    let n = modulus.as_bytes();
    Ok(match n.first() {
        None => 0,
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
    })
}

/// The last common name of a DER `Name` (Go's `pkix.Name.CommonName`).
pub(crate) fn common_name(name_der: &[u8]) -> Result<Option<String>, Error> {
    let name = cert::name(name_der)?;
    let mut found = None;
    for atv in name.0.iter().flat_map(|rdn| rdn.0.iter()) {
        if atv.oid.to_string() == OID_COMMON_NAME {
            let text = x509_cert::der::asn1::Utf8StringRef::try_from(&atv.value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    x509_cert::der::asn1::PrintableStringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_owned())
                })
                .or_else(|_| {
                    x509_cert::der::asn1::Ia5StringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_owned())
                })
                .map_err(|_| Error::MalformedCsr("a common name that is not a string".into()))?;
            found = Some(text);
        }
    }
    Ok(found)
}

/// The requested SANs in step-ca's order: DNS, IP, e-mail, URI. A SAN extension that does
/// not decode is an error; name kinds other than these four are skipped, as Go does.
fn requested_sans(request: &CertificateRequest) -> Result<Vec<SubjectAltName>, Error> {
    if let Some(value) = request.extension(cert::OID_SUBJECT_ALT_NAME) {
        x509_cert::ext::pkix::SubjectAltName::from_der(value)
            .map_err(|e| Error::MalformedCsr(format!("subject alternative names: {e}")))?;
    }
    let names = request.subject_alt_names();
    let rank = |san: &SubjectAltName| match san {
        SubjectAltName::Dns(_) => 0,
        SubjectAltName::Ip(_) => 1,
        SubjectAltName::Email(_) => 2,
        _ => 3,
    };
    let mut ordered = names;
    ordered.sort_by_key(rank);
    Ok(ordered)
}
