//! What a service-account token says: its claims, the service account it names, and the
//! digest that stands for it.
//!
//! Kubernetes issues two kinds ("Managing Service Accounts", kubernetes.io/docs/reference/
//! access-authn-authz/service-accounts-admin):
//!
//! * **legacy** tokens, kept in `kubernetes.io/service-account-token` Secrets:
//!   `iss` is `kubernetes/serviceaccount`, `sub` is `system:serviceaccount:<ns>:<name>`,
//!   private claims `kubernetes.io/serviceaccount/namespace`, `…/secret.name`,
//!   `…/service-account.name`, `…/service-account.uid`; **no `exp`, no `aud`** — they are
//!   valid until the Secret is deleted;
//! * **bound** (projected, TokenRequest) tokens: `iss` is the API server's
//!   `--service-account-issuer` (e.g. `https://kubernetes.default.svc.cluster.local`),
//!   `aud` the audiences requested (a projected volume's `audience`), `exp`/`iat`/`nbf`,
//!   `jti` (Kubernetes 1.29 and later), the same `sub`, and a `kubernetes.io` object naming
//!   the namespace, service account and the pod, secret or node it is bound to.

use keystation_jose::Claims;
use sha2::{Digest as _, Sha256};

/// The issuer of legacy (Secret-based) service-account tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// The prefix of a service account's user name (`sub`, and TokenReview's
/// `status.user.username`).
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// SHA-256 of `token`, lower-case hex.
pub fn sha256_hex(token: &str) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The **unverified** claims of a compact JWS: for routing, deciding whether a token is
/// worth a review, and — once the API server has vouched for the very token — reading
/// `exp` and `jti`.
pub(crate) fn parse_payload(token: &str) -> Result<Claims, String> {
    let jws = keystation_jose::parse_compact(token).map_err(|e| e.to_string())?;
    jws.unverified_claims().map_err(|e| e.to_string())
}

/// The namespace and name of `system:serviceaccount:<namespace>:<name>`. Namespaces are
/// DNS labels and service-account names DNS subdomains (RFC 1123), so neither holds a
/// colon; anything else is `None`.
pub fn service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    let well_formed = |s: &str, dots: bool| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
            })
    };
    (well_formed(namespace, false) && well_formed(name, true)).then_some((namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_are_parsed_exactly() {
        assert_eq!(
            service_account("system:serviceaccount:kube-system:coredns"),
            Some(("kube-system", "coredns"))
        );
        assert_eq!(
            service_account("system:serviceaccount:ci:builder.v2"),
            Some(("ci", "builder.v2"))
        );
        for bad in [
            "system:serviceaccount:default",
            "system:serviceaccount::x",
            "system:serviceaccount:default:",
            "system:serviceaccount:default:a:b",
            "system:serviceaccount:Default:x",
            "system:serviceaccount:a.b:x",
            "system:node:worker-1",
            "alice@example.com",
        ] {
            assert_eq!(service_account(bad), None, "{bad}");
        }
    }

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
