//! keystation-softcard: a software YubiKey 5.
//!
//! [`SoftCard`] implements [`keystation_core::Card`]: command APDU bytes go in, response
//! APDU bytes come out. Inside, the card works as a YubiKey does:
//!
//! 1. the bytes are decoded into a [`Command`](keystation_core::Command) (a malformed APDU gets `6700`);
//! 2. command chaining (CLA bit `10`, ISO/IEC 7816-4 §5.1.1.1) is reassembled;
//! 3. SELECT by DF name (`00 A4 04 00`) picks an [`Applet`] by AID prefix, as YubiKeys
//!    accept the 5-byte PIV AID;
//! 4. everything else goes to the selected applet, which answers with data or a status
//!    word;
//! 5. response data longer than the command's Le is handed out in pieces with `61xx` and
//!    GET RESPONSE (§7.6.1), as a short-APDU card does.
//!
//! The applets are added by the modules that implement them (OpenPGP card 3.4, PIV with
//! Yubico's extensions, the management and OTP applets). Each splits its state into a
//! persistent part (what survives power loss: keys, PINs, data objects) and a volatile
//! part (verified PINs, the selected key), which [`SoftCard::power_cycle`] clears.
//!
//! **This is a test double and a rehearsal tool.** Its keys live in host memory (zeroized
//! when dropped); it offers none of a secure element's protection.

mod applet;
mod dispatch;
mod faults;
mod identity;
pub mod management;
pub mod openpgp;
pub mod piv;

pub use applet::{Applet, Context, Reply};
pub use faults::Faults;
pub use identity::{FormFactor, Identity, Version};

use keystation_core::{Card, Error, TransportFailure};

pub use dispatch::Dispatcher;

/// The ATR of a YubiKey 5 over USB (CCID), which ykman and yubikit recognise.
pub const YUBIKEY_5_ATR: &[u8] = &[
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

/// A software card: a [`Dispatcher`] with its applets, behind the [`Card`] trait, with
/// optional [`Faults`] for tests.
pub struct SoftCard {
    dispatcher: Dispatcher,
    faults: Faults,
    /// APDUs received since power-on (for [`Faults::drop_after`]).
    received: u64,
    removed: bool,
}

impl SoftCard {
    /// A card with the given identity and applets, and a random source seeded from `seed`
    /// (deterministic, for tests) or from the operating system.
    pub fn new(identity: Identity, applets: Vec<Box<dyn Applet>>, seed: Option<u64>) -> Self {
        Self {
            dispatcher: Dispatcher::new(identity, applets, seed),
            faults: Faults::default(),
            received: 0,
            removed: false,
        }
    }

    /// A YubiKey 5: OpenPGP 3.4, PIV, management and OTP applets, factory-fresh.
    pub fn yubikey5(identity: Identity, seed: Option<u64>) -> Self {
        let applets: Vec<Box<dyn Applet>> = vec![
            Box::new(openpgp::OpenPgp::new(&identity)),
            Box::new(piv::Piv::new(&identity)),
            Box::new(management::Management::new()),
            Box::new(management::Otp::new()),
        ];
        Self::new(identity, applets, seed)
    }

    /// Sets the faults to inject (see [`Faults`]).
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// The card's identity.
    pub fn identity(&self) -> &Identity {
        self.dispatcher.identity()
    }

    /// Processes one command APDU and returns the response APDU (data, SW1, SW2).
    /// This is the card's whole behaviour; [`Card::transmit`] and the vpcd bridge call it.
    pub fn process(&mut self, command: &[u8]) -> Vec<u8> {
        self.dispatcher.process(command)
    }

    /// Power off and on again (a reset): all volatile state — selected applet, verified
    /// PINs, pending chains and responses — is gone; persistent state stays.
    pub fn power_cycle(&mut self) {
        self.dispatcher.power_cycle();
        self.received = 0;
        self.removed = false;
    }

    /// The Answer To Reset.
    pub fn atr(&self) -> &[u8] {
        YUBIKEY_5_ATR
    }
}

impl Card for SoftCard {
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
        if self.removed {
            return Err(Error::transport(TransportFailure::CardRemoved));
        }
        self.received += 1;
        if self.faults.drop_after.is_some_and(|n| self.received > n) {
            self.removed = true;
            return Err(Error::transport(TransportFailure::CardRemoved));
        }
        if let Some(delay) = self.faults.delay {
            std::thread::sleep(delay);
        }
        let answer = match self.faults.force_status {
            Some((ins, status)) if command.get(1) == Some(&ins) => status.0.to_be_bytes().to_vec(),
            _ => self.process(command),
        };
        let capacity = response.len();
        let target = response.get_mut(..answer.len()).ok_or(Error::BufferTooSmall { capacity })?;
        target.copy_from_slice(&answer);
        Ok(answer.len())
    }

    fn atr(&self) -> Option<&[u8]> {
        Some(YUBIKEY_5_ATR)
    }

    fn supports_extended_length(&self) -> bool {
        true
    }
}

impl core::fmt::Debug for SoftCard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SoftCard")
            .field("identity", self.dispatcher.identity())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}
