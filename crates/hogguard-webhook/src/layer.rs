//! A `tower` layer that verifies webhook deliveries before the inner service sees them
//! (feature `tower`).
//!
//! The layer buffers the request body up to a limit, runs [`Verifier::verify`] on the headers and
//! the exact bytes received, and then either
//!
//! - passes the request on with the same bytes as a [`Full<Bytes>`] body and the [`Verified`]
//!   proof in its extensions, or
//! - answers itself: `413 {"error":"payload too large"}` past the limit,
//!   `400 {"error":"unreadable body"}` when the body stream fails, and
//!   `401 {"error":"invalid signature"}` for **every** verification failure, whatever the
//!   reason, so a prober learns nothing about which check failed. Two exceptions happen only
//!   after the signature verified, so only the secret's holder can see them: a replay store that
//!   cannot record a delivery (full, or a failed write), and a copy of a delivery that is being
//!   handled right now. Both are answered `503 {"error":"temporarily unavailable"}` with
//!   `Retry-After: 1`, so that the sender retries instead of dropping a real delivery. The
//!   reason goes to the [`VerifyWebhookLayer::on_failure`] hook, for logs, and every answer the
//!   layer makes carries a [`Rejection`] in its extensions saying why.
//!
//! A delivery is used up (later copies are replays) only once the inner service took it: when
//! it answered `2xx`, or a `4xx` other than `408`, `425` and `429` (a final "no"). Any other
//! answer, an error, or a response future dropped before the inner service answered (the server
//! stopped, the sender hung up) leaves the delivery open, so the sender's retry is taken; see
//! [`Verifier::claim`].
//!
//! Verification, including a file replay store's `fsync` (feature `file-store`), runs on the task
//! that polls the response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};

use crate::error::VerifyError;
use crate::verifier::{Verified, Verifier};

/// Body size limit unless configured otherwise: 1 MiB, well above typical webhook payloads.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The one body answered for every verification failure but a replay store's.
pub const INVALID_SIGNATURE_BODY: &str = r#"{"error":"invalid signature"}"#;

/// The body answered, with `503` and `Retry-After: 1`, when a verified delivery cannot be taken
/// right now (the replay store cannot record it); the sender should retry.
pub const TEMPORARILY_UNAVAILABLE_BODY: &str = r#"{"error":"temporarily unavailable"}"#;

const PAYLOAD_TOO_LARGE_BODY: &str = r#"{"error":"payload too large"}"#;
const UNREADABLE_BODY: &str = r#"{"error":"unreadable body"}"#;

type FailureHook = Arc<dyn Fn(&VerifyError) + Send + Sync>;

/// A [`tower::Layer`] that lets only verified webhook deliveries through to the inner service.
///
/// The inner service receives `Request<Full<Bytes>>` with a [`Verified`] extension; its response
/// body type must be buildable from a `&'static str` (axum's `Body` and `Full<Bytes>` are).
///
/// ```
/// use hogguard_webhook::layer::VerifyWebhookLayer;
/// use hogguard_webhook::{Scheme, Verifier, WebhookSecret};
///
/// let verifier = Verifier::new(Scheme::Standard, &[WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")])?; // hogguard:allow (the Standard Webhooks spec's public example secret)
/// let layer = VerifyWebhookLayer::new(verifier)
///     .with_body_limit(256 * 1024)
///     .on_failure(|err| eprintln!("webhook rejected: {err}"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct VerifyWebhookLayer {
    verifier: Arc<Verifier>,
    body_limit: usize,
    on_failure: Option<FailureHook>,
}

impl VerifyWebhookLayer {
    /// Makes a layer that checks deliveries with `verifier` (pass an `Arc` to share one).
    pub fn new(verifier: impl Into<Arc<Verifier>>) -> Self {
        Self {
            verifier: verifier.into(),
            body_limit: DEFAULT_BODY_LIMIT,
            on_failure: None,
        }
    }

    /// Sets the largest body buffered, in bytes; larger requests get `413`.
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Calls `hook` with the reason for each delivery that did not verify, for logging and
    /// metrics, and with the replay store's error when a delivery the inner service took could
    /// not be recorded as used (its answer stands; a copy would be taken again).
    ///
    /// Every answer the layer makes itself also carries a [`Rejection`] in its extensions, and
    /// an unrecorded delivery's answer an [`UnrecordedDelivery`].
    ///
    /// The sender only ever sees the same `401` body (or the `503` of a replay store failure or
    /// a copy in flight).
    pub fn on_failure(mut self, hook: impl Fn(&VerifyError) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Arc::new(hook));
        self
    }
}

impl fmt::Debug for VerifyWebhookLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyWebhookLayer")
            .field("verifier", &self.verifier)
            .field("body_limit", &self.body_limit)
            .field("on_failure", &self.on_failure.is_some())
            .finish()
    }
}

impl<S> tower::Layer<S> for VerifyWebhookLayer {
    type Service = VerifyWebhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook {
            inner,
            layer: self.clone(),
        }
    }
}

/// The [`tower::Service`] made by [`VerifyWebhookLayer`].
#[derive(Clone)]
pub struct VerifyWebhook<S> {
    inner: S,
    layer: VerifyWebhookLayer,
}

impl<S: fmt::Debug> fmt::Debug for VerifyWebhook<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyWebhook")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for VerifyWebhook<S>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // `self.inner` is the clone that `poll_ready` readied; take it and leave a fresh clone
        // behind for the next call (tower's usual pattern).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let too_large = || Rejection::BodyTooLarge {
                limit: layer.body_limit,
            };
            // A declared length (Content-Length) over the limit is refused before reading.
            if body.size_hint().lower() > layer.body_limit as u64 {
                return Ok(too_large().into_response());
            }
            let bytes = match Limited::new(body, layer.body_limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) if err.is::<LengthLimitError>() => {
                    return Ok(too_large().into_response());
                }
                Err(err) => return Ok(Rejection::UnreadableBody(Arc::from(err)).into_response()),
            };
            let claim = match layer.verifier.claim(&parts.headers, &bytes) {
                Ok(claim) => claim,
                Err(err) => {
                    layer.report(&err);
                    return Ok(Rejection::Verification(Arc::new(err)).into_response());
                }
            };
            parts
                .extensions
                .insert::<Verified>(claim.verified().clone());
            // Should this future be dropped mid-call (the server stopped, the sender hung up),
            // the claim is dropped with it and the delivery stays open.
            let mut answer = inner
                .call(Request::from_parts(parts, Full::new(bytes)))
                .await;
            match &mut answer {
                Ok(response) if takes_delivery(response.status()) => {
                    if let Err(err) = claim.commit() {
                        // The inner service took the delivery: its answer stands, but a copy
                        // would be taken again.
                        let err = Arc::new(VerifyError::ReplayStore(err));
                        layer.report(&err);
                        response.extensions_mut().insert(UnrecordedDelivery(err));
                    }
                }
                _ => drop(claim.release()),
            }
            answer
        })
    }
}

/// Why the layer answered a request itself, found in the extensions of every answer it makes,
/// so that code around the layer (a gateway's logs and counters) tells them from the inner
/// service's answers and knows the reason without asking the layer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// The body is larger than the limit: `413 {"error":"payload too large"}`.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body stream failed before it ended (the client went away, or a body wrapper gave
    /// up): `400 {"error":"unreadable body"}`. Holds the body's error.
    UnreadableBody(Arc<dyn std::error::Error + Send + Sync>),
    /// The delivery did not verify: [`INVALID_SIGNATURE_BODY`] with `401`; or it verified but
    /// cannot be taken right now ([`VerifyError::ReplayStore`], [`VerifyError::InFlight`]):
    /// [`TEMPORARILY_UNAVAILABLE_BODY`] with `503` and `Retry-After: 1`.
    Verification(Arc<VerifyError>),
}

impl Rejection {
    /// The answer the sender gets, carrying `self` in its extensions.
    ///
    /// A replay store failure and a copy in flight come after the signature verified, so telling
    /// them apart reveals nothing to a prober; a `503` with `Retry-After` makes the sender retry,
    /// where a `401` would make it give up on a real delivery.
    fn into_response<B: From<&'static str>>(self) -> Response<B> {
        let mut response = match &self {
            Self::BodyTooLarge { .. } => {
                json_response(StatusCode::PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE_BODY)
            }
            Self::UnreadableBody(_) => json_response(StatusCode::BAD_REQUEST, UNREADABLE_BODY),
            Self::Verification(err) => match **err {
                VerifyError::ReplayStore(_) | VerifyError::InFlight => temporarily_unavailable(),
                _ => json_response(StatusCode::UNAUTHORIZED, INVALID_SIGNATURE_BODY),
            },
        };
        response.extensions_mut().insert(self);
        response
    }
}

/// Found in the extensions of the inner service's answer to a delivery it took but that the
/// replay store could not record as used (a failed write): the answer stands, but a copy of the
/// delivery would be taken again. Holds the [`VerifyError::ReplayStore`] error.
#[derive(Clone, Debug)]
pub struct UnrecordedDelivery(pub Arc<VerifyError>);

impl VerifyWebhookLayer {
    fn report(&self, err: &VerifyError) {
        if let Some(hook) = &self.on_failure {
            hook(err);
        }
    }
}

/// Whether the inner service's answer means it took the delivery, so that a copy is a replay:
/// `2xx`, or a `4xx` other than the ones that ask to try again later (`408`, `425`, `429`).
/// Anything else (`5xx`, a redirect) leaves the delivery open for the sender's retry.
fn takes_delivery(status: StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error()
            && !matches!(
                status,
                StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS
            ))
}

/// `503` with `Retry-After: 1` and [`TEMPORARILY_UNAVAILABLE_BODY`]: the answer to a delivery
/// that cannot be taken right now, which webhook senders retry. A gateway that sheds load
/// answers the same way.
pub fn temporarily_unavailable<B: From<&'static str>>() -> Response<B> {
    let mut response = json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        TEMPORARILY_UNAVAILABLE_BODY,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn json_response<B: From<&'static str>>(status: StatusCode, body: &'static str) -> Response<B> {
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Mutex;

    use tower::{Layer as _, ServiceExt as _, service_fn};

    use super::*;
    use crate::replay::FailingCommits;
    use crate::{ManualClock, MemoryReplayStore, Scheme, WebhookSecret, standard};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // hogguard:allow (the Standard Webhooks spec's public example secret)
    const NOW: u64 = 1_614_265_330;

    fn verifier() -> Verifier {
        Verifier::new(Scheme::Standard, &[WebhookSecret::new(SECRET)])
            .unwrap()
            .with_clock(ManualClock::new(NOW))
            .with_replay_store(MemoryReplayStore::new(100))
    }

    /// An inner service that echoes the body it got and the verified message id.
    async fn echo(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
        let id = request
            .extensions()
            .get::<Verified>()
            .and_then(Verified::message_id)
            .unwrap_or("no proof")
            .to_owned();
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let mut echoed = id.into_bytes();
        echoed.push(b' ');
        echoed.extend_from_slice(&body);
        Ok(Response::new(Full::new(Bytes::from(echoed))))
    }

    fn signed_request(id: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
        let signature = standard::sign(&WebhookSecret::new(SECRET), id, NOW, body).unwrap();
        Request::post("/webhook")
            .header("Webhook-Id", id)
            .header("Webhook-Timestamp", NOW.to_string())
            .header("Webhook-Signature", signature)
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    }

    async fn status_and_body(response: Response<Full<Bytes>>) -> (StatusCode, Bytes) {
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    #[tokio::test]
    async fn verified_request_reaches_the_inner_service_with_body_and_proof() {
        let service = VerifyWebhookLayer::new(verifier()).layer(service_fn(echo));
        let response = service
            .oneshot(signed_request("msg_1", b"{\"a\":1}"))
            .await
            .unwrap();
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"msg_1 {\"a\":1}");
    }

    #[tokio::test]
    async fn every_failure_gets_the_same_401_body_and_the_hook_sees_why() {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&reasons);
        let service = VerifyWebhookLayer::new(verifier())
            .on_failure(move |err| seen.lock().unwrap().push(err.to_string()))
            .layer(service_fn(echo));

        let unsigned = Request::post("/webhook")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let mut tampered = signed_request("msg_2", b"{}");
        *tampered.body_mut() = Full::new(Bytes::from_static(b"{ }"));
        let first = signed_request("msg_3", b"{}");
        let replayed = signed_request("msg_3", b"{}");

        let ok = service.clone().oneshot(first).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        for request in [unsigned, tampered, replayed] {
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(
                response.headers()[CONTENT_TYPE],
                HeaderValue::from_static("application/json")
            );
            let (status, body) = status_and_body(response).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(&body[..], INVALID_SIGNATURE_BODY.as_bytes());
        }
        let reasons = reasons.lock().unwrap();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].contains("missing header"));
        assert!(reasons[1].contains("no signature matched"));
        assert!(reasons[2].contains("replay"));
    }

    #[tokio::test]
    async fn a_full_replay_store_gets_503_with_retry_after_not_401() {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&reasons);
        let tiny_store = Verifier::new(Scheme::Standard, &[WebhookSecret::new(SECRET)])
            .unwrap()
            .with_clock(ManualClock::new(NOW))
            .with_replay_store(MemoryReplayStore::new(1));
        let service = VerifyWebhookLayer::new(tiny_store)
            .on_failure(move |err| seen.lock().unwrap().push(err.to_string()))
            .layer(service_fn(echo));

        // The one slot now holds a live id, so the next real delivery cannot be recorded.
        let first = service
            .clone()
            .oneshot(signed_request("msg_fills_the_store", b"{}"))
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let response = service
            .oneshot(signed_request("msg_finds_it_full", b"{}"))
            .await
            .unwrap();
        assert_eq!(
            response.headers()[RETRY_AFTER],
            HeaderValue::from_static("1")
        );
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            HeaderValue::from_static("application/json")
        );
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(&body[..], TEMPORARILY_UNAVAILABLE_BODY.as_bytes());
        assert_eq!(
            *reasons.lock().unwrap(),
            ["replay store could not record the delivery"]
        );
    }

    #[tokio::test]
    async fn oversized_bodies_get_413_without_reaching_verification() {
        let service = VerifyWebhookLayer::new(verifier())
            .with_body_limit(4)
            .layer(service_fn(echo));
        // Known length (like Content-Length): refused before reading.
        let (status, body) = status_and_body(
            service
                .clone()
                .oneshot(signed_request("msg_4", b"12345"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(&body[..], PAYLOAD_TOO_LARGE_BODY.as_bytes());

        // Unknown length (chunked): refused once the limit is crossed.
        let streamed = Request::post("/webhook")
            .body(ChunkedBody(vec![
                Bytes::from_static(b"345"),
                Bytes::from_static(b"12"),
            ]))
            .unwrap();
        let response = service.oneshot(streamed).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn body_exactly_at_the_limit_is_accepted() {
        let service = VerifyWebhookLayer::new(verifier())
            .with_body_limit(5)
            .layer(service_fn(echo));
        let response = service
            .oneshot(signed_request("msg_5", b"12345"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_failing_body_stream_gets_400() {
        let service = VerifyWebhookLayer::new(verifier()).layer(service_fn(echo));
        let request = Request::post("/webhook").body(FailingBody).unwrap();
        let response = service.oneshot(request).await.unwrap();
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(&body[..], UNREADABLE_BODY.as_bytes());
    }

    /// Header a test sets to choose the inner service's answer (a status, or `error`).
    const ANSWER_HEADER: &str = "x-test-answer";

    /// An inner service that answers with the status named in [`ANSWER_HEADER`] (200 without
    /// it), or fails with `error`.
    async fn answer_as_asked(
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Full<Bytes>>, &'static str> {
        let asked = request
            .headers()
            .get(ANSWER_HEADER)
            .map(|value| value.to_str().unwrap().to_owned());
        match asked.as_deref() {
            Some("error") => Err("inner service failed"),
            Some(status) => {
                let mut response = Response::new(Full::new(Bytes::from_static(b"inner")));
                *response.status_mut() = status.parse().unwrap();
                Ok(response)
            }
            None => Ok(Response::new(Full::new(Bytes::from_static(b"inner")))),
        }
    }

    fn asking(mut request: Request<Full<Bytes>>, answer: &str) -> Request<Full<Bytes>> {
        request
            .headers_mut()
            .insert(ANSWER_HEADER, HeaderValue::from_str(answer).unwrap());
        request
    }

    #[tokio::test]
    async fn a_delivery_the_inner_service_did_not_take_is_taken_when_sent_again() {
        // See: issue 11 point 11 (a failed forward used the id up; the retry got 401).
        for answer in [
            "500", "502", "503", "504", "408", "425", "429", "302", "error",
        ] {
            let service = VerifyWebhookLayer::new(verifier()).layer(service_fn(answer_as_asked));
            let first = service
                .clone()
                .oneshot(asking(signed_request("msg_retried", b"{}"), answer))
                .await;
            match first {
                Ok(response) => assert_eq!(response.status().as_str(), answer),
                Err(err) => assert_eq!((answer, err), ("error", "inner service failed")),
            }
            let retry = service
                .oneshot(signed_request("msg_retried", b"{}"))
                .await
                .unwrap();
            assert_eq!(retry.status(), StatusCode::OK, "after {answer}");
        }
    }

    #[tokio::test]
    async fn a_delivery_answered_2xx_or_a_final_4xx_is_used_up() {
        for answer in ["200", "201", "204", "400", "404", "409", "422"] {
            let service = VerifyWebhookLayer::new(verifier()).layer(service_fn(answer_as_asked));
            let first = service
                .clone()
                .oneshot(asking(signed_request("msg_taken", b"{}"), answer))
                .await
                .unwrap();
            assert_eq!(first.status().as_str(), answer);
            let copy = service
                .oneshot(signed_request("msg_taken", b"{}"))
                .await
                .unwrap();
            let (status, body) = status_and_body(copy).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "after {answer}");
            assert_eq!(&body[..], INVALID_SIGNATURE_BODY.as_bytes());
        }
    }

    /// An inner service that reports each call on `entered` and answers only when `release`
    /// is notified.
    fn holding_service(
        entered: tokio::sync::mpsc::UnboundedSender<()>,
        release: Arc<tokio::sync::Notify>,
    ) -> impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
    > + Clone
    + Send
    + 'static {
        service_fn(move |_request: Request<Full<Bytes>>| {
            let entered = entered.clone();
            let release = Arc::clone(&release);
            async move {
                entered.send(()).unwrap();
                release.notified().await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
            }
        })
    }

    #[tokio::test]
    async fn a_copy_arriving_while_the_first_is_in_flight_gets_503_and_is_not_passed_on() {
        let (entered, mut calls) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let service = VerifyWebhookLayer::new(verifier())
            .layer(holding_service(entered, Arc::clone(&release)));

        let first = tokio::spawn(
            service
                .clone()
                .oneshot(signed_request("msg_concurrent", b"{}")),
        );
        calls.recv().await.unwrap();
        let copy = service
            .clone()
            .oneshot(signed_request("msg_concurrent", b"{}"))
            .await
            .unwrap();
        assert_eq!(copy.headers()[RETRY_AFTER], HeaderValue::from_static("1"));
        let (status, body) = status_and_body(copy).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(&body[..], TEMPORARILY_UNAVAILABLE_BODY.as_bytes());
        assert!(
            calls.try_recv().is_err(),
            "the copy reached the inner service"
        );

        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
        let late = service
            .oneshot(signed_request("msg_concurrent", b"{}"))
            .await
            .unwrap();
        assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
        assert!(calls.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_request_dropped_before_the_inner_service_answered_leaves_the_delivery_open() {
        // The server stopped, or the sender hung up, while the inner service was working.
        let (entered, mut calls) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let service = VerifyWebhookLayer::new(verifier())
            .layer(holding_service(entered, Arc::clone(&release)));
        let abandoned = tokio::spawn(
            service
                .clone()
                .oneshot(signed_request("msg_abandoned", b"{}")),
        );
        calls.recv().await.unwrap();
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());

        let retry = tokio::spawn(service.oneshot(signed_request("msg_abandoned", b"{}")));
        calls.recv().await.unwrap();
        release.notify_one();
        assert_eq!(retry.await.unwrap().unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn the_layers_own_answers_say_why_in_an_extension() {
        let service = VerifyWebhookLayer::new(verifier())
            .with_body_limit(8)
            .layer(service_fn(echo));
        let passed = service
            .clone()
            .oneshot(signed_request("msg_passes", b"{}"))
            .await
            .unwrap();
        assert!(passed.extensions().get::<Rejection>().is_none());

        let unsigned = Request::post("/webhook")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let response = service.clone().oneshot(unsigned).await.unwrap();
        assert!(matches!(
            response.extensions().get::<Rejection>(),
            Some(Rejection::Verification(err))
                if matches!(**err, VerifyError::MissingHeader { .. })
        ));

        let large = service
            .clone()
            .oneshot(signed_request("msg_large", b"123456789"))
            .await
            .unwrap();
        assert!(matches!(
            large.extensions().get::<Rejection>(),
            Some(Rejection::BodyTooLarge { limit: 8 })
        ));

        let broken = Request::post("/webhook").body(FailingBody).unwrap();
        let response = service.oneshot(broken).await.unwrap();
        let Some(Rejection::UnreadableBody(err)) = response.extensions().get::<Rejection>() else {
            panic!("{response:?}");
        };
        assert_eq!(
            err.downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
    }

    #[tokio::test]
    async fn a_delivery_taken_but_not_recorded_keeps_its_answer_and_says_so() {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&reasons);
        let failing_store = Verifier::new(Scheme::Standard, &[WebhookSecret::new(SECRET)])
            .unwrap()
            .with_clock(ManualClock::new(NOW))
            .with_replay_store(FailingCommits::default());
        let service = VerifyWebhookLayer::new(failing_store)
            .on_failure(move |err| seen.lock().unwrap().push(err.to_string()))
            .layer(service_fn(echo));
        let response = service
            .oneshot(signed_request("msg_unrecorded", b"{}"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let unrecorded = response.extensions().get::<UnrecordedDelivery>().unwrap();
        assert!(matches!(*unrecorded.0, VerifyError::ReplayStore(_)));
        assert!(response.extensions().get::<Rejection>().is_none());
        assert_eq!(
            *reasons.lock().unwrap(),
            ["replay store could not record the delivery"]
        );
    }

    /// A body whose stream breaks, like a client that disconnects mid-upload.
    struct FailingBody;

    impl Body for FailingBody {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(Some(Err(std::io::ErrorKind::ConnectionReset.into())))
        }
    }

    /// A body of unknown total size, like a chunked request; yields its chunks from the back.
    struct ChunkedBody(Vec<Bytes>);

    impl Body for ChunkedBody {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop().map(|chunk| Ok(http_body::Frame::data(chunk))))
        }
    }
}
