//! The card's command loop: decoding, chaining, SELECT, GET RESPONSE.

use keystation_core::apdu::{CLA_CHAINING, INS_GET_RESPONSE, SHORT_MAX_LE};
use keystation_core::{Command, Le, StatusWord};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use crate::applet::{Applet, Context, Reply};
use crate::identity::Identity;
use crate::touch::Touch;

/// INS of SELECT (ISO/IEC 7816-4 §11.2.2).
const INS_SELECT: u8 = 0xA4;
/// P1 of SELECT by DF name.
const SELECT_BY_NAME: u8 = 0x04;
/// The shortest SELECT name matched by prefix: a registered application provider ID.
const MIN_AID_PREFIX: usize = 5;
/// The most data one chain may accumulate (the largest extended APDU's data field).
const MAX_CHAIN: usize = 65_535;

/// A chain of commands being reassembled (§5.1.1.1).
struct Chain {
    header: [u8; 4],
    data: Zeroizing<Vec<u8>>,
}

/// Decodes command APDUs and routes them to the applets.
pub struct Dispatcher {
    identity: Identity,
    applets: Vec<Box<dyn Applet>>,
    selected: Option<usize>,
    rng: ChaCha20Rng,
    chain: Option<Chain>,
    /// Response data not yet fetched with GET RESPONSE.
    pending: Zeroizing<Vec<u8>>,
    touch: Touch,
}

impl Dispatcher {
    /// A dispatcher over `applets`, with a random source seeded from `seed` or the OS.
    pub fn new(identity: Identity, applets: Vec<Box<dyn Applet>>, seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => ChaCha20Rng::seed_from_u64(seed),
            None => ChaCha20Rng::from_entropy(),
        };
        Self {
            identity,
            applets,
            selected: None,
            rng,
            chain: None,
            pending: Zeroizing::new(Vec::new()),
            touch: Touch::default(),
        }
    }

    /// The card's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The applets, in SELECT order.
    pub(crate) fn applets(&self) -> &[Box<dyn Applet>] {
        &self.applets
    }

    /// The applets, to restore their state.
    pub(crate) fn applets_mut(&mut self) -> &mut [Box<dyn Applet>] {
        &mut self.applets
    }

    /// Clears all volatile state, as a power cycle does.
    pub fn power_cycle(&mut self) {
        for applet in &mut self.applets {
            applet.deselect();
        }
        self.selected = None;
        self.chain = None;
        self.pending.clear();
        self.touch.reset();
    }

    /// The touch sensor.
    pub fn touch(&self) -> &Touch {
        &self.touch
    }

    /// The touch sensor, to set the simulated user's response.
    pub fn touch_mut(&mut self) -> &mut Touch {
        &mut self.touch
    }

    /// Processes one command APDU; returns the response APDU.
    pub fn process(&mut self, bytes: &[u8]) -> Vec<u8> {
        let command = match Command::parse(bytes) {
            Ok(command) => command,
            Err(_) => return status(StatusWord::WRONG_LENGTH),
        };
        // Extended form: a zero byte where a short Lc or Le would be, with more after it.
        let extended = bytes.len() >= 7 && bytes[4] == 0;
        if command.cla & !CLA_CHAINING != 0 {
            return status(StatusWord::CLA_NOT_SUPPORTED);
        }
        if command.ins == INS_GET_RESPONSE {
            return self.get_response(&command);
        }
        self.pending.clear();

        let command = match self.reassemble(command) {
            Ok(Some(command)) => command,
            Ok(None) => return status(StatusWord::SUCCESS),
            Err(sw) => return status(sw),
        };
        let reply = if command.ins == INS_SELECT && command.p1 == SELECT_BY_NAME {
            self.select(command.data())
        } else {
            match self.selected {
                Some(index) => {
                    let mut context = Context {
                        identity: &self.identity,
                        rng: &mut self.rng,
                        touch: &mut self.touch,
                    };
                    self.applets[index].process(&mut context, &command)
                }
                None => Err(StatusWord::INS_NOT_SUPPORTED),
            }
        };
        match reply {
            Ok(data) => {
                let limit = command.le.expected(extended).unwrap_or(if extended {
                    keystation_core::apdu::EXTENDED_MAX_LE
                } else {
                    SHORT_MAX_LE
                });
                self.pending = data;
                self.next_chunk(limit)
            }
            Err(sw) => status(sw),
        }
    }

    /// Collects chained pieces; returns the whole command when its last piece arrives.
    fn reassemble(&mut self, command: Command) -> Result<Option<Command>, StatusWord> {
        let header = [command.cla & !CLA_CHAINING, command.ins, command.p1, command.p2];
        let chained = command.cla & CLA_CHAINING != 0;
        let previous = self.chain.take().filter(|chain| chain.header == header);
        let mut data = match previous {
            Some(chain) => chain.data,
            None if chained => Zeroizing::new(Vec::new()),
            None => return Ok(Some(command)),
        };
        if data.len() + command.data().len() > MAX_CHAIN {
            return Err(StatusWord::WRONG_LENGTH);
        }
        data.extend_from_slice(command.data());
        if chained {
            self.chain = Some(Chain { header, data });
            return Ok(None);
        }
        let [cla, ins, p1, p2] = header;
        Ok(Some(Command::new(cla, ins, p1, p2).with_secret_data(data).with_le(command.le)))
    }

    /// SELECT by DF name: the first applet whose AID starts with `name`.
    fn select(&mut self, name: &[u8]) -> Reply {
        let found = self
            .applets
            .iter()
            .position(|a| name.len() >= MIN_AID_PREFIX && a.aid().starts_with(name));
        let Some(index) = found else {
            return Err(StatusWord::NOT_FOUND);
        };
        if let Some(previous) = self.selected
            && previous != index
        {
            self.applets[previous].deselect();
        }
        self.selected = Some(index);
        tracing::trace!(applet = self.applets[index].name(), "selected");
        let mut context =
            Context { identity: &self.identity, rng: &mut self.rng, touch: &mut self.touch };
        self.applets[index].select(&mut context)
    }

    /// GET RESPONSE: the next piece of pending data.
    fn get_response(&mut self, command: &Command) -> Vec<u8> {
        if self.pending.is_empty() {
            return status(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let limit = match command.le {
            Le::Exactly(n) => n as usize,
            Le::Max | Le::None => SHORT_MAX_LE,
        };
        self.next_chunk(limit)
    }

    /// Hands out up to `limit` bytes of pending data, with `61xx` while more remains.
    fn next_chunk(&mut self, limit: usize) -> Vec<u8> {
        let take = self.pending.len().min(limit);
        let mut out: Vec<u8> = self.pending.drain(..take).collect();
        let remaining = self.pending.len();
        let sw = if remaining == 0 {
            StatusWord::SUCCESS
        } else {
            // 61 00 means 256 or more.
            StatusWord::from_bytes(0x61, remaining.min(255) as u8 * u8::from(remaining < 256))
        };
        out.extend_from_slice(&sw.0.to_be_bytes());
        out
    }
}

fn status(sw: StatusWord) -> Vec<u8> {
    sw.0.to_be_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keystation_core::{Card, Channel};

    /// Echoes command data back; `INS 01` answers 600 bytes; `INS 02` fails with 6A80.
    struct Echo {
        selected: bool,
    }

    impl Applet for Echo {
        fn aid(&self) -> &[u8] {
            &[0xA0, 0, 0, 0, 0x99, 1, 2]
        }
        fn name(&self) -> &'static str {
            "echo"
        }
        fn select(&mut self, _: &mut Context<'_>) -> Reply {
            self.selected = true;
            Ok(Zeroizing::new(vec![0x61, 0x01, 0x00]))
        }
        fn deselect(&mut self) {
            self.selected = false;
        }
        fn process(&mut self, _: &mut Context<'_>, command: &Command) -> Reply {
            match command.ins {
                0x01 => Ok(Zeroizing::new((0..600).map(|i| i as u8).collect())),
                0x02 => Err(StatusWord::INCORRECT_DATA),
                _ => Ok(Zeroizing::new(command.data().to_vec())),
            }
        }
    }

    fn card() -> crate::SoftCard {
        crate::SoftCard::new(Identity::default(), vec![Box::new(Echo { selected: false })], Some(1))
    }

    fn select(card: &mut crate::SoftCard) -> Vec<u8> {
        card.process(&[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 0, 0x99])
    }

    #[test]
    fn select_matches_by_prefix_of_at_least_five_bytes() {
        let mut card = card();
        assert_eq!(select(&mut card), [0x61, 0x01, 0x00, 0x90, 0x00]);
        assert_eq!(card.process(&[0, 0xA4, 4, 0, 4, 0xA0, 0, 0, 0]), [0x6A, 0x82]);
        assert_eq!(card.process(&[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 0, 0x98]), [0x6A, 0x82]);
    }

    #[test]
    fn commands_before_select_and_bad_bytes_get_status_words() {
        let mut card = card();
        assert_eq!(card.process(&[0, 0x10, 0, 0]), [0x6D, 0x00]);
        assert_eq!(card.process(&[0, 0xA4]), [0x67, 0x00]);
        assert_eq!(card.process(&[0, 0xA4, 4, 0, 9, 1]), [0x67, 0x00]);
        assert_eq!(card.process(&[0x84, 0xA4, 4, 0]), [0x6E, 0x00]);
        assert_eq!(card.process(&[0, 0xC0, 0, 0, 0]), [0x69, 0x85]);
        select(&mut card);
        assert_eq!(card.process(&[0, 0x02, 0, 0]), [0x6A, 0x80]);
    }

    #[test]
    fn long_responses_come_in_pieces_through_get_response() {
        let mut card = card();
        select(&mut card);
        let first = card.process(&[0, 0x01, 0, 0, 0]);
        assert_eq!(first.len(), 258);
        assert_eq!(&first[256..], &[0x61, 0x00]);
        let second = card.process(&[0, 0xC0, 0, 0, 0]);
        assert_eq!(&second[256..], &[0x61, 88]);
        let third = card.process(&[0, 0xC0, 0, 0, 88]);
        assert_eq!(third.len(), 90);
        assert_eq!(&third[88..], &[0x90, 0x00]);
        // Extended Le takes it all at once.
        let all = card.process(&[0, 0x01, 0, 0, 0, 0, 0]);
        assert_eq!(all.len(), 602);
    }

    #[test]
    fn chained_commands_are_reassembled() {
        let mut card = card();
        select(&mut card);
        let mut first = vec![0x10, 0x03, 0, 0, 3];
        first.extend_from_slice(&[1, 2, 3]);
        assert_eq!(card.process(&first), [0x90, 0x00]);
        assert_eq!(card.process(&[0x00, 0x03, 0, 0, 2, 4, 5, 0]), [1, 2, 3, 4, 5, 0x90, 0x00]);
        // A chain interrupted by another command is dropped.
        assert_eq!(card.process(&first), [0x90, 0x00]);
        assert_eq!(card.process(&[0x00, 0x04, 0, 0, 1, 9, 0]), [9, 0x90, 0x00]);
    }

    #[test]
    fn core_channel_round_trips_through_the_soft_card() {
        let mut card = card();
        let mut channel = Channel::new(&mut card);
        let select = Command::new(0, 0xA4, 4, 0).with_data(&[0xA0, 0, 0, 0, 0x99, 1]);
        assert!(channel.transmit_ok(&select).is_ok());
        let long = channel.transmit_ok(&Command::new(0, 0x01, 0, 0).with_le(Le::Max));
        assert_eq!(long.map(|d| d.len()).ok(), Some(600));
        let data = vec![0x42; 700];
        let echoed =
            channel.transmit_ok(&Command::new(0, 0x03, 0, 0).with_data(&data).with_le(Le::Max));
        assert_eq!(echoed.map(|d| d.to_vec()).ok(), Some(data));
    }

    #[test]
    fn faults_remove_the_card_and_force_statuses() {
        let mut card = card();
        card.set_faults(crate::Faults {
            drop_after: Some(2),
            force_status: Some((0x02, StatusWord::MEMORY_FAILURE)),
            delay: None,
        });
        let mut buf = [0u8; 300];
        assert!(card.transmit(&[0, 0xA4, 4, 0, 5, 0xA0, 0, 0, 0, 0x99], &mut buf).is_ok());
        assert_eq!(card.transmit(&[0, 0x02, 0, 0], &mut buf).ok(), Some(2));
        assert_eq!(&buf[..2], &[0x65, 0x81]);
        let removed = card.transmit(&[0, 0x03, 0, 0], &mut buf);
        assert_eq!(
            removed.err().and_then(|e| e.transport_failure()),
            Some(keystation_core::TransportFailure::CardRemoved)
        );
        card.power_cycle();
        assert_eq!(
            card.transmit(&[0, 0x03, 0, 0], &mut buf).ok(),
            Some(2),
            "nothing selected after power cycle"
        );
    }
}
