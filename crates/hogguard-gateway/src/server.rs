//! The gateway server: accepting connections, answering each request, and shutting down.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hogguard_webhook::layer::{VerifyWebhookLayer, temporarily_unavailable};
use hogguard_webhook::{Verified, Verifier};
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{Layer as _, ServiceExt as _};

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::events::{EventSink, GatewayEvent, RequestLine, error_chain};
use crate::forward::{Forwarder, UpstreamFailure};
use crate::log_limit::LogLimit;
use crate::request::{DeadlineBody, RequestState};
use crate::stats::{Counters, GatewayStats, RejectionReason};

/// Path of the health check on the delivery address: `GET` or `HEAD` answers
/// `200 {"status":"ok"}` from the gateway itself, unverified and not forwarded. It tells a load
/// balancer the gateway is up; it reveals no counters.
pub const HEALTH_PATH: &str = "/_hogguard/health";

const HEALTH_BODY: &str = r#"{"status":"ok"}"#;
const BODY_TIMEOUT_BODY: &str = r#"{"error":"request body timeout"}"#;
const STATS_UNAVAILABLE_BODY: &str = r#"{"error":"stats unavailable"}"#;

/// How long the accept loop pauses after a failed accept (typically out of file descriptors),
/// so that it does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A bound, not yet serving, verifying webhook gateway.
///
/// [`Gateway::bind`] checks the configuration, opens the replay store and binds the addresses;
/// [`Gateway::serve`] then accepts connections until its shutdown future completes. Binding
/// first lets a caller learn the actual address (port 0) before serving.
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    stats_listener: Option<(TcpListener, SocketAddr)>,
    http: http1::Builder,
    shutdown_grace: Duration,
    /// One permit per connection the delivery address may have open.
    connection_slots: Arc<Semaphore>,
    max_connections: usize,
    shared: Arc<Shared>,
}

/// What every connection task needs.
struct Shared {
    verifier: Arc<Verifier>,
    body_limit: usize,
    body_read_timeout: Duration,
    /// One permit per request that may be handled at once.
    request_slots: Semaphore,
    max_concurrent_requests: usize,
    forwarder: Forwarder,
    counters: Counters,
    events: Arc<dyn EventSink>,
    log_limit: LogLimit,
}

/// Marks responses that come from the forwarding step, so they are told apart from the
/// verification layer's own `413` and `400` answers.
#[derive(Clone, Copy, Debug)]
struct Forwarded;

impl Gateway {
    /// Checks `config`, builds the verifier (opening a file replay store), and binds the
    /// delivery address and the optional stats address.
    ///
    /// # Errors
    ///
    /// [`GatewayError::NoSecrets`] or [`GatewayError::Secret`] for missing or unusable secrets,
    /// [`GatewayError::Scheme`] for an unusable scheme, [`GatewayError::ZeroLimit`] for a limit
    /// of zero, [`GatewayError::ReplayStore`] when the store cannot be opened (another gateway
    /// holding it included), and [`GatewayError::Bind`] when an address cannot be bound.
    pub async fn bind(config: GatewayConfig) -> Result<Self, GatewayError> {
        config.check_limits()?;
        let verifier = config.build_verifier()?;
        let (listener, local_addr) = listen(config.listen).await?;
        let stats_listener = match config.stats_listen {
            Some(address) => Some(listen(address).await?),
            None => None,
        };
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.timeouts.header_read);
        Ok(Self {
            listener,
            local_addr,
            stats_listener,
            http,
            shutdown_grace: config.timeouts.shutdown_grace,
            connection_slots: Arc::new(semaphore(config.max_connections)),
            max_connections: config.max_connections,
            shared: Arc::new(Shared {
                verifier: Arc::new(verifier),
                body_limit: config.body_limit,
                body_read_timeout: config.timeouts.body_read,
                request_slots: semaphore(config.max_concurrent_requests),
                max_concurrent_requests: config.max_concurrent_requests,
                forwarder: Forwarder::new(
                    config.upstream,
                    config.timeouts.upstream,
                    config.response_limit,
                ),
                counters: Counters::new(config.secrets.len()),
                events: config.events,
                log_limit: LogLimit::new(config.rejection_log_limit),
            }),
        })
    }

    /// Returns the address deliveries are received on (with the actual port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the address the counters are served on, if one is configured.
    pub fn stats_addr(&self) -> Option<SocketAddr> {
        self.stats_listener.as_ref().map(|(_, address)| *address)
    }

    /// Serves until `shutdown` completes, then shuts down gracefully and returns the final
    /// counters.
    ///
    /// While [`GatewayConfig::max_connections`] connections are open on the delivery address it
    /// accepts no more until one closes.
    ///
    /// On shutdown the gateway stops accepting connections, closes idle keep-alive connections,
    /// lets requests in flight finish for up to the shutdown grace period, then closes whatever
    /// is left. Problems while serving (a failed accept, an unreachable upstream) are reported as
    /// events, not returned.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> GatewayStats {
        let Self {
            listener,
            local_addr,
            stats_listener,
            http,
            shutdown_grace,
            connection_slots,
            max_connections,
            shared,
        } = self;
        shared.events.record(&GatewayEvent::Listening {
            address: local_addr,
            stats_address: stats_listener.as_ref().map(|(_, address)| *address),
            upstream: shared.forwarder.upstream(),
        });
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut shutdown = pin!(shutdown);
        // The next delivery connection's slot is taken before accepting it: at the limit, new
        // connections wait in the backlog and cost the gateway nothing.
        let mut free_slot = None;
        let mut paused = false;
        loop {
            if free_slot.is_none() && !paused {
                free_slot = Arc::clone(&connection_slots).try_acquire_owned().ok();
                if free_slot.is_none() {
                    paused = true;
                    shared.connection_limit_reached(max_connections);
                }
            }
            tokio::select! {
                () = shutdown.as_mut() => break,
                slot = Arc::clone(&connection_slots).acquire_owned(), if free_slot.is_none() => {
                    free_slot = slot.ok();
                    paused = false;
                }
                accepted = listener.accept(), if free_slot.is_some() => match accepted {
                    Ok((stream, peer)) => {
                        let slot = free_slot.take();
                        let connection =
                            serve_deliveries(&shared, &http, &graceful, stream, peer, slot);
                        connections.spawn(connection);
                    }
                    Err(err) => shared.accept_failed(&err).await,
                },
                accepted = accept_if_listening(stats_listener.as_ref()) => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_stats(&shared, &http, &graceful, stream));
                    }
                    Err(err) => shared.accept_failed(&err).await,
                },
                // Reap finished connections as they go, so the set holds only open ones.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        drop(stats_listener);
        while connections.try_join_next().is_some() {}
        shared.events.record(&GatewayEvent::ShuttingDown {
            open_connections: connections.len(),
            grace: shutdown_grace,
        });
        if tokio::time::timeout(shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            while connections.try_join_next().is_some() {}
            shared.events.record(&GatewayEvent::ConnectionsCutOff {
                count: connections.len(),
            });
            connections.abort_all();
        }
        // Let finished connections complete their accounting, and aborted ones unwind.
        while connections.join_next().await.is_some() {}
        shared.report_not_logged(shared.log_limit.take_held_back());
        let stats = shared.counters.snapshot();
        shared
            .events
            .record(&GatewayEvent::Stopped { stats: &stats });
        stats
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.local_addr)
            .field("stats_addr", &self.stats_addr())
            .field("upstream", self.shared.forwarder.upstream())
            .finish_non_exhaustive()
    }
}

/// A semaphore with `permits` permits, as many as tokio allows.
fn semaphore(permits: usize) -> Semaphore {
    Semaphore::new(permits.min(Semaphore::MAX_PERMITS))
}

async fn listen(address: SocketAddr) -> Result<(TcpListener, SocketAddr), GatewayError> {
    let bind_error = |source| GatewayError::Bind { address, source };
    let listener = TcpListener::bind(address).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}

async fn accept_if_listening(
    listener: Option<&(TcpListener, SocketAddr)>,
) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some((listener, _)) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Returns the task that serves one connection on the delivery address, holding `slot` (its
/// place under the connection limit) until the connection closes.
fn serve_deliveries(
    shared: &Arc<Shared>,
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
) -> impl Future<Output = ()> + Send + 'static {
    // Requests and answers are small: send each at once rather than wait for Nagle's batching.
    // Failing to set it only costs latency.
    let _ = stream.set_nodelay(true);
    let served_a_request = Arc::new(AtomicBool::new(false));
    let service = {
        let shared = Arc::clone(shared);
        let served_a_request = Arc::clone(&served_a_request);
        service_fn(move |request| {
            served_a_request.store(true, Ordering::Relaxed);
            handle_delivery(Arc::clone(&shared), peer, request)
        })
    };
    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    let shared = Arc::clone(shared);
    async move {
        let _slot = slot;
        if let Err(err) = connection.await {
            shared.connection_failed(&err, peer, served_a_request.load(Ordering::Relaxed));
        }
    }
}

/// Returns the task that serves one connection on the stats address: every request gets the
/// counters as JSON.
fn serve_stats(
    shared: &Arc<Shared>,
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
) -> impl Future<Output = ()> + Send + 'static {
    let shared = Arc::clone(shared);
    let service = service_fn(move |_request: Request<Incoming>| {
        let answer = match serde_json::to_vec(&shared.counters.snapshot()) {
            Ok(json) => json_response(StatusCode::OK, json),
            Err(_) => json_response(StatusCode::INTERNAL_SERVER_ERROR, STATS_UNAVAILABLE_BODY),
        };
        std::future::ready(Ok::<_, Infallible>(answer))
    });
    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    async move {
        // Errors on the operator's own connection (a client gone away) are not worth a report.
        let _ = connection.await;
    }
}

/// Answers one request on the delivery address: the health check, or verify and forward.
async fn handle_delivery(
    shared: Arc<Shared>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == HEALTH_PATH
        && matches!(*request.method(), Method::GET | Method::HEAD)
    {
        return Ok(json_response(StatusCode::OK, HEALTH_BODY));
    }
    // Taken before the body is read, so a request over the limit costs no buffer.
    let Ok(_slot) = shared.request_slots.try_acquire() else {
        let request_line = RequestLine {
            method: request.method(),
            path: request.uri().path(),
        };
        return Ok(shared.overloaded(peer, request_line));
    };
    // Kept for the log line: the request itself moves into the layer.
    let method = request.method().clone();
    let uri = request.uri().clone();
    let state = Arc::new(RequestState::default());
    let deadline = Instant::now() + shared.body_read_timeout;
    let request = request.map(|body| DeadlineBody::new(body, deadline, Arc::clone(&state)));
    let layer = VerifyWebhookLayer::new(Arc::clone(&shared.verifier))
        .with_body_limit(shared.body_limit)
        .on_failure({
            let state = Arc::clone(&state);
            move |err| state.record_verification_failure(err)
        });
    let forward = tower::service_fn({
        let shared = Arc::clone(&shared);
        move |verified_request| {
            let shared = Arc::clone(&shared);
            async move { Ok::<_, Infallible>(shared.forward(verified_request, peer).await) }
        }
    });
    let Ok(response) = layer.layer(forward).oneshot(request).await;
    let request_line = RequestLine {
        method: &method,
        path: uri.path(),
    };
    Ok(shared.account_for(response, &state, peer, request_line))
}

impl Shared {
    /// Forwards a request the layer verified, and counts and logs the outcome.
    async fn forward(
        &self,
        request: Request<Full<Bytes>>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        if let Some(verified) = request.extensions().get::<Verified>() {
            self.counters.count_verified(verified.secret_index());
        }
        // Kept for a failure's log line: the request itself moves upstream.
        let method = request.method().clone();
        let uri = request.uri().clone();
        let mut response = match self.forwarder.forward(request, peer).await {
            Ok(answer) => {
                self.counters.count_forwarded();
                answer
            }
            Err(failure) => {
                match failure {
                    UpstreamFailure::Unavailable(_) => self.counters.count_upstream_error(),
                    UpstreamFailure::TimedOut(_) => self.counters.count_upstream_timeout(),
                }
                self.events.record(&GatewayEvent::UpstreamFailed {
                    status: failure.status().as_u16(),
                    remote: peer,
                    request: RequestLine {
                        method: &method,
                        path: uri.path(),
                    },
                    detail: &failure.detail(),
                });
                json_response(failure.status(), failure.body())
            }
        };
        response.extensions_mut().insert(Forwarded);
        response
    }

    /// Counts and logs a request the layer answered itself (a rejection), and turns a body
    /// timeout's generic `400` into a `408`.
    fn account_for(
        &self,
        mut response: Response<Full<Bytes>>,
        state: &RequestState,
        peer: SocketAddr,
        request: RequestLine<'_>,
    ) -> Response<Full<Bytes>> {
        if response.extensions().get::<Forwarded>().is_some() {
            return response;
        }
        let (reason, detail): (RejectionReason, Cow<'_, str>) =
            if let Some(failure) = state.verification_failure() {
                (failure.reason, Cow::Borrowed(&failure.detail))
            } else if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                let detail = format!("body larger than the limit of {} bytes", self.body_limit);
                (RejectionReason::BodyTooLarge, Cow::Owned(detail))
            } else if state.body_timed_out() {
                response = json_response(StatusCode::REQUEST_TIMEOUT, BODY_TIMEOUT_BODY);
                let detail = format!(
                    "body not received within the body read timeout of {} ms",
                    self.body_read_timeout.as_millis()
                );
                (RejectionReason::BodyTimeout, Cow::Owned(detail))
            } else {
                let detail = "the body stream broke off (client gone?)";
                (RejectionReason::UnreadableBody, Cow::Borrowed(detail))
            };
        if matches!(
            reason,
            RejectionReason::BodyTooLarge | RejectionReason::BodyTimeout
        ) {
            // The body may be partly unread: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        self.reject(reason, peer, Some(request), &detail);
        response
    }

    /// Counts and logs a request that found every request slot taken, and answers it without
    /// reading its body.
    fn overloaded(&self, peer: SocketAddr, request: RequestLine<'_>) -> Response<Full<Bytes>> {
        let detail = format!(
            "already handling the most requests at once ({})",
            self.max_concurrent_requests
        );
        self.reject(RejectionReason::Overloaded, peer, Some(request), &detail);
        let mut response = temporarily_unavailable();
        // The body is left unread, so the connection cannot carry another request.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }

    /// Counts and logs that the accept loop stopped at the connection limit.
    fn connection_limit_reached(&self, limit: usize) {
        self.counters.count_connection_limit_pause();
        self.record_limited(&GatewayEvent::ConnectionLimitReached { limit });
    }

    /// Counts and logs a connection that ended in an error before or between requests.
    fn connection_failed(&self, err: &hyper::Error, peer: SocketAddr, served_a_request: bool) {
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

    fn reject(
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

    /// Records an event any client can cause at will, within the log limit.
    fn record_limited(&self, event: &GatewayEvent<'_>) {
        let admission = self.log_limit.admit(std::time::Instant::now());
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

    async fn accept_failed(&self, err: &io::Error) {
        self.events.record(&GatewayEvent::AcceptFailed {
            detail: &err.to_string(),
        });
        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
    }
}

fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
