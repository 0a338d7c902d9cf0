//! device-attest-01's response (draft-acme-device-attest §5; step-ca's `step` format):
//! `{"attObj": base64url(CBOR attestation object)}`, the object being
//!
//! ```text
//! {"fmt": "step", "attStmt": {"alg": COSE algorithm, "sig": bstr, "x5c": [bstr, …]}}
//! ```
//!
//! `x5c` is the attestation chain, the certificate of the attested key first (for a
//! YubiKey: the slot's attestation certificate, then the card's `F9` certificate); `sig`
//! is the attested key's signature over the key authorization (RFC 8555 §8.1) — ECDSA
//! P-256 over its SHA-256 (ASN.1 DER, COSE `-7`), RSASSA-PKCS1-v1_5 with SHA-256 (`-257`),
//! or Ed25519 over the bytes themselves (`-8`). As step's client writes it and step-ca
//! reads it, `sig` holds the CBOR encoding of the signature's byte string (WebAuthn's
//! "signature is CBOR-encoded"), not the raw signature.
//!
//! The encoding is CTAP2's canonical CBOR (RFC 8949 §4.2.3: definite lengths, the
//! shortest heads, keys in length-then-byte order), written out here: four major types
//! are all it needs.

/// The COSE algorithm of a device-attest-01 signature (RFC 9053 §2.1, RFC 8812 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoseAlgorithm {
    /// `-7`: ECDSA with SHA-256 (P-256 in step's format).
    Es256,
    /// `-257`: RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// `-8`: EdDSA (Ed25519).
    EdDsa,
}

impl CoseAlgorithm {
    /// The COSE algorithm identifier.
    pub fn value(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::Rs256 => -257,
            Self::EdDsa => -8,
        }
    }
}

const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;

/// A data item's head (RFC 8949 §3): the major type and its argument, shortest form.
fn head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    match argument {
        0..=23 => out.push(major | argument as u8),
        24..=0xff => out.extend([major | 24, argument as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend((argument as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend((argument as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend(argument.to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, value: &str) {
    head(out, MAJOR_TEXT, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn bytes(out: &mut Vec<u8>, value: &[u8]) {
    head(out, MAJOR_BYTES, value.len() as u64);
    out.extend_from_slice(value);
}

/// A negative integer `-1 - n`.
fn negative(out: &mut Vec<u8>, value: i64) {
    debug_assert!(value < 0);
    head(out, MAJOR_NEGATIVE, value.unsigned_abs() - 1);
}

/// The CBOR attestation object of step's format for `signature` (the raw signature of
/// the key authorization, DER for ECDSA) made with `alg`, and the chain `x5c` (DER, the
/// attested key's certificate first).
pub fn step_attestation_object(alg: CoseAlgorithm, signature: &[u8], x5c: &[Vec<u8>]) -> Vec<u8> {
    let mut sig = Vec::with_capacity(signature.len() + 3);
    bytes(&mut sig, signature);
    let mut out = Vec::with_capacity(sig.len() + x5c.iter().map(Vec::len).sum::<usize>() + 64);
    head(&mut out, MAJOR_MAP, 2);
    text(&mut out, "fmt");
    text(&mut out, "step");
    text(&mut out, "attStmt");
    head(&mut out, MAJOR_MAP, 3);
    text(&mut out, "alg");
    negative(&mut out, alg.value());
    text(&mut out, "sig");
    bytes(&mut out, &sig);
    text(&mut out, "x5c");
    head(&mut out, MAJOR_ARRAY, x5c.len() as u64);
    for certificate in x5c {
        bytes(&mut out, certificate);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn heads_take_the_shortest_form() {
        let encode = |major, n| {
            let mut out = Vec::new();
            head(&mut out, major, n);
            out
        };
        // RFC 8949 Appendix A.
        assert_eq!(encode(0, 23), [0x17]);
        assert_eq!(encode(0, 24), [0x18, 0x18]);
        assert_eq!(encode(0, 1000), [0x19, 0x03, 0xe8]);
        assert_eq!(encode(0, 1_000_000), [0x1a, 0x00, 0x0f, 0x42, 0x40]);
        assert_eq!(
            encode(0, 1_000_000_000_000),
            [0x1b, 0x00, 0x00, 0x00, 0xe8, 0xd4, 0xa5, 0x10, 0x00]
        );
        let mut out = Vec::new();
        negative(&mut out, -1000);
        assert_eq!(out, [0x39, 0x03, 0xe7]);
        assert_eq!(CoseAlgorithm::Es256.value(), -7);
        assert_eq!(CoseAlgorithm::Rs256.value(), -257);
        assert_eq!(CoseAlgorithm::EdDsa.value(), -8);
    }

    #[test]
    fn the_attestation_object_is_steps_layout_byte_for_byte() {
        let object =
            step_attestation_object(CoseAlgorithm::Es256, &[0x30, 0x01], &[vec![0xaa], vec![]]);
        let expected: Vec<u8> = [
            &[0xa2][..],                     // map(2)
            &[0x63, b'f', b'm', b't'],       // "fmt"
            &[0x64, b's', b't', b'e', b'p'], // "step"
            &[0x67],                         // "attStmt"
            b"attStmt",
            &[0xa3],                         // map(3)
            &[0x63, b'a', b'l', b'g', 0x26], // "alg": -7
            &[0x63, b's', b'i', b'g'],       // "sig":
            &[0x43, 0x42, 0x30, 0x01],       //   bstr(bstr(30 01))
            &[0x63, b'x', b'5', b'c'],       // "x5c":
            &[0x82, 0x41, 0xaa, 0x40],       //   [h'aa', h'']
        ]
        .concat();
        assert_eq!(object, expected);

        let rsa = step_attestation_object(CoseAlgorithm::Rs256, &[0u8; 256], &[vec![1u8; 300]]);
        let alg_at = rsa.windows(4).position(|w| w == b"\x63alg").unwrap() + 4;
        assert_eq!(&rsa[alg_at..alg_at + 3], [0x39, 0x01, 0x00]); // -257
        // sig: bstr(259 bytes) holding bstr(256 bytes).
        assert_eq!(&rsa[alg_at + 7..alg_at + 13], [0x59, 0x01, 0x03, 0x59, 0x01, 0x00]);
        // x5c: one certificate of 300 bytes, the object's last bytes.
        let tail = rsa.len() - 300;
        assert_eq!(&rsa[tail - 4..tail], [0x81, 0x59, 0x01, 0x2c]);
    }
}
