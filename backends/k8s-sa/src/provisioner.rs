//! The `K8sSA` provisioner itself: its `ca.json` object, the checks, the grant.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_jose::{Algorithm, Claims, Jwk};
use keystation_provisioners::token_checks::{
    Refusal, check_times, jose_refusal, refuse, system_time, unix,
};
use keystation_provisioners::{
    ClaimsJson, EffectiveClaims, Error, KeySource, ProvisionerContext, ProvisionerKind,
    StepProvisioner, TokenPeek, check_no_templates, common, invalid,
};
use serde::{Deserialize, Serialize};

use crate::review::{ReviewTarget, Statement, TokenReviewSource};
use crate::token::{LEGACY_ISSUER, SERVICE_ACCOUNT_PREFIX, service_account, sha256_hex};

/// The operations a K8sSA provisioner authorizes (research note §5, step-ca's
/// `k8sSA.go`): X.509 sign, renew (unless `disableRenewal`) and revoke, SSH user and host
/// certificates (with `enableSSHCA`). SSH renew, rekey and revoke, X.509 rekey and the
/// admin API are refused, as step-ca refuses them.
pub const K8S_SA_OPERATIONS: [Operation; 5] = [
    Operation::SignX509,
    Operation::RenewX509,
    Operation::RevokeX509,
    Operation::SignSshUser,
    Operation::SignSshHost,
];

/// step-ca's default name for its (single) K8sSA provisioner.
pub const DEFAULT_NAME: &str = "k8sSA-default";

/// The longest token lifetime (`exp` − max(`iat`, `nbf`)) accepted by default: one hour,
/// what the kubelet requests for a projected token when `expirationSeconds` is not set.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The most `maxTokenLifetime` may be: how long the authority keeps spent token ids
/// (keystation-provisioners' `LONGEST_TOKEN_LIFETIME`).
pub const LONGEST_MAX_TOKEN_LIFETIME: Duration =
    keystation_provisioners::token_checks::LONGEST_TOKEN_LIFETIME;

/// The time a TokenReview may take, connection included.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// How tokens are verified.
#[derive(Clone)]
enum Mode {
    /// With the configured public keys (`publicKeys`).
    Keys(Vec<Jwk>),
    /// By the API server (`tokenReview`).
    Review { target: ReviewTarget, source: Arc<TokenReviewSource> },
}

/// A `K8sSA` provisioner: Kubernetes service-account tokens, verified with the cluster's
/// service-account public keys or by the cluster's TokenReview API. The crate
/// documentation lists its configuration and how it is stricter than step-ca.
#[derive(Clone)]
pub struct K8sSaProvisioner {
    name: String,
    mode: Mode,
    /// Base64 of the `publicKeys` PEM, as read (written back by `to_json`).
    public_keys_b64: Option<String>,
    issuer: Option<String>,
    audiences: Vec<String>,
    allow_legacy_tokens: bool,
    max_token_lifetime: Duration,
    /// Whether `maxTokenLifetime` was written (so `to_json` writes it back).
    lifetime_declared: bool,
    claims: EffectiveClaims,
    declared_claims: keystation_provisioners::Claims,
}

impl std::fmt::Debug for K8sSaProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sSaProvisioner")
            .field("name", &self.name)
            .field(
                "mode",
                &match &self.mode {
                    Mode::Keys(keys) => format!("{} public keys", keys.len()),
                    Mode::Review { source, .. } => format!("TokenReview at {}", source.endpoint()),
                },
            )
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("allow_legacy_tokens", &self.allow_legacy_tokens)
            .field("max_token_lifetime", &self.max_token_lifetime)
            .finish()
    }
}

/// step-ca's K8sSA object with keystation's additions.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct K8sSaJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    /// A Go `[]byte`: standard base64 of a PEM bundle. Raw PEM is accepted too.
    #[serde(rename = "publicKeys", default, skip_serializing_if = "Option::is_none")]
    public_keys: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    audiences: Vec<String>,
    #[serde(rename = "allowLegacyTokens", default, skip_serializing_if = "is_false")]
    allow_legacy_tokens: bool,
    #[serde(rename = "maxTokenLifetime", default, skip_serializing_if = "Option::is_none")]
    max_token_lifetime: Option<String>,
    #[serde(rename = "tokenReview", default, skip_serializing_if = "Option::is_none")]
    token_review: Option<TokenReviewJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenReviewJson {
    url: String,
    #[serde(rename = "caCert")]
    ca_cert: String,
    #[serde(rename = "bearerTokenFile")]
    bearer_token_file: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// PEM text, given as PEM or as standard base64 of PEM (how step-ca writes a Go `[]byte`).
fn pem_text(name: &str, field: &str, value: &str) -> Result<String, Error> {
    let trimmed = value.trim();
    if trimmed.starts_with("-----BEGIN") {
        return Ok(trimmed.to_owned());
    }
    let compact: String = trimmed.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| invalid(name, format!("{field}: neither PEM nor base64 of PEM ({e})")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| invalid(name, format!("{field}: the base64 does not hold PEM text")))?;
    if !text.trim_start().starts_with("-----BEGIN") {
        return Err(invalid(name, format!("{field}: the base64 does not hold PEM text")));
    }
    Ok(text)
}

/// The public keys of a `publicKeys` bundle: `PUBLIC KEY` (SubjectPublicKeyInfo, what
/// kubeadm's `sa.pub` holds) and `CERTIFICATE` blocks; RSA of at least 2048 bits, P-256,
/// P-384 or Ed25519.
fn public_keys(name: &str, pem: &str) -> Result<Vec<Jwk>, Error> {
    let blocks = keystation_x509::pem::decode_all(pem)
        .map_err(|e| invalid(name, format!("publicKeys: {e}")))?;
    let mut keys = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let key = match block.label.as_str() {
            "PUBLIC KEY" => keystation_x509::public_key_from_spki(&block.der),
            "CERTIFICATE" => {
                keystation_x509::Certificate::from_der(&block.der).and_then(|c| c.public_key())
            }
            "RSA PUBLIC KEY" => {
                return Err(invalid(
                    name,
                    format!(
                        "publicKeys: block {i} is a PKCS#1 RSA PUBLIC KEY; give its SubjectPublicKeyInfo (openssl rsa -RSAPublicKey_in -pubout)"
                    ),
                ));
            }
            other => {
                return Err(invalid(
                    name,
                    format!("publicKeys: block {i} is a {other:?}, not a PUBLIC KEY or CERTIFICATE"),
                ));
            }
        }
        .map_err(|e| invalid(name, format!("publicKeys: block {i}: {e}")))?;
        let algorithm = key.algorithm();
        let jwk = Algorithm::default_for(&key)
            .and_then(|_| Jwk::from_public_key(key).ok())
            .ok_or_else(|| {
                invalid(
                    name,
                    format!(
                        "publicKeys: block {i}: {algorithm} keys cannot verify tokens (RSA of at least 2048 bits, P-256, P-384 or Ed25519)"
                    ),
                )
            })?;
        keys.push(jwk);
    }
    if keys.is_empty() {
        return Err(invalid(name, "publicKeys holds no PEM block"));
    }
    Ok(keys)
}

impl K8sSaProvisioner {
    /// Reads a `K8sSA` object of `ca.json` (see the crate documentation for its fields),
    /// its claims over the authority's. The authority's `max_token_lifetime` (for step's
    /// own 5-minute tokens) does not apply: Kubernetes tokens live longer, bounded by
    /// `maxTokenLifetime`.
    pub fn from_json_in(json: &str, context: &ProvisionerContext) -> Result<Self, Error> {
        let config: K8sSaJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not a K8sSA provisioner object: {e}")))?;
        let name = config.name.as_str();
        let (declared, effective) = common(
            ProvisionerKind::K8sSa,
            &config.kind,
            name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(name, config.options.as_ref())?;

        let issuer = match config.issuer.as_deref().map(str::trim) {
            None => None,
            Some("") => return Err(invalid(name, "issuer is empty")),
            Some(LEGACY_ISSUER) => {
                return Err(invalid(
                    name,
                    "issuer names bound tokens' issuer (the API server's --service-account-issuer); legacy tokens are allowed with allowLegacyTokens",
                ));
            }
            Some(i) => Some(i.to_owned()),
        };
        if config.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(invalid(name, "audiences holds an empty audience"));
        }
        let audiences = config.audiences.clone();
        let max_token_lifetime = match &config.max_token_lifetime {
            None => DEFAULT_MAX_TOKEN_LIFETIME,
            Some(text) => {
                let nanos = keystation_jose::step_time::parse_go_duration(text).map_err(|_| {
                    invalid(name, format!("maxTokenLifetime: {text:?} is not a Go duration"))
                })?;
                let d = Duration::from_nanos(u64::try_from(nanos).unwrap_or(0));
                if d.is_zero() || d > LONGEST_MAX_TOKEN_LIFETIME {
                    return Err(invalid(
                        name,
                        format!("maxTokenLifetime: {text:?} must be positive and at most 24h"),
                    ));
                }
                d
            }
        };

        let mode = match (&config.public_keys, &config.token_review) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    name,
                    "publicKeys and tokenReview exclude each other: verify with the keys or ask the API server",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    name,
                    "neither publicKeys nor tokenReview: tokens could not be verified",
                ));
            }
            (Some(pem), None) => {
                let pem = pem_text(name, "publicKeys", pem)?;
                if issuer.is_none() && !config.allow_legacy_tokens {
                    return Err(invalid(
                        name,
                        "no token could be accepted: set issuer (bound tokens) or allowLegacyTokens",
                    ));
                }
                Mode::Keys(public_keys(name, &pem)?)
            }
            (None, Some(review)) => {
                if config.allow_legacy_tokens {
                    return Err(invalid(
                        name,
                        "allowLegacyTokens needs publicKeys: TokenReview accepts only bound tokens (they expire)",
                    ));
                }
                let Some(issuer) = issuer.as_deref() else {
                    return Err(invalid(
                        name,
                        "tokenReview needs issuer (the API server's --service-account-issuer), which routes tokens here",
                    ));
                };
                let server = review.url.trim().trim_end_matches('/');
                let https = server.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
                if !https || server.len() <= 8 || server[8..].contains(['/', '?', '#']) {
                    return Err(invalid(
                        name,
                        format!("tokenReview.url {:?} is not https://host[:port]", review.url),
                    ));
                }
                if review.bearer_token_file.trim().is_empty() {
                    return Err(invalid(name, "tokenReview.bearerTokenFile is empty"));
                }
                let target = ReviewTarget {
                    server: server.to_owned(),
                    ca_pem: pem_text(name, "tokenReview.caCert", &review.ca_cert)?,
                    bearer_token_file: PathBuf::from(review.bearer_token_file.trim()),
                };
                if audiences.is_empty() {
                    return Err(invalid(name, "tokenReview needs audiences"));
                }
                let source = TokenReviewSource::new(&target, issuer, &audiences, REVIEW_TIMEOUT)
                    .map_err(|e| invalid(name, format!("tokenReview.caCert: {e}")))?;
                Mode::Review { target, source: Arc::new(source) }
            }
        };
        if issuer.is_some() && audiences.is_empty() {
            return Err(invalid(
                name,
                "issuer needs audiences: bound tokens are accepted only for an audience of this authority",
            ));
        }
        let public_keys_b64 = match (&mode, &config.public_keys) {
            (Mode::Keys(_), Some(raw)) => {
                let pem = pem_text(name, "publicKeys", raw)?;
                Some(base64::engine::general_purpose::STANDARD.encode(pem))
            }
            _ => None,
        };
        Ok(Self {
            name: config.name.clone(),
            mode,
            public_keys_b64,
            issuer,
            audiences,
            allow_legacy_tokens: config.allow_legacy_tokens,
            max_token_lifetime,
            lifetime_declared: config.max_token_lifetime.is_some(),
            claims: effective,
            declared_claims: declared,
        })
    }

    /// Whether it asks the API server (`tokenReview`) rather than verifying with keys.
    pub fn uses_token_review(&self) -> bool {
        matches!(self.mode, Mode::Review { .. })
    }

    /// The issuer of bound tokens it accepts.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The audiences a bound token must name one of.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The longest token lifetime accepted.
    pub fn max_token_lifetime(&self) -> Duration {
        self.max_token_lifetime
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// The `ca.json` object as `/provisioners` lists it: step-ca's fields (`publicKeys`
    /// as base64 of the PEM, `claims`) and keystation's `issuer`, `audiences`,
    /// `allowLegacyTokens`, `maxTokenLifetime`. `tokenReview` is left out: the API
    /// server's address and the token file's path are the authority's business.
    pub fn to_json(&self) -> String {
        let config = K8sSaJson {
            kind: ProvisionerKind::K8sSa.type_name().into(),
            name: self.name.clone(),
            public_keys: self.public_keys_b64.clone(),
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            allow_legacy_tokens: self.allow_legacy_tokens,
            max_token_lifetime: self.lifetime_declared.then(|| {
                keystation_jose::step_time::format_go_duration(
                    i64::try_from(self.max_token_lifetime.as_nanos()).unwrap_or(i64::MAX),
                )
            }),
            token_review: None,
            claims: ClaimsJson::from_claims(&self.declared_claims),
            options: None,
        };
        serde_json::to_string(&config).unwrap_or_default()
    }

    /// The whole `ca.json` object, `tokenReview` included (for writing the configuration
    /// back, never for listing).
    pub fn to_config_json(&self) -> String {
        let mut value: serde_json::Value =
            serde_json::from_str(&self.to_json()).unwrap_or(serde_json::Value::Null);
        if let (Mode::Review { target, .. }, Some(object)) = (&self.mode, value.as_object_mut()) {
            object.insert(
                "tokenReview".into(),
                serde_json::json!({
                    "url": target.server,
                    "caCert": target.ca_pem,
                    "bearerTokenFile": target.bearer_token_file.display().to_string(),
                }),
            );
        }
        value.to_string()
    }

    /// The checks, a grant or the refusal with its reason.
    pub(crate) fn check(
        &self,
        request: &Request<'_>,
        keys: &TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "a K8sSA provisioner takes a token"));
        };
        if !K8S_SA_OPERATIONS.contains(&request.operation) {
            return Err(refuse(
                Denial::OperationNotAllowed,
                format!("a K8sSA provisioner does not authorize {:?}", request.operation),
            ));
        }
        let jws = keystation_jose::parse_compact(token).map_err(|e| jose_refusal(&e))?;
        let now = unix(now);
        let (subject, replay_id) = match &self.mode {
            Mode::Keys(public_keys) => {
                let alg = jws.header().algorithm().map_err(|e| jose_refusal(&e))?;
                let mut candidates = public_keys.iter().filter(|k| k.algorithm() == alg).peekable();
                if candidates.peek().is_none() {
                    return Err(refuse(
                        Denial::UnknownKey,
                        format!("no configured public key verifies {} tokens", alg.name()),
                    ));
                }
                let mut last = None;
                let mut verified = None;
                for key in candidates {
                    match jws.verify(key) {
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
                        |e| {
                            let mut r = jose_refusal(&e);
                            r.reason = format!(
                                "no configured public key verifies the token: {}",
                                r.reason
                            );
                            r
                        },
                    ));
                };
                let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
                self.check_claims(&claims, token, now)?
            }
            Mode::Review { .. } => {
                let claims = jws.unverified_claims().map_err(|e| jose_refusal(&e))?;
                let (subject, replay_id) = self.check_claims(&claims, token, now)?;
                let Some(statement) = Statement::find_for(&keys.statements, token) else {
                    return Err(refuse(
                        Denial::UnknownKey,
                        "the API server was not asked about this token (no TokenReview answer)",
                    ));
                };
                self.check_review(&statement, &subject)?;
                (subject, replay_id)
            }
        };
        self.grant(subject, replay_id, request.operation, now)
    }

    /// Issuer, audience, times and subject of a token whose signature is settled (by a
    /// configured key, or — for a review — by the API server, checked after); the
    /// subject and the replay id.
    fn check_claims(
        &self,
        claims: &Claims,
        token: &str,
        now: i64,
    ) -> Result<(String, String), Refusal> {
        let iss = claims.iss.as_deref();
        let legacy = iss == Some(LEGACY_ISSUER);
        if legacy {
            if !self.allow_legacy_tokens || self.uses_token_review() {
                return Err(refuse(
                    Denial::PolicyViolation,
                    "a legacy Secret-based token (iss kubernetes/serviceaccount: no exp, no audience) is refused: allowLegacyTokens is off",
                ));
            }
            if claims.exp.is_some() {
                check_times(claims, now, self.max_token_lifetime)?;
            } else {
                let leeway = keystation_provisioners::token_checks::LEEWAY.as_secs() as i64;
                if let Some(t) =
                    claims.nbf.into_iter().chain(claims.iat).find(|t| *t > now + leeway)
                {
                    return Err(refuse(
                        Denial::NotYetValid,
                        format!("nbf/iat {t} is after now {now}"),
                    ));
                }
            }
        } else {
            match (iss, self.issuer.as_deref()) {
                (Some(got), Some(want)) if got == want => {}
                (got, want) => {
                    return Err(refuse(
                        Denial::WrongIssuer,
                        format!(
                            "iss {got:?} is neither {LEGACY_ISSUER:?} nor the configured issuer {want:?}"
                        ),
                    ));
                }
            }
            if !claims.aud.iter().any(|a| self.audiences.contains(a)) {
                return Err(refuse(
                    Denial::WrongAudience,
                    format!("aud {:?} names none of {:?}", claims.aud, self.audiences),
                ));
            }
            check_times(claims, now, self.max_token_lifetime)?;
        }
        let sub = claims.sub.as_deref().unwrap_or_default();
        if service_account(sub).is_none() {
            return Err(refuse(
                Denial::Malformed,
                format!("sub {sub:?} is not {SERVICE_ACCOUNT_PREFIX}<namespace>:<name>"),
            ));
        }
        let digest = || sha256_hex(token);
        let replay_id = match claims.jti.as_deref().filter(|j| !j.is_empty()) {
            Some(jti) => jti.to_owned(),
            // A token without exp verifies for ever: its record is kept for ever too.
            None if claims.exp.is_none() => {
                keystation_provisioners::tofu_id(&format!("k8ssa-legacy/{}", digest()))
            }
            None => digest(),
        };
        Ok((sub.to_owned(), replay_id))
    }

    /// What the API server said: authenticated, the same service account, an audience of
    /// ours.
    fn check_review(&self, statement: &Statement, subject: &str) -> Result<(), Refusal> {
        let status = &statement.status;
        if !status.authenticated {
            return Err(refuse(
                Denial::BadSignature,
                format!(
                    "the API server does not authenticate the token: {}",
                    status.error.as_deref().unwrap_or("no reason given")
                ),
            ));
        }
        let username = status.username.as_deref().unwrap_or_default();
        if service_account(username).is_none() {
            return Err(refuse(
                Denial::PolicyViolation,
                format!("the API server authenticated {username:?}, not a service account"),
            ));
        }
        if username != subject {
            return Err(refuse(
                Denial::PolicyViolation,
                format!("the API server authenticated {username:?}, the token names {subject:?}"),
            ));
        }
        if !status.audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(refuse(
                Denial::WrongAudience,
                format!(
                    "the API server found the token valid for {:?}, none of {:?}",
                    status.audiences, self.audiences
                ),
            ));
        }
        Ok(())
    }

    /// The grant: the service account as subject and only name. Validity by the claims.
    fn grant(
        &self,
        subject: String,
        replay_id: String,
        operation: Operation,
        now: i64,
    ) -> Result<Grant, Refusal> {
        let bounds = match operation {
            Operation::SignX509 | Operation::RenewX509 => {
                if operation == Operation::RenewX509 && self.claims.disable_renewal {
                    return Err(refuse(
                        Denial::OperationNotAllowed,
                        "renewal is disabled (disableRenewal)",
                    ));
                }
                self.claims.tls
            }
            Operation::RevokeX509 => {
                return Ok(Grant {
                    provisioner: self.name.clone(),
                    subject,
                    sans: Vec::new(),
                    not_before: system_time(now),
                    not_after: system_time(now),
                    operations: vec![operation],
                    replay_id: Some(replay_id),
                });
            }
            Operation::SignSshUser | Operation::SignSshHost => {
                if !self.claims.enable_ssh_ca {
                    return Err(refuse(
                        Denial::OperationNotAllowed,
                        "SSH certificates are not enabled for this provisioner (enableSSHCA)",
                    ));
                }
                if operation == Operation::SignSshHost {
                    self.claims.ssh_host
                } else {
                    self.claims.ssh_user
                }
            }
            other => {
                return Err(refuse(Denial::OperationNotAllowed, format!("{other:?}")));
            }
        };
        let lifetime = bounds.pick(None).map_err(|d| refuse(d, "default certificate lifetime"))?;
        Ok(Grant {
            provisioner: self.name.clone(),
            sans: vec![subject.clone()],
            subject,
            not_before: system_time(now),
            not_after: system_time(now.saturating_add(lifetime.as_secs() as i64)),
            operations: vec![operation],
            replay_id: Some(replay_id),
        })
    }
}

impl keystation_core::Provisioner for K8sSaProvisioner {
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

impl StepProvisioner for K8sSaProvisioner {
    fn kind(&self) -> ProvisionerKind {
        ProvisionerKind::K8sSa
    }

    fn effective_claims(&self) -> Option<&EffectiveClaims> {
        Some(&self.claims)
    }

    /// step-ca routes `iss == "kubernetes/serviceaccount"` to its K8sSA provisioner;
    /// keystation also routes bound tokens of the configured issuer.
    fn routes(&self, peek: &TokenPeek) -> bool {
        match peek.iss.as_deref() {
            Some(LEGACY_ISSUER) => true,
            Some(iss) => self.issuer.as_deref() == Some(iss),
            None => false,
        }
    }

    fn key_source(&self) -> Option<Arc<dyn KeySource>> {
        match &self.mode {
            Mode::Review { source, .. } => Some(source.clone() as Arc<dyn KeySource>),
            Mode::Keys(_) => None,
        }
    }

    fn to_json(&self) -> String {
        K8sSaProvisioner::to_json(self)
    }
}

/// The options of `keystation authority provisioner add --type K8sSA`, as plain fields;
/// [`to_json`](Self::to_json) makes the `ca.json` object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sSaOptions {
    /// The provisioner's name (step-ca's default is [`DEFAULT_NAME`]).
    pub name: String,
    /// The cluster's service-account public keys, PEM (`PUBLIC KEY` or `CERTIFICATE`
    /// blocks; kubeadm's `/etc/kubernetes/pki/sa.pub`).
    pub public_keys_pem: Option<String>,
    /// The issuer of bound tokens (`--service-account-issuer`).
    pub issuer: Option<String>,
    /// The audiences a bound token must name one of.
    pub audiences: Vec<String>,
    /// Accept legacy Secret-based tokens (no `exp`, no `aud`).
    pub allow_legacy_tokens: bool,
    /// The longest token lifetime accepted (default one hour, at most 24 hours).
    pub max_token_lifetime: Option<Duration>,
    /// The API server for TokenReview, `https://host:port`.
    pub token_review_url: Option<String>,
    /// The API server's CA, PEM.
    pub token_review_ca_cert_pem: Option<String>,
    /// The authority's own service-account token file.
    pub token_review_bearer_token_file: Option<String>,
    /// step-ca's `claims` object, JSON, if any.
    pub claims_json: Option<String>,
}

impl K8sSaOptions {
    /// The `ca.json` object (`publicKeys` as base64 of the PEM, as step-ca writes it).
    /// Whether it is a valid configuration is decided when it is read
    /// ([`K8sSaProvisioner::from_json_in`]).
    pub fn to_json(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), ProvisionerKind::K8sSa.type_name().into());
        let name = if self.name.is_empty() { DEFAULT_NAME } else { self.name.as_str() };
        object.insert("name".into(), name.into());
        if let Some(pem) = &self.public_keys_pem {
            object.insert(
                "publicKeys".into(),
                base64::engine::general_purpose::STANDARD.encode(pem.trim()).into(),
            );
        }
        if let Some(issuer) = &self.issuer {
            object.insert("issuer".into(), issuer.clone().into());
        }
        if !self.audiences.is_empty() {
            object.insert("audiences".into(), self.audiences.clone().into());
        }
        if self.allow_legacy_tokens {
            object.insert("allowLegacyTokens".into(), true.into());
        }
        if let Some(d) = self.max_token_lifetime {
            let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
            object.insert(
                "maxTokenLifetime".into(),
                keystation_jose::step_time::format_go_duration(nanos).into(),
            );
        }
        if let Some(url) = &self.token_review_url {
            object.insert(
                "tokenReview".into(),
                serde_json::json!({
                    "url": url,
                    "caCert": self.token_review_ca_cert_pem.clone().unwrap_or_default(),
                    "bearerTokenFile": self.token_review_bearer_token_file.clone().unwrap_or_default(),
                }),
            );
        }
        if let Some(claims) = &self.claims_json
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(claims)
        {
            object.insert("claims".into(), value);
        }
        serde_json::Value::Object(object).to_string()
    }
}
