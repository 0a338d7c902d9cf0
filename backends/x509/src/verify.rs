//! Signature verification for certificates (RFC 5280 §4.1.1.3) and certification
//! requests (RFC 2986 §4.2): RSA PKCS#1 v1.5 with SHA-256/384/512 (RFC 8017 §8.2.2,
//! RFC 4055 §5), ECDSA with SHA-256/384/512 on P-256 and P-384 (RFC 5758 §3.2), and
//! Ed25519 (RFC 8410 §6).

use ed25519_dalek::Verifier as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};

use crate::certificate::{OID_EC_PUBLIC_KEY, OID_ED25519, OID_P256, OID_P384, OID_RSA_ENCRYPTION};
use crate::der::signed_part;
use crate::{Certificate, Error, Result};

pub(crate) const OID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
pub(crate) const OID_SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
pub(crate) const OID_SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
pub(crate) const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
pub(crate) const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
pub(crate) const OID_ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(message).to_vec(),
            Self::Sha384 => Sha384::digest(message).to_vec(),
            Self::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

/// The signed body, the signature algorithm and the signature of a certificate or CRL
/// or request: all three share `SEQUENCE { body, AlgorithmIdentifier, BIT STRING }`.
struct Signed<'a> {
    body: &'a [u8],
    algorithm: AlgorithmIdentifierOwned,
    signature: Vec<u8>,
}

fn split_signed<'a>(der: &'a [u8], what: &'static str) -> Result<Signed<'a>> {
    let contents = crate::der::sequence_contents(der)
        .ok_or_else(|| Error::malformed(what, "not a DER SEQUENCE"))?;
    let body = signed_part(der).ok_or_else(|| Error::malformed(what, "no signed body"))?;
    let rest = &contents[body.len()..];
    let (alg, rest) = crate::der::split_element(rest)
        .ok_or_else(|| Error::malformed(what, "no signature algorithm"))?;
    let (bits, rest) =
        crate::der::split_element(rest).ok_or_else(|| Error::malformed(what, "no signature"))?;
    if !rest.is_empty() {
        return Err(Error::malformed(what, "trailing data"));
    }
    let algorithm =
        AlgorithmIdentifierOwned::from_der(alg).map_err(|e| Error::malformed(what, e))?;
    let bits =
        x509_cert::der::asn1::BitString::from_der(bits).map_err(|e| Error::malformed(what, e))?;
    let signature = bits
        .as_bytes()
        .ok_or_else(|| Error::malformed(what, "signature has unused bits"))?
        .to_vec();
    Ok(Signed { body, algorithm, signature })
}

/// Checks that the certificate `cert_der` is signed by the key of the certificate
/// `issuer_der`, and that its issuer name is the issuer's subject (RFC 5280 §6.1.3 (a)(1)
/// and (a)(4)). Validity and extensions are not checked here.
pub fn verify_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> Result<()> {
    let cert = Certificate::from_der(cert_der)?;
    let issuer = Certificate::from_der(issuer_der)?;
    if cert.issuer_der() != issuer.subject_der() {
        return Err(Error::InvalidInput(format!(
            "issuer {:?} is not the signer's subject {:?}",
            cert.issuer(),
            issuer.subject()
        )));
    }
    let signed = split_signed(cert_der, "certificate")?;
    verify_with_spki(issuer.spki_der(), &signed)
}

/// Checks a PKCS#10 request's self-signature (proof of possession, RFC 2986 §3) with the
/// public key it carries.
pub fn verify_csr(csr_der: &[u8]) -> Result<()> {
    let request = crate::CertificateRequest::from_der(csr_der)?;
    let signed = split_signed(csr_der, "certification request")?;
    verify_with_spki(request.spki_der(), &signed)
}

fn verify_with_spki(spki_der: &[u8], signed: &Signed<'_>) -> Result<()> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| Error::malformed("SubjectPublicKeyInfo", e))?;
    let key_oid = spki.algorithm.oid.to_string();
    let sig_oid = signed.algorithm.oid.to_string();
    let unsupported = || Error::UnsupportedSignatureAlgorithm(sig_oid.clone());
    let mismatch = || {
        Error::InvalidInput(format!(
            "signature algorithm {sig_oid} does not fit a key of type {key_oid}"
        ))
    };
    let (family, hash) = match sig_oid.as_str() {
        OID_SHA256_WITH_RSA => (OID_RSA_ENCRYPTION, Some(Hash::Sha256)),
        OID_SHA384_WITH_RSA => (OID_RSA_ENCRYPTION, Some(Hash::Sha384)),
        OID_SHA512_WITH_RSA => (OID_RSA_ENCRYPTION, Some(Hash::Sha512)),
        OID_ECDSA_SHA256 => (OID_EC_PUBLIC_KEY, Some(Hash::Sha256)),
        OID_ECDSA_SHA384 => (OID_EC_PUBLIC_KEY, Some(Hash::Sha384)),
        OID_ECDSA_SHA512 => (OID_EC_PUBLIC_KEY, Some(Hash::Sha512)),
        OID_ED25519 => (OID_ED25519, None),
        _ => return Err(unsupported()),
    };
    if family != key_oid {
        return Err(mismatch());
    }
    let key_bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::malformed("SubjectPublicKeyInfo", "key has unused bits"))?;
    let signature = &signed.signature;
    let ok = match (family, hash) {
        (OID_RSA_ENCRYPTION, Some(hash)) => {
            let key = rsa::RsaPublicKey::from_public_key_der(spki_der)
                .map_err(|e| Error::malformed("RSA public key", e))?;
            let scheme = match hash {
                Hash::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
                Hash::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
                Hash::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>(),
            };
            key.verify(scheme, &hash.digest(signed.body), signature).is_ok()
        }
        (OID_EC_PUBLIC_KEY, Some(hash)) => {
            let curve = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .map(|o| o.to_string())
                .unwrap_or_default();
            // ECDSA with SHA-256/384 through ring (several times faster than the RustCrypto
            // curves: CSR checks are on the authority's hot path); SHA-512 below.
            let ring_algorithm: Option<&'static ring::signature::EcdsaVerificationAlgorithm> =
                match (curve.as_str(), hash) {
                    (OID_P256, Hash::Sha256) => Some(&ring::signature::ECDSA_P256_SHA256_ASN1),
                    (OID_P256, Hash::Sha384) => Some(&ring::signature::ECDSA_P256_SHA384_ASN1),
                    (OID_P384, Hash::Sha256) => Some(&ring::signature::ECDSA_P384_SHA256_ASN1),
                    (OID_P384, Hash::Sha384) => Some(&ring::signature::ECDSA_P384_SHA384_ASN1),
                    _ => None,
                };
            if let Some(algorithm) = ring_algorithm {
                return if ring::signature::UnparsedPublicKey::new(algorithm, key_bits)
                    .verify(signed.body, signature)
                    .is_ok()
                {
                    Ok(())
                } else {
                    Err(Error::BadSignature)
                };
            }
            let digest = hash.digest(signed.body);
            match curve.as_str() {
                OID_P256 => {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bits)
                        .map_err(|_| Error::malformed("P-256 public key", "not a curve point"))?;
                    let Ok(sig) = p256::ecdsa::Signature::from_der(signature) else {
                        return Err(Error::BadSignature);
                    };
                    key.verify_prehash(&digest, &sig).is_ok()
                }
                OID_P384 => {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bits)
                        .map_err(|_| Error::malformed("P-384 public key", "not a curve point"))?;
                    let Ok(sig) = p384::ecdsa::Signature::from_der(signature) else {
                        return Err(Error::BadSignature);
                    };
                    key.verify_prehash(&digest, &sig).is_ok()
                }
                other => {
                    return Err(Error::UnsupportedKeyAlgorithm(format!("EC curve {other}")));
                }
            }
        }
        (OID_ED25519, None) => {
            let bytes: [u8; 32] = key_bits
                .try_into()
                .map_err(|_| Error::malformed("Ed25519 public key", "not 32 bytes"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| Error::malformed("Ed25519 public key", "not a curve point"))?;
            let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                return Err(Error::BadSignature);
            };
            key.verify(signed.body, &sig).is_ok()
        }
        _ => return Err(unsupported()),
    };
    if ok { Ok(()) } else { Err(Error::BadSignature) }
}
