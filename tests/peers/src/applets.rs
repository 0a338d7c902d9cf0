//! The two third-party applets behind the [`Applet`] interface.

use iso7816::Status;
use iso7816::command::CommandView;
use piv_authenticator::constants::PIV_TRUNCATED_AID;

use crate::card::{Applet, Reply, atr};
use crate::platform::PeerClient;

/// Nitrokey's manufacturer ID in the OpenPGP AID (OpenPGP card 3.4 §4.2.1 and the
/// manufacturer list that goes with it), as Nitrokey's own devices report it.
pub const NITROKEY_MANUFACTURER: [u8; 2] = [0x00, 0x0F];

/// The card serial number in the OpenPGP AID.
pub const OPENPGP_SERIAL: [u8; 4] = [0x00, 0x00, 0x00, 0x01];

/// Historical bytes of the OpenPGP card (ISO/IEC 7816-4 §8.1.1, OpenPGP card 3.4 §6): the
/// ones opcard reports in DO 5F52, so that ATR and DO agree. Category 00 (compact-TLV with
/// status indicator): card service data `31 F5`, card capabilities `73 C0 01 60` (selection
/// by full and partial DF name; command chaining and extended Lc/Le), status indicator
/// `05 90 00` (life cycle "operational, activated", OpenPGP card 3.4 §6; `9000`).
pub const OPENPGP_HISTORICAL_BYTES: [u8; 10] =
    [0x00, 0x31, 0xF5, 0x73, 0xC0, 0x01, 0x60, 0x05, 0x90, 0x00];

/// Historical bytes of the PIV card: category 80 (compact-TLV, no status indicator), card
/// capabilities `73 80 01 60` (selection by full DF name; command chaining and extended
/// Lc/Le).
pub const PIV_HISTORICAL_BYTES: [u8; 5] = [0x80, 0x73, 0x80, 0x01, 0x60];

/// Nitrokey's OpenPGP card application (opcard), version 3.4.
pub struct OpenPgp<'a> {
    card: opcard::Card<PeerClient<'a>>,
}

impl<'a> OpenPgp<'a> {
    /// The applet on `client`, with Nitrokey's manufacturer ID and [`OPENPGP_SERIAL`].
    pub fn new(client: PeerClient<'a>) -> Self {
        let mut options = opcard::Options::default();
        options.manufacturer = NITROKEY_MANUFACTURER;
        options.serial = OPENPGP_SERIAL;
        Self { card: opcard::Card::new(client, options) }
    }

    /// The ATR the card answers with.
    pub fn atr() -> Vec<u8> {
        atr(&OPENPGP_HISTORICAL_BYTES)
    }
}

impl Applet for OpenPgp<'_> {
    fn call(&mut self, command: CommandView<'_>, reply: &mut Reply) -> Result<(), Status> {
        self.card.handle(command, reply)
    }

    fn reset(&mut self) {
        self.card.reset();
    }
}

/// Nitrokey's PIV application (piv-authenticator).
///
/// piv-authenticator keeps its PIN-verified state until the next SELECT and offers no way
/// to clear it from outside, so a reset here does not log the PIN out (a real card's would).
pub struct Piv<'a> {
    authenticator: piv_authenticator::Authenticator<PeerClient<'a>>,
    partial_aid: bool,
}

impl<'a> Piv<'a> {
    /// The applet on `client`. With `partial_aid`, SELECT by the bare PIV RID
    /// `A0 00 00 03 08` (ISO/IEC 7816-4 partial DF name, which yubico-piv-tool and ykman
    /// send) selects PIV; piv-authenticator itself wants at least 9 bytes of the AID.
    pub fn new(client: PeerClient<'a>, partial_aid: bool) -> Self {
        let options = piv_authenticator::Options::default();
        Self { authenticator: piv_authenticator::Authenticator::new(client, options), partial_aid }
    }

    /// The ATR the card answers with.
    pub fn atr() -> Vec<u8> {
        atr(&PIV_HISTORICAL_BYTES)
    }
}

impl Applet for Piv<'_> {
    fn call(&mut self, command: CommandView<'_>, reply: &mut Reply) -> Result<(), Status> {
        let is_select =
            command.class().into_inner() == 0x00 && u8::from(command.instruction()) == 0xA4;
        if self.partial_aid
            && is_select
            && command.p1 == 0x04
            && command.data() == &PIV_TRUNCATED_AID[..5]
        {
            let mut apdu = vec![0x00, 0xA4, 0x04, command.p2, 9];
            apdu.extend_from_slice(&PIV_TRUNCATED_AID);
            apdu.push(0x00);
            let full =
                CommandView::try_from(&apdu[..]).map_err(|_| Status::UnspecifiedCheckingError)?;
            return self.authenticator.respond(full, reply);
        }
        self.authenticator.respond(command, reply)
    }

    fn reset(&mut self) {
        self.authenticator.deselect();
    }
}
