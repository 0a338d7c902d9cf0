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
    /// `SSHPOP`: a token signed by the key of an SSH certificate the authority's SSH CA
    /// issued (renew, rekey and revoke SSH host certificates).
    SshPop,
    /// `ACME`: RFC 8555's protocol at `/acme/{provisioner}/…`; certificates are granted by
    /// the order's validated challenges, never by a token (keystation-acme).
    Acme,
}

impl ProvisionerKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 11] = [
        Self::Token,
        Self::Jwk,
        Self::X5c,
        Self::Oidc,
        Self::K8sSa,
        Self::Aws,
        Self::Gcp,
        Self::Azure,
        Self::YubiKeyAttestation,
        Self::SshPop,
        Self::Acme,
    ];

    /// The `type` of a provisioner of this kind in `ca.json`: step-ca's names (`JWK`, `X5C`,
    /// `SSHPOP`, `OIDC`, `K8sSA`, `AWS`, `GCP`, `Azure`) and keystation's own
    /// (`StaticToken`, `YubiKeyAttestation`).
    pub const fn type_name(self) -> &'static str {
        match self {
            Self::Token => "StaticToken",
            Self::Jwk => "JWK",
            Self::X5c => "X5C",
            Self::Oidc => "OIDC",
            Self::K8sSa => "K8sSA",
            Self::Aws => "AWS",
            Self::Gcp => "GCP",
            Self::Azure => "Azure",
            Self::YubiKeyAttestation => "YubiKeyAttestation",
            Self::SshPop => "SSHPOP",
            Self::Acme => "ACME",
        }
    }

    /// The kind a `ca.json` `type` names; case-insensitive, as step-ca reads it.
    pub fn from_type_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.type_name().eq_ignore_ascii_case(name))
    }
}

impl core::fmt::Display for ProvisionerKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.type_name())
    }
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

    /// Whether its claims refuse renewals (`disableRenewal`), for renewals the authority
    /// decides from the certificate presented rather than through
    /// [`authorize`](Provisioner::authorize). The default says no.
    fn renewal_disabled(&self) -> bool {
        self.effective_claims().is_some_and(|c| c.disable_renewal)
    }

    /// The claims it was built with, resolved, when it has any: the authority bounds a
    /// requested validity with them.
    fn effective_claims(&self) -> Option<&crate::EffectiveClaims> {
        None
    }

    /// Whether a token that says what `peek` shows may be for this provisioner — step-ca's
    /// routing (`LoadByToken`): by default its `iss` is the provisioner's name. OIDC routes
    /// by client ID, K8sSA by its fixed issuer, AWS and GCP by their audience fragment,
    /// Azure by tenant. Only routing: the provisioner then verifies the token.
    fn routes(&self, peek: &crate::TokenPeek) -> bool {
        peek.iss.as_deref() == Some(self.name())
    }

    /// Where the keys its tokens are verified with come from, when it fetches them (an
    /// OpenID provider's JWKS, Google's certificates, a TokenReview); the authority caches
    /// them ([`CachedKeys`](crate::CachedKeys)) and passes them to `authorize`. `None`
    /// (the default) for provisioners whose keys are configured.
    fn key_source(&self) -> Option<std::sync::Arc<dyn crate::KeySource>> {
        None
    }

    /// Its `ca.json` object as `/provisioners` lists it: public keys and step's
    /// `encryptedKey` only, never private material. The default names only `type` and
    /// `name`.
    fn to_json(&self) -> String {
        serde_json::json!({ "type": self.kind().type_name(), "name": self.name() }).to_string()
    }
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
