//! Google's signing keys: the JWK set at `https://www.googleapis.com/oauth2/v3/certs`
//! (the keys of `accounts.google.com`, which signs instance identity tokens;
//! <https://cloud.google.com/compute/docs/instances/verifying-instance-identity>), handed
//! to the pure `authorize` as [`TrustedKeys`] `(kid, key)` pairs.
//!
//! The cache lifetime is the answer's `Cache-Control: max-age` (Google sends several hours;
//! step-ca uses it too), 1 h when none is given, bounded to [`MIN_MAX_AGE`]..=[`MAX_MAX_AGE`].

use std::time::Duration;

use keystation_core::provisioner::TrustedKeys;
use keystation_fetch::Fetcher;
use keystation_jose::{Algorithm, JwkSet};
use keystation_provisioners::{CacheLifetime, usable_keys};

use crate::error::Error;

/// Where Google publishes the keys that sign its identity tokens (step-ca's `gcpCertsURL`).
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// How long keys are cached when the answer names no `max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The shortest cache lifetime, whatever the server says.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);

/// The longest cache lifetime: a key Google rotated out stops being trusted within a day.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The [`TrustedKeys`] in a JWK set's text (RFC 7517 §5): RSA signing keys with their `kid`.
/// Keys that cannot verify RS256 (another type, `use` other than `sig`, an `alg` other than
/// RS256, RSA under 2048 bits, no `kid`) are skipped with a log line; a set with none left is
/// an error.
pub fn trusted_keys_from_jwks(jwks: &[u8], url: &str) -> Result<TrustedKeys, Error> {
    let set = JwkSet::from_json(jwks)
        .map_err(|e| Error::NotAKeySet { url: url.to_owned(), reason: e.to_string() })?;
    let rs256 = set.into_entries().map(|e| e.require_kid().require_algorithm(Algorithm::Rs256));
    let keys = usable_keys(url, rs256)
        .map_err(|skipped| Error::NoUsableKey { url: url.to_owned(), skipped })?;
    let keys = keys.iter().map(|k| (k.kid().map(str::to_owned), k.public_key().clone()));
    Ok(TrustedKeys { keys: keys.collect(), ..TrustedKeys::default() })
}

/// Fetches Google's JWK set with keystation-fetch.
pub struct GoogleKeySource {
    fetcher: Fetcher,
    url: String,
    lifetime: CacheLifetime,
}

impl std::fmt::Debug for GoogleKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleKeySource")
            .field("url", &self.url)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl GoogleKeySource {
    /// A source reading the JWK set at `url` through `fetcher`.
    pub fn new(fetcher: Fetcher, url: String) -> Self {
        Self {
            fetcher,
            url,
            lifetime: CacheLifetime::new(DEFAULT_MAX_AGE, MIN_MAX_AGE, MAX_MAX_AGE),
        }
    }

    /// The JWK set's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The keys and how long they may be cached.
    pub async fn fetch_keys(&self) -> Result<(TrustedKeys, Duration), Error> {
        let response = self
            .fetcher
            .send(keystation_fetch::Method::Get, &self.url, &[("accept", "application/json")], None)
            .await
            .map_err(|e| Error::Fetch { url: self.url.clone(), reason: e.to_string() })?;
        let keys = trusted_keys_from_jwks(&response.body, &self.url)?;
        let max_age = self.lifetime.of(response.max_age);
        tracing::debug!(url = %self.url, keys = keys.keys.len(), max_age_secs = max_age.as_secs(), "Google keys fetched");
        Ok((keys, max_age))
    }
}

#[async_trait::async_trait]
impl keystation_provisioners::KeySource for GoogleKeySource {
    async fn fetch(&self) -> Result<TrustedKeys, keystation_provisioners::Error> {
        self.lifetime.keep(&self.url, self.fetch_keys().await)
    }

    fn max_age(&self) -> Duration {
        self.lifetime.get()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_rs256_signing_keys_with_a_kid_are_kept() {
        let rsa = keystation_jose::PrivateJwk::generate(Algorithm::Rs256).unwrap();
        let es = keystation_jose::PrivateJwk::generate(Algorithm::Es256).unwrap();
        let mut good: serde_json::Value = serde_json::from_str(&rsa.public().to_json()).unwrap();
        good["kid"] = "g1".into();
        let mut no_kid = good.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut enc = good.clone();
        enc["use"] = "enc".into();
        let mut ec: serde_json::Value = serde_json::from_str(&es.public().to_json()).unwrap();
        ec["kid"] = "e1".into();
        let jwks = serde_json::json!({"keys": [no_kid, enc, ec, {"kty": "oct", "k": "AA", "kid": "h"}, good]});
        let keys = trusted_keys_from_jwks(jwks.to_string().as_bytes(), "u").unwrap();
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].0.as_deref(), Some("g1"));
        let none = serde_json::json!({"keys": [ec_only()]});
        assert!(matches!(
            trusted_keys_from_jwks(none.to_string().as_bytes(), "u"),
            Err(Error::NoUsableKey { skipped: 1, .. })
        ));
        assert!(matches!(trusted_keys_from_jwks(b"[]", "u"), Err(Error::NotAKeySet { .. })));
    }

    fn ec_only() -> serde_json::Value {
        let es = keystation_jose::PrivateJwk::generate(Algorithm::Es256).unwrap();
        let mut ec: serde_json::Value = serde_json::from_str(&es.public().to_json()).unwrap();
        ec["kid"] = "e1".into();
        ec
    }
}
