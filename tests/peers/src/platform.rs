//! The trussed platform the applets run on.
//!
//! Both applets are trussed apps: they do their cryptography, storage and PIN handling
//! through a trussed client. Here that client talks to trussed's software platform
//! (`trussed::virt`) with RAM-only storage, extended by three backends:
//!
//! * `trussed-auth-backend`: PINs and their retry counters (the `trussed-auth` extension);
//! * `trussed-staging`: chunked file I/O, wrapping keys to files and HPKE (the
//!   `trussed-chunked`, `trussed-wrap-key-to-file` and `trussed-hpke` extensions);
//! * `trussed-rsa-alloc`: RSA key generation and operations, which the core lacks.
//!
//! Requests are offered to the backends in the order of [`BACKENDS`]; a backend that does
//! not implement one answers `RequestNotAvailable` and the next one is tried, ending with
//! trussed's core.

use trussed::Platform;
use trussed::backend::{Backend, BackendId};
use trussed::serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl};
use trussed::service::ServiceResources;
use trussed::types::Context;
use trussed::virt::{self, StoreConfig};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::Error;
use trussed_core::api::{Reply, Request, reply, request};
use trussed_core::types::Location;
use trussed_hpke::HpkeExtension;
use trussed_rsa_alloc::SoftwareRsa;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// The trussed client handed to an applet.
pub type PeerClient<'a> = virt::Client<'a, PeerDispatch>;

/// The backends, in the order requests are offered to them.
pub const BACKENDS: &[BackendId<PeerBackend>] = &[
    BackendId::Custom(PeerBackend::Auth),
    BackendId::Custom(PeerBackend::Staging),
    BackendId::Custom(PeerBackend::Rsa),
    BackendId::Core,
];

/// The custom backends of [`PeerDispatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerBackend {
    /// `trussed-auth-backend`.
    Auth,
    /// `trussed-staging`.
    Staging,
    /// `trussed-rsa-alloc`.
    Rsa,
}

/// The trussed API extensions [`PeerDispatch`] serves, with the numbers the client and the
/// service use for them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerExtension {
    /// `trussed-auth`.
    Auth = 0,
    /// `trussed-chunked`.
    Chunked = 1,
    /// `trussed-wrap-key-to-file`.
    WrapKeyToFile = 2,
    /// `trussed-hpke`.
    Hpke = 3,
}

impl From<PeerExtension> for u8 {
    fn from(extension: PeerExtension) -> Self {
        extension as u8
    }
}

impl TryFrom<u8> for PeerExtension {
    type Error = Error;

    fn try_from(id: u8) -> Result<Self, Error> {
        [Self::Auth, Self::Chunked, Self::WrapKeyToFile, Self::Hpke]
            .into_iter()
            .find(|extension| u8::from(*extension) == id)
            .ok_or(Error::FunctionNotSupported)
    }
}

/// Per-client state of the backends that keep some.
#[derive(Default)]
pub struct PeerContext {
    auth: AuthContext,
    staging: StagingContext,
}

/// Routes trussed requests to the backends listed in [`BACKENDS`].
pub struct PeerDispatch {
    auth: AuthBackend,
    staging: StagingBackend,
}

impl Default for PeerDispatch {
    fn default() -> Self {
        Self {
            // PINs live in the (RAM) internal storage, as on a device.
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
            staging: StagingBackend::new(),
        }
    }
}

impl ExtensionDispatch for PeerDispatch {
    type BackendId = PeerBackend;
    type Context = PeerContext;
    type ExtensionId = PeerExtension;

    fn core_request<P: Platform>(
        &mut self,
        backend: &PeerBackend,
        ctx: &mut Context<PeerContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            PeerBackend::Auth => {
                self.auth.request(&mut ctx.core, &mut ctx.backends.auth, request, resources)
            }
            PeerBackend::Staging => {
                self.staging.request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
            PeerBackend::Rsa => SoftwareRsa.request(&mut ctx.core, &mut (), request, resources),
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &PeerBackend,
        extension: &PeerExtension,
        ctx: &mut Context<PeerContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        let staging = &mut ctx.backends.staging;
        match (backend, extension) {
            (PeerBackend::Auth, PeerExtension::Auth) => {
                ExtensionImpl::<AuthExtension>::extension_request_serialized(
                    &mut self.auth,
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (PeerBackend::Staging, PeerExtension::Chunked) => {
                ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    staging,
                    request,
                    resources,
                )
            }
            (PeerBackend::Staging, PeerExtension::WrapKeyToFile) => {
                ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    staging,
                    request,
                    resources,
                )
            }
            (PeerBackend::Staging, PeerExtension::Hpke) => {
                ExtensionImpl::<HpkeExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

impl ExtensionId<AuthExtension> for PeerDispatch {
    type Id = PeerExtension;
    const ID: PeerExtension = PeerExtension::Auth;
}

impl ExtensionId<ChunkedExtension> for PeerDispatch {
    type Id = PeerExtension;
    const ID: PeerExtension = PeerExtension::Chunked;
}

impl ExtensionId<WrapKeyToFileExtension> for PeerDispatch {
    type Id = PeerExtension;
    const ID: PeerExtension = PeerExtension::WrapKeyToFile;
}

impl ExtensionId<HpkeExtension> for PeerDispatch {
    type Id = PeerExtension;
    const ID: PeerExtension = PeerExtension::Hpke;
}

/// Runs `f` with a trussed client named `client_id` on a fresh software platform whose
/// storage lives only in memory: nothing reaches the disk, and everything is gone when `f`
/// returns.
///
/// Beware: `trussed::virt` seeds its random number generator with a constant, so keys the
/// applet generates are the same in every run. That is fine for a test peer, and nothing
/// else should use this.
pub fn with_client<R>(client_id: &str, f: impl FnOnce(PeerClient<'_>) -> R) -> R {
    virt::with_platform(StoreConfig::ram(), |platform| {
        platform.run_client_with_backends(client_id, PeerDispatch::default(), BACKENDS, f)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_numbers_round_trip() {
        for extension in [
            PeerExtension::Auth,
            PeerExtension::Chunked,
            PeerExtension::WrapKeyToFile,
            PeerExtension::Hpke,
        ] {
            assert_eq!(PeerExtension::try_from(u8::from(extension)), Ok(extension));
        }
        assert_eq!(PeerExtension::try_from(4), Err(Error::FunctionNotSupported));
    }
}
