//! Forwarding a verified request to the upstream and relaying its answer.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::headers::{append_forwarded_for, remove_hop_by_hop};
use crate::request::BoxError;
use crate::upstream::Upstream;

/// Body of the `502` answered when the upstream cannot be reached or answers unusably.
const BAD_GATEWAY_BODY: &str = r#"{"error":"upstream unavailable"}"#;
/// Body of the `504` answered when the upstream is too slow.
const GATEWAY_TIMEOUT_BODY: &str = r#"{"error":"upstream timeout"}"#;

/// Sends a verified request on and returns the answer: the [`Forwarder`], or a stand-in in
/// tests.
pub(crate) trait Relay: Send + Sync {
    /// Sends `request`, received from `peer`, and returns the answer to relay to the sender.
    fn relay(&self, request: Request<Full<Bytes>>, peer: SocketAddr) -> RelayFuture<'_>;
}

/// What [`Relay::relay`] returns.
pub(crate) type RelayFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, UpstreamFailure>> + Send + 'a>>;

/// Sends verified requests to the upstream over pooled keep-alive connections.
#[derive(Debug)]
pub(crate) struct Forwarder {
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Upstream,
    timeout: Duration,
    response_limit: usize,
}

/// Why a verified request got no answer from the upstream. The message says what failed; the
/// source, when there is one, says why.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamFailure {
    /// The request's path does not make a valid URL on the upstream: `502`.
    #[error("cannot build the upstream URL")]
    Url(#[source] http::Error),
    /// The upstream could not be reached, or broke off the exchange: `502`.
    #[error("the upstream could not be reached or broke off")]
    Unreachable(#[source] BoxError),
    /// The upstream's answer could not be read, or is larger than the response limit: `502`.
    #[error("cannot read the upstream's answer")]
    UnreadableAnswer(#[source] BoxError),
    /// The exchange took longer than the upstream timeout: `504`.
    #[error("no complete answer within the upstream timeout of {} ms", .0.as_millis())]
    TimedOut(Duration),
}

impl UpstreamFailure {
    /// Returns the status answered to the sender.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Url(_) | Self::Unreachable(_) | Self::UnreadableAnswer(_) => {
                StatusCode::BAD_GATEWAY
            }
        }
    }

    /// Returns the fixed body answered to the sender (details stay in the log).
    pub(crate) fn body(&self) -> &'static str {
        match self {
            Self::TimedOut(_) => GATEWAY_TIMEOUT_BODY,
            Self::Url(_) | Self::Unreachable(_) | Self::UnreadableAnswer(_) => BAD_GATEWAY_BODY,
        }
    }
}

impl Forwarder {
    /// Makes a forwarder to `upstream` that gives each exchange `timeout` and relays answers of at
    /// most `response_limit` bytes.
    pub(crate) fn new(upstream: Upstream, timeout: Duration, response_limit: usize) -> Self {
        let mut connector = HttpConnector::new();
        // Requests and answers are small: sending each at once beats Nagle's batching.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            client,
            upstream,
            timeout,
            response_limit,
        }
    }

    /// Sends `request` (method, path, query, end-to-end headers and exact body) upstream, with
    /// the peer appended to `X-Forwarded-For`, and returns the upstream's status, end-to-end
    /// headers and body.
    ///
    /// The `Host` header is passed on as received, so the upstream sees the name the sender used.
    async fn forward(
        &self,
        request: Request<Full<Bytes>>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, UpstreamFailure> {
        let (mut parts, body) = request.into_parts();
        let uri = self
            .upstream
            .uri_for(&parts.uri)
            .map_err(UpstreamFailure::Url)?;
        remove_hop_by_hop(&mut parts.headers);
        append_forwarded_for(&mut parts.headers, peer.ip());
        let mut upstream_request = Request::new(body);
        *upstream_request.method_mut() = parts.method;
        *upstream_request.uri_mut() = uri;
        *upstream_request.headers_mut() = parts.headers;

        let exchange = async {
            let response = self
                .client
                .request(upstream_request)
                .await
                .map_err(|err| UpstreamFailure::Unreachable(err.into()))?;
            let (parts, body) = response.into_parts();
            // Buffered, not streamed: the timeout then covers the whole answer, and a stalled
            // upstream gets a clean 504 instead of a truncated response.
            let body = Limited::new(body, self.response_limit)
                .collect()
                .await
                .map_err(UpstreamFailure::UnreadableAnswer)?
                .to_bytes();
            let mut answer = Response::new(Full::new(body));
            *answer.status_mut() = parts.status;
            *answer.headers_mut() = parts.headers;
            remove_hop_by_hop(answer.headers_mut());
            Ok(answer)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(UpstreamFailure::TimedOut(self.timeout)))
    }
}

impl Relay for Forwarder {
    fn relay(&self, request: Request<Full<Bytes>>, peer: SocketAddr) -> RelayFuture<'_> {
        Box::pin(self.forward(request, peer))
    }
}
