//! Finding and loading kubeconfig files as kubectl does ("Organizing Cluster Access Using
//! kubeconfig Files": `$KUBECONFIG` is a list of files that are merged, else
//! `~/.kube/config`).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::model::{Kubeconfig, MAX_CONFIG_BYTES};

/// Reads a whole file of at most [`MAX_CONFIG_BYTES`], into a buffer zeroized on drop.
pub(crate) fn read_limited(path: &Path, what: &'static str) -> Result<Zeroizing<Vec<u8>>> {
    let io = |source| Error::Io { what, path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(Error::TooLarge {
            origin: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: MAX_CONFIG_BYTES as u64,
        });
    }
    Ok(bytes)
}

/// The files kubectl would read, given the value of `$KUBECONFIG` and the home directory:
/// the non-empty entries of the list (split as the platform splits `PATH`, duplicates
/// dropped), or else `<home>/.kube/config`.
pub fn config_paths(kubeconfig_env: Option<&OsStr>, home: Option<&Path>) -> Result<Vec<PathBuf>> {
    if let Some(list) = kubeconfig_env.filter(|v| !v.is_empty()) {
        let mut paths: Vec<PathBuf> = Vec::new();
        for path in std::env::split_paths(list) {
            if !path.as_os_str().is_empty() && !paths.contains(&path) {
                paths.push(path);
            }
        }
        if !paths.is_empty() {
            return Ok(paths);
        }
    }
    home.map(|h| vec![h.join(".kube").join("config")]).ok_or(Error::NoHome)
}

impl Kubeconfig {
    /// Loads and merges `paths` in order (clientcmd rules, see [`Kubeconfig::merge`]).
    /// Files that do not exist are skipped as kubectl skips them; if none exists the
    /// result is [`Error::NoConfig`]. Any other read error, or a file that does not parse,
    /// is an error.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Self> {
        let mut merged: Option<Self> = None;
        for path in paths {
            let path = path.as_ref();
            let bytes = match read_limited(path, "kubeconfig") {
                Ok(bytes) => bytes,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let text = std::str::from_utf8(&bytes).map_err(|e| Error::Invalid {
                origin: path.to_path_buf(),
                path: String::from("<document>"),
                message: format!("not UTF-8 text ({e})"),
            })?;
            let config = Self::parse(text, path)?;
            match &mut merged {
                None => merged = Some(config),
                Some(first) => first.merge(config),
            }
        }
        merged.ok_or_else(|| Error::NoConfig {
            tried: paths.iter().map(|p| p.as_ref().to_path_buf()).collect(),
        })
    }

    /// Loads the files kubectl would: `$KUBECONFIG`, else `~/.kube/config`
    /// (see [`config_paths`]).
    pub fn load_default() -> Result<Self> {
        let env = std::env::var_os("KUBECONFIG");
        let home = std::env::home_dir();
        Self::load(&config_paths(env.as_deref(), home.as_deref())?)
    }
}
