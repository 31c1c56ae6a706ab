//! Running the built `hogguard` binary in tests.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a run of `hogguard` did.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// A `hogguard` command in `dir`, isolated from the caller's colour, user and git settings.
pub(crate) fn hogguard(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hogguard"));
    command
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env("HOGGUARD_USER", "ada")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    command
}

/// Runs `command` with `stdin` as its standard input and collects what it printed.
pub(crate) fn run(command: &mut Command, stdin: &[u8]) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hogguard starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    // A command that does not read its input may exit first; that is not a failure.
    let _ = input.write_all(stdin);
    drop(input);
    let output = child.wait_with_output().expect("hogguard runs");
    Run {
        code: output.status.code().expect("hogguard exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 errors"),
    }
}
