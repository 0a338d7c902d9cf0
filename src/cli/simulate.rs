//! `keystation simulate`: the software YubiKey 5 in pcscd's vpcd reader until SIGINT or
//! SIGTERM (the bridge itself is keystation-softcard's `bridge`).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use keystation_softcard::bridge::{self, DEFAULT_VPCD};
use keystation_softcard::{TouchResponse, Version};

use crate::Error;

/// `keystation simulate …`
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// vpcd's address (pcscd's vsmartcard reader driver); the card connects to it
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_VPCD, value_parser = parse_address)]
    pub vpcd: String,
    /// Serial number the card reports [default: 10000001]
    #[arg(long, value_name = "N")]
    pub serial: Option<u32>,
    /// Firmware version the card reports; ykman reads one digit each for minor and patch
    /// [default: 5.4.3]
    #[arg(long, value_name = "X.Y.Z", value_parser = parse_version)]
    pub version: Option<Version>,
    /// Seed for the card's random numbers, for reproducible keys [default: from the OS]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Keep the card's keys, PINs and settings in this file so that the card survives
    /// restarts: loaded at start if it exists, rewritten (mode 0600) after every command
    /// that changes them. It holds test keys and PINs in the clear: rehearsal only
    #[arg(long, value_name = "FILE")]
    pub state: Option<std::path::PathBuf>,
    /// For tests: remove the card (close the vpcd connection) after N command APDUs,
    /// then insert it again a second later, power-cycled. Happens once
    #[arg(long, value_name = "N")]
    pub remove_after: Option<u64>,
    /// Whether the simulated user touches the card when a key's touch policy asks: auto
    /// (at once) or never (such operations fail with 6982, as when nobody touches a
    /// YubiKey)
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = touch_parser())]
    pub touch: TouchResponse,
}

/// `--touch`: `auto` (the simulated user touches at once) or `never`.
fn touch_parser() -> impl clap::builder::TypedValueParser<Value = TouchResponse> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["auto", "never"]).map(|name| match name.as_str() {
        "never" => TouchResponse::Never,
        _ => TouchResponse::Immediate,
    })
}

/// Serves the card until SIGINT or SIGTERM (a second signal exits at once, status 1,
/// should the clean stop hang).
pub fn run(args: &SimulateArgs) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let options = bridge::Options {
        vpcd: args.vpcd.clone(),
        serial: args.serial,
        version: args.version,
        seed: args.seed,
        state: args.state.clone(),
        remove_after: args.remove_after,
        touch: args.touch,
    };
    Ok(bridge::run_until(&options, &stop)?)
}

/// Parses `HOST:PORT` as `--vpcd` takes it (the host is resolved at each connection).
pub fn parse_address(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("expected HOST:PORT, such as {DEFAULT_VPCD}"))?;
    if host.is_empty() {
        return Err(format!("expected HOST:PORT, such as {DEFAULT_VPCD}: the host is empty"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{port:?} is not a TCP port number (1 to 65535)")),
        Ok(_) => Ok(text.to_owned()),
    }
}

/// Parses a firmware version `MAJOR.MINOR.PATCH`, each 0 to 255.
pub fn parse_version(text: &str) -> Result<Version, String> {
    let parts: Vec<&str> = text.split('.').collect();
    let numbers: Result<Vec<u8>, _> = parts.iter().map(|p| p.parse::<u8>()).collect();
    match numbers.as_deref() {
        Ok([major, minor, patch]) => Ok(Version(*major, *minor, *patch)),
        _ => Err(format!("expected MAJOR.MINOR.PATCH such as 5.4.3, each 0 to 255, not {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_versions_are_validated() {
        assert_eq!(parse_address("127.0.0.1:35963").as_deref(), Ok("127.0.0.1:35963"));
        assert_eq!(parse_address("localhost:1").as_deref(), Ok("localhost:1"));
        assert!(parse_address("127.0.0.1").is_err());
        assert!(parse_address(":35963").is_err());
        assert!(parse_address("host:0").is_err());
        assert!(parse_address("host:65536").is_err());
        assert_eq!(parse_version("5.7.1"), Ok(Version(5, 7, 1)));
        assert!(parse_version("5.7").is_err());
        assert!(parse_version("5.7.256").is_err());
        assert!(parse_version("a.b.c").is_err());
    }
}
