//! Provisioners from their `ca.json` objects (step-ca's field names) and back, and step-ca's
//! `claims` object with Go duration strings.

use std::sync::Arc;
use std::time::Duration;

use keystation_core::key::PublicKey;
use keystation_jose::step_time::{format_go_duration, parse_go_duration};
use serde::{Deserialize, Serialize};

use crate::token_checks::DEFAULT_MAX_TOKEN_LIFETIME;
use crate::{
    Claims, Error, JwkProvisioner, ProvisionerKind, SshPopProvisioner, StaticTokenProvisioner,
    StepProvisioner, X5cProvisioner, YubiKeyAttestationProvisioner,
};

/// What a provisioner's configuration is read against: the authority's settings that
/// step-ca keeps outside the provisioner object.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProvisionerContext {
    /// The authority's `claims` (step-ca's `authority.claims`), under each provisioner's own.
    pub claims: Claims,
    /// The longest token lifetime accepted (`exp` − max(`nbf`, `iat`)); 5 minutes by default.
    pub max_token_lifetime: Duration,
    /// The SSH host CA's public keys (step-ca's `ssh.hostKey`), which SSHPOP certificates must
    /// be signed by.
    pub ssh_host_ca_keys: Vec<PublicKey>,
    /// The SSH user CA's public keys (step-ca's `ssh.userKey`).
    pub ssh_user_ca_keys: Vec<PublicKey>,
}

impl Default for ProvisionerContext {
    fn default() -> Self {
        Self {
            claims: Claims::default(),
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            ssh_host_ca_keys: Vec::new(),
            ssh_user_ca_keys: Vec::new(),
        }
    }
}

impl ProvisionerContext {
    /// A context with the authority's claims and the defaults otherwise.
    pub fn with_claims(claims: Claims) -> Self {
        Self { claims, ..Self::default() }
    }
}

/// A provisioner from its `ca.json` object, its claims layered over `authority_claims`:
/// `JWK`, `X5C`, `SSHPOP` (which needs the SSH CA keys: use
/// [`provisioner_from_json_in`]), `StaticToken` and `YubiKeyAttestation`. The `type` is
/// matched case-insensitively, as step-ca does. Other types are
/// [`Error::InvalidProvisioner`].
pub fn provisioner_from_json(
    json: &str,
    authority_claims: &Claims,
) -> Result<Arc<dyn StepProvisioner>, Error> {
    provisioner_from_json_in(json, &ProvisionerContext::with_claims(*authority_claims))
}

/// [`provisioner_from_json`] with the whole authority context (token lifetime, SSH CA keys).
pub fn provisioner_from_json_in(
    json: &str,
    context: &ProvisionerContext,
) -> Result<Arc<dyn StepProvisioner>, Error> {
    provisioner_from_json_with(json, context, &[])
}

/// [`provisioner_from_json_in`] that also builds the types of `factories` (the identity
/// and cloud provisioners, each in its own crate): a type with a factory is built by it,
/// before this crate's own types are tried.
pub fn provisioner_from_json_with(
    json: &str,
    context: &ProvisionerContext,
    factories: &[crate::Factory],
) -> Result<Arc<dyn StepProvisioner>, Error> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        name: String,
    }
    let head: Head = serde_json::from_str(json).map_err(|e| Error::InvalidProvisioner {
        name: String::new(),
        reason: format!("not a provisioner object: {e}"),
    })?;
    let kind = ProvisionerKind::from_type_name(&head.kind);
    if let Some(factory) = factories.iter().find(|f| Some(f.kind) == kind) {
        return (factory.build)(json, context);
    }
    match kind {
        Some(ProvisionerKind::Jwk) => Ok(Arc::new(JwkProvisioner::from_json_in(json, context)?)),
        Some(ProvisionerKind::X5c) => Ok(Arc::new(X5cProvisioner::from_json_in(json, context)?)),
        Some(ProvisionerKind::SshPop) => {
            Ok(Arc::new(SshPopProvisioner::from_json_in(json, context)?))
        }
        Some(ProvisionerKind::Token) => {
            Ok(Arc::new(StaticTokenProvisioner::from_json(json, &context.claims)?))
        }
        Some(ProvisionerKind::YubiKeyAttestation) => {
            Ok(Arc::new(YubiKeyAttestationProvisioner::from_json(json, &context.claims)?))
        }
        Some(other) => Err(invalid(
            &head.name,
            format!(
                "provisioner type {:?} is not built into this keystation (its cargo feature is off)",
                other.type_name()
            ),
        )),
        None => {
            Err(invalid(&head.name, format!("provisioner type {:?} is not supported", head.kind)))
        }
    }
}

/// A provisioner configuration error naming `provisioner`.
pub fn invalid(provisioner: &str, reason: impl Into<String>) -> Error {
    Error::InvalidProvisioner { name: provisioner.to_owned(), reason: reason.into() }
}

/// Checks the common fields (`type` is `kind`, a name) and resolves the claims over the
/// authority's: the declared claims (for writing the object back) and the effective ones.
pub fn common(
    kind: ProvisionerKind,
    declared_type: &str,
    name: &str,
    claims: Option<&ClaimsJson>,
    authority: &Claims,
) -> Result<(Claims, crate::EffectiveClaims), Error> {
    if ProvisionerKind::from_type_name(declared_type) != Some(kind) {
        return Err(invalid(name, format!("type {declared_type:?} is not {:?}", kind.type_name())));
    }
    if name.trim().is_empty() {
        return Err(invalid(name, "the name is empty"));
    }
    let declared = match claims {
        Some(c) => c.to_claims(name)?,
        None => Claims::default(),
    };
    let effective = declared.over(authority).resolve()?;
    Ok((declared, effective))
}

/// step-ca's `claims` object: durations as Go writes them (`5m0s`, `24h0m0s`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsJson {
    #[serde(rename = "minTLSCertDuration", default, skip_serializing_if = "Option::is_none")]
    min_tls: Option<String>,
    #[serde(rename = "maxTLSCertDuration", default, skip_serializing_if = "Option::is_none")]
    max_tls: Option<String>,
    #[serde(rename = "defaultTLSCertDuration", default, skip_serializing_if = "Option::is_none")]
    default_tls: Option<String>,
    #[serde(rename = "minUserSSHCertDuration", default, skip_serializing_if = "Option::is_none")]
    min_user: Option<String>,
    #[serde(rename = "maxUserSSHCertDuration", default, skip_serializing_if = "Option::is_none")]
    max_user: Option<String>,
    #[serde(
        rename = "defaultUserSSHCertDuration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    default_user: Option<String>,
    #[serde(rename = "minHostSSHCertDuration", default, skip_serializing_if = "Option::is_none")]
    min_host: Option<String>,
    #[serde(rename = "maxHostSSHCertDuration", default, skip_serializing_if = "Option::is_none")]
    max_host: Option<String>,
    #[serde(
        rename = "defaultHostSSHCertDuration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    default_host: Option<String>,
    #[serde(rename = "enableSSHCA", default, skip_serializing_if = "Option::is_none")]
    enable_ssh_ca: Option<bool>,
    #[serde(rename = "disableRenewal", default, skip_serializing_if = "Option::is_none")]
    disable_renewal: Option<bool>,
    #[serde(rename = "allowRenewalAfterExpiry", default, skip_serializing_if = "Option::is_none")]
    allow_renewal_after_expiry: Option<bool>,
}

impl ClaimsJson {
    /// The claims, durations parsed; errors name `provisioner` and the field.
    pub fn to_claims(&self, provisioner: &str) -> Result<Claims, Error> {
        let d = |field: &str, value: &Option<String>| -> Result<Option<Duration>, Error> {
            value
                .as_deref()
                .map(|text| match parse_go_duration(text) {
                    Ok(nanos) if nanos >= 0 => Ok(Duration::from_nanos(nanos.unsigned_abs())),
                    _ => Err(invalid(
                        provisioner,
                        format!("claims.{field}: {text:?} is not a positive Go duration"),
                    )),
                })
                .transpose()
        };
        Ok(Claims {
            min_tls_duration: d("minTLSCertDuration", &self.min_tls)?,
            max_tls_duration: d("maxTLSCertDuration", &self.max_tls)?,
            default_tls_duration: d("defaultTLSCertDuration", &self.default_tls)?,
            min_ssh_user_duration: d("minUserSSHCertDuration", &self.min_user)?,
            max_ssh_user_duration: d("maxUserSSHCertDuration", &self.max_user)?,
            default_ssh_user_duration: d("defaultUserSSHCertDuration", &self.default_user)?,
            min_ssh_host_duration: d("minHostSSHCertDuration", &self.min_host)?,
            max_ssh_host_duration: d("maxHostSSHCertDuration", &self.max_host)?,
            default_ssh_host_duration: d("defaultHostSSHCertDuration", &self.default_host)?,
            enable_ssh_ca: self.enable_ssh_ca,
            disable_renewal: self.disable_renewal,
            allow_renewal_after_expiry: self.allow_renewal_after_expiry,
        })
    }

    /// The object for `claims`, or `None` when nothing is set.
    pub fn from_claims(claims: &Claims) -> Option<Self> {
        if *claims == Claims::default() {
            return None;
        }
        let s = |d: Option<Duration>| {
            d.map(|d| format_go_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
        };
        Some(Self {
            min_tls: s(claims.min_tls_duration),
            max_tls: s(claims.max_tls_duration),
            default_tls: s(claims.default_tls_duration),
            min_user: s(claims.min_ssh_user_duration),
            max_user: s(claims.max_ssh_user_duration),
            default_user: s(claims.default_ssh_user_duration),
            min_host: s(claims.min_ssh_host_duration),
            max_host: s(claims.max_ssh_host_duration),
            default_host: s(claims.default_ssh_host_duration),
            enable_ssh_ca: claims.enable_ssh_ca,
            disable_renewal: claims.disable_renewal,
            allow_renewal_after_expiry: claims.allow_renewal_after_expiry,
        })
    }
}

/// step-ca's `claims` object (as in `ca.json`'s `authority.claims`) into [`Claims`].
pub fn claims_from_json(json: &str) -> Result<Claims, Error> {
    let raw: ClaimsJson =
        serde_json::from_str(json).map_err(|e| invalid("", format!("not a claims object: {e}")))?;
    raw.to_claims("")
}

/// [`Claims`] as step-ca's `claims` object, durations as Go writes them.
pub fn claims_to_json(claims: &Claims) -> String {
    ClaimsJson::from_claims(claims)
        .and_then(|c| serde_json::to_string(&c).ok())
        .unwrap_or_else(|| "{}".into())
}

/// step-ca's `options` object: accepted only when it configures nothing, since keystation
/// does not apply templates and must not pretend to.
pub fn check_no_templates(name: &str, options: Option<&serde_json::Value>) -> Result<(), Error> {
    match options {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::Object(o))
            if o.values().all(|v| v.is_null() || v.as_object().is_some_and(|m| m.is_empty())) =>
        {
            Ok(())
        }
        Some(_) => Err(invalid(name, "options (certificate templates) are not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_json_round_trips_with_step_names() {
        let json = r#"{"minTLSCertDuration":"5m","maxTLSCertDuration":"48h","defaultTLSCertDuration":"24h0m0s","enableSSHCA":true,"disableRenewal":false,"allowRenewalAfterExpiry":true}"#;
        let claims = claims_from_json(json).map_err(|e| e.to_string());
        let Ok(claims) = claims else { panic!("{claims:?}") };
        assert_eq!(claims.max_tls_duration, Some(Duration::from_secs(48 * 3600)));
        assert_eq!(claims.enable_ssh_ca, Some(true));
        assert_eq!(claims.allow_renewal_after_expiry, Some(true));
        let out = claims_to_json(&claims);
        assert!(out.contains(r#""maxTLSCertDuration":"48h0m0s""#), "{out}");
        assert!(out.contains(r#""minTLSCertDuration":"5m0s""#), "{out}");
        assert_eq!(claims_from_json(&out).ok(), Some(claims));
        assert!(claims_from_json(r#"{"minTLSCertDuration":"-5m"}"#).is_err());
        assert!(claims_from_json(r#"{"maxTLSCertDurations":"5m"}"#).is_err(), "typos refused");
        assert_eq!(claims_to_json(&Claims::default()), "{}");
    }

    #[test]
    fn unknown_types_are_refused() {
        for json in [r#"{"type":"ACME","name":"acme"}"#, r#"{"name":"x"}"#, "[]"] {
            let r = provisioner_from_json(json, &Claims::default());
            assert!(matches!(r, Err(Error::InvalidProvisioner { .. })), "{json}");
        }
    }
}
