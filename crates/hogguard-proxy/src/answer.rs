//! The proxy's own answers, in PostHog's error envelope (drf-exceptions-hog's
//! `{"type","code","detail","attr"}`), so SDKs and tools handle them as PostHog's.

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde::Serialize;

use crate::BoxError;

/// The body type of every answer: PostHog's, streamed, or the proxy's own.
pub(crate) type ProxyBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    detail: &'a str,
    attr: Option<&'a str>,
}

/// A body the proxy wrote itself.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// `status` with a JSON body.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `status` with PostHog's error envelope.
pub(crate) fn error(
    status: StatusCode,
    kind: &str,
    code: &str,
    detail: &str,
    attr: Option<&str>,
) -> Response<ProxyBody> {
    let body = serde_json::to_vec(&Envelope {
        kind,
        code,
        detail,
        attr,
    })
    // Strings only: serialising cannot fail.
    .unwrap_or_default();
    json(status, body)
}

/// PostHog's answer to a request without credentials.
pub(crate) fn not_authenticated() -> Response<ProxyBody> {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "not_authenticated",
        "Authentication credentials were not provided.",
        None,
    )
}

/// 401 `authentication_failed` with `detail`.
pub(crate) fn authentication_failed(detail: &str) -> Response<ProxyBody> {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "authentication_failed",
        detail,
        None,
    )
}

/// 403 `permission_denied` with `detail`.
pub(crate) fn permission_denied(detail: &str) -> Response<ProxyBody> {
    error(
        StatusCode::FORBIDDEN,
        "authentication_error",
        "permission_denied",
        detail,
        None,
    )
}

/// 503: the call cannot be served now.
pub(crate) fn unavailable(code: &str, detail: &str) -> Response<ProxyBody> {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        code,
        detail,
        None,
    );
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// An answer after which the connection cannot carry another request (the body was not read
/// to its end).
pub(crate) fn closing(mut response: Response<ProxyBody>) -> Response<ProxyBody> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The seconds of DRF's `Expected available in N second(s).`, which PostHog's 429 carries
/// instead of a `Retry-After` header.
pub(crate) fn throttle_wait(body: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let detail = value.get("detail")?.as_str()?;
    let rest = detail.split("Expected available in ").nth(1)?;
    let seconds = rest.split(' ').next()?;
    // DRF prints the wait rounded up; accept a decimal just in case.
    let seconds: f64 = seconds.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wait_of_a_throttle() {
        let body = br#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 17 seconds.","attr":null}"#;
        assert_eq!(throttle_wait(body), Some(17));
        let one = br#"{"detail":"Request was throttled. Expected available in 1 second."}"#;
        assert_eq!(throttle_wait(one), Some(1));
        assert_eq!(
            throttle_wait(br#"{"detail":"Request was throttled."}"#),
            None
        );
        assert_eq!(throttle_wait(b"rate limited"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_throttle_body_is_read_or_ignored(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = throttle_wait(&body);
        }
    }
}
