//! step-ca's `JWK` provisioner: tokens signed by a key whose public half the authority
//! holds (and whose private half it keeps encrypted with the provisioner password as
//! `encryptedKey`, for step's client to fetch from `/provisioners` and decrypt).
//!
//! What a token must be, beyond step-ca (`jwk.go`): the header's `kid` names the
//! provisioner's key and the algorithm is the key's (`none` and HS* never); the common
//! checks of [`token_checks`](crate::token_checks) (audience of the operation's endpoint,
//! `exp` required, bounded lifetime, `jti` required); an SSH token only for SSH signing,
//! and an X.509 token never for SSH.
//!
//! Operations (research note §5): X.509 sign, renew and revoke; SSH user and host
//! signing (with `enableSSHCA`) and SSH revoke. Rekey and SSH renew/rekey are not allowed.

use std::time::{Duration, SystemTime};

use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request};
use keystation_jose::{Jwk, parse_compact};
use serde::{Deserialize, Serialize};

use crate::config::{ClaimsJson, ProvisionerContext, check_no_templates, common, invalid};
use crate::token_checks::{
    DEFAULT_MAX_TOKEN_LIFETIME, Refusal, check_audience, check_identity, check_times, jose_refusal,
    refuse, step_grant, unix,
};
use crate::{Claims, EffectiveClaims, Error, ProvisionerKind};

/// The operations a JWK provisioner can authorize.
pub const JWK_OPERATIONS: [Operation; 7] = [
    Operation::SignX509,
    Operation::RenewX509,
    Operation::RevokeX509,
    Operation::SignSshUser,
    Operation::SignSshHost,
    Operation::RevokeSsh,
    Operation::Administer,
];

/// A `JWK` provisioner.
#[derive(Debug, Clone)]
pub struct JwkProvisioner {
    name: String,
    key: Jwk,
    encrypted_key: Option<String>,
    claims: EffectiveClaims,
    declared_claims: Claims,
    max_token_lifetime: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwkJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    key: serde_json::Value,
    #[serde(rename = "encryptedKey", default, skip_serializing_if = "Option::is_none")]
    encrypted_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
}

impl JwkProvisioner {
    /// A provisioner named `name` that trusts tokens signed by `key` (its `kid` is what the
    /// tokens' headers must name; a key without one gets its RFC 7638 thumbprint, as step
    /// gives), with the resolved `claims`. `encrypted_key` is step's `encryptedKey`, served
    /// to clients as is.
    pub fn new(
        name: impl Into<String>,
        key: Jwk,
        encrypted_key: Option<String>,
        claims: EffectiveClaims,
    ) -> Self {
        let key = match key.kid() {
            Some(_) => key,
            None => {
                let kid = key.thumbprint();
                key.with_kid(kid)
            }
        };
        Self {
            name: name.into(),
            key,
            encrypted_key,
            claims,
            declared_claims: Claims::default(),
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        }
    }

    /// The same provisioner accepting tokens that live at most `lifetime`.
    #[must_use]
    pub fn with_max_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_token_lifetime = lifetime;
        self
    }

    /// The public key tokens are verified with.
    pub fn key(&self) -> &Jwk {
        &self.key
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        self.key.kid().unwrap_or_default()
    }

    /// step's `encryptedKey`: the private JWK encrypted with the provisioner password.
    pub fn encrypted_key(&self) -> Option<&str> {
        self.encrypted_key.as_deref()
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// Reads step-ca's JWK provisioner object (`type`, `name`, `key`, `encryptedKey`,
    /// `claims`, `options`), its claims over `authority`. The key must be public; `options`
    /// may not configure templates; unknown fields are refused.
    pub fn from_json(json: &str, authority: &Claims) -> Result<Self, Error> {
        Self::from_json_in(json, &ProvisionerContext::with_claims(*authority))
    }

    /// [`from_json`](Self::from_json) with the authority's whole context.
    pub fn from_json_in(json: &str, context: &ProvisionerContext) -> Result<Self, Error> {
        let config: JwkJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not a JWK provisioner object: {e}")))?;
        let name = config.name.as_str();
        let (declared, effective) = common(
            ProvisionerKind::Jwk,
            &config.kind,
            name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(name, config.options.as_ref())?;
        let key =
            Jwk::from_json_value(&config.key).map_err(|e| invalid(name, format!("key: {e}")))?;
        if let Some(encrypted) = &config.encrypted_key
            && encrypted.split('.').count() != 5
        {
            return Err(invalid(name, "encryptedKey is not a compact JWE"));
        }
        let mut p = Self::new(name, key, config.encrypted_key, effective)
            .with_max_token_lifetime(context.max_token_lifetime);
        p.declared_claims = declared;
        Ok(p)
    }

    /// step-ca's JWK provisioner object, as `/provisioners` lists it: the public key and
    /// `encryptedKey`, never private material.
    pub fn to_json(&self) -> String {
        let config = JwkJson {
            kind: ProvisionerKind::Jwk.type_name().into(),
            name: self.name.clone(),
            key: self.key.to_json_value(),
            encrypted_key: self.encrypted_key.clone(),
            claims: ClaimsJson::from_claims(&self.declared_claims),
            options: None,
        };
        serde_json::to_string(&config).unwrap_or_default()
    }

    fn check(&self, request: &Request<'_>, now: SystemTime) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "a JWK provisioner takes a token"));
        };
        if !JWK_OPERATIONS.contains(&request.operation) {
            return Err(refuse(
                Denial::OperationNotAllowed,
                format!("a JWK provisioner does not authorize {:?}", request.operation),
            ));
        }
        let jws = parse_compact(token).map_err(|e| jose_refusal(&e))?;
        match jws.header().kid.as_deref() {
            Some(kid) if kid == self.kid() => {}
            other => {
                return Err(refuse(
                    Denial::UnknownKey,
                    format!("kid {other:?} is not this provisioner's key {:?}", self.kid()),
                ));
            }
        }
        let verified = jws.verify(&self.key).map_err(|e| jose_refusal(&e))?;
        let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
        check_identity(&claims, &self.name)?;
        check_audience(&claims.aud, request.audience, request.operation, None)?;
        let now = unix(now);
        check_times(&claims, now, self.max_token_lifetime)?;
        step_grant(&self.name, &claims, &self.claims, request.operation, now, None)
    }
}

crate::token_checks::token_provisioner!(JwkProvisioner, Jwk);
