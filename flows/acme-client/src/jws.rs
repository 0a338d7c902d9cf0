//! The request envelope (RFC 8555 §6.2): a JWS in the flattened JSON serialization
//! (RFC 7515 §7.2.2) whose protected header carries `alg`, `nonce`, `url` and either
//! `jwk` (newAccount, §6.2) or `kid` (the account URL, every other request).
//!
//! The signature is made with [`PrivateJwk::sign`] over `protected || '.' || payload`;
//! the header is built here rather than by `keystation_jose::sign_compact`, which adds
//! the key's `kid` to every header — and RFC 8555 §6.2 forbids `jwk` and `kid` together.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keystation_jose::{Jwk, PrivateJwk};
use serde::Serialize;

use crate::Error;

/// How the request names its signer (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signer<'a> {
    /// The public key itself: only newAccount (and the inner JWS of keyChange).
    Jwk,
    /// The account URL.
    Kid(&'a str),
}

#[derive(Serialize)]
struct Protected<'a> {
    alg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwk: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    nonce: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

/// The public JWK with only the members that define the key (RFC 7638 §3.2): no `kid`,
/// `alg` or `use`, which a server need not know and some refuse.
pub(crate) fn bare_public_jwk(key: &PrivateJwk) -> Result<Jwk, Error> {
    Jwk::from_public_key(key.public().public_key().clone()).map_err(Error::Signing)
}

/// The flattened JWS of `payload` (`None`: POST-as-GET's empty payload, §6.3) for `url`.
pub(crate) fn sign(
    key: &PrivateJwk,
    signer: Signer<'_>,
    nonce: &str,
    url: &str,
    payload: Option<&[u8]>,
) -> Result<Vec<u8>, Error> {
    let (jwk, kid) = match signer {
        Signer::Jwk => (Some(bare_public_jwk(key)?.to_json_value()), None),
        Signer::Kid(kid) => (None, Some(kid)),
    };
    let alg = key.algorithm();
    let header = Protected { alg: alg.name(), jwk, kid, nonce, url };
    let header =
        serde_json::to_vec(&header).map_err(|e| Error::Encoding(format!("the JWS header: {e}")))?;
    let protected = URL_SAFE_NO_PAD.encode(header);
    let payload = payload.map(|p| URL_SAFE_NO_PAD.encode(p)).unwrap_or_default();
    let signing_input = format!("{protected}.{payload}");
    let signature = key.sign(signing_input.as_bytes()).map_err(Error::Signing)?;
    let body = Flattened { protected, payload, signature: URL_SAFE_NO_PAD.encode(signature) };
    serde_json::to_vec(&body).map_err(|e| Error::Encoding(format!("the JWS: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use keystation_jose::Algorithm;
    use serde_json::Value;

    use super::*;

    fn decode(part: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(part).unwrap()
    }

    /// Splits a flattened JWS and verifies it with keystation-jose's compact parser.
    fn verify(body: &[u8], key: &Jwk) -> (Value, Vec<u8>) {
        let jws: Value = serde_json::from_slice(body).unwrap();
        let part = |name: &str| jws[name].as_str().unwrap().to_owned();
        let compact = format!("{}.{}.{}", part("protected"), part("payload"), part("signature"));
        let parsed = keystation_jose::parse_compact(&compact).unwrap();
        let verified = parsed.verify(key).unwrap();
        let header: Value = serde_json::from_slice(&decode(&part("protected"))).unwrap();
        (header, verified.payload().to_vec())
    }

    #[test]
    fn new_account_requests_carry_the_bare_jwk_and_no_kid() {
        let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
        let body =
            sign(&key, Signer::Jwk, "nonce-1", "https://ca/acme/new-account", Some(b"{}")).unwrap();
        let (header, payload) = verify(&body, key.public());
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["nonce"], "nonce-1");
        assert_eq!(header["url"], "https://ca/acme/new-account");
        assert!(header.get("kid").is_none(), "{header}");
        let jwk = header["jwk"].as_object().unwrap();
        let mut members: Vec<&str> = jwk.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["crv", "kty", "x", "y"]);
        let embedded = Jwk::from_json_value(&header["jwk"]).unwrap();
        assert_eq!(embedded.thumbprint(), key.public().thumbprint());
        assert_eq!(payload, b"{}");
    }

    #[test]
    fn account_requests_carry_the_kid_and_post_as_get_has_an_empty_payload() {
        let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
        let body =
            sign(&key, Signer::Kid("https://ca/acct/7"), "n2", "https://ca/order/1", None).unwrap();
        let jws: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(jws["payload"], "");
        let (header, payload) = verify(&body, key.public());
        assert_eq!(header["kid"], "https://ca/acct/7");
        assert!(header.get("jwk").is_none());
        assert!(payload.is_empty());
        // Another key does not verify it.
        let other = PrivateJwk::generate(Algorithm::Es256).unwrap();
        let compact = format!(
            "{}.{}.{}",
            jws["protected"].as_str().unwrap(),
            "",
            jws["signature"].as_str().unwrap()
        );
        assert!(keystation_jose::parse_compact(&compact).unwrap().verify(other.public()).is_err());
    }
}
