//! Interoperability with real peers: tokens made by PyJWT and jwcrypto verify here, tokens
//! made here verify in PyJWT, and the PBES2 JWE (a JWK provisioner's `encryptedKey`)
//! decrypts both ways with jwcrypto.
//!
//! The Python interpreter is named by `KEYSTATION_TEST_JOSE_PYTHON`: a venv's python with
//! `pip install PyJWT cryptography jwcrypto` (scripts/test sets it up). Unset, the tests
//! fail and say so.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use keystation_jose::jwe::{Pbes2Options, decrypt_pbes2, encrypt_pbes2, encrypt_pbes2_with};
use keystation_jose::{Algorithm, Claims, Error, Header, Jwk, PrivateJwk, parse_compact, sign_jwt};
use serde_json::{Value, json};

fn python() -> String {
    std::env::var("KEYSTATION_TEST_JOSE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "KEYSTATION_TEST_JOSE_PYTHON is not set: point it at the python of a venv with \
             PyJWT, cryptography and jwcrypto (python3 -m venv target/jose-venv && \
             target/jose-venv/bin/pip install PyJWT cryptography jwcrypto), as scripts/test does"
        )
    })
}

/// Runs the peer script with one JSON request and returns its JSON answer.
fn peer(request: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/peer.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run KEYSTATION_TEST_JOSE_PYTHON ({}): {e}", python()));
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "peer.py failed on {}: {}",
        request["op"],
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn step_claims() -> Value {
    let t = now();
    json!({
        "iss": "admin",
        "sub": "host.example.test",
        "aud": "https://127.0.0.1:9443/1.0/sign",
        "nbf": t, "iat": t, "exp": t + 300,
        "jti": "0f7e3a0c-peer",
        "sans": ["host.example.test", "10.0.0.1"],
        "sha": "2e1f",
    })
}

#[test]
fn pyjwt_and_jwcrypto_tokens_verify_under_the_keys_algorithm() {
    let answer = peer(&json!({
        "op": "make_tokens",
        "algs": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "claims": step_claims(),
    }));
    let items = answer.as_array().unwrap();
    assert_eq!(items.len(), 5);
    for item in items {
        let alg = Algorithm::from_name(item["alg"].as_str().unwrap()).unwrap();
        let key = Jwk::from_json(&item["jwk"].to_string()).unwrap();
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.thumbprint(), item["thumbprint"].as_str().unwrap(), "RFC 7638 vs jwcrypto");
        for made_by in ["pyjwt", "jwcrypto"] {
            let token = item[made_by].as_str().unwrap();
            let jws = parse_compact(token).unwrap();
            assert_eq!(jws.header().kid.as_deref(), key.kid());
            let verified = jws.verify(&key).unwrap_or_else(|e| panic!("{alg} by {made_by}: {e}"));
            let claims = verified.claims().unwrap();
            assert_eq!(claims.iss.as_deref(), Some("admin"));
            assert_eq!(claims.aud, vec!["https://127.0.0.1:9443/1.0/sign".to_string()]);
            assert_eq!(claims.sans, vec!["host.example.test".to_string(), "10.0.0.1".into()]);
            assert_eq!(claims.jti.as_deref(), Some("0f7e3a0c-peer"));
            assert!(claims.exp.unwrap() - claims.iat.unwrap() == 300);
        }
        // The same RSA key under the other RSA algorithm: the key decides, the header is refused.
        if alg == Algorithm::Rs256 || alg == Algorithm::Ps256 {
            let other = if alg == Algorithm::Rs256 { Algorithm::Ps256 } else { Algorithm::Rs256 };
            let key =
                Jwk::from_public_key(key.public_key().clone()).unwrap().with_alg(other).unwrap();
            let jws = parse_compact(item["pyjwt"].as_str().unwrap()).unwrap();
            assert!(matches!(jws.verify(&key), Err(Error::AlgorithmMismatch { .. })));
        }
    }
}

#[test]
fn our_tokens_verify_in_pyjwt() {
    let mut tokens = Vec::new();
    for alg in
        [Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa, Algorithm::Rs256, Algorithm::Ps256]
    {
        let key = PrivateJwk::generate(alg).unwrap();
        let mut claims = Claims::default();
        claims.iss = Some("admin".into());
        claims.sub = Some(format!("made-with-{alg}"));
        claims.aud = vec!["https://ca.example.test/1.0/sign".into()];
        claims.iat = Some(now());
        claims.exp = Some(now() + 300);
        let token = sign_jwt(&key, &Header::default(), &claims).unwrap();
        tokens.push(json!({
            "alg": alg.name(),
            "jwk": serde_json::from_str::<Value>(&key.public().to_json()).unwrap(),
            "token": token,
            "aud": "https://ca.example.test/1.0/sign",
        }));
    }
    let answer = peer(&json!({"op": "verify", "tokens": tokens}));
    for (result, alg) in
        answer.as_array().unwrap().iter().zip(["ES256", "ES384", "EdDSA", "RS256", "PS256"])
    {
        assert_eq!(result["ok"], true, "{alg}: {result}");
        assert_eq!(result["sub"], format!("made-with-{alg}"));
    }
}

#[test]
fn pbes2_jwe_decrypts_both_ways_with_jwcrypto() {
    // Ours, exactly as step writes encryptedKey (100 000 iterations), opened by jwcrypto.
    let key = PrivateJwk::generate(Algorithm::Es256).unwrap();
    let encrypted = key.encrypt(b"provisioner password").unwrap();
    let answer =
        peer(&json!({"op": "jwe_decrypt", "jwe": encrypted, "password": "provisioner password"}));
    assert_eq!(answer["thumbprint"], key.public().thumbprint());
    assert_eq!(answer["has_private"], true);
    assert_eq!(answer["header"]["alg"], "PBES2-HS256+A128KW");
    assert_eq!(answer["header"]["enc"], "A256GCM");
    assert_eq!(answer["header"]["cty"], "jwk+json");
    assert_eq!(answer["header"]["p2c"], 100_000);

    // A plain payload with our encrypt_pbes2 too.
    let secret = encrypt_pbes2(br#"{"kty":"EC"}"#, b"pw").unwrap();
    assert!(secret.split('.').count() == 5);

    // Theirs, opened here and used to sign.
    let answer =
        peer(&json!({"op": "jwe_encrypt", "password": "provisioner password", "p2c": 100_000}));
    let jwe = answer["jwe"].as_str().unwrap();
    let theirs = PrivateJwk::decrypt(jwe, b"provisioner password").unwrap();
    assert_eq!(theirs.public().thumbprint(), answer["thumbprint"].as_str().unwrap());
    assert!(matches!(PrivateJwk::decrypt(jwe, b"wrong"), Err(Error::Decryption)));
    let plain = decrypt_pbes2(jwe, b"provisioner password").unwrap();
    assert!(std::str::from_utf8(&plain).unwrap().contains("\"d\""));

    // And a low iteration count of ours still opens in jwcrypto (its header says how many).
    let fast = Pbes2Options { iterations: 1000, ..Pbes2Options::default() };
    let quick = encrypt_pbes2_with(key.to_json().as_bytes(), b"x", &fast).unwrap();
    let answer = peer(&json!({"op": "jwe_decrypt", "jwe": quick, "password": "x"}));
    assert_eq!(answer["thumbprint"], key.public().thumbprint());
}
