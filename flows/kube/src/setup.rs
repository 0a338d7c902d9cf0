//! `keystation kube setup`: put a kubeconfig context's client credential into a PIV slot
//! and write `proxy.yml` and `client.yml`.
//!
//! * Import (default): the context's client key and certificate go into the slot (Yubico
//!   IMPORT KEY and the slot's certificate object). The key is parsed into zeroizing
//!   memory, checked against the certificate, and never written anywhere else.
//! * `--generate`: the key is made on the card; a CSR signed by the card goes to the
//!   cluster's `certificates.k8s.io/v1` API (signer `kubernetes.io/kube-apiserver-client`),
//!   authenticated with the context's current credentials; with `--approve` keystation
//!   approves it itself (if the user may); the issued certificate goes into the slot.
//!   Until then the slot holds a self-signed placeholder, so tools show the new key.
//!
//! The output files hold no credentials: `proxy.yml` has the server, its CA and
//! keystation's slot and listen address; `client.yml` points kubectl at the proxy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_kubeconfig::{Kubeconfig, ProxyConfig, ResolvedContext};
use keystation_piv::PivCard;
use keystation_x509::{CertificateOptions, DistinguishedName, ExtendedKeyUsage};

use super::{KubeError, Server, slot_name};
use keystation_piv_ops::{Access, Pin};

/// The longest `--wait` accepted: 7 days. A CSR waits for a person to approve it, so
/// longer waits are mistakes; and a duration added to the clock must not overflow it.
pub const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The shortest time one certificates API request gets, however short `--wait` is.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one certificates API request may take: `wait` (`--wait`), but at least
/// [`MIN_REQUEST_TIMEOUT`] and at most [`REQUEST_TIMEOUT`](super::csr_api::REQUEST_TIMEOUT),
/// so that a stalled API server fails setup about as soon as the user asked to give up.
pub fn request_timeout(wait: Duration) -> Duration {
    wait.clamp(MIN_REQUEST_TIMEOUT, super::csr_api::REQUEST_TIMEOUT)
}

/// How to set up.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// The kubeconfig to read; default `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The context; default current-context.
    pub context: Option<String>,
    /// The slot for the key.
    pub slot: PivSlot,
    /// Generate on the card and get a certificate through the CSR API.
    pub generate: bool,
    /// The algorithm for `generate`.
    pub algorithm: KeyAlgorithm,
    /// The subject for `generate`; default the current client certificate's.
    pub subject: Option<String>,
    /// Approve the request ourselves.
    pub approve: bool,
    /// How long to wait for approval.
    pub wait: Duration,
    /// Requested certificate lifetime.
    pub expiration: Option<Duration>,
    /// Where to write proxy.yml and client.yml; default `~/.kube`.
    pub out_dir: Option<PathBuf>,
    /// Where the proxy will listen.
    pub listen: String,
    /// The key's PIN policy.
    pub pin_policy: PinPolicy,
    /// The key's touch policy.
    pub touch_policy: TouchPolicy,
    /// PIN and management key sources.
    pub access: Access,
    /// The card to put the key on.
    pub card: keystation_cards::CardSelection,
    /// Overwrite existing proxy.yml / client.yml.
    pub force: bool,
}

/// Runs the setup and prints what it did.
pub fn run(options: &SetupOptions, out: &mut dyn Write) -> Result<(), KubeError> {
    let listen = super::proxy::parse_listen(&options.listen)?;
    if options.wait > MAX_WAIT {
        return Err(KubeError::Usage(format!(
            "--wait {} is too long: at most {} seconds (7 days)",
            options.wait.as_secs(),
            MAX_WAIT.as_secs()
        )));
    }
    let kubeconfig = match &options.kubeconfig {
        Some(path) => Kubeconfig::load(&[path])?,
        None => Kubeconfig::load_default()?,
    };
    let context = kubeconfig.resolve(options.context.as_deref())?;
    let server = Server::from_cluster(&context.cluster)?;
    let out_dir = match &options.out_dir {
        Some(dir) => dir.clone(),
        None => {
            super::default_proxy_kubeconfig()?.parent().map(Path::to_path_buf).unwrap_or_default()
        }
    };
    let proxy_path = out_dir.join("proxy.yml");
    let client_path = out_dir.join("client.yml");
    if !options.force {
        for path in [&proxy_path, &client_path] {
            if path.exists() {
                return Err(KubeError::Usage(format!(
                    "{} exists: remove it, choose --out-dir, or pass --force",
                    path.display()
                )));
            }
        }
    }
    // Everything from the kubeconfig is checked before the card is touched.
    let import = if options.generate { None } else { Some(credential_to_import(&context)?) };

    let mut card = keystation_cards::open(&options.card, &|| false)?;
    let mut piv =
        PivCard::select(&mut card).map_err(KubeError::piv("cannot select the PIV application"))?;
    let mut pin = Pin::new(options.access.pin_file.clone());
    keystation_piv_ops::authenticate(&mut piv, &options.access, &mut pin)?;
    let name = slot_name(options.slot);
    let certificate = match import {
        Some((key, certificate)) => {
            piv.import_key(options.slot, &key, options.pin_policy, options.touch_policy)
                .map_err(KubeError::piv(format!("cannot import the key into slot {name}")))?;
            drop(key);
            piv.write_certificate(options.slot, certificate.der()).map_err(KubeError::piv(
                format!("cannot write the certificate into slot {name}"),
            ))?;
            writeln!(
                out,
                "Imported the client key and certificate of context {:?} into PIV slot {name}",
                context.name
            )?;
            certificate
        }
        None => generate(&mut piv, &mut pin, options, &context, &server, out)?,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if !certificate.is_valid_at(i64::try_from(now).unwrap_or(i64::MAX)) {
        writeln!(
            out,
            "WARNING: the certificate is not valid now (not after {})",
            keystation_x509::rfc3339(certificate.not_after())
        )?;
    }
    writeln!(out, "  Subject:    {}", certificate.subject())?;
    writeln!(out, "  Issuer:     {}", certificate.issuer())?;
    writeln!(out, "  Not after:  {}", keystation_x509::rfc3339(certificate.not_after()))?;

    let listen_text = listen.to_string();
    let proxy_yaml = keystation_kubeconfig::write_proxy_config(&ProxyConfig {
        context: context.name.clone(),
        server: context.cluster.server.clone(),
        ca_pem: context.cluster.ca_pem.clone(),
        tls_server_name: context.cluster.tls_server_name.clone(),
        slot: name.clone(),
        listen: listen_text.clone(),
    })?;
    let client_yaml = keystation_kubeconfig::write_client_config(
        &format!("http://{listen_text}"),
        &context.name,
        context.namespace.as_deref(),
    )?;
    std::fs::create_dir_all(&out_dir).map_err(|source| KubeError::File {
        what: "cannot create",
        path: out_dir.clone(),
        source,
    })?;
    for (path, yaml) in [(&proxy_path, proxy_yaml), (&client_path, client_yaml)] {
        std::fs::write(path, yaml).map_err(|source| KubeError::File {
            what: "cannot write",
            path: path.clone(),
            source,
        })?;
        writeln!(out, "Wrote {}", path.display())?;
    }
    writeln!(
        out,
        "Next: keystation kube proxy --kubeconfig {} ; then KUBECONFIG={} kubectl …",
        proxy_path.display(),
        client_path.display()
    )?;
    if !options.generate {
        writeln!(
            out,
            "The key is now on the card: remove client-key-data from {} (keystation did not change it).",
            options
                .kubeconfig
                .as_ref()
                .map_or_else(|| "your kubeconfig".into(), |p| p.display().to_string())
        )?;
    }
    Ok(())
}

/// The context's client key and certificate, parsed and checked to belong together.
fn credential_to_import(
    context: &ResolvedContext,
) -> Result<(keystation_core::SecretKey, keystation_x509::Certificate), KubeError> {
    let user = &context.user;
    let user_name = user.name.clone().unwrap_or_default();
    let (Some(cert_pem), Some(key_pem)) = (&user.client_certificate_pem, &user.client_key_pem)
    else {
        if let Some(plugin) = &user.plugin {
            return Err(KubeError::Usage(format!(
                "context {:?}: user {user_name:?} authenticates with {} and has no client key to import: use --generate",
                context.name,
                plugin.describe()
            )));
        }
        return Err(KubeError::Usage(format!(
            "context {:?}: user {user_name:?} has no client certificate and key to import: use --generate",
            context.name
        )));
    };
    let certificate = keystation_x509::Certificate::from_pem(&String::from_utf8_lossy(cert_pem))
        .map_err(KubeError::x509(format!("user {user_name:?}: the client certificate")))?;
    let key_text = zeroize::Zeroizing::new(String::from_utf8_lossy(key_pem.expose()).into_owned());
    let key = keystation_x509::private_key::parse_pem(&key_text)
        .map_err(KubeError::x509(format!("user {user_name:?}: the client key")))?;
    let public = keystation_keygen::HostSigner::new(&key).map_err(|e| {
        KubeError::Usage(format!("user {user_name:?}: the client key is unusable: {e}"))
    })?;
    let public = keystation_core::keygen::Signer::public_key(&public).clone();
    let in_cert =
        certificate.public_key().map_err(KubeError::x509("the client certificate's key"))?;
    if public != in_cert {
        return Err(KubeError::Usage(format!(
            "user {user_name:?}: the client key does not belong to the client certificate"
        )));
    }
    Ok((key, certificate))
}

/// The `--generate` path; returns the certificate now in the slot.
fn generate(
    piv: &mut PivCard<'_>,
    pin: &mut Pin,
    options: &SetupOptions,
    context: &ResolvedContext,
    server: &Server,
    out: &mut dyn Write,
) -> Result<keystation_x509::Certificate, KubeError> {
    let name = slot_name(options.slot);
    let subject = match (&options.subject, &context.user.client_certificate_pem) {
        (Some(subject), _) => subject.clone(),
        (None, Some(pem)) => keystation_x509::Certificate::from_pem(&String::from_utf8_lossy(pem))
            .map_err(KubeError::x509("the current client certificate"))?
            .subject()
            .to_owned(),
        (None, None) => {
            return Err(KubeError::Usage(
                "give --subject (e.g. \"CN=alice,O=developers\"): the context has no client certificate to copy it from".into(),
            ));
        }
    };
    let subject = DistinguishedName::parse(&subject).map_err(KubeError::x509("bad --subject"))?;
    // The API client is made first: a context without usable credentials fails before
    // the card changes.
    let api = super::csr_api::ApiClient::new(server, &context.user)?
        .with_timeout(request_timeout(options.wait));
    let public = piv
        .generate(options.slot, options.algorithm, options.pin_policy, options.touch_policy)
        .map_err(KubeError::piv(format!("cannot generate a key in slot {name}")))?;
    writeln!(out, "Generated a {} key on the card in PIV slot {name}", public.algorithm())?;
    pin.verify(piv)?;
    let (csr, placeholder) = {
        let mut signer = keystation_piv::PivSigner::new(piv, options.slot, public.clone());
        let client = CertificateOptions {
            extended_key_usage: vec![ExtendedKeyUsage::ClientAuth],
            ..CertificateOptions::default()
        };
        let csr = keystation_x509::build_csr(&mut signer, &subject, &client)
            .map_err(KubeError::x509("the card could not sign the request"))?;
        let placeholder = keystation_x509::self_signed_certificate(
            &mut signer,
            &subject,
            &keystation_piv_ops::random_serial()?,
            keystation_piv_ops::validity_days(1),
            &client,
        )
        .map_err(KubeError::x509("the card could not sign the placeholder certificate"))?;
        (csr, placeholder)
    };
    piv.write_certificate(options.slot, &placeholder)
        .map_err(KubeError::piv(format!("cannot write the certificate into slot {name}")))?;
    let request_name =
        format!("keystation-{}-{}", name, hex(&keystation_piv_ops::random_serial()?[..6]));
    let csr_pem = keystation_x509::pem::encode("CERTIFICATE REQUEST", &csr);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| {
            KubeError::Io { what: "cannot start the async runtime".into(), source }
        })?;
    let issued = runtime.block_on(async {
        api.create(&request_name, &csr_pem, options.expiration).await?;
        writeln!(out, "Created CertificateSigningRequest {request_name}; waiting for approval")
            .map_err(|source| KubeError::Io { what: "cannot write output".into(), source })?;
        if options.approve {
            api.approve(&request_name).await?;
        }
        api.wait_for_certificate(&request_name, options.wait).await
    })?;
    let issued = keystation_x509::Certificate::from_pem(&issued)
        .map_err(KubeError::x509("the issued certificate does not parse"))?;
    let issued_key =
        issued.public_key().map_err(KubeError::x509("the issued certificate's key"))?;
    if issued_key != public {
        return Err(KubeError::Csr(format!(
            "the certificate issued for {request_name} is not for the key on the card"
        )));
    }
    piv.write_certificate(options.slot, issued.der())
        .map_err(KubeError::piv(format!("cannot write the certificate into slot {name}")))?;
    writeln!(out, "Certificate issued for {request_name} and written to slot {name}")?;
    Ok(issued)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_requests_get_wait_but_between_5_and_30_seconds() {
        let secs = |s| request_timeout(Duration::from_secs(s)).as_secs();
        assert_eq!((secs(0), secs(1), secs(5)), (5, 5, 5));
        assert_eq!((secs(20), secs(30), secs(300)), (20, 30, 30));
        assert_eq!(request_timeout(Duration::MAX).as_secs(), 30);
    }
}
