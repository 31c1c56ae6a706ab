//! The one harness every CLI test runs `hogguard` through: a scratch git repository, secrets
//! seeded at run time, the PostHog stand-in on request, and on every run a check that no
//! seeded secret reached standard output, standard error or a file the run wrote.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::SystemTime;

use hogguard_testkit::git::TempRepo;
use hogguard_testkit::keys::{self, Prefix};
use hogguard_testkit::posthog::FakeHog;
use regex::Regex;

/// Variables of the caller's environment that would change what hogguard does.
const ISOLATED_VARIABLES: &[&str] = &[
    "NO_COLOR",
    "CLICOLOR_FORCE",
    "HOGGUARD_CONFIG",
    "POSTHOG_HOST",
    "POSTHOG_INGEST_HOST",
    "POSTHOG_PERSONAL_API_KEY",
    "POSTHOG_PROJECT_API_KEY",
    "POSTHOG_ADMIN_API_KEY",
];

/// A scratch repository in which `hogguard` runs, and the secrets the test put there.
pub(crate) struct TestEnv {
    repo: TempRepo,
    secrets: RefCell<Vec<String>>,
    /// Files (relative to the repository) where secrets belong, so writing one is no leak.
    secret_stores: RefCell<Vec<PathBuf>>,
    vars: RefCell<Vec<(String, String)>>,
    posthog: OnceCell<FakeHog>,
}

impl TestEnv {
    /// A new environment: an empty git repository (`git init`, no commits).
    pub(crate) fn new() -> TestEnv {
        TestEnv {
            repo: TempRepo::new(),
            secrets: RefCell::default(),
            secret_stores: RefCell::default(),
            vars: RefCell::default(),
            posthog: OnceCell::new(),
        }
    }

    /// The work tree.
    pub(crate) fn path(&self) -> &Path {
        self.repo.path()
    }

    /// The repository, for git commands and commits.
    pub(crate) fn repo(&self) -> &TempRepo {
        &self.repo
    }

    /// Writes `contents` to `relative`, creating parent directories.
    pub(crate) fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.repo.write(relative, contents)
    }

    /// Reads `relative` as text.
    pub(crate) fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative))
            .unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }

    /// A new key of `prefix`'s kind, made now and watched for leaks.
    pub(crate) fn key(&self, prefix: Prefix) -> String {
        let key = keys::current(prefix);
        self.seed(&key);
        key
    }

    /// Watches `secret` (made elsewhere, e.g. by the stand-in) for leaks.
    pub(crate) fn seed(&self, secret: &str) {
        assert!(secret.len() >= 16, "too short to watch: {}", secret.len());
        self.secrets.borrow_mut().push(secret.to_owned());
    }

    /// Lets `relative` hold secrets: an env file or secret store written on purpose. Files
    /// named `.env*` are stores already.
    pub(crate) fn secret_store(&self, relative: &str) {
        self.secret_stores
            .borrow_mut()
            .push(PathBuf::from(relative));
    }

    /// Sets `name` for every later run.
    pub(crate) fn set_var(&self, name: &str, value: &str) {
        self.vars
            .borrow_mut()
            .push((name.to_owned(), value.to_owned()));
    }

    /// The PostHog stand-in, started on first use; every later run gets `POSTHOG_HOST`.
    pub(crate) fn posthog(&self) -> &FakeHog {
        self.posthog.get_or_init(|| {
            let hog = FakeHog::start();
            self.set_var("POSTHOG_HOST", hog.base_url());
            hog
        })
    }

    /// `hogguard` with `args`, run in the work tree.
    pub(crate) fn hogguard<I, S>(&self, args: I) -> Cmd<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hogguard"));
        command
            .args(args)
            .current_dir(self.path())
            .env("HOGGUARD_USER", "ada")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        for name in ISOLATED_VARIABLES {
            command.env_remove(name);
        }
        for (name, value) in self.vars.borrow().iter() {
            command.env(name, value);
        }
        Cmd {
            env: self,
            command,
            stdin: Vec::new(),
            closed_stdout: false,
        }
    }

    /// `hogguard audit log` of a successful `action` on the resource `repo`.
    pub(crate) fn audit_log(&self, action: &str) -> Cmd<'_> {
        self.hogguard([
            "audit",
            "log",
            "--action",
            action,
            "--resource",
            "repo",
            "--result",
            "success",
        ])
    }

    /// Panics when `text` (from `what`) holds a seeded secret or a distinctive part of one.
    pub(crate) fn assert_no_leak(&self, what: &str, text: &str) {
        for secret in self.secrets.borrow().iter() {
            assert!(
                !text.contains(secret.as_str()),
                "{what} leaks a seeded secret:\n{text}"
            );
            // A distinctive middle part must not appear either: no partial leaks.
            let middle = &secret[8..secret.len() - 8];
            assert!(
                !text.contains(middle),
                "{what} leaks part of a seeded secret:\n{text}"
            );
        }
    }

    fn is_secret_store(&self, relative: &Path) -> bool {
        let named_env = relative
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with(".env"));
        named_env || self.secret_stores.borrow().iter().any(|p| p == relative)
    }

    /// Size and modification time of every file outside `.git`.
    fn files(&self) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
        let mut files = BTreeMap::new();
        let mut pending = vec![self.path().to_owned()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                if metadata.is_dir() {
                    if entry.file_name() != ".git" {
                        pending.push(path);
                    }
                } else if metadata.is_file() {
                    files.insert(path, (metadata.len(), metadata.modified().ok()));
                }
            }
        }
        files
    }

    /// Checks every file created or changed since `before` that is not a secret store.
    fn assert_no_leak_in_files(&self, before: &BTreeMap<PathBuf, (u64, Option<SystemTime>)>) {
        for (path, stamp) in self.files() {
            if before.get(&path) == Some(&stamp) {
                continue;
            }
            let relative = path.strip_prefix(self.path()).unwrap_or(&path);
            if self.is_secret_store(relative) {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&path) {
                self.assert_no_leak(
                    &format!("file {}", relative.display()),
                    &String::from_utf8_lossy(&bytes),
                );
            }
        }
    }
}

/// A `hogguard` command about to run in a [`TestEnv`].
pub(crate) struct Cmd<'e> {
    env: &'e TestEnv,
    command: Command,
    stdin: Vec<u8>,
    closed_stdout: bool,
}

impl<'e> Cmd<'e> {
    /// Adds arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Sets a variable for this run.
    pub(crate) fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    /// Removes a variable for this run.
    pub(crate) fn env_remove(mut self, name: &str) -> Self {
        self.command.env_remove(name);
        self
    }

    /// Runs in `relative` instead of the work tree's root.
    pub(crate) fn current_dir(mut self, relative: &str) -> Self {
        self.command.current_dir(self.env.path().join(relative));
        self
    }

    /// Runs under `umask` (through `sh`), with the same arguments, variables and directory.
    pub(crate) fn umask(mut self, umask: u32) -> Self {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
            .arg(self.command.get_program())
            .args(self.command.get_args());
        for (name, value) in self.command.get_envs() {
            match value {
                Some(value) => shell.env(name, value),
                None => shell.env_remove(name),
            };
        }
        if let Some(dir) = self.command.get_current_dir() {
            shell.current_dir(dir);
        }
        self.command = shell;
        self
    }

    /// Runs in `dir`, outside the work tree.
    pub(crate) fn current_dir_absolute(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Feeds `input` on standard input.
    pub(crate) fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = input.into();
        self
    }

    /// Gives the run a standard output whose reader is gone, as `hogguard ... | head -c1`
    /// does once head has read its byte: every write fails with a broken pipe.
    pub(crate) fn closed_stdout(mut self) -> Self {
        self.closed_stdout = true;
        self
    }

    /// Runs to the end and returns what it printed, after checking that no seeded secret
    /// reached the output or a file the run wrote.
    pub(crate) fn output(mut self) -> Output<'e> {
        let before = self.env.files();
        let stdout = if self.closed_stdout {
            let (reader, writer) = std::io::pipe().expect("a pipe");
            drop(reader);
            Stdio::from(writer)
        } else {
            Stdio::piped()
        };
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("hogguard starts");
        let mut input = child.stdin.take().expect("stdin is piped");
        // A command that does not read its input may exit first; that is not a failure.
        let _ = input.write_all(&self.stdin);
        drop(input);
        let output = child.wait_with_output().expect("hogguard runs");
        let output = Output {
            env: self.env,
            code: output.status.code().expect("hogguard exited, not killed"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 errors"),
        };
        self.env.assert_no_leak("stdout", &output.stdout);
        self.env.assert_no_leak("stderr", &output.stderr);
        self.env.assert_no_leak_in_files(&before);
        assert_each_cause_once(&output.stderr);
        output
    }

    /// Starts the command with piped standard streams, for tests that signal or talk to a
    /// running hogguard. Check what it printed with [`TestEnv::assert_no_leak`].
    pub(crate) fn spawn(mut self) -> Child {
        self.command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hogguard starts")
    }
}

/// Panics when an error or warning line says one thing twice: a cause printed both in its
/// error's message and as its source (`x.json: No such file (os error 2): No such file (os
/// error 2)`), or a path prefixed to a message that already starts with it.
fn assert_each_cause_once(stderr: &str) {
    for line in stderr.lines() {
        let Some(message) = line
            .strip_prefix("error: ")
            .or_else(|| line.strip_prefix("warning: "))
        else {
            continue;
        };
        let segments: Vec<&str> = message.split(": ").map(str::trim).collect();
        for (i, segment) in segments.iter().enumerate() {
            assert!(
                segment.is_empty() || !segments[i + 1..].contains(segment),
                "`{segment}` is said twice in:\n{line}"
            );
        }
    }
}

/// What a run printed, and how it exited.
pub(crate) struct Output<'e> {
    env: &'e TestEnv,
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The item `id` of a `check --format json` report.
#[track_caller]
pub(crate) fn check_item<'r>(report: &'r serde_json::Value, id: &str) -> &'r serde_json::Value {
    report["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["id"] == id))
        .unwrap_or_else(|| panic!("no item {id} in {report}"))
}

/// Replacements that make output stable across runs: times, durations, sizes, hashes, masks.
static STABLE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "[TIME]",
        ),
        (r"\b\d+(\.\d+)?(s|ms|µs)\b", "[DURATION]"),
        // Generated keys differ in length, and so do the bytes scanned.
        (r"\b\d+(\.\d+)? (B|KiB|MiB|GiB)\b", "[SIZE]"),
        (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
        (
            r"\b(ph[a-z]_|whse|hgp_)\.\.\.[A-Za-z0-9_+/=-]{4}",
            "${1}...[MASK]",
        ),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    ]
    .into_iter()
    .map(|(pattern, replacement)| (Regex::new(pattern).expect("valid filter"), replacement))
    .collect()
});

impl Output<'_> {
    /// Panics unless the exit code is `code`, showing what was printed.
    #[track_caller]
    pub(crate) fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Exit code, standard output and standard error in one text for a snapshot, with the
    /// work tree's path, times, durations, hashes and masks replaced by stable names.
    pub(crate) fn snapshot(&self) -> String {
        let text = format!(
            "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        );
        let mut text = self.normalize_paths(&text);
        for (pattern, replacement) in STABLE.iter() {
            text = pattern.replace_all(&text, *replacement).into_owned();
        }
        text
    }

    /// `text` with the work tree's path (as given and as resolved) written `[REPO]`.
    fn normalize_paths(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let raw = self.env.path().to_owned();
        if let Ok(resolved) = raw.canonicalize() {
            text = text.replace(&*resolved.to_string_lossy(), "[REPO]");
        }
        text.replace(&*raw.to_string_lossy(), "[REPO]")
    }

    /// The item `id` of a `check --format json` report on standard output.
    #[track_caller]
    pub(crate) fn check_item(&self, id: &str) -> serde_json::Value {
        check_item(&self.json(), id).clone()
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

/// Sends `request`, a whole HTTP/1.1 request with `Connection: close`, to `addr` and returns
/// the answer's status and body.
pub(crate) fn http_exchange(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {answer:?}"));
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}
