//! The `GCP` provisioner: what a Google instance identity token must be.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_fetch::{FetchOptions, Fetcher};
use keystation_jose::step_time::{format_go_duration, parse_go_duration};
use keystation_jose::{Algorithm, parse_compact};
use keystation_provisioners::token_checks::{
    Refusal, check_audience, check_times, jose_refusal, refuse, system_time, unix,
};
use keystation_provisioners::{
    Claims, ClaimsJson, EffectiveClaims, Error, KeySource, ProvisionerContext, ProvisionerKind,
    StepProvisioner, TokenPeek, check_no_templates, common, invalid, tofu_id,
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::keys::{GOOGLE_CERTS_URL, GoogleKeySource};

/// The issuer of Google's identity tokens (step-ca checks the same).
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The longest identity token lifetime accepted by default: Google's identity tokens live
/// one hour (`exp` = `iat` + 3600).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest `maxTokenLifetime` accepted: how long the authority keeps spent token ids
/// (keystation-provisioners' own constant, re-exported here).
pub const LONGEST_TOKEN_LIFETIME: Duration =
    keystation_provisioners::token_checks::LONGEST_TOKEN_LIFETIME;

/// The operations a GCP provisioner can authorize with a token: X.509 signing, SSH host
/// certificates and, when `disableSSHCAUser` is `false`, SSH user certificates (research
/// note §5). Renewal goes by the certificate, not a token; revocation, rekey and the SSH
/// renew/rekey/revoke are not allowed.
pub const GCP_OPERATIONS: [Operation; 3] =
    [Operation::SignX509, Operation::SignSshHost, Operation::SignSshUser];

/// step-ca's GCP provisioner object, with keystation's `certsUrl` and `maxTokenLifetime`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcpJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(rename = "serviceAccounts", default, skip_serializing_if = "Vec::is_empty")]
    service_accounts: Vec<String>,
    #[serde(rename = "projectIDs", default, skip_serializing_if = "Vec::is_empty")]
    project_ids: Vec<String>,
    #[serde(rename = "organizationID", default, skip_serializing_if = "Option::is_none")]
    organization_id: Option<String>,
    #[serde(rename = "disableCustomSANs", default)]
    disable_custom_sans: bool,
    #[serde(rename = "disableTrustOnFirstUse", default)]
    disable_trust_on_first_use: bool,
    #[serde(rename = "disableSSHCAUser", default, skip_serializing_if = "Option::is_none")]
    disable_ssh_ca_user: Option<bool>,
    #[serde(rename = "disableSSHCAHost", default, skip_serializing_if = "Option::is_none")]
    disable_ssh_ca_host: Option<bool>,
    #[serde(rename = "instanceAge", default, skip_serializing_if = "Option::is_none")]
    instance_age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
    #[serde(rename = "certsUrl", default, skip_serializing_if = "Option::is_none")]
    certs_url: Option<String>,
    #[serde(rename = "maxTokenLifetime", default, skip_serializing_if = "Option::is_none")]
    max_token_lifetime: Option<String>,
}

/// What `keystation authority provisioner add --type GCP` writes: the provisioner's
/// `ca.json` object from plain fields ([`to_json`](Self::to_json)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcpOptions {
    /// The provisioner's name (`gcp/<name>` is the audience fragment).
    pub name: String,
    /// Service accounts (the token's `sub` or `email`) allowed; empty allows any.
    pub service_accounts: Vec<String>,
    /// Project IDs allowed; empty allows any.
    pub project_ids: Vec<String>,
    /// `disableCustomSANs` (keystation certifies only the instance's names either way).
    pub disable_custom_sans: bool,
    /// `disableTrustOnFirstUse`: each token once, instead of one certificate per instance.
    pub disable_trust_on_first_use: bool,
    /// `disableSSHCAUser`: `Some(false)` allows SSH user certificates (off by default).
    pub disable_ssh_ca_user: Option<bool>,
    /// `disableSSHCAHost`: `Some(true)` refuses SSH host certificates.
    pub disable_ssh_ca_host: Option<bool>,
    /// `instanceAge`: refuse instances created longer ago than this.
    pub instance_age: Option<Duration>,
    /// keystation's `certsUrl` (Google's JWK set by default).
    pub certs_url: Option<String>,
    /// keystation's `maxTokenLifetime` (1 h by default).
    pub max_token_lifetime: Option<Duration>,
}

fn go_duration(d: Duration) -> String {
    format_go_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl GcpOptions {
    /// The `ca.json` object.
    pub fn to_json(&self) -> String {
        let config = GcpJson {
            kind: ProvisionerKind::Gcp.type_name().into(),
            name: self.name.clone(),
            service_accounts: self.service_accounts.clone(),
            project_ids: self.project_ids.clone(),
            disable_custom_sans: self.disable_custom_sans,
            disable_trust_on_first_use: self.disable_trust_on_first_use,
            disable_ssh_ca_user: self.disable_ssh_ca_user,
            disable_ssh_ca_host: self.disable_ssh_ca_host,
            instance_age: self.instance_age.map(go_duration),
            certs_url: self.certs_url.clone(),
            max_token_lifetime: self.max_token_lifetime.map(go_duration),
            ..GcpJson::default()
        };
        serde_json::to_string(&config).unwrap_or_default()
    }
}

/// `google.compute_engine` of a `format=full` identity token
/// (<https://cloud.google.com/compute/docs/instances/verifying-instance-identity#payload>).
#[derive(Debug, Default, Deserialize)]
struct ComputeEngine {
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    instance_name: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    instance_creation_timestamp: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct Google {
    #[serde(default)]
    compute_engine: Option<ComputeEngine>,
}

/// The members of the token keystation reads besides the registered claims.
#[derive(Debug, Default, Deserialize)]
struct Payload {
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    google: Option<Google>,
}

/// A `GCP` provisioner.
///
/// A token is Google's instance identity token (`format=full`) for the audience
/// `<CA>/1.0/sign#gcp/<name>`, which step's client asks the metadata server for. It must be:
///
/// * signed with RS256 by a key of Google's JWK set named by its `kid` (the set comes in
///   as [`TrustedKeys`] from the [`GoogleKeySource`]);
/// * issued by `https://accounts.google.com`, for the sign endpoint with the fragment
///   `gcp/<name>` (SSH signing accepts that same audience, as step-ca does, or the SSH
///   endpoint's);
/// * unexpired, with an `exp` (step-ca does not require one) and a lifetime of at most
///   `maxTokenLifetime` (1 h);
/// * for a listed service account (`sub`, or a verified `email`), a listed project, an
///   instance created within `instanceAge`, and with `instance_id`, `instance_name`,
///   `project_id` and `zone` all present.
///
/// **Names.** The certificate's subject is the instance name and its names the instance's
/// internal DNS names, `<name>.c.<project>.internal` and `<name>.<zone>.c.<project>.internal`
/// (step-ca's `disableCustomSANs` rule). step-ca's default also accepts any other name the
/// request asks for, "trusted" by first use only; keystation never certifies a name the
/// token does not vouch for, so `disableCustomSANs` is accepted but changes nothing.
///
/// **Trust on first use.** The grant's replay id is `tofu:<project_id>/<instance_id>`, taken
/// from the verified token (step-ca hashes the unverified instance id, so a forged token
/// spends a victim's slot): one certificate per instance — X.509 or SSH, the same slot, as
/// in step-ca — until an operator resets it (`keystation authority tofu reset`).
/// With `disableTrustOnFirstUse`, the id is the SHA-256 of the token: each token once.
#[derive(Debug, Clone)]
pub struct GcpProvisioner {
    name: String,
    config: GcpJson,
    instance_age: Option<Duration>,
    max_token_lifetime: Duration,
    claims: EffectiveClaims,
    declared_claims: Claims,
    source: Arc<GoogleKeySource>,
}

fn duration_field(name: &str, field: &str, value: Option<&str>) -> Result<Option<Duration>, Error> {
    value
        .map(|text| match parse_go_duration(text) {
            Ok(nanos) if nanos > 0 => Ok(Duration::from_nanos(nanos.unsigned_abs())),
            _ => Err(invalid(name, format!("{field}: {text:?} is not a positive Go duration"))),
        })
        .transpose()
}

impl GcpProvisioner {
    /// Reads step-ca's GCP provisioner object (`type`, `name`, `serviceAccounts`,
    /// `projectIDs`, `disableCustomSANs`, `disableTrustOnFirstUse`, `disableSSHCAUser`,
    /// `disableSSHCAHost`, `instanceAge`, `claims`, `options`) and keystation's `certsUrl`
    /// and `maxTokenLifetime`. `organizationID` (a Cloud Resource Manager lookup) is refused,
    /// as are templates and unknown fields.
    pub fn from_json_in(json: &str, context: &ProvisionerContext) -> Result<Self, Error> {
        let config: GcpJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not a GCP provisioner object: {e}")))?;
        let name = config.name.clone();
        let (declared, effective) = common(
            ProvisionerKind::Gcp,
            &config.kind,
            &name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(&name, config.options.as_ref())?;
        if config.organization_id.as_deref().is_some_and(|o| !o.is_empty()) {
            return Err(invalid(
                &name,
                "organizationID is not supported (it needs Google's Cloud Resource Manager API): list projectIDs instead",
            ));
        }
        if config.service_accounts.iter().chain(&config.project_ids).any(|s| s.trim().is_empty()) {
            return Err(invalid(
                &name,
                "serviceAccounts and projectIDs may not hold empty entries",
            ));
        }
        let instance_age = duration_field(&name, "instanceAge", config.instance_age.as_deref())?;
        let max_token_lifetime =
            duration_field(&name, "maxTokenLifetime", config.max_token_lifetime.as_deref())?
                .unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME);
        if max_token_lifetime > LONGEST_TOKEN_LIFETIME {
            return Err(invalid(
                &name,
                "maxTokenLifetime may not exceed 24h: the authority keeps spent token ids for that long",
            ));
        }
        let url = config.certs_url.clone().unwrap_or_else(|| GOOGLE_CERTS_URL.to_owned());
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(invalid(&name, format!("certsUrl {url:?} is not an http(s) URL")));
        }
        let fetcher = Fetcher::new(FetchOptions::default())
            .map_err(|e| invalid(&name, format!("HTTP client: {e}")))?;
        Ok(Self {
            name,
            config,
            instance_age,
            max_token_lifetime,
            claims: effective,
            declared_claims: declared,
            source: Arc::new(GoogleKeySource::new(fetcher, url)),
        })
    }

    /// The same provisioner fetching Google's keys with `options` (other roots, plain HTTP
    /// for a loopback test server).
    pub fn with_fetch_options(mut self, options: FetchOptions) -> Result<Self, Error> {
        let fetcher =
            Fetcher::new(options).map_err(|e| invalid(&self.name, format!("HTTP client: {e}")))?;
        self.source = Arc::new(GoogleKeySource::new(fetcher, self.source.url().to_owned()));
        Ok(self)
    }

    /// The audience fragment its tokens carry: `gcp/<name>`.
    pub fn fragment(&self) -> String {
        format!("gcp/{}", self.name)
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

    fn ssh_user_allowed(&self) -> bool {
        // step-ca's DefaultDisableSSHCAUser is true: user certificates are opt-in.
        self.config.disable_ssh_ca_user == Some(false)
    }

    fn ssh_host_allowed(&self) -> bool {
        self.config.disable_ssh_ca_host != Some(true)
    }

    fn check(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "a GCP provisioner takes an identity token"));
        };
        let operation = request.operation;
        match operation {
            Operation::SignX509 => {}
            Operation::SignSshHost | Operation::SignSshUser if !self.claims.enable_ssh_ca => {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    "SSH certificates are not enabled for this provisioner (enableSSHCA)",
                ));
            }
            Operation::SignSshHost if !self.ssh_host_allowed() => {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    "SSH host certificates are disabled (disableSSHCAHost)",
                ));
            }
            Operation::SignSshUser if !self.ssh_user_allowed() => {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    "SSH user certificates are off (disableSSHCAUser is not false)",
                ));
            }
            Operation::SignSshHost | Operation::SignSshUser => {}
            other => {
                return Err(refuse(
                    Denial::OperationNotAllowed,
                    format!("a GCP provisioner does not authorize {other:?}"),
                ));
            }
        }

        // The signature first: nothing below reads unverified data.
        let jws = parse_compact(token).map_err(|e| jose_refusal(&e))?;
        let Some(kid) = jws.header().kid.as_deref() else {
            return Err(refuse(Denial::UnknownKey, "the token names no kid"));
        };
        let mut candidates = keys.keys.iter().filter(|(k, _)| k.as_deref() == Some(kid)).peekable();
        if candidates.peek().is_none() {
            return Err(refuse(
                Denial::UnknownKey,
                format!("kid {kid:?} is not among Google's keys"),
            ));
        }
        let mut verified = None;
        let mut last = None;
        for (_, key) in candidates {
            match jws.verify_with(key, Algorithm::Rs256) {
                Ok(v) => {
                    verified = Some(v);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(verified) = verified else {
            return Err(last.map_or_else(
                || refuse(Denial::BadSignature, "no key verified the token"),
                |e| jose_refusal(&e),
            ));
        };
        let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
        let payload: Payload = serde_json::from_slice(verified.payload())
            .map_err(|e| refuse(Denial::Malformed, format!("the token's claims: {e}")))?;

        if claims.iss.as_deref() != Some(GOOGLE_ISSUER) {
            return Err(refuse(
                Denial::WrongIssuer,
                format!("iss {:?} is not {GOOGLE_ISSUER:?}", claims.iss),
            ));
        }
        let fragment = self.fragment();
        let audience_ok = match operation {
            Operation::SignX509 => {
                check_audience(&claims.aud, request.audience, operation, Some(&fragment))
            }
            _ => check_audience(&claims.aud, request.audience, operation, Some(&fragment)).or_else(
                |first| {
                    // step's client asks for the sign audience whatever it signs (step-ca's
                    // Sign audiences include the SSH endpoint).
                    match sign_endpoint_of_ssh(request.audience) {
                        Some(sign) => {
                            check_audience(&claims.aud, &sign, Operation::SignX509, Some(&fragment))
                        }
                        None => Err(first),
                    }
                },
            ),
        };
        audience_ok?;
        let now_unix = unix(now);
        check_times(&claims, now_unix, self.max_token_lifetime)?;

        let sub = claims.sub.as_deref().unwrap_or_default();
        if !self.config.service_accounts.is_empty() {
            let by_sub = !sub.is_empty() && self.config.service_accounts.iter().any(|a| a == sub);
            let by_email = payload.email_verified
                && !payload.email.is_empty()
                && self.config.service_accounts.contains(&payload.email);
            if !by_sub && !by_email {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!("service account {sub:?} / {:?} is not allowed", payload.email),
                ));
            }
        }
        let Some(ce) = payload.google.and_then(|g| g.compute_engine) else {
            return Err(refuse(
                Denial::Malformed,
                "the token has no google.compute_engine (not an instance token with format=full)",
            ));
        };
        for (field, value) in [
            ("instance_id", &ce.instance_id),
            ("instance_name", &ce.instance_name),
            ("project_id", &ce.project_id),
            ("zone", &ce.zone),
        ] {
            if value.is_empty() {
                return Err(refuse(
                    Denial::Malformed,
                    format!("google.compute_engine.{field} is empty"),
                ));
            }
        }
        if !self.config.project_ids.is_empty() && !self.config.project_ids.contains(&ce.project_id)
        {
            return Err(refuse(
                Denial::PolicyViolation,
                format!("project {:?} is not allowed", ce.project_id),
            ));
        }
        if let Some(age) = self.instance_age {
            let Some(created) = ce.instance_creation_timestamp else {
                return Err(refuse(
                    Denial::PolicyViolation,
                    "instanceAge is set but the token has no instance_creation_timestamp",
                ));
            };
            let max = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            if now_unix.saturating_sub(created) > max {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!(
                        "the instance was created at {created}, more than {max} s ago (instanceAge)"
                    ),
                ));
            }
        }

        let replay_id = if self.config.disable_trust_on_first_use {
            let digest = sha2::Sha256::digest(token.as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
        } else {
            tofu_id(&format!("{}/{}", ce.project_id, ce.instance_id))
        };
        let dns = vec![
            format!("{}.c.{}.internal", ce.instance_name, ce.project_id),
            format!("{}.{}.c.{}.internal", ce.instance_name, ce.zone, ce.project_id),
        ];
        let (subject, sans, bounds) = match operation {
            Operation::SignSshUser => {
                if payload.email.is_empty() || !payload.email_verified {
                    return Err(refuse(
                        Denial::PolicyViolation,
                        "an SSH user certificate needs the token's verified email",
                    ));
                }
                let principals = vec![format!("sa_{sub}"), payload.email.clone()];
                (payload.email, principals, self.claims.ssh_user)
            }
            Operation::SignSshHost => (ce.instance_name, dns, self.claims.ssh_host),
            _ => (ce.instance_name, dns, self.claims.tls),
        };
        let lifetime = bounds.pick(None).map_err(|d| refuse(d, "default certificate lifetime"))?;
        Ok(Grant {
            provisioner: self.name.clone(),
            subject,
            sans,
            not_before: system_time(now_unix),
            not_after: system_time(now_unix.saturating_add(lifetime.as_secs() as i64)),
            operations: vec![operation],
            replay_id: Some(replay_id),
        })
    }
}

/// The X.509 sign endpoint beside an SSH sign endpoint: `…/1.0/ssh/sign` → `…/1.0/sign`.
fn sign_endpoint_of_ssh(audience: &str) -> Option<String> {
    audience.strip_suffix("/ssh/sign").map(|base| format!("{base}/sign"))
}

impl keystation_core::Provisioner for GcpProvisioner {
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

impl StepProvisioner for GcpProvisioner {
    fn kind(&self) -> ProvisionerKind {
        ProvisionerKind::Gcp
    }

    fn effective_claims(&self) -> Option<&EffectiveClaims> {
        Some(&self.claims)
    }

    /// step-ca's routing: the audience carries `#gcp/<name>`.
    fn routes(&self, peek: &TokenPeek) -> bool {
        peek.has_audience_fragment(&self.fragment())
    }

    fn key_source(&self) -> Option<Arc<dyn KeySource>> {
        Some(self.source.clone())
    }

    fn to_json(&self) -> String {
        GcpProvisioner::to_json(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn configuration_is_read_and_written_with_step_names() {
        let json = r#"{"type":"GCP","name":"google","serviceAccounts":["1234"],"projectIDs":["p-1"],"disableCustomSANs":true,"disableTrustOnFirstUse":false,"disableSSHCAUser":false,"instanceAge":"1h","claims":{"enableSSHCA":true},"certsUrl":"http://127.0.0.1:1/certs","maxTokenLifetime":"30m"}"#;
        let p = GcpProvisioner::from_json_in(json, &ProvisionerContext::default()).unwrap();
        assert_eq!(p.instance_age, Some(Duration::from_secs(3600)));
        assert_eq!(p.max_token_lifetime, Duration::from_secs(1800));
        assert!(p.ssh_user_allowed() && p.ssh_host_allowed() && p.claims.enable_ssh_ca);
        let out: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(out["projectIDs"][0], "p-1");
        assert_eq!(out["claims"]["enableSSHCA"], true);
        let again = GcpProvisioner::from_json_in(&p.to_json(), &ProvisionerContext::default());
        assert!(again.is_ok());
        for bad in [
            r#"{"type":"GCP","name":"g","organizationID":"123"}"#,
            r#"{"type":"GCP","name":"g","instanceAge":"-1h"}"#,
            r#"{"type":"GCP","name":"g","projectIDs":[""]}"#,
            r#"{"type":"GCP","name":"g","certsUrl":"ftp://x"}"#,
            r#"{"type":"GCP","name":"g","unknown":1}"#,
            r#"{"type":"GCP","name":"g","maxTokenLifetime":"25h"}"#,
            r#"{"type":"AWS","name":"g"}"#,
            r#"{"type":"GCP","name":""}"#,
            r#"{"type":"GCP","name":"g","options":{"x509":{"template":"{}"}}}"#,
        ] {
            assert!(
                GcpProvisioner::from_json_in(bad, &ProvisionerContext::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn options_make_the_object_the_provisioner_reads() {
        let options = GcpOptions {
            name: "gcp".into(),
            project_ids: vec!["p".into()],
            instance_age: Some(Duration::from_secs(600)),
            disable_ssh_ca_user: Some(false),
            ..GcpOptions::default()
        };
        let json = options.to_json();
        assert!(json.contains(r#""instanceAge":"10m0s""#), "{json}");
        let p = GcpProvisioner::from_json_in(&json, &ProvisionerContext::default()).unwrap();
        assert_eq!(p.config.project_ids, ["p"]);
        assert!(p.ssh_user_allowed());
        assert_eq!(p.fragment(), "gcp/gcp");
    }

    #[test]
    fn ssh_endpoints_map_to_the_sign_endpoint() {
        assert_eq!(
            sign_endpoint_of_ssh("https://ca:9000/1.0/ssh/sign").as_deref(),
            Some("https://ca:9000/1.0/sign")
        );
        assert_eq!(sign_endpoint_of_ssh("https://ca/1.0/sign"), None);
    }
}
