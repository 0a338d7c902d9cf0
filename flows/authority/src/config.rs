//! The authority's settings: what `init` chose (written to `config/authority.toml`) and what
//! `serve` may override from the command line, the environment or the keystation
//! configuration file.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::layout::Layout;

/// The longest a one-time token may live, `exp − max(nbf, iat)`, unless configured: five
/// minutes, what step's client gives its tokens (step-ca itself sets no bound).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Where the intermediate CA's private key is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum IntermediateKey {
    /// `secrets/intermediate_ca_key`, encrypted with the authority's password.
    File,
    /// A PIV slot of a card; signing goes through keystation's PIV client.
    PivSlot {
        /// The slot, as ykman names it (`9c`, `82`, …).
        slot: String,
        /// The reader name filter, if one was given at init.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
        /// The card's serial, if one was given at init.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        serial: Option<String>,
    },
}

/// The authority's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorityConfig {
    /// The CA's name (`<name> Root CA`, `<name> Intermediate CA`).
    pub name: String,
    /// The HTTPS API's listening address.
    pub address: SocketAddr,
    /// The DNS names and IP addresses the API's certificate carries; token audiences may
    /// name any of them.
    pub dns_names: Vec<String>,
    /// defguard's worker service (gRPC over TLS), if it is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_address: Option<SocketAddr>,
    /// The store's URL (`sqlite://…`, `postgres://…`); the state directory's SQLite file
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Where the intermediate key is.
    pub intermediate_key: IntermediateKey,
    /// Whether the SSH user and host CAs exist.
    #[serde(default)]
    pub ssh: bool,
    /// The longest token lifetime accepted, in seconds.
    #[serde(default = "default_token_lifetime")]
    pub max_token_lifetime_seconds: u64,
    /// The authority's `claims` (step-ca's names), layered between the built-in defaults and
    /// each provisioner's, as JSON text (`{"maxTLSCertDuration": "48h"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<String>,
    /// How the ACME provisioners validate challenges (`[acme]`).
    #[serde(default, skip_serializing_if = "AcmeSettings::is_default")]
    pub acme: AcmeSettings,
}

/// How ACME challenges are validated (`[acme]` in `config/authority.toml`): where the
/// authority connects and asks, and which addresses it may reach.
///
/// The defaults are the protocol's: http-01 on port 80 (RFC 8555 §8.3), tls-alpn-01 on 443
/// (RFC 8737 §3), the system's resolver, and no private, loopback or link-local address
/// (a client cannot make the authority probe its own network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AcmeSettings {
    /// The DNS server asked for A, AAAA and TXT records (`host:port`); the system's
    /// (`/etc/resolv.conf`) when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<SocketAddr>,
    /// The port http-01 fetches from.
    pub http01_port: u16,
    /// The port tls-alpn-01 connects to.
    pub tls_alpn01_port: u16,
    /// Networks (CIDR) allowed although denied by default (`127.0.0.0/8` for a lab).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Networks (CIDR) never contacted, even when `allow` names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// How many times a failed validation is attempted in all (RFC 8555 §8.2).
    pub attempts: u32,
    /// The pause before the second attempt, doubled before each further one, in seconds.
    pub retry_seconds: u64,
    /// How long one attempt may take, in seconds.
    pub timeout_seconds: u64,
}

impl Default for AcmeSettings {
    fn default() -> Self {
        Self {
            resolver: None,
            http01_port: 80,
            tls_alpn01_port: 443,
            allow: Vec::new(),
            deny: Vec::new(),
            attempts: 3,
            retry_seconds: 2,
            timeout_seconds: 10,
        }
    }
}

impl AcmeSettings {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_token_lifetime() -> u64 {
    DEFAULT_MAX_TOKEN_LIFETIME.as_secs()
}

impl AuthorityConfig {
    /// Settings with the defaults for everything but the name, address and names.
    pub fn new(name: impl Into<String>, address: SocketAddr, dns_names: Vec<String>) -> Self {
        Self {
            name: name.into(),
            address,
            dns_names,
            grpc_address: None,
            database: None,
            intermediate_key: IntermediateKey::File,
            ssh: false,
            max_token_lifetime_seconds: default_token_lifetime(),
            claims: None,
            acme: AcmeSettings::default(),
        }
    }

    /// Reads `config/authority.toml` of the state directory.
    pub fn load(layout: &Layout) -> Result<Self, Error> {
        let path = layout.config();
        let text = std::fs::read_to_string(&path)
            .map_err(|source| Error::Read { path: path.clone(), source })?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// The TOML text `init` writes.
    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))
    }

    /// The store URL in effect.
    pub fn database_url(&self, layout: &Layout) -> String {
        self.database.clone().unwrap_or_else(|| layout.database_url())
    }

    /// The longest token lifetime accepted.
    pub fn max_token_lifetime(&self) -> Duration {
        Duration::from_secs(self.max_token_lifetime_seconds)
    }

    /// The base URLs clients may name in a token's audience: `https://<name>:<port>` for
    /// every DNS name (and without the port when it is 443, as step-ca lists them).
    pub fn base_urls(&self) -> Vec<String> {
        let port = self.address.port();
        self.dns_names
            .iter()
            .map(|name| {
                let host = if name.contains(':') { format!("[{name}]") } else { name.clone() };
                if port == 443 {
                    format!("https://{host}")
                } else {
                    format!("https://{host}:{port}")
                }
            })
            .collect()
    }

    /// The state directory's defaults for step's clients (`config/defaults.json`).
    pub(crate) fn defaults_json(&self, layout: &Layout, fingerprint: &str) -> String {
        let url = self
            .base_urls()
            .into_iter()
            .next()
            .unwrap_or_else(|| format!("https://{}", self.address));
        serde_json::json!({
            "ca-url": url,
            "ca-config": layout.config().display().to_string(),
            "fingerprint": fingerprint,
            "root": layout.root_certificate().display().to_string(),
        })
        .to_string()
    }
}
