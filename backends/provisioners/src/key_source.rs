//! Fetching the keys a provisioner trusts.

use std::time::Duration;

use keystation_core::provisioner::TrustedKeys;

use crate::error::Error;

/// Fetches the keys a provisioner trusts (an OIDC provider's JWKS via its discovery
/// document, Google's certificates, Azure's discovery document).
///
/// Fetching is async (async-trait keeps the trait object-safe, `Box<dyn KeySource>`);
/// verification is not: the caller caches the [`TrustedKeys`] and passes them to core's
/// synchronous `Provisioner::authorize`. Implementations set their own cache lifetime
/// (step-ca uses the JWKS response's `max-age`, 12 h by default); callers fetch again
/// when their keys are older than [`max_age`](KeySource::max_age).
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// Fetches the current keys; [`Error::KeyFetch`] when they cannot be had.
    async fn fetch(&self) -> Result<TrustedKeys, Error>;

    /// How long fetched keys may be used before fetching again.
    fn max_age(&self) -> Duration;

    /// Whether the source must see each credential (a Kubernetes TokenReview asks the API
    /// server about one token): then [`fetch_for`](KeySource::fetch_for) is called for
    /// every request and nothing is cached. The default says no.
    fn per_credential(&self) -> bool {
        false
    }

    /// What the source says about `credential`; by default the same keys for every
    /// credential, [`fetch`](KeySource::fetch).
    async fn fetch_for(&self, credential: &str) -> Result<TrustedKeys, Error> {
        let _ = credential;
        self.fetch().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn key_sources_are_async_and_object_safe() {
        struct Fixed;
        #[async_trait::async_trait]
        impl KeySource for Fixed {
            async fn fetch(&self) -> Result<TrustedKeys, Error> {
                Ok(TrustedKeys { certificates: vec![vec![0x30, 0x00]], ..TrustedKeys::default() })
            }
            fn max_age(&self) -> Duration {
                12 * H
            }
        }
        struct Unreachable;
        #[async_trait::async_trait]
        impl KeySource for Unreachable {
            async fn fetch(&self) -> Result<TrustedKeys, Error> {
                Err(Error::KeyFetch {
                    location: "https://www.googleapis.com/oauth2/v3/certs".into(),
                    source: Box::new(std::io::Error::other("network unreachable")),
                })
            }
            fn max_age(&self) -> Duration {
                H
            }
        }
        let sources: Vec<Box<dyn KeySource>> = vec![Box::new(Fixed), Box::new(Unreachable)];
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());

        let mut future = sources[0].fetch();
        let std::task::Poll::Ready(Ok(keys)) = future.as_mut().poll(&mut cx) else {
            panic!("a ready future must complete on first poll")
        };
        assert_eq!(keys.certificates, vec![vec![0x30, 0x00]]);
        assert_eq!(sources[0].max_age(), 12 * H);

        let mut future = sources[1].fetch();
        let std::task::Poll::Ready(Err(e)) = future.as_mut().poll(&mut cx) else {
            panic!("the failing source must fail on first poll")
        };
        assert_eq!(
            e.to_string(),
            "fetching trusted keys from https://www.googleapis.com/oauth2/v3/certs failed"
        );
    }
}
