//! Fetching the keys a provisioner trusts, and the pieces the fetching sources share: how
//! long their keys are cached ([`CacheLifetime`]) and which keys of a JWK set they keep
//! ([`usable_keys`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keystation_core::provisioner::TrustedKeys;
use keystation_jose::{Jwk, JwkSetEntry};

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

/// A key source's cache lifetime: the answer's `Cache-Control: max-age` (RFC 9111
/// §5.2.2.1), a default when it names none, clamped into `[min, max]` — so a server
/// answering `max-age=0` does not cause a fetch per token, and a rotated-out key is not
/// trusted for longer than `max`.
///
/// The lifetime of the last successful fetch is held atomically, so
/// [`KeySource::max_age`] reads it through `&self`; it is the default until then.
pub struct CacheLifetime {
    secs: AtomicU64,
    default: Duration,
    min: Duration,
    max: Duration,
}

impl std::fmt::Debug for CacheLifetime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheLifetime")
            .field("current", &self.get())
            .field("default", &self.default)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

impl CacheLifetime {
    /// `default` when an answer names no `max-age`, any `max-age` clamped into
    /// `[min, max]`; the current lifetime starts as `default`.
    pub fn new(default: Duration, min: Duration, max: Duration) -> Self {
        Self { secs: AtomicU64::new(default.as_secs()), default, min, max }
    }

    /// The lifetime an answer with `max_age` (its `Cache-Control: max-age`, if any) gives,
    /// without storing it.
    pub fn of(&self, max_age: Option<Duration>) -> Duration {
        max_age.unwrap_or(self.default).clamp(self.min, self.max)
    }

    /// The lifetime of the last fetch [`keep`](Self::keep) stored, `default` before any.
    pub fn get(&self) -> Duration {
        Duration::from_secs(self.secs.load(Ordering::Relaxed))
    }

    /// What [`KeySource::fetch`] returns for a fetch's `result` from `location`: the keys,
    /// their lifetime stored for [`get`](Self::get); or the error as [`Error::KeyFetch`].
    pub fn keep<E>(
        &self,
        location: &str,
        result: Result<(TrustedKeys, Duration), E>,
    ) -> Result<TrustedKeys, Error>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match result {
            Ok((keys, lifetime)) => {
                self.secs.store(lifetime.as_secs(), Ordering::Relaxed);
                Ok(keys)
            }
            Err(e) => Err(Error::KeyFetch { location: location.to_owned(), source: Box::new(e) }),
        }
    }
}

/// The usable keys among a JWK set's `entries` (RFC 7517 §5), as a source narrowed them
/// ([`JwkSetEntry::require_kid`], [`JwkSetEntry::require_algorithm`]), in order; each
/// unusable one is logged with its `kid` and reason. `Err` holds how many were skipped when
/// none is usable.
pub fn usable_keys(
    url: &str,
    entries: impl IntoIterator<Item = JwkSetEntry>,
) -> Result<Vec<Jwk>, usize> {
    let mut skipped = 0;
    let mut usable = Vec::new();
    for entry in entries {
        match entry.key {
            Ok(jwk) => usable.push(jwk),
            Err(reason) => {
                tracing::info!(url, kid = ?entry.kid, %reason, "JWKS key skipped");
                skipped += 1;
            }
        }
    }
    if usable.is_empty() { Err(skipped) } else { Ok(usable) }
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

    #[test]
    fn cache_lifetimes_are_clamped_and_kept() {
        let lifetime = CacheLifetime::new(H, Duration::from_secs(60), 24 * H);
        assert_eq!(lifetime.get(), H, "the default before any fetch");
        assert_eq!(lifetime.of(None), H);
        assert_eq!(lifetime.of(Some(Duration::ZERO)), Duration::from_secs(60));
        assert_eq!(lifetime.of(Some(600 * H)), 24 * H);
        assert_eq!(lifetime.of(Some(2 * H)), 2 * H);
        let fetched = lifetime.keep::<std::io::Error>("u", Ok((TrustedKeys::default(), 2 * H)));
        assert!(fetched.is_ok());
        assert_eq!(lifetime.get(), 2 * H);
        let failed = lifetime.keep("u", Err(std::io::Error::other("refused")));
        assert!(matches!(failed, Err(Error::KeyFetch { location, .. }) if location == "u"));
        assert_eq!(lifetime.get(), 2 * H, "a failed fetch keeps the last lifetime");
    }

    #[test]
    fn usable_keys_skip_the_unusable_and_need_one() {
        let Ok(set) = keystation_jose::JwkSet::from_json(
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}, {"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"}]}"#,
        ) else {
            panic!("a JWK set")
        };
        let Ok(keys) = usable_keys("u", set.into_entries()) else { panic!("one usable key") };
        assert_eq!(keys.iter().map(Jwk::kid).collect::<Vec<_>>(), [Some("ed")]);
        let Ok(set) = keystation_jose::JwkSet::from_json(br#"{"keys": [{"kty": "oct"}]}"#) else {
            panic!("a JWK set")
        };
        assert_eq!(usable_keys("u", set.into_entries()).err(), Some(1));
    }
}
