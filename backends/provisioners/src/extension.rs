//! What provisioner crates outside this one plug into: how a token is routed to its
//! provisioner ([`TokenPeek`]), how a provisioner type is built from its `ca.json` object
//! ([`Factory`]), the cache in front of a [`KeySource`] ([`CachedKeys`]), and the
//! trust-on-first-use record of the cloud instance identities ([`tofu_id`]).
//!
//! The identity and cloud provisioners (OIDC, K8sSA, AWS, GCP, Azure) are crates of their
//! own behind cargo features; they depend on this crate, so this crate cannot name them.
//! The authority hands [`provisioner_from_json_with`](crate::provisioner_from_json_with)
//! the factories of the ones it was built with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keystation_core::provisioner::TrustedKeys;
use tokio::sync::Mutex;

use crate::{Error, KeySource, ProvisionerContext, ProvisionerKind, StepProvisioner};

/// What a JWT says before it is verified: only enough to find the provisioners it may be
/// for (step-ca's `LoadByToken`, research note §1). Nothing here is trusted; the
/// provisioner found verifies the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPeek {
    /// The header's `kid`.
    pub kid: Option<String>,
    /// `iss`.
    pub iss: Option<String>,
    /// `aud`, a string or a list.
    pub aud: Vec<String>,
    /// `azp` (OpenID Connect's authorized party: the client ID).
    pub azp: Option<String>,
    /// `tid` (Azure's tenant ID).
    pub tid: Option<String>,
}

/// The largest JWT part peeked at; real tokens are a few kilobytes.
const PEEK_LIMIT: usize = 64 * 1024;

impl TokenPeek {
    /// Decodes the header and payload of a compact JWS without verifying anything;
    /// `None` when they are not base64url JSON objects.
    pub fn of(token: &str) -> Option<Self> {
        use base64::Engine as _;
        let mut parts = token.split('.');
        let (header, payload) = (parts.next()?, parts.next()?);
        let decode = |part: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
            if part.len() > PEEK_LIMIT {
                return None;
            }
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                serde_json::Value::Object(map) => Some(map),
                _ => None,
            }
        };
        let header = decode(header)?;
        let payload = decode(payload)?;
        let text = |map: &serde_json::Map<String, serde_json::Value>, key: &str| {
            map.get(key).and_then(|v| v.as_str()).map(str::to_owned)
        };
        let aud = match payload.get("aud") {
            Some(serde_json::Value::String(a)) => vec![a.clone()],
            Some(serde_json::Value::Array(list)) => {
                list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        };
        Some(Self {
            kid: text(&header, "kid"),
            iss: text(&payload, "iss"),
            aud,
            azp: text(&payload, "azp"),
            tid: text(&payload, "tid"),
        })
    }

    /// Whether some `aud` ends in the fragment step-ca gives fragment-routed provisioners
    /// (`#aws/<name>`, `#gcp/<name>`, `#x5c/<name>`): `fragment` is `aws/<name>`.
    pub fn has_audience_fragment(&self, fragment: &str) -> bool {
        self.aud.iter().any(|a| a.rsplit_once('#').is_some_and(|(_, f)| f == fragment))
    }
}

/// Reads one `ca.json` object with the authority's context into a provisioner.
pub type BuildProvisioner =
    fn(&str, &ProvisionerContext) -> Result<Arc<dyn StepProvisioner>, Error>;

/// Builds provisioners of one type from their `ca.json` objects.
#[derive(Clone, Copy)]
pub struct Factory {
    /// The type it builds.
    pub kind: ProvisionerKind,
    /// Reads one `ca.json` object with the authority's context.
    pub build: BuildProvisioner,
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory").field("kind", &self.kind).finish()
    }
}

/// The prefix of a trust-on-first-use record among a provisioner's spent token ids.
pub const TOFU_PREFIX: &str = "tofu:";

/// The single-use id that makes a cloud instance's first certificate its only one
/// (step-ca's trust on first use): `tofu:<instance>`, kept for good by the authority
/// until an operator resets it. `instance` must come from the **verified** document or
/// token — never from unverified claims, where step-ca takes GCP's and Azure's.
pub fn tofu_id(instance: &str) -> String {
    format!("{TOFU_PREFIX}{instance}")
}

/// Whether a grant's replay id is a trust-on-first-use record (kept until reset) rather
/// than a token id (kept until the token could no longer verify).
pub fn is_tofu_id(replay_id: &str) -> bool {
    replay_id.starts_with(TOFU_PREFIX)
}

/// The shortest time between two fetches forced by an unknown `kid`: a token naming keys
/// that do not exist cannot make the authority hammer the provider.
pub const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

struct Fetched {
    keys: TrustedKeys,
    at: Instant,
}

/// A [`KeySource`] behind a cache: keys are fetched on first use, again once older than
/// the source's [`max_age`](KeySource::max_age), and again when a token names a key ID
/// the cached set lacks — at most once per [`UNKNOWN_KID_REFETCH_INTERVAL`]. A source
/// that must see each credential ([`KeySource::per_credential`], a TokenReview) is asked
/// every time and nothing is cached.
pub struct CachedKeys {
    source: Arc<dyn KeySource>,
    fetched: Mutex<Option<Fetched>>,
    last_forced: Mutex<Option<Instant>>,
    refetch_interval: Duration,
}

impl std::fmt::Debug for CachedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedKeys").field("max_age", &self.source.max_age()).finish()
    }
}

impl CachedKeys {
    /// A cache in front of `source`.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self::with_refetch_interval(source, UNKNOWN_KID_REFETCH_INTERVAL)
    }

    /// A cache whose forced refetches are at least `interval` apart.
    pub fn with_refetch_interval(source: Arc<dyn KeySource>, interval: Duration) -> Self {
        Self {
            source,
            fetched: Mutex::new(None),
            last_forced: Mutex::new(None),
            refetch_interval: interval,
        }
    }

    /// The keys to verify `credential` with: cached while fresh.
    pub async fn keys_for(&self, credential: &str) -> Result<TrustedKeys, Error> {
        if self.source.per_credential() {
            return self.source.fetch_for(credential).await;
        }
        let mut fetched = self.fetched.lock().await;
        if let Some(f) = fetched.as_ref()
            && f.at.elapsed() < self.source.max_age()
        {
            return Ok(f.keys.clone());
        }
        let keys = self.source.fetch().await?;
        *fetched = Some(Fetched { keys: keys.clone(), at: Instant::now() });
        Ok(keys)
    }

    /// Fetches again because a token named a key the cached set lacks, unless the last
    /// forced fetch was less than the interval ago: then `None`, and the token stays
    /// refused.
    pub async fn refetch_for_unknown_kid(&self) -> Result<Option<TrustedKeys>, Error> {
        if self.source.per_credential() {
            return Ok(None);
        }
        {
            let mut last = self.last_forced.lock().await;
            if last.is_some_and(|t| t.elapsed() < self.refetch_interval) {
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        let keys = self.source.fetch().await?;
        *self.fetched.lock().await = Some(Fetched { keys: keys.clone(), at: Instant::now() });
        Ok(Some(keys))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Counting {
        fetches: AtomicUsize,
        per_credential: bool,
    }

    #[async_trait::async_trait]
    impl KeySource for Counting {
        async fn fetch(&self) -> Result<TrustedKeys, Error> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(TrustedKeys { statements: vec![format!("fetch {n}")], ..TrustedKeys::default() })
        }
        async fn fetch_for(&self, credential: &str) -> Result<TrustedKeys, Error> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(TrustedKeys { statements: vec![credential.to_owned()], ..TrustedKeys::default() })
        }
        fn max_age(&self) -> Duration {
            Duration::from_secs(3600)
        }
        fn per_credential(&self) -> bool {
            self.per_credential
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn keys_are_cached_and_unknown_kid_refetches_are_rate_limited() {
        let source = Arc::new(Counting { fetches: AtomicUsize::new(0), per_credential: false });
        let cache = CachedKeys::with_refetch_interval(source.clone(), Duration::from_secs(3600));
        block_on(async {
            let first = cache.keys_for("a").await.unwrap();
            let second = cache.keys_for("b").await.unwrap();
            assert_eq!(first.statements, ["fetch 0"]);
            assert_eq!(second.statements, ["fetch 0"], "served from the cache");
            let forced = cache.refetch_for_unknown_kid().await.unwrap().unwrap();
            assert_eq!(forced.statements, ["fetch 1"]);
            assert!(cache.refetch_for_unknown_kid().await.unwrap().is_none(), "rate limited");
            assert_eq!(cache.keys_for("c").await.unwrap().statements, ["fetch 1"]);
        });
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn per_credential_sources_are_asked_every_time() {
        let source = Arc::new(Counting { fetches: AtomicUsize::new(0), per_credential: true });
        let cache = CachedKeys::new(source.clone());
        block_on(async {
            assert_eq!(cache.keys_for("t1").await.unwrap().statements, ["t1"]);
            assert_eq!(cache.keys_for("t2").await.unwrap().statements, ["t2"]);
            assert!(cache.refetch_for_unknown_kid().await.unwrap().is_none());
        });
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn peeks_route_without_trusting() {
        use base64::Engine as _;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256","kid":"k1"}"#),
            b64(
                r#"{"iss":"ec2.amazonaws.com","aud":["https://ca:9000/1.0/sign#aws/aws"],"tid":"t"}"#
            )
        );
        let peek = TokenPeek::of(&token).unwrap();
        assert_eq!(peek.kid.as_deref(), Some("k1"));
        assert_eq!(peek.iss.as_deref(), Some("ec2.amazonaws.com"));
        assert!(peek.has_audience_fragment("aws/aws"));
        assert!(!peek.has_audience_fragment("aws/other"));
        assert_eq!(peek.tid.as_deref(), Some("t"));
        assert!(TokenPeek::of("not.a.token").is_none());
        assert!(TokenPeek::of(&format!("{}.{}", b64("[]"), b64("{}"))).is_none());
        assert_eq!(tofu_id("i-1"), "tofu:i-1");
        assert!(is_tofu_id("tofu:i-1") && !is_tofu_id("jti"));
    }
}
