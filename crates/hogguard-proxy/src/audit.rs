//! Where the proxy's audit entries go: one `posthog.api.call` entry per call, allowed or
//! refused, and the entries services send to `POST /_hogguard/audit`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use hogguard_audit::{AuditError, AuditLog, AuditOptions, EntryInput};

use crate::BoxError;

/// The action of the entry each proxied call leaves.
pub const CALL_ACTION: &str = "posthog.api.call";

/// The user id of entries for calls that presented no usable client token.
pub const UNAUTHENTICATED_USER: &str = "unauthenticated";

/// How far an entry had got when [`AuditSink::append`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Durable (fsynced, for a file).
    Durable,
    /// Written (it survives a crash of the proxy), and durable after the next
    /// [`AuditSink::sync`].
    Written,
}

/// When a call's entry in an audit log file is fsynced, relative to the call's answer
/// (`[proxy] audit_fsync = "background"` or `"before-answer"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditFsync {
    /// The entry is written before the answer goes out and fsynced right after, one fsync
    /// shared by the calls of that moment: a crash of the proxy loses no entry of an answered
    /// call; a crash of the machine may lose the last few milliseconds of them. An fsync that
    /// fails makes the proxy refuse calls (with the audit required) until entries are
    /// durable again.
    #[default]
    Background,
    /// The entry is fsynced before the answer goes out: every answered call is on disk, and
    /// each call waits for the disk (an fsync's tail latency, milliseconds on many disks).
    BeforeAnswer,
}

/// Writes audit entries. [`append`](AuditSink::append) blocks until the entry is written;
/// the proxy calls it from a blocking thread, many at once, so a sink that shares one fsync
/// between concurrent appends (as [`AuditLog`](hogguard_audit::AuditLog) does) keeps
/// throughput up.
pub trait AuditSink: Send + Sync + 'static {
    /// Writes one entry; an error means it was not written.
    fn append(&self, entry: EntryInput) -> Result<Recorded, BoxError>;

    /// Makes every entry [`Recorded::Written`] so far durable; an error means some may not
    /// be.
    fn sync(&self) -> Result<(), BoxError>;
}

/// An [`AuditLog`] that is opened again after a failed write: the log refuses every append
/// after one fails, so the next append reopens it, which runs its recovery (and fsyncs what
/// it finds), and tries once more. After a failed fsync it is never reopened: the lines
/// written before it may be lost though they read back (see
/// [`AuditLog::fsync_failed`]), so every later append and sync fails until the process
/// restarts.
pub struct LogSink {
    path: PathBuf,
    options: AuditOptions,
    fsync: AuditFsync,
    log: RwLock<Option<Arc<AuditLog>>>,
    fsync_failed: AtomicBool,
}

/// Why a [`LogSink`] writes nothing now.
#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error(
        "an fsync of the audit log at {} failed, so entries written before it may not be on disk; nothing more is written to it until the proxy restarts (check the disk, then `hogguard audit verify`)",
        path.display()
    )]
    FsyncFailed { path: PathBuf },
    #[error(
        "a write to the audit log at {} failed; the next entry reopens it",
        path.display()
    )]
    Reopening { path: PathBuf },
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LogSink {
    /// Opens the log at `path`, whose entries are fsynced as `fsync` says.
    pub fn open(
        path: impl Into<PathBuf>,
        options: AuditOptions,
        fsync: AuditFsync,
    ) -> Result<LogSink, AuditError> {
        let path = path.into();
        let log = AuditLog::open(&path, &options)?;
        Ok(LogSink {
            path,
            options,
            fsync,
            log: RwLock::new(Some(Arc::new(log))),
            fsync_failed: AtomicBool::new(false),
        })
    }

    /// The open log; when the last write failed, a newly opened one if `reopen`.
    fn current(&self, reopen: bool) -> Result<Arc<AuditLog>, BoxError> {
        if self.fsync_failed.load(Ordering::SeqCst) {
            return Err(SinkError::FsyncFailed {
                path: self.path.clone(),
            }
            .into());
        }
        if let Some(log) = self
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(Arc::clone(log));
        }
        if !reopen {
            return Err(SinkError::Reopening {
                path: self.path.clone(),
            }
            .into());
        }
        let mut slot = self.log.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = slot.as_ref() {
            return Ok(Arc::clone(log));
        }
        let log = Arc::new(AuditLog::open(&self.path, &self.options)?);
        *slot = Some(Arc::clone(&log));
        Ok(log)
    }

    /// Runs `write` on the log (reopened first if `reopen` and the last write failed); a
    /// log that fails for want of disk is discarded, or kept from ever being reopened when
    /// an fsync failed.
    fn with_log<T>(
        &self,
        reopen: bool,
        write: impl FnOnce(&AuditLog) -> Result<T, AuditError>,
    ) -> Result<T, BoxError> {
        let log = self.current(reopen)?;
        write(&log).map_err(|error| {
            if log.fsync_failed() {
                self.fsync_failed.store(true, Ordering::SeqCst);
            } else if error.is_unwritable() {
                let mut slot = self.log.write().unwrap_or_else(PoisonError::into_inner);
                if slot.as_ref().is_some_and(|open| Arc::ptr_eq(open, &log)) {
                    *slot = None;
                }
            }
            error.into()
        })
    }
}

impl AuditSink for LogSink {
    fn append(&self, entry: EntryInput) -> Result<Recorded, BoxError> {
        match self.fsync {
            AuditFsync::Background => self
                .with_log(true, |log| log.append_written(entry))
                .map(|_| Recorded::Written),
            AuditFsync::BeforeAnswer => self
                .with_log(true, |log| log.append(entry))
                .map(|_| Recorded::Durable),
        }
    }

    /// Never reopens the log: the next append does, once the failure this reports has made
    /// the proxy refuse calls.
    fn sync(&self) -> Result<(), BoxError> {
        self.with_log(false, AuditLog::sync)
    }
}

impl AuditSink for AuditLog {
    fn append(&self, entry: EntryInput) -> Result<Recorded, BoxError> {
        AuditLog::append(self, entry)
            .map(|_| Recorded::Durable)
            .map_err(Into::into)
    }

    fn sync(&self) -> Result<(), BoxError> {
        AuditLog::sync(self).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use hogguard_audit::Outcome;

    use super::*;

    #[test]
    fn a_log_sink_answers_after_the_write_or_after_the_fsync_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        for (name, fsync, expected) in [
            (
                "background.jsonl",
                AuditFsync::Background,
                Recorded::Written,
            ),
            ("strict.jsonl", AuditFsync::BeforeAnswer, Recorded::Durable),
        ] {
            let path = dir.path().join(name);
            let sink = LogSink::open(&path, AuditOptions::default(), fsync).unwrap();
            let entry = EntryInput::new(CALL_ACTION, "reader", "/api/x", Outcome::Success);
            assert_eq!(sink.append(entry).unwrap(), expected, "{name}");
            sink.sync().unwrap();
            drop(sink);
            let report = hogguard_audit::verify(&path, None).unwrap();
            assert_eq!(report.entries, 1, "{name}");
            assert_eq!(report.checkpoint.map(|c| c.seq), Some(1), "{name}");
        }
    }

    #[test]
    fn a_failed_write_fails_the_sync_until_an_append_reopens_the_log() {
        let dir = tempfile::tempdir().unwrap();
        // Past the file size limit a write fails with EFBIG instead of killing the process.
        hogguard_testkit::child::ChildTest::new("audit::tests::fail_a_write_in_child")
            .under("trap '' XFSZ")
            .dir(dir.path())
            .run();
        let report = hogguard_audit::verify(dir.path().join("audit.jsonl"), None).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.entries, 2);
    }

    /// Runs only as the child of `a_failed_write_fails_the_sync_until_an_append_reopens_the_log`.
    #[test]
    fn fail_a_write_in_child() {
        let Some(dir) = hogguard_testkit::child::dir() else {
            return;
        };
        let path = dir.join("audit.jsonl");
        let entry = || EntryInput::new(CALL_ACTION, "reader", "/api/x", Outcome::Success);
        let sink = LogSink::open(&path, AuditOptions::default(), AuditFsync::Background).unwrap();
        sink.append(entry()).unwrap();
        sink.sync().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        limit_file_size(&format!("{size}:"));
        assert!(sink.append(entry()).is_err());
        // A sync does not reopen the failed log: a new one would call what the failed one
        // wrote durable without an fsync of its own.
        let error = sink.sync().unwrap_err().to_string();
        assert!(error.contains("the next entry reopens it"), "{error}");
        limit_file_size("unlimited:");
        sink.append(entry()).unwrap();
        sink.sync().unwrap();
    }

    /// Sets this process's soft limit on the size of files it writes (`prlimit --fsize`).
    fn limit_file_size(limit: &str) {
        let status = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--fsize={limit}"))
            .status()
            .unwrap();
        assert!(status.success());
    }
}
