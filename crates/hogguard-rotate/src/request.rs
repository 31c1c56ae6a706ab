//! What to rotate, how, and where its value lives.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hogguard_posthog::{
    ClientConfig, Deployment, Hosts, Revoker, Sleeper, ThreadSleeper, Verifier, WriterClient,
};
use hogguard_secret::Secret;
use serde::{Deserialize, Serialize};

use crate::error::RotateError;
use crate::store::{PREVIOUS_SUFFIX, Store};

/// How long both webhook secrets verify after a rotation, unless the request says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// How many times a deleted personal API key is probed before the rotation gives up on it.
pub const DEFAULT_PROBE_ATTEMPTS: u32 = 12;
/// The wait between probes of a deleted personal API key.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// One rotation to run: which credential of which environment, the variable holding it, the
/// provider that knows how to replace it, the store, and the options.
///
/// ```
/// use hogguard_rotate::{Provider, RotationRequest, Store, WebhookSecretProvider};
/// use std::time::Duration;
///
/// let request = RotationRequest::new(
///     "production",
///     "webhook_secret",
///     "WEBHOOK_SECRET",
///     Provider::WebhookSecret(WebhookSecretProvider::new().grace(Duration::from_secs(3600))),
///     Store::env_file(".env.production"),
/// )
/// .verify_command("./scripts/healthcheck.sh");
/// assert_eq!(request.previous_variable(), "WEBHOOK_SECRET_PREVIOUS");
/// ```
#[derive(Clone, Debug)]
pub struct RotationRequest {
    pub(crate) environment: String,
    pub(crate) credential: String,
    pub(crate) variable: String,
    pub(crate) provider: Provider,
    pub(crate) store: Store,
    pub(crate) verify_command: Option<String>,
    pub(crate) if_older_than: Option<Duration>,
}

impl RotationRequest {
    /// A request to rotate `credential` of `environment`, held in `variable` of `store`.
    pub fn new(
        environment: impl Into<String>,
        credential: impl Into<String>,
        variable: impl Into<String>,
        provider: Provider,
        store: Store,
    ) -> RotationRequest {
        RotationRequest {
            environment: environment.into(),
            credential: credential.into(),
            variable: variable.into(),
            provider,
            store,
            verify_command: None,
            if_older_than: None,
        }
    }

    /// A shell command (run with `sh -c`) that checks the application works with the stored
    /// key, e.g. its health check. It runs after the new key is stored and before the old one
    /// is retired; a non-zero exit stops the rotation with the old key still alive. Its
    /// environment is hogguard's plus `HOGGUARD_ENVIRONMENT`, `HOGGUARD_CREDENTIAL`,
    /// `HOGGUARD_VARIABLE`, `HOGGUARD_ROTATION_ID` and, for an env-file store,
    /// `HOGGUARD_ENV_FILE`; the key itself is never put there.
    pub fn verify_command(mut self, command: impl Into<String>) -> RotationRequest {
        self.verify_command = Some(command.into());
        self
    }

    /// Rotate only when the key is at least this old (`--if-older-than 30d`); see
    /// [`Rotator::key_age`](crate::Rotator::key_age).
    pub fn if_older_than(mut self, age: Duration) -> RotationRequest {
        self.if_older_than = Some(age);
        self
    }

    /// `environment/credential`, as messages and audit records name it.
    pub fn credential_name(&self) -> String {
        format!("{}/{}", self.environment, self.credential)
    }

    /// The variable that keeps the old key while the rotation is open: `VAR_PREVIOUS`.
    pub fn previous_variable(&self) -> String {
        format!("{}{PREVIOUS_SUFFIX}", self.variable)
    }

    /// The provider.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }
}

/// What kind of credential is rotated, and how.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Provider {
    /// A project secret API key (`phs_`): automatic, create-new-then-delete-old.
    ProjectSecretKey(ProjectSecretKeyProvider),
    /// A personal API key (`phx_`): assisted, a person creates and deletes keys in PostHog.
    PersonalKey(PersonalKeyProvider),
    /// A webhook signing secret (`whsec_`): automatic, with a grace period.
    WebhookSecret(WebhookSecretProvider),
    /// A project API key (`phc_`): public by design; guidance, then an assisted store update.
    ProjectApiKey(ProjectApiKeyProvider),
}

impl Provider {
    /// The provider's kind.
    pub fn kind(&self) -> ProviderKind {
        match self {
            Provider::ProjectSecretKey(_) => ProviderKind::ProjectSecretKey,
            Provider::PersonalKey(_) => ProviderKind::PersonalKey,
            Provider::WebhookSecret(_) => ProviderKind::WebhookSecret,
            Provider::ProjectApiKey(_) => ProviderKind::ProjectApiKey,
        }
    }
}

/// The kind of a [`Provider`], as journals and audit records name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderKind {
    /// `project_secret_key`.
    ProjectSecretKey,
    /// `personal_key`.
    PersonalKey,
    /// `webhook_secret`.
    WebhookSecret,
    /// `project_api_key`.
    ProjectApiKey,
}

impl ProviderKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::ProjectSecretKey => "project_secret_key",
            ProviderKind::PersonalKey => "personal_key",
            ProviderKind::WebhookSecret => "webhook_secret",
            ProviderKind::ProjectApiKey => "project_api_key",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where PostHog is and how to call it (timeout, retries, the sleeper between attempts).
#[derive(Clone, Debug)]
pub struct PostHogAccess {
    hosts: Hosts,
    config: ClientConfig,
}

impl PostHogAccess {
    /// PostHog at `hosts`, called with `config`.
    pub fn new(hosts: Hosts, config: ClientConfig) -> PostHogAccess {
        PostHogAccess { hosts, config }
    }

    pub(crate) fn verifier(&self) -> Verifier {
        Verifier::new(Deployment::of(&self.hosts), &self.config)
    }

    pub(crate) fn revoker(&self) -> Revoker {
        Revoker::new(Deployment::of(&self.hosts), &self.config)
    }

    pub(crate) fn writer(&self, admin_key: &Secret) -> Result<WriterClient, RotateError> {
        WriterClient::connect(&self.hosts, &self.config, admin_key.clone()).map_err(|source| {
            RotateError::PostHog {
                action: "connect with the key that manages project secret API keys",
                source,
            }
        })
    }

    /// A page of PostHog's web app (`path` starts with `/`).
    pub(crate) fn page(&self, path: &str) -> String {
        format!("{}{path}", self.hosts.api().as_str())
    }
}

/// Rotates a project secret API key with a personal API key that may manage them
/// (`project:write`, held by a project admin).
#[derive(Clone, Debug)]
pub struct ProjectSecretKeyProvider {
    pub(crate) posthog: PostHogAccess,
    /// `None` only in a provider made [`for_plan`](Self::for_plan).
    admin_key: Option<Secret>,
    /// `None` only in a provider made [`for_plan`](Self::for_plan) without a project.
    pub(crate) project_id: Option<u64>,
    pub(crate) key_id: Option<String>,
}

impl ProjectSecretKeyProvider {
    /// Rotates a key of `project_id`, managing keys with `admin_key`. The key to rotate is the
    /// one whose mask matches the stored value, unless [`key_id`](Self::key_id) names it.
    pub fn new(posthog: PostHogAccess, admin_key: Secret, project_id: u64) -> Self {
        ProjectSecretKeyProvider {
            posthog,
            admin_key: Some(admin_key),
            project_id: Some(project_id),
            key_id: None,
        }
    }

    /// A provider without the admin key (and perhaps without the project), for a dry run
    /// that must plan before those are set: [`Rotator::plan`](crate::Rotator::plan) plans
    /// with it, and every other call stops with [`RotateError::NotConfigured`] before it
    /// changes anything. The caller says what is missing with
    /// [`Plan::add_missing`](crate::Plan::add_missing).
    pub fn for_plan(posthog: PostHogAccess, project_id: Option<u64>) -> Self {
        ProjectSecretKeyProvider {
            posthog,
            admin_key: None,
            project_id,
            key_id: None,
        }
    }

    /// A client that manages the project's keys with the admin key.
    pub(crate) fn writer(&self) -> Result<WriterClient, RotateError> {
        let admin_key = self.admin_key.as_ref().ok_or(RotateError::NotConfigured {
            missing: "the admin key (a personal API key with project:write)",
        })?;
        self.posthog.writer(admin_key)
    }

    /// The project whose keys are managed.
    pub(crate) fn project(&self) -> Result<u64, RotateError> {
        self.project_id.ok_or(RotateError::NotConfigured {
            missing: "the project's id",
        })
    }

    /// Names the PostHog id of the key to rotate (needed only when masks collide).
    pub fn key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }
}

/// Rotates a personal API key with a person's help: PostHog lets only its web app create and
/// delete personal API keys.
#[derive(Clone)]
pub struct PersonalKeyProvider {
    pub(crate) posthog: PostHogAccess,
    pub(crate) allowed_scopes: Option<Vec<String>>,
    pub(crate) project_id: Option<u64>,
    pub(crate) revoke_old: bool,
    pub(crate) probe_attempts: u32,
    pub(crate) probe_interval: Duration,
    pub(crate) sleeper: Arc<dyn Sleeper>,
}

impl fmt::Debug for PersonalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonalKeyProvider")
            .field("posthog", &self.posthog)
            .field("allowed_scopes", &self.allowed_scopes)
            .field("project_id", &self.project_id)
            .field("revoke_old", &self.revoke_old)
            .field("probe_attempts", &self.probe_attempts)
            .field("probe_interval", &self.probe_interval)
            .finish_non_exhaustive()
    }
}

impl PersonalKeyProvider {
    /// A provider checking keys at `posthog`. Without [`allowed_scopes`](Self::allowed_scopes)
    /// the new key may hold no scope the old key lacks.
    pub fn new(posthog: PostHogAccess) -> Self {
        PersonalKeyProvider {
            posthog,
            allowed_scopes: None,
            project_id: None,
            revoke_old: false,
            probe_attempts: DEFAULT_PROBE_ATTEMPTS,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            sleeper: Arc::new(ThreadSleeper),
        }
    }

    /// The scopes the environment allows (`object:action`, `*:read`, `*:write`, `*`): a new key
    /// holding any other scope is refused.
    pub fn allowed_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.allowed_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The project the environment uses (`[posthog] project_id`): when the old key reaches
    /// every project, the person is told to restrict the new key to this one.
    pub fn project_id(mut self, project_id: u64) -> Self {
        self.project_id = Some(project_id);
        self
    }

    /// Kill the old key through PostHog's `revoke_leaked_key` (which rolls it and emails its
    /// owner) instead of asking the person to delete it (`--revoke-old`).
    pub fn revoke_old(mut self, revoke: bool) -> Self {
        self.revoke_old = revoke;
        self
    }

    /// How the old key is probed until PostHog calls it invalid: at most `attempts` times,
    /// `interval` apart, waiting with `sleeper`.
    pub fn probe(mut self, attempts: u32, interval: Duration, sleeper: Arc<dyn Sleeper>) -> Self {
        self.probe_attempts = attempts.max(1);
        self.probe_interval = interval;
        self.sleeper = sleeper;
        self
    }
}

/// Rotates a Standard Webhooks signing secret (`whsec_`), keeping the old one accepted for a
/// grace period.
#[derive(Clone, Debug)]
pub struct WebhookSecretProvider {
    pub(crate) grace: Duration,
}

impl WebhookSecretProvider {
    /// A provider with the [`DEFAULT_GRACE`] of 24 hours.
    pub fn new() -> Self {
        WebhookSecretProvider {
            grace: DEFAULT_GRACE,
        }
    }

    /// How long the old secret stays accepted (`--grace 24h`); zero drops it at once.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

impl Default for WebhookSecretProvider {
    fn default() -> Self {
        WebhookSecretProvider::new()
    }
}

/// Guides the reset of a project API key (`phc_`) and updates the store with the token a
/// person copies from PostHog.
#[derive(Clone, Debug)]
pub struct ProjectApiKeyProvider {
    pub(crate) posthog: PostHogAccess,
    pub(crate) project_id: Option<u64>,
}

impl ProjectApiKeyProvider {
    /// A provider pointing people at `posthog`'s web app.
    pub fn new(posthog: PostHogAccess) -> Self {
        ProjectApiKeyProvider {
            posthog,
            project_id: None,
        }
    }

    /// The project whose token is reset, for a precise settings link.
    pub fn project_id(mut self, project_id: u64) -> Self {
        self.project_id = Some(project_id);
        self
    }
}
