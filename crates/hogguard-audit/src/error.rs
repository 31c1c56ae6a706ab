//! The errors of opening, appending to and reading a log.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::problem::Problem;

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
    /// written or fsynced, or is not a regular file.
    #[error("cannot write the audit log at {}", path.display())]
    Unwritable {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's error, or why the file was refused.
        #[source]
        source: io::Error,
    },
    /// A file of the log could not be read, or is not a regular file.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's error, or why the file was refused.
        #[source]
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
    #[error("cannot build the scanner that redacts audit entries")]
    ScannerUnavailable {
        /// The scanner's error.
        #[source]
        source: hogguard_scan::Error,
    },
    /// An earlier write or fsync failed. The file descriptor is not trusted again (after a
    /// failed fsync the kernel may have dropped the dirty pages); reopen the log, which runs
    /// recovery.
    #[error(
        "an earlier write to the audit log at {} failed; reopen the log",
        path.display()
    )]
    Poisoned {
        /// The log.
        path: PathBuf,
        /// The first failure.
        #[source]
        source: Arc<io::Error>,
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

    /// A failed write-side operation on a file of the log: [`Locked`](Self::Locked) for a busy
    /// lock, else [`Unwritable`](Self::Unwritable).
    pub(crate) fn unwritable(error: hogguard_fs::Error) -> AuditError {
        match file_failure(error) {
            Ok((path, source)) => AuditError::Unwritable { path, source },
            Err(locked) => locked,
        }
    }

    /// A failed read of a file of the log: [`Unreadable`](Self::Unreadable).
    pub(crate) fn unreadable(error: hogguard_fs::Error) -> AuditError {
        match file_failure(error) {
            Ok((path, source)) => AuditError::Unreadable { path, source },
            Err(locked) => locked,
        }
    }

    /// The verification failure, for [`Corrupt`](Self::Corrupt).
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            AuditError::Corrupt { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// The file and the cause of a failed file operation, or [`AuditError::Locked`] for a lock
/// that stayed busy. The operating system's error stands alone (this crate's message names
/// the file); a refused file (not regular, too large) is its own cause.
fn file_failure(error: hogguard_fs::Error) -> Result<(PathBuf, io::Error), AuditError> {
    match error {
        hogguard_fs::Error::Locked { path, waited } => Err(AuditError::Locked { path, waited }),
        hogguard_fs::Error::Io { path, source, .. } => Ok((path, source)),
        other => Ok((other.path().to_owned(), io::Error::from(other))),
    }
}
