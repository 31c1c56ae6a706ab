//! Answering one request on the delivery address: the health check, the request limit, the body
//! read deadline, verification and forwarding, with each outcome counted and logged.
//!
//! The service stack (the verification layer around the forwarding step) is built once per
//! gateway. The layer marks each answer it makes itself with a [`Rejection`], which is how the
//! outcome is told apart here; no side channel is needed. [`Deliveries::handle`] takes a request
//! and returns the answer, so tests call it directly, without sockets.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hogguard_webhook::layer::{
    Rejection, UnrecordedDelivery, VerifyWebhook, VerifyWebhookLayer, temporarily_unavailable,
};
use hogguard_webhook::{Verified, Verifier};
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::{Layer as _, ServiceExt as _};

use crate::config::GatewayConfig;
use crate::events::{GatewayEvent, RequestLine, error_chain};
use crate::forward::{Relay, UpstreamFailure};
use crate::reporter::Reporter;
use crate::request::{BodyTimedOut, BoxError, DeadlineBody};
use crate::stats::RejectionReason;

/// Path of the health check on the delivery address: `GET` or `HEAD` answers
/// `200 {"status":"ok"}` from the gateway itself, unverified and not forwarded. It tells a load
/// balancer the gateway is up; it reveals no counters.
pub const HEALTH_PATH: &str = "/_hogguard/health";

const HEALTH_BODY: &str = r#"{"status":"ok"}"#;
const BODY_TIMEOUT_BODY: &str = r#"{"error":"request body timeout"}"#;

/// Answers the requests of the delivery address.
pub(crate) struct Deliveries {
    stack: VerifyWebhook<Forward>,
    /// One permit per request that may be handled at once.
    request_slots: Semaphore,
    max_concurrent_requests: usize,
    body_read_timeout: Duration,
    reporter: Arc<Reporter>,
}

impl Deliveries {
    /// Builds the stack that checks requests with `verifier` (made from `config`) and sends
    /// verified ones to `relay`, with the limits and timeouts of `config`.
    pub(crate) fn new(
        config: &GatewayConfig,
        verifier: Verifier,
        relay: Arc<dyn Relay>,
        reporter: Arc<Reporter>,
    ) -> Self {
        let forward = Forward {
            relay,
            reporter: Arc::clone(&reporter),
        };
        Self {
            stack: VerifyWebhookLayer::new(verifier)
                .with_body_limit(config.body_limit)
                .layer(forward),
            request_slots: semaphore(config.max_concurrent_requests),
            max_concurrent_requests: config.max_concurrent_requests,
            body_read_timeout: config.timeouts.body_read,
            reporter,
        }
    }

    /// Answers one request from `peer`: the health check, or verify and forward.
    pub(crate) async fn handle<B>(
        &self,
        peer: SocketAddr,
        request: Request<B>,
    ) -> Response<Full<Bytes>>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        if request.uri().path() == HEALTH_PATH
            && matches!(*request.method(), Method::GET | Method::HEAD)
        {
            return json_response(StatusCode::OK, HEALTH_BODY);
        }
        // Taken before the body is read, so a request over the limit costs no buffer.
        let Ok(_slot) = self.request_slots.try_acquire() else {
            let request_line = RequestLine {
                method: request.method(),
                path: request.uri().path(),
            };
            return self.overloaded(peer, request_line);
        };
        // Kept for the log line: the request itself moves into the stack.
        let method = request.method().clone();
        let uri = request.uri().clone();
        let deadline = Instant::now() + self.body_read_timeout;
        let mut request = request.map(|body| DeadlineBody::new(body, deadline));
        request.extensions_mut().insert(Peer(peer));
        let Ok(response) = self.stack.clone().oneshot(request).await;
        let request_line = RequestLine {
            method: &method,
            path: uri.path(),
        };
        self.account_for(response, peer, request_line)
    }

    /// Counts and logs what the verification layer did with a request (the forwarding step
    /// counts and logs its own outcome), and turns a body timeout's generic `400` into a `408`.
    fn account_for(
        &self,
        mut response: Response<Full<Bytes>>,
        peer: SocketAddr,
        request: RequestLine<'_>,
    ) -> Response<Full<Bytes>> {
        if let Some(UnrecordedDelivery(err)) = response.extensions().get() {
            self.reporter.record(&GatewayEvent::DeliveryNotRecorded {
                remote: peer,
                request,
                detail: &error_chain(&**err),
            });
        }
        let Some(rejection) = response.extensions().get::<Rejection>().cloned() else {
            return response;
        };
        let (reason, detail) = match rejection {
            Rejection::Verification(err) => (RejectionReason::of(&err), error_chain(&*err)),
            Rejection::BodyTooLarge { limit } => (
                RejectionReason::BodyTooLarge,
                format!("body larger than the limit of {limit} bytes"),
            ),
            Rejection::UnreadableBody(err) if err.is::<BodyTimedOut>() => {
                response = json_response(StatusCode::REQUEST_TIMEOUT, BODY_TIMEOUT_BODY);
                let detail = format!(
                    "body not received within the body read timeout of {} ms",
                    self.body_read_timeout.as_millis()
                );
                (RejectionReason::BodyTimeout, detail)
            }
            Rejection::UnreadableBody(err) => (
                RejectionReason::UnreadableBody,
                format!(
                    "the body stream broke off (client gone?): {}",
                    error_chain(&*err)
                ),
            ),
            // A kind of answer this gateway version does not know by name.
            _ => (
                RejectionReason::OtherVerificationFailure,
                "refused by the verification layer".to_owned(),
            ),
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
        self.reporter.reject(reason, peer, Some(request), &detail);
        response
    }

    /// Counts and logs a request that found every request slot taken, and answers it without
    /// reading its body.
    fn overloaded(&self, peer: SocketAddr, request: RequestLine<'_>) -> Response<Full<Bytes>> {
        let detail = format!(
            "already handling the most requests at once ({})",
            self.max_concurrent_requests
        );
        self.reporter
            .reject(RejectionReason::Overloaded, peer, Some(request), &detail);
        let mut response = temporarily_unavailable();
        // The body is left unread, so the connection cannot carry another request.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// The address a request came from, in its extensions, for the forwarding step.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

/// The step after verification: sends the request on through the relay and counts and logs
/// the outcome.
#[derive(Clone)]
struct Forward {
    relay: Arc<dyn Relay>,
    reporter: Arc<Reporter>,
}

impl tower::Service<Request<Full<Bytes>>> for Forward {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(request).await) })
    }
}

impl Forward {
    async fn forward(&self, request: Request<Full<Bytes>>) -> Response<Full<Bytes>> {
        if let Some(verified) = request.extensions().get::<Verified>() {
            self.reporter
                .counters()
                .count_verified(verified.secret_index());
        }
        // `handle` always sets it; the unspecified address stands in should it ever not.
        let peer = request
            .extensions()
            .get::<Peer>()
            .map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |peer| peer.0);
        // Kept for a failure's log line: the request itself moves upstream.
        let method = request.method().clone();
        let uri = request.uri().clone();
        match self.relay.relay(request, peer).await {
            Ok(answer) => {
                self.reporter.counters().count_forwarded();
                answer
            }
            Err(failure) => {
                match failure {
                    UpstreamFailure::TimedOut(_) => {
                        self.reporter.counters().count_upstream_timeout();
                    }
                    _ => self.reporter.counters().count_upstream_error(),
                }
                self.reporter.record(&GatewayEvent::UpstreamFailed {
                    status: failure.status().as_u16(),
                    remote: peer,
                    request: RequestLine {
                        method: &method,
                        path: uri.path(),
                    },
                    detail: &error_chain(&failure),
                });
                json_response(failure.status(), failure.body())
            }
        }
    }
}

/// A semaphore with `permits` permits, as many as tokio allows.
pub(crate) fn semaphore(permits: usize) -> Semaphore {
    Semaphore::new(permits.min(Semaphore::MAX_PERMITS))
}

/// A response with `status` and a JSON `body`.
pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests;
