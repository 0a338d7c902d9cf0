//! Containers for secrets: zeroized when dropped, never shown by `Debug`.

use std::io::Read as _;

use zeroize::{Zeroize, Zeroizing};

/// Secret bytes: a PIN, a management key, private key material.
///
/// The buffer is overwritten with zeros when dropped; `Debug` prints only the length.
/// There is deliberately no `Display`, `Serialize` or `PartialEq` (comparisons of
/// secrets belong on the card, or in constant time where they cannot be).
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes`; the caller remains responsible for its own copy.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret, for handing to the card or a cryptographic primitive.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Converts into the zeroizing buffer, e.g. for
    /// [`Command::with_secret_data`](crate::Command::with_secret_data).
    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

/// Reads everything `reader` yields, at most `max` bytes, into memory that is zeroized when
/// dropped (files given to keystation may hold secrets). More than `max` bytes is an
/// `InvalidData` error naming the limit, so that a wrong path (a disk image, `/dev/zero`)
/// fails at once. The caller opens the file: this crate does no I/O of its own.
pub fn read_capped(reader: impl std::io::Read, max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    reader.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes; not read"),
        ));
    }
    Ok(bytes)
}

impl From<String> for SecretBytes {
    fn from(mut value: String) -> Self {
        let bytes = value.as_bytes().to_vec();
        value.zeroize();
        Self::new(bytes)
    }
}

impl core::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SecretBytes([{} bytes redacted])", self.0.len())
    }
}

/// Private key material, as it is imported to a card or held in host memory.
///
/// Each variant holds the parts the card import formats need: OpenPGP card 3.4 §4.4.3.12
/// (RSA as e, p, q; ECC as the private scalar) and Yubico's PIV IMPORT KEY (RSA as p, q,
/// dP, dQ, qInv; ECC as the scalar). All parts are big-endian, without leading zeros for
/// RSA, and zeroized on drop.
#[derive(Clone)]
#[non_exhaustive]
pub enum SecretKey {
    /// RSA private key in CRT form.
    Rsa {
        /// Public exponent (not secret, kept for the OpenPGP import template).
        e: Vec<u8>,
        /// First prime.
        p: SecretBytes,
        /// Second prime.
        q: SecretBytes,
        /// d mod (p − 1).
        dp: SecretBytes,
        /// d mod (q − 1).
        dq: SecretBytes,
        /// q⁻¹ mod p.
        qinv: SecretBytes,
    },
    /// NIST P-256 private scalar (32 bytes).
    NistP256(SecretBytes),
    /// NIST P-384 private scalar (48 bytes).
    NistP384(SecretBytes),
    /// Ed25519 seed (32 bytes, RFC 8032 §5.1.5).
    Ed25519(SecretBytes),
    /// X25519 scalar (32 bytes, RFC 7748 §5).
    X25519(SecretBytes),
}

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = match self {
            Self::Rsa { .. } => "Rsa",
            Self::NistP256(_) => "NistP256",
            Self::NistP384(_) => "NistP384",
            Self::Ed25519(_) => "Ed25519",
            Self::X25519(_) => "X25519",
        };
        write!(f, "SecretKey::{kind}([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_bytes() {
        let pin = SecretBytes::from(String::from("123456"));
        assert_eq!(format!("{pin:?}"), "SecretBytes([6 bytes redacted])");
        assert_eq!(pin.expose(), b"123456");
        let key = SecretKey::Ed25519(SecretBytes::copy_from(&[0x42; 32]));
        let shown = format!("{key:?}");
        assert_eq!(shown, "SecretKey::Ed25519([redacted])");
        assert!(!shown.contains("42"));
    }

    #[test]
    fn into_zeroizing_keeps_the_bytes() {
        let s = SecretBytes::copy_from(&[1, 2, 3]);
        assert_eq!(s.len(), 3);
        assert_eq!(&s.into_zeroizing()[..], &[1, 2, 3]);
        assert!(SecretBytes::default().is_empty());
    }
}
