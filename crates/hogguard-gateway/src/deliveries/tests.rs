//! The delivery address's answers, counters and log lines, one call per request: no sockets, a
//! stand-in upstream. The tests that need real connections (forwarding over HTTP, timeouts of
//! the head, connection limits, shutdown) are in `tests/gateway.rs`.

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use hogguard_webhook::replay::{ReplayStoreError, Reservation};
use hogguard_webhook::{
    MemoryReplayStore, ReplayStore, Scheme, Verifier, WebhookSecret, generate_secret, github,
    standard,
};
use http::HeaderMap;
use http_body_util::BodyExt as _;
use tokio::sync::{Notify, mpsc};

use super::*;
use crate::config::ReplayProtection;

#[path = "../../../hogguard-webhook/tests/svix/mod.rs"]
#[expect(dead_code, reason = "shared with tests that also verify in svix")]
mod svix;
use crate::events::MemorySink;
use crate::forward::RelayFuture;
use crate::request::StalledBody;
use crate::stats::GatewayStats;

/// Header a test sets to choose the stand-in upstream's answer: a status, `unreachable`, or
/// `timeout`.
const ANSWER_HEADER: &str = "x-test-answer";
/// The body the stand-in upstream answers with.
const UPSTREAM_BODY: &[u8] = b"\x00\xffupstream answer";
const INVALID_SIGNATURE_BODY: &[u8] = br#"{"error":"invalid signature"}"#;
const TEMPORARILY_UNAVAILABLE_BODY: &[u8] = br#"{"error":"temporarily unavailable"}"#;

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A new Standard Webhooks secret.
fn new_secret() -> WebhookSecret {
    generate_secret().unwrap()
}

/// A request the stand-in upstream received.
#[derive(Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    peer: SocketAddr,
}

/// An upstream stand-in: records each request, optionally waits for `release`, then answers
/// as the request's [`ANSWER_HEADER`] asks (`201` without it).
struct StubRelay {
    received: mpsc::UnboundedSender<Received>,
    release: Option<Arc<Notify>>,
}

impl Relay for StubRelay {
    fn relay(&self, request: Request<Full<Bytes>>, peer: SocketAddr) -> RelayFuture<'_> {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let answer = parts
                .headers
                .get(ANSWER_HEADER)
                .map(|value| value.to_str().unwrap().to_owned());
            let _ = self.received.send(Received {
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                body,
                peer,
            });
            if let Some(release) = &self.release {
                release.notified().await;
            }
            match answer.as_deref() {
                Some("unreachable") => Err(UpstreamFailure::Unreachable(
                    io::Error::from(io::ErrorKind::ConnectionRefused).into(),
                )),
                Some("timeout") => Err(UpstreamFailure::TimedOut(Duration::from_secs(5))),
                status => {
                    let mut response = Response::new(Full::new(Bytes::from_static(UPSTREAM_BODY)));
                    *response.status_mut() =
                        status.map_or(StatusCode::CREATED, |status| status.parse().unwrap());
                    Ok(response)
                }
            }
        })
    }
}

/// A gateway's delivery service in front of a [`StubRelay`], with its events kept.
struct Harness {
    deliveries: Arc<Deliveries>,
    reporter: Arc<Reporter>,
    events: Arc<MemorySink>,
    received: mpsc::UnboundedReceiver<Received>,
}

/// An answer as the sender gets it.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Harness {
    /// A configuration with `secrets`, an in-memory replay store and short timeouts.
    fn config(secrets: &[&WebhookSecret]) -> GatewayConfig {
        let mut config = GatewayConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            "http://127.0.0.1:9".parse().unwrap(),
            Scheme::Standard,
            secrets
                .iter()
                .map(|secret| WebhookSecret::new(secret.expose()))
                .collect(),
        );
        config.replay = ReplayProtection::Memory;
        config.timeouts.body_read = Duration::from_secs(5);
        config
    }

    /// Builds the service for `config`, its upstream answering at once.
    fn new(config: GatewayConfig) -> Self {
        Self::with_release(config, None)
    }

    /// Builds the service for `config`, its upstream answering each request only when `release`
    /// is notified.
    fn holding(config: GatewayConfig, release: Arc<Notify>) -> Self {
        Self::with_release(config, Some(release))
    }

    fn with_release(config: GatewayConfig, release: Option<Arc<Notify>>) -> Self {
        let verifier = config.build_verifier().unwrap();
        Self::with_verifier(config, verifier, release)
    }

    fn with_verifier(
        mut config: GatewayConfig,
        verifier: Verifier,
        release: Option<Arc<Notify>>,
    ) -> Self {
        let events = Arc::new(MemorySink::default());
        config.events = events.clone();
        let reporter = Arc::new(Reporter::new(
            config.secrets.len(),
            Arc::clone(&config.events),
            config.rejection_log_limit,
        ));
        let (sender, received) = mpsc::unbounded_channel();
        let relay = StubRelay {
            received: sender,
            release,
        };
        let deliveries = Deliveries::new(&config, verifier, Arc::new(relay), Arc::clone(&reporter));
        Self {
            deliveries: Arc::new(deliveries),
            reporter,
            events,
            received,
        }
    }

    /// Sends `request` and returns the answer.
    async fn send<B>(&self, request: Request<B>) -> Answer
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        answer_of(self.deliveries.handle(peer(), request).await).await
    }

    /// Starts sending `request` on a task of its own.
    fn spawn(&self, request: Request<Full<Bytes>>) -> tokio::task::JoinHandle<Answer> {
        let deliveries = Arc::clone(&self.deliveries);
        tokio::spawn(async move { answer_of(deliveries.handle(peer(), request).await).await })
    }

    /// Waits for the next request the upstream receives.
    async fn next(&mut self) -> Received {
        self.received.recv().await.unwrap()
    }

    /// Asserts that the upstream received nothing (more). A forwarded request is recorded before
    /// its answer, so this needs no waiting.
    fn assert_received_nothing(&mut self) {
        if let Ok(request) = self.received.try_recv() {
            panic!("upstream received {request:?}");
        }
    }

    fn stats(&self) -> GatewayStats {
        self.reporter.snapshot()
    }
}

async fn answer_of(response: Response<Full<Bytes>>) -> Answer {
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// `POST path` with `headers` and `body`.
fn post(path: &str, headers: &[(&str, String)], body: &[u8]) -> Request<Full<Bytes>> {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

/// Standard Webhooks headers signing `body` as delivery `id` at `timestamp`.
fn signed_at(
    secret: &WebhookSecret,
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let signature = standard::sign(secret, id, timestamp, body).unwrap();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

/// Standard Webhooks headers signing `body` as delivery `id`, timestamped now.
fn signed(secret: &WebhookSecret, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    signed_at(secret, id, unix_now(), body)
}

#[tokio::test]
async fn an_invalid_signature_gets_401_and_nothing_is_forwarded() {
    let secret = new_secret();
    let mut gateway = Harness::new(Harness::config(&[&secret]));
    let answer = gateway
        .send(post(
            "/hook",
            &signed(&new_secret(), "msg_forged", b"{}"),
            b"{}",
        ))
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(&answer.body[..], INVALID_SIGNATURE_BODY);
    gateway.assert_received_nothing();
    let stats = gateway.stats();
    assert_eq!(stats.rejected(RejectionReason::SignatureMismatch), 1);
    assert_eq!(stats.forwarded, 0);
}

#[tokio::test]
async fn a_verified_delivery_reaches_the_upstream_with_its_peer_and_the_answer_comes_back() {
    let secret = new_secret();
    let mut gateway = Harness::new(Harness::config(&[&secret]));
    let body = b"\xff{\"event\":\"$pageview\"}";
    let answer = gateway
        .send(post(
            "/hooks/posthog",
            &signed(&secret, "msg_ok", body),
            body,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(&answer.body[..], UPSTREAM_BODY);
    let received = gateway.next().await;
    assert_eq!(received.path, "/hooks/posthog");
    assert_eq!(&received.body[..], body);
    assert_eq!(received.peer, peer());
    assert_eq!(received.headers["webhook-id"], "msg_ok");
    assert_eq!(gateway.stats().forwarded, 1);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_nothing_is_forwarded() {
    let secret = new_secret();
    let mut config = Harness::config(&[&secret]);
    config.body_limit = 16;
    let mut gateway = Harness::new(config);

    let body = [b'x'; 17];
    let answer = gateway
        .send(post("/hook", &signed(&secret, "msg_large", &body), &body))
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.headers["connection"], "close");
    gateway.assert_received_nothing();

    // Exactly at the limit passes.
    let body = [b'x'; 16];
    let answer = gateway
        .send(post(
            "/hook",
            &signed(&secret, "msg_at_limit", &body),
            &body,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);

    let stats = gateway.stats();
    assert_eq!(stats.rejected(RejectionReason::BodyTooLarge), 1);
    assert_eq!(stats.forwarded, 1);
}

#[tokio::test]
async fn a_replayed_delivery_gets_401_and_reaches_the_upstream_once() {
    let secret = new_secret();
    let mut gateway = Harness::new(Harness::config(&[&secret]));
    let headers = signed(&secret, "msg_once", b"{}");
    let first = gateway.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    gateway.next().await;
    let replay = gateway.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(&replay.body[..], INVALID_SIGNATURE_BODY);
    gateway.assert_received_nothing();

    let stats = gateway.stats();
    assert_eq!(stats.rejected(RejectionReason::Replay), 1);
    assert_eq!(stats.forwarded, 1);
}

#[tokio::test]
async fn a_delivery_the_app_failed_is_forwarded_again_when_the_sender_retries() {
    // See: issue 11 point 11.
    let secret = new_secret();
    let mut gateway = Harness::new(Harness::config(&[&secret]));
    let headers = signed(&secret, "msg_app_failed", b"{}");
    for failure in ["500", "503", "429", "unreachable", "timeout"] {
        let mut failing = headers.clone();
        failing.push((ANSWER_HEADER, failure.to_owned()));
        let first = gateway.send(post("/hook", &failing, b"{}")).await;
        assert!(
            first.status.is_server_error() || first.status == StatusCode::TOO_MANY_REQUESTS,
            "{failure}: {first:?}"
        );
        gateway.next().await;
    }
    let retry = gateway.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    gateway.next().await;
    let copy = gateway.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(copy.status, StatusCode::UNAUTHORIZED);
    gateway.assert_received_nothing();

    let stats = gateway.stats();
    assert_eq!(stats.forwarded, 4);
    assert_eq!(stats.upstream_errors, 1);
    assert_eq!(stats.upstream_timeouts, 1);
    assert_eq!(stats.rejected(RejectionReason::Replay), 1);
}

#[tokio::test]
async fn a_delivery_the_app_never_got_is_forwarded_after_a_restart() {
    // See: issue 11 point 11 (the app was down: 502, and the id was used up on disk).
    let secret = new_secret();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Harness::config(&[&secret]);
    config.replay = ReplayProtection::File(dir.path().join("replay-store"));
    let headers = signed(&secret, "msg_app_down", b"{}");

    let mut down = headers.clone();
    down.push((ANSWER_HEADER, "unreachable".to_owned()));
    let first = Harness::new(clone_config(&config));
    let answer = first.send(post("/hook", &down, b"{}")).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(&answer.body[..], br#"{"error":"upstream unavailable"}"#);
    drop(first);

    let mut second = Harness::new(config);
    let retry = second.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    second.next().await;
}

/// A copy of `config`: the fields tests set, the rest from [`Harness::config`].
fn clone_config(config: &GatewayConfig) -> GatewayConfig {
    let secrets: Vec<&WebhookSecret> = config.secrets.iter().collect();
    let mut copy = Harness::config(&secrets);
    copy.scheme = config.scheme.clone();
    copy.replay = config.replay.clone();
    copy.replay_capacity = config.replay_capacity;
    copy
}

#[tokio::test]
async fn a_file_replay_store_keeps_refusing_a_replay_after_a_restart() {
    let secret = new_secret();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Harness::config(&[&secret]);
    config.replay = ReplayProtection::File(dir.path().join("replay-store"));
    let headers = signed(&secret, "msg_before_restart", b"{}");

    let mut first = Harness::new(clone_config(&config));
    let answer = first.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    first.next().await;
    drop(first);

    let mut second = Harness::new(config);
    let replay = second.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    second.assert_received_nothing();
    let fresh = signed(&secret, "msg_after_restart", b"{}");
    assert_eq!(
        second.send(post("/hook", &fresh, b"{}")).await.status,
        StatusCode::CREATED
    );
    let stats = second.stats();
    assert_eq!(stats.rejected(RejectionReason::Replay), 1);
    assert_eq!(stats.forwarded, 1);
}

#[tokio::test]
async fn a_copy_arriving_while_the_first_is_forwarded_gets_503_and_stays_at_the_gateway() {
    let secret = new_secret();
    let release = Arc::new(Notify::new());
    let mut gateway = Harness::holding(Harness::config(&[&secret]), Arc::clone(&release));
    let headers = signed(&secret, "msg_twice_at_once", b"{}");

    let first = gateway.spawn(post("/hook", &headers, b"{}"));
    gateway.next().await;
    let copy = gateway.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(copy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(copy.headers["retry-after"], "1");
    assert_eq!(&copy.body[..], TEMPORARILY_UNAVAILABLE_BODY);
    gateway.assert_received_nothing();

    release.notify_one();
    assert_eq!(first.await.unwrap().status, StatusCode::CREATED);
    let stats = gateway.stats();
    assert_eq!(stats.forwarded, 1);
    assert_eq!(stats.rejected(RejectionReason::DuplicateInFlight), 1);
    assert_eq!(
        gateway
            .events
            .lines_starting("rejected reason=duplicate_in_flight")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_github_delivery_is_forwarded_once() {
    // See: issue 11 point 12.
    let secret = WebhookSecret::new("a GitHub webhook secret for this test");
    let mut config = Harness::config(&[&secret]);
    config.scheme = Scheme::GitHub;
    let mut gateway = Harness::new(config);

    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let signature = github::sign(&secret, body).unwrap();
    let delivery = |guid: &str| {
        vec![
            ("x-hub-signature-256", signature.clone()),
            ("x-github-delivery", guid.to_owned()),
        ]
    };
    let first = gateway
        .send(post("/hook", &delivery("72d3162e"), body))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    gateway.next().await;
    for copy in [delivery("72d3162e"), delivery("0f1e2d3c")] {
        let answer = gateway.send(post("/hook", &copy, body)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    gateway.assert_received_nothing();
    assert_eq!(gateway.stats().rejected(RejectionReason::Replay), 2);
}

#[tokio::test]
async fn during_a_rotation_either_secret_verifies_and_each_is_counted() {
    let (old, new, unknown) = (new_secret(), new_secret(), new_secret());
    let mut gateway = Harness::new(Harness::config(&[&new, &old]));
    for (secret, id, expected) in [
        (&old, "msg_old_secret", StatusCode::CREATED),
        (&new, "msg_new_secret", StatusCode::CREATED),
        (&old, "msg_old_again", StatusCode::CREATED),
        (&unknown, "msg_unknown", StatusCode::UNAUTHORIZED),
    ] {
        let answer = gateway
            .send(post("/hook", &signed(secret, id, b"{}"), b"{}"))
            .await;
        assert_eq!(answer.status, expected, "{id}");
    }
    for _ in 0..3 {
        gateway.next().await;
    }
    gateway.assert_received_nothing();
    let stats = gateway.stats();
    assert_eq!(stats.verified_by_secret, [1, 2]);
    assert_eq!(stats.rejected(RejectionReason::SignatureMismatch), 1);
}

#[tokio::test]
async fn an_upstream_rejection_is_relayed_not_counted_as_the_gateways() {
    let secret = new_secret();
    let mut gateway = Harness::new(Harness::config(&[&secret]));
    let mut headers = signed(&secret, "msg_upstream_413", b"{}");
    headers.push((ANSWER_HEADER, "413".to_owned()));
    let answer = gateway.send(post("/hook", &headers, b"{}")).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(&answer.body[..], UPSTREAM_BODY);
    gateway.next().await;
    let stats = gateway.stats();
    assert_eq!(stats.forwarded, 1);
    assert_eq!(stats.total_rejected(), 0);
}

/// `POST /hook` with `headers` and a body that never comes.
fn stalled(headers: &[(&str, String)]) -> Request<StalledBody> {
    let mut request = Request::post("/hook");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.body(StalledBody { len: 100 }).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stalls_its_body_is_answered_408_and_cut_off() {
    let secret = new_secret();
    let mut config = Harness::config(&[&secret]);
    config.timeouts.body_read = Duration::from_millis(300);
    let mut gateway = Harness::new(config);

    let started = Instant::now();
    let answer = gateway
        .send(stalled(&signed(&secret, "msg_stalled", &[b'x'; 100])))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(answer.headers["connection"], "close");
    assert_eq!(&answer.body[..], br#"{"error":"request body timeout"}"#);
    gateway.assert_received_nothing();

    assert_eq!(gateway.stats().rejected(RejectionReason::BodyTimeout), 1);
    let rejections = gateway
        .events
        .lines_starting("rejected reason=body_timeout");
    assert_eq!(rejections.len(), 1);
    assert!(
        rejections[0].contains("path=\"/hook\""),
        "{}",
        rejections[0]
    );
}

#[tokio::test]
async fn every_rejection_is_counted_and_logged_without_secrets_or_signatures() {
    let (secret, unknown) = (new_secret(), new_secret());
    let mut config = Harness::config(&[&secret]);
    config.body_limit = 64;
    let mut gateway = Harness::new(config);
    let path = "/hooks/posthog?token=query-value";
    let body: &[u8] = b"{\"event\":\"signup\"}";
    let mut sent_signatures = Vec::new();

    let valid = signed(&secret, "msg_valid", body);
    assert_eq!(
        gateway.send(post(path, &valid, body)).await.status,
        StatusCode::CREATED
    );

    let mut requests = vec![
        // Missing headers.
        (Vec::new(), body.to_vec()),
        // Wrong secret.
        (signed(&unknown, "msg_forged", body), body.to_vec()),
        // Tampered body.
        (
            signed(&secret, "msg_tampered", body),
            b"{\"event\":\"admin\"}".to_vec(),
        ),
        // An hour old.
        (
            signed_at(&secret, "msg_old", unix_now() - 3600, body),
            body.to_vec(),
        ),
        // Replay of the valid one.
        (valid.clone(), body.to_vec()),
        // Over the 64-byte limit.
        (signed(&secret, "msg_big", &[b'x'; 65]), vec![b'x'; 65]),
    ];
    // A repeated webhook-id is malformed.
    let mut repeated = signed(&secret, "msg_repeated", body);
    repeated.push(("webhook-id", "msg_other".to_owned()));
    requests.push((repeated, body.to_vec()));
    for (headers, body) in &requests {
        sent_signatures.extend(
            headers
                .iter()
                .filter(|(name, _)| *name == "webhook-signature")
                .map(|(_, value)| value.clone()),
        );
        let answer = gateway.send(post(path, headers, body)).await;
        assert!(
            answer.status == StatusCode::UNAUTHORIZED
                || answer.status == StatusCode::PAYLOAD_TOO_LARGE,
            "{answer:?}"
        );
    }
    gateway.next().await;
    gateway.assert_received_nothing();

    let stats = gateway.stats();
    let expected = [
        (RejectionReason::MissingHeader, 1),
        (RejectionReason::SignatureMismatch, 2),
        (RejectionReason::TimestampTooOld, 1),
        (RejectionReason::Replay, 1),
        (RejectionReason::BodyTooLarge, 1),
        (RejectionReason::MalformedHeader, 1),
    ];
    for (reason, count) in expected {
        assert_eq!(stats.rejected(reason), count, "{reason}");
    }
    assert_eq!(stats.total_rejected(), 7);
    assert_eq!(stats.forwarded, 1);

    let rejections = gateway.events.lines_starting("rejected ");
    assert_eq!(rejections.len(), 7, "{rejections:#?}");
    for line in &rejections {
        assert!(line.contains(" remote=127.0.0.1:40000 "), "{line}");
        assert!(
            line.contains(" method=POST path=\"/hooks/posthog\" "),
            "{line}"
        );
    }
    assert!(
        rejections
            .iter()
            .any(|line| line.starts_with("rejected reason=timestamp_too_old"))
    );
    let key_parts =
        [&secret, &unknown].map(|secret| secret.expose().trim_start_matches("whsec_").to_owned());
    for line in gateway.events.lines() {
        for key_part in &key_parts {
            assert!(!line.contains(key_part.as_str()), "secret in log: {line}");
        }
        assert!(!line.contains("query-value"), "query in log: {line}");
        for signature in &sent_signatures {
            let encoded = signature.trim_start_matches("v1,");
            assert!(!line.contains(encoded), "signature in log: {line}");
        }
    }
}

#[tokio::test]
async fn health_is_answered_locally() {
    let secret = new_secret();
    let mut gateway = Harness::new(Harness::config(&[&secret]));
    for method in [Method::GET, Method::HEAD] {
        let request = Request::builder()
            .method(method)
            .uri(HEALTH_PATH)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let health = gateway.send(request).await;
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(&health.body[..], br#"{"status":"ok"}"#);
    }
    // Anything else, a guess at a stats path or a POST to the health path included, must verify.
    for (method, path) in [
        (Method::GET, "/_hogguard/stats"),
        (Method::POST, HEALTH_PATH),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(gateway.send(request).await.status, StatusCode::UNAUTHORIZED);
    }
    gateway.assert_received_nothing();
    assert_eq!(gateway.stats().rejected(RejectionReason::MissingHeader), 2);
}

#[tokio::test]
async fn a_full_replay_store_answers_503_with_retry_after_for_both_store_kinds() {
    let secret = new_secret();
    let dir = tempfile::tempdir().unwrap();
    let stores = [
        ReplayProtection::Memory,
        ReplayProtection::File(dir.path().join("replay-store")),
    ];
    for replay in stores {
        let mut config = Harness::config(&[&secret]);
        config.replay = replay.clone();
        config.replay_capacity = 1;
        let mut gateway = Harness::new(config);

        // The one slot now holds a delivery still inside its replay window.
        let first = signed(&secret, "msg_fills_the_store", b"{}");
        let answer = gateway.send(post("/hook", &first, b"{}")).await;
        assert_eq!(answer.status, StatusCode::CREATED);
        gateway.next().await;
        let next = signed(&secret, "msg_finds_it_full", b"{}");
        let answer = gateway.send(post("/hook", &next, b"{}")).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{replay:?}");
        assert_eq!(answer.headers["retry-after"], "1");
        assert_eq!(&answer.body[..], TEMPORARILY_UNAVAILABLE_BODY);
        gateway.assert_received_nothing();

        let stats = gateway.stats();
        assert_eq!(stats.forwarded, 1);
        assert_eq!(stats.rejected(RejectionReason::ReplayStoreUnavailable), 1);
        assert_eq!(
            gateway
                .events
                .lines_starting("rejected reason=replay_store_unavailable")
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn a_request_over_the_concurrency_limit_gets_503_before_its_body_is_read() {
    let secret = new_secret();
    let release = Arc::new(Notify::new());
    let mut config = Harness::config(&[&secret]);
    config.max_concurrent_requests = 1;
    let mut gateway = Harness::holding(config, Arc::clone(&release));

    // The first request holds the only slot: the upstream has it and does not answer yet.
    let held = gateway.spawn(post("/hook", &signed(&secret, "msg_held", b"{}"), b"{}"));
    gateway.next().await;

    // The second's body never comes: only an answer that does not wait for it can arrive.
    let answer = gateway
        .send(stalled(&signed(&secret, "msg_refused", &[b'x'; 100])))
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["retry-after"], "1");
    assert_eq!(answer.headers["connection"], "close");
    assert_eq!(&answer.body[..], TEMPORARILY_UNAVAILABLE_BODY);
    gateway.assert_received_nothing();

    release.notify_one();
    assert_eq!(held.await.unwrap().status, StatusCode::CREATED);

    // The slot is free again.
    let third = gateway.spawn(post("/hook", &signed(&secret, "msg_third", b"{}"), b"{}"));
    gateway.next().await;
    release.notify_one();
    assert_eq!(third.await.unwrap().status, StatusCode::CREATED);

    let stats = gateway.stats();
    assert_eq!(stats.forwarded, 2);
    assert_eq!(stats.rejected(RejectionReason::Overloaded), 1);
    assert_eq!(stats.total_rejected(), 1);
    let overloaded = gateway.events.lines_starting("rejected reason=overloaded");
    assert_eq!(overloaded.len(), 1);
    assert!(
        overloaded[0].contains("path=\"/hook\""),
        "{}",
        overloaded[0]
    );
}

#[tokio::test]
async fn rejection_log_lines_are_capped_but_the_counters_stay_exact() {
    let secret = new_secret();
    let mut config = Harness::config(&[&secret]);
    config.rejection_log_limit = 1;
    let mut gateway = Harness::new(config);

    for _ in 0..5 {
        let answer = gateway.send(post("/hook", &[], b"{}")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    gateway.assert_received_nothing();
    gateway.reporter.report_held_back();

    assert_eq!(gateway.stats().rejected(RejectionReason::MissingHeader), 5);
    let logged = gateway.events.lines_starting("rejected ").len();
    let not_logged: usize = gateway
        .events
        .lines_starting("log limit reached not_logged=")
        .iter()
        .map(|line| {
            let count = line.trim_start_matches("log limit reached not_logged=");
            count[..count.find(' ').unwrap()].parse::<usize>().unwrap()
        })
        .sum();
    // Every rejection is either logged or counted in a "not logged" line, the last one written
    // when the gateway stops. At one line per second, five rejections could all be logged only
    // if they took over four seconds.
    assert_eq!(logged + not_logged, 5, "{:#?}", gateway.events.lines());
    assert!(not_logged > 0, "{:#?}", gateway.events.lines());
}

/// A replay store whose commits fail, like a file store on a full disk.
#[derive(Default)]
struct FailingCommits {
    held: MemoryReplayStore,
}

impl ReplayStore for FailingCommits {
    fn reserve(&self, key: &str, now: u64) -> Result<Reservation, ReplayStoreError> {
        self.held.reserve(key, now)
    }

    fn commit(&self, _key: &str, _now: u64, _keep_until: u64) -> Result<(), ReplayStoreError> {
        Err(ReplayStoreError::Io(io::ErrorKind::StorageFull.into()))
    }

    fn release(&self, key: &str) {
        self.held.release(key);
    }
}

#[tokio::test]
async fn a_delivery_the_upstream_took_but_the_store_could_not_record_is_logged() {
    let secret = new_secret();
    let config = Harness::config(&[&secret]);
    let verifier = config
        .build_verifier()
        .unwrap()
        .with_replay_store(FailingCommits::default());
    let mut gateway = Harness::with_verifier(config, verifier, None);

    let answer = gateway
        .send(post(
            "/hook",
            &signed(&secret, "msg_unrecorded", b"{}"),
            b"{}",
        ))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    gateway.next().await;
    assert_eq!(gateway.stats().forwarded, 1);
    assert_eq!(
        gateway.events.lines_starting("delivery not recorded"),
        [
            "delivery not recorded remote=127.0.0.1:40000 method=POST path=\"/hook\" \
             detail=\"replay store could not record the delivery: replay store file could not be \
             written: no storage space\": forwarded, but a copy would be forwarded again"
        ]
    );
}

#[tokio::test]
async fn a_svix_branded_delivery_is_forwarded_with_its_headers() {
    // See: issue 12 point 17.
    let svix = svix::Svix::install();
    let secret = new_secret();
    let mut gateway = Harness::new(Harness::config(&[&secret]));
    let body = r#"{"type":"invoice.paid","data":{"id":"in_1"}}"#;
    let delivery = svix.sign(secret.expose(), "msg_svix_branded", unix_now(), body);
    let headers: Vec<(&str, String)> = delivery
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();

    let answer = gateway.send(post("/hook", &headers, body.as_bytes())).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let received = gateway.next().await;
    assert_eq!(&received.body[..], body.as_bytes());
    for (name, value) in &delivery {
        assert_eq!(received.headers[name.as_str()], value.as_str(), "{name}");
    }
    // Sent again under the `webhook-` names it is the same delivery.
    let unbranded: Vec<(&str, String)> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .zip(delivery.iter().map(|(_, value)| value.clone()))
        .collect();
    let copy = gateway
        .send(post("/hook", &unbranded, body.as_bytes()))
        .await;
    assert_eq!(copy.status, StatusCode::UNAUTHORIZED);
    // Both names with different ids are two readings of one delivery: refused.
    let mut disagreeing = headers.clone();
    disagreeing.push(("webhook-id", "msg_someone_else".to_owned()));
    let refused = gateway
        .send(post("/hook", &disagreeing, body.as_bytes()))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    gateway.assert_received_nothing();

    let stats = gateway.stats();
    assert_eq!(stats.forwarded, 1);
    assert_eq!(stats.rejected(RejectionReason::Replay), 1);
    assert_eq!(stats.rejected(RejectionReason::MalformedHeader), 1);
}
