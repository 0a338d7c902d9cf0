//! step-ca's provisioner model over core's trait: a provisioner built with its resolved
//! claims, held as a `StepProvisioner` and used as core's `Provisioner`.
#![allow(clippy::panic)]
use std::sync::Arc;
use std::time::SystemTime;

use keystation_core::Error;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};

use keystation_core::Provisioner;
use keystation_provisioners::{Claims, EffectiveClaims, ProvisionerKind, StepProvisioner};

/// A minimal static-token provisioner built with its resolved claims: it issues the
/// default TLS lifetime and refuses renewals when the claims disable them.
struct StaticToken {
    claims: EffectiveClaims,
}

impl Provisioner for StaticToken {
    fn name(&self) -> &str {
        "station"
    }
    fn authorize(&self, r: &Request<'_>, _: &TrustedKeys, now: SystemTime) -> Result<Grant, Error> {
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
    let (audience, token) = ("https://ca.example/1.0/sign", Credential::Token("s3cret"));
    let mut request =
        Request { credential: token, operation: Operation::SignX509, audience, subject_key: None };
    let grant = provisioner.authorize(&request, &TrustedKeys::default(), now);
    let Ok(grant) = grant else { panic!("{grant:?}") };
    assert_eq!(grant.not_after.duration_since(grant.not_before).ok(), Some(claims.tls.default));
    assert_eq!(grant.provisioner, "station");

    request.operation = Operation::RenewX509;
    let denied = provisioner.authorize(&request, &TrustedKeys::default(), now);
    assert!(matches!(denied, Err(Error::Unauthorized(Denial::OperationNotAllowed))));
}
