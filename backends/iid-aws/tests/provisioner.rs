//! The AWS provisioner against documents and tokens in AWS's and step's exact formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use keystation_core::provisioner::{Denial, Operation};
use keystation_iid_aws::{AwsOptions, AwsProvisioner, FACTORY};
use keystation_provisioners::{
    ClaimsJson, ProvisionerContext, StepProvisioner as _, TokenPeek, provisioner_from_json_with,
    tofu_id,
};
use keystation_x509::Certificate;
use serde_json::json;
use sha2::Digest as _;

#[test]
fn a_signed_document_is_accepted_and_spends_the_instances_tofu_slot() {
    let p = provisioner(json!({}));
    let grant = sign(&p, &good_token("web.internal")).unwrap();
    assert_eq!(grant.provisioner, NAME);
    assert_eq!(grant.subject, "web.internal");
    assert_eq!(grant.sans, ["web.internal"]);
    assert_eq!(grant.replay_id.as_deref(), Some(tofu_id(INSTANCE).as_str()));
    assert_eq!(grant.not_after.duration_since(grant.not_before).unwrap(), 24 * HOUR);
    assert_eq!(grant.operations, [Operation::SignX509]);
}

#[test]
fn the_embedded_certificates_are_awss_and_refuse_test_documents() {
    let p = AwsProvisioner::from_json_in(
        r#"{"type":"AWS","name":"aws"}"#,
        &ProvisionerContext::default(),
    )
    .unwrap();
    assert_eq!(p.trusted_certificates(), (34, 16));
    let certs: Vec<Certificate> =
        p.trusted_certificate_ders().iter().map(|d| Certificate::from_der(d).unwrap()).collect();
    // 31 regions' certificates name Amazon Web Services LLC; two name ec2.amazonaws.com
    // (one of them Amazon.com Inc.).
    let aws_llc = certs[..33]
        .iter()
        .filter(|c| c.subject() == "O=Amazon Web Services LLC,L=Seattle,ST=Washington State,C=US")
        .count();
    assert_eq!(aws_llc, 31);
    assert_eq!(
        certs[..33].iter().filter(|c| c.subject().starts_with("CN=ec2.amazonaws.com,")).count(),
        2
    );
    assert!(certs[..33].iter().all(|c| c.spki_der().len() < 200), "RSA-1024 keys");
    let use1 = &certs[33];
    assert_eq!(use1.serial_hex().to_ascii_uppercase().trim_start_matches('0'), "B169CC401559A419");
    assert!(use1.not_after() > 7_000_000_000, "valid until 2195");
    // A document signed by anyone but AWS is refused, before any replay id exists.
    assert_eq!(denial(sign(&p, &good_token("web.internal"))), Denial::BadSignature);
}

#[test]
fn forged_documents_are_refused() {
    let p = provisioner(json!({ "accounts": [ACCOUNT], "instanceAge": "1h" }));
    let victim = default_document();
    // A victim's instance ID signed by another key.
    let sig = sign_with("iid-attacker-rsa1024", &victim);
    assert_eq!(
        denial(sign(&p, &token_with(&sig, &claims(&victim, &sig, "x")))),
        Denial::BadSignature
    );
    // The victim's document with a signature over another document.
    let other = document("i-0ffffffffffffffff", ACCOUNT, IP, "eu-west-1", unix(now()) - 60);
    let sig = sign_with("iid-test-rsa1024", &other);
    assert_eq!(
        denial(sign(&p, &token_with(&sig, &claims(&victim, &sig, "x")))),
        Denial::BadSignature
    );
    // A genuine document whose token's MAC is keyed with something else.
    let sig = sign_with("iid-test-rsa1024", &victim);
    assert_eq!(
        denial(sign(&p, &token_with(b"guess", &claims(&victim, &sig, "x")))),
        Denial::BadSignature
    );
    // A stale instance.
    let old = document(INSTANCE, ACCOUNT, IP, "eu-west-1", unix(now()) - 7200);
    let sig = sign_with("iid-test-rsa1024", &old);
    assert_eq!(
        denial(sign(&p, &token_with(&sig, &claims(&old, &sig, "x")))),
        Denial::PolicyViolation
    );
    // Another account.
    let foreign = document(INSTANCE, "210987654321", IP, "eu-west-1", unix(now()) - 60);
    let sig = sign_with("iid-test-rsa1024", &foreign);
    assert_eq!(
        denial(sign(&p, &token_with(&sig, &claims(&foreign, &sig, "x")))),
        Denial::PolicyViolation
    );
    // A document without instanceId.
    let bare = String::from_utf8(victim.clone()).unwrap().replace(INSTANCE, "").into_bytes();
    let sig = sign_with("iid-test-rsa1024", &bare);
    assert_eq!(denial(sign(&p, &token_with(&sig, &claims(&bare, &sig, "x")))), Denial::Malformed);
    // And the genuine one passes.
    let sig = sign_with("iid-test-rsa1024", &victim);
    assert!(sign(&p, &token_with(&sig, &claims(&victim, &sig, "x"))).is_ok());
}

#[test]
fn header_and_claims_are_checked() {
    let p = provisioner(json!({}));
    let doc = default_document();
    let sig = sign_with("iid-test-rsa1024", &doc);
    let good = claims(&doc, &sig, "web");
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = good.clone();
        f(&mut c);
        token_with(&sig, &c)
    };
    assert_eq!(denial(sign(&p, &with(&|c| c["iss"] = json!("aws")))), Denial::WrongIssuer);
    assert_eq!(
        denial(sign(&p, &with(&|c| c["aud"] = json!([format!("{SIGN}#aws/other")])))),
        Denial::WrongAudience
    );
    assert_eq!(denial(sign(&p, &with(&|c| c["aud"] = json!([SIGN])))), Denial::WrongAudience);
    assert_eq!(
        denial(sign(
            &p,
            &with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })
        )),
        Denial::MissingExpiry
    );
    let t = unix(now());
    assert_eq!(denial(sign(&p, &with(&|c| c["exp"] = json!(t + 3600)))), Denial::LifetimeTooLong);
    assert_eq!(
        denial(sign(
            &p,
            &with(&|c| {
                c["exp"] = json!(t - 200);
                c["nbf"] = json!(t - 400);
                c["iat"] = json!(t - 400);
            })
        )),
        Denial::Expired
    );
    assert_eq!(denial(sign(&p, &with(&|c| c["sub"] = json!("")))), Denial::Malformed);
    // alg other than HS256, even with a valid MAC.
    let payload = keystation_iid_aws::sign_token(&sig, good.to_string().as_bytes());
    let mut parts: Vec<String> = payload.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for alg in [r#"{"alg":"none"}"#, r#"{"alg":"HS512","typ":"JWT"}"#, r#"{"alg":"RS256"}"#] {
        parts[0] = b64url.encode(alg);
        let forged = parts.join(".");
        assert_eq!(denial(sign(&p, &forged)), Denial::BadSignature, "{alg}");
    }
    // Operations outside AWS's row of the capability matrix.
    let token = token_with(&sig, &good);
    for op in
        [Operation::RevokeX509, Operation::SignSshUser, Operation::RenewX509, Operation::Administer]
    {
        assert_eq!(denial(authorize(&p, &token, op, SIGN)), Denial::OperationNotAllowed, "{op:?}");
    }
    assert_eq!(
        denial(authorize(&p, &token, Operation::SignSshHost, SSH_SIGN)),
        Denial::WrongAudience,
        "the token names /1.0/sign"
    );
    assert!(sign(&p, &token).is_ok());
}

#[test]
fn disable_custom_sans_allows_the_instances_own_names_only() {
    let p = provisioner(json!({ "disableCustomSANs": true }));
    let doc = default_document();
    let sig = sign_with("iid-test-rsa1024", &doc);
    let with_sub = |sub: &str, sans: serde_json::Value| {
        let mut c = claims(&doc, &sig, sub);
        c["sans"] = sans;
        token_with(&sig, &c)
    };
    assert_eq!(
        denial(sign(&p, &with_sub("web.example.com", json!(null)))),
        Denial::PolicyViolation
    );
    for sub in [INSTANCE, IP, DNS] {
        let g = sign(&p, &with_sub(sub, json!(null))).unwrap();
        assert_eq!(g.subject, sub);
        assert_eq!(g.sans, [DNS, IP]);
    }
    // A subset of the two names (step-ca's PR #2044).
    assert_eq!(sign(&p, &with_sub(INSTANCE, json!([DNS]))).unwrap().sans, [DNS]);
    assert_eq!(sign(&p, &with_sub(IP, json!([IP]))).unwrap().sans, [IP]);
    assert_eq!(
        denial(sign(&p, &with_sub(INSTANCE, json!([DNS, "evil.example.com"])))),
        Denial::PolicyViolation
    );
    assert_eq!(denial(sign(&p, &with_sub(INSTANCE, json!(["10.0.0.9"])))), Denial::PolicyViolation);
    // Without disableCustomSANs the token's names are certified as it says.
    let open = provisioner(json!({}));
    assert_eq!(
        sign(&open, &with_sub("web", json!(["web", "web.example.com"]))).unwrap().sans,
        ["web", "web.example.com"]
    );
}

#[test]
fn disable_trust_on_first_use_makes_each_token_single_use() {
    let p = provisioner(json!({ "disableTrustOnFirstUse": true }));
    let (a, b) = (good_token("web"), good_token("web2"));
    let ga = sign(&p, &a).unwrap();
    let gb = sign(&p, &b).unwrap();
    let hash = |t: &str| {
        sha2::Sha256::digest(t.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(ga.replay_id, Some(hash(&a)));
    assert_ne!(ga.replay_id, gb.replay_id, "step's jti is the same for both");
}

#[test]
fn ssh_host_certificates_need_enable_ssh_ca() {
    let doc = default_document();
    let sig = sign_with("iid-test-rsa1024", &doc);
    let mut c = claims(&doc, &sig, INSTANCE);
    c["aud"] = json!([format!("{SSH_SIGN}#aws/{NAME}")]);
    let token = token_with(&sig, &c);
    let off = provisioner(json!({}));
    assert_eq!(
        denial(authorize(&off, &token, Operation::SignSshHost, SSH_SIGN)),
        Denial::OperationNotAllowed
    );
    let on = provisioner(json!({ "claims": { "enableSSHCA": true } }));
    let g = authorize(&on, &token, Operation::SignSshHost, SSH_SIGN).unwrap();
    assert_eq!(g.sans, [DNS, IP]);
    assert_eq!(g.not_after.duration_since(g.not_before).unwrap(), 720 * HOUR);
    assert_eq!(g.replay_id.as_deref(), Some(tofu_id(INSTANCE).as_str()));
}

#[test]
fn tokens_route_by_audience_fragment() {
    let p = provisioner(json!({}));
    let peek = TokenPeek::of(&good_token("web")).unwrap();
    assert!(p.routes(&peek));
    let other = provisioner_in(json!({ "name": "aws-prod" }), &ProvisionerContext::default());
    assert!(!other.routes(&peek));
}

#[test]
fn configuration_round_trips_and_bad_ones_are_refused() {
    let p = provisioner(json!({
        "accounts": [ACCOUNT], "disableCustomSANs": true, "instanceAge": "1h",
        "imdsVersions": ["v2"], "claims": { "maxTLSCertDuration": "48h" }
    }));
    let out: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(out["type"], "AWS");
    assert_eq!(out["accounts"], json!([ACCOUNT]));
    assert_eq!(out["instanceAge"], "1h0m0s");
    assert_eq!(out["disableCustomSANs"], true);
    assert_eq!(out["claims"]["maxTLSCertDuration"], "48h0m0s");
    let again =
        AwsProvisioner::from_json_in(&out.to_string(), &ProvisionerContext::default()).unwrap();
    assert_eq!(again.to_json(), p.to_json());
    let _ = ClaimsJson::default();
    for bad in [
        json!({"type":"AWS","name":"a","instanceAge":"-1h"}),
        json!({"type":"AWS","name":"a","iidRoots":"/x","iidRootsPem":"y"}),
        json!({"type":"AWS","name":"a","iidRoots":"/nonexistent/roots.pem"}),
        json!({"type":"AWS","name":"a","iidRootsPem":"no pem here"}),
        json!({"type":"AWS","name":"a","imdsVersions":["v3"]}),
        json!({"type":"AWS","name":"a","disableCustomSans":true}),
        json!({"type":"AWS","name":"a","options":{"x509":{"template":"{}"}}}),
        json!({"type":"GCP","name":"a"}),
    ] {
        assert!(
            AwsProvisioner::from_json_in(&bad.to_string(), &ProvisionerContext::default()).is_err(),
            "{bad}"
        );
    }
    // step-ca's iidRoots is a path.
    let dir = std::env::temp_dir().join(format!("iid-aws-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("roots.pem");
    std::fs::write(&path, read("iid-test-rsa1024.pem")).unwrap();
    let by_path = AwsProvisioner::from_json_in(
        &json!({"type":"AWS","name":NAME,"iidRoots":path}).to_string(),
        &ProvisionerContext::default(),
    )
    .unwrap();
    assert!(sign(&by_path, &good_token("web")).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
    // The builder's object and the factory.
    let mut options = AwsOptions::new("aws-prod");
    options.accounts = vec![ACCOUNT.into()];
    options.instance_age = Some(HOUR);
    options.disable_trust_on_first_use = true;
    let built =
        provisioner_from_json_with(&options.to_json(), &ProvisionerContext::default(), &[FACTORY])
            .unwrap();
    assert_eq!(built.kind(), keystation_provisioners::ProvisionerKind::Aws);
    assert!(built.to_json().contains(r#""instanceAge":"1h0m0s""#), "{}", built.to_json());
}

/// `openssl cms -sign` over `document` with the key pair `tests/data/<pair>`; `stream`
/// makes BER with indefinite lengths, as AWS's `/rsa2048` is.
fn cms_sign(pair: &str, document: &[u8], stream: bool) -> Vec<u8> {
    let dir =
        std::env::temp_dir().join(format!("iid-aws-cms-{}-{pair}-{stream}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (doc, out) = (dir.join("doc.json"), dir.join("doc.p7"));
    std::fs::write(&doc, document).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args([
        "cms",
        "-sign",
        "-nodetach",
        "-binary",
        "-md",
        "sha256",
        "-outform",
        "DER",
        "-nocerts",
    ])
    .arg("-signer")
    .arg(format!("{DATA}/{pair}.pem"))
    .arg("-inkey")
    .arg(format!("{DATA}/{pair}.key"))
    .arg("-in")
    .arg(&doc)
    .arg("-out")
    .arg(&out);
    if stream {
        cmd.arg("-stream");
    }
    let status = cmd.status().expect("openssl is needed to make PKCS#7 test documents");
    assert!(status.success());
    let der = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    der
}

fn pkcs7_token(pkcs7: &[u8], document: Option<&[u8]>, sub: &str) -> String {
    let mut c = claims(b"", b"", sub);
    c["amazon"] = match document {
        Some(d) => json!({ "pkcs7": b64(pkcs7), "document": b64(d) }),
        None => json!({ "pkcs7": b64(pkcs7) }),
    };
    token_with(pkcs7, &c)
}

#[test]
fn the_rsa2048_pkcs7_form_is_verified() {
    let p = provisioner(json!({}));
    let doc = default_document();
    for stream in [false, true] {
        let p7 = cms_sign("iid-test-rsa2048", &doc, stream);
        if stream {
            assert_eq!(&p7[..2], [0x30, 0x80], "BER with indefinite lengths, as AWS's");
        }
        assert_eq!(p.verify_pkcs7(&p7).unwrap(), doc);
        let g = sign(&p, &pkcs7_token(&p7, None, "web")).unwrap();
        assert_eq!(g.replay_id.as_deref(), Some(tofu_id(INSTANCE).as_str()));
        assert!(sign(&p, &pkcs7_token(&p7, Some(&doc), "web")).is_ok());
        // A claimed document other than the signed one.
        let other = document("i-0ffffffffffffffff", ACCOUNT, IP, "eu-west-1", unix(now()));
        assert_eq!(denial(sign(&p, &pkcs7_token(&p7, Some(&other), "web"))), Denial::BadSignature);
    }
    // Signed by an untrusted key: no trusted certificate is the signer.
    let attacker = cms_sign("iid-attacker-rsa1024", &doc, false);
    assert_eq!(denial(sign(&p, &pkcs7_token(&attacker, None, "web"))), Denial::UntrustedChain);
    // The RSA-2048 form needs an RSA-2048 key.
    let small = cms_sign("iid-test-rsa1024", &doc, false);
    assert_eq!(denial(sign(&p, &pkcs7_token(&small, None, "web"))), Denial::BadSignature);
    // A tampered content (same length, so the DER stays well-formed).
    let mut p7 = cms_sign("iid-test-rsa2048", &doc, false);
    let at = p7.windows(INSTANCE.len()).position(|w| w == INSTANCE.as_bytes()).unwrap();
    p7[at + INSTANCE.len() - 1] ^= 1;
    assert_eq!(denial(sign(&p, &pkcs7_token(&p7, None, "web"))), Denial::BadSignature);
    // The embedded roots do not know the test signer.
    let embedded = AwsProvisioner::from_json_in(
        r#"{"type":"AWS","name":"aws"}"#,
        &ProvisionerContext::default(),
    )
    .unwrap();
    let p7 = cms_sign("iid-test-rsa2048", &doc, true);
    assert_eq!(denial(sign(&embedded, &pkcs7_token(&p7, None, "web"))), Denial::UntrustedChain);
    // Both forms at once are refused.
    let sig = sign_with("iid-test-rsa1024", &doc);
    let mut c = claims(&doc, &sig, "web");
    c["amazon"]["pkcs7"] = json!(b64(&p7));
    assert_eq!(denial(sign(&p, &token_with(&sig, &c))), Denial::Malformed);
}
