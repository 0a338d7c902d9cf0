//! The [`Card`] transport trait and its RAII [`Transaction`] guard.

use crate::error::Error;

/// A smart card reached through some transport: PC/SC, the in-process software card, or a
/// test double.
///
/// The trait is synchronous and object-safe: a card is a blocking device, owned by one
/// worker thread, and applet clients take `&mut dyn Card`. Implementations move raw APDU
/// bytes only; the ISO/IEC 7816-4 rules on top (extended length, chaining, `61xx`, `6Cxx`)
/// live once in [`Channel`](crate::Channel).
pub trait Card: Send {
    /// Sends one encoded command APDU and writes the whole response APDU (data followed by
    /// SW1 SW2) into `response`, returning its length.
    ///
    /// `response` is at least 258 bytes for short APDUs and 65 538 for extended ones.
    /// A transport error is reported as [`Error::Transport`]; a card reset that the
    /// transport recovered from is reported as
    /// [`TransportFailure::CardReset`](crate::TransportFailure::CardReset) once, so that the
    /// caller knows its security state is gone.
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error>;

    /// Starts an exclusive transaction: until [`end_transaction`](Card::end_transaction), no
    /// other application can interleave commands with ours. Transports without sharing
    /// (the in-process software card) keep the default, which does nothing.
    fn begin_transaction(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Ends the transaction begun by [`begin_transaction`](Card::begin_transaction),
    /// leaving the card powered and its state intact.
    fn end_transaction(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Reports — and clears — whether the card was reset since the last call (by another
    /// application or a power loss). After a reset the selected application and all
    /// verified PINs are gone; callers re-select and re-verify.
    fn take_reset(&mut self) -> bool {
        false
    }

    /// The card's Answer To Reset, where the transport knows it.
    fn atr(&self) -> Option<&[u8]> {
        None
    }

    /// Whether the transport and reader can carry extended-length APDUs (ISO/IEC 7816-4
    /// §5.1). The card's own support is learned from its historical bytes or applet data;
    /// see [`ChannelOptions`](crate::ChannelOptions).
    fn supports_extended_length(&self) -> bool {
        true
    }
}

/// A [`Card`] that counts the command APDUs sent through it into a counter the caller
/// owns (card clients report it as `apdus_sent`). Everything else is passed through.
pub struct CountingCard<'a> {
    inner: &'a mut dyn Card,
    sent: &'a mut u64,
}

impl<'a> CountingCard<'a> {
    /// Counts into `sent` what is transmitted to `inner`.
    pub fn new(inner: &'a mut dyn Card, sent: &'a mut u64) -> Self {
        Self { inner, sent }
    }
}

impl Card for CountingCard<'_> {
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
        *self.sent += 1;
        self.inner.transmit(command, response)
    }
    fn begin_transaction(&mut self) -> Result<(), Error> {
        self.inner.begin_transaction()
    }
    fn end_transaction(&mut self) -> Result<(), Error> {
        self.inner.end_transaction()
    }
    fn take_reset(&mut self) -> bool {
        self.inner.take_reset()
    }
    fn atr(&self) -> Option<&[u8]> {
        self.inner.atr()
    }
    fn supports_extended_length(&self) -> bool {
        self.inner.supports_extended_length()
    }
}

impl<C: Card + ?Sized> Card for Box<C> {
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
        (**self).transmit(command, response)
    }
    fn begin_transaction(&mut self) -> Result<(), Error> {
        (**self).begin_transaction()
    }
    fn end_transaction(&mut self) -> Result<(), Error> {
        (**self).end_transaction()
    }
    fn take_reset(&mut self) -> bool {
        (**self).take_reset()
    }
    fn atr(&self) -> Option<&[u8]> {
        (**self).atr()
    }
    fn supports_extended_length(&self) -> bool {
        (**self).supports_extended_length()
    }
}

/// An open transaction on a card; it ends when dropped.
///
/// ```
/// # use keystation_core::{Card, Transaction, Error};
/// # fn demo(card: &mut dyn Card) -> Result<(), Error> {
/// let mut tx = Transaction::begin(card)?;
/// let _ = tx.card().atr();
/// tx.end()?; // or just drop it
/// # Ok(()) }
/// ```
pub struct Transaction<'a> {
    card: &'a mut dyn Card,
    open: bool,
}

impl<'a> Transaction<'a> {
    /// Begins a transaction on `card`.
    pub fn begin(card: &'a mut dyn Card) -> Result<Self, Error> {
        card.begin_transaction()?;
        Ok(Self { card, open: true })
    }

    /// The card, for use inside the transaction (for example to build a
    /// [`Channel`](crate::Channel)).
    pub fn card(&mut self) -> &mut dyn Card {
        &mut *self.card
    }

    /// Ends the transaction now and reports whether that worked; dropping the guard ends
    /// it too but can only log a failure.
    pub fn end(mut self) -> Result<(), Error> {
        self.open = false;
        self.card.end_transaction()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open
            && let Err(error) = self.card.end_transaction()
        {
            tracing::debug!(%error, "ending card transaction failed");
        }
    }
}

impl core::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transaction").field("open", &self.open).finish_non_exhaustive()
    }
}
