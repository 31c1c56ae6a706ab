//! `hogguard scan`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hogguard_scan::report::{self, Summary};
use hogguard_scan::{Baseline, Finding, ScanOptions, ScanOutcome, Scanner, Severity};

use crate::audit::Recorder;
use crate::cli::{Format, ScanArgs};
use crate::printer::{self, Printer, style};
use crate::settings::Settings;

mod live;
use crate::{Status, interrupt};

pub(crate) fn run(args: ScanArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let config = &settings.config;
    let options = ScanOptions {
        no_ignore: args.no_ignore,
        scan_binary: args.binary,
        threads: args.threads,
    };
    let scanner = Scanner::new(&config.scan.rules, options)
        .context("invalid [[scan.rules]] in the configuration")?;
    let baseline = match args.baseline.as_ref().or(config.scan.baseline.as_ref()) {
        Some(path) => Some(Baseline::load(path)?),
        None => None,
    };

    let progress = scanner.progress();
    // Reading files leaves nothing half-done, so Ctrl-C stops at once; `live` defers it while
    // PostHog is asked about a key, so that what was done is audited.
    interrupt::install();
    let started = Instant::now();
    let outcome = {
        let _progress = printer.progress(move || {
            format!(
                "scanning: {} inputs, {}",
                progress.inputs.load(Ordering::Relaxed),
                printer::bytes(progress.bytes.load(Ordering::Relaxed))
            )
        });
        scan(&scanner, &args)?
    };
    let elapsed = started.elapsed();

    for warning in &outcome.warnings {
        // The warning says where and what; its source says why, each once.
        printer.warning_from(&anyhow::Error::new(warning.clone()));
    }
    if outcome.inputs == 0 && !outcome.is_complete() {
        bail!("nothing could be scanned");
    }
    let unread = outcome.warnings.iter().filter(|w| w.incomplete).count();

    if let Some(path) = &args.write_baseline {
        let mut written = Baseline::from_findings(outcome.findings.iter().filter(|f| f.secret));
        // Writing a baseline again keeps the reasons people gave for what it still accepts.
        if path.exists() {
            written = written.with_reasons_from(&Baseline::load(path)?);
        }
        hogguard_fs::replace(
            path,
            written.to_json().as_bytes(),
            hogguard_fs::DEFAULT_FILE_MODE,
        )?;
        printer.note(&format!(
            "wrote {} accepted secrets to {}",
            written.findings.len(),
            path.display()
        ));
        if unread > 0 {
            bail!(incomplete(unread));
        }
        return Ok(Status::Clean);
    }

    let ScanOutcome {
        findings,
        inputs,
        bytes,
        binary_skipped,
        warnings,
    } = outcome;
    let (suppressed, mut findings): (Vec<Finding>, Vec<Finding>) = findings
        .into_iter()
        .partition(|f| baseline.as_ref().is_some_and(|b| b.contains(f)));
    if args.verify || args.revoke {
        let recorder = Recorder::open(settings, args.revoke, printer)?;
        live::verify(&mut findings, config, &recorder)?;
        if args.revoke && !interrupt::requested() {
            live::revoke(&mut findings, config, args.yes, printer, &recorder)?;
        }
        recorder.close()?;
    }
    let summary = Summary {
        findings: findings.len(),
        secrets: findings.iter().filter(|f| f.secret).count(),
        suppressed: suppressed.len(),
        inputs,
        bytes,
        binary_skipped,
        warnings: warnings.len(),
    };
    let text = match args.format {
        Format::Human => human(&findings, &summary, elapsed.as_secs_f64(), printer.quiet()),
        Format::Json => report::json(&findings, &summary) + "\n",
        Format::Sarif => {
            report::sarif(&findings, scanner.rules(), env!("CARGO_PKG_VERSION")) + "\n"
        }
    };
    match &args.output {
        Some(path) => {
            hogguard_fs::replace(
                path,
                printer::strip_styles(&text).as_bytes(),
                hogguard_fs::DEFAULT_FILE_MODE,
            )?;
            // The report went to a file; the person at the terminal still sees the verdict.
            printer.note(&format!(
                "{}; report written to {}",
                printer::strip_styles(&summary_line(&summary, elapsed.as_secs_f64())),
                path.display()
            ));
        }
        None => printer.out(&text)?,
    }
    if interrupt::requested() {
        printer.warning("interrupted: the report above shows what was verified and revoked");
        return Ok(Status::Interrupted);
    }
    // Secrets fail the scan whatever else happened; without them, a scan that left content
    // unread is no pass.
    if summary.secrets > 0 {
        Ok(Status::Findings)
    } else if unread > 0 {
        bail!(incomplete(unread))
    } else {
        Ok(Status::Clean)
    }
}

/// The error of a scan that found no secret but could not read everything.
fn incomplete(unread: usize) -> String {
    format!(
        "the scan is incomplete: {} could not be read (see the warnings above)",
        printer::plural(unread, "input", "inputs")
    )
}

fn scan(scanner: &Scanner, args: &ScanArgs) -> Result<ScanOutcome> {
    if let Some(repo) = &args.git {
        return Ok(scanner.scan_git(repo)?);
    }
    if args.staged {
        return Ok(scanner.scan_staged(Path::new("."))?);
    }
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let stdin = Path::new("-");
    if paths.iter().any(|p| p == stdin) {
        if paths.len() > 1 {
            bail!("`-` (standard input) cannot be combined with other paths");
        }
        return Ok(scanner.scan_reader("-", std::io::stdin().lock())?);
    }
    Ok(scanner.scan_paths(&paths)?)
}

/// One line per finding, then a summary unless quiet. Informational findings are left out
/// when quiet.
/// Adds an indented, dimmed line under a finding: where it was seen, how often.
fn dim_note(text: &mut String, note: impl std::fmt::Display) {
    let _ = writeln!(text, "    {}{note}{}", style::DIM, style::RESET);
}

fn human(findings: &[Finding], summary: &Summary, seconds: f64, quiet: bool) -> String {
    let mut text = String::new();
    for finding in findings.iter().filter(|f| !quiet || f.secret) {
        let (colour, label) = match finding.severity {
            Severity::Critical => (style::BOLD_RED, "critical"),
            Severity::High => (style::RED, "high"),
            Severity::Medium => (style::YELLOW, "medium"),
            Severity::Low => (style::YELLOW, "low"),
            Severity::Info => (style::CYAN, "info"),
        };
        let _ = writeln!(
            text,
            "{}:{}:{}: {colour}{label}{} {} {}",
            crate::untrusted::escape(&finding.path),
            finding.line,
            finding.column,
            style::RESET,
            finding.rule,
            finding.masked,
        );
        if let Some(encoding) = finding.decoded_from {
            let _ = writeln!(
                text,
                "    {}decoded from the {encoding} text that starts here{}",
                style::DIM,
                style::RESET
            );
        }
        if finding.repeats > 0 {
            let times = usize::try_from(finding.repeats).unwrap_or(usize::MAX);
            dim_note(
                &mut text,
                format_args!(
                    "and {} in this input",
                    printer::plural(times, "more time", "more times")
                ),
            );
        }
        if let Some(verification) = &finding.verification {
            let _ = writeln!(text, "    {}", live::describe(verification));
        }
        for revocation in &finding.revocations {
            let _ = writeln!(text, "    {}", live::describe_revocation(revocation));
        }
        if let Some(commit) = &finding.commit {
            let short = commit.get(..12).unwrap_or(commit);
            dim_note(
                &mut text,
                format_args!(
                    "commit {short} by {} on {}",
                    crate::untrusted::escape(finding.author.as_deref().unwrap_or("?")),
                    finding.date.as_deref().unwrap_or("?"),
                ),
            );
        } else if finding.staged {
            dim_note(&mut text, "staged in the index, in no commit yet");
        } else if finding.unreachable {
            dim_note(&mut text, "in a blob that no commit holds (unreachable)");
        }
    }
    if !quiet {
        text.push_str(&summary_line(summary, seconds));
        text.push('\n');
    }
    text
}

/// `1 secret found, 2 public project keys listed (12 inputs, 3.4 KiB in 0.01s)`.
fn summary_line(summary: &Summary, seconds: f64) -> String {
    let public = summary.findings - summary.secrets;
    let mut text = match summary.secrets {
        0 => format!("{}no secrets found{}", style::GREEN, style::RESET),
        1 => format!("{}1 secret found{}", style::BOLD_RED, style::RESET),
        n => format!("{}{n} secrets found{}", style::BOLD_RED, style::RESET),
    };
    if public > 0 {
        let _ = write!(
            text,
            ", {}",
            printer::plural(
                public,
                "public project key listed",
                "public project keys listed"
            )
        );
    }
    if summary.suppressed > 0 {
        let _ = write!(text, ", {} suppressed by the baseline", summary.suppressed);
    }
    let _ = write!(
        text,
        " ({} inputs, {} in {seconds:.2}s)",
        summary.inputs,
        printer::bytes(summary.bytes)
    );
    text
}
