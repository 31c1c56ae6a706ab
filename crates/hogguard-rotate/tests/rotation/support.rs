//! Shared fixtures: a PostHog stand-in with a project, an admin and their keys, a temporary
//! project directory with an env file, a scripted person and an audit sink that keeps records.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hogguard_posthog::{ClientConfig, Hosts, ProjectSecretKeyInfo, Sleeper, WriterClient};
use hogguard_rotate::{
    AuditRecord, AuditResult, AuditSink, AuditSinkError, Clock, Interaction, InteractionError,
    PostHogAccess, ProjectSecretKeyProvider, Provider, RotationRequest, Rotator, Store,
};
use hogguard_secret::Secret;
use hogguard_testkit::posthog::{
    FakeHog, MembershipLevel, PersonalKeySpec, ProjectSecretKeySpec, SeededKey, SeededProject,
    SeededUser, UserSpec,
};

pub(crate) const VARIABLE: &str = "POSTHOG_FLAGS_KEY";
pub(crate) const PREVIOUS: &str = "POSTHOG_FLAGS_KEY_PREVIOUS";

/// Returns at once, recording each wait, so retries and probes cost no time.
#[derive(Default)]
pub(crate) struct RecordingSleeper {
    pub(crate) waits: Mutex<Vec<Duration>>,
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) {
        self.waits.lock().unwrap().push(duration);
    }
}

/// A clock tests move by hand.
pub(crate) struct ManualClock(pub(crate) Mutex<SystemTime>);

impl ManualClock {
    pub(crate) fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(SystemTime::now())))
    }

    pub(crate) fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// One audit record, kept: action, resource, result and metadata.
pub(crate) type KeptRecord = (String, String, AuditResult, Vec<(String, String)>);

/// Every audit record, to check what was recorded and that no secret was.
#[derive(Default)]
pub(crate) struct MemoryAudit {
    pub(crate) records: Mutex<Vec<KeptRecord>>,
}

impl AuditSink for MemoryAudit {
    fn record(&self, record: &AuditRecord<'_>) -> Result<(), AuditSinkError> {
        self.records.lock().unwrap().push((
            record.action.to_owned(),
            record.resource.to_owned(),
            record.result,
            record
                .metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        ));
        Ok(())
    }
}

impl MemoryAudit {
    pub(crate) fn actions(&self) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|(action, ..)| action.clone())
            .collect()
    }

    /// Fails the test if any record holds one of `secrets`.
    pub(crate) fn assert_holds_none_of(&self, secrets: &[&str]) {
        let text = format!("{:?}", self.records.lock().unwrap());
        for secret in secrets {
            assert!(!text.contains(secret), "an audit record holds a secret");
        }
    }
}

/// A person following a script: answers come from closures, messages are kept.
pub(crate) struct Person {
    pub(crate) shown: Vec<String>,
    keys: VecDeque<Box<dyn FnMut() -> Result<Secret, InteractionError>>>,
    confirmations: VecDeque<Box<dyn FnMut() -> bool>>,
}

impl Person {
    /// Someone who is never asked anything (automatic rotations).
    pub(crate) fn silent() -> Person {
        Person {
            shown: Vec::new(),
            keys: VecDeque::new(),
            confirmations: VecDeque::new(),
        }
    }

    /// Next, answers a key prompt with what `answer` returns.
    pub(crate) fn gives_key(mut self, answer: impl FnMut() -> Secret + 'static) -> Person {
        let mut answer = answer;
        self.keys.push_back(Box::new(move || Ok(answer())));
        self
    }

    /// Next, answers a yes-or-no question with what `answer` returns.
    pub(crate) fn confirms(mut self, answer: impl FnMut() -> bool + 'static) -> Person {
        self.confirmations.push_back(Box::new(answer));
        self
    }
}

impl Interaction for Person {
    fn show(&mut self, message: &str) {
        self.shown.push(message.to_owned());
    }

    fn read_secret(&mut self, prompt: &str) -> Result<Secret, InteractionError> {
        self.shown.push(prompt.to_owned());
        match self.keys.pop_front() {
            Some(mut answer) => answer(),
            None => Err(InteractionError::Cancelled),
        }
    }

    fn confirm(&mut self, question: &str) -> Result<bool, InteractionError> {
        self.shown.push(question.to_owned());
        match self.confirmations.pop_front() {
            Some(mut answer) => Ok(answer()),
            None => Err(InteractionError::Cancelled),
        }
    }
}

/// A stand-in with a project, an admin holding a `project:write` key, and a project directory.
pub(crate) struct World {
    pub(crate) hog: Arc<FakeHog>,
    pub(crate) project: SeededProject,
    pub(crate) admin: SeededUser,
    pub(crate) admin_key: SeededKey,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) sleeper: Arc<RecordingSleeper>,
}

impl World {
    pub(crate) fn new() -> World {
        let hog = Arc::new(FakeHog::start());
        let organization = hog.add_organization("Acme");
        let project = hog.add_project(&organization, "Web");
        let admin = hog.add_user(
            UserSpec::new("ops@acme.test").member_of(&organization, MembershipLevel::Admin),
        );
        let admin_key = hog.add_personal_key(
            admin.id,
            PersonalKeySpec::new("rotator").scopes(["project:write"]),
        );
        World {
            hog,
            project,
            admin,
            admin_key,
            dir: tempfile::tempdir().unwrap(),
            sleeper: Arc::new(RecordingSleeper::default()),
        }
    }

    pub(crate) fn config(&self) -> ClientConfig {
        ClientConfig::default().sleeper(self.sleeper.clone())
    }

    pub(crate) fn access(&self) -> PostHogAccess {
        self.access_with(self.config())
    }

    pub(crate) fn access_with(&self, config: ClientConfig) -> PostHogAccess {
        PostHogAccess::new(Hosts::new(self.hog.base_url()).unwrap(), config)
    }

    pub(crate) fn env_file(&self) -> PathBuf {
        self.dir.path().join(".env.production")
    }

    pub(crate) fn rotations_dir(&self) -> PathBuf {
        self.dir.path().join(".hogguard/rotations")
    }

    pub(crate) fn rotator(&self) -> Rotator {
        Rotator::new(self.rotations_dir())
    }

    /// Seeds a project secret API key and writes it to the env file between other lines.
    pub(crate) fn seed_secret_key(&self) -> SeededKey {
        let key = self.hog.add_project_secret_key(
            self.project.id,
            ProjectSecretKeySpec::new("flags", ["feature_flag:read"]),
        );
        fs::write(
            self.env_file(),
            format!(
                "# production\r\nexport {VARIABLE}=\"{}\" # flags\r\nOTHER='kept'\r\n",
                key.value
            ),
        )
        .unwrap();
        key
    }

    pub(crate) fn secret_key_request(&self) -> RotationRequest {
        self.secret_key_request_with(self.access())
    }

    pub(crate) fn secret_key_request_with(&self, access: PostHogAccess) -> RotationRequest {
        RotationRequest::new(
            "production",
            "flags_key",
            VARIABLE,
            Provider::ProjectSecretKey(ProjectSecretKeyProvider::new(
                access,
                Secret::new(self.admin_key.value.clone()),
                self.project.id,
            )),
            Store::env_file(self.env_file()),
        )
    }

    /// The project's secret API keys, as PostHog lists them.
    pub(crate) fn secret_keys(&self) -> Vec<ProjectSecretKeyInfo> {
        let client = WriterClient::connect(
            &Hosts::new(self.hog.base_url()).unwrap(),
            &self.config(),
            Secret::new(self.admin_key.value.clone()),
        )
        .unwrap();
        client.project_secret_keys(self.project.id).unwrap()
    }
}

/// The value of `variable` in an env file, which must parse.
pub(crate) fn env_value(path: &Path, variable: &str) -> Option<String> {
    let text = fs::read_to_string(path).unwrap();
    let env = hogguard_dotenv::parse(&text).expect("the env file is never corrupt");
    env.get(variable).map(str::to_owned)
}

/// The env file without the credential's two variables, to check nothing else changed.
pub(crate) fn env_rest(path: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(path).unwrap();
    hogguard_dotenv::parse(&text)
        .unwrap()
        .entries()
        .iter()
        .filter(|e| e.key != VARIABLE && e.key != PREVIOUS)
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}
