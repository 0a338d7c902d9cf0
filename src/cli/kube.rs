//! `keystation kube …`: kubectl through a loopback proxy whose TLS client signature the
//! card makes (keystation-kube), on the one card in a PC/SC reader.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::options::piv::{AccessArgs, parse_algorithm, parse_pin_policy, parse_touch_policy};
use crate::Error;
use crate::config::Settings;

/// `keystation kube …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum KubeCommand {
    /// Put a kubeconfig context's client credential into a PIV slot (import it, or
    /// --generate a key on the card and get it certified by the cluster), and write
    /// proxy.yml and client.yml.
    Setup(KubeSetupArgs),
    /// Serve kubectl on loopback, forwarding to the API server over mutual TLS signed by
    /// the card, until SIGINT or SIGTERM.
    Proxy(KubeProxyArgs),
    /// Run a shell (or the command after --) with KUBECONFIG pointing at a proxy that
    /// lives as long as the shell.
    Shell {
        /// Proxy settings.
        #[command(flatten)]
        proxy: KubeProxyArgs,
        /// The command to run instead of $SHELL
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

/// `keystation kube proxy` (and the proxy of `kube shell`).
#[derive(Debug, Clone, Args)]
pub struct KubeProxyArgs {
    /// The proxy's kubeconfig, as `kube setup` wrote it [default: ~/.kube/proxy.yml]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The context [default: its current-context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Loopback address to listen on [default: from the kubeconfig, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDRESS")]
    pub listen: Option<String>,
    /// The PIV slot holding the key [default: from the kubeconfig, else 9a]
    #[arg(long, value_name = "SLOT", value_parser = parse_slot)]
    pub slot: Option<keystation_core::keygen::PivSlot>,
    /// Presence-watch mode: keep connections to the API server alive (faster), and close
    /// them all as soon as the card is removed. Without it every request opens a new TLS
    /// connection, signed by the card
    #[arg(long)]
    pub keep_alive: bool,
    /// Read the PIN from this file (else it is asked for on the terminal if the key's PIN
    /// policy needs it)
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

fn parse_slot(text: &str) -> Result<keystation_core::keygen::PivSlot, String> {
    keystation_kube::parse_slot(text).map_err(|e| e.to_string())
}

impl KubeProxyArgs {
    fn options(&self, settings: &Settings) -> keystation_kube::ProxyOptions {
        keystation_kube::ProxyOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            listen: self.listen.clone(),
            slot: self.slot,
            keep_alive: self.keep_alive,
            pin_file: self.pin_file.clone(),
            card: super::options::pcsc_card(settings),
        }
    }
}

/// `keystation kube setup`
#[derive(Debug, Clone, Args)]
pub struct KubeSetupArgs {
    /// The kubeconfig to read [default: $KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The context [default: current-context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The PIV slot: 9a, 9c, 9d or 9e
    #[arg(long, default_value = "9a", value_parser = parse_slot)]
    pub slot: keystation_core::keygen::PivSlot,
    /// Generate the key on the card and get its certificate from the cluster's
    /// certificates.k8s.io API, instead of importing the kubeconfig's key
    #[arg(long)]
    pub generate: bool,
    /// Key algorithm with --generate: p256, p384, rsa2048, ed25519 (5.7)
    #[arg(long = "key-algorithm", id = "key_algorithm", default_value = "p256", value_parser = parse_algorithm, requires = "generate")]
    pub algorithm: keystation_core::key::KeyAlgorithm,
    /// Certificate subject with --generate [default: the current client certificate's]
    #[arg(long, value_name = "DN", requires = "generate")]
    pub subject: Option<String>,
    /// Approve the certificate signing request yourself (needs the permission)
    #[arg(long, requires = "generate")]
    pub approve: bool,
    /// Seconds to wait for the request to be approved
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub wait: u64,
    /// Ask for a certificate valid this many seconds (at least 600)
    #[arg(long, value_name = "SECONDS", requires = "generate")]
    pub expiration: Option<u64>,
    /// Where to write proxy.yml and client.yml [default: ~/.kube]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// The address the proxy will listen on (written to both files)
    #[arg(long, default_value = keystation_kube::DEFAULT_LISTEN, value_name = "ADDRESS")]
    pub listen: String,
    /// The key's PIN policy: default, never, once, always
    #[arg(long = "key-pin-policy", id = "key_pin_policy", default_value = "default", value_parser = parse_pin_policy)]
    pub pin_policy: keystation_core::keygen::PinPolicy,
    /// The key's touch policy: default, never, always, cached
    #[arg(long = "key-touch-policy", id = "key_touch_policy", default_value = "default", value_parser = parse_touch_policy)]
    pub touch_policy: keystation_core::keygen::TouchPolicy,
    /// Overwrite existing proxy.yml and client.yml
    #[arg(long)]
    pub force: bool,
    /// PIN and management key.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// Runs a `kube` command.
pub fn run(command: &KubeCommand, settings: &Settings, out: &mut dyn Write) -> Result<(), Error> {
    match command {
        KubeCommand::Proxy(args) => Ok(keystation_kube::run_proxy(&args.options(settings), out)?),
        KubeCommand::Shell { proxy, command } => {
            let options = keystation_kube::shell::ShellOptions {
                proxy: proxy.options(settings),
                command: command.clone(),
            };
            let code = keystation_kube::shell::run(&options)?;
            out.flush()?;
            // The shell's status is keystation's (as `ssh` and `sudo` do).
            std::process::exit(code)
        }
        KubeCommand::Setup(args) => Ok(keystation_kube::setup::run(
            &keystation_kube::setup::SetupOptions {
                kubeconfig: args.kubeconfig.clone(),
                context: args.context.clone(),
                slot: args.slot,
                generate: args.generate,
                algorithm: args.algorithm,
                subject: args.subject.clone(),
                approve: args.approve,
                wait: std::time::Duration::from_secs(args.wait),
                expiration: args.expiration.map(std::time::Duration::from_secs),
                out_dir: args.out_dir.clone(),
                listen: args.listen.clone(),
                pin_policy: args.pin_policy,
                touch_policy: args.touch_policy,
                access: (&args.access).into(),
                card: super::options::pcsc_card(settings),
                force: args.force,
            },
            out,
        )?),
    }
}
