//! `keystation-dist`: writes keystation's man pages and shell completions, generated from
//! the clap definition of its command line ([`keystation::cli::Cli`]).
//!
//! A separate binary so that the shipped `keystation` carries no generators.
//! `scripts/package` runs it while it assembles the Debian package:
//!
//! ```text
//! keystation-dist man DIR [--date YYYY-MM-DD]   keystation.1 and one page per subcommand
//! keystation-dist completions DIR               keystation.bash, _keystation, keystation.fish
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// What `keystation.1` says beyond the options: where the package puts things.
const FILES_SECTION: &str = r#".SH FILES
.TP
\fI/etc/keystation/station.toml\fR
The station's configuration (TOML), read with \fB\-\-config\fR. Every key is listed there,
commented, with its default; \fBkeystation config show\fR prints the effective values and
their sources.
.TP
\fI/etc/keystation/token\fR
The defguard token (mode 0600, owner root). The \fBkeystation\-station\fR service receives
it as a systemd credential; it is never in the unit or the configuration file.
.TP
\fI/lib/systemd/system/keystation\-station.service\fR
The provisioning station (\fBkeystation station\fR) as a system service, run as the
\fBkeystation\fR user.
.TP
\fI/usr/lib/systemd/user/keystation\-kube\-proxy.service\fR
The kube proxy as a user service.
.SH EXIT STATUS
0 on success, 1 when the command failed, 2 for a configuration or usage error.
"#;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(io::stderr(), "keystation-dist: {message}");
            ExitCode::from(2)
        }
    }
}

/// Parses the arguments and runs the one command they name.
fn run(args: Vec<String>) -> Result<(), String> {
    let usage =
        "usage: keystation-dist man DIR [--date YYYY-MM-DD] | keystation-dist completions DIR";
    let mut args = args.into_iter();
    let command = args.next().ok_or(usage)?;
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let mut date = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--date" if command == "man" => date = Some(args.next().ok_or(usage)?),
            _ => return Err(format!("unexpected argument {arg:?}\n{usage}")),
        }
    }
    let write = match command.as_str() {
        "man" => man_pages,
        "completions" => completions,
        _ => return Err(format!("unknown command {command:?}\n{usage}")),
    };
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(&dir, date.as_deref().unwrap_or_default())
        .map_err(|e| format!("writing to {}: {e}", dir.display()))
}

/// The keystation command as clap sees it, built (subcommands named `keystation-…`), with
/// no `help` subcommand (every page documents `--help` already).
fn keystation_command() -> clap::Command {
    let mut command = keystation::cli::Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// Writes `keystation.1` and one page per visible subcommand, at any depth
/// (`keystation-piv-certificate-import.1`, …).
fn man_pages(dir: &Path, date: &str) -> io::Result<()> {
    let root = keystation_command();
    let source = format!("keystation {}", root.get_version().unwrap_or_default());
    let mut pending = vec![root];
    let mut first = true;
    while let Some(command) = pending.pop() {
        pending.extend(command.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
        let name = command.get_display_name().unwrap_or_else(|| command.get_name()).to_owned();
        let has_subcommands = command.has_subcommands();
        let man =
            clap_mangen::Man::new(command).date(date).source(source.clone()).manual("keystation");
        let mut page = Vec::new();
        man.render(&mut page)?;
        if has_subcommands {
            page.extend_from_slice(see_also(&name).as_bytes());
        }
        if first {
            page.extend_from_slice(FILES_SECTION.as_bytes());
            first = false;
        }
        fs::write(dir.join(format!("{name}.1")), page)?;
    }
    Ok(())
}

/// A pointer from a page with subcommands to theirs (clap_mangen lists the subcommands but
/// does not name their pages).
fn see_also(name: &str) -> String {
    format!(
        ".SH \"SEE ALSO\"\nThe page of each subcommand: \\fB{}\\-\\fR\\fIsubcommand\\fR(1), e.g. \
         \\fBman {name}\\-\\fR\\fIsubcommand\\fR.\n",
        name.replace('-', "\\-")
    )
}

/// Writes the bash, zsh and fish completion scripts (`_date` is for [`man_pages`]).
fn completions(dir: &Path, _date: &str) -> io::Result<()> {
    let mut command = keystation_command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, "keystation", dir)?;
    }
    Ok(())
}
