//! [`AcmeClient`]: the directory, nonces, the account, and the order's resources.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keystation_jose::{Algorithm, PrivateJwk};
use serde::de::DeserializeOwned;

use crate::device_attest::{self, CoseAlgorithm};
use crate::http::{Answer, Method, Transport};
use crate::jws::{self, Signer};
use crate::objects::{
    Account, AccountBody, Authorization, Challenge, Directory, Finalize, Identifier, NewAccount,
    NewOrder, Order, Problem, Status,
};
use crate::{Error, retry_after};

/// How long one request may take (connection, handshake, request, whole answer) unless
/// [`ClientOptions::request_timeout`] says otherwise.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest wait between two polls, whatever `Retry-After` says: a server answering
/// `Retry-After: 0` is not asked in a busy loop.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// At most this many nonces are kept for later requests (RFC 8555 §7.2: every answer
/// carries one; a client needs one per request).
const NONCE_POOL: usize = 8;

/// `application/json`, what every answer but the certificate is.
const JSON: &str = "application/json";

/// `application/pem-certificate-chain` (RFC 8555 §9.1): the certificate download.
const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// How the client waits and polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The limit on one request.
    pub request_timeout: Duration,
    /// The wait between polls when the server sends no `Retry-After` (RFC 8555 §7.5.1
    /// asks clients to poll "at a reasonable rate").
    pub poll_interval: Duration,
    /// The longest a poll ([`AcmeClient::poll_authorization`], [`AcmeClient::poll_order`])
    /// goes on before giving up with [`Error::PollTimeout`].
    pub poll_limit: Duration,
}

impl Default for ClientOptions {
    /// 30 s per request; polls every second, for at most two minutes.
    fn default() -> Self {
        Self {
            request_timeout: REQUEST_TIMEOUT,
            poll_interval: Duration::from_secs(1),
            poll_limit: Duration::from_secs(120),
        }
    }
}

impl ClientOptions {
    /// The same options with the given polling.
    #[must_use]
    pub fn with_polling(mut self, interval: Duration, limit: Duration) -> Self {
        self.poll_interval = interval;
        self.poll_limit = limit;
        self
    }

    /// The same options with the given request timeout.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// The issued certificate chain (RFC 8555 §7.4.2): the end-entity certificate first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateChain {
    /// The chain as the server sent it (`application/pem-certificate-chain`).
    pub pem: String,
    /// Each certificate's DER, in the server's order.
    pub certificates: Vec<Vec<u8>>,
}

impl CertificateChain {
    /// The end-entity certificate (DER).
    pub fn leaf(&self) -> &[u8] {
        self.certificates.first().map_or(&[], Vec::as_slice)
    }
}

/// The account's key and URL (the `kid` of its requests).
struct AccountKey {
    key: PrivateJwk,
    account: Account,
}

/// An async ACME client of one server (RFC 8555 §7), trusting only the roots it is
/// given.
///
/// Made with [`connect`](Self::connect), which reads the directory; then
/// [`new_account`](Self::new_account) (a fresh ES256 key in memory, never written
/// anywhere), [`new_order`](Self::new_order), the order's authorizations and their
/// challenges, [`finalize`](Self::finalize), and the certificate. Every POST is a JWS
/// (RFC 8555 §6.2) with a fresh nonce; a `badNonce` refusal is retried once with the
/// nonce that refusal carries (§6.5).
pub struct AcmeClient {
    transport: Transport,
    options: ClientOptions,
    directory_url: String,
    directory: Directory,
    nonces: Mutex<Vec<String>>,
    account: Option<AccountKey>,
}

impl core::fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcmeClient")
            .field("directory", &self.directory_url)
            .field("account", &self.account.as_ref().map(|a| &a.account.url))
            .finish_non_exhaustive()
    }
}

/// What [`AcmeClient::post`] signs as.
enum As<'a> {
    /// The account key embedded as `jwk` (newAccount).
    NewAccount(&'a PrivateJwk),
    /// The account, by `kid`.
    Account,
}

impl AcmeClient {
    /// Connects to the ACME server whose directory is at `directory_url`
    /// (`https://host[:port]/acme/{provisioner}/directory` on a keystation authority),
    /// trusting only the certificates of `root_pem` for its TLS, and reads the directory
    /// (RFC 8555 §7.1.1).
    pub async fn connect(directory_url: &str, root_pem: &str) -> Result<Self, Error> {
        Self::connect_with(directory_url, root_pem, ClientOptions::default()).await
    }

    /// [`connect`](Self::connect) with the given timeouts and polling.
    pub async fn connect_with(
        directory_url: &str,
        root_pem: &str,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        crate::http::Target::parse(directory_url)?;
        let transport = Transport::new(root_pem, options.request_timeout)?;
        let answer = transport.send(Method::Get, directory_url, JSON, None).await?;
        if !answer.is_success() {
            return Err(server_error(directory_url, &answer));
        }
        let directory: Directory = decode(directory_url, &answer.body)?;
        let client = Self {
            transport,
            options,
            directory_url: directory_url.to_owned(),
            directory,
            nonces: Mutex::new(Vec::new()),
            account: None,
        };
        client.remember_nonce(&answer);
        Ok(client)
    }

    /// The directory's URL.
    pub fn directory_url(&self) -> &str {
        &self.directory_url
    }

    /// The directory read by [`connect`](Self::connect).
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The timeouts and polling in use.
    pub fn options(&self) -> ClientOptions {
        self.options
    }

    /// The account, once [`new_account`](Self::new_account) made it.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref().map(|a| &a.account)
    }

    /// Creates an account (RFC 8555 §7.3) with a fresh ES256 key held only in memory
    /// (zeroized when the client is dropped). `contact` is a list of URLs
    /// (`mailto:…`); `terms_of_service_agreed` says the user agreed to the terms of the
    /// directory's `meta`.
    pub async fn new_account(
        &mut self,
        contact: &[String],
        terms_of_service_agreed: bool,
    ) -> Result<Account, Error> {
        let key = PrivateJwk::generate(Algorithm::Es256).map_err(Error::Signing)?;
        self.new_account_with_key(key, contact, terms_of_service_agreed).await
    }

    /// [`new_account`](Self::new_account) with the caller's key (ES256, ES384, EdDSA or
    /// RS256). A server that already knows the key answers with that account (§7.3.1).
    pub async fn new_account_with_key(
        &mut self,
        key: PrivateJwk,
        contact: &[String],
        terms_of_service_agreed: bool,
    ) -> Result<Account, Error> {
        if self.directory.meta.as_ref().is_some_and(|m| m.external_account_required) {
            return Err(Error::ExternalAccountRequired { url: self.directory_url.clone() });
        }
        let url = self.directory.new_account.clone();
        let payload = encode(&NewAccount { contact, terms_of_service_agreed })?;
        let answer = self.post(&url, Some(&payload), As::NewAccount(&key), JSON).await?;
        let location = answer.location.clone().ok_or_else(|| Error::BadResponse {
            url: url.clone(),
            reason: "the account has no Location (its URL)".into(),
        })?;
        let body: AccountBody = decode(&url, &answer.body)?;
        if body.status != Status::Valid {
            return Err(Error::Failed {
                what: "account",
                url: location,
                status: body.status,
                problem: None,
            });
        }
        let account = Account {
            url: location,
            status: body.status,
            contact: body.contact.unwrap_or_default(),
            orders: body.orders,
        };
        tracing::debug!(account = %account.url, "ACME account created");
        self.account = Some(AccountKey { key, account: account.clone() });
        Ok(account)
    }

    /// The key authorization of a challenge's `token` (RFC 8555 §8.1): `token '.'
    /// base64url(SHA-256 JWK thumbprint of the account key)` (RFC 7638).
    pub fn key_authorization(&self, token: &str) -> Result<String, Error> {
        let account = self.account.as_ref().ok_or(Error::NoAccount)?;
        let thumbprint = jws::bare_public_jwk(&account.key)?.thumbprint();
        Ok(format!("{token}.{thumbprint}"))
    }

    /// Creates an order for `identifiers` (RFC 8555 §7.4).
    pub async fn new_order(&self, identifiers: &[Identifier]) -> Result<Order, Error> {
        let url = self.directory.new_order.clone();
        let payload = encode(&NewOrder { identifiers })?;
        let answer = self.post(&url, Some(&payload), As::Account, JSON).await?;
        let location = answer.location.clone().ok_or_else(|| Error::BadResponse {
            url: url.clone(),
            reason: "the order has no Location (its URL)".into(),
        })?;
        let mut order: Order = decode(&url, &answer.body)?;
        order.url = location;
        Ok(order)
    }

    /// The order at `url` (POST-as-GET, RFC 8555 §6.3).
    pub async fn order(&self, url: &str) -> Result<Order, Error> {
        Ok(self.fetch_order(url).await?.0)
    }

    /// The authorization at `url` (POST-as-GET, RFC 8555 §7.5).
    pub async fn authorization(&self, url: &str) -> Result<Authorization, Error> {
        Ok(self.fetch_authorization(url).await?.0)
    }

    /// Responds to the challenge at `url` with `payload` (JSON text: `{}` for http-01,
    /// dns-01 and tls-alpn-01, RFC 8555 §7.5.1), and returns the challenge as the server
    /// then describes it.
    pub async fn respond(&self, url: &str, payload: &str) -> Result<Challenge, Error> {
        let answer = self.post(url, Some(payload.as_bytes()), As::Account, JSON).await?;
        decode(url, &answer.body)
    }

    /// Responds to a device-attest-01 challenge at `url` (draft-acme-device-attest §5) in
    /// step's format: `{"attObj": …}` with the attested key's `signature` over
    /// [`key_authorization`](Self::key_authorization) made with `alg`, and the
    /// attestation chain `x5c` (DER, the attested key's certificate first). See
    /// [`device_attest`](crate::device_attest).
    pub async fn respond_device_attest(
        &self,
        url: &str,
        alg: CoseAlgorithm,
        signature: &[u8],
        x5c: &[Vec<u8>],
    ) -> Result<Challenge, Error> {
        let object = device_attest::step_attestation_object(alg, signature, x5c);
        let payload = serde_json::json!({ "attObj": URL_SAFE_NO_PAD.encode(object) });
        self.respond(url, &payload.to_string()).await
    }

    /// Polls the authorization at `url` until it is no longer `pending` (RFC 8555
    /// §7.5.1), honouring `Retry-After`, for at most the options' poll limit. A `valid`
    /// authorization is returned; any other end is [`Error::Failed`] with the problem of
    /// its failed challenge.
    pub async fn poll_authorization(&self, url: &str) -> Result<Authorization, Error> {
        let started = Instant::now();
        loop {
            let (authorization, retry) = self.fetch_authorization(url).await?;
            match authorization.status {
                Status::Valid => return Ok(authorization),
                Status::Pending | Status::Processing => {
                    self.pause(url, started, retry, authorization.status).await?;
                }
                status => {
                    return Err(Error::Failed {
                        what: "authorization",
                        url: url.to_owned(),
                        status,
                        problem: authorization.problem().cloned(),
                    });
                }
            }
        }
    }

    /// Polls the order at `url` while it is `pending` or `processing` (RFC 8555 §7.4),
    /// honouring `Retry-After`, for at most the options' poll limit: a `ready` or `valid`
    /// order is returned, an `invalid` one is [`Error::Failed`] with its `error`.
    pub async fn poll_order(&self, url: &str) -> Result<Order, Error> {
        let started = Instant::now();
        loop {
            let (order, retry) = self.fetch_order(url).await?;
            match order.status {
                Status::Ready | Status::Valid => return Ok(order),
                Status::Pending | Status::Processing => {
                    self.pause(url, started, retry, order.status).await?;
                }
                status => {
                    return Err(Error::Failed {
                        what: "order",
                        url: url.to_owned(),
                        status,
                        problem: order.error,
                    });
                }
            }
        }
    }

    /// Finalizes `order` with a PKCS#10 request (RFC 8555 §7.4; `csr_der`, sent
    /// base64url) and returns the order as the server then describes it (`processing` or
    /// `valid`).
    pub async fn finalize(&self, order: &Order, csr_der: &[u8]) -> Result<Order, Error> {
        let payload = encode(&Finalize { csr: URL_SAFE_NO_PAD.encode(csr_der) })?;
        let answer = self.post(&order.finalize, Some(&payload), As::Account, JSON).await?;
        let mut finalized: Order = decode(&order.finalize, &answer.body)?;
        finalized.url = answer.location.clone().unwrap_or_else(|| order.url.clone());
        Ok(finalized)
    }

    /// Downloads the certificate chain at `url` (RFC 8555 §7.4.2, POST-as-GET with
    /// `Accept: application/pem-certificate-chain`).
    pub async fn certificate(&self, url: &str) -> Result<CertificateChain, Error> {
        let answer = self.post(url, None, As::Account, PEM_CHAIN).await?;
        let bad = |reason: String| Error::BadResponse { url: url.to_owned(), reason };
        let pem = String::from_utf8(answer.body)
            .map_err(|_| bad("the certificate chain is not text".into()))?;
        let blocks = keystation_x509::pem::decode_all(&pem)
            .map_err(|e| bad(format!("the certificate chain is not PEM: {e}")))?;
        if let Some(other) = blocks.iter().find(|b| b.label != "CERTIFICATE") {
            return Err(bad(format!("the chain holds a {} block", other.label)));
        }
        let certificates: Vec<Vec<u8>> = blocks.iter().map(|b| b.der.clone()).collect();
        if certificates.is_empty() {
            return Err(bad("the chain holds no certificate".into()));
        }
        Ok(CertificateChain { pem, certificates })
    }

    /// [`finalize`](Self::finalize), [`poll_order`](Self::poll_order) until `valid`, and
    /// [`certificate`](Self::certificate): the issued chain for a `ready` order.
    pub async fn finalize_and_download(
        &self,
        order: &Order,
        csr_der: &[u8],
    ) -> Result<CertificateChain, Error> {
        let mut finalized = self.finalize(order, csr_der).await?;
        if finalized.status != Status::Valid {
            finalized = self.poll_order(&finalized.url).await?;
        }
        let certificate = match (finalized.status, &finalized.certificate) {
            (Status::Valid, Some(url)) => url.clone(),
            (status, _) => {
                return Err(Error::BadResponse {
                    url: finalized.url.clone(),
                    reason: format!(
                        "the finalized order is {status} and names no certificate to download"
                    ),
                });
            }
        };
        self.certificate(&certificate).await
    }

    async fn fetch_order(&self, url: &str) -> Result<(Order, Option<String>), Error> {
        let answer = self.post(url, None, As::Account, JSON).await?;
        let mut order: Order = decode(url, &answer.body)?;
        order.url = url.to_owned();
        Ok((order, answer.retry_after))
    }

    async fn fetch_authorization(
        &self,
        url: &str,
    ) -> Result<(Authorization, Option<String>), Error> {
        let answer = self.post(url, None, As::Account, JSON).await?;
        let mut authorization: Authorization = decode(url, &answer.body)?;
        authorization.url = url.to_owned();
        Ok((authorization, answer.retry_after))
    }

    /// Waits before the next poll: `Retry-After` if the server gave one, else the poll
    /// interval; never less than [`MIN_POLL_INTERVAL`], never past the poll limit.
    async fn pause(
        &self,
        url: &str,
        started: Instant,
        retry_after: Option<String>,
        status: Status,
    ) -> Result<(), Error> {
        let limit = self.options.poll_limit;
        let elapsed = started.elapsed();
        if elapsed >= limit {
            return Err(Error::PollTimeout {
                url: url.to_owned(),
                seconds: limit.as_secs_f64(),
                status,
            });
        }
        let asked = retry_after.as_deref().and_then(|v| retry_after::parse(v, SystemTime::now()));
        let wait = asked.unwrap_or(self.options.poll_interval).max(MIN_POLL_INTERVAL);
        tokio::time::sleep(wait.min(limit - elapsed)).await;
        Ok(())
    }

    /// A POST (`payload`, or POST-as-GET's empty one) signed as `signer`, with one retry
    /// on `badNonce`. An answer with an error status is [`Error::Server`].
    async fn post(
        &self,
        url: &str,
        payload: Option<&[u8]>,
        signer: As<'_>,
        accept: &str,
    ) -> Result<Answer, Error> {
        let (key, signer) = match signer {
            As::NewAccount(key) => (key, Signer::Jwk),
            As::Account => {
                let account = self.account.as_ref().ok_or(Error::NoAccount)?;
                (&account.key, Signer::Kid(&account.account.url))
            }
        };
        let mut retried = false;
        loop {
            let nonce = self.take_nonce().await?;
            let body = jws::sign(key, signer, &nonce, url, payload)?;
            let answer = self.transport.send(Method::Post, url, accept, Some(body)).await?;
            self.remember_nonce(&answer);
            if answer.is_success() {
                return Ok(answer);
            }
            let error = server_error(url, &answer);
            if !retried && error.problem().is_some_and(Problem::is_bad_nonce) {
                tracing::debug!(url, "badNonce: retrying once with a fresh nonce");
                retried = true;
                continue;
            }
            return Err(error);
        }
    }

    /// A nonce from the pool, or a fresh one from newNonce (RFC 8555 §7.2, HEAD).
    async fn take_nonce(&self) -> Result<String, Error> {
        if let Some(nonce) = self.nonces.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Ok(nonce);
        }
        let url = &self.directory.new_nonce;
        let answer = self.transport.send(Method::Head, url, JSON, None).await?;
        if !answer.is_success() {
            return Err(server_error(url, &answer));
        }
        answer.replay_nonce.ok_or_else(|| Error::BadResponse {
            url: url.clone(),
            reason: "no Replay-Nonce header".into(),
        })
    }

    /// Keeps an answer's `Replay-Nonce` (RFC 8555 §6.5.1) for a later request.
    fn remember_nonce(&self, answer: &Answer) {
        let Some(nonce) = &answer.replay_nonce else { return };
        // §6.5.1: base64url characters only; anything else is not used.
        if !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return;
        }
        let mut pool = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() == NONCE_POOL {
            pool.remove(0);
        }
        pool.push(nonce.clone());
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Encoding(e.to_string()))
}

fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadResponse {
        url: url.to_owned(),
        reason: format!("not the ACME object expected: {e}"),
    })
}

/// The error of an answer with an error status: its problem document (RFC 7807), or its
/// text when it is none.
fn server_error(url: &str, answer: &Answer) -> Error {
    let problem = serde_json::from_slice::<Problem>(&answer.body)
        .ok()
        .filter(|p| !p.kind.is_empty() || p.detail.is_some())
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&answer.body);
            let text = text.trim();
            if text.is_empty() {
                let reason = hyper::StatusCode::from_u16(answer.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("no explanation");
                Problem::from_text(reason.to_owned())
            } else {
                Problem::from_text(text.chars().take(500).collect())
            }
        });
    Error::Server { url: url.to_owned(), status: answer.status, problem }
}
