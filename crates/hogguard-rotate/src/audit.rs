//! Where each step of a rotation is reported: an [`AuditSink`] the caller provides (the CLI
//! wires it to hogguard's audit log).

use std::error::Error;

/// One rotation event. It carries masks (`phs_...abcd`), fingerprints (SHA-256 of a value)
/// and key ids, never a secret.
///
/// Actions: `key.rotate.start`, `key.rotate.resume`, `key.rotate.not_due`,
/// `key.rotate.<step>.intent` and `key.rotate.<step>` for each [`Step`](crate::Step) by its
/// [`name`](crate::Step::name), `key.rotate.complete`, `key.rotate.grace_period` and
/// `key.rotate.abort`. Resource: `environment/credential`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct AuditRecord<'a> {
    /// What happened, `key.rotate.…`.
    pub action: &'a str,
    /// The credential, `environment/credential`.
    pub resource: &'a str,
    /// Whether it went well.
    pub result: AuditResult,
    /// Details as name and value, in a fixed order per action.
    pub metadata: &'a [(&'a str, String)],
}

/// Receives one record per rotation event.
///
/// Before every external call (PostHog, the store, the verify command) the rotation records
/// `key.rotate.<step>.intent`; after it, `key.rotate.<step>` with its result. If a record
/// cannot be written the rotation stops before acting, as an audit trail with gaps is worse
/// than a rotation that waits; the journal lets `--resume` pick up from there.
///
/// Any `Fn(&AuditRecord) -> Result<(), AuditSinkError>` is a sink, so an adapter is a
/// closure:
///
/// ```
/// use hogguard_rotate::{AuditRecord, AuditSink, AuditSinkError};
///
/// let sink = |record: &AuditRecord<'_>| -> Result<(), AuditSinkError> {
///     if record.action.ends_with(".intent") {
///         Ok(())
///     } else {
///         Err(AuditSinkError::new("this sink takes intents only"))
///     }
/// };
/// # let _: &dyn AuditSink = &sink;
/// ```
pub trait AuditSink {
    /// Records one event.
    fn record(&self, record: &AuditRecord<'_>) -> Result<(), AuditSinkError>;
}

impl<F> AuditSink for F
where
    F: Fn(&AuditRecord<'_>) -> Result<(), AuditSinkError>,
{
    fn record(&self, record: &AuditRecord<'_>) -> Result<(), AuditSinkError> {
        self(record)
    }
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

/// Why an [`AuditSink`] could not record an event: the sink's own error, kept whole (its
/// message is this error's message, its causes this error's sources). It must not hold a
/// secret.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AuditSinkError(Box<dyn Error + Send + Sync>);

impl AuditSinkError {
    /// The sink's error: any error type, or a message.
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        AuditSinkError(error.into())
    }
}
