//! The authority's state directory, laid out as step's `$STEPPATH` so that a client built
//! on smallstep's library (`STEPPATH=<dir>`) finds the CA URL and root in
//! `config/defaults.json` as it does for step-ca.
//!
//! ```text
//! certs/root_ca.crt            certs/intermediate_ca.crt
//! certs/ssh_user_ca_key.pub    certs/ssh_host_ca_key.pub
//! secrets/root_ca_key          secrets/intermediate_ca_key   (encrypted PKCS#8 PEM)
//! secrets/ssh_user_ca_key      secrets/ssh_host_ca_key       (encrypted PKCS#8 PEM)
//! config/authority.toml        config/defaults.json
//! db/authority.sqlite          (the default store)
//! ```

use std::path::{Path, PathBuf};

/// The files of one authority's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { root: dir.into() }
    }

    /// The state directory itself.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// `certs/root_ca.crt`: the root certificate (PEM).
    pub fn root_certificate(&self) -> PathBuf {
        self.root.join("certs/root_ca.crt")
    }

    /// `certs/intermediate_ca.crt`: the intermediate certificate (PEM).
    pub fn intermediate_certificate(&self) -> PathBuf {
        self.root.join("certs/intermediate_ca.crt")
    }

    /// `secrets/root_ca_key`: the root key, encrypted with the password.
    pub fn root_key(&self) -> PathBuf {
        self.root.join("secrets/root_ca_key")
    }

    /// `secrets/intermediate_ca_key`: the intermediate key, encrypted with the password
    /// (absent when the key lives in a PIV slot).
    pub fn intermediate_key(&self) -> PathBuf {
        self.root.join("secrets/intermediate_ca_key")
    }

    /// `certs/ssh_user_ca_key.pub` / `certs/ssh_host_ca_key.pub`.
    pub fn ssh_public_key(&self, host: bool) -> PathBuf {
        self.root.join(if host { "certs/ssh_host_ca_key.pub" } else { "certs/ssh_user_ca_key.pub" })
    }

    /// `secrets/ssh_user_ca_key` / `secrets/ssh_host_ca_key`.
    pub fn ssh_key(&self, host: bool) -> PathBuf {
        self.root.join(if host { "secrets/ssh_host_ca_key" } else { "secrets/ssh_user_ca_key" })
    }

    /// `config/authority.toml`: the settings `init` chose.
    pub fn config(&self) -> PathBuf {
        self.root.join("config/authority.toml")
    }

    /// `config/defaults.json`: `ca-url`, `root` and `fingerprint`, as step writes them.
    pub fn defaults(&self) -> PathBuf {
        self.root.join("config/defaults.json")
    }

    /// `db/authority.sqlite`: the default store.
    pub fn database(&self) -> PathBuf {
        self.root.join("db/authority.sqlite")
    }

    /// The default store's URL.
    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.database().display())
    }
}
