//! `keystation piv …`: the PIV operations of keystation-piv-ops on the one card in a PC/SC
//! reader (`--reader` narrows the readers).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_piv_ops::{
    AttestOptions, CertificateOperation, GenerateOptions, PivOperation, parse_slot_name,
};

use super::options::piv::{AccessArgs, parse_algorithm, parse_pin_policy, parse_touch_policy};
use crate::Error;
use crate::config::Settings;

/// `keystation piv …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum PivCommand {
    /// Show the PIV application: version, serial, PIN tries, management key, and each
    /// slot's key and certificate.
    Info,
    /// Generate a key on the card in SLOT and print its public key (PEM).
    Generate(GenerateArgs),
    /// Certificates in slots.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Attest that the key in SLOT was generated on the card, verify the chain to the
    /// Yubico roots (or --roots), and print what the attestation says.
    Attest(AttestArgs),
    /// Enroll SLOT with a keystation authority: generate a key on the card, attest it,
    /// have the authority certify it — its YubiKey attestation provisioner
    /// (--authority, --provisioner) or an ACME provisioner's device-attest-01 (--acme) —
    /// with a CSR signed by the card, and write the certificate to the slot.
    #[cfg(feature = "enroll")]
    Enroll(EnrollArgs),
    /// Reset the PIV application: every key and certificate goes; PIN 123456, PUK
    /// 12345678, default management key.
    Reset {
        /// Really reset.
        #[arg(long)]
        force: bool,
    },
}

/// `keystation piv generate`
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The slot: 9a, 9c, 9d, 9e or a retired slot 82-95
    #[arg(value_parser = parse_slot_arg)]
    pub slot: PivSlot,
    /// p256, p384, rsa2048, rsa3072, rsa4096, ed25519 or x25519 (the last two on
    /// YubiKey 5.7)
    #[arg(long = "key-algorithm", id = "key_algorithm", default_value = "p256", value_parser = parse_algorithm)]
    pub algorithm: KeyAlgorithm,
    /// default, never, once or always
    #[arg(long = "key-pin-policy", id = "key_pin_policy", default_value = "default", value_parser = parse_pin_policy)]
    pub pin_policy: PinPolicy,
    /// default, never, always or cached
    #[arg(long = "key-touch-policy", id = "key_touch_policy", default_value = "default", value_parser = parse_touch_policy)]
    pub touch_policy: TouchPolicy,
    /// Write the public key here instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// PIN and management key.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// `keystation piv enroll`: `--authority URL --provisioner NAME` (keystation's
/// `/1.0/sign-attested`) or `--acme DIRECTORY` (ACME device-attest-01), and `--root`.
#[cfg(feature = "enroll")]
#[derive(Debug, Clone, Args)]
pub struct EnrollArgs {
    /// The authority's URL, https://host[:port], whose YubiKey attestation provisioner
    /// (--provisioner) certifies the key
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "acme",
        conflicts_with = "acme",
        requires = "provisioner"
    )]
    pub authority: Option<String>,
    /// Enroll through ACME device-attest-01 instead: the directory of an ACME provisioner,
    /// https://host[:port]/acme/NAME/directory
    #[arg(long, value_name = "URL")]
    pub acme: Option<String>,
    /// The authority's root certificate (PEM): the only certificate trusted for its TLS
    #[arg(long, value_name = "FILE")]
    pub root: PathBuf,
    /// The authority's YubiKey attestation provisioner (with --authority)
    #[arg(long, value_name = "NAME", requires = "authority", conflicts_with = "acme")]
    pub provisioner: Option<String>,
    /// The slot: 9a, 9c, 9d, 9e or a retired slot 82-95
    #[arg(long, default_value = "9a", value_parser = parse_slot_arg)]
    pub slot: PivSlot,
    /// p256 (eccp256), p384, rsa2048, rsa3072, rsa4096, ed25519 or x25519 (the last two
    /// on YubiKey 5.7)
    #[arg(long = "algorithm", alias = "key-algorithm", value_name = "ALGORITHM", default_value = "p256", value_parser = parse_algorithm)]
    pub algorithm: KeyAlgorithm,
    /// default, never, once or always
    #[arg(long = "pin-policy", alias = "key-pin-policy", value_name = "POLICY", default_value = "default", value_parser = parse_pin_policy)]
    pub pin_policy: PinPolicy,
    /// default, never, always or cached
    #[arg(long = "touch-policy", alias = "key-touch-policy", value_name = "POLICY", default_value = "default", value_parser = parse_touch_policy)]
    pub touch_policy: TouchPolicy,
    /// The request's subject, "CN=alice,O=team" or a bare common name [default: the
    /// card's serial]
    #[arg(long)]
    pub subject: Option<String>,
    /// PIN and management key.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// `keystation piv certificate …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum CertificateCommand {
    /// Write a certificate (PEM or DER file) into SLOT.
    Import {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// The certificate file.
        file: PathBuf,
        /// Store it gzip-compressed (for large certificates)
        #[arg(long)]
        compress: bool,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Print the certificate in SLOT (PEM, or DER with --der).
    Export {
        /// The slot (f9 for the attestation certificate).
        #[arg(value_parser = parse_any_slot)]
        slot: PivSlot,
        /// Write here instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// DER instead of PEM (needs --out)
        #[arg(long, requires = "out")]
        der: bool,
    },
    /// Make a certificate signing request (PKCS#10) signed by the key in SLOT.
    Request {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// Subject, e.g. "CN=alice,O=team"
        #[arg(long)]
        subject: String,
        /// The slot's public key (PEM, as `piv generate` prints it), for cards that
        /// cannot tell it (no GET METADATA, no certificate in the slot)
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Write here instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Make a self-signed certificate for the key in SLOT and store it there.
    Generate {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// Subject, e.g. "CN=alice"
        #[arg(long)]
        subject: String,
        /// The slot's public key (PEM, as `piv generate` prints it), for cards that
        /// cannot tell it (no GET METADATA, no certificate in the slot)
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Days of validity
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
    /// Delete the certificate in SLOT.
    Delete {
        /// The slot.
        #[arg(value_parser = parse_slot_arg)]
        slot: PivSlot,
        /// PIN and management key.
        #[command(flatten)]
        access: AccessArgs,
    },
}

/// `keystation piv attest`
#[derive(Debug, Clone, Args)]
pub struct AttestArgs {
    /// The slot.
    #[arg(value_parser = parse_slot_arg)]
    pub slot: PivSlot,
    /// Trust these root certificates (PEM) instead of the Yubico roots
    #[arg(long, value_name = "FILE")]
    pub roots: Option<PathBuf>,
    /// Intermediate certificates (PEM) between the device certificate and the root
    #[arg(long, value_name = "FILE")]
    pub intermediates: Option<PathBuf>,
    /// Write the attestation and device certificates (PEM) here
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// A slot as `piv` commands take it: 9a, 9c, 9d, 9e or a retired slot.
pub(crate) fn parse_slot_arg(text: &str) -> Result<PivSlot, String> {
    parse_slot_name(text).map_err(|e| e.to_string())
}

/// A slot, or `f9` for the attestation slot.
fn parse_any_slot(text: &str) -> Result<PivSlot, String> {
    if text.eq_ignore_ascii_case("f9") {
        return Ok(PivSlot::Attestation);
    }
    parse_slot_arg(text)
}

impl PivCommand {
    /// The operation the command asks for.
    fn operation(&self) -> PivOperation {
        match self {
            Self::Info => PivOperation::Info,
            Self::Generate(args) => PivOperation::Generate(GenerateOptions {
                slot: args.slot,
                algorithm: args.algorithm,
                pin_policy: args.pin_policy,
                touch_policy: args.touch_policy,
                out: args.out.clone(),
                access: (&args.access).into(),
            }),
            Self::Certificate(command) => PivOperation::Certificate(command.operation()),
            Self::Attest(args) => PivOperation::Attest(AttestOptions {
                slot: args.slot,
                roots: args.roots.clone(),
                intermediates: args.intermediates.clone(),
                out: args.out.clone(),
            }),
            #[cfg(feature = "enroll")]
            Self::Enroll(args) => PivOperation::Enroll(keystation_piv_ops::EnrollOptions {
                authority: args.enroll_authority(),
                root: args.root.clone(),
                slot: args.slot,
                algorithm: args.algorithm,
                pin_policy: args.pin_policy,
                touch_policy: args.touch_policy,
                subject: args.subject.clone(),
                access: (&args.access).into(),
            }),
            Self::Reset { force } => PivOperation::Reset { force: *force },
        }
    }
}

#[cfg(feature = "enroll")]
impl EnrollArgs {
    /// Which authority, asked how. clap has checked that `--acme` or `--authority` with
    /// `--provisioner` is given; were neither, the empty URL is refused by the client.
    fn enroll_authority(&self) -> keystation_piv_ops::EnrollAuthority {
        match (&self.acme, &self.authority, &self.provisioner) {
            (Some(directory), _, _) => {
                keystation_piv_ops::EnrollAuthority::Acme { directory: directory.clone() }
            }
            (None, url, provisioner) => keystation_piv_ops::EnrollAuthority::SignAttested {
                url: url.clone().unwrap_or_default(),
                provisioner: provisioner.clone().unwrap_or_default(),
            },
        }
    }
}

impl CertificateCommand {
    fn operation(&self) -> CertificateOperation {
        match self {
            Self::Import { slot, file, compress, access } => CertificateOperation::Import {
                slot: *slot,
                file: file.clone(),
                compress: *compress,
                access: access.into(),
            },
            Self::Export { slot, out, der } => {
                CertificateOperation::Export { slot: *slot, out: out.clone(), der: *der }
            }
            Self::Request { slot, subject, public_key, out, access } => {
                CertificateOperation::Request {
                    slot: *slot,
                    subject: subject.clone(),
                    public_key: public_key.clone(),
                    out: out.clone(),
                    access: access.into(),
                }
            }
            Self::Generate { slot, subject, public_key, days, access } => {
                CertificateOperation::Generate {
                    slot: *slot,
                    subject: subject.clone(),
                    public_key: public_key.clone(),
                    days: *days,
                    access: access.into(),
                }
            }
            Self::Delete { slot, access } => {
                CertificateOperation::Delete { slot: *slot, access: access.into() }
            }
        }
    }
}

/// Runs a `piv` command on the one card present.
pub fn run(command: &PivCommand, settings: &Settings, out: &mut dyn Write) -> Result<(), Error> {
    let operation = command.operation();
    let selection = super::options::pcsc_card(settings);
    let mut card = keystation_cards::open(&selection, &|| false)?;
    keystation_piv_ops::run(&mut card, &operation, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use keystation_core::key::RsaBits;

    use super::*;

    #[test]
    fn names_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!(parse_algorithm("ECCP256"), Ok(KeyAlgorithm::NistP256));
        assert_eq!(parse_algorithm("rsa2048"), Ok(KeyAlgorithm::Rsa(RsaBits::Rsa2048)));
        assert!(parse_algorithm("dsa").unwrap_err().contains("p256"));
        assert_eq!(parse_pin_policy("Once"), Ok(PinPolicy::Once));
        assert!(parse_pin_policy("sometimes").unwrap_err().contains("always"));
        assert_eq!(parse_touch_policy("cached"), Ok(TouchPolicy::Cached));
        assert_eq!(parse_any_slot("F9"), Ok(PivSlot::Attestation));
        assert!(parse_slot_arg("f9").is_err());
    }

    #[cfg(feature = "enroll")]
    #[test]
    fn enroll_takes_an_acme_directory_or_an_authority_with_its_provisioner() {
        use clap::Parser;
        use keystation_piv_ops::EnrollAuthority;

        #[derive(Debug, Parser)]
        struct Enroll {
            #[command(flatten)]
            args: EnrollArgs,
        }
        let parse = |args: &[&str]| {
            Enroll::try_parse_from([&["enroll", "--root", "root.crt"], args].concat())
                .map(|e| e.args.enroll_authority())
        };
        let directory = "https://127.0.0.1:9443/acme/attest/directory";
        assert_eq!(
            parse(&["--acme", directory]).unwrap(),
            EnrollAuthority::Acme { directory: directory.into() }
        );
        assert_eq!(
            parse(&["--authority", "https://ca:9443", "--provisioner", "yk"]).unwrap(),
            EnrollAuthority::SignAttested {
                url: "https://ca:9443".into(),
                provisioner: "yk".into()
            }
        );
        for refused in [
            &[][..],
            &["--authority", "https://ca:9443"],
            &["--provisioner", "yk"],
            &["--acme", directory, "--provisioner", "yk"],
            &["--acme", directory, "--authority", "https://ca:9443", "--provisioner", "yk"],
        ] {
            assert!(parse(refused).is_err(), "{refused:?} was accepted");
        }
    }
}
