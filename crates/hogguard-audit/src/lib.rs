//! hogguard's audit trail: a tamper-evident, append-only, hash-chained log of what was done
//! to PostHog credentials, durable before an action is acknowledged, recovered after a crash,
//! free of secrets whatever the caller passes, and shipped to PostHog without loss.
//!
//! ```
//! use hogguard_audit::{AuditLog, AuditOptions, EntryInput, Filter, Outcome, query, verify};
//! # use hogguard_testkit::keys::{self, Prefix};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("audit.jsonl");
//! let leaked = keys::current(Prefix::Personal); // a `phx_` personal API key
//!
//! let log = AuditLog::open(&path, &AuditOptions::default())?;
//! let entry = log.append(
//!     EntryInput::new("key.rotate", "ops@acme.test", "project 12345", Outcome::Success)
//!         .with_metadata("pasted_by_mistake", leaked.as_str()),
//! )?;
//! assert_eq!(entry.seq, 1);
//! // Redacted before it was written: only PostHog's mask (`phx_...` and the last four
//! // characters) is in the file.
//! assert_eq!(entry.metadata["pasted_by_mistake"], hogguard_secret::mask(&leaked).as_str());
//! log.close()?;
//! assert!(!std::fs::read_to_string(&path)?.contains(&leaked));
//!
//! assert!(verify(&path, None)?.is_ok());
//! let rotations: Vec<_> = query(&path, &Filter { action: Some("key.*".into()), ..Filter::default() })?
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(rotations, [entry]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the CLI calls
//!
//! - Commands log actions with [`AuditLog::open`] then [`AuditLog::append`] (one
//!   [`EntryInput`] per action); with `[audit] required = true` any open or append error
//!   means the action must not proceed.
//! - `audit verify`: [`verify()`] returns a [`Report`] with the first [`Problem`].
//! - `audit show`: [`query()`] with a [`Filter`].
//! - `audit log`: [`AuditLog::open`] + [`AuditLog::append`].
//! - `audit ship`: [`ship()`] with a [`CaptureClient`](hogguard_posthog::CaptureClient)
//!   built from the configured `phc_` project key, and the checkpoint key in
//!   [`ShipOptions::checkpoint_key`] when one is configured. Nothing ships on its own: run
//!   `audit ship` from cron, or at the end of a runbook.
//!
//! # Files
//!
//! All beside the log, mode 0600, in a directory created with mode 0700:
//!
//! | file | what | written |
//! |---|---|---|
//! | `audit.jsonl` | the entries, one JSON object per line | appended, fsynced before `append` returns |
//! | `audit.jsonl.checkpoint` | the last durable entry, keyed when configured | atomically |
//! | `audit.jsonl.lock` | `flock` of the one writer process | held while open, never deleted |
//! | `audit.jsonl.outbox` | the last entry PostHog acknowledged | atomically, after each batch |
//! | `audit.jsonl.outbox.lock` | `flock` of the one shipper | held during `ship` |
//!
//! "Atomically" means [`hogguard_fs::replace`]: write a uniquely named temporary file beside
//! `<file>`, fsync it, rename it over `<file>`, fsync the directory. A crash leaves the old or
//! the new file, never a mix. The directory and files are private whatever the umask. The log
//! and its checkpoint and outbox must be regular files (a link to one is followed): a device
//! or FIFO given as the log is refused before it is read, and every file is read one bounded
//! line at a time, so no reader waits forever or holds more than a line of a log in memory.
//!
//! ## Log line
//!
//! One compact UTF-8 JSON object per line, ended by one `\n`, with the members in this
//! order (`hash` last, always):
//!
//! ```text
//! {"v":1,"log":"<32 hex>","seq":N,"timestamp":"2025-01-02T03:04:05.678Z","prev":"<64 hex>",
//!  "action":"…","user_id":"…","resource":"…","result":"success"|"failure","metadata":{…},"hash":"<64 hex>"}
//! ```
//!
//! - `v` is 1; `log` is the log's random 128-bit id (in every line, so lines cannot be
//!   spliced in from another log); `seq` counts from 1 without gaps; `timestamp` is the
//!   writer's clock in UTC with milliseconds; `prev` is the previous line's `hash`, and
//!   [`GENESIS_PREV`] (64 zeros) for seq 1.
//! - Strings are serialised by serde_json (`"` `\` and control characters escaped, the rest
//!   raw UTF-8); `metadata`'s object keys are sorted by bytes at every depth; hex digits are
//!   lowercase; there is no whitespace.
//! - **Hash**: let `body` be the line without its newline and without its last 75 bytes
//!   (`,"hash":"` + 64 hex digits + `"}`), followed by `}`; that is the line with its `hash`
//!   member removed. Then `hash = hex(SHA-256("hogguard-audit-v1\n" ‖ body))`. The hash
//!   covers the exact bytes written, so verification never re-serialises anything. From a
//!   shell: `printf 'hogguard-audit-v1\n'; sed -E 's/,"hash":"[0-9a-f]{64}"\}$/}/'` piped into
//!   `sha256sum`, one line at a time.
//! - A line is at most [`MAX_LINE_BYTES`] (64 KiB); a longer entry is refused.
//!
//! ## Checkpoint
//!
//! `{"v":1,"log":"<32 hex>","seq":N,"hash":"<64 hex>","offset":B,"mac":"hmac-sha256:<64 hex>"|null}`
//! names the last durable entry (`seq` 0 and 64 zeros before the first one) and the log's
//! length `B` through that entry's newline. With a key, `mac` = HMAC-SHA256(key,
//! `"hogguard-audit-v1 checkpoint\n" + log + "\n" + seq + "\n" + hash + "\n" + offset + "\n"`).
//! It is written when a log is created (before the log file), when it is opened after a
//! crash, after a commit once 1000 entries or 1 s have passed since the last one
//! ([`AuditOptions::checkpoint_every`]), and on [`AuditLog::close`] or drop. It never names an
//! entry that is not yet fsynced.
//!
//! What it protects, and what it does not:
//! - Unkeyed, it catches deleting entries at the end (the checkpoint names a seq beyond the
//!   log), but an attacker who rewrites the log **and** the checkpoint consistently is not
//!   caught: a bare hash chain only detects edits by someone who does not recompute it.
//! - Keyed (the key in an environment variable named by the configuration, kept outside the
//!   log's directory), rewriting the chain up to the checkpoint is caught too, because the
//!   attacker cannot produce the MAC.
//! - Entries after the last checkpoint are chained but can be cut off the end unnoticed; the
//!   checkpoint lags by at most 1000 entries or 1 s while a writer runs, and not at all after
//!   a clean close.
//! - A key is sticky: once a checkpoint is keyed, opening without the key fails
//!   ([`AuditError::CheckpointKeyMissing`]), and opening, verifying or shipping with a key
//!   refuses an unkeyed checkpoint unless the log file is empty, since stripping the MAC
//!   is what an attacker would do (a rewritten log under an unkeyed seq-0 checkpoint would
//!   otherwise get a keyed checkpoint at the next append). Only a log never written to can
//!   gain a key.
//!
//! ## Outbox
//!
//! `{"v":1,"log":"<32 hex>","acked_seq":N,"acked_hash":"<64 hex>","offset":B}`: the last entry
//! PostHog acknowledged and where its line ends. [`ship()`] resumes after it (checking that the
//! next line links to `acked_hash`), sends up to the checkpoint's entry, and rewrites the
//! outbox after each acknowledged batch. An outbox naming another log id is ignored (the log
//! was replaced; its new entries have new uuids); one beyond the checkpoint is refused.
//!
//! # Durability and concurrency
//!
//! [`AuditLog::append`] returns only once its line, and every line before it, is written
//! and fsynced (`fdatasync`). Threads appending concurrently share fsyncs (group commit):
//! each takes the next seq under a mutex and queues its line; if no commit is running it
//! becomes the leader, waits up to 200 µs for as many lines as the previous commit saw
//! appenders (so concurrent writers share one fsync instead of splitting into two
//! alternating half-size batches; a lone writer never waits), writes every queued line in
//! one `write` and fsyncs once, then wakes the others. One fsync is in flight at a time.
//! Redaction and serialisation happen before the mutex. One process at a time
//! may write (an exclusive `flock` on `<log>.lock`); another waits up to
//! [`AuditOptions::lock_timeout`] and then fails with [`AuditError::Locked`]. A failed
//! write or fsync poisons the writer: every later append fails ([`AuditError::Poisoned`])
//! until the log is reopened, because after a failed fsync the kernel may have dropped the
//! data and retrying on the same descriptor would report false success.
//!
//! # Recovery on open
//!
//! Under the lock, before any append:
//!
//! 1. The checkpoint is read. A keyed one must verify under the configured key. If the log
//!    file is missing, a checkpoint past seq 0 means it was deleted: [`AuditError::Corrupt`].
//!    A non-empty log without a checkpoint is corrupt too.
//! 2. Every line from the first up to the checkpoint's offset is verified (hash, log id,
//!    seq, `prev`), and the last of them must be the entry the checkpoint names, with its
//!    hash. This is [`verify()`]'s check of the durable part of the log: cheap at its
//!    speed for a log of audit size, and what makes a bad line anywhere stop appends.
//! 3. Every line after it is verified the same way.
//! 4. A **torn tail** is replaced: the bytes after the last newline, and the last
//!    newline-terminated line if it fails verification *and* contains a NUL byte (pages of
//!    a write that reached the disk out of order). An entry recording the cut (action
//!    [`RECOVERED_ACTION`] (`audit.recovered`), user [`SYSTEM_USER_ID`], resource the log's
//!    path, metadata `cut_bytes`, `cut_offset`, `cut_sha256` and `reason`) is written over
//!    the torn bytes, then the file is cut to the end of that entry and fsynced. The torn
//!    bytes are never cut before their record is in place: a crash at any step leaves
//!    either the record or a tail the next open again finds torn, cuts and records. (A
//!    torn NUL line's own newline is cut first, so that writing over part of it cannot
//!    leave a complete line that opening would refuse.)
//! 5. Any other complete line that fails is tampering or media corruption: opening fails
//!    with [`AuditError::Corrupt`] naming the seq, and nothing can be appended until an
//!    operator deals with the log.
//! 6. The checkpoint is brought up to date.
//!
//! # Redaction
//!
//! Every string of an [`EntryInput`] (action, user id, resource, and metadata keys and
//! values at any depth) goes through [`hogguard_scan::Scanner::redact`] before it is
//! serialised, so the log, the returned [`Entry`] and the shipped event hold only masks
//! (`phx_...abcd`). Each metadata string is also redacted as the value of its member,
//! `name=value` with the nearest member's name, because some rules need that context: an
//! unprefixed legacy personal key is a credential next to PostHog's name
//! (`posthog_personal_api_key`), any literal is one when assigned to a PostHog-named secret
//! (`POSTHOG_API_SECRET`). The matches inside the value are masked; a match that starts in
//! the name and may reach into the value replaces the whole value by `********`. [`ship()`]
//! redacts again the same way, in case the log was written with fewer rules.
//!
//! # Shipping
//!
//! See [`ship()`]: entries become `audit` events through `/batch/`, in seq order, in batches
//! of at most 250, each with a uuid derived from the log id and seq ([`Entry::event_uuid`]),
//! retried with back-off on 5xx, 429, timeouts and cut connections, with progress persisted
//! in the outbox. Before sending, it verifies what the checkpoint covers and the checkpoint
//! (its MAC too, given [`ShipOptions::checkpoint_key`]), and sends nothing from a log that
//! fails. Only entries the checkpoint covers are sent (they are durable, so PostHog
//! never holds an entry a power cut took back from the log): close the log, or call
//! [`AuditLog::checkpoint`], before shipping what was just appended. Appends never touch
//! the network.
#![deny(missing_docs)]

mod checkpoint;
mod entry;
mod error;
mod files;
mod format;
mod log;
mod problem;
mod query;
mod redact;
mod ship;
mod time;
mod verify;

pub use checkpoint::CheckpointKey;
pub use entry::{Entry, EntryInput, Outcome};
pub use error::AuditError;
pub use format::{GENESIS_PREV, MAX_LINE_BYTES};
pub use log::{AuditLog, AuditOptions, RECOVERED_ACTION, SYSTEM_USER_ID};
pub use problem::{CheckpointMismatch, Problem, ProblemKind};
pub use query::{Entries, Filter, query};
pub use ship::{AUDIT_EVENT, ShipError, ShipOptions, ShipReport, ship};
pub use time::{InvalidTimestamp, Timestamp};
pub use verify::{CheckpointSummary, Head, Report, verify};
