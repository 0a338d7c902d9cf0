//! Writing kubeconfigs for keystation's API proxy: one for the proxy itself (where the real
//! API server is and which CA to trust, plus keystation's settings as a context extension),
//! and one for kubectl pointing at the proxy. Neither holds credentials: the proxy
//! authenticates with a key that stays on the card.
//!
//! Output is kubeconfig v1 YAML with every string double-quoted, which kubectl reads.

use crate::error::{Error, Result};
use crate::model::{Kubeconfig, ProxyExtension};
use crate::resolve::is_http_url;
use crate::yaml::quote;

/// The `name` of keystation's entry in a context's `extensions` list.
pub const EXTENSION_NAME: &str = "keystation";

/// What the proxy needs: where the real API server is, how to trust it, and keystation's
/// own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The context (and cluster) name written.
    pub context: String,
    /// The real API server URL.
    pub server: String,
    /// The API server's CA in PEM; `None` for the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// `tls-server-name`, if the server certificate names another host.
    pub tls_server_name: Option<String>,
    /// The PIV slot of the client key, e.g. `9a`.
    pub slot: String,
    /// The proxy's listen address, e.g. `127.0.0.1:8080`.
    pub listen: String,
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Invalid {
            origin: "<output>".into(),
            path: what.to_owned(),
            message: String::from("must not be empty"),
        });
    }
    Ok(())
}

fn check_url(what: &str, url: &str) -> Result<()> {
    if !is_http_url(url) {
        return Err(Error::Invalid {
            origin: "<output>".into(),
            path: what.to_owned(),
            message: format!("\"{url}\" is not an http(s) URL"),
        });
    }
    Ok(())
}

/// Appends `  key: "value"` at `indent` spaces.
fn field(out: &mut String, indent: usize, key: &str, value: &str) {
    out.push_str(&" ".repeat(indent));
    out.push_str(key);
    out.push_str(": ");
    quote(out, value);
    out.push('\n');
}

/// The parts both files share: header and one cluster named like the context.
fn start(out: &mut String, context: &str) {
    out.push_str("apiVersion: v1\nkind: Config\npreferences: {}\nusers: []\n");
    field(out, 0, "current-context", context);
    out.push_str("clusters:\n");
    field(out, 0, "- name", context);
    out.push_str("  cluster:\n");
}

/// The proxy's kubeconfig: server and CA only, keystation's slot and listen address in the
/// context's `extensions` (`{name: keystation, extension: {slot, listen}}`).
pub fn write_proxy_config(config: &ProxyConfig) -> Result<String> {
    check_name("context", &config.context)?;
    check_name("slot", &config.slot)?;
    check_name("listen", &config.listen)?;
    check_url("server", &config.server)?;
    let mut out = String::new();
    start(&mut out, &config.context);
    field(&mut out, 4, "server", &config.server);
    if let Some(ca) = &config.ca_pem {
        field(&mut out, 4, "certificate-authority-data", &keystation_core::base64::encode(ca));
    }
    if let Some(name) = &config.tls_server_name {
        field(&mut out, 4, "tls-server-name", name);
    }
    out.push_str("contexts:\n");
    field(&mut out, 0, "- name", &config.context);
    out.push_str("  context:\n");
    field(&mut out, 4, "cluster", &config.context);
    out.push_str("    extensions:\n");
    field(&mut out, 4, "- name", EXTENSION_NAME);
    out.push_str("      extension:\n");
    field(&mut out, 8, "slot", &config.slot);
    field(&mut out, 8, "listen", &config.listen);
    Ok(out)
}

/// kubectl's kubeconfig for the proxy: cluster `server` is `proxy_url` (plain
/// `http://127.0.0.1:PORT`), no credentials, optional default `namespace`.
pub fn write_client_config(
    proxy_url: &str,
    context: &str,
    namespace: Option<&str>,
) -> Result<String> {
    check_name("context", context)?;
    check_url("proxy_url", proxy_url)?;
    let mut out = String::new();
    start(&mut out, context);
    field(&mut out, 4, "server", proxy_url);
    out.push_str("contexts:\n");
    field(&mut out, 0, "- name", context);
    out.push_str("  context:\n");
    field(&mut out, 4, "cluster", context);
    if let Some(namespace) = namespace.filter(|n| !n.is_empty()) {
        field(&mut out, 4, "namespace", namespace);
    }
    Ok(out)
}

impl Kubeconfig {
    /// Reads back what [`write_proxy_config`] wrote: resolves `context` (or the current one)
    /// and requires its `keystation` extension.
    pub fn proxy_config(&self, context: Option<&str>) -> Result<ProxyConfig> {
        let resolved = self.resolve(context)?;
        let Some(ProxyExtension { slot, listen }) = resolved.keystation else {
            return Err(Error::NoProxyExtension { context: resolved.name });
        };
        Ok(ProxyConfig {
            context: resolved.name,
            server: resolved.cluster.server,
            ca_pem: resolved.cluster.ca_pem,
            tls_server_name: resolved.cluster.tls_server_name,
            slot,
            listen,
        })
    }
}
