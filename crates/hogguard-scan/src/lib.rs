//! Finds PostHog secrets in files, in a git repository's whole object store, in the git index
//! and in streams.
//!
//! Every PostHog token kind and era is recognised (`phc_`, `phx_`, `phs_`, `pha_`, `phr_`, with
//! base57 and base62 bodies), as are unprefixed legacy personal keys next to PostHog context,
//! webhook signing secrets and literal values of PostHog-named secret variables. Public `phc_`
//! project keys are reported as information, not as secrets.
//!
//! ```
//! use hogguard_scan::{ScanOptions, Scanner};
//!
//! let scanner = Scanner::new(&[], ScanOptions::default())?;
//! let body = "23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
//! let text = format!("POSTHOG_PERSONAL_API_KEY=phx_{}\n", &body[..48]);
//! let outcome = scanner.scan_reader("-", text.as_bytes())?;
//! assert_eq!(outcome.findings.len(), 1);
//! assert_eq!(outcome.findings[0].rule, "posthog-personal-api-key");
//! assert_eq!(outcome.findings[0].masked, "phx_...MNPQ");
//! # Ok::<(), hogguard_scan::Error>(())
//! ```
#![deny(missing_docs)]

mod baseline;
mod entropy;
mod error;
mod finding;
mod matcher;
pub mod report;
mod rules;
mod source;
mod stream;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hogguard_secret::Secret;

pub use baseline::Baseline;
pub use entropy::shannon_entropy;
pub use error::Error;
pub use finding::Finding;
pub use rules::{CustomRule, Rule, Severity, builtin_rules};

use matcher::Matcher;
use stream::{Located, Scanned, Window};

/// How a scan treats its inputs.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Scan files that `.gitignore`, `.ignore` and git's exclude files would skip.
    pub no_ignore: bool,
    /// Scan inputs that look binary (a NUL byte near the start) instead of skipping them.
    pub scan_binary: bool,
    /// Worker threads; the number of CPUs when `None`.
    pub threads: Option<usize>,
}

/// Live counters of a running scan, for progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Inputs (files or blobs) scanned so far.
    pub inputs: AtomicU64,
    /// Bytes scanned so far.
    pub bytes: AtomicU64,
    /// Set to stop the scan early.
    pub interrupted: AtomicBool,
}

/// A problem with one input that was skipped; the scan went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The input.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// What a scan found and how much it covered.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Findings, ordered by path, line and column.
    pub findings: Vec<Finding>,
    /// Inputs that could not be scanned.
    pub warnings: Vec<Warning>,
    /// Inputs scanned.
    pub inputs: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Inputs skipped because they look binary.
    pub binary_skipped: u64,
}

impl ScanOutcome {
    fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (&a.path, a.line, a.column, &a.rule).cmp(&(&b.path, b.line, b.column, &b.rule))
        });
        self.warnings.sort_by(|a, b| a.path.cmp(&b.path));
    }
}

/// Where a located match came from, to turn it into a [`Finding`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub(crate) path: String,
    pub(crate) blob: Option<String>,
}

/// The compiled rules and options: build one, then scan any number of inputs with it.
pub struct Scanner {
    matcher: Matcher,
    rules: Vec<Rule>,
    options: ScanOptions,
    progress: std::sync::Arc<Progress>,
}

impl Scanner {
    /// Compiles the built-in rules and `custom` rules.
    pub fn new(custom: &[CustomRule], options: ScanOptions) -> Result<Self, Error> {
        let builtin = builtin_rules();
        let mut ids: Vec<&str> = builtin.iter().map(|r| r.id.as_str()).collect();
        for rule in custom {
            if ids.contains(&rule.id.as_str()) {
                return Err(Error::InvalidRule {
                    id: rule.id.clone(),
                    reason: "another rule has the same id".to_owned(),
                });
            }
            ids.push(&rule.id);
        }
        let matcher = Matcher::new(custom)?;
        let mut rules = builtin;
        rules.extend(custom.iter().map(|c| {
            Rule {
                id: c.id.clone(),
                kind: hogguard_secret::CredentialKind::Custom,
                severity: c.severity,
                secret: c.secret,
                description: c
                    .description
                    .clone()
                    .unwrap_or_else(|| format!("custom rule {}", c.id)),
            }
        }));
        Ok(Scanner {
            matcher,
            rules,
            options,
            progress: Default::default(),
        })
    }

    /// Every rule this scanner applies, built-in first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The live counters of this scanner's scans.
    pub fn progress(&self) -> std::sync::Arc<Progress> {
        std::sync::Arc::clone(&self.progress)
    }

    fn threads(&self) -> usize {
        self.options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    /// Scans one stream (standard input, say), reported under `name`.
    pub fn scan_reader(
        &self,
        name: &str,
        reader: impl std::io::Read,
    ) -> Result<ScanOutcome, Error> {
        let mut window = Window::new();
        let mut outcome = ScanOutcome::default();
        let origin = Origin {
            path: name.to_owned(),
            blob: None,
        };
        let mut found = Vec::new();
        let scanned = stream::scan_reader(
            &self.matcher,
            reader,
            &mut window,
            self.options.scan_binary,
            |m| {
                found.push(self.finding(&origin, m));
            },
        )
        .map_err(|source| Error::Io {
            path: PathBuf::from(name),
            source,
        })?;
        self.count(&mut outcome, scanned);
        outcome.findings = found;
        Ok(outcome)
    }

    /// Scans files and directories, walking directories in parallel.
    pub fn scan_paths(&self, paths: &[PathBuf]) -> Result<ScanOutcome, Error> {
        let mut outcome = source::files::scan(self, paths)?;
        outcome.sort();
        Ok(outcome)
    }

    /// Scans every blob in the object store of the repository at `repo` once, packed and loose,
    /// and attributes findings to the first commit that introduced them.
    pub fn scan_git(&self, repo: &Path) -> Result<ScanOutcome, Error> {
        let mut outcome = source::git::scan(self, repo)?;
        outcome.sort();
        Ok(outcome)
    }

    /// Scans what the index of the repository at `repo` would commit: the staged content of
    /// every path whose staged blob differs from `HEAD`.
    pub fn scan_staged(&self, repo: &Path) -> Result<ScanOutcome, Error> {
        let mut outcome = source::staged::scan(self, repo)?;
        outcome.sort();
        Ok(outcome)
    }

    fn count(&self, outcome: &mut ScanOutcome, scanned: Scanned) {
        match scanned {
            Scanned::Bytes(bytes) => {
                outcome.inputs += 1;
                outcome.bytes += bytes;
                self.progress.inputs.fetch_add(1, Ordering::Relaxed);
                self.progress.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Scanned::Binary => outcome.binary_skipped += 1,
        }
    }

    pub(crate) fn finding(&self, origin: &Origin, located: Located) -> Finding {
        let rule = &self.rules[located.rule];
        let value = Secret::new(String::from_utf8_lossy(&located.value).into_owned());
        Finding {
            rule: rule.id.clone(),
            kind: rule.kind,
            secret: rule.secret,
            severity: rule.severity,
            path: origin.path.clone(),
            line: located.line,
            column: located.column,
            commit: None,
            author: None,
            date: None,
            masked: value.mask(),
            fingerprint: value.fingerprint(),
            blob: origin.blob.clone(),
            unreachable: false,
            value,
        }
    }
}

/// Collects results from worker threads.
#[derive(Default)]
pub(crate) struct Collector {
    outcome: Mutex<ScanOutcome>,
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
