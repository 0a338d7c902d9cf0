//! keystation-acme-client: an ACME (RFC 8555) client — directory, nonces, account, order,
//! authorizations and challenges, finalize, certificate download — with the response to
//! device-attest-01 (draft-acme-device-attest, in step-ca's `step` format) that
//! `keystation piv enroll --acme` sends for a key on a PIV card.
//!
//! * **Transport.** HTTP/1.1 over TLS (rustls with ring, hyper), trusting exactly the
//!   root certificates given as PEM, never the system's: a card enrolls with its own
//!   authority, whose root the operator hands out (as keystation-ca-client does). Every
//!   request is bounded in time ([`ClientOptions::request_timeout`]) and its answer in
//!   size ([`MAX_RESPONSE_BYTES`]). ACME is only spoken over HTTPS (RFC 8555 §6.1).
//! * **Requests.** Every POST is a flattened JWS (RFC 8555 §6.2, RFC 7515 §7.2.2) of type
//!   `application/jose+json`, its protected header `alg`, `nonce`, `url` and `jwk`
//!   (newAccount) or `kid` (the account URL). Reads are POST-as-GET (§6.3).
//! * **Nonces** (§6.5, §7.2) come from every answer's `Replay-Nonce`, or from newNonce
//!   (HEAD) when none is left; a `badNonce` refusal is retried once.
//! * **The account key** is a fresh ES256 key generated in memory for the enrollment
//!   ([`AcmeClient::new_account`]); it is never written anywhere and is zeroized when the
//!   client goes.
//! * **Polling** (§7.5.1, §7.4) honours `Retry-After` (seconds or an HTTP-date), within a
//!   total bound ([`ClientOptions::poll_limit`]).
//! * **Errors** are one enum, [`Error`]; a refusal by the server is [`Error::Server`] with
//!   its problem document (RFC 7807: `type`, `detail`, `subproblems`), a failed challenge,
//!   authorization or order is [`Error::Failed`] with the problem the server recorded.
//!
//! [`AcmeClient`] is async (tokio); [`BlockingAcmeClient`] runs it on its own
//! current-thread runtime for synchronous callers such as `keystation piv enroll`.
//!
//! External account binding (§7.3.4), key rollover, account deactivation and revocation
//! are not implemented: a directory that requires external accounts is refused with
//! [`Error::ExternalAccountRequired`].

mod blocking;
mod client;
pub mod device_attest;
mod http;
mod jws;
mod objects;
mod retry_after;

pub use blocking::BlockingAcmeClient;
pub use client::{AcmeClient, CertificateChain, ClientOptions, MIN_POLL_INTERVAL, REQUEST_TIMEOUT};
pub use device_attest::CoseAlgorithm;
pub use http::MAX_RESPONSE_BYTES;
pub use objects::{
    Account, Authorization, Challenge, Directory, DirectoryMeta, Identifier, Order, Problem,
    Status, Subproblem,
};

/// What went wrong talking to the ACME server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL (the directory's, or one the server gave) is unusable.
    #[error("ACME URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The root certificate to trust is unusable.
    #[error("the ACME server's root certificate: {0}")]
    BadRoot(String),
    /// The TCP connection failed.
    #[error("cannot connect to {server}")]
    Connect {
        /// `host:port`.
        server: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (a server certificate not issued under the root, a name
    /// mismatch, …).
    #[error("TLS handshake with {server} failed")]
    Handshake {
        /// `host:port`.
        server: String,
        /// Why (rustls's error inside).
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange broke off.
    #[error("HTTP exchange with {url} failed: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// hyper's description.
        reason: String,
    },
    /// No whole answer within the request timeout.
    #[error("{url} did not answer within {seconds} s")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout.
        seconds: f64,
    },
    /// The answer is larger than [`MAX_RESPONSE_BYTES`].
    #[error("the answer from {url} exceeds {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The server refused the request (an error status): its problem document.
    #[error("{url}: the ACME server answered {status}: {problem}")]
    Server {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The problem (RFC 7807); for a body that is none, its text as `detail`.
        problem: Problem,
    },
    /// An account, challenge, authorization or order ended in a state other than the one
    /// asked for (`invalid`, `expired`, `deactivated`, `revoked`).
    #[error("the {what} at {url} is {status}{}", .problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    Failed {
        /// `account`, `authorization`, `order`.
        what: &'static str,
        /// Its URL.
        url: String,
        /// Its status.
        status: Status,
        /// The problem the server recorded (a challenge's or the order's `error`).
        problem: Option<Problem>,
    },
    /// A poll reached its limit with the resource still `pending` or `processing`.
    #[error("{url} is still {status} after {seconds} s")]
    PollTimeout {
        /// The resource polled.
        url: String,
        /// The poll limit.
        seconds: f64,
        /// Its last status.
        status: Status,
    },
    /// A success answer whose body or headers are not what RFC 8555 says.
    #[error("{url}: unexpected answer: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The directory requires external account binding (RFC 8555 §7.3.4), which this
    /// client does not do.
    #[error(
        "the ACME server at {url} requires an external account binding, which keystation's client does not support"
    )]
    ExternalAccountRequired {
        /// The directory.
        url: String,
    },
    /// A request that needs an account was made before [`AcmeClient::new_account`].
    #[error("no ACME account yet: create one first")]
    NoAccount,
    /// The account key could not sign (or be generated).
    #[error("the ACME account key")]
    Signing(#[source] keystation_jose::Error),
    /// A request body could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encoding(String),
    /// The blocking client's runtime could not start.
    #[error("cannot start the ACME client's runtime")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    /// The problem document of a refusal ([`Error::Server`]) or failure
    /// ([`Error::Failed`]).
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Server { problem, .. } => Some(problem),
            Self::Failed { problem, .. } => problem.as_ref(),
            _ => None,
        }
    }

    /// The HTTP status of an [`Error::Server`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } => Some(*status),
            _ => None,
        }
    }
}
