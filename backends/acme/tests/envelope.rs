//! The request envelope (RFC 8555 §6.2): what is accepted, what is refused, and the
//! problem type each refusal maps to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keystation_acme::messages::{KeyChange, NewAccount};
use keystation_acme::{
    Error, KeyRef, MAX_REQUEST_LEN, ProblemType, parse_request, sign_request, verify_key_change,
};
use keystation_jose::{Algorithm, Jwk, PrivateJwk};
use serde_json::{Value, json};

const URL: &str = "https://ca.example/acme/acme/new-account";
const NONCE: &str = "b2aVXkWhLGTpG1CAmVsQ5A";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key members only (no kid/alg/use), as clients put them in `jwk`.
fn public_jwk(key: &PrivateJwk) -> Value {
    Jwk::from_public_key(key.public().public_key().clone()).unwrap().to_json_value()
}

/// A body with `header` as the protected header, signed by `key` (whatever the header says).
fn body_with(key: &PrivateJwk, header: &Value, payload: &[u8]) -> Vec<u8> {
    let protected = b64(header.to_string().as_bytes());
    let payload = b64(payload);
    let signature = key.sign(format!("{protected}.{payload}").as_bytes()).unwrap();
    json!({"protected": protected, "payload": payload, "signature": b64(&signature)})
        .to_string()
        .into_bytes()
}

fn problem(result: Result<impl std::fmt::Debug, Error>) -> ProblemType {
    match result {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e.problem_type(),
    }
}

#[test]
fn jwk_requests_verify_with_the_embedded_key_for_every_accepted_algorithm() {
    for alg in [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa, Algorithm::Rs256] {
        let key = PrivateJwk::generate(alg).unwrap();
        let payload = br#"{"termsOfServiceAgreed":true,"contact":["mailto:a@example.com"]}"#;
        let body = sign_request(&key, None, NONCE, URL, payload).unwrap();
        let request = parse_request(&body).unwrap();
        let header = request.protected();
        assert_eq!((header.alg, header.nonce.as_str(), header.url.as_str()), (alg, NONCE, URL));
        let KeyRef::Jwk(jwk) = &header.key else { panic!("{:?}", header.key) };
        assert_eq!(jwk.public_key(), key.public().public_key());
        let verified = request.verify_with_embedded_key().unwrap();
        assert!(!verified.is_post_as_get());
        let account: NewAccount = verified.payload_json().unwrap();
        assert_eq!(account.terms_of_service_agreed, Some(true));
        assert_eq!(account.contact, ["mailto:a@example.com"]);
        assert_eq!(verified.jwk().unwrap().public_key(), key.public().public_key());
        assert!(verified.account_url().is_err());
    }
}

#[test]
fn kid_requests_verify_with_the_account_key_only() {
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let kid = "https://ca.example/acme/acme/account/abc";
    let body = sign_request(&key, Some(kid), NONCE, URL, b"").unwrap();
    let request = parse_request(&body).unwrap();
    assert_eq!(request.protected().key, KeyRef::Kid(kid.into()));
    // POST-as-GET: the payload is the empty string (RFC 8555 §6.3).
    let verified = request.verify(key.public()).unwrap();
    assert!(verified.is_post_as_get());
    assert_eq!(verified.account_url().unwrap(), kid);
    assert!(verified.payload_json::<NewAccount>().is_err());
    // A kid request has no key of its own to verify with.
    assert!(matches!(request.verify_with_embedded_key(), Err(Error::WrongKeyChoice { .. })));
    // Another P-256 key: the signature does not verify.
    let other = PrivateJwk::generate(Algorithm::Es256).unwrap();
    assert!(matches!(request.verify(other.public()), Err(Error::BadSignature)));
    assert_eq!(problem(request.verify(other.public())), ProblemType::Malformed);
    // A key of another type: the alg does not fit it.
    let ed = PrivateJwk::generate(Algorithm::EdDsa).unwrap();
    assert!(matches!(request.verify(ed.public()), Err(Error::AlgorithmMismatch { .. })));
}

#[test]
fn header_must_name_exactly_one_key_a_nonce_and_a_url() {
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let jwk = public_jwk(&key);
    let both = json!({"alg":"ES256","jwk":jwk,"kid":"https://x/acct/1","nonce":NONCE,"url":URL});
    let neither = json!({"alg":"ES256","nonce":NONCE,"url":URL});
    let empty_kid = json!({"alg":"ES256","kid":"","nonce":NONCE,"url":URL});
    for header in [both, neither, empty_kid] {
        let result = parse_request(&body_with(&key, &header, b"{}"));
        assert!(matches!(result, Err(Error::KeyChoice(_))), "{header}: {result:?}");
        assert_eq!(problem(result), ProblemType::Malformed);
    }
    let no_nonce = json!({"alg":"ES256","jwk":jwk,"url":URL});
    let empty_nonce = json!({"alg":"ES256","jwk":jwk,"nonce":"","url":URL});
    for header in [no_nonce, empty_nonce] {
        let result = parse_request(&body_with(&key, &header, b"{}"));
        assert!(matches!(result, Err(Error::MissingNonce)), "{result:?}");
        assert_eq!(problem(result), ProblemType::BadNonce);
    }
    let no_url = json!({"alg":"ES256","jwk":jwk,"nonce":NONCE});
    let result = parse_request(&body_with(&key, &no_url, b"{}"));
    assert!(matches!(result, Err(Error::MissingUrl)), "{result:?}");
}

#[test]
fn unaccepted_algorithms_are_bad_signature_algorithm_with_the_accepted_list() {
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let jwk = public_jwk(&key);
    for alg in ["none", "HS256", "HS512", "PS256", "RS512", "es256", ""] {
        let header = json!({"alg":alg,"jwk":jwk,"nonce":NONCE,"url":URL});
        let result = parse_request(&body_with(&key, &header, b"{}"));
        let Err(e) = result else { panic!("{alg} accepted") };
        assert_eq!(e.problem_type(), ProblemType::BadSignatureAlgorithm, "{alg}: {e}");
        let document: Value = serde_json::from_str(&e.problem().to_json()).unwrap();
        assert_eq!(document["type"], "urn:ietf:params:acme:error:badSignatureAlgorithm");
        assert_eq!(document["algorithms"], json!(["ES256", "ES384", "EdDSA", "RS256"]));
    }
    // An RSA key under 2048 bits is a bad public key, not a bad algorithm.
    let small = json!({"kty":"RSA","n":b64(&[0xc3; 128]),"e":"AQAB"});
    let header = json!({"alg":"RS256","jwk":small,"nonce":NONCE,"url":URL});
    let result = parse_request(&body_with(&key, &header, b"{}"));
    assert_eq!(problem(result), ProblemType::BadPublicKey);
    // A JWK with private members.
    let mut private: Value = serde_json::from_str(&key.to_json()).unwrap();
    private.as_object_mut().unwrap().remove("kid");
    let header = json!({"alg":"ES256","jwk":private,"nonce":NONCE,"url":URL});
    assert_eq!(problem(parse_request(&body_with(&key, &header, b"{}"))), ProblemType::BadPublicKey);
}

#[test]
fn a_tampered_payload_or_signature_does_not_verify() {
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let body = sign_request(&key, None, NONCE, URL, br#"{"onlyReturnExisting":true}"#).unwrap();
    let mut object: Value = serde_json::from_slice(&body).unwrap();
    object["payload"] = b64(br#"{"onlyReturnExisting":false}"#).into();
    let request = parse_request(object.to_string().as_bytes()).unwrap();
    let result = request.verify_with_embedded_key();
    assert!(matches!(result, Err(Error::BadSignature)), "{result:?}");
    let mut object: Value = serde_json::from_slice(&body).unwrap();
    object["signature"] = b64(&[0u8; 64]).into();
    let request = parse_request(object.to_string().as_bytes()).unwrap();
    assert!(matches!(request.verify_with_embedded_key(), Err(Error::BadSignature)));
}

#[test]
fn unprotected_headers_and_other_serializations_are_refused() {
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let body = sign_request(&key, None, NONCE, URL, b"{}").unwrap();
    let object: Value = serde_json::from_slice(&body).unwrap();

    let mut with_header = object.clone();
    with_header["header"] = json!({"kid":"x"});
    let result = parse_request(with_header.to_string().as_bytes());
    assert!(matches!(result, Err(Error::UnprotectedHeader("header"))), "{result:?}");
    assert_eq!(problem(result), ProblemType::Malformed);

    let mut general = object.clone();
    general["signatures"] = json!([]);
    assert!(matches!(
        parse_request(general.to_string().as_bytes()),
        Err(Error::UnprotectedHeader("signatures"))
    ));

    // Unknown members are ignored (RFC 7515 §7.2).
    let mut extra = object.clone();
    extra["comment"] = "hello".into();
    assert!(
        parse_request(extra.to_string().as_bytes()).unwrap().verify_with_embedded_key().is_ok()
    );

    // The compact serialization, arrays, missing members, dots smuggled into a member.
    let compact = format!(
        "{}.{}.{}",
        object["protected"].as_str().unwrap(),
        object["payload"].as_str().unwrap(),
        object["signature"].as_str().unwrap()
    );
    let mut dotted = object.clone();
    dotted["protected"] = format!("{}.e30", object["protected"].as_str().unwrap()).into();
    let mut missing = object.clone();
    missing.as_object_mut().unwrap().remove("signature");
    let mut padded = object.clone();
    padded["payload"] = "e30=".into();
    for bad in [
        compact,
        format!("[{object}]"),
        missing.to_string(),
        dotted.to_string(),
        padded.to_string(),
        String::new(),
        "null".into(),
    ] {
        let result = parse_request(bad.as_bytes());
        assert_eq!(problem(result), ProblemType::Malformed, "{bad}");
    }
    let long = vec![b' '; MAX_REQUEST_LEN + 1];
    assert!(matches!(parse_request(&long), Err(Error::TooLarge { .. })));
}

#[test]
fn key_change_inner_jws_is_checked_against_the_outer() {
    let old = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let new = PrivateJwk::generate(Algorithm::EdDsa).unwrap();
    let kid = "https://ca.example/acme/acme/account/abc";
    let url = "https://ca.example/acme/acme/key-change";
    let inner_payload = |account: &str| {
        serde_json::to_vec(&KeyChange { account: account.into(), old_key: public_jwk(&old) })
            .unwrap()
    };
    let outer = |inner: &[u8], outer_url: &str| {
        let body = sign_request(&old, Some(kid), NONCE, outer_url, inner).unwrap();
        parse_request(&body).unwrap().verify(old.public()).unwrap()
    };

    let inner = sign_request(&new, None, "", url, &inner_payload(kid)).unwrap();
    let change = verify_key_change(&outer(&inner, url)).unwrap();
    assert_eq!(change.new_key.public_key(), new.public().public_key());
    assert_eq!(change.old_key.public_key(), old.public().public_key());
    assert_eq!(change.account, kid);

    // Inner with a nonce, another url, another account, signed by another key than its jwk.
    let with_nonce = sign_request(&new, None, NONCE, url, &inner_payload(kid)).unwrap();
    assert!(matches!(verify_key_change(&outer(&with_nonce, url)), Err(Error::KeyChange(_))));
    let other_url =
        sign_request(&new, None, "", "https://elsewhere/", &inner_payload(kid)).unwrap();
    assert!(matches!(verify_key_change(&outer(&other_url, url)), Err(Error::KeyChange(_))));
    let other_account = sign_request(&new, None, "", url, &inner_payload("https://x/2")).unwrap();
    let result = verify_key_change(&outer(&other_account, url));
    assert!(matches!(result, Err(Error::KeyChange(_))), "{result:?}");
    assert_eq!(problem(result), ProblemType::Unauthorized);
    let mut forged: Value = serde_json::from_slice(&inner).unwrap();
    forged["signature"] = b64(&[1u8; 64]).into();
    let result = verify_key_change(&outer(forged.to_string().as_bytes(), url));
    assert!(matches!(result, Err(Error::BadSignature)), "{result:?}");
    // The inner JWS must carry the new key itself, not an account URL.
    let by_kid = sign_request(&new, Some(kid), "", url, &inner_payload(kid)).unwrap();
    assert!(matches!(verify_key_change(&outer(&by_kid, url)), Err(Error::KeyChange(_))));
}
