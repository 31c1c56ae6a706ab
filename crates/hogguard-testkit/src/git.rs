//! Scratch git repositories built with the real `git` binary, for tests that scan history.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway repository in a temporary directory, removed on drop.
pub struct TempRepo {
    dir: tempfile::TempDir,
}

impl TempRepo {
    /// Runs `git init` in a new temporary directory with a fixed identity and no global config.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let repo = TempRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The work tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `relative` in the work tree, creating parent directories.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// A `git` command in the work tree with a fixed identity and no user or system config.
    pub fn command(&self) -> Command {
        let mut command = Command::new("git");
        command
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ada Tester")
            .env("GIT_AUTHOR_EMAIL", "ada@example.test")
            .env("GIT_COMMITTER_NAME", "Ada Tester")
            .env("GIT_COMMITTER_EMAIL", "ada@example.test");
        command
    }

    /// Runs git with `args` and returns its standard output; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        run(self.command().args(args))
    }

    /// Stages everything and commits with `message`, authored and committed at `date`.
    /// Returns the commit hash.
    pub fn commit_all(&self, message: &str, date: &str) -> String {
        self.git(&["add", "-A"]);
        run(self
            .command()
            .args(["commit", "-q", "--allow-empty", "-m", message])
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date));
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Stores the work-tree file `file` as a loose blob that nothing refers to (`git
    /// hash-object -w`, after the `-c` settings in `config`, e.g. `core.looseCompression=0`);
    /// returns its id and the object's file, for tests that damage it.
    pub fn write_loose_blob(&self, file: &Path, config: &[&str]) -> (String, PathBuf) {
        let mut args = Vec::new();
        for setting in config {
            args.extend(["-c", setting]);
        }
        args.extend(["hash-object", "-w", file.to_str().expect("a UTF-8 path")]);
        let id = self.git(&args).trim().to_owned();
        let object = self
            .path()
            .join(".git/objects")
            .join(&id[..2])
            .join(&id[2..]);
        (id, object)
    }
}

/// Writes `bytes` over `file`, which git made read-only (an object, a pack).
pub fn overwrite(file: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("make writable");
    std::fs::write(file, bytes).expect("overwrite");
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("git runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("git prints UTF-8")
}

impl Default for TempRepo {
    fn default() -> Self {
        Self::new()
    }
}
