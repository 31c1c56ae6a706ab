//! Counters of what the proxy did.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What the proxy did since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStats {
    /// Calls forwarded to PostHog's private API with a credential injected (whatever PostHog
    /// answered).
    pub forwarded: u64,
    /// Public calls (capture, flags) passed to the capture host untouched.
    pub public: u64,
    /// Authenticated calls refused: a missing scope, an endpoint the table does not know, one
    /// personal keys cannot call, a path that could change meaning, no credential to inject.
    pub refused: u64,
    /// Calls without a usable client token (none, an unknown one, a PostHog key).
    pub unauthenticated: u64,
    /// Entries services sent to `POST /_hogguard/audit` and that were written.
    pub service_entries: u64,
    /// Audit entries that could not be written.
    pub audit_failures: u64,
    /// Calls answered `502` or `504` because PostHog could not be reached in time.
    pub upstream_failures: u64,
    /// Requests refused for their size or slowness (`413`, `408`, `431`).
    pub oversized_or_slow: u64,
    /// Times the credentials and clients were read again.
    pub reloads: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) forwarded: AtomicU64,
    pub(crate) public: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) unauthenticated: AtomicU64,
    pub(crate) service_entries: AtomicU64,
    pub(crate) audit_failures: AtomicU64,
    pub(crate) upstream_failures: AtomicU64,
    pub(crate) oversized_or_slow: AtomicU64,
    pub(crate) reloads: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ProxyStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ProxyStats {
            forwarded: get(&self.forwarded),
            public: get(&self.public),
            refused: get(&self.refused),
            unauthenticated: get(&self.unauthenticated),
            service_entries: get(&self.service_entries),
            audit_failures: get(&self.audit_failures),
            upstream_failures: get(&self.upstream_failures),
            oversized_or_slow: get(&self.oversized_or_slow),
            reloads: get(&self.reloads),
        }
    }
}
