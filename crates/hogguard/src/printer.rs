//! Everything hogguard prints: reports on standard output, warnings, errors, notes and
//! progress on standard error, with colours, and untrusted text redacted and escaped. The
//! rest of the crate may not print (`clippy::print_stdout` and `print_stderr` are denied);
//! this module writes through `anstream` and never panics on a closed stream.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// `eprintln!` that ignores a standard error nobody reads any more instead of panicking.
macro_rules! eprintln_quietly {
    ($($arg:tt)*) => {{
        let _ = writeln!(anstream::stderr(), $($arg)*);
    }};
}

/// Output settings shared by the commands.
pub(crate) struct Printer {
    quiet: bool,
    /// Standard output's reader went away (`hogguard scan | head -c1`): later output is
    /// dropped, and the command still ends with the status its results call for.
    stdout_closed: AtomicBool,
}

impl Printer {
    pub(crate) fn new(color: ColorChoice, quiet: bool) -> Self {
        let choice = match color {
            ColorChoice::Auto => anstream::ColorChoice::Auto,
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
        };
        choice.write_global();
        Printer {
            quiet,
            stdout_closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }

    /// Writes `text` to standard output. A reader that went away is not an error: the
    /// output stops quietly and the exit code stays the one the results call for.
    pub(crate) fn out(&self, text: &str) -> std::io::Result<()> {
        if self.stdout_closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut stdout = anstream::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.stdout_closed.store(true, Ordering::Relaxed);
                Ok(())
            }
            result => result,
        }
    }

    /// A warning on standard error: `message` redacted and escaped to one line.
    pub(crate) fn warning(&self, message: &str) {
        eprintln_quietly!(
            "{}warning{}: {}",
            style::YELLOW,
            style::RESET,
            untrusted::clean(message)
        );
    }

    /// A warning made of an error and its causes, on one line.
    pub(crate) fn warning_from(&self, error: &anyhow::Error) {
        eprintln_quietly!(
            "{}warning{}: {}",
            style::YELLOW,
            style::RESET,
            untrusted::error_text(error)
        );
    }

    /// An error and its causes on standard error, on one line, redacted and escaped: the
    /// one way every hogguard error reaches people.
    pub(crate) fn error(&self, error: &anyhow::Error) {
        eprintln_quietly!(
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
            eprintln_quietly!("{}", lines.join("\n"));
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
                let _ = write!(std::io::stderr(), "\r\x1b[2K{}", status());
                shown = true;
            }
            if shown {
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            }
        });
        ProgressGuard {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// A line on standard error from a signal handler, which has no [`Printer`] to hand.
pub(crate) fn signal_note(message: &str) {
    eprintln_quietly!("{message}");
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

/// A count with the word that agrees with it: `1 key`, `2 keys`.
pub(crate) fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
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
