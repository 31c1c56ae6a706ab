//! Checking a log from its first line to its last and against its checkpoint, and the
//! problems that can be found.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::Path;

use crate::checkpoint::{Checkpoint, CheckpointKey, KeyCheck, ReadFailure};
use crate::error::AuditError;
use crate::files::seq_appears;
use crate::format::{
    Digest, GENESIS_DIGEST, LineError, MAX_LINE_BYTES, ParsedLine, claimed_seq, hex, parse_line,
};
use crate::problem::{CheckpointMismatch, Problem, ProblemKind};
use hogguard_fs::open_regular;

/// The last entry of a verified stretch of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Its seq.
    pub seq: u64,
    /// Its hash, 64 lowercase hex digits.
    pub hash: String,
}

/// What the checkpoint file said, as far as it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// The seq it names.
    pub seq: u64,
    /// Whether it carries a MAC.
    pub keyed: bool,
    /// Whether that MAC was checked against a key and is valid.
    pub mac_verified: bool,
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The log's id, from its first entry (or its checkpoint when it has none).
    pub log_id: Option<String>,
    /// How many entries verified, from seq 1, before the first problem (all of them when
    /// there is none).
    pub entries: u64,
    /// The last entry that verified.
    pub head: Option<Head>,
    /// The checkpoint, when it was read.
    pub checkpoint: Option<CheckpointSummary>,
    /// The first problem, or `None` when the log is intact.
    pub problem: Option<Problem>,
}

impl Report {
    /// Whether every line and the checkpoint verified.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Links lines into a chain: each must be a valid line of the same log, with the next seq
/// and the previous line's hash as `prev`.
#[derive(Debug)]
pub(crate) struct Chain {
    log_id: Option<[u8; 16]>,
    next_seq: u64,
    prev: Digest,
}

impl Chain {
    /// A chain expecting seq 1, of `log_id` when known (else of the first line's log).
    pub(crate) fn genesis(log_id: Option<[u8; 16]>) -> Chain {
        Chain {
            log_id,
            next_seq: 1,
            prev: GENESIS_DIGEST,
        }
    }

    /// A chain expecting the entry after `seq` (0 for none), whose hash is `hash`.
    pub(crate) fn resume(log_id: [u8; 16], seq: u64, hash: Digest) -> Chain {
        Chain {
            log_id: Some(log_id),
            next_seq: seq + 1,
            prev: hash,
        }
    }

    /// The seq the next line must carry.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash of the last linked entry ([`GENESIS_DIGEST`] before any).
    pub(crate) fn last_hash(&self) -> Digest {
        self.prev
    }

    /// Links one complete line (without its newline). A seq out of place comes back as
    /// [`ProblemKind::Gap`] or [`ProblemKind::Duplicate`]; see [`refine_seq_problem`].
    pub(crate) fn link<'a>(&mut self, line: &'a [u8]) -> Result<ParsedLine<'a>, ProblemKind> {
        let parsed = parse_line(line).map_err(ProblemKind::from)?;
        self.link_parsed(&parsed)?;
        Ok(parsed)
    }

    /// Links a line already checked on its own.
    pub(crate) fn link_parsed(&mut self, parsed: &ParsedLine<'_>) -> Result<(), ProblemKind> {
        match self.log_id {
            Some(log_id) if log_id != parsed.log_id_hex => return Err(ProblemKind::ForeignEntry),
            Some(_) => {}
            None => self.log_id = Some(parsed.log_id_hex),
        }
        if parsed.seq > self.next_seq {
            return Err(ProblemKind::Gap { found: parsed.seq });
        }
        if parsed.seq < self.next_seq {
            return Err(ProblemKind::Duplicate { found: parsed.seq });
        }
        if parsed.prev != self.prev {
            return Err(ProblemKind::PrevMismatch);
        }
        self.next_seq += 1;
        self.prev = parsed.hash;
        Ok(())
    }
}

/// Tells a reordering from a gap: when the expected seq shows up in a later line (which
/// `appears_later` looks for, only for a gap), the lines were moved rather than deleted.
pub(crate) fn refine_seq_problem(
    kind: ProblemKind,
    appears_later: impl FnOnce() -> io::Result<bool>,
) -> io::Result<ProblemKind> {
    Ok(match kind {
        ProblemKind::Gap { found } if appears_later()? => ProblemKind::Reordered { found },
        other => other,
    })
}

/// Checks the whole log at `path` from seq 1, then its checkpoint (with `key`, its MAC).
///
/// Every line must be newline-terminated, have a hash matching its bytes, belong to the
/// same log, carry the next seq and link to its predecessor's hash. The checkpoint must
/// exist, name this log, name an entry present with the same hash ending at the same
/// offset, and, when `key` is given, carry a valid MAC under it (or, for a log without
/// entries, no MAC). The report names the first problem; `Err` only when a file cannot be
/// read.
///
/// It reads without taking the writer's lock, so a log being appended to may show a last
/// line still being written as [`ProblemKind::MissingNewline`].
pub fn verify(path: impl AsRef<Path>, key: Option<&CheckpointKey>) -> Result<Report, AuditError> {
    let path = path.as_ref();
    let checkpoint = match Checkpoint::read(path) {
        Ok(checkpoint) => Ok(checkpoint),
        Err(ReadFailure::File(error)) => return Err(AuditError::unreadable(error)),
        Err(ReadFailure::Malformed(reason)) => Err(reason),
    };
    let file = open_regular(path, OpenOptions::new().read(true)).map_err(AuditError::unreadable)?;
    check_log(
        &file,
        path,
        checkpoint,
        key,
        Extent::Whole,
        CHUNK_BYTES,
        LINES_PER_WORKER,
    )
}

/// Checks every line `checkpoint` covers, from seq 1, then the checkpoint under `key`, and
/// fails with [`AuditError::Corrupt`] naming the first problem. Those lines were durable when
/// the checkpoint was written, so any that fails was tampered with or damaged, never torn;
/// opening a log for writing and shipping it both stand on this.
pub(crate) fn verify_checkpointed(
    file: &File,
    path: &Path,
    checkpoint: &Checkpoint,
    key: Option<&CheckpointKey>,
) -> Result<(), AuditError> {
    let report = check_log(
        file,
        path,
        Ok(Some(checkpoint.clone())),
        key,
        Extent::Checkpointed,
        CHUNK_BYTES,
        LINES_PER_WORKER,
    )?;
    match report.problem {
        None => Ok(()),
        Some(problem) => Err(AuditError::Corrupt {
            path: path.to_owned(),
            problem,
        }),
    }
}

/// How much of a log [`check_log`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extent {
    /// Every line.
    Whole,
    /// The lines up to the checkpoint's offset.
    Checkpointed,
}

/// Checks the lines of `file` (the log at `path`) from the first, as far as `extent` says,
/// then `checkpoint` (the file's content, or why it is malformed), reading `chunk_bytes` at
/// a time and giving each checking thread at least `lines_per_worker` lines.
fn check_log(
    mut file: &File,
    path: &Path,
    checkpoint: Result<Option<Checkpoint>, String>,
    key: Option<&CheckpointKey>,
    extent: Extent,
    chunk_bytes: usize,
    lines_per_worker: usize,
) -> Result<Report, AuditError> {
    let unreadable = |source: io::Error| AuditError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let length = file.metadata().map_err(unreadable)?.len();
    file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let limit = match (extent, &checkpoint) {
        (Extent::Checkpointed, Ok(Some(checkpoint))) => checkpoint.offset,
        _ => u64::MAX,
    };
    let mut file = file.take(limit);
    let mut chain = Chain::genesis(None);
    let mut report = Report {
        log_id: None,
        entries: 0,
        head: None,
        checkpoint: None,
        problem: None,
    };
    let checkpoint_seq = checkpoint
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(|c| c.seq);
    // The hash and end offset of the entry the checkpoint names, once read.
    let mut at_checkpoint: Option<(Digest, u64)> = None;
    let mut offset = 0u64;
    let mut line_number = 0u64;
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS);
    // Whole lines are checked a chunk at a time; `buffer` starts with the partial line the
    // previous read left over.
    let mut buffer: Vec<u8> = Vec::with_capacity(chunk_bytes + MAX_LINE_BYTES);
    'chunks: loop {
        let carried = buffer.len();
        let read = (&mut file)
            .take(chunk_bytes as u64)
            .read_to_end(&mut buffer)
            .map_err(unreadable)?;
        if read == 0 {
            if carried > 0 {
                report.problem = Some(match (extent, checkpoint_seq) {
                    // The checkpoint's offset falls inside a line.
                    (Extent::Checkpointed, Some(seq)) => Problem {
                        seq,
                        line: None,
                        kind: ProblemKind::CheckpointMismatch(CheckpointMismatch::Offset),
                    },
                    _ => Problem {
                        seq: chain.next_seq(),
                        line: Some(line_number + 1),
                        kind: ProblemKind::MissingNewline,
                    },
                });
            }
            break;
        }
        let Some(last_newline) = buffer.iter().rposition(|&b| b == b'\n') else {
            if buffer.len() > MAX_LINE_BYTES {
                report.problem = Some(Problem {
                    seq: chain.next_seq(),
                    line: Some(line_number + 1),
                    kind: ProblemKind::too_long(),
                });
                break;
            }
            continue;
        };
        let lines: Vec<&[u8]> = buffer[..last_newline].split(|&b| b == b'\n').collect();
        let checked = check_lines(&lines, workers, lines_per_worker);
        for (index, (line, checked)) in lines.iter().zip(checked).enumerate() {
            line_number += 1;
            offset += line.len() as u64 + 1;
            let linked = checked
                .map_err(ProblemKind::from)
                .and_then(|parsed| chain.link_parsed(&parsed).map(|()| parsed));
            match linked {
                Ok(parsed) => {
                    if report.log_id.is_none() {
                        report.log_id = Some(parsed.log_id().to_owned());
                    }
                    if Some(parsed.seq) == checkpoint_seq {
                        at_checkpoint = Some((parsed.hash, offset));
                    }
                    report.entries += 1;
                }
                Err(kind) => {
                    let expected = chain.next_seq();
                    let kind = refine_seq_problem(kind, || {
                        if lines[index + 1..]
                            .iter()
                            .any(|line| claimed_seq(line) == Some(expected))
                        {
                            return Ok(true);
                        }
                        // The rest of the file, the partial line carried over first; the seq
                        // expected may turn up past the checkpoint's offset too.
                        let carried = &buffer[last_newline + 1..];
                        let mut rest = BufReader::new(carried.chain(file.get_mut()));
                        seq_appears(&mut rest, expected)
                    })
                    .map_err(unreadable)?;
                    report.problem = Some(Problem {
                        seq: expected,
                        line: Some(line_number),
                        kind,
                    });
                    break 'chunks;
                }
            }
        }
        buffer.drain(..=last_newline);
    }
    if report.entries > 0 {
        report.head = Some(Head {
            seq: report.entries,
            hash: hex(&chain.last_hash()),
        });
    }
    if report.problem.is_some() {
        return Ok(report);
    }
    let checkpoint = match checkpoint {
        Ok(Some(checkpoint)) => checkpoint,
        Ok(None) => {
            report.problem = Some(Problem {
                seq: report.entries,
                line: None,
                kind: ProblemKind::CheckpointMissing,
            });
            return Ok(report);
        }
        Err(reason) => {
            report.problem = Some(Problem {
                seq: report.entries,
                line: None,
                kind: ProblemKind::CheckpointMalformed { reason },
            });
            return Ok(report);
        }
    };
    report.checkpoint = Some(CheckpointSummary {
        seq: checkpoint.seq,
        keyed: checkpoint.mac.is_some(),
        mac_verified: false,
    });
    if report.log_id.is_none() {
        report.log_id = Some(checkpoint.log_id.clone());
    }
    // An entry the checkpoint names but that was not read: past the end of the log, or,
    // when reading stopped at the checkpoint's offset, not the line ending there.
    let unread = if extent == Extent::Checkpointed && length >= checkpoint.offset {
        CheckpointMismatch::Offset
    } else {
        CheckpointMismatch::AheadOfLog
    };
    let found = Found {
        log_id: report.log_id.as_deref(),
        at_checkpoint: at_checkpoint.ok_or(unread),
        log_is_empty: length == 0,
    };
    match check_checkpoint(&checkpoint, &found, key) {
        Some(mismatch) => {
            report.problem = Some(Problem {
                seq: checkpoint.seq,
                line: None,
                kind: ProblemKind::CheckpointMismatch(mismatch),
            });
        }
        None => {
            if let Some(summary) = &mut report.checkpoint {
                summary.mac_verified = key.is_some() && checkpoint.mac.is_some();
            }
        }
    }
    Ok(report)
}

/// How much of the log is read and checked at a time.
const CHUNK_BYTES: usize = 4 << 20;

/// At most this many threads check lines (hashing and parsing dominate `verify`).
const MAX_WORKERS: usize = 4;

/// Fewer lines than this are checked on the calling thread: starting threads would cost
/// more than it saves.
const LINES_PER_WORKER: usize = 2048;

/// Checks each line on its own (hash and syntax), on up to `workers` threads with at least
/// `lines_per_worker` lines each; linking stays sequential.
fn check_lines<'a>(
    lines: &[&'a [u8]],
    workers: usize,
    lines_per_worker: usize,
) -> Vec<Result<ParsedLine<'a>, LineError>> {
    let workers = workers.min(lines.len() / lines_per_worker).max(1);
    if workers == 1 {
        return lines.iter().map(|line| parse_line(line)).collect();
    }
    let per_worker = lines.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(per_worker)
            .map(|part| {
                scope.spawn(move || part.iter().map(|line| parse_line(line)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("checking a line does not panic"))
            .collect()
    })
}

/// What the lines of a log say about its checkpoint.
struct Found<'a> {
    /// The log's id, from its first entry.
    log_id: Option<&'a str>,
    /// The hash and end offset of the entry at the checkpoint's seq, or why it was not read.
    at_checkpoint: Result<(Digest, u64), CheckpointMismatch>,
    /// Whether the log file is empty.
    log_is_empty: bool,
}

/// How `checkpoint` disagrees with a log of which `found` was read.
fn check_checkpoint(
    checkpoint: &Checkpoint,
    found: &Found<'_>,
    key: Option<&CheckpointKey>,
) -> Option<CheckpointMismatch> {
    if found
        .log_id
        .is_some_and(|log_id| log_id != checkpoint.log_id)
    {
        return Some(CheckpointMismatch::LogId);
    }
    let (hash, offset) = match (checkpoint.seq, found.at_checkpoint) {
        (0, _) => (GENESIS_DIGEST, 0),
        (_, Ok(at_checkpoint)) => at_checkpoint,
        (_, Err(unread)) => return Some(unread),
    };
    if hash != checkpoint.hash {
        return Some(CheckpointMismatch::Hash);
    }
    if offset != checkpoint.offset {
        return Some(CheckpointMismatch::Offset);
    }
    match checkpoint.check_key(key, found.log_is_empty) {
        Err(KeyCheck::Mismatch(mismatch)) => Some(mismatch),
        // Without a key a keyed checkpoint cannot be checked, only read.
        Err(KeyCheck::Missing) | Ok(()) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditLog, AuditOptions, EntryInput, Outcome};

    /// Chunk boundaries and worker splits fall everywhere, with the same verdicts.
    #[test]
    fn chunked_parallel_checking_agrees_with_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, &AuditOptions::default()).unwrap();
        std::thread::scope(|scope| {
            for thread in 0..16 {
                let log = &log;
                scope.spawn(move || {
                    for n in 0..20 {
                        let input =
                            EntryInput::new("a", format!("u{thread}"), "r", Outcome::Success)
                                .with_metadata("pad", "x".repeat((n * 37) % 300));
                        log.append(input).unwrap();
                    }
                });
            }
        });
        log.close().unwrap();
        let pristine = std::fs::read(&path).unwrap();
        let check = |path: &Path, extent, chunk_bytes, lines_per_worker| {
            let checkpoint = Checkpoint::read(path).map_err(|error| format!("{error:?}"));
            let file = File::open(path).unwrap();
            check_log(
                &file,
                path,
                checkpoint,
                None,
                extent,
                chunk_bytes,
                lines_per_worker,
            )
            .unwrap()
        };
        let whole = |path: &Path, extent| check(path, extent, CHUNK_BYTES, usize::MAX);
        assert!(whole(&path, Extent::Whole).is_ok());
        assert_eq!(whole(&path, Extent::Whole).entries, 320);
        assert_eq!(
            whole(&path, Extent::Checkpointed),
            whole(&path, Extent::Whole)
        );

        let mut edited = pristine.clone();
        let middle = edited.len() / 2;
        edited[middle] ^= 1;
        let mut deleted = pristine.clone();
        let line_start = deleted[..middle].iter().rposition(|&b| b == b'\n').unwrap() + 1;
        let line_end = middle + deleted[middle..].iter().position(|&b| b == b'\n').unwrap() + 1;
        deleted.drain(line_start..line_end);
        let mut torn = pristine.clone();
        torn.truncate(torn.len() - 10);
        for case in [pristine, edited, deleted, torn] {
            std::fs::write(&path, &case).unwrap();
            for extent in [Extent::Whole, Extent::Checkpointed] {
                let expected = whole(&path, extent);
                for chunk in [64, 500, 4096, 70_000] {
                    for lines_per_worker in [1, 7, 100] {
                        let report = check(&path, extent, chunk, lines_per_worker);
                        assert_eq!(
                            report, expected,
                            "chunk {chunk}, {lines_per_worker} lines a worker"
                        );
                    }
                }
            }
        }
    }
}
