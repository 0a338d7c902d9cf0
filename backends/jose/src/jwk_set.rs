//! JWK Sets (RFC 7517 §5): `{"keys": [...]}` as identity providers publish their signing
//! keys, read key by key so that one key this crate cannot use does not spoil the set.

use serde::Deserialize;

use crate::alg::Algorithm;
use crate::error::{Error, Result};
use crate::json;
use crate::jwk::Jwk;

/// A JWK Set (RFC 7517 §5), each member of its `keys` array read on its own: a verification
/// key with its `kid`, or the reason it cannot verify signatures.
///
/// The set itself must be a JSON object with a `keys` array (RFC 7517 §5.1: "REQUIRED");
/// other members are ignored (RFC 7517 §5). Callers narrow the entries further with
/// [`JwkSetEntry::require_kid`] and [`JwkSetEntry::require_algorithm`].
#[derive(Debug)]
pub struct JwkSet {
    entries: Vec<JwkSetEntry>,
}

/// One member of a [`JwkSet`]'s `keys` array.
#[derive(Debug)]
pub struct JwkSetEntry {
    /// The member's `kid` (RFC 7517 §4.5), when it is a string; kept even when the key is
    /// unusable, so a skipped key can be named.
    pub kid: Option<String>,
    /// The verification key, or why this member cannot be one.
    pub key: std::result::Result<Jwk, UnusableKey>,
}

/// Why a member of a [`JwkSet`] cannot verify signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnusableKey {
    /// Its `use` (RFC 7517 §4.2) is not `sig`: an encryption key.
    #[error("use {0:?} is not \"sig\"")]
    NotForSigning(String),
    /// Not a key this crate reads: a symmetric key, another type or curve, RSA under 2048
    /// bits, a malformed member.
    #[error("unreadable: {0}")]
    Unreadable(Error),
    /// It has no `kid`, and the caller picks keys by `kid` ([`JwkSetEntry::require_kid`]).
    #[error("no kid")]
    NoKid,
    /// It verifies another algorithm than the caller accepts
    /// ([`JwkSetEntry::require_algorithm`]).
    #[error("a {found} key, not {expected}")]
    WrongAlgorithm {
        /// The algorithm the caller accepts.
        expected: Algorithm,
        /// The key's algorithm ([`Jwk::algorithm`]).
        found: Algorithm,
    },
}

/// The set's shape: only `keys` matters, each member kept as JSON until read on its own.
#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl JwkSet {
    /// Reads a JWK Set from its JSON text. The set must be an object with a `keys` array
    /// ([`Error::Malformed`] otherwise); its members are read one by one into
    /// [`JwkSetEntry`]s, in order, an unusable member becoming an entry that says why.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let raw: RawSet = json::object(json, "JWK set")?;
        Ok(Self { entries: raw.keys.iter().map(JwkSetEntry::read).collect() })
    }

    /// The entries, in the set's order.
    pub fn entries(&self) -> &[JwkSetEntry] {
        &self.entries
    }

    /// The entries, in the set's order, by value.
    pub fn into_entries(self) -> std::vec::IntoIter<JwkSetEntry> {
        self.entries.into_iter()
    }
}

impl JwkSetEntry {
    fn read(value: &serde_json::Value) -> Self {
        let kid = value.get("kid").and_then(serde_json::Value::as_str).map(str::to_owned);
        let key_use = value.get("use").and_then(serde_json::Value::as_str);
        let key = match key_use {
            Some(key_use) if key_use != "sig" => {
                Err(UnusableKey::NotForSigning(key_use.to_owned()))
            }
            _ => Jwk::from_json_value(value).map_err(UnusableKey::Unreadable),
        };
        Self { kid, key }
    }

    /// The same entry, unusable ([`UnusableKey::NoKid`]) when it has no `kid`.
    #[must_use]
    pub fn require_kid(mut self) -> Self {
        if self.kid.is_none() && self.key.is_ok() {
            self.key = Err(UnusableKey::NoKid);
        }
        self
    }

    /// The same entry, unusable ([`UnusableKey::WrongAlgorithm`]) when its key verifies
    /// another algorithm than `expected` ([`Jwk::algorithm`]: its `alg`, else its type's
    /// default).
    #[must_use]
    pub fn require_algorithm(mut self, expected: Algorithm) -> Self {
        if let Ok(jwk) = &self.key
            && jwk.algorithm() != expected
        {
            self.key = Err(UnusableKey::WrongAlgorithm { expected, found: jwk.algorithm() });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jwk::PrivateJwk;

    fn public_json(alg: Algorithm, kid: Option<&str>) -> serde_json::Value {
        let key = PrivateJwk::generate(alg).unwrap();
        let mut json = key.public().to_json_value();
        match kid {
            Some(kid) => json["kid"] = kid.into(),
            None => drop(json.as_object_mut().unwrap().remove("kid")),
        }
        json
    }

    #[test]
    fn each_member_is_read_on_its_own() {
        let mut enc = public_json(Algorithm::Es256, Some("enc"));
        enc["use"] = "enc".into();
        let mut sig = public_json(Algorithm::Es256, Some("sig"));
        sig["use"] = "sig".into();
        let set = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
            enc,
            sig,
            public_json(Algorithm::EdDsa, None),
        ], "other": 1});
        let set = JwkSet::from_json(set.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = set.entries().iter().map(|e| e.kid.as_deref()).collect();
        assert_eq!(kids, [Some("hmac"), Some("tiny"), Some("enc"), Some("sig"), None]);
        let entries = set.entries();
        assert!(matches!(entries[0].key, Err(UnusableKey::Unreadable(Error::UnsupportedKey(_)))));
        assert!(matches!(
            entries[1].key,
            Err(UnusableKey::Unreadable(Error::RsaKeyTooSmall { .. }))
        ));
        assert!(matches!(&entries[2].key, Err(UnusableKey::NotForSigning(u)) if u == "enc"));
        assert_eq!(entries[3].key.as_ref().unwrap().kid(), Some("sig"));
        assert_eq!(entries[4].key.as_ref().unwrap().algorithm(), Algorithm::EdDsa);
    }

    #[test]
    fn callers_narrow_entries_by_kid_and_algorithm() {
        let set = serde_json::json!({"keys": [
            public_json(Algorithm::Rs256, None),
            public_json(Algorithm::Es256, Some("ec")),
            public_json(Algorithm::Rs256, Some("rsa")),
            {"kty": "oct", "k": "c2VjcmV0"},
        ]});
        let set = JwkSet::from_json(set.to_string().as_bytes()).unwrap();
        let narrowed: Vec<_> = set
            .into_entries()
            .map(|e| e.require_kid().require_algorithm(Algorithm::Rs256))
            .collect();
        assert!(matches!(narrowed[0].key, Err(UnusableKey::NoKid)));
        assert!(matches!(
            narrowed[1].key,
            Err(UnusableKey::WrongAlgorithm {
                expected: Algorithm::Rs256,
                found: Algorithm::Es256
            })
        ));
        assert_eq!(narrowed[2].key.as_ref().unwrap().kid(), Some("rsa"));
        // An unreadable key keeps its own reason.
        assert!(matches!(narrowed[3].key, Err(UnusableKey::Unreadable(_))));
        assert_eq!(narrowed[1].key.as_ref().unwrap_err().to_string(), "a ES256 key, not RS256");
    }

    #[test]
    fn a_set_is_an_object_with_a_keys_array() {
        for bad in [&b"[]"[..], b"{}", br#"{"keys": {}}"#, b"not json"] {
            assert!(
                matches!(JwkSet::from_json(bad), Err(Error::Malformed { what: "JWK set", .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(JwkSet::from_json(br#"{"keys": []}"#).unwrap().entries().is_empty());
    }
}
