//! Packet framing (RFC 4880 §4.2), multiprecision integers (§3.2) and signature
//! subpackets (§5.2.3.1): writers, and a total parser for packet sequences.

use crate::CertError;

/// Packet tags used here, RFC 4880 §4.3.
pub mod tag {
    /// Signature Packet, §5.2.
    pub const SIGNATURE: u8 = 2;
    /// Secret-Key Packet, §5.5.1.3.
    pub const SECRET_KEY: u8 = 5;
    /// Public-Key Packet, §5.5.1.1.
    pub const PUBLIC_KEY: u8 = 6;
    /// Secret-Subkey Packet, §5.5.1.4.
    pub const SECRET_SUBKEY: u8 = 7;
    /// User ID Packet, §5.11.
    pub const USER_ID: u8 = 13;
    /// Public-Subkey Packet, §5.5.1.2.
    pub const PUBLIC_SUBKEY: u8 = 14;
}

/// Appends a new-format body length (§4.2.2.1–4.2.2.3: one octet below 192, two octets
/// below 8384, else `FF` and four octets). Subpacket lengths use the same form (§5.2.3.1).
pub(crate) fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 192 {
        out.push(len as u8);
    } else if len < 8384 {
        let v = len - 192;
        out.push(((v >> 8) + 192) as u8);
        out.push(v as u8);
    } else {
        out.push(0xFF);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a packet with a new-format header (§4.2: `C0 | tag`, then the length).
pub(crate) fn write_packet(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(0xC0 | (tag & 0x3F));
    write_length(out, body.len());
    out.extend_from_slice(body);
}

/// Appends an MPI (§3.2): the bit length as two octets, then the value without leading
/// zero octets. Values longer than 65535 bits cannot occur for the keys handled here.
pub(crate) fn write_mpi(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let value = &value[start..];
    let bits = match value.first() {
        None => 0,
        Some(&top) => value.len() * 8 - top.leading_zeros() as usize,
    };
    out.extend_from_slice(&(bits as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// Appends one signature subpacket (§5.2.3.1: length including the type octet, type,
/// data).
pub(crate) fn write_subpacket(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    write_length(out, data.len() + 1);
    out.push(kind);
    out.extend_from_slice(data);
}

/// One packet of a parsed sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The packet tag (§4.3).
    pub tag: u8,
    /// The body.
    pub body: &'a [u8],
}

/// Splits `data` into packets, accepting old-format (§4.2.1) and new-format (§4.2.2)
/// headers. Partial body lengths (§4.2.2.4) and old-format indeterminate lengths occur
/// only in streamed messages, never in keys and signatures, and are rejected. Total:
/// every input gives packets or an error naming the offset.
pub fn parse_packets(data: &[u8]) -> Result<Vec<Packet<'_>>, CertError> {
    let mut packets = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let start = at;
        let bad = |reason| CertError::Packet { offset: start, reason };
        let ctb = data[at];
        at += 1;
        if ctb & 0x80 == 0 {
            return Err(bad("packet header without its high bit"));
        }
        let (tag, len) = if ctb & 0x40 != 0 {
            let first = *data.get(at).ok_or(bad("truncated length"))?;
            at += 1;
            let len = match first {
                0..=191 => usize::from(first),
                192..=223 => {
                    let second = *data.get(at).ok_or(bad("truncated length"))?;
                    at += 1;
                    ((usize::from(first) - 192) << 8) + usize::from(second) + 192
                }
                255 => {
                    let bytes = data.get(at..at + 4).ok_or(bad("truncated length"))?;
                    at += 4;
                    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
                }
                _ => return Err(bad("partial body length")),
            };
            (ctb & 0x3F, len)
        } else {
            let width = match ctb & 0x03 {
                0 => 1,
                1 => 2,
                2 => 4,
                _ => return Err(bad("indeterminate length")),
            };
            let bytes = data.get(at..at + width).ok_or(bad("truncated length"))?;
            at += width;
            let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            ((ctb >> 2) & 0x0F, len)
        };
        let end = at.checked_add(len).filter(|&end| end <= data.len());
        let end = end.ok_or(bad("body runs past the end"))?;
        packets.push(Packet { tag, body: &data[at..end] });
        at = end;
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_length(&mut out, len);
        out
    }

    #[test]
    fn length_encodings_at_the_boundaries() {
        // RFC 4880 §4.2.3 examples: 100 → 64; 1723 → C5 FB; 100000 → FF 00 01 86 A0.
        assert_eq!(length(100), [0x64]);
        assert_eq!(length(1723), [0xC5, 0xFB]);
        assert_eq!(length(100_000), [0xFF, 0x00, 0x01, 0x86, 0xA0]);
        assert_eq!(length(191), [0xBF]);
        assert_eq!(length(192), [0xC0, 0x00]);
        assert_eq!(length(8383), [0xDF, 0xFF]);
        assert_eq!(length(8384), [0xFF, 0x00, 0x00, 0x20, 0xC0]);
    }

    #[test]
    fn packets_round_trip_through_the_parser() {
        let mut out = Vec::new();
        let bodies: Vec<Vec<u8>> =
            [0usize, 1, 191, 192, 8383, 8384, 70_000].iter().map(|&n| vec![0xA5; n]).collect();
        for (i, body) in bodies.iter().enumerate() {
            write_packet(&mut out, (i + 1) as u8, body);
        }
        let parsed = parse_packets(&out).unwrap_or_default();
        assert_eq!(parsed.len(), bodies.len());
        for (i, (p, body)) in parsed.iter().zip(&bodies).enumerate() {
            assert_eq!((p.tag, p.body), ((i + 1) as u8, body.as_slice()));
        }
    }

    #[test]
    fn old_format_headers_parse() {
        // Old format: tag 6 with a two-octet length (99 00 03), tag 13 one-octet (B4 01).
        let data = [0x99, 0x00, 0x03, 1, 2, 3, 0xB4, 0x01, b'x'];
        let parsed = parse_packets(&data).unwrap_or_default();
        assert_eq!(parsed, [Packet { tag: 6, body: &[1, 2, 3] }, Packet { tag: 13, body: b"x" }]);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for data in [
            &[0x00][..],
            &[0xC6],
            &[0xC6, 0xC0],
            &[0xC6, 0xFF, 0, 0],
            &[0xC6, 0x05, 1],
            &[0xC6, 0xE1],
            &[0x9B],
            &[0x98],
            &[0xC6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ] {
            assert!(parse_packets(data).is_err(), "{data:02X?}");
        }
    }

    #[test]
    fn mpis_drop_leading_zeros_and_count_bits() {
        let mut out = Vec::new();
        write_mpi(&mut out, &[0x00, 0x01, 0xFF]);
        assert_eq!(out, [0x00, 0x09, 0x01, 0xFF]);
        out.clear();
        // A 0x40-prefixed Curve25519 point: 263 bits.
        let mut point = vec![0x40];
        point.extend_from_slice(&[0x80; 32]);
        write_mpi(&mut out, &point);
        assert_eq!(&out[..3], &[0x01, 0x07, 0x40]);
        out.clear();
        write_mpi(&mut out, &[]);
        assert_eq!(out, [0, 0]);
    }
}
