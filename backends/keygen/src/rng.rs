//! Random sources for software key generation, and the bridge to the RustCrypto RNG
//! traits the key-generation primitives take.

use keystation_core::Error;
use keystation_core::keygen::RandomSource;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

/// The operating system's CSPRNG (`getrandom(2)` on Linux). What production uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        getrandom::getrandom(dest).map_err(|_| Error::RandomSourceFailed)
    }
}

/// A deterministic ChaCha20 stream from a 32-byte seed, for tests and fuzzing only: the
/// same seed gives the same keys. Never use it for real identities.
pub struct SeededRandom(ChaCha20Rng);

impl SeededRandom {
    /// The stream for `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ChaCha20Rng::from_seed(seed))
    }

    /// The stream for a small number, expanded to a seed (convenient in tests).
    pub fn from_u64(seed: u64) -> Self {
        Self(ChaCha20Rng::seed_from_u64(seed))
    }
}

impl core::fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SeededRandom")
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// Presents a [`RandomSource`] as the `rand_core` RNG that the RustCrypto key generators
/// take. Their infallible `fill_bytes` cannot report a failure, so a failure is latched:
/// from then on the bytes come from a fixed, public ChaCha20 stream (constant bytes could
/// keep a prime search looping for ever), and [`Bridge::finish`] turns the latch into
/// [`Error::RandomSourceFailed`], after which the caller discards whatever was made.
pub(crate) struct Bridge<'a> {
    source: &'a mut dyn RandomSource,
    failed: Option<ChaCha20Rng>,
}

impl<'a> Bridge<'a> {
    /// A bridge over `source`, or the source's error if it cannot produce even a first
    /// byte (so that a dead source fails fast rather than after a whole generation).
    pub(crate) fn new(source: &'a mut dyn RandomSource) -> Result<Self, Error> {
        let mut probe = [0u8; 1];
        source.fill(&mut probe)?;
        Ok(Self { source, failed: None })
    }

    /// Whether every request was served.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.failed.is_some() { Err(Error::RandomSourceFailed) } else { Ok(()) }
    }
}

impl RngCore for Bridge<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.failed.is_none() && self.source.fill(dest).is_ok() {
            return;
        }
        self.failed.get_or_insert_with(|| ChaCha20Rng::from_seed([0; 32])).fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Bridge<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl RandomSource for Broken {
        fn fill(&mut self, _: &mut [u8]) -> Result<(), Error> {
            Err(Error::RandomSourceFailed)
        }
    }

    #[test]
    fn seeded_streams_repeat_and_differ_by_seed() {
        let (mut a, mut b, mut c) =
            (SeededRandom::from_u64(7), SeededRandom::from_u64(7), SeededRandom::from_u64(8));
        let (mut x, mut y, mut z) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        assert!(a.fill(&mut x).is_ok() && b.fill(&mut y).is_ok() && c.fill(&mut z).is_ok());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn os_random_fills() {
        let mut buf = [0u8; 32];
        assert!(OsRandom.fill(&mut buf).is_ok());
        assert_ne!(buf, [0u8; 32]);
    }

    /// Serves `budget` bytes, then fails.
    struct Dies(usize);
    impl RandomSource for Dies {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error> {
            self.0 = self.0.checked_sub(dest.len()).ok_or(Error::RandomSourceFailed)?;
            dest.fill(0x11);
            Ok(())
        }
    }

    #[test]
    fn bridge_fails_fast_on_a_dead_source() {
        let mut broken = Broken;
        assert!(matches!(Bridge::new(&mut broken), Err(Error::RandomSourceFailed)));
    }

    #[test]
    fn bridge_latches_a_later_failure() {
        let mut dies = Dies(9);
        let Ok(mut bridge) = Bridge::new(&mut dies) else { panic!("probe failed") };
        let mut buf = [0u8; 8];
        bridge.fill_bytes(&mut buf);
        assert_eq!(buf, [0x11; 8]);
        bridge.fill_bytes(&mut buf);
        let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
        bridge.fill_bytes(&mut a);
        bridge.fill_bytes(&mut b);
        assert_ne!(a, b, "the stand-in stream is not constant");
        assert!(matches!(bridge.finish(), Err(Error::RandomSourceFailed)));
    }
}
