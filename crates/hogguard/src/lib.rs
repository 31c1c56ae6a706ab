//! The `hogguard` command line: argument parsing, settings and the commands.
//!
//! `main.rs` only calls [`main`]; everything else lives here where tests can reach it.
//! Only the printer writes to the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod age;
mod audit;
mod cli;
mod commands;
mod config;
mod environments;
mod interrupt;
mod policy;
mod printer;
mod repo;
mod settings;
mod untrusted;
mod verification;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, WebhookCommand};
use crate::printer::Printer;
use crate::settings::Settings;

/// How a command ended, as the exit codes every hogguard command shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// 0: nothing found, or everything verified.
    Clean,
    /// 1: findings, a failed check or a failed verification.
    Findings,
    /// 130: stopped by Ctrl-C after finishing the step in flight.
    Interrupted,
}

impl Status {
    /// The status of a command whose results `failed` or not, after the interrupt it may
    /// have deferred: Ctrl-C wins, then findings.
    pub(crate) fn of_results(failed: bool) -> Status {
        if interrupt::requested() {
            Status::Interrupted
        } else if failed {
            Status::Findings
        } else {
            Status::Clean
        }
    }
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        match status {
            Status::Clean => ExitCode::SUCCESS,
            Status::Findings => ExitCode::from(1),
            Status::Interrupted => ExitCode::from(EXIT_INTERRUPTED as u8),
        }
    }
}

/// Exit code for usage and runtime errors.
const EXIT_ERROR: u8 = 2;
/// Exit code after an interrupt (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;

/// Runs hogguard with `args` (program name first) and returns its exit code.
pub fn main(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let printer = Printer::new(cli.global.color, cli.global.quiet);
    match run(cli, &printer) {
        Ok(status) => status.into(),
        Err(err) => {
            printer.error(&err);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs the command, resolving settings only for the commands that need the configuration:
/// `init` (which rewrites a broken one) and the offline webhook tools never read it.
fn run(cli: Cli, printer: &Printer) -> anyhow::Result<Status> {
    let resolve = || Settings::resolve(cli.global.config.as_deref());
    match cli.command {
        Command::Init(args) => commands::init::run(args, printer),
        Command::Completions(args) => commands::docs::completions(args, printer),
        Command::Man => commands::docs::man(printer),
        Command::Webhook(command) if !matches!(command, WebhookCommand::Serve(_)) => {
            commands::webhook::run(command, &Settings::without_configuration(), printer)
        }
        Command::Webhook(command) => commands::webhook::run(command, &resolve()?, printer),
        Command::Scan(args) => commands::scan::run(args, &resolve()?, printer),
        Command::Check(args) => commands::check::run(args, &resolve()?, printer),
        Command::Rotate(args) => commands::rotate::run(args, &resolve()?, printer),
        Command::Keys(args) => commands::keys::run(args, &resolve()?, printer),
        Command::Audit(command) => commands::audit::run(command, &resolve()?, printer),
        Command::Proxy(args) => commands::proxy::run(args, cli.global.config.as_deref(), printer),
        Command::Scopes(args) => commands::scopes::run(args, &resolve()?, printer),
    }
}
