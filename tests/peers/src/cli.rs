//! The command line shared by `opcard-vpcd` and `piv-vpcd`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::Error;
use crate::applets::{OpenPgp, Piv};
use crate::card::VirtualCard;
use crate::platform;
use crate::vpcd::{self, Ended, Endpoint};

/// Which applet a binary hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// opcard, the OpenPGP card.
    OpenPgp,
    /// piv-authenticator, the PIV card.
    Piv,
}

impl Peer {
    fn program(self) -> &'static str {
        match self {
            Self::OpenPgp => "opcard-vpcd",
            Self::Piv => "piv-vpcd",
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Where vpcd listens.
    pub endpoint: Endpoint,
    /// PIV only: accept SELECT by the bare PIV RID (see [`Piv::new`]).
    pub partial_aid: bool,
}

/// How long to wait for vpcd to listen, unless `--wait` says otherwise.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

fn usage(peer: Peer) -> String {
    let extra = match peer {
        Peer::OpenPgp => "",
        Peer::Piv => " [--partial-aid]",
    };
    format!(
        "usage: {program} [--port PORT] [--wait SECONDS]{extra}\n\
         \n\
         Inserts a virtual card into the pcscd vpcd reader listening on 127.0.0.1:PORT\n\
         (default: $VPCD_PORT) and serves it until SIGTERM/SIGINT or until vpcd closes the\n\
         connection. --wait: how long to retry while vpcd is not listening yet (default 10).{piv}",
        program = peer.program(),
        piv = if peer == Peer::Piv {
            "\n--partial-aid: SELECT by A0 00 00 03 08 alone also selects PIV."
        } else {
            ""
        },
    )
}

/// Parses the arguments (without the program name); `Ok(None)` for `--help`.
pub fn parse(
    peer: Peer,
    args: impl IntoIterator<Item = String>,
    vpcd_port: Option<String>,
) -> Result<Option<Options>, Error> {
    let mut port = None;
    let mut wait = DEFAULT_WAIT;
    let mut partial_aid = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| Error::Usage(format!("{name} needs a value\n{}", usage(peer))))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => port = Some(value()?),
            "--wait" => {
                let seconds = value()?;
                let seconds: f64 =
                    seconds.parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0).ok_or_else(
                        || Error::Usage(format!("--wait {seconds:?}: not a number of seconds")),
                    )?;
                wait = Duration::from_secs_f64(seconds);
            }
            "--partial-aid" if peer == Peer::Piv && inline.is_none() => partial_aid = true,
            _ => return Err(Error::Usage(format!("unexpected argument {arg:?}\n{}", usage(peer)))),
        }
    }
    let port = port.or(vpcd_port).ok_or_else(|| {
        Error::Usage(format!("no vpcd port: pass --port or set VPCD_PORT\n{}", usage(peer)))
    })?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::Usage(format!("vpcd port {port:?} is not a TCP port number")))?;
    Ok(Some(Options { endpoint: Endpoint { port, wait }, partial_aid }))
}

/// Serves `peer`'s applet as the options say, until SIGTERM/SIGINT (raising `stop`) or
/// until vpcd closes the connection.
pub fn run(peer: Peer, options: Options, stop: &AtomicBool) -> Result<Ended, Error> {
    let endpoint = options.endpoint;
    let connected = || {
        note(peer, &format!("card inserted into the vpcd reader at 127.0.0.1:{}", endpoint.port));
    };
    match peer {
        Peer::OpenPgp => platform::with_client("opcard", |client| {
            let mut card = VirtualCard::new(OpenPgp::new(client), OpenPgp::atr());
            vpcd::serve(endpoint, stop, &mut card, connected)
        }),
        Peer::Piv => platform::with_client("piv", |client| {
            let mut card = VirtualCard::new(Piv::new(client, options.partial_aid), Piv::atr());
            vpcd::serve(endpoint, stop, &mut card, connected)
        }),
    }
}

/// The binaries' `main`.
pub fn main(peer: Peer) -> ExitCode {
    let options = match parse(peer, std::env::args().skip(1), std::env::var("VPCD_PORT").ok()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            #[allow(clippy::print_stdout, reason = "--help output")]
            {
                println!("{}", usage(peer));
            }
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            note(peer, &format!("error: {error}"));
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let registered = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT]
        .into_iter()
        .try_for_each(|signal| signal_hook::flag::register(signal, Arc::clone(&stop)).map(drop));
    if let Err(error) = registered {
        note(peer, &format!("error: {}", Error::Signal(error)));
        return ExitCode::FAILURE;
    }
    match run(peer, options, &stop) {
        Ok(Ended::Stopped) => {
            note(peer, "stopped by signal");
            ExitCode::SUCCESS
        }
        Ok(Ended::VpcdClosed) => {
            note(peer, "vpcd closed the connection");
            ExitCode::SUCCESS
        }
        Err(error) => {
            note(peer, &format!("error: {error}"));
            ExitCode::FAILURE
        }
    }
}

/// One line of diagnostics on stderr, the peer's only output.
#[allow(clippy::print_stderr, reason = "a command-line tool's diagnostics")]
fn note(peer: Peer, message: &str) {
    eprintln!("{}: {message}", peer.program());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn port_from_flag_or_environment() {
        let options = parse(Peer::OpenPgp, args(&["--port", "36510"]), Some("1".into()));
        assert_eq!(options.ok().flatten().map(|o| o.endpoint.port), Some(36510));
        let options = parse(Peer::OpenPgp, args(&[]), Some("36511".into()));
        assert_eq!(options.ok().flatten().map(|o| o.endpoint.port), Some(36511));
        let options =
            parse(Peer::Piv, args(&["--port=36512", "--wait", "2.5", "--partial-aid"]), None);
        assert_eq!(
            options.ok().flatten(),
            Some(Options {
                endpoint: Endpoint { port: 36512, wait: Duration::from_millis(2500) },
                partial_aid: true
            })
        );
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(matches!(parse(Peer::OpenPgp, args(&[]), None), Err(Error::Usage(_))));
        assert!(matches!(parse(Peer::OpenPgp, args(&["--port", "x"]), None), Err(Error::Usage(_))));
        assert!(matches!(parse(Peer::OpenPgp, args(&["--port"]), None), Err(Error::Usage(_))));
        assert!(matches!(
            parse(Peer::OpenPgp, args(&["--partial-aid"]), Some("1".into())),
            Err(Error::Usage(_))
        ));
        assert!(matches!(parse(Peer::Piv, args(&["--help"]), None), Ok(None)));
    }
}
