//! The TLS client identity whose private key stays on the card: rustls asks
//! [`CardSigningKey`] for a signature in each handshake (the client's CertificateVerify,
//! RFC 8446 §4.4.3 / RFC 5246 §7.4.8), and the signature is made by the card.
//!
//! Cards are blocking devices, so one thread owns the card and signs on request
//! ([`CardKey`], [`SignRequests`]); rustls's synchronous signer hands the request over and
//! waits, inside [`tokio::task::block_in_place`] so the runtime's other tasks keep running.

use std::sync::Arc;
use std::sync::mpsc;

use keystation_core::key::KeyAlgorithm;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::{SignatureAlgorithm, SignatureScheme};

use super::KubeError;

/// The TLS signature schemes a card key can make (RFC 8446 §4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsScheme {
    /// ECDSA on P-256 over SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384 over SHA-384.
    EcdsaP384Sha384,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, salt of 32 bytes).
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384.
    RsaPssSha384,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (TLS 1.2 only).
    RsaPkcs1Sha256,
    /// Ed25519 (RFC 8032).
    Ed25519,
}

impl TlsScheme {
    /// The schemes a key of `algorithm` can make, best first.
    pub fn for_algorithm(algorithm: KeyAlgorithm) -> &'static [TlsScheme] {
        match algorithm {
            KeyAlgorithm::NistP256 => &[Self::EcdsaP256Sha256],
            KeyAlgorithm::NistP384 => &[Self::EcdsaP384Sha384],
            KeyAlgorithm::Rsa(_) => &[Self::RsaPssSha256, Self::RsaPssSha384, Self::RsaPkcs1Sha256],
            KeyAlgorithm::Ed25519 => &[Self::Ed25519],
            _ => &[],
        }
    }

    fn rustls(self) -> SignatureScheme {
        match self {
            Self::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
            Self::EcdsaP384Sha384 => SignatureScheme::ECDSA_NISTP384_SHA384,
            Self::RsaPssSha256 => SignatureScheme::RSA_PSS_SHA256,
            Self::RsaPssSha384 => SignatureScheme::RSA_PSS_SHA384,
            Self::RsaPkcs1Sha256 => SignatureScheme::RSA_PKCS1_SHA256,
            Self::Ed25519 => SignatureScheme::ED25519,
        }
    }
}

/// A request for one signature, for the thread that owns the card; answer it with
/// [`answer`](Self::answer).
pub struct SignRequest {
    /// The scheme rustls chose.
    pub scheme: TlsScheme,
    /// The whole TLS signing input (the card's side hashes it).
    pub message: Vec<u8>,
    reply: mpsc::Sender<Result<Vec<u8>, KubeError>>,
}

impl std::fmt::Debug for SignRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRequest").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

impl SignRequest {
    /// Sends the signature (or why there is none) to the handshake waiting for it.
    pub fn answer(self, result: Result<Vec<u8>, KubeError>) {
        // The handshake may have given up meanwhile; nobody is left to tell.
        let _ = self.reply.send(result);
    }
}

/// The signature requests of a [`CardKey`], one at a time, for the thread that owns the
/// card (see [`super::card`]).
#[derive(Debug)]
pub struct SignRequests(mpsc::Receiver<SignRequest>);

impl SignRequests {
    /// Waits for the next request; `None` once every clone of the [`CardKey`] is gone.
    pub fn next(&self) -> Option<SignRequest> {
        self.0.recv().ok()
    }
}

/// The sending end of [`SignRequests`], made into a [`CardKey`] once the key's algorithm
/// is known ([`CardKey::new`]).
#[derive(Debug)]
pub struct SignSender(mpsc::Sender<SignRequest>);

/// A new request queue: the end a [`CardKey`] is made of, and the end the card's thread
/// serves.
pub fn sign_channel() -> (SignSender, SignRequests) {
    let (sender, receiver) = mpsc::channel();
    (SignSender(sender), SignRequests(receiver))
}

/// The card's key, served by the thread that owns the card. Cheap to clone.
///
/// That thread keeps its session with the card between signatures (the PIV application
/// stays selected, so a PIN verified once stays verified), and reconnects after the card
/// failed (removed and put back, say), so the proxy outlives a removal.
#[derive(Clone)]
pub struct CardKey {
    requests: mpsc::Sender<SignRequest>,
    algorithm: KeyAlgorithm,
}

impl std::fmt::Debug for CardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl CardKey {
    /// A key of `algorithm` whose signatures are made by whoever serves `sender`'s
    /// [`SignRequests`].
    pub fn new(algorithm: KeyAlgorithm, sender: SignSender) -> Self {
        Self { requests: sender.0, algorithm }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Signs on the card, waiting for it.
    pub fn sign(&self, scheme: TlsScheme, message: &[u8]) -> Result<Vec<u8>, KubeError> {
        let (reply, answer) = mpsc::channel();
        self.requests
            .send(SignRequest { scheme, message: message.to_vec(), reply })
            .map_err(|_| KubeError::CardThreadGone)?;
        answer.recv().map_err(|_| KubeError::CardThreadGone)?
    }
}

/// Runs a blocking call from rustls's synchronous signer without stalling the runtime.
fn run_blocking<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

/// rustls's view of the card key.
#[derive(Debug)]
struct CardSigningKey {
    key: CardKey,
}

impl rustls::sign::SigningKey for CardSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        let scheme = TlsScheme::for_algorithm(self.key.algorithm)
            .iter()
            .copied()
            .find(|scheme| offered.contains(&scheme.rustls()))?;
        tracing::debug!(?scheme, "the card signs the TLS handshake");
        Some(Box::new(CardTlsSigner { key: self.key.clone(), scheme }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key.algorithm {
            KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 => SignatureAlgorithm::ECDSA,
            KeyAlgorithm::Rsa(_) => SignatureAlgorithm::RSA,
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::ED25519,
            _ => SignatureAlgorithm::Unknown(0),
        }
    }
}

#[derive(Debug)]
struct CardTlsSigner {
    key: CardKey,
    scheme: TlsScheme,
}

impl rustls::sign::Signer for CardTlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        run_blocking(|| self.key.sign(self.scheme, message))
            .map_err(|error| rustls::Error::General(keystation_core::describe_chain(&error)))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme.rustls()
    }
}

/// Always offers the card's certificate and key.
#[derive(Debug)]
struct CardIdentity(Arc<CertifiedKey>);

impl ResolvesClientCert for CardIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A rustls client configuration that trusts `roots` and authenticates with
/// `certificate` (DER) and the card key.
///
/// Session resumption is off: a resumed TLS session authenticates the client without a
/// new signature, and the card's presence must be proven on every new connection.
pub fn client_config(
    roots: rustls::RootCertStore,
    certificate: Vec<u8>,
    key: CardKey,
) -> Result<Arc<rustls::ClientConfig>, KubeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = CertifiedKey::new(
        vec![CertificateDer::from(certificate)],
        Arc::new(CardSigningKey { key }),
    );
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(KubeError::TlsConfig)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(CardIdentity(Arc::new(certified))));
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
