//! The `Azure` provisioner: what a managed-identity access token must be.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_fetch::{FetchOptions, Fetcher};
use keystation_jose::step_time::{format_go_duration, parse_go_duration};
use keystation_jose::{Algorithm, parse_compact};
use keystation_provisioners::token_checks::{
    Refusal, check_times, jose_refusal, refuse, system_time, unix,
};
use keystation_provisioners::{
    Claims, ClaimsJson, EffectiveClaims, Error, KeySource, ProvisionerContext, ProvisionerKind,
    StepProvisioner, TokenPeek, check_no_templates, common, invalid, tofu_id,
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::keys::{AzureKeySource, default_discovery_url, issuer_of};
use crate::resource::{ResourceId, ResourceKind, parse_resource_id};

/// The audience IMDS tokens are asked for by default: Azure Resource Manager (step-ca's
/// `azureDefaultAudience`).
pub const DEFAULT_AUDIENCE: &str = "https://management.azure.com/";

/// The longest token lifetime accepted by default: the instance metadata service hands out
/// managed-identity tokens that live up to 24 h, and caches them
/// (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#token-caching>).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The longest `maxTokenLifetime` accepted: how long the authority keeps spent token ids
/// (keystation-provisioners' own constant, re-exported here).
pub const LONGEST_TOKEN_LIFETIME: Duration =
    keystation_provisioners::token_checks::LONGEST_TOKEN_LIFETIME;

/// The operations an Azure provisioner can authorize with a token: X.509 signing and SSH
/// host certificates (research note §5). Renewal goes by the certificate; revocation,
/// rekey, SSH user certificates and SSH renew/rekey/revoke are not allowed.
pub const AZURE_OPERATIONS: [Operation; 2] = [Operation::SignX509, Operation::SignSshHost];

/// step-ca's Azure provisioner object, with keystation's `openidConfigUrl` and
/// `maxTokenLifetime`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(rename = "tenantID", default)]
    tenant_id: String,
    #[serde(rename = "resourceGroups", default, skip_serializing_if = "Vec::is_empty")]
    resource_groups: Vec<String>,
    #[serde(rename = "subscriptionIDs", default, skip_serializing_if = "Vec::is_empty")]
    subscription_ids: Vec<String>,
    #[serde(rename = "objectIDs", default, skip_serializing_if = "Vec::is_empty")]
    object_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(rename = "disableCustomSANs", default)]
    disable_custom_sans: bool,
    #[serde(rename = "disableTrustOnFirstUse", default)]
    disable_trust_on_first_use: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
    #[serde(rename = "openidConfigUrl", default, skip_serializing_if = "Option::is_none")]
    openid_config_url: Option<String>,
    #[serde(rename = "maxTokenLifetime", default, skip_serializing_if = "Option::is_none")]
    max_token_lifetime: Option<String>,
}

/// What `keystation authority provisioner add --type Azure` writes: the provisioner's
/// `ca.json` object from plain fields ([`to_json`](Self::to_json)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureOptions {
    /// The provisioner's name.
    pub name: String,
    /// The Microsoft Entra tenant (a GUID or a domain), required.
    pub tenant_id: String,
    /// Resource groups allowed; empty allows any.
    pub resource_groups: Vec<String>,
    /// Subscriptions allowed; empty allows any.
    pub subscription_ids: Vec<String>,
    /// Identity object IDs (`oid`) allowed; empty allows any.
    pub object_ids: Vec<String>,
    /// The token audience (`https://management.azure.com/` by default).
    pub audience: Option<String>,
    /// `disableCustomSANs` (keystation certifies only the VM's name either way).
    pub disable_custom_sans: bool,
    /// `disableTrustOnFirstUse`: each token once, instead of one certificate per instance.
    pub disable_trust_on_first_use: bool,
    /// keystation's `openidConfigUrl` (the tenant's v1 discovery document by default).
    pub openid_config_url: Option<String>,
    /// keystation's `maxTokenLifetime` (24 h by default).
    pub max_token_lifetime: Option<Duration>,
}

fn go_duration(d: Duration) -> String {
    format_go_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl AzureOptions {
    /// The `ca.json` object.
    pub fn to_json(&self) -> String {
        let config = AzureJson {
            kind: ProvisionerKind::Azure.type_name().into(),
            name: self.name.clone(),
            tenant_id: self.tenant_id.clone(),
            resource_groups: self.resource_groups.clone(),
            subscription_ids: self.subscription_ids.clone(),
            object_ids: self.object_ids.clone(),
            audience: self.audience.clone(),
            disable_custom_sans: self.disable_custom_sans,
            disable_trust_on_first_use: self.disable_trust_on_first_use,
            openid_config_url: self.openid_config_url.clone(),
            max_token_lifetime: self.max_token_lifetime.map(go_duration),
            ..AzureJson::default()
        };
        serde_json::to_string(&config).unwrap_or_default()
    }
}

/// The members of a managed-identity token keystation reads besides the registered claims
/// (v1 access tokens, <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>).
#[derive(Debug, Default, Deserialize)]
struct Payload {
    #[serde(default)]
    tid: String,
    #[serde(default)]
    oid: String,
    #[serde(default)]
    xms_mirid: String,
    #[serde(default)]
    xms_az_rid: Option<String>,
}

/// The instance a verified token is for.
#[derive(Debug, PartialEq, Eq)]
struct Instance {
    /// `xms_mirid`: the identity (a VM's system-assigned identity, or a user-assigned one).
    identity: ResourceId,
    /// The VM: `xms_mirid` itself, or for a user-assigned identity `xms_az_rid` when it
    /// names a VM.
    machine: Option<ResourceId>,
}

impl Instance {
    fn of(payload: &Payload) -> Result<Self, Refusal> {
        let Some(identity) = parse_resource_id(&payload.xms_mirid) else {
            return Err(refuse(
                Denial::Malformed,
                format!(
                    "xms_mirid {:?} is not a VM's or user-assigned identity's resource ID",
                    payload.xms_mirid
                ),
            ));
        };
        let machine = match identity.kind {
            ResourceKind::VirtualMachine => Some(identity.clone()),
            ResourceKind::UserAssignedIdentity => {
                match payload.xms_az_rid.as_deref().map(parse_resource_id) {
                    Some(Some(vm)) if vm.kind == ResourceKind::VirtualMachine => Some(vm),
                    Some(_) => {
                        tracing::info!(
                            xms_az_rid = ?payload.xms_az_rid,
                            "xms_az_rid does not name a VM; the user-assigned identity stands for the instance"
                        );
                        None
                    }
                    None => None,
                }
            }
        };
        Ok(Self { identity, machine })
    }

    /// The name certified: the VM's, else the user-assigned identity's (step-ca's choice).
    fn name(&self) -> &str {
        self.machine.as_ref().map_or(&self.identity.name, |m| &m.name)
    }

    /// What trust on first use records: the VM's canonical resource ID, else the identity's.
    fn tofu_key(&self) -> String {
        self.machine.as_ref().unwrap_or(&self.identity).canonical()
    }
}

/// An `Azure` provisioner.
///
/// A token is a managed-identity access token from the instance metadata service, for the
/// provisioner's `audience`. It must be:
///
/// * signed with RS256 by a key of the tenant's JWK set named by its `kid` (the set and the
///   discovery issuer come in as [`TrustedKeys`] from the [`AzureKeySource`]);
/// * issued by the discovery document's issuer, for exactly `audience`, in tenant
///   `tenantID` (`tid`);
/// * unexpired, with an `exp` and a lifetime of at most `maxTokenLifetime` (24 h; step-ca
///   has no bound);
/// * for an `xms_mirid` of exactly one of the two shapes [`parse_resource_id`] accepts;
/// * within `resourceGroups`, `subscriptionIDs` (both read from `xms_mirid`, as step-ca
///   does) and `objectIDs` (`oid`) — for SSH as for X.509 (step-ca skips them for SSH).
///   The comparison ignores case: Azure names and GUIDs are case-insensitive.
///
/// **Which machine.** For a VM's system-assigned identity, `xms_mirid` is the VM. For a
/// user-assigned identity it is the identity, which many VMs may share; newer tokens carry
/// the VM in `xms_az_rid`, used when it parses as a VM resource ID. Without it the
/// identity's name is certified (as step-ca does) and trust on first use covers the
/// identity: one certificate for all the VMs sharing it.
///
/// **Names.** The certificate's subject and only name is that name (step-ca's
/// `disableCustomSANs` rule); keystation never certifies a name the token does not vouch
/// for, so `disableCustomSANs` is accepted but changes nothing.
///
/// **Trust on first use.** The grant's replay id is `tofu:<resource ID, lower case>` from
/// the verified token (step-ca hashes the unverified `xms_mirid`, so a forged token spends
/// a victim's slot): one certificate per instance — X.509 or SSH, the same slot, as in
/// step-ca — until an operator resets it. With `disableTrustOnFirstUse`, the id is the SHA-256 of the token, so
/// each token serves once — step-ca instead lets such tokens be reused without limit,
/// because IMDS hands out the same cached token for up to 24 h; with keystation a host
/// must wait for a fresh token.
#[derive(Debug, Clone)]
pub struct AzureProvisioner {
    name: String,
    config: AzureJson,
    audience: String,
    max_token_lifetime: Duration,
    claims: EffectiveClaims,
    declared_claims: Claims,
    source: Arc<AzureKeySource>,
}

fn duration_field(name: &str, field: &str, value: Option<&str>) -> Result<Option<Duration>, Error> {
    value
        .map(|text| match parse_go_duration(text) {
            Ok(nanos) if nanos > 0 => Ok(Duration::from_nanos(nanos.unsigned_abs())),
            _ => Err(invalid(name, format!("{field}: {text:?} is not a positive Go duration"))),
        })
        .transpose()
}

fn contains_ignore_case(list: &[String], value: &str) -> bool {
    list.iter().any(|item| item.eq_ignore_ascii_case(value))
}

impl AzureProvisioner {
    /// Reads step-ca's Azure provisioner object (`type`, `name`, `tenantID`,
    /// `resourceGroups`, `subscriptionIDs`, `objectIDs`, `audience`, `disableCustomSANs`,
    /// `disableTrustOnFirstUse`, `claims`, `options`) and keystation's `openidConfigUrl` and
    /// `maxTokenLifetime`. Templates and unknown fields are refused.
    pub fn from_json_in(json: &str, context: &ProvisionerContext) -> Result<Self, Error> {
        let config: AzureJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not an Azure provisioner object: {e}")))?;
        let name = config.name.clone();
        let (declared, effective) = common(
            ProvisionerKind::Azure,
            &config.kind,
            &name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(&name, config.options.as_ref())?;
        let tenant = config.tenant_id.as_str();
        if tenant.is_empty()
            || !tenant.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        {
            return Err(invalid(
                &name,
                format!("tenantID {tenant:?} is not a tenant ID or domain"),
            ));
        }
        if config
            .resource_groups
            .iter()
            .chain(&config.subscription_ids)
            .chain(&config.object_ids)
            .any(|s| s.trim().is_empty())
        {
            return Err(invalid(
                &name,
                "resourceGroups, subscriptionIDs and objectIDs may not hold empty entries",
            ));
        }
        let audience = match config.audience.as_deref() {
            None | Some("") => DEFAULT_AUDIENCE.to_owned(),
            Some(a) => a.to_owned(),
        };
        let max_token_lifetime =
            duration_field(&name, "maxTokenLifetime", config.max_token_lifetime.as_deref())?
                .unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME);
        if max_token_lifetime > LONGEST_TOKEN_LIFETIME {
            return Err(invalid(
                &name,
                "maxTokenLifetime may not exceed 24h: the authority keeps spent token ids for that long",
            ));
        }
        let discovery =
            config.openid_config_url.clone().unwrap_or_else(|| default_discovery_url(tenant));
        if !discovery.starts_with("https://") && !discovery.starts_with("http://") {
            return Err(invalid(
                &name,
                format!("openidConfigUrl {discovery:?} is not an http(s) URL"),
            ));
        }
        let fetcher = Fetcher::new(FetchOptions::default())
            .map_err(|e| invalid(&name, format!("HTTP client: {e}")))?;
        Ok(Self {
            name,
            config,
            audience,
            max_token_lifetime,
            claims: effective,
            declared_claims: declared,
            source: Arc::new(AzureKeySource::new(fetcher, discovery)),
        })
    }

    /// The same provisioner fetching the tenant's keys with `options`.
    pub fn with_fetch_options(mut self, options: FetchOptions) -> Result<Self, Error> {
        let fetcher =
            Fetcher::new(options).map_err(|e| invalid(&self.name, format!("HTTP client: {e}")))?;
        self.source = Arc::new(AzureKeySource::new(fetcher, self.source.discovery().to_owned()));
        Ok(self)
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &str {
        &self.config.tenant_id
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// Its `ca.json` object (all of it is public).
    pub fn to_json(&self) -> String {
        let mut config = self.config.clone();
        config.claims = ClaimsJson::from_claims(&self.declared_claims);
        config.options = None;
        serde_json::to_string(&config).unwrap_or_default()
    }

    fn check(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(
                Denial::Malformed,
                "an Azure provisioner takes a managed-identity token",
            ));
        };
        let operation = request.operation;
        match operation {
            Operation::SignX509 => {}
            Operation::SignSshHost if !self.claims.enable_ssh_ca => {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    "SSH certificates are not enabled for this provisioner (enableSSHCA)",
                ));
            }
            Operation::SignSshHost => {}
            other => {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    format!("an Azure provisioner does not authorize {other:?}"),
                ));
            }
        }
        let Some(issuer) = issuer_of(keys) else {
            return Err(refuse(
                Denial::UnknownKey,
                "the tenant's discovery issuer is not among the trusted keys",
            ));
        };

        // The signature first: nothing below reads unverified data.
        let jws = parse_compact(token).map_err(|e| jose_refusal(&e))?;
        let Some(kid) = jws.header().kid.as_deref() else {
            return Err(refuse(Denial::UnknownKey, "the token names no kid"));
        };
        let mut verified = None;
        let mut last = None;
        for (_, key) in keys.keys.iter().filter(|(k, _)| k.as_deref() == Some(kid)) {
            match jws.verify_with(key, Algorithm::Rs256) {
                Ok(v) => {
                    verified = Some(v);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(verified) = verified else {
            return Err(match last {
                Some(e) => jose_refusal(&e),
                None => refuse(
                    Denial::UnknownKey,
                    format!("kid {kid:?} is not among the tenant's keys"),
                ),
            });
        };
        let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
        let payload: Payload = serde_json::from_slice(verified.payload())
            .map_err(|e| refuse(Denial::Malformed, format!("the token's claims: {e}")))?;

        if claims.iss.as_deref() != Some(issuer) {
            return Err(refuse(
                Denial::WrongIssuer,
                format!("iss {:?} is not {issuer:?}", claims.iss),
            ));
        }
        if !claims.aud.contains(&self.audience) {
            return Err(refuse(
                Denial::WrongAudience,
                format!("aud {:?} does not name {:?}", claims.aud, self.audience),
            ));
        }
        if payload.tid != self.config.tenant_id {
            return Err(refuse(
                Denial::WrongIssuer,
                format!("tid {:?} is not tenant {:?}", payload.tid, self.config.tenant_id),
            ));
        }
        let now_unix = unix(now);
        check_times(&claims, now_unix, self.max_token_lifetime)?;
        let instance = Instance::of(&payload)?;
        let id = &instance.identity;
        if !self.config.resource_groups.is_empty()
            && !contains_ignore_case(&self.config.resource_groups, &id.resource_group)
        {
            return Err(refuse(
                Denial::PolicyViolation,
                format!("resource group {:?} is not allowed", id.resource_group),
            ));
        }
        if !self.config.subscription_ids.is_empty()
            && !contains_ignore_case(&self.config.subscription_ids, &id.subscription)
        {
            return Err(refuse(
                Denial::PolicyViolation,
                format!("subscription {:?} is not allowed", id.subscription),
            ));
        }
        if !self.config.object_ids.is_empty()
            && (payload.oid.is_empty()
                || !contains_ignore_case(&self.config.object_ids, &payload.oid))
        {
            return Err(refuse(
                Denial::PolicyViolation,
                format!("identity object ID {:?} is not allowed", payload.oid),
            ));
        }

        let replay_id = if self.config.disable_trust_on_first_use {
            let digest = sha2::Sha256::digest(token.as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
        } else {
            tofu_id(&instance.tofu_key())
        };
        let bounds = match operation {
            Operation::SignSshHost => self.claims.ssh_host,
            _ => self.claims.tls,
        };
        let lifetime = bounds.pick(None).map_err(|d| refuse(d, "default certificate lifetime"))?;
        let name = instance.name().to_owned();
        Ok(Grant {
            provisioner: self.name.clone(),
            subject: name.clone(),
            sans: vec![name],
            not_before: system_time(now_unix),
            not_after: system_time(now_unix.saturating_add(lifetime.as_secs() as i64)),
            operations: vec![operation],
            replay_id: Some(replay_id),
        })
    }
}

impl keystation_core::Provisioner for AzureProvisioner {
    fn name(&self) -> &str {
        &self.name
    }

    fn authorize(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, keystation_core::Error> {
        self.check(request, keys, now).map_err(|r| r.report(&self.name))
    }
}

impl StepProvisioner for AzureProvisioner {
    fn kind(&self) -> ProvisionerKind {
        ProvisionerKind::Azure
    }

    fn effective_claims(&self) -> Option<&EffectiveClaims> {
        Some(&self.claims)
    }

    /// step-ca's routing by tenant (`tid`), narrowed to tokens for this audience.
    fn routes(&self, peek: &TokenPeek) -> bool {
        peek.tid.as_deref() == Some(self.config.tenant_id.as_str())
            && peek.aud.contains(&self.audience)
    }

    fn key_source(&self) -> Option<Arc<dyn KeySource>> {
        Some(self.source.clone())
    }

    fn to_json(&self) -> String {
        AzureProvisioner::to_json(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SUB: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";

    #[test]
    fn configuration_is_read_and_written_with_step_names() {
        let json = r#"{"type":"Azure","name":"azure","tenantID":"72f988bf-86f1-41af-91ab-2d7cd011db47","resourceGroups":["rg"],"subscriptionIDs":["s"],"objectIDs":["o"],"disableTrustOnFirstUse":true,"claims":{"enableSSHCA":true},"maxTokenLifetime":"12h"}"#;
        let p = AzureProvisioner::from_json_in(json, &ProvisionerContext::default()).unwrap();
        assert_eq!(p.audience(), DEFAULT_AUDIENCE);
        assert_eq!(p.max_token_lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(
            p.source.discovery(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/.well-known/openid-configuration"
        );
        let out: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(out["tenantID"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(out["objectIDs"][0], "o");
        assert!(
            AzureProvisioner::from_json_in(&p.to_json(), &ProvisionerContext::default()).is_ok()
        );
        for bad in [
            r#"{"type":"Azure","name":"a"}"#,
            r#"{"type":"Azure","name":"a","tenantID":"t/../x"}"#,
            r#"{"type":"Azure","name":"a","tenantID":"t","resourceGroups":[" "]}"#,
            r#"{"type":"Azure","name":"a","tenantID":"t","maxTokenLifetime":"0s"}"#,
            r#"{"type":"Azure","name":"a","tenantID":"t","openidConfigUrl":"file:///x"}"#,
            r#"{"type":"Azure","name":"a","tenantID":"t","extra":true}"#,
            r#"{"type":"Azure","name":"a","tenantID":"t","maxTokenLifetime":"48h"}"#,
        ] {
            assert!(
                AzureProvisioner::from_json_in(bad, &ProvisionerContext::default()).is_err(),
                "{bad}"
            );
        }
        let options = AzureOptions {
            name: "az".into(),
            tenant_id: "contoso.onmicrosoft.com".into(),
            max_token_lifetime: Some(Duration::from_secs(3600)),
            ..AzureOptions::default()
        };
        let p = AzureProvisioner::from_json_in(&options.to_json(), &ProvisionerContext::default())
            .unwrap();
        assert_eq!(p.tenant_id(), "contoso.onmicrosoft.com");
        assert!(options.to_json().contains(r#""maxTokenLifetime":"1h0m0s""#));
    }

    #[test]
    fn user_assigned_identities_take_the_vm_from_xms_az_rid() {
        let vm = format!(
            "/subscriptions/{SUB}/resourcegroups/vms/providers/Microsoft.Compute/virtualMachines/web-1"
        );
        let uai = format!(
            "/subscriptions/{SUB}/resourcegroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shared"
        );
        let of = |mirid: &str, rid: Option<&str>| {
            Instance::of(&Payload {
                xms_mirid: mirid.into(),
                xms_az_rid: rid.map(Into::into),
                ..Payload::default()
            })
        };
        let system = of(&vm, None).unwrap();
        assert_eq!((system.name(), system.tofu_key()), ("web-1", vm.to_lowercase()));
        let user = of(&uai, Some(&vm)).unwrap();
        assert_eq!((user.name(), user.tofu_key()), ("web-1", vm.to_lowercase()));
        assert_eq!(user.identity.resource_group, "ids", "filters read xms_mirid");
        let bare = of(&uai, None).unwrap();
        assert_eq!((bare.name(), bare.tofu_key()), ("shared", uai.to_lowercase()));
        let vmss = format!(
            "/subscriptions/{SUB}/resourcegroups/x/providers/Microsoft.Compute/virtualMachineScaleSets/ss"
        );
        assert_eq!(of(&uai, Some(&vmss)).unwrap().name(), "shared");
        assert!(of(&vmss, None).is_err());
        assert!(of(&vm.replace("Microsoft.Compute", "Microsoft_Compute"), None).is_err());
    }
}
