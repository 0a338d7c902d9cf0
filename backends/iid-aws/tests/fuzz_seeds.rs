//! The fuzz targets' bodies (`fuzz/src/iid_aws.rs`) on their seeds and on a few hostile
//! inputs, in the crate's own suite: the seeds must reach grants, the targets' invariants
//! must hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(unreachable_pub, dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]
#[path = "../../../fuzz/src/iid_aws.rs"]
mod iid_aws;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{}", dir.display());
    out
}

#[test]
fn aws_identity_document_seeds() {
    for (name, data) in seeds("aws_identity_document") {
        iid_aws::aws_identity_document(&data);
        // Every prefix, and every single-byte flip of the payload, keeps the invariants.
        for cut in (0..data.len()).step_by(97) {
            iid_aws::aws_identity_document(&data[..cut]);
        }
        for at in (1..data.len()).step_by(53) {
            let mut flipped = data.clone();
            flipped[at] ^= 0x20;
            iid_aws::aws_identity_document(&flipped);
        }
        let _ = name;
    }
}

#[test]
fn aws_pkcs7_seeds() {
    for (_, data) in seeds("aws_pkcs7") {
        iid_aws::aws_pkcs7(&data);
        for cut in 0..data.len() {
            iid_aws::aws_pkcs7(&data[..cut]);
        }
        for at in 0..data.len() {
            let mut flipped = data.clone();
            flipped[at] ^= 0x01;
            iid_aws::aws_pkcs7(&flipped);
        }
    }
}

#[test]
fn the_whole_token_seed_is_granted_at_the_seeds_now() {
    use keystation_core::Provisioner as _;
    use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
    let data = seeds("aws_identity_document")
        .into_iter()
        .find(|(n, _)| n == "no_tofu_whole_token")
        .unwrap()
        .1;
    let token = std::str::from_utf8(&data[1..]).unwrap();
    let roots = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/iid-test-rsa1024.pem"
    ))
    .unwrap();
    let config = serde_json::json!({"type":"AWS","name":"aws","iidRootsPem":roots,"instanceAge":"1h","accounts":["123456789012"]});
    let p =
        keystation_iid_aws::AwsProvisioner::from_json_in(&config.to_string(), &Default::default())
            .unwrap();
    let request = Request {
        credential: Credential::Token(token),
        operation: Operation::SignX509,
        audience: "https://ca.example:9000/1.0/sign",
        subject_key: None,
    };
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_760_000_000);
    let grant = p.authorize(&request, &TrustedKeys::default(), now).unwrap();
    assert_eq!(grant.replay_id.as_deref(), Some("tofu:i-0a1b2c3d4e5f60718"));
}
