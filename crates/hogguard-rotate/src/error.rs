//! What can stop a rotation. No message holds a secret: keys appear only as PostHog's mask
//! (`phs_...abcd`), and PostHog's own details are already scrubbed by `hogguard-posthog`.

use std::io;
use std::path::PathBuf;

use crate::audit::AuditSinkError;
#[cfg(feature = "fault-injection")]
use crate::fault::CrashPoint;
use crate::interaction::InteractionError;
use crate::store::StoreError;

/// Why a rotation, resume, abort or finish stopped. Unless the variant says otherwise, the
/// store still holds a working key and the journal says where the rotation stands, so
/// `--resume` continues it and `--abort` returns to the old key while that key is alive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// The provider was made [for a plan](crate::ProjectSecretKeyProvider::for_plan) and
    /// lacks what a rotation needs; nothing was changed.
    #[error("cannot rotate a project secret API key without {missing}")]
    NotConfigured {
        /// What is missing, for people.
        missing: &'static str,
    },
    /// Another process holds the credential's lock: it is rotating the same credential now.
    #[error(
        "another hogguard process is rotating {credential} right now (it holds {}); wait for it to end",
        lock.display()
    )]
    Busy {
        /// `environment/credential`.
        credential: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// A rotation of the credential was started earlier and is not closed.
    #[error(
        "a rotation of {credential} is already open ({rotation_id}: {status}); continue it with \
         --resume, or go back to the old key with --abort"
    )]
    RotationOpen {
        /// `environment/credential`.
        credential: String,
        /// The open rotation's id.
        rotation_id: String,
        /// Where it stands, for people.
        status: String,
    },
    /// `--resume`, `--abort` or `--finish` found nothing to act on.
    #[error("no rotation of {credential} is open")]
    NoOpenRotation {
        /// `environment/credential`.
        credential: String,
    },
    /// The open rotation was started with other settings than this request's.
    #[error(
        "the open rotation of {credential} was started with {what} `{journaled}`, not `{requested}`"
    )]
    RequestMismatch {
        /// `environment/credential`.
        credential: String,
        /// Which setting differs (`variable`, `provider`).
        what: &'static str,
        /// The journal's value.
        journaled: String,
        /// This request's value.
        requested: String,
    },
    /// The store holds no value for the credential, so there is nothing to rotate from.
    #[error("{variable} is not set in {store}: there is no current key to rotate")]
    NoCurrentKey {
        /// The variable.
        variable: String,
        /// The store, for people.
        store: String,
    },
    /// The store holds a value that is neither the rotation's old key nor one it made:
    /// someone else changed it, so nothing more is done until a person looks.
    #[error(
        "{variable} in {store} now holds {mask}, which this rotation neither started from nor \
         made; someone changed it, so the rotation stops here"
    )]
    StoreChanged {
        /// The variable.
        variable: String,
        /// The store, for people.
        store: String,
        /// The mask of what it holds.
        mask: String,
    },
    /// The previous-key slot is occupied outside any open rotation.
    #[error(
        "{variable} is already set in {store}: an earlier key is still kept there; remove it \
         (or finish what put it there) before rotating again"
    )]
    PreviousKeyPresent {
        /// The previous-key variable (`VAR_PREVIOUS`).
        variable: String,
        /// The store, for people.
        store: String,
    },
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A PostHog call failed (after the client's own retries).
    #[error("cannot {action}")]
    PostHog {
        /// What was being done.
        action: &'static str,
        /// The client's error.
        #[source]
        source: hogguard_posthog::Error,
    },
    /// PostHog gave no verdict on a key (it failed to answer, or the answer was unclear).
    #[error("PostHog could not say whether {mask} works: {reason}")]
    PostHogUndecided {
        /// The key's mask.
        mask: String,
        /// Why not.
        reason: String,
    },
    /// No project secret API key of the project matches the stored value.
    #[error(
        "no project secret API key of project {project_id} matches the stored value ({mask}{})",
        key_id.as_deref().map(|id| format!(", id {id}")).unwrap_or_default()
    )]
    OldKeyNotFound {
        /// The project.
        project_id: u64,
        /// The stored value's mask.
        mask: String,
        /// The key id the request named, if any.
        key_id: Option<String>,
    },
    /// Several project secret API keys share the stored value's mask.
    #[error(
        "{count} project secret API keys of project {project_id} have the mask {mask}; name the \
         key's id to rotate"
    )]
    OldKeyAmbiguous {
        /// The project.
        project_id: u64,
        /// The shared mask.
        mask: String,
        /// How many keys have it.
        count: usize,
    },
    /// The project has as many project secret API keys as PostHog allows.
    #[error(
        "project {project_id} already has {limit} project secret API keys, PostHog's limit; \
         delete one that is no longer used first"
    )]
    ProjectKeyLimit {
        /// The project.
        project_id: u64,
        /// PostHog's limit.
        limit: usize,
    },
    /// The key just made does not work at PostHog; it was not stored.
    #[error("the new key {mask} does not work at PostHog, so it was not stored")]
    NewKeyNotLive {
        /// The new key's mask.
        mask: String,
    },
    /// The key a person gave is not acceptable; nothing was stored.
    #[error("the new key was refused: {reason}; nothing was stored")]
    NewKeyRefused {
        /// Why, for people.
        reason: String,
    },
    /// A personal key rotation has no scope policy: the environment names no allowed scopes
    /// and the old key, which does not work, shows none.
    #[error(
        "cannot tell which scopes the new key may hold: the environment sets no allowed_scopes \
         and the old key {mask} does not work; set allowed_scopes for the environment"
    )]
    NoAllowedScopes {
        /// The old key's mask.
        mask: String,
    },
    /// The key a person gave can do more than the environment allows; nothing was stored.
    #[error(
        "the new key was refused: it is broader than the environment allows ({}); delete it in \
         PostHog and create one with only the allowed scopes",
        excess.join(", ")
    )]
    NewKeyTooBroad {
        /// The scopes or restrictions it holds beyond the allowed ones.
        excess: Vec<String>,
    },
    /// The stored new key is gone at PostHog, so the old key is kept alive.
    #[error(
        "the stored key {mask} no longer exists at PostHog, so the old key is kept; go back to it \
         with --abort"
    )]
    NewKeyMissing {
        /// The stored key's mask.
        mask: String,
    },
    /// The user's verify command failed: the new key is stored, the old key stays alive.
    #[error(
        "the verify command failed ({status}); the new key is in {variable} and the old key still \
         works and is kept as {previous_variable}. Fix the problem and continue with --resume, or \
         go back to the old key with --abort"
    )]
    VerifyCommandFailed {
        /// The exit status, for people.
        status: String,
        /// The credential's variable.
        variable: String,
        /// Where the old value is kept.
        previous_variable: String,
    },
    /// The verify command could not be started.
    #[error("cannot run the verify command")]
    VerifyCommandNotRun {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The person did not confirm that the old key was deleted.
    #[error(
        "the old key {mask} was not deleted yet; delete it in PostHog, then continue with --resume"
    )]
    OldKeyNotDeleted {
        /// The old key's mask.
        mask: String,
    },
    /// The old key still works after every probe.
    #[error(
        "the old key {mask} still works after {attempts} checks; make sure it is deleted, then \
         continue with --resume"
    )]
    OldKeyStillLive {
        /// The old key's mask.
        mask: String,
        /// How many times PostHog was asked.
        attempts: u32,
    },
    /// The rotation cannot go back to the old key any more.
    #[error("cannot abort: {reason}")]
    CannotAbort {
        /// Why, and what to do instead.
        reason: String,
    },
    /// `--finish` applies only to a webhook secret in its grace period.
    #[error("nothing to finish: {reason}")]
    CannotFinish {
        /// Why.
        reason: String,
    },
    /// Reading, creating, locking or appending to a journal or lock file failed; the file
    /// operation (with its path) is the source.
    #[error("the rotation journal cannot be kept")]
    Journal(#[source] hogguard_fs::Error),
    /// A journal line (not a torn last line) does not parse: the file was edited or damaged.
    #[error(
        "rotation journal {} is damaged at line {line}; a person must look at it before this \
         credential can be rotated again",
        path.display()
    )]
    JournalCorrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
    /// The audit sink refused a record; the step it was about was not taken.
    #[error("the audit log refused a record, so the rotation stopped")]
    Audit(#[source] AuditSinkError),
    /// Talking to the person failed or they gave up.
    #[error(
        "no answer at the prompt; the rotation stays open: continue it with --resume, or drop it \
         with --abort"
    )]
    Interaction(#[from] InteractionError),
    /// The operating system could not provide random bytes.
    #[error("cannot make random bytes")]
    Random {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The rotation's interrupt hook stopped it here, as a crash would (tests).
    #[cfg(feature = "fault-injection")]
    #[error("interrupted by the test hook at {at}")]
    Interrupted {
        /// Where.
        at: CrashPoint,
    },
}

impl RotateError {
    /// Whether the rotation stopped because a check failed (the verify command, a new key
    /// refused or not working, an old key still alive), as opposed to being unable to act
    /// (a busy credential, an open rotation, an unreadable store, PostHog unreachable). The
    /// store holds a working key either way; the CLI reports a failed check as a finding.
    pub fn is_failed_check(&self) -> bool {
        matches!(
            self,
            RotateError::VerifyCommandFailed { .. }
                | RotateError::NewKeyNotLive { .. }
                | RotateError::NewKeyRefused { .. }
                | RotateError::NewKeyTooBroad { .. }
                | RotateError::OldKeyStillLive { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_checks_are_failed_checks() {
        let failed_check = RotateError::VerifyCommandFailed {
            status: "exit status: 3".to_owned(),
            variable: "KEY".to_owned(),
            previous_variable: "KEY_PREVIOUS".to_owned(),
        };
        assert!(failed_check.is_failed_check());
        let busy = RotateError::Busy {
            credential: "prod/key".to_owned(),
            lock: PathBuf::from("prod.key.lock"),
        };
        assert!(!busy.is_failed_check());
        let open = RotateError::RotationOpen {
            credential: "prod/key".to_owned(),
            rotation_id: "r".to_owned(),
            status: "stopped after store_new_key".to_owned(),
        };
        assert!(!open.is_failed_check());
        assert!(open.to_string().contains("--resume"));
    }
}
