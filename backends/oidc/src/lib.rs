//! keystation-oidc: step-ca's `OIDC` provisioner — ID tokens from an OpenID Connect
//! provider, verified with the keys its discovery document names.
//!
//! * [`OidcProvisioner`] reads step-ca's `ca.json` object (`clientID`, `clientSecret`,
//!   `configurationEndpoint`, `tenantID`, `admins`, `domains`, `groups`, `listenAddress`,
//!   `claims`, `options`) plus keystation's `maxTokenLifetime`, routes tokens by client ID
//!   (`azp`, else `aud`), and authorizes purely from the [`TrustedKeys`] its key source
//!   fetched: see its documentation for every check.
//! * [`OidcKeySource`] fetches the discovery document (OpenID Connect Discovery 1.0 §4)
//!   and the JWKS (RFC 7517 §5) with keystation-fetch; the authority caches the answer
//!   for the JWKS's `Cache-Control: max-age` (12 h by default) and refetches, rate
//!   limited, when a token names an unknown `kid`.
//! * [`OidcOptions`] writes the `ca.json` object for `keystation authority provisioner
//!   add`; [`FACTORY`] builds provisioners for the authority's registry.
//!
//! Where keystation is stricter than step-ca (`authority/provisioner/oidc.go`, research
//! note §2 and §7): `exp` is required and the lifetime bounded; an `email` counts only
//! when `email_verified` is `true` and a token with an unverified email is refused; the
//! discovery document must name the issuer it was fetched for (Discovery §4.3) unless a
//! `tenantID` template is in use; an unknown `kid` triggers a refetch (step-ca waits for
//! the cache to expire); admins (by verified email or by `sub`) get their own names, not
//! the CSR's, and SSH host certificates are refused since an ID token names no host.
//!
//! [`TrustedKeys`]: keystation_core::provisioner::TrustedKeys

mod error;
mod keys;
mod provisioner;

use std::sync::Arc;

pub use error::Error;
pub use keys::{
    ALG_STATEMENT, DEFAULT_MAX_AGE, ISSUER_STATEMENT, MAX_MAX_AGE, MIN_MAX_AGE, OidcKeySource,
    WELL_KNOWN, discovery_url, trusted_keys_from_jwks,
};
pub use provisioner::{
    DEFAULT_MAX_ID_TOKEN_LIFETIME, OIDC_OPERATIONS, OidcOptions, OidcProvisioner,
};

use keystation_provisioners::{Factory, ProvisionerContext, ProvisionerKind, StepProvisioner};

fn build(
    json: &str,
    context: &ProvisionerContext,
) -> Result<Arc<dyn StepProvisioner>, keystation_provisioners::Error> {
    Ok(Arc::new(OidcProvisioner::from_json_in(json, context)?))
}

/// Builds `OIDC` provisioners for the authority's registry.
pub const FACTORY: Factory = Factory { kind: ProvisionerKind::Oidc, build };
