//! The client side: `step ca token --provisioner aws` — read the identity document from
//! the instance metadata service and wrap it in step's token.
//!
//! The metadata service is spoken to with IMDSv2 only
//! (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html>):
//! `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`, then `GET`s with
//! `X-aws-ec2-metadata-token`. step falls back to IMDSv1, whose unauthenticated `GET`s
//! are what SSRF attacks read; keystation does not. The fetcher must allow plain HTTP
//! (`PlainHttp::Allowed` for `169.254.169.254`, `Loopback` for a test's fake).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keystation_fetch::{Fetcher, Method};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::{AWS_ISSUER, Error};

/// The metadata service's address.
pub const DEFAULT_METADATA_URL: &str = "http://169.254.169.254";

/// The IMDSv2 session token's lifetime asked for, in seconds (step's value).
const IMDS_TOKEN_TTL: &str = "30";

/// The token's lifetime (step's 5 minutes).
const TOKEN_LIFETIME: u64 = 300;

/// Which signature of the document the token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignatureForm {
    /// `/signature`: RSA SHA-256 over the document, what step uses (the default).
    #[default]
    Rsa,
    /// `/rsa2048`: the PKCS#7 SignedData with the RSA-2048 certificates (keystation's
    /// `amazon.pkcs7`; step-ca does not read it).
    Pkcs7Rsa2048,
}

/// What the token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityTokenOptions {
    /// The authority's URL (`https://ca.example:9000`); the audience is
    /// `<url>/1.0/sign#aws/<provisioner>`.
    pub ca_url: String,
    /// The AWS provisioner's name.
    pub provisioner: String,
    /// The subject (`sub`): the certificate's common name, as step's `step ca token
    /// <subject>`. Under `disableCustomSANs` it must be the instance ID, its private IP
    /// or its private DNS name.
    pub subject: String,
    /// The names wanted (`sans`); empty leaves them as step does (`null`).
    pub sans: Vec<String>,
    /// Which signature to carry.
    pub form: SignatureForm,
}

impl IdentityTokenOptions {
    /// A token for `subject` from `provisioner` at `ca_url`, step's way.
    pub fn new(
        ca_url: impl Into<String>,
        provisioner: impl Into<String>,
        subject: impl Into<String>,
    ) -> Self {
        Self {
            ca_url: ca_url.into(),
            provisioner: provisioner.into(),
            subject: subject.into(),
            sans: Vec::new(),
            form: SignatureForm::Rsa,
        }
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: [String; 1],
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    amazon: AmazonOut,
    sans: Option<&'a [String]>,
}

#[derive(Serialize)]
struct AmazonOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pkcs7: Option<String>,
}

/// Reads the identity document and its signature from the metadata service at
/// `metadata_url` ([`DEFAULT_METADATA_URL`] on EC2) and makes step's AWS token for
/// `options`.
pub async fn identity_token(
    fetcher: &Fetcher,
    metadata_url: &str,
    options: &IdentityTokenOptions,
) -> Result<String, Error> {
    let base = metadata_url.trim_end_matches('/');
    let session = fetcher
        .send(
            Method::Put,
            &format!("{base}/latest/api/token"),
            &[("X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL)],
            None,
        )
        .await
        .map_err(|e| Error::Metadata(format!("IMDSv2 session token: {e}")))?;
    let session = session
        .text()
        .map_err(|e| Error::Metadata(format!("IMDSv2 session token: {e}")))?
        .trim()
        .to_owned();
    let get = |path: &'static str| {
        let url = format!("{base}/latest/dynamic/instance-identity/{path}");
        let session = session.clone();
        async move {
            fetcher
                .send(Method::Get, &url, &[("X-aws-ec2-metadata-token", session.as_str())], None)
                .await
                .map(|r| r.body)
                .map_err(|e| Error::Metadata(format!("{path}: {e}")))
        }
    };
    let document = get("document").await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (signature, amazon) = match options.form {
        SignatureForm::Rsa => {
            let text = get("signature").await?;
            let signature = decode_base64_text(&text)?;
            let amazon = AmazonOut {
                document: Some(b64.encode(&document)),
                signature: Some(b64.encode(&signature)),
                pkcs7: None,
            };
            (signature, amazon)
        }
        SignatureForm::Pkcs7Rsa2048 => {
            let text = get("rsa2048").await?;
            let pkcs7 = decode_base64_text(&text)?;
            let amazon =
                AmazonOut { document: None, signature: None, pkcs7: Some(b64.encode(&pkcs7)) };
            (pkcs7, amazon)
        }
    };
    #[derive(serde::Deserialize)]
    struct Instance {
        #[serde(rename = "instanceId")]
        instance_id: String,
    }
    let instance: Instance = serde_json::from_slice(&document)
        .map_err(|e| Error::Document(format!("not an identity document: {e}")))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let ca = options.ca_url.trim_end_matches('/');
    let id = format!("aws/{}", options.provisioner);
    let payload = Payload {
        iss: AWS_ISSUER,
        sub: &options.subject,
        aud: [format!("{ca}/1.0/sign#{id}")],
        exp: now + TOKEN_LIFETIME,
        nbf: now,
        iat: now,
        // step's jti: the instance's trust-on-first-use id.
        jti: hex(&Sha256::digest(format!("{id}.{}", instance.instance_id).as_bytes())),
        amazon,
        sans: (!options.sans.is_empty()).then_some(options.sans.as_slice()),
    };
    let payload = serde_json::to_vec(&payload).map_err(|e| Error::Document(e.to_string()))?;
    Ok(sign_hs256(&signature, &payload))
}

/// A compact JWS `{"alg":"HS256","typ":"JWT"}` over `payload`, keyed with `key`.
pub(crate) fn sign_hs256(key: &[u8], payload: &[u8]) -> String {
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input =
        format!("{}.{}", b64url.encode(br#"{"alg":"HS256","typ":"JWT"}"#), b64url.encode(payload));
    let mac =
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", b64url.encode(mac))
}

/// The metadata service's base64, possibly broken into lines.
fn decode_base64_text(text: &[u8]) -> Result<Vec<u8>, Error> {
    let compact: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| Error::Document("the signature is not base64".into()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
