//! The K8sSA provisioner: Kubernetes service-account tokens, by configured keys or the
//! TokenReview API.
//!
//! A workload in a cluster proves which service account it runs as with a token the API
//! server issued, and gets a certificate for that service account. step-ca's `K8sSA`
//! provisioner (`authority/provisioner/k8sSA.go`) verifies such tokens with configured
//! public keys only; its TokenReview support is a never-finished TODO (an open request,
//! research note §8), and it checks neither an audience nor replay (§7). This crate does
//! both modes and both checks.
//!
//! # Configuration (`ca.json`)
//!
//! ```json
//! { "type": "K8sSA", "name": "k8sSA-default",
//!   "publicKeys": "<base64 of a PEM bundle>",
//!   "issuer": "https://kubernetes.default.svc.cluster.local",
//!   "audiences": ["https://ca.example.com:9000"],
//!   "allowLegacyTokens": false,
//!   "maxTokenLifetime": "1h",
//!   "tokenReview": { "url": "https://10.96.0.1:443", "caCert": "-----BEGIN CERTIFICATE-----…",
//!                    "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token" },
//!   "claims": { … }, "options": { … } }
//! ```
//!
//! step-ca's fields: `type`, `name`, `publicKeys` (a Go `[]byte`, so standard base64 of a
//! PEM bundle; raw PEM is accepted too), `claims` (layered over the authority's),
//! `options` (accepted only when it configures no template: keystation applies none).
//! keystation's additions:
//!
//! * `issuer`: the `iss` of **bound** (projected, TokenRequest) tokens — the API server's
//!   `--service-account-issuer`. Legacy Secret-based tokens have the fixed issuer
//!   `kubernetes/serviceaccount`.
//! * `audiences`: a bound token's `aud` must name one of these (compared exactly). Required
//!   with `issuer` and with `tokenReview`. Give the workload a token for this audience
//!   only — a projected volume with `audience: <one of these>` — never its
//!   `kube-api-access` token: a token valid for the API server, handed to the authority,
//!   could be replayed against the cluster by whoever reads it there.
//! * `allowLegacyTokens` (default false): accept legacy tokens, which carry **no `exp` and
//!   no `aud`** and stay valid until their Secret is deleted. Off, they are refused with
//!   that reason. On, each is still single use (below). Only with `publicKeys`.
//! * `maxTokenLifetime` (Go duration, default `1h`, at most `24h`): the longest
//!   `exp` − max(`iat`, `nbf`) accepted. The kubelet requests one-hour tokens unless a
//!   projected volume sets `expirationSeconds`; raise this to match a longer setting. The
//!   authority's own bound for step tokens (5 minutes) does not apply to these tokens.
//! * `tokenReview`: verify through the API server instead of keys (exclusive with
//!   `publicKeys`). `url` is the API server, `https://host:port`; `caCert` its CA (PEM, or
//!   base64 of PEM), the only root trusted for that connection; `bearerTokenFile` the
//!   authority's own token (read afresh for every review, since the kubelet rotates it),
//!   whose service account needs the `system:auth-delegator` ClusterRole (`create` on
//!   `tokenreviews`). Plain HTTP is refused.
//!
//! # Checks
//!
//! * **Keys mode**: the signature verifies with one of `publicKeys` under that key's
//!   algorithm (RS256 for RSA, ES256/ES384 for P-256/P-384, EdDSA) — the header's `alg`
//!   must merely agree; `none` and HS* never.
//! * **TokenReview mode**: the key source posts a `TokenReview` (`spec.token`,
//!   `spec.audiences` = `audiences`) and hands the answer to `authorize`, bound to the
//!   token by its SHA-256 ([`Statement`]). It must be `authenticated`, for
//!   `user.username` = the token's `sub`, a service account, with a `status.audiences`
//!   entry among `audiences` (an empty list means "valid for the API server", which is
//!   refused). The token's payload, vouched for by the API server, is still read for
//!   `iss`, `aud`, `exp` and `jti`. Tokens that would be refused anyway (other issuer or
//!   audience, no or a past `exp`) are not sent to the API server.
//! * Both: `iss` is `kubernetes/serviceaccount` (legacy, if allowed) or `issuer`; a bound
//!   token's `aud` names one of `audiences`; `exp` is required for bound tokens and checked
//!   with 60 s of leeway, as are `nbf` and `iat`; the lifetime is at most
//!   `maxTokenLifetime`; `sub` is exactly `system:serviceaccount:<namespace>:<name>`.
//! * **Replay**: the grant's replay id is the token's `jti` when it has one (bound tokens
//!   from Kubernetes 1.29), else the SHA-256 hex of the token. A legacy token has no `exp`,
//!   so it would verify for ever: its id is a permanent record (a trust-on-first-use id,
//!   [`keystation_provisioners::tofu_id`] of `k8ssa-legacy/<sha256>`), so it authorizes one
//!   certificate, ever (an operator may reset it). step-ca has no replay protection here.
//!
//! # Operations and the grant
//!
//! As step-ca (research note §5): X.509 sign, renew (unless `disableRenewal`) and revoke
//! (the authority then compares `sub` with the serial, so in practice a service-account
//! token revokes nothing), SSH user and host certificates with `enableSSHCA`. Refused:
//! SSH renew/rekey/revoke, X.509 rekey, the admin API.
//!
//! The grant's subject **and only name** is the service account,
//! `system:serviceaccount:<namespace>:<name>`: a service-account token carries no other
//! names, and step-ca's copying of whatever SANs the CSR asks for would let any pod
//! obtain a certificate for any host. So the CSR's common name must be that string (or
//! empty) and its SANs a subset of it (it is classified as a URI SAN); SSH certificates
//! get it as key ID and sole principal. Validity is the claims' default.
//!
//! Several K8sSA provisioners may coexist (step-ca allows one), told apart by `issuer`;
//! legacy tokens route to every one of them.

mod error;
mod provisioner;
mod review;
mod token;

use std::sync::Arc;

pub use error::Error;
pub use provisioner::{
    DEFAULT_MAX_TOKEN_LIFETIME, DEFAULT_NAME, K8S_SA_OPERATIONS, K8sSaOptions, K8sSaProvisioner,
    LONGEST_MAX_TOKEN_LIFETIME,
};
pub use review::{
    Statement, TOKEN_REVIEW_API_VERSION, TOKEN_REVIEW_PATH, TokenReviewSource, TokenReviewStatus,
    parse_token_review, token_review_request,
};
pub use token::{LEGACY_ISSUER, SERVICE_ACCOUNT_PREFIX, service_account, sha256_hex};

use keystation_provisioners::{Factory, ProvisionerContext, ProvisionerKind, StepProvisioner};

fn build(
    json: &str,
    context: &ProvisionerContext,
) -> Result<Arc<dyn StepProvisioner>, keystation_provisioners::Error> {
    Ok(Arc::new(K8sSaProvisioner::from_json_in(json, context)?))
}

/// Builds `K8sSA` provisioners for the authority's registry.
pub const FACTORY: Factory = Factory { kind: ProvisionerKind::K8sSa, build };
