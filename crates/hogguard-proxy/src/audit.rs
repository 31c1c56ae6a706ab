//! Where the proxy's audit entries go: one `posthog.api.call` entry per call, allowed or
//! refused, and the entries services send to `POST /_hogguard/audit`.

use std::path::PathBuf;
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
/// after one fails (the kernel may have dropped the data), so the next append reopens it,
/// which runs its recovery, and tries once more.
pub struct LogSink {
    path: PathBuf,
    options: AuditOptions,
    fsync: AuditFsync,
    log: RwLock<Option<Arc<AuditLog>>>,
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
        })
    }

    /// The open log, or a newly opened one when the last append failed.
    fn current(&self) -> Result<Arc<AuditLog>, AuditError> {
        if let Some(log) = self
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(Arc::clone(log));
        }
        let mut slot = self.log.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = slot.as_ref() {
            return Ok(Arc::clone(log));
        }
        let log = Arc::new(AuditLog::open(&self.path, &self.options)?);
        *slot = Some(Arc::clone(&log));
        Ok(log)
    }

    /// Forgets `failed` so that the next append reopens the log; appends still holding it
    /// finish (and fail) on their own.
    fn discard(&self, failed: &Arc<AuditLog>) {
        let mut slot = self.log.write().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|log| Arc::ptr_eq(log, failed)) {
            *slot = None;
        }
    }
}

impl LogSink {
    /// Runs `write` on the open log, which is discarded when the write fails for want of
    /// disk.
    fn with_log<T>(
        &self,
        write: impl FnOnce(&AuditLog) -> Result<T, AuditError>,
    ) -> Result<T, BoxError> {
        let log = self.current()?;
        write(&log).map_err(|error| {
            if error.is_unwritable() {
                self.discard(&log);
            }
            error.into()
        })
    }
}

impl AuditSink for LogSink {
    fn append(&self, entry: EntryInput) -> Result<Recorded, BoxError> {
        match self.fsync {
            AuditFsync::Background => self
                .with_log(|log| log.append_written(entry))
                .map(|_| Recorded::Written),
            AuditFsync::BeforeAnswer => self
                .with_log(|log| log.append(entry))
                .map(|_| Recorded::Durable),
        }
    }

    fn sync(&self) -> Result<(), BoxError> {
        self.with_log(AuditLog::sync)
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
}
