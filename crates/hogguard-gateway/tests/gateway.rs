//! End-to-end tests: a real gateway on 127.0.0.1 in front of a recording upstream, for what
//! needs real connections (forwarding over HTTP, slow heads, limits on connections, shutdown).
//! What a request gets, is counted and logged is tested without sockets in `src/deliveries`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hogguard_gateway::{HEALTH_PATH, RejectionReason, ReplayProtection};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use support::{
    CapturedEvents, RunningGateway, SECRET, TestUpstream, UPSTREAM_BODY, client, config, post,
    raw_exchange, send, signed_headers, within,
};

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
    within(events.wait_for("shutting down")).await;
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
    within(events.wait_for("connection limit reached")).await;

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
async fn a_request_that_is_not_http_is_refused_and_counted() {
    let mut upstream = TestUpstream::answering().await;
    let events = Arc::new(CapturedEvents::default());
    let gateway = RunningGateway::start(config(upstream.addr, &[SECRET], &events)).await;

    // hyper answers 400 and closes.
    let answer = raw_exchange(gateway.addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
    upstream.assert_received_nothing();

    let stats = gateway.stop().await;
    assert_eq!(stats.rejected(RejectionReason::MalformedRequest), 1);
    assert_eq!(stats.total_rejected(), 1);
    let rejections = events.lines_starting("rejected ");
    assert_eq!(rejections.len(), 1, "{rejections:#?}");
    assert!(
        rejections[0].starts_with("rejected reason=malformed_request remote=127.0.0.1:"),
        "{}",
        rejections[0]
    );
}
