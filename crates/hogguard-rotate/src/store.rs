//! Where the credential's value lives: a dotenv file, or a secret manager behind two user
//! commands. A rotation keeps two slots there: `VAR` (the key in use) and `VAR_PREVIOUS` (the
//! key it replaces, kept until the old key is retired, so `--abort` can put it back).

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hogguard_secret::Secret;
use zeroize::Zeroizing;

/// The suffix of the variable that keeps the previous key during a rotation.
pub const PREVIOUS_SUFFIX: &str = "_PREVIOUS";

/// The mode of env files hogguard creates: readable by their owner only.
#[cfg(unix)]
const NEW_FILE_MODE: u32 = 0o600;

/// Where a credential's value is kept.
///
/// - [`Store::env_file`]: a dotenv file. Only the variable's value changes; comments, order,
///   quoting, line endings and the file's mode stay (a new file gets mode 0600). Each change is
///   written to `.<name>.hogguard-tmp` in the same directory, fsynced, renamed over the file,
///   and the directory fsynced, so a crash leaves the old or the new file, never a mix. A
///   symbolic link is followed and its target replaced.
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
    /// The env file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The env file does not parse, so it is not touched.
    #[error("{} is not a valid env file: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Where it fails.
        #[source]
        source: hogguard_dotenv::EditError,
    },
    /// Writing, syncing or renaming failed; the file is as it was.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A store command could not be started or fed.
    #[error("cannot run the store's {role} command: {source}")]
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
                let env =
                    hogguard_dotenv::parse(&text).map_err(|error| StoreError::Unreadable {
                        path: path.clone(),
                        source: error.into(),
                    })?;
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

    /// Removes the temporary file a crash in the middle of an env-file write left behind.
    pub(crate) fn discard_leftovers(&self) -> Result<(), StoreError> {
        let StoreKind::EnvFile { path } = &self.kind else {
            return Ok(());
        };
        let temp = temp_path(&resolve_link(path));
        match fs::remove_file(&temp) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(StoreError::Write {
                path: temp,
                source: error,
            }),
            _ => Ok(()),
        }
    }
}

/// The file's text, `None` when it does not exist.
fn read_env_file(path: &Path) -> Result<Option<Zeroizing<String>>, StoreError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StoreError::Read {
            path: path.to_owned(),
            source: error,
        }),
    }
}

/// The file a symbolic link points to, so the rename replaces the target, not the link.
fn resolve_link(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// `.<name>.hogguard-tmp` beside `path`: a fixed name, so a leftover from a crash is found and
/// overwritten instead of piling up.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "env".into(), |name| name.to_string_lossy());
    path.with_file_name(format!(".{name}.hogguard-tmp"))
}

fn write_env_file<E: From<StoreError>>(
    path: &Path,
    changes: &[Change<'_>],
    before_rename: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    let target = resolve_link(path);
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Write { path, source }
    };
    let mut text = read_env_file(&target)?.unwrap_or_default();
    for change in changes {
        let edited = match change {
            Change::Set(variable, value) => hogguard_dotenv::set(&text, variable, value.expose()),
            Change::Remove(variable) => hogguard_dotenv::remove(&text, variable),
        };
        text = Zeroizing::new(edited.map_err(|source| StoreError::Unreadable {
            path: target.clone(),
            source,
        })?);
    }
    let temp = temp_path(&target);
    let result = write_synced(&temp, &target, text.as_bytes()).map_err(write_error(&temp));
    if let Err(error) = result {
        // Best effort: the leftover is also removed by the next rotation step.
        let _ = fs::remove_file(&temp);
        return Err(error.into());
    }
    before_rename()?;
    fs::rename(&temp, &target).map_err(write_error(&target))?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(write_error(dir))?;
    Ok(())
}

/// Writes `contents` to `temp` with the mode of `target` (0600 for a new file) and fsyncs it.
fn write_synced(temp: &Path, target: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, NEW_FILE_MODE);
    let mut file = options.open(temp)?;
    // A leftover temporary file keeps its old mode on open, so the mode is set every time.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = match fs::metadata(target) {
            Ok(metadata) => metadata.permissions().mode() & 0o7777,
            Err(error) if error.kind() == io::ErrorKind::NotFound => NEW_FILE_MODE,
            Err(error) => return Err(error),
        };
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    file.write_all(contents)?;
    file.sync_all()
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
        assert!(dir.path().join("..env.hogguard-tmp").exists());
        store.discard_leftovers().unwrap();
        assert!(!dir.path().join("..env.hogguard-tmp").exists());
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
