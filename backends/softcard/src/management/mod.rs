//! Yubico's management and OTP applications, as far as ykman and yubikit need them to
//! identify the device.
//!
//! **Management** (AID `A0 00 00 05 27 47 11 17`), as on a YubiKey 5:
//!
//! * SELECT answers the ASCII string `Virtual mgr - FW version 5.4.3`; yubikit takes the
//!   version from it with the pattern `\b(\d+).(\d).(\d)\b` (one digit for minor and patch).
//! * READ CONFIG (`00 1D P1 00`, P1 = page) answers one length byte and the device
//!   information TLVs: `01` USB supported capabilities, `02` serial, `03` USB enabled,
//!   `04` form factor, `05` firmware version, `06` auto-eject timeout, `07`
//!   challenge-response timeout, `08` device flags, `0A` configuration lock, `0D`/`0E` NFC
//!   supported/enabled. Everything fits on page 0, so tag `10` ("more pages") is never
//!   sent; pages above 0 answer `6A86`, as firmware without paging does.
//! * WRITE CONFIG (`00 1C 00 00`, data = length byte + TLVs) changes the enabled
//!   capabilities (`03`, `0E`), the timeouts (`06`, `07`) and device flags (`08`); the
//!   reboot flag `0C` is accepted and ignored. A lock code (`0A`/`0B`) is not supported:
//!   `6A80`.
//!
//! **OTP** (AID `A0 00 00 05 27 20 01`): SELECT and STATUS (`00 03 00 00`) answer the
//! 6-byte status (firmware version, programming sequence, touch level: both slots empty);
//! `00 01 10 00` (read the serial, "slot" `10`) answers the serial as 4 big-endian bytes.
//! That is ykman's fallback when the management application is missing, and enough for
//! `ykman otp info` over CCID. Programming slots is not supported (`6D00` for the
//! configuration "slots", which a real key would accept).
//!
//! **Capabilities.** The software card has OpenPGP, PIV and (this) OTP; it has no FIDO,
//! OATH or YubiHSM Auth applet. By default the device information claims exactly the
//! first three, so that ykman never offers an application that would then fail; see
//! [`Management::with_capabilities`] to claim others. The enabled-capability settings are
//! reported and stored, but disabling an application does not hide it from SELECT.

use keystation_core::{Command, StatusWord};
use zeroize::Zeroizing;

use crate::applet::{Applet, Context, Reply, StateError};
use crate::identity::Identity;

/// Yubico management application AID.
const MANAGEMENT_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];
/// Yubico OTP application AID.
const OTP_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];

/// Capability bits of the device information (yubikit's `CAPABILITY`).
pub mod capability {
    /// Yubico OTP (the OTP application, slots 1 and 2).
    pub const OTP: u16 = 0x0001;
    /// FIDO U2F.
    pub const U2F: u16 = 0x0002;
    /// OpenPGP card.
    pub const OPENPGP: u16 = 0x0008;
    /// PIV.
    pub const PIV: u16 = 0x0010;
    /// OATH (TOTP/HOTP).
    pub const OATH: u16 = 0x0020;
    /// YubiHSM Auth.
    pub const HSMAUTH: u16 = 0x0100;
    /// FIDO2.
    pub const FIDO2: u16 = 0x0200;
    /// What the software card has applets for.
    pub const SOFTCARD: u16 = OTP | OPENPGP | PIV;
    /// Every capability a YubiKey 5 NFC with firmware 5.4.3 or later supports.
    pub const YUBIKEY_5_NFC: u16 = OTP | U2F | OPENPGP | PIV | OATH | HSMAUTH | FIDO2;
}

/// Version of the format [`Management`]'s saved state is in.
const STATE_FORMAT: u8 = 1;

/// INS of READ CONFIG (device information).
const INS_READ_CONFIG: u8 = 0x1D;
/// INS of WRITE CONFIG.
const INS_WRITE_CONFIG: u8 = 0x1C;

/// Device information tags (yubikit `management.py`).
mod tag {
    pub(super) const USB_SUPPORTED: u8 = 0x01;
    pub(super) const SERIAL: u8 = 0x02;
    pub(super) const USB_ENABLED: u8 = 0x03;
    pub(super) const FORM_FACTOR: u8 = 0x04;
    pub(super) const VERSION: u8 = 0x05;
    pub(super) const AUTO_EJECT_TIMEOUT: u8 = 0x06;
    pub(super) const CHALRESP_TIMEOUT: u8 = 0x07;
    pub(super) const DEVICE_FLAGS: u8 = 0x08;
    pub(super) const CONFIG_LOCK: u8 = 0x0A;
    pub(super) const UNLOCK: u8 = 0x0B;
    pub(super) const REBOOT: u8 = 0x0C;
    pub(super) const NFC_SUPPORTED: u8 = 0x0D;
    pub(super) const NFC_ENABLED: u8 = 0x0E;
}

/// The challenge-response timeout a factory-fresh YubiKey reports, in seconds.
const DEFAULT_CHALRESP_TIMEOUT: u8 = 15;

/// The management applet: device information and configuration. Its settings are
/// persistent (they survive [`SoftCard::power_cycle`](crate::SoftCard::power_cycle)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    usb_supported: u16,
    usb_enabled: u16,
    /// `None`: no NFC interface (tags `0D`/`0E` are not reported).
    nfc_supported: Option<u16>,
    nfc_enabled: u16,
    auto_eject_timeout: u16,
    chalresp_timeout: u8,
    device_flags: u8,
}

impl Default for Management {
    fn default() -> Self {
        Self::new()
    }
}

impl Management {
    /// The management applet of the software card: a YubiKey 5 NFC that supports (and has
    /// enabled, over USB and NFC) what the card has applets for,
    /// [`capability::SOFTCARD`].
    pub fn new() -> Self {
        Self::with_capabilities(capability::SOFTCARD, true)
    }

    /// A management applet that claims `capabilities` (bits of [`capability`]) as
    /// supported and enabled over USB, and over NFC too when `nfc` is true (ykman then
    /// names a USB-A keychain "YubiKey 5 NFC" rather than "YubiKey 5A").
    pub fn with_capabilities(capabilities: u16, nfc: bool) -> Self {
        Self {
            usb_supported: capabilities,
            usb_enabled: capabilities,
            nfc_supported: nfc.then_some(capabilities),
            nfc_enabled: if nfc { capabilities } else { 0 },
            auto_eject_timeout: 0,
            chalresp_timeout: DEFAULT_CHALRESP_TIMEOUT,
            device_flags: 0,
        }
    }

    /// The device information: one length byte, then the TLVs.
    fn device_info(&self, identity: &Identity) -> Vec<u8> {
        let mut tlvs = Vec::with_capacity(64);
        let mut put = |tag: u8, value: &[u8]| {
            tlvs.push(tag);
            tlvs.push(value.len() as u8);
            tlvs.extend_from_slice(value);
        };
        put(tag::USB_SUPPORTED, &self.usb_supported.to_be_bytes());
        put(tag::SERIAL, &identity.serial.to_be_bytes());
        put(tag::USB_ENABLED, &self.usb_enabled.to_be_bytes());
        put(tag::FORM_FACTOR, &[identity.form_factor.code()]);
        let version = identity.version;
        put(tag::VERSION, &[version.0, version.1, version.2]);
        put(tag::AUTO_EJECT_TIMEOUT, &self.auto_eject_timeout.to_be_bytes());
        put(tag::CHALRESP_TIMEOUT, &[self.chalresp_timeout]);
        put(tag::DEVICE_FLAGS, &[self.device_flags]);
        put(tag::CONFIG_LOCK, &[0]);
        if let Some(nfc_supported) = self.nfc_supported {
            put(tag::NFC_SUPPORTED, &nfc_supported.to_be_bytes());
            put(tag::NFC_ENABLED, &self.nfc_enabled.to_be_bytes());
        }
        let mut out = Vec::with_capacity(tlvs.len() + 1);
        out.push(tlvs.len() as u8);
        out.extend_from_slice(&tlvs);
        out
    }

    /// WRITE CONFIG: validates every TLV first, then applies them all.
    fn write_config(&mut self, data: &[u8]) -> Result<(), StatusWord> {
        let (&length, body) = data.split_first().ok_or(StatusWord::WRONG_LENGTH)?;
        if usize::from(length) != body.len() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let mut updated = self.clone();
        for (tag, value) in parse_tlvs(body).ok_or(StatusWord::INCORRECT_DATA)? {
            match (tag, value.len()) {
                (tag::USB_ENABLED, 1 | 2) => {
                    let enabled = be_u16(value);
                    if enabled & !self.usb_supported != 0 || enabled == 0 {
                        return Err(StatusWord::INCORRECT_DATA);
                    }
                    updated.usb_enabled = enabled;
                }
                (tag::NFC_ENABLED, 1 | 2) => {
                    let supported = self.nfc_supported.ok_or(StatusWord::INCORRECT_DATA)?;
                    let enabled = be_u16(value);
                    if enabled & !supported != 0 {
                        return Err(StatusWord::INCORRECT_DATA);
                    }
                    updated.nfc_enabled = enabled;
                }
                (tag::AUTO_EJECT_TIMEOUT, 1 | 2) => updated.auto_eject_timeout = be_u16(value),
                (tag::CHALRESP_TIMEOUT, 1) => updated.chalresp_timeout = value[0],
                (tag::DEVICE_FLAGS, 1) => updated.device_flags = value[0],
                (tag::REBOOT, 0) => {}
                // A lock code of zeros is "no lock code": accepted as the current one.
                (tag::UNLOCK, 16) if value.iter().all(|&b| b == 0) => {}
                _ => return Err(StatusWord::INCORRECT_DATA),
            }
        }
        *self = updated;
        Ok(())
    }
}

/// A 1- or 2-byte big-endian value.
fn be_u16(value: &[u8]) -> u16 {
    value.iter().fold(0, |acc, &b| (acc << 8) | u16::from(b))
}

/// Splits simple TLVs (one-byte tags, one-byte lengths up to 127) as the management
/// application uses them; `None` when malformed.
fn parse_tlvs(mut data: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while let [tag, length, rest @ ..] = data {
        let length = usize::from(*length);
        if length > 0x7F || rest.len() < length {
            return None;
        }
        out.push((*tag, &rest[..length]));
        data = &rest[length..];
    }
    data.is_empty().then_some(out)
}

impl Applet for Management {
    fn aid(&self) -> &[u8] {
        &MANAGEMENT_AID
    }

    fn name(&self) -> &'static str {
        "management"
    }

    fn select(&mut self, context: &mut Context<'_>) -> Reply {
        let text = format!("Virtual mgr - FW version {}", context.identity.version);
        Ok(Zeroizing::new(text.into_bytes()))
    }

    fn deselect(&mut self) {}

    /// Format (version `01`): `01` the format version; `02` the settings: USB supported
    /// and enabled (2 bytes each), NFC present (1), NFC supported and enabled (2 each),
    /// auto-eject timeout (2), challenge-response timeout (1), device flags (1).
    fn save(&self) -> Zeroizing<Vec<u8>> {
        let mut record = Vec::with_capacity(13);
        record.extend_from_slice(&self.usb_supported.to_be_bytes());
        record.extend_from_slice(&self.usb_enabled.to_be_bytes());
        record.push(u8::from(self.nfc_supported.is_some()));
        record.extend_from_slice(&self.nfc_supported.unwrap_or(0).to_be_bytes());
        record.extend_from_slice(&self.nfc_enabled.to_be_bytes());
        record.extend_from_slice(&self.auto_eject_timeout.to_be_bytes());
        record.push(self.chalresp_timeout);
        record.push(self.device_flags);
        let mut out = Zeroizing::new(Vec::with_capacity(20));
        keystation_core::tlv::write(&mut out, 0x01, &[STATE_FORMAT]);
        keystation_core::tlv::write(&mut out, 0x02, &record);
        out
    }

    fn restore(&mut self, _identity: &Identity, saved: &[u8]) -> Result<(), StateError> {
        let invalid = |reason: &str| StateError::applet("management", reason);
        let find =
            |tag: u32| keystation_core::tlv::find(saved, tag).map_err(|_| invalid("malformed TLV"));
        if find(0x01)? != Some(&[STATE_FORMAT][..]) {
            return Err(invalid("format version"));
        }
        let record = find(0x02)?.ok_or_else(|| invalid("settings missing"))?;
        let &[us1, us0, ue1, ue0, nfc, ns1, ns0, ne1, ne0, ae1, ae0, chalresp, flags] = record
        else {
            return Err(invalid("settings length"));
        };
        let pair = |high: u8, low: u8| u16::from_be_bytes([high, low]);
        let restored = Self {
            usb_supported: pair(us1, us0),
            usb_enabled: pair(ue1, ue0),
            nfc_supported: (nfc != 0).then_some(pair(ns1, ns0)),
            nfc_enabled: pair(ne1, ne0),
            auto_eject_timeout: pair(ae1, ae0),
            chalresp_timeout: chalresp,
            device_flags: flags,
        };
        let nfc_supported = restored.nfc_supported.unwrap_or(0);
        if restored.usb_enabled & !restored.usb_supported != 0
            || restored.nfc_enabled & !nfc_supported != 0
        {
            return Err(invalid("enabled capabilities that are not supported"));
        }
        *self = restored;
        Ok(())
    }

    fn process(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        match command.ins {
            INS_READ_CONFIG => {
                if command.p2 != 0 || command.p1 != 0 {
                    return Err(StatusWord::INCORRECT_P1_P2);
                }
                Ok(Zeroizing::new(self.device_info(context.identity)))
            }
            INS_WRITE_CONFIG => {
                if command.p1 != 0 || command.p2 != 0 {
                    return Err(StatusWord::INCORRECT_P1_P2);
                }
                self.write_config(command.data())?;
                Ok(Zeroizing::new(Vec::new()))
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

/// INS of the OTP application's configuration commands; P1 is the "slot".
const INS_OTP_CONFIG: u8 = 0x01;
/// INS of the OTP application's status command.
const INS_OTP_STATUS: u8 = 0x03;
/// The "slot" that reads the serial number.
const SLOT_DEVICE_SERIAL: u8 = 0x10;

/// The OTP applet: status and serial only (see the module documentation).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Otp {}

impl Otp {
    /// The OTP applet, both slots empty.
    pub fn new() -> Self {
        Self {}
    }

    /// The status: firmware version, programming sequence 0, touch level 0 (little
    /// endian; no slot configured).
    fn status(identity: &Identity) -> Zeroizing<Vec<u8>> {
        let version = identity.version;
        Zeroizing::new(vec![version.0, version.1, version.2, 0, 0, 0])
    }
}

impl Applet for Otp {
    fn aid(&self) -> &[u8] {
        &OTP_AID
    }

    fn name(&self) -> &'static str {
        "OTP"
    }

    fn select(&mut self, context: &mut Context<'_>) -> Reply {
        Ok(Self::status(context.identity))
    }

    fn deselect(&mut self) {}

    fn process(&mut self, context: &mut Context<'_>, command: &Command) -> Reply {
        match (command.ins, command.p1) {
            (INS_OTP_STATUS, _) => Ok(Self::status(context.identity)),
            (INS_OTP_CONFIG, SLOT_DEVICE_SERIAL) => {
                Ok(Zeroizing::new(context.identity.serial.to_be_bytes().to_vec()))
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use crate::{FormFactor, SoftCard, Version};

    fn card(identity: Identity) -> SoftCard {
        SoftCard::new(identity, vec![Box::new(Management::new()), Box::new(Otp::new())], Some(1))
    }

    fn identity() -> Identity {
        Identity {
            serial: 0x0102_0304,
            version: Version(5, 4, 3),
            form_factor: FormFactor::UsbAKeychain,
        }
    }

    fn select(card: &mut SoftCard, aid: &[u8]) -> Vec<u8> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
        apdu.extend_from_slice(aid);
        card.process(&apdu)
    }

    #[test]
    fn select_answers_the_version_string() {
        let mut card = card(identity());
        let response = select(&mut card, &MANAGEMENT_AID);
        assert_eq!(
            response,
            [b"Virtual mgr - FW version 5.4.3".as_slice(), &[0x90, 0x00]].concat()
        );
    }

    #[test]
    fn read_config_reports_the_device_information() {
        let mut card = card(identity());
        select(&mut card, &MANAGEMENT_AID);
        let response = card.process(&[0x00, 0x1D, 0x00, 0x00, 0x00]);
        let (data, sw) = response.split_at(response.len() - 2);
        assert_eq!(sw, [0x90, 0x00]);
        assert_eq!(usize::from(data[0]), data.len() - 1, "length byte");
        let tlvs = parse_tlvs(&data[1..]).expect("well-formed TLVs");
        let get = |t: u8| tlvs.iter().find(|(tag, _)| *tag == t).map(|(_, v)| v.to_vec());
        assert_eq!(get(0x01), Some(vec![0x00, 0x19]), "OTP | OpenPGP | PIV");
        assert_eq!(get(0x02), Some(vec![1, 2, 3, 4]));
        assert_eq!(get(0x03), Some(vec![0x00, 0x19]));
        assert_eq!(get(0x04), Some(vec![0x01]));
        assert_eq!(get(0x05), Some(vec![5, 4, 3]));
        assert_eq!(get(0x0D), Some(vec![0x00, 0x19]));
        assert_eq!(get(0x0E), Some(vec![0x00, 0x19]));
        assert_eq!(get(0x0A), Some(vec![0x00]));
        assert_eq!(get(0x10), None, "no more pages");
        // Pages beyond the first do not exist; unknown instructions are refused.
        assert_eq!(card.process(&[0x00, 0x1D, 0x01, 0x00, 0x00]), [0x6A, 0x86]);
        assert_eq!(card.process(&[0x00, 0x42, 0x00, 0x00]), [0x6D, 0x00]);
    }

    #[test]
    fn without_nfc_the_nfc_tags_are_absent() {
        let mut card = SoftCard::new(
            identity(),
            vec![Box::new(Management::with_capabilities(capability::YUBIKEY_5_NFC, false))],
            Some(1),
        );
        select(&mut card, &MANAGEMENT_AID);
        let response = card.process(&[0x00, 0x1D, 0x00, 0x00, 0x00]);
        let tlvs = parse_tlvs(&response[1..response.len() - 2]).expect("TLVs");
        assert!(tlvs.iter().all(|(tag, _)| *tag != 0x0D && *tag != 0x0E));
        assert!(tlvs.contains(&(0x01, &[0x03, 0x3B][..])));
    }

    #[test]
    fn write_config_changes_enabled_capabilities_and_survives_power_cycles() {
        let mut card = card(identity());
        select(&mut card, &MANAGEMENT_AID);
        // Disable OTP over USB, with the reboot flag, as `ykman config usb -d OTP` does.
        assert_eq!(
            card.process(&[0x00, 0x1C, 0x00, 0x00, 0x07, 0x06, 0x0C, 0x00, 0x03, 0x02, 0x00, 0x18]),
            [0x90, 0x00]
        );
        card.power_cycle();
        select(&mut card, &MANAGEMENT_AID);
        let response = card.process(&[0x00, 0x1D, 0x00, 0x00, 0x00]);
        let tlvs = parse_tlvs(&response[1..response.len() - 2]).expect("TLVs");
        assert!(tlvs.contains(&(0x03, &[0x00, 0x18][..])));
        assert!(tlvs.contains(&(0x01, &[0x00, 0x19][..])), "supported unchanged");
        // Enabling something unsupported, a lock code, bad lengths: refused, nothing changes.
        for bad in [
            &[0x00, 0x1C, 0x00, 0x00, 0x05, 0x04, 0x03, 0x02, 0x02, 0x00][..],
            &[0x00, 0x1C, 0x00, 0x00, 0x05, 0x04, 0x03, 0x02, 0x00, 0x00],
            &[0x00, 0x1C, 0x00, 0x00, 0x04, 0x03, 0x0A, 0x01, 0x01],
            &[0x00, 0x1C, 0x00, 0x00, 0x03, 0x05, 0x03, 0x02],
            &[0x00, 0x1C, 0x00, 0x00, 0x03, 0x02, 0x03, 0x05],
        ] {
            assert_ne!(card.process(bad), [0x90, 0x00], "{bad:02X?}");
        }
        let again = card.process(&[0x00, 0x1D, 0x00, 0x00, 0x00]);
        assert_eq!(again, response);
    }

    #[test]
    fn otp_answers_status_and_serial() {
        let mut card = card(identity());
        assert_eq!(select(&mut card, &OTP_AID), [5, 4, 3, 0, 0, 0, 0x90, 0x00]);
        assert_eq!(card.process(&[0x00, 0x01, 0x10, 0x00]), [1, 2, 3, 4, 0x90, 0x00]);
        assert_eq!(card.process(&[0x00, 0x03, 0x00, 0x00]), [5, 4, 3, 0, 0, 0, 0x90, 0x00]);
        assert_eq!(card.process(&[0x00, 0x01, 0x01, 0x00, 0x01, 0x00]), [0x6D, 0x00]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut card = card(identity());
        for aid in [&MANAGEMENT_AID[..], &OTP_AID[..]] {
            select(&mut card, aid);
            for ins in 0..=255u8 {
                for data in [&[][..], &[0xFF], &[0x01, 0x03], &[0x02, 0x03, 0x81]] {
                    let mut apdu = vec![0x00, ins, 0x00, 0x00];
                    if !data.is_empty() {
                        apdu.push(data.len() as u8);
                        apdu.extend_from_slice(data);
                    }
                    assert!(card.process(&apdu).len() >= 2);
                }
            }
        }
    }
}
