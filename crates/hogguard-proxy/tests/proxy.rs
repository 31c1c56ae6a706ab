//! The proxy over real HTTP, in front of the PostHog stand-in: what is forwarded and with which
//! credential, what is refused (and never reaches PostHog), reloads, audit entries, and bad
//! input.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hogguard_audit::{AuditLog, AuditOptions, Entry, EntryInput, Filter};
use hogguard_posthog::Hosts;
use hogguard_proxy::{
    AuditMode, AuditSink, BoxError, Client, EventSink, Proxy, ProxyConfig, ProxyEvent, ProxyStats,
    Recorded, ReloadHandle, ReloadTrigger, ScopeTable, Snapshot, SnapshotSource, new_client_token,
};
use hogguard_secret::Secret;
use hogguard_testkit::posthog::{
    FakeHog, Fault, FeatureFlagSpec, Gate, MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec,
    SeededKey, SeededProject, UserSpec, sha256_hex,
};
use serde_json::Value;
use tokio::sync::oneshot;

const NOT_AUTHENTICATED: &str = r#"{"type":"authentication_error","code":"not_authenticated","detail":"Authentication credentials were not provided.","attr":null}"#;

/// Waits for things that happen on other threads, failing after this long.
const PATIENCE: Duration = Duration::from_secs(10);

fn permission_denied(detail: &str) -> String {
    format!(
        r#"{{"type":"authentication_error","code":"permission_denied","detail":{},"attr":null}}"#,
        Value::from(detail)
    )
}

/// A snapshot the test changes at will; optionally the personal key is read from a file, so
/// that changing the file is what a reload picks up.
struct TestSource {
    snapshot: Mutex<Snapshot>,
    key_file: Option<PathBuf>,
}

impl SnapshotSource for TestSource {
    fn load(&self) -> Result<Snapshot, BoxError> {
        let mut snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(file) = &self.key_file {
            let text = std::fs::read_to_string(file)?;
            let value = text
                .trim()
                .strip_prefix("POSTHOG_PERSONAL_API_KEY=")
                .ok_or("no POSTHOG_PERSONAL_API_KEY line")?;
            snapshot.personal_key = Some(Secret::new(value));
        }
        Ok(snapshot)
    }

    fn watched_files(&self) -> Vec<PathBuf> {
        self.key_file.iter().cloned().collect()
    }
}

/// An audit sink that writes to a real log, or fails while told to: every write, or only
/// the fsyncs after the answers.
struct SwitchableSink {
    log: AuditLog,
    failing: AtomicBool,
    sync_failing: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("the disk is full (simulated)")]
struct DiskFull;

impl AuditSink for SwitchableSink {
    fn append(&self, entry: EntryInput) -> Result<Recorded, BoxError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(DiskFull.into());
        }
        self.log.append_written(entry)?;
        Ok(Recorded::Written)
    }

    fn sync(&self) -> Result<(), BoxError> {
        if self.failing.load(Ordering::SeqCst) || self.sync_failing.load(Ordering::SeqCst) {
            return Err(DiskFull.into());
        }
        Ok(self.log.sync()?)
    }
}

/// Every event line, and the reloads as they happen.
struct Events {
    lines: Mutex<Vec<String>>,
    reloads: Mutex<Sender<ReloadTrigger>>,
}

impl EventSink for Events {
    fn record(&self, event: &ProxyEvent<'_>) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.to_string());
        if let ProxyEvent::Reloaded { trigger, .. } = event {
            let _ = self
                .reloads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(*trigger);
        }
    }
}

struct Harness {
    hog: FakeHog,
    project: SeededProject,
    personal: SeededKey,
    other_personal: SeededKey,
    secret: SeededKey,
    reader: Secret,
    writer: Secret,
    admin: Secret,
    audit: Arc<SwitchableSink>,
    audit_path: PathBuf,
    source: Arc<TestSource>,
    events: Arc<Events>,
    reloaded: Receiver<ReloadTrigger>,
    addr: SocketAddr,
    reload: ReloadHandle,
    agent: ureq::Agent,
    stop: Option<oneshot::Sender<()>>,
    server: Option<std::thread::JoinHandle<ProxyStats>>,
    _dir: tempfile::TempDir,
}

struct Options {
    audit: AuditMode,
    body_limit: usize,
    body_read: Duration,
    header_read: Duration,
    upstream: Option<String>,
    key_file: bool,
    with_secret: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            audit: AuditMode::Required,
            body_limit: 64 * 1024,
            body_read: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            upstream: None,
            key_file: false,
            with_secret: true,
        }
    }
}

fn client(name: &str, token: &Secret, scopes: &[&str]) -> Client {
    Client {
        name: name.to_owned(),
        token: token.clone(),
        scopes: scopes.iter().map(|s| s.parse().unwrap()).collect(),
    }
}

fn start(options: Options) -> Harness {
    let hog = FakeHog::start();
    let org = hog.add_organization("Acme");
    let project = hog.add_project(&org, "Web");
    let user = hog.add_user(UserSpec::new("ops@acme.test").member_of(&org, MembershipLevel::Admin));
    let personal = hog.add_personal_key(user.id, PersonalKeySpec::new("services").scopes(["*"]));
    let other_personal =
        hog.add_personal_key(user.id, PersonalKeySpec::new("rotated").scopes(["*"]));
    let secret = hog.add_project_secret_key(
        project.id,
        ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
    );
    hog.add_feature_flag(project.id, FeatureFlagSpec::new("new-checkout"));
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer, admin) = (
        new_client_token().unwrap(),
        new_client_token().unwrap(),
        new_client_token().unwrap(),
    );
    let key_file = options.key_file.then(|| {
        let path = dir.path().join(".env.production");
        std::fs::write(
            &path,
            format!("POSTHOG_PERSONAL_API_KEY={}\n", personal.value),
        )
        .unwrap();
        path
    });
    let source = Arc::new(TestSource {
        snapshot: Mutex::new(Snapshot {
            environment: "production".to_owned(),
            clients: vec![
                client("reader", &reader, &["feature_flag:read", "insight:read"]),
                client(
                    "writer",
                    &writer,
                    &["feature_flag:write", "annotation:write"],
                ),
                client("admin", &admin, &["*"]),
            ],
            personal_key: Some(Secret::new(personal.value.clone())),
            secret_key: options
                .with_secret
                .then(|| Secret::new(secret.value.clone())),
            table: Arc::new(ScopeTable::built_in()),
        }),
        key_file,
    });
    let audit_path = dir.path().join("audit.jsonl");
    let audit = Arc::new(SwitchableSink {
        log: AuditLog::open(&audit_path, &AuditOptions::default()).unwrap(),
        failing: AtomicBool::new(false),
        sync_failing: AtomicBool::new(false),
    });
    let (reload_sender, reloaded) = channel();
    let events = Arc::new(Events {
        lines: Mutex::new(Vec::new()),
        reloads: Mutex::new(reload_sender),
    });
    let upstream = options
        .upstream
        .unwrap_or_else(|| hog.base_url().to_owned());
    let mut config = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        Hosts::new(&upstream).unwrap(),
    );
    config.audit = options.audit;
    config.body_limit = options.body_limit;
    config.timeouts.body_read = options.body_read;
    config.timeouts.header_read = options.header_read;
    config.timeouts.upstream = Duration::from_secs(5);
    config.watch_interval = Duration::from_millis(20);
    config.events = Arc::clone(&events) as Arc<dyn EventSink>;
    let (bound, bound_receiver) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = {
        let source = Arc::clone(&source) as Arc<dyn SnapshotSource>;
        let audit = Arc::clone(&audit) as Arc<dyn AuditSink>;
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let proxy = Proxy::bind(config, source, audit).await.unwrap();
                bound
                    .send((proxy.local_addr(), proxy.reload_handle()))
                    .unwrap();
                proxy
                    .serve(async {
                        let _ = stopped.await;
                    })
                    .await
            })
        })
    };
    let (addr, reload) = bound_receiver.recv_timeout(PATIENCE).unwrap();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    Harness {
        hog,
        project,
        personal,
        other_personal,
        secret,
        reader,
        writer,
        admin,
        audit,
        audit_path,
        source,
        events,
        reloaded,
        addr,
        reload,
        agent,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

struct Answer {
    status: u16,
    body: String,
    headers: ureq::http::HeaderMap,
}

impl Answer {
    fn assert(&self, status: u16, body: &str) {
        assert_eq!((self.status, self.body.as_str()), (status, body));
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request
            .header("Content-Type", "application/json")
            .header("Cookie", "sessionid=stolen")
            .body(body.unwrap_or("").to_owned())
            .unwrap();
        let mut response = self.agent.run(request).unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_string().unwrap(),
        }
    }

    fn get(&self, path: &str, token: &Secret) -> Answer {
        self.send("GET", path, Some(token.expose()), None)
    }

    fn flags_path(&self) -> String {
        format!("/api/projects/{}/feature_flags/", self.project.id)
    }

    fn entries(&self) -> Vec<Entry> {
        hogguard_audit::query(&self.audit_path, &Filter::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn last_entry(&self) -> Entry {
        self.entries().pop().expect("an audit entry")
    }

    /// The credential the stand-in saw on its last request, as a digest.
    fn last_credential(&self) -> Option<String> {
        self.hog.requests().last()?.credential_sha256.clone()
    }

    fn wait_for_reload(&self, trigger: ReloadTrigger) {
        let got = self.reloaded.recv_timeout(PATIENCE).expect("a reload");
        assert_eq!(got, trigger);
    }

    fn event_lines(&self) -> Vec<String> {
        self.events
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stop(mut self) -> (ProxyStats, Vec<String>, String) {
        let _ = self.stop.take().unwrap().send(());
        let stats = self.server.take().unwrap().join().unwrap();
        let audit = std::fs::read_to_string(&self.audit_path).unwrap();
        (stats, self.event_lines(), audit)
    }

    /// Fails when any raw credential or client token shows in the events or the audit log.
    fn assert_no_secret_leaked(self) -> ProxyStats {
        let secrets = [
            self.personal.value.clone(),
            self.other_personal.value.clone(),
            self.secret.value.clone(),
            self.reader.expose().to_owned(),
            self.writer.expose().to_owned(),
            self.admin.expose().to_owned(),
        ];
        let (stats, events, audit) = self.stop();
        for secret in &secrets {
            for line in &events {
                assert!(!line.contains(secret.as_str()), "a secret in event {line}");
            }
            assert!(
                !audit.contains(secret.as_str()),
                "a secret in the audit log"
            );
        }
        stats
    }
}

#[test]
fn allowed_calls_go_to_posthog_with_the_personal_key_and_nothing_of_the_client() {
    let h = start(Options::default());
    let answer = h.get(&h.flags_path(), &h.reader);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body.matches("new-checkout").count(), 1);
    let request = h.hog.requests().pop().unwrap();
    assert_eq!(request.path, h.flags_path());
    assert_eq!(
        request.credential_sha256.as_deref(),
        Some(sha256_hex(&h.personal.value).as_str())
    );
    let names: Vec<&str> = request
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(!names.contains(&"cookie"), "{names:?}");
    let token = h.reader.expose();
    for (name, digest) in &request.headers {
        assert_ne!(
            digest,
            &sha256_hex(token),
            "{name} carried the client token"
        );
        assert_ne!(digest, &sha256_hex(&format!("Bearer {token}")), "{name}");
    }
    let entry = h.last_entry();
    assert_eq!(entry.action, "posthog.api.call");
    assert_eq!(entry.user_id, "reader");
    assert_eq!(entry.resource, h.flags_path());
    assert_eq!(entry.result, hogguard_audit::Outcome::Success);
    assert_eq!(entry.metadata["method"], "GET");
    assert_eq!(entry.metadata["status"], 200);
    assert_eq!(entry.metadata["required_scope"], "feature_flag:read");
    assert_eq!(entry.metadata["environment"], "production");
    assert_eq!(
        entry.metadata["credential"],
        hogguard_secret::mask(&h.personal.value)
    );
    assert!(entry.metadata["duration_ms"].as_f64().unwrap() > 0.0);
    // A write the writer may make.
    let created = h.send(
        "POST",
        &h.flags_path(),
        Some(h.writer.expose()),
        Some(r#"{"key":"beta"}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(h.hog.feature_flags(h.project.id).len(), 2);
    let stats = h.assert_no_secret_leaked();
    assert_eq!(stats.forwarded, 2);
}

#[test]
fn refused_calls_never_reach_posthog_and_are_audited() {
    let h = start(Options::default());
    let before = h.hog.requests().len();
    h.send(
        "POST",
        &h.flags_path(),
        Some(h.reader.expose()),
        Some(r#"{"key":"sneaky"}"#),
    )
    .assert(
        403,
        &permission_denied("API key missing required scope 'feature_flag:write'"),
    );
    h.get(
        &format!("/api/projects/{}/insights/", h.project.id),
        &h.writer,
    )
    .assert(
        403,
        &permission_denied("API key missing required scope 'insight:read'"),
    );
    // PostHog refuses personal keys here whatever their scopes; so does the proxy.
    h.get(&format!("/api/projects/{}/tags/", h.project.id), &h.admin)
        .assert(
            403,
            &permission_denied("This action does not support Personal API Key access"),
        );
    let unknown = h.get(
        &format!("/api/projects/{}/not_in_the_table/", h.project.id),
        &h.reader,
    );
    assert_eq!(unknown.status, 403);
    assert!(
        unknown.body.contains("not in the scope table") && unknown.body.contains("`*`"),
        "{}",
        unknown.body
    );
    assert_eq!(
        h.hog.requests().len(),
        before,
        "a refused call reached PostHog"
    );
    assert!(
        h.hog
            .feature_flags(h.project.id)
            .iter()
            .all(|f| f.key != "sneaky")
    );
    // `*` may call what the table does not know; PostHog decides.
    let star = h.get(
        &format!("/api/projects/{}/not_in_the_table/", h.project.id),
        &h.admin,
    );
    assert_eq!(star.status, 404, "{}", star.body);
    assert_eq!(h.hog.requests().len(), before + 1);
    let entries = h.entries();
    let reasons: Vec<(&str, &Value)> = entries
        .iter()
        .map(|e| {
            (
                e.user_id.as_str(),
                e.metadata.get("reason").unwrap_or(&Value::Null),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("reader", &Value::from("missing-scope")),
            ("writer", &Value::from("missing-scope")),
            ("admin", &Value::from("no-personal-key-access")),
            ("reader", &Value::from("unknown-endpoint")),
            ("admin", &Value::Null),
        ]
    );
    assert!(
        entries[..4]
            .iter()
            .all(|e| e.result == hogguard_audit::Outcome::Failure
                && e.metadata["forwarded"] == false
                && e.metadata["credential"].is_null())
    );
    assert_eq!(entries[0].metadata["status"], 403);
    assert_eq!(entries[0].metadata["required_scope"], "feature_flag:write");
    h.assert_no_secret_leaked();
}

#[test]
fn missing_unknown_and_posthog_credentials_are_401_and_never_forwarded() {
    let h = start(Options::default());
    let flags = h.flags_path();
    h.send("GET", &flags, None, None)
        .assert(401, NOT_AUTHENTICATED);
    let stranger = new_client_token().unwrap();
    let unknown = h.get(&flags, &stranger);
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("\"code\":\"authentication_failed\""));
    for key in [&h.personal.value, &h.secret.value] {
        let answer = h.send("GET", &flags, Some(key), None);
        assert_eq!(answer.status, 401);
        assert!(
            answer.body.contains("a PostHog key was sent"),
            "{}",
            answer.body
        );
        assert!(!answer.body.contains(key.as_str()));
    }
    assert!(h.hog.requests().is_empty());
    let entries = h.entries();
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|e| e.user_id == "unauthenticated"));
    assert_eq!(entries[0].metadata["reason"], "not-authenticated");
    assert_eq!(entries[1].metadata["reason"], "unknown-client-token");
    assert_eq!(entries[2].metadata["reason"], "posthog-key-sent");
    let stats = h.assert_no_secret_leaked();
    assert_eq!(stats.unauthenticated, 4);
}

#[test]
fn the_project_secret_key_serves_flag_definitions_and_remote_config() {
    let h = start(Options::default());
    let definitions = format!(
        "/flags/definitions?token={}&send_cohorts",
        h.project.api_token
    );
    let answer = h.get(&definitions, &h.reader);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("new-checkout"));
    assert_eq!(h.last_credential(), Some(sha256_hex(&h.secret.value)));
    let remote = format!(
        "/api/projects/{}/feature_flags/new-checkout/remote_config/",
        h.project.id
    );
    h.get(&remote, &h.reader).assert(200, "null");
    assert_eq!(h.last_credential(), Some(sha256_hex(&h.secret.value)));
    h.get("/api/feature_flag/local_evaluation", &h.reader);
    assert_eq!(h.last_credential(), Some(sha256_hex(&h.secret.value)));
    // Everything else gets the personal key.
    h.get(&h.flags_path(), &h.reader);
    assert_eq!(h.last_credential(), Some(sha256_hex(&h.personal.value)));
    // Local evaluation needs feature_flag:read of the client too.
    h.get(&definitions, &h.writer);
    let entry = h.last_entry();
    assert_eq!(entry.metadata["endpoint"], "/flags/definitions");
    assert_eq!(
        entry.metadata["credential"],
        hogguard_secret::mask(&h.secret.value)
    );
    h.assert_no_secret_leaked();
}

#[test]
fn without_a_project_secret_key_the_personal_key_serves_local_evaluation() {
    let h = start(Options {
        with_secret: false,
        ..Options::default()
    });
    let definitions = format!("/flags/definitions?token={}", h.project.api_token);
    assert_eq!(h.get(&definitions, &h.reader).status, 200);
    assert_eq!(h.last_credential(), Some(sha256_hex(&h.personal.value)));
    h.assert_no_secret_leaked();
}

#[test]
fn a_reload_swaps_the_key_and_calls_in_flight_finish_with_theirs() {
    let h = start(Options::default());
    let gate = Gate::new();
    h.hog.inject(Fault::hold(&gate).on_path("/api/projects/"));
    let in_flight = {
        let agent = h.agent.clone();
        let url = h.url(&h.flags_path());
        let token = h.reader.expose().to_owned();
        std::thread::spawn(move || {
            let mut response = agent
                .get(&url)
                .header("Authorization", format!("Bearer {token}"))
                .call()
                .unwrap();
            (
                response.status().as_u16(),
                response.body_mut().read_to_string().unwrap(),
            )
        })
    };
    assert!(gate.wait_for_arrivals(1, PATIENCE));
    h.source.snapshot.lock().unwrap().personal_key =
        Some(Secret::new(h.other_personal.value.clone()));
    h.reload.reload();
    h.wait_for_reload(ReloadTrigger::Signal);
    gate.open();
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let held = h.last_entry();
    assert_eq!(
        held.metadata["credential"],
        hogguard_secret::mask(&h.personal.value)
    );
    h.get(&h.flags_path(), &h.reader);
    assert_eq!(
        h.last_credential(),
        Some(sha256_hex(&h.other_personal.value))
    );
    assert_eq!(
        h.last_entry().metadata["credential"],
        hogguard_secret::mask(&h.other_personal.value)
    );
    let lines = h.event_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("event=reloaded trigger=signal")),
        "{lines:?}"
    );
    h.assert_no_secret_leaked();
}

#[test]
fn an_env_file_change_is_picked_up_without_a_signal() {
    let h = start(Options {
        key_file: true,
        ..Options::default()
    });
    h.get(&h.flags_path(), &h.reader);
    assert_eq!(h.last_credential(), Some(sha256_hex(&h.personal.value)));
    let file = h.source.key_file.clone().unwrap();
    // What `hogguard rotate` does: write a new file and rename it over the old one.
    let next = file.with_extension("next");
    std::fs::write(
        &next,
        format!("POSTHOG_PERSONAL_API_KEY={}\n", h.other_personal.value),
    )
    .unwrap();
    std::fs::rename(&next, &file).unwrap();
    h.wait_for_reload(ReloadTrigger::FileChanged);
    h.get(&h.flags_path(), &h.reader);
    assert_eq!(
        h.last_credential(),
        Some(sha256_hex(&h.other_personal.value))
    );
    // A broken file keeps the last good key, and says why.
    std::fs::write(&file, "garbage\n").unwrap();
    wait_until(|| {
        h.event_lines()
            .iter()
            .any(|l| l.contains("event=reload-failed trigger=file-changed"))
    });
    h.get(&h.flags_path(), &h.reader);
    assert_eq!(
        h.last_credential(),
        Some(sha256_hex(&h.other_personal.value))
    );
    h.assert_no_secret_leaked();
}

/// Polls `condition` until it holds (what another thread reports), failing after PATIENCE.
fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::yield_now();
    }
}

#[test]
fn services_add_their_own_entries_under_their_name_redacted() {
    let h = start(Options::default());
    let leaked = hogguard_testkit::keys::current(hogguard_testkit::keys::Prefix::Personal);
    let body = serde_json::json!({
        "userId": "user-42",
        "action": "report.exported",
        "resource": "report/7",
        "result": "success",
        "metadata": {"rows": 12, "oops": leaked},
    })
    .to_string();
    h.send(
        "POST",
        "/_hogguard/audit",
        Some(h.writer.expose()),
        Some(&body),
    )
    .assert(201, r#"{"recorded":true}"#);
    let entry = h.last_entry();
    assert_eq!(entry.action, "report.exported");
    assert_eq!(entry.user_id, "writer");
    assert_eq!(entry.resource, "report/7");
    assert_eq!(entry.metadata["service_user_id"], "user-42");
    assert_eq!(entry.metadata["rows"], 12);
    assert_eq!(entry.metadata["oops"], hogguard_secret::mask(&leaked));
    let refused = h.send(
        "POST",
        "/_hogguard/audit",
        Some(h.writer.expose()),
        Some(r#"{"action":"posthog.api.call","resource":"/api/x","result":"success"}"#),
    );
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains(r#""attr":"action""#),
        "{}",
        refused.body
    );
    h.send("POST", "/_hogguard/audit", None, Some(&body))
        .assert(401, NOT_AUTHENTICATED);
    assert!(h.hog.requests().is_empty());
    assert!(
        !std::fs::read_to_string(&h.audit_path)
            .unwrap()
            .contains(&leaked)
    );
    h.assert_no_secret_leaked();
}

#[test]
fn a_failing_audit_log_refuses_calls_until_it_recovers() {
    let h = start(Options::default());
    h.audit.failing.store(true, Ordering::SeqCst);
    // The first call reached PostHog, but its answer is withheld: its entry failed.
    let first = h.get(&h.flags_path(), &h.reader);
    assert_eq!(first.status, 503, "{}", first.body);
    assert!(first.body.contains("audit_unavailable"));
    assert_eq!(h.hog.requests().len(), 1);
    // Later calls are refused before they reach PostHog.
    assert_eq!(h.get(&h.flags_path(), &h.reader).status, 503);
    assert_eq!(h.hog.requests().len(), 1);
    h.audit.failing.store(false, Ordering::SeqCst);
    // The next call is refused but recorded; once its entry is durable, calls flow again.
    assert_eq!(h.get(&h.flags_path(), &h.reader).status, 503);
    wait_until(|| {
        h.event_lines()
            .iter()
            .any(|l| l.contains("event=audit-recovered"))
    });
    assert_eq!(h.get(&h.flags_path(), &h.reader).status, 200);
    let lines = h.event_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("event=audit-failing") && l.contains("calls=refused")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("event=audit-recovered")),
        "{lines:?}"
    );
    let stats = h.assert_no_secret_leaked();
    assert_eq!(stats.audit_failures, 2);
}

#[test]
fn an_fsync_that_fails_after_an_answer_refuses_the_calls_after_it() {
    let h = start(Options::default());
    h.audit.sync_failing.store(true, Ordering::SeqCst);
    // Written before the answer; the fsync after it fails.
    assert_eq!(h.get(&h.flags_path(), &h.reader).status, 200);
    wait_until(|| {
        h.event_lines()
            .iter()
            .any(|l| l.contains("event=audit-failing") && l.contains("calls=refused"))
    });
    let refused = h.get(&h.flags_path(), &h.reader);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(h.hog.requests().len(), 1);
    h.audit.sync_failing.store(false, Ordering::SeqCst);
    // Refused calls are recorded (the one above, or a probe); once one's entry is durable,
    // calls flow again. Nothing refused reached PostHog.
    wait_until(|| h.get(&h.flags_path(), &h.reader).status == 200);
    assert!(
        h.event_lines()
            .iter()
            .any(|l| l.contains("event=audit-recovered"))
    );
    assert_eq!(h.hog.requests().len(), 2);
    // Every entry written is durable after a sync: none was lost to the failed fsyncs.
    h.audit.log.sync().unwrap();
    let written = std::fs::read_to_string(&h.audit_path)
        .unwrap()
        .lines()
        .count();
    assert!(written >= 3, "{written}");
    assert_eq!(h.audit.log.last_seq(), written as u64);
    h.assert_no_secret_leaked();
}

#[test]
fn best_effort_audit_forwards_and_says_so_loudly() {
    let h = start(Options {
        audit: AuditMode::BestEffort,
        ..Options::default()
    });
    h.audit.failing.store(true, Ordering::SeqCst);
    assert_eq!(h.get(&h.flags_path(), &h.reader).status, 200);
    assert_eq!(h.get(&h.flags_path(), &h.reader).status, 200);
    let lines = h.event_lines();
    assert!(
        lines.iter().any(|l| l.contains("event=audit-best-effort")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("event=audit-failing") && l.contains("forwarded-unaudited")),
        "{lines:?}"
    );
    h.assert_no_secret_leaked();
}

#[test]
fn posthog_down_is_a_502_and_its_429_passes_with_the_wait() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let h = start(Options {
        upstream: Some(format!("http://127.0.0.1:{port}")),
        ..Options::default()
    });
    h.get(&h.flags_path(), &h.reader).assert(
        502,
        r#"{"type":"server_error","code":"bad_gateway","detail":"hogguard proxy: PostHog could not be reached","attr":null}"#,
    );
    assert_eq!(h.last_entry().metadata["reason"], "upstream-unavailable");
    assert!(
        h.event_lines()
            .iter()
            .any(|l| l.contains("event=upstream-failing status=502"))
    );
    h.assert_no_secret_leaked();

    let h = start(Options::default());
    h.hog.inject(Fault::throttled(30));
    let throttled = h.get(&h.flags_path(), &h.reader);
    throttled.assert(
        429,
        r#"{"type":"throttled_error","code":"throttled","detail":"Request was throttled. Expected available in 30 seconds.","attr":null}"#,
    );
    assert_eq!(throttled.headers["retry-after"], "30");
    assert_eq!(h.last_entry().metadata["status"], 429);
    h.assert_no_secret_leaked();
}

#[test]
fn public_endpoints_pass_untouched_without_a_token_or_an_entry() {
    let h = start(Options::default());
    let batch = serde_json::json!({
        "api_key": h.project.api_token,
        "batch": [{"event": "signed_up", "distinct_id": "u1"}],
    })
    .to_string();
    // A client token sent here by mistake does not leave the proxy.
    h.send("POST", "/batch/", Some(h.reader.expose()), Some(&batch))
        .assert(200, r#"{"status":"Ok"}"#);
    assert_eq!(h.hog.events()[0].event, "signed_up");
    let request = h.hog.requests().pop().unwrap();
    assert!(request.credential_sha256.is_none());
    assert!(h.entries().is_empty());
    // Another spelling of a public path is a private call, and needs a token.
    h.send("POST", "/batch%2F", None, Some(&batch))
        .assert(401, NOT_AUTHENTICATED);
    h.send("GET", "/_hogguard/health", None, None)
        .assert(200, r#"{"status":"ok"}"#);
    let stats = h.assert_no_secret_leaked();
    assert_eq!(stats.public, 1);
}

#[test]
fn ambiguous_paths_are_refused_before_anything_else() {
    let h = start(Options::default());
    let answer = h.get(
        &format!(
            "/api/projects/{}/insights/..%2Ffeature_flags/",
            h.project.id
        ),
        &h.reader,
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("invalid_path"));
    assert!(h.hog.requests().is_empty());
    assert_eq!(h.last_entry().metadata["reason"], "ambiguous-path");
    h.assert_no_secret_leaked();
}

/// Sends raw bytes and reads until the proxy closes the connection or answers.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // The proxy may answer and close before everything is written.
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn oversized_bodies_and_heads_and_slow_clients_are_cut_off() {
    let h = start(Options {
        body_limit: 1024,
        body_read: Duration::from_millis(300),
        header_read: Duration::from_millis(300),
        ..Options::default()
    });
    let big = format!(r#"{{"key":"{}"}}"#, "x".repeat(4096));
    let answer = h.send("POST", &h.flags_path(), Some(h.writer.expose()), Some(&big));
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(h.hog.requests().is_empty());
    assert_eq!(h.last_entry().metadata["reason"], "body-too-large");
    // A chunked body that grows past the limit is cut off on the way.
    let mut chunked = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        h.flags_path(),
        h.writer.expose()
    );
    for _ in 0..4 {
        chunked.push_str(&format!("400\r\n{}\r\n", "y".repeat(1024)));
    }
    chunked.push_str("0\r\n\r\n");
    let answer = raw_exchange(h.addr, chunked.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Headers beyond the limit.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "z".repeat(200 * 1024)
    );
    let answer = raw_exchange(h.addr, huge.as_bytes());
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // A body that never finishes.
    let slow = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n{{\"key\":",
        h.flags_path(),
        h.writer.expose()
    );
    let answer = raw_exchange(h.addr, slow.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A head that never finishes: the connection is closed.
    let answer = raw_exchange(h.addr, b"GET /_hogguard/health HTTP/1.1\r\nHost: x\r\n");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(h.hog.feature_flags(h.project.id).len() == 1);
    let stats = h.assert_no_secret_leaked();
    assert!(stats.oversized_or_slow >= 3, "{stats:?}");
}

#[test]
fn start_up_errors_name_what_failed_once() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let source = Arc::new(TestSource {
        snapshot: Mutex::new(Snapshot {
            environment: "production".to_owned(),
            clients: vec![],
            personal_key: None,
            secret_key: None,
            table: Arc::new(ScopeTable::built_in()),
        }),
        key_file: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let audit =
        Arc::new(AuditLog::open(dir.path().join("a.jsonl"), &AuditOptions::default()).unwrap());
    let config = ProxyConfig::new(
        taken.local_addr().unwrap(),
        Hosts::new("http://127.0.0.1:9").unwrap(),
    );
    let error = runtime
        .block_on(Proxy::bind(config.clone(), source.clone(), audit.clone()))
        .unwrap_err();
    assert!(
        error.to_string().starts_with("cannot listen on 127.0.0.1:"),
        "{error}"
    );
    hogguard_testkit::errors::assert_no_repeated_segment(&error);
    source.snapshot.lock().unwrap().clients =
        vec![client("broken", &Secret::new("not-a-token"), &["*"])];
    let error = runtime
        .block_on(Proxy::bind(config, source, audit))
        .unwrap_err();
    assert_eq!(error.to_string(), "the proxy's clients cannot be used");
    hogguard_testkit::errors::assert_no_repeated_segment(&error);
    let _ = Path::new("");
}
