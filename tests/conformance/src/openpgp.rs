//! The OpenPGP card 3.4 part: what keystation-openpgp's [`OpenPgpCard`] client does with a
//! card, checked against the card's declared [`OpenPgpCapabilities`].

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, RsaBits};
use keystation_core::keygen::{
    GeneratedKey, KeyLocation, KeyPurpose, KeyRequest, OpenPgpKeySlot, SignInput, Signer as _,
    TouchPolicy,
};
use keystation_core::{Card, Channel, Command, KeyGen, Le, SecretKey, StatusWord, tlv};
use keystation_openpgp::{CardSigner, Error, KeyAttributes, KeyStatus, OpenPgpCard, PinRef, Uif};

use crate::host::{
    rsa_2048, rsa_public, rsa_secret, secret, sha256, sha384, verify_ed25519, verify_p256,
    verify_p384, verify_rsa_pkcs1,
};
use crate::{Outcome, ShortOnly};

const SIG: OpenPgpKeySlot = OpenPgpKeySlot::Signature;
const DEC: OpenPgpKeySlot = OpenPgpKeySlot::Decryption;
const AUT: OpenPgpKeySlot = OpenPgpKeySlot::Authentication;

/// The factory user PIN (PW1) and Admin PIN (PW3) of every OpenPGP card here.
pub const FACTORY_PW1: &str = "123456";
/// See [`FACTORY_PW1`].
pub const FACTORY_PW3: &str = "12345678";

/// The checks of this part, in the order [`openpgp_conformance!`](crate::openpgp_conformance)
/// generates their tests.
pub const CHECKS: &[&str] = &[
    "select_and_application_related_data",
    "pin_verify_change_and_retry_counters",
    "resetting_code_unblocks_pw1",
    "admin_pin_blocks",
    "factory_reset_restores_factory_pins",
    "terminated_application_can_be_activated",
    "ed25519_and_x25519_generated_sign_and_agree",
    "p256_sign_authenticate_and_ecdh",
    "p384_signature_key",
    "rsa2048_generate_sign_and_decipher",
    "import_host_keys",
    "short_apdus_chaining_and_get_response",
    "touch_policies",
    "single_signature_pw1",
];

/// What an OpenPGP card announces and does, as far as the checks depend on it.
#[derive(Debug, Clone)]
pub struct OpenPgpCapabilities {
    /// Checks declared not applicable to this card, each with the reason (a known defect
    /// of the card that the check would trip over); reported, never passed.
    pub not_applicable: Vec<(&'static str, &'static str)>,
    /// The card, for messages ("softcard in process", "opcard through pcscd").
    pub name: &'static str,
    /// The serial number in the AID, as eight hex digits.
    pub serial: String,
    /// The manufacturer ID in the AID.
    pub manufacturer: u16,
    /// The name keystation knows the manufacturer by.
    pub manufacturer_name: Option<&'static str>,
    /// The specification version in the AID.
    pub version: (u8, u8),
    /// Extended length announced (and therefore used) with the maximum command and
    /// response lengths (DO 7F66), or `None`.
    pub extended_length: Option<(u16, u16)>,
    /// The algorithms the card announces (algorithm information, DO FA), the set
    /// keystation offers for it.
    pub algorithms: Vec<KeyAlgorithm>,
    /// The factory key attributes of all three slots.
    pub default_algorithm: KeyAlgorithm,
    /// Maximum lengths of PW1, the resetting code and PW3 (PW status bytes).
    pub pin_max_len: (u8, u8, u8),
    /// The factory "PW1 valid for several PSO:CDS" flag.
    pub pw1_valid_for_several_signatures: bool,
    /// The factory sex in the cardholder related data (`0x30` ISO 5218 "not known", `0x39`
    /// "not applicable"), where the card has one.
    pub default_sex: Option<u8>,
    /// Whether the historical bytes in the application related data (DO 5F52) are those of
    /// the card's ATR (opcard's are; a YubiKey's ATR carries the reader's own).
    pub historical_bytes_in_atr: bool,
    /// Key information (DO DE) in the application related data.
    pub key_information: bool,
    /// KDF-DO announced in the extended capabilities.
    pub kdf: bool,
    /// User interaction flags (Yubico's touch policies, DOs D6–D8).
    pub touch: bool,
    /// Yubico's "cached" UIF value (`02`); opcard has only off, on and fixed.
    pub touch_cached: bool,
    /// Whether CHANGE REFERENCE DATA with a wrong old PIN answers `63Cx` (tries left);
    /// opcard answers `6300`.
    pub change_pin_reports_retries: bool,
    /// Whether the card imports the host keys as keystation sends them (opcard refuses
    /// them with `6A80`, found by this suite).
    pub import: bool,
    /// Whether the factory RSA-2048 key attributes are the ones keystation writes, so that
    /// setting RSA-2048 again sends nothing. (This suite found opcard refusing keystation's
    /// 17-bit exponent length with `6A80`; keystation now writes the length the card
    /// announces, 32 bits on opcard.)
    pub rsa_attributes_as_written: bool,
    /// Whether a UIF set to "fixed" can be changed back only by a reset (else the card
    /// accepts any change while PW3 is verified).
    pub touch_fixed: bool,
}

impl OpenPgpCapabilities {
    /// keystation's software YubiKey 5 (firmware 5.4.3): everything the suite checks,
    /// `name` for messages and `serial` (the decimal serial, as the AID carries it in BCD).
    pub fn software_yubikey5(name: &'static str, serial: u32) -> Self {
        Self {
            not_applicable: Vec::new(),
            name,
            serial: format!("{serial:08}"),
            manufacturer: 0x0006,
            manufacturer_name: Some("Yubico"),
            version: (3, 4),
            extended_length: Some((0x0BFE, 0x0BFE)),
            algorithms: KeyAlgorithm::ALL.to_vec(),
            default_algorithm: KeyAlgorithm::Rsa(RsaBits::Rsa2048),
            pin_max_len: (127, 127, 127),
            pw1_valid_for_several_signatures: true,
            default_sex: Some(0x30),
            historical_bytes_in_atr: false,
            key_information: true,
            kdf: true,
            touch: true,
            touch_fixed: true,
            touch_cached: true,
            change_pin_reports_retries: true,
            import: true,
            rsa_attributes_as_written: true,
        }
    }
}

impl OpenPgpCapabilities {
    fn has(&self, algorithm: KeyAlgorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }
}

fn select<'c>(card: &'c mut dyn Card) -> OpenPgpCard<'c> {
    OpenPgpCard::select(card).expect("SELECT OpenPGP and read its application data")
}

fn admin(pgp: &mut OpenPgpCard<'_>) {
    pgp.verify(PinRef::Pw3, &secret(FACTORY_PW3.as_bytes())).expect("VERIFY factory PW3");
}

fn get_data(tag: u16) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    Command::new(0x00, 0xCA, p1, p2).with_le(Le::Max)
}

/// SELECT, application related data (DO 6E) through the raw channel and through the
/// client: AID with version, manufacturer and serial, historical bytes agreeing with the
/// ATR, extended length, capabilities, factory key attributes, UIF, PW status, empty
/// fingerprints, times and key status, the announced algorithms, empty cardholder data,
/// URL and login data; the client's caches agree with fresh reads.
pub fn select_and_application_related_data(
    card: &mut dyn Card,
    caps: &OpenPgpCapabilities,
) -> Outcome {
    let atr = card.atr().map(<[u8]>::to_vec);
    {
        let mut channel = Channel::new(&mut *card);
        let select = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(&OPENPGP_AID);
        let selected = channel.transmit(&select).expect("SELECT OpenPGP");
        assert_eq!(selected.status(), StatusWord::SUCCESS);
        // Some cards answer the DO's contents without the 6E wrapper; accept both forms.
        let related = channel.transmit_ok(&get_data(0x6E)).expect("GET DATA 6E");
        let related: &[u8] = match tlv::find(&related, 0x6E_u32).expect("parsing 6E") {
            Some(inner) => inner,
            None => &related,
        };
        let aid = tlv::require(related, 0x4F_u32).expect("DO 4F in 6E");
        assert_eq!(aid.len(), 16, "full AID: {aid:02X?}");
        assert_eq!(aid[..6], OPENPGP_AID, "RID and application: {aid:02X?}");
        assert_eq!(aid[6..8], [caps.version.0, caps.version.1], "version: {aid:02X?}");
        assert_eq!(aid[8..10], caps.manufacturer.to_be_bytes(), "manufacturer: {aid:02X?}");
        // The historical bytes (DO 5F52) are those in the ATR (T0's low nibble counts
        // them; they end before TCK), where the card has them there.
        if let (true, Some(atr)) = (caps.historical_bytes_in_atr, &atr) {
            let historical = tlv::require(related, 0x5F52_u32).expect("DO 5F52 in 6E");
            let count = usize::from(atr[1] & 0x0F);
            assert_eq!(atr[atr.len() - 1 - count..atr.len() - 1], *historical, "ATR {atr:02X?}");
        }
        // The same AID through GET DATA 4F directly.
        let direct = channel.transmit_ok(&get_data(0x4F)).expect("GET DATA 4F");
        assert_eq!(*direct, *aid);
    }

    let mut pgp = select(card);
    assert_eq!(pgp.serial(), caps.serial);
    assert_eq!(pgp.manufacturer_name(), caps.manufacturer_name);
    assert_eq!(pgp.uses_extended_length(), caps.extended_length.is_some());
    let ard = pgp.application_related_data().clone();
    assert_eq!(ard.aid.version(), caps.version);
    assert_eq!(ard.aid.manufacturer(), caps.manufacturer);
    assert_eq!(ard.extended_length.map(|e| (e.max_command, e.max_response)), caps.extended_length);
    assert!(ard.extended_capabilities.key_import());
    assert!(ard.extended_capabilities.algorithm_attributes_changeable());
    assert_eq!(ard.extended_capabilities.kdf(), caps.kdf);
    for slot in [SIG, DEC, AUT] {
        assert_eq!(pgp.slot_algorithm(slot).expect("known attributes"), caps.default_algorithm);
        assert_eq!(pgp.uif(slot), caps.touch.then_some(Uif::Off), "UIF of {slot:?}");
    }
    let pw = pgp.pw_status();
    assert_eq!((pw.pw1_retries, pw.rc_retries, pw.pw3_retries), (3, 0, 3));
    assert_eq!((pw.pw1_max_len, pw.rc_max_len, pw.pw3_max_len), caps.pin_max_len);
    assert_eq!(pw.pw1_valid_for_several_signatures, caps.pw1_valid_for_several_signatures);
    assert_eq!(ard.fingerprints, [None, None, None]);
    assert_eq!(ard.generation_times, [None, None, None]);
    let status = caps.key_information.then_some(KeyStatus::None);
    assert_eq!(ard.key_status, [status; 3]);

    let info = pgp.algorithm_information().expect("algorithm information (DO FA)").clone();
    assert_eq!(
        info.algorithms(SIG).contains(&KeyAlgorithm::Ed25519),
        caps.has(KeyAlgorithm::Ed25519)
    );
    assert_eq!(
        info.algorithms(DEC).contains(&KeyAlgorithm::X25519),
        caps.has(KeyAlgorithm::X25519)
    );
    assert!(!info.algorithms(SIG).contains(&KeyAlgorithm::X25519));
    let mut announced = pgp.algorithms().to_vec();
    let mut declared = caps.algorithms.clone();
    announced.sort_by_key(|a| a.to_string());
    declared.sort_by_key(|a| a.to_string());
    assert_eq!(announced, declared, "the algorithms the card announces");

    let holder = pgp.cardholder_data().expect("cardholder data (DO 65)").clone();
    assert!(holder.name.is_empty());
    assert_eq!(holder.sex, caps.default_sex);
    assert!(pgp.url().expect("URL (DO 5F50)").is_empty());
    assert!(pgp.login_data().expect("login data (DO 5E)").is_empty());
    // Cardholder data is cached: reading it again sends nothing.
    let before = pgp.apdus_sent();
    pgp.cardholder_data().expect("cached cardholder data");
    assert_eq!(pgp.apdus_sent(), before);
    // The cached 6E matches a fresh read.
    pgp.refresh().expect("re-reading 6E");
    assert_eq!(pgp.application_related_data(), &ard);
    Outcome::Passed
}

/// OpenPGP card application: RID `D2 76 00 01 24`, application `01`.
const OPENPGP_AID: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

/// PIN length checks before anything is sent; a wrong PW1 counts down and a right one
/// restores the counter (in the client's view and the card's); CHANGE REFERENCE DATA with
/// a wrong old PIN costs a try, with the right one changes PW1.
pub fn pin_verify_change_and_retry_counters(
    card: &mut dyn Card,
    caps: &OpenPgpCapabilities,
) -> Outcome {
    let mut pgp = select(card);
    let before = pgp.apdus_sent();
    let max = caps.pin_max_len.0;
    let short = pgp.verify(PinRef::Pw1, &secret(b"123"));
    assert!(
        matches!(short, Err(Error::PinLength { pin: PinRef::Pw1, min: 6, max: m }) if m == usize::from(max)),
        "{short:?}"
    );
    assert!(matches!(pgp.verify(PinRef::Pw3, &secret(b"1234567")), Err(Error::PinLength { .. })));
    assert_eq!(pgp.apdus_sent(), before);

    assert!(matches!(
        pgp.verify(PinRef::Pw1, &secret(b"000000")),
        Err(Error::WrongPin { pin: PinRef::Pw1, retries: 2 })
    ));
    assert_eq!(pgp.read_pw_status().expect("PW status").pw1_retries, 2);
    pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1");
    assert_eq!(pgp.pw_status().pw1_retries, 3);
    assert_eq!(pgp.read_pw_status().expect("PW status").pw1_retries, 3);

    let wrong_old = pgp.change_pin(PinRef::Pw1, &secret(b"111111"), &secret(b"24680246"));
    if caps.change_pin_reports_retries {
        assert!(matches!(wrong_old, Err(Error::WrongPin { retries: 2, .. })), "{wrong_old:?}");
    } else {
        let refused = matches!(wrong_old, Err(Error::Card { status: StatusWord(0x6300), .. }));
        assert!(refused, "{wrong_old:?}");
    }
    pgp.change_pin(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes()), &secret(b"24680246"))
        .expect("CHANGE REFERENCE DATA PW1");
    pgp.verify(PinRef::Pw1, &secret(b"24680246")).expect("VERIFY the new PW1");
    let old = pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes()));
    assert!(matches!(old, Err(Error::WrongPin { .. })), "{old:?}");
    Outcome::Passed
}

/// The resetting code: set with PW3, PW1 blocked by wrong tries (and refused even when
/// right), a wrong code counts down, the right one sets a new PW1; with PW3 the counter is
/// reset to another new PW1.
pub fn resetting_code_unblocks_pw1(card: &mut dyn Card, _caps: &OpenPgpCapabilities) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    pgp.set_resetting_code(Some(&secret(b"reset-code"))).expect("PUT DATA D3");
    assert_eq!(pgp.read_pw_status().expect("PW status").rc_retries, 3);
    pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1");
    for retries in [2, 1] {
        assert!(matches!(
            pgp.verify(PinRef::Pw1, &secret(b"000000")),
            Err(Error::WrongPin { retries: r, .. }) if r == retries
        ));
    }
    let blocked = pgp.verify(PinRef::Pw1, &secret(b"000000"));
    assert!(matches!(blocked, Err(Error::PinBlocked(PinRef::Pw1))), "{blocked:?}");
    let right = pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes()));
    assert!(matches!(right, Err(Error::PinBlocked(PinRef::Pw1))), "{right:?}");
    let wrong = pgp.reset_retry_counter_with_code(&secret(b"wrong-code"), &secret(b"13579135"));
    assert!(
        matches!(wrong, Err(Error::WrongPin { pin: PinRef::ResettingCode, retries: 2 })),
        "{wrong:?}"
    );
    pgp.reset_retry_counter_with_code(&secret(b"reset-code"), &secret(b"13579135"))
        .expect("RESET RETRY COUNTER with the resetting code");
    pgp.verify(PinRef::Pw1, &secret(b"13579135")).expect("VERIFY the new PW1");

    admin(&mut pgp);
    pgp.reset_retry_counter(&secret(b"97531975")).expect("RESET RETRY COUNTER with PW3");
    pgp.verify(PinRef::Pw1Signing, &secret(b"97531975")).expect("VERIFY PW1 for signing");
    Outcome::Passed
}

/// PW3 changed, then blocked by wrong tries: the error says so, the counter is 0 and
/// admin commands are refused as unauthorized.
pub fn admin_pin_blocks(card: &mut dyn Card, _caps: &OpenPgpCapabilities) -> Outcome {
    let mut pgp = select(card);
    pgp.change_pin(PinRef::Pw3, &secret(FACTORY_PW3.as_bytes()), &secret(b"new-admin"))
        .expect("CHANGE REFERENCE DATA PW3");
    for retries in [2, 1] {
        assert!(matches!(
            pgp.verify(PinRef::Pw3, &secret(b"bad-admin")),
            Err(Error::WrongPin { pin: PinRef::Pw3, retries: r }) if r == retries
        ));
    }
    let blocked = pgp.verify(PinRef::Pw3, &secret(b"bad-admin"));
    assert!(matches!(blocked, Err(Error::PinBlocked(PinRef::Pw3))), "{blocked:?}");
    let refused = pgp.set_url(b"https://example.invalid/key.asc");
    assert!(matches!(refused, Err(Error::SecurityStatusNotSatisfied { .. })), "{refused:?}");
    assert_eq!(pgp.read_pw_status().expect("PW status").pw3_retries, 0);
    Outcome::Passed
}

/// The first algorithm of `preferred` that the card announces.
fn first_of(caps: &OpenPgpCapabilities, preferred: &[KeyAlgorithm]) -> KeyAlgorithm {
    preferred.iter().copied().find(|a| caps.has(*a)).expect("the card announces an algorithm")
}

/// Factory reset (TERMINATE DF + ACTIVATE FILE, blocking PW3 first) after changing both
/// PINs, the cardholder name and a key: factory PINs, counters, attributes, key status
/// and empty cardholder data are back.
pub fn factory_reset_restores_factory_pins(
    card: &mut dyn Card,
    caps: &OpenPgpCapabilities,
) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    pgp.set_cardholder_name("Doe", "Jane").expect("PUT DATA 5B");
    let algorithm = first_of(caps, &[KeyAlgorithm::Ed25519, KeyAlgorithm::NistP256]);
    pgp.set_algorithm(SIG, algorithm).expect("PUT DATA C1");
    pgp.generate_key_pair(SIG).expect("GENERATE in the signature slot");
    pgp.change_pin(PinRef::Pw3, &secret(FACTORY_PW3.as_bytes()), &secret(b"admin-pin-2"))
        .expect("change PW3");
    pgp.change_pin(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes()), &secret(b"user-pin-2"))
        .expect("change PW1");
    // A wrong try, so that the reset must count from the card's counters.
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &secret(b"999999")),
        Err(Error::WrongPin { pin: PinRef::Pw1, retries: 2 })
    ));

    pgp.factory_reset().expect("factory reset");
    let pw = pgp.pw_status();
    assert_eq!((pw.pw1_retries, pw.rc_retries, pw.pw3_retries), (3, 0, 3));
    assert_eq!(pgp.slot_algorithm(SIG).expect("attributes"), caps.default_algorithm);
    let status = caps.key_information.then_some(KeyStatus::None);
    assert_eq!(pgp.application_related_data().key_status[0], status);
    assert_eq!(pgp.application_related_data().fingerprints[0], None);
    assert!(pgp.cardholder_data().expect("cardholder data").name.is_empty());
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &secret(b"user-pin-2")),
        Err(Error::WrongPin { retries: 2, .. })
    ));
    pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("factory PW1");
    pgp.verify(PinRef::Pw1Signing, &secret(FACTORY_PW1.as_bytes())).expect("factory PW1 (81)");
    pgp.verify(PinRef::Pw3, &secret(FACTORY_PW3.as_bytes())).expect("factory PW3");
    assert_eq!(pgp.read_pw_status().expect("PW status").pw1_retries, 3);
    Outcome::Passed
}

/// An application left terminated (VERIFY PW3 + TERMINATE DF through the raw channel, as
/// an interrupted reset leaves it) is reported as such by SELECT, and activated again.
pub fn terminated_application_can_be_activated(
    card: &mut dyn Card,
    _caps: &OpenPgpCapabilities,
) -> Outcome {
    {
        let mut pgp = select(card);
        admin(&mut pgp);
        pgp.set_url(b"https://example.invalid/k").expect("PUT DATA 5F50");
    }
    {
        let mut channel = Channel::new(&mut *card);
        let verify = Command::new(0x00, 0x20, 0x00, 0x83).with_data(FACTORY_PW3.as_bytes());
        channel.transmit_ok(&verify).expect("VERIFY PW3");
        channel.transmit_ok(&Command::new(0x00, 0xE6, 0x00, 0x00)).expect("TERMINATE DF");
    }
    assert!(matches!(OpenPgpCard::select(card), Err(Error::Terminated)));
    let mut pgp = OpenPgpCard::select_activating(card).expect("SELECT and ACTIVATE FILE");
    assert!(pgp.url().expect("URL").is_empty());
    admin(&mut pgp);
    Outcome::Passed
}

/// Ed25519 generated through core's KeyGen signs messages (and refuses digests), the
/// attributes are the EdDSA OID; an Ed25519 authentication key (INTERNAL AUTHENTICATE) is
/// an OpenSSH key; X25519 in the decryption slot agrees the host's shared secret; setting
/// unchanged attributes sends nothing; generated public keys are cached.
pub fn ed25519_and_x25519_generated_sign_and_agree(
    card: &mut dyn Card,
    caps: &OpenPgpCapabilities,
) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    if !caps.has(KeyAlgorithm::Ed25519) {
        let refused = pgp.set_algorithm(SIG, KeyAlgorithm::Ed25519);
        assert!(matches!(refused, Err(Error::UnsupportedAlgorithm { .. })), "{refused:?}");
        return Outcome::Refused("Ed25519");
    }
    pgp.remember_user_pin(secret(FACTORY_PW1.as_bytes())).expect("PW1 length");
    let GeneratedKey { public, location, mut signer } = KeyGen::generate(
        &mut pgp,
        &KeyRequest::new(KeyPurpose::OpenPgp(SIG), KeyAlgorithm::Ed25519),
    )
    .expect("generate Ed25519");
    assert!(matches!(location, KeyLocation::OnCard));
    let signature = signer.sign(SignInput::Message(b"hello card")).expect("PSO:CDS");
    assert_eq!(signature.len(), 64);
    verify_ed25519(&public, b"hello card", &signature);
    // A digest is not what EdDSA signs.
    let digest = sha256(b"x");
    assert!(matches!(
        signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }),
        Err(keystation_core::Error::InvalidSignInput(KeyAlgorithm::Ed25519))
    ));
    drop(signer);
    assert_eq!(
        pgp.key_attributes(SIG).to_bytes(),
        [0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01]
    );

    pgp.set_algorithm(AUT, KeyAlgorithm::Ed25519).expect("PUT DATA C3");
    let auth = pgp.generate_key_pair(AUT).expect("generate Ed25519 authentication key");
    pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1 (82)");
    let signature = pgp.authenticate(SignInput::Message(b"ssh challenge")).expect("INT AUTH");
    verify_ed25519(&auth, b"ssh challenge", &signature);
    assert_eq!(auth.to_openssh(None).map(|l| l.starts_with("ssh-ed25519 ")), Some(true));

    if !caps.has(KeyAlgorithm::X25519) {
        let refused = pgp.set_algorithm(DEC, KeyAlgorithm::X25519);
        assert!(matches!(refused, Err(Error::UnsupportedAlgorithm { .. })), "{refused:?}");
        return Outcome::Refused("X25519");
    }
    assert!(pgp.set_algorithm(DEC, KeyAlgorithm::X25519).expect("PUT DATA C2"));
    assert_eq!(
        pgp.key_attributes(DEC).to_bytes(),
        [0x12, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01]
    );
    // Same attributes again: nothing is sent.
    let before = pgp.apdus_sent();
    assert!(!pgp.set_algorithm(DEC, KeyAlgorithm::X25519).expect("unchanged attributes"));
    assert_eq!(pgp.apdus_sent(), before);
    let card_public = pgp.generate_key_pair(DEC).expect("generate X25519");
    let ephemeral = x25519_dalek::StaticSecret::from([0x5A; 32]);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral);
    let shared = pgp.decipher(ephemeral_public.as_bytes()).expect("PSO:DECIPHER (ECDH)");
    let point: [u8; 32] = card_public.point().expect("point").try_into().expect("32 bytes");
    let expected = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(point));
    assert_eq!(shared.expose(), expected.as_bytes());
    // The public key is cached after generation.
    let before = pgp.apdus_sent();
    assert_eq!(pgp.public_key(DEC).expect("cached public key"), card_public);
    assert_eq!(pgp.apdus_sent(), before);
    Outcome::Passed
}

/// P-256 in all three slots: attributes; PSO:CDS refused without PW1 (the error says so)
/// and verifiable with it; a message instead of a digest refused by the client; INTERNAL
/// AUTHENTICATE; ECDH in the decryption slot agrees with the host.
pub fn p256_sign_authenticate_and_ecdh(card: &mut dyn Card, caps: &OpenPgpCapabilities) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    if !caps.has(KeyAlgorithm::NistP256) {
        let refused = pgp.set_algorithm(SIG, KeyAlgorithm::NistP256);
        assert!(matches!(refused, Err(Error::UnsupportedAlgorithm { .. })), "{refused:?}");
        return Outcome::Refused("P-256");
    }
    for slot in [SIG, DEC, AUT] {
        pgp.set_algorithm(slot, KeyAlgorithm::NistP256).expect("P-256 attributes");
    }
    assert_eq!(
        pgp.key_attributes(SIG),
        &KeyAttributes::Ecc {
            algorithm_id: 0x13,
            oid: vec![0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
            with_public_key: false,
        }
    );
    assert_eq!(pgp.key_attributes(DEC).to_bytes()[0], 0x12);
    let sig_public = pgp.generate_key_pair(SIG).expect("generate P-256 (SIG)");
    let dec_public = pgp.generate_key_pair(DEC).expect("generate P-256 (DEC)");
    let aut_public = pgp.generate_key_pair(AUT).expect("generate P-256 (AUT)");

    let digest = sha256(b"certificate body");
    let input = SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest };
    let refused = pgp.sign(input);
    assert!(matches!(refused, Err(Error::SecurityStatusNotSatisfied { .. })), "{refused:?}");
    pgp.verify(PinRef::Pw1Signing, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1 (81)");
    let der = pgp.sign(input).expect("PSO:CDS");
    verify_p256(&sig_public, &digest, &der);
    assert!(matches!(
        pgp.sign(SignInput::Message(b"raw")),
        Err(Error::Core(keystation_core::Error::InvalidSignInput(KeyAlgorithm::NistP256)))
    ));

    pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1 (82)");
    let der = pgp.authenticate(input).expect("INTERNAL AUTHENTICATE");
    verify_p256(&aut_public, &digest, &der);

    let host = p256::SecretKey::from_slice(&[0x33; 32]).expect("host scalar");
    let host_point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&host.public_key(), false);
    let shared = pgp.decipher(host_point.as_bytes()).expect("PSO:DECIPHER (ECDH)");
    let card_key =
        p256::PublicKey::from_sec1_bytes(dec_public.point().expect("point")).expect("P-256 point");
    let expected = p256::ecdh::diffie_hellman(host.to_nonzero_scalar(), card_key.as_affine());
    assert_eq!(shared.expose(), &expected.raw_secret_bytes()[..]);
    Outcome::Passed
}

/// P-384 generated through KeyGen signs a SHA-384 digest verifiably; a digest of the
/// wrong length is refused.
pub fn p384_signature_key(card: &mut dyn Card, caps: &OpenPgpCapabilities) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    let request = KeyRequest::new(KeyPurpose::OpenPgp(SIG), KeyAlgorithm::NistP384);
    if !caps.has(KeyAlgorithm::NistP384) {
        let before = pgp.apdus_sent();
        let refused = KeyGen::generate(&mut pgp, &request).map(|_| ());
        assert!(
            matches!(refused, Err(keystation_core::Error::UnsupportedAlgorithm(_))),
            "{refused:?}"
        );
        assert_eq!(pgp.apdus_sent(), before);
        return Outcome::Refused("P-384");
    }
    pgp.remember_user_pin(secret(FACTORY_PW1.as_bytes())).expect("PW1 length");
    let generated = KeyGen::generate(&mut pgp, &request).expect("generate P-384");
    let public = generated.public.clone();
    assert_eq!(public.algorithm(), KeyAlgorithm::NistP384);
    let mut signer = generated.signer;
    let digest = sha384(b"p384 message");
    let der = signer
        .sign(SignInput::Digest { hash: HashAlgorithm::Sha384, digest: &digest })
        .expect("PSO:CDS");
    verify_p384(&public, &digest, &der);
    assert!(matches!(
        signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha384, digest: &digest[..32] }),
        Err(keystation_core::Error::InvalidSignInput(_))
    ));
    Outcome::Passed
}

/// RSA-2048: unchanged factory attributes are not rewritten; a generated signature key
/// signs (PKCS #1 v1.5) verifiably; a generated decryption key deciphers what the host
/// encrypted to it.
pub fn rsa2048_generate_sign_and_decipher(
    card: &mut dyn Card,
    caps: &OpenPgpCapabilities,
) -> Outcome {
    let rsa2048 = KeyAlgorithm::Rsa(RsaBits::Rsa2048);
    let mut pgp = select(card);
    admin(&mut pgp);
    if !caps.has(rsa2048) {
        let refused = pgp.set_algorithm(SIG, rsa2048);
        assert!(matches!(refused, Err(Error::UnsupportedAlgorithm { .. })), "{refused:?}");
        return Outcome::Refused("RSA-2048");
    }
    pgp.remember_user_pin(secret(FACTORY_PW1.as_bytes())).expect("PW1 length");
    if caps.default_algorithm != rsa2048 {
        assert!(pgp.set_algorithm(SIG, rsa2048).expect("RSA-2048 attributes"));
    }
    if caps.rsa_attributes_as_written {
        // The attributes are RSA-2048 already (the factory's, or just written): nothing
        // to write.
        let before = pgp.apdus_sent();
        assert!(!pgp.set_algorithm(SIG, rsa2048).expect("unchanged attributes"));
        assert_eq!(pgp.apdus_sent(), before);
    }

    let sig_public = pgp.generate_key_pair(SIG).expect("generate RSA-2048 (SIG)");
    assert_eq!(sig_public.algorithm(), rsa2048);
    let digest = sha256(b"rsa message");
    let signature = pgp
        .sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
        .expect("PSO:CDS");
    assert_eq!(signature.len(), 256);
    verify_rsa_pkcs1(&rsa_public(&sig_public), &digest, &signature);

    if caps.rsa_attributes_as_written || caps.default_algorithm != rsa2048 {
        pgp.set_algorithm(DEC, rsa2048).expect("RSA-2048 attributes (DEC)");
    }
    let dec_public = pgp.generate_key_pair(DEC).expect("generate RSA-2048 (DEC)");
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(3);
    let cryptogram = rsa_public(&dec_public)
        .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, b"session key 1234")
        .expect("host encryption");
    pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1 (82)");
    let plain = pgp.decipher(&cryptogram).expect("PSO:DECIPHER");
    assert_eq!(plain.expose(), b"session key 1234");
    Outcome::Passed
}

/// Host keys imported (PUT DATA / extended header list): an Ed25519 signature key (key
/// status "imported", public key read back, signs), a P-256 authentication key through a
/// CardSigner, an X25519 decryption key agreeing with the host, an RSA-2048 signature
/// key; each as far as the card announces the algorithm.
pub fn import_host_keys(card: &mut dyn Card, caps: &OpenPgpCapabilities) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    pgp.remember_user_pin(secret(FACTORY_PW1.as_bytes())).expect("PW1 length");
    if !caps.import {
        let refused = pgp.import_key(SIG, &SecretKey::NistP256(secret(&[0x21; 32])));
        assert!(matches!(refused, Err(Error::Card { .. })), "{refused:?}");
        return Outcome::Refused("key import as keystation sends it");
    }
    let mut missing = None;

    if caps.has(KeyAlgorithm::Ed25519) {
        let seed = [0x42; 32];
        let host = ed25519_dalek::SigningKey::from_bytes(&seed);
        pgp.import_key(SIG, &SecretKey::Ed25519(secret(&seed))).expect("import Ed25519");
        if caps.key_information {
            assert_eq!(pgp.application_related_data().key_status[0], Some(KeyStatus::Imported));
        }
        let public = pgp.public_key(SIG).expect("public key of the imported key");
        assert_eq!(public.point(), Some(&host.verifying_key().to_bytes()[..]));
        pgp.verify(PinRef::Pw1Signing, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1");
        let signature = pgp.sign(SignInput::Message(b"imported")).expect("PSO:CDS");
        verify_ed25519(&public, b"imported", &signature);
    } else {
        let refused = pgp.import_key(SIG, &SecretKey::Ed25519(secret(&[0x42; 32])));
        assert!(matches!(refused, Err(Error::UnsupportedAlgorithm { .. })), "{refused:?}");
        missing = Some("Ed25519");
    }

    if caps.has(KeyAlgorithm::NistP256) {
        let scalar = [0x21; 32];
        let host = p256::SecretKey::from_slice(&scalar).expect("host scalar");
        pgp.import_key(AUT, &SecretKey::NistP256(secret(&scalar))).expect("import P-256");
        let mut signer = CardSigner::new(&mut pgp, AUT).expect("CardSigner (AUT)");
        let host_point =
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&host.public_key(), false);
        assert_eq!(signer.public_key().point(), Some(host_point.as_bytes()));
        let digest = sha256(b"auth");
        let der = signer
            .sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
            .expect("INTERNAL AUTHENTICATE");
        verify_p256(signer.public_key(), &digest, &der);
    } else {
        missing = Some("P-256");
    }

    if caps.has(KeyAlgorithm::X25519) {
        let scalar = [0x77; 32];
        let host = x25519_dalek::StaticSecret::from(scalar);
        pgp.import_key(DEC, &SecretKey::X25519(secret(&scalar))).expect("import X25519");
        let card_public = pgp.public_key(DEC).expect("public key of the imported key");
        assert_eq!(card_public.point(), Some(&x25519_dalek::PublicKey::from(&host).to_bytes()[..]));
        let peer = x25519_dalek::StaticSecret::from([0x19; 32]);
        pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1 (82)");
        let shared = pgp
            .decipher(x25519_dalek::PublicKey::from(&peer).as_bytes())
            .expect("PSO:DECIPHER (ECDH)");
        assert_eq!(
            shared.expose(),
            host.diffie_hellman(&x25519_dalek::PublicKey::from(&peer)).as_bytes()
        );
    } else {
        missing = Some("X25519");
    }

    if caps.has(KeyAlgorithm::Rsa(RsaBits::Rsa2048)) {
        let host = rsa_2048(11);
        pgp.import_key(SIG, &rsa_secret(&host)).expect("import RSA-2048");
        let public = pgp.public_key(SIG).expect("public key of the imported key");
        assert_eq!(rsa_public(&public), rsa::RsaPublicKey::from(&host));
        pgp.verify(PinRef::Pw1Signing, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1");
        let digest = sha256(b"rsa import");
        let signature = pgp
            .sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
            .expect("PSO:CDS");
        verify_rsa_pkcs1(&rsa::RsaPublicKey::from(&host), &digest, &signature);
    } else {
        missing = Some("RSA-2048");
    }
    missing.map_or(Outcome::Passed, Outcome::Refused)
}

/// Without extended length: a 2048-bit import template (longer than 255 bytes) goes in a
/// command chain, the 7F49 answer (longer than 256 bytes) comes back with `61xx` and GET
/// RESPONSE, and the imported key signs; no command is longer than a short APDU.
pub fn short_apdus_chaining_and_get_response(
    card: &mut dyn Card,
    caps: &OpenPgpCapabilities,
) -> Outcome {
    if !caps.has(KeyAlgorithm::Rsa(RsaBits::Rsa2048)) || !caps.import {
        return Outcome::NotApplicable("RSA-2048 import, whose templates need chaining");
    }
    let mut short = ShortOnly::new(card);
    {
        let mut pgp = select(&mut short);
        assert!(!pgp.uses_extended_length());
        admin(&mut pgp);
        let host = rsa_2048(5);
        pgp.import_key(AUT, &rsa_secret(&host)).expect("chained import");
        let public = pgp.public_key(AUT).expect("7F49 with GET RESPONSE");
        assert_eq!(rsa_public(&public), rsa::RsaPublicKey::from(&host));
        pgp.verify(PinRef::Pw1, &secret(FACTORY_PW1.as_bytes())).expect("VERIFY PW1 (82)");
        let digest = sha256(b"short");
        let signature = pgp
            .authenticate(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
            .expect("INTERNAL AUTHENTICATE");
        verify_rsa_pkcs1(&rsa::RsaPublicKey::from(&host), &digest, &signature);
    }
    assert!(short.longest_command <= 5 + 255 + 1, "{}", short.longest_command);
    Outcome::Passed
}

/// User interaction flags (touch policies): set and read back, Default and unchanged
/// flags send nothing, a fixed flag changes only with a reset, KeyGen applies a touch
/// policy with the key. A card without UIF DOs is refused by the client.
pub fn touch_policies(card: &mut dyn Card, caps: &OpenPgpCapabilities) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    if !caps.touch {
        let before = pgp.apdus_sent();
        let refused = pgp.set_uif(SIG, Uif::On);
        assert!(matches!(refused, Err(Error::UnsupportedFeature(_))), "{refused:?}");
        let mut request = KeyRequest::new(KeyPurpose::OpenPgp(SIG), caps.default_algorithm);
        request.touch_policy = TouchPolicy::Always;
        let refused = KeyGen::generate(&mut pgp, &request).map(|_| ());
        assert!(matches!(refused, Err(keystation_core::Error::UnsupportedPolicy)), "{refused:?}");
        assert_eq!(pgp.apdus_sent(), before);
        return Outcome::Refused("touch policies (UIF)");
    }
    pgp.set_uif(SIG, Uif::On).expect("PUT DATA D6");
    let aut = if caps.touch_cached { Uif::Cached } else { Uif::Fixed };
    if caps.touch_cached {
        pgp.set_touch_policy(AUT, TouchPolicy::Cached).expect("PUT DATA D8");
    } else {
        let refused = pgp.set_touch_policy(AUT, TouchPolicy::Cached);
        assert!(matches!(refused, Err(Error::Card { .. })), "{refused:?}");
        pgp.set_uif(AUT, Uif::Fixed).expect("PUT DATA D8");
    }
    let before = pgp.apdus_sent();
    pgp.set_touch_policy(DEC, TouchPolicy::Default).expect("default policy");
    pgp.set_uif(SIG, Uif::On).expect("unchanged flag");
    assert_eq!(pgp.apdus_sent(), before);
    assert_eq!(pgp.get_data(0xD6).expect("GET DATA D6"), Some(vec![0x01, 0x20]));
    pgp.refresh().expect("re-reading 6E");
    assert_eq!(pgp.uif(SIG), Some(Uif::On));
    assert_eq!(pgp.uif(DEC), Some(Uif::Off));
    assert_eq!(pgp.uif(AUT), Some(aut));

    if caps.touch_fixed {
        pgp.set_uif(DEC, Uif::Fixed).expect("fixed flag");
        let refused = pgp.set_uif(DEC, Uif::Off);
        // A YubiKey answers 6982 (security status not satisfied), opcard 6983.
        let refused_ok = matches!(
            refused,
            Err(Error::SecurityStatusNotSatisfied { .. })
                | Err(Error::Card { status: StatusWord(0x6983), .. })
        );
        assert!(refused_ok, "{refused:?}");
        pgp.factory_reset().expect("factory reset");
        assert_eq!(pgp.uif(DEC), Some(Uif::Off));
        admin(&mut pgp);
    }
    let mut request = KeyRequest::new(
        KeyPurpose::OpenPgp(SIG),
        first_of(
            caps,
            &[KeyAlgorithm::Ed25519, KeyAlgorithm::NistP256, KeyAlgorithm::Rsa(RsaBits::Rsa2048)],
        ),
    );
    request.touch_policy = TouchPolicy::Always;
    KeyGen::generate(&mut pgp, &request).expect("generate with a touch policy");
    assert_eq!(pgp.uif(SIG), Some(Uif::On));
    if caps.touch_fixed { Outcome::Passed } else { Outcome::NotApplicable("fixed UIF") }
}

/// PW1 valid for one signature only: the client verifies the remembered PW1 before each
/// PSO:CDS (one VERIFY and one PSO:CDS per signature, no refused attempt); without the
/// PIN the card refuses the next signature.
pub fn single_signature_pw1(card: &mut dyn Card, caps: &OpenPgpCapabilities) -> Outcome {
    let mut pgp = select(card);
    admin(&mut pgp);
    pgp.set_pw1_valid_for_several_signatures(false).expect("PUT DATA C4");
    assert!(!pgp.read_pw_status().expect("PW status").pw1_valid_for_several_signatures);
    let algorithm = first_of(caps, &[KeyAlgorithm::NistP256, KeyAlgorithm::Ed25519]);
    pgp.set_algorithm(SIG, algorithm).expect("attributes");
    let public = pgp.generate_key_pair(SIG).expect("generate");
    pgp.remember_user_pin(secret(FACTORY_PW1.as_bytes())).expect("PW1 length");
    let mut signer = CardSigner::new(&mut pgp, SIG).expect("CardSigner (SIG)");
    let before = signer.card().apdus_sent();
    for message in [&b"one"[..], b"two", b"three"] {
        let digest = sha256(message);
        if algorithm == KeyAlgorithm::NistP256 {
            let input = SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest };
            verify_p256(&public, &digest, &signer.sign(input).expect("PSO:CDS"));
        } else {
            let signature = signer.sign(SignInput::Message(message)).expect("PSO:CDS");
            verify_ed25519(&public, message, &signature);
        }
    }
    assert_eq!(signer.card().apdus_sent() - before, 6);
    drop(signer);
    pgp.forget_user_pin();
    let digest = sha256(b"four");
    let input = if algorithm == KeyAlgorithm::NistP256 {
        SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }
    } else {
        SignInput::Message(b"four")
    };
    let refused = pgp.sign(input);
    assert!(
        matches!(
            refused,
            Err(Error::SecurityStatusNotSatisfied {
                operation: keystation_openpgp::Operation::Sign
            })
        ),
        "{refused:?}"
    );
    Outcome::Passed
}
