//! One process's work on an open rotation: journal, audit, store and verify command, with the
//! order that makes crashes safe (journal the intent, audit it, act, journal the result).

use std::io;
use std::process::{Command, Stdio};

use hogguard_secret::Secret;

use crate::audit::{AuditRecord, AuditResult, AuditSink};
use crate::error::RotateError;
use crate::fault::CrashPoint;
#[cfg(feature = "fault-injection")]
use crate::fault::InterruptHook;
use crate::interaction::Interaction;
use crate::journal::{Closure, Event, Journal, KeyRef, Started};
use crate::outcome::Outcome;
use crate::request::RotationRequest;
use crate::step::Step;
use crate::store::Change;
use crate::time::{self, Clock};

/// What the store holds now: the credential's variable and the previous-key slot.
pub(crate) struct StoreView {
    pub(crate) current: Option<Secret>,
    pub(crate) previous: Option<Secret>,
}

/// Which key the store's variable holds, judged by fingerprint.
pub(crate) enum Holding {
    /// The key the rotation started from.
    Old(Secret),
    /// A key this rotation stored.
    New(KeyRef),
}

pub(crate) struct Session<'a> {
    pub(crate) request: &'a RotationRequest,
    pub(crate) journal: Journal,
    pub(crate) interaction: &'a mut dyn Interaction,
    audit: &'a dyn AuditSink,
    clock: &'a dyn Clock,
    #[cfg(feature = "fault-injection")]
    interrupt: Option<&'a InterruptHook>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        request: &'a RotationRequest,
        journal: Journal,
        interaction: &'a mut dyn Interaction,
        audit: &'a dyn AuditSink,
        clock: &'a dyn Clock,
    ) -> Session<'a> {
        Session {
            request,
            journal,
            interaction,
            audit,
            clock,
            #[cfg(feature = "fault-injection")]
            interrupt: None,
        }
    }

    /// Stops at each [`CrashPoint`] where `interrupt` says so.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn interrupt_when(mut self, interrupt: Option<&'a InterruptHook>) -> Session<'a> {
        self.interrupt = interrupt;
        self
    }

    pub(crate) fn started(&self) -> &Started {
        self.journal.started()
    }

    /// Now, in Unix seconds.
    pub(crate) fn now(&self) -> u64 {
        time::unix_seconds(self.clock.now())
    }

    /// Stops here, as a crash would, when the interrupt hook asks to (tests); without the
    /// `fault-injection` feature, goes on.
    pub(crate) fn checkpoint(&self, at: CrashPoint) -> Result<(), RotateError> {
        #[cfg(feature = "fault-injection")]
        if let Some(interrupt) = self.interrupt
            && interrupt(at)
        {
            return Err(RotateError::Interrupted { at });
        }
        #[cfg(not(feature = "fault-injection"))]
        let _ = at;
        Ok(())
    }

    /// Records an audit event with the rotation's identity and `extra` metadata.
    pub(crate) fn record(
        &self,
        action: &str,
        result: AuditResult,
        extra: &[(&str, String)],
    ) -> Result<(), RotateError> {
        let started = self.started();
        let mut metadata = vec![
            ("rotation_id", started.rotation_id.clone()),
            ("provider", started.provider.as_str().to_owned()),
            ("variable", started.variable.clone()),
            ("store", started.store.clone()),
        ];
        metadata.extend(extra.iter().map(|(name, value)| (*name, value.clone())));
        self.audit
            .record(&AuditRecord {
                action,
                resource: &self.request.credential_name(),
                result,
                metadata: &metadata,
            })
            .map_err(RotateError::Audit)
    }

    pub(crate) fn key_metadata(key: Option<&KeyRef>) -> Vec<(&'static str, String)> {
        let Some(key) = key else {
            return Vec::new();
        };
        let mut metadata = vec![("key_mask", key.mask.clone())];
        if let Some(fingerprint) = &key.fingerprint {
            metadata.push(("key_fingerprint", fingerprint.clone()));
        }
        if let Some(id) = &key.id {
            metadata.push(("key_id", id.clone()));
        }
        metadata
    }

    /// Journals and audits the intent to take `step`; the action comes after.
    pub(crate) fn begin(&mut self, step: Step, key: Option<&KeyRef>) -> Result<(), RotateError> {
        let now = self.now();
        self.journal.append(
            now,
            Event::Intent {
                step,
                key: key.cloned(),
            },
        )?;
        self.record(
            &format!("key.rotate.{step}.intent"),
            AuditResult::Success,
            &Self::key_metadata(key),
        )?;
        self.checkpoint(CrashPoint::BeforeAction(step))
    }

    /// Journals and audits that `step` happened.
    pub(crate) fn done(
        &mut self,
        step: Step,
        key: Option<&KeyRef>,
        until: Option<u64>,
    ) -> Result<(), RotateError> {
        self.checkpoint(CrashPoint::AfterAction(step))?;
        let now = self.now();
        self.journal.append(
            now,
            Event::Done {
                step,
                key: key.cloned(),
                until,
            },
        )?;
        self.record(
            &format!("key.rotate.{step}"),
            AuditResult::Success,
            &Self::key_metadata(key),
        )?;
        self.checkpoint(CrashPoint::AfterRecord(step))
    }

    /// Audits that `step` failed and hands the error back. A failing audit sink cannot make
    /// this worse: the step's own error is the one to report.
    pub(crate) fn failed(&self, step: Step, error: RotateError) -> RotateError {
        #[cfg(feature = "fault-injection")]
        if matches!(error, RotateError::Interrupted { .. }) {
            return error;
        }
        if !matches!(error, RotateError::Audit(_)) {
            let _ = self.record(
                &format!("key.rotate.{step}"),
                AuditResult::Failure,
                &[("error", chain_text(&error))],
            );
        }
        error
    }

    /// Reads the credential's variable and the previous-key slot. The slot holds nothing or
    /// the old key; anything else means someone else wrote there (or a command store that
    /// does not keep variables apart), and removing it later could take the key in use with it.
    pub(crate) fn store_view(&self) -> Result<StoreView, RotateError> {
        let previous_variable = self.request.previous_variable();
        let previous = self.request.store.read(&previous_variable)?;
        if let Some(previous) = &previous
            && Some(previous.fingerprint()) != self.started().old.fingerprint
        {
            return Err(RotateError::StoreChanged {
                variable: previous_variable,
                store: self.request.store.describe(),
                mask: previous.mask(),
            });
        }
        Ok(StoreView {
            current: self.request.store.read(&self.request.variable)?,
            previous,
        })
    }

    /// Which key `current` is: the old one, one this rotation stored, or (an error) nothing
    /// or something else.
    pub(crate) fn classify(&self, current: Option<Secret>) -> Result<Holding, RotateError> {
        let Some(current) = current else {
            return Err(RotateError::NoCurrentKey {
                variable: self.request.variable.clone(),
                store: self.request.store.describe(),
            });
        };
        let fingerprint = current.fingerprint();
        if self.started().old.fingerprint.as_deref() == Some(fingerprint.as_str()) {
            return Ok(Holding::Old(current));
        }
        // Only values whose store intent was journaled can be in the store: the intent is
        // durable before the write starts.
        match self
            .journal
            .intent_keys(Step::StoreNewKey)
            .find(|key| key.fingerprint.as_deref() == Some(fingerprint.as_str()))
        {
            Some(key) => Ok(Holding::New(key.clone())),
            None => Err(RotateError::StoreChanged {
                variable: self.request.variable.clone(),
                store: self.request.store.describe(),
                mask: current.mask(),
            }),
        }
    }

    /// Applies `changes` to the store as `step`.
    fn write_store(
        &mut self,
        step: Step,
        key: Option<&KeyRef>,
        changes: &[Change<'_>],
    ) -> Result<(), RotateError> {
        self.begin(step, key)?;
        let written = self
            .request
            .store
            .apply(changes, || self.checkpoint(CrashPoint::EnvFileWritten));
        written.map_err(|error| self.failed(step, error))?;
        self.done(step, key, None)
    }

    /// Stores `value` in the variable, keeping `previous` (the old key) beside it.
    pub(crate) fn store_new_key(
        &mut self,
        key: &KeyRef,
        value: &Secret,
        previous: Option<&Secret>,
    ) -> Result<(), RotateError> {
        let request = self.request;
        let previous_variable = request.previous_variable();
        let mut changes = Vec::new();
        if let Some(previous) = previous {
            changes.push(Change::Set(&previous_variable, previous));
        }
        changes.push(Change::Set(&request.variable, value));
        self.write_store(Step::StoreNewKey, Some(key), &changes)
    }

    /// Puts the old key back in the variable and empties the previous-key slot.
    pub(crate) fn restore_old_key(&mut self, old: &Secret) -> Result<(), RotateError> {
        let request = self.request;
        let previous_variable = request.previous_variable();
        let key = self.started().old.clone();
        self.write_store(
            Step::RestoreOldKey,
            Some(&key),
            &[
                Change::Set(&request.variable, old),
                Change::Remove(&previous_variable),
            ],
        )
    }

    /// Empties the previous-key slot when it holds anything.
    pub(crate) fn drop_previous_key(&mut self, present: bool) -> Result<(), RotateError> {
        if !present {
            return Ok(());
        }
        let previous_variable = self.request.previous_variable();
        self.write_store(
            Step::DropPreviousKey,
            None,
            &[Change::Remove(&previous_variable)],
        )
    }

    /// Runs the verify command for the stored key `new`, unless it already passed for it.
    pub(crate) fn run_verify_command(&mut self, new: &KeyRef) -> Result<(), RotateError> {
        let Some(command) = &self.request.verify_command else {
            return Ok(());
        };
        if self
            .journal
            .is_done(Step::RunVerifyCommand, new.fingerprint.as_deref())
        {
            return Ok(());
        }
        self.begin(Step::RunVerifyCommand, Some(new))?;
        let started = self.started();
        let mut hook = Command::new("sh");
        hook.arg("-c")
            .arg(command)
            .env("HOGGUARD_ENVIRONMENT", &started.environment)
            .env("HOGGUARD_CREDENTIAL", &started.credential)
            .env("HOGGUARD_VARIABLE", &started.variable)
            .env("HOGGUARD_ROTATION_ID", &started.rotation_id)
            .stdin(Stdio::null())
            // hogguard's standard output is for its own report.
            .stdout(Stdio::from(io::stderr()))
            .stderr(Stdio::from(io::stderr()));
        if let Some(path) = self.request.store.env_file_path() {
            hook.env("HOGGUARD_ENV_FILE", path);
        }
        let status = match hook.status() {
            Ok(status) => status,
            Err(source) => {
                return Err(self.failed(
                    Step::RunVerifyCommand,
                    RotateError::VerifyCommandNotRun { source },
                ));
            }
        };
        if !status.success() {
            return Err(self.failed(
                Step::RunVerifyCommand,
                RotateError::VerifyCommandFailed {
                    status: status.to_string(),
                    variable: self.request.variable.clone(),
                    previous_variable: self.request.previous_variable(),
                },
            ));
        }
        self.done(Step::RunVerifyCommand, Some(new), None)
    }

    /// Journals that the abort begins, once; from here on `resume` completes the abort
    /// instead of the rotation.
    pub(crate) fn start_abort(&mut self) -> Result<(), RotateError> {
        if self.journal.abort_started() {
            return Ok(());
        }
        let now = self.now();
        self.journal.append(now, Event::AbortStarted)?;
        self.record("key.rotate.abort.intent", AuditResult::Success, &[])
    }

    /// Closes the rotation and returns how it ended (for the caller to say: it is not shown).
    pub(crate) fn close(
        &mut self,
        closure: Closure,
        new: Option<KeyRef>,
    ) -> Result<Outcome, RotateError> {
        let now = self.now();
        self.journal
            .append(now, Event::Closed { outcome: closure })?;
        let rotation_id = self.started().rotation_id.clone();
        let old = self.started().old.clone();
        let (action, outcome) = match (closure, new) {
            (Closure::Completed, Some(new)) => (
                "key.rotate.complete",
                Outcome::Completed {
                    rotation_id,
                    old,
                    new,
                },
            ),
            _ => ("key.rotate.abort", Outcome::Aborted { rotation_id }),
        };
        self.record(action, AuditResult::Success, &[])?;
        Ok(outcome)
    }
}

/// An error and its causes in one line, `what failed: why: why`, for an audit record or a
/// plan's list of what is missing (neither holds a secret: the audit log and the CLI redact
/// it anyway).
pub(crate) fn chain_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
