//! Where the proxy's audit entries go: one `posthog.api.call` entry per call, allowed or
//! refused, and the entries services send to `POST /_hogguard/audit`.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use hogguard_audit::{AuditError, AuditLog, AuditOptions, EntryInput};

use crate::BoxError;

/// The action of the entry each proxied call leaves.
pub const CALL_ACTION: &str = "posthog.api.call";

/// The user id of entries for calls that presented no usable client token.
pub const UNAUTHENTICATED_USER: &str = "unauthenticated";

/// Writes audit entries durably. [`append`](AuditSink::append) blocks until the entry is
/// written (fsynced, for a file); the proxy calls it from a blocking thread, many at once,
/// so a sink that shares one fsync between concurrent appends (as
/// [`AuditLog`](hogguard_audit::AuditLog) does) keeps throughput up.
pub trait AuditSink: Send + Sync + 'static {
    /// Writes one entry; an error means it was not written.
    fn append(&self, entry: EntryInput) -> Result<(), BoxError>;
}

/// An [`AuditLog`] that is opened again after a failed write: the log refuses every append
/// after one fails (the kernel may have dropped the data), so the next append reopens it,
/// which runs its recovery, and tries once more.
pub struct LogSink {
    path: PathBuf,
    options: AuditOptions,
    log: RwLock<Option<Arc<AuditLog>>>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LogSink {
    /// Opens the log at `path`.
    pub fn open(path: impl Into<PathBuf>, options: AuditOptions) -> Result<LogSink, AuditError> {
        let path = path.into();
        let log = AuditLog::open(&path, &options)?;
        Ok(LogSink {
            path,
            options,
            log: RwLock::new(Some(Arc::new(log))),
        })
    }

    /// The open log, or a newly opened one when the last append failed.
    fn current(&self) -> Result<Arc<AuditLog>, AuditError> {
        if let Some(log) = self
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(Arc::clone(log));
        }
        let mut slot = self.log.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = slot.as_ref() {
            return Ok(Arc::clone(log));
        }
        let log = Arc::new(AuditLog::open(&self.path, &self.options)?);
        *slot = Some(Arc::clone(&log));
        Ok(log)
    }

    /// Forgets `failed` so that the next append reopens the log; appends still holding it
    /// finish (and fail) on their own.
    fn discard(&self, failed: &Arc<AuditLog>) {
        let mut slot = self.log.write().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|log| Arc::ptr_eq(log, failed)) {
            *slot = None;
        }
    }
}

impl AuditSink for LogSink {
    fn append(&self, entry: EntryInput) -> Result<(), BoxError> {
        let log = self.current()?;
        match log.append(entry) {
            Ok(_) => Ok(()),
            Err(error) => {
                if error.is_unwritable() {
                    self.discard(&log);
                }
                Err(error.into())
            }
        }
    }
}

impl AuditSink for AuditLog {
    fn append(&self, entry: EntryInput) -> Result<(), BoxError> {
        AuditLog::append(self, entry).map(drop).map_err(Into::into)
    }
}
