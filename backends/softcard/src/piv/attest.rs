//! Attestation: the software test root, the factory F9 key and certificate, and the
//! certificates ATTEST (`F9`) issues.
//!
//! A YubiKey leaves the factory with a key in slot `F9` and, in data object `5FFF01`, a
//! certificate for it issued by Yubico's PIV attestation CA. ATTEST makes an X.509
//! certificate for a generated key, signed by the `F9` key, with Yubico's extensions under
//! `1.3.6.1.4.1.41482.3` (Yubico, "PIV attestation" and the OID arc: `.3` firmware as a
//! three-byte octet string, `.7` serial as an INTEGER, `.8` PIN and touch policy bytes,
//! `.9` form factor byte).
//!
//! **The software card never claims Yubico's roots.** Its `F9` certificate is issued by a
//! software root named [`TEST_ROOT_SUBJECT`], whose key is derived from a public constant:
//! anybody can forge attestations under it. Trust it only in tests, explicitly, through
//! [`test_attestation_root_der`] or [`test_attestation_root_pem`].

use core::str::FromStr;
use core::time::Duration;
use std::sync::Mutex;

use keystation_core::{StatusWord, tlv};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{
    Any, BitString, GeneralizedTime, ObjectIdentifier, OctetString, UtcTime,
};
use x509_cert::der::{Decode, Encode, EncodePem, pem::LineEnding};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

use super::keys::PrivateKey;
use crate::identity::Identity;

/// Subject (and issuer) common name of the software attestation root.
pub const TEST_ROOT_SUBJECT: &str = "keystation software YubiKey attestation root (TEST ONLY)";

/// Subject common name of every software card's `F9` attestation certificate.
pub const TEST_F9_SUBJECT: &str = "keystation software YubiKey PIV attestation (TEST ONLY)";

/// Yubico's PIV attestation arc, `1.3.6.1.4.1.41482.3`.
const OID_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const OID_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const OID_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const OID_FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// 2024-01-01T00:00:00Z, the start of every certificate this module issues.
const NOT_BEFORE_UNIX: u64 = 1_704_067_200;
/// 9999-12-31T23:59:59Z, "no well-defined expiration" (RFC 5280 §4.1.2.5).
const NOT_AFTER_UNIX: u64 = 253_402_300_799;

/// The test root's private key: derived from a public label, so it is no secret.
fn root_key() -> PrivateKey {
    let seed: [u8; 32] = Sha256::digest(TEST_ROOT_SUBJECT.as_bytes()).into();
    PrivateKey::P256(p256::SecretKey::random(&mut ChaCha20Rng::from_seed(seed)))
}

/// The factory `F9` key of the card with this serial: P-256, derived deterministically
/// from the serial (construction has no random source).
pub(crate) fn factory_f9_key(serial: u32) -> PrivateKey {
    let mut hasher = Sha256::new();
    hasher.update(b"keystation software YubiKey PIV attestation key ");
    hasher.update(serial.to_be_bytes());
    let seed: [u8; 32] = hasher.finalize().into();
    PrivateKey::P256(p256::SecretKey::random(&mut ChaCha20Rng::from_seed(seed)))
}

fn name(cn: &str) -> Result<Name, StatusWord> {
    Name::from_str(&format!("CN={cn}")).map_err(|_| StatusWord::EXECUTION_ERROR)
}

fn fixed_validity() -> Result<Validity, StatusWord> {
    let err = |_| StatusWord::EXECUTION_ERROR;
    Ok(Validity {
        not_before: Time::UtcTime(
            UtcTime::from_unix_duration(Duration::from_secs(NOT_BEFORE_UNIX)).map_err(err)?,
        ),
        not_after: Time::GeneralTime(
            GeneralizedTime::from_unix_duration(Duration::from_secs(NOT_AFTER_UNIX))
                .map_err(err)?,
        ),
    })
}

fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, StatusWord> {
    let extn_value = OctetString::new(value).map_err(|_| StatusWord::EXECUTION_ERROR)?;
    Ok(Extension { extn_id: oid, critical, extn_value })
}

/// BasicConstraints `cA TRUE` and KeyUsage keyCertSign (RFC 5280 §4.2.1.9, §4.2.1.3).
fn ca_extensions() -> Result<Vec<Extension>, StatusWord> {
    let err = |_| StatusWord::EXECUTION_ERROR;
    let constraints = BasicConstraints { ca: true, path_len_constraint: None };
    let usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    Ok(vec![
        extension(OID_BASIC_CONSTRAINTS, true, constraints.to_der().map_err(err)?)?,
        extension(OID_KEY_USAGE, true, usage.to_der().map_err(err)?)?,
    ])
}

/// Signs `tbs` with `key` and assembles the certificate (RFC 5280 §4.1.1). The signature
/// algorithm follows the key: ECDSA with SHA-256 (P-256) or SHA-384 (P-384),
/// sha256WithRSAEncryption, or Ed25519. X25519 keys cannot sign: `6A80`.
fn sign_certificate(mut tbs: TbsCertificate, key: &PrivateKey) -> Result<Certificate, StatusWord> {
    let err = |_| StatusWord::EXECUTION_ERROR;
    let (oid, parameters) = match key {
        PrivateKey::P256(_) => (OID_ECDSA_SHA256, None),
        PrivateKey::P384(_) => (OID_ECDSA_SHA384, None),
        PrivateKey::Rsa(_) => (OID_RSA_SHA256, Some(Any::null())),
        PrivateKey::Ed25519(_) => (OID_ED25519, None),
        PrivateKey::X25519(_) => return Err(StatusWord::INCORRECT_DATA),
    };
    let algorithm = AlgorithmIdentifierOwned { oid, parameters };
    tbs.signature = algorithm.clone();
    let body = tbs.to_der().map_err(err)?;
    let signature = match key {
        PrivateKey::P256(_) => key.sign(&Sha256::digest(&body))?,
        PrivateKey::P384(_) => key.sign(&sha2::Sha384::digest(&body))?,
        PrivateKey::Rsa(rsa_key) => {
            // EMSA-PKCS1-v1_5 (RFC 8017 §9.2) with the SHA-256 DigestInfo prefix.
            const PREFIX: [u8; 19] = [
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ];
            let size = rsa::traits::PublicKeyParts::size(rsa_key.as_ref());
            let pad = size.checked_sub(PREFIX.len() + 32 + 3).ok_or(StatusWord::INCORRECT_DATA)?;
            let mut block = vec![0x00, 0x01];
            block.resize(2 + pad, 0xFF);
            block.push(0);
            block.extend_from_slice(&PREFIX);
            block.extend_from_slice(&Sha256::digest(&body));
            key.sign(&block)?
        }
        _ => key.sign(&body)?,
    };
    let signature = BitString::from_bytes(&signature).map_err(err)?;
    Ok(Certificate { tbs_certificate: tbs, signature_algorithm: algorithm, signature })
}

fn spki(key: &PrivateKey) -> Result<SubjectPublicKeyInfoOwned, StatusWord> {
    SubjectPublicKeyInfoOwned::from_der(&key.spki_der()).map_err(|_| StatusWord::EXECUTION_ERROR)
}

fn tbs(
    serial: &[u8],
    issuer: Name,
    subject: Name,
    validity: Validity,
    subject_key: &PrivateKey,
    extensions: Vec<Extension>,
) -> Result<TbsCertificate, StatusWord> {
    let err = |_| StatusWord::EXECUTION_ERROR;
    Ok(TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(serial).map_err(err)?,
        signature: AlgorithmIdentifierOwned { oid: OID_ECDSA_SHA256, parameters: None },
        issuer,
        validity,
        subject,
        subject_public_key_info: spki(subject_key)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

fn root_certificate() -> Result<Certificate, StatusWord> {
    let key = root_key();
    let subject = name(TEST_ROOT_SUBJECT)?;
    let tbs = tbs(&[1], subject.clone(), subject, fixed_validity()?, &key, ca_extensions()?)?;
    // ECDSA here is deterministic (RFC 6979), so the root is the same on every run.
    sign_certificate(tbs, &key)
}

/// The DER certificate of the software attestation root that issues every software
/// card's `F9` certificate. Its subject CN is [`TEST_ROOT_SUBJECT`]. Its private key is
/// derived from a public constant: **trust it in tests only**.
pub fn test_attestation_root_der() -> Vec<u8> {
    root_certificate().ok().and_then(|c| c.to_der().ok()).unwrap_or_default()
}

/// [`test_attestation_root_der`] as PEM.
pub fn test_attestation_root_pem() -> String {
    root_certificate().ok().and_then(|c| c.to_pem(LineEnding::LF).ok()).unwrap_or_default()
}

/// The factory certificate for the `F9` key of the card with this identity, issued by
/// the test root (DER). Its serial number is the card's.
///
/// `f9` must be [`factory_f9_key`] of the same serial: the certificate depends on the
/// serial alone (ECDSA signing is deterministic), so the last one made is kept and a card
/// built again with the same serial — every fuzz input, every test — skips two scalar
/// multiplications and a signature.
pub(crate) fn factory_f9_certificate(identity: &Identity, f9: &PrivateKey) -> Vec<u8> {
    static LAST: Mutex<Option<(u32, Vec<u8>)>> = Mutex::new(None);
    let cached = |guard: &Option<(u32, Vec<u8>)>| match guard {
        Some((serial, der)) if *serial == identity.serial => Some(der.clone()),
        _ => None,
    };
    if let Ok(guard) = LAST.lock()
        && let Some(der) = cached(&guard)
    {
        return der;
    }
    let build = || -> Result<Vec<u8>, StatusWord> {
        let mut serial = vec![0x01];
        serial.extend_from_slice(&identity.serial.to_be_bytes());
        let tbs = tbs(
            &serial,
            name(TEST_ROOT_SUBJECT)?,
            name(TEST_F9_SUBJECT)?,
            fixed_validity()?,
            f9,
            ca_extensions()?,
        )?;
        let cert = sign_certificate(tbs, &root_key())?;
        cert.to_der().map_err(|_| StatusWord::EXECUTION_ERROR)
    };
    let der = build().unwrap_or_default();
    if let Ok(mut guard) = LAST.lock() {
        *guard = Some((identity.serial, der.clone()));
    }
    der
}

/// What ATTEST needs to know about the attested key.
pub(crate) struct Attested<'a> {
    /// Slot key reference (`9A` …).
    pub(crate) slot: u8,
    /// The key.
    pub(crate) key: &'a PrivateKey,
    /// PIN policy byte as recorded (never `00`).
    pub(crate) pin_policy: u8,
    /// Touch policy byte as recorded (never `00`).
    pub(crate) touch_policy: u8,
}

/// Issues the attestation certificate for `attested`, signed by `f9_key`. The issuer name
/// and validity come from the `F9` certificate in `f9_cert` (the DER certificate stored in
/// `5FFF01`) when it parses, from the factory values otherwise (Yubico, "PIV attestation":
/// the certificate is issued by the F9 certificate's subject).
pub(crate) fn attest(
    identity: &Identity,
    attested: &Attested<'_>,
    f9_key: &PrivateKey,
    f9_cert: Option<&[u8]>,
    rng: &mut ChaCha20Rng,
) -> Result<Vec<u8>, StatusWord> {
    let err = |_| StatusWord::EXECUTION_ERROR;
    let parsed = f9_cert.and_then(|der| Certificate::from_der(der).ok());
    let (issuer, validity) = match parsed {
        Some(cert) => (cert.tbs_certificate.subject, cert.tbs_certificate.validity),
        None => (name(TEST_F9_SUBJECT)?, fixed_validity()?),
    };
    let subject = name(&format!("YubiKey PIV Attestation {:02x}", attested.slot))?;
    let v = identity.version;
    let mut serial_der = Vec::new();
    super::keys::der_unsigned(&mut serial_der, &identity.serial.to_be_bytes());
    let extensions = vec![
        extension(OID_FIRMWARE, false, vec![v.0, v.1, v.2])?,
        extension(OID_SERIAL, false, serial_der)?,
        extension(OID_POLICY, false, vec![attested.pin_policy, attested.touch_policy])?,
        extension(OID_FORM_FACTOR, false, vec![identity.form_factor.code()])?,
    ];
    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7F) | 0x01;
    let tbs = tbs(&serial, issuer, subject, validity, attested.key, extensions)?;
    sign_certificate(tbs, f9_key)?.to_der().map_err(err)
}

/// The value PIV stores for a certificate object: `70` certificate, `71` CertInfo
/// (uncompressed), `FE` error detection code (SP 800-73-4 part 1 table 15).
pub(crate) fn certificate_object(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(der.len() + 12);
    tlv::write(&mut out, 0x70, der);
    tlv::write(&mut out, 0x71, &[0x00]);
    tlv::write(&mut out, 0xFE, &[]);
    out
}
