//! Who the software card says it is.

/// A firmware version, `major.minor.patch` (YubiKey 5.4.3 is `Version(5, 4, 3)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u8, pub u8, pub u8);

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// YubiKey form factors, as the management applet reports them (tag `04` of the device
/// information).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FormFactor {
    /// USB-A keychain (YubiKey 5 NFC, 5A).
    #[default]
    UsbAKeychain,
    /// USB-A nano.
    UsbANano,
    /// USB-C keychain.
    UsbCKeychain,
    /// USB-C nano.
    UsbCNano,
}

impl FormFactor {
    /// The byte the management applet reports.
    pub const fn code(self) -> u8 {
        match self {
            Self::UsbAKeychain => 0x01,
            Self::UsbANano => 0x02,
            Self::UsbCKeychain => 0x03,
            Self::UsbCNano => 0x04,
        }
    }
}

/// The card's identity: serial number, firmware version, form factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Serial number (printed on the key; the OpenPGP AID carries it too).
    pub serial: u32,
    /// Firmware version.
    pub version: Version,
    /// Form factor.
    pub form_factor: FormFactor,
}

impl Default for Identity {
    /// A YubiKey 5 NFC with firmware 5.4.3 and a serial in the range Yubico leaves unused
    /// for real keys' first production years, so that it is not mistaken for one.
    fn default() -> Self {
        Self { serial: 10_000_001, version: Version(5, 4, 3), form_factor: FormFactor::default() }
    }
}
