//! Merging the layers with figment, and turning each key's winning value into a typed,
//! validated setting.

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::value::{Num, Value};

use super::format_duration;
use super::keys::{self, KeySpec};
use super::layers::Layer;
use super::{
    AlgorithmChoice, ConfigError, Entry, GpgDebugLevel, GrpcPackage, KeyOrigin, LogFormat,
    LogLevel, Origin, PinPlan, Settings, ShareMode, ShownValue, Token, TouchPolicy,
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
const EXPECTED_DURATION: Mismatch =
    "a duration greater than zero and at most 1h, like 500ms, 1s or 2m (a plain number is seconds)";
const EXPECTED_BOOL: Mismatch = "true or false";
const EXPECTED_SOCKET_ADDRESS: Mismatch =
    "an IP address and port, like 127.0.0.1:9443 or [::1]:9443";

/// An `IP:port` listening address.
fn socket_address(text: &str) -> Result<std::net::SocketAddr, Mismatch> {
    text.trim().parse().map_err(|_| EXPECTED_SOCKET_ADDRESS)
}
const EXPECTED_BACKUP_LOCATION: Mismatch =
    "no backup file unless key_location is host (keys generated on the card cannot be exported)";
const EXPECTED_BACKUP_PASSPHRASE: Mismatch =
    "a backup_passphrase_file as well (a backup is always encrypted)";
const EXPECTED_PIN_FILES: Mismatch =
    "pin_policy set to come with both user_pin_file and admin_pin_file";
const EXPECTED_ALGORITHM: Mismatch =
    "one of auto, ed25519, nistp256, nistp384, rsa2048, rsa3072, rsa4096";
const EXPECTED_TOUCH: Mismatch = "one of off, on, fixed, cached, cached-fixed";
const EXPECTED_ONE_TOKEN: Mismatch = "token or token_file, not both";

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
        let expected = if keys::is_path(key) { EXPECTED_PATH } else { EXPECTED_TEXT };
        let (value, origin) = self.get(spec(key), |value| match value {
            Value::String(_, s) if s.is_empty() => Ok(None),
            Value::String(_, s) => Ok(Some(parse(s))),
            _ => Err(expected),
        })?;
        Ok((value.flatten(), origin))
    }

    /// A key without a default whose text must parse; an empty string means unset.
    fn optional_parsed<T>(
        &self,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, Mismatch>,
    ) -> Result<(Option<T>, Origin), ConfigError> {
        let (value, origin) = self.get(spec(key), |value| match value {
            Value::String(_, s) if s.is_empty() => Ok(None),
            Value::String(_, s) => parse(s).map(Some),
            _ => Err(EXPECTED_TEXT),
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
        let (token_file, token_file_origin) =
            self.optional(keys::TOKEN_FILE, |s: &str| PathBuf::from(s))?;
        entry(
            keys::TOKEN_FILE,
            optional_text(token_file.as_deref().map(|p| p.to_string_lossy()).as_deref()),
            token_file_origin.clone(),
        );
        let (grpc_allow_plaintext, origin) =
            self.required(keys::GRPC_ALLOW_PLAINTEXT, d.grpc_allow_plaintext, boolean)?;
        entry(keys::GRPC_ALLOW_PLAINTEXT, text(bool_text(grpc_allow_plaintext)), origin);
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
        let (card_serial, origin) = self.optional(keys::CARD_SERIAL, str::to_owned)?;
        entry(keys::CARD_SERIAL, optional_text(card_serial.as_deref()), origin);
        let (share_mode, origin) = self.required(
            keys::SHARE_MODE,
            d.share_mode,
            named(&ShareMode::ALL, ShareMode::name, "one of exclusive, shared"),
        )?;
        entry(keys::SHARE_MODE, text(share_mode.name()), origin);
        let (grpc_package, origin) = self.required(
            keys::GRPC_PACKAGE,
            d.grpc_package,
            named(&GrpcPackage::ALL, GrpcPackage::name, "one of defguard.worker.v1, worker"),
        )?;
        entry(keys::GRPC_PACKAGE, text(grpc_package.name()), origin);
        let (poll_interval, origin) =
            self.required(keys::POLL_INTERVAL, d.poll_interval, duration)?;
        entry(keys::POLL_INTERVAL, text(&format_duration(poll_interval)), origin);

        // The provisioning profile.
        let (algorithm, origin) = self.required(
            keys::ALGORITHM,
            d.algorithm,
            choice(AlgorithmChoice::from_name, EXPECTED_ALGORITHM),
        )?;
        entry(keys::ALGORITHM, text(algorithm.name()), origin);
        let (key_location, location_origin) = self.required(
            keys::KEY_LOCATION,
            d.key_location,
            choice(KeyOrigin::from_name, "one of card, host"),
        )?;
        entry(keys::KEY_LOCATION, text(key_location.name()), location_origin);
        let path_text =
            |p: Option<&PathBuf>| optional_text(p.map(|p| p.to_string_lossy()).as_deref());
        let (backup_file, backup_origin) =
            self.optional(keys::BACKUP_FILE, |s: &str| PathBuf::from(s))?;
        entry(keys::BACKUP_FILE, path_text(backup_file.as_ref()), backup_origin.clone());
        let (backup_passphrase_file, origin) =
            self.optional(keys::BACKUP_PASSPHRASE_FILE, |s: &str| PathBuf::from(s))?;
        entry(keys::BACKUP_PASSPHRASE_FILE, path_text(backup_passphrase_file.as_ref()), origin);
        let (pin_policy, pin_origin) = self.required(
            keys::PIN_POLICY,
            d.pin_policy,
            choice(PinPlan::from_name, "one of auto, unattended, random, set, keep"),
        )?;
        entry(keys::PIN_POLICY, text(pin_policy.name()), pin_origin.clone());
        let (user_pin_file, origin) =
            self.optional(keys::USER_PIN_FILE, |s: &str| PathBuf::from(s))?;
        entry(keys::USER_PIN_FILE, path_text(user_pin_file.as_ref()), origin);
        let (admin_pin_file, origin) =
            self.optional(keys::ADMIN_PIN_FILE, |s: &str| PathBuf::from(s))?;
        entry(keys::ADMIN_PIN_FILE, path_text(admin_pin_file.as_ref()), origin);
        let (touch_policy, origin) = self.required(
            keys::TOUCH_POLICY,
            d.touch_policy,
            choice(|name| TouchPolicy::from_openpgp_name(name).ok(), EXPECTED_TOUCH),
        )?;
        entry(keys::TOUCH_POLICY, text(touch_policy.openpgp_name()), origin);
        let (reset, origin) = self.required(keys::RESET, d.reset, boolean)?;
        entry(keys::RESET, text(bool_text(reset)), origin);
        let (state_dir, origin) = self.optional(keys::STATE_DIR, |s: &str| PathBuf::from(s))?;
        entry(keys::STATE_DIR, path_text(state_dir.as_ref()), origin);

        // The authority.
        let (authority_dir, origin) =
            self.optional(keys::AUTHORITY_DIR, |s: &str| PathBuf::from(s))?;
        entry(keys::AUTHORITY_DIR, path_text(authority_dir.as_ref()), origin);
        let (authority_address, origin) =
            self.optional_parsed(keys::AUTHORITY_ADDRESS, socket_address)?;
        entry(
            keys::AUTHORITY_ADDRESS,
            optional_text(authority_address.map(|a| a.to_string()).as_deref()),
            origin,
        );
        let (authority_grpc_address, origin) =
            self.optional_parsed(keys::AUTHORITY_GRPC_ADDRESS, socket_address)?;
        entry(
            keys::AUTHORITY_GRPC_ADDRESS,
            optional_text(authority_grpc_address.map(|a| a.to_string()).as_deref()),
            origin,
        );
        let (authority_database, origin) =
            self.optional(keys::AUTHORITY_DATABASE, str::to_owned)?;
        entry(keys::AUTHORITY_DATABASE, optional_text(authority_database.as_deref()), origin);
        let (authority_password_file, origin) =
            self.optional(keys::AUTHORITY_PASSWORD_FILE, |s: &str| PathBuf::from(s))?;
        entry(keys::AUTHORITY_PASSWORD_FILE, path_text(authority_password_file.as_ref()), origin);

        // Keys that only make sense together.
        let conflict = |key, value: String, origin: Origin, expected| ConfigError::InvalidValue {
            key,
            value: Some(value),
            origin,
            expected,
        };
        if let Some(path) = &backup_file {
            let shown = format!("{:?}", path.to_string_lossy());
            if key_location != KeyOrigin::Host {
                return Err(conflict(
                    keys::BACKUP_FILE,
                    shown,
                    backup_origin,
                    EXPECTED_BACKUP_LOCATION,
                ));
            }
            if backup_passphrase_file.is_none() {
                return Err(conflict(
                    keys::BACKUP_FILE,
                    shown,
                    backup_origin,
                    EXPECTED_BACKUP_PASSPHRASE,
                ));
            }
        }
        if pin_policy == PinPlan::Set && (user_pin_file.is_none() || admin_pin_file.is_none()) {
            return Err(conflict(
                keys::PIN_POLICY,
                format!("{:?}", pin_policy.name()),
                pin_origin,
                EXPECTED_PIN_FILES,
            ));
        }

        if let (Some(_), Some(path)) = (&token, &token_file) {
            return Err(conflict(
                keys::TOKEN_FILE,
                format!("{:?}", path.to_string_lossy()),
                token_file_origin,
                EXPECTED_ONE_TOKEN,
            ));
        }

        let settings = Settings {
            id,
            log_level,
            log_format,
            grpc_url,
            grpc_ca,
            token,
            token_file,
            grpc_allow_plaintext,
            smartcard_retries,
            smartcard_retry_interval: Duration::from_secs(interval),
            gpg_debug_level,
            reader,
            card_serial,
            share_mode,
            grpc_package,
            poll_interval,
            algorithm,
            key_location,
            backup_file,
            backup_passphrase_file,
            pin_policy,
            user_pin_file,
            admin_pin_file,
            touch_policy,
            reset,
            state_dir,
            authority_dir,
            authority_address,
            authority_grpc_address,
            authority_database,
            authority_password_file,
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

/// A value named by one of `all`'s names (ASCII case ignored).
fn named<T: Copy + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
    expected: Mismatch,
) -> impl Fn(&Value) -> Result<T, Mismatch> {
    move |value| {
        value
            .as_str()
            .and_then(|text| all.iter().copied().find(|v| name(*v).eq_ignore_ascii_case(text)))
            .ok_or(expected)
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

/// The longest poll interval accepted: a station that polls less often than this is, for
/// defguard, simply gone.
const MAX_DURATION: Duration = Duration::from_secs(3600);

/// A duration: a number with a unit (`ms`, `s`, `m`), or a plain number of seconds (string
/// or TOML integer). Greater than zero, at most [`MAX_DURATION`], whole milliseconds.
pub(super) fn duration(value: &Value) -> Result<Duration, Mismatch> {
    let parsed = match value {
        Value::String(_, s) => parse_duration(s),
        Value::Num(..) => unsigned(value).ok().map(Duration::from_secs),
        _ => None,
    };
    parsed.filter(|d| !d.is_zero() && *d <= MAX_DURATION).ok_or(EXPECTED_DURATION)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.len() > 10 {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "" | "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// A boolean: TOML `true`/`false`, or (environment, command line) `true`/`false`,
/// `yes`/`no`, `on`/`off`, `1`/`0`, ignoring ASCII case.
fn boolean(value: &Value) -> Result<bool, Mismatch> {
    match value {
        Value::Bool(_, b) => Ok(*b),
        Value::String(_, s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(EXPECTED_BOOL),
        },
        _ => Err(EXPECTED_BOOL),
    }
}

fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
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
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(duration(&Value::from("500ms")), Ok(ms(500)));
        assert_eq!(duration(&Value::from("1s")), Ok(ms(1000)));
        assert_eq!(duration(&Value::from("2")), Ok(ms(2000)));
        assert_eq!(duration(&Value::from("2m")), Ok(ms(120_000)));
        assert_eq!(duration(&Value::from(3u8)), Ok(ms(3000)));
        assert_eq!(duration(&Value::from("60m")), Ok(ms(3_600_000)));
        for bad in ["0", "0ms", "", "ms", "1.5s", "-1s", "1 s", "1h", "61m", "99999999999s"] {
            assert_eq!(duration(&Value::from(bad)), Err(EXPECTED_DURATION), "{bad}");
        }
        assert_eq!(duration(&Value::from(-1i64)), Err(EXPECTED_DURATION));
        assert_eq!(duration(&Value::from(true)), Err(EXPECTED_DURATION));
        assert_eq!(format_duration(ms(500)), "500ms");
        assert_eq!(format_duration(ms(1000)), "1s");
        assert_eq!(format_duration(ms(1500)), "1500ms");
    }

    #[test]
    fn booleans() {
        for yes in ["true", "TRUE", "yes", "on", "1"] {
            assert_eq!(boolean(&Value::from(yes)), Ok(true), "{yes}");
        }
        for no in ["false", "No", "off", "0"] {
            assert_eq!(boolean(&Value::from(no)), Ok(false), "{no}");
        }
        assert_eq!(boolean(&Value::from(false)), Ok(false));
        assert_eq!(boolean(&Value::from("maybe")), Err(EXPECTED_BOOL));
        assert_eq!(boolean(&Value::from(1u8)), Err(EXPECTED_BOOL));
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
