//! Targets for `keystation-iid-aws`: the AWS provisioner's `authorize` on arbitrary token
//! payloads (identity documents, their signatures, step's claims), and the PKCS#7
//! (`/rsa2048`) reader.

use std::time::{Duration, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_iid_aws::{AWS_OPERATIONS, AwsProvisioner, IdentityDocument, pkcs7, sign_token};
use keystation_provisioners::{ProvisionerContext, tofu_id};

/// The tests' RSA-1024 certificate (AWS's "RSA format" size), which signed the seeds'
/// documents; its key stays in the iid-aws tests.
const TEST_RSA1024: &str = include_str!("../../backends/iid-aws/tests/data/iid-test-rsa1024.pem");
/// The tests' RSA-2048 certificate, which signed the `aws_pkcs7` seeds.
const TEST_RSA2048: &str = include_str!("../../backends/iid-aws/tests/data/iid-test-rsa2048.pem");

/// The seeds' "now": 10 s after their `iat`.
const AWS_NOW: u64 = 1_760_000_000;

fn aws_provisioner(flags: u8) -> Option<AwsProvisioner> {
    let mut config = serde_json::json!({
        "type": "AWS",
        "name": "aws",
        "iidRootsPem": format!("{TEST_RSA1024}{TEST_RSA2048}"),
        "claims": { "enableSSHCA": true },
    });
    if flags & 0x04 != 0 {
        config["disableCustomSANs"] = true.into();
    }
    if flags & 0x08 != 0 {
        config["accounts"] = serde_json::json!(["123456789012"]);
        config["instanceAge"] = "1h".into();
    }
    if flags & 0x10 != 0 {
        config["disableTrustOnFirstUse"] = true.into();
    }
    AwsProvisioner::from_json_in(&config.to_string(), &ProvisionerContext::default()).ok()
}

/// Standard base64 with padding; `None` on anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

/// `AwsProvisioner::authorize` on a token.
///
/// Input layout: byte 0 — bits 0–1 pick the operation (X.509 sign, SSH host sign, revoke,
/// SSH user sign); bit 2 `disableCustomSANs`; bit 3 `accounts` (`123456789012`) and
/// `instanceAge` 1h; bit 4 `disableTrustOnFirstUse`; bit 5: the rest is a whole token
/// (else it is the token's payload JSON, and the target MACs it with the bytes of its
/// `amazon.signature` or `amazon.pkcs7`, as step's client does, so that mutations reach
/// the document's signature and the claims). The provisioner trusts the tests'
/// certificates, which signed the seeds' documents.
///
/// Whatever the input: nothing panics; a grant is only for an operation AWS allows, for
/// a document whose signature verifies with a trusted certificate, with the verified
/// instance's TOFU id (or a token hash under `disableTrustOnFirstUse`), and under
/// `disableCustomSANs` only for the instance's private DNS name and IP.
pub fn aws_identity_document(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Some(p) = aws_provisioner(flags) else { return };
    let operation = [
        Operation::SignX509,
        Operation::SignSshHost,
        Operation::RevokeX509,
        Operation::SignSshUser,
    ][usize::from(flags & 0x03)];
    let audience = match operation {
        Operation::SignSshHost | Operation::SignSshUser => "https://ca.example:9000/1.0/ssh/sign",
        Operation::RevokeX509 => "https://ca.example:9000/1.0/revoke",
        _ => "https://ca.example:9000/1.0/sign",
    };
    let payload: Option<serde_json::Value> = serde_json::from_slice(rest).ok();
    let token = if flags & 0x20 != 0 {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        }
    } else {
        let key = payload
            .as_ref()
            .and_then(|p| p.get("amazon"))
            .and_then(|a| a.get("signature").or_else(|| a.get("pkcs7")))
            .and_then(|s| s.as_str())
            .and_then(base64_decode)
            .unwrap_or_default();
        sign_token(&key, rest)
    };
    let request =
        Request { credential: Credential::Token(&token), operation, audience, subject_key: None };
    let now = UNIX_EPOCH + Duration::from_secs(AWS_NOW);
    let Ok(grant) = p.authorize(&request, &TrustedKeys::default(), now) else { return };
    assert!(AWS_OPERATIONS.contains(&operation), "{operation:?} granted");
    // The token carried a document that verifies: find it again from the token itself.
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|part| {
            let bytes = base64url_decode(part)?;
            serde_json::from_slice::<serde_json::Value>(&bytes).ok()
        })
        .expect("a granted token has a JSON payload");
    let amazon = &claims["amazon"];
    let text = |k: &str| amazon.get(k).and_then(|v| v.as_str()).and_then(base64_decode);
    let document = match (text("signature"), text("pkcs7")) {
        (Some(signature), None) => {
            let document = text("document").expect("the signature form carries the document");
            assert!(
                p.verify_document_signature(&document, &signature),
                "unverified document granted"
            );
            document
        }
        (None, Some(p7)) => p.verify_pkcs7(&p7).expect("unverified PKCS#7 granted"),
        _ => panic!("granted without one signature form"),
    };
    let document = IdentityDocument::parse(&document).expect("a granted document parses");
    let replay = grant.replay_id.expect("AWS grants are single-use");
    if flags & 0x10 != 0 {
        assert!(replay.len() == 64 && replay.bytes().all(|b| b.is_ascii_hexdigit()), "{replay}");
    } else {
        assert_eq!(replay, tofu_id(&document.instance_id), "TOFU from the verified document");
    }
    if flags & 0x04 != 0 {
        let dns = document.private_dns_name();
        let ip = document.private_ip.to_string();
        assert!(grant.sans.iter().all(|s| *s == dns || *s == ip), "{:?}", grant.sans);
        assert!([&dns, &ip, &document.instance_id].contains(&&grant.subject), "{}", grant.subject);
    }
    if flags & 0x08 != 0 {
        assert_eq!(document.account_id, "123456789012");
        let pending = document.pending_time.expect("instanceAge needs pendingTime");
        assert!(AWS_NOW as i64 - pending <= 3600);
    }
}

/// base64url without padding; `None` on anything else.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    base64_decode(&standard)
}

/// The PKCS#7 reader on arbitrary bytes: BER normalisation and the SignedData checks.
///
/// Whatever the input: nothing panics; normalised DER normalises to itself; a verified
/// document is only one the tests' RSA-2048 certificate signed (the only RSA-2048 key
/// trusted), and is the content of the normalised message.
pub fn aws_pkcs7(data: &[u8]) {
    if let Some(der) = pkcs7::ber_to_der(data) {
        assert_eq!(pkcs7::ber_to_der(&der).as_deref(), Some(&der[..]), "DER is a fixed point");
        assert!(der.len() <= data.len(), "normalising never grows the input");
    }
    let Some(p) = aws_provisioner(0) else { return };
    if let Ok(document) = p.verify_pkcs7(data) {
        let der = pkcs7::ber_to_der(data).expect("a verified PKCS#7 normalises");
        assert!(der.windows(document.len()).any(|w| w == document), "the content is the message's");
    }
}
