//! The PIV part (SP 800-73-4, with Yubico's extensions where the card has them): what
//! keystation-piv's [`PivCard`] client does with a card, checked against the card's
//! declared [`PivCapabilities`].

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{
    KeyOrigin, KeyPurpose, KeyRequest, PinPolicy, PivSlot, RetiredSlot, SignInput, Signer as _,
    TouchPolicy,
};
use keystation_core::{Card, Channel, Command, KeyGen, Le, SecretKey, StatusWord, tlv};
use keystation_piv::{
    AdminData, Error, FirmwareVersion, ManagementAlgorithm, ManagementKey, PinKind, PivAlgorithm,
    PivCard, PivSigner, Retries, object, pss_encode,
};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;

use crate::Outcome;
use crate::host::{
    rsa_2048, rsa_public, rsa_secret, secret, sha256, sha384, sha512, verify_p256, verify_p384,
    verify_rsa_pkcs1,
};

/// The factory PIN and PUK of every PIV card here.
pub const FACTORY_PIN: &[u8] = b"123456";
/// See [`FACTORY_PIN`].
pub const FACTORY_PUK: &[u8] = b"12345678";

/// The checks of this part, in the order [`piv_conformance!`](crate::piv_conformance)
/// generates their tests.
pub const CHECKS: &[&str] = &[
    "select_version_serial_and_chuid",
    "generate_p256_and_sign",
    "generate_p384_and_sign",
    "generate_rsa2048_sign_and_pss",
    "generate_ed25519_and_sign",
    "ecdh_p256",
    "import_p256_and_rsa",
    "management_key_3des_aes_and_wrong_key",
    "pin_protected_management_key",
    "pin_blocks_and_puk_unblocks",
    "certificates_round_trip",
    "metadata",
    "attestation",
    "reset",
];

/// What a PIV card announces and does, as far as the checks depend on it.
#[derive(Debug, Clone)]
pub struct PivCapabilities {
    /// Checks declared not applicable to this card, each with the reason (a known defect
    /// of the card that the check would trip over); reported, never passed.
    pub not_applicable: Vec<(&'static str, &'static str)>,
    /// The card, for messages.
    pub name: &'static str,
    /// What GET VERSION (Yubico `FD`) answers, `None` where the card lacks it.
    pub version: Option<FirmwareVersion>,
    /// What GET SERIAL (Yubico `F8`) answers, `None` where the card lacks it.
    pub serial: Option<u32>,
    /// Whether SELECT by the RID alone (`A0 00 00 03 08`, as YubiKeys accept it) finds
    /// the application; else the card answers `6A82`.
    pub select_by_rid: bool,
    /// Whether a factory-fresh card has a CHUID (with its 16-byte GUID).
    pub factory_chuid: bool,
    /// The asymmetric algorithms the card generates and uses. Others that the client
    /// offers for the card's version must be refused by the card.
    pub algorithms: Vec<KeyAlgorithm>,
    /// Yubico's PIN and touch policies (`AA`/`AB`) in GENERATE and IMPORT.
    pub policies: bool,
    /// Yubico IMPORT KEY (`FE`).
    pub import: bool,
    /// The factory management key's algorithm (its value is the well-known default).
    pub default_management_algorithm: ManagementAlgorithm,
    /// The algorithms Yubico SET MANAGEMENT KEY (`FF`) accepts; empty without the command.
    pub management_algorithms: Vec<ManagementAlgorithm>,
    /// Yubico GET METADATA (`F7`).
    pub metadata: bool,
    /// ykman's PIN-protected management key (ADMIN DATA `5FFF00` and PRINTED `5FC109`).
    pub pin_protected_management_key: bool,
    /// Yubico ATTEST (`F9`) with a factory attestation key and certificate.
    pub attestation: bool,
    /// Yubico RESET (`FB`) of the application once PIN and PUK are blocked.
    pub reset: bool,
}

impl PivCapabilities {
    /// keystation's software YubiKey 5 at firmware `version` (5.7 adds Ed25519 and the
    /// AES-192 factory management key), `name` for messages, with its `serial`.
    pub fn software_yubikey5(name: &'static str, version: FirmwareVersion, serial: u32) -> Self {
        let since_5_7 = version >= FirmwareVersion(5, 7, 0);
        let mut algorithms = vec![
            KeyAlgorithm::NistP256,
            KeyAlgorithm::NistP384,
            KeyAlgorithm::Rsa(RsaBits::Rsa2048),
        ];
        if since_5_7 {
            algorithms.push(KeyAlgorithm::Ed25519);
        }
        Self {
            not_applicable: Vec::new(),
            name,
            version: Some(version),
            serial: Some(serial),
            select_by_rid: true,
            factory_chuid: false,
            algorithms,
            policies: true,
            import: true,
            default_management_algorithm: if since_5_7 {
                ManagementAlgorithm::Aes192
            } else {
                ManagementAlgorithm::TripleDes
            },
            management_algorithms: vec![
                ManagementAlgorithm::TripleDes,
                ManagementAlgorithm::Aes128,
                ManagementAlgorithm::Aes192,
                ManagementAlgorithm::Aes256,
            ],
            metadata: true,
            pin_protected_management_key: true,
            attestation: true,
            reset: true,
        }
    }
}

impl PivCapabilities {
    fn has(&self, algorithm: KeyAlgorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }

    fn pin_policy(&self, policy: PinPolicy) -> PinPolicy {
        if self.policies { policy } else { PinPolicy::Default }
    }

    fn touch_policy(&self, policy: TouchPolicy) -> TouchPolicy {
        if self.policies { policy } else { TouchPolicy::Default }
    }
}

fn select<'c>(card: &'c mut dyn Card) -> PivCard<'c> {
    PivCard::select(card).expect("SELECT PIV")
}

fn admin(piv: &mut PivCard<'_>) {
    piv.authenticate(&ManagementKey::factory_default()).expect("factory management key");
    piv.verify_pin(&secret(FACTORY_PIN)).expect("VERIFY factory PIN");
}

/// Generates `algorithm` in `slot` if the card has it; otherwise checks that it is refused
/// — by the client where it does not offer the algorithm for this card, else by the card —
/// and returns `None`.
fn generate_or_refused(
    piv: &mut PivCard<'_>,
    caps: &PivCapabilities,
    slot: PivSlot,
    algorithm: KeyAlgorithm,
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
) -> Option<PublicKey> {
    let pin_policy = caps.pin_policy(pin_policy);
    let touch_policy = caps.touch_policy(touch_policy);
    let result = piv.generate(slot, algorithm, pin_policy, touch_policy);
    if caps.has(algorithm) {
        return Some(result.unwrap_or_else(|e| panic!("GENERATE {algorithm} in {slot:?}: {e}")));
    }
    if piv.supported_algorithms().contains(&algorithm) {
        assert!(matches!(result, Err(Error::Card { .. })), "the card must refuse: {result:?}");
    } else {
        assert!(matches!(result, Err(Error::UnsupportedAlgorithm { .. })), "{result:?}");
    }
    None
}

fn piv_select(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x00).with_data(aid).with_le(Le::Max)
}

/// SELECT by the RID alone (found or `6A82`, as declared) and by the 9-byte AID, whose
/// answer is the application property template (`61` with `4F`); then the client:
/// version, serial, the algorithms it offers include the card's, and the CHUID (with a
/// 16-byte GUID where the card has one from the factory).
pub fn select_version_serial_and_chuid(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    {
        let mut channel = Channel::new(&mut *card);
        let rid_only = channel.transmit(&piv_select(&keystation_piv::PIV_AID_SHORT[..5]));
        let status = rid_only.expect("SELECT by RID").status();
        if caps.select_by_rid {
            assert_eq!(status, StatusWord::SUCCESS);
        } else {
            assert_eq!(status, StatusWord::NOT_FOUND);
        }
        let selected =
            channel.transmit_ok(&piv_select(&keystation_piv::PIV_AID_SHORT)).expect("SELECT PIV");
        let template = tlv::require(&selected, 0x61_u32).expect("template 61");
        let application = tlv::require(template, 0x4F_u32).expect("DO 4F in 61");
        assert!(application.starts_with(&keystation_piv::PIV_AID_SHORT[5..]), "{application:02X?}");
    }
    let mut piv = select(card);
    assert_eq!(piv.version(), caps.version);
    assert_eq!(piv.serial().expect("GET SERIAL"), caps.serial);
    for algorithm in &caps.algorithms {
        assert!(piv.supported_algorithms().contains(algorithm), "{algorithm} offered");
    }
    let chuid = piv.chuid().expect("GET DATA CHUID");
    if caps.factory_chuid {
        let chuid = chuid.expect("a factory CHUID");
        assert_eq!(tlv::require(&chuid, 0x34_u32).expect("GUID 34").len(), 16, "{chuid:02X?}");
    } else {
        assert_eq!(chuid, None);
    }
    Outcome::Passed
}

/// The policies a generated key gets where a check does not care.
const DEFAULT_POLICIES: (PinPolicy, TouchPolicy) = (PinPolicy::Default, TouchPolicy::Default);

/// Selects PIV, authenticates with the management key and generates `algorithm` in `slot`
/// with `policies` ([`generate_or_refused`]): the card and the new public key, or `None`
/// when the card refused the algorithm as its capabilities say it would.
fn generated<'c>(
    card: &'c mut dyn Card,
    caps: &PivCapabilities,
    slot: PivSlot,
    algorithm: KeyAlgorithm,
    (pin_policy, touch_policy): (PinPolicy, TouchPolicy),
) -> Option<(PivCard<'c>, PublicKey)> {
    let mut piv = select(card);
    admin(&mut piv);
    let public = generate_or_refused(&mut piv, caps, slot, algorithm, pin_policy, touch_policy)?;
    Some((piv, public))
}

/// P-256 generated in 9A signs a SHA-256 digest verifiably; a longer digest is truncated
/// to the curve size (FIPS 186-4 §6.4).
pub fn generate_p256_and_sign(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let slot = PivSlot::Authentication;
    let Some((mut piv, public)) =
        generated(card, caps, slot, KeyAlgorithm::NistP256, DEFAULT_POLICIES)
    else {
        return Outcome::Refused("P-256");
    };
    let digest = sha256(b"hello piv");
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP256, &digest).expect("sign");
    verify_p256(&public, &digest, &der);
    let long = sha512(b"long");
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP256, &long).expect("sign a long digest");
    verify_p256(&public, &long[..32], &der);
    Outcome::Passed
}

/// P-384 generated in 9A (PIN and touch policy "never" where the card has policies) signs
/// a SHA-384 digest verifiably.
pub fn generate_p384_and_sign(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let (slot, never) = (PivSlot::Authentication, (PinPolicy::Never, TouchPolicy::Never));
    let Some((mut piv, public)) = generated(card, caps, slot, KeyAlgorithm::NistP384, never) else {
        return Outcome::Refused("P-384");
    };
    let digest = sha384(b"hello p384");
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP384, &digest).expect("sign");
    verify_p384(&public, &digest, &der);
    Outcome::Passed
}

/// RSA-2048 generated in 9A signs PKCS #1 v1.5 (directly and through core's Signer) and
/// PSS (through the signer); in 9D, raw RSA over keystation's EMSA-PSS encoding verifies
/// with the rsa crate, and a wrong digest does not.
pub fn generate_rsa2048_sign_and_pss(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let bits = RsaBits::Rsa2048;
    let rsa2048 = KeyAlgorithm::Rsa(bits);
    let slot = PivSlot::Authentication;
    let Some((mut piv, public)) = generated(card, caps, slot, rsa2048, DEFAULT_POLICIES) else {
        return Outcome::Refused("RSA-2048");
    };
    let digest = sha256(b"hello piv");
    let signature = piv.sign_digest(slot, rsa2048, &digest).expect("sign");
    assert_eq!(signature.len(), 256);
    verify_rsa_pkcs1(&rsa_public(&public), &digest, &signature);

    let mut signer = PivSigner::new(&mut piv, slot, public.clone());
    let signature = signer
        .sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
        .expect("sign through the Signer");
    verify_rsa_pkcs1(&rsa_public(&public), &digest, &signature);
    let pss = signer.sign_pss(HashAlgorithm::Sha256, &digest).expect("PSS");
    rsa_public(&public).verify(rsa::Pss::new::<sha2::Sha256>(), &digest, &pss).expect("PSS");
    drop(signer);

    let slot = PivSlot::KeyManagement;
    let public = piv
        .generate(slot, rsa2048, PinPolicy::Default, TouchPolicy::Default)
        .expect("GENERATE RSA-2048 in 9D");
    for (i, message) in [&b"tls 1.3"[..], b"", b"another message"].iter().enumerate() {
        let digest = sha256(message);
        let salt = [i as u8 + 1; 32];
        let em = pss_encode(HashAlgorithm::Sha256, &digest, 256, &salt).expect("EMSA-PSS");
        let signature = piv.rsa_raw(slot, bits, &em).expect("raw RSA");
        rsa_public(&public)
            .verify(rsa::Pss::new::<sha2::Sha256>(), &digest, signature.expose())
            .expect("PSS verifies");
    }
    let em = pss_encode(HashAlgorithm::Sha256, &[1; 32], 256, &[2; 32]).expect("EMSA-PSS");
    let signature = piv.rsa_raw(slot, bits, &em).expect("raw RSA");
    assert!(
        rsa_public(&public)
            .verify(rsa::Pss::new::<sha2::Sha256>(), &[3; 32], signature.expose())
            .is_err()
    );
    Outcome::Passed
}

/// Ed25519 generated through core's KeyGen (PIN policy "once") signs messages verifiably
/// (strict verification) and refuses digests; a card without it refuses generation.
pub fn generate_ed25519_and_sign(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let mut piv = select(card);
    admin(&mut piv);
    if !caps.has(KeyAlgorithm::Ed25519) {
        let refused = generate_or_refused(
            &mut piv,
            caps,
            PivSlot::Signature,
            KeyAlgorithm::Ed25519,
            PinPolicy::Default,
            TouchPolicy::Default,
        );
        assert!(refused.is_none());
        return Outcome::Refused("Ed25519");
    }
    let request = KeyRequest {
        purpose: KeyPurpose::Piv(PivSlot::Authentication),
        algorithm: KeyAlgorithm::Ed25519,
        pin_policy: caps.pin_policy(PinPolicy::Once),
        touch_policy: TouchPolicy::Default,
    };
    let mut generated = KeyGen::generate(&mut piv, &request).expect("generate Ed25519");
    let signature = generated.signer.sign(SignInput::Message(b"edwards")).expect("sign");
    let point: [u8; 32] =
        generated.public.point().expect("point").try_into().expect("32-byte point");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&point).expect("Ed25519 key");
    let signature = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
    key.verify_strict(b"edwards", &signature).expect("Ed25519 signature verifies");
    let wrong =
        generated.signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &[0; 32] });
    assert!(matches!(wrong, Err(keystation_core::Error::InvalidSignInput(_))));
    Outcome::Passed
}

/// ECDH with a P-256 key generated in 9D agrees the host's shared secret.
pub fn ecdh_p256(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    let (slot, policies) = (PivSlot::KeyManagement, (PinPolicy::Once, TouchPolicy::Never));
    let Some((mut piv, public)) = generated(card, caps, slot, KeyAlgorithm::NistP256, policies)
    else {
        return Outcome::Refused("P-256");
    };
    let peer = p256::SecretKey::from_slice(&[0x17; 32]).expect("host scalar");
    let peer_point = peer.public_key().to_encoded_point(false);
    let shared = piv.ecdh(PivSlot::KeyManagement, peer_point.as_bytes()).expect("ECDH");
    let card_public =
        p256::PublicKey::from_sec1_bytes(public.point().expect("point")).expect("P-256 point");
    let host = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card_public.as_affine());
    assert_eq!(shared.expose(), &host.raw_secret_bytes()[..]);
    Outcome::Passed
}

/// Host keys imported (Yubico IMPORT KEY): P-256 into a retired slot with PIN policy
/// "never" signs verifiably (metadata: imported, policy never); RSA-2048 into 9C, whose
/// default PIN policy "always" makes the client verify the remembered PIN on demand.
pub fn import_p256_and_rsa(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let mut piv = select(card);
    admin(&mut piv);
    let ec = p256::SecretKey::from_slice(&[0x42; 32]).expect("host scalar");
    let slot = PivSlot::Retired(RetiredSlot::new(3).expect("retired slot 3"));
    let imported = piv.import_key(
        slot,
        &SecretKey::NistP256(secret(&ec.to_bytes())),
        caps.pin_policy(PinPolicy::Never),
        TouchPolicy::Default,
    );
    if !caps.import {
        let refused = matches!(imported, Err(Error::Card { .. } | Error::Unsupported { .. }));
        assert!(refused, "{imported:?}");
        return Outcome::Refused("IMPORT KEY");
    }
    imported.expect("IMPORT P-256");
    let digest = sha256(b"imported");
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP256, &digest).expect("sign");
    let verifying = p256::ecdsa::VerifyingKey::from(ec.public_key());
    verifying
        .verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).expect("DER"))
        .expect("signature of the imported key verifies");
    if caps.metadata {
        let meta = piv.metadata(slot.key_reference()).expect("metadata").expect("metadata");
        assert_eq!(meta.origin, Some(KeyOrigin::Host));
        assert_eq!(meta.pin_policy, Some(PinPolicy::Never));
    }

    if !caps.has(KeyAlgorithm::Rsa(RsaBits::Rsa2048)) {
        return Outcome::Refused("RSA-2048");
    }
    let host = rsa_2048(9);
    piv.import_key(
        PivSlot::Signature,
        &rsa_secret(&host),
        PinPolicy::Default,
        TouchPolicy::Default,
    )
    .expect("IMPORT RSA-2048");
    piv.remember_pin(secret(FACTORY_PIN)).expect("PIN format");
    let signature = piv
        .sign_digest(PivSlot::Signature, KeyAlgorithm::Rsa(RsaBits::Rsa2048), &digest)
        .expect("sign");
    verify_rsa_pkcs1(&rsa::RsaPublicKey::from(&host), &digest, &signature);
    Outcome::Passed
}

/// The management key: a wrong one is refused (and leaves the session unauthenticated,
/// so GENERATE is refused by the card); the factory key works (metadata: its algorithm,
/// default value); SET MANAGEMENT KEY to AES-192 and AES-128 keys, which then work and the
/// old one does not, a key given with the wrong algorithm works where metadata tells the
/// right one, and back to the factory key; a key of the wrong length is refused.
pub fn management_key_3des_aes_and_wrong_key(
    card: &mut dyn Card,
    caps: &PivCapabilities,
) -> Outcome {
    let mut piv = select(card);
    let wrong =
        ManagementKey::new(ManagementAlgorithm::TripleDes, secret(&[9; 24])).expect("3DES key");
    let refused = piv.authenticate(&wrong);
    // A YubiKey answers the wrong response with 6982; piv-authenticator with 6A80.
    assert!(matches!(refused, Err(Error::WrongManagementKey | Error::Card { .. })), "{refused:?}");
    assert!(!piv.is_management_authenticated());
    let refused = piv.generate(
        PivSlot::Authentication,
        KeyAlgorithm::NistP256,
        PinPolicy::Default,
        TouchPolicy::Default,
    );
    assert!(matches!(refused, Err(Error::SecurityStatusNotSatisfied { .. })), "{refused:?}");

    piv.authenticate(&ManagementKey::factory_default()).expect("factory management key");
    assert!(piv.is_management_authenticated());
    if caps.metadata {
        let meta = piv.metadata(0x9B).expect("metadata").expect("metadata of 9B");
        let expected = match caps.default_management_algorithm {
            ManagementAlgorithm::TripleDes => PivAlgorithm::TripleDes,
            ManagementAlgorithm::Aes128 => PivAlgorithm::Aes128,
            ManagementAlgorithm::Aes192 => PivAlgorithm::Aes192,
            ManagementAlgorithm::Aes256 => PivAlgorithm::Aes256,
        };
        assert_eq!(meta.algorithm, Some(expected));
        assert_eq!(meta.default_value, Some(true));
    }
    assert!(ManagementKey::new(ManagementAlgorithm::Aes256, secret(&[1; 24])).is_err());

    let mut outcome = Outcome::Passed;
    if caps.management_algorithms.contains(&ManagementAlgorithm::Aes192) {
        let aes = ManagementKey::new(ManagementAlgorithm::Aes192, secret(&[0x5A; 24]))
            .expect("AES-192 key");
        piv.set_management_key(&aes, false).expect("SET MANAGEMENT KEY AES-192");
        let old = piv.authenticate(&ManagementKey::factory_default());
        assert!(matches!(old, Err(Error::WrongManagementKey)), "{old:?}");
        piv.authenticate(&aes).expect("the AES-192 key");
        if caps.metadata {
            let meta = piv.metadata(0x9B).expect("metadata").expect("metadata of 9B");
            assert_eq!(meta.algorithm, Some(PivAlgorithm::Aes192));
            // The key given as 3DES still works: the algorithm comes from the metadata.
            let as_3des = ManagementKey::new(ManagementAlgorithm::TripleDes, secret(&[0x5A; 24]))
                .expect("3DES key");
            piv.authenticate(&as_3des).expect("the AES-192 key, given as 3DES");
        }
    } else {
        outcome = Outcome::NotApplicable("AES-192 management key");
    }
    if caps.management_algorithms.contains(&ManagementAlgorithm::Aes128) {
        let aes128 = ManagementKey::new(ManagementAlgorithm::Aes128, secret(&[0x33; 16]))
            .expect("AES-128 key");
        piv.set_management_key(&aes128, false).expect("SET MANAGEMENT KEY AES-128");
        piv.authenticate(&aes128).expect("the AES-128 key");
    } else {
        outcome = Outcome::NotApplicable("AES-128 management key");
    }
    if caps.management_algorithms.contains(&ManagementAlgorithm::Aes256) {
        let aes256 = ManagementKey::new(ManagementAlgorithm::Aes256, secret(&[0x44; 32]))
            .expect("AES-256 key");
        piv.set_management_key(&aes256, false).expect("SET MANAGEMENT KEY AES-256");
        piv.authenticate(&aes256).expect("the AES-256 key");
    }
    if caps.management_algorithms.contains(&caps.default_management_algorithm) {
        let factory = ManagementKey::new(
            caps.default_management_algorithm,
            secret(&keystation_piv::DEFAULT_MANAGEMENT_KEY),
        )
        .expect("factory key");
        piv.set_management_key(&factory, false).expect("SET MANAGEMENT KEY back");
        piv.authenticate(&ManagementKey::factory_default()).expect("factory management key");
    }
    if caps.management_algorithms.is_empty() {
        let aes = ManagementKey::new(ManagementAlgorithm::Aes192, secret(&[0x5A; 24]))
            .expect("AES-192 key");
        let refused = piv.set_management_key(&aes, false);
        assert!(matches!(refused, Err(Error::Card { .. })), "{refused:?}");
        return Outcome::Refused("SET MANAGEMENT KEY");
    }
    outcome
}

/// ykman's PIN-protected management key: none at first; stored with AES-192 as ADMIN DATA
/// `80 { 81 01 02 }` and PRINTED `88 { 89 key }`; PRINTED needs the PIN; the stored key is
/// the card's management key now.
pub fn pin_protected_management_key(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    if !caps.pin_protected_management_key {
        return Outcome::NotApplicable("PIN-protected management key (ADMIN DATA, PRINTED)");
    }
    let key = {
        let mut piv = select(card);
        admin(&mut piv);
        assert!(piv.pin_protected_management_key().expect("ADMIN DATA").is_none());
        piv.set_pin_protected_management_key(ManagementAlgorithm::Aes192)
            .expect("store a PIN-protected management key")
    };
    let mut piv = select(card);
    assert_eq!(
        piv.get_data(object::ADMIN_DATA).expect("ADMIN DATA").expect("ADMIN DATA"),
        [0x80, 0x03, 0x81, 0x01, 0x02]
    );
    assert_eq!(
        piv.admin_data().expect("ADMIN DATA").expect("ADMIN DATA").flags,
        AdminData::MGMT_KEY_STORED
    );
    let refused = piv.pin_protected_management_key();
    assert!(matches!(refused, Err(Error::SecurityStatusNotSatisfied { .. })), "{refused:?}");
    piv.verify_pin(&secret(FACTORY_PIN)).expect("VERIFY PIN");
    let mut expected = vec![0x88, 0x1A, 0x89, 0x18];
    expected.extend_from_slice(key.key.expose());
    assert_eq!(piv.get_data(object::PRINTED).expect("PRINTED").expect("PRINTED"), expected);
    let stored = piv.pin_protected_management_key().expect("PRINTED").expect("stored key");
    assert_eq!(stored.algorithm, ManagementAlgorithm::Aes192);
    assert_eq!(stored.key.expose(), key.key.expose());
    let old = piv.authenticate(&ManagementKey::factory_default());
    assert!(matches!(old, Err(Error::WrongManagementKey)), "{old:?}");
    piv.authenticate(&stored).expect("the stored key");
    Outcome::Passed
}

/// A wrong PIN counts down (tries left through VERIFY without data) until blocked, when
/// even the right PIN is refused; a short PIN never reaches the card; a wrong PUK counts
/// down, the right one unblocks with a new PIN; change PIN and PUK (metadata: PUK no
/// longer default, counters full).
pub fn pin_blocks_and_puk_unblocks(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let mut piv = select(card);
    assert_eq!(piv.pin_tries_left().expect("tries left"), 3);
    let wrong = secret(b"000000");
    let first = piv.verify_pin(&wrong);
    assert!(
        matches!(first, Err(Error::WrongPin { pin: PinKind::Pin, tries_left: 2 })),
        "{first:?}"
    );
    assert_eq!(piv.pin_tries_left().expect("tries left"), 2);
    let second = piv.verify_pin(&wrong);
    assert!(matches!(second, Err(Error::WrongPin { tries_left: 1, .. })), "{second:?}");
    let blocked = piv.verify_pin(&wrong);
    assert!(matches!(blocked, Err(Error::PinBlocked(PinKind::Pin))), "{blocked:?}");
    assert!(blocked.unwrap_err().to_string().contains("blocked"));
    let right = piv.verify_pin(&secret(FACTORY_PIN));
    assert!(matches!(right, Err(Error::PinBlocked(PinKind::Pin))), "{right:?}");
    assert_eq!(piv.pin_tries_left().expect("tries left"), 0);

    let sent = piv.apdus_sent();
    assert!(matches!(piv.verify_pin(&secret(b"123")), Err(Error::PinFormat(PinKind::Pin))));
    assert_eq!(piv.apdus_sent(), sent);

    let wrong_puk = piv.unblock_pin(&secret(b"87654321"), &secret(b"246810"));
    assert!(
        matches!(wrong_puk, Err(Error::WrongPin { pin: PinKind::Puk, tries_left: 2 })),
        "{wrong_puk:?}"
    );
    piv.unblock_pin(&secret(FACTORY_PUK), &secret(b"246810")).expect("RESET RETRY COUNTER");
    assert_eq!(piv.pin_tries_left().expect("tries left"), 3);
    piv.verify_pin(&secret(b"246810")).expect("VERIFY the new PIN");
    assert_eq!(piv.pin_tries_left().expect("tries left"), 3);

    piv.change_pin(&secret(b"246810"), &secret(b"13572468")).expect("change PIN");
    piv.verify_pin(&secret(b"13572468")).expect("VERIFY the changed PIN");
    piv.change_puk(&secret(FACTORY_PUK), &secret(b"99999999")).expect("change PUK");
    if caps.metadata {
        let meta = piv.metadata(0x81).expect("metadata").expect("metadata of the PUK");
        assert_eq!(meta.default_value, Some(false));
        assert_eq!(meta.retries, Some(Retries { total: 3, remaining: 3 }));
    }
    Outcome::Passed
}

/// A certificate of `len` bytes (a DER SEQUENCE; the card stores it as it is).
fn certificate(len: usize) -> Vec<u8> {
    let body = len - 4;
    let mut der = vec![0x30, 0x82, (body >> 8) as u8, body as u8];
    der.extend((0..body).map(|i| (i * 7 % 251) as u8));
    der
}

/// Certificates: none in a fresh 9A; writing needs the management key; written plain
/// (object `70 … 71 01 00 FE 00`) and gzip-compressed (`71 01 01`, in a retired slot),
/// read back equal; deleted; a CHUID written and read back.
pub fn certificates_round_trip(card: &mut dyn Card, _caps: &PivCapabilities) -> Outcome {
    let mut piv = select(card);
    let der = certificate(900);
    assert_eq!(piv.read_certificate(PivSlot::Authentication).expect("read 9A"), None);
    let refused = piv.write_certificate(PivSlot::Authentication, &der);
    assert!(matches!(refused, Err(Error::SecurityStatusNotSatisfied { .. })), "{refused:?}");
    piv.authenticate(&ManagementKey::factory_default()).expect("factory management key");

    piv.write_certificate(PivSlot::Authentication, &der).expect("write 9A");
    let read = piv.read_certificate(PivSlot::Authentication).expect("read 9A");
    assert_eq!(read.as_deref(), Some(&der[..]));
    let raw = piv.get_data(object::CERT_AUTHENTICATION).expect("GET DATA").expect("object");
    assert_eq!(raw[0], 0x70);
    assert!(raw.ends_with(&[0x71, 0x01, 0x00, 0xFE, 0x00]));

    let retired = PivSlot::Retired(RetiredSlot::new(20).expect("retired slot 20"));
    piv.write_certificate_with(retired, &der, true).expect("write compressed");
    let raw = piv.get_data(0x5F_C120).expect("GET DATA").expect("object");
    assert!(raw.ends_with(&[0x71, 0x01, 0x01, 0xFE, 0x00]));
    assert_eq!(piv.read_certificate(retired).expect("read").as_deref(), Some(&der[..]));

    piv.delete_certificate(PivSlot::Authentication).expect("delete 9A");
    assert_eq!(piv.read_certificate(PivSlot::Authentication).expect("read 9A"), None);

    piv.put_data(object::CHUID, &[0x30, 0x19, 0xD4]).expect("PUT DATA CHUID");
    assert_eq!(piv.chuid().expect("CHUID").as_deref(), Some(&[0x30, 0x19, 0xD4][..]));
    Outcome::Passed
}

/// GET METADATA: an empty slot is "no key"; a generated P-256 key's algorithm, policies,
/// origin and public key; the PIN's default value, counter and kind; a signer built from
/// metadata. A card without it answers so, and the client reports no metadata.
pub fn metadata(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let mut piv = select(card);
    admin(&mut piv);
    if !caps.metadata {
        assert_eq!(piv.metadata(0x80).expect("GET METADATA refused"), None);
        assert_eq!(piv.metadata(0x9E).expect("GET METADATA refused"), None);
        return Outcome::Refused("GET METADATA");
    }
    let slot = PivSlot::CardAuthentication;
    assert!(matches!(piv.metadata(0x9E), Err(Error::NoKey { slot: 0x9E, .. })));
    let public = piv
        .generate(slot, KeyAlgorithm::NistP256, PinPolicy::Always, TouchPolicy::Cached)
        .expect("GENERATE P-256 in 9E");
    let meta = piv.metadata(0x9E).expect("metadata").expect("metadata of 9E");
    assert_eq!(meta.algorithm, Some(PivAlgorithm::EccP256));
    assert_eq!(meta.pin_policy, Some(PinPolicy::Always));
    assert_eq!(meta.touch_policy, Some(TouchPolicy::Cached));
    assert_eq!(meta.origin, Some(KeyOrigin::Card));
    assert_eq!(meta.public_key.as_ref(), Some(&public));
    let pin = piv.metadata(0x80).expect("metadata").expect("metadata of the PIN");
    assert_eq!(pin.default_value, Some(true));
    assert_eq!(pin.retries, Some(Retries { total: 3, remaining: 3 }));
    assert_eq!(pin.algorithm, Some(PivAlgorithm::Pin));
    let signer = PivSigner::from_metadata(&mut piv, slot).expect("signer from metadata");
    assert_eq!(signer.public_key(), &public);
    Outcome::Passed
}

/// ATTEST: the factory F9 certificate; the attestation of a generated key is issued by
/// it and certifies the key; an imported key cannot be attested. A card without it
/// refuses ATTEST and has no F9 certificate.
pub fn attestation(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    use x509_cert::Certificate;
    use x509_cert::der::{Decode as _, Encode as _};
    let mut piv = select(card);
    admin(&mut piv);
    let public = piv
        .generate(
            PivSlot::Authentication,
            KeyAlgorithm::NistP256,
            caps.pin_policy(PinPolicy::Once),
            caps.touch_policy(TouchPolicy::Always),
        )
        .expect("GENERATE P-256 in 9A");
    if !caps.attestation {
        let refused = piv.attest(PivSlot::Authentication);
        let refused_ok = matches!(refused, Err(Error::Card { .. } | Error::Unsupported { .. }));
        assert!(refused_ok, "{refused:?}");
        // No F9 certificate: not found, or (piv-authenticator) the object is refused.
        let f9 = piv.attestation_certificate();
        assert!(matches!(f9, Ok(None) | Err(Error::Card { .. })), "{f9:?}");
        return Outcome::Refused("ATTEST");
    }
    let attestation = piv.attest(PivSlot::Authentication).expect("ATTEST 9A");
    let f9 = piv.attestation_certificate().expect("F9 certificate").expect("F9 certificate");
    assert_eq!(f9[0], 0x30);
    let attestation = Certificate::from_der(&attestation).expect("attestation certificate");
    let f9 = Certificate::from_der(&f9).expect("F9 certificate");
    assert_eq!(
        attestation.tbs_certificate.issuer.to_der().expect("DER"),
        f9.tbs_certificate.subject.to_der().expect("DER")
    );
    assert_eq!(
        attestation.tbs_certificate.subject_public_key_info.to_der().expect("DER"),
        public.to_spki_der()
    );
    if caps.import {
        piv.import_key(
            PivSlot::Signature,
            &SecretKey::NistP256(secret(&[0x21; 32])),
            PinPolicy::Default,
            TouchPolicy::Default,
        )
        .expect("IMPORT P-256");
        let error = piv.attest(PivSlot::Signature).unwrap_err();
        assert_eq!(error.to_string(), "card returned 6A80 (incorrect data) for ATTEST slot 9C");
    }
    Outcome::Passed
}

/// RESET (after blocking PIN and PUK): keys, certificates, management key, PIN and PUK
/// are back to factory state, and the attestation key survives. A card without it refuses.
pub fn reset(card: &mut dyn Card, caps: &PivCapabilities) -> Outcome {
    let mut piv = select(card);
    admin(&mut piv);
    if !caps.reset {
        let refused = piv.reset();
        assert!(
            matches!(refused, Err(Error::Card { .. } | Error::Unsupported { .. })),
            "{refused:?}"
        );
        return Outcome::Refused("RESET");
    }
    let algorithm = caps.algorithms[0];
    piv.generate(PivSlot::Authentication, algorithm, PinPolicy::Default, TouchPolicy::Default)
        .expect("GENERATE in 9A");
    piv.write_certificate(PivSlot::Authentication, &certificate(300)).expect("write 9A");
    if let Some(&algorithm) = caps.management_algorithms.last() {
        let len = match algorithm {
            ManagementAlgorithm::Aes128 => 16,
            ManagementAlgorithm::Aes256 => 32,
            _ => 24,
        };
        let key = ManagementKey::new(algorithm, secret(&vec![7; len])).expect("key");
        piv.set_management_key(&key, false).expect("SET MANAGEMENT KEY");
    }
    piv.change_pin(&secret(FACTORY_PIN), &secret(b"778899")).expect("change PIN");
    piv.change_puk(&secret(FACTORY_PUK), &secret(b"11223344")).expect("change PUK");

    piv.reset().expect("RESET");
    assert!(!piv.is_management_authenticated());
    assert_eq!(piv.pin_tries_left().expect("tries left"), 3);
    piv.verify_pin(&secret(FACTORY_PIN)).expect("factory PIN");
    piv.authenticate(&ManagementKey::factory_default()).expect("factory management key");
    assert_eq!(piv.read_certificate(PivSlot::Authentication).expect("read 9A"), None);
    if caps.metadata {
        assert!(matches!(piv.metadata(0x9A), Err(Error::NoKey { .. })));
        assert_eq!(piv.metadata(0x81).expect("metadata").expect("PUK").default_value, Some(true));
    }
    if caps.attestation {
        assert!(piv.attestation_certificate().expect("F9 certificate").is_some());
    }
    Outcome::Passed
}
