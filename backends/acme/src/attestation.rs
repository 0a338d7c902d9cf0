//! device-attest-01 (draft-ietf-acme-device-attest §4, §5) in step's `step` format
//! (step-ca's `acme/challenge.go`): the client POSTs `{"attObj": b64url(CBOR)}` whose
//! attestation object is
//!
//! ```text
//! {"fmt": "step",
//!  "attStmt": {"alg": -7 | -257 | -8,          (COSE: ES256, RS256, EdDSA)
//!              "sig": bytes(CBOR(bytes)),       (over the key authorization)
//!              "x5c": [slot certificate, F9 certificate, intermediates …]}}
//! ```
//!
//! [`parse_attestation_object`] reads it (size-capped, total); the provisioner's
//! [`verify_device_attestation`](crate::AcmeProvisioner::verify_device_attestation) checks
//! the chain and keystation's YubiKey policy (as the YubiKey attestation provisioner does),
//! the signature with the attested key, and that the attested serial is the order's
//! permanent identifier. [`step_attestation_object`] builds one, for clients.

use std::time::SystemTime;

use ciborium::Value;
use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_x509::Certificate;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::provisioner::AcmeProvisioner;

/// The longest attestation object accepted, in bytes: a slot certificate, an `F9`
/// certificate and a couple of intermediates, with room to spare.
pub const MAX_ATTESTATION_OBJECT_LEN: usize = 16 * 1024;

/// The most certificates an `x5c` may hold (leaf, `F9`, intermediates).
pub const MAX_X5C: usize = 6;

/// CBOR nesting allowed while decoding (the object is two maps and an array deep).
const RECURSION_LIMIT: usize = 16;

/// COSE algorithm identifiers (RFC 9053 §2.1, RFC 8812 §2) the `step` format uses.
pub mod cose {
    /// ECDSA with SHA-256 (`ES256`): on P-256 (and P-384, as step-ca's Go code accepts),
    /// the signature ASN.1 DER.
    pub const ES256: i64 = -7;
    /// EdDSA (Ed25519 for PIV), over the raw message.
    pub const EDDSA: i64 = -8;
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`).
    pub const RS256: i64 = -257;
}

/// An attestation statement in the `step` format, parsed but not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationStatement {
    /// `fmt`: `step`.
    pub format: String,
    /// `attStmt.alg`: the COSE algorithm of `sig` ([`cose`]).
    pub alg: i64,
    /// `attStmt.sig`: the attested key's signature over the key authorization.
    pub sig: Vec<u8>,
    /// `attStmt.x5c`: DER certificates, the slot's attestation first, then the `F9`
    /// certificate, then any intermediates.
    pub x5c: Vec<Vec<u8>>,
}

/// What a verified device attestation proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedDevice {
    /// The card's serial, decimal (Yubico's extension `1.3.6.1.4.1.41482.3.7`): the
    /// permanent identifier.
    pub serial: String,
    /// The attested key: the order's CSR must be for it.
    pub public_key: PublicKey,
    /// [`spki_fingerprint`] of the attested key, as step-ca stores it on the
    /// authorization to compare with the CSR's key at finalize.
    pub spki_fingerprint: String,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::BadAttestationStatement(reason.into())
}

/// Parses an attestation object (the decoded `attObj`): a CBOR map with a text `fmt`
/// and a map `attStmt`; other members (a WebAuthn `authData`) are ignored. Only the `step`
/// format is read (others are [`Error::BadAttestationStatement`]); its statement needs an
/// integer `alg`, a byte string `sig` and an array `x5c` of 2 to [`MAX_X5C`] byte
/// strings. Duplicate keys, trailing bytes and inputs over
/// [`MAX_ATTESTATION_OBJECT_LEN`] are refused. Never panics.
pub fn parse_attestation_object(bytes: &[u8]) -> Result<AttestationStatement> {
    if bytes.len() > MAX_ATTESTATION_OBJECT_LEN {
        return Err(Error::TooLarge {
            what: "attestation object",
            len: bytes.len(),
            max: MAX_ATTESTATION_OBJECT_LEN,
        });
    }
    let mut reader = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut reader, RECURSION_LIMIT)
        .map_err(|e| bad(format!("the attestation object is not CBOR: {e}")))?;
    if !reader.is_empty() {
        return Err(bad(format!("{} bytes follow the attestation object", reader.len())));
    }
    let object = text_map(&value, "the attestation object")?;
    let format = match member(&object, "fmt")? {
        Some(Value::Text(fmt)) => fmt.clone(),
        Some(_) => return Err(bad("fmt is not a text string")),
        None => return Err(bad("the attestation object has no fmt")),
    };
    if format != "step" {
        return Err(bad(format!("attestation format {format:?} is not supported (only \"step\")")));
    }
    let statement = match member(&object, "attStmt")? {
        Some(v) => text_map(v, "attStmt")?,
        None => return Err(bad("the attestation object has no attStmt")),
    };
    let alg = match member(&statement, "alg")? {
        Some(Value::Integer(i)) => {
            i64::try_from(i128::from(*i)).map_err(|_| bad("attStmt.alg is out of range"))?
        }
        Some(_) => return Err(bad("attStmt.alg is not an integer")),
        None => return Err(bad("attStmt has no alg")),
    };
    // step's `sig` is the CBOR encoding of the signature's byte string, itself carried as a
    // byte string (step-ca's `doStepAttestationFormat` unmarshals it a second time).
    let sig = match member(&statement, "sig")? {
        Some(Value::Bytes(b)) if !b.is_empty() => match ciborium::de::from_reader(b.as_slice()) {
            Ok(Value::Bytes(inner)) if !inner.is_empty() => inner,
            _ => return Err(bad("attStmt.sig is not a CBOR-encoded byte string")),
        },
        Some(_) => return Err(bad("attStmt.sig is not a non-empty byte string")),
        None => return Err(bad("attStmt has no sig")),
    };
    let x5c = match member(&statement, "x5c")? {
        Some(Value::Array(list)) => list
            .iter()
            .map(|c| match c {
                Value::Bytes(der) if !der.is_empty() => Ok(der.clone()),
                _ => Err(bad("an attStmt.x5c entry is not a non-empty byte string")),
            })
            .collect::<Result<Vec<_>>>()?,
        Some(_) => return Err(bad("attStmt.x5c is not an array")),
        None => return Err(bad("attStmt has no x5c")),
    };
    if x5c.len() < 2 {
        return Err(bad("attStmt.x5c must hold the slot's attestation and the F9 certificate"));
    }
    if x5c.len() > MAX_X5C {
        return Err(bad(format!(
            "attStmt.x5c holds {} certificates, at most {MAX_X5C}",
            x5c.len()
        )));
    }
    Ok(AttestationStatement { format, alg, sig, x5c })
}

/// The entries of a CBOR map whose keys are all text, duplicates refused.
fn text_map<'a>(value: &'a Value, what: &str) -> Result<Vec<(&'a str, &'a Value)>> {
    let Value::Map(entries) = value else { return Err(bad(format!("{what} is not a CBOR map"))) };
    let mut out: Vec<(&str, &Value)> = Vec::with_capacity(entries.len());
    for (key, v) in entries {
        let Value::Text(key) = key else {
            return Err(bad(format!("{what} has a key that is not a text string")));
        };
        if out.iter().any(|(k, _)| k == key) {
            return Err(bad(format!("{what} has the key {key:?} twice")));
        }
        out.push((key.as_str(), v));
    }
    Ok(out)
}

fn member<'a>(map: &[(&str, &'a Value)], key: &str) -> Result<Option<&'a Value>> {
    Ok(map.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
}

/// Builds a `step` attestation object (for clients): `{"fmt": "step", "attStmt": {"alg":
/// alg, "sig": CBOR(sig), "x5c": x5c}}` in CBOR, to send base64url as `attObj` — `sig`
/// encoded once more as step's client does.
pub fn step_attestation_object(alg: i64, sig: &[u8], x5c: &[Vec<u8>]) -> Vec<u8> {
    let mut encoded_sig = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(&Value::Bytes(sig.to_vec()), &mut encoded_sig);
    let statement = Value::Map(vec![
        (Value::Text("alg".into()), Value::Integer(alg.into())),
        (Value::Text("sig".into()), Value::Bytes(encoded_sig)),
        (
            Value::Text("x5c".into()),
            Value::Array(x5c.iter().map(|der| Value::Bytes(der.clone())).collect()),
        ),
    ]);
    let object = Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text("step".into())),
        (Value::Text("attStmt".into()), statement),
    ]);
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(&object, &mut out);
    out
}

/// step-ca's key fingerprint (`go.step.sm/crypto/keyutil.Fingerprint`): `SHA256:` and the
/// standard base64 (with padding) of the SHA-256 of the SubjectPublicKeyInfo's BIT STRING
/// contents (the EC point, the Ed25519 key, RSA's `RSAPublicKey`).
pub fn spki_fingerprint(key: &PublicKey) -> String {
    use base64::Engine as _;
    let spki = key.to_spki_der();
    let bits = spki_bit_string(&spki).unwrap_or_default();
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bits)))
}

/// The BIT STRING's contents after its unused-bits byte, from `SEQUENCE { AlgorithmIdentifier,
/// BIT STRING }`.
fn spki_bit_string(spki: &[u8]) -> Option<&[u8]> {
    let (tag, contents, _) = der_element(spki)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = der_element(contents)?;
    let (tag, bits, _) = der_element(rest)?;
    if tag != 0x03 {
        return None;
    }
    bits.get(1..)
}

/// One DER element: (tag, contents, rest); `None` when truncated.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Verifies `sig` over `message` with `key` under the COSE algorithm `alg`.
fn verify_signature(key: &PublicKey, alg: i64, message: &[u8], sig: &[u8]) -> Result<()> {
    let failed =
        || bad("attStmt.sig does not verify with the attested key over the key authorization");
    let mismatch =
        || bad(format!("COSE algorithm {alg} does not fit the attested {} key", key.algorithm()));
    match (alg, key.algorithm()) {
        (cose::ES256, KeyAlgorithm::NistP256) => {
            use p256::ecdsa::signature::Verifier as _;
            let point = key.point().ok_or_else(failed)?;
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| failed())?;
            let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| failed())?;
            vk.verify(message, &sig).map_err(|_| failed())
        }
        (cose::ES256, KeyAlgorithm::NistP384) => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
            let point = key.point().ok_or_else(failed)?;
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| failed())?;
            let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| failed())?;
            vk.verify_prehash(&Sha256::digest(message), &sig).map_err(|_| failed())
        }
        (cose::RS256, KeyAlgorithm::Rsa(_)) => {
            let (n, e) = key.rsa_components().ok_or_else(failed)?;
            let rsa_key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(n),
                rsa::BigUint::from_bytes_be(e),
            )
            .map_err(|_| failed())?;
            rsa_key
                .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message), sig)
                .map_err(|_| failed())
        }
        (cose::EDDSA, KeyAlgorithm::Ed25519) => {
            use ed25519_dalek::Verifier as _;
            let point: [u8; 32] = key.point().and_then(|p| p.try_into().ok()).ok_or_else(failed)?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&point).map_err(|_| failed())?;
            let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| failed())?;
            vk.verify(message, &sig).map_err(|_| failed())
        }
        (cose::ES256 | cose::RS256 | cose::EDDSA, _) => Err(mismatch()),
        _ => {
            Err(bad(format!("COSE algorithm {alg} is not ES256 (-7), RS256 (-257) or EdDSA (-8)")))
        }
    }
}

impl AcmeProvisioner {
    /// Verifies a device-attest-01 statement for the order's permanent identifier
    /// `identifier_value` at `now`:
    ///
    /// 1. the format is one this provisioner accepts (`attestationFormats`);
    /// 2. the chain `x5c[0]` (the slot's attestation) ← `x5c[1]` (the card's `F9`
    ///    certificate) ← (`x5c[2..]` and the configured `attestationIntermediates`) ← a
    ///    root (`attestationRoots`, else Yubico's) verifies at `now`, and the attestation
    ///    passes the YubiKey policy (slot, serial, firmware, PIN and touch policies), as
    ///    the YubiKey attestation provisioner checks them;
    /// 3. `sig` verifies with the attested key over `key_authorization` (RFC 8555 §8.1);
    /// 4. the attested serial, in decimal, is `identifier_value`
    ///    ([`Error::SerialMismatch`], rejectedIdentifier).
    ///
    /// Other failures are [`Error::BadAttestationStatement`] with the precise reason
    /// (also logged at `info`).
    pub fn verify_device_attestation(
        &self,
        statement: &AttestationStatement,
        key_authorization: &str,
        identifier_value: &str,
        now: SystemTime,
    ) -> Result<AttestedDevice> {
        if !self.attestation_formats().contains(&statement.format) {
            return Err(bad(format!(
                "attestation format {:?} is not enabled on this provisioner",
                statement.format
            )));
        }
        let (Some(slot_der), Some(f9_der)) = (statement.x5c.first(), statement.x5c.get(1)) else {
            return Err(bad("attStmt.x5c must hold the slot's attestation and the F9 certificate"));
        };
        let leaf = Certificate::from_der(slot_der)
            .map_err(|e| bad(format!("x5c[0] is not a certificate: {e}")))?;
        let public_key =
            leaf.public_key().map_err(|e| bad(format!("x5c[0]'s key is not usable: {e}")))?;

        let extra = statement.x5c.get(2..).unwrap_or_default();
        let with_extra;
        let checker = if extra.is_empty() {
            &self.attestation
        } else {
            let intermediates = self.intermediates.iter().chain(extra).cloned().collect();
            with_extra = self.attestation.clone().with_intermediates(intermediates);
            &with_extra
        };
        let request = Request {
            credential: Credential::Attestation {
                slot_certificate: slot_der,
                intermediate: f9_der,
            },
            operation: Operation::SignX509,
            audience: "",
            subject_key: Some(&public_key),
        };
        let grant = checker.check(&request, &TrustedKeys::default(), now).map_err(|refusal| {
            tracing::info!(
                provisioner = %keystation_core::Provisioner::name(self),
                denial = %refusal.denial,
                reason = %refusal.reason,
                "device attestation refused"
            );
            bad(refusal.to_string())
        })?;

        verify_signature(&public_key, statement.alg, key_authorization.as_bytes(), &statement.sig)?;

        let serial = grant.subject;
        if serial != identifier_value {
            return Err(Error::SerialMismatch {
                attested: serial,
                identifier: identifier_value.to_owned(),
            });
        }
        let spki_fingerprint = spki_fingerprint(&public_key);
        Ok(AttestedDevice { serial, public_key, spki_fingerprint })
    }
}
