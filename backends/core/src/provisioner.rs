//! The [`Provisioner`] trait: decide whether a certificate request is authorized, and the
//! types its signature names — the [`Request`] (a [`Credential`], the [`Operation`], the
//! audience, the subject key), the [`TrustedKeys`] it is checked against, and the answer, a
//! [`Grant`] or a [`Denial`].
//!
//! Verification is pure and synchronous: a provisioner gets the request, the keys it trusts
//! and the current time, and answers — so it is testable and fuzzable without a runtime or
//! network. Everything else of step-ca's provisioner model lives in `keystation-provisioners`
//! with the authority, not here: the provisioner types as `ca.json` names them, the claims
//! (certificate durations) and their layering, and the async, cached key sources that fetch
//! the [`TrustedKeys`] (a JWKS, cloud certificates) before `authorize` is called.

use std::time::SystemTime;

use crate::error::Error;
use crate::key::PublicKey;

/// What a request wants to do with the grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Issue an X.509 certificate.
    SignX509,
    /// Renew an X.509 certificate.
    RenewX509,
    /// Revoke an X.509 certificate.
    RevokeX509,
    /// Issue an SSH user certificate.
    SignSshUser,
    /// Issue an SSH host certificate.
    SignSshHost,
    /// Issue an X.509 certificate for a new key in place of a current one (`/1.0/rekey`).
    RekeyX509,
    /// Renew an SSH certificate (`/1.0/ssh/renew`, SSHPOP).
    RenewSsh,
    /// Issue an SSH certificate for a new key in place of a current one (`/1.0/ssh/rekey`).
    RekeySsh,
    /// Revoke an SSH certificate (`/1.0/ssh/revoke`).
    RevokeSsh,
    /// Take provisioning jobs as a station (defguard's `WorkerService`).
    TakeJobs,
    /// Use the authority's admin API (`/admin/…`) as the grant's subject.
    Administer,
}

/// The credential presented with a request.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Credential<'a> {
    /// A bearer token (a JWT for JWK, X5C, OIDC, K8sSA and cloud identities).
    Token(&'a str),
    /// A YubiKey PIV attestation: the slot's attestation certificate and the card's
    /// attestation-key (`F9`) certificate, both DER.
    Attestation {
        /// Attestation certificate for the slot key, signed by the `F9` key.
        slot_certificate: &'a [u8],
        /// Certificate of the `F9` key, signed by the vendor's attestation CA.
        intermediate: &'a [u8],
    },
}

/// A request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The credential.
    pub credential: Credential<'a>,
    /// The operation wanted.
    pub operation: Operation,
    /// The audience the credential must name: this authority's URL for the operation.
    pub audience: &'a str,
    /// The public key that will be certified, when the request has one (a CSR's key).
    /// Attestation provisioners require it to be the attested key.
    pub subject_key: Option<&'a PublicKey>,
}

/// Keys and certificates a provisioner trusts, configured or fetched beforehand (by
/// `keystation-provisioners`' key sources, which are async and cached); `authorize` takes
/// them as input so that it does no I/O itself.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    /// Verification keys with their key IDs (`kid`), e.g. from a JWKS.
    pub keys: Vec<(Option<String>, PublicKey)>,
    /// DER certificates (roots, or a cloud's identity-document certificates).
    pub certificates: Vec<Vec<u8>>,
    /// What a trusted third party said about this very credential, asked beforehand over
    /// an authenticated channel: a Kubernetes API server's `TokenReview` status (JSON) for
    /// a service-account token it alone can verify. Empty for credentials that are
    /// verified with keys.
    pub statements: Vec<String>,
}

/// Why a request was refused. Deliberately coarse towards clients (the service maps all
/// of these to one "unauthorized" answer); precise in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Denial {
    /// The credential cannot be parsed.
    Malformed,
    /// No trusted key matches the credential's key ID.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// The credential names another issuer.
    WrongIssuer,
    /// The credential names another audience.
    WrongAudience,
    /// The credential has no expiry (`exp`); keystation requires one.
    MissingExpiry,
    /// The credential has expired.
    Expired,
    /// The credential is not valid yet.
    NotYetValid,
    /// The credential's lifetime is longer than the provisioner allows.
    LifetimeTooLong,
    /// A single-use credential was already used.
    Replayed,
    /// The certificate chain does not lead to a trusted root.
    UntrustedChain,
    /// The credential is valid but the provisioner's policy forbids the request
    /// (accounts, domains, firmware, PIN/touch policy, subject key mismatch).
    PolicyViolation,
    /// The provisioner does not allow this operation.
    OperationNotAllowed,
    /// The requested validity falls outside the provisioner's claims.
    ValidityOutOfBounds,
}

impl core::fmt::Display for Denial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed credential",
            Self::UnknownKey => "unknown signing key",
            Self::BadSignature => "signature does not verify",
            Self::WrongIssuer => "wrong issuer",
            Self::WrongAudience => "wrong audience",
            Self::MissingExpiry => "credential has no expiry",
            Self::Expired => "credential expired",
            Self::NotYetValid => "credential not yet valid",
            Self::LifetimeTooLong => "credential lifetime too long",
            Self::Replayed => "credential already used",
            Self::UntrustedChain => "certificate chain not trusted",
            Self::PolicyViolation => "request violates provisioner policy",
            Self::OperationNotAllowed => "operation not allowed by this provisioner",
            Self::ValidityOutOfBounds => "requested validity outside the allowed range",
        })
    }
}

/// What an authorized request may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Name of the provisioner that authorized the request.
    pub provisioner: String,
    /// The subject (certificate CN, SSH key ID).
    pub subject: String,
    /// Subject alternative names (DNS names, IPs, e-mails, URIs) or SSH principals.
    pub sans: Vec<String>,
    /// Start of the certificate's validity.
    pub not_before: SystemTime,
    /// End of the certificate's validity.
    pub not_after: SystemTime,
    /// Operations this grant allows.
    pub operations: Vec<Operation>,
    /// An identifier that makes a single-use credential single-use (step-ca's `jti`, or
    /// a hash of the token); the caller records it only after the grant is issued.
    pub replay_id: Option<String>,
}

/// Decides whether requests are authorized.
///
/// Only what every authorizer needs is here: a name and [`authorize`](Self::authorize).
/// step-ca's model — the provisioner's type (`JWK`, `OIDC`, …), its claims — is not: it
/// belongs to the authority's configuration, and `keystation-provisioners` carries it in an
/// extension trait (`StepProvisioner: Provisioner`). The authority's registry can hold that
/// trait object and still hand out `&dyn Provisioner`.
///
/// # Contract
///
/// * [`authorize`](Provisioner::authorize) is pure: same inputs, same answer; no I/O, no
///   clock reads (`now` is given), no interior state changes. Keys come in as
///   [`TrustedKeys`], fetched beforehand.
/// * Every check runs on verified data: claims are looked at only after the signature
///   verified, and a single-use slot is spent by the caller only after a `Grant` came
///   back (so a forged credential cannot burn a victim's slot).
/// * An expiry is required and its distance from the issue time bounded; the audience is
///   checked for every kind of credential.
/// * Refusals are [`Error::Unauthorized`] with a [`Denial`] saying which check failed.
/// * The returned validity already lies within the lifetimes the provisioner allows.
pub trait Provisioner: Send + Sync {
    /// The provisioner's unique name (step-ca's `name`).
    fn name(&self) -> &str;

    /// Authorizes `request` at time `now` with the trusted `keys`.
    fn authorize(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: std::time::Duration = std::time::Duration::from_secs(3600);

    /// The trait is object-safe and usable as `Arc<dyn Provisioner>`, as the authority's
    /// registry holds it; a minimal static-token provisioner shows the contract's shape.
    #[test]
    fn provisioners_are_object_safe_and_answer_with_grants_or_denials() {
        struct StaticToken;
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
                match r.credential {
                    Credential::Token("s3cret") if r.audience == "https://ca.example/sign" => {
                        Ok(Grant {
                            provisioner: self.name().into(),
                            subject: "station-1".into(),
                            sans: vec![],
                            not_before: now,
                            not_after: now + H,
                            operations: vec![Operation::SignX509],
                            replay_id: None,
                        })
                    }
                    Credential::Token("s3cret") => Err(Denial::WrongAudience.into()),
                    _ => Err(Error::Unauthorized(Denial::BadSignature)),
                }
            }
        }
        let registry: Vec<std::sync::Arc<dyn Provisioner>> = vec![std::sync::Arc::new(StaticToken)];
        let now = SystemTime::UNIX_EPOCH;
        let mut request = Request {
            credential: Credential::Token("s3cret"),
            operation: Operation::SignX509,
            audience: "https://ca.example/sign",
            subject_key: None,
        };
        let grant = registry[0].authorize(&request, &TrustedKeys::default(), now);
        assert_eq!(
            grant.map(|g| (g.provisioner, g.subject)).ok(),
            Some(("station".into(), "station-1".into()))
        );
        request.audience = "https://elsewhere/sign";
        let denied = registry[0].authorize(&request, &TrustedKeys::default(), now);
        assert!(matches!(denied, Err(Error::Unauthorized(Denial::WrongAudience))));
        request.credential = Credential::Token("guess");
        let denied = registry[0].authorize(&request, &TrustedKeys::default(), now);
        assert_eq!(
            denied.map_err(|e| e.to_string()),
            Err("unauthorized: signature does not verify".to_string())
        );
        assert_eq!(Denial::WrongAudience.to_string(), "wrong audience");
    }
}
