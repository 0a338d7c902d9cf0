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
//! [`SoftCard::save_state`] serializes the persistent parts (each applet's
//! [`Applet::save`]) and [`SoftCard::restore_state`] brings them back, so that a simulated
//! card survives restarts; the saved bytes hold its keys and PINs in the clear.
//!
//! [`vpcd`] frames the card's bytes for vsmartcard's vpcd reader, through which
//! `keystation simulate` plugs the card into pcscd.
//!
//! **This is a test double and a rehearsal tool.** Its keys live in host memory (zeroized
//! when dropped); it offers none of a secure element's protection.

mod applet;
#[cfg(feature = "bridge")]
pub mod bridge;
mod dispatch;
mod faults;
mod identity;
pub mod management;
pub mod openpgp;
pub mod piv;
mod touch;
pub mod vpcd;

pub use applet::{Applet, Context, Reply, StateError};
pub use faults::Faults;
pub use identity::{FormFactor, Identity, Version};
pub use touch::{TOUCH_CACHE, Touch, TouchResponse};

use keystation_core::{Card, Error, TransportFailure, tlv};
use zeroize::Zeroizing;

pub use dispatch::Dispatcher;

/// The ATR of a YubiKey 5 over USB (CCID), which ykman and yubikit recognise.
pub const YUBIKEY_5_ATR: &[u8] = &[
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

/// The first bytes of a saved card state ([`SoftCard::save_state`]).
pub const STATE_MAGIC: &[u8; 4] = b"KSSC";
/// The container format version [`SoftCard::save_state`] writes.
pub const STATE_VERSION: u8 = 1;

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

    /// Sets what the simulated user does when a key's touch policy asks for a touch
    /// (default: touches at once). See [`TouchResponse`].
    pub fn set_touch(&mut self, response: TouchResponse) {
        self.dispatcher.touch_mut().set_response(response);
    }

    /// How many times the card has waited for a touch (cached touches do not count).
    pub fn touch_requests(&self) -> u64 {
        self.dispatcher.touch().requests()
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

    /// The card's persistent state, for a card that survives restarts (`keystation
    /// simulate --state`). **It holds every private key, PIN and management key in the
    /// clear**: for rehearsal cards with test keys only. It is zeroized when dropped.
    ///
    /// Format: [`STATE_MAGIC`], [`STATE_VERSION`], then BER-TLV: `01` the identity
    /// (serial, four bytes big-endian; firmware version, three bytes), and for each
    /// applet with something to save a `61` holding `4F` its AID and `53` its state in
    /// the applet's own versioned format ([`Applet::save`]).
    pub fn save_state(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(8192));
        out.extend_from_slice(STATE_MAGIC);
        out.push(STATE_VERSION);
        tlv::write(&mut out, 0x01, &identity_bytes(self.identity()));
        for applet in self.dispatcher.applets() {
            let saved = applet.save();
            if saved.is_empty() {
                continue;
            }
            let mut entry = Zeroizing::new(Vec::with_capacity(saved.len() + 32));
            tlv::write(&mut entry, 0x4F, applet.aid());
            tlv::write(&mut entry, 0x53, &saved);
            tlv::write(&mut out, 0x61, &entry);
        }
        out
    }

    /// Restores what [`save_state`](Self::save_state) saved, then power-cycles the card.
    /// The state must come from a card with the same identity and applets. Applets the
    /// state does not mention keep their state. The whole container is checked before
    /// any applet changes; should an applet then refuse its part, the applets before it
    /// are already restored — discard the card.
    pub fn restore_state(&mut self, saved: &[u8]) -> Result<(), StateError> {
        let body = saved.strip_prefix(STATE_MAGIC).ok_or(StateError::Magic)?;
        let (&version, body) = body.split_first().ok_or(StateError::Magic)?;
        if version != STATE_VERSION {
            return Err(StateError::Version(version));
        }
        let identity = self.identity().clone();
        let mut entries = Vec::new();
        let mut saved_identity = None;
        for item in tlv::parse(body) {
            let item = item.map_err(|_| StateError::Malformed("broken TLV structure"))?;
            match item.tag().0 {
                0x01 => saved_identity = Some(item.value()),
                0x61 => {
                    let value = item.value();
                    let missing = StateError::Malformed("applet entry without AID or state");
                    let aid = tlv::find(value, 0x4F).ok().flatten().ok_or(missing.clone())?;
                    let state = tlv::find(value, 0x53).ok().flatten().ok_or(missing)?;
                    entries.push((aid, state));
                }
                _ => return Err(StateError::Malformed("unknown item")),
            }
        }
        let saved_identity = saved_identity.ok_or(StateError::Malformed("identity missing"))?;
        if saved_identity != identity_bytes(&identity) {
            return Err(StateError::Identity {
                saved: describe_identity(saved_identity),
                current: describe_identity(&identity_bytes(&identity)),
            });
        }
        let mut indexed = Vec::with_capacity(entries.len());
        for (aid, state) in entries {
            let index = self
                .dispatcher
                .applets()
                .iter()
                .position(|a| a.aid() == aid)
                .ok_or_else(|| StateError::UnknownApplet(hex(aid)))?;
            indexed.push((index, state));
        }
        for (index, state) in indexed {
            self.dispatcher.applets_mut()[index].restore(&identity, state)?;
        }
        self.power_cycle();
        Ok(())
    }
}

/// The identity as [`SoftCard::save_state`] records it.
fn identity_bytes(identity: &Identity) -> [u8; 7] {
    let [a, b, c, d] = identity.serial.to_be_bytes();
    let Version(major, minor, patch) = identity.version;
    [a, b, c, d, major, minor, patch]
}

/// "serial N, firmware X.Y.Z" from [`identity_bytes`].
fn describe_identity(bytes: &[u8]) -> String {
    match bytes {
        &[a, b, c, d, major, minor, patch] => format!(
            "serial {}, firmware {}",
            u32::from_be_bytes([a, b, c, d]),
            Version(major, minor, patch)
        ),
        _ => "an unreadable identity".to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
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
