//! The TokenReview API (`authentication.k8s.io/v1`): asking the cluster's API server
//! whether a bound (projected) service-account token is genuine, for clusters whose
//! signing keys the authority does not hold or whose tokens are bound to pods and may be
//! revoked with them.
//!
//! Kubernetes documents the exchange in "Authenticating — Webhook Token Authentication"
//! and the `TokenReview` reference (kubernetes.io/docs/reference/kubernetes-api/
//! authentication-resources/token-review-v1): the client `POST`s
//! `/apis/authentication.k8s.io/v1/tokenreviews` with a `TokenReview` whose `spec.token`
//! is the token and `spec.audiences` the audiences it must be for; the server answers
//! (`201 Created`) with the same object and a `status`: `authenticated`, `user`
//! (`username`, `uid`, `groups`, `extra`), `audiences` (those of `spec.audiences` the
//! token is valid for — "a client … that sets `spec.audiences` should validate that a
//! compatible audience identifier is returned in `status.audiences`"; an empty list means
//! the token is valid for the API server itself), and `error`. The caller needs the
//! `create` verb on `tokenreviews` (the `system:auth-delegator` ClusterRole).
//!
//! [`TokenReviewSource`] is the provisioner's [`KeySource`]: per credential, it asks and
//! hands the answer to `authorize` as a [`Statement`] in
//! [`TrustedKeys::statements`], bound to the token by its SHA-256.

use std::path::PathBuf;
use std::time::Duration;

use keystation_core::provisioner::TrustedKeys;
use keystation_fetch::{Fetcher, Method};
use keystation_provisioners::KeySource;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::token::{parse_payload, sha256_hex};

/// The path of the TokenReview collection under the API server's URL.
pub const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// The `apiVersion` of the reviews sent and accepted.
pub const TOKEN_REVIEW_API_VERSION: &str = "authentication.k8s.io/v1";

/// The largest TokenReview answer read (a real one is well under 4 KiB).
const MAX_ANSWER: usize = 64 * 1024;

/// What the API server said about a token: `status` of a `TokenReview`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenReviewStatus {
    /// `status.authenticated`: the token is genuine, unexpired and (for a bound token) its
    /// pod, secret or node still exists.
    #[serde(default)]
    pub authenticated: bool,
    /// `status.user.username`: `system:serviceaccount:<namespace>:<name>` for a
    /// service-account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `status.user.uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `status.user.groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `status.audiences`: those of the requested audiences the token is valid for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// `status.error`: why the token was not authenticated, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A `TokenReview` as the API server answers it; only what is read.
#[derive(Deserialize)]
struct ReviewJson {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    status: Option<StatusJson>,
}

#[derive(Deserialize)]
struct StatusJson {
    #[serde(default)]
    authenticated: Option<bool>,
    #[serde(default)]
    user: Option<UserJson>,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct UserJson {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

/// Parses the API server's answer to a TokenReview: a JSON `TokenReview` of
/// `authentication.k8s.io/v1` with a `status`. Fields the authority does not read
/// (`metadata`, `spec`, `user.extra`) are ignored; missing `authenticated` means not
/// authenticated. Anything else — another kind or version, no `status`, wrong types — is
/// [`Error::MalformedReview`]. Total: never panics.
pub fn parse_token_review(body: &[u8]) -> Result<TokenReviewStatus, Error> {
    if body.len() > MAX_ANSWER {
        return Err(Error::MalformedReview(format!(
            "{} bytes, at most {MAX_ANSWER} are read",
            body.len()
        )));
    }
    let review: ReviewJson =
        serde_json::from_slice(body).map_err(|e| Error::MalformedReview(e.to_string()))?;
    if review.kind != "TokenReview" || review.api_version != TOKEN_REVIEW_API_VERSION {
        return Err(Error::MalformedReview(format!(
            "a {} of {}, not a TokenReview of {TOKEN_REVIEW_API_VERSION}",
            review.kind, review.api_version
        )));
    }
    let Some(status) = review.status else {
        return Err(Error::MalformedReview("no status".into()));
    };
    let user = status.user;
    Ok(TokenReviewStatus {
        authenticated: status.authenticated.unwrap_or(false),
        username: user.as_ref().and_then(|u| u.username.clone()).filter(|u| !u.is_empty()),
        uid: user.as_ref().and_then(|u| u.uid.clone()).filter(|u| !u.is_empty()),
        groups: user.and_then(|u| u.groups).unwrap_or_default(),
        audiences: status.audiences.unwrap_or_default(),
        error: status.error.filter(|e| !e.is_empty()),
    })
}

/// The request body of a review of `token` for `audiences`.
pub fn token_review_request(token: &str, audiences: &[String]) -> String {
    serde_json::json!({
        "apiVersion": TOKEN_REVIEW_API_VERSION,
        "kind": "TokenReview",
        "spec": { "token": token, "audiences": audiences },
    })
    .to_string()
}

/// A review's answer as the key source hands it to `authorize`: the status and the
/// SHA-256 (hex) of the token it is about, so that an answer is never applied to another
/// token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Statement {
    /// SHA-256 of the token reviewed, lower-case hex.
    #[serde(rename = "tokenSha256")]
    pub token_sha256: String,
    /// What the API server said.
    pub status: TokenReviewStatus,
}

impl Statement {
    /// The statement that `status` is the API server's answer about `token`.
    pub fn new(token: &str, status: TokenReviewStatus) -> Self {
        Self { token_sha256: sha256_hex(token), status }
    }

    /// As JSON, the form it takes in [`TrustedKeys::statements`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The statement among `statements` that is about `token`, if any; statements that
    /// are not this crate's are skipped.
    pub fn find_for(statements: &[String], token: &str) -> Option<Self> {
        let digest = sha256_hex(token);
        statements
            .iter()
            .filter_map(|s| serde_json::from_str::<Self>(s).ok())
            .find(|s| s.token_sha256 == digest)
    }
}

/// Where and how the authority calls TokenReview.
#[derive(Debug, Clone)]
pub(crate) struct ReviewTarget {
    /// The API server, `https://host:port` (no trailing slash).
    pub(crate) server: String,
    /// The cluster CA, PEM.
    pub(crate) ca_pem: String,
    /// The file holding the authority's own token.
    pub(crate) bearer_token_file: PathBuf,
}

/// The K8sSA provisioner's [`KeySource`] with `tokenReview`: for each token, a review by
/// the API server (see the module documentation), unless the token is one the
/// provisioner would refuse anyway (not a JWT, another issuer or audience, no or a past
/// `exp`): then no request is made and `authorize` refuses it for that reason.
pub struct TokenReviewSource {
    endpoint: String,
    fetcher: Fetcher,
    bearer_token_file: PathBuf,
    audiences: Vec<String>,
    issuer: String,
}

impl std::fmt::Debug for TokenReviewSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewSource")
            .field("endpoint", &self.endpoint)
            .field("bearer_token_file", &self.bearer_token_file)
            .field("audiences", &self.audiences)
            .finish()
    }
}

impl TokenReviewSource {
    /// A source reviewing tokens of `issuer` for `audiences` at `target`'s API server,
    /// trusting only its CA; plain HTTP is refused (the bearer token must not travel in
    /// clear).
    pub(crate) fn new(
        target: &ReviewTarget,
        issuer: &str,
        audiences: &[String],
        timeout: Duration,
    ) -> Result<Self, keystation_fetch::Error> {
        let fetcher = Fetcher::new(keystation_fetch::FetchOptions {
            roots_pem: Some(target.ca_pem.clone()),
            public_roots: false,
            plain_http: keystation_fetch::PlainHttp::Refused,
            timeout,
            max_body: MAX_ANSWER,
        })?;
        Ok(Self {
            endpoint: format!("{}{TOKEN_REVIEW_PATH}", target.server),
            fetcher,
            bearer_token_file: target.bearer_token_file.clone(),
            audiences: audiences.to_vec(),
            issuer: issuer.to_owned(),
        })
    }

    /// The URL reviews are posted to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether `token` is worth a review: a JWT of the configured issuer, for one of the
    /// audiences, with an `exp` not yet past (with the leeway).
    fn worth_asking(&self, token: &str) -> Result<(), String> {
        let claims = parse_payload(token)?;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(format!("iss {:?} is not {:?}", claims.iss, self.issuer));
        }
        if !claims.aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(format!("aud {:?} names none of {:?}", claims.aud, self.audiences));
        }
        let now = keystation_provisioners::token_checks::unix(std::time::SystemTime::now());
        let leeway = keystation_provisioners::token_checks::LEEWAY.as_secs() as i64;
        match claims.exp {
            None => Err("no exp".into()),
            Some(exp) if exp.saturating_add(leeway) < now => Err(format!("exp {exp} has passed")),
            Some(_) => Ok(()),
        }
    }

    async fn review(
        &self,
        token: &str,
    ) -> Result<TokenReviewStatus, keystation_provisioners::Error> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| {
            keystation_provisioners::Error::KeyFetch { location: self.endpoint.clone(), source }
        };
        let bearer =
            tokio::fs::read_to_string(&self.bearer_token_file).await.map_err(|source| {
                fail(Box::new(Error::BearerTokenFile {
                    path: self.bearer_token_file.clone(),
                    source,
                }))
            })?;
        let bearer = bearer.trim();
        if bearer.is_empty() {
            return Err(fail(Box::new(Error::EmptyBearerToken {
                path: self.bearer_token_file.clone(),
            })));
        }
        let authorization = format!("Bearer {bearer}");
        let body = token_review_request(token, &self.audiences).into_bytes();
        let response = self
            .fetcher
            .send(
                Method::Post,
                &self.endpoint,
                &[("Authorization", authorization.as_str()), ("Accept", "application/json")],
                Some(("application/json", body)),
            )
            .await
            .map_err(|e| fail(Box::new(e)))?;
        parse_token_review(&response.body).map_err(|e| fail(Box::new(e)))
    }
}

#[async_trait::async_trait]
impl KeySource for TokenReviewSource {
    /// Nothing without a token: reviews are per credential.
    async fn fetch(&self) -> Result<TrustedKeys, keystation_provisioners::Error> {
        Ok(TrustedKeys::default())
    }

    /// Reviews are never cached.
    fn max_age(&self) -> Duration {
        Duration::ZERO
    }

    fn per_credential(&self) -> bool {
        true
    }

    /// The API server's answer about `credential`, as a [`Statement`]; no statement when
    /// the token is not worth asking about; [`KeyFetch`](keystation_provisioners::Error::KeyFetch)
    /// when the API server cannot be asked or answers with an error status (a bad bearer
    /// token: 401; missing RBAC: 403).
    async fn fetch_for(
        &self,
        credential: &str,
    ) -> Result<TrustedKeys, keystation_provisioners::Error> {
        if let Err(reason) = self.worth_asking(credential) {
            tracing::debug!(endpoint = %self.endpoint, %reason, "no TokenReview for this token");
            return Ok(TrustedKeys::default());
        }
        let status = self.review(credential).await?;
        Ok(TrustedKeys {
            statements: vec![Statement::new(credential, status).to_json()],
            ..TrustedKeys::default()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn answers_parse_as_the_api_server_writes_them() {
        let answer = br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"token":"x","audiences":["https://ca.example"]},"status":{"authenticated":true,"user":{"username":"system:serviceaccount:default:builder","uid":"4b2c","groups":["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"],"extra":{"authentication.kubernetes.io/pod-name":["builder-7d9"]}},"audiences":["https://ca.example"]}}"#;
        let status = parse_token_review(answer).unwrap();
        assert!(status.authenticated);
        assert_eq!(status.username.as_deref(), Some("system:serviceaccount:default:builder"));
        assert_eq!(status.audiences, ["https://ca.example"]);
        assert_eq!(status.groups.len(), 3);

        let refused = br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","status":{"user":{},"error":"[invalid bearer token, token lookup failed]"}}"#;
        let status = parse_token_review(refused).unwrap();
        assert!(!status.authenticated);
        assert_eq!(status.username, None);
        assert!(status.error.unwrap().contains("invalid bearer token"));

        for bad in [
            &br#"{"kind":"Status","apiVersion":"v1","status":"Failure"}"#[..],
            br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1beta1","status":{}}"#,
            br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1"}"#,
            br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","status":{"authenticated":"yes"}}"#,
            b"[]",
            b"",
        ] {
            assert!(parse_token_review(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn statements_are_bound_to_their_token() {
        let status = TokenReviewStatus { authenticated: true, ..TokenReviewStatus::default() };
        let s = Statement::new("token-a", status).to_json();
        let statements = vec!["not json".to_owned(), s];
        assert!(Statement::find_for(&statements, "token-a").unwrap().status.authenticated);
        assert_eq!(Statement::find_for(&statements, "token-b"), None);
    }

    #[test]
    fn requests_name_the_token_and_audiences() {
        let body = token_review_request("t0k", &["https://ca.example".to_owned()]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(v["kind"], "TokenReview");
        assert_eq!(v["spec"]["token"], "t0k");
        assert_eq!(v["spec"]["audiences"][0], "https://ca.example");
    }
}
