//! What a gateway is told: where to listen, where to forward, how to verify, and its limits.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::slice;
use std::sync::Arc;
use std::time::Duration;

use hogguard_webhook::layer::DEFAULT_BODY_LIMIT;
use hogguard_webhook::replay::DEFAULT_CAPACITY;
use hogguard_webhook::{
    BuildError, DEFAULT_TOLERANCE, FileReplayStore, MemoryReplayStore, Scheme, SystemClock,
    Verifier, WebhookSecret,
};

use crate::error::GatewayError;
use crate::events::{EventSink, StderrSink};
use crate::upstream::Upstream;

/// Everything [`Gateway::bind`](crate::Gateway::bind) needs to start a gateway.
///
/// Make one with [`GatewayConfig::new`], which fills in the defaults below, then change the
/// fields you need:
///
/// | Field | Default |
/// |---|---|
/// | `tolerance` | [`DEFAULT_TOLERANCE`] (300 s) |
/// | `replay` | [`ReplayProtection::Memory`] |
/// | `replay_capacity` | [`DEFAULT_CAPACITY`] (100,000) |
/// | `body_limit` | 1 MiB |
/// | `response_limit` | 1 MiB |
/// | `max_concurrent_requests` | [`DEFAULT_MAX_CONCURRENT_REQUESTS`] (256) |
/// | `max_connections` | [`DEFAULT_MAX_CONNECTIONS`] (4096) |
/// | `timeouts` | [`Timeouts::default`] |
/// | `stats_listen` | `None` (no stats listener) |
/// | `events` | [`StderrSink`] |
/// | `rejection_log_limit` | [`DEFAULT_REJECTION_LOG_LIMIT`] (20 lines per second) |
///
/// Together the limits bound the gateway's memory: at most `max_concurrent_requests` bodies of up
/// to `body_limit` bytes (and as many upstream answers of up to `response_limit`) are buffered at
/// once, and at most `max_connections` connections are open.
#[non_exhaustive]
pub struct GatewayConfig {
    /// Address that receives webhook deliveries (port 0 picks a free port).
    ///
    /// The gateway speaks plain HTTP: TLS is terminated in front of it (a load balancer or a
    /// reverse proxy), which then forwards to this address.
    pub listen: SocketAddr,
    /// Where verified deliveries are forwarded.
    pub upstream: Upstream,
    /// The signature scheme the sender uses.
    pub scheme: Scheme,
    /// The active secrets: a delivery signed with any of them passes, so a rotation can run with
    /// the new and the old secret side by side.
    pub secrets: Vec<WebhookSecret>,
    /// How far a signed timestamp may lie from "now", in either direction (whole seconds).
    pub tolerance: Duration,
    /// How deliveries the upstream took are refused afterwards.
    pub replay: ReplayProtection,
    /// Most deliveries the replay store (memory or file) holds, being forwarded or taken and
    /// still inside their replay window. When it is full, new verified deliveries are answered
    /// `503` with `Retry-After: 1` rather than forgetting one; size it for the peak delivery
    /// rate times twice the tolerance.
    pub replay_capacity: usize,
    /// Largest request body accepted, in bytes; larger ones are answered `413`.
    pub body_limit: usize,
    /// Largest upstream response body relayed, in bytes; larger ones are answered `502`.
    pub response_limit: usize,
    /// Most requests handled at once. A request that finds them all taken is answered `503` with
    /// `Retry-After: 1` at once, before its body is read; webhook senders retry.
    pub max_concurrent_requests: usize,
    /// Most connections open at once on the delivery address. At the limit the gateway stops
    /// accepting (new connections wait in the operating system's backlog) until one closes.
    pub max_connections: usize,
    /// Timeouts against slow clients, a slow upstream, and a slow shutdown.
    pub timeouts: Timeouts,
    /// Optional second address that answers every request with the counters as JSON.
    ///
    /// The counters tell rejection reasons apart, which the `401` answer deliberately does not,
    /// so they are kept off the public address; bind this one to loopback or a private network.
    pub stats_listen: Option<SocketAddr>,
    /// Where log events go.
    pub events: Arc<dyn EventSink>,
    /// Most log lines per second for events any client can cause at will (rejections and
    /// connection-limit pauses); beyond it one line per second says how many were not logged.
    /// The counters are exact either way.
    pub rejection_log_limit: u32,
}

impl GatewayConfig {
    /// Makes a configuration with the defaults listed on [`GatewayConfig`].
    pub fn new(
        listen: SocketAddr,
        upstream: Upstream,
        scheme: Scheme,
        secrets: Vec<WebhookSecret>,
    ) -> Self {
        Self {
            listen,
            upstream,
            scheme,
            secrets,
            tolerance: DEFAULT_TOLERANCE,
            replay: ReplayProtection::default(),
            replay_capacity: DEFAULT_CAPACITY,
            body_limit: DEFAULT_BODY_LIMIT,
            response_limit: DEFAULT_RESPONSE_LIMIT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            timeouts: Timeouts::default(),
            stats_listen: None,
            events: Arc::new(StderrSink),
            rejection_log_limit: DEFAULT_REJECTION_LOG_LIMIT,
        }
    }

    /// Refuses limits of zero, with which the gateway could never take a delivery.
    pub(crate) fn check_limits(&self) -> Result<(), GatewayError> {
        let replay_store = self.replay != ReplayProtection::Disabled;
        let limits = [
            ("replay_capacity", self.replay_capacity, replay_store),
            (
                "max_concurrent_requests",
                self.max_concurrent_requests,
                true,
            ),
            ("max_connections", self.max_connections, true),
        ];
        match limits.iter().find(|&&(_, value, used)| used && value == 0) {
            Some(&(setting, ..)) => Err(GatewayError::ZeroLimit { setting }),
            None => Ok(()),
        }
    }

    /// Builds the verifier (checking the secrets) and opens the replay store.
    pub(crate) fn build_verifier(&self) -> Result<Verifier, GatewayError> {
        if self.secrets.is_empty() {
            return Err(GatewayError::NoSecrets);
        }
        let verifier = Verifier::new(self.scheme.clone(), &self.secrets)
            .map_err(|err| match err {
                BuildError::Secret(source) => {
                    // The verifier does not say which secret it refused; find it, so the
                    // operator knows which variable to fix.
                    let index = self
                        .secrets
                        .iter()
                        .position(|secret| {
                            Verifier::new(self.scheme.clone(), slice::from_ref(secret)).is_err()
                        })
                        .unwrap_or(0);
                    GatewayError::Secret { index, source }
                }
                other => GatewayError::Scheme(other),
            })?
            .with_tolerance(self.tolerance);
        Ok(match &self.replay {
            ReplayProtection::Memory => {
                verifier.with_replay_store(MemoryReplayStore::new(self.replay_capacity))
            }
            ReplayProtection::File(path) => {
                let store = FileReplayStore::open_with(path, self.replay_capacity, &SystemClock)
                    .map_err(GatewayError::ReplayStore)?;
                verifier.with_replay_store(store)
            }
            ReplayProtection::Disabled => verifier,
        })
    }
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("listen", &self.listen)
            .field("upstream", &self.upstream)
            .field("scheme", &self.scheme)
            .field("secrets", &self.secrets)
            .field("tolerance", &self.tolerance)
            .field("replay", &self.replay)
            .field("replay_capacity", &self.replay_capacity)
            .field("body_limit", &self.body_limit)
            .field("response_limit", &self.response_limit)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("max_connections", &self.max_connections)
            .field("timeouts", &self.timeouts)
            .field("stats_listen", &self.stats_listen)
            .field("rejection_log_limit", &self.rejection_log_limit)
            .finish_non_exhaustive()
    }
}

/// Largest upstream response body relayed unless configured otherwise: 1 MiB. Webhook answers
/// are tiny; the limit only keeps a misbehaving upstream from filling the gateway's memory.
pub const DEFAULT_RESPONSE_LIMIT: usize = 1024 * 1024;

/// Most requests handled at once unless configured otherwise: with the default body and response
/// limits, at most about 512 MiB of buffers in the worst case, and far more than webhook senders
/// need in parallel.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

/// Most connections open at once unless configured otherwise; each idle one costs a few KiB.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Most rejection (and connection-limit) log lines per second unless configured otherwise:
/// enough to see what a burst is, too few for a flood to fill the disk or slow the gateway.
pub const DEFAULT_REJECTION_LOG_LIMIT: u32 = 20;

/// How the gateway refuses a delivery the upstream already took.
///
/// Deliveries are remembered for twice the tolerance after they were taken; GitHub and hex
/// deliveries, which sign no time, only for that window (see [`hogguard_webhook::replay`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReplayProtection {
    /// Remember taken deliveries in memory; a restart forgets them, reopening the replay window
    /// for up to twice the tolerance.
    #[default]
    Memory,
    /// Remember them in this file too (one `fsync` per delivery taken; created private), so a
    /// restart does not reopen the window. The file is locked: one gateway per file.
    File(PathBuf),
    /// Remember nothing, so a captured delivery can be replayed within the tolerance. Only for
    /// benchmarks and for upstreams that deduplicate deliveries themselves.
    Disabled,
}

/// Timeouts that bound how long clients, the upstream and a shutdown can hold the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Time allowed for a request head (request line and headers) to arrive, counted from when
    /// the gateway starts waiting for it: the connection opened, or the previous answer sent.
    /// It therefore also closes keep-alive connections left idle this long.
    pub header_read: Duration,
    /// Time allowed for the whole request body to arrive, counted from the end of the head;
    /// a request that misses it is answered `408` and its connection closed.
    pub body_read: Duration,
    /// Time allowed for the whole upstream exchange (connect, send, and the complete answer);
    /// past it the request is answered `504`.
    pub upstream: Duration,
    /// After a shutdown signal, how long requests in flight may take to finish before their
    /// connections are closed.
    pub shutdown_grace: Duration,
}

impl Default for Timeouts {
    /// 10 s for the head, the body and the upstream; 15 s of shutdown grace, enough for a request
    /// that just started its upstream call.
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            upstream: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_secrets_are_named_by_position() {
        let upstream = "http://127.0.0.1:1".parse().unwrap();
        let secrets = vec![
            WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), // hogguard:allow (the Standard Webhooks spec's public example secret)
            WebhookSecret::new("whsec_not base64"),
        ];
        let config = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            upstream,
            Scheme::Standard,
            secrets,
        );
        let err = config.build_verifier().unwrap_err();
        assert!(
            matches!(err, GatewayError::Secret { index: 1, .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "webhook secret #2 is not usable");
        assert!(!format!("{config:?}").contains("MfKQ9r8G"));
    }

    #[test]
    fn an_invalid_hex_header_name_stops_the_start() {
        let config = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "http://127.0.0.1:1".parse().unwrap(),
            Scheme::hex("x-signature: sha256"),
            vec![WebhookSecret::new("hex secret")],
        );
        let err = config.build_verifier().unwrap_err();
        assert!(
            matches!(
                &err,
                GatewayError::Scheme(BuildError::InvalidHeaderName { name })
                    if name == "x-signature: sha256"
            ),
            "{err:?}"
        );
    }

    #[test]
    fn limits_of_zero_are_refused() {
        let mut config = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "http://127.0.0.1:1".parse().unwrap(),
            Scheme::GitHub,
            vec![WebhookSecret::new("secret")],
        );
        assert_eq!(config.replay_capacity, DEFAULT_CAPACITY);
        assert!(config.check_limits().is_ok());
        // A capacity only matters with a store.
        config.replay_capacity = 0;
        assert!(matches!(
            config.check_limits(),
            Err(GatewayError::ZeroLimit {
                setting: "replay_capacity"
            })
        ));
        config.replay = ReplayProtection::Disabled;
        assert!(config.check_limits().is_ok());
        config.max_connections = 0;
        let err = config.check_limits().unwrap_err();
        assert!(
            matches!(
                err,
                GatewayError::ZeroLimit {
                    setting: "max_connections"
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "max_connections must be at least 1");
    }

    #[test]
    fn a_gateway_needs_a_secret() {
        let config = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "http://127.0.0.1:1".parse().unwrap(),
            Scheme::GitHub,
            Vec::new(),
        );
        assert!(matches!(
            config.build_verifier(),
            Err(GatewayError::NoSecrets)
        ));
    }
}
