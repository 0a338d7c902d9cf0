//! `keystation authority init`: a new authority in a state directory, as `step ca init`
//! makes one — root and intermediate CA, optionally the SSH user and host CAs, and a first
//! JWK provisioner whose private key is kept only as step's `encryptedKey` — plus the
//! settings (`config/authority.toml`), step's client defaults (`config/defaults.json`) and
//! the store with the provisioner in it.
//!
//! Key files are written with mode 0600 in a 0700 `secrets/`; an existing authority is
//! never overwritten.

use std::path::Path;

use keystation_ca::{CaInitOptions, IntermediateKey};
use keystation_core::key::KeyAlgorithm;
use keystation_store::{NewProvisioner, Store};

use crate::config::AuthorityConfig;
use crate::error::Error;
use crate::layout::Layout;

/// What `init` makes.
#[non_exhaustive]
pub struct InitOptions {
    /// The settings to write (name, address, names, store, where the intermediate key is).
    pub config: AuthorityConfig,
    /// The first JWK provisioner's name (step's default: `admin`).
    pub provisioner: String,
    /// The CA keys' algorithm (P-256 by default; RSA and Ed25519 offered).
    pub algorithm: KeyAlgorithm,
    /// The intermediate key: generated (into a password-protected file) or a signer such
    /// as a PIV slot.
    pub intermediate: IntermediateKey,
}

impl InitOptions {
    /// Options for `config` with step's defaults: provisioner `admin`, P-256, a generated
    /// intermediate key.
    pub fn new(config: AuthorityConfig) -> Self {
        Self {
            config,
            provisioner: "admin".into(),
            algorithm: KeyAlgorithm::NistP256,
            intermediate: IntermediateKey::Generate,
        }
    }
}

/// What `init` reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Initialized {
    /// The root's SHA-256 fingerprint (hex), what clients pin.
    pub root_fingerprint: String,
    /// The first provisioner's name.
    pub provisioner: String,
    /// Its key id.
    pub kid: String,
    /// The URL clients use.
    pub url: String,
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let write = || -> std::io::Result<()> {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(|source| Error::Write { path: path.to_owned(), source })
}

fn make_dir(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt as _;
    let made = std::fs::DirBuilder::new().recursive(true).mode(mode).create(path);
    made.map_err(|source| Error::Write { path: path.to_owned(), source })
}

/// Makes a new authority in `layout` with `password` protecting every key file and the
/// first provisioner's key.
pub async fn init(
    layout: &Layout,
    options: InitOptions,
    password: &[u8],
) -> Result<Initialized, Error> {
    if password.is_empty() {
        return Err(Error::Config("the password is empty".into()));
    }
    for existing in [layout.config(), layout.root_certificate(), layout.database()] {
        if existing.exists() {
            return Err(Error::AlreadyInitialized(existing));
        }
    }
    let config = options.config;
    if config.dns_names.is_empty() {
        return Err(Error::Config(
            "the authority needs at least one DNS name or IP address (--dns)".into(),
        ));
    }
    let dir = layout.dir();
    make_dir(dir, 0o755)?;
    make_dir(&dir.join("certs"), 0o755)?;
    make_dir(&dir.join("secrets"), 0o700)?;
    make_dir(&dir.join("config"), 0o755)?;
    make_dir(&dir.join("db"), 0o700)?;

    let mut ca_options = CaInitOptions::new(config.name.clone());
    ca_options.algorithm = options.algorithm;
    let material = keystation_ca::init_ca(&ca_options, password, options.intermediate)?;
    write_file(&layout.root_certificate(), material.root_pem().as_bytes(), 0o644)?;
    write_file(&layout.intermediate_certificate(), material.intermediate_pem().as_bytes(), 0o644)?;
    write_file(&layout.root_key(), material.root_key_pem.as_bytes(), 0o600)?;
    if let Some(key) = &material.intermediate_key_pem {
        write_file(&layout.intermediate_key(), key.as_bytes(), 0o600)?;
    }
    if config.ssh {
        let ssh_algorithm = match options.algorithm {
            KeyAlgorithm::Ed25519 => KeyAlgorithm::Ed25519,
            _ => KeyAlgorithm::NistP256,
        };
        let ssh = keystation_ca::init_ssh_ca(ssh_algorithm, password)?;
        write_file(&layout.ssh_key(false), ssh.user_key_pem.as_bytes(), 0o600)?;
        write_file(&layout.ssh_key(true), ssh.host_key_pem.as_bytes(), 0o600)?;
        write_file(
            &layout.ssh_public_key(false),
            format!("{}\n", ssh.user_public_key).as_bytes(),
            0o644,
        )?;
        write_file(
            &layout.ssh_public_key(true),
            format!("{}\n", ssh.host_public_key).as_bytes(),
            0o644,
        )?;
    }

    let (provisioner, kid) =
        crate::provisioner_config::jwk(&options.provisioner, password, config.ssh, None)?;
    let store = Store::open(&config.database_url(layout)).await?;
    store
        .add_provisioner(&NewProvisioner {
            name: options.provisioner.clone(),
            kind: "JWK".into(),
            config: provisioner,
        })
        .await?;
    store.close().await;

    let fingerprint = material.root_fingerprint();
    write_file(&layout.config(), config.to_toml()?.as_bytes(), 0o644)?;
    write_file(&layout.defaults(), config.defaults_json(layout, &fingerprint).as_bytes(), 0o644)?;
    let url = config.base_urls().into_iter().next().unwrap_or_default();
    tracing::info!(dir = %dir.display(), %url, fingerprint = %fingerprint, "authority initialized");
    Ok(Initialized { root_fingerprint: fingerprint, provisioner: options.provisioner, kid, url })
}
