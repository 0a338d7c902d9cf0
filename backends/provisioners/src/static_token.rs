//! keystation's static-token provisioner: the bearer token a station (keystation's or
//! defguard's) presents. No JWT: the token is compared with the SHA-256 hash the
//! configuration stores, in constant time, so neither the configuration nor timing gives
//! the token away. The operations it allows are configured (by default only taking jobs
//! from the worker service).

use std::time::SystemTime;

use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::config::{ClaimsJson, common, invalid};
use crate::token_checks::{Refusal, refuse, system_time, unix};
use crate::{Claims, EffectiveClaims, Error, ProvisionerKind};

/// A static-token provisioner.
#[derive(Clone)]
pub struct StaticTokenProvisioner {
    name: String,
    token_sha256: [u8; 32],
    operations: Vec<Operation>,
    subject: Option<String>,
    claims: EffectiveClaims,
    declared_claims: Claims,
}

impl core::fmt::Debug for StaticTokenProvisioner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticTokenProvisioner")
            .field("name", &self.name)
            .field("operations", &self.operations)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticTokenJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    /// Hex SHA-256 of the token.
    #[serde(rename = "tokenSha256")]
    token_sha256: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
}

/// The configuration names of operations (`operations` of a static-token provisioner).
pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::SignX509 => "sign",
        Operation::RenewX509 => "renew",
        Operation::RevokeX509 => "revoke",
        Operation::RekeyX509 => "rekey",
        Operation::SignSshUser => "sshSignUser",
        Operation::SignSshHost => "sshSignHost",
        Operation::RenewSsh => "sshRenew",
        Operation::RekeySsh => "sshRekey",
        Operation::RevokeSsh => "sshRevoke",
        Operation::TakeJobs => "takeJobs",
        Operation::Administer => "administer",
        _ => "unknown",
    }
}

/// The operation a configuration name names.
pub fn operation_from_name(name: &str) -> Option<Operation> {
    [
        Operation::SignX509,
        Operation::RenewX509,
        Operation::RevokeX509,
        Operation::RekeyX509,
        Operation::SignSshUser,
        Operation::SignSshHost,
        Operation::RenewSsh,
        Operation::RekeySsh,
        Operation::RevokeSsh,
        Operation::TakeJobs,
        Operation::Administer,
    ]
    .into_iter()
    .find(|op| operation_name(*op) == name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = core::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl StaticTokenProvisioner {
    /// The hash a configuration stores for `token`.
    pub fn hash_token(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// A provisioner named `name` accepting the token whose SHA-256 is `token_sha256`, for
    /// taking jobs only ([`with_operations`](Self::with_operations) allows others), with
    /// the resolved `claims` (certificates it authorizes get the default TLS lifetime).
    pub fn new(name: impl Into<String>, token_sha256: [u8; 32], claims: EffectiveClaims) -> Self {
        Self {
            name: name.into(),
            token_sha256,
            operations: vec![Operation::TakeJobs],
            subject: None,
            claims,
            declared_claims: Claims::default(),
        }
    }

    /// The same provisioner allowing `operations`.
    #[must_use]
    pub fn with_operations(mut self, operations: Vec<Operation>) -> Self {
        self.operations = operations;
        self
    }

    /// The same provisioner granting certificates for `subject` (default: its name).
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The operations it allows.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Reads its JSON object: `type` `StaticToken`, `name`, `tokenSha256` (hex),
    /// `operations` (`takeJobs`, `sign`, …; default `takeJobs`), `subject`, `claims`.
    pub fn from_json(json: &str, authority: &Claims) -> Result<Self, Error> {
        let config: StaticTokenJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not a StaticToken provisioner object: {e}")))?;
        let name = config.name.as_str();
        let (declared, effective) =
            common(ProvisionerKind::Token, &config.kind, name, config.claims.as_ref(), authority)?;
        let hash = unhex(&config.token_sha256.to_ascii_lowercase())
            .ok_or_else(|| invalid(name, "tokenSha256 is not 64 hex digits"))?;
        let mut p = Self::new(name, hash, effective);
        if !config.operations.is_empty() {
            p.operations = config
                .operations
                .iter()
                .map(|o| {
                    operation_from_name(o)
                        .ok_or_else(|| invalid(name, format!("unknown operation {o:?}")))
                })
                .collect::<Result<_, _>>()?;
        }
        p.subject = config.subject;
        p.declared_claims = declared;
        Ok(p)
    }

    /// Its JSON object (the token's hash, never the token).
    pub fn to_json(&self) -> String {
        let config = StaticTokenJson {
            kind: ProvisionerKind::Token.type_name().into(),
            name: self.name.clone(),
            token_sha256: hex(&self.token_sha256),
            operations: self.operations.iter().map(|o| operation_name(*o).to_owned()).collect(),
            subject: self.subject.clone(),
            claims: ClaimsJson::from_claims(&self.declared_claims),
        };
        serde_json::to_string(&config).unwrap_or_default()
    }

    fn check(&self, request: &Request<'_>, now: SystemTime) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "a static-token provisioner takes a token"));
        };
        let presented = Self::hash_token(token);
        if !bool::from(presented.ct_eq(&self.token_sha256)) {
            return Err(refuse(Denial::BadSignature, "the token does not match"));
        }
        if !self.operations.contains(&request.operation) {
            return Err(refuse(
                Denial::OperationNotAllowed,
                format!("this token does not allow {:?}", request.operation),
            ));
        }
        if matches!(request.operation, Operation::RenewX509 | Operation::RekeyX509)
            && self.claims.disable_renewal
        {
            return Err(refuse(
                Denial::OperationNotAllowed,
                "renewal is disabled (disableRenewal)",
            ));
        }
        let now = unix(now);
        let lifetime = self.claims.tls.pick(None).map_err(|d| refuse(d, "default TLS lifetime"))?;
        Ok(Grant {
            provisioner: self.name.clone(),
            subject: self.subject.clone().unwrap_or_else(|| self.name.clone()),
            sans: Vec::new(),
            not_before: system_time(now),
            not_after: system_time(now.saturating_add(lifetime.as_secs() as i64)),
            operations: vec![request.operation],
            replay_id: None,
        })
    }
}

crate::token_checks::token_provisioner!(StaticTokenProvisioner, Token);
