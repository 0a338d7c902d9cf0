//! Problem documents (RFC 7807, RFC 8555 §6.7), ACME's JSON objects (§7.1) and key
//! authorizations (§8.1, §8.4, RFC 8737 §3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keystation_acme::key_authorization::is_valid_token;
use keystation_acme::messages::{
    Account, AccountStatus, AccountUpdate, Authorization, AuthorizationStatus, Challenge,
    ChallengeStatus, ChallengeType, DeviceAttestPayload, Directory, DirectoryMeta, Finalize,
    Identifier, IdentifierType, NewAccount, NewOrder, Order, OrderStatus, RevokeCert,
};
use keystation_acme::{
    Error, Problem, ProblemType, Subproblem, dns01_txt_value, key_authorization, new_token,
    tls_alpn01_digest,
};
use keystation_jose::Jwk;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[test]
fn problem_types_have_their_urns_and_statuses() {
    assert_eq!(ProblemType::ALL.len(), 25);
    for t in ProblemType::ALL {
        assert_eq!(ProblemType::from_urn(&t.urn()), Some(*t));
        assert!(t.urn().starts_with("urn:ietf:params:acme:error:"));
    }
    assert_eq!(ProblemType::BadCsr.urn(), "urn:ietf:params:acme:error:badCSR");
    assert_eq!(
        ProblemType::BadAttestationStatement.urn(),
        "urn:ietf:params:acme:error:badAttestationStatement"
    );
    let statuses = [
        (ProblemType::Malformed, 400),
        (ProblemType::BadNonce, 400),
        (ProblemType::AccountDoesNotExist, 400),
        (ProblemType::Unauthorized, 403),
        (ProblemType::OrderNotReady, 403),
        (ProblemType::UserActionRequired, 403),
        (ProblemType::RateLimited, 429),
        (ProblemType::ServerInternal, 500),
    ];
    for (t, status) in statuses {
        assert_eq!(t.status(), status, "{t}");
    }
    assert_eq!(ProblemType::from_urn("urn:ietf:params:acme:error:nope"), None);
    assert_eq!(ProblemType::from_urn("about:blank"), None);
}

#[test]
fn problem_json_has_rfc7807_shape_with_subproblems() {
    let problem =
        Problem::new(ProblemType::Compound, "two names were refused").with_subproblems(vec![
            Subproblem {
                problem_type: ProblemType::RejectedIdentifier,
                detail: "not ours".into(),
                identifier: Some(Identifier::dns("a.example")),
            },
            Subproblem {
                problem_type: ProblemType::Caa,
                detail: "CAA forbids".into(),
                identifier: Some(Identifier::ip("192.0.2.1")),
            },
        ]);
    let document: Value = serde_json::from_str(&problem.to_json()).unwrap();
    assert_eq!(
        document,
        json!({
            "type": "urn:ietf:params:acme:error:compound",
            "detail": "two names were refused",
            "status": 400,
            "subproblems": [
                {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "not ours",
                 "identifier": {"type": "dns", "value": "a.example"}},
                {"type": "urn:ietf:params:acme:error:caa", "detail": "CAA forbids",
                 "identifier": {"type": "ip", "value": "192.0.2.1"}}
            ]
        })
    );
    assert_eq!(Problem::from_json(problem.to_json().as_bytes()).unwrap(), problem);
    assert_eq!(problem.http_status(), 400);
    // A client reading another server's document.
    let theirs =
        br#"{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no","status":403}"#;
    let parsed = Problem::from_json(theirs).unwrap();
    assert_eq!((parsed.problem_type, parsed.http_status()), (ProblemType::Unauthorized, 403));
    assert!(Problem::from_json(br#"{"type":"about:blank"}"#).is_err());
    assert!(Problem::from_json(b"[]").is_err());
}

#[test]
fn errors_map_onto_problem_documents() {
    let e = Error::MissingNonce;
    let problem = e.problem();
    assert_eq!((problem.problem_type, problem.status), (ProblemType::BadNonce, Some(400)));
    assert_eq!(problem.detail, e.to_string());
    assert_eq!(Error::ExternalAccountRequired.problem_type(), ProblemType::ExternalAccountRequired);
    assert_eq!(
        Error::UnsupportedIdentifier("email".into()).problem_type(),
        ProblemType::UnsupportedIdentifier
    );
    assert_eq!(Error::Random.problem().http_status(), 500);
}

#[test]
fn status_and_type_enums_use_the_rfc_strings() {
    let check = |json: &str, parsed: &dyn Fn(&str) -> bool| assert!(parsed(json), "{json}");
    check("valid", &|s| s.parse::<AccountStatus>().ok() == Some(AccountStatus::Valid));
    check("ready", &|s| s.parse::<OrderStatus>().ok() == Some(OrderStatus::Ready));
    check("expired", &|s| {
        s.parse::<AuthorizationStatus>().ok() == Some(AuthorizationStatus::Expired)
    });
    check("processing", &|s| {
        s.parse::<ChallengeStatus>().ok() == Some(ChallengeStatus::Processing)
    });
    for (t, text) in [
        (ChallengeType::Http01, "http-01"),
        (ChallengeType::Dns01, "dns-01"),
        (ChallengeType::TlsAlpn01, "tls-alpn-01"),
        (ChallengeType::DeviceAttest01, "device-attest-01"),
    ] {
        assert_eq!(t.as_str(), text);
        assert_eq!(text.parse::<ChallengeType>().ok(), Some(t));
        assert_eq!(serde_json::to_value(t).unwrap(), json!(text));
    }
    assert!("HTTP-01".parse::<ChallengeType>().is_err());
    assert_eq!(
        serde_json::to_value(IdentifierType::PermanentIdentifier).unwrap(),
        json!("permanent-identifier")
    );
    assert!(serde_json::from_value::<OrderStatus>(json!("done")).is_err());
}

#[test]
fn request_payloads_parse_with_rfc_names() {
    let account = NewAccount::from_json(
        br#"{"contact":["mailto:x@example.com"],"termsOfServiceAgreed":true,
            "onlyReturnExisting":false,"externalAccountBinding":{"protected":"p","payload":"q","signature":"s"}}"#,
    )
    .unwrap();
    assert_eq!(account.only_return_existing, Some(false));
    assert_eq!(account.external_account_binding.unwrap().payload, "q");
    assert_eq!(NewAccount::from_json(b"{}").unwrap(), NewAccount::default());

    let update = AccountUpdate::from_json(br#"{"status":"deactivated"}"#).unwrap();
    assert!(update.is_deactivation());
    assert!(!AccountUpdate::from_json(br#"{"contact":[]}"#).unwrap().is_deactivation());
    assert!(AccountUpdate::from_json(br#"{"status":"gone"}"#).is_err());

    let order = NewOrder::from_json(
        br#"{"identifiers":[{"type":"dns","value":"a.example"},{"type":"ip","value":"::1"}],
            "notBefore":"2030-01-01T00:00:00Z","notAfter":"2030-01-08T00:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(order.identifiers[1], Identifier::ip("::1"));
    assert_eq!(order.validity().unwrap(), (Some(1_893_456_000), Some(1_894_060_800)));
    let unknown = NewOrder::from_json(br#"{"identifiers":[{"type":"email","value":"a@b"}]}"#);
    assert!(matches!(unknown, Err(Error::UnsupportedIdentifier(t)) if t == "email"));
    for bad in [
        &br#"{"identifiers":[]}"#[..],
        br#"{"identifiers":[{"type":"dns"}]}"#,
        br#"{"identifiers":[{"type":"dns","value":"a"}],"notAfter":"tomorrow"}"#,
        br#"[{"type":"dns","value":"a"}]"#,
        b"",
    ] {
        let result = NewOrder::from_json(bad);
        assert!(matches!(result, Err(Error::Malformed { .. })), "{result:?}");
    }

    let finalize = Finalize::from_json(br#"{"csr":"MIIB"}"#).unwrap();
    assert_eq!(finalize.csr_der().unwrap(), [0x30, 0x82, 0x01]);
    assert!(Finalize::from_json(br#"{"csr":"MII+"}"#).unwrap().csr_der().is_err());
    let revoke = RevokeCert::from_json(br#"{"certificate":"MAA","reason":4}"#).unwrap();
    assert_eq!((revoke.certificate_der().unwrap(), revoke.reason), (vec![0x30, 0], Some(4)));
    assert!(RevokeCert::from_json(br#"{"certificate":"MAA","reason":-1}"#).is_err());
    let attest = DeviceAttestPayload::from_json(br#"{"attObj":"oA"}"#).unwrap();
    assert_eq!(attest.att_obj_bytes().unwrap(), [0xa0]);
}

#[test]
fn response_objects_serialize_with_rfc_names() {
    let directory = Directory {
        new_nonce: "https://ca/acme/a/new-nonce".into(),
        new_account: "https://ca/acme/a/new-account".into(),
        new_order: "https://ca/acme/a/new-order".into(),
        revoke_cert: "https://ca/acme/a/revoke-cert".into(),
        key_change: "https://ca/acme/a/key-change".into(),
        meta: Some(DirectoryMeta {
            terms_of_service: Some("https://ca/tos".into()),
            external_account_required: true,
            ..DirectoryMeta::default()
        }),
    };
    let value: Value = serde_json::from_str(&directory.to_json()).unwrap();
    assert_eq!(value["newNonce"], "https://ca/acme/a/new-nonce");
    assert_eq!(value["keyChange"], "https://ca/acme/a/key-change");
    assert_eq!(
        value["meta"],
        json!({"termsOfService":"https://ca/tos","externalAccountRequired":true})
    );
    assert!(value.get("newAuthz").is_none());
    assert_eq!(Directory::from_json(directory.to_json().as_bytes()).unwrap(), directory);

    let order = Order {
        status: OrderStatus::Invalid,
        expires: Some("2030-01-01T00:00:00Z".into()),
        identifiers: vec![Identifier::dns("*.example.com")],
        not_before: None,
        not_after: None,
        error: Some(Problem::new(ProblemType::IncorrectResponse, "wrong")),
        authorizations: vec!["https://ca/authz/1".into()],
        finalize: "https://ca/order/1/finalize".into(),
        certificate: None,
    };
    let value = serde_json::to_value(&order).unwrap();
    assert_eq!(value["status"], "invalid");
    assert_eq!(value["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse");
    assert!(value.get("certificate").is_none() && value.get("notBefore").is_none());
    assert_eq!(Order::from_json(value.to_string().as_bytes()).unwrap(), order);

    let authz = Authorization {
        identifier: Identifier::dns("example.com"),
        status: AuthorizationStatus::Pending,
        expires: None,
        challenges: vec![Challenge {
            challenge_type: ChallengeType::Dns01,
            url: "https://ca/chall/1".into(),
            status: ChallengeStatus::Pending,
            validated: None,
            error: None,
            token: "DGyRejmCefe7v4NfDGDKfA".into(),
        }],
        wildcard: Some(true),
    };
    let value = serde_json::to_value(&authz).unwrap();
    assert_eq!(value["challenges"][0]["type"], "dns-01");
    assert_eq!(value["wildcard"], true);
    assert_eq!(Authorization::from_json(value.to_string().as_bytes()).unwrap(), authz);

    let account: Account =
        Account::from_json(br#"{"status":"valid","orders":"https://ca/o"}"#).unwrap();
    assert_eq!(account.status, AccountStatus::Valid);
    let value = serde_json::to_value(&account).unwrap();
    assert_eq!(value, json!({"status":"valid","orders":"https://ca/o"}));
}

/// RFC 7638 §3.1's RSA key and its thumbprint.
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn key_authorization_is_token_dot_rfc7638_thumbprint() {
    // The thumbprint computed here from RFC 7638 §3's rules: required members,
    // lexicographic order, no whitespace.
    let canonical = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{RFC7638_N}"}}"#);
    assert_eq!(b64(&Sha256::digest(canonical.as_bytes())), RFC7638_THUMBPRINT);
    let jwk = Jwk::from_json(&format!(
        r#"{{"kty":"RSA","n":"{RFC7638_N}","e":"AQAB","alg":"RS256","kid":"2011-04-29"}}"#
    ))
    .unwrap();
    let token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
    let key_auth = key_authorization(token, &jwk);
    assert_eq!(key_auth, format!("{token}.{RFC7638_THUMBPRINT}"));

    // dns-01 (§8.4) and tls-alpn-01 (RFC 8737 §3) digest the key authorization's bytes.
    let digest = Sha256::digest(key_auth.as_bytes());
    assert_eq!(dns01_txt_value(&key_auth), b64(&digest));
    assert_eq!(dns01_txt_value(&key_auth).len(), 43);
    assert_eq!(tls_alpn01_digest(&key_auth)[..], digest[..]);
    assert_ne!(dns01_txt_value(&key_auth), dns01_txt_value(&format!("{token}.x")));
}

#[test]
fn tokens_carry_128_bits_and_differ() {
    let a = new_token().unwrap();
    let b = new_token().unwrap();
    assert_eq!(a.len(), 22);
    assert_ne!(a, b);
    assert!(is_valid_token(&a));
    assert!(!is_valid_token("short"));
    assert!(!is_valid_token("has/a/slash/in/it/aaaaaaaaa"));
    assert!(!is_valid_token(&"a".repeat(129)));
}
