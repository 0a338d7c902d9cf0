//! `keystation ca token`: the token a cloud instance presents to an authority's AWS, GCP or
//! Azure provisioner, read from the instance's metadata service — what `step ca token
//! --provisioner aws|gcp|azure` prints.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::error::Error;

/// `keystation ca …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum CaCommand {
    /// Print the token this instance presents to the authority's cloud provisioner: its
    /// identity document or token read from the metadata service (IMDSv2 on AWS, the
    /// metadata server on GCP, IMDS on Azure), for `POST /1.0/sign`'s `ott`
    Token(TokenArgs),
}

/// The clouds whose instance identity `ca token` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cloud {
    /// An EC2 instance identity document (`AWS` provisioner).
    #[cfg(feature = "iid-aws")]
    Aws,
    /// A Compute Engine instance identity token (`GCP` provisioner).
    #[cfg(feature = "iid-gcp")]
    Gcp,
    /// A managed-identity token (`Azure` provisioner).
    #[cfg(feature = "iid-azure")]
    Azure,
}

/// `keystation ca token`
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The certificate's subject (AWS: required; GCP and Azure: the provider's token
    /// decides)
    pub subject: Option<String>,
    /// The provisioner's name at the authority
    #[arg(long, value_name = "NAME")]
    pub provisioner: String,
    /// The authority's URL, https://host[:port]
    #[arg(long = "ca-url", value_name = "URL")]
    pub ca_url: String,
    /// The provisioner's type (by default the provisioner's name, when it is aws, gcp or
    /// azure)
    #[arg(long = "type", value_enum, value_name = "CLOUD")]
    pub cloud: Option<Cloud>,
    /// A name for the certificate (repeat; AWS)
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// The metadata service's base URL (http://169.254.169.254 on AWS and Azure,
    /// http://metadata.google.internal on GCP)
    #[arg(long = "metadata-url", value_name = "URL")]
    pub metadata_url: Option<String>,
    /// AWS: carry the document's RSA-2048 PKCS#7 signature (/rsa2048) instead of the
    /// plain one
    #[arg(long)]
    pub pkcs7: bool,
    /// Azure: the token's resource (the provisioner's audience)
    #[arg(long, value_name = "URL")]
    pub resource: Option<String>,
}

/// How long the metadata service may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// Runs `keystation ca …`.
pub fn run(command: &CaCommand, out: &mut dyn Write) -> Result<(), Error> {
    match command {
        CaCommand::Token(args) => {
            let cloud = match args.cloud {
                Some(cloud) => cloud,
                None => Cloud::from_str(&args.provisioner, true).map_err(|_| {
                    usage(format!(
                        "say which cloud provisioner {:?} is with --type (aws, gcp, azure)",
                        args.provisioner
                    ))
                })?,
            };
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(
                    |e| Error::Io(std::io::Error::other(format!("starting the runtime: {e}"))),
                )?;
            let token = runtime.block_on(token(cloud, args))?;
            writeln!(out, "{token}")?;
            Ok(())
        }
    }
}

/// A fetcher for the metadata service: plain HTTP (it speaks nothing else), short timeout.
fn metadata_fetcher() -> Result<keystation_fetch::Fetcher, Error> {
    let options = keystation_fetch::FetchOptions {
        plain_http: keystation_fetch::PlainHttp::Allowed,
        timeout: METADATA_TIMEOUT,
        ..keystation_fetch::FetchOptions::default()
    };
    keystation_fetch::Fetcher::new(options).map_err(|e| usage(e.to_string()))
}

async fn token(cloud: Cloud, args: &TokenArgs) -> Result<String, Error> {
    let fetcher = metadata_fetcher()?;
    let failed = |e: &dyn std::fmt::Display| Error::InstanceIdentity(e.to_string());
    match cloud {
        #[cfg(feature = "iid-aws")]
        Cloud::Aws => {
            let base =
                args.metadata_url.as_deref().unwrap_or(keystation_iid_aws::DEFAULT_METADATA_URL);
            let subject = args.subject.clone().ok_or_else(|| {
                usage(
                    "an AWS token needs the certificate's SUBJECT (the instance ID, its private \
                     IP or DNS name, or a name of yours)",
                )
            })?;
            let mut request = keystation_iid_aws::IdentityTokenOptions::new(
                &args.ca_url,
                &args.provisioner,
                subject,
            );
            request.sans = args.sans.clone();
            if args.pkcs7 {
                request.form = keystation_iid_aws::SignatureForm::Pkcs7Rsa2048;
            }
            keystation_iid_aws::identity_token(&fetcher, base, &request)
                .await
                .map_err(|e| failed(&e))
        }
        #[cfg(feature = "iid-gcp")]
        Cloud::Gcp => {
            let base =
                args.metadata_url.as_deref().unwrap_or(keystation_iid_gcp::DEFAULT_METADATA_BASE);
            keystation_iid_gcp::identity_token(&fetcher, base, &args.ca_url, &args.provisioner)
                .await
                .map_err(|e| failed(&e))
        }
        #[cfg(feature = "iid-azure")]
        Cloud::Azure => {
            let base =
                args.metadata_url.as_deref().unwrap_or(keystation_iid_azure::DEFAULT_METADATA_BASE);
            let resource =
                args.resource.as_deref().unwrap_or(keystation_iid_azure::DEFAULT_AUDIENCE);
            keystation_iid_azure::identity_token(&fetcher, base, resource)
                .await
                .map_err(|e| failed(&e))
        }
    }
}
