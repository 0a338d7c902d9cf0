//! The crate's one error type.

use std::time::Duration;

use crate::kind::CertificateKind;

/// Everything that can fail in step-ca's provisioner model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Claims whose resolved duration range is zero or disordered.
    #[error(
        "invalid claims: {certificates} certificate durations must satisfy \
         0 < min <= default <= max, but min is {min:?}, default {default:?}, max {max:?}"
    )]
    InvalidClaims {
        /// The certificates whose range is wrong.
        certificates: CertificateKind,
        /// The resolved shortest lifetime.
        min: Duration,
        /// The resolved default lifetime.
        default: Duration,
        /// The resolved longest lifetime.
        max: Duration,
    },
    /// A provisioner's configuration is unusable; `reason` names the field.
    #[error("provisioner {name:?}: {reason}")]
    InvalidProvisioner {
        /// The provisioner's name (empty when the configuration did not parse so far).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A key source could not fetch the keys it serves; `source` says why (error reports
    /// walk the `source` chain to show it).
    #[error("fetching trusted keys from {location} failed")]
    KeyFetch {
        /// Where the keys were fetched from (a URL).
        location: String,
        /// The fetch's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_fetch_errors_name_the_location_and_keep_the_cause() {
        let e = Error::KeyFetch {
            location: "https://accounts.example/jwks".into(),
            source: Box::new(std::io::Error::other("connection refused")),
        };
        assert_eq!(
            e.to_string(),
            "fetching trusted keys from https://accounts.example/jwks failed"
        );
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("connection refused"));
    }
}
