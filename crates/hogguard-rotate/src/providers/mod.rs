//! One module per kind of credential: how its rotation starts (`prepare`), runs to the end from
//! wherever it stands (`drive`) and goes back (`abort`).

pub(crate) mod personal;
pub(crate) mod project_api_key;
pub(crate) mod project_secret_key;
pub(crate) mod webhook;

use hogguard_posthog::KeyStatus;

use crate::error::RotateError;

/// The error for PostHog's verdict on a key that is neither live nor invalid.
pub(crate) fn undecided(status: KeyStatus, mask: String) -> RotateError {
    let reason = match status {
        KeyStatus::Unknown { reason } => reason,
        other => format!("PostHog answered `{}`", other.as_str()),
    };
    RotateError::PostHogUndecided { mask, reason }
}
