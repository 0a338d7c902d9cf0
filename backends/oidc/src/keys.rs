//! The provider's keys: discovery (OpenID Connect Discovery 1.0 §4), the JWKS it names
//! (RFC 7517 §5), and the [`TrustedKeys`] the pure `authorize` receives.
//!
//! `authorize` does no I/O, so everything it needs from the provider travels in
//! [`TrustedKeys`]:
//!
//! * `keys`: each usable JWK as `(kid, public key)`, in the JWKS's order;
//! * `statements`: `oidc-issuer=<issuer>` — the discovery document's `issuer`, with
//!   `{tenantid}` replaced when the provisioner has a `tenantID` (step-ca's rule) — and
//!   `oidc-alg[<i>]=<ALG>` for each key `i` whose JWK names its algorithm (`alg`,
//!   RFC 7517 §4.4), since a bare RSA public key does not say whether it signs RS256 or
//!   PS256. Keys without `alg` verify under their type's default (RS256 for RSA, the ID
//!   token default of OpenID Connect Core §3.1.3.7; ES256/ES384 by curve; EdDSA).
//!
//! The cache lifetime is the JWKS answer's `Cache-Control: max-age` (step-ca's rule),
//! 12 h when none is given, bounded to [`MIN_MAX_AGE`]..=[`MAX_MAX_AGE`].

use std::time::Duration;

use keystation_core::provisioner::TrustedKeys;
use keystation_fetch::Fetcher;
use keystation_jose::{Algorithm, JwkSet};
use keystation_provisioners::{CacheLifetime, usable_keys};
use serde::Deserialize;

use crate::error::Error;

/// The statement carrying the discovery document's issuer.
pub const ISSUER_STATEMENT: &str = "oidc-issuer=";

/// The prefix of the statement carrying key `i`'s JWK `alg`: `oidc-alg[i]=RS256`.
pub const ALG_STATEMENT: &str = "oidc-alg[";

/// How long keys are cached when the JWKS answer names no `max-age` (step-ca's default).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The shortest cache lifetime: a provider answering `max-age=0` does not make the
/// authority fetch its JWKS for every token.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);

/// The longest cache lifetime, whatever the provider says: a rotated-out key stops being
/// trusted within a day.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The discovery path appended to a `configurationEndpoint` that lacks it (step-ca's rule;
/// OpenID Connect Discovery 1.0 §4).
pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// A `configurationEndpoint` as step-ca completes it: `/.well-known/openid-configuration`
/// appended to the path unless the path already contains it (before any query).
pub fn discovery_url(configuration_endpoint: &str) -> String {
    let (base, query) = match configuration_endpoint.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (configuration_endpoint, None),
    };
    if base.contains(WELL_KNOWN) {
        return configuration_endpoint.to_owned();
    }
    let mut url = format!("{}{WELL_KNOWN}", base.trim_end_matches('/'));
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The issuer a discovery document fetched from `discovery` must name (Discovery §4.3:
/// "MUST be identical"): the URL without `/.well-known/openid-configuration` and any
/// trailing slash.
fn expected_issuer(discovery: &str) -> String {
    let base = discovery.split_once('?').map_or(discovery, |(b, _)| b);
    base.replace(WELL_KNOWN, "").trim_end_matches('/').to_owned()
}

/// The members of a discovery document the provisioner uses (Discovery §3).
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The [`TrustedKeys`] for a provider whose discovery names `issuer`, from its JWKS text.
///
/// Keys that cannot verify signatures are skipped with a log line: encryption keys
/// (`use` other than `sig`), symmetric keys, types or curves keystation-jose does not
/// read, RSA under 2048 bits. A set with no usable key is an error.
pub fn trusted_keys_from_jwks(
    issuer: &str,
    jwks: &[u8],
    jwks_uri: &str,
) -> Result<TrustedKeys, Error> {
    let set = JwkSet::from_json(jwks)
        .map_err(|e| Error::NotAKeySet { url: jwks_uri.to_owned(), reason: e.to_string() })?;
    let keys = usable_keys(jwks_uri, set.into_entries())
        .map_err(|skipped| Error::NoUsableKey { url: jwks_uri.to_owned(), skipped })?;
    let mut statements = vec![format!("{ISSUER_STATEMENT}{issuer}")];
    for (index, jwk) in keys.iter().enumerate() {
        if let Some(alg) = jwk.alg() {
            statements.push(format!("{ALG_STATEMENT}{index}]={}", alg.name()));
        }
    }
    let keys = keys.iter().map(|k| (k.kid().map(str::to_owned), k.public_key().clone()));
    Ok(TrustedKeys { keys: keys.collect(), statements, ..TrustedKeys::default() })
}

/// What `authorize` reads back from [`TrustedKeys::statements`].
#[derive(Debug, Default)]
pub(crate) struct Statements<'k> {
    pub(crate) issuer: Option<&'k str>,
    algs: Vec<(usize, Algorithm)>,
}

impl<'k> Statements<'k> {
    pub(crate) fn read(keys: &'k TrustedKeys) -> Self {
        let mut out = Self::default();
        for statement in &keys.statements {
            if let Some(issuer) = statement.strip_prefix(ISSUER_STATEMENT) {
                out.issuer = Some(issuer);
            } else if let Some(rest) = statement.strip_prefix(ALG_STATEMENT)
                && let Some((index, alg)) = rest.split_once("]=")
                && let Ok(index) = index.parse()
                && let Ok(alg) = Algorithm::from_name(alg)
            {
                out.algs.push((index, alg));
            }
        }
        out
    }

    /// The algorithm key `index` verifies under: its JWK's `alg`, else its type's default.
    pub(crate) fn algorithm(
        &self,
        index: usize,
        key: &keystation_core::key::PublicKey,
    ) -> Option<Algorithm> {
        self.algs
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, a)| *a)
            .or_else(|| Algorithm::default_for(key))
    }
}

/// Fetches a provider's discovery document, then its JWKS, with keystation-fetch.
pub struct OidcKeySource {
    fetcher: Fetcher,
    discovery: String,
    tenant_id: Option<String>,
    lifetime: CacheLifetime,
}

impl std::fmt::Debug for OidcKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcKeySource")
            .field("discovery", &self.discovery)
            .field("tenant_id", &self.tenant_id)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl OidcKeySource {
    /// A source reading the discovery document at `discovery` (already completed with
    /// [`discovery_url`]) through `fetcher`; `tenant_id` replaces `{tenantid}` in the
    /// issuer it names.
    pub fn new(fetcher: Fetcher, discovery: String, tenant_id: Option<String>) -> Self {
        Self {
            fetcher,
            discovery,
            tenant_id,
            lifetime: CacheLifetime::new(DEFAULT_MAX_AGE, MIN_MAX_AGE, MAX_MAX_AGE),
        }
    }

    /// The discovery URL.
    pub fn discovery(&self) -> &str {
        &self.discovery
    }

    /// Discovery, then the JWKS; the issuer with `{tenantid}` replaced.
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
        let unusable = |reason: String| Error::Discovery { url: self.discovery.clone(), reason };
        if discovery.issuer.is_empty() {
            return Err(unusable("issuer is empty".into()));
        }
        if discovery.jwks_uri.is_empty() {
            return Err(unusable("jwks_uri is empty".into()));
        }
        let issuer = match &self.tenant_id {
            Some(tenant) => discovery.issuer.replace("{tenantid}", tenant),
            None => {
                // Discovery §4.3: the issuer is the URL the document was fetched for. A
                // tenant template ({tenantid}, Microsoft's "common" endpoints) cannot match
                // and is taken as step-ca takes it.
                let expected = expected_issuer(&self.discovery);
                if discovery.issuer.trim_end_matches('/') != expected {
                    return Err(unusable(format!(
                        "it names issuer {:?}, but was fetched for {expected:?}",
                        discovery.issuer
                    )));
                }
                discovery.issuer.clone()
            }
        };
        let response = self
            .fetcher
            .send(
                keystation_fetch::Method::Get,
                &discovery.jwks_uri,
                &[("accept", "application/jwk-set+json, application/json")],
                None,
            )
            .await
            .map_err(|e| fetch_error(&discovery.jwks_uri, e))?;
        let keys = trusted_keys_from_jwks(&issuer, &response.body, &discovery.jwks_uri)?;
        let max_age = self.lifetime.of(response.max_age);
        tracing::debug!(
            discovery = %self.discovery,
            jwks_uri = %discovery.jwks_uri,
            keys = keys.keys.len(),
            max_age_secs = max_age.as_secs(),
            "OIDC keys fetched"
        );
        Ok((keys, max_age))
    }
}

#[async_trait::async_trait]
impl keystation_provisioners::KeySource for OidcKeySource {
    async fn fetch(&self) -> Result<TrustedKeys, keystation_provisioners::Error> {
        self.lifetime.keep(&self.discovery, self.fetch_keys().await)
    }

    fn max_age(&self) -> Duration {
        self.lifetime.get()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_are_completed_as_step_ca_does() {
        assert_eq!(
            discovery_url("https://accounts.google.com"),
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example/realms/x/"),
            "https://idp.example/realms/x/.well-known/openid-configuration"
        );
        let full = "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration";
        assert_eq!(discovery_url(full), full);
        assert_eq!(
            discovery_url("https://idp.example/t?appid=1"),
            "https://idp.example/t/.well-known/openid-configuration?appid=1"
        );
        assert_eq!(expected_issuer(full), "https://login.microsoftonline.com/common/v2.0");
        assert_eq!(expected_issuer(&discovery_url("https://a.example/")), "https://a.example");
    }

    #[test]
    fn unusable_keys_are_skipped_and_algorithms_kept() {
        let es = keystation_jose::PrivateJwk::generate(Algorithm::Es256).unwrap();
        let mut es_json: serde_json::Value = serde_json::from_str(&es.public().to_json()).unwrap();
        es_json["kid"] = "ec".into();
        es_json["alg"] = "ES256".into();
        let jwks = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "use": "enc", "kid": "enc"},
            es_json,
        ]});
        let keys = trusted_keys_from_jwks("https://idp.example", jwks.to_string().as_bytes(), "u")
            .unwrap();
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].0.as_deref(), Some("ec"));
        let statements = Statements::read(&keys);
        assert_eq!(statements.issuer, Some("https://idp.example"));
        assert_eq!(statements.algorithm(0, &keys.keys[0].1), Some(Algorithm::Es256));

        let none = serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        let e = trusted_keys_from_jwks("i", none.to_string().as_bytes(), "u").unwrap_err();
        assert!(matches!(e, Error::NoUsableKey { skipped: 1, .. }), "{e}");
        assert!(matches!(trusted_keys_from_jwks("i", b"[]", "u"), Err(Error::NotAKeySet { .. })));
    }
}
