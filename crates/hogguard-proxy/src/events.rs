//! What the proxy reports while it runs, and where the reports go.
//!
//! Each event is one line of `key=value` pairs. Events never carry a token, a key, a header
//! value or a body: clients appear by name, credentials by PostHog's mask. Failures that every
//! request could repeat (PostHog unreachable, the audit log unwritable) are reported when they
//! start and when they end, not once per request; [`ProxyStats`] counts every occurrence.

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use crate::stats::ProxyStats;

/// Receives the proxy's events; [`StderrSink`] writes them to standard error.
///
/// `record` is called on request tasks, so it must not block for long.
pub trait EventSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &ProxyEvent<'_>);
}

/// Writes each event as one line to standard error, prefixed with `hogguard proxy: `.
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrSink;

impl EventSink for StderrSink {
    fn record(&self, event: &ProxyEvent<'_>) {
        // A closed standard error must not stop the proxy: the line is dropped.
        let _ = writeln!(std::io::stderr().lock(), "hogguard proxy: {event}");
    }
}

/// What caused a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadTrigger {
    /// `SIGHUP`, or a call of [`ReloadHandle::reload`](crate::ReloadHandle::reload).
    Signal,
    /// A watched file (an env file, the configuration) changed.
    FileChanged,
}

impl fmt::Display for ReloadTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReloadTrigger::Signal => "signal",
            ReloadTrigger::FileChanged => "file-changed",
        })
    }
}

/// Something the proxy reports. Display gives the log line (without a prefix).
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyEvent<'a> {
    /// The proxy accepts connections.
    Listening {
        /// Where.
        address: SocketAddr,
        /// PostHog's private API.
        api: &'a str,
        /// PostHog's capture host.
        ingest: &'a str,
        /// Whose credentials are injected.
        environment: &'a str,
        /// How many clients are configured.
        clients: usize,
        /// Where the scope table comes from, and its date.
        table: &'a str,
    },
    /// Audit failures do not refuse calls (`audit = "best-effort"`): said loudly at start.
    AuditBestEffort,
    /// The environment has no personal API key: only the calls a project secret key serves
    /// can be forwarded.
    NoPersonalKey {
        /// The environment.
        environment: &'a str,
    },
    /// Credentials and clients were read again.
    Reloaded {
        /// Why.
        trigger: ReloadTrigger,
        /// How many clients are configured now.
        clients: usize,
        /// The mask of the personal key now injected, if any.
        personal_key: Option<&'a str>,
        /// The mask of the project secret key now injected, if any.
        secret_key: Option<&'a str>,
    },
    /// Reading them again failed; the previous ones stay in use.
    ReloadFailed {
        /// Why it was tried.
        trigger: ReloadTrigger,
        /// What went wrong, with its causes.
        error: &'a str,
    },
    /// An audit entry could not be written (reported when it starts failing).
    AuditFailing {
        /// What went wrong, with its causes.
        error: &'a str,
        /// Whether calls are refused meanwhile (`audit = "required"`).
        refusing: bool,
    },
    /// Audit entries are written again.
    AuditRecovered,
    /// PostHog could not be reached or did not answer in time (reported when it starts).
    UpstreamFailing {
        /// The status clients get: `502` or `504`.
        status: u16,
        /// What went wrong, with its causes.
        error: &'a str,
    },
    /// PostHog answers again.
    UpstreamRecovered,
    /// Shutting down: no new connections; requests in flight get the grace period.
    ShuttingDown {
        /// Connections still open.
        open_connections: usize,
        /// How long they may take.
        grace: Duration,
    },
    /// Stopped, with the final counters.
    Stopped {
        /// The counters.
        stats: &'a ProxyStats,
    },
}

impl fmt::Display for ProxyEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyEvent::Listening {
                address,
                api,
                ingest,
                environment,
                clients,
                table,
            } => write!(
                f,
                "event=listening address={address} api={api} ingest={ingest} environment={environment:?} clients={clients} scope_table={table:?}"
            ),
            ProxyEvent::AuditBestEffort => f.write_str(
                "event=audit-best-effort warning=\"calls are forwarded even when their audit entry cannot be written ([proxy] audit = \\\"best-effort\\\")\"",
            ),
            ProxyEvent::NoPersonalKey { environment } => write!(
                f,
                "event=no-personal-key environment={environment:?} warning=\"only local evaluation and remote config can be served\""
            ),
            ProxyEvent::Reloaded {
                trigger,
                clients,
                personal_key,
                secret_key,
            } => write!(
                f,
                "event=reloaded trigger={trigger} clients={clients} personal_key={} secret_key={}",
                personal_key.unwrap_or("none"),
                secret_key.unwrap_or("none"),
            ),
            ProxyEvent::ReloadFailed { trigger, error } => write!(
                f,
                "event=reload-failed trigger={trigger} error={error:?} kept=previous"
            ),
            ProxyEvent::AuditFailing { error, refusing } => write!(
                f,
                "event=audit-failing error={error:?} calls={}",
                if *refusing { "refused" } else { "forwarded-unaudited" }
            ),
            ProxyEvent::AuditRecovered => f.write_str("event=audit-recovered"),
            ProxyEvent::UpstreamFailing { status, error } => {
                write!(f, "event=upstream-failing status={status} error={error:?}")
            }
            ProxyEvent::UpstreamRecovered => f.write_str("event=upstream-recovered"),
            ProxyEvent::ShuttingDown {
                open_connections,
                grace,
            } => write!(
                f,
                "event=shutting-down open_connections={open_connections} grace_ms={}",
                grace.as_millis()
            ),
            ProxyEvent::Stopped { stats } => write!(
                f,
                "event=stopped forwarded={} public={} refused={} unauthenticated={} audit_failures={} upstream_failures={}",
                stats.forwarded,
                stats.public,
                stats.refused,
                stats.unauthenticated,
                stats.audit_failures,
                stats.upstream_failures,
            ),
        }
    }
}
