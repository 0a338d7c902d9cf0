//! keystation-authority: the certificate authority's service — step-ca's HTTP API over
//! rustls, defguard's `WorkerService` for provisioning stations, the provisioner registry
//! and the admin API — on the store (`keystation-store`), the CA (`keystation-ca`) and the
//! provisioners (`keystation-provisioners`).
//!
//! * [`layout`]: the state directory, laid out as step's `$STEPPATH` (`certs/`,
//!   `secrets/`, `config/`, `db/`), so clients built on smallstep's library find the CA
//!   from `config/defaults.json` exactly as they find step-ca.
//! * [`init`]: `keystation authority init` — root and intermediate CA (the intermediate key
//!   in a password-protected file or behind any [`Signer`](keystation_core::keygen::Signer),
//!   such as a PIV slot), the SSH CAs, the first JWK provisioner with its `encryptedKey`.
//! * [`Authority`]: the loaded CA and registry; [`serve`] runs the HTTPS API and the gRPC
//!   worker service until stopped.
//! * [`api`]: the HTTP routes, each at step-ca's unversioned path and under `/1.0`.
//! * [`worker`]: defguard's worker protocol (both protobuf packages) served from the store.
//! * `acme` (feature `acme`): RFC 8555 at `/acme/{provisioner}/…`, for every provisioner of
//!   type `ACME`, its challenges validated as `[acme]` in the configuration says.
//!
//! Every refusal is answered with step-ca's error document (`{"status", "message"}`) whose
//! message says which check failed, and logged once with the provisioner and the reason;
//! tokens, keys and passwords never reach a log.

#[cfg(feature = "acme")]
mod acme;
#[cfg(feature = "acme")]
pub mod acme_admin;
pub mod api;
mod authority;
mod config;
mod error;
pub mod init;
pub mod layout;
#[cfg(feature = "piv-key")]
pub mod piv_key;
pub mod provisioner_config;
mod registry;
mod serve;
pub mod text;
mod tls;
pub mod worker;

pub use self::authority::{Authority, job_json};
pub use self::config::{
    AcmeSettings, AuthorityConfig, DEFAULT_MAX_TOKEN_LIFETIME, IntermediateKey,
};
pub use self::error::Error;
pub use self::registry::Registry;
pub use self::serve::{Running, serve, serve_until_signalled};
