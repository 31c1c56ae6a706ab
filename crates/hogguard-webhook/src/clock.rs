//! Where the verifier gets "now" from, so tests can pin it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time for timestamp tolerance and replay-store expiry.
///
/// [`SystemClock`] is the default; [`ManualClock`] pins the time for tests and for replaying
/// recorded deliveries.
pub trait Clock: Send + Sync {
    /// Returns the current time in whole seconds since the Unix epoch.
    fn now_unix_secs(&self) -> u64;
}

/// The operating system's wall clock, the default [`Clock`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_secs(&self) -> u64 {
        // A clock set before 1970 reads as 0, which rejects every delivery as too new: failing
        // closed is the right reaction to a broken clock.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| since_epoch.as_secs())
    }
}

/// A clock that shows whatever time it was last set to, for tests and offline checks.
///
/// Share it through an `Arc` to move time forward while a verifier holds it.
///
/// ```
/// use std::sync::Arc;
/// use hogguard_webhook::{Clock, ManualClock};
///
/// let clock = Arc::new(ManualClock::new(1_614_265_330));
/// clock.advance(600);
/// assert_eq!(clock.now_unix_secs(), 1_614_265_930);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now_unix_secs: AtomicU64,
}

impl ManualClock {
    /// Makes a clock that reads `now_unix_secs` until it is changed.
    pub fn new(now_unix_secs: u64) -> Self {
        Self {
            now_unix_secs: AtomicU64::new(now_unix_secs),
        }
    }

    /// Sets the time to `now_unix_secs`.
    pub fn set(&self, now_unix_secs: u64) {
        self.now_unix_secs.store(now_unix_secs, Ordering::Relaxed);
    }

    /// Moves the time forward by `secs` seconds (saturating).
    pub fn advance(&self, secs: u64) {
        let now = self.now_unix_secs();
        self.set(now.saturating_add(secs));
    }
}

impl Clock for ManualClock {
    fn now_unix_secs(&self) -> u64 {
        self.now_unix_secs.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_unix_secs(&self) -> u64 {
        (**self).now_unix_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_unix_secs() > 1_577_836_800);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = Arc::new(ManualClock::new(10));
        let shared: Arc<dyn Clock> = clock.clone();
        assert_eq!(shared.now_unix_secs(), 10);
        clock.advance(5);
        assert_eq!(shared.now_unix_secs(), 15);
        clock.set(u64::MAX);
        clock.advance(1);
        assert_eq!(shared.now_unix_secs(), u64::MAX);
    }
}
