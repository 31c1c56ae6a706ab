//! Files and directories, walked in parallel with git's ignore rules; FIFOs and other streams
//! named on the command line, read as streams.
//!
//! Ignore rules only keep untracked files out: in a git work tree, every file the index
//! tracks is scanned even when `.gitignore` or `.ignore` matches it (`git add -f .env`).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use ignore::{WalkBuilder, WalkState};

use crate::stream::{Scanned, Window};
use crate::{Error, Origin, ScanOutcome, Scanner, Warning};

/// Per-thread state, merged into the collector when the walker drops it.
struct Worker<'a> {
    scanner: &'a Scanner,
    collector: &'a Collector,
    window: Window,
    outcome: ScanOutcome,
    /// Files this worker scanned or tried to, as shown, when tracked files are looked up.
    visited: Option<Vec<String>>,
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.collector.merge(
            std::mem::take(&mut self.outcome),
            self.visited.take().unwrap_or_default(),
        );
    }
}

impl Worker<'_> {
    /// Scans one file; `named` when the user named it, so that a file skipped as binary
    /// leaves the scan incomplete instead of passing unread.
    fn scan_file(&mut self, path: &Path, named: bool) {
        let display = display_path(path);
        if let Some(visited) = &mut self.visited {
            visited.push(display.clone());
        }
        scan_one(
            self.scanner,
            path,
            display,
            named,
            &mut self.window,
            &mut self.outcome,
        );
    }
}

/// Scans the file or stream at `path`, shown as `display`, into `outcome`.
fn scan_one(
    scanner: &Scanner,
    path: &Path,
    display: String,
    named: bool,
    window: &mut Window,
    outcome: &mut ScanOutcome,
) {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            return outcome
                .warnings
                .push(Warning::unread(display, "cannot be opened").because(e));
        }
    };
    let origin = Origin {
        path: display,
        blob: None,
    };
    match scanner.scan_stream(&origin, file, window, &mut outcome.findings) {
        Ok(Scanned::Binary) if named => {
            outcome.binary_skipped += 1;
            outcome.warnings.push(Warning::unread(
                origin.path,
                "looks binary and was not scanned (--binary scans it)",
            ));
        }
        Ok(scanned) => scanner.count(outcome, scanned),
        Err(e) => outcome
            .warnings
            .push(Warning::unread(origin.path, "cannot be read").because(e)),
    }
}

/// How a path is shown: as given, without a leading `./`.
fn display_path(path: &Path) -> String {
    let shown = path.strip_prefix(".").unwrap_or(path);
    shown.display().to_string()
}

pub(crate) fn scan(scanner: &Scanner, paths: &[PathBuf]) -> Result<ScanOutcome, Error> {
    // Pipes, FIFOs and devices named by the user (`scan <(cmd)`, `scan /dev/stdin`) are
    // streams: read them once, here, rather than let the walker pass over them.
    let mut streams = ScanOutcome::default();
    let mut window = Window::new();
    let mut walked = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(metadata) if !metadata.is_file() && !metadata.is_dir() => scan_one(
                scanner,
                path,
                display_path(path),
                true,
                &mut window,
                &mut streams,
            ),
            _ => walked.push(path.clone()),
        }
    }
    let collector = Collector::default();
    collector.merge(streams, Vec::new());
    let Some((first, rest)) = walked.split_first() else {
        return Ok(collector.into_outcome().0);
    };
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
            visited: honour.then(Vec::new),
        };
        Box::new(move |entry| {
            if scanner.progress.interrupted.load(Ordering::Relaxed) {
                return WalkState::Quit;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    worker.outcome.warnings.push(walk_warning(e));
                    return WalkState::Continue;
                }
            };
            let Some(file_type) = entry.file_type() else {
                return WalkState::Continue;
            };
            let named = entry.depth() == 0;
            if file_type.is_file() {
                worker.scan_file(entry.path(), named);
            } else if file_type.is_symlink() {
                match std::fs::metadata(entry.path()) {
                    // A link the user named is followed; links met on a walk are not.
                    Ok(target) if named && target.is_file() => worker.scan_file(entry.path(), true),
                    Ok(_) => {}
                    Err(e) => worker.outcome.warnings.push(
                        Warning::note(display_path(entry.path()), "broken symbolic link")
                            .because(e),
                    ),
                }
            }
            WalkState::Continue
        })
    });
    let (mut outcome, visited) = collector.into_outcome();
    if honour {
        scan_ignored_tracked(scanner, &walked, &visited, &mut outcome);
    }
    Ok(outcome)
}

/// A walk error as a warning that names its path once.
fn walk_warning(error: ignore::Error) -> Warning {
    match error {
        ignore::Error::WithPath { path, err } => {
            Warning::unread(display_path(&path), "cannot be read").because(err)
        }
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_warning(*err)
        }
        other => Warning::unread("", "the walk failed").because(other),
    }
}

/// Scans the files under the walked roots that the index of their repository tracks but the
/// walk left out because an ignore rule matched them.
fn scan_ignored_tracked(
    scanner: &Scanner,
    roots: &[PathBuf],
    visited: &HashSet<String>,
    outcome: &mut ScanOutcome,
) {
    let mut window = Window::new();
    let mut done = HashSet::new();
    for root in roots.iter().filter(|root| root.is_dir()) {
        for (path, display) in tracked_under(root) {
            if visited.contains(&display) || !done.insert(display.clone()) {
                continue;
            }
            // Tracked but deleted, or a link: not a file of the tree to scan.
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                scan_one(scanner, &path, display, false, &mut window, outcome);
            }
        }
    }
}

/// The regular files tracked by the index of the repository holding `root` that lie under
/// `root`, as (path to open, path as shown). Nothing when `root` is in no git work tree.
fn tracked_under(root: &Path) -> Vec<(PathBuf, String)> {
    let Ok(repo) = gix::discover(root) else {
        return Vec::new();
    };
    let (Some(workdir), Ok(index)) = (repo.workdir(), repo.index_or_empty()) else {
        return Vec::new();
    };
    let (Ok(workdir), Ok(canonical_root)) = (workdir.canonicalize(), root.canonicalize()) else {
        return Vec::new();
    };
    let mut tracked = Vec::new();
    for entry in index.entries() {
        use gix::index::entry::Mode;
        if !(entry.mode == Mode::FILE || entry.mode == Mode::FILE_EXECUTABLE) {
            continue;
        }
        let Ok(relative) = gix::path::from_bstr(entry.path(&index)) else {
            continue;
        };
        let absolute = workdir.join(relative);
        if let Ok(below) = absolute.strip_prefix(&canonical_root) {
            let path = root.join(below);
            let display = display_path(&path);
            tracked.push((path, display));
        }
    }
    tracked
}

/// Collects results from worker threads.
#[derive(Default)]
pub(crate) struct Collector {
    parts: std::sync::Mutex<(ScanOutcome, HashSet<String>)>,
}

impl Collector {
    pub(crate) fn merge(&self, part: ScanOutcome, visited: Vec<String>) {
        let mut parts = self
            .parts
            .lock()
            .expect("no worker panics while holding the lock");
        let (outcome, all_visited) = &mut *parts;
        outcome.findings.extend(part.findings);
        outcome.warnings.extend(part.warnings);
        outcome.inputs += part.inputs;
        outcome.bytes += part.bytes;
        outcome.binary_skipped += part.binary_skipped;
        all_visited.extend(visited);
    }

    pub(crate) fn into_outcome(self) -> (ScanOutcome, HashSet<String>) {
        self.parts
            .into_inner()
            .expect("no worker panics while holding the lock")
    }
}
