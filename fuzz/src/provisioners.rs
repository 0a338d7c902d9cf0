//! Targets for `keystation-provisioners`: the YubiKey attestation provisioner's
//! `authorize` on arbitrary certificate pairs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_provisioners::{AttestationPolicy, Claims, YubiKeyAttestationProvisioner};
use keystation_x509::Certificate;
use keystation_x509::attestation::{FirmwareVersion, verify_piv_attestation_at, yubico_roots};

/// A fixed "now" inside the software card's certificates' validity (2025-10-09).
const NOW: u64 = 1_760_000_000;

/// [`YubiKeyAttestationProvisioner::check`] and `authorize` on a slot certificate and an
/// `F9` certificate from the input.
///
/// Input layout: byte 0 holds flags — bits 0–1 the operation (sign, renew, SSH user
/// sign, revoke), bit 2 trusts the software card's attestation root (else Yubico's, the
/// default), bit 3 presents the slot certificate's own key as the CSR's key (else none),
/// bit 4 a strict policy (firmware 5.2.3, PIN once/always, touch always/cached, slots
/// 9a/9c, two serials), bit 7: the next 8 bytes are "now", big-endian seconds; then the
/// two certificates, each a 2-byte big-endian length and that many bytes.
///
/// Whatever the input: the two entry points agree, a refusal says why, and a grant is
/// only for a chain that verifies at "now" to a trusted root, for the X.509 signing
/// operation, for the attested key, with the serial as subject and the claims' lifetime,
/// within the policy.
pub fn attestation_chain(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let mut now = NOW;
    if flags & 0x80 != 0 {
        let Some((time, after)) = rest.split_first_chunk::<8>() else { return };
        now = u64::from_be_bytes(*time) % 400_000_000_000;
        rest = after;
    }
    let mut take = || -> Vec<u8> {
        let Some(([high, low], after)) = rest.split_first_chunk::<2>() else { return Vec::new() };
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(after.len());
        let (der, after) = after.split_at(length);
        rest = after;
        der.to_vec()
    };
    let slot_certificate = take();
    let f9_certificate = take();

    let operation =
        [Operation::SignX509, Operation::RenewX509, Operation::SignSshUser, Operation::RevokeX509]
            [usize::from(flags & 3)];
    let roots = if flags & 0x04 != 0 {
        vec![keystation_softcard::piv::test_attestation_root_der()]
    } else {
        Vec::new()
    };
    let subject_key = (flags & 0x08 != 0)
        .then(|| Certificate::from_der(&slot_certificate).and_then(|c| c.public_key()).ok())
        .flatten();
    let strict = flags & 0x10 != 0;
    let policy = if strict {
        AttestationPolicy {
            min_firmware: Some(FirmwareVersion { major: 5, minor: 2, patch: 3 }),
            pin_policies: vec![PinPolicy::Once, PinPolicy::Always],
            touch_policies: vec![TouchPolicy::Always, TouchPolicy::Cached],
            slots: vec![PivSlot::Authentication, PivSlot::Signature],
            serials: vec![10_000_001, 12_345_678],
        }
    } else {
        AttestationPolicy::default()
    };
    let claims = Claims::default().resolve().expect("built-in claims resolve");
    let provisioner = YubiKeyAttestationProvisioner::new("fuzz", roots.clone(), policy, claims);
    let request = Request {
        credential: Credential::Attestation {
            slot_certificate: &slot_certificate,
            intermediate: &f9_certificate,
        },
        operation,
        audience: "https://ca.example/1.0/sign-attested",
        subject_key: subject_key.as_ref(),
    };
    let at = UNIX_EPOCH + Duration::from_secs(now);
    let checked = provisioner.check(&request, &TrustedKeys::default(), at);
    let authorized = provisioner.authorize(&request, &TrustedKeys::default(), at);
    match (&checked, &authorized) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "check and authorize grant the same"),
        (Err(refusal), Err(keystation_core::Error::Unauthorized(denial))) => {
            assert_eq!(refusal.denial, *denial, "check and authorize refuse alike");
            assert!(!refusal.reason.is_empty(), "a refusal says why");
        }
        _ => panic!("check {checked:?} and authorize {authorized:?} disagree"),
    }
    let Ok(grant) = checked else { return };

    assert_eq!(operation, Operation::SignX509, "only X.509 signing is granted");
    let anchors = if roots.is_empty() { yubico_roots() } else { roots };
    let now = i64::try_from(now).expect("bounded above");
    let verified =
        verify_piv_attestation_at(&slot_certificate, &f9_certificate, &[], &anchors, now)
            .expect("a granted chain verifies");
    assert!(verified.root.is_valid_at(now), "the root is valid too");
    assert_eq!(subject_key.as_ref(), Some(&verified.public_key), "the attested key");
    let serial = verified.serial.expect("a granted attestation binds a serial");
    assert_eq!(grant.subject, serial.to_string(), "the serial is the subject");
    assert!(grant.sans.is_empty(), "no SAN configured");
    assert_eq!(grant.not_before, at);
    assert_eq!(grant.not_after.duration_since(at).ok(), Some(claims.tls.default));
    assert_eq!(grant.operations, [Operation::SignX509]);
    assert_eq!(grant.replay_id, None);
    assert_ne!(verified.slot, PivSlot::Attestation, "F9 is never certified");
    if strict {
        assert!([PivSlot::Authentication, PivSlot::Signature].contains(&verified.slot));
        assert!([10_000_001, 12_345_678].contains(&serial));
        assert!(verified.firmware >= Some(FirmwareVersion { major: 5, minor: 2, patch: 3 }));
        assert!(matches!(verified.pin_policy(), Some(PinPolicy::Once | PinPolicy::Always)));
        assert!(matches!(verified.touch_policy(), Some(TouchPolicy::Always | TouchPolicy::Cached)));
    }
    let _: SystemTime = grant.not_after;
}
