//! The ACME provisioner's `ca.json` object: defaults, round trip, refusals, and its place
//! among step-ca's provisioners (never routed tokens, never authorizes one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use keystation_acme::messages::ChallengeType;
use keystation_acme::{AcmeProvisioner, FACTORY};
use keystation_core::Provisioner;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::provisioner::{Credential, Denial, Operation, Request, TrustedKeys};
use keystation_provisioners::{
    Claims, ProvisionerContext, ProvisionerKind, StepProvisioner, TokenPeek,
    provisioner_from_json_with,
};
use serde_json::{Value, json};

const H: Duration = Duration::from_secs(3600);

fn root_pem() -> String {
    keystation_x509::pem::encode(
        "CERTIFICATE",
        &keystation_softcard::piv::test_attestation_root_der(),
    )
}

fn read(json: &Value) -> Result<AcmeProvisioner, String> {
    AcmeProvisioner::from_json(&json.to_string(), &ProvisionerContext::default())
        .map_err(|e| e.to_string())
}

#[test]
fn defaults_are_step_cas() {
    let p = read(&json!({"type":"ACME","name":"acme"})).unwrap();
    assert_eq!(p.name(), "acme");
    assert_eq!(p.kind(), ProvisionerKind::Acme);
    assert_eq!(
        p.challenges(),
        [ChallengeType::Http01, ChallengeType::Dns01, ChallengeType::TlsAlpn01]
    );
    assert_eq!(p.attestation_formats(), ["step"]);
    assert!(!p.require_eab() && !p.force_cn());
    // step-ca's built-in default TLS lifetime.
    assert_eq!(p.tls_lifetime(), 24 * H);
    assert!(p.attestation_policy().serials.is_empty());
    assert!(!p.directory_meta().external_account_required);
    // The type is matched case-insensitively, as step-ca does.
    assert!(read(&json!({"type":"acme","name":"a"})).is_ok());
}

#[test]
fn every_field_round_trips() {
    let config = json!({
        "type": "ACME", "name": "devices", "forceCN": true, "requireEAB": true,
        "termsOfService": "https://ca.example/tos", "website": "https://ca.example",
        "caaIdentities": ["ca.example"],
        "challenges": ["device-attest-01", "http-01"],
        "attestationFormats": ["step"],
        "attestationRoots": root_pem(),
        "minFirmware": "5.2.3", "pinPolicies": ["once", "always"],
        "touchPolicies": ["always"], "slots": ["9a", "9c"], "serials": [12345678],
        "claims": {"defaultTLSCertDuration": "8h0m0s", "maxTLSCertDuration": "12h0m0s"}
    });
    let p = read(&config).unwrap();
    assert_eq!(p.challenges(), [ChallengeType::DeviceAttest01, ChallengeType::Http01]);
    assert!(p.require_eab() && p.force_cn());
    assert_eq!(p.tls_lifetime(), 8 * H);
    assert_eq!(p.claims().tls.max, 12 * H);
    let policy = p.attestation_policy();
    assert_eq!(policy.pin_policies, [PinPolicy::Once, PinPolicy::Always]);
    assert_eq!(policy.touch_policies, [TouchPolicy::Always]);
    assert_eq!(policy.slots, [PivSlot::Authentication, PivSlot::Signature]);
    assert_eq!(policy.serials, [12_345_678]);
    let meta = p.directory_meta();
    assert_eq!(meta.terms_of_service.as_deref(), Some("https://ca.example/tos"));
    assert_eq!(meta.caa_identities, ["ca.example"]);
    assert!(meta.external_account_required);

    let written: Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(written, config);
    // Through the trait too (the authority's /provisioners listing).
    let listed: Value = serde_json::from_str(&StepProvisioner::to_json(&p)).unwrap();
    assert_eq!(listed, config);
}

#[test]
fn attestation_roots_may_be_base64_pem_as_step_ca_writes_them() {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(root_pem());
    let p = read(&json!({"type":"ACME","name":"a","attestationRoots":encoded})).unwrap();
    assert_eq!(p.name(), "a");
    let e = read(&json!({"type":"ACME","name":"a","attestationRoots":"bm90IHBlbQ=="})).unwrap_err();
    assert!(e.contains("attestationRoots"), "{e}");
}

#[test]
fn bad_configurations_are_refused_with_the_field_named() {
    let cases = [
        (json!({"type":"ACME","name":"a","challenges":["http-02"]}), "challenges"),
        (json!({"type":"ACME","name":"a","challenges":[]}), "challenges"),
        (json!({"type":"ACME","name":"a","attestationFormats":["apple"]}), "apple"),
        (json!({"type":"ACME","name":"a","attestationFormats":["step","tpm"]}), "tpm"),
        (
            json!({"type":"ACME","name":"a","challenges":["device-attest-01"],"attestationFormats":[]}),
            "attestationFormats",
        ),
        (json!({"type":"ACME","name":"a","pinPolicies":["sometimes"]}), "pinPolicies"),
        (json!({"type":"ACME","name":"a","slots":["f9"]}), "slots"),
        (json!({"type":"ACME","name":"a","minFirmware":"5"}), "minFirmware"),
        (
            json!({"type":"ACME","name":"a","attestationRoots":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            "roots",
        ),
        (json!({"type":"ACME","name":"a","requireEab":true}), "unknown field"),
        (json!({"type":"ACME","name":"a","options":{"x509":{"template":"{}"}}}), "templates"),
        (json!({"type":"ACME","name":"a","claims":{"defaultTLSCertDuration":"-1h"}}), "claims"),
        (json!({"type":"JWK","name":"a"}), "ACME"),
        (json!({"type":"ACME","name":" "}), "name"),
        (json!({"type":"ACME"}), "name"),
    ];
    for (config, words) in cases {
        let e = read(&config).map(|_| ()).unwrap_err();
        assert!(e.contains(words), "{config}: {words:?} not in {e:?}");
    }
}

#[test]
fn the_factory_builds_it_and_it_never_authorizes_tokens() {
    let context = ProvisionerContext::with_claims(Claims {
        default_tls_duration: Some(2 * H),
        ..Claims::default()
    });
    let p = provisioner_from_json_with(r#"{"type":"ACME","name":"acme"}"#, &context, &[FACTORY])
        .unwrap();
    assert_eq!(p.kind(), ProvisionerKind::Acme);
    // The authority's claims are layered under the provisioner's.
    assert_eq!(p.effective_claims().unwrap().tls.default, 2 * H);
    // A JWT whose `iss` is the provisioner's name: a JWK provisioner would route it.
    let peek = TokenPeek::of("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJhY21lIn0.c2ln").unwrap();
    assert_eq!(peek.iss.as_deref(), Some("acme"));
    assert!(!p.routes(&peek));
    let request = Request {
        credential: Credential::Token("eyJ.eyJ.sig"),
        operation: Operation::SignX509,
        audience: "https://ca.example/1.0/sign",
        subject_key: None,
    };
    let denied = p.authorize(&request, &TrustedKeys::default(), SystemTime::now());
    assert!(
        matches!(denied, Err(keystation_core::Error::Unauthorized(Denial::OperationNotAllowed))),
        "{denied:?}"
    );
}
