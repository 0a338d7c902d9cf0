//! [`OpenPgpCard`]: a session with the OpenPGP application of one card.

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{OpenPgpKeySlot, SignInput, TouchPolicy};
use keystation_core::{
    Card, Channel, ChannelOptions, Command, CountingCard, Le, Response, SecretBytes, SecretKey,
    StatusWord,
};
use tracing::debug;
use zeroize::Zeroizing;

use crate::data::{
    AlgorithmInformation, ApplicationRelatedData, CardholderData, HistoricalBytes, KeyAttributes,
    KeyStatus, PwStatus, SLOTS, Uif, UifDo, encode_cardholder_name, slot_index,
};
use crate::error::{Error, Operation, PinRef, slot_name};
use crate::keys::{
    digest_info_prefix, ecdsa_signature_to_der, import_template, parse_public_key_template,
    secret_key_algorithm,
};

/// The OpenPGP application's name for SELECT: RID and application (§4.2.1).
pub const OPENPGP_AID_PREFIX: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

/// Instruction bytes (§7.1).
mod ins {
    pub(super) const SELECT: u8 = 0xA4;
    pub(super) const VERIFY: u8 = 0x20;
    pub(super) const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub(super) const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub(super) const PSO: u8 = 0x2A;
    pub(super) const ACTIVATE_FILE: u8 = 0x44;
    pub(super) const GENERATE_ASYMMETRIC_KEY_PAIR: u8 = 0x47;
    pub(super) const INTERNAL_AUTHENTICATE: u8 = 0x88;
    pub(super) const GET_DATA: u8 = 0xCA;
    pub(super) const PUT_DATA: u8 = 0xDA;
    pub(super) const PUT_DATA_ODD: u8 = 0xDB;
    pub(super) const TERMINATE_DF: u8 = 0xE6;
}

/// Shortest PW1 (§4.3.1).
const MIN_PW1_LEN: usize = 6;
/// Shortest PW3 and resetting code (§4.3.2, §4.3.3).
const MIN_PW3_LEN: usize = 8;
/// What a PW status byte of zero length is read as.
const DEFAULT_MAX_PIN_LEN: usize = 127;
/// Wrong PINs used to block PW1 and PW3 for the reset; the second is used should the
/// first happen to be right.
const BLOCKING_PINS: [[u8; 8]; 2] = [[0x40; 8], [0x41; 8]];

/// The transport half of a session: the card, the APDU counter and how to talk to it.
struct Link<'c> {
    card: &'c mut dyn Card,
    apdus: u64,
    /// Extended-length APDUs (card and transport both support them).
    extended: bool,
    /// Longest command data for one extended APDU (`7F66`, less the header bytes).
    max_command_data: usize,
    /// Le to ask for in extended form (`7F66`).
    max_response: u32,
}

impl Link<'_> {
    fn transmit(&mut self, operation: Operation, command: &Command) -> Result<Response, Error> {
        let extended = self.extended && command.data().len() <= self.max_command_data;
        let short_copy;
        let command = match command.le {
            Le::Exactly(n) if !extended && n > 256 => {
                short_copy = command.clone().with_le(Le::Max);
                &short_copy
            }
            _ => command,
        };
        let mut counted = CountingCard::new(&mut *self.card, &mut self.apdus);
        let options = ChannelOptions { extended_length: extended, max_response_len: 65_536 };
        let mut channel = Channel::with_options(&mut counted, options);
        channel.transmit(command).map_err(|e| Error::from_core(operation, e))
    }

    /// The Le that asks for everything the card has in one APDU where possible.
    fn le(&self) -> Le {
        if self.extended { Le::Exactly(self.max_response) } else { Le::Max }
    }

    fn configure(&mut self, ard: &ApplicationRelatedData) {
        let card_extended = ard.card_capabilities().is_some_and(|c| c.extended_length);
        self.extended = card_extended && self.card.supports_extended_length();
        let info = ard.extended_length;
        self.max_command_data =
            info.map_or(65_535, |i| usize::from(i.max_command).saturating_sub(9));
        self.max_response = info.map_or(65_536, |i| u32::from(i.max_response).max(256));
    }
}

/// Which passwords the card currently holds as verified (§4.3, access status), as far as
/// this session knows.
#[derive(Debug, Clone, Copy, Default)]
struct Verified {
    pw1_signing: bool,
    pw1: bool,
    pw3: bool,
}

/// A session with the OpenPGP application (OpenPGP card 3.4.1) of one card.
///
/// Opening it selects the application and reads the application related data `6E` once;
/// every later change this session makes is applied to that cached copy rather than
/// re-read, so that a whole provisioning run takes few APDUs. The client is driven by
/// what the card announces — historical bytes, extended capabilities `C0`, extended
/// length information `7F66`, algorithm information `FA`, key attributes `C1`–`C3`, PW
/// status `C4` — not by vendor.
pub struct OpenPgpCard<'c> {
    link: Link<'c>,
    ard: ApplicationRelatedData,
    algorithm_information: Option<AlgorithmInformation>,
    algorithms: Vec<KeyAlgorithm>,
    verified: Verified,
    public_keys: [Option<PublicKey>; 3],
    /// The highest retry counters seen (PW1, RC, PW3): what a counter returns to after a
    /// correct entry.
    max_retries: [u8; 3],
    cardholder: Option<CardholderData>,
    user_pin: Option<SecretBytes>,
}

impl core::fmt::Debug for OpenPgpCard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenPgpCard")
            .field("aid", &self.ard.aid)
            .field("apdus", &self.link.apdus)
            .field("extended_length", &self.link.extended)
            .finish_non_exhaustive()
    }
}

impl<'c> OpenPgpCard<'c> {
    /// Selects the OpenPGP application (§7.2.1) and reads its application related data
    /// `6E` and, where the card has it, its algorithm information `FA`.
    ///
    /// A card in termination state is [`Error::Terminated`]; see
    /// [`select_activating`](Self::select_activating).
    pub fn select(card: &'c mut dyn Card) -> Result<Self, Error> {
        Self::open(card, false)
    }

    /// Like [`select`](Self::select), but a card left in termination state (by a reset
    /// that was interrupted after TERMINATE DF) is activated (§7.2.17), which brings it
    /// to its factory state.
    pub fn select_activating(card: &'c mut dyn Card) -> Result<Self, Error> {
        Self::open(card, true)
    }

    fn open(card: &'c mut dyn Card, activate: bool) -> Result<Self, Error> {
        // The ATR's historical bytes say whether extended length works before 6E does.
        let atr_caps = card.atr().and_then(HistoricalBytes::from_atr).and_then(|h| h.capabilities);
        let extended =
            atr_caps.is_some_and(|c| c.extended_length) && card.supports_extended_length();
        let mut link =
            Link { card, apdus: 0, extended, max_command_data: 65_535, max_response: 65_536 };
        match select_application(&mut link) {
            Err(Error::Terminated) if activate => {
                debug!("OpenPGP application terminated; ACTIVATE FILE");
                simple(&mut link, Operation::Activate, ins::ACTIVATE_FILE)?;
                select_application(&mut link)?;
            }
            other => other?,
        }
        let ard = read_application_related_data(&mut link)?;
        link.configure(&ard);
        let mut card = Self {
            link,
            algorithm_information: None,
            algorithms: Vec::new(),
            verified: Verified::default(),
            public_keys: [None, None, None],
            max_retries: [
                ard.pw_status.pw1_retries,
                ard.pw_status.rc_retries,
                ard.pw_status.pw3_retries,
            ],
            cardholder: None,
            user_pin: None,
            ard,
        };
        if card.ard.extended_capabilities.algorithm_attributes_changeable() {
            card.algorithm_information = card.read_algorithm_information()?;
        }
        card.algorithms = card.compute_algorithms();
        debug!(
            aid = %hex(&card.ard.aid.bytes),
            version = ?card.ard.aid.version(),
            manufacturer = card.ard.aid.manufacturer_name().unwrap_or("unknown"),
            extended_length = card.link.extended,
            algorithm_information = card.algorithm_information.is_some(),
            "OpenPGP application selected"
        );
        Ok(card)
    }

    /// APDUs transmitted since this session opened (including GET RESPONSE and every
    /// piece of a chain).
    pub fn apdus_sent(&self) -> u64 {
        self.link.apdus
    }

    /// Whether commands travel as extended-length APDUs.
    pub fn uses_extended_length(&self) -> bool {
        self.link.extended
    }

    /// The cached application related data (`6E`), kept current with this session's
    /// own changes.
    pub fn application_related_data(&self) -> &ApplicationRelatedData {
        &self.ard
    }

    /// The algorithm information `FA` (§4.4.3.11), when the card has it.
    pub fn algorithm_information(&self) -> Option<&AlgorithmInformation> {
        self.algorithm_information.as_ref()
    }

    /// The card's serial number as gpg shows it (eight hex digits; on YubiKeys the
    /// decimal serial).
    pub fn serial(&self) -> String {
        self.ard.aid.serial_string()
    }

    /// The manufacturer's name, when keystation knows the ID.
    pub fn manufacturer_name(&self) -> Option<&'static str> {
        self.ard.aid.manufacturer_name()
    }

    /// The PW status bytes as last read or as this session's commands changed them.
    pub fn pw_status(&self) -> PwStatus {
        self.ard.pw_status
    }

    /// The key attributes of a slot (cached).
    pub fn key_attributes(&self, slot: OpenPgpKeySlot) -> &KeyAttributes {
        &self.ard.key_attributes[slot_index(slot)]
    }

    /// The algorithms `slot` can take: from `FA` when the card has it; otherwise every
    /// algorithm the slot's role allows (RSA only before version 3.0) if the attributes
    /// are changeable, else the current one.
    pub fn supported_algorithms(&self, slot: OpenPgpKeySlot) -> Vec<KeyAlgorithm> {
        if let Some(info) = &self.algorithm_information {
            return info.algorithms(slot);
        }
        let current = self.ard.key_attributes[slot_index(slot)].key_algorithm();
        if !self.ard.extended_capabilities.algorithm_attributes_changeable() {
            return current.into_iter().collect();
        }
        let ecc = self.ard.aid.version().0 >= 3;
        KeyAlgorithm::ALL
            .into_iter()
            .filter(|a| ecc || matches!(a, KeyAlgorithm::Rsa(_)))
            .filter(|a| KeyAttributes::for_algorithm(slot, *a).is_some())
            .collect()
    }

    fn compute_algorithms(&self) -> Vec<KeyAlgorithm> {
        let per_slot: Vec<Vec<KeyAlgorithm>> =
            SLOTS.iter().map(|s| self.supported_algorithms(*s)).collect();
        KeyAlgorithm::ALL.into_iter().filter(|a| per_slot.iter().any(|l| l.contains(a))).collect()
    }

    pub(crate) fn all_algorithms(&self) -> &[KeyAlgorithm] {
        &self.algorithms
    }

    // ----- transport helpers -----

    /// Sends a command, first re-selecting the application if the transport saw a reset.
    fn exchange(&mut self, operation: Operation, command: &Command) -> Result<Response, Error> {
        if self.link.card.take_reset() {
            debug!("card was reset; selecting the OpenPGP application again");
            self.verified = Verified::default();
            select_application(&mut self.link)?;
        }
        self.link.transmit(operation, command)
    }

    /// Sends a command and returns its data on `9000`.
    fn exchange_ok(
        &mut self,
        operation: Operation,
        command: &Command,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let response = self.exchange(operation, command)?;
        check(operation, response)
    }

    /// GET DATA (§7.2.6) of any data object; `None` when the card does not have it
    /// (`6A88`, `6A82`, `6B00`, `6A86`).
    pub fn get_data(&mut self, tag: u16) -> Result<Option<Vec<u8>>, Error> {
        let [p1, p2] = tag.to_be_bytes();
        let command = Command::new(0, ins::GET_DATA, p1, p2).with_le(self.link.le());
        let response = self.exchange(Operation::GetData(tag), &command)?;
        match response.status() {
            StatusWord::REFERENCED_DATA_NOT_FOUND
            | StatusWord::NOT_FOUND
            | StatusWord::WRONG_P1_P2
            | StatusWord::INCORRECT_P1_P2 => Ok(None),
            _ => Ok(Some(check(Operation::GetData(tag), response)?.to_vec())),
        }
    }

    /// PUT DATA (§7.2.8) of a simple data object. Most need PW3 verified (§4.4.1).
    ///
    /// Prefer the typed setters, which keep the cached data current.
    pub fn put_data(&mut self, tag: u16, value: &[u8]) -> Result<(), Error> {
        let [p1, p2] = tag.to_be_bytes();
        let command = Command::new(0, ins::PUT_DATA, p1, p2).with_data(value);
        self.exchange_ok(Operation::PutData(tag), &command)?;
        Ok(())
    }

    fn read_algorithm_information(&mut self) -> Result<Option<AlgorithmInformation>, Error> {
        let command = Command::new(0, ins::GET_DATA, 0x00, 0xFA).with_le(self.link.le());
        let response = self.exchange(Operation::GetData(0xFA), &command)?;
        if !response.status().is_success() {
            // Cards before 3.4 answer 6A88 (or 6D00/6B00); the DO is optional.
            debug!(status = %response.status(), "no algorithm information (FA)");
            return Ok(None);
        }
        Ok(Some(AlgorithmInformation::parse(response.data())?))
    }

    /// Reads `6E` again (after another application may have changed the card).
    pub fn refresh(&mut self) -> Result<(), Error> {
        self.ard = read_application_related_data(&mut self.link)?;
        self.link.configure(&self.ard);
        self.note_retries();
        Ok(())
    }

    /// Reads the PW status bytes `C4` (one APDU) and updates the cache.
    pub fn read_pw_status(&mut self) -> Result<PwStatus, Error> {
        let data =
            self.get_data(0xC4)?.ok_or(Error::malformed("PW status bytes", 0xC4, "absent"))?;
        self.ard.pw_status = PwStatus::parse(&data)?;
        self.note_retries();
        Ok(self.ard.pw_status)
    }

    fn note_retries(&mut self) {
        let s = self.ard.pw_status;
        for (max, now) in
            self.max_retries.iter_mut().zip([s.pw1_retries, s.rc_retries, s.pw3_retries])
        {
            *max = (*max).max(now);
        }
    }

    /// Cardholder related data `65` (§4.4.3.3), read once and cached.
    pub fn cardholder_data(&mut self) -> Result<&CardholderData, Error> {
        if self.cardholder.is_none() {
            let data = self.get_data(0x65)?.unwrap_or_default();
            self.cardholder = Some(CardholderData::parse(&data)?);
        }
        Ok(self.cardholder.get_or_insert_with(CardholderData::default))
    }

    /// The URL `5F50` (§4.4.3.4) where the public keys can be fetched.
    pub fn url(&mut self) -> Result<Vec<u8>, Error> {
        Ok(self.get_data(0x5F50)?.unwrap_or_default())
    }

    /// Login data `5E` (§4.4.3.5).
    pub fn login_data(&mut self) -> Result<Vec<u8>, Error> {
        Ok(self.get_data(0x5E)?.unwrap_or_default())
    }

    // ----- reset -----

    /// Resets the application to its factory state as §7.2.16/§7.2.17 describe: blocks
    /// PW1 and PW3 with wrong VERIFYs (as many as the PW status bytes say are left),
    /// TERMINATE DF, ACTIVATE FILE, then selects the application and reads `6E` again.
    ///
    /// All keys, PINs and data objects are gone afterwards; the PINs are the card's
    /// factory PINs (`123456` / `12345678` on most cards).
    pub fn factory_reset(&mut self) -> Result<(), Error> {
        debug!(pw1_retries = self.ard.pw_status.pw1_retries, "factory reset: blocking PW1");
        self.block(PinRef::Pw1)?;
        debug!(pw3_retries = self.ard.pw_status.pw3_retries, "factory reset: blocking PW3");
        self.block(PinRef::Pw3)?;
        debug!("factory reset: TERMINATE DF");
        simple(&mut self.link, Operation::Terminate, ins::TERMINATE_DF)?;
        debug!("factory reset: ACTIVATE FILE");
        simple(&mut self.link, Operation::Activate, ins::ACTIVATE_FILE)?;
        select_application(&mut self.link)?;
        self.ard = read_application_related_data(&mut self.link)?;
        self.link.configure(&self.ard);
        let s = self.ard.pw_status;
        self.max_retries = [s.pw1_retries, s.rc_retries, s.pw3_retries];
        self.verified = Verified::default();
        self.public_keys = [None, None, None];
        self.cardholder = None;
        self.user_pin = None;
        debug!("factory reset: done");
        Ok(())
    }

    /// Sends wrong VERIFYs until the PIN's counter is at zero.
    fn block(&mut self, pin: PinRef) -> Result<(), Error> {
        let p2 = pin.verify_p2().unwrap_or(0x83);
        let mut remaining = u32::from(self.retries(pin));
        let mut which = 0;
        let mut rounds = 0;
        while remaining > 0 && rounds < 20 {
            rounds += 1;
            let command = Command::new(0, ins::VERIFY, 0, p2).with_data(&BLOCKING_PINS[which]);
            let status = self.exchange(Operation::Verify(pin), &command)?.status();
            match status {
                StatusWord::SECURITY_STATUS_NOT_SATISFIED => remaining -= 1,
                StatusWord::AUTH_METHOD_BLOCKED => remaining = 0,
                sw if sw.retries_left().is_some() => {
                    remaining = u32::from(sw.retries_left().unwrap_or(0));
                }
                // The blocking PIN happened to be right: use the other one.
                StatusWord::SUCCESS => which = 1 - which,
                status => return Err(Error::Card { operation: Operation::Verify(pin), status }),
            }
        }
        self.set_retries(pin, 0);
        Ok(())
    }

    // ----- PINs -----

    fn retries(&self, pin: PinRef) -> u8 {
        let s = self.ard.pw_status;
        match pin {
            PinRef::Pw1 | PinRef::Pw1Signing => s.pw1_retries,
            PinRef::Pw3 => s.pw3_retries,
            PinRef::ResettingCode => s.rc_retries,
        }
    }

    fn set_retries(&mut self, pin: PinRef, retries: u8) {
        let s = &mut self.ard.pw_status;
        match pin {
            PinRef::Pw1 | PinRef::Pw1Signing => s.pw1_retries = retries,
            PinRef::Pw3 => s.pw3_retries = retries,
            PinRef::ResettingCode => s.rc_retries = retries,
        }
    }

    fn restore_retries(&mut self, pin: PinRef) {
        let index = match pin {
            PinRef::Pw1 | PinRef::Pw1Signing => 0,
            PinRef::ResettingCode => 1,
            PinRef::Pw3 => 2,
        };
        let max = self.max_retries[index];
        if max > self.retries(pin) {
            self.set_retries(pin, max);
        }
    }

    fn set_verified(&mut self, pin: PinRef, value: bool) {
        match pin {
            PinRef::Pw1Signing => self.verified.pw1_signing = value,
            PinRef::Pw1 => self.verified.pw1 = value,
            PinRef::Pw3 => self.verified.pw3 = value,
            PinRef::ResettingCode => {}
        }
    }

    /// Checks a PIN's length against §4.3 and the PW status bytes.
    fn check_pin_length(&self, pin: PinRef, value: &SecretBytes) -> Result<(), Error> {
        let s = self.ard.pw_status;
        let (min, max) = match pin {
            PinRef::Pw1 | PinRef::Pw1Signing => (MIN_PW1_LEN, s.pw1_max_len),
            PinRef::Pw3 => (MIN_PW3_LEN, s.pw3_max_len),
            PinRef::ResettingCode => (MIN_PW3_LEN, s.rc_max_len),
        };
        let max = if max == 0 { DEFAULT_MAX_PIN_LEN } else { usize::from(max) };
        if (min..=max).contains(&value.len()) {
            Ok(())
        } else {
            Err(Error::PinLength { pin, min, max })
        }
    }

    /// Maps the answer to a command that checked a password (VERIFY, CHANGE REFERENCE
    /// DATA, RESET RETRY COUNTER) onto the precise error, updating the cached counters.
    fn pin_outcome(
        &mut self,
        pin: PinRef,
        operation: Operation,
        status: StatusWord,
    ) -> Result<(), Error> {
        match status {
            StatusWord::SUCCESS => {
                self.restore_retries(pin);
                Ok(())
            }
            StatusWord::AUTH_METHOD_BLOCKED => {
                self.set_retries(pin, 0);
                Err(Error::PinBlocked(pin))
            }
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => {
                let retries = self.retries(pin).saturating_sub(1);
                self.set_retries(pin, retries);
                if retries == 0 {
                    Err(Error::PinBlocked(pin))
                } else {
                    Err(Error::WrongPin { pin, retries })
                }
            }
            sw if sw.retries_left().is_some() => {
                let retries = sw.retries_left().unwrap_or(0);
                self.set_retries(pin, retries);
                if retries == 0 {
                    Err(Error::PinBlocked(pin))
                } else {
                    Err(Error::WrongPin { pin, retries })
                }
            }
            status => Err(Error::Card { operation, status }),
        }
    }

    /// VERIFY (§7.2.2): PW1 for signing (`81`), PW1 for other commands (`82`) or PW3
    /// (`83`). A wrong PIN is [`Error::WrongPin`] with the tries left; a blocked one
    /// [`Error::PinBlocked`].
    pub fn verify(&mut self, pin: PinRef, value: &SecretBytes) -> Result<(), Error> {
        let Some(p2) = pin.verify_p2() else {
            return Err(Error::InvalidInput {
                what: "PIN reference",
                reason: "cannot be verified",
            });
        };
        self.check_pin_length(pin, value)?;
        debug!(%pin, "VERIFY");
        let command = Command::new(0, ins::VERIFY, 0, p2)
            .with_secret_data(Zeroizing::new(value.expose().to_vec()));
        let status = self.exchange(Operation::Verify(pin), &command)?.status();
        let outcome = self.pin_outcome(pin, Operation::Verify(pin), status);
        self.set_verified(pin, outcome.is_ok());
        outcome
    }

    /// Keeps the user PIN in memory (zeroized on drop) so that signing, deciphering and
    /// authenticating verify PW1 when the card needs it, including through
    /// [`CardSigner`](crate::CardSigner)s and [`KeyGen`](keystation_core::KeyGen) signers.
    pub fn remember_user_pin(&mut self, pin: SecretBytes) -> Result<(), Error> {
        self.check_pin_length(PinRef::Pw1, &pin)?;
        self.user_pin = Some(pin);
        Ok(())
    }

    /// Drops the remembered user PIN.
    pub fn forget_user_pin(&mut self) {
        self.user_pin = None;
    }

    /// Verifies PW1 with the remembered PIN if the session does not hold it verified.
    fn ensure_user_pin(&mut self, pin: PinRef) -> Result<(), Error> {
        let verified = match pin {
            PinRef::Pw1Signing => self.verified.pw1_signing,
            _ => self.verified.pw1,
        };
        if !verified && let Some(value) = self.user_pin.clone() {
            self.verify(pin, &value)?;
        }
        Ok(())
    }

    /// CHANGE REFERENCE DATA (§7.2.3) for PW1 or PW3: `old` then `new`.
    ///
    /// The session treats the changed PIN as no longer verified (cards differ), so the
    /// next command that needs it verifies again; a remembered user PIN becomes the new
    /// one.
    pub fn change_pin(
        &mut self,
        pin: PinRef,
        old: &SecretBytes,
        new: &SecretBytes,
    ) -> Result<(), Error> {
        let (p2, which) = match pin {
            PinRef::Pw1 | PinRef::Pw1Signing => (0x81, PinRef::Pw1),
            PinRef::Pw3 => (0x83, PinRef::Pw3),
            PinRef::ResettingCode => {
                return Err(Error::InvalidInput {
                    what: "PIN reference",
                    reason: "set the resetting code with set_resetting_code",
                });
            }
        };
        self.check_pin_length(which, new)?;
        debug!(pin = %which, "CHANGE REFERENCE DATA");
        let mut data = Zeroizing::new(Vec::with_capacity(old.len() + new.len()));
        data.extend_from_slice(old.expose());
        data.extend_from_slice(new.expose());
        let command = Command::new(0, ins::CHANGE_REFERENCE_DATA, 0, p2).with_secret_data(data);
        let status = self.exchange(Operation::ChangePin(which), &command)?.status();
        if which == PinRef::Pw1 {
            self.verified.pw1 = false;
            self.verified.pw1_signing = false;
        } else {
            self.verified.pw3 = false;
        }
        self.pin_outcome(which, Operation::ChangePin(which), status)?;
        if which == PinRef::Pw1 && self.user_pin.is_some() {
            self.user_pin = Some(new.clone());
        }
        Ok(())
    }

    /// Writes PW status byte 1 (`C4`, §4.4.3.9): whether one VERIFY of PW1 (`81`) allows
    /// several signatures. Needs PW3 and a card whose extended capabilities allow it.
    pub fn set_pw1_valid_for_several_signatures(&mut self, several: bool) -> Result<(), Error> {
        if !self.ard.extended_capabilities.pw_status_changeable() {
            return Err(Error::UnsupportedFeature("changing the PW status bytes"));
        }
        debug!(several, "PUT DATA PW status byte 1");
        self.put_data(0xC4, &[u8::from(several)])?;
        self.ard.pw_status.pw1_valid_for_several_signatures = several;
        Ok(())
    }

    /// Sets the resetting code `D3` (§4.3.3), or clears it with `None`. Needs PW3.
    pub fn set_resetting_code(&mut self, code: Option<&SecretBytes>) -> Result<(), Error> {
        let data = match code {
            Some(code) => {
                self.check_pin_length(PinRef::ResettingCode, code)?;
                Zeroizing::new(code.expose().to_vec())
            }
            None => Zeroizing::new(Vec::new()),
        };
        debug!(set = code.is_some(), "PUT DATA resetting code");
        let command = Command::new(0, ins::PUT_DATA, 0x00, 0xD3).with_secret_data(data);
        self.exchange_ok(Operation::PutData(0xD3), &command)?;
        if code.is_none() {
            self.ard.pw_status.rc_retries = 0;
        } else if self.max_retries[1] > 0 {
            self.ard.pw_status.rc_retries = self.max_retries[1];
        }
        Ok(())
    }

    /// RESET RETRY COUNTER (§7.2.4) of PW1 with the resetting code, setting a new PW1.
    pub fn reset_retry_counter_with_code(
        &mut self,
        code: &SecretBytes,
        new_pw1: &SecretBytes,
    ) -> Result<(), Error> {
        self.check_pin_length(PinRef::Pw1, new_pw1)?;
        debug!("RESET RETRY COUNTER with the resetting code");
        let mut data = Zeroizing::new(Vec::with_capacity(code.len() + new_pw1.len()));
        data.extend_from_slice(code.expose());
        data.extend_from_slice(new_pw1.expose());
        let command = Command::new(0, ins::RESET_RETRY_COUNTER, 0x00, 0x81).with_secret_data(data);
        let status = self.exchange(Operation::ResetRetryCounter, &command)?.status();
        self.pin_outcome(PinRef::ResettingCode, Operation::ResetRetryCounter, status)?;
        self.restore_retries(PinRef::Pw1);
        Ok(())
    }

    /// RESET RETRY COUNTER (§7.2.4) of PW1 after PW3 was verified, setting a new PW1.
    pub fn reset_retry_counter(&mut self, new_pw1: &SecretBytes) -> Result<(), Error> {
        self.check_pin_length(PinRef::Pw1, new_pw1)?;
        debug!("RESET RETRY COUNTER with PW3");
        let command = Command::new(0, ins::RESET_RETRY_COUNTER, 0x02, 0x81)
            .with_secret_data(Zeroizing::new(new_pw1.expose().to_vec()));
        self.exchange_ok(Operation::ResetRetryCounter, &command)?;
        self.restore_retries(PinRef::Pw1);
        Ok(())
    }

    // ----- attributes and keys -----

    /// The attributes keystation would write for `algorithm` in `slot`, or
    /// [`Error::UnsupportedAlgorithm`] when the slot's role or the card's algorithm
    /// information rules it out. Sends nothing.
    pub fn check_algorithm(
        &self,
        slot: OpenPgpKeySlot,
        algorithm: KeyAlgorithm,
    ) -> Result<KeyAttributes, Error> {
        let refuse = Error::UnsupportedAlgorithm { slot, algorithm };
        let attributes = KeyAttributes::for_algorithm(slot, algorithm).ok_or(refuse)?;
        let attributes = self.card_rsa_attributes(slot, attributes);
        if let Some(info) = &self.algorithm_information
            && !info.supports(slot, &attributes)
        {
            return Err(Error::UnsupportedAlgorithm { slot, algorithm });
        }
        if !self.ard.extended_capabilities.algorithm_attributes_changeable()
            && !self.ard.key_attributes[slot_index(slot)].same_key_type(&attributes)
        {
            return Err(Error::UnsupportedAlgorithm { slot, algorithm });
        }
        Ok(attributes)
    }

    /// RSA attributes as this card writes them: keystation's modulus with the public
    /// exponent length the card announces — in its algorithm information (`FA`) for this
    /// modulus, else in the slot's current RSA attributes — since cards accept only their
    /// own: YubiKeys use 17 bits, Nitrokey's opcard (like GnuPG's defaults) 32, and a card
    /// answers another length with `6A80`. Other attributes pass through unchanged.
    fn card_rsa_attributes(&self, slot: OpenPgpKeySlot, wanted: KeyAttributes) -> KeyAttributes {
        let KeyAttributes::Rsa { modulus_bits, import_format, .. } = wanted else {
            return wanted;
        };
        let index = slot_index(slot);
        let tag = 0xC1 + index as u8;
        let listed = self.algorithm_information.iter().flat_map(|info| info.entries.iter());
        let exponent = listed
            .filter(|(t, a)| *t == tag && a.same_key_type(&wanted))
            .map(|(_, a)| a)
            .chain([&self.ard.key_attributes[index]])
            .find_map(|a| match a {
                KeyAttributes::Rsa { exponent_bits, .. } if *exponent_bits >= 17 => {
                    Some(*exponent_bits)
                }
                _ => None,
            });
        match exponent {
            Some(exponent_bits) => {
                KeyAttributes::Rsa { modulus_bits, exponent_bits, import_format }
            }
            None => wanted,
        }
    }

    /// PUT DATA `C1`–`C3` (§4.4.3.10): sets the slot's algorithm. Nothing is sent when
    /// the card already has exactly these attributes; an algorithm the card does not list
    /// is refused before anything is sent. Returns whether the attributes were written.
    /// Needs PW3. New attributes make the slot's old key unusable.
    pub fn set_algorithm(
        &mut self,
        slot: OpenPgpKeySlot,
        algorithm: KeyAlgorithm,
    ) -> Result<bool, Error> {
        let attributes = self.check_algorithm(slot, algorithm)?;
        self.write_attributes(slot, attributes)
    }

    fn write_attributes(
        &mut self,
        slot: OpenPgpKeySlot,
        attributes: KeyAttributes,
    ) -> Result<bool, Error> {
        let index = slot_index(slot);
        if self.ard.key_attributes[index] == attributes {
            debug!(slot = slot_name(slot), "algorithm attributes already set");
            return Ok(false);
        }
        debug!(slot = slot_name(slot), ?attributes, "PUT DATA algorithm attributes");
        self.put_data(0xC1 + index as u16, &attributes.to_bytes())?;
        self.ard.key_attributes[index] = attributes;
        self.public_keys[index] = None;
        Ok(true)
    }

    /// The keystation algorithm of the slot's current attributes.
    pub fn slot_algorithm(&self, slot: OpenPgpKeySlot) -> Result<KeyAlgorithm, Error> {
        let attributes = &self.ard.key_attributes[slot_index(slot)];
        attributes
            .key_algorithm()
            .ok_or_else(|| Error::UnknownKeyAttributes { slot, attributes: attributes.to_bytes() })
    }

    /// GENERATE ASYMMETRIC KEY PAIR (§7.2.14, P1 `80`): a new key in `slot` with the
    /// slot's current attributes; returns its public key. Needs PW3. The slot's cached
    /// fingerprint and generation time are cleared: write the new ones.
    pub fn generate_key_pair(&mut self, slot: OpenPgpKeySlot) -> Result<PublicKey, Error> {
        let algorithm = self.slot_algorithm(slot)?;
        debug!(slot = slot_name(slot), %algorithm, "GENERATE ASYMMETRIC KEY PAIR");
        let command = Command::new(0, ins::GENERATE_ASYMMETRIC_KEY_PAIR, 0x80, 0x00)
            .with_data(&[slot.crt_tag(), 0x00])
            .with_le(self.link.le());
        let data = self.exchange_ok(Operation::Generate(slot), &command)?;
        let public = parse_public_key_template(&data, algorithm)?;
        let index = slot_index(slot);
        self.public_keys[index] = Some(public.clone());
        self.ard.key_status[index] = Some(KeyStatus::Generated);
        self.ard.fingerprints[index] = None;
        self.ard.generation_times[index] = None;
        Ok(public)
    }

    /// The public key of the key in `slot` (§7.2.14, P1 `81`); cached after the first
    /// read or a generation.
    pub fn public_key(&mut self, slot: OpenPgpKeySlot) -> Result<PublicKey, Error> {
        let index = slot_index(slot);
        if let Some(key) = &self.public_keys[index] {
            return Ok(key.clone());
        }
        let algorithm = self.slot_algorithm(slot)?;
        debug!(slot = slot_name(slot), "read public key");
        let command = Command::new(0, ins::GENERATE_ASYMMETRIC_KEY_PAIR, 0x81, 0x00)
            .with_data(&[slot.crt_tag(), 0x00])
            .with_le(self.link.le());
        let data = self.exchange_ok(Operation::ReadPublicKey(slot), &command)?;
        let public = parse_public_key_template(&data, algorithm)?;
        self.public_keys[index] = Some(public.clone());
        Ok(public)
    }

    /// Imports a private key into `slot` (§4.4.3.12, PUT DATA `DB 3FFF` with the extended
    /// header list), first setting the slot's attributes to the key's algorithm where
    /// needed. RSA keys use the card's import format if it is standard (`00`) or CRT
    /// (`02`), else the standard one. Needs PW3.
    pub fn import_key(&mut self, slot: OpenPgpKeySlot, key: &SecretKey) -> Result<(), Error> {
        let algorithm = secret_key_algorithm(key).ok_or(Error::InvalidInput {
            what: "private key",
            reason: "unsupported size or kind",
        })?;
        if !self.ard.extended_capabilities.key_import() {
            return Err(Error::UnsupportedFeature("key import"));
        }
        let wanted = self.check_algorithm(slot, algorithm)?;
        let index = slot_index(slot);
        let current = &self.ard.key_attributes[index];
        let keep_current = matches!(current, KeyAttributes::Rsa { import_format: 0 | 2, .. })
            && current.same_key_type(&wanted);
        if !keep_current {
            self.write_attributes(slot, wanted)?;
        }
        let template = import_template(slot, key, &self.ard.key_attributes[index])?;
        debug!(slot = slot_name(slot), %algorithm, "key import");
        let command = Command::new(0, ins::PUT_DATA_ODD, 0x3F, 0xFF).with_secret_data(template);
        self.exchange_ok(Operation::ImportKey(slot), &command)?;
        self.public_keys[index] = None;
        self.ard.key_status[index] = Some(KeyStatus::Imported);
        self.ard.fingerprints[index] = None;
        self.ard.generation_times[index] = None;
        Ok(())
    }

    // ----- data objects -----

    /// Writes the slot's fingerprint (`C7`–`C9`, §4.4.3.6 of 3.4.1 / RFC 4880 §12.2).
    pub fn write_fingerprint(
        &mut self,
        slot: OpenPgpKeySlot,
        fingerprint: &[u8; 20],
    ) -> Result<(), Error> {
        let index = slot_index(slot);
        debug!(slot = slot_name(slot), "PUT DATA fingerprint");
        self.put_data(0xC7 + index as u16, fingerprint)?;
        self.ard.fingerprints[index] = fingerprint.iter().any(|&b| b != 0).then_some(*fingerprint);
        Ok(())
    }

    /// Writes a CA fingerprint (`CA`–`CC`).
    pub fn write_ca_fingerprint(
        &mut self,
        slot: OpenPgpKeySlot,
        fingerprint: &[u8; 20],
    ) -> Result<(), Error> {
        let index = slot_index(slot);
        debug!(slot = slot_name(slot), "PUT DATA CA fingerprint");
        self.put_data(0xCA + index as u16, fingerprint)?;
        self.ard.ca_fingerprints[index] =
            fingerprint.iter().any(|&b| b != 0).then_some(*fingerprint);
        Ok(())
    }

    /// Writes the slot's key generation time (`CE`–`D0`), seconds since 1970 — the
    /// creation time of the OpenPGP key packet (RFC 4880 §5.5.2).
    pub fn write_generation_time(
        &mut self,
        slot: OpenPgpKeySlot,
        seconds: u32,
    ) -> Result<(), Error> {
        let index = slot_index(slot);
        debug!(slot = slot_name(slot), seconds, "PUT DATA generation time");
        self.put_data(0xCE + index as u16, &seconds.to_be_bytes())?;
        self.ard.generation_times[index] = (seconds != 0).then_some(seconds);
        Ok(())
    }

    /// Writes the cardholder name `5B` as "Surname<<Given names" (§4.4.3.3).
    pub fn set_cardholder_name(&mut self, surname: &str, given_names: &str) -> Result<(), Error> {
        let name = encode_cardholder_name(surname, given_names)?;
        debug!("PUT DATA cardholder name");
        self.put_data(0x5B, &name)?;
        if let Some(data) = &mut self.cardholder {
            data.name = name;
        }
        Ok(())
    }

    /// Writes the language preference `5F2D`: ISO 639-1 codes, e.g. `"en"` or `"deen"`.
    pub fn set_language(&mut self, languages: &str) -> Result<(), Error> {
        let ok = (2..=8).contains(&languages.len())
            && languages.len().is_multiple_of(2)
            && languages.bytes().all(|b| b.is_ascii_lowercase());
        if !ok {
            return Err(Error::InvalidInput {
                what: "language preference",
                reason: "one to four two-letter ISO 639-1 codes",
            });
        }
        debug!("PUT DATA language preference");
        self.put_data(0x5F2D, languages.as_bytes())?;
        if let Some(data) = &mut self.cardholder {
            data.language = languages.as_bytes().to_vec();
        }
        Ok(())
    }

    fn check_special_do(&self, what: &'static str, value: &[u8]) -> Result<(), Error> {
        let max = self.ard.extended_capabilities.max_special_do().map_or(255, usize::from);
        if value.len() > max {
            return Err(Error::InvalidInput {
                what,
                reason: "longer than the card's special DO limit",
            });
        }
        Ok(())
    }

    /// Writes the login data `5E` (§4.4.3.5).
    pub fn set_login_data(&mut self, login: &[u8]) -> Result<(), Error> {
        self.check_special_do("login data", login)?;
        debug!("PUT DATA login data");
        self.put_data(0x5E, login)
    }

    /// Writes the URL `5F50` (§4.4.3.4) where the public keys can be fetched.
    pub fn set_url(&mut self, url: &[u8]) -> Result<(), Error> {
        self.check_special_do("URL", url)?;
        debug!("PUT DATA URL");
        self.put_data(0x5F50, url)
    }

    /// The slot's user interaction flag, where the card has the DO.
    pub fn uif(&self, slot: OpenPgpKeySlot) -> Option<Uif> {
        self.ard.uif[slot_index(slot)].map(|u| u.flag)
    }

    /// Writes the slot's user interaction flag (`D6`–`D8`), keeping the card's second
    /// byte. Cards that do not announce the DO in `6E` get
    /// [`Error::UnsupportedFeature`] before anything is sent; nothing is sent when the
    /// flag already has this value. Needs PW3. A fixed flag changes only with a reset.
    pub fn set_uif(&mut self, slot: OpenPgpKeySlot, flag: Uif) -> Result<(), Error> {
        let index = slot_index(slot);
        let Some(current) = self.ard.uif[index] else {
            return Err(Error::UnsupportedFeature("touch policy (user interaction flag DOs)"));
        };
        if current.flag == flag {
            debug!(slot = slot_name(slot), ?flag, "user interaction flag already set");
            return Ok(());
        }
        debug!(slot = slot_name(slot), ?flag, "PUT DATA user interaction flag");
        let mut value = vec![flag.to_byte()];
        value.extend(current.feature);
        self.put_data(0xD6 + index as u16, &value)?;
        self.ard.uif[index] = Some(UifDo { flag, feature: current.feature });
        Ok(())
    }

    /// Applies a core [`TouchPolicy`]: `Default` leaves the flag as it is, `Never` is
    /// [`Uif::Off`], `Always` [`Uif::On`], `Cached` [`Uif::Cached`]. (Core has no
    /// "fixed" policies; use [`set_uif`](Self::set_uif) for those.)
    pub fn set_touch_policy(
        &mut self,
        slot: OpenPgpKeySlot,
        policy: TouchPolicy,
    ) -> Result<(), Error> {
        match Uif::from_touch_policy(policy) {
            None => Ok(()),
            Some(flag) => self.set_uif(slot, flag),
        }
    }

    // ----- private key operations -----

    /// PSO:COMPUTE DIGITAL SIGNATURE (§7.2.10) with the signature key. Returns the
    /// signature as core's [`Signer`](keystation_core::keygen::Signer) contract wants it
    /// (RSA: modulus-length bytes; ECDSA: DER; Ed25519: 64 bytes). Needs PW1 (`81`),
    /// which a remembered user PIN supplies.
    pub fn sign(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, Error> {
        self.private_key_signature(OpenPgpKeySlot::Signature, input)
    }

    /// INTERNAL AUTHENTICATE (§7.2.13) with the authentication key: the same encodings
    /// as [`sign`](Self::sign). Needs PW1 (`82`).
    pub fn authenticate(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, Error> {
        self.private_key_signature(OpenPgpKeySlot::Authentication, input)
    }

    pub(crate) fn private_key_signature(
        &mut self,
        slot: OpenPgpKeySlot,
        input: SignInput<'_>,
    ) -> Result<Vec<u8>, Error> {
        let (operation, pin, command) = match slot {
            OpenPgpKeySlot::Signature => {
                (Operation::Sign, PinRef::Pw1Signing, Command::new(0, ins::PSO, 0x9E, 0x9A))
            }
            OpenPgpKeySlot::Authentication => (
                Operation::InternalAuthenticate,
                PinRef::Pw1,
                Command::new(0, ins::INTERNAL_AUTHENTICATE, 0, 0),
            ),
            OpenPgpKeySlot::Decryption => {
                let algorithm = self.slot_algorithm(slot)?;
                return Err(Error::Core(keystation_core::Error::UnsupportedAlgorithm(algorithm)));
            }
        };
        let algorithm = self.slot_algorithm(slot)?;
        let data = signature_input(algorithm, input)?;
        let command = command.with_data(&data).with_le(self.link.le());
        self.ensure_user_pin(pin)?;
        debug!(slot = slot_name(slot), %algorithm, "{operation}");
        let mut response = self.exchange(operation, &command)?;
        if response.status() == StatusWord::SECURITY_STATUS_NOT_SATISFIED && self.user_pin.is_some()
        {
            // The card forgot the PIN (reset by another application, or one signature per
            // VERIFY): verify once more and retry.
            self.set_verified(pin, false);
            self.ensure_user_pin(pin)?;
            response = self.exchange(operation, &command)?;
        }
        let raw = check(operation, response)?;
        if slot == OpenPgpKeySlot::Signature && !self.ard.pw_status.pw1_valid_for_several_signatures
        {
            self.verified.pw1_signing = false;
        }
        self.signature_output(algorithm, &raw)
    }

    fn signature_output(&mut self, algorithm: KeyAlgorithm, raw: &[u8]) -> Result<Vec<u8>, Error> {
        let bad = |reason| Error::malformed("signature", 0x9E9A, reason);
        match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                let len = usize::from(bits.bits() / 8);
                let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
                let raw = &raw[start..];
                if raw.len() > len {
                    return Err(bad("longer than the modulus"));
                }
                let mut out = vec![0u8; len - raw.len()];
                out.extend_from_slice(raw);
                Ok(out)
            }
            KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 => {
                let field = if algorithm == KeyAlgorithm::NistP256 { 32 } else { 48 };
                if raw.len() != 2 * field {
                    return Err(bad("ECDSA signature is not r || s of the curve's size"));
                }
                ecdsa_signature_to_der(raw).ok_or(bad("ECDSA signature"))
            }
            KeyAlgorithm::Ed25519 if raw.len() == 64 => Ok(raw.to_vec()),
            KeyAlgorithm::Ed25519 => Err(bad("Ed25519 signature is not 64 bytes")),
            _ => Err(Error::Core(keystation_core::Error::UnsupportedAlgorithm(algorithm))),
        }
    }

    /// PSO:DECIPHER (§7.2.11) with the decryption key. For RSA `input` is the
    /// cryptogram (sent after the padding indicator `00`) and the result the PKCS#1 v1.5
    /// plaintext; for ECDH it is the other party's public point (SEC1 uncompressed, or
    /// the 32 bytes of X25519), sent in `A6 { 7F49 { 86 } }`, and the result the shared
    /// secret. Needs PW1 (`82`).
    pub fn decipher(&mut self, input: &[u8]) -> Result<SecretBytes, Error> {
        let algorithm = self.slot_algorithm(OpenPgpKeySlot::Decryption)?;
        let mut data = Vec::with_capacity(input.len() + 8);
        match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                // Padding indicator, then the cryptogram at the modulus' length (a
                // cryptogram with leading zero bytes may arrive shorter).
                data.push(0x00);
                let modulus_len = usize::from(bits.bits() / 8);
                data.resize(1 + modulus_len.saturating_sub(input.len()), 0x00);
                data.extend_from_slice(input);
            }
            _ => {
                let mut point = Vec::with_capacity(input.len() + 2);
                keystation_core::tlv::write(&mut point, 0x86, input);
                let mut template = Vec::with_capacity(point.len() + 4);
                keystation_core::tlv::write(&mut template, 0x7F49, &point);
                keystation_core::tlv::write(&mut data, 0xA6, &template);
            }
        }
        let command =
            Command::new(0, ins::PSO, 0x80, 0x86).with_data(&data).with_le(self.link.le());
        self.ensure_user_pin(PinRef::Pw1)?;
        debug!(%algorithm, "PSO:DECIPHER");
        let mut response = self.exchange(Operation::Decipher, &command)?;
        if response.status() == StatusWord::SECURITY_STATUS_NOT_SATISFIED && self.user_pin.is_some()
        {
            self.verified.pw1 = false;
            self.ensure_user_pin(PinRef::Pw1)?;
            response = self.exchange(Operation::Decipher, &command)?;
        }
        let plain = check(Operation::Decipher, response)?;
        Ok(SecretBytes::new(plain.to_vec()))
    }
}

/// What PSO:CDS and INTERNAL AUTHENTICATE take for `algorithm` (§7.2.10, §7.2.13): a
/// DigestInfo for RSA, the hash for ECDSA, the message for EdDSA.
fn signature_input(algorithm: KeyAlgorithm, input: SignInput<'_>) -> Result<Vec<u8>, Error> {
    let invalid = || Error::Core(keystation_core::Error::InvalidSignInput(algorithm));
    match (algorithm, input) {
        (KeyAlgorithm::Rsa(_), SignInput::Digest { hash, digest }) => {
            if digest.len() != hash.output_len() {
                return Err(invalid());
            }
            let mut out = digest_info_prefix(hash).to_vec();
            out.extend_from_slice(digest);
            Ok(out)
        }
        (KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384, SignInput::Digest { hash, digest }) => {
            if digest.len() != hash.output_len() {
                return Err(invalid());
            }
            Ok(digest.to_vec())
        }
        (KeyAlgorithm::Ed25519, SignInput::Message(message)) => Ok(message.to_vec()),
        _ => Err(invalid()),
    }
}

/// Maps a response to its data, or to the error its status means.
fn check(operation: Operation, response: Response) -> Result<Zeroizing<Vec<u8>>, Error> {
    match response.status() {
        StatusWord::SUCCESS => Ok(response.into_data()?),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED => {
            Err(Error::SecurityStatusNotSatisfied { operation })
        }
        status => Err(Error::Card { operation, status }),
    }
}

/// SELECT by DF name (§7.2.1), without Le (case 3).
fn select_application(link: &mut Link<'_>) -> Result<(), Error> {
    let command = Command::new(0, ins::SELECT, 0x04, 0x00).with_data(&OPENPGP_AID_PREFIX);
    let response = link.transmit(Operation::Select, &command)?;
    match response.status() {
        StatusWord::SUCCESS => Ok(()),
        StatusWord::SELECTED_FILE_TERMINATED | StatusWord::SELECTED_FILE_DEACTIVATED => {
            Err(Error::Terminated)
        }
        StatusWord::NOT_FOUND => Err(Error::NoApplication),
        status => Err(Error::Card { operation: Operation::Select, status }),
    }
}

fn read_application_related_data(link: &mut Link<'_>) -> Result<ApplicationRelatedData, Error> {
    let command = Command::new(0, ins::GET_DATA, 0x00, 0x6E).with_le(link.le());
    let response = link.transmit(Operation::GetData(0x6E), &command)?;
    let data = check(Operation::GetData(0x6E), response)?;
    ApplicationRelatedData::parse(&data)
}

/// A command without data that must answer `9000` (TERMINATE DF, ACTIVATE FILE).
fn simple(link: &mut Link<'_>, operation: Operation, instruction: u8) -> Result<(), Error> {
    let response = link.transmit(operation, &Command::new(0, instruction, 0, 0))?;
    check(operation, response).map(drop)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
