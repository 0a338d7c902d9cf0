//! keystation-jose: JOSE for the authority — compact JWS (RFC 7515) with ES256, ES384,
//! EdDSA, RS256 and PS256, JWK (RFC 7517) with thumbprints (RFC 7638), JWT claims
//! (RFC 7519) with step-ca's, and the PBES2 JWE (RFC 7516/7518) that protects a JWK
//! provisioner's `encryptedKey`.
//!
//! * [`parse_compact`] turns a token into an [`UnverifiedJws`] (size-capped, total: errors,
//!   never panics); its [`Header`] has `alg`, `kid`, `typ`, `x5c`, `x5cInsecure`, `sshpop`
//!   and `jwk` as typed fields.
//! * [`UnverifiedJws::verify`] checks the signature with a [`Jwk`] under **the key's**
//!   algorithm: the header's `alg` must merely agree. `none` and `HS256/384/512` are always
//!   refused, each with its own [`Error`]; RSA keys under 2048 bits are refused.
//! * [`Claims`]: `iss`, `sub`, `aud` (string or array), `exp`, `nbf`, `iat`, `jti`, and
//!   step's `sans`, `sha` and `step.ssh` ([`SshClaims`]).
//! * [`JwkSet`] reads a JWK Set (RFC 7517 §5) key by key: each [`JwkSetEntry`] is a
//!   verification key with its `kid`, or why it is [`UnusableKey`].
//! * [`PrivateJwk`] generates, signs with and serializes private keys (zeroized);
//!   [`sign_jwt`] makes a token.
//! * [`jwe`]: [`encrypt_pbes2`](jwe::encrypt_pbes2) / [`decrypt_pbes2`](jwe::decrypt_pbes2),
//!   PBES2-HS256+A128KW with A256GCM, what step's client decrypts with the provisioner
//!   password.
//! * [`step_time`]: Go duration strings and RFC 3339 times, as step writes them in JSON.

mod alg;
mod b64;
mod claims;
mod error;
mod json;
pub mod jwe;
mod jwk;
mod jwk_set;
mod jws;
pub mod step_time;

pub use alg::Algorithm;
pub use claims::{Claims, SshCertType, SshClaims, StepClaims, sign_jwt};
pub use error::{Error, Result};
pub use jwk::{Jwk, MIN_RSA_BITS, PrivateJwk};
pub use jwk_set::{JwkSet, JwkSetEntry, UnusableKey};
pub use jws::{Header, MAX_COMPACT_LEN, UnverifiedJws, VerifiedJws, parse_compact, sign_compact};
pub use step_time::TimeOrDuration;
