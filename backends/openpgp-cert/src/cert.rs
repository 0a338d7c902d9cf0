//! Building the certificate: key packets (RFC 4880 §5.5.2), the User ID (§5.11), and
//! the self-signatures (§5.2.3, §5.2.4), signed through a [`Signer`].

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey};
use keystation_core::keygen::{SignInput, Signer};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384};

use crate::CertError;
use crate::armor::{ArmorKind, armor};
use crate::packet::{tag, write_mpi, write_packet, write_subpacket};

/// The role a key plays in the certificate; it decides the OpenPGP algorithm (ECDSA or
/// ECDH for a NIST curve) and the key flags (RFC 4880 §5.2.3.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// The primary key, the card's signature key: certifies and signs (flags `03`).
    Primary,
    /// The encryption subkey, the card's decryption key (flags `0C`).
    Encryption,
    /// The authentication subkey, the card's authentication (SSH) key (flags `20`).
    Authentication,
}

impl KeyRole {
    /// The key flags octet (§5.2.3.21).
    pub const fn key_flags(self) -> u8 {
        match self {
            Self::Primary => 0x03,
            Self::Encryption => 0x0C,
            Self::Authentication => 0x20,
        }
    }
}

impl core::fmt::Display for KeyRole {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary (signature)",
            Self::Encryption => "encryption",
            Self::Authentication => "authentication",
        })
    }
}

/// A v4 fingerprint (RFC 4880 §12.2): SHA-1 over `99`, the two-octet length and the
/// public-key packet body. These 20 bytes go into the card's C7/C8/C9 data objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 20]);

impl Fingerprint {
    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The key ID: the low 64 bits of the fingerprint (§12.2).
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.0[12..]);
        KeyId(id)
    }
}

impl core::fmt::Display for Fingerprint {
    /// Upper-case hex without spaces, as `gpg --with-colons` prints it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// A v4 key ID (RFC 4880 §12.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The 8 bytes.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl core::fmt::Display for KeyId {
    /// Upper-case hex without spaces.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// A subkey to put in the certificate: its public key and creation time (seconds since
/// 1970, as stored on the card in CE/CF/D0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subkey {
    /// The public key.
    pub public: PublicKey,
    /// Creation time, which is part of the fingerprint.
    pub created: u32,
}

/// What the certificate says; the primary key is the signer's public key.
#[derive(Debug, Clone)]
pub struct CertificateParams<'a> {
    /// Creation time of the primary (signature) key.
    pub primary_created: u32,
    /// The encryption subkey (RSA, P-256, P-384 or X25519).
    pub encryption: Subkey,
    /// The authentication subkey (RSA, P-256, P-384 or Ed25519).
    pub authentication: Subkey,
    /// The User ID, conventionally `First Last <email>` (see [`user_id`]).
    pub user_id: &'a str,
    /// Creation time of the self-signatures; not before any key's creation time.
    pub signed_at: u32,
}

/// One key of a built certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKey {
    /// The role.
    pub role: KeyRole,
    /// The public key.
    pub public: PublicKey,
    /// Creation time.
    pub created: u32,
    /// The v4 fingerprint.
    pub fingerprint: Fingerprint,
}

/// A certificate (RFC 4880 §11.1 Transferable Public Key): Public-Key, User ID, positive
/// certification (`13`), and for each subkey a Public-Subkey packet with its binding
/// signature (`18`).
#[derive(Debug, Clone)]
pub struct Certificate {
    packets: Vec<u8>,
    keys: [CertKey; 3],
}

/// The User ID `First Last <email>`, with surrounding white space trimmed.
pub fn user_id(first_name: &str, last_name: &str, email: &str) -> String {
    let name = format!("{} {}", first_name.trim(), last_name.trim());
    format!("{} <{}>", name.trim(), email.trim())
}

impl Certificate {
    /// Builds and self-signs the certificate. `signer` holds the primary key (on a card
    /// or in host memory) and makes three signatures.
    pub fn build(
        signer: &mut dyn Signer,
        params: &CertificateParams<'_>,
    ) -> Result<Self, CertError> {
        let uid = params.user_id;
        if uid.is_empty() || uid.chars().any(char::is_control) {
            return Err(CertError::InvalidUserId);
        }
        let primary_public = signer.public_key().clone();
        let primary_body = key_body(&primary_public, params.primary_created, KeyRole::Primary)?;
        let encryption_body =
            key_body(&params.encryption.public, params.encryption.created, KeyRole::Encryption)?;
        let auth_body = key_body(
            &params.authentication.public,
            params.authentication.created,
            KeyRole::Authentication,
        )?;
        let created =
            [params.primary_created, params.encryption.created, params.authentication.created];
        if created.iter().any(|&c| c > params.signed_at) {
            return Err(CertError::SignatureBeforeKey);
        }
        let primary_fp = fingerprint_of(&primary_body);
        let keys = [
            CertKey {
                role: KeyRole::Primary,
                public: primary_public,
                created: params.primary_created,
                fingerprint: primary_fp,
            },
            CertKey {
                role: KeyRole::Encryption,
                public: params.encryption.public.clone(),
                created: params.encryption.created,
                fingerprint: fingerprint_of(&encryption_body),
            },
            CertKey {
                role: KeyRole::Authentication,
                public: params.authentication.public.clone(),
                created: params.authentication.created,
                fingerprint: fingerprint_of(&auth_body),
            },
        ];

        let mut packets = Vec::with_capacity(4096);
        write_packet(&mut packets, tag::PUBLIC_KEY, &primary_body);
        write_packet(&mut packets, tag::USER_ID, uid.as_bytes());

        // §5.2.4: a certification hashes the key, then `B4`, the four-octet length and
        // the User ID.
        let mut hashed_data = key_hash_prefix(&primary_body);
        hashed_data.push(0xB4);
        hashed_data.extend_from_slice(&(uid.len() as u32).to_be_bytes());
        hashed_data.extend_from_slice(uid.as_bytes());
        let mut subpackets = Vec::new();
        write_subpacket(&mut subpackets, 33, &issuer_fingerprint(&primary_fp));
        write_subpacket(&mut subpackets, 2, &params.signed_at.to_be_bytes());
        write_subpacket(&mut subpackets, 27, &[KeyRole::Primary.key_flags()]);
        // AES256, AES192, AES128, TripleDES (§9.2).
        write_subpacket(&mut subpackets, 11, &[9, 8, 7, 2]);
        // SHA512, SHA384, SHA256, SHA224, SHA1 (§9.4).
        write_subpacket(&mut subpackets, 21, &[10, 9, 8, 11, 2]);
        // ZLIB, BZip2, ZIP (§9.3).
        write_subpacket(&mut subpackets, 22, &[2, 3, 1]);
        // Features: Modification Detection (§5.2.3.24).
        write_subpacket(&mut subpackets, 30, &[0x01]);
        // Key server preferences: No-modify (§5.2.3.17).
        write_subpacket(&mut subpackets, 23, &[0x80]);
        let sig = signature(signer, 0x13, &primary_fp, &subpackets, &hashed_data)?;
        write_packet(&mut packets, tag::SIGNATURE, &sig);

        for (body, role) in
            [(&encryption_body, KeyRole::Encryption), (&auth_body, KeyRole::Authentication)]
        {
            write_packet(&mut packets, tag::PUBLIC_SUBKEY, body);
            // §5.2.4: a subkey binding hashes the primary key, then the subkey.
            let mut hashed_data = key_hash_prefix(&primary_body);
            hashed_data.extend_from_slice(&key_hash_prefix(body));
            let mut subpackets = Vec::new();
            write_subpacket(&mut subpackets, 33, &issuer_fingerprint(&primary_fp));
            write_subpacket(&mut subpackets, 2, &params.signed_at.to_be_bytes());
            write_subpacket(&mut subpackets, 27, &[role.key_flags()]);
            let sig = signature(signer, 0x18, &primary_fp, &subpackets, &hashed_data)?;
            write_packet(&mut packets, tag::SIGNATURE, &sig);
        }
        Ok(Self { packets, keys })
    }

    /// The binary packets (what `gpg --export` writes).
    pub fn to_bytes(&self) -> &[u8] {
        &self.packets
    }

    /// The packets in ASCII armor (`-----BEGIN PGP PUBLIC KEY BLOCK-----`).
    pub fn armored(&self) -> String {
        armor(ArmorKind::PublicKey, &self.packets)
    }

    /// The primary (signature) key.
    pub fn primary(&self) -> &CertKey {
        &self.keys[0]
    }

    /// The encryption subkey.
    pub fn encryption(&self) -> &CertKey {
        &self.keys[1]
    }

    /// The authentication subkey.
    pub fn authentication(&self) -> &CertKey {
        &self.keys[2]
    }

    /// The authentication key as an OpenSSH public key line (what `gpg
    /// --export-ssh-key` prints, which names it `openpgp:0x` and the low 32 bits of the
    /// key ID; pass any `comment`). `None` for an X25519 key, which has no SSH form.
    pub fn ssh_public_key(&self, comment: Option<&str>) -> Option<String> {
        self.authentication().public.to_openssh(comment)
    }

    /// The comment `gpg --export-ssh-key` gives the authentication key: `openpgp:0x`
    /// and the last eight hex digits of its key ID, e.g. `openpgp:0x8580331B`.
    pub fn gpg_ssh_comment(&self) -> String {
        let id = self.authentication().fingerprint.key_id().to_string();
        format!("openpgp:0x{}", &id[8..])
    }
}

/// The v4 fingerprint of `public` created at `created`, in `role` (which decides between
/// ECDSA and ECDH for NIST curves and so changes the fingerprint).
pub fn fingerprint(
    public: &PublicKey,
    created: u32,
    role: KeyRole,
) -> Result<Fingerprint, CertError> {
    Ok(fingerprint_of(&key_body(public, created, role)?))
}

/// A detached binary-document signature (RFC 4880 §5.2.1 type `00`) over `data`, made by
/// the primary key as a card would make it; returns the Signature packet. Armor it with
/// [`armor`](crate::armor)`(`[`ArmorKind::Signature`]`, …)` for `gpg --verify`.
pub fn sign_detached(
    signer: &mut dyn Signer,
    key_created: u32,
    signed_at: u32,
    data: &[u8],
) -> Result<Vec<u8>, CertError> {
    let primary_fp = fingerprint(signer.public_key(), key_created, KeyRole::Primary)?;
    let mut subpackets = Vec::new();
    write_subpacket(&mut subpackets, 33, &issuer_fingerprint(&primary_fp));
    write_subpacket(&mut subpackets, 2, &signed_at.to_be_bytes());
    let body = signature(signer, 0x00, &primary_fp, &subpackets, data)?;
    let mut packet = Vec::with_capacity(body.len() + 6);
    write_packet(&mut packet, tag::SIGNATURE, &body);
    Ok(packet)
}

/// Public-key algorithm IDs, RFC 4880 §9.1, RFC 6637 §5, draft-koch-eddsa-for-openpgp.
const ALGO_RSA: u8 = 1;
const ALGO_ECDH: u8 = 18;
const ALGO_ECDSA: u8 = 19;
const ALGO_EDDSA: u8 = 22;

/// Curve OIDs without the DER tag and length (RFC 6637 §11; gpg's Ed25519 and Curve25519).
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// 1.3.6.1.4.1.11591.15.1
const OID_ED25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
/// 1.3.6.1.4.1.3029.1.5.1
const OID_CV25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];

/// Hash algorithm IDs, §9.4.
const HASH_SHA256: u8 = 8;
const HASH_SHA384: u8 = 9;
/// Symmetric algorithm IDs, §9.2.
const SYM_AES128: u8 = 7;
const SYM_AES192: u8 = 8;

/// The public-key packet body (§5.5.2, version 4): version, creation time, algorithm,
/// and the algorithm's fields.
pub(crate) fn key_body(
    public: &PublicKey,
    created: u32,
    role: KeyRole,
) -> Result<Vec<u8>, CertError> {
    let algorithm = public.algorithm();
    let unsupported = || CertError::UnsupportedKey { role, algorithm };
    let mut body = Vec::with_capacity(600);
    body.push(4);
    body.extend_from_slice(&created.to_be_bytes());
    let point = public.point().unwrap_or_default();
    let mut curve = |algo: u8, oid: &[u8], point: &[u8]| {
        body.push(algo);
        body.push(oid.len() as u8);
        body.extend_from_slice(oid);
        write_mpi(&mut body, point);
    };
    // The 0x40 prefix marks a native (little-endian) Curve25519 point.
    let prefixed = || [&[0x40][..], point].concat();
    let encrypting = role == KeyRole::Encryption;
    match algorithm {
        KeyAlgorithm::Rsa(_) => {
            let (n, e) = public.rsa_components().ok_or_else(unsupported)?;
            body.push(ALGO_RSA);
            write_mpi(&mut body, n);
            write_mpi(&mut body, e);
        }
        KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 => {
            let p256 = algorithm == KeyAlgorithm::NistP256;
            let oid = if p256 { OID_P256 } else { OID_P384 };
            if encrypting {
                curve(ALGO_ECDH, oid, point);
                // KDF parameters (RFC 6637 §9) as gpg sets them for the curve: for
                // P-384 that is SHA-384 with AES-192 (not RFC 6637 §12's AES-256), which
                // tests/gpg_fingerprints.rs checks against gpg 2.2.
                let (hash, sym) =
                    if p256 { (HASH_SHA256, SYM_AES128) } else { (HASH_SHA384, SYM_AES192) };
                body.extend_from_slice(&[3, 1, hash, sym]);
            } else {
                curve(ALGO_ECDSA, oid, point);
            }
        }
        KeyAlgorithm::Ed25519 if !encrypting => curve(ALGO_EDDSA, OID_ED25519, &prefixed()),
        KeyAlgorithm::X25519 if encrypting => {
            curve(ALGO_ECDH, OID_CV25519, &prefixed());
            body.extend_from_slice(&[3, 1, HASH_SHA256, SYM_AES128]);
        }
        _ => return Err(unsupported()),
    }
    Ok(body)
}

fn key_hash_prefix(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x99);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn fingerprint_of(body: &[u8]) -> Fingerprint {
    Fingerprint(Sha1::digest(key_hash_prefix(body)).into())
}

fn issuer_fingerprint(fp: &Fingerprint) -> [u8; 21] {
    let mut out = [4u8; 21];
    out[1..].copy_from_slice(fp.as_bytes());
    out
}

/// The hash for a signature by `algorithm`: SHA-384 for P-384 (an ECDSA hash shorter
/// than the curve is refused by gpg), SHA-256 otherwise.
fn signature_hash(algorithm: KeyAlgorithm) -> HashAlgorithm {
    if algorithm == KeyAlgorithm::NistP384 { HashAlgorithm::Sha384 } else { HashAlgorithm::Sha256 }
}

/// Makes a v4 signature packet body (§5.2.3) over `data`, hashed with the trailer of
/// §5.2.4, and signed by `signer`.
fn signature(
    signer: &mut dyn Signer,
    sig_type: u8,
    issuer: &Fingerprint,
    hashed_subpackets: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CertError> {
    let algorithm = signer.public_key().algorithm();
    let pk_algo = match algorithm {
        KeyAlgorithm::Rsa(_) => ALGO_RSA,
        KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 => ALGO_ECDSA,
        KeyAlgorithm::Ed25519 => ALGO_EDDSA,
        _ => return Err(CertError::UnsupportedKey { role: KeyRole::Primary, algorithm }),
    };
    let hash = signature_hash(algorithm);
    let hash_id = if hash == HashAlgorithm::Sha384 { HASH_SHA384 } else { HASH_SHA256 };

    let mut body = vec![4, sig_type, pk_algo, hash_id];
    body.extend_from_slice(&(hashed_subpackets.len() as u16).to_be_bytes());
    body.extend_from_slice(hashed_subpackets);
    let hashed_len = body.len() as u32;
    let mut trailer = vec![4, 0xFF];
    trailer.extend_from_slice(&hashed_len.to_be_bytes());
    let digest = match hash {
        HashAlgorithm::Sha384 => Sha384::new()
            .chain_update(data)
            .chain_update(&body)
            .chain_update(&trailer)
            .finalize()
            .to_vec(),
        _ => Sha256::new()
            .chain_update(data)
            .chain_update(&body)
            .chain_update(&trailer)
            .finalize()
            .to_vec(),
    };
    let input = if algorithm == KeyAlgorithm::Ed25519 {
        // EdDSA in OpenPGP signs the digest as the message (draft-koch-eddsa §5).
        SignInput::Message(&digest)
    } else {
        SignInput::Digest { hash, digest: &digest }
    };
    let raw = signer.sign(input).map_err(CertError::Sign)?;

    // Unhashed: the Issuer key ID (§5.2.3.5), where gpg puts it.
    let mut unhashed = Vec::new();
    write_subpacket(&mut unhashed, 16, issuer.key_id().as_bytes());
    body.extend_from_slice(&(unhashed.len() as u16).to_be_bytes());
    body.extend_from_slice(&unhashed);
    body.extend_from_slice(&digest[..2]);
    let malformed = || CertError::MalformedSignature(algorithm);
    match pk_algo {
        ALGO_RSA => write_mpi(&mut body, &raw),
        ALGO_ECDSA => {
            let (r, s) = parse_ecdsa_der(&raw).ok_or_else(malformed)?;
            write_mpi(&mut body, r);
            write_mpi(&mut body, s);
        }
        _ => {
            if raw.len() != 64 {
                return Err(malformed());
            }
            write_mpi(&mut body, &raw[..32]);
            write_mpi(&mut body, &raw[32..]);
        }
    }
    Ok(body)
}

/// Splits a DER `Ecdsa-Sig-Value` (RFC 5480 §2.2.3) into r and s (big-endian, maybe
/// with a leading zero). `None` unless it is exactly a SEQUENCE of two INTEGERs.
pub(crate) fn parse_ecdsa_der(der: &[u8]) -> Option<(&[u8], &[u8])> {
    fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            0..=0x7F => (usize::from(first), rest),
            0x81 => {
                let (&len, rest) = rest.split_first()?;
                (usize::from(len), rest)
            }
            _ => return None,
        };
        if rest.len() < len {
            return None;
        }
        Some(rest.split_at(len))
    }
    let (seq, after) = element(der, 0x30)?;
    let (r, seq) = element(seq, 0x02)?;
    let (s, seq) = element(seq, 0x02)?;
    if !after.is_empty() || !seq.is_empty() || r.is_empty() || s.is_empty() {
        return None;
    }
    Some((r, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_splits_and_rejects_junk() {
        let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x05];
        assert_eq!(parse_ecdsa_der(&der), Some((&[0x00, 0x80][..], &[0x05][..])));
        assert_eq!(parse_ecdsa_der(&der[..8]), None);
        assert_eq!(parse_ecdsa_der(&[0x30, 0x00]), None);
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert_eq!(parse_ecdsa_der(&trailing), None);
    }

    #[test]
    fn user_id_is_first_last_email() {
        assert_eq!(
            user_id(" Ada ", "Lovelace", "ada@example.org "),
            "Ada Lovelace <ada@example.org>"
        );
    }

    #[test]
    fn ed25519_key_body_layout() {
        let key = PublicKey::from_point(KeyAlgorithm::Ed25519, &[0x11; 32]).ok();
        let body = key.and_then(|k| key_body(&k, 0x5F00_0000, KeyRole::Primary).ok());
        let body = body.unwrap_or_default();
        // 04, time, 16 (EdDSA), OID length 9, OID, MPI of 263 bits: 01 07 40 ‖ point.
        assert_eq!(&body[..7], &[4, 0x5F, 0, 0, 0, 22, 9]);
        assert_eq!(&body[7..16], OID_ED25519);
        assert_eq!(&body[16..19], &[0x01, 0x07, 0x40]);
        assert_eq!(body.len(), 19 + 32);
    }

    #[test]
    fn keys_that_cannot_play_a_role_are_refused() {
        let x = PublicKey::from_point(KeyAlgorithm::X25519, &[9; 32]).ok();
        let ed = PublicKey::from_point(KeyAlgorithm::Ed25519, &[9; 32]).ok();
        let (Some(x), Some(ed)) = (x, ed) else { panic!("keys") };
        assert!(matches!(
            fingerprint(&x, 0, KeyRole::Primary),
            Err(CertError::UnsupportedKey { role: KeyRole::Primary, .. })
        ));
        assert!(fingerprint(&x, 0, KeyRole::Authentication).is_err());
        assert!(fingerprint(&ed, 0, KeyRole::Encryption).is_err());
        assert!(fingerprint(&x, 0, KeyRole::Encryption).is_ok());
    }
}
