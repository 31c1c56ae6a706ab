//! Counting and logging what the gateway does: one place shared by the accept loop, every
//! connection and the forwarding step.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{EventSink, GatewayEvent, RequestLine, error_chain};
use crate::log_limit::LogLimit;
use crate::stats::{Counters, GatewayStats, RejectionReason};

/// How long the accept loop pauses after a failed accept (typically out of file descriptors),
/// so that it does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The gateway's counters and event sink, with the log limit for events any client can cause.
pub(crate) struct Reporter {
    counters: Counters,
    events: Arc<dyn EventSink>,
    log_limit: LogLimit,
}

impl Reporter {
    /// Makes zeroed counters for `secret_count` secrets, reporting to `events` with at most
    /// `rejection_log_limit` rejection lines per second.
    pub(crate) fn new(
        secret_count: usize,
        events: Arc<dyn EventSink>,
        rejection_log_limit: u32,
    ) -> Self {
        Self {
            counters: Counters::new(secret_count),
            events,
            log_limit: LogLimit::new(rejection_log_limit),
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> GatewayStats {
        self.counters.snapshot()
    }

    /// Records an event only the gateway itself causes, so it is never held back.
    pub(crate) fn record(&self, event: &GatewayEvent<'_>) {
        self.events.record(event);
    }

    /// Counts and logs a refused request or connection.
    pub(crate) fn reject(
        &self,
        reason: RejectionReason,
        peer: SocketAddr,
        request: Option<RequestLine<'_>>,
        detail: &str,
    ) {
        self.counters.count_rejection(reason);
        self.record_limited(&GatewayEvent::Rejected {
            reason,
            remote: peer,
            request,
            detail,
        });
    }

    /// Counts and logs that the accept loop stopped at the connection limit.
    pub(crate) fn connection_limit_reached(&self, limit: usize) {
        self.counters.count_connection_limit_pause();
        self.record_limited(&GatewayEvent::ConnectionLimitReached { limit });
    }

    /// Counts and logs a connection that ended in an error before or between requests.
    pub(crate) fn connection_failed(
        &self,
        err: &hyper::Error,
        peer: SocketAddr,
        served_a_request: bool,
    ) {
        let reason = if err.is_timeout() {
            // After a request, the header timeout is the keep-alive idle timeout doing its job;
            // before any, it is a client that never sent a complete head.
            if served_a_request {
                return;
            }
            RejectionReason::HeaderTimeout
        } else if err.is_parse() {
            RejectionReason::MalformedRequest
        } else {
            // A client that went away mid-exchange: nothing was refused.
            return;
        };
        self.reject(reason, peer, None, &error_chain(err));
    }

    /// Logs a failed accept and pauses briefly, so the accept loop does not spin.
    pub(crate) async fn accept_failed(&self, err: &io::Error) {
        self.record(&GatewayEvent::AcceptFailed {
            detail: &error_chain(err),
        });
        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
    }

    /// Reports, as one line, how many events the log limit held back and has not reported yet.
    pub(crate) fn report_held_back(&self) {
        self.report_not_logged(self.log_limit.take_held_back());
    }

    /// Records an event any client can cause at will, within the log limit.
    fn record_limited(&self, event: &GatewayEvent<'_>) {
        let admission = self.log_limit.admit(Instant::now());
        self.report_not_logged(admission.held_back_before);
        if admission.log {
            self.events.record(event);
        }
    }

    /// Reports, as one line, how many events the log limit held back (if any).
    fn report_not_logged(&self, count: u64) {
        if count > 0 {
            self.events.record(&GatewayEvent::NotLogged {
                count,
                limit_per_second: self.log_limit.per_period(),
            });
        }
    }
}
