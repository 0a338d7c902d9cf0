//! [`ReaderMonitor`]: waiting for cards to be inserted or removed and readers to come and
//! go, with `SCardGetStatusChange` (PC/SC part 5 §3.1.6; pcsc-lite `SCardGetStatusChange`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use keystation_core::Error;

use crate::context::{is_gone, list_reader_states, query_states};
use crate::error::PcscFailure;
use crate::sys;

/// How often the reader list is re-read when the PC/SC implementation has no
/// `\\?PnP?\Notification` pseudo-reader (pcsc-lite has one; this is a fallback).
const POLL_WITHOUT_PNP: Duration = Duration::from_millis(500);

/// A change seen by [`ReaderMonitor::wait_for_change`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReaderEvent {
    /// A card was put into `reader`; `atr` is its Answer To Reset (empty if the card is
    /// mute).
    CardInserted {
        /// The reader name.
        reader: String,
        /// The card's ATR.
        atr: Vec<u8>,
    },
    /// The card was taken out of `reader`.
    CardRemoved {
        /// The reader name.
        reader: String,
    },
    /// A reader was plugged in. A card already in it is reported as
    /// [`CardInserted`](Self::CardInserted) right after.
    ReaderAdded {
        /// The reader name.
        reader: String,
    },
    /// A reader was unplugged (after [`CardRemoved`](Self::CardRemoved) if it held a card).
    ReaderRemoved {
        /// The reader name.
        reader: String,
    },
    /// Nothing changed before the timeout.
    Timeout,
}

/// What the monitor last saw of one reader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Seen {
    /// The reader is gone (`SCARD_STATE_UNKNOWN`).
    gone: bool,
    /// A card is present (`SCARD_STATE_PRESENT`).
    present: bool,
    /// Its ATR.
    atr: Vec<u8>,
    /// pcsc-lite's per-reader event counter (upper 16 bits of `dwEventState`), which
    /// counts insertions and removals; it tells a swap of cards between two waits from no
    /// change at all.
    events: u32,
}

impl Seen {
    fn from_state(state: &sys::ReaderState) -> Self {
        let flags = state.event_state();
        let present = flags.contains(sys::State::PRESENT);
        Self {
            gone: is_gone(flags),
            present,
            atr: if present { state.atr().to_vec() } else { Vec::new() },
            events: state.event_count(),
        }
    }
}

/// The events that turn `old` into `new` for `reader`.
fn changes(reader: &str, old: &Seen, new: &Seen) -> Vec<ReaderEvent> {
    let removed = || ReaderEvent::CardRemoved { reader: reader.to_owned() };
    let inserted = || ReaderEvent::CardInserted { reader: reader.to_owned(), atr: new.atr.clone() };
    let mut events = Vec::new();
    if new.gone {
        if old.present {
            events.push(removed());
        }
        events.push(ReaderEvent::ReaderRemoved { reader: reader.to_owned() });
        return events;
    }
    match (old.present, new.present) {
        (true, false) => events.push(removed()),
        (false, true) => events.push(inserted()),
        (true, true) if old.events != new.events || old.atr != new.atr => {
            // Removed and another (or the same) card inserted between two waits.
            events.push(removed());
            events.push(inserted());
        }
        _ => {}
    }
    events
}

/// The events for a reader that just appeared.
fn appeared(reader: &str, seen: &Seen) -> Vec<ReaderEvent> {
    let mut events = vec![ReaderEvent::ReaderAdded { reader: reader.to_owned() }];
    if seen.present {
        events.push(ReaderEvent::CardInserted { reader: reader.to_owned(), atr: seen.atr.clone() });
    }
    events
}

/// Watches all readers for card insertion and removal and for readers being added or
/// removed. Created by [`PcscContext::monitor`](crate::PcscContext::monitor).
///
/// Events are relative to the state at creation (and then to the last event reported):
/// a card already present when the monitor starts is not reported; use
/// [`PcscContext::readers`](crate::PcscContext::readers) for the initial picture.
pub struct ReaderMonitor {
    context: sys::Context,
    /// Whether `states[0]` is the `\\?PnP?\Notification` pseudo-reader.
    pnp: bool,
    /// The states passed to `SCardGetStatusChange`: the PnP pseudo-reader first (if
    /// supported), then one per reader.
    states: Vec<sys::ReaderState>,
    /// What was last reported for each entry of `states` (unused for the PnP entry).
    seen: Vec<Seen>,
    /// Events found but not yet returned.
    pending: VecDeque<ReaderEvent>,
}

impl ReaderMonitor {
    pub(crate) fn new(context: sys::Context) -> Result<Self, Error> {
        let mut states =
            vec![sys::ReaderState::new(sys::PNP_NOTIFICATION().to_owned(), sys::State::UNAWARE)];
        states.extend(list_reader_states(&context)?);
        query_states(&context, &mut states)?;
        // pcsc-lite answers the PnP pseudo-reader; implementations without it mark it
        // SCARD_STATE_UNKNOWN.
        let pnp = !states[0].event_state().contains(sys::State::UNKNOWN);
        if !pnp {
            states.remove(0);
        }
        tracing::debug!(pnp, readers = states.len() - usize::from(pnp), "reader monitor started");
        let mut monitor = Self { context, pnp, states, seen: Vec::new(), pending: VecDeque::new() };
        monitor.states.retain(|s| !is_gone(s.event_state()) || s.name() == sys::PNP_NOTIFICATION());
        for state in &mut monitor.states {
            state.sync_current_state();
        }
        monitor.seen = monitor.states.iter().map(Seen::from_state).collect();
        Ok(monitor)
    }

    /// Waits up to `timeout` for the next change and returns it, or
    /// [`ReaderEvent::Timeout`] if there was none.
    ///
    /// One `SCardGetStatusChange` can report several changes; they are queued and
    /// returned by the following calls without waiting. State changes that are not
    /// listed in [`ReaderEvent`] (another application connecting, for example) are
    /// absorbed and the wait goes on until the deadline.
    ///
    /// Errors: [`TransportFailure::ServiceUnavailable`] when pcscd stops
    /// (`SCARD_E_SERVICE_STOPPED`, `SCARD_E_NO_SERVICE`).
    ///
    /// [`TransportFailure::ServiceUnavailable`]: keystation_core::TransportFailure
    pub fn wait_for_change(&mut self, timeout: Duration) -> Result<ReaderEvent, Error> {
        let deadline = Instant::now().checked_add(timeout);
        let mut waited = false;
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => timeout,
            };
            if waited && remaining.is_zero() {
                return Ok(ReaderEvent::Timeout);
            }
            waited = true;
            let slice = if self.pnp { remaining } else { remaining.min(POLL_WITHOUT_PNP) };
            if self.states.is_empty() {
                // No readers and no PnP notification: nothing to wait on but the clock.
                std::thread::sleep(slice);
                self.rescan()?;
                continue;
            }
            match self.context.get_status_change(slice, &mut self.states) {
                Ok(()) => self.collect()?,
                Err(sys::Error::Timeout) => {
                    if !self.pnp {
                        self.rescan()?;
                    }
                }
                // Windows reports a vanished reader this way; pcsc-lite marks its state.
                Err(sys::Error::UnknownReader) => self.rescan()?,
                Err(code) => return Err(PcscFailure::new("SCardGetStatusChange", code).into()),
            }
        }
    }

    /// Turns the states `SCardGetStatusChange` changed into events.
    fn collect(&mut self) -> Result<(), Error> {
        let mut readers_changed = false;
        let first_reader = usize::from(self.pnp);
        for (index, state) in self.states.iter_mut().enumerate() {
            if !state.event_state().contains(sys::State::CHANGED) {
                continue;
            }
            if index < first_reader {
                readers_changed = true;
            } else {
                let name = state.name().to_string_lossy();
                let new = Seen::from_state(state);
                self.pending.extend(changes(&name, &self.seen[index], &new));
                self.seen[index] = new;
            }
            state.sync_current_state();
        }
        self.forget_gone_readers();
        if readers_changed {
            self.rescan()?;
        }
        Ok(())
    }

    /// Re-reads the reader list and reports readers that appeared or vanished.
    fn rescan(&mut self) -> Result<(), Error> {
        let listed = list_reader_states(&self.context)?;
        let first_reader = usize::from(self.pnp);
        // Vanished readers.
        let mut index = first_reader;
        while index < self.states.len() {
            let name = self.states[index].name();
            if listed.iter().any(|l| l.name() == name) {
                index += 1;
                continue;
            }
            let reader = name.to_string_lossy().into_owned();
            let old = self.seen.remove(index);
            self.states.remove(index);
            let gone = Seen { gone: true, ..Seen::default() };
            self.pending.extend(changes(&reader, &old, &gone));
        }
        // New readers.
        let start = self.states.len();
        for state in listed {
            if !self.states.iter().any(|s| s.name() == state.name()) {
                self.states.push(state);
            }
        }
        if self.states.len() > start {
            query_states(&self.context, &mut self.states[start..])?;
            for state in &mut self.states[start..] {
                state.sync_current_state();
                let seen = Seen::from_state(state);
                if !seen.gone {
                    self.pending.extend(appeared(&state.name().to_string_lossy(), &seen));
                }
                self.seen.push(seen);
            }
            // Drop what vanished again in between.
            self.forget_gone_readers();
        }
        Ok(())
    }

    /// Removes readers marked gone from both parallel lists (`states` and `seen`).
    fn forget_gone_readers(&mut self) {
        if !self.seen.iter().any(|s| s.gone) {
            return;
        }
        let mut index = 0;
        self.states.retain(|_| {
            let keep = !self.seen[index].gone;
            index += 1;
            keep
        });
        self.seen.retain(|s| !s.gone);
    }
}

impl core::fmt::Debug for ReaderMonitor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let readers: Vec<_> =
            self.states.iter().skip(usize::from(self.pnp)).map(|s| s.name().to_owned()).collect();
        f.debug_struct("ReaderMonitor")
            .field("pnp", &self.pnp)
            .field("readers", &readers)
            .field("pending", &self.pending)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(present: bool, atr: &[u8], events: u32) -> Seen {
        Seen { gone: false, present, atr: atr.to_vec(), events }
    }

    #[test]
    fn insertion_and_removal() {
        let empty = seen(false, &[], 4);
        let card = seen(true, &[0x3B, 0x00], 5);
        assert_eq!(
            changes("R", &empty, &card),
            [ReaderEvent::CardInserted { reader: "R".into(), atr: vec![0x3B, 0x00] }]
        );
        assert_eq!(
            changes("R", &card, &seen(false, &[], 6)),
            [ReaderEvent::CardRemoved { reader: "R".into() }]
        );
    }

    #[test]
    fn a_swap_between_waits_is_removal_then_insertion() {
        let before = seen(true, &[0x3B, 0x01], 5);
        let after = seen(true, &[0x3B, 0x01], 7);
        assert_eq!(
            changes("R", &before, &after),
            [
                ReaderEvent::CardRemoved { reader: "R".into() },
                ReaderEvent::CardInserted { reader: "R".into(), atr: vec![0x3B, 0x01] },
            ]
        );
    }

    #[test]
    fn other_state_changes_are_no_events() {
        let card = seen(true, &[0x3B], 5);
        assert!(changes("R", &card, &card.clone()).is_empty());
        let empty = seen(false, &[], 5);
        assert!(changes("R", &empty, &seen(false, &[], 7)).is_empty());
    }

    #[test]
    fn unplugging_a_reader_with_a_card_reports_both() {
        let card = seen(true, &[0x3B], 5);
        let gone = Seen { gone: true, ..Seen::default() };
        assert_eq!(
            changes("R", &card, &gone),
            [
                ReaderEvent::CardRemoved { reader: "R".into() },
                ReaderEvent::ReaderRemoved { reader: "R".into() },
            ]
        );
        assert_eq!(
            appeared("R", &card),
            [
                ReaderEvent::ReaderAdded { reader: "R".into() },
                ReaderEvent::CardInserted { reader: "R".into(), atr: vec![0x3B] },
            ]
        );
    }
}
