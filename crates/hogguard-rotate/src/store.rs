//! Where the credential's value lives: a dotenv file, or a secret manager behind two user
//! commands. A rotation keeps two slots there: `VAR` (the key in use) and `VAR_PREVIOUS` (the
//! key it replaces, kept until the old key is retired, so `--abort` can put it back).

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hogguard_secret::Secret;
use zeroize::Zeroizing;

/// The suffix of the variable that keeps the previous key during a rotation.
pub const PREVIOUS_SUFFIX: &str = "_PREVIOUS";

/// The largest env file read: env files are a few kilobytes.
const MAX_ENV_FILE_BYTES: u64 = 4 << 20;

/// How long a write waits for another hogguard process writing the same env file. Each holds
/// the lock for one read, edit, write and read-back: milliseconds.
const ENV_FILE_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Where a credential's value is kept.
///
/// - [`Store::env_file`]: a dotenv file. Only the variable's value changes; comments, order,
///   quoting, line endings and the file's owner, group and mode stay (a new file gets mode
///   0600). Each change is written to a temporary file in the same directory, fsynced,
///   renamed over the file, and the directory fsynced ([`hogguard_fs::replace`]), so a crash
///   leaves the old or the new file, never a mix. A symbolic link is followed and its target
///   replaced. Writers of one file, in any process, take turns: each holds the lock file
///   `.<name>.hogguard-lock` beside it (kept, empty, mode 0600) from reading the file to
///   reading its change back, so rotations of two variables of one file never lose each
///   other's change.
/// - [`Store::command`]: a secret manager's CLI. `write` runs under `sh -c` with the value on
///   standard input (never in arguments or the environment) and `HOGGUARD_VARIABLE` naming the
///   variable, `HOGGUARD_ACTION=set`; removing a variable runs it with `HOGGUARD_ACTION=remove`
///   and empty input. `read` runs with `HOGGUARD_VARIABLE` and prints the value (one trailing
///   newline is dropped; empty output means unset). Both must keep `VAR` and `VAR_PREVIOUS`
///   apart: every write is read back, so a command that ignores the variable is caught.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    kind: StoreKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StoreKind {
    EnvFile { path: PathBuf },
    Command { write: String, read: String },
}

/// One change to apply to a store.
pub(crate) enum Change<'a> {
    /// Set the variable to the value.
    Set(&'a str, &'a Secret),
    /// Remove the variable.
    Remove(&'a str),
}

impl Change<'_> {
    fn variable(&self) -> &str {
        match self {
            Change::Set(variable, _) | Change::Remove(variable) => variable,
        }
    }
}

/// Why a store could not be read or written. Messages name files, variables and commands,
/// never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The env file, its lock or its temporary file could not be read or written (the
    /// operation and the path are in the message); the file is as it was.
    #[error(transparent)]
    File(#[from] hogguard_fs::Error),
    /// The env file is not UTF-8 text, so it is not touched.
    #[error("{} is not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The env file does not parse, so it is not touched.
    #[error("{} is not a valid env file", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Where it fails.
        #[source]
        source: hogguard_dotenv::ParseError,
    },
    /// The variable cannot be written to an env file.
    #[error("cannot write {variable} to {}", path.display())]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// The variable.
        variable: String,
        /// Why.
        #[source]
        source: hogguard_dotenv::EditError,
    },
    /// A store command could not be started or fed.
    #[error("cannot run the store's {role} command")]
    CommandNotRun {
        /// `read` or `write`.
        role: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A store command exited unsuccessfully.
    #[error("the store's {role} command failed ({status}) for {variable}")]
    CommandFailed {
        /// `read` or `write`.
        role: &'static str,
        /// The exit status, for people.
        status: String,
        /// The variable it was run for.
        variable: String,
    },
    /// The read command printed something that is not UTF-8.
    #[error("the store's read command printed a value for {variable} that is not UTF-8")]
    NotUtf8 {
        /// The variable.
        variable: String,
    },
    /// A write did not read back as written (a command that ignores `HOGGUARD_VARIABLE`, or
    /// another writer at the same time).
    #[error("{variable} did not read back as it was written to {store}")]
    NotApplied {
        /// The variable.
        variable: String,
        /// The store, for people.
        store: String,
    },
}

impl Store {
    /// A dotenv file.
    pub fn env_file(path: impl Into<PathBuf>) -> Store {
        Store {
            kind: StoreKind::EnvFile { path: path.into() },
        }
    }

    /// A secret manager reached through a `write` and a `read` shell command.
    pub fn command(write: impl Into<String>, read: impl Into<String>) -> Store {
        Store {
            kind: StoreKind::Command {
                write: write.into(),
                read: read.into(),
            },
        }
    }

    /// The store for people: the file's path, or `command store`.
    pub fn describe(&self) -> String {
        match &self.kind {
            StoreKind::EnvFile { path } => path.display().to_string(),
            StoreKind::Command { .. } => "the command store".to_owned(),
        }
    }

    /// The env file's path, for the verify command's environment.
    pub(crate) fn env_file_path(&self) -> Option<&Path> {
        match &self.kind {
            StoreKind::EnvFile { path } => Some(path),
            StoreKind::Command { .. } => None,
        }
    }

    /// The value of `variable`; `None` when it is unset or empty.
    pub(crate) fn read(&self, variable: &str) -> Result<Option<Secret>, StoreError> {
        match &self.kind {
            StoreKind::EnvFile { path } => {
                let Some(text) = read_env_file(path)? else {
                    return Ok(None);
                };
                let env = parse_env_file(path, &text)?;
                Ok(env
                    .get(variable)
                    .filter(|value| !value.is_empty())
                    .map(Secret::new))
            }
            StoreKind::Command { read, .. } => run_read_command(read, variable),
        }
    }

    /// Applies `changes`: all at once for an env file, then reads them back; one by one for a
    /// command store, reading each back before the next, so a store that puts a value in the
    /// wrong place is caught before it overwrites anything else. `before_rename` runs between
    /// writing the temporary file and renaming it over the env file; an error from it stops
    /// the write there, leaving the temporary file behind as a crash would.
    pub(crate) fn apply<E: From<StoreError>>(
        &self,
        changes: &[Change<'_>],
        before_rename: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.kind {
            StoreKind::EnvFile { path } => {
                let _turn = lock_env_file(path)?;
                write_env_file(path, changes, before_rename)?;
                for change in changes {
                    self.check_applied(change)?;
                }
            }
            StoreKind::Command { write, .. } => {
                for change in changes {
                    run_write_command(write, change)?;
                    self.check_applied(change)?;
                }
            }
        }
        Ok(())
    }

    /// Reads the variable back and compares it with what `change` wrote.
    fn check_applied(&self, change: &Change<'_>) -> Result<(), StoreError> {
        let expected = match change {
            Change::Set(_, value) => Some(value.fingerprint()),
            Change::Remove(_) => None,
        };
        let found = self
            .read(change.variable())?
            .map(|value| value.fingerprint());
        if found == expected {
            Ok(())
        } else {
            Err(StoreError::NotApplied {
                variable: change.variable().to_owned(),
                store: self.describe(),
            })
        }
    }

    /// Removes the temporary files a crash in the middle of an env-file write left behind
    /// (they hold the file's new contents, secrets included).
    pub(crate) fn discard_leftovers(&self) -> Result<(), StoreError> {
        let StoreKind::EnvFile { path } = &self.kind else {
            return Ok(());
        };
        // Under the lock: a temporary file of a write in progress is no leftover.
        let _turn = lock_env_file(path)?;
        hogguard_fs::remove_leftover_temporaries(&resolve_link(path))
            .map(|_| ())
            .map_err(StoreError::File)
    }
}

/// The file's text, `None` when it does not exist.
fn read_env_file(path: &Path) -> Result<Option<Zeroizing<String>>, StoreError> {
    let bytes = match hogguard_fs::read_regular(path, MAX_ENV_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(error) => {
            // The bytes are secrets even when they are not text.
            drop(Zeroizing::new(error.into_bytes()));
            Err(StoreError::NotText {
                path: path.to_owned(),
            })
        }
    }
}

fn parse_env_file(path: &Path, text: &str) -> Result<hogguard_dotenv::DotEnv, StoreError> {
    hogguard_dotenv::parse(text).map_err(|source| StoreError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// The file a symbolic link points to: what is replaced, and what its lock is beside.
fn resolve_link(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Waits for this process's turn to write the env file at `path` (see [`Store`]).
fn lock_env_file(path: &Path) -> Result<hogguard_fs::Lock, StoreError> {
    let target = resolve_link(path);
    let name = target
        .file_name()
        .map_or_else(|| "env".into(), |name| name.to_string_lossy());
    let lock = target.with_file_name(format!(".{name}.hogguard-lock"));
    Ok(hogguard_fs::Lock::acquire(&lock, ENV_FILE_LOCK_WAIT)?)
}

/// Applies `changes` to the env file and replaces it; `before_rename` runs once the new
/// contents are durable in the temporary file. The caller holds the file's lock.
fn write_env_file<E: From<StoreError>>(
    path: &Path,
    changes: &[Change<'_>],
    before_rename: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    let mut text = read_env_file(path)?.unwrap_or_default();
    parse_env_file(path, &text)?;
    for change in changes {
        let edited = match change {
            Change::Set(variable, value) => hogguard_dotenv::set(&text, variable, value.expose()),
            Change::Remove(variable) => hogguard_dotenv::remove(&text, variable),
        };
        text = Zeroizing::new(edited.map_err(|source| StoreError::Unwritable {
            path: path.to_owned(),
            variable: change.variable().to_owned(),
            source,
        })?);
    }
    hogguard_fs::replace_with_hook(
        path,
        text.as_bytes(),
        hogguard_fs::PRIVATE_FILE_MODE,
        || before_rename().map_err(WriteStop::Hook),
    )
    .map_err(|stop| match stop {
        WriteStop::File(error) => StoreError::File(error).into(),
        WriteStop::Hook(error) => error,
    })
}

/// Why an env-file replacement stopped: the file operation failed, or the caller's hook
/// stopped it.
enum WriteStop<E> {
    File(hogguard_fs::Error),
    Hook(E),
}

impl<E> From<hogguard_fs::Error> for WriteStop<E> {
    fn from(error: hogguard_fs::Error) -> Self {
        WriteStop::File(error)
    }
}

/// Runs a store command under `sh -c`; its output goes to hogguard's standard error so it
/// never mixes with hogguard's own output.
fn store_command(script: &str, variable: &str, action: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .env("HOGGUARD_VARIABLE", variable)
        .env("HOGGUARD_ACTION", action)
        .stderr(Stdio::from(io::stderr()));
    command
}

fn run_read_command(script: &str, variable: &str) -> Result<Option<Secret>, StoreError> {
    let not_run = |source| StoreError::CommandNotRun {
        role: "read",
        source,
    };
    let mut child = store_command(script, variable, "read")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(not_run)?;
    let mut output = Zeroizing::new(Vec::new());
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_end(&mut output).map_err(not_run)?;
    }
    let status = child.wait().map_err(not_run)?;
    if !status.success() {
        return Err(StoreError::CommandFailed {
            role: "read",
            status: status.to_string(),
            variable: variable.to_owned(),
        });
    }
    let mut value = String::from_utf8(std::mem::take(&mut *output)).map_err(|error| {
        // The bytes are a secret even when they are not text.
        drop(Zeroizing::new(error.into_bytes()));
        StoreError::NotUtf8 {
            variable: variable.to_owned(),
        }
    })?;
    for ending in ["\r\n", "\n"] {
        if value.ends_with(ending) {
            value.truncate(value.len() - ending.len());
            break;
        }
    }
    Ok((!value.is_empty()).then(|| Secret::new(value)))
}

fn run_write_command(script: &str, change: &Change<'_>) -> Result<(), StoreError> {
    let (action, input) = match change {
        Change::Set(_, value) => ("set", value.expose()),
        Change::Remove(_) => ("remove", ""),
    };
    let not_run = |source| StoreError::CommandNotRun {
        role: "write",
        source,
    };
    let mut child = store_command(script, change.variable(), action)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(io::stderr()))
        .spawn()
        .map_err(not_run)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits without reading its input closes the pipe; its exit status
        // then tells whether it worked.
        match stdin.write_all(input.as_bytes()) {
            Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
                let _ = child.wait();
                return Err(not_run(error));
            }
            _ => {}
        }
    }
    let status = child.wait().map_err(not_run)?;
    if status.success() {
        Ok(())
    } else {
        Err(StoreError::CommandFailed {
            role: "write",
            status: status.to_string(),
            variable: change.variable().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_hook() -> Result<(), StoreError> {
        Ok(())
    }

    #[test]
    fn env_file_changes_only_the_variable_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let text = "# app\r\nexport KEY='phs_old' # rotated\r\nOTHER=1\r\n";
        fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        }
        let store = Store::env_file(&path);
        let new = Secret::new("phs_new");
        let old = store.read("KEY").unwrap().unwrap();
        store
            .apply(
                &[Change::Set("KEY_PREVIOUS", &old), Change::Set("KEY", &new)],
                no_hook,
            )
            .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# app\r\nexport KEY='phs_new' # rotated\r\nOTHER=1\r\nKEY_PREVIOUS=phs_old\r\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640);
        }
        store
            .apply(&[Change::Remove("KEY_PREVIOUS")], no_hook)
            .unwrap();
        assert_eq!(store.read("KEY_PREVIOUS").unwrap(), None);
        assert_eq!(store.read("KEY").unwrap(), Some(new));
    }

    /// Issue 11 point 13: a rotation into someone else's env file left it root's.
    #[cfg(unix)]
    #[test]
    fn env_file_keeps_its_owner_group_and_mode() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, "KEY=old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let nobody = 65534;
        let chowned = std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).is_ok();
        let owner = fs::metadata(&path).unwrap();
        let store = Store::env_file(&path);
        store
            .apply(
                &[
                    Change::Set("KEY_PREVIOUS", &Secret::new("old")),
                    Change::Set("KEY", &Secret::new("new")),
                ],
                no_hook,
            )
            .unwrap();
        let after = fs::metadata(&path).unwrap();
        // As root the file is nobody's and must stay so; otherwise it is ours throughout.
        assert_eq!(chowned, owner.uid() == nobody);
        assert_eq!((after.uid(), after.gid()), (owner.uid(), owner.gid()));
        assert_eq!(after.mode() & 0o7777, 0o640);
        assert_eq!(store.read("KEY").unwrap(), Some(Secret::new("new")));
    }

    /// Issue 11 point 13: an env file without a final line break, mostly LF but with a CRLF
    /// first line, gained CRLF line endings when the previous key was appended.
    #[test]
    fn env_file_keeps_its_line_endings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, "# from a template\r\nKEY=old\nOTHER=1").unwrap();
        let store = Store::env_file(&path);
        store
            .apply(
                &[
                    Change::Set("KEY_PREVIOUS", &Secret::new("old")),
                    Change::Set("KEY", &Secret::new("new")),
                ],
                no_hook,
            )
            .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# from a template\r\nKEY=new\nOTHER=1\nKEY_PREVIOUS=old\n"
        );
        let crlf = dir.path().join(".env.crlf");
        fs::write(&crlf, "KEY=old\r\nOTHER=1").unwrap();
        let store = Store::env_file(&crlf);
        store
            .apply(&[Change::Set("KEY_PREVIOUS", &Secret::new("old"))], no_hook)
            .unwrap();
        assert_eq!(
            fs::read_to_string(&crlf).unwrap(),
            "KEY=old\r\nOTHER=1\r\nKEY_PREVIOUS=old\r\n"
        );
    }

    /// Issue 11 point 14: writers of different variables of one env file, side by side, each
    /// see their change applied and none is lost.
    #[test]
    fn concurrent_writers_of_one_env_file_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, "# shared\n").unwrap();
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let store = Store::env_file(&path);
                std::thread::spawn(move || {
                    for round in 0..40 {
                        let value = Secret::new(format!("value-{writer}-{round}"));
                        store
                            .apply(&[Change::Set(&format!("KEY_{writer}"), &value)], no_hook)
                            .unwrap_or_else(|error| {
                                panic!("writer {writer}, round {round}: {error}")
                            });
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let store = Store::env_file(&path);
        for writer in 0..4 {
            assert_eq!(
                store.read(&format!("KEY_{writer}")).unwrap(),
                Some(Secret::new(format!("value-{writer}-39")))
            );
        }
    }

    #[test]
    fn new_env_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.new");
        let store = Store::env_file(&path);
        assert_eq!(store.read("KEY").unwrap(), None);
        store
            .apply(&[Change::Set("KEY", &Secret::new("whsec_x"))], no_hook)
            .unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "KEY=whsec_x\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    /// The names in `dir`, sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_stop_before_the_rename_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, "KEY=old\n").unwrap();
        let store = Store::env_file(&path);
        let stopped: Result<(), StoreError> =
            store.apply(&[Change::Set("KEY", &Secret::new("new"))], || {
                Err(StoreError::NotApplied {
                    variable: "stop".into(),
                    store: "here".into(),
                })
            });
        assert!(stopped.is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "KEY=old\n");
        assert_eq!(names_in(dir.path()), ["..env.hogguard-lock", ".env"]);
    }

    #[test]
    fn leftovers_of_a_crash_are_discarded_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, "KEY=old\n").unwrap();
        // What a process killed between writing and renaming leaves behind.
        fs::write(dir.path().join("..env.0123456789abcdef.tmp"), "KEY=new\n").unwrap();
        for kept in ["..env.notes.tmp", ".other.0123456789abcdef.tmp", ".env.tmp"] {
            fs::write(dir.path().join(kept), "").unwrap();
        }
        Store::env_file(&path).discard_leftovers().unwrap();
        assert_eq!(
            names_in(dir.path()),
            [
                "..env.hogguard-lock",
                "..env.notes.tmp",
                ".env",
                ".env.tmp",
                ".other.0123456789abcdef.tmp"
            ]
        );
    }

    #[test]
    fn unreadable_env_files_are_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        fs::write(&path, "KEY=\"unterminated\n").unwrap();
        let store = Store::env_file(&path);
        let error = store
            .apply(&[Change::Set("KEY", &Secret::new("new"))], no_hook)
            .unwrap_err();
        assert!(matches!(error, StoreError::Unreadable { .. }), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "KEY=\"unterminated\n");
    }

    #[test]
    fn command_store_feeds_stdin_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().display();
        let store = Store::command(
            format!(
                "if [ \"$HOGGUARD_ACTION\" = remove ]; then rm -f {vault}/$HOGGUARD_VARIABLE; \
                 else cat > {vault}/$HOGGUARD_VARIABLE; fi"
            ),
            format!("cat {vault}/$HOGGUARD_VARIABLE 2>/dev/null || true"),
        );
        let value = Secret::new("phs_stdin_only");
        store.apply(&[Change::Set("KEY", &value)], no_hook).unwrap();
        assert_eq!(store.read("KEY").unwrap(), Some(value));
        store.apply(&[Change::Remove("KEY")], no_hook).unwrap();
        assert_eq!(store.read("KEY").unwrap(), None);
    }

    #[test]
    fn command_store_writing_to_the_wrong_place_is_caught_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().display();
        // Reads honour the variable; writes always land in KEY.
        let store = Store::command(
            format!("cat > {vault}/KEY"),
            format!("cat {vault}/$HOGGUARD_VARIABLE 2>/dev/null || true"),
        );
        let error = store
            .apply(
                &[
                    Change::Set("KEY_PREVIOUS", &Secret::new("old")),
                    Change::Set("KEY", &Secret::new("new")),
                ],
                no_hook,
            )
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::NotApplied { variable, .. } if variable == "KEY_PREVIOUS"),
            "{error}"
        );
        assert_eq!(store.read("KEY").unwrap(), Some(Secret::new("old")));
        let failing = Store::command("exit 3", "exit 4");
        let error = failing.read("KEY").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the store's read command failed (exit status: 4) for KEY"
        );
    }
}
