//! Errors of the scanner. Each message says what failed; the cause is its `source()`.

use std::path::PathBuf;

/// A cause from a library whose error types hogguard does not name (gitoxide, walkers).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error that stops a scan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A custom rule is invalid for a reason of its own (a duplicate id).
    #[error("rule `{id}` is invalid: {reason}")]
    InvalidRule {
        /// The rule's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A custom rule's regex does not compile.
    #[error("rule `{id}` is invalid: its regex does not compile")]
    RuleRegex {
        /// The rule's id.
        id: String,
        /// The compiler's complaint.
        #[source]
        source: regex::Error,
    },
    /// The keywords of the custom rules do not compile into one automaton.
    #[error("the keywords of the custom rules do not compile")]
    RuleKeywords {
        /// The automaton builder's complaint.
        #[source]
        source: aho_corasick::BuildError,
    },
    /// Reading an input failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`read`, `list`).
        action: &'static str,
        /// The input.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path is not in a git repository.
    #[error("{} is not a git repository", path.display())]
    NotARepository {
        /// The path given.
        path: PathBuf,
        /// Why gitoxide found none.
        #[source]
        source: Cause,
    },
    /// Git data could not be read.
    #[error("cannot {action} in {}", path.display())]
    Git {
        /// What was being done (`read the index`, `read tree 1234…`).
        action: String,
        /// The repository.
        path: PathBuf,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A baseline file could not be read.
    #[error("the baseline could not be loaded")]
    BaselineFile {
        /// Why.
        #[source]
        source: hogguard_fs::Error,
    },
    /// A baseline file is not a valid baseline.
    #[error("baseline {} is not valid", path.display())]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::baseline::BaselineError,
    },
}

impl Error {
    #[cfg(feature = "git")]
    pub(crate) fn git(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
        source: impl Into<Cause>,
    ) -> Self {
        Error::Git {
            action: action.into(),
            path: path.into(),
            source: source.into(),
        }
    }
}
