//! The crate's one error type (the key source and the client; configuration errors are
//! keystation-provisioners' `InvalidProvisioner`, as the factory returns them).

/// What can fail fetching a tenant's keys or an instance's managed-identity token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fetch failed (connection, TLS, status, size, timeout).
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// keystation-fetch's error, as text.
        reason: String,
    },
    /// The answer is not a JWK set.
    #[error("{url} did not answer with a JWK set: {reason}")]
    NotAKeySet {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The JWK set holds no RSA signing key keystation can use.
    #[error("{url} holds no usable RSA signing key ({skipped} skipped)")]
    NoUsableKey {
        /// The URL.
        url: String,
        /// How many keys were skipped.
        skipped: usize,
    },
    /// The metadata server's answer is not an identity token.
    #[error("the metadata server at {url} did not answer with a managed-identity token: {reason}")]
    NotAToken {
        /// The URL (without the query).
        url: String,
        /// Why.
        reason: String,
    },
    /// The discovery document is unusable (no issuer, no `jwks_uri`).
    #[error("the discovery document at {url} is unusable: {reason}")]
    Discovery {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}
