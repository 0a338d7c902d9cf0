//! ASCII armor, RFC 4880 §6: base64 (§6.3, RFC 4648 §4) in lines of 64 characters, a
//! CRC-24 checksum line (§6.1), and the BEGIN/END header lines (§6.2).

use crate::CertError;

/// What an armored block holds (the word in its `-----BEGIN PGP …-----` line), §6.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArmorKind {
    /// `PUBLIC KEY BLOCK`: a certificate (transferable public key).
    PublicKey,
    /// `PRIVATE KEY BLOCK`: a transferable secret key.
    PrivateKey,
    /// `SIGNATURE`: a detached signature.
    Signature,
    /// `MESSAGE`.
    Message,
}

impl ArmorKind {
    const ALL: [Self; 4] = [Self::PublicKey, Self::PrivateKey, Self::Signature, Self::Message];

    fn label(self) -> &'static str {
        match self {
            Self::PublicKey => "PGP PUBLIC KEY BLOCK",
            Self::PrivateKey => "PGP PRIVATE KEY BLOCK",
            Self::Signature => "PGP SIGNATURE",
            Self::Message => "PGP MESSAGE",
        }
    }
}

/// CRC-24 of RFC 4880 §6.1 (initial value `B704CE`, generator `1864CFB`).
pub fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

/// Armors `data` as `kind`, with the CRC-24 line, lines ending in `\n`.
pub fn armor(kind: ArmorKind, data: &[u8]) -> String {
    let body = keystation_core::base64::encode(data);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 80);
    out.push_str("-----BEGIN ");
    out.push_str(kind.label());
    out.push_str("-----\n\n");
    for line in body.as_bytes().chunks(64) {
        // The alphabet is ASCII, so every chunk is valid UTF-8.
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push('=');
    out.push_str(&keystation_core::base64::encode(&crc24(data).to_be_bytes()[1..]));
    out.push_str("\n-----END ");
    out.push_str(kind.label());
    out.push_str("-----\n");
    out
}

/// Removes the armor from the first armored block in `text`: checks the header and
/// footer lines, skips armor headers (`Key: value` lines up to the blank line), decodes
/// the base64 and verifies the CRC-24 line when there is one (RFC 4880 §6.2; RFC 9580
/// made it optional). Any input gives a result or an error, never a panic.
pub fn dearmor(text: &str) -> Result<(ArmorKind, Vec<u8>), CertError> {
    let bad = |reason: &'static str| CertError::Armor(reason);
    let mut lines = text.lines().map(|l| l.trim_end_matches([' ', '\t', '\r']));
    let kind = loop {
        let line = lines.next().ok_or(bad("no BEGIN line"))?;
        if let Some(label) =
            line.strip_prefix("-----BEGIN ").and_then(|rest| rest.strip_suffix("-----"))
        {
            break ArmorKind::ALL
                .into_iter()
                .find(|k| k.label() == label)
                .ok_or(bad("unknown armor type"))?;
        }
    };
    // Armor headers, then a blank line.
    loop {
        let line = lines.next().ok_or(bad("no blank line after the armor headers"))?;
        if line.is_empty() {
            break;
        }
        if !line.contains(": ") {
            return Err(bad("malformed armor header"));
        }
    }
    let mut body = String::new();
    let mut checksum = None;
    let end = format!("-----END {}-----", kind.label());
    loop {
        let line = lines.next().ok_or(bad("no END line"))?;
        if line == end {
            break;
        }
        if checksum.is_some() {
            return Err(bad("text after the checksum line"));
        }
        if let Some(crc) = line.strip_prefix('=') {
            checksum = Some(crc);
        } else {
            body.push_str(line);
        }
    }
    let data = keystation_core::base64::decode(&body).ok_or(bad("invalid base64"))?;
    if let Some(crc) = checksum {
        let crc = keystation_core::base64::decode(crc)
            .filter(|c| c.len() == 3)
            .ok_or(bad("invalid checksum"))?;
        let expected = (u32::from(crc[0]) << 16) | (u32::from(crc[1]) << 8) | u32::from(crc[2]);
        if expected != crc24(&data) {
            return Err(bad("CRC-24 mismatch"));
        }
    }
    Ok((kind, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc24_check_value() {
        // The CRC-24/OPENPGP catalogue check value: CRC of ASCII "123456789".
        assert_eq!(crc24(b"123456789"), 0x21CF02);
        assert_eq!(crc24(b""), 0xB704CE);
    }

    #[test]
    fn armor_matches_a_known_block_and_round_trips() {
        // What `gpg --enarmor` prints for "foobar" (body and checksum line).
        let text = armor(ArmorKind::Signature, b"foobar");
        assert_eq!(
            text,
            "-----BEGIN PGP SIGNATURE-----\n\nZm9vYmFy\n=czTe\n-----END PGP SIGNATURE-----\n"
        );
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let text = armor(ArmorKind::PublicKey, &data);
        assert!(text.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        assert_eq!(dearmor(&text).ok(), Some((ArmorKind::PublicKey, data)));
    }

    #[test]
    fn dearmor_rejects_damage() {
        let good = armor(ArmorKind::PublicKey, b"some packets");
        let flipped = good.replacen("c29t", "c29u", 1);
        assert!(matches!(dearmor(&flipped), Err(CertError::Armor("CRC-24 mismatch"))));
        let with_header = good.replacen("\n\n", "\nComment: hi\n\n", 1);
        assert_eq!(dearmor(&with_header).ok().map(|(_, d)| d), Some(b"some packets".to_vec()));
        assert!(dearmor("").is_err());
        assert!(dearmor("-----BEGIN PGP NONSENSE-----\n\n").is_err());
        assert!(dearmor(&good.replace("-----END PGP PUBLIC KEY BLOCK-----\n", "")).is_err());
    }
}
