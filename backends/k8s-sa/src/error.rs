//! The crate's one error type: what can fail around a TokenReview. Configuration errors
//! are `keystation_provisioners::Error::InvalidProvisioner` (what the authority's
//! registry reports for every type); a failed review reaches the authority as
//! `keystation_provisioners::Error::KeyFetch` with one of these (or the HTTP client's
//! error) as its source.

use std::path::PathBuf;

/// What went wrong asking the API server about a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authority's own service-account token, which it calls TokenReview with, cannot
    /// be read.
    #[error("cannot read the bearer token file {}", path.display())]
    BearerTokenFile {
        /// The file (`tokenReview.bearerTokenFile`).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bearer token file holds no token.
    #[error("the bearer token file {} is empty", path.display())]
    EmptyBearerToken {
        /// The file.
        path: PathBuf,
    },
    /// The API server's answer is not a `TokenReview` (authentication.k8s.io/v1).
    #[error("the TokenReview answer is malformed: {0}")]
    MalformedReview(String),
}
