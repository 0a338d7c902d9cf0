//! The binary crate's one error type.

use std::path::PathBuf;

/// Everything the keystation commands can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A card or reader operation failed.
    #[error(transparent)]
    Card(#[from] keystation_core::Error),
    /// No card, several cards, or PC/SC failed, while choosing the card.
    #[error(transparent)]
    CardChoice(#[from] keystation_cards::Error),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration could not be loaded (the process exits with status 2).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A secret file (PIN, backup passphrase) could not be read.
    #[error("read {what} from {}: {source}", path.display())]
    SecretFile {
        /// Which secret.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The station stopped with an error (`keystation station`).
    #[cfg(feature = "grpc")]
    #[error(transparent)]
    Station(#[from] keystation_station::StationError),
    /// The holder's fields are invalid (`keystation provision`, a station job).
    #[cfg(feature = "openpgp")]
    #[error(transparent)]
    Holder(#[from] keystation_provision::InvalidHolder),
    /// A provisioning run failed (`keystation provision`, a station job).
    #[cfg(feature = "openpgp")]
    #[error(transparent)]
    Provision(#[from] keystation_provision::RunError),
    /// Random PINs would have nowhere to go.
    #[cfg(feature = "openpgp")]
    #[error(
        "pin_policy = random needs a console to show the new PINs on, and this station has \
         no terminal (/dev/tty: {0}); use pin_policy = unattended (the default for the \
         station), or set with user_pin_file and admin_pin_file"
    )]
    NoConsole(std::io::Error),
    /// A `keystation piv` command failed.
    #[cfg(feature = "piv")]
    #[error(transparent)]
    Piv(#[from] keystation_piv_ops::Error),
    /// A `keystation kube` command failed.
    #[cfg(feature = "kube")]
    #[error(transparent)]
    Kube(#[from] keystation_kube::KubeError),
    /// A `keystation authority` command failed.
    #[cfg(feature = "authority")]
    #[error(transparent)]
    Authority(#[from] keystation_authority::Error),
    /// A command was given flags that do not fit together, or a file it needs is missing
    /// (the process exits with status 2).
    #[error("{0}")]
    Usage(String),
    /// `keystation ca token` could not read the instance's identity from its metadata
    /// service.
    #[cfg(any(feature = "iid-aws", feature = "iid-gcp", feature = "iid-azure"))]
    #[error("reading the instance identity from the metadata service: {0}")]
    InstanceIdentity(String),
    /// The software card's state file (`keystation simulate --state`) could not be read,
    /// is corrupt, or could not be written.
    #[cfg(feature = "softcard")]
    #[error(transparent)]
    SimulateState(#[from] keystation_softcard::bridge::StateFileError),
}

impl Error {
    /// Whether the error is the configuration's (the process exits with status 2).
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Config(_) => true,
            Self::Usage(_) => true,
            #[cfg(feature = "grpc")]
            Self::Station(error) => error.is_configuration(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use keystation_core::describe_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("sign: {0}")]
    struct Quoting(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("transport failure")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn errors_are_described_with_their_chain_without_repeats() {
        let error = Quoting(Inner(std::io::Error::other("SCardTransmit failed (0x80100016)")));
        assert_eq!(
            describe_chain(&error),
            "sign: transport failure: SCardTransmit failed (0x80100016)"
        );
    }
}
