//! `piv enroll`'s flow on the software YubiKey in process, against a loopback HTTPS
//! authority (hyper and rustls) whose `/1.0/sign-attested` runs the real YubiKey
//! attestation provisioner (keystation-provisioners) and issues with keystation-x509: the
//! pieces the authority serves with, without the server. The full command against
//! `keystation authority serve` is tests/authority_enroll.rs in the root package.
#![cfg(feature = "enroll")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_piv::PivCard;
use keystation_piv_ops::{Access, EnrollAuthority, EnrollOptions, Error, PivOperation};
use keystation_provisioners::{AttestationPolicy, Claims, YubiKeyAttestationProvisioner};
use keystation_softcard::SoftCard;
use keystation_x509::{Certificate, CertificateOptions, CertificateRequest, DistinguishedName};
use rcgen::{CertificateParams, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// The software card's default serial.
const SERIAL: u32 = 10_000_001;

/// The issuing CA: a P-256 key in host memory and its self-signed certificate.
struct Ca {
    signer: keystation_keygen::HostSigner,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Self {
        let mut keygen = keystation_keygen::SoftKeyGen::new(Box::new(
            keystation_keygen::SeededRandom::from_u64(5),
        ));
        let secret = keygen.generate_secret(KeyAlgorithm::NistP256).unwrap();
        let mut signer = keystation_keygen::HostSigner::new(&secret).unwrap();
        let validity =
            keystation_x509::Validity { not_before: 1_700_000_000, not_after: 4_000_000_000 };
        let options = CertificateOptions { ca: true, ..CertificateOptions::default() };
        let der = keystation_x509::self_signed_certificate(
            &mut signer,
            &DistinguishedName::common_name("enroll test CA"),
            &[1],
            validity,
            &options,
        )
        .unwrap();
        Self { signer, der }
    }
}

/// Provisioners by name, and the CA.
struct Authority {
    provisioners: Vec<YubiKeyAttestationProvisioner>,
    ca: Mutex<Ca>,
}

impl Authority {
    /// `/1.0/sign-attested` as the authority answers it.
    fn sign_attested(&self, body: &Value) -> (StatusCode, Value) {
        let error = |status: StatusCode, message: String| {
            (status, json!({"status": status.as_u16(), "message": message}))
        };
        let field = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
        let (Some(name), Some(csr), Some(slot), Some(f9)) = (
            field("/provisioner"),
            field("/csr"),
            field("/attestation/slotCertificate"),
            field("/attestation/intermediate"),
        ) else {
            return error(StatusCode::BAD_REQUEST, "missing field".into());
        };
        let Some(provisioner) =
            self.provisioners.iter().find(|p| keystation_core::Provisioner::name(*p) == name)
        else {
            return error(StatusCode::UNAUTHORIZED, format!("no provisioner {name:?}"));
        };
        let csr = CertificateRequest::from_pem(csr).unwrap();
        keystation_x509::verify_csr(&csr.to_der()).unwrap();
        let key = csr.public_key().unwrap();
        let slot = Certificate::from_pem(slot).unwrap();
        let f9 = Certificate::from_pem(f9).unwrap();
        let request = Request {
            credential: Credential::Attestation {
                slot_certificate: slot.der(),
                intermediate: f9.der(),
            },
            operation: Operation::SignX509,
            audience: "https://127.0.0.1/1.0/sign-attested",
            subject_key: Some(&key),
        };
        let grant = match provisioner.check(&request, &TrustedKeys::default(), SystemTime::now()) {
            Ok(grant) => grant,
            Err(refusal) => return error(StatusCode::FORBIDDEN, refusal.to_string()),
        };
        let unix = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let mut ca = self.ca.lock().unwrap();
        let ca_der = ca.der.clone();
        let leaf = keystation_x509::issue_certificate(
            &mut ca.signer,
            &ca_der,
            &key,
            &DistinguishedName::common_name(&grant.subject),
            &[2, 3],
            keystation_x509::Validity {
                not_before: unix(grant.not_before),
                not_after: unix(grant.not_after),
            },
            &CertificateOptions::default(),
        )
        .unwrap();
        let crt = keystation_x509::pem::encode("CERTIFICATE", &leaf);
        let ca_pem = keystation_x509::pem::encode("CERTIFICATE", &ca_der);
        (StatusCode::CREATED, json!({"crt": crt, "ca": ca_pem, "certChain": [crt, ca_pem]}))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

async fn answer(
    request: hyper::Request<Incoming>,
    authority: Arc<Authority>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let bytes = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(match path.as_str() {
        "/health" => json_response(StatusCode::OK, &json!({"status": "ok"})),
        "/1.0/sign-attested" => {
            let (status, body) = authority.sign_attested(&body);
            json_response(status, &body)
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"status": 404, "message": "no"})),
    })
}

/// The loopback HTTPS server, on its own thread and runtime; its TLS root as PEM.
struct Server {
    addr: SocketAddr,
    root_pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(authority: Authority) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_params(&ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let authority = Arc::new(authority);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else { continue };
                        let acceptor = acceptor.clone();
                        let authority = authority.clone();
                        tokio::spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let service = hyper::service::service_fn(move |request| {
                                answer(request, authority.clone())
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Self { addr, root_pem: root.pem(), stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `yk` allows touch never/cached in 9a/9c of the default software card; `yk-touch`
/// only touch `always`.
fn authority() -> Authority {
    let claims = Claims::default().resolve().unwrap();
    let root = keystation_softcard::piv::test_attestation_root_der();
    let yk = YubiKeyAttestationProvisioner::new(
        "yk",
        vec![root.clone()],
        AttestationPolicy {
            touch_policies: vec![TouchPolicy::Never, TouchPolicy::Cached],
            slots: vec![PivSlot::Authentication, PivSlot::Signature],
            serials: vec![SERIAL],
            ..AttestationPolicy::default()
        },
        claims,
    );
    let strict = YubiKeyAttestationProvisioner::new(
        "yk-touch",
        vec![root],
        AttestationPolicy { touch_policies: vec![TouchPolicy::Always], ..Default::default() },
        claims,
    );
    Authority { provisioners: vec![yk, strict], ca: Mutex::new(Ca::new()) }
}

struct Setup {
    dir: tempfile::TempDir,
    options: EnrollOptions,
}

fn setup(url: String, root_pem: &str, provisioner: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, root_pem).unwrap();
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "123456\n").unwrap();
    let options = EnrollOptions {
        authority: EnrollAuthority::SignAttested { url, provisioner: provisioner.into() },
        root,
        slot: PivSlot::Authentication,
        algorithm: KeyAlgorithm::NistP256,
        pin_policy: PinPolicy::Once,
        touch_policy: TouchPolicy::Cached,
        subject: None,
        access: Access { pin_file: Some(pin), management_key_file: None },
    };
    Setup { dir, options }
}

fn slot_certificate(card: &mut SoftCard) -> Option<Vec<u8>> {
    PivCard::select(card).unwrap().read_certificate(PivSlot::Authentication).unwrap()
}

#[test]
fn enrollment_writes_the_authoritys_certificate_and_a_refusal_keeps_the_old_one() {
    let server = Server::start(authority());
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let mut card = SoftCard::yubikey5(Default::default(), Some(3));

    let s = setup(url.clone(), &server.root_pem, "yk");
    let mut out = Vec::new();
    keystation_piv_ops::run(&mut card, &PivOperation::Enroll(s.options.clone()), &mut out)
        .unwrap_or_else(|e| panic!("{}", keystation_core::describe_chain(&e)));
    let said = String::from_utf8(out).unwrap();
    assert!(said.contains(&format!("Enrolled slot 9a with {url} (provisioner yk)")), "{said}");
    assert!(said.contains(&format!("Subject:          CN={SERIAL}")), "{said}");

    let written = slot_certificate(&mut card).expect("a certificate in 9a");
    let cert = Certificate::from_der(&written).unwrap();
    assert_eq!(cert.subject(), format!("CN={SERIAL}"));
    assert_eq!(cert.issuer(), "CN=enroll test CA");
    let on_card = PivCard::select(&mut card).unwrap().public_key(PivSlot::Authentication);
    assert_eq!(on_card.unwrap(), Some(cert.public_key().unwrap()));

    // touch `always` required: refused, with the authority's status and message, and
    // the certificate in 9a is still the one enrolled above.
    let strict = setup(url.clone(), &server.root_pem, "yk-touch");
    let err =
        keystation_piv_ops::run(&mut card, &PivOperation::Enroll(strict.options), &mut Vec::new())
            .unwrap_err();
    let Error::Authority { what, source } = &err else { panic!("{err:?}") };
    assert!(what.contains("refused to certify slot 9a"), "{what}");
    assert_eq!(source.status(), Some(403));
    let text = keystation_core::describe_chain(&err);
    assert!(
        text.contains("touch policy cached of slot 9a is not allowed (allowed: always)"),
        "{text}"
    );
    assert_eq!(slot_certificate(&mut card), Some(written.clone()));

    // An authority that does not answer stops the enrollment before the key is replaced.
    let key_before =
        PivCard::select(&mut card).unwrap().public_key(PivSlot::Authentication).unwrap();
    drop(server);
    let err = keystation_piv_ops::run(
        &mut card,
        &PivOperation::Enroll(s.options.clone()),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Authority { what, .. } if what.contains("not reachable")),
        "{err:?}"
    );
    let key_after =
        PivCard::select(&mut card).unwrap().public_key(PivSlot::Authentication).unwrap();
    assert_eq!(key_before, key_after, "the slot's key was replaced");
    assert_eq!(slot_certificate(&mut card), Some(written));
    drop(s.dir);
}

#[test]
fn a_root_that_did_not_issue_the_servers_certificate_is_refused_before_the_card_is_touched() {
    let server = Server::start(authority());
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let other_root = keystation_x509::pem::encode(
        "CERTIFICATE",
        &keystation_softcard::piv::test_attestation_root_der(),
    );
    let s = setup(url, &other_root, "yk");
    let mut card = SoftCard::yubikey5(Default::default(), Some(4));
    let err = keystation_piv_ops::run(&mut card, &PivOperation::Enroll(s.options), &mut Vec::new())
        .unwrap_err();
    let text = keystation_core::describe_chain(&err);
    assert!(text.contains("TLS handshake"), "{text}");
    let public = PivCard::select(&mut card).unwrap().public_key(PivSlot::Authentication);
    assert!(matches!(public, Ok(None) | Err(keystation_piv::Error::NoKey { .. })), "{public:?}");
}
