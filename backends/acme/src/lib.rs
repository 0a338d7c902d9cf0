//! keystation-acme: ACME (RFC 8555) without I/O — what the authority's ACME server and
//! keystation's ACME client share, with no sockets, clocks or storage of its own.
//!
//! * [`envelope`]: the request body, a flattened JWS (RFC 8555 §6.2):
//!   [`parse_request`] → [`AcmeRequest`] (its [`ProtectedHeader`]: `alg`, `nonce`, `url`,
//!   [`KeyRef`] `jwk` or `kid`) → [`AcmeRequest::verify`] → [`VerifiedRequest`]; key
//!   changes ([`verify_key_change`], §7.3.5); [`sign_request`] for clients.
//! * [`problem`]: problem documents (RFC 7807) with every RFC 8555 §6.7 [`ProblemType`];
//!   each [`Error`] names its type ([`Error::problem_type`]).
//! * [`messages`]: the directory, the request payloads, and the account, order,
//!   authorization and challenge objects with their status enums (§7.1).
//! * [`identifiers`]: order rules — identifier normalization, the challenges each
//!   identifier can use, the CSR against the order (§7.4).
//! * [`key_authorization`](mod@key_authorization): key authorizations (§8.1), the dns-01 TXT value (§8.4), the
//!   tls-alpn-01 digest (RFC 8737 §3), challenge tokens.
//! * [`eab`]: external account binding (§7.3.4): [`verify_eab`], [`sign_eab`].
//! * [`provisioner`]: the `ACME` provisioner ([`AcmeProvisioner`], [`FACTORY`]).
//! * [`attestation`]: device-attest-01's `step` attestation object
//!   ([`parse_attestation_object`], [`AcmeProvisioner::verify_device_attestation`],
//!   [`step_attestation_object`] for clients).

pub mod attestation;
mod b64;
pub mod eab;
pub mod envelope;
mod error;
pub mod identifiers;
mod json;
pub mod key_authorization;
pub mod messages;
pub mod problem;
pub mod provisioner;

pub use attestation::{
    AttestationStatement, AttestedDevice, parse_attestation_object, spki_fingerprint,
    step_attestation_object,
};
pub use eab::{sign_eab, verify_eab};
pub use envelope::{
    ACCEPTED_ALGORITHMS, AcmeRequest, KeyRef, MAX_REQUEST_LEN, ProtectedHeader, VerifiedKeyChange,
    VerifiedRequest, parse_request, sign_request, verify_key_change,
};
pub use error::{Error, Result};
pub use identifiers::{challenge_types_for, csr_matches_order, normalize_identifier};
pub use key_authorization::{dns01_txt_value, key_authorization, new_token, tls_alpn01_digest};
pub use messages::{ChallengeType, Identifier, IdentifierType};
pub use problem::{Problem, ProblemType, Subproblem};
pub use provisioner::{AcmeProvisioner, FACTORY};
