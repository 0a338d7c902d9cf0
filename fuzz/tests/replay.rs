//! Replays every committed seed (and any local corpus) through the fuzz target bodies, on
//! the stable toolchain: `cargo test --no-default-features` in `fuzz/`.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in [root.join("seeds").join(target), root.join("corpus").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            body(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no seeds found for {target} under {}", root.join("seeds").display());
}

#[test]
fn apdu_command_seeds() {
    replay("apdu_command", keystation_fuzz::apdu_command);
}

#[test]
fn apdu_response_seeds() {
    replay("apdu_response", keystation_fuzz::apdu_response);
}

#[test]
fn ber_tlv_seeds() {
    replay("ber_tlv", keystation_fuzz::ber_tlv);
}

#[test]
fn openpgp_packets_seeds() {
    replay("openpgp_packets", keystation_fuzz::openpgp_packets);
}

#[test]
fn openpgp_data_seeds() {
    replay("openpgp_data", keystation_fuzz::openpgp_data);
}

#[test]
fn softcard_session_seeds() {
    replay("softcard_session", keystation_fuzz::softcard_session);
}

#[test]
fn kubeconfig_seeds() {
    replay("kubeconfig", keystation_fuzz::kubeconfig);
}

#[test]
fn piv_objects_seeds() {
    replay("piv_objects", keystation_fuzz::piv_objects);
}

#[test]
fn pcscd_replies_seeds() {
    replay("pcscd_replies", keystation_fuzz::pcscd_replies);
}

#[test]
fn x509_pem_seeds() {
    replay("x509_pem", keystation_fuzz::x509_pem);
}

#[test]
fn private_key_seeds() {
    replay("private_key", keystation_fuzz::private_key);
}

#[test]
fn x509_csr_seeds() {
    replay("x509_csr", keystation_fuzz::x509_csr);
}

#[test]
fn x509_name_seeds() {
    replay("x509_name", keystation_fuzz::x509_name);
}

#[test]
fn x509_attestation_seeds() {
    replay("x509_attestation", keystation_fuzz::x509_attestation);
}

#[test]
fn attestation_chain_seeds() {
    replay("attestation_chain", keystation_fuzz::attestation_chain);
}

#[test]
fn softcard_state_seeds() {
    replay("softcard_state", keystation_fuzz::softcard_state);
}

#[test]
fn vpcd_frames_seeds() {
    replay("vpcd_frames", keystation_fuzz::vpcd_frames);
}

#[test]
fn authority_bodies_seeds() {
    replay("authority_bodies", keystation_fuzz::authority_bodies);
}

#[test]
fn jws_compact_seeds() {
    replay("jws_compact", keystation_fuzz::jws_compact);
}

#[test]
fn ca_csr_seeds() {
    replay("ca_csr", keystation_fuzz::ca_csr);
}

#[test]
fn provisioner_token_seeds() {
    replay("provisioner_token", keystation_fuzz::provisioner_token);
}

#[test]
fn oidc_token_seeds() {
    replay("oidc_token", keystation_fuzz::oidc_token);
}

#[test]
fn k8s_sa_token_seeds() {
    replay("k8s_sa_token", keystation_fuzz::k8s_sa_token);
}

#[test]
fn token_review_status_seeds() {
    replay("token_review_status", keystation_fuzz::token_review_status);
}

#[test]
fn aws_identity_document_seeds() {
    replay("aws_identity_document", keystation_fuzz::aws_identity_document);
}

#[test]
fn aws_pkcs7_seeds() {
    replay("aws_pkcs7", keystation_fuzz::aws_pkcs7);
}

#[test]
fn gcp_identity_token_seeds() {
    replay("gcp_identity_token", keystation_fuzz::gcp_identity_token);
}

#[test]
fn azure_identity_token_seeds() {
    replay("azure_identity_token", keystation_fuzz::azure_identity_token);
}

#[test]
fn acme_jws_seeds() {
    replay("acme_jws", keystation_fuzz::acme_jws);
}

#[test]
fn acme_bodies_seeds() {
    replay("acme_bodies", keystation_fuzz::acme_bodies);
}

#[test]
fn acme_attestation_seeds() {
    replay("acme_attestation", keystation_fuzz::acme_attestation);
}

#[test]
fn acme_dns_response_seeds() {
    replay("acme_dns_response", keystation_fuzz::acme_dns_response);
}
