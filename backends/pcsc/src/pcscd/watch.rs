//! The client side of `SCardGetStatusChange` (PC/SC part 5 §3.1.6): comparing the
//! caller's `SCARD_READERSTATE` entries with the daemon's reader-state array.
//!
//! pcscd does not evaluate reader states for its clients; libpcsclite does, and so does
//! this module. [`evaluate`] fills in each entry's event state and says whether any of
//! them differs from what the caller believed (`dwCurrentState`); the loop around it (in
//! the parent module) fetches fresh arrays and waits for pcscd's change notifications.

use super::wire::ReaderEntry;
use super::{ReaderState, State};

/// `readerState` bits of `READER_STATE` (`pcsclite.h`: `SCARD_UNKNOWN`, `SCARD_ABSENT`,
/// `SCARD_PRESENT`, `SCARD_SWALLOWED`).
mod reader {
    pub(super) const UNKNOWN: u32 = 0x0001;
    pub(super) const ABSENT: u32 = 0x0002;
    pub(super) const PRESENT: u32 = 0x0004;
    pub(super) const SWALLOWED: u32 = 0x0008;
}

/// `readerSharing` of an exclusively held reader (`PCSCLITE_SHARING_EXCLUSIVE_CONTEXT`).
const SHARING_EXCLUSIVE: i32 = -1;

/// The name of the pseudo-reader whose state changes when readers come or go.
pub(crate) fn is_pnp(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(super::PNP_NOTIFICATION().to_bytes())
}

/// A 16-bit fingerprint (never 0) of the reader list, kept in the upper half of the PnP
/// pseudo-reader's event state: a reader list that changed between two calls shows as a
/// different value. (pcsc-lite 2.3 keeps a reader-event counter there, from
/// `CMD_GET_READER_EVENTS`; the 4.4 protocol has no such command.)
fn reader_list_tag(entries: &[ReaderEntry]) -> u32 {
    // FNV-1a over the names, each ended by a NUL.
    let mut hash: u32 = 0x811C_9DC5;
    for byte in entries.iter().flat_map(|e| e.name.iter().copied().chain([0])) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    (hash ^ (hash >> 16)) % 0xFFFF + 1
}

/// Whether every name in `states` (other than the PnP pseudo-reader and ignored entries)
/// is a reader of `entries`; pcsc-lite answers `SCARD_E_UNKNOWN_READER` otherwise.
pub(crate) fn all_known(states: &[ReaderState], entries: &[ReaderEntry]) -> bool {
    states.iter().all(|s| {
        let name = s.name.to_bytes();
        s.current.contains(State::IGNORE) || is_pnp(name) || entries.iter().any(|e| e.name == name)
    })
}

/// Fills in every entry's event state, ATR and event counter from the daemon's `entries`
/// and returns whether any entry changed (its event state then has `SCARD_STATE_CHANGED`).
/// `initial_readers` is the number of readers at the start of the call: a different
/// count now is a change of the PnP pseudo-reader.
pub(crate) fn evaluate(
    states: &mut [ReaderState],
    entries: &[ReaderEntry],
    initial_readers: usize,
) -> bool {
    let mut any = false;
    for state in states.iter_mut() {
        if state.current.contains(State::IGNORE) {
            continue;
        }
        let changed = if is_pnp(state.name.to_bytes()) {
            evaluate_pnp(state, entries, initial_readers)
        } else {
            match entries.iter().find(|e| e.name == state.name.to_bytes()) {
                Some(entry) => evaluate_reader(state, entry),
                None => {
                    // The reader went away.
                    state.event = State::UNKNOWN.bits() | State::UNAVAILABLE.bits();
                    state.atr_len = 0;
                    !state.current.contains(State::UNKNOWN)
                }
            }
        };
        if changed {
            state.event |= State::CHANGED.bits();
            any = true;
        }
    }
    any
}

/// The PnP pseudo-reader: changed when the number of readers differs from the start of
/// the call, or the reader list differs from the one the caller last saw.
fn evaluate_pnp(state: &mut ReaderState, entries: &[ReaderEntry], initial_readers: usize) -> bool {
    let tag = reader_list_tag(entries);
    let seen = state.current.bits() >> 16;
    state.event = tag << 16;
    entries.len() != initial_readers || (seen != 0 && seen != tag)
}

/// One reader: the event state the daemon's entry implies, and whether the caller's
/// current state differs in a way PC/SC reports (card inserted or removed, the event
/// counter moved, availability, mute, sharing, or the caller was unaware).
fn evaluate_reader(state: &mut ReaderState, entry: &ReaderEntry) -> bool {
    let current = state.current;
    let mut changed = false;
    let mut event = (entry.event_counter & 0xFFFF) << 16;

    if current.contains(State::UNKNOWN) {
        changed = true; // the reader is back
    }
    let believed_counter = current.bits() >> 16;
    if believed_counter != 0 && believed_counter != entry.event_counter & 0xFFFF {
        changed = true; // cards came and went since the caller looked
    }

    if entry.reader_state & reader::UNKNOWN != 0 {
        event |= State::UNAVAILABLE.bits();
        changed |= !current.contains(State::UNAVAILABLE);
    } else {
        changed |= current.contains(State::UNAVAILABLE);
    }

    let present = entry.reader_state & reader::PRESENT != 0;
    if entry.reader_state & reader::ABSENT != 0 {
        event |= State::EMPTY.bits();
        changed |= current.contains(State::PRESENT);
    } else if present {
        event |= State::PRESENT.bits();
        changed |= current.contains(State::EMPTY);
        let mute = entry.reader_state & reader::SWALLOWED != 0;
        if mute {
            event |= State::MUTE.bits();
        }
        changed |= mute != current.contains(State::MUTE);
    }
    let atr = if present { entry.atr.as_slice() } else { &[] };
    // The wire decoder bounds the ATR to MAX_ATR_SIZE, the size of `state.atr`.
    let len = atr.len().min(state.atr.len());
    state.atr[..len].copy_from_slice(&atr[..len]);
    state.atr_len = len;

    match entry.sharing {
        SHARING_EXCLUSIVE => {
            event |= State::EXCLUSIVE.bits();
            changed |= current.contains(State::INUSE);
        }
        n if n > 0 => {
            if present {
                event |= State::INUSE.bits();
            }
            changed |= current.contains(State::EXCLUSIVE);
        }
        _ => changed |= current.intersects(State::INUSE | State::EXCLUSIVE),
    }

    if current == State::UNAWARE {
        changed = true;
    }
    state.event = event;
    changed
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn entry(name: &str, counter: u32, reader_state: u32, sharing: i32) -> ReaderEntry {
        ReaderEntry {
            name: name.as_bytes().to_vec(),
            event_counter: counter,
            reader_state,
            sharing,
            atr: if reader_state & reader::PRESENT != 0 { vec![0x3B, 0x00] } else { vec![] },
            protocol: 0,
        }
    }

    fn state(name: &str, current: State) -> ReaderState {
        let name = std::ffi::CString::new(name).expect("no NUL");
        ReaderState::new(name, current)
    }

    #[test]
    fn an_unaware_caller_learns_the_state() {
        let entries = [entry("R", 3, reader::PRESENT | 0x30, 1)];
        let mut states = [state("R", State::UNAWARE)];
        assert!(evaluate(&mut states, &entries, 1));
        let s = &states[0];
        assert!(s.event_state().contains(State::CHANGED | State::PRESENT | State::INUSE));
        assert_eq!(s.event_count(), 3);
        assert_eq!(s.atr(), [0x3B, 0x00]);
        // Synced, nothing changes.
        let mut states = [ReaderState { current: State::from_raw(s.event), ..s.clone() }];
        states[0].current = State::from_raw(states[0].current.bits() & !State::CHANGED.bits());
        assert!(!evaluate(&mut states, &entries, 1));
    }

    #[test]
    fn insertion_removal_and_counter() {
        let believed = State::from_raw(State::EMPTY.bits() | (4 << 16));
        let mut states = [state("R", believed)];
        assert!(evaluate(&mut states, &[entry("R", 5, reader::PRESENT, 0)], 1));
        let mut states = [state("R", believed)];
        assert!(!evaluate(&mut states, &[entry("R", 4, reader::ABSENT, 0)], 1));
        // Removed and re-inserted between two looks: only the counter tells.
        let believed = State::from_raw(State::PRESENT.bits() | (4 << 16));
        let mut states = [state("R", believed)];
        assert!(evaluate(&mut states, &[entry("R", 6, reader::PRESENT, 0)], 1));
    }

    #[test]
    fn vanished_readers_and_pnp() {
        let mut states =
            [state("\\\\?PnP?\\Notification", State::UNAWARE), state("R", State::EMPTY)];
        assert!(all_known(&states, &[entry("R", 0, reader::ABSENT, 0)]));
        assert!(!all_known(&states, &[]));
        // Unaware PnP: no change while the reader count holds.
        assert!(!evaluate(&mut states, &[entry("R", 0, reader::ABSENT, 0)], 1));
        let tag = states[0].event_state().bits();
        assert_eq!(tag, 0, "flags of the PnP entry stay clear");
        // The reader goes away during the call.
        assert!(evaluate(&mut states, &[], 1));
        assert!(states[0].event_state().contains(State::CHANGED));
        assert!(states[1].event_state().contains(State::UNKNOWN | State::CHANGED));
        // A caller that synced the PnP entry sees a changed list in a later call.
        let mut pnp = [state("\\\\?pnp?\\notification", State::UNAWARE)];
        evaluate(&mut pnp, &[entry("R", 0, 2, 0)], 1);
        pnp[0].sync_current_state();
        assert!(!evaluate(&mut pnp, &[entry("R", 0, 2, 0)], 1));
        assert!(evaluate(&mut pnp, &[entry("S", 0, 2, 0)], 1));
    }

    #[test]
    fn sharing_and_mute() {
        let mut states = [state("R", State::from_raw(State::PRESENT.bits() | State::INUSE.bits()))];
        assert!(evaluate(&mut states, &[entry("R", 0, reader::PRESENT, SHARING_EXCLUSIVE)], 1));
        assert!(states[0].event_state().contains(State::EXCLUSIVE));
        let mut states = [state("R", State::PRESENT)];
        assert!(evaluate(&mut states, &[entry("R", 0, reader::PRESENT | reader::SWALLOWED, 0)], 1));
        assert!(states[0].event_state().contains(State::MUTE));
        let mut states = [state("R", State::PRESENT)];
        assert!(evaluate(&mut states, &[entry("R", 0, reader::UNKNOWN, 0)], 1));
        assert!(states[0].event_state().contains(State::UNAVAILABLE));
    }
}
