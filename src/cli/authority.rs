//! `keystation authority …`: the certificate authority (keystation-authority) — `init` a
//! state directory, `serve` step-ca's API and defguard's worker service, and manage its
//! provisioners, admins and station jobs in the store directly.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use keystation_authority::init::InitOptions;
use keystation_authority::layout::Layout;
use keystation_authority::provisioner_config::{self, AttestationPolicy};
use keystation_authority::{AuthorityConfig, IntermediateKey};
use keystation_core::key::KeyAlgorithm;
use keystation_store::{AdminRole, NewJob, NewProvisioner, Store};
use zeroize::Zeroizing;

use super::options::{AuthorityOptions, CommonOptions, FlagGroups, command_line};
use crate::Error;
use crate::config::{CommandLine, ConfigError, Settings};

/// Where the state lives when neither `--dir` nor `$STATE_DIRECTORY` says.
pub const DEFAULT_AUTHORITY_DIR: &str = "/var/lib/keystation-authority";

/// The largest password file read.
const MAX_PASSWORD_BYTES: u64 = 64 * 1024;

/// `keystation authority …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum AuthorityCommand {
    /// Make a new authority in the state directory: root and intermediate CA (the
    /// intermediate key in a password-protected file or in a PIV slot), optionally the SSH
    /// CAs, and a first JWK provisioner whose key is stored encrypted with the password
    Init(InitArgs),
    /// Serve step-ca's HTTPS API (and defguard's worker service with --grpc-address) until
    /// SIGTERM or Ctrl-C
    Serve(ServeArgs),
    /// The provisioners that authorize requests.
    #[command(subcommand)]
    Provisioner(ProvisionerCommand),
    /// The administrators of the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Provisioning jobs for stations (defguard's worker protocol).
    #[command(subcommand)]
    Job(JobCommand),
    /// Trust-on-first-use records of the cloud provisioners (AWS, GCP, Azure): one
    /// certificate per instance until an operator resets the instance's record.
    #[command(subcommand)]
    Tofu(TofuCommand),
    /// ACME provisioners' external account binding keys (RFC 8555 §7.3.4).
    #[cfg(feature = "acme")]
    #[command(subcommand)]
    Acme(AcmeCommand),
}

/// `keystation authority acme …`
#[cfg(feature = "acme")]
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum AcmeCommand {
    /// External account binding keys, as `step ca acme eab` manages them.
    #[command(subcommand)]
    Eab(EabCommand),
}

/// `keystation authority acme eab …`
#[cfg(feature = "acme")]
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum EabCommand {
    /// Make a key for PROVISIONER (an ACME provisioner) and print its key ID and HMAC key
    /// (base64url), which a client passes as --eab-kid and --eab-hmac-key
    Add {
        /// The ACME provisioner
        provisioner: String,
        /// A name of your own for the key (unique within the provisioner)
        reference: Option<String>,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// List PROVISIONER's keys: key ID, reference, bound account, created (never the key)
    List {
        /// The ACME provisioner
        provisioner: String,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// Remove a key (an account bound with it stays)
    Remove {
        /// The ACME provisioner
        provisioner: String,
        /// The key ID
        key_id: String,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
}

/// `keystation authority tofu …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum TofuCommand {
    /// List the instances that got their certificate (provisioner, instance, when)
    List {
        /// Only this provisioner's
        #[arg(long, value_name = "NAME")]
        provisioner: Option<String>,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// Forget one instance's record, so that it may get a certificate again (after it
    /// was rebuilt, or its certificate lost)
    Reset {
        /// The provisioner
        #[arg(long, value_name = "NAME")]
        provisioner: String,
        /// The instance as `tofu list` shows it (an EC2 instance ID, a GCP instance, an
        /// Azure resource ID)
        instance: String,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
}

impl AuthorityCommand {
    fn options(&self) -> &AuthorityOptions {
        match self {
            Self::Init(a) => &a.authority,
            Self::Serve(a) => &a.authority,
            Self::Provisioner(c) => match c {
                ProvisionerCommand::Add(a) => &a.authority,
                ProvisionerCommand::List { authority }
                | ProvisionerCommand::Remove { authority, .. }
                | ProvisionerCommand::Update { authority, .. } => authority,
            },
            Self::Admin(c) => match c {
                AdminCommand::Add { authority, .. }
                | AdminCommand::List { authority }
                | AdminCommand::Remove { authority, .. } => authority,
            },
            Self::Job(c) => match c {
                JobCommand::Add { authority, .. }
                | JobCommand::List { authority }
                | JobCommand::Show { authority, .. } => authority,
            },
            Self::Tofu(c) => match c {
                TofuCommand::List { authority, .. } | TofuCommand::Reset { authority, .. } => {
                    authority
                }
            },
            #[cfg(feature = "acme")]
            Self::Acme(AcmeCommand::Eab(c)) => match c {
                EabCommand::Add { authority, .. }
                | EabCommand::List { authority, .. }
                | EabCommand::Remove { authority, .. } => authority,
            },
        }
    }

    /// The command line's configuration layer.
    pub(crate) fn command_line(&self, common: &CommonOptions) -> Result<CommandLine, ConfigError> {
        let groups = FlagGroups { authority: Some(self.options()), ..FlagGroups::default() };
        command_line(common, groups)
    }
}

/// `keystation authority init`
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The CA's name: "<NAME> Root CA", "<NAME> Intermediate CA"
    #[arg(long, value_name = "NAME", default_value = "keystation")]
    pub name: String,
    /// A DNS name or IP address of the authority (repeat for several); the first is the URL
    /// clients use
    #[arg(long = "dns", value_name = "NAME", required = true)]
    pub dns: Vec<String>,
    /// The first JWK provisioner's name
    #[arg(long, value_name = "NAME", default_value = "admin")]
    pub provisioner: String,
    /// Also make the SSH user and host CAs
    #[arg(long)]
    pub ssh: bool,
    /// The CA keys: p256, p384, rsa2048, rsa3072, rsa4096 or ed25519
    #[arg(long = "key-type", value_name = "TYPE", default_value = "p256", value_parser = parse_key_type)]
    pub key_type: KeyAlgorithm,
    /// Generate the intermediate key in this PIV slot of the card (--reader, --card-serial)
    /// instead of a password-protected file; the card signs every certificate
    #[cfg(feature = "piv")]
    #[arg(long = "intermediate-key-slot", value_name = "SLOT")]
    pub intermediate_key_slot: Option<String>,
    /// PIN and management key of the card holding the intermediate key.
    #[cfg(feature = "piv")]
    #[command(flatten)]
    pub access: super::options::piv::AccessArgs,
    /// State directory, addresses, store, password.
    #[command(flatten)]
    pub authority: AuthorityOptions,
}

/// `keystation authority serve`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The PIN of the card holding the intermediate key (when it is in a PIV slot)
    /// [default: $CREDENTIALS_DIRECTORY/pin]
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// State directory, addresses, store, password.
    #[command(flatten)]
    pub authority: AuthorityOptions,
}

/// `keystation authority provisioner …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ProvisionerCommand {
    /// Add a provisioner
    Add(Box<ProvisionerAddArgs>),
    /// List the provisioners (name, type, and the ca.json object)
    List {
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// Replace a provisioner's ca.json object (read from FILE, - for stdin), or only its
    /// claims
    Update {
        /// The provisioner
        name: String,
        /// The new ca.json object
        #[arg(long = "json", value_name = "FILE", conflicts_with = "claims")]
        json: Option<PathBuf>,
        /// New claims, step-ca's names: '{"maxTLSCertDuration":"48h"}'
        #[arg(long, value_name = "JSON")]
        claims: Option<String>,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// Remove a provisioner (and its admins)
    Remove {
        /// The provisioner
        name: String,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
}

/// `keystation authority provisioner add`
#[derive(Debug, Clone, Args)]
pub struct ProvisionerAddArgs {
    /// The provisioner's name
    pub name: String,
    /// JWK, X5C, SSHPOP, OIDC, K8sSA, AWS, GCP, Azure, ACME, token (a station's static
    /// token) or yubikey-attestation
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: String,
    /// OIDC: the client ID tokens must be for (their `aud`)
    #[arg(long = "client-id", value_name = "ID")]
    pub client_id: Option<String>,
    /// OIDC: the client secret (stored with the provisioner; step's clients use it)
    #[arg(long = "client-secret", value_name = "SECRET")]
    pub client_secret: Option<String>,
    /// OIDC: the provider's discovery URL (…/.well-known/openid-configuration)
    #[arg(long = "configuration-endpoint", value_name = "URL")]
    pub configuration_endpoint: Option<String>,
    /// OIDC: an admin's e-mail (repeat)
    #[arg(long = "admin", value_name = "EMAIL")]
    pub admins: Vec<String>,
    /// OIDC: an e-mail domain accepted (repeat; any when none)
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// OIDC: a group accepted (repeat; any when none)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// OIDC: the tenant replacing {tenantid} in the discovery URL
    #[arg(long = "tenant-id", value_name = "ID")]
    pub tenant_id: Option<String>,
    /// K8sSA: a PEM file of service-account signing keys (repeat)
    #[arg(long = "public-key", value_name = "FILE")]
    pub public_keys: Vec<PathBuf>,
    /// AWS: an account ID accepted (repeat; any when none)
    #[arg(long = "aws-account", value_name = "ID")]
    pub aws_accounts: Vec<String>,
    /// AWS, GCP: the oldest instance accepted, a Go duration (1h, 720h)
    #[arg(long = "instance-age", value_name = "DURATION")]
    pub instance_age: Option<String>,
    /// AWS, GCP, Azure: certificate names only from the instance's identity
    #[arg(long = "disable-custom-sans")]
    pub disable_custom_sans: bool,
    /// AWS, GCP, Azure: allow more than one certificate per instance (each token once)
    #[arg(long = "disable-trust-on-first-use")]
    pub disable_trust_on_first_use: bool,
    /// AWS: the certificates the identity documents are verified with (PEM file; AWS's
    /// published ones when not given)
    #[arg(long = "iid-roots", value_name = "FILE")]
    pub iid_roots: Option<PathBuf>,
    /// GCP: a service account accepted (repeat)
    #[arg(long = "gcp-service-account", value_name = "EMAIL")]
    pub gcp_service_accounts: Vec<String>,
    /// GCP: a project ID accepted (repeat)
    #[arg(long = "gcp-project", value_name = "ID")]
    pub gcp_projects: Vec<String>,
    /// Azure: the tenant ID
    #[arg(long = "azure-tenant", value_name = "ID")]
    pub azure_tenant: Option<String>,
    /// Azure: a resource group accepted (repeat)
    #[arg(long = "azure-resource-group", value_name = "NAME")]
    pub azure_resource_groups: Vec<String>,
    /// Azure: a subscription ID accepted (repeat)
    #[arg(long = "azure-subscription-id", value_name = "ID")]
    pub azure_subscription_ids: Vec<String>,
    /// Azure: an object ID accepted (repeat)
    #[arg(long = "azure-object-id", value_name = "ID")]
    pub azure_object_ids: Vec<String>,
    /// Azure: the token audience (default https://management.azure.com/)
    #[arg(long = "azure-audience", value_name = "URL")]
    pub azure_audience: Option<String>,
    /// Any other field of the type's ca.json object, NAME=VALUE (VALUE as JSON, else as a
    /// string): keystation's additions such as certsUrl, openidConfigUrl, tokenReview,
    /// audiences, maxTokenLifetime (repeat)
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub fields: Vec<String>,
    /// X5C and yubikey-attestation: a trusted root (PEM file; repeat for several)
    #[arg(long = "root", value_name = "FILE")]
    pub roots: Vec<PathBuf>,
    /// JWK: allow SSH certificates (claims.enableSSHCA)
    #[arg(long)]
    pub ssh: bool,
    /// token: the file holding the station's token (only its SHA-256 is stored)
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// token: what the token allows (takeJobs, sign, …; default takeJobs)
    #[arg(long = "operation", value_name = "NAME", value_delimiter = ',')]
    pub operations: Vec<String>,
    /// yubikey-attestation: the lowest firmware accepted, like 5.2.3
    #[arg(long = "min-firmware", value_name = "VERSION")]
    pub min_firmware: Option<String>,
    /// yubikey-attestation: PIN policies accepted (never, once, always)
    #[arg(long = "pin-policy", value_name = "POLICY", value_delimiter = ',')]
    pub pin_policies: Vec<String>,
    /// yubikey-attestation: touch policies accepted (never, always, cached)
    #[arg(long = "touch-policy", value_name = "POLICY", value_delimiter = ',')]
    pub touch_policies: Vec<String>,
    /// yubikey-attestation: slots accepted (9a, 9c, …)
    #[arg(long = "slot", value_name = "SLOT", value_delimiter = ',')]
    pub slots: Vec<String>,
    /// yubikey-attestation: card serials accepted (repeat; any when none)
    #[arg(long = "serial", value_name = "N")]
    pub serials: Vec<u32>,
    /// ACME: a challenge type offered (http-01, dns-01, tls-alpn-01, device-attest-01;
    /// repeat; the first three when none)
    #[arg(long = "challenge", value_name = "TYPE")]
    pub challenges: Vec<String>,
    /// ACME: accounts need an external account binding (keys from `authority acme eab add`)
    #[arg(long = "require-eab")]
    pub require_eab: bool,
    /// ACME: a certificate without a common name gets its first DNS name as one
    #[arg(long = "force-cn")]
    pub force_cn: bool,
    /// ACME: a device-attest-01 attestation format accepted (step)
    #[arg(long = "attestation-format", value_name = "FORMAT")]
    pub attestation_formats: Vec<String>,
    /// ACME: the roots device attestations must chain to (PEM file; Yubico's when not
    /// given). The policy flags of yubikey-attestation (--min-firmware, --pin-policy,
    /// --touch-policy, --slot, --serial) apply to device-attest-01 too
    #[arg(long = "attestation-roots", value_name = "FILE")]
    pub attestation_roots: Option<PathBuf>,
    /// Claims, step-ca's names: '{"maxTLSCertDuration":"48h"}'
    #[arg(long, value_name = "JSON")]
    pub claims: Option<String>,
    /// State directory, store, password (JWK).
    #[command(flatten)]
    pub authority: AuthorityOptions,
}

/// `keystation authority admin …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum AdminCommand {
    /// Make SUBJECT an admin: a certificate with that common name issued through
    /// PROVISIONER, or a token of PROVISIONER with that subject, may use the admin API
    Add {
        /// The admin's subject
        subject: String,
        /// The provisioner the admin authenticates through
        #[arg(long, value_name = "NAME")]
        provisioner: String,
        /// admin or super-admin
        #[arg(long, value_name = "ROLE", default_value = "admin")]
        role: String,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// List the admins
    List {
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// Remove an admin
    Remove {
        /// The admin's subject
        subject: String,
        /// Its provisioner
        #[arg(long, value_name = "NAME")]
        provisioner: String,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
}

/// `keystation authority job …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum JobCommand {
    /// Queue a provisioning job for a station
    Add {
        /// The holder's first name
        #[arg(long, value_name = "NAME")]
        first_name: String,
        /// The holder's last name
        #[arg(long, value_name = "NAME")]
        last_name: String,
        /// The holder's e-mail address
        #[arg(long, value_name = "ADDRESS")]
        email: String,
        /// Only this station (worker id) may take it [default: any]
        #[arg(long, value_name = "ID")]
        worker: Option<String>,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// List the jobs (id, status, worker, holder)
    List {
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// Show one job and its result (JSON)
    Show {
        /// The job id
        id: u32,
        /// State directory, store.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
}

fn parse_key_type(text: &str) -> Result<KeyAlgorithm, String> {
    let algorithm = text.parse::<KeyAlgorithm>().map_err(|e| e.to_string())?;
    match algorithm {
        KeyAlgorithm::NistP256
        | KeyAlgorithm::NistP384
        | KeyAlgorithm::Rsa(_)
        | KeyAlgorithm::Ed25519 => Ok(algorithm),
        other => Err(format!("{other} cannot sign certificates")),
    }
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// The state directory: `--dir`, else `$STATE_DIRECTORY` (systemd), else the default.
fn layout(settings: &Settings) -> Layout {
    let dir = settings
        .authority_dir
        .clone()
        .or_else(|| {
            std::env::var_os("STATE_DIRECTORY")
                .and_then(|d| d.to_str().and_then(|d| d.split(':').next()).map(PathBuf::from))
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_AUTHORITY_DIR));
    Layout::new(dir)
}

/// A secret file's bytes without the trailing line end, in zeroizing memory.
fn read_secret(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let file = std::fs::File::open(path)
        .map_err(|e| usage(format!("cannot read the {what} file {}: {e}", path.display())))?;
    let mut bytes = keystation_core::secret::read_capped(file, MAX_PASSWORD_BYTES)
        .map_err(|e| usage(format!("cannot read the {what} file {}: {e}", path.display())))?;
    while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(usage(format!("the {what} file {} is empty", path.display())));
    }
    Ok(bytes)
}

/// The password: `--password-file`, else the systemd credential `password`.
fn password(settings: &Settings) -> Result<Zeroizing<Vec<u8>>, Error> {
    let path = settings
        .authority_password_file
        .clone()
        .or_else(|| {
            std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| PathBuf::from(d).join("password"))
        })
        .ok_or_else(|| usage("the authority's password is needed: give --password-file FILE"))?;
    read_secret(&path, "password")
}

/// The settings `init` wrote, with the command line's and environment's overrides.
fn effective_config(settings: &Settings, layout: &Layout) -> Result<AuthorityConfig, Error> {
    let mut config = AuthorityConfig::load(layout)?;
    if let Some(address) = settings.authority_address {
        config.address = address;
    }
    if let Some(grpc) = settings.authority_grpc_address {
        config.grpc_address = Some(grpc);
    }
    if let Some(database) = &settings.authority_database {
        config.database = Some(database.clone());
    }
    Ok(config)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(std::io::Error::other(format!("starting the runtime: {e}"))))
}

async fn open_store(settings: &Settings) -> Result<Store, Error> {
    let layout = layout(settings);
    let config = effective_config(settings, &layout)?;
    Ok(Store::open(&config.database_url(&layout))
        .await
        .map_err(keystation_authority::Error::from)?)
}

/// Runs `keystation authority …`.
pub fn run(
    command: &AuthorityCommand,
    settings: &Settings,
    out: &mut dyn Write,
) -> Result<(), Error> {
    match command {
        AuthorityCommand::Init(args) => init(args, settings, out),
        AuthorityCommand::Serve(args) => serve(args, settings),
        AuthorityCommand::Provisioner(command) => {
            runtime()?.block_on(provisioner(command, settings, out))
        }
        AuthorityCommand::Admin(command) => runtime()?.block_on(admin(command, settings, out)),
        AuthorityCommand::Job(command) => runtime()?.block_on(job(command, settings, out)),
        AuthorityCommand::Tofu(command) => runtime()?.block_on(tofu(command, settings, out)),
        #[cfg(feature = "acme")]
        AuthorityCommand::Acme(AcmeCommand::Eab(command)) => {
            runtime()?.block_on(eab(command, settings, out))
        }
    }
}

#[cfg(feature = "acme")]
async fn eab(command: &EabCommand, settings: &Settings, out: &mut dyn Write) -> Result<(), Error> {
    use keystation_authority::acme_admin;
    let store = open_store(settings).await?;
    let result = match command {
        EabCommand::Add { provisioner, reference, .. } => {
            acme_admin::add_eab_key(&store, provisioner, reference.as_deref()).await.map(|key| {
                vec![
                    format!("keyID\t{}", key.key_id),
                    format!("hmacKey\t{}", key.hmac_key_b64url.as_str()),
                ]
            })
        }
        EabCommand::List { provisioner, .. } => acme_admin::eab_keys(&store, provisioner).await,
        EabCommand::Remove { provisioner, key_id, .. } => {
            acme_admin::remove_eab_key(&store, provisioner, key_id)
                .await
                .map(|()| vec![format!("removed key {key_id} of provisioner {provisioner}")])
        }
    };
    store.close().await;
    for line in result? {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

async fn tofu(
    command: &TofuCommand,
    settings: &Settings,
    out: &mut dyn Write,
) -> Result<(), Error> {
    use keystation_provisioners::TOFU_PREFIX;
    let store = open_store(settings).await?;
    let store_error =
        |e: keystation_store::Error| Error::from(keystation_authority::Error::from(e));
    match command {
        TofuCommand::List { provisioner, .. } => {
            let names: Vec<String> = match provisioner {
                Some(name) => vec![name.clone()],
                None => store
                    .provisioners()
                    .await
                    .map_err(store_error)?
                    .into_iter()
                    .filter(|p| matches!(p.kind.as_str(), "AWS" | "GCP" | "Azure"))
                    .map(|p| p.name)
                    .collect(),
            };
            for name in names {
                for (id, spent) in
                    store.spent_tokens_with_prefix(&name, TOFU_PREFIX).await.map_err(store_error)?
                {
                    let instance = id.strip_prefix(TOFU_PREFIX).unwrap_or(&id);
                    let secs = spent
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                    let when = keystation_authority::text::rfc3339(secs);
                    writeln!(out, "{name}\t{instance}\t{when}")?;
                }
            }
        }
        TofuCommand::Reset { provisioner, instance, .. } => {
            if store.provisioner(provisioner).await.map_err(store_error)?.is_none() {
                return Err(usage(format!("no provisioner named {provisioner:?}")));
            }
            let id = keystation_provisioners::tofu_id(instance);
            if !store.forget_spent_token(provisioner, &id).await.map_err(store_error)? {
                return Err(usage(format!(
                    "provisioner {provisioner:?} has no record of instance {instance:?} (see `keystation authority tofu list`)"
                )));
            }
            writeln!(
                out,
                "instance {instance} of provisioner {provisioner} may get a certificate again"
            )?;
        }
    }
    store.close().await;
    Ok(())
}

/// The `ca.json` fields of an identity or cloud provisioner from `add`'s flags, with
/// step-ca's names (and `--field NAME=VALUE` for keystation's additions).
fn identity_fields(
    kind: &str,
    args: &ProvisionerAddArgs,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    use serde_json::json;
    let mut fields = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        let empty = value.is_null()
            || value.as_array().is_some_and(Vec::is_empty)
            || value.as_bool() == Some(false);
        if !empty {
            fields.insert(key.to_owned(), value);
        }
    };
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
    };
    match kind {
        "OIDC" => {
            put("clientID", json!(args.client_id));
            put("clientSecret", json!(args.client_secret));
            put("configurationEndpoint", json!(args.configuration_endpoint));
            put("admins", json!(args.admins));
            put("domains", json!(args.domains));
            put("groups", json!(args.groups));
            put("tenantID", json!(args.tenant_id));
        }
        "K8sSA" => {
            use base64::Engine as _;
            let mut pem = String::new();
            for path in &args.public_keys {
                pem.push_str(&read(path)?);
            }
            if !pem.is_empty() {
                put("publicKeys", json!(base64::engine::general_purpose::STANDARD.encode(pem)));
            }
        }
        "AWS" => {
            put("accounts", json!(args.aws_accounts));
            if let Some(path) = &args.iid_roots {
                put("iidRoots", json!(path.display().to_string()));
            }
        }
        "GCP" => {
            put("serviceAccounts", json!(args.gcp_service_accounts));
            put("projectIDs", json!(args.gcp_projects));
        }
        "ACME" => {
            put("challenges", json!(args.challenges));
            put("requireEAB", json!(args.require_eab));
            put("forceCN", json!(args.force_cn));
            put("attestationFormats", json!(args.attestation_formats));
            if let Some(path) = &args.attestation_roots {
                put("attestationRoots", json!(read(path)?));
            }
            put("minFirmware", json!(args.min_firmware));
            put("pinPolicies", json!(args.pin_policies));
            put("touchPolicies", json!(args.touch_policies));
            put("slots", json!(args.slots));
            put("serials", json!(args.serials));
        }
        "Azure" => {
            put("tenantID", json!(args.azure_tenant));
            put("resourceGroups", json!(args.azure_resource_groups));
            put("subscriptionIDs", json!(args.azure_subscription_ids));
            put("objectIDs", json!(args.azure_object_ids));
            put("audience", json!(args.azure_audience));
        }
        _ => {}
    }
    if matches!(kind, "AWS" | "GCP") {
        put("instanceAge", json!(args.instance_age));
    }
    if matches!(kind, "AWS" | "GCP" | "Azure") {
        put("disableCustomSANs", json!(args.disable_custom_sans));
        put("disableTrustOnFirstUse", json!(args.disable_trust_on_first_use));
    }
    for field in &args.fields {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| usage(format!("--field {field:?}: expected NAME=VALUE")))?;
        if matches!(name, "type" | "name" | "claims") {
            return Err(usage(format!("--field cannot set {name:?}")));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        fields.insert(name.to_owned(), value);
    }
    Ok(fields)
}

fn init(args: &InitArgs, settings: &Settings, out: &mut dyn Write) -> Result<(), Error> {
    let layout = layout(settings);
    let address = settings
        .authority_address
        .ok_or_else(|| usage("init needs the address the API will listen on: --address IP:PORT"))?;
    let password = password(settings)?;
    let mut config = AuthorityConfig::new(args.name.clone(), address, args.dns.clone());
    config.grpc_address = settings.authority_grpc_address;
    config.database = settings.authority_database.clone();
    config.ssh = args.ssh;
    let mut options = InitOptions::new(config);
    options.provisioner = args.provisioner.clone();
    options.algorithm = args.key_type;
    #[cfg(feature = "piv")]
    if let Some(slot) = &args.intermediate_key_slot {
        let (key, signer) = piv_intermediate(slot, args, settings)?;
        options.config.intermediate_key = key;
        options.intermediate = keystation_ca::IntermediateKey::Signer(signer);
    }
    let done =
        runtime()?.block_on(keystation_authority::init::init(&layout, options, &password))?;
    writeln!(out, "authority:   {}", layout.dir().display())?;
    writeln!(out, "url:         {}", done.url)?;
    writeln!(out, "root:        {}", layout.root_certificate().display())?;
    writeln!(out, "fingerprint: {}", done.root_fingerprint)?;
    writeln!(out, "provisioner: {} (JWK, kid {})", done.provisioner, done.kid)?;
    Ok(())
}

/// Generates the intermediate key in a PIV slot and returns the signer the root certifies.
#[cfg(feature = "piv")]
fn piv_intermediate(
    slot_name: &str,
    args: &InitArgs,
    settings: &Settings,
) -> Result<(IntermediateKey, Box<dyn keystation_core::keygen::Signer + Send>), Error> {
    use keystation_core::keygen::{PinPolicy, TouchPolicy};
    let slot = keystation_piv_ops::parse_slot_name(slot_name)?;
    let access = keystation_piv_ops::Access {
        pin_file: args.access.pin_file.clone(),
        management_key_file: args.access.management_key_file.clone(),
    };
    let pin_file = access.pin_file.clone().ok_or_else(|| {
        usage("a CA key in a PIV slot needs --pin-file (the authority signs unattended)")
    })?;
    let selection = super::options::pcsc_card(settings);
    // The key is made on the card, never on the host; the PIN policy lets the authority
    // sign unattended once the PIN is verified, and no touch is asked for.
    let generate = keystation_piv_ops::GenerateOptions {
        slot,
        algorithm: args.key_type,
        pin_policy: PinPolicy::Once,
        touch_policy: TouchPolicy::Never,
        out: None,
        access,
    };
    {
        let mut card = keystation_cards::open(&selection, &|| false)?;
        let mut public_pem = Vec::new();
        keystation_piv_ops::run(
            &mut card,
            &keystation_piv_ops::PivOperation::Generate(generate),
            &mut public_pem,
        )?;
    }
    let pin = keystation_core::SecretBytes::new(read_secret(&pin_file, "PIN")?.to_vec());
    let signer = keystation_authority::piv_key::PivKeySigner::start(selection.clone(), slot, pin)?;
    let key = IntermediateKey::PivSlot {
        slot: keystation_piv_ops::slot_name(slot),
        reader: settings.reader.clone(),
        serial: settings.card_serial.clone(),
    };
    Ok((key, Box::new(signer)))
}

fn serve(args: &ServeArgs, settings: &Settings) -> Result<(), Error> {
    let layout = layout(settings);
    let config = effective_config(settings, &layout)?;
    let password = password(settings)?;
    let signer: Option<Box<dyn keystation_core::keygen::Signer + Send>> = match &config
        .intermediate_key
    {
        IntermediateKey::File => None,
        #[cfg(feature = "piv")]
        IntermediateKey::PivSlot { slot, reader, serial } => {
            let slot = keystation_piv_ops::parse_slot_name(slot)?;
            let pin_file = args
                .pin_file
                .clone()
                .or_else(|| {
                    std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| PathBuf::from(d).join("pin"))
                })
                .ok_or_else(|| {
                    usage("the intermediate key is on a card: give its PIN with --pin-file FILE")
                })?;
            let pin = keystation_core::SecretBytes::new(read_secret(&pin_file, "PIN")?.to_vec());
            let selection = keystation_cards::CardSelection {
                serial: serial.clone().or_else(|| settings.card_serial.clone()),
                ..keystation_cards::CardSelection::pcsc(
                    reader.as_deref().or(settings.reader.as_deref()),
                )
            };
            Some(Box::new(keystation_authority::piv_key::PivKeySigner::start(
                selection, slot, pin,
            )?))
        }
        #[allow(unreachable_patterns)]
        _ => {
            return Err(usage(
                "the intermediate key is on a card, and this build has no PIV support (feature piv)",
            ));
        }
    };
    #[cfg(not(feature = "piv"))]
    let _ = args;
    // One runtime loads and serves: the store's connections are bound to it.
    runtime()?.block_on(async move {
        let authority =
            keystation_authority::Authority::load(layout, config, &password, signer).await?;
        drop(password);
        keystation_authority::serve_until_signalled(authority).await
    })?;
    Ok(())
}

async fn provisioner(
    command: &ProvisionerCommand,
    settings: &Settings,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let store = open_store(settings).await?;
    let store_error =
        |e: keystation_store::Error| Error::from(keystation_authority::Error::from(e));
    match command {
        ProvisionerCommand::Add(args) => {
            let claims = args
                .claims
                .as_deref()
                .map(serde_json::from_str::<serde_json::Value>)
                .transpose()
                .map_err(|e| usage(format!("--claims is not JSON: {e}")))?;
            let read_roots = || -> Result<Vec<String>, Error> {
                args.roots
                    .iter()
                    .map(|p| {
                        std::fs::read_to_string(p)
                            .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))
                    })
                    .collect()
            };
            let (kind, config) = match args.kind.to_ascii_lowercase().as_str() {
                "jwk" => {
                    let password = password(settings)?;
                    let (config, kid) =
                        provisioner_config::jwk(&args.name, &password, args.ssh, claims)?;
                    writeln!(out, "kid: {kid}")?;
                    ("JWK", config)
                }
                "x5c" => {
                    let roots = read_roots()?;
                    if roots.is_empty() {
                        return Err(usage("an X5C provisioner needs --root FILE"));
                    }
                    ("X5C", provisioner_config::x5c(&args.name, &roots.concat(), claims)?)
                }
                "sshpop" => ("SSHPOP", provisioner_config::sshpop(&args.name, claims)?),
                "token" | "statictoken" => {
                    let path = args
                        .token_file
                        .as_ref()
                        .ok_or_else(|| usage("a token provisioner needs --token-file FILE"))?;
                    let token = read_secret(path, "token")?;
                    (
                        "StaticToken",
                        provisioner_config::static_token(&args.name, &token, &args.operations)?,
                    )
                }
                "yubikey-attestation" | "yubikeyattestation" => {
                    let mut policy = AttestationPolicy::default();
                    policy.roots_pem = read_roots()?;
                    policy.min_firmware = args.min_firmware.clone();
                    policy.pin_policies = args.pin_policies.clone();
                    policy.touch_policies = args.touch_policies.clone();
                    policy.slots = args.slots.clone();
                    policy.serials = args.serials.clone();
                    (
                        "YubiKeyAttestation",
                        provisioner_config::yubikey_attestation(&args.name, &policy, claims)?,
                    )
                }
                "oidc" | "k8ssa" | "k8s-sa" | "aws" | "gcp" | "azure" | "acme" => {
                    let kind = match args.kind.to_ascii_lowercase().as_str() {
                        "oidc" => "OIDC",
                        "acme" => "ACME",
                        "k8ssa" | "k8s-sa" => "K8sSA",
                        "aws" => "AWS",
                        "gcp" => "GCP",
                        _ => "Azure",
                    };
                    let fields = identity_fields(kind, args)?;
                    (kind, provisioner_config::identity(kind, &args.name, fields, claims)?)
                }
                other => {
                    return Err(usage(format!(
                        "provisioner type {other:?}: expected JWK, X5C, SSHPOP, OIDC, K8sSA, AWS, GCP, Azure, ACME, token or yubikey-attestation"
                    )));
                }
            };
            let new = NewProvisioner { name: args.name.clone(), kind: kind.into(), config };
            store.add_provisioner(&new).await.map_err(store_error)?;
            writeln!(out, "added provisioner {} ({kind})", args.name)?;
        }
        ProvisionerCommand::List { .. } => {
            for p in store.provisioners().await.map_err(store_error)? {
                writeln!(out, "{}\t{}\t{}", p.name, p.kind, p.config)?;
            }
        }
        ProvisionerCommand::Update { name, json, claims, .. } => {
            let current = store
                .provisioner(name)
                .await
                .map_err(store_error)?
                .ok_or_else(|| usage(format!("no provisioner named {name:?}")))?;
            let mut object: serde_json::Value = match json {
                Some(path) => {
                    let text = if path.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(path)
                            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?
                    };
                    serde_json::from_str(&text)
                        .map_err(|e| usage(format!("{} is not JSON: {e}", path.display())))?
                }
                None => serde_json::from_str(&current.config)
                    .map_err(|e| usage(format!("stored object: {e}")))?,
            };
            if let Some(claims) = claims {
                let claims: serde_json::Value = serde_json::from_str(claims)
                    .map_err(|e| usage(format!("--claims is not JSON: {e}")))?;
                object["claims"] = claims;
            }
            if object["name"].as_str() != Some(name.as_str()) {
                return Err(usage("a provisioner's name cannot change"));
            }
            let text = object.to_string();
            let built = keystation_authority::provisioner_config::build(&text)?;
            store
                .update_provisioner(name, built.kind().type_name(), &text)
                .await
                .map_err(store_error)?;
            writeln!(out, "updated provisioner {name}")?;
        }
        ProvisionerCommand::Remove { name, .. } => {
            store.remove_provisioner(name).await.map_err(store_error)?;
            writeln!(out, "removed provisioner {name}")?;
        }
    }
    store.close().await;
    Ok(())
}

async fn admin(
    command: &AdminCommand,
    settings: &Settings,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let store = open_store(settings).await?;
    let store_error =
        |e: keystation_store::Error| Error::from(keystation_authority::Error::from(e));
    match command {
        AdminCommand::Add { subject, provisioner, role, .. } => {
            let role = role
                .parse::<AdminRole>()
                .map_err(|_| usage(format!("role {role:?}: expected admin or super-admin")))?;
            if store.provisioner(provisioner).await.map_err(store_error)?.is_none() {
                return Err(usage(format!("no provisioner named {provisioner:?}")));
            }
            store.add_admin(subject, provisioner, role).await.map_err(store_error)?;
            writeln!(out, "added admin {subject} ({provisioner}, {role})")?;
        }
        AdminCommand::List { .. } => {
            for a in store.admins().await.map_err(store_error)? {
                writeln!(out, "{}\t{}\t{}", a.subject, a.provisioner, a.role)?;
            }
        }
        AdminCommand::Remove { subject, provisioner, .. } => {
            store.remove_admin(subject, provisioner).await.map_err(store_error)?;
            writeln!(out, "removed admin {subject} ({provisioner})")?;
        }
    }
    store.close().await;
    Ok(())
}

async fn job(command: &JobCommand, settings: &Settings, out: &mut dyn Write) -> Result<(), Error> {
    let store = open_store(settings).await?;
    let store_error =
        |e: keystation_store::Error| Error::from(keystation_authority::Error::from(e));
    match command {
        JobCommand::Add { first_name, last_name, email, worker, .. } => {
            if !email.contains('@') {
                return Err(usage(format!("{email:?} is not an e-mail address")));
            }
            let new = NewJob {
                worker: worker.clone(),
                first_name: first_name.clone(),
                last_name: last_name.clone(),
                email: email.clone(),
            };
            let job = store.add_job(&new).await.map_err(store_error)?;
            writeln!(out, "{}", job.id)?;
        }
        JobCommand::List { .. } => {
            for job in store.list_jobs().await.map_err(store_error)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{} {} <{}>",
                    job.id,
                    job.status,
                    job.worker.as_deref().unwrap_or("*"),
                    job.first_name,
                    job.last_name,
                    job.email
                )?;
            }
        }
        JobCommand::Show { id, .. } => {
            let job = store
                .job(*id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| usage(format!("no job {id}")))?;
            let json = keystation_authority::job_json(&job);
            writeln!(out, "{}", serde_json::to_string_pretty(&json).unwrap_or_default())?;
        }
    }
    store.close().await;
    Ok(())
}
