//! File-system steps the log relies on: the names of the files kept beside the log, atomic
//! replacement, and advisory locks with a bounded wait.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::AuditError;

/// How often a busy lock is tried again while waiting for it.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// The file beside `log` named like it with `suffix` appended (`audit.jsonl.checkpoint`).
pub(crate) fn sidecar(log: &Path, suffix: &str) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    log.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Options for files only their owner may read: the log says who did what.
pub(crate) fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes a directory entry change (a create or a rename in `dir`) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` by `contents` so that a crash leaves either the old or the new file:
/// write a temporary file beside it, fsync it, rename it over `path`, fsync the directory.
pub(crate) fn replace_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = sidecar(path, ".tmp");
    let mut file = private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    sync_dir(parent_dir(path))
}

/// Takes an exclusive advisory lock (`flock`) on `path`, created if needed, waiting up to
/// `wait` for another holder to let go: [`AuditError::Locked`] after that. The lock lasts as
/// long as the returned file is open; the operating system releases it when the process
/// dies, however it dies.
pub(crate) fn lock_exclusive(path: &Path, wait: Duration) -> Result<File, AuditError> {
    let unwritable = |source| AuditError::Unwritable {
        path: path.to_owned(),
        source,
    };
    let file = private_file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(unwritable)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::Error(error)) => return Err(unwritable(error)),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => {
                return Err(AuditError::Locked {
                    path: path.to_owned(),
                    waited: wait,
                });
            }
            // flock has no wait with a timeout; polling keeps the wait bounded.
            Err(TryLockError::WouldBlock) => std::thread::sleep(LOCK_POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_sit_beside_the_log() {
        assert_eq!(
            sidecar(Path::new("/var/log/audit.jsonl"), ".checkpoint"),
            Path::new("/var/log/audit.jsonl.checkpoint")
        );
        assert_eq!(
            sidecar(Path::new("audit.jsonl"), ".lock"),
            Path::new("audit.jsonl.lock")
        );
        assert_eq!(parent_dir(Path::new("audit.jsonl")), Path::new("."));
    }

    #[test]
    fn a_held_lock_is_busy_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = lock_exclusive(&path, Duration::ZERO).unwrap();
        assert!(matches!(
            lock_exclusive(&path, Duration::from_millis(30)),
            Err(AuditError::Locked { .. })
        ));
        drop(held);
        lock_exclusive(&path, Duration::ZERO).unwrap();
    }
}
