//! The writer: opening (with locking and crash recovery), appending with group commit, and
//! keeping the checkpoint current.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hogguard_scan::Scanner;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::checkpoint::{CHECKPOINT_SUFFIX, Checkpoint, CheckpointKey, KeyCheck, ReadFailure};
use crate::entry::{Entry, EntryInput, Outcome};
use crate::error::AuditError;
use crate::files::{read_line, seq_appears};
use crate::format::{
    Digest, GENESIS_DIGEST, LinePosition, MAX_LINE_BYTES, hex, parse_hex, serialize_caller_members,
    write_line,
};
use crate::problem::{CheckpointMismatch, Problem, ProblemKind};
use crate::redact::{default_scanner, redact_input};
use crate::time::Timestamp;
use crate::verify::{Chain, refine_seq_problem, verify_checkpointed};
use hogguard_fs::open_regular;

/// The action of the entry that records a recovery cut.
pub const RECOVERED_ACTION: &str = "audit.recovered";

/// The user id of entries the log writes about itself.
pub const SYSTEM_USER_ID: &str = "hogguard";

/// The longest a commit's leader waits for expected appenders to queue their lines: short
/// next to an fsync (0.2 to 3 ms here), long next to serialising an entry (microseconds).
const GATHER_WINDOW: Duration = Duration::from_micros(200);

/// The lock file's suffix after the log's name.
const LOCK_SUFFIX: &str = ".lock";

/// Room for the members the writer adds around the caller's (`v`, `log`, `seq`,
/// `timestamp`, `prev`, `hash`): 263 bytes at most, with a 20-digit seq.
const WRITER_MEMBERS_BYTES: usize = 300;

/// Where the checkpoint key comes from.
#[derive(Clone, Debug)]
enum KeySource {
    None,
    Env(String),
    Key(CheckpointKey),
}

/// How [`AuditLog::open`] opens a log.
///
/// ```
/// use std::time::Duration;
/// use hogguard_audit::AuditOptions;
///
/// let options = AuditOptions::default()
///     .checkpoint_key_env("HOGGUARD_AUDIT_KEY")
///     .lock_timeout(Duration::from_secs(2));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct AuditOptions {
    key: KeySource,
    lock_timeout: Duration,
    checkpoint_every_entries: u64,
    checkpoint_interval: Duration,
    scanner: Option<Arc<Scanner>>,
}

impl std::fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditOptions")
            .field("key", &self.key)
            .field("lock_timeout", &self.lock_timeout)
            .field("checkpoint_every_entries", &self.checkpoint_every_entries)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .finish_non_exhaustive()
    }
}

impl Default for AuditOptions {
    /// No checkpoint key, a 5 s lock wait, a checkpoint at least every 1000 entries or 1 s,
    /// the scanner's built-in rules.
    fn default() -> AuditOptions {
        AuditOptions {
            key: KeySource::None,
            lock_timeout: Duration::from_secs(5),
            checkpoint_every_entries: 1000,
            checkpoint_interval: Duration::from_secs(1),
            scanner: None,
        }
    }
}

impl AuditOptions {
    /// Keys checkpoints with the HMAC key held by the environment variable `var`, read when
    /// the log is opened. Opening fails if it is unset or empty.
    pub fn checkpoint_key_env(mut self, var: impl Into<String>) -> AuditOptions {
        self.key = KeySource::Env(var.into());
        self
    }

    /// Keys checkpoints with `key`.
    pub fn checkpoint_key(mut self, key: CheckpointKey) -> AuditOptions {
        self.key = KeySource::Key(key);
        self
    }

    /// How long opening waits for another process to release the log's lock before failing
    /// with [`AuditError::Locked`]; zero fails at once.
    pub fn lock_timeout(mut self, wait: Duration) -> AuditOptions {
        self.lock_timeout = wait;
        self
    }

    /// Rewrites the checkpoint after a commit once `entries` entries or `interval` have
    /// passed since the last one (it is also written when the log is opened after a crash
    /// and when it is closed). Each checkpoint costs two fsyncs and a rename; entries after
    /// the last checkpoint are protected by the chain only, not against truncation.
    pub fn checkpoint_every(mut self, entries: u64, interval: Duration) -> AuditOptions {
        self.checkpoint_every_entries = entries.max(1);
        self.checkpoint_interval = interval;
        self
    }

    /// Redacts with `scanner` (e.g. one with the project's custom rules) instead of the
    /// built-in rules.
    pub fn scanner(mut self, scanner: Arc<Scanner>) -> AuditOptions {
        self.scanner = Some(scanner);
        self
    }
}

/// An open, locked log that entries are appended to.
///
/// One process at a time may hold a log open (an advisory lock on `<log>.lock`); within the
/// process it is `Sync`, and concurrent [`append`](Self::append)s share fsyncs. Dropping it
/// fsyncs what is written and writes the checkpoint; [`close`](Self::close) does the same and
/// reports failures.
pub struct AuditLog {
    path: PathBuf,
    log_id: String,
    file: File,
    /// Held for the log's lifetime.
    _lock: hogguard_fs::Lock,
    scanner: Arc<Scanner>,
    key: Option<CheckpointKey>,
    checkpoint_every_entries: u64,
    checkpoint_interval: Duration,
    state: Mutex<WriterState>,
    /// Signalled whenever a write or an fsync ends.
    progressed: Condvar,
    /// Signalled when a line is queued while the leader gathers.
    enqueued: Condvar,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("log_id", &self.log_id)
            .finish_non_exhaustive()
    }
}

/// How far an append goes before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Written to the file.
    Written,
    /// Written and fsynced; the fsync waits briefly for concurrent appenders to share it.
    Durable,
    /// Written and fsynced, without waiting for more lines: no appender waits for them.
    Synced,
}

/// A position in the log: an entry and where its line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Position {
    seq: u64,
    hash: Digest,
    /// The log's length through the entry's newline.
    offset: u64,
}

/// The writer's shared state; the file itself is only written by the current writer.
struct WriterState {
    /// The last entry given a seq (written or not).
    assigned: Position,
    /// Lines given a seq but not yet written, in seq order.
    pending: Vec<u8>,
    /// The last entry written to the file (in the kernel: it survives this process).
    written: Position,
    /// The last entry written and fsynced.
    durable: Position,
    /// The seq the checkpoint file names, and when it was written.
    checkpointed_seq: u64,
    checkpointed_at: Instant,
    /// Whether a thread is writing pending lines to the file.
    writing: bool,
    /// Whether a leader is gathering and fsyncing (or writing the checkpoint); lines are
    /// still written meanwhile.
    syncing: bool,
    /// Whether the leader waits on `enqueued` for more lines.
    gathering: bool,
    /// How many appenders the last fsync saw (its batch plus the lines that queued while
    /// it ran): the batch size the next leader waits for, briefly.
    expected_batch: u64,
    /// The first write, fsync or checkpoint failure; no write is tried after it.
    failure: Option<Arc<io::Error>>,
    /// Whether that failure was an fsync's.
    fsync_failed: bool,
}

impl AuditLog {
    /// Opens the log at `path`, creating it (and its directory, mode 0700) if needed.
    ///
    /// It takes the lock, reads the checkpoint, checks every line from the first, replaces
    /// a torn last line by an [`RECOVERED_ACTION`] entry about it, and brings the checkpoint
    /// up to date. See the crate docs for the recovery rules.
    ///
    /// Fails with [`AuditError::Corrupt`] when a complete line or the checkpoint does not
    /// verify, [`AuditError::Locked`] when another process keeps the lock, and an error whose
    /// [`is_unwritable`](AuditError::is_unwritable) is true when the log cannot be written.
    pub fn open(path: impl AsRef<Path>, options: &AuditOptions) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_owned();
        let key = match &options.key {
            KeySource::None => None,
            KeySource::Env(var) => Some(CheckpointKey::from_env(var)?),
            KeySource::Key(key) => Some(key.clone()),
        };
        let scanner = match &options.scanner {
            Some(scanner) => Arc::clone(scanner),
            None => default_scanner()?,
        };
        hogguard_fs::create_private_dir_all(hogguard_fs::parent_dir(&path))
            .map_err(AuditError::unwritable)?;
        let log_options = OpenOptions::new().read(true).append(true).clone();
        // A log that is no regular file is refused before a lock file is made beside it
        // (`/dev/zero.lock`); it is checked again once opened under the lock.
        if let Err(error) = open_regular(&path, &log_options)
            && error.kind() != io::ErrorKind::NotFound
        {
            return Err(AuditError::unwritable(error));
        }
        let lock = hogguard_fs::Lock::acquire(
            &hogguard_fs::sidecar(&path, LOCK_SUFFIX),
            options.lock_timeout,
        )
        .map_err(AuditError::unwritable)?;
        let (file, checkpoint, end) = match open_regular(&path, &log_options) {
            Ok(mut file) => {
                let length = file.metadata().map_err(unwritable(&path))?.len();
                let checkpoint = match read_checkpoint(&path, key.as_ref(), length == 0)? {
                    Some(checkpoint) => checkpoint,
                    None if length == 0 => start_checkpoint(&path, key.as_ref())?,
                    None => return Err(corrupt(&path, 0, ProblemKind::CheckpointMissing)),
                };
                let end = recover(&mut file, &path, &checkpoint, key.as_ref(), &scanner)?;
                // Lines a crashed writer wrote but did not fsync read back from the page cache:
                // they are durable, and may be checkpointed, only after this.
                file.sync_data().map_err(unwritable(&path))?;
                (file, checkpoint, end)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let checkpoint = match read_checkpoint(&path, key.as_ref(), true)? {
                    // The log was deleted after entries were checkpointed.
                    Some(checkpoint) if checkpoint.seq > 0 => {
                        let kind = ProblemKind::CheckpointMismatch(CheckpointMismatch::AheadOfLog);
                        return Err(corrupt(&path, checkpoint.seq, kind));
                    }
                    // A crash between writing the first checkpoint and creating the log.
                    Some(checkpoint) => checkpoint,
                    None => start_checkpoint(&path, key.as_ref())?,
                };
                let file = create_log_file(&path)?;
                let empty = Position {
                    seq: 0,
                    hash: GENESIS_DIGEST,
                    offset: 0,
                };
                (file, checkpoint, empty)
            }
            Err(error) => return Err(AuditError::unwritable(error)),
        };

        let log = AuditLog {
            log_id: checkpoint.log_id.clone(),
            file,
            _lock: lock,
            scanner,
            key,
            checkpoint_every_entries: options.checkpoint_every_entries,
            checkpoint_interval: options.checkpoint_interval,
            state: Mutex::new(WriterState {
                assigned: end,
                pending: Vec::new(),
                written: end,
                durable: end,
                checkpointed_seq: checkpoint.seq,
                checkpointed_at: Instant::now(),
                writing: false,
                syncing: false,
                gathering: false,
                expected_batch: 1,
                failure: None,
                fsync_failed: false,
            }),
            progressed: Condvar::new(),
            enqueued: Condvar::new(),
            path,
        };
        log.checkpoint()?;
        Ok(log)
    }

    /// Appends one entry and returns it as written, once its line (and every line before
    /// it) is written and fsynced.
    ///
    /// Every string of `input` is redacted first. Threads appending at the same time share
    /// fsyncs: one of them writes and fsyncs the lines of all that are waiting. No network
    /// I/O happens here.
    ///
    /// Fails with [`AuditError::InvalidEntry`] for an empty action or user id or an entry
    /// longer than 64 KiB, and with [`AuditError::Unwritable`] or [`AuditError::Poisoned`]
    /// when the line may not be durable: the caller must then treat the audited action as
    /// unrecorded.
    pub fn append(&self, input: EntryInput) -> Result<Entry, AuditError> {
        self.append_until(input, Stage::Durable)
    }

    /// Appends one entry and returns it once its line is written to the file, before it is
    /// fsynced: the entry survives a crash of this process, not of the machine, until
    /// [`sync`](Self::sync) (or a later [`append`](Self::append), or closing) makes it
    /// durable.
    ///
    /// For callers that cannot wait for the disk on every action (the proxy answers a call
    /// once its entry is written and fsyncs in the background). Fails as
    /// [`append`](Self::append) does, when the line is not written; an fsync that fails
    /// later fails that [`sync`](Self::sync) and every append after it.
    pub fn append_written(&self, input: EntryInput) -> Result<Entry, AuditError> {
        self.append_until(input, Stage::Written)
    }

    /// Makes every line appended before the call durable, sharing the fsync with concurrent
    /// appends; returns at once when they are.
    pub fn sync(&self) -> Result<(), AuditError> {
        let state = self.lock_state();
        let seq = state.assigned.seq;
        self.wait_until(state, seq, Stage::Synced).map(drop)
    }

    fn append_until(&self, input: EntryInput, stage: Stage) -> Result<Entry, AuditError> {
        let (input, caller_members) = prepare(&self.scanner, input)?;
        let mut state = self.lock_state();
        if let Some(cause) = &state.failure {
            return Err(self.poisoned(cause));
        }
        let seq = state.assigned.seq + 1;
        let prev = state.assigned.hash;
        let timestamp = Timestamp::now();
        let start = state.pending.len();
        let hash = write_line(
            &mut state.pending,
            &LinePosition {
                log_id: &self.log_id,
                seq,
                timestamp,
                prev: &prev,
            },
            &caller_members,
        );
        let line_len = (state.pending.len() - start) as u64;
        state.assigned = Position {
            seq,
            hash,
            offset: state.assigned.offset + line_len,
        };
        if state.gathering {
            self.enqueued.notify_one();
        }
        drop(self.wait_until(state, seq, stage)?);

        Ok(Entry {
            log_id: self.log_id.clone(),
            seq,
            timestamp,
            prev: hex(&prev),
            action: input.action,
            user_id: input.user_id,
            resource: input.resource,
            result: input.result,
            metadata: input.metadata,
            hash: hex(&hash),
        })
    }

    /// Blocks until `seq` has reached `stage`, writing and fsyncing while no one else does.
    fn wait_until<'a>(
        &'a self,
        mut state: MutexGuard<'a, WriterState>,
        seq: u64,
        stage: Stage,
    ) -> Result<MutexGuard<'a, WriterState>, AuditError> {
        loop {
            let reached = match stage {
                Stage::Written => state.written.seq,
                Stage::Durable | Stage::Synced => state.durable.seq,
            };
            if reached >= seq {
                return Ok(state);
            }
            if let Some(cause) = &state.failure {
                return Err(self.poisoned(cause));
            }
            state = match stage {
                Stage::Written if !state.writing => self.write_pending(state),
                Stage::Durable if !state.syncing => self.sync_batch(state, true),
                Stage::Synced if !state.syncing => self.sync_batch(state, false),
                _ => self.wait_for_progress(state),
            };
        }
    }

    fn wait_for_progress<'a>(
        &'a self,
        state: MutexGuard<'a, WriterState>,
    ) -> MutexGuard<'a, WriterState> {
        self.progressed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes every pending line in one write, with the state unlocked during the I/O, so
    /// appends keep queueing meanwhile. The caller checked that no one else is writing.
    fn write_pending<'a>(
        &'a self,
        mut state: MutexGuard<'a, WriterState>,
    ) -> MutexGuard<'a, WriterState> {
        state.writing = true;
        let mut batch = std::mem::take(&mut state.pending);
        let target = state.assigned;
        drop(state);
        let written = (&self.file).write_all(&batch);
        let mut state = self.lock_state();
        match written {
            Ok(()) => state.written = target,
            Err(error) => state.failure = Some(Arc::new(error)),
        }
        if state.pending.is_empty() {
            batch.clear();
            state.pending = batch;
        }
        state.writing = false;
        self.progressed.notify_all();
        state
    }

    /// Group commit: gathers the lines of concurrent appenders (when asked), writes what is
    /// pending, fsyncs once, and wakes every waiter; writes the checkpoint when it is due. Lines appended
    /// with [`append_written`](Self::append_written) are written while the fsync runs.
    fn sync_batch<'a>(
        &'a self,
        mut state: MutexGuard<'a, WriterState>,
        gather: bool,
    ) -> MutexGuard<'a, WriterState> {
        state.syncing = true;
        if gather {
            state = self.gather(state);
        }
        // Only the lines queued so far: a stream of new ones must not keep the fsync waiting.
        let goal = state.assigned.seq;
        while state.failure.is_none() && state.written.seq < goal {
            state = if state.writing {
                self.wait_for_progress(state)
            } else {
                self.write_pending(state)
            };
        }
        let target = state.written;
        let batch_entries = target.seq - state.durable.seq;
        let mut synced = state.failure.is_none();
        if synced {
            drop(state);
            // `sync_data` is enough: the file's size, the only metadata an append changes,
            // is part of what fdatasync flushes.
            let result = self.file.sync_data();
            state = self.lock_state();
            match result {
                Ok(()) => state.durable = target,
                Err(error) => {
                    synced = false;
                    state.failure = Some(Arc::new(error));
                    state.fsync_failed = true;
                }
            }
        }
        state.expected_batch = batch_entries + (state.assigned.seq - target.seq);
        let checkpoint_due = synced
            && (target.seq.saturating_sub(state.checkpointed_seq) >= self.checkpoint_every_entries
                || state.checkpointed_at.elapsed() >= self.checkpoint_interval);
        if checkpoint_due {
            // Waiters whose lines are durable may go; the next fsync waits for this one.
            self.progressed.notify_all();
            drop(state);
            let written = self.write_checkpoint(target);
            state = self.lock_state();
            match written {
                Ok(()) => {
                    state.checkpointed_seq = target.seq;
                    state.checkpointed_at = Instant::now();
                }
                Err(error) => state.failure = Some(Arc::new(io::Error::from(error))),
            }
        }
        state.syncing = false;
        self.progressed.notify_all();
        state
    }

    /// Waits, at most [`GATHER_WINDOW`], until as many lines are queued as the last fsync
    /// saw appenders. Without it, threads released by one fsync queue just after the next
    /// leader took its batch, and concurrent appenders split into two half-size batches
    /// that alternate; a few microseconds of waiting buys a whole fsync for everyone. With
    /// one appender it never waits.
    fn gather<'a>(&'a self, mut state: MutexGuard<'a, WriterState>) -> MutexGuard<'a, WriterState> {
        let deadline = Instant::now() + GATHER_WINDOW;
        loop {
            let queued = state.assigned.seq - state.durable.seq;
            if queued >= state.expected_batch {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                // Fewer appenders than before: expect what came.
                state.expected_batch = queued;
                break;
            }
            state.gathering = true;
            state = self
                .enqueued
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.gathering = false;
        state
    }

    fn write_checkpoint(&self, at: Position) -> Result<(), hogguard_fs::Error> {
        Checkpoint::new(&self.log_id, at.seq, at.hash, at.offset, self.key.as_ref())
            .write(&self.path)
    }

    /// Writes the checkpoint now if it lags the last durable entry (appends are not
    /// blocked meanwhile, but other commits wait).
    pub fn checkpoint(&self) -> Result<(), AuditError> {
        let mut state = self.lock_state();
        loop {
            if let Some(cause) = &state.failure {
                return Err(self.poisoned(cause));
            }
            if !state.syncing {
                break;
            }
            state = self.wait_for_progress(state);
        }
        let target = state.durable;
        if target.seq == state.checkpointed_seq {
            return Ok(());
        }
        state.syncing = true;
        drop(state);
        let written = self.write_checkpoint(target);
        let mut state = self.lock_state();
        state.syncing = false;
        self.progressed.notify_all();
        match written {
            Ok(()) => {
                state.checkpointed_seq = target.seq;
                state.checkpointed_at = Instant::now();
                Ok(())
            }
            Err(error) => {
                // Kept as the cause of every later refusal, and this one's cause too.
                let cause = Arc::new(io::Error::from(error));
                state.failure = Some(Arc::clone(&cause));
                Err(AuditError::Unwritable {
                    path: hogguard_fs::sidecar(&self.path, CHECKPOINT_SUFFIX),
                    source: io::Error::new(cause.kind(), cause),
                })
            }
        }
    }

    /// Makes every line durable, writes the checkpoint and releases the lock, reporting
    /// what [`Drop`] would ignore.
    pub fn close(self) -> Result<(), AuditError> {
        self.sync()?;
        self.checkpoint()
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's id (32 lowercase hex digits), part of every entry and of shipped event
    /// uuids.
    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// Whether an fsync of the log failed. Lines written before it may then be lost even
    /// though they read back: after a failed writeback the kernel may keep the pages as if
    /// clean and report the error only once, so neither reopening the log in this process
    /// nor a later fsync proves them durable.
    pub fn fsync_failed(&self) -> bool {
        self.lock_state().fsync_failed
    }

    /// The seq of the last durable entry (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.lock_state().durable.seq
    }

    fn lock_state(&self) -> MutexGuard<'_, WriterState> {
        // The state is only changed in steps that cannot panic half-way, so a panic in
        // another thread leaves it consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn poisoned(&self, cause: &Arc<io::Error>) -> AuditError {
        AuditError::Poisoned {
            path: self.path.clone(),
            source: Arc::clone(cause),
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Best effort: `close` is the way to see this failure. A missed checkpoint only
        // leaves the last entries protected by the chain alone, and the next open writes it.
        let _ = self.sync().and_then(|()| self.checkpoint());
    }
}

/// A maker of [`AuditError::Unwritable`] for `path`.
fn unwritable(path: &Path) -> impl FnOnce(io::Error) -> AuditError {
    let path = path.to_owned();
    move |source| AuditError::Unwritable { path, source }
}

fn corrupt(path: &Path, seq: u64, kind: ProblemKind) -> AuditError {
    AuditError::Corrupt {
        path: path.to_owned(),
        problem: Problem {
            seq,
            line: None,
            kind,
        },
    }
}

/// `input` redacted, checked, and its caller-decided members serialised.
fn prepare(scanner: &Scanner, input: EntryInput) -> Result<(EntryInput, Vec<u8>), AuditError> {
    let input = redact_input(scanner, input);
    if input.action.is_empty() {
        return Err(AuditError::InvalidEntry {
            reason: "the action is empty",
        });
    }
    if input.user_id.is_empty() {
        return Err(AuditError::InvalidEntry {
            reason: "the user id is empty (PostHog needs a distinct id)",
        });
    }
    let caller_members = serialize_caller_members(
        &input.action,
        &input.user_id,
        &input.resource,
        input.result,
        &input.metadata,
    );
    if caller_members.len() + WRITER_MEMBERS_BYTES > MAX_LINE_BYTES {
        return Err(AuditError::InvalidEntry {
            reason: "the entry is longer than 64 KiB",
        });
    }
    Ok((input, caller_members))
}

/// The stored checkpoint, if any, refused when it does not go with the configured key (see
/// [`Checkpoint::check_key`]; here a keyed checkpoint needs the key too, since rewriting it
/// unkeyed would drop the protection).
fn read_checkpoint(
    log: &Path,
    key: Option<&CheckpointKey>,
    log_is_empty: bool,
) -> Result<Option<Checkpoint>, AuditError> {
    let checkpoint = match Checkpoint::read(log) {
        Ok(checkpoint) => checkpoint,
        Err(ReadFailure::File(error)) => return Err(AuditError::unreadable(error)),
        Err(ReadFailure::Malformed(reason)) => {
            return Err(corrupt(log, 0, ProblemKind::CheckpointMalformed { reason }));
        }
    };
    if let Some(checkpoint) = &checkpoint {
        checkpoint
            .check_key(key, log_is_empty)
            .map_err(|error| match error {
                KeyCheck::Mismatch(mismatch) => corrupt(
                    log,
                    checkpoint.seq,
                    ProblemKind::CheckpointMismatch(mismatch),
                ),
                KeyCheck::Missing => AuditError::CheckpointKeyMissing {
                    reason: "the checkpoint is keyed but no key is configured".to_owned(),
                },
            })?;
    }
    Ok(checkpoint)
}

/// Gives a new log its id by writing its first checkpoint (seq 0), before the log file
/// exists, so that a log file never lacks a checkpoint.
fn start_checkpoint(log: &Path, key: Option<&CheckpointKey>) -> Result<Checkpoint, AuditError> {
    let checkpoint = Checkpoint::new(&new_log_id(log)?, 0, GENESIS_DIGEST, 0, key);
    checkpoint.write(log).map_err(AuditError::unwritable)?;
    Ok(checkpoint)
}

/// Creates the empty log file durably (the file, then its directory entry).
fn create_log_file(path: &Path) -> Result<File, AuditError> {
    let file = hogguard_fs::private_file()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .and_then(|file| file.sync_all().map(|()| file))
        .map_err(unwritable(path))?;
    hogguard_fs::sync_dir(hogguard_fs::parent_dir(path)).map_err(AuditError::unwritable)?;
    Ok(file)
}

/// A fresh random log id.
fn new_log_id(path: &Path) -> Result<String, AuditError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|error| AuditError::Unwritable {
        path: path.to_owned(),
        source: io::Error::from(error),
    })?;
    Ok(hex(&id))
}

/// Bytes cut from the end of the log on open.
struct Cut {
    /// Where the cut starts (the log's new length).
    offset: u64,
    bytes: u64,
    sha256: Digest,
    reason: &'static str,
}

impl Cut {
    /// The entry recording the cut.
    fn entry_input(&self, path: &Path) -> EntryInput {
        let mut metadata = Map::new();
        metadata.insert("cut_bytes".into(), Value::from(self.bytes));
        metadata.insert("cut_offset".into(), Value::from(self.offset));
        metadata.insert("cut_sha256".into(), Value::from(hex(&self.sha256)));
        metadata.insert("reason".into(), Value::from(self.reason));
        EntryInput {
            action: RECOVERED_ACTION.to_owned(),
            user_id: SYSTEM_USER_ID.to_owned(),
            resource: path.display().to_string(),
            result: Outcome::Success,
            metadata,
        }
    }
}

/// Checks every line, from the first; replaces a torn tail by an entry recording the cut.
/// Returns where the log ends.
///
/// A torn tail is whatever follows the last newline, and the last newline-terminated line
/// too when it fails verification *and* holds a NUL byte (a write whose later pages reached
/// the disk before its earlier ones, which a crash can leave zero-filled). Only lines after
/// the checkpoint can be torn; any other line that fails is [`AuditError::Corrupt`].
fn recover(
    file: &mut File,
    path: &Path,
    checkpoint: &Checkpoint,
    key: Option<&CheckpointKey>,
    scanner: &Scanner,
) -> Result<Position, AuditError> {
    let unreadable = |source| AuditError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let mismatch = |kind| corrupt(path, checkpoint.seq, ProblemKind::CheckpointMismatch(kind));
    let length = file.metadata().map_err(unreadable)?.len();
    if length < checkpoint.offset {
        return Err(mismatch(CheckpointMismatch::AheadOfLog));
    }
    let log_id = parse_hex::<16>(checkpoint.log_id.as_bytes())
        .ok_or_else(|| mismatch(CheckpointMismatch::LogId))?;
    verify_checkpointed(file, path, checkpoint, key)?;
    let mut chain = Chain::resume(log_id, checkpoint.seq, checkpoint.hash);
    file.seek(SeekFrom::Start(checkpoint.offset))
        .map_err(unreadable)?;
    // A line at a time, each at most one byte longer than an entry; no one else appends
    // under the lock, so the file ends where it ended when it was opened.
    let mut after = BufReader::new((&*file).take(length - checkpoint.offset));
    let mut end = checkpoint.offset;
    let mut end_hash = checkpoint.hash;
    let mut torn = Vec::new();
    let reason = loop {
        if read_line(&mut after, &mut torn).map_err(unreadable)? == 0 {
            return Ok(Position {
                seq: chain.next_seq() - 1,
                hash: end_hash,
                offset: end,
            });
        }
        let Some(line) = torn.strip_suffix(b"\n") else {
            if torn.len() > MAX_LINE_BYTES {
                // Longer than any append: not a torn write.
                let kind = ProblemKind::too_long();
                return Err(corrupt(path, chain.next_seq(), kind));
            }
            break "the last line has no newline (torn write)";
        };
        let linked = chain.link(line).map(|parsed| parsed.hash);
        match linked {
            Ok(hash) => {
                end_hash = hash;
                end += torn.len() as u64;
            }
            Err(kind) => {
                let mut rest = Vec::new();
                read_line(&mut after, &mut rest).map_err(unreadable)?;
                // A line holding NUL bytes with no complete line after it: torn.
                if torn.contains(&0) && !rest.contains(&b'\n') && rest.len() <= MAX_LINE_BYTES {
                    torn.extend_from_slice(&rest);
                    break "the last line holds NUL bytes (torn write)";
                }
                let expected = chain.next_seq();
                let kind = refine_seq_problem(kind, || {
                    seq_appears(
                        &mut BufReader::new(rest.as_slice().chain(&mut after)),
                        expected,
                    )
                })
                .map_err(unreadable)?;
                return Err(corrupt(path, expected, kind));
            }
        }
    };
    let last = Position {
        seq: chain.next_seq() - 1,
        hash: end_hash,
        offset: end,
    };
    let cut = Cut {
        offset: last.offset,
        bytes: torn.len() as u64,
        sha256: Sha256::digest(&torn).into(),
        reason,
    };
    let (_, caller_members) = prepare(scanner, cut.entry_input(path))?;
    let mut line = Vec::new();
    let seq = last.seq + 1;
    let hash = write_line(
        &mut line,
        &LinePosition {
            log_id: &checkpoint.log_id,
            seq,
            timestamp: Timestamp::now(),
            prev: &last.hash,
        },
        &caller_members,
    );
    write_over_torn_tail(path, last.offset, &torn, &line).map_err(unwritable(path))?;
    Ok(Position {
        seq,
        hash,
        offset: last.offset + line.len() as u64,
    })
}

/// Puts `line` in place of the `torn` bytes at `offset`, the end of the log: written over
/// them, then the file cut to the line's end, then fsynced. The torn bytes are never cut
/// before the line recording them is in place, so a crash at any step leaves either that
/// line or bytes that the next open again finds torn, cuts and records: a line written in
/// part has no newline, and torn bytes left after a whole one have none either.
fn write_over_torn_tail(path: &Path, offset: u64, torn: &[u8], line: &[u8]) -> io::Result<()> {
    // Not the log's own descriptor: with O_APPEND, writes go to the end whatever the offset.
    let mut file = OpenOptions::new().write(true).open(path)?;
    // A torn NUL line ends with a newline; written over in part, it could become a complete
    // line without NUL bytes, which opening refuses. Cut at that newline first: what is left
    // is still a torn tail, and lies where the line goes.
    if let Some(newline) = torn.iter().position(|&b| b == b'\n') {
        file.set_len(offset + newline as u64)?;
    }
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(line)?;
    file.set_len(offset + line.len() as u64)?;
    // The size changed too: `sync_data` covers it, as it is needed to read the data back.
    file.sync_data()
}
