//! [`PivCard`]: a session with the PIV application of one card.

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::{Card, Channel, Command, Le, Response, SecretBytes, SecretKey, StatusWord};
use keystation_core::{CountingCard, tlv};
use rand_core::{OsRng, RngCore};
use tracing::debug;
use zeroize::Zeroizing;

use crate::data::{
    AdminData, CertificateObject, FirmwareVersion, ManagementAlgorithm, ManagementKey, Metadata,
    PivAlgorithm, certificate_object_id, encode_printed_key, object, parse_printed_key,
    parse_public_key, pin_policy_byte, touch_policy_byte,
};
use crate::error::{Error, Operation, PinKind};
use crate::padding::pkcs1v15_digest_info;

/// The PIV AID, SP 800-73-4 part 1 §2.2: RID `A0 00 00 03 08`, PIX `00 00 10 00 01 00`.
pub const PIV_AID: [u8; 11] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00];
/// The AID without the version bytes, which some cards want instead.
pub const PIV_AID_SHORT: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];

/// Instruction bytes (SP 800-73-4 part 2 §3; Yubico's PIV extensions).
mod ins {
    pub(super) const SELECT: u8 = 0xA4;
    pub(super) const VERIFY: u8 = 0x20;
    pub(super) const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub(super) const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub(super) const GENERATE: u8 = 0x47;
    pub(super) const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub(super) const GET_DATA: u8 = 0xCB;
    pub(super) const PUT_DATA: u8 = 0xDB;
    pub(super) const METADATA: u8 = 0xF7;
    pub(super) const SERIAL: u8 = 0xF8;
    pub(super) const ATTEST: u8 = 0xF9;
    pub(super) const RESET: u8 = 0xFB;
    pub(super) const VERSION: u8 = 0xFD;
    pub(super) const IMPORT_KEY: u8 = 0xFE;
    pub(super) const SET_MANAGEMENT_KEY: u8 = 0xFF;
}

/// Key references of the PIN, PUK and management key (part 1 table 4b).
const PIN_REF: u8 = 0x80;
const PUK_REF: u8 = 0x81;
const MGMT_REF: u8 = 0x9B;

/// Firmware that brought RSA-3072/4096, Ed25519 and X25519 to YubiKey PIV.
const V5_7: FirmwareVersion = FirmwareVersion(5, 7, 0);
/// Firmware that brought GET METADATA.
const V5_3: FirmwareVersion = FirmwareVersion(5, 3, 0);

/// A session with the PIV application (NIST SP 800-73-4) of one card, with Yubico's
/// extensions where the card has them.
///
/// The session remembers what it learned (firmware version, whether the management key
/// is authenticated, the PIN retry total) and counts the APDUs it sends
/// ([`apdus_sent`](Self::apdus_sent)). PINs and keys travel in zeroizing buffers and are
/// never logged; every step is logged at `debug` level.
pub struct PivCard<'c> {
    card: &'c mut dyn Card,
    apdus: u64,
    version: Option<FirmwareVersion>,
    algorithms: Vec<KeyAlgorithm>,
    mgmt_authenticated: bool,
    pin: Option<SecretBytes>,
}

impl core::fmt::Debug for PivCard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PivCard")
            .field("version", &self.version)
            .field("apdus", &self.apdus)
            .field("mgmt_authenticated", &self.mgmt_authenticated)
            .finish_non_exhaustive()
    }
}

/// Whether a status says "this instruction or function does not exist here".
fn is_unsupported(status: StatusWord) -> bool {
    matches!(status, StatusWord::INS_NOT_SUPPORTED | StatusWord::FUNCTION_NOT_SUPPORTED)
}

/// Pads a PIN or PUK with `FF` to eight bytes (part 2 §2.4.3), refusing values that
/// cannot be valid.
fn padded(kind: PinKind, value: &SecretBytes) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bytes = value.expose();
    if !(6..=8).contains(&bytes.len()) || bytes.contains(&0xFF) {
        return Err(Error::PinFormat(kind));
    }
    let mut out = Zeroizing::new(vec![0xFF; 8]);
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// The outcome of a VERIFY, CHANGE REFERENCE DATA or RESET RETRY COUNTER.
fn pin_outcome(kind: PinKind, operation: Operation, status: StatusWord) -> Result<(), Error> {
    match status.retries_left() {
        _ if status.is_success() => Ok(()),
        Some(0) => Err(Error::PinBlocked(kind)),
        Some(tries_left) => Err(Error::WrongPin { pin: kind, tries_left }),
        None if status == StatusWord::AUTH_METHOD_BLOCKED => Err(Error::PinBlocked(kind)),
        None => Err(card_error(operation, status)),
    }
}

/// The error for a failing status.
fn card_error(operation: Operation, status: StatusWord) -> Error {
    match status {
        StatusWord::SECURITY_STATUS_NOT_SATISFIED => {
            Error::SecurityStatusNotSatisfied { operation }
        }
        s if is_unsupported(s)
            && matches!(
                operation,
                Operation::GetVersion
                    | Operation::GetSerial
                    | Operation::Metadata(_)
                    | Operation::Attest(_)
                    | Operation::ImportKey(_)
                    | Operation::SetManagementKey
                    | Operation::Reset
            ) =>
        {
            Error::Unsupported { operation }
        }
        _ => Error::Card { operation, status },
    }
}

fn check(operation: Operation, response: Response) -> Result<Zeroizing<Vec<u8>>, Error> {
    let status = response.status();
    if status.is_success() { Ok(response.into_data()?) } else { Err(card_error(operation, status)) }
}

/// The `5C` tag list naming a data object.
fn tag_list(object_id: u32) -> Vec<u8> {
    let bytes = object_id.to_be_bytes();
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(3);
    let mut out = Vec::with_capacity(5);
    tlv::write(&mut out, 0x5C, &bytes[start..]);
    out
}

/// Left-pads `value` (big-endian, leading zeros dropped) to `len` bytes.
fn left_pad(value: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let value = &value[start..];
    if value.len() > len {
        return Err(Error::invalid("RSA key component", "longer than half the modulus"));
    }
    let mut out = Zeroizing::new(vec![0u8; len - value.len()]);
    out.extend_from_slice(value);
    Ok(out)
}

/// The PIV identifier of an algorithm keystation knows.
fn piv_algorithm(algorithm: KeyAlgorithm) -> Result<PivAlgorithm, Error> {
    PivAlgorithm::for_key(algorithm)
        .ok_or(Error::UnsupportedAlgorithm { algorithm, reason: "PIV has no identifier for it" })
}

/// The curve size in bytes of an ECDSA key.
const fn ecdsa_len(algorithm: KeyAlgorithm) -> Option<usize> {
    match algorithm {
        KeyAlgorithm::NistP256 => Some(32),
        KeyAlgorithm::NistP384 => Some(48),
        _ => None,
    }
}

impl<'c> PivCard<'c> {
    /// Selects the PIV application (part 2 §3.1.1) by its full AID, falling back to the
    /// AID without version when the card answers `6A82`, then reads the firmware version
    /// with Yubico's GET VERSION where the card has it.
    pub fn select(card: &'c mut dyn Card) -> Result<Self, Error> {
        let mut piv = Self {
            card,
            apdus: 0,
            version: None,
            algorithms: Vec::new(),
            mgmt_authenticated: false,
            pin: None,
        };
        debug!("SELECT PIV");
        let mut status = piv.select_aid(&PIV_AID)?;
        if status == StatusWord::NOT_FOUND {
            debug!("full PIV AID not found; SELECT with the short AID");
            status = piv.select_aid(&PIV_AID_SHORT)?;
        }
        match status {
            s if s.is_success() => {}
            StatusWord::NOT_FOUND => return Err(Error::NoApplication),
            s => return Err(Error::Card { operation: Operation::Select, status: s }),
        }
        let response = piv.exchange(
            Operation::GetVersion,
            &Command::new(0, ins::VERSION, 0, 0).with_le(Le::Max),
        )?;
        if let (true, [major, minor, patch]) = (response.status().is_success(), response.data()) {
            piv.version = Some(FirmwareVersion(*major, *minor, *patch));
        }
        debug!(version = ?piv.version, "PIV selected");
        piv.algorithms = piv.compute_algorithms();
        Ok(piv)
    }

    fn select_aid(&mut self, aid: &[u8]) -> Result<StatusWord, Error> {
        let command = Command::new(0, ins::SELECT, 0x04, 0x00).with_data(aid).with_le(Le::Max);
        Ok(self.exchange(Operation::Select, &command)?.status())
    }

    fn compute_algorithms(&self) -> Vec<KeyAlgorithm> {
        let mut list = vec![
            KeyAlgorithm::Rsa(RsaBits::Rsa2048),
            KeyAlgorithm::NistP256,
            KeyAlgorithm::NistP384,
        ];
        if self.version.is_some_and(|v| v >= V5_7) {
            list.extend([
                KeyAlgorithm::Rsa(RsaBits::Rsa3072),
                KeyAlgorithm::Rsa(RsaBits::Rsa4096),
                KeyAlgorithm::Ed25519,
                KeyAlgorithm::X25519,
            ]);
        }
        list
    }

    /// Sends one command (with chaining and GET RESPONSE) and returns the response,
    /// whatever its status.
    fn exchange(&mut self, operation: Operation, command: &Command) -> Result<Response, Error> {
        let mut counted = CountingCard::new(&mut *self.card, &mut self.apdus);
        Channel::new(&mut counted).transmit(command).map_err(|e| Error::from_core(operation, e))
    }

    fn exchange_ok(
        &mut self,
        operation: Operation,
        command: &Command,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let response = self.exchange(operation, command)?;
        check(operation, response)
    }

    /// APDUs sent in this session (GET RESPONSE rounds and chained pieces included).
    pub fn apdus_sent(&self) -> u64 {
        self.apdus
    }

    /// The firmware version (Yubico GET VERSION); `None` on a standard PIV card.
    pub fn version(&self) -> Option<FirmwareVersion> {
        self.version
    }

    /// The asymmetric algorithms this card can generate and import: RSA-2048, P-256 and
    /// P-384 everywhere; RSA-3072/4096, Ed25519 and X25519 on YubiKey 5.7 and later.
    pub fn supported_algorithms(&self) -> &[KeyAlgorithm] {
        &self.algorithms
    }

    /// Whether the management key was authenticated in this session.
    pub fn is_management_authenticated(&self) -> bool {
        self.mgmt_authenticated
    }

    /// The serial number (Yubico GET SERIAL, firmware 5); `None` if the card has none.
    pub fn serial(&mut self) -> Result<Option<u32>, Error> {
        debug!("GET SERIAL");
        let command = Command::new(0, ins::SERIAL, 0, 0).with_le(Le::Max);
        let response = self.exchange(Operation::GetSerial, &command)?;
        match (response.status(), response.data()) {
            (s, &[a, b, c, d]) if s.is_success() => Ok(Some(u32::from_be_bytes([a, b, c, d]))),
            (s, _) if s.is_success() => {
                Err(Error::malformed("serial number", "not four bytes long"))
            }
            (s, _) if is_unsupported(s) => Ok(None),
            (s, _) => Err(card_error(Operation::GetSerial, s)),
        }
    }

    // ----- data objects ------------------------------------------------------------

    /// GET DATA (part 2 §3.1.2) of a data object: the value inside its `53`; `None`
    /// when the card has no such object (`6A82`).
    pub fn get_data(&mut self, object_id: u32) -> Result<Option<Vec<u8>>, Error> {
        debug!(object = format_args!("{object_id:06X}"), "GET DATA");
        let operation = Operation::GetData(object_id);
        let command = Command::new(0, ins::GET_DATA, 0x3F, 0xFF)
            .with_data(&tag_list(object_id))
            .with_le(Le::Max);
        let response = self.exchange(operation, &command)?;
        if response.status() == StatusWord::NOT_FOUND {
            return Ok(None);
        }
        let data = check(operation, response)?;
        match tlv::find(&data, 0x53) {
            Ok(Some(value)) => Ok(Some(value.to_vec())),
            Ok(None) => Ok(Some(data.to_vec())),
            Err(_) => Err(Error::malformed("data object", "broken TLV structure")),
        }
    }

    /// PUT DATA (part 2 §3.3.1) of a data object, `value` being what goes inside `53`
    /// (empty deletes it on YubiKeys). Needs the management key.
    pub fn put_data(&mut self, object_id: u32, value: &[u8]) -> Result<(), Error> {
        debug!(object = format_args!("{object_id:06X}"), len = value.len(), "PUT DATA");
        let mut data = Zeroizing::new(tag_list(object_id));
        tlv::write(&mut data, 0x53, value);
        let command = Command::new(0, ins::PUT_DATA, 0x3F, 0xFF).with_secret_data(data);
        self.exchange_ok(Operation::PutData(object_id), &command)?;
        Ok(())
    }

    /// The Card Holder Unique Identifier (`5FC102`), if written.
    pub fn chuid(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.get_data(object::CHUID)
    }

    /// The Card Capability Container (`5FC107`), if written.
    pub fn ccc(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.get_data(object::CCC)
    }

    /// The DER certificate of `slot` (objects of part 1 table 3; `5FFF01` for `F9`),
    /// decompressed if stored gzip-compressed; `None` if there is none.
    pub fn read_certificate(&mut self, slot: PivSlot) -> Result<Option<Vec<u8>>, Error> {
        match self.get_data(certificate_object_id(slot))? {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) => Ok(Some(CertificateObject::parse(&value)?.certificate)),
        }
    }

    /// Writes `der` as the certificate of `slot`, uncompressed. Needs the management key.
    pub fn write_certificate(&mut self, slot: PivSlot, der: &[u8]) -> Result<(), Error> {
        self.write_certificate_with(slot, der, false)
    }

    /// Writes `der` as the certificate of `slot`, gzip-compressed if `compress` (for
    /// certificates larger than the card's object limit). Needs the management key.
    pub fn write_certificate_with(
        &mut self,
        slot: PivSlot,
        der: &[u8],
        compress: bool,
    ) -> Result<(), Error> {
        let value = CertificateObject::encode(der, compress)?;
        self.put_data(certificate_object_id(slot), &value)
    }

    /// Deletes the certificate of `slot`. Needs the management key.
    pub fn delete_certificate(&mut self, slot: PivSlot) -> Result<(), Error> {
        self.put_data(certificate_object_id(slot), &[])
    }

    // ----- PIN and PUK ------------------------------------------------------------

    /// VERIFY (part 2 §3.2.1) the PIN. A wrong PIN is [`Error::WrongPin`] with the tries
    /// left; a blocked one [`Error::PinBlocked`].
    pub fn verify_pin(&mut self, pin: &SecretBytes) -> Result<(), Error> {
        let data = padded(PinKind::Pin, pin)?;
        debug!("VERIFY PIN");
        let operation = Operation::Verify(PinKind::Pin);
        let command = Command::new(0, ins::VERIFY, 0, PIN_REF).with_secret_data(data);
        let status = self.exchange(operation, &command)?.status();
        pin_outcome(PinKind::Pin, operation, status)
    }

    /// Keeps `pin` for this session, so that private key operations refused for want of
    /// a fresh VERIFY (PIN policy "always", slot `9C`) verify and retry once.
    pub fn remember_pin(&mut self, pin: SecretBytes) -> Result<(), Error> {
        padded(PinKind::Pin, &pin)?;
        self.pin = Some(pin);
        Ok(())
    }

    /// The PIN's tries left: VERIFY without data (part 2 §3.2.1), `63Cx`, or `6983`
    /// (zero). When the PIN is already verified the card answers `9000` without a count;
    /// then the metadata (firmware 5.3) tells, and without it this reports the PIV
    /// factory total of 3.
    pub fn pin_tries_left(&mut self) -> Result<u8, Error> {
        debug!("VERIFY PIN status");
        let operation = Operation::Verify(PinKind::Pin);
        let command = Command::new(0, ins::VERIFY, 0, PIN_REF);
        let status = self.exchange(operation, &command)?.status();
        if let Some(tries) = status.retries_left() {
            return Ok(tries);
        }
        match status {
            StatusWord::AUTH_METHOD_BLOCKED => Ok(0),
            s if s.is_success() => {
                let retries = self.metadata(PIN_REF)?.and_then(|m| m.retries);
                Ok(retries.map_or(3, |r| r.remaining))
            }
            s => Err(card_error(operation, s)),
        }
    }

    fn change_reference(
        &mut self,
        kind: PinKind,
        old: &SecretBytes,
        new: &SecretBytes,
    ) -> Result<(), Error> {
        let mut data = padded(kind, old)?;
        data.extend_from_slice(&padded(kind, new)?);
        debug!(pin = %kind, "CHANGE REFERENCE DATA");
        let reference = if kind == PinKind::Pin { PIN_REF } else { PUK_REF };
        let operation = Operation::ChangeReference(kind);
        let command =
            Command::new(0, ins::CHANGE_REFERENCE_DATA, 0, reference).with_secret_data(data);
        let status = self.exchange(operation, &command)?.status();
        pin_outcome(kind, operation, status)
    }

    /// CHANGE REFERENCE DATA (part 2 §3.2.2) of the PIN.
    pub fn change_pin(&mut self, old: &SecretBytes, new: &SecretBytes) -> Result<(), Error> {
        self.change_reference(PinKind::Pin, old, new)?;
        if self.pin.is_some() {
            self.pin = Some(new.clone());
        }
        Ok(())
    }

    /// CHANGE REFERENCE DATA (part 2 §3.2.2) of the PUK.
    pub fn change_puk(&mut self, old: &SecretBytes, new: &SecretBytes) -> Result<(), Error> {
        self.change_reference(PinKind::Puk, old, new)
    }

    /// RESET RETRY COUNTER (part 2 §3.2.3): unblocks the PIN with the PUK and sets it to
    /// `new_pin`. A wrong PUK is [`Error::WrongPin`] for the PUK.
    pub fn unblock_pin(&mut self, puk: &SecretBytes, new_pin: &SecretBytes) -> Result<(), Error> {
        let mut data = padded(PinKind::Puk, puk)?;
        data.extend_from_slice(&padded(PinKind::Pin, new_pin)?);
        debug!("RESET RETRY COUNTER");
        let command = Command::new(0, ins::RESET_RETRY_COUNTER, 0, PIN_REF).with_secret_data(data);
        let status = self.exchange(Operation::ResetRetryCounter, &command)?.status();
        pin_outcome(PinKind::Puk, Operation::ResetRetryCounter, status)
    }

    // ----- management key -----------------------------------------------------------

    /// Authenticates the management key `9B` by mutual authentication (GENERAL
    /// AUTHENTICATE, SP 800-73-4 part 2 appendix A.1: witness, then our challenge). The
    /// algorithm is the card's own where GET METADATA tells it (YubiKey 5.3+), else
    /// `key.algorithm`.
    pub fn authenticate(&mut self, key: &ManagementKey) -> Result<(), Error> {
        let mut key = key.clone();
        if let Some(algorithm) = self.management_algorithm()? {
            key = ManagementKey::new(algorithm, key.key)?;
        }
        self.mgmt_authenticated = false;
        let operation = Operation::AuthenticateManagementKey;
        let alg = key.algorithm.id();
        debug!(algorithm = ?key.algorithm, "GENERAL AUTHENTICATE 9B: witness");
        let mut request = Vec::new();
        tlv::write_constructed(&mut request, 0x7C, |o| tlv::write(o, 0x80, &[]));
        let command = Command::new(0, ins::GENERAL_AUTHENTICATE, alg, MGMT_REF)
            .with_data(&request)
            .with_le(Le::Max);
        let response = self.exchange_ok(operation, &command)?;
        let witness = dynamic_item(&response, 0x80)?;
        let plain = key.crypt(witness, false)?;
        let mut challenge = Zeroizing::new(vec![0u8; key.algorithm.block_len()]);
        OsRng.try_fill_bytes(&mut challenge).map_err(|_| Error::Random)?;
        let mut data = Zeroizing::new(Vec::new());
        tlv::write_constructed(&mut data, 0x7C, |o| {
            tlv::write(o, 0x80, plain.expose());
            tlv::write(o, 0x81, &challenge);
        });
        debug!("GENERAL AUTHENTICATE 9B: response and challenge");
        let command = Command::new(0, ins::GENERAL_AUTHENTICATE, alg, MGMT_REF)
            .with_secret_data(data)
            .with_le(Le::Max);
        let response = self.exchange(operation, &command)?;
        if response.status() == StatusWord::SECURITY_STATUS_NOT_SATISFIED {
            return Err(Error::WrongManagementKey);
        }
        let response = check(operation, response)?;
        let answer = dynamic_item(&response, 0x82)?;
        let expected = key.crypt(&challenge, true)?;
        if !ct_eq(answer, expected.expose()) {
            return Err(Error::CardAuthenticationFailed);
        }
        self.mgmt_authenticated = true;
        debug!("management key authenticated");
        Ok(())
    }

    /// The management key's algorithm from GET METADATA, where the card tells it. A card
    /// that refuses the command in any way (not only `6D00`) is taken to have no
    /// metadata; transport failures still end the call.
    fn management_algorithm(&mut self) -> Result<Option<ManagementAlgorithm>, Error> {
        match self.metadata(MGMT_REF) {
            Ok(meta) => Ok(meta.and_then(|m| m.algorithm).and_then(|a| a.management_algorithm())),
            Err(Error::Card { .. } | Error::Malformed { .. } | Error::NoKey { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Yubico SET MANAGEMENT KEY (`FF`): replaces the management key; with
    /// `require_touch`, every use needs a touch. Needs the management key.
    pub fn set_management_key(
        &mut self,
        key: &ManagementKey,
        require_touch: bool,
    ) -> Result<(), Error> {
        let key = ManagementKey::new(key.algorithm, key.key.clone())?;
        debug!(algorithm = ?key.algorithm, require_touch, "SET MANAGEMENT KEY");
        let mut data = Zeroizing::new(vec![key.algorithm.id(), MGMT_REF, key.key.len() as u8]);
        data.extend_from_slice(key.key.expose());
        let p2 = if require_touch { 0xFE } else { 0xFF };
        let command = Command::new(0, ins::SET_MANAGEMENT_KEY, 0xFF, p2).with_secret_data(data);
        self.exchange_ok(Operation::SetManagementKey, &command)?;
        Ok(())
    }

    /// Yubico's ADMIN DATA object (`5FFF00`), if present.
    pub fn admin_data(&mut self) -> Result<Option<AdminData>, Error> {
        match self.get_data(object::ADMIN_DATA)? {
            Some(value) => Ok(Some(AdminData::parse(&value)?)),
            None => Ok(None),
        }
    }

    /// The PIN-protected management key as ykman stores it: ADMIN DATA flag `02` set and
    /// the key in PRINTED (`5FC109`) as `88 { 89 key }`. Reading PRINTED needs the PIN
    /// verified. `None` if the card has no PIN-protected key. The algorithm comes from
    /// the card's metadata, else from the key length (24 bytes: 3DES).
    pub fn pin_protected_management_key(&mut self) -> Result<Option<ManagementKey>, Error> {
        let stored = self.admin_data()?.is_some_and(|a| a.flags & AdminData::MGMT_KEY_STORED != 0);
        if !stored {
            return Ok(None);
        }
        let Some(printed) = self.get_data(object::PRINTED)? else {
            return Ok(None);
        };
        let printed = SecretBytes::new(printed);
        let Some(key) = parse_printed_key(printed.expose()) else {
            return Err(Error::malformed("PRINTED object", "no management key (88/89)"));
        };
        let from_card = self.management_algorithm()?;
        let algorithm = match (from_card, key.len()) {
            (Some(algorithm), _) => algorithm,
            (None, 16) => ManagementAlgorithm::Aes128,
            (None, 32) => ManagementAlgorithm::Aes256,
            (None, _) => ManagementAlgorithm::TripleDes,
        };
        ManagementKey::new(algorithm, key).map(Some)
    }

    /// Sets up a PIN-protected management key as ykman does: a random key of
    /// `algorithm`, set with SET MANAGEMENT KEY, stored in PRINTED as `88 { 89 key }`,
    /// and flag `02` set in ADMIN DATA (keeping its other fields). The session is then
    /// authenticated with the new key, which is returned. Needs the management key;
    /// reading the ADMIN DATA back needs nothing.
    pub fn set_pin_protected_management_key(
        &mut self,
        algorithm: ManagementAlgorithm,
    ) -> Result<ManagementKey, Error> {
        let mut bytes = vec![0u8; algorithm.key_len()];
        OsRng.try_fill_bytes(&mut bytes).map_err(|_| Error::Random)?;
        let key = ManagementKey::new(algorithm, SecretBytes::new(bytes))?;
        let mut admin = self.admin_data()?.unwrap_or_default();
        self.set_management_key(&key, false)?;
        self.put_data(object::PRINTED, encode_printed_key(key.key.expose()).expose())?;
        admin.flags |= AdminData::MGMT_KEY_STORED;
        self.put_data(object::ADMIN_DATA, &admin.encode())?;
        self.authenticate(&key)?;
        Ok(key)
    }

    // ----- keys ---------------------------------------------------------------------

    fn check_algorithm(&self, algorithm: KeyAlgorithm) -> Result<(), Error> {
        if !self.algorithms.contains(&algorithm) {
            return Err(Error::UnsupportedAlgorithm {
                algorithm,
                reason: "the card's firmware does not offer it (RSA-3072/4096, Ed25519 and X25519 need YubiKey 5.7)",
            });
        }
        Ok(())
    }

    fn check_slot(slot: PivSlot) -> Result<u8, Error> {
        if slot == PivSlot::Attestation {
            return Err(Error::invalid("slot", "the attestation slot F9 is not for user keys"));
        }
        Ok(slot.key_reference())
    }

    /// GENERATE ASYMMETRIC KEY PAIR (part 2 §3.3.2) in `slot`, with Yubico's PIN policy
    /// (`AA`) and touch policy (`AB`) when not the default. Needs the management key.
    /// Returns the new public key.
    pub fn generate(
        &mut self,
        slot: PivSlot,
        algorithm: KeyAlgorithm,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    ) -> Result<PublicKey, Error> {
        let reference = Self::check_slot(slot)?;
        check_touch_policy(touch_policy)?;
        self.check_algorithm(algorithm)?;
        let alg = piv_algorithm(algorithm)?.id();
        let mut template = Vec::new();
        tlv::write_constructed(&mut template, 0xAC, |o| {
            tlv::write(o, 0x80, &[alg]);
            write_policies(o, pin_policy, touch_policy);
        });
        debug!(slot = format_args!("{reference:02X}"), %algorithm, "GENERATE ASYMMETRIC KEY PAIR");
        let command =
            Command::new(0, ins::GENERATE, 0, reference).with_data(&template).with_le(Le::Max);
        let response = self.exchange_ok(Operation::Generate(reference), &command)?;
        parse_public_key(algorithm, &response)
    }

    /// Yubico IMPORT KEY (`FE`) of a private key into `slot`: RSA as `01` p, `02` q,
    /// `03` dP, `04` dQ, `05` qInv (each half the modulus long); `06` the P-256/P-384
    /// scalar; `07` the Ed25519 seed; `08` the X25519 scalar; then `AA`/`AB` policies
    /// unless default. Needs the management key. The key's algorithm must be one the
    /// card offers.
    pub fn import_key(
        &mut self,
        slot: PivSlot,
        key: &SecretKey,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    ) -> Result<(), Error> {
        let reference = Self::check_slot(slot)?;
        check_touch_policy(touch_policy)?;
        let mut data = Zeroizing::new(Vec::with_capacity(1200));
        let algorithm = match key {
            SecretKey::Rsa { p, q, dp, dq, qinv, .. } => {
                let p_bytes = p.expose();
                let start = p_bytes.iter().position(|&b| b != 0).unwrap_or(p_bytes.len());
                let half = p_bytes.len() - start;
                let bits = u16::try_from(half * 16)
                    .ok()
                    .and_then(RsaBits::from_bits)
                    .ok_or(Error::invalid("RSA key", "modulus must be 2048, 3072 or 4096 bits"))?;
                for (tag, part) in [(0x01u8, p), (0x02, q), (0x03, dp), (0x04, dq), (0x05, qinv)] {
                    tlv::write(&mut data, u32::from(tag), &left_pad(part.expose(), half)?);
                }
                KeyAlgorithm::Rsa(bits)
            }
            SecretKey::NistP256(s) => {
                write_scalar(&mut data, 0x06, s, 32)?;
                KeyAlgorithm::NistP256
            }
            SecretKey::NistP384(s) => {
                write_scalar(&mut data, 0x06, s, 48)?;
                KeyAlgorithm::NistP384
            }
            SecretKey::Ed25519(s) => {
                write_scalar(&mut data, 0x07, s, 32)?;
                KeyAlgorithm::Ed25519
            }
            SecretKey::X25519(s) => {
                write_scalar(&mut data, 0x08, s, 32)?;
                KeyAlgorithm::X25519
            }
            _ => return Err(Error::invalid("private key", "unknown kind")),
        };
        self.check_algorithm(algorithm)?;
        write_policies(&mut data, pin_policy, touch_policy);
        debug!(slot = format_args!("{reference:02X}"), %algorithm, "IMPORT KEY");
        let alg = piv_algorithm(algorithm)?.id();
        let command = Command::new(0, ins::IMPORT_KEY, alg, reference).with_secret_data(data);
        self.exchange_ok(Operation::ImportKey(reference), &command)?;
        Ok(())
    }

    /// Yubico GET METADATA (`F7`, firmware 5.3) of a key slot or of the PIN (`80`), PUK
    /// (`81`) or management key (`9B`). `None` if the card does not have the command
    /// (`6D00`/`6A81`); an empty slot is [`Error::NoKey`].
    pub fn metadata(&mut self, reference: u8) -> Result<Option<Metadata>, Error> {
        if self.version.is_some_and(|v| v < V5_3) {
            return Ok(None);
        }
        debug!(reference = format_args!("{reference:02X}"), "GET METADATA");
        let operation = Operation::Metadata(reference);
        let command = Command::new(0, ins::METADATA, 0, reference).with_le(Le::Max);
        let response = self.exchange(operation, &command)?;
        match response.status() {
            s if s.is_success() => Ok(Some(Metadata::parse(response.data())?)),
            s if is_unsupported(s) => Ok(None),
            s @ StatusWord::REFERENCED_DATA_NOT_FOUND => {
                Err(Error::NoKey { slot: reference, status: s })
            }
            s => Err(card_error(operation, s)),
        }
    }

    /// The public key in `slot`, from GET METADATA (`None` where the card has no
    /// metadata).
    pub fn public_key(&mut self, slot: PivSlot) -> Result<Option<PublicKey>, Error> {
        Ok(self.metadata(slot.key_reference())?.and_then(|m| m.public_key))
    }

    // ----- private key operations ---------------------------------------------------

    /// GENERAL AUTHENTICATE (part 2 §3.2.4) with `7C { 82 empty, tag input }`, returning
    /// the `82` response. Retries once after a VERIFY with the remembered PIN when the
    /// card wants a (fresh) PIN.
    fn private_key_operation(
        &mut self,
        slot: PivSlot,
        algorithm: PivAlgorithm,
        tag: u8,
        input: &[u8],
    ) -> Result<SecretBytes, Error> {
        let reference = Self::check_slot(slot)?;
        let operation = Operation::PrivateKey(reference);
        let mut data = Zeroizing::new(Vec::with_capacity(input.len() + 12));
        tlv::write_constructed(&mut data, 0x7C, |o| {
            tlv::write(o, 0x82, &[]);
            tlv::write(o, u32::from(tag), input);
        });
        let command = Command::new(0, ins::GENERAL_AUTHENTICATE, algorithm.id(), reference)
            .with_secret_data(data)
            .with_le(Le::Max);
        debug!(slot = format_args!("{reference:02X}"), ?algorithm, "GENERAL AUTHENTICATE");
        let mut response = self.exchange(operation, &command)?;
        if response.status() == StatusWord::SECURITY_STATUS_NOT_SATISFIED
            && let Some(pin) = self.pin.clone()
        {
            debug!("key wants the PIN: VERIFY with the remembered PIN and retry");
            self.verify_pin(&pin)?;
            response = self.exchange(operation, &command)?;
        }
        let response = match check(operation, response) {
            Err(Error::Card { status: status @ StatusWord::REFERENCED_DATA_NOT_FOUND, .. }) => {
                return Err(Error::NoKey { slot: reference, status });
            }
            other => other?,
        };
        Ok(SecretBytes::copy_from(dynamic_item(&response, 0x82)?))
    }

    /// Signs a digest with the key in `slot`. ECDSA (P-256/P-384): a digest longer than
    /// the curve is truncated to its leftmost bytes (FIPS 186-4 §6.4); the card's DER
    /// `Ecdsa-Sig-Value` is returned. RSA: the digest (32, 48 or 64 bytes: SHA-256/384/512)
    /// is wrapped in PKCS#1 v1.5 (RFC 8017 §9.2) and the signature returned. Ed25519 and
    /// X25519 keys do not sign digests.
    pub fn sign_digest(
        &mut self,
        slot: PivSlot,
        algorithm: KeyAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, Error> {
        match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                let hash = match digest.len() {
                    32 => HashAlgorithm::Sha256,
                    48 => HashAlgorithm::Sha384,
                    64 => HashAlgorithm::Sha512,
                    _ => return Err(Error::invalid("digest", "not a SHA-256/384/512 digest")),
                };
                let em = pkcs1v15_digest_info(hash, digest, usize::from(bits.bits() / 8))?;
                Ok(self.rsa_raw(slot, bits, &em)?.expose().to_vec())
            }
            _ => {
                let Some(len) = ecdsa_len(algorithm) else {
                    return Err(Error::invalid("algorithm", "this key does not sign digests"));
                };
                if digest.is_empty() {
                    return Err(Error::invalid("digest", "empty"));
                }
                let digest = &digest[..digest.len().min(len)];
                let alg = piv_algorithm(algorithm)?;
                Ok(self.private_key_operation(slot, alg, 0x81, digest)?.expose().to_vec())
            }
        }
    }

    /// Signs `message` with the Ed25519 key in `slot` (YubiKey 5.7): the 64-byte
    /// signature of RFC 8032 §5.1.6.
    pub fn sign_ed25519(&mut self, slot: PivSlot, message: &[u8]) -> Result<Vec<u8>, Error> {
        let signature = self.private_key_operation(slot, PivAlgorithm::Ed25519, 0x81, message)?;
        if signature.len() != 64 {
            return Err(Error::malformed("Ed25519 signature", "not 64 bytes long"));
        }
        Ok(signature.expose().to_vec())
    }

    /// The raw RSA private-key operation on a modulus-sized `block` (signing with
    /// host-made padding, or decryption). The result is zeroized on drop.
    pub fn rsa_raw(
        &mut self,
        slot: PivSlot,
        bits: RsaBits,
        block: &[u8],
    ) -> Result<SecretBytes, Error> {
        let len = usize::from(bits.bits() / 8);
        if block.len() != len {
            return Err(Error::invalid("RSA input", "must be exactly the modulus length"));
        }
        let alg = piv_algorithm(KeyAlgorithm::Rsa(bits))?;
        let out = self.private_key_operation(slot, alg, 0x81, block)?;
        let out = left_pad(out.expose(), len)?;
        Ok(SecretBytes::copy_from(&out))
    }

    /// Key agreement (part 2 §3.2.4 with `85`): the shared secret of the key in `slot`
    /// and the peer's point — 65 bytes (P-256), 97 bytes (P-384) uncompressed SEC1, or
    /// 32 bytes (X25519).
    pub fn ecdh(&mut self, slot: PivSlot, peer_point: &[u8]) -> Result<SecretBytes, Error> {
        let algorithm = match peer_point.len() {
            65 => PivAlgorithm::EccP256,
            97 => PivAlgorithm::EccP384,
            32 => PivAlgorithm::X25519,
            _ => return Err(Error::invalid("peer point", "not a P-256, P-384 or X25519 point")),
        };
        self.private_key_operation(slot, algorithm, 0x85, peer_point)
    }

    // ----- attestation and reset ----------------------------------------------------

    /// Yubico ATTEST (`F9`): the DER certificate, signed by the `F9` key, that says the
    /// key in `slot` was generated on this card. Verify it elsewhere (keystation-x509).
    pub fn attest(&mut self, slot: PivSlot) -> Result<Vec<u8>, Error> {
        let reference = Self::check_slot(slot)?;
        debug!(slot = format_args!("{reference:02X}"), "ATTEST");
        let command = Command::new(0, ins::ATTEST, reference, 0).with_le(Le::Max);
        Ok(self.exchange_ok(Operation::Attest(reference), &command)?.to_vec())
    }

    /// The certificate of the attestation key `F9` (object `5FFF01`), if present.
    pub fn attestation_certificate(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.read_certificate(PivSlot::Attestation)
    }

    /// Resets the PIV application to factory state (Yubico RESET, `FB`): blocks the PIN
    /// and the PUK with wrong values first, as the card requires. Everything but the
    /// attestation key is gone; the session holds nothing verified.
    ///
    /// On a card without Yubico's extensions (no GET VERSION) this is
    /// [`Error::Unsupported`] before anything is blocked.
    pub fn reset(&mut self) -> Result<(), Error> {
        if self.version.is_none() {
            return Err(Error::Unsupported { operation: Operation::Reset });
        }
        debug!("PIV reset: blocking PIN and PUK");
        const WRONG: [&[u8]; 2] =
            [b"\x30\x30\x30\x30\x30\x30\x30\x30", b"\x31\x31\x31\x31\x31\x31\x31\x31"];
        for kind in [PinKind::Pin, PinKind::Puk] {
            // 255 tries is the most any counter holds; one more guards against a card
            // that never reports blocked.
            let mut blocked = false;
            for round in 0..256 {
                let wrong = SecretBytes::copy_from(WRONG[round % 2]);
                let result = match kind {
                    PinKind::Pin => self.verify_pin(&wrong),
                    PinKind::Puk => self.change_puk(&wrong, &wrong),
                };
                match result {
                    Err(Error::PinBlocked(_)) => {
                        blocked = true;
                        break;
                    }
                    Err(Error::WrongPin { .. }) | Ok(()) => {}
                    Err(other) => return Err(other),
                }
            }
            if !blocked {
                return Err(Error::malformed("retry counter", "the card never reported blocked"));
            }
        }
        debug!("RESET");
        self.exchange_ok(Operation::Reset, &Command::new(0, ins::RESET, 0, 0))?;
        self.mgmt_authenticated = false;
        self.pin = None;
        Ok(())
    }
}

/// Refuses, before any APDU, the touch policies PIV keys cannot have (fixed and
/// cached-fixed are OpenPGP's).
fn check_touch_policy(policy: TouchPolicy) -> Result<(), Error> {
    match touch_policy_byte(policy) {
        Some(_) => Ok(()),
        None => Err(Error::Core(keystation_core::Error::UnsupportedPolicy)),
    }
}

/// Writes the Yubico PIN (`AA`) and touch (`AB`) policies, omitting defaults.
fn write_policies(out: &mut Vec<u8>, pin_policy: PinPolicy, touch_policy: TouchPolicy) {
    if pin_policy != PinPolicy::Default {
        tlv::write(out, 0xAA, &[pin_policy_byte(pin_policy)]);
    }
    if let Some(byte) = touch_policy_byte(touch_policy).filter(|&b| b != 0) {
        tlv::write(out, 0xAB, &[byte]);
    }
}

fn write_scalar(
    out: &mut Vec<u8>,
    tag: u32,
    scalar: &SecretBytes,
    len: usize,
) -> Result<(), Error> {
    if scalar.len() != len {
        return Err(Error::invalid("private key", "scalar has the wrong length"));
    }
    tlv::write(out, tag, scalar.expose());
    Ok(())
}

/// An item of a dynamic authentication template `7C` in a response.
fn dynamic_item(response: &[u8], tag: u32) -> Result<&[u8], Error> {
    let broken = || Error::malformed("GENERAL AUTHENTICATE response", "broken TLV structure");
    let template = tlv::find(response, 0x7C)
        .map_err(|_| broken())?
        .ok_or_else(|| Error::malformed("GENERAL AUTHENTICATE response", "no template (7C)"))?;
    tlv::find(template, tag)
        .map_err(|_| broken())?
        .ok_or_else(|| Error::malformed("GENERAL AUTHENTICATE response", "response item missing"))
}

/// Equality that does not stop at the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
