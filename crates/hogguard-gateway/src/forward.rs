//! Forwarding a verified request to the upstream and relaying its answer.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::Upstream;
use crate::events::error_chain;
use crate::headers::{append_forwarded_for, remove_hop_by_hop};

/// Body of the `502` answered when the upstream cannot be reached or answers unusably.
const BAD_GATEWAY_BODY: &str = r#"{"error":"upstream unavailable"}"#;
/// Body of the `504` answered when the upstream is too slow.
const GATEWAY_TIMEOUT_BODY: &str = r#"{"error":"upstream timeout"}"#;

/// Sends verified requests to the upstream over pooled keep-alive connections.
#[derive(Debug)]
pub(crate) struct Forwarder {
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Upstream,
    timeout: Duration,
    response_limit: usize,
}

/// Why a verified request got no answer from the upstream.
#[derive(Debug)]
pub(crate) enum UpstreamFailure {
    /// Unreachable, broke off, or answered unusably: `502`.
    Unavailable(String),
    /// The exchange took longer than the upstream timeout: `504`.
    TimedOut(Duration),
}

impl UpstreamFailure {
    /// Returns the status answered to the sender.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable(_) => StatusCode::BAD_GATEWAY,
            Self::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Returns the fixed body answered to the sender (details stay in the log).
    pub(crate) fn body(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => BAD_GATEWAY_BODY,
            Self::TimedOut(_) => GATEWAY_TIMEOUT_BODY,
        }
    }

    /// Returns the operator-facing description.
    pub(crate) fn detail(&self) -> String {
        match self {
            Self::Unavailable(detail) => detail.clone(),
            Self::TimedOut(timeout) => format!(
                "no complete answer within the upstream timeout of {} ms",
                timeout.as_millis()
            ),
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

    /// Returns the upstream requests go to.
    pub(crate) fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Sends `request` (method, path, query, end-to-end headers and exact body) upstream, with
    /// the peer appended to `X-Forwarded-For`, and returns the upstream's status, end-to-end
    /// headers and body.
    ///
    /// The `Host` header is passed on as received, so the upstream sees the name the sender used.
    pub(crate) async fn forward(
        &self,
        request: Request<Full<Bytes>>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, UpstreamFailure> {
        let (mut parts, body) = request.into_parts();
        let uri = self.upstream.uri_for(&parts.uri).map_err(|err| {
            UpstreamFailure::Unavailable(format!("cannot build the upstream URL: {err}"))
        })?;
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
                .map_err(|err| UpstreamFailure::Unavailable(error_chain(&err)))?;
            let (parts, body) = response.into_parts();
            // Buffered, not streamed: the timeout then covers the whole answer, and a stalled
            // upstream gets a clean 504 instead of a truncated response.
            let body = Limited::new(body, self.response_limit)
                .collect()
                .await
                .map_err(|err| {
                    UpstreamFailure::Unavailable(format!(
                        "cannot read the upstream's answer: {}",
                        error_chain(&*err)
                    ))
                })?
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
