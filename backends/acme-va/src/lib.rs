//! keystation-acme-va: ACME's validation authority — the network side of a challenge.
//!
//! When a client tells the authority that a challenge is ready (RFC 8555 §7.5.1), the
//! authority calls one of [`Validator`]'s methods, which makes one attempt and says
//! whether it passed; retrying failed attempts is the caller's business.
//!
//! * [`Validator::http01`] (RFC 8555 §8.3; RFC 8738 §4 for IP identifiers): `GET
//!   http://<identifier>/.well-known/acme-challenge/<token>`, following a bounded number of
//!   redirects; the body, trimmed of whitespace, must be the key authorization.
//! * [`Validator::dns01`] (RFC 8555 §8.4): a TXT record at `_acme-challenge.<domain>` must
//!   hold the base64url SHA-256 digest of the key authorization.
//! * [`Validator::tls_alpn01`] (RFC 8737 §3; RFC 8738 §6 for IP identifiers): a TLS
//!   handshake offering only the `acme-tls/1` protocol, whose certificate must name the
//!   identifier alone and carry the critical id-pe-acmeIdentifier extension with the
//!   digest of the key authorization.
//!
//! Every address the authority connects to — each one a name resolves to, each redirect
//! hop — must be permitted by the [`AddressPolicy`] (RFC 8555 §10.2: the server must not
//! be turned against its own network). Names are resolved through the configured DNS
//! server (or the system's) and the authority connects to the resolved address itself, so
//! the address checked is the address used. A name's refused addresses are skipped (as
//! Let's Encrypt drops them from answers); when none is left, the attempt fails as
//! `rejectedIdentifier`, naming them. The permitted ones are tried in the resolver's
//! order, AAAA before A. Each attempt is bounded by [`ValidationConfig::timeout`];
//! nothing a server sends can make it panic.
//!
//! A failed attempt is a [`ValidationFailure`]: a [`FailureKind`], which maps onto RFC 8555
//! §6.7's problem types ([`FailureKind::problem_type`]), and a detail for the client.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod dns;
mod dns01;
mod http01;
mod net;
mod policy;
mod tls_alpn01;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub use policy::{AddressPolicy, Cidr};

/// The crate's error: a configuration the [`Validator`] cannot be made with. Failed
/// validations are [`ValidationFailure`]s, not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address policy entry is not CIDR notation.
    #[error("address policy entry {entry:?}: {reason}")]
    BadCidr {
        /// The entry as written.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// The system's resolver configuration (`/etc/resolv.conf`) cannot be read.
    #[error("the system's DNS configuration: {0}")]
    Resolver(String),
    /// The TLS client cannot be configured.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A configuration value is out of range.
    #[error("validation configuration: {0}")]
    BadConfig(String),
}

/// What is being validated: an ACME identifier (RFC 8555 §9.7.7), of type `dns` or `ip`
/// (RFC 8738 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// A DNS name (`"type": "dns"`), without a wildcard label.
    Dns(String),
    /// An IP address (`"type": "ip"`).
    Ip(IpAddr),
}

impl std::fmt::Display for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Why an attempt failed, as RFC 8555 §6.7's problem types name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// `connection`: no connection to the server, no answer in time, or a redirect that
    /// may not be followed.
    Connection,
    /// `dns`: the name did not resolve (NXDOMAIN, no records, SERVFAIL, no answer).
    Dns,
    /// `incorrectResponse`: an answer, but not the one the challenge requires (a body
    /// that is not the key authorization, a TXT record or certificate with another digest,
    /// a certificate naming something else).
    IncorrectResponse,
    /// `unauthorized`: the server refused to present the resource (an HTTP status other
    /// than 200).
    Unauthorized,
    /// `tls`: the TLS handshake failed, or `acme-tls/1` was not negotiated.
    Tls,
    /// `rejectedIdentifier`: the identifier, or an address it leads to, is refused by the
    /// address policy.
    RejectedIdentifier,
    /// `malformed`: the arguments cannot be validated as written (a token or a name with
    /// characters they may not have).
    Malformed,
}

impl FailureKind {
    /// The problem type URN (RFC 8555 §6.7), e.g. `urn:ietf:params:acme:error:dns`.
    pub fn problem_type(self) -> &'static str {
        match self {
            Self::Connection => "urn:ietf:params:acme:error:connection",
            Self::Dns => "urn:ietf:params:acme:error:dns",
            Self::IncorrectResponse => "urn:ietf:params:acme:error:incorrectResponse",
            Self::Unauthorized => "urn:ietf:params:acme:error:unauthorized",
            Self::Tls => "urn:ietf:params:acme:error:tls",
            Self::RejectedIdentifier => "urn:ietf:params:acme:error:rejectedIdentifier",
            Self::Malformed => "urn:ietf:params:acme:error:malformed",
        }
    }
}

/// A failed validation attempt: what kind of failure, and a detail for the problem
/// document (RFC 7807 `detail`) that names the URL, address or record concerned and
/// quotes at most the start of what the server sent, escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ValidationFailure {
    /// The problem type.
    pub kind: FailureKind,
    /// What happened.
    pub detail: String,
}

impl ValidationFailure {
    pub(crate) fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }
}

/// How the validation authority reaches the servers it checks.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// The port http-01 connects to (RFC 8555 §8.3: 80). Tests and test CAs (pebble's
    /// `httpPort`) use another.
    pub http01_port: u16,
    /// The port tls-alpn-01 connects to (RFC 8737 §3: 443).
    pub tls_alpn01_port: u16,
    /// The DNS server for A, AAAA and TXT lookups (UDP, TCP when a reply is truncated);
    /// `None` reads the system's (`/etc/resolv.conf`). `/etc/hosts` is never consulted.
    pub resolver: Option<SocketAddr>,
    /// The addresses that may be connected to.
    pub policy: AddressPolicy,
    /// The limit on one whole attempt: resolution, connections, redirects, answers.
    pub timeout: Duration,
    /// The redirects http-01 follows at most (Let's Encrypt: 10).
    pub max_redirects: usize,
    /// The largest http-01 body read; a longer one fails.
    pub max_body: usize,
}

impl Default for ValidationConfig {
    /// Ports 80 and 443, the system's resolver, the default address policy, 10 s, 10
    /// redirects, 8 KiB.
    fn default() -> Self {
        Self {
            http01_port: 80,
            tls_alpn01_port: 443,
            resolver: None,
            policy: AddressPolicy::default(),
            timeout: Duration::from_secs(10),
            max_redirects: 10,
            max_body: 8 * 1024,
        }
    }
}

/// The validation authority: the configuration, the resolver and the TLS clients.
/// Cloning is cheap (one `Arc`); clones share the resolver.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    config: ValidationConfig,
    resolver: net::Resolver,
    /// tls-alpn-01: `acme-tls/1` offered alone, any certificate accepted for inspection.
    tls_alpn: tokio_rustls::TlsConnector,
    /// https redirects of http-01: any certificate accepted (as Let's Encrypt does).
    tls_https: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator with `config`. Fails when the system's resolver configuration is needed
    /// and unreadable, or when a limit is zero. It needs no runtime to be made; its
    /// attempts run on tokio (they spawn the connections' tasks).
    pub fn new(config: ValidationConfig) -> Result<Self, Error> {
        if config.timeout.is_zero() {
            return Err(Error::BadConfig("the timeout must be longer than zero".into()));
        }
        if config.max_body == 0 {
            return Err(Error::BadConfig("the http-01 body limit must be above zero".into()));
        }
        let resolver = net::Resolver::new(config.resolver, config.timeout)?;
        let tls_alpn = tls_alpn01::connector(vec![tls_alpn01::ACME_TLS_1.to_vec()])?;
        let tls_https = tls_alpn01::connector(vec![b"http/1.1".to_vec()])?;
        Ok(Self { inner: Arc::new(Inner { config, resolver, tls_alpn, tls_https }) })
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &ValidationConfig {
        &self.inner.config
    }

    /// One http-01 attempt (RFC 8555 §8.3): `GET
    /// http://<identifier>:<http01_port>/.well-known/acme-challenge/<token>` with `Host:
    /// <identifier>` (an IP identifier as its address, RFC 8738 §4). The answer must be
    /// `200` with a body that, trimmed of whitespace, is `key_authorization`.
    ///
    /// Redirects (301, 302, 303, 307, 308) are followed up to
    /// [`ValidationConfig::max_redirects`], each hop resolved again and checked against the
    /// policy, only to `http` URLs on port 80 or `http01_port` and `https` URLs on port 443
    /// or `tls_alpn01_port`; an https hop's certificate is not verified (as Let's Encrypt,
    /// the key authorization is what proves control).
    pub async fn http01(
        &self,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), ValidationFailure> {
        tracing::debug!(%identifier, token, "http-01 attempt");
        let attempt = http01::validate(&self.inner, identifier, token, key_authorization);
        self.bounded(attempt).await
    }

    /// One dns-01 attempt (RFC 8555 §8.4): one of the TXT records at
    /// `_acme-challenge.<domain>` (CNAMEs followed by the resolver) must be the base64url
    /// SHA-256 digest of `key_authorization`. `domain` is the identifier without its
    /// wildcard label; a leading `*.` is removed all the same (§7.1.3: a wildcard's
    /// challenge is on the base domain).
    pub async fn dns01(
        &self,
        domain: &str,
        key_authorization: &str,
    ) -> Result<(), ValidationFailure> {
        tracing::debug!(domain, "dns-01 attempt");
        self.bounded(dns01::validate(&self.inner, domain, key_authorization)).await
    }

    /// One tls-alpn-01 attempt (RFC 8737 §3): a TLS 1.2+ handshake with
    /// `<identifier>:<tls_alpn01_port>` offering only `acme-tls/1`, with the name as SNI
    /// (an IP identifier's reverse-DNS name, RFC 8738 §6). `acme-tls/1` must be
    /// negotiated, and the server's certificate must have a subjectAltName naming the
    /// identifier and nothing else, and the critical id-pe-acmeIdentifier extension
    /// holding SHA-256 of `key_authorization`. The certificate is not verified against any
    /// root; the handshake signature is.
    pub async fn tls_alpn01(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
    ) -> Result<(), ValidationFailure> {
        tracing::debug!(%identifier, "tls-alpn-01 attempt");
        self.bounded(tls_alpn01::validate(&self.inner, identifier, key_authorization)).await
    }

    async fn bounded(
        &self,
        attempt: impl Future<Output = Result<(), ValidationFailure>>,
    ) -> Result<(), ValidationFailure> {
        let timeout = self.inner.config.timeout;
        let outcome = match tokio::time::timeout(timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ValidationFailure::new(
                FailureKind::Connection,
                format!("the attempt did not finish within {timeout:?}"),
            )),
        };
        if let Err(failure) = &outcome {
            tracing::debug!(kind = ?failure.kind, detail = %failure.detail, "validation failed");
        }
        outcome
    }
}

/// The dns-01 TXT value for a key authorization: base64url (no padding) of its SHA-256
/// digest (RFC 8555 §8.4).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(key_authorization_digest(key_authorization))
}

/// SHA-256 of a key authorization: what tls-alpn-01's id-pe-acmeIdentifier extension holds
/// (RFC 8737 §3).
pub fn key_authorization_digest(key_authorization: &str) -> [u8; 32] {
    Sha256::digest(key_authorization.as_bytes()).into()
}

/// A name as the validation uses it: lower case, without a final dot; `None` if it is not
/// a host name of letters, digits and hyphens in dot-separated labels of 1–63 characters
/// (RFC 1123 §2.1), or if it is an IP address written as a name (RFC 8738 §3 gives those
/// their own identifier type).
pub(crate) fn normalize_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let fits = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (fits && name.parse::<IpAddr>().is_err()).then_some(name)
}

/// At most the first 100 bytes of `bytes`, escaped for a detail message (non-printable
/// bytes as `\xNN`), with `…` when there was more.
pub(crate) fn quote(bytes: &[u8]) -> String {
    const LIMIT: usize = 100;
    let mut out = String::with_capacity(bytes.len().min(LIMIT) + 8);
    out.push('"');
    for &b in bytes.iter().take(LIMIT) {
        out.extend(std::ascii::escape_default(b).map(char::from));
    }
    out.push('"');
    if bytes.len() > LIMIT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_in_base64url() {
        // SHA-256("abc") (FIPS 180-2 appendix B.1) in base64url without padding.
        assert_eq!(dns01_txt_value("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert_eq!(key_authorization_digest("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn names_are_normalized_or_refused() {
        assert_eq!(normalize_name("WWW.Example.ORG.").as_deref(), Some("www.example.org"));
        assert_eq!(normalize_name("a-b.test").as_deref(), Some("a-b.test"));
        for bad in [
            "",
            ".",
            "*.example.org",
            "a..b",
            "-a.test",
            "a-.test",
            "a b",
            "127.0.0.1",
            "a_b.test",
            "é.test",
        ] {
            assert_eq!(normalize_name(bad), None, "{bad}");
        }
        assert_eq!(normalize_name(&"a".repeat(64)), None);
        assert_eq!(normalize_name(&["a"; 130].join(".")), None);
    }

    #[test]
    fn quotes_are_escaped_and_cut() {
        assert_eq!(quote(b"ok\n\x00\"'"), r#""ok\n\x00\"\'""#);
        let long = quote(&[b'x'; 150]);
        assert_eq!(long, format!("\"{}\"…", "x".repeat(100)));
    }

    #[test]
    fn kinds_name_rfc_8555_problem_types() {
        assert_eq!(FailureKind::Dns.problem_type(), "urn:ietf:params:acme:error:dns");
        assert_eq!(
            FailureKind::RejectedIdentifier.problem_type(),
            "urn:ietf:params:acme:error:rejectedIdentifier"
        );
    }

    #[test]
    fn attempts_can_be_spawned() {
        fn spawnable<T: Future + Send>(_: T) {}
        let config = ValidationConfig {
            resolver: Some(SocketAddr::from(([127, 0, 0, 1], 53))),
            ..ValidationConfig::default()
        };
        let va = Validator::new(config).unwrap();
        let identifier = Identifier::Dns("a.test".into());
        spawnable(va.http01(&identifier, "t", "k"));
        spawnable(va.dns01("a.test", "k"));
        spawnable(va.tls_alpn01(&identifier, "k"));
        fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
        shareable(&va);
    }

    #[test]
    fn zero_limits_are_refused() {
        let config = ValidationConfig { timeout: Duration::ZERO, ..ValidationConfig::default() };
        assert!(matches!(Validator::new(config), Err(Error::BadConfig(_))));
        let config = ValidationConfig { max_body: 0, ..ValidationConfig::default() };
        assert!(matches!(Validator::new(config), Err(Error::BadConfig(_))));
    }
}
