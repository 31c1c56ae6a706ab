//! The errors of opening, appending to and reading a log.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::verify::Problem;

/// What went wrong with a local log.
///
/// For `[audit] required = true` the CLI fails closed on any error from
/// [`AuditLog::open`](crate::AuditLog::open) or [`AuditLog::append`](crate::AuditLog::append);
/// [`is_unwritable`](Self::is_unwritable) tells the log cannot be written (exit 2 as a runtime
/// error) from [`Corrupt`](Self::Corrupt) (failed verification, also exit 2 but reported as
/// tampering).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file of the log (the log, its checkpoint, lock or directory) could not be created,
    /// written or fsynced.
    #[error("cannot write the audit log at {path}: {source}")]
    Unwritable {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file of the log could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another process holds the log's lock (one writer process at a time).
    #[error(
        "the audit log is in use by another process: {path} stayed locked for {} ms",
        waited.as_millis()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
    /// A complete line, or the checkpoint, failed verification: appends are refused until
    /// an operator looks at the log.
    #[error("the audit log {path} failed verification: {problem}")]
    Corrupt {
        /// The log.
        path: PathBuf,
        /// The first thing wrong.
        problem: Problem,
    },
    /// The checkpoint key was configured but its environment variable is unset or empty, or
    /// the checkpoint is keyed and no key was configured (writing an unkeyed one would drop
    /// the protection).
    #[error("the audit checkpoint key is missing: {reason}")]
    CheckpointKeyMissing {
        /// Which variable, or why a key is needed.
        reason: String,
    },
    /// The entry cannot be logged as given.
    #[error("invalid audit entry: {reason}")]
    InvalidEntry {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The scanner that redacts entries could not be built, so nothing can be written
    /// safely.
    #[error("cannot build the scanner that redacts audit entries: {source}")]
    ScannerUnavailable {
        /// The scanner's error.
        source: hogguard_scan::Error,
    },
    /// An earlier write or fsync failed. The file descriptor is not trusted again (after a
    /// failed fsync the kernel may have dropped the dirty pages); reopen the log, which runs
    /// recovery.
    #[error("an earlier write to the audit log at {path} failed ({cause}); reopen the log")]
    Poisoned {
        /// The log.
        path: PathBuf,
        /// The first failure.
        cause: String,
    },
}

impl AuditError {
    /// Whether the log cannot be written at all (a file-system failure, another writer, a
    /// missing key, a poisoned writer), as opposed to a refused entry or a log that fails
    /// verification. With `[audit] required = true` the CLI refuses to act on any of these.
    pub fn is_unwritable(&self) -> bool {
        matches!(
            self,
            AuditError::Unwritable { .. }
                | AuditError::Locked { .. }
                | AuditError::CheckpointKeyMissing { .. }
                | AuditError::ScannerUnavailable { .. }
                | AuditError::Poisoned { .. }
        )
    }

    /// The verification failure, for [`Corrupt`](Self::Corrupt).
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            AuditError::Corrupt { problem, .. } => Some(problem),
            _ => None,
        }
    }
}
