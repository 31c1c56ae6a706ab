//! Where each step of a rotation is reported: an [`AuditSink`] the caller provides (the CLI
//! wires it to hogguard's audit log).

use std::fmt;

/// Receives one record per rotation event. Records carry masks (`phs_...abcd`),
/// fingerprints (SHA-256 of a value) and key ids, never a secret.
///
/// Before every external call (PostHog, the store, the verify command) the rotation records
/// `key.rotate.<step>.intent`; after it, `key.rotate.<step>` with its result. If a record
/// cannot be written the rotation stops before acting, as an audit trail with gaps is worse
/// than a rotation that waits; the journal lets `--resume` pick up from there.
///
/// Actions: `key.rotate.start`, `key.rotate.resume`, `key.rotate.not_due`,
/// `key.rotate.<step>.intent` and `key.rotate.<step>` for each [`Step`](crate::Step) by its
/// [`name`](crate::Step::name), `key.rotate.complete`, `key.rotate.grace_period` and
/// `key.rotate.abort`. Resource: `environment/credential`.
pub trait AuditSink {
    /// Records one event. `metadata` pairs are in a fixed order per action.
    fn record(
        &self,
        action: &str,
        resource: &str,
        result: AuditResult,
        metadata: &[(&str, String)],
    ) -> Result<(), AuditSinkError>;
}

/// Whether the recorded event went well. An `.intent` record is always a success: the intent
/// was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditResult {
    /// It happened as asked.
    Success,
    /// It failed or was refused.
    Failure,
}

impl AuditResult {
    /// `"success"` or `"failure"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Success => "success",
            AuditResult::Failure => "failure",
        }
    }
}

/// Why an [`AuditSink`] could not record an event.
#[derive(Debug)]
pub struct AuditSinkError {
    message: String,
}

impl AuditSinkError {
    /// An error with a message for people (it must not hold a secret).
    pub fn new(message: impl Into<String>) -> Self {
        AuditSinkError {
            message: message.into(),
        }
    }
}

impl fmt::Display for AuditSinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuditSinkError {}
