//! Key authorizations (RFC 8555 §8.1) and what each challenge publishes of them: the
//! dns-01 TXT value (§8.4) and the tls-alpn-01 `acmeIdentifier` digest (RFC 8737 §3); and
//! challenge tokens (§8.1, §11.3).

use keystation_jose::Jwk;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The entropy of a challenge token, in bytes (RFC 8555 §8.1: at least 128 bits).
pub const TOKEN_BYTES: usize = 16;

/// The key authorization of `token` for the account key `jwk` (RFC 8555 §8.1):
/// `token || '.' || base64url(SHA-256 JWK thumbprint)` (RFC 7638).
pub fn key_authorization(token: &str, jwk: &Jwk) -> String {
    format!("{token}.{}", jwk.thumbprint())
}

/// The TXT record value a dns-01 challenge expects at `_acme-challenge.<domain>`
/// (RFC 8555 §8.4): `base64url(SHA-256(key authorization))`.
pub fn dns01_txt_value(key_authorization: &str) -> String {
    crate::b64::encode(&Sha256::digest(key_authorization.as_bytes()))
}

/// The SHA-256 digest of the key authorization that a tls-alpn-01 certificate carries in
/// its critical `id-pe-acmeIdentifier` extension, an OCTET STRING (RFC 8737 §3).
pub fn tls_alpn01_digest(key_authorization: &str) -> [u8; 32] {
    Sha256::digest(key_authorization.as_bytes()).into()
}

/// A new challenge token: [`TOKEN_BYTES`] from the operating system's generator,
/// base64url (RFC 8555 §8.1: the alphabet a token may use).
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.try_fill_bytes(&mut bytes).map_err(|_| Error::Random)?;
    Ok(crate::b64::encode(&bytes))
}

/// Whether `token` is a plausible challenge token: base64url characters only, at least
/// 22 of them (128 bits), at most 128 (RFC 8555 §8.1, §8.3: it is put in a URL path).
pub fn is_valid_token(token: &str) -> bool {
    (22..=128).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
