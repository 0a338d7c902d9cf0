//! External account binding (RFC 8555 §7.3.4): accepted, and refused for each reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use keystation_acme::messages::{FlattenedJws, NewAccount};
use keystation_acme::{Error, ProblemType, parse_request, sign_eab, sign_request, verify_eab};
use keystation_jose::{Algorithm, Jwk, PrivateJwk};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const URL: &str = "https://ca.example/acme/acme/new-account";
const KID: &str = "kid-1";
const HMAC_KEY: &[u8] = b"a 32-byte MAC key for the tests.";

fn lookup(kid: &str) -> Option<Zeroizing<Vec<u8>>> {
    (kid == KID).then(|| Zeroizing::new(HMAC_KEY.to_vec()))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A binding with any header and payload, MACed with `alg` under `key`.
fn binding(header: &Value, payload: &[u8], key: &[u8], alg: &str) -> FlattenedJws {
    let protected = b64(header.to_string().as_bytes());
    let payload = b64(payload);
    let input = format!("{protected}.{payload}");
    let tag = match alg {
        "HS384" => {
            let mut m = hmac::Hmac::<sha2::Sha384>::new_from_slice(key).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    FlattenedJws { protected, payload, signature: b64(&tag) }
}

fn account_key() -> (PrivateJwk, Jwk) {
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let public = key.public().clone();
    (key, public)
}

#[test]
fn a_binding_made_by_sign_eab_verifies_inside_new_account() {
    let (key, jwk) = account_key();
    let eab = sign_eab(KID, HMAC_KEY, &jwk, URL).unwrap();
    let payload = NewAccount {
        terms_of_service_agreed: Some(true),
        external_account_binding: Some(eab),
        ..NewAccount::default()
    };
    let body =
        sign_request(&key, None, "nonce-1", URL, &serde_json::to_vec(&payload).unwrap()).unwrap();
    // What the server does: verify the outer JWS, read the payload, verify the binding
    // against the outer jwk.
    let verified = parse_request(&body).unwrap().verify_with_embedded_key().unwrap();
    let account: NewAccount = verified.payload_json().unwrap();
    let binding = account.external_account_binding.unwrap();
    assert_eq!(verify_eab(&binding, verified.jwk().unwrap(), URL, lookup).unwrap(), KID);
    // The binding is a flattened JWS with the RFC's header.
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&binding.protected).unwrap()).unwrap();
    assert_eq!(header, json!({"alg":"HS256","kid":KID,"url":URL}));
}

#[test]
fn hs384_bindings_and_payloads_with_extra_members_verify() {
    let (_, jwk) = account_key();
    let mut payload = jwk.to_json_value();
    payload["kid"] = "client-chosen".into();
    let header = json!({"alg":"HS384","kid":KID,"url":URL});
    let b = binding(&header, payload.to_string().as_bytes(), HMAC_KEY, "HS384");
    assert_eq!(verify_eab(&b, &jwk, URL, lookup).unwrap(), KID);
}

fn refusal(b: &FlattenedJws, jwk: &Jwk) -> Error {
    match verify_eab(b, jwk, URL, lookup) {
        Ok(kid) => panic!("accepted for {kid}"),
        Err(e) => e,
    }
}

#[test]
fn wrong_mac_url_payload_or_kid_are_unauthorized() {
    let (_, jwk) = account_key();
    let (_, other_jwk) = account_key();
    let payload = jwk.to_json().into_bytes();
    let good_header = json!({"alg":"HS256","kid":KID,"url":URL});

    let wrong_mac = binding(&good_header, &payload, b"another key", "HS256");
    let wrong_url = binding(
        &json!({"alg":"HS256","kid":KID,"url":"https://ca.example/acme/other/new-account"}),
        &payload,
        HMAC_KEY,
        "HS256",
    );
    let other_key = binding(&good_header, other_jwk.to_json().as_bytes(), HMAC_KEY, "HS256");
    let unknown_kid =
        binding(&json!({"alg":"HS256","kid":"kid-2","url":URL}), &payload, HMAC_KEY, "HS256");
    let with_nonce = binding(
        &json!({"alg":"HS256","kid":KID,"url":URL,"nonce":"n"}),
        &payload,
        HMAC_KEY,
        "HS256",
    );
    let no_kid = binding(&json!({"alg":"HS256","url":URL}), &payload, HMAC_KEY, "HS256");
    let signed_alg =
        binding(&json!({"alg":"ES256","kid":KID,"url":URL}), &payload, HMAC_KEY, "HS256");
    let none_alg = binding(&json!({"alg":"none","kid":KID,"url":URL}), &payload, HMAC_KEY, "HS256");
    for (name, b, words) in [
        ("wrong MAC", &wrong_mac, "MAC"),
        ("wrong url", &wrong_url, "url"),
        ("another key", &other_key, "account's key"),
        ("unknown kid", &unknown_kid, "unknown key ID"),
        ("nonce", &with_nonce, "nonce"),
        ("no kid", &no_kid, "kid"),
        ("ES256", &signed_alg, "alg"),
        ("none", &none_alg, "alg"),
    ] {
        let e = refusal(b, &jwk);
        assert!(matches!(e, Error::ExternalAccountBinding(_)), "{name}: {e:?}");
        assert_eq!(e.problem_type(), ProblemType::Unauthorized, "{name}");
        assert!(e.to_string().contains(words), "{name}: {words:?} not in {e}");
    }
    // A tampered payload (the MAC no longer verifies).
    let mut tampered = binding(&good_header, &payload, HMAC_KEY, "HS256");
    tampered.payload = b64(other_jwk.to_json().as_bytes());
    assert!(refusal(&tampered, &jwk).to_string().contains("MAC"));
}

#[test]
fn malformed_bindings_are_malformed() {
    let (_, jwk) = account_key();
    let good = sign_eab(KID, HMAC_KEY, &jwk, URL).unwrap();
    let header = json!({"alg":"HS256","kid":KID,"url":URL});
    let not_a_key = binding(&header, br#"{"kty":"EC"}"#, HMAC_KEY, "HS256");
    assert!(matches!(refusal(&not_a_key, &jwk), Error::ExternalAccountBinding(_)));
    let array_payload = binding(&header, b"[]", HMAC_KEY, "HS256");
    assert!(matches!(refusal(&array_payload, &jwk), Error::Malformed { .. }));
    let mut padded = good.clone();
    padded.signature.push('=');
    assert!(matches!(refusal(&padded, &jwk), Error::Base64 { .. }));
    let mut not_json = good.clone();
    not_json.protected = b64(b"HS256");
    assert_eq!(refusal(&not_json, &jwk).problem_type(), ProblemType::Malformed);
    let mut huge = good;
    huge.payload = "A".repeat(9000);
    assert!(matches!(refusal(&huge, &jwk), Error::TooLarge { .. }));
}
