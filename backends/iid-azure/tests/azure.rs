//! The Azure provisioner against managed-identity tokens in the format IMDS hands out (v1
//! access tokens with `tid`, `oid`, `xms_mirid`), signed by the test's own RSA keys, with
//! the discovery document and JWK set served by a loopback server through keystation-fetch;
//! and the client against a loopback metadata service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::Provisioner as _;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_fetch::{FetchOptions, Fetcher};
use keystation_iid_azure::{AzureOptions, AzureProvisioner, FACTORY, identity_token};
use keystation_jose::{Algorithm, Header, PrivateJwk, sign_compact};
use keystation_provisioners::{ProvisionerContext, StepProvisioner as _, TokenPeek};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const NOW: i64 = 1_700_000_000;
const SIGN: &str = "https://ca.example:9000/1.0/sign";
const SSH_SIGN: &str = "https://ca.example:9000/1.0/ssh/sign";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SUB: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
const OID: &str = "e4d2a3c1-5b6f-4a7e-8c9d-0f1e2d3c4b5a";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW as u64)
}

/// A loopback HTTP/1.1 server answering each request with `answer(request head)`:
/// (status, extra headers, body). Records the request heads.
async fn serve(
    answer: impl Fn(&str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let answer = answer.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                log.lock().unwrap().push(head.clone());
                let (status, headers, body) = answer(&head);
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = socket.write_all(out.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (base, seen)
}

struct Tenant {
    key: PrivateJwk,
    discovery: String,
}

fn vm_id(group: &str, vm: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourcegroups/{group}/providers/Microsoft.Compute/virtualMachines/{vm}"
    )
}

/// A tenant: its signing key, a loopback server for its v1 discovery document and JWK set
/// (with Microsoft's extra members), and the discovery URL.
async fn tenant() -> Tenant {
    let key =
        PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("nOo3ZDrODXEK1jKWhXslHR_KXEg");
    let mut public: serde_json::Value = serde_json::from_str(&key.public().to_json()).unwrap();
    public.as_object_mut().unwrap().remove("alg");
    public["kid"] = "nOo3ZDrODXEK1jKWhXslHR_KXEg".into();
    public["x5t"] = "nOo3ZDrODXEK1jKWhXslHR_KXEg".into();
    public["x5c"] = serde_json::json!(["MIIDBTCCAe2gAwIBAgIQ"]);
    let jwks = serde_json::json!({"keys": [public]}).to_string();
    let base = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let (url, _) = serve(move |head| {
        let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
        if path == format!("/{TENANT}/.well-known/openid-configuration") {
            let doc = serde_json::json!({
                "token_endpoint": format!("https://login.microsoftonline.com/{TENANT}/oauth2/token"),
                "jwks_uri": format!("{}/common/discovery/keys", b.lock().unwrap()),
                "issuer": format!("https://sts.windows.net/{TENANT}/"),
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU"
            });
            (200, vec![], doc.to_string().into_bytes())
        } else if path == "/common/discovery/keys" {
            (200, vec![("cache-control".into(), "max-age=900".into())], jwks.clone().into_bytes())
        } else {
            (404, vec![], b"not found".to_vec())
        }
    })
    .await;
    *base.lock().unwrap() = url.clone();
    Tenant { key, discovery: format!("{url}/{TENANT}/.well-known/openid-configuration") }
}

/// Claims as IMDS writes them for a VM's system-assigned identity.
fn claims(mirid: &str) -> serde_json::Value {
    serde_json::json!({
        "aud": "https://management.azure.com/",
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": NOW - 300,
        "nbf": NOW - 300,
        "exp": NOW - 300 + 86399,
        "aio": "E2ZgYJiXe5mBq3zl",
        "appid": "4e1b7a2c-9d3f-4a5b-8c6d-7e8f9a0b1c2d",
        "appidacr": "2",
        "idp": format!("https://sts.windows.net/{TENANT}/"),
        "idtyp": "app",
        "oid": OID,
        "rh": "0.AXkAv4j5cvGGr0GRqy180BHbR0ZIf3kAutdPukPawfj2MBN5AAA.",
        "sub": OID,
        "tid": TENANT,
        "uti": "fJb4pWbh_0ya2nLCpKpmAA",
        "ver": "1.0",
        "xms_mirid": mirid,
        "xms_tcdt": 1_600_000_000
    })
}

fn sign(key: &PrivateJwk, kid: &str, claims: &serde_json::Value) -> String {
    let header = Header::jwt(Some(kid.into()));
    sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

const KID: &str = "nOo3ZDrODXEK1jKWhXslHR_KXEg";

fn provisioner(extra: serde_json::Value, discovery: &str) -> AzureProvisioner {
    let mut json = serde_json::json!({"type": "Azure", "name": "azure", "tenantID": TENANT, "openidConfigUrl": discovery});
    for (k, v) in extra.as_object().unwrap() {
        json[k] = v.clone();
    }
    AzureProvisioner::from_json_in(&json.to_string(), &ProvisionerContext::default()).unwrap()
}

async fn keys_of(p: &AzureProvisioner) -> TrustedKeys {
    p.key_source().unwrap().fetch().await.unwrap()
}

fn authorize(
    p: &AzureProvisioner,
    keys: &TrustedKeys,
    token: &str,
    op: Operation,
) -> Result<Grant, Denial> {
    let audience = match op {
        Operation::SignSshHost | Operation::SignSshUser => SSH_SIGN,
        _ => SIGN,
    };
    let request = Request {
        credential: Credential::Token(token),
        operation: op,
        audience,
        subject_key: None,
    };
    match p.authorize(&request, keys, now()) {
        Ok(grant) => Ok(grant),
        Err(keystation_core::Error::Unauthorized(d)) => Err(d),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn keystation_core_b64(text: &str) -> String {
    // base64url without padding, written out to keep the test free of another dependency.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_managed_identity_token_is_accepted_once_per_vm() {
    let t = tenant().await;
    let p = provisioner(
        serde_json::json!({"resourceGroups": ["Prod-RG"], "subscriptionIDs": [SUB.to_uppercase()], "objectIDs": [OID]}),
        &t.discovery,
    );
    let source = p.key_source().unwrap();
    let keys = source.fetch().await.unwrap();
    assert_eq!(source.max_age(), Duration::from_secs(900));
    let mirid = vm_id("prod-rg", "web-1");
    let token = sign(&t.key, KID, &claims(&mirid));
    let grant = authorize(&p, &keys, &token, Operation::SignX509).unwrap();
    assert_eq!(grant.subject, "web-1");
    assert_eq!(grant.sans, ["web-1"]);
    assert_eq!(grant.replay_id, Some(format!("tofu:{}", mirid.to_lowercase())));
    let peek = TokenPeek::of(&token).unwrap();
    assert!(p.routes(&peek));
    let mut json: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    json["tenantID"] = "contoso.onmicrosoft.com".into();
    let other =
        AzureProvisioner::from_json_in(&json.to_string(), &ProvisionerContext::default()).unwrap();
    assert!(!other.routes(&peek));
    let custom = provisioner(serde_json::json!({"audience": "api://keystation"}), &t.discovery);
    assert!(!custom.routes(&peek), "another audience");
}

#[tokio::test]
async fn user_assigned_identities_are_certified_for_their_vm() {
    let t = tenant().await;
    let p = provisioner(serde_json::json!({"resourceGroups": ["identities"]}), &t.discovery);
    let keys = keys_of(&p).await;
    let uai = format!(
        "/subscriptions/{SUB}/resourcegroups/identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fleet"
    );
    let vm = vm_id("vms", "db-7");
    let mut c = claims(&uai);
    c["xms_az_rid"] = vm.clone().into();
    let grant = authorize(&p, &keys, &sign(&t.key, KID, &c), Operation::SignX509).unwrap();
    assert_eq!(grant.subject, "db-7");
    assert_eq!(grant.replay_id, Some(format!("tofu:{}", vm.to_lowercase())));
    // Without xms_az_rid the identity stands for the instance.
    let grant =
        authorize(&p, &keys, &sign(&t.key, KID, &claims(&uai)), Operation::SignX509).unwrap();
    assert_eq!(grant.subject, "fleet");
    assert_eq!(grant.replay_id, Some(format!("tofu:{}", uai.to_lowercase())));
}

#[tokio::test]
async fn forged_tokens_are_refused_and_produce_no_replay_id() {
    let t = tenant().await;
    let p = provisioner(serde_json::json!({}), &t.discovery);
    let keys = keys_of(&p).await;
    let attacker = PrivateJwk::generate(Algorithm::Rs256).unwrap();
    let victim = claims(&vm_id("prod", "victim-vm"));
    assert_eq!(
        authorize(&p, &keys, &sign(&attacker, KID, &victim), Operation::SignX509),
        Err(Denial::BadSignature)
    );
    assert_eq!(
        authorize(&p, &keys, &sign(&attacker, "attacker-kid", &victim), Operation::SignX509),
        Err(Denial::UnknownKey)
    );
    let good = sign(&t.key, KID, &victim);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut other = victim.clone();
    other["xms_mirid"] = vm_id("prod", "another-vm").into();
    parts[1] = keystation_core_b64(&other.to_string());
    assert_eq!(
        authorize(&p, &keys, &parts.join("."), Operation::SignX509),
        Err(Denial::BadSignature)
    );
    // Keys without the discovery issuer (not from the key source) refuse everything.
    let bare = TrustedKeys { keys: keys.keys.clone(), ..TrustedKeys::default() };
    assert_eq!(authorize(&p, &bare, &good, Operation::SignX509), Err(Denial::UnknownKey));
}

#[tokio::test]
async fn filters_times_tenants_and_resource_ids_refuse() {
    let t = tenant().await;
    let p = provisioner(
        serde_json::json!({"resourceGroups": ["prod"], "subscriptionIDs": [SUB], "objectIDs": [OID], "claims": {"enableSSHCA": true}}),
        &t.discovery,
    );
    let keys = keys_of(&p).await;
    let ok = vm_id("prod", "web-1");
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(&ok);
        f(&mut c);
        sign(&t.key, KID, &c)
    };
    assert!(authorize(&p, &keys, &with(&|_| {}), Operation::SignX509).is_ok());
    let other_sub = "11111111-2222-3333-4444-555555555555";
    let mut cases: Vec<(String, String, Denial)> = vec![
        (
            "wrong tenant".into(),
            with(&|c| c["tid"] = "f8cdef31-a31e-4b4a-93e4-5f571e91255a".into()),
            Denial::WrongIssuer,
        ),
        (
            "wrong issuer".into(),
            with(&|c| c["iss"] = "https://login.microsoftonline.com/x/v2.0".into()),
            Denial::WrongIssuer,
        ),
        (
            "wrong audience".into(),
            with(&|c| c["aud"] = "https://vault.azure.net".into()),
            Denial::WrongAudience,
        ),
        (
            "wrong resource group".into(),
            with(&|c| c["xms_mirid"] = vm_id("dev", "web-1").into()),
            Denial::PolicyViolation,
        ),
        (
            "wrong subscription".into(),
            with(&|c| c["xms_mirid"] = ok.replace(SUB, other_sub).into()),
            Denial::PolicyViolation,
        ),
        ("wrong object id".into(), with(&|c| c["oid"] = other_sub.into()), Denial::PolicyViolation),
        (
            "no object id".into(),
            with(&|c| {
                c.as_object_mut().unwrap().remove("oid");
            }),
            Denial::PolicyViolation,
        ),
        (
            "expired".into(),
            with(&|c| {
                c["exp"] = (NOW - 120).into();
            }),
            Denial::Expired,
        ),
        (
            "no exp".into(),
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Denial::MissingExpiry,
        ),
        (
            "lives 25 h".into(),
            with(&|c| c["exp"] = (NOW - 300 + 25 * 3600).into()),
            Denial::LifetimeTooLong,
        ),
        (
            "no xms_mirid".into(),
            with(&|c| {
                c.as_object_mut().unwrap().remove("xms_mirid");
            }),
            Denial::Malformed,
        ),
    ];
    for bad in [
        ok.replace("Microsoft.Compute", "Microsoft_Compute"),
        ok.replace("Microsoft.Compute", "MicrosoftXCompute"),
        format!("{ok}/"),
        format!("{ok}/extensions/evil"),
        ok.replace("virtualMachines", "virtualMachineScaleSets"),
        ok.replace("/web-1", "/web 1"),
        ok.replace("/resourcegroups/", "/resourcegroup/"),
        ok.replace(SUB, "sub"),
        format!("/x{ok}"),
    ] {
        cases.push((
            format!("xms_mirid {bad:?}"),
            with(&|c| c["xms_mirid"] = bad.clone().into()),
            Denial::Malformed,
        ));
    }
    for (what, token, denial) in &cases {
        assert_eq!(authorize(&p, &keys, token, Operation::SignX509), Err(*denial), "{what}");
        // The same filters hold for SSH (step-ca skips them there).
        assert_eq!(
            authorize(&p, &keys, token, Operation::SignSshHost),
            Err(*denial),
            "SSH: {what}"
        );
    }
}

#[tokio::test]
async fn operations_follow_the_capability_matrix() {
    let t = tenant().await;
    let plain = provisioner(serde_json::json!({}), &t.discovery);
    let keys = keys_of(&plain).await;
    let token = sign(&t.key, KID, &claims(&vm_id("prod", "web-1")));
    for op in [
        Operation::RevokeX509,
        Operation::RenewX509,
        Operation::RekeyX509,
        Operation::SignSshUser,
        Operation::RevokeSsh,
        Operation::RenewSsh,
        Operation::RekeySsh,
    ] {
        assert_eq!(
            authorize(&plain, &keys, &token, op),
            Err(Denial::OperationNotAllowed),
            "{op:?}"
        );
    }
    assert_eq!(
        authorize(&plain, &keys, &token, Operation::SignSshHost),
        Err(Denial::OperationNotAllowed)
    );
    let ssh = provisioner(serde_json::json!({"claims": {"enableSSHCA": true}}), &t.discovery);
    let host = authorize(&ssh, &keys, &token, Operation::SignSshHost).unwrap();
    assert_eq!(
        (host.subject.as_str(), host.sans.as_slice()),
        ("web-1", ["web-1".to_owned()].as_slice())
    );
    assert_eq!(
        host.not_after.duration_since(host.not_before).unwrap(),
        Duration::from_secs(720 * 3600)
    );
}

#[tokio::test]
async fn without_trust_on_first_use_each_token_is_single_use() {
    let t = tenant().await;
    let p = provisioner(serde_json::json!({"disableTrustOnFirstUse": true}), &t.discovery);
    let keys = keys_of(&p).await;
    let token = sign(&t.key, KID, &claims(&vm_id("prod", "web-1")));
    let id = authorize(&p, &keys, &token, Operation::SignX509).unwrap().replay_id.unwrap();
    assert_eq!(id.len(), 64);
    assert!(!keystation_provisioners::is_tofu_id(&id));
}

#[tokio::test]
async fn the_factory_builds_and_bad_discovery_fails_the_fetch() {
    let options =
        AzureOptions { name: "azure".into(), tenant_id: TENANT.into(), ..AzureOptions::default() };
    let built = keystation_provisioners::provisioner_from_json_with(
        &options.to_json(),
        &ProvisionerContext::default(),
        &[FACTORY],
    )
    .unwrap();
    assert_eq!(built.kind(), keystation_provisioners::ProvisionerKind::Azure);
    let (base, _) = serve(|head| {
        if head.contains("/empty") {
            (200, vec![], br#"{"issuer":"","jwks_uri":"x"}"#.to_vec())
        } else {
            (
                200,
                vec![],
                br#"{"issuer":"https://sts.windows.net/t/","jwks_uri":"http://127.0.0.1:9/keys"}"#
                    .to_vec(),
            )
        }
    })
    .await;
    for path in ["/empty", "/unreachable-jwks"] {
        let p = provisioner(serde_json::json!({}), &format!("{base}{path}"));
        assert!(p.key_source().unwrap().fetch().await.is_err(), "{path}");
    }
}

#[tokio::test]
async fn the_client_asks_the_metadata_service_as_step_does() {
    let t = tenant().await;
    let token = sign(&t.key, KID, &claims(&vm_id("prod", "web-1")));
    let answer = serde_json::json!({
        "access_token": token,
        "client_id": "4e1b7a2c-9d3f-4a5b-8c6d-7e8f9a0b1c2d",
        "expires_in": "86399",
        "expires_on": "1700086099",
        "ext_expires_in": "86399",
        "not_before": "1699999700",
        "resource": "https://management.azure.com/",
        "token_type": "Bearer"
    })
    .to_string();
    let (base, seen) = serve(move |head| {
        if head.to_ascii_lowercase().contains("\r\nmetadata: true\r\n") {
            (200, vec![("content-type".into(), "application/json".into())], answer.clone().into_bytes())
        } else {
            (400, vec![], br#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#.to_vec())
        }
    })
    .await;
    let fetcher = Fetcher::new(FetchOptions::default()).unwrap();
    let got = identity_token(&fetcher, &base, "https://management.azure.com/").await.unwrap();
    assert_eq!(got, token);
    let head = seen.lock().unwrap()[0].clone();
    assert_eq!(
        head.lines().next().unwrap(),
        "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F HTTP/1.1"
    );
    let p = provisioner(serde_json::json!({}), &t.discovery);
    let keys = keys_of(&p).await;
    assert!(authorize(&p, &keys, &got, Operation::SignX509).is_ok());
    let (junk, _) = serve(|_| (200, vec![], br#"{"access_token":""}"#.to_vec())).await;
    assert!(identity_token(&fetcher, &junk, "https://management.azure.com/").await.is_err());
    let (refused, _) = serve(|_| (400, vec![], b"{}".to_vec())).await;
    assert!(identity_token(&fetcher, &refused, "https://management.azure.com/").await.is_err());
}
