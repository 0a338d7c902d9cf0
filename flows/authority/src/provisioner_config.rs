//! The `ca.json` objects `keystation authority provisioner add` and `init` write, one
//! builder per type; each is checked by reading it back through the provisioner framework
//! before it is stored.

use keystation_jose::{Algorithm, PrivateJwk};
use keystation_provisioners::Claims;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::error::Error;

/// Claims as step-ca writes them in a provisioner object: only what is set.
fn with_claims(mut object: Value, claims: Option<Value>) -> Value {
    if let (Some(claims), Some(map)) = (claims, object.as_object_mut())
        && claims.as_object().is_some_and(|c| !c.is_empty())
    {
        map.insert("claims".into(), claims);
    }
    object
}

/// Checks `object` by building the provisioner from it (with every type this build
/// has); returns its text.
fn checked(object: Value) -> Result<String, Error> {
    let text = object.to_string();
    build(&text)?;
    Ok(text)
}

/// The provisioner a `ca.json` object describes, read with every type this build has (the
/// identity and cloud types behind their cargo features) and the built-in claims.
pub fn build(
    json: &str,
) -> Result<std::sync::Arc<dyn keystation_provisioners::StepProvisioner>, Error> {
    let context = keystation_provisioners::ProvisionerContext::with_claims(Claims::default());
    Ok(keystation_provisioners::provisioner_from_json_with(
        json,
        &context,
        &crate::registry::factories(),
    )?)
}

/// An identity or cloud provisioner — `OIDC`, `K8sSA`, `AWS`, `GCP`, `Azure` — from its
/// `ca.json` fields (step-ca's names: `clientID`, `configurationEndpoint`, `accounts`,
/// `projectIDs`, `tenantID`, …), checked by the type's own crate.
pub fn identity(
    kind: &str,
    name: &str,
    fields: serde_json::Map<String, Value>,
    claims: Option<Value>,
) -> Result<String, Error> {
    let mut object = serde_json::Map::new();
    object.insert("type".into(), json!(kind));
    object.insert("name".into(), json!(name));
    object.extend(fields);
    checked(with_claims(Value::Object(object), claims))
}

/// A JWK provisioner with a new ES256 key, its private half stored as step's
/// `encryptedKey` (PBES2 JWE under `password`, which step's clients decrypt with the same
/// password). Returns the object and the key id (its RFC 7638 thumbprint).
pub fn jwk(
    name: &str,
    password: &[u8],
    enable_ssh: bool,
    claims: Option<Value>,
) -> Result<(String, String), Error> {
    let key = PrivateJwk::generate(Algorithm::Es256)?;
    let kid = key.public().kid().map(str::to_owned).unwrap_or_else(|| key.public().thumbprint());
    let encrypted = key.encrypt(password)?;
    let mut claims = claims.unwrap_or_else(|| json!({}));
    if enable_ssh {
        claims["enableSSHCA"] = json!(true);
    }
    let object = with_claims(
        json!({ "type": "JWK", "name": name, "key": key.public().to_json_value(), "encryptedKey": encrypted }),
        Some(claims),
    );
    Ok((checked(object)?, kid))
}

/// An X5C provisioner trusting the PEM `roots` (step-ca's `roots`: the PEM bundle in base64).
pub fn x5c(name: &str, roots_pem: &str, claims: Option<Value>) -> Result<String, Error> {
    use base64::Engine as _;
    let roots = base64::engine::general_purpose::STANDARD.encode(roots_pem.as_bytes());
    checked(with_claims(json!({ "type": "X5C", "name": name, "roots": roots }), claims))
}

/// An SSHPOP provisioner (renew, rekey and revoke of SSH certificates this authority
/// issued).
pub fn sshpop(name: &str, claims: Option<Value>) -> Result<String, Error> {
    let mut claims = claims.unwrap_or_else(|| json!({}));
    claims["enableSSHCA"] = json!(true);
    checked(with_claims(json!({ "type": "SSHPOP", "name": name }), Some(claims)))
}

/// A static-token provisioner (what stations present to the worker service); only the
/// token's SHA-256 is stored.
pub fn static_token(name: &str, token: &[u8], operations: &[String]) -> Result<String, Error> {
    let hash: String = sha2::Sha256::digest(token).iter().map(|b| format!("{b:02x}")).collect();
    let mut object = json!({ "type": "StaticToken", "name": name, "tokenSha256": hash });
    if !operations.is_empty() {
        object["operations"] = json!(operations);
    }
    checked(object)
}

/// A YubiKey attestation provisioner and its policy; Yubico's roots when `roots_pem` is
/// empty.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AttestationPolicy {
    /// Trusted attestation roots (PEM each); Yubico's when empty.
    pub roots_pem: Vec<String>,
    /// Lowest firmware accepted (`5.2.3`).
    pub min_firmware: Option<String>,
    /// PIN policies accepted (`once`, `always`, …).
    pub pin_policies: Vec<String>,
    /// Touch policies accepted (`always`, `cached`, …).
    pub touch_policies: Vec<String>,
    /// Slots accepted (`9a`, …).
    pub slots: Vec<String>,
    /// Card serials accepted; any when empty.
    pub serials: Vec<u32>,
}

/// A YubiKey attestation provisioner with `policy`.
pub fn yubikey_attestation(
    name: &str,
    policy: &AttestationPolicy,
    claims: Option<Value>,
) -> Result<String, Error> {
    let mut object = json!({ "type": "YubiKeyAttestation", "name": name });
    let map = |v: &[String]| json!(v);
    if !policy.roots_pem.is_empty() {
        object["roots"] = map(&policy.roots_pem);
    }
    if let Some(firmware) = &policy.min_firmware {
        object["minFirmware"] = json!(firmware);
    }
    if !policy.pin_policies.is_empty() {
        object["pinPolicies"] = map(&policy.pin_policies);
    }
    if !policy.touch_policies.is_empty() {
        object["touchPolicies"] = map(&policy.touch_policies);
    }
    if !policy.slots.is_empty() {
        object["slots"] = map(&policy.slots);
    }
    if !policy.serials.is_empty() {
        object["serials"] = json!(policy.serials);
    }
    checked(with_claims(object, claims))
}
