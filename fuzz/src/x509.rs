//! Targets for `keystation-x509`'s parsers: PEM (RFC 7468), private-key files (PKCS#8,
//! SEC1, PKCS#1; encrypted keys refused), PKCS#10 requests (RFC 2986), RFC 4514 names,
//! and YubiKey PIV attestation chains.
//!
//! Seeds are real files (PEM text or DER as `openssl` and the software card write them),
//! so the targets take the input both as bytes and as text rather than switching on a
//! leading mode byte; only the name and attestation targets lay their input out.

use keystation_core::SecretKey;
use keystation_x509::attestation::{verify_piv_attestation_at, yubico_roots};
use keystation_x509::{
    Certificate, CertificateRequest, DistinguishedName, Error, NameAttribute, pem, private_key,
    verify_csr, verify_signed_by,
};

/// The input as text, as a file reader that tolerates bad UTF-8 would see it.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// PEM (`keystation_x509::pem`): blocks that decode re-encode to text that decodes to the
/// same labels and contents; any bytes framed by [`pem::encode`] decode back to
/// themselves; the certificate and request readers built on it never panic, and the
/// certificates they find are the `CERTIFICATE` blocks.
pub fn x509_pem(data: &[u8]) {
    let text = text(data);
    if let Ok(blocks) = pem::decode_all(&text) {
        let rewritten: String = blocks.iter().map(|b| pem::encode(&b.label, &b.der)).collect();
        let again = pem::decode_all(&rewritten).expect("our own PEM decodes");
        assert_eq!(again.len(), blocks.len(), "PEM block count");
        for (a, b) in again.iter().zip(&blocks) {
            assert_eq!((&a.label, &a.der), (&b.label, &b.der), "PEM round trip");
            assert!(a.headers.is_empty(), "encode writes no headers");
        }
        if let Ok(certificates) = Certificate::all_from_pem(&text) {
            let expected: Vec<&[u8]> =
                blocks.iter().filter(|b| b.label == "CERTIFICATE").map(|b| &b.der[..]).collect();
            let found: Vec<&[u8]> = certificates.iter().map(Certificate::der).collect();
            assert_eq!(found, expected, "certificates are the CERTIFICATE blocks");
            for certificate in &certificates {
                let pem = certificate.to_pem();
                let back = Certificate::from_pem(&pem).expect("our own certificate PEM reads");
                assert_eq!(back.der(), certificate.der());
            }
        }
    } else {
        assert!(Certificate::all_from_pem(&text).is_err(), "bad PEM, yet certificates");
    }
    let _ = Certificate::from_pem(&text);
    let _ = CertificateRequest::from_pem(&text);

    let framed = pem::encode("FUZZ DATA", data);
    let blocks = pem::decode_all(&framed).expect("our own PEM decodes");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].label, "FUZZ DATA");
    assert_eq!(blocks[0].der, data, "base64 round trip");
}

/// The parts of a key, to compare two parses (`SecretKey` has no `PartialEq`, on
/// purpose).
fn key_parts(key: &SecretKey) -> (&'static str, Vec<Vec<u8>>) {
    match key {
        SecretKey::Rsa { e, p, q, dp, dq, qinv } => (
            "rsa",
            [e.as_slice(), p.expose(), q.expose(), dp.expose(), dq.expose(), qinv.expose()]
                .map(<[u8]>::to_vec)
                .to_vec(),
        ),
        SecretKey::NistP256(k) => ("p256", vec![k.expose().to_vec()]),
        SecretKey::NistP384(k) => ("p384", vec![k.expose().to_vec()]),
        SecretKey::Ed25519(k) => ("ed25519", vec![k.expose().to_vec()]),
        SecretKey::X25519(k) => ("x25519", vec![k.expose().to_vec()]),
        _ => ("other", Vec::new()),
    }
}

/// What every parsed key must satisfy: scalars of the curve's size, non-zero; RSA primes
/// greater than 1.
fn check_key(key: &SecretKey) {
    let (kind, parts) = key_parts(key);
    match kind {
        "p256" | "ed25519" | "x25519" => assert_eq!(parts[0].len(), 32, "{kind} key size"),
        "p384" => assert_eq!(parts[0].len(), 48, "P-384 key size"),
        "rsa" => {
            // Neither prime is 0 or 1 (else 0·q or 1·n passes for the modulus).
            let nontrivial = |p: &Vec<u8>| {
                let digits = &p[p.iter().take_while(|&&b| b == 0).count()..];
                !digits.is_empty() && digits != [1]
            };
            assert!(parts[1..3].iter().all(nontrivial), "RSA primes must exceed 1");
        }
        _ => {}
    }
    if kind == "p256" || kind == "p384" {
        assert!(parts[0].iter().any(|&b| b != 0), "a zero EC scalar was accepted");
    }
}

/// Private-key files (`keystation_x509::private_key`). The input is tried as DER with
/// each of the three parsers and as PEM text. A DER parse and the parse of the same DER
/// in a PEM block of the matching label agree (same key, or both refused); the same DER
/// labelled `ENCRYPTED PRIVATE KEY` is always refused as encrypted; a PEM text holding an
/// encrypted block is refused as encrypted; every key accepted is well-formed.
pub fn private_key(data: &[u8]) {
    type Parser = fn(&[u8]) -> keystation_x509::Result<SecretKey>;
    let parsers: [(&str, Parser); 3] = [
        ("PRIVATE KEY", private_key::parse_pkcs8_der),
        ("EC PRIVATE KEY", private_key::parse_sec1_der),
        ("RSA PRIVATE KEY", private_key::parse_pkcs1_der),
    ];
    for (label, parse) in parsers {
        let direct = parse(data);
        let through_pem = private_key::parse_pem(&pem::encode(label, data));
        match (&direct, &through_pem) {
            (Ok(a), Ok(b)) => {
                check_key(a);
                assert_eq!(key_parts(a), key_parts(b), "{label}: DER and PEM parses differ");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{label}: DER {:?} but PEM {:?}", direct.is_ok(), through_pem.is_ok()),
        }
    }
    let encrypted = private_key::parse_pem(&pem::encode("ENCRYPTED PRIVATE KEY", data));
    assert!(matches!(encrypted, Err(Error::EncryptedPrivateKey)), "{encrypted:?}");

    let text = text(data);
    let parsed = private_key::parse_pem(&text);
    if let Ok(key) = &parsed {
        check_key(key);
    }
    if let Ok(blocks) = pem::decode_all(&text) {
        let encrypted = blocks.iter().any(|b| {
            b.label == "ENCRYPTED PRIVATE KEY"
                || b.headers.iter().any(|(n, v)| n == "Proc-Type" && v.contains("ENCRYPTED"))
        });
        if encrypted {
            assert!(matches!(parsed, Err(Error::EncryptedPrivateKey)), "{parsed:?}");
        }
    }
}

/// PKCS#10 requests (`CertificateRequest`, `verify_csr`), as DER and as PEM text. A
/// request that parses keeps its DER byte for byte, survives a PEM round trip with the
/// same subject and key, and never has a malformed public key when its self-signature
/// verifies. The input as a certificate signed by itself must not panic either.
pub fn x509_csr(data: &[u8]) {
    let mut requests = Vec::new();
    if let Ok(request) = CertificateRequest::from_der(data) {
        assert_eq!(request.to_der(), data, "requests are kept byte for byte");
        requests.push(request);
    }
    if let Ok(request) = CertificateRequest::from_pem(&text(data)) {
        requests.push(request);
    }
    for request in requests {
        let again = CertificateRequest::from_pem(&request.to_pem()).expect("our own PEM reads");
        assert_eq!(again.to_der(), request.to_der());
        assert_eq!(again.subject(), request.subject());
        assert_eq!(again.subject_der(), request.subject_der());
        assert_eq!(again.spki_der(), request.spki_der());
        let _ = request.subject_alt_names();
        let _ = request.extension("2.5.29.17");
        // keystation's key types may refuse a key the signature check accepts (RSA under
        // 2048 bits), but a key good enough to verify is never malformed.
        let key = request.public_key();
        if verify_csr(&request.to_der()).is_ok() {
            assert!(!matches!(key, Err(Error::Malformed { .. })), "verified, yet {key:?}");
        }
    }
    let _ = verify_csr(data);
    let _ = verify_signed_by(data, data);
}

/// RFC 4514 short names of every [`NameAttribute`].
const SHORT_NAMES: [&str; 11] =
    ["CN", "O", "OU", "C", "L", "ST", "STREET", "serialNumber", "DC", "UID", "emailAddress"];

/// Checks that a valid name prints to text that parses back to the same name and DER.
fn name_round_trip(name: &DistinguishedName) {
    let Ok(der) = name.to_der() else { return };
    let shown = name.to_string();
    let parsed = DistinguishedName::parse(&shown)
        .unwrap_or_else(|e| panic!("{shown:?} (from {name:?}) does not parse: {e}"));
    assert_eq!(&parsed, name, "print/parse round trip of {shown:?}");
    assert_eq!(parsed.to_der().ok(), Some(der), "DER after the round trip");
    assert_eq!(parsed.to_string(), shown, "printing is stable");
}

/// Distinguished names (`DistinguishedName`). Byte 0 picks the mode:
///
/// * even: the rest is an RFC 4514 string; what parses prints and re-parses to the same
///   name and DER;
/// * odd: the rest, split at NUL bytes, gives attributes (first byte the type, the rest
///   the value); a name that encodes prints and re-parses to itself.
pub fn x509_name(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let Ok(name) = DistinguishedName::parse(&text(rest)) else { return };
        assert!(name.to_der().is_ok(), "a parsed name encodes");
        name_round_trip(&name);
        return;
    }
    let mut name = DistinguishedName::new();
    for field in rest.split(|&b| b == 0) {
        let Some((&kind, value)) = field.split_first() else { continue };
        let short = SHORT_NAMES[usize::from(kind) % SHORT_NAMES.len()];
        let attribute = NameAttribute::from_short_name(short).expect("a known short name");
        name.push(attribute, &text(value));
    }
    name_round_trip(&name);
}

/// A fixed "now" inside the software card's certificates' validity (2025-10-09).
const NOW: i64 = 1_760_000_000;

/// YubiKey PIV attestation chains (`verify_piv_attestation_at`).
///
/// Input layout: byte 0 holds flags (bits 0–1 the number of intermediates, bits 2–3 the
/// number of roots, bit 4 adds Yubico's roots, bit 7: the next 8 bytes are "now",
/// big-endian seconds, else a fixed date); then the certificates, each a 2-byte
/// big-endian length and that many bytes: the attestation, the device (`F9`) certificate,
/// the intermediates, the roots.
///
/// A chain that verifies must be what it claims: the attestation is signed by the
/// device certificate, both are valid at "now", the key is the attestation's, the slot is
/// the one its subject names, the root is one of those given; and without roots nothing
/// verifies.
pub fn x509_attestation(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let mut now = NOW;
    if flags & 0x80 != 0 {
        let Some((time, after)) = rest.split_first_chunk::<8>() else { return };
        now = i64::from_be_bytes(*time);
        rest = after;
    }
    let mut take = || -> Vec<u8> {
        let Some(([high, low], after)) = rest.split_first_chunk::<2>() else { return Vec::new() };
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(after.len());
        let (der, after) = after.split_at(length);
        rest = after;
        der.to_vec()
    };
    let attestation = take();
    let device = take();
    let intermediates: Vec<Vec<u8>> = (0..flags & 3).map(|_| take()).collect();
    let mut roots: Vec<Vec<u8>> = (0..(flags >> 2) & 3).map(|_| take()).collect();
    if flags & 0x10 != 0 {
        roots.extend(yubico_roots());
    }

    let result = verify_piv_attestation_at(&attestation, &device, &intermediates, &roots, now);
    // Error messages (with their dates) must format.
    let _ = result.as_ref().map_err(ToString::to_string);
    let Ok(verified) = result else { return };
    assert_eq!(verified.attestation.der(), attestation, "the attestation given");
    assert_eq!(verified.device.der(), device, "the device certificate given");
    assert!(roots.iter().any(|r| r[..] == *verified.root.der()), "the root is one given");
    assert!(verify_signed_by(&attestation, &device).is_ok(), "attestation ← device");
    assert!(verified.attestation.is_valid_at(now) && verified.device.is_valid_at(now));
    let key = verified.attestation.public_key().expect("the attested key was read");
    assert_eq!(key, verified.public_key, "the attested key");
    let cn = verified.attestation.subject_common_name().unwrap_or_default();
    let slot = format!("YubiKey PIV Attestation {:02x}", verified.slot.key_reference());
    assert!(cn.eq_ignore_ascii_case(&slot), "slot {:?} from {cn:?}", verified.slot);
    let _ = (verified.pin_policy(), verified.touch_policy(), verified.firmware);
    assert!(
        verify_piv_attestation_at(&attestation, &device, &intermediates, &[], now).is_err(),
        "verified without any root"
    );
}
