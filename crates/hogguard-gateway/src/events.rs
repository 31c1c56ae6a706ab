//! Log events: what the gateway reports while it runs, and where the reports go.
//!
//! Every event renders as one line of `key=value` pairs. Events carry reasons, addresses,
//! methods and paths, never header values (which hold signatures), request bodies or secrets;
//! paths are escaped and shortened, so a hostile client cannot forge log lines. Events any client
//! can cause at will ([`GatewayEvent::Rejected`], [`GatewayEvent::ConnectionLimitReached`]) are
//! capped per second; [`GatewayEvent::NotLogged`] reports the rest.

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::Method;
use tokio::sync::Notify;

use crate::stats::{GatewayStats, RejectionReason};
use crate::upstream::Upstream;

/// Receives the gateway's log events; the default, [`StderrSink`], writes them to standard error.
///
/// Implement it to send events elsewhere, or to capture them in tests. `record` is called on the
/// request's task, so it should not block for long.
pub trait EventSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &GatewayEvent<'_>);
}

/// An [`EventSink`] that writes each event as one line to standard error, prefixed with
/// `hogguard gateway: `.
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrSink;

impl EventSink for StderrSink {
    fn record(&self, event: &GatewayEvent<'_>) {
        // A closed or full stderr must not take the gateway down: the event is dropped instead.
        let _ = writeln!(std::io::stderr().lock(), "hogguard gateway: {event}");
    }
}

/// An [`EventSink`] that keeps each event's log line in memory, for tests and for programs that
/// embed the gateway and show its events their own way.
#[derive(Debug, Default)]
pub struct MemorySink {
    lines: Mutex<Vec<String>>,
    added: Notify,
}

impl MemorySink {
    /// Returns every line recorded so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns the lines recorded so far that start with `prefix`.
    pub fn lines_starting(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.starts_with(prefix))
            .collect()
    }

    /// Waits until a line starting with `prefix` has been recorded.
    pub async fn wait_for(&self, prefix: &str) {
        loop {
            // Registered before looking, so a line recorded in between is not missed.
            let added = self.added.notified();
            if self
                .lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|line| line.starts_with(prefix))
            {
                return;
            }
            added.await;
        }
    }
}

impl EventSink for MemorySink {
    fn record(&self, event: &GatewayEvent<'_>) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.to_string());
        self.added.notify_waiters();
    }
}

/// Something the gateway reports. Display gives the log line (without a prefix).
#[derive(Debug)]
#[non_exhaustive]
pub enum GatewayEvent<'a> {
    /// The gateway is accepting connections.
    Listening {
        /// The address deliveries are received on.
        address: SocketAddr,
        /// The stats address, if one is configured.
        stats_address: Option<SocketAddr>,
        /// Where verified deliveries go.
        upstream: &'a Upstream,
    },
    /// A request or connection was refused without being forwarded.
    Rejected {
        /// Why.
        reason: RejectionReason,
        /// The peer's address (with TLS terminated in front, the terminator's address).
        remote: SocketAddr,
        /// Method and path of the request; `None` when no complete request head arrived.
        request: Option<RequestLine<'a>>,
        /// Details for the operator, such as which header is missing.
        detail: &'a str,
    },
    /// A verified delivery could not be forwarded: it was answered `502` or `504`.
    UpstreamFailed {
        /// The status the sender got: `502` or `504`.
        status: u16,
        /// The peer's address.
        remote: SocketAddr,
        /// Method and path of the request.
        request: RequestLine<'a>,
        /// What went wrong.
        detail: &'a str,
    },
    /// The upstream took a delivery, but the replay store could not record it (a failed write):
    /// the upstream's answer was relayed, but a copy of the delivery would be forwarded again.
    DeliveryNotRecorded {
        /// The peer's address.
        remote: SocketAddr,
        /// Method and path of the request.
        request: RequestLine<'a>,
        /// What went wrong.
        detail: &'a str,
    },
    /// [`GatewayConfig::max_connections`](crate::GatewayConfig::max_connections) connections are
    /// open: the gateway accepts no more until one closes.
    ConnectionLimitReached {
        /// The limit.
        limit: usize,
    },
    /// More rejections and connection-limit pauses came in one second than the log limit lets
    /// through; these many were not logged one by one (the counters include them).
    NotLogged {
        /// How many events were not logged.
        count: u64,
        /// The limit, in lines per second.
        limit_per_second: u32,
    },
    /// Accepting a connection failed (for example, out of file descriptors); the gateway pauses
    /// briefly and carries on.
    AcceptFailed {
        /// The error.
        detail: &'a str,
    },
    /// A shutdown was requested: no new connections are accepted, and open ones get the grace
    /// period to finish their requests.
    ShuttingDown {
        /// Connections still open.
        open_connections: usize,
        /// How long they may take.
        grace: Duration,
    },
    /// The grace period ran out; these connections are closed with their requests unfinished.
    ConnectionsCutOff {
        /// How many.
        count: usize,
    },
    /// The gateway has stopped; these are its final counters.
    Stopped {
        /// The counters.
        stats: &'a GatewayStats,
    },
}

/// The method and path of a request, for log lines (the query is left out: it may carry
/// tokens).
#[derive(Clone, Copy, Debug)]
pub struct RequestLine<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request path, without the query.
    pub path: &'a str,
}

/// Longest path shown in a log line, in bytes; a longer one is cut and marked with `…`.
const MAX_LOGGED_PATH: usize = 256;

impl fmt::Display for RequestLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut end = self.path.len().min(MAX_LOGGED_PATH);
        while !self.path.is_char_boundary(end) {
            end -= 1;
        }
        let ellipsis = if end < self.path.len() { "…" } else { "" };
        // `{:?}` quotes and escapes, so the path cannot break out of its field or the line.
        write!(
            f,
            "method={} path={:?}{ellipsis}",
            self.method,
            &self.path[..end]
        )
    }
}

impl fmt::Display for GatewayEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listening {
                address,
                stats_address,
                upstream,
            } => {
                write!(
                    f,
                    "listening on {address}, forwarding verified deliveries to {upstream}"
                )?;
                if let Some(stats_address) = stats_address {
                    write!(f, "; counters on http://{stats_address}/")?;
                }
                Ok(())
            }
            Self::Rejected {
                reason,
                remote,
                request,
                detail,
            } => {
                write!(f, "rejected reason={reason} remote={remote}")?;
                if let Some(request) = request {
                    write!(f, " {request}")?;
                }
                write!(f, " detail={detail:?}")
            }
            Self::UpstreamFailed {
                status,
                remote,
                request,
                detail,
            } => write!(
                f,
                "upstream failed status={status} remote={remote} {request} detail={detail:?}"
            ),
            Self::DeliveryNotRecorded {
                remote,
                request,
                detail,
            } => write!(
                f,
                "delivery not recorded remote={remote} {request} detail={detail:?}: forwarded, \
                 but a copy would be forwarded again"
            ),
            Self::ConnectionLimitReached { limit } => write!(
                f,
                "connection limit reached limit={limit}: not accepting until a connection closes"
            ),
            Self::NotLogged {
                count,
                limit_per_second,
            } => write!(
                f,
                "log limit reached not_logged={count} limit_per_second={limit_per_second}: \
                 rejections and connection-limit pauses beyond the limit are only counted"
            ),
            Self::AcceptFailed { detail } => write!(f, "accept failed detail={detail:?}"),
            Self::ShuttingDown {
                open_connections,
                grace,
            } => write!(
                f,
                "shutting down: no new connections; waiting up to {} ms for {open_connections} \
                 open connections",
                grace.as_millis()
            ),
            Self::ConnectionsCutOff { count } => write!(
                f,
                "shutdown grace period over: closing {count} connections with requests unfinished"
            ),
            Self::Stopped { stats } => write!(f, "stopped {stats}"),
        }
    }
}

/// Renders an error and its sources as one `a: b: c` text, for event details; a cause that
/// an error already prints itself is not said twice.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_lines_escape_hostile_paths() {
        let method = Method::POST;
        let event = GatewayEvent::Rejected {
            reason: RejectionReason::SignatureMismatch,
            remote: "192.0.2.7:4000".parse().unwrap(),
            request: Some(RequestLine {
                method: &method,
                path: "/hook\"\nhogguard gateway: forged",
            }),
            detail: "no signature matched an active secret",
        };
        let line = event.to_string();
        assert_eq!(
            line,
            "rejected reason=signature_mismatch remote=192.0.2.7:4000 method=POST \
             path=\"/hook\\\"\\nhogguard gateway: forged\" \
             detail=\"no signature matched an active secret\""
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        let method = Method::GET;
        let path = format!("/{}", "é".repeat(300));
        let line = RequestLine {
            method: &method,
            path: &path,
        }
        .to_string();
        assert!(line.ends_with("\"…"), "{line}");
        assert!(line.len() < MAX_LOGGED_PATH + 40);
    }

    #[test]
    fn connection_rejections_have_no_request_line() {
        let event = GatewayEvent::Rejected {
            reason: RejectionReason::HeaderTimeout,
            remote: "[::1]:80".parse().unwrap(),
            request: None,
            detail: "read header from client timeout",
        };
        assert_eq!(
            event.to_string(),
            "rejected reason=header_timeout remote=[::1]:80 detail=\"read header from client timeout\""
        );
    }

    #[test]
    fn error_chains_join_every_source() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(Wrapped(inner));
        assert_eq!(error_chain(&outer), "wrapped: refused");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
