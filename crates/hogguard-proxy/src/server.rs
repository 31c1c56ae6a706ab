//! The proxy server: accepting connections, answering each call, reloading, shutting down.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hogguard_audit::{EntryInput, Outcome};
use hogguard_secret::{CredentialKind, Secret};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::BoxError;
use crate::answer::{self, ProxyBody};
use crate::audit::{AuditSink, CALL_ACTION, Recorded, UNAUTHENTICATED_USER};
use crate::body::{BodyState, Crossed, LimitedBody};
use crate::clients::{ClientError, ClientView, Clients};
use crate::config::{AuditMode, ProxyConfig, Snapshot, SnapshotSource};
use crate::events::{EventSink, ProxyEvent, ReloadTrigger};
use crate::forward::{self, Base, InvalidUpstream, Upstream};
use crate::route::{self, Credential, SERVICE_AUDIT_SEGMENTS};
use crate::stats::{Counters, ProxyStats};
use crate::table::{Requirement, ScopeTable};
use hogguard_gateway::HEALTH_PATH;
use hogguard_gateway::error_chain;
use hogguard_posthog::Scope;

/// The largest entry a service may send to `POST /_hogguard/audit`.
const SERVICE_ENTRY_LIMIT: usize = 64 * 1024;
/// The most of a `429` body read to learn its wait.
const THROTTLE_BODY_LIMIT: usize = 64 * 1024;

/// The shortest time between the starts of two fsyncs of written audit entries: bounds the
/// fsyncs (each costs disk and CPU) to 500 a second under load, and how long an answered
/// call's entry may wait for the disk to a few milliseconds.
const SYNC_INTERVAL: Duration = Duration::from_millis(2);

/// A proxy that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The clients, credentials or table could not be read.
    #[error("cannot read the proxy's clients and credentials")]
    Snapshot(#[source] BoxError),
    /// The clients cannot be used.
    #[error("the proxy's clients cannot be used")]
    Clients(#[source] ClientError),
    /// A credential cannot be sent in a header.
    #[error("the {which} of environment `{environment}` holds characters a header cannot carry")]
    Credential {
        /// `personal API key` or `project secret key`.
        which: &'static str,
        /// The environment.
        environment: String,
    },
    /// PostHog's address cannot be used.
    #[error("PostHog's address cannot be used")]
    Upstream(#[source] InvalidUpstream),
    /// The HTTPS client cannot be set up.
    #[error("cannot set up HTTPS to PostHog")]
    Tls(#[source] BoxError),
    /// The runtime or the signal handlers cannot be set up.
    #[error("cannot start the proxy's runtime")]
    Runtime(#[source] std::io::Error),
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound proxy, not yet serving. [`Proxy::bind`] reads the first snapshot and binds;
/// [`Proxy::serve`] then answers calls until its shutdown future completes.
pub struct Proxy {
    listener: TcpListener,
    local_addr: SocketAddr,
    http: http1::Builder,
    shared: Arc<Shared>,
    connection_slots: Arc<Semaphore>,
    shutdown_grace: Duration,
    watch_interval: Duration,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Asks a running proxy to read its clients and credentials again, as `SIGHUP` does.
#[derive(Clone, Debug)]
pub struct ReloadHandle {
    notify: Arc<Notify>,
}

impl ReloadHandle {
    /// Reloads now (a reload already under way is followed by another).
    pub fn reload(&self) {
        self.notify.notify_one();
    }
}

/// What every connection task shares.
struct Shared {
    state: RwLock<Arc<State>>,
    source: Arc<dyn SnapshotSource>,
    audit: Arc<dyn AuditSink>,
    audit_mode: AuditMode,
    audit_health: AuditHealth,
    /// Whether entries were written since the last fsync began, whether a thread is
    /// fsyncing them, and when the last fsync began.
    sync_wanted: AtomicBool,
    syncing: AtomicBool,
    last_sync: std::sync::Mutex<Instant>,
    upstream_failing: AtomicBool,
    api: Base,
    ingest: Base,
    upstream: Upstream,
    body_limit: usize,
    body_read_timeout: Duration,
    upstream_timeout: Duration,
    counters: Counters,
    events: Arc<dyn EventSink>,
    reload: Arc<Notify>,
    reloading: tokio::sync::Mutex<()>,
    /// The files to watch, as the source named them at start or at the last reload.
    watched: std::sync::Mutex<Vec<PathBuf>>,
}

/// One snapshot, ready for calls.
struct State {
    environment: String,
    clients: Clients,
    personal: Option<Injected>,
    secret: Option<Injected>,
    table: Arc<ScopeTable>,
}

/// A credential as it is injected: the header, and its mask for audit entries.
struct Injected {
    authorization: HeaderValue,
    mask: String,
}

impl Injected {
    fn new(
        key: Option<&Secret>,
        which: &'static str,
        environment: &str,
    ) -> Result<Option<Injected>, ProxyError> {
        let Some(key) = key else { return Ok(None) };
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
            .map_err(|_| ProxyError::Credential {
                which,
                environment: environment.to_owned(),
            })?;
        authorization.set_sensitive(true);
        Ok(Some(Injected {
            authorization,
            mask: key.mask(),
        }))
    }
}

impl State {
    fn new(snapshot: &Snapshot) -> Result<State, ProxyError> {
        Ok(State {
            environment: snapshot.environment.clone(),
            clients: Clients::new(&snapshot.clients).map_err(ProxyError::Clients)?,
            personal: Injected::new(
                snapshot.personal_key.as_ref(),
                "personal API key",
                &snapshot.environment,
            )?,
            secret: Injected::new(
                snapshot.secret_key.as_ref(),
                "project secret key",
                &snapshot.environment,
            )?,
            table: Arc::clone(&snapshot.table),
        })
    }
}

impl Proxy {
    /// Reads the first snapshot from `source`, sets up the HTTPS client and binds
    /// `config.listen`. Audit entries go to `audit`.
    pub async fn bind(
        config: ProxyConfig,
        source: Arc<dyn SnapshotSource>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Proxy, ProxyError> {
        let snapshot = {
            let source = Arc::clone(&source);
            tokio::task::spawn_blocking(move || source.load())
                .await
                .map_err(|join| ProxyError::Snapshot(join.into()))?
                .map_err(ProxyError::Snapshot)?
        };
        let state = State::new(&snapshot)?;
        let watched = {
            let source = Arc::clone(&source);
            tokio::task::spawn_blocking(move || source.watched_files())
                .await
                .unwrap_or_default()
        };
        let api = Base::parse(config.hosts.api().as_str()).map_err(ProxyError::Upstream)?;
        let ingest = Base::parse(config.hosts.ingest().as_str()).map_err(ProxyError::Upstream)?;
        let upstream = Upstream::new().map_err(ProxyError::Tls)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ProxyError::Bind {
                    address: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            address: config.listen,
            source,
        })?;
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.timeouts.header_read)
            .max_buf_size(config.header_limit.max(8192));
        Ok(Proxy {
            listener,
            local_addr,
            http,
            connection_slots: Arc::new(Semaphore::new(
                config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            shutdown_grace: config.timeouts.shutdown_grace,
            watch_interval: config.watch_interval,
            shared: Arc::new(Shared {
                state: RwLock::new(Arc::new(state)),
                source,
                audit,
                audit_mode: config.audit,
                audit_health: AuditHealth::default(),
                sync_wanted: AtomicBool::new(false),
                syncing: AtomicBool::new(false),
                last_sync: std::sync::Mutex::new(Instant::now()),
                upstream_failing: AtomicBool::new(false),
                api,
                ingest,
                upstream,
                body_limit: config.body_limit,
                body_read_timeout: config.timeouts.body_read,
                upstream_timeout: config.timeouts.upstream,
                counters: Counters::default(),
                events: config.events,
                reload: Arc::new(Notify::new()),
                reloading: tokio::sync::Mutex::new(()),
                watched: std::sync::Mutex::new(watched),
            }),
        })
    }

    /// The address calls are received on (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that makes the proxy reload, as `SIGHUP` does.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            notify: Arc::clone(&self.shared.reload),
        }
    }

    /// Serves until `shutdown` completes, then stops accepting, lets calls in flight finish
    /// within the grace period, and returns the counters. Reloads on
    /// [`ReloadHandle::reload`] and whenever a watched file changes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> ProxyStats {
        let Proxy {
            listener,
            local_addr,
            http,
            shared,
            connection_slots,
            shutdown_grace,
            watch_interval,
        } = self;
        {
            let state = shared.state();
            shared.events.record(&ProxyEvent::Listening {
                address: local_addr,
                api: shared.api.as_str(),
                ingest: shared.ingest.as_str(),
                environment: &state.environment,
                clients: state.clients.len(),
                table: &format!("{} ({})", state.table.source(), state.table.date()),
            });
            if shared.audit_mode == AuditMode::BestEffort {
                shared.events.record(&ProxyEvent::AuditBestEffort);
            }
            if state.personal.is_none() {
                shared.events.record(&ProxyEvent::NoPersonalKey {
                    environment: &state.environment,
                });
            }
        }
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut reloads = JoinSet::new();
        let mut shutdown = pin!(shutdown);
        let mut watched = Fingerprints::of(&shared.watched_files());
        let mut watch = tokio::time::interval(watch_interval);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The next connection's place under the limit is taken before it is accepted: at the
        // limit, new connections wait in the backlog.
        let mut slot = None;
        loop {
            tokio::select! {
                () = shutdown.as_mut() => break,
                () = shared.reload.notified() => {
                    reloads.spawn(Arc::clone(&shared).reload(ReloadTrigger::Signal));
                }
                _ = watch.tick() => {
                    // A few `stat` calls: cheap enough for the serving thread.
                    let now = Fingerprints::of(&shared.watched_files());
                    if now != watched {
                        watched = now;
                        reloads.spawn(Arc::clone(&shared).reload(ReloadTrigger::FileChanged));
                    }
                }
                permit = Arc::clone(&connection_slots).acquire_owned(), if slot.is_none() => {
                    // The semaphore is never closed.
                    slot = permit.ok();
                }
                accepted = listener.accept(), if slot.is_some() => {
                    let Ok((stream, _peer)) = accepted else {
                        // Out of descriptors, say: let the condition pass.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let slot = slot.take();
                    let _ = stream.set_nodelay(true);
                    let service = {
                        let shared = Arc::clone(&shared);
                        service_fn(move |request| {
                            let shared = Arc::clone(&shared);
                            async move { Ok::<_, Infallible>(shared.handle(request).await) }
                        })
                    };
                    let connection =
                        graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    connections.spawn(async move {
                        let _slot = slot;
                        // A client that went away or sent garbage: nothing to report.
                        let _ = connection.await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                Some(_) = reloads.join_next(), if !reloads.is_empty() => {}
            }
        }
        drop(listener);
        while connections.try_join_next().is_some() {}
        shared.events.record(&ProxyEvent::ShuttingDown {
            open_connections: connections.len(),
            grace: shutdown_grace,
        });
        if tokio::time::timeout(shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            connections.abort_all();
        }
        while connections.join_next().await.is_some() {}
        reloads.abort_all();
        while reloads.join_next().await.is_some() {}
        let stats = shared.counters.snapshot();
        shared.events.record(&ProxyEvent::Stopped { stats: &stats });
        stats
    }
}

/// What the watched files looked like: a change of any means a reload.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprints(Vec<Option<(u64, Option<SystemTime>, u64)>>);

impl Fingerprints {
    fn of(files: &[PathBuf]) -> Fingerprints {
        Fingerprints(
            files
                .iter()
                .map(|file| {
                    let metadata = std::fs::metadata(file).ok()?;
                    #[cfg(unix)]
                    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
                    #[cfg(not(unix))]
                    let inode = 0;
                    Some((metadata.len(), metadata.modified().ok(), inode))
                })
                .collect(),
        )
    }
}

/// The Bearer token of `Authorization`, as PostHog reads it (`^Bearer\s+(\S.+)$`).
fn bearer(request: &Request<Incoming>) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let rest = value.strip_prefix("Bearer")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.trim()).filter(|token| !token.is_empty())
}

/// Whether `token` is one of PostHog's own credentials (any prefix, or the unprefixed
/// personal keys of before 2021).
fn is_posthog_credential(token: &str) -> bool {
    CredentialKind::from_value(token)
        .is_some_and(|kind| kind != CredentialKind::HogguardClientToken)
        || hogguard_secret::is_legacy_personal_key_shape(token)
}

/// Whether the request carries a body the proxy may leave unread.
fn has_body(request: &Request<Incoming>) -> bool {
    !http_body::Body::is_end_stream(request.body())
}

/// What a call's audit entry says.
struct Call {
    started: Instant,
    method: Method,
    path: String,
    user: String,
    environment: String,
    endpoint: Option<String>,
    required: Option<String>,
    credential: Option<String>,
    forwarded: bool,
    reason: Option<&'static str>,
}

impl Call {
    fn entry(self, status: StatusCode) -> EntryInput {
        let result = if self.forwarded && status.as_u16() < 400 {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let optional = |text: Option<String>| text.map_or(Value::Null, Value::String);
        let mut entry = EntryInput::new(CALL_ACTION, self.user, self.path, result)
            .with_metadata("method", self.method.as_str())
            .with_metadata("status", status.as_u16())
            .with_metadata("required_scope", optional(self.required))
            .with_metadata("duration_ms", micros as f64 / 1000.0)
            .with_metadata("environment", self.environment)
            .with_metadata("credential", optional(self.credential))
            .with_metadata("endpoint", optional(self.endpoint))
            .with_metadata("forwarded", self.forwarded);
        if let Some(reason) = self.reason {
            entry = entry.with_metadata("reason", reason);
        }
        entry
    }
}

/// Whether the audit log is failing, and how often it has failed: the count times two, plus
/// one while failing, in one word, so that a success ends only the failing it saw begin.
/// Writes and fsyncs finish on several threads in any order: a success that ends after a
/// newer failure must not clear it.
#[derive(Debug, Default)]
struct AuditHealth(AtomicU64);

impl AuditHealth {
    /// How many times the log has failed so far; read before a write or fsync starts.
    fn failures(&self) -> u64 {
        self.0.load(Ordering::SeqCst) >> 1
    }

    fn is_failing(&self) -> bool {
        self.0.load(Ordering::SeqCst) & 1 == 1
    }

    /// A write or fsync failed; true when the log was not failing before.
    fn failed(&self) -> bool {
        let before = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |health| {
                Some((((health >> 1) + 1) << 1) | 1)
            })
            .unwrap_or_default();
        before & 1 == 0
    }

    /// A write or fsync that started when the log had failed `failures` times succeeded;
    /// true when that ended the failing (no failure came since).
    fn recovered(&self, failures: u64) -> bool {
        self.0
            .compare_exchange(
                (failures << 1) | 1,
                failures << 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }
}

impl Shared {
    fn watched_files(&self) -> Vec<PathBuf> {
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn state(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the snapshot again and swaps it in; on failure the previous one stays.
    async fn reload(self: Arc<Self>, trigger: ReloadTrigger) {
        let _one_at_a_time = self.reloading.lock().await;
        let source = Arc::clone(&self.source);
        let loaded = tokio::task::spawn_blocking(move || {
            source
                .load()
                .map(|snapshot| (snapshot, source.watched_files()))
        })
        .await
        .map_err(BoxError::from)
        .and_then(|loaded| loaded)
        .and_then(|(snapshot, watched)| {
            State::new(&snapshot)
                .map(|state| (state, watched))
                .map_err(BoxError::from)
        });
        match loaded {
            Ok((state, watched)) => {
                *self.watched.lock().unwrap_or_else(PoisonError::into_inner) = watched;
                Counters::add(&self.counters.reloads);
                let state = Arc::new(state);
                // In use before it is announced: a call sent on the news gets the new key.
                *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&state);
                self.events.record(&ProxyEvent::Reloaded {
                    trigger,
                    clients: state.clients.len(),
                    personal_key: state.personal.as_ref().map(|key| key.mask.as_str()),
                    secret_key: state.secret.as_ref().map(|key| key.mask.as_str()),
                });
            }
            Err(error) => self.events.record(&ProxyEvent::ReloadFailed {
                trigger,
                error: &error_chain(error.as_ref()),
            }),
        }
    }

    /// Answers one request.
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<ProxyBody> {
        let path = request.uri().path();
        if path == HEALTH_PATH && matches!(*request.method(), Method::GET | Method::HEAD) {
            return answer::json(StatusCode::OK, r#"{"status":"ok"}"#);
        }
        if route::is_public(path) {
            return self.public(request).await;
        }
        let state = self.state();
        let mut call = Call {
            started: Instant::now(),
            method: request.method().clone(),
            path: path.to_owned(),
            user: UNAUTHENTICATED_USER.to_owned(),
            environment: state.environment.clone(),
            endpoint: None,
            required: None,
            credential: None,
            forwarded: false,
            reason: None,
        };
        let unread_body = has_body(&request);
        let client = match bearer(&request) {
            None => Err(("not-authenticated", answer::not_authenticated())),
            Some(token) if is_posthog_credential(token) => Err((
                "posthog-key-sent",
                answer::authentication_failed(
                    "hogguard proxy: a PostHog key was sent. Send the client token this service was given (hgp_…); the proxy adds the key itself.",
                ),
            )),
            Some(token) => state.clients.authenticate(token).ok_or_else(|| {
                (
                    "unknown-client-token",
                    answer::authentication_failed(
                        "hogguard proxy: the client token is not one of the proxy's clients (or it was replaced).",
                    ),
                )
            }),
        };
        let client = match client {
            Ok(client) => client,
            Err((reason, response)) => {
                Counters::add(&self.counters.unauthenticated);
                return self.refuse(call, reason, response, unread_body).await;
            }
        };
        call.user.clone_from(&client.name);
        let segments = match crate::path::segments(path) {
            Ok(segments) => segments,
            Err(refusal) => {
                Counters::add(&self.counters.refused);
                let detail = format!(
                    "hogguard proxy: {refusal}, which something between the proxy and PostHog could read differently; send the path as PostHog's clients spell it"
                );
                let response = answer::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "invalid_path",
                    &detail,
                    None,
                );
                return self
                    .refuse(call, "ambiguous-path", response, unread_body)
                    .await;
            }
        };
        if segments == SERVICE_AUDIT_SEGMENTS {
            return self.service_entry(client, request).await;
        }
        let private = route::private(&state.table, request.method(), &segments);
        call.endpoint = private.endpoint.map(str::to_owned);
        call.required = private.requirement.map(Requirement::to_string);
        if let Some((reason, response)) = refusal(client, private.requirement, &state.table) {
            Counters::add(&self.counters.refused);
            return self.refuse(call, reason, response, unread_body).await;
        }
        if self.audit_mode == AuditMode::Required && self.audit_health.is_failing() {
            // Try this call's refusal as a probe: once it is written, calls flow again.
            let response = answer::unavailable(
                "audit_unavailable",
                "hogguard proxy: the audit log cannot be written, so calls are refused until it can",
            );
            return self
                .refuse(call, "audit-unavailable", response, unread_body)
                .await;
        }
        let injected = match private.credential {
            Credential::SecretFirst => state.secret.as_ref().or(state.personal.as_ref()),
            Credential::Personal => state.personal.as_ref(),
        };
        let Some(injected) = injected else {
            Counters::add(&self.counters.refused);
            let detail = format!(
                "hogguard proxy: environment `{}` has no personal API key to call this endpoint with",
                state.environment
            );
            let response = answer::unavailable("no_credential", &detail);
            return self
                .refuse(call, "no-credential", response, unread_body)
                .await;
        };
        call.credential = Some(injected.mask.clone());
        let base = match private.upstream {
            route::Upstream::Api => &self.api,
            route::Upstream::Ingest => &self.ingest,
        };
        self.forward_private(call, request, base, &injected.authorization)
            .await
    }

    /// Sends an authorised call to PostHog with the credential injected, audits it, and
    /// relays the answer.
    async fn forward_private(
        self: &Arc<Self>,
        mut call: Call,
        request: Request<Incoming>,
        base: &Base,
        authorization: &HeaderValue,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = request.into_parts();
        forward::private_headers(&mut parts.headers, authorization);
        let response = match self.exchange(parts, body, base).await {
            Ok(response) => {
                Counters::add(&self.counters.forwarded);
                call.forwarded = true;
                self.relay(response).await
            }
            Err(failure) => {
                call.reason = Some(match failure.crossed {
                    Some(Crossed::TooLarge) => "body-too-large",
                    Some(Crossed::TooSlow) => "body-too-slow",
                    // It may have reached PostHog before the answer was lost.
                    None => {
                        call.forwarded = true;
                        "upstream-unavailable"
                    }
                });
                failure.response
            }
        };
        match self.record(call.entry(response.status())).await {
            Ok(()) => response,
            Err(()) if self.audit_mode == AuditMode::BestEffort => response,
            Err(()) => answer::unavailable(
                "audit_unavailable",
                "hogguard proxy: the audit entry of this call could not be written, so its answer is withheld",
            ),
        }
    }

    /// Passes a public call (capture, flags) to the capture host as it came.
    async fn public(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        Counters::add(&self.counters.public);
        let (mut parts, body) = request.into_parts();
        forward::public_headers(&mut parts.headers);
        match self.exchange(parts, body, &self.ingest).await {
            Ok(response) => self.relay(response).await,
            Err(failure) => failure.response,
        }
    }

    /// Sends a request upstream within the body and time limits.
    async fn exchange(
        &self,
        mut parts: http::request::Parts,
        body: Incoming,
        base: &Base,
    ) -> Result<Response<Incoming>, Failure> {
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.body_limit as u64) {
            return Err(self.crossed(Crossed::TooLarge));
        }
        let uri = match base.join(parts.uri.path_and_query()) {
            Ok(uri) => uri,
            Err(_) => {
                return Err(Failure {
                    crossed: None,
                    response: answer::error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "invalid_path",
                        "hogguard proxy: the request target cannot be sent on",
                        None,
                    ),
                });
            }
        };
        parts.uri = uri;
        let state = Arc::new(BodyState::default());
        let body = LimitedBody::new(
            body,
            self.body_limit,
            Instant::now() + self.body_read_timeout,
            Arc::clone(&state),
        );
        let request = Request::from_parts(parts, body.boxed());
        match tokio::time::timeout(self.upstream_timeout, self.upstream.send(request)).await {
            Ok(Ok(response)) => {
                if self.upstream_failing.swap(false, Ordering::Relaxed) {
                    self.events.record(&ProxyEvent::UpstreamRecovered);
                }
                Ok(response)
            }
            Ok(Err(error)) => match state.crossed() {
                Some(crossed) => Err(self.crossed(crossed)),
                None => Err(self.upstream_failed(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    "hogguard proxy: PostHog could not be reached",
                    &error,
                )),
            },
            Err(_) => Err(self.upstream_failed(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway_timeout",
                &format!(
                    "hogguard proxy: PostHog did not answer within {} s",
                    self.upstream_timeout.as_secs()
                ),
                &TimedOut,
            )),
        }
    }

    fn crossed(&self, crossed: Crossed) -> Failure {
        Counters::add(&self.counters.oversized_or_slow);
        let response = match crossed {
            Crossed::TooLarge => answer::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "payload_too_large",
                &format!(
                    "hogguard proxy: the request body is larger than {} bytes",
                    self.body_limit
                ),
                None,
            ),
            Crossed::TooSlow => answer::error(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                "request_timeout",
                &format!(
                    "hogguard proxy: the request body did not arrive within {} s",
                    self.body_read_timeout.as_secs()
                ),
                None,
            ),
        };
        Failure {
            crossed: Some(crossed),
            response: answer::closing(response),
        }
    }

    fn upstream_failed(
        &self,
        status: StatusCode,
        code: &str,
        detail: &str,
        error: &(dyn std::error::Error + 'static),
    ) -> Failure {
        Counters::add(&self.counters.upstream_failures);
        if !self.upstream_failing.swap(true, Ordering::Relaxed) {
            self.events.record(&ProxyEvent::UpstreamFailing {
                status: status.as_u16(),
                error: &error_chain(error),
            });
        }
        Failure {
            crossed: None,
            response: answer::error(status, "server_error", code, detail, None),
        }
    }

    /// PostHog's answer as the client gets it: hop-by-hop headers dropped, the body streamed,
    /// and a `429`'s wait (which PostHog writes only in its body) added as `Retry-After`.
    async fn relay(&self, response: Response<Incoming>) -> Response<ProxyBody> {
        let (mut parts, body) = response.into_parts();
        hogguard_gateway::remove_hop_by_hop(&mut parts.headers);
        if parts.status == StatusCode::TOO_MANY_REQUESTS && !parts.headers.contains_key(RETRY_AFTER)
        {
            let bytes = forward::collect(body, THROTTLE_BODY_LIMIT)
                .await
                .unwrap_or_default();
            if let Some(wait) = answer::throttle_wait(&bytes) {
                parts.headers.insert(RETRY_AFTER, HeaderValue::from(wait));
            }
            parts.headers.remove(CONTENT_LENGTH);
            return Response::from_parts(parts, answer::full(bytes));
        }
        Response::from_parts(parts, body.map_err(BoxError::from).boxed())
    }

    /// Audits a refused call and gives its answer (or `503`, when the audit entry cannot be
    /// written and audit is required).
    async fn refuse(
        self: &Arc<Self>,
        mut call: Call,
        reason: &'static str,
        response: Response<ProxyBody>,
        unread_body: bool,
    ) -> Response<ProxyBody> {
        call.reason = Some(reason);
        let response = match self.record(call.entry(response.status())).await {
            Err(()) if self.audit_mode == AuditMode::Required => answer::unavailable(
                "audit_unavailable",
                "hogguard proxy: the audit log cannot be written, so calls are refused until it can",
            ),
            _ => response,
        };
        if unread_body {
            answer::closing(response)
        } else {
            response
        }
    }

    /// Writes one entry on a blocking thread; reports when writing starts or stops failing.
    /// An entry that is only written gets an fsync soon after, shared with the entries
    /// written meanwhile.
    async fn record(self: &Arc<Self>, entry: EntryInput) -> Result<(), ()> {
        let failures = self.audit_health.failures();
        let audit = Arc::clone(&self.audit);
        let recorded = tokio::task::spawn_blocking(move || audit.append(entry))
            .await
            .map_err(BoxError::from)
            .and_then(|recorded| recorded);
        match recorded {
            Ok(Recorded::Durable) => {
                self.audit_recovered(failures);
                Ok(())
            }
            // Recovered only once the entry is durable: writes may work while fsyncs fail.
            Ok(Recorded::Written) => {
                self.schedule_sync();
                Ok(())
            }
            Err(error) => {
                self.audit_failed(error.as_ref());
                Err(())
            }
        }
    }

    /// Makes sure an fsync covers the entries written so far: one thread fsyncs while
    /// entries keep being written, at most once per [`SYNC_INTERVAL`], so that under load
    /// each fsync covers the calls of its interval, and an idle proxy fsyncs at once.
    fn schedule_sync(self: &Arc<Self>) {
        self.sync_wanted.store(true, Ordering::SeqCst);
        if self.syncing.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            loop {
                let start = {
                    let mut last = shared
                        .last_sync
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let start = (*last + SYNC_INTERVAL).max(Instant::now());
                    *last = start;
                    start
                };
                std::thread::sleep(start.saturating_duration_since(Instant::now()));
                // Cleared before the fsync starts: entries written from here on want the next.
                shared.sync_wanted.store(false, Ordering::SeqCst);
                let failures = shared.audit_health.failures();
                match shared.audit.sync() {
                    Ok(()) => shared.audit_recovered(failures),
                    Err(error) => shared.audit_failed(error.as_ref()),
                }
                if shared.sync_wanted.load(Ordering::SeqCst) {
                    continue;
                }
                shared.syncing.store(false, Ordering::SeqCst);
                // An entry written between the two checks may have seen this thread still
                // syncing: take it on, unless a new thread already did.
                if !shared.sync_wanted.load(Ordering::SeqCst)
                    || shared.syncing.swap(true, Ordering::SeqCst)
                {
                    break;
                }
            }
        });
    }

    /// Reports the end of failing, if the audit log was failing and has not failed again
    /// since `failures` was read.
    fn audit_recovered(&self, failures: u64) {
        if self.audit_health.recovered(failures) {
            self.events.record(&ProxyEvent::AuditRecovered);
        }
    }

    /// Counts a failed write or fsync of the audit log and reports the start of failing.
    fn audit_failed(&self, error: &(dyn std::error::Error + 'static)) {
        Counters::add(&self.counters.audit_failures);
        if self.audit_health.failed() {
            self.events.record(&ProxyEvent::AuditFailing {
                error: &error_chain(error),
                refusing: self.audit_mode == AuditMode::Required,
            });
        }
    }

    /// `POST /_hogguard/audit`: a service's own entry, under its client name.
    async fn service_entry(
        self: &Arc<Self>,
        client: &ClientView,
        request: Request<Incoming>,
    ) -> Response<ProxyBody> {
        if request.method() != Method::POST {
            return answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "method_not_allowed",
                &format!("Method \"{}\" not allowed.", request.method()),
                None,
            );
        }
        let state = Arc::new(BodyState::default());
        let body = LimitedBody::new(
            request.into_body(),
            SERVICE_ENTRY_LIMIT,
            Instant::now() + self.body_read_timeout,
            Arc::clone(&state),
        );
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return match state.crossed() {
                    Some(crossed) => self.crossed(crossed).response,
                    None => invalid_entry("the body could not be read", None),
                };
            }
        };
        let entry = match service_entry(&bytes, &client.name) {
            Ok(entry) => entry,
            Err((detail, attr)) => return invalid_entry(detail, attr),
        };
        match self.record(entry).await {
            Ok(()) => {
                Counters::add(&self.counters.service_entries);
                answer::json(StatusCode::CREATED, r#"{"recorded":true}"#)
            }
            Err(()) => answer::unavailable(
                "audit_unavailable",
                "hogguard proxy: the audit log cannot be written",
            ),
        }
    }
}

/// A call's refusal by its scopes, if any: the answer PostHog would give, or the proxy's
/// for an endpoint the table does not know.
fn refusal(
    client: &ClientView,
    requirement: Option<&Requirement>,
    table: &ScopeTable,
) -> Option<(&'static str, Response<ProxyBody>)> {
    match requirement {
        None if client.scopes.contains(&Scope::All) => None,
        None => Some((
            "unknown-endpoint",
            answer::permission_denied(&format!(
                "hogguard proxy: this endpoint is not in the scope table ({}, {}), so only a client with `*` may call it",
                table.source(),
                table.date()
            )),
        )),
        Some(Requirement::NoPersonalKeys) => Some((
            "no-personal-key-access",
            answer::permission_denied("This action does not support Personal API Key access"),
        )),
        Some(Requirement::Scopes(scopes)) => {
            let missing = scopes
                .iter()
                .find(|scope| !Scope::grants(&client.scopes, scope))?;
            Some((
                "missing-scope",
                answer::permission_denied(&format!("API key missing required scope '{missing}'")),
            ))
        }
    }
}

/// Why a call got no answer from PostHog, and the answer the client gets instead.
struct Failure {
    crossed: Option<Crossed>,
    response: Response<ProxyBody>,
}

#[derive(Debug, thiserror::Error)]
#[error("no answer in time")]
struct TimedOut;

/// A `400` for an entry a service sent.
fn invalid_entry(detail: &str, attr: Option<&str>) -> Response<ProxyBody> {
    answer::error(
        StatusCode::BAD_REQUEST,
        "validation_error",
        "invalid_input",
        detail,
        attr,
    )
}

/// Actions services may not write: the proxy's own, and the audit log's.
const RESERVED_ACTION_PREFIXES: [&str; 3] = ["posthog.api.", "audit.", "hogguard."];

/// The entry a service sent, in the shape PostHog's security guidance uses (`userId`,
/// `action`, `resource`, `result`, `metadata`), recorded under the client's name; or what is
/// wrong with it, and in which member.
fn service_entry(
    body: &Bytes,
    client: &str,
) -> Result<EntryInput, (&'static str, Option<&'static str>)> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ("the body is not JSON", None))?;
    let Value::Object(mut object) = value else {
        return Err(("the body must be a JSON object", None));
    };
    let text = |object: &Map<String, Value>, member: &'static str| {
        object
            .get(member)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty() && text.len() <= 1024)
            .map(str::to_owned)
            .ok_or((
                "must be a non-empty string of at most 1024 bytes",
                Some(member),
            ))
    };
    let action = text(&object, "action")?;
    if RESERVED_ACTION_PREFIXES
        .iter()
        .any(|prefix| action.starts_with(prefix))
    {
        return Err((
            "actions under posthog.api., audit. and hogguard. are the proxy's own",
            Some("action"),
        ));
    }
    let resource = text(&object, "resource")?;
    let result = match object.get("result").and_then(Value::as_str) {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        _ => return Err(("must be \"success\" or \"failure\"", Some("result"))),
    };
    let user = match object.get("userId") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(user)) => Value::String(user.clone()),
        Some(Value::Number(user)) => Value::String(user.to_string()),
        Some(_) => return Err(("must be a string", Some("userId"))),
    };
    let mut entry = EntryInput::new(action, client, resource, result);
    match object.remove("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(metadata)) => entry.metadata = metadata,
        Some(_) => return Err(("must be an object", Some("metadata"))),
    }
    entry
        .metadata
        .insert("source".to_owned(), Value::from("service"));
    entry.metadata.insert("service_user_id".to_owned(), user);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_that_ends_after_a_newer_failure_does_not_clear_it() {
        let health = AuditHealth::default();
        assert!(!health.is_failing());
        let before_first = health.failures();
        assert!(health.failed());
        // A sync that began before the failure and ends after it.
        assert!(!health.recovered(before_first));
        assert!(health.is_failing());
        let before_second = health.failures();
        assert!(!health.failed(), "already failing: no second report");
        assert!(!health.recovered(before_second));
        let after = health.failures();
        assert!(health.recovered(after));
        assert!(!health.is_failing());
        assert!(!health.recovered(after), "reported once");
    }

    #[test]
    fn posthog_credentials_are_told_from_client_tokens() {
        let personal = hogguard_testkit::keys::current(hogguard_testkit::keys::Prefix::Personal);
        assert!(is_posthog_credential(&personal));
        assert!(is_posthog_credential(
            &hogguard_testkit::keys::legacy_personal()
        ));
        let token = crate::new_client_token().unwrap();
        assert!(!is_posthog_credential(token.expose()));
        assert!(token.expose().starts_with(crate::TOKEN_PREFIX));
    }

    #[test]
    fn service_entries_are_checked_and_recorded_under_the_client() {
        let body = Bytes::from_static(
            br#"{"userId":"user-42","action":"export.download","resource":"report/7","result":"success","metadata":{"rows":12}}"#,
        );
        let entry = service_entry(&body, "reporting").unwrap();
        assert_eq!(entry.user_id, "reporting");
        assert_eq!(entry.action, "export.download");
        assert_eq!(entry.metadata["rows"], 12);
        assert_eq!(entry.metadata["service_user_id"], "user-42");
        assert_eq!(entry.metadata["source"], "service");
        for (body, attr) in [
            (
                &br#"{"action":"x","resource":"r","result":"maybe"}"#[..],
                Some("result"),
            ),
            (
                br#"{"action":"","resource":"r","result":"success"}"#,
                Some("action"),
            ),
            (
                br#"{"action":"posthog.api.call","resource":"r","result":"success"}"#,
                Some("action"),
            ),
            (br#"{"action":"a","result":"success"}"#, Some("resource")),
            (
                br#"{"action":"a","resource":"r","result":"success","metadata":[1]}"#,
                Some("metadata"),
            ),
            (
                br#"{"action":"a","resource":"r","result":"success","userId":{}}"#,
                Some("userId"),
            ),
            (br#"[1,2]"#, None),
            (b"nope", None),
        ] {
            let error = service_entry(&Bytes::copy_from_slice(body), "c").unwrap_err();
            assert_eq!(error.1, attr, "{}", String::from_utf8_lossy(body));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_service_body_is_recorded_or_refused(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = service_entry(&Bytes::from(body), "c");
        }
    }
}
