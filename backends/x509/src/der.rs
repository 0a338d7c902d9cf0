//! Small DER helpers (X.690 §8.1): splitting raw elements, so that signatures are
//! checked over the bytes as received rather than over a re-encoding.

/// The header length and content length of the DER element at the start of `input`. Only
/// definite lengths (DER) are accepted; `None` if the header is truncated or malformed.
fn header(input: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 1usize;
    // High-tag-number form (X.690 §8.1.2.4): continuation bytes.
    if input.first()? & 0x1F == 0x1F {
        loop {
            let b = *input.get(pos)?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 5 {
                return None;
            }
        }
    }
    let first = *input.get(pos)?;
    pos += 1;
    let len = if first & 0x80 == 0 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..count {
            len = (len << 8) | usize::from(*input.get(pos)?);
            pos += 1;
        }
        len
    };
    Some((pos, len))
}

/// Splits the first DER element off `input`: `(element, rest)`; `None` if it is truncated
/// or malformed.
pub(crate) fn split_element(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (head, len) = header(input)?;
    let end = head.checked_add(len)?;
    if end > input.len() {
        return None;
    }
    Some(input.split_at(end))
}

/// The contents of the SEQUENCE that is all of `input`, without its header.
pub(crate) fn sequence_contents(input: &[u8]) -> Option<&[u8]> {
    let (whole, rest) = split_element(input)?;
    if whole.first() != Some(&0x30) || !rest.is_empty() {
        return None;
    }
    let (head, _) = header(whole)?;
    whole.get(head..)
}

/// The raw bytes of the first element inside the outer SEQUENCE of a signed structure
/// (the `tbsCertificate` of RFC 5280 §4.1.1.1, the `certificationRequestInfo` of RFC 2986
/// §4.2): what the signature covers.
pub(crate) fn signed_part(signed: &[u8]) -> Option<&[u8]> {
    let contents = sequence_contents(signed)?;
    split_element(contents).map(|(first, _)| first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_short_and_long_forms() {
        assert_eq!(
            split_element(&[0x02, 0x01, 0x05, 0xFF]),
            Some((&[2u8, 1, 5][..], &[0xFFu8][..]))
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 128]);
        assert_eq!(split_element(&long).map(|(e, r)| (e.len(), r.len())), Some((131, 0)));
        assert_eq!(split_element(&[0x04, 0x82, 0xFF]), None);
        assert_eq!(split_element(&[0x04, 0x80, 0x00, 0x00]), None);
        assert_eq!(split_element(&[]), None);
        let seq = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02];
        assert_eq!(signed_part(&seq), Some(&[2u8, 1, 1][..]));
        assert_eq!(signed_part(&[0x31, 0x00]), None);
    }
}
