//! The configuration layers, each a figment [`Provider`] with its own metadata name.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use zeroize::Zeroizing;

use super::CommandLine;
use super::keys::{self, KEYS};
use super::{ConfigError, ConfigWarning, Origin, REDACTED, Settings, Token};

/// One layer: the values it sets, where each came from, and the token it carries outside
/// figment.
pub(super) struct Layer {
    /// Unique among the layers of one load; figment's metadata name for this provider,
    /// which is how a merged value is traced back to its layer.
    pub(super) name: String,
    values: Dict,
    origins: BTreeMap<&'static str, Origin>,
    /// The token this layer sets (figment sees only [`REDACTED`] in its place).
    pub(super) token: Option<Token>,
    /// Keys whose value here was not valid UTF-8 (the value holds a lossy copy).
    not_unicode: BTreeSet<&'static str>,
    /// The config file this layer names (`KEYSTATION_CONFIG`).
    config: Option<(PathBuf, Origin)>,
}

impl Layer {
    fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            values: Dict::new(),
            origins: BTreeMap::new(),
            token: None,
            not_unicode: BTreeSet::new(),
            config: None,
        }
    }

    /// Where this layer's value for `key` came from.
    pub(super) fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// Whether this layer's value for `key` was not valid UTF-8.
    pub(super) fn is_not_unicode(&self, key: &str) -> bool {
        self.not_unicode.contains(key)
    }

    /// This layer's value for `key`, if it sets one.
    pub(super) fn value(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The config file this layer names, with what named it.
    pub(super) fn config_path(&self) -> Option<(PathBuf, Origin)> {
        self.config.clone()
    }

    fn set(&mut self, key: &'static str, value: Value, origin: Origin) {
        self.values.insert(key.to_owned(), value);
        self.origins.insert(key, origin);
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// The built-in defaults. Keys without a default (`grpc_ca`, `token`, `reader`, the
/// `*_file` keys) are absent.
pub(super) fn defaults() -> Layer {
    let d = Settings::default();
    let mut layer = Layer::new("default");
    let values: [(&'static str, Value); 16] = [
        (keys::ID, d.id.into()),
        (keys::LOG_LEVEL, d.log_level.as_str().into()),
        (keys::LOG_FORMAT, d.log_format.as_str().into()),
        (keys::GRPC_URL, d.grpc_url.clone().into()),
        (keys::GRPC_ALLOW_PLAINTEXT, d.grpc_allow_plaintext.into()),
        (keys::SMARTCARD_RETRIES, d.smartcard_retries.into()),
        (keys::SMARTCARD_RETRY_INTERVAL, d.smartcard_retry_interval.as_secs().into()),
        (keys::GPG_DEBUG_LEVEL, d.gpg_debug_level.as_str().into()),
        (keys::SHARE_MODE, d.share_mode.name().into()),
        (keys::GRPC_PACKAGE, d.grpc_package.name().into()),
        (keys::POLL_INTERVAL, super::format_duration(d.poll_interval).into()),
        (keys::ALGORITHM, d.algorithm.name().into()),
        (keys::KEY_LOCATION, d.key_location.name().into()),
        (keys::PIN_POLICY, d.pin_policy.name().into()),
        (keys::TOUCH_POLICY, d.touch_policy.openpgp_name().into()),
        (keys::RESET, d.reset.into()),
    ];
    for (key, value) in values {
        layer.set(key, value, Origin::Default);
    }
    layer
}

/// The TOML file at `path` (absolute), named by `named_by`.
pub(super) fn config_file(path: &Path, named_by: &Origin) -> Result<Layer, ConfigError> {
    // The text may hold the token: the buffers wipe themselves once parsed.
    let read_error = |error| ConfigError::ReadFile {
        path: path.to_path_buf(),
        named_by: named_by.clone(),
        error,
    };
    let bytes = super::read_capped(path, super::MAX_CONFIG_FILE_BYTES).map_err(read_error)?;
    let text = Zeroizing::new(
        std::str::from_utf8(&bytes)
            .map(str::to_owned)
            .map_err(|_| read_error(std::io::Error::other("not valid UTF-8")))?,
    );
    let mut data = Toml::string(&text).data().map_err(|error| ConfigError::FileSyntax {
        path: path.to_path_buf(),
        detail: sanitize_toml_error(&error.kind.to_string()),
    })?;
    let mut dict = data.remove(&Profile::Default).unwrap_or_default();

    let unknown: Vec<String> = dict.keys().filter(|k| keys::spec(k).is_none()).cloned().collect();
    if !unknown.is_empty() {
        return Err(ConfigError::UnknownFileKeys { path: path.to_path_buf(), keys: unknown });
    }

    let mut layer = Layer::new(format!("config file {}", path.display()));
    let origin = Origin::ConfigFile { path: path.to_path_buf() };
    if let Some(token) = dict.remove(keys::TOKEN) {
        match token {
            Value::String(_, secret) => {
                layer.token = Some(Token::new(secret));
                layer.set(keys::TOKEN, REDACTED.into(), origin.clone());
            }
            // Not a string: keep a stand-in so the resolver reports the type error, without
            // echoing anything.
            other => {
                let stand_in = match other {
                    Value::Dict(..) => Value::from(Dict::new()),
                    Value::Array(..) => Value::from(Vec::<Value>::new()),
                    _ => Value::from(0u8),
                };
                layer.set(keys::TOKEN, stand_in, origin.clone());
            }
        }
    }
    for spec in KEYS {
        if let Some(value) = dict.remove(spec.key) {
            layer.set(spec.key, value, origin.clone());
        }
    }
    Ok(layer)
}

/// toml's messages quote the offending line, which may hold the token. Keep the position
/// and the description, drop the quoted source lines (`  |`, `3 | token = …`, `  |   ^`).
fn sanitize_toml_error(message: &str) -> String {
    let is_source_line = |line: &str| {
        let trimmed = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        trimmed.starts_with('|')
    };
    let kept: Vec<&str> = message
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_source_line(l))
        .map(str::trim)
        .collect();
    kept.join(": ")
}

/// A variable's value as read from the environment or a `.env` file.
enum Raw {
    Text(String),
    /// Not valid UTF-8; a lossy copy for the error message.
    NotUnicode(String),
}

/// Builds a layer from variables, choosing per key the highest-priority name that is set.
fn from_variables(
    name: String,
    mut vars: BTreeMap<String, Raw>,
    config: Option<OsString>,
    origin: impl Fn(&str) -> Origin,
) -> Layer {
    let mut layer = Layer::new(name);
    for spec in KEYS {
        let Some((variable, raw)) = spec.env.iter().find_map(|v| vars.remove_entry(*v)) else {
            continue;
        };
        let at = origin(&variable);
        match raw {
            Raw::Text(text) if spec.secret => {
                layer.token = Some(Token::new(text));
                layer.set(spec.key, REDACTED.into(), at);
            }
            Raw::Text(text) => layer.set(spec.key, text.into(), at),
            Raw::NotUnicode(lossy) => {
                layer.not_unicode.insert(spec.key);
                let shown = if spec.secret { REDACTED.to_owned() } else { lossy };
                layer.set(spec.key, shown.into(), at);
            }
        }
    }
    layer.config = config.map(|path| (PathBuf::from(path), origin(keys::CONFIG_VAR)));
    layer
}

/// The process environment. Only keystation's variables are kept; unknown `KEYSTATION_*`
/// ones become warnings.
pub(super) fn environment<I>(env: I, warnings: &mut Vec<ConfigWarning>) -> Layer
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut vars = BTreeMap::new();
    let mut config = None;
    let mut unknown = BTreeSet::new();
    for (name, value) in env {
        let Some(name) = name.to_str() else { continue };
        if name == keys::CONFIG_VAR {
            config = Some(value);
        } else if keys::is_known_variable(name) {
            let raw = match value.into_string() {
                Ok(text) => Raw::Text(text),
                Err(value) => Raw::NotUnicode(value.to_string_lossy().into_owned()),
            };
            vars.insert(name.to_owned(), raw);
        } else if keys::is_suspicious_variable(name) {
            unknown.insert(name.to_owned());
        }
    }
    warnings.extend(
        unknown.into_iter().map(|variable| ConfigWarning::UnknownVariable { variable, file: None }),
    );
    from_variables("environment".to_owned(), vars, config, |variable| Origin::Environment {
        variable: variable.to_owned(),
    })
}

/// A `.env`-style file, parsed with dotenvy without touching the process environment. A
/// missing file is no layer. As with dotenvy, the first occurrence of a variable wins.
pub(super) fn dotenv(
    path: &Path,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Option<Layer>, ConfigError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(error) if error.not_found() => return Ok(None),
        Err(error) => return Err(dotenv_error(path, error)),
    };
    let mut vars = BTreeMap::new();
    let mut config = None;
    let mut unknown = BTreeSet::new();
    for item in iter {
        let (name, value) = item.map_err(|error| dotenv_error(path, error))?;
        let value = Zeroizing::new(value);
        if name == keys::CONFIG_VAR {
            config.get_or_insert_with(|| OsString::from(value.as_str()));
        } else if keys::is_known_variable(&name) {
            vars.entry(name).or_insert_with(|| Raw::Text(value.as_str().to_owned()));
        } else if keys::is_suspicious_variable(&name) {
            unknown.insert(name);
        }
    }
    warnings.extend(unknown.into_iter().map(|variable| ConfigWarning::UnknownVariable {
        variable,
        file: Some(path.to_path_buf()),
    }));
    let name = format!(".env file {}", path.display());
    Ok(Some(from_variables(name, vars, config, |variable| Origin::DotEnv {
        path: path.to_path_buf(),
        variable: variable.to_owned(),
    })))
}

fn dotenv_error(path: &Path, error: dotenvy::Error) -> ConfigError {
    match error {
        dotenvy::Error::Io(error) => ConfigError::ReadDotEnv { path: path.to_path_buf(), error },
        dotenvy::Error::LineParse(line, _) => {
            let line = Zeroizing::new(line);
            ConfigError::DotEnvSyntax { path: path.to_path_buf(), line: find_line(path, &line) }
        }
        _ => ConfigError::DotEnvSyntax { path: path.to_path_buf(), line: None },
    }
}

/// The 1-based number of the first line of `path` that starts the unparsable `fragment`.
fn find_line(path: &Path, fragment: &str) -> Option<usize> {
    let first = fragment.lines().next()?.trim_end();
    let text = Zeroizing::new(std::fs::read_to_string(path).ok()?);
    text.lines().position(|l| l.trim_end() == first).map(|i| i + 1)
}

/// The command line: the flags' values (figment sees `<redacted>` for the token), with the
/// token itself kept aside.
pub(super) fn command_line(args: &CommandLine) -> Result<Layer, ConfigError> {
    let mut layer = Layer::new("command line");
    for (key, value) in &args.values {
        if let Some(spec) = keys::spec(key) {
            layer.set(spec.key, value.clone(), Origin::CommandLine { flag: spec.flag });
        }
    }
    // figment sees only the marker; the token itself stays in the layer.
    if let (Some(token), Some(spec)) = (&args.token, keys::spec(keys::TOKEN)) {
        layer.set(spec.key, Value::from(REDACTED), Origin::CommandLine { flag: spec.flag });
        layer.token = Some(token.clone());
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_errors_lose_the_source_line() {
        let error = Toml::string("id = \"x\"\ntoken = s3cret-value\n").data().err();
        let message = error.map(|e| e.kind.to_string()).unwrap_or_default();
        assert!(message.contains("s3cret-value"), "toml quotes the line: {message}");
        let clean = sanitize_toml_error(&message);
        assert!(!clean.contains("s3cret-value"), "{clean}");
        assert!(clean.contains("line 2"), "{clean}");
    }
}
