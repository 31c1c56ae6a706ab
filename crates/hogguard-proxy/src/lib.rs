//! hogguard's PostHog API proxy: services call PostHog through it with a client token of
//! their own, each limited to the scopes it needs; the proxy checks the scope each call
//! requires, injects the environment's real key, and audits every call.
//!
//! ```text
//! service (SDK, script, AI agent) ──hgp_ token──▶ proxy ──phx_/phs_ key──▶ PostHog
//!                                                  │
//!                                                  └──▶ audit log (posthog.api.call)
//! ```
//!
//! # What a call gets
//!
//! | Call | Answer |
//! |---|---|
//! | PostHog's public endpoints (`/batch/`, `/i/v0/e/`, `/e/`, `/capture/`, `/track/`, `/engage/`, `/s/`, `/i/v1/analytics/events`, `/flags/`, `/decide/`, exactly so spelled) | passed to the capture host untouched (no token needed, no audit entry: no credential is involved) |
//! | no `Authorization: Bearer` | `401 not_authenticated`, PostHog's body |
//! | a PostHog key (`phx_`, `phs_`, `pha_`, …) instead of a client token | `401 authentication_failed`, saying to send the client token |
//! | an unknown client token | `401 authentication_failed` |
//! | a path whose meaning could change on the way (`..`, `//`, bad escapes) | `400` |
//! | a client without the scope the endpoint requires | `403 permission_denied`, `API key missing required scope '…'`, as PostHog words it; never forwarded |
//! | an endpoint PostHog refuses personal keys on | `403`, `This action does not support Personal API Key access` |
//! | an endpoint the scope table does not know | `403`, unless the client holds `*` |
//! | allowed | forwarded with the environment's key (`phs_` for flag definitions and remote config when configured, else `phx_`), bodies streamed both ways, hop-by-hop headers, cookies and the client's token dropped; PostHog's answer relayed, a `429`'s wait added as `Retry-After` |
//! | body over the limit, or too slow | `413`, `408` |
//! | PostHog unreachable, or too slow | `502`, `504`, in PostHog's error envelope |
//! | the audit entry cannot be written | `503` (with [`AuditMode::Required`]) |
//! | `POST /_hogguard/audit` with a client token | the service's own entry, recorded under the client's name: `201` |
//! | `GET /_hogguard/health` | `200 {"status":"ok"}` |
//!
//! Every call but the public ones and the health check leaves one `posthog.api.call` audit
//! entry (user: the client's name, or `unauthenticated`; resource: the path; result; metadata:
//! `method`, `status`, `required_scope`, `duration_ms`, `environment`, `credential` (the
//! injected key's mask), `endpoint`, `forwarded`, and `reason` for refusals), written to the
//! log before the answer is sent and fsynced as [`AuditFsync`] says: by default right after
//! the answer, one fsync for the calls of each moment.
#![deny(missing_docs)]

mod answer;
mod audit;
mod body;
mod clients;
mod config;
mod events;
mod forward;
mod openapi;
pub mod path;
mod route;
mod run;
mod server;
mod stats;
mod table;

/// Any error, kept with its chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub use audit::{AuditFsync, AuditSink, CALL_ACTION, LogSink, Recorded, UNAUTHENTICATED_USER};
pub use clients::{Client, ClientError, TOKEN_PREFIX, is_client_token, new_client_token};
pub use config::{
    AuditMode, DEFAULT_BODY_LIMIT, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, ProxyConfig, Snapshot,
    SnapshotSource, Timeouts,
};
pub use events::{EventSink, ProxyEvent, ReloadTrigger, StderrSink};
pub use forward::InvalidUpstream;
pub use hogguard_gateway::HEALTH_PATH;
pub use hogguard_posthog::{Access, InvalidScope, Scope, minimal_scopes};
pub use openapi::{ImportError, PERSONAL_KEY_SCHEME, import_openapi};
pub use run::{run_until_signalled, serve_until_signalled};
pub use server::{Proxy, ProxyError, ReloadHandle};
pub use stats::ProxyStats;
pub use table::{
    ActionRow, BUILT_IN_TABLE, Lookup, OperationRow, Requirement, ScopeTable, TABLE_FORMAT,
    TableError, TableFile, ViewsetRow,
};
