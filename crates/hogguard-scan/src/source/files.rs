//! Files and directories, walked in parallel with git's ignore rules.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use ignore::{WalkBuilder, WalkState};

use crate::stream::{self, Window};
use crate::{Error, Origin, ScanOutcome, Scanner, Warning};

/// Per-thread state, merged into the collector when the walker drops it.
struct Worker<'a> {
    scanner: &'a Scanner,
    collector: &'a Collector,
    window: Window,
    outcome: ScanOutcome,
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.collector.merge(std::mem::take(&mut self.outcome));
    }
}

impl Worker<'_> {
    fn scan_file(&mut self, path: &Path) {
        let display = display_path(path);
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => return self.warn(display, e.to_string()),
        };
        let origin = Origin {
            path: display,
            blob: None,
        };
        let scanner = self.scanner;
        let findings = &mut self.outcome.findings;
        let scanned = stream::scan_reader(
            &scanner.matcher,
            file,
            &mut self.window,
            scanner.options.scan_binary,
            |m| {
                findings.push(scanner.finding(&origin, m));
            },
        );
        match scanned {
            Ok(scanned) => scanner.count(&mut self.outcome, scanned),
            Err(e) => self.warn(origin.path, e.to_string()),
        }
    }

    fn warn(&mut self, path: String, message: String) {
        self.outcome.warnings.push(Warning { path, message });
    }
}

/// How a path is shown: as given, without a leading `./`.
fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    shown.display().to_string()
}

pub(crate) fn scan(scanner: &Scanner, paths: &[PathBuf]) -> Result<ScanOutcome, Error> {
    let collector = Collector::default();
    let (first, rest) = paths
        .split_first()
        .expect("the caller passes at least one path");
    let honour = !scanner.options.no_ignore;
    let mut builder = WalkBuilder::new(first);
    for path in rest {
        builder.add(path);
    }
    builder
        .hidden(false)
        .follow_links(false)
        .git_ignore(honour)
        .git_global(honour)
        .git_exclude(honour)
        .ignore(honour)
        .parents(honour)
        // .gitignore counts outside repositories too: a project not yet under git still means it.
        .require_git(false)
        .threads(scanner.threads())
        // The object store is scanned with `--git`, not as files.
        .filter_entry(|entry| entry.file_name() != ".git");

    builder.build_parallel().run(|| {
        let mut worker = Worker {
            scanner,
            collector: &collector,
            window: Window::new(),
            outcome: ScanOutcome::default(),
        };
        Box::new(move |entry| {
            if scanner.progress.interrupted.load(Ordering::Relaxed) {
                return WalkState::Quit;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let path = match &e {
                        ignore::Error::WithPath { path, .. } => display_path(path),
                        _ => String::new(),
                    };
                    worker.warn(path, e.to_string());
                    return WalkState::Continue;
                }
            };
            let Some(file_type) = entry.file_type() else {
                return WalkState::Continue;
            };
            if file_type.is_file() {
                worker.scan_file(entry.path());
            } else if file_type.is_symlink() && std::fs::metadata(entry.path()).is_err() {
                worker.warn(
                    display_path(entry.path()),
                    "broken symbolic link".to_owned(),
                );
            }
            WalkState::Continue
        })
    });
    Ok(collector.into_outcome())
}

/// Collects results from worker threads.
#[derive(Default)]
pub(crate) struct Collector {
    outcome: std::sync::Mutex<ScanOutcome>,
}

impl Collector {
    pub(crate) fn merge(&self, part: ScanOutcome) {
        let mut outcome = self
            .outcome
            .lock()
            .expect("no worker panics while holding the lock");
        outcome.findings.extend(part.findings);
        outcome.warnings.extend(part.warnings);
        outcome.inputs += part.inputs;
        outcome.bytes += part.bytes;
        outcome.binary_skipped += part.binary_skipped;
    }

    pub(crate) fn into_outcome(self) -> ScanOutcome {
        self.outcome
            .into_inner()
            .expect("no worker panics while holding the lock")
    }
}
