//! Google's signing keys: the JWK set at `https://www.googleapis.com/oauth2/v3/certs`
//! (the keys of `accounts.google.com`, which signs instance identity tokens;
//! <https://cloud.google.com/compute/docs/instances/verifying-instance-identity>), handed
//! to the pure `authorize` as [`TrustedKeys`] `(kid, key)` pairs.
//!
//! The cache lifetime is the answer's `Cache-Control: max-age` (Google sends several hours;
//! step-ca uses it too), 1 h when none is given, bounded to [`MIN_MAX_AGE`]..=[`MAX_MAX_AGE`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keystation_core::provisioner::TrustedKeys;
use keystation_fetch::Fetcher;
use keystation_jose::{Algorithm, Jwk};
use serde::Deserialize;

use crate::error::Error;

/// Where Google publishes the keys that sign its identity tokens (step-ca's `gcpCertsURL`).
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// How long keys are cached when the answer names no `max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The shortest cache lifetime, whatever the server says.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);

/// The longest cache lifetime: a key Google rotated out stops being trusted within a day.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

/// The [`TrustedKeys`] in a JWK set's text: RSA signing keys with their `kid`. Keys that
/// cannot verify RS256 (another type, `use` other than `sig`, an `alg` other than RS256,
/// RSA under 2048 bits, no `kid`) are skipped with a log line; a set with none left is an
/// error.
pub fn trusted_keys_from_jwks(jwks: &[u8], url: &str) -> Result<TrustedKeys, Error> {
    let set: KeySet = serde_json::from_slice(jwks)
        .map_err(|e| Error::NotAKeySet { url: url.to_owned(), reason: e.to_string() })?;
    let mut trusted = TrustedKeys::default();
    let mut skipped = 0;
    for value in &set.keys {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        let skip = |why: &str| tracing::info!(url, ?kid, why, "JWKS key skipped");
        if kid.is_none() {
            skip("no kid");
            skipped += 1;
            continue;
        }
        if value.get("use").and_then(|u| u.as_str()).is_some_and(|u| u != "sig") {
            skip("not a signing key");
            skipped += 1;
            continue;
        }
        let jwk = match Jwk::from_json_value(value) {
            Ok(jwk) if jwk.algorithm() == Algorithm::Rs256 => jwk,
            Ok(_) => {
                skip("not an RS256 key");
                skipped += 1;
                continue;
            }
            Err(e) => {
                tracing::info!(url, ?kid, error = %e, "JWKS key skipped: unusable");
                skipped += 1;
                continue;
            }
        };
        trusted.keys.push((kid, jwk.public_key().clone()));
    }
    if trusted.keys.is_empty() {
        return Err(Error::NoUsableKey { url: url.to_owned(), skipped });
    }
    Ok(trusted)
}

/// Fetches Google's JWK set with keystation-fetch.
pub struct GoogleKeySource {
    fetcher: Fetcher,
    url: String,
    max_age_secs: AtomicU64,
}

impl std::fmt::Debug for GoogleKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleKeySource")
            .field("url", &self.url)
            .field("max_age_secs", &self.max_age_secs.load(Ordering::Relaxed))
            .finish()
    }
}

impl GoogleKeySource {
    /// A source reading the JWK set at `url` through `fetcher`.
    pub fn new(fetcher: Fetcher, url: String) -> Self {
        Self { fetcher, url, max_age_secs: AtomicU64::new(DEFAULT_MAX_AGE.as_secs()) }
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
        let max_age = response.max_age.unwrap_or(DEFAULT_MAX_AGE).clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        tracing::debug!(url = %self.url, keys = keys.keys.len(), max_age_secs = max_age.as_secs(), "Google keys fetched");
        Ok((keys, max_age))
    }
}

#[async_trait::async_trait]
impl keystation_provisioners::KeySource for GoogleKeySource {
    async fn fetch(&self) -> Result<TrustedKeys, keystation_provisioners::Error> {
        match self.fetch_keys().await {
            Ok((keys, max_age)) => {
                self.max_age_secs.store(max_age.as_secs(), Ordering::Relaxed);
                Ok(keys)
            }
            Err(e) => Err(keystation_provisioners::Error::KeyFetch {
                location: self.url.clone(),
                source: Box::new(e),
            }),
        }
    }

    fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_secs.load(Ordering::Relaxed))
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
