//! The [`Provisioner`] trait: decide whether a certificate request is authorized, in the
//! manner of step-ca's provisioners (JWK, X5C, OIDC, K8sSA, AWS/GCP/Azure instance
//! identity, YubiKey attestation), and [`Claims`], the certificate durations they allow.
//!
//! Verification is pure and synchronous — a provisioner gets the credential, the keys it
//! trusts and the current time, and answers with a [`Grant`] or a [`Denial`] — so it is
//! testable and fuzzable without a runtime or network. Fetching keys (a JWKS, cloud
//! certificates) is the job of a [`KeySource`], which is async and cached by its caller.

use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::key::PublicKey;

/// The provisioner types, named as step-ca names them in `ca.json`.
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

/// Keys and certificates a provisioner trusts, as fetched by a [`KeySource`] or
/// configured.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    /// Verification keys with their key IDs (`kid`), e.g. from a JWKS.
    pub keys: Vec<(Option<String>, PublicKey)>,
    /// DER certificates (roots, or a cloud's identity-document certificates).
    pub certificates: Vec<Vec<u8>>,
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
/// # Contract
///
/// * [`authorize`](Provisioner::authorize) is pure: same inputs, same answer; no I/O, no
///   clock reads (`now` is given), no interior state changes. Keys come in as
///   [`TrustedKeys`], fetched beforehand by a [`KeySource`].
/// * Every check runs on verified data: claims are looked at only after the signature
///   verified, and a single-use slot is spent by the caller only after a `Grant` came
///   back (so a forged credential cannot burn a victim's slot).
/// * An expiry is required and its distance from the issue time bounded; the audience is
///   checked for every kind.
/// * Refusals are [`Error::Unauthorized`] with a [`Denial`] saying which check failed.
/// * The returned validity already lies within the provisioner's [`Claims`].
pub trait Provisioner: Send + Sync {
    /// The provisioner's unique name (step-ca's `name`).
    fn name(&self) -> &str;

    /// Its type.
    fn kind(&self) -> ProvisionerKind;

    /// Authorizes `request` at time `now` with the trusted `keys`.
    fn authorize(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, Error>;
}

/// Fetches the keys a provisioner trusts (a JWKS URL, Google's certificates, Azure's
/// discovery document). Implementations set their own cache lifetime; callers refresh
/// when [`TrustedKeys`] are older than [`max_age`](KeySource::max_age).
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// Fetches the current keys.
    async fn fetch(&self) -> Result<TrustedKeys, Error>;

    /// How long fetched keys may be used before fetching again.
    fn max_age(&self) -> Duration;
}

/// Durations a provisioner allows, step-ca's `claims`: each field unset means "inherit".
///
/// Layering is built-in defaults ← authority ← provisioner ([`Claims::over`]); every
/// field comes from the nearest level that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claims {
    /// Shortest X.509 certificate lifetime.
    pub min_tls_duration: Option<Duration>,
    /// Longest X.509 certificate lifetime.
    pub max_tls_duration: Option<Duration>,
    /// X.509 lifetime when the request names none.
    pub default_tls_duration: Option<Duration>,
    /// Shortest SSH user certificate lifetime.
    pub min_ssh_user_duration: Option<Duration>,
    /// Longest SSH user certificate lifetime.
    pub max_ssh_user_duration: Option<Duration>,
    /// SSH user lifetime when the request names none.
    pub default_ssh_user_duration: Option<Duration>,
    /// Shortest SSH host certificate lifetime.
    pub min_ssh_host_duration: Option<Duration>,
    /// Longest SSH host certificate lifetime.
    pub max_ssh_host_duration: Option<Duration>,
    /// SSH host lifetime when the request names none.
    pub default_ssh_host_duration: Option<Duration>,
    /// Refuse renewals.
    pub disable_renewal: Option<bool>,
}

/// A lifetime range: shortest, default, longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationBounds {
    /// Shortest allowed.
    pub min: Duration,
    /// Used when the request names none.
    pub default: Duration,
    /// Longest allowed.
    pub max: Duration,
}

impl DurationBounds {
    /// The lifetime to issue for `requested` (or the default), refusing one outside
    /// `min ..= max`.
    pub fn pick(&self, requested: Option<Duration>) -> Result<Duration, Error> {
        let d = requested.unwrap_or(self.default);
        if d < self.min || d > self.max {
            return Err(Error::Unauthorized(Denial::ValidityOutOfBounds));
        }
        Ok(d)
    }
}

/// Claims with every field resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveClaims {
    /// X.509 lifetimes.
    pub tls: DurationBounds,
    /// SSH user certificate lifetimes.
    pub ssh_user: DurationBounds,
    /// SSH host certificate lifetimes.
    pub ssh_host: DurationBounds,
    /// Renewals refused.
    pub disable_renewal: bool,
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;

impl Claims {
    /// step-ca's built-in global claims: TLS 5 min / 24 h / 24 h, SSH user 5 min / 16 h /
    /// 24 h, SSH host 5 min / 30 days / 30 days (min / default / max), renewal allowed.
    pub const BUILT_IN: Self = Self {
        min_tls_duration: Some(Duration::from_secs(5 * MINUTE)),
        max_tls_duration: Some(Duration::from_secs(24 * HOUR)),
        default_tls_duration: Some(Duration::from_secs(24 * HOUR)),
        min_ssh_user_duration: Some(Duration::from_secs(5 * MINUTE)),
        max_ssh_user_duration: Some(Duration::from_secs(24 * HOUR)),
        default_ssh_user_duration: Some(Duration::from_secs(16 * HOUR)),
        min_ssh_host_duration: Some(Duration::from_secs(5 * MINUTE)),
        max_ssh_host_duration: Some(Duration::from_secs(720 * HOUR)),
        default_ssh_host_duration: Some(Duration::from_secs(720 * HOUR)),
        disable_renewal: Some(false),
    };

    /// `self` layered over `base`: fields `self` sets win.
    ///
    /// As in step-ca, when `self` sets only a default that lies outside the inherited
    /// range, the inherited min or max is stretched to include it.
    pub fn over(&self, base: &Self) -> Self {
        fn layer(
            min: Option<Duration>,
            default: Option<Duration>,
            max: Option<Duration>,
            base: (Option<Duration>, Option<Duration>, Option<Duration>),
        ) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
            let mut min_out = min.or(base.0);
            let default_out = default.or(base.1);
            let mut max_out = max.or(base.2);
            if let Some(d) = default {
                if min.is_none() {
                    min_out = min_out.map(|m| m.min(d));
                }
                if max.is_none() {
                    max_out = max_out.map(|m| m.max(d));
                }
            }
            (min_out, default_out, max_out)
        }
        let tls = layer(
            self.min_tls_duration,
            self.default_tls_duration,
            self.max_tls_duration,
            (base.min_tls_duration, base.default_tls_duration, base.max_tls_duration),
        );
        let user = layer(
            self.min_ssh_user_duration,
            self.default_ssh_user_duration,
            self.max_ssh_user_duration,
            (
                base.min_ssh_user_duration,
                base.default_ssh_user_duration,
                base.max_ssh_user_duration,
            ),
        );
        let host = layer(
            self.min_ssh_host_duration,
            self.default_ssh_host_duration,
            self.max_ssh_host_duration,
            (
                base.min_ssh_host_duration,
                base.default_ssh_host_duration,
                base.max_ssh_host_duration,
            ),
        );
        Self {
            min_tls_duration: tls.0,
            default_tls_duration: tls.1,
            max_tls_duration: tls.2,
            min_ssh_user_duration: user.0,
            default_ssh_user_duration: user.1,
            max_ssh_user_duration: user.2,
            min_ssh_host_duration: host.0,
            default_ssh_host_duration: host.1,
            max_ssh_host_duration: host.2,
            disable_renewal: self.disable_renewal.or(base.disable_renewal),
        }
    }

    /// Resolves every field over [`Claims::BUILT_IN`] and checks that each range is
    /// positive and ordered (min ≤ default ≤ max) — for SSH as well as TLS, where step-ca
    /// checks TLS only.
    pub fn resolve(&self) -> Result<EffectiveClaims, Error> {
        let full = self.over(&Self::BUILT_IN);
        let bounds = |min: Option<Duration>, default: Option<Duration>, max: Option<Duration>| {
            let (Some(min), Some(default), Some(max)) = (min, default, max) else {
                return Err(Error::InvalidClaims);
            };
            if min.is_zero() || min > default || default > max {
                return Err(Error::InvalidClaims);
            }
            Ok(DurationBounds { min, default, max })
        };
        Ok(EffectiveClaims {
            tls: bounds(full.min_tls_duration, full.default_tls_duration, full.max_tls_duration)?,
            ssh_user: bounds(
                full.min_ssh_user_duration,
                full.default_ssh_user_duration,
                full.max_ssh_user_duration,
            )?,
            ssh_host: bounds(
                full.min_ssh_host_duration,
                full.default_ssh_host_duration,
                full.max_ssh_host_duration,
            )?,
            disable_renewal: full.disable_renewal.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn built_in_claims_resolve_to_step_ca_defaults() {
        let c = Claims::default().resolve().map_err(|e| e.to_string());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(
            c.tls,
            DurationBounds { min: Duration::from_secs(300), default: 24 * H, max: 24 * H }
        );
        assert_eq!(c.ssh_user.default, 16 * H);
        assert_eq!(c.ssh_host.max, 720 * H);
        assert!(!c.disable_renewal);
    }

    #[test]
    fn nearest_layer_wins() {
        let authority = Claims {
            max_tls_duration: Some(48 * H),
            disable_renewal: Some(true),
            ..Default::default()
        };
        let provisioner = Claims {
            max_tls_duration: Some(12 * H),
            default_tls_duration: Some(8 * H),
            ..Default::default()
        };
        let c = provisioner.over(&authority).resolve().map_err(|e| e.to_string());
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!((c.tls.default, c.tls.max), (8 * H, 12 * H));
        assert!(c.disable_renewal, "inherited from the authority layer");
    }

    #[test]
    fn a_lone_default_stretches_the_inherited_range() {
        let provisioner = Claims { default_tls_duration: Some(72 * H), ..Default::default() };
        let c = provisioner.resolve().map_err(|e| e.to_string());
        assert_eq!(c.map(|c| c.tls.max), Ok(72 * H));
        let short =
            Claims { default_tls_duration: Some(Duration::from_secs(60)), ..Default::default() };
        assert_eq!(short.resolve().map(|c| c.tls.min).ok(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn disordered_or_zero_ranges_are_rejected_for_ssh_too() {
        let bad = Claims { min_ssh_user_duration: Some(30 * H), ..Default::default() };
        assert!(matches!(bad.resolve(), Err(Error::InvalidClaims)));
        let zero = Claims { min_tls_duration: Some(Duration::ZERO), ..Default::default() };
        assert!(matches!(zero.resolve(), Err(Error::InvalidClaims)));
    }

    #[test]
    fn pick_enforces_bounds() {
        let b = DurationBounds { min: H, default: 2 * H, max: 4 * H };
        assert_eq!(b.pick(None).ok(), Some(2 * H));
        assert_eq!(b.pick(Some(3 * H)).ok(), Some(3 * H));
        assert!(matches!(
            b.pick(Some(5 * H)),
            Err(Error::Unauthorized(Denial::ValidityOutOfBounds))
        ));
        assert!(matches!(
            b.pick(Some(H / 2)),
            Err(Error::Unauthorized(Denial::ValidityOutOfBounds))
        ));
    }

    /// The trait is object-safe and usable as `Arc<dyn Provisioner>`, as the authority's
    /// registry holds it; a minimal static-token provisioner shows the contract's shape.
    #[test]
    fn provisioners_are_object_safe_and_answer_with_grants_or_denials() {
        struct StaticToken;
        impl Provisioner for StaticToken {
            fn name(&self) -> &str {
                "station"
            }
            fn kind(&self) -> ProvisionerKind {
                ProvisionerKind::Token
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
                    Credential::Token("s3cret") => Err(Error::Unauthorized(Denial::WrongAudience)),
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
        assert_eq!(grant.map(|g| g.subject).ok(), Some("station-1".to_string()));
        request.audience = "https://elsewhere/sign";
        let denied = registry[0].authorize(&request, &TrustedKeys::default(), now);
        assert!(matches!(denied, Err(Error::Unauthorized(Denial::WrongAudience))));
        assert_eq!(Denial::WrongAudience.to_string(), "wrong audience");
    }

    #[test]
    fn key_sources_are_async_and_object_safe() {
        struct Fixed;
        #[async_trait::async_trait]
        impl KeySource for Fixed {
            async fn fetch(&self) -> Result<TrustedKeys, Error> {
                Ok(TrustedKeys { keys: vec![], certificates: vec![vec![0x30, 0x00]] })
            }
            fn max_age(&self) -> Duration {
                12 * H
            }
        }
        let source: Box<dyn KeySource> = Box::new(Fixed);
        let mut future = source.fetch();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(Ok(keys)) = future.as_mut().poll(&mut cx) else {
            panic!("a ready future must complete on first poll")
        };
        assert_eq!(keys.certificates.len(), 1);
        assert_eq!(source.max_age(), 12 * H);
    }
}
