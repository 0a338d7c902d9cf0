//! keystation-ca: the certificate authority's keys and issuance, with step-ca's behaviour
//! as the reference.
//!
//! * [`CaKey`]: CA keys in host memory (P-256 by default; P-384, RSA 2048/3072/4096,
//!   Ed25519), written and read as password-protected PKCS #8 files (`ENCRYPTED PRIVATE
//!   KEY`, PBES2 with PBKDF2-SHA256 and AES-256-CBC, as `step ca init` writes them and
//!   `openssl pkey` reads them). A `CaKey` is a core [`Signer`](keystation_core::keygen::Signer);
//!   so is a key on a card, and everything below signs through that trait.
//! * [`init_ca`]: a root and an intermediate CA as `step ca init` makes them, the
//!   intermediate's key generated here or held by any signer (a PIV slot);
//!   [`init_ssh_ca`]: the SSH user and host CA keys.
//! * [`check_csr`]: a PKCS #10 request's signature and key checked ([`CheckedCsr`]).
//! * [`Issuer`]: leaf certificates from a [`LeafTemplate`] (step-ca's default leaf
//!   template, with step-ca's [`ProvisionerExtension`] if wanted), renewal and rekeying,
//!   and CRLs ([`Issuer::issue_crl`], RFC 5280 §5).
//! * [`SshCa`]: OpenSSH user and host certificates (PROTOCOL.certkeys) from an
//!   [`SshCertTemplate`], and [`SshCertificate`]s read back.
//!
//! Nothing here does I/O: key files come in and go out as text, and the caller stores
//! them. The types of the underlying crates stay inside; the API takes and returns DER,
//! PEM, OpenSSH lines and keystation's own types.

mod cert;
mod crl;
mod csr;
mod error;
mod extension;
mod init;
mod issuer;
mod key;
mod san;
mod serial;
mod ssh;

pub use cert::KeyUsage;
pub use crl::{Crl, CrlTemplate, RevocationReason, RevokedEntry};
pub use csr::{CheckedCsr, MIN_RSA_BITS, check_csr};
pub use error::Error;
pub use extension::{CustomExtension, ProvisionerExtension};
pub use init::{
    CA_LIFETIME, CaInitOptions, CaMaterial, IntermediateKey, SshCaMaterial, fingerprint, init_ca,
    init_ca_at, init_ssh_ca, init_ssh_ca_with,
};
pub use issuer::{BACKDATE, IssuedCertificate, Issuer, LeafTemplate};
pub use key::{CaKey, PBKDF2_ITERATIONS};
pub use keystation_x509::{ExtendedKeyUsage, SubjectAltName};
pub use san::{classify_san, classify_sans, san_value};
pub use serial::Serial;
pub use ssh::{DEFAULT_USER_EXTENSIONS, SshCa, SshCertTemplate, SshCertType, SshCertificate};
