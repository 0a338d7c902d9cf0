//! [`BlockingAcmeClient`]: [`AcmeClient`] for synchronous callers.

use keystation_jose::PrivateJwk;

use crate::Error;
use crate::client::{AcmeClient, CertificateChain, ClientOptions};
use crate::device_attest::CoseAlgorithm;
use crate::objects::{Account, Authorization, Challenge, Directory, Identifier, Order};

/// [`AcmeClient`] whose calls run on the client's own current-thread runtime. Not for
/// use inside an async runtime. Each method is its async twin's; see there.
#[derive(Debug)]
pub struct BlockingAcmeClient {
    client: AcmeClient,
    runtime: tokio::runtime::Runtime,
}

impl BlockingAcmeClient {
    /// See [`AcmeClient::connect`].
    pub fn connect(directory_url: &str, root_pem: &str) -> Result<Self, Error> {
        Self::connect_with(directory_url, root_pem, ClientOptions::default())
    }

    /// See [`AcmeClient::connect_with`].
    pub fn connect_with(
        directory_url: &str,
        root_pem: &str,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        let client =
            runtime.block_on(AcmeClient::connect_with(directory_url, root_pem, options))?;
        Ok(Self { client, runtime })
    }

    /// The async client.
    pub fn client(&self) -> &AcmeClient {
        &self.client
    }

    /// See [`AcmeClient::directory`].
    pub fn directory(&self) -> &Directory {
        self.client.directory()
    }

    /// See [`AcmeClient::account`].
    pub fn account(&self) -> Option<&Account> {
        self.client.account()
    }

    /// See [`AcmeClient::new_account`].
    pub fn new_account(
        &mut self,
        contact: &[String],
        terms_of_service_agreed: bool,
    ) -> Result<Account, Error> {
        self.runtime.block_on(self.client.new_account(contact, terms_of_service_agreed))
    }

    /// See [`AcmeClient::new_account_with_key`].
    pub fn new_account_with_key(
        &mut self,
        key: PrivateJwk,
        contact: &[String],
        terms_of_service_agreed: bool,
    ) -> Result<Account, Error> {
        self.runtime.block_on(self.client.new_account_with_key(
            key,
            contact,
            terms_of_service_agreed,
        ))
    }

    /// See [`AcmeClient::key_authorization`].
    pub fn key_authorization(&self, token: &str) -> Result<String, Error> {
        self.client.key_authorization(token)
    }

    /// See [`AcmeClient::new_order`].
    pub fn new_order(&self, identifiers: &[Identifier]) -> Result<Order, Error> {
        self.runtime.block_on(self.client.new_order(identifiers))
    }

    /// See [`AcmeClient::order`].
    pub fn order(&self, url: &str) -> Result<Order, Error> {
        self.runtime.block_on(self.client.order(url))
    }

    /// See [`AcmeClient::authorization`].
    pub fn authorization(&self, url: &str) -> Result<Authorization, Error> {
        self.runtime.block_on(self.client.authorization(url))
    }

    /// See [`AcmeClient::respond`].
    pub fn respond(&self, url: &str, payload: &str) -> Result<Challenge, Error> {
        self.runtime.block_on(self.client.respond(url, payload))
    }

    /// See [`AcmeClient::respond_device_attest`].
    pub fn respond_device_attest(
        &self,
        url: &str,
        alg: CoseAlgorithm,
        signature: &[u8],
        x5c: &[Vec<u8>],
    ) -> Result<Challenge, Error> {
        self.runtime.block_on(self.client.respond_device_attest(url, alg, signature, x5c))
    }

    /// See [`AcmeClient::poll_authorization`].
    pub fn poll_authorization(&self, url: &str) -> Result<Authorization, Error> {
        self.runtime.block_on(self.client.poll_authorization(url))
    }

    /// See [`AcmeClient::poll_order`].
    pub fn poll_order(&self, url: &str) -> Result<Order, Error> {
        self.runtime.block_on(self.client.poll_order(url))
    }

    /// See [`AcmeClient::finalize`].
    pub fn finalize(&self, order: &Order, csr_der: &[u8]) -> Result<Order, Error> {
        self.runtime.block_on(self.client.finalize(order, csr_der))
    }

    /// See [`AcmeClient::certificate`].
    pub fn certificate(&self, url: &str) -> Result<CertificateChain, Error> {
        self.runtime.block_on(self.client.certificate(url))
    }

    /// See [`AcmeClient::finalize_and_download`].
    pub fn finalize_and_download(
        &self,
        order: &Order,
        csr_der: &[u8],
    ) -> Result<CertificateChain, Error> {
        self.runtime.block_on(self.client.finalize_and_download(order, csr_der))
    }
}
