//! Merging the layers with figment, and turning each key's winning value into a typed,
//! validated setting.

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::value::{Num, Value};

use super::keys::{self, KeySpec};
use super::layers::Layer;
use super::{
    ConfigError, Entry, GpgDebugLevel, LogFormat, LogLevel, Origin, Settings, ShareMode,
    ShownValue, Token,
};

/// A value that does not fit its key: what was expected instead.
type Mismatch = &'static str;

const EXPECTED_TEXT: Mismatch = "a non-empty string";
const EXPECTED_PATH: Mismatch = "a file path";
const EXPECTED_UNSIGNED: Mismatch = "an unsigned integer";
const EXPECTED_U32: Mismatch = "an unsigned integer no larger than 4294967295";
const EXPECTED_U64: Mismatch = "an unsigned integer no larger than 18446744073709551615";
const EXPECTED_URL: Mismatch =
    "an http:// or https:// URL with a host, like http://127.0.0.1:50055";
const EXPECTED_TOKEN: Mismatch = "a token without spaces or control characters";
const EXPECTED_UNICODE: Mismatch = "valid UTF-8 text";

/// The merged layers, answering "which value won for this key, and from where".
pub(super) struct Resolver<'a> {
    layers: &'a [Layer],
    figment: Figment,
}

/// A key's winning value.
struct Found<'a> {
    value: Value,
    layer: &'a Layer,
    origin: Origin,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(layers: &'a [Layer]) -> Self {
        let figment = layers.iter().fold(Figment::new(), |figment, layer| figment.merge(layer));
        Self { layers, figment }
    }

    fn find(&self, key: &str) -> Option<Found<'a>> {
        let value = self.figment.find_value(key).ok()?;
        let metadata = self.figment.find_metadata(key)?;
        let layer = self.layers.iter().find(|layer| layer.name == metadata.name)?;
        Some(Found { value, layer, origin: layer.origin(key) })
    }

    /// `key`'s value parsed by `parse`, or `None` (with the default origin) if no layer sets
    /// it. An empty string is passed to `parse` like any other value.
    fn get<T>(
        &self,
        spec: &'static KeySpec,
        parse: impl Fn(&Value) -> Result<T, Mismatch>,
    ) -> Result<(Option<T>, Origin), ConfigError> {
        let Some(found) = self.find(spec.key) else { return Ok((None, Origin::Default)) };
        let invalid = |expected| ConfigError::InvalidValue {
            key: spec.key,
            value: (!spec.secret).then(|| render(&found.value)),
            origin: found.origin.clone(),
            expected,
        };
        if found.layer.is_not_unicode(spec.key) {
            return Err(invalid(EXPECTED_UNICODE));
        }
        let parsed = parse(&found.value).map_err(invalid)?;
        Ok((Some(parsed), found.origin))
    }

    /// A key with a default: the default layer always sets it.
    fn required<T>(
        &self,
        key: &'static str,
        default: T,
        parse: impl Fn(&Value) -> Result<T, Mismatch>,
    ) -> Result<(T, Origin), ConfigError> {
        let (value, origin) = self.get(spec(key), parse)?;
        Ok((value.unwrap_or(default), origin))
    }

    /// A key without a default; an empty string means unset.
    fn optional<T>(
        &self,
        key: &'static str,
        parse: impl Fn(&str) -> T,
    ) -> Result<(Option<T>, Origin), ConfigError> {
        let expected = if key == keys::GRPC_CA { EXPECTED_PATH } else { EXPECTED_TEXT };
        let (value, origin) = self.get(spec(key), |value| match value {
            Value::String(_, s) if s.is_empty() => Ok(None),
            Value::String(_, s) => Ok(Some(parse(s))),
            _ => Err(expected),
        })?;
        Ok((value.flatten(), origin))
    }

    /// The token: figment only tells which layer won; the value comes from that layer.
    fn token(&self) -> Result<(Option<Token>, Origin), ConfigError> {
        let spec = spec(keys::TOKEN);
        let Some(found) = self.find(spec.key) else { return Ok((None, Origin::Default)) };
        let invalid = |expected| ConfigError::InvalidValue {
            key: spec.key,
            value: None,
            origin: found.origin.clone(),
            expected,
        };
        if found.layer.is_not_unicode(spec.key) {
            return Err(invalid(EXPECTED_UNICODE));
        }
        let token = found.layer.token.as_ref().ok_or_else(|| invalid("a string"))?;
        if token.is_empty() {
            return Ok((None, found.origin));
        }
        if token.expose().chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(EXPECTED_TOKEN));
        }
        Ok((Some(token.clone()), found.origin))
    }

    /// Every key, validated, with its provenance.
    pub(super) fn settings(&self) -> Result<(Settings, Vec<Entry>), ConfigError> {
        let d = Settings::default();
        let mut entries = Vec::with_capacity(keys::KEYS.len());
        let mut entry = |key: &'static str, value: ShownValue, origin: Origin| {
            entries.push(Entry { key, value, origin });
        };
        let text = |s: &str| ShownValue::Text(s.to_owned());
        let optional_text = |s: Option<&str>| s.map_or(ShownValue::Unset, text);

        let (id, origin) = self.required(keys::ID, d.id, non_empty)?;
        entry(keys::ID, text(&id), origin);
        let (log_level, origin) = self.required(
            keys::LOG_LEVEL,
            d.log_level,
            choice(LogLevel::from_name, LogLevel::EXPECTED),
        )?;
        entry(keys::LOG_LEVEL, text(log_level.as_str()), origin);
        let (log_format, origin) = self.required(
            keys::LOG_FORMAT,
            d.log_format,
            choice(LogFormat::from_name, LogFormat::EXPECTED),
        )?;
        entry(keys::LOG_FORMAT, text(log_format.as_str()), origin);
        let (grpc_url, origin) = self.required(keys::GRPC_URL, d.grpc_url, grpc_url)?;
        entry(keys::GRPC_URL, text(&grpc_url), origin);
        let (grpc_ca, origin) = self.optional(keys::GRPC_CA, |s: &str| PathBuf::from(s))?;
        entry(
            keys::GRPC_CA,
            optional_text(grpc_ca.as_deref().map(|p| p.to_string_lossy()).as_deref()),
            origin,
        );
        let (token, origin) = self.token()?;
        entry(
            keys::TOKEN,
            if token.is_some() { ShownValue::Redacted } else { ShownValue::Unset },
            origin,
        );
        let (smartcard_retries, origin) =
            self.required(keys::SMARTCARD_RETRIES, d.smartcard_retries, |v| {
                unsigned(v).and_then(|n| u32::try_from(n).map_err(|_| EXPECTED_U32))
            })?;
        entry(keys::SMARTCARD_RETRIES, ShownValue::Number(smartcard_retries.into()), origin);
        let (interval, origin) = self.required(
            keys::SMARTCARD_RETRY_INTERVAL,
            d.smartcard_retry_interval.as_secs(),
            unsigned,
        )?;
        entry(keys::SMARTCARD_RETRY_INTERVAL, ShownValue::Number(interval), origin);
        let (gpg_debug_level, origin) = self.required(
            keys::GPG_DEBUG_LEVEL,
            d.gpg_debug_level,
            choice(GpgDebugLevel::from_name, GpgDebugLevel::EXPECTED),
        )?;
        entry(keys::GPG_DEBUG_LEVEL, text(gpg_debug_level.as_str()), origin);
        let (reader, origin) = self.optional(keys::READER, str::to_owned)?;
        entry(keys::READER, optional_text(reader.as_deref()), origin);
        let (share_mode, origin) = self.required(
            keys::SHARE_MODE,
            d.share_mode,
            choice(ShareMode::from_name, ShareMode::EXPECTED),
        )?;
        entry(keys::SHARE_MODE, text(share_mode.as_str()), origin);

        let settings = Settings {
            id,
            log_level,
            log_format,
            grpc_url,
            grpc_ca,
            token,
            smartcard_retries,
            smartcard_retry_interval: Duration::from_secs(interval),
            gpg_debug_level,
            reader,
            share_mode,
        };
        Ok((settings, entries))
    }
}

fn spec(key: &'static str) -> &'static KeySpec {
    // Every caller passes one of the constants in `keys`, which all have a spec; the
    // `keys` tests check the table.
    keys::spec(key).unwrap_or(&keys::KEYS[0])
}

fn non_empty(value: &Value) -> Result<String, Mismatch> {
    match value {
        Value::String(_, s) if !s.is_empty() && !s.chars().any(char::is_control) => Ok(s.clone()),
        _ => Err(EXPECTED_TEXT),
    }
}

fn choice<T>(
    from_name: fn(&str) -> Option<T>,
    expected: Mismatch,
) -> impl Fn(&Value) -> Result<T, Mismatch> {
    move |value| value.as_str().and_then(from_name).ok_or(expected)
}

/// An unsigned integer from a string (environment, command line) or a TOML number.
fn unsigned(value: &Value) -> Result<u64, Mismatch> {
    match value {
        Value::String(_, s) => {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u64>().map_err(|_| EXPECTED_U64)
            } else {
                Err(EXPECTED_UNSIGNED)
            }
        }
        Value::Num(_, n) => {
            let n = n.to_u128().or_else(|| n.to_i128().and_then(|i| u128::try_from(i).ok()));
            match n {
                Some(n) => u64::try_from(n).map_err(|_| EXPECTED_U64),
                None => Err(EXPECTED_UNSIGNED),
            }
        }
        _ => Err(EXPECTED_UNSIGNED),
    }
}

fn grpc_url(value: &Value) -> Result<String, Mismatch> {
    match value.as_str() {
        Some(url) if is_grpc_url(url) => Ok(url.to_owned()),
        _ => Err(EXPECTED_URL),
    }
}

/// `http://` or `https://` (any case), a host (name, IPv4 or bracketed IPv6), an optional
/// port, then an optional path; no whitespace, control characters or user info.
pub(super) fn is_grpc_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host_ok, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((ipv6, after)) = bracketed.split_once(']') else { return false };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        let ok =
            !ipv6.is_empty() && ipv6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        (ok, port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let ok = !host.is_empty()
            && !host.starts_with('.')
            && host.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
        (ok, port)
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

/// A value for an error message: strings quoted and escaped, numbers as written.
fn render(value: &Value) -> String {
    match value {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => render_num(*n),
        Value::Empty(..) => "(empty)".to_owned(),
        Value::Dict(..) => "{…}".to_owned(),
        Value::Array(..) => "[…]".to_owned(),
    }
}

fn render_num(n: Num) -> String {
    if let Some(u) = n.to_u128() {
        u.to_string()
    } else if let Some(i) = n.to_i128() {
        i.to_string()
    } else if let Some(f) = n.to_f64() {
        f.to_string()
    } else {
        "a number".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_urls() {
        for good in [
            "http://127.0.0.1:50055",
            "https://defguard.example.com",
            "HTTPS://defguard.example.com:443/",
            "http://[::1]:50055",
            "http://[::1]",
            "http://localhost:50055/grpc",
            "http://my_host",
        ] {
            assert!(is_grpc_url(good), "{good}");
        }
        for bad in [
            "ftp://x",
            "127.0.0.1:50055",
            "http://",
            "http:///path",
            "http://host:",
            "http://host:99999",
            "http://host:port",
            "http://user@host",
            "http://ho st",
            "http://host\n",
            "http://[::1",
            "http://[::1]x",
            "",
        ] {
            assert!(!is_grpc_url(bad), "{bad}");
        }
    }

    #[test]
    fn unsigned_values() {
        assert_eq!(unsigned(&Value::from("15")), Ok(15));
        assert_eq!(unsigned(&Value::from(15i64)), Ok(15));
        assert_eq!(unsigned(&Value::from(15u8)), Ok(15));
        assert_eq!(unsigned(&Value::from("abc")), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from("-1")), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from("+1")), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from(" 1")), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from("")), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from(-1i64)), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from(1.5f64)), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from(true)), Err(EXPECTED_UNSIGNED));
        assert_eq!(unsigned(&Value::from("99999999999999999999")), Err(EXPECTED_U64));
    }

    #[test]
    fn rendering() {
        assert_eq!(render(&Value::from("abc")), "\"abc\"");
        assert_eq!(render(&Value::from("a\"b\n")), "\"a\\\"b\\n\"");
        assert_eq!(render(&Value::from(-1i64)), "-1");
        assert_eq!(render(&Value::from(7u32)), "7");
        assert_eq!(render(&Value::from(true)), "true");
    }
}
