//! End-to-end tests: a real gateway on 127.0.0.1 in front of a recording upstream.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hogguard_gateway::{HEALTH_PATH, RejectionReason, ReplayProtection};
use hogguard_webhook::{Scheme, WebhookSecret, github};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use support::{
    ANSWER_STATUS_HEADER, CapturedEvents, OTHER_SECRET, RunningGateway, SECRET, TestUpstream,
    UNKNOWN_SECRET, UPSTREAM_BODY, client, config, post, raw_exchange, send, signed_headers,
    signed_headers_at, within,
};

const INVALID_SIGNATURE_BODY: &[u8] = br#"{"error":"invalid signature"}"#;
const TEMPORARILY_UNAVAILABLE_BODY: &[u8] = br#"{"error":"temporarily unavailable"}"#;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_verified_delivery_is_forwarded_exactly_and_the_answer_relayed() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.upstream = format!("http://{}/base", upstream.addr).parse().unwrap();
    let gateway = RunningGateway::start(config).await;

    let body: &[u8] = b"\xff\xfe{\"event\":\"$pageview\"}\x00\x80";
    let mut headers = signed_headers(SECRET, "msg_forward", body);
    headers.push(("content-type", "application/octet-stream".to_owned()));
    headers.push(("x-custom", "kept".to_owned()));
    let answer = send(
        Method::PUT,
        &gateway.url("/hooks/posthog?team=7&x=%20y"),
        &headers,
        body,
    )
    .await;

    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.headers["x-upstream"], "yes");
    assert!(!answer.headers.contains_key("keep-alive"));
    assert!(!answer.headers.contains_key("x-upstream-hop"));
    assert_eq!(&answer.body[..], UPSTREAM_BODY);

    let received = upstream.next().await;
    assert_eq!(received.method, Method::PUT);
    assert_eq!(
        received.uri.path_and_query().unwrap().as_str(),
        "/base/hooks/posthog?team=7&x=%20y"
    );
    assert_eq!(&received.body[..], body);
    for (name, value) in &headers {
        assert_eq!(received.headers[*name], value.as_str(), "{name}");
    }
    assert_eq!(received.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(received.headers["host"], gateway.addr.to_string());
    assert_eq!(received.headers["content-length"], body.len().to_string());

    let stats = gateway.stop().await;
    assert_eq!(stats.forwarded, 1);
    assert_eq!(stats.total_rejected(), 0);
    assert!(events.lines_starting("rejected").is_empty());
}

#[tokio::test]
async fn a_chunked_delivery_loses_its_hop_by_hop_headers_but_not_a_byte() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;

    let body: &[u8] = b"\xff\x00chunk one|\r\nchunk two\x80";
    let mut request = b"POST /hooks/raw?q=1 HTTP/1.1\r\n\
        Host: hooks.example.test\r\n\
        Connection: close, X-Drop-Me\r\n\
        X-Drop-Me: 1\r\n\
        Keep-Alive: timeout=5\r\n\
        Proxy-Authorization: Basic cHJveHk6cGFzcw==\r\n\
        TE: trailers\r\n\
        Transfer-Encoding: chunked\r\n\
        X-Forwarded-For: 203.0.113.9\r\n"
        .to_vec();
    for (name, value) in signed_headers(SECRET, "msg_chunked", body) {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    for chunk in [&body[..11], &body[11..]] {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");

    let answer = raw_exchange(gateway.addr, &request).await;
    let head_end = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete answer head");
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 201"), "{head}");
    assert!(head.contains("x-upstream: yes"), "{head}");
    assert!(!head.contains("keep-alive"), "{head}");
    assert!(!head.contains("x-upstream-hop"), "{head}");
    assert_eq!(&answer[head_end + 4..], UPSTREAM_BODY);

    let received = upstream.next().await;
    assert_eq!(&received.body[..], body);
    assert_eq!(
        received.uri.path_and_query().unwrap().as_str(),
        "/hooks/raw?q=1"
    );
    assert_eq!(received.headers["host"], "hooks.example.test");
    assert_eq!(
        received.headers["x-forwarded-for"],
        "203.0.113.9, 127.0.0.1"
    );
    assert_eq!(received.headers["content-length"], body.len().to_string());
    for hop_by_hop in [
        "connection",
        "x-drop-me",
        "keep-alive",
        "proxy-authorization",
        "te",
        "transfer-encoding",
    ] {
        assert!(
            !received.headers.contains_key(hop_by_hop),
            "{hop_by_hop} was forwarded"
        );
    }
    assert_eq!(gateway.stop().await.forwarded, 1);
}

#[tokio::test]
async fn an_invalid_signature_gets_401_and_nothing_is_forwarded() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;

    let headers = signed_headers(UNKNOWN_SECRET, "msg_forged", b"{}");
    let answer = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(&answer.body[..], INVALID_SIGNATURE_BODY);
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::SignatureMismatch), 1);
    assert_eq!(stats.forwarded, 0);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_nothing_is_forwarded() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.body_limit = 16;
    let gateway = RunningGateway::start(config).await;

    let body = [b'x'; 17];
    let headers = signed_headers(SECRET, "msg_large", &body);
    let answer = post(&gateway.url("/hook"), &headers, &body).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.headers["connection"], "close");
    upstream.assert_received_nothing();

    // Exactly at the limit passes.
    let body = [b'x'; 16];
    let headers = signed_headers(SECRET, "msg_at_limit", &body);
    let answer = post(&gateway.url("/hook"), &headers, &body).await;
    assert_eq!(answer.status, StatusCode::CREATED);

    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::BodyTooLarge), 1);
    assert_eq!(stats.forwarded, 1);
}

#[tokio::test]
async fn a_replayed_delivery_gets_401_and_reaches_the_upstream_once() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;

    let headers = signed_headers(SECRET, "msg_once", b"{}");
    let first = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(first.status, StatusCode::CREATED);
    upstream.next().await;
    let replay = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(&replay.body[..], INVALID_SIGNATURE_BODY);
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::Replay), 1);
    assert_eq!(stats.forwarded, 1);
}

#[tokio::test]
async fn a_delivery_the_app_failed_is_forwarded_again_when_the_sender_retries() {
    // See: issue 11 point 11.
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;

    let headers = signed_headers(SECRET, "msg_app_failed", b"{}");
    let mut failing = headers.clone();
    failing.push((ANSWER_STATUS_HEADER, "500".to_owned()));
    let first = post(&gateway.url("/hook"), &failing, b"{}").await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    upstream.next().await;

    let retry = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(retry.status, StatusCode::CREATED);
    upstream.next().await;
    let copy = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(copy.status, StatusCode::UNAUTHORIZED);
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    assert_eq!(stats.forwarded, 2);
    assert_eq!(stats.rejected(RejectionReason::Replay), 1);
}

/// An address on loopback where nothing listens.
async fn closed_port() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn a_delivery_the_app_never_got_is_forwarded_after_a_restart() {
    // See: issue 11 point 11 (the app was down: 502, and the id was used up on disk).
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("replay-store");
    let headers = signed_headers(SECRET, "msg_app_down", b"{}");

    let events = Arc::new(CapturedEvents::default());
    let mut down = config(closed_port().await, &[SECRET], &events);
    down.replay = ReplayProtection::File(store.clone());
    let first = RunningGateway::start(down).await;
    let answer = post(&first.url("/hook"), &headers, b"{}").await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(first.stop().await.upstream_errors, 1);

    let mut upstream = TestUpstream::answering().await;
    let mut up = config(upstream.addr, &[SECRET], &events);
    up.replay = ReplayProtection::File(store);
    let second = RunningGateway::start(up).await;
    let retry = post(&second.url("/hook"), &headers, b"{}").await;
    assert_eq!(retry.status, StatusCode::CREATED);
    upstream.next().await;
    assert_eq!(second.stop().await.forwarded, 1);
}

#[tokio::test]
async fn a_delivery_cut_off_by_a_shutdown_is_forwarded_after_the_restart() {
    // See: issue 11 point 11 (the gateway stopped mid-request).
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("replay-store");
    let headers = signed_headers(SECRET, "msg_cut_off", b"{}");

    let never = Arc::new(Notify::new());
    let mut stuck = TestUpstream::holding(never).await;
    let events = Arc::new(CapturedEvents::default());
    let mut first_config = config(stuck.addr, &[SECRET], &events);
    first_config.replay = ReplayProtection::File(store.clone());
    first_config.timeouts.shutdown_grace = Duration::from_millis(50);
    let first = RunningGateway::start(first_config).await;
    let url = first.url("/hook");
    let in_flight = tokio::spawn({
        let headers = headers.clone();
        async move {
            let mut request = Request::post(url);
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            client()
                .request(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
                .await
        }
    });
    stuck.next().await;
    within(first.request_shutdown()).await.unwrap();
    assert!(within(in_flight).await.unwrap().is_err());

    let mut upstream = TestUpstream::answering().await;
    let mut second_config = config(upstream.addr, &[SECRET], &events);
    second_config.replay = ReplayProtection::File(store);
    let second = RunningGateway::start(second_config).await;
    let retry = post(&second.url("/hook"), &headers, b"{}").await;
    assert_eq!(retry.status, StatusCode::CREATED);
    upstream.next().await;
    second.stop().await;
}

#[tokio::test]
async fn a_copy_arriving_while_the_first_is_forwarded_gets_503_and_stays_at_the_gateway() {
    let release = Arc::new(Notify::new());
    let mut upstream = TestUpstream::holding(Arc::clone(&release)).await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;
    let headers = signed_headers(SECRET, "msg_twice_at_once", b"{}");

    let first = tokio::spawn({
        let (url, headers) = (gateway.url("/hook"), headers.clone());
        async move { post(&url, &headers, b"{}").await }
    });
    upstream.next().await;
    let copy = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(copy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(copy.headers["retry-after"], "1");
    assert_eq!(&copy.body[..], TEMPORARILY_UNAVAILABLE_BODY);
    upstream.assert_received_nothing();

    release.notify_one();
    assert_eq!(within(first).await.unwrap().status, StatusCode::CREATED);
    let stats = gateway.stop().await;
    assert_eq!(stats.forwarded, 1);
    assert_eq!(stats.rejected(RejectionReason::DuplicateInFlight), 1);
    assert_eq!(
        events
            .lines_starting("rejected reason=duplicate_in_flight")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_github_delivery_is_forwarded_once() {
    // See: issue 11 point 12.
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.scheme = Scheme::GitHub;
    let gateway = RunningGateway::start(config).await;

    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let signature = github::sign(&WebhookSecret::new(SECRET), body).unwrap();
    let delivery = |guid: &str| {
        vec![
            ("x-hub-signature-256", signature.clone()),
            ("x-github-delivery", guid.to_owned()),
        ]
    };
    let first = post(&gateway.url("/hook"), &delivery("72d3162e"), body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    upstream.next().await;
    for copy in [delivery("72d3162e"), delivery("0f1e2d3c")] {
        let answer = post(&gateway.url("/hook"), &copy, body).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    upstream.assert_received_nothing();
    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::Replay), 2);
}

#[tokio::test]
async fn during_a_rotation_either_secret_verifies_and_each_is_counted() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let gateway =
        RunningGateway::start(config(upstream.addr, &[OTHER_SECRET, SECRET], &events)).await;

    for (secret, id, expected) in [
        (SECRET, "msg_old_secret", StatusCode::CREATED),
        (OTHER_SECRET, "msg_new_secret", StatusCode::CREATED),
        (SECRET, "msg_old_again", StatusCode::CREATED),
        (UNKNOWN_SECRET, "msg_unknown", StatusCode::UNAUTHORIZED),
    ] {
        let headers = signed_headers(secret, id, b"{}");
        let answer = post(&gateway.url("/hook"), &headers, b"{}").await;
        assert_eq!(answer.status, expected, "{id}");
    }
    for _ in 0..3 {
        upstream.next().await;
    }
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    assert_eq!(stats.verified_by_secret, [1, 2]);
    assert_eq!(stats.rejected(RejectionReason::SignatureMismatch), 1);
}

#[tokio::test]
async fn an_unreachable_upstream_gets_502() {
    // A port that was just free: nothing listens there any more.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(closed_addr, &[SECRET], &events)).await;

    let headers = signed_headers(SECRET, "msg_nowhere", b"{}");
    let answer = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(&answer.body[..], br#"{"error":"upstream unavailable"}"#);

    let stats = gateway.stop().await;
    assert_eq!(stats.upstream_errors, 1);
    assert_eq!(stats.forwarded, 0);
    let failures = events.lines_starting("upstream failed");
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("status=502"), "{}", failures[0]);
    assert!(failures[0].contains("path=\"/hook\""), "{}", failures[0]);
}

#[tokio::test]
async fn an_upstream_slower_than_the_timeout_gets_504() {
    // Never released: the upstream holds every request.
    let upstream = TestUpstream::holding(Arc::new(Notify::new())).await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.timeouts.upstream = Duration::from_millis(300);
    let gateway = RunningGateway::start(config).await;

    let headers = signed_headers(SECRET, "msg_slow", b"{}");
    let answer = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(&answer.body[..], br#"{"error":"upstream timeout"}"#);

    let stats = gateway.stop().await;
    assert_eq!(stats.upstream_timeouts, 1);
    assert_eq!(events.lines_starting("upstream failed status=504").len(), 1);
}

#[tokio::test]
async fn an_upstream_rejection_is_relayed_not_counted_as_the_gateways() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;

    let mut headers = signed_headers(SECRET, "msg_upstream_413", b"{}");
    headers.push((ANSWER_STATUS_HEADER, "413".to_owned()));
    let answer = post(&gateway.url("/hook"), &headers, b"{}").await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(&answer.body[..], UPSTREAM_BODY);
    upstream.next().await;

    let stats = gateway.stop().await;
    assert_eq!(stats.forwarded, 1);
    assert_eq!(stats.total_rejected(), 0);
}

#[tokio::test]
async fn a_client_that_stalls_its_body_is_answered_408_and_cut_off() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.timeouts.body_read = Duration::from_millis(300);
    let gateway = RunningGateway::start(config).await;

    // The head promises 100 bytes; 10 arrive, then nothing. Reading until the gateway closes the
    // connection is the wait.
    let mut request = b"POST /hook HTTP/1.1\r\nHost: gateway\r\nContent-Length: 100\r\n".to_vec();
    for (name, value) in signed_headers(SECRET, "msg_stalled", &[b'x'; 100]) {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n0123456789");
    let answer = String::from_utf8(raw_exchange(gateway.addr, &request).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        answer.ends_with(r#"{"error":"request body timeout"}"#),
        "{answer}"
    );
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::BodyTimeout), 1);
    let rejections = events.lines_starting("rejected reason=body_timeout");
    assert_eq!(rejections.len(), 1);
    assert!(
        rejections[0].contains("path=\"/hook\""),
        "{}",
        rejections[0]
    );
}

#[tokio::test]
async fn a_client_that_stalls_its_head_is_disconnected_and_counted() {
    let upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.timeouts.header_read = Duration::from_millis(300);
    let gateway = RunningGateway::start(config).await;

    // Half a head, then silence: the read ends when the gateway closes the connection.
    raw_exchange(gateway.addr, b"POST /hook HTTP/1.1\r\nHost: gateway\r\n").await;

    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::HeaderTimeout), 1);
    assert_eq!(
        events
            .lines_starting("rejected reason=header_timeout")
            .len(),
        1
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_an_in_flight_request_finish() {
    let release = Arc::new(Notify::new());
    let mut upstream = TestUpstream::holding(Arc::clone(&release)).await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;
    let addr = gateway.addr;

    let url = gateway.url("/hook");
    let headers = signed_headers(SECRET, "msg_in_flight", b"{}");
    let in_flight = tokio::spawn(async move { post(&url, &headers, b"{}").await });
    upstream.next().await;

    let serving = gateway.request_shutdown();
    events.wait_for("shutting down").await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted during shutdown"
    );
    release.notify_one();

    let answer = within(in_flight).await.unwrap();
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(&answer.body[..], UPSTREAM_BODY);
    let stats = within(serving).await.unwrap();
    assert_eq!(stats.forwarded, 1);
    assert!(
        events
            .lines_starting("shutdown grace period over")
            .is_empty()
    );
    assert_eq!(events.lines_starting("stopped forwarded=1").len(), 1);
}

#[tokio::test]
async fn shutdown_cuts_off_requests_still_running_after_the_grace_period() {
    let mut upstream = TestUpstream::holding(Arc::new(Notify::new())).await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.timeouts.upstream = Duration::from_secs(600);
    config.timeouts.shutdown_grace = Duration::from_millis(200);
    let gateway = RunningGateway::start(config).await;

    let mut request = Request::post(gateway.url("/hook"));
    for (name, value) in signed_headers(SECRET, "msg_stuck", b"{}") {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from_static(b"{}"))).unwrap();
    let in_flight = tokio::spawn(client().request(request));
    upstream.next().await;

    let stats = within(gateway.request_shutdown()).await.unwrap();
    assert_eq!(stats.forwarded, 0);
    assert!(within(in_flight).await.unwrap().is_err());
    assert_eq!(
        events.lines_starting("shutdown grace period over: closing 1 connections"),
        ["shutdown grace period over: closing 1 connections with requests unfinished"]
    );
}

#[tokio::test]
async fn every_rejection_is_counted_and_logged_without_secrets_or_signatures() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.body_limit = 64;
    let gateway = RunningGateway::start(config).await;
    let url = gateway.url("/hooks/posthog?token=query-value");
    let body: &[u8] = b"{\"event\":\"signup\"}";
    let mut sent_signatures = Vec::new();

    let valid = signed_headers(SECRET, "msg_valid", body);
    sent_signatures.push(valid[2].1.clone());
    assert_eq!(post(&url, &valid, body).await.status, StatusCode::CREATED);

    let mut requests = vec![
        // Missing headers.
        (Vec::new(), body.to_vec()),
        // Wrong secret.
        (
            signed_headers(UNKNOWN_SECRET, "msg_forged", body),
            body.to_vec(),
        ),
        // Tampered body.
        (
            signed_headers(SECRET, "msg_tampered", body),
            b"{\"event\":\"admin\"}".to_vec(),
        ),
        // An hour old.
        (
            signed_headers_at(SECRET, "msg_old", unix_now() - 3600, body),
            body.to_vec(),
        ),
        // Replay of the valid one.
        (valid.clone(), body.to_vec()),
        // Over the 64-byte limit.
        (
            signed_headers(SECRET, "msg_big", &[b'x'; 65]),
            vec![b'x'; 65],
        ),
    ];
    // A repeated webhook-id is malformed.
    let mut repeated = signed_headers(SECRET, "msg_repeated", body);
    repeated.push(("webhook-id", "msg_other".to_owned()));
    requests.push((repeated, body.to_vec()));
    for (headers, body) in &requests {
        sent_signatures.extend(
            headers
                .iter()
                .filter(|(name, _)| *name == "webhook-signature")
                .map(|(_, value)| value.clone()),
        );
        let answer = post(&url, headers, body).await;
        assert!(
            answer.status == StatusCode::UNAUTHORIZED
                || answer.status == StatusCode::PAYLOAD_TOO_LARGE,
            "{answer:?}"
        );
    }
    // Not HTTP at all: hyper answers 400 and closes.
    let answer = raw_exchange(gateway.addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
    upstream.next().await;
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    let expected = [
        (RejectionReason::MissingHeader, 1),
        (RejectionReason::SignatureMismatch, 2),
        (RejectionReason::TimestampTooOld, 1),
        (RejectionReason::Replay, 1),
        (RejectionReason::BodyTooLarge, 1),
        (RejectionReason::MalformedHeader, 1),
        (RejectionReason::MalformedRequest, 1),
    ];
    for (reason, count) in expected {
        assert_eq!(stats.rejected(reason), count, "{reason}");
    }
    assert_eq!(stats.total_rejected(), 8);
    assert_eq!(stats.forwarded, 1);

    let rejections = events.lines_starting("rejected ");
    assert_eq!(rejections.len(), 8, "{rejections:#?}");
    for line in &rejections {
        assert!(line.contains(" remote=127.0.0.1:"), "{line}");
    }
    let with_path = rejections
        .iter()
        .filter(|line| line.contains(" method=POST path=\"/hooks/posthog\" "))
        .count();
    assert_eq!(with_path, 7);
    assert!(
        rejections
            .iter()
            .any(|line| line.starts_with("rejected reason=timestamp_too_old"))
    );

    let secret_key_part = SECRET.trim_start_matches("whsec_");
    let unknown_key_part = UNKNOWN_SECRET.trim_start_matches("whsec_");
    for line in events.lines() {
        assert!(!line.contains(secret_key_part), "secret in log: {line}");
        assert!(!line.contains(unknown_key_part), "secret in log: {line}");
        assert!(!line.contains("query-value"), "query in log: {line}");
        for signature in &sent_signatures {
            let encoded = signature.trim_start_matches("v1,");
            assert!(!line.contains(encoded), "signature in log: {line}");
        }
    }
}

#[tokio::test]
async fn a_file_replay_store_keeps_refusing_a_replay_after_a_restart() {
    let mut upstream = TestUpstream::answering().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("replay-store");
    let headers = signed_headers(SECRET, "msg_before_restart", b"{}");

    let events = Arc::new(CapturedEvents::default());
    let mut first_config = config(upstream.addr, &[SECRET], &events);
    first_config.replay = ReplayProtection::File(store.clone());
    let first = RunningGateway::start(first_config).await;
    let answer = post(&first.url("/hook"), &headers, b"{}").await;
    assert_eq!(answer.status, StatusCode::CREATED);
    upstream.next().await;
    first.stop().await;

    let events = Arc::new(CapturedEvents::default());
    let mut second_config = config(upstream.addr, &[SECRET], &events);
    second_config.replay = ReplayProtection::File(store);
    let second = RunningGateway::start(second_config).await;
    let replay = post(&second.url("/hook"), &headers, b"{}").await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    upstream.assert_received_nothing();
    let fresh = signed_headers(SECRET, "msg_after_restart", b"{}");
    assert_eq!(
        post(&second.url("/hook"), &fresh, b"{}").await.status,
        StatusCode::CREATED
    );

    let stats = second.stop().await;
    assert_eq!(stats.rejected(RejectionReason::Replay), 1);
    assert_eq!(stats.forwarded, 1);
}

#[tokio::test]
async fn health_is_answered_locally_and_counters_only_on_the_stats_address() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.stats_listen = Some("127.0.0.1:0".parse().unwrap());
    let gateway = RunningGateway::start(config).await;

    let health = send(Method::GET, &gateway.url(HEALTH_PATH), &[], b"").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(&health.body[..], br#"{"status":"ok"}"#);
    // Anything else on the public address, a guess at a stats path included, must verify.
    let guess = send(Method::GET, &gateway.url("/_hogguard/stats"), &[], b"").await;
    assert_eq!(guess.status, StatusCode::UNAUTHORIZED);
    upstream.assert_received_nothing();

    let stats_url = format!("http://{}/", gateway.stats_addr.unwrap());
    let counters = send(Method::GET, &stats_url, &[], b"").await;
    assert_eq!(counters.status, StatusCode::OK);
    assert_eq!(counters.headers["content-type"], "application/json");
    let counters: serde_json::Value = serde_json::from_slice(&counters.body).unwrap();
    assert_eq!(counters["forwarded"], 0);
    assert_eq!(counters["rejected"]["missing_header"], 1);
    assert_eq!(counters["verified_by_secret"], serde_json::json!([0]));

    let stats = gateway.stop().await;
    assert_eq!(stats.total_rejected(), 1);
    let listening = events.lines_starting("listening on");
    assert_eq!(listening.len(), 1);
    assert!(
        listening[0].contains("; counters on http://127.0.0.1:"),
        "{}",
        listening[0]
    );
}

#[tokio::test]
async fn a_full_replay_store_answers_503_with_retry_after_for_both_store_kinds() {
    let mut upstream = TestUpstream::answering().await;
    let dir = tempfile::tempdir().unwrap();
    let stores = [
        ReplayProtection::Memory,
        ReplayProtection::File(dir.path().join("replay-store")),
    ];
    for replay in stores {
        let events = Arc::new(CapturedEvents::default());
        let mut config = config(upstream.addr, &[SECRET], &events);
        config.replay = replay.clone();
        config.replay_capacity = 1;
        let gateway = RunningGateway::start(config).await;
        let url = gateway.url("/hook");

        // The one slot now holds a delivery still inside its replay window.
        let first = signed_headers(SECRET, "msg_fills_the_store", b"{}");
        assert_eq!(post(&url, &first, b"{}").await.status, StatusCode::CREATED);
        upstream.next().await;
        let next = signed_headers(SECRET, "msg_finds_it_full", b"{}");
        let answer = post(&url, &next, b"{}").await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{replay:?}");
        assert_eq!(answer.headers["retry-after"], "1");
        assert_eq!(&answer.body[..], TEMPORARILY_UNAVAILABLE_BODY);
        upstream.assert_received_nothing();

        let stats = gateway.stop().await;
        assert_eq!(stats.forwarded, 1);
        assert_eq!(stats.rejected(RejectionReason::ReplayStoreUnavailable), 1);
        assert_eq!(
            events
                .lines_starting("rejected reason=replay_store_unavailable")
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn a_request_over_the_concurrency_limit_gets_503_before_its_body_is_read() {
    let release = Arc::new(Notify::new());
    let mut upstream = TestUpstream::holding(Arc::clone(&release)).await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.max_concurrent_requests = 1;
    let gateway = RunningGateway::start(config).await;
    let url = gateway.url("/hook");

    // The first request holds the only slot: the upstream has it and does not answer yet.
    let held = {
        let url = url.clone();
        let headers = signed_headers(SECRET, "msg_held", b"{}");
        tokio::spawn(async move { post(&url, &headers, b"{}").await })
    };
    upstream.next().await;

    // The second promises a body and never sends it: only an answer that does not wait for the
    // body arrives before the 5 s body read timeout (which would answer 408).
    let mut request = b"POST /hook HTTP/1.1\r\nHost: gateway\r\nContent-Length: 100\r\n".to_vec();
    for (name, value) in signed_headers(SECRET, "msg_refused", &[b'x'; 100]) {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let answer = String::from_utf8(raw_exchange(gateway.addr, &request).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lowercase = answer.to_ascii_lowercase();
    assert!(lowercase.contains("\r\nretry-after: 1\r\n"), "{answer}");
    assert!(lowercase.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(
        answer.ends_with(r#"{"error":"temporarily unavailable"}"#),
        "{answer}"
    );
    upstream.assert_received_nothing();

    release.notify_one();
    assert_eq!(within(held).await.unwrap().status, StatusCode::CREATED);

    // The slot is free again.
    let third = {
        let headers = signed_headers(SECRET, "msg_third", b"{}");
        tokio::spawn(async move { post(&url, &headers, b"{}").await })
    };
    upstream.next().await;
    release.notify_one();
    assert_eq!(within(third).await.unwrap().status, StatusCode::CREATED);

    let stats = gateway.stop().await;
    assert_eq!(stats.forwarded, 2);
    assert_eq!(stats.rejected(RejectionReason::Overloaded), 1);
    assert_eq!(stats.total_rejected(), 1);
    let overloaded = events.lines_starting("rejected reason=overloaded");
    assert_eq!(overloaded.len(), 1);
    assert!(
        overloaded[0].contains("path=\"/hook\""),
        "{}",
        overloaded[0]
    );
}

#[tokio::test]
async fn at_the_connection_limit_the_gateway_waits_for_a_connection_to_close() {
    let release = Arc::new(Notify::new());
    let mut upstream = TestUpstream::holding(Arc::clone(&release)).await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.max_connections = 1;
    let gateway = RunningGateway::start(config).await;

    // The only connection carries a request the upstream holds, and closes after its answer.
    let mut request =
        b"POST /hook HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\nContent-Length: 2\r\n"
            .to_vec();
    for (name, value) in signed_headers(SECRET, "msg_first_connection", b"{}") {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n{}");
    let addr = gateway.addr;
    let first = tokio::spawn(async move { raw_exchange(addr, &request).await });
    upstream.next().await;
    events.wait_for("connection limit reached").await;

    // A second connection waits in the backlog: its request cannot reach the upstream while the
    // first connection is open.
    let second = {
        let url = gateway.url("/hook");
        let headers = signed_headers(SECRET, "msg_second_connection", b"{}");
        tokio::spawn(async move { post(&url, &headers, b"{}").await })
    };
    upstream.assert_received_nothing();
    release.notify_one();
    let first = within(first).await.unwrap();
    assert!(first.starts_with(b"HTTP/1.1 201"), "{first:?}");

    // The first connection closed, so the second is taken on.
    assert_eq!(
        upstream.next().await.headers["webhook-id"],
        "msg_second_connection"
    );
    release.notify_one();
    assert_eq!(within(second).await.unwrap().status, StatusCode::CREATED);

    let stats = gateway.stop().await;
    assert_eq!(stats.forwarded, 2);
    assert_eq!(stats.total_rejected(), 0);
    assert!(stats.connection_limit_pauses >= 1, "{stats}");
    assert_eq!(
        events.lines_starting("connection limit reached")[0],
        "connection limit reached limit=1: not accepting until a connection closes"
    );
    let stopped = events.lines_starting("stopped ");
    assert!(
        stopped[0].contains(&format!(
            " connection_limit_pauses={} ",
            stats.connection_limit_pauses
        )),
        "{}",
        stopped[0]
    );
}

#[tokio::test]
async fn rejection_log_lines_are_capped_but_the_counters_stay_exact() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let mut config = config(upstream.addr, &[SECRET], &events);
    config.rejection_log_limit = 1;
    let gateway = RunningGateway::start(config).await;

    for _ in 0..5 {
        let answer = post(&gateway.url("/hook"), &[], b"{}").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::MissingHeader), 5);
    let logged = events.lines_starting("rejected ").len();
    let not_logged: usize = events
        .lines_starting("log limit reached not_logged=")
        .iter()
        .map(|line| {
            let count = line.trim_start_matches("log limit reached not_logged=");
            count[..count.find(' ').unwrap()].parse::<usize>().unwrap()
        })
        .sum();
    // Every rejection is either logged or counted in a "not logged" line, the last one written
    // at shutdown. At one line per second, five rejections could all be logged only if they
    // took over four seconds.
    assert_eq!(logged + not_logged, 5, "{:#?}", events.lines());
    assert!(not_logged > 0, "{:#?}", events.lines());
}
