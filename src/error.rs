//! The binary crate's one error type.

/// Everything the keystation commands can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A card or reader operation failed.
    #[error(transparent)]
    Card(#[from] keystation_core::Error),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration could not be loaded (the process exits with status 2).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The station stopped with an error (`keystation station`).
    #[cfg(feature = "grpc")]
    #[error(transparent)]
    Station(#[from] crate::station::StationError),
    /// A provisioning run failed (`keystation provision`).
    #[cfg(feature = "openpgp")]
    #[error(transparent)]
    Provision(#[from] crate::provision::run::RunError),
    /// The software card's state file (`keystation simulate --state`) could not be read,
    /// is corrupt, or could not be written.
    #[cfg(feature = "softcard")]
    #[error("software card state file {}: {reason}", path.display())]
    SimulateState {
        /// The state file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}
