//! The PIV card application administration key (key reference `9B`, SP 800-73-4 part 1
//! §3.2.1): 3DES as in SP 800-78-4 table 5, and AES-128/192/256, which YubiKeys accept
//! from firmware 5.4 (Yubico, "PIV management key").

use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use keystation_core::StatusWord;
use zeroize::{Zeroize, Zeroizing};

use crate::identity::Version;

/// The factory management key, `010203040506070801020304050607080102030405060708`
/// (Yubico, "PIV PIN, PUK and management key": the default 24-byte key; 3DES before firmware
/// 5.7, AES-192 from 5.7).
pub(crate) const DEFAULT_KEY: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

/// Management key algorithms (SP 800-78-4 table 6-2 plus Yubico's AES identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MgmtAlgorithm {
    /// Three-key 3DES (`03`).
    TripleDes,
    /// AES-128 (`08`).
    Aes128,
    /// AES-192 (`0A`).
    Aes192,
    /// AES-256 (`0C`).
    Aes256,
}

impl MgmtAlgorithm {
    /// The algorithm with identifier `id`, if the firmware has it (AES from 5.4).
    pub(crate) fn from_id(id: u8, version: Version) -> Option<Self> {
        let alg = match id {
            0x03 => Self::TripleDes,
            0x08 => Self::Aes128,
            0x0A => Self::Aes192,
            0x0C => Self::Aes256,
            _ => return None,
        };
        (alg == Self::TripleDes || version >= Version(5, 4, 0)).then_some(alg)
    }

    /// The identifier byte.
    pub(crate) const fn id(self) -> u8 {
        match self {
            Self::TripleDes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
        }
    }

    /// Key length in bytes.
    pub(crate) const fn key_len(self) -> usize {
        match self {
            Self::TripleDes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }

    /// Block (and challenge) length in bytes.
    pub(crate) const fn block_len(self) -> usize {
        match self {
            Self::TripleDes => 8,
            _ => 16,
        }
    }
}

/// The management key with its algorithm and touch requirement.
#[derive(Clone)]
pub(crate) struct MgmtKey {
    /// Algorithm.
    pub(crate) algorithm: MgmtAlgorithm,
    /// Key bytes, [`MgmtAlgorithm::key_len`] of them.
    pub(crate) key: Zeroizing<Vec<u8>>,
    /// Whether use requires a touch (SET MANAGEMENT KEY with P2 `FE`).
    pub(crate) touch: bool,
}

impl core::fmt::Debug for MgmtKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MgmtKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl MgmtKey {
    /// The factory key for a card with this firmware.
    pub(crate) fn factory(version: Version) -> Self {
        let algorithm = if version >= Version(5, 7, 0) {
            MgmtAlgorithm::Aes192
        } else {
            MgmtAlgorithm::TripleDes
        };
        Self { algorithm, key: Zeroizing::new(DEFAULT_KEY.to_vec()), touch: false }
    }

    /// Whether this is still the factory key.
    pub(crate) fn is_default(&self) -> bool {
        self.key.as_slice() == DEFAULT_KEY
    }

    /// Encrypts (or decrypts) one block with this key in ECB mode. `block` must be one
    /// block long; anything else is `6A80`.
    pub(crate) fn crypt(
        &self,
        block: &[u8],
        encrypt: bool,
    ) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
        let bad = StatusWord::INCORRECT_DATA;
        if block.len() != self.algorithm.block_len() {
            return Err(bad);
        }
        let mut buf = Zeroizing::new(block.to_vec());
        macro_rules! run {
            ($cipher:ty) => {{
                let cipher = <$cipher>::new_from_slice(&self.key).map_err(|_| bad)?;
                let mut b = des::cipher::Block::<$cipher>::default();
                b.copy_from_slice(&buf);
                if encrypt {
                    cipher.encrypt_block(&mut b);
                } else {
                    cipher.decrypt_block(&mut b);
                }
                buf.copy_from_slice(&b);
                b[..].zeroize();
            }};
        }
        match self.algorithm {
            MgmtAlgorithm::TripleDes => run!(des::TdesEde3),
            MgmtAlgorithm::Aes128 => run!(aes::Aes128),
            MgmtAlgorithm::Aes192 => run!(aes::Aes192),
            MgmtAlgorithm::Aes256 => run!(aes::Aes256),
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keys_match_openssl_known_answers() {
        // `openssl enc -des-ede3 -K 0102…0708 -nopad` of eight zero bytes.
        let tdes = MgmtKey::factory(Version(5, 4, 3));
        assert_eq!(tdes.algorithm, MgmtAlgorithm::TripleDes);
        assert!(tdes.is_default());
        let expected = [0xB0, 0x73, 0xDC, 0x3F, 0xB2, 0x09, 0x53, 0x6D];
        assert_eq!(tdes.crypt(&[0; 8], true).map(|b| b.to_vec()), Ok(expected.to_vec()));
        assert_eq!(tdes.crypt(&expected, false).map(|b| b.to_vec()), Ok(vec![0; 8]));
        assert_eq!(tdes.crypt(&[0; 16], true).map(|b| b.to_vec()), Err(StatusWord::INCORRECT_DATA));
        // `openssl enc -aes-192-ecb` of sixteen zero bytes with the same key (firmware 5.7).
        let aes = MgmtKey::factory(Version(5, 7, 0));
        assert_eq!(aes.algorithm, MgmtAlgorithm::Aes192);
        let expected = [
            0x5C, 0x81, 0x53, 0xE7, 0x75, 0x89, 0xB2, 0x23, 0x42, 0x24, 0x06, 0xBF, 0x22, 0x90,
            0x8E, 0x22,
        ];
        assert_eq!(aes.crypt(&[0; 16], true).map(|b| b.to_vec()), Ok(expected.to_vec()));
    }

    #[test]
    fn algorithms_follow_the_firmware() {
        assert_eq!(MgmtKey::factory(Version(5, 7, 0)).algorithm, MgmtAlgorithm::Aes192);
        assert_eq!(MgmtAlgorithm::from_id(0x08, Version(5, 3, 0)), None);
        assert_eq!(MgmtAlgorithm::from_id(0x0C, Version(5, 4, 0)), Some(MgmtAlgorithm::Aes256));
        assert_eq!(MgmtAlgorithm::from_id(0x01, Version(5, 7, 0)), None);
        for alg in [0x03, 0x08, 0x0A, 0x0C] {
            let parsed = MgmtAlgorithm::from_id(alg, Version(5, 7, 0));
            assert_eq!(parsed.map(MgmtAlgorithm::id), Some(alg));
        }
    }
}
