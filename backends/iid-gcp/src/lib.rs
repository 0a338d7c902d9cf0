//! keystation-iid-gcp: step-ca's `GCP` provisioner — Google Compute Engine instance
//! identity tokens
//! (<https://cloud.google.com/compute/docs/instances/verifying-instance-identity>) — and the
//! client that reads them from the metadata server.
//!
//! * [`GcpProvisioner`]: verifies the token against Google's JWK set and the provisioner's
//!   filters, and grants the instance's own names once per instance (trust on first use
//!   from **verified** claims). Its doc comment lists every check and where keystation is
//!   stricter than step-ca (research note §2, §7).
//! * [`GoogleKeySource`]: fetches and caches Google's JWK set (`certsUrl`).
//! * [`identity_token`]: what `step ca token --provisioner <gcp>` sends.
//! * [`FACTORY`]: builds the provisioner from its `ca.json` object for the authority.

mod client;
mod error;
mod keys;
mod provisioner;

use std::sync::Arc;

pub use client::{
    DEFAULT_METADATA_BASE, IDENTITY_PATH, identity_token, query_escape, sign_audience,
};
pub use error::Error;
pub use keys::{
    DEFAULT_MAX_AGE, GOOGLE_CERTS_URL, GoogleKeySource, MAX_MAX_AGE, MIN_MAX_AGE,
    trusted_keys_from_jwks,
};
pub use provisioner::{
    DEFAULT_MAX_TOKEN_LIFETIME, GCP_OPERATIONS, GOOGLE_ISSUER, GcpOptions, GcpProvisioner,
    LONGEST_TOKEN_LIFETIME,
};

use keystation_provisioners::{Factory, ProvisionerContext, ProvisionerKind, StepProvisioner};

fn build(
    json: &str,
    context: &ProvisionerContext,
) -> Result<Arc<dyn StepProvisioner>, keystation_provisioners::Error> {
    Ok(Arc::new(GcpProvisioner::from_json_in(json, context)?))
}

/// Builds `GCP` provisioners for the authority's registry.
pub const FACTORY: Factory = Factory { kind: ProvisionerKind::Gcp, build };
