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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use keystation_core::Error;
    use keystation_core::provisioner::{
        Credential, Denial, Grant, Operation, Request, TrustedKeys,
    };

    use super::*;
    use crate::{Claims, EffectiveClaims};

    /// A minimal static-token provisioner built with its resolved claims: it issues the
    /// default TLS lifetime and refuses renewals when the claims disable them.
    struct StaticToken {
        claims: EffectiveClaims,
    }

    impl Provisioner for StaticToken {
        fn name(&self) -> &str {
            "station"
        }
        fn authorize(
            &self,
            r: &Request<'_>,
            _: &TrustedKeys,
            now: SystemTime,
        ) -> Result<Grant, Error> {
            let Credential::Token("s3cret") = r.credential else {
                return Err(Denial::BadSignature.into());
            };
            if r.operation == Operation::RenewX509 && self.claims.disable_renewal {
                return Err(Denial::OperationNotAllowed.into());
            }
            let lifetime = self.claims.tls.pick(None)?;
            Ok(Grant {
                provisioner: self.name().into(),
                subject: "station-1".into(),
                sans: vec![],
                not_before: now,
                not_after: now + lifetime,
                operations: vec![r.operation],
                replay_id: None,
            })
        }
    }

    impl StepProvisioner for StaticToken {
        fn kind(&self) -> ProvisionerKind {
            ProvisionerKind::Token
        }
    }

    /// `StepProvisioner` is object-safe, and its trait objects upcast to core's
    /// `dyn Provisioner`, which is what the authority's registry relies on.
    #[test]
    fn step_provisioners_are_object_safe_and_upcast_to_core_provisioners() {
        let authority = Claims { disable_renewal: Some(true), ..Default::default() };
        let Ok(claims) = Claims::default().over(&authority).resolve() else {
            panic!("built-in claims under a renewal-disabling authority resolve")
        };
        let registry: Vec<Arc<dyn StepProvisioner>> = vec![Arc::new(StaticToken { claims })];
        assert_eq!(registry[0].kind(), ProvisionerKind::Token);

        let provisioner: Arc<dyn Provisioner> = registry[0].clone();
        let now = SystemTime::UNIX_EPOCH;
        let mut request = Request {
            credential: Credential::Token("s3cret"),
            operation: Operation::SignX509,
            audience: "https://ca.example/sign",
            subject_key: None,
        };
        let grant = provisioner.authorize(&request, &TrustedKeys::default(), now);
        let Ok(grant) = grant else { panic!("{grant:?}") };
        assert_eq!(grant.not_after.duration_since(grant.not_before).ok(), Some(claims.tls.default));
        assert_eq!(grant.provisioner, "station");

        request.operation = Operation::RenewX509;
        let denied = provisioner.authorize(&request, &TrustedKeys::default(), now);
        assert!(matches!(denied, Err(Error::Unauthorized(Denial::OperationNotAllowed))));
    }
}
