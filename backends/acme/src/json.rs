//! JSON objects only: serde's derived structs also accept arrays (fields by position),
//! which no ACME object may be (RFC 8555 §7.1).

use serde::de::DeserializeOwned;

use crate::error::Error;

/// Parses `bytes` as a JSON object into `T`; anything else is [`Error::Malformed`] naming
/// `what`.
pub(crate) fn object<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, Error> {
    let first = bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err(Error::malformed(what, "not a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e.to_string()))
}
