//! The bytes of pcscd's message protocol (pcsc-lite `src/winscard_msg.h`, protocol 4.4 and
//! 4.5): request encoding and total decoders for every reply this client reads.
//!
//! A request is a header — `struct rxHeader { uint32_t size; uint32_t command; }`, `size`
//! counting the bytes after the header — followed by one fixed-layout C struct (and, for
//! `SCARD_TRANSMIT`, the command APDU). Replies carry no header: the daemon writes back
//! the same struct with its output fields and `rv` filled in, and for `SCARD_TRANSMIT` the
//! response bytes after it. Every integer is in the host's byte order (client and daemon
//! share a machine), and every struct consists of 32-bit fields and byte arrays whose
//! sizes keep the fields aligned, so the layout is the same on every Linux target.
//!
//! The decoders take exactly the bytes of one struct and check what the daemon could get
//! wrong: a wrong size, an unterminated name, an ATR longer than `MAX_ATR_SIZE`, a response
//! length beyond what was asked for. They return an [`Answer`] inside a `Result`: the outer
//! error ([`Error::CommError`], with the reason in the debug log) means the reply was
//! malformed and the stream can no longer be trusted; the inner result is the PC/SC
//! return code (`rv`) the daemon sent.

use super::{Error, Protocols};

/// `PROTOCOL_VERSION_MAJOR` of every protocol this client speaks.
pub(crate) const PROTOCOL_MAJOR: i32 = 4;
/// The minor version announced first: 4.4, which pcsc-lite 1.8.24 to 2.2.x require
/// exactly and 2.4.1 and later accept in a backward mode.
pub(crate) const PROTOCOL_MINOR: i32 = 4;
/// The minor version announced when a daemon refuses 4.4 and reports 4.5 (pcsc-lite 2.3.0
/// to 2.4.0). 4.5 only adds `CMD_GET_READER_EVENTS`, which this client does not send; every
/// message it does send is the same in both.
pub(crate) const PROTOCOL_MINOR_FALLBACK: i32 = 5;

/// `MAX_READERNAME` (`pcsclite.h`): the size of a reader-name field, NUL included.
pub(crate) const MAX_READERNAME: usize = 128;
/// `MAX_ATR_SIZE` (`pcsclite.h`).
pub(crate) const MAX_ATR_SIZE: usize = 33;
/// `PCSCLITE_MAX_READERS_CONTEXTS` (`pcsclite.h`): entries in the reader-state array that
/// `CMD_GET_READERS_STATE` returns (and the most reader states one status-change call
/// may watch).
pub(crate) const MAX_READERS: usize = 16;
/// `MAX_BUFFER_SIZE_EXTENDED` (`pcsclite.h`): the largest command or response APDU
/// (4 header bytes, 3 Lc bytes, 64 KiB of data, 3 Le bytes, 2 status bytes).
pub(crate) const MAX_BUFFER_SIZE_EXTENDED: usize = 4 + 3 + (1 << 16) + 3 + 2;

/// The message codes of `enum pcsc_msg_commands` that this client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Command {
    /// `SCARD_ESTABLISH_CONTEXT`.
    EstablishContext = 0x01,
    /// `SCARD_RELEASE_CONTEXT`.
    ReleaseContext = 0x02,
    /// `SCARD_CONNECT`.
    Connect = 0x04,
    /// `SCARD_RECONNECT`.
    Reconnect = 0x05,
    /// `SCARD_DISCONNECT`.
    Disconnect = 0x06,
    /// `SCARD_BEGIN_TRANSACTION`.
    BeginTransaction = 0x07,
    /// `SCARD_END_TRANSACTION`.
    EndTransaction = 0x08,
    /// `SCARD_TRANSMIT`.
    Transmit = 0x09,
    /// `SCARD_STATUS`.
    Status = 0x0B,
    /// `SCARD_CANCEL`.
    #[cfg_attr(not(test), allow(dead_code))]
    Cancel = 0x0D,
    /// `CMD_VERSION`.
    Version = 0x11,
    /// `CMD_GET_READERS_STATE`.
    GetReadersState = 0x12,
    /// `CMD_WAIT_READER_STATE_CHANGE`.
    WaitReaderStateChange = 0x13,
    /// `CMD_STOP_WAITING_READER_STATE_CHANGE`.
    StopWaitingReaderStateChange = 0x14,
}

/// Sizes of the C structs (`sizeof`), as the daemon reads and writes them.
pub(crate) mod size {
    use super::{MAX_ATR_SIZE, MAX_READERNAME, MAX_READERS};

    /// `struct rxHeader`.
    pub(crate) const HEADER: usize = 8;
    /// `struct version_struct`.
    pub(crate) const VERSION: usize = 12;
    /// `struct establish_struct`.
    pub(crate) const ESTABLISH: usize = 12;
    /// `struct release_struct`.
    pub(crate) const RELEASE: usize = 8;
    /// `struct connect_struct`.
    pub(crate) const CONNECT: usize = 4 + MAX_READERNAME + 5 * 4;
    /// `struct reconnect_struct`.
    pub(crate) const RECONNECT: usize = 24;
    /// `struct disconnect_struct` and `struct end_struct`.
    pub(crate) const DISPOSE: usize = 12;
    /// `struct begin_struct`, `struct status_struct` and `struct cancel_struct`.
    pub(crate) const HANDLE_RV: usize = 8;
    /// `struct transmit_struct`.
    pub(crate) const TRANSMIT: usize = 32;
    /// `struct wait_reader_state_change`.
    pub(crate) const WAIT: usize = 8;
    /// `READER_STATE` (`eventhandler.h`): the name, three 32-bit fields, the ATR bytes,
    /// three bytes of padding that align the ATR length, and two more 32-bit fields.
    pub(crate) const READER_STATE: usize = MAX_READERNAME + 3 * 4 + MAX_ATR_SIZE + 3 + 2 * 4;
    /// The reader-state array (`READER_STATE readerStates[PCSCLITE_MAX_READERS_CONTEXTS]`).
    pub(crate) const READER_STATES: usize = READER_STATE * MAX_READERS;
}

/// Byte offsets inside `READER_STATE`.
mod reader_state {
    use super::{MAX_ATR_SIZE, MAX_READERNAME};
    pub(super) const EVENT_COUNTER: usize = MAX_READERNAME;
    pub(super) const READER_STATE: usize = EVENT_COUNTER + 4;
    pub(super) const SHARING: usize = READER_STATE + 4;
    pub(super) const ATR: usize = SHARING + 4;
    pub(super) const ATR_LENGTH: usize = (ATR + MAX_ATR_SIZE + 3) & !3;
    pub(super) const PROTOCOL: usize = ATR_LENGTH + 4;
}

/// What a well-formed reply says: the value, or the daemon's PC/SC error code.
pub(crate) type Answer<T> = Result<T, Error>;

/// The reply was not what the protocol allows.
fn malformed(what: &str) -> Error {
    tracing::debug!(reason = what, "malformed reply from pcscd");
    Error::CommError
}

/// Reads 32-bit fields out of one reply struct.
struct Fields<'a> {
    bytes: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Checks that `bytes` is exactly one struct of `expected` bytes.
    fn exact(bytes: &'a [u8], expected: usize, what: &str) -> Result<Self, Error> {
        if bytes.len() == expected { Ok(Self { bytes }) } else { Err(malformed(what)) }
    }

    /// The `u32` at byte `offset`.
    fn u32(&self, offset: usize) -> Result<u32, Error> {
        let field = self
            .bytes
            .get(offset..offset.saturating_add(4))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or_else(|| malformed("field outside the struct"))?;
        Ok(u32::from_ne_bytes(field))
    }

    /// The `int32_t` at byte `offset`.
    fn i32(&self, offset: usize) -> Result<i32, Error> {
        Ok(i32::from_ne_bytes(self.u32(offset)?.to_ne_bytes()))
    }
}

/// Writes 32-bit fields into a request.
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// A request for `command` whose struct has `body` bytes and `extra` bytes follow it.
    fn new(command: Command, body: usize, extra: usize) -> Self {
        let mut bytes = Vec::with_capacity(size::HEADER + body + extra);
        // Bodies are a few hundred bytes at most; the cast cannot truncate.
        bytes.extend_from_slice(&(body as u32).to_ne_bytes());
        bytes.extend_from_slice(&(command as u32).to_ne_bytes());
        Self { bytes }
    }

    fn u32(mut self, value: u32) -> Self {
        self.bytes.extend_from_slice(&value.to_ne_bytes());
        self
    }

    fn i32(mut self, value: i32) -> Self {
        self.bytes.extend_from_slice(&value.to_ne_bytes());
        self
    }

    fn bytes(mut self, value: &[u8]) -> Self {
        self.bytes.extend_from_slice(value);
        self
    }

    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// A request with an empty body (`CMD_GET_READERS_STATE`, `CMD_WAIT_READER_STATE_CHANGE`,
/// `CMD_STOP_WAITING_READER_STATE_CHANGE`).
pub(crate) fn encode_bare(command: Command) -> Vec<u8> {
    Writer::new(command, 0, 0).finish()
}

/// `CMD_VERSION` with `struct version_struct { int32_t major; int32_t minor; uint32_t rv; }`.
pub(crate) fn encode_version(minor: i32) -> Vec<u8> {
    Writer::new(Command::Version, size::VERSION, 0).i32(PROTOCOL_MAJOR).i32(minor).u32(0).finish()
}

/// The daemon's answer to `CMD_VERSION`: its own version and whether it accepts ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionReply {
    /// The daemon's `PROTOCOL_VERSION_MAJOR`.
    pub(crate) major: i32,
    /// The daemon's `PROTOCOL_VERSION_MINOR`.
    pub(crate) minor: i32,
    /// `SCARD_S_SUCCESS`, or `SCARD_E_SERVICE_STOPPED` when it refuses our version.
    pub(crate) rv: u32,
}

/// Decodes `struct version_struct`.
pub(crate) fn decode_version(bytes: &[u8]) -> Result<VersionReply, Error> {
    let f = Fields::exact(bytes, size::VERSION, "version_struct size")?;
    Ok(VersionReply { major: f.i32(0)?, minor: f.i32(4)?, rv: f.u32(8)? })
}

/// `SCARD_ESTABLISH_CONTEXT` with `struct establish_struct { dwScope; hContext; rv; }`.
pub(crate) fn encode_establish(scope: u32) -> Vec<u8> {
    Writer::new(Command::EstablishContext, size::ESTABLISH, 0).u32(scope).u32(0).u32(0).finish()
}

/// Decodes `struct establish_struct`: the new `hContext`.
pub(crate) fn decode_establish(bytes: &[u8]) -> Result<Answer<u32>, Error> {
    let f = Fields::exact(bytes, size::ESTABLISH, "establish_struct size")?;
    let context = f.u32(4)?;
    Ok(Error::check(f.u32(8)?).map(|()| context))
}

/// `SCARD_RELEASE_CONTEXT` with `struct release_struct { hContext; rv; }`.
pub(crate) fn encode_release(context: u32) -> Vec<u8> {
    Writer::new(Command::ReleaseContext, size::RELEASE, 0).u32(context).u32(0).finish()
}

/// Decodes `struct release_struct`.
pub(crate) fn decode_release(bytes: &[u8]) -> Result<Answer<()>, Error> {
    let f = Fields::exact(bytes, size::RELEASE, "release_struct size")?;
    Ok(Error::check(f.u32(4)?))
}

/// `SCARD_CONNECT` with `struct connect_struct`. The reader name must leave room for its
/// NUL in `szReader[MAX_READERNAME]`; a longer name is `SCARD_E_INVALID_VALUE`, as in
/// pcsc-lite's `SCardConnect`.
pub(crate) fn encode_connect(
    context: u32,
    reader: &[u8],
    share: u32,
    protocols: u32,
) -> Result<Vec<u8>, Error> {
    if reader.len() >= MAX_READERNAME || reader.contains(&0) {
        return Err(Error::InvalidValue);
    }
    let mut name = [0u8; MAX_READERNAME];
    name[..reader.len()].copy_from_slice(reader);
    Ok(Writer::new(Command::Connect, size::CONNECT, 0)
        .u32(context)
        .bytes(&name)
        .u32(share)
        .u32(protocols)
        .i32(0)
        .u32(0)
        .u32(0)
        .finish())
}

/// Decodes `struct connect_struct`: `hCard` and the active protocol.
pub(crate) fn decode_connect(bytes: &[u8]) -> Result<Answer<(i32, Protocols)>, Error> {
    let f = Fields::exact(bytes, size::CONNECT, "connect_struct size")?;
    let base = 4 + MAX_READERNAME;
    let connected = (f.i32(base + 8)?, Protocols::from_bits(f.u32(base + 12)?));
    Ok(Error::check(f.u32(base + 16)?).map(|()| connected))
}

/// `SCARD_RECONNECT` with `struct reconnect_struct`.
pub(crate) fn encode_reconnect(card: i32, share: u32, protocols: u32, init: u32) -> Vec<u8> {
    Writer::new(Command::Reconnect, size::RECONNECT, 0)
        .i32(card)
        .u32(share)
        .u32(protocols)
        .u32(init)
        .u32(0)
        .u32(0)
        .finish()
}

/// Decodes `struct reconnect_struct`: the active protocol.
pub(crate) fn decode_reconnect(bytes: &[u8]) -> Result<Answer<Protocols>, Error> {
    let f = Fields::exact(bytes, size::RECONNECT, "reconnect_struct size")?;
    let protocol = Protocols::from_bits(f.u32(16)?);
    Ok(Error::check(f.u32(20)?).map(|()| protocol))
}

/// `SCARD_DISCONNECT` or `SCARD_END_TRANSACTION` with `{ hCard; dwDisposition; rv; }`.
pub(crate) fn encode_dispose(command: Command, card: i32, disposition: u32) -> Vec<u8> {
    Writer::new(command, size::DISPOSE, 0).i32(card).u32(disposition).u32(0).finish()
}

/// Decodes `struct disconnect_struct` or `struct end_struct`.
pub(crate) fn decode_dispose(bytes: &[u8]) -> Result<Answer<()>, Error> {
    let f = Fields::exact(bytes, size::DISPOSE, "disconnect/end_struct size")?;
    Ok(Error::check(f.u32(8)?))
}

/// `SCARD_BEGIN_TRANSACTION`, `SCARD_STATUS` or `SCARD_CANCEL` with `{ handle; rv; }`.
pub(crate) fn encode_handle(command: Command, handle: u32) -> Vec<u8> {
    Writer::new(command, size::HANDLE_RV, 0).u32(handle).u32(0).finish()
}

/// Decodes `struct begin_struct`, `struct status_struct` or `struct cancel_struct`.
pub(crate) fn decode_handle(bytes: &[u8]) -> Result<Answer<()>, Error> {
    let f = Fields::exact(bytes, size::HANDLE_RV, "begin/status/cancel_struct size")?;
    Ok(Error::check(f.u32(4)?))
}

/// The length of `SCARD_IO_REQUEST` (`{ unsigned long dwProtocol; unsigned long
/// cbPciLength; }`) on this target, which clients pass as `cbPciLength`.
const IO_REQUEST_LEN: u32 = 2 * (usize::BITS / 8);

/// `SCARD_TRANSMIT`: `struct transmit_struct` followed by the command APDU. The caller
/// zeroizes the result (it may carry a PIN).
pub(crate) fn encode_transmit(
    card: i32,
    protocol: u32,
    apdu: &[u8],
    capacity: usize,
) -> Result<Vec<u8>, Error> {
    if apdu.len() > MAX_BUFFER_SIZE_EXTENDED {
        return Err(Error::InsufficientBuffer);
    }
    let capacity = capacity.min(MAX_BUFFER_SIZE_EXTENDED);
    // Both lengths are at most MAX_BUFFER_SIZE_EXTENDED: the casts cannot truncate.
    Ok(Writer::new(Command::Transmit, size::TRANSMIT, apdu.len())
        .i32(card)
        .u32(protocol)
        .u32(IO_REQUEST_LEN)
        .u32(apdu.len() as u32)
        .u32(Protocols::ANY.bits())
        .u32(IO_REQUEST_LEN)
        .u32(capacity as u32)
        .u32(0)
        .bytes(apdu)
        .finish())
}

/// Decodes `struct transmit_struct`: the number of response bytes that follow it (only on
/// success; after an error code nothing follows). A length beyond `capacity` (what the
/// request offered) is inconsistent.
pub(crate) fn decode_transmit(bytes: &[u8], capacity: usize) -> Result<Answer<usize>, Error> {
    let f = Fields::exact(bytes, size::TRANSMIT, "transmit_struct size")?;
    if let Err(code) = Error::check(f.u32(28)?) {
        return Ok(Err(code));
    }
    let length = usize::try_from(f.u32(24)?).map_err(|_| malformed("response length"))?;
    if length > capacity.min(MAX_BUFFER_SIZE_EXTENDED) {
        return Err(malformed("response longer than the buffer offered"));
    }
    Ok(Ok(length))
}

/// Decodes `struct wait_reader_state_change { timeOut; rv; }`: the event notification,
/// the answer to `CMD_STOP_WAITING_READER_STATE_CHANGE`, or `SCARD_E_CANCELLED`.
pub(crate) fn decode_wait(bytes: &[u8]) -> Result<Answer<()>, Error> {
    let f = Fields::exact(bytes, size::WAIT, "wait_reader_state_change size")?;
    Ok(Error::check(f.u32(4)?))
}

/// One used entry of the daemon's reader-state array (`READER_STATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReaderEntry {
    /// `readerName`, without its NUL.
    pub(crate) name: Vec<u8>,
    /// `eventCounter`: card insertions and removals so far (16 bits used).
    pub(crate) event_counter: u32,
    /// `readerState`: `SCARD_ABSENT`, `SCARD_PRESENT`, `SCARD_SWALLOWED`, … bits.
    pub(crate) reader_state: u32,
    /// `readerSharing`: -1 exclusive, 0 unused, n > 0 connections.
    pub(crate) sharing: i32,
    /// `cardAtr[0..cardAtrLength]`.
    pub(crate) atr: Vec<u8>,
    /// `cardProtocol`.
    pub(crate) protocol: u32,
}

/// Decodes one `READER_STATE`; `None` for an unused slot (empty name).
fn decode_reader_state(bytes: &[u8]) -> Result<Option<ReaderEntry>, Error> {
    use reader_state as at;
    let f = Fields::exact(bytes, size::READER_STATE, "READER_STATE size")?;
    let name_field = bytes.get(..MAX_READERNAME).ok_or_else(|| malformed("reader name"))?;
    let name_len = name_field
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| malformed("reader name without NUL"))?;
    if name_len == 0 {
        return Ok(None);
    }
    let atr_len = usize::try_from(f.u32(at::ATR_LENGTH)?).unwrap_or(usize::MAX);
    if atr_len > MAX_ATR_SIZE {
        return Err(malformed("ATR length beyond MAX_ATR_SIZE"));
    }
    let atr = bytes.get(at::ATR..at::ATR + atr_len).ok_or_else(|| malformed("ATR"))?;
    Ok(Some(ReaderEntry {
        name: name_field[..name_len].to_vec(),
        event_counter: f.u32(at::EVENT_COUNTER)?,
        reader_state: f.u32(at::READER_STATE)?,
        sharing: f.i32(at::SHARING)?,
        atr: atr.to_vec(),
        protocol: f.u32(at::PROTOCOL)?,
    }))
}

/// Decodes the reply to `CMD_GET_READERS_STATE` and `CMD_WAIT_READER_STATE_CHANGE`: the
/// `PCSCLITE_MAX_READERS_CONTEXTS` entries of `READER_STATE`, keeping the used ones in
/// order. Two entries with one name are inconsistent.
pub(crate) fn decode_reader_states(bytes: &[u8]) -> Result<Vec<ReaderEntry>, Error> {
    if bytes.len() != size::READER_STATES {
        return Err(malformed("reader-state array size"));
    }
    let mut entries: Vec<ReaderEntry> = Vec::new();
    for chunk in bytes.chunks_exact(size::READER_STATE) {
        if let Some(entry) = decode_reader_state(chunk)? {
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(malformed("one reader name twice"));
            }
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn ne(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    /// A `READER_STATE` laid out by hand, field by field as `eventhandler.h` declares it.
    fn reader_state(name: &[u8], counter: u32, state: u32, sharing: i32, atr: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b[..name.len()].copy_from_slice(name);
        b.extend_from_slice(&ne(counter));
        b.extend_from_slice(&ne(state));
        b.extend_from_slice(&sharing.to_ne_bytes());
        let mut atr_field = [0u8; 33];
        atr_field[..atr.len()].copy_from_slice(atr);
        b.extend_from_slice(&atr_field);
        b.extend_from_slice(&[0xAA; 3]); // padding: any value
        b.extend_from_slice(&ne(atr.len() as u32));
        b.extend_from_slice(&ne(2));
        b
    }

    #[test]
    fn struct_sizes_are_those_of_the_c_declarations() {
        assert_eq!(size::CONNECT, 152);
        assert_eq!(size::READER_STATE, 184);
        assert_eq!(size::READER_STATES, 2944);
        assert_eq!(reader_state::ATR, 140);
        assert_eq!(reader_state::ATR_LENGTH, 176);
        assert_eq!(reader_state::PROTOCOL, 180);
        assert_eq!(reader_state(b"R", 0, 0, 0, &[]).len(), size::READER_STATE);
        assert_eq!(MAX_BUFFER_SIZE_EXTENDED, 65548);
    }

    #[test]
    fn the_version_request_is_header_then_struct() {
        let mut expected = Vec::new();
        for v in [12u32, 0x11, 4, 4, 0] {
            expected.extend_from_slice(&ne(v));
        }
        assert_eq!(encode_version(4), expected);
        let reply = [ne(4), ne(5), ne(0x8010_001E)].concat();
        assert_eq!(
            decode_version(&reply),
            Ok(VersionReply { major: 4, minor: 5, rv: 0x8010_001E })
        );
        assert_eq!(decode_version(&reply[..11]), Err(Error::CommError));
    }

    #[test]
    fn connect_carries_the_name_in_a_fixed_field() {
        let request = encode_connect(0x1234, b"Reader 00 00", 2, 3).expect("short name");
        assert_eq!(request.len(), 8 + 152);
        assert_eq!(&request[..8], &[ne(152), ne(4)].concat()[..]);
        assert_eq!(&request[8..12], &ne(0x1234));
        assert_eq!(&request[12..24], b"Reader 00 00");
        assert!(request[24..140].iter().all(|&b| b == 0));
        assert_eq!(&request[140..148], &[ne(2), ne(3)].concat()[..]);
        assert_eq!(encode_connect(1, &[b'x'; 128], 2, 3), Err(Error::InvalidValue));
        assert!(encode_connect(1, &[b'x'; 127], 2, 3).is_ok());

        let mut reply = request[8..].to_vec();
        // hContext 0..4, szReader 4..132, share 132..136, protocols 136..140, then hCard,
        // dwActiveProtocol and rv.
        reply[140..144].copy_from_slice(&(-7i32).to_ne_bytes());
        reply[144..148].copy_from_slice(&ne(2));
        assert_eq!(decode_connect(&reply), Ok(Ok((-7, Protocols::T1))));
        reply[148..152].copy_from_slice(&ne(0x8010_000C));
        assert_eq!(decode_connect(&reply), Ok(Err(Error::NoSmartcard)));
        assert_eq!(decode_connect(&reply[1..]), Err(Error::CommError));
    }

    #[test]
    fn transmit_sends_the_struct_then_the_apdu() {
        let apdu = [0x00, 0xA4, 0x04, 0x00];
        let request = encode_transmit(9, 2, &apdu, 300).expect("short APDU");
        let pci = IO_REQUEST_LEN;
        let expected = [
            &[ne(32), ne(9)].concat()[..],
            &[ne(9), ne(2), ne(pci), ne(4), ne(3), ne(pci), ne(300), ne(0)].concat(),
            &apdu,
        ]
        .concat();
        assert_eq!(request, expected);
        let too_long = vec![0; MAX_BUFFER_SIZE_EXTENDED + 1];
        assert_eq!(encode_transmit(9, 2, &too_long, 10), Err(Error::InsufficientBuffer));

        let mut reply = expected[8..40].to_vec();
        reply[24..28].copy_from_slice(&ne(2));
        assert_eq!(decode_transmit(&reply, 300), Ok(Ok(2)));
        assert_eq!(decode_transmit(&reply, 1), Err(Error::CommError), "more than offered");
        reply[28..32].copy_from_slice(&ne(0x8010_0069));
        assert_eq!(decode_transmit(&reply, 300), Ok(Err(Error::RemovedCard)));
        // After an error code the length means nothing (pcscd reports the size it needed).
        reply[24..28].copy_from_slice(&ne(70_000));
        assert_eq!(decode_transmit(&reply, 300), Ok(Err(Error::RemovedCard)));
    }

    #[test]
    fn the_small_structs() {
        assert_eq!(
            encode_dispose(Command::Disconnect, 5, 1),
            [ne(12), ne(6), ne(5), ne(1), ne(0)].concat()
        );
        assert_eq!(
            encode_handle(Command::BeginTransaction, 5),
            [ne(8), ne(7), ne(5), ne(0)].concat()
        );
        assert_eq!(
            encode_reconnect(5, 1, 3, 0),
            [ne(24), ne(5), ne(5), ne(1), ne(3), ne(0), ne(0), ne(0)].concat()
        );
        assert_eq!(encode_bare(Command::GetReadersState), [ne(0), ne(0x12)].concat());
        assert_eq!(encode_establish(0), [ne(12), ne(1), ne(0), ne(0), ne(0)].concat());
        assert_eq!(decode_establish(&[ne(0), ne(77), ne(0)].concat()), Ok(Ok(77)));
        assert_eq!(decode_wait(&[ne(0), ne(0x8010_0002)].concat()), Ok(Err(Error::Cancelled)));
        assert_eq!(decode_wait(&[ne(0), ne(0), ne(0)].concat()), Err(Error::CommError));
        assert_eq!(decode_reconnect(&[0; 24]), Ok(Ok(Protocols::from_bits(0))));
        assert_eq!(
            decode_release(&[ne(1), ne(0x8010_0003)].concat()),
            Ok(Err(Error::InvalidHandle))
        );
        assert_eq!(decode_handle(&[0; 9]), Err(Error::CommError));
    }

    #[test]
    fn reader_states_keep_the_used_entries() {
        let mut array = reader_state(b"Reader A", 3, 0x34, 1, &[0x3B, 0x02, 0x14, 0x50]);
        array.extend(reader_state(b"", 0, 0, 0, &[]));
        array.extend(reader_state(b"Reader B", 0, 0x02, -1, &[]));
        for _ in 3..MAX_READERS {
            array.extend(vec![0; size::READER_STATE]);
        }
        let entries = decode_reader_states(&array).expect("well formed");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            ReaderEntry {
                name: b"Reader A".to_vec(),
                event_counter: 3,
                reader_state: 0x34,
                sharing: 1,
                atr: vec![0x3B, 0x02, 0x14, 0x50],
                protocol: 2,
            }
        );
        assert_eq!(entries[1].sharing, -1);

        // Inconsistent arrays.
        assert!(decode_reader_states(&array[1..]).is_err());
        let mut long_atr = array.clone();
        long_atr[176..180].copy_from_slice(&ne(34));
        assert!(decode_reader_states(&long_atr).is_err());
        let mut no_nul = array.clone();
        no_nul[..128].fill(b'x');
        assert!(decode_reader_states(&no_nul).is_err());
        let mut twice = array.clone();
        twice[184..184 + 128].copy_from_slice(&array[..128]);
        assert!(decode_reader_states(&twice).is_err());
    }
}
