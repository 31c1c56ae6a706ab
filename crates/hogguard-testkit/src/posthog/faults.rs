//! Fault injection: make the next N matching requests fail the way PostHog's edge or its
//! application fails, so callers' retry, back-off and timeout handling can be tested.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::http::{self, ApiResponse, ErrorType};

/// A failure to serve instead of (or, for a delay, before) the normal answer.
///
/// Faults queue up in the order they are injected; a request takes the first one whose path
/// prefix matches and uses up one of its `times`. Requests to `/_fakehog/` are never faulted.
///
/// ```
/// use std::time::Duration;
/// use hogguard_testkit::posthog::Fault;
///
/// let twice_unavailable = Fault::status(503).times(2).on_path("/api/");
/// let slow_capture = Fault::delay(Duration::from_millis(50)).on_path("/i/v0/e");
/// let throttled = Fault::throttled(30);
/// # let _ = (twice_unavailable, slow_capture, throttled);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub(crate) action: FaultAction,
    pub(crate) path_prefix: Option<String>,
    pub(crate) remaining: usize,
}

/// What a [`Fault`] does to the request it catches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FaultAction {
    /// Answer with this status and PostHog's body for it (see [`Fault::status`]).
    Status(u16),
    /// Answer with this status and exactly this body.
    StatusWithBody {
        /// The HTTP status.
        status: u16,
        /// The body, sent as `application/json` when it parses as JSON, else as text.
        body: String,
    },
    /// 429 with DRF's throttle body, `Expected available in N seconds.`
    Throttled {
        /// The `N` of the detail.
        wait_seconds: u64,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Close the connection without writing any response.
    DropConnection,
    /// Keep the request until the gate opens, then answer normally.
    Hold(Gate),
}

impl Fault {
    fn new(action: FaultAction) -> Self {
        Fault {
            action,
            path_prefix: None,
            remaining: 1,
        }
    }

    /// Answer with `status` and the body PostHog gives with it.
    ///
    /// On the private API that is the drf-exceptions-hog envelope (500
    /// `{"type":"server_error","code":"error","detail":"A server error occurred.","attr":null}`,
    /// 429 `throttled` without a wait, 401/403/404 their generic DRF details); on capture paths
    /// it is capture's plain-text error (`transient error, please retry` for 503, `rate limited`
    /// for 429). Gateway statuses (502, 503 and 504 on the private API) come from PostHog's load
    /// balancer, whose body is unverified: the stand-in sends the reason phrase as plain text.
    pub fn status(status: u16) -> Self {
        Fault::new(FaultAction::Status(status))
    }

    /// Answer with `status` and exactly `body`.
    pub fn status_with_body(status: u16, body: impl Into<String>) -> Self {
        Fault::new(FaultAction::StatusWithBody {
            status,
            body: body.into(),
        })
    }

    /// 429 `{"type":"throttled_error","code":"throttled","detail":"Request was throttled.
    /// Expected available in N seconds.","attr":null}` with `N = wait_seconds`.
    pub fn throttled(wait_seconds: u64) -> Self {
        Fault::new(FaultAction::Throttled { wait_seconds })
    }

    /// Hold the request for `delay` (really sleeping, so keep it short), then answer normally.
    pub fn delay(delay: Duration) -> Self {
        Fault::new(FaultAction::Delay(delay))
    }

    /// Close the connection without a response, as a crashed upstream or a network cut does.
    pub fn drop_connection() -> Self {
        Fault::new(FaultAction::DropConnection)
    }

    /// Keep the request at `gate` until the test opens it, then answer normally: a request
    /// caught in flight, for tests of what a client does meanwhile (an interrupt, a kill).
    pub fn hold(gate: &Gate) -> Self {
        Fault::new(FaultAction::Hold(gate.clone()))
    }

    /// Catch the next `times` matching requests instead of one.
    pub fn times(mut self, times: usize) -> Self {
        self.remaining = times;
        self
    }

    /// Catch only requests whose path starts with `prefix` (`/api/`, `/i/v0/e`).
    pub fn on_path(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    pub(crate) fn has_valid_status(&self) -> bool {
        match &self.action {
            FaultAction::Status(status) | FaultAction::StatusWithBody { status, .. } => {
                hyper::StatusCode::from_u16(*status).is_ok()
            }
            _ => true,
        }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        self.remaining > 0
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
    }
}

/// How a caught request is answered.
pub(crate) enum Applied {
    Respond(ApiResponse),
    Delay(Duration),
    Hold(Gate),
    Drop,
}

/// Where [`Fault::hold`] keeps requests: the test sees them arrive, then lets them through.
///
/// ```no_run
/// use std::time::Duration;
/// use hogguard_testkit::posthog::{FakeHog, Fault, Gate};
///
/// let hog = FakeHog::start();
/// let gate = Gate::new();
/// hog.inject(Fault::hold(&gate).on_path("/api/revoke_leaked_key"));
/// // ... start the client ...
/// assert!(gate.wait_for_arrivals(1, Duration::from_secs(10)));
/// // ... do what must happen while the request is in flight ...
/// gate.open();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<GateState>);

#[derive(Debug, Default)]
struct GateState {
    arrived: Mutex<usize>,
    arrival: Condvar,
    open: AtomicBool,
    opened: tokio::sync::Notify,
}

impl Gate {
    /// Makes a closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Blocks until `count` requests have reached the gate or `timeout` passed; returns whether
    /// they did.
    pub fn wait_for_arrivals(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut arrived = self
            .0
            .arrived
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *arrived < count {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            arrived = self
                .0
                .arrival
                .wait_timeout(arrived, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Lets every held request through, and every later one.
    pub fn open(&self) {
        self.0.open.store(true, Ordering::SeqCst);
        self.0.opened.notify_waiters();
    }

    /// Counts the request in and waits until the gate is open.
    pub(crate) async fn pass(&self) {
        *self
            .0
            .arrived
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.arrival.notify_all();
        loop {
            // Registered before the check, so an `open` in between is not missed.
            let opened = self.0.opened.notified();
            if self.0.open.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }
}

/// Gates are the same when they are one gate.
impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Gate {}

impl FaultAction {
    pub(crate) fn apply(&self, path: &str) -> Applied {
        match self {
            FaultAction::Status(status) => Applied::Respond(default_response(*status, path)),
            FaultAction::StatusWithBody { status, body } => Applied::Respond(
                if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok() {
                    ApiResponse {
                        status: *status,
                        content_type: Some("application/json"),
                        body: body.clone().into_bytes(),
                    }
                } else {
                    ApiResponse::text(*status, body.clone())
                },
            ),
            FaultAction::Throttled { wait_seconds } => {
                Applied::Respond(http::throttled(Some(*wait_seconds)))
            }
            FaultAction::Delay(delay) => Applied::Delay(*delay),
            FaultAction::DropConnection => Applied::Drop,
            FaultAction::Hold(gate) => Applied::Hold(gate.clone()),
        }
    }
}

/// Whether `path` is served by capture rather than by the Django app.
pub(crate) fn is_capture_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(first, "i" | "e" | "capture" | "batch" | "track" | "engage")
}

fn default_response(status: u16, path: &str) -> ApiResponse {
    if is_capture_path(path) {
        let text = match status {
            400 => "request holds no event",
            401 => "event submitted without an api_key",
            413 => "maximum event size exceeded",
            429 => "rate limited",
            500 => "internal server error",
            503 => "transient error, please retry",
            _ => reason_phrase(status),
        };
        return ApiResponse::text(status, text);
    }
    match status {
        400 => http::validation_error("invalid", "Invalid input.", None),
        401 => http::authentication_failed("Incorrect authentication credentials."),
        403 => http::permission_denied("You do not have permission to perform this action."),
        404 => http::not_found("Not found."),
        429 => http::throttled(None),
        500 => http::server_error(),
        _ if status < 500 => ApiResponse::error(
            status,
            ErrorType::InvalidRequest,
            "invalid_request",
            reason_phrase(status),
            None,
        ),
        _ => ApiResponse::text(status, reason_phrase(status)),
    }
}

fn reason_phrase(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Error")
}

/// A fault as the `/_fakehog/faults` control endpoint receives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    kind: FaultKind,
    status: Option<u16>,
    body: Option<String>,
    wait_seconds: Option<u64>,
    delay_ms: Option<u64>,
    times: Option<usize>,
    path_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FaultKind {
    Status,
    Throttled,
    Delay,
    Drop,
}

impl FaultSpec {
    pub(crate) fn into_fault(self) -> Result<Fault, String> {
        let mut fault = match (self.kind, self.status, self.body) {
            (FaultKind::Status, Some(status), Some(body)) => Fault::status_with_body(status, body),
            (FaultKind::Status, Some(status), None) => Fault::status(status),
            (FaultKind::Status, None, _) => return Err("a status fault needs `status`".into()),
            (FaultKind::Throttled, _, _) => Fault::throttled(self.wait_seconds.unwrap_or(1)),
            (FaultKind::Delay, _, _) => match self.delay_ms {
                Some(ms) => Fault::delay(Duration::from_millis(ms)),
                None => return Err("a delay fault needs `delay_ms`".into()),
            },
            (FaultKind::Drop, _, _) => Fault::drop_connection(),
        };
        if let Some(times) = self.times {
            fault = fault.times(times);
        }
        if let Some(prefix) = self.path_prefix {
            fault = fault.on_path(prefix);
        }
        if !fault.has_valid_status() {
            return Err("`status` must be a valid HTTP status (100-999)".into());
        }
        Ok(fault)
    }
}
