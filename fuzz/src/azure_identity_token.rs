//! Target for `keystation-iid-azure`: the Azure provisioner's `authorize` on arbitrary
//! managed-identity tokens, and the exact `xms_mirid` parser.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_iid_azure::{AzureProvisioner, ISSUER_STATEMENT, parse_resource_id};
use keystation_provisioners::ProvisionerContext;

/// The RSA key the `azure_identity_token` seeds are signed with (its private half is not
/// kept), as the tenant's JWK set would list it.
const TENANT_KEY: &str = r#"{"kty":"RSA","kid":"fuzz-azure","n":"795htCtpXxjJHTlzKBueaGblLbNsmv_CKf9_ZrJyU_zB3Wi5jhJmBqaYjMLk-ndOQPtq6ueq_RCYpouvpq7WyhwJ2X5wnYxhiW3LHEQXPl8v64rL02DdYaANZeUp61zugoDkfky4ZhPMWioueZfN8tsvUJHLeNJbWRAfOpeDmMWDIVb1qq3aYsxQswlkxUBxYOPEqzK9hfMURVe3sEVX-xTIFd6pEyNaSMu7cDyz9Zoz8z5OUacSsszOQ1qOBYY9czZwZ3QKTh1ZylJTrZSLnsRbiD2wbE-Fom2nQxM1-0ReCGCX0G1kRlY0Y_w2dWldUxPOHDcT-PG9EE_TCuwbbQ","e":"AQAB","alg":"RS256","use":"sig"}"#;

/// The seeds' tenant.
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// The seeds' "now": 100 s after their `iat`.
const NOW: u64 = 1_700_000_100;

fn provisioners() -> &'static [AzureProvisioner] {
    static ALL: OnceLock<Vec<AzureProvisioner>> = OnceLock::new();
    ALL.get_or_init(|| {
        (0..8u8)
            .map(|bits| {
                let mut json =
                    serde_json::json!({"type": "Azure", "name": "azure", "tenantID": TENANT});
                if bits & 1 != 0 {
                    json["claims"] = serde_json::json!({"enableSSHCA": true});
                }
                if bits & 2 != 0 {
                    json["disableTrustOnFirstUse"] = true.into();
                }
                if bits & 4 != 0 {
                    json["resourceGroups"] = serde_json::json!(["prod"]);
                    json["subscriptionIDs"] =
                        serde_json::json!(["0b1f6471-1bf0-4dda-aec3-cb9272f09590"]);
                    json["objectIDs"] = serde_json::json!(["e4d2a3c1-5b6f-4a7e-8c9d-0f1e2d3c4b5a"]);
                }
                AzureProvisioner::from_json_in(&json.to_string(), &ProvisionerContext::default())
                    .expect("the fuzz configurations are valid")
            })
            .collect()
    })
}

/// [`AzureProvisioner`]'s `authorize` on an arbitrary token with [`TENANT_KEY`] and the
/// tenant's v1 issuer trusted, or [`parse_resource_id`] on an arbitrary string.
///
/// Input layout: byte 0 — bit 7: the rest is a resource ID for the parser; otherwise bits
/// 0–1 pick the operation (X.509 sign, SSH host sign, SSH user sign, revoke) at its
/// endpoint of `https://127.0.0.1:9443`, bit 2 turns `enableSSHCA` on, bit 3 sets
/// `disableTrustOnFirstUse`, bit 4 sets the filters (resource group `prod`, the seeds'
/// subscription and object ID). The rest is the token.
///
/// Whatever the input: nothing panics; a parsed resource ID has exactly nine segments and
/// its canonical form parses back to itself; a grant is only for an RS256 token under the
/// trusted `kid`, from the tenant's issuer, for `https://management.azure.com/`, in the
/// tenant, with an `exp` at most 24 h after max(`nbf`, `iat`), for X.509 or SSH host
/// signing, with an `xms_mirid` that parses, and the trust-on-first-use id from it.
pub fn azure_identity_token(data: &[u8]) {
    use keystation_jose::{Jwk, parse_compact};

    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(text) = core::str::from_utf8(rest) else { return };
    if flags & 0x80 != 0 {
        if let Some(id) = parse_resource_id(text) {
            assert_eq!(text.split('/').count(), 9);
            assert_eq!(text.to_lowercase(), id.canonical());
            // Lower-casing may lengthen a Unicode group name past Azure's limit; otherwise
            // the canonical form parses back to itself.
            if let Some(again) = parse_resource_id(&id.canonical()) {
                assert_eq!(again.canonical(), id.canonical());
                assert_eq!(again.kind, id.kind);
            }
        }
        return;
    }
    let (operation, path) = [
        (Operation::SignX509, "/sign"),
        (Operation::SignSshHost, "/ssh/sign"),
        (Operation::SignSshUser, "/ssh/sign"),
        (Operation::RevokeX509, "/revoke"),
    ][usize::from(flags & 3)];
    let audience = format!("https://127.0.0.1:9443/1.0{path}");
    let provisioner = &provisioners()[usize::from((flags >> 2) & 7)];
    let key = Jwk::from_json(TENANT_KEY).expect("the seed key parses");
    let keys = TrustedKeys {
        keys: vec![(Some("fuzz-azure".into()), key.public_key().clone())],
        statements: vec![format!("{ISSUER_STATEMENT}https://sts.windows.net/{TENANT}/")],
        ..TrustedKeys::default()
    };
    let request = Request {
        credential: Credential::Token(text),
        operation,
        audience: &audience,
        subject_key: None,
    };
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let Ok(grant) = provisioner.authorize(&request, &keys, now) else { return };

    let jws = parse_compact(text).expect("a granted token parses");
    assert_eq!(jws.header().alg, "RS256");
    assert_eq!(jws.header().kid.as_deref(), Some("fuzz-azure"));
    let c = jws.unverified_claims().expect("a granted token has claims");
    assert_eq!(c.iss, Some(format!("https://sts.windows.net/{TENANT}/")));
    assert!(c.aud.iter().any(|a| a == "https://management.azure.com/"));
    let exp = c.exp.expect("a granted token has exp");
    let start = c.nbf.into_iter().chain(c.iat).max().unwrap_or(NOW as i64);
    assert!(exp - start <= 24 * 3600, "lifetime bounded");
    assert!(exp + 60 >= NOW as i64, "not expired");
    assert!(matches!(operation, Operation::SignX509 | Operation::SignSshHost));
    assert!(operation == Operation::SignX509 || flags & 4 != 0, "SSH needs enableSSHCA");
    let payload: serde_json::Value =
        serde_json::from_slice(jws.unverified_payload()).expect("a granted payload is JSON");
    assert_eq!(payload["tid"], TENANT);
    let mirid = payload["xms_mirid"].as_str().expect("xms_mirid");
    let identity = parse_resource_id(mirid).expect("a granted xms_mirid parses");
    assert_eq!(grant.sans, vec![grant.subject.clone()]);
    let replay = grant.replay_id.expect("every grant is single-use");
    if flags & 8 == 0 {
        let machine = payload["xms_az_rid"].as_str().and_then(parse_resource_id);
        let expected = match machine {
            Some(vm)
                if identity.kind == keystation_iid_azure::ResourceKind::UserAssignedIdentity
                    && vm.kind == keystation_iid_azure::ResourceKind::VirtualMachine =>
            {
                vm.canonical()
            }
            _ => identity.canonical(),
        };
        assert_eq!(replay, format!("tofu:{expected}"));
    } else {
        assert_eq!(replay.len(), 64);
    }
    if flags & 16 != 0 {
        assert!(identity.resource_group.eq_ignore_ascii_case("prod"));
    }
}
