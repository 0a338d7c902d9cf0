//! Status words (SW1 SW2), ISO/IEC 7816-4 §5.1.3, with the meanings OpenPGP card 3.4
//! (§7.2) and NIST SP 800-73-4 (part 2, §5.6) give them.

/// The two status bytes that end every response APDU.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: normal processing.
    pub const SUCCESS: Self = Self(0x9000);
    /// `6281`: part of the returned data may be corrupted.
    pub const DATA_CORRUPTED: Self = Self(0x6281);
    /// `6283`: selected file (application) deactivated (ISO/IEC 7816-4 §5.6, table 6).
    pub const SELECTED_FILE_DEACTIVATED: Self = Self(0x6283);
    /// `6285`: selected file in termination state — an OpenPGP application after
    /// TERMINATE DF answers SELECT with this until ACTIVATE FILE (OpenPGP card 3.4
    /// §7.2.16).
    pub const SELECTED_FILE_TERMINATED: Self = Self(0x6285);
    /// `6400`: execution error, state of non-volatile memory unchanged.
    pub const EXECUTION_ERROR: Self = Self(0x6400);
    /// `6581`: memory failure.
    pub const MEMORY_FAILURE: Self = Self(0x6581);
    /// `6700`: wrong length (Lc or Le).
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// `6881`: logical channel not supported.
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: Self = Self(0x6881);
    /// `6882`: secure messaging not supported.
    pub const SECURE_MESSAGING_NOT_SUPPORTED: Self = Self(0x6882);
    /// `6883`: last command of the chain expected.
    pub const LAST_COMMAND_OF_CHAIN_EXPECTED: Self = Self(0x6883);
    /// `6884`: command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: Self = Self(0x6884);
    /// `6982`: security status not satisfied (PIN not verified, wrong management key).
    pub const SECURITY_STATUS_NOT_SATISFIED: Self = Self(0x6982);
    /// `6983`: authentication method blocked (retry counter at zero).
    pub const AUTH_METHOD_BLOCKED: Self = Self(0x6983);
    /// `6984`: reference data not usable.
    pub const REFERENCE_DATA_NOT_USABLE: Self = Self(0x6984);
    /// `6985`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// `6986`: command not allowed.
    pub const COMMAND_NOT_ALLOWED: Self = Self(0x6986);
    /// `6A80`: incorrect parameters in the command data field.
    pub const INCORRECT_DATA: Self = Self(0x6A80);
    /// `6A81`: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: Self = Self(0x6A81);
    /// `6A82`: file or application (or PIV data object) not found.
    pub const NOT_FOUND: Self = Self(0x6A82);
    /// `6A84`: not enough memory space.
    pub const NOT_ENOUGH_MEMORY: Self = Self(0x6A84);
    /// `6A86`: incorrect parameters P1-P2.
    pub const INCORRECT_P1_P2: Self = Self(0x6A86);
    /// `6A88`: referenced data (data object, key) not found.
    pub const REFERENCED_DATA_NOT_FOUND: Self = Self(0x6A88);
    /// `6B00`: wrong parameters P1-P2.
    pub const WRONG_P1_P2: Self = Self(0x6B00);
    /// `6D00`: instruction code not supported or invalid.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);
    /// `6F00`: no precise diagnosis.
    pub const NO_PRECISE_DIAGNOSIS: Self = Self(0x6F00);

    /// Builds a status word from SW1 and SW2.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self(((sw1 as u16) << 8) | sw2 as u16)
    }

    /// SW1.
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// `9000`.
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000
    }

    /// `61xx`: the card has `xx` more bytes for GET RESPONSE (`00` means 256 or more).
    pub const fn bytes_remaining(self) -> Option<usize> {
        if self.sw1() == 0x61 {
            Some(if self.sw2() == 0 { 256 } else { self.sw2() as usize })
        } else {
            None
        }
    }

    /// `6Cxx`: wrong Le; re-send the command with Le = `xx` (`00` means 256).
    pub const fn correct_le(self) -> Option<usize> {
        if self.sw1() == 0x6C {
            Some(if self.sw2() == 0 { 256 } else { self.sw2() as usize })
        } else {
            None
        }
    }

    /// `63Cx`: verification failed (or status query), `x` tries left. OpenPGP card 3.4
    /// §7.2.2 and SP 800-73-4 part 2 §3.2.1 both use this form. Yubico's PIV also answers a
    /// blocked PIN as `63C0`, which this reports as zero tries.
    pub const fn retries_left(self) -> Option<u8> {
        if self.0 & 0xFFF0 == 0x63C0 { Some(self.sw2() & 0x0F) } else { None }
    }

    /// A short English name for the status, as the specifications word it.
    pub fn name(self) -> &'static str {
        match self.sw1() {
            0x61 => return "more response data available",
            0x6C => return "wrong Le field",
            0x63 if self.retries_left().is_some() => return "verification failed",
            _ => {}
        }
        match self {
            Self::SUCCESS => "success",
            Self::DATA_CORRUPTED => "part of returned data may be corrupted",
            Self::SELECTED_FILE_DEACTIVATED => "selected file deactivated",
            Self::SELECTED_FILE_TERMINATED => "selected application is in termination state",
            Self::EXECUTION_ERROR => "execution error",
            Self::MEMORY_FAILURE => "memory failure",
            Self::WRONG_LENGTH => "wrong length",
            Self::LOGICAL_CHANNEL_NOT_SUPPORTED => "logical channel not supported",
            Self::SECURE_MESSAGING_NOT_SUPPORTED => "secure messaging not supported",
            Self::LAST_COMMAND_OF_CHAIN_EXPECTED => "last command of chain expected",
            Self::CHAINING_NOT_SUPPORTED => "command chaining not supported",
            Self::SECURITY_STATUS_NOT_SATISFIED => "security status not satisfied",
            Self::AUTH_METHOD_BLOCKED => "authentication method blocked",
            Self::REFERENCE_DATA_NOT_USABLE => "reference data not usable",
            Self::CONDITIONS_NOT_SATISFIED => "conditions of use not satisfied",
            Self::COMMAND_NOT_ALLOWED => "command not allowed",
            Self::INCORRECT_DATA => "incorrect data",
            Self::FUNCTION_NOT_SUPPORTED => "function not supported",
            Self::NOT_FOUND => "file or application not found",
            Self::NOT_ENOUGH_MEMORY => "not enough memory",
            Self::INCORRECT_P1_P2 => "incorrect parameters P1-P2",
            Self::REFERENCED_DATA_NOT_FOUND => "referenced data not found",
            Self::WRONG_P1_P2 => "wrong parameters P1-P2",
            Self::INS_NOT_SUPPORTED => "instruction not supported",
            Self::CLA_NOT_SUPPORTED => "class not supported",
            Self::NO_PRECISE_DIAGNOSIS => "no precise diagnosis",
            _ => "unknown status",
        }
    }
}

impl core::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.retries_left() {
            Some(n) => write!(f, "{:04X} ({}, {n} tries left)", self.0, self.name()),
            None => write!(f, "{:04X} ({})", self.0, self.name()),
        }
    }
}

impl core::fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

impl From<u16> for StatusWord {
    fn from(value: u16) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_decoded_from_63cx_only() {
        assert_eq!(StatusWord(0x63C2).retries_left(), Some(2));
        assert_eq!(StatusWord(0x63C0).retries_left(), Some(0));
        assert_eq!(StatusWord(0x6300).retries_left(), None);
        assert_eq!(StatusWord(0x6982).retries_left(), None);
        assert_eq!(StatusWord(0x63C2).to_string(), "63C2 (verification failed, 2 tries left)");
    }

    #[test]
    fn remaining_and_wrong_le_map_zero_to_256() {
        assert_eq!(StatusWord(0x6100).bytes_remaining(), Some(256));
        assert_eq!(StatusWord(0x6110).bytes_remaining(), Some(16));
        assert_eq!(StatusWord(0x6C00).correct_le(), Some(256));
        assert_eq!(StatusWord(0x6C08).correct_le(), Some(8));
        assert_eq!(StatusWord::SUCCESS.bytes_remaining(), None);
    }

    #[test]
    fn names_and_bytes() {
        let sw = StatusWord::from_bytes(0x6A, 0x82);
        assert_eq!(sw, StatusWord::NOT_FOUND);
        assert_eq!((sw.sw1(), sw.sw2()), (0x6A, 0x82));
        assert_eq!(sw.to_string(), "6A82 (file or application not found)");
        assert_eq!(StatusWord(0x6999).name(), "unknown status");
    }
}
