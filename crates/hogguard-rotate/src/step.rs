//! The steps a rotation is made of, as journaled, audited and planned.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One step of a rotation. Each is journaled as an intent before it acts and as done after;
/// the journal and audit names are [`Step::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Create a project secret API key with the old key's scopes (`POST`).
    CreateKey,
    /// Check at PostHog that the new key works.
    CheckNewKey,
    /// Get the new key: generated (webhook secret) or given by a person (personal and project
    /// API keys).
    ObtainNewKey,
    /// Write the new key to `VAR`, keeping the old one in `VAR_PREVIOUS`.
    StoreNewKey,
    /// Run the user's verify command against the stored key.
    RunVerifyCommand,
    /// Start the webhook secret's grace period, in which both secrets verify.
    StartGracePeriod,
    /// Retire the old key: delete it (project secret key), have a person delete it or report it
    /// as leaked (personal key).
    RetireOldKey,
    /// Remove `VAR_PREVIOUS` from the store.
    DropPreviousKey,
    /// Delete a project secret API key this rotation made but never stored (its value is lost).
    DeleteUnstoredKey,
    /// Put the old key back in `VAR` (abort).
    RestoreOldKey,
}

impl Step {
    /// The step's stable name: `create_key`, `check_new_key`, ...
    pub fn name(self) -> &'static str {
        match self {
            Step::CreateKey => "create_key",
            Step::CheckNewKey => "check_new_key",
            Step::ObtainNewKey => "obtain_new_key",
            Step::StoreNewKey => "store_new_key",
            Step::RunVerifyCommand => "run_verify_command",
            Step::StartGracePeriod => "start_grace_period",
            Step::RetireOldKey => "retire_old_key",
            Step::DropPreviousKey => "drop_previous_key",
            Step::DeleteUnstoredKey => "delete_unstored_key",
            Step::RestoreOldKey => "restore_old_key",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
