//! Target for `keystation-iid-gcp`: the GCP provisioner's `authorize` on arbitrary
//! identity tokens.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_iid_gcp::GcpProvisioner;
use keystation_provisioners::ProvisionerContext;

/// The RSA key the `gcp_identity_token` seeds are signed with (its private half is not
/// kept), as Google's JWK set would list it.
const GOOGLE_KEY: &str = r#"{"kty":"RSA","kid":"fuzz-google","n":"zJLP_-78gwDUW74PuxiF4sVBij4jV66BHk7663YymIAbA6I2kW-IKyYunBLzGY5Vy3AIgJgWIFSM0RMVuafTgDUGtqoV5do6Ph7HOYZRhHvjkVIfhAa07crNmGLopsce7aV6fh970vkfoc9GgrP625Cby_Tl9-n2Sj251ULk3LWqwB_8A8a6T7WckZfkSBjvnK2EWPZFSsUF2thdUOqea_CigoWC08iQYaXuoDWUjOuZQM6iqhTNPAr0kUGgRi5jlOSRHmz9r38Lfb_8hRYkRgfmiiihxVrY4ruK1d-6wXN1QdIspoBsmKPORNerdnRtpDZYvyDY8YHHo7gz8kZr8w","e":"AQAB","alg":"RS256","use":"sig"}"#;

/// The seeds' "now": 100 s after their `iat`.
const NOW: u64 = 1_700_000_100;

fn provisioners() -> &'static [GcpProvisioner] {
    static ALL: OnceLock<Vec<GcpProvisioner>> = OnceLock::new();
    ALL.get_or_init(|| {
        (0..8u8)
            .map(|bits| {
                let mut json = serde_json::json!({"type": "GCP", "name": "google"});
                if bits & 1 != 0 {
                    json["claims"] = serde_json::json!({"enableSSHCA": true});
                    json["disableSSHCAUser"] = false.into();
                }
                if bits & 2 != 0 {
                    json["disableTrustOnFirstUse"] = true.into();
                }
                if bits & 4 != 0 {
                    json["projectIDs"] = serde_json::json!(["acme-prod"]);
                    json["serviceAccounts"] = serde_json::json!(["112233445566778899000"]);
                    json["instanceAge"] = "1h".into();
                }
                GcpProvisioner::from_json_in(&json.to_string(), &ProvisionerContext::default())
                    .expect("the fuzz configurations are valid")
            })
            .collect()
    })
}

/// [`GcpProvisioner`]'s `authorize` on an arbitrary token, with [`GOOGLE_KEY`] trusted.
///
/// Input layout: byte 0 — bits 0–1 pick the operation (X.509 sign, SSH host sign, SSH user
/// sign, revoke) at its endpoint of `https://127.0.0.1:9443`; bit 2 turns `enableSSHCA` on
/// and `disableSSHCAUser` off; bit 3 sets `disableTrustOnFirstUse`; bit 4 sets the filters
/// (project `acme-prod`, service account `112233445566778899000`, `instanceAge` 1 h). The
/// rest is the token.
///
/// Whatever the input: nothing panics, and a grant is only for an RS256 token under the
/// trusted `kid`, issued by Google, for `#gcp/google`, with an `exp` at most 1 h after
/// `iat`, for X.509 or SSH signing only, naming its verified instance — the
/// trust-on-first-use id is `tofu:<project_id>/<instance_id>` from the token.
pub fn gcp_identity_token(data: &[u8]) {
    use keystation_jose::{Jwk, parse_compact};

    let Some((&flags, token)) = data.split_first() else { return };
    let Ok(token) = core::str::from_utf8(token) else { return };
    let (operation, path) = [
        (Operation::SignX509, "/sign"),
        (Operation::SignSshHost, "/ssh/sign"),
        (Operation::SignSshUser, "/ssh/sign"),
        (Operation::RevokeX509, "/revoke"),
    ][usize::from(flags & 3)];
    let audience = format!("https://127.0.0.1:9443/1.0{path}");
    let provisioner = &provisioners()[usize::from((flags >> 2) & 7)];
    let key = Jwk::from_json(GOOGLE_KEY).expect("the seed key parses");
    let keys = TrustedKeys {
        keys: vec![(Some("fuzz-google".into()), key.public_key().clone())],
        ..TrustedKeys::default()
    };
    let request = Request {
        credential: Credential::Token(token),
        operation,
        audience: &audience,
        subject_key: None,
    };
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let Ok(grant) = provisioner.authorize(&request, &keys, now) else { return };

    let jws = parse_compact(token).expect("a granted token parses");
    assert_eq!(jws.header().alg, "RS256");
    assert_eq!(jws.header().kid.as_deref(), Some("fuzz-google"));
    let c = jws.unverified_claims().expect("a granted token has claims");
    assert_eq!(c.iss.as_deref(), Some("https://accounts.google.com"));
    assert!(c.aud.iter().any(|a| a.ends_with("#gcp/google")));
    let exp = c.exp.expect("a granted token has exp");
    let start = c.nbf.into_iter().chain(c.iat).max().unwrap_or(NOW as i64);
    assert!(exp - start <= 3600, "lifetime bounded");
    assert!(exp + 60 >= NOW as i64, "not expired");
    assert!(matches!(
        operation,
        Operation::SignX509 | Operation::SignSshHost | Operation::SignSshUser
    ));
    assert!(operation == Operation::SignX509 || flags & 4 != 0, "SSH needs enableSSHCA");
    assert_eq!(grant.operations, vec![operation]);
    assert!(!grant.subject.is_empty());
    let payload: serde_json::Value =
        serde_json::from_slice(jws.unverified_payload()).expect("a granted payload is JSON");
    let ce = &payload["google"]["compute_engine"];
    let replay = grant.replay_id.expect("every grant is single-use");
    if flags & 8 == 0 {
        let project = ce["project_id"].as_str().expect("project_id");
        let instance = ce["instance_id"].as_str().expect("instance_id");
        assert_eq!(replay, format!("tofu:{project}/{instance}"));
    } else {
        assert_eq!(replay.len(), 64);
    }
    if flags & 16 != 0 {
        assert_eq!(ce["project_id"], "acme-prod");
    }
}
