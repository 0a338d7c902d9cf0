//! Command and response APDUs, ISO/IEC 7816-4 §5.1.
//!
//! A [`Command`] encodes itself in the short or extended form (§5.1, cases 1–4); a
//! [`Response`] is the response data followed by the status word. Command data and response
//! data are zeroized on drop, and [`Command`]s that carry PINs, keys or management-key
//! cryptograms print their data as `[N bytes redacted]`.

use zeroize::Zeroizing;

use crate::error::Error;
use crate::status::StatusWord;

/// Largest data field of a short APDU (Lc is one byte).
pub const SHORT_MAX_DATA: usize = 255;
/// Largest response a short APDU can ask for (Le `00` means 256).
pub const SHORT_MAX_LE: usize = 256;
/// Largest data field of an extended APDU (Lc is two bytes after a `00`).
pub const EXTENDED_MAX_DATA: usize = 65_535;
/// Largest response an extended APDU can ask for (Le `0000` means 65 536).
pub const EXTENDED_MAX_LE: usize = 65_536;
/// Bit in CLA that marks a command as not the last of a chain (§5.1.1.1).
pub const CLA_CHAINING: u8 = 0x10;
/// Instruction byte of GET RESPONSE (§7.6.1).
pub const INS_GET_RESPONSE: u8 = 0xC0;

/// The expected response length, Le (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Le {
    /// No response data expected (cases 1 and 3): the Le field is absent.
    #[default]
    None,
    /// Up to this many bytes (1 ..= 65 536).
    Exactly(u32),
    /// As many as the card has: `00` in short form (256), `0000` in extended form (65 536).
    Max,
}

impl Le {
    /// The number of bytes this Le asks for in the given form; `None` when absent.
    pub fn expected(self, extended: bool) -> Option<usize> {
        match self {
            Self::None => None,
            Self::Exactly(n) => Some(n as usize),
            Self::Max if extended => Some(EXTENDED_MAX_LE),
            Self::Max => Some(SHORT_MAX_LE),
        }
    }
}

/// A command APDU: header CLA INS P1 P2, optional data, optional Le.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    data: Zeroizing<Vec<u8>>,
    /// Expected response length.
    pub le: Le,
}

impl Command {
    /// A command without data and without Le (case 1).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self { cla, ins, p1, p2, data: Zeroizing::new(Vec::new()), le: Le::None }
    }

    /// Sets the command data (copied into a buffer that is zeroized on drop).
    pub fn with_data(mut self, data: &[u8]) -> Self {
        self.data = Zeroizing::new(data.to_vec());
        self
    }

    /// Sets the command data, taking ownership of a buffer that is zeroized on drop.
    pub fn with_secret_data(mut self, data: Zeroizing<Vec<u8>>) -> Self {
        self.data = data;
        self
    }

    /// Sets Le.
    pub fn with_le(mut self, le: Le) -> Self {
        self.le = le;
        self
    }

    /// The command data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Whether this command must use the extended form to carry its data and Le in one
    /// APDU (data over 255 bytes or Le over 256).
    pub fn needs_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_DATA
            || matches!(self.le, Le::Exactly(n) if n as usize > SHORT_MAX_LE)
    }

    /// Encodes the command, choosing the short form where it suffices and the extended
    /// form otherwise.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut out = Zeroizing::new(Vec::with_capacity(9 + self.data.len()));
        self.encode_into(self.needs_extended(), &mut out)?;
        Ok(out)
    }

    /// Appends the encoding to `out`, in the extended form if `extended` is set (§5.1:
    /// Lc as `00 hi lo`, Le as `hi lo`, or `00 hi lo` in case 2E) and in the short form
    /// otherwise. Fails if the short form cannot carry the data or the Le.
    pub fn encode_into(&self, extended: bool, out: &mut Vec<u8>) -> Result<(), Error> {
        let len = self.data.len();
        let le = self.le.expected(extended);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if extended {
            if len > EXTENDED_MAX_DATA {
                return Err(Error::CommandTooLong { len, max: EXTENDED_MAX_DATA });
            }
            if len > 0 {
                out.push(0);
                out.extend_from_slice(&(len as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = le {
                if le == 0 || le > EXTENDED_MAX_LE {
                    return Err(Error::MalformedCommand { reason: "Le out of range" });
                }
                if len == 0 {
                    out.push(0);
                }
                // 65 536 wraps to 0000, as §5.1 specifies.
                out.extend_from_slice(&(le as u16).to_be_bytes());
            }
        } else {
            if len > SHORT_MAX_DATA {
                return Err(Error::CommandTooLong { len, max: SHORT_MAX_DATA });
            }
            if len > 0 {
                out.push(len as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(le) = le {
                if le == 0 || le > SHORT_MAX_LE {
                    return Err(Error::MalformedCommand { reason: "Le out of range" });
                }
                // 256 wraps to 00.
                out.push(le as u8);
            }
        }
        Ok(())
    }

    /// Decodes a command APDU in either form (§5.1, cases 1, 2S/E, 3S/E, 4S/E).
    ///
    /// This is what a card (the software card) does with the bytes it receives; it
    /// rejects every encoding whose length fields disagree with the byte count.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let malformed = |reason| Error::MalformedCommand { reason };
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(malformed("shorter than the four header bytes"));
        };
        let mut command = Self::new(*cla, *ins, *p1, *p2);
        match body {
            [] => {}
            [le] => command.le = short_le(*le),
            [0, hi, lo] => command.le = extended_le(*hi, *lo),
            [0, hi, lo, tail @ ..] => {
                let lc = u16::from_be_bytes([*hi, *lo]) as usize;
                if lc == 0 {
                    return Err(malformed("extended Lc of zero"));
                }
                match tail.len().checked_sub(lc) {
                    Some(0) => {}
                    Some(2) => command.le = extended_le(tail[lc], tail[lc + 1]),
                    _ => return Err(malformed("extended Lc does not match the data")),
                }
                command.data = Zeroizing::new(tail[..lc].to_vec());
            }
            [0, _] => return Err(malformed("truncated extended length")),
            [lc, tail @ ..] => {
                let lc = *lc as usize;
                match tail.len().checked_sub(lc) {
                    Some(0) => {}
                    Some(1) => command.le = short_le(tail[lc]),
                    _ => return Err(malformed("Lc does not match the data")),
                }
                command.data = Zeroizing::new(tail[..lc].to_vec());
            }
        }
        Ok(command)
    }

    /// Whether the command data is secret (PINs, private keys, management-key
    /// cryptograms) and must never be logged.
    pub fn has_secret_data(&self) -> bool {
        command_data_is_secret(self.ins, self.p1, self.p2)
    }

    /// Whether the response data of this command is secret (decrypted session keys, ECDH
    /// shared secrets, management-key cryptograms).
    pub fn has_secret_response(&self) -> bool {
        response_data_is_secret(self.ins, self.p1, self.p2) || self.reads_piv_printed_object()
    }

    /// GET DATA of the PIV PRINTED object (`CB 3F FF` with tag list `5C 03 5F C1 09`,
    /// SP 800-73-4 part 1 table 3), where ykman keeps the PIN-protected management key.
    fn reads_piv_printed_object(&self) -> bool {
        self.ins == 0xCB
            && self.p1 == 0x3F
            && self.p2 == 0xFF
            && self.data[..] == [0x5C, 0x03, 0x5F, 0xC1, 0x09]
    }

    /// Builds the next command of a chain from the chunk `range` of this command's data.
    pub(crate) fn chunk(&self, range: core::ops::Range<usize>, last: bool) -> Self {
        Self {
            cla: if last { self.cla } else { self.cla | CLA_CHAINING },
            ins: self.ins,
            p1: self.p1,
            p2: self.p2,
            data: Zeroizing::new(self.data[range].to_vec()),
            le: if last { self.le } else { Le::None },
        }
    }
}

// Parsing always yields `Le::Exactly`: `00` is 256 in short form and `0000` 65 536 in
// extended form (§5.1), so a parsed command re-encodes to an equal command whichever
// form the encoder picks.
fn short_le(byte: u8) -> Le {
    Le::Exactly(if byte == 0 { 256 } else { byte as u32 })
}

fn extended_le(hi: u8, lo: u8) -> Le {
    Le::Exactly(match u16::from_be_bytes([hi, lo]) {
        0 => 65_536,
        n => n as u32,
    })
}

/// Instructions whose command data is secret, across the applets keystation speaks:
/// VERIFY (`20`), CHANGE REFERENCE DATA (`24`), RESET RETRY COUNTER (`2C`), GENERAL
/// AUTHENTICATE (`87`, management-key cryptograms), PUT DATA odd (`DB`: OpenPGP key import,
/// PIV objects including the PIN-protected management key), Yubico PIV IMPORT KEY (`FE`)
/// and SET MANAGEMENT KEY (`FF`); and OpenPGP PUT DATA (`DA`) of the resetting code
/// (`00D3`) and of the KDF data object (`00F9`, hashed PIN material; OpenPGP card 3.4.1
/// §4.3.2).
fn command_data_is_secret(ins: u8, p1: u8, p2: u8) -> bool {
    matches!(ins, 0x20 | 0x24 | 0x2C | 0x87 | 0xDB | 0xFE | 0xFF)
        || (ins == 0xDA && p1 == 0x00 && matches!(p2, 0xD3 | 0xF9))
}

/// PSO:DECIPHER (`2A 80 86`) returns a session key; GENERAL AUTHENTICATE returns ECDH
/// shared secrets and management-key cryptograms.
fn response_data_is_secret(ins: u8, p1: u8, p2: u8) -> bool {
    (ins == 0x2A && p1 == 0x80 && p2 == 0x86) || ins == 0x87
}

impl core::fmt::Debug for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Command({self})")
    }
}

/// Hex of the header, and the data unless it is secret: `00 20 00 81 [6 bytes redacted]`.
impl core::fmt::Display for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02X} {:02X} {:02X} {:02X}", self.cla, self.ins, self.p1, self.p2)?;
        if !self.data.is_empty() {
            f.write_str(" ")?;
            HexOrRedacted { bytes: &self.data, secret: self.has_secret_data() }.fmt(f)?;
        }
        match self.le {
            Le::None => Ok(()),
            Le::Max => f.write_str(" Le=max"),
            Le::Exactly(n) => write!(f, " Le={n}"),
        }
    }
}

/// Prints bytes as spaced hex, or only their count when they are secret.
pub struct HexOrRedacted<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// Whether to hide them.
    pub secret: bool,
}

impl core::fmt::Display for HexOrRedacted<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.secret {
            return write!(f, "[{} bytes redacted]", self.bytes.len());
        }
        for (i, b) in self.bytes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// A response APDU: response data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    data: Zeroizing<Vec<u8>>,
    status: StatusWord,
}

impl Response {
    /// A response with the given data and status.
    pub fn new(data: Vec<u8>, status: StatusWord) -> Self {
        Self { data: Zeroizing::new(data), status }
    }

    /// Splits received bytes into data and the trailing SW1 SW2.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        match bytes {
            [data @ .., sw1, sw2] => {
                Ok(Self::new(data.to_vec(), StatusWord::from_bytes(*sw1, *sw2)))
            }
            _ => Err(Error::ResponseTooShort { len: bytes.len() }),
        }
    }

    /// The status word.
    pub fn status(&self) -> StatusWord {
        self.status
    }

    /// The response data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The response data if the status is `9000`, else [`Error::Status`].
    pub fn into_data(self) -> Result<Zeroizing<Vec<u8>>, Error> {
        if self.status.is_success() { Ok(self.data) } else { Err(Error::Status(self.status)) }
    }

    /// `Ok(self)` if the status is `9000`, else [`Error::Status`].
    pub fn check(self) -> Result<Self, Error> {
        if self.status.is_success() { Ok(self) } else { Err(Error::Status(self.status)) }
    }

    /// Encodes data followed by SW1 SW2, as a card sends it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.0.to_be_bytes());
        out
    }

    pub(crate) fn append(&mut self, more: &[u8]) {
        self.data.extend_from_slice(more);
    }

    pub(crate) fn set_status(&mut self, status: StatusWord) {
        self.status = status;
    }
}

impl core::fmt::Debug for Response {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Response data may be a decrypted key; Debug never shows it.
        write!(f, "Response({} data bytes, {})", self.data.len(), self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(c: &Command) -> Vec<u8> {
        c.encode().map(|z| z.to_vec()).unwrap_or_default()
    }

    #[test]
    fn the_four_short_cases() {
        let select = Command::new(0, 0xA4, 4, 0);
        assert_eq!(enc(&select), [0, 0xA4, 4, 0]);
        assert_eq!(enc(&select.clone().with_le(Le::Max)), [0, 0xA4, 4, 0, 0]);
        assert_eq!(enc(&select.clone().with_le(Le::Exactly(256))), [0, 0xA4, 4, 0, 0]);
        let with_data = select.with_data(&[0xD2, 0x76]);
        assert_eq!(enc(&with_data), [0, 0xA4, 4, 0, 2, 0xD2, 0x76]);
        assert_eq!(enc(&with_data.with_le(Le::Exactly(7))), [0, 0xA4, 4, 0, 2, 0xD2, 0x76, 7]);
    }

    #[test]
    fn extended_form_is_chosen_for_long_data_and_large_le() {
        let c = Command::new(0, 0x47, 0x81, 0).with_le(Le::Exactly(1024));
        assert!(c.needs_extended());
        assert_eq!(enc(&c), [0, 0x47, 0x81, 0, 0, 0x04, 0x00]);
        let data = vec![0xAB; 300];
        let c = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&data).with_le(Le::Max);
        let e = enc(&c);
        assert_eq!(&e[..7], &[0, 0xDB, 0x3F, 0xFF, 0, 0x01, 0x2C]);
        assert_eq!(e.len(), 7 + 300 + 2);
        assert_eq!(&e[e.len() - 2..], &[0, 0]);
    }

    #[test]
    fn short_form_refuses_what_it_cannot_carry() {
        let c = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&[0; 256]);
        let mut out = Vec::new();
        assert!(matches!(
            c.encode_into(false, &mut out),
            Err(Error::CommandTooLong { len: 256, max: 255 })
        ));
        let c = Command::new(0, 0xB0, 0, 0).with_le(Le::Exactly(0));
        assert!(matches!(c.encode(), Err(Error::MalformedCommand { .. })));
    }

    #[test]
    fn parse_inverts_encode_in_every_case() {
        let cases = [
            Command::new(0, 0xA4, 4, 0),
            Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Exactly(256)),
            Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Exactly(5)),
            Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Exactly(65_536)),
            Command::new(0, 0x20, 0, 0x81).with_data(b"123456"),
            Command::new(0, 0x2A, 0x9E, 0x9A).with_data(&[1; 51]).with_le(Le::Exactly(256)),
            Command::new(0, 0x47, 0x81, 0).with_le(Le::Exactly(4096)),
            Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&[7; 1000]),
            Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&[7; 1000]).with_le(Le::Exactly(300)),
        ];
        for c in cases {
            let parsed = Command::parse(&enc(&c)).map_err(|e| e.to_string());
            assert_eq!(parsed.as_ref().map(|p| p.to_string()), Ok(c.to_string()), "{c}");
            assert_eq!(parsed.ok(), Some(c.clone()));
        }
    }

    #[test]
    fn parsed_le_is_a_count_in_either_form() {
        let short_max = Command::parse(&[0, 0xCA, 0, 0x6E, 0]).map(|c| c.le).ok();
        assert_eq!(short_max, Some(Le::Exactly(256)));
        let ext_max = Command::parse(&[0, 0xCA, 0, 0x6E, 0, 0, 0]).map(|c| c.le).ok();
        assert_eq!(ext_max, Some(Le::Exactly(65_536)));
        // Extended 0100 asks for 256, which the short form carries as 00: still equal.
        let ext_256 = Command::parse(&[0, 0xCA, 0, 0x7E, 0, 1, 0]).ok();
        let reparsed = ext_256.as_ref().and_then(|c| Command::parse(&enc(c)).ok());
        assert_eq!(reparsed, ext_256);
    }

    #[test]
    fn parse_rejects_inconsistent_lengths() {
        for bad in [
            &[0u8, 0xA4, 4][..],
            &[0, 0xA4, 4, 0, 3, 1, 2],
            &[0, 0xA4, 4, 0, 1, 1, 2, 3],
            &[0, 0xA4, 4, 0, 0, 1],
            &[0, 0xA4, 4, 0, 0, 0, 0, 1],
            &[0, 0xA4, 4, 0, 0, 0, 2, 1],
        ] {
            assert!(
                matches!(Command::parse(bad), Err(Error::MalformedCommand { .. })),
                "{bad:02X?}"
            );
        }
    }

    #[test]
    fn secret_data_is_redacted_in_display_and_debug() {
        let verify = Command::new(0, 0x20, 0, 0x81).with_data(b"123456");
        assert_eq!(verify.to_string(), "00 20 00 81 [6 bytes redacted]");
        assert!(!format!("{verify:?}").contains("31"));
        let get = Command::new(0, 0xCA, 0, 0x6E).with_data(&[0x5C, 1]).with_le(Le::Max);
        assert_eq!(get.to_string(), "00 CA 00 6E 5C 01 Le=max");
        assert!(Command::new(0, 0x2A, 0x80, 0x86).has_secret_response());
        assert!(!Command::new(0, 0x2A, 0x9E, 0x9A).has_secret_response());
        let printed = Command::new(0, 0xCB, 0x3F, 0xFF).with_data(&[0x5C, 0x03, 0x5F, 0xC1, 0x09]);
        assert!(printed.has_secret_response());
        let chuid = Command::new(0, 0xCB, 0x3F, 0xFF).with_data(&[0x5C, 0x03, 0x5F, 0xC1, 0x02]);
        assert!(!chuid.has_secret_response());
        // The OpenPGP resetting code and KDF DO are secret; cardholder name is not.
        let resetting_code = Command::new(0, 0xDA, 0, 0xD3).with_data(b"87654321");
        assert_eq!(resetting_code.to_string(), "00 DA 00 D3 [8 bytes redacted]");
        assert!(Command::new(0, 0xDA, 0, 0xF9).with_data(&[0x81, 1, 3]).has_secret_data());
        assert!(!Command::new(0, 0xDA, 0, 0x5B).with_data(b"Doe<<Jo").has_secret_data());
    }

    #[test]
    fn response_splits_status() {
        let r = Response::parse(&[1, 2, 0x90, 0]).ok();
        assert_eq!(r.as_ref().map(|r| r.data()), Some(&[1u8, 2][..]));
        assert_eq!(r.map(|r| r.status()), Some(StatusWord::SUCCESS));
        assert!(matches!(Response::parse(&[0x90]), Err(Error::ResponseTooShort { len: 1 })));
        let failed = Response::parse(&[0x69, 0x82]).map(Response::into_data);
        assert!(matches!(
            failed,
            Ok(Err(Error::Status(StatusWord::SECURITY_STATUS_NOT_SATISFIED)))
        ));
        assert_eq!(Response::new(vec![9], StatusWord::SUCCESS).to_bytes(), [9, 0x90, 0]);
        assert_eq!(
            format!("{:?}", Response::new(vec![9], StatusWord::SUCCESS)),
            "Response(1 data bytes, 9000 (success))"
        );
    }
}
