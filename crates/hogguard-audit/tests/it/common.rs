//! Helpers shared by the tests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hogguard_audit::{AuditLog, AuditOptions, Entry, EntryInput, Filter, Outcome, query};
use hogguard_posthog::Sleeper;
use hogguard_scan::{ScanOptions, Scanner};
use tempfile::TempDir;

/// The scanner, compiled once for all tests.
pub(crate) fn scanner() -> Arc<Scanner> {
    static SCANNER: OnceLock<Arc<Scanner>> = OnceLock::new();
    Arc::clone(SCANNER.get_or_init(|| Arc::new(Scanner::new(&[], ScanOptions::default()).unwrap())))
}

/// Options for tests: the shared scanner and a short lock wait.
pub(crate) fn options() -> AuditOptions {
    AuditOptions::default()
        .scanner(scanner())
        .lock_timeout(Duration::from_millis(100))
}

/// A fresh directory and the path of a log in it.
pub(crate) fn temp_log() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    (dir, path)
}

/// An input numbered `n`, by one of three users, failing every third time.
pub(crate) fn input(n: u64) -> EntryInput {
    let result = if n.is_multiple_of(3) {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    EntryInput::new(
        format!("test.action{}", n % 2),
        format!("user{}", n % 3),
        format!("resource {n}"),
        result,
    )
    .with_metadata("n", n)
}

/// Creates a log at `path` with `count` entries and closes it (so the checkpoint names the last).
pub(crate) fn write_log(path: &Path, count: u64, options: &AuditOptions) -> Vec<Entry> {
    let log = AuditLog::open(path, options).unwrap();
    let entries = (1..=count).map(|n| log.append(input(n)).unwrap()).collect();
    log.close().unwrap();
    entries
}

/// Every entry of the log, failing on any error.
pub(crate) fn all_entries(path: &Path) -> Vec<Entry> {
    query(path, &Filter::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A sleeper that records waits and returns at once.
#[derive(Default)]
pub(crate) struct RecordingSleeper {
    pub(crate) waits: Mutex<Vec<Duration>>,
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) {
        self.waits.lock().unwrap().push(duration);
    }
}
