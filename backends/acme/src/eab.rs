//! External account binding (RFC 8555 §7.3.4): newAccount's `externalAccountBinding` is
//! a flattened JWS whose protected header is `{"alg": "HS256" | "HS384" | "HS512", "kid":
//! <the EAB key ID>, "url": <the newAccount URL>}`, whose payload is the account key (the
//! outer JWS's `jwk`), MACed with the key the CA gave the account holder out of band.

use hmac::{Hmac, Mac};
use keystation_jose::Jwk;
use serde::Deserialize;
use sha2::{Sha256, Sha384, Sha512};
/// The wrapper the MAC key comes in (re-exported so callers need not depend on zeroize).
pub use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::messages::FlattenedJws;
use crate::{b64, json};

/// The longest binding accepted (all three members together), in bytes.
pub const MAX_EAB_LEN: usize = 8 * 1024;

/// The MAC algorithms of a binding (RFC 7518 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MacAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl MacAlgorithm {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "HS384" => Some(Self::Hs384),
            "HS512" => Some(Self::Hs512),
            _ => None,
        }
    }

    fn mac(self, key: &[u8], input: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length.
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(input);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            Self::Hs256 => run::<Hmac<Sha256>>(key, input),
            Self::Hs384 => run::<Hmac<Sha384>>(key, input),
            Self::Hs512 => run::<Hmac<Sha512>>(key, input),
        }
    }

    fn verify(self, key: &[u8], input: &[u8], tag: &[u8]) -> bool {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8], tag: &[u8]) -> bool {
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(input);
                    // Constant-time comparison.
                    mac.verify_slice(tag).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            Self::Hs256 => run::<Hmac<Sha256>>(key, input, tag),
            Self::Hs384 => run::<Hmac<Sha384>>(key, input, tag),
            Self::Hs512 => run::<Hmac<Sha512>>(key, input, tag),
        }
    }
}

/// The binding's protected header; `nonce` and `jwk` are read only to be refused.
#[derive(Deserialize)]
struct BindingHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    nonce: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    jwk: Option<serde::de::IgnoredAny>,
}

fn refused(reason: impl Into<String>) -> Error {
    Error::ExternalAccountBinding(reason.into())
}

/// Verifies an external account binding (RFC 8555 §7.3.4) and returns its key ID:
///
/// 1. the protected header names an HMAC `alg` (HS256, HS384, HS512), a `kid` and the
///    `url` `new_account_url`, and no `nonce` (the binding is not replayable on its own:
///    it is inside the outer JWS);
/// 2. `lookup(kid)` gives the MAC key (an unknown key ID is refused);
/// 3. the MAC verifies (compared in constant time);
/// 4. the payload is `outer_jwk` as a key (compared by RFC 7638 thumbprint).
///
/// Refusals are [`Error::ExternalAccountBinding`] (unauthorized); a binding that does
/// not parse is [`Error::Malformed`]. Whether the key ID is already bound to another
/// account is the caller's to check.
pub fn verify_eab(
    binding: &FlattenedJws,
    outer_jwk: &Jwk,
    new_account_url: &str,
    lookup: impl FnOnce(&str) -> Option<Zeroizing<Vec<u8>>>,
) -> Result<String> {
    let len = binding.protected.len() + binding.payload.len() + binding.signature.len();
    if len > MAX_EAB_LEN {
        return Err(Error::TooLarge { what: "externalAccountBinding", len, max: MAX_EAB_LEN });
    }
    let header_bytes = b64::decode(&binding.protected, "externalAccountBinding protected")?;
    let header: BindingHeader = json::object(&header_bytes, "externalAccountBinding header")?;
    let alg = MacAlgorithm::from_name(&header.alg)
        .ok_or_else(|| refused(format!("alg {:?} is not HS256, HS384 or HS512", header.alg)))?;
    if header.nonce.is_some() {
        return Err(refused("the binding must not carry a nonce"));
    }
    if header.jwk.is_some() {
        return Err(refused("the binding's header must not carry a jwk"));
    }
    let kid = header.kid.filter(|k| !k.is_empty()).ok_or_else(|| refused("no kid"))?;
    let signature = b64::decode(&binding.signature, "externalAccountBinding signature")?;
    let key = lookup(&kid).ok_or_else(|| refused(format!("unknown key ID {kid:?}")))?;
    let input = format!("{}.{}", binding.protected, binding.payload);
    if !alg.verify(&key, input.as_bytes(), &signature) {
        return Err(refused(format!("the MAC does not verify with key {kid:?}")));
    }
    if header.url.as_deref() != Some(new_account_url) {
        return Err(refused(format!(
            "url {:?} is not the newAccount URL {new_account_url:?}",
            header.url.unwrap_or_default()
        )));
    }
    let payload = b64::decode(&binding.payload, "externalAccountBinding payload")?;
    let value: serde_json::Value = json::object(&payload, "externalAccountBinding payload")?;
    let bound = Jwk::from_json_value(&value)
        .map_err(|e| refused(format!("the payload is not a public JWK: {e}")))?;
    if bound.thumbprint_sha256() != outer_jwk.thumbprint_sha256() {
        return Err(refused("the payload is not the account's key"));
    }
    Ok(kid)
}

/// Makes an external account binding (for clients and tests): HS256 under `hmac_key`,
/// protected header `{"alg": "HS256", "kid": key_id, "url": url}`, payload `jwk`'s key
/// members.
pub fn sign_eab(key_id: &str, hmac_key: &[u8], jwk: &Jwk, url: &str) -> Result<FlattenedJws> {
    let header = serde_json::json!({"alg": "HS256", "kid": key_id, "url": url});
    let protected = b64::encode(header.to_string().as_bytes());
    let payload = b64::encode(crate::envelope::public_members(jwk)?.to_string().as_bytes());
    let input = format!("{protected}.{payload}");
    let signature = b64::encode(&MacAlgorithm::Hs256.mac(hmac_key, input.as_bytes()));
    Ok(FlattenedJws { protected, payload, signature })
}
