//! A PC/SC client in Rust that talks to pcscd over its UNIX socket, without libpcsclite.
//!
//! pcscd (pcsc-lite's daemon) serves its clients over a UNIX socket, `$PCSCLITE_CSOCK_NAME`
//! or `/run/pcscd/pcscd.comm`, in a message protocol of fixed-layout C structs
//! (`src/winscard_msg.h`). libpcsclite is one client of it; this module is another, so a
//! statically linked keystation needs nothing but pcscd beside it.
//!
//! **Versions.** The protocol version must match exactly: 4.4 in pcsc-lite 1.8.24 to 2.2.x,
//! 4.5 in 2.3.0 to 2.4.0; from 2.4.1 on, pcscd also accepts 4.4 clients. This client
//! announces 4.4 and, when pcscd refuses it and reports 4.5, connects again announcing 4.5;
//! every message it sends is the same in both. (A libpcsclite 1.9.9 linked statically
//! would speak only 4.4 and fail against Debian 13's pcscd 2.3.3.)
//!
//! **Model.** As in libpcsclite, every context (`SCardEstablishContext`) has its own
//! socket connection, and the calls made on one context — on the context itself or on its
//! cards — take turns on it. Reader listing (`SCardListReaders`), `SCardStatus`'s ATR and
//! `SCardGetStatusChange` are computed here from the daemon's reader-state array
//! (`CMD_GET_READERS_STATE`), as libpcsclite does.
//!
//! The API is the part of the `pcsc` crate's API that keystation-pcsc uses, with the same
//! names, so that `crate::sys` switches between the two in one place.

mod error;
mod session;
mod watch;
pub(crate) mod wire;

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

pub(crate) use error::Error;
use session::Session;
pub(crate) use session::socket_path;
use wire::{Command, size};

/// `MAX_BUFFER_SIZE_EXTENDED` (`pcsclite.h`): the longest command or response APDU.
pub(crate) const MAX_BUFFER_SIZE_EXTENDED: usize = wire::MAX_BUFFER_SIZE_EXTENDED;

/// How long a call that pcscd refused with `SCARD_E_SHARING_VIOLATION` waits before
/// trying again (libpcsclite's `PCSCLITE_LOCK_POLL_RATE`, 100 ms): another application's
/// transaction blocks these calls instead of failing them.
const SHARING_RETRY: Duration = Duration::from_millis(100);

/// The PnP pseudo-reader, `\\?PnP?\Notification`: in `SCardGetStatusChange` its state
/// changes when a reader is added or removed (PC/SC part 5 §3.1.6).
#[allow(non_snake_case)]
pub(crate) fn PNP_NOTIFICATION() -> &'static CStr {
    c"\\\\?PnP?\\Notification"
}

/// `dwScope` of `SCardEstablishContext` (`SCARD_SCOPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Scope {
    /// `SCARD_SCOPE_USER` (the only scope pcsc-lite distinguishes in practice).
    User = 0,
}

/// `dwShareMode` of `SCardConnect` (`SCARD_SHARE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ShareMode {
    /// `SCARD_SHARE_EXCLUSIVE`.
    Exclusive = 1,
    /// `SCARD_SHARE_SHARED`.
    Shared = 2,
}

/// `dwDisposition` of `SCardDisconnect`, `SCardReconnect` and `SCardEndTransaction`. (The
/// variant names are the `pcsc` crate's, so that `crate::sys` can switch.)
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Disposition {
    /// `SCARD_LEAVE_CARD`.
    LeaveCard = 0,
    /// `SCARD_RESET_CARD`.
    ResetCard = 1,
    /// `SCARD_UNPOWER_CARD`.
    UnpowerCard = 2,
}

/// A set of `SCARD_PROTOCOL_*` bits (`dwPreferredProtocols`, `dwActiveProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Protocols(u32);

impl Protocols {
    /// `SCARD_PROTOCOL_T0`.
    pub(crate) const T0: Self = Self(0x0001);
    /// `SCARD_PROTOCOL_T1`.
    pub(crate) const T1: Self = Self(0x0002);
    /// `SCARD_PROTOCOL_ANY` (T=0 or T=1).
    pub(crate) const ANY: Self = Self(0x0003);

    /// Both sets.
    pub(crate) const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The raw bits.
    pub(crate) const fn bits(self) -> u32 {
        self.0
    }

    /// The set with these raw bits.
    pub(crate) const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }
}

/// `dwCurrentState`/`dwEventState` flags of `SCARD_READERSTATE` (`SCARD_STATE_*`), without
/// the event counter in the upper 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct State(u32);

impl State {
    /// `SCARD_STATE_UNAWARE`: the caller knows nothing yet.
    pub(crate) const UNAWARE: Self = Self(0x0000);
    /// `SCARD_STATE_IGNORE`.
    pub(crate) const IGNORE: Self = Self(0x0001);
    /// `SCARD_STATE_CHANGED`.
    pub(crate) const CHANGED: Self = Self(0x0002);
    /// `SCARD_STATE_UNKNOWN`: no such reader.
    pub(crate) const UNKNOWN: Self = Self(0x0004);
    /// `SCARD_STATE_UNAVAILABLE`.
    pub(crate) const UNAVAILABLE: Self = Self(0x0008);
    /// `SCARD_STATE_EMPTY`.
    pub(crate) const EMPTY: Self = Self(0x0010);
    /// `SCARD_STATE_PRESENT`.
    pub(crate) const PRESENT: Self = Self(0x0020);
    /// `SCARD_STATE_EXCLUSIVE`.
    pub(crate) const EXCLUSIVE: Self = Self(0x0080);
    /// `SCARD_STATE_INUSE`.
    pub(crate) const INUSE: Self = Self(0x0100);
    /// `SCARD_STATE_MUTE`.
    pub(crate) const MUTE: Self = Self(0x0200);

    /// Every flag bit (the lower 16 bits carry flags, the upper the event counter).
    const FLAGS: u32 = 0xFFFF;

    /// The flags of a raw `dwEventState`, without its event counter.
    const fn from_raw_truncate(raw: u32) -> Self {
        Self(raw & Self::FLAGS)
    }

    /// A raw state word, counter included (as kept in `dwCurrentState`).
    pub(crate) const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw bits.
    pub(crate) const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub(crate) const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub(crate) const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitOr for State {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// One `SCARD_READERSTATE` for [`Context::get_status_change`]: the reader's name, what
/// the caller believes (`dwCurrentState`) and what the call found (`dwEventState`, the ATR).
#[derive(Debug, Clone)]
pub(crate) struct ReaderState {
    name: CString,
    current: State,
    event: u32,
    atr: [u8; wire::MAX_ATR_SIZE],
    atr_len: usize,
}

impl ReaderState {
    /// A state for `name` that the caller believes to be `current`.
    pub(crate) fn new(name: impl Into<CString>, current: State) -> Self {
        Self { name: name.into(), current, event: 0, atr: [0; wire::MAX_ATR_SIZE], atr_len: 0 }
    }

    /// The reader name (`szReader`).
    pub(crate) fn name(&self) -> &CStr {
        &self.name
    }

    /// The flags the last call found (`dwEventState` without the counter).
    pub(crate) fn event_state(&self) -> State {
        State::from_raw_truncate(self.event)
    }

    /// The card event counter (upper 16 bits of `dwEventState`): insertions and removals
    /// so far.
    pub(crate) fn event_count(&self) -> u32 {
        self.event >> 16
    }

    /// The card's ATR as the last call found it (`rgbAtr[..cbAtr]`).
    pub(crate) fn atr(&self) -> &[u8] {
        &self.atr[..self.atr_len.min(self.atr.len())]
    }

    /// Takes what the last call found as what the caller believes
    /// (`dwCurrentState = dwEventState`).
    pub(crate) fn sync_current_state(&mut self) {
        self.current = State::from_raw(self.event);
    }
}

/// What a context's calls share: the session and the `hContext` pcscd gave it.
#[derive(Debug)]
struct Shared {
    session: Mutex<Session>,
    handle: u32,
    /// Whether a status-change wait is running (only then does `SCardCancel` send anything,
    /// as pcscd answers a cancel for a context that is not waiting with an error).
    waiting: AtomicBool,
}

impl Shared {
    /// The session, for one call. A panic while another call held it leaves a session
    /// that may be mid-message; such a session is unusable, which the next exchange finds.
    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Shared {
    /// `SCardReleaseContext`; the socket closes with the session.
    fn drop(&mut self) {
        let session = self.session.get_mut().unwrap_or_else(PoisonError::into_inner);
        let mut reply = [0u8; size::RELEASE];
        let released = session
            .exchange(&wire::encode_release(self.handle), &mut reply)
            .and_then(|()| wire::decode_release(&reply))
            .and_then(|answer| answer);
        if let Err(code) = released {
            tracing::debug!(%code, "SCardReleaseContext failed");
        }
    }
}

/// A context with pcscd (`SCardEstablishContext`): one socket connection. Clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    shared: Arc<Shared>,
}

impl Context {
    /// `SCardEstablishContext`: connects to pcscd, agrees on the protocol version and
    /// establishes a context in `scope`. `SCARD_E_NO_SERVICE` when pcscd cannot be
    /// reached at [`socket_path`].
    pub(crate) fn establish(scope: Scope) -> Result<Self, Error> {
        let mut session = Session::open()?;
        let mut reply = [0u8; size::ESTABLISH];
        session.exchange(&wire::encode_establish(scope as u32), &mut reply)?;
        let handle = session.decoded(wire::decode_establish(&reply))??;
        tracing::debug!(
            protocol = ?session.version(),
            server = ?session.server_version(),
            "established a PC/SC context with pcscd"
        );
        let shared =
            Shared { session: Mutex::new(session), handle, waiting: AtomicBool::new(false) };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The daemon's reader-state array (`CMD_GET_READERS_STATE`).
    fn reader_entries(session: &mut Session) -> Result<Vec<wire::ReaderEntry>, Error> {
        session.send(&wire::encode_bare(Command::GetReadersState))?;
        receive_reader_states(session)
    }

    /// `SCardListReaders`: the names of the readers pcscd knows, in its order;
    /// `SCARD_E_NO_READERS_AVAILABLE` when there are none.
    pub(crate) fn list_readers_owned(&self) -> Result<Vec<CString>, Error> {
        let entries = Self::reader_entries(&mut self.shared.lock())?;
        if entries.is_empty() {
            return Err(Error::NoReadersAvailable);
        }
        // Decoded names stop at their first NUL, so CString::new cannot fail; a name that
        // did would be skipped.
        Ok(entries.into_iter().filter_map(|e| CString::new(e.name).ok()).collect())
    }

    /// `SCardConnect` to the card in `reader`, offering `protocols`.
    pub(crate) fn connect(
        &self,
        reader: &CStr,
        share: ShareMode,
        protocols: Protocols,
    ) -> Result<Card, Error> {
        let request = wire::encode_connect(
            self.shared.handle,
            reader.to_bytes(),
            share as u32,
            protocols.bits(),
        )?;
        let mut reply = [0u8; size::CONNECT];
        let mut session = self.shared.lock();
        session.exchange(&request, &mut reply)?;
        let (handle, protocol) = session.decoded(wire::decode_connect(&reply))??;
        drop(session);
        Ok(Card {
            context: self.clone(),
            handle,
            reader: reader.to_owned(),
            protocol,
            connected: true,
        })
    }

    /// `SCardGetStatusChange`: waits up to `timeout` until some entry of `states` differs
    /// from its current state, and fills in every entry's event state and ATR.
    ///
    /// `SCARD_E_TIMEOUT` when nothing changed in time (with `Duration::ZERO`, when nothing
    /// differs right now), `SCARD_E_UNKNOWN_READER` for a name pcscd does not know (other
    /// than [`PNP_NOTIFICATION`]), `SCARD_E_INVALID_PARAMETER` for more than
    /// `PCSCLITE_MAX_READERS_CONTEXTS` entries, `SCARD_E_CANCELLED` after
    /// [`cancel`](Self::cancel). Success without waiting when every entry is ignored.
    pub(crate) fn get_status_change(
        &self,
        timeout: Duration,
        states: &mut [ReaderState],
    ) -> Result<(), Error> {
        if states.len() > wire::MAX_READERS {
            return Err(Error::InvalidParameter);
        }
        if states.iter().all(|s| s.current.contains(State::IGNORE)) {
            return Ok(());
        }
        for state in states.iter_mut() {
            state.event = 0;
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut session = self.shared.lock();
        self.shared.waiting.store(true, Ordering::SeqCst);
        let result = watch_loop(&mut session, deadline, states);
        self.shared.waiting.store(false, Ordering::SeqCst);
        result
    }

    /// `SCardCancel`: ends a [`get_status_change`](Self::get_status_change) that another
    /// thread is waiting in on this context, which then fails with `SCARD_E_CANCELLED`.
    /// Sent over a connection of its own, since the waiting call holds the context's.
    /// Nothing to do (success) when no wait is running.
    #[cfg_attr(not(test), allow(dead_code))] // keystation's monitor uses timeouts instead
    pub(crate) fn cancel(&self) -> Result<(), Error> {
        if !self.shared.waiting.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut session = Session::open()?;
        let mut reply = [0u8; size::HANDLE_RV];
        session.exchange(&wire::encode_handle(Command::Cancel, self.shared.handle), &mut reply)?;
        session.decoded(wire::decode_handle(&reply))?
    }
}

/// Reads the reader-state array that follows `CMD_GET_READERS_STATE` or
/// `CMD_WAIT_READER_STATE_CHANGE`.
fn receive_reader_states(session: &mut Session) -> Result<Vec<wire::ReaderEntry>, Error> {
    let mut array = vec![0u8; size::READER_STATES];
    session.receive(&mut array)?;
    session.decoded(wire::decode_reader_states(&array))
}

/// `CMD_STOP_WAITING_READER_STATE_CHANGE`: leaves pcscd's list of waiting clients. pcscd
/// answers with one `struct wait_reader_state_change` — its answer, or the event or
/// cancel notification it sent just before — so exactly one is read.
fn unregister(session: &mut Session) -> Result<wire::Answer<()>, Error> {
    session.send(&wire::encode_bare(Command::StopWaitingReaderStateChange))?;
    let mut reply = [0u8; size::WAIT];
    session.receive(&mut reply)?;
    session.decoded(wire::decode_wait(&reply))
}

/// The waiting part of `SCardGetStatusChange`: register with pcscd (which answers with
/// the reader-state array), compare, and either stop waiting and return, or wait for
/// pcscd's notification (or the deadline) and look again.
fn watch_loop(
    session: &mut Session,
    deadline: Option<Instant>,
    states: &mut [ReaderState],
) -> Result<(), Error> {
    let mut initial_readers = None;
    loop {
        session.send(&wire::encode_bare(Command::WaitReaderStateChange))?;
        let entries = receive_reader_states(session)?;
        if initial_readers.is_none() && !watch::all_known(states, &entries) {
            let _ = unregister(session)?;
            return Err(Error::UnknownReader);
        }
        let initial = *initial_readers.get_or_insert(entries.len());
        if watch::evaluate(states, &entries, initial) {
            // A cancel that crossed the change does not undo it.
            let _ = unregister(session)?;
            return Ok(());
        }
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if remaining == Some(Duration::ZERO) {
            unregister(session)??;
            return Err(Error::Timeout);
        }
        match session.receive_within(remaining)? {
            // A notification: pcscd has dropped us from its list; look again. Or a cancel.
            Some(message) => session.decoded(wire::decode_wait(&message))??,
            // The deadline passed: stop waiting, then a last look (above) decides.
            None => unregister(session)??,
        }
    }
}

/// `SCardStatus` as far as keystation uses it: the card's ATR.
#[derive(Debug, Clone)]
pub(crate) struct CardStatus {
    atr: Vec<u8>,
}

impl CardStatus {
    /// The ATR of the card in the reader.
    pub(crate) fn atr(&self) -> &[u8] {
        &self.atr
    }
}

/// A connection to a card (`SCARDHANDLE`), on its context's socket.
#[derive(Debug)]
pub(crate) struct Card {
    context: Context,
    handle: i32,
    reader: CString,
    /// `dwActiveProtocol`, used as the send PCI's protocol.
    protocol: Protocols,
    connected: bool,
}

impl Card {
    /// Runs one call, retrying after `SCARD_E_SHARING_VIOLATION` as libpcsclite does, so
    /// another application's transaction makes the call wait rather than fail.
    fn blocking<T>(
        &self,
        mut call: impl FnMut(&mut Session) -> Result<T, Error>,
    ) -> Result<T, Error> {
        loop {
            let result = call(&mut self.context.shared.lock());
            match result {
                Err(Error::SharingViolation) => std::thread::sleep(SHARING_RETRY),
                other => return other,
            }
        }
    }

    /// One request with a fixed-size reply of `N` bytes, decoded by `decode`.
    fn simple<T, const N: usize>(
        &self,
        request: &[u8],
        decode: fn(&[u8]) -> Result<wire::Answer<T>, Error>,
    ) -> Result<T, Error> {
        self.blocking(|session| {
            let mut reply = [0u8; N];
            session.exchange(request, &mut reply)?;
            session.decoded(decode(&reply))?
        })
    }

    /// `SCardTransmit` with the active protocol's PCI: sends `command` and returns the
    /// response, which must fit `response`.
    pub(crate) fn transmit<'buf>(
        &self,
        command: &[u8],
        response: &'buf mut [u8],
    ) -> Result<&'buf [u8], Error> {
        let request = Zeroizing::new(wire::encode_transmit(
            self.handle,
            self.protocol.bits(),
            command,
            response.len(),
        )?);
        let capacity = response.len();
        let length = self.blocking(|session| {
            let mut reply = [0u8; size::TRANSMIT];
            session.exchange(&request, &mut reply)?;
            let length = session.decoded(wire::decode_transmit(&reply, capacity))??;
            let target = response.get_mut(..length).ok_or(Error::InsufficientBuffer)?;
            session.receive(target)?;
            Ok(length)
        })?;
        Ok(&response[..length])
    }

    /// `SCardBeginTransaction`, waiting while another application holds one.
    fn begin(&self) -> Result<(), Error> {
        let request = wire::encode_handle(Command::BeginTransaction, self.handle as u32);
        self.simple::<(), { size::HANDLE_RV }>(&request, wire::decode_handle)
    }

    /// `SCardEndTransaction`.
    fn end(&self, disposition: Disposition) -> Result<(), Error> {
        let request =
            wire::encode_dispose(Command::EndTransaction, self.handle, disposition as u32);
        let mut reply = [0u8; size::DISPOSE];
        let mut session = self.context.shared.lock();
        session.exchange(&request, &mut reply)?;
        session.decoded(wire::decode_dispose(&reply))?
    }

    /// Begins a transaction; it ends when the returned guard is ended or dropped
    /// (`SCardEndTransaction(SCARD_LEAVE_CARD)`).
    pub(crate) fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        self.begin()?;
        Ok(Transaction { card: self, open: true })
    }

    /// `SCardReconnect` (after `SCARD_W_RESET_CARD`, for example).
    pub(crate) fn reconnect(
        &mut self,
        share: ShareMode,
        protocols: Protocols,
        initialization: Disposition,
    ) -> Result<(), Error> {
        let request = wire::encode_reconnect(
            self.handle,
            share as u32,
            protocols.bits(),
            initialization as u32,
        );
        self.protocol =
            self.simple::<Protocols, { size::RECONNECT }>(&request, wire::decode_reconnect)?;
        Ok(())
    }

    /// `SCardStatus`: checks the connection with pcscd (`SCARD_W_REMOVED_CARD` and the
    /// like) and returns the ATR from the daemon's reader-state array.
    pub(crate) fn status2_owned(&self) -> Result<CardStatus, Error> {
        let request = wire::encode_handle(Command::Status, self.handle as u32);
        self.blocking(|session| {
            let entries = Context::reader_entries(session)?;
            let entry = entries
                .into_iter()
                .find(|e| e.name == self.reader.to_bytes())
                .ok_or(Error::ReaderUnavailable)?;
            let mut reply = [0u8; size::HANDLE_RV];
            session.exchange(&request, &mut reply)?;
            session.decoded(wire::decode_handle(&reply))??;
            Ok(CardStatus { atr: entry.atr })
        })
    }

    /// `SCardDisconnect`. On failure the card comes back with the code (and is disconnected
    /// with `SCARD_RESET_CARD` when dropped).
    pub(crate) fn disconnect(mut self, disposition: Disposition) -> Result<(), (Self, Error)> {
        match self.disconnect_raw(disposition) {
            Ok(()) => {
                self.connected = false;
                Ok(())
            }
            Err(code) => Err((self, code)),
        }
    }

    fn disconnect_raw(&self, disposition: Disposition) -> Result<(), Error> {
        let request = wire::encode_dispose(Command::Disconnect, self.handle, disposition as u32);
        let mut reply = [0u8; size::DISPOSE];
        let mut session = self.context.shared.lock();
        session.exchange(&request, &mut reply)?;
        session.decoded(wire::decode_dispose(&reply))?
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        if self.connected
            && let Err(code) = self.disconnect_raw(Disposition::ResetCard)
        {
            tracing::debug!(%code, "SCardDisconnect on drop failed");
        }
    }
}

/// An open transaction on a card; derefs to the [`Card`].
#[derive(Debug)]
pub(crate) struct Transaction<'card> {
    card: &'card mut Card,
    open: bool,
}

impl Transaction<'_> {
    /// `SCardEndTransaction(disposition)`. On failure the guard comes back with the code
    /// (and tries `SCARD_LEAVE_CARD` once more when dropped).
    pub(crate) fn end(mut self, disposition: Disposition) -> Result<(), (Self, Error)> {
        match self.card.end(disposition) {
            Ok(()) => {
                self.open = false;
                Ok(())
            }
            Err(code) => Err((self, code)),
        }
    }
}

impl core::ops::Deref for Transaction<'_> {
    type Target = Card;
    fn deref(&self) -> &Card {
        self.card
    }
}

impl core::ops::DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut Card {
        self.card
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open
            && let Err(code) = self.card.end(Disposition::LeaveCard)
        {
            tracing::debug!(%code, "SCardEndTransaction on drop failed");
        }
    }
}

/// Runs every reply decoder over `data`, for the `pcscd_replies` fuzz target: none may
/// panic, a malformed reply is `SCARD_F_COMM_ERROR`, and whatever decodes keeps within
/// the protocol's bounds.
pub(crate) fn fuzz_replies(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let malformed_is_comm_error = |e: Error| assert_eq!(e, Error::CommError);
    match selector % 10 {
        0 => {
            if let Ok(v) = wire::decode_version(body) {
                let _ = Error::check(v.rv);
            }
        }
        1 => wire::decode_establish(body).map(drop).unwrap_or_else(malformed_is_comm_error),
        2 => wire::decode_connect(body).map(drop).unwrap_or_else(malformed_is_comm_error),
        3 => wire::decode_reconnect(body).map(drop).unwrap_or_else(malformed_is_comm_error),
        4 => wire::decode_dispose(body).map(drop).unwrap_or_else(malformed_is_comm_error),
        5 => wire::decode_handle(body).map(drop).unwrap_or_else(malformed_is_comm_error),
        6 => wire::decode_wait(body).map(drop).unwrap_or_else(malformed_is_comm_error),
        7 => wire::decode_release(body).map(drop).unwrap_or_else(malformed_is_comm_error),
        8 => {
            // The first two bytes are the capacity the request offered.
            let (capacity, reply) = match body {
                [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
                _ => (0, body),
            };
            if let Ok(Ok(length)) = wire::decode_transmit(reply, capacity) {
                assert!(length <= capacity && length <= MAX_BUFFER_SIZE_EXTENDED);
            }
        }
        _ => fuzz_reader_states(body),
    }
}

/// The reader-state array, as pcscd would send it (the input is repeated to the array's
/// size, so short inputs reach the per-entry checks), and the status-change evaluation
/// over what decodes.
fn fuzz_reader_states(body: &[u8]) {
    let array: Vec<u8> = if body.is_empty() {
        Vec::new()
    } else {
        body.iter().copied().cycle().take(size::READER_STATES).collect()
    };
    for bytes in [body, array.as_slice()] {
        let Ok(entries) = wire::decode_reader_states(bytes) else { continue };
        assert!(entries.len() <= wire::MAX_READERS);
        for entry in &entries {
            assert!(!entry.name.is_empty() && entry.name.len() < wire::MAX_READERNAME);
            assert!(!entry.name.contains(&0) && entry.atr.len() <= wire::MAX_ATR_SIZE);
        }
        let mut states: Vec<ReaderState> = entries
            .iter()
            .filter_map(|e| CString::new(e.name.clone()).ok())
            .map(|name| ReaderState::new(name, State::UNAWARE))
            .chain([ReaderState::new(PNP_NOTIFICATION().to_owned(), State::UNAWARE)])
            .collect();
        assert!(watch::all_known(&states, &entries));
        let changed = watch::evaluate(&mut states, &entries, entries.len());
        // An unaware caller always learns a reader's state (a reader named like the PnP
        // pseudo-reader is taken for it, which only changes with the reader list).
        let readers = entries.iter().any(|e| !watch::is_pnp(&e.name));
        assert_eq!(changed, readers, "an unaware caller learns every reader's state");
        for (state, entry) in states.iter().zip(&entries) {
            assert!(state.atr().len() <= wire::MAX_ATR_SIZE);
            if !watch::is_pnp(&entry.name) {
                assert_eq!(state.event_count(), entry.event_counter & 0xFFFF);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pnp_name_is_the_pcsc_one() {
        assert_eq!(PNP_NOTIFICATION().to_bytes(), br"\\?PnP?\Notification");
        assert!(watch::is_pnp(br"\\?pnp?\notification"));
    }

    #[test]
    fn state_flags() {
        let s = State::PRESENT | State::INUSE;
        assert!(s.contains(State::PRESENT) && s.intersects(State::INUSE | State::MUTE));
        assert!(!s.contains(State::PRESENT | State::MUTE));
        assert!(State::UNAWARE.contains(State::UNAWARE));
        let mut r = ReaderState::new(c"R".to_owned(), State::UNAWARE);
        r.event = (7 << 16) | State::EMPTY.bits();
        assert_eq!(r.event_count(), 7);
        assert_eq!(r.event_state(), State::EMPTY);
        r.sync_current_state();
        assert_eq!(r.current.bits() >> 16, 7);
        assert_eq!(Protocols::T0.union(Protocols::T1), Protocols::ANY);
    }

    /// Against a real pcscd: only under `scripts/with-pcscd`, which names the vpcd reader in
    /// `KEYSTATION_TEST_VPCD_READER`; elsewhere the test returns at once.
    #[test]
    fn live_listing_waiting_and_cancel() {
        let Some(reader) = std::env::var_os("KEYSTATION_TEST_VPCD_READER") else { return };
        let context = Context::establish(Scope::User).expect("pcscd runs");
        let names = context.list_readers_owned().expect("vpcd readers");
        assert!(names.iter().any(|n| n.as_bytes() == reader.as_encoded_bytes()), "{names:?}");

        // An unaware caller learns at once; then nothing changes within 200 ms.
        let mut states: Vec<ReaderState> =
            names.iter().map(|n| ReaderState::new(n.clone(), State::UNAWARE)).collect();
        states.push(ReaderState::new(PNP_NOTIFICATION().to_owned(), State::UNAWARE));
        context.get_status_change(Duration::ZERO, &mut states).expect("state known");
        for state in &mut states {
            state.sync_current_state();
        }
        let started = Instant::now();
        let outcome = context.get_status_change(Duration::from_millis(200), &mut states);
        assert_eq!(outcome, Err(Error::Timeout));
        assert!(started.elapsed() >= Duration::from_millis(200));
        let mut unknown = [ReaderState::new(c"no such reader".to_owned(), State::UNAWARE)];
        assert_eq!(
            context.get_status_change(Duration::ZERO, &mut unknown),
            Err(Error::UnknownReader)
        );

        // SCardCancel from another thread ends a long wait.
        let waiter = context.clone();
        let mut waiting = states.clone();
        let thread = std::thread::spawn(move || {
            waiter.get_status_change(Duration::from_secs(30), &mut waiting)
        });
        let started = Instant::now();
        while !context.shared.waiting.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100));
        context.cancel().expect("cancel accepted");
        assert_eq!(thread.join().expect("no panic"), Err(Error::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(5));
        // The context still works afterwards.
        assert!(context.list_readers_owned().is_ok());
    }

    #[test]
    fn fuzz_body_accepts_anything() {
        for input in [&[][..], &[0], &[9, 1, 2, 3], &[8, 0xFF, 0xFF], &[2; 200]] {
            fuzz_replies(input);
        }
    }
}
