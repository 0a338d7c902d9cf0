//! The crate's error, and the answers the API gives for refusals.

use std::path::PathBuf;

/// Why an authority operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `init` found an authority already there.
    #[error("{} already exists: refusing to overwrite an authority", .0.display())]
    AlreadyInitialized(PathBuf),
    /// The settings are wrong.
    #[error("authority configuration: {0}")]
    Config(String),
    /// A listening socket could not be opened.
    #[error("listening on {address}: {source}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
    /// The CA failed (keys, issuance).
    #[error(transparent)]
    Ca(#[from] keystation_ca::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] keystation_store::Error),
    /// A JOSE object could not be made or read.
    #[error(transparent)]
    Jose(#[from] keystation_jose::Error),
    /// A provisioner's configuration is wrong.
    #[error(transparent)]
    Provisioner(#[from] keystation_provisioners::Error),
    /// A certificate could not be parsed.
    #[error(transparent)]
    X509(#[from] keystation_x509::Error),
    /// No provisioner has that name.
    #[error("no provisioner named {0:?}")]
    NoSuchProvisioner(String),
    /// The card holding the intermediate key failed.
    #[error("the intermediate key's card: {0}")]
    Card(String),
    /// The server stopped with an error.
    #[error("server: {0}")]
    Serve(String),
}
