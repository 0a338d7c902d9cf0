//! PEM, the textual encoding of RFC 7468: `-----BEGIN LABEL-----`, base64 of the DER
//! (RFC 4648 §4) in lines, `-----END LABEL-----`.
//!
//! [`decode_all`] is tolerant of what surrounds the blocks (OpenSSL's `Certificate:` dumps,
//! comments, several blocks in one file) and of RFC 1421 headers inside a block
//! (`Proc-Type: …`, kept in [`PemBlock::headers`]), but strict about the base64 itself: any
//! character outside the alphabet, misplaced padding or non-zero trailing bits is an
//! error, as is a block without its matching END line.

use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Result};

/// One PEM block. The decoded bytes are zeroized when the block is dropped (private-key
/// files come through here too).
pub struct PemBlock {
    /// The label between `BEGIN ` and the dashes, e.g. `CERTIFICATE`.
    pub label: String,
    /// RFC 1421 header lines (`Proc-Type`, `DEK-Info`) as name and value, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded contents (DER).
    pub der: Vec<u8>,
}

impl core::fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("headers", &self.headers)
            .field("der_len", &self.der.len())
            .finish()
    }
}

impl Drop for PemBlock {
    fn drop(&mut self) {
        self.der.zeroize();
    }
}

/// Encodes `der` as a PEM block with `label`, in 64-character lines (RFC 7468 §2), ending
/// with a newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = keystation_core::base64::encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // The base64 alphabet is ASCII, so every chunk is valid UTF-8.
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn begin_label(line: &str) -> Option<&str> {
    line.strip_prefix("-----BEGIN ")?.strip_suffix("-----")
}

fn end_label(line: &str) -> Option<&str> {
    line.strip_prefix("-----END ")?.strip_suffix("-----")
}

/// Decodes every PEM block in `text`, in order. Text outside the blocks is ignored; an
/// input without any block gives an empty list.
pub fn decode_all(text: &str) -> Result<Vec<PemBlock>> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = begin_label(line) else { continue };
        let label = label.to_owned();
        let mut headers = Vec::new();
        let mut body = Zeroizing::new(String::new());
        let mut in_headers = true;
        let mut ended = false;
        for line in lines.by_ref() {
            if let Some(end) = end_label(line) {
                if end != label {
                    return Err(Error::Pem(format!("BEGIN {label} closed by END {end}")));
                }
                ended = true;
                break;
            }
            if in_headers {
                if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                    continue;
                }
                in_headers = false;
                if line.is_empty() {
                    continue;
                }
            }
            body.push_str(line);
        }
        if !ended {
            return Err(Error::Pem(format!("BEGIN {label} without END")));
        }
        let der = decode_base64(&body)
            .ok_or_else(|| Error::Pem(format!("the {label} block is not valid base64")))?;
        blocks.push(PemBlock { label, headers, der });
    }
    Ok(blocks)
}

/// The first block labelled `label`, or an error naming it.
pub(crate) fn first_with_label(text: &str, label: &str) -> Result<Vec<u8>> {
    let mut blocks = decode_all(text)?;
    let index = blocks
        .iter()
        .position(|b| b.label == label)
        .ok_or_else(|| Error::Pem(format!("no {label} block")))?;
    Ok(core::mem::take(&mut blocks[index].der))
}

fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Strict padded base64 (RFC 4648 §4, canonical per §3.5): whitespace is not allowed here
/// (the caller joined the lines). Written here rather than taken from core so that the
/// intermediate buffers of private-key files are zeroized too.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let symbols = text.as_bytes();
    if !symbols.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    let quads = symbols.len() / 4;
    for (index, quad) in symbols.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && index + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | sextet(c)?;
        }
        n <<= 6 * pad as u32;
        // Canonical encoding: the bits below the last full byte are zero.
        if (pad == 1 && n & 0xFF != 0) || (pad == 2 && n & 0xFFFF != 0) {
            n.zeroize();
            return None;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
        n.zeroize();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_surrounding_text() {
        let der: Vec<u8> = (0u8..=200).collect();
        let pem = encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        let text = format!("Certificate:\n  junk\n{pem}trailer\n{}", encode("X", &[1, 2, 3]));
        let blocks = decode_all(&text).unwrap_or_default();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, der);
        assert_eq!(blocks[1].der, [1, 2, 3]);
        assert!(decode_all("no pem here").is_ok_and(|b| b.is_empty()));
    }

    #[test]
    fn strict_on_base64_and_structure() {
        for bad in [
            "-----BEGIN A-----\nAQID*===\n-----END A-----\n",
            "-----BEGIN A-----\nAQI\n-----END A-----\n",
            "-----BEGIN A-----\nAR==\n-----END A-----\n",
            "-----BEGIN A-----\nAQ==AQ==\n-----END A-----\n",
            "-----BEGIN A-----\nAQID\n-----END B-----\n",
            "-----BEGIN A-----\nAQID\n",
        ] {
            assert!(decode_all(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc1421_headers_are_kept() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAQID\n-----END RSA PRIVATE KEY-----\n";
        let blocks = decode_all(text).unwrap_or_default();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].headers[0], ("Proc-Type".to_owned(), "4,ENCRYPTED".to_owned()));
        assert_eq!(blocks[0].der, [1, 2, 3]);
    }
}
