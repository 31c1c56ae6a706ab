//! Reading entries back, filtered, with the chain checked along the way.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::entry::{Entry, Outcome};
use crate::error::AuditError;
use crate::files::read_line;
use crate::format::{MAX_LINE_BYTES, ParsedLine};
use crate::problem::{Problem, ProblemKind};
use crate::time::Timestamp;
use crate::verify::Chain;
use hogguard_fs::open_regular;

/// Which entries [`query`] yields; every condition set must hold.
///
/// ```
/// use hogguard_audit::{Filter, Outcome};
///
/// let failed_rotations = Filter {
///     action: Some("key.rotate*".into()),
///     result: Some(Outcome::Failure),
///     since: Some("2025-01-01".parse()?),
///     ..Filter::default()
/// };
/// # let _ = failed_rotations;
/// # Ok::<(), hogguard_audit::InvalidTimestamp>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Entries written at or after this instant.
    pub since: Option<Timestamp>,
    /// Entries written before this instant.
    pub until: Option<Timestamp>,
    /// Entries with this action; a trailing `*` matches any action starting with what
    /// precedes it (`key.*`).
    pub action: Option<String>,
    /// Entries with this user id.
    pub user: Option<String>,
    /// Entries with this result.
    pub result: Option<Outcome>,
}

impl Filter {
    fn matches(&self, line: &ParsedLine<'_>) -> bool {
        self.since.is_none_or(|since| line.timestamp >= since)
            && self.until.is_none_or(|until| line.timestamp < until)
            && self
                .action
                .as_deref()
                .is_none_or(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => line.action().starts_with(prefix),
                    None => line.action() == pattern,
                })
            && self
                .user
                .as_deref()
                .is_none_or(|user| line.user_id() == user)
            && self.result.is_none_or(|result| line.result() == result)
    }
}

/// The entries of the log at `path` that `filter` selects, in seq order.
///
/// Each line's hash and its link to the previous one are checked as it is read: the
/// iterator yields [`AuditError::Corrupt`] for the first line that fails and then ends, so
/// nothing after a break is shown as trustworthy. A last line without a newline is taken
/// for an append in progress and not read. The checkpoint is not checked; [`verify`]
/// does that.
///
/// [`verify`]: crate::verify()
pub fn query(path: impl AsRef<Path>, filter: &Filter) -> Result<Entries, AuditError> {
    let path = path.as_ref().to_owned();
    let file =
        open_regular(&path, OpenOptions::new().read(true)).map_err(AuditError::unreadable)?;
    Ok(Entries {
        reader: BufReader::with_capacity(1 << 16, file),
        chain: Chain::genesis(None),
        filter: filter.clone(),
        line: Vec::new(),
        line_number: 0,
        finished: false,
        path,
    })
}

/// The iterator [`query`] returns.
#[derive(Debug)]
pub struct Entries {
    reader: BufReader<File>,
    chain: Chain,
    filter: Filter,
    line: Vec<u8>,
    line_number: u64,
    finished: bool,
    path: PathBuf,
}

impl Iterator for Entries {
    type Item = Result<Entry, AuditError>;

    fn next(&mut self) -> Option<Result<Entry, AuditError>> {
        while !self.finished {
            match read_line(&mut self.reader, &mut self.line) {
                Ok(0) => self.finished = true,
                Ok(_) => {
                    self.line_number += 1;
                    let expected_seq = self.chain.next_seq();
                    let Some(complete) = self.line.strip_suffix(b"\n") else {
                        self.finished = true;
                        if self.line.len() > MAX_LINE_BYTES {
                            // Longer than any entry: damage, not an append in progress.
                            let kind = ProblemKind::too_long();
                            return Some(Err(self.corrupt(expected_seq, kind)));
                        }
                        break;
                    };
                    match self.chain.link(complete) {
                        Ok(parsed) if self.filter.matches(&parsed) => {
                            return Some(Ok(parsed.to_entry()));
                        }
                        Ok(_) => {}
                        Err(kind) => {
                            self.finished = true;
                            return Some(Err(self.corrupt(expected_seq, kind)));
                        }
                    }
                }
                Err(source) => {
                    self.finished = true;
                    return Some(Err(AuditError::Unreadable {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
        }
        None
    }
}

impl Entries {
    fn corrupt(&self, seq: u64, kind: ProblemKind) -> AuditError {
        AuditError::Corrupt {
            path: self.path.clone(),
            problem: Problem {
                seq,
                line: Some(self.line_number),
                kind,
            },
        }
    }
}
