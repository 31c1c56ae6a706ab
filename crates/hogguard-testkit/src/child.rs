//! One test run again in a child process under a shell prefix (`umask 000`, `ulimit -v …`),
//! for what a test cannot change in its own process without changing it for every test
//! running beside it.
//!
//! The parent test names the child test and the prefix; the child test is an ordinary test
//! that does nothing unless it runs as that child:
//!
//! ```no_run
//! use hogguard_testkit::child::{self, ChildTest};
//!
//! #[test]
//! fn state_is_private_under_umask_000() {
//!     let dir = tempfile::tempdir().unwrap();
//!     ChildTest::new("tests::make_state_in_child")
//!         .under("umask 000")
//!         .dir(dir.path())
//!         .run();
//!     // ... check the modes of what the child made in `dir` ...
//! }
//!
//! /// Runs only as the child of `state_is_private_under_umask_000`.
//! #[test]
//! fn make_state_in_child() {
//!     let Some(dir) = child::dir() else { return };
//!     // ... make the state in `dir` ...
//! }
//! ```
//!
//! The parent fails unless the child ran exactly that one test and it passed: a misspelt
//! name, a child that did not start, a prefix that failed or a child test that panicked all
//! fail the parent.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the child's environment: to the directory the parent gave, else empty.
const CHILD_VARIABLE: &str = "HOGGUARD_TESTKIT_CHILD";

/// What libtest prints when the one test it ran passed.
const ONE_PASSED: &str = "test result: ok. 1 passed;";

/// A test of the running test binary, to run again in a child process.
#[derive(Debug)]
pub struct ChildTest {
    test: String,
    prefix: String,
    wrapper: String,
    dir: Option<PathBuf>,
}

impl ChildTest {
    /// The test `test` (its path in the test binary, e.g. `files::write_in_child`, or
    /// `tests::write_in_child` for a unit test), to run with no prefix and no directory.
    pub fn new(test: &str) -> ChildTest {
        ChildTest {
            test: test.to_owned(),
            prefix: String::new(),
            wrapper: String::new(),
            dir: None,
        }
    }

    /// Runs the child after the shell command `prefix` (`umask 000`, `ulimit -v 2097152`),
    /// in the same shell; the child does not start unless it succeeds.
    pub fn under(mut self, prefix: &str) -> ChildTest {
        self.prefix = prefix.to_owned();
        self
    }

    /// Runs the child through the command `wrapper` (`timeout 120`), which is given the test
    /// binary and its arguments.
    pub fn wrapped_in(mut self, wrapper: &str) -> ChildTest {
        self.wrapper = wrapper.to_owned();
        self
    }

    /// Gives the child `dir`, which [`dir()`] returns there.
    pub fn dir(mut self, dir: &Path) -> ChildTest {
        self.dir = Some(dir.to_owned());
        self
    }

    /// Runs the child to its end, its tests one at a time, and panics, showing what it
    /// printed, unless it ran the test and the test passed.
    #[track_caller]
    pub fn run(self) {
        let exe = std::env::current_exe().expect("the test binary's path");
        // `$0` is the test binary, `$@` its arguments: neither is spliced into the script.
        let prefix = match self.prefix.trim() {
            "" => String::new(),
            prefix => format!("{prefix} && "),
        };
        let wrapper = match self.wrapper.trim() {
            "" => String::new(),
            wrapper => format!("{wrapper} "),
        };
        let script = format!(r#"{prefix}exec {wrapper}"$0" "$@""#);
        let payload: OsString = self.dir.map(PathBuf::into_os_string).unwrap_or_default();
        let output = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .arg(&exe)
            .args(["--exact", &self.test, "--test-threads=1"])
            .env(CHILD_VARIABLE, payload)
            .output()
            .unwrap_or_else(|e| panic!("cannot start sh for the child {}: {e}", self.test));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(ONE_PASSED),
            "the child test {} under `{script}` did not run and pass ({}):\n{stdout}\n{}",
            self.test,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Whether this process is a child started by [`ChildTest::run`]: a child test returns at
/// once when it is not.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_VARIABLE).is_some()
}

/// In a child started by [`ChildTest::run`], the directory its parent gave with
/// [`ChildTest::dir`]; `None` in an ordinary test run (or when the parent gave none).
pub fn dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_VARIABLE)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child of the tests below: passes when it is a child with a directory, and panics
    /// when it is a child without one; does nothing in an ordinary run.
    #[test]
    fn child_that_needs_a_directory() {
        if !is_child() {
            return;
        }
        let dir = dir().expect("the parent gave a directory");
        std::fs::write(dir.join("ran"), format!("{:o}", current_umask())).unwrap();
    }

    /// The process's umask, read from the kernel through `/proc` (Linux), else `sh`.
    fn current_umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(line) = status.lines().find(|l| l.starts_with("Umask:")) {
            return u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap();
        }
        let out = Command::new("sh").args(["-c", "umask"]).output().unwrap();
        u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 8).unwrap()
    }

    #[test]
    fn the_child_runs_under_the_prefix_with_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        ChildTest::new("child::tests::child_that_needs_a_directory")
            .under("umask 027")
            .dir(dir.path())
            .run();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ran")).unwrap(),
            "27"
        );
    }

    #[test]
    fn a_child_that_did_not_run_or_failed_fails_the_parent() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            // A misspelt name runs no test.
            ChildTest::new("child::tests::no_such_test").dir(dir.path()),
            // The child test panics without a directory.
            ChildTest::new("child::tests::child_that_needs_a_directory"),
            // A failing prefix starts no child.
            ChildTest::new("child::tests::child_that_needs_a_directory")
                .under("false")
                .dir(dir.path()),
        ];
        for case in cases {
            let shown = format!("{case:?}");
            let outcome = std::panic::catch_unwind(move || case.run());
            assert!(outcome.is_err(), "{shown} passed");
        }
        assert!(!dir.path().join("ran").exists());
    }
}
