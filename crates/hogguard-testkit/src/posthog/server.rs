//! The HTTP server: its own thread and single-threaded tokio runtime, so synchronous and
//! asynchronous tests use it alike, and a handle that seeds, observes and stops it.

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use super::control;
use super::demo::{self, Demo};
use super::faults::{Applied, Fault};
use super::http::{ApiRequest, ApiResponse, parse_query};
use super::model::{
    ActivityEntry, Annotation, CapturedEvent, FeatureFlag, FeatureFlagSpec, OAuthTokenSpec,
    PersonalKey, PersonalKeySpec, ProjectSecretKey, ProjectSecretKeySpec, RateLimit, Rejection,
    RequestRecord, SeededKey, SeededProject, SeededUser, UserSpec,
};
use super::time::Timestamp;
use super::world::{Actor, World};

/// How a [`FakeHog`] starts: where it listens, its clock and its leaked-key report budget.
#[derive(Clone, Debug)]
pub struct FakeHogBuilder {
    listen: SocketAddr,
    clock: Option<Timestamp>,
    revoke_throttle: Option<RateLimit>,
}

impl FakeHogBuilder {
    /// Listens on `addr` instead of an OS-assigned port on 127.0.0.1.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Starts the clock at `start` instead of the system time at start-up.
    pub fn clock(mut self, start: Timestamp) -> Self {
        self.clock = Some(start);
        self
    }

    /// Throttles `POST /api/revoke_leaked_key` per client IP (PostHog's rate is unpublished;
    /// by default the stand-in does not throttle).
    pub fn revoke_throttle(mut self, limit: RateLimit) -> Self {
        self.revoke_throttle = Some(limit);
        self
    }

    /// Binds the listener and starts serving on a new thread.
    pub fn start(self) -> std::io::Result<FakeHog> {
        let std_listener = std::net::TcpListener::bind(self.listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let base_url = format!("http://{addr}");
        let world = Arc::new(Mutex::new(World::new(
            self.clock.unwrap_or_else(Timestamp::now),
            base_url.clone(),
            self.revoke_throttle,
        )));
        let (shutdown, shutdown_received) = oneshot::channel();
        let served = Arc::clone(&world);
        let thread = std::thread::Builder::new()
            .name(format!("fakehog-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, served, shutdown_received)))?;
        Ok(FakeHog {
            addr,
            base_url,
            world,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

/// A running PostHog stand-in. Use [`base_url`](Self::base_url) as both the private-API host
/// and the capture host. Each instance has its own state, so two instances play the US and EU
/// regions: a key made in one is unknown to the other. Stops when dropped.
///
/// ```
/// use hogguard_testkit::posthog::FakeHog;
///
/// let hog = FakeHog::start();
/// let demo = hog.seed_demo();
/// assert!(hog.is_live(&demo.full_access_key.value));
/// assert!(hog.base_url().starts_with("http://127.0.0.1:"));
/// ```
pub struct FakeHog {
    addr: SocketAddr,
    base_url: String,
    world: Arc<Mutex<World>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeHog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeHog")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeHog {
    /// Starts a stand-in on an OS-assigned port of 127.0.0.1.
    ///
    /// # Panics
    ///
    /// When the listener cannot be bound or the runtime cannot start.
    pub fn start() -> FakeHog {
        FakeHog::builder()
            .start()
            .expect("the PostHog stand-in starts")
    }

    /// A builder for non-default listen address, clock or throttling.
    pub fn builder() -> FakeHogBuilder {
        FakeHogBuilder {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            clock: None,
            revoke_throttle: None,
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    fn seeded<T>(result: Result<T, String>) -> T {
        result.unwrap_or_else(|error| panic!("fakehog: {error}"))
    }

    /// Adds an organisation; returns its UUID.
    pub fn add_organization(&self, name: &str) -> String {
        self.world().add_organization(name)
    }

    /// Adds a project to an organisation, with a fresh `phc_` project token.
    ///
    /// # Panics
    ///
    /// When the organisation does not exist (so do the other seeding methods on unknown ids).
    pub fn add_project(&self, organization_id: &str, name: &str) -> SeededProject {
        Self::seeded(self.world().add_project(organization_id, name))
    }

    /// Rotates the project's team secret token (the "feature flags secure API key") as
    /// PostHog's `rotate_secret_token` does: the new value becomes primary and the previous
    /// primary stays valid as the backup. Returns the new value.
    pub fn rotate_team_secret_token(&self, project_id: u64) -> String {
        Self::seeded(self.world().rotate_team_secret_token(project_id))
    }

    /// Adds a user.
    pub fn add_user(&self, spec: UserSpec) -> SeededUser {
        Self::seeded(self.world().add_user(spec))
    }

    /// Stores a personal API key as pre-existing state: no validation, no cap, no
    /// activity-log row. Use [`dashboard_create_personal_key`](Self::dashboard_create_personal_key)
    /// for what PostHog does when a person creates one.
    pub fn add_personal_key(&self, user_id: u64, spec: PersonalKeySpec) -> SeededKey {
        Self::seeded(self.world().add_personal_key(user_id, spec))
    }

    /// Stores a project secret API key as pre-existing state (no validation, no log row).
    pub fn add_project_secret_key(&self, project_id: u64, spec: ProjectSecretKeySpec) -> SeededKey {
        Self::seeded(self.world().add_project_secret_key(project_id, spec))
    }

    /// Stores an OAuth access or refresh token; returns its value.
    pub fn add_oauth_token(&self, user_id: u64, spec: OAuthTokenSpec) -> String {
        Self::seeded(self.world().add_oauth_token(user_id, spec))
    }

    /// Adds a feature flag to a project, as if made in the web app.
    pub fn add_feature_flag(&self, project_id: u64, spec: FeatureFlagSpec) -> FeatureFlag {
        Self::seeded(self.world().add_feature_flag(project_id, spec))
    }

    /// The project's feature flags, deleted ones included, oldest first.
    pub fn feature_flags(&self, project_id: u64) -> Vec<FeatureFlag> {
        self.world()
            .feature_flags
            .iter()
            .filter(|flag| flag.project_id == project_id)
            .cloned()
            .collect()
    }

    /// The project's annotations, oldest first.
    pub fn annotations(&self, project_id: u64) -> Vec<Annotation> {
        self.world()
            .annotations
            .iter()
            .filter(|annotation| annotation.project_id == project_id)
            .cloned()
            .collect()
    }

    /// Seeds the demo organisation, project, users and keys (see [`Demo`]).
    pub fn seed_demo(&self) -> Demo {
        demo::seed(self)
    }

    /// Creates a personal API key as the person does in PostHog's web app: the serializer's
    /// validation, the 10-keys-per-user cap and a `created` activity row. A refusal carries
    /// PostHog's exact 400 body; an unknown user gets the 401 of a logged-out request.
    pub fn dashboard_create_personal_key(
        &self,
        user_id: u64,
        spec: PersonalKeySpec,
    ) -> Result<SeededKey, Rejection> {
        self.world().dashboard_create_personal_key(user_id, spec)
    }

    /// Rolls a personal API key as its owner does in the web app; the old value stops working
    /// at once. Returns the new value, or `None` for an unknown key.
    pub fn dashboard_roll_personal_key(&self, key_id: &str) -> Option<String> {
        let mut world = self.world();
        let owner = world
            .personal_keys
            .iter()
            .find(|key| key.id == key_id)?
            .user_id;
        world.roll_personal_key(key_id, &Actor::dashboard(owner))
    }

    /// Deletes a personal API key as its owner does in the web app; `false` for an unknown key.
    pub fn dashboard_delete_personal_key(&self, key_id: &str) -> bool {
        self.world().dashboard_delete_personal_key(key_id)
    }

    /// The stored personal API key with this id.
    pub fn personal_key(&self, key_id: &str) -> Option<PersonalKey> {
        self.world()
            .personal_keys
            .iter()
            .find(|key| key.id == key_id)
            .cloned()
    }

    /// The stored project secret API key with this id.
    pub fn project_secret_key(&self, key_id: &str) -> Option<ProjectSecretKey> {
        self.world()
            .project_secret_keys
            .iter()
            .find(|key| key.id == key_id)
            .cloned()
    }

    /// Whether `secret` authenticates here now (any credential kind).
    pub fn is_live(&self, secret: &str) -> bool {
        self.world().is_live(secret)
    }

    /// Queues a fault for the next matching request(s).
    ///
    /// # Panics
    ///
    /// When the fault's status is not a valid HTTP status (100–999).
    pub fn inject(&self, fault: Fault) {
        assert!(
            fault.has_valid_status(),
            "fakehog: {fault:?} has an invalid HTTP status"
        );
        self.world().faults.push(fault);
    }

    /// Drops every pending fault.
    pub fn clear_faults(&self) {
        self.world().faults.clear();
    }

    /// The events capture accepted, oldest first.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.world().events.clone()
    }

    /// Every activity-log row, oldest first.
    pub fn activity_log(&self) -> Vec<ActivityEntry> {
        self.world().activity.clone()
    }

    /// Every request to the PostHog surface (not `/_fakehog/`), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.world().requests.clone()
    }

    /// How many requests went to `path`, with or without a trailing slash.
    pub fn request_count(&self, path: &str) -> usize {
        let wanted = path.trim_end_matches('/');
        self.world()
            .requests
            .iter()
            .filter(|record| record.path.trim_end_matches('/') == wanted)
            .count()
    }

    /// How many distinct Bearer credentials were sent to `path` (trailing slash ignored).
    pub fn distinct_credentials(&self, path: &str) -> usize {
        let wanted = path.trim_end_matches('/');
        self.world()
            .requests
            .iter()
            .filter(|record| record.path.trim_end_matches('/') == wanted)
            .filter_map(|record| record.credential_sha256.clone())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Forgets the requests seen so far.
    pub fn reset_requests(&self) {
        self.world().requests.clear();
    }

    /// The stand-in's clock. It does not tick: it moves only with [`set_now`](Self::set_now)
    /// and [`advance`](Self::advance), so timestamps in tests are deterministic.
    pub fn now(&self) -> Timestamp {
        self.world().now
    }

    /// Sets the clock.
    pub fn set_now(&self, now: Timestamp) {
        self.world().now = now;
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut world = self.world();
        world.now = world.now.plus(by);
    }

    /// Sets or removes the per-IP budget of `POST /api/revoke_leaked_key`.
    pub fn set_revoke_throttle(&self, limit: Option<RateLimit>) {
        let mut world = self.world();
        world.revoke_throttle = limit;
        world.revoke_history.clear();
    }
}

impl Drop for FakeHog {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; then there is nothing to stop.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    // A panic while holding the lock leaves the state usable for the remaining assertions.
    world.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(
    listener: tokio::net::TcpListener,
    world: Arc<Mutex<World>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let world = Arc::clone(&world);
                tokio::spawn(async move {
                    let service = service_fn(move |request| respond(Arc::clone(&world), peer, request));
                    // Connections end in errors by design (dropped-connection faults, clients
                    // hanging up); there is no one to report them to.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

/// The error that makes hyper close a connection without writing a response.
#[derive(Debug)]
struct ConnectionDropped;

impl fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for ConnectionDropped {}

async fn respond(
    world: Arc<Mutex<World>>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDropped> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| ConnectionDropped)?
        .to_bytes();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let request = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parse_query(&raw_query),
        raw_query,
        headers: parts.headers,
        body,
        peer: peer.ip(),
    };
    if request.path == "/_fakehog" || request.path.starts_with("/_fakehog/") {
        let response = control::handle(&mut lock(&world), &request);
        return Ok(into_hyper(response));
    }
    let fault = lock(&world).admit(&request);
    if let Some(action) = fault {
        match action.apply(&request.path) {
            Applied::Respond(response) => return Ok(into_hyper(response)),
            Applied::Delay(delay) => tokio::time::sleep(delay).await,
            Applied::Hold(gate) => gate.pass().await,
            Applied::Drop => return Err(ConnectionDropped),
        }
    }
    let response = lock(&world).handle(&request);
    Ok(into_hyper(response))
}

fn into_hyper(response: ApiResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(response.status);
    if let Some(content_type) = response.content_type {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .expect("status codes and content types are valid")
}
