//! The crate's one error type: what goes wrong while fetching a provider's keys.
//!
//! Configuration errors are `keystation_provisioners::Error::InvalidProvisioner` (the
//! registry reports every provisioner's configuration the same way); refusals of tokens
//! are core's `Denial`s. What remains is the fetch, whose failures travel as the `source`
//! of `keystation_provisioners::Error::KeyFetch`.

/// A provider's discovery document or JWKS could not be had or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP exchange failed (connection, TLS, status, size, timeout, JSON).
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        /// The URL fetched.
        url: String,
        /// keystation-fetch's account of it.
        reason: String,
    },
    /// The discovery document lacks what OpenID Connect Discovery 1.0 §3 requires of it,
    /// or names another issuer than the one it was fetched for (§4.3).
    #[error("the discovery document at {url} is unusable: {reason}")]
    Discovery {
        /// The discovery URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The JWKS holds no key this crate can verify with.
    #[error("the JWKS at {url} holds no usable signing key ({skipped} skipped)")]
    NoUsableKey {
        /// The `jwks_uri`.
        url: String,
        /// How many keys were skipped (encryption keys, unsupported types, weak RSA).
        skipped: usize,
    },
    /// The JWKS is not `{"keys": [...]}`.
    #[error("the JWKS at {url} is not a JWK set: {reason}")]
    NotAKeySet {
        /// The `jwks_uri`.
        url: String,
        /// Why.
        reason: String,
    },
}
