//! A file-backed replay store, so a gateway restart does not reopen the replay window.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{ReplayStore, ReplayStoreError, Reservation, SeenKeys, lock, validate_key};
use crate::clock::{Clock, SystemClock};
use crate::encoding::parse_unix_seconds;

/// The file is rewritten once it holds this many lines and more than twice as many as live keys;
/// below it, compacting would cost more than the dead lines do.
const COMPACT_MIN_LINES: usize = 1024;

/// Longest line the file format allows: a 20-digit time, a space, a key and a newline.
const MAX_LINE_LEN: usize = 20 + 1 + super::MAX_KEY_LEN + 1;

/// A bounded [`ReplayStore`] that also appends every key to a file and reloads it on open.
///
/// The file holds one `<keep_until> <key>` line per delivery taken, `keep_until` in Unix
/// seconds. Each commit is written and `fsync`ed before it returns, so a crash cannot lose a key
/// used up; reservations live in memory only, so a delivery cut off by a crash is taken again
/// after the restart. On open the file is loaded, expired lines are
/// dropped and a torn last line (a crash mid-write) is ignored; the file is then rewritten with
/// the live keys only, and again whenever dead lines outnumber live ones. Rewrites go through a
/// temporary file and a rename, so the file is always complete.
///
/// Like [`MemoryReplayStore`](super::MemoryReplayStore) it holds at most `capacity` unexpired
/// keys and refuses new ones when full. An exclusive lock on a `<path>.lock` file keeps a second
/// process from using the same file. Commits block for an `fsync`: fine for webhook rates, but
/// an async server with a high delivery rate should keep that in mind.
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
    _lock: File,
}

impl FileReplayStore {
    /// Opens (or creates) the store at `path` with the default capacity and the system clock.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read, locked or rewritten, when another process holds it,
    /// or when it holds a malformed line or more unexpired keys than the capacity.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::open_with(path, super::DEFAULT_CAPACITY, &SystemClock)
    }

    /// Opens (or creates) the store at `path`, holding at most `capacity` unexpired keys and
    /// dropping lines that `clock` says have expired.
    ///
    /// # Errors
    ///
    /// As [`FileReplayStore::open`].
    pub fn open_with(
        path: impl AsRef<Path>,
        capacity: usize,
        clock: &dyn Clock,
    ) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let lock_file = lock_exclusively(&sibling(&path, ".lock"))?;
        let now = clock.now_unix_secs();
        let mut seen = SeenKeys::new(capacity);
        match File::open(&path) {
            Ok(file) => load(&path, file, &mut seen, now)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
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

    /// Returns how many keys are held, expired ones not yet swept included.
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
            state.appender = rewrite(&self.path, &state.seen).map_err(ReplayStoreError::Io)?;
            state.lines_in_file = state.seen.used().count();
        }
        // Durable before the key counts as used; marked in memory only once durable, so a
        // failed write leaves the reservation for the caller to release.
        let line = format!("{keep_until} {key}\n");
        state
            .appender
            .write_all(line.as_bytes())
            .and_then(|()| state.appender.sync_data())
            .map_err(ReplayStoreError::Io)?;
        state.seen.mark_used(key, now, keep_until)?;
        state.lines_in_file += 1;
        Ok(())
    }

    fn release(&self, key: &str) {
        lock(&self.state).seen.release(key);
    }
}

/// Returns `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn lock_exclusively(lock_path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "replay store lock {} is held by another process",
                lock_path.display()
            ),
        )),
        Err(fs::TryLockError::Error(err)) => Err(err),
    }
}

/// Reads `<keep_until> <key>` lines into `seen`, skipping expired ones and a torn last line.
fn load(path: &Path, file: File, seen: &mut SeenKeys, now: u64) -> io::Result<()> {
    let invalid = |line_number: usize, problem: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "replay store {} line {line_number}: {problem}",
                path.display()
            ),
        )
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::with_capacity(MAX_LINE_LEN);
    for line_number in 1.. {
        line.clear();
        // `take` bounds the line length, so a corrupt file cannot make us allocate without limit.
        let read = (&mut reader)
            .take(MAX_LINE_LEN as u64)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        let Some(content) = line.strip_suffix(b"\n") else {
            if read == MAX_LINE_LEN {
                return Err(invalid(line_number, "line too long"));
            }
            // A crash between write and fsync can leave a partial last line; its delivery was
            // never accepted, so dropping it is safe.
            break;
        };
        let (keep_until, key) = content
            .iter()
            .position(|&b| b == b' ')
            .map(|space| (&content[..space], &content[space + 1..]))
            .ok_or_else(|| invalid(line_number, "expected `<keep_until> <key>`"))?;
        let keep_until =
            parse_unix_seconds(keep_until).ok_or_else(|| invalid(line_number, "bad time"))?;
        let key = std::str::from_utf8(key)
            .ok()
            .filter(|key| validate_key(key).is_ok())
            .ok_or_else(|| invalid(line_number, "bad key"))?;
        if now > keep_until {
            continue;
        }
        seen.mark_used(key, now, keep_until)
            .map_err(|_| invalid(line_number, "more unexpired keys than the store's capacity"))?;
    }
    Ok(())
}

/// Replaces the file at `path` with the keys in `seen`, durably, and opens it for appending.
fn rewrite(path: &Path, seen: &SeenKeys) -> io::Result<File> {
    let temporary = sibling(path, ".compact");
    let mut writer = BufWriter::new(File::create(&temporary)?);
    for (key, keep_until) in seen.used() {
        writeln!(writer, "{keep_until} {key}")?;
    }
    writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()?;
    fs::rename(&temporary, path)?;
    sync_parent_directory(path)?;
    OpenOptions::new().append(true).open(path)
}

/// Makes a rename durable: the directory entry lives in the parent directory.
#[cfg(unix)]
fn sync_parent_directory(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// Directories cannot be opened for syncing on this platform; the rename is as durable as the
/// platform makes it.
#[cfg(not(unix))]
fn sync_parent_directory(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn open(path: &Path, capacity: usize, now: u64) -> io::Result<FileReplayStore> {
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

    #[test]
    fn a_second_process_cannot_open_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        let _store = open(&path, 10, 0).unwrap();
        let err = open(&path, 10, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
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
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{contents:?}");
        }
    }

    #[test]
    fn more_live_keys_than_capacity_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen");
        fs::write(&path, "700 k1\n700 k2\n700 k3\n").unwrap();
        assert_eq!(
            open(&path, 2, 100).unwrap_err().kind(),
            io::ErrorKind::InvalidData
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
