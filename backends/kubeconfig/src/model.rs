//! The kubeconfig document (Kubernetes `clientcmd/api/v1` `Config`) and its parser.
//!
//! Field names follow the v1 schema as kubectl writes it: `clusters[].cluster`,
//! `contexts[].context`, `users[].user`, `current-context`; bytes are standard base64
//! (`certificate-authority-data`, `client-certificate-data`, `client-key-data`); relative file
//! paths are taken relative to the directory of the file that holds them, as clientcmd's
//! `ResolveLocalPaths` does. Unknown fields are ignored, as kubectl ignores them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use keystation_core::SecretBytes;

use crate::error::{Error, Result};
use crate::yaml::{self, Kind, Node};

/// Largest kubeconfig (and largest referenced certificate, key or token file) read.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// The settings keystation keeps in a context's `extensions` list under the name
/// `keystation` (kubeconfig v1 `NamedExtension`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyExtension {
    /// The PIV slot holding the client key, e.g. `9a`.
    pub slot: String,
    /// The address the proxy listens on, e.g. `127.0.0.1:8080`.
    pub listen: String,
}

/// How a user authenticates when it needs a plugin (kubeconfig v1 `exec` or `auth-provider`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthPlugin {
    /// `exec`: a credential plugin command (client.authentication.k8s.io).
    Exec {
        /// The command, as written.
        command: String,
    },
    /// `auth-provider`: a legacy in-tree provider such as `oidc` or `gcp`.
    AuthProvider {
        /// The provider's name.
        name: String,
    },
}

impl AuthPlugin {
    /// How the plugin is named in messages, e.g. `exec plugin "aws"`.
    pub fn describe(&self) -> String {
        match self {
            Self::Exec { command } => format!("exec plugin \"{command}\""),
            Self::AuthProvider { name } => format!("auth-provider \"{name}\""),
        }
    }
}

/// Where an entry came from: the file, and the list index inside it (for field paths).
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) file: PathBuf,
    pub(crate) index: usize,
}

/// `clusters[].cluster`.
#[derive(Clone, Debug)]
pub(crate) struct ClusterEntry {
    pub(crate) name: String,
    pub(crate) origin: Origin,
    pub(crate) server: Option<String>,
    pub(crate) ca_data: Option<Vec<u8>>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) insecure_skip_tls_verify: bool,
    pub(crate) tls_server_name: Option<String>,
}

/// `contexts[].context`.
#[derive(Clone, Debug)]
pub(crate) struct ContextEntry {
    pub(crate) name: String,
    pub(crate) cluster: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) keystation: Option<ProxyExtension>,
}

/// `users[].user` (clientcmd's `AuthInfo`).
#[derive(Clone)]
pub(crate) struct UserEntry {
    pub(crate) name: String,
    pub(crate) origin: Origin,
    pub(crate) cert_data: Option<Vec<u8>>,
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_data: Option<SecretBytes>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) token: Option<SecretBytes>,
    pub(crate) token_file: Option<PathBuf>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<SecretBytes>,
    pub(crate) exec: Option<AuthPlugin>,
    pub(crate) auth_provider: Option<AuthPlugin>,
}

impl core::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Only which credentials are present, never their values.
        f.debug_struct("UserEntry")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("client_certificate", &(self.cert_data.is_some() || self.cert_file.is_some()))
            .field("client_key", &(self.key_data.is_some() || self.key_file.is_some()))
            .field("token", &(self.token.is_some() || self.token_file.is_some()))
            .field("username", &self.username)
            .field("password", &self.password.is_some())
            .field("exec", &self.exec)
            .field("auth_provider", &self.auth_provider)
            .finish()
    }
}

/// A kubeconfig: one file, or several merged the way kubectl merges `$KUBECONFIG`.
///
/// `Debug` lists names only; credentials never appear in it.
#[derive(Clone, Default)]
pub struct Kubeconfig {
    pub(crate) current_context: Option<String>,
    pub(crate) clusters: Vec<ClusterEntry>,
    pub(crate) contexts: Vec<ContextEntry>,
    pub(crate) users: Vec<UserEntry>,
}

impl core::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("current_context", &self.current_context)
            .field("clusters", &self.cluster_names())
            .field("contexts", &self.context_names())
            .field("users", &self.user_names())
            .finish()
    }
}

impl Kubeconfig {
    /// Parses one kubeconfig (YAML, or JSON, which is YAML too). `origin` is the file the
    /// text came from: relative file paths inside are resolved against its directory, and
    /// messages name it.
    ///
    /// Never panics: input over [`MAX_CONFIG_BYTES`] is refused, and nesting depth and
    /// alias expansion are bounded (see the `yaml` module).
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(Error::TooLarge {
                origin: origin.to_path_buf(),
                size: text.len() as u64,
                limit: MAX_CONFIG_BYTES as u64,
            });
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let root = yaml::parse(text).map_err(|e| Error::Syntax {
            origin: origin.to_path_buf(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let reader = Reader { origin };
        match root {
            None => Ok(Self::default()),
            Some(root) if root.is_null() => Ok(Self::default()),
            Some(root) => reader.config(&root),
        }
    }

    /// The `current-context`, if set.
    pub fn current_context(&self) -> Option<&str> {
        self.current_context.as_deref()
    }

    /// Context names, in file order (first file first when merged).
    pub fn context_names(&self) -> Vec<String> {
        self.contexts.iter().map(|c| c.name.clone()).collect()
    }

    /// Cluster names, in file order.
    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.iter().map(|c| c.name.clone()).collect()
    }

    /// User names, in file order.
    pub fn user_names(&self) -> Vec<String> {
        self.users.iter().map(|c| c.name.clone()).collect()
    }

    /// Merges `later` into `self` by clientcmd's rules for a `$KUBECONFIG` list: a named
    /// cluster, context or user already present is kept whole (the first file to define a
    /// name wins), and `current-context` is kept if already set.
    pub fn merge(&mut self, later: Self) {
        if self.current_context.is_none() {
            self.current_context = later.current_context;
        }
        fn extend<T>(first: &mut Vec<T>, later: Vec<T>, name: impl Fn(&T) -> &str) {
            let known: HashSet<String> = first.iter().map(|e| name(e).to_owned()).collect();
            first.extend(later.into_iter().filter(|e| !known.contains(name(e))));
        }
        extend(&mut self.clusters, later.clusters, |c| &c.name);
        extend(&mut self.contexts, later.contexts, |c| &c.name);
        extend(&mut self.users, later.users, |u| &u.name);
    }
}

/// Walks the YAML tree of one file.
struct Reader<'a> {
    origin: &'a Path,
}

/// The fields of one mapping, with the path that led to it.
struct Fields<'n> {
    entries: &'n [(Node, Node)],
    path: String,
}

impl<'a> Reader<'a> {
    fn invalid(&self, path: &str, message: impl Into<String>) -> Error {
        Error::Invalid {
            origin: self.origin.to_path_buf(),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    fn mismatch(&self, path: &str, expected: &str, found: &Node) -> Error {
        self.invalid(
            path,
            format!(
                "expected {expected}, found {} at line {} column {}",
                found.kind_name(),
                found.line,
                found.column
            ),
        )
    }

    /// A mapping, or `None` for null.
    fn fields<'n>(&self, node: &'n Node, path: String) -> Result<Option<Fields<'n>>> {
        match &node.kind {
            _ if node.is_null() => Ok(None),
            Kind::Map(entries) => {
                let mut seen = HashSet::with_capacity(entries.len());
                for (key, _) in entries {
                    let Some(name) = scalar_text(key) else { continue };
                    if !seen.insert(name) {
                        return Err(self.invalid(
                            &join(&path, name),
                            format!("duplicate key at line {} column {}", key.line, key.column),
                        ));
                    }
                }
                Ok(Some(Fields { entries, path }))
            }
            _ => Err(self.mismatch(&path, "a mapping", node)),
        }
    }

    /// A sequence, or empty for null.
    fn seq<'n>(&self, node: &'n Node, path: &str) -> Result<&'n [Node]> {
        match &node.kind {
            _ if node.is_null() => Ok(&[]),
            Kind::Seq(items) => Ok(items),
            _ => Err(self.mismatch(path, "a sequence", node)),
        }
    }

    fn string(&self, fields: &Fields<'_>, key: &str) -> Result<Option<String>> {
        Ok(self.text(fields, key)?.map(str::to_owned))
    }

    /// A scalar's text (any scalar: kubectl reads `namespace: 123` as the string "123").
    fn text<'n>(&self, fields: &Fields<'n>, key: &str) -> Result<Option<&'n str>> {
        match fields.get(key) {
            None => Ok(None),
            Some(node) => match &node.kind {
                Kind::Scalar { text, .. } => Ok(Some(text.as_str())),
                _ => Err(self.mismatch(&join(&fields.path, key), "a string", node)),
            },
        }
    }

    fn boolean(&self, fields: &Fields<'_>, key: &str) -> Result<bool> {
        match fields.get(key) {
            None => Ok(false),
            Some(node) => match &node.kind {
                Kind::Scalar { text, plain: true } => match text.as_str() {
                    "true" | "True" | "TRUE" => Ok(true),
                    "false" | "False" | "FALSE" => Ok(false),
                    _ => Err(self.mismatch(&join(&fields.path, key), "true or false", node)),
                },
                _ => Err(self.mismatch(&join(&fields.path, key), "true or false", node)),
            },
        }
    }

    /// Base64 bytes (`*-data` fields); empty counts as absent, as in clientcmd.
    fn bytes(&self, fields: &Fields<'_>, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(text) = self.text(fields, key)? else { return Ok(None) };
        if text.trim().is_empty() {
            return Ok(None);
        }
        keystation_core::base64::decode(text).map(Some).ok_or_else(|| Error::Base64 {
            origin: self.origin.to_path_buf(),
            path: join(&fields.path, key),
        })
    }

    /// A file path, resolved against the directory of the kubeconfig; empty is absent.
    fn file(&self, fields: &Fields<'_>, key: &str) -> Result<Option<PathBuf>> {
        let Some(text) = self.text(fields, key)? else { return Ok(None) };
        if text.is_empty() {
            return Ok(None);
        }
        let path = Path::new(text);
        if path.is_absolute() {
            return Ok(Some(path.to_path_buf()));
        }
        Ok(Some(match self.origin.parent() {
            Some(dir) => dir.join(path),
            None => path.to_path_buf(),
        }))
    }

    fn non_empty(value: Option<String>) -> Option<String> {
        value.filter(|v| !v.is_empty())
    }

    fn config(&self, root: &Node) -> Result<Kubeconfig> {
        let Some(top) = self.fields(root, String::new())? else { return Ok(Kubeconfig::default()) };
        if let Some(kind) = self.text(&top, "kind")?
            && !kind.is_empty()
            && kind != "Config"
        {
            return Err(self.invalid("kind", format!("expected \"Config\", found \"{kind}\"")));
        }
        if let Some(version) = self.text(&top, "apiVersion")?
            && !version.is_empty()
            && version != "v1"
        {
            return Err(self.invalid("apiVersion", format!("expected \"v1\", found \"{version}\"")));
        }
        let mut config = Kubeconfig {
            current_context: Self::non_empty(self.string(&top, "current-context")?),
            ..Kubeconfig::default()
        };
        let mut names = HashSet::new();
        if let Some(list) = top.get("clusters") {
            for (index, item) in self.seq(list, "clusters")?.iter().enumerate() {
                let (name, body) = self.named(item, "clusters", index, "cluster")?;
                if !names.insert(name.clone()) {
                    return Err(self.duplicate("clusters", index, &name));
                }
                config.clusters.push(self.cluster(name, body, index)?);
            }
        }
        let mut names = HashSet::new();
        if let Some(list) = top.get("contexts") {
            for (index, item) in self.seq(list, "contexts")?.iter().enumerate() {
                let (name, body) = self.named(item, "contexts", index, "context")?;
                if !names.insert(name.clone()) {
                    return Err(self.duplicate("contexts", index, &name));
                }
                config.contexts.push(self.context(name, body)?);
            }
        }
        let mut names = HashSet::new();
        if let Some(list) = top.get("users") {
            for (index, item) in self.seq(list, "users")?.iter().enumerate() {
                let (name, body) = self.named(item, "users", index, "user")?;
                if !names.insert(name.clone()) {
                    return Err(self.duplicate("users", index, &name));
                }
                config.users.push(self.user(name, body, index)?);
            }
        }
        Ok(config)
    }

    fn duplicate(&self, list: &str, index: usize, name: &str) -> Error {
        self.invalid(&format!("{list}[{index}].name"), format!("duplicate name \"{name}\""))
    }

    /// One `{name, <body>}` list item (v1 `NamedCluster`, `NamedContext`, `NamedAuthInfo`).
    fn named<'n>(
        &self,
        item: &'n Node,
        list: &str,
        index: usize,
        body: &str,
    ) -> Result<(String, Option<Fields<'n>>)> {
        let path = format!("{list}[{index}]");
        let Some(fields) = self.fields(item, path.clone())? else {
            return Err(self.mismatch(&path, "a mapping", item));
        };
        let Some(name) = Self::non_empty(self.string(&fields, "name")?) else {
            return Err(self.invalid(&join(&path, "name"), "missing or empty"));
        };
        let body = match fields.get(body) {
            None => None,
            Some(node) => self.fields(node, join(&path, body))?,
        };
        Ok((name, body))
    }

    fn cluster(
        &self,
        name: String,
        body: Option<Fields<'_>>,
        index: usize,
    ) -> Result<ClusterEntry> {
        let origin = Origin { file: self.origin.to_path_buf(), index };
        let mut entry = ClusterEntry {
            name,
            origin,
            server: None,
            ca_data: None,
            ca_file: None,
            insecure_skip_tls_verify: false,
            tls_server_name: None,
        };
        if let Some(f) = body {
            entry.server = Self::non_empty(self.string(&f, "server")?);
            entry.ca_data = self.bytes(&f, "certificate-authority-data")?;
            entry.ca_file = self.file(&f, "certificate-authority")?;
            entry.insecure_skip_tls_verify = self.boolean(&f, "insecure-skip-tls-verify")?;
            entry.tls_server_name = Self::non_empty(self.string(&f, "tls-server-name")?);
        }
        Ok(entry)
    }

    fn context(&self, name: String, body: Option<Fields<'_>>) -> Result<ContextEntry> {
        let mut entry =
            ContextEntry { name, cluster: None, user: None, namespace: None, keystation: None };
        let Some(f) = body else { return Ok(entry) };
        entry.cluster = Self::non_empty(self.string(&f, "cluster")?);
        entry.user = Self::non_empty(self.string(&f, "user")?);
        entry.namespace = Self::non_empty(self.string(&f, "namespace")?);
        if let Some(list) = f.get("extensions") {
            let path = join(&f.path, "extensions");
            for (i, item) in self.seq(list, &path)?.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let Some(ext) = self.fields(item, item_path.clone())? else { continue };
                if self.text(&ext, "name")? != Some(crate::write::EXTENSION_NAME) {
                    continue;
                }
                let value_path = join(&item_path, "extension");
                let Some(value) = ext.get("extension") else {
                    return Err(self.invalid(&value_path, "missing"));
                };
                let Some(value) = self.fields(value, value_path.clone())? else {
                    return Err(self.invalid(&value_path, "missing"));
                };
                let required = |key: &str| -> Result<String> {
                    Self::non_empty(self.string(&value, key)?)
                        .ok_or_else(|| self.invalid(&join(&value_path, key), "missing or empty"))
                };
                entry.keystation =
                    Some(ProxyExtension { slot: required("slot")?, listen: required("listen")? });
            }
        }
        Ok(entry)
    }

    fn user(&self, name: String, body: Option<Fields<'_>>, index: usize) -> Result<UserEntry> {
        let origin = Origin { file: self.origin.to_path_buf(), index };
        let mut entry = UserEntry {
            name,
            origin,
            cert_data: None,
            cert_file: None,
            key_data: None,
            key_file: None,
            token: None,
            token_file: None,
            username: None,
            password: None,
            exec: None,
            auth_provider: None,
        };
        let Some(f) = body else { return Ok(entry) };
        entry.cert_data = self.bytes(&f, "client-certificate-data")?;
        entry.cert_file = self.file(&f, "client-certificate")?;
        entry.key_data = self.bytes(&f, "client-key-data")?.map(SecretBytes::new);
        entry.key_file = self.file(&f, "client-key")?;
        entry.token = self
            .text(&f, "token")?
            .filter(|t| !t.is_empty())
            .map(|t| SecretBytes::copy_from(t.as_bytes()));
        entry.token_file = self.file(&f, "tokenFile")?;
        entry.username = Self::non_empty(self.string(&f, "username")?);
        entry.password = self
            .text(&f, "password")?
            .filter(|t| !t.is_empty())
            .map(|t| SecretBytes::copy_from(t.as_bytes()));
        if let Some(node) = f.get("exec")
            && let Some(exec) = self.fields(node, join(&f.path, "exec"))?
        {
            let command = self.string(&exec, "command")?.unwrap_or_default();
            entry.exec = Some(AuthPlugin::Exec { command });
        }
        if let Some(node) = f.get("auth-provider")
            && let Some(provider) = self.fields(node, join(&f.path, "auth-provider"))?
        {
            let name = self.string(&provider, "name")?.unwrap_or_default();
            entry.auth_provider = Some(AuthPlugin::AuthProvider { name });
        }
        Ok(entry)
    }
}

impl<'n> Fields<'n> {
    /// The value under `key`, `None` if absent or null.
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| scalar_text(k) == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }
}

fn scalar_text(node: &Node) -> Option<&str> {
    match &node.kind {
        Kind::Scalar { text, .. } => Some(text.as_str()),
        _ => None,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}
