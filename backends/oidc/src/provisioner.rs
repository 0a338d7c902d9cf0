//! The `OIDC` provisioner: its `ca.json` object, its routing and `authorize`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_fetch::{FetchOptions, Fetcher};
use keystation_jose::parse_compact;
use keystation_jose::step_time::{format_go_duration, parse_go_duration};
use keystation_provisioners::token_checks::{
    Refusal, check_times, jose_refusal, refuse, system_time, unix,
};
use keystation_provisioners::{
    Claims, ClaimsJson, EffectiveClaims, Error, KeySource, ProvisionerContext, ProvisionerKind,
    StepProvisioner, TokenPeek, check_no_templates, common, invalid,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::{OidcKeySource, Statements, discovery_url};

/// The longest ID token lifetime accepted by default (`exp` − max(`iat`, `nbf`)).
/// Providers issue ID tokens for longer than step's 5-minute tokens: Google, Okta, Dex and
/// Keycloak default to an hour or less (Google exactly 3600 s), so one hour accepts them
/// and refuses tokens minted to live for days.
pub const DEFAULT_MAX_ID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The operations an OIDC token can ever authorize (research note §5): X.509 sign and
/// renew for everyone; X.509 revoke, SSH host and SSH revoke for admins only; SSH user
/// certificates for the user's own principals; the admin API for admins.
pub const OIDC_OPERATIONS: [Operation; 7] = [
    Operation::SignX509,
    Operation::RenewX509,
    Operation::RevokeX509,
    Operation::SignSshUser,
    Operation::SignSshHost,
    Operation::RevokeSsh,
    Operation::Administer,
];

/// An `OIDC` provisioner: ID tokens from one OpenID provider, for one client.
///
/// What a token must be (OpenID Connect Core 1.0 §3.1.3.7, stricter than step-ca's
/// `oidc.go` where the research note §2/§7 finds it lax):
///
/// * signed by a key of the provider's JWKS, named by the header's `kid` (a `kid` the set
///   lacks is [`Denial::UnknownKey`], on which the authority refetches, rate limited), under
///   the key's algorithm — never the header's choice (`none` and HS* never);
/// * `iss` is the discovery document's `issuer`; `aud` contains the client ID; `azp`, if
///   present, is the client ID; `sub` is not empty;
/// * `exp` required (step-ca checks it only when present), `nbf`/`iat` with 60 s leeway,
///   and a lifetime of at most `maxTokenLifetime` (1 h by default);
/// * an `email` is used only if `email_verified` is `true` — a token carrying an email
///   that is not verified is refused outright (step-ca never reads `email_verified`);
/// * `domains`: the email's domain must be listed (admins exempt); `groups`: the token's
///   `groups` must share one with the list.
///
/// The grant (step-ca's `AuthorizeSign`): subject `sub`; SANs the verified email and the
/// URI `iss#sub`. SSH user certificates: key ID the email, principals step-ca's default
/// identity (the sanitized local part, the raw local part, the email). Single use:
/// `nonce` when present (step-ca's `GetTokenID`), else the SHA-256 of the token.
///
/// Stricter than step-ca for admins, by necessity: step-ca lets an admin's CSR choose any
/// SANs and principals; keystation's grants name them, and an ID token names no host, so
/// admins get their own names like everyone and SSH host certificates are refused (see
/// the crate documentation).
pub struct OidcProvisioner {
    name: String,
    client_id: String,
    client_secret: String,
    configuration_endpoint: String,
    tenant_id: Option<String>,
    admins: Vec<String>,
    domains: Vec<String>,
    groups: Vec<String>,
    listen_address: Option<String>,
    claims: EffectiveClaims,
    declared_claims: Claims,
    max_token_lifetime: Duration,
    declared_max_token_lifetime: Option<Duration>,
    source: Arc<OidcKeySource>,
}

impl std::fmt::Debug for OidcProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvisioner")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("configuration_endpoint", &self.configuration_endpoint)
            .field("tenant_id", &self.tenant_id)
            .field("admins", &self.admins)
            .field("domains", &self.domains)
            .field("groups", &self.groups)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .finish()
    }
}

/// step-ca's OIDC provisioner object (`authority/provisioner/oidc.go`), plus keystation's
/// `maxTokenLifetime`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(rename = "clientID")]
    client_id: String,
    /// step-ca: "mandatory, but it can be an empty string".
    #[serde(rename = "clientSecret", default)]
    client_secret: String,
    #[serde(rename = "configurationEndpoint")]
    configuration_endpoint: String,
    #[serde(rename = "tenantID", default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    admins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(rename = "listenAddress", default, skip_serializing_if = "Option::is_none")]
    listen_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
    #[serde(rename = "sshOptions", default, skip_serializing_if = "Option::is_none")]
    ssh_options: Option<serde_json::Value>,
    #[serde(rename = "maxTokenLifetime", default, skip_serializing_if = "Option::is_none")]
    max_token_lifetime: Option<String>,
}

/// What `keystation authority provisioner add --type OIDC` writes: the `ca.json` object of
/// an OIDC provisioner from plain fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcOptions {
    /// The provisioner's name.
    pub name: String,
    /// The OAuth client ID (the ID tokens' `aud`).
    pub client_id: String,
    /// The OAuth client secret, served in `/provisioners` for step's login flow: use a
    /// public ("installed application") client, whose secret is not secret.
    pub client_secret: String,
    /// The provider's configuration endpoint (or its issuer URL).
    pub configuration_endpoint: String,
    /// Replaces `{tenantid}` in the discovered issuer.
    pub tenant_id: Option<String>,
    /// Admins: emails or subjects.
    pub admins: Vec<String>,
    /// Allowed email domains.
    pub domains: Vec<String>,
    /// Allowed groups.
    pub groups: Vec<String>,
    /// step's local callback address (accepted and served back; the authority does not use
    /// it).
    pub listen_address: Option<String>,
    /// The longest ID token lifetime accepted; 1 h when `None`.
    pub max_token_lifetime: Option<Duration>,
    /// The provisioner's claims.
    pub claims: Claims,
}

impl OidcOptions {
    /// The `ca.json` object.
    pub fn to_json(&self) -> String {
        let config = OidcJson {
            kind: ProvisionerKind::Oidc.type_name().into(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            configuration_endpoint: self.configuration_endpoint.clone(),
            tenant_id: self.tenant_id.clone(),
            admins: self.admins.clone(),
            domains: self.domains.clone(),
            groups: self.groups.clone(),
            listen_address: self.listen_address.clone(),
            claims: ClaimsJson::from_claims(&self.claims),
            options: None,
            ssh_options: None,
            max_token_lifetime: self.max_token_lifetime.map(go_duration),
        };
        serde_json::to_string(&config).unwrap_or_default()
    }
}

fn go_duration(d: Duration) -> String {
    format_go_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The members of an ID token's payload read beyond the registered claims (which
/// keystation-jose parses), OpenID Connect Core §2 and §5.1.
#[derive(Deserialize)]
struct IdTokenExtras {
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// A boolean; AWS Cognito writes the string `"true"`, accepted as the same.
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    /// A list of strings; a single string is taken as a list of one.
    #[serde(default)]
    groups: Option<serde_json::Value>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    tid: Option<String>,
}

/// An email with its domain lowercased (step-ca's `sanitizeEmail`: the local part is
/// case-sensitive, RFC 5321 §2.4).
fn normalize_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => email.to_owned(),
    }
}

/// step-ca's default SSH identity for an email (`DefaultIdentityFunc`): the local part
/// lowercased with every character outside `[a-z0-9_-]` made `_`, the raw local part,
/// and the email. The sanitized name must start with a letter.
fn ssh_principals(email: &str) -> Option<Vec<String>> {
    let local = email.rsplit_once('@').map_or(email, |(l, _)| l);
    let sanitized: String = local
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' { c } else { '_' })
        .collect();
    if !sanitized.starts_with(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    let mut principals = vec![sanitized];
    for extra in [local, email] {
        if !principals.iter().any(|p| p == extra) {
            principals.push(extra.to_owned());
        }
    }
    Some(principals)
}

impl OidcProvisioner {
    /// Reads step-ca's OIDC provisioner object: `type`, `name`, `clientID`, `clientSecret`,
    /// `configurationEndpoint` (completed with `/.well-known/openid-configuration` when it
    /// lacks it), `tenantID`, `admins`, `domains`, `groups`, `listenAddress` (accepted,
    /// unused), `claims`, `options`/`sshOptions` (refused when they configure templates),
    /// and keystation's `maxTokenLifetime` (a Go duration, 1 h by default; the context's
    /// 5-minute token lifetime is for step's own tokens, not ID tokens). Keys are fetched
    /// with keystation-fetch's defaults (public roots, plain HTTP only to loopback);
    /// [`with_fetch_options`](Self::with_fetch_options) changes them.
    pub fn from_json_in(json: &str, context: &ProvisionerContext) -> Result<Self, Error> {
        let config: OidcJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not an OIDC provisioner object: {e}")))?;
        let name = config.name.as_str();
        let (declared, effective) = common(
            ProvisionerKind::Oidc,
            &config.kind,
            name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(name, config.options.as_ref())?;
        check_no_templates(name, config.ssh_options.as_ref())?;
        if config.client_id.is_empty() {
            return Err(invalid(name, "clientID is empty"));
        }
        let endpoint = config.configuration_endpoint.trim();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(invalid(
                name,
                format!("configurationEndpoint {endpoint:?} is not an http(s) URL"),
            ));
        }
        if let Some(address) = &config.listen_address
            && !address.is_empty()
            && address.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(invalid(name, format!("listenAddress {address:?} is not host:port")));
        }
        let declared_max = match &config.max_token_lifetime {
            None => None,
            Some(text) => match parse_go_duration(text) {
                Ok(nanos) if nanos > 0 => Some(Duration::from_nanos(nanos.unsigned_abs())),
                _ => {
                    return Err(invalid(
                        name,
                        format!("maxTokenLifetime {text:?} is not a positive Go duration"),
                    ));
                }
            },
        };
        let tenant_id = config.tenant_id.filter(|t| !t.is_empty());
        let fetcher = Fetcher::new(FetchOptions::default())
            .map_err(|e| invalid(name, format!("HTTP client: {e}")))?;
        let source = OidcKeySource::new(fetcher, discovery_url(endpoint), tenant_id.clone());
        Ok(Self {
            name: config.name.clone(),
            client_id: config.client_id,
            client_secret: config.client_secret,
            configuration_endpoint: endpoint.to_owned(),
            tenant_id,
            admins: config.admins.iter().map(|a| normalize_email(a.trim())).collect(),
            domains: config
                .domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect(),
            groups: config.groups,
            listen_address: config.listen_address.filter(|a| !a.is_empty()),
            claims: effective,
            declared_claims: declared,
            max_token_lifetime: declared_max.unwrap_or(DEFAULT_MAX_ID_TOKEN_LIFETIME),
            declared_max_token_lifetime: declared_max,
            source: Arc::new(source),
        })
    }

    /// The same provisioner fetching its keys with `options` (configured roots, plain HTTP
    /// policy, timeouts).
    pub fn with_fetch_options(mut self, options: FetchOptions) -> Result<Self, Error> {
        let fetcher =
            Fetcher::new(options).map_err(|e| invalid(&self.name, format!("HTTP client: {e}")))?;
        let discovery = self.source.discovery().to_owned();
        self.source = Arc::new(OidcKeySource::new(fetcher, discovery, self.tenant_id.clone()));
        Ok(self)
    }

    /// The client ID.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The discovery URL keys are fetched from.
    pub fn discovery_url(&self) -> &str {
        self.source.discovery()
    }

    /// The longest ID token lifetime accepted.
    pub fn max_token_lifetime(&self) -> Duration {
        self.max_token_lifetime
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// The key source (discovery and JWKS), for callers that fetch without the registry.
    pub fn oidc_key_source(&self) -> Arc<OidcKeySource> {
        self.source.clone()
    }

    /// The `ca.json` object as `/provisioners` lists it. `clientSecret` is included:
    /// step's client reads `clientID` and `clientSecret` from `/provisioners` to run the
    /// login flow (`step ca certificate` with an OIDC provisioner), so step-ca lists it,
    /// and its documentation expects a public ("installed application") client whose
    /// secret is not secret. It is never logged (`Debug` redacts it).
    pub fn to_json(&self) -> String {
        let config = OidcJson {
            kind: ProvisionerKind::Oidc.type_name().into(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            configuration_endpoint: self.configuration_endpoint.clone(),
            tenant_id: self.tenant_id.clone(),
            admins: self.admins.clone(),
            domains: self.domains.clone(),
            groups: self.groups.clone(),
            listen_address: self.listen_address.clone(),
            claims: ClaimsJson::from_claims(&self.declared_claims),
            options: None,
            ssh_options: None,
            max_token_lifetime: self.declared_max_token_lifetime.map(go_duration),
        };
        serde_json::to_string(&config).unwrap_or_default()
    }

    /// Whether the verified identity is an admin: its verified email (domain compared
    /// case-insensitively) or its `sub` is listed.
    fn is_admin(&self, verified_email: Option<&str>, sub: &str) -> bool {
        self.admins.iter().any(|a| Some(a.as_str()) == verified_email || a == sub)
    }

    /// The whole check, its refusals with reasons.
    pub(crate) fn check(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "an OIDC provisioner takes an ID token"));
        };
        let operation = request.operation;
        if !OIDC_OPERATIONS.contains(&operation) {
            return Err(refuse(
                Denial::OperationNotAllowed,
                format!("an OIDC provisioner does not authorize {operation:?}"),
            ));
        }
        let statements = Statements::read(keys);
        let Some(issuer) = statements.issuer else {
            return Err(refuse(
                Denial::UnknownKey,
                "no discovery issuer among the trusted keys: the provider's keys were not fetched",
            ));
        };

        // Signature: the key the header's kid names, under the key's algorithm.
        let jws = parse_compact(token).map_err(|e| jose_refusal(&e))?;
        let kid = jws.header().kid.as_deref();
        let candidates: Vec<usize> = match kid {
            Some(kid) => keys
                .keys
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| k.as_deref() == Some(kid))
                .map(|(i, _)| i)
                .collect(),
            // No kid: OpenID Connect Core §10.1 allows it when the set holds one key.
            None if keys.keys.len() == 1 => vec![0],
            None => Vec::new(),
        };
        if candidates.is_empty() {
            return Err(refuse(
                Denial::UnknownKey,
                format!("kid {kid:?} names no key of the provider's JWKS"),
            ));
        }
        let mut verified = None;
        let mut last = None;
        for index in candidates {
            let key = &keys.keys[index].1;
            let Some(algorithm) = statements.algorithm(index, key) else { continue };
            match jws.verify_with(key, algorithm) {
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
                None => refuse(Denial::UnknownKey, format!("kid {kid:?}: no key that can sign")),
            });
        };

        // Claims, read only now that they are verified.
        let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
        let extras: IdTokenExtras = serde_json::from_slice(verified.payload())
            .map_err(|e| refuse(Denial::Malformed, format!("ID token claims: {e}")))?;
        if claims.iss.as_deref() != Some(issuer) {
            return Err(refuse(
                Denial::WrongIssuer,
                format!("iss {:?} is not the provider's issuer {issuer:?}", claims.iss),
            ));
        }
        if !claims.aud.contains(&self.client_id) {
            return Err(refuse(
                Denial::WrongAudience,
                format!("aud {:?} does not contain client ID {:?}", claims.aud, self.client_id),
            ));
        }
        if let Some(azp) = &extras.azp
            && *azp != self.client_id
        {
            return Err(refuse(
                Denial::WrongAudience,
                format!("azp {azp:?} is not client ID {:?}", self.client_id),
            ));
        }
        if let (Some(tenant), Some(tid)) = (&self.tenant_id, &extras.tid)
            && tenant != tid
        {
            return Err(refuse(Denial::WrongIssuer, format!("tid {tid:?} is not {tenant:?}")));
        }
        let now = unix(now);
        check_times(&claims, now, self.max_token_lifetime)?;
        let sub = claims.sub.as_deref().filter(|s| !s.is_empty());
        let Some(sub) = sub else { return Err(refuse(Denial::Malformed, "the token has no sub")) };

        // The email, used only when verified.
        let email = match (&extras.email, &extras.email_verified) {
            (None, _) => None,
            (Some(e), _) if e.is_empty() => None,
            (Some(e), Some(serde_json::Value::Bool(true))) => Some(normalize_email(e)),
            (Some(e), Some(serde_json::Value::String(s))) if s == "true" => {
                Some(normalize_email(e))
            }
            (Some(e), verified) => {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!("email {e:?} is not verified (email_verified is {verified:?})"),
                ));
            }
        };
        let admin = self.is_admin(email.as_deref(), sub);
        if !self.domains.is_empty() && !admin {
            let domain = email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
            match domain {
                Some(d) if self.domains.iter().any(|allowed| allowed == d) => {}
                Some(d) => {
                    return Err(refuse(
                        Denial::PolicyViolation,
                        format!("email domain {d:?} is not among {:?}", self.domains),
                    ));
                }
                None => {
                    return Err(refuse(
                        Denial::PolicyViolation,
                        "domains are configured and the token has no verified email",
                    ));
                }
            }
        }
        if !self.groups.is_empty() {
            let groups: Vec<&str> = match &extras.groups {
                Some(serde_json::Value::String(g)) => vec![g.as_str()],
                Some(serde_json::Value::Array(list)) => {
                    list.iter().filter_map(serde_json::Value::as_str).collect()
                }
                _ => Vec::new(),
            };
            if !groups.iter().any(|g| self.groups.iter().any(|allowed| allowed == g)) {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!("groups {groups:?} share none with {:?}", self.groups),
                ));
            }
        }

        let replay_id = match extras.nonce.as_deref().filter(|n| !n.is_empty()) {
            Some(nonce) => nonce.to_owned(),
            None => hex(&Sha256::digest(token.as_bytes())),
        };
        let grant = |subject: String, sans: Vec<String>, not_before: i64, not_after: i64| Grant {
            provisioner: self.name.clone(),
            subject,
            sans,
            not_before: system_time(not_before),
            not_after: system_time(not_after),
            operations: vec![operation],
            replay_id: Some(replay_id.clone()),
        };
        let admin_only = |what: &str| -> Result<(), Refusal> {
            if admin {
                Ok(())
            } else {
                Err(refuse(
                    Denial::OperationNotAllowed,
                    format!("{what} with an OIDC token is for admins, and {sub:?} is none"),
                ))
            }
        };
        match operation {
            Operation::SignX509 | Operation::RenewX509 => {
                if operation == Operation::RenewX509 && self.claims.disable_renewal {
                    return Err(refuse(
                        Denial::OperationNotAllowed,
                        "renewal is disabled (disableRenewal)",
                    ));
                }
                let mut sans: Vec<String> = email.iter().cloned().collect();
                // The URI SAN iss#sub, when iss is a URL with a scheme (step-ca).
                if issuer.contains("://") && !issuer.contains('#') {
                    sans.push(format!("{issuer}#{sub}"));
                }
                let lifetime =
                    self.claims.tls.pick(None).map_err(|d| refuse(d, "default TLS lifetime"))?;
                Ok(grant(
                    sub.to_owned(),
                    sans,
                    now,
                    now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)),
                ))
            }
            Operation::SignSshUser | Operation::SignSshHost => {
                if !self.claims.enable_ssh_ca {
                    return Err(refuse(
                        Denial::OperationNotAllowed,
                        "SSH certificates are not enabled for this provisioner (enableSSHCA)",
                    ));
                }
                if operation == Operation::SignSshHost {
                    admin_only("an SSH host certificate")?;
                    // step-ca lets an admin name any host; a grant must name its
                    // principals, and an ID token names no host.
                    return Err(refuse(
                        Denial::OperationNotAllowed,
                        "an ID token names no host: SSH host certificates need another provisioner",
                    ));
                }
                let Some(email) = email else {
                    return Err(refuse(
                        Denial::PolicyViolation,
                        "an SSH user certificate needs the token's verified email",
                    ));
                };
                let Some(principals) = ssh_principals(&email) else {
                    return Err(refuse(
                        Denial::PolicyViolation,
                        format!("email {email:?} gives no valid SSH principal"),
                    ));
                };
                let lifetime = self
                    .claims
                    .ssh_user
                    .pick(None)
                    .map_err(|d| refuse(d, "default SSH user lifetime"))?;
                Ok(grant(
                    email,
                    principals,
                    now,
                    now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)),
                ))
            }
            Operation::RevokeX509 | Operation::RevokeSsh | Operation::Administer => {
                admin_only(match operation {
                    Operation::RevokeX509 => "revoking a certificate",
                    Operation::RevokeSsh => "revoking an SSH certificate",
                    _ => "the admin API",
                })?;
                // The subject is the admin acting: the verified email when listed, else sub.
                let subject = match &email {
                    Some(e) if self.admins.iter().any(|a| a == e) => e.clone(),
                    _ => sub.to_owned(),
                };
                Ok(grant(subject, Vec::new(), now, now))
            }
            other => Err(refuse(Denial::OperationNotAllowed, format!("{other:?}"))),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl keystation_core::Provisioner for OidcProvisioner {
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

impl StepProvisioner for OidcProvisioner {
    fn kind(&self) -> ProvisionerKind {
        ProvisionerKind::Oidc
    }

    fn effective_claims(&self) -> Option<&EffectiveClaims> {
        Some(&self.claims)
    }

    /// step-ca's `LoadByToken` for OIDC: `azp` is the client ID, or `aud` contains it;
    /// with a `tenantID`, a token naming another tenant (`tid`) is not routed here. Never
    /// by `iss` == name: the issuer is the provider's URL.
    fn routes(&self, peek: &TokenPeek) -> bool {
        let for_client = peek.azp.as_deref() == Some(self.client_id.as_str())
            || peek.aud.contains(&self.client_id);
        let tenant_ok = match (&self.tenant_id, &peek.tid) {
            (Some(tenant), Some(tid)) => tenant == tid,
            _ => true,
        };
        for_client && tenant_ok
    }

    fn key_source(&self) -> Option<Arc<dyn KeySource>> {
        Some(self.source.clone())
    }

    fn to_json(&self) -> String {
        OidcProvisioner::to_json(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ssh_principals_follow_step_cas_default_identity() {
        assert_eq!(
            ssh_principals("Alice.Smith@example.com").unwrap(),
            ["alice_smith", "Alice.Smith", "Alice.Smith@example.com"]
        );
        assert_eq!(ssh_principals("bob@example.com").unwrap(), ["bob", "bob@example.com"]);
        assert_eq!(ssh_principals("1bob@example.com"), None, "must start with a letter");
        assert_eq!(normalize_email("Bob@Example.COM"), "Bob@example.com");
    }
}
