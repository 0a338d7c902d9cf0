//! Whether the card holding the proxy's key is in its reader, as PC/SC reports it.
//!
//! A thread waits on `SCardGetStatusChange` (through keystation-pcsc's
//! [`ReaderMonitor`](keystation_pcsc::ReaderMonitor)) and publishes every change of the
//! card's presence on a [`tokio::sync::watch`] channel. The proxy answers at once while
//! the card is out, and every upstream connection watches the channel and is closed when
//! the card goes — pcscd notices a removal within its reader poll (400 ms for vpcd, a
//! USB interrupt for real readers), so access ends well within a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keystation_pcsc::{PcscContext, ReaderEvent};
use tokio::sync::watch;

/// What the proxy knows of its card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardPresence {
    /// The card is in the reader.
    pub present: bool,
    /// Counts removals; a connection made under an older count must not be used.
    pub removals: u64,
}

impl CardPresence {
    /// A card present since start.
    pub const PRESENT: Self = Self { present: true, removals: 0 };
}

/// The sending half, kept by whatever watches the card (and by tests that simulate it).
#[derive(Debug, Clone)]
pub struct PresenceSender(Arc<watch::Sender<CardPresence>>);

impl PresenceSender {
    /// A channel starting with the card present.
    pub fn new() -> (Self, watch::Receiver<CardPresence>) {
        let (tx, rx) = watch::channel(CardPresence::PRESENT);
        (Self(Arc::new(tx)), rx)
    }

    /// Records that the card was removed (idempotent while it stays out).
    pub fn removed(&self) {
        self.0.send_if_modified(|state| {
            if !state.present {
                return false;
            }
            state.present = false;
            state.removals += 1;
            true
        });
    }

    /// Records that the card is back.
    pub fn inserted(&self) {
        self.0.send_if_modified(|state| !std::mem::replace(&mut state.present, true));
    }

    /// Another receiver.
    pub fn subscribe(&self) -> watch::Receiver<CardPresence> {
        self.0.subscribe()
    }
}

/// Watches `reader` on a thread until `stop` is set, feeding `sender`.
///
/// A failure of PC/SC itself (pcscd stopped) counts as removal: nothing can reach the
/// card then. The watch starts again a second later.
pub fn watch_reader(
    reader: String,
    sender: PresenceSender,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("card-presence".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Err(error) = watch_once(&reader, &sender, &stop) {
                tracing::warn!(
                    reader,
                    "cannot watch the card: {}",
                    keystation_core::describe_chain(&error)
                );
                sender.removed();
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    })
}

/// One monitoring session, from a fresh look at the reader until PC/SC fails or `stop`.
fn watch_once(
    reader: &str,
    sender: &PresenceSender,
    stop: &AtomicBool,
) -> Result<(), keystation_core::Error> {
    let context = PcscContext::establish()?;
    let mut monitor = context.monitor()?;
    let present = context.readers()?.iter().any(|r| r.name == reader && r.card_present);
    if present {
        sender.inserted()
    } else {
        sender.removed()
    }
    while !stop.load(Ordering::Relaxed) {
        match monitor.wait_for_change(Duration::from_millis(250))? {
            ReaderEvent::CardRemoved { reader: r } | ReaderEvent::ReaderRemoved { reader: r }
                if r == reader =>
            {
                tracing::warn!(reader, "the card was removed: upstream connections closed");
                sender.removed();
            }
            ReaderEvent::CardInserted { reader: r, .. } if r == reader => {
                tracing::info!(reader, "the card is back");
                sender.inserted();
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn removal_counts_once_per_removal() {
        let (sender, rx) = PresenceSender::new();
        sender.removed();
        sender.removed();
        assert_eq!(*rx.borrow(), CardPresence { present: false, removals: 1 });
        sender.inserted();
        assert_eq!(*rx.borrow(), CardPresence { present: true, removals: 1 });
        sender.removed();
        assert_eq!(*rx.borrow(), CardPresence { present: false, removals: 2 });
    }
}
