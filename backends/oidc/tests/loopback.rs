//! The OIDC provisioner against a provider served on loopback by the test: a discovery
//! document and a JWKS over HTTP (tokio), ID tokens signed by the test's own keys in the
//! shape OpenID Connect Core §2 gives them. Keys are fetched through the provisioner's own
//! key source (keystation-fetch) and its cache (keystation-provisioners' `CachedKeys`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_jose::{Algorithm, Header, PrivateJwk, sign_compact};
use keystation_oidc::{OidcOptions, OidcProvisioner};
use keystation_provisioners::{CachedKeys, Claims, ProvisionerContext, StepProvisioner, TokenPeek};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CLIENT: &str = "keystation";
const AUDIENCE: &str = "https://ca.example:9000/1.0/sign";

/// A provider on loopback: what it serves can be changed while it runs.
struct FakeProvider {
    issuer: String,
    discovery_issuer: Arc<Mutex<String>>,
    jwks: Arc<Mutex<String>>,
    cache_control: Arc<Mutex<String>>,
}

async fn start_provider(keys: &[&PrivateJwk]) -> FakeProvider {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let provider = FakeProvider {
        issuer: issuer.clone(),
        discovery_issuer: Arc::new(Mutex::new(issuer.clone())),
        jwks: Arc::new(Mutex::new(jwks(keys))),
        cache_control: Arc::new(Mutex::new("public, max-age=3600".into())),
    };
    let (discovery_issuer, jwks_body, cache) =
        (provider.discovery_issuer.clone(), provider.jwks.clone(), provider.cache_control.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (discovery_issuer, jwks_body, cache, issuer) =
                (discovery_issuer.clone(), jwks_body.clone(), cache.clone(), issuer.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 2048];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, body) = match path.as_str() {
                    "/.well-known/openid-configuration" => {
                        let iss = discovery_issuer.lock().unwrap().clone();
                        (
                            "200 OK",
                            serde_json::json!({
                                "issuer": iss,
                                "jwks_uri": format!("{issuer}/jwks"),
                                "authorization_endpoint": format!("{issuer}/auth"),
                                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                            })
                            .to_string(),
                        )
                    }
                    "/jwks" => ("200 OK", jwks_body.lock().unwrap().clone()),
                    _ => ("404 Not Found", "{}".to_owned()),
                };
                let cache = cache.lock().unwrap().clone();
                let cache = if cache.is_empty() {
                    String::new()
                } else {
                    format!("cache-control: {cache}\r\n")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{cache}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    provider
}

fn jwks(keys: &[&PrivateJwk]) -> String {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            let mut v: serde_json::Value = serde_json::from_str(&k.public().to_json()).unwrap();
            v["use"] = "sig".into();
            v["alg"] = k.algorithm().name().into();
            v
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

fn key(alg: Algorithm, kid: &str) -> PrivateJwk {
    PrivateJwk::generate(alg).unwrap().with_kid(kid)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An ID token as a provider makes it, with `edit` applied to the claims.
fn id_token(key: &PrivateJwk, issuer: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let t = now();
    let mut claims = serde_json::json!({
        "iss": issuer,
        "sub": "alice",
        "aud": CLIENT,
        "exp": t + 600,
        "iat": t,
        "auth_time": t,
        "nonce": "n-0123456789",
        "email": "alice@example.com",
        "email_verified": true,
        "groups": ["ops", "dev"],
    });
    edit(&mut claims);
    sign_compact(
        key,
        &Header::jwt(key.public().kid().map(str::to_owned)),
        claims.to_string().as_bytes(),
    )
    .unwrap()
}

fn provisioner(issuer: &str, edit: impl FnOnce(&mut OidcOptions)) -> OidcProvisioner {
    let mut options = OidcOptions {
        name: "sso".into(),
        client_id: CLIENT.into(),
        client_secret: "s3cret".into(),
        configuration_endpoint: issuer.into(),
        admins: vec!["root@example.com".into(), "admin-sub".into()],
        claims: Claims { enable_ssh_ca: Some(true), ..Claims::default() },
        ..OidcOptions::default()
    };
    edit(&mut options);
    OidcProvisioner::from_json_in(&options.to_json(), &ProvisionerContext::default()).unwrap()
}

fn authorize(
    p: &OidcProvisioner,
    keys: &TrustedKeys,
    token: &str,
    operation: Operation,
) -> Result<Grant, Denial> {
    let request = Request {
        credential: Credential::Token(token),
        operation,
        audience: AUDIENCE,
        subject_key: None,
    };
    p.authorize(&request, keys, SystemTime::now()).map_err(|e| match e {
        keystation_core::Error::Unauthorized(d) => d,
        other => panic!("not a denial: {other}"),
    })
}

async fn fetch(p: &OidcProvisioner) -> TrustedKeys {
    p.key_source().unwrap().fetch().await.unwrap()
}

#[tokio::test]
async fn a_providers_token_is_accepted_with_step_cas_names() {
    let signer = key(Algorithm::Rs256, "rsa-1");
    let other = key(Algorithm::Es256, "ec-1");
    let idp = start_provider(&[&signer, &other]).await;
    let p = provisioner(&idp.issuer, |_| {});
    let keys = fetch(&p).await;
    assert_eq!(keys.keys.len(), 2);
    assert_eq!(p.key_source().unwrap().max_age(), Duration::from_secs(3600), "Cache-Control");

    let token = id_token(&signer, &idp.issuer, |_| {});
    let grant = authorize(&p, &keys, &token, Operation::SignX509).unwrap();
    assert_eq!(grant.provisioner, "sso");
    assert_eq!(grant.subject, "alice");
    assert_eq!(grant.sans, ["alice@example.com".to_owned(), format!("{}#alice", idp.issuer)]);
    assert_eq!(grant.replay_id.as_deref(), Some("n-0123456789"));
    let validity = grant.not_after.duration_since(grant.not_before).unwrap();
    assert_eq!(validity, Duration::from_secs(24 * 3600), "step-ca's default TLS lifetime");
    assert!(authorize(&p, &keys, &token, Operation::RenewX509).is_ok());

    // The ES256 key of the same set verifies too; without a nonce the replay id is the
    // token's SHA-256.
    let token = id_token(&other, &idp.issuer, |c| {
        c.as_object_mut().unwrap().remove("nonce");
    });
    let grant = authorize(&p, &keys, &token, Operation::SignX509).unwrap();
    let id = grant.replay_id.unwrap();
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));

    // azp equal to the client ID, aud a list with others: accepted.
    let token = id_token(&signer, &idp.issuer, |c| {
        c["aud"] = serde_json::json!(["other-api", CLIENT]);
        c["azp"] = CLIENT.into();
    });
    assert!(authorize(&p, &keys, &token, Operation::SignX509).is_ok());
    // Cognito's string "true".
    let token = id_token(&signer, &idp.issuer, |c| c["email_verified"] = "true".into());
    assert!(authorize(&p, &keys, &token, Operation::SignX509).is_ok());
    // No email at all: the URI SAN alone.
    let token = id_token(&signer, &idp.issuer, |c| {
        let c = c.as_object_mut().unwrap();
        c.remove("email");
        c.remove("email_verified");
    });
    let grant = authorize(&p, &keys, &token, Operation::SignX509).unwrap();
    assert_eq!(grant.sans, [format!("{}#alice", idp.issuer)]);
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused() {
    let signer = key(Algorithm::Rs256, "rsa-1");
    let idp = start_provider(&[&signer]).await;
    let p = provisioner(&idp.issuer, |_| {});
    let keys = fetch(&p).await;
    let ok = |edit: fn(&mut serde_json::Value)| id_token(&signer, &idp.issuer, edit);
    let denied = |token: &str| authorize(&p, &keys, token, Operation::SignX509).unwrap_err();

    // Another provider's key: the same kid (a forgery) or its own kid (unknown here).
    let impostor = key(Algorithm::Rs256, "rsa-1");
    assert_eq!(denied(&id_token(&impostor, &idp.issuer, |_| {})), Denial::BadSignature);
    let second = key(Algorithm::Rs256, "second-idp");
    assert_eq!(denied(&id_token(&second, &idp.issuer, |_| {})), Denial::UnknownKey);
    // The header cannot choose the algorithm: PS256 claimed over an RS256 key.
    let ps = PrivateJwk::from_json(&signer.to_json()).unwrap().with_alg(Algorithm::Ps256).unwrap();
    assert_eq!(denied(&id_token(&ps, &idp.issuer, |_| {})), Denial::BadSignature);

    assert_eq!(denied(&ok(|c| c["email_verified"] = false.into())), Denial::PolicyViolation);
    assert_eq!(
        denied(&ok(|c| {
            c.as_object_mut().unwrap().remove("email_verified");
        })),
        Denial::PolicyViolation,
        "an email without email_verified is not verified"
    );
    assert_eq!(denied(&ok(|c| c["exp"] = (now() - 120).into())), Denial::Expired);
    assert_eq!(
        denied(&ok(|c| {
            c.as_object_mut().unwrap().remove("exp");
        })),
        Denial::MissingExpiry
    );
    assert_eq!(denied(&ok(|c| c["exp"] = (now() + 7200).into())), Denial::LifetimeTooLong);
    assert_eq!(denied(&ok(|c| c["iat"] = (now() + 600).into())), Denial::NotYetValid);
    assert_eq!(denied(&ok(|c| c["aud"] = "another-client".into())), Denial::WrongAudience);
    assert_eq!(
        denied(&ok(|c| {
            c["aud"] = serde_json::json!([CLIENT, "another-client"]);
            c["azp"] = "another-client".into();
        })),
        Denial::WrongAudience
    );
    assert_eq!(denied(&ok(|c| c["iss"] = "https://evil.example".into())), Denial::WrongIssuer);
    assert_eq!(denied(&ok(|c| c["sub"] = "".into())), Denial::Malformed);
    assert_eq!(denied(&ok(|c| c["email"] = 7.into())), Denial::Malformed);
    assert_eq!(denied("not-a-token"), Denial::Malformed);

    // Without fetched keys (no issuer statement) nothing is accepted.
    let token = ok(|_| {});
    let bare = TrustedKeys { keys: keys.keys.clone(), ..TrustedKeys::default() };
    assert_eq!(authorize(&p, &bare, &token, Operation::SignX509), Err(Denial::UnknownKey));
    // Operations an ID token never authorizes.
    for op in [Operation::RekeyX509, Operation::RenewSsh, Operation::RekeySsh, Operation::TakeJobs]
    {
        assert_eq!(authorize(&p, &keys, &token, op), Err(Denial::OperationNotAllowed), "{op:?}");
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_rotated_set_rate_limited() {
    let old = key(Algorithm::Es256, "2024");
    let idp = start_provider(&[&old]).await;
    let p = provisioner(&idp.issuer, |_| {});
    let cache = CachedKeys::with_refetch_interval(p.key_source().unwrap(), Duration::from_secs(60));
    let keys = cache.keys_for("t").await.unwrap();

    // The provider rotates; a token with the new kid is UnknownKey against the cached set.
    let new = key(Algorithm::Es256, "2025");
    *idp.jwks.lock().unwrap() = jwks(&[&old, &new]);
    let token = id_token(&new, &idp.issuer, |_| {});
    assert_eq!(authorize(&p, &keys, &token, Operation::SignX509), Err(Denial::UnknownKey));
    let keys = cache.refetch_for_unknown_kid().await.unwrap().expect("first refetch runs");
    assert!(authorize(&p, &keys, &token, Operation::SignX509).is_ok());
    // A token naming keys that do not exist cannot make the authority hammer the provider.
    assert!(cache.refetch_for_unknown_kid().await.unwrap().is_none(), "rate limited");
}

#[tokio::test]
async fn domains_groups_and_admins() {
    let signer = key(Algorithm::Es256, "k");
    let idp = start_provider(&[&signer]).await;
    let p = provisioner(&idp.issuer, |o| {
        o.domains = vec!["Example.COM".into()];
        o.groups = vec!["ops".into(), "sre".into()];
    });
    let keys = fetch(&p).await;
    let run = |op: Operation, edit: &dyn Fn(&mut serde_json::Value)| {
        authorize(&p, &keys, &id_token(&signer, &idp.issuer, edit), op)
    };

    assert!(run(Operation::SignX509, &|c| c["email"] = "alice@EXAMPLE.com".into()).is_ok());
    assert_eq!(
        run(Operation::SignX509, &|c| c["email"] = "alice@example.com.evil.org".into()),
        Err(Denial::PolicyViolation)
    );
    assert_eq!(
        run(Operation::SignX509, &|c| c["email"] = "alice@other.example".into()),
        Err(Denial::PolicyViolation)
    );
    assert_eq!(
        run(Operation::SignX509, &|c| {
            c.as_object_mut().unwrap().remove("email");
        }),
        Err(Denial::PolicyViolation),
        "domains need a verified email"
    );
    // Admins bypass the domain list, not the groups.
    let root = |c: &mut serde_json::Value| {
        c["email"] = "root@example.com".into();
        c["sub"] = "root".into();
    };
    assert!(
        run(Operation::SignX509, &|c| {
            c["sub"] = "admin-sub".into();
            c["email"] = "someone@elsewhere.example".into();
        })
        .is_ok()
    );
    assert_eq!(
        run(Operation::SignX509, &|c| c["groups"] = serde_json::json!(["dev"])),
        Err(Denial::PolicyViolation)
    );
    assert!(run(Operation::SignX509, &|c| c["groups"] = "sre".into()).is_ok(), "a single string");
    assert_eq!(
        run(Operation::SignX509, &|c| {
            c.as_object_mut().unwrap().remove("groups");
        }),
        Err(Denial::PolicyViolation)
    );

    // Revoke and the admin API: admins only; the grant's subject is the admin.
    for op in [Operation::RevokeX509, Operation::RevokeSsh, Operation::Administer] {
        assert_eq!(run(op, &|_| {}), Err(Denial::OperationNotAllowed), "{op:?} by a user");
        let grant = run(op, &root).unwrap();
        assert_eq!(grant.subject, "root@example.com");
        assert!(grant.sans.is_empty());
    }
    let grant = run(Operation::Administer, &|c| c["sub"] = "admin-sub".into()).unwrap();
    assert_eq!(grant.subject, "admin-sub");
    // An unverified email does not make an admin (the token is refused outright).
    assert_eq!(
        run(Operation::RevokeX509, &|c| {
            root(c);
            c["email_verified"] = false.into();
        }),
        Err(Denial::PolicyViolation)
    );

    // SSH user certificates for the user's own principals; host certificates never.
    let grant = run(Operation::SignSshUser, &|_| {}).unwrap();
    assert_eq!(grant.subject, "alice@example.com");
    assert_eq!(grant.sans, ["alice", "alice@example.com"]);
    assert_eq!(
        grant.not_after.duration_since(grant.not_before).unwrap(),
        Duration::from_secs(16 * 3600)
    );
    assert_eq!(run(Operation::SignSshHost, &|_| {}), Err(Denial::OperationNotAllowed));
    assert_eq!(run(Operation::SignSshHost, &root), Err(Denial::OperationNotAllowed));

    // Without enableSSHCA, no SSH at all.
    let no_ssh = provisioner(&idp.issuer, |o| o.claims = Claims::default());
    let token = id_token(&signer, &idp.issuer, |_| {});
    assert_eq!(
        authorize(&no_ssh, &keys, &token, Operation::SignSshUser),
        Err(Denial::OperationNotAllowed)
    );
}

#[tokio::test]
async fn discovery_must_name_its_own_issuer_and_cache_lifetimes_are_bounded() {
    let signer = key(Algorithm::Es256, "k");
    let idp = start_provider(&[&signer]).await;
    let p = provisioner(&idp.issuer, |_| {});
    let source = p.key_source().unwrap();

    *idp.cache_control.lock().unwrap() = "max-age=0".into();
    source.fetch().await.unwrap();
    assert_eq!(source.max_age(), keystation_oidc::MIN_MAX_AGE);
    *idp.cache_control.lock().unwrap() = "max-age=31536000".into();
    source.fetch().await.unwrap();
    assert_eq!(source.max_age(), keystation_oidc::MAX_MAX_AGE);
    *idp.cache_control.lock().unwrap() = "no-store".into();
    source.fetch().await.unwrap();
    assert_eq!(source.max_age(), keystation_oidc::MIN_MAX_AGE);
    *idp.cache_control.lock().unwrap() = String::new();
    source.fetch().await.unwrap();
    assert_eq!(source.max_age(), keystation_oidc::DEFAULT_MAX_AGE, "no Cache-Control: 12 h");

    *idp.discovery_issuer.lock().unwrap() = "https://accounts.evil.example".into();
    let e = source.fetch().await.unwrap_err();
    let cause = std::error::Error::source(&e).unwrap().to_string();
    assert!(cause.contains("names issuer"), "{cause}");

    // A tenant template: {tenantid} replaced, the issuer taken as step-ca takes it.
    *idp.discovery_issuer.lock().unwrap() = format!("{}/{{tenantid}}/v2.0", idp.issuer);
    let tenant = provisioner(&idp.issuer, |o| o.tenant_id = Some("t-1".into()));
    let keys = fetch(&tenant).await;
    let iss = format!("{}/t-1/v2.0", idp.issuer);
    let token = id_token(&signer, &iss, |c| c["tid"] = "t-1".into());
    assert!(authorize(&tenant, &keys, &token, Operation::SignX509).is_ok());
    let token = id_token(&signer, &iss, |c| c["tid"] = "t-2".into());
    assert_eq!(authorize(&tenant, &keys, &token, Operation::SignX509), Err(Denial::WrongIssuer));
}

#[test]
fn configuration_round_trips_routes_by_client_and_keeps_the_secret_out_of_logs() {
    let json = r#"{"type":"oidc","name":"Google","clientID":"1087160488420.apps.googleusercontent.com","clientSecret":"udTrOT3gzrO7W9fDPgZQLfYJ","configurationEndpoint":"https://accounts.google.com/.well-known/openid-configuration","admins":["you@smallstep.com"],"domains":["smallstep.com"],"listenAddress":":10000","claims":{"maxTLSCertDuration":"8h","defaultTLSCertDuration":"2h","enableSSHCA":true},"maxTokenLifetime":"30m"}"#;
    let p = OidcProvisioner::from_json_in(json, &ProvisionerContext::default()).unwrap();
    assert_eq!(p.discovery_url(), "https://accounts.google.com/.well-known/openid-configuration");
    assert_eq!(p.max_token_lifetime(), Duration::from_secs(1800));
    assert_eq!(p.claims().tls.default, Duration::from_secs(7200));
    let debug = format!("{p:?}");
    assert!(!debug.contains("udTrOT3gzrO7W9fDPgZQLfYJ"), "{debug}");
    let out: serde_json::Value = serde_json::from_str(&StepProvisioner::to_json(&p)).unwrap();
    assert_eq!(out["type"], "OIDC");
    assert_eq!(out["clientSecret"], "udTrOT3gzrO7W9fDPgZQLfYJ", "step's login flow reads it");
    assert_eq!(out["maxTokenLifetime"], "30m0s");
    assert_eq!(out["claims"]["defaultTLSCertDuration"], "2h0m0s");
    let again =
        OidcProvisioner::from_json_in(&out.to_string(), &ProvisionerContext::default()).unwrap();
    assert_eq!(StepProvisioner::to_json(&again), StepProvisioner::to_json(&p));

    // Through the registry's factory.
    let built = keystation_provisioners::provisioner_from_json_with(
        json,
        &ProvisionerContext::default(),
        &[keystation_oidc::FACTORY],
    )
    .unwrap();
    assert_eq!(built.kind(), keystation_provisioners::ProvisionerKind::Oidc);
    assert!(built.key_source().is_some());

    let peek = |payload: serde_json::Value| {
        use std::fmt::Write as _;
        let b64 = |s: &str| {
            // base64url without padding, by hand to keep the dev-dependencies short.
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in s.as_bytes().chunks(3) {
                let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b))
                    << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    let _ = out.write_char(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        };
        TokenPeek::of(&format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(&payload.to_string())))
            .unwrap()
    };
    let client = "1087160488420.apps.googleusercontent.com";
    assert!(
        p.routes(&peek(serde_json::json!({"iss": "https://accounts.google.com", "aud": client})))
    );
    assert!(p.routes(&peek(serde_json::json!({"aud": ["x", client]}))));
    assert!(p.routes(&peek(serde_json::json!({"azp": client, "aud": "other"}))));
    assert!(
        !p.routes(&peek(serde_json::json!({"iss": "Google", "aud": "other"}))),
        "never by name"
    );

    for bad in [
        json.replace(
            "\"clientID\":\"1087160488420.apps.googleusercontent.com\"",
            "\"clientID\":\"\"",
        ),
        json.replace(
            "https://accounts.google.com/.well-known",
            "ftp://accounts.google.com/.well-known",
        ),
        json.replace("\"30m\"", "\"-1m\""),
        json.replace("\":10000\"", "\"nope\""),
        json.replace("\"admins\"", "\"admin\""),
        json.replace(
            "\"maxTokenLifetime\":\"30m\"",
            "\"options\":{\"x509\":{\"templateFile\":\"t.tpl\"}}",
        ),
    ] {
        assert!(
            OidcProvisioner::from_json_in(&bad, &ProvisionerContext::default()).is_err(),
            "{bad}"
        );
    }
}

/// The fuzz target's body (fuzz/src/oidc.rs), compiled here too, replays its seeds.
#[path = "../../../fuzz/src/oidc.rs"]
#[allow(dead_code, unreachable_pub)]
mod fuzz_body;

#[test]
fn fuzz_seeds_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/oidc_token");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        fuzz_body::oidc_token(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 10, "seeds in {}", dir.display());
}
