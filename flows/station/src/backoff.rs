//! Exponential backoff with jitter for reconnecting to defguard.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first retry waits up to this long.
const FIRST: Duration = Duration::from_millis(200);

/// Delays that double from [`FIRST`] up to a cap, each scaled by a random factor in
/// [0.5, 1] ("equal jitter") so that stations restarted together do not retry in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    cap: Duration,
    failures: u32,
    random: RandomState,
    draws: u64,
}

impl Backoff {
    pub(crate) fn new(cap: Duration) -> Self {
        Self { cap, failures: 0, random: RandomState::new(), draws: 0 }
    }

    /// The delay before the next attempt; each call lengthens the following one.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = FIRST.saturating_mul(1 << self.failures.min(16)).min(self.cap);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(0.5 + 0.5 * self.unit())
    }

    /// Back to the first delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// A number in [0, 1): std's randomly keyed SipHash over a counter. Not for
    /// cryptography; enough to spread retries.
    fn unit(&mut self) -> f64 {
        self.draws = self.draws.wrapping_add(1);
        let mut hasher = self.random.build_hasher();
        hasher.write_u64(self.draws);
        (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        let cap = Duration::from_secs(30);
        let mut backoff = Backoff::new(cap);
        let mut ceiling = FIRST;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(delay <= ceiling && delay >= ceiling / 2, "{delay:?} vs {ceiling:?}");
            ceiling = (ceiling * 2).min(cap);
        }
        assert_eq!(ceiling, cap);
        backoff.reset();
        assert!(backoff.next_delay() <= FIRST);
    }

    #[test]
    fn jitter_varies() {
        let mut backoff = Backoff::new(Duration::from_secs(30));
        let delays: Vec<Duration> = (0..20)
            .map(|_| {
                backoff.reset();
                backoff.next_delay()
            })
            .collect();
        assert!(delays.iter().any(|d| *d != delays[0]), "{delays:?}");
    }
}
