//! The `vpcd_frames` target: vsmartcard's vpcd framing (`keystation_softcard::vpcd`) on an
//! arbitrary byte stream, delivered in arbitrary pieces.

use std::io::{self, Read};

use keystation_softcard::vpcd::{self, FrameReader, Message};

/// A connection that hands out the stream in pieces whose sizes come from a small
/// generator, with time-outs in between, as a TCP socket with a read time-out does.
struct Pieces<'a> {
    stream: &'a [u8],
    state: u32,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // xorshift32: cheap, deterministic per input.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        if self.state.is_multiple_of(7) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let size = [1, 2, 3, 7, 64, 4096, usize::MAX][(self.state >> 8) as usize % 7];
        let n = size.min(buf.len()).min(self.stream.len());
        let (piece, rest) = self.stream.split_at(n);
        buf[..n].copy_from_slice(piece);
        self.stream = rest;
        Ok(n)
    }
}

/// The framing: [`vpcd::decode`] on the whole input splits it into frames and an
/// incomplete tail, each frame re-encoding ([`vpcd::encode`]) to exactly its bytes and
/// each payload surviving [`Message`]'s reading; a [`FrameReader`] fed the same bytes in
/// pieces (byte 0 seeds the piece sizes) returns the same payloads, in order, keeps the
/// same tail, and never buffers more than its capacity.
pub fn vpcd_frames(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else { return };

    let mut expected = Vec::new();
    let mut rest = stream;
    while let Some((payload, taken)) = vpcd::decode(rest) {
        assert_eq!(taken, vpcd::HEADER_LEN + payload.len(), "frame size");
        let encoded = vpcd::encode(payload).expect("a decoded payload fits a frame");
        assert_eq!(encoded, rest[..taken], "decode/encode round trip");
        let message = Message::from_payload(payload);
        assert_eq!(message.to_payload(), payload, "payload/message round trip");
        assert_eq!(matches!(message, Message::Apdu(_)), payload.len() > 1, "APDUs are long");
        expected.push(payload);
        rest = &rest[taken..];
    }
    assert!(rest.len() < vpcd::MAX_FRAME, "an incomplete frame is shorter than any frame");

    let mut connection = Pieces { stream, state: u32::from(seed).wrapping_mul(0x9E37_79B9) | 1 };
    let mut frames = FrameReader::new();
    let mut got = Vec::new();
    loop {
        while let Some(payload) = frames.next_payload() {
            got.push(payload);
        }
        match frames.read_from(&mut connection) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => assert_eq!(error.kind(), io::ErrorKind::WouldBlock, "{error}"),
        }
        assert!(frames.buffered() <= FrameReader::CAPACITY, "buffer bound");
    }
    assert_eq!(got, expected, "frames read in pieces");
    assert_eq!(frames.buffered(), rest.len(), "the incomplete tail stays buffered");
}
