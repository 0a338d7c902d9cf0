//! [`PcscCard`]: a connected card, implementing [`keystation_core::Card`].
//!
//! # Why a worker thread holds the connection
//!
//! `SCardBeginTransaction` and `SCardEndTransaction` (PC/SC part 5 §3.1.4) map onto the
//! `pcsc` crate's `Card::transaction(&mut self) -> Transaction<'_>` (and the pure-Rust
//! client's, which has the same shape; see `crate::sys`), a guard that borrows the
//! card mutably and ends the transaction when dropped. [`Card::begin_transaction`] and
//! [`Card::end_transaction`] are two separate calls, so the guard would have to live inside
//! the very struct it borrows from: a self-referential struct, which needs `unsafe` (and the
//! workspace forbids it). Leaking the guard with `mem::forget` would begin a transaction
//! that nothing could end short of disconnecting.
//!
//! So each [`PcscCard`] owns a small worker thread that owns the `sys::Card`. Outside a
//! transaction the worker serves requests with the card; on `Begin` it opens the crate's
//! transaction and serves requests *through the guard* on its own stack until `End`,
//! when it ends the transaction with `SCARD_LEAVE_CARD`. Every command crosses a channel
//! (a few microseconds, against milliseconds for the card itself); command and response
//! copies are zeroized, as they may hold PINs and keys.

use std::sync::mpsc;
use std::thread::JoinHandle;

use keystation_core::{Card, Error, TransportFailure};
use zeroize::Zeroizing;

use crate::context::reader_cstring;
use crate::error::{Call, PcscFailure};
use crate::sys;

/// The protocols offered at connect and reconnect: T=0 or T=1, whichever the card and
/// reader agree on (ISO/IEC 7816-3 §8.2.3).
const PROTOCOLS: sys::Protocols = sys::Protocols::T0.union(sys::Protocols::T1);

/// How a connection shares the card with other applications (`dwShareMode` of
/// `SCardConnect`, PC/SC part 5 §3.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShareMode {
    /// `SCARD_SHARE_EXCLUSIVE`: no other application may connect while this connection
    /// lasts. The default for provisioning, where nothing may interleave.
    #[default]
    Exclusive,
    /// `SCARD_SHARE_SHARED`: other applications may connect too; use
    /// [`Transaction`](keystation_core::Transaction)s to keep command sequences together.
    Shared,
}

impl ShareMode {
    fn to_pcsc(self) -> sys::ShareMode {
        match self {
            Self::Exclusive => sys::ShareMode::Exclusive,
            Self::Shared => sys::ShareMode::Shared,
        }
    }
}

/// What happens to the card when a connection ends (`dwDisposition` of `SCardDisconnect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Disposition {
    /// `SCARD_LEAVE_CARD`: leave it as it is (applications selected, PINs verified).
    #[default]
    Leave,
    /// `SCARD_RESET_CARD`: warm-reset it, which clears every application's volatile
    /// security state (ISO/IEC 7816-3 §6.2.3). Other connections see
    /// [`TransportFailure::CardReset`].
    Reset,
    /// `SCARD_UNPOWER_CARD`: power it down.
    Unpower,
}

impl Disposition {
    fn to_pcsc(self) -> sys::Disposition {
        match self {
            Self::Leave => sys::Disposition::LeaveCard,
            Self::Reset => sys::Disposition::ResetCard,
            Self::Unpower => sys::Disposition::UnpowerCard,
        }
    }
}

/// A request to the worker thread.
enum Request {
    /// `SCardTransmit` with a receive buffer of `capacity` bytes.
    Transmit { command: Zeroizing<Vec<u8>>, capacity: usize },
    /// `SCardBeginTransaction` (nested calls only count).
    Begin,
    /// `SCardEndTransaction(SCARD_LEAVE_CARD)` when the outermost transaction ends.
    End,
    /// `SCardReconnect(SCARD_LEAVE_CARD)` after `SCARD_W_RESET_CARD`; answers the ATR.
    Reconnect,
    /// `SCardStatus`; answers the ATR (used to tell a removed card from a passing fault).
    Status,
    /// `SCardDisconnect`, then the worker ends.
    Disconnect(sys::Disposition),
}

/// The worker's answer: the response APDU, the ATR after a reconnect, or nothing.
type Reply = Result<Zeroizing<Vec<u8>>, PcscFailure>;

/// How long a failed exchange waits for PC/SC to report a removed card (pcscd polls
/// readers every 400 ms at most).
const REMOVAL_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The caller's side of the worker.
struct Worker {
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Reply>,
    thread: JoinHandle<()>,
}

/// The error when the worker thread is gone (it only ends on disconnect, or if the `pcsc`
/// crate panicked inside it).
#[derive(Debug, thiserror::Error)]
#[error("the PC/SC connection's worker thread has stopped")]
struct WorkerGone;

/// A card connected through PC/SC. Implements [`Card`]; see
/// [`PcscContext::connect`](crate::PcscContext::connect).
///
/// * A card reset by another application or by a power glitch is noticed on the next
///   command (`SCARD_W_RESET_CARD`): the connection is re-established with
///   `SCardReconnect(SCARD_LEAVE_CARD)`, that command fails once with
///   [`TransportFailure::CardReset`], and [`take_reset`](Card::take_reset) reports it.
/// * A removed card gives [`TransportFailure::CardRemoved`] for good; connect again after
///   re-insertion.
/// * Dropping the card disconnects with `SCARD_LEAVE_CARD`, so other applications keep
///   the card's state; use [`disconnect`](Self::disconnect) to reset or unpower it.
pub struct PcscCard {
    reader: String,
    share: ShareMode,
    atr: Vec<u8>,
    reset: bool,
    /// Nesting depth of [`Card::begin_transaction`] calls.
    depth: u32,
    worker: Option<Worker>,
}

impl PcscCard {
    pub(crate) fn connect(
        context: &sys::Context,
        reader: &str,
        share: ShareMode,
    ) -> Result<Self, Error> {
        let name = reader_cstring(reader)?;
        let card = context.connect(&name, share.to_pcsc(), PROTOCOLS).call("SCardConnect")?;
        let atr = card.status2_owned().call("SCardStatus")?.atr().to_vec();
        let (requests, inbox) = mpsc::channel();
        let (outbox, replies) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pcsc-card".into())
            .spawn(move || serve(card, share.to_pcsc(), &inbox, &outbox))
            .map_err(|e| Error::transport_with(TransportFailure::Other, e))?;
        tracing::debug!(reader, ?share, "connected to card");
        Ok(Self {
            reader: reader.to_owned(),
            share,
            atr,
            reset: false,
            depth: 0,
            worker: Some(Worker { requests, replies, thread }),
        })
    }

    /// The reader this card is in.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The share mode the connection was opened with.
    pub fn share_mode(&self) -> ShareMode {
        self.share
    }

    /// Disconnects (`SCardDisconnect`) with the given disposition, ending an open
    /// transaction first.
    pub fn disconnect(mut self, disposition: Disposition) -> Result<(), Error> {
        let reply = self.call(Request::Disconnect(disposition.to_pcsc()));
        self.join();
        match reply? {
            Ok(_) => Ok(()),
            Err(failure) => Err(failure.into()),
        }
    }

    /// Sends a request and waits for the answer. A failure comes back as the raw PC/SC
    /// failure; [`Self::failed`] turns it into the caller's error.
    fn call(&mut self, request: Request) -> Result<Reply, Error> {
        let gone = || Error::transport_with(TransportFailure::Other, WorkerGone);
        let worker = self.worker.as_ref().ok_or_else(gone)?;
        worker.requests.send(request).map_err(|_| gone())?;
        worker.replies.recv().map_err(|_| gone())
    }

    /// Maps a failure to the caller's error and recovers from a reset: `SCARD_W_RESET_CARD`
    /// is answered with `SCardReconnect(SCARD_LEAVE_CARD)`, the reset flag and
    /// [`TransportFailure::CardReset`]. If reconnecting fails, that failure is reported.
    ///
    /// A card pulled from its reader is not always reported as removed at once: pcscd
    /// notices only at its next poll of the reader (vpcd: every 400 ms), and until then
    /// `SCardTransmit` fails with `SCARD_E_NOT_TRANSACTED` or `SCARD_E_COMM_ERROR`. After
    /// those, the card's status is checked for up to [`REMOVAL_GRACE`]; a card that turns
    /// out to be gone is [`TransportFailure::CardRemoved`] (with the first failure kept as
    /// the source), otherwise the first failure stands. An answer without a status word
    /// is checked the same way.
    fn failed(&mut self, failure: PcscFailure) -> Error {
        if matches!(failure.code, sys::Error::NotTransacted | sys::Error::CommError) {
            return self.removed_or(failure);
        }
        if failure.code != sys::Error::ResetCard {
            return failure.into();
        }
        tracing::debug!(reader = %self.reader, "card was reset; reconnecting");
        match self.call(Request::Reconnect) {
            Ok(Ok(atr)) => {
                self.atr = atr.to_vec();
                self.reset = true;
                failure.into()
            }
            Ok(Err(reconnect)) => reconnect.into(),
            Err(error) => error,
        }
    }

    /// [`TransportFailure::CardRemoved`] if the card turns out to be gone (see
    /// [`card_gone`](Self::card_gone)), with `failure` as the source; else `failure`.
    fn removed_or(&mut self, failure: PcscFailure) -> Error {
        if self.card_gone() {
            tracing::debug!(reader = %self.reader, first = %failure, "the card was removed");
            return Error::transport_with(TransportFailure::CardRemoved, failure);
        }
        failure.into()
    }

    /// Whether `SCardStatus` reports the card removed within [`REMOVAL_GRACE`].
    fn card_gone(&mut self) -> bool {
        let deadline = std::time::Instant::now() + REMOVAL_GRACE;
        loop {
            match self.call(Request::Status) {
                Ok(Err(status))
                    if matches!(status.code, sys::Error::RemovedCard | sys::Error::NoSmartcard) =>
                {
                    return true;
                }
                Ok(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => return false,
            }
        }
    }

    /// Ends the worker and waits for it.
    fn join(&mut self) {
        if let Some(worker) = self.worker.take() {
            drop(worker.requests);
            if worker.thread.join().is_err() {
                tracing::debug!(reader = %self.reader, "PC/SC worker thread panicked");
            }
        }
    }
}

impl Card for PcscCard {
    /// `SCardTransmit` (PC/SC part 5 §3.1.5) with the protocol negotiated at connect.
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
        if command.len() > sys::MAX_BUFFER_SIZE_EXTENDED {
            return Err(Error::CommandTooLong {
                len: command.len(),
                max: sys::MAX_BUFFER_SIZE_EXTENDED,
            });
        }
        let request = Request::Transmit {
            command: Zeroizing::new(command.to_vec()),
            capacity: response.len(),
        };
        match self.call(request)? {
            // No status word: vpcd lost its card while pcscd still lists it.
            Ok(received) if received.len() < 2 && self.card_gone() => {
                Err(Error::transport(TransportFailure::CardRemoved))
            }
            Ok(received) => {
                let capacity = response.len();
                let target =
                    response.get_mut(..received.len()).ok_or(Error::BufferTooSmall { capacity })?;
                target.copy_from_slice(&received);
                Ok(received.len())
            }
            Err(failure) if failure.code == sys::Error::InsufficientBuffer => {
                Err(Error::BufferTooSmall { capacity: response.len() })
            }
            Err(failure) => Err(self.failed(failure)),
        }
    }

    /// `SCardBeginTransaction`. Nested calls are counted; only the outermost one locks.
    fn begin_transaction(&mut self) -> Result<(), Error> {
        match self.call(Request::Begin)? {
            Ok(_) => {
                self.depth += 1;
                Ok(())
            }
            Err(failure) => Err(self.failed(failure)),
        }
    }

    /// `SCardEndTransaction(SCARD_LEAVE_CARD)` for the outermost transaction. Without an
    /// open transaction this does nothing.
    fn end_transaction(&mut self) -> Result<(), Error> {
        if self.depth == 0 {
            return Ok(());
        }
        self.depth -= 1;
        match self.call(Request::End)? {
            Ok(_) => Ok(()),
            Err(failure) => Err(self.failed(failure)),
        }
    }

    fn take_reset(&mut self) -> bool {
        core::mem::take(&mut self.reset)
    }

    fn atr(&self) -> Option<&[u8]> {
        Some(&self.atr)
    }

    /// pcsc-lite carries extended APDUs (up to `MAX_BUFFER_SIZE_EXTENDED`) on T=1 readers;
    /// whether the reader and card accept them is their business.
    fn supports_extended_length(&self) -> bool {
        true
    }
}

impl Drop for PcscCard {
    fn drop(&mut self) {
        if self.worker.is_some() {
            if let Ok(Err(failure)) = self.call(Request::Disconnect(sys::Disposition::LeaveCard)) {
                tracing::debug!(reader = %self.reader, %failure, "disconnecting failed");
            }
            self.join();
        }
    }
}

impl core::fmt::Debug for PcscCard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcscCard")
            .field("reader", &self.reader)
            .field("share", &self.share)
            .field("in_transaction", &(self.depth > 0))
            .finish_non_exhaustive()
    }
}

// ---- the worker -------------------------------------------------------------------------

/// The worker's receive buffer: the largest extended response pcsc-lite can deliver.
fn receive_buffer() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(vec![0; sys::MAX_BUFFER_SIZE_EXTENDED])
}

/// How a transaction ended, as far as the worker loop is concerned.
enum AfterTransaction {
    /// The outermost `End` arrived; serve requests outside a transaction again.
    Ended,
    /// `Disconnect` arrived inside the transaction; the guard has been dropped (ending the
    /// transaction with `SCARD_LEAVE_CARD`), now disconnect with this disposition.
    Disconnect(sys::Disposition),
    /// The caller's side is gone.
    Closed,
}

/// The worker: serves requests until `Disconnect` or until the caller's side is dropped,
/// then disconnects.
fn serve(
    mut card: sys::Card,
    share: sys::ShareMode,
    inbox: &mpsc::Receiver<Request>,
    outbox: &mpsc::Sender<Reply>,
) {
    let mut buffer = receive_buffer();
    let mut disposition = sys::Disposition::LeaveCard;
    while let Ok(request) = inbox.recv() {
        let reply = match request {
            Request::Transmit { command, capacity } => {
                transmit(&card, &command, capacity, &mut buffer)
            }
            Request::Begin => match card.transaction() {
                Ok(transaction) => {
                    if outbox.send(Ok(Zeroizing::new(Vec::new()))).is_err() {
                        break;
                    }
                    match serve_transaction(transaction, share, inbox, outbox, &mut buffer) {
                        AfterTransaction::Ended => continue,
                        AfterTransaction::Disconnect(how) => {
                            disposition = how;
                            break;
                        }
                        AfterTransaction::Closed => break,
                    }
                }
                Err(code) => Err(PcscFailure::new("SCardBeginTransaction", code)),
            },
            Request::End => Err(PcscFailure::new("SCardEndTransaction", sys::Error::NotTransacted)),
            Request::Reconnect => reconnect(&mut card, share),
            Request::Status => atr_of(&card),
            Request::Disconnect(how) => {
                disposition = how;
                break;
            }
        };
        if outbox.send(reply).is_err() {
            break;
        }
    }
    let result = match card.disconnect(disposition) {
        Ok(()) => Ok(Zeroizing::new(Vec::new())),
        // Dropping the returned card disconnects again with SCARD_RESET_CARD; a card that
        // could not be disconnected (removed, service gone) has nothing left to reset.
        Err((_card, code)) => Err(PcscFailure::new("SCardDisconnect", code)),
    };
    // Only an explicit disconnect waits for this answer; otherwise nobody listens.
    let _ = outbox.send(result);
}

/// Serves requests inside a transaction, through the crate's guard, until the outermost
/// `End`. Inner `Begin`/`End` pairs only count.
fn serve_transaction(
    transaction: sys::Transaction<'_>,
    share: sys::ShareMode,
    inbox: &mpsc::Receiver<Request>,
    outbox: &mpsc::Sender<Reply>,
    buffer: &mut [u8],
) -> AfterTransaction {
    let mut transaction = transaction;
    let mut depth = 1u32;
    let empty = || Ok(Zeroizing::new(Vec::new()));
    while let Ok(request) = inbox.recv() {
        let reply = match request {
            Request::Transmit { command, capacity } => {
                transmit(&transaction, &command, capacity, buffer)
            }
            Request::Begin => {
                depth += 1;
                empty()
            }
            Request::End if depth > 1 => {
                depth -= 1;
                empty()
            }
            Request::End => {
                let result = match transaction.end(sys::Disposition::LeaveCard) {
                    Ok(()) => empty(),
                    // The returned guard's drop tries SCardEndTransaction once more; a lock
                    // still held after that is released with the connection.
                    Err((_transaction, code)) => Err(PcscFailure::new("SCardEndTransaction", code)),
                };
                return if outbox.send(result).is_ok() {
                    AfterTransaction::Ended
                } else {
                    AfterTransaction::Closed
                };
            }
            Request::Reconnect => transaction
                .reconnect(share, PROTOCOLS, sys::Disposition::LeaveCard)
                .call("SCardReconnect")
                .and_then(|()| atr_of(&transaction)),
            Request::Status => atr_of(&transaction),
            Request::Disconnect(how) => return AfterTransaction::Disconnect(how),
        };
        if outbox.send(reply).is_err() {
            return AfterTransaction::Closed;
        }
    }
    AfterTransaction::Closed
}

/// `SCardTransmit` into the worker's buffer, limited to the caller's capacity.
fn transmit(card: &sys::Card, command: &[u8], capacity: usize, buffer: &mut [u8]) -> Reply {
    let limit = capacity.min(buffer.len());
    let received = card.transmit(command, &mut buffer[..limit]).call("SCardTransmit")?;
    Ok(Zeroizing::new(received.to_vec()))
}

/// `SCardReconnect(SCARD_LEAVE_CARD)` and the ATR afterwards.
fn reconnect(card: &mut sys::Card, share: sys::ShareMode) -> Reply {
    card.reconnect(share, PROTOCOLS, sys::Disposition::LeaveCard).call("SCardReconnect")?;
    atr_of(card)
}

/// The card's ATR (`SCardStatus`).
fn atr_of(card: &sys::Card) -> Reply {
    Ok(Zeroizing::new(card.status2_owned().call("SCardStatus")?.atr().to_vec()))
}
