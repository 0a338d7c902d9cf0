//! device-attest-01 with the `step` format on real chains: keys generated and attested by
//! the software YubiKey (keystation-softcard) through keystation's PIV client, the key
//! authorization signed by the card, checked against the software card's attestation root
//! configured as `attestationRoots`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keystation_acme::attestation::{MAX_ATTESTATION_OBJECT_LEN, cose};
use keystation_acme::messages::DeviceAttestPayload;
use keystation_acme::{
    AcmeProvisioner, AttestationStatement, Error, ProblemType, parse_attestation_object,
    spki_fingerprint, step_attestation_object,
};
use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_piv::{ManagementKey, PivCard};
use keystation_provisioners::ProvisionerContext;
use keystation_softcard::{Identity, SoftCard, Version};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SERIAL: u32 = 12_345_678;
const KEY_AUTH: &str = "DGyRejmCefe7v4NfDGDKfA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/// What a client sends, and the key the card attested.
struct Device {
    statement: Vec<u8>,
    public: PublicKey,
    x5c: Vec<Vec<u8>>,
}

/// A software YubiKey (serial SERIAL, firmware 5.7.1) generates a key of `algorithm` in
/// 9a (PIN never, touch never), attests it and signs `key_auth` with it, as the client
/// of device-attest-01 does.
fn device(algorithm: KeyAlgorithm, key_auth: &str) -> Device {
    let identity = Identity { serial: SERIAL, version: Version(5, 7, 1), ..Identity::default() };
    let mut card = SoftCard::yubikey5(identity, Some(7));
    let mut piv = PivCard::select(&mut card).unwrap();
    piv.authenticate(&ManagementKey::factory_default()).unwrap();
    let slot = PivSlot::Authentication;
    let public = piv.generate(slot, algorithm, PinPolicy::Never, TouchPolicy::Never).unwrap();
    let x5c = vec![piv.attest(slot).unwrap(), piv.attestation_certificate().unwrap().unwrap()];
    let (alg, sig) = match algorithm {
        KeyAlgorithm::Ed25519 => {
            (cose::EDDSA, piv.sign_ed25519(slot, key_auth.as_bytes()).unwrap())
        }
        _ => {
            let digest = Sha256::digest(key_auth.as_bytes());
            (cose::ES256, piv.sign_digest(slot, algorithm, &digest).unwrap())
        }
    };
    Device { statement: step_attestation_object(alg, &sig, &x5c), public, x5c }
}

fn root_pem() -> String {
    keystation_x509::pem::encode(
        "CERTIFICATE",
        &keystation_softcard::piv::test_attestation_root_der(),
    )
}

fn provisioner(extra: Value) -> AcmeProvisioner {
    let mut config = json!({
        "type": "ACME", "name": "devices",
        "challenges": ["device-attest-01"],
        "attestationRoots": root_pem(),
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    AcmeProvisioner::from_json(&config.to_string(), &ProvisionerContext::default()).unwrap()
}

/// 2030-01-01: inside the software card's certificates.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_456_000)
}

fn verify(p: &AcmeProvisioner, d: &Device, key_auth: &str, serial: &str) -> Result<String, Error> {
    let statement = parse_attestation_object(&d.statement)?;
    p.verify_device_attestation(&statement, key_auth, serial, now()).map(|a| a.serial)
}

#[test]
fn a_p256_attestation_from_the_card_is_accepted_and_binds_its_key() {
    let d = device(KeyAlgorithm::NistP256, KEY_AUTH);
    // Through the payload, as the server receives it.
    let payload =
        json!({"attObj": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.statement)});
    let payload = DeviceAttestPayload::from_json(payload.to_string().as_bytes()).unwrap();
    let statement = parse_attestation_object(&payload.att_obj_bytes().unwrap()).unwrap();
    assert_eq!((statement.format.as_str(), statement.alg), ("step", -7));
    assert_eq!(statement.x5c, d.x5c);

    let p = provisioner(json!({"minFirmware": "5.2.3", "pinPolicies": ["never"],
        "touchPolicies": ["never"], "slots": ["9a"], "serials": [SERIAL]}));
    let attested = p.verify_device_attestation(&statement, KEY_AUTH, "12345678", now()).unwrap();
    assert_eq!(attested.serial, "12345678");
    assert_eq!(attested.public_key, d.public);
    // step-ca's fingerprint, computed here from the point: SHA-256 of the BIT STRING's
    // contents, standard base64 with padding.
    let point = d.public.point().unwrap();
    let expected = format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(point))
    );
    assert_eq!(attested.spki_fingerprint, expected);
    assert_eq!(spki_fingerprint(&d.public), expected);
}

#[test]
fn an_ed25519_attestation_signs_the_raw_key_authorization() {
    let d = device(KeyAlgorithm::Ed25519, KEY_AUTH);
    let p = provisioner(json!({}));
    assert_eq!(verify(&p, &d, KEY_AUTH, "12345678").unwrap(), "12345678");
    assert!(matches!(
        verify(&p, &d, "other.key-authorization", "12345678"),
        Err(Error::BadAttestationStatement(_))
    ));
}

#[test]
fn an_unknown_root_is_refused() {
    let d = device(KeyAlgorithm::NistP256, KEY_AUTH);
    // No attestationRoots: Yubico's roots, which did not sign the software card's F9.
    let yubico = AcmeProvisioner::from_json(
        r#"{"type":"ACME","name":"y","challenges":["device-attest-01"]}"#,
        &ProvisionerContext::default(),
    )
    .unwrap();
    let result = verify(&yubico, &d, KEY_AUTH, "12345678");
    let Err(e) = result else { panic!("accepted") };
    assert_eq!(e.problem_type(), ProblemType::BadAttestationStatement, "{e}");
    assert!(e.to_string().contains("chain"), "{e}");
}

#[test]
fn a_signature_over_another_key_authorization_is_refused() {
    let d = device(KeyAlgorithm::NistP256, "someone-elses-token.thumbprint");
    let result = verify(&provisioner(json!({})), &d, KEY_AUTH, "12345678");
    let Err(Error::BadAttestationStatement(reason)) = result else { panic!("{result:?}") };
    assert!(reason.contains("sig"), "{reason}");
    // The right signature under the wrong COSE algorithm.
    let good = device(KeyAlgorithm::NistP256, KEY_AUTH);
    let mut statement = parse_attestation_object(&good.statement).unwrap();
    statement.alg = cose::EDDSA;
    let p = provisioner(json!({}));
    let result = p.verify_device_attestation(&statement, KEY_AUTH, "12345678", now());
    assert!(matches!(result, Err(Error::BadAttestationStatement(_))), "{result:?}");
    statement.alg = -35;
    let result = p.verify_device_attestation(&statement, KEY_AUTH, "12345678", now());
    assert!(matches!(result, Err(Error::BadAttestationStatement(_))), "{result:?}");
}

#[test]
fn another_serial_than_the_identifier_is_a_rejected_identifier() {
    let d = device(KeyAlgorithm::NistP256, KEY_AUTH);
    let result = verify(&provisioner(json!({})), &d, KEY_AUTH, "87654321");
    assert!(
        matches!(&result, Err(Error::SerialMismatch { attested, identifier })
            if attested == "12345678" && identifier == "87654321"),
        "{result:?}"
    );
    assert_eq!(result.unwrap_err().problem_type(), ProblemType::RejectedIdentifier);
}

#[test]
fn the_yubikey_policy_applies() {
    let d = device(KeyAlgorithm::NistP256, KEY_AUTH);
    for (policy, words) in [
        (json!({"pinPolicies": ["always"]}), "PIN policy"),
        (json!({"touchPolicies": ["always", "cached"]}), "touch policy"),
        (json!({"slots": ["9c"]}), "slot 9a"),
        (json!({"serials": [1, 2]}), "allow-list"),
        (json!({"minFirmware": "5.7.2"}), "firmware"),
    ] {
        let result = verify(&provisioner(policy.clone()), &d, KEY_AUTH, "12345678");
        let Err(Error::BadAttestationStatement(reason)) = result else {
            panic!("{policy}: {result:?}")
        };
        assert!(reason.contains(words), "{policy}: {words:?} not in {reason:?}");
    }
}

#[test]
fn a_chain_out_of_order_or_out_of_time_is_refused() {
    let d = device(KeyAlgorithm::NistP256, KEY_AUTH);
    let p = provisioner(json!({}));
    let mut statement = parse_attestation_object(&d.statement).unwrap();
    statement.x5c.swap(0, 1);
    let result = p.verify_device_attestation(&statement, KEY_AUTH, "12345678", now());
    assert!(matches!(result, Err(Error::BadAttestationStatement(_))), "{result:?}");
    let statement = parse_attestation_object(&d.statement).unwrap();
    let long_ago = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let result = p.verify_device_attestation(&statement, KEY_AUTH, "12345678", long_ago);
    assert!(matches!(result, Err(Error::BadAttestationStatement(_))), "{result:?}");
}

fn cbor(value: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

#[test]
fn malformed_attestation_objects_are_refused() {
    use ciborium::Value as C;
    let t = |s: &str| C::Text(s.into());
    let cert = C::Bytes(vec![0x30, 0x00]);
    let statement =
        |alg: C, sig: C, x5c: C| C::Map(vec![(t("alg"), alg), (t("sig"), sig), (t("x5c"), x5c)]);
    let object = |fmt: C, stmt: C| C::Map(vec![(t("fmt"), fmt), (t("attStmt"), stmt)]);
    // step's sig: the signature's CBOR byte string, carried as a byte string.
    let sig = C::Bytes(cbor(&C::Bytes(vec![1])));
    let good =
        statement(C::Integer((-7).into()), sig.clone(), C::Array(vec![cert.clone(), cert.clone()]));
    let parsed = parse_attestation_object(&cbor(&object(t("step"), good.clone()))).unwrap();
    assert_eq!(
        parsed,
        AttestationStatement {
            format: "step".into(),
            alg: -7,
            sig: vec![1],
            x5c: vec![vec![0x30, 0]; 2]
        }
    );

    let mut trailing = cbor(&object(t("step"), good.clone()));
    trailing.push(0);
    let duplicate =
        C::Map(vec![(t("fmt"), t("step")), (t("fmt"), t("step")), (t("attStmt"), good.clone())]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("not CBOR", b"{\"fmt\":\"step\"}".to_vec()),
        ("truncated", cbor(&object(t("step"), good.clone()))[..20].to_vec()),
        ("trailing", trailing),
        ("array", cbor(&C::Array(vec![t("step")]))),
        ("duplicate", cbor(&duplicate)),
        ("apple", cbor(&object(t("apple"), good.clone()))),
        ("fmt bytes", cbor(&object(C::Bytes(b"step".to_vec()), good.clone()))),
        ("no attStmt", cbor(&C::Map(vec![(t("fmt"), t("step"))]))),
        (
            "sig not CBOR inside",
            cbor(&object(
                t("step"),
                statement(
                    C::Integer((-7).into()),
                    C::Bytes(vec![0xff, 1]),
                    C::Array(vec![cert.clone(), cert.clone()]),
                ),
            )),
        ),
        (
            "sig CBOR text inside",
            cbor(&object(
                t("step"),
                statement(
                    C::Integer((-7).into()),
                    C::Bytes(cbor(&t("sig"))),
                    C::Array(vec![cert.clone(), cert.clone()]),
                ),
            )),
        ),
        ("attStmt array", cbor(&object(t("step"), C::Array(vec![])))),
        (
            "alg text",
            cbor(&object(
                t("step"),
                statement(
                    t("ES256"),
                    C::Bytes(vec![1]),
                    C::Array(vec![cert.clone(), cert.clone()]),
                ),
            )),
        ),
        (
            "alg huge",
            cbor(&object(
                t("step"),
                statement(
                    C::Integer(u64::MAX.into()),
                    C::Bytes(vec![1]),
                    C::Array(vec![cert.clone(), cert.clone()]),
                ),
            )),
        ),
        (
            "sig empty",
            cbor(&object(
                t("step"),
                statement(
                    C::Integer((-7).into()),
                    C::Bytes(vec![]),
                    C::Array(vec![cert.clone(), cert.clone()]),
                ),
            )),
        ),
        (
            "one cert",
            cbor(&object(
                t("step"),
                statement(C::Integer((-7).into()), C::Bytes(vec![1]), C::Array(vec![cert.clone()])),
            )),
        ),
        (
            "seven certs",
            cbor(&object(
                t("step"),
                statement(
                    C::Integer((-7).into()),
                    C::Bytes(vec![1]),
                    C::Array(vec![cert.clone(); 7]),
                ),
            )),
        ),
        (
            "cert text",
            cbor(&object(
                t("step"),
                statement(
                    C::Integer((-7).into()),
                    C::Bytes(vec![1]),
                    C::Array(vec![cert.clone(), t("x")]),
                ),
            )),
        ),
        ("integer key", cbor(&C::Map(vec![(C::Integer(1.into()), t("step"))]))),
        ("deep", vec![0x81; 64]),
        ("too long", vec![0xa0; MAX_ATTESTATION_OBJECT_LEN + 1]),
    ];
    for (name, bytes) in cases {
        let result = parse_attestation_object(&bytes);
        let Err(e) = result else { panic!("{name}: accepted {result:?}") };
        assert!(
            matches!(e, Error::BadAttestationStatement(_) | Error::TooLarge { .. }),
            "{name}: {e:?}"
        );
    }
    // Certificates that do not parse reach the verifier, which refuses them.
    let p = provisioner(json!({}));
    let result = p.verify_device_attestation(&parsed, KEY_AUTH, "12345678", now());
    assert!(matches!(result, Err(Error::BadAttestationStatement(_))), "{result:?}");
}
