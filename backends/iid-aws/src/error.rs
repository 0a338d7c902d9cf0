//! The crate's one error type.

/// What can fail outside `authorize` (whose refusals are core's `Unauthorized` with a
/// [`Denial`](keystation_core::provisioner::Denial)): reading certificates, and the
/// client's conversation with the metadata service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A certificate bundle that cannot be used as identity-document roots.
    #[error("identity document certificates: {0}")]
    Certificates(String),
    /// The instance metadata service could not be read.
    #[error("instance metadata service: {0}")]
    Metadata(String),
    /// What the metadata service answered is not an identity document and signature.
    #[error("instance identity document: {0}")]
    Document(String),
}
