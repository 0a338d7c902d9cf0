//! The GCP provisioner against identity tokens in Google's format (`format=full`), signed by
//! the test's own RSA keys, with the JWK set served by a loopback server through
//! keystation-fetch; and the client against a loopback metadata server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::Provisioner as _;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_fetch::{FetchOptions, Fetcher};
use keystation_iid_gcp::{FACTORY, GcpOptions, GcpProvisioner, identity_token};
use keystation_jose::{Algorithm, Header, PrivateJwk, sign_compact};
use keystation_provisioners::{ProvisionerContext, StepProvisioner as _, TokenPeek};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const NOW: i64 = 1_700_000_000;
const CA: &str = "https://ca.example:9000";
const SIGN: &str = "https://ca.example:9000/1.0/sign";
const SSH_SIGN: &str = "https://ca.example:9000/1.0/ssh/sign";

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

struct Google {
    key: PrivateJwk,
    jwks: String,
}

fn google() -> Google {
    let key = PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("google-key-1");
    let mut public: serde_json::Value = serde_json::from_str(&key.public().to_json()).unwrap();
    public["kid"] = "google-key-1".into();
    let jwks = serde_json::json!({"keys": [public]}).to_string();
    Google { key, jwks }
}

/// Claims as Google writes them for `format=full` (verifying-instance-identity#payload).
fn claims(aud: &str) -> serde_json::Value {
    serde_json::json!({
        "aud": aud,
        "azp": "112233445566778899000",
        "email": "123456789-compute@developer.gserviceaccount.com",
        "email_verified": true,
        "exp": NOW - 10 + 3600,
        "google": {
            "compute_engine": {
                "instance_creation_timestamp": NOW - 600,
                "instance_id": "5105478374537282466",
                "instance_name": "web-1",
                "license_id": ["1000010"],
                "project_id": "acme-prod",
                "project_number": 123456789,
                "zone": "europe-west1-b"
            }
        },
        "iat": NOW - 10,
        "iss": "https://accounts.google.com",
        "sub": "112233445566778899000"
    })
}

fn sign(key: &PrivateJwk, kid: &str, claims: &serde_json::Value) -> String {
    let header = Header::jwt(Some(kid.into()));
    sign_compact(key, &header, claims.to_string().as_bytes()).unwrap()
}

fn provisioner(extra: serde_json::Value, certs_url: &str) -> GcpProvisioner {
    let mut json = serde_json::json!({"type": "GCP", "name": "google", "certsUrl": certs_url});
    for (k, v) in extra.as_object().unwrap() {
        json[k] = v.clone();
    }
    GcpProvisioner::from_json_in(&json.to_string(), &ProvisionerContext::default()).unwrap()
}

async fn keys_of(p: &GcpProvisioner) -> TrustedKeys {
    p.key_source().unwrap().fetch().await.unwrap()
}

fn authorize(
    p: &GcpProvisioner,
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

async fn jwks_server(g: &Google) -> String {
    let jwks = g.jwks.clone();
    let (base, _) = serve(move |_| {
        (
            200,
            vec![("cache-control".into(), "public, max-age=600".into())],
            jwks.clone().into_bytes(),
        )
    })
    .await;
    format!("{base}/oauth2/v3/certs")
}

#[tokio::test]
async fn a_google_token_is_accepted_once_per_instance() {
    let g = google();
    let url = jwks_server(&g).await;
    let p = provisioner(
        serde_json::json!({"projectIDs": ["acme-prod"], "serviceAccounts": ["123456789-compute@developer.gserviceaccount.com"], "instanceAge": "1h"}),
        &url,
    );
    let source = p.key_source().unwrap();
    let keys = source.fetch().await.unwrap();
    assert_eq!(source.max_age(), Duration::from_secs(600), "Cache-Control max-age");
    let token = sign(&g.key, "google-key-1", &claims(&format!("{SIGN}#gcp/google")));
    let grant = authorize(&p, &keys, &token, Operation::SignX509).unwrap();
    assert_eq!(grant.provisioner, "google");
    assert_eq!(grant.subject, "web-1");
    assert_eq!(
        grant.sans,
        ["web-1.c.acme-prod.internal", "web-1.europe-west1-b.c.acme-prod.internal"]
    );
    assert_eq!(grant.replay_id.as_deref(), Some("tofu:acme-prod/5105478374537282466"));
    assert_eq!(
        grant.not_after.duration_since(grant.not_before).unwrap(),
        Duration::from_secs(24 * 3600)
    );
    let peek = TokenPeek::of(&token).unwrap();
    assert!(p.routes(&peek));
    assert!(!provisioner(serde_json::json!({"name": "other"}), &url).routes(&peek));
}

#[tokio::test]
async fn forged_tokens_are_refused_and_produce_no_replay_id() {
    let g = google();
    let url = jwks_server(&g).await;
    let p = provisioner(serde_json::json!({}), &url);
    let keys = keys_of(&p).await;
    let aud = format!("{SIGN}#gcp/google");
    let attacker = PrivateJwk::generate(Algorithm::Rs256).unwrap();

    // The victim's instance in a token signed by the attacker's key, under Google's kid and
    // under its own.
    let victim = claims(&aud);
    assert_eq!(
        authorize(&p, &keys, &sign(&attacker, "google-key-1", &victim), Operation::SignX509),
        Err(Denial::BadSignature)
    );
    assert_eq!(
        authorize(&p, &keys, &sign(&attacker, "attacker", &victim), Operation::SignX509),
        Err(Denial::UnknownKey)
    );
    // A header without kid; an ES256 token under Google's kid.
    let es = PrivateJwk::generate(Algorithm::Es256).unwrap();
    assert_eq!(
        authorize(&p, &keys, &sign(&es, "google-key-1", &victim), Operation::SignX509),
        Err(Denial::BadSignature)
    );
    // A tampered payload.
    let good = sign(&g.key, "google-key-1", &victim);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut other = victim.clone();
    other["google"]["compute_engine"]["instance_id"] = "1".into();
    parts[1] = keystation_core_b64(&other.to_string());
    assert_eq!(
        authorize(&p, &keys, &parts.join("."), Operation::SignX509),
        Err(Denial::BadSignature)
    );
    assert_eq!(authorize(&p, &keys, "not-a-token", Operation::SignX509), Err(Denial::Malformed));
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
async fn filters_times_and_audiences_refuse() {
    let g = google();
    let url = jwks_server(&g).await;
    let p = provisioner(
        serde_json::json!({"projectIDs": ["acme-prod"], "serviceAccounts": ["112233445566778899000"], "instanceAge": "30m"}),
        &url,
    );
    let keys = keys_of(&p).await;
    let aud = format!("{SIGN}#gcp/google");
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(&aud);
        f(&mut c);
        sign(&g.key, "google-key-1", &c)
    };
    let cases: Vec<(&str, String, Denial)> = vec![
        (
            "stale creation time",
            with(&|c| {
                c["google"]["compute_engine"]["instance_creation_timestamp"] = (NOW - 3600).into()
            }),
            Denial::PolicyViolation,
        ),
        (
            "no creation time",
            with(&|c| {
                c["google"]["compute_engine"]
                    .as_object_mut()
                    .unwrap()
                    .remove("instance_creation_timestamp");
            }),
            Denial::PolicyViolation,
        ),
        (
            "wrong project",
            with(&|c| c["google"]["compute_engine"]["project_id"] = "other-project".into()),
            Denial::PolicyViolation,
        ),
        (
            "wrong service account",
            with(&|c| {
                c["sub"] = "999".into();
                c["email"] = "x@developer.gserviceaccount.com".into();
            }),
            Denial::PolicyViolation,
        ),
        ("wrong issuer", with(&|c| c["iss"] = "accounts.google.com".into()), Denial::WrongIssuer),
        (
            "other provisioner",
            with(&|c| c["aud"] = format!("{SIGN}#gcp/other").into()),
            Denial::WrongAudience,
        ),
        ("no fragment", with(&|c| c["aud"] = SIGN.into()), Denial::WrongAudience),
        (
            "other CA",
            with(&|c| c["aud"] = "https://evil.example/1.0/sign#gcp/google".into()),
            Denial::WrongAudience,
        ),
        (
            "expired",
            with(&|c| {
                c["iat"] = (NOW - 7200).into();
                c["exp"] = (NOW - 3600).into();
            }),
            Denial::Expired,
        ),
        (
            "no exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Denial::MissingExpiry,
        ),
        ("lives 2 h", with(&|c| c["exp"] = (NOW - 10 + 7200).into()), Denial::LifetimeTooLong),
        (
            "no instance id",
            with(&|c| c["google"]["compute_engine"]["instance_id"] = "".into()),
            Denial::Malformed,
        ),
        (
            "no zone",
            with(&|c| {
                c["google"]["compute_engine"].as_object_mut().unwrap().remove("zone");
            }),
            Denial::Malformed,
        ),
        (
            "format=standard",
            with(&|c| {
                c.as_object_mut().unwrap().remove("google");
            }),
            Denial::Malformed,
        ),
    ];
    for (what, token, denial) in cases {
        assert_eq!(authorize(&p, &keys, &token, Operation::SignX509), Err(denial), "{what}");
    }
    // The service account may match by verified email.
    let p2 = provisioner(
        serde_json::json!({"serviceAccounts": ["123456789-compute@developer.gserviceaccount.com"]}),
        &url,
    );
    assert!(authorize(&p2, &keys, &with(&|_| {}), Operation::SignX509).is_ok());
    let unverified = with(&|c| c["email_verified"] = false.into());
    assert_eq!(
        authorize(&p2, &keys, &unverified, Operation::SignX509),
        Err(Denial::PolicyViolation)
    );
}

#[tokio::test]
async fn operations_follow_the_capability_matrix() {
    let g = google();
    let url = jwks_server(&g).await;
    let token = sign(&g.key, "google-key-1", &claims(&format!("{SIGN}#gcp/google")));
    let plain = provisioner(serde_json::json!({}), &url);
    let keys = keys_of(&plain).await;
    for op in [
        Operation::RevokeX509,
        Operation::RenewX509,
        Operation::RekeyX509,
        Operation::RevokeSsh,
        Operation::RenewSsh,
    ] {
        assert_eq!(
            authorize(&plain, &keys, &token, op),
            Err(Denial::OperationNotAllowed),
            "{op:?}"
        );
    }
    assert_eq!(
        authorize(&plain, &keys, &token, Operation::SignSshHost),
        Err(Denial::OperationNotAllowed),
        "no enableSSHCA"
    );

    let ssh = provisioner(serde_json::json!({"claims": {"enableSSHCA": true}}), &url);
    // step's client asks for the sign audience also for SSH.
    let host = authorize(&ssh, &keys, &token, Operation::SignSshHost).unwrap();
    assert_eq!(host.subject, "web-1");
    assert_eq!(host.sans.len(), 2);
    assert_eq!(
        host.not_after.duration_since(host.not_before).unwrap(),
        Duration::from_secs(720 * 3600)
    );
    assert_eq!(
        authorize(&ssh, &keys, &token, Operation::SignSshUser),
        Err(Denial::OperationNotAllowed),
        "user certificates are opt-in"
    );
    let ssh_token = sign(&g.key, "google-key-1", &claims(&format!("{SSH_SIGN}#gcp/google")));
    assert!(authorize(&ssh, &keys, &ssh_token, Operation::SignSshHost).is_ok());
    assert_eq!(authorize(&ssh, &keys, &ssh_token, Operation::SignX509), Err(Denial::WrongAudience));

    let users = provisioner(
        serde_json::json!({"claims": {"enableSSHCA": true}, "disableSSHCAUser": false, "disableSSHCAHost": true}),
        &url,
    );
    let user = authorize(&users, &keys, &token, Operation::SignSshUser).unwrap();
    assert_eq!(user.subject, "123456789-compute@developer.gserviceaccount.com");
    assert_eq!(
        user.sans,
        ["sa_112233445566778899000", "123456789-compute@developer.gserviceaccount.com"]
    );
    assert_eq!(
        authorize(&users, &keys, &token, Operation::SignSshHost),
        Err(Denial::OperationNotAllowed)
    );
}

#[tokio::test]
async fn without_trust_on_first_use_each_token_is_single_use() {
    let g = google();
    let url = jwks_server(&g).await;
    let p = provisioner(serde_json::json!({"disableTrustOnFirstUse": true}), &url);
    let keys = keys_of(&p).await;
    let token = sign(&g.key, "google-key-1", &claims(&format!("{SIGN}#gcp/google")));
    let grant = authorize(&p, &keys, &token, Operation::SignX509).unwrap();
    let id = grant.replay_id.unwrap();
    assert_eq!(id.len(), 64);
    assert!(!keystation_provisioners::is_tofu_id(&id));
}

#[tokio::test]
async fn the_factory_builds_from_the_options_object() {
    let options = GcpOptions {
        name: "google".into(),
        project_ids: vec!["acme-prod".into()],
        ..GcpOptions::default()
    };
    let built = keystation_provisioners::provisioner_from_json_with(
        &options.to_json(),
        &ProvisionerContext::default(),
        &[FACTORY],
    )
    .unwrap();
    assert_eq!(built.kind(), keystation_provisioners::ProvisionerKind::Gcp);
    assert_eq!(built.name(), "google");
    assert!(built.key_source().is_some());
    assert_eq!(built.key_source().unwrap().max_age(), keystation_iid_gcp::DEFAULT_MAX_AGE);
}

#[tokio::test]
async fn an_unreachable_jwks_fails_the_fetch() {
    let p = provisioner(serde_json::json!({}), "http://127.0.0.1:9/certs");
    assert!(p.key_source().unwrap().fetch().await.is_err());
    let (base, _) = serve(|_| (200, vec![], b"{\"keys\":[]}".to_vec())).await;
    let p = provisioner(serde_json::json!({}), &format!("{base}/certs"));
    assert!(p.key_source().unwrap().fetch().await.is_err(), "no usable key");
}

#[tokio::test]
async fn the_client_asks_the_metadata_server_as_step_does() {
    let g = google();
    let token = sign(&g.key, "google-key-1", &claims(&format!("{SIGN}#gcp/google")));
    let answer = token.clone();
    let (base, seen) = serve(move |head| {
        if head.to_ascii_lowercase().contains("\r\nmetadata-flavor: google\r\n") {
            (
                200,
                vec![("content-type".into(), "application/text".into())],
                format!("{answer}\n").into_bytes(),
            )
        } else {
            (403, vec![], b"Missing Metadata-Flavor:Google header.".to_vec())
        }
    })
    .await;
    let fetcher = Fetcher::new(FetchOptions::default()).unwrap();
    let got = identity_token(&fetcher, &base, &format!("{CA}/ignored"), "google").await.unwrap();
    assert_eq!(got, token);
    let head = seen.lock().unwrap()[0].clone();
    let first = head.lines().next().unwrap();
    assert_eq!(
        first,
        "GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=https%3A%2F%2Fca.example%3A9000%2F1.0%2Fsign%23gcp%2Fgoogle&format=full&licenses=FALSE HTTP/1.1"
    );
    // The token the client got is the one the provisioner accepts.
    let url = jwks_server(&g).await;
    let p = provisioner(serde_json::json!({}), &url);
    let keys = keys_of(&p).await;
    assert!(authorize(&p, &keys, &got, Operation::SignX509).is_ok());

    let (bad, _) = serve(|_| (404, vec![], b"no".to_vec())).await;
    assert!(identity_token(&fetcher, &bad, CA, "google").await.is_err());
    let (junk, _) = serve(|_| (200, vec![], b"hello world".to_vec())).await;
    assert!(identity_token(&fetcher, &junk, CA, "google").await.is_err());
}
