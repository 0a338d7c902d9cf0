//! Fuzz target bodies for keystation's parsers and its software card.
//!
//! Each function takes arbitrary bytes, must never panic, and asserts the invariants of
//! the parser it drives. The cargo-fuzz binaries in `fuzz_targets/` call them, and
//! `tests/replay.rs` replays the seed corpus through them on the stable toolchain.

use std::collections::VecDeque;

use keystation_core::apdu::{Command, Le, Response};
use keystation_core::tlv::{self, Tag};
use keystation_core::{Card, Channel, ChannelOptions, Error, TransportFailure};

/// `Command::parse` on arbitrary bytes: either a clear error, or a command whose
/// encoding parses back to the same command.
pub fn apdu_command(data: &[u8]) {
    let Ok(command) = Command::parse(data) else { return };
    let encoded = command.encode().expect("a parsed command always encodes");
    let again = Command::parse(&encoded).expect("our own encoding parses");
    assert_eq!(again, command, "encode/parse round trip");
    // Display must not panic, and must hide the data of secret-bearing commands.
    let shown = command.to_string();
    if command.has_secret_data() && !command.data().is_empty() {
        assert!(shown.contains("redacted"), "{shown}");
    }
}

/// A card that answers with responses cut from the fuzz input.
struct ScriptedCard {
    responses: VecDeque<Vec<u8>>,
    extended: bool,
}

impl Card for ScriptedCard {
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
        // What the channel sends must always be a well-formed APDU.
        Command::parse(command).expect("channel sends well-formed APDUs");
        let next =
            self.responses.pop_front().ok_or(Error::transport(TransportFailure::CardRemoved))?;
        let n = next.len().min(response.len());
        response[..n].copy_from_slice(&next[..n]);
        Ok(n)
    }

    fn supports_extended_length(&self) -> bool {
        self.extended
    }
}

/// `Response::parse` and the whole [`Channel`] exchange (chaining, `61xx` GET RESPONSE,
/// `6Cxx` re-send) against a card whose answers come from the input.
///
/// Input layout: byte 0 picks options (bit 0 extended length, bits 1–2 the command's
/// data size class, bit 3 Le); then responses, each a 2-byte big-endian length and that
/// many bytes.
pub fn apdu_response(data: &[u8]) {
    let _ = Response::parse(data);
    let Some((&options, mut rest)) = data.split_first() else { return };
    let mut responses = VecDeque::new();
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let take = len.min(rest.len() - 2);
        responses.push_back(rest[2..2 + take].to_vec());
        rest = &rest[2 + take..];
    }
    let mut card = ScriptedCard { responses, extended: options & 1 != 0 };
    let max_response_len = 4096;
    let channel_options = ChannelOptions { extended_length: options & 1 != 0, max_response_len };
    let data_len = [0usize, 10, 255, 600][usize::from(options >> 1) & 3];
    let le = if options & 8 != 0 { Le::Max } else { Le::None };
    let command = Command::new(0, 0xCA, 0, 0x6E).with_data(&vec![0x5C; data_len]).with_le(le);
    let mut channel = Channel::with_options(&mut card, channel_options);
    if let Ok(response) = channel.transmit(&command) {
        assert!(response.data().len() <= max_response_len, "response limit enforced");
        assert!(response.status().bytes_remaining().is_none(), "61xx is never returned");
    }
}

/// BER-TLV reading: every object found lies inside the input; writing what was read and
/// reading it again gives the same objects; where the `iso7816-tlv` crate also accepts a
/// single primitive object, both read the same tag and value.
pub fn ber_tlv(data: &[u8]) {
    let objects: Vec<_> = tlv::parse(data).collect();
    let mut rewritten = Vec::new();
    for object in objects.iter().flatten() {
        assert!(object.value().len() <= data.len());
        tlv::write(&mut rewritten, object.tag(), object.value());
        // Nested searches are bounded and must not panic.
        let _ = object.children().count();
    }
    let ok: Vec<_> = objects.iter().filter_map(|o| o.as_ref().ok()).collect();
    let reread: Vec<_> =
        tlv::parse(&rewritten).collect::<Result<_, _>>().expect("our own encoding parses");
    assert_eq!(reread.len(), ok.len());
    for (a, b) in reread.iter().zip(&ok) {
        assert_eq!((a.tag(), a.value()), (b.tag(), b.value()));
    }
    for tag in [0x6E, 0x73, 0xC5, 0x7F49, 0x5FC102] {
        let _ = tlv::find_nested(data, Tag(tag));
    }

    // Differential check against iso7816-tlv on one primitive object without padding.
    if let [first, ..] = data
        && *first != 0x00
        && *first != 0xFF
        && let [Ok(ours)] = objects.as_slice()
        && !ours.tag().is_constructed()
        && let Ok(theirs) = iso7816_tlv::ber::Tlv::from_bytes(data)
        && let iso7816_tlv::ber::Value::Primitive(value) = theirs.value()
    {
        let tag_bytes = theirs.tag().to_bytes();
        let tag = tag_bytes.iter().fold(0u32, |t, b| (t << 8) | u32::from(*b));
        assert_eq!(
            (ours.tag().0, ours.value()),
            (tag, value.as_slice()),
            "differs from iso7816-tlv"
        );
    }
}

/// The OpenPGP card client's parsers of what a card sends (application related data,
/// key attributes, PW status, algorithm information, cardholder data, UIF, historical
/// bytes, public key templates): byte 0 picks the parser, the rest is the card's data.
/// None may panic; what parses must be self-consistent.
pub fn openpgp_data(data: &[u8]) {
    use keystation_core::key::KeyAlgorithm;
    use keystation_openpgp as pgp;
    let Some((&which, body)) = data.split_first() else { return };
    match which % 10 {
        0 => {
            if let Ok(ard) = pgp::ApplicationRelatedData::parse(body) {
                // Whatever parsed can be shown.
                let _ = format!("{ard:?}");
            }
        }
        1 => {
            if let Ok(attributes) = pgp::KeyAttributes::parse(body) {
                let _ = format!("{attributes:?}");
            }
        }
        2 => {
            if let Ok(status) = pgp::PwStatus::parse(body) {
                let _ = format!("{status:?}");
            }
        }
        3 => {
            let _ = pgp::AlgorithmInformation::parse(body);
        }
        4 => {
            let _ = pgp::CardholderData::parse(body);
        }
        5 => {
            let _ = pgp::UifDo::parse(body);
            let _ = pgp::ExtendedCapabilities::parse(body);
            let _ = pgp::ExtendedLengthInfo::parse(body);
            let _ = pgp::Aid::parse(body);
        }
        6 => {
            let _ = pgp::HistoricalBytes::parse(body);
            let _ = pgp::HistoricalBytes::from_atr(body);
        }
        7 => {
            if let Some(der) = pgp::ecdsa_signature_to_der(body) {
                // A DER signature is a SEQUENCE of two INTEGERs.
                assert_eq!(der.first(), Some(&0x30), "DER ECDSA signature {der:02X?}");
            }
        }
        _ => {
            let Some((&alg, template)) = body.split_first() else { return };
            let algorithm = KeyAlgorithm::ALL[usize::from(alg) % KeyAlgorithm::ALL.len()];
            if let Ok(key) = pgp::parse_public_key_template(template, algorithm) {
                assert_eq!(key.algorithm(), algorithm, "the key has the asked algorithm");
                // A parsed key encodes.
                assert!(!key.to_spki_der().is_empty());
            }
        }
    }
}

/// OpenPGP packets and ASCII armor as `keystation-openpgp-cert` reads them: every packet
/// found lies inside the input; armoring the input and reading it back gives the input
/// (whatever the bytes); text that dearmors re-armors to text that dearmors the same.
pub fn openpgp_packets(data: &[u8]) {
    use keystation_openpgp_cert::{ArmorKind, armor, dearmor, parse_packets};
    if let Ok(packets) = parse_packets(data) {
        let total: usize = packets.iter().map(|p| p.body.len()).sum();
        assert!(total <= data.len(), "packet bodies longer than the input");
    }
    let armored = armor(ArmorKind::PublicKey, data);
    match dearmor(&armored) {
        Ok((kind, bytes)) => {
            assert_eq!(kind, ArmorKind::PublicKey);
            assert_eq!(bytes, data, "armor round trip");
        }
        Err(error) => panic!("our own armor does not read back: {error}"),
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok((kind, bytes)) = dearmor(text)
    {
        let again = dearmor(&armor(kind, &bytes)).expect("re-armored text reads back");
        assert_eq!(again, (kind, bytes));
    }
}

/// The software YubiKey 5 under an arbitrary session; see [`session`].
pub fn softcard_session(data: &[u8]) {
    session::run(data);
}

pub mod session;

/// Kubeconfig parsing (`keystation-kubeconfig`), the text the user hands `kube setup` and
/// `kube proxy`. Byte 0 picks the mode:
///
/// * even: the rest is a kubeconfig. Parsing must not panic (aliases, nesting and size are
///   bounded), and a config that parses must answer its context names and, when it
///   references no files, resolve or fail cleanly;
/// * odd: the rest is split at NUL bytes into the fields of a proxy configuration; what
///   the writer accepts must parse back to exactly what was written.
pub fn kubeconfig(data: &[u8]) {
    use std::path::Path;

    use keystation_kubeconfig::{Kubeconfig, ProxyConfig, write_client_config, write_proxy_config};

    let Some((&mode, rest)) = data.split_first() else { return };
    let origin = Path::new("/nonexistent/fuzz/kubeconfig");
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let Ok(config) = Kubeconfig::parse(&text, origin) else { return };
        let _ = config.context_names();
        // Files named in the input would be read from this machine's disk; keep the
        // fuzzer to the parser and the in-memory checks.
        let mentions_files =
            ["certificate-authority:", "client-certificate:", "client-key:", "tokenFile"]
                .iter()
                .any(|key| text.contains(key));
        if !mentions_files {
            let _ = config.resolve(None);
        }
        return;
    }
    let fields: Vec<String> =
        rest.split(|&b| b == 0).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
    let written = ProxyConfig {
        context: field(0),
        server: format!("https://{}", field(1)),
        ca_pem: fields.get(2).filter(|f| !f.is_empty()).map(|f| f.clone().into_bytes()),
        tls_server_name: fields.get(3).filter(|f| !f.is_empty()).cloned(),
        slot: field(4),
        listen: field(5),
    };
    if let Ok(yaml) = write_proxy_config(&written) {
        let parsed = Kubeconfig::parse(&yaml, origin).expect("the proxy config we wrote parses");
        let read = parsed.proxy_config(None).expect("the proxy config we wrote resolves");
        assert_eq!(read, written, "proxy.yml round trip");
    }
    let url = format!("http://{}", field(1));
    if let Ok(yaml) = write_client_config(&url, &field(0), fields.get(6).map(String::as_str)) {
        let parsed = Kubeconfig::parse(&yaml, origin).expect("the client config we wrote parses");
        let resolved = parsed.resolve(None).expect("the client config we wrote resolves");
        assert_eq!(resolved.cluster.server, url, "client.yml round trip");
    }
}

/// The PIV data objects keystation reads from cards (`keystation-piv`): the certificate
/// object `53 { 70 cert, 71 CertInfo, FE }` with gzip decompression (bounded), Yubico
/// metadata (`F7`), ADMIN DATA, public-key templates, and the certificate inside
/// (`keystation-x509`). Nothing may panic; what parses must re-encode consistently.
pub fn piv_objects(data: &[u8]) {
    use keystation_core::key::{KeyAlgorithm, RsaBits};
    use keystation_piv::{
        AdminData, CertificateObject, MAX_DECOMPRESSED_CERTIFICATE, Metadata, parse_public_key,
    };

    if let Ok(object) = CertificateObject::parse(data) {
        assert!(object.certificate.len() <= MAX_DECOMPRESSED_CERTIFICATE.max(data.len()));
        for compress in [false, true] {
            let encoded = CertificateObject::encode(&object.certificate, compress)
                .expect("a parsed certificate re-encodes");
            let again = CertificateObject::parse(&encoded).expect("our own encoding parses");
            assert_eq!(again.certificate, object.certificate, "certificate object round trip");
            assert_eq!(again.compressed, compress);
        }
        if let Ok(certificate) = keystation_x509::Certificate::from_der(&object.certificate) {
            let _ = (certificate.subject(), certificate.issuer(), certificate.public_key());
            assert_eq!(
                certificate.to_der(),
                object.certificate,
                "certificates are kept byte for byte"
            );
        }
    }
    let _ = Metadata::parse(data);
    if let Ok(admin) = AdminData::parse(data) {
        let again = AdminData::parse(&admin.encode()).expect("our own ADMIN DATA parses");
        assert_eq!(again.flags, admin.flags);
        assert_eq!(again.salt, admin.salt);
    }
    for algorithm in [
        KeyAlgorithm::NistP256,
        KeyAlgorithm::NistP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::X25519,
        KeyAlgorithm::Rsa(RsaBits::Rsa2048),
    ] {
        let _ = parse_public_key(algorithm, data);
    }
    let _ = keystation_x509::Certificate::from_der(data);
}

/// The pure-Rust pcscd client's reply decoders (pcsc-lite message structs and the
/// reader-state array) and its status-change evaluation: malformed replies are errors,
/// never panics, and what decodes stays within the protocol's bounds. Byte 0 picks the
/// reply type; see `keystation_pcsc::fuzzing::pcscd_replies`.
pub fn pcscd_replies(data: &[u8]) {
    keystation_pcsc::fuzzing::pcscd_replies(data);
}

mod acme;
mod authority;
mod azure_identity_token;
mod ca;
mod gcp_identity_token;
mod iid_aws;
mod jose;
mod k8s_sa;
mod oidc;
mod provisioners;
mod state_file;
mod token_provisioners;
mod vpcd;
mod x509;

pub use acme::{acme_attestation, acme_bodies, acme_jws};

/// The ACME validator's stub DNS resolver: any datagram as the answer to an A, AAAA or TXT
/// query (byte 0 picks the type) gives records or an error, never a panic; a CNAME chain
/// or pointer loop ends within its bounds, and TXT records join within their length.
pub fn acme_dns_response(data: &[u8]) {
    use keystation_acme_va::dns::{RecordType, parse_response, txt_value};
    let Some((&selector, message)) = data.split_first() else { return };
    let record_type = match selector % 3 {
        0 => RecordType::A,
        1 => RecordType::Aaaa,
        _ => RecordType::Txt,
    };
    let id = message.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if let Ok(records) = parse_response(message, id, "_acme-challenge.a.test", record_type) {
        for record in &records {
            assert!(record.len() <= message.len());
            if let Ok(value) = txt_value(record) {
                assert!(value.len() < record.len().max(1));
            }
        }
    }
}
pub use authority::authority_bodies;
pub use azure_identity_token::azure_identity_token;
pub use ca::ca_csr;
pub use gcp_identity_token::gcp_identity_token;
pub use iid_aws::{aws_identity_document, aws_pkcs7};
pub use jose::jws_compact;
pub use k8s_sa::{k8s_sa_token, token_review_status};
pub use oidc::oidc_token;
pub use provisioners::attestation_chain;
pub use state_file::softcard_state;
pub use token_provisioners::provisioner_token;
pub use vpcd::vpcd_frames;
pub use x509::{private_key, x509_attestation, x509_csr, x509_name, x509_pem};
