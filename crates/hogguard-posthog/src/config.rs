//! How every call behaves: its timeout, how often it is retried, and how the client waits
//! between attempts (injectable, so tests never really sleep).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The default timeout of one HTTP exchange, connection and reading included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits between attempts. The default, [`ThreadSleeper`], blocks the thread; tests inject one
/// that records the waits and returns at once.
pub trait Sleeper: Send + Sync {
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration);
}

/// Waits with [`std::thread::sleep`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// When a failed call is sent again.
///
/// - **Throttling (429)** is retried for every call: PostHog throttles before the view runs, so
///   the refused request did nothing. The wait PostHog announces (`Expected available in N
///   seconds.`) is honoured; a longer announced wait than [`max_throttle_wait`] is not waited
///   for. Without an announced wait the client backs off exponentially.
/// - **Server errors (5xx) and cut connections** are retried, with exponential back-off, only
///   for calls that are safe to repeat: reads, deletes and captures (whose events carry a
///   `uuid`). Creating or rolling a key is never repeated blindly: the first attempt may have
///   succeeded, and its new secret would be lost.
/// - **Timeouts** are not retried: the caller already waited the whole timeout once.
///
/// [`max_throttle_wait`]: RetryPolicy::max_throttle_wait
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// How many times a throttled call is sent again.
    pub throttle_retries: u32,
    /// The longest announced wait the client sits out; a throttled call announcing a longer
    /// one fails at once with [`Error::Throttled`](crate::Error::Throttled).
    pub max_throttle_wait: Duration,
    /// How many times a repeatable call is sent again after a 5xx or a cut connection.
    pub server_retries: u32,
    /// The first back-off delay, doubled on each further attempt.
    pub backoff: Duration,
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            throttle_retries: 0,
            max_throttle_wait: Duration::ZERO,
            server_retries: 0,
            backoff: Duration::ZERO,
        }
    }

    /// The back-off before retry number `retry` (0 for the first), capped at
    /// [`max_throttle_wait`](Self::max_throttle_wait) or 30 s, whichever is larger.
    pub(crate) fn backoff_delay(&self, retry: u32) -> Duration {
        let cap = self.max_throttle_wait.max(Duration::from_secs(30));
        self.backoff
            .checked_mul(1 << retry.min(16))
            .unwrap_or(cap)
            .min(cap)
    }
}

impl Default for RetryPolicy {
    /// Three throttle retries waiting at most 60 s each; two server retries starting at 500 ms.
    fn default() -> RetryPolicy {
        RetryPolicy {
            throttle_retries: 3,
            max_throttle_wait: Duration::from_secs(60),
            server_retries: 2,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The settings every client, the [`Verifier`](crate::Verifier) and the
/// [`Revoker`](crate::Revoker) share.
///
/// ```
/// use std::time::Duration;
/// use hogguard_posthog::{ClientConfig, RetryPolicy};
///
/// let config = ClientConfig::default()
///     .timeout(Duration::from_secs(5))
///     .retry(RetryPolicy::none());
/// assert_eq!(config.timeout_duration(), Duration::from_secs(5));
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    timeout: Duration,
    retry: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
}

impl ClientConfig {
    /// Sets the timeout of one HTTP exchange (connecting, sending and reading the answer).
    pub fn timeout(mut self, timeout: Duration) -> ClientConfig {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> ClientConfig {
        self.retry = retry;
        self
    }

    /// Sets what waits between attempts.
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> ClientConfig {
        self.sleeper = sleeper;
        self
    }

    /// The timeout of one HTTP exchange.
    pub fn timeout_duration(&self) -> Duration {
        self.timeout
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub(crate) fn sleep(&self, duration: Duration) {
        self.sleeper.sleep(duration);
    }
}

impl Default for ClientConfig {
    /// A 10 s timeout, the default [`RetryPolicy`] and [`ThreadSleeper`].
    fn default() -> ClientConfig {
        ClientConfig {
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            sleeper: Arc::new(ThreadSleeper),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let policy = RetryPolicy::default();
        let delays: Vec<u128> = (0..4)
            .map(|retry| policy.backoff_delay(retry).as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000]);
        assert_eq!(policy.backoff_delay(40), Duration::from_secs(60));
        assert_eq!(RetryPolicy::none().backoff_delay(3), Duration::ZERO);
    }
}
