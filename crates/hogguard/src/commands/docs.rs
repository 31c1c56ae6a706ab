//! `hogguard completions SHELL` and `hogguard man`: shell completion scripts and the manual
//! page, generated from the same argument definitions that parse the command line, so they
//! cannot drift from it.

use anyhow::Result;
use clap::CommandFactory;

use crate::Status;
use crate::cli::{Cli, CompletionsArgs};
use crate::printer::Printer;

pub(crate) fn completions(args: CompletionsArgs, printer: &Printer) -> Result<Status> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "hogguard", &mut script);
    printer.out(&String::from_utf8(script)?)?;
    Ok(Status::Clean)
}

pub(crate) fn man(printer: &Printer) -> Result<Status> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    printer.out(&String::from_utf8(page)?)?;
    Ok(Status::Clean)
}
