//! Counters of what the gateway did: forwarded deliveries, upstream failures, and rejections by
//! reason.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use hogguard_webhook::VerifyError;
use serde::{Serialize, Serializer};

/// Why the gateway refused a request (or a connection) without forwarding it.
///
/// The sender is never told which verification check failed: all but a replay store failure and
/// a copy in flight get the same `401`. The reason goes to the log and the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectionReason {
    /// A header the scheme needs is absent (`401`).
    MissingHeader,
    /// A signature header is repeated, too long or unreadable (`401`).
    MalformedHeader,
    /// The signed timestamp is older than the tolerance (`401`).
    TimestampTooOld,
    /// The signed timestamp is further ahead than the tolerance (`401`).
    TimestampTooNew,
    /// No signature matched an active secret (`401`).
    SignatureMismatch,
    /// The delivery was taken once already (`401`).
    Replay,
    /// A copy of the delivery is being forwarded right now (`503` with `Retry-After: 1`, so the
    /// sender tries again once the first copy is settled: taken, or left open for the retry).
    DuplicateInFlight,
    /// The replay store could not record a delivery whose signature verified (full, or a write
    /// failed), so it was refused rather than risk a replay (`503` with `Retry-After: 1`, so the
    /// sender retries).
    ReplayStoreUnavailable,
    /// A verification failure of a kind this gateway version does not know by name (`401`).
    OtherVerificationFailure,
    /// The body is larger than the limit (`413`).
    BodyTooLarge,
    /// The body did not arrive within the body read timeout (`408`, connection closed).
    BodyTimeout,
    /// The body stream broke, usually because the client went away (`400`).
    UnreadableBody,
    /// A new connection sent no complete request head within the header read timeout (closed
    /// without an answer).
    HeaderTimeout,
    /// The request head is not valid HTTP/1 (hyper answers `400` or `431` and closes).
    MalformedRequest,
    /// [`GatewayConfig::max_concurrent_requests`](crate::GatewayConfig::max_concurrent_requests)
    /// requests were already being handled (`503` with `Retry-After: 1`, before the body is
    /// read; connection closed).
    Overloaded,
}

impl RejectionReason {
    /// Every reason, in the order of the counters.
    pub const ALL: [Self; 15] = [
        Self::MissingHeader,
        Self::MalformedHeader,
        Self::TimestampTooOld,
        Self::TimestampTooNew,
        Self::SignatureMismatch,
        Self::Replay,
        Self::DuplicateInFlight,
        Self::ReplayStoreUnavailable,
        Self::OtherVerificationFailure,
        Self::BodyTooLarge,
        Self::BodyTimeout,
        Self::UnreadableBody,
        Self::HeaderTimeout,
        Self::MalformedRequest,
        Self::Overloaded,
    ];

    /// Returns the reason's `snake_case` name, as used in logs and the stats JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MalformedHeader => "malformed_header",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampTooNew => "timestamp_too_new",
            Self::SignatureMismatch => "signature_mismatch",
            Self::Replay => "replay",
            Self::DuplicateInFlight => "duplicate_in_flight",
            Self::ReplayStoreUnavailable => "replay_store_unavailable",
            Self::OtherVerificationFailure => "other_verification_failure",
            Self::BodyTooLarge => "body_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::UnreadableBody => "unreadable_body",
            Self::HeaderTimeout => "header_timeout",
            Self::MalformedRequest => "malformed_request",
            Self::Overloaded => "overloaded",
        }
    }

    /// Returns the reason for a verification failure.
    pub(crate) fn of(err: &VerifyError) -> Self {
        match err {
            VerifyError::MissingHeader { .. } => Self::MissingHeader,
            VerifyError::MalformedHeader { .. } => Self::MalformedHeader,
            VerifyError::TooOld { .. } => Self::TimestampTooOld,
            VerifyError::TooNew { .. } => Self::TimestampTooNew,
            VerifyError::Mismatch => Self::SignatureMismatch,
            VerifyError::Replay => Self::Replay,
            VerifyError::InFlight => Self::DuplicateInFlight,
            VerifyError::ReplayStore(_) => Self::ReplayStoreUnavailable,
            _ => Self::OtherVerificationFailure,
        }
    }

    /// Returns the reason's position in [`RejectionReason::ALL`] and in the counters.
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RejectionReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A snapshot of the gateway's counters, returned when it stops and served as JSON on the stats
/// address.
///
/// Every request the gateway did not answer itself as a health check lands in exactly one of
/// `forwarded`, `upstream_errors`, `upstream_timeouts` or `rejected`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GatewayStats {
    /// Verified deliveries that the upstream answered, whatever its status.
    pub forwarded: u64,
    /// Verified deliveries answered `502`: the upstream could not be reached, broke off, or sent
    /// an answer larger than the response limit.
    pub upstream_errors: u64,
    /// Verified deliveries answered `504`: the upstream exchange took longer than the upstream
    /// timeout.
    pub upstream_timeouts: u64,
    /// Times the gateway stopped accepting connections because
    /// [`GatewayConfig::max_connections`](crate::GatewayConfig::max_connections) were open. No
    /// request is refused then (new connections wait until one closes), so these are not
    /// rejections.
    pub connection_limit_pauses: u64,
    /// Rejected requests and connections by reason; every reason is present, zeros included.
    pub rejected: BTreeMap<RejectionReason, u64>,
    /// Verified deliveries by the position of the secret that verified them, in the order of
    /// [`GatewayConfig::secrets`](crate::GatewayConfig::secrets): during a rotation, shows when
    /// the old secret falls silent.
    pub verified_by_secret: Vec<u64>,
}

impl GatewayStats {
    /// Returns how many requests were rejected for `reason`.
    pub fn rejected(&self, reason: RejectionReason) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }

    /// Returns how many requests were rejected, for any reason.
    pub fn total_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }
}

impl fmt::Display for GatewayStats {
    /// One line of `key=value` pairs; rejection reasons with a zero count are left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "forwarded={} upstream_errors={} upstream_timeouts={} connection_limit_pauses={} \
             rejected={}",
            self.forwarded,
            self.upstream_errors,
            self.upstream_timeouts,
            self.connection_limit_pauses,
            self.total_rejected()
        )?;
        for (reason, count) in self.rejected.iter().filter(|(_, count)| **count > 0) {
            write!(f, " rejected.{reason}={count}")?;
        }
        f.write_str(" verified_by_secret=")?;
        for (index, count) in self.verified_by_secret.iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            write!(f, "{separator}{count}")?;
        }
        Ok(())
    }
}

/// The live counters, updated from every connection task.
#[derive(Debug)]
pub(crate) struct Counters {
    forwarded: AtomicU64,
    upstream_errors: AtomicU64,
    upstream_timeouts: AtomicU64,
    connection_limit_pauses: AtomicU64,
    rejected: [AtomicU64; RejectionReason::ALL.len()],
    verified_by_secret: Box<[AtomicU64]>,
}

impl Counters {
    /// Makes zeroed counters for a gateway with `secret_count` active secrets.
    pub(crate) fn new(secret_count: usize) -> Self {
        Self {
            forwarded: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            upstream_timeouts: AtomicU64::new(0),
            connection_limit_pauses: AtomicU64::new(0),
            rejected: Default::default(),
            verified_by_secret: (0..secret_count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn count_forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_upstream_timeout(&self) {
        self.upstream_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_connection_limit_pause(&self) {
        self.connection_limit_pauses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_rejection(&self, reason: RejectionReason) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_verified(&self, secret_index: usize) {
        if let Some(counter) = self.verified_by_secret.get(secret_index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reads every counter. Each is read on its own, so a snapshot taken under load may be a few
    /// requests apart between counters.
    pub(crate) fn snapshot(&self) -> GatewayStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        GatewayStats {
            forwarded: read(&self.forwarded),
            upstream_errors: read(&self.upstream_errors),
            upstream_timeouts: read(&self.upstream_timeouts),
            connection_limit_pauses: read(&self.connection_limit_pauses),
            rejected: RejectionReason::ALL
                .iter()
                .map(|&reason| (reason, read(&self.rejected[reason.index()])))
                .collect(),
            verified_by_secret: self.verified_by_secret.iter().map(read).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_listed_in_counter_order_with_distinct_names() {
        for (position, reason) in RejectionReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), position);
        }
        let names: std::collections::BTreeSet<_> =
            RejectionReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), RejectionReason::ALL.len());
    }

    #[test]
    fn verification_failures_map_to_reasons() {
        assert_eq!(
            RejectionReason::of(&VerifyError::Mismatch),
            RejectionReason::SignatureMismatch
        );
        assert_eq!(
            RejectionReason::of(&VerifyError::TooOld { age_secs: 301 }),
            RejectionReason::TimestampTooOld
        );
        assert_eq!(
            RejectionReason::of(&VerifyError::Replay),
            RejectionReason::Replay
        );
    }

    #[test]
    fn snapshot_counts_every_reason_and_secret() {
        let counters = Counters::new(2);
        counters.count_forwarded();
        counters.count_verified(1);
        counters.count_verified(7); // out of range: ignored rather than a panic
        counters.count_rejection(RejectionReason::Replay);
        counters.count_rejection(RejectionReason::Replay);
        counters.count_rejection(RejectionReason::BodyTooLarge);
        counters.count_rejection(RejectionReason::Overloaded);
        counters.count_connection_limit_pause();
        let stats = counters.snapshot();
        assert_eq!(stats.forwarded, 1);
        assert_eq!(stats.verified_by_secret, [0, 1]);
        assert_eq!(stats.rejected.len(), RejectionReason::ALL.len());
        assert_eq!(stats.rejected(RejectionReason::Replay), 2);
        assert_eq!(stats.total_rejected(), 4);
        assert_eq!(stats.connection_limit_pauses, 1);
        assert_eq!(
            stats.to_string(),
            "forwarded=1 upstream_errors=0 upstream_timeouts=0 connection_limit_pauses=1 \
             rejected=4 rejected.replay=2 rejected.body_too_large=1 rejected.overloaded=1 \
             verified_by_secret=0,1"
        );
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["rejected"]["replay"], 2);
        assert_eq!(json["rejected"]["overloaded"], 1);
        assert_eq!(json["connection_limit_pauses"], 1);
        assert_eq!(json["rejected"]["header_timeout"], 0);
        assert_eq!(json["verified_by_secret"], serde_json::json!([0, 1]));
    }
}
