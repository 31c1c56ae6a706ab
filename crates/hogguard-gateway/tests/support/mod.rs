//! Test fixtures: a recording upstream, a captured event sink, signing, and HTTP clients.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hogguard_gateway::{Gateway, GatewayConfig, GatewayStats, MemorySink, ReplayProtection};
use hogguard_webhook::{Scheme, WebhookSecret, standard};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// The secret the tests sign with: the Standard Webhooks spec's public example.
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"; // hogguard:allow (the Standard Webhooks spec's public example secret)

/// The body the test upstream answers with: not UTF-8, to prove it is relayed byte for byte.
pub(crate) const UPSTREAM_BODY: &[u8] = b"\x00\xffupstream answer\xfe";

/// Header a test sets to choose the upstream's answer status.
pub(crate) const ANSWER_STATUS_HEADER: &str = "x-test-answer-status";

/// Longest any single step of a test may take before the test fails instead of hanging.
pub(crate) const STEP_LIMIT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test if it takes longer than [`STEP_LIMIT`].
pub(crate) async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_LIMIT, future)
        .await
        .expect("test step did not finish in time")
}

/// A request as the upstream received it.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) method: Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A recording upstream on 127.0.0.1.
pub(crate) struct TestUpstream {
    pub(crate) addr: SocketAddr,
    pub(crate) received: mpsc::UnboundedReceiver<Received>,
}

impl TestUpstream {
    /// Starts an upstream that answers every request at once.
    pub(crate) async fn answering() -> Self {
        Self::start(None).await
    }

    /// Starts an upstream that records each request, then answers only once `release` is
    /// notified (one answer per notification); never notified, it never answers.
    pub(crate) async fn holding(release: Arc<Notify>) -> Self {
        Self::start(Some(release)).await
    }

    async fn start(release: Option<Arc<Notify>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let sender = sender.clone();
                let release = release.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let sender = sender.clone();
                    let release = release.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let status = parts
                            .headers
                            .get(ANSWER_STATUS_HEADER)
                            .map_or(StatusCode::CREATED, |value| {
                                value.to_str().unwrap().parse().unwrap()
                            });
                        let _ = sender.send(Received {
                            method: parts.method,
                            uri: parts.uri,
                            headers: parts.headers,
                            body,
                        });
                        if let Some(release) = release {
                            release.notified().await;
                        }
                        let response = Response::builder()
                            .status(status)
                            .header("x-upstream", "yes")
                            .header("keep-alive", "timeout=5")
                            .header("connection", "x-upstream-hop")
                            .header("x-upstream-hop", "connection-specific")
                            .body(Full::new(Bytes::from_static(UPSTREAM_BODY)))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self { addr, received }
    }

    /// Waits for the next request the upstream receives.
    pub(crate) async fn next(&mut self) -> Received {
        within(self.received.recv()).await.unwrap()
    }

    /// Asserts that the upstream has received nothing (more). Any forwarded request would have
    /// been recorded before the gateway could answer the client, so this needs no waiting.
    pub(crate) fn assert_received_nothing(&mut self) {
        if let Ok(request) = self.received.try_recv() {
            panic!("upstream received {request:?}");
        }
    }
}

/// The gateway's events, kept for the test to read.
pub(crate) type CapturedEvents = MemorySink;

/// A configuration for a gateway in front of `upstream`, with short timeouts and captured
/// events.
pub(crate) fn config(
    upstream: SocketAddr,
    secrets: &[&str],
    events: &Arc<CapturedEvents>,
) -> GatewayConfig {
    let mut config = GatewayConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        format!("http://{upstream}").parse().unwrap(),
        Scheme::Standard,
        secrets
            .iter()
            .map(|text| WebhookSecret::new(*text))
            .collect(),
    );
    config.timeouts.header_read = Duration::from_secs(5);
    config.timeouts.body_read = Duration::from_secs(5);
    config.timeouts.upstream = Duration::from_secs(5);
    config.timeouts.shutdown_grace = Duration::from_secs(5);
    config.replay = ReplayProtection::Memory;
    config.events = events.clone();
    config
}

/// A gateway serving on a spawned task until [`RunningGateway::stop`].
pub(crate) struct RunningGateway {
    pub(crate) addr: SocketAddr,
    pub(crate) stats_addr: Option<SocketAddr>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<GatewayStats>,
}

impl RunningGateway {
    pub(crate) async fn start(config: GatewayConfig) -> Self {
        let gateway = Gateway::bind(config).await.unwrap();
        let (shutdown, shutdown_requested) = oneshot::channel::<()>();
        let addr = gateway.local_addr();
        let stats_addr = gateway.stats_addr();
        let task = tokio::spawn(gateway.serve(async {
            let _ = shutdown_requested.await;
        }));
        Self {
            addr,
            stats_addr,
            shutdown,
            task,
        }
    }

    /// Asks the gateway to shut down and returns the join handle of its serving task.
    pub(crate) fn request_shutdown(self) -> JoinHandle<GatewayStats> {
        self.shutdown.send(()).unwrap();
        self.task
    }

    /// Shuts the gateway down and returns its final counters.
    pub(crate) async fn stop(self) -> GatewayStats {
        within(self.request_shutdown()).await.unwrap()
    }

    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }
}

/// Standard Webhooks headers signing `body` as delivery `id`, timestamped now.
pub(crate) fn signed_headers(secret: &str, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    signed_headers_at(secret, id, now, body)
}

/// Standard Webhooks headers signing `body` as delivery `id` at `timestamp`.
pub(crate) fn signed_headers_at(
    secret: &str,
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let signature = standard::sign(&WebhookSecret::new(secret), id, timestamp, body).unwrap();
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

/// An answer as the test client received it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `method url` with `headers` and `body` and returns the whole answer.
pub(crate) async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let response = within(client().request(request)).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: within(body.collect()).await.unwrap().to_bytes(),
    }
}

/// Sends `POST url` with `headers` and `body`.
pub(crate) async fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
    send(Method::POST, url, headers, body).await
}

/// Writes `request` on a new connection to `addr` and reads until the server closes it.
pub(crate) async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer)).await.unwrap();
    answer
}
