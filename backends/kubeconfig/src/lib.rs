//! Reading, resolving and writing kubeconfig files the way kubectl does.
//!
//! * [`Kubeconfig::parse`] reads one file (YAML or JSON) of the v1 `Config` schema;
//!   [`Kubeconfig::load`] and [`Kubeconfig::load_default`] read and merge a `$KUBECONFIG`
//!   list by client-go's clientcmd rules (the first file to set `current-context` or to
//!   define a named cluster, context or user wins; missing files are skipped).
//! * [`Kubeconfig::resolve`] turns a context into a [`ResolvedContext`]: server URL, CA PEM,
//!   client certificate and key, token, basic auth, namespace, reading referenced files
//!   (relative paths are relative to the kubeconfig that names them).
//! * [`write_proxy_config`] and [`write_client_config`] write the two kubeconfigs of
//!   keystation's API proxy; [`Kubeconfig::proxy_config`] reads the first back.
//!
//! Reference: Kubernetes documentation, "Organizing Cluster Access Using kubeconfig Files"
//! and "Configure Access to Multiple Clusters"; client-go `tools/clientcmd` (loader and
//! validation). Private keys, tokens and passwords are held in
//! [`SecretBytes`](keystation_core::SecretBytes) and never appear in errors or `Debug`.

mod error;
mod load;
mod model;
mod resolve;
mod write;
mod yaml;

pub use error::{Error, Result};
pub use load::config_paths;
pub use model::{AuthPlugin, Kubeconfig, MAX_CONFIG_BYTES, ProxyExtension};
pub use resolve::{BasicAuth, ResolvedCluster, ResolvedContext, ResolvedUser};
pub use write::{EXTENSION_NAME, ProxyConfig, write_client_config, write_proxy_config};
