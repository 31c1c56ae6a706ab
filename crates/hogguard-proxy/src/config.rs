//! How a proxy is set up: where it listens, where PostHog is, its limits, and the reloadable
//! part (clients, credentials, scope table) that a [`SnapshotSource`] reads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hogguard_posthog::Hosts;
use hogguard_secret::Secret;

use crate::BoxError;
use crate::clients::Client;
use crate::events::{EventSink, StderrSink};
use crate::table::ScopeTable;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8788);
/// The default largest request body: capture's `/batch` limit, the largest PostHog takes.
pub const DEFAULT_BODY_LIMIT: usize = 20 * 1024 * 1024;
/// The default most connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// What happens to a call whose audit entry cannot be written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditMode {
    /// It is refused with `503` (fail closed), and later calls are refused before they reach
    /// PostHog until an entry can be written again.
    #[default]
    Required,
    /// It goes ahead; the failure is reported (loudly, when it starts and when it ends).
    BestEffort,
}

/// Time limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For a request head to arrive (and for an idle keep-alive connection).
    pub header_read: Duration,
    /// For a request body to arrive completely.
    pub body_read: Duration,
    /// For PostHog to answer a forwarded call (up to its answer's head).
    pub upstream: Duration,
    /// For requests in flight to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(60),
            upstream: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A proxy's fixed settings.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// PostHog's private API and capture hosts.
    pub hosts: Hosts,
    /// What a failed audit entry means for the call.
    pub audit: AuditMode,
    /// The largest request body forwarded, in bytes; larger ones get `413`.
    pub body_limit: usize,
    /// The largest request head (request line and headers), in bytes; larger ones get `431`.
    pub header_limit: usize,
    /// The most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time limits.
    pub timeouts: Timeouts,
    /// How often the [`SnapshotSource::watched_files`] are looked at for changes.
    pub watch_interval: Duration,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("listen", &self.listen)
            .field("hosts", &self.hosts)
            .field("audit", &self.audit)
            .field("body_limit", &self.body_limit)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl ProxyConfig {
    /// Settings with the defaults: `listen` for PostHog at `hosts`, audit required.
    pub fn new(listen: SocketAddr, hosts: Hosts) -> ProxyConfig {
        ProxyConfig {
            listen,
            hosts,
            audit: AuditMode::Required,
            body_limit: DEFAULT_BODY_LIMIT,
            header_limit: 64 * 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            timeouts: Timeouts::default(),
            watch_interval: Duration::from_secs(1),
            events: Arc::new(StderrSink),
        }
    }
}

/// What the proxy reads again on `SIGHUP` and when a watched file changes: requests already
/// in flight finish with the snapshot they started with.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The environment whose credentials are injected (audit entries name it).
    pub environment: String,
    /// The clients.
    pub clients: Vec<Client>,
    /// The environment's personal API key (`phx_`), injected for the private API.
    pub personal_key: Option<Secret>,
    /// The environment's project secret key (`phs_`), injected where PostHog serves it (flag
    /// definitions for local evaluation, remote config); the personal key otherwise.
    pub secret_key: Option<Secret>,
    /// The scope of each endpoint.
    pub table: Arc<ScopeTable>,
}

/// Reads a [`Snapshot`]: the binary reads its configuration and env files.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Reads the clients, credentials and table as they are now.
    fn load(&self) -> Result<Snapshot, BoxError>;

    /// The files whose change means the snapshot should be read again; asked at start and
    /// after each reload (their state is looked at every watch interval).
    fn watched_files(&self) -> Vec<PathBuf>;
}
