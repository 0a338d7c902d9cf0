//! Fault injection, for tests of what keystation does when a card misbehaves.

use std::time::Duration;

use keystation_core::StatusWord;

/// Faults the software card injects into [`Card::transmit`](keystation_core::Card).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// After this many APDUs the card is "removed": every further transmit fails with
    /// [`TransportFailure::CardRemoved`](keystation_core::TransportFailure::CardRemoved)
    /// until [`SoftCard::power_cycle`](crate::SoftCard::power_cycle).
    pub drop_after: Option<u64>,
    /// Answer every command with this instruction byte with this status, without
    /// processing it.
    pub force_status: Option<(u8, StatusWord)>,
    /// Wait this long before answering each command.
    pub delay: Option<Duration>,
}
