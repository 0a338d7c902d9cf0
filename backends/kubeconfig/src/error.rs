//! The crate's one error type. Messages name files and field paths, never secret values.

use std::path::PathBuf;

/// Everything that can go wrong reading, resolving or writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is larger than [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES).
    #[error("{origin}: kubeconfig is {size} bytes, more than the {limit} accepted")]
    TooLarge {
        /// The file.
        origin: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The text is not YAML (or JSON), or exceeds the parser's limits.
    #[error("{origin}:{line}:{column}: YAML syntax error: {message}")]
    Syntax {
        /// The file.
        origin: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser reported.
        message: String,
    },
    /// The YAML is well formed but not a kubeconfig (wrong type, duplicate name, conflicting
    /// fields, a wrong `kind` or `apiVersion`).
    #[error("{origin}: {path}: {message}")]
    Invalid {
        /// The file.
        origin: PathBuf,
        /// Field path, e.g. `users[0].user.client-key-data`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A `*-data` field is not base64 (kubeconfig stores bytes as standard base64).
    #[error("{origin}: {path}: invalid base64")]
    Base64 {
        /// The file.
        origin: PathBuf,
        /// Field path, e.g. `users[0].user.client-key-data`.
        path: String,
    },
    /// A file could not be read: a kubeconfig, or a file one refers to.
    #[error("cannot read {what} {path}: {source}")]
    Io {
        /// What the file is (`kubeconfig`, `certificate-authority`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// None of the kubeconfig files exists.
    #[error("no kubeconfig found (tried {})", list_paths(.tried))]
    NoConfig {
        /// The paths looked at.
        tried: Vec<PathBuf>,
    },
    /// Neither `$KUBECONFIG` nor a home directory is available.
    #[error("no kubeconfig: $KUBECONFIG is unset and there is no home directory")]
    NoHome,
    /// No context was asked for and the kubeconfig has no `current-context`.
    #[error("no context given and the kubeconfig sets no current-context")]
    NoCurrentContext,
    /// The context does not exist.
    #[error("context \"{name}\" not found (known contexts: {})", list_names(.known))]
    ContextNotFound {
        /// The name asked for.
        name: String,
        /// The contexts that exist.
        known: Vec<String>,
    },
    /// The context names no cluster.
    #[error("context \"{context}\" names no cluster")]
    NoCluster {
        /// The context.
        context: String,
    },
    /// The context names a cluster that does not exist.
    #[error("context \"{context}\" refers to cluster \"{cluster}\", which does not exist")]
    ClusterNotFound {
        /// The context.
        context: String,
        /// The missing cluster.
        cluster: String,
    },
    /// The context names a user that does not exist.
    #[error("context \"{context}\" refers to user \"{user}\", which does not exist")]
    UserNotFound {
        /// The context.
        context: String,
        /// The missing user.
        user: String,
    },
    /// The cluster has no `server`, or one that is not an http(s) URL.
    #[error("{origin}: cluster \"{cluster}\": {message}")]
    BadServer {
        /// The file that defines the cluster.
        origin: PathBuf,
        /// The cluster.
        cluster: String,
        /// What is wrong.
        message: String,
    },
    /// The user authenticates through a plugin keystation does not run.
    #[error("user \"{user}\" authenticates with {plugin}, which keystation does not support")]
    UnsupportedPlugin {
        /// The user.
        user: String,
        /// e.g. `exec plugin "aws"` or `auth-provider "oidc"`.
        plugin: String,
    },
    /// The context carries no `keystation` extension.
    #[error("context \"{context}\" has no keystation extension")]
    NoProxyExtension {
        /// The context.
        context: String,
    },
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        return String::from("none");
    }
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
