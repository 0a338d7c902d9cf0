//! The card around an applet: what a reader sees besides the applet's own answers.
//!
//! The applets handle one complete command at a time and produce the whole response. A
//! card's transport layer (ISO/IEC 7816-4) adds:
//!
//! * command chaining (§5.3.3): commands with CLA bit b5 set are collected, answered with
//!   `9000`, and handed to the applet as one command when the last part arrives;
//! * response length: a response longer than the command's Ne (256 when a short command has
//!   no Le field, so that clients which omit Le on SELECT still get the FCI) is cut, the rest
//!   announced with `61xx` and fetched with GET RESPONSE (§7.6.1);
//! * the Answer-to-Reset (ISO/IEC 7816-3 §8), built by [`atr`].

use iso7816::Status;
use iso7816::command::class::Chain;
use iso7816::command::{Command, CommandView, FromSliceError};

/// The longest command (after chaining) and response an applet handles; the largest DOs of
/// both applets (certificates) fit.
pub const BUFFER_SIZE: usize = 8192;

/// The reply buffer an applet writes into.
pub type Reply = heapless::Vec<u8, BUFFER_SIZE>;

/// INS of GET RESPONSE (ISO/IEC 7816-4 §7.6.1).
const GET_RESPONSE: u8 = 0xC0;

/// vpcd frames carry a 2-byte length, so a response (data and SW1-SW2) is at most this long.
const MAX_FRAME: usize = 0xFFFF;

/// One card application, driven by complete commands.
pub trait Applet {
    /// Handles one complete (unchained) command, writing response data to `reply`.
    fn call(&mut self, command: CommandView<'_>, reply: &mut Reply) -> Result<(), Status>;

    /// Clears the applet's volatile state, as a power cycle or reset does.
    fn reset(&mut self);
}

/// A card holding one applet: turns command APDUs into response APDUs.
#[derive(Debug)]
pub struct VirtualCard<A> {
    applet: A,
    atr: Vec<u8>,
    /// The parts of a chained command received so far.
    chain: Option<Box<Command<BUFFER_SIZE>>>,
    /// Response data not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
}

impl<A: Applet> VirtualCard<A> {
    /// A card with `applet` that answers the given ATR.
    pub fn new(applet: A, atr: Vec<u8>) -> Self {
        Self { applet, atr, chain: None, pending: Vec::new() }
    }

    /// The Answer-to-Reset.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// Power on, power off or reset: everything volatile is forgotten.
    pub fn reset(&mut self) {
        self.chain = None;
        self.pending.clear();
        self.applet.reset();
    }

    /// Processes one command APDU and returns the response APDU.
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let view = match CommandView::try_from(apdu) {
            Ok(view) => view,
            Err(error) => {
                self.chain = None;
                self.pending.clear();
                return status_only(match error {
                    FromSliceError::InvalidClass => Status::ClassNotSupported,
                    _ => Status::WrongLength,
                });
            }
        };
        let limit = response_limit(&view);

        if u8::from(view.instruction()) == GET_RESPONSE && !self.pending.is_empty() {
            let data = std::mem::take(&mut self.pending);
            return self.finish(data, limit);
        }
        self.pending.clear();

        if view.class().chain() == Chain::NotTheLast {
            return match self.chain.as_mut() {
                Some(chain) if same_command(chain.as_view(), view) => {
                    match chain.extend_from_command_view(view) {
                        Ok(()) => status_only(Status::Success),
                        Err(_) => {
                            self.chain = None;
                            status_only(Status::WrongLength)
                        }
                    }
                }
                // A new chain (one for another command ends the previous one).
                _ => match view.to_owned::<BUFFER_SIZE>() {
                    Ok(command) => {
                        self.chain = Some(Box::new(command));
                        status_only(Status::Success)
                    }
                    Err(_) => {
                        self.chain = None;
                        status_only(Status::WrongLength)
                    }
                },
            };
        }

        let mut reply = Reply::new();
        let result = match self.chain.take() {
            Some(mut chain) if same_command(chain.as_view(), view) => {
                if chain.extend_from_command_view(view).is_err() {
                    return status_only(Status::WrongLength);
                }
                self.applet.call(chain.as_view(), &mut reply)
            }
            _ => self.applet.call(view, &mut reply),
        };
        match result {
            Ok(()) => self.finish(reply.to_vec(), limit),
            // An error status carries no data (ISO/IEC 7816-4 §5.6).
            Err(status) => status_only(status),
        }
    }

    /// Sends at most `limit` bytes of the response data, keeping the rest for GET RESPONSE.
    fn finish(&mut self, mut response: Vec<u8>, limit: usize) -> Vec<u8> {
        if response.len() > limit {
            self.pending = response.split_off(limit);
        }
        if self.pending.is_empty() {
            response.extend_from_slice(&[0x90, 0x00]);
        } else {
            // SW2 counts the bytes still available, 00 meaning 256 or more.
            let available = u8::try_from(self.pending.len()).unwrap_or(0);
            response.extend_from_slice(&[0x61, available]);
        }
        response
    }
}

/// Whether `next` continues the chain that `first` started: the same INS, P1 and P2.
fn same_command(first: CommandView<'_>, next: CommandView<'_>) -> bool {
    first.instruction() == next.instruction() && first.p1 == next.p1 && first.p2 == next.p2
}

/// How much response data the command accepts (Ne, ISO/IEC 7816-4 §5.1), bounded by what a
/// vpcd frame holds.
fn response_limit(view: &CommandView<'_>) -> usize {
    let ne = match view.expected() {
        // No Le field: take it as the maximum for the command's length encoding. Strictly the
        // command expects no data, but clients omit Le on SELECT and still read the FCI.
        0 if view.extended => 65_536,
        0 => 256,
        ne => ne,
    };
    ne.min(MAX_FRAME - 2)
}

fn status_only(status: Status) -> Vec<u8> {
    <[u8; 2]>::from(status).to_vec()
}

/// Builds an Answer-to-Reset (ISO/IEC 7816-3 §8.2) offering T=0 and T=1 with the given
/// historical bytes (at most 15), ending with the check byte TCK that T=1 requires.
pub fn atr(historical: &[u8]) -> Vec<u8> {
    let k = u8::try_from(historical.len()).ok().filter(|k| *k <= 15).unwrap_or(15);
    // TS: direct convention. T0: TD1 follows, K historical bytes. TD1: TD2 follows, T=0.
    // TD2: T=1.
    let mut atr = vec![0x3B, 0x80 | k, 0x80, 0x01];
    atr.extend_from_slice(&historical[..usize::from(k)]);
    let tck = atr[1..].iter().fold(0, |acc, byte| acc ^ byte);
    atr.push(tck);
    atr
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes the command data, or `count` bytes when INS is `CA`; records resets.
    #[derive(Default)]
    struct Echo {
        calls: Vec<Vec<u8>>,
        resets: usize,
    }

    impl Applet for Echo {
        fn call(&mut self, command: CommandView<'_>, reply: &mut Reply) -> Result<(), Status> {
            self.calls.push(command.data().to_vec());
            match u8::from(command.instruction()) {
                0xCA => {
                    let count = usize::from(command.p1) * 256 + usize::from(command.p2);
                    let bytes = (0..count).map(|i| (i % 251) as u8);
                    reply.extend(bytes);
                    Ok(())
                }
                0x6D => Err(Status::InstructionNotSupportedOrInvalid),
                _ => reply.extend_from_slice(command.data()).map_err(|_| Status::WrongLength),
            }
        }

        fn reset(&mut self) {
            self.resets += 1;
        }
    }

    fn card() -> VirtualCard<Echo> {
        VirtualCard::new(Echo::default(), atr(&[0x80]))
    }

    #[test]
    fn atr_has_a_valid_check_byte() {
        let atr = atr(&[0x00, 0x31, 0xF5, 0x73, 0xC0, 0x01, 0x60, 0x00, 0x90, 0x00]);
        assert_eq!(atr[..4], [0x3B, 0x8A, 0x80, 0x01]);
        assert_eq!(atr.len(), 4 + 10 + 1);
        assert_eq!(atr[1..].iter().fold(0, |acc, b| acc ^ b), 0, "TCK makes the XOR zero");
    }

    #[test]
    fn short_response_and_error_without_data() {
        let mut card = card();
        assert_eq!(
            card.transmit(&[0x00, 0x01, 0x00, 0x00, 0x02, 0xAB, 0xCD]),
            [0xAB, 0xCD, 0x90, 0x00]
        );
        assert_eq!(card.transmit(&[0x00, 0x6D, 0x00, 0x00]), [0x6D, 0x00]);
        assert_eq!(card.transmit(&[0x00, 0x01]), [0x67, 0x00], "too short for a header");
    }

    #[test]
    fn long_response_is_fetched_with_get_response() {
        let mut card = card();
        // 600 bytes asked with Le = 00 (256): 256, 256, then 88.
        let first = card.transmit(&[0x00, 0xCA, 0x02, 0x58, 0x00]);
        assert_eq!(first.len(), 258);
        assert_eq!(first[256..], [0x61, 0x00]);
        let second = card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]);
        assert_eq!(second[256..], [0x61, 88]);
        let third = card.transmit(&[0x00, 0xC0, 0x00, 0x00, 88]);
        assert_eq!(third[88..], [0x90, 0x00]);
        let all: Vec<u8> =
            [&first[..256], &second[..256], &third[..88]].into_iter().flatten().copied().collect();
        assert_eq!(all, (0..600).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        // Nothing pending any more: GET RESPONSE goes to the applet.
        assert_eq!(card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]), [0x90, 0x00]);
    }

    #[test]
    fn extended_le_gets_everything_and_no_le_gets_256() {
        let mut card = card();
        let response = card.transmit(&[0x00, 0xCA, 0x02, 0x58, 0x00, 0x00, 0x00]);
        assert_eq!(response.len(), 602);
        assert_eq!(response[600..], [0x90, 0x00]);
        let response = card.transmit(&[0x00, 0xCA, 0x01, 0x2C]);
        assert_eq!(response.len(), 258);
        assert_eq!(response[256..], [0x61, 44]);
    }

    #[test]
    fn chained_command_reaches_the_applet_whole() {
        let mut card = card();
        assert_eq!(card.transmit(&[0x10, 0x01, 0x00, 0x00, 0x02, 0x01, 0x02]), [0x90, 0x00]);
        assert_eq!(card.transmit(&[0x10, 0x01, 0x00, 0x00, 0x01, 0x03]), [0x90, 0x00]);
        assert_eq!(
            card.transmit(&[0x00, 0x01, 0x00, 0x00, 0x01, 0x04, 0x00]),
            [0x01, 0x02, 0x03, 0x04, 0x90, 0x00]
        );
        assert_eq!(card.applet.calls, [vec![0x01, 0x02, 0x03, 0x04]]);
    }

    #[test]
    fn reset_drops_chain_and_pending_data() {
        let mut card = card();
        card.transmit(&[0x10, 0x01, 0x00, 0x00, 0x01, 0x01]);
        card.transmit(&[0x00, 0xCA, 0x02, 0x00, 0x00]);
        card.reset();
        assert_eq!(card.applet.resets, 1);
        assert_eq!(card.transmit(&[0x00, 0x01, 0x00, 0x00, 0x01, 0x02]), [0x02, 0x90, 0x00]);
        assert_eq!(card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]), [0x90, 0x00]);
    }
}
