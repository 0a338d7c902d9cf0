//! `keystation kube shell`: a shell (or one command) whose kubectl goes through a proxy
//! that lives exactly as long as the shell.
//!
//! The proxy listens on a free loopback port; a kubeconfig pointing at it (no
//! credentials in it) is written to a private temporary directory and named by
//! `KUBECONFIG` in the child's environment. When the child exits, the proxy stops, the
//! directory is removed, and keystation exits with the child's status.

use std::path::PathBuf;
use std::process::Command;

use super::{KubeError, ProxyOptions, prepare, serve_until};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ShellOptions {
    /// The proxy's settings (`listen` defaults to a free port here).
    pub proxy: ProxyOptions,
    /// The command and its arguments; empty means `$SHELL` (else `/bin/sh`).
    pub command: Vec<String>,
}

/// A private directory removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> Result<Self, KubeError> {
        let mut random = [0u8; 8];
        keystation_core::keygen::RandomSource::fill(&mut keystation_keygen::OsRandom, &mut random)
            .map_err(|_| KubeError::Usage("the random source failed".into()))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("keystation-kube-{name}"));
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(|source| KubeError::File {
            what: "cannot create",
            path: path.clone(),
            source,
        })?;
        Ok(Self(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the shell with its proxy and returns the child's exit status (128 + signal when
/// a signal ended it, as shells report it).
pub fn run(options: &ShellOptions) -> Result<i32, KubeError> {
    let mut proxy = options.proxy.clone();
    if proxy.listen.is_none() {
        proxy.listen = Some("127.0.0.1:0".into());
    }
    let prepared = prepare(&proxy)?;
    let url = format!("http://{}", prepared.address);
    let dir = PrivateDir::create()?;
    let kubeconfig = dir.0.join("client.yml");
    let yaml = keystation_kubeconfig::write_client_config(&url, "keystation", None)?;
    std::fs::write(&kubeconfig, yaml).map_err(|source| KubeError::File {
        what: "cannot write",
        path: kubeconfig.clone(),
        source,
    })?;

    let (program, args) = match options.command.split_first() {
        Some((program, args)) => (program.clone(), args.to_vec()),
        None => (std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()), Vec::new()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::Builder::new()
        .name("kube-shell-proxy".into())
        .spawn(move || {
            serve_until(prepared, async move {
                // The terminal's Ctrl-C reaches this process too; the shell handles it.
                let _interrupts =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
                let _ = stopped.await;
            })
        })
        .map_err(KubeError::Thread)?;
    tracing::info!(%url, program, "starting the shell");
    let status = Command::new(&program)
        .args(&args)
        .env("KUBECONFIG", &kubeconfig)
        .env("KEYSTATION_KUBE_PROXY", &url)
        .status()
        .map_err(|source| KubeError::Io { what: format!("cannot run {program:?}"), source });
    let _ = stop.send(());
    let served = server.join();
    drop(dir);
    let status = status?;
    match served {
        Ok(result) => result?,
        Err(_) => return Err(KubeError::Usage("the proxy thread panicked".into())),
    }
    use std::os::unix::process::ExitStatusExt as _;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
