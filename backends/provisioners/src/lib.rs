//! keystation-provisioners: step-ca's provisioner model behind keystation-core's
//! [`Provisioner`](keystation_core::Provisioner) trait.
//!
//! Core keeps only what every authorizer shares — the trait, the request presented, the
//! trusted keys, the grant and the denial. What makes a provisioner a *step-ca*
//! provisioner lives here, with the authority (DESIGN §4):
//!
//! * [`ProvisionerKind`]: the provisioner types as step-ca's `ca.json` names them in a
//!   provisioner's `type` (`JWK`, `X5C`, `OIDC`, `K8sSA`, `AWS`, `GCP`, `Azure`), plus
//!   keystation's static station token and YubiKey PIV attestation (step-ca's ACME
//!   `device-attest-01` with the `step` format). A provisioner reports its kind through
//!   [`StepProvisioner`], an extension of core's trait.
//! * [`Claims`]: the certificate durations a provisioner allows, step-ca's `claims` object
//!   (`minTLSCertDuration`, `maxTLSCertDuration`, `defaultTLSCertDuration`, the
//!   `…UserSSHCertDuration` and `…HostSSHCertDuration` triples, `disableRenewal`),
//!   layered as step-ca layers them: the built-in `GlobalProvisionerClaims`
//!   ([`Claims::BUILT_IN`]) < `authority.claims` < the provisioner's `claims`, each field
//!   from the nearest level that sets it ([`Claims::over`]). [`Claims::resolve`] gives
//!   the [`EffectiveClaims`], whose [`DurationBounds::pick`] bounds a requested lifetime.
//! * [`KeySource`]: the async fetch of the keys a provisioner trusts (an OIDC provider's
//!   JWKS, Google's certificates, Azure's discovery document). The caller caches each
//!   answer for the source's [`max_age`](KeySource::max_age) and hands it to the pure,
//!   synchronous `authorize` as [`TrustedKeys`](keystation_core::provisioner::TrustedKeys).
//!
//! The provisioners themselves (token, JWK, X5C, OIDC, K8sSA, the cloud instance
//! identities, YubiKey attestation) implement [`Provisioner`](keystation_core::Provisioner)
//! and [`StepProvisioner`]. What each checks, and where keystation is stricter than step-ca,
//! is in `research/step-ca-provisioners.md` (§1–§4).
//!
//! Fallible functions return this crate's single [`Error`]; `authorize` itself returns
//! core's error, whose `Unauthorized` variant carries the [`Denial`](keystation_core::provisioner::Denial).

mod attestation;
mod claims;
mod config;
mod error;
mod extension;
mod jwk;
mod key_source;
mod kind;
mod sshpop;
mod static_token;
pub mod token_checks;
mod x5c;

pub use attestation::{
    AttestationPolicy, AttestationRefusal, YUBIKEY_ATTESTATION_TYPE, YubiKeyAttestationProvisioner,
};
pub use claims::{Claims, DurationBounds, EffectiveClaims};
pub use config::{
    ClaimsJson, ProvisionerContext, check_no_templates, claims_from_json, claims_to_json, common,
    invalid, provisioner_from_json, provisioner_from_json_in, provisioner_from_json_with,
};
pub use error::Error;
pub use extension::{
    BuildProvisioner, CachedKeys, Factory, TOFU_PREFIX, TokenPeek, UNKNOWN_KID_REFETCH_INTERVAL,
    is_tofu_id, tofu_id,
};
pub use jwk::{JWK_OPERATIONS, JwkProvisioner};
pub use key_source::{CacheLifetime, KeySource, usable_keys};
pub use kind::{CertificateKind, ProvisionerKind, StepProvisioner};
pub use sshpop::{SSHPOP_OPERATIONS, SshPopProvisioner};
pub use static_token::{StaticTokenProvisioner, operation_from_name, operation_name};
pub use x5c::{RENEW_TOKEN_ISSUER, X5C_OPERATIONS, X5cProvisioner, verify_x5c_insecure};
