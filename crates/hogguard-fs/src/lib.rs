//! Crash-safe file writes for hogguard: the one place that replaces, locks, reads and creates
//! the files hogguard keeps.
//!
//! - [`replace`] swaps a file's contents so that a crash leaves the old file or the new one,
//!   never a mix, and keeps the owner, group and mode of the file it replaces.
//! - [`Lock`] is an exclusive advisory lock held through an open file, released by the
//!   operating system when the process dies, however it dies.
//! - [`read_regular`] reads a file that must be a regular file of bounded size, and
//!   [`open_regular`] opens one for reading a piece at a time, so that `/dev/zero` or a FIFO
//!   given as a configuration or state file is an error, not a hang.
//! - [`create_private_dir_all`] and [`private_file`] create state only its owner can read,
//!   whatever the umask.
//!
//! Only the standard library is used, so every crate can depend on this one.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::hash::{BuildHasher as _, Hasher as _, RandomState};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Mode of files only their owner may read or write.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of directories only their owner may enter.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of an ordinary new file before the umask narrows it.
pub const DEFAULT_FILE_MODE: u32 = 0o666;
/// Mode of a new executable (a git hook) before the umask narrows it.
pub const EXECUTABLE_FILE_MODE: u32 = 0o777;

/// How often a busy lock is tried again while waiting for it.
const LOCK_POLL: Duration = Duration::from_millis(10);
/// How many temporary names are tried before giving up on a directory.
const TEMP_ATTEMPTS: u32 = 64;

/// A file operation that failed, with the path it was about. The message says what failed;
/// [`std::error::Error::source`] says why.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    Io {
        /// What was being done, as a verb phrase (`write`, `sync the directory of`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The path exists but is not a regular file (a directory, a device, a FIFO, a socket).
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than the caller allows.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// Another process holds the lock and did not let go in time.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long hogguard waited.
        waited: Duration,
    },
}

impl Error {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.to_owned();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::NotRegularFile { path }
            | Error::TooLarge { path, .. }
            | Error::Locked { path, .. } => path,
        }
    }

    /// The kind of the underlying I/O error; `WouldBlock` for a busy lock, `InvalidInput` for
    /// a path that is not a regular file or is too large.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Io { source, .. } => source.kind(),
            Error::NotRegularFile { .. } | Error::TooLarge { .. } => io::ErrorKind::InvalidInput,
            Error::Locked { .. } => io::ErrorKind::WouldBlock,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { action, path, .. } => write!(f, "cannot {action} {}", path.display()),
            Error::NotRegularFile { path } => {
                write!(f, "{} is not a regular file", path.display())
            }
            Error::TooLarge { path, limit } => {
                write!(f, "{} is larger than {limit} bytes", path.display())
            }
            Error::Locked { path, waited } => write!(
                f,
                "{} is locked by another hogguard process (waited {:.1}s)",
                path.display(),
                waited.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        io::Error::new(error.kind(), error)
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The file beside `path` named like it with `suffix` appended (`audit.jsonl.lock`).
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Makes a directory entry change (a create or a rename in `dir`) durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(Error::io("sync the directory", dir))
}

/// Options that create a file readable and writable by its owner only (0600, or narrower
/// under a stricter umask). An existing file keeps its mode.
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, PRIVATE_FILE_MODE);
    options
}

/// Creates `dir` and its missing parents; the directories it creates are 0700 whatever the
/// umask, and the new entries are made durable. Existing directories are left as they are.
pub fn create_private_dir_all(dir: &Path) -> Result<(), Error> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    create_private_dir_all(parent_dir(dir))?;
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, PRIVATE_DIR_MODE);
    match builder.create(dir) {
        Ok(()) => sync_dir(parent_dir(dir)),
        // Another process made it between the check and the create.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(error) => Err(Error::io("create the directory", dir)(error)),
    }
}

/// Reads `path`, which must be a regular file (a symbolic link to one is followed) of at most
/// `limit` bytes. A device, FIFO or directory is [`Error::NotRegularFile`]; nothing is read
/// from it.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let (file, metadata) = open_checked(path, OpenOptions::new().read(true), "read")?;
    if metadata.len() > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    let mut contents = Vec::with_capacity(metadata.len() as usize);
    // The file may grow while it is read: never read more than the limit.
    file.take(limit + 1)
        .read_to_end(&mut contents)
        .map_err(Error::io("read", path))?;
    if contents.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(contents)
}

/// Opens `path` with `options`, refusing anything but a regular file (a symbolic link to one
/// is followed), for files read or appended a piece at a time. The path is looked at before
/// it is opened, because opening a FIFO waits for a writer, and the opened file again, in
/// case it was replaced in between.
pub fn open_regular(path: &Path, options: &OpenOptions) -> Result<File, Error> {
    open_checked(path, options, "open").map(|(file, _)| file)
}

/// Opens `path` with `options` if it is a regular file, before and after opening (errors
/// name `action`), and returns the opened file's metadata too.
fn open_checked(
    path: &Path,
    options: &OpenOptions,
    action: &'static str,
) -> Result<(File, fs::Metadata), Error> {
    let not_regular = || Error::NotRegularFile {
        path: path.to_owned(),
    };
    if !fs::metadata(path)
        .map_err(Error::io(action, path))?
        .is_file()
    {
        return Err(not_regular());
    }
    let file = options.open(path).map_err(Error::io(action, path))?;
    let metadata = file.metadata().map_err(Error::io("read", path))?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    Ok((file, metadata))
}

/// [`read_regular`] as text; a file that is not UTF-8 is an `InvalidData` error.
pub fn read_regular_to_string(path: &Path, limit: u64) -> Result<String, Error> {
    let bytes = read_regular(path, limit)?;
    String::from_utf8(bytes).map_err(|error| Error::Io {
        action: "read",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, error.utf8_error()),
    })
}

/// Replaces the contents of `path` with `contents` so that a crash leaves the old file or the
/// new one, never a mix: a uniquely named temporary file in the same directory is written,
/// fsynced, given the target's owner, group and mode, renamed over the target, and the
/// directory is fsynced. A symbolic link is followed and its target replaced. A new file gets
/// `new_file_mode` narrowed by the umask (use [`PRIVATE_FILE_MODE`] for secrets). A path that
/// exists but is not a regular file is refused.
pub fn replace(path: &Path, contents: &[u8], new_file_mode: u32) -> Result<(), Error> {
    replace_with_hook(path, contents, new_file_mode, || Ok::<(), Error>(()))
}

/// [`replace`] with `before_rename` called once the new contents are durable in the
/// temporary file and before they take the target's place; an error from it leaves the
/// target untouched and removes the temporary file. Crash tests stop a write there.
pub fn replace_with_hook<E: From<Error>>(
    path: &Path,
    contents: &[u8],
    new_file_mode: u32,
    before_rename: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    let target = match fs::canonicalize(path) {
        Ok(target) => target,
        Err(error) if error.kind() == io::ErrorKind::NotFound => path.to_owned(),
        Err(error) => return Err(Error::io("resolve", path)(error).into()),
    };
    let existing = match fs::metadata(&target) {
        Ok(metadata) if metadata.is_file() => Some(metadata),
        Ok(_) => return Err(Error::NotRegularFile { path: target }.into()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(Error::io("read", &target)(error).into()),
    };
    let dir = parent_dir(&target);
    let (temp_path, mut temp) = create_temp(&target, new_file_mode, existing.is_some())?;
    let written = (|| {
        temp.write_all(contents)
            .map_err(Error::io("write", &temp_path))?;
        if let Some(metadata) = &existing {
            keep_owner_and_mode(&temp, &temp_path, &target, metadata)?;
        }
        temp.sync_all().map_err(Error::io("sync", &temp_path))
    })();
    drop(temp);
    let result = written.map_err(E::from).and_then(|()| before_rename());
    if let Err(error) = result {
        // Best effort: the target is untouched either way.
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    if let Err(error) = fs::rename(&temp_path, &target) {
        let _ = fs::remove_file(&temp_path);
        return Err(Error::io("replace", &target)(error).into());
    }
    sync_dir(dir).map_err(E::from)
}

/// Removes the temporary files a [`replace`] of `target` left behind when its process was
/// killed between writing and renaming; returns how many there were. Run it where no other
/// process is replacing `target` (under the lock that orders its writers).
pub fn remove_leftover_temporaries(target: &Path) -> Result<usize, Error> {
    let Some(name) = target.file_name() else {
        return Ok(0);
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let dir = parent_dir(target);
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let is_temporary = entry
            .file_name()
            .to_str()
            .and_then(|file_name| file_name.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|random| {
                random.len() == TEMP_NAME_DIGITS && random.bytes().all(|b| b.is_ascii_hexdigit())
            });
        if !is_temporary {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io("remove the leftover", &entry.path())(error)),
        }
    }
    Ok(removed)
}

/// How many hex digits make a temporary file's name unique.
const TEMP_NAME_DIGITS: usize = 16;

/// A new file beside `target` with a name no other writer uses (`.<name>.<random>.tmp`).
/// Created private when it will replace an existing file, whose mode it takes only once it
/// is complete.
fn create_temp(
    target: &Path,
    new_file_mode: u32,
    replacing: bool,
) -> Result<(PathBuf, File), Error> {
    let name = target
        .file_name()
        .map_or_else(|| "file".into(), |name| name.to_string_lossy());
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(
        &mut options,
        if replacing {
            PRIVATE_FILE_MODE
        } else {
            new_file_mode
        },
    );
    #[cfg(not(unix))]
    let _ = (new_file_mode, replacing);
    let mut last_error = None;
    for _ in 0..TEMP_ATTEMPTS {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let path = target.with_file_name(format!(
            ".{name}.{:0width$x}.tmp",
            hasher.finish(),
            width = TEMP_NAME_DIGITS
        ));
        match options.open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(Error::io("create a temporary file for", target)(error)),
        }
    }
    Err(Error::io("create a temporary file for", target)(
        last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    ))
}

/// Gives `temp` the owner, group and permission bits of the file it replaces. A change of
/// owner that the process may not make is an error: silently handing someone's file to
/// another user is worse than not writing it.
#[cfg(unix)]
fn keep_owner_and_mode(
    temp: &File,
    temp_path: &Path,
    target: &Path,
    original: &fs::Metadata,
) -> Result<(), Error> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let current = temp.metadata().map_err(Error::io("read", temp_path))?;
    if (current.uid(), current.gid()) != (original.uid(), original.gid()) {
        std::os::unix::fs::fchown(temp, Some(original.uid()), Some(original.gid()))
            .map_err(Error::io("keep the owner and group of", target))?;
    }
    // After the chown, which may clear set-id bits.
    temp.set_permissions(fs::Permissions::from_mode(original.mode() & 0o7777))
        .map_err(Error::io("keep the mode of", target))
}

#[cfg(not(unix))]
fn keep_owner_and_mode(
    temp: &File,
    temp_path: &Path,
    _target: &Path,
    original: &fs::Metadata,
) -> Result<(), Error> {
    temp.set_permissions(original.permissions())
        .map_err(Error::io("keep the permissions of", temp_path))
}

/// An exclusive advisory lock (`flock`) held through an open lock file: other hogguard
/// processes taking the same lock wait for it. The operating system lets go when the lock is
/// dropped or the process dies, so a crash never leaves a stale lock behind (unlike a lock
/// that is the mere existence of a file).
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Drop for Lock {
    /// Lets go explicitly: a child forked meanwhile shares the open file until it runs its
    /// program, and would otherwise hold the lock that long.
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl Lock {
    /// Takes the lock on `path` (created private if needed), waiting up to `wait` for another
    /// holder: [`Error::Locked`] after that.
    pub fn acquire(path: &Path, wait: Duration) -> Result<Lock, Error> {
        let file = private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(Error::io("open the lock file", path))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Lock {
                        file,
                        path: path.to_owned(),
                    });
                }
                Err(TryLockError::Error(error)) => return Err(Error::io("lock", path)(error)),
                Err(TryLockError::WouldBlock) if Instant::now() >= deadline => {
                    return Err(Error::Locked {
                        path: path.to_owned(),
                        waited: wait,
                    });
                }
                // flock has no wait with a timeout; polling keeps the wait bounded.
                Err(TryLockError::WouldBlock) => std::thread::sleep(LOCK_POLL),
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests;
