//! Errors of the scanner.

use std::path::PathBuf;

/// An error that stops a scan, or a problem with one input that the scan reports and skips.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A custom rule's regex or keywords do not compile.
    #[error("rule `{id}` is invalid: {reason}")]
    InvalidRule {
        /// The rule's id.
        id: String,
        /// Why it does not compile.
        reason: String,
    },
    /// Reading an input failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The input.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The path is not a git repository, or git data could not be read.
    #[error("{}: {message}", path.display())]
    Git {
        /// The repository or object store.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A baseline file is not valid.
    #[error("baseline {}: {message}", path.display())]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    #[cfg(feature = "git")]
    pub(crate) fn git(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Git {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
