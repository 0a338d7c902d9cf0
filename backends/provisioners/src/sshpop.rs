//! step-ca's `SSHPOP` provisioner (`sshpop.go`): proof of possession of an SSH certificate
//! the authority's SSH CA issued. The token's `sshpop` header carries the certificate
//! (base64 of its wire form, PROTOCOL.certkeys); the certificate's own key signs the token.
//!
//! Checks: the certificate is signed by one of the configured CA keys of its type (host
//! certificates by the host CA, user certificates by the user CA) and valid now — for every
//! operation, where step-ca skips the validity check on renewal; the token's algorithm
//! comes from the certificate's key; then the common token checks with step-ca's audience
//! fragment `#sshpop/<name>`.
//!
//! Operations (research note §5): SSH renew and rekey of **host** certificates, and SSH
//! revoke, where `sub` must be the certificate's serial (decimal), as in step-ca.
//! Certificates valid "forever" (`valid before` = 2⁶⁴−1) are not accepted.

use std::time::{Duration, SystemTime};

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request};
use keystation_jose::{Algorithm, parse_compact};
use serde::{Deserialize, Serialize};
use ssh_key::{Certificate, Fingerprint, HashAlg, public::KeyData};

use crate::config::{ClaimsJson, ProvisionerContext, common, invalid};
use crate::token_checks::{
    DEFAULT_MAX_TOKEN_LIFETIME, Refusal, check_audience, check_identity, check_times, jose_refusal,
    refuse, system_time, unix,
};
use crate::{Claims, EffectiveClaims, Error, ProvisionerKind};

/// The operations an SSHPOP provisioner can authorize.
pub const SSHPOP_OPERATIONS: [Operation; 3] =
    [Operation::RenewSsh, Operation::RekeySsh, Operation::RevokeSsh];

/// An `SSHPOP` provisioner.
#[derive(Debug, Clone)]
pub struct SshPopProvisioner {
    name: String,
    host_cas: Vec<Fingerprint>,
    user_cas: Vec<Fingerprint>,
    claims: EffectiveClaims,
    declared_claims: Claims,
    max_token_lifetime: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SshPopJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
}

/// The SHA-256 fingerprint of a CA key in SSH form.
fn ssh_fingerprint(key: &PublicKey) -> Option<Fingerprint> {
    let line = key.to_openssh(None)?;
    let ssh = ssh_key::PublicKey::from_openssh(&line).ok()?;
    Some(ssh.fingerprint(HashAlg::Sha256))
}

/// The certificate's subject key as a core key (P-256, P-384, Ed25519, RSA).
fn core_key(key: &KeyData) -> Option<PublicKey> {
    match key {
        KeyData::Ecdsa(ec) => {
            let algorithm = match ec {
                ssh_key::public::EcdsaPublicKey::NistP256(_) => KeyAlgorithm::NistP256,
                ssh_key::public::EcdsaPublicKey::NistP384(_) => KeyAlgorithm::NistP384,
                _ => return None,
            };
            PublicKey::from_point(algorithm, ec.as_sec1_bytes()).ok()
        }
        KeyData::Ed25519(ed) => PublicKey::from_point(KeyAlgorithm::Ed25519, &ed.0).ok(),
        KeyData::Rsa(rsa) => {
            PublicKey::rsa(rsa.n.as_positive_bytes()?, rsa.e.as_positive_bytes()?).ok()
        }
        _ => None,
    }
}

impl SshPopProvisioner {
    /// A provisioner named `name` trusting host certificates signed by one of
    /// `host_ca_keys` and user certificates signed by one of `user_ca_keys` (the SSH CA's
    /// keys, step-ca's `ssh.hostKey` and `ssh.userKey`), with the resolved `claims`.
    pub fn new(
        name: impl Into<String>,
        host_ca_keys: &[PublicKey],
        user_ca_keys: &[PublicKey],
        claims: EffectiveClaims,
    ) -> Result<Self, Error> {
        let name = name.into();
        let fingerprints = |keys: &[PublicKey]| -> Result<Vec<Fingerprint>, Error> {
            keys.iter()
                .map(|k| {
                    ssh_fingerprint(k).ok_or_else(|| {
                        invalid(&name, format!("a {} key cannot be an SSH CA", k.algorithm()))
                    })
                })
                .collect()
        };
        let host_cas = fingerprints(host_ca_keys)?;
        let user_cas = fingerprints(user_ca_keys)?;
        if host_cas.is_empty() && user_cas.is_empty() {
            return Err(invalid(
                &name,
                "SSHPOP needs the SSH CA's public keys (the authority has no SSH CA)",
            ));
        }
        Ok(Self {
            name,
            host_cas,
            user_cas,
            claims,
            declared_claims: Claims::default(),
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        })
    }

    /// The same provisioner accepting tokens that live at most `lifetime`.
    #[must_use]
    pub fn with_max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = lifetime;
        self
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// Reads step-ca's SSHPOP provisioner object (`type`, `name`, `claims`), with the SSH CA
    /// keys and the authority's claims from `context`.
    pub fn from_json_in(json: &str, context: &ProvisionerContext) -> Result<Self, Error> {
        let config: SshPopJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not an SSHPOP provisioner object: {e}")))?;
        let name = config.name.as_str();
        let (declared, effective) = common(
            ProvisionerKind::SshPop,
            &config.kind,
            name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        let mut p =
            Self::new(name, &context.ssh_host_ca_keys, &context.ssh_user_ca_keys, effective)?
                .with_max_token_lifetime(context.max_token_lifetime);
        p.declared_claims = declared;
        Ok(p)
    }

    /// step-ca's SSHPOP provisioner object.
    pub fn to_json(&self) -> String {
        let config = SshPopJson {
            kind: ProvisionerKind::SshPop.type_name().into(),
            name: self.name.clone(),
            claims: ClaimsJson::from_claims(&self.declared_claims),
        };
        serde_json::to_string(&config).unwrap_or_default()
    }

    /// The SSH certificate (wire form) in a token's `sshpop` header, **unverified**: call
    /// [`authorize`](Provisioner::authorize) first; then this is the certificate being
    /// renewed, rekeyed or revoked.
    pub fn presented_certificate(token: &str) -> Option<Vec<u8>> {
        parse_compact(token).ok()?.header().sshpop.clone()
    }

    fn check(&self, request: &Request<'_>, now: SystemTime) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "an SSHPOP provisioner takes a token"));
        };
        let operation = request.operation;
        if !SSHPOP_OPERATIONS.contains(&operation) {
            return Err(refuse(
                Denial::OperationNotAllowed,
                format!("an SSHPOP provisioner does not authorize {operation:?}"),
            ));
        }
        let jws = parse_compact(token).map_err(|e| jose_refusal(&e))?;
        let Some(wire) = jws.header().sshpop.as_deref() else {
            return Err(refuse(Denial::Malformed, "the token has no sshpop header"));
        };
        let cert = Certificate::from_bytes(wire)
            .map_err(|e| refuse(Denial::Malformed, format!("sshpop certificate: {e}")))?;
        let host = cert.cert_type().is_host();
        let cas = if host { &self.host_cas } else { &self.user_cas };
        // The CA signature and key, checked at the certificate's own start; the time below.
        let start = cert.valid_after();
        if cert.valid_before() <= start || cert.validate_at(start, cas).is_err() {
            return Err(refuse(
                Denial::UntrustedChain,
                "the sshpop certificate is not signed by this authority's SSH CA",
            ));
        }
        let now = unix(now);
        let now_u = u64::try_from(now).unwrap_or(0);
        if now_u < cert.valid_after() {
            return Err(refuse(Denial::NotYetValid, "the sshpop certificate is not valid yet"));
        }
        if now_u >= cert.valid_before() {
            return Err(refuse(Denial::Expired, "the sshpop certificate has expired"));
        }
        if matches!(operation, Operation::RenewSsh | Operation::RekeySsh) && !host {
            return Err(refuse(
                Denial::PolicyViolation,
                "renew and rekey need an SSH host certificate",
            ));
        }
        let key = core_key(cert.public_key()).ok_or_else(|| {
            refuse(Denial::UnknownKey, "the sshpop certificate's key cannot sign tokens")
        })?;
        let alg = match (key.algorithm(), jws.header().alg.as_str()) {
            (KeyAlgorithm::Rsa(_), "PS256") => Algorithm::Ps256,
            _ => Algorithm::default_for(&key)
                .ok_or_else(|| refuse(Denial::UnknownKey, "unsupported certificate key"))?,
        };
        let verified = jws.verify_with(&key, alg).map_err(|e| jose_refusal(&e))?;
        let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
        let (sub, _) = check_identity(&claims, &self.name)?;
        let fragment = format!("sshpop/{}", self.name);
        check_audience(&claims.aud, request.audience, operation, Some(&fragment))?;
        check_times(&claims, now, self.max_token_lifetime)?;

        let grant = |subject: String, not_before: i64, not_after: i64| Grant {
            provisioner: self.name.clone(),
            subject,
            sans: cert.valid_principals().to_vec(),
            not_before: system_time(not_before),
            not_after: system_time(not_after),
            operations: vec![operation],
            replay_id: claims.jti.clone(),
        };
        if operation == Operation::RevokeSsh {
            if sub != cert.serial().to_string() {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!("sub {sub:?} is not the certificate's serial {}", cert.serial()),
                ));
            }
            return Ok(grant(sub.to_owned(), now, now));
        }
        if !self.claims.enable_ssh_ca {
            return Err(refuse(
                Denial::OperationNotAllowed,
                "SSH certificates are not enabled for this provisioner (enableSSHCA)",
            ));
        }
        if operation == Operation::RenewSsh && self.claims.disable_renewal {
            return Err(refuse(
                Denial::OperationNotAllowed,
                "renewal is disabled (disableRenewal)",
            ));
        }
        // The new certificate lasts as long as the old one, within the host claims.
        let length = cert.valid_before().saturating_sub(cert.valid_after());
        let length = self.claims.ssh_host.pick(Some(Duration::from_secs(length))).map_err(|d| {
            refuse(d, format!("the certificate's {length} s outside the host claims"))
        })?;
        Ok(grant(cert.key_id().to_owned(), now, now.saturating_add(length.as_secs() as i64)))
    }
}

crate::token_checks::token_provisioner!(SshPopProvisioner, SshPop);
