//! The `AWS` provisioner: step's token carrying an EC2 instance identity document.
//!
//! # The token
//!
//! What `step ca token --provisioner aws` makes (step-ca's `aws.go`, `GetIdentityToken`):
//! a compact JWT whose header is `{"alg":"HS256","typ":"JWT"}`, MACed with HMAC-SHA256
//! (RFC 7518 §3.2) keyed with the raw bytes of the document's signature, and whose claims
//! are `iss` = `ec2.amazonaws.com`, `sub` (the subject asked for), `aud` =
//! [`<ca>/1.0/sign#aws/<name>`], `exp` (5 minutes), `nbf`, `iat`, `jti` =
//! hex SHA-256 of `aws/<name>.<instanceId>`, `sans` (null from step), and
//! `amazon` = `{"document": base64(document), "signature": base64(signature)}` —
//! base64 with padding, as Go encodes `[]byte`.
//!
//! keystation's extension for the RSA-2048 form: `amazon` = `{"pkcs7": base64(the bytes
//! of `/rsa2048`, decoded from the metadata service's base64)}`, optionally with
//! `document` (then it must equal the PKCS#7's content), the HMAC keyed with those PKCS#7
//! bytes. step-ca knows only the `/signature` form.
//!
//! # The checks, in order
//!
//! 1. The operation is one AWS provisioners allow (research note §5: X.509 sign and SSH
//!    host sign; renewal goes through the certificate, which
//!    [`renewal_disabled`](keystation_provisioners::StepProvisioner::renewal_disabled)
//!    answers; revoke and SSH user certificates are not allowed).
//! 2. The header's `alg` is `HS256` and the MAC verifies with the signature's bytes.
//! 3. The document's signature verifies with a trusted certificate (the embedded AWS
//!    certificates, or the configured `iidRoots`, which replace them).
//! 4. The document has `accountId`, `instanceId`, `privateIp` and `region`.
//! 5. `iss` is `ec2.amazonaws.com`; `aud` names this endpoint with the fragment
//!    `aws/<name>`; `exp` is required, `nbf`/`iat` checked, 60 s leeway, and the lifetime
//!    at most the authority's maximum (5 minutes by default; step-ca has no maximum and
//!    does not require `exp`); `sub` is not empty.
//! 6. `accounts`, when configured, holds the document's `accountId`.
//! 7. `instanceAge`, when configured: `pendingTime` must be present and no older.
//! 8. `disableCustomSANs`: `sub` is the instance ID, the private IP or
//!    `ip-a-b-c-d.<region>.compute.internal`; the names are at most those two (the DNS
//!    name and the IP — any subset, step-ca's PR #2044). Otherwise the names are the
//!    token's `sans`, or its `sub` when it has none (step-ca accepts any names in the CSR;
//!    keystation certifies only what the token names).
//!
//! Only then is the replay id made: `tofu:<instanceId>` from the **verified** document
//! (trust on first use: the instance's first certificate is its only one until an
//! operator resets the record), or with `disableTrustOnFirstUse` the hex SHA-256 of the
//! token — not its `jti`, which step derives from the instance ID and would make every
//! later token of the instance a replay.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request};
use keystation_jose::Claims as TokenClaims;
use keystation_jose::step_time::{format_go_duration, parse_go_duration};
use keystation_provisioners::token_checks::{
    Refusal, check_audience, check_times, refuse, system_time, unix,
};
use keystation_provisioners::{
    Claims, ClaimsJson, EffectiveClaims, ProvisionerContext, ProvisionerKind, StepProvisioner,
    TokenPeek, check_no_templates, common, invalid, tofu_id,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::document::IdentityDocument;
use crate::pkcs7::{self, Pkcs7Refusal};
use crate::trust::TrustStore;

/// The issuer of step's AWS tokens.
pub const AWS_ISSUER: &str = "ec2.amazonaws.com";

/// The operations an AWS provisioner authorizes with a token.
pub const AWS_OPERATIONS: [Operation; 2] = [Operation::SignX509, Operation::SignSshHost];

/// The largest token accepted (a real one is about 3 KiB).
pub const MAX_TOKEN_LENGTH: usize = 64 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An `AWS` provisioner.
#[derive(Debug, Clone)]
pub struct AwsProvisioner {
    name: String,
    fragment: String,
    accounts: Vec<String>,
    disable_custom_sans: bool,
    disable_trust_on_first_use: bool,
    imds_versions: Option<Vec<String>>,
    instance_age: Option<Duration>,
    iid_roots: Option<String>,
    iid_roots_pem: Option<String>,
    trust: TrustStore,
    claims: EffectiveClaims,
    declared_claims: Claims,
    max_token_lifetime: Duration,
}

/// step-ca's AWS provisioner object (`aws.go`), plus keystation's `iidRootsPem`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<String>>,
    #[serde(rename = "disableCustomSANs", default, skip_serializing_if = "is_false")]
    disable_custom_sans: bool,
    #[serde(rename = "disableTrustOnFirstUse", default, skip_serializing_if = "is_false")]
    disable_trust_on_first_use: bool,
    /// Read for compatibility: which metadata service versions step's client tries. The
    /// verifier does not depend on it; keystation's client speaks IMDSv2 only.
    #[serde(rename = "imdsVersions", default, skip_serializing_if = "Option::is_none")]
    imds_versions: Option<Vec<String>>,
    #[serde(rename = "instanceAge", default, skip_serializing_if = "Option::is_none")]
    instance_age: Option<String>,
    /// step-ca's: the path of a PEM bundle replacing the embedded certificates.
    #[serde(rename = "iidRoots", default, skip_serializing_if = "Option::is_none")]
    iid_roots: Option<String>,
    /// keystation's: the same bundle inline (so that a configuration needs no side file).
    #[serde(rename = "iidRootsPem", default, skip_serializing_if = "Option::is_none")]
    iid_roots_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a token's signatures vouch for: the payload (claims and `amazon`, borrowed from
/// the decoded payload) and the verified document.
struct Verified<'a> {
    payload: Payload<'a>,
    document: IdentityDocument,
}

/// The token's payload, parsed once: the registered claims (with the types
/// [`keystation_jose::Claims`] requires of them) and `amazon`. Strings borrow from the
/// decoded payload where JSON has no escapes.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(default, borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    sub: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "audiences")]
    aud: Vec<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    /// Not used (the replay id is not the `jti`), but a string when present, as for
    /// every step token.
    #[serde(default, borrow)]
    #[allow(dead_code)]
    jti: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    sans: Vec<String>,
    /// Type-checked as for every step token, not used.
    #[serde(default, borrow)]
    #[allow(dead_code)]
    sha: Option<Cow<'a, str>>,
    /// Type-checked as for every step token, not used.
    #[serde(default)]
    #[allow(dead_code)]
    step: Option<keystation_jose::StepClaims>,
    #[serde(default, borrow)]
    amazon: Option<Amazon<'a>>,
}

#[derive(Deserialize)]
struct Amazon<'a> {
    #[serde(default, borrow)]
    document: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pkcs7: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(default, borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// `aud`: a string or an array of strings (RFC 7519 §4.1.3); `null` is none.
fn audiences<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(vec![v])
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Visitor)
}

/// RFC 7519 §2 NumericDate: a JSON number of seconds, possibly with a fraction
/// (truncated); `null` is absent (as keystation-jose reads it).
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(Some(f.trunc() as i64)),
        _ => Err(serde::de::Error::custom("NumericDate out of range")),
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Standard base64 (as Go encodes `[]byte`) of an `amazon` field, or why not.
fn amazon_field(value: Option<&str>, what: &str) -> Result<Option<Vec<u8>>, Refusal> {
    value
        .map(|v| {
            B64.decode(v)
                .map_err(|_| refuse(Denial::Malformed, format!("amazon.{what} is not base64")))
        })
        .transpose()
}

impl AwsProvisioner {
    /// Reads step-ca's AWS provisioner object (`type`, `name`, `accounts`,
    /// `disableCustomSANs`, `disableTrustOnFirstUse`, `imdsVersions`, `instanceAge` as a Go
    /// duration, `iidRoots` as a path, `claims`, `options`) plus keystation's
    /// `iidRootsPem` (the bundle inline; not with `iidRoots`). Unknown fields, templates
    /// in `options`, a negative `instanceAge` and unusable roots are refused.
    pub fn from_json_in(
        json: &str,
        context: &ProvisionerContext,
    ) -> Result<Self, keystation_provisioners::Error> {
        let config: AwsJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not an AWS provisioner object: {e}")))?;
        let name = config.name.as_str();
        let (declared, effective) = common(
            ProvisionerKind::Aws,
            &config.kind,
            name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(name, config.options.as_ref())?;
        if let Some(versions) = &config.imds_versions
            && let Some(v) = versions.iter().find(|v| *v != "v1" && *v != "v2")
        {
            return Err(invalid(name, format!("imdsVersions: {v:?} is neither v1 nor v2")));
        }
        let instance_age = match config.instance_age.as_deref() {
            None => None,
            Some(text) => match parse_go_duration(text) {
                Ok(0) => None,
                Ok(nanos) if nanos > 0 => Some(Duration::from_nanos(nanos.unsigned_abs())),
                _ => {
                    return Err(invalid(
                        name,
                        format!("instanceAge: {text:?} is not a positive Go duration"),
                    ));
                }
            },
        };
        let trust = match (&config.iid_roots, &config.iid_roots_pem) {
            (Some(_), Some(_)) => {
                return Err(invalid(name, "iidRoots and iidRootsPem are exclusive"));
            }
            (Some(path), None) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| invalid(name, format!("iidRoots: reading {path}: {e}")))?;
                TrustStore::from_pem(&pem)
                    .map_err(|e| invalid(name, format!("iidRoots {path}: {e}")))?
            }
            (None, Some(pem)) => {
                TrustStore::from_pem(pem).map_err(|e| invalid(name, format!("iidRootsPem: {e}")))?
            }
            (None, None) => TrustStore::embedded()
                .map_err(|e| invalid(name, format!("embedded AWS certificates: {e}")))?,
        };
        Ok(Self {
            name: name.to_owned(),
            fragment: format!("aws/{name}"),
            accounts: config.accounts.unwrap_or_default(),
            disable_custom_sans: config.disable_custom_sans,
            disable_trust_on_first_use: config.disable_trust_on_first_use,
            imds_versions: config.imds_versions,
            instance_age,
            iid_roots: config.iid_roots,
            iid_roots_pem: config.iid_roots_pem,
            trust,
            claims: effective,
            declared_claims: declared,
            max_token_lifetime: context.max_token_lifetime,
        })
    }

    /// The provisioner object, as `/provisioners` lists it (no secrets: an AWS provisioner
    /// has none).
    pub fn to_json(&self) -> String {
        let config = AwsJson {
            kind: ProvisionerKind::Aws.type_name().into(),
            name: self.name.clone(),
            accounts: (!self.accounts.is_empty()).then(|| self.accounts.clone()),
            disable_custom_sans: self.disable_custom_sans,
            disable_trust_on_first_use: self.disable_trust_on_first_use,
            imds_versions: self.imds_versions.clone(),
            instance_age: self
                .instance_age
                .map(|d| format_go_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))),
            iid_roots: self.iid_roots.clone(),
            iid_roots_pem: self.iid_roots_pem.clone(),
            claims: ClaimsJson::from_claims(&self.declared_claims),
            options: None,
        };
        serde_json::to_string(&config).unwrap_or_default()
    }

    /// The audience fragment its tokens carry, `aws/<name>`.
    pub fn audience_fragment(&self) -> &str {
        &self.fragment
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// How many certificates it trusts, and how many distinct keys they hold.
    pub fn trusted_certificates(&self) -> (usize, usize) {
        (self.trust.certificates.len(), self.trust.distinct_keys())
    }

    /// The DER of the certificates it trusts, in order.
    pub fn trusted_certificate_ders(&self) -> Vec<Vec<u8>> {
        self.trust.certificates.iter().map(|c| c.der.clone()).collect()
    }

    /// Verifies the `/signature` form of a document with the trusted certificates: an RSA
    /// PKCS#1 v1.5 SHA-256 `signature` over `document`. The building block under
    /// [`authorize`](keystation_core::Provisioner::authorize) (and what its benchmark
    /// compares it with).
    pub fn verify_document_signature(&self, document: &[u8], signature: &[u8]) -> bool {
        let hint = IdentityDocument::parse(document).ok().map(|d| d.region);
        self.trust.verify_raw(document, signature, hint.as_deref()).is_some()
    }

    /// Verifies a PKCS#7 (`/rsa2048`) document, BER or DER, with the trusted certificates;
    /// the document's bytes, or why not.
    pub fn verify_pkcs7(&self, pkcs7: &[u8]) -> Result<Vec<u8>, String> {
        pkcs7::verify(pkcs7, &self.trust).map(|v| v.document).map_err(|r| format!("{r:?}"))
    }

    /// The token's signatures verified: the MAC, then the document's signature, and only
    /// then the document parsed for use. `buffer` receives the decoded payload, which the
    /// answer borrows from.
    fn verify_token<'b>(
        &self,
        token: &str,
        buffer: &'b mut Vec<u8>,
    ) -> Result<Verified<'b>, Refusal> {
        if token.len() > MAX_TOKEN_LENGTH {
            return Err(refuse(Denial::Malformed, "the token is over 64 KiB"));
        }
        // The header and the MAC are short: find them from both ends, so that the long
        // payload is scanned once, by the base64url decoder (which takes no '.').
        let three_parts = || refuse(Denial::Malformed, "not a compact JWS of three parts");
        let (header, rest) = token.split_once('.').ok_or_else(three_parts)?;
        let (payload, mac) = rest.rsplit_once('.').ok_or_else(three_parts)?;
        let decode = |part: &str, what: &str, out: &mut Vec<u8>| {
            B64URL
                .decode_vec(part, out)
                .map_err(|_| refuse(Denial::Malformed, format!("the {what} is not base64url")))
        };
        let mut header_json = Vec::with_capacity(header.len() / 4 * 3 + 3);
        decode(header, "header", &mut header_json)?;
        let header_value: Header<'_> = serde_json::from_slice(&header_json)
            .map_err(|e| refuse(Denial::Malformed, format!("header: {e}")))?;
        if header_value.alg.as_deref() != Some("HS256") {
            return Err(refuse(
                Denial::BadSignature,
                format!(
                    "alg {:?}: AWS tokens are HS256 keyed with the document's signature",
                    header_value.alg
                ),
            ));
        }
        if header_value.crit.is_some() {
            return Err(refuse(Denial::Malformed, "the header has crit parameters"));
        }
        buffer.clear();
        buffer.reserve(payload.len() / 4 * 3 + 3);
        decode(payload, "payload", buffer)
            .map_err(|e| if payload.contains('.') { three_parts() } else { e })?;
        let mut mac_bytes = Vec::with_capacity(mac.len() / 4 * 3 + 3);
        decode(mac, "MAC", &mut mac_bytes)?;
        let payload_json: &'b [u8] = buffer;
        // A JSON object, as keystation-jose requires of claims (serde's derived structs
        // also take arrays, fields by position).
        if payload_json.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) != Some(&b'{') {
            return Err(refuse(Denial::Malformed, "JWT claims: not a JSON object"));
        }
        let mut payload_value: Payload<'b> = serde_json::from_slice(payload_json)
            .map_err(|e| refuse(Denial::Malformed, format!("payload: {e}")))?;
        let amazon = payload_value
            .amazon
            .take()
            .ok_or_else(|| refuse(Denial::Malformed, "the token has no amazon claim"))?;
        let document = amazon_field(amazon.document.as_deref(), "document")?;
        let signature = amazon_field(amazon.signature.as_deref(), "signature")?;
        let pkcs7_bytes = amazon_field(amazon.pkcs7.as_deref(), "pkcs7")?;
        let key = match (&signature, &pkcs7_bytes) {
            (Some(s), None) => s,
            (None, Some(p)) => p,
            (Some(_), Some(_)) => {
                return Err(refuse(Denial::Malformed, "amazon has both signature and pkcs7"));
            }
            (None, None) => {
                return Err(refuse(Denial::Malformed, "amazon has neither signature nor pkcs7"));
            }
        };
        if key.is_empty() {
            return Err(refuse(Denial::BadSignature, "the document's signature is empty"));
        }
        // The MAC first: it is cheap, and a token altered after it was made stops here. Its
        // input, `header.payload`, is the token's prefix.
        let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
        ring::hmac::verify(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), signed, &mac_bytes)
            .map_err(|_| {
                refuse(
                    Denial::BadSignature,
                    "the HS256 MAC does not verify with the document's signature",
                )
            })?;
        let document = match (signature, pkcs7_bytes, document) {
            (Some(signature), None, Some(document)) => {
                let parsed = IdentityDocument::parse(&document);
                let hint = parsed.as_ref().ok().map(|d| d.region.as_str());
                if self.trust.verify_raw(&document, &signature, hint).is_none() {
                    return Err(refuse(
                        Denial::BadSignature,
                        "the identity document's signature verifies with no trusted AWS certificate",
                    ));
                }
                parsed.map_err(|e| refuse(Denial::Malformed, format!("identity document: {e}")))?
            }
            (None, Some(pkcs7_bytes), claimed) => {
                let verified = pkcs7::verify(&pkcs7_bytes, &self.trust).map_err(|r| match r {
                    Pkcs7Refusal::Malformed(m) => {
                        refuse(Denial::Malformed, format!("amazon.pkcs7: {m}"))
                    }
                    Pkcs7Refusal::UnknownSigner => refuse(
                        Denial::UntrustedChain,
                        "amazon.pkcs7 is signed by no trusted AWS certificate",
                    ),
                    Pkcs7Refusal::BadSignature(m) => {
                        refuse(Denial::BadSignature, format!("amazon.pkcs7: {m}"))
                    }
                })?;
                if claimed.is_some_and(|d| d != verified.document) {
                    return Err(refuse(
                        Denial::BadSignature,
                        "amazon.document is not the document the PKCS#7 signs",
                    ));
                }
                IdentityDocument::parse(&verified.document)
                    .map_err(|e| refuse(Denial::Malformed, format!("identity document: {e}")))?
            }
            _ => return Err(refuse(Denial::Malformed, "amazon.signature without amazon.document")),
        };
        Ok(Verified { payload: payload_value, document })
    }

    fn check(&self, request: &Request<'_>, now: SystemTime) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "an AWS provisioner takes a token"));
        };
        if !AWS_OPERATIONS.contains(&request.operation) {
            return Err(refuse(
                Denial::OperationNotAllowed,
                format!(
                    "an AWS provisioner does not authorize {:?} with a token (X.509 and SSH host signing only)",
                    request.operation
                ),
            ));
        }
        let mut buffer = Vec::new();
        let Verified { payload: claims, document } = self.verify_token(token, &mut buffer)?;
        if claims.iss.as_deref() != Some(AWS_ISSUER) {
            return Err(refuse(
                Denial::WrongIssuer,
                format!("iss {:?} is not {AWS_ISSUER:?}", claims.iss),
            ));
        }
        check_audience(&claims.aud, request.audience, request.operation, Some(&self.fragment))?;
        let now = unix(now);
        let mut times = TokenClaims::default();
        (times.exp, times.nbf, times.iat) = (claims.exp, claims.nbf, claims.iat);
        check_times(&times, now, self.max_token_lifetime)?;
        let Some(sub) = claims.sub.as_deref().filter(|s| !s.is_empty()) else {
            return Err(refuse(Denial::Malformed, "the token has no sub"));
        };
        if !self.accounts.is_empty() && !self.accounts.contains(&document.account_id) {
            return Err(refuse(
                Denial::PolicyViolation,
                format!("account {} is not among the accounts allowed", document.account_id),
            ));
        }
        if let Some(age) = self.instance_age {
            let Some(pending) = document.pending_time else {
                return Err(refuse(
                    Denial::PolicyViolation,
                    "instanceAge is set and the document has no RFC 3339 pendingTime",
                ));
            };
            let max = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            if now.saturating_sub(pending) > max {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!(
                        "instance {} started {} s ago, more than instanceAge {} s",
                        document.instance_id,
                        now.saturating_sub(pending),
                        max
                    ),
                ));
            }
        }
        // The instance's own names, made only where they are needed.
        let known = || [document.private_dns_name(), document.private_ip.to_string()];
        let names = if self.disable_custom_sans {
            let [dns, ip] = known();
            if sub != document.instance_id && sub != ip && sub != dns {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!(
                        "disableCustomSANs: sub {sub:?} is none of the instance ID, {ip} and {dns}"
                    ),
                ));
            }
            if let Some(name) = claims.sans.iter().find(|s| **s != dns && **s != ip) {
                return Err(refuse(
                    Denial::PolicyViolation,
                    format!("disableCustomSANs: {name:?} is neither {dns} nor {ip}"),
                ));
            }
            if claims.sans.is_empty() { vec![dns, ip] } else { claims.sans }
        } else if claims.sans.is_empty() {
            match request.operation {
                Operation::SignSshHost => known().to_vec(),
                _ => vec![sub.to_owned()],
            }
        } else {
            claims.sans
        };
        let (bounds, what) = match request.operation {
            Operation::SignSshHost => {
                if !self.claims.enable_ssh_ca {
                    return Err(refuse(
                        Denial::OperationNotAllowed,
                        "SSH certificates are not enabled for this provisioner (enableSSHCA)",
                    ));
                }
                (self.claims.ssh_host, "SSH host")
            }
            _ => (self.claims.tls, "TLS"),
        };
        let lifetime =
            bounds.pick(None).map_err(|d| refuse(d, format!("default {what} lifetime")))?;
        let replay_id = if self.disable_trust_on_first_use {
            hex(&Sha256::digest(token.as_bytes()))
        } else {
            tofu_id(&document.instance_id)
        };
        Ok(Grant {
            provisioner: self.name.clone(),
            subject: sub.to_owned(),
            sans: names,
            not_before: system_time(now),
            not_after: system_time(
                now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)),
            ),
            operations: vec![request.operation],
            replay_id: Some(replay_id),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

impl keystation_core::Provisioner for AwsProvisioner {
    fn name(&self) -> &str {
        &self.name
    }

    fn authorize(
        &self,
        request: &Request<'_>,
        _keys: &keystation_core::provisioner::TrustedKeys,
        now: SystemTime,
    ) -> Result<Grant, keystation_core::Error> {
        self.check(request, now).map_err(|r| r.report(&self.name))
    }
}

impl StepProvisioner for AwsProvisioner {
    fn kind(&self) -> ProvisionerKind {
        ProvisionerKind::Aws
    }

    fn effective_claims(&self) -> Option<&EffectiveClaims> {
        Some(&self.claims)
    }

    /// step-ca routes AWS tokens by their audience's fragment, `#aws/<name>`.
    fn routes(&self, peek: &TokenPeek) -> bool {
        peek.has_audience_fragment(&self.fragment)
    }

    fn to_json(&self) -> String {
        AwsProvisioner::to_json(self)
    }
}

/// The options of `keystation authority provisioner add --type AWS`, as plain fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AwsOptions {
    /// The provisioner's name (tokens' audience fragment is `aws/<name>`).
    pub name: String,
    /// The AWS account IDs allowed; empty allows any.
    pub accounts: Vec<String>,
    /// Certify only the instance's private DNS name and IP.
    pub disable_custom_sans: bool,
    /// Allow more than one certificate per instance.
    pub disable_trust_on_first_use: bool,
    /// The oldest instance (since `pendingTime`) allowed; `None` allows any.
    pub instance_age: Option<Duration>,
    /// The path of a PEM bundle replacing the embedded AWS certificates.
    pub iid_roots: Option<String>,
    /// A PEM bundle, inline, replacing the embedded AWS certificates.
    pub iid_roots_pem: Option<String>,
}

impl AwsOptions {
    /// Options for a provisioner named `name`, the rest by default.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// The `ca.json` object.
    pub fn to_json(&self) -> String {
        let config = AwsJson {
            kind: ProvisionerKind::Aws.type_name().into(),
            name: self.name.clone(),
            accounts: (!self.accounts.is_empty()).then(|| self.accounts.clone()),
            disable_custom_sans: self.disable_custom_sans,
            disable_trust_on_first_use: self.disable_trust_on_first_use,
            imds_versions: None,
            instance_age: self
                .instance_age
                .map(|d| format_go_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))),
            iid_roots: self.iid_roots.clone(),
            iid_roots_pem: self.iid_roots_pem.clone(),
            claims: None,
            options: None,
        };
        serde_json::to_string(&config).unwrap_or_default()
    }
}
