//! Parsers of card data against byte fixtures, and their totality on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::OpenPgpKeySlot;
use keystation_core::{SecretBytes, SecretKey};
use keystation_openpgp::{
    AlgorithmInformation, ApplicationRelatedData, CardholderData, HistoricalBytes, KeyAttributes,
    KeyStatus, PwStatus, Uif, UifDo, ecdsa_signature_to_der, encode_cardholder_name,
    import_template, parse_public_key_template,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Application related data laid out as a YubiKey 5 (firmware 5.4) sends it, with an
/// Ed25519 signature key, an X25519 decryption key, RSA-2048 authentication, one
/// fingerprint, one generation time, and touch on for the signature key.
fn yubikey_6e() -> Vec<u8> {
    yubikey_6e_with(true)
}

fn yubikey_6e_with(pw_status: bool) -> Vec<u8> {
    let mut fps = vec![0xAB; 20];
    fps.extend_from_slice(&[0; 40]);
    let body = [
        hex("4F 10 D2760001240103040006123456780000"),
        hex("5F52 08 00730000E0059000"),
        hex("7F66 08 02020BFE 02020BFE"),
        hex("7F74 03 810120"),
        {
            let mut d = Vec::new();
            d.extend(hex("C0 0A 7D000BFE080000FF0000"));
            d.extend(hex("C1 0A 16 2B06010401DA470F01"));
            d.extend(hex("C2 0B 12 2B060104019755010501"));
            d.extend(hex("C3 06 010800001100"));
            if pw_status {
                d.extend(hex("C4 07 017F7F7F030003"));
            }
            d.extend(hex("C5 3C"));
            d.extend(&fps);
            d.extend(hex("C6 3C"));
            d.extend(&[0u8; 60]);
            d.extend(hex("CD 0C 5F5E1000 00000000 00000000"));
            d.extend(hex("DE 06 010102020300"));
            d.extend(hex("D6 02 0120 D7 02 0020 D8 02 0020 D9 02 0020"));
            let mut wrapped = vec![0x73, 0x81, d.len() as u8];
            wrapped.extend(d);
            wrapped
        },
    ]
    .concat();
    let mut out = vec![0x6E, 0x82];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend(body);
    out
}

#[test]
fn application_related_data_fixture() {
    let ard = ApplicationRelatedData::parse(&yubikey_6e()).unwrap();
    assert_eq!(ard.aid.version(), (3, 4));
    assert_eq!(ard.aid.manufacturer(), 0x0006);
    assert_eq!(ard.aid.manufacturer_name(), Some("Yubico"));
    assert_eq!(ard.aid.serial_string(), "12345678");
    let caps = ard.card_capabilities().unwrap();
    assert!(caps.command_chaining && caps.extended_length);
    let ext = ard.extended_length.unwrap();
    assert_eq!((ext.max_command, ext.max_response), (0x0BFE, 0x0BFE));
    assert_eq!(ard.general_feature_management, Some(0x20));
    let c0 = &ard.extended_capabilities;
    assert!(c0.key_import() && c0.algorithm_attributes_changeable() && c0.get_challenge());
    assert!(!c0.secure_messaging() && !c0.aes());
    assert_eq!(c0.max_special_do(), Some(0xFF));
    assert_eq!(ard.key_attributes[0].key_algorithm(), Some(KeyAlgorithm::Ed25519));
    assert_eq!(ard.key_attributes[1].key_algorithm(), Some(KeyAlgorithm::X25519));
    assert_eq!(ard.key_attributes[2].key_algorithm(), Some(KeyAlgorithm::Rsa(RsaBits::Rsa2048)));
    assert_eq!(ard.pw_status.pw1_retries, 3);
    assert_eq!(ard.pw_status.rc_retries, 0);
    assert!(ard.pw_status.pw1_valid_for_several_signatures);
    assert_eq!(ard.fingerprints, [Some([0xAB; 20]), None, None]);
    assert_eq!(ard.ca_fingerprints, [None, None, None]);
    assert_eq!(ard.generation_times, [Some(0x5F5E_1000), None, None]);
    assert_eq!(
        ard.key_status,
        [Some(KeyStatus::Generated), Some(KeyStatus::Imported), Some(KeyStatus::None)]
    );
    assert_eq!(ard.uif[0], Some(UifDo { flag: Uif::On, feature: Some(0x20) }));
    assert_eq!(ard.uif[1].map(|u| u.flag), Some(Uif::Off));

    // The contents without the 6E wrapper parse the same.
    let whole = yubikey_6e();
    let inner = &whole[4..];
    assert_eq!(ApplicationRelatedData::parse(inner).unwrap(), ard);
    // Without C4 it is refused, precisely.
    let without_c4 = yubikey_6e_with(false);
    let err = ApplicationRelatedData::parse(&without_c4).unwrap_err();
    assert!(err.to_string().contains("C4"), "{err}");
}

#[test]
fn pw_status_fixture() {
    let s = PwStatus::parse(&hex("00 20 7F 28 02 01 00")).unwrap();
    assert!(!s.pw1_valid_for_several_signatures);
    assert_eq!((s.pw1_max_len, s.rc_max_len, s.pw3_max_len), (0x20, 0x7F, 0x28));
    assert_eq!((s.pw1_retries, s.rc_retries, s.pw3_retries), (2, 1, 0));
    assert!(!s.pin_block_2_format);
    assert!(PwStatus::parse(&hex("81 FF 7F 7F 03 03 03")).unwrap().pin_block_2_format);
    assert!(PwStatus::parse(&hex("01 7F 7F 7F 03 00")).is_err());
}

#[test]
fn key_attributes_fixtures() {
    let rsa = KeyAttributes::parse(&hex("01 1000 0020 03")).unwrap();
    assert_eq!(rsa, KeyAttributes::Rsa { modulus_bits: 4096, exponent_bits: 32, import_format: 3 });
    assert_eq!(rsa.key_algorithm(), Some(KeyAlgorithm::Rsa(RsaBits::Rsa4096)));
    // Version 2 cards send five bytes (no import format).
    let short = KeyAttributes::parse(&hex("01 0800 0020")).unwrap();
    assert_eq!(
        short,
        KeyAttributes::Rsa { modulus_bits: 2048, exponent_bits: 32, import_format: 0 }
    );
    assert!(KeyAttributes::parse(&hex("01 0800")).is_err());
    assert!(KeyAttributes::parse(&[]).is_err());

    let with_pub = KeyAttributes::parse(&hex("13 2A8648CE3D030107 FF")).unwrap();
    assert_eq!(
        with_pub,
        KeyAttributes::Ecc {
            algorithm_id: 0x13,
            oid: hex("2A8648CE3D030107"),
            with_public_key: true
        }
    );
    assert_eq!(with_pub.key_algorithm(), Some(KeyAlgorithm::NistP256));
    assert_eq!(with_pub.to_bytes(), hex("13 2A8648CE3D030107 FF"));
    // brainpoolP256r1: kept, but not a keystation algorithm.
    let brainpool = KeyAttributes::parse(&hex("13 2B2403030208010107")).unwrap();
    assert_eq!(brainpool.key_algorithm(), None);
    let other = KeyAttributes::parse(&hex("42 0102")).unwrap();
    assert_eq!(other, KeyAttributes::Other(hex("42 0102")));
    assert_eq!(other.to_bytes(), hex("42 0102"));

    // What keystation writes for each slot and algorithm.
    let sig = OpenPgpKeySlot::Signature;
    let dec = OpenPgpKeySlot::Decryption;
    let enc = |slot, alg| KeyAttributes::for_algorithm(slot, alg).map(|a| a.to_bytes());
    assert_eq!(enc(sig, KeyAlgorithm::Ed25519), Some(hex("16 2B06010401DA470F01")));
    assert_eq!(enc(dec, KeyAlgorithm::X25519), Some(hex("12 2B060104019755010501")));
    assert_eq!(enc(sig, KeyAlgorithm::NistP256), Some(hex("13 2A8648CE3D030107")));
    assert_eq!(enc(dec, KeyAlgorithm::NistP384), Some(hex("12 2B81040022")));
    assert_eq!(enc(dec, KeyAlgorithm::Rsa(RsaBits::Rsa3072)), Some(hex("01 0C00 0011 00")));
    assert_eq!(enc(sig, KeyAlgorithm::X25519), None);
    assert_eq!(enc(dec, KeyAlgorithm::Ed25519), None);
}

#[test]
fn algorithm_information_fixture() {
    let fa = hex("FA 24 C1 06 010800001100 C1 0A 16 2B06010401DA470F01 C2 06 010800001100 \
         C3 06 010800001100");
    let info = AlgorithmInformation::parse(&fa).unwrap();
    assert_eq!(info.entries.len(), 4);
    assert_eq!(
        info.algorithms(OpenPgpKeySlot::Signature),
        [KeyAlgorithm::Rsa(RsaBits::Rsa2048), KeyAlgorithm::Ed25519]
    );
    assert_eq!(info.algorithms(OpenPgpKeySlot::Decryption), [KeyAlgorithm::Rsa(RsaBits::Rsa2048)]);
    let p256 =
        KeyAttributes::for_algorithm(OpenPgpKeySlot::Signature, KeyAlgorithm::NistP256).unwrap();
    assert!(!info.supports(OpenPgpKeySlot::Signature, &p256));
    assert!(AlgorithmInformation::parse(&hex("FA 05 C1 06 01")).is_err());
}

#[test]
fn public_key_template_fixtures() {
    // RSA-2048: 81 with a 256-byte modulus, 82 with 65537.
    let mut n = vec![0xC5; 256];
    n[255] = 0x01;
    let mut body = vec![0x81, 0x82, 0x01, 0x00];
    body.extend_from_slice(&n);
    body.extend(hex("82 03 010001"));
    let mut template = vec![0x7F, 0x49, 0x82];
    template.extend_from_slice(&(body.len() as u16).to_be_bytes());
    template.extend(&body);
    let key = parse_public_key_template(&template, KeyAlgorithm::Rsa(RsaBits::Rsa2048)).unwrap();
    assert_eq!(
        key.rsa_components().map(|(n, e)| (n.len(), e.to_vec())),
        Some((256, vec![1, 0, 1]))
    );
    // The same modulus read as RSA-3072 is refused.
    assert!(parse_public_key_template(&template, KeyAlgorithm::Rsa(RsaBits::Rsa3072)).is_err());

    // Ed25519 with gpg's 40 prefix, and without the 7F49 wrapper.
    let mut point = vec![0x86, 33, 0x40];
    point.extend_from_slice(&[7; 32]);
    let key = parse_public_key_template(&point, KeyAlgorithm::Ed25519).unwrap();
    assert_eq!(key.point(), Some(&[7u8; 32][..]));

    let mut p256 = hex("7F49 43 86 41 04");
    p256.extend_from_slice(&[9; 64]);
    let key = parse_public_key_template(&p256, KeyAlgorithm::NistP256).unwrap();
    assert_eq!(key.point().map(<[u8]>::len), Some(65));
    assert!(parse_public_key_template(&p256, KeyAlgorithm::NistP384).is_err());
    assert!(parse_public_key_template(&hex("7F49 03 81 01 00"), KeyAlgorithm::Ed25519).is_err());
}

#[test]
fn historical_bytes_from_atr_and_data_object() {
    let atr = hex("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40");
    let h = HistoricalBytes::from_atr(&atr).unwrap();
    assert_eq!(h.raw.len(), 13);
    let caps = h.capabilities.unwrap();
    assert!(caps.extended_length && caps.command_chaining);
    // Gnuk-like: no extended length.
    let h = HistoricalBytes::parse(&hex("00 31 84 73 80 01 80 05 90 00"));
    let caps = h.capabilities.unwrap();
    assert!(caps.command_chaining && !caps.extended_length);
    assert!(HistoricalBytes::from_atr(&hex("3B FD 13")).is_none());
}

#[test]
fn cardholder_data_and_name_encoding() {
    let c = CardholderData::parse(&hex("65 14 5B 09 446F653C3C4A6F686E 5F2D 02 656E 5F35 01 39"))
        .unwrap();
    assert_eq!(c.name, b"Doe<<John");
    assert_eq!(c.name_parts(), ("Doe".to_owned(), "John".to_owned()));
    assert_eq!(c.language, b"en");
    assert_eq!(c.sex, Some(0x39));
    assert_eq!(encode_cardholder_name("van Dyke", "Mary Ann").unwrap(), b"van<Dyke<<Mary<Ann");
    assert_eq!(encode_cardholder_name("Müller", "").unwrap(), b"M\xFCller");
    assert!(encode_cardholder_name("Łukasz", "A").is_err());
    assert!(encode_cardholder_name(&"x".repeat(40), "").is_err());
}

#[test]
fn ecdsa_der_conversion() {
    let mut raw = vec![0u8; 64];
    raw[0] = 0x80; // r has its top bit set: a zero byte goes in front
    raw[31] = 1;
    raw[32..].copy_from_slice(&[0; 32]);
    raw[60] = 0x7F; // s has leading zeros: they go
    let der = ecdsa_signature_to_der(&raw).unwrap();
    assert_eq!(&der[..5], &[0x30, 0x29, 0x02, 0x21, 0x00]);
    assert_eq!(&der[der.len() - 6..], &[0x02, 0x04, 0x7F, 0, 0, 0]);
    assert!(ecdsa_signature_to_der(&[1, 2, 3]).is_none());
    let zero = ecdsa_signature_to_der(&[0, 0]).unwrap();
    assert_eq!(zero, [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
}

#[test]
fn import_template_layout() {
    let key = SecretKey::NistP256(SecretBytes::copy_from(&[0x11; 31]));
    let attributes =
        KeyAttributes::for_algorithm(OpenPgpKeySlot::Authentication, KeyAlgorithm::NistP256)
            .unwrap();
    let t = import_template(OpenPgpKeySlot::Authentication, &key, &attributes).unwrap();
    let mut expected = hex("4D 2A A4 00 7F48 02 92 20 5F48 20 00");
    expected.extend_from_slice(&[0x11; 31]);
    assert_eq!(&t[..], &expected[..]);

    // X25519 goes big-endian.
    let mut scalar = [0u8; 32];
    scalar[0] = 0x01;
    let key = SecretKey::X25519(SecretBytes::copy_from(&scalar));
    let attributes =
        KeyAttributes::for_algorithm(OpenPgpKeySlot::Decryption, KeyAlgorithm::X25519).unwrap();
    let t = import_template(OpenPgpKeySlot::Decryption, &key, &attributes).unwrap();
    assert_eq!(t[2..4], [0xB8, 0x00]);
    assert_eq!(*t.last().unwrap(), 0x01);
    // A key that does not match the attributes is refused.
    assert!(
        import_template(OpenPgpKeySlot::Decryption, &key, &KeyAttributes::Other(vec![1])).is_err()
    );
}

/// A small deterministic generator for the totality test.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn run_all_parsers(input: &[u8]) {
    let _ = ApplicationRelatedData::parse(input);
    let _ = KeyAttributes::parse(input);
    let _ = PwStatus::parse(input);
    let _ = AlgorithmInformation::parse(input);
    let _ = CardholderData::parse(input);
    let _ = HistoricalBytes::parse(input);
    let _ = HistoricalBytes::from_atr(input);
    let _ = UifDo::parse(input);
    let _ = ecdsa_signature_to_der(input);
    for alg in KeyAlgorithm::ALL {
        let _ = parse_public_key_template(input, alg);
    }
}

#[test]
fn parsers_never_panic() {
    let fixture = yubikey_6e();
    // Every truncation and every single-byte corruption of the 6E fixture.
    for end in 0..=fixture.len() {
        run_all_parsers(&fixture[..end]);
    }
    for at in 0..fixture.len() {
        for value in [0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF] {
            let mut bad = fixture.clone();
            bad[at] = value;
            run_all_parsers(&bad);
        }
    }
    // Random inputs, biased towards the tags the parsers look for.
    let tags = [0x6E, 0x73, 0x4F, 0xC0, 0xC1, 0xC4, 0x7F, 0x49, 0x86, 0x81, 0x5F, 0xFA, 0x65];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = (rng.next() % 300) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next();
                if r.is_multiple_of(3) {
                    tags[(r >> 8) as usize % tags.len()]
                } else {
                    (r >> 16) as u8
                }
            })
            .collect();
        run_all_parsers(&input);
    }
}
