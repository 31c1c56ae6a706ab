//! A verifying webhook gateway for hogguard: a small HTTP reverse proxy that sits in front of an
//! application receiving webhooks and lets through only deliveries whose signature verifies, so
//! the application never sees a forged, stale or replayed one and never handles the secret.
//!
//! ```text
//! sender ──HTTPS──▶ TLS terminator ──HTTP──▶ gateway (verify) ──HTTP──▶ upstream application
//! ```
//!
//! The gateway speaks plain HTTP/1.1 on both sides and has no TLS code: TLS from the internet is
//! terminated in front of it (a load balancer or reverse proxy), and the upstream runs on the same
//! host or a private network. Verification is [`hogguard_webhook`]'s, through its
//! [`VerifyWebhookLayer`](hogguard_webhook::layer::VerifyWebhookLayer); this crate adds the
//! server, the forwarding, timeouts, logs, counters and shutdown.
//!
//! # What a sender gets
//!
//! | Request | Answer |
//! |---|---|
//! | verified | the upstream's status, headers (end-to-end ones) and body |
//! | any verification failure (missing or malformed header, stale or future timestamp, no matching signature, replay) | `401 {"error":"invalid signature"}`, the same for every reason |
//! | verified, but a copy of it is being forwarded right now | `503 {"error":"temporarily unavailable"}` with `Retry-After: 1`, not forwarded |
//! | verified, but the replay store cannot record it (full of unexpired deliveries, or a failed write) | `503 {"error":"temporarily unavailable"}` with `Retry-After: 1` |
//! | [`GatewayConfig::max_concurrent_requests`] requests already being handled | `503 {"error":"temporarily unavailable"}` with `Retry-After: 1`, at once, body unread, connection closed |
//! | body over the limit | `413 {"error":"payload too large"}` |
//! | body not complete within the body read timeout | `408 {"error":"request body timeout"}`, connection closed |
//! | body stream broken | `400 {"error":"unreadable body"}` |
//! | verified, upstream unreachable, broken off or answer over the response limit | `502 {"error":"upstream unavailable"}` |
//! | verified, upstream exchange over the upstream timeout | `504 {"error":"upstream timeout"}` |
//! | `GET`/`HEAD` [`HEALTH_PATH`] | `200 {"status":"ok"}` from the gateway, not forwarded, not subject to the request limit |
//! | no complete request head within the header read timeout | connection closed |
//!
//! # Forwarding
//!
//! A verified request goes to the [`Upstream`] with its method, path (after the upstream's own
//! path), query, headers and the exact body bytes received; nothing is parsed or re-encoded.
//! Hop-by-hop headers (`Connection` and the headers it names, `Keep-Alive`, `Transfer-Encoding`,
//! `TE`, `Trailer`, `Upgrade`, `Proxy-*`) stop at the gateway in both directions, the peer's
//! address is appended to `X-Forwarded-For`, and `Host` is passed on as received. The upstream's
//! answer is buffered (up to the response limit) before it is relayed, so the upstream timeout
//! covers the whole exchange. Upstream connections are pooled and kept alive.
//!
//! # Limits
//!
//! Memory is bounded: at most [`GatewayConfig::max_concurrent_requests`] requests are handled
//! at once, each buffering at most the body limit and the response limit; a request over the
//! limit is refused before its body is read. At most [`GatewayConfig::max_connections`]
//! connections are open on the delivery address; at the limit the gateway stops accepting until
//! one closes, and the header and body read timeouts bound how long a slow client holds one.
//!
//! # Logs and counters
//!
//! Every rejection is counted by [`RejectionReason`] and reported as one
//! [`GatewayEvent::Rejected`] with the reason, the peer's address, the method and the path
//! (never header values, bodies, queries or secrets); upstream failures likewise. Rejection lines
//! and [`GatewayEvent::ConnectionLimitReached`] lines are capped at
//! [`GatewayConfig::rejection_log_limit`] per second, so a flood of bad requests cannot flood the
//! log; a [`GatewayEvent::NotLogged`] line says how many were left out, and the counters stay
//! exact. Events go to an [`EventSink`], standard error by default. The final [`GatewayStats`] are logged and returned
//! on shutdown. The live counters are served as JSON only on the optional, separate
//! [`GatewayConfig::stats_listen`] address: they tell rejection reasons apart, which the `401`
//! deliberately does not, so they are kept off the public address.
//!
//! # Replays, retries and restarts
//!
//! Replay protection is on by default, in memory; [`ReplayProtection::File`] keeps the record in
//! a file so that a restart does not reopen the replay window.
//!
//! A delivery is used up only once the upstream took it: answered `2xx`, or a `4xx` other than
//! `408`, `425` and `429`. When the upstream is unreachable (`502`), too slow (`504`), answers
//! `5xx` or a redirect, or the gateway stops before the answer came, the delivery stays open and
//! the sender's retry of it is forwarded. While a delivery is being forwarded, a copy of it (a
//! sender that retried early, a duplicate) gets `503` with `Retry-After: 1` and is not
//! forwarded; once the first is settled, the next copy is either a replay (`401`) or forwarded.
//! The store is written (with an `fsync` for the file) on the request's task after the upstream
//! answered and before the answer is relayed. Only taken deliveries are written to the file, so
//! a gateway that crashes mid-request takes the delivery when it comes again: at worst the
//! upstream sees a delivery twice (it took one just before the crash), never none.
//!
//! # Example
//!
//! Bind on a free port, learn the address, and serve until a shutdown future completes (here at
//! once). A command-line program calls [`run_until_signalled`] instead, which stops on SIGTERM
//! or Ctrl-C.
//!
//! ```
//! use hogguard_gateway::{Gateway, GatewayConfig, GatewayError, ReplayProtection};
//! use hogguard_webhook::{Scheme, WebhookSecret};
//!
//! let secret = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); // hogguard:allow (the Standard Webhooks spec's public example secret)
//! let mut config = GatewayConfig::new(
//!     "127.0.0.1:0".parse()?,
//!     "http://127.0.0.1:8080/webhooks".parse()?,
//!     Scheme::Standard,
//!     vec![secret],
//! );
//! config.body_limit = 256 * 1024;
//! config.replay = ReplayProtection::Memory;
//!
//! let runtime = tokio::runtime::Runtime::new()?;
//! let stats = runtime.block_on(async {
//!     let gateway = Gateway::bind(config).await?;
//!     assert_ne!(gateway.local_addr().port(), 0);
//!     Ok::<_, GatewayError>(gateway.serve(std::future::ready(())).await)
//! })?;
//! assert_eq!(stats.forwarded, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod config;
mod deliveries;
mod error;
mod events;
mod forward;
mod headers;
mod log_limit;
mod reporter;
mod request;
mod run;
mod server;
mod stats;
mod upstream;

pub use config::{
    DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_CONNECTIONS, DEFAULT_REJECTION_LOG_LIMIT,
    DEFAULT_RESPONSE_LIMIT, GatewayConfig, ReplayProtection, Timeouts,
};
pub use deliveries::HEALTH_PATH;
pub use error::GatewayError;
pub use events::{EventSink, GatewayEvent, MemorySink, RequestLine, StderrSink, error_chain};
pub use headers::remove_hop_by_hop;
pub use run::{StopSignal, run_until_signalled, stop_signal};
pub use server::Gateway;
pub use stats::{GatewayStats, RejectionReason};
pub use upstream::{InvalidUpstream, Upstream};
