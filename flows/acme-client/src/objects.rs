//! The ACME objects the client reads and writes (RFC 8555 §7.1), with RFC 8555's field
//! names (`type` is spelled `kind` in Rust).

use core::fmt;

use serde::{Deserialize, Serialize};

/// The directory (RFC 8555 §7.1.1): the URLs of the server's resources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Directory {
    /// `newNonce` (§7.2).
    pub new_nonce: String,
    /// `newAccount` (§7.3).
    pub new_account: String,
    /// `newOrder` (§7.4).
    pub new_order: String,
    /// `newAuthz` (§7.4.1), for servers that offer pre-authorization.
    #[serde(default)]
    pub new_authz: Option<String>,
    /// `revokeCert` (§7.6).
    #[serde(default)]
    pub revoke_cert: Option<String>,
    /// `keyChange` (§7.3.5).
    #[serde(default)]
    pub key_change: Option<String>,
    /// `meta` (§7.1.1).
    #[serde(default)]
    pub meta: Option<DirectoryMeta>,
}

/// The directory's `meta` object (RFC 8555 §7.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DirectoryMeta {
    /// `termsOfService`: the URL of the current terms.
    #[serde(default)]
    pub terms_of_service: Option<String>,
    /// `website`.
    #[serde(default)]
    pub website: Option<String>,
    /// `caaIdentities`.
    #[serde(default)]
    pub caa_identities: Vec<String>,
    /// `externalAccountRequired` (§7.3.4): new accounts need an external account binding.
    #[serde(default)]
    pub external_account_required: bool,
}

/// The status of an account, order, authorization or challenge (RFC 8555 §7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// `pending`: waiting for the client (authorization, order) or the server's first
    /// look (challenge).
    Pending,
    /// `ready`: an order whose authorizations are all valid, waiting for finalize.
    Ready,
    /// `processing`: a challenge being validated, an order being issued.
    Processing,
    /// `valid`.
    Valid,
    /// `invalid`: a failed challenge, authorization or order.
    Invalid,
    /// `deactivated`: an account or authorization its owner deactivated.
    Deactivated,
    /// `expired`: an authorization past its `expires`.
    Expired,
    /// `revoked`: an account or authorization the server revoked.
    Revoked,
}

impl Status {
    /// RFC 8555's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Processing => "processing",
            Self::Valid => "valid",
            Self::Invalid => "invalid",
            Self::Deactivated => "deactivated",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An identifier (RFC 8555 §7.1.3, §9.7.7): `dns`, `ip` (RFC 8738) or
/// `permanent-identifier` (draft-acme-device-attest §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `value`.
    pub value: String,
}

impl Identifier {
    /// The identifier type of a device's permanent identifier (draft-acme-device-attest
    /// §3): for a YubiKey, its serial number in decimal.
    pub const PERMANENT_IDENTIFIER: &'static str = "permanent-identifier";

    /// `{"type": "permanent-identifier", "value": value}`.
    pub fn permanent_identifier(value: impl Into<String>) -> Self {
        Self { kind: Self::PERMANENT_IDENTIFIER.to_owned(), value: value.into() }
    }

    /// `{"type": "dns", "value": name}` (RFC 8555 §9.7.7).
    pub fn dns(name: impl Into<String>) -> Self {
        Self { kind: "dns".to_owned(), value: name.into() }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.value)
    }
}

/// A problem document (RFC 7807, RFC 8555 §6.7): what the server says went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// `type`: a URI, `urn:ietf:params:acme:error:…` for ACME's own (§6.7).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `detail`: the human-readable explanation.
    #[serde(default)]
    pub detail: Option<String>,
    /// `status`: the HTTP status the server meant.
    #[serde(default)]
    pub status: Option<u16>,
    /// `subproblems` (§6.7.1): one per identifier at fault.
    #[serde(default)]
    pub subproblems: Vec<Subproblem>,
}

/// One of a problem document's `subproblems` (RFC 8555 §6.7.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Subproblem {
    /// `type`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `detail`.
    #[serde(default)]
    pub detail: Option<String>,
    /// `identifier`: the identifier it concerns.
    #[serde(default)]
    pub identifier: Option<Identifier>,
}

impl Problem {
    /// The `type` URN prefix of ACME's own problems (RFC 8555 §6.7).
    pub const ACME_PREFIX: &'static str = "urn:ietf:params:acme:error:";

    /// A problem made by the client for a body it could not read as one.
    pub(crate) fn from_text(text: String) -> Self {
        Self { detail: Some(text), ..Self::default() }
    }

    /// The ACME error name (`badNonce`, `rejectedIdentifier`, …) when `type` is one of
    /// ACME's URNs.
    pub fn acme_error(&self) -> Option<&str> {
        self.kind.strip_prefix(Self::ACME_PREFIX)
    }

    /// `badNonce` (§6.5): the request may be retried with a fresh nonce.
    pub fn is_bad_nonce(&self) -> bool {
        self.acme_error() == Some("badNonce")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.kind.is_empty() { "about:blank" } else { &self.kind };
        match &self.detail {
            Some(detail) => write!(f, "{detail} ({kind})")?,
            None => f.write_str(kind)?,
        }
        for sub in &self.subproblems {
            f.write_str("; ")?;
            if let Some(identifier) = &sub.identifier {
                write!(f, "{identifier}: ")?;
            }
            match &sub.detail {
                Some(detail) => write!(f, "{detail} ({})", sub.kind)?,
                None => f.write_str(&sub.kind)?,
            }
        }
        Ok(())
    }
}

/// An account as the server describes it (RFC 8555 §7.1.2), with its URL (the `kid` of
/// every later request).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// The account's URL: the `Location` of the newAccount answer.
    pub url: String,
    /// `status`.
    pub status: Status,
    /// `contact`.
    pub contact: Vec<String>,
    /// `orders`: the URL of the account's order list.
    pub orders: Option<String>,
}

/// The account object's fields the client reads.
#[derive(Deserialize)]
pub(crate) struct AccountBody {
    pub(crate) status: Status,
    /// Absent or `null` when the account has none.
    #[serde(default)]
    pub(crate) contact: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) orders: Option<String>,
}

/// The newAccount request (RFC 8555 §7.3).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewAccount<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) contact: &'a [String],
    pub(crate) terms_of_service_agreed: bool,
}

/// The newOrder request (RFC 8555 §7.4).
#[derive(Serialize)]
pub(crate) struct NewOrder<'a> {
    pub(crate) identifiers: &'a [Identifier],
}

/// The finalize request (RFC 8555 §7.4): the CSR's DER in base64url.
#[derive(Serialize)]
pub(crate) struct Finalize {
    pub(crate) csr: String,
}

/// An order (RFC 8555 §7.1.3), with its URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Order {
    /// The order's URL: the `Location` of the newOrder answer (not part of the object).
    #[serde(skip)]
    pub url: String,
    /// `status`.
    pub status: Status,
    /// `expires` (RFC 3339).
    #[serde(default)]
    pub expires: Option<String>,
    /// `identifiers`.
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
    /// `notBefore`.
    #[serde(default)]
    pub not_before: Option<String>,
    /// `notAfter`.
    #[serde(default)]
    pub not_after: Option<String>,
    /// `error`: why the order is invalid.
    #[serde(default)]
    pub error: Option<Problem>,
    /// `authorizations`: their URLs.
    #[serde(default)]
    pub authorizations: Vec<String>,
    /// `finalize`: where the CSR goes.
    pub finalize: String,
    /// `certificate`: where the issued chain is, once `valid`.
    #[serde(default)]
    pub certificate: Option<String>,
}

/// An authorization (RFC 8555 §7.1.4), with its URL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Authorization {
    /// The authorization's URL (from the order; not part of the object).
    #[serde(skip)]
    pub url: String,
    /// `identifier`.
    pub identifier: Identifier,
    /// `status`.
    pub status: Status,
    /// `expires` (RFC 3339).
    #[serde(default)]
    pub expires: Option<String>,
    /// `challenges`.
    #[serde(default)]
    pub challenges: Vec<Challenge>,
    /// `wildcard`.
    #[serde(default)]
    pub wildcard: bool,
}

impl Authorization {
    /// The challenge of type `kind` (`http-01`, `device-attest-01`, …), if offered.
    pub fn challenge(&self, kind: &str) -> Option<&Challenge> {
        self.challenges.iter().find(|c| c.kind == kind)
    }

    /// The problem of the first challenge that has one: why an `invalid` authorization
    /// failed.
    pub fn problem(&self) -> Option<&Problem> {
        self.challenges.iter().find_map(|c| c.error.as_ref())
    }
}

/// A challenge (RFC 8555 §7.1.5, §8).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Challenge {
    /// `type`: `http-01`, `dns-01`, `tls-alpn-01`, `device-attest-01`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `url`: where the response goes.
    pub url: String,
    /// `status`.
    pub status: Status,
    /// `token` (§8.1, §8.3, §8.4; draft-acme-device-attest §5).
    #[serde(default)]
    pub token: Option<String>,
    /// `validated` (RFC 3339).
    #[serde(default)]
    pub validated: Option<String>,
    /// `error`: why validation failed.
    #[serde(default)]
    pub error: Option<Problem>,
}

impl Challenge {
    /// draft-acme-device-attest's challenge type.
    pub const DEVICE_ATTEST_01: &'static str = "device-attest-01";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn objects_parse_from_rfc8555_examples() {
        let order: Order = serde_json::from_str(
            r#"{"status":"pending","expires":"2016-01-05T14:09:07.99Z",
                "notBefore":"2016-01-01T00:00:00Z",
                "identifiers":[{"type":"dns","value":"www.example.org"}],
                "authorizations":["https://example.com/acme/authz/PAniVnsZcis"],
                "finalize":"https://example.com/acme/order/TOlocE8rfgo/finalize"}"#,
        )
        .unwrap();
        assert_eq!(order.status, Status::Pending);
        assert_eq!(order.identifiers, vec![Identifier::dns("www.example.org")]);
        assert_eq!(order.certificate, None);
        assert_eq!(order.url, "");

        let authz: Authorization = serde_json::from_str(
            r#"{"status":"invalid","identifier":{"type":"permanent-identifier","value":"12345678"},
                "challenges":[{"type":"device-attest-01","url":"https://x/c/1","status":"invalid",
                "token":"tok","error":{"type":"urn:ietf:params:acme:error:badAttestationStatement",
                "detail":"x5c is not valid"}}]}"#,
        )
        .unwrap();
        assert_eq!(authz.identifier, Identifier::permanent_identifier("12345678"));
        let challenge = authz.challenge(Challenge::DEVICE_ATTEST_01).unwrap();
        assert_eq!(challenge.token.as_deref(), Some("tok"));
        assert!(authz.challenge("http-01").is_none());
        let problem = authz.problem().unwrap();
        assert_eq!(problem.acme_error(), Some("badAttestationStatement"));
        assert_eq!(
            problem.to_string(),
            "x5c is not valid (urn:ietf:params:acme:error:badAttestationStatement)"
        );
        // An unknown status is an error, not a silent default.
        assert!(serde_json::from_str::<Status>(r#""thinking""#).is_err());
    }

    #[test]
    fn problems_show_their_subproblems() {
        let problem: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:malformed","detail":"Some of the identifiers requested were rejected",
                "subproblems":[{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"This CA will not issue for \"example.net\"",
                "identifier":{"type":"dns","value":"example.net"}}]}"#,
        )
        .unwrap();
        assert!(!problem.is_bad_nonce());
        let text = problem.to_string();
        assert!(text.starts_with("Some of the identifiers requested were rejected"), "{text}");
        assert!(text.contains("dns example.net: This CA will not issue"), "{text}");
        let bad_nonce: Problem =
            serde_json::from_str(r#"{"type":"urn:ietf:params:acme:error:badNonce"}"#).unwrap();
        assert!(bad_nonce.is_bad_nonce());
        assert_eq!(bad_nonce.to_string(), "urn:ietf:params:acme:error:badNonce");
    }

    #[test]
    fn requests_serialize_with_rfc8555_names() {
        let contact = vec!["mailto:admin@example.org".to_owned()];
        let body = NewAccount { contact: &contact, terms_of_service_agreed: true };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"contact":["mailto:admin@example.org"],"termsOfServiceAgreed":true}"#
        );
        let body = NewAccount { contact: &[], terms_of_service_agreed: false };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"termsOfServiceAgreed":false}"#);
        let ids = [Identifier::permanent_identifier("12345678")];
        assert_eq!(
            serde_json::to_string(&NewOrder { identifiers: &ids }).unwrap(),
            r#"{"identifiers":[{"type":"permanent-identifier","value":"12345678"}]}"#
        );
    }
}
