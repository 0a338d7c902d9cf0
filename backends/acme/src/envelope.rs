//! The request envelope (RFC 8555 §6.2): every POST body is a JWS in the flattened JSON
//! serialization (RFC 7515 §7.2.2), `{"protected", "payload", "signature"}`, whose
//! protected header carries `alg`, `nonce`, `url` and exactly one of `jwk` and `kid`.
//!
//! [`parse_request`] reads the body (size-capped, total: an error, never a panic) into an
//! [`AcmeRequest`]: its [`ProtectedHeader`] routes the request (which account, which
//! URL, which nonce) and [`AcmeRequest::verify`] checks the signature with the account's
//! key (or, for newAccount and revokeCert by certificate key, with the `jwk` itself,
//! [`AcmeRequest::verify_with_embedded_key`]). Nonces and URLs are the server's to check
//! against its own state; this module only insists that they are present.

use keystation_jose::{Algorithm, Jwk, UnverifiedJws};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::json;

/// The longest request body accepted, in bytes. A CSR for an RSA-4096 key or an
/// attestation object with two certificates fits several times over.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// The signature algorithms a request may be signed with (RFC 8555 §6.2: ES256 MUST, EdDSA
/// SHOULD be supported; RS256 for the clients that still use RSA account keys). PS256 is
/// refused: no ACME client uses it.
pub const ACCEPTED_ALGORITHMS: [Algorithm; 4] =
    [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa, Algorithm::Rs256];

/// Which key signed a request (RFC 8555 §6.2): the key itself, for newAccount and
/// revokeCert by certificate key, or the account's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// `jwk`: the public key, embedded (boxed: a parsed key is large).
    Jwk(Box<Jwk>),
    /// `kid`: the account URL the server gave at newAccount.
    Kid(String),
}

/// The protected header of an ACME request (RFC 8555 §6.2), unverified until
/// [`AcmeRequest::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedHeader {
    /// `alg`: one of [`ACCEPTED_ALGORITHMS`].
    pub alg: Algorithm,
    /// `nonce` (RFC 8555 §6.5.2); empty only in a key change's inner JWS, which has none.
    pub nonce: String,
    /// `url` (RFC 8555 §6.4.1): the URL the request was sent to, which the server must
    /// compare with its own.
    pub url: String,
    /// `jwk` or `kid`.
    pub key: KeyRef,
}

/// The flattened JWS JSON serialization's members (RFC 7515 §7.2.2). `header` and
/// `signatures` are read only to be refused; other unknown members are ignored (RFC 7515
/// §7.2: "MUST be ignored" if not understood).
#[derive(Deserialize)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
    #[serde(default)]
    header: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    signatures: Option<serde::de::IgnoredAny>,
}

/// A parsed request whose signature has not been checked.
#[derive(Debug, Clone)]
pub struct AcmeRequest {
    header: ProtectedHeader,
    jws: UnverifiedJws,
}

/// A request whose signature verified with the key it was checked against.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    header: ProtectedHeader,
    payload: Vec<u8>,
}

/// Parses a request body (RFC 8555 §6.2): a flattened JWS JSON object with `protected`,
/// `payload` (empty for POST-as-GET, §6.3) and `signature`; no unprotected `header`; a
/// protected header with an accepted `alg`, a `nonce`, a `url` and exactly one of `jwk`
/// and `kid`. Bodies longer than [`MAX_REQUEST_LEN`] are refused before parsing. Never
/// panics.
pub fn parse_request(body: &[u8]) -> Result<AcmeRequest> {
    let request = parse_flattened(body, "request")?;
    if request.header.nonce.is_empty() {
        return Err(Error::MissingNonce);
    }
    Ok(request)
}

/// Parses a flattened JWS; the nonce may be absent (empty), which only a key change's
/// inner JWS may be.
fn parse_flattened(body: &[u8], what: &'static str) -> Result<AcmeRequest> {
    if body.len() > MAX_REQUEST_LEN {
        return Err(Error::TooLarge { what, len: body.len(), max: MAX_REQUEST_LEN });
    }
    let flat: Flattened = json::object(body, "JWS")?;
    if flat.header.is_some() {
        return Err(Error::UnprotectedHeader("header"));
    }
    if flat.signatures.is_some() {
        return Err(Error::UnprotectedHeader("signatures"));
    }
    // The compact serialization's parts are the same base64url strings: the signing input
    // is `protected '.' payload` either way (RFC 7515 §5.2).
    let parts = [&flat.protected, &flat.payload, &flat.signature];
    if let Some(dot) = parts.iter().find(|p| p.contains('.')) {
        return Err(Error::malformed("JWS", format!("{dot:?} is not base64url")));
    }
    let compact = format!("{}.{}.{}", flat.protected, flat.payload, flat.signature);
    let jws = keystation_jose::parse_compact(&compact).map_err(jose_error)?;
    let header = protected_header(&jws)?;
    Ok(AcmeRequest { header, jws })
}

fn protected_header(jws: &UnverifiedJws) -> Result<ProtectedHeader> {
    let raw = jws.header();
    let alg = Algorithm::from_name(&raw.alg)
        .ok()
        .filter(|a| ACCEPTED_ALGORITHMS.contains(a))
        .ok_or_else(|| Error::BadSignatureAlgorithm(raw.alg.clone()))?;
    let key = match (&raw.jwk, &raw.kid) {
        (Some(jwk), None) => KeyRef::Jwk(Box::new(jwk.clone())),
        (None, Some(kid)) if !kid.is_empty() => KeyRef::Kid(kid.clone()),
        (None, Some(_)) => return Err(Error::KeyChoice("\"kid\" is empty")),
        (Some(_), Some(_)) => return Err(Error::KeyChoice("both are present")),
        (None, None) => return Err(Error::KeyChoice("neither is present")),
    };
    let url = raw.url.clone().filter(|u| !u.is_empty()).ok_or(Error::MissingUrl)?;
    Ok(ProtectedHeader { alg, nonce: raw.nonce.clone().unwrap_or_default(), url, key })
}

/// keystation-jose's errors in ACME's terms.
fn jose_error(e: keystation_jose::Error) -> Error {
    use keystation_jose::Error as J;
    match e {
        J::TooLong { what, len, max } => Error::TooLarge { what, len, max },
        J::Base64 { what } => Error::Base64 { what },
        J::NoneAlgorithm => Error::BadSignatureAlgorithm("none".into()),
        J::SymmetricAlgorithm(a) | J::UnsupportedAlgorithm(a) => Error::BadSignatureAlgorithm(a),
        J::AlgorithmMismatch { header, key } => {
            Error::AlgorithmMismatch { alg: header, key: key.name().into() }
        }
        J::BadSignature => Error::BadSignature,
        J::InvalidKey(_)
        | J::RsaKeyTooSmall { .. }
        | J::UnsupportedKey(_)
        | J::UnexpectedPrivateKey
        | J::KeyAlgorithmMismatch { .. }
        | J::Core(_) => Error::BadPublicKey(e.to_string()),
        other => Error::malformed("JWS", other.to_string()),
    }
}

impl AcmeRequest {
    /// The protected header (unverified: for routing only).
    pub fn protected(&self) -> &ProtectedHeader {
        &self.header
    }

    /// The payload, **unverified**.
    pub fn unverified_payload(&self) -> &[u8] {
        self.jws.unverified_payload()
    }

    /// Verifies the signature with `key` (the account's key for a `kid` request), under
    /// the key's algorithm (its `alg` member, else ES256, ES384, EdDSA or RS256 by key
    /// type): the header's `alg` must agree with it ([`Error::AlgorithmMismatch`]).
    pub fn verify(&self, key: &Jwk) -> Result<VerifiedRequest> {
        let verified = self.jws.verify(key).map_err(jose_error)?;
        Ok(VerifiedRequest { header: self.header.clone(), payload: verified.payload().to_vec() })
    }

    /// Verifies a request signed with `jwk` (newAccount, revokeCert by certificate key,
    /// RFC 8555 §6.2) with that key; a `kid` request is [`Error::WrongKeyChoice`].
    pub fn verify_with_embedded_key(&self) -> Result<VerifiedRequest> {
        match &self.header.key {
            KeyRef::Jwk(jwk) => self.verify(jwk),
            KeyRef::Kid(_) => Err(Error::WrongKeyChoice { expected: "\"jwk\"" }),
        }
    }
}

impl VerifiedRequest {
    /// The protected header.
    pub fn protected(&self) -> &ProtectedHeader {
        &self.header
    }

    /// The payload bytes (empty for POST-as-GET).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether this is a POST-as-GET request: its payload is empty (RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload parsed as a JSON object of type `T`; an empty payload, another JSON
    /// value or a missing member is [`Error::Malformed`].
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T> {
        json::object(&self.payload, "request payload")
    }

    /// The account URL (`kid`), for requests that must name their account; a `jwk`
    /// request is [`Error::WrongKeyChoice`].
    pub fn account_url(&self) -> Result<&str> {
        match &self.header.key {
            KeyRef::Kid(kid) => Ok(kid),
            KeyRef::Jwk(_) => Err(Error::WrongKeyChoice { expected: "\"kid\"" }),
        }
    }

    /// The embedded key (`jwk`), for requests that must carry one; a `kid` request is
    /// [`Error::WrongKeyChoice`].
    pub fn jwk(&self) -> Result<&Jwk> {
        match &self.header.key {
            KeyRef::Jwk(jwk) => Ok(jwk),
            KeyRef::Kid(_) => Err(Error::WrongKeyChoice { expected: "\"jwk\"" }),
        }
    }
}

/// A verified key change (RFC 8555 §7.3.5): the outer request (signed by the account's
/// current key) carried an inner JWS signed by the new key.
#[derive(Debug, Clone)]
pub struct VerifiedKeyChange {
    /// The new key (the inner JWS's `jwk`, which signed it).
    pub new_key: Jwk,
    /// `oldKey`: the server must check it is the account's current key.
    pub old_key: Jwk,
    /// `account`: equal to the outer `kid`, already checked.
    pub account: String,
}

/// Verifies the inner JWS of a key change carried as `outer`'s payload (RFC 8555 §7.3.5):
/// a flattened JWS with `jwk` (the new key, which signs it), no `nonce`, the outer's `url`;
/// its payload names the outer `kid` as `account` and the old key as `oldKey`. The caller
/// has verified `outer` with the account's key, and compares `old_key` with it and looks
/// the new key up among the other accounts.
pub fn verify_key_change(outer: &VerifiedRequest) -> Result<VerifiedKeyChange> {
    let account = outer.account_url()?.to_owned();
    let inner = parse_flattened(outer.payload(), "inner JWS")?;
    let header = inner.protected();
    let KeyRef::Jwk(new_key) = &header.key else {
        return Err(Error::KeyChange("the inner JWS must carry the new key as \"jwk\"".into()));
    };
    if !header.nonce.is_empty() {
        return Err(Error::KeyChange("the inner JWS must not carry a nonce".into()));
    }
    if header.url != outer.protected().url {
        return Err(Error::KeyChange(format!(
            "the inner url {:?} is not the outer url {:?}",
            header.url,
            outer.protected().url
        )));
    }
    let verified = inner.verify(new_key)?;
    let payload: crate::messages::KeyChange = verified.payload_json()?;
    if payload.account != account {
        return Err(Error::KeyChange(format!(
            "the inner account {:?} is not the outer kid {account:?}",
            payload.account
        )));
    }
    let old_key = payload.old_jwk()?;
    Ok(VerifiedKeyChange { new_key: Jwk::clone(new_key), old_key, account })
}

/// Signs `payload` into a flattened JWS request body (for clients and tests): `key` signs
/// under its algorithm; the protected header gets `alg`, either the public `jwk` (when
/// `kid` is `None`) or the account URL `kid`, `nonce` (omitted when empty, as in a key
/// change's inner JWS) and `url`.
pub fn sign_request(
    key: &keystation_jose::PrivateJwk,
    kid: Option<&str>,
    nonce: &str,
    url: &str,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), key.algorithm().name().into());
    match kid {
        Some(kid) => header.insert("kid".into(), kid.into()),
        // Only the key's members: the private key's `kid` member (a thumbprint) would make
        // the header name the key twice.
        None => header.insert("jwk".into(), public_members(key.public())?),
    };
    if !nonce.is_empty() {
        header.insert("nonce".into(), nonce.into());
    }
    header.insert("url".into(), url.into());
    let protected = crate::b64::encode(serde_json::Value::Object(header).to_string().as_bytes());
    let payload_b64 = crate::b64::encode(payload);
    let signature = key
        .sign(format!("{protected}.{payload_b64}").as_bytes())
        .map_err(|e| Error::malformed("signing", e.to_string()))?;
    let body = serde_json::json!({
        "protected": protected,
        "payload": payload_b64,
        "signature": crate::b64::encode(&signature),
    });
    Ok(body.to_string().into_bytes())
}

/// The JWK with only its key members (no `kid`, `alg`, `use`).
pub(crate) fn public_members(jwk: &Jwk) -> Result<serde_json::Value> {
    Ok(Jwk::from_public_key(jwk.public_key().clone()).map_err(jose_error)?.to_json_value())
}
