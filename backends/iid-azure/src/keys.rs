//! A tenant's signing keys: the OpenID discovery document
//! (`https://login.microsoftonline.com/<tenant>/.well-known/openid-configuration`, the v1
//! endpoint step-ca reads, whose issuer `https://sts.windows.net/<tenant>/` is the one IMDS
//! tokens carry), then the JWK set its `jwks_uri` names.
//!
//! `authorize` does no I/O, so the discovery document's issuer travels with the keys in
//! [`TrustedKeys::statements`] as `azure-issuer=<issuer>` ([`ISSUER_STATEMENT`]).
//!
//! The cache lifetime is the JWK set answer's `Cache-Control: max-age`, 1 h when none is
//! given, bounded to [`MIN_MAX_AGE`]..=[`MAX_MAX_AGE`].

use std::time::Duration;

use keystation_core::provisioner::TrustedKeys;
use keystation_fetch::{Fetcher, Method};
use keystation_jose::{Algorithm, JwkSet};
use keystation_provisioners::{CacheLifetime, usable_keys};
use serde::Deserialize;

use crate::error::Error;

/// The statement carrying the discovery document's issuer.
pub const ISSUER_STATEMENT: &str = "azure-issuer=";

/// Microsoft Entra ID's login host (step-ca's `azureOIDCBaseURL`).
pub const LOGIN_BASE: &str = "https://login.microsoftonline.com";

/// How long keys are cached when the answer names no `max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The shortest cache lifetime, whatever the server says.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);

/// The longest cache lifetime: a rotated-out key stops being trusted within a day.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The discovery URL step-ca reads for `tenant` (v1).
pub fn default_discovery_url(tenant: &str) -> String {
    format!("{LOGIN_BASE}/{tenant}/.well-known/openid-configuration")
}

#[derive(Deserialize)]
struct Discovery {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    jwks_uri: String,
}

/// The [`TrustedKeys`] for tokens of `issuer`, from a JWK set's text (RFC 7517 §5): RS256
/// signing keys with their `kid`, and the issuer statement. Other keys are skipped with a log
/// line; a set with none left is an error.
pub fn trusted_keys_from_jwks(issuer: &str, jwks: &[u8], url: &str) -> Result<TrustedKeys, Error> {
    let set = JwkSet::from_json(jwks)
        .map_err(|e| Error::NotAKeySet { url: url.to_owned(), reason: e.to_string() })?;
    let rs256 = set.into_entries().map(|e| e.require_kid().require_algorithm(Algorithm::Rs256));
    let keys = usable_keys(url, rs256)
        .map_err(|skipped| Error::NoUsableKey { url: url.to_owned(), skipped })?;
    Ok(TrustedKeys {
        keys: keys.iter().map(|k| (k.kid().map(str::to_owned), k.public_key().clone())).collect(),
        statements: vec![format!("{ISSUER_STATEMENT}{issuer}")],
        ..TrustedKeys::default()
    })
}

/// The issuer `keys` carry ([`ISSUER_STATEMENT`]).
pub fn issuer_of(keys: &TrustedKeys) -> Option<&str> {
    keys.statements.iter().find_map(|s| s.strip_prefix(ISSUER_STATEMENT))
}

/// Fetches a tenant's discovery document, then its JWK set, with keystation-fetch.
pub struct AzureKeySource {
    fetcher: Fetcher,
    discovery: String,
    lifetime: CacheLifetime,
}

impl std::fmt::Debug for AzureKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeySource")
            .field("discovery", &self.discovery)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl AzureKeySource {
    /// A source reading the discovery document at `discovery` through `fetcher`.
    pub fn new(fetcher: Fetcher, discovery: String) -> Self {
        Self {
            fetcher,
            discovery,
            lifetime: CacheLifetime::new(DEFAULT_MAX_AGE, MIN_MAX_AGE, MAX_MAX_AGE),
        }
    }

    /// The discovery URL.
    pub fn discovery(&self) -> &str {
        &self.discovery
    }

    /// Discovery, then the JWK set; the keys and how long they may be cached.
    pub async fn fetch_keys(&self) -> Result<(TrustedKeys, Duration), Error> {
        let fetch_error = |url: &str, e: keystation_fetch::Error| Error::Fetch {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let (discovery, _): (Discovery, _) = self
            .fetcher
            .get_json(&self.discovery, &[("accept", "application/json")])
            .await
            .map_err(|e| fetch_error(&self.discovery, e))?;
        let unusable =
            |reason: &str| Error::Discovery { url: self.discovery.clone(), reason: reason.into() };
        if discovery.issuer.is_empty() {
            return Err(unusable("issuer is empty"));
        }
        if discovery.jwks_uri.is_empty() {
            return Err(unusable("jwks_uri is empty"));
        }
        let response = self
            .fetcher
            .send(Method::Get, &discovery.jwks_uri, &[("accept", "application/json")], None)
            .await
            .map_err(|e| fetch_error(&discovery.jwks_uri, e))?;
        let keys = trusted_keys_from_jwks(&discovery.issuer, &response.body, &discovery.jwks_uri)?;
        let max_age = self.lifetime.of(response.max_age);
        tracing::debug!(discovery = %self.discovery, jwks_uri = %discovery.jwks_uri, keys = keys.keys.len(), max_age_secs = max_age.as_secs(), "Azure keys fetched");
        Ok((keys, max_age))
    }
}

#[async_trait::async_trait]
impl keystation_provisioners::KeySource for AzureKeySource {
    async fn fetch(&self) -> Result<TrustedKeys, keystation_provisioners::Error> {
        self.lifetime.keep(&self.discovery, self.fetch_keys().await)
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
    fn keys_carry_the_issuer_and_unusable_ones_are_skipped() {
        let rsa = keystation_jose::PrivateJwk::generate(Algorithm::Rs256).unwrap();
        let mut good: serde_json::Value = serde_json::from_str(&rsa.public().to_json()).unwrap();
        // Microsoft's keys carry x5t and x5c besides n and e, and no alg.
        good.as_object_mut().unwrap().remove("alg");
        good["kid"] = "ms-1".into();
        good["x5t"] = "ms-1".into();
        good["x5c"] = serde_json::json!(["MIIB"]);
        let mut enc = good.clone();
        enc["use"] = "enc".into();
        let jwks = serde_json::json!({"keys": [enc, good]});
        let keys =
            trusted_keys_from_jwks("https://sts.windows.net/t/", jwks.to_string().as_bytes(), "u")
                .unwrap();
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(issuer_of(&keys), Some("https://sts.windows.net/t/"));
        assert!(trusted_keys_from_jwks("i", br#"{"keys":[]}"#, "u").is_err());
        assert_eq!(
            default_discovery_url("contoso.onmicrosoft.com"),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/.well-known/openid-configuration"
        );
    }
}
