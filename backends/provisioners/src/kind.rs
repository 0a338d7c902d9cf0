//! Provisioner types as step-ca names them, and the extension of core's trait that reports
//! them.

use keystation_core::Provisioner;

/// The provisioner types, named as step-ca names them in `ca.json` (a provisioner's
/// `type`), plus keystation's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProvisionerKind {
    /// A static bearer token (keystation's station tokens; defguard's worker token).
    Token,
    /// `JWK`: a token signed by a key the authority holds the public half of.
    Jwk,
    /// `X5C`: a token signed by a key whose certificate chains to configured roots.
    X5c,
    /// `OIDC`: an ID token from an OpenID Connect provider.
    Oidc,
    /// `K8sSA`: a Kubernetes service-account token.
    K8sSa,
    /// `AWS`: an EC2 instance identity document.
    Aws,
    /// `GCP`: a Google Compute Engine instance identity token.
    Gcp,
    /// `Azure`: an Azure managed-identity token.
    Azure,
    /// YubiKey PIV attestation (step-ca's ACME `device-attest-01` with the `step` format).
    YubiKeyAttestation,
}

/// A provisioner of step-ca's model: core's [`Provisioner`] plus its type.
///
/// The kind is step-ca's notion, not an authorizer's, so core's trait does not carry it;
/// an extension trait (rather than a kind stored beside each provisioner in a registry)
/// keeps the two from disagreeing — the implementation that checks JWK tokens is the one
/// that says it is `JWK`. The authority's registry holds `Arc<dyn StepProvisioner>` and,
/// where only authorization matters, hands out `&dyn Provisioner` (trait upcasting).
///
/// A provisioner's claims are not read through this trait: each provisioner is built with
/// its [`EffectiveClaims`](crate::EffectiveClaims), resolved from the layers, and applies
/// them inside [`authorize`](Provisioner::authorize).
pub trait StepProvisioner: Provisioner {
    /// Its type.
    fn kind(&self) -> ProvisionerKind;
}

/// The certificates a duration range applies to, as step-ca's claim names group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    /// X.509 certificates (`…TLSCertDuration`).
    Tls,
    /// SSH user certificates (`…UserSSHCertDuration`).
    SshUser,
    /// SSH host certificates (`…HostSSHCertDuration`).
    SshHost,
}

impl core::fmt::Display for CertificateKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Tls => "TLS",
            Self::SshUser => "SSH user",
            Self::SshHost => "SSH host",
        })
    }
}
