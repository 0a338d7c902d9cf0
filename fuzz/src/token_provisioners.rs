//! Target for `keystation-provisioners`' token provisioners: the JWK provisioner's
//! `authorize` on arbitrary tokens.

use std::time::{Duration, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_provisioners::Claims;

/// The P-256 key the `provisioner_token` seeds are signed with (its private half is not
/// kept), as a JWK provisioner named `admin` holds it.
const TOKEN_KEY: &str = r#"{"crv":"P-256","kid":"fuzz","kty":"EC","x":"MKWnqeUNXiDj7qI9QqB7S3yPj4BEAefVArFl8NwZzgU","y":"bSMhq4mSiuxjdIJgd-vjh4IQtdISPhhFwLhPJlI6VeU"}"#;

/// The seeds' "now": 100 s after their `iat`.
const TOKEN_NOW: u64 = 1_700_000_100;

/// [`JwkProvisioner`](keystation_provisioners::JwkProvisioner)'s `authorize` on an
/// arbitrary token.
///
/// Input layout: byte 0 — bits 0–2 pick the operation (X.509 sign, SSH user sign, SSH host
/// sign, revoke, renew, SSH revoke, rekey, take jobs), requested at that operation's
/// endpoint of `https://127.0.0.1:9443`; bit 3 turns `enableSSHCA` on. The rest is the token.
///
/// Whatever the input: nothing panics, and a grant is only for a token whose header names
/// ES256 and the provisioner's `kid`, whose claims name the provisioner as issuer, carry a
/// `jti` (the grant's replay id), an `exp` at most 5 minutes after max(`nbf`, `iat`) and not
/// passed, and for the operation asked.
pub fn provisioner_token(data: &[u8]) {
    use keystation_jose::{Jwk, parse_compact};
    use keystation_provisioners::JwkProvisioner;

    let Some((&flags, token)) = data.split_first() else { return };
    let Ok(token) = core::str::from_utf8(token) else { return };
    let (operation, path) = [
        (Operation::SignX509, "/sign"),
        (Operation::SignSshUser, "/ssh/sign"),
        (Operation::SignSshHost, "/ssh/sign"),
        (Operation::RevokeX509, "/revoke"),
        (Operation::RenewX509, "/renew"),
        (Operation::RevokeSsh, "/ssh/revoke"),
        (Operation::RekeyX509, "/rekey"),
        (Operation::TakeJobs, "/jobs"),
    ][usize::from(flags & 7)];
    let audience = format!("https://127.0.0.1:9443/1.0{path}");
    let claims = Claims { enable_ssh_ca: Some(flags & 8 != 0), ..Claims::default() };
    let claims = claims.resolve().expect("built-in claims resolve");
    let key = Jwk::from_json(TOKEN_KEY).expect("the seed key parses");
    let provisioner = JwkProvisioner::new("admin", key, None, claims);
    let request = Request {
        credential: Credential::Token(token),
        operation,
        audience: &audience,
        subject_key: None,
    };
    let now = UNIX_EPOCH + Duration::from_secs(TOKEN_NOW);
    let Ok(grant) = provisioner.authorize(&request, &TrustedKeys::default(), now) else { return };

    let jws = parse_compact(token).expect("a granted token parses");
    assert_eq!(jws.header().alg, "ES256");
    assert_eq!(jws.header().kid.as_deref(), Some("fuzz"));
    let c = jws.unverified_claims().expect("a granted token has claims");
    assert_eq!(c.iss.as_deref(), Some("admin"));
    assert!(c.jti.as_deref().is_some_and(|j| !j.is_empty()));
    assert_eq!(grant.replay_id, c.jti, "the replay id is the jti");
    let exp = c.exp.expect("a granted token has exp");
    let start = c.nbf.into_iter().chain(c.iat).max().unwrap_or(TOKEN_NOW as i64);
    assert!(exp - start <= 300, "lifetime bounded");
    assert!(exp + 60 >= TOKEN_NOW as i64, "not expired");
    assert_eq!(grant.operations, vec![operation]);
    assert!(grant.not_before <= grant.not_after);
    assert!(!grant.subject.is_empty());
    assert!(!matches!(operation, Operation::RekeyX509 | Operation::TakeJobs));
    if operation == Operation::SignX509 {
        assert!(c.ssh().is_none(), "no SSH token authorizes X.509");
    }
    if matches!(operation, Operation::SignSshUser | Operation::SignSshHost) {
        assert!(flags & 8 != 0, "SSH needs enableSSHCA");
        assert!(c.ssh().is_some(), "no X.509 token authorizes SSH");
    }
}
