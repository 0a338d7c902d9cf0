//! Targets for `keystation-jose`: compact JWS parsing, claims decoding and verification.

use keystation_jose::{Claims, Error, Jwk, MAX_COMPACT_LEN, parse_compact};

/// The P-256 key the seed tokens are signed with (its private half is not kept).
const SEED_KEY: &str = r#"{"crv":"P-256","kid":"seed","kty":"EC","x":"zqTXBnXtZNH3Ixx6idUwgzriOtHEbMAf5WPme20egHM","y":"H_LEaXf-2CeNzIlwYuFf7lW2ytnBoxP7eh6uv3sLejo"}"#;

/// `parse_compact` on the input as text, then the claims of what parses, then
/// verification with a fixed ES256 key; and `Claims::from_json` on the raw bytes.
///
/// Whatever the input: nothing panics; a parsed token's signing input is the input's first
/// two parts; an input over the size cap is refused; `none` and HS* never verify; claims
/// that decode encode to JSON that decodes to the same claims.
pub fn jws_compact(data: &[u8]) {
    check_claims(data);
    let Ok(text) = core::str::from_utf8(data) else { return };
    let parsed = parse_compact(text);
    if text.len() > MAX_COMPACT_LEN {
        assert!(matches!(parsed, Err(Error::TooLong { .. })), "the size cap holds");
        return;
    }
    let Ok(jws) = parsed else { return };
    let dots: Vec<usize> = text.match_indices('.').map(|(i, _)| i).collect();
    assert_eq!(dots.len(), 2, "a parsed token has three parts");
    assert_eq!(jws.signing_input(), &text.as_bytes()[..dots[1]], "signing input is the prefix");
    if let Ok(claims) = jws.unverified_claims() {
        round_trip(&claims);
    }
    let key = Jwk::from_json(SEED_KEY).expect("the seed key parses");
    match jws.verify(&key) {
        Ok(verified) => {
            assert_eq!(jws.header().alg, "ES256", "only the key's algorithm verifies");
            assert_eq!(verified.payload(), jws.unverified_payload());
            if let Ok(claims) = verified.claims() {
                round_trip(&claims);
            }
        }
        Err(Error::NoneAlgorithm) => assert_eq!(jws.header().alg, "none"),
        Err(Error::SymmetricAlgorithm(alg)) => assert!(alg.starts_with("HS")),
        Err(_) => {}
    }
}

fn check_claims(data: &[u8]) {
    if let Ok(claims) = Claims::from_json(data) {
        round_trip(&claims);
    }
}

fn round_trip(claims: &Claims) {
    let json = claims.to_json();
    let again = Claims::from_json(json.as_bytes()).expect("our own claims JSON parses");
    assert_eq!(&again, claims, "claims round trip: {json}");
}
