//! The API's TLS: a server certificate the intermediate issues at start for the configured
//! names, and optional client certificates (mTLS renew, rekey and revoke) verified against
//! the authority's root.
//!
//! A client certificate that chains to the root completes the handshake even when it was
//! revoked (as with step-ca); the handlers that act on it check revocation themselves.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::error::Error;

/// The rustls configuration for the API: `chain` is the server certificate followed by the
/// intermediate, `key_pkcs8` the server key (PKCS#8 DER), `root` the root certificate (DER).
pub(crate) fn server_config(
    chain: Vec<Vec<u8>>,
    key_pkcs8: Vec<u8>,
    root: &[u8],
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .map_err(|e| Error::Tls(format!("the root certificate: {e}")))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Tls(format!("client certificate verifier: {e}")))?;
    let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| Error::Tls(format!("the server certificate: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
