//! The card side of vsmartcard's vpcd protocol: framing and messages.
//!
//! vpcd, the virtual smart card reader of vsmartcard (Frank Morgner; the pcscd driver
//! `libifdvpcd.so`, protocol described in vsmartcard's "Creating a virtual smart card"
//! documentation and in `virtualsmartcard/src/vpcd/vpcd.h`), listens on a TCP port per
//! reader slot. A virtual card is inserted by connecting to it and removed by closing the
//! connection. Both directions carry frames: a 2-byte big-endian length, then that many
//! payload bytes. From vpcd, a 1-byte payload is a control code (`VPCD_CTRL_OFF` `00`,
//! `VPCD_CTRL_ON` `01`, `VPCD_CTRL_RESET` `02`, `VPCD_CTRL_ATR` `04`), answered only for
//! `04` (with the ATR); any longer payload is a command APDU, answered with the response
//! APDU.
//!
//! Everything here is total and bounded: [`decode`] never allocates, [`encode`] refuses
//! payloads the 2-byte length cannot carry, and a [`FrameReader`] never buffers more than
//! [`FrameReader::CAPACITY`] bytes, whatever the peer sends.

use std::io::{self, Read};

/// The size of a frame's length prefix (a big-endian `u16`).
pub const HEADER_LEN: usize = 2;
/// The longest payload a frame can carry.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// The longest frame, header included.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;

/// Frames `payload`: its length as two big-endian bytes, then the payload. `None` when
/// the payload is longer than [`MAX_PAYLOAD`], which no frame can carry.
pub fn encode(payload: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(payload.len()).ok()?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    Some(frame)
}

/// The first whole frame at the start of `bytes`: its payload and the number of bytes the
/// frame takes (header included). `None` while the frame is incomplete (fewer than two
/// bytes, or fewer payload bytes than the header announces); every input is either that
/// or a frame.
pub fn decode(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let [high, low, rest @ ..] = bytes else { return None };
    let length = usize::from(u16::from_be_bytes([*high, *low]));
    let payload = rest.get(..length)?;
    Some((payload, HEADER_LEN + length))
}

/// A vpcd control code: the single byte of a 1-byte payload from vpcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// `00` (`VPCD_CTRL_OFF`): the reader powers the card off.
    PowerOff,
    /// `01` (`VPCD_CTRL_ON`): the reader powers the card on.
    PowerOn,
    /// `02` (`VPCD_CTRL_RESET`): the reader resets the card.
    Reset,
    /// `04` (`VPCD_CTRL_ATR`): the reader asks for the ATR, the only control answered.
    GetAtr,
    /// Any other byte; vpcd defines none.
    Unknown(u8),
}

impl Control {
    /// The control with this code.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => Self::PowerOff,
            0x01 => Self::PowerOn,
            0x02 => Self::Reset,
            0x04 => Self::GetAtr,
            other => Self::Unknown(other),
        }
    }

    /// The control's code.
    pub const fn byte(self) -> u8 {
        match self {
            Self::PowerOff => 0x00,
            Self::PowerOn => 0x01,
            Self::Reset => 0x02,
            Self::GetAtr => 0x04,
            Self::Unknown(other) => other,
        }
    }
}

/// What one payload from vpcd asks of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message<'a> {
    /// An empty payload; vpcd sends none, and a card ignores it.
    Empty,
    /// A 1-byte payload: a control code.
    Control(Control),
    /// A longer payload: a command APDU (ISO/IEC 7816-4 §5.1), to be answered with the
    /// response APDU.
    Apdu(&'a [u8]),
}

impl<'a> Message<'a> {
    /// Reads a payload as vpcd means it.
    pub fn from_payload(payload: &'a [u8]) -> Self {
        match payload {
            [] => Self::Empty,
            [byte] => Self::Control(Control::from_byte(*byte)),
            apdu => Self::Apdu(apdu),
        }
    }

    /// The payload that carries this message ([`from_payload`](Self::from_payload)
    /// reversed).
    pub fn to_payload(self) -> Vec<u8> {
        match self {
            Self::Empty => Vec::new(),
            Self::Control(control) => vec![control.byte()],
            Self::Apdu(apdu) => apdu.to_vec(),
        }
    }
}

/// Reassembles the frames of a vpcd connection from what reads return, however the bytes
/// are split.
///
/// Take every whole frame ([`next_payload`](Self::next_payload) until `None`) before
/// reading more ([`read_from`](Self::read_from)): the buffer then holds at most one
/// incomplete frame and one read, never more than [`CAPACITY`](Self::CAPACITY) bytes.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// Bytes read but not yet returned as a frame.
    buffer: Vec<u8>,
}

impl FrameReader {
    /// The most bytes one [`read_from`](Self::read_from) asks for.
    pub const READ_CHUNK: usize = 4096;
    /// The most bytes the reader ever buffers: an incomplete frame and one read.
    pub const CAPACITY: usize = MAX_FRAME - 1 + Self::READ_CHUNK;

    /// A reader with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes and returns the payload of the first whole buffered frame, if there is one.
    pub fn next_payload(&mut self) -> Option<Vec<u8>> {
        let (payload, taken) = decode(&self.buffer)?;
        let payload = payload.to_vec();
        self.buffer.drain(..taken);
        Some(payload)
    }

    /// One read of at most [`READ_CHUNK`](Self::READ_CHUNK) bytes from `reader` into the
    /// buffer; returns what `reader.read` returned (`Ok(0)`: the peer closed the
    /// connection). Errors of the read (time-outs included) are returned as they are,
    /// with nothing buffered. Refused with [`io::ErrorKind::InvalidInput`] while a whole
    /// frame is waiting to be taken, which keeps the buffer bounded.
    pub fn read_from<R: Read + ?Sized>(&mut self, reader: &mut R) -> io::Result<usize> {
        if decode(&self.buffer).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a whole vpcd frame is buffered; take it before reading more",
            ));
        }
        let mut chunk = [0u8; Self::READ_CHUNK];
        let n = reader.read(&mut chunk)?;
        let read = chunk.get(..n).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a read returned more than was asked for")
        })?;
        self.buffer.extend_from_slice(read);
        Ok(n)
    }

    /// How many bytes are buffered (the start of the next frame, or whole frames not yet
    /// taken).
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A reader that returns the scripted chunks, one per read.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let chunk = self.0.remove(0);
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    #[test]
    fn frames_are_split_across_reads() {
        let mut reader = Chunks(vec![vec![0x00], vec![0x02, 0xAA], vec![0xBB, 0x00, 0x01, 0x04]]);
        let mut frames = FrameReader::new();
        assert_eq!(frames.read_from(&mut reader).unwrap(), 1);
        assert_eq!(frames.next_payload(), None);
        assert_eq!(frames.read_from(&mut reader).unwrap(), 2);
        assert_eq!(frames.next_payload(), None);
        assert_eq!(frames.read_from(&mut reader).unwrap(), 4);
        let error = frames.read_from(&mut reader).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "a whole frame is waiting");
        assert_eq!(frames.next_payload(), Some(vec![0xAA, 0xBB]));
        assert_eq!(frames.next_payload(), Some(vec![0x04]));
        assert_eq!(frames.buffered(), 0);
        assert_eq!(frames.read_from(&mut reader).unwrap(), 0, "closed");
    }

    #[test]
    fn encode_and_decode_agree_up_to_the_longest_payload() {
        for length in [0, 1, 2, 255, 256, MAX_PAYLOAD] {
            let payload = vec![0x5A; length];
            let frame = encode(&payload).unwrap();
            assert_eq!(frame.len(), HEADER_LEN + length);
            assert_eq!(decode(&frame), Some((&payload[..], frame.len())));
            assert_eq!(decode(&frame[..frame.len() - 1]), None);
        }
        assert_eq!(encode(&vec![0; MAX_PAYLOAD + 1]), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0x00]), None);
    }

    #[test]
    fn messages_are_read_as_vpcd_means_them() {
        assert_eq!(Message::from_payload(&[]), Message::Empty);
        assert_eq!(Message::from_payload(&[0x04]), Message::Control(Control::GetAtr));
        assert_eq!(Message::from_payload(&[0x03]), Message::Control(Control::Unknown(3)));
        let apdu = [0x00, 0xA4, 0x04, 0x00];
        assert_eq!(Message::from_payload(&apdu), Message::Apdu(&apdu));
        for byte in 0..=u8::MAX {
            assert_eq!(Control::from_byte(byte).byte(), byte);
        }
    }

    /// A peer that sends a frame at a time never makes the reader hold more than its
    /// capacity, even with the longest frames.
    #[test]
    fn the_buffer_stays_bounded() {
        let frame = encode(&vec![0x11; MAX_PAYLOAD]).unwrap();
        let stream: Vec<u8> = frame.iter().chain(&frame).chain(&frame).copied().collect();
        let mut source = &stream[..];
        let mut frames = FrameReader::new();
        let mut seen = 0;
        loop {
            while let Some(payload) = frames.next_payload() {
                assert_eq!(payload.len(), MAX_PAYLOAD);
                seen += 1;
            }
            if frames.read_from(&mut source).unwrap() == 0 {
                break;
            }
            assert!(frames.buffered() <= FrameReader::CAPACITY);
        }
        assert_eq!(seen, 3);
    }
}
