//! The YubiKey attestation provisioner on real chains: keys generated and attested by the
//! software YubiKey (keystation-softcard) through keystation's PIV client, checked
//! against the software card's own attestation root, configured as the provisioner's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_piv::{ManagementKey, PivCard};
use keystation_provisioners::{
    AttestationPolicy, AttestationRefusal, Claims, ProvisionerKind, StepProvisioner,
    YubiKeyAttestationProvisioner,
};
use keystation_softcard::{Identity, SoftCard, Version};
use keystation_x509::attestation::FirmwareVersion;

const SERIAL: u32 = 12_345_678;
const H: Duration = Duration::from_secs(3600);

/// What a client presents: the slot's attestation, the F9 certificate, the key.
struct Attested {
    slot_certificate: Vec<u8>,
    f9_certificate: Vec<u8>,
    public: PublicKey,
}

/// A software YubiKey with `serial` and `firmware` generates a P-256 key in `slot` with
/// the given policies and attests it (the key depends on the serial and the slot).
fn attest_on(
    serial: u32,
    firmware: Version,
    slot: PivSlot,
    pin: PinPolicy,
    touch: TouchPolicy,
) -> Attested {
    let identity = Identity { serial, version: firmware, ..Identity::default() };
    // A seed per card and slot, so that two calls make two different keys.
    let seed = u64::from(serial) << 8 | u64::from(slot.key_reference());
    let mut card = SoftCard::yubikey5(identity, Some(seed));
    let mut piv = PivCard::select(&mut card).unwrap();
    piv.authenticate(&ManagementKey::factory_default()).unwrap();
    let public = piv.generate(slot, KeyAlgorithm::NistP256, pin, touch).unwrap();
    let slot_certificate = piv.attest(slot).unwrap();
    let f9_certificate = piv.attestation_certificate().unwrap().unwrap();
    Attested { slot_certificate, f9_certificate, public }
}

/// 9a, PIN once, touch always, on card SERIAL with firmware 5.4.3.
fn attest_default() -> Attested {
    attest_on(
        SERIAL,
        Version(5, 4, 3),
        PivSlot::Authentication,
        PinPolicy::Once,
        TouchPolicy::Always,
    )
}

fn software_root() -> Vec<u8> {
    keystation_softcard::piv::test_attestation_root_der()
}

/// A provisioner trusting the software card's root with `policy`, built-in claims.
fn provisioner(policy: AttestationPolicy) -> YubiKeyAttestationProvisioner {
    let claims = Claims::default().resolve().unwrap();
    YubiKeyAttestationProvisioner::new("yubikeys", vec![software_root()], policy, claims)
}

/// The policy every chain of `attest_default` passes.
fn strict_policy() -> AttestationPolicy {
    AttestationPolicy {
        min_firmware: Some(FirmwareVersion { major: 5, minor: 2, patch: 3 }),
        pin_policies: vec![PinPolicy::Once, PinPolicy::Always],
        touch_policies: vec![TouchPolicy::Always, TouchPolicy::Cached],
        slots: vec![PivSlot::Authentication, PivSlot::Signature],
        serials: vec![1, SERIAL],
    }
}

/// 2030-01-01: inside the software card's certificates (2024 to 9999).
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn request<'a>(a: &'a Attested, key: Option<&'a PublicKey>, operation: Operation) -> Request<'a> {
    Request {
        credential: Credential::Attestation {
            slot_certificate: &a.slot_certificate,
            intermediate: &a.f9_certificate,
        },
        operation,
        audience: "https://ca.example/1.0/sign-attested",
        subject_key: key,
    }
}

fn check(
    p: &YubiKeyAttestationProvisioner,
    a: &Attested,
    at: SystemTime,
) -> Result<Grant, AttestationRefusal> {
    p.check(&request(a, Some(&a.public), Operation::SignX509), &TrustedKeys::default(), at)
}

/// The refusal, which must carry `denial`, and whose reason must contain `words`; the
/// trait's answer must be the same denial.
fn refused(
    p: &YubiKeyAttestationProvisioner,
    r: &Request<'_>,
    keys: &TrustedKeys,
    at: SystemTime,
    denial: Denial,
    words: &str,
) -> String {
    let refusal = match p.check(r, keys, at) {
        Err(refusal) => refusal,
        Ok(grant) => panic!("granted {grant:?}, expected {denial:?} ({words})"),
    };
    assert_eq!(refusal.denial, denial, "{refusal}");
    assert!(refusal.reason.contains(words), "{words:?} not in {:?}", refusal.reason);
    let through_trait = Provisioner::authorize(p, r, keys, at);
    assert!(
        matches!(through_trait, Err(keystation_core::Error::Unauthorized(d)) if d == denial),
        "{through_trait:?}"
    );
    refusal.reason
}

#[test]
fn accepted_chain_grants_the_serial_as_subject_with_the_claims_lifetime() {
    let a = attest_default();
    let p = provisioner(strict_policy()).with_sans(vec!["{serial}.cards.example".into()]);
    assert_eq!(p.kind(), ProvisionerKind::YubiKeyAttestation);
    let grant = check(&p, &a, now()).unwrap();
    assert_eq!(grant.provisioner, "yubikeys");
    assert_eq!(grant.subject, "12345678");
    assert_eq!(grant.sans, ["12345678.cards.example"]);
    assert_eq!(grant.not_before, now());
    assert_eq!(grant.not_after.duration_since(grant.not_before).unwrap(), 24 * H);
    assert_eq!(grant.operations, [Operation::SignX509]);
    assert_eq!(grant.replay_id, None);

    // Through core's trait object, as the authority's registry holds it.
    let as_trait: &dyn Provisioner = &p;
    let r = request(&a, Some(&a.public), Operation::SignX509);
    assert_eq!(as_trait.authorize(&r, &TrustedKeys::default(), now()).unwrap(), grant);

    // No SAN unless configured; the default policy allows any card.
    let open = provisioner(AttestationPolicy::default());
    assert!(check(&open, &a, now()).unwrap().sans.is_empty());
}

#[test]
fn roots_come_from_the_provisioner_the_trusted_keys_or_yubico() {
    let a = attest_default();
    let r = request(&a, Some(&a.public), Operation::SignX509);
    let claims = Claims::default().resolve().unwrap();
    // No configured root: Yubico's roots, which never anchor the software card.
    let yubico =
        YubiKeyAttestationProvisioner::new("yk", vec![], AttestationPolicy::default(), claims);
    let reason = refused(
        &yubico,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::UntrustedChain,
        "no trusted root",
    );
    assert!(reason.contains("device (F9) certificate"), "{reason}");
    // The same provisioner with the software root handed in as trusted keys.
    let keys = TrustedKeys { certificates: vec![software_root()], ..TrustedKeys::default() };
    assert_eq!(yubico.check(&r, &keys, now()).unwrap().subject, "12345678");
}

#[test]
fn wrong_root_is_an_untrusted_chain() {
    let a = attest_default();
    // Yubico's real PIV root configured instead of the software card's.
    let yubico_root = keystation_x509::attestation::yubico_roots().remove(0);
    let claims = Claims::default().resolve().unwrap();
    let p = YubiKeyAttestationProvisioner::new("yk", vec![yubico_root], strict_policy(), claims);
    let r = request(&a, Some(&a.public), Operation::SignX509);
    refused(&p, &r, &TrustedKeys::default(), now(), Denial::UntrustedChain, "no trusted root");

    // The F9 certificate of another card under the software root does not sign this
    // card's attestation.
    let other = attest_on(
        99,
        Version(5, 4, 3),
        PivSlot::Authentication,
        PinPolicy::Once,
        TouchPolicy::Always,
    );
    let mixed = Attested {
        slot_certificate: a.slot_certificate.clone(),
        f9_certificate: other.f9_certificate,
        public: a.public.clone(),
    };
    let r = request(&mixed, Some(&mixed.public), Operation::SignX509);
    let p = provisioner(strict_policy());
    refused(&p, &r, &TrustedKeys::default(), now(), Denial::UntrustedChain, "signature");

    // A flipped bit in the attestation's signature.
    let mut broken = a.slot_certificate.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0x01;
    let tampered = Attested { slot_certificate: broken, ..attest_default() };
    let r = request(&tampered, Some(&tampered.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::UntrustedChain,
        "attestation certificate",
    );
}

#[test]
fn chains_outside_their_validity_are_expired_or_not_yet_valid() {
    let a = attest_default();
    let p = provisioner(strict_policy());
    let r = request(&a, Some(&a.public), Operation::SignX509);
    // The software card's certificates end at 9999-12-31T23:59:59Z.
    let after = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
    let reason = refused(&p, &r, &TrustedKeys::default(), after, Denial::Expired, "not valid at");
    assert!(reason.contains("10000-01-01") || reason.contains("valid 2024-01-01"), "{reason}");
    // ... and begin at 2024-01-01.
    let before = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let reason =
        refused(&p, &r, &TrustedKeys::default(), before, Denial::NotYetValid, "not valid at");
    assert!(reason.contains("2020-09-13"), "{reason}");
}

#[test]
fn firmware_below_the_minimum_is_refused() {
    let old = attest_on(
        SERIAL,
        Version(5, 2, 2),
        PivSlot::Authentication,
        PinPolicy::Once,
        TouchPolicy::Always,
    );
    let p = provisioner(strict_policy());
    let r = request(&old, Some(&old.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::PolicyViolation,
        "firmware 5.2.2 is below the minimum 5.2.3",
    );
    let exact = attest_on(
        SERIAL,
        Version(5, 2, 3),
        PivSlot::Authentication,
        PinPolicy::Once,
        TouchPolicy::Always,
    );
    assert!(check(&p, &exact, now()).is_ok());
}

#[test]
fn touch_policy_not_allowed_is_refused() {
    let never = attest_on(
        SERIAL,
        Version(5, 4, 3),
        PivSlot::Authentication,
        PinPolicy::Once,
        TouchPolicy::Never,
    );
    let p = provisioner(strict_policy());
    let r = request(&never, Some(&never.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::PolicyViolation,
        "touch policy never of slot 9a is not allowed (allowed: always, cached)",
    );
    // A card whose key says `always` is refused by a provisioner allowing only `cached`.
    let a = attest_default();
    let cached_only = provisioner(AttestationPolicy {
        touch_policies: vec![TouchPolicy::Cached],
        ..strict_policy()
    });
    let r = request(&a, Some(&a.public), Operation::SignX509);
    refused(
        &cached_only,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::PolicyViolation,
        "touch policy always",
    );
}

#[test]
fn pin_policy_not_allowed_is_refused() {
    let never = attest_on(
        SERIAL,
        Version(5, 4, 3),
        PivSlot::Authentication,
        PinPolicy::Never,
        TouchPolicy::Always,
    );
    let p = provisioner(strict_policy());
    let r = request(&never, Some(&never.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::PolicyViolation,
        "PIN policy never of slot 9a is not allowed (allowed: once, always)",
    );
}

#[test]
fn slot_not_allowed_is_refused() {
    let d = attest_on(
        SERIAL,
        Version(5, 4, 3),
        PivSlot::KeyManagement,
        PinPolicy::Once,
        TouchPolicy::Always,
    );
    let p = provisioner(strict_policy());
    let r = request(&d, Some(&d.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::PolicyViolation,
        "slot 9d is not allowed (allowed: 9a, 9c)",
    );
    let c = attest_on(
        SERIAL,
        Version(5, 4, 3),
        PivSlot::Signature,
        PinPolicy::Always,
        TouchPolicy::Cached,
    );
    assert!(check(&p, &c, now()).is_ok());
}

#[test]
fn serial_not_on_the_allow_list_is_refused() {
    let stranger = attest_on(
        10_000_001,
        Version(5, 4, 3),
        PivSlot::Authentication,
        PinPolicy::Once,
        TouchPolicy::Always,
    );
    let p = provisioner(strict_policy());
    let r = request(&stranger, Some(&stranger.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::PolicyViolation,
        "serial 10000001 is not on the allow-list",
    );
}

#[test]
fn subject_key_must_be_the_attested_key() {
    let a = attest_default();
    let other = attest_on(
        SERIAL,
        Version(5, 4, 3),
        PivSlot::Signature,
        PinPolicy::Once,
        TouchPolicy::Always,
    );
    assert_ne!(a.public, other.public);
    let p = provisioner(strict_policy());
    let r = request(&a, Some(&other.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::PolicyViolation,
        "is not the key attested in slot 9a",
    );
    let r = request(&a, None, Operation::SignX509);
    refused(&p, &r, &TrustedKeys::default(), now(), Denial::PolicyViolation, "no public key");
}

#[test]
fn only_x509_signing_is_allowed() {
    let a = attest_default();
    let p = provisioner(strict_policy());
    for operation in [
        Operation::RenewX509,
        Operation::RevokeX509,
        Operation::RekeyX509,
        Operation::SignSshUser,
        Operation::SignSshHost,
        Operation::RenewSsh,
        Operation::RekeySsh,
        Operation::RevokeSsh,
    ] {
        let r = request(&a, Some(&a.public), operation);
        refused(
            &p,
            &r,
            &TrustedKeys::default(),
            now(),
            Denial::OperationNotAllowed,
            "only signs X.509",
        );
    }
}

#[test]
fn tokens_and_garbage_are_malformed() {
    let a = attest_default();
    let p = provisioner(strict_policy());
    let token = Request {
        credential: Credential::Token("eyJhbGciOiJFUzI1NiJ9.e30.sig"),
        operation: Operation::SignX509,
        audience: "https://ca.example/1.0/sign",
        subject_key: Some(&a.public),
    };
    refused(&p, &token, &TrustedKeys::default(), now(), Denial::Malformed, "got a token");
    let garbage = Attested { slot_certificate: vec![0x30, 0x03, 1, 2, 3], ..attest_default() };
    let r = request(&garbage, Some(&garbage.public), Operation::SignX509);
    refused(
        &p,
        &r,
        &TrustedKeys::default(),
        now(),
        Denial::Malformed,
        "slot's attestation certificate does not parse",
    );
}

#[test]
fn json_configuration_with_the_software_root_accepts_the_card() {
    let a = attest_default();
    let json = serde_json_like(&keystation_softcard::piv::test_attestation_root_pem());
    let p = YubiKeyAttestationProvisioner::from_json(&json, &Claims::default()).unwrap();
    assert_eq!(p.roots(), [software_root()]);
    let grant = check(&p, &a, now()).unwrap();
    assert_eq!(grant.not_after.duration_since(grant.not_before).unwrap(), 2 * H);
    // A policy requiring touch `cached` refuses it.
    let strict = json.replace(r#""touchPolicies":["always"]"#, r#""touchPolicies":["cached"]"#);
    let p = YubiKeyAttestationProvisioner::from_json(&strict, &Claims::default()).unwrap();
    let refusal = check(&p, &a, now()).unwrap_err();
    assert_eq!(refusal.denial, Denial::PolicyViolation);
    assert_eq!(
        refusal.to_string(),
        "request violates provisioner policy: touch policy always of slot 9a is not allowed \
         (allowed: cached)"
    );
}

/// The configuration a user writes, with `root_pem` as the one root.
fn serde_json_like(root_pem: &str) -> String {
    let root = root_pem.replace('\n', "\\n");
    format!(
        r#"{{"type":"YubiKeyAttestation","name":"yk","roots":["{root}"],"minFirmware":"5.2.3",
            "pinPolicies":["once"],"touchPolicies":["always"],"slots":["9a"],"serials":[{SERIAL}],
            "claims":{{"defaultTLSCertDuration":"2h"}}}}"#
    )
}
