//! Problem documents (RFC 7807) with ACME's error types (RFC 8555 §6.7), served as
//! `application/problem+json`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::messages::Identifier;

/// The media type of a problem document (RFC 7807 §6.1).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The URN namespace of ACME's error types (RFC 8555 §6.7, §9.7).
pub const ERROR_URN_PREFIX: &str = "urn:ietf:params:acme:error:";

macro_rules! problem_types {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $status:literal;)*) => {
        /// An ACME error type (RFC 8555 §6.7's table, and draft-ietf-acme-device-attest's
        /// `badAttestationStatement`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ProblemType {
            $($(#[$doc])* $variant,)*
        }

        impl ProblemType {
            /// Every type, in the RFC's (alphabetical) order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The type's name, the last part of its URN (`badNonce`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The HTTP status a server answers with (boulder's choices: 403 for
            /// `unauthorized`, `caa`, `orderNotReady` and `userActionRequired` (RFC 8555
            /// §7.3.3's example), 429 for `rateLimited`, 500 for `serverInternal`, 400
            /// otherwise).
            pub const fn status(self) -> u16 {
                match self {
                    $(Self::$variant => $status,)*
                }
            }
        }
    };
}

problem_types! {
    /// The request specified an account that does not exist.
    AccountDoesNotExist => "accountDoesNotExist", 400;
    /// The request specified a certificate to be revoked that has already been revoked.
    AlreadyRevoked => "alreadyRevoked", 400;
    /// The attestation statement of a device-attest-01 challenge is unacceptable
    /// (draft-ietf-acme-device-attest §7.3).
    BadAttestationStatement => "badAttestationStatement", 400;
    /// The CSR is unacceptable (e.g., due to a short key).
    BadCsr => "badCSR", 400;
    /// The client sent an unacceptable anti-replay nonce.
    BadNonce => "badNonce", 400;
    /// The JWS was signed by a public key the server does not support.
    BadPublicKey => "badPublicKey", 400;
    /// The revocation reason provided is not allowed by the server.
    BadRevocationReason => "badRevocationReason", 400;
    /// The JWS was signed with an algorithm the server does not support.
    BadSignatureAlgorithm => "badSignatureAlgorithm", 400;
    /// Certification Authority Authorization (CAA) records forbid the CA from issuing.
    Caa => "caa", 403;
    /// Specific error conditions are indicated in the `subproblems` array.
    Compound => "compound", 400;
    /// The server could not connect to the validation target.
    Connection => "connection", 400;
    /// There was a problem with a DNS query during identifier validation.
    Dns => "dns", 400;
    /// The request must include a value for the `externalAccountBinding` field.
    ExternalAccountRequired => "externalAccountRequired", 400;
    /// The response received didn't match the challenge's requirements.
    IncorrectResponse => "incorrectResponse", 400;
    /// A contact URL for an account was invalid.
    InvalidContact => "invalidContact", 400;
    /// The request message was malformed.
    Malformed => "malformed", 400;
    /// The request attempted to finalize an order that is not ready to be finalized.
    OrderNotReady => "orderNotReady", 403;
    /// The request exceeds a rate limit.
    RateLimited => "rateLimited", 429;
    /// The server will not issue certificates for the identifier.
    RejectedIdentifier => "rejectedIdentifier", 400;
    /// The server experienced an internal error.
    ServerInternal => "serverInternal", 500;
    /// The server received a TLS error during validation.
    Tls => "tls", 400;
    /// The client lacks sufficient authorization.
    Unauthorized => "unauthorized", 403;
    /// A contact URL for an account used an unsupported protocol scheme.
    UnsupportedContact => "unsupportedContact", 400;
    /// An identifier is of an unsupported type.
    UnsupportedIdentifier => "unsupportedIdentifier", 400;
    /// Visit the `instance` URL and take actions specified there.
    UserActionRequired => "userActionRequired", 403;
}

impl ProblemType {
    /// The type's URN, `urn:ietf:params:acme:error:` and its name (RFC 8555 §6.7).
    pub fn urn(self) -> String {
        format!("{ERROR_URN_PREFIX}{}", self.name())
    }

    /// The type a URN names; `None` for other URNs (and for `about:blank`).
    pub fn from_urn(urn: &str) -> Option<Self> {
        let name = urn.strip_prefix(ERROR_URN_PREFIX)?;
        Self::ALL.iter().copied().find(|t| t.name() == name)
    }
}

impl core::fmt::Display for ProblemType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ProblemType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.urn())
    }
}

impl<'de> Deserialize<'de> for ProblemType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let urn = String::deserialize(deserializer)?;
        Self::from_urn(&urn)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown ACME error type {urn:?}")))
    }
}

/// One of the errors of a `compound` problem, about one identifier (RFC 8555 §6.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    /// The error type.
    #[serde(rename = "type")]
    pub problem_type: ProblemType,
    /// What went wrong, for a human.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The identifier it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

/// A problem document (RFC 7807 §3.1) with ACME's members: `subproblems` (RFC 8555
/// §6.7.1), the `identifier` of an error inside an authorization, and `algorithms`, the
/// accepted ones a badSignatureAlgorithm problem should list (RFC 8555 §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The error type.
    #[serde(rename = "type")]
    pub problem_type: ProblemType,
    /// What went wrong, for a human.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The HTTP status of the response that carries the document (RFC 7807 §3.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The identifier the problem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// The errors, one per identifier, of a `compound` problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    /// The `alg` values the server accepts (RFC 8555 §6.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
}

impl Problem {
    /// A problem of `problem_type` with `detail`, its `status` the type's
    /// [`status`](ProblemType::status).
    pub fn new(problem_type: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            problem_type,
            detail: detail.into(),
            status: Some(problem_type.status()),
            identifier: None,
            subproblems: Vec::new(),
            algorithms: Vec::new(),
        }
    }

    /// The same problem about `identifier`.
    #[must_use]
    pub fn with_identifier(mut self, identifier: Identifier) -> Self {
        self.identifier = Some(identifier);
        self
    }

    /// The same problem with `subproblems` (a `compound` problem has them, RFC 8555 §6.7.1).
    #[must_use]
    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }

    /// The same problem listing the accepted `algorithms`.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: Vec<String>) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// The HTTP status to answer with: `status` when set, else the type's.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or(self.problem_type.status())
    }

    /// The `application/problem+json` body ([`PROBLEM_CONTENT_TYPE`]).
    pub fn to_json(&self) -> String {
        // Strings, numbers and lists of them: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a problem document (what a client reads from an error response).
    pub fn from_json(body: &[u8]) -> crate::Result<Self> {
        crate::json::object(body, "problem document")
    }
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.problem_type, self.detail)
    }
}

impl From<crate::Error> for Problem {
    fn from(error: crate::Error) -> Self {
        error.problem()
    }
}

impl From<&crate::Error> for Problem {
    fn from(error: &crate::Error) -> Self {
        error.problem()
    }
}
