//! keystation-iid-azure: step-ca's `Azure` provisioner — managed-identity access tokens
//! from an Azure VM's instance metadata service — and the client that reads them.
//!
//! * [`AzureProvisioner`]: verifies the token against the tenant's JWK set and the
//!   provisioner's filters, and grants the VM's own name once per instance (trust on first
//!   use from **verified** claims). Its doc comment lists every check and where keystation
//!   is stricter than step-ca (research note §2, §7).
//! * [`parse_resource_id`]: `xms_mirid` / `xms_az_rid` parsed exactly.
//! * [`AzureKeySource`]: the tenant's discovery document and JWK set (`openidConfigUrl`).
//! * [`identity_token`]: what `step ca token --provisioner <azure>` sends.
//! * [`FACTORY`]: builds the provisioner from its `ca.json` object for the authority.

mod client;
mod error;
mod keys;
mod provisioner;
mod resource;

use std::sync::Arc;

pub use client::{
    DEFAULT_METADATA_BASE, TOKEN_API_VERSION, TOKEN_PATH, identity_token, query_escape,
    resource_for_environment,
};
pub use error::Error;
pub use keys::{
    AzureKeySource, DEFAULT_MAX_AGE, ISSUER_STATEMENT, LOGIN_BASE, MAX_MAX_AGE, MIN_MAX_AGE,
    default_discovery_url, issuer_of, trusted_keys_from_jwks,
};
pub use provisioner::{
    AZURE_OPERATIONS, AzureOptions, AzureProvisioner, DEFAULT_AUDIENCE, DEFAULT_MAX_TOKEN_LIFETIME,
    LONGEST_TOKEN_LIFETIME,
};
pub use resource::{ResourceId, ResourceKind, parse_resource_id};

use keystation_provisioners::{Factory, ProvisionerContext, ProvisionerKind, StepProvisioner};

fn build(
    json: &str,
    context: &ProvisionerContext,
) -> Result<Arc<dyn StepProvisioner>, keystation_provisioners::Error> {
    Ok(Arc::new(AzureProvisioner::from_json_in(json, context)?))
}

/// Builds `Azure` provisioners for the authority's registry.
pub const FACTORY: Factory = Factory { kind: ProvisionerKind::Azure, build };
