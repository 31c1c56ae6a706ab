//! A file-backed replay store, so a gateway restart does not reopen the replay window.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use hogguard_fs::{Lock, PRIVATE_FILE_MODE};

use super::{ReplayStore, ReplayStoreError, Reservation, SeenKeys, lock, validate_key};
use crate::clock::{Clock, SystemClock};
use crate::encoding::parse_unix_seconds;

/// The file is rewritten once it holds this many lines and more than twice as many as live keys;
/// below it, compacting would cost more than the dead lines do.
const COMPACT_MIN_LINES: usize = 1024;

/// Longest line the file format allows: a 20-digit time, a space, a key and a newline.
const MAX_LINE_LEN: usize = 20 + 1 + super::MAX_KEY_LEN + 1;

/// A bounded [`ReplayStore`] that also appends every key used up to a file and reloads it on
/// open.
///
/// The file holds one `<keep_until> <key>` line per delivery taken, `keep_until` in Unix
/// seconds. Each commit is written and `fsync`ed before it returns, so a crash cannot lose a key
/// used up; reservations live in memory only, so a delivery cut off by a crash is taken again
/// after the restart. On open the file is loaded, expired lines are dropped and a torn last line
/// (a crash mid-write) is ignored; the file is then rewritten with the live keys only, and again
/// whenever dead lines outnumber live ones. Rewrites replace the file atomically
/// ([`hogguard_fs::replace`]), so it is always complete, and the temporary file of a rewrite cut
/// off by a crash is removed on the next open.
///
/// The file, its `<path>.lock` and the directories created for them are private to their owner
/// whatever the umask. Like [`MemoryReplayStore`](super::MemoryReplayStore) it holds at most
/// `capacity` keys and refuses new ones when full. An exclusive lock on `<path>.lock` keeps a
/// second process from using the same file. Commits block for an `fsync`: fine for webhook
/// rates, but an async server with a high delivery rate should keep that in mind.
#[derive(Debug)]
pub struct FileReplayStore {
    path: PathBuf,
    state: Mutex<FileState>,
}

#[derive(Debug)]
struct FileState {
    seen: SeenKeys,
    appender: File,
    lines_in_file: usize,
    /// Held, never read: the lock lasts as long as the handle.
    _lock: Lock,
}

impl FileReplayStore {
    /// Opens (or creates) the store at `path` with the default capacity and the system clock.
    ///
    /// # Errors
    ///
    /// Fails when the file or its directory cannot be created, read, locked or rewritten, when
    /// another process holds it, or when it holds a malformed line or more unexpired keys than
    /// the capacity.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FileStoreError> {
        Self::open_with(path, super::DEFAULT_CAPACITY, &SystemClock)
    }

    /// Opens (or creates) the store at `path`, holding at most `capacity` keys and dropping
    /// lines that `clock` says have expired.
    ///
    /// # Errors
    ///
    /// As [`FileReplayStore::open`].
    pub fn open_with(
        path: impl AsRef<Path>,
        capacity: usize,
        clock: &dyn Clock,
    ) -> Result<Self, FileStoreError> {
        let path = path.as_ref().to_path_buf();
        hogguard_fs::create_private_dir_all(hogguard_fs::parent_dir(&path))?;
        // No waiting: a second gateway on the same file is a configuration mistake.
        let lock_file = Lock::acquire(&hogguard_fs::sidecar(&path, ".lock"), Duration::ZERO)?;
        // A rewrite cut off by a crash left its temporary file; the lock says no one else writes.
        hogguard_fs::remove_leftover_temporaries(&path)?;
        let now = clock.now_unix_secs();
        let mut seen = SeenKeys::new(capacity);
        match hogguard_fs::read_regular(&path, largest_file(capacity)) {
            Ok(contents) => load(&path, &contents, &mut seen, now)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        // Start from a clean file: no dead lines, no torn tail for the next append to glue onto.
        let appender = rewrite(&path, &seen)?;
        Ok(Self {
            path,
            state: Mutex::new(FileState {
                lines_in_file: seen.used().count(),
                seen,
                appender,
                _lock: lock_file,
            }),
        })
    }

    /// Returns the path of the backing file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns how many keys are held, in flight or used (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        lock(&self.state).seen.len()
    }

    /// Returns whether the store holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for FileReplayStore {
    fn reserve(&self, key: &str, now: u64) -> Result<Reservation, ReplayStoreError> {
        validate_key(key)?;
        // In memory only: a reservation that never completes must not use the key up on disk.
        lock(&self.state).seen.reserve(key, now)
    }

    fn commit(&self, key: &str, now: u64, keep_until: u64) -> Result<(), ReplayStoreError> {
        validate_key(key)?;
        let mut state = lock(&self.state);
        state.seen.make_room(key, now)?;
        if state.lines_in_file >= COMPACT_MIN_LINES && state.lines_in_file > 2 * state.seen.len() {
            // Before the append, so a failed rewrite leaves this delivery uncommitted instead of
            // recorded but reported as failed.
            state.seen.remove_expired(now);
            state.appender =
                rewrite(&self.path, &state.seen).map_err(|err| ReplayStoreError::Io(err.into()))?;
            state.lines_in_file = state.seen.used().count();
        }
        // Durable before the key counts as used; marked in memory only once durable, so a
        // failed write leaves the reservation for the caller to release.
        let line = format!("{keep_until} {key}\n");
        state
            .appender
            .write_all(line.as_bytes())
            .and_then(|()| state.appender.sync_data())
            .map_err(|source| {
                ReplayStoreError::Io(file_error("append to", &self.path, source).into())
            })?;
        state.seen.mark_used(key, now, keep_until)?;
        state.lines_in_file += 1;
        Ok(())
    }

    fn release(&self, key: &str) {
        lock(&self.state).seen.release(key);
    }
}

/// Why [`FileReplayStore::open`] could not open a store.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileStoreError {
    /// The file, its lock or its directory could not be created, locked, read or rewritten;
    /// another process holding the lock is [`hogguard_fs::Error::Locked`].
    File(hogguard_fs::Error),
    /// A line of the file is not `<keep_until> <key>`.
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it, in a few words.
        problem: &'static str,
    },
    /// The file holds more unexpired keys than the store may hold.
    OverCapacity {
        /// The file.
        path: PathBuf,
        /// The store's capacity.
        capacity: usize,
    },
}

impl FileStoreError {
    /// Returns the path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(err) => err.path(),
            Self::Malformed { path, .. } | Self::OverCapacity { path, .. } => path,
        }
    }
}

impl fmt::Display for FileStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the file error names the operation and the path; its source says why.
            Self::File(err) => err.fmt(f),
            Self::Malformed {
                path,
                line,
                problem,
            } => write!(
                f,
                "line {line} of {} is malformed: {problem}",
                path.display()
            ),
            Self::OverCapacity { path, capacity } => write!(
                f,
                "{} holds more unexpired deliveries than the capacity of {capacity}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for FileStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::File(err) => err.source(),
            Self::Malformed { .. } | Self::OverCapacity { .. } => None,
        }
    }
}

impl From<hogguard_fs::Error> for FileStoreError {
    fn from(err: hogguard_fs::Error) -> Self {
        Self::File(err)
    }
}

/// An I/O failure on `path`, named the way `hogguard-fs` names its own.
fn file_error(action: &'static str, path: &Path, source: io::Error) -> hogguard_fs::Error {
    hogguard_fs::Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The largest file a store of `capacity` keys writes: compaction keeps the lines at most twice
/// the keys held (or [`COMPACT_MIN_LINES`]), each at most [`MAX_LINE_LEN`] bytes. A larger file
/// was not written by a store of this capacity, and is refused rather than read.
fn largest_file(capacity: usize) -> u64 {
    let lines = capacity
        .saturating_mul(2)
        .max(COMPACT_MIN_LINES)
        .saturating_add(1);
    (lines as u64).saturating_mul(MAX_LINE_LEN as u64)
}

/// Reads `<keep_until> <key>` lines into `seen`, skipping expired ones and a torn last line.
fn load(path: &Path, contents: &[u8], seen: &mut SeenKeys, now: u64) -> Result<(), FileStoreError> {
    let malformed = |line: usize, problem| FileStoreError::Malformed {
        path: path.to_owned(),
        line,
        problem,
    };
    let mut rest = contents;
    for line_number in 1.. {
        if rest.is_empty() {
            break;
        }
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_LINE_LEN {
                return Err(malformed(line_number, "line too long"));
            }
            // A crash between write and fsync can leave a partial last line; its delivery was
            // never reported taken, so dropping it is safe.
            break;
        };
        let content = &rest[..end];
        rest = &rest[end + 1..];
        if content.len() >= MAX_LINE_LEN {
            return Err(malformed(line_number, "line too long"));
        }
        let (keep_until, key) = content
            .iter()
            .position(|&b| b == b' ')
            .map(|space| (&content[..space], &content[space + 1..]))
            .ok_or_else(|| malformed(line_number, "expected `<keep_until> <key>`"))?;
        let keep_until =
            parse_unix_seconds(keep_until).ok_or_else(|| malformed(line_number, "bad time"))?;
        let key = std::str::from_utf8(key)
            .ok()
            .filter(|key| validate_key(key).is_ok())
            .ok_or_else(|| malformed(line_number, "bad key"))?;
        if now > keep_until {
            continue;
        }
        seen.mark_used(key, now, keep_until)
            .map_err(|_| FileStoreError::OverCapacity {
                path: path.to_owned(),
                capacity: seen.capacity,
            })?;
    }
    Ok(())
}

/// Replaces the file at `path` with the keys used in `seen`, durably and privately, and opens
/// it for appending.
fn rewrite(path: &Path, seen: &SeenKeys) -> Result<File, hogguard_fs::Error> {
    let mut contents = Vec::new();
    for (key, keep_until) in seen.used() {
        // Writing to a vector cannot fail.
        let _ = writeln!(contents, "{keep_until} {key}");
    }
    hogguard_fs::replace(path, &contents, PRIVATE_FILE_MODE)?;
    hogguard_fs::open_regular(path, OpenOptions::new().append(true))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use hogguard_testkit::errors::assert_no_repeated_segment;

    use super::*;
    use crate::clock::ManualClock;

    fn open(path: &Path, capacity: usize, now: u64) -> Result<FileReplayStore, FileStoreError> {
        FileReplayStore::open_with(path, capacity, &ManualClock::new(now))
    }

    #[test]
    fn keys_survive_a_restart_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        let store = open(&path, 10, 100).unwrap();
        assert_eq!(store.reserve("k1", 100).ok(), Some(Reservation::Reserved));
        store.commit("k1", 100, 700).unwrap();
        store.commit("k2", 100, 200).unwrap();
        drop(store);

        let reopened = open(&path, 10, 150).unwrap();
        assert_eq!(reopened.len(), 2);
        assert_eq!(reopened.reserve("k1", 150).ok(), Some(Reservation::Used));
        drop(reopened);

        // By 201, k2 has expired and is dropped from the rewritten file.
        let later = open(&path, 10, 201).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), "700 k1\n");
    }

    #[test]
    fn a_reservation_cut_off_by_a_crash_does_not_use_the_key_up() {
        // See: issue 11 point 11 (the gateway stopped mid-request).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        let store = open(&path, 10, 100).unwrap();
        assert_eq!(store.reserve("k1", 100).ok(), Some(Reservation::Reserved));
        assert_eq!(store.reserve("k1", 100).ok(), Some(Reservation::InFlight));
        // The process dies with the delivery in flight: nothing was released.
        drop(store);
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        let reopened = open(&path, 10, 100).unwrap();
        assert_eq!(
            reopened.reserve("k1", 100).ok(),
            Some(Reservation::Reserved)
        );
    }

    #[test]
    fn a_released_key_is_free_and_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        let store = open(&path, 10, 100).unwrap();
        assert_eq!(store.reserve("k1", 100).ok(), Some(Reservation::Reserved));
        store.release("k1");
        assert!(store.is_empty());
        assert_eq!(store.reserve("k1", 100).ok(), Some(Reservation::Reserved));
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
    }

    #[cfg(unix)]
    #[test]
    fn the_store_is_private_whatever_the_umask() {
        // See: issue 11 point 15 (under `umask 000` the store was 0666). The umask belongs to
        // the process, so the test runs again in a child with `umask 000`.
        let dir = tempfile::tempdir().unwrap();
        hogguard_testkit::child::ChildTest::new(
            "replay::file::tests::make_a_store_under_umask_000_in_child",
        )
        .under("umask 000")
        .dir(dir.path())
        .run();
    }

    /// Runs only as the child of `the_store_is_private_whatever_the_umask`.
    #[cfg(unix)]
    #[test]
    fn make_a_store_under_umask_000_in_child() {
        use std::os::unix::fs::PermissionsExt as _;
        let Some(dir) = hogguard_testkit::child::dir() else {
            return;
        };
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let probe = dir.join("probe");
        File::create(&probe).unwrap();
        assert_eq!(mode(&probe), 0o666, "not running under umask 000");

        let path = dir.join("state/replay/seen");
        let store = open(&path, 10, 100).unwrap();
        store.commit("k1", 100, 700).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("state/replay/seen.lock")), 0o600);
        assert_eq!(mode(&dir.join("state/replay")), 0o700);
        assert_eq!(mode(&dir.join("state")), 0o700);
        drop(store);
        // Rewritten on open: still private.
        drop(open(&path, 10, 100).unwrap());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_second_process_cannot_open_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        let _store = open(&path, 10, 0).unwrap();
        let err = open(&path, 10, 0).unwrap_err();
        assert!(
            matches!(
                &err,
                FileStoreError::File(hogguard_fs::Error::Locked { .. })
            ),
            "{err:?}"
        );
        assert_eq!(err.path(), dir.path().join("seen.lock"));
        assert_no_repeated_segment(&err);
    }

    #[test]
    fn a_path_that_is_not_a_regular_file_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path(), 10, 0).unwrap_err();
        assert!(
            matches!(
                &err,
                FileStoreError::File(hogguard_fs::Error::NotRegularFile { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_rewrite_cut_off_by_a_crash_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        drop(open(&path, 10, 100).unwrap());
        // What a crash between writing and renaming a compacted file leaves.
        let leftover = dir.path().join(".seen.0123456789abcdef.tmp");
        fs::write(&leftover, "700 k1\n").unwrap();
        let store = open(&path, 10, 100).unwrap();
        assert!(!leftover.exists());
        assert!(store.is_empty());
    }

    #[test]
    fn torn_last_line_is_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        fs::write(&path, "700 k1\n700 k2").unwrap();
        let store = open(&path, 10, 100).unwrap();
        assert_eq!(store.len(), 1);
        // The next append starts on a fresh line.
        store.commit("k3", 100, 700).unwrap();
        drop(store);
        assert_eq!(open(&path, 10, 100).unwrap().len(), 2);
    }

    #[test]
    fn malformed_lines_refuse_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        for contents in [
            "700\n".to_owned(),
            "soon k1\n".to_owned(),
            "700 bad key\n".to_owned(),
            format!("700 {}\n", "k".repeat(MAX_LINE_LEN)),
        ] {
            fs::write(&path, &contents).unwrap();
            let err = open(&path, 10, 100).unwrap_err();
            assert!(
                matches!(&err, FileStoreError::Malformed { line: 1, .. }),
                "{contents:?}: {err:?}"
            );
            assert!(err.to_string().starts_with("line 1 of "), "{err}");
            assert_no_repeated_segment(&err);
        }
    }

    #[test]
    fn more_live_keys_than_capacity_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        fs::write(&path, "700 k1\n700 k2\n700 k3\n").unwrap();
        let err = open(&path, 2, 100).unwrap_err();
        assert!(
            matches!(err, FileStoreError::OverCapacity { capacity: 2, .. }),
            "{err:?}"
        );
        assert_eq!(open(&path, 3, 100).unwrap().len(), 3);
    }

    #[test]
    fn full_store_refuses_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        let store = open(&path, 1, 100).unwrap();
        store.commit("k1", 100, 700).unwrap();
        assert!(matches!(
            store.reserve("k2", 100),
            Err(ReplayStoreError::Full { capacity: 1 })
        ));
        assert!(matches!(
            store.commit("k2", 100, 700),
            Err(ReplayStoreError::Full { capacity: 1 })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "700 k1\n");
    }

    #[test]
    fn file_is_compacted_when_dead_lines_dominate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        let store = open(&path, 10, 0).unwrap();
        // Each key expires immediately after the next insert's `now`.
        for i in 0..COMPACT_MIN_LINES as u64 + 1 {
            store.commit(&format!("k{i}"), i, i).unwrap();
        }
        let lines = fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 10, "file still has {lines} lines");
    }
}
