//! Target for `keystation-oidc`: the OIDC provisioner's `authorize` on arbitrary ID
//! tokens, and the JWKS reader on arbitrary key sets.

use std::time::{Duration, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_oidc::{OidcOptions, OidcProvisioner, trusted_keys_from_jwks};

/// The P-256 key the `oidc_token` seeds are signed with (its private half is not kept),
/// as the provider's JWKS publishes it.
const IDP_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"fuzz-idp","x":"6mbTppypJbN6WLeHxbyxMXkgW2YQ4Ra13FFIsY4aKj0","y":"09-TeZAazuuQ4OB7hIwUWaaQmCKDbwgAvFP8pI7JKWI","alg":"ES256","use":"sig"}]}"#;

/// The provider's issuer in the seeds.
const IDP_ISSUER: &str = "https://idp.example";

/// The seeds' "now": 100 s after their `iat`.
const IDP_NOW: u64 = 1_700_000_100;

/// `OidcProvisioner::authorize` on an arbitrary token.
///
/// Input layout: byte 0 — bits 0–2 pick the operation (X.509 sign, renew, SSH user sign,
/// revoke, SSH host sign, SSH revoke, admin API, rekey); bit 3 configures `domains`
/// (`example.com`) and `groups` (`ops`); bit 4 makes `alice@example.com` an admin; bit 5:
/// the rest is a JWKS, a NUL byte, then the token (else the rest is the token and the
/// seeds' JWKS is trusted).
///
/// Whatever the input: nothing panics; the JWKS reader keeps only keys jose accepts and
/// names the issuer; a grant is only for a token whose signature verifies with a key
/// of the set, from the issuer, for the client, with an `exp` not passed at most 1 h after
/// max(`nbf`, `iat`), with a verified email if any, and always carries a replay id.
pub fn oidc_token(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (jwks, token) = if flags & 0x20 != 0 {
        let Some(nul) = rest.iter().position(|&b| b == 0) else { return };
        (&rest[..nul], &rest[nul + 1..])
    } else {
        (IDP_JWKS.as_bytes(), rest)
    };
    let Ok(keys) = trusted_keys_from_jwks(IDP_ISSUER, jwks, "fuzz") else { return };
    assert!(!keys.keys.is_empty(), "a key set is never empty");
    assert_eq!(keys.statements[0], format!("oidc-issuer={IDP_ISSUER}"));
    let Ok(token) = core::str::from_utf8(token) else { return };

    let operation = [
        Operation::SignX509,
        Operation::RenewX509,
        Operation::SignSshUser,
        Operation::RevokeX509,
        Operation::SignSshHost,
        Operation::RevokeSsh,
        Operation::Administer,
        Operation::RekeyX509,
    ][usize::from(flags & 7)];
    let mut options = OidcOptions {
        name: "sso".into(),
        client_id: "keystation".into(),
        configuration_endpoint: IDP_ISSUER.into(),
        ..OidcOptions::default()
    };
    options.claims.enable_ssh_ca = Some(true);
    if flags & 0x08 != 0 {
        options.domains = vec!["example.com".into()];
        options.groups = vec!["ops".into()];
    }
    if flags & 0x10 != 0 {
        options.admins = vec!["alice@example.com".into()];
    }
    let provisioner = OidcProvisioner::from_json_in(
        &options.to_json(),
        &keystation_provisioners::ProvisionerContext::default(),
    )
    .expect("the fuzz provisioner's configuration is valid");
    let request = Request {
        credential: Credential::Token(token),
        operation,
        audience: "https://127.0.0.1:9443/1.0/sign",
        subject_key: None,
    };
    let now = UNIX_EPOCH + Duration::from_secs(IDP_NOW);
    let Ok(grant) = provisioner.authorize(&request, &keys, now) else { return };
    check_grant(token, &keys, &grant, operation);
}

fn check_grant(
    token: &str,
    keys: &TrustedKeys,
    grant: &keystation_core::provisioner::Grant,
    operation: Operation,
) {
    use keystation_jose::{Algorithm, parse_compact};
    let jws = parse_compact(token).expect("a granted token parses");
    let verified = keys
        .keys
        .iter()
        .filter_map(|(_, key)| {
            let alg = Algorithm::default_for(key)?;
            jws.verify_with(key, alg).ok()
        })
        .next()
        .expect("a granted token verifies with a trusted key");
    let claims = verified.claims().expect("a granted token has claims");
    let payload: serde_json::Value =
        serde_json::from_slice(verified.payload()).expect("a granted token is JSON");
    assert_eq!(claims.iss.as_deref(), Some(IDP_ISSUER));
    assert!(claims.aud.iter().any(|a| a == "keystation"));
    let exp = claims.exp.expect("a granted token has exp");
    let now = i64::try_from(IDP_NOW).unwrap_or(i64::MAX);
    assert!(exp + 60 >= now, "not expired");
    let start = claims.nbf.max(claims.iat).unwrap_or(now);
    assert!(exp - start <= 3600, "lifetime bounded");
    if payload.get("email").and_then(|e| e.as_str()).is_some_and(|e| !e.is_empty()) {
        let verified = payload.get("email_verified");
        assert!(
            verified == Some(&serde_json::Value::Bool(true))
                || verified.and_then(|v| v.as_str()) == Some("true"),
            "an email is used only when verified"
        );
    }
    assert!(grant.replay_id.is_some(), "every grant is single use");
    assert_eq!(grant.operations, [operation]);
    assert!(operation != Operation::RekeyX509 && operation != Operation::SignSshHost);
}
