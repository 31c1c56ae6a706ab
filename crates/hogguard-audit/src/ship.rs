//! Shipping entries to PostHog as `audit` events, with a durable outbox so that none is
//! lost and a resend is the same event.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hogguard_posthog::{CaptureClient, Event, Sleeper, ThreadSleeper};
use hogguard_scan::Scanner;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointKey, ReadFailure};
use crate::entry::Entry;
use crate::error::AuditError;
use crate::files::{MAX_SIDECAR_BYTES, read_line};
use crate::format::{Digest, FORMAT_VERSION, GENESIS_DIGEST, MAX_LINE_BYTES, hex, parse_hex};
use crate::problem::{CheckpointMismatch, Problem, ProblemKind};
use crate::redact::{default_scanner, redact_map, redact_string};
use crate::time::Timestamp;
use crate::verify::{Chain, verify_checkpointed};
use hogguard_fs::open_regular;

/// The name of the PostHog events entries become.
pub const AUDIT_EVENT: &str = "audit";

/// The outbox file's suffix after the log's name.
const OUTBOX_SUFFIX: &str = ".outbox";

/// The lock that keeps two shippers of one log apart.
const OUTBOX_LOCK_SUFFIX: &str = ".outbox.lock";

/// The largest batch: 250 lines of at most 64 KiB stay under `/batch/`'s 20 MB.
const MAX_BATCH_SIZE: usize = 250;

/// Starts the hash an event uuid is drawn from.
const UUID_DOMAIN: &[u8] = b"hogguard-audit-v1 event\n";

impl Entry {
    /// The uuid of the PostHog event this entry becomes: the same for every send of the
    /// entry, so PostHog can deduplicate resends.
    ///
    /// It has UUIDv7's layout (PostHog's recommendation, which keeps events time-ordered):
    /// the entry's timestamp in Unix milliseconds in the first 48 bits, version `7`, variant
    /// `10`, and the other 74 bits from `SHA-256("hogguard-audit-v1 event\n" ‖ log id ‖ "\n" ‖
    /// seq in decimal)`, so entries of different logs or seqs never share one.
    pub fn event_uuid(&self) -> String {
        event_uuid(&self.log_id, self.seq, self.timestamp)
    }
}

fn event_uuid(log_id: &str, seq: u64, timestamp: Timestamp) -> String {
    let mut hasher = Sha256::new();
    hasher.update(UUID_DOMAIN);
    hasher.update(log_id.as_bytes());
    hasher.update(b"\n");
    hasher.update(seq.to_string().as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    let millis = u64::try_from(timestamp.unix_millis().max(0)).unwrap_or(0);
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// How [`ship`] sends and retries.
///
/// Build the [`CaptureClient`] with `RetryPolicy::none()` to leave retrying to `ship` alone;
/// otherwise the client's own retries happen inside each of `ship`'s attempts.
///
/// ```
/// use std::time::Duration;
/// use hogguard_audit::ShipOptions;
///
/// let options = ShipOptions::default().batch_size(50).max_attempts(3).backoff(Duration::from_millis(200), Duration::from_secs(5));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct ShipOptions {
    batch_size: usize,
    max_attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
    sleeper: Arc<dyn Sleeper>,
    lock_timeout: Duration,
    scanner: Option<Arc<Scanner>>,
    key: Option<CheckpointKey>,
}

impl Default for ShipOptions {
    /// Batches of 100, 5 failed attempts in a row at most, back-off from 500 ms doubling to
    /// at most 30 s, real sleeps, a 5 s wait for another shipper, the built-in rules, no
    /// checkpoint key.
    fn default() -> ShipOptions {
        ShipOptions {
            batch_size: 100,
            max_attempts: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            sleeper: Arc::new(ThreadSleeper),
            lock_timeout: Duration::from_secs(5),
            scanner: None,
            key: None,
        }
    }
}

impl std::fmt::Debug for ShipOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShipOptions")
            .field("batch_size", &self.batch_size)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("lock_timeout", &self.lock_timeout)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ShipOptions {
    /// Sends at most `size` events per request (1 to 250).
    pub fn batch_size(mut self, size: usize) -> ShipOptions {
        self.batch_size = size.clamp(1, MAX_BATCH_SIZE);
        self
    }

    /// Gives up after `attempts` failed requests in a row (at least 1), leaving the rest
    /// pending for the next call.
    pub fn max_attempts(mut self, attempts: u32) -> ShipOptions {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Waits `first` after the first failure, doubling each time up to `max`. A throttled
    /// request waits what PostHog announces instead, when that is longer; an announced wait
    /// above `max` ends the call at once.
    pub fn backoff(mut self, first: Duration, max: Duration) -> ShipOptions {
        self.backoff = first;
        self.max_backoff = max;
        self
    }

    /// Waits with `sleeper` (tests inject one that returns at once).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> ShipOptions {
        self.sleeper = sleeper;
        self
    }

    /// How long to wait for another `ship` of the same log to finish.
    pub fn lock_timeout(mut self, wait: Duration) -> ShipOptions {
        self.lock_timeout = wait;
        self
    }

    /// Redacts with `scanner` instead of the built-in rules.
    pub fn scanner(mut self, scanner: Arc<Scanner>) -> ShipOptions {
        self.scanner = Some(scanner);
        self
    }

    /// Checks the checkpoint's MAC under `key` (the log's checkpoint key) before sending,
    /// so that a log rewritten with its checkpoint is refused rather than shipped.
    pub fn checkpoint_key(mut self, key: CheckpointKey) -> ShipOptions {
        self.key = Some(key);
        self
    }

    /// The wait before the next attempt after `failures` failures in a row, or `None` when
    /// PostHog asks for a longer wait than this call may take.
    fn delay(&self, failures: u32, error: &hogguard_posthog::Error) -> Option<Duration> {
        let backoff = self
            .backoff
            .checked_mul(1 << failures.saturating_sub(1).min(16))
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        match error {
            hogguard_posthog::Error::Throttled {
                wait: Some(wait), ..
            } if *wait > self.max_backoff => None,
            hogguard_posthog::Error::Throttled {
                wait: Some(wait), ..
            } => Some(backoff.max(*wait)),
            _ => Some(backoff),
        }
    }
}

/// What a [`ship`] call achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipReport {
    /// Entries PostHog acknowledged during this call.
    pub shipped: u64,
    /// Checkpointed entries still waiting for PostHog (0 when all are delivered).
    pub pending: u64,
    /// Entries written after the last checkpoint, which are shipped once a checkpoint
    /// covers them (see [`ship`]).
    pub awaiting_checkpoint: u64,
    /// The last seq PostHog acknowledged, over all calls.
    pub acked_seq: u64,
    /// Why the call stopped early, when entries are pending.
    pub last_error: Option<hogguard_posthog::Error>,
}

/// Why [`ship`] could not go on. Entries stay pending; nothing is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// The log or outbox could not be read or written, another shipper holds the outbox
    /// lock, or an entry to ship fails verification (nothing after it is sent).
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// PostHog refused the events for a reason retrying cannot fix (an invalid project key,
    /// a malformed request).
    #[error("PostHog refused the audit events ({pending} pending)")]
    Rejected {
        /// PostHog's answer.
        #[source]
        source: hogguard_posthog::Error,
        /// Entries still waiting.
        pending: u64,
    },
    /// The outbox says more was delivered than the log holds: the log was truncated or
    /// replaced under the same id.
    #[error("the outbox {path} does not match its log: {reason}")]
    OutboxMismatch {
        /// The outbox file.
        path: PathBuf,
        /// What does not match.
        reason: &'static str,
    },
}

/// The outbox file's one JSON line: the last entry PostHog acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxFile {
    v: u32,
    log: String,
    acked_seq: u64,
    acked_hash: String,
    /// The log's length through the acknowledged entry's newline.
    offset: u64,
}

/// Delivery progress: the last acknowledged entry and where its line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    seq: u64,
    hash: Digest,
    offset: u64,
}

/// Sends the entries of the log at `path` that PostHog has not acknowledged yet, in seq
/// order, as [`AUDIT_EVENT`] events through `/batch/`, recording each acknowledged batch in
/// the outbox (`<log>.outbox`, replaced atomically) before sending the next.
///
/// Each event has `distinct_id` = the entry's user id, the entry's timestamp, the uuid of
/// [`Entry::event_uuid`], and the entry's members as properties (strings redacted again)
/// plus `$process_person_profile: false`. Transient failures (5xx, 429, cut connections,
/// timeouts) are retried with back-off; after [`ShipOptions::max_attempts`] failures in a
/// row the call returns with the rest pending. A crash or a lost acknowledgement makes the
/// next call send the same events again, with the same uuids.
///
/// Only entries the checkpoint covers are sent: they are fsynced, so PostHog never holds an
/// entry a power cut could take back from the log. A writer covers its entries on
/// [`AuditLog::close`](crate::AuditLog::close), on
/// [`AuditLog::checkpoint`](crate::AuditLog::checkpoint), and every 1000 entries or 1 s
/// while it appends; later ones are counted in [`ShipReport::awaiting_checkpoint`].
///
/// Before anything is sent, every entry the checkpoint covers is verified from seq 1 (hash,
/// chain, log id), then the checkpoint (the entry and offset it names and, with
/// [`ShipOptions::checkpoint_key`], its MAC, as [`verify()`](crate::verify()) does): when
/// anything fails, nothing is sent and the call fails with [`AuditError::Corrupt`]. Without
/// the key, a log rewritten together with its checkpoint cannot be told from the real one.
/// `ship` takes its own lock, not the writer's, so it may run beside an open
/// [`AuditLog`](crate::AuditLog), in this process or another; it never delays appends.
pub fn ship(
    path: impl AsRef<Path>,
    client: &CaptureClient,
    options: &ShipOptions,
) -> Result<ShipReport, ShipError> {
    let path = path.as_ref();
    // Opened first: a log that is no regular file gets no lock file beside it.
    let mut file =
        open_regular(path, OpenOptions::new().read(true)).map_err(AuditError::unreadable)?;
    let _lock = hogguard_fs::Lock::acquire(
        &hogguard_fs::sidecar(path, OUTBOX_LOCK_SUFFIX),
        options.lock_timeout,
    )
    .map_err(AuditError::unwritable)?;
    let scanner = match &options.scanner {
        Some(scanner) => Arc::clone(scanner),
        None => default_scanner()?,
    };
    let unreadable = |source| AuditError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let checkpoint = match Checkpoint::read(path) {
        Ok(Some(checkpoint)) => checkpoint,
        Ok(None) => return Err(corrupt(path, 0, ProblemKind::CheckpointMissing).into()),
        Err(ReadFailure::File(error)) => return Err(AuditError::unreadable(error).into()),
        Err(ReadFailure::Malformed(reason)) => {
            return Err(corrupt(path, 0, ProblemKind::CheckpointMalformed { reason }).into());
        }
    };
    let log_id = parse_hex::<16>(checkpoint.log_id.as_bytes()).ok_or_else(|| {
        corrupt(
            path,
            checkpoint.seq,
            ProblemKind::CheckpointMismatch(CheckpointMismatch::LogId),
        )
    })?;
    let outbox_path = hogguard_fs::sidecar(path, OUTBOX_SUFFIX);
    let mut acked = match read_outbox(&outbox_path)? {
        // An outbox of another log id belongs to a log this one replaced: start over.
        Some((outbox_log, progress)) if outbox_log == checkpoint.log_id => progress,
        _ => Progress {
            seq: 0,
            hash: GENESIS_DIGEST,
            offset: 0,
        },
    };
    let length = file.metadata().map_err(unreadable)?.len();
    if acked.offset > checkpoint.offset || checkpoint.offset > length {
        return Err(ShipError::OutboxMismatch {
            path: outbox_path,
            reason: "it acknowledges more than the log and its checkpoint hold",
        });
    }
    verify_checkpointed(&file, path, &checkpoint, options.key.as_ref())?;
    file.seek(SeekFrom::Start(acked.offset))
        .map_err(unreadable)?;
    let mut next = Batcher {
        // Nothing past the checkpoint is read.
        reader: BufReader::with_capacity(1 << 16, file.take(checkpoint.offset - acked.offset)),
        chain: Chain::resume(log_id, acked.seq, acked.hash),
        offset: acked.offset,
        path,
        scanner: &scanner,
    };
    let mut report = ShipReport {
        shipped: 0,
        pending: 0,
        awaiting_checkpoint: 0,
        acked_seq: acked.seq,
        last_error: None,
    };
    let mut failures = 0;
    loop {
        let batch = next.batch(options.batch_size)?;
        if batch.events.is_empty() {
            if (acked.seq, acked.hash) != (checkpoint.seq, checkpoint.hash) {
                let kind = ProblemKind::CheckpointMismatch(CheckpointMismatch::Hash);
                return Err(corrupt(path, checkpoint.seq, kind).into());
            }
            report.awaiting_checkpoint = next.lines_after_checkpoint()?;
            return Ok(report);
        }
        loop {
            match client.capture_batch(&batch.events) {
                Ok(()) => {
                    acked = batch.end;
                    write_outbox(&outbox_path, &checkpoint.log_id, acked)
                        .map_err(AuditError::unwritable)?;
                    report.shipped += batch.events.len() as u64;
                    report.acked_seq = acked.seq;
                    failures = 0;
                    break;
                }
                Err(error) if error.is_transient() => {
                    failures += 1;
                    match options.delay(failures, &error) {
                        Some(delay) if failures < options.max_attempts => {
                            options.sleeper.sleep(delay);
                        }
                        _ => {
                            report.pending = batch.events.len() as u64 + next.remaining()?;
                            report.awaiting_checkpoint = next.lines_after_checkpoint()?;
                            report.last_error = Some(error);
                            return Ok(report);
                        }
                    }
                }
                Err(source) => {
                    return Err(ShipError::Rejected {
                        source,
                        pending: batch.events.len() as u64 + next.remaining()?,
                    });
                }
            }
        }
    }
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

/// One request's worth of events and the progress it stands for once acknowledged.
struct Batch {
    events: Vec<Event>,
    end: Progress,
}

/// Reads verified entries after the acknowledged one and turns them into events.
struct Batcher<'a> {
    reader: BufReader<io::Take<File>>,
    chain: Chain,
    offset: u64,
    path: &'a Path,
    scanner: &'a Scanner,
}

impl Batcher<'_> {
    /// Up to `size` events for the next complete lines; none at the end of the log.
    fn batch(&mut self, size: usize) -> Result<Batch, ShipError> {
        let mut events = Vec::with_capacity(size);
        let mut end = Progress {
            seq: self.chain.next_seq() - 1,
            hash: self.chain.last_hash(),
            offset: self.offset,
        };
        let mut line = Vec::with_capacity(1024);
        while events.len() < size {
            let read = read_line(&mut self.reader, &mut line).map_err(|source| {
                AuditError::Unreadable {
                    path: self.path.to_owned(),
                    source,
                }
            })?;
            let expected = self.chain.next_seq();
            // Only a checkpoint whose offset is not a line's end cuts a line short; the check
            // against the checkpoint after the last batch reports it.
            let Some(complete) = line.strip_suffix(b"\n") else {
                if line.len() > MAX_LINE_BYTES {
                    let kind = ProblemKind::too_long();
                    return Err(corrupt(self.path, expected, kind).into());
                }
                break;
            };
            let parsed = self
                .chain
                .link(complete)
                .map_err(|kind| corrupt(self.path, expected, kind))?;
            self.offset += read as u64;
            end = Progress {
                seq: parsed.seq,
                hash: parsed.hash,
                offset: self.offset,
            };
            events.push(event(self.scanner, parsed.to_entry()));
        }
        Ok(Batch { events, end })
    }

    /// How many checkpointed lines are left unread.
    fn remaining(&mut self) -> Result<u64, ShipError> {
        count_lines(&mut self.reader, self.path)
    }

    /// How many complete lines follow the checkpoint.
    fn lines_after_checkpoint(&mut self) -> Result<u64, ShipError> {
        self.remaining()?;
        let mut after = BufReader::new(self.reader.get_mut().get_mut());
        count_lines(&mut after, self.path)
    }
}

/// The event of `entry`, its strings redacted again in case the log was written with fewer
/// rules than `scanner` has.
fn event(scanner: &Scanner, entry: Entry) -> Event {
    let uuid = entry.event_uuid();
    let timestamp = entry.timestamp.to_string();
    let user_id = redact_string(scanner, entry.user_id);
    Event::new(AUDIT_EVENT, user_id.clone())
        .with_uuid(uuid)
        .with_timestamp(timestamp.clone())
        .with_property("$process_person_profile", false)
        .with_property("log", entry.log_id)
        .with_property("seq", entry.seq)
        .with_property("timestamp", timestamp)
        .with_property("prev", entry.prev)
        .with_property("action", redact_string(scanner, entry.action))
        .with_property("user_id", user_id)
        .with_property("resource", redact_string(scanner, entry.resource))
        .with_property("result", entry.result.as_str())
        .with_property(
            "metadata",
            Value::Object(redact_map(scanner, entry.metadata)),
        )
        .with_property("hash", entry.hash)
}

/// How many newlines `reader` has left.
fn count_lines(reader: &mut impl BufRead, path: &Path) -> Result<u64, ShipError> {
    let mut count = 0;
    loop {
        let buffer = reader.fill_buf().map_err(|source| AuditError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        if buffer.is_empty() {
            return Ok(count);
        }
        count += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let consumed = buffer.len();
        reader.consume(consumed);
    }
}

/// The outbox's log id and progress, or `None` when there is no outbox yet.
fn read_outbox(path: &Path) -> Result<Option<(String, Progress)>, ShipError> {
    let bytes = match hogguard_fs::read_regular(path, MAX_SIDECAR_BYTES) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(AuditError::unreadable(error).into()),
    };
    let mismatch = |reason| ShipError::OutboxMismatch {
        path: path.to_owned(),
        reason,
    };
    let file: OutboxFile =
        serde_json::from_slice(&bytes).map_err(|_| mismatch("it is not an outbox"))?;
    if file.v != FORMAT_VERSION {
        return Err(mismatch("unknown format version"));
    }
    let hash = parse_hex::<32>(file.acked_hash.as_bytes())
        .ok_or_else(|| mismatch("acked_hash is not 64 lowercase hex digits"))?;
    Ok(Some((
        file.log,
        Progress {
            seq: file.acked_seq,
            hash,
            offset: file.offset,
        },
    )))
}

fn write_outbox(path: &Path, log_id: &str, progress: Progress) -> Result<(), hogguard_fs::Error> {
    let file = OutboxFile {
        v: FORMAT_VERSION,
        log: log_id.to_owned(),
        acked_seq: progress.seq,
        acked_hash: hex(&progress.hash),
        offset: progress.offset,
    };
    let mut line = serde_json::to_vec(&file).expect("an outbox serialises");
    line.push(b'\n');
    hogguard_fs::replace(path, &line, hogguard_fs::PRIVATE_FILE_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_uuids_are_deterministic_version_7_and_distinct_per_log_and_seq() {
        let at = Timestamp::from_unix_millis(0x0123_4567_89ab);
        let log = "0123456789abcdef0123456789abcdef";
        let uuid = event_uuid(log, 1, at);
        assert_eq!(uuid, event_uuid(log, 1, at));
        assert_eq!(&uuid[..13], "01234567-89ab");
        assert_eq!(&uuid[14..15], "7");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{uuid}");
        assert_ne!(uuid, event_uuid(log, 2, at));
        assert_ne!(uuid, event_uuid("1123456789abcdef0123456789abcdef", 1, at));
    }

    /// An entry written raw (by a writer with fewer rules, or before context redaction)
    /// leaves as masks, the member names giving the context.
    #[test]
    fn events_redact_metadata_members_again_with_their_names() {
        let legacy = "hT4kQ9xZr2LmW7vB1nC8pS3dF6gJ0yE5uAtsK2oPqRw";
        let secret = "Zq81LmvT0xWy7KpQ2sNdR4";
        let metadata = serde_json::json!({
            "posthog_personal_api_key": legacy,
            "deploy": {"POSTHOG_API_SECRET": secret},
        });
        let entry = Entry {
            log_id: "0123456789abcdef0123456789abcdef".to_owned(),
            seq: 1,
            timestamp: Timestamp::from_unix_millis(0),
            prev: crate::GENESIS_PREV.to_owned(),
            action: "key.rotate".to_owned(),
            user_id: "ops".to_owned(),
            resource: "project 1".to_owned(),
            result: crate::Outcome::Success,
            metadata: metadata.as_object().unwrap().clone(),
            hash: crate::GENESIS_PREV.to_owned(),
        };
        let event = event(&default_scanner().unwrap(), entry);
        let sent = serde_json::to_string(&event).unwrap();
        assert!(!sent.contains(legacy) && !sent.contains(secret), "{sent}");
        assert_eq!(
            event.properties()["metadata"]["deploy"]["POSTHOG_API_SECRET"],
            hogguard_secret::mask(secret).as_str()
        );
    }

    #[test]
    fn backoff_doubles_honours_announced_waits_and_gives_up_on_long_ones() {
        let options =
            ShipOptions::default().backoff(Duration::from_millis(100), Duration::from_secs(1));
        let server = hogguard_posthog::Error::Server {
            status: 503,
            detail: String::new(),
        };
        let delays: Vec<_> = (1..=5).map(|n| options.delay(n, &server)).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            delays,
            [
                Some(ms(100)),
                Some(ms(200)),
                Some(ms(400)),
                Some(ms(800)),
                Some(ms(1000))
            ]
        );
        let throttled = |secs| hogguard_posthog::Error::Throttled {
            wait: Some(Duration::from_secs(secs)),
            detail: String::new(),
        };
        assert_eq!(
            options.delay(1, &throttled(1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(options.delay(1, &throttled(2)), None);
    }
}
