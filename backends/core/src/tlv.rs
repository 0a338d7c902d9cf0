//! BER-TLV data objects, ISO/IEC 7816-4 §5.2 (as profiled by ISO/IEC 7816-4 annex and used
//! by OpenPGP card 3.4 §4.4 and NIST SP 800-73-4 part 2 §3).
//!
//! Reading is zero-copy: [`parse`] walks a buffer and yields [`Tlv`]s that borrow their
//! value, and constructed values are only decoded when asked for ([`Tlv::children`]).
//! Writing appends to a `Vec<u8>` ([`write`], [`write_header`], [`write_constructed`]).
//!
//! # Why not `iso7816-tlv` for this
//!
//! The `iso7816-tlv` crate was evaluated and is kept as a test oracle (the unit tests and
//! the fuzz target check that both agree on well-formed input), but it does not fit card
//! traffic in four ways:
//!
//! * It decodes a constructed object recursively with no depth limit, so a response of a
//!   few kilobytes of nested `7F 21 …` headers exhausts the stack.
//! * It copies every value into its own `Vec`, twice when encoding, which matters for
//!   certificates and RSA keys on the APDU hot path.
//! * It cannot skip the `00`/`FF` padding bytes that §5.2.2.1 allows between objects.
//! * It refuses a constructed tag whose value is not itself TLV-encoded. OpenPGP card
//!   3.4 §4.4.3.12 needs exactly that: the cardholder private key template `7F48` of
//!   the extended header list holds a tag–length list without values.

use crate::error::{Error, TlvFault};

/// Deepest nesting [`find_nested`] descends into. Card data nests three levels at most
/// (OpenPGP `6E` → `73` → `C0`); eight leaves room and bounds the work on hostile input.
pub const MAX_DEPTH: usize = 8;

/// A BER-TLV tag of one to three bytes, held as the big-endian number of its bytes:
/// `Tag(0x5F50)` is the OpenPGP URL DO, `Tag(0x5FC102)` the PIV CHUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// Number of bytes the tag occupies when encoded.
    pub const fn len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFF_FFFF => 3,
            _ => 4,
        }
    }

    /// Whether the encoded tag is empty (never: the smallest tag is one byte).
    pub const fn is_empty(self) -> bool {
        false
    }

    /// The first byte of the encoded tag.
    const fn first_byte(self) -> u8 {
        (self.0 >> (8 * (self.len() - 1))) as u8
    }

    /// Whether bit 6 of the first byte marks the value as BER-TLV encoded (§5.2.2.1).
    pub const fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes()[4 - self.len()..]);
    }
}

impl core::fmt::Debug for Tag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Tag({:0width$X})", self.0, width = self.len() * 2)
    }
}

impl From<u32> for Tag {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

/// One data object, borrowing its value from the parsed buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    tag: Tag,
    value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The value bytes.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The objects inside this one's value (for constructed objects, or for primitive
    /// objects whose value the application defines as BER-TLV, like PIV's `53`).
    pub fn children(&self) -> Iter<'a> {
        parse(self.value)
    }
}

impl core::fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?} len {}", self.tag, self.value.len())
    }
}

/// Iterator over the data objects of a buffer; see [`parse`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    input: &'a [u8],
    offset: usize,
    failed: bool,
}

/// Reads the data objects in `input` one after another, skipping `00`/`FF` padding between
/// them. After the first malformed object the iterator yields that error and stops.
pub fn parse(input: &[u8]) -> Iter<'_> {
    Iter { input, offset: 0, failed: false }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Tlv<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while matches!(self.input.get(self.offset), Some(0x00 | 0xFF)) {
            self.offset += 1;
        }
        if self.offset >= self.input.len() {
            return None;
        }
        let item = read_one(self.input, self.offset);
        match &item {
            Ok((_, next)) => self.offset = *next,
            Err(_) => self.failed = true,
        }
        Some(item.map(|(tlv, _)| tlv))
    }
}

/// Decodes the object starting at `start`; returns it and the offset after it.
fn read_one(input: &[u8], start: usize) -> Result<(Tlv<'_>, usize), Error> {
    let fault = |offset, fault| Error::MalformedTlv { offset, fault };
    let byte = |at: usize| input.get(at).copied().ok_or(fault(at, TlvFault::Truncated));

    // Tag, §5.2.2.1: low five bits all set mean "more tag bytes follow", each with b8 set
    // while another follows.
    let mut pos = start;
    let first = byte(pos)?;
    pos += 1;
    let mut tag = first as u32;
    if first & 0x1F == 0x1F {
        loop {
            let b = byte(pos)?;
            pos += 1;
            if pos - start > 3 {
                return Err(fault(start, TlvFault::TagTooLong));
            }
            tag = (tag << 8) | b as u32;
            if b & 0x80 == 0 {
                break;
            }
        }
    }

    // Length, §5.2.2.2: one byte up to 127, or 81..84 followed by that many bytes.
    let len_at = pos;
    let first_len = byte(pos)?;
    pos += 1;
    let len = match first_len {
        0x00..=0x7F => first_len as usize,
        0x81..=0x84 => {
            let n = (first_len & 0x7F) as usize;
            let mut len = 0usize;
            for _ in 0..n {
                len = (len << 8) | byte(pos)? as usize;
                pos += 1;
            }
            len
        }
        _ => return Err(fault(len_at, TlvFault::BadLength)),
    };

    let end = pos.checked_add(len).filter(|&e| e <= input.len());
    let end = end.ok_or(fault(len_at, TlvFault::Truncated))?;
    Ok((Tlv { tag: Tag(tag), value: &input[pos..end] }, end))
}

/// The value of the first top-level object with `tag`, or `None`.
pub fn find(input: &[u8], tag: impl Into<Tag>) -> Result<Option<&[u8]>, Error> {
    let tag = tag.into();
    for tlv in parse(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv.value));
        }
    }
    Ok(None)
}

/// The value of the first top-level object with `tag`, or
/// [`Error::MissingDataObject`].
pub fn require(input: &[u8], tag: impl Into<Tag>) -> Result<&[u8], Error> {
    let tag = tag.into();
    find(input, tag)?.ok_or(Error::MissingDataObject { tag: tag.0 })
}

/// The value of the first object with `tag` at any depth up to [`MAX_DEPTH`], searching
/// depth-first through constructed objects. This is how OpenPGP clients find a DO such
/// as `C5` (fingerprints) inside `6E` → `73` (OpenPGP card 3.4 §4.4.1).
pub fn find_nested(input: &[u8], tag: impl Into<Tag>) -> Result<Option<&[u8]>, Error> {
    let tag = tag.into();
    // An explicit stack instead of recursion: the depth bound is enforced, not hoped for.
    let mut stack: Vec<Iter<'_>> = vec![parse(input)];
    while let Some(iter) = stack.last_mut() {
        match iter.next() {
            None => {
                stack.pop();
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(tlv)) if tlv.tag == tag => return Ok(Some(tlv.value)),
            Some(Ok(tlv)) if tlv.tag.is_constructed() => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::MalformedTlv { offset: 0, fault: TlvFault::TooDeep });
                }
                stack.push(tlv.children());
            }
            Some(Ok(_)) => {}
        }
    }
    Ok(None)
}

/// Appends a length field in the shortest form (§5.2.2.2; DER's rule).
pub fn write_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0x83);
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        }
        _ => {
            out.push(0x84);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

/// Appends a tag and a length, leaving the value to the caller (for values written in
/// pieces, and for the tag–length lists of OpenPGP's `7F48`).
pub fn write_header(out: &mut Vec<u8>, tag: impl Into<Tag>, len: usize) {
    tag.into().write(out);
    write_length(out, len);
}

/// Appends one complete object.
pub fn write(out: &mut Vec<u8>, tag: impl Into<Tag>, value: &[u8]) {
    write_header(out, tag, value.len());
    out.extend_from_slice(value);
}

/// Appends a constructed object whose value `body` writes. The value is written in place
/// and the header inserted in front of it afterwards, so nothing is built twice.
pub fn write_constructed(out: &mut Vec<u8>, tag: impl Into<Tag>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    body(out);
    let len = out.len() - start;
    let mut header = Vec::with_capacity(8);
    write_header(&mut header, tag, len);
    out.splice(start..start, header);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlvs(input: &[u8]) -> Vec<(u32, Vec<u8>)> {
        parse(input)
            .map(|t| t.map(|t| (t.tag().0, t.value().to_vec())))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn reads_one_two_and_three_byte_tags_and_long_lengths() {
        let mut input =
            vec![0x4F, 0x02, 0xAA, 0xBB, 0x5F, 0x50, 0x00, 0x5F, 0xC1, 0x02, 0x81, 0x80];
        input.extend_from_slice(&[0x11; 0x80]);
        let got = tlvs(&input);
        assert_eq!(got[0], (0x4F, vec![0xAA, 0xBB]));
        assert_eq!(got[1], (0x5F50, vec![]));
        assert_eq!(got[2], (0x5FC102, vec![0x11; 0x80]));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn skips_padding_between_objects() {
        assert_eq!(tlvs(&[0x00, 0xFF, 0x80, 0x01, 0x07, 0x00, 0x00]), [(0x80, vec![7])]);
    }

    #[test]
    fn malformed_input_names_offset_and_fault() {
        let err = |input: &[u8]| parse(input).find_map(Result::err);
        assert!(matches!(
            err(&[0x80, 0x05, 1]),
            Some(Error::MalformedTlv { offset: 1, fault: TlvFault::Truncated })
        ));
        assert!(matches!(
            err(&[0x80, 0x80]),
            Some(Error::MalformedTlv { fault: TlvFault::BadLength, .. })
        ));
        assert!(matches!(
            err(&[0x80, 0x85, 0, 0, 0, 0, 1]),
            Some(Error::MalformedTlv { fault: TlvFault::BadLength, .. })
        ));
        assert!(matches!(
            err(&[0x5F, 0x81, 0x82, 0x03, 0x00]),
            Some(Error::MalformedTlv { offset: 0, fault: TlvFault::TagTooLong })
        ));
        assert!(matches!(
            err(&[0x5F]),
            Some(Error::MalformedTlv { fault: TlvFault::Truncated, .. })
        ));
        // After an error the iterator stops.
        assert_eq!(parse(&[0x80, 0x05, 1]).count(), 1);
    }

    #[test]
    fn a_huge_length_cannot_overflow() {
        let r = parse(&[0x80, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0]).next();
        assert!(matches!(r, Some(Err(Error::MalformedTlv { fault: TlvFault::Truncated, .. }))));
    }

    #[test]
    fn find_nested_descends_into_constructed_objects() {
        // 6E { 4F .., 73 { C0 .., C5 .. } }, as in OpenPGP application related data.
        let mut inner = Vec::new();
        write(&mut inner, 0xC0, &[1, 2]);
        write(&mut inner, 0xC5, &[0xF0; 4]);
        let mut data = Vec::new();
        write_constructed(&mut data, 0x6E, |out| {
            write(out, 0x4F, &[0xD2, 0x76]);
            write(out, 0x73, &inner);
        });
        assert_eq!(find_nested(&data, 0xC5).ok().flatten(), Some(&[0xF0; 4][..]));
        assert_eq!(find(&data, 0xC5).ok().flatten(), None);
        assert!(matches!(require(&data, 0xC5), Err(Error::MissingDataObject { tag: 0xC5 })));
        assert!(find_nested(&data, 0x99).is_ok_and(|v| v.is_none()));
    }

    #[test]
    fn find_nested_refuses_deep_nesting_instead_of_recursing() {
        let mut data = vec![0x80, 0x00];
        for _ in 0..100 {
            let mut outer = Vec::new();
            write(&mut outer, 0x7F21, &data);
            data = outer;
        }
        assert!(matches!(
            find_nested(&data, 0x80),
            Err(Error::MalformedTlv { fault: TlvFault::TooDeep, .. })
        ));
    }

    #[test]
    fn writer_uses_the_shortest_length_form() {
        for (len, header) in [
            (0usize, &[0x80u8, 0][..]),
            (127, &[0x80, 0x7F]),
            (128, &[0x80, 0x81, 0x80]),
            (256, &[0x80, 0x82, 1, 0]),
            (70_000, &[0x80, 0x83, 1, 0x11, 0x70]),
        ] {
            let mut out = Vec::new();
            write(&mut out, 0x80, &vec![0; len]);
            assert_eq!(&out[..header.len()], header, "len {len}");
            assert_eq!(out.len(), header.len() + len);
        }
        let mut out = Vec::new();
        write_header(&mut out, 0x7F48, 3);
        assert_eq!(out, [0x7F, 0x48, 3]);
        assert!(Tag(0x7F48).is_constructed() && !Tag(0x5F50).is_constructed());
        assert_eq!(format!("{:?}", Tag(0x5FC102)), "Tag(5FC102)");
    }

    #[test]
    fn agrees_with_iso7816_tlv_on_well_formed_objects() {
        use iso7816_tlv::ber;
        let mut data = Vec::new();
        write_constructed(&mut data, 0x7F49, |out| {
            write(out, 0x81, &[0xC3; 300]);
            write(out, 0x82, &[1, 0, 1]);
        });
        let oracle = ber::Tlv::from_bytes(&data).map_err(|e| format!("{e:?}"));
        let Ok(oracle) = oracle else { panic!("oracle rejected our encoding: {oracle:?}") };
        assert_eq!(oracle.to_vec(), data, "oracle re-encodes identically");
        let ours: Vec<_> = parse(&data).collect::<Result<_, _>>().unwrap_or_default();
        assert_eq!(ours.len(), 1);
        let children: Vec<_> = ours[0].children().collect::<Result<_, _>>().unwrap_or_default();
        let ber::Value::Constructed(theirs) = oracle.value() else { panic!("not constructed") };
        assert_eq!(children.len(), theirs.len());
        for (a, b) in children.iter().zip(theirs) {
            assert_eq!(Tag(a.tag().0).len(), b.tag().len_as_bytes());
            let ber::Value::Primitive(v) = b.value() else { panic!("nested") };
            assert_eq!(a.value(), &v[..]);
        }
    }
}
