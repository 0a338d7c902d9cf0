//! [`Channel`]: the ISO/IEC 7816-4 exchange rules on top of a [`Card`], written once.
//!
//! * Command chaining (§5.1.1.1): data longer than the form allows is sent in pieces,
//!   every piece but the last with CLA bit `10`.
//! * GET RESPONSE (§7.6.1): while the card answers `61xx`, fetch the rest.
//! * Wrong Le (§5.1.3, `6Cxx`): re-send the same command once with Le = `xx`.
//! * Extended length where both the transport and the card support it.
//!
//! Every exchange is traced at `trace` level under the target `keystation::apdu`, with the
//! data of secret-bearing commands and responses redacted.

use zeroize::Zeroizing;

use crate::apdu::{
    CLA_CHAINING, Command, EXTENDED_MAX_DATA, HexOrRedacted, INS_GET_RESPONSE, Le, Response,
    SHORT_MAX_DATA,
};
use crate::card::Card;
use crate::error::Error;

const TRACE_TARGET: &str = "keystation::apdu";

/// How a [`Channel`] talks to the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelOptions {
    /// Use extended-length APDUs when a command needs them, instead of chaining. Only
    /// set this when the card says it supports them (OpenPGP card 3.4 §4.4.1.7 "extended
    /// capabilities"; historical bytes, ISO/IEC 7816-4 §8.1.1.2.7); the transport must
    /// support them as well.
    pub extended_length: bool,
    /// The most response data one command may return in total, over all GET RESPONSE
    /// rounds. Protects against a card that never stops answering `61xx`.
    pub max_response_len: usize,
}

impl Default for ChannelOptions {
    /// Short APDUs with chaining (what every card understands); 64 KiB responses at most.
    fn default() -> Self {
        Self { extended_length: false, max_response_len: 65_536 }
    }
}

/// Exchanges [`Command`]s with a [`Card`], applying the 7816-4 transmission rules.
///
/// A channel borrows the card for as long as it lives; open a
/// [`Transaction`](crate::Transaction) first when several commands must not be
/// interleaved with other applications.
pub struct Channel<'c> {
    card: &'c mut dyn Card,
    options: ChannelOptions,
    /// Reused receive buffer, zeroized on drop (responses may carry secrets).
    receive: Zeroizing<Vec<u8>>,
    /// Reused encode buffer, zeroized on drop (commands may carry PINs and keys).
    send: Zeroizing<Vec<u8>>,
}

impl<'c> Channel<'c> {
    /// A channel with default options: short APDUs, chaining.
    pub fn new(card: &'c mut dyn Card) -> Self {
        Self::with_options(card, ChannelOptions::default())
    }

    /// A channel with the given options. Extended length is used only if the transport
    /// also supports it.
    pub fn with_options(card: &'c mut dyn Card, mut options: ChannelOptions) -> Self {
        options.extended_length &= card.supports_extended_length();
        let capacity = if options.extended_length { 65_538 } else { 258 };
        Self {
            card,
            options,
            receive: Zeroizing::new(vec![0; capacity]),
            send: Zeroizing::new(Vec::with_capacity(capacity)),
        }
    }

    /// The options in force (extended length cleared if the transport lacks it).
    pub fn options(&self) -> ChannelOptions {
        self.options
    }

    /// The underlying card.
    pub fn card(&mut self) -> &mut dyn Card {
        &mut *self.card
    }

    /// Sends `command` and returns the card's complete response, whatever its status.
    ///
    /// Chaining, GET RESPONSE and the `6Cxx` re-send happen inside; a failing status of an
    /// intermediate chained command ends the exchange and is returned as the response.
    pub fn transmit(&mut self, command: &Command) -> Result<Response, Error> {
        let len = command.data().len();
        let extended = self.options.extended_length && command.needs_extended();
        let chunk = if extended { EXTENDED_MAX_DATA } else { SHORT_MAX_DATA };
        if len > chunk && !extended && command.cla & CLA_CHAINING != 0 {
            return Err(Error::MalformedCommand { reason: "command already marked as chained" });
        }
        let secret_response = command.has_secret_response();
        let mut start = 0;
        loop {
            let end = (start + chunk).min(len);
            let last = end == len;
            let piece;
            let to_send = if start == 0 && last {
                command
            } else {
                piece = command.chunk(start..end, last);
                &piece
            };
            let response = self.exchange_one(to_send, extended, secret_response)?;
            if last || !response.status().is_success() {
                return Ok(response);
            }
            start = end;
        }
    }

    /// Sends `command` and returns the response data if the status is `9000`, else
    /// [`Error::Status`].
    pub fn transmit_ok(&mut self, command: &Command) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.transmit(command)?.into_data()
    }

    /// One command (no chaining), with the 6Cxx re-send and the 61xx loop.
    fn exchange_one(
        &mut self,
        command: &Command,
        extended: bool,
        secret_response: bool,
    ) -> Result<Response, Error> {
        let mut response = self.raw(command, extended, secret_response)?;
        if let Some(le) = response.status().correct_le() {
            let retry = command.clone().with_le(Le::Exactly(le as u32));
            response = self.raw(&retry, extended, secret_response)?;
        }
        let mut rounds = 0;
        let rounds_limit = self.options.max_response_len / 256 + 1;
        while let Some(remaining) = response.status().bytes_remaining() {
            rounds += 1;
            if rounds > rounds_limit || response.data().len() > self.options.max_response_len {
                return Err(Error::ResponseOverflow {
                    limit: self.options.max_response_len,
                    limit_rounds: rounds_limit,
                });
            }
            let get_response = Command::new(command.cla & !CLA_CHAINING, INS_GET_RESPONSE, 0, 0)
                .with_le(Le::Exactly(remaining as u32));
            let more = self.raw(&get_response, false, secret_response)?;
            response.append(more.data());
            response.set_status(more.status());
        }
        if response.data().len() > self.options.max_response_len {
            return Err(Error::ResponseOverflow {
                limit: self.options.max_response_len,
                limit_rounds: rounds_limit,
            });
        }
        Ok(response)
    }

    /// Encodes, transmits and decodes exactly one APDU.
    fn raw(
        &mut self,
        command: &Command,
        extended: bool,
        secret_response: bool,
    ) -> Result<Response, Error> {
        self.send.clear();
        command.encode_into(extended, &mut self.send)?;
        tracing::trace!(target: TRACE_TARGET, "> {command}");
        let received = self.card.transmit(&self.send, &mut self.receive)?;
        let bytes = self
            .receive
            .get(..received)
            .ok_or(Error::BufferTooSmall { capacity: self.receive.len() })?;
        let response = Response::parse(bytes)?;
        tracing::trace!(
            target: TRACE_TARGET,
            "< {} {:04X}",
            HexOrRedacted { bytes: response.data(), secret: secret_response },
            response.status().0,
        );
        Ok(response)
    }
}

impl core::fmt::Debug for Channel<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel").field("options", &self.options).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusWord;
    use std::collections::VecDeque;

    /// A scripted card: checks each command it receives and answers from a list.
    struct Script {
        steps: VecDeque<(Vec<u8>, Vec<u8>)>,
        extended: bool,
    }

    impl Script {
        fn new(steps: &[(&[u8], &[u8])]) -> Self {
            Self {
                steps: steps.iter().map(|(c, r)| (c.to_vec(), r.to_vec())).collect(),
                extended: true,
            }
        }
    }

    impl Card for Script {
        fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
            let (expected, answer) = self
                .steps
                .pop_front()
                .ok_or(Error::transport(crate::TransportFailure::Unresponsive))?;
            assert_eq!(command, &expected[..], "unexpected command");
            response[..answer.len()].copy_from_slice(&answer);
            Ok(answer.len())
        }
        fn supports_extended_length(&self) -> bool {
            self.extended
        }
    }

    #[test]
    fn get_response_loop_collects_all_data() {
        let mut card = Script::new(&[
            (&[0, 0xCA, 0, 0x6E, 0], &[1, 2, 0x61, 0x03]),
            (&[0, 0xC0, 0, 0, 3], &[3, 4, 5, 0x61, 0x00]),
            (&[0, 0xC0, 0, 0, 0], &[6, 0x90, 0]),
        ]);
        let mut ch = Channel::new(&mut card);
        let data = ch.transmit_ok(&Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Max));
        assert_eq!(data.map(|d| d.to_vec()).ok(), Some(vec![1, 2, 3, 4, 5, 6]));
        assert!(card.steps.is_empty());
    }

    #[test]
    fn wrong_le_is_resent_once_with_the_right_le() {
        let mut card = Script::new(&[
            (&[0, 0xB0, 0, 0, 0x10], &[0x6C, 0x04]),
            (&[0, 0xB0, 0, 0, 0x04], &[9, 9, 9, 9, 0x90, 0]),
        ]);
        let r =
            Channel::new(&mut card).transmit(&Command::new(0, 0xB0, 0, 0).with_le(Le::Exactly(16)));
        assert_eq!(r.map(|r| r.data().len()).ok(), Some(4));
    }

    #[test]
    fn long_data_is_chained_in_255_byte_pieces() {
        let data = vec![0x55; 300];
        let mut first = vec![0x10, 0xDB, 0x3F, 0xFF, 255];
        first.extend_from_slice(&data[..255]);
        let mut second = vec![0x00, 0xDB, 0x3F, 0xFF, 45];
        second.extend_from_slice(&data[255..]);
        let mut card = Script::new(&[(&first, &[0x90, 0]), (&second, &[0x90, 0])]);
        let r =
            Channel::new(&mut card).transmit(&Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&data));
        assert_eq!(r.map(|r| r.status()).ok(), Some(StatusWord::SUCCESS));
        assert!(card.steps.is_empty());
    }

    #[test]
    fn a_failing_chain_piece_stops_the_chain() {
        let data = vec![0x55; 300];
        let mut first = vec![0x10, 0xDB, 0x3F, 0xFF, 255];
        first.extend_from_slice(&data[..255]);
        let mut card = Script::new(&[(&first, &[0x69, 0x82])]);
        let r = Channel::new(&mut card)
            .transmit_ok(&Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&data));
        assert!(matches!(r, Err(Error::Status(StatusWord::SECURITY_STATUS_NOT_SATISFIED))));
    }

    #[test]
    fn extended_length_is_used_when_enabled_and_supported() {
        let data = vec![0x11; 300];
        let mut cmd = vec![0, 0xDB, 0x3F, 0xFF, 0, 0x01, 0x2C];
        cmd.extend_from_slice(&data);
        let mut card = Script::new(&[(&cmd, &[0x90, 0])]);
        let options = ChannelOptions { extended_length: true, ..Default::default() };
        let r = Channel::with_options(&mut card, options)
            .transmit(&Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&data));
        assert!(r.is_ok());

        let mut short_only = Script::new(&[]);
        short_only.extended = false;
        assert!(!Channel::with_options(&mut short_only, options).options().extended_length);
    }

    #[test]
    fn endless_61xx_is_cut_off() {
        struct Endless;
        impl Card for Endless {
            fn transmit(&mut self, _: &[u8], response: &mut [u8]) -> Result<usize, Error> {
                response[..258].fill(0xAA);
                response[256] = 0x61;
                response[257] = 0x00;
                Ok(258)
            }
        }
        let r =
            Channel::new(&mut Endless).transmit(&Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Max));
        assert!(matches!(r, Err(Error::ResponseOverflow { .. })));
    }

    #[test]
    fn transport_reporting_more_than_its_buffer_is_an_error() {
        struct Liar;
        impl Card for Liar {
            fn transmit(&mut self, _: &[u8], response: &mut [u8]) -> Result<usize, Error> {
                Ok(response.len() + 1)
            }
        }
        let r = Channel::new(&mut Liar).transmit(&Command::new(0, 0xCA, 0, 0x6E));
        assert!(matches!(r, Err(Error::BufferTooSmall { capacity: 258 })));
    }
}
