//! `hogguard audit verify|show|log|ship`, and the `audit-log` checklist item.

use anyhow::{Context, Result, bail};
use hogguard_audit::{
    AuditLog, EntryInput, Filter, Outcome as EntryOutcome, ShipOptions, Timestamp,
};
use hogguard_posthog::{CaptureClient, ClientConfig, RetryPolicy};
use std::fmt::Write as _;

use crate::Status;
use crate::audit::{checkpoint_key, current_user, options, redaction_scanner};
use crate::cli::{AuditCommand, AuditFormat, AuditLogArgs, AuditShowArgs, ResultName};
use crate::config::{AuditConfig, Config};
use crate::printer::Printer;
use crate::settings::{Scope, Settings};
use crate::untrusted;

/// The configured log, or the default place when `[audit]` is absent.
fn audit_config(config: &Config) -> AuditConfig {
    config.audit.clone().unwrap_or_default()
}

pub(crate) fn run(command: AuditCommand, settings: &Settings, printer: &Printer) -> Result<Status> {
    let config = &settings.config;
    let audit = audit_config(config);
    match command {
        AuditCommand::Verify => verify(settings, &audit, printer),
        AuditCommand::Show(args) => show(&audit, &args, printer),
        AuditCommand::Log(args) => log(&audit, settings, args, printer),
        AuditCommand::Ship => ship(settings, &audit, printer),
    }
}

fn verify(settings: &Settings, audit: &AuditConfig, printer: &Printer) -> Result<Status> {
    let key = checkpoint_key(settings, audit)?;
    let report = hogguard_audit::verify(&audit.path, key.as_ref())?;
    match &report.problem {
        None => {
            printer.out(&format!(
                "{} verifies: {} entries, the chain and the checkpoint agree\n",
                audit.path.display(),
                report.entries
            ))?;
            Ok(Status::Clean)
        }
        Some(problem) => {
            printer.error(&anyhow::anyhow!(
                "{} does not verify: {problem}",
                audit.path.display()
            ));
            Ok(Status::Findings)
        }
    }
}

fn show(audit: &AuditConfig, args: &AuditShowArgs, printer: &Printer) -> Result<Status> {
    let parse = |text: &Option<String>| -> Result<Option<Timestamp>> {
        text.as_deref()
            .map(|t| {
                Timestamp::parse(t).with_context(|| format!("`{t}` is not a date or RFC 3339 time"))
            })
            .transpose()
    };
    let filter = Filter {
        since: parse(&args.since)?,
        until: parse(&args.until)?,
        action: args.action.clone(),
        user: args.user.clone(),
        result: args.result.map(entry_outcome),
    };
    let mut text = String::new();
    for entry in hogguard_audit::query(&audit.path, &filter)? {
        let entry = entry?;
        match args.format {
            AuditFormat::Json => {
                text.push_str(&serde_json::to_string(&entry)?);
                text.push('\n');
            }
            AuditFormat::Human => {
                let result = match entry.result {
                    EntryOutcome::Success => "success",
                    _ => "failure",
                };
                // Every field was written by someone else: each is escaped, so none can
                // break the one-entry-per-line layout.
                let _ = write!(
                    text,
                    "{:>5} {} {} {} {} {result}",
                    entry.seq,
                    entry.timestamp,
                    untrusted::escape(&entry.user_id),
                    untrusted::escape(&entry.action),
                    untrusted::escape(&entry.resource)
                );
                if !entry.metadata.is_empty() {
                    let metadata = serde_json::Value::Object(entry.metadata.clone());
                    let _ = write!(text, " {}", untrusted::escape(&metadata.to_string()));
                }
                text.push('\n');
            }
        }
    }
    printer.out(&text)?;
    Ok(Status::Clean)
}

fn entry_outcome(result: ResultName) -> EntryOutcome {
    match result {
        ResultName::Success => EntryOutcome::Success,
        ResultName::Failure => EntryOutcome::Failure,
    }
}

fn log(
    audit: &AuditConfig,
    settings: &Settings,
    args: AuditLogArgs,
    printer: &Printer,
) -> Result<Status> {
    hogguard_fs::create_private_dir_all(hogguard_fs::parent_dir(&audit.path))?;
    let log = AuditLog::open(&audit.path, &options(settings, audit)?)
        .with_context(|| format!("the audit log {} cannot be opened", audit.path.display()))?;
    let user = args.user.unwrap_or_else(current_user);
    let mut input = EntryInput::new(args.action, user, args.resource, entry_outcome(args.result));
    for pair in &args.meta {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--meta {pair:?} is not key=value");
        };
        input = input.with_metadata(key, value);
    }
    let entry = log.append(input)?;
    log.close()?;
    printer.note(&format!("logged seq {}", entry.seq));
    Ok(Status::Clean)
}

fn ship(settings: &Settings, audit: &AuditConfig, printer: &Printer) -> Result<Status> {
    let config = &settings.config;
    let Some(var) = &audit.posthog_project_api_key else {
        bail!(
            "set [audit] posthog_project_api_key to the variable holding the phc_ project key to ship with"
        );
    };
    let token = settings.require_variable(
        var,
        Scope::AnyEnvironment,
        "[audit] posthog_project_api_key names it",
    )?;
    // `ship` retries with its own bounded backoff; the client must not retry on top of it.
    let client_config = ClientConfig::default().retry(RetryPolicy::none());
    let client = CaptureClient::new(&config.posthog.hosts()?, &client_config, token)?;
    let mut options = ShipOptions::default().scanner(redaction_scanner(config)?);
    // With the key, a log rewritten by someone without it is refused rather than shipped.
    if let Some(key) = checkpoint_key(settings, audit)? {
        options = options.checkpoint_key(key);
    }
    let report = hogguard_audit::ship(&audit.path, &client, &options)?;
    let mut text = format!(
        "shipped {} entries; {} pending",
        report.shipped, report.pending
    );
    if report.awaiting_checkpoint > 0 {
        let _ = write!(
            text,
            ", {} waiting for the next checkpoint",
            report.awaiting_checkpoint
        );
    }
    printer.note(&text);
    match report.last_error {
        // PostHog could not take them: a runtime failure (exit 2), and nothing is lost.
        Some(error) if report.pending > 0 => Err(anyhow::Error::from(error).context(format!(
            "PostHog did not take {} pending entries; they stay in the log's outbox, run \
             `hogguard audit ship` again later",
            report.pending
        ))),
        _ => Ok(Status::Clean),
    }
}
