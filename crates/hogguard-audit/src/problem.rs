//! What can be wrong with a log: the verdicts that verifying, opening, querying and
//! shipping a log report.

use std::fmt;

use crate::format::LineError;

/// The first thing wrong with a log, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The seq at fault: for a line, the seq the line at that position should have (its
    /// predecessor's plus one); for the checkpoint, the seq it names.
    pub seq: u64,
    /// The line (from 1), when the problem is in a line whose number is known.
    pub line: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}", self.seq)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for Problem {}

/// What is wrong with a line or with the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The line is not an entry (not JSON, a member missing, extra or ill-formed, or the
    /// hash member not last).
    #[error("malformed line: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The last line has no newline: a torn write, or an edit of the final newline. Opening
    /// the log for writing cuts it (and logs the cut); `verify` reports it.
    #[error("the last line has no newline (torn write)")]
    MissingNewline,
    /// The line's `hash` is not the hash of its bytes: the line was edited.
    #[error("the hash does not match the line's content (edited entry)")]
    HashMismatch,
    /// The line's `prev` is not the previous entry's hash: the chain is broken.
    #[error("prev is not the previous entry's hash (broken chain)")]
    PrevMismatch,
    /// The line belongs to another log (its `log` id differs).
    #[error("the entry belongs to another log")]
    ForeignEntry,
    /// Entries are missing: the line carries a later seq and the expected one is nowhere
    /// after it.
    #[error("entries are missing: found seq {found}")]
    Gap {
        /// The seq the line carries.
        found: u64,
    },
    /// The line carries a later seq and the expected one appears further on: lines were
    /// moved.
    #[error("entries are out of order: found seq {found}")]
    Reordered {
        /// The seq the line carries.
        found: u64,
    },
    /// The line carries a seq already seen: an entry was repeated.
    #[error("seq {found} appears again (duplicated entry)")]
    Duplicate {
        /// The seq the line carries.
        found: u64,
    },
    /// The log has entries but no checkpoint file.
    #[error("the checkpoint file is missing")]
    CheckpointMissing,
    /// The checkpoint file is not a checkpoint.
    #[error("the checkpoint file is malformed: {reason}")]
    CheckpointMalformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The checkpoint disagrees with the log.
    #[error("the checkpoint does not match the log: {0}")]
    CheckpointMismatch(CheckpointMismatch),
}

/// How a checkpoint disagrees with its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointMismatch {
    /// It names another log.
    #[error("it names another log id")]
    LogId,
    /// It names an entry beyond the end of the log: entries were deleted.
    #[error("it names an entry beyond the end of the log (entries deleted)")]
    AheadOfLog,
    /// The entry it names has another hash: the chain was rewritten.
    #[error("the entry it names has another hash (chain rewritten)")]
    Hash,
    /// The entry it names does not end where it says.
    #[error("the entry it names does not end at its offset")]
    Offset,
    /// Its MAC is not the key's: it was forged or the key is wrong.
    #[error("its MAC does not verify under the key")]
    Mac,
    /// A key was given but the checkpoint of a log with entries has no MAC.
    #[error("a key was given but it has no MAC")]
    NotKeyed,
}

impl ProblemKind {
    /// A line longer than any entry can be ([`MAX_LINE_BYTES`](crate::MAX_LINE_BYTES)):
    /// damage, not an append in progress.
    pub(crate) fn too_long() -> ProblemKind {
        ProblemKind::Malformed {
            reason: TOO_LONG.to_owned(),
        }
    }
}

/// The reason given for a line longer than any entry.
pub(crate) const TOO_LONG: &str = "longer than 64 KiB";

impl From<LineError> for ProblemKind {
    fn from(error: LineError) -> ProblemKind {
        match error {
            LineError::HashMismatch => ProblemKind::HashMismatch,
            LineError::Malformed(reason) => ProblemKind::Malformed { reason },
        }
    }
}
