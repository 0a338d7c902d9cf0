//! base64url without padding (RFC 8555 §6.1, RFC 7515 §2) and standard base64 with padding
//! (the SPKI fingerprint step-ca stores for device-attest-01).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;

/// base64url-encodes without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; padding, the standard alphabet and non-canonical
/// trailing bits are refused (RFC 8555 §6.1: "trailing '=' characters MUST be stripped").
pub(crate) fn decode(text: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| Error::Base64 { what })
}
