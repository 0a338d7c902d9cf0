//! Resolving a context to what a client needs to connect: the cluster's server and trust
//! anchors and the user's credentials, with referenced files read now. The checks follow
//! clientcmd's validation of the context in use (`ConfirmUsable`): a name that resolves
//! to nothing, `*-data` together with the file form of the same field, a certificate
//! without its key, and more than one of token and basic auth are errors.

use std::path::{Path, PathBuf};

use keystation_core::SecretBytes;

use crate::error::{Error, Result};
use crate::load::read_limited;
use crate::model::{AuthPlugin, ClusterEntry, Kubeconfig, ProxyExtension, UserEntry};

/// A cluster ready to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedCluster {
    /// The cluster's name in the kubeconfig.
    pub name: String,
    /// The API server URL (`http://` or `https://`).
    pub server: String,
    /// Trust anchors in PEM, from `certificate-authority-data` or the
    /// `certificate-authority` file; `None` means the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
    /// `tls-server-name`: the name to verify the server certificate against.
    pub tls_server_name: Option<String>,
}

/// HTTP basic credentials (`username`/`password`).
#[derive(Clone)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password, zeroized on drop.
    pub password: SecretBytes,
}

impl core::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A user's credentials, files read. Several may be present (a client certificate and a
/// token, as client-go allows).
#[derive(Clone, Default)]
pub struct ResolvedUser {
    /// The user's name in the kubeconfig; `None` when the context names no user.
    pub name: Option<String>,
    /// Client certificate in PEM (`client-certificate-data` or `client-certificate`).
    pub client_certificate_pem: Option<Vec<u8>>,
    /// Client private key in PEM (`client-key-data` or `client-key`), zeroized on drop.
    pub client_key_pem: Option<SecretBytes>,
    /// Bearer token (`token`, else the contents of `tokenFile`), zeroized on drop.
    pub token: Option<SecretBytes>,
    /// `username`/`password`.
    pub basic: Option<BasicAuth>,
    /// An `exec` or `auth-provider` plugin, which keystation does not run.
    pub plugin: Option<AuthPlugin>,
}

impl core::fmt::Debug for ResolvedUser {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResolvedUser")
            .field("name", &self.name)
            .field("client_certificate_pem", &self.client_certificate_pem.as_ref().map(Vec::len))
            .field("client_key_pem", &self.client_key_pem.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("basic", &self.basic)
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl ResolvedUser {
    /// Fails with [`Error::UnsupportedPlugin`] if the user needs an `exec` or
    /// `auth-provider` plugin.
    pub fn check_supported(&self) -> Result<()> {
        match &self.plugin {
            None => Ok(()),
            Some(plugin) => Err(Error::UnsupportedPlugin {
                user: self.name.clone().unwrap_or_default(),
                plugin: plugin.describe(),
            }),
        }
    }
}

/// A context resolved to its cluster, user and namespace.
#[derive(Clone, Debug)]
pub struct ResolvedContext {
    /// The context's name.
    pub name: String,
    /// Its cluster.
    pub cluster: ResolvedCluster,
    /// Its user's credentials (all `None` when the context names no user).
    pub user: ResolvedUser,
    /// `namespace`, if set.
    pub namespace: Option<String>,
    /// keystation's settings from the context's `extensions`, if present.
    pub keystation: Option<ProxyExtension>,
}

fn conflict(origin: &Path, path: String, message: String) -> Error {
    Error::Invalid { origin: origin.to_path_buf(), path, message }
}

/// `data` if set, else the file's contents; both set is an error as in clientcmd.
fn data_or_file(
    data: Option<&Vec<u8>>,
    file: Option<&PathBuf>,
    what: &'static str,
    origin: &Path,
    entry_path: &str,
) -> Result<Option<Vec<u8>>> {
    match (data, file) {
        (Some(_), Some(_)) => Err(conflict(
            origin,
            entry_path.to_owned(),
            format!("both {what}-data and {what} are set"),
        )),
        (Some(data), None) => Ok(Some(data.clone())),
        (None, Some(file)) => Ok(Some(read_limited(file, what)?.to_vec())),
        (None, None) => Ok(None),
    }
}

impl Kubeconfig {
    /// Resolves `context` (or the `current-context`) to its cluster, user and namespace,
    /// reading the files they reference.
    pub fn resolve(&self, context: Option<&str>) -> Result<ResolvedContext> {
        let name = match context {
            Some(name) => name,
            None => self.current_context.as_deref().ok_or(Error::NoCurrentContext)?,
        };
        let Some(ctx) = self.contexts.iter().find(|c| c.name == name) else {
            return Err(Error::ContextNotFound {
                name: name.to_owned(),
                known: self.context_names(),
            });
        };
        let Some(cluster_name) = ctx.cluster.clone() else {
            return Err(Error::NoCluster { context: ctx.name.clone() });
        };
        let Some(cluster) = self.clusters.iter().find(|c| c.name == cluster_name) else {
            return Err(Error::ClusterNotFound {
                context: ctx.name.clone(),
                cluster: cluster_name,
            });
        };
        let user = match &ctx.user {
            None => ResolvedUser::default(),
            Some(user_name) => match self.users.iter().find(|u| &u.name == user_name) {
                Some(user) => resolve_user(user)?,
                None => {
                    return Err(Error::UserNotFound {
                        context: ctx.name.clone(),
                        user: user_name.clone(),
                    });
                }
            },
        };
        Ok(ResolvedContext {
            name: ctx.name.clone(),
            cluster: resolve_cluster(cluster)?,
            user,
            namespace: ctx.namespace.clone(),
            keystation: ctx.keystation.clone(),
        })
    }
}

/// Whether `url` is `http://` or `https://` followed by a host.
pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    matches!(rest, Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace))
}

fn resolve_cluster(cluster: &ClusterEntry) -> Result<ResolvedCluster> {
    let origin = &cluster.origin.file;
    let bad = |message: String| Error::BadServer {
        origin: origin.clone(),
        cluster: cluster.name.clone(),
        message,
    };
    let Some(server) = &cluster.server else { return Err(bad(String::from("no server set"))) };
    if !is_http_url(server) {
        return Err(bad(format!("server \"{server}\" is not an http(s) URL")));
    }
    let path = format!("clusters[{}].cluster", cluster.origin.index);
    let ca_pem = data_or_file(
        cluster.ca_data.as_ref(),
        cluster.ca_file.as_ref(),
        "certificate-authority",
        origin,
        &path,
    )?;
    Ok(ResolvedCluster {
        name: cluster.name.clone(),
        server: server.clone(),
        ca_pem,
        insecure_skip_tls_verify: cluster.insecure_skip_tls_verify,
        tls_server_name: cluster.tls_server_name.clone(),
    })
}

fn resolve_user(user: &UserEntry) -> Result<ResolvedUser> {
    let origin = &user.origin.file;
    let path = format!("users[{}].user", user.origin.index);
    let client_certificate_pem = data_or_file(
        user.cert_data.as_ref(),
        user.cert_file.as_ref(),
        "client-certificate",
        origin,
        &path,
    )?;
    let client_key_pem = match (&user.key_data, &user.key_file) {
        (Some(_), Some(_)) => {
            return Err(conflict(
                origin,
                path,
                String::from("both client-key-data and client-key are set"),
            ));
        }
        (Some(data), None) => Some(data.clone()),
        (None, Some(file)) => Some(SecretBytes::new(read_limited(file, "client-key")?.to_vec())),
        (None, None) => None,
    };
    if client_certificate_pem.is_some() != client_key_pem.is_some() {
        return Err(conflict(
            origin,
            path,
            String::from(
                "a client certificate needs a client key and a client key needs a certificate",
            ),
        ));
    }
    // clientcmd: a `token` wins over `tokenFile`, which is read only when `token` is empty.
    let token = match (&user.token, &user.token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(file)) => {
            let bytes = read_limited(file, "tokenFile")?;
            let text = bytes.trim_ascii();
            (!text.is_empty()).then(|| SecretBytes::copy_from(text))
        }
        (None, None) => None,
    };
    let basic = match (&user.username, &user.password) {
        (None, None) => None,
        (username, password) => Some(BasicAuth {
            username: username.clone().unwrap_or_default(),
            password: password.clone().unwrap_or_default(),
        }),
    };
    if token.is_some() && basic.is_some() {
        return Err(conflict(
            origin,
            path,
            String::from(
                "more than one authentication method (token and basic auth); only one is allowed",
            ),
        ));
    }
    let plugin = match (&user.exec, &user.auth_provider) {
        (Some(_), Some(_)) => {
            return Err(conflict(
                origin,
                path,
                String::from("both exec and auth-provider are set"),
            ));
        }
        (exec, provider) => exec.clone().or_else(|| provider.clone()),
    };
    Ok(ResolvedUser {
        name: Some(user.name.clone()),
        client_certificate_pem,
        client_key_pem,
        token,
        basic,
        plugin,
    })
}
