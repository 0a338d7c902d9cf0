//! base64url without padding (RFC 7515 §2) and standard base64 (RFC 4648 §4).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::error::Error;

/// base64url-encodes without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; padding, other alphabets and non-canonical trailing
/// bits are refused.
pub(crate) fn decode(text: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| Error::Base64 { what })
}

/// Standard base64 with padding (x5c, sshpop).
pub(crate) fn encode_std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 with padding.
pub(crate) fn decode_std(text: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    STANDARD.decode(text).map_err(|_| Error::Base64 { what })
}
