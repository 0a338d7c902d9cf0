//! OpenSSH certificates (PROTOCOL.certkeys): signing user and host certificates with the
//! SSH CA's keys through core's [`Signer`] (so a card can hold them), and reading them
//! back for renewal, rekeying and revocation.
//!
//! The wire format, parsing and signature checks are the `ssh-key` crate's; what to put
//! in a certificate (step-ca's defaults and checks) is decided here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use keystation_core::key::{HashAlgorithm, KeyAlgorithm};
use keystation_core::keygen::{RandomSource, SignInput, Signer};
use keystation_keygen::OsRandom;
use sha2::{Digest as _, Sha256, Sha384};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, Fingerprint, HashAlg};

use crate::Error;
use crate::cert::{from_unix, unix};
use crate::issuer::BACKDATE;

/// The five extensions step-ca (like `ssh-keygen`) gives user certificates by default.
pub const DEFAULT_USER_EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// Whom an SSH certificate is for (PROTOCOL.certkeys `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SshCertType {
    /// `SSH_CERT_TYPE_USER` (1): a user authenticating to hosts.
    User,
    /// `SSH_CERT_TYPE_HOST` (2): a host authenticating to users.
    Host,
}

impl SshCertType {
    /// step-ca's name: `user` or `host`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "user" => Some(Self::User),
            "host" => Some(Self::Host),
            _ => None,
        }
    }

    fn wire(self) -> CertType {
        match self {
            Self::User => CertType::User,
            Self::Host => CertType::Host,
        }
    }
}

/// What an SSH certificate should say; the CA adds the nonce, the signature key and the
/// signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCertTemplate {
    /// The key to certify, as an OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
    /// User or host.
    pub cert_type: SshCertType,
    /// The key ID (logged by sshd); must not be empty.
    pub key_id: String,
    /// The principals (user or host names); at least one — an empty list would make the
    /// certificate valid for every principal, and keystation refuses that.
    pub principals: Vec<String>,
    /// Start of validity.
    pub valid_after: SystemTime,
    /// End of validity (exclusive: PROTOCOL.certkeys valid while `after <= now < before`).
    pub valid_before: SystemTime,
    /// The serial; `None` draws a random non-zero 64-bit one.
    pub serial: Option<u64>,
    /// Extensions (name → data); `None` is step-ca's default for the type: the five
    /// `permit-*` ([`DEFAULT_USER_EXTENSIONS`]) for users, none for hosts.
    pub extensions: Option<BTreeMap<String, String>>,
    /// Critical options (name → data), e.g. `force-command`, `source-address`.
    pub critical_options: BTreeMap<String, String>,
}

impl SshCertTemplate {
    /// A template with step-ca's defaults for `cert_type`.
    pub fn new(
        cert_type: SshCertType,
        public_key: impl Into<String>,
        key_id: impl Into<String>,
        principals: Vec<String>,
        valid_after: SystemTime,
        valid_before: SystemTime,
    ) -> Self {
        Self {
            public_key: public_key.into(),
            cert_type,
            key_id: key_id.into(),
            principals,
            valid_after,
            valid_before,
            serial: None,
            extensions: None,
            critical_options: BTreeMap::new(),
        }
    }
}

/// An OpenSSH certificate, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCertificate {
    /// The certificate as an OpenSSH line (`ecdsa-sha2-nistp256-cert-v01@openssh.com
    /// AAAA…`), what `ssh-keygen -L -f` reads and `/1.0/ssh/sign` returns.
    pub line: String,
    /// User or host.
    pub cert_type: SshCertType,
    /// The serial.
    pub serial: u64,
    /// The key ID.
    pub key_id: String,
    /// The principals.
    pub principals: Vec<String>,
    /// Start of validity.
    pub valid_after: SystemTime,
    /// End of validity (exclusive).
    pub valid_before: SystemTime,
    /// The certified key as an OpenSSH public key line.
    pub public_key: String,
    /// The signing CA key as an OpenSSH public key line.
    pub signature_key: String,
    /// Critical options.
    pub critical_options: BTreeMap<String, String>,
    /// Extensions.
    pub extensions: BTreeMap<String, String>,
}

impl SshCertificate {
    /// Reads an OpenSSH certificate line (a trailing comment is allowed). Its signature is
    /// not checked here: [`SshCa::verify_at`] does that.
    ///
    /// Validity times above `i64::MAX` — `ssh-keygen`'s "forever" — are refused by the
    /// parser (`ssh-key`); step-ca and this CA never issue them.
    pub fn parse(line: &str) -> Result<Self, Error> {
        let certificate = ssh_key::Certificate::from_openssh(line.trim())
            .map_err(|e| Error::ssh(format!("not an OpenSSH certificate: {e}")))?;
        Self::from_certificate(&certificate)
    }

    fn from_certificate(certificate: &ssh_key::Certificate) -> Result<Self, Error> {
        let line = certificate.to_openssh().map_err(Error::ssh)?;
        let key_line = |key: &KeyData| {
            ssh_key::PublicKey::new(key.clone(), "").to_openssh().map_err(Error::ssh)
        };
        Ok(Self {
            cert_type: if certificate.cert_type().is_host() {
                SshCertType::Host
            } else {
                SshCertType::User
            },
            serial: certificate.serial(),
            key_id: certificate.key_id().to_owned(),
            principals: certificate.valid_principals().to_vec(),
            valid_after: from_unix(certificate.valid_after()),
            valid_before: from_unix(certificate.valid_before()),
            public_key: key_line(certificate.public_key())?,
            signature_key: key_line(certificate.signature_key())?,
            critical_options: certificate.critical_options().0.clone(),
            extensions: certificate.extensions().0.clone(),
            line,
        })
    }
}

/// One CA key: its public key in SSH form, and the signer.
struct CaKeySlot {
    key: KeyData,
    line: String,
    fingerprint: Fingerprint,
    signer: Mutex<Box<dyn Signer + Send>>,
}

impl CaKeySlot {
    fn new(signer: Box<dyn Signer + Send>) -> Result<Self, Error> {
        let algorithm = signer.public_key().algorithm();
        if !algorithm.can_sign() {
            return Err(Error::UnsupportedCaKey(algorithm));
        }
        let line = signer
            .public_key()
            .to_openssh(None)
            .ok_or_else(|| Error::ssh(format!("{algorithm} keys have no SSH form")))?;
        let key = ssh_key::PublicKey::from_openssh(&line).map_err(Error::ssh)?.key_data().clone();
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        Ok(Self { key, line, fingerprint, signer: Mutex::new(signer) })
    }
}

/// The SSH certificate authority: a user CA key and a host CA key (either may be absent),
/// each a [`Signer`] behind a mutex, so one `SshCa` serves many threads (`Send + Sync`).
pub struct SshCa {
    user: Option<CaKeySlot>,
    host: Option<CaKeySlot>,
}

impl core::fmt::Debug for SshCa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SshCa")
            .field("user", &self.user.as_ref().map(|s| &s.line))
            .field("host", &self.host.as_ref().map(|s| &s.line))
            .finish()
    }
}

impl SshCa {
    /// An SSH CA signing user certificates with `user` and host certificates with `host`.
    /// P-256, P-384, Ed25519 and RSA keys sign (RSA as `rsa-sha2-256`, as step-ca does).
    pub fn new(
        user: Option<Box<dyn Signer + Send>>,
        host: Option<Box<dyn Signer + Send>>,
    ) -> Result<Self, Error> {
        Ok(Self {
            user: user.map(CaKeySlot::new).transpose()?,
            host: host.map(CaKeySlot::new).transpose()?,
        })
    }

    fn slot(&self, cert_type: SshCertType) -> Result<&CaKeySlot, Error> {
        match cert_type {
            SshCertType::User => self.user.as_ref(),
            SshCertType::Host => self.host.as_ref(),
        }
        .ok_or(Error::NoSshCa(cert_type.name()))
    }

    /// The user CA public key as an OpenSSH line (for sshd's `TrustedUserCAKeys`).
    pub fn user_public_key(&self) -> Option<&str> {
        self.user.as_ref().map(|s| s.line.as_str())
    }

    /// The host CA public key as an OpenSSH line (for `@cert-authority` in known_hosts).
    pub fn host_public_key(&self) -> Option<&str> {
        self.host.as_ref().map(|s| s.line.as_str())
    }

    /// Signs a certificate from `template` with the CA key of its type.
    ///
    /// Refused with a precise error: no CA key for the type ([`Error::NoSshCa`]); a
    /// subject key that does not parse, DSA, or RSA under 2048 bits; an empty key ID or
    /// principal list; a zero serial; a validity that does not start after 1970 or does
    /// not end after it starts (step-ca's `sshCertDefaultValidator`).
    pub fn sign(&self, template: &SshCertTemplate) -> Result<SshCertificate, Error> {
        let slot = self.slot(template.cert_type)?;
        let subject = ssh_key::PublicKey::from_openssh(template.public_key.trim())
            .map_err(|e| Error::ssh(format!("the public key to certify: {e}")))?;
        check_subject_key(subject.key_data())?;
        if template.key_id.is_empty() {
            return Err(Error::template("an SSH certificate needs a key ID"));
        }
        if template.principals.is_empty() || template.principals.iter().any(String::is_empty) {
            return Err(Error::template(
                "an SSH certificate needs principals (none would mean every principal)",
            ));
        }
        let valid_after = unix(template.valid_after)?;
        let valid_before = unix(template.valid_before)?;
        if valid_after == 0 {
            return Err(Error::template("valid_after cannot be 0"));
        }
        if valid_before <= valid_after {
            return Err(Error::template("valid_before is not after valid_after"));
        }
        let serial = match template.serial {
            Some(0) => return Err(Error::template("an SSH certificate serial cannot be 0")),
            Some(serial) => serial,
            None => random_serial()?,
        };
        let mut nonce = vec![0u8; 32];
        OsRandom.fill(&mut nonce)?;
        let mut builder =
            Builder::new(nonce, subject.key_data().clone(), valid_after, valid_before)
                .map_err(Error::ssh)?;
        builder.serial(serial).map_err(Error::ssh)?;
        builder.cert_type(template.cert_type.wire()).map_err(Error::ssh)?;
        builder.key_id(template.key_id.clone()).map_err(Error::ssh)?;
        for principal in &template.principals {
            builder.valid_principal(principal.clone()).map_err(Error::ssh)?;
        }
        for (name, data) in &template.critical_options {
            builder.critical_option(name.clone(), data.clone()).map_err(Error::ssh)?;
        }
        match &template.extensions {
            Some(extensions) => {
                for (name, data) in extensions {
                    builder.extension(name.clone(), data.clone()).map_err(Error::ssh)?;
                }
            }
            None if template.cert_type == SshCertType::User => {
                for name in DEFAULT_USER_EXTENSIONS {
                    builder.extension(name, "").map_err(Error::ssh)?;
                }
            }
            None => {}
        }
        let mut signer = slot.signer.lock().map_err(|_| Error::SignerPoisoned)?;
        let signing = CaSigning {
            key: slot.key.clone(),
            signer: RefCell::new(signer.as_mut()),
            failure: RefCell::new(None),
        };
        let signed = builder.sign(&signing);
        let failure = signing.failure.into_inner();
        drop(signer);
        let certificate = match (signed, failure) {
            (Ok(certificate), _) => certificate,
            (Err(_), Some(failure)) => return Err(failure),
            (Err(e), None) => return Err(Error::ssh(format!("signing the certificate: {e}"))),
        };
        SshCertificate::from_certificate(&certificate)
    }

    /// Reads `line` and checks that this CA's key for its type signed it, and that it is
    /// valid at `now` — what an SSHPOP token's certificate must pass.
    pub fn verify_at(&self, line: &str, now: SystemTime) -> Result<SshCertificate, Error> {
        let certificate = self.verify_signature(line)?;
        let now = unix(now)?;
        if now < certificate.valid_after() {
            return Err(Error::SshCertificateRejected("not valid yet".into()));
        }
        if now >= certificate.valid_before() {
            return Err(Error::SshCertificateRejected("expired".into()));
        }
        SshCertificate::from_certificate(&certificate)
    }

    /// Reads `line` and checks that this CA's key for its type signed it, whatever its
    /// validity period (to revoke an expired certificate, say).
    pub fn verify_issued(&self, line: &str) -> Result<SshCertificate, Error> {
        SshCertificate::from_certificate(&self.verify_signature(line)?)
    }

    fn verify_signature(&self, line: &str) -> Result<ssh_key::Certificate, Error> {
        let certificate = ssh_key::Certificate::from_openssh(line.trim())
            .map_err(|e| Error::ssh(format!("not an OpenSSH certificate: {e}")))?;
        let cert_type =
            if certificate.cert_type().is_host() { SshCertType::Host } else { SshCertType::User };
        let slot = self.slot(cert_type)?;
        if certificate.signature_key().fingerprint(HashAlg::Sha256) != slot.fingerprint {
            return Err(Error::SshCertificateRejected(format!(
                "not signed by this CA's {} key",
                cert_type.name()
            )));
        }
        // validate_at checks the signature, the CA fingerprint and the time; the time
        // given is the certificate's own start, so only the first two can fail here.
        certificate
            .validate_at(certificate.valid_after(), [&slot.fingerprint])
            .map_err(|_| Error::SshCertificateRejected("the signature does not verify".into()))?;
        Ok(certificate)
    }

    /// Renews the certificate `line` at `now`, as step-ca's `RenewSSH`: the same key, type,
    /// key ID, principals, critical options and extensions; a new serial and nonce; the
    /// same validity length, starting at `now` less the backdate. The certificate must be
    /// one this CA signed.
    pub fn renew(&self, line: &str, now: SystemTime) -> Result<SshCertificate, Error> {
        let old = self.verify_issued(line)?;
        self.reissue(&old, old.public_key.clone(), now)
    }

    /// Rekeys the certificate `line` at `now` for `new_public_key` (an OpenSSH line), as
    /// step-ca's `RekeySSH`: as [`renew`](Self::renew), with the new key.
    pub fn rekey(
        &self,
        line: &str,
        new_public_key: &str,
        now: SystemTime,
    ) -> Result<SshCertificate, Error> {
        let old = self.verify_issued(line)?;
        self.reissue(&old, new_public_key.to_owned(), now)
    }

    fn reissue(
        &self,
        old: &SshCertificate,
        public_key: String,
        now: SystemTime,
    ) -> Result<SshCertificate, Error> {
        let duration = old
            .valid_before
            .duration_since(old.valid_after)
            .map_err(|_| Error::template("the certificate has no validity period"))?;
        let valid_after = now.checked_sub(BACKDATE).unwrap_or(now);
        self.sign(&SshCertTemplate {
            public_key,
            cert_type: old.cert_type,
            key_id: old.key_id.clone(),
            principals: old.principals.clone(),
            valid_after,
            valid_before: valid_after + duration,
            serial: None,
            extensions: Some(old.extensions.clone()),
            critical_options: old.critical_options.clone(),
        })
    }
}

/// step-ca's `sshDefaultPublicKeyValidator`: no DSA, RSA of at least 2048 bits.
fn check_subject_key(key: &KeyData) -> Result<(), Error> {
    match key {
        KeyData::Dsa(_) => Err(Error::UnsupportedKey("DSA SSH keys".into())),
        KeyData::Rsa(rsa) => {
            let n = rsa.n.as_positive_bytes().unwrap_or_default();
            let bits = match n.first() {
                None => 0,
                Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
            };
            if bits < 2048 { Err(Error::RsaKeyTooSmall { bits }) } else { Ok(()) }
        }
        _ => Ok(()),
    }
}

fn random_serial() -> Result<u64, Error> {
    loop {
        let mut bytes = [0u8; 8];
        OsRandom.fill(&mut bytes)?;
        let serial = u64::from_be_bytes(bytes);
        if serial != 0 {
            return Ok(serial);
        }
    }
}

/// The CA key as ssh-key's signing key: hashes the to-be-signed certificate as the key's
/// SSH signature algorithm requires and has core's [`Signer`] sign the digest.
struct CaSigning<'a> {
    key: KeyData,
    signer: RefCell<&'a mut (dyn Signer + Send)>,
    /// The signer's own error, which ssh-key's opaque signature error cannot carry.
    failure: RefCell<Option<Error>>,
}

impl From<&CaSigning<'_>> for KeyData {
    fn from(signing: &CaSigning<'_>) -> Self {
        signing.key.clone()
    }
}

impl signature::Signer<ssh_key::Signature> for CaSigning<'_> {
    fn try_sign(&self, message: &[u8]) -> Result<ssh_key::Signature, signature::Error> {
        let mut signer = self.signer.borrow_mut();
        ssh_signature(&mut **signer, message).map_err(|e| {
            *self.failure.borrow_mut() = Some(e);
            signature::Error::new()
        })
    }
}

/// Signs `message` as the SSH signature algorithm of the signer's key (RFC 5656 §3.1.2
/// ECDSA with SHA-256/384, RFC 8709 Ed25519, RFC 8332 `rsa-sha2-256`).
fn ssh_signature(signer: &mut dyn Signer, message: &[u8]) -> Result<ssh_key::Signature, Error> {
    let algorithm = signer.public_key().algorithm();
    match algorithm {
        KeyAlgorithm::NistP256 => {
            let digest = Sha256::digest(message);
            let der =
                signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })?;
            let signature = p256::ecdsa::Signature::from_der(&der)
                .map_err(|_| Error::ssh("the signer's ECDSA signature is not DER"))?;
            ssh_key::Signature::try_from(signature).map_err(Error::ssh)
        }
        KeyAlgorithm::NistP384 => {
            let digest = Sha384::digest(message);
            let der =
                signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha384, digest: &digest })?;
            let signature = p384::ecdsa::Signature::from_der(&der)
                .map_err(|_| Error::ssh("the signer's ECDSA signature is not DER"))?;
            ssh_key::Signature::try_from(signature).map_err(Error::ssh)
        }
        KeyAlgorithm::Ed25519 => {
            let signature = signer.sign(SignInput::Message(message))?;
            ssh_key::Signature::new(Algorithm::Ed25519, signature).map_err(Error::ssh)
        }
        KeyAlgorithm::Rsa(_) => {
            let digest = Sha256::digest(message);
            let signature =
                signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })?;
            ssh_key::Signature::new(Algorithm::Rsa { hash: Some(HashAlg::Sha256) }, signature)
                .map_err(Error::ssh)
        }
        other => Err(Error::UnsupportedCaKey(other)),
    }
}
