//! Everything hogguard prints for people: colours, escaping of untrusted text, warnings,
//! progress. Machine formats are written by the commands as they are.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "this module is the printer"
)]

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::cli::ColorChoice;
use crate::untrusted;

/// ANSI styles used by the human format; anstream strips them when colour is off.
pub(crate) mod style {
    pub(crate) const RED: &str = "\x1b[31m";
    pub(crate) const BOLD_RED: &str = "\x1b[1;31m";
    pub(crate) const BOLD: &str = "\x1b[1m";
    pub(crate) const YELLOW: &str = "\x1b[33m";
    pub(crate) const CYAN: &str = "\x1b[36m";
    pub(crate) const DIM: &str = "\x1b[2m";
    pub(crate) const GREEN: &str = "\x1b[32m";
    pub(crate) const RESET: &str = "\x1b[0m";
}

/// Output settings shared by the commands.
pub(crate) struct Printer {
    quiet: bool,
}

impl Printer {
    pub(crate) fn new(color: ColorChoice, quiet: bool) -> Self {
        let choice = match color {
            ColorChoice::Auto => anstream::ColorChoice::Auto,
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
        };
        choice.write_global();
        Printer { quiet }
    }

    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }

    /// Writes `text` to standard output.
    pub(crate) fn out(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = anstream::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    }

    /// A warning on standard error: `message` redacted and escaped to one line.
    pub(crate) fn warning(&self, message: &str) {
        anstream::eprintln!(
            "{}warning{}: {}",
            style::YELLOW,
            style::RESET,
            untrusted::clean(message)
        );
    }

    /// A warning made of an error and its causes, on one line.
    pub(crate) fn warning_from(&self, error: &anyhow::Error) {
        anstream::eprintln!(
            "{}warning{}: {}",
            style::YELLOW,
            style::RESET,
            untrusted::error_text(error)
        );
    }

    /// An error and its causes on standard error, on one line, redacted and escaped: the
    /// one way every hogguard error reaches people.
    pub(crate) fn error(&self, error: &anyhow::Error) {
        anstream::eprintln!(
            "{}error{}: {}",
            style::BOLD_RED,
            style::RESET,
            untrusted::error_text(error)
        );
    }

    /// A note for people on standard error, dropped by `--quiet`; redacted, and each of its
    /// lines escaped.
    pub(crate) fn note(&self, message: &str) {
        if !self.quiet {
            let redacted = untrusted::redact(message);
            let lines: Vec<String> = redacted.lines().map(untrusted::escape).collect();
            anstream::eprintln!("{}", lines.join("\n"));
        }
    }

    /// Shows `status()` on standard error every few hundred milliseconds while the returned
    /// guard lives, when standard error is a terminal and `--quiet` is off.
    pub(crate) fn progress(&self, status: impl Fn() -> String + Send + 'static) -> ProgressGuard {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressGuard {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut shown = false;
            // Dropping the guard drops `stop`, which ends the wait at once.
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(250))
            {
                eprint!("\r\x1b[2K{}", status());
                shown = true;
            }
            if shown {
                eprint!("\r\x1b[2K");
            }
        });
        ProgressGuard {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// Stops the progress display when dropped.
pub(crate) struct ProgressGuard {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `text` without the ANSI styles of [`style`], for files.
pub(crate) fn strip_styles(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}

/// A byte count for people: `512 B`, `3.4 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_byte_counts() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
    }
}
