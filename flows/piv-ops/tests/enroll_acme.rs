//! `piv enroll --acme`'s flow on the software YubiKey in process, against the loopback ACME
//! server of keystation-acme-client's tests (it verifies every JWS and nonce), scripted
//! here to check device-attest-01 as an authority must: step's attestation object, the
//! slot's attestation chained through the `F9` certificate to the software card's root,
//! the attested serial equal to the order's permanent identifier, the card's signature
//! over the key authorization with the attested key; and at finalize, a CSR for the
//! attested key. The full command against `keystation authority serve` is
//! tests/acme_device_attest.rs in the root package.
#![cfg(feature = "enroll")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../acme-client/tests/support/acme_mock.rs"]
mod acme_mock;

use std::sync::{Arc, Mutex};

use acme_mock::{MockAcme, Refusal, Script};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_piv::PivCard;
use keystation_piv_ops::{Access, EnrollAuthority, EnrollOptions, Error, PivOperation};
use keystation_softcard::SoftCard;
use keystation_x509::{Certificate, CertificateOptions, CertificateRequest, DistinguishedName};
use serde_json::Value;

/// The software card's default serial.
const SERIAL: u32 = 10_000_001;

fn map_get<'a>(map: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    map.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// device-attest-01 checked as step-ca does, against `roots`; the attested key is kept
/// for finalize.
fn validate(
    roots: Vec<Vec<u8>>,
    attested: Arc<Mutex<Option<PublicKey>>>,
) -> impl Fn(&str, &Value, &str) -> Result<(), Refusal> {
    move |identifier, payload, key_authorization| {
        let refuse = |detail: String| Err(("badAttestationStatement".to_owned(), detail));
        let object = payload["attObj"].as_str().and_then(|a| URL_SAFE_NO_PAD.decode(a).ok());
        let Some(object) = object.and_then(|o| ciborium::from_reader::<Cbor, _>(&o[..]).ok())
        else {
            return refuse("attObj is not base64url CBOR".into());
        };
        if map_get(&object, "fmt").and_then(Cbor::as_text) != Some("step") {
            return refuse("fmt is not step".into());
        }
        let statement = map_get(&object, "attStmt").unwrap();
        assert_eq!(map_get(statement, "alg").and_then(Cbor::as_integer), Some((-7).into()));
        let x5c: Vec<Vec<u8>> = map_get(statement, "x5c")
            .and_then(Cbor::as_array)
            .unwrap()
            .iter()
            .map(|c| c.as_bytes().unwrap().clone())
            .collect();
        assert_eq!(x5c.len(), 2);
        let verified = match keystation_x509::attestation::verify_piv_attestation(
            &x5c[0],
            &x5c[1],
            &[],
            &roots,
        ) {
            Ok(verified) => verified,
            Err(e) => return refuse(format!("x5c is not valid: {e}")),
        };
        if verified.serial.map(|s| s.to_string()).as_deref() != Some(identifier) {
            return Err(("rejectedIdentifier".into(), "permanent identifier mismatch".into()));
        }
        // step's sig: a CBOR byte string holding the DER signature.
        let sig = map_get(statement, "sig").and_then(Cbor::as_bytes).unwrap();
        let der = ciborium::from_reader::<Cbor, _>(&sig[..]).unwrap().into_bytes().unwrap();
        let point = verified.public_key.point().unwrap();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        use p256::ecdsa::signature::Verifier as _;
        if key.verify(key_authorization.as_bytes(), &signature).is_err() {
            return refuse("failed to validate signature".into());
        }
        *attested.lock().unwrap() = Some(verified.public_key);
        Ok(())
    }
}

/// Issues for a CSR of the attested key, subject `CN=<serial>`, under a throwaway CA.
fn issue(
    attested: Arc<Mutex<Option<PublicKey>>>,
) -> impl Fn(&str, &[u8]) -> Result<String, Refusal> {
    let mut keygen =
        keystation_keygen::SoftKeyGen::new(Box::new(keystation_keygen::SeededRandom::from_u64(9)));
    let secret = keygen.generate_secret(KeyAlgorithm::NistP256).unwrap();
    let signer = Mutex::new(keystation_keygen::HostSigner::new(&secret).unwrap());
    let validity =
        keystation_x509::Validity { not_before: 1_700_000_000, not_after: 4_000_000_000 };
    let ca_der = keystation_x509::self_signed_certificate(
        &mut *signer.lock().unwrap(),
        &DistinguishedName::common_name("acme test CA"),
        &[1],
        validity,
        &CertificateOptions { ca: true, ..CertificateOptions::default() },
    )
    .unwrap();
    move |identifier, csr| {
        let bad = |detail: &str| Err(("badCSR".to_owned(), detail.to_owned()));
        keystation_x509::verify_csr(csr).unwrap();
        let request = CertificateRequest::from_der(csr).unwrap();
        let key = request.public_key().unwrap();
        if Some(&key) != attested.lock().unwrap().as_ref() {
            return bad("the CSR's key is not the key the device attested");
        }
        if request.subject() != format!("CN={identifier}") {
            return bad("unexpected subject");
        }
        let leaf = keystation_x509::issue_certificate(
            &mut *signer.lock().unwrap(),
            &ca_der,
            &key,
            &DistinguishedName::common_name(identifier),
            &[2, 7],
            validity,
            &CertificateOptions::default(),
        )
        .unwrap();
        Ok(keystation_x509::pem::encode("CERTIFICATE", &leaf)
            + &keystation_x509::pem::encode("CERTIFICATE", &ca_der))
    }
}

fn server(roots: Vec<Vec<u8>>) -> MockAcme {
    let attested = Arc::new(Mutex::new(None));
    let mut script =
        Script::new(Box::new(validate(roots, attested.clone())), Box::new(issue(attested)));
    script.authz_pending_polls = 1;
    script.order_processing_polls = 1;
    script.retry_after = Some("0".into());
    MockAcme::start(script)
}

fn options(dir: &tempfile::TempDir, server: &MockAcme, directory: String) -> EnrollOptions {
    let root = dir.path().join("root.pem");
    std::fs::write(&root, &server.root_pem).unwrap();
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "123456\n").unwrap();
    EnrollOptions {
        authority: EnrollAuthority::Acme { directory },
        root,
        slot: PivSlot::Authentication,
        algorithm: KeyAlgorithm::NistP256,
        pin_policy: PinPolicy::Always,
        touch_policy: TouchPolicy::Never,
        subject: None,
        access: Access { pin_file: Some(pin), management_key_file: None },
    }
}

fn slot(card: &mut SoftCard) -> (Option<Vec<u8>>, Option<PublicKey>) {
    let mut piv = PivCard::select(card).unwrap();
    let certificate = piv.read_certificate(PivSlot::Authentication).unwrap();
    let key = piv.public_key(PivSlot::Authentication).ok().flatten();
    (certificate, key)
}

#[test]
fn device_attest_01_enrolls_the_slot_and_a_refused_attestation_keeps_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let card_root = keystation_softcard::piv::test_attestation_root_der();
    let accepting = server(vec![card_root]);
    let mut card = SoftCard::yubikey5(Default::default(), Some(11));

    let enroll = options(&dir, &accepting, accepting.directory_url.clone());
    let mut out = Vec::new();
    keystation_piv_ops::run(&mut card, &PivOperation::Enroll(enroll.clone()), &mut out)
        .unwrap_or_else(|e| panic!("{}", keystation_core::describe_chain(&e)));
    let said = String::from_utf8(out).unwrap();
    assert!(
        said.contains(&format!(
            "Enrolled slot 9a with {} (ACME device-attest-01, permanent identifier {SERIAL})",
            accepting.directory_url
        )),
        "{said}"
    );
    assert!(said.contains("Issuer:           CN=acme test CA"), "{said}");
    let (written, key) = slot(&mut card);
    let written = written.expect("a certificate in 9a");
    let cert = Certificate::from_der(&written).unwrap();
    assert_eq!(cert.subject(), format!("CN={SERIAL}"));
    assert_eq!(Some(cert.public_key().unwrap()), key);
    // The whole order ran on one account: one newAccount, one newNonce.
    let seen = accepting.seen();
    assert_eq!(seen.iter().filter(|s| s.path == "/new-account").count(), 1);
    assert_eq!(seen.iter().filter(|s| s.method == "HEAD").count(), 1);
    assert!(seen.iter().any(|s| s.path == "/chall/1"), "{seen:#?}");

    // An authority trusting another attestation root refuses the attestation: the user
    // is told so, with the server's reason, and 9a keeps the certificate enrolled above.
    let other_root = rcgen::CertificateParams::default()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .der()
        .to_vec();
    let refusing = server(vec![other_root]);
    let refused = options(&dir, &refusing, refusing.directory_url.clone());
    let err = keystation_piv_ops::run(&mut card, &PivOperation::Enroll(refused), &mut Vec::new())
        .unwrap_err();
    let Error::Acme { what, source } = &err else { panic!("{err:?}") };
    assert!(what.contains("did not accept the attestation of slot 9a"), "{what}");
    assert!(what.contains("certificate is unchanged"), "{what}");
    assert_eq!(source.problem().and_then(|p| p.acme_error()), Some("badAttestationStatement"));
    let text = keystation_core::describe_chain(&err);
    assert!(text.contains("x5c is not valid"), "{text}");
    assert_eq!(slot(&mut card).0, Some(written.clone()), "the slot's certificate changed");

    // A server that does not answer stops the enrollment before the key is replaced.
    let key_before = slot(&mut card).1;
    let gone = format!("https://127.0.0.1:{}/acme/mock/directory", refusing.addr.port());
    drop(refusing);
    let stopped = options(&dir, &accepting, gone);
    let err = keystation_piv_ops::run(&mut card, &PivOperation::Enroll(stopped), &mut Vec::new())
        .unwrap_err();
    assert!(matches!(&err, Error::Acme { what, .. } if what.contains("not reachable")), "{err:?}");
    assert_eq!(slot(&mut card), (Some(written), key_before));
}

#[test]
fn a_key_that_cannot_sign_is_refused_before_the_card_or_server_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(vec![keystation_softcard::piv::test_attestation_root_der()]);
    let mut card = SoftCard::yubikey5(Default::default(), Some(12));
    let mut x25519 = options(&dir, &server, server.directory_url.clone());
    x25519.algorithm = KeyAlgorithm::X25519;
    let err = keystation_piv_ops::run(&mut card, &PivOperation::Enroll(x25519), &mut Vec::new())
        .unwrap_err();
    assert!(matches!(&err, Error::Usage(m) if m.contains("X25519) key cannot sign")), "{err:?}");
    assert!(server.seen().is_empty(), "{:#?}", server.seen());
}
