//! `keystation provision`: one card, now, with the OpenPGP profile the configuration
//! describes; the result (and any new PINs) on stdout.

use std::io::Write;
use std::path::Path;

use clap::Args;
use keystation_cards::CardChoice;
use keystation_provision::{
    Attendance, Holder, InvalidHolder, Provisioned, check_backup_target, provision_selected,
    write_backup,
};
use zeroize::Zeroizing;

use super::options::{
    CardSearchOptions, CommonOptions, FlagGroups, ProfileOptions, card_choice_parser,
    card_selection, command_line,
};
use super::profile::profile;
use crate::Error;
use crate::config::{CommandLine, ConfigError, Settings};

/// `keystation provision …`
#[derive(Debug, Clone, Args)]
pub struct ProvisionArgs {
    /// The holder's name, "First Last" (the last word is the surname)
    #[arg(long, value_name = "NAME", required_unless_present_all = ["first_name", "last_name"])]
    pub name: Option<String>,
    /// Given name(s), instead of --name
    #[arg(long, value_name = "FIRST", conflicts_with = "name", requires = "last_name")]
    pub first_name: Option<String>,
    /// Surname, instead of --name
    #[arg(long, value_name = "LAST", conflicts_with = "name", requires = "first_name")]
    pub last_name: Option<String>,
    /// The holder's e-mail address
    #[arg(long, value_name = "ADDRESS")]
    pub email: String,
    /// Which card: auto = the one card in a PC/SC reader, or the built-in software card
    /// when there is none; pcsc; software
    #[arg(long, value_name = "CARD", default_value = "auto", value_parser = card_choice_parser())]
    pub card: CardChoice,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    /// The card search.
    #[command(flatten)]
    pub search: CardSearchOptions,
    /// The OpenPGP profile.
    #[command(flatten)]
    pub profile: ProfileOptions,
}

impl ProvisionArgs {
    /// The command line's configuration layer.
    pub(crate) fn command_line(&self, common: &CommonOptions) -> Result<CommandLine, ConfigError> {
        let groups = FlagGroups {
            search: Some(&self.search),
            profile: Some(&self.profile),
            ..FlagGroups::default()
        };
        command_line(common, groups)
    }

    /// The holder the options name.
    pub fn holder(&self) -> Result<Holder, InvalidHolder> {
        let (first, last) = match (&self.name, &self.first_name, &self.last_name) {
            (Some(name), _, _) => match name.trim().rsplit_once(char::is_whitespace) {
                Some((first, last)) => (first.trim().to_owned(), last.to_owned()),
                None => {
                    return Err(InvalidHolder {
                        field: "--name",
                        reason: "give a first and a last name, e.g. --name \"Ada Lovelace\" \
                                 (or --first-name and --last-name)",
                    });
                }
            },
            (None, first, last) => {
                (first.clone().unwrap_or_default(), last.clone().unwrap_or_default())
            }
        };
        Holder::new(&first, &last, &self.email)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The `--json` result: one object with `serial`, `manufacturer`, `algorithms`,
/// `fingerprints` (`signature`, `encryption`, `authentication`), `ssh_key`,
/// `certificate`, `pins` (`user`, `admin`, or null), `backup_file` and `apdus`. It may
/// hold PINs, so it lives in a zeroizing buffer.
fn json_result(
    done: &Provisioned,
    pins: Option<&(Zeroizing<String>, Zeroizing<String>)>,
    backup_file: Option<&Path>,
) -> Zeroizing<String> {
    use crate::config::show::json_string as s;
    let [sig, dec, aut] = done.algorithms.map(|a| s(&a.to_string()));
    let [fsig, fdec, faut] = done.fingerprints.map(|f| s(&hex(&f)));
    let mut out = Zeroizing::new(String::with_capacity(4096));
    out.push_str(&format!("{{\n  \"serial\": {},\n", s(&done.serial)));
    out.push_str(&format!(
        "  \"manufacturer\": {},\n",
        done.manufacturer.map_or_else(|| "null".to_owned(), s)
    ));
    out.push_str(&format!("  \"algorithms\": [{sig}, {dec}, {aut}],\n"));
    out.push_str(&format!(
        "  \"fingerprints\": {{\"signature\": {fsig}, \"encryption\": {fdec}, \"authentication\": {faut}}},\n"
    ));
    out.push_str(&format!("  \"ssh_key\": {},\n", s(&done.ssh_key)));
    out.push_str(&format!("  \"certificate\": {},\n", s(&done.certificate)));
    match pins {
        Some((user, admin)) => {
            out.push_str("  \"pins\": {\"user\": ");
            out.push_str(&Zeroizing::new(s(user)));
            out.push_str(", \"admin\": ");
            out.push_str(&Zeroizing::new(s(admin)));
            out.push_str("},\n");
        }
        None => out.push_str("  \"pins\": null,\n"),
    }
    let backup = match backup_file.filter(|_| done.backup.is_some()) {
        Some(path) => s(&path.to_string_lossy()),
        None => "null".to_owned(),
    };
    out.push_str(&format!("  \"backup_file\": {backup},\n"));
    out.push_str(&format!("  \"apdus\": {}\n}}", done.apdus));
    out
}

/// `keystation provision`: provisions one card and writes the result to `out` — the only
/// place random PINs appear.
pub fn run(args: &ProvisionArgs, settings: &Settings, out: &mut dyn Write) -> Result<(), Error> {
    let holder = args.holder()?;
    let (profile, backup_file) = profile(settings, Attendance::Attended)?;
    check_backup_target(backup_file.as_deref())?;
    let selection = card_selection(settings, args.card, true);
    let done = provision_selected(&selection, &holder, &profile, &|| false)?;
    if let (Some(path), Some(backup)) = (&backup_file, &done.backup) {
        write_backup(path, backup)?;
    }
    let pin_text = done.new_pins.as_ref().map(|pins| {
        (
            Zeroizing::new(String::from_utf8_lossy(pins.user.expose()).into_owned()),
            Zeroizing::new(String::from_utf8_lossy(pins.admin.expose()).into_owned()),
        )
    });
    if args.json {
        let text = json_result(&done, pin_text.as_ref(), backup_file.as_deref());
        writeln!(out, "{}", text.as_str())?;
        return Ok(());
    }
    let [sig, dec, aut] = done.algorithms;
    writeln!(
        out,
        "Provisioned OpenPGP card {} ({}): {sig} / {dec} / {aut}",
        done.serial,
        done.manufacturer.unwrap_or("unknown manufacturer")
    )?;
    writeln!(out, "Signature key:      {}", hex(&done.fingerprints[0]))?;
    writeln!(out, "Encryption key:     {}", hex(&done.fingerprints[1]))?;
    writeln!(out, "Authentication key: {}", hex(&done.fingerprints[2]))?;
    if let Some((user, admin)) = &pin_text {
        writeln!(out, "User PIN:           {}", user.as_str())?;
        writeln!(out, "Admin PIN:          {}", admin.as_str())?;
    }
    if let (Some(path), Some(_)) = (&backup_file, &done.backup) {
        writeln!(out, "Key backup:         {} (passphrase-protected)", path.display())?;
    }
    writeln!(out, "\nSSH public key:\n{}\n", done.ssh_key)?;
    write!(out, "{}", done.certificate)?;
    Ok(())
}
