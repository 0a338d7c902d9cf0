//! Certificate serial numbers (RFC 5280 §4.1.2.2): positive integers of at most 20
//! octets; the CA draws 128 random bits for each, as step-ca does.

use keystation_core::keygen::RandomSource;
use keystation_keygen::OsRandom;

use crate::Error;

/// A positive certificate serial number, held as its big-endian magnitude (no leading
/// zero octets). Shown in decimal, as step-ca's API and database name serials; in hex as
/// OpenSSL shows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A random serial of 128 bits (step-ca's `x509util` draws from [0, 2¹²⁸)); zero,
    /// which RFC 5280 does not allow, is drawn again.
    pub fn random() -> Result<Self, Error> {
        Self::random_from(&mut OsRandom)
    }

    /// A random 128-bit serial from `random`.
    pub fn random_from(random: &mut dyn RandomSource) -> Result<Self, Error> {
        loop {
            let mut bytes = [0u8; 16];
            random.fill(&mut bytes)?;
            if let Ok(serial) = Self::from_bytes(&bytes) {
                return Ok(serial);
            }
        }
    }

    /// A serial from its unsigned big-endian magnitude, e.g. the content octets of a
    /// certificate's `serialNumber` (a leading zero octet is dropped). Zero, and numbers
    /// that need more than 20 octets as a DER INTEGER, are refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[start..];
        if magnitude.is_empty() {
            return Err(Error::template("a serial number must be positive"));
        }
        let serial = Self(magnitude.to_vec());
        if serial.to_der_contents().len() > 20 {
            return Err(Error::template("a serial number has at most 20 octets"));
        }
        Ok(serial)
    }

    /// Parses a decimal serial (step-ca's form, e.g. in `/1.0/revoke`).
    pub fn from_decimal(text: &str) -> Result<Self, Error> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::template(format!("{text:?} is not a decimal serial number")));
        }
        let mut magnitude: Vec<u8> = Vec::new();
        for digit in text.bytes().map(|b| b - b'0') {
            // magnitude = magnitude * 10 + digit, little-endian while it is built.
            let mut carry = u16::from(digit);
            for byte in magnitude.iter_mut() {
                let value = u16::from(*byte) * 10 + carry;
                *byte = value as u8;
                carry = value >> 8;
            }
            if carry > 0 {
                magnitude.push(carry as u8);
            }
            if magnitude.len() > 21 {
                return Err(Error::template("a serial number has at most 20 octets"));
            }
        }
        magnitude.reverse();
        Self::from_bytes(&magnitude)
    }

    /// Parses a hexadecimal serial (OpenSSL's form; `:` separators allowed).
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        let bad = || Error::template(format!("{text:?} is not a hexadecimal serial number"));
        if digits.is_empty() {
            return Err(bad());
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8).ok_or_else(bad);
        let mut bytes = Vec::with_capacity(digits.len() / 2 + 1);
        let odd = digits.len() % 2 == 1;
        if odd {
            bytes.push(nibble(digits[0])?);
        }
        for pair in digits[usize::from(odd)..].chunks(2) {
            bytes.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
        }
        Self::from_bytes(&bytes)
    }

    /// The big-endian magnitude, without leading zero octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The DER INTEGER contents: the magnitude, with a zero octet in front when its top
    /// bit is set (X.690 §8.3).
    pub fn to_der_contents(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        if self.0.first().is_some_and(|b| b & 0x80 != 0) {
            out.push(0);
        }
        out.extend_from_slice(&self.0);
        out
    }

    /// Lower-case hex of the magnitude, two digits per octet.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The decimal form.
    pub fn to_decimal(&self) -> String {
        let mut digits = Vec::new();
        let mut number = self.0.clone();
        while number.iter().any(|&b| b != 0) {
            let mut remainder = 0u16;
            for byte in number.iter_mut() {
                let value = (remainder << 8) | u16::from(*byte);
                *byte = (value / 10) as u8;
                remainder = value % 10;
            }
            digits.push(b'0' + remainder as u8);
        }
        if digits.is_empty() {
            digits.push(b'0');
        }
        digits.reverse();
        String::from_utf8(digits).unwrap_or_default()
    }
}

impl core::fmt::Display for Serial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimal_and_hex_round_trip() {
        let serial = Serial::from_bytes(&[0x00, 0x01, 0x00]).unwrap();
        assert_eq!(serial.as_bytes(), [1, 0]);
        assert_eq!(serial.to_decimal(), "256");
        assert_eq!(Serial::from_decimal("256").unwrap(), serial);
        let big = Serial::from_bytes(&[0xFF; 16]).unwrap();
        assert_eq!(big.to_decimal(), u128::MAX.to_string());
        assert_eq!(Serial::from_decimal(&u128::MAX.to_string()).unwrap(), big);
        assert_eq!(big.to_der_contents().len(), 17);
        assert_eq!(Serial::from_hex("ff:FF").unwrap().to_hex(), "ffff");
        assert_eq!(Serial::from_hex("abc").unwrap().as_bytes(), [0x0a, 0xbc]);
        for bad in ["", "12a", "-1", "0"] {
            assert!(Serial::from_decimal(bad).is_err(), "{bad}");
        }
        assert!(Serial::from_bytes(&[0; 3]).is_err());
        assert!(Serial::from_bytes(&[0x7F; 20]).is_ok());
        assert!(Serial::from_bytes(&[0x80; 20]).is_err(), "21 octets as a DER INTEGER");
        assert!(Serial::from_decimal(&"9".repeat(60)).is_err());
    }

    #[test]
    fn random_serials_differ_and_fit() {
        let a = Serial::random().unwrap();
        let b = Serial::random().unwrap();
        assert_ne!(a, b);
        assert!(a.to_der_contents().len() <= 17);
    }
}
