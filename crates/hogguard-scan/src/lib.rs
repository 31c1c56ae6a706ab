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
//! // A made-up body: every 23rd character of PostHog's base57 alphabet.
//! let base57 = b"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
//! let body: String = (0..48).map(|i| char::from(base57[(i * 23 + 5) % 57])).collect();
//! let text = format!("POSTHOG_PERSONAL_API_KEY=phx_{body}\n");
//! let outcome = scanner.scan_reader("-", text.as_bytes())?;
//! assert_eq!(outcome.findings.len(), 1);
//! assert_eq!(outcome.findings[0].rule, "posthog-personal-api-key");
//! assert_eq!(outcome.findings[0].masked, format!("phx_...{}", &body[44..]));
//! # Ok::<(), hogguard_scan::Error>(())
//! ```
#![deny(missing_docs)]

mod baseline;
mod context;
mod encoded;
mod entropy;
mod error;
mod finding;
mod matcher;
pub mod report;
mod rules;
mod source;
mod stream;
mod tokens;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hogguard_secret::Secret;

pub use baseline::{Baseline, BaselineError};
pub use entropy::shannon_entropy;
pub use error::{Cause, Error};
pub use finding::{Finding, Revocation, Verification};
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
    /// Worker threads; the number of CPUs when `None`, at most [`MAX_THREADS`].
    pub threads: Option<usize>,
}

/// The most worker threads a scan starts, whatever it is asked for.
pub const MAX_THREADS: usize = 256;

/// How many findings of one secret by one rule in one input are stored; further ones are
/// counted in the last stored finding's [`Finding::repeats`], so memory stays bounded on a file
/// of repeated keys.
pub const MAX_IDENTICAL_FINDINGS: u32 = 100;

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

/// A problem with one input; the scan went on. Shown as `path: message`, with the cause as
/// its [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
pub struct Warning {
    /// The input (a path, an object id); secrets in it are masked.
    pub path: String,
    /// What went wrong, without its cause.
    pub message: String,
    /// Why, when a library said so.
    pub cause: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    /// Whether content went unscanned because of it, so that the scan cannot be called clean.
    pub incomplete: bool,
}

// Only the sources that read files or git make warnings.
#[cfg(any(feature = "files", feature = "git"))]
impl Warning {
    /// A problem that left content of `path` unscanned.
    pub(crate) fn unread(path: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            path: path.into(),
            message: message.into(),
            cause: None,
            incomplete: true,
        }
    }

    /// A problem worth saying that hid no content (a broken symbolic link).
    pub(crate) fn note(path: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            incomplete: false,
            ..Self::unread(path, message)
        }
    }

    /// The same warning with `cause` as its source.
    pub(crate) fn because(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(Arc::from(cause.into()));
        self
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for Warning {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
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
    /// Whether every input was read: no warning says content went unscanned. A scan that is
    /// not complete must not be reported as clean.
    pub fn is_complete(&self) -> bool {
        self.warnings.iter().all(|w| !w.incomplete)
    }

    /// Masks secrets in paths and messages (a key can be a file name) and sorts findings by
    /// path, line and column.
    fn finish(&mut self, scanner: &Scanner) {
        for finding in &mut self.findings {
            if let std::borrow::Cow::Owned(masked) = scanner.redact(&finding.path) {
                finding.path = masked;
            }
        }
        for warning in &mut self.warnings {
            if let std::borrow::Cow::Owned(masked) = scanner.redact(&warning.path) {
                warning.path = masked;
            }
            if let std::borrow::Cow::Owned(masked) = scanner.redact(&warning.message) {
                warning.message = masked;
            }
        }
        self.findings.sort_by(|a, b| {
            (&a.path, a.line, a.column, &a.rule).cmp(&(&b.path, b.line, b.column, &b.rule))
        });
        self.warnings.sort_by(|a, b| a.path.cmp(&b.path));
    }
}

/// Counts identical findings in one input, so that only [`MAX_IDENTICAL_FINDINGS`] of each
/// are stored.
#[derive(Default)]
pub(crate) struct RepeatLimiter {
    /// Per rule and value: how many were stored, and where the last one is.
    stored: HashMap<(usize, Vec<u8>), (u32, usize)>,
}

impl RepeatLimiter {
    /// Stores `located` in `store` (made into what the store holds), or counts it as a repeat
    /// of the stored finding of the same rule and value once that has been stored enough.
    pub(crate) fn record<T: Repeats>(
        &mut self,
        store: &mut Vec<T>,
        located: Located,
        make: impl FnOnce(Located) -> T,
    ) {
        let next = store.len();
        let entry = self
            .stored
            .entry((located.rule, located.value.clone()))
            .or_insert((0, next));
        if entry.0 >= MAX_IDENTICAL_FINDINGS {
            *store[entry.1].repeats() += 1;
            return;
        }
        *entry = (entry.0 + 1, next);
        store.push(make(located));
    }
}

/// What a [`RepeatLimiter`] stores: something that counts its repeats.
pub(crate) trait Repeats {
    fn repeats(&mut self) -> &mut u64;
}

impl Repeats for Finding {
    fn repeats(&mut self) -> &mut u64 {
        &mut self.repeats
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

    #[cfg(any(feature = "files", feature = "git"))]
    fn threads(&self) -> usize {
        self.options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, MAX_THREADS)
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
        let scanned = self
            .scan_stream(&origin, reader, &mut window, &mut outcome.findings)
            .map_err(|source| Error::Io {
                action: "read",
                path: PathBuf::from(name),
                source,
            })?;
        self.count(&mut outcome, scanned);
        outcome.finish(self);
        Ok(outcome)
    }

    /// Scans one stream into `findings`, storing at most [`MAX_IDENTICAL_FINDINGS`] of each.
    pub(crate) fn scan_stream(
        &self,
        origin: &Origin,
        reader: impl std::io::Read,
        window: &mut Window,
        findings: &mut Vec<Finding>,
    ) -> std::io::Result<Scanned> {
        let mut limiter = RepeatLimiter::default();
        stream::scan_reader(
            &self.matcher,
            reader,
            window,
            self.options.scan_binary,
            |m| limiter.record(findings, m, |m| self.finding(origin, m)),
        )
    }

    /// Scans files and directories, walking directories in parallel.
    #[cfg(feature = "files")]
    pub fn scan_paths(&self, paths: &[PathBuf]) -> Result<ScanOutcome, Error> {
        let mut outcome = source::files::scan(self, paths)?;
        outcome.finish(self);
        Ok(outcome)
    }

    /// Scans every blob in the object store of the repository at `repo` once, packed and loose,
    /// and attributes findings to the first commit that introduced them.
    #[cfg(feature = "git")]
    pub fn scan_git(&self, repo: &std::path::Path) -> Result<ScanOutcome, Error> {
        let mut outcome = source::git::scan(self, repo)?;
        outcome.finish(self);
        Ok(outcome)
    }

    /// Scans what the index of the repository at `repo` would commit: the staged content of
    /// every path whose staged blob differs from `HEAD`.
    #[cfg(feature = "git")]
    pub fn scan_staged(&self, repo: &std::path::Path) -> Result<ScanOutcome, Error> {
        let mut outcome = source::staged::scan(self, repo, source::staged::Entries::Staged)?;
        outcome.finish(self);
        Ok(outcome)
    }

    /// Scans every file the index of the repository at `repo` tracks, as staged (ignored and
    /// untracked files are left out).
    #[cfg(feature = "git")]
    pub fn scan_tracked(&self, repo: &std::path::Path) -> Result<ScanOutcome, Error> {
        let mut outcome = source::staged::scan(self, repo, source::staged::Entries::Tracked)?;
        outcome.finish(self);
        Ok(outcome)
    }

    /// `text` with every credential the rules find replaced by its mask: for logs and audit
    /// entries that must never carry a secret, whatever the caller passed.
    pub fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        let mut matches = Vec::new();
        self.matcher
            .find(text.as_bytes(), 0, text.len(), &mut matches);
        if matches.is_empty() {
            return std::borrow::Cow::Borrowed(text);
        }
        matches.sort_unstable_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
        let mut redacted = String::with_capacity(text.len());
        let mut done = 0;
        for m in matches {
            // Matches of custom rules may overlap others or split a character; skip those.
            if m.start < done || !text.is_char_boundary(m.start) || !text.is_char_boundary(m.end) {
                continue;
            }
            redacted.push_str(&text[done..m.start]);
            redacted.push_str(&hogguard_secret::mask(&text[m.start..m.end]));
            done = m.end;
        }
        redacted.push_str(&text[done..]);
        std::borrow::Cow::Owned(redacted)
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
            staged: false,
            decoded_from: located.decoded.then_some("base64"),
            repeats: located.repeats,
            verification: None,
            revocations: Vec::new(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hogguard_testkit::keys::{self, Prefix};

    #[test]
    fn redact_masks_every_credential_and_keeps_the_rest() {
        let scanner = Scanner::new(&[], ScanOptions::default()).unwrap();
        let personal = keys::current(Prefix::Personal);
        let secret = keys::webhook_secret();
        let text = format!("rotated {personal} and {secret}; done");
        let redacted = scanner.redact(&text);
        assert_eq!(
            redacted,
            format!(
                "rotated {} and {}; done",
                hogguard_secret::mask(&personal),
                hogguard_secret::mask(&secret)
            )
        );
        assert!(matches!(
            scanner.redact("nothing here"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
