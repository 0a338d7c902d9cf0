//! The client against a loopback fake of the instance metadata service (IMDSv2), and its
//! token through the provisioner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use keystation_fetch::{FetchOptions, Fetcher, PlainHttp};
use keystation_iid_aws::{IdentityTokenOptions, SignatureForm, identity_token};
use keystation_provisioners::tofu_id;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SESSION: &str = "AQAEAFakeSessionToken==";

/// Serves `document`, `signature` (base64, as the metadata service does, in 64-column
/// lines) and `rsa2048` behind IMDSv2's session token; records each request line.
async fn fake_imds(
    document: Vec<u8>,
    signature: String,
    rsa2048: String,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            let text = String::from_utf8_lossy(&buffer).to_string();
            let request_line = text.lines().next().unwrap_or_default().to_owned();
            let header = |name: &str| {
                text.lines().find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.trim().to_owned())
                })
            };
            seen.lock().unwrap().push(request_line.clone());
            let authorized = header("x-aws-ec2-metadata-token").as_deref() == Some(SESSION);
            let (status, body): (&str, Vec<u8>) =
                match request_line.split(' ').take(2).collect::<Vec<_>>()[..] {
                    ["PUT", "/latest/api/token"]
                        if header("x-aws-ec2-metadata-token-ttl-seconds").is_some() =>
                    {
                        ("200 OK", SESSION.as_bytes().to_vec())
                    }
                    ["GET", _] if !authorized => ("401 Unauthorized", Vec::new()),
                    ["GET", "/latest/dynamic/instance-identity/document"] => {
                        ("200 OK", document.clone())
                    }
                    ["GET", "/latest/dynamic/instance-identity/signature"] => {
                        ("200 OK", signature.clone().into_bytes())
                    }
                    ["GET", "/latest/dynamic/instance-identity/rsa2048"] => {
                        ("200 OK", rsa2048.clone().into_bytes())
                    }
                    _ => ("404 Not Found", Vec::new()),
                };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        }
    });
    (base, log)
}

fn lines(b64: &str) -> String {
    b64.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn fetcher() -> Fetcher {
    Fetcher::new(FetchOptions { plain_http: PlainHttp::Loopback, ..FetchOptions::default() })
        .unwrap()
}

#[tokio::test]
async fn the_clients_token_is_steps_and_the_provisioner_accepts_it() {
    let doc = default_document();
    let signature = sign_with("iid-test-rsa1024", &doc);
    let (base, log) = fake_imds(doc.clone(), lines(&b64(&signature)), String::new()).await;
    let options = IdentityTokenOptions::new(CA, NAME, INSTANCE);
    let token = identity_token(&fetcher(), &base, &options).await.unwrap();

    // IMDSv2: the session first, then the document and its signature with it.
    let requests = log.lock().unwrap().clone();
    assert_eq!(requests[0], "PUT /latest/api/token HTTP/1.1");
    assert!(
        requests[1..].iter().all(|r| r.starts_with("GET /latest/dynamic/instance-identity/")),
        "{requests:?}"
    );

    // step's token: HS256 keyed with the signature, step's claims.
    use base64::Engine as _;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&b64url.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
    let claims: serde_json::Value =
        serde_json::from_slice(&b64url.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], "ec2.amazonaws.com");
    assert_eq!(claims["sub"], INSTANCE);
    assert_eq!(claims["aud"], json!([format!("{CA}/1.0/sign#aws/{NAME}")]));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert_eq!(claims["sans"], serde_json::Value::Null);
    assert_eq!(claims["amazon"]["document"], b64(&doc));
    assert_eq!(claims["amazon"]["signature"], b64(&signature));
    use sha2::Digest as _;
    let jti: String = sha2::Sha256::digest(format!("aws/{NAME}.{INSTANCE}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(claims["jti"], jti);

    let p = provisioner(json!({ "disableCustomSANs": true, "accounts": [ACCOUNT] }));
    let grant = sign(&p, &token).unwrap();
    assert_eq!(grant.subject, INSTANCE);
    assert_eq!(grant.sans, [DNS, IP]);
    assert_eq!(grant.replay_id.as_deref(), Some(tofu_id(INSTANCE).as_str()));
}

#[tokio::test]
async fn the_rsa2048_form_when_asked() {
    let doc = default_document();
    let dir = std::env::temp_dir().join(format!("iid-aws-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("doc"), &doc).unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-nodetach",
            "-binary",
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-nocerts",
            "-stream",
        ])
        .arg("-signer")
        .arg(format!("{DATA}/iid-test-rsa2048.pem"))
        .arg("-inkey")
        .arg(format!("{DATA}/iid-test-rsa2048.key"))
        .arg("-in")
        .arg(dir.join("doc"))
        .arg("-out")
        .arg(dir.join("p7"))
        .status()
        .expect("openssl makes the PKCS#7 test document");
    assert!(status.success());
    let p7 = std::fs::read(dir.join("p7")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let (base, log) = fake_imds(doc.clone(), String::new(), lines(&b64(&p7))).await;
    let mut options = IdentityTokenOptions::new(CA, NAME, "web.internal");
    options.form = SignatureForm::Pkcs7Rsa2048;
    options.sans = vec!["web.internal".into(), "10.0.0.1".into()];
    let token = identity_token(&fetcher(), &base, &options).await.unwrap();
    assert!(log.lock().unwrap().iter().any(|r| r.contains("/rsa2048")));
    assert!(!log.lock().unwrap().iter().any(|r| r.contains("/signature")));
    let grant = sign(&provisioner(json!({})), &token).unwrap();
    assert_eq!(grant.sans, ["web.internal", "10.0.0.1"]);
    assert_eq!(grant.replay_id.as_deref(), Some(tofu_id(INSTANCE).as_str()));
}

#[tokio::test]
async fn a_metadata_service_refusing_the_session_is_an_error() {
    let options = IdentityTokenOptions::new(CA, NAME, INSTANCE);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = identity_token(&fetcher(), &base, &options).await.unwrap_err();
    assert!(err.to_string().contains("IMDSv2 session token"), "{err}");
}
