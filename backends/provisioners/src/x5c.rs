//! step-ca's `X5C` provisioner: tokens whose `x5c` header carries a certificate chain to the
//! provisioner's roots, signed by the leaf's key (step-ca's `x5c.go`), and step's
//! `x5cInsecure` renewal tokens ([`verify_x5c_insecure`]).
//!
//! The chain: the leaf (`x5c[0]`), then certificates from the rest of `x5c`, each signed by
//! the next (`keystation-x509`'s `verify_signed_by`), each a CA, up to one of the roots;
//! every certificate, root included, valid at `now`. The leaf must allow digital signatures
//! (key usage) and, if it lists extended key usages, client authentication (as Go's
//! verifier with `ExtKeyUsageClientAuth`). The token's algorithm comes from the leaf's key.
//! Then the checks of JWK tokens, with step-ca's X5C audience fragment `#x5c/<name>`; the
//! certificate's validity bounds the grant.
//!
//! Operations (research note §5): X.509 sign, renew and revoke; SSH user and host signing
//! (with `enableSSHCA`).

use std::time::{Duration, SystemTime};

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request};
use keystation_core::tlv;
use keystation_jose::{Algorithm, UnverifiedJws, parse_compact};
use keystation_x509::Certificate;
use serde::{Deserialize, Serialize};

use crate::config::{ClaimsJson, ProvisionerContext, check_no_templates, common, invalid};
use crate::token_checks::{
    DEFAULT_MAX_TOKEN_LIFETIME, Endpoint, Refusal, check_audience, check_identity, check_times,
    jose_refusal, refuse, step_grant, unix,
};
use crate::{Claims, EffectiveClaims, Error, ProvisionerKind};

/// The operations an X5C provisioner can authorize.
pub const X5C_OPERATIONS: [Operation; 5] = [
    Operation::SignX509,
    Operation::RenewX509,
    Operation::RevokeX509,
    Operation::SignSshUser,
    Operation::SignSshHost,
];

/// The longest chain followed from the leaf to a root.
const MAX_CHAIN: usize = 8;

const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_EXT_KEY_USAGE: &str = "2.5.29.37";
/// DER contents of the OIDs id-kp-clientAuth (1.3.6.1.5.5.7.3.2) and anyExtendedKeyUsage
/// (2.5.29.37.0).
const CLIENT_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
const ANY_EKU: &[u8] = &[0x55, 0x1D, 0x25, 0x00];

/// An `X5C` provisioner.
#[derive(Debug, Clone)]
pub struct X5cProvisioner {
    name: String,
    roots: Vec<Certificate>,
    claims: EffectiveClaims,
    declared_claims: Claims,
    max_token_lifetime: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct X5cJson {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    /// PEM certificates, base64-encoded (Go's `[]byte` in JSON).
    roots: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
}

/// Whether the leaf may sign tokens: key usage with digitalSignature (required, as step-ca
/// requires it), and extended key usage, when present, with clientAuth or any.
fn leaf_usage_allows_signing(leaf: &Certificate) -> Result<(), Refusal> {
    let digital_signature = leaf.extension(OID_KEY_USAGE).and_then(|ku| {
        let bits = tlv::parse(ku).next()?.ok()?;
        (bits.tag() == tlv::Tag(0x03)).then(|| bits.value().get(1).is_some_and(|b| b & 0x80 != 0))
    });
    if digital_signature != Some(true) {
        return Err(refuse(
            Denial::PolicyViolation,
            "the x5c leaf's key usage does not include digitalSignature",
        ));
    }
    if let Some(eku) = leaf.extension(OID_EXT_KEY_USAGE) {
        let seq = tlv::parse(eku).next().and_then(Result::ok);
        let allowed = seq.is_some_and(|seq| {
            seq.children().filter_map(Result::ok).any(|oid| {
                oid.tag() == tlv::Tag(0x06)
                    && (oid.value() == CLIENT_AUTH || oid.value() == ANY_EKU)
            })
        });
        if !allowed {
            return Err(refuse(
                Denial::PolicyViolation,
                "the x5c leaf's extended key usage does not include clientAuth",
            ));
        }
    }
    Ok(())
}

/// The algorithm a token signed by `key` must use: the key's, with RSA keys signing RS256
/// or PS256 (a header naming either is taken; never `none` or HS*).
fn algorithm_for(key: &PublicKey, jws: &UnverifiedJws) -> Result<Algorithm, Refusal> {
    let Some(default) = Algorithm::default_for(key) else {
        return Err(refuse(
            Denial::UnknownKey,
            format!("{} keys cannot sign tokens", key.algorithm()),
        ));
    };
    if matches!(key.algorithm(), KeyAlgorithm::Rsa(_)) && jws.header().alg == "PS256" {
        return Ok(Algorithm::Ps256);
    }
    Ok(default)
}

/// Verifies `jws` with the public key of `leaf`.
fn verify_with_leaf(
    jws: &UnverifiedJws,
    leaf: &Certificate,
) -> Result<keystation_jose::VerifiedJws, Refusal> {
    let key = leaf
        .public_key()
        .map_err(|e| refuse(Denial::UnknownKey, format!("the leaf's key: {e}")))?;
    let alg = algorithm_for(&key, jws)?;
    jws.verify_with(&key, alg).map_err(|e| jose_refusal(&e))
}

fn parse_chain(chain: &[Vec<u8>], what: &str) -> Result<Vec<Certificate>, Refusal> {
    chain
        .iter()
        .map(|der| {
            Certificate::from_der(der)
                .map_err(|e| refuse(Denial::Malformed, format!("{what} certificate: {e}")))
        })
        .collect()
}

impl X5cProvisioner {
    /// A provisioner named `name` trusting chains to `roots` (DER certificates, each a CA),
    /// with the resolved `claims`.
    pub fn new(
        name: impl Into<String>,
        roots: &[Vec<u8>],
        claims: EffectiveClaims,
    ) -> Result<Self, Error> {
        let name = name.into();
        if roots.is_empty() {
            return Err(invalid(&name, "roots: at least one certificate is required"));
        }
        let roots = roots
            .iter()
            .map(|der| {
                Certificate::from_der(der).map_err(|e| invalid(&name, format!("roots: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(leaf) = roots.iter().find(|r| !r.is_ca()) {
            return Err(invalid(
                &name,
                format!("roots: {} is not a CA certificate", leaf.subject()),
            ));
        }
        Ok(Self {
            name,
            roots,
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

    /// The roots, DER.
    pub fn roots(&self) -> Vec<Vec<u8>> {
        self.roots.iter().map(Certificate::to_der).collect()
    }

    /// The resolved claims.
    pub fn claims(&self) -> &EffectiveClaims {
        &self.claims
    }

    /// Reads step-ca's X5C provisioner object (`type`, `name`, `roots` — base64 of PEM
    /// certificates —, `claims`, `options`), its claims over `authority`.
    pub fn from_json(json: &str, authority: &Claims) -> Result<Self, Error> {
        Self::from_json_in(json, &ProvisionerContext::with_claims(*authority))
    }

    /// [`from_json`](Self::from_json) with the authority's whole context.
    pub fn from_json_in(json: &str, context: &ProvisionerContext) -> Result<Self, Error> {
        let config: X5cJson = serde_json::from_str(json)
            .map_err(|e| invalid("", format!("not an X5C provisioner object: {e}")))?;
        let name = config.name.as_str();
        let (declared, effective) = common(
            ProvisionerKind::X5c,
            &config.kind,
            name,
            config.claims.as_ref(),
            &context.claims,
        )?;
        check_no_templates(name, config.options.as_ref())?;
        let pem = keystation_core::base64::decode(&config.roots)
            .ok_or_else(|| invalid(name, "roots: not base64"))?;
        let pem = String::from_utf8(pem).map_err(|_| invalid(name, "roots: not PEM text"))?;
        let roots =
            Certificate::all_from_pem(&pem).map_err(|e| invalid(name, format!("roots: {e}")))?;
        let roots: Vec<Vec<u8>> = roots.iter().map(Certificate::to_der).collect();
        let mut p =
            Self::new(name, &roots, effective)?.with_max_token_lifetime(context.max_token_lifetime);
        p.declared_claims = declared;
        Ok(p)
    }

    /// step-ca's X5C provisioner object.
    pub fn to_json(&self) -> String {
        let pem: String = self.roots.iter().map(Certificate::to_pem).collect();
        let config = X5cJson {
            kind: ProvisionerKind::X5c.type_name().into(),
            name: self.name.clone(),
            roots: keystation_core::base64::encode(pem.as_bytes()),
            claims: ClaimsJson::from_claims(&self.declared_claims),
            options: None,
        };
        serde_json::to_string(&config).unwrap_or_default()
    }

    /// Builds the chain from the leaf through `rest` to a root, every certificate valid at
    /// `now`. Returns the leaf.
    fn chain_to_root(&self, certs: &[Certificate], now: i64) -> Result<(), Refusal> {
        let Some(leaf) = certs.first() else {
            return Err(refuse(Denial::Malformed, "x5c is empty"));
        };
        let mut current = leaf;
        for _ in 0..MAX_CHAIN {
            if !current.is_valid_at(now) {
                return Err(refuse(
                    Denial::UntrustedChain,
                    format!("{} is not valid now", current.subject()),
                ));
            }
            if let Some(root) = self
                .roots
                .iter()
                .find(|r| keystation_x509::verify_signed_by(current.der(), r.der()).is_ok())
            {
                if !root.is_valid_at(now) {
                    return Err(refuse(
                        Denial::UntrustedChain,
                        format!("root {} is not valid now", root.subject()),
                    ));
                }
                return Ok(());
            }
            let next = certs[1..].iter().find(|c| {
                c.is_ca() && keystation_x509::verify_signed_by(current.der(), c.der()).is_ok()
            });
            match next {
                Some(next) => current = next,
                None => break,
            }
        }
        Err(refuse(
            Denial::UntrustedChain,
            format!("{} does not chain to a root of this provisioner", leaf.subject()),
        ))
    }

    fn check(&self, request: &Request<'_>, now: SystemTime) -> Result<Grant, Refusal> {
        let Credential::Token(token) = request.credential else {
            return Err(refuse(Denial::Malformed, "an X5C provisioner takes a token"));
        };
        if !X5C_OPERATIONS.contains(&request.operation) {
            return Err(refuse(
                Denial::OperationNotAllowed,
                format!("an X5C provisioner does not authorize {:?}", request.operation),
            ));
        }
        let jws = parse_compact(token).map_err(|e| jose_refusal(&e))?;
        let Some(chain) = jws.header().x5c.as_deref() else {
            return Err(refuse(Denial::Malformed, "the token has no x5c header"));
        };
        let certs = parse_chain(chain, "x5c")?;
        let now = unix(now);
        self.chain_to_root(&certs, now)?;
        let leaf = &certs[0];
        leaf_usage_allows_signing(leaf)?;
        let verified = verify_with_leaf(&jws, leaf)?;
        let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
        check_identity(&claims, &self.name)?;
        let fragment = format!("x5c/{}", self.name);
        check_audience(&claims.aud, request.audience, request.operation, Some(&fragment))?;
        check_times(&claims, now, self.max_token_lifetime)?;
        step_grant(
            &self.name,
            &claims,
            &self.claims,
            request.operation,
            now,
            Some((leaf.not_before(), leaf.not_after())),
        )
    }
}

crate::token_checks::token_provisioner!(X5cProvisioner, X5c);

/// The issuer name step's clients put in an `x5cInsecure` renewal token.
pub const RENEW_TOKEN_ISSUER: &str = "step-ca-client/1.0";

/// Verifies step's `x5cInsecure` renewal token (step-ca's `AuthorizeRenewToken`), with which
/// a client renews a certificate — possibly expired — without mutual TLS: the header's
/// `x5cInsecure[0]` must be signed by `issuer_der` (this authority's intermediate; its
/// validity period is deliberately not checked) and allow digital signatures; its key signs
/// the token; `iss` is `step-ca-client/1.0`, `sub` the certificate's common name, `aud`
/// one of `audiences` (full endpoint URLs, compared as for every token); `exp` required
/// and the lifetime at most `max_lifetime`. Returns the certificate's DER; whether it is
/// revoked, and whether its provisioner allows renewal, is the caller's to check.
pub fn verify_x5c_insecure(
    token: &str,
    audiences: &[String],
    issuer_der: &[u8],
    now: SystemTime,
    max_lifetime: Duration,
) -> Result<Vec<u8>, Denial> {
    verify_x5c_insecure_inner(token, audiences, issuer_der, unix(now), max_lifetime).map_err(|r| {
        tracing::info!(denial = %r.denial, reason = %r.reason, "x5cInsecure token refused");
        r.denial
    })
}

fn verify_x5c_insecure_inner(
    token: &str,
    audiences: &[String],
    issuer_der: &[u8],
    now: i64,
    max_lifetime: Duration,
) -> Result<Vec<u8>, Refusal> {
    let jws = parse_compact(token).map_err(|e| jose_refusal(&e))?;
    let Some(chain) = jws.header().x5c_insecure.as_deref() else {
        return Err(refuse(Denial::Malformed, "the token has no x5cInsecure header"));
    };
    let certs = parse_chain(chain, "x5cInsecure")?;
    let leaf = &certs[0];
    keystation_x509::verify_signed_by(leaf.der(), issuer_der).map_err(|_| {
        refuse(
            Denial::UntrustedChain,
            "the x5cInsecure certificate was not issued by this authority",
        )
    })?;
    leaf_usage_allows_signing(leaf)?;
    let verified = verify_with_leaf(&jws, leaf)?;
    let claims = verified.claims().map_err(|e| jose_refusal(&e))?;
    if claims.iss.as_deref() != Some(RENEW_TOKEN_ISSUER) {
        return Err(refuse(Denial::WrongIssuer, format!("iss {:?}", claims.iss)));
    }
    if claims.sub.as_deref() != leaf.subject_common_name() {
        return Err(refuse(Denial::PolicyViolation, "sub is not the certificate's common name"));
    }
    let wanted: Vec<Endpoint> = audiences.iter().filter_map(|a| Endpoint::parse(a)).collect();
    if !claims.aud.iter().filter_map(|a| Endpoint::parse(a)).any(|a| wanted.contains(&a)) {
        return Err(refuse(
            Denial::WrongAudience,
            format!("aud {:?} names none of {audiences:?}", claims.aud),
        ));
    }
    check_times(&claims, now, max_lifetime)?;
    Ok(leaf.to_der())
}
