//! `keystation config show`: every key, its effective value and where it came from.
//!
//! Secrets are shown as `<redacted>` (or `(unset)`); [`Loaded`] never holds them in its
//! entries, so nothing here can leak one.

use std::io::{self, Write};

use super::{Attendance, Entry, Loaded, Origin, ShownValue};

/// What the configured PIN policy does under each command: `(station, provision)`.
fn pin_plans(loaded: &Loaded) -> (&'static str, &'static str) {
    let s = &loaded.settings;
    let admin_file = s.admin_pin_file.is_some();
    (
        s.pin_policy.describe(Attendance::Unattended, admin_file),
        s.pin_policy.describe(Attendance::Attended, admin_file),
    )
}

/// Output format of `config show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum ShowFormat {
    /// An aligned table: key, value, source.
    #[default]
    Text,
    /// One JSON object (machine-readable; same information).
    Json,
}

/// Writes `loaded` to `out` in `format`.
pub fn write(loaded: &Loaded, format: ShowFormat, out: &mut dyn Write) -> io::Result<()> {
    match format {
        ShowFormat::Text => write_text(loaded, out),
        ShowFormat::Json => write_json(loaded, out),
    }
}

fn write_text(loaded: &Loaded, out: &mut dyn Write) -> io::Result<()> {
    const HEADER: [&str; 3] = ["KEY", "VALUE", "SOURCE"];
    let rows: Vec<[String; 3]> = loaded
        .entries
        .iter()
        .map(|e| [e.key.to_owned(), e.value.to_string(), e.origin.to_string()])
        .collect();
    let width = |column: usize| {
        rows.iter().map(|r| r[column].chars().count()).chain([HEADER[column].len()]).max()
    };
    let (key_width, value_width) = (width(0).unwrap_or(0), width(1).unwrap_or(0));
    writeln!(out, "{:key_width$}  {:value_width$}  {}", HEADER[0], HEADER[1], HEADER[2])?;
    for [key, value, source] in &rows {
        writeln!(out, "{key:key_width$}  {value:value_width$}  {source}")?;
    }
    let (station, provision) = pin_plans(loaded);
    writeln!(out, "\nPINs, station:   {station}")?;
    writeln!(out, "PINs, provision: {provision}")?;
    match &loaded.config_file {
        Some(file) => {
            writeln!(out, "\nconfig file: {} (named by {})", file.path.display(), file.named_by)
        }
        None => writeln!(out, "\nconfig file: none"),
    }
}

fn write_json(loaded: &Loaded, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{{")?;
    match &loaded.config_file {
        Some(file) => writeln!(
            out,
            "  \"config_file\": {{\"path\": {}, \"named_by\": {}}},",
            json_string(&file.path.to_string_lossy()),
            json_origin(&file.named_by)
        )?,
        None => writeln!(out, "  \"config_file\": null,")?,
    }
    let (station, provision) = pin_plans(loaded);
    writeln!(
        out,
        "  \"pins\": {{\"station\": {}, \"provision\": {}}},",
        json_string(station),
        json_string(provision)
    )?;
    writeln!(out, "  \"settings\": {{")?;
    let last = loaded.entries.len().saturating_sub(1);
    for (i, entry) in loaded.entries.iter().enumerate() {
        let comma = if i == last { "" } else { "," };
        writeln!(out, "    {}: {}{comma}", json_string(entry.key), json_entry(entry))?;
    }
    writeln!(out, "  }}")?;
    writeln!(out, "}}")
}

fn json_entry(entry: &Entry) -> String {
    let value = match &entry.value {
        ShownValue::Unset => "null".to_owned(),
        ShownValue::Redacted => json_string(super::REDACTED),
        ShownValue::Text(text) => json_string(text),
        ShownValue::Number(n) => n.to_string(),
    };
    let secret = matches!(entry.value, ShownValue::Redacted)
        || super::keys::spec(entry.key).is_some_and(|s| s.secret);
    format!(
        "{{\"value\": {value}, \"secret\": {secret}, \"source\": {}, \"origin\": {}}}",
        json_string(&entry.origin.to_string()),
        json_origin(&entry.origin)
    )
}

/// The origin as an object: `{"layer": "environment", "variable": "GRPC_URL"}`.
fn json_origin(origin: &Origin) -> String {
    match origin {
        Origin::Default => r#"{"layer": "default"}"#.to_owned(),
        Origin::ConfigFile { path } => {
            format!(
                r#"{{"layer": "config_file", "path": {}}}"#,
                json_string(&path.to_string_lossy())
            )
        }
        Origin::DotEnv { path, variable } => format!(
            r#"{{"layer": "dotenv", "path": {}, "variable": {}}}"#,
            json_string(&path.to_string_lossy()),
            json_string(variable)
        ),
        Origin::Environment { variable } => {
            format!(r#"{{"layer": "environment", "variable": {}}}"#, json_string(variable))
        }
        Origin::CommandLine { flag } => {
            format!(r#"{{"layer": "command_line", "flag": {}}}"#, json_string(flag))
        }
    }
}

/// `keystation config template`: a TOML config file with every key commented out, each
/// under a comment saying what it means and its environment variables, set to its
/// built-in default (keys without one show an empty value, which means "unset"). Written
/// from the key table, so no key can be missing; a file with every line uncommented loads.
pub fn write_template(out: &mut dyn Write) -> io::Result<()> {
    let defaults = super::layers::defaults();
    writeln!(out, "# keystation configuration (TOML). Every key is commented out and shows its")?;
    writeln!(
        out,
        "# built-in default. Precedence, lowest first: this file < ./.env < ./.env.local"
    )?;
    writeln!(out, "# < environment < command line. `keystation config show` prints the result.")?;
    for spec in super::keys::KEYS {
        writeln!(out)?;
        for line in wrap(spec.about, 86) {
            writeln!(out, "# {line}")?;
        }
        writeln!(out, "# ({}; {})", spec.flag, spec.env.join(", "))?;
        let value = match defaults.value(spec.key) {
            Some(figment::value::Value::String(_, text)) => json_string(text),
            Some(figment::value::Value::Bool(_, b)) => b.to_string(),
            Some(figment::value::Value::Num(_, n)) => {
                n.to_u128().map_or_else(|| "0".to_owned(), |n| n.to_string())
            }
            _ => "\"\"".to_owned(),
        };
        writeln!(out, "#{} = {value}", spec.key)?;
    }
    Ok(())
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// `text` as a JSON string literal.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
