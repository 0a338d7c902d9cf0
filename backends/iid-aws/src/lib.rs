//! The AWS provisioner: EC2 instance identity documents (RSA and PKCS#7 signatures), and
//! the client that reads them from the metadata service.
//!
//! * [`AwsProvisioner`]: step-ca's `AWS` provisioner type (`authority/provisioner/aws.go`),
//!   made stricter where research note §7–§8 says step-ca is lax — `exp` required and
//!   bounded, the names certified limited to what the token says, the RSA-2048 PKCS#7
//!   form accepted besides the RSA `/signature`, and the trust-on-first-use record keyed
//!   on the verified instance ID. The checks and the token's format are in
//!   [`provisioner`]'s documentation.
//! * [`identity_token`]: the token `step ca token --provisioner aws` makes, from the
//!   metadata service (IMDSv2) at a configurable address.
//! * [`FACTORY`]: builds the provisioner from its `ca.json` object for the authority.
//!
//! The embedded certificates are step-ca's per-region bundle (`certs/aws_certificates.pem`,
//! 33 RSA-1024 "RSA format" certificates, one per region) and AWS's RSA-2048 us-east-1
//! certificate (`certs/rsa2048_use1.pem`); `iidRoots` replaces them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod client;
mod document;
mod error;
pub mod pkcs7;
pub mod provisioner;
mod trust;

use std::sync::Arc;

pub use client::{DEFAULT_METADATA_URL, IdentityTokenOptions, SignatureForm, identity_token};
pub use document::IdentityDocument;
pub use error::Error;
pub use provisioner::{AWS_ISSUER, AWS_OPERATIONS, AwsOptions, AwsProvisioner, MAX_TOKEN_LENGTH};

use keystation_provisioners::{Factory, ProvisionerContext, ProvisionerKind, StepProvisioner};

fn build(
    json: &str,
    context: &ProvisionerContext,
) -> Result<Arc<dyn StepProvisioner>, keystation_provisioners::Error> {
    Ok(Arc::new(AwsProvisioner::from_json_in(json, context)?))
}

/// Builds `AWS` provisioners from their `ca.json` objects.
pub const FACTORY: Factory = Factory { kind: ProvisionerKind::Aws, build };

/// Makes step's AWS token (HS256 keyed with `key`, the document's signature or PKCS#7
/// bytes) over `payload` JSON. For tests and tools that build tokens from documents they
/// hold; [`identity_token`] is the client.
pub fn sign_token(key: &[u8], payload: &[u8]) -> String {
    client::sign_hs256(key, payload)
}
