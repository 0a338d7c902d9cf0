//! Test material: identity documents in AWS's exact format, signed with the tests' own
//! keys (`tests/data/`, made with openssl for these tests only), and step's tokens.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keystation_core::Provisioner as _;
use keystation_core::provisioner::{Credential, Grant, Operation, Request, TrustedKeys};
use keystation_iid_aws::{AwsProvisioner, sign_token};
use keystation_provisioners::ProvisionerContext;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{Value, json};

pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
pub const CA: &str = "https://ca.example:9000";
pub const SIGN: &str = "https://ca.example:9000/1.0/sign";
pub const SSH_SIGN: &str = "https://ca.example:9000/1.0/ssh/sign";
pub const NAME: &str = "aws";
pub const INSTANCE: &str = "i-0a1b2c3d4e5f60718";
pub const ACCOUNT: &str = "123456789012";
pub const IP: &str = "172.31.20.5";
pub const DNS: &str = "ip-172-31-20-5.eu-west-1.compute.internal";

pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn rfc3339(unix: i64) -> String {
    keystation_jose::step_time::format_rfc3339(unix)
}

pub fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{name}")).unwrap()
}

/// An identity document as the metadata service serves it (AWS's field order and
/// pretty-printing).
pub fn document(instance: &str, account: &str, ip: &str, region: &str, pending: i64) -> Vec<u8> {
    format!(
        r#"{{
  "accountId" : "{account}",
  "architecture" : "x86_64",
  "availabilityZone" : "{region}a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0c1bc246476a5572b",
  "instanceId" : "{instance}",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "{}",
  "privateIp" : "{ip}",
  "ramdiskId" : null,
  "region" : "{region}",
  "version" : "2017-09-30"
}}"#,
        rfc3339(pending)
    )
    .into_bytes()
}

pub fn default_document() -> Vec<u8> {
    document(INSTANCE, ACCOUNT, IP, "eu-west-1", unix(now()) - 120)
}

/// RSA PKCS#1 v1.5 SHA-256 with the key in `tests/data/<key>.key`.
pub fn sign_with(key: &str, message: &[u8]) -> Vec<u8> {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&read(&format!("{key}.key"))).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    signer.sign(message).to_vec()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// step's claims for `document` and `signature`, as `GetIdentityToken` writes them.
pub fn claims(document: &[u8], signature: &[u8], sub: &str) -> Value {
    let now = unix(now());
    json!({
        "iss": "ec2.amazonaws.com",
        "sub": sub,
        "aud": [format!("{SIGN}#aws/{NAME}")],
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "4bd8ef0d0a2ad8d7f3f2cbcd4c5a4b0a8d9d6f0f1d2b4f6a8c0e2f4a6c8e0f2a",
        "amazon": { "document": b64(document), "signature": b64(signature) },
        "sans": null,
    })
}

pub fn token_with(key: &[u8], claims: &Value) -> String {
    sign_token(key, claims.to_string().as_bytes())
}

/// A token over a default document signed with the test key.
pub fn good_token(sub: &str) -> String {
    let doc = default_document();
    let sig = sign_with("iid-test-rsa1024", &doc);
    token_with(&sig, &claims(&doc, &sig, sub))
}

/// A provisioner trusting the test certificates, with `extra` fields.
pub fn provisioner(extra: Value) -> AwsProvisioner {
    provisioner_in(extra, &ProvisionerContext::default())
}

pub fn provisioner_in(extra: Value, context: &ProvisionerContext) -> AwsProvisioner {
    let roots = read("iid-test-rsa1024.pem") + &read("iid-test-rsa2048.pem");
    let mut config = json!({ "type": "AWS", "name": NAME, "iidRootsPem": roots });
    if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    AwsProvisioner::from_json_in(&config.to_string(), context).unwrap()
}

pub fn authorize(
    p: &AwsProvisioner,
    token: &str,
    operation: Operation,
    audience: &str,
) -> Result<Grant, keystation_core::Error> {
    let request =
        Request { credential: Credential::Token(token), operation, audience, subject_key: None };
    p.authorize(&request, &TrustedKeys::default(), now())
}

pub fn sign(p: &AwsProvisioner, token: &str) -> Result<Grant, keystation_core::Error> {
    authorize(p, token, Operation::SignX509, SIGN)
}

pub fn denial(r: Result<Grant, keystation_core::Error>) -> keystation_core::provisioner::Denial {
    match r {
        Err(keystation_core::Error::Unauthorized(d)) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

pub const HOUR: Duration = Duration::from_secs(3600);
