//! The entry points: plan, run, resume, abort, finish and key age.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hogguard_posthog::{Evidence, KeyStatus};

use crate::audit::{AuditRecord, AuditResult, AuditSink};
use crate::error::RotateError;
use crate::fault::CrashPoint;
#[cfg(feature = "fault-injection")]
use crate::fault::InterruptHook;
use crate::interaction::Interaction;
use crate::journal::{CredentialLock, Journal, Journals, Started};
use crate::outcome::{AgeSource, KeyAge, OpenRotation, Outcome};
use crate::plan::Plan;
use crate::providers::{personal, project_api_key, project_secret_key, webhook};
use crate::request::{Provider, RotationRequest};
use crate::session::{Session, chain_text};
use crate::time::{self, Clock, SystemClock};

/// Where rotation journals and locks live, relative to the project root.
pub const ROTATIONS_DIR: &str = ".hogguard/rotations";

/// Runs rotations whose journals and locks live in one directory (usually
/// [`ROTATIONS_DIR`] under the project root).
#[derive(Clone)]
pub struct Rotator {
    journals: Journals,
    clock: Arc<dyn Clock>,
    #[cfg(feature = "fault-injection")]
    interrupt: Option<Arc<InterruptHook>>,
}

impl fmt::Debug for Rotator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotator")
            .field("journals", &self.journals)
            .finish_non_exhaustive()
    }
}

impl Rotator {
    /// A rotator keeping journals and locks in `rotations_dir` (created with mode 0700 when
    /// first needed).
    pub fn new(rotations_dir: impl Into<PathBuf>) -> Rotator {
        Rotator {
            journals: Journals::new(rotations_dir.into()),
            clock: Arc::new(SystemClock),
            #[cfg(feature = "fault-injection")]
            interrupt: None,
        }
    }

    /// Uses `clock` instead of the system clock (key ages, grace periods, journal times).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Rotator {
        self.clock = clock;
        self
    }

    /// Test hook (feature `fault-injection`): at each [`CrashPoint`], `hook` decides whether
    /// the rotation stops there with [`RotateError::Interrupted`], leaving the journal, the
    /// store and PostHog as a crash at that point would. One difference: stopped at
    /// [`CrashPoint::EnvFileWritten`], the env file's temporary file is removed on the way
    /// out, where a crash leaves it for the next resume to remove (the tests that kill a child
    /// process there check that). It may also block, to hold a rotation in place while a test
    /// acts.
    #[cfg(feature = "fault-injection")]
    pub fn interrupt_when(
        mut self,
        hook: impl Fn(CrashPoint) -> bool + Send + Sync + 'static,
    ) -> Rotator {
        self.interrupt = Some(Arc::new(hook));
        self
    }

    /// The steps [`run`](Self::run) would take, for `--dry-run`, and what would stop it
    /// ([`Plan::missing`]): a rotation of the credential that is already open (unless it is
    /// a webhook secret's whose grace period is over: the plan is then to finish it), and for
    /// an env-file store a current key that is not set or a `VAR_PREVIOUS` that is. Reads the
    /// journal and the env file; changes nothing, takes no lock and runs no store command.
    pub fn plan(&self, request: &RotationRequest) -> Plan {
        let journal = match self.open_journal(request) {
            Ok(journal) => journal,
            Err(error) => {
                let mut plan = Plan::of(request);
                plan.add_missing(chain_text(&error));
                return plan;
            }
        };
        let Some(journal) = journal else {
            let mut plan = Plan::of(request);
            for problem in store_problems(request) {
                plan.add_missing(problem);
            }
            return plan;
        };
        if let Err(mismatch) = check_matches(request, journal.started()) {
            let mut plan = Plan::of(request);
            plan.add_missing(mismatch.to_string());
            return plan;
        }
        let rotation_id = &journal.started().rotation_id;
        if ends_grace_period(request, &journal, time::unix_seconds(self.clock.now())) {
            return Plan::finish_grace_period(request, rotation_id);
        }
        let mut plan = Plan::of(request);
        plan.add_missing(
            RotateError::RotationOpen {
                credential: request.credential_name(),
                rotation_id: rotation_id.clone(),
                status: journal.status(),
            }
            .to_string(),
        );
        plan
    }

    /// Takes the credential's lock for one [`run`](LockedRotation::run),
    /// [`resume`](LockedRotation::resume), [`abort`](LockedRotation::abort) or
    /// [`finish`](LockedRotation::finish), failing with [`RotateError::Busy`] while another
    /// process (or thread) works on the credential. `Rotator::run` and the others take it
    /// themselves; a caller takes it first when it must know before anything else that the
    /// credential is free: the CLI takes it before it opens the audit log, whose own lock
    /// would otherwise make a second rotation wait for the first and then rotate again.
    pub fn lock<'r>(
        &'r self,
        request: &'r RotationRequest,
    ) -> Result<LockedRotation<'r>, RotateError> {
        Ok(LockedRotation {
            rotator: self,
            request,
            _lock: self
                .journals
                .lock(&request.environment, &request.credential)?,
        })
    }

    /// Rotates the credential: [`lock`](Self::lock), then [`LockedRotation::run`].
    pub fn run(
        &self,
        request: &RotationRequest,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        self.lock(request)?.run(interaction, audit)
    }

    /// Continues the open rotation: [`lock`](Self::lock), then [`LockedRotation::resume`].
    pub fn resume(
        &self,
        request: &RotationRequest,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        self.lock(request)?.resume(interaction, audit)
    }

    /// Abandons the open rotation: [`lock`](Self::lock), then [`LockedRotation::abort`].
    pub fn abort(
        &self,
        request: &RotationRequest,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        self.lock(request)?.abort(interaction, audit)
    }

    /// Ends a webhook secret's grace period now: [`lock`](Self::lock), then
    /// [`LockedRotation::finish`].
    pub fn finish(
        &self,
        request: &RotationRequest,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        self.lock(request)?.finish(interaction, audit)
    }

    /// How old the key in the store is: from PostHog's metadata for project secret and
    /// personal API keys (`last_rolled_at`, else `created_at`), else from the journal of the
    /// hogguard rotation that stored the current value, else unknown.
    pub fn key_age(&self, request: &RotationRequest) -> Result<KeyAge, RotateError> {
        self.age_of(request)
    }

    /// The open rotation of the credential, if any (read without taking the lock).
    pub fn open_rotation(
        &self,
        request: &RotationRequest,
    ) -> Result<Option<OpenRotation>, RotateError> {
        Ok(self.open_journal(request)?.map(|journal| OpenRotation {
            rotation_id: journal.started().rotation_id.clone(),
            status: journal.status(),
            journal: journal.path().to_owned(),
        }))
    }

    fn open_journal(&self, request: &RotationRequest) -> Result<Option<Journal>, RotateError> {
        self.journals
            .open_rotation(&request.environment, &request.credential)
    }

    fn require_open_journal(&self, request: &RotationRequest) -> Result<Journal, RotateError> {
        self.open_journal(request)?
            .ok_or_else(|| RotateError::NoOpenRotation {
                credential: request.credential_name(),
            })
    }

    /// A session on `journal`, after checking the request still describes its rotation.
    fn session<'a>(
        &'a self,
        request: &'a RotationRequest,
        journal: Journal,
        interaction: &'a mut dyn Interaction,
        audit: &'a dyn AuditSink,
    ) -> Result<Session<'a>, RotateError> {
        check_matches(request, journal.started())?;
        let session = Session::new(request, journal, interaction, audit, self.clock.as_ref());
        #[cfg(feature = "fault-injection")]
        let session = session.interrupt_when(self.interrupt.as_deref());
        Ok(session)
    }

    fn age_of(&self, request: &RotationRequest) -> Result<KeyAge, RotateError> {
        let current =
            request
                .store
                .read(&request.variable)?
                .ok_or_else(|| RotateError::NoCurrentKey {
                    variable: request.variable.clone(),
                    store: request.store.describe(),
                })?;
        let dated = match &request.provider {
            Provider::ProjectSecretKey(provider) => {
                let key = project_secret_key::find_current_key(provider, &current)?;
                key.last_rolled_at
                    .as_deref()
                    .map(|at| (at.to_owned(), "last_rolled_at"))
                    .or(Some((key.created_at, "created_at")))
            }
            Provider::PersonalKey(provider) => match provider.posthog.verifier().verify(&current) {
                KeyStatus::Live(live) => match live.evidence {
                    Evidence::PersonalKey(info) => info
                        .last_rolled_at
                        .map(|at| (at, "last_rolled_at"))
                        .or(Some((info.created_at, "created_at"))),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let now = self.clock.now();
        if let Some((at, field)) = dated
            && let Some(at) = time::parse_rfc3339(&at)
        {
            return Ok(KeyAge {
                age: Some(now.duration_since(at).unwrap_or_default()),
                source: AgeSource::PostHog { field },
            });
        }
        let last = self
            .journals
            .last_completed(&request.environment, &request.credential)?;
        Ok(
            match last.filter(|last| last.stored.as_deref() == Some(&current.fingerprint())) {
                Some(last) => KeyAge {
                    age: Some(
                        now.duration_since(time::from_unix_seconds(last.closed_at))
                            .unwrap_or(Duration::ZERO),
                    ),
                    source: AgeSource::LastRotation {
                        rotation_id: last.rotation_id,
                    },
                },
                None => KeyAge {
                    age: None,
                    source: AgeSource::Unknown,
                },
            },
        )
    }
}

/// A credential's rotation lock, held: one rotation, resume, abort or finish of the credential
/// may run through it (see [`Rotator::lock`]). Dropping it, or the process ending, lets the
/// next one in.
#[derive(Debug)]
pub struct LockedRotation<'r> {
    rotator: &'r Rotator,
    request: &'r RotationRequest,
    _lock: CredentialLock,
}

impl LockedRotation<'_> {
    /// Rotates the credential.
    ///
    /// Refuses with [`RotateError::RotationOpen`] while an earlier rotation of it is open,
    /// except a webhook secret whose grace period is over: that rotation is finished (the old
    /// secret dropped) and its outcome returned. With
    /// [`if_older_than`](RotationRequest::if_older_than) a younger key is left alone
    /// ([`Outcome::NotDue`]).
    pub fn run(
        self,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        let (rotator, request) = (self.rotator, self.request);
        if let Some(journal) = rotator.open_journal(request)? {
            let mut session = rotator.session(request, journal, interaction, audit)?;
            return refuse_or_end_grace_period(&mut session);
        }
        if let Some(threshold) = request.if_older_than {
            let age = rotator.age_of(request)?;
            if !age.is_older_than(threshold) {
                let age = age.age.unwrap_or_default();
                audit
                    .record(&AuditRecord {
                        action: "key.rotate.not_due",
                        resource: &request.credential_name(),
                        result: AuditResult::Success,
                        metadata: &[
                            ("age_seconds", age.as_secs().to_string()),
                            ("threshold_seconds", threshold.as_secs().to_string()),
                        ],
                    })
                    .map_err(RotateError::Audit)?;
                return Ok(Outcome::NotDue { age, threshold });
            }
        }
        let started = prepare(request)?;
        let journal = rotator
            .journals
            .create(started, time::unix_seconds(rotator.clock.now()))?;
        let mut session = rotator.session(request, journal, interaction, audit)?;
        let mut metadata = Session::key_metadata(Some(&session.started().old));
        metadata.extend(
            session
                .started()
                .new_label
                .clone()
                .map(|label| ("new_label", label)),
        );
        session.record("key.rotate.start", AuditResult::Success, &metadata)?;
        session.checkpoint(CrashPoint::Started)?;
        drive(&mut session)
    }

    /// Continues the open rotation of the credential from where the journal and the real
    /// state (the store, PostHog) say it stands.
    pub fn resume(
        self,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        let (rotator, request) = (self.rotator, self.request);
        let journal = rotator.require_open_journal(request)?;
        let mut session = rotator.session(request, journal, interaction, audit)?;
        request.store.discard_leftovers()?;
        let interrupted = session
            .journal
            .interrupted_step()
            .map_or_else(|| "none".to_owned(), |step| step.name().to_owned());
        session.record(
            "key.rotate.resume",
            AuditResult::Success,
            &[("interrupted_step", interrupted)],
        )?;
        drive(&mut session)
    }

    /// Abandons the open rotation and returns the store to the old key, as long as that key
    /// is still alive; undoes what PostHog holds for the rotation where hogguard can (the new
    /// project secret API key is deleted; a new personal API key must be deleted by a person,
    /// who is told so). Fails with [`RotateError::CannotAbort`] once the old key is retired.
    pub fn abort(
        self,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        let (rotator, request) = (self.rotator, self.request);
        let journal = rotator.require_open_journal(request)?;
        let mut session = rotator.session(request, journal, interaction, audit)?;
        request.store.discard_leftovers()?;
        abort(&mut session)
    }

    /// Ends a webhook secret's grace period now: completes the open rotation and drops the
    /// old secret. Other providers have no grace period
    /// ([`RotateError::CannotFinish`]; `resume` continues them).
    pub fn finish(
        self,
        interaction: &mut dyn Interaction,
        audit: &dyn AuditSink,
    ) -> Result<Outcome, RotateError> {
        let (rotator, request) = (self.rotator, self.request);
        let journal = rotator.require_open_journal(request)?;
        let Provider::WebhookSecret(provider) = &request.provider else {
            return Err(RotateError::CannotFinish {
                reason: format!(
                    "only webhook secrets have a grace period; continue this rotation with --resume ({})",
                    journal.status()
                ),
            });
        };
        let mut session = rotator.session(request, journal, interaction, audit)?;
        request.store.discard_leftovers()?;
        if session.journal.abort_started() {
            return abort(&mut session);
        }
        webhook::drive(&mut session, provider, true)
    }
}

/// What a run finds when a rotation is already open: a webhook secret whose grace period is
/// over is finished; anything else is refused.
fn refuse_or_end_grace_period(session: &mut Session<'_>) -> Result<Outcome, RotateError> {
    let request = session.request;
    if let Provider::WebhookSecret(provider) = &request.provider
        && ends_grace_period(request, &session.journal, session.now())
    {
        return webhook::drive(session, provider, true);
    }
    Err(RotateError::RotationOpen {
        credential: request.credential_name(),
        rotation_id: session.started().rotation_id.clone(),
        status: session.journal.status(),
    })
}

/// Whether a run of `request` at `now` finishes the open rotation in `journal` rather than
/// refuse: a webhook secret whose grace period is over (and no abort began).
fn ends_grace_period(request: &RotationRequest, journal: &Journal, now: u64) -> bool {
    matches!(request.provider, Provider::WebhookSecret(_))
        && !journal.abort_started()
        && journal.grace_until().is_some_and(|until| until <= now)
}

/// What in an env-file store would stop a new rotation (see [`prepare`]), each said as the
/// error it would stop with. A command store is not asked: a dry run runs no command.
fn store_problems(request: &RotationRequest) -> Vec<String> {
    if request.store.env_file_path().is_none() {
        return Vec::new();
    }
    let unset = |variable: &str| -> Result<bool, RotateError> {
        Ok(request.store.read(variable)?.is_none())
    };
    let problem = match (
        unset(&request.variable),
        unset(&request.previous_variable()),
    ) {
        (Err(error), _) | (_, Err(error)) => chain_text(&error),
        (Ok(true), _) => RotateError::NoCurrentKey {
            variable: request.variable.clone(),
            store: request.store.describe(),
        }
        .to_string(),
        (Ok(false), Ok(false)) => RotateError::PreviousKeyPresent {
            variable: request.previous_variable(),
            store: request.store.describe(),
        }
        .to_string(),
        (Ok(false), Ok(true)) => return Vec::new(),
    };
    vec![problem]
}

/// Checks the store's slots and has the provider describe the new rotation's start.
fn prepare(request: &RotationRequest) -> Result<Started, RotateError> {
    request.store.discard_leftovers()?;
    let current =
        request
            .store
            .read(&request.variable)?
            .ok_or_else(|| RotateError::NoCurrentKey {
                variable: request.variable.clone(),
                store: request.store.describe(),
            })?;
    if request.store.read(&request.previous_variable())?.is_some() {
        return Err(RotateError::PreviousKeyPresent {
            variable: request.previous_variable(),
            store: request.store.describe(),
        });
    }
    let rotation_id = new_rotation_id()?;
    Ok(match &request.provider {
        Provider::ProjectSecretKey(provider) => {
            project_secret_key::prepare(provider, request, &current, rotation_id)?
        }
        Provider::PersonalKey(provider) => {
            personal::prepare(provider, request, &current, rotation_id)?
        }
        Provider::WebhookSecret(provider) => {
            webhook::prepare(provider, request, &current, rotation_id)
        }
        Provider::ProjectApiKey(provider) => {
            project_api_key::prepare(provider, request, &current, rotation_id)
        }
    })
}

/// Continues an open rotation with its provider; an abort that began is completed instead.
fn drive(session: &mut Session<'_>) -> Result<Outcome, RotateError> {
    if session.journal.abort_started() {
        return abort(session);
    }
    let request = session.request;
    match &request.provider {
        Provider::ProjectSecretKey(provider) => project_secret_key::drive(session, provider),
        Provider::PersonalKey(provider) => personal::drive(session, provider),
        Provider::WebhookSecret(provider) => webhook::drive(session, provider, false),
        Provider::ProjectApiKey(provider) => project_api_key::drive(session, provider),
    }
}

/// Returns to the old key with the rotation's provider.
fn abort(session: &mut Session<'_>) -> Result<Outcome, RotateError> {
    let request = session.request;
    match &request.provider {
        Provider::ProjectSecretKey(provider) => project_secret_key::abort(session, provider),
        Provider::PersonalKey(provider) => personal::abort(session, provider),
        Provider::WebhookSecret(_) => webhook::abort(session),
        Provider::ProjectApiKey(_) => project_api_key::abort(session),
    }
}

/// Refuses to continue a rotation with a request that describes another one.
fn check_matches(request: &RotationRequest, started: &Started) -> Result<(), RotateError> {
    let mismatch = |what, journaled: String, requested: String| {
        Err(RotateError::RequestMismatch {
            credential: request.credential_name(),
            what,
            journaled,
            requested,
        })
    };
    if started.variable != request.variable {
        return mismatch(
            "variable",
            started.variable.clone(),
            request.variable.clone(),
        );
    }
    if started.provider != request.provider.kind() {
        return mismatch(
            "provider",
            started.provider.to_string(),
            request.provider.kind().to_string(),
        );
    }
    if started.store != request.store.describe() {
        return mismatch("store", started.store.clone(), request.store.describe());
    }
    if let Provider::ProjectSecretKey(provider) = &request.provider
        && started.project_id != provider.project_id
    {
        let id = |id: Option<u64>| id.map(|id| id.to_string()).unwrap_or_default();
        return mismatch("project", id(started.project_id), id(provider.project_id));
    }
    Ok(())
}

/// 48 random bits in hex: unique enough per credential, short enough for a PostHog label.
fn new_rotation_id() -> Result<String, RotateError> {
    let mut bytes = [0_u8; 6];
    getrandom::fill(&mut bytes).map_err(|error| RotateError::Random {
        source: error.into(),
    })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::WebhookSecretProvider;
    use crate::store::Store;

    #[test]
    fn rotation_ids_are_short_and_distinct() {
        let (a, b) = (new_rotation_id().unwrap(), new_rotation_id().unwrap());
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_request_must_describe_the_open_rotation() {
        let request = RotationRequest::new(
            "prod",
            "hook",
            "HOOK",
            Provider::WebhookSecret(WebhookSecretProvider::new()),
            Store::env_file(".env"),
        );
        let started = webhook::prepare(
            &WebhookSecretProvider::new(),
            &request,
            &hogguard_secret::Secret::new("whsec_x"),
            "r".to_owned(),
        );
        assert!(check_matches(&request, &started).is_ok());
        let renamed = RotationRequest {
            variable: "OTHER".to_owned(),
            ..request.clone()
        };
        let error = check_matches(&renamed, &started).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the open rotation of prod/hook was started with variable `HOOK`, not `OTHER`"
        );
    }
}
