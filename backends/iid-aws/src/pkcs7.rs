//! The RSA-2048 form of the identity document: `/latest/dynamic/instance-identity/rsa2048`,
//! a PKCS#7 (CMS, RFC 5652) `SignedData` whose attached content is the document, signed
//! with SHA-256 and RSA by the region's RSA-2048 certificate
//! (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/verify-rsa2048.html>).
//!
//! AWS encodes it in BER with indefinite lengths (it begins `MIAGCSqGSIb3DQEHAqCA…`:
//! `30 80 06 09 …`) and the content as a constructed OCTET STRING, so the bytes are first
//! normalised to DER ([`ber_to_der`]: definite lengths, constructed OCTET STRINGs joined),
//! then parsed with RustCrypto's `cms`.
//!
//! What is checked: `ContentInfo` is `signedData`; the encapsulated content is `data` and
//! present; exactly one `SignerInfo`; its digest is SHA-256 and its signature algorithm
//! `rsaEncryption` or `sha256WithRSAEncryption`; the signer is a trusted certificate named
//! by issuer and serial (or subject key identifier) — certificates inside the message are
//! never trusted; with signed attributes (RFC 5652 §5.4), `contentType` is `data`,
//! `messageDigest` is SHA-256 of the content and the signature covers the DER of the
//! attributes as a `SET OF`; without them, it covers the content. The key must have at
//! least 2048 bits.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{Decode as _, Encode as _};
use ring::signature;
use sha2::{Digest as _, Sha256};

use crate::trust::TrustStore;

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const DATA: &str = "1.2.840.113549.1.7.1";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// The largest PKCS#7 accepted (AWS's are about 1.5 KiB).
pub const MAX_PKCS7: usize = 64 * 1024;
/// The deepest nesting accepted while normalising BER.
const MAX_DEPTH: usize = 32;

/// Why a PKCS#7 identity document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pkcs7Refusal {
    /// Not a well-formed SignedData of the expected shape.
    Malformed(String),
    /// No trusted certificate is the signer.
    UnknownSigner,
    /// The digest or signature does not verify.
    BadSignature(String),
}

/// A verified PKCS#7 identity document.
#[derive(Debug, Clone)]
pub(crate) struct Pkcs7Verified {
    /// The document (the encapsulated content).
    pub(crate) document: Vec<u8>,
}

/// Normalises BER to DER: indefinite lengths become definite, constructed OCTET STRINGs
/// (tag `0x24`) become primitive ones holding their segments' concatenation. Total: any
/// input gives DER or `None`; nesting is bounded.
pub fn ber_to_der(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() > MAX_PKCS7 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len());
    let rest = convert(input, &mut out, 0)?;
    rest.is_empty().then_some(out)
}

/// One TLV from `input` into `out`; returns what follows it.
fn convert<'a>(input: &'a [u8], out: &mut Vec<u8>, depth: usize) -> Option<&'a [u8]> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (&tag, mut rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers do not occur in CMS
    }
    let constructed = tag & 0x20 != 0;
    let (&first, after) = rest.split_first()?;
    rest = after;
    let length = if first == 0x80 {
        None
    } else if first & 0x80 == 0 {
        Some(usize::from(first))
    } else {
        let count = usize::from(first & 0x7f);
        if count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        Some(bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)))
    };
    if !constructed {
        let length = length?; // primitive encodings have definite lengths
        if rest.len() < length {
            return None;
        }
        let (content, after) = rest.split_at(length);
        push_tlv(out, tag, content);
        return Some(after);
    }
    // Constructed: convert the children into a buffer, then write with a definite length.
    let mut children = Vec::new();
    let after = match length {
        Some(length) => {
            if rest.len() < length {
                return None;
            }
            let (mut content, after) = rest.split_at(length);
            while !content.is_empty() {
                content = convert(content, &mut children, depth + 1)?;
            }
            after
        }
        None => loop {
            if rest.starts_with(&[0, 0]) {
                break &rest[2..];
            }
            if rest.is_empty() {
                return None;
            }
            rest = convert(rest, &mut children, depth + 1)?;
        },
    };
    if tag == 0x24 {
        // A constructed OCTET STRING: its children are OCTET STRINGs; join their content.
        let mut joined = Vec::with_capacity(children.len());
        let mut segments: &[u8] = &children;
        while !segments.is_empty() {
            let (segment_tag, content, after) = read_definite(segments)?;
            if segment_tag != 0x04 {
                return None;
            }
            joined.extend_from_slice(content);
            segments = after;
        }
        push_tlv(out, 0x04, &joined);
    } else {
        push_tlv(out, tag, &children);
    }
    Some(after)
}

/// Reads one definite-length TLV (as [`convert`] writes them).
fn read_definite(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let length = if first & 0x80 == 0 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    if rest.len() < length {
        return None;
    }
    let (content, after) = rest.split_at(length);
    Some((tag, content, after))
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

fn malformed(what: impl Into<String>) -> Pkcs7Refusal {
    Pkcs7Refusal::Malformed(what.into())
}

/// Verifies a PKCS#7 identity document (BER or DER) against the trusted certificates.
pub(crate) fn verify(pkcs7: &[u8], trust: &TrustStore) -> Result<Pkcs7Verified, Pkcs7Refusal> {
    let der = ber_to_der(pkcs7).ok_or_else(|| malformed("not BER/DER (or over 64 KiB)"))?;
    let info = ContentInfo::from_der(&der).map_err(|e| malformed(format!("ContentInfo: {e}")))?;
    if info.content_type.to_string() != SIGNED_DATA {
        return Err(malformed(format!("content type {} is not signedData", info.content_type)));
    }
    let signed: SignedData =
        info.content.decode_as().map_err(|e| malformed(format!("SignedData: {e}")))?;
    let encap = &signed.encap_content_info;
    if encap.econtent_type.to_string() != DATA {
        return Err(malformed(format!(
            "encapsulated content type {} is not data",
            encap.econtent_type
        )));
    }
    let Some(content) = &encap.econtent else {
        return Err(malformed("the document is not attached"));
    };
    let document = der::asn1::OctetString::from_der(
        &content.to_der().map_err(|e| malformed(format!("content: {e}")))?,
    )
    .map_err(|e| malformed(format!("content is not an OCTET STRING: {e}")))?
    .into_bytes();
    let signers = signed.signer_infos.0.as_slice();
    let [signer] = signers else {
        return Err(malformed(format!("{} signers; exactly one is expected", signers.len())));
    };
    if signer.digest_alg.oid.to_string() != SHA256 {
        return Err(malformed(format!("digest {} is not SHA-256", signer.digest_alg.oid)));
    }
    let algorithm = signer.signature_algorithm.oid.to_string();
    if algorithm != RSA_ENCRYPTION && algorithm != SHA256_WITH_RSA {
        return Err(malformed(format!("signature algorithm {algorithm} is not RSA")));
    }
    let digest = Sha256::digest(&document);
    let signed_bytes = match &signer.signed_attrs {
        None => document.clone(),
        Some(attributes) => {
            let mut content_type_ok = false;
            let mut digest_ok = None;
            for attribute in attributes.iter() {
                let oid = attribute.oid.to_string();
                let values = attribute.values.as_slice();
                if oid == CONTENT_TYPE {
                    let [value] = values else {
                        return Err(malformed("contentType has not one value"));
                    };
                    let oid: der::asn1::ObjectIdentifier =
                        value.decode_as().map_err(|e| malformed(format!("contentType: {e}")))?;
                    content_type_ok = oid.to_string() == DATA;
                } else if oid == MESSAGE_DIGEST {
                    let [value] = values else {
                        return Err(malformed("messageDigest has not one value"));
                    };
                    let octets: der::asn1::OctetString =
                        value.decode_as().map_err(|e| malformed(format!("messageDigest: {e}")))?;
                    digest_ok = Some(octets.as_bytes() == &digest[..]);
                }
            }
            if !content_type_ok {
                return Err(malformed("the signed contentType attribute is missing or not data"));
            }
            match digest_ok {
                None => return Err(malformed("the signed messageDigest attribute is missing")),
                Some(false) => {
                    return Err(Pkcs7Refusal::BadSignature(
                        "messageDigest is not the SHA-256 of the document".into(),
                    ));
                }
                Some(true) => {}
            }
            // RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF.
            attributes.to_der().map_err(|e| malformed(format!("signed attributes: {e}")))?
        }
    };
    let candidates: Vec<usize> = match &signer.sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            let issuer = id.issuer.to_der().map_err(|e| malformed(format!("issuer: {e}")))?;
            let serial = id.serial_number.as_bytes();
            let serial = &serial[serial.iter().position(|&b| b != 0).unwrap_or(serial.len())..];
            (0..trust.certificates.len())
                .filter(|&i| {
                    let c = &trust.certificates[i];
                    c.issuer_der == issuer && c.serial == serial
                })
                .collect()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => (0..trust.certificates.len())
            .filter(|&i| trust.certificates[i].key_id.as_deref() == Some(ski.0.as_bytes()))
            .collect(),
    };
    if candidates.is_empty() {
        return Err(Pkcs7Refusal::UnknownSigner);
    }
    let signature_bytes = signer.signature.as_bytes();
    for i in candidates {
        let c = &trust.certificates[i];
        if c.bits < 2048 {
            continue;
        }
        let ok =
            signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &c.rsa_key)
                .verify(&signed_bytes, signature_bytes)
                .is_ok();
        if ok {
            return Ok(Pkcs7Verified { document });
        }
    }
    Err(Pkcs7Refusal::BadSignature(
        "the signer's RSA-2048 key does not verify the signature".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ber_indefinite_lengths_and_constructed_octet_strings_become_der() {
        // SEQUENCE (indefinite) { [0] (indefinite) { OCTET STRING (constructed, indefinite)
        // { "ab", "cd" } } }
        let ber = [
            0x30, 0x80, 0xa0, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x02, b'c', b'd',
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let der = ber_to_der(&ber);
        assert_eq!(
            der.as_deref(),
            Some(&[0x30, 0x08, 0xa0, 0x06, 0x04, 0x04, b'a', b'b', b'c', b'd'][..])
        );
        assert_eq!(ber_to_der(&[0x30, 0x80, 0x04, 0x00]), None, "unterminated");
        assert_eq!(ber_to_der(&[0x04, 0x80, 0x00, 0x00]), None, "primitive indefinite");
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 40).flatten().collect();
        assert_eq!(ber_to_der(&deep), None, "too deep");
        let long = {
            let mut v = vec![0x04, 0x82, 0x01, 0x00];
            v.extend(std::iter::repeat_n(7u8, 256));
            v
        };
        assert_eq!(ber_to_der(&long).as_deref(), Some(&long[..]), "DER stays as it is");
    }
}
