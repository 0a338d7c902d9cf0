//! The text step's clients put in request bodies: times (RFC 3339 or Go durations),
//! certificate serials (decimal or `0x` hex), SSH keys in wire form (base64). Every parser
//! is total: any input gives a value or `None`/an error, never a panic (fuzzed by
//! `fuzz/fuzz_targets/authority_bodies.rs`).

/// RFC 3339 text of unix seconds (UTC), as step-ca writes times.
pub use keystation_x509::rfc3339;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (RFC 3339 §5.6) into Unix seconds,
/// dropping fractions; `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// A Go duration as step writes them (`5m`, `1h30m`, `-10s`), in whole seconds.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0i64;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(factor)?)?;
        rest = &rest[unit_len..];
    }
    Some(sign * total)
}

/// A serial as step's clients send it (decimal, or `0x` hex) as lower-case hex without
/// leading zeros, the store's key.
pub fn serial_hex(text: &str) -> Option<String> {
    let text = text.trim();
    let hex = if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        h.to_ascii_lowercase()
    } else {
        if text.is_empty() || text.len() > 80 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Decimal to base 256, most significant byte first.
        let mut bytes: Vec<u8> = vec![0];
        for digit in text.bytes().map(|b| u32::from(b - b'0')) {
            let mut carry = digit;
            for byte in bytes.iter_mut().rev() {
                let v = u32::from(*byte) * 10 + carry;
                *byte = (v & 0xff) as u8;
                carry = v >> 8;
            }
            while carry > 0 {
                bytes.insert(0, (carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let trimmed = hex.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0".into() } else { trimmed.to_owned() })
}

/// An SSH key or certificate's wire encoding (RFC 4253 §6.6) as an OpenSSH line: the
/// algorithm name is the blob's first string.
pub fn ssh_line_from_wire(wire: &[u8]) -> Result<String, String> {
    use base64::Engine as _;
    let len = wire.get(..4).ok_or("too short")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let name = wire.get(4..4 + len).ok_or("truncated algorithm name")?;
    let name = std::str::from_utf8(name).map_err(|_| "algorithm name is not text")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("bad algorithm name".into());
    }
    Ok(format!("{name} {}", base64::engine::general_purpose::STANDARD.encode(wire)))
}

/// step's `publicKey`: the key's wire encoding in standard base64.
pub fn ssh_line_from_base64(text: &str) -> Result<String, String> {
    use base64::Engine as _;
    let wire = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| "not base64".to_owned())?;
    ssh_line_from_wire(&wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-12-06T03:00:00Z"), Some(1_796_526_000));
        assert_eq!(parse_rfc3339("2026-12-06T04:00:00+01:00"), Some(1_796_526_000));
        assert_eq!(parse_rfc3339("2026-12-06T03:00:00.123456789Z"), Some(1_796_526_000));
        assert_eq!(parse_rfc3339("2026-13-06T03:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-12-06 03:00"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn serials_from_decimal_and_hex() {
        assert_eq!(serial_hex("255").as_deref(), Some("ff"));
        assert_eq!(serial_hex("0x00FF").as_deref(), Some("ff"));
        assert_eq!(serial_hex("0").as_deref(), Some("0"));
        // 2^128 + 1 needs more than u128.
        assert_eq!(
            serial_hex("340282366920938463463374607431768211457").as_deref(),
            Some("100000000000000000000000000000001")
        );
        assert_eq!(serial_hex("12a"), None);
        assert_eq!(serial_hex(""), None);
        assert_eq!(serial_hex("0x"), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5m"), Some(300));
        assert_eq!(parse_go_duration("1h30m"), Some(5400));
        assert_eq!(parse_go_duration("-10s"), Some(-10));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
