//! JSON Web Keys (RFC 7517): public keys for verification ([`Jwk`]) with their RFC 7638
//! thumbprints, and private keys for signing ([`PrivateJwk`]).
//!
//! Key types: `EC` on P-256 and P-384 (RFC 7518 §6.2), `OKP` with Ed25519 (RFC 8037 §2) and
//! `RSA` of at least 2048 bits (RFC 7518 §6.3). Unknown members are ignored (RFC 7517 §4);
//! duplicate members are refused.

use keystation_core::key::{KeyAlgorithm, PublicKey};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

use crate::alg::Algorithm;
use crate::b64;
use crate::error::{Error, Result};
use crate::json;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A public JWK: the key, validated (a point on its curve, an RSA modulus of at least
/// 2048 bits), with the `kid`, `alg` and `use` members.
///
/// The key's parsed form is kept, so verifying with the same `Jwk` again costs no parsing.
#[derive(Clone)]
pub struct Jwk {
    key: PublicKey,
    verifier: Verifier,
    kid: Option<String>,
    alg: Option<Algorithm>,
    key_use: Option<String>,
}

/// The key in the form the signature crates verify with.
#[derive(Clone)]
pub(crate) enum Verifier {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(RsaPublicKey),
}

impl PartialEq for Jwk {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.kid == other.kid
            && self.alg == other.alg
            && self.key_use == other.key_use
    }
}

impl Eq for Jwk {}

impl core::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Jwk")
            .field("key", &self.key)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("use", &self.key_use)
            .finish()
    }
}

/// The members of a JWK as they appear in JSON (RFC 7517 §4, RFC 7518 §6).
#[derive(Default, Deserialize, Serialize)]
struct RawJwk {
    kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    // Private members (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2), zeroized when dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dp: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dq: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    qi: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing)]
    oth: Option<serde_json::Value>,
}

impl RawJwk {
    fn has_private_members(&self) -> bool {
        self.d.is_some()
            || self.p.is_some()
            || self.q.is_some()
            || self.dp.is_some()
            || self.dq.is_some()
            || self.qi.is_some()
            || self.oth.is_some()
    }
}

fn required<'a>(member: &'a Option<String>, name: &'static str) -> Result<&'a str> {
    member.as_deref().ok_or_else(|| Error::malformed("JWK", format!("member {name:?} missing")))
}

fn decode_member(value: &str, name: &'static str) -> Result<Vec<u8>> {
    b64::decode(value, name)
}

/// A fixed-length field element (RFC 7518 §6.2.1.2: "MUST be the full length").
fn coordinate(raw: &Option<String>, name: &'static str, len: usize) -> Result<Vec<u8>> {
    let bytes = decode_member(required(raw, name)?, name)?;
    if bytes.len() != len {
        return Err(Error::InvalidKey(format!(
            "{name} is {} bytes, the curve needs {len}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn bit_length(unsigned: &[u8]) -> usize {
    let start = unsigned.iter().position(|&b| b != 0).unwrap_or(unsigned.len());
    match unsigned.get(start) {
        None => 0,
        Some(&top) => (unsigned.len() - start) * 8 - top.leading_zeros() as usize,
    }
}

impl Verifier {
    /// Parses and validates the key: EC points must lie on their curve, Ed25519 points must
    /// decompress, RSA moduli must have at least [`MIN_RSA_BITS`] bits.
    fn new(key: &PublicKey) -> Result<Self> {
        match key.algorithm() {
            KeyAlgorithm::NistP256 => {
                let point = key.point().unwrap_or_default();
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map(Self::P256)
                    .map_err(|_| Error::InvalidKey("point not on P-256".into()))
            }
            KeyAlgorithm::NistP384 => {
                let point = key.point().unwrap_or_default();
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map(Self::P384)
                    .map_err(|_| Error::InvalidKey("point not on P-384".into()))
            }
            KeyAlgorithm::Ed25519 => {
                let point: [u8; 32] = key
                    .point()
                    .and_then(|p| p.try_into().ok())
                    .ok_or_else(|| Error::InvalidKey("Ed25519 key is not 32 bytes".into()))?;
                ed25519_dalek::VerifyingKey::from_bytes(&point)
                    .map(Self::Ed25519)
                    .map_err(|_| Error::InvalidKey("Ed25519 point does not decompress".into()))
            }
            KeyAlgorithm::Rsa(_) => {
                let (n, e) = key
                    .rsa_components()
                    .ok_or_else(|| Error::InvalidKey("RSA key without modulus".into()))?;
                let bits = bit_length(n);
                if bits < MIN_RSA_BITS {
                    return Err(Error::RsaKeyTooSmall { bits });
                }
                RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                    .map(Self::Rsa)
                    .map_err(|e| Error::InvalidKey(format!("RSA: {e}")))
            }
            other => Err(Error::UnsupportedKey(format!("{other} keys cannot sign"))),
        }
    }
}

impl Jwk {
    /// A JWK for `key`, with no `kid`, `alg` or `use`. The key is validated: a point must lie
    /// on its curve, an RSA modulus must have at least 2048 bits; X25519 keys cannot sign and
    /// are refused.
    pub fn from_public_key(key: PublicKey) -> Result<Self> {
        let verifier = Verifier::new(&key)?;
        Ok(Self { key, verifier, kid: None, alg: None, key_use: None })
    }

    /// Parses a public JWK from its JSON text. A JWK carrying private members is
    /// [`Error::UnexpectedPrivateKey`]: private keys are parsed with
    /// [`PrivateJwk::from_json`].
    pub fn from_json(json: &str) -> Result<Self> {
        let raw: RawJwk = json::object(json.as_bytes(), "JWK")?;
        Self::from_raw(&raw)
    }

    /// Parses a public JWK from a JSON value (a JWK inside a larger document).
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self> {
        if !value.is_object() {
            return Err(Error::malformed("JWK", "not a JSON object"));
        }
        let raw = RawJwk::deserialize(value).map_err(|e| Error::malformed("JWK", e.to_string()))?;
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &RawJwk) -> Result<Self> {
        if raw.has_private_members() {
            return Err(Error::UnexpectedPrivateKey);
        }
        Self::from_raw_public(raw)
    }

    fn from_raw_public(raw: &RawJwk) -> Result<Self> {
        let key = match raw.kty.as_str() {
            "EC" => {
                let (algorithm, len) = match required(&raw.crv, "crv")? {
                    "P-256" => (KeyAlgorithm::NistP256, 32),
                    "P-384" => (KeyAlgorithm::NistP384, 48),
                    other => return Err(Error::UnsupportedKey(format!("EC curve {other:?}"))),
                };
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend(coordinate(&raw.x, "x", len)?);
                point.extend(coordinate(&raw.y, "y", len)?);
                PublicKey::from_point(algorithm, &point)?
            }
            "OKP" => match required(&raw.crv, "crv")? {
                "Ed25519" => {
                    PublicKey::from_point(KeyAlgorithm::Ed25519, &coordinate(&raw.x, "x", 32)?)?
                }
                other => return Err(Error::UnsupportedKey(format!("OKP curve {other:?}"))),
            },
            "RSA" => {
                let n = decode_member(required(&raw.n, "n")?, "n")?;
                let e = decode_member(required(&raw.e, "e")?, "e")?;
                let bits = bit_length(&n);
                if bits < MIN_RSA_BITS {
                    return Err(Error::RsaKeyTooSmall { bits });
                }
                PublicKey::rsa(&n, &e)?
            }
            other => return Err(Error::UnsupportedKey(format!("kty {other:?}"))),
        };
        let mut jwk = Self::from_public_key(key)?;
        jwk.kid = raw.kid.clone();
        jwk.key_use = raw.key_use.clone();
        if let Some(alg) = &raw.alg {
            jwk = jwk.with_alg(Algorithm::from_name(alg)?)?;
        }
        Ok(jwk)
    }

    fn to_raw(&self) -> RawJwk {
        let mut raw = RawJwk {
            kid: self.kid.clone(),
            key_use: self.key_use.clone(),
            alg: self.alg.map(|a| a.name().to_owned()),
            ..RawJwk::default()
        };
        match self.key.algorithm() {
            KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 => {
                let point = self.key.point().unwrap_or_default();
                let len = point.len().saturating_sub(1) / 2;
                raw.kty = "EC".into();
                raw.crv = Some(
                    if self.key.algorithm() == KeyAlgorithm::NistP256 { "P-256" } else { "P-384" }
                        .into(),
                );
                raw.x = point.get(1..1 + len).map(b64::encode);
                raw.y = point.get(1 + len..).map(b64::encode);
            }
            KeyAlgorithm::Ed25519 => {
                raw.kty = "OKP".into();
                raw.crv = Some("Ed25519".into());
                raw.x = self.key.point().map(b64::encode);
            }
            _ => {
                raw.kty = "RSA".into();
                if let Some((n, e)) = self.key.rsa_components() {
                    raw.n = Some(b64::encode(n));
                    raw.e = Some(b64::encode(e));
                }
            }
        }
        raw
    }

    /// The JWK as compact JSON text: `kty`, the public members, and `kid`, `alg`, `use` when
    /// set.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_raw()).unwrap_or_default()
    }

    /// The JWK as a JSON value (to embed in a larger document).
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self.to_raw()).unwrap_or_default()
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The key ID (`kid`).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The same key with `kid` set.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The `alg` member, if set.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The same key with `alg` set; [`Error::KeyAlgorithmMismatch`] if the algorithm does not
    /// fit the key (ES384 on a P-256 key, PS256 on an Ed25519 key, …).
    pub fn with_alg(mut self, alg: Algorithm) -> Result<Self> {
        if !alg.fits(self.key.algorithm()) {
            return Err(Error::KeyAlgorithmMismatch { alg, kty: self.key.algorithm().to_string() });
        }
        self.alg = Some(alg);
        Ok(self)
    }

    /// The `use` member (`sig`, `enc`), if set.
    pub fn key_use(&self) -> Option<&str> {
        self.key_use.as_deref()
    }

    /// The same key with `use` set.
    #[must_use]
    pub fn with_use(mut self, key_use: impl Into<String>) -> Self {
        self.key_use = Some(key_use.into());
        self
    }

    /// The algorithm tokens verified with this key must use: the `alg` member when set,
    /// otherwise [`Algorithm::default_for`] the key (RS256 for RSA).
    pub fn algorithm(&self) -> Algorithm {
        match (self.alg, &self.verifier) {
            (Some(alg), _) => alg,
            (None, Verifier::P256(_)) => Algorithm::Es256,
            (None, Verifier::P384(_)) => Algorithm::Es384,
            (None, Verifier::Ed25519(_)) => Algorithm::EdDsa,
            (None, Verifier::Rsa(_)) => Algorithm::Rs256,
        }
    }

    /// The SHA-256 JWK thumbprint (RFC 7638 §3): the hash of the required members in
    /// lexicographic order, without whitespace.
    pub fn thumbprint_sha256(&self) -> [u8; 32] {
        let raw = self.to_raw();
        let text = match raw.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                raw.crv.unwrap_or_default(),
                raw.x.unwrap_or_default(),
                raw.y.unwrap_or_default()
            ),
            "OKP" => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                raw.crv.unwrap_or_default(),
                raw.x.unwrap_or_default()
            ),
            _ => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                raw.e.unwrap_or_default(),
                raw.n.unwrap_or_default()
            ),
        };
        Sha256::digest(text.as_bytes()).into()
    }

    /// The thumbprint base64url-encoded: what step-ca uses as a JWK provisioner's `kid`.
    pub fn thumbprint(&self) -> String {
        b64::encode(&self.thumbprint_sha256())
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl From<Jwk> for PublicKey {
    fn from(jwk: Jwk) -> Self {
        jwk.key
    }
}

impl TryFrom<PublicKey> for Jwk {
    type Error = Error;

    fn try_from(key: PublicKey) -> Result<Self> {
        Self::from_public_key(key)
    }
}

/// Verifies `signature` over `message` with `verifier` under `alg` (which the caller has
/// already matched to the key).
pub(crate) fn verify_signature(
    verifier: &Verifier,
    alg: Algorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    let ok = match (verifier, alg) {
        // ECDSA through ring, whose P-256/P-384 arithmetic is several times faster than the
        // RustCrypto curves' (token verification is the authority's hot path); the point
        // was validated on the curve when the key was read.
        (Verifier::P256(key), Algorithm::Es256) => {
            let point = key.to_encoded_point(false);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point.as_bytes(),
            )
            .verify(message, signature)
            .is_ok()
        }
        (Verifier::P384(key), Algorithm::Es384) => {
            let point = key.to_encoded_point(false);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P384_SHA384_FIXED,
                point.as_bytes(),
            )
            .verify(message, signature)
            .is_ok()
        }
        (Verifier::Ed25519(key), Algorithm::EdDsa) => {
            ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok())
        }
        (Verifier::Rsa(key), Algorithm::Rs256 | Algorithm::Ps256) => {
            if signature.len() != key.size() {
                false
            } else {
                let digest = Sha256::digest(message);
                if alg == Algorithm::Rs256 {
                    key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature).is_ok()
                } else {
                    key.verify(rsa::Pss::new::<Sha256>(), &digest, signature).is_ok()
                }
            }
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(Error::BadSignature) }
}

/// A private JWK: a signing key with its public [`Jwk`]. The private key is zeroized when
/// dropped and never shown by `Debug`.
pub struct PrivateJwk {
    signer: SigningKey,
    public: Jwk,
}

enum SigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<RsaPrivateKey>),
}

impl core::fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PrivateJwk")
            .field("public", &self.public)
            .field("private", &"[redacted]")
            .finish()
    }
}

fn rsa_public(key: &RsaPrivateKey) -> Result<PublicKey> {
    Ok(PublicKey::rsa(&key.n().to_bytes_be(), &key.e().to_bytes_be())?)
}

fn secret_biguint(value: &Option<Zeroizing<String>>, name: &'static str) -> Result<BigUint> {
    let text = value.as_ref().ok_or(Error::InvalidPrivateKey)?;
    let bytes = Zeroizing::new(b64::decode(text, name).map_err(|_| Error::InvalidPrivateKey)?);
    Ok(BigUint::from_bytes_be(&bytes))
}

fn secret_b64(value: &BigUint) -> Zeroizing<String> {
    let bytes = Zeroizing::new(value.to_bytes_be());
    Zeroizing::new(b64::encode(&bytes))
}

impl PrivateJwk {
    /// Generates a key for `alg` with the operating system's randomness: P-256 for ES256,
    /// P-384 for ES384, Ed25519 for EdDSA, RSA-2048 for RS256 and PS256. The public JWK
    /// has `alg` set, `use` = `sig` and `kid` = its RFC 7638 thumbprint (as step does).
    pub fn generate(alg: Algorithm) -> Result<Self> {
        let mut rng = rand_core::OsRng;
        let signer = match alg {
            Algorithm::Es256 => SigningKey::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            Algorithm::Es384 => SigningKey::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            Algorithm::EdDsa => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
            Algorithm::Rs256 | Algorithm::Ps256 => SigningKey::Rsa(Box::new(
                RsaPrivateKey::new(&mut rng, MIN_RSA_BITS).map_err(|_| Error::Random)?,
            )),
        };
        let public = Jwk::from_public_key(signer.public_key()?)?.with_alg(alg)?.with_use("sig");
        let kid = public.thumbprint();
        Ok(Self { signer, public: public.with_kid(kid) })
    }

    /// Parses a private JWK from JSON (as decrypted from a JWK provisioner's `encryptedKey`).
    /// The private members must match the public ones. Errors never quote the input.
    pub fn from_json(json: &str) -> Result<Self> {
        let raw: RawJwk =
            json::object(json.as_bytes(), "JWK").map_err(|_| Error::InvalidPrivateKey)?;
        let public = Jwk::from_raw_public(&raw)?;
        let d = raw.d.as_ref().ok_or(Error::InvalidPrivateKey)?;
        let signer = match public.key.algorithm() {
            KeyAlgorithm::NistP256 => {
                let d = Zeroizing::new(b64::decode(d, "d").map_err(|_| Error::InvalidPrivateKey)?);
                SigningKey::P256(
                    p256::ecdsa::SigningKey::from_slice(&d)
                        .map_err(|_| Error::InvalidPrivateKey)?,
                )
            }
            KeyAlgorithm::NistP384 => {
                let d = Zeroizing::new(b64::decode(d, "d").map_err(|_| Error::InvalidPrivateKey)?);
                SigningKey::P384(
                    p384::ecdsa::SigningKey::from_slice(&d)
                        .map_err(|_| Error::InvalidPrivateKey)?,
                )
            }
            KeyAlgorithm::Ed25519 => {
                let d = Zeroizing::new(b64::decode(d, "d").map_err(|_| Error::InvalidPrivateKey)?);
                let mut seed = Zeroizing::new([0u8; 32]);
                if d.len() != 32 {
                    return Err(Error::InvalidPrivateKey);
                }
                seed.copy_from_slice(&d);
                SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            _ => {
                if raw.oth.is_some() {
                    return Err(Error::UnsupportedKey("multi-prime RSA".into()));
                }
                let (n, e) = public.key.rsa_components().ok_or(Error::InvalidPrivateKey)?;
                let d = secret_biguint(&raw.d, "d")?;
                let primes = match (&raw.p, &raw.q) {
                    (Some(_), Some(_)) => {
                        vec![secret_biguint(&raw.p, "p")?, secret_biguint(&raw.q, "q")?]
                    }
                    _ => Vec::new(),
                };
                let key = RsaPrivateKey::from_components(
                    BigUint::from_bytes_be(n),
                    BigUint::from_bytes_be(e),
                    d,
                    primes,
                )
                .map_err(|_| Error::InvalidPrivateKey)?;
                SigningKey::Rsa(Box::new(key))
            }
        };
        if signer.public_key()? != public.key {
            return Err(Error::InvalidPrivateKey);
        }
        Ok(Self { signer, public })
    }

    /// The JWK with its private members, as JSON text (zeroized when dropped): what is
    /// encrypted into a JWK provisioner's `encryptedKey`.
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut raw = self.public.to_raw();
        match &self.signer {
            SigningKey::P256(key) => {
                let mut d = key.to_bytes();
                raw.d = Some(Zeroizing::new(b64::encode(&d)));
                d.zeroize();
            }
            SigningKey::P384(key) => {
                let mut d = key.to_bytes();
                raw.d = Some(Zeroizing::new(b64::encode(&d)));
                d.zeroize();
            }
            SigningKey::Ed25519(key) => {
                let d = Zeroizing::new(key.to_bytes());
                raw.d = Some(Zeroizing::new(b64::encode(d.as_slice())));
            }
            SigningKey::Rsa(key) => {
                raw.d = Some(secret_b64(key.d()));
                if let [p, q] = key.primes() {
                    raw.p = Some(secret_b64(p));
                    raw.q = Some(secret_b64(q));
                }
                raw.dp = key.dp().map(secret_b64);
                raw.dq = key.dq().map(secret_b64);
                raw.qi = key.crt_coefficient().map(|mut qi| {
                    let out = secret_b64(&qi);
                    qi.zeroize();
                    out
                });
            }
        }
        Zeroizing::new(serde_json::to_string(&raw).unwrap_or_default())
    }

    /// The public half.
    pub fn public(&self) -> &Jwk {
        &self.public
    }

    /// The algorithm this key signs with (its public JWK's [`Jwk::algorithm`]).
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The same key with `kid` set on its public half.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.public = self.public.with_kid(kid);
        self
    }

    /// The same key signing with `alg` (RS256 or PS256 for an RSA key; for other keys only
    /// their one algorithm fits).
    pub fn with_alg(mut self, alg: Algorithm) -> Result<Self> {
        self.public = self.public.with_alg(alg)?;
        Ok(self)
    }

    /// Signs `message` with the key's algorithm: `r || s` for ECDSA (RFC 7518 §3.4), the
    /// 64-byte signature for Ed25519, the modulus-length signature for RSA (PKCS#1 v1.5 or
    /// PSS with a 32-byte salt, with blinding).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use p256::ecdsa::signature::Signer as _;
        let alg = self.algorithm();
        match (&self.signer, alg) {
            (SigningKey::P256(key), Algorithm::Es256) => {
                let sig: p256::ecdsa::Signature =
                    key.try_sign(message).map_err(|_| Error::Signing)?;
                Ok(sig.to_bytes().to_vec())
            }
            (SigningKey::P384(key), Algorithm::Es384) => {
                let sig: p384::ecdsa::Signature =
                    key.try_sign(message).map_err(|_| Error::Signing)?;
                Ok(sig.to_bytes().to_vec())
            }
            (SigningKey::Ed25519(key), Algorithm::EdDsa) => {
                Ok(key.sign(message).to_bytes().to_vec())
            }
            (SigningKey::Rsa(key), Algorithm::Rs256) => {
                let digest = Sha256::digest(message);
                key.sign_with_rng(
                    &mut rand_core::OsRng,
                    rsa::Pkcs1v15Sign::new::<Sha256>(),
                    &digest,
                )
                .map_err(|_| Error::Signing)
            }
            (SigningKey::Rsa(key), Algorithm::Ps256) => {
                let digest = Sha256::digest(message);
                key.sign_with_rng(&mut rand_core::OsRng, rsa::Pss::new::<Sha256>(), &digest)
                    .map_err(|_| Error::Signing)
            }
            _ => Err(Error::Signing),
        }
    }

    /// Encrypts the private JWK with `password` as step does for `encryptedKey`
    /// (PBES2-HS256+A128KW, A256GCM, `cty` `jwk+json`, 100 000 iterations).
    pub fn encrypt(&self, password: &[u8]) -> Result<String> {
        crate::jwe::encrypt_pbes2(self.to_json().as_bytes(), password)
    }

    /// Decrypts a JWE made by [`PrivateJwk::encrypt`] (or by step's tools) and parses the
    /// private JWK inside.
    pub fn decrypt(jwe: &str, password: &[u8]) -> Result<Self> {
        let plaintext = crate::jwe::decrypt_pbes2(jwe, password)?;
        let text = core::str::from_utf8(&plaintext).map_err(|_| Error::InvalidPrivateKey)?;
        Self::from_json(text)
    }
}

impl SigningKey {
    fn public_key(&self) -> Result<PublicKey> {
        Ok(match self {
            Self::P256(key) => PublicKey::from_point(
                KeyAlgorithm::NistP256,
                key.verifying_key().to_encoded_point(false).as_bytes(),
            )?,
            Self::P384(key) => PublicKey::from_point(
                KeyAlgorithm::NistP384,
                key.verifying_key().to_encoded_point(false).as_bytes(),
            )?,
            Self::Ed25519(key) => {
                PublicKey::from_point(KeyAlgorithm::Ed25519, key.verifying_key().as_bytes())?
            }
            Self::Rsa(key) => rsa_public(key)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the thumbprint of the RSA key of RFC 7517 Appendix A.1.
    #[test]
    fn rfc7638_thumbprint_example() {
        let jwk = Jwk::from_json(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        );
        let Ok(jwk) = jwk else { panic!("{jwk:?}") };
        assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(jwk.kid(), Some("2011-04-29"));
        assert_eq!(jwk.algorithm(), Algorithm::Rs256);
    }

    #[test]
    fn public_jwks_round_trip_through_json_and_core_keys() {
        for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa, Algorithm::Ps256] {
            let Ok(key) = PrivateJwk::generate(alg) else { panic!("generate {alg}") };
            let json = key.public().to_json();
            assert!(!json.contains("\"d\""), "{json}");
            let back = Jwk::from_json(&json).map_err(|e| e.to_string());
            assert_eq!(back.as_ref().ok(), Some(key.public()), "{alg}: {json}");
            assert_eq!(key.public().kid(), Some(key.public().thumbprint().as_str()));
            let core: PublicKey = key.public().clone().into();
            let again = Jwk::try_from(core).map_err(|e| e.to_string());
            assert_eq!(again.map(|j| j.thumbprint()).ok(), Some(key.public().thumbprint()));
            assert_eq!(key.algorithm(), alg);
        }
    }

    #[test]
    fn private_jwks_round_trip_and_sign_the_same() {
        for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa, Algorithm::Rs256] {
            let Ok(key) = PrivateJwk::generate(alg) else { panic!("generate {alg}") };
            let json = key.to_json();
            assert!(json.contains("\"d\""));
            let back = PrivateJwk::from_json(&json).map_err(|e| e.to_string());
            let Ok(back) = back else { panic!("{alg}: {back:?}") };
            assert_eq!(back.public(), key.public());
            let sig = back.sign(b"message").map_err(|e| e.to_string());
            let Ok(sig) = sig else { panic!("{sig:?}") };
            let ok = verify_signature(key.public().verifier(), alg, b"message", &sig);
            assert!(ok.is_ok(), "{alg}");
            let bad = verify_signature(key.public().verifier(), alg, b"massage", &sig);
            assert!(matches!(bad, Err(Error::BadSignature)));
            assert!(!format!("{key:?}").contains(&json[json.find("\"d\"").unwrap_or(0)..]));
        }
    }

    #[test]
    fn refusals() {
        // Private members in a public JWK.
        let p = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#;
        assert!(matches!(Jwk::from_json(p), Err(Error::UnexpectedPrivateKey)));
        // Private JWK (RFC 8037 A.1) parses; the x matches the d.
        let key = PrivateJwk::from_json(p).map_err(|e| e.to_string());
        assert_eq!(
            key.map(|k| k.public().thumbprint()).ok().as_deref(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"),
            "RFC 8037 A.3 thumbprint"
        );
        // A point off the curve.
        let off = r#"{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}"#;
        assert!(matches!(Jwk::from_json(off), Err(Error::InvalidKey(_))));
        // Short coordinates.
        let short = r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#;
        assert!(matches!(Jwk::from_json(short), Err(Error::InvalidKey(_))));
        // RSA-1024.
        let n = b64::encode(&[0xC3; 128]);
        let small = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
        assert!(matches!(Jwk::from_json(&small), Err(Error::RsaKeyTooSmall { bits: 1024 })));
        // alg that does not fit.
        let ed = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"ES256"}"#;
        assert!(matches!(Jwk::from_json(ed), Err(Error::KeyAlgorithmMismatch { .. })));
        let hs = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"HS256"}"#;
        assert!(matches!(Jwk::from_json(hs), Err(Error::SymmetricAlgorithm(_))));
        // Symmetric keys, other curves, duplicates.
        assert!(matches!(
            Jwk::from_json(r#"{"kty":"oct","k":"AAAA"}"#),
            Err(Error::UnsupportedKey(_))
        ));
        let x = r#"{"kty":"OKP","crv":"X25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert!(matches!(Jwk::from_json(x), Err(Error::UnsupportedKey(_))));
        let dup = r#"{"kty":"OKP","kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert!(matches!(Jwk::from_json(dup), Err(Error::Malformed { .. })));
        // A private JWK whose d is not the x's.
        let other = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        assert!(matches!(PrivateJwk::from_json(other), Err(Error::InvalidPrivateKey)));
    }
}
