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
    /// A `keystation piv` command failed.
    #[cfg(feature = "piv")]
    #[error(transparent)]
    Piv(#[from] crate::piv_cmd::PivCmdError),
    /// A `keystation kube` command failed.
    #[cfg(feature = "kube")]
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
    /// The kubeconfig could not be read or written.
    #[cfg(feature = "kube")]
    #[error(transparent)]
    Kubeconfig(#[from] keystation_kubeconfig::Error),
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

/// An error and its chain of causes as one line, `outer: cause: root cause`. A cause whose
/// text the line already holds (an error that prints its source itself) is not repeated.
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[derive(Debug, thiserror::Error)]
    #[error("sign: {0}")]
    struct Quoting(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("transport failure")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn describe_walks_the_chain_without_repeating_itself() {
        let error = Quoting(Inner(std::io::Error::other("SCardTransmit failed (0x80100016)")));
        assert_eq!(describe(&error), "sign: transport failure: SCardTransmit failed (0x80100016)");
    }
}
