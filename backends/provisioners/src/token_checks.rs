//! The checks every token provisioner (JWK, X5C, SSHPOP) makes on a verified token, stricter
//! than step-ca where the research note (§1, §7) says step-ca is lax:
//!
//! * **audience**: the token's `aud` must name the endpoint being called — `https`, the same
//!   host (case-insensitive) and port (443 when none is written), the same API path with
//!   `/1.0` optional (`/sign` ≡ `/1.0/sign`), and for X5C and SSHPOP the fragment step-ca
//!   gives those provisioners (`#x5c/<name>`, `#sshpop/<name>`). The path must be the
//!   operation's own: an SSH audience never authorizes an X.509 operation, nor the
//!   reverse (step-ca lists `/ssh/sign` among its X.509 sign audiences). step-ca's legacy
//!   `step-certificate-authority` audience is not accepted.
//! * **times**: `exp` is required (step-ca checks it only when present); `exp`, `nbf` and
//!   `iat` are checked with 60 s of leeway; and the lifetime, `exp` − max(`nbf`, `iat`),
//!   may not exceed the provisioner's maximum token lifetime (5 min by default; step-ca has
//!   none).
//! * **identity**: `iss` is the provisioner's name, `sub` is not empty, and `jti` is
//!   present (it is what makes the token single-use; the caller spends it only after a
//!   grant).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::provisioner::{Denial, Grant, Operation};
use keystation_jose::{Claims, SshCertType};

use crate::EffectiveClaims;

/// The longest token lifetime accepted by default: step's clients make 5-minute tokens.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The longest lifetime any provisioner may accept for its tokens (Azure's
/// managed-identity tokens, which IMDS hands out for up to 24 h). The authority keeps a
/// spent token id at least this long (plus leeway); a provisioner accepting tokens that
/// live longer would let them be replayed once their id is forgotten.
pub const LONGEST_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Clock skew allowed on `exp`, `nbf` and `iat` (go-jose's and step-ca's one minute).
pub const LEEWAY: Duration = Duration::from_secs(60);

/// A refusal: the coarse [`Denial`] for the client and a precise reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The coarse denial the client sees.
    pub denial: Denial,
    /// The precise reason, for the log.
    pub reason: String,
}

/// A refusal with its denial and the reason for the log.
pub fn refuse(denial: Denial, reason: impl Into<String>) -> Refusal {
    Refusal { denial, reason: reason.into() }
}

/// Implements core's `Provisioner` and `StepProvisioner` for a token provisioner: a type
/// with `name` and `claims` fields, a `check(&Request, now) -> Result<Grant, Refusal>`
/// whose refusals are logged and reduced to their `Denial`, and a `to_json`.
macro_rules! token_provisioner {
    ($type:ident, $kind:ident) => {
        impl keystation_core::Provisioner for $type {
            fn name(&self) -> &str {
                &self.name
            }

            fn authorize(
                &self,
                request: &keystation_core::provisioner::Request<'_>,
                _keys: &keystation_core::provisioner::TrustedKeys,
                now: std::time::SystemTime,
            ) -> Result<keystation_core::provisioner::Grant, keystation_core::Error> {
                self.check(request, now).map_err(|r| r.report(&self.name))
            }
        }

        impl crate::StepProvisioner for $type {
            fn kind(&self) -> crate::ProvisionerKind {
                crate::ProvisionerKind::$kind
            }

            fn effective_claims(&self) -> Option<&crate::EffectiveClaims> {
                Some(&self.claims)
            }

            fn to_json(&self) -> String {
                $type::to_json(self)
            }
        }
    };
}
pub(crate) use token_provisioner;

impl Refusal {
    /// Logs the refusal (no secrets: reasons name claims and checks, never key material)
    /// and turns it into core's error.
    pub fn report(self, provisioner: &str) -> keystation_core::Error {
        tracing::info!(
            provisioner,
            denial = %self.denial,
            reason = %self.reason,
            "token refused"
        );
        self.denial.into()
    }
}

/// What a JOSE error means to a client.
pub fn jose_refusal(error: &keystation_jose::Error) -> Refusal {
    use keystation_jose::Error as E;
    let denial = match error {
        E::NoneAlgorithm
        | E::SymmetricAlgorithm(_)
        | E::UnsupportedAlgorithm(_)
        | E::AlgorithmMismatch { .. }
        | E::KeyAlgorithmMismatch { .. }
        | E::BadSignature => Denial::BadSignature,
        E::InvalidKey(_) | E::RsaKeyTooSmall { .. } | E::UnsupportedKey(_) => Denial::UnknownKey,
        _ => Denial::Malformed,
    };
    refuse(denial, error.to_string())
}

/// Unix seconds of `time`, saturating (negative before 1970).
pub fn unix(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The time `unix` seconds after 1970 (clamped at 1970).
pub fn system_time(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

/// An endpoint URL as step-ca's audiences name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    /// The API path without the optional `/1.0` prefix (`/sign`, `/ssh/renew`).
    path: String,
    fragment: Option<String>,
}

impl Endpoint {
    /// Parses `https://host[:port]/path[#fragment]`. Anything else — another scheme, user
    /// information, a query, no path, a bad port — is `None`: it can name no endpoint.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let scheme_len = "https://".len();
        if url.len() < scheme_len || !url[..scheme_len].eq_ignore_ascii_case("https://") {
            return None;
        }
        let rest = &url[scheme_len..];
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f.to_owned())),
            None => (rest, None),
        };
        if rest.contains('?') {
            return None;
        }
        let slash = rest.find('/')?;
        let (authority, path) = rest.split_at(slash);
        if authority.contains('@') || authority.is_empty() {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (inside, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (format!("[{}]", inside.to_ascii_lowercase()), port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return None;
        }
        let port = match port {
            None => 443,
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok()?
            }
            Some(_) => return None,
        };
        let path = path.strip_prefix("/1.0").filter(|p| p.starts_with('/')).unwrap_or(path);
        Some(Self { host, port, path: path.to_owned(), fragment })
    }
}

/// The API path (without `/1.0`) of the endpoint an operation is requested on.
pub(crate) fn path_of(operation: Operation) -> Option<&'static str> {
    Some(match operation {
        Operation::SignX509 => "/sign",
        Operation::RenewX509 => "/renew",
        Operation::RevokeX509 => "/revoke",
        Operation::RekeyX509 => "/rekey",
        Operation::SignSshUser | Operation::SignSshHost => "/ssh/sign",
        Operation::RenewSsh => "/ssh/renew",
        Operation::RekeySsh => "/ssh/rekey",
        Operation::RevokeSsh => "/ssh/revoke",
        Operation::Administer => "/admin",
        _ => return None,
    })
}

/// Checks that one of `token_audiences` names the endpoint `request_audience` for
/// `operation`, with `fragment` (`x5c/<name>`, `sshpop/<name>`) or with none (JWK).
pub fn check_audience(
    token_audiences: &[String],
    request_audience: &str,
    operation: Operation,
    fragment: Option<&str>,
) -> Result<(), Refusal> {
    let Some(mut want) = Endpoint::parse(request_audience) else {
        return Err(refuse(
            Denial::WrongAudience,
            format!("the endpoint {request_audience:?} is not an https URL with a path"),
        ));
    };
    let Some(path) = path_of(operation) else {
        return Err(refuse(Denial::OperationNotAllowed, format!("{operation:?} takes no token")));
    };
    if want.path != path {
        return Err(refuse(
            Denial::WrongAudience,
            format!("the endpoint {request_audience:?} is not the one for {operation:?}"),
        ));
    }
    want.fragment = fragment.map(str::to_owned);
    if token_audiences.iter().any(|aud| Endpoint::parse(aud).as_ref() == Some(&want)) {
        return Ok(());
    }
    let expected = match fragment {
        Some(f) => format!("{request_audience}#{f}"),
        None => request_audience.to_owned(),
    };
    Err(refuse(
        Denial::WrongAudience,
        format!("aud {token_audiences:?} does not name {expected:?}"),
    ))
}

/// Checks `exp` (required), `nbf` and `iat` at `now` with [`LEEWAY`], and the lifetime
/// `exp` − max(`nbf`, `iat`) (or − now when neither is present) against `max_lifetime`.
pub fn check_times(claims: &Claims, now: i64, max_lifetime: Duration) -> Result<(), Refusal> {
    let leeway = LEEWAY.as_secs() as i64;
    let Some(exp) = claims.exp else {
        return Err(refuse(Denial::MissingExpiry, "the token has no exp"));
    };
    if now > exp.saturating_add(leeway) {
        return Err(refuse(Denial::Expired, format!("exp {exp} is before now {now}")));
    }
    if let Some(nbf) = claims.nbf
        && nbf > now.saturating_add(leeway)
    {
        return Err(refuse(Denial::NotYetValid, format!("nbf {nbf} is after now {now}")));
    }
    if let Some(iat) = claims.iat
        && iat > now.saturating_add(leeway)
    {
        return Err(refuse(Denial::NotYetValid, format!("iat {iat} is after now {now}")));
    }
    let start = match (claims.nbf, claims.iat) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => now,
    };
    let lifetime = exp.saturating_sub(start);
    let max = i64::try_from(max_lifetime.as_secs()).unwrap_or(i64::MAX);
    if lifetime > max {
        return Err(refuse(
            Denial::LifetimeTooLong,
            format!("the token lives {lifetime} s, at most {max} s are allowed"),
        ));
    }
    if lifetime < 0 {
        return Err(refuse(Denial::Malformed, "exp lies before nbf/iat"));
    }
    Ok(())
}

/// Checks `iss`, `sub` and `jti`, returning `sub` and `jti`.
pub fn check_identity<'c>(
    claims: &'c Claims,
    provisioner: &str,
) -> Result<(&'c str, &'c str), Refusal> {
    if claims.iss.as_deref() != Some(provisioner) {
        return Err(refuse(
            Denial::WrongIssuer,
            format!("iss {:?} is not {provisioner:?}", claims.iss),
        ));
    }
    let sub = claims.sub.as_deref().filter(|s| !s.is_empty());
    let Some(sub) = sub else { return Err(refuse(Denial::Malformed, "the token has no sub")) };
    let jti = claims.jti.as_deref().filter(|s| !s.is_empty());
    let Some(jti) = jti else { return Err(refuse(Denial::Malformed, "the token has no jti")) };
    Ok((sub, jti))
}

/// The grant for a verified step token (JWK or X5C) whose time, audience and identity
/// checks passed: subject, names and validity by operation, bounded by the claims and,
/// for X5C, by the signing certificate's validity (`cap`, Unix seconds).
pub fn step_grant(
    provisioner: &str,
    token: &Claims,
    claims: &EffectiveClaims,
    operation: Operation,
    now: i64,
    cap: Option<(i64, i64)>,
) -> Result<Grant, Refusal> {
    let sub = token.sub.clone().unwrap_or_default();
    let jti = token.jti.clone();
    let ssh = token.ssh();
    let grant = |subject: String, sans: Vec<String>, not_before: i64, not_after: i64| Grant {
        provisioner: provisioner.to_owned(),
        subject,
        sans,
        not_before: system_time(not_before),
        not_after: system_time(not_after),
        operations: vec![operation],
        replay_id: jti.clone(),
    };
    match operation {
        Operation::SignX509
        | Operation::RenewX509
        | Operation::RevokeX509
        | Operation::RekeyX509 => {
            if ssh.is_some() {
                return Err(refuse(
                    Denial::PolicyViolation,
                    "an SSH token (step.ssh) cannot authorize an X.509 operation",
                ));
            }
            if matches!(operation, Operation::RenewX509 | Operation::RekeyX509)
                && claims.disable_renewal
            {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    "renewal is disabled (disableRenewal)",
                ));
            }
            if operation == Operation::RevokeX509 {
                // The subject is the serial to revoke; the authority compares it.
                return Ok(grant(sub, Vec::new(), now, now));
            }
            let sans = if token.sans.is_empty() { vec![sub.clone()] } else { token.sans.clone() };
            let lifetime = claims.tls.pick(None).map_err(|d| refuse(d, "default TLS lifetime"))?;
            let (mut not_before, mut not_after) =
                (now, now.saturating_add(lifetime.as_secs() as i64));
            if let Some((cap_start, cap_end)) = cap {
                not_before = not_before.max(cap_start);
                not_after = not_after.min(cap_end);
                if not_after <= not_before {
                    return Err(refuse(
                        Denial::ValidityOutOfBounds,
                        "the signing certificate's validity leaves no room for a certificate",
                    ));
                }
            }
            Ok(grant(sub, sans, not_before, not_after))
        }
        // The subject is the SSH serial to revoke, or the admin acting; the authority
        // compares it with the request or its admin list.
        Operation::RevokeSsh | Operation::Administer => {
            if ssh.is_some() {
                return Err(refuse(
                    Denial::PolicyViolation,
                    "an SSH certificate token (step.ssh) cannot authorize this operation",
                ));
            }
            Ok(grant(sub, Vec::new(), now, now))
        }
        Operation::SignSshUser | Operation::SignSshHost => {
            if !claims.enable_ssh_ca {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    "SSH certificates are not enabled for this provisioner (enableSSHCA)",
                ));
            }
            let Some(ssh) = ssh else {
                return Err(refuse(
                    Denial::PolicyViolation,
                    "an X.509 token (no step.ssh) cannot authorize an SSH certificate",
                ));
            };
            let cert_type = ssh.cert_type.unwrap_or(SshCertType::User);
            let (wanted, bounds) = match operation {
                Operation::SignSshHost => (SshCertType::Host, claims.ssh_host),
                _ => (SshCertType::User, claims.ssh_user),
            };
            if cert_type != wanted {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!("the token is for an SSH {cert_type:?} certificate, not {wanted:?}"),
                ));
            }
            let key_id = ssh.key_id.clone().unwrap_or_else(|| sub.clone());
            let principals =
                if ssh.principals.is_empty() { vec![sub.clone()] } else { ssh.principals.clone() };
            let not_before = ssh.valid_after.map_or(now, |t| t.resolve(now));
            let not_after = match ssh.valid_before {
                Some(t) => t.resolve(now),
                None => {
                    let d = bounds.pick(None).map_err(|d| refuse(d, "default SSH lifetime"))?;
                    not_before.saturating_add(d.as_secs() as i64)
                }
            };
            let length = not_after.saturating_sub(not_before);
            if length <= 0
                || not_after <= now
                || bounds.pick(Some(Duration::from_secs(length as u64))).is_err()
            {
                return Err(refuse(
                    Denial::ValidityOutOfBounds,
                    format!(
                        "SSH validity of {length} s outside {:?}..={:?}",
                        bounds.min, bounds.max
                    ),
                ));
            }
            let (mut not_before, mut not_after) = (not_before, not_after);
            if let Some((cap_start, cap_end)) = cap {
                not_before = not_before.max(cap_start);
                not_after = not_after.min(cap_end);
                if not_after <= not_before {
                    return Err(refuse(
                        Denial::ValidityOutOfBounds,
                        "the signing certificate's validity leaves no room for a certificate",
                    ));
                }
            }
            Ok(grant(key_id, principals, not_before, not_after))
        }
        _ => Err(refuse(Denial::OperationNotAllowed, format!("{operation:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_normalise_like_step_ca_after_its_port_fix() {
        let e = |s: &str| Endpoint::parse(s);
        assert_eq!(e("https://CA.example/1.0/sign"), e("https://ca.example:443/sign"));
        assert_ne!(e("https://ca.example:9443/1.0/sign"), e("https://ca.example/1.0/sign"));
        assert_eq!(e("https://127.0.0.1:9443/sign"), e("https://127.0.0.1:9443/1.0/sign"));
        assert_eq!(e("https://[::1]:9443/1.0/sign"), e("https://[::1]:9443/sign"));
        assert_ne!(e("https://ca/1.0/sign#x5c/a"), e("https://ca/1.0/sign"));
        for bad in [
            "http://ca/1.0/sign",
            "https://ca",
            "https://ca:/sign",
            "https://ca:99999/sign",
            "https://u@ca/sign",
            "https://ca/sign?x=1",
            "https:///sign",
            "step-certificate-authority",
            "/1.0/sign",
        ] {
            assert_eq!(e(bad), None, "{bad}");
        }
    }

    #[test]
    fn audiences_match_the_operations_endpoint_only() {
        let aud = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let here = "https://127.0.0.1:9443/1.0/sign";
        assert!(
            check_audience(&aud(&["https://127.0.0.1:9443/sign"]), here, Operation::SignX509, None)
                .is_ok()
        );
        assert!(check_audience(&aud(&["x", here]), here, Operation::SignX509, None).is_ok());
        // SSH audience on X.509, X.509 audience on SSH, wrong port, legacy audience.
        for (token, request, op) in [
            ("https://127.0.0.1:9443/1.0/ssh/sign", here, Operation::SignX509),
            (here, "https://127.0.0.1:9443/1.0/ssh/sign", Operation::SignSshUser),
            ("https://127.0.0.1/1.0/sign", here, Operation::SignX509),
            ("step-certificate-authority", here, Operation::SignX509),
            ("https://127.0.0.1:9443/1.0/revoke", here, Operation::SignX509),
        ] {
            let r = check_audience(&aud(&[token]), request, op, None);
            assert_eq!(r.map_err(|r| r.denial), Err(Denial::WrongAudience), "{token} for {op:?}");
        }
        // The request's endpoint must be the operation's.
        let r = check_audience(&aud(&[here]), here, Operation::RevokeX509, None);
        assert_eq!(r.map_err(|r| r.denial), Err(Denial::WrongAudience));
        // Fragments for X5C/SSHPOP.
        let x5c = "https://127.0.0.1:9443/1.0/sign#x5c/ops";
        assert!(check_audience(&aud(&[x5c]), here, Operation::SignX509, Some("x5c/ops")).is_ok());
        let r = check_audience(&aud(&[here]), here, Operation::SignX509, Some("x5c/ops"));
        assert_eq!(r.map_err(|r| r.denial), Err(Denial::WrongAudience));
        let r = check_audience(&aud(&[x5c]), here, Operation::SignX509, None);
        assert_eq!(r.map_err(|r| r.denial), Err(Denial::WrongAudience));
    }

    #[test]
    fn times_are_checked_with_leeway_and_bounded_lifetime() {
        let now = 1_700_000_000;
        let t = |exp: Option<i64>, nbf: Option<i64>, iat: Option<i64>| {
            let mut c = Claims::default();
            (c.exp, c.nbf, c.iat) = (exp, nbf, iat);
            check_times(&c, now, DEFAULT_MAX_TOKEN_LIFETIME).map_err(|r| r.denial)
        };
        assert_eq!(t(Some(now + 300), Some(now), Some(now)), Ok(()));
        assert_eq!(t(None, Some(now), Some(now)), Err(Denial::MissingExpiry));
        assert_eq!(t(Some(now + 301), Some(now), Some(now)), Err(Denial::LifetimeTooLong));
        assert_eq!(t(Some(now + 3600), None, None), Err(Denial::LifetimeTooLong));
        assert_eq!(t(Some(now - 60), Some(now - 300), None), Ok(()), "within leeway");
        assert_eq!(t(Some(now - 61), Some(now - 300), None), Err(Denial::Expired));
        assert_eq!(t(Some(now + 360), Some(now + 60), None), Ok(()), "nbf within leeway");
        assert_eq!(t(Some(now + 361), Some(now + 61), None), Err(Denial::NotYetValid));
        assert_eq!(t(Some(now + 300), None, Some(now + 120)), Err(Denial::NotYetValid));
        assert_eq!(t(Some(now + 10), Some(now + 50), None), Err(Denial::Malformed));
    }
}
