//! `hogguard rotate ENV CREDENTIAL`: crash-safe rotation through `hogguard-rotate`, with the
//! terminal as the person's side of assisted rotations and the audit log as the trail.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hogguard_posthog::ClientConfig;
use hogguard_rotate::{
    AuditRecord, AuditResult, AuditSinkError, Interaction, InteractionError, PersonalKeyProvider,
    PostHogAccess, ProjectApiKeyProvider, ProjectSecretKeyProvider, Provider, RotationRequest,
    Rotator, Store, WebhookSecretProvider,
};
use hogguard_secret::{CredentialKind, Secret};

use crate::audit::Recorder;
use crate::cli::RotateArgs;
use crate::printer::Printer;
use crate::settings::{Scope, Settings};
use crate::{Status, age, environments, untrusted};

pub(crate) fn run(args: RotateArgs, settings: &Settings, printer: &Printer) -> Result<Status> {
    let Prepared { request, unmet } = prepare(&args, settings)?;
    // Beside the project's configuration, wherever in the project the command runs.
    let rotator = Rotator::new(settings.root.join(hogguard_rotate::ROTATIONS_DIR));
    if args.dry_run {
        return dry_run(&args, &rotator, &request, &unmet, printer);
    }
    if let Some(first) = unmet.into_iter().next() {
        return Err(first);
    }
    // The credential first: a second rotation of it is refused at once, rather than wait for
    // the first one's audit log and then rotate again.
    let locked = rotator.lock(&request)?;
    let recorder = Recorder::open(settings, true, printer)?;
    // Every rotation step goes to the audit log; with `[audit] required = true` a step whose
    // entry cannot be written is not taken.
    let sink = |record: &AuditRecord<'_>| -> Result<(), AuditSinkError> {
        let metadata: Vec<(&str, serde_json::Value)> = record
            .metadata
            .iter()
            .map(|(name, value)| (*name, value.as_str().into()))
            .collect();
        let success = record.result == AuditResult::Success;
        recorder
            .record(record.action, record.resource, success, &metadata)
            .map_err(AuditSinkError::new)
    };
    let mut terminal = Terminal {
        stdin: args.stdin,
        yes: args.yes,
        printer,
    };
    let outcome = if args.resume {
        locked.resume(&mut terminal, &sink)
    } else if args.abort {
        locked.abort(&mut terminal, &sink)
    } else if args.finish {
        locked.finish(&mut terminal, &sink)
    } else {
        locked.run(&mut terminal, &sink)
    };
    recorder.close()?;
    match outcome {
        Ok(outcome) => {
            printer.out(&format!("{outcome}\n"))?;
            Ok(Status::Clean)
        }
        // A check that failed (the verify command, a refused key) is a finding, not a crash.
        Err(e) if e.is_failed_check() => {
            printer.error(&e.into());
            Ok(Status::Findings)
        }
        Err(e) => Err(e.into()),
    }
}

/// A rotation request, and the settings a real run of it needs that could not be resolved:
/// a dry run lists them under its plan, a real run stops on the first.
struct Prepared {
    request: RotationRequest,
    unmet: Vec<anyhow::Error>,
}

/// `--dry-run`: the plan, then what would stop a real run; exit 1 when something would, so
/// that a dry run in CI fails for a rotation that cannot run.
fn dry_run(
    args: &RotateArgs,
    rotator: &Rotator,
    request: &RotationRequest,
    unmet: &[anyhow::Error],
    printer: &Printer,
) -> Result<Status> {
    let mut plan = rotator.plan(request);
    for error in unmet {
        plan.add_missing(format!("{error:#}"));
    }
    for problem in terminal_problems(args, request.provider()) {
        plan.add_missing(problem);
    }
    // The plan names files and commands from the configuration: shown like any other text
    // from outside, masked and escaped.
    let text: String = plan
        .to_string()
        .lines()
        .map(|line| untrusted::clean(line) + "\n")
        .collect();
    printer.out(&text)?;
    Ok(if plan.can_run() {
        Status::Clean
    } else {
        Status::Findings
    })
}

/// What an assisted rotation would find missing at its prompts: a terminal to paste the new
/// key in (or `--stdin`), and one to confirm the old key's deletion on (or `--yes`).
fn terminal_problems(args: &RotateArgs, provider: &Provider) -> Vec<&'static str> {
    let terminal = std::io::stdin().is_terminal();
    let reads_key = matches!(
        provider,
        Provider::PersonalKey(_) | Provider::ProjectApiKey(_)
    );
    let confirms = matches!(provider, Provider::PersonalKey(_)) && !args.revoke_old;
    let mut problems = Vec::new();
    if reads_key && !args.stdin && !terminal {
        problems.push(NO_TERMINAL_FOR_KEY);
    }
    if confirms && !args.yes && !terminal {
        problems.push(NO_TERMINAL_TO_CONFIRM);
    }
    problems
}

/// The request for `args`. Settings that only a real run needs (the admin key, the project
/// id) are `unmet` rather than errors, so that a dry run still plans.
fn prepare(args: &RotateArgs, settings: &Settings) -> Result<Prepared> {
    let config = &settings.config;
    let environment = config
        .environments
        .get(&args.environment)
        .with_context(|| format!("no environment `{}` in the configuration", args.environment))?;
    let variable = environment
        .credentials
        .get(&args.credential)
        .with_context(|| {
            let known: Vec<&str> = environment.credentials.keys().map(String::as_str).collect();
            format!(
                "no credential `{}` in environment `{}` (known: {})",
                args.credential,
                args.environment,
                known.join(", ")
            )
        })?;
    let store = match (&environment.store, &environment.env_file) {
        (Some(store), _) => Store::command(store.write.clone(), store.read.clone()),
        (None, Some(path)) => Store::env_file(project_path(path)?),
        (None, None) => bail!(
            "environment `{}` has neither env_file nor store: hogguard needs to know where to write the new key",
            args.environment
        ),
    };
    let current = environments::credentials(settings, Some(&args.environment))?
        .into_iter()
        .find(|c| c.name == args.credential)
        .and_then(|c| c.kind());
    let access = || -> Result<PostHogAccess> {
        Ok(PostHogAccess::new(
            config.posthog.hosts()?,
            ClientConfig::default(),
        ))
    };
    let mut unmet = Vec::new();
    let kind = current.unwrap_or_else(|| {
        crate::environments::kind_by_name(&args.credential).unwrap_or(CredentialKind::ProjectApiKey)
    });
    let provider = match kind {
        CredentialKind::ProjectSecretApiKey => {
            let admin = match &config.posthog.admin_key {
                None => Err(anyhow!(
                    "rotating a phs_ key needs [posthog] admin_key: the variable holding a personal API key with project:write"
                )),
                Some(var) => settings.require_variable(
                    var,
                    Scope::Environment(&args.environment),
                    "[posthog] admin_key names it",
                ),
            };
            let project = config
                .posthog
                .project_id
                .context("rotating a phs_ key needs [posthog] project_id");
            let provider = match (admin, project) {
                (Ok(admin), Ok(project)) => {
                    ProjectSecretKeyProvider::new(access()?, admin, project)
                }
                (admin, project) => {
                    let project_id = project.as_ref().ok().copied();
                    unmet.extend(admin.err());
                    unmet.extend(project.err());
                    ProjectSecretKeyProvider::for_plan(access()?, project_id)
                }
            };
            Provider::ProjectSecretKey(provider)
        }
        CredentialKind::PersonalApiKey | CredentialKind::LegacyPersonalApiKey => {
            let mut provider = PersonalKeyProvider::new(access()?).revoke_old(args.revoke_old);
            if let Some(scopes) = &environment.allowed_scopes {
                provider = provider.allowed_scopes(scopes.clone());
            }
            if let Some(project) = config.posthog.project_id {
                provider = provider.project_id(project);
            }
            Provider::PersonalKey(provider)
        }
        CredentialKind::WebhookSecret => {
            let grace = age::parse(&args.grace).context("--grace")?;
            Provider::WebhookSecret(WebhookSecretProvider::new().grace(Duration::from_secs(grace)))
        }
        CredentialKind::ProjectApiKey => {
            let mut provider = ProjectApiKeyProvider::new(access()?);
            if let Some(project) = config.posthog.project_id {
                provider = provider.project_id(project);
            }
            Provider::ProjectApiKey(provider)
        }
        other => bail!("hogguard cannot rotate a {other} credential"),
    };
    let mut request = RotationRequest::new(
        &args.environment,
        &args.credential,
        variable,
        provider,
        store,
    );
    if let Some(command) = &environment.verify_command {
        request = request.verify_command(command);
    }
    if let Some(threshold) = &args.if_older_than {
        request = request.if_older_than(Duration::from_secs(
            age::parse(threshold).context("--if-older-than")?,
        ));
    }
    Ok(Prepared { request, unmet })
}

/// `path` made absolute with its folder resolved (`app/src/../../.env` is `/project/.env`), so
/// that a rotation resumed from elsewhere in the project names the same store.
fn project_path(path: &Path) -> Result<PathBuf> {
    let folder = hogguard_fs::parent_dir(path);
    let resolved = std::fs::canonicalize(folder)
        .with_context(|| format!("cannot find the folder of {}", path.display()))?;
    Ok(match path.file_name() {
        Some(name) => resolved.join(name),
        None => resolved,
    })
}

/// Why an assisted rotation cannot read a new key, and what to do.
const NO_TERMINAL_FOR_KEY: &str =
    "no terminal to read the new key from: pass it on standard input with --stdin";
/// Why an assisted rotation cannot ask for a confirmation, and what to do.
const NO_TERMINAL_TO_CONFIRM: &str = "no terminal to confirm on: pass --yes";

/// The person's side of an assisted rotation: messages on standard error, new keys read
/// without echo (or from standard input with `--stdin`).
struct Terminal<'p> {
    stdin: bool,
    yes: bool,
    printer: &'p Printer,
}

impl Interaction for Terminal<'_> {
    fn show(&mut self, message: &str) {
        self.printer.note(message);
    }

    fn read_secret(&mut self, prompt: &str) -> Result<Secret, InteractionError> {
        let line = if self.stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(InteractionError::Io)?;
            line
        } else if std::io::stdin().is_terminal() {
            rpassword::prompt_password(format!("{prompt} ")).map_err(InteractionError::Io)?
        } else {
            return Err(no_terminal(NO_TERMINAL_FOR_KEY));
        };
        Ok(Secret::new(line.trim().to_owned()))
    }

    fn confirm(&mut self, question: &str) -> Result<bool, InteractionError> {
        if self.yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(no_terminal(NO_TERMINAL_TO_CONFIRM));
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{question} [y/N] ");
        let _ = stderr.flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(InteractionError::Io)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
    }
}

fn no_terminal(message: &str) -> InteractionError {
    InteractionError::Io(std::io::Error::other(message.to_owned()))
}
